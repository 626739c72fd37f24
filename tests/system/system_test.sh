#!/usr/bin/env bash
# Runs the system tests (tests/system/*.test.mjs): whole Multichats of real
# processes (redis-server, chat-worker, chat-interface) driven by WebSocket
# clients from npm's ws, with processes killed and restarted. Prints TAP.
set -euo pipefail
cd "$(dirname "$0")"
source ../lib/npm-ready.sh
exec node ../lib/run-tests.mjs --timeout=120000 ./*.test.mjs
