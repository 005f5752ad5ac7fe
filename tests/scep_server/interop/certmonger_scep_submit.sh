#!/bin/bash
# Issue 3 §6.2: certmonger's scep-submit helper: GetCACaps and GetCACert.
source "$(dirname "$0")/lib.sh" "$@"
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto'
caps=$(/usr/lib/certmonger/scep-submit -u "$URL" -c) || fail "GetCACaps exit $?"
grep -qx 'SCEPStandard' <<<"$caps" || fail "GetCACaps: $caps"
grep -qx 'POSTPKIOperation' <<<"$caps" || fail "GetCACaps: $caps"
/usr/lib/certmonger/scep-submit -u "$URL" -C >"$T/cacert.out" 2>&1 || fail "GetCACert: $(cat "$T/cacert.out")"
openssl x509 -in "$T/cacert.out" -noout -subject | grep -q 'CN = labca' ||
    fail "GetCACert did not return the CA: $(cat "$T/cacert.out")"
echo "OK"
