#!/bin/bash
# Issue 4 §2: the RA in front of a FOREIGN SCEP CA, micromdm's scepserver (Debian `scep`): the RA
# enrolls its RA certificate there (POST /scep; scepserver answers in single DES ->
# --upstream-legacy-crypto), then `pkisim client` enrolls through the RA and the certificate
# verifies against scepserver's CA. scepserver checks the challenge inside the CSR itself, so the
# RA's clients use scepserver's challenge. scepserver listens on every interface: everything runs
# in a private network namespace (`unshare -n`, loopback only), as client_scepserver.sh does.
# Exit 77 (skipped) when namespaces are not available.
set -euo pipefail
# Passphrase and challenge files must be private (pkisim serve refuses others, issue 13 §4).
umask 077
PKISIM=${1:?usage: $0 PKISIM_BINARY}
if ! unshare -n true 2>/dev/null; then
    echo "SKIP: unshare -n not permitted here"
    exit 77
fi
T=$(mktemp -d /tmp/pkisim-ra-foreign-XXXXXX)
trap 'rm -rf "$T"' EXIT
export PKISIM T

timeout 100 unshare -n bash -euo pipefail -c '
ip link set lo up
fail() { echo "FAIL: $*" >&2; cat "$T/server.log" "$T/ra.out" "$T/ra.err" >&2 || true; exit 1; }
scepserver ca -init -depot "$T/depot" -keySize 2048 >"$T/init.log" 2>&1 || fail "ca -init"
scepserver -depot "$T/depot" -port 8080 -challenge secret >"$T/server.log" 2>&1 &
SP=$!
RP=
trap "kill \$RP $SP 2>/dev/null || true; wait \$RP $SP 2>/dev/null || true" EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
    kill -0 $SP 2>/dev/null || fail "scepserver exited"
    sleep 0.1
done
printf "crypto pki trustpoint lab-ra\n enrollment url http://127.0.0.1:8080/scep\n!\ncrypto pki server lab-ra\n mode ra\n grant auto\n" >"$T/ra.ios"
echo ra-passphrase >"$T/pass"
echo secret >"$T/challenge"
"$PKISIM" serve "$T/ra.ios" --data "$T/ra-data" --listen 127.0.0.1:8090 \
    --passphrase-file "$T/pass" --challenge-file "$T/challenge" \
    --upstream-challenge-file "$T/challenge" --upstream-exact-path --upstream-legacy-crypto \
    >"$T/ra.out" 2>"$T/ra.err" &
RP=$!
for _ in $(seq 150); do
    grep -q "listening on" "$T/ra.out" 2>/dev/null && break
    kill -0 $RP 2>/dev/null || fail "RA exited"
    sleep 0.1
done
cat "$T/ra.out"
grep -q "RA certificate .*OU=ioscs RA" "$T/ra.out" || fail "RA not enrolled at scepserver"

run() { "$PKISIM" client http://127.0.0.1:8090 --connect-timeout 5 --timeout 20 "$@"; }
out=$(run getca --out "$T/o") || fail "getca: $out"
echo "$out"
grep -q "application/x-x509-ca-ra-cert, 2 certificate" <<<"$out" || fail "getca: $out"
out=$(run enroll --key "$T/o/r1.key" --cn r1 --out "$T/o" --challenge-file "$T/challenge") ||
    fail "enroll through the RA: $out"
echo "$out"
openssl verify -CAfile "$T/depot/ca.pem" "$T/o/cert.pem" || fail "r1 does not verify against scepserver"
"$PKISIM" ca --data "$T/ra-data" show requests | grep -q "granted .*cn=r1" || fail "RA requests"
echo "OK: RA in front of scepserver"
'
