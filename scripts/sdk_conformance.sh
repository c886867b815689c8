#!/usr/bin/env bash
# Cross-check `stripe-sync verify` and `sign` against the official SDKs:
# stripe-node's webhooks.signature.verifyHeader and stripe-python's
# WebhookSignature.verify_header. Needs node, python3 and the npm and PyPI
# registries (it installs both SDKs into a temp dir); not part of `cargo test`,
# which stays hermetic. Usage: scripts/sdk_conformance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm install --silent stripe > /dev/null 2>&1 && pip install -q --target py stripe > /dev/null 2>&1)
python3 scripts/sdk_conformance.py "$PWD/target/release/stripe-sync" "$work"
