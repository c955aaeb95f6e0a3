/*
 * Starting QEMU as the simulated VMM's device model, and stopping it.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-system-aarch64 -nodefaults -display none -machine virt-sel4
 *   -accel sel4,transport=sim,socket=<the VmmSim's>[,<accel_opts>]
 *   <args...>
 * is forked and exec'd with an empty signal mask; vmm_sim_qemu_start()
 * then waits for its connection and START_VM.  Shared by the demo, the
 * fio engine and the network bridge of the benchmarks.
 */
#ifndef VMM_SIM_QEMU_LAUNCH_H
#define VMM_SIM_QEMU_LAUNCH_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <glib.h>

#include "sel4/vmm_sim.h"

/* qmp-client.h; not included here: json-glib clashes with fio's json.h */
struct QmpClient;

typedef struct VmmSimQemu {
    const char *qemu;           /* qemu-system-aarch64 with the overlay */
    const char *accel_opts;     /* e.g. "loop=uring,poll-us=50"; or NULL */
    const char *const *args;    /* devices etc., NULL-terminated; or NULL */
    bool quiet;                 /* QEMU's stdout and stderr to /dev/null */
    const char *log;            /* ... or to this file (appended); or NULL */
    /* If set, QEMU's QMP socket (a path): vmm_sim_qemu_accel_stats() */
    const char *qmp;
    pid_t pid;                  /* set by the calls below; 0: not running */
    struct QmpClient *qmp_client;       /* connected on first use */
} VmmSimQemu;

/*
 * Fork and exec @argv (argv[0]: the path) with an empty signal mask, its
 * stdout and stderr to /dev/null (@quiet) or appended to @log (NULL: ours).
 * Returns its pid, or -1 with @errp set.
 */
pid_t vmm_sim_spawn(const char *const *argv, bool quiet, const char *log,
                    GError **errp);
/* Fork and exec QEMU for @sim's socket; q->pid is set.  No waiting. */
bool vmm_sim_qemu_spawn(VmmSimQemu *q, VmmSim *sim, GError **errp);
/*
 * Spawn, accept its connection and wait for START_VM, within @timeout_ms;
 * a QEMU that exits meanwhile ends the wait at once (the error says how,
 * and where its output is).  On failure QEMU is stopped again.
 */
bool vmm_sim_qemu_start(VmmSimQemu *q, VmmSim *sim, int timeout_ms,
                        GError **errp);
/*
 * CPU time QEMU has used so far (all its threads, user + system), in
 * microseconds, from /proc/<pid>/stat; -1 when it cannot be read.
 */
int64_t vmm_sim_qemu_cpu_us(const VmmSimQemu *q);
/* The same of any process of ours (e.g. qemu-storage-daemon). */
int64_t vmm_sim_pid_cpu_us(pid_t pid);
/*
 * SIGTERM (QEMU shuts down cleanly, running its shutdown notifiers and
 * trace events), wait for it, close the QMP connection; @status and @ru
 * (may be NULL) get its exit
 * status and resource usage.  Nothing when it is not running.
 */
void vmm_sim_qemu_stop(VmmSimQemu *q, int *status, struct rusage *ru);
/*
 * The same, asked over QMP (q->qmp must be set): QEMU shuts down as on
 * SIGTERM but does not print that a signal ended it.  Falls back to
 * vmm_sim_qemu_stop() when QMP cannot be reached or QEMU has not ended
 * within @timeout_ms.
 */
void vmm_sim_qemu_quit(VmmSimQemu *q, int timeout_ms, int *status);

/*
 * The accelerator's counters (accel/sel4/sel4-stats.c: qom-get
 * /machine/accel stats), the ones the benchmarks report.
 */
#define VMM_SIM_BATCH_HIST  7   /* passes of 0, 1, 2-3, 4-7, 8-15, 16-31, 32 */
typedef struct VmmSimAccelStats {
    uint64_t requests, batches, doorbells_in, doorbells_out;
    uint64_t events;            /* all kinds published to devevt */
    uint64_t msi, msi_merged;   /* raised by devices, merged while queued */
    uint64_t errors;            /* all kinds */
    /* notifies: fast path; suppression windows, kicks found, stalls */
    uint64_t notifies_fast, notify_suppressed, notify_polled, notify_stalled;
    uint64_t batch_hist[VMM_SIM_BATCH_HIST];
} VmmSimAccelStats;

/* Read them now, over QEMU's QMP socket (q->qmp must be set). */
bool vmm_sim_qemu_accel_stats(VmmSimQemu *q, VmmSimAccelStats *st,
                              GError **errp);
/* @d = @b - @a, field by field: what happened in between. */
void vmm_sim_accel_stats_sub(VmmSimAccelStats *d, const VmmSimAccelStats *b,
                             const VmmSimAccelStats *a);
/* As a JSON object (g_free it). */
char *vmm_sim_accel_stats_json(const VmmSimAccelStats *st);

#endif
