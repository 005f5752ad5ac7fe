#!/bin/bash
# Issue 11 §3: strongSwan's `pki` (Debian strongswan-pki 5.9.8) against `pkisim serve`:
#   --scepca against the CA;
#   --scep with every cipher (aes, des3) x digest (sha1..sha512) x RSA padding (pkcs1, pss):
#     the request is verified with the CMS API (PSS, issue 11 §2.2) and each certificate
#     verifies with openssl;
#   renewal with --cert/--key: granted with the same identity; refused with another subject or
#     SAN (§2.1), and refused once the old certificate is revoked (§2.1);
#   a 1024-bit key is refused (§2.5);
#   the CRL over HTTP makes `openssl verify -crl_check` see the revocation (§2.8);
#   manual grant with polling: PENDING, the operator grants, pki's next poll gets it.
source "$(dirname "$0")/lib.sh" "$@"
command -v pki >/dev/null || { echo "SKIP: no strongSwan pki"; exit 77; }
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto' --ios-limits off
cd "$T"
# pki prints its TPM plugin complaints on stderr; keep the rest for failures.
ss() { timeout 60 pki "$@" 2>"$T/ss.err"; }
sserr() { grep -vi tpm "$T/ss.err" | tail -5; }

ss --scepca --url "$URL" --caout "$T/ca.der" >/dev/null || fail "--scepca: $(sserr)"
openssl x509 -inform DER -in "$T/ca.der" -out "$T/ca-ss.pem"
cmp <(openssl x509 -in "$T/ca-ss.pem" -outform DER) <(openssl x509 -in "$T/data/ca.pem" -outform DER) ||
    fail "--scepca fetched another certificate"

openssl genrsa -out "$T/k.pem" 2048 2>/dev/null
n=0
for cipher in aes des3; do
    for digest in sha1 sha224 sha256 sha384 sha512; do
        for pad in pkcs1 pss; do
            n=$((n + 1))
            ss --scep --url "$URL" --in "$T/k.pem" --dn "CN=ss-$n,O=lab" --password secret \
                --cacert-enc "$T/ca.der" --cacert-sig "$T/ca.der" --cipher $cipher \
                --digest $digest --rsa-padding $pad >"$T/c$n.der" ||
                fail "--scep $cipher/$digest/$pad: $(sserr)"
            openssl verify -CAfile "$T/data/ca.pem" <(openssl x509 -inform DER -in "$T/c$n.der") \
                >/dev/null || fail "$cipher/$digest/$pad: certificate does not verify"
        done
    done
done
echo "enrolled $n combinations"

# Renewal signed by the first certificate: same identity -> granted.
openssl genrsa -out "$T/k2.pem" 2048 2>/dev/null
ss --scep --url "$URL" --in "$T/k2.pem" --dn "CN=ss-1,O=lab" --cacert-enc "$T/ca.der" \
    --cacert-sig "$T/ca.der" --cert "$T/c1.der" --key "$T/k.pem" >"$T/r1.der" ||
    fail "renewal: $(sserr)"
grep -q 'RenewalReq SUCCESS' "$T/server.err" || fail "no RenewalReq SUCCESS"
# Another subject, or a SAN the old certificate did not have -> refused.
! ss --scep --url "$URL" --in "$T/k2.pem" --dn "CN=admin,O=other-org" --cacert-enc "$T/ca.der" \
    --cacert-sig "$T/ca.der" --cert "$T/c2.der" --key "$T/k.pem" >/dev/null ||
    fail "a renewal changed the subject"
grep -q 'renewal may not change the subject' "$T/server.err" || fail "subject change not logged"
! ss --scep --url "$URL" --in "$T/k2.pem" --dn "CN=ss-3,O=lab" --san admin.example.com \
    --cacert-enc "$T/ca.der" --cacert-sig "$T/ca.der" --cert "$T/c3.der" --key "$T/k.pem" \
    >/dev/null || fail "a renewal added a subjectAltName"
