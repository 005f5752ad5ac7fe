#!/bin/bash
# Issue 4 §1 against `pkisim serve` on a warped clock, with real clients: a 5-year CA whose
# shadow appears (auto-rollover, timers::shadow_generation_due) about 8 real seconds after the
# start and whose switchover comes 32 seconds later (room for slow sanitizer builds).
#   before the shadow: GetNextCACert is IOS's 404 (`pkisim client getnextca`, curl), GetCACaps
#     (certmonger scep-submit -c) does not list GetNextCACert;
#   during the overlap: certmonger sees GetNextCACert in GetCACaps; curl + openssl read the
#     GetNextCACert answer (signed by the current CA, shadow inside); `pkisim client getnextca`
#     stores it; `pkisim client enroll --ca nextca.pem` and strongSwan `pki --scep` (encrypting
#     to the shadow) get rollover certificates from the shadow (notBefore = switchover); micromdm
#     scepclient enrolls with the current CA;
#   after the switchover: GetCACert (pkisim client, certmonger scep-submit -C) is the former
#     shadow, ca.pem too, the rollover certificate verifies against it, the CRL is signed by it.
source "$(dirname "$0")/lib.sh" "$@"
# 1825 days of CA; the shadow at notAfter − 1460 days = 365 days in; 45.6 days a real second.
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto\n'\
$' lifetime ca-certificate 1825\n lifetime certificate 600\n lifetime crl 336\n'\
$' auto-rollover 1460' --clock-rate 3942000 --legacy-crypto --ios-limits off
BASE=${URL%/cgi-bin/pkiclient.exe}
export PKISIM_CHALLENGE=secret
show() { "$PKISIM" ca --data "$T/data" show "$1"; }
fingerprint() { show server | sed -n 's/^    CA cert fingerprint: //p'; }

# --- before the shadow -------------------------------------------------------------------------
show server | grep -q 'Rollover status: pending' || fail "no pending rollover: $(show server)"
show timers | grep -q 'CS SHADOW CERT GENERATION' || fail "no shadow timer: $(show timers)"
rc=0
"$PKISIM" client "$BASE" getnextca --ios --trustpoint r1 --out "$T/r1" >"$T/next404.out" || rc=$?
[[ $rc -eq 1 ]] && grep -q '404 Not Found' "$T/next404.out" ||
    fail "getnextca before the shadow: rc=$rc $(cat "$T/next404.out")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL?operation=GetNextCACert&message=r1")
[[ $code == 404 ]] || fail "curl GetNextCACert before the shadow: $code"
/usr/lib/certmonger/scep-submit -u "$URL" -c >"$T/caps1" || fail "scep-submit -c failed"
! grep -q GetNextCACert "$T/caps1" || fail "GetCACaps lists GetNextCACert before the shadow"
old_fp=$(fingerprint)

# --- wait for the shadow (tick on the warped clock) ---------------------------------------------
for _ in $(seq 450); do
    show server | grep -q 'available for rollover' && break
    sleep 0.1
done
show server | grep -q 'available for rollover' || fail "no shadow: $(show server)"
shadow_fp=$(show server | sed -n 's/^    Rollover CA cert fingerprint: //p')
show timers | grep -q 'CS SHADOW CERT GENERATION' && fail "shadow timer still armed"

# --- during the overlap ------------------------------------------------------------------------
/usr/lib/certmonger/scep-submit -u "$URL" -c >"$T/caps2" || fail "scep-submit -c failed"
grep -qx GetNextCACert "$T/caps2" || fail "certmonger does not see GetNextCACert: $(cat "$T/caps2")"
curl -s -o "$T/next.p7" -w '%{content_type}' "$URL?operation=GetNextCACert&message=r1" \
    >"$T/next.ct"
[[ $(cat "$T/next.ct") == application/x-x509-next-ca-cert ]] ||
    fail "content type $(cat "$T/next.ct")"
# Outer SignedData: signed by the current CA (its signature checks), content = degenerate
# SignedData with the shadow, which is also in the outer certificates.
openssl smime -verify -inform DER -in "$T/next.p7" -noverify -signer "$T/signer.pem" \
    -out "$T/inner.der" 2>"$T/verify.err" || fail "GetNextCACert signature: $(cat "$T/verify.err")"
md5() { openssl x509 -in "$1" -noout -fingerprint -md5 | sed 's/.*=//; s/://g'; }
[[ $(md5 "$T/signer.pem") == "${old_fp// /}" ]] || fail "GetNextCACert not signed by the current CA"
openssl pkcs7 -inform DER -in "$T/inner.der" -print_certs >"$T/inner.pem"
[[ $(md5 "$T/inner.pem") == "${shadow_fp// /}" ]] || fail "content is not the shadow"
openssl pkcs7 -inform DER -in "$T/next.p7" -print_certs | grep -q 'subject=CN = labca, O = lab' ||
    fail "outer certificates"
