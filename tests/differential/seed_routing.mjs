#!/usr/bin/env node
// The seed app's webhook routing (shared/seed-app/http.ts and the parts of
// stripe.ts that it calls), ported to plain Node 20 so that a test can hold
// `stripe-sync replay` to what the app itself would do.
//
//     node tests/differential/seed_routing.mjs EVENTS... > verdicts.ndjson
//
// Each EVENTS file is a JSON array of events, one event object, a Stripe list
// object, or NDJSON. Output: one JSON line per event, in input order:
//
//     {"index", "source", "event_id", "type",
//      "verdict": "sync" | "none" | "throws" | "ignored",
//      "user_id", "customer_id", "schedules": [user ids],
//      "lookup", "error": null | {"caught_by", "message"}}
//
// verdict: `sync` = a sync was scheduled (`schedules` lists each
// `runAfter(syncStripeDataToDb, {subject})`, twice for a checkout: the
// missing `break`); `none` = scheduleSyncForUser logged "Could not find
// clerkUserId" and skipped; `throws` = an exception was raised and caught
// (`caught_by` names the try/catch: handleEvent's outer one, or the one
// around `stripe.customers.retrieve` in scheduleSyncForUser); `ignored` =
// the switch's default case.
//
// What is ported, statement by statement, and what is not:
// - http.ts: the signature check is NOT ported (the inputs are unsigned);
//   every event is taken as constructEventAsync would return it (JSON.parse
//   of the body) and handed to handleEvent, as the app schedules it.
// - stripe.ts: handleEvent's switch, with its quirks kept: the
//   `checkout.session.completed` case has no `break`, so after its own
//   scheduleSyncForUser it falls through into the shared case and calls it
//   again; its missing-metadata `throw` is swallowed by the outer try/catch.
//   scheduleSyncForUser as written: object `metadata.clerkUserId` (any
//   truthy value, untrimmed), else `stripe.customers.retrieve(customer)`
//   only when `customer` is a string.
// - `stripe.customers.retrieve` is answered from the inputs, as the API
//   would answer after the fact: the newest snapshot of the customer (by
//   event `created`, later input breaking ties) among customer objects in
//   the events (`data.object` of type customer, and expanded `customer`
//   objects); a deleted customer (a `customer.deleted` event, or an expanded
//   `{"id", "object": "customer", "deleted": true}` stub) answers the stub
//   `{"id", "object": "customer", "deleted": true}` that Stripe keeps;
//   anything else throws "No such customer", as the API's 404 does.
// - Logging (console.*) is dropped; `ctx.scheduler.runAfter` records the
//   subject instead of scheduling.
'use strict';

import fs from 'node:fs';

// ---- input --------------------------------------------------------------

/** Split one file into [source, event] pairs, sources named as replay does. */
function readEvents(file) {
  const text = fs.readFileSync(file, 'utf8');
  const trimmed = text.trim();
  let whole;
  try {
    whole = JSON.parse(trimmed);
  } catch {
    whole = undefined;
  }
  if (Array.isArray(whole)) {
    return whole.map((ev, i) => [`${file}[${i}]`, ev]);
  }
  if (whole && typeof whole === 'object') {
    if (whole.object === 'list' && Array.isArray(whole.data)) {
      return whole.data.map((ev, i) => [`${file}[${i}]`, ev]);
    }
    return [[file, whole]];
  }
  const out = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') out.push([`${file}:${i + 1}`, JSON.parse(line)]);
  });
  return out;
}

// ---- the Stripe API, answered from the inputs ------------------------------

function createdOf(ev) {
  return typeof ev.created === 'number' ? ev.created : 0;
}

/** customer id -> {snapshot, created, order, deleted} from every customer object in the inputs. */
function customerDirectory(events) {
  const dir = new Map();
  const put = (id, snapshot, created, order, deleted) => {
    const prev = dir.get(id);
    const isDeleted = deleted || (prev !== undefined && prev.deleted);
    if (prev === undefined || created > prev.created || (created === prev.created && order >= prev.order)) {
      dir.set(id, { snapshot, created, order, deleted: isDeleted });
    } else if (isDeleted) {
      prev.deleted = true;
    }
  };
  events.forEach(([, ev], order) => {
    const obj = ev && ev.data && ev.data.object;
    if (!obj || typeof obj !== 'object') return;
    const created = createdOf(ev);
    if (obj.object === 'customer' && typeof obj.id === 'string') {
      put(obj.id, obj, created, order, ev.type === 'customer.deleted' || obj.deleted === true);
    }
    const c = obj.customer;
    if (c && typeof c === 'object' && typeof c.id === 'string') {
      put(c.id, c, created, order, c.deleted === true);
    }
  });
  return dir;
}

class StripeInvalidRequestError extends Error {}

