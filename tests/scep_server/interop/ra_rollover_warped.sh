#!/bin/bash
# Issue 4 §2 with the real binary on a warped clock (8640 lab seconds per second: a 2-day CA
# lives 20 s): `pkisim serve` CA (`grant ra-auto`, auto-rollover 1 day) and `pkisim serve` RA
# (no auto-enroll: only its operator's `rollover` fetches the shadow). Model rule 8: the RA
# answers GetNextCACert with 404 while the CA already has a shadow; after
# `pkisim ca --data RA_DIR rollover` it answers 200 with the shadow CA + shadow RA; at the CA's
# notAfter it switches over (GetCACert through the RA = the new CA) and clients enroll with it.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/ra_lib.sh"
CLOCK=(--clock-start 2030-01-01T00:00:00Z --clock-rate 8640)
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant ra-auto\n lifetime ca-certificate 2\n lifetime certificate 4\n auto-rollover 1' "${CLOCK[@]}"
# `grant ra-auto` holds the RA's first (self-signed) request: a one-time password grants it
# (1440 lab minutes = 10 s here).
"$PKISIM" ca --data "$T/data" password generate 1440 | grep -o '([0-9A-F]*)' | tr -d '()' >"$T/upstream-challenge"
start_ra "$(ca_base_url)" ' grant auto' "${CLOCK[@]}"
grep -q 'RA certificate CN=lab-ra,OU=ioscs RA' "$T/ra.out" || fail "RA not enrolled: $(cat "$T/ra.out")"
client() { "$PKISIM" client "$1" --connect-timeout 5 --timeout 20 "${@:2}"; }
RA_BASE=${RA_URL%/cgi-bin/pkiclient.exe}
CA_BASE=$(ca_base_url)

rc=0; out=$(client "$RA_BASE" getnextca --out "$T/n0") || rc=$?
[[ $rc == 1 ]] && grep -q 'Not Found' <<<"$out" || fail "RA before the shadow: rc=$rc $out"
# Wait (warped: lab day 1 = 10 s) until the CA has its shadow.
for _ in $(seq 60); do
    client "$CA_BASE" getnextca --out "$T/nca" >/dev/null 2>&1 && break
    sleep 0.5
done
client "$CA_BASE" getnextca --out "$T/nca" || fail "the CA never made its shadow"
rc=0; out=$(client "$RA_BASE" getnextca --out "$T/n1") || rc=$?
echo "RA while the CA has a shadow: $out"
[[ $rc == 1 ]] && grep -q 'Not Found' <<<"$out" || fail "RA must answer 404 (rule 8): rc=$rc $out"

"$PKISIM" ca --data "$T/ra-data" rollover | tee "$T/rollover.out"
grep -q 'rollover RA certificate' "$T/rollover.out" || fail "RA rollover: $(cat "$T/rollover.out")"
out=$(client "$RA_BASE" getnextca --out "$T/n2") || fail "RA after rollover: $out"
echo "$out"
grep -q '2 certificate' <<<"$out" || fail "shadow CA + shadow RA expected: $out"
"$PKISIM" ca --data "$T/ra-data" show server | tee "$T/show.out"
grep -q 'Rollover status: available for rollover' "$T/show.out" || fail "show server"
shadow_fp=$(openssl x509 -in "$T/nca/nextca.pem" -noout -fingerprint -md5 | cut -d= -f2 | tr -d :)

# Switchover at the CA's notAfter (lab day 2 = 20 s after start).
for _ in $(seq 80); do
    client "$RA_BASE" getca --out "$T/after" >/dev/null 2>&1 || true
    fp=$(openssl x509 -in "$T/after/ca.pem" -noout -fingerprint -md5 2>/dev/null | cut -d= -f2 | tr -d :)
    [[ $fp == "$shadow_fp" ]] && break
    sleep 0.5
done
[[ $fp == "$shadow_fp" ]] || fail "no switchover through the RA ($fp, want $shadow_fp)"
echo ra-secret >"$T/cc"
out=$(client "$RA_BASE" enroll --key "$T/after/r1.key" --cn r1 --out "$T/after" \
      --challenge-file "$T/cc") || fail "enroll after the switchover: $out"
echo "$out"
# Lab time is years ahead of the wall clock: check the signature, not the dates.
openssl verify -no_check_time -CAfile "$T/after/ca.pem" "$T/after/cert.pem" || fail "not issued by the new CA"
echo "OK: RA rollover on a warped clock"
