#!/usr/bin/env bash
# Screenshots of each kind of report for a person to look at (issue 15 §3): a storm (seed 002,
# 3,000 clients), a safe run (seed002-fix), an outage (auto-enroll 100), a sweep, and 1,000,000
# clients. Writes OUT/<kind>/report.html and OUT/<kind>.png (default OUT=out/screenshots).
# Usage: bash scripts/report-screenshots.sh [OUT]     (needs a release build and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/screenshots}
P=./build/release/cli/pkisim
[[ -x $P ]] || { echo "report-screenshots: build first (bash scripts/build.sh release)" >&2; exit 2; }
command -v chromium >/dev/null || {
    echo "report-screenshots: chromium not found: apt-get install chromium" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
run() {  # kind, then simulate arguments; exit 1 (storm/outage) is a verdict, not an error
    local kind=$1; shift
    "$P" simulate "$@" --quiet --out "$out/$kind" > "$out/$kind.txt" || [[ $? -eq 1 ]]
}
run storm configs/seed002.toml
run safe configs/seed002-fix.toml
run outage configs/seed002.toml --set auto-enroll=100 --clients 1000
run sweep configs/seed002.toml --clients 300 --sweep overlap=30,100,180,181,365
run million configs/seed002.toml --clients 1000000
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for kind in storm safe outage sweep million; do
    # --virtual-time-budget lets the page's scripts finish drawing before the screenshot.
    chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
        --window-size=1100,6200 --virtual-time-budget=5000 \
        --screenshot="$out/$kind.png" "file://$out/$kind/report.html" \
        > /dev/null 2>&1
    echo "$out/$kind.png  ($(grep -m1 "^Verdict" "$out/$kind.txt" | cut -c1-90))"
done
