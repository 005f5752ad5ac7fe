#!/bin/bash
# Issue 10 §4: `pkisim fleet` against a FOREIGN CA, micromdm's scepserver (Debian `scep`): no
# GetNextCACert support, no limiter, a real clock. 20 virtual clients enroll (PKCSReq, DES as
# scepserver answers: --legacy-crypto) and each sends one GetNextCACert (--probe-next-ca: their
# SHADOW timer is a year away); the fleet reports what scepserver answers. scepserver listens
# on every interface, so everything runs in a private network namespace (`unshare -n`,
# loopback only), as the RA interop tests do. Exit 77 (skipped) without namespaces.
# The clients are half a second apart: the fleet's enrollments are concurrent (as IOS
# routers'), and scepserver's file depot fails two signings that overlap ("open depot/serial:
# file exists"), which is scepserver's limit, not what this test is about.
set -euo pipefail
PKISIM=${1:?usage: $0 PKISIM_BINARY}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if ! unshare -n true 2>/dev/null; then
    echo "SKIP: unshare -n not permitted here"
    exit 77
fi
T=$(mktemp -d /tmp/pkisim-fleet-scepserver-XXXXXX)
trap 'rm -rf "$T"' EXIT
export PKISIM T SRC

timeout 100 unshare -n bash -euo pipefail -c '
ip link set lo up
fail() { echo "FAIL: $*" >&2; cat "$T/server.log" "$T/fleet.out" "$T/fleet.err" >&2 || true; exit 1; }
scepserver ca -init -depot "$T/depot" -keySize 2048 >"$T/init.log" 2>&1 || fail "ca -init"
scepserver -depot "$T/depot" -port 8080 -challenge secret -allowrenew 0 >"$T/server.log" 2>&1 &
SP=$!
trap "kill $SP 2>/dev/null || true; wait $SP 2>/dev/null || true" EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
    kill -0 $SP 2>/dev/null || fail "scepserver exited"
    sleep 0.1
done
cat >"$T/fleet.toml" <<TOML
name = "20 routers against micromdm scepserver"
horizon = "16s"
[ca]
config = "$SRC/configs/fidelity/ca.ios"
[[clients]]
config = "$SRC/configs/fidelity/client.ios"
count = 20
pattern = "spread"
at = "1s"
window = "10s"
TOML
echo secret >"$T/challenge"
"$PKISIM" fleet "$T/fleet.toml" --target http://127.0.0.1:8080/scep --exact-path --legacy-crypto \
    --challenge-file "$T/challenge" --probe-next-ca --key-pool 4 --duration 60 --quiet \
    --out "$T/out" >"$T/fleet.out" 2>"$T/fleet.err" || [[ $? -eq 1 ]] || fail "fleet exit code"
cat "$T/fleet.out"
python3 - "$T" <<PY || fail "summary"
import json, sys
T = sys.argv[1]
s = json.load(open(f"{T}/out/summary.json"))
live = s["live"]
assert s["engine"] == "live" and live["live"] is True, "not marked live"
assert s["enrollments_ok"] == 20, "enrolled %d of 20" % s["enrollments_ok"]
assert s["enrollments_failed"] == 0, s["enrollments_failed"]
probes = sum(live["outcomes"]["GetNextCACert"].values())
assert probes == 20, f"{probes} GetNextCACert answers"
assert live["get_next_ca_cert_answers"], "no answer reported"
print("GetNextCACert answers:", live["get_next_ca_cert_answers"])
PY
grep -q "GetNextCACert answers:" "$T/fleet.out" || fail "answers not printed"
n=$(find "$T/depot" -name "*.pem" | wc -l)
echo "scepserver depot: $n PEM files"
echo "OK: fleet enrolled 20 clients at scepserver"
'
