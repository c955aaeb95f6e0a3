#!/usr/bin/env bash
# Hook: MAINTAINERS entries for the seL4 accelerator, its machine and its
# proxy device: a section of their own after the accelerators' ("Guest CPU
# Cores (...)") sections, before "Hosts". Only the patch series needs it (the build does
# not read MAINTAINERS); it is a hook so that the series is generated from
# this repo's files like every other edit. Idempotent.
set -euo pipefail

[ -f accel/sel4/meson.build ] || exit 0
f=MAINTAINERS
grep -qxF 'seL4 accelerator' "$f" && exit 0
anchor='Hosts'
grep -qxF "$anchor" "$f" || { echo "40-sel4-maintainers.sh: $f: no '$anchor' line" >&2; exit 1; }
entry=$(cat <<'EOT'
seL4 device VM
--------------
seL4 accelerator
M: sel4-qemu-uring authors <sel4-qemu-uring@invalid>
S: Maintained
F: accel/sel4/
F: accel/stubs/sel4-stub.c
F: include/system/sel4.h
F: include/system/sel4-compat.h
F: include/sel4/
F: lib/vso_rpc.c
F: lib/sel4_decode.c
F: lib/sim_transport.c
F: lib/uio_transport.c
F: lib/uservm.c
F: io/uring_doorbell.c
F: include/io/uring_doorbell.h
F: hw/arm/virt-sel4.c
F: hw/intc/sel4_intc.c
F: include/hw/intc/sel4_intc.h
F: hw/sel4/
F: docs/system/arm/virt-sel4.rst
EOT
)
ENTRY=$entry awk -v a="$anchor" '!done && $0 == a { print ENVIRON["ENTRY"]; print ""; done = 1 } { print }' \
    "$f" >"$f.sel4tmp" && mv "$f.sel4tmp" "$f"
