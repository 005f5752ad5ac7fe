#!/bin/bash
# Issue 11 §3: strongSwan's `pki` through the RA (`pkisim serve` in `mode ra` in front of
# `pkisim serve`): --scepca gets the CA and the RA certificate; --scep (AES and 3DES, PKCS#1 and
# PSS) encrypts to the RA, which forwards; the certificate is the CA's.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/ra_lib.sh"
command -v pki >/dev/null || { echo "SKIP: no strongSwan pki"; exit 77; }
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto' --ios-limits off
start_ra "$(ca_base_url)" ' grant auto' --ios-limits off
cd "$T"
ss() { timeout 60 pki "$@" 2>"$T/ss.err"; }
sserr() { grep -vi tpm "$T/ss.err" | tail -5; }
ss --scepca --url "$RA_URL" --caout "$T/ca.der" --raout "$T/ra.der" >/dev/null ||
    fail "--scepca through the RA: $(sserr)"
cmp <(openssl x509 -inform DER -in "$T/ca.der" -outform DER) \
    <(openssl x509 -in "$T/data/ca.pem" -outform DER) || fail "--scepca: not the CA certificate"
openssl x509 -inform DER -in "$T/ra.der" -noout -subject | grep -q 'ioscs RA' ||
    fail "--scepca: no RA certificate"
openssl genrsa -out "$T/k.pem" 2048 2>/dev/null
n=0
for cipher in aes des3; do
    for pad in pkcs1 pss; do
        n=$((n + 1))
        ss --scep --url "$RA_URL" --in "$T/k.pem" --dn "CN=via-ra-$n,O=lab" --password ra-secret \
            --cacert-enc "$T/ra.der" --cacert-sig "$T/ra.der" --cacert "$T/ca.der" \
            --cipher $cipher --rsa-padding $pad >"$T/c$n.der" ||
            fail "--scep through the RA ($cipher/$pad): $(sserr)"
        openssl verify -CAfile "$T/data/ca.pem" <(openssl x509 -inform DER -in "$T/c$n.der") \
            >/dev/null || fail "$cipher/$pad: certificate does not verify against the CA"
    done
done
grep -q 'PKCSReq SUCCESS' "$T/ra.err" || fail "the RA did not relay a SUCCESS"
grep -q 'forwarded by RA' "$T/server.err" || fail "the CA did not see forwarded requests"
echo "OK: strongSwan pki enrolled $n times through the RA"
