#!/bin/bash
# `pkisim fleet` refuses what it must refuse, before any connection: a non-loopback target
# without --allow-remote, a fleet over --max-clients, a bad URL (exit 2, a message that says
# what to fix). No server is needed: nothing may be sent.
set -uo pipefail
PKISIM=${1:?usage: $0 PKISIM_BINARY}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/pkisim-fleet-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
S=$SRC/configs/fidelity/loop.toml
expect() {  # expect RC PATTERN -- ARGS...
    local want=$1 pattern=$2
    shift 3
    out=$("$PKISIM" fleet "$S" --out "$T/o" --quiet "$@" 2>&1)
    rc=$?
    [[ $rc -eq $want ]] || { echo "FAIL: exit $rc (want $want) for $*: $out"; exit 1; }
    grep -q -- "$pattern" <<<"$out" || { echo "FAIL: '$pattern' not in: $out"; exit 1; }
    echo "ok: $* -> $rc: $out"
}
expect 2 "not a loopback address; pass --allow-remote" -- --target http://192.0.2.1:8080
expect 2 "over the cap of 10 (--max-clients)" -- --target http://127.0.0.1:9 --max-clients 10
expect 2 "expected http://host" -- --target https://127.0.0.1:8443
# Loopback but nobody listens: the GetCACert probe fails, the fleet stops at once.
expect 2 "GetCACert" -- --target http://127.0.0.1:9
[[ ! -e $T/o/summary.json ]] || { echo "FAIL: a report was written"; exit 1; }
echo "OK"
