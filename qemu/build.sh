#!/usr/bin/env bash
# Builds qemu-system-aarch64, qemu-img and qemu-io from the pinned QEMU source
# plus this repo's overlay and hooks, into build/qemu/.
#
#   qemu/build.sh            fetch (no-op when cached) + overlay + hooks +
#                            configure (only when its inputs changed) + ninja
#
# Environment:
#   SEL4_QEMU_CACHE      cache dir outside the clone (default /var/cache/sel4-qemu-uring)
#   SEL4_BUILD_ROOT      build dir (default <repo>/build)
#   CCACHE_DIR           ccache dir (default $SEL4_QEMU_CACHE/ccache)
#   SEL4_CCACHE_MAXSIZE  ccache max size (default 2G)
#   SEL4_QEMU_CONFIGURE_EXTRA  extra configure flags (e.g. --enable-debug)
#   SEL4_QEMU_TARGETS    ninja targets (default: qemu-system-aarch64 qemu-img qemu-io)
#   SEL4_QEMU_JOBS       ninja -j (default: ninja's own)
#   SEL4_QEMU_SRC_PREPARED=1  build/qemu-src (under SEL4_BUILD_ROOT) is a
#                        tree prepared elsewhere, e.g. the patch series
#                        applied (scripts/make-patches.py): no fetch, overlay
#                        or hooks; configure and build it as it is, with
#                        the device set's symbols that its Kconfig declares
#   SEL4_QEMU_CROSS=arm64  cross-build for arm64 hosts with Debian's
#                        aarch64-linux-gnu- toolchain and arm64 multiarch
#                        libraries (scripts/install-deps.sh --arch arm64);
#                        default build root <repo>/build/arm64
#   SEL4_QEMU_FORCE_FALLBACK=SUITE:SERIES  build that fallback instead of the
#                        pin (e.g. trixie:10.0.; see fetch.sh); use its own
#                        SEL4_BUILD_ROOT, or build/qemu is rebuilt from scratch
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t_start=$(now)
mkdir -p "$BUILD_ROOT"
# one build at a time per build dir
exec 9>"$BUILD_ROOT/.qemu-build.lock"
flock 9
PREPARED=${SEL4_QEMU_SRC_PREPARED:-}
if [ -n "$PREPARED" ]; then
    [ -f "$SRC_DIR/configure" ] || die "SEL4_QEMU_SRC_PREPARED: no $SRC_DIR/configure"
else
    "$QEMU_DIR/fetch.sh"
fi
load_selected || die "fetch.sh left no $SELECTED_ENV"
[ -n "$PREPARED" ] || [ -f "$SRC_DIR/.sel4-unpacked" ] || die "$SRC_DIR is not unpacked"

DEVICES_NAME=sel4
DEVICES_DEST=configs/devices/aarch64-softmmu/$DEVICES_NAME.mak
OVERLAY_MANIFEST=$SRC_DIR/.sel4-overlay.manifest
HOOKS_STAMP=$SRC_DIR/.sel4-hooks.applied
CONFIG_STAMP=$QEMU_BUILD/.sel4-configure.stamp
TOOLS_DIR=$BUILD_ROOT/qemu-tools

# copy $1 to $2 only when the content differs (keeps mtimes => no rebuild)
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        mkdir -p "$(dirname "$2")"
        cp -f "$1" "$2"
        log "  updated ${2#"$SRC_DIR"/}"
    fi
}

