/*
 * qemu-storage-daemon as a vhost-user-blk server for QEMU's
 * vhost-user-blk-pci: the block data path outside QEMU.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-storage-daemon [--object <object>]
 *   --blockdev <blockdev>,node-name=disk0
 *   --export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,
 *            addr.path=<sock>,writable=on<export_opts>
 *   [--chardev socket,id=qmp0,path=<qmp>,server=on,wait=off
 *    --monitor chardev=qmp0]
 * QEMU then takes -chardev socket,id=X,path=<sock>
 * -device vhost-user-blk-pci,chardev=X.  Shared by the end-to-end test
 * and the fio engine of the benchmarks.
 */
#ifndef VMM_SIM_STORAGE_DAEMON_H
#define VMM_SIM_STORAGE_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

#define VMM_SIM_QSD_NODE    "disk0"

typedef struct VmmSimQsd {
    const char *bin;            /* qemu-storage-daemon */
    /* --blockdev options but node-name, e.g. "driver=file,filename=F" */
    const char *blockdev;
    const char *sock;           /* the vhost-user socket it listens on */
    /* more --export options, ",key=value..." (e.g. notify-suppress-us) */
    const char *export_opts;
    const char *object;         /* an --object (e.g. an iothread); or NULL */
    const char *qmp;            /* its QMP socket (a path); or NULL */
    const char *log;            /* its output (appended); NULL: /dev/null */
    pid_t pid;                  /* set by start; 0: not running */
} VmmSimQsd;

/* storage-daemon/qemu-storage-daemon of @qemu's build tree (g_free). */
char *vmm_sim_qsd_path(const char *qemu);
/*
 * Start it and wait, up to @timeout_ms, until its vhost-user socket is
 * there; a daemon that exits first ends the wait (the error says how).
 */
bool vmm_sim_qsd_start(VmmSimQsd *d, int timeout_ms, GError **errp);
/* SIGTERM, reap; @status (may be NULL) gets its wait status. */
void vmm_sim_qsd_stop(VmmSimQsd *d, int *status);

#endif
