#!/bin/bash
# Issue 4 §2: the certmonger daemon enrolls through the RA (CA + RA from GetCACert, so no -N).
#   auto:   RA `grant auto`: `getcert request -w` returns with the CA-issued certificate.
#   manual: RA without a grant mode: pending at the RA until `pkisim ca --data RA_DIR grant all`
#           (which forwards it to the CA at once); certmonger's next poll gets it from the RA
#           (the daemon is restarted to poll at once, as in certmonger_daemon.sh).
source "$(dirname "$0")/lib.sh" "$1"
source "$(dirname "$0")/ra_lib.sh"
mode=${2:?auto|manual}
start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto'
if [[ $mode == auto ]]; then
    start_ra "$(ca_base_url)" ' grant auto'
else
    start_ra "$(ca_base_url)" ' lifetime enrollment-request 24'
fi
start_certmonger
getcert add-scep-ca -c labra -u "$RA_URL" >/dev/null
if [[ $mode == auto ]]; then
    timeout 60 getcert request -c labra -I req1 -k "$T/k.key" -f "$T/c.crt" -N "CN=cm-ra,O=lab" \
        -D cm.example -L ra-secret -w -v >"$T/request.log" 2>&1 ||
        fail "getcert -w: $(cat "$T/request.log" "$T/ra.err")"
else
    getcert request -c labra -I req1 -k "$T/k.key" -f "$T/c.crt" -N "CN=cm-ra-manual,O=lab" \
        -D cm.example -L ra-secret >/dev/null
    for _ in $(seq 100); do
        "$PKISIM" ca --data "$T/ra-data" show requests | grep -q ' pending .*cn=cm-ra-manual' && break
        sleep 0.2
    done
    "$PKISIM" ca --data "$T/ra-data" show requests | grep -q ' pending .*cn=cm-ra-manual' ||
        fail "no pending request at the RA: $("$PKISIM" ca --data "$T/ra-data" show requests)"
    "$PKISIM" ca --data "$T/ra-data" grant all | tee "$T/grant.out"
    grep -q 'forwarded, the CA issued serial' "$T/grant.out" || fail "grant: $(cat "$T/grant.out")"
    stop_certmonger
    start_certmonger
    for _ in $(seq 150); do
        getcert list -i req1 2>/dev/null | grep -q 'status: MONITORING' && break
        sleep 0.2
    done
fi
getcert list -i req1 | grep -q 'status: MONITORING' || fail "not issued: $(getcert list -i req1)"
openssl verify -CAfile "$T/data/ca.pem" "$T/c.crt" || fail "certificate does not verify against the CA"
openssl x509 -in "$T/c.crt" -noout -ext subjectAltName | grep -q 'DNS:cm.example' || fail "SAN lost"
echo "OK: certmonger through the RA ($mode)"
