#!/usr/bin/env bash
# deploy/: the systemd units pass `systemd-analyze verify` without a single
# warning (pointed at the programs this build made), and the nginx example
# passes `nginx -t` with a throw-away certificate.
set -u
src=${MC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${MC_BUILD:-$src/build/asan}/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
fails=0
report() { # report STATUS NAME [DETAIL]
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        fails=$((fails + 1))
        echo "not ok $n - $2"
        [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
    fi
}

echo "1..4"

# systemd: the units as shipped, with the programs' directory swapped for ours.
cp "$src"/deploy/systemd/* "$work"/
sed -i "s|/usr/local/bin/|$bin/|g; s|/etc/multichat/multichat.env|$work/multichat.env|" \
    "$work"/*.service
out=$(cd "$work" && systemd-analyze verify --man=no ./chat-interface@1.service \
    ./chat-worker@1.service ./multichat.target 2>&1)
status=$?
[ -z "$out" ] || status=1
report $status "systemd units verify cleanly" "$out"

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
exit $((fails > 0))
