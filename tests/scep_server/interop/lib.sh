# Shared helpers for the interop tests: a temporary folder, a `pkisim serve` on 127.0.0.1:0 and
# cleanup of every process we started, by PID.
# Usage: source lib.sh PKISIM_BINARY
set -Eeuo pipefail
# Name the command that stopped a script (set -e alone exits silently).
trap 'echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND (status $?)" >&2' ERR
# Passphrase and challenge files must be private (pkisim serve refuses others, issue 13 §4).
umask 077

PKISIM=${1:?usage: $0 PKISIM_BINARY}
T=$(mktemp -d /tmp/pkisim-interop-XXXXXX)
PIDS=()

cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $rc -ne 0 ]]; then
        echo "---- failed (rc=$rc); server log:" >&2
        cat "$T"/server.err >&2 2>/dev/null || true
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# start_server CONFIG_TEXT [extra serve flags...]: sets URL and SERVER_PID.
start_server() {
    local config=$1
    shift
    printf '%s\n' "$config" >"$T/ca.ios"
    echo "interop-passphrase" >"$T/passphrase"
    echo "secret" >"$T/challenge"
    # Emptied here, not only by the redirection below: that one runs in the child after the
    # fork, and the wait loop could otherwise read a previous server's "listening on" line
    # (a restarted server then had no address: the flake of interop.ocsp_clock under load).
    : >"$T/server.out"
    : >"$T/server.err"
    "$PKISIM" serve "$T/ca.ios" --data "$T/data" --listen 127.0.0.1:0 \
        --passphrase-file "$T/passphrase" --challenge-file "$T/challenge" "$@" \
        >"$T/server.out" 2>"$T/server.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    # Up to 60 s: a new CA (RSA key, PBKDF2) under ASan on a loaded machine takes a while.
    for _ in $(seq 600); do
        if grep -q 'listening on' "$T/server.out" 2>/dev/null; then break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || fail "pkisim serve exited: $(cat "$T/server.err")"
        sleep 0.1
    done
    local addr
    addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$T/server.out" | head -1)
    [[ -n $addr ]] || fail "no listening address"
    URL="http://$addr/cgi-bin/pkiclient.exe"
    echo "server at $URL"
}

# certmonger without the system D-Bus, all state in $T/cm (scep-wire.md).
start_certmonger() {
    local cm=$T/cm
    mkdir -p "$cm"/requests "$cm"/cas "$cm"/local "$cm"/tmp "$cm"/config
    export CERTMONGER_REQUESTS_DIR=$cm/requests CERTMONGER_CAS_DIR=$cm/cas \
        CERTMONGER_LOCAL_CA_DIR=$cm/local CERTMONGER_TMPDIR=$cm/tmp \
        CERTMONGER_CONFIG_DIR=$cm/config CERTMONGER_SYSTEM_LOCK_FILE=$cm/lock \
        CERTMONGER_PVT_ADDRESS=unix:path=$cm/sock
    certmonger -n -L -P "$cm/sock" -d 3 >>"$cm/certmonger.log" 2>&1 &
    CERTMONGER_PID=$!
    PIDS+=("$CERTMONGER_PID")
    for _ in $(seq 50); do
        [[ -S $cm/sock ]] && break
        sleep 0.1
    done
}

stop_certmonger() {
    kill "$CERTMONGER_PID"
    wait "$CERTMONGER_PID" 2>/dev/null || true
}
