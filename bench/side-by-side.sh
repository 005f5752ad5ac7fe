#!/usr/bin/env bash
# Issue 12 §2: `pkisim serve --ios-limits off` side by side with its anchors, on loopback, in
# one run, and the ratios of the issue's table:
#   - nginx (Debian nginx-light) with 1 and 2 workers serving a static file of the same bytes as
#     GetCACert, loaded by `pkisim bench` and by `wrk` (new connection per request, keep-alive);
#   - micromdm scepserver (Debian scep) for enrollments, the same kind and number of pre-built
#     PKCSReqs from `pkisim bench --mode enroll`;
#   - `openssl speed rsa2048` for the RSA floor of one enrollment (3 signs + 2 verifies);
#   - `pkisim bench` against `wrk` as generators (new connections per second, one thread each).
# Every figure is the median of REPEATS alternated runs (pkisim, anchor, pkisim, anchor, ...), so
# a change in the machine's load hits both sides. The machine changes between runs: compare
# ratios of one run only.
#
# Usage: bench/side-by-side.sh [PKISIM_BINARY]   (default build/release/cli/pkisim)
#   DURATION=5 REPEATS=3 CONCURRENCY=64 ENROLL_REQUESTS=400 OUT=/tmp/side-by-side
#   PARTS="connect enroll generators" (a subset runs only those parts: PARTS=enroll)
#   STORE_DIR=/mnt/x: where both servers keep their stores (pkisim's folder, micromdm's depot);
#   default: the run's temporary folder under /tmp. The filesystem is part of the CPU per
#   enrollment (bench/README.md "Where a store lives").
# Everything runs in a private network namespace (`unshare -n`, loopback only) when the kernel
# allows it, because scepserver listens on every interface; without one, micromdm is skipped.
# Needs: nginx-light, wrk, scep, python3, openssl (scripts/install-deps.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKISIM=$(realpath "${1:-$ROOT/build/release/cli/pkisim}")
DURATION=${DURATION:-5}
REPEATS=${REPEATS:-3}
CONCURRENCY=${CONCURRENCY:-64}
ENROLL_REQUESTS=${ENROLL_REQUESTS:-400}
OUT=${OUT:-/tmp/pkisim-side-by-side}
PARTS=${PARTS:-connect enroll generators}
want() { [[ " $PARTS " == *" $1 "* ]]; }

if [[ -z ${PKISIM_SIDE_BY_SIDE_NETNS:-} ]] && unshare -n true 2>/dev/null; then
    export PKISIM_SIDE_BY_SIDE_NETNS=1 DURATION REPEATS CONCURRENCY ENROLL_REQUESTS OUT PARTS STORE_DIR
    exec unshare -n bash -c 'ip link set lo up && exec bash "$0" "$1"' "$0" "$PKISIM"
fi
IN_NETNS=${PKISIM_SIDE_BY_SIDE_NETNS:-}

for tool in nginx wrk python3 openssl; do
    command -v "$tool" >/dev/null || { echo "side-by-side: $tool missing (scripts/install-deps.sh)" >&2; exit 2; }
done
[[ -x $PKISIM ]] || { echo "side-by-side: $PKISIM is not built" >&2; exit 2; }

T=$(mktemp -d /tmp/pkisim-side-XXXXXX)
STORE_DIR=${STORE_DIR:-}
if [[ -n $STORE_DIR ]]; then
    [[ -d $STORE_DIR && -w $STORE_DIR ]] || { echo "side-by-side: STORE_DIR=$STORE_DIR is not a writable folder" >&2; exit 2; }
    S=$(mktemp -d "$STORE_DIR/pkisim-side-XXXXXX")
else
    S=$T