# --- edk2 stubs ---------------------------------------------------------------
# The +ds tarball has no edk2 firmware, but pc-bios/meson.build still lists
# the .fd.bz2 files when bzip2 is found: give it empty compressed stubs.
edk2_stubs() {
    local names n made=0
    names=$(awk '/^[ \t]*fds = \[/ { on = 1; next }
                 on && /\]/ { exit }
                 on { gsub(/[ \t,'"'"']/, ""); if ($0 != "") print }' \
                "$SRC_DIR/pc-bios/meson.build")
    for n in $names; do
        if [ ! -e "$SRC_DIR/pc-bios/$n.bz2" ]; then
            bzip2 -c </dev/null >"$SRC_DIR/pc-bios/$n.bz2"
            made=$((made + 1))
        fi
    done
    [ "$made" = 0 ] || log "created $made empty edk2 .fd.bz2 stubs in pc-bios/"
}

# --- hooks -----------------------------------------------------------------------
hook_files() {
    find "$QEMU_DIR/hooks" -maxdepth 1 -type f \( -name '*.patch' -o -name '*.sh' \) \
        2>/dev/null | LC_ALL=C sort
}

hooks_hash() {
    local f
    {
        echo "hooks-v1"
        for f in $(hook_files) "$QEMU_DIR"/hooks/*.bash; do
            echo "== $(basename "$f")"
            cat "$f"
        done
    } | sha256sum | cut -d' ' -f1
}

is_ours() { # true for files build.sh itself puts into the tree
    case $1 in
        .sel4-*|"$DEVICES_DEST") return 0 ;;
        pc-bios/edk2-*.fd.bz2) [ ! -s "$SRC_DIR/$1" ] || [ "$(stat -c %s "$SRC_DIR/$1")" -le 14 ] ;;
        *) [ -f "$OVERLAY_MANIFEST" ] && grep -qxF -- "$1" "$OVERLAY_MANIFEST" ;;
    esac
}

# Makes every upstream file in build/qemu-src equal to the tarball again,
# rewriting only the files that differ (new mtime => ninja rebuilds exactly
# what a removed/changed hook had touched).
restore_pristine() {
    local pristine line a b f rel n=0
    pristine=$BUILD_ROOT/.qemu-pristine
    rm -rf "$pristine"
    extract_tarball_to "$pristine"
    while IFS= read -r line; do
        case $line in
            "Files "*" differ")
                a=${line#Files }; a=${a%% and *}
                rel=${a#"$pristine"/}
                cp -f "$a" "$SRC_DIR/$rel"; n=$((n + 1)) ;;
            "Only in $pristine"*)
                a=${line#Only in }; b=${a#*: }; a=${a%%: *}
                rel=${a#"$pristine"}; rel=${rel#/}
                cp -rf "$a/$b" "$SRC_DIR/${rel:+$rel/}"; n=$((n + 1)) ;;
            "Only in $SRC_DIR"*)
                a=${line#Only in }; b=${a#*: }; a=${a%%: *}
                rel=${a#"$SRC_DIR"}; rel=${rel#/}; rel=${rel:+$rel/}$b
                # a whole directory may be reported: judge file by file
                while IFS= read -r f; do
                    if ! is_ours "$f"; then
                        rm -f "${SRC_DIR:?}/$f"; n=$((n + 1))
                    fi
                done < <(cd "$SRC_DIR" && find "$rel" \( -type f -o -type l \))
                [ ! -d "$SRC_DIR/$rel" ] ||
                    find "$SRC_DIR/$rel" -depth -type d -empty -delete ;;
            *) die "restore_pristine: cannot handle: $line" ;;
        esac
    done < <(diff -rq "$pristine" "$SRC_DIR" || true)
    rm -rf "$pristine"
    log "restored $n file(s) of build/qemu-src to the pristine tarball"
}

apply_hooks() {
    local want f
    want=$(hooks_hash)
    if [ -f "$HOOKS_STAMP" ] && [ "$(cat "$HOOKS_STAMP")" = "$want" ]; then
        return 0
    fi
    if [ -f "$HOOKS_STAMP" ]; then
        log "qemu/hooks changed: restoring the pristine source before re-applying"
        restore_pristine
    fi
    rm -f "$HOOKS_STAMP"
    for f in $(hook_files); do
        case $f in
            *.patch)
                log "hook: patch -p1 --forward $(basename "$f")"
                (cd "$SRC_DIR" && patch -p1 --forward --batch --no-backup-if-mismatch -s <"$f") ||
                    die "hook $(basename "$f") does not apply to QEMU $SEL_VERSION" ;;
            *.sh)
                log "hook: $(basename "$f")"
                (cd "$SRC_DIR" && SEL4_REPO_ROOT=$REPO_ROOT SEL4_QEMU_VERSION=$SEL_VERSION bash "$f") ||
                    die "hook $(basename "$f") failed" ;;
        esac
    done
    printf '%s\n' "$want" >"$HOOKS_STAMP"
    log "hooks applied ($(hook_files | wc -l) file(s))"
}

# --- overlay ---------------------------------------------------------------------
overlay() {
    local rel new old
    new=$(mktemp)
    overlay_files >"$new"
    # files that left the overlay
    if [ -f "$OVERLAY_MANIFEST" ]; then
        while IFS= read -r old; do
            if ! grep -qxF -- "$old" "$new"; then
                rm -f "${SRC_DIR:?}/$old"
                (cd "$SRC_DIR" && rmdir -p --ignore-fail-on-non-empty "$(dirname "$old")" 2>/dev/null) || true
                log "  removed ${old} (no longer in the overlay)"
            fi
        done <"$OVERLAY_MANIFEST"
    fi
    while IFS= read -r rel; do
        if [ -e "$SRC_DIR/$rel" ] && ! { [ -f "$OVERLAY_MANIFEST" ] &&
                grep -qxF -- "$rel" "$OVERLAY_MANIFEST"; }; then
            rm -f "$new"
            die "overlay file $rel would overwrite QEMU's own $rel; change it with a hook instead"
        fi
        install_if_changed "$REPO_ROOT/$rel" "$SRC_DIR/$rel"
    done <"$new"
    mv "$new" "$OVERLAY_MANIFEST"
    log "overlay: $(wc -l <"$OVERLAY_MANIFEST") file(s) from this repo"
}

# --- cross mode -------------------------------------------------------------------
# QEMU's configure finds the cross compiler, ar, strip... from --cross-prefix
# and pkg-config from $PKG_CONFIG; Debian's aarch64-linux-gnu-pkg-config
# looks only at the arm64 multiarch .pc files.
CROSS_PREFIX=
CROSS_FLAGS=()
# -sandbox (QEMU's seccomp filter, which contrib/systemd's start script
# passes); the arm64 build has no arm64 libseccomp-dev to link against
SECCOMP_FLAG=--enable-seccomp
case ${SEL4_QEMU_CROSS:-} in
    '') ;;
    arm64)
        CROSS_PREFIX=aarch64-linux-gnu-
        export PKG_CONFIG=aarch64-linux-gnu-pkg-config
        command -v "${CROSS_PREFIX}gcc" >/dev/null ||
            die "no ${CROSS_PREFIX}gcc: run scripts/install-deps.sh --arch arm64"
        # Debian's libfdt-dev cannot be installed for two architectures:
        # link the arm64 libfdt1 through a libfdt.so of our own
        [ -f /usr/lib/aarch64-linux-gnu/libfdt.so.1 ] ||
            die "no arm64 libfdt.so.1: run scripts/install-deps.sh --arch arm64"
        mkdir -p "$BUILD_ROOT/cross-lib"
        ln -sfn /usr/lib/aarch64-linux-gnu/libfdt.so.1 "$BUILD_ROOT/cross-lib/libfdt.so"
        # the device VM's QEMU: -accel sel4 only, so no TCG (KVM stays, as
        # on any arm64 host); and no DWARF (the cross build is run under
        # qemu-user by the tests, not debugged): the two halve its build
        CROSS_FLAGS=(--extra-ldflags="-L$BUILD_ROOT/cross-lib"
                     --disable-tcg --disable-debug-info)
        SECCOMP_FLAG=--disable-seccomp ;;
    *) die "SEL4_QEMU_CROSS=$SEL4_QEMU_CROSS: only arm64 is supported" ;;
esac

# --- ccache ----------------------------------------------------------------------
# QEMU's configure hands meson the compiler through a machine file, and meson
# only adds ccache by itself when it picks the compiler, so ccache is wired in
# explicitly here: a small wrapper that also pins CCACHE_DIR, so a plain
# `ninja -C build/qemu` uses the same cache as this script.
setup_ccache() {
    CC_ARGS=()
    if ! command -v ccache >/dev/null; then
        log "ccache not found; building without it"
        [ -z "$CROSS_PREFIX" ] ||
            CC_ARGS=(--cc="${CROSS_PREFIX}gcc" --cxx="${CROSS_PREFIX}g++")
        return
    fi
    export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
    mkdir -p "$CCACHE_DIR" "$TOOLS_DIR"
    local want=${SEL4_CCACHE_MAXSIZE:-2G} c tmp
    if [ "$(ccache --get-config max_size)" != "$want" ] &&
       [ "$(ccache --get-config max_size)" != "${want%G}.0G" ]; then
        ccache --max-size "$want" >/dev/null
    fi
    for c in cc c++; do
        local compiler=$c
        if [ -n "$CROSS_PREFIX" ]; then
            compiler=${CROSS_PREFIX}gcc
            [ "$c" = cc ] || compiler=${CROSS_PREFIX}g++
        fi
        tmp=$(mktemp "$TOOLS_DIR/.w.XXXXXX")
        cat >"$tmp" <<EOF
#!/bin/sh
# written by qemu/build.sh: ccache with the project's cache dir
export CCACHE_DIR="\${CCACHE_DIR:-$CCACHE_DIR}"
export CCACHE_BASEDIR="\${CCACHE_BASEDIR:-$BUILD_ROOT}"
export CCACHE_NOHASHDIR=1
exec ccache $compiler "\$@"
EOF
        chmod 755 "$tmp"
        if cmp -s "$tmp" "$TOOLS_DIR/$c"; then rm -f "$tmp"; else mv "$tmp" "$TOOLS_DIR/$c"; fi
    done
    CC_ARGS=(--cc="$TOOLS_DIR/cc" --cxx="$TOOLS_DIR/c++")
}


ccache_counts() { # prints "hits misses"
    command -v ccache >/dev/null || { echo "0 0"; return; }
    ccache --print-stats 2>/dev/null | awk '
        $1 == "direct_cache_hit" || $1 == "preprocessed_cache_hit" { h += $2 }
        $1 == "cache_miss" { m += $2 } END { print h + 0, m + 0 }'
}

# --- main --------------------------------------------------------------------------
t_prep=$(now)
# the device set; in a prepared tree only the symbols its Kconfig declares
# (a step of the patch series may not have our machine yet)
devices_mak() {
    local declared
    if [ -z "$PREPARED" ]; then
        cat "$QEMU_DIR/devices-sel4.mak"
        return
    fi
    declared=$(cd "$SRC_DIR" && find . -name 'Kconfig*' -type f -print0 |
               xargs -0 sed -n 's/^config \([A-Z0-9_]*\).*/\1/p' | sort -u)
    awk -v declared="$declared" '
        BEGIN { n = split(declared, d, "\n"); for (i = 1; i <= n; i++) ok[d[i]] = 1 }
        /^CONFIG_[A-Z0-9_]*=/ { s = $0; sub(/^CONFIG_/, "", s); sub(/=.*/, "", s)
                                 if (!(s in ok)) next }
        { print }' "$QEMU_DIR/devices-sel4.mak"
}
if [ -z "$PREPARED" ]; then
    overlay
    apply_hooks
fi
devices_mak >"$BUILD_ROOT/.devices-sel4.mak"
install_if_changed "$BUILD_ROOT/.devices-sel4.mak" "$SRC_DIR/$DEVICES_DEST"
edk2_stubs
setup_ccache
log "prepared source tree in $(elapsed "$t_prep")"

# shellcheck disable=SC2206
CONFIGURE_FLAGS=(
    --target-list=aarch64-softmmu
    --python=/usr/bin/python3
    --without-default-devices
    --with-devices-aarch64=$DEVICES_NAME
    --enable-linux-io-uring --enable-linux-aio --enable-virtfs
    "$SECCOMP_FLAG"
    --disable-docs --disable-user --disable-rust --disable-werror
    --disable-install-blobs --disable-download
    --disable-gtk --disable-sdl --disable-vnc --disable-opengl
    --disable-spice --disable-curl --disable-libusb --disable-usb-redir
    "${CC_ARGS[@]}"
    ${CROSS_PREFIX:+--cross-prefix=$CROSS_PREFIX}
    "${CROSS_FLAGS[@]}"
    ${SEL4_QEMU_CONFIGURE_EXTRA:-}
)

config_hash=$({
    echo "configure-v1"
    echo "source $SEL_SHA256"
    printf '%s\n' "${CONFIGURE_FLAGS[@]}"
    cat "$BUILD_ROOT/.devices-sel4.mak"
    hooks_hash
    cat "$TOOLS_DIR/cc" "$TOOLS_DIR/c++" 2>/dev/null || true
} | sha256sum | cut -d' ' -f1)

if [ -f "$CONFIG_STAMP" ] && [ -f "$QEMU_BUILD/build.ninja" ] &&
   [ "$(sed -n 1p "$CONFIG_STAMP")" = "$config_hash" ]; then
    log "configure inputs unchanged; not re-configuring"
else
    if [ -f "$CONFIG_STAMP" ] && [ "$(sed -n 2p "$CONFIG_STAMP")" != "$SEL_SHA256" ]; then
        log "QEMU source changed: wiping $QEMU_BUILD"
        rm -rf "$QEMU_BUILD"
    fi
    rm -f "$CONFIG_STAMP"
    mkdir -p "$QEMU_BUILD"
    t_conf=$(now)
    log "configure ${CONFIGURE_FLAGS[*]}"
    (cd "$QEMU_BUILD" && "$SRC_DIR/configure" "${CONFIGURE_FLAGS[@]}" >configure.log 2>&1) || {
        tail -n 25 "$QEMU_BUILD/configure.log" >&2
        # meson hides the failing command's own output (e.g. minikconf's
        # "undefined symbol FOO") in its log
        if [ -f "$QEMU_BUILD/meson-logs/meson-log.txt" ]; then
            log "last lines of build/qemu/meson-logs/meson-log.txt:"
            tail -n 15 "$QEMU_BUILD/meson-logs/meson-log.txt" >&2
        fi
        die "configure failed (full log: $QEMU_BUILD/configure.log)"
    }
    printf '%s\n%s\n' "$config_hash" "$SEL_SHA256" >"$CONFIG_STAMP"
    log "configure: $(elapsed "$t_conf") (log: build/qemu/configure.log)"
fi

# shellcheck disable=SC2206
TARGETS=(${SEL4_QEMU_TARGETS:-qemu-system-aarch64 qemu-img qemu-io})
JOBS=()
[ -z "${SEL4_QEMU_JOBS:-}" ] || JOBS=(-j "$SEL4_QEMU_JOBS")
read -r h0 m0 < <(ccache_counts)
t_build=$(now)
log "ninja ${TARGETS[*]}"
# keep the log short: ninja's progress lines only every 100 steps
if ! ninja -C "$QEMU_BUILD" "${JOBS[@]}" "${TARGETS[@]}" |
     awk '/^\[[0-9]+\/[0-9]+\]/ { split(substr($1, 2), a, "/");
                                  if (a[1] % 100 && a[1] != a[2]) next }
          { print; fflush() }' >&2; then
    die "ninja failed (see the FAILED: lines above)"
fi
read -r h1 m1 < <(ccache_counts)
log "build: $(elapsed "$t_build") (ccache: $((h1 - h0)) hits, $((m1 - m0)) misses)"
for b in qemu-system-aarch64 qemu-img qemu-io; do
    [ -x "$QEMU_BUILD/$b" ] && log "  build/qemu/$b  $(du -h "$QEMU_BUILD/$b" | cut -f1)"
done
log "build.sh done in $(elapsed "$t_start") (qemu $SEL_VERSION)"
