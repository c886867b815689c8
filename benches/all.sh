#!/usr/bin/env bash
# Every benchmark of issue 12 in one run, each figure beside its goal:
# replay (100k and 1M events, with the naive Node and Python baselines),
# in-process and one-shot verify, the million-customer backfill and inspect
# on the store it makes. About 20 minutes and 5 GB of temp space; run it on
# a quiet machine (other processes on the 2 cores show up in every figure).
#
#   benches/all.sh [LOG]        default LOG: target/bench-all.log
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-target/bench-all.log}
mkdir -p "$(dirname "$log")"
{
  echo "# benches/all.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/^Mem:/ { print $2 }') GiB"
  # Build everything first: no compiler runs beside a measurement.
  cargo build --release --quiet
  cargo bench --no-run --quiet 2> /dev/null
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "## replay"
  REPLAY_BENCH_MILLION=1 benches/replay.sh
  echo
  echo "## verify, in process"
  cargo bench --quiet --bench verify 2>&1 | grep -v '^\s*Running\|Finished'
  echo
  echo "## verify, one process"
  benches/verify_process.sh
  echo
  echo "## backfill and inspect, 1,000,000 customers"
  BACKFILL_BENCH_CUSTOMERS=1000000 cargo bench --quiet --bench backfill 2>&1 | grep -v '^\s*Running\|Finished'
  echo
  echo "## audit, 100,000 app records against 100,000 customers"
  benches/audit.sh || true # exits 1 when a goal is missed: the lines say which
  echo
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$log"
