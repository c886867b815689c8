#!/usr/bin/env bash
# `stripe-sync audit` throughput and peak memory (issue: 100,000 app records
# against a 100,000-customer store, streamed: >= 100,000 records/s and
# <= 100 MB), each figure beside its goal; exits 1 if a goal is missed.
#
#   benches/audit.sh [CUSTOMERS]      default 100,000 customers, one user each
#
# The store: one customer.created (user id in metadata) and, for 95% of them,
# one customer.subscription.* event per customer, rendered with
# gen_events.py's templates (gen_events.py itself draws customers at random,
# so a full 100,000-user store would take ~2M events), then `replay`. The
# app's records: `inspect --csv` of that store, one row per user, 1% drifted
# (status or price), as CSV, NDJSON and a JSON array. Each run's JSON is
# checked: summary.users = records, summary.drifted = rows drifted.
# About a minute on 2 cores (after the build), ~0.6 GB in $TMPDIR.
set -euo pipefail
customers=${1:-100000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/stripe-sync
# AUDIT_BENCH_WORK=DIR keeps the store and the records there (for profiling).
if [ -n "${AUDIT_BENCH_WORK:-}" ]; then
  work=$AUDIT_BENCH_WORK; mkdir -p "$work"
else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# ---- the store: $customers customers, each with a user
python3 - "$customers" > "$work/events.ndjson" <<'PY'
import random, sys
sys.path.insert(0, "benches")
import gen_events as g

n = int(sys.argv[1])
rng = random.Random(1)
ids = g.Ids(rng)
products = []
for name, amount, lookup in [("Basic", 900, "basic_monthly"), ("Pro", 2000, "pro_monthly"),
                             ("Team", 1500, "team_monthly_per_seat"), ("Pro annual", 19200, "pro_yearly")]:
    p = {"PRODUCT_ID": g.q(ids.short("prod")), "PRICE_ID": g.q(ids.stripe("price")),
         "PRICE_CREATED": str(g.START - 400 * 86400), "AMOUNT": str(amount),
         "AMOUNT_S": g.q(str(amount)), "LOOKUP": g.q(lookup), "NAME": g.q(name)}
    p["PRICE"] = g.PRICE_TPL.format(**p)
    p["PLAN"] = g.PLAN_TPL.format(**p)
    products.append(p)
STATUS = [("active", 0.80), ("trialing", 0.08), ("past_due", 0.05), ("canceled", 0.04),
          ("unpaid", 0.015), ("paused", 0.015)]
out = []
for i in range(n):
    created = g.START + i
    basil = rng.random() >= 0.25
    api = g.BASIL if basil else g.OLD
    first, last = rng.choice(g.FIRST), rng.choice(g.LAST)
    brand, last4, funding = rng.choice(g.CARDS)
    country = rng.choice(g.COUNTRIES)
    user = "user_2" + ids.rand(26)
    cus = ids.short("cus")
    v = {"CUS": g.q(cus), "EMAIL": g.q(f"{first.lower()}.{last.lower().replace(' ', '')}{i}@example.com"),
         "NAME": g.dumps(f"{first} {last}"), "COUNTRY": g.q(country),
         "CUS_CREATED": str(created - rng.randint(0, 200 * 86400)), "PM_ID": g.q(ids.stripe("pm")),
         "BRAND": g.q(brand), "LAST4": g.q(last4), "FUNDING": g.q(funding),
         "EXP_M": str(rng.randint(1, 12)), "EXP_Y": str(rng.randint(2027, 2033)),
         "FP": g.q(ids.rand(16)), "PREFIX": g.q(ids.rand(8).upper())}
    meta = g.dumps({"clerkUserId": user})
    out.append(g.event_line(ids.stripe("evt"), api, created, g.CUSTOMER_T.format(META=meta, **v),
                            None, ids.short("req"), "customer.created"))
    if rng.random() < 0.95:
        x, status = rng.random(), "active"
        for st, w in STATUS:
            if x < w:
                status = st
                break
            x -= w
        prod = rng.choice(products)
        sub = ids.stripe("sub")
        sc = created - rng.randint(60, 150 * 86400)
        pstart = sc + (created - sc) // g.MONTH * g.MONTH
        cape = status == "active" and rng.random() < 0.1
        canceled = status == "canceled"
        trial = status == "trialing"
        obj = g.SUB_T[basil].format(
            SI=g.q(ids.short("si")), SUB_CREATED=str(sc), PLAN=prod["PLAN"], PRICE=prod["PRICE"],
            QTY=str(rng.randint(2, 25) if prod["NAME"] == '"Team"' else 1), SUB=g.q(sub),
            PEND=str(pstart + g.MONTH), PSTART=str(pstart),
            CANCEL_AT=str(pstart + g.MONTH) if cape else (str(created) if canceled else "null"),
            CAPE="true" if cape else "false",
            CANCELED_AT=str(created - 30) if cape or canceled else "null",
            CANCEL_REASON='"cancellation_requested"' if cape or canceled else "null",
            CUS=v["CUS"], PM=g.PM_T.format(**v) if rng.random() < 0.3 else v["PM_ID"],
            ENDED_AT=str(created) if canceled else "null",
            ITEMS_URL=g.q("/v1/subscription_items?subscription=" + sub), INV=g.q(ids.stripe("in")),
            META=meta, STATUS=g.q(status),
            TRIAL_END=str(pstart + 14 * 86400) if trial else "null",
            TRIAL_START=str(pstart) if trial else "null")
        et = "customer.subscription.deleted" if canceled else "customer.subscription.created"
        out.append(g.event_line(ids.stripe("evt"), api, created, obj, None, ids.short("req"), et))
    if len(out) >= 5000:
        sys.stdout.write("\n".join(out) + "\n")
        out.clear()
if out:
    sys.stdout.write("\n".join(out) + "\n")
PY
events=$(wc -l < "$work/events.ndjson")
echo "store: $customers customers, $events events ($(du -m "$work/events.ndjson" | cut -f1) MB NDJSON), replayed into a fresh store"
# The store never caught up with a whole account: audit warns on stderr (ignored).
"$bin" replay --quiet --db "$work/store.db" "$work/events.ndjson" > /dev/null
rm "$work/events.ndjson"

# ---- the app's records: one row per user, 1% drifted, as CSV, NDJSON, JSON
"$bin" inspect --db "$work/store.db" --csv > "$work/inspect.csv"
read -r records drifted < <(python3 - "$work" <<'PY'
import csv, json, sys
work = sys.argv[1]
cols = ["user_id", "customer_id", "email", "subscription_id", "status", "price_id",
        "current_period_start", "current_period_end", "cancel_at_period_end", "card_brand", "card_last4"]
seen, rows = set(), []
for r in csv.DictReader(open(f"{work}/inspect.csv", newline="")):
    if r["user_id"] and r["user_id"] not in seen:
        seen.add(r["user_id"])
        rows.append({c: r[c] for c in cols})
drifted = 0
for i, r in enumerate(rows):
    if i % 100 == 37:  # every hundredth user, deterministically
        if r["status"] == "active":
            r["status"] = "canceled"
        elif r["price_id"]:
            r["price_id"] = "price_1DriftedRkT3sQ8vLm0000"
        else:
            r["status"] = "active"
        drifted += 1
with open(f"{work}/app.csv", "w", newline="") as f:
    w = csv.DictWriter(f, cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
def typed(r):
    o = {c: (r[c] or None) for c in cols}
    for c in ("current_period_start", "current_period_end"):
        o[c] = int(r[c]) if r[c] else None
    o["cancel_at_period_end"] = r["cancel_at_period_end"] == "true"
    return o
objs = [json.dumps(typed(r), separators=(",", ":")) for r in rows]
with open(f"{work}/app.ndjson", "w") as f:
    f.write("\n".join(objs) + "\n")
with open(f"{work}/app.json", "w") as f:
    f.write("[\n" + ",\n".join(objs) + "\n]\n")
print(len(rows), drifted)
PY
)
[ -n "${drifted:-}" ] || { echo "could not write the app's records" >&2; exit 1; }
echo "app records: $records users, $drifted drifted (1%); CSV $(du -k "$work/app.csv" | cut -f1) KB, NDJSON $(du -k "$work/app.ndjson" | cut -f1) KB, JSON $(du -k "$work/app.json" | cut -f1) KB"

# label, source (3 runs: median time, largest peak RSS; each run's JSON checked)
missed=0
measure() {
  local label=$1 src=$2 rc
  : > "$work/runs"
  for _ in 1 2 3; do
    # exit status 1: drift found, as planted
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" audit --db "$work/store.db" "$work/$src" --json \
      > "$work/out.json" 2> "$work/err" && rc=0 || rc=$?
    if [ "$rc" -ne 1 ]; then
      echo "$label: exit status $rc (expected 1: drift found)" >&2
      tail -n 5 "$work/err" >&2
      exit 1
    fi
    tail -n 1 "$work/time" >> "$work/runs"
    python3 - "$work/out.json" "$records" "$drifted" "$label" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
s = doc["summary"]
records, drifted, label = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if (s["users"], s["drifted"], s["in_sync"]) != (records, drifted, records - drifted):
    sys.exit(f"{label}: summary {s}, expected users {records}, drifted {drifted}, in_sync {records - drifted}")
if doc["problems"]:
    sys.exit(f"{label}: {len(doc['problems'])} records not read, e.g. {doc['problems'][0]}")
PY
  done
  python3 - "$work/out.json" "$drifted" > "$work/check" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
f = s["findings"]
print("  summary: users %d, in_sync %d, drifted %d (planted %s); findings %d (%s)" % (
    s["users"], s["in_sync"], s["drifted"], sys.argv[2], sum(f.values()),
    ", ".join("%s %d" % kv for kv in sorted(f.items()) if kv[1])))
PY
  sort -n "$work/runs" | awk -v l="$label" -v n="$records" '
    { s[NR] = $1; if ($2 > kb) kb = $2 }
    END {
      rate = s[2] > 0 ? n / s[2] : 1e12; mb = kb / 1024
      ok = rate >= 100000 && mb <= 100
      printf("%-30s %6.2f s %8.0f records/s (goal >= 100000: %s)  peak RSS %5.1f MB (goal <= 100: %s)\n",
        l, s[2], rate, (rate >= 100000 ? "met" : "MISSED"), mb, (mb <= 100 ? "met" : "MISSED"))
      # The lines benches/all.sh gathers into its table.
      printf("result\t%s (%d records): records/s\t%.0f/s\t-\t-\t>= 100,000/s\t%s\n",
        l, n, rate, (rate >= 100000 ? "met" : "missed"))
      printf("result\t%s (%d records): peak RSS\t%.1f MB\t-\t-\t<= 100 MB\t%s\n",
        l, n, mb, (mb <= 100 ? "met" : "missed"))
      exit (ok ? 0 : 1)
    }' || missed=1
  cat "$work/check"
}

measure "stripe-sync audit app.csv" app.csv
measure "stripe-sync audit app.ndjson" app.ndjson
measure "stripe-sync audit app.json" app.json
if [ "$missed" -ne 0 ]; then
  echo "audit: a goal was MISSED" >&2
  exit 1
fi