"$PKISIM" client "$BASE" getnextca --ios --trustpoint r1 --out "$T/r1" >"$T/next200.out" ||
    fail "getnextca during the overlap: $(cat "$T/next200.out")"
[[ $(md5 "$T/r1/nextca.pem") == "${shadow_fp// /}" ]] || fail "nextca.pem is not the shadow"
# Rollover ID certificate: the request is encrypted to the shadow (--ca nextca.pem).
"$PKISIM" client "$BASE" enroll --ca "$T/r1/nextca.pem" --key "$T/r1.key" --cn r1 \
    --out "$T/r1-rollover" >"$T/rollover.out" 2>&1 || fail "rollover enroll: $(cat "$T/rollover.out")"
openssl verify -no_check_time -CAfile "$T/r1/nextca.pem" "$T/r1-rollover/cert.pem" >/dev/null ||
    fail "rollover certificate not issued by the shadow"
nb=$(openssl x509 -in "$T/r1-rollover/cert.pem" -noout -startdate)
[[ $nb == "$(openssl x509 -in "$T/r1/nextca.pem" -noout -startdate)" ]] ||
    fail "rollover certificate $nb does not start with the shadow"
# Issue 11 §3: strongSwan's `pki --scep` enrolls against the shadow (encrypted to it, the CertRep
# signed by it): a rollover certificate from the shadow, valid from the switchover.
openssl x509 -in "$T/r1/nextca.pem" -outform DER -out "$T/nextca.der"
openssl genrsa -out "$T/ss.key" 2048 2>/dev/null
timeout 60 pki --scep --url "$URL" --in "$T/ss.key" --dn "CN=ss-rollover,O=lab" --password secret \
    --cacert-enc "$T/nextca.der" --cacert-sig "$T/nextca.der" >"$T/ss-rollover.der" \
    2>"$T/ss.err" || fail "strongSwan pki against the shadow: $(grep -vi tpm "$T/ss.err" | tail -5)"
openssl x509 -inform DER -in "$T/ss-rollover.der" -out "$T/ss-rollover.pem"
openssl verify -no_check_time -CAfile "$T/r1/nextca.pem" "$T/ss-rollover.pem" >/dev/null ||
    fail "strongSwan's rollover certificate is not issued by the shadow"
[[ $(openssl x509 -in "$T/ss-rollover.pem" -noout -startdate) == \
    "$(openssl x509 -in "$T/r1/nextca.pem" -noout -startdate)" ]] ||
    fail "strongSwan's rollover certificate does not start with the shadow"
# micromdm scepclient (single DES -> --legacy-crypto) enrolls with the current CA meanwhile.
timeout 60 scepclient -server-url "$URL" -challenge secret -private-key "$T/r2.key" \
    -cn r2 -organization lab >"$T/scepclient.log" 2>&1 || fail "scepclient: $(cat "$T/scepclient.log")"
openssl verify -no_check_time -CAfile "$T/data/ca.pem" "$T/client.pem" >/dev/null ||
    fail "scepclient's certificate does not verify against the current CA"

# --- the switchover ----------------------------------------------------------------------------
for _ in $(seq 600); do
    [[ $(fingerprint) == "$shadow_fp" ]] && break
    sleep 0.1
done
[[ $(fingerprint) == "$shadow_fp" ]] || fail "no switchover: $(show server)"
"$PKISIM" client "$BASE" getca --out "$T/after" >"$T/getca.out" || fail "getca after"
[[ $(md5 "$T/after/ca.pem") == "${shadow_fp// /}" ]] || fail "GetCACert is not the new CA"
[[ $(md5 "$T/data/ca.pem") == "${shadow_fp// /}" ]] || fail "ca.pem is not the new CA"
/usr/lib/certmonger/scep-submit -u "$URL" -C >"$T/cm-ca.pem" || fail "scep-submit -C failed"
[[ $(md5 "$T/cm-ca.pem") == "${shadow_fp// /}" ]] || fail "certmonger GetCACert: not the new CA"
openssl verify -no_check_time -CAfile "$T/data/ca.pem" "$T/r1-rollover/cert.pem" >/dev/null ||
    fail "the rollover certificate does not verify against the new CA"
openssl verify -no_check_time -CAfile "$T/data/ca.pem" "$T/ss-rollover.pem" >/dev/null ||
    fail "strongSwan's rollover certificate does not verify against the new CA"
openssl crl -inform DER -in "$T/data/labca.crl" -noout -CAfile "$T/data/ca.pem" 2>&1 |
    grep -q 'verify OK' || fail "the CRL is not signed by the new CA"
echo "OK: shadow $shadow_fp fetched during the overlap and active after the switchover"
