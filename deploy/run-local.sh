#!/usr/bin/env bash
# make run: a working chat on this machine. Starts a private redis-server
# (data in var/) that the chat processes reach over a Unix socket there,
# var/redis.sock, which costs less CPU per command than loopback TCP; it
# listens on 127.0.0.1:REDIS_PORT as well, for redis-cli. Then it
# migrates the database, creates the demo accounts
# and rooms once, then INTERFACES interface processes sharing one port and
# WORKERS workers, and prints the URL once they answer.
#
#   make run                         one interface, one worker, port 8000
#   make run INTERFACES=2 WORKERS=4  several, as in production
#
# Settings (environment): PORT (8000), REDIS_PORT (6390), CHAT_STATE (var),
# INTERFACES (1), WORKERS (1), BIN_DIR (bin: where the programs are).
#
# Stopping: Ctrl-C (SIGINT), SIGTERM or SIGHUP, to this script or to its
# whole process group, or any of its processes ending by itself, stops
# everything: the chat processes first, Redis last, each seen to end. The
# last lines say why, and so does the exit status: 130 after SIGINT, 143
# after SIGTERM, 129 after SIGHUP, 1 when a process ended by itself, the
# failing command's status when starting failed.
set -euo pipefail
cd "$(dirname "$0")/.."

