#!/usr/bin/env bash
# The cost of one chat message: what the interface, the worker and Redis
# spend on it together, measured while 100 clients in 10 rooms send at a
# steady rate (each message is 10 deliveries).
#
#   tests/bench/cost.sh BUILD_DIR [RATE...]      (default: 2000 msg/s)
#
# For each rate, one chat-bench run on fresh private servers (servers.sh);
# after a second of warm-up, a first window of MC_COST_SECS seconds gives
#   - CPU time per message of each process: user + system time of all its
#     threads (/proc/PID/task/*/schedstat, nanoseconds), divided by the
#     messages sent in the window; the same for chat-bench, and its share
#     of the four processes' time;
#   - Redis commands per message: INFO commandstats, reset at the window's
#     start (the commands that scripts run count, as EVALSHA itself does);
# and then the system calls of each process, counted second by second for
# MC_COST_SECS + 1 seconds (perf stat -I on the syscall tracepoints, which
# do not slow a process down as strace does; only whole seconds count, as
# perf takes a while to attach), per message and per delivery.
#
# MC_COST_CALLGRIND=interface|worker|redis runs that process under
# valgrind's callgrind, and adds its instructions per message over the
# first window (counters zeroed at its start, dumped at its end): a count
# that does not move with the machine's load, for before and after. The
# process then runs some fifty times slower: use a low rate (50) and a
# longer window (MC_COST_SECS=8), so that it keeps up and its batches stay
# at one message, as they are at low rates without it. With
# MC_COST_KEEP=DIR its profile is copied there (callgrind_annotate reads it).
#
# Output, one line each, "key=value ...":
#   cost rate= seconds= messages= sent_per_s= lost= p99_ms= ifc_us= wrk_us= redis_us=
#        sum_us= bench_us= bench_share= ifc_user_us= ifc_sys_us= ... cmds=
#   cmd rate= name= per_msg=          (each Redis command, 0.005 per message or more)
#   sys rate= proc= seconds= per_msg= per_delivery= top="name n, ..."
#   instr rate= proc= per_msg=        (with MC_COST_CALLGRIND)
set -euo pipefail
export LC_ALL=C
B=${1:?usage: tests/bench/cost.sh BUILD_DIR [RATE...]}
shift
RATES=("${@:-2000}")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=$(cd "$B" && pwd)
SECS=${MC_COST_SECS:-4}
CG=${MC_COST_CALLGRIND:-}
CLIENTS=100
PER_MSG=10 # deliveries of one message: the members of its room
BENCH_NAME=cost
# shellcheck source=tests/bench/servers.sh
. "$here/servers.sh"

wrap() { # wrap NAME: the command that runs process NAME (callgrind or none)
    if [ "$CG" = "$1" ]; then
        echo valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" --dump-instr=no
    fi
}
# ns PID: CPU time of all its threads so far, in nanoseconds.
ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{t += $1} END {printf "%.0f", t}'; }
# ticks PID: user and system time so far, in clock ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
now_s() { date +%s.%N; }

start_redis
if [ "$CG" = redis ]; then
    # Redis again, under callgrind (a first one only to set the database up).
    kill "$rpid"
    wait "$rpid" 2>/dev/null || true
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" --dump-instr=no \
        "${redis_argv[@]}" 2>"$dir/valgrind.log" &
    rpid=$!
    pids+=($rpid)
    for _ in $(seq 1 3000); do rcli ping >/dev/null 2>&1 && break; sleep 0.01; done
fi
setup_db
# shellcheck disable=SC2046
start_worker $(wrap worker)
port=$(free_port)
# shellcheck disable=SC2046
ipid=$(start_ifc "$port" $(wrap interface))
pids+=($ipid)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
wait_http "127.0.0.1:$port"
case $CG in
interface) cgpid=$ipid ;;
worker) cgpid=$wpid ;;
redis) cgpid=$rpid ;;
*) cgpid= ;;
esac

names=(ifc wrk redis)
# All system calls, and by name those these processes make.
SYSCALL_EVENTS=raw_syscalls:sys_enter
for s in read write writev readv recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait epoll_ctl \
    accept4 close fcntl pread64 pwrite64 fsync fdatasync futex clock_gettime gettimeofday \
    clock_nanosleep nanosleep brk mmap munmap rt_sigprocmask rt_sigpending gettid openat lseek; do
    SYSCALL_EVENTS=$SYSCALL_EVENTS,syscalls:sys_enter_$s
