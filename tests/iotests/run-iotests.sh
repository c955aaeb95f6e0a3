#!/usr/bin/env bash
# Runs QEMU's iotests (build/qemu-src/tests/qemu-iotests) with our build's
# qemu-system-aarch64, qemu-img, qemu-io, qemu-nbd and qemu-storage-daemon.
#
#   tests/iotests/run-iotests.sh ours HELPER
#       our own iotests (tests/qemu-iotests/tests/*, copied into QEMU's tree
#       for the run, never committed there) with -qcow2; HELPER is
#       tools/sel4-vmm-sim's sel4-vmm-blk-writer.  Exit status: check's.
#   tests/iotests/run-iotests.sh only FORMAT TEST...
#       those tests for FORMAT, summarised the same way.
#   tests/iotests/run-iotests.sh quick [FORMAT...]
#       upstream's `quick` group for each FORMAT (default: raw qcow2);
#       logs in build/iotests/, then per format the counts passed, not
#       run and failed, the failures, and the tests not run with why.
#       A test that fails is run once more, alone; the summary names
#       those that passed only then.
#
# Environment: SEL4_BUILD_ROOT (default <repo>/build).  qemu-nbd and
# qemu-storage-daemon must be built: qemu/build.sh with SEL4_QEMU_TARGETS
# naming them (./run iotests does that).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${SEL4_BUILD_ROOT:-$top/build}
iotests_build=$build/qemu/tests/qemu-iotests
iotests_src=$build/qemu-src/tests/qemu-iotests

die() { echo "run-iotests: $*" >&2; exit 2; }

for f in "$iotests_build/check" "$build/qemu/pyvenv/bin/python3"; do
    [ -x "$f" ] || die "no $f (build QEMU first: qemu/build.sh)"
done
for b in qemu-system-aarch64 qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon; do
    [ -x "$build/qemu/$b" ] ||
        die "no build/qemu/$b: SEL4_QEMU_TARGETS='qemu-system-aarch64 qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon' qemu/build.sh"
done

# check runs in its build dir; scratch space where O_DIRECT works (not
# tmpfs); sockets in a short path of their own, removed at exit
sock_dir=$(mktemp -d /tmp/sel4-iotests-sock.XXXXXX)
trap 'rm -rf "$sock_dir"' EXIT
# Tests that start QEMU without -machine (235: QEMUMachine, not
# iotests.VM) mean the default machine; qemu-system-aarch64 has none, so
# they run through this wrapper, which names `virt` when they name none,
# and for x86's q35 (nbd-in-qcow2-chain needs only some machine).
# Without -nodefaults virt adds a virtio-net-pci, and a bare -drive is a
# virtio-blk-pci: their option ROM is not in Debian's source (+ds, no
# firmware blobs), and nothing here boots firmware: no ROM.
#
# Root-bus PCI hotplug (139, 238, 240: device_add of a PCI device with no
# bus, device_del, system_reset to finish the unplug): virt's pcie.0 takes
# hotplug through ACPI, the GED device's PCI hotplug
# (acpi-pci-hotplug-with-bridge-support), as x86's pc takes it through
# PIIX4's.  virt creates the GED, and so the ACPI tables, only when
# firmware is loaded; the tests run under -accel qtest, where no CPU runs
# a single instruction, so the firmware is one A64 instruction, a branch
# to itself.  Not for a test that brings its own (-bios, a pflash drive).
#
# Its name ends in qemu-system-aarch64: check picks QEMU_OPTIONS by it.
wrapper=$build/iotests/bin/qemu-system-aarch64
firmware=$build/iotests/bin/virt-firmware-b-self.bin
mkdir -p "$build/iotests/bin"
printf '\x00\x00\x00\x14' >"$firmware"    # b . (0x14000000, little-endian)
cat >"$wrapper" <<WRAPPER
#!/bin/bash
# written by tests/iotests/run-iotests.sh
. '$build/iotests/bin/settle.sh'
# x86's q35 named by a test that only needs some machine (nbd-in-qcow2-chain)
# is virt here; no -machine at all is virt too
args=() next= named= machine=virt firmware=1
for a in "\$@"; do
    if [ -n "\$next" ]; then
        [ "\$a" != q35 ] || a=virt
        machine=\${a%%,*}
    fi
    next=
    case \$a in
    -M|-machine) next=1 named=1 ;;
    -M?*) named=1 machine=\${a#-M} machine=\${machine%%,*} ;;
    -bios|*if=pflash*) firmware= ;;
    esac
    args+=("\$a")
