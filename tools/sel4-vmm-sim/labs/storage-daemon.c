/*
 * qemu-storage-daemon as a vhost-user-blk server (see storage-daemon.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu-launch.h"
#include "storage-daemon.h"

/* how often the start looks for the socket, in microseconds */
#define QSD_POLL_US     10000

char *vmm_sim_qsd_path(const char *qemu)
{
    g_autofree char *dir = g_path_get_dirname(qemu);

    return g_build_filename(dir, "storage-daemon", "qemu-storage-daemon",
                            NULL);
}

bool vmm_sim_qsd_start(VmmSimQsd *d, int timeout_ms, GError **errp)
{
    g_autofree char *node = g_strdup_printf("%s,node-name=" VMM_SIM_QSD_NODE,
                                            d->blockdev);
    g_autofree char *exp = g_strdup_printf(
        "type=vhost-user-blk,id=exp0,node-name=" VMM_SIM_QSD_NODE
        ",addr.type=unix,addr.path=%s,writable=on%s", d->sock,
        d->export_opts ? d->export_opts : "");
    g_autofree char *qmp = g_strdup_printf(
        "socket,id=qmp0,path=%s,server=on,wait=off", d->qmp ? d->qmp : "");
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    int st;

    g_ptr_array_add(argv, (gpointer)d->bin);
    if (d->object) {
        g_ptr_array_add(argv, "--object");
        g_ptr_array_add(argv, (gpointer)d->object);
    }
    g_ptr_array_add(argv, "--blockdev");
    g_ptr_array_add(argv, node);
    g_ptr_array_add(argv, "--export");
    g_ptr_array_add(argv, exp);
    if (d->qmp) {
        g_ptr_array_add(argv, "--chardev");
        g_ptr_array_add(argv, qmp);
        g_ptr_array_add(argv, "--monitor");
        g_ptr_array_add(argv, "chardev=qmp0");
    }
    g_ptr_array_add(argv, NULL);
    d->pid = vmm_sim_spawn((const char *const *)argv->pdata, !d->log, d->log,
                           errp);
    if (d->pid < 0) {
        d->pid = 0;
        return false;
    }
    /* it creates the socket (and QMP's before it) once it serves */
    while (!g_file_test(d->sock, G_FILE_TEST_EXISTS)) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED,
                        "%s %s %d before it listened on %s%s%s", d->bin,
                        WIFEXITED(st) ? "exited with status"
                                      : "was killed by signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                        d->sock, d->log ? "; its output is in " : "",
                        d->log ? d->log : "");
            return false;
        }
        if (g_get_monotonic_time() >= end) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                        "%s did not listen on %s within %d ms", d->bin,
                        d->sock, timeout_ms);
            vmm_sim_qsd_stop(d, NULL);
            return false;
        }
        g_usleep(QSD_POLL_US);
    }
    return true;
}

void vmm_sim_qsd_stop(VmmSimQsd *d, int *status)
{
    int st = 0;

    if (d->pid <= 0) {
        return;
    }
    kill(d->pid, SIGTERM);
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR) {
        /* again */
    }
    if (status) {
        *status = st;
    }
    d->pid = 0;
}
