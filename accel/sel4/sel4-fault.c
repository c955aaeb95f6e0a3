/*
 * seL4 accelerator: deterministic fault injection, for tests.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * -accel sel4,x-fault-kill=QUEUE.POINT[:N] makes QEMU SIGKILL itself (no
 * clean-up, as a crash or the OOM killer would) the N-th time (default 1)
 * a transfer on QUEUE (drvrpc_req, drvrpc_resp or devevt) reaches POINT:
 *
 *   claimed    our tail moved over the entries, our head not yet: the
 *              claim is left half done
 *   committed  published: on drvrpc_req, requests taken and none of them
 *              answered yet; on drvrpc_resp and devevt, published and
 *              the VMM not yet rung
 *
 * These are the states in which a death leaves the shared queues half
 * done; a successor and the VMM must recover from each (docs/protocol.md,
 * "Restarts"; tests/e2e/test-faults.c, scenario die-at).
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "sel4-internal.h"

static const char *const sel4_fault_points[] = {
    [VSO_FAULT_CLAIMED] = "claimed",
    [VSO_FAULT_COMMITTED] = "committed",
};

static VsoQueue *sel4_fault_queue(Sel4State *s, const char *name)
{
    VsoQueue *q[] = { &s->rpc.req, &s->rpc.resp, &s->rpc.evt };

    for (unsigned i = 0; i < ARRAY_SIZE(q); i++) {
        if (g_str_equal(q[i]->name, name)) {
            return q[i];
        }
    }
    return NULL;
}

static void sel4_fault_hit(VsoQueue *vq, VsoFaultPoint point, unsigned n,
                           void *opaque)
{
    Sel4State *s = opaque;

    if (point != s->fault_point || qatomic_fetch_dec(&s->fault_left) != 1) {
        return;
    }
    /* stderr is unbuffered: the line is out before the signal */
    error_report("sel4: x-fault-kill: SIGKILL at %s.%s (%u entries)",
                 vq->name, sel4_fault_points[point], n);
    raise(SIGKILL);
}

/* QUEUE.POINT[:N] into its parts; false when it is not one. */
static bool sel4_fault_parse(const char *spec, char **queue,
                             VsoFaultPoint *point, unsigned *n)
{
    g_auto(GStrv) parts = g_strsplit_set(spec, ".:", 3);
    unsigned i;

    *n = 1;
    if (g_strv_length(parts) < 2 ||
        (parts[2] && (qemu_strtoui(parts[2], NULL, 10, n) < 0 || !*n)) ||
        (!g_str_equal(parts[0], "drvrpc_req") &&
         !g_str_equal(parts[0], "drvrpc_resp") &&
         !g_str_equal(parts[0], "devevt"))) {
        return false;
    }
    for (i = 0; i < ARRAY_SIZE(sel4_fault_points); i++) {
        if (g_str_equal(parts[1], sel4_fault_points[i])) {
            *point = i;
            *queue = g_strdup(parts[0]);
            return true;
        }
    }
    return false;
}

bool sel4_fault_check(const char *spec, Error **errp)
{
    g_autofree char *queue = NULL;
    VsoFaultPoint point;
    unsigned n;

    if (!sel4_fault_parse(spec, &queue, &point, &n)) {
        error_setg(errp, "sel4: x-fault-kill must be QUEUE.POINT[:N] "
                   "(QUEUE: drvrpc_req, drvrpc_resp or devevt; POINT: "
                   "claimed or committed; N >= 1), not '%s'", spec);
        return false;
    }
    return true;
}

void sel4_fault_arm(Sel4State *s)
{
    g_autofree char *queue = NULL;
    VsoFaultPoint point;
    VsoQueue *q;
    unsigned n;

    /* the setter checked the spec */
    if (!s->fault_kill ||
        !sel4_fault_parse(s->fault_kill, &queue, &point, &n)) {
        return;
    }
    q = sel4_fault_queue(s, queue);
    s->fault_point = point;
    s->fault_left = n;
    q->fault = sel4_fault_hit;
    q->fault_opaque = s;
}
