#!/usr/bin/env bash
# make run's launcher, deploy/run-local.sh, ends everything it started, Redis
# last, however it is stopped: Ctrl-C (SIGINT to its process group), SIGTERM
# to the script or to its group, or one of its chat processes killed (kill -9).
# Each way runs ROUNDS times (5), since stopping used to fail by a race. Each
# run checks the exit status and the log line that says why, that the chat
# processes were stopped before Redis, and that no process of the run is left
# (by pid) and Redis no longer answers. The chat processes use Redis's
# Unix socket.
set -u
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
work=$(mktemp -d)
started=() # every pid of every run, for the clean-up of a failed one
cleanup() {
    local p
    for p in "${started[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
# As a shell runs `make run` in the foreground: in a process group of its own,
# with the default action for SIGINT (not ignored, as for a background job).
set -m

ways=(int-group term-script term-group kill-worker kill-interface)
echo "1..${#ways[@]}"

printed_url_or_ended() { # LOG PORT PID
    grep -q "Multichat is running: http://127.0.0.1:$2/" "$1" || gone "$3"
}
# socket_clients PORT N: whether N or more clients of the Redis on PORT came
# in through make run's socket (prints how many when N is 0).
socket_clients() {
    local n
    n=$(redis-cli -p "$1" client list | grep -c " addr=$work/state/redis.sock:")
    [ "$2" != 0 ] || echo "$n"
    [ "$n" -ge "$2" ]
}
# run_once WAY: one run stopped that way; what went wrong goes to `wrong`.
wrong=""
problem() { wrong+="$*"$'\n'; }
run_once() {
    local way=$1 port rport log pid p comm redis="" worker="" ifc="" want reason
    port=$(free_port)
    rport=$(free_port)
    log=$work/run.log
    PORT=$port REDIS_PORT=$rport CHAT_STATE=$work/state BIN_DIR=$bin \
        "$src/deploy/run-local.sh" >"$log" 2>&1 &
    pid=$!
    started+=("$pid")
    if ! until_true 120 printed_url_or_ended "$log" "$port" "$pid" ||
        ! grep -q "Multichat is running: http://127.0.0.1:$port/" "$log"; then
        problem "it printed no URL: $(tail -5 "$log")"
        kill -TERM "$pid"
        wait_for_exit 30 "$pid"
        return
    fi
    for p in $(pgrep -P "$pid"); do
        comm=$(cat "/proc/$p/comm" 2>/dev/null)
        case $comm in
        redis-server) redis=$p ;;
        chat-worker) worker=$p ;;
        chat-interface) ifc=$p ;;
        *) continue ;;
        esac
        started+=("$p")
    done
    if [ -z "$redis" ] || [ -z "$worker" ] || [ -z "$ifc" ]; then
        problem "processes under the script: $(pgrep -P "$pid" -l | tr '\n' ' ')"
    fi
    # The worker and the interface (two links) reach Redis over its socket.
    until_true 10 socket_clients "$rport" 3 ||
        problem "Redis's socket has $(socket_clients "$rport" 0) clients, not 3 or more"
    case $way in
    int-group) kill -INT -- "-$pid" && want=130 reason="SIGINT (Ctrl-C): stopping" ;;
    term-script) kill -TERM "$pid" && want=143 reason="SIGTERM: stopping" ;;
    term-group) kill -TERM -- "-$pid" && want=143 reason="SIGTERM: stopping" ;;
    kill-worker)
        kill -KILL "$worker" && want=1
        reason="chat-worker (pid $worker) was killed by signal 9: stopping the rest"
        ;;
    kill-interface)
        kill -KILL "$ifc" && want=1
        reason="chat-interface (pid $ifc) was killed by signal 9: stopping the rest"
        ;;
    esac
    if ! wait_for_exit 60 "$pid"; then
        problem "still running 60 s later; killed"
    elif [ "$wait_status" != "$want" ]; then
        problem "exit status $wait_status, not $want"
    fi
    # The log: why, then the chat processes, then Redis, then the status.
    local got
    got=$(grep '^multichat: ' "$log" | tr '\n' '|')
    case $got in
    *"multichat: $reason|multichat: the chat processes have stopped; stopping Redis|multichat: stopped (exit status $want)|") ;;
    *) problem "log lines: $got"$'\n'"$(cat "$log")" ;;
    esac
    local left
    if left=$(any_alive "$pid" $redis $worker $ifc); then problem "left running: $left"; fi
    ! redis_answers "$rport" || problem "Redis still answers on port $rport"
    ! http_answers "127.0.0.1:$port" || problem "something still answers on port $port"
}

declare -A title=(
    [int-group]="Ctrl-C (SIGINT to the process group)"
    [term-script]="SIGTERM to the script"
    [term-group]="SIGTERM to the process group"
    [kill-worker]="the worker killed with SIGKILL"
    [kill-interface]="the interface killed with SIGKILL"
)
for way in "${ways[@]}"; do
    problems=""
    for round in $(seq "$ROUNDS"); do
        wrong=""
        run_once "$way"
        [ -z "$wrong" ] || problems+="round $round: $wrong"
    done
    [ -z "$problems" ]
    report $? "${title[$way]}: all stopped, Redis last, $ROUNDS times" "$problems"
done
finish
