#!/usr/bin/env bash
# Draws each benchmark ladder as an SVG with gnuplot: latency (p50 dashed,
# p99 solid, log scale) against the offered rate, one colour per
# configuration, and the 50 ms limit on p99 that ends a ladder.
#
#   tests/bench/plot.sh [DIR]     DIR/NAME.tsv -> DIR/NAME.svg (DIR: docs/bench)
#
# tests/bench/run.sh writes the .tsv files (and then runs this): a title line
# "# TITLE", a line naming the columns, then one row per step, tab-separated:
# configuration, rate, attempt, sent/s, deliveries/s, p50, p90, p99 and max
# in ms, lost, errors. A rate run twice (a failed step runs once more) is
# drawn with its last attempt, the one that decided.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../docs/bench}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is missing (Debian: gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# quote TEXT: TEXT as a gnuplot string.
quote() { printf '"%s"' "$(sed 's/[\\"]/\\&/g' <<<"$1")"; }

plotted=0
for tsv in "$dir"/*.tsv; do
    [ -e "$tsv" ] || continue
    name=$(basename "$tsv" .tsv)
    title=$(sed -n '1s/^# //p' "$tsv")
    # One file per configuration, "rate p50 p99" for the last attempt at each
    # rate, in the order the ladder ran; their names in configs.txt.
    awk -F'\t' -v out="$tmp/$name" '
        /^#/ || NF < 8 { next }
        !($1 in id) { id[$1] = ++n; print $1 > (out ".configs") }
        {
            key = id[$1] SUBSEP $2
            if (!(key in row)) order[id[$1], ++steps[id[$1]]] = $2
            row[key] = $2 " " $6 " " $8
        }
        END {
            for (c = 1; c <= n; c++)
                for (s = 1; s <= steps[c]; s++) print row[c, order[c, s]] > (out "." c ".dat")
        }' "$tsv"
    [ -s "$tmp/$name.configs" ] || { echo "plot.sh: no steps in $tsv" >&2; continue; }
    lines=""
    c=0
    while IFS= read -r config; do
        c=$((c + 1))
        dat=$(quote "$tmp/$name.$c.dat")
        lines+="${lines:+, }$dat using 1:3 with linespoints lc $c lw 2 dt 1 pt 7 ps 0.6 title $(quote "$config, p99")"
        lines+=", $dat using 1:2 with linespoints lc $c lw 2 dt 2 pt 6 ps 0.6 title $(quote "$config, p50")"
    done <"$tmp/$name.configs"
    gnuplot <<GP
set terminal svg size 760,460 dynamic font "sans,12" background "#ffffff"
set output $(quote "$dir/$name.svg")
set title $(quote "$title")
set xlabel "offered rate (messages/s)"
set ylabel "latency (ms, log scale)"
set logscale y
set format y "%g"
set xrange [0:*]
set grid xtics ytics lc rgb "#dddddd" lt 1
set key below maxrows 2
set linetype 1 lc rgb "#1f77b4"
set linetype 2 lc rgb "#d62728"
set linetype 3 lc rgb "#2ca02c"
set arrow from graph 0, first 50 to graph 1, first 50 nohead dt 3 lc rgb "#555555"
set label "p99 limit, 50 ms" at graph 0.01, first 60 left textcolor rgb "#555555"
plot $lines
GP
    echo "plot.sh: wrote $dir/$name.svg" >&2
    plotted=$((plotted + 1))
done
[ "$plotted" -gt 0 ] || { echo "plot.sh: no ladder data (*.tsv) in $dir" >&2; exit 1; }
