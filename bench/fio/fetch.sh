#!/usr/bin/env bash
# Fetches Debian's fio source package of the installed fio's version (only
# its headers are used: bench/fio/sel4sim.c is built against them) into the
# cache outside the clone, checks every file against the .dsc apt verified,
# unpacks it with Debian's patches into build/fio-src/ and runs fio's
# configure there, so that config-host.h matches a fio built on this system.
#
#   bench/fio/fetch.sh         prints the source dir on stdout
#
# A private deb-src list as qemu/fetch.sh makes one (qemu/lib.sh; the
# system's apt is left alone), in $SEL4_QEMU_CACHE/apt-fio.  Idempotent: nothing is downloaded
# when the verified .dsc is cached, nothing unpacked when build/fio-src/
# came from it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../qemu/lib.sh
. "$here/../../qemu/lib.sh"
log() { printf '[fio] %s\n' "$*" >&2; }
die() { printf '[fio] ERROR: %s\n' "$*" >&2; exit 1; }

version=$(dpkg-query -W -f='${source:Version}' fio 2>/dev/null) ||
    die "fio is not installed (scripts/install-deps.sh installs it)"
upstream=${version#*:}
upstream=${upstream%-*}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
fio_cache=$CACHE/fio
apt_dir=$CACHE/apt-fio
dsc=$fio_cache/fio_${version#*:}.dsc
dest=$BUILD_ROOT/fio-src
mkdir -p "$fio_cache" "$BUILD_ROOT"
exec 8>"$CACHE/.fetch-fio.lock"
flock 8

# Every file the .dsc lists, present with its size and sha256.
dsc_ok() {
    [ -f "$dsc" ] || return 1
    awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 }
         on && NF == 3 { print $1, $2, $3 }' "$dsc" |
    while read -r sum size file; do
        [ -f "$fio_cache/$file" ] &&
        [ "$(size_of "$fio_cache/$file")" = "$size" ] &&
        [ "$(sha256_of "$fio_cache/$file")" = "$sum" ] || exit 1
    done
}

if ! dsc_ok; then
    pick_mirror
    private_apt_opts "$apt_dir"
    printf '%s\n' "# written by bench/fio/fetch.sh: not used by the system's apt" \
        "deb-src [signed-by=$KEYRING] $MIRROR $suite main" \
        >"$apt_dir/sources/sel4-fio-src.list"
    log "private deb-src list: $MIRROR ($suite), keyring $KEYRING"
    private_apt_update "$apt_dir"
    dl=$(mktemp -d "$fio_cache/.download.XXXXXX")
    if id _apt >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown _apt:root "$dl"; fi
    log "apt-get source --download-only fio=$version ($suite)"
    (cd "$dl" && apt-get -q "${APT_OPTS[@]}" source --download-only \
        "fio=$version" >&2) || { rm -rf "$dl"; die "apt-get source fio=$version failed"; }
    mv -f "$dl"/* "$fio_cache/"
    rm -rf "$dl"
    dsc_ok || die "fio $version: a file does not match $(basename "$dsc")"
    log "verified every file of $(basename "$dsc") (sha256 and size)"
fi

stamp=$dest/.sel4-unpacked
want=$(sha256_of "$dsc")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    rm -rf "$dest"
    # dpkg-source checks the files against the .dsc again and applies
    # Debian's patches (the .dsc itself is in the index apt verified)
    dpkg-source -x "$dsc" "$dest" >/dev/null 2>&1 ||
        die "dpkg-source -x $(basename "$dsc") failed"
    # config-host.h as Debian's build would make it (debian/rules passes
    # no feature options; --disable-native keeps -march generic)
    (cd "$dest" && ./configure --disable-native >configure.log 2>&1) ||
        die "fio's configure failed (see $dest/configure.log)"
    printf '%s\n' "$want" >"$stamp"
    log "fio $upstream unpacked and configured in $dest"
fi
printf '%s\n' "$dest"
