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
# PostgreSQL will not run as root: as root (CI) the server runs as the
# system user postgres (or nobody when there is none), owner of the folder.
# Durability is off (fsync, full pages): the data lives as long as the test.
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
    # A fast shutdown: sessions end, nothing is written back.
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
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

# A random port below the kernel's ephemeral range, where the ports that
# other tests ask the kernel for never fall; one that is taken makes
# postgres exit at once: then try another.
ready=0
for _ in $(seq 1 10); do
    port=$((20000 + RANDOM % 12000))
    "${as_owner[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
        -c synchronous_commit=off -c max_connections=200 -c log_min_messages=warning \
        >>"$dir/postgres.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 500); do
        kill -0 "$pid" 2>/dev/null || break
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && ready=1 && break
        sleep 0.02 # polling a condition, bounded by the loop
    done
    [ $ready -eq 1 ] && break
    kill -INT "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
done
if [ $ready -ne 1 ]; then
    echo "postgres.sh: the server did not start:" >&2
    tail -20 "$dir/postgres.log" >&2
    exit 1
fi

echo "postgresql://mc@127.0.0.1:$port/postgres"
# Until the test closes our stdin (or goes away).
while read -r _; do :; done
