#!/usr/bin/env bash
# Runs the standard benchmarks of a build tree and writes docs/performance.md.
#
#   tests/bench/run.sh BUILD_DIR
#
# Everything runs on loopback against private servers in a temporary folder:
# one redis-server on a free port and a Unix socket (servers.sh: the chat
# processes use the socket unless MC_BENCH_REDIS=tcp), one chat-worker, one
# or two chat-interface processes. In order:
#   1. the ceilings: redis-benchmark, chl-bench (the channel layer), and
#      chat-bench against the interface's echo endpoint (no worker);
#   2. Redis commands per chat message (INFO commandstats, two runs of
#      different lengths, so that logins and connects cancel out);
#   3. chat-bench ladders of rising rates: 100 clients in 10 rooms and 1,000
#      clients in 1 room, on one interface and then on two; then the first
#      again with the worker on a private PostgreSQL (tests/support/
#      postgres.sh) in place of sqlite;
#   4. the cost of one message (cost.sh): CPU time, Redis commands and
#      system calls per message at 2,000 msg/s and at the best rate, and
#      instructions per message of each process under callgrind;
#   5. memory per idle authenticated socket: RSS of a fresh interface with
#      N sockets minus its RSS with none, for N = 10,000 and, when the file
#      descriptor limit allows, 100,000; and 10,000 sockets that negotiated
#      permessage-deflate;
#   6. compression: 100 clients in 10 rooms at 2,000 msg/s with and without
#      permessage-deflate, rounds alternating: bytes on the wire and CPU per
#      message of the interface, the worker, Redis and the load generator.
#   7. abuse: 100 clients in 10 rooms chat at a moderate rate on an
#      interface with the limits a production one has, first alone, then
#      while one more socket floods (history, 60 KiB junk frames, leave and
#      join as fast as the interface reads them); the others' latency and
#      loss side by side.
# Each ladder's steps are also kept as data, docs/bench/NAME.tsv, and drawn
# from it by tests/bench/plot.sh as docs/bench/NAME.svg, which the report shows.
# Settings (environment): MC_BENCH_OUT (default docs/performance.md; "-" for
# stdout only, the data and plots then stay in the temporary folder),
# MC_BENCH_STEP_MS (3000), MC_BENCH_BIG (1: try 100,000 sockets),
# MC_BENCH_CALLGRIND (1: instructions per message under callgrind).
set -euo pipefail
export LC_ALL=C
B=${1:?usage: tests/bench/run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=$(cd "$B" && pwd)
OUT=${MC_BENCH_OUT:-$root/docs/performance.md}
STEP_MS=${MC_BENCH_STEP_MS:-3000}
BIG=${MC_BENCH_BIG:-1}
for p in chat-bench chl-bench chat-interface chat-worker chatctl; do
    [ -x "$B/bin/$p" ] || { echo "run.sh: $B/bin/$p is missing (make FLAVOUR=release programs)" >&2; exit 1; }
done

# 100,000 sockets need as many descriptors in the interface and in chat-bench;
# without the right to raise the hard limit, the soft one goes up to it.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)

BENCH_NAME=bench
# shellcheck source=tests/bench/servers.sh
. "$here/servers.sh"

# ---- Servers ---------------------------------------------------------------
start_redis
setup_db
start_worker
p1=$(free_port)
ipid1=$(start_ifc "$p1")
pids+=($ipid1)
wait_http "127.0.0.1:$p1"

cb() {
    settle
    "$B/bin/chat-bench" --password "$PASSWORD" --duration "$STEP_MS" "$@"
}

# ---- 1. Ceilings -----------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ncpu=$(nproc)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rver=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
log "machine: $ncpu x $cpu, redis $rver over $MC_BENCH_REDIS, ulimit -n $nofile"

log "redis-benchmark ${redis_at[*]} -t lpush,rpop -q -n 100000"
rb=$(redis-benchmark "${redis_at[@]}" -t lpush,rpop -q -n 100000 | tr '\r' '\n' |
    grep -E '^[A-Z]+: [0-9.]+ requests')
echo "$rb" >&2
rb_lpush=$(sed -n 's/^LPUSH: \([0-9.]*\).*/\1/p' <<<"$rb" | cut -d. -f1)
rb_rpop=$(sed -n 's/^RPOP: \([0-9.]*\).*/\1/p' <<<"$rb" | cut -d. -f1)
rb_p16=$(redis-benchmark "${redis_at[@]}" -t lpush -q -n 200000 -P 16 | tr '\r' '\n' |
    sed -n 's/^LPUSH: \([0-9.]*\) requests.*/\1/p' | cut -d. -f1)
rcli del mylist >/dev/null

# how the commands below reach Redis, in the report (the folder is temporary)
if [ "$MC_BENCH_REDIS" = tcp ]; then
    redis_url_shown=redis://127.0.0.1:P redis_at_shown="-p P"
else
    redis_url_shown=unix://S redis_at_shown="-s S"
fi
log "chl-bench $redis_url 20000"
chl=$("$B/bin/chl-bench" "$redis_url" 20000)
echo "$chl" >&2
rcli --scan --pattern 'bench:*' | xargs -r redis-cli "${redis_at[@]}" del >/dev/null

ECHO_RATES=5000,10000,20000,40000,60000,80000,100000,130000,160000,200000
log "chat-bench echo: 100 clients at $ECHO_RATES msg/s"
echo_out=$(cb --target "127.0.0.1:$p1" --echo-path /echo/ --clients 100 --rates "$ECHO_RATES")
echo "$echo_out" >&2
echo_best=$(kv "$(grep '^best' <<<"$echo_out")" rate)

# ---- 2. Redis commands per chat message ------------------------------------
# First, on a Redis that nothing else has used yet.
# Two runs that differ only in how long they send: the difference of the
# command counts is what the extra messages cost.
cmdstats() { rcli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p' | sort; }
cmdrun() { # cmdrun MS: prints the messages sent
    local out
    out=$(cb --target "127.0.0.1:$p1" --clients 100 --users 100 --rooms "$ROOMS" --rates 200 \
        --duration "$1" --retries 0) # a step run again would count twice
    kv "$(grep '^step' <<<"$out")" sent
}
sleep 1
rcli config resetstat >/dev/null
sentA=$(cmdrun 1000)
sleep 1
statsA=$(cmdstats)
rcli config resetstat >/dev/null
sentB=$(cmdrun 4000)
sleep 1
statsB=$(cmdstats)
echo "commandstats after $sentA messages: $(tr '\n' ' ' <<<"$statsA")" >&2
echo "commandstats after $sentB messages: $(tr '\n' ' ' <<<"$statsB")" >&2
cmd_table=$(join -a1 -a2 -e 0 -o 0,1.2,2.2 <(echo "$statsA") <(echo "$statsB") |
    awk -v n=$((sentB - sentA)) '{d = $3 - $2; t += d; if (d / n >= 0.005) printf "| `%s` | %.2f |\n", $1, d / n}
        END {printf "| **all** | **%.2f** |\n", t / n}')
cmd_per_msg=$(sed -n 's/^| \*\*all\*\* | \*\*\([0-9.]*\)\*\* |$/\1/p' <<<"$cmd_table")
log "Redis commands per chat message ($sentA vs $sentB messages): $cmd_per_msg"
echo "$cmd_table" >&2

# ---- 3. Ladders ------------------------------------------------------------
RATES_100=500,1000,2000,3000,4000,5000,6000,7000,8000,10000,12000,15000
RATES_1000=20,40,60,80,100,120,150,200,300,400
ladder() { # ladder TARGETS CLIENTS USERS ROOMS RATES
    cb --target "$1" --clients "$2" --users "$3" --rooms "$4" --rates "$5"
}
ladders() { # ladders TARGETS VAR10 VAR1: both ladders on TARGETS, their output in VAR10, VAR1
    local -n out10=$2 out1=$3
    log "chat-bench: 100 clients in 10 rooms on $1"
    out10=$(ladder "$1" 100 100 "$ROOMS" "$RATES_100")
    echo "$out10" >&2
    log "chat-bench: 1000 clients in 1 room on $1"
    out1=$(ladder "$1" 1000 100 "$ROOM1" "$RATES_1000")
    echo "$out1" >&2
}
ladders "127.0.0.1:$p1" l100 l1000

# The 10-room ladder again, on PostgreSQL: a private server, durable as
# sqlite's WAL with synchronous=NORMAL is (fsync on; a commit does not wait
# for its WAL to reach the disk, synchronous_commit=off: a crash of the
# machine may lose the last commits, never corrupts), holding a copy of the
# sqlite database (chatctl copy-to: the same users and rooms, and message
# ids that go on where sqlite's stopped, as after a move), and a worker on it
# in place of the sqlite one, on the same interface and Redis. Then once more
# with synchronous_commit=on, every commit waiting for the disk. Afterwards
# a sqlite worker comes back on a copy of the PostgreSQL database (the way
# back), so that its message ids go on past those already published.
coproc PG { MC_PG_SETTINGS="fsync=on full_page_writes=on" "$root/tests/support/postgres.sh" 2>"$dir/postgres.err"; }
pids+=($PG_PID)
read -r pg_url <&"${PG[0]}" || { cat "$dir/postgres.err" >&2; exit 1; }
pg_version=$(psql -qAtX "$pg_url" -c 'SHOW server_version' | cut -d' ' -f1)
psql -qX "$pg_url" -c 'CREATE DATABASE chat' >/dev/null
pg_db=${pg_url%/*}/chat
stop_worker() { # once the worker has caught up
    settle
    kill "$wpid"
    wait "$wpid" 2>/dev/null || true
}
pg_ladder() { # pg_ladder VAR TITLE: a worker on PostgreSQL, the 10-room ladder in VAR
    local -n out=$1
    CHAT_DB=$pg_db start_worker
    log "chat-bench: 100 clients in 10 rooms on 127.0.0.1:$p1, the worker on PostgreSQL $pg_version$2"
    out=$(ladder "127.0.0.1:$p1" 100 100 "$ROOMS" "$RATES_100")
    echo "$out" >&2
    stop_worker
}
stop_worker
CHAT_DB=$pg_db "$B/bin/chatctl" migrate >/dev/null
"$B/bin/chatctl" copy-to "$pg_db" >/dev/null
pg_ladder l100pg ""
psql -qX "$pg_db" -c 'ALTER DATABASE chat SET synchronous_commit = on' >/dev/null
pg_ladder l100pgsync ", synchronous_commit=on"
export CHAT_DB=$dir/after-postgresql.sqlite3
"$B/bin/chatctl" --db "$pg_db" copy-to "$CHAT_DB" >/dev/null
start_worker

p2=$(free_port)
ipid2=$(start_ifc "$p2")
pids+=($ipid2)
wait_http "127.0.0.1:$p2"
ladders "127.0.0.1:$p1,127.0.0.1:$p2" l100x2 l1000x2
kill "$ipid2"
wait "$ipid2" 2>/dev/null || true

# load_in_background OUT RATE MS: 100 clients in 10 rooms send RATE msg/s for
# MS, in the background (its pid in load_pid); returns once they are in.
load_in_background() {
    cb --target "127.0.0.1:$p1" --clients 100 --users 100 --rooms "$ROOMS" --rates "$2" \
        --duration "$3" >"$1" &
    load_pid=$!
    for _ in $(seq 1 1000); do grep -q '^connected' "$1" 2>/dev/null && break; sleep 0.01; done
    sleep 0.5
}

# ---- 4. The cost of one message ---------------------------------------------
# cost.sh on servers of its own: CPU time, Redis commands and system calls
# per message at a fixed moderate rate and at the highest rate that passed;
# then each process under callgrind at a low rate, for counts that do not
# move with the machine's load.
COST_RATE=2000
cost_best=$(kv "$(grep '^best' <<<"$l100")" rate)
[ -n "$cost_best" ] && [ "$cost_best" -gt 0 ] || cost_best=$COST_RATE
log "cost of one message at $COST_RATE and $cost_best msg/s"
cost_out=$("$here/cost.sh" "$B" "$COST_RATE" "$cost_best")
echo "$cost_out" >&2
CG_RATE=50
cg_out=""
if command -v valgrind >/dev/null && [ "${MC_BENCH_CALLGRIND:-1}" = 1 ]; then
    for p in interface worker redis; do
        log "instructions per message of $p (callgrind, $CG_RATE msg/s)"
        cg_out="$cg_out$(MC_COST_SECS=8 MC_COST_CALLGRIND=$p "$here/cost.sh" "$B" "$CG_RATE" |
            grep '^instr')
"
    done
    echo "$cg_out" >&2
fi

# ---- 4b. Where the CPU goes at the highest rate ------------------------------
# CPU time of each process (from /proc) and, with perf, where it goes by
# library, while 100 clients in 10 rooms send at the highest rate that passed.
PROF_SECS=3
prof_rate=$(kv "$(grep '^best' <<<"$l100")" rate)
[ -n "$prof_rate" ] && [ "$prof_rate" -gt 0 ] || prof_rate=1000
cpu_rows=""
log "CPU per process at $prof_rate msg/s"
load_in_background "$dir/prof.out" "$prof_rate" $((PROF_SECS * 1000 + 3000))
prof_pid=$load_pid
bpid_prof=$(pgrep -n -x chat-bench || true)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
declare -A t0 t1
names=(chat-interface chat-worker redis-server chat-bench)
ppids=("$ipid1" "$wpid" "$rpid" "${bpid_prof:-0}")
for k in 0 1 2 3; do t0[$k]=$(ticks "${ppids[$k]}"); done
all0=$(busy)
perfs=()
if command -v perf >/dev/null; then
    for k in 0 1 2; do
        perf record -q -o "$dir/perf-$k.data" -p "${ppids[$k]}" -- sleep "$PROF_SECS" \
            >/dev/null 2>&1 &
        perfs+=($!)
    done
fi
sleep "$PROF_SECS"
for k in 0 1 2 3; do t1[$k]=$(ticks "${ppids[$k]}"); done
all1=$(busy)
for p in "${perfs[@]}"; do wait "$p" 2>/dev/null || true; done
wait "$prof_pid" || true
hz=$(getconf CLK_TCK)
for k in 0 1 2 3; do
    share=$(awk -v a="${t0[$k]}" -v b="${t1[$k]}" -v hz="$hz" -v s="$PROF_SECS" \
        'BEGIN {printf "%d%%", (b - a) * 100 / hz / s}')
    where="(perf not available)"
    if [ -s "$dir/perf-$k.data" ]; then
        where=$(perf report -i "$dir/perf-$k.data" --stdio --sort dso 2>/dev/null |
            awk '$1 ~ /%$/ {printf "%s %s, ", $2, $1}' | head -c 400 |
            awk -F', ' '{for (i = 1; i <= 4 && i < NF; i++) printf "%s%s", (i > 1 ? ", " : ""), $i}')
    elif [ "$k" = 3 ]; then
        where="(the load generator)"
    fi
    cpu_rows="$cpu_rows| ${names[$k]} | $share | $where |
"
done
machine=$(awk -v a="$all0" -v b="$all1" -v hz="$hz" -v s="$PROF_SECS" -v n="$(nproc)" \
    'BEGIN {printf "%d%% of %d00%%", (b - a) * 100 / hz / s, n}')
echo "$cpu_rows" >&2
log "machine busy: $machine"

# ---- 5. Memory per idle authenticated socket -------------------------------
# A fresh interface for each size, so that nothing earlier is in its heap.
mem_rows=""
declare -A memper
idle_run() { # idle_run N SOURCES [--deflate]
    local n=$1 port ipid rss0 rss1 bpid out got key=$1${3:+ with $3}
    settle
    port=$(free_port)
    ipid=$(start_ifc "$port")
    pids+=($ipid)
    wait_http "127.0.0.1:$port"
    sleep 0.3
    rss0=$(rss_kib "$ipid")
    out=$dir/idle-$n.out
    "$B/bin/chat-bench" --password "$PASSWORD" --target "127.0.0.1:$port" --idle --clients "$n" \
        --users 100 --rooms "$IDLE_ROOM" --sources "$2" --connect-parallel 500 ${3:-} >"$out" \
        2>"$dir/idle-$n.err" &
    bpid=$!
    for _ in $(seq 1 30000); do
        grep -q '^idle' "$out" 2>/dev/null && break
        kill -0 "$bpid" 2>/dev/null || break
        sleep 0.01
    done
    sleep 1
    got=$(kv "$(grep '^idle' "$out" || true)" sockets)
    rss1=$(rss_kib "$ipid")
    kill "$bpid" 2>/dev/null || true
    wait "$bpid" 2>/dev/null || true
    kill "$ipid"
    wait "$ipid" 2>/dev/null || true
    cat "$out" "$dir/idle-$n.err" >&2
    if [ -n "$got" ] && [ "$got" -gt 0 ]; then
        local per=$(((rss1 - rss0) * 1024 / got))
        memper[$key]=$per
        local conn=$(kv "$(grep '^connected' "$out")" connects_per_s)
        mem_rows="$mem_rows| $key | $got | $rss0 | $rss1 | **$per** | $conn |
"
        log "idle: $got sockets, RSS $rss0 -> $rss1 KiB, $per bytes per socket"
    else
        mem_rows="$mem_rows| $key | 0 (failed: $(head -c 120 "$dir/idle-$n.err" | tr '\n|' '  ')) | $rss0 | | | |
"
    fi
}
# The sockets join a room of their own, which has no history to send them.
IDLE_ROOM=$("$B/bin/chatctl" room add "idle room")
log "idle sockets: 10,000"
idle_run 10000 1
log "idle sockets: 10,000 with permessage-deflate"
idle_run 10000 1 --deflate
# 100,000 when the descriptor limit allows, else the most it allows.
big=100000
[ "$nofile" -ge 100500 ] || big=$(((nofile - 500) / 1000 * 1000))
if [ "$BIG" = 1 ] && [ "$big" -gt 10000 ]; then
    log "idle sockets: $big"
    idle_run "$big" $((big / 20000 + 1))
fi
[ "$big" = 100000 ] && [ "$BIG" = 1 ] ||
    mem_rows="$mem_rows| 100000 | not run: ulimit -n is $nofile and cannot be raised here | | | | |
"

# ---- 6. Compression ------------------------------------------------------------
# 100 clients in 10 rooms at Z_RATE msg/s, without and with permessage-deflate,
# in rounds that alternate, so that the machine's other work weighs on both
# alike; each figure is the median over the rounds. chat-bench reports the
# bytes that crossed its sockets (WebSocket frames both ways, no TCP/IP
# headers) and the CPU per message sent of each process (/proc/PID/stat).
Z_RATE=2000
Z_ROUNDS=5
Z_MS=5000
zplain=()
zdeflate=()
zrun() { # zrun [--deflate]: the step line
    cb --target "127.0.0.1:$p1" --clients 100 --users 100 --rooms "$ROOMS" --rates "$Z_RATE" \
        --retries 0 --duration "$Z_MS" --cpu-pids "$ipid1,$wpid,$rpid" "$@" | grep '^step'
}
log "compression: 100 clients in 10 rooms at $Z_RATE msg/s, $Z_ROUNDS rounds without and with"
for _ in $(seq 1 $Z_ROUNDS); do
    zplain+=("$(zrun)")
    zdeflate+=("$(zrun --deflate)")
    echo "${zplain[-1]}" >&2
    echo "${zdeflate[-1]}" >&2
done
# zmed KEY FIELD LINE...: the median over the lines of KEY's FIELD-th comma-separated part.
zmed() {
    local key=$1 field=$2
    shift 2
    for line in "$@"; do kv "$line" "$key" | cut -d, -f"$field"; done |
        sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# zrow WHAT KEY FIELD DIGITS: a table row, without and with, and the change.
zrow() {
    local a b
    a=$(zmed "$2" "$3" "${zplain[@]}")
    b=$(zmed "$2" "$3" "${zdeflate[@]}")
    awk -v w="$1" -v a="$a" -v b="$b" -v d="$4" 'BEGIN {
        printf "| %s | %." d "f | %." d "f | %+.0f%% |\n", w, a, b, (a > 0 ? (b - a) * 100 / a : 0) }'
}
z_table="$(zrow "bytes received per delivery (server to client)" rx_bytes_per_delivery 1 1)
$(zrow "bytes sent per message (client to server)" tx_bytes_per_msg 1 1)
$(zrow "chat-interface CPU per message, µs" pids_cpu_us_per_msg 1 1)
$(zrow "chat-worker CPU per message, µs" pids_cpu_us_per_msg 2 1)
$(zrow "redis-server CPU per message, µs" pids_cpu_us_per_msg 3 1)
$(zrow "chat-bench (the clients) CPU per message, µs" self_cpu_us_per_msg 1 1)
$(zrow "p50 latency, ms" p50_ms 1 2)
$(zrow "p99 latency, ms" p99_ms 1 2)"
echo "$z_table" >&2
z_rx0=$(zmed rx_bytes_per_delivery 1 "${zplain[@]}")
z_rx1=$(zmed rx_bytes_per_delivery 1 "${zdeflate[@]}")
z_cpu0=$(zmed pids_cpu_us_per_msg 1 "${zplain[@]}")
z_cpu1=$(zmed pids_cpu_us_per_msg 1 "${zdeflate[@]}")

# ---- 7. Abuse: one socket floods while the others chat -------------------------
# An interface with its default limits (the worker's stay off: they would
# only slow the flooder down further). The same 100 clients in 10 rooms at
# a moderate rate, from 4 addresses (their 300 logins and sockets at once
# would pass one address's burst of new connections), alone and beside one
# flooder that comes back whenever it is closed; the flooder's user is one
# more than theirs.
ABUSE_RATE=500
ABUSE_MS=$((STEP_MS * 2))
pa=$(free_port)
ipa=$(IFC_LIMITS="" start_ifc "$pa")
pids+=($ipa)
wait_http "127.0.0.1:$pa"
abuse_run() { # abuse_run FLOODERS
    cb --target "127.0.0.1:$pa" --clients 100 --users 100 --rooms "$ROOMS" --rates "$ABUSE_RATE" \
        --duration "$ABUSE_MS" --retries 0 --keep-going --sources 4 --flooders "$1"
}
log "abuse: 100 clients in 10 rooms at $ABUSE_RATE msg/s, alone"
abuse_clean=$(abuse_run 0)
echo "$abuse_clean" >&2
log "abuse: the same beside one socket that floods"
abuse_flood=$(abuse_run 1)
echo "$abuse_flood" >&2
kill "$ipa"
wait "$ipa" 2>/dev/null || true
abuse_row() { # abuse_row LABEL OUTPUT
    local line
    line=$(grep '^step' <<<"$2" | tail -1)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(kv "$line" sent)" \
        "$(kv "$line" p50_ms)" "$(kv "$line" p99_ms)" "$(kv "$line" max_ms)" "$(kv "$line" lost)" \
        "$(kv "$line" errors)"
}
abuse_table="| run | messages sent | p50 ms | p99 ms | max ms | lost | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
$(abuse_row "alone" "$abuse_clean")
$(abuse_row "beside one flooder" "$abuse_flood")"
flood_line=$(grep '^flood' <<<"$abuse_flood" | tail -1)
abuse_p99=$(kv "$(grep '^step' <<<"$abuse_flood" | tail -1)" p99_ms)
log "abuse: others' p99 $abuse_p99 ms while flooded; $flood_line"

# ---- Data and plots ----------------------------------------------------------
# ladder_rows CONFIG OUTPUT: a ladder's steps, tab-separated, as plot.sh reads them.
ladder_rows() {
    grep '^step' <<<"$2" | while read -r line; do
        printf '%s' "$1"
        for k in rate attempt sent_per_s deliveries_per_s p50_ms p90_ms p99_ms max_ms lost errors; do
            printf '\t%s' "$(kv "$line" "$k")"
        done
        printf '\n'
    done
}
# ladder_data NAME TITLE CONFIG OUTPUT [CONFIG OUTPUT]...: DATA/NAME.tsv
ladder_data() {
    local name=$1 title=$2
    shift 2
    {
        echo "# $title"
        printf '# config\trate\tattempt\tsent_per_s\tdeliveries_per_s\tp50_ms\tp90_ms\tp99_ms\tmax_ms\tlost\terrors\n'
        while [ $# -ge 2 ]; do
            ladder_rows "$1" "$2"
            shift 2
        done
    } >"$DATA/$name.tsv"
}
DATA=$root/docs/bench
[ "$OUT" != - ] || DATA=$dir/bench
mkdir -p "$DATA"
ladder_data echo "chat-bench against the echo endpoint, 100 sockets" \
    "echo endpoint, one interface" "$echo_out"
ladder_data rooms-10 "Chat: 100 clients in 10 rooms" "one interface" "$l100" "two interfaces" "$l100x2" \
    "PostgreSQL, one interface" "$l100pg" "PostgreSQL, synchronous commits" "$l100pgsync"
ladder_data room-1 "Chat: 1,000 clients in 1 room" "one interface" "$l1000" "two interfaces" "$l1000x2"
"$here/plot.sh" "$DATA" || log "no plots (make bench-plots draws them from $DATA)"

# ---- Report ----------------------------------------------------------------
# ladder_table OUTPUT DELIVERIES_PER_MESSAGE: one row per step.
ladder_table() {
    echo "| rate (msg/s) | sent/s | deliveries/s | p50 ms | p90 ms | p99 ms | max ms | lost | |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    grep '^step' <<<"$1" | while read -r line; do
        local lost p99 verdict
        lost=$(kv "$line" lost)
        p99=$(kv "$line" p99_ms)
        verdict=pass
        [ "$(kv "$line" attempt)" = 0 ] || verdict="pass (run again)"
        if [ "$lost" != 0 ] || [ "$(kv "$line" errors)" != 0 ] ||
            awk -v p="$p99" 'BEGIN {exit !(p > 50)}'; then verdict=**fail**; fi
        [ "$(kv "$line" attempt)" = 0 ] || [ "$verdict" != "**fail**" ] || verdict="**fail** again"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(kv "$line" rate)" \
            "$(kv "$line" sent_per_s)" "$(kv "$line" deliveries_per_s)" "$(kv "$line" p50_ms)" \
            "$(kv "$line" p90_ms)" "$p99" "$(kv "$line" max_ms)" "$lost" "$verdict"
    done
}
best() { kv "$(grep '^best' <<<"$1")" rate; }
conn_line() { grep '^connected' <<<"$1" | head -1; }
b100=$(best "$l100")
b1000=$(best "$l1000")
b100x2=$(best "$l100x2")
b100pg=$(best "$l100pg")
b100pgsync=$(best "$l100pgsync")
pg_share=$(awk -v a="$b100pg" -v b="$b100" 'BEGIN {if (b > 0) printf "%d", 100 * a / b; else print "?"}')
b1000x2=$(best "$l1000x2")
chl_table=$(awk '/\/s  \(/ {
    line = $0; what = substr(line, 1, 52); sub(/[ ]+$/, "", what)
    rest = substr(line, 53); split(rest, f, " ")
    printf "| %s | %d %s |\n", what, f[1], f[2] }' <<<"$chl")
mem10=${memper[10000]:-}
mem100=${memper[$big]:-}
msg_ceiling=$(awk -v l="$rb_p16" -v c="$cmd_per_msg" 'BEGIN {if (c > 0) printf "%d", l / c}')

# The cost section: one column per rate of cost.sh.
cost_get() { kv "$(grep "^cost rate=$1 " <<<"$cost_out" | head -1)" "$2"; }
sys_get() { kv "$(grep "^sys rate=$1 proc=$2 " <<<"$cost_out" | head -1)" "$3"; }
sys_top() { sed -n 's/.* top="\(.*\)"$/\1/p' <<<"$(grep "^sys rate=$1 proc=$2 " <<<"$cost_out" | head -1)"; }
cost_row() { # cost_row LABEL FORMAT-FUNCTION: one row, a cell per rate
    local r cells=""
    for r in "$COST_RATE" "$cost_best"; do cells="$cells | $($2 "$r")"; done
    echo "| $1$cells |"
}
cpu_cell() { echo "$(cost_get "$1" "$2_us") ($(cost_get "$1" "$2_user_us") + $(cost_get "$1" "$2_sys_us"))"; }
c_ifc() { cpu_cell "$1" ifc; }
c_wrk() { cpu_cell "$1" wrk; }
c_redis() { cpu_cell "$1" redis; }
c_sum() { echo "**$(cost_get "$1" sum_us)**"; }
c_bench() { echo "$(cost_get "$1" bench_us) ($(cost_get "$1" bench_share) of the four)"; }
c_cmds() { echo "**$(cost_get "$1" cmds)**"; }
c_sys_ifc() { echo "**$(sys_get "$1" ifc per_delivery)** ($(sys_top "$1" ifc) per message)"; }
c_sys_wrk() { echo "$(sys_get "$1" wrk per_msg) ($(sys_top "$1" wrk))"; }
c_sys_redis() { echo "$(sys_get "$1" redis per_msg)"; }
c_run() { echo "$(cost_get "$1" sent_per_s) sent/s, p99 $(cost_get "$1" p99_ms) ms, $(cost_get "$1" lost) lost"; }
cost_table=$(
    echo "| per chat message (10 deliveries) | at $COST_RATE msg/s | at $cost_best msg/s |"
    echo "| --- | ---: | ---: |"
    cost_row "CPU µs, chat-interface (user + system)" c_ifc
    cost_row "CPU µs, chat-worker" c_wrk
    cost_row "CPU µs, redis-server" c_redis
    cost_row "**CPU µs, the three together**" c_sum
    cost_row "CPU µs, chat-bench (the load generator)" c_bench
    cost_row "Redis commands (those inside scripts included)" c_cmds
    cost_row "system calls per delivery, chat-interface" c_sys_ifc
    cost_row "system calls per message, chat-worker" c_sys_wrk
    cost_row "system calls per message, redis-server" c_sys_redis
    cost_row "the run" c_run
)
instr_table=$(awk '/^instr/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "| %s | %s |\n", v["proc"], v["per_msg"]; t += v["per_msg"] }
    END { if (NR) printf "| **the three together** | **%d** |\n", t }' <<<"$cg_out")

report() {
    cat <<EOF
# Performance

Figures from one run of \`make bench\` (\`tests/bench/run.sh build/release\`,
a few minutes), regenerated by it; the commands are listed at the end.
Every figure sits next to a ceiling measured in the same run on the same
machine: what Redis itself does, and what the load generator and the
interface do with no worker and no Redis (the echo endpoint). Each ladder's
steps are also kept as data, \`docs/bench/*.tsv\`, from which the plots are
drawn (\`make bench-plots\` redraws them).

Machine: $ncpu cores ($cpu), $(uname -sr), Debian $(cat /etc/debian_version 2>/dev/null || echo '?'),
redis-server $rver (reached over $MC_BENCH_REDIS), ulimit -n $nofile; load average $load0 before the run and
$(cut -d' ' -f1-3 /proc/loadavg) after it. The machine was shared with other
builds while it ran, and chat-bench, Redis, the worker and the interfaces
all share its $ncpu cores, so figures move by tens of percent between runs;
read them as orders of magnitude.

## Cost of one message

What one chat message costs the interface, the worker and Redis together,
100 clients in 10 rooms (10 deliveries a message), one interface, one
worker: \`tests/bench/cost.sh\` (on servers of its own) at a fixed moderate
rate and at the highest rate that passed below. CPU time is each process's
user and system time over 4 s of steady sending (all threads,
\`/proc/PID/task/*/schedstat\`), divided by the messages sent meanwhile;
Redis commands from \`INFO commandstats\` over the same 4 s; system calls
over the next 4 s (\`perf stat\` on the \`syscalls:sys_enter_*\`
tracepoints, which, unlike strace, do not slow the processes down). The
machine is shared (see its load above): CPU time per message moves less
than the rates do, but it moves; the batching of every process grows with
the rate and with the load, and lowers the cost per message.

$cost_table

Instructions per message, each process in turn under valgrind's callgrind
(\`MC_COST_CALLGRIND=PROCESS MC_COST_SECS=8 tests/bench/cost.sh BUILD $CG_RATE\`):
at $CG_RATE msg/s every batch is one message, and the count is the same from
run to run whatever else the machine does (user space only; system calls
are counted above).

| process | instructions per message |
| --- | ---: |
${instr_table:-| (valgrind was not available) | |}

Memory: **${mem10:-?} bytes** of user space per idle authenticated, joined socket at
10,000 sockets${mem100:+, **$mem100 bytes** at $big} (see "Memory per idle authenticated socket").

$(cat "$here/cost.md")

## Summary

| what | figure | ceiling in the same run |
| --- | --- | --- |
| 100 clients in 10 rooms, one interface: highest rate with p99 under 50 ms and no loss | **$b100 msg/s** ($((b100 * 10)) deliveries/s) | echo: $echo_best msg/s round trips through the interface; Redis: $rb_lpush LPUSH/s |
| 1,000 clients in 1 room, one interface | **$b1000 msg/s** ($((b1000 * 1000)) deliveries/s) | echo: $echo_best deliveries/s (one frame in, one out) |
| the same on two interfaces | **$b100x2 msg/s** (10 rooms), **$b1000x2 msg/s** (1 room, $((b1000x2 * 1000)) deliveries/s) | one interface: $b100 and $b1000 msg/s |
| 100 clients in 10 rooms, one interface, the worker on PostgreSQL | **$b100pg msg/s**, $pg_share % of sqlite's; $b100pgsync msg/s with synchronous_commit=on | sqlite in the same run: $b100 msg/s |
| Redis commands per chat message (those run inside scripts included) | **$cmd_per_msg** | Redis: $rb_lpush LPUSH/s from 50 clients, $rb_p16 pipelined; at the pipelined rate, $msg_ceiling chat msg/s |
| user-space memory per idle authenticated socket, joined to a room | **${mem10:-?} bytes** at 10,000 sockets${mem100:+, **$mem100 bytes** at $big} | target: 1,024 bytes |
| permessage-deflate, 100 clients in 10 rooms at $Z_RATE msg/s | **$z_rx0 → $z_rx1 bytes** per delivery; interface CPU $z_cpu0 → $z_cpu1 µs per message | without compression (the first figures) |
| others' p99 while one socket floods, 100 clients in 10 rooms at $ABUSE_RATE msg/s | **$abuse_p99 ms** | target: under 50 ms; alone: $(kv "$(grep '^step' <<<"$abuse_clean" | tail -1)" p99_ms) ms |

## Ceilings

| what | figure |
| --- | --- |
| redis-benchmark LPUSH, 50 clients, no pipelining | $rb_lpush req/s |
| redis-benchmark RPOP, 50 clients, no pipelining | $rb_rpop req/s |
| redis-benchmark LPUSH, 50 clients, pipelines of 16 | $rb_p16 req/s |
| chat-bench against the echo endpoint, 100 sockets: highest rate with p99 under 50 ms | $echo_best msg/s |

chat-bench against \`--echo-path /echo/\` (one interface, no login, no
worker, no Redis): the same messages, each echoed to its sender.

$(ladder_table "$echo_out")

![Latency against rate, echo endpoint: p50 and p99](bench/echo.svg)

## Chat: 100 clients in 10 rooms

100 users, one socket each, 10 per room; each message goes to the 10
members of its room (the sender's own copy included). One worker, one
interface. $(conn_line "$l100" | sed 's/^connected/Set-up:/')

$(ladder_table "$l100")

Two interfaces (socket i joins room i mod 10 and goes to interface (i / 10)
mod 2, so every room has 5 members on each and every group send pushes to
two process lists):

$(ladder_table "$l100x2")

One interface, the worker on PostgreSQL $pg_version (a private server on the
same machine, a copy of the sqlite database, \`chatctl copy-to\`), as
durable as sqlite's WAL with synchronous=NORMAL: fsync on, and a commit
does not wait for the disk (synchronous_commit=off; a crash of the machine
may lose the last commits, as sqlite's may, and corrupts nothing): $pg_share %
of sqlite's best rate in this run.

$(ladder_table "$l100pg")

The same with synchronous_commit=on, every commit waiting for its WAL to
reach the disk (commits of concurrent workers share a flush):

$(ladder_table "$l100pgsync")

![Latency against rate, 100 clients in 10 rooms, one and two interfaces, and on PostgreSQL: p50 and p99](bench/rooms-10.svg)

## Chat: 1,000 clients in 1 room

100 users with 10 sockets each, all in one room; each message is 1,000
deliveries. $(conn_line "$l1000" | sed 's/^connected/Set-up:/')

$(ladder_table "$l1000")

Two interfaces, 500 sockets each:

$(ladder_table "$l1000x2")

![Latency against rate, 1,000 clients in 1 room, one and two interfaces: p50 and p99](bench/room-1.svg)

## Redis commands per chat message

From \`INFO commandstats\`: two runs of 100 clients in 10 rooms at 200 msg/s,
$sentA and $sentB messages; the difference of the counts divided by the
difference of the messages (logins, connects and joins cancel out).

| command | calls per message |
| --- | ---: |
$cmd_table

## Where the CPU goes

100 clients in 10 rooms at $prof_rate msg/s (the highest rate that passed
above), one interface, one worker: CPU time of each process over $PROF_SECS s
from \`/proc/PID/stat\` (100% is one core), and where it goes by library
(\`perf record -p PID\`, \`perf report --sort dso\`; \`[kernel.kallsyms]\` is
the system calls: socket reads and writes, file writes, locks). The whole
machine was $machine busy meanwhile.

| process | CPU | where (perf, by library) |
| --- | ---: | --- |
$cpu_rows
## Memory per idle authenticated socket

A fresh interface; its VmRSS before chat-bench connects, then with N
WebSockets open, each logged in (100 users), joined to a room and idle:
(RSS with N − RSS with none) / N. Socket buffers live in the kernel and are
not counted; chat-bench's own memory is not counted.

| sockets asked | open | RSS before, KiB | RSS with them, KiB | bytes per socket | connects/s |
| ---: | ---: | ---: | ---: | ---: | ---: |
$mem_rows
## Compression

permessage-deflate (RFC 7692), which browsers offer on every WebSocket:
100 clients in 10 rooms at $Z_RATE msg/s (10 deliveries per message), one
interface, one worker; $Z_ROUNDS rounds of $((Z_MS / 1000)) s without and with
\`chat-bench --deflate\` (which offers the extension as a browser does,
compresses what it sends and inflates what it receives), alternating, and
the median of each figure. Bytes are those that crossed chat-bench's sockets
(WebSocket frames, no TCP/IP headers); CPU is per chat message sent, from
\`/proc/PID/stat\` over each run. The interface inflates each message once,
compresses a room's message once for every member that negotiated the
extension, and sends the sender's own copy plain. The machine's other work
moves the CPU figures by tens of percent from round to round; the bytes do
not move.

| per chat message | without | with permessage-deflate | change |
| --- | ---: | ---: | ---: |
$z_table

Memory: a socket that negotiated compression keeps one byte more (the
window bits granted), in what was padding, and no zlib state; 10,000 idle
sockets measured as above: **${memper[10000]:-?} bytes** per socket without,
**${memper[10000 with --deflate]:-?} bytes** with.

## Abuse: one socket floods while the others chat

An interface with its default limits (a budget of 20 frames a second,
bursts of 60, 64 KiB a second, the answers to its own commands counted in
those KiB, and 4 messages in flight per socket; a socket back within a
minute of a close for its rate starts with a second's budget; 256
connections and 50 new ones a second per address): 100 clients in 10 rooms,
from 4 addresses, send $ABUSE_RATE msg/s for $((ABUSE_MS / 1000)) s, alone, then while one more
socket of a user of its own floods: history pages of 100 messages, joins
that ask for the whole history, leaves and frames of 60 KiB that are no
command, as fast as the interface reads them, coming back at once whenever
it is closed. The others' latency and loss:

$abuse_table

The flooder, in the second run: $(sed 's/^flood //' <<<"$flood_line") (frames it
sent; RATE_LIMITED frames it was told, once each time it went over budget;
times the interface closed it with 1008).

## Channel layer

\`build/release/bin/chl-bench $redis_url_shown 20000\` on the same Redis.

| what | figure |
| --- | ---: |
$chl_table

$(cat "$here/reading.md")

## Commands

\`\`\`sh
redis-server --port P --unixsocket S --unixsocketperm 700 --save '' --appendonly no
chatctl migrate
printf 'bench1 bench-password\n...' | chatctl --argon2-memory 64 --argon2-time 1 user import   # $USERS users
chatctl room add 'bench room N'                                     # 10 rooms
chat-worker --notify-enter-leave off --rate-messages 0 --rate-connects 0
chat-interface --listen 127.0.0.1:P1 --echo-path /echo/ --address-open-max 0 --address-rate 0 --socket-rate 0 --socket-kib-rate 0   # and P2 for two
chat-interface --listen 127.0.0.1:P3 --echo-path /echo/             # the abuse runs: default limits
redis-benchmark $redis_at_shown -t lpush,rpop -q -n 100000
redis-benchmark $redis_at_shown -t lpush -q -n 200000 -P 16
chl-bench $redis_url_shown 20000
chat-bench --target 127.0.0.1:P1 --echo-path /echo/ --clients 100 --rates $ECHO_RATES --duration $STEP_MS
chat-bench --target 127.0.0.1:P1 --clients 100 --users 100 --rooms R1,...,R10 --rates $RATES_100 --duration $STEP_MS
chat-bench --target 127.0.0.1:P1 --clients 1000 --users 100 --rooms R1 --rates $RATES_1000 --duration $STEP_MS
chat-bench --target 127.0.0.1:P3 --clients 100 --users 100 --rooms R1,...,R10 --rates $ABUSE_RATE --duration $ABUSE_MS --sources 4 --flooders 1   # and 0
chat-bench --target 127.0.0.1:P1,127.0.0.1:P2 ...                   # the same two ladders
MC_PG_SETTINGS="fsync=on full_page_writes=on" tests/support/postgres.sh   # synchronous_commit=off
CHAT_DB=postgresql://... chatctl migrate; chatctl copy-to postgresql://...
CHAT_DB=postgresql://... chat-worker ...                            # in place of the sqlite one
chat-bench --target 127.0.0.1:P1 --clients 100 --users 100 --rooms R1,...,R10 --rates $RATES_100
psql postgresql://... -c 'ALTER DATABASE chat SET synchronous_commit = on'; the same again
chat-bench ... --rates 200 --duration 1000, then --duration 4000    # around redis-cli config resetstat / info commandstats
tests/bench/cost.sh BUILD $COST_RATE $cost_best                            # the cost of one message
MC_COST_CALLGRIND=worker MC_COST_SECS=8 tests/bench/cost.sh BUILD $CG_RATE   # and interface, redis
perf record -p PID -- sleep 3; perf report --sort dso                # during the best rate
chat-bench --target 127.0.0.1:P3 --idle --clients 10000 --users 100 --rooms IDLE --sources 1
chat-bench --target 127.0.0.1:P4 --idle --clients 100000 --users 100 --rooms IDLE --sources 8
chat-bench --target 127.0.0.1:P5 --idle --clients 10000 --users 100 --rooms IDLE --sources 1 --deflate
chat-bench --target 127.0.0.1:P1 --clients 100 --users 100 --rooms R1,...,R10 --rates $Z_RATE --duration $Z_MS \\
    --retries 0 --cpu-pids IFC,WORKER,REDIS [--deflate]                # $Z_ROUNDS rounds each, alternating
\`\`\`

All with \`--password bench-password\`; every chat-bench option is in
\`chat-bench --help\`. A ladder stops after the first step that loses a
message or has a 99th percentile over 50 ms (\`--p99-limit\`) twice in a row
(\`--retries 1\`: a failed step runs once more); a message not
delivered within 2 s after its step (\`--drain\`) counts as lost.
EOF
}
if [ "$OUT" = - ]; then
    report
else
    report >"$OUT.tmp"
    mv "$OUT.tmp" "$OUT"
    log "wrote $OUT"
fi
