# shellcheck shell=bash
# Sourced by the shell tests: TAP results.
#
#   report STATUS NAME [DETAIL]   one TAP line; DETAIL as "# " comments
#   finish                        exit status: 1 if anything failed
n=0
fails=0
report() {
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        fails=$((fails + 1))
        echo "not ok $n - $2"
        [ -z "${3:-}" ] || printf '%s\n' "$3" | sed 's/^/# /'
    fi
}
finish() { exit $((fails > 0)); }
