#!/usr/bin/env bash
# Issue 15 §5: the README's two commands on a really fresh machine. Builds a minimal Debian 12
# chroot (debootstrap --variant=minbase bookworm, with /proc, /dev, /dev/pts and /sys bound), copies a
# clean clone of this repository's HEAD into it and runs, as root inside the chroot,
#   bash scripts/quickstart.sh     (README command 1)
#   bash scripts/test.sh           (README command 2)
# Needs root and Debian's registry (debootstrap, apt-get). About 12+ minutes on 2 cores; the
# chroot is removed afterwards unless --keep is given.
# Usage: sudo bash scripts/fresh-check.sh [--keep] [--dir DIR] [--mirror URL]
# Exit 0 when both commands pass; the log of each is in DIR/../fresh-check-*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
keep=0
dir=/var/tmp/pkisim-fresh-$$
mirror=http://deb.debian.org/debian
while (($#)); do
    case $1 in
        --keep) keep=1 ;;
        --dir) dir=$2; shift ;;
        --mirror) mirror=$2; shift ;;
        *) echo "usage: $0 [--keep] [--dir DIR] [--mirror URL]" >&2; exit 2 ;;
    esac
    shift
done
[[ $(id -u) -eq 0 ]] || { echo "fresh-check: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null || {
    echo "fresh-check: debootstrap not found: apt-get install debootstrap" >&2; exit 2; }

log=$(dirname "$dir")/fresh-check-$(basename "$dir")
mounted=()
cleanup() {
    local rc=$?
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    if ((keep == 0)); then rm -rf --one-file-system "$dir"; fi
    exit $rc
}
trap cleanup EXIT

t0=$(date +%s)
step() { echo "fresh-check: [$(( $(date +%s) - t0 )) s] $*"; }
step "debootstrap --variant=minbase bookworm $dir"
mkdir -p "$dir"
debootstrap --variant=minbase bookworm "$dir" "$mirror" > "$log-debootstrap.log" 2>&1 || {
    tail -20 "$log-debootstrap.log" >&2; exit 1; }
for m in proc dev dev/pts sys; do  # dev/pts: a bind of /dev does not carry it (script(1) needs a pty)
    mount --bind "/$m" "$dir/$m"
    mounted+=("$dir/$m")
done
cp /etc/resolv.conf "$dir/etc/resolv.conf"
# A clean clone of HEAD: no build folder, no untracked files.
step "clone $(git -C "$repo" rev-parse --short HEAD) into $dir/root/pkisim"
git clone -q --no-hardlinks "$repo" "$dir/root/pkisim"
git -C "$dir/root/pkisim" checkout -q "$(git -C "$repo" rev-parse HEAD)"

status=0
for cmd in quickstart test; do
    s=$(date +%s)
    step "chroot: bash scripts/$cmd.sh"
    if chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
        bash -c "cd /root/pkisim && bash scripts/$cmd.sh" > "$log-$cmd.log" 2>&1; then
        step "scripts/$cmd.sh passed in $(( $(date +%s) - s )) s"
    else
        status=1
        step "scripts/$cmd.sh FAILED after $(( $(date +%s) - s )) s; last lines of $log-$cmd.log:"
        tail -30 "$log-$cmd.log" | cut -c1-300
    fi
done
step "done, status $status; logs: $log-*.log"
exit $status