grep -q 'renewal may not change the subjectAltName' "$T/server.err" || fail "SAN change not logged"
# Revoked -> refused.
serial=$(openssl x509 -inform DER -in "$T/c4.der" -noout -serial | cut -d= -f2)
"$PKISIM" ca --data "$T/data" revoke "$serial" >/dev/null || fail "revoke $serial"
! ss --scep --url "$URL" --in "$T/k2.pem" --dn "CN=ss-4,O=lab" --cacert-enc "$T/ca.der" \
    --cacert-sig "$T/ca.der" --cert "$T/c4.der" --key "$T/k.pem" >/dev/null ||
    fail "a renewal signed by a revoked certificate was granted"
grep -q 'is revoked' "$T/server.err" || fail "revoked renewal not logged"
# Issue 11 §2.8: the CRL over HTTP (/crl/NAME.crl and the IOS-style GetCRL URL) lists it.
for crl_url in "${URL%/cgi-bin/pkiclient.exe}/crl/labca.crl" "$URL?operation=GetCRL"; do
    curl -sf -o "$T/crl.der" "$crl_url" || fail "GET $crl_url"
    openssl crl -inform DER -in "$T/crl.der" -out "$T/crl.pem" || fail "$crl_url: not a DER CRL"
    openssl x509 -inform DER -in "$T/c4.der" -out "$T/c4.pem"
    out=$(openssl verify -crl_check -CAfile "$T/data/ca.pem" -CRLfile "$T/crl.pem" "$T/c4.pem" 2>&1) &&
        fail "openssl verify accepted a revoked certificate: $out"
    grep -q 'certificate revoked' <<<"$out" || fail "openssl verify: $out"
    openssl x509 -inform DER -in "$T/c5.der" -out "$T/c5.pem"
    openssl verify -crl_check -CAfile "$T/data/ca.pem" -CRLfile "$T/crl.pem" "$T/c5.pem" >/dev/null ||
        fail "openssl verify -crl_check refused a good certificate"
done

# A 1024-bit key -> refused.
openssl genrsa -out "$T/k1024.pem" 1024 2>/dev/null
! ss --scep --url "$URL" --in "$T/k1024.pem" --dn "CN=short,O=lab" --password secret \
    --cacert-enc "$T/ca.der" --cacert-sig "$T/ca.der" >/dev/null || fail "1024-bit key certified"
grep -q 'below the minimum of 2048' "$T/server.err" || fail "short key not logged"

# Manual grant with polling (a second server in manual mode).
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
rm -rf "$T/data"
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab' --ios-limits off
ss --scepca --url "$URL" --caout "$T/ca2.der" >/dev/null || fail "--scepca (manual): $(sserr)"
timeout 60 pki --scep --url "$URL" --in "$T/k.pem" --dn "CN=polled,O=lab" --password secret \
    --cacert-enc "$T/ca2.der" --cacert-sig "$T/ca2.der" --interval 1 --maxpolltime 50 \
    >"$T/polled.der" 2>"$T/poll.err" &
POLL_PID=$!
PIDS+=("$POLL_PID")
for _ in $(seq 100); do
    grep -q 'PKCSReq PENDING' "$T/server.err" && break
    sleep 0.1
done
grep -q 'PKCSReq PENDING' "$T/server.err" || fail "no PENDING: $(cat "$T/server.err")"
"$PKISIM" ca --data "$T/data" grant all | grep -q 'Granted request 1' || fail "grant all"
wait "$POLL_PID" || fail "pki did not get the granted certificate: $(grep -vi tpm "$T/poll.err")"
grep -q 'CertPoll SUCCESS' "$T/server.err" || fail "no CertPoll SUCCESS"
openssl verify -CAfile "$T/data/ca.pem" <(openssl x509 -inform DER -in "$T/polled.der") \
    >/dev/null || fail "the polled certificate does not verify"
echo "OK: strongSwan pki enrolled, renewed, was refused as it should be, and polled"
