#!/usr/bin/env bash
# Installs every Debian package pkisim needs to build and test. Idempotent: a package that is
# already installed is skipped, and apt-get is not touched at all when nothing is missing.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config git
    clang-14 libclang-rt-14-dev llvm-14
    libboost1.81-dev libssl-dev openssl libsqlite3-dev sqlite3
    libhowardhinnant-date-dev libfmt-dev libcli11-dev libexpected-dev libtomlplusplus-dev
    nlohmann-json3-dev
    libgtest-dev libgmock-dev googletest libbenchmark-dev
    python3 python3-simpy
    scep certmonger strongswan-pki libstrongswan-extra-plugins curl
    wrk nginx-light
    chromium libjs-dygraphs
    iproute2 util-linux procps
    debootstrap
)
# What each is for (README "Development"): scep/certmonger/strongswan-pki/curl/openssl are the real clients of
# the interop tests; chromium loads report.html in the page tests; libjs-dygraphs is the charting
# library inlined into report.html at build time; debootstrap is for scripts/fresh-check.sh.

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# apt and dpkg print thousands of lines on a fresh machine: they go to a log, and only its tail
# is shown when something fails (the Quick start's output stays readable).
log=${TMPDIR:-/tmp}/pkisim-install-deps.log
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
echo "install-deps: apt-get output in $log"
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    echo "install-deps: apt-get failed; the end of $log:" >&2
    tail -25 "$log" >&2
    exit 1
fi
echo "install-deps: done"