fi
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$T"
    [[ $S == "$T" ]] || rm -rf "$S"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # up to 60 s: a new CA (RSA key, PBKDF2) takes a while on a loaded machine
    for _ in $(seq 1200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "side-by-side: nothing listens on port $1" >&2
    return 1
}
# utime + stime of a process and its children threads, in clock ticks.
ticks() {
    local sum=0 pid
    for pid in "$@"; do
        local f
        f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null || echo "0 0")
        sum=$((sum + ${f% *} + ${f#* }))
    done
    echo $sum
}
HZ=$(getconf CLK_TCK)
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(statistics.median(v) if v else 0)' "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

echo "side-by-side: machine $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STORE_FS=$(df -T "$S" | awk 'NR == 2 {print $2 " (" $1 ")"}')
echo "side-by-side: stores in $S, filesystem $STORE_FS"

# --- pkisim serve --ios-limits off
echo "side-by-side pass" >"$T/pass"
echo secret >"$T/challenge"
chmod 600 "$T/pass" "$T/challenge"  # pkisim serve refuses secret files others can read
PK_PORT=$(free_port)
"$PKISIM" serve "$ROOT/configs/lab/ca.ios" --data "$S/pkisim" --listen "127.0.0.1:$PK_PORT" \
    --passphrase-file "$T/pass" --challenge-file "$T/challenge" --ios-limits off --access-log off \
    >"$T/pkisim.out" 2>"$T/pkisim.err" &
PK_PID=$!
PIDS+=("$PK_PID")
wait_port "$PK_PORT" || { cat "$T/pkisim.err" >&2; exit 1; }
PK_URL="http://127.0.0.1:$PK_PORT"
PK_TARGET="$PK_URL/cgi-bin/pkiclient.exe?operation=GetCACert&message=pkisim"
python3 -c 'import sys,urllib.request; open(sys.argv[2],"wb").write(urllib.request.urlopen(sys.argv[1]).read())' \
    "$PK_TARGET" "$T/ca.der"
CA_BYTES=$(stat -c %s "$T/ca.der")

# --- nginx, 1 and 2 workers, the same bytes at the same path
start_nginx() {  # workers port -> sets NG_PID
    local w=$1 port=$2 d=$T/nginx$1
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes $w;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fcgi;
    uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location = /cgi-bin/pkiclient.exe { default_type application/x-x509-ca-cert; alias $T/ca.der; }
    }
}
EOF
    nginx -c "$d/nginx.conf" -p "$d" &
    NG_PID=$!
    PIDS+=("$NG_PID")
    wait_port "$port"
}
NG1_PORT=$(free_port)
start_nginx 1 "$NG1_PORT"
NG1_PID=$NG_PID
NG2_PORT=$(free_port)
start_nginx 2 "$NG2_PORT"
NG2_PID=$NG_PID
nginx_pids() { echo "$1" $(pgrep -P "$1" || true); }

# One measurement: prints "RATE CPU_US_PER_REQUEST FAILURE_PERCENT".
# measure_bench NAME PIDS -- pkisim bench args...
measure_bench() {
    local name=$1 pids=$2
    shift 3
    local before after
    before=$(ticks $pids)
    "$PKISIM" bench "$@" -q --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 || true
    after=$(ticks $pids)
    python3 - "$OUT/$name.json" "$before" "$after" "$HZ" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
n = d["completed"]
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / n if n else 0
fail = 100.0 * (n - d["successes"]) / n if n else 100.0
print(f'{d["throughput_per_s"]:.1f} {cpu:.1f} {fail:.2f}')
EOF
}
measure_wrk() {  # NAME PIDS URL [wrk args...] -> "RATE CPU_US_PER_REQUEST"
    local name=$1 pids=$2 url=$3
    shift 3
    local before after
    before=$(ticks $pids)
    wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" "$@" "$url" >"$OUT/$name.txt" 2>&1 || true
    after=$(ticks $pids)
    python3 - "$OUT/$name.txt" "$before" "$after" "$HZ" "$DURATION" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"Requests/sec:\s+([0-9.]+)", t)
rate = float(m.group(1)) if m else 0.0
n = rate * float(sys.argv[5])
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / n if n else 0
print(f"{rate:.1f} {cpu:.1f}")
EOF
}

declare -A V  # V[key]="values..."
add() { V[$1]="${V[$1]:-} $2"; }

BENCH_CONNECT=(-c "$CONCURRENCY" -d "$DURATION")
want connect && echo "side-by-side: new connection per request and keep-alive, $REPEATS alternated runs of ${DURATION} s"
for i in $(want connect && seq "$REPEATS"); do
    read -r r c _ < <(measure_bench "pk-connect-$i" "$PK_PID" -- "$PK_URL" "${BENCH_CONNECT[@]}")
    add pk_connect "$r"; add pk_connect_cpu "$c"
    read -r r c _ < <(measure_bench "ng1-connect-$i" "$(nginx_pids $NG1_PID)" -- "http://127.0.0.1:$NG1_PORT" "${BENCH_CONNECT[@]}")
    add ng1_connect "$r"; add ng1_connect_cpu "$c"
    read -r r c _ < <(measure_bench "ng2-connect-$i" "$(nginx_pids $NG2_PID)" -- "http://127.0.0.1:$NG2_PORT" "${BENCH_CONNECT[@]}")
    add ng2_connect "$r"
    read -r r c < <(measure_wrk "wrk-pk-close-$i" "$PK_PID" "$PK_TARGET" -H 'Connection: close')
    add wrk_pk_close "$r"
    read -r r c < <(measure_wrk "wrk-ng1-close-$i" "$(nginx_pids $NG1_PID)" "http://127.0.0.1:$NG1_PORT/cgi-bin/pkiclient.exe?operation=GetCACert&message=pkisim" -H 'Connection: close')
    add wrk_ng1_close "$r"
    read -r r c _ < <(measure_bench "pk-keepalive-$i" "$PK_PID" -- "$PK_URL" --mode keepalive "${BENCH_CONNECT[@]}")
    add pk_keep "$r"
    read -r r c _ < <(measure_bench "ng1-keepalive-$i" "$(nginx_pids $NG1_PID)" -- "http://127.0.0.1:$NG1_PORT" --mode keepalive "${BENCH_CONNECT[@]}")
    add ng1_keep "$r"
    read -r r c < <(measure_wrk "wrk-pk-keep-$i" "$PK_PID" "$PK_TARGET")
    add wrk_pk_keep "$r"
    read -r r c < <(measure_wrk "wrk-ng1-keep-$i" "$(nginx_pids $NG1_PID)" "http://127.0.0.1:$NG1_PORT/cgi-bin/pkiclient.exe?operation=GetCACert&message=pkisim")
    add wrk_ng1_keep "$r"
