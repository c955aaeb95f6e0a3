/*
 * The demo's VMM and its QEMU (see demo-vmm.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <glib.h>

#include "demo-vmm.h"
#include "demo-workloads.h"
#include "qmp-client.h"

/* QEMU's device arguments: the demo's five devices, for the VMM's socket. */
static GPtrArray *demo_vmm_args(DemoVmm *v)
{
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=d0,file=%s/disk.qcow2,format=qcow2", v->dir);
    g_autofree char *fsdev = g_strdup_printf(
        "local,id=f0,path=%s/share,security_model=none", v->dir);
    /* namespaces A and B first: QEMU's tap moves to B once it runs */
    g_autofree char *netdev = demo_net_prepare("n0");
    g_autofree char *chardev = demo_console_prepare(v->dir, "con0");
    const char *args[] = {
        "-device", "virtio-blk-pci,drive=d0", "-drive", drive,
        "-device", "virtio-net-pci,netdev=n0,romfile=",
        "-netdev", netdev,
        "-device", "virtio-rng-pci",
        "-device", "virtio-serial-pci",
        "-chardev", chardev,
        "-device", "virtserialport,chardev=con0,name=" DEMO_CONSOLE_PORT,
        "-device", "virtio-9p-pci,fsdev=f0,mount_tag=share",
        "-fsdev", fsdev,
    };
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(args); i++) {
        g_ptr_array_add(argv, g_strdup(args[i]));
    }
    if (v->trace) {
        g_ptr_array_add(argv, g_strdup("-trace"));
        g_ptr_array_add(argv, g_strdup_printf("enable=sel4_*,file=%s",
                                              v->trace));
    }
    for (i = 0; v->qemu_args && v->qemu_args[i]; i++) {
        g_ptr_array_add(argv, g_strdup(v->qemu_args[i]));
    }
    g_ptr_array_add(argv, NULL);
    return argv;
}

bool demo_vmm_start(DemoVmm *v, int timeout_ms, GError **errp)
{
    g_autofree char *sock = g_build_filename(v->dir, "vmm.sock", NULL);
    VmmSimConfig cfg = { .socket_path = sock };

    g_assert(!v->sim && v->q.pid <= 0);
    v->sim = vmm_sim_new(&cfg, errp);
    if (!v->sim) {
        return false;
    }
    g_clear_pointer(&v->argv, g_ptr_array_unref);
    v->argv = demo_vmm_args(v);
    g_free((char *)v->q.accel_opts);
    g_free((char *)v->q.qmp);
    v->q = (VmmSimQemu) {
        .qemu = v->qemu,
        .accel_opts = g_strdup_printf("loop=%s", v->loop),
        .args = (const char *const *)v->argv->pdata,
        /* (QEMU is asked to quit over it at the end: no signal message) */
        .qmp = g_build_filename(v->dir, "qmp.sock", NULL),
    };
    if (!vmm_sim_qemu_start(&v->q, v->sim, timeout_ms, errp)) {
        g_clear_pointer(&v->sim, vmm_sim_free);
        return false;
    }
    v->starts++;
    return true;
}

bool demo_vmm_hang_up(DemoVmm *v, int timeout_ms, int *status, double *ms)
{
    gint64 t0 = g_get_monotonic_time();
    gint64 end = t0 + (gint64)timeout_ms * 1000;
    pid_t pid = v->q.pid;
    int st = -1;
    bool exited = false;

    g_clear_pointer(&v->q.qmp_client, qmp_client_free);
    g_clear_pointer(&v->sim, vmm_sim_free);
    while (pid > 0 && !exited) {
        pid_t r = waitpid(pid, &st, WNOHANG);

        if (r == pid) {
            exited = true;
        } else if ((r < 0 && errno != EINTR) ||
                   g_get_monotonic_time() >= end) {
            break;
        } else {
            g_usleep(2000);
        }
    }
    *ms = (g_get_monotonic_time() - t0) / 1000.0;
    if (pid > 0 && !exited) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        st = -1;
    }
    v->q.pid = 0;
    *status = st;
    /* QEMU's tap went with it; the next start makes the namespaces anew */
    demo_cleanup();
    return exited;
}

void demo_vmm_stop(DemoVmm *v, int timeout_ms)
{
    vmm_sim_qemu_quit(&v->q, timeout_ms, NULL);
    demo_cleanup();
    g_clear_pointer(&v->sim, vmm_sim_free);
    g_clear_pointer((char **)&v->q.accel_opts, g_free);
    g_clear_pointer((char **)&v->q.qmp, g_free);
    g_clear_pointer(&v->argv, g_ptr_array_unref);
}
