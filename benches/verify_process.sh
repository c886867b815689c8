#!/usr/bin/env bash
# Whole-process cost of one `stripe-sync verify` call on a 2.5 KB event, timed
# beside a hello-world Rust binary built with the same [profile.release], in
# one run, interleaved (issue 21 goal: verify's median <= 1.5x hello-world's).
# Prints one tab-separated `result` line for benches/all.sh.
# Usage: benches/verify_process.sh [RUNS]   (builds both release binaries first)
#   VERIFY_PROCESS_BIN=PATH  time that stripe-sync binary instead (a link variant)
#   VERIFY_PROCESS_STATIC=1  also time a static-pie build of the same code, in
#                            the same loop (its own target dir: a second full
#                            release build the first time)
#
# Where the shipped (dynamic PIE) binary's extra start-up goes, measured in
# issue 21 (perf record -e page-faults; LD_DEBUG=statistics): about 250 page
# faults against hello-world's 72, of which ~88 are the dynamic loader writing
# 17,400 relative relocations into .data.rel.ro/.got (copy-on-write pages)
# and ~55 mimalloc's first touch of its pages. A static-pie link drops
# ld.so's loading of libc/libm/libgcc_s; it cannot be set from
# [profile.release] on stable Rust (crt-static in rustflags breaks the proc
# macros unless --target is given), hence `cargo rustc ... -- -C ...` here.
set -euo pipefail
runs=${1:-500}
cd "$(dirname "$0")/.."

bin=${VERIFY_PROCESS_BIN:-}
if [[ -z $bin ]]; then
  cargo build --release --quiet --bin stripe-sync
  bin=target/release/stripe-sync
fi
static_bin=
if [[ ${VERIFY_PROCESS_STATIC:-} == 1 ]]; then
  # `cargo rustc` gives the flag to the binary's crate only (proc macros and
  # build scripts stay dynamic); its own target dir keeps target/release as is.
  cargo rustc --release --quiet --bin stripe-sync --target-dir target/static-pie \
    -- -C target-feature=+crt-static
  static_bin=target/static-pie/release/stripe-sync
fi

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
# Time copies, as `cargo install` puts them: a file the linker just wrote sits
# in the page cache in small pieces, and costs ~30 more page faults a start
# than the same bytes copied (measured on ext4 in issue 21), a difference no
# installed binary has.
cp "$bin" "$dir/stripe-sync" && bin=$dir/stripe-sync
cp "$hello" "$dir/hello" && hello=$dir/hello
if [[ -n $static_bin ]]; then
  cp "$static_bin" "$dir/stripe-sync-static-pie" && static_bin=$dir/stripe-sync-static-pie
fi
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

python3 - "$runs" "$hello" "$bin" "$secret" "$sig" "$dir/p.json" "$static_bin" <<'PY'
import os, statistics, sys, time

runs, hello, bin_, secret, sig, payload, static_bin = sys.argv[1:]
runs = int(runs)
verify_args = ["verify", "--secret", secret, "--signature", sig, payload]
cases = {
    "hello-world": [hello],
    "stripe-sync verify": [bin_] + verify_args,
}
if static_bin:
    cases["verify, static-pie"] = [static_bin] + verify_args
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
GOAL = 1.5
measures = {
    "stripe-sync verify": "verify one-shot (process, 2.5 KB event)",
    "verify, static-pie": "verify one-shot, static-pie build (not shipped)",
}
for name, measure in measures.items():
    if name not in med:
        continue
    ratio = med[name] / med["hello-world"]
    verdict = "met" if ratio <= GOAL else "missed"
    print(f"{name} / hello-world: {ratio:.2f}x (goal <= {GOAL:.2f}x): {verdict}")
    print("\t".join([
        "result", measure, f"{med[name]:.2f} ms",
        f"hello-world Rust binary {med['hello-world']:.2f} ms",
        f"{ratio:.2f}", f"<= {GOAL:.1f}x hello-world", verdict,
    ]))
PY
