#!/usr/bin/env node
// A deterministic corpus of Stripe webhook events for the differential test
// (tests/differential.rs): the repository's fixtures/ events, then a seeded
// made-up account whose events cover the routing's edge cases.
//
//     node tests/differential/corpus.mjs --out DIR [--fixtures DIR] [--seed N]
//
// Writes, in DIR:
//   00-fixtures.json     JSON array: every fixtures/ event, in sorted path order
//   01-generated.ndjson  NDJSON: the first half of the generated events
//   02-generated.json    JSON array: the second half
//   manifest.json        {"seed", "files", "events", "cases": [{"index", "event_id", "case"}]}
// and prints the event files' paths, one per line, in the order to replay them.
//
// The made-up account is self-consistent, as a real one is: a customer
// belongs to at most one user, and wherever an object's metadata names a
// user it is that customer's user. What varies is WHERE the user id can be
// found (object metadata, an invoice's subscription metadata in either API
// shape, an expanded customer, a customer object elsewhere in the input, or
// nowhere), and the shapes the app's code treats specially (missing
// checkout metadata, `customer: null`, deleted customers, thin events,
// redeliveries, whitespace in metadata values). Plain Node 20, no packages.
'use strict';

import fs from 'node:fs';
import path from 'node:path';

// ---- arguments ------------------------------------------------------------

function parseArgs(argv) {
  const args = { out: null, fixtures: null, seed: 17 };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--out') args.out = argv[(i += 1)];
    else if (a === '--fixtures') args.fixtures = argv[(i += 1)];
    else if (a === '--seed') args.seed = Number(argv[(i += 1)]);
    else throw new Error(`unknown argument: ${a}`);
  }
  if (!args.out || !Number.isInteger(args.seed)) {
    throw new Error('usage: node corpus.mjs --out DIR [--fixtures DIR] [--seed N]');
  }
  return args;
}

// ---- seeded randomness (mulberry32) -----------------------------------------

function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = (xs) => xs[Math.floor(next() * xs.length)];
  // weighted: [[weight, value], ...]
  const weighted = (pairs) => {
    const total = pairs.reduce((s, [w]) => s + w, 0);
    let r = next() * total;
    for (const [w, v] of pairs) {
      if ((r -= w) < 0) return v;
    }
    return pairs[pairs.length - 1][1];
  };
  const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const token = (n) => Array.from({ length: n }, () => ALNUM[Math.floor(next() * ALNUM.length)]).join('');
  const shuffle = (xs) => {
    for (let i = xs.length - 1; i > 0; i -= 1) {
      const j = Math.floor(next() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  return { next, int, pick, weighted, token, shuffle };
}

// ---- fixtures -------------------------------------------------------------------

function splitDocument(text) {
  const trimmed = text.trim();
  try {
    const whole = JSON.parse(trimmed);
    if (Array.isArray(whole)) return whole;
    if (whole && whole.object === 'list' && Array.isArray(whole.data)) return whole.data;
    return [whole];
  } catch {
    return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  }
}

function fixtureEvents(dir) {
  const files = [];
  const walk = (d) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (/\.(json|jsonl|ndjson)$/.test(name)) files.push(p);
    }
  };
  walk(dir);
  files.sort();
  return files.flatMap((f) => splitDocument(fs.readFileSync(f, 'utf8')));
}

// ---- the made-up account --------------------------------------------------------

const BASIL = '2025-06-30.basil';
const OLD = '2024-06-20';
const PRICES = ['price_1IR2G1RkT3sQ8vLmMIPgkA1G', 'price_1uYMpZRkT3sQ8vLm0xjneFTC', 'price_1ypxlVRkT3sQ8vLmBdg1qMrV'];
const SUB_TYPES = [
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'customer.subscription.pending_update_applied',
  'customer.subscription.pending_update_expired',
  'customer.subscription.trial_will_end',
];
const INVOICE_TYPES = [
  'invoice.paid',
  'invoice.payment_failed',
  'invoice.payment_action_required',
  'invoice.upcoming',
  'invoice.marked_uncollectible',
  'invoice.payment_succeeded',
];
const PI_TYPES = ['payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.canceled'];
// Real Stripe types the app does not track; several share a tracked prefix,
// and their objects name a customer and a user, so a prefix match would show.
// [type, object]
const UNTRACKED_TYPES = [
  ['charge.succeeded', 'charge'],
  ['invoice.finalized', 'invoice'],
  ['invoice.created', 'invoice'],
  ['invoice.voided', 'invoice'],
  ['invoice.overdue', 'invoice'],
  ['payment_intent.created', 'payment_intent'],
  ['payment_intent.processing', 'payment_intent'],
  ['checkout.session.expired', 'checkout.session'],
  ['checkout.session.async_payment_succeeded', 'checkout.session'],
  ['customer.discount.created', 'discount'],
  ['setup_intent.succeeded', 'setup_intent'],
  ['billing_portal.session.created', 'billing_portal.session'],
];
const THIN_TYPES = [
  'v1.billing.meter.error_report_triggered',
  'v1.billing.meter.no_meter_found',
  'v2.core.event_destination.ping',
];

