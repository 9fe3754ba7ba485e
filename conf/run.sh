#!/bin/sh
# run.sh: what `make run` does: start the gateway (which starts the embedded Redis), then a
# worker, print the URLs, and on Ctrl-C or SIGTERM stop the worker, then the gateway (it drains
# in-flight requests, then stops Redis). Usage: conf/run.sh [BUILD_DIR] [CONF]
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

cat <<MSG

  antre is running (Ctrl-C stops it)
    applicants:  http://$listen/healthz   http://$listen/readyz
    metrics:     http://$admin/metrics
    config:      $conf   (reload: kill -HUP $gw)

MSG
wait "$gw"
# The gateway ended by itself: stop the worker too.
[ -n "$wk" ] && kill -TERM "$wk" 2>/dev/null && wait "$wk"
exit 1
