"""Replay a signature_header corpus through stripe-sync, stripe-node and stripe-python.

The fuzz target checks the parser against models; this checks the models
against the real SDKs, on the (many, odd) headers the fuzzer grew. For every
UTF-8 corpus file H (that could be an HTTP header value: no CR, LF or NUL, no
surrounding whitespace, no `Stripe-Signature:` prefix), two headers are tried:

    H                              the header as the fuzzer made it
    "t=" + H without "," and "="   its text as a lone t= value

each with a `v1=<sig>` entry appended and, separately, prepended, where
<sig> is the correct v1 signature for the timestamp stripe-python reads
(any, when python cannot read one). Then, as in scripts/sdk_conformance.py:
where both SDKs accept, stripe-sync must accept; otherwise it must reject. The
age check is off everywhere (tolerance 0).

Usage: python3 fuzz/sdk_diff/sdk_diff.py BIN SDK_DIR CORPUS_DIR...
  CORPUS_DIR  a signature_header corpus (each file is a header), or
              verify:DIR for a verify corpus (the header is each file's line 2)
  BIN      a built stripe-sync binary
  SDK_DIR  a dir with node_modules/stripe (npm install stripe) and py/stripe
           (pip install --target py stripe), as scripts/sdk_conformance.sh makes
"""
import hashlib, hmac, json, os, subprocess, sys

BIN, SDK = sys.argv[1], sys.argv[2]
DIRS = sys.argv[3:]
SECRET = "whsec_fuzz_sdk_diff"
PAYLOAD = '{"id":"evt_1","object":"event","type":"invoice.paid"}'

sys.path.insert(0, os.path.join(SDK, "py"))
import stripe  # noqa: E402

def sig(t):
    return hmac.new(SECRET.encode(), f"{t}.{PAYLOAD}".encode(), hashlib.sha256).hexdigest()

def py_reading(h):
    try:
        return stripe.WebhookSignature._get_timestamp_and_signatures(h, "v1")[0]
    except Exception:
        return None

def usable(h):
    return h and not any(c in h for c in "\r\n\0") and h == h.strip() and not h.lower().startswith("stripe-signature:")

headers = set()
for d in DIRS:
    verify_format = d.startswith("verify:")
    d = d.removeprefix("verify:")
    for name in sorted(os.listdir(d)):
        raw = open(os.path.join(d, name), "rb").read()
        if verify_format:
            lines = raw.split(b"\n")
            if len(lines) < 2:
                continue
            raw = lines[1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for h in (text, "t=" + text.replace(",", "").replace("=", "")):
            if usable(h):
                headers.add(h)
cases = []
for h in sorted(headers):
    t = py_reading(h)
    good = sig(t if t is not None else 0)
    # The extra v1 last and first: a v1 entry moves neither SDK's t reading,
    # but python stops comparing at the first match and node compares all.
    for full in (f"{h},v1={good}", f"v1={good},{h}"):
        if usable(full):
            cases.append(full)

NODE = r"""
const Stripe = require(process.argv[1] + '/node_modules/stripe');
const stripe = Stripe('sk_test_x');
const [payload, secret, headers] = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(headers.map(h => {
  try { stripe.webhooks.signature.verifyHeader(payload, h, secret, 0); return true; } catch (e) { return false; }
})));
"""
node = json.loads(subprocess.run(["node", "-e", NODE, SDK], input=json.dumps([PAYLOAD, SECRET, cases]),
                                 capture_output=True, text=True, check=True).stdout)
python = []
for h in cases:
    try:
        stripe.WebhookSignature.verify_header(PAYLOAD, h, SECRET, 0)
        python.append(True)
    except Exception:
        python.append(False)

payload_file = os.path.join(SDK, "sdk_diff_payload.json")
open(payload_file, "w").write(PAYLOAD)
mismatches = 0
counts = {}
for h, a, b in zip(cases, node, python):
    r = subprocess.run([BIN, "verify", "--json", "--secret", SECRET, "--signature", h, "--tolerance", "0", payload_file],
                       capture_output=True)
    us = json.loads(r.stdout)["valid"] if r.returncode in (0, 1) else None
    expected = a and b
    key = (a, b, us)
    counts[key] = counts.get(key, 0) + 1
    if us != expected:
        mismatches += 1
        print(f"MISMATCH node={a} python={b} stripe-sync={us}: {h!r}")
print(f"{len(cases)} headers; (node, python, stripe-sync) -> count: "
      + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)))
print(f"{mismatches} mismatches")
sys.exit(1 if mismatches else 0)
