#!/usr/bin/env bash
# Soak (issue 13 §5): bounded mixed load against the release `pkisim serve` for DURATION
# seconds, sampling the server's RSS, open descriptors and store size every second.
#
#   bench/scep_server/soak.sh [--duration S] [--ios-limits on|off] [--clients N]
#                             [--interval-ms MS] [--out DIR] [--data DIR] [--sqlite-every S]
#
# Load (all loopback, all bounded by the duration): N enrollment loops (`pkisim client
# enroll`, one key each, a new CN every time), a GetCACert + GetNextCACert + GetCACaps loop, and
# a bad-input loop (garbage POST bodies, bad base64, an oversized URL, a slow partial request).
# --interval-ms bounds the rate: every loop sleeps MS after each round (default 0: as fast as
# it goes; on a shared machine use e.g. 200 and run the script under `nice -n 10`).
# --data DIR: the server's data folder is DIR (kept afterwards; an existing one is reopened, so
# a second run starts from a warm, large store). --sqlite-every S: every S seconds gdb attaches
# to the server (a few ms) and reads sqlite3_memory_used(), SQLite's own count of the heap it
# holds (page cache, schema, statements): the sqlite_kib column, to tell its growth from ours.
# Output: DIR/samples.csv (t, rss_kib, fds, store_bytes, requests, cpu_ticks, sqlite_kib,
# anon_kib, file_kib: RSS split into private memory and mapped files) and a summary:
# each series' mean over the first fifth after a warm-up and over the last fifth, and their
# ratio. A flat server has ratios near 1 (store size grows with the certificates issued, by
# design: the summary also gives bytes per certificate).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=600
limits=off
clients=4
interval_ms=0
out=
data=
sqlite_every=0
while (($#)); do
    case $1 in
        --duration) duration=$2; shift 2 ;;
        --ios-limits) limits=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --interval-ms) interval_ms=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --sqlite-every) sqlite_every=$2; shift 2 ;;
        -h|--help) sed -n 2,21p "$0"; exit 0 ;;
        *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
PKISIM=${PKISIM:-build/release/cli/pkisim}
[[ -x $PKISIM ]] || { echo "soak.sh: build the release preset first ($PKISIM)" >&2; exit 2; }
umask 077
T=$(mktemp -d /tmp/pkisim-soak-XXXXXX)
out=${out:-$T}
mkdir -p "$out"
data=${data:-$T/data}
if ((sqlite_every > 0)) && ! command -v gdb >/dev/null; then
    echo "soak.sh: --sqlite-every needs gdb" >&2; exit 2
fi
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ $out == "$T" ]] || rm -rf "$T"
}
trap cleanup EXIT

printf 'crypto pki server soak\n issuer-name CN=soak,O=pkisim\n grant auto\n database level complete\n' >"$T/ca.ios"
echo soak-passphrase >"$T/pass"
echo secret >"$T/challenge"
"$PKISIM" serve "$T/ca.ios" --data "$data" --listen 127.0.0.1:0 --passphrase-file "$T/pass" \
    --challenge-file "$T/challenge" --ios-limits "$limits" --access-log "$T/access.log" \
    >"$T/serve.out" 2>"$T/serve.err" &
server=$!
PIDS+=("$server")
for _ in $(seq 200); do grep -q 'listening on' "$T/serve.out" 2>/dev/null && break; sleep 0.05; done
addr=$(grep -o '127.0.0.1:[0-9]*' "$T/serve.out" | head -1)
[[ -n $addr ]] || { cat "$T/serve.err" >&2; exit 1; }
url="http://$addr"
echo "soak: server pid $server on $url, IOS limits $limits, $clients enrollment loops, ${duration}s, ${interval_ms} ms between rounds"
end=$(($(date +%s) + duration))
pause() { ((interval_ms == 0)) || sleep "$(printf '%d.%03d' $((interval_ms / 1000)) $((interval_ms % 1000)))"; }

enroll_loop() {
    local i=$1 n=0
    mkdir -p "$T/c$i"
    while (($(date +%s) < end)); do
        PKISIM_CHALLENGE=secret "$PKISIM" client "$url" enroll --key "$T/c$i/key.pem" \
            --cn "soak-$i-$n" --out "$T/c$i" --connect-timeout 5 >/dev/null 2>&1 || true
        n=$((n + 1))
        pause
    done
}
get_loop() {
    local base="$url/cgi-bin/pkiclient.exe?operation="
    while (($(date +%s) < end)); do
        curl -s -m 5 -o /dev/null "${base}GetCACert" || true
        curl -s -m 5 -o /dev/null "${base}GetNextCACert" || true
        curl -s -m 5 -o /dev/null "${base}GetCACaps" || true
        pause
    done
}
bad_loop() {
    local base="$url/cgi-bin/pkiclient.exe?operation="
    head -c 3000 /dev/urandom >"$T/garbage"
    local long
    long=$(head -c 70000 /dev/zero | tr '\0' A)
    while (($(date +%s) < end)); do
        curl -s -m 5 -o /dev/null --data-binary @"$T/garbage" "${base}PKIOperation" || true
        curl -s -m 5 -o /dev/null "${base}PKIOperation&message=%%%not-base64" || true
        curl -s -m 5 -o /dev/null "${base}X%0Aforged%00line" || true
        curl -s -m 5 -o /dev/null "${base}GetCACert&x=$long" || true
        # A slow client: half a request line, then gone after 1 s.
        timeout 1 bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr#*:}; printf 'GET /cgi' >&3; sleep 2" \
            2>/dev/null || true
        pause
    done
}
for i in $(seq "$clients"); do enroll_loop "$i" & PIDS+=($!); done
get_loop & PIDS+=($!)
bad_loop & PIDS+=($!)

