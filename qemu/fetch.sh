#!/usr/bin/env bash
# Fetches the pinned QEMU source (Debian's source package, see qemu/pin.env)
# into the cache dir outside the clone and unpacks the upstream orig tarball
# into build/qemu-src/.
#
#   qemu/fetch.sh
#
# Environment:
#   SEL4_QEMU_CACHE     cache dir (default /var/cache/sel4-qemu-uring)
#   SEL4_BUILD_ROOT     build dir (default <repo>/build)
#   SEL4_QEMU_MIRROR    Debian mirror (default: from the system's apt sources)
#   SEL4_QEMU_REFRESH=1 ignore a cached fallback selection and ask apt again
#   QEMU_ALLOW_FALLBACK=0  fail instead of falling back when the pin is gone
#   SEL4_QEMU_FORCE_FALLBACK=SUITE:SERIES  ignore the pin and take the newest
#                       SERIES* in SUITE (e.g. trixie:10.0.), to test-build a
#                       fallback before it is needed; checked by apt against the
#                       signed index like any fallback, recorded in its own
#                       $SRC_CACHE/selected-force-*.env (selected.env untouched)
#
# Idempotent: when the verified tarball is already cached, apt is not run at
# all; when build/qemu-src/ was unpacked from that tarball, nothing is done.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t_start=$(now)
mkdir -p "$SRC_CACHE" "$BUILD_ROOT"
# one fetch at a time per cache (parallel CI jobs share it)
exec 8>"$CACHE/.fetch.lock"
flock 8

write_selected() { # version tarball sha256 pinned
    local tmp
    tmp=$(mktemp "$SRC_CACHE/.selected.XXXXXX")
    cat >"$tmp" <<EOF
# written by qemu/fetch.sh; describes the tarball build/qemu-src/ is made from
SEL_VERSION='$1'
SEL_TARBALL='$2'
SEL_SHA256='$3'
SEL_PINNED=$4
SEL_FOR_PIN='$QEMU_DEB_VERSION'
EOF
    chmod 644 "$tmp"
    mv "$tmp" "$SELECTED_ENV"
    SEL_VERSION=$1 SEL_TARBALL=$2 SEL_SHA256=$3 SEL_PINNED=$4
    SEL_FOR_PIN=$QEMU_DEB_VERSION
}

fallback_notice() {
    if [ -n "$FORCE_FALLBACK" ]; then
        log "FALLBACK (forced by SEL4_QEMU_FORCE_FALLBACK=$FORCE_FALLBACK): using" \
            "qemu $SEL_VERSION ($SEL_TARBALL, sha256 $SEL_SHA256, checked by apt" \
            "against the signed index only) instead of the pinned $QEMU_DEB_VERSION"
        return
    fi
    log "FALLBACK: pinned qemu $QEMU_DEB_VERSION is not in the archive; using" \
        "qemu $SEL_VERSION ($SEL_TARBALL, sha256 $SEL_SHA256, checked by apt" \
        "against the signed index only, no pinned hash). Update qemu/pin.env."
}

# --- 1. a verified tarball already in the cache? ---------------------------
use_cached() {
    local f=$SRC_CACHE/$QEMU_ORIG_TARBALL got
    if [ -z "$FORCE_FALLBACK" ] && [ -f "$f" ]; then
        got=$(sha256_of "$f")
        if [ "$got" = "$QEMU_ORIG_SHA256" ] &&
           [ "$(size_of "$f")" = "$QEMU_ORIG_SIZE" ]; then
            log "cached $QEMU_ORIG_TARBALL verified (sha256 $got); no download"
            if ! load_selected || [ "${SEL_SHA256:-}" != "$got" ]; then
                write_selected "$QEMU_DEB_VERSION" "$QEMU_ORIG_TARBALL" "$got" 1
            fi
            return 0
        fi
        warn "cached $f does not match the pin (sha256 $got, expected" \
             "$QEMU_ORIG_SHA256); deleting it and downloading again"
        rm -f "$f"
    fi
    # A fallback chosen earlier for this same pin (see pin.env).
    if [ "${SEL4_QEMU_REFRESH:-0}" != 1 ] && [ "$QEMU_ALLOW_FALLBACK" = 1 ] &&
       load_selected && [ "${SEL_PINNED:-1}" = 0 ] &&
       [ "${SEL_FOR_PIN:-}" = "$QEMU_DEB_VERSION" ] &&
       [ -f "$SRC_CACHE/$SEL_TARBALL" ] &&
       [ "$(sha256_of "$SRC_CACHE/$SEL_TARBALL")" = "$SEL_SHA256" ]; then
        fallback_notice
        return 0
    fi
    return 1
}

