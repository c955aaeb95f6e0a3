#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, idempotently.
# meson >= 1.5 (QEMU 10.2) comes from bookworm-backports, added as our own
# list file; the system's other apt sources are left alone.
set -euo pipefail

PKGS=(
    build-essential pkg-config ninja-build ccache clang libclang-rt-14-dev
    libglib2.0-dev libjson-glib-dev liburing-dev libaio-dev
    libpixman-1-dev zlib1g-dev libfdt-dev device-tree-compiler flex bison
    python3-venv libattr1-dev libcap-ng-dev bzip2 xz-utils dpkg-dev
    fio iperf3 gnuplot-nox iproute2 jq systemd
    kmod cpio   # the Linux guest's initramfs (tests/linux-guest/make-image.sh)
)
BACKPORTS_PKGS=(meson python3-pycotap)

missing=()
for p in "${PKGS[@]}" "${BACKPORTS_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
meson_ok=0
if command -v meson >/dev/null &&
   dpkg --compare-versions "$(meson --version)" ge 1.5; then
    meson_ok=1
fi
if [ ${#missing[@]} -eq 0 ] && [ $meson_ok -eq 1 ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
bp=/etc/apt/sources.list.d/sel4-qemu-uring-backports.list
if [ ! -f "$bp" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             /etc/apt/sources.list.d/*.sources 2>/dev/null |
             grep -oE 'https?://[^ ]+/debian/?$|https?://[^ ]+/debian ' |
             head -n1 | tr -d ' ' || true)
    echo "deb ${mirror:-http://deb.debian.org/debian} bookworm-backports main" > "$bp"
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    "${BACKPORTS_PKGS[@]}" >/dev/null
