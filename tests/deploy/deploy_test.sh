#!/usr/bin/env bash
# deploy/: the systemd units, as `make install` installs them (into a prefix
# in a temporary folder, with this build's programs), pass `systemd-analyze
# verify` without a single warning, and the nginx example passes `nginx -t`
# with a throw-away certificate.
set -u
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "1..4"

# systemd: the units as installed, naming the installed programs.
build=$(cd "$bin/.." && pwd)
out=$(make -C "$src" --no-print-directory install FLAVOUR="$(basename "$build")" B="$build" \
    PREFIX="$work/prefix" 2>&1) || printf 'make install failed:\n%s\n' "$out" | sed 's/^/# /'
cp "$work"/prefix/lib/systemd/system/* "$work"/
out=$(cd "$work" && systemd-analyze verify --man=no ./chat-interface@1.service \
    ./chat-worker@1.service ./multichat.target 2>&1)
status=$?
[ -z "$out" ] || status=1
report $status "the installed systemd units verify cleanly" "$out"

# The check itself must catch a mistake: a misspelt hardening key.
sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$work/chat-interface@.service" \
    >"$work/broken@.service"
out=$(cd "$work" && systemd-analyze verify --man=no ./broken@1.service 2>&1)
case $out in
*ProtectSystm*) report 0 "a misspelt key in a unit is reported" ;;
*) report 1 "a misspelt key in a unit is reported" "$out" ;;
esac

# Prometheus: the example scrapes each worker where its unit has it serve
# (CHAT_METRICS_LISTEN=127.0.0.1:920%i).
pattern=$(sed -n 's/^Environment=CHAT_METRICS_LISTEN=//p' "$src/deploy/systemd/chat-worker@.service")
want=$(for i in 1 2 3 4; do printf "'%s'\n" "${pattern//%i/$i}"; done)
got=$(sed -n '/job_name: multichat-worker/,/job_name/p' "$src/deploy/prometheus/multichat.yml" |
    grep -o "'[0-9.:]*'")
[ -n "$pattern" ] && [ "$got" = "$want" ]
report $? "the Prometheus example scrapes the workers where their units serve" "$got"

# nginx: the example site inside a minimal main configuration.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=chat.example.com \
    -keyout "$work/privkey.pem" -out "$work/fullchain.pem" >/dev/null 2>&1
sed "s|/etc/ssl/multichat/|$work/|" "$src/deploy/nginx/multichat.conf" >"$work/site.conf"
cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    include $work/site.conf;
}
CONF
out=$(nginx -t -q -p "$work" -c "$work/nginx.conf" 2>&1)
report $? "nginx example passes nginx -t" "$out"
finish
