#!/usr/bin/env bash
# Hook: the monitor's view of the sel4 accelerator's counters.
#  1. qapi/stats.json: a 'sel4' member of the StatsProvider enum (with its
#     doc line: QAPI refuses undocumented members), so that query-stats and
#     HMP `info stats vm sel4` reach accel/sel4/sel4-stats.c.
#  2. hmp-commands-info.hx: an `info sel4` entry without a handler; the
#     accelerator registers it (monitor_register_hmp_info_hrt) when it
#     attaches, so with another accelerator QEMU says the command is not
#     available.
# Same anchors in 10.2 and 10.0.  Idempotent; a missing anchor fails.
# Applies once the counters are in the tree (accel/sel4/sel4-stats.c), so
# that the patch series brings it with them.
set -euo pipefail

[ -f accel/sel4/sel4-stats.c ] || exit 0

fail() { echo "20-sel4-monitor.sh: $*" >&2; exit 1; }

f=qapi/stats.json
if ! grep -qF "'sel4'" "$f"; then
    grep -qxF "# @cryptodev: since 8.0" "$f" || fail "$f: no @cryptodev doc line"
    grep -qxF "  'data': [ 'kvm', 'cryptodev' ] }" "$f" ||
        fail "$f: StatsProvider is not [ 'kvm', 'cryptodev' ]"
    sed -i -e "/^# @cryptodev: since 8\.0\$/a #\\
# @sel4: the seL4 accelerator (sel4-qemu-uring)" \
        -e "s/^  'data': \[ 'kvm', 'cryptodev' \] }\$/  'data': [ 'kvm', 'cryptodev', 'sel4' ] }/" "$f"
    grep -qF "'cryptodev', 'sel4' ]" "$f" || fail "$f: edit did not apply"
fi

f=hmp-commands-info.hx
if ! grep -qF '.name       = "sel4",' "$f"; then
    cat >>"$f" <<'EOF'

    {
        .name       = "sel4",
        .args_type  = "",
        .params     = "",
        .help       = "show the seL4 accelerator's counters",
    },

SRST
  ``info sel4``
    Show the seL4 accelerator's counters: requests by opcode, batches and
    their sizes, doorbells, events and interrupts, errors by kind, queue
    high-water marks.
ERST
EOF
fi