state=${CHAT_STATE:-var}
port=${PORT:-8000}
redis_port=${REDIS_PORT:-6390}
interfaces=${INTERFACES:-1}
workers=${WORKERS:-1}
bin=${BIN_DIR:-bin}
mkdir -p "$state"
redis_socket=$(cd "$state" && pwd)/redis.sock
# sun_path holds 107 bytes: a deeper CHAT_STATE falls back to TCP
if [ ${#redis_socket} -le 107 ]; then
    redis_at=(-s "$redis_socket")
    redis_shown=$redis_socket
    export CHAT_REDIS_URL=unix://$redis_socket
    unix_socket=(--unixsocket "$redis_socket" --unixsocketperm 700) # the user's alone
else
    redis_at=(-p "$redis_port")
    redis_shown=127.0.0.1:$redis_port
    export CHAT_REDIS_URL=redis://127.0.0.1:$redis_port
    unix_socket=()
fi

export CHAT_DB=$state/chat.sqlite3
export CHAT_WEB_ROOT=web
export CHAT_LISTEN=127.0.0.1:$port

say() { echo "multichat: $*" >&2; }

# Bash's `wait PID` can block for good on a child that a `wait -n`
# interrupted by a signal already reaped, and a signal to the process group
# also ends any command started to look: whether a process runs is read
# from /proc with builtins only, and a zombie counts as ended.
running() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}
# until_ended SECONDS PID...: 0 once none of them runs, 1 after SECONDS.
until_ended() {
    local deadline=$((SECONDS + $1)) p
    shift
    for p in "$@"; do
        while running "$p"; do
            [ "$SECONDS" -lt "$deadline" ] || return 1
            sleep 0.05
        done
    done
}
# end SECONDS NAME PID...: SIGTERM, then SIGKILL for any still there SECONDS later.
end() {
    local secs=$1 name=$2
    shift 2
    kill -TERM "$@" 2>/dev/null
    until_ended "$secs" "$@" && return
    say "$name still running after ${secs} s: SIGKILL"
    kill -KILL "$@" 2>/dev/null
    until_ended 5 "$@"
}

pids=() # interfaces and workers
redis_pid=""
tick="" # the timer of the last wait
# stop REASON STATUS: ends every process started here, Redis last, then exits
# with STATUS. Nothing in it may end the script early: no errexit, and every
# kill tolerates a process that has already gone.
stop() {
    set +e
    trap '' INT TERM HUP # one stop at a time: a second Ctrl-C waits for it
    trap - EXIT
    say "$1"
    [ -z "$tick" ] || kill "$tick" 2>/dev/null
    if [ ${#pids[@]} -gt 0 ]; then
        end 15 "the chat processes" "${pids[@]}"
        say "the chat processes have stopped; stopping Redis"
    fi
    [ -z "$redis_pid" ] || end 15 redis-server "$redis_pid"
    say "stopped (exit status $2)"
    exit "$2"
}
# A signal only records why; the script stops at its next step, outside the
# trap (stopping inside it, while `wait -n` runs, loses children).
why=""
code=0
on_signal() { [ -n "$why" ] || { why=$1; code=$2; }; }
trap 'on_signal "SIGINT (Ctrl-C)" 130' INT
trap 'on_signal SIGTERM 143' TERM
trap 'on_signal SIGHUP 129' HUP
trap 'status=$?; [ -n "$why" ] || { why="starting failed (status $status)"; code=$status; }
      stop "$why: stopping" "$code"' EXIT
stop_if_signalled() { [ -z "$why" ] || exit "$code"; }

# Its own session: a signal to this process group (Ctrl-C) does not reach
# Redis, which stop() ends last.
setsid redis-server --port "$redis_port" --bind 127.0.0.1 "${unix_socket[@]}" --dir "$state" \
    --save 60 1 --appendonly no --daemonize no --loglevel warning --logfile redis.log &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli "${redis_at[@]}" ping >/dev/null 2>&1 && break
    stop_if_signalled
    running "$redis_pid" || break
    sleep 0.05
done
redis-cli "${redis_at[@]}" ping >/dev/null 2>&1 ||
    { say "redis-server does not answer on $redis_shown (see $state/redis.log)"; exit 1; }

"$bin/chatctl" migrate
if [ ! -f "$state/demo-accounts.txt" ]; then
    staff_pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    guest_pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$staff_pw" | "$bin/chatctl" user add admin --superuser --password-stdin
    printf '%s\n' "$guest_pw" | "$bin/chatctl" user add guest --password-stdin
    "$bin/chatctl" room add "General" >/dev/null
    "$bin/chatctl" room add "Random" >/dev/null
    "$bin/chatctl" room add "Staff lounge" --staff-only >/dev/null
    printf 'admin (superuser) %s\nguest             %s\n' "$staff_pw" "$guest_pw" >"$state/demo-accounts.txt"
    chmod 600 "$state/demo-accounts.txt"
fi
stop_if_signalled

declare -A names # pid -> program, for the line that says which one ended
for _ in $(seq "$workers"); do
    "$bin/chat-worker" &
    pids+=($!)
    names[$!]=chat-worker
done
for _ in $(seq "$interfaces"); do
    "$bin/chat-interface" &
    pids+=($!)
    names[$!]=chat-interface
done
names[$redis_pid]=redis-server

# The URL once it works: when the interfaces accept connections.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
all_running() {
    local p
    for p in "${pids[@]}"; do running "$p" || return 1; done
}
for _ in $(seq 200); do
    answers && break
    stop_if_signalled
    all_running || break
    sleep 0.05
done
stop_if_signalled
# When one has already ended, the wait below says which.
if all_running; then
    answers || say "nothing answers on 127.0.0.1:$port yet"
    cat <<MSG

  Multichat is running: http://127.0.0.1:$port/
  $interfaces interface(s), $workers worker(s), Redis on $redis_shown
  (redis-cli -p $redis_port), data in $state/

  Demo accounts (user  password):
$(sed 's/^/    /' "$state/demo-accounts.txt")

  Ctrl-C stops everything.

MSG
fi

# Until a signal or the first process to end. `wait -n` returns at once on a
# signal, but sees only processes that end while it waits: each turn first
# looks for one that ended before, and a timer of one second bounds the turn.
ended=""
status=0
while [ -z "$ended" ]; do
    stop_if_signalled
    for p in "${pids[@]}" "$redis_pid"; do
        running "$p" && continue
        ended=$p
        wait "$p" || status=$?
        break
    done
    [ -z "$ended" ] || break
    sleep 1 &
    tick=$!
    first=""
    status=0
    wait -n -p first "${pids[@]}" "$redis_pid" "$tick" || status=$?
    kill "$tick" 2>/dev/null || true
    stop_if_signalled
    [ "${first:-$tick}" = "$tick" ] || ended=$first
done
how="exited with status $status"
[ "$status" -le 128 ] || how="was killed by signal $((status - 128))"
stop "${names[$ended]:-a process} (pid $ended) $how: stopping the rest" 1
