# Shared by qemu/fetch.sh and qemu/build.sh (sourced, not executed).
# shellcheck shell=bash disable=SC2034

QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$QEMU_DIR/.." && pwd)
# shellcheck source=pin.env
. "$QEMU_DIR/pin.env"

# Everything downloaded or cached lives OUTSIDE the clone.
CACHE=${SEL4_QEMU_CACHE:-/var/cache/sel4-qemu-uring}
SRC_CACHE=$CACHE/src          # verified tarballs, .dsc, selected.env
# SEL4_QEMU_FORCE_FALLBACK=SUITE:SERIES (e.g. trixie:10.0.) skips the pin and
# builds the newest SERIES* in SUITE, as if the pin had left the archive: a
# test build of the fallback. Its selection is kept in its own file, so the
# default selection (selected.env) that other clones sharing this cache
# read is never touched. Unset (the default): the pin, then QEMU_FALLBACK.
FORCE_FALLBACK=${SEL4_QEMU_FORCE_FALLBACK:-}
if [ -n "$FORCE_FALLBACK" ]; then
    SELECTED_ENV=$SRC_CACHE/selected-force-$(printf '%s' "$FORCE_FALLBACK" | tr -c 'A-Za-z0-9.' '_').env
else
    SELECTED_ENV=$SRC_CACHE/selected.env
fi
APT_DIR=$CACHE/apt            # private deb-src list + lists/ state
# Build products live in the repo's git-ignored build/.
BUILD_ROOT=${SEL4_BUILD_ROOT:-$REPO_ROOT/build}
SRC_DIR=$BUILD_ROOT/qemu-src
QEMU_BUILD=$BUILD_ROOT/qemu

DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log()  { printf '[qemu] %s\n' "$*" >&2; }
warn() { printf '[qemu] WARNING: %s\n' "$*" >&2; }
die()  { printf '[qemu] ERROR: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of()   { stat -c %s "$1"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# Reads $SELECTED_ENV (written by fetch.sh) into SEL_* variables.
load_selected() {
    local f=$SELECTED_ENV
    [ -f "$f" ] || return 1
    # shellcheck disable=SC1090
    . "$f"
}

# Extracts the selected tarball into directory $1 (which must not exist),
# keeping the tarball's mtimes.
extract_tarball_to() {
    local dest=$1 tmp top
    tmp=$(mktemp -d "$BUILD_ROOT/.qemu-extract.XXXXXX")
    tar --no-same-owner -xf "$SRC_CACHE/$SEL_TARBALL" -C "$tmp"
    top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d)
    [ "$(printf '%s\n' "$top" | wc -l)" = 1 ] && [ -n "$top" ] ||
        die "unexpected layout in $SEL_TARBALL (expected one top-level directory)"
    mv "$top" "$dest"
    rmdir "$tmp"
}
