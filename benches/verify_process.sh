#!/usr/bin/env bash
# Whole-process cost of one `stripe-sync verify` call on a 2.5 KB event, timed
# beside a hello-world Rust binary built with the same [profile.release], in
# one run, interleaved (issue 12 goal: verify's median <= 1.2x hello-world's).
# Usage: benches/verify_process.sh [RUNS]   (builds both release binaries first)
set -euo pipefail
runs=${1:-500}
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin stripe-sync
bin=target/release/stripe-sync

# hello-world: its own package under target/, with this crate's release
# profile (rewritten only when that changes, so cargo keeps the build).
hello_dir=target/verify-process-hello
write_if_changed() { cmp -s - "$1" 2>/dev/null <<<"$2" || printf '%s\n' "$2" > "$1"; }
mkdir -p "$hello_dir/src"
write_if_changed "$hello_dir/Cargo.toml" "$(
  printf '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2024"\n\n[workspace]\n\n'
  awk '/^\[/ { on = ($0 == "[profile.release]") } on' Cargo.toml
)"
write_if_changed "$hello_dir/src/main.rs" 'fn main() {
    println!("hello, world");
}'
cargo build --release --quiet --manifest-path "$hello_dir/Cargo.toml"
hello=$hello_dir/target/release/hello

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/p.json" <<'PY'
import json, sys
lines = [{"id": "il_%d" % i, "amount": 2000, "currency": "usd"} for i in range(100)]
ev = {"id": "evt_bench", "object": "event", "type": "invoice.paid",
      "data": {"object": {"object": "invoice", "lines": lines}}}
while len(json.dumps(ev, indent=2)) > 2500:
    lines.pop()
open(sys.argv[1], "w").write(json.dumps(ev, indent=2))
PY
secret=whsec_bench_secret
sig=$("$bin" sign --secret "$secret" "$dir/p.json")

python3 - "$runs" "$hello" "$bin" "$secret" "$sig" "$dir/p.json" <<'PY'
import os, statistics, sys, time

runs, hello, bin_, secret, sig, payload = sys.argv[1:]
runs = int(runs)
cases = {
    "hello-world": [hello],
    "stripe-sync verify": [bin_, "verify", "--secret", secret, "--signature", sig, payload],
}
null = os.open(os.devnull, os.O_WRONLY)
actions = [(os.POSIX_SPAWN_DUP2, null, 1)]
env = {k: v for k, v in os.environ.items() if k != "STRIPE_WEBHOOK_SECRET"}
stats = {name: {"ms": [], "faults": [], "cpu": []} for name in cases}
warmup = 20
for i in range(warmup + runs):
    for name, argv in cases.items():  # interleaved: load on the machine hits both alike
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        _, status, ru = os.wait4(pid, 0)
        ms = (time.perf_counter_ns() - start) / 1e6
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{name} exited with {os.waitstatus_to_exitcode(status)}: {argv}")
        if i >= warmup:
            s = stats[name]
            s["ms"].append(ms)
            s["faults"].append(ru.ru_minflt + ru.ru_majflt)
            s["cpu"].append((ru.ru_utime + ru.ru_stime) * 1e3)

med = {name: statistics.median(s["ms"]) for name, s in stats.items()}
for name, s in stats.items():
    ms = sorted(s["ms"])
    print(f"{name:<20} {runs} runs: median {med[name]:.2f} ms (p10 {ms[len(ms) // 10]:.2f}, "
          f"p90 {ms[len(ms) * 9 // 10]:.2f}); CPU {statistics.mean(s['cpu']):.2f} ms, "
          f"page faults {statistics.median(s['faults']):.0f}")
ratio = med["stripe-sync verify"] / med["hello-world"]
print(f"verify / hello-world: {ratio:.2f}x (goal <= 1.20x): {'met' if ratio <= 1.2 else 'missed'}")
PY
