#!/usr/bin/env bash
# bin/chatctl as a real process on a real database: every command, and the
# exit status and message of each kind of mistake; once on a sqlite file,
# once on a database of a private PostgreSQL server. Then copy-to, from
# sqlite into PostgreSQL.
set -u
CTL=${MC_BUILD:?MC_BUILD must point at a build tree}/bin/chatctl
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Small argon2 parameters keep the test fast; the defaults are tested in C.
export CHAT_ARGON2_MEMORY_KIB=64 CHAT_ARGON2_TIME=1
unset CHAT_SUPERUSER_PASSWORD

n=0
failed=0
backend=""
ok() {
    n=$((n + 1))
    echo "ok $n - $backend: $1"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $backend: $1"
}
# expect NAME STATUS OUTPUT-PATTERN -- COMMAND...: runs COMMAND, checks its
# exit status and that stdout+stderr match the extended regex.
expect() {
    local name=$1 want=$2 pattern=$3
    shift 4
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && echo "$out" | grep -Eq -- "$pattern"; then
        ok "$name"
    else
        not_ok "$name"
        echo "# status $rc (wanted $want), output: $out" | head -5
    fi
}

# The server, its URL, and fresh databases on it (pg_db NAME prints a URL).
coproc PG { "$here/../support/postgres.sh"; }
read -r pg_url <&"${PG[0]}" || pg_url=""
pg_db() {
    psql -q "$pg_url" -c "CREATE DATABASE $1" >/dev/null && echo "${pg_url%/*}/$1"
}

# suite MAIN OTHER UNREACHABLE: every command on the empty database MAIN.
suite() {
export CHAT_DB=$1
local other=$2 unreachable=$3
expect "help lists the commands" 0 "room staff-only ID on\|off" -- "$CTL" --help
expect "migrate creates the schema" 0 "schema version 7" -- "$CTL" migrate
expect "migrate again changes nothing" 0 "schema version 7" -- "$CTL" migrate
expect "--db beats CHAT_DB" 0 "schema version 7" -- "$CTL" --db "$other" migrate
echo pw | "$CTL" --db "$other" user add elsewhere --password-stdin
"$CTL" --db "$other" user list | grep -q elsewhere && ! "$CTL" user list | grep -q elsewhere &&
    ok "--db names the database" || not_ok "--db names the database"

expect "user add" 0 "" -- sh -c "echo pw1 | '$CTL' user add ann --password-stdin"
expect "user add --staff" 0 "" -- sh -c "echo pw2 | '$CTL' user add bob --staff --password-stdin"
expect "a taken username is refused" 1 "taken" -- sh -c "echo pw | '$CTL' user add ann --password-stdin"
expect "user add without --password-stdin" 2 "password-stdin" -- "$CTL" user add carl
expect "user add without a password" 2 "no password" -- sh -c "'$CTL' user add carl --password-stdin </dev/null"
expect "user add without a name" 2 "NAME" -- "$CTL" user add --password-stdin

expect "createsuperuser --noinput needs the password" 2 "CHAT_SUPERUSER_PASSWORD" -- \
    "$CTL" createsuperuser --username admin --noinput
expect "createsuperuser --noinput" 0 "Superuser created" -- \
    env CHAT_SUPERUSER_PASSWORD=secret "$CTL" createsuperuser --username admin --noinput
expect "createsuperuser reads name and password" 0 "Superuser created" -- \
    sh -c "printf 'root\nsecret\n' | '$CTL' createsuperuser"

expect "user list" 0 "2	bob	staff	active" -- "$CTL" user list
expect "user list shows superusers" 0 "admin	superuser" -- "$CTL" user list
expect "user staff off" 0 "" -- "$CTL" user staff bob off
expect "user list after staff off" 0 "2	bob	-	active" -- "$CTL" user list
expect "user superuser on makes staff too" 0 "" -- "$CTL" user superuser bob on
expect "user list after superuser on" 0 "2	bob	superuser	active" -- "$CTL" user list
expect "user superuser off leaves staff" 0 "" -- "$CTL" user superuser bob off
expect "user list after superuser off" 0 "2	bob	staff	active" -- "$CTL" user list
"$CTL" user superuser bob on && "$CTL" user staff bob off
expect "user staff off unmakes a superuser" 0 "2	bob	-	active" -- "$CTL" user list
expect "user superuser needs on or off" 2 "on or off" -- "$CTL" user superuser bob yes
expect "user add --superuser" 0 "" -- sh -c "echo pw3 | '$CTL' user add sam --superuser --password-stdin"
expect "user list shows the new superuser" 0 "sam	superuser	active" -- "$CTL" user list
expect "user staff needs on or off" 2 "on or off" -- "$CTL" user staff bob maybe
expect "user staff of nobody" 1 "no user" -- "$CTL" user staff nobody on
expect "user deactivate" 0 "" -- "$CTL" user deactivate ann
expect "user list after deactivate" 0 "1	ann	-	inactive" -- "$CTL" user list
expect "user passwd" 0 "" -- sh -c "echo new | '$CTL' user passwd bob"
expect "user passwd of nobody" 1 "no user" -- sh -c "echo new | '$CTL' user passwd nobody"
expect "unknown user command" 2 "unknown command" -- "$CTL" user frobnicate x

# Import: thousands in one call, all or none.
seq 1 2000 | awk '{ printf "user%d pw%d%s\n", $1, $1, ($1 % 500 == 0 ? " staff" : "") }' >"$dir/users.txt"
expect "user import of 2000 lines" 0 "2000 users imported" -- sh -c "'$CTL' user import <'$dir/users.txt'"
count=$("$CTL" user list | wc -l)
[ "$count" -eq 2005 ] && ok "every imported user is there" || not_ok "every imported user is there ($count)"
printf 'fresh1 pw\nfresh2 pw extra\n' >"$dir/bad.txt"
expect "a bad import line names its line" 1 "line 2" -- sh -c "'$CTL' user import <'$dir/bad.txt'"
"$CTL" user list | grep -q fresh1 && not_ok "a failed import adds nobody" || ok "a failed import adds nobody"
printf 'fresh3 pw\nuser7 pw\n' >"$dir/dup.txt"
expect "an import with a taken name fails" 1 "taken" -- sh -c "'$CTL' user import <'$dir/dup.txt'"
"$CTL" user list | grep -q fresh3 && not_ok "it adds nobody either" || ok "it adds nobody either"

expect "room add refuses a title that is not UTF-8" 1 "UTF-8" -- "$CTL" room add "$(printf 'Caf\351')"
expect "user add refuses a name that is not UTF-8" 1 "UTF-8" -- \
    sh -c "echo pw | '$CTL' user add \"\$(printf 'j\\377')\" --password-stdin"
expect "room add prints the id" 0 "^1$" -- "$CTL" room add "Lobby"
expect "room add --staff-only" 0 "^2$" -- "$CTL" room add "Staff room" --staff-only
expect "room list" 0 "2	Staff room	staff-only" -- "$CTL" room list
expect "room rename" 0 "" -- "$CTL" room rename 1 "Hall"
expect "room staff-only" 0 "" -- "$CTL" room staff-only 1 on
expect "room list after changes" 0 "1	Hall	staff-only" -- "$CTL" room list
expect "room rm" 0 "" -- "$CTL" room rm 2
expect "room rm of a removed room" 1 "no room 2" -- "$CTL" room rm 2
expect "room ids are numbers" 2 "room id" -- "$CTL" room rm two
expect "room add needs a title" 2 "TITLE" -- "$CTL" room add
expect "an empty title is refused" 1 "title" -- "$CTL" room add ""
expect "room rename refuses a title that is not UTF-8" 1 "UTF-8" -- "$CTL" room rename 1 "$(printf '\300\257')"
expect "room staff-only needs on or off" 2 "on or off" -- "$CTL" room staff-only 1 yes

expect "no command" 2 "which command" -- "$CTL"
expect "an unknown command" 2 "unknown command" -- "$CTL" frobnicate
expect "an unknown option" 2 "unknown option" -- "$CTL" --colour red migrate
expect "an unopenable database" 1 "cannot open" -- "$CTL" --db "$unreachable" migrate

}

