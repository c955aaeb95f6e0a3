#!/usr/bin/env bash
# Hook: the seL4 accelerator's irqfd behind QEMU's accelerator-neutral
# irqchip calls (include/system/accel-irq.h, accel/accel-irq.c), which
# virtio-pci uses for its guest notifiers: a sel4 branch next to MSHV's
# and KVM's in each, and stubs (accel/stubs/sel4-stub.c) for targets
# without the accelerator.  Without this hook virtio-pci serves the guest
# notifiers from the main loop under -accel sel4 (accel_msi_via_irqfd_
# enabled() is false), which works, only slower for IOThreads.
# Tested: QEMU 10.2.2.  (10.0 has no accel-irq.c: there the hook does
# nothing, and the accelerator runs without irqfd.)
#
# Runs in the QEMU source tree; idempotent; every anchor is checked.
set -euo pipefail

fail() { echo "50-sel4-irqfd.sh: $*" >&2; exit 1; }

[ -f accel/stubs/sel4-stub.c ] || exit 0
if [ ! -f accel/accel-irq.c ]; then
    echo "50-sel4-irqfd.sh: no accel/accel-irq.c (QEMU < 10.2): irqfd off" >&2
    exit 0
fi

# replace_line FILE OLD NEW: OLD must be a whole line of FILE (once done,
# NEW is, and nothing happens)
replace_line() {
    grep -qxF -- "$3" "$1" && return 0
    grep -qxF -- "$2" "$1" || fail "$1: anchor line not found: $2"
    OLD=$2 NEW=$3 awk '$0 == ENVIRON["OLD"] { print ENVIRON["NEW"]; next }
                       { print }' "$1" >"$1.sel4tmp" && mv "$1.sel4tmp" "$1"
}
# insert_after FILE ANCHOR MARKER TEXT: after the whole line ANCHOR,
# unless MARKER is in FILE
insert_after() {
    grep -qF -- "$3" "$1" && return 0
    grep -qxF -- "$2" "$1" || fail "$1: anchor line not found: $2"
    ANCHOR=$2 TEXT=$4 awk '!done && $0 == ENVIRON["ANCHOR"] { print; print ENVIRON["TEXT"]; done = 1; next } { print }' \
        "$1" >"$1.sel4tmp" && mv "$1.sel4tmp" "$1"
}
# in_body FILE SIGNATURE MARKER TEXT: TEXT first in the body of the
# function whose definition starts with the whole line SIGNATURE (the body
# opens with a line "{" at most two lines below), unless MARKER is in FILE
in_body() {
    grep -qF -- "$3" "$1" && return 0
    grep -qxF -- "$2" "$1" || fail "$1: anchor line not found: $2"
    SIG=$2 TEXT=$4 awk '
        $0 == ENVIRON["SIG"] { armed = 3 }
        { print }
        armed && $0 == "{" { print ENVIRON["TEXT"]; armed = 0; done = 1; next }
        armed { armed-- }
        END { if (!done) exit 1 }' "$1" >"$1.sel4tmp" ||
        fail "$1: no body after: $2"
    mv "$1.sel4tmp" "$1"
}

h=include/system/accel-irq.h
insert_after "$h" '#include "system/mshv.h"' 'system/sel4.h' \
    '#include "system/sel4.h"'
replace_line "$h" \
    '    return mshv_msi_via_irqfd_enabled() || kvm_msi_via_irqfd_enabled();' \
    '    return mshv_msi_via_irqfd_enabled() || kvm_msi_via_irqfd_enabled() ||
           sel4_msi_via_irqfd_enabled();'

c=accel/accel-irq.c
insert_after "$c" '#include "system/accel-irq.h"' 'system/sel4.h' \
    '#include "system/sel4.h"'
in_body "$c" \
    'int accel_irqchip_add_msi_route(KVMRouteChange *c, int vector, PCIDevice *dev)' \
    'sel4_irqchip_add_msi_route(' \
    '    if (sel4_msi_via_irqfd_enabled()) {
        return sel4_irqchip_add_msi_route(vector, dev);
    }'
in_body "$c" \
    'int accel_irqchip_update_msi_route(int vector, MSIMessage msg, PCIDevice *dev)' \
    'sel4_irqchip_update_msi_route(' \
    '    if (sel4_msi_via_irqfd_enabled()) {
        return sel4_irqchip_update_msi_route(vector, msg, dev);
    }'
in_body "$c" 'void accel_irqchip_release_virq(int virq)' \
    'sel4_irqchip_release_virq(' \
    '    if (sel4_msi_via_irqfd_enabled()) {
        sel4_irqchip_release_virq(virq);
        return;
    }'
in_body "$c" \
    'int accel_irqchip_add_irqfd_notifier_gsi(EventNotifier *n, EventNotifier *rn,' \
    'sel4_irqchip_add_irqfd_notifier_gsi(' \
    '    if (sel4_msi_via_irqfd_enabled()) {
        return sel4_irqchip_add_irqfd_notifier_gsi(n, rn, virq);
    }'
in_body "$c" \
    'int accel_irqchip_remove_irqfd_notifier_gsi(EventNotifier *n, int virq)' \
    'sel4_irqchip_remove_irqfd_notifier_gsi(' \
    '    if (sel4_msi_via_irqfd_enabled()) {
        return sel4_irqchip_remove_irqfd_notifier_gsi(n, virq);
    }'

# the stubs, for every target whose accelerators do not include sel4
m=accel/stubs/meson.build
grep -qF "sel4-stub.c" "$m" || {
    a="specific_ss.add_all(when: ['CONFIG_SYSTEM_ONLY'], if_true: system_stubs_ss)"
    grep -qxF -- "$a" "$m" || fail "$m: anchor line not found: $a"
    A=$a awk '$0 == ENVIRON["A"] {
        print "system_stubs_ss.add(when: '\''CONFIG_SEL4'\'', if_false: files('\''sel4-stub.c'\''))" }
        { print }' "$m" >"$m.sel4tmp" && mv "$m.sel4tmp" "$m"
}