done

# --- micromdm scepserver (only inside the private namespace: it listens on every interface)
MM_URL=
if [[ -n $IN_NETNS ]] && command -v scepserver >/dev/null; then
    MM_PORT=$(free_port)
    scepserver ca -init -depot "$S/depot" -keySize 2048 >"$T/mm-init.log" 2>&1
    scepserver -depot "$S/depot" -port "$MM_PORT" -challenge secret >"$T/mm.log" 2>&1 &
    MM_PID=$!
    PIDS+=("$MM_PID")
    wait_port "$MM_PORT"
    MM_URL="http://127.0.0.1:$MM_PORT/scep"
else
    echo "side-by-side: micromdm skipped (no private network namespace or no scepserver)"
fi

ENROLL=(--mode enroll -n "$ENROLL_REQUESTS" --keys 8 --challenge-file "$T/challenge" -d 0)
for conc in $(want enroll && echo 8 64); do
    echo "side-by-side: enrollments, concurrency $conc, $ENROLL_REQUESTS pre-built requests per run"
    for i in $(seq "$REPEATS"); do
        read -r r c f < <(measure_bench "pk-enroll-c$conc-$i" "$PK_PID" -- "$PK_URL" "${ENROLL[@]}" -c "$conc")
        add "pk_enroll_$conc" "$r"; add "pk_enroll_cpu_$conc" "$c"; add "pk_enroll_fail_$conc" "$f"
        if [[ -n $MM_URL ]]; then
            read -r r c f < <(measure_bench "mm-enroll-c$conc-$i" "$MM_PID" -- "$MM_URL" --exact-path --legacy-crypto "${ENROLL[@]}" -c "$conc")
            add "mm_enroll_$conc" "$r"; add "mm_enroll_cpu_$conc" "$c"; add "mm_enroll_fail_$conc" "$f"
        fi
    done
done