csv="$out/samples.csv"
echo "t,rss_kib,fds,store_bytes,requests,cpu_ticks,sqlite_kib,anon_kib,file_kib" >"$csv"
certs0=$( (ls "$data"/*.cer 2>/dev/null || true) | wc -l)
sqlite_kib() {  # empty if gdb cannot attach (e.g. another debugger is on the server)
    { gdb -p "$server" -batch -nx -ex 'print (long long)sqlite3_memory_used()' 2>/dev/null || true; } |
        awk -F'= ' '/^\$1 = / {printf "%d", $2 / 1024}'
}
start=$(date +%s)
next_sq=0
while (($(date +%s) < end)); do
    # t: seconds since the start (a loaded machine slows the sampler; t stays wall time)
    t=$(($(date +%s) - start))
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
    fds=$(ls "/proc/$server/fd" | wc -l)
    store=$(cat "$data"/pkisim.db* 2>/dev/null | wc -c)
    reqs=$(wc -l <"$T/access.log")
    # utime + stime of the server (fields 14, 15 of /proc/PID/stat; the name is in parentheses)
    cpu=$(sed 's/.*) //' "/proc/$server/stat" | awk '{print $12 + $13}')
    sq=
    if ((sqlite_every > 0 && t >= next_sq)); then
        sq=$(sqlite_kib)
        next_sq=$((t + sqlite_every))
    fi
    # RSS split: heap and other private memory vs mapped files (code of pkisim and its libraries)
    anon=$(awk '/^RssAnon/ {print $2}' "/proc/$server/status")
    file=$(awk '/^RssFile/ {print $2}' "/proc/$server/status")
    echo "$t,$rss,$fds,$store,$reqs,$cpu,$sq,$anon,$file" >>"$csv"
    sleep 1
done
"$PKISIM" ca --data "$data" show http >"$out/show-http.txt" 2>&1 || true
"$PKISIM" ca --data "$data" show metrics >"$out/metrics.txt" 2>&1 || true
certs=$(($( (ls "$data"/*.cer 2>/dev/null || true) | wc -l) - certs0))
python3 - "$csv" "$certs" "$certs0" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if len(rows) < 10:
    sys.exit(f"soak: only {len(rows)} samples")
n = len(rows)
secs = max(1, int(rows[-1]["t"]))
warm = max(1, n // 10)            # first tenth of the samples: warm-up
body = rows[warm:]
k = max(1, len(body) // 5)
def mean(rs, key): return sum(float(r[key]) for r in rs) / len(rs)
certs = int(sys.argv[2])
reqs = int(rows[-1]["requests"])
cpu_s = (float(rows[-1]["cpu_ticks"]) - float(rows[0]["cpu_ticks"])) / 100
print(f"soak: {n} samples in {secs} s, warm-up {rows[warm]['t']} s, {reqs} requests logged ({reqs / secs:.1f}/s), "
      f"{certs} certificates (store had {sys.argv[3]} before); server CPU {cpu_s:.1f} s ({100 * cpu_s / secs:.1f} % of a core)")
print(f"{'series':<12} {'after warm-up':>14} {'last fifth':>12} {'ratio':>7} {'max':>12}")
for key in ("rss_kib", "anon_kib", "file_kib", "fds", "store_bytes"):
    a, b = mean(body[:k], key), mean(body[-k:], key)
    mx = max(float(r[key]) for r in body)
    print(f"{key:<12} {a:>14.0f} {b:>12.0f} {b / a if a else 0:>7.2f} {mx:>12.0f}")
s0, s1 = float(rows[0]["store_bytes"]), float(rows[-1]["store_bytes"])
if certs:
    print(f"store growth {s1 - s0:.0f} bytes over the run: {(s1 - s0) / certs:.0f} bytes per certificate")
sq = [(float(r["t"]), float(r["rss_kib"]), float(r["sqlite_kib"])) for r in rows if r["sqlite_kib"]]
if len(sq) >= 2:
    (ta, ra, qa), (tb, rb, qb) = sq[min(len(sq) - 1, max(1, len(sq) // 10))], sq[-1]
    print(f"sqlite3_memory_used: {qa:.0f} KiB at t={ta:.0f} s, {qb:.0f} KiB at t={tb:.0f} s "
          f"(+{qb - qa:.0f} KiB); RSS +{rb - ra:.0f} KiB over the same span, "
          f"so {rb - ra - (qb - qa):+.0f} KiB not SQLite's")
PY
echo "soak: samples in $csv"
