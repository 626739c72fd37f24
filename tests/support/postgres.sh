#!/usr/bin/env bash
# tests/support/postgres.sh: a private PostgreSQL server for one test program.
#
#   tests/support/postgres.sh        (as a child of the test, stdin a pipe)
#
# Creates a cluster in a fresh temporary folder (initdb), starts postgres on a
# free loopback port with its socket in that folder, prints one line, the
# server's URL (postgresql://mc@127.0.0.1:PORT/postgres; role mc is its
# superuser, no password on loopback), and waits. When its stdin reaches
# end-of-file (the test closed it, or died) or it gets SIGTERM or SIGINT, it
# stops the server and removes the folder. On failure it prints nothing on
# stdout, the reason on stderr, and exits non-zero.
#
# Meanwhile it takes commands on stdin, one a line, and answers each with a
# line once done: "stop" stops the server as `pg_ctl stop -m fast` does
# (every session ends; "stopped"), "start" starts it again on the same
# folder and port ("started", or "failed").
#
# For clients on other networks than loopback (hosts of a test, each on a
# network of its own): MC_PG_LISTEN, more addresses to listen on, and
# MC_PG_TRUST, networks (ADDRESS/PREFIX) whose clients need no password;
# both space-separated.
#
# PostgreSQL will not run as root: as root (CI) the server runs as the
# system user postgres (or nobody when there is none), owner of the folder.
# Durability is off (fsync, full pages, synchronous commits): the data lives
# as long as the test. MC_PG_SETTINGS, more server settings (NAME=VALUE,
# space-separated), come after these and win: a benchmark turns durability
# back on so.
# MC_PG_BIN names the folder of initdb and postgres (default: the newest
# under /usr/lib/postgresql).
set -u
bin=${MC_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ ! -x "$bin/postgres" ]; then
    echo "postgres.sh: no PostgreSQL server found (install postgresql, or set MC_PG_BIN)" >&2
    exit 1
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    owner=postgres
    id "$owner" >/dev/null 2>&1 || owner=nobody
    as_owner=(setpriv --reuid="$owner" --regid="$(id -g "$owner")" --init-groups --)
fi
dir=$(mktemp -d /tmp/mc-pg-XXXXXX)
[ ${#as_owner[@]} -eq 0 ] || chown "$owner" "$dir"
pid=""
stop() {
    trap - EXIT INT TERM
    stop_server
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 0' INT TERM

if ! "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U mc --auth=trust --no-sync -E UTF8 \
    --locale=C >"$dir/initdb.log" 2>&1; then
    echo "postgres.sh: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
fi

listen=127.0.0.1
settings=()
for setting in ${MC_PG_SETTINGS:-}; do settings+=(-c "$setting"); done
for address in ${MC_PG_LISTEN:-}; do listen="$listen,$address"; done
for net in ${MC_PG_TRUST:-}; do echo "host all all $net trust" >>"$dir/data/pg_hba.conf"; done

# Starts the server on port $1; its pid in $pid. Returns 0 once it answers,
# 1 when it exited (the port is taken) or did not answer in 10 s.
start_server() {
    "${as_owner[@]}" "$bin/postgres" -D "$dir/data" -p "$1" -k "$dir" \
        -c listen_addresses="$listen" -c fsync=off -c full_page_writes=off \
        -c synchronous_commit=off -c max_connections=200 -c log_min_messages=warning "${settings[@]}" \
        >>"$dir/postgres.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 500); do
        kill -0 "$pid" 2>/dev/null || break
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$1" && return 0
        sleep 0.02 # polling a condition, bounded by the loop
    done
    stop_server
    return 1
}

# A fast shutdown, as pg_ctl stop -m fast: sessions end, nothing is written
# back. Returns once the server is gone.
stop_server() {
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    pid=""
}

# A random port below the kernel's ephemeral range, where the ports that
# other tests ask the kernel for never fall; one that is taken makes
# postgres exit at once: then try another.
ready=0
for _ in $(seq 1 10); do
    port=$((20000 + RANDOM % 12000))
    start_server "$port" && ready=1 && break
done
if [ $ready -ne 1 ]; then
    echo "postgres.sh: the server did not start:" >&2
    tail -20 "$dir/postgres.log" >&2
    exit 1
fi

echo "postgresql://mc@127.0.0.1:$port/postgres"
# Until the test closes our stdin (or goes away).
while read -r command; do
    case $command in
    stop) stop_server && echo stopped ;;
    start) if start_server "$port"; then echo started; else echo failed; fi ;;
    esac
done