done
for rate in "${RATES[@]}"; do
    settle
    out=$dir/bench-$rate.out
    "$B/bin/chat-bench" --password "$PASSWORD" --target "127.0.0.1:$port" --clients $CLIENTS \
        --users 100 --rooms "$ROOMS" --rates "$rate" --duration $((SECS * 2000 + 5000)) \
        --drain 5000 >"$out" 2>"$dir/bench.err" &
    bpid=$!
    for _ in $(seq 1 6000); do grep -q '^connected' "$out" 2>/dev/null && break; sleep 0.01; done
    sleep 1
    procs=("$ipid" "$wpid" "$rpid" "$bpid")
    # ---- Window 1: CPU time and Redis commands
    [ -z "$cgpid" ] || callgrind_control -z "$cgpid" >/dev/null 2>&1
    rcli config resetstat >/dev/null
    t0=$(now_s)
    declare -a c0 k0 c1 k1
    for i in 0 1 2 3; do
        c0[$i]=$(ns "${procs[$i]}")
        k0[$i]=$(ticks "${procs[$i]}")
    done
    sleep "$SECS"
    for i in 0 1 2 3; do
        c1[$i]=$(ns "${procs[$i]}")
        k1[$i]=$(ticks "${procs[$i]}")
    done
    t1=$(now_s)
    stats=$(rcli info commandstats | tr -d '\r')
    if [ -n "$cgpid" ]; then
        rm -f "$dir"/cg.out.*
        callgrind_control -d "$cgpid" >/dev/null 2>&1
        for _ in $(seq 1 200); do ls "$dir"/cg.out.* >/dev/null 2>&1 && break; sleep 0.1; done
        sleep 0.5
    fi
    msgs=$(awk -v a="$t0" -v b="$t1" -v r="$rate" 'BEGIN {printf "%.0f", (b - a) * r}')
    # ---- Window 2: system calls, counted second by second (perf takes a
    # while to attach, and the seconds it counts are the ones that count)
    sysdir=$dir/sys-$rate
    mkdir -p "$sysdir"
    sp=()
    for i in 0 1 2; do
        perf stat -x, -I 1000 -e "$SYSCALL_EVENTS" -p "${procs[$i]}" -o "$sysdir/${names[$i]}" \
            -- sleep $((SECS + 1)) >/dev/null 2>&1 &
        sp+=($!)
    done
    wait "${sp[@]}" || true
    wait "$bpid" || true
    step=$(grep '^step' "$out" | head -1)
    [ -n "$step" ] || { cat "$out" "$dir/bench.err" >&2; echo "cost.sh: chat-bench ran no step" >&2; exit 1; }

    # ---- Figures
    line="cost rate=$rate seconds=$SECS messages=$msgs sent_per_s=$(kv "$step" sent_per_s)"
    line="$line lost=$(kv "$step" lost) p99_ms=$(kv "$step" p99_ms)"
    sum=0
    hz=$(getconf CLK_TCK)
    for i in 0 1 2 3; do
        us=$(awk -v a="${c0[$i]}" -v b="${c1[$i]}" -v n="$msgs" 'BEGIN {printf "%.1f", (b - a) / 1000 / n}')
        name=${names[$i]:-bench}
        line="$line ${name}_us=$us"
        split=$(awk -v a="${k0[$i]}" -v b="${k1[$i]}" -v hz="$hz" -v n="$msgs" 'BEGIN {
            split(a, x, " "); split(b, y, " ")
            printf "%.1f %.1f", (y[1] - x[1]) * 1e6 / hz / n, (y[2] - x[2]) * 1e6 / hz / n }')
        line="$line ${name}_user_us=${split% *} ${name}_sys_us=${split#* }"
        [ "$i" = 3 ] || sum=$(awk -v s="$sum" -v u="$us" 'BEGIN {printf "%.1f", s + u}')
        [ "$i" != 3 ] || bench=$us
    done
    share=$(awk -v s="$sum" -v b="$bench" 'BEGIN {printf "%.0f%%", 100 * b / (s + b)}')
    cmds=$(sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p' <<<"$stats" |
        awk -v n="$msgs" '{t += $2} END {printf "%.2f", t / n}')
    echo "$line sum_us=$sum bench_share=$share cmds=$cmds"
    sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p' <<<"$stats" | sort -k2,2nr |
        awk -v n="$msgs" -v r="$rate" '$2 / n >= 0.005 {printf "cmd rate=%s name=%s per_msg=%.2f\n", r, $1, $2 / n}'
    for i in 0 1 2; do
        f=$sysdir/${names[$i]}
        [ -s "$f" ] || continue
        # Whole seconds only: each line is "time,count,,event,...".
        awk -F, -v rate="$rate" -v d="$PER_MSG" -v p="${names[$i]}" '
            $4 ~ /sys_enter/ && $2 ~ /^[0-9]+$/ { line[NR] = $0; t[NR] = $1 + 0 }
            END {
                prev = 0; last = -1
                for (k = 1; k <= NR; k++) if (k in t && t[k] != last) { order[++n] = t[k]; last = t[k] }
                for (k = 1; k <= n; k++) { if (order[k] - prev > 0.9) { ok[order[k]] = 1; secs++ } prev = order[k] }
                for (k = 1; k <= NR; k++) {
                    if (!(k in t) || !(t[k] in ok)) continue
                    split(line[k], f, ","); ev = f[4]
                    if (ev == "raw_syscalls:sys_enter") { total += f[2]; continue }
                    sub(/^syscalls:sys_enter_/, "", ev); c[ev] += f[2]
                }
                n = secs * rate
                if (n == 0) exit
                top = ""; k = 0
                while (k < 6) {
                    best = ""; for (s in c) if (best == "" || c[s] > c[best]) best = s
                    if (best == "" || c[best] / n < 0.05) break
                    top = top (k ? ", " : "") sprintf("%s %.2f", best, c[best] / n); delete c[best]; k++
                }
                printf "sys rate=%s proc=%s seconds=%d per_msg=%.2f per_delivery=%.2f top=\"%s\"\n",
                    rate, p, secs, total / n, total / n / d, top }' "$f"
    done
    if [ -n "$cgpid" ]; then
        ir=$(cat "$dir"/cg.out.* 2>/dev/null | sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' | head -1)
        echo "instr rate=$rate proc=$CG per_msg=$(awk -v i="${ir:-0}" -v n="$msgs" 'BEGIN {printf "%.0f", i / n}')"
        [ -z "${MC_COST_KEEP:-}" ] || cp "$dir"/cg.out.* "$MC_COST_KEEP"/
    fi
done
