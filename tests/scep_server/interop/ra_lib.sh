# RA helpers for the interop tests (issue 4 §2): a `pkisim serve` in `mode ra` in front of the
# CA that lib.sh's start_server started (or any SCEP URL). Source after lib.sh.

# start_ra CA_URL SERVER_SECTION_LINES [extra serve flags...]: sets RA_URL and RA_PID.
# The trustpoint and the server share the NAME lab-ra (ios-pki-research.md §5). The RA's own
# clients use the challenge "ra-secret"; the RA asks the CA with "secret" (lib.sh's CA) unless
# $T/upstream-challenge already exists.
start_ra() {
    local ca_url=$1 section=$2
    shift 2
    printf 'crypto pki trustpoint lab-ra\n enrollment url %s\n enrollment retry period 1\n!\ncrypto pki server lab-ra\n mode ra\n%s\n' \
        "$ca_url" "$section" >"$T/ra.ios"
    echo "ra-passphrase" >"$T/ra-passphrase"
    echo "ra-secret" >"$T/ra-challenge"
    # A test may put a one-time password from the CA there first.
    [[ -f $T/upstream-challenge ]] || echo "secret" >"$T/upstream-challenge"
    : >"$T/ra.out"  # as in start_server (lib.sh): no earlier RA's lines for the wait below
    : >"$T/ra.err"
    "$PKISIM" serve "$T/ra.ios" --data "$T/ra-data" --listen 127.0.0.1:0 \
        --passphrase-file "$T/ra-passphrase" --challenge-file "$T/ra-challenge" \
        --upstream-challenge-file "$T/upstream-challenge" "$@" \
        >"$T/ra.out" 2>"$T/ra.err" &
    RA_PID=$!
    PIDS+=("$RA_PID")
    for _ in $(seq 150); do
        if grep -q 'listening on' "$T/ra.out" 2>/dev/null; then break; fi
        kill -0 "$RA_PID" 2>/dev/null || fail "RA exited: $(cat "$T/ra.err")"
        sleep 0.1
    done
    local addr
    addr=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$T/ra.out" | grep -o '127.*' | head -1)
    [[ -n $addr ]] || fail "RA: no listening address: $(cat "$T/ra.out" "$T/ra.err")"
    RA_URL="http://$addr/cgi-bin/pkiclient.exe"
    echo "RA at $RA_URL: $(cat "$T/ra.out")"
}

# The CA's base URL (what a trustpoint's `enrollment url` holds) from lib.sh's $URL.
ca_base_url() {
    echo "${URL%/cgi-bin/pkiclient.exe}"
}
