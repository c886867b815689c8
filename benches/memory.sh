#!/usr/bin/env bash
# Peak resident memory of every mode issue 21 bounds: at most 50 MB for a
# million rows or events, each run of the release binary measured on its own
# (`/usr/bin/time -f %M`, else the kernel's rusage of the child through
# python3: both the exact peak, not a sample). MB here are 10^6 bytes.
#
#   benches/memory.sh                  1,000,000 customers and events (~3-5 min
#                                      on 2 cores after the build, ~1 GB in $TMPDIR)
#   MEMORY_BENCH_N=50000 benches/memory.sh     a quick check at a smaller size
#   MEMORY_BENCH_WORK=DIR              keep the store and inputs there
#
# Checked: `inspect` as a table to a pipe, as a table on a terminal (a pty
# from script(1), 120 columns), `--csv` and `--json` to a pipe; `audit` of
# one app record per user (CSV, 1% drifted) against the store; `replay -`
# of N generated events (benches/gen_events.py) from stdin into a fresh
# store. Each run's output is checked too (rows, users, events counted).
#
# The store: the binary makes the schema (a one-event replay), then SQL
# fills it: N customers, 1% without a user, 0.5% a second customer of the
# previous user, 90% with a subscription (and 90% of those a card), user ids
# in an order unrelated to the customers' (the walk is in user order).
#
# stdout: one line per check, tab-separated, for benches/all.sh:
#   result <measure> <this tool> <baseline> <ratio> <goal> <met|missed>
# progress and details go to stderr. Exits 1 if any check is missed.
set -euo pipefail
n=${MEMORY_BENCH_N:-1000000}
goal_mb=50
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/stripe-sync
if [ -n "${MEMORY_BENCH_WORK:-}" ]; then
  work=$MEMORY_BENCH_WORK; mkdir -p "$work"
else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fi
say() { echo "$@" >&2; }
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"

# $work/peak CMD...: runs CMD (its stdin and stdout as given), its peak KB
# into $work/kb
if [ -x /usr/bin/time ]; then
  printf '#!/bin/sh\nexec /usr/bin/time -f %%M -o %s "$@"\n' "$work/kb" > "$work/peak"
else
  cat > "$work/peak" <<PY
#!/usr/bin/env python3
import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:])
open("$work/kb", "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
PY
fi
chmod +x "$work/peak"
peak() { rm -f "$work/kb"; "$work/peak" "$@"; }
thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
rows=$(thousands "$n")

missed=0
# measure label: one result line from $work/kb; missed when over the goal
# or when the run was wrong ($2: why, empty when right)
report() {
  local label=$1 wrong=${2:-} kb mb verdict
  kb=$(tail -n 1 "$work/kb" 2>/dev/null | tr -dc 0-9)
  kb=${kb:-0}
  mb=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
  verdict=met
  if [ -n "$wrong" ] || awk -v m="$mb" -v g="$goal_mb" 'BEGIN { exit !(m > g) }'; then
    verdict=missed; missed=1
  fi
  [ -z "$wrong" ] || say "$label: $wrong"
  printf 'result\t%s, %s: max RSS\t%s MB\t-\t-\t<= %s MB\t%s\n' "$label" "$rows $3" "$mb" "$goal_mb" "$verdict"
  say "  $label: $mb MB ($verdict)"
}

# ---- the store
store=$work/store.db
if [ ! -s "$store" ]; then
  say "store: $n customers"
  printf '{"id":"evt_schema","object":"event","type":"charge.succeeded","created":1,"data":{"object":{"id":"ch_1","object":"charge"}}}\n' > "$work/schema.json"
  "$bin" replay --quiet --db "$store" "$work/schema.json" > /dev/null
  sqlite3 "$store" <<SQL
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN;
DROP INDEX IF EXISTS customers_mapping;
DROP INDEX IF EXISTS subscriptions_customer;
CREATE TEMP TABLE n AS
  WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < $n)
  SELECT i,
    printf('cus_%014d', i) AS cus,
    CASE WHEN i % 100 = 13 THEN NULL
         WHEN i % 200 = 7 THEN printf('user_2%026d', ((i - 1) * 2654435761) % 4294967291)
         ELSE printf('user_2%026d', (i * 2654435761) % 4294967291) END AS user,
    CASE WHEN i % 10 = 3 THEN NULL ELSE printf('sub_1%023d', i) END AS sub,
    1700000000 + (i * 7919) % 60000000 AS created
  FROM k;
INSERT INTO subscriptions (id, customer_id, status, price_id, current_period_start,
    current_period_end, cancel_at_period_end, payment_method_id, card_brand, card_last4,
    created, snapshot_at, source, synced_at)
  SELECT sub, cus,
    CASE i % 20 WHEN 1 THEN 'trialing' WHEN 2 THEN 'past_due' WHEN 5 THEN 'canceled' ELSE 'active' END,
    printf('price_1%023d', i % 5), created + 86400, created + 86400 + 2592000, i % 10 = 4,
    CASE WHEN i % 10 = 6 THEN NULL ELSE printf('pm_1%023d', i) END,
    CASE WHEN i % 10 = 6 THEN NULL WHEN i % 2 = 0 THEN 'visa' ELSE 'mastercard' END,
    CASE WHEN i % 10 = 6 THEN NULL ELSE printf('%04d', i % 10000) END,
    created, 1767225600, 'api', '2026-01-01T00:00:00Z'
  FROM n WHERE sub IS NOT NULL;
INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source, synced_at,
    subscription_id, current_at)
  SELECT cus, user, 'clerkUserId', printf('customer%d@example.com', i), i % 200 = 99,
    1767225600, 'api', '2026-01-01T00:00:00Z', sub, CASE WHEN sub IS NULL THEN NULL ELSE created END
  FROM n;
COMMIT;
SQL
  # The readers' indexes, made as the binary makes them.
  sed -n '/^CREATE INDEX IF NOT EXISTS customers_mapping/,/^CREATE INDEX IF NOT EXISTS subscriptions_customer/p' \
    src/store/schema.rs | grep -v '^DROP' | sqlite3 "$store"
  sqlite3 "$store" 'PRAGMA wal_checkpoint(TRUNCATE);' > /dev/null
  say "  $(du -m "$store" | cut -f1) MB"
fi

# ---- inspect
say "inspect"
# A run that fails is reported by its output's check, not by `set -e`.
peak "$bin" inspect --db "$store" > "$work/table" 2> "$work/err" || true
got=$(($(wc -l < "$work/table") - 1))
report "inspect table to a pipe" "$([ "$got" -eq "$n" ] || echo "$got rows, not $n")" rows

# On a terminal: stdout and stderr on a pty 120 columns wide (script(1)
# copies what was drawn to its stdout); the rows drawn are counted.
rm -f "$work/kb"
script -qec "stty cols 120 rows 50; $work/peak $bin inspect --db $store" /dev/null \
  < /dev/null > "$work/term" || true
got=$(grep -c -E '^(user_2|- )' "$work/term" || true)
report "inspect table on a terminal" "$(head -c 2000 "$work/term" | grep -q '^USER' && [ "$got" -eq "$n" ] || echo "drew $got rows, not $n, or no header")" rows

peak "$bin" inspect --db "$store" --csv > "$work/inspect.csv" 2> "$work/err" || true
got=$(($(wc -l < "$work/inspect.csv") - 1))
report "inspect --csv to a pipe" "$([ "$got" -eq "$n" ] || echo "$got rows, not $n")" rows

peak "$bin" inspect --db "$store" --json 2> "$work/err" | grep -c '^  {' > "$work/count" || true
got=$(cat "$work/count")
report "inspect --json to a pipe" "$([ "$got" -eq "$n" ] || echo "$got rows, not $n")" rows

# ---- audit: the app's records, one per user (the first of its rows), 1% drifted
say "audit"
awk -F, -v OFS=, 'NR == 1 { NF = 11; print; next }
  $1 != "" && !($1 in seen) {
    seen[$1] = 1; NF = 11; users++
    if (users % 100 == 37) {
      drifted++
      if ($5 == "active") $5 = "canceled"
      else if ($6 != "") $6 = "price_1DriftedRkT3sQ8vLm0000"
      else $5 = "active"
    }
    print
  }
  END { printf "%d %d\n", users, drifted > "/dev/stderr" }' "$work/inspect.csv" > "$work/app.csv" 2> "$work/app_count"
rm -f "$work/inspect.csv" "$work/table" "$work/term"
read -r users drifted < "$work/app_count"
rc=0
peak "$bin" audit --db "$store" "$work/app.csv" --json > "$work/audit.json" 2> "$work/err" || rc=$?
wrong=$(python3 - "$work/audit.json" "$users" "$drifted" "$rc" <<'PY'
import json, sys
users, drifted, rc = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
try:
    s = json.load(open(sys.argv[1]))["summary"]
except Exception as e:
    print(f"exit status {rc}, no report ({e})"); sys.exit()
if rc != 1 or s["users"] != users or s["drifted"] < drifted // 2:
    print(f"exit status {rc}, summary {s}; expected {users} users, about {drifted} drifted")
PY
)
[ -z "$wrong" ] || tail -n 3 "$work/err" >&2
report "audit, one app record per user as CSV" "$wrong" "customers, $(thousands "$users") app records"

# ---- replay - : N generated events, NDJSON on stdin, into a fresh store
say "replay -"
rm -f "$work"/replay.db*
python3 benches/gen_events.py --events "$n" --customers $((n / 20 + 1)) --seed 1 |
  peak "$bin" replay --db "$work/replay.db" - 2> "$work/err" | tail -n 3 > "$work/replay.out" || true
want="$(thousands "$n") events:"
wrong=$(grep -q "^$want" "$work/replay.out" || echo "no summary of $want; $(head -c 300 "$work/replay.out" "$work/err")")
report "replay - (NDJSON on stdin) into a fresh store" "$wrong" events

exit "$missed"
