#!/usr/bin/env bash
# tests/bench/plot.sh draws what the bench measured: an SVG per ladder with
# its title and one p50 and one p99 line per configuration; a rate run twice
# is drawn with its last attempt (the one that decided); every ladder kept in
# docs/bench draws; a folder without data is an error, not an empty picture.
set -u
src=${MC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
plot=$src/tests/bench/plot.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/lib/tap.sh
. "$src/tests/lib/tap.sh"
# ticks FILE: the tick labels of an SVG's axes, one a line.
ticks() { grep -o '>[0-9.]*</tspan>' "$1" | tr -d '<>/tspan' | sort -u; }
echo "1..4"

# A ladder of two configurations; the second attempt at 1000 msg/s (p99 9.5
# ms) decided, the first (900 ms) did not and must not be drawn.
mkdir "$work/one"
tab=$'\t'
{
    echo "# A ladder of two"
    echo "# config${tab}rate${tab}attempt${tab}sent_per_s${tab}deliveries_per_s${tab}p50_ms${tab}p90_ms${tab}p99_ms${tab}max_ms${tab}lost${tab}errors"
    echo "one interface${tab}500${tab}0${tab}500${tab}5000${tab}0.7${tab}1${tab}5.7${tab}12${tab}0${tab}0"
    echo "one interface${tab}1000${tab}0${tab}1000${tab}9000${tab}0.8${tab}1.3${tab}900${tab}950${tab}0${tab}0"
    echo "one interface${tab}1000${tab}1${tab}1000${tab}10000${tab}0.8${tab}1.3${tab}9.5${tab}11${tab}0${tab}0"
    echo "two interfaces${tab}500${tab}0${tab}500${tab}5000${tab}0.6${tab}1${tab}4.2${tab}9${tab}0${tab}0"
} >"$work/one/ladder.tsv"
out=$("$plot" "$work/one" 2>&1)
svg=$work/one/ladder.svg
ok=1
if [ -s "$svg" ] && grep -q '</svg>' "$svg" && grep -q 'A ladder of two' "$svg"; then
    missing=""
    for s in "one interface, p99" "one interface, p50" "two interfaces, p99" "two interfaces, p50"; do
        grep -qF "$s" "$svg" || missing+="$s; "
    done
    [ -z "$missing" ] && ok=0
    out+=$'\n'"missing series: $missing"
fi
report $ok "a ladder draws with its title and a p50 and a p99 line per configuration" "$out"

# Drawn with the 900 ms attempt, the log axis would reach 1000.
ok=1
[ -s "$svg" ] && ! ticks "$svg" | grep -qx 1000 && ticks "$svg" | grep -qx 10 && ok=0
report $ok "a rate run twice is drawn with its last attempt" "ticks: $(ticks "$svg" 2>/dev/null | tr '\n' ' ')"

# Every ladder the bench keeps in docs/bench draws.
mkdir "$work/docs"
cp "$src"/docs/bench/*.tsv "$work/docs/"
out=$("$plot" "$work/docs" 2>&1)
ok=0
count=0
for tsv in "$work"/docs/*.tsv; do
    count=$((count + 1))
    [ -s "${tsv%.tsv}.svg" ] && grep -q '</svg>' "${tsv%.tsv}.svg" || { ok=1; out+=$'\n'"no picture of $tsv"; }
done
[ "$count" -gt 0 ] || { ok=1; out+=$'\n'"docs/bench holds no ladder"; }
report $ok "each of the $count ladders in docs/bench draws" "$out"

# No data: an error that says so.
mkdir "$work/empty"
out=$("$plot" "$work/empty" 2>&1)
rc=$?
ok=1
[ $rc -ne 0 ] && grep -q 'no ladder data' <<<"$out" && ! ls "$work"/empty/*.svg >/dev/null 2>&1 && ok=0
report $ok "a folder without data is an error" "status $rc: $out"
finish
