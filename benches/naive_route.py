#!/usr/bin/env python3
"""Naive baseline: route an NDJSON file of Stripe events the way a developer
would in a quick script (json.loads per line, dicts everywhere), with the
same rules as `stripe-sync replay --dry-run`, and print a JSON summary.

    python3 benches/naive_route.py /tmp/events.ndjson

Used only to compare throughput with the Rust tool (see benches/gen_events.py).
"""

import json
import sys
import time

USER_KEY = "clerkUserId"
TRACKED = frozenset((
    "checkout.session.completed", "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.paused", "customer.subscription.resumed",
    "customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
    "customer.subscription.trial_will_end", "invoice.paid", "invoice.payment_failed",
    "invoice.payment_action_required", "invoice.upcoming", "invoice.marked_uncollectible",
    "invoice.payment_succeeded", "payment_intent.succeeded", "payment_intent.payment_failed",
    "payment_intent.canceled",
))


def user_of(metadata):
    if isinstance(metadata, dict):
        user = metadata.get(USER_KEY)
        if isinstance(user, str) and user:
            return user
    return None


def main(path):
    started = time.perf_counter()
    counts = {"events": 0, "sync": 0, "ignored": 0, "rejected": 0, "unresolved": 0, "duplicate": 0, "invalid": 0}
    via = {"object_metadata": 0, "subscription_metadata": 0, "expanded_customer": 0, "customer_metadata": 0}
    seen = set()
    customers = {}  # customer id -> (event created, input order, user or None): newest snapshot wins
    pending = []  # customer ids of events that need the customer map (it may come later in the file)
    synced = set()

    with open(path, encoding="utf-8") as f:
        for order, line in enumerate(f):
            if not line.strip():
                continue
            counts["events"] += 1
            try:
                event = json.loads(line)
                etype = event["type"]
                eid = event["id"]
                obj = event["data"]["object"]
                created = event.get("created") or 0
                if not isinstance(obj, dict) or not isinstance(etype, str) or not isinstance(eid, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                counts["invalid"] += 1
                continue

            if etype in ("customer.created", "customer.updated") and isinstance(obj.get("id"), str):
                known = customers.get(obj["id"])
                if known is None or (created, order) >= known[:2]:
                    customers[obj["id"]] = (created, order, user_of(obj.get("metadata")))

            if eid in seen:
                counts["duplicate"] += 1
                continue
            seen.add(eid)
            if etype not in TRACKED:
                counts["ignored"] += 1
                continue
            if etype == "checkout.session.completed":
                md = obj.get("metadata")
                if not user_of(md) or not md.get("tier"):
                    counts["rejected"] += 1
                    continue

            customer = obj.get("customer")
            customer_id = customer.get("id") if isinstance(customer, dict) else customer
            user = user_of(obj.get("metadata"))
            how = "object_metadata"
            if user is None and obj.get("object") == "invoice":
                parent = obj.get("parent") or {}
                details = parent.get("subscription_details") or obj.get("subscription_details") or {}
                user = user_of(details.get("metadata"))
                how = "subscription_metadata"
            if user is None and isinstance(customer, dict):
                user = user_of(customer.get("metadata"))
                how = "expanded_customer"
            if user is not None:
                counts["sync"] += 1
                via[how] += 1
                if customer_id:
                    synced.add(customer_id)
            elif isinstance(customer_id, str):
                pending.append(customer_id)
            else:
                counts["unresolved"] += 1

    for customer_id in pending:
        known = customers.get(customer_id)
        if known is not None and known[2] is not None:
            counts["sync"] += 1
            via["customer_metadata"] += 1
            synced.add(customer_id)
        else:
            counts["unresolved"] += 1

    counts["customers_synced"] = len(synced)
    counts["resolved_via"] = via
    counts["elapsed_ms"] = round((time.perf_counter() - started) * 1000)
    print(json.dumps(counts))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: naive_route.py EVENTS.ndjson")
    main(sys.argv[1])
