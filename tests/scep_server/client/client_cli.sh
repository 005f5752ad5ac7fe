#!/bin/bash
# `pkisim client` exit codes that need no server: 2 usage, 3 unreachable (closed port).
set -uo pipefail
PKISIM=${1:?usage: $0 PKISIM_BINARY}
T=$(mktemp -d /tmp/pkisim-client-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
check() {  # check RC PATTERN ARGS...
    local want=$1 pattern=$2
    shift 2
    local out rc=0
    out=$("$PKISIM" client "$@" 2>&1) || rc=$?
    echo "$out"
    [[ $rc == "$want" ]] || fail "pkisim client $* -> exit $rc (want $want)"
    grep -q -- "$pattern" <<<"$out" || fail "pkisim client $* -> '$out' lacks '$pattern'"
}
"$PKISIM" client --help | grep -q -- "--challenge-file" || fail "--help"
check 2 "operation" http://127.0.0.1:1
check 2 "getcacaps" http://127.0.0.1:1 frobnicate
check 2 "http://" ftp://127.0.0.1:1 getcacaps
check 2 "needs --cn or --subject" http://127.0.0.1:1 enroll --key "$T/k.pem" --out "$T"
# Port 1 on loopback: nothing listens (refused), whatever the machine.
check 3 "GetCACaps: connection refused" http://127.0.0.1:1 getcacaps --connect-timeout 2
check 3 "connection refused" http://127.0.0.1:1/scep getnextca --ios --trustpoint TP --out "$T"
echo "OK: pkisim client exit codes"
