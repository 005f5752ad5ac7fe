#!/bin/bash
# `pkisim client` against micromdm's scepserver (Debian package `scep`): GetCACaps, GetCACert,
# enroll by POST and IOS-style GET (the server answers in single DES -> --legacy-crypto), the
# issued certificates verify with `openssl verify`; a wrong challenge is a SCEP FAILURE (exit 1);
# GetNextCACert makes scepserver panic (HTTP 500): reported as an HTTP error (exit 4).
# scepserver listens on every interface, so everything runs inside a private network namespace
# (`unshare -n`, loopback only). Exit 77 (skipped) when namespaces are not available.
set -euo pipefail
PKISIM=${1:?usage: $0 PKISIM_BINARY}
if ! unshare -n true 2>/dev/null; then
    echo "SKIP: unshare -n not permitted here"
    exit 77
fi
T=$(mktemp -d /tmp/pkisim-client-XXXXXX)
trap 'rm -rf "$T"' EXIT
export PKISIM T

# The namespace dies with the inner shell; the server is stopped by PID before that.
timeout 100 unshare -n bash -euo pipefail -c '
ip link set lo up
fail() { echo "FAIL: $*" >&2; cat "$T/server.log" >&2 || true; exit 1; }
scepserver ca -init -depot "$T/depot" -keySize 2048 >"$T/init.log" 2>&1 || fail "ca -init"
scepserver -depot "$T/depot" -port 8080 -challenge secret >"$T/server.log" 2>&1 &
SP=$!
trap "kill $SP 2>/dev/null || true; wait $SP 2>/dev/null || true" EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
    kill -0 $SP 2>/dev/null || fail "scepserver exited"
    sleep 0.1
done
# micromdm serves exactly /scep (no /pkiclient.exe).
run() { "$PKISIM" client http://127.0.0.1:8080/scep --exact-path --connect-timeout 5 --timeout 20 "$@"; }

out=$(run getcacaps) || fail "getcacaps: $out"
echo "$out"
grep -q "POSTPKIOperation" <<<"$out" || fail "caps: $out"

out=$(run getca --out "$T/o") || fail "getca: $out"
echo "$out"
grep -q "application/x-x509-ca-cert, 1 certificate" <<<"$out" || fail "getca: $out"

echo secret >"$T/challenge"
out=$(run enroll --key "$T/o/r1.key" --cn r1 --out "$T/o" --challenge-file "$T/challenge" \
      --legacy-crypto) || fail "enroll POST: $out"
echo "$out"
[[ $(stat -c %a "$T/o/r1.key") == 600 ]] || fail "key file mode"
openssl verify -CAfile "$T/o/ca.pem" "$T/o/cert.pem" || fail "r1 does not verify"

out=$(PKISIM_CHALLENGE=secret run enroll --ios --key "$T/o2/r2.key" --cn r2 --out "$T/o2" \
      --legacy-crypto) || fail "enroll IOS GET: $out"
echo "$out"
openssl verify -CAfile "$T/o/ca.pem" "$T/o2/cert.pem" || fail "r2 does not verify"
grep -q "issued .CN=r2" <<<"$out" || fail "r2 output: $out"

rc=0; out=$(PKISIM_CHALLENGE=wrong run enroll --key "$T/o3/r3.key" --cn r3 --out "$T/o3" \
            --legacy-crypto) || rc=$?
echo "$out"
[[ $rc == 1 ]] && grep -q "SCEP FAILURE" <<<"$out" || fail "wrong challenge: rc=$rc $out"

rc=0; out=$(PKISIM_CHALLENGE=secret run enroll --key "$T/o4/r4.key" --cn r4 --out "$T/o4") || rc=$?
echo "$out"
[[ $rc == 4 ]] && grep -q "legacy-crypto" <<<"$out" || fail "DES reply without legacy: rc=$rc $out"

rc=0; out=$(run getnextca --out "$T/o") || rc=$?
echo "$out"
[[ $rc == 4 ]] && grep -q "HTTP 500" <<<"$out" || fail "getnextca: rc=$rc $out"
echo "OK: scepserver interop"
'
