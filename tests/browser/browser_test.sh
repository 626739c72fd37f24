#!/usr/bin/env bash
# Runs the browser tests (tests/browser/*.test.mjs) in Debian's Chromium with
# playwright-core from npm, printing TAP.
set -euo pipefail
cd "$(dirname "$0")"
source ../lib/npm-ready.sh
exec node ../lib/run-tests.mjs ./*.test.mjs