# --- the generators on one core: pkisim bench vs wrk, new connections against nginx 1 worker.
# Besides the rates, the generator's own CPU time (getrusage of the child): connections per
# CPU-second is what one core can generate, whatever share of the machine it got.
want generators && echo "side-by-side: generators (1 thread each) against nginx, 1 worker"
cpu_of() {  # OUTFILE CMD... -> prints the child's user+system CPU seconds
    local out=$1
    shift
    python3 -c 'import resource,subprocess,sys
with open(sys.argv[1],"w") as f: subprocess.run(sys.argv[2:], stdout=f, stderr=subprocess.STDOUT)
r=resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime+r.ru_stime)' "$out" "$@"
}
NG1_TARGET="http://127.0.0.1:$NG1_PORT/cgi-bin/pkiclient.exe?operation=GetCACert&message=pkisim"
for i in $(want generators && seq "$REPEATS"); do
    c=$(cpu_of "$OUT/gen-bench-$i.txt" "$PKISIM" bench "http://127.0.0.1:$NG1_PORT" -c "$CONCURRENCY" -d "$DURATION" -t 1 -q --json "$OUT/gen-bench-$i.json")
    read -r r n < <(jget "$OUT/gen-bench-$i.json" 'str(d["throughput_per_s"]) + " " + str(d["completed"] + d["warmup_completed"])')
    add gen_bench "$r"; add gen_bench_per_cpu "$(python3 -c "print($n/$c if $c else 0)")"
    c=$(cpu_of "$OUT/gen-wrk-$i.txt" wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" -H 'Connection: close' "$NG1_TARGET")
    read -r r n < <(python3 -c 'import re,sys; t=open(sys.argv[1]).read(); print(re.search(r"Requests/sec:\s+([0-9.]+)",t).group(1), re.search(r"([0-9]+) requests in",t).group(1))' "$OUT/gen-wrk-$i.txt")
    add gen_wrk "$r"; add gen_wrk_per_cpu "$(python3 -c "print($n/$c if $c else 0)")"
done

# --- the RSA floor
openssl speed -seconds 2 rsa2048 >"$OUT/openssl-speed.txt" 2>/dev/null
read -r SIGN VERIFY < <(awk '/^rsa 2048 bits/ {gsub("s","",$4); gsub("s","",$5); print $4, $5}' "$OUT/openssl-speed.txt")
FLOOR_MS=$(python3 -c "print(f'{(3*$SIGN + 2*$VERIFY)*1000:.3f}')")

M() { median ${V[$1]:-}; }
ratio() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}' if b else 'n/a')"; }
k() { python3 -c "print(f'{$1/1000:.1f} k/s')"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average $LOAD_START at start, $LOAD_END at the end; stores on $STORE_FS."
    echo "Each figure: median of $REPEATS alternated runs of ${DURATION} s, concurrency $CONCURRENCY; GetCACert = $CA_BYTES B DER."
    echo
    echo "| what | pkisim serve \`--ios-limits off\` | anchor | ratio |"
    echo "|---|---|---|---|"
    if want connect; then
        echo "| new connection per request, GetCACert, \`pkisim bench -c$CONCURRENCY\` | $(k "$(M pk_connect)") | nginx 1 worker: $(k "$(M ng1_connect)") | $(ratio "$(M pk_connect)" "$(M ng1_connect)") |"
        echo "| same | | nginx 2 workers: $(k "$(M ng2_connect)") | $(ratio "$(M pk_connect)" "$(M ng2_connect)") |"
        echo "| same, \`wrk -c$CONCURRENCY -H 'Connection: close'\` | $(k "$(M wrk_pk_close)") | nginx 1 worker: $(k "$(M wrk_ng1_close)") | $(ratio "$(M wrk_pk_close)" "$(M wrk_ng1_close)") |"
        echo "| keep-alive, \`pkisim bench --mode keepalive\` | $(k "$(M pk_keep)") | nginx 1 worker: $(k "$(M ng1_keep)") | $(ratio "$(M pk_keep)" "$(M ng1_keep)") |"
        echo "| keep-alive, \`wrk\` | $(k "$(M wrk_pk_keep)") | nginx 1 worker: $(k "$(M wrk_ng1_keep)") | $(ratio "$(M wrk_pk_keep)" "$(M wrk_ng1_keep)") |"
        echo "| server CPU per connection (close, pkisim bench) | $(M pk_connect_cpu) µs | nginx 1 worker: $(M ng1_connect_cpu) µs | $(ratio "$(M pk_connect_cpu)" "$(M ng1_connect_cpu)") |"
    fi
    for conc in $(want enroll && echo 8 64); do
        if [[ -n $MM_URL ]]; then
            echo "| enrollments/s, pre-built PKCSReqs, concurrency $conc | $(M pk_enroll_$conc) /s, $(M pk_enroll_fail_$conc) % failures | micromdm scepserver: $(M mm_enroll_$conc) /s, $(M mm_enroll_fail_$conc) % failures | $(ratio "$(M pk_enroll_$conc)" "$(M mm_enroll_$conc)") |"
        else
            echo "| enrollments/s, pre-built PKCSReqs, concurrency $conc | $(M pk_enroll_$conc) /s, $(M pk_enroll_fail_$conc) % failures | micromdm: skipped | |"
        fi
    done
    for conc in $(want enroll && echo 8 64); do echo "| server CPU per enrollment (concurrency $conc) | $(python3 -c "print(f'{$(M pk_enroll_cpu_$conc)/1000:.2f}')") ms | RSA-2048 floor (3 signs + 2 verifies, \`openssl speed\`): $FLOOR_MS ms | $(python3 -c "c=$(M pk_enroll_cpu_$conc)/1000; print(f'{100*$FLOOR_MS/c:.0f} % efficiency' if c else 'n/a')") |"; done
    if want enroll && [[ -n $MM_URL ]]; then
        for conc in 8 64; do echo "| micromdm CPU per enrollment (concurrency $conc) | | $(python3 -c "print(f'{$(M mm_enroll_cpu_$conc)/1000:.2f}')") ms | |"; done
    fi
    if want generators; then
        echo "| generators, one thread each, new connections/s against nginx 1 worker | pkisim bench: $(k "$(M gen_bench)") | wrk: $(k "$(M gen_wrk)") | $(ratio "$(M gen_bench)" "$(M gen_wrk)") |"
        echo "| generators: new connections per CPU-second of the generator (what one core generates) | pkisim bench: $(k "$(M gen_bench_per_cpu)") | wrk: $(k "$(M gen_wrk_per_cpu)") | $(ratio "$(M gen_bench_per_cpu)" "$(M gen_wrk_per_cpu)") |"
    fi
} | tee "$OUT/table.md"
echo "side-by-side: raw results in $OUT"
