#!/bin/bash
# `pkisim serve --access-log off` (issue 12 §3, as nginx's `access_log off`): no access line
# anywhere and no file named "off"; without the flag the same requests are logged on stderr
# (so the first check can fail).
source "$(dirname "$0")/lib.sh" "$@"
cd "$T"
config=$'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto'
requests() {
    curl -sf -o /dev/null "$URL?operation=GetCACert&message=labca" || fail "GetCACert"
    curl -s -o /dev/null "$URL?operation=Nope" || fail "unknown operation"
    curl -s -o /dev/null --http1.1 "$URL?operation=GetCACaps" || fail "GetCACaps"
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }

start_server "$config" --ios-limits off --access-log off
requests
stop
[[ ! -e off ]] || fail "--access-log off wrote a file named off"
if grep -E ' (GET|POST) ' "$T/server.err"; then fail "--access-log off logged on stderr"; fi

start_server "$config" --ios-limits off
requests
stop
grep -q ' GET GetCACert 200 ' "$T/server.err" || fail "no access line without the flag: $(cat "$T/server.err")"
grep -q ' GET Nope 400 ' "$T/server.err" || fail "no 400 line: $(cat "$T/server.err")"
echo "OK"
