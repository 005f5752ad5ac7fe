#!/bin/bash
# Issue 11 §3: strongSwan's `pki` through the RA (`pkisim serve` in `mode ra` in front of
# `pkisim serve`): --scepca gets the CA and the RA certificate; --scep (AES and 3DES, PKCS#1 and
# PSS) encrypts to the RA, which forwards; the certificate is the CA's.
# Issue 11 §2.1 in RA mode: a renewal (--cert/--key) through the RA is granted while the CA's
# CRL (fetched by the RA with GetCRL) does not list the signer; after `revoke` at the CA the
# RA refuses it (FAILURE badRequest, the reason in the RA's log) and forwards nothing.
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

# Renewal through the RA, signed by c1: the CA's CRL does not list it -> granted by the CA.
openssl genrsa -out "$T/k2.pem" 2048 2>/dev/null
ss --scep --url "$RA_URL" --in "$T/k2.pem" --dn "CN=via-ra-1,O=lab" \
    --cacert-enc "$T/ra.der" --cacert-sig "$T/ra.der" --cacert "$T/ca.der" \
    --cert "$T/c1.der" --key "$T/k.pem" >"$T/r1.der" || fail "renewal through the RA: $(sserr)"
openssl verify -CAfile "$T/data/ca.pem" <(openssl x509 -inform DER -in "$T/r1.der") >/dev/null ||
    fail "the renewed certificate does not verify against the CA"
grep -q 'GetCRL SUCCESS' "$T/server.err" || fail "the RA did not ask the CA for its CRL"
# Revoke c2 at the CA (the RA is not told), then renew through the RA signed by c2 -> refused.
serial=$(openssl x509 -inform DER -in "$T/c2.der" -noout -serial | cut -d= -f2)
"$PKISIM" ca --data "$T/data" revoke "$serial" >/dev/null || fail "revoke $serial at the CA"
forwarded=$(grep -c 'forwarded by RA' "$T/server.err")
! ss --scep --url "$RA_URL" --in "$T/k2.pem" --dn "CN=via-ra-2,O=lab" \
    --cacert-enc "$T/ra.der" --cacert-sig "$T/ra.der" --cacert "$T/ca.der" \
    --cert "$T/c2.der" --key "$T/k.pem" >/dev/null ||
    fail "the RA forwarded a renewal signed by a certificate revoked at the CA"
serial=$(sed 's/^0*//' <<<"$serial")
grep -q "FAILURE badRequest.*certificate serial $serial is revoked (the CA's CRL" "$T/ra.err" ||
    fail "the RA did not log the refusal: $(tail -3 "$T/ra.err")"
[[ $(grep -c 'forwarded by RA' "$T/server.err") == "$forwarded" ]] ||
    fail "the refused renewal reached the CA"
echo "OK: strongSwan pki enrolled $n times through the RA, renewed, and was refused once revoked"
