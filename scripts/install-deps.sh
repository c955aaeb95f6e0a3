#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, idempotently.
# meson >= 1.5 (QEMU 10.2) comes from bookworm-backports, added as our own
# list file; the system's other apt sources are left alone.
#
#   scripts/install-deps.sh [--arch arm64]
#
# --arch arm64 also installs what the arm64 cross build and its tests need:
# Debian's cross toolchain, the arm64 multiarch libraries (dpkg's arm64
# architecture is added for them), and qemu-user-static to run the arm64
# binaries (called explicitly, no binfmt_misc needed).
set -euo pipefail

arch=
case "${1:-}" in
'') ;;
--arch)
    [ "${2:-}" = arm64 ] || { echo "install-deps: --arch: only arm64" >&2; exit 2; }
    arch=arm64 ;;
*) echo "usage: scripts/install-deps.sh [--arch arm64]" >&2; exit 2 ;;
esac

PKGS=(
    build-essential pkg-config ninja-build ccache clang libclang-rt-14-dev
    libglib2.0-dev libjson-glib-dev liburing-dev libaio-dev
    libpixman-1-dev zlib1g-dev libfdt-dev device-tree-compiler flex bison
    python3-venv libattr1-dev libcap-ng-dev bzip2 xz-utils dpkg-dev
    libseccomp-dev   # QEMU's -sandbox (the systemd units use it)
    fio iperf3 gnuplot-nox iproute2 jq systemd
    kmod cpio   # the Linux guest's initramfs (tests/linux-guest/make-image.sh)
    gnutls-bin python3-libnbd   # QEMU's iotests 233 (certtool), nbd-multiconn
)
BACKPORTS_PKGS=(meson python3-pycotap)
# the arm64 build: QEMU's libraries (as the native build's above) and ours
ARM64_PKGS=(
    crossbuild-essential-arm64 qemu-user-static
    libglib2.0-dev:arm64 libjson-glib-dev:arm64 liburing-dev:arm64
    libaio-dev:arm64 libpixman-1-dev:arm64 zlib1g-dev:arm64
    libattr1-dev:arm64 libcap-ng-dev:arm64
    # libfdt-dev is not multi-arch (its amd64 copy would be removed): the
    # arm64 library only; qemu/build.sh links it through a libfdt.so of its
    # own, with the (arch-independent) headers of the amd64 libfdt-dev
    libfdt1:arm64
)
if [ "$arch" = arm64 ]; then
    PKGS+=("${ARM64_PKGS[@]}")
fi

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
if [ "$arch" = arm64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
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
