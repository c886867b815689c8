#!/usr/bin/env bash
# Replay throughput and peak memory on generated events (issue goals on a
# 2-core machine: dry-run >= 100,000 events/s, full replay into a fresh store
# >= 50,000 events/s, peak RSS < 100 MB), and the naive Node/Python baselines.
# Usage: benches/replay.sh [EVENTS] [CUSTOMERS]
set -euo pipefail
events=${1:-100000}
customers=${2:-5000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/stripe-sync
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_events.py --events "$events" --customers "$customers" --seed 1 > "$work/events.ndjson"
size=$(du -m "$work/events.ndjson" | cut -f1)
echo "input: $events events, $customers customers, ${size} MB NDJSON"

measure() { # label, command... (3 runs: median time, largest peak RSS)
  local label=$1; shift
  : > "$work/runs"
  for _ in 1 2 3; do
    rm -f "$work"/fresh.db*
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > /dev/null 2> "$work/err" || true
    tail -n 1 "$work/time" >> "$work/runs"
  done
  sort -n "$work/runs" | awk -v l="$label" -v n="$events" \
    '{ s[NR] = $1; if ($2 > kb) kb = $2 }
     END { printf "%-34s %6.2f s  %7.0f events/s  peak RSS %6.1f MB\n", l, s[2], n / s[2], kb / 1024 }'
}

cd "$work"
measure "stripe-sync replay --dry-run" "$bin" replay --dry-run --json events.ndjson
measure "stripe-sync replay (fresh store)" "$bin" replay --json --db fresh.db events.ndjson
measure "stripe-sync replay (table)" "$bin" replay --dry-run events.ndjson
cd - > /dev/null
if command -v node > /dev/null; then measure "naive Node 20 (route only)" node benches/naive_route.js "$work/events.ndjson"; fi
if command -v python3 > /dev/null; then measure "naive Python 3.11 (route only)" python3 benches/naive_route.py "$work/events.ndjson"; fi
