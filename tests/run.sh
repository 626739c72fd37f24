#!/usr/bin/env bash
# Runs every test of a build tree, each program in its own process with a time
# limit, two at a time: the cmocka programs under BUILD/tests, the scripts
# tests/**/*_test.sh, and each fuzz target for a few seconds over its corpus.
# Every program speaks TAP ("ok N - name" / "not ok N - name"). A program that
# exits non-zero without reporting a failure (a crash, a sanitizer report, a
# timeout) counts as one failure; one that reports no test at all, too.
# The last line is the summary: "N passed, N failed".
set -u
B=${1:?usage: tests/run.sh BUILD_DIR}
B=$(cd "$B" && pwd)
logs=$B/test-logs
rm -rf "$logs" && mkdir -p "$logs"

export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export MC_BUILD=$B       # scripts find the programs under test in $MC_BUILD/bin
export MC_SOURCE=$PWD
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-4}

run_one() {
    local kind=$1 prog=$2 name log rc
    name=${prog#"$B"/}
    name=${name#"$MC_SOURCE"/build/}
    name=${name#"$MC_SOURCE"/}
    name=$(echo "$name" | tr '/' '_')
    log=$logs/$name.log
    case $kind in
    fuzz)
        local corpus work
        corpus=$MC_SOURCE/tests/fuzz/corpus/$(basename "$prog")
        work=$(mktemp -d)
        timeout $((FUZZ_SMOKE_SECONDS + 60)) "$prog" -max_total_time="$FUZZ_SMOKE_SECONDS" \
            -rss_limit_mb=2048 -print_final_stats=0 "$work" "$corpus" >"$log" 2>&1
        rc=$?
        rm -rf "$work"
        [ $rc -eq 0 ] && echo "ok 1 - fuzz $(basename "$prog") ${FUZZ_SMOKE_SECONDS}s" >>"$log"
        ;;
    *)
        timeout "$TEST_TIMEOUT" "$prog" >"$log" 2>&1 </dev/null
        rc=$?
        ;;
    esac
    local passed failed
    passed=$(grep -c '^ok ' "$log")
    failed=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        echo "not ok - exited with status $rc" >>"$log"
    fi
    if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        echo "not ok - ran no test" >>"$log"
    fi
    echo "$passed $failed $name" >"$log.result"
    if [ "$failed" -eq 0 ]; then
        printf 'PASS %-50s %3d\n' "$name" "$passed"
    else
        printf 'FAIL %-50s %3d passed, %d failed; log: %s\n' "$name" "$passed" "$failed" "$log"
        grep -E '^not ok|ERROR|Sanitizer|runtime error|\[  ERROR' "$log" | head -20 | sed 's/^/    /'
    fi
}
export -f run_one
export B logs TEST_TIMEOUT FUZZ_SMOKE_SECONDS MC_SOURCE

{
    find "$B/tests" -type f -executable 2>/dev/null | sort | sed 's/^/unit /'
    find "$MC_SOURCE/tests" -name '*_test.sh' -type f | sort | sed 's/^/script /'
    find "$MC_SOURCE/build/fuzz/fuzzers" -type f -executable 2>/dev/null | sort | sed 's/^/fuzz /'
} | xargs -P "${TEST_JOBS:-2}" -L 1 bash -c 'run_one "$0" "$1"'

passed=0
failed=0
for r in "$logs"/*.result; do
    [ -e "$r" ] || continue
    read -r p f _ <"$r"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
