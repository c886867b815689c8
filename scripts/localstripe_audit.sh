#!/usr/bin/env bash
# Cross-check `stripe-sync audit` against localstripe (PyPI), an independent
# Stripe stand-in: build an account there, `resync --all` it, write the app's
# table with a sync written from the pattern (not stripe-sync's), and expect
# audit to find it in sync, then to find exactly the drift put into it.
# Needs python3 and PyPI (installs localstripe into a temp venv) unless
# LOCALSTRIPE points at an existing `localstripe` console script. Not part of
# `cargo test`, which stays hermetic. Usage: scripts/localstripe_audit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n "${LOCALSTRIPE:-}" && -x "${LOCALSTRIPE}" ]]; then
  ls_bin=$LOCALSTRIPE
else
  python3 -m venv "$work/venv"
  if ! "$work/venv/bin/pip" install -q --disable-pip-version-check localstripe > "$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    exit 2
  fi
  ls_bin=$work/venv/bin/localstripe
fi
python3 scripts/localstripe_audit.py "$PWD/target/release/stripe-sync" "$ls_bin" "$work"