done
[ -n "\$named" ] || args=(-machine virt "\${args[@]}")
# root-bus hotplug through ACPI (above)
[ "\$machine" != virt ] || [ -z "\$firmware" ] ||
    args=(-bios '$firmware'
          -global acpi-ged.acpi-pci-hotplug-with-bridge-support=on "\${args[@]}")
settle_then_exec '$build/qemu/qemu-system-aarch64' \\
    -global virtio-blk-pci.romfile= -global virtio-net-pci.romfile= "\${args[@]}"
WRAPPER
chmod 755 "$wrapper"
# QEMU's harness ends a QEMU with SIGKILL and `wait`s for a pid that is
# not its shell's child (_qemu_wrapper execs QEMU in a subshell of a
# background job), and a qemu-nbd with SIGTERM and no wait at all
# (nbd_server_stop): the next qemu-img, qemu-io, qemu-nbd or QEMU can
# find the image still locked by one that is still exiting, on a loaded
# machine (161, 130, 223 seen).  So every one of them is started through
# a wrapper that records its pid and, before it execs its binary, waits
# (up to 10 s) until no earlier one is exiting: a task with PF_EXITING,
# or a SIGKILL or SIGTERM pending, that is not yet a zombie (whose files
# are closed).  A QEMU that is alive and holds a lock still holds it: the
# tests of locking see what they expect.
pids=$build/iotests/pids
rm -rf "$pids"
mkdir -p "$pids"
cat >"$build/iotests/bin/settle.sh" <<SETTLE
# written by tests/iotests/run-iotests.sh; sourced by the wrappers here
pids='$pids'
exiting() {     # exiting PID: it is exiting and not yet a zombie
    local t st flags pend live=
    for t in /proc/\$1/task/*; do
        read -r st 2>/dev/null <"\$t/stat" || continue
        st=(\${st##*) })           # from the state on: fields 3...
        [ "\${st[0]}" != Z ] || continue
        live=1
        flags=\${st[6]}
        [ \$((flags & 4)) = 0 ] || return 0          # PF_EXITING
    done
    [ -n "\$live" ] || return 1
    pend=\$(sed -n 's/^ShdPnd:[[:space:]]*//p' "/proc/\$1/status" 2>/dev/null)
    [ -n "\$pend" ] && [ \$((16#\$pend & 0x4100)) != 0 ]  # SIGKILL, SIGTERM
}
settle_then_exec() {
    local f pid waited=0 busy
    while :; do
        busy=
        for f in "\$pids"/*; do
            [ -e "\$f" ] || continue
            pid=\${f##*/}
            if [ ! -d "/proc/\$pid" ]; then
                rm -f "\$f"
            elif exiting "\$pid"; then
                busy=1
            fi
        done
        [ -n "\$busy" ] && [ \$waited -lt 200 ] || break
        sleep 0.05
        waited=\$((waited + 1))
    done
    : >"\$pids/\$\$"
    # argv[0] the wrapper's path, the *_PROG that the tests' filters know
    exec -a "\$0" "\$@"
}
SETTLE
for b in qemu-img qemu-io qemu-nbd; do
    printf '#!/bin/bash\n# written by tests/iotests/run-iotests.sh: %s, once no earlier one is exiting\n. %q\nsettle_then_exec %q "$@"\n' \
        "$b" "$build/iotests/bin/settle.sh" "$build/qemu/$b" >"$build/iotests/bin/$b"
    chmod 755 "$build/iotests/bin/$b"
done
# check with the Python QEMU's configure chose (its venv sees the system's
# packages, e.g. python3-libnbd for nbd-multiconn), not the first python3
# on PATH, as QEMU's own `make check-block` does
python=$build/qemu/pyvenv/bin/python3
run_check() {
    (cd "$iotests_build" && TEST_DIR=$build/iotests/scratch \
        SOCK_DIR=$sock_dir QEMU_PROG=$wrapper \
        QEMU_IMG_PROG=$build/iotests/bin/qemu-img \
        QEMU_IO_PROG=$build/iotests/bin/qemu-io \
        QEMU_NBD_PROG=$build/iotests/bin/qemu-nbd "$python" ./check "$@")
}

mkdir -p "$build/iotests/scratch"
mode=${1:-}
shift || true
case $mode in
ours)
    helper=${1:-}
    [ -x "$helper" ] || die "usage: run-iotests.sh ours PATH/TO/sel4-vmm-blk-writer"
    names=()
    for t in "$top"/tests/qemu-iotests/tests/*; do
        case $t in *.out) continue ;; esac
        cp -f "$t" "$t.out" "$iotests_src/tests/"
        names+=("$(basename "$t")")
    done
    out=$build/iotests/ours.log
    SEL4_VMM_BLK_WRITER=$(cd "$(dirname "$helper")" && pwd)/$(basename "$helper") \
        run_check -qcow2 "${names[@]}" >"$out" 2>&1
    status=$?
    # a test's progress line and its result share a line, split by \r
    tr '\r' '\n' <"$out" >"$out.tmp" && mv "$out.tmp" "$out"
    sed 's/^/# /' "$out"
    # TAP, one line per test, for scripts/test-summary.py
    n=0
    for name in "${names[@]}"; do
        n=$((n + 1))
        line=$(grep -E "^${name}[[:space:]]" "$out" | tail -n 1)
        case $line in
        *" pass "*) echo "ok $n - iotest $name (qcow2)" ;;
        *"not run"*) echo "ok $n - iotest $name (qcow2) # SKIP not run" ;;
        *) echo "not ok $n - iotest $name (qcow2)"; status=1 ;;
        esac
    done
    echo "1..$n"
    exit $status
    ;;
quick)
    [ $# -gt 0 ] || set -- raw qcow2
    status=0
    for fmt in "$@"; do
        log=$build/iotests/quick-$fmt.log
        start=$(date +%s)
        echo "== check -$fmt -g quick (log: ${log#"$top"/})"
        run_check "-$fmt" -g quick >"$log" 2>&1
        echo "   $(( $(date +%s) - start )) s"
        # a failure runs once more, alone (summarise.py says which did)
        retry=()
        failed=$(python3 "$top/tests/iotests/summarise.py" --failed "$fmt" "$log")
        if [ -n "$failed" ]; then
            retry=("$build/iotests/quick-$fmt-again.log")
            # shellcheck disable=SC2086 # test names, one word each
            run_check "-$fmt" $failed >"${retry[0]}" 2>&1
        fi
        python3 "$top/tests/iotests/summarise.py" "$fmt" "$log" "${retry[@]}" ||
            status=1
    done
    exit $status
    ;;
only)
    fmt=${1:-}
    shift || true
    if [ -z "$fmt" ] || [ $# -eq 0 ]; then
        die "usage: run-iotests.sh only FORMAT TEST..."
    fi
    log=$build/iotests/only-$fmt.log
    echo "== check -$fmt $* (log: ${log#"$top"/})"
    run_check "-$fmt" "$@" >"$log" 2>&1
    python3 "$top/tests/iotests/summarise.py" "$fmt" "$log"
    ;;
*)
    die "usage: run-iotests.sh ours HELPER | quick [FORMAT...] | only FORMAT TEST..."
    ;;
esac
