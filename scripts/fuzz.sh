#!/usr/bin/env bash
# libFuzzer targets (issue 13 §1; fuzz/README.md). Builds the `fuzz` preset (clang-14,
# ASan+UBSan+libFuzzer) and runs each target for a bounded time on a scratch copy of its
# checked-in seed corpus, with its dictionary. Exit 1 if any target found a crash, leak,
# timeout or sanitizer report; the input is kept in build/fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh                      # every target, 25 s each (what CI runs)
#   scripts/fuzz.sh --seconds 3600 ca_engine pki_message    # long runs
#   scripts/fuzz.sh --runs 10000000 --seconds 3600 decoders  # stop at 10^7 inputs (or 1 h)
#   scripts/fuzz.sh --repro FILE [TARGET] # rerun one artefact (TARGET from its folder name)
#   scripts/fuzz.sh --list
set -euo pipefail
cd "$(dirname "$0")/.."
targets_all=(pki_message cert_rep ios_config ios_command scenario set decoders ca_engine)
seconds=25
runs=
repro=
targets=()
while (($#)); do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --repro) repro=$2; shift 2 ;;
        --list) printf '%s\n' "${targets_all[@]}"; exit 0 ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${targets_all[@]}")
dict_of() {
    case $1 in
        ios_config|ios_command) echo fuzz/dict/ios.dict ;;
        scenario|set) echo fuzz/dict/scenario.dict ;;
        pki_message|cert_rep|ca_engine) echo fuzz/dict/der.dict ;;
        *) echo "" ;;
    esac
}
echo "== build fuzz =="
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
bin=build/fuzz/fuzz
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [[ -n $repro ]]; then
    t=${targets[0]}
    [[ ${#targets[@]} -eq ${#targets_all[@]} ]] && t=$(basename "$(dirname "$repro")")
    exec "$bin/fuzz_$t" "$repro"
fi
status=0
for t in "${targets[@]}"; do
    work=build/fuzz/corpus/$t
    art=build/fuzz/artifacts/$t/
    mkdir -p "$work" "$art"
    dict=$(dict_of "$t")
    log=build/fuzz/$t.log
    echo "== fuzz_$t: ${seconds}s${runs:+ or $runs inputs} =="
    # -rss_limit_mb bounds memory; -timeout flags an input that takes more than 10 s.
    # CPU time of the run (user/sys of the fuzzer process) next to its wall time: on a shared
    # machine the exec rate per CPU second is the figure that carries over.
    TIMEFORMAT="cpu_seconds user %U sys %S wall %R"
    if { time "$bin/fuzz_$t" "$work" "fuzz/corpus/$t" ${dict:+-dict=$dict} -max_total_time="$seconds" \
        ${runs:+-runs=$runs} \
        -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$art" -print_final_stats=1 \
        >"$log" 2>&1; } 2>"$log.time"; then
        grep -E '^stat::number_of_executed_units|^Done|^stat::peak_rss_mb' "$log" | tr '\n' ' '
        cat "$log.time"
    else
        echo "fuzz_$t FOUND SOMETHING (artefacts in $art):"
        tail -40 "$log"
        status=1
    fi
done
exit $status
