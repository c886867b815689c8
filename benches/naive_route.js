#!/usr/bin/env node
// Naive baseline: route an NDJSON file of Stripe events the way a developer
// would in a quick script (readline + JSON.parse per line), with the same
// rules as `stripe-sync replay --dry-run`, and print a JSON summary.
//
//     node benches/naive_route.js /tmp/events.ndjson
//
// Node 20, no npm packages. Used only to compare throughput with the Rust
// tool (see benches/gen_events.py).
'use strict';

const fs = require('node:fs');
const readline = require('node:readline');

const USER_KEY = 'clerkUserId';
const TRACKED = new Set([
  'checkout.session.completed', 'customer.subscription.created', 'customer.subscription.updated',
  'customer.subscription.deleted', 'customer.subscription.paused', 'customer.subscription.resumed',
  'customer.subscription.pending_update_applied', 'customer.subscription.pending_update_expired',
  'customer.subscription.trial_will_end', 'invoice.paid', 'invoice.payment_failed',
  'invoice.payment_action_required', 'invoice.upcoming', 'invoice.marked_uncollectible',
  'invoice.payment_succeeded', 'payment_intent.succeeded', 'payment_intent.payment_failed',
  'payment_intent.canceled',
]);

function userOf(metadata) {
  if (metadata && typeof metadata === 'object' && !Array.isArray(metadata)) {
    const user = metadata[USER_KEY];
    if (typeof user === 'string' && user !== '') return user;
  }
  return null;
}

async function main(path) {
  const started = process.hrtime.bigint();
  const counts = { events: 0, sync: 0, ignored: 0, rejected: 0, unresolved: 0, duplicate: 0, invalid: 0 };
  const via = { object_metadata: 0, subscription_metadata: 0, expanded_customer: 0, customer_metadata: 0 };
  const seen = new Set();
  const customers = new Map(); // customer id -> [event created, input order, user|null]: newest wins
  const pending = []; // customer ids of events that need the customer map (it may come later)
  const synced = new Set();

  const rl = readline.createInterface({ input: fs.createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let order = -1;
  for await (const line of rl) {
    order += 1;
    if (line.trim() === '') continue;
    counts.events += 1;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      counts.invalid += 1;
      continue;
    }
    const obj = event && event.data && event.data.object;
    if (!obj || typeof obj !== 'object' || typeof event.type !== 'string' || typeof event.id !== 'string') {
      counts.invalid += 1;
      continue;
    }
    const type = event.type;
    const created = event.created || 0;

    if ((type === 'customer.created' || type === 'customer.updated') && typeof obj.id === 'string') {
      const known = customers.get(obj.id);
      if (!known || created > known[0] || (created === known[0] && order >= known[1])) {
        customers.set(obj.id, [created, order, userOf(obj.metadata)]);
      }
    }

    if (seen.has(event.id)) {
      counts.duplicate += 1;
      continue;
    }
    seen.add(event.id);
    if (!TRACKED.has(type)) {
      counts.ignored += 1;
      continue;
    }
    if (type === 'checkout.session.completed') {
      const md = obj.metadata;
      if (!userOf(md) || !md.tier) {
        counts.rejected += 1;
        continue;
      }
    }

    const customer = obj.customer;
    const customerId = customer && typeof customer === 'object' ? customer.id : customer;
    let user = userOf(obj.metadata);
    let how = 'object_metadata';
    if (user === null && obj.object === 'invoice') {
      const details = (obj.parent && obj.parent.subscription_details) || obj.subscription_details || {};
      user = userOf(details.metadata);
      how = 'subscription_metadata';
    }
    if (user === null && customer && typeof customer === 'object') {
      user = userOf(customer.metadata);
      how = 'expanded_customer';
    }
    if (user !== null) {
      counts.sync += 1;
      via[how] += 1;
      if (customerId) synced.add(customerId);
    } else if (typeof customerId === 'string') {
      pending.push(customerId);
    } else {
      counts.unresolved += 1;
    }
  }

  for (const customerId of pending) {
    const known = customers.get(customerId);
    if (known && known[2] !== null) {
      counts.sync += 1;
      via.customer_metadata += 1;
      synced.add(customerId);
    } else {
      counts.unresolved += 1;
    }
  }

  counts.customers_synced = synced.size;
  counts.resolved_via = via;
  counts.elapsed_ms = Number((process.hrtime.bigint() - started) / 1000000n);
  process.stdout.write(JSON.stringify(counts) + '\n');
}

if (process.argv.length !== 3) {
  process.stderr.write('usage: naive_route.js EVENTS.ndjson\n');
  process.exit(2);
}
main(process.argv[2]).catch((err) => {
  process.stderr.write(`naive_route.js: ${err.message}\n`);
  process.exit(2);
});
