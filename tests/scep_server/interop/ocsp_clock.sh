#!/bin/bash
# Issue 11 §2.9 and §2.7 against the real `pkisim serve`, with the real `openssl ocsp` client:
#   1. real clock, --ocsp-listen, AIA: a certificate is good, revoked (time + reason) after
#      `pkisim ca revoke`, a foreign one unknown; GET (base64 in the path) with curl; garbage gets
#      malformedRequest or a 4xx and the responder keeps answering; the nonce is echoed;
#   2. restarted with --ocsp-responder-cert: signed by a delegated responder certificate that
#      verifies against the CA only (-CAfile, no trust in the signer itself);
#   3. restarted on a warped clock 36 hours on (--clock-start): the switchover to the rollover
#      CA made in step 1; a certificate of the previous generation is still answered (good,
#      under its own CA), a new one under the new CA;
#   4. restarted on the real clock (earlier than the store has seen): exit 7 with a message;
#      with --allow-clock-backwards it starts and issues certificates dated no earlier than
#      the new CA's notBefore.
# About 10 s (release).
source "$(dirname "$0")/lib.sh" "$@"
CONFIG=$'crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto\n'\
$' lifetime ca-certificate 1\n lifetime certificate 1'
export PKISIM_CHALLENGE=secret
LONG=315360000  # -validity_period: the warped clock's thisUpdate is days ahead of the real one

ocsp_url() { sed -n 's|^pkisim serve: OCSP responder on \(http://[0-9.:]*/\).*|\1|p' "$T/server.out"; }
stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
}
enroll() {  # NAME: key + certificate in $T/NAME/ (EC P-256 keys: no RSA key generation)
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" 2>/dev/null
    "$PKISIM" client "${URL%/cgi-bin/pkiclient.exe}" enroll --key "$T/$1.key" --cn "$1" \
        --out "$T/$1" >"$T/$1.out" 2>&1 || fail "enroll $1: $(cat "$T/$1.out")"
}
# ask ISSUER CERT [extra openssl ocsp flags]: the -resp_text output in $T/ocsp.out. ISSUER is
# also the relying party's trust anchor (-CAfile): OpenSSL 3.0.20 no longer trusts a -issuer
# certificate as the response signer's root on its own ("Verify error: self-signed certificate").
ask() {
    local issuer=$1 cert=$2
    shift 2
    openssl ocsp -issuer "$issuer" -CAfile "$issuer" -cert "$cert" -url "$OCSP" -resp_text \
        -validity_period $LONG "$@" >"$T/ocsp.out" 2>&1 || true
}
expect() {  # PATTERN WHAT
    grep -q -- "$1" "$T/ocsp.out" || fail "$2: $(cat "$T/ocsp.out")"
}

# --- 1. real clock, CA-signed ------------------------------------------------------------------
start_server "$CONFIG" --ios-limits off --ocsp-listen 127.0.0.1:0 \
    --aia-ocsp-url http://127.0.0.1:9/ocsp \
    --aia-ca-issuers-url 'http://127.0.0.1:9/cgi-bin/pkiclient.exe?operation=GetCACert'
OCSP=$(ocsp_url)
[[ -n $OCSP ]] || fail "no OCSP address in $(cat "$T/server.out")"
cp "$T/data/ca.pem" "$T/ca1.pem"
enroll c1
enroll c2
openssl x509 -in "$T/c1/cert.pem" -noout -ext authorityInfoAccess >"$T/aia.txt" 2>&1
grep -q 'OCSP - URI:http://127.0.0.1:9/ocsp' "$T/aia.txt" || fail "AIA OCSP: $(cat "$T/aia.txt")"
grep -q 'CA Issuers - URI:http://127.0.0.1:9/cgi-bin/pkiclient.exe?operation=GetCACert' \
    "$T/aia.txt" || fail "AIA caIssuers: $(cat "$T/aia.txt")"

ask "$T/ca1.pem" "$T/c1/cert.pem"
expect "$T/c1/cert.pem: good" "c1 good"
expect 'Response verify OK' "CA-signed response"
expect 'OCSP Nonce' "nonce echoed"
grep -q 'WARNING: no nonce' "$T/ocsp.out" && fail "no nonce: $(cat "$T/ocsp.out")"
serial=$(openssl x509 -in "$T/c1/cert.pem" -noout -serial | sed 's/serial=//')
"$PKISIM" ca --data "$T/data" revoke "$serial" keyCompromise >"$T/revoke.out" ||
    fail "revoke: $(cat "$T/revoke.out")"
ask "$T/ca1.pem" "$T/c1/cert.pem"
expect "$T/c1/cert.pem: revoked" "c1 revoked"
expect 'Reason: keyCompromise' "revocation reason"
expect 'Revocation Time: ' "revocation time"
ask "$T/ca1.pem" "$T/c2/cert.pem"
expect "$T/c2/cert.pem: good" "c2 still good"

# A foreign certificate: under its own issuer, and as a serial under ours.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=foreign \
    -keyout "$T/foreign.key" -out "$T/foreign.pem" -days 30 2>/dev/null
ask "$T/foreign.pem" "$T/foreign.pem"
expect "$T/foreign.pem: unknown" "foreign issuer"
ask "$T/ca1.pem" "$T/foreign.pem"
expect "$T/foreign.pem: unknown" "foreign serial"

# GET (RFC 6960 A.1) with curl, the request made by openssl.
openssl ocsp -issuer "$T/ca1.pem" -cert "$T/c2/cert.pem" -no_nonce -reqout "$T/req.der" \
    >/dev/null 2>&1
