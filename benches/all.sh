#!/usr/bin/env bash
# Every benchmark in one run, and one table of what it measured: each goal
# of issue 21 with this tool's figure, the baseline(s) measured in the same
# run (the naive Node/Python replays, the app's Node endpoint and a bare Node
# and a bare hyper server, the bare HMAC, a hello-world binary, the request
# bound), the ratio and whether it is met; and (issue 22, no goal set: `-`)
# the PostgreSQL store beside the SQLite one: `serve` with one and with two
# receivers, a 100,000-customer backfill.
#
#   benches/all.sh [LOG]     default LOG: target/bench-all.log
#
# Writes the table to benches/results/<date>-<commit>.md (and the whole log
# beside it), and prints it. About 35-45 minutes and 6 GB of temp space; run
# it on a quiet machine: other processes on the 2 cores show up in every
# figure. It installs its own baselines (stripe-node through npm, a
# hello-world Rust binary); node, npm, python3 and /usr/bin/time are used
# where present, and a baseline that cannot run is said so in the log.
#
# PostgreSQL (issue 22): the PostgreSQL rows run on a throwaway local server
# (tests/support/pg.rs, with PostgreSQL's default durability: see
# benches/support/pg_bench.rs) started from the installed binaries (Debian's
# postgresql-15, or STRIPE_SYNC_PG_BINDIR). Without them those rows say
# SKIPPED and the rest runs as before; STRIPE_SYNC_REQUIRE_PG=1 makes a
# missing PostgreSQL fail those steps instead.
#
# Each benchmark prints its figures as lines `result<TAB>measure<TAB>this
# tool<TAB>baseline(s)<TAB>ratio<TAB>goal<TAB>verdict` (met or missed; `-`
# without a goal; SKIPPED; FAILED); this script only gathers them
# (benches/results_table.py). Exit status: 1 if a benchmark failed or a
# bound it checks was exceeded (the memory checks), else 0.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${1:-target/bench-all.log}
mkdir -p "$(dirname "$log")" benches/results
step() {
  local name=$1
  shift
  echo
  echo "## $name"
  "$@" || echo "($name: exit status $?)"
}
{
  echo "# benches/all.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
  echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/^Mem:/ { print $2 }') GiB"
  # Build everything first: no compiler runs beside a measurement.
  cargo build --release --quiet
  cargo bench --no-run --quiet 2> /dev/null
  pg_bin=$(
    { [ -n "${STRIPE_SYNC_PG_BINDIR:-}" ] && echo "$STRIPE_SYNC_PG_BINDIR"; } ||
      pg_config --bindir 2> /dev/null ||
      ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1
  )
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ]; then
    echo "# PostgreSQL: $("$pg_bin/postgres" --version 2> /dev/null || echo "$pg_bin")"
  else
    echo "# PostgreSQL: not found (no initdb, pg_ctl): its rows are SKIPPED (install postgresql-15 or set STRIPE_SYNC_PG_BINDIR)"
  fi
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  step "replay (100,000 events; naive Node and Python baselines)" benches/replay.sh
  step "verify, in process" cargo bench --quiet --bench verify
  step "verify, one process" benches/verify_process.sh
  step "serve under load (out of process: serve on SQLite, on PostgreSQL with one and two receivers, bare hyper, the app's Node endpoint, bare Node)" \
    cargo bench --quiet --bench serve_load
  step "backfill at the rate limit" cargo bench --quiet --bench backfill
  step "backfill and inspect, 1,000,000 customers" \
    env BACKFILL_BENCH_CUSTOMERS=1000000 cargo bench --quiet --bench backfill
  step "backfill 100,000 customers into PostgreSQL beside SQLite" \
    env BACKFILL_BENCH_POSTGRES=1 cargo bench --quiet --bench backfill
  # At PostgreSQL's default max_locks_per_transaction (64) the backfill's
  # transaction runs out of lock slots at 100,000 customers (the step above
  # says FAILED while it does): the same with a lock table 16 times as large,
  # for the figure.
  step "backfill 100,000 customers into PostgreSQL beside SQLite, max_locks_per_transaction 1024" \
    env BACKFILL_BENCH_POSTGRES=1 BENCH_PG_MAX_LOCKS=1024 cargo bench --quiet --bench backfill
  step "audit, 100,000 app records" benches/audit.sh
  step "memory, 1,000,000 rows or events" benches/memory.sh
  echo
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$log"
# The steps ran in the pipeline's subshell: their failures are in the log.
failed=0
grep -q '^(.*: exit status [0-9]*)$' "$log" && failed=1

stamp="$(date -u '+%Y-%m-%d')-$(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
table="benches/results/$stamp.md"
{
  echo "# benches/all.sh, $(head -n 1 "$log" | sed 's/^# benches\/all.sh, //')"
  echo
  sed -n '2p' "$log" | sed 's/^# /Machine: /'
  echo
  grep -m1 '^# PostgreSQL' "$log" | sed 's/^# //'
  echo
  grep '^# load average' "$log" | sed 's/^# //'
  echo
  python3 benches/results_table.py "$log"
} > "$table"
cp "$log" "benches/results/$stamp.log"
echo
cat "$table"
echo "(table: $table; log: benches/results/$stamp.log)"
exit "$failed"
