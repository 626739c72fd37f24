# tests/bench/servers.sh: the private servers of the benchmarks, sourced by
# run.sh and cost.sh. Everything listens on free loopback ports and keeps
# its files in $dir, a temporary folder made here; every process started is
# appended to the array pids, killed (and $dir removed) when the script
# exits.
#
# Redis listens on a free loopback port and on a Unix socket in $dir; the
# chat processes, rcli and the ceilings reach it over the socket, which
# costs both sides less CPU per command, unless MC_BENCH_REDIS=tcp.
#
# Needs: B (the build tree), root (the source tree), BENCH_NAME (names $dir).
# Sets:  dir, pids; rport, rpid, redis_argv (Redis and how it was started),
#        redis_url (CHAT_REDIS_URL), redis_at (redis-cli's and
#        redis-benchmark's options to reach it), rcli; USERS, PASSWORD,
#        ROOMS (ten room ids, comma-separated), ROOM1; wpid (the worker).

MC_BENCH_REDIS=${MC_BENCH_REDIS:-unix}
case $MC_BENCH_REDIS in
unix | tcp) ;;
*)
    echo "bench: MC_BENCH_REDIS is unix (the default) or tcp, not $MC_BENCH_REDIS" >&2
    exit 2
    ;;
esac

dir=$(mktemp -d "/tmp/mc-$BENCH_NAME-XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup INT TERM EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# kv LINE KEY: the value of KEY=VALUE in a line of chat-bench output.
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
wait_http() {
    for _ in $(seq 1 500); do
        curl -sf "http://$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.01
    done
    echo "bench: nothing answers on $1" >&2
    exit 1
}
log() { echo "== $*" >&2; }

# start_redis: a fresh redis-server, nothing saved.
start_redis() {
    rport=$(free_port)
    redis_argv=(redis-server --port "$rport" --bind 127.0.0.1 --unixsocket "$dir/redis.sock"
        --unixsocketperm 700 --dir "$dir" --save "" --appendonly no --daemonize no
        --loglevel warning --logfile "$dir/redis.log" --maxclients 10000)
    if [ "$MC_BENCH_REDIS" = tcp ]; then
        redis_url=redis://127.0.0.1:$rport
        redis_at=(-p "$rport")
    else
        redis_url=unix://$dir/redis.sock
        redis_at=(-s "$dir/redis.sock")
    fi
    "${redis_argv[@]}" &
    rpid=$!
    pids+=($rpid)
    for _ in $(seq 1 500); do rcli ping >/dev/null 2>&1 && break; sleep 0.01; done
    rcli ping >/dev/null
}
rcli() { redis-cli "${redis_at[@]}" "$@"; }

# setup_db: a database with 1,000 users (bench1.., fast password hashes: the
# benchmarks measure chat, not argon2) and 10 rooms.
setup_db() {
    export CHAT_DB=$dir/chat.sqlite3 CHAT_REDIS_URL=$redis_url CHAT_WEB_ROOT=$root/web
    export CHAT_LOG_LEVEL=warn
    USERS=1000
    PASSWORD=bench-password
    "$B/bin/chatctl" migrate >/dev/null
    for i in $(seq 1 $USERS); do echo "bench$i $PASSWORD"; done |
        "$B/bin/chatctl" --argon2-memory 64 --argon2-time 1 user import >/dev/null
    ROOMS=""
    local r
    for r in $(seq 1 10); do ROOMS="$ROOMS${ROOMS:+,}$("$B/bin/chatctl" room add "bench room $r")"; done
    ROOM1=${ROOMS%%,*}
}

# start_worker [WRAPPER...]: one chat-worker, run by WRAPPER (valgrind, say)
# when given. Enter and leave notices are off: with 1,000 sockets joining
# one room they alone would be a million deliveries before the first chat
# message. The rate limits are off: a load generator is one address and a
# few users sending far above what one person may.
start_worker() {
    "$@" "$B/bin/chat-worker" --notify-enter-leave off --rate-messages 0 --rate-connects 0 \
        >>"$dir/worker.log" 2>&1 &
    wpid=$!
    pids+=($wpid)
}

# The interfaces' limits per address and per socket are off as well, for
# the same reason, unless IFC_LIMITS gives others ("": their defaults).
# (Messages in flight per socket keep their limit: it refuses nothing, it
# only paces a socket.)
NO_LIMITS="--address-open-max 0 --address-rate 0 --socket-rate 0 --socket-kib-rate 0"

# start_ifc PORT [WRAPPER...]: prints the pid of a chat-interface on PORT.
start_ifc() {
    local port=$1
    shift
    # shellcheck disable=SC2086
    CHAT_LISTEN=127.0.0.1:$port "$@" "$B/bin/chat-interface" --echo-path /echo/ \
        ${IFC_LIMITS-$NO_LIMITS} >>"$dir/ifc-$port.log" 2>&1 &
    echo $!
}

# Waits until the worker has caught up (nothing queued or in flight for a while),
# so that one run's disconnects do not slow the next run's logins and steps.
settle() {
    local quiet=0 left
    for _ in $(seq 1 300); do
        # The queue, and the in-flight lists: a worker takes 32 envelopes at once.
        left=$(rcli eval "local n = redis.call('LLEN', 'mc:worker')
            for _, k in ipairs(redis.call('KEYS', 'mc:inflight:*')) do n = n + redis.call('LLEN', k) end
            return n" 0)
        if [ "$left" = 0 ]; then quiet=$((quiet + 1)); else quiet=0; fi
        [ $quiet -ge 5 ] && return 0
        sleep 0.1
    done
}
