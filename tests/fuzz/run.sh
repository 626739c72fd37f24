#!/usr/bin/env bash
# make fuzz: runs every fuzz target for SECONDS (default 60) each, starting
# from its seed corpus in tests/fuzz/corpus/<target>/ and keeping what it
# learns in build/fuzz/corpus/<target>/. A crash leaves its input in
# build/fuzz/crashes/ and makes the run fail.
set -u
seconds=${1:-60}
cd "$(dirname "$0")/../.."
mkdir -p build/fuzz/crashes
status=0
for fuzzer in build/fuzz/fuzzers/*; do
    [ -x "$fuzzer" ] || continue
    name=$(basename "$fuzzer")
    corpus=build/fuzz/corpus/$name
    mkdir -p "$corpus"
    echo "== $name for ${seconds}s"
    if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -artifact_prefix=build/fuzz/crashes/"$name"- "$corpus" tests/fuzz/corpus/"$name" \
        2>build/fuzz/"$name".log; then
        echo "!! $name failed: see build/fuzz/$name.log and build/fuzz/crashes/"
        status=1
    fi
    grep -E '^#[0-9]+.*(DONE|pulse)' build/fuzz/"$name".log | tail -1
done
exit $status
