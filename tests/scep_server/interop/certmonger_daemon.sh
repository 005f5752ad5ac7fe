#!/bin/bash
# Issue 3 §6.3: the certmonger daemon completes enrollments (AES-256 + SHA-256 replies).
#   auto:   `grant auto`, `getcert request -w` returns with the certificate.
#   manual: no grant mode: the request shows as pending, the operator grants it with
#           `pkisim ca grant all`, certmonger's next poll gets it. certmonger polls a SCEP
#           PENDING again only after 7 days (scep-submit exit 1), so the test restarts the
#           daemon, which makes it poll at once.
source "$(dirname "$0")/lib.sh" "$1"
mode=${2:?auto|manual}
if [[ $mode == auto ]]; then
    start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto'
else
    start_server $'crypto pki server labca\n issuer-name CN=labca,O=lab'
fi
start_certmonger
getcert add-scep-ca -c labca -u "$URL" -N "$T/data/ca.pem" >/dev/null
if [[ $mode == auto ]]; then
    timeout 60 getcert request -c labca -I req1 -k "$T/k.key" -f "$T/c.crt" -N "CN=cm-auto,O=lab" \
        -D cm.example -L secret -w -v >"$T/request.log" 2>&1 || fail "getcert -w: $(cat "$T/request.log")"
else
    getcert request -c labca -I req1 -k "$T/k.key" -f "$T/c.crt" -N "CN=cm-manual,O=lab" \
        -D cm.example -L secret >/dev/null
    for _ in $(seq 100); do
        "$PKISIM" ca --data "$T/data" show requests | grep -q ' pending .*cn=cm-manual' && break
        sleep 0.2
    done
    "$PKISIM" ca --data "$T/data" show requests | grep -q ' pending .*cn=cm-manual' ||
        fail "no pending request: $("$PKISIM" ca --data "$T/data" show requests)"
    getcert list -i req1 | grep -q 'status: CA_WORKING' || fail "certmonger is not waiting: $(getcert list -i req1)"
    "$PKISIM" ca --data "$T/data" grant all
    stop_certmonger
    start_certmonger
    for _ in $(seq 150); do
        getcert list -i req1 2>/dev/null | grep -q 'status: MONITORING' && break
        sleep 0.2
    done
fi
getcert list -i req1 | grep -q 'status: MONITORING' || fail "not issued: $(getcert list -i req1)"
openssl verify -CAfile "$T/data/ca.pem" "$T/c.crt" || fail "certificate does not verify"
openssl x509 -in "$T/c.crt" -noout -ext subjectAltName | grep -q 'DNS:cm.example' || fail "SAN lost"
echo "OK: $mode"
