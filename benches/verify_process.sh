#!/usr/bin/env bash
# Whole-process cost of one `stripe-sync verify` call (issue goal: < 5 ms median).
# Usage: benches/verify_process.sh [RUNS]   (builds the release binary first)
set -euo pipefail
runs=${1:-300}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/stripe-sync
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/p.json" <<'PY'
import json, sys
ev = {"id": "evt_bench", "object": "event", "type": "invoice.paid",
      "data": {"object": {"lines": [{"id": "il_%d" % i, "amount": 2000} for i in range(60)]}}}
open(sys.argv[1], "w").write(json.dumps(ev, indent=2)[:2500].rsplit("}", 1)[0] + "}")
PY
secret=whsec_bench_secret
sig=$("$bin" sign --secret "$secret" "$dir/p.json")
times=()
for _ in $(seq "$runs"); do
  s=$(date +%s%N)
  "$bin" verify --secret "$secret" --signature "$sig" "$dir/p.json" >/dev/null || true
  e=$(date +%s%N)
  times+=($(( (e - s) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" '
  { a[NR] = $1 }
  END { printf "stripe-sync verify, %d runs: median %.2f ms, p90 %.2f ms, min %.2f ms\n",
        n, a[int(n/2)+1]/1000, a[int(n*0.9)]/1000, a[1]/1000 }'
