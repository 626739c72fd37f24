#!/usr/bin/env bash
# make install and make uninstall, into a DESTDIR with a PREFIX: the tree they
# make and its modes, the directories filled in the units and the environment
# file, the installed programs serving the installed web root (a private
# redis-server, the login page and a static file over HTTP), an environment
# file that is never overwritten, and what uninstall leaves: nothing, or only
# an environment file the operator changed. Installs this test build
# (MC_BUILD, FLAVOUR from its name).
set -u
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
echo "1..7"

build=$(cd "$bin/.." && pwd)
dest=$work/root
prefix=/opt/chat
root=$dest$prefix
mk() { # mk TARGET: make TARGET into the DESTDIR, its output in $work/make.log
    make -C "$src" --no-print-directory "$1" FLAVOUR="$(basename "$build")" B="$build" \
        DESTDIR="$dest" PREFIX="$prefix" >"$work/make.log" 2>&1
}
# files: every file under the DESTDIR with its mode, one a line.
files() { (cd "$dest" && find . -type f -printf '%m %P\n' | sort); }

# 1. The tree.
mk install
status=$?
expected=$({
    for p in chat-interface chat-worker chatctl; do echo "755 ${prefix#/}/bin/$p"; done
    for u in chat-interface@.service chat-worker@.service multichat.target; do
        echo "644 ${prefix#/}/lib/systemd/system/$u"
    done
    echo "640 ${prefix#/}/etc/multichat/multichat.env"
    echo "644 ${prefix#/}/share/doc/multichat/operations.md"
    (cd "$src" && find web -type f) | sed "s|^|644 ${prefix#/}/share/multichat/|"
} | sort)
got=$(files)
[ $status = 0 ] && [ "$got" = "$expected" ]
report $? "make install DESTDIR PREFIX=$prefix installs the programs, web root, units, environment file" \
    "$(cat "$work/make.log"; diff <(echo "$expected") <(echo "$got"))"

# 2. Directories filled in.
units=$root/lib/systemd/system
env_file=$root/etc/multichat/multichat.env
problems=$(
    grep -l '@[A-Z_]*@' "$units"/* "$env_file"
    grep -qx "ExecStart=$prefix/bin/chat-interface" "$units/chat-interface@.service" ||
        echo "chat-interface@.service: no ExecStart=$prefix/bin/chat-interface"
    grep -qx "ExecStart=$prefix/bin/chat-worker" "$units/chat-worker@.service" ||
        echo "chat-worker@.service: no ExecStart=$prefix/bin/chat-worker"
    grep -qx "ExecStartPre=$prefix/bin/chatctl migrate" "$units/chat-worker@.service" ||
        echo "chat-worker@.service: no ExecStartPre=$prefix/bin/chatctl migrate"
    for u in chat-interface@.service chat-worker@.service; do
        grep -qx "EnvironmentFile=$prefix/etc/multichat/multichat.env" "$units/$u" ||
            echo "$u: no EnvironmentFile=$prefix/etc/multichat/multichat.env"
    done
    grep -qx "CHAT_WEB_ROOT=$prefix/share/multichat/web" "$env_file" ||
        echo "multichat.env: no CHAT_WEB_ROOT=$prefix/share/multichat/web"
)
[ -z "$problems" ]
report $? "the units and the environment file name the installed paths" "$problems"

# 3, 4. The installed programs serve the installed web root.
rport=$(free_port)
port=$(free_port)
mkdir "$work/state"
start_redis "$rport" "$work/state"
pids+=("$redis_pid")
export CHAT_REDIS_URL=redis://127.0.0.1:$rport CHAT_DB=$work/state/chat.sqlite3
export CHAT_WEB_ROOT=$dest$prefix/share/multichat/web CHAT_LISTEN=127.0.0.1:$port
"$root/bin/chatctl" migrate >"$work/programs.log" 2>&1
"$root/bin/chat-worker" >>"$work/programs.log" 2>&1 &
pids+=($!)
"$root/bin/chat-interface" >>"$work/programs.log" 2>&1 &
pids+=($!)
until_true 60 http_answers "127.0.0.1:$port"
page=$(curl -sS --max-time 10 -w '\nstatus %{http_code}' "http://127.0.0.1:$port/accounts/login/" 2>&1)
case $page in
*'name="password"'*'status 200') report 0 "the installed programs serve the login page" ;;
*) report 1 "the installed programs serve the login page" "$page"$'\n'"$(tail "$work/programs.log")" ;;
esac
css=chat.css
curl -sS --max-time 10 -o "$work/got.css" "http://127.0.0.1:$port/static/$css" 2>"$work/curl.err" &&
    cmp -s "$work/got.css" "$src/web/static/$css"
report $? "GET /static/$css is the installed file" "$(cat "$work/curl.err")"
kill -TERM "${pids[@]}" 2>/dev/null
for p in "${pids[@]}"; do wait_for_exit 30 "$p"; done
pids=()

# 5. Uninstall leaves nothing of ours.
mk uninstall
status=$?
left=$(cd "$dest" && find . \( -type f -o -path '*multichat*' \) -printf '%P\n')
[ $status = 0 ] && [ -z "$left" ]
report $? "make uninstall removes every file and directory it installed" \
    "$(cat "$work/make.log")"$'\n'"left: $left"

# 6. An environment file of the operator's is never overwritten...
mk install
echo "CHAT_LOG_LEVEL=debug" >>"$env_file"
before=$(cat "$env_file")
mk install
[ "$(cat "$env_file")" = "$before" ] && grep -q "keeping .*multichat.env" "$work/make.log"
report $? "make install keeps an existing environment file" "$(cat "$work/make.log")"

# 7. ... nor removed once changed; the rest goes.
mk uninstall
left=$(cd "$dest" && find . -type f -printf '%P\n')
[ "$left" = "${prefix#/}/etc/multichat/multichat.env" ] && [ "$(cat "$env_file")" = "$before" ]
report $? "make uninstall keeps a changed environment file, and only it" \
    "$(cat "$work/make.log")"$'\n'"left: $left"
finish
