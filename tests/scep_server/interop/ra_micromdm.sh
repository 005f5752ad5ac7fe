#!/bin/bash
# Issue 4 §2: micromdm scepclient enrolls THROUGH the RA (GetCACert CA+RA, request encrypted to
# the RA in single DES -> the RA runs with --legacy-crypto), then renews (RenewalReq signed by the
# first certificate); both certificates are issued by the CA and verify against it.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/ra_lib.sh"
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto'
start_ra "$(ca_base_url)" ' grant auto' --legacy-crypto
grep -q 'RA certificate CN=lab-ra,OU=ioscs RA' "$T/ra.out" || fail "RA not enrolled: $(cat "$T/ra.out")"
cd "$T"
timeout 60 scepclient -server-url "$RA_URL" -challenge ra-secret -private-key "$T/client.key" \
    -cn router1 -organization lab >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log" "$T/ra.err")"
openssl verify -CAfile "$T/data/ca.pem" "$T/client.pem" || fail "certificate does not verify against the CA"
openssl x509 -in "$T/client.pem" -noout -issuer | grep -q 'CN *= *labca' || fail "not issued by the CA"
first=$(openssl x509 -in "$T/client.pem" -noout -serial)
cp "$T/client.pem" "$T/renew.pem"
timeout 60 scepclient -server-url "$RA_URL" -challenge ra-secret -private-key "$T/client.key" \
    -certificate "$T/renew.pem" -cn router1 -organization lab >"$T/renew.log" 2>&1 ||
    fail "renew: $(cat "$T/renew.log" "$T/ra.err")"
second=$(openssl x509 -in "$T/renew.pem" -noout -serial)
[[ $first != "$second" ]] || fail "renewal returned the same certificate ($first)"
openssl verify -CAfile "$T/data/ca.pem" "$T/renew.pem" || fail "renewed certificate does not verify"
grep -q 'PKCSReq SUCCESS' "$T/ra.err" || fail "the RA did not relay a SUCCESS: $(cat "$T/ra.err")"
"$PKISIM" ca --data "$T/ra-data" show server | grep -q 'Server configured in RA mode' || fail "show server"
echo "OK: through the RA: enrolled $first, renewed $second"
