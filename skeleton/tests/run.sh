#!/bin/sh
# The @APP@ app's test (make check): checks app.cfg and the controller with
# `pxl-serve -t`, serves the app on a free port, sends requests with
# tests/ws_request and checks the replies. Add your own cases at the end.
#
# make check sets PXL_SERVE, APP_SRCDIR and APP_BUILDDIR; by hand, from
# the app's directory: PXL_SERVE=pxl-serve sh tests/run.sh
: "${PXL_SERVE:=pxl-serve}"
: "${APP_SRCDIR:=.}"
: "${APP_BUILDDIR:=.}"

n=0
failed=0
ok() {
        n=$((n + 1))
        echo "ok $n - $1"
}
not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        echo "not ok $n - $1"
}

tmp=$(mktemp -d) || exit 1
pid=
cleanup() {
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# app.cfg, listening on a free port (0) and loading the controller from
# the build directory (absolute, so builds outside the source tree work).
# The migrations and the page come from the source tree; the database
# file is made next to test.cfg, in $tmp, new for every run.
sed -e 's|port *= *[0-9][0-9]*;|port = 0;|' \
        -e "s|\"controllers/|\"$APP_BUILDDIR/controllers/|g" \
        -e "s|migrations *= *\"migrations\";|migrations = \"$APP_SRCDIR/migrations\";|" \
        -e "s|root *= *\"web\";|root = \"$APP_SRCDIR/web\";|" \
        "$APP_SRCDIR/app.cfg" >"$tmp/test.cfg"

if "$PXL_SERVE" -t "$tmp/test.cfg" >"$tmp/check.out" 2>&1; then
        ok "pxl-serve -t app.cfg"
else
        cat "$tmp/check.out"
        not_ok "pxl-serve -t app.cfg"
fi

# The controller's settings are checked too, with the file and line.
sed -e 's|max_length *= *[0-9][0-9]*;|max_length = 0;|' "$tmp/test.cfg" \
        >"$tmp/bad.cfg"
want="plugins[0].settings.max_length: 0 is out of range 1..1048576"
if "$PXL_SERVE" -t "$tmp/bad.cfg" >"$tmp/check.out" 2>&1; then
        cat "$tmp/check.out"
        not_ok "pxl-serve -t refuses max_length = 0"
elif grep -F "$tmp/bad.cfg:" "$tmp/check.out" | grep -qF ": $want"; then
        ok "pxl-serve -t refuses max_length = 0"
else
        cat "$tmp/check.out"
        not_ok "pxl-serve -t refuses max_length = 0"
fi

: >"$tmp/server.log"
"$PXL_SERVE" "$tmp/test.cfg" 2>"$tmp/server.log" &
pid=$!
# The port is in the line "... listening on HOST:PORT/PATH ...".
port=
tries=0
while [ -z "$port" ] && [ "$tries" -lt 100 ] && kill -0 "$pid" 2>/dev/null; do
        port=$(sed -n 's|.*listening on [^ ]*:\([0-9][0-9]*\)/.*|\1|p' \
                "$tmp/server.log")
        [ -n "$port" ] || sleep 0.1
        tries=$((tries + 1))
done
if [ -z "$port" ]; then
        cat "$tmp/server.log"
        not_ok "pxl-serve starts"
        echo "1..$n"
        exit 1
fi
ok "pxl-serve starts on port $port"

# request NAME JSON PATTERN...: send JSON, expect every fixed string.
request() {
        name=$1
        msg=$2
        shift 2
        reply=$("$APP_BUILDDIR/tests/ws_request" 127.0.0.1 "$port" /ws "$msg")
        for want in "$@"; do
                case $reply in
                *"$want"*) ;;
                *)
                        echo "# sent:     $msg"
                        echo "# got:      $reply"
                        echo "# expected: $want"
                        not_ok "$name"
                        return
                        ;;
                esac
        done
        ok "$name"
}

request "@APP@/ping answers pong" \
        '{"type":"@APP@","action":"ping","requestId":1}' \
        '{"type":"@APP@","action":"ping","response":"pong","requestId":1}'
request "@APP@/echo answers with the configured prefix" \
        '{"type":"@APP@","action":"echo","data":{"text":"hi"}}' \
        '"type":"@APP@","action":"echo","response":{"text":"' 'hi"' \
        '"clientId":"'
request "@APP@/echo without text is an error" \
        '{"type":"@APP@","action":"echo"}' \
        '"error":"data.text must be a string"'
request "@APP@/notes answers with the rows of migrations/001_notes.sql" \
        '{"type":"@APP@","action":"notes","data":{"limit":5},"requestId":2}' \
        '{"type":"@APP@","action":"notes","response":[{"id":1,"text":"Welcome to @APP@"}],"requestId":2}'
request "@APP@/notes refuses a bad limit" \
        '{"type":"@APP@","action":"notes","data":{"limit":0}}' \
        '"error":"data.limit must be 1 to 100"'
# @APP@/later answers after its delay, never sooner (the loop's clock
# ticks every few ms: 10 ms of slack below).
start=$(date +%s%N)
request "@APP@/later answers after its delay" \
        '{"type":"@APP@","action":"later","data":{"ms":300},"requestId":4}' \
        '{"type":"@APP@","action":"later","response":{"waitedMs":300},"requestId":4}'
took=$((($(date +%s%N) - start) / 1000000))
if [ "$took" -ge 290 ]; then
        ok "@APP@/later waited 300 ms ($took ms)"
else
        not_ok "@APP@/later waited 300 ms (only $took ms)"
fi
request "@APP@/later refuses a bad ms" \
        '{"type":"@APP@","action":"later","data":{"ms":-1}}' \
        '"error":"data.ms must be 0 to 60000"'
# A client that leaves before its reply: the wait is cancelled at once.
if "$APP_BUILDDIR/tests/ws_request" -n 127.0.0.1 "$port" /ws \
        '{"type":"@APP@","action":"later","data":{"ms":60000}}'; then
        tries=0
        while ! grep -q 'later replies cancelled: 1' "$tmp/server.log" &&
                [ "$tries" -lt 100 ]; do
                sleep 0.1
                tries=$((tries + 1))
        done
fi
if grep -q 'later replies cancelled: 1' "$tmp/server.log"; then
        ok "@APP@/later is cancelled when its client leaves"
else
        not_ok "@APP@/later is cancelled when its client leaves"
fi
request "system/joinRoom (the bundled system plugin) joins a room" \
        '{"type":"system","action":"joinRoom","data":{"roomName":"lobby"},"requestId":3}' \
        '{"type":"system","action":"joinRoom","response":{"success":true,' \
        '"roomName":"lobby"' '"requestId":3}'

kill "$pid"
if wait "$pid"; then
        ok "pxl-serve stops cleanly"
else
        not_ok "pxl-serve stops cleanly"
fi
pid=
if grep -E 'level=err|Sanitizer|runtime error' "$tmp/server.log" >/dev/null
then
        cat "$tmp/server.log"
        not_ok "server log has no errors"
else
        ok "server log has no errors"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