function generate(seed) {
  const r = rng(seed);
  let clock = 1777593600; // 2026-05-01T00:00:00Z; every event a distinct second
  const tick = () => (clock += r.int(1, 900));
  const out = []; // [case, event]

  const envelope = (type, created, object, apiVersion = BASIL, extra = {}) => ({
    id: `evt_1${r.token(23)}`,
    object: 'event',
    api_version: apiVersion,
    created,
    data: { object, ...extra },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  });
  const emit = (kase, ev) => {
    out.push([kase, ev]);
    return ev;
  };

  // How a user id sits in a metadata object: mostly exact; rarely with
  // whitespace the app keeps and a trimming reader drops.
  const userMeta = (user, extra = {}) => ({ clerkUserId: user, ...extra });

  const customerObject = (c, created, metadata) => ({
    id: c.id,
    object: 'customer',
    created: c.created,
    email: `${c.slug}@example.com`,
    name: c.slug,
    invoice_settings: { default_payment_method: null },
    livemode: false,
    metadata,
    _snapshot_at: created,
  });
  const stripPrivate = (o) => {
    delete o._snapshot_at;
    return o;
  };

  const subscriptionObject = (c, s, status, metadata, apiVersion) => {
    const period = { start: s.created, end: s.created + 30 * 86400 };
    const item = {
      id: `si_${r.token(14)}`,
      object: 'subscription_item',
      created: s.created,
      metadata: {},
      price: { id: s.price, object: 'price', product: 'prod_bnQWn1AAxcOeRm' },
      quantity: 1,
    };
    const sub = {
      id: s.id,
      object: 'subscription',
      cancel_at_period_end: false,
      collection_method: 'charge_automatically',
      created: s.created,
      currency: 'usd',
      customer: c.id,
      default_payment_method: null,
      items: { object: 'list', data: [item], has_more: false },
      livemode: false,
      metadata,
      status,
    };
    if (apiVersion === BASIL) {
      item.current_period_start = period.start;
      item.current_period_end = period.end;
    } else {
      sub.current_period_start = period.start;
      sub.current_period_end = period.end;
    }
    return sub;
  };

  // ---- customers ----
  const customers = [];
  const N = 64;
  for (let i = 0; i < N; i += 1) {
    const mapped = r.next() < 0.8;
    const presence = r.weighted([
      [30, 'created'], // customer.created names the user (or has {} when unmapped)
      [12, 'linked_later'], // created with {}, a later customer.updated adds the user
      [6, 'unlinked_later'], // created with the user, a later update removes it
      [8, 'relinked'], // created with user A (A also in the subscription's metadata), later moved to user B
      [18, 'absent'], // no customer object anywhere: retrieve finds nothing
      [10, 'deleted'], // created, later customer.deleted
      [8, 'expanded_only'], // only ever seen expanded on a PI or invoice
      [8, 'expanded_stub'], // deleted; seen as the `{"deleted": true}` stub on a PI
    ]);
    const c = {
      id: `cus_D${r.token(13)}`,
      slug: `diff${String(i).padStart(2, '0')}`,
      user: mapped ? `user_2${r.token(26)}` : null,
      // The user written into subscription metadata at checkout: the
      // customer's user, except after a relink (then the former user).
      subUser: null,
      presence: !mapped && presence === 'relinked' ? 'created' : presence,
      apiVersion: r.next() < 0.75 ? BASIL : OLD,
      created: clock,
      subs: [],
    };
    const nsubs = r.weighted([[70, 1], [20, 2], [10, 0]]);
    for (let k = 0; k < nsubs; k += 1) {
      c.subs.push({ id: `sub_1${r.token(23)}`, price: r.pick(PRICES), created: 0 });
    }
    c.subUser = c.presence === 'relinked' ? `user_2${r.token(26)}` : c.user;
    customers.push(c);
  }

  // The user's id as the app wrote it into some metadata: exact, except a few
  // values padded with whitespace (any truthy string passes the app's checks).
  const writtenUser = (user) =>
    r.weighted([
      [94, user],
      [3, ` ${user} `],
      [3, `${user}\n`],
    ]);

  const expandedCustomer = (c, created) => {
    if (c.presence === 'expanded_stub') return { id: c.id, object: 'customer', deleted: true };
    return stripPrivate(customerObject(c, created, c.user ? { clerkUserId: c.user } : {}));
  };

  for (const c of customers) {
    // Customer lifecycle: creation first.
    const t0 = tick();
    c.created = t0;
    const createdMeta =
      c.presence === 'linked_later' || !c.user ? {} : { clerkUserId: c.presence === 'relinked' ? c.subUser : c.user };
    if (['created', 'linked_later', 'unlinked_later', 'relinked', 'deleted'].includes(c.presence)) {
      emit(
        `customer.created (${c.user ? (c.presence === 'linked_later' ? 'no user yet' : 'names the user') : 'unmapped'})`,
        envelope('customer.created', t0, stripPrivate(customerObject(c, t0, createdMeta)), c.apiVersion),
      );
    }

    // The customer's billing story.
    const nevents = r.int(5, 11);
    for (let k = 0; k < nevents; k += 1) {
      const t = tick();
      const s = c.subs.length ? r.pick(c.subs) : null;
      if (s && s.created === 0) s.created = t - 2;
      const family = r.weighted([
        [s ? 30 : 0, 'subscription'],
        [s ? 25 : 6, 'invoice'],
        [20, 'payment_intent'],
        [10, 'checkout'],
        [10, 'untracked'],
      ]);
      if (family === 'subscription') {
        const type = r.pick(SUB_TYPES);
        const where = r.weighted([
          [c.user ? 55 : 0, 'user'],
          [30, 'empty'],
          [8, 'missing'],
          [7, 'null'],
        ]);
        const metadata =
          where === 'user' ? userMeta(writtenUser(c.subUser)) : where === 'empty' ? {} : where === 'null' ? null : undefined;
        const status = type === 'customer.subscription.deleted' ? 'canceled' : type.endsWith('paused') ? 'paused' : r.pick(['active', 'trialing', 'past_due']);
        const sub = subscriptionObject(c, s, status, metadata, c.apiVersion);
        if (metadata === undefined) delete sub.metadata;
        emit(`subscription: metadata ${where}`, envelope(type, t, sub, c.apiVersion));
      } else if (family === 'invoice') {
        const type = r.pick(INVOICE_TYPES);
        const shape = s ? r.weighted([[c.apiVersion === BASIL ? 60 : 0, 'basil'], [c.apiVersion === BASIL ? 0 : 60, 'older'], [15, 'no_subscription']]) : 'no_subscription';
        const subMetaWhere = r.weighted([[c.user ? 60 : 0, 'user'], [40, 'empty']]);
        const subMeta = subMetaWhere === 'user' ? userMeta(writtenUser(c.subUser)) : {};
        const ownMeta = c.user && r.next() < 0.1 ? userMeta(c.user) : {};
        const customerShape = r.weighted([[88, 'id'], [12, 'expanded']]);
        const inv = {
          id: `in_1${r.token(23)}`,
          object: 'invoice',
          amount_due: 2000,
          billing_reason: shape === 'no_subscription' ? 'manual' : 'subscription_cycle',
          collection_method: 'charge_automatically',
          created: t - 1,
          currency: 'usd',
          customer: customerShape === 'id' ? c.id : expandedCustomer(c, t),
          livemode: false,
          metadata: ownMeta,
          status: type === 'invoice.paid' || type === 'invoice.payment_succeeded' ? 'paid' : 'open',
        };
        if (type === 'invoice.upcoming') delete inv.id; // as Stripe sends it
        if (shape === 'basil') {
          inv.parent = {
            type: 'subscription_details',
            quote_details: null,
            subscription_details: { metadata: subMeta, subscription: s.id },
          };
        } else if (shape === 'older') {
          inv.subscription = s.id;
          inv.subscription_details = { metadata: subMeta };
        } else if (c.apiVersion === BASIL) {
          inv.parent = null;
        } else {
          inv.subscription = null;
        }
        const where = ownMeta.clerkUserId ? 'invoice metadata' : shape === 'no_subscription' ? 'no subscription' : `${shape} subscription metadata ${subMetaWhere}`;
        emit(`invoice: ${where}, customer ${customerShape}`, envelope(type, t, inv, c.apiVersion));
      } else if (family === 'payment_intent') {
        const type = r.pick(PI_TYPES);
        const metaWhere = r.weighted([[c.user ? 35 : 0, 'user'], [65, 'empty']]);
        const customerShape = r.weighted([
          [c.presence === 'expanded_only' ? 10 : 60, 'id'],
          [15, 'null'],
          [c.presence === 'expanded_only' || c.presence === 'expanded_stub' ? 60 : 12, 'expanded'],
        ]);
        const pi = {
          id: `pi_1${r.token(23)}`,
          object: 'payment_intent',
          amount: r.pick([500, 900, 2000, 4500]),
          created: t - 1,
          currency: 'usd',
          customer: customerShape === 'id' ? c.id : customerShape === 'null' ? null : expandedCustomer(c, t),
          livemode: false,
          metadata: metaWhere === 'user' ? userMeta(writtenUser(c.user)) : {},
          status: type === 'payment_intent.succeeded' ? 'succeeded' : type === 'payment_intent.canceled' ? 'canceled' : 'requires_payment_method',
        };
        const expandedKind = customerShape === 'expanded' && c.presence === 'expanded_stub' ? 'deleted stub' : customerShape;
        emit(`payment_intent: metadata ${metaWhere}, customer ${expandedKind}`, envelope(type, t, pi, c.apiVersion));
      } else if (family === 'checkout') {
        const user = c.subUser ?? `user_2${r.token(26)}`; // unmapped customer: an app user whose customer was never linked
        const meta = r.weighted([
          [44, ['both', { clerkUserId: user, tier: r.pick(['basic', 'pro', 'team']) }]],
          [12, ['no tier', { clerkUserId: user }]],
          [10, ['no user', { tier: 'pro' }]],
          [8, ['empty', {}]],
          [5, ['null', null]],
          [5, ['blank tier', { clerkUserId: user, tier: '' }]],
          [4, ['whitespace tier', { clerkUserId: user, tier: ' ' }]],
          [4, ['whitespace user', { clerkUserId: ' ', tier: 'pro' }]],
          [4, ['padded user', { clerkUserId: ` ${user}`, tier: 'pro' }]],
        ]);
        const customerShape = r.weighted([[82, 'id'], [18, 'null']]);
        const session = {
          id: `cs_test_a1${r.token(56)}`,
          object: 'checkout.session',
          client_reference_id: null,
          created: t - 60,
          customer: customerShape === 'id' ? c.id : null,
          livemode: false,
          metadata: meta[1],
          mode: customerShape === 'id' && s ? 'subscription' : 'payment',
          payment_status: 'paid',
          status: 'complete',
          subscription: customerShape === 'id' && s ? s.id : null,
        };
        emit(`checkout: metadata ${meta[0]}, customer ${customerShape}`, envelope('checkout.session.completed', t, session, c.apiVersion));
      } else {
        const [type, object] = r.pick(UNTRACKED_TYPES);
        const obj = {
          id: `${object.split('.')[0].slice(0, 4)}_1${r.token(23)}`,
          object,
          created: t - 1,
          customer: c.id,
          livemode: false,
          metadata: c.user ? { clerkUserId: c.user } : {},
        };
        emit('untracked type', envelope(type, t, obj, c.apiVersion));
      }
    }

    // Customer lifecycle: later changes.
    if (c.presence === 'linked_later' && c.user) {
      const t = tick();
      emit(
        'customer.updated (adds the user)',
        envelope('customer.updated', t, stripPrivate(customerObject(c, t, { clerkUserId: c.user })), c.apiVersion, {
          previous_attributes: { metadata: { clerkUserId: null } },
        }),
      );
    } else if (c.presence === 'relinked') {
      const t = tick();
      emit(
        'customer.updated (moves to another user)',
        envelope('customer.updated', t, stripPrivate(customerObject(c, t, { clerkUserId: c.user })), c.apiVersion, {
          previous_attributes: { metadata: { clerkUserId: c.subUser } },
        }),
      );
    } else if (c.presence === 'unlinked_later' && c.user) {
      const t = tick();
      emit(
        'customer.updated (removes the user)',
        envelope('customer.updated', t, stripPrivate(customerObject(c, t, {})), c.apiVersion, {
          previous_attributes: { metadata: { clerkUserId: c.user } },
        }),
      );
    } else if (c.presence === 'deleted') {
      const t = tick();
      // Stripe sends the customer as it was, metadata included.
      emit(
        'customer.deleted',
        envelope('customer.deleted', t, stripPrivate(customerObject(c, t, c.user ? { clerkUserId: c.user } : {})), c.apiVersion),
      );
    }
  }

  // ---- guests and users without a customer ----
  for (let k = 0; k < 24; k += 1) {
    const t = tick();
    const type = r.pick(PI_TYPES);
    const known = r.pick(customers.filter((c) => c.user));
    const metaWhere = r.weighted([[40, 'empty'], [30, 'known user'], [30, 'user without customer']]);
    const metadata =
      metaWhere === 'empty' ? {} : metaWhere === 'known user' ? { clerkUserId: known.user } : { clerkUserId: `user_2${r.token(26)}` };
    emit(
      `payment_intent: customer null, metadata ${metaWhere}`,
      envelope(type, t, {
        id: `pi_1${r.token(23)}`,
        object: 'payment_intent',
        amount: 300,
        created: t - 1,
        currency: 'usd',
        customer: null,
        livemode: false,
        metadata,
        status: 'succeeded',
      }),
    );
  }

  // ---- thin events ----
  for (let k = 0; k < 12; k += 1) {
    const t = tick();
    // Real thin types, plus a few with tracked names to probe both readers.
    const type = k < 9 ? r.pick(THIN_TYPES) : r.pick(['invoice.paid', 'checkout.session.completed', 'payment_intent.succeeded']);
    emit(`thin event${k < 9 ? '' : ' (tracked type name)'}`, {
      id: `evt_test_65${r.token(40)}`,
      object: 'v2.core.event',
      type,
      livemode: false,
      created: new Date(t * 1000).toISOString(),
      related_object: { id: `mtr_${r.token(24)}`, type: 'billing.meter', url: '/v1/billing/meters/mtr_x' },
      reason: null,
      context: null,
    });
  }

  // ---- redeliveries: the same event id again, byte for byte ----
  const originals = out.filter(([, ev]) => ev.object === 'event');
  for (let k = 0; k < 10; k += 1) {
    const [kase, ev] = r.pick(originals);
    out.push([`redelivery of: ${kase}`, JSON.parse(JSON.stringify(ev))]);
  }

  // File order is not time order (Stripe delivers out of order), except
  // that a redelivery comes after its first delivery.
  const firsts = r.shuffle(out.filter(([k]) => !k.startsWith('redelivery')));
  const again = out.filter(([k]) => k.startsWith('redelivery'));
  return firsts.concat(again);
}

