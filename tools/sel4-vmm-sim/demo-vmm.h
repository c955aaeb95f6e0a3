/*
 * The demo's VMM and its QEMU: started together, the VMM hanging up
 * (QEMU exits by itself, as under its systemd unit), stopped at the end.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_DEMO_VMM_H
#define VMM_SIM_DEMO_VMM_H

#include <stdbool.h>
#include <glib.h>

#include "sel4/vmm_sim.h"
#include "qemu-launch.h"

typedef struct DemoVmm {
    /* set by the caller, the same for every start */
    const char *dir;            /* the socket, disk.qcow2, share/ */
    const char *qemu;
    const char *loop;
    const char *trace;          /* QEMU's sel4_* trace file, or NULL */
    char **qemu_args;           /* more of QEMU's arguments, or NULL */
    /* the running pair */
    VmmSim *sim;                /* NULL: none */
    VmmSimQemu q;               /* q.pid 0: no QEMU */
    GPtrArray *argv;            /* QEMU's devices (q.args points at it) */
    unsigned starts;
} DemoVmm;

/*
 * A new VMM on <dir>/vmm.sock and a new QEMU with the demo's five
 * devices on <dir>/disk.qcow2 and <dir>/share, the host's network
 * namespaces and console socket made for it; its connection accepted
 * and START_VM taken, within @timeout_ms.  The same every time.
 */
bool demo_vmm_start(DemoVmm *v, int timeout_ms, GError **errp);
/*
 * The VMM goes away (vmm_sim_free(): the socket, the doorbells and the
 * memory closed); QEMU must exit by itself.  Waits up to @timeout_ms for
 * it, then kills it.  *@status gets its wait status (-1: it had not
 * exited and was killed), *@ms the time it took.  The network lab is
 * taken down too: the next start makes it anew.  True when QEMU exited
 * by itself.
 */
bool demo_vmm_hang_up(DemoVmm *v, int timeout_ms, int *status, double *ms);
/* QEMU asked to quit over QMP, the VMM freed; idempotent. */
void demo_vmm_stop(DemoVmm *v, int timeout_ms);

#endif
