#!/usr/bin/env bash
# Command 2 of the README: install what is missing, build the release and the ASan+UBSan
# builds with warnings as errors, run every test in both, then every fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$(date +%s)
for preset in ci-release ci-asan; do
    echo "== build $preset =="
    bash scripts/build.sh "$preset"
done
status=0
for preset in ci-release ci-asan; do
    echo "== ctest $preset =="
    ctest --preset "$preset" -j "$(nproc)" --timeout 900 || status=1
done
# Issue 13 §1: every libFuzzer target for a short bounded time (scripts/fuzz.sh; 8 targets).
echo "== fuzz (${PKISIM_FUZZ_SECONDS:-20} s per target) =="
bash scripts/fuzz.sh --seconds "${PKISIM_FUZZ_SECONDS:-20}" || status=1
echo "test.sh: finished in $(( $(date +%s) - start )) s"
exit $status