// ---- main -------------------------------------------------------------------------

function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  const fixtures = args.fixtures ? fixtureEvents(args.fixtures) : [];
  const generated = generate(args.seed);
  const half = Math.ceil(generated.length / 2);
  const files = [
    ['00-fixtures.json', fixtures.map((ev) => ['fixture', ev]), 'array'],
    ['01-generated.ndjson', generated.slice(0, half), 'ndjson'],
    ['02-generated.json', generated.slice(half), 'array'],
  ].filter(([, evs]) => evs.length > 0);

  const cases = [];
  const paths = [];
  for (const [name, evs, format] of files) {
    const p = path.join(args.out, name);
    const text =
      format === 'ndjson'
        ? evs.map(([, ev]) => JSON.stringify(ev)).join('\n') + '\n'
        : JSON.stringify(evs.map(([, ev]) => ev), null, 1) + '\n';
    fs.writeFileSync(p, text);
    paths.push(p);
    for (const [kase, ev] of evs) cases.push({ index: cases.length, event_id: ev.id, case: kase });
  }
  fs.writeFileSync(
    path.join(args.out, 'manifest.json'),
    JSON.stringify({ seed: args.seed, files: paths.map((p) => path.basename(p)), events: cases.length, cases }, null, 1) + '\n',
  );
  process.stdout.write(paths.join('\n') + '\n');
}

main();
