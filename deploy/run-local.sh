#!/usr/bin/env bash
# make run: a working chat on this machine. Starts a private redis-server on
# loopback (data in var/), migrates the database, creates the demo accounts
# and rooms once, then INTERFACES interface processes sharing one port and
# WORKERS workers, and prints the URL. Ctrl-C stops everything.
#
#   make run                         one interface, one worker, port 8000
#   make run INTERFACES=2 WORKERS=4  several, as in production
set -euo pipefail
cd "$(dirname "$0")/.."

state=${CHAT_STATE:-var}
port=${PORT:-8000}
redis_port=${REDIS_PORT:-6390}
interfaces=${INTERFACES:-1}
workers=${WORKERS:-1}
mkdir -p "$state"

export CHAT_DB=$state/chat.sqlite3
export CHAT_REDIS_URL=redis://127.0.0.1:$redis_port
export CHAT_WEB_ROOT=web
export CHAT_LISTEN=127.0.0.1:$port

pids=()       # interfaces and workers
redis_pid=""
stop() {
    trap - INT TERM EXIT
    echo "stopping..."
    # The chat processes first, so that they finish with Redis still there.
    [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
    [ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null
    [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    return 0
}
trap stop INT TERM EXIT

# Its own session: Ctrl-C reaches the chat processes, and stop() ends Redis last.
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$state" --save 60 1 \
    --appendonly no --daemonize no --loglevel warning --logfile redis.log &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -p "$redis_port" ping >/dev/null

bin/chatctl migrate
if [ ! -f "$state/demo-accounts.txt" ]; then
    staff_pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    guest_pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$staff_pw" | bin/chatctl user add admin --superuser --password-stdin
    printf '%s\n' "$guest_pw" | bin/chatctl user add guest --password-stdin
    bin/chatctl room add "General" >/dev/null
    bin/chatctl room add "Random" >/dev/null
    bin/chatctl room add "Staff lounge" --staff-only >/dev/null
    printf 'admin (superuser) %s\nguest             %s\n' "$staff_pw" "$guest_pw" >"$state/demo-accounts.txt"
    chmod 600 "$state/demo-accounts.txt"
fi

for _ in $(seq "$workers"); do
    bin/chat-worker &
    pids+=($!)
done
for _ in $(seq "$interfaces"); do
    bin/chat-interface &
    pids+=($!)
done

cat <<MSG

  Multichat is running: http://127.0.0.1:$port/
  $interfaces interface(s), $workers worker(s), Redis on 127.0.0.1:$redis_port, data in $state/

  Demo accounts (user  password):
$(sed 's/^/    /' "$state/demo-accounts.txt")

  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" "$redis_pid" || true
echo "a process exited; stopping the rest" >&2
