#!/usr/bin/env bash
# Installs stripe-node (the version pinned in package.json and
# package-lock.json) for server.js, under the target directory, never in
# the source tree. Idempotent: does nothing when that version is in place.
#
#   benches/baselines/node-endpoint/install.sh [DIR]
#       default DIR: ${CARGO_TARGET_DIR:-target}/bench-baselines/node-endpoint
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dir=${1:-${CARGO_TARGET_DIR:-$root/target}/bench-baselines/node-endpoint}
command -v node > /dev/null || { echo "install.sh: node is not installed" >&2; exit 1; }
command -v npm > /dev/null || { echo "install.sh: npm is not installed" >&2; exit 1; }
mkdir -p "$dir"
want=$(node -p "require('$here/package.json').dependencies.stripe")
have=$(node -p "try { require('$dir/node_modules/stripe/package.json').version } catch { '' }")
if [ "$have" = "$want" ]; then
  exit 0
fi
cp "$here/package.json" "$dir/"
if [ -f "$here/package-lock.json" ]; then
  cp "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
else
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error) >&2
fi
echo "install.sh: stripe-node $want in $dir" >&2
