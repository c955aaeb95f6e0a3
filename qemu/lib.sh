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
# (a cross build, SEL4_QEMU_CROSS=arm64, has its own: build/arm64)
BUILD_ROOT=${SEL4_BUILD_ROOT:-$REPO_ROOT/build${SEL4_QEMU_CROSS:+/$SEL4_QEMU_CROSS}}
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

# Prints "URI<TAB>SIGNED-BY" of the first Debian (not -security) mirror in the
# system's apt sources, deb822 first, then one-line format.
detect_mirror() {
    local f out
    out=$(for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
        {
            uri = ""; sb = ""; on = 1
            for (i = 1; i <= NF; i++) {
                l = $i
                if (l ~ /^[ \t]*#/) continue
                if (l ~ /^URIs:/)      { sub(/^URIs:[ \t]*/, "", l); uri = l }
                if (l ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", l); sb = l }
                if (l ~ /^Enabled:[ \t]*[Nn][Oo]/) on = 0
            }
            if (!on || uri == "") next
            n = split(uri, u, /[ \t]+/)
            for (j = 1; j <= n; j++)
                if (u[j] ~ /^https?:\/\/.*\/debian\/?$/) { print u[j] "\t" sb; exit }
        }' "$f"
    done)
    if [ -n "$out" ]; then printf '%s\n' "${out%%$'\n'*}"; return 0; fi
    out=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" || $1 == "deb-src" {
                sb = ""
                for (i = 2; i <= NF; i++) {
                    if ($i ~ /^\[/) {
                        if (match($0, /signed-by=[^] ]+/))
                            sb = substr($0, RSTART + 10, RLENGTH - 10)
                        while ($i !~ /\]$/ && i < NF) i++
                        continue
                    }
                    if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i "\t" sb; exit }
                    break
                }
            }')
    [ -n "$out" ] && printf '%s\n' "${out%%$'\n'*}"
}

# Sets MIRROR (SEL4_QEMU_MIRROR, else the system's Debian mirror, else
# deb.debian.org) and KEYRING (its archive keyring file).
pick_mirror() {
    local line
    line=$(detect_mirror || true)
    MIRROR=${SEL4_QEMU_MIRROR:-${line%%$'\t'*}}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    MIRROR=${MIRROR%/}
    KEYRING=${line#*$'\t'}
    [ "$line" != "$KEYRING" ] || KEYRING=
    # Only a keyring *file* is usable here (deb822 may also inline a key).
    case $KEYRING in /*) [ -f "$KEYRING" ] || KEYRING= ;; *) KEYRING= ;; esac
    KEYRING=${KEYRING:-$DEFAULT_KEYRING}
    [ -f "$KEYRING" ] || die "archive keyring $KEYRING missing (apt-get install debian-archive-keyring)"
}

# Creates the private apt state dir $1 (sources/, lists/, cache/) and sets
# APT_OPTS to apt options that use only it: neither the system's sources
# nor its lists or caches are read or written.
private_apt_opts() {
    mkdir -p "$1/sources" "$1/lists/partial" "$1/cache/archives/partial"
    APT_OPTS=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$1/sources"
        -o "Dir::State::Lists=$1/lists"
        # keep apt's binary caches private too (do not touch /var/cache/apt)
        -o "Dir::Cache=$1/cache"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
    )
    if id _apt >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        chown -R _apt:root "$1/lists/partial" "$1/cache/archives/partial"
    fi
}

# apt-get update with APT_OPTS (private_apt_opts) for the lists in $1; any
# error or warning (a bad signature, say) is fatal.
private_apt_update() {
    local upd_log
    log "apt-get update (private lists in $1/lists)"
    upd_log=$(mktemp)
    if ! apt-get -q "${APT_OPTS[@]}" update >"$upd_log" 2>&1 ||
       grep -qE '^(E|W): ' "$upd_log"; then
        cat "$upd_log" >&2
        rm -f "$upd_log"
        die "apt-get update of the private deb-src list failed (see above)"
    fi
    rm -f "$upd_log"
}

# The files qemu/overlay.list names (a directory: every file under it but
# dot files and editor backups; missing paths are skipped), relative to the
# repo root, sorted.  build.sh copies them into the source tree, and the
# patch series (scripts/make-patches.py) adds each of them in one patch.
overlay_files() {
    local entry src
    while IFS= read -r entry; do
        entry=${entry%%#*}; entry=$(printf '%s' "$entry" | tr -d '[:space:]')
        [ -n "$entry" ] || continue
        src=$REPO_ROOT/${entry%/}
        if [ -d "$src" ]; then
            (cd "$REPO_ROOT" && find "${entry%/}" -type f ! -name '.*' ! -name '*~')
        elif [ -f "$src" ]; then
            printf '%s\n' "${entry%/}"
        fi
    done <"$QEMU_DIR/overlay.list" | LC_ALL=C sort -u
}
