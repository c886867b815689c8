#!/usr/bin/env bash
# Replay throughput and peak memory on generated events, each figure beside
# its goal (issue 21, on a 2-core machine), with the naive Node and Python
# baselines measured in the same run so the ratio is side by side.
#
#   benches/replay.sh [EVENTS] [CUSTOMERS]    100,000 events, 5,000 customers
#   REPLAY_BENCH_STDIN_EVENTS=N               events for the stdin memory check
#                                             (default 1,000,000: ~2.9 GB in $TMPDIR)
#   REPLAY_BENCH_MILLION=1                    adds the throughput of that input too
#   REPLAY_BENCH_BASELINE=/path/to/stripe-sync
#                                             measures another build (e.g. the
#                                             previous commit's) on the same input,
#                                             each right after this build's figure
#
# stdout: one tab-separated line per goal, for benches/all.sh:
#   result  measure  this tool  baseline(s)  ratio  goal  met|missed
# stderr: the machine, the inputs and every run, for a reader.
# Exit status 1 when `replay -` exceeds its memory bound (50 MB for a
# million events); a missed throughput goal is reported, not fatal.
set -euo pipefail
events=${1:-100000}
customers=${2:-5000}
stdin_events=${REPLAY_BENCH_STDIN_EVENTS:-1000000}
rate_goal_dry=300000
rate_goal_store=150000
rss_goal_mb=50
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/stripe-sync
benches=$PWD/benches
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "$@" >&2; }

python3 benches/gen_events.py --events "$events" --customers "$customers" --seed 1 > "$work/events.ndjson"
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "input: $events events, $customers customers, $(du -m "$work/events.ndjson" | cut -f1) MB NDJSON"

# Elapsed seconds and peak RSS (KB) of one command, into $work/time: GNU
# time when installed, else the kernel's rusage of the child (exact too).
timed() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > /dev/null 2> "$work/err" || true
  else
    python3 - "$work/time" "$@" 2> "$work/err" <<'EOF' || true
import resource, subprocess, sys, time
start = time.monotonic()
subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL)
took = time.monotonic() - start
with open(sys.argv[1], "w") as f:
    f.write("%.2f %d\n" % (took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
EOF
  fi
  tail -n 1 "$work/time"
}

# label, events, runs, command...: the median time and the largest peak RSS
# of the runs, into $secs, $rate (events/s) and $mb; one line to stderr.
measure() {
  local label=$1 n=$2 runs=$3; shift 3
  : > "$work/runs"
  for _ in $(seq "$runs"); do
    rm -f "$work"/fresh.db*
    timed "$@" >> "$work/runs"
  done
  read -r secs rate mb < <(sort -n "$work/runs" | awk -v n="$n" '
    { s[NR] = $1; if ($2 > kb) kb = $2 }
    END { m = s[int((NR + 1) / 2)]; printf "%.2f %.0f %.1f\n", m, n / m, kb / 1024 }')
  say "$(printf '%-40s %6.2f s %8.0f events/s  peak RSS %6.1f MB' "$label" "$secs" "$rate" "$mb")"
}

num() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
k() { awk -v r="$1" 'BEGIN { printf "%.0fk", r / 1000 }'; }
# measure, this tool, baselines, ratio, goal, met?
result() { printf 'result\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
verdict() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { print ((op == ">=" ? a >= b : a <= b) ? "met" : "missed") }'; }

# The baselines first: naive scripts that route the same file.
node_rate=0 python_rate=0 baselines=()
if command -v node > /dev/null; then
  measure "naive Node $(node --version) (route only)" "$events" 3 node "$benches/naive_route.js" "$work/events.ndjson"
  node_rate=$rate
  baselines+=("naive Node $(k "$rate")/s")
fi
if command -v python3 > /dev/null; then
  measure "naive Python $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') (route only)" "$events" 3 python3 "$benches/naive_route.py" "$work/events.ndjson"
  python_rate=$rate
  baselines+=("naive Python $(k "$rate")/s")
fi
baseline_text=$(IFS=,; echo "${baselines[*]:-none}" | sed 's/,/, /g')
# The ratio is to the faster naive baseline.
best=$(awk -v a="$node_rate" -v b="$python_rate" 'BEGIN { print (a > b ? a : b) }')
ratio() { awk -v a="$1" -v b="$best" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }

cd "$work"
base=${REPLAY_BENCH_BASELINE:-}
measure "stripe-sync replay --dry-run" "$events" 3 "$bin" replay --dry-run --json events.ndjson
result "replay --dry-run, $(num "$events") events" "$(k "$rate") events/s" "$baseline_text" \
  "$(ratio "$rate")" ">= $(k $rate_goal_dry) events/s" "$(verdict "$rate" ">=" $rate_goal_dry)"
[ -n "$base" ] && measure "  baseline build" "$events" 3 "$base" replay --dry-run --json events.ndjson
measure "stripe-sync replay (fresh store)" "$events" 3 "$bin" replay --json --db fresh.db events.ndjson
result "replay into a fresh store, $(num "$events") events" "$(k "$rate") events/s" "$baseline_text" \
  "$(ratio "$rate")" ">= $(k $rate_goal_store) events/s" "$(verdict "$rate" ">=" $rate_goal_store)"
[ -n "$base" ] && measure "  baseline build" "$events" 3 "$base" replay --json --db fresh.db events.ndjson
measure "stripe-sync replay (table)" "$events" 3 "$bin" replay --dry-run events.ndjson
[ -n "$base" ] && measure "  baseline build" "$events" 3 "$base" replay --dry-run events.ndjson

# `replay -`: NDJSON on stdin streams; its peak memory must not grow with
# the input. The naive Node script reads the same stdin, line by line.
python3 "$benches/gen_events.py" --events "$stdin_events" --customers "$customers" --seed 2 > stdin.ndjson
say "input: $stdin_events events, $customers customers, $(du -m stdin.ndjson | cut -f1) MB NDJSON, on stdin"
node_mb=""
if command -v node > /dev/null; then
  measure "naive Node, stdin" "$stdin_events" 1 bash -c 'exec node "$0" /dev/stdin < stdin.ndjson' "$benches/naive_route.js"
  node_mb=$mb
fi
measure "stripe-sync replay --dry-run -" "$stdin_events" 1 bash -c 'exec "$0" replay --dry-run --json - < stdin.ndjson' "$bin"
stdin_mb=$mb
stdin_ratio=$(awk -v a="$stdin_mb" -v b="${node_mb:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
stdin_verdict=$(verdict "$stdin_mb" "<=" $rss_goal_mb)
result "replay - (stdin), $(num "$stdin_events") events: peak RSS" "$stdin_mb MB" \
  "${node_mb:+naive Node $node_mb MB}" "$stdin_ratio" "<= $rss_goal_mb MB" "$stdin_verdict"
[ -n "$base" ] && measure "  baseline build" "$stdin_events" 1 bash -c 'exec "$0" replay --dry-run --json - < stdin.ndjson' "$base"

if [ -n "${REPLAY_BENCH_MILLION:-}" ]; then
  measure "$stdin_events: replay --dry-run" "$stdin_events" 1 "$bin" replay --dry-run --json stdin.ndjson
  measure "$stdin_events: replay (fresh store)" "$stdin_events" 1 "$bin" replay --json --db fresh.db stdin.ndjson
fi
cd - > /dev/null
[ "$stdin_verdict" = met ]
