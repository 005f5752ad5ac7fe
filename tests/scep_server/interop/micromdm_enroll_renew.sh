#!/bin/bash
# Issue 3 §6.1: micromdm scepclient enrolls (POST; single DES -> --legacy-crypto) and renews
# (RenewalReq signed by the first certificate); both verify against the CA with openssl.
source "$(dirname "$0")/lib.sh" "$@"
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto' --legacy-crypto
cd "$T"
timeout 60 scepclient -server-url "$URL" -challenge secret -private-key "$T/client.key" \
    -cn router1 -organization lab >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
openssl verify -CAfile "$T/data/ca.pem" "$T/client.pem" || fail "first certificate does not verify"
first=$(openssl x509 -in "$T/client.pem" -noout -serial)
# scepclient signs with -certificate and writes the renewed certificate over that file.
cp "$T/client.pem" "$T/renew.pem"
timeout 60 scepclient -server-url "$URL" -challenge secret -private-key "$T/client.key" \
    -certificate "$T/renew.pem" -cn router1 -organization lab >"$T/renew.log" 2>&1 ||
    fail "renew: $(cat "$T/renew.log")"
second=$(openssl x509 -in "$T/renew.pem" -noout -serial)
[[ $first != "$second" ]] || fail "renewal returned the same certificate ($first)"
openssl verify -CAfile "$T/data/ca.pem" "$T/renew.pem" || fail "renewed certificate does not verify"
grep -q 'RenewalReq SUCCESS' "$T/server.err" || fail "the server did not see a RenewalReq"
echo "OK: enrolled $first, renewed $second"
