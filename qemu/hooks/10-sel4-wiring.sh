#!/usr/bin/env bash
# Hook: wires the overlay's accel/sel4/,
# hw/arm/virt-sel4.c, hw/intc/sel4_intc.c and hw/sel4/ into QEMU 10.2's build.
# It expects these overlay files:
#   accel/sel4/meson.build   e.g. system_ss.add(when: 'CONFIG_SEL4', if_true: files('sel4-all.c', ...))
#   accel/sel4/trace-events  (may be empty)
#   accel/sel4/trace.h       one line: #include "trace/trace-accel_sel4.h"
#                            (QEMU ships this file per traced dir; without it
#                            "fatal error: trace.h: No such file or directory")
#   hw/arm/virt-sel4.c, hw/intc/sel4_intc.c
#   hw/sel4/meson.build, trace-events, trace.h ("trace/trace-hw_sel4.h")
# and add CONFIG_SEL4_VIRT=y to qemu/devices-sel4.mak (only together with
# this hook: minikconf fails with "undefined symbol SEL4_VIRT" otherwise).
# Tested: QEMU 10.2.2 built and ran with stub accel/machine/intc files
# (-accel sel4 -M virt-sel4, -trace 'sel4_*'); 10.0.13 (trixie, built with
# SEL4_QEMU_FORCE_FALLBACK=trixie:10.0.) builds with the same edits, and the
# end-to-end tests pass on it.
#
# Runs in the QEMU source tree. Every edit is idempotent and checks that its
# anchor line exists, so a QEMU update that moves things fails loudly here.
# Each part wires its files only when they are in the tree, so that the
# patch series (./run patches) brings every wiring edit in the patch that
# adds the files it wires, and every step of the series builds.
set -euo pipefail

fail() { echo "10-sel4-wiring.sh: $*" >&2; exit 1; }
# insert TEXT after the first line matching ANCHOR (a fixed string that is a
# whole line) in FILE, unless MARKER (fixed string) is already in FILE
insert_after() { # file anchor marker text
    grep -qF -- "$3" "$1" && return 0
    grep -qxF -- "$2" "$1" || fail "$1: anchor line not found: $2"
    ANCHOR=$2 TEXT=$4 awk '!done && $0 == ENVIRON["ANCHOR"] { print; print ENVIRON["TEXT"]; done = 1; next } { print }' \
        "$1" >"$1.sel4tmp" && mv "$1.sel4tmp" "$1"
}
insert_before() { # file anchor marker text
    grep -qF -- "$3" "$1" && return 0
    grep -qxF -- "$2" "$1" || fail "$1: anchor line not found: $2"
    ANCHOR=$2 TEXT=$4 awk '!done && $0 == ENVIRON["ANCHOR"] { print ENVIRON["TEXT"]; print; done = 1; next } { print }' \
        "$1" >"$1.sel4tmp" && mv "$1.sel4tmp" "$1"
}
append() { # file marker text
    grep -qF -- "$2" "$1" || printf '%s\n' "$3" >>"$1"
}

# 1-4: the accelerator (accel/sel4/).
if [ -f accel/sel4/meson.build ]; then
# 1. The accelerator's directory (inside `if have_system`).
insert_after accel/meson.build "  subdir('xen')" "subdir('sel4')" "  subdir('sel4')"

# 2. Kconfig symbol for the accelerator.
# (the accelerator routes MSIs through sel4_intc: built with it)
append accel/Kconfig "config SEL4" $'\nconfig SEL4\n    bool\n    select SEL4_INTC'

# 3. Host accelerator list: CONFIG_SEL4 on Linux hosts ...
insert_after meson.build "accelerators = []" "accelerators += 'CONFIG_SEL4'" \
    $'if host_os == \'linux\'\n  accelerators += \'CONFIG_SEL4\'\nendif'
# ... and the targets it applies to. Without this the per-target loop
# (`foreach sym: accelerators` ... `target in accelerator_targets.get(sym, [])`)
# silently drops CONFIG_SEL4 for aarch64-softmmu.
insert_after meson.build "accelerator_targets += { 'CONFIG_XEN': xen_targets }" \
    "'CONFIG_SEL4':" "accelerator_targets += { 'CONFIG_SEL4': ['aarch64-softmmu'] }"

# 4. Trace events of accel/sel4 (trace_sel4_*; -trace 'sel4_*').
insert_after meson.build "    'accel/kvm'," "'accel/sel4'," "    'accel/sel4',"
fi

# 5. The machine and the interrupt controller.
if [ -f hw/arm/virt-sel4.c ]; then
append hw/arm/Kconfig "config SEL4_VIRT" $'\nconfig SEL4_VIRT\n    bool\n    default y\n    depends on SEL4\n    select SEL4_INTC\n    select PCI_EXPRESS\n    select PCI_EXPRESS_GENERIC_BRIDGE\n    select VIRTIO_PCI'
# 10.2 builds target-independent arm boards from arm_common_ss, 10.0 from arm_ss
arm_set=arm_ss
grep -q '^arm_common_ss = ' hw/arm/meson.build && arm_set=arm_common_ss
append hw/arm/meson.build "virt-sel4.c" \
    "$arm_set.add(when: 'CONFIG_SEL4_VIRT', if_true: files('virt-sel4.c'))"
fi
if [ -f hw/intc/sel4_intc.c ]; then
append hw/intc/Kconfig "config SEL4_INTC" $'\nconfig SEL4_INTC\n    bool'
append hw/intc/meson.build "sel4_intc.c" \
    "system_ss.add(when: 'CONFIG_SEL4_INTC', if_true: files('sel4_intc.c'))"
fi

# 6. The guest-side VMM stand-in (hw/sel4/: sel4-vmm-proxy on `virt`).
if [ -f hw/sel4/meson.build ]; then
insert_after hw/meson.build "subdir('misc')" "subdir('sel4')" "subdir('sel4')"
insert_after meson.build "    'hw/misc'," "'hw/sel4'," "    'hw/sel4',"
append hw/arm/Kconfig "config SEL4_VMM_PROXY" $'\nconfig SEL4_VMM_PROXY\n    bool\n    default y\n    depends on SEL4 && ARM_VIRT'
fi
