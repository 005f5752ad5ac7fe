#!/bin/bash
# Issue 10 §2, the agreement test: one scenario run both ways, `pkisim simulate` and
# `pkisim fleet` against `pkisim serve` on the same warped clock (rate 10, the fleet reads the
# server's clock from its Date header), then every counter compared within the tolerances of
# README "Drive a real server". CASE = loop (30 clients, limiter off: must agree up to the
# warp's resolution) or limiter (100 clients against the IOS limiter).
# The fleet measures how late its own timers fire; on a machine too loaded to referee (p99 of
# that lateness over 2 s of lab time = 200 ms real) the test is skipped (77) with the figures.
set -euo pipefail
PKISIM=${1:?usage: $0 PKISIM_BINARY CASE}
CASE=${2:?usage: $0 PKISIM_BINARY loop|limiter}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/pkisim-fidelity-XXXXXX)
SP=
cleanup() {
    local rc=$?
    [[ -n $SP ]] && kill "$SP" 2>/dev/null && wait "$SP" 2>/dev/null || true
    [[ $rc -ne 0 && $rc -ne 77 ]] && { cat "$T"/live.txt "$T"/serve.log 2>/dev/null | tail -30 >&2 || true; }
    # FIDELITY_KEEP=DIR keeps both runs' folders and the server's log for a look.
    [[ -n ${FIDELITY_KEEP:-} ]] && cp -r "$T" "$FIDELITY_KEEP"
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
RATE=10  # configs/fidelity/*.toml are written for it (service times, syn_retransmit)
SCEN=$SRC/configs/fidelity/$CASE.toml
FLAGS=()
[[ $CASE == loop ]] && FLAGS=(--ios-limits off)
echo 'fidelity passphrase' >"$T/pass"
echo secret >"$T/ch"
chmod 600 "$T/pass" "$T/ch"
"$PKISIM" simulate "$SCEN" --engine exact --out "$T/sim" --quiet >/dev/null || [[ $? -eq 1 ]]
# The scenario's clients start at minute 2 (12 s real): time for the server to create its CA
# (RSA key generation) even on a loaded machine.
serve() {
    "$PKISIM" serve "$SRC/configs/fidelity/ca.ios" --data "$T/data" --listen 127.0.0.1:0 \
        --passphrase-file "$T/pass" --challenge-file "$T/ch" \
        --clock-start 2030-01-01T00:00:00Z --clock-rate $RATE "${FLAGS[@]}" >"$T/serve.log" 2>&1 &
    SP=$!
    for _ in $(seq 600); do
        grep -q "listening on" "$T/serve.log" 2>/dev/null && return 0
        kill -0 $SP 2>/dev/null || { echo "FAIL: serve exited"; cat "$T/serve.log"; exit 1; }
        sleep 0.05
    done
    echo "FAIL: serve did not start"
    exit 1
}
serve
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/serve.log" | head -1)
"$PKISIM" fleet "$SCEN" --target "$URL" --out "$T/live" --clock-rate $RATE --clock-sync \
    --challenge-file "$T/ch" --quiet --duration 150 >"$T/live.txt" || [[ $? -eq 1 ]]
"$PKISIM" ca --data "$T/data" show metrics >"$T/metrics.txt"
kill $SP; wait $SP 2>/dev/null || true; SP=
python3 - "$T" "$CASE" <<'PY'
import json, sys, re
from datetime import datetime
T, case = sys.argv[1], sys.argv[2]
sim = json.load(open(f"{T}/sim/summary.json"))
live = json.load(open(f"{T}/live/summary.json"))
lj = live["live"]
metrics = open(f"{T}/metrics.txt").read()
server_deaf = float(re.search(r"^pkisim_http_deaf_seconds_total (\S+)", metrics, re.M).group(1))
late = lj["timer_lateness_model_ms"]["p99_ms"]
def t(s):
    if s is None:
        return float("nan")  # never happened: fails every time check
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
n = sim["clients"]
rows, bad = [], []
def check(name, a, b, tol, unit=""):
    ok = abs(a - b) <= tol  # False for nan
    ratio = f"{b / a:.3f}" if unit == "" and a else "-"
    rows.append(f"{name:40s} {a:>12} {b:>12} {ratio:>7}  tol ±{tol:g}{unit}  {'ok' if ok else 'FAIL'}")
    if not ok: bad.append(name)
def pct(v, p): return max(1.0, p * v)
if case == "loop":
    # Up to the warp's resolution: times within the clock error (sync edge 1/20 s of a lab
    # second, + the fleet's own p99 lateness, + 1 s for the CA created a second late);
    # per-client fates exactly; per-attempt counts within one attempt per client (the last
    # retry before the shadow appears falls on either side of it).
    tol_t = 1.0 + late / 1000.0
    check("first GetNextCACert (s)", t(sim["first_get_next_ca_cert_at"]), t(live["first_get_next_ca_cert_at"]), tol_t, " s")
    check("first 404 (s)", t(sim["first_404_at"]), t(live["first_404_at"]), tol_t, " s")
    for k in ["clients_hit_404", "enrollments_ok", "enrollments_failed", "clients_outage",
              "connections_dropped_max_connections", "connections_ignored_deaf"]:
        check(k, sim[k], live[k], 0)
    for k in ["get_next_ca_cert_requests", "responses_404", "connections_accepted"]:
        check(k, sim[k], live[k], n)
    check("deaf seconds (server)", sim["deaf_seconds"], server_deaf, 0)
else:
    # Against the limiter. The fleet's enrollments are concurrent (every client connects when
    # its timer says, as IOS routers do). Tolerances from eight runs on the shared 2-core VM
    # (load 10-15, docs/notes/2026-12-01/s4-i10.md; live / simulated): the 60 s sliding window
    # turns a 1-2 s shift of one client into a different deaf period, so the counts of what
    # the server serves move by a few per cent from run to run.
    check("first GetNextCACert (s)", t(sim["first_get_next_ca_cert_at"]), t(live["first_get_next_ca_cert_at"]), 20, " s")
    check("first 404 (s)", t(sim["first_404_at"]), t(live["first_404_at"]), 20, " s")
    check("enrollments_ok", sim["enrollments_ok"], live["enrollments_ok"], pct(sim["enrollments_ok"], 0.02))
    check("connections_accepted", sim["connections_accepted"], live["connections_accepted"], pct(sim["connections_accepted"], 0.06))
    # Runs: 0.93-1.05 (attempts), 0.90-1.03 (ignored), 0.97-1.08 (clients hit).
    for k in ["get_next_ca_cert_requests", "connections_ignored_deaf", "clients_hit_404"]:
        check(k, sim[k], live[k], pct(sim[k], 0.12))
    # Only the attempts that get through see a 404: 0.97-1.13.
    check("responses_404", sim["responses_404"], live["responses_404"], pct(sim["responses_404"], 0.15))
    # Deaf seconds: the same deaf periods or one 15 s period fewer (165 / 150 s).
    check("deaf seconds (server)", sim["deaf_seconds"], server_deaf, 15.5)
    # What the simulator does not model: pkisim serve runs every request on one engine thread
    # and generates the shadow CA's key on it (minute 5, while the herd is looping), so live
    # connections wait in its queue; over 16 open (max-connections) they are reset, and the
    # throttle sees the retries. Hence more failed enrollments live than simulated (1.3-2.3x in
    # the runs at load 10-15, 1.05x at load 5), never fewer: live within [0.85, 2.5] x simulated, and drops up to 10 % of
    # the live connections (the simulator's parallel service has none: 6-75 live).
    ef_s, ef_l = sim["enrollments_failed"], live["enrollments_failed"]
    ok = 0.85 * ef_s <= ef_l <= 2.5 * ef_s
    rows.append(f"{'enrollments_failed':40s} {ef_s:>12} {ef_l:>12}  live in [0.85, 2.5] x sim  {'ok' if ok else 'FAIL'}")
    if not ok: bad.append("enrollments_failed")
    check("connections_dropped_max_connections", sim["connections_dropped_max_connections"],
          live["connections_dropped_max_connections"], 0.10 * lj["connections"])
    check("clients_outage", sim["clients_outage"], live["clients_outage"], 0.05 * n)
print(f"{'counter':40s} {'simulate':>12} {'live':>12} {'live/sim':>7}")
print("\n".join(rows))
print(f"fleet timer lateness p99: {late:.0f} ms of lab time; {lj['connections']} connections in {lj['real_seconds']:.1f} s real; "
      f"enrollment start p99 {lj['enroll_prep_model_ms']['p99_ms']:.0f} ms of lab time after its timer; "
      f"{lj['setup_connections']} set-up connections, the last at {lj['setup_done_at']}")
if late > 2000:
    print(f"SKIP: this machine is too loaded to referee (timers late by {late:.0f} ms of lab time at p99)")
    sys.exit(77)
sys.exit(1 if bad else 0)
PY