backend=sqlite
suite "$dir/chat.sqlite3" "$dir/other.sqlite3" /nonexistent/dir/x.db

backend=postgresql
if [ -z "$pg_url" ]; then
    not_ok "a private PostgreSQL server starts"
else
    suite "$(pg_db chat)" "$(pg_db other)" "postgresql://mc@127.0.0.1:1/chat"

    # copy-to: the sqlite database of the first suite into PostgreSQL.
    backend="sqlite to postgresql"
    export CHAT_DB=$dir/chat.sqlite3
    target=$(pg_db moved)
    expect "copy-to copies and counts" 0 "^copied 2005 users, 1 rooms, 0 sessions, 0 messages, 0 whispers, 0 secrets into postgresql://mc@127.0.0.1:[0-9]+/moved$" -- \
        "$CTL" copy-to "$target"
    [ "$("$CTL" user list)" = "$("$CTL" --db "$target" user list)" ] &&
        ok "the copy lists the same users" || not_ok "the copy lists the same users"
    [ "$("$CTL" room list)" = "$("$CTL" --db "$target" room list)" ] &&
        ok "the copy lists the same rooms" || not_ok "the copy lists the same rooms"
    expect "the copy's rooms get new ids" 0 "^3$" -- "$CTL" --db "$target" room add "After"
    expect "copy-to refuses a database that is not empty" 1 "not empty \(it holds users, rooms\)" -- \
        "$CTL" copy-to "$target"
    expect "copy-to needs a target" 2 "TARGET" -- "$CTL" copy-to
    expect "copy-to an unreachable server" 1 "cannot open" -- "$CTL" copy-to "postgresql://mc@127.0.0.1:1/x"
    out=$("$CTL" copy-to "$(pg_db piped)" 2>&1)
    echo "$out" | grep -q copying && not_ok "no progress line without a terminal" ||
        ok "no progress line without a terminal"
    expect "a progress line on a terminal" 0 "copying users: 2005 of 2005" -- \
        script -qec "'$CTL' copy-to '$(pg_db on_tty)'" /dev/null
fi
exec {PG[1]}>&-
wait

echo "1..$n"
[ "$failed" -eq 0 ]
