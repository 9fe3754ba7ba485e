#!/bin/sh
# run.sh: what `make run` does: start the gateway (which starts the embedded Redis), then a
# worker, print the URLs (each room's waiting page, health, metrics), and on Ctrl-C or SIGTERM
# stop the worker, then the gateway (it drains in-flight requests, then stops Redis).
# Usage: conf/run.sh [BUILD_DIR] [CONF]
set -u
build=${1:-build}
conf=${2:-conf/antre.conf}
mkdir -p var

"$build/antre-gateway" -t -c "$conf" >/dev/null || { "$build/antre-gateway" -t -c "$conf"; exit 1; }

# Each program runs in its own session so that Ctrl-C reaches only this script, which then
# stops them in order.
setsid "$build/antre-gateway" -c "$conf" &
gw=$!
wk=

stop() {
    trap - INT TERM
    echo
    echo "run: stopping"
    [ -n "$wk" ] && kill -TERM "$wk" 2>/dev/null && wait "$wk"
    kill -TERM "$gw" 2>/dev/null
    wait "$gw"
    echo "run: stopped"
    exit 0
}
trap stop INT TERM

listen=$(sed -n '/^\[gateway\]/,/^\[/s/^listen *= *//p' "$conf" | head -n1)
admin=$(sed -n '/^\[gateway\]/,/^\[/s/^admin_listen *= *//p' "$conf" | head -n1)
listen=${listen:-127.0.0.1:8080}
admin=${admin:-127.0.0.1:8081}
# A wildcard listener is reached through loopback.
case $listen in '*:'* | 0.0.0.0:*) listen=127.0.0.1:${listen##*:} ;; '[::]:'*) listen=[::1]:${listen##*:} ;; esac
case $admin in '*:'* | 0.0.0.0:*) admin=127.0.0.1:${admin##*:} ;; '[::]:'*) admin=[::1]:${admin##*:} ;; esac

# Wait until the gateway answers (it starts Redis first), at most 15 s.
i=0
until curl -fs "http://$listen/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 150 ] || ! kill -0 "$gw" 2>/dev/null; then
        echo "run: the gateway did not come up; see the log above" >&2
        kill -TERM "$gw" 2>/dev/null
        wait "$gw"
        exit 1
    fi
    sleep 0.1
done

setsid "$build/antre-worker" -c "$conf" &
wk=$!

# The waiting page of every configured room ([room.NAME] sections).
rooms=$(sed -n 's/^[[:space:]]*\[room\.\([a-z0-9_-]*\)\][[:space:]]*$/\1/p' "$conf")

echo
echo "  antre is running (Ctrl-C stops it)"
for r in $rooms; do
    echo "    waiting page: http://$listen/rooms/$r"
done
[ -n "$rooms" ] || echo "    waiting page: (no [room.NAME] section in $conf)"
echo "    health:       http://$listen/healthz   http://$listen/readyz"
echo "    metrics:      http://$admin/metrics"
echo "    config:       $conf   (reload: kill -HUP $gw)"
echo
wait "$gw"
# The gateway ended by itself: stop the worker too.
[ -n "$wk" ] && kill -TERM "$wk" 2>/dev/null && wait "$wk"
exit 1
