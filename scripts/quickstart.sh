#!/usr/bin/env bash
# Command 1 of the README: install what is missing, build (release), run the main job: simulate
# the seed-002 fleet (3,000 IOS clients behind an RA, a 5-year CA with a 30-day rollover overlap)
# and print the verdict. The report lands in out/seed002/ (report.html, summary.json, daily.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
echo
set +e
./build/release/cli/pkisim simulate configs/seed002.toml --out out/seed002
code=$?
set -e
# Exit code 1 is the verdict "storm" (that is the point of seed 002), not a failure of the run.
if [[ $code -ne 0 && $code -ne 1 ]]; then exit "$code"; fi
echo
echo "The instant closed-form answer for the same configuration:"
echo "  ./build/release/cli/pkisim check configs/seed002/ca.ios configs/scenarios/seed002-ra.ios configs/seed002/client.ios"
