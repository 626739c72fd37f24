#!/usr/bin/env bash
# Runs the benchmarks of a build tree against a private redis-server on a
# free loopback port: chl_bench, then redis-benchmark on the same server for
# a baseline of what Redis itself does with LPUSH and RPOP.
#
#   tests/bench/run.sh BUILD_DIR [MESSAGES]
set -euo pipefail
B=${1:?usage: tests/bench/run.sh BUILD_DIR [MESSAGES]}
N=${2:-20000}
bench=$B/bin/chl-bench
[ -x "$bench" ] || { echo "run.sh: $bench is missing (make FLAVOUR=release programs)" >&2; exit 1; }

dir=$(mktemp -d /tmp/mc-bench-XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup INT TERM EXIT

# A free port: the kernel picks one for a socket bound to port 0.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --daemonize no --loglevel warning --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 1 500); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: redis-server did not start" >&2; exit 1; }
    sleep 0.01
done
redis-cli -p "$port" ping >/dev/null

echo "== $(redis-server --version | cut -d' ' -f1-3), $(nproc) cores, $(uname -m)"
echo "== $bench redis://127.0.0.1:$port $N"
"$bench" "redis://127.0.0.1:$port" "$N"
echo "== redis-benchmark -p $port -t lpush,rpop -q -n 100000"
# -q still draws progress with carriage returns: keep the final lines only.
redis-benchmark -p "$port" -t lpush,rpop -q -n 100000 | tr '\r' '\n' | grep -E '^[A-Z]+: [0-9.]+ requests'