function makeStripe(directory) {
  return {
    customers: {
      async retrieve(id) {
        const known = directory.get(id);
        if (known === undefined) {
          throw new StripeInvalidRequestError(`No such customer: '${id}'`);
        }
        if (known.deleted) {
          return { id, object: 'customer', deleted: true };
        }
        // A copy, as each API call returns a fresh object.
        return JSON.parse(JSON.stringify(known.snapshot));
      },
    },
  };
}

// ---- the app (stripe.ts), ported --------------------------------------------

function makeApp(stripe) {
  // scheduleSyncForUser, statement by statement. `trace` records what the
  // app did; the real function only logs.
  const scheduleSyncForUser = async (ctx, eventObject, eventType) => {
    let clerkUserId;
    clerkUserId = eventObject.metadata?.clerkUserId;
    if (!clerkUserId && eventObject.customer && typeof eventObject.customer === 'string') {
      try {
        const customer = await stripe.customers.retrieve(eventObject.customer);
        ctx.trace.lookup = customer.deleted === true ? 'deleted' : 'found';
        clerkUserId = customer.metadata.clerkUserId;
      } catch (error) {
        // console.error(`[Webhook] Error retrieving customer ...`, error)
        if (ctx.trace.lookup === null) ctx.trace.lookup = 'not_found';
        ctx.trace.error = { caught_by: 'scheduleSyncForUser', message: String(error && error.message) };
        return;
      }
    } else if (ctx.trace.lookup === null) {
      ctx.trace.lookup = clerkUserId
        ? 'object_metadata'
        : eventObject.customer && typeof eventObject.customer === 'object'
          ? 'expanded_not_read'
          : 'no_customer';
    }
    if (!clerkUserId) {
      // console.error(`[Webhook] Could not find clerkUserId ... Skipping sync.`)
      return;
    }
    await ctx.scheduler.runAfter(0, 'internal.stripe.syncStripeDataToDb', { subject: clerkUserId });
  };

  const handleEvent = async (ctx, { event }) => {
    const stripeEvent = event;
    try {
      switch (stripeEvent.type) {
        case 'checkout.session.completed': {
          const session = stripeEvent.data.object;
          const { clerkUserId, tier } = session.metadata ?? {};
          if (!clerkUserId || !tier) {
            throw new Error('Missing metadata: clerkUserId or tier from checkout session.');
          }
          await scheduleSyncForUser(ctx, session, stripeEvent.type);
        }
        // falls through: the app has no `break` here
        case 'customer.subscription.created':
        case 'customer.subscription.updated':
        case 'customer.subscription.deleted':
        case 'customer.subscription.paused':
        case 'customer.subscription.resumed':
        case 'customer.subscription.pending_update_applied':
        case 'customer.subscription.pending_update_expired':
        case 'customer.subscription.trial_will_end':
        case 'invoice.paid':
        case 'invoice.payment_failed':
        case 'invoice.payment_action_required':
        case 'invoice.upcoming':
        case 'invoice.marked_uncollectible':
        case 'invoice.payment_succeeded':
        case 'payment_intent.succeeded':
        case 'payment_intent.payment_failed':
        case 'payment_intent.canceled':
          await scheduleSyncForUser(ctx, stripeEvent.data.object, stripeEvent.type);
          break;
        default: {
          // console.log(`[Webhook] Unhandled event type: ${stripeEvent.type}`)
          ctx.trace.unhandled = true;
        }
      }
    } catch (error) {
      ctx.trace.error = { caught_by: 'handleEvent', message: String(error && error.message) };
    }
  };

  return { handleEvent };
}

// ---- driver -------------------------------------------------------------------

function customerIdOf(ev) {
  const c = ev && ev.data && ev.data.object ? ev.data.object.customer : undefined;
  if (typeof c === 'string') return c;
  if (c && typeof c === 'object' && typeof c.id === 'string') return c.id;
  return null;
}

async function main(files) {
  if (files.length === 0) {
    process.stderr.write('usage: node seed_routing.mjs EVENTS...\n');
    process.exit(2);
  }
  const events = files.flatMap(readEvents);
  const app = makeApp(makeStripe(customerDirectory(events)));
  const out = [];
  for (const [index, [source, event]] of events.entries()) {
    const schedules = [];
    const trace = { lookup: null, error: null, unhandled: false };
    const ctx = {
      trace,
      scheduler: {
        async runAfter(_delay, _fn, args) {
          schedules.push(args.subject);
        },
      },
    };
    await app.handleEvent(ctx, { event });
    let verdict;
    if (trace.unhandled) verdict = 'ignored';
    else if (schedules.length > 0) verdict = 'sync';
    else if (trace.error !== null) verdict = 'throws';
    else verdict = 'none';
    out.push(
      JSON.stringify({
        index,
        source,
        event_id: event && event.id !== undefined ? event.id : null,
        type: event && event.type !== undefined ? event.type : null,
        verdict,
        user_id: schedules.length > 0 ? schedules[0] : null,
        customer_id: customerIdOf(event),
        schedules,
        lookup: trace.lookup,
        error: trace.error,
      }),
    );
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}

await main(process.argv.slice(2));