# --- 2. private deb-src list ------------------------------------------------
setup_private_apt() {
    local mirror keyring
    pick_mirror
    mirror=$MIRROR keyring=$KEYRING
    private_apt_opts "$APT_DIR"
    local list=$APT_DIR/sources/sel4-qemu-src.list tmp s
    tmp=$(mktemp "$APT_DIR/.list.XXXXXX")
    {
        echo "# written by qemu/fetch.sh: private deb-src list, not used by the system's apt"
        for s in $QEMU_SUITES; do
            echo "deb-src [signed-by=$keyring] $mirror $s main"
        done
    } >"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$list"
    log "private deb-src list $list: $mirror ($QEMU_SUITES), keyring $keyring"
}

# --- 3. choose a version ----------------------------------------------------
# Lines "VERSION SUITE" of every qemu source version in the private lists.
available_versions() {
    apt-cache "${APT_OPTS[@]}" madison qemu |
        awk -F'|' '$3 ~ /Sources/ {
            gsub(/ /, "", $2); split($3, a, " "); split(a[2], b, "/")
            print $2, b[1] }'
}

newest() { # prints the newest of the versions given on stdin
    local best='' v
    while read -r v; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done
    [ -n "$best" ] && printf '%s\n' "$best"
}

choose_version() {
    local avail entry suite series v
    avail=$(available_versions)
    [ -n "$avail" ] || die "no qemu source package listed in the private index ($APT_DIR/lists)"
    log "qemu sources in the archive: $(printf '%s\n' "$avail" | awk '{ printf "%s%s(%s)", sep, $1, $2; sep=" " }')"
    local entries=$QEMU_FALLBACK
    if [ -n "$FORCE_FALLBACK" ]; then
        log "SEL4_QEMU_FORCE_FALLBACK=$FORCE_FALLBACK: not using the pin"
        entries=$FORCE_FALLBACK
    elif printf '%s\n' "$avail" | awk -v v="$QEMU_DEB_VERSION" '$1 == v { f = 1 } END { exit !f }'; then
        CHOSEN=$QEMU_DEB_VERSION PINNED=1
        return
    fi
    [ "$QEMU_ALLOW_FALLBACK" = 1 ] ||
        die "pinned qemu $QEMU_DEB_VERSION is not in the archive and QEMU_ALLOW_FALLBACK=0"
    for entry in $entries; do
        suite=${entry%%:*} series=${entry#*:}
        v=$(printf '%s\n' "$avail" |
            awk -v s="$suite" -v p="$series" '$2 == s {
                u = $1; sub(/^[0-9]+:/, "", u)
                if (index(u, p) == 1) print $1 }' | newest || true)
        if [ -n "$v" ]; then
            CHOSEN=$v PINNED=0
            if [ -n "$FORCE_FALLBACK" ]; then
                log "FALLBACK (forced): choosing qemu $v from $suite (newest $series*)"
            else
                log "FALLBACK: pinned qemu $QEMU_DEB_VERSION is not in the archive;" \
                    "choosing qemu $v from $suite (newest $series*)"
            fi
            return
        fi
    done
    die "neither pinned qemu $QEMU_DEB_VERSION nor a fallback ($entries) is in the archive"
}

# --- 4. download + verify ---------------------------------------------------
download() {
    local dl dsc orig want got f
    dl=$(mktemp -d "$SRC_CACHE/.download.XXXXXX")
    # apt downloads as the unprivileged _apt user when it can write there
    if id _apt >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown _apt:root "$dl"; fi
    log "apt-get source --download-only qemu=$CHOSEN"
    if ! (cd "$dl" && apt-get -q "${APT_OPTS[@]}" source --download-only "qemu=$CHOSEN" >&2); then
        rm -rf "$dl"
        die "apt-get source qemu=$CHOSEN failed"
    fi
    dsc=$dl/qemu_${CHOSEN#*:}.dsc
    [ -f "$dsc" ] || { rm -rf "$dl"; die "apt did not produce $(basename "$dsc")"; }
    # The orig tarball and its sha256 as listed in the (apt-verified) .dsc.
    read -r want _ orig < <(awk '/^Checksums-Sha256:/ { on = 1; next }
        /^[^ ]/ { on = 0 } on && $3 ~ /\.orig\.tar\./ { print $1, $2, $3; exit }' "$dsc")
    [ -n "${orig:-}" ] && [ -f "$dl/$orig" ] || { rm -rf "$dl"; die "no orig tarball in $(basename "$dsc")"; }
    got=$(sha256_of "$dl/$orig")
    [ "$got" = "$want" ] || { rm -rf "$dl"; die "$orig: sha256 $got does not match the .dsc ($want)"; }
    if [ "$PINNED" = 1 ]; then
        if [ "$orig" != "$QEMU_ORIG_TARBALL" ] || [ "$got" != "$QEMU_ORIG_SHA256" ] ||
           [ "$(size_of "$dl/$orig")" != "$QEMU_ORIG_SIZE" ]; then
            local bad
            bad=$SRC_CACHE/rejected-$(date +%Y%m%dT%H%M%S)
            mv "$dl" "$bad"
            printf '\n' >&2
            log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            log "!! CHECKSUM MISMATCH for the pinned QEMU source (qemu/pin.env)"
            log "!!   expected $QEMU_ORIG_TARBALL  $QEMU_ORIG_SIZE bytes  sha256 $QEMU_ORIG_SHA256"
            log "!!   got      $orig  $(size_of "$bad/$orig") bytes  sha256 $got"
            log "!! the download is kept in $bad for inspection"
            log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            die "refusing to build from an unverified QEMU source"
        fi
        log "verified $orig: $QEMU_ORIG_SIZE bytes, sha256 $got (matches qemu/pin.env)"
    else
        log "fallback $orig: $(size_of "$dl/$orig") bytes, sha256 $got (apt index check; recorded)"
    fi
    for f in "$dl"/*; do
        [ -f "$f" ] && mv -f "$f" "$SRC_CACHE/"
    done
    rm -rf "$dl"
    chown -R "$(id -u):$(id -g)" "$SRC_CACHE" 2>/dev/null || true
    write_selected "$CHOSEN" "$orig" "$got" "$PINNED"
}

if ! use_cached; then
    t_dl=$(now)
    setup_private_apt
    private_apt_update "$APT_DIR"
    choose_version
    download
    [ "$SEL_PINNED" = 1 ] || fallback_notice
    log "download + verification: $(elapsed "$t_dl")"
fi

# --- 5. unpack into build/qemu-src -------------------------------------------
# We build the plain upstream orig tarball (the +ds one: upstream minus
# firmware blobs); Debian's debian/patches are packaging fixes we do not need.
stamp=$SRC_DIR/.sel4-unpacked
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SEL_SHA256" ]; then
    log "build/qemu-src is unpacked from $SEL_TARBALL; nothing to do"
else
    t_un=$(now)
    [ ! -e "$SRC_DIR" ] || log "replacing $SRC_DIR (different or incomplete source)"
    rm -rf "$SRC_DIR"
    extract_tarball_to "$SRC_DIR"
    printf '%s\n' "$SEL_SHA256" >"$stamp"
    log "unpacked $SEL_TARBALL into $SRC_DIR in $(elapsed "$t_un")"
fi
log "fetch.sh done in $(elapsed "$t_start") (qemu $SEL_VERSION)"
