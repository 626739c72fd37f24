#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package that building, running and
# testing Multichat needs and that is not installed yet. Idempotent and quiet
# when nothing is missing. `make run` and `make check` call it first, and
# `make bench` with --bench.
set -euo pipefail

packages=(
    gcc make pkg-config
    libuv1-dev libhiredis-dev libsqlite3-dev libcjson-dev libargon2-dev
    zlib1g-dev            # permessage-deflate (RFC 7692)
    node-llhttp           # llhttp sources: /usr/share/llhttp/*.c
    redis-server redis-tools redis-sentinel   # redis-sentinel: the failover tests
    libcmocka-dev         # unit-test library
    clang libclang-rt-14-dev llvm   # libFuzzer targets and symbolised reports
    sqlite3
    libpq-dev postgresql           # the PostgreSQL backend; tests start a private server
    systemd nginx-light openssl   # the deploy/ checks: systemd-analyze verify, nginx -t
    curl                          # and their HTTP requests
    chromium                       # browser tests (driven by playwright-core from npm)
)
# `make bench` (--bench) also profiles (system calls, where CPU time goes) and
# draws the ladders (gnuplot).
[ "${1:-}" != --bench ] || packages+=(strace linux-perf gnuplot-nox)
# Node.js for the browser and protocol tests: Debian's, unless one is present.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
