#!/usr/bin/env bash
# The layers drawn in docs/architecture.md, checked over the `#include "..."`
# lines of every .c and .h file, as TAP:
#   1. no file includes a header of a layer above its own, nor of a sibling
#      layer: common <- channel-layer <- interface, worker (tests/ may
#      include anything);
#   2. no circle of files inside one folder: foo.c and foo.h are one node,
#      and a node that reaches itself through includes names the circle.
# Run from anywhere; MC_SOURCE (or the script's own place) is the tree.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${MC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 1

# One "file<TAB>included" line per include of a project header.
edges=$(find common channel-layer interface worker tests -name '*.[ch]' -not -path '*/node_modules/*' |
    LC_ALL=C sort | while read -r f; do
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
            while read -r h; do printf '%s\t%s\n' "$f" "$h"; done
    done)
folders=$(find common channel-layer interface worker tests -name '*.[ch]' -not -path '*/node_modules/*' |
    xargs -n1 dirname | LC_ALL=C sort -u)

# The circles are found by circles.awk; this program fills in its graph.
# shellcheck disable=SC2016 # an awk program, not the shell's
program='
function node(p) { sub(/\.[ch]$/, "", p); return p }
# The layer of a folder: a file may include its own folder and lower layers.
function rank(d) {
    if (d == "common") return 0
    if (d == "channel-layer") return 1
    if (d == "interface" || d == "worker") return 2
    if (d ~ /^tests(\/|$)/) return 9
    return -1
}
function allowed(from, to) {
    if (from == to || rank(from) == 9) return 1
    return rank(to) >= 0 && rank(to) < rank(from)
}
# A step of a circle, and its end: files without their extension.
function step(a, b) { return a " -> " }
function name(n) { return n }
{
    from = $1; to = $2
    fd = dir(from); td = dir(to)
    if (!allowed(fd, td))
        bad[fd] = bad[fd] "\n#   " from " includes " to
    if (fd != td || node(from) == node(to)) next
    a = node(from); b = node(to)
    if (seen[a, b]++) next
    out[a, ++nout[a]] = b
    nodes[a] = 1; nodes[b] = 1
}
END {
    n = split(folders, fs, "\n")
    find_circles()
    t = 0; failed = 0
    for (i = 1; i <= n; i++) {
        f = fs[i]
        if (f == "") continue
        if (rank(f) != 9) {
            t++
            if (f in bad) { failed++; printf "not ok %d - %s includes no header of a layer above or beside it%s\n", t, f, bad[f] }
            else printf "ok %d - %s includes no header of a layer above or beside it\n", t, f
        }
        t++
        if (f in circles) { failed++; printf "not ok %d - %s has no circle of includes%s\n", t, f, circles[f] }
        else printf "ok %d - %s has no circle of includes\n", t, f
    }
    printf "1..%d\n", t
    exit failed > 0
}'
printf '%s\n' "$edges" |
    awk -F'\t' -v folders="$folders" -f "$here/circles.awk" -f <(printf '%s\n' "$program")
