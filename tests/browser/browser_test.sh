#!/usr/bin/env bash
# Runs the browser tests (tests/browser/*.test.mjs) in Debian's Chromium with
# playwright-core from npm, printing TAP. Installs the npm packages of
# package-lock.json on first use.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
exec node --test --test-reporter=tap --test-concurrency=1 ./*.test.mjs