b64=$(base64 -w0 "$T/req.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
code=$(curl -s -o "$T/get.der" -w '%{http_code} %{content_type}' "${OCSP}ocsp/$b64")
[[ $code == "200 application/ocsp-response" ]] || fail "GET: $code"
openssl ocsp -respin "$T/get.der" -issuer "$T/ca1.pem" -cert "$T/c2/cert.pem" -resp_text \
    -VAfile "$T/ca1.pem" >"$T/ocsp.out" 2>&1 || fail "GET answer: $(cat "$T/ocsp.out")"
expect "$T/c2/cert.pem: good" "GET c2 good"

# Bad input: malformedRequest or 4xx, and the responder keeps serving.
printf 'not an OCSP request' >"$T/garbage"
code=$(curl -s -o "$T/bad.der" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
    --data-binary @"$T/garbage" "$OCSP")
[[ $code == 200 ]] || fail "garbage POST: HTTP $code"
openssl ocsp -respin "$T/bad.der" -resp_text >"$T/ocsp.out" 2>&1 || true
expect 'malformedrequest' "garbage POST answer"
head -c 40 "$T/req.der" >"$T/truncated.der"
curl -s -o "$T/bad2.der" -H 'Content-Type: application/ocsp-request' \
    --data-binary @"$T/truncated.der" "$OCSP"
openssl ocsp -respin "$T/bad2.der" -resp_text >"$T/ocsp.out" 2>&1 || true
expect 'malformedrequest' "truncated request"
for probe in "-X PUT" "-X DELETE"; do
    # shellcheck disable=SC2086
    code=$(curl -s -o /dev/null -w '%{http_code}' $probe "$OCSP")
    [[ $code == 405 ]] || fail "$probe: $code"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "${OCSP}%%%not-base64")
[[ $code == 400 ]] || fail "bad GET: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/html' \
    --data-binary @"$T/req.der" "$OCSP")
[[ $code == 415 ]] || fail "wrong content type: $code"
kill -0 "$SERVER_PID" || fail "the server died"
ask "$T/ca1.pem" "$T/c2/cert.pem"
expect "$T/c2/cert.pem: good" "after bad input"

# The rollover CA, to become active in step 3.
"$PKISIM" ca --data "$T/data" rollover >"$T/rollover.out" || fail "rollover: $(cat "$T/rollover.out")"
stop_server

# --- 2. delegated responder ---------------------------------------------------------------------
start_server "$CONFIG" --ios-limits off --ocsp-listen 127.0.0.1:0 --ocsp-responder-cert
OCSP=$(ocsp_url)
ask "$T/ca1.pem" "$T/c2/cert.pem"
expect "$T/c2/cert.pem: good" "delegated: c2 good"
expect 'Response verify OK' "delegated responder verifies against the CA"
expect 'Responder Id: CN = labca OCSP responder' "delegated responder id"
expect 'OCSP Signing' "responder certificate EKU"
stop_server

# --- 3. warped clock: the switchover, both generations answered --------------------------------
start=$(date -u -d '+36 hours' +%Y-%m-%dT%H:%M:%SZ)
start_server "$CONFIG" --ios-limits off --ocsp-listen 127.0.0.1:0 --clock-start "$start"
OCSP=$(ocsp_url)
cp "$T/data/ca.pem" "$T/ca2.pem"
cmp -s "$T/ca1.pem" "$T/ca2.pem" && fail "no switchover at the warped start"
enroll c3
ask "$T/ca1.pem" "$T/c2/cert.pem"
expect "$T/c2/cert.pem: good" "previous generation's certificate"
expect 'Response verify OK' "previous generation signs its own answer"
ask "$T/ca2.pem" "$T/c3/cert.pem"
expect "$T/c3/cert.pem: good" "new generation's certificate"
ask "$T/ca1.pem" "$T/c1/cert.pem"
expect "$T/c1/cert.pem: revoked" "previous generation's revocation"
stop_server

# --- 4. the clock runs backwards ----------------------------------------------------------------
rc=0
"$PKISIM" serve "$T/ca.ios" --data "$T/data" --listen 127.0.0.1:0 \
    --passphrase-file "$T/passphrase" >"$T/back.out" 2>"$T/back.err" || rc=$?
[[ $rc -eq 7 ]] || fail "restart on the real clock: exit $rc, $(cat "$T/back.err")"
grep -q 'has already seen' "$T/back.err" && grep -q -- '--allow-clock-backwards' "$T/back.err" ||
    fail "message: $(cat "$T/back.err")"
"$PKISIM" serve --help | grep -q '7 the clock is earlier' || fail "serve --help: exit code 7"
start_server "$CONFIG" --ios-limits off --allow-clock-backwards
grep -q 'CLOCK_BACKWARDS' "$T/server.err" || fail "no warning in the log: $(cat "$T/server.err")"
enroll c4
ca_nb=$(date -u -d "$(openssl x509 -in "$T/ca2.pem" -noout -startdate | sed 's/notBefore=//')" +%s)
c4_nb=$(date -u -d "$(openssl x509 -in "$T/c4/cert.pem" -noout -startdate | sed 's/notBefore=//')" +%s)
now=$(date -u +%s)
((c4_nb >= ca_nb)) || fail "c4 starts $c4_nb before its CA $ca_nb"
((c4_nb > now + 3600)) || fail "c4 is dated by the (earlier) real clock"
openssl verify -attime "$c4_nb" -CAfile "$T/ca2.pem" "$T/c4/cert.pem" >/dev/null ||
    fail "c4 does not verify against the new CA"
stop_server
echo "OK: OCSP good/revoked/unknown, GET, bad input, delegated responder, both generations;"\
     "clock backwards refused (7) and overridden"
