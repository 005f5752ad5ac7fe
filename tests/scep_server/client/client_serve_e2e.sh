#!/bin/bash
# End to end: `pkisim client` against `pkisim serve` (grant auto, then a manual-grant server):
# GetCACaps, GetCACert, enroll by POST and IOS-style GET, RenewalReq and PKCSReq renewal,
# GetCRL, GetNextCACert 404 (exit 1), PENDING -> operator grant -> poll issues. Every
# certificate verifies with `openssl verify`. Exit 77 (skipped) when `pkisim serve` is not built.
set -euo pipefail
# Passphrase and challenge files must be private (pkisim serve refuses others, issue 13 §4).
umask 077
PKISIM=${1:?usage: $0 PKISIM_BINARY}
if ! "$PKISIM" serve --help >/dev/null 2>&1; then
    echo "SKIP: this pkisim has no serve subcommand"
    exit 77
fi
T=$(mktemp -d /tmp/pkisim-client-e2e-XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ $rc -ne 0 ]]; then cat "$T"/*/server.err >&2 2>/dev/null || true; fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# start_server NAME CONFIG: sets URL.
start_server() {
    local d=$T/$1
    mkdir -p "$d"
    printf '%s\n' "$2" >"$d/ca.ios"
    echo "e2e-passphrase" >"$d/passphrase"
    echo "secret" >"$T/challenge"
    "$PKISIM" serve "$d/ca.ios" --data "$d/data" --listen 127.0.0.1:0 \
        --passphrase-file "$d/passphrase" --challenge-file "$T/challenge" \
        >"$d/server.out" 2>"$d/server.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        grep -q 'listening on' "$d/server.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || fail "pkisim serve exited: $(cat "$d/server.err")"
        sleep 0.1
    done
    local addr
    addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$d/server.out" | head -1)
    [[ -n $addr ]] || fail "no listening address"
    URL="http://$addr"  # no path: /cgi-bin/pkiclient.exe, as IOS
}
run() { "$PKISIM" client "$URL" --connect-timeout 5 --timeout 20 "$@"; }
expect_rc() {  # expect_rc RC PATTERN -- ARGS...
    local want=$1 pattern=$2
    shift 3
    local rc=0 out
    out=$(run "$@") || rc=$?
    echo "$out"
    [[ $rc == "$want" ]] || fail "$* -> exit $rc (want $want): $out"
    grep -q -- "$pattern" <<<"$out" || fail "$* -> '$out' lacks '$pattern'"
}

start_server auto $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto'
O=$T/out
CA=$T/auto/data/ca.pem
expect_rc 0 "SCEPStandard" -- getcacaps
expect_rc 0 "CN=labca" -- getca --out "$O"
expect_rc 0 "issued 'CN=r1'" -- enroll --key "$O/r1.key" --cn r1 --out "$O" \
    --challenge-file "$T/challenge"
openssl verify -CAfile "$CA" "$O/cert.pem" || fail "r1"
cp "$O/cert.pem" "$O/r1.pem"
PKISIM_CHALLENGE=secret expect_rc 0 "issued 'CN=r2,O=lab'" -- enroll --ios --trustpoint TP \
    --key "$O/r2.key" --subject "CN=r2,O=lab" --out "$O/ios"
openssl verify -CAfile "$CA" "$O/ios/cert.pem" || fail "r2 (IOS GET)"
expect_rc 0 "RenewalReq: issued 'CN=r1'" -- renew --cert "$O/r1.pem" --key "$O/r1.key" \
    --out "$O/renew"
openssl verify -CAfile "$CA" "$O/renew/cert.pem" || fail "renewal"
[[ $(openssl x509 -in "$O/renew/cert.pem" -noout -serial) != \
   $(openssl x509 -in "$O/r1.pem" -noout -serial) ]] || fail "renewal returned the same serial"
expect_rc 0 "PKCSReq (renewal): issued" -- renew --renewal-pkcsreq --cert "$O/r1.pem" \
    --key "$O/r1.key" --new-key "$O/r1b.key" --out "$O/renew2"
openssl verify -CAfile "$CA" "$O/renew2/cert.pem" || fail "PKCSReq renewal"
expect_rc 0 "GetCRL:" -- getcrl --cert "$O/r1.pem" --key "$O/r1.key" --out "$O"
openssl crl -in "$O/ca.crl" -noout -CAfile "$CA" || fail "CRL does not verify"
expect_rc 1 "GetNextCACert: 404 Not Found (no rollover CA certificate yet)" -- getnextca --ios \
    --trustpoint TP --out "$O"
expect_rc 1 "SCEP FAILURE" -- enroll --key "$O/r3.key" --cn r3 --out "$O/bad" \
    --challenge-file /dev/null

start_server manual $'crypto pki server labca\n issuer-name CN=labca,O=lab'
CA=$T/manual/data/ca.pem
PKISIM_CHALLENGE=secret expect_rc 1 "PENDING" -- enroll --key "$O/m1.key" --cn m1 \
    --out "$O/m" --max-polls 1 --poll-interval 0
"$PKISIM" ca --data "$T/manual/data" grant all >/dev/null || fail "grant all"
expect_rc 0 "CertPoll: issued 'CN=m1'" -- poll --key "$O/m1.key" --cn m1 --out "$O/m"
openssl verify -CAfile "$CA" "$O/m/cert.pem" || fail "m1 after grant"
echo "OK: pkisim client against pkisim serve"
