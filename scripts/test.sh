#!/usr/bin/env bash
# The whole test suite: set-up (Debian packages when root, npm ci, build), type check, then unit and lab tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
node scripts/run-tests.mjs all "$@"
