#!/usr/bin/env bash
# `make run` works the first time on a machine where the llhttp package is not
# installed yet. In a private mount namespace, llhttp's sources and header are
# hidden under empty tmpfs mounts, and the install step (the Makefile's
# INSTALL_DEPS) "installs" the package by unmounting them. In a copy of the
# tracked tree, with nothing built, `make run` must install, build, start and
# print its URL; then /healthz and the login page answer over HTTP, and
# Ctrl-C ends it and everything it started.
set -u
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
hidden=(/usr/share/llhttp /usr/share/include/llhttp) # Debian's node-llhttp
if [ -z "${MC_IN_NAMESPACE:-}" ]; then
    if ! unshare --mount true 2>/dev/null; then
        echo "1..1"
        echo "ok 1 - # SKIP no mount namespace here (needs root)"
        exit 0
    fi
    MC_IN_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
fi
echo "1..6"

work=$(mktemp -d)
pid=""
run_pids=()
cleanup() {
    [ -z "$pid" ] || kill -KILL -- "-$pid" 2>/dev/null
    local p
    for p in "${run_pids[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# 1. The machine without the package.
ok=0
detail=""
for d in "${hidden[@]}"; do
    if [ -z "$(ls -A "$d" 2>/dev/null)" ]; then
        ok=1 detail+="$d is missing or empty: node-llhttp must be installed to be hidden"$'\n'
    elif ! mount -t tmpfs -o size=64k,mode=755 not-installed "$d"; then
        ok=1 detail+="cannot mount over $d"$'\n'
    elif [ -n "$(ls -A "$d")" ]; then
        ok=1 detail+="$d is still visible"$'\n'
    fi
done
report $ok "llhttp's files are hidden: ${hidden[*]}" "$detail"

# The install step: reveals the files, and says when it ran.
cat >"$work/install-llhttp" <<EOF
#!/bin/sh
# Stands for deploy/install-deps.sh installing node-llhttp.
echo "install-llhttp: installing node-llhttp"
umount ${hidden[*]}
EOF
chmod +x "$work/install-llhttp"

# A fresh clone: the tracked files, nothing built.
mkdir "$work/tree"
(
    cd "$src" &&
        if git rev-parse --git-dir >/dev/null 2>&1; then
            git ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done
        else
            find . \( -name build -o -name bin -o -name var -o -name node_modules \) -prune \
                -o -type f -print0
        fi
) | (cd "$src" && tar --null -T - -cf -) | tar -xf - -C "$work/tree"

# 2. Without the package, a build stops at once and says why.
out=$(cd "$work/tree" && make --no-print-directory all 2>&1)
status=$?
case $status:$out in
0:*) report 1 "without llhttp, make says so" "make succeeded: $out" ;;
*gcc*) report 1 "without llhttp, make says so before compiling" "$out" ;;
*"no llhttp sources in /usr/share/llhttp"*) report 0 "without llhttp, make says so before compiling" ;;
*) report 1 "without llhttp, make says so before compiling" "$out" ;;
esac

# 3. make run, as a shell runs it in the foreground (its own process group).
port=$(free_port)
rport=$(free_port)
log=$work/run.log
set -m
(cd "$work/tree" && exec make --no-print-directory run INSTALL_DEPS="$work/install-llhttp" \
    PORT="$port" REDIS_PORT="$rport" CHAT_STATE="$work/state") >"$log" 2>&1 &
pid=$!
set +m
url="http://127.0.0.1:$port/"
printed() { grep -q "Multichat is running: $url" "$log" || gone "$pid"; }
t0=$SECONDS
until_true 280 printed
took=$((SECONDS - t0))
ok=0
detail=""
grep -q "Multichat is running: $url" "$log" || { ok=1 detail="no URL; the log ends:"$'\n'"$(tail -15 "$log")"; }
installed_at=$(grep -n '^install-llhttp:' "$log" | head -1 | cut -d: -f1)
built_at=$(grep -n '^gcc ' "$log" | head -1 | cut -d: -f1)
if [ $ok = 0 ] && { [ -z "$installed_at" ] || [ -z "$built_at" ] || [ "$installed_at" -gt "$built_at" ]; }; then
    ok=1 detail="the install step did not run before llhttp was built"
fi
report $ok "make run installs, builds and prints its URL the first time (${took} s)" "$detail"
for p in $(descendants "$pid"); do run_pids+=("$p"); done

# 4, 5. It answers.
body=$(curl -sS --max-time 10 "${url}healthz" 2>&1)
[ "$body" = ok ]
report $? "GET /healthz answers ok" "$body"
page=$(curl -sS --max-time 10 -w '\nstatus %{http_code}' "${url}accounts/login/" 2>&1)
case $page in
*'name="password"'*'status 200') report 0 "GET /accounts/login/ shows the login form" ;;
*) report 1 "GET /accounts/login/ shows the login form" "$(tail -5 <<<"$page")" ;;
esac

# 6. Ctrl-C: SIGINT to the process group.
kill -INT -- "-$pid" 2>/dev/null
ok=0
detail=""
wait_for_exit 60 "$pid" || { ok=1 detail+="still running 60 s after Ctrl-C"$'\n'; }
grep -q '^multichat: stopped (exit status 130)' "$log" ||
    { ok=1 detail+="no 'stopped' line: $(tail -3 "$log")"$'\n'; }
if left=$(any_alive "${run_pids[@]}"); then ok=1 detail+="left running: $left"$'\n'; fi
! redis_answers "$rport" || { ok=1 detail+="Redis still answers"$'\n'; }
[ ${#run_pids[@]} -ge 5 ] || { ok=1 detail+="found only ${#run_pids[@]} processes of the run"$'\n'; }
report $ok "Ctrl-C ends make run and the ${#run_pids[@]} processes it started" "$detail"
pid=""
finish
