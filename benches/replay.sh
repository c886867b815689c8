#!/usr/bin/env bash
# Replay throughput and peak memory on generated events, each figure beside
# its goal (issue 12, on a 2-core machine), with the naive Node and Python
# baselines in the same run so the ratio is measured side by side.
#
#   benches/replay.sh [EVENTS] [CUSTOMERS]    100,000 events, 5,000 customers
#   REPLAY_BENCH_MILLION=1 benches/replay.sh   adds the 1,000,000-event run
#                                              (~2.9 GB of input in $TMPDIR)
#   REPLAY_BENCH_BASELINE=/path/to/stripe-sync benches/replay.sh
#                                              measures another build (e.g. the
#                                              previous commit's) on the same input,
#                                              each right after this build's figure
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
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "input: $events events, $customers customers, ${size} MB NDJSON"

# label, goal (events/s, 0: none), RSS goal (MB), events, command... (3 runs:
# median time, largest peak RSS)
measure() {
  local label=$1 goal=$2 rss_goal=$3 n=$4; shift 4
  : > "$work/runs"
  for _ in 1 2 3; do
    rm -f "$work"/fresh.db*
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > /dev/null 2> "$work/err" || true
    tail -n 1 "$work/time" >> "$work/runs"
  done
  sort -n "$work/runs" | awk -v l="$label" -v n="$n" -v g="$goal" -v rg="$rss_goal" '
    { s[NR] = $1; if ($2 > kb) kb = $2 }
    END {
      rate = n / s[2]; mb = kb / 1024
      line = sprintf("%-34s %6.2f s %8.0f events/s", l, s[2], rate)
      if (g > 0) line = line sprintf(" (goal >= %d: %s)", g, rate >= g ? "met" : "MISSED")
      line = line sprintf("  peak RSS %5.1f MB", mb)
      if (rg > 0) line = line sprintf(" (goal <= %d: %s)", rg, mb <= rg ? "met" : "MISSED")
      print line
    }'
}

cd "$work"
base=${REPLAY_BENCH_BASELINE:-}
measure "stripe-sync replay --dry-run" 250000 100 "$events" "$bin" replay --dry-run --json events.ndjson
[ -n "$base" ] && measure "  baseline build" 0 0 "$events" "$base" replay --dry-run --json events.ndjson
measure "stripe-sync replay (fresh store)" 100000 100 "$events" "$bin" replay --json --db fresh.db events.ndjson
[ -n "$base" ] && measure "  baseline build" 0 0 "$events" "$base" replay --json --db fresh.db events.ndjson
measure "stripe-sync replay (table)" 0 0 "$events" "$bin" replay --dry-run events.ndjson
[ -n "$base" ] && measure "  baseline build" 0 0 "$events" "$base" replay --dry-run events.ndjson
cd - > /dev/null
if command -v node > /dev/null; then
  measure "naive Node $(node --version) (route only)" 0 0 "$events" node benches/naive_route.js "$work/events.ndjson"
fi
if command -v python3 > /dev/null; then
  measure "naive Python $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') (route only)" 0 0 "$events" python3 benches/naive_route.py "$work/events.ndjson"
fi

if [ -n "${REPLAY_BENCH_MILLION:-}" ]; then
  python3 benches/gen_events.py --events 1000000 --customers "$customers" --seed 2 > "$work/million.ndjson"
  echo "input: 1,000,000 events, $customers customers, $(du -m "$work/million.ndjson" | cut -f1) MB NDJSON"
  cd "$work"
  measure "1M: replay --dry-run" 0 100 1000000 "$bin" replay --dry-run --json million.ndjson
  measure "1M: replay (fresh store)" 0 100 1000000 "$bin" replay --json --db fresh.db million.ndjson
  cd - > /dev/null
fi
