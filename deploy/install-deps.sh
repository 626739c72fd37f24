#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package that Multichat needs and
# that is not installed yet. Idempotent and quiet when nothing is missing.
#
#   install-deps.sh          building, running and testing (`make check`)
#   install-deps.sh --run    building and running only (`make run`): a
#                            newcomer's first run waits for no browser,
#                            compiler of fuzz targets or database server
#   install-deps.sh --bench  testing, and profiling and plotting (`make bench`)
set -euo pipefail
mode=${1:-}
case $mode in "" | --run | --bench) ;; *)
    echo "usage: install-deps.sh [--run | --bench]" >&2
    exit 2
    ;;
esac

packages=(
    gcc make pkg-config
    libuv1-dev libhiredis-dev libsqlite3-dev libcjson-dev libargon2-dev
    zlib1g-dev            # permessage-deflate (RFC 7692)
    libpq-dev             # the PostgreSQL backend's client library
    node-llhttp           # llhttp sources: /usr/share/llhttp/*.c
    redis-server redis-tools
)
[ "$mode" = --run ] || packages+=(
    redis-sentinel        # the failover tests
    libcmocka-dev         # unit-test library
    clang libclang-rt-14-dev llvm   # libFuzzer targets and symbolised reports
    sqlite3
    postgresql                     # tests start a private PostgreSQL server
    systemd nginx-light openssl   # the deploy/ checks: systemd-analyze verify, nginx -t
    curl                          # and their HTTP requests
    chromium                       # browser tests (driven by playwright-core from npm)
    gnuplot-nox                    # the bench's plots, and their test
)
# `make bench` (--bench) also profiles: system calls, where CPU time goes.
[ "$mode" != --bench ] || packages+=(strace linux-perf)
# Node.js for the browser and protocol tests: Debian's, unless one is present.
if [ "$mode" != --run ]; then
    command -v node >/dev/null 2>&1 || packages+=(nodejs)
    command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

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
