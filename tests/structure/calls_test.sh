#!/usr/bin/env bash
# The layers of docs/architecture.md, checked over the calls the compiler
# saw, as TAP: no circle of files inside one folder of common/,
# channel-layer/, interface/ and worker/. layering_test.sh sees includes
# only; a file can call one that it reaches through a header of another, or
# declare what it calls itself. Here `nm` reads each object file of a build:
# the global functions it defines (T) and the symbols it leaves to others
# (U). A file that calls, or takes the address of, a function defined by
# another file of its folder depends on it; a node that reaches itself
# through such files names the circle, with the functions on each step.
# A call through a function pointer is no dependency of the caller on the
# callee, and nm does not see one.
#
# MC_BUILD is the build tree (build/asan by default; make check builds
# it), MC_SOURCE (or the script's own place) the source tree. Every source
# file needs its object there (a file not built fails the test); an object
# whose source file is gone is left out.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${MC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 1
build=${MC_BUILD:-$root/build/asan}
folders="common channel-layer interface worker"

# One "folder<TAB>file<TAB>symbol<TAB>type" line per global symbol, and
# "folder<TAB>file<TAB><TAB>missing" for a source file with no object.
symbols=$(for f in $folders; do
    for c in "$f"/*.c; do
        [ -e "$c" ] || continue
        name=$(basename "$c" .c)
        o=$build/obj/$f/$name.o
        if [ -e "$o" ]; then
            nm -P -g "$o" | awk -v f="$f" -v n="$name" '{ printf "%s\t%s\t%s\t%s\n", f, n, $1, $2 }'
        else
            printf '%s\t%s\t\tmissing\n' "$f" "$name"
        fi
    done
done)

# The circles are found by circles.awk; this program fills in its graph.
# shellcheck disable=SC2016 # an awk program, not the shell's
program='
# A step of a circle: "a.c (the functions a calls in b) -> "; its end.
function step(a, b) { return a ".c (" calls[a, b] ") -> " }
function name(n) { return n ".c" }
$1 != "" {
    node = $1 "/" $2
    nodes[node] = 1
    if ($4 == "missing") missing[$1] = missing[$1] " " $2 ".c"
    if ($4 == "T") defined[$1, $3] = node
    else if ($4 == "U") used[++nused] = node "\t" $1 "\t" $3
}
END {
    for (i = 1; i <= nused; i++) {
        split(used[i], u, "\t")
        to = defined[u[2], u[3]]
        if (to == "" || to == u[1]) continue
        if (!((u[1], to) in calls)) {
            out[u[1], ++nout[u[1]]] = to
            calls[u[1], to] = u[3]
        } else {
            calls[u[1], to] = calls[u[1], to] ", " u[3]
        }
    }
    find_circles()
    t = 0; failed = 0
    nf = split(folders, fs, " ")
    for (i = 1; i <= nf; i++) {
        f = fs[i]
        found = 0
        for (n in nodes) if (index(n, f "/") == 1) found = 1
        t++
        if (!found || f in missing) {
            failed++
            printf "not ok %d - %s has no circle of calls\n#   not built in %s:%s\n", t, f, build, found ? missing[f] : " the folder"
            continue
        }
        if (f in circles) { failed++; printf "not ok %d - %s has no circle of calls%s\n", t, f, circles[f] }
        else printf "ok %d - %s has no circle of calls\n", t, f
    }
    printf "1..%d\n", t
    exit failed > 0
}'
printf '%s\n' "$symbols" | awk -F'\t' -v folders="$folders" -v build="$build" \
    -f "$here/circles.awk" -f <(printf '%s\n' "$program")
