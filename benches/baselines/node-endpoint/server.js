// The seed app's webhook endpoint (../shared/seed-app/http.ts) as a plain
// Node HTTP server, the peer benches/serve_load.rs measures `serve` against:
// POST /stripe logs one line, verifies the raw body with stripe-node's
// `webhooks.constructEventAsync` and the secret, and answers 200 with no
// body (400 `Webhook Error: ...` when verification throws, 500 without a
// secret). What the app does after verifying (`ctx.scheduler.runAfter`, a
// Convex call) has no counterpart here: no database, nothing queued.
//
//   node server.js [endpoint|bare] [PORT]      (default: endpoint, port 0)
//
// `bare` answers 200 to any request once its body is read: Node's own HTTP
// ceiling on this machine. Environment:
//   STRIPE_WEBHOOK_SECRET   the signing secret (endpoint)
//   NODE_ENDPOINT_DIR       where install.sh put stripe-node
//                           (default ../../../target/bench-baselines/node-endpoint)
// Prints `listening on http://ADDR/stripe` on stderr once it listens, as
// `stripe-sync serve` does, so the load generator starts both alike.
"use strict";
const http = require("node:http");
const path = require("node:path");
const { createRequire } = require("node:module");

const mode = process.argv[2] || "endpoint";
const port = Number(process.argv[3] || 0);

function endpoint() {
  const dir =
    process.env.NODE_ENDPOINT_DIR ||
    path.join(__dirname, "..", "..", "..", "target", "bench-baselines", "node-endpoint");
  const Stripe = createRequire(path.join(dir, "package.json"))("stripe");
  // As in the app; the key is never used (no API call is made).
  const stripe = new Stripe(process.env.STRIPE_SECRET_KEY || "sk_test_bench", {
    apiVersion: "2025-06-30.basil",
  });
  return async (req, res, body) => {
    console.log("Received http actions /stripe");
    const signature = req.headers["stripe-signature"];
    const webhookSecret = process.env.STRIPE_WEBHOOK_SECRET;
    if (!webhookSecret) {
      console.error("STRIPE_WEBHOOK_SECRET is not set in Convex environment variables.");
      res.writeHead(500).end("Webhook secret not configured.");
      return;
    }
    try {
      // `await request.text()`: the raw body as a string.
      await stripe.webhooks.constructEventAsync(body.toString("utf8"), signature, webhookSecret);
      res.writeHead(200).end();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.error("Error verifying Stripe webhook signature:", message);
      res.writeHead(400).end(`Webhook Error: ${message}`);
    }
  };
}

const bare = async (_req, res) => {
  res.writeHead(200).end();
};

const handle = mode === "bare" ? bare : mode === "endpoint" ? endpoint() : null;
if (!handle) {
  console.error(`server.js: unknown mode ${JSON.stringify(mode)} (endpoint or bare)`);
  process.exit(2);
}

// noDelay: false, as `stripe-sync serve` leaves Nagle on for accepted
// sockets (Node's default is true): every server measured alike.
const server = http.createServer({ noDelay: false }, (req, res) => {
  if (mode === "endpoint" && (req.method !== "POST" || req.url !== "/stripe")) {
    req.resume();
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    handle(req, res, Buffer.concat(chunks)).catch((e) => {
      console.error(e);
      res.writeHead(500).end();
    });
  });
});
server.listen(port, "127.0.0.1", () => {
  const a = server.address();
  process.stderr.write(`listening on http://${a.address}:${a.port}/stripe\n`);
});
