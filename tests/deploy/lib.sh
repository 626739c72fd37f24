# shellcheck shell=bash
# Sourced by the tests/deploy scripts: TAP results (tests/lib/tap.sh), free ports, waiting for an
# event with a deadline, processes that are still there, and a private
# redis-server. Each script sets `work` (its temporary folder) first.
#
#   report STATUS NAME [DETAIL]   one TAP line; DETAIL as "# " comments
#   finish                        exit status: 1 if anything failed
src=${MC_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bin=${MC_BUILD:-$src/build/asan}/bin
# Each make here starts afresh, as a user's would, not as part of `make check`.
unset MAKEFLAGS MAKELEVEL MFLAGS

# shellcheck source=tests/lib/tap.sh
. "$src/tests/lib/tap.sh"

# A free port below the kernel's ephemeral range: `make run` builds for
# a while before it listens, and meanwhile the kernel hands ports of that
# range to anyone's listen(0) and outgoing connections (other tests pick
# their ports so); below it only an explicit bind takes one.
free_port() {
    node -e '
const net = require("net");
const low = Number(require("fs").readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
  .trim().split(/\s+/)[0]);
const pick = () => (low > 11024 ? 10000 + Math.floor(Math.random() * (low - 10000)) : 0);
function attempt(left) {
  const s = net.createServer();
  s.once("error", () => (left > 0 ? attempt(left - 1) : process.exit(1)));
  s.listen(left > 0 ? pick() : 0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
}
attempt(50);'
}

# until_true SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds
# (0) or SECONDS pass (1).
until_true() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.02
    done
}

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}
gone() { ! alive "$1"; }
any_alive() { # any_alive PID...: prints the ones that are
    local p found=1
    for p in "$@"; do alive "$p" && { echo "$p $(cat "/proc/$p/comm" 2>/dev/null)"; found=0; }; done
    return $found
}
# descendants PID: every process under PID, children first.
descendants() {
    local c
    for c in $(pgrep -P "$1"); do
        echo "$c"
        descendants "$c"
    done
}

redis_answers() { redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; }
http_answers() { curl -sf -o /dev/null --max-time 2 "http://$1/healthz"; }

# start_redis PORT DIR: a private redis-server; its pid in redis_pid.
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --save "" --appendonly no \
        --daemonize no --loglevel warning --logfile "$2/redis.log" &
    redis_pid=$!
    until_true 10 redis_answers "$1"
}

# wait_for_exit SECONDS PID: waits for PID, a background job of this shell,
# to end; its exit status in wait_status. After SECONDS, kills it (its process
# group, when it leads one) and returns 1.
wait_for_exit() {
    local ok=0
    if ! until_true "$1" gone "$2"; then
        ok=1
        kill -KILL -- "-$2" 2>/dev/null || kill -KILL "$2" 2>/dev/null
    fi
    wait "$2" 2>/dev/null
    wait_status=$?
    return $ok
}
