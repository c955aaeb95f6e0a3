#!/usr/bin/env bash
# Builds the Linux guest of the sel4-vmm-proxy test from Debian packages
# only: Debian's arm64 kernel (linux-image-arm64 of $SEL4_GUEST_SUITE) and
# an initramfs of busybox-static:arm64, the kernel's virtio, 9p and ext4
# modules (with what they depend on) and tests/linux-guest/init.sh as /init.
#
#   tests/linux-guest/make-image.sh [OUTDIR]     (default build/linux-guest)
#
# OUTDIR gets Image (the kernel), initramfs.cpio.gz and image.env
# (KERNEL_VERSION, BUSYBOX_VERSION).  Packages are downloaded and checked by
# apt against the signed index of the Debian mirror the system uses, with
# a private arm64 sources list and apt state under
# $SEL4_QEMU_CACHE/linux-guest/ (the system's apt configuration is never
# touched) and kept there, so a second run downloads nothing.  A run whose
# inputs (this script, init.sh, the kernel and busybox versions) are
# unchanged does nothing.  Needs dpkg-deb, depmod and modprobe (kmod), cpio.
#
# Environment: SEL4_QEMU_CACHE (default /var/cache/sel4-qemu-uring),
# SEL4_QEMU_MIRROR, SEL4_GUEST_SUITE (default bookworm),
# SEL4_GUEST_REFRESH=1 (ask apt for newer packages even when an image exists).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../qemu/lib.sh
. "$here/../../qemu/lib.sh"
log()  { printf '[linux-guest] %s\n' "$*" >&2; }
die()  { printf '[linux-guest] ERROR: %s\n' "$*" >&2; exit 1; }

OUT=${1:-$BUILD_ROOT/linux-guest}
SUITE=${SEL4_GUEST_SUITE:-bookworm}
GCACHE=$CACHE/linux-guest
DEBS=$GCACHE/debs
# What the guest's /init loads, in this order (modprobe adds dependencies).
MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio-rng
         9pnet_virtio 9p ext4"

for t in dpkg-deb depmod modprobe cpio gzip; do
    command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"
done
mkdir -p "$OUT" "$DEBS"
exec 7>"$GCACHE/.lock"
flock 7

inputs_hash() {
    cat "${BASH_SOURCE[0]}" "$here/init.sh" | sha256sum | cut -d' ' -f1
}

if [ "${SEL4_GUEST_REFRESH:-0}" != 1 ] && [ -f "$OUT/image.env" ] &&
   [ -f "$OUT/Image" ] && [ -f "$OUT/initramfs.cpio.gz" ] &&
   grep -qxF "INPUTS=$(inputs_hash)" "$OUT/image.env"; then
    log "$OUT is up to date ($(grep KERNEL_VERSION "$OUT/image.env"))"
    exit 0
fi

# --- packages: a private arm64 list of the system's mirror --------------------
t0=$(now)
pick_mirror
APT_STATE=$GCACHE/apt
private_apt_opts "$APT_STATE"
printf '%s\n' "# written by tests/linux-guest/make-image.sh; not used by the system's apt" \
    "deb [arch=arm64 signed-by=$KEYRING] $MIRROR $SUITE main" \
    >"$APT_STATE/sources/linux-guest.list"
APT_OPTS+=(-o "APT::Architecture=arm64" -o "APT::Architectures::=arm64"
           -o "Dir::State::status=/dev/null")
upd=$(mktemp)
if ! apt-get -q "${APT_OPTS[@]}" update >"$upd" 2>&1 || grep -qE '^(E|W): ' "$upd"; then
    cat "$upd" >&2
    rm -f "$upd"
    die "apt-get update of the private arm64 list ($MIRROR $SUITE) failed"
fi
rm -f "$upd"
kpkg=$(apt-cache "${APT_OPTS[@]}" depends linux-image-arm64 |
       awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-arm64$/ { print $2; exit }')
[ -n "$kpkg" ] || die "linux-image-arm64 of $SUITE names no kernel package"
kver=${kpkg#linux-image-}

# apt checks each .deb against the signed index as it downloads it
fetch_deb() { # package -> prints the cached .deb
    local pkg=$1 ver f
    ver=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no $pkg:arm64 in $SUITE"
    f=$DEBS/${pkg}_${ver//:/%3a}_arm64.deb
    if [ ! -f "$f" ]; then
        log "apt-get download $pkg=$ver (arm64)"
        local dl
        dl=$(mktemp -d "$DEBS/.dl.XXXXXX")
        if id _apt >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown _apt:root "$dl"; fi
        (cd "$dl" && apt-get -q "${APT_OPTS[@]}" download "$pkg=$ver" >&2) ||
            { rm -rf "$dl"; die "apt-get download $pkg=$ver failed"; }
        mv "$dl"/*.deb "$f"
        rm -rf "$dl"
    fi
    printf '%s\n' "$f"
}
kdeb=$(fetch_deb "$kpkg")
bdeb=$(fetch_deb busybox-static)
bver=$(dpkg-deb -f "$bdeb" Version)
log "packages: $(basename "$kdeb"), $(basename "$bdeb") ($(elapsed "$t0"))"

# --- kernel and modules ------------------------------------------------------------
work=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb --fsys-tarfile "$kdeb" |
    tar -x -C "$work" "./boot/vmlinuz-$kver" "./lib/modules/$kver"
# Debian's arm64 vmlinuz is the plain (uncompressed) Image QEMU boots.
cp "$work/boot/vmlinuz-$kver" "$work/Image"
depmod -b "$work" "$kver"

root=$work/root
mkdir -p "$root/bin" "$root/modules"
dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$work" ./bin/busybox
mv "$work/bin/busybox" "$root/bin/busybox"
n=0
# shellcheck disable=SC2086
for m in $MODULES; do
    modprobe -d "$work" -S "$kver" --show-depends "$m" ||
        die "module $m is not in $kpkg"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$work/order"
: >"$root/modules/order"
while read -r ko; do
    n=$((n + 1))
    name=$(printf '%02d-%s' "$n" "$(basename "$ko")")
    cp "$ko" "$root/modules/$name"
    echo "$name" >>"$root/modules/order"
done <"$work/order"
install -m 755 "$here/init.sh" "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
    gzip -6 >"$work/initramfs.cpio.gz"

mv "$work/Image" "$OUT/Image"
mv "$work/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
printf 'KERNEL_VERSION=%s\nBUSYBOX_VERSION=%s\nINPUTS=%s\n' "$kver" "$bver" \
    "$(inputs_hash)" >"$OUT/image.env"
log "$OUT: kernel $kver, busybox $bver, $n modules," \
    "initramfs $(du -h "$OUT/initramfs.cpio.gz" | cut -f1) ($(elapsed "$t0"))"
