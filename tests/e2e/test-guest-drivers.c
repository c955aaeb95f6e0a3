/*
 * End-to-end: the simulated guest's virtio drivers against a real QEMU
 * (-accel sel4), every access through the VMM's RPC path.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-guest-drivers QEMU_BINARY LOOP_OPTIONS [intx]
 *
 * One QEMU with the five devices of guest/guest.h; each device's part
 * (guest/<device>.c) brings its device up through the simulated guest's
 * drivers and checks its data path.  Interrupts are MSI-X, or INTx with
 * "intx".
 */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "guest/guest.h"
#include "qemu-harness.h"

unsigned guest_spi_base(const Guest *g, unsigned n)
{
    return vmm_sim_config(g->sim)->msi_spi_base + 2 * n;
}

void guest_args(GPtrArray *argv, ...)
{
    va_list ap;
    const char *a;

    va_start(ap, argv);
    while ((a = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, g_strdup(a));
    }
    va_end(ap);
}

static GPtrArray *qemu_argv(Guest *g, const char *sock,
                            const char *loop_opts)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s,%s", sock, loop_opts);

    guest_args(argv, qemu, "-nodefaults", "-display", "none",
               "-machine", "virt-sel4", "-accel", accel,
               "-d", "guest_errors", "-D", g->dlog, NULL);
    /* registration order: blk, net, rng, console, 9p */
    guest_blk_args(argv, g);
    guest_net_args(argv, g);
    guest_rng_args(argv, g);
    guest_console_args(argv, g);
    guest_9p_args(argv, g);
    g_ptr_array_add(argv, NULL);
    return argv;
}

static void cleanup(Guest *g)
{
    guest_blk_cleanup(g);
    guest_net_cleanup(g);
    guest_console_cleanup(g);
}

static bool start(Guest *g, const char *loop_opts, const char *log,
                  pid_t *pid)
{
    g_autofree char *sock = g_build_filename(g->tmpdir, "vmm.sock", NULL);
    g_autoptr(GPtrArray) argv = NULL;
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(GError) err = NULL;
    const VmmSimConfig *c;

    g->sim = vmm_sim_new(&cfg, &err);
    if (!g->sim) {
        ok(false, "vmm_sim_new: %s", err->message);
        return false;
    }
    argv = qemu_argv(g, sock, loop_opts);
    *pid = spawn_qemu_argv((const char *const *)argv->pdata, log);
    if (!vmm_sim_accept(g->sim, GUEST_TIMEOUT_MS, &err) ||
        !vmm_sim_wait_started(g->sim, GUEST_TIMEOUT_MS)) {
        ok(false, "QEMU started: %s", err ? err->message : "no START_VM");
        return false;
    }
    c = vmm_sim_config(g->sim);
    /* the drivers' memory: the upper half of guest RAM */
    guest_alloc_init(&g->mem, g->sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    g->mmio_next = c->pci_mmio_base;
    return true;
}

int main(int argc, char **argv)
{
    g_autofree char *tmpdir = NULL, *log = NULL, *dlog = NULL;
    g_autofree char *cmd = NULL;
    Guest g = { 0 };
    pid_t pid = -1;

    if (argc < 3 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "usage: test-guest-drivers QEMU_BINARY LOOP_OPTIONS "
                "[intx]\n");
        return 2;
    }
    qemu = argv[1];
    g.qemu = qemu;
    g.use_msix = !(argc > 3 && g_str_equal(argv[3], "intx"));
    signal(SIGPIPE, SIG_IGN);
    printf("# -accel sel4,...,%s, %s\n", argv[2],
           g.use_msix ? "MSI-X" : "INTx");
    tmpdir = g_dir_make_tmp("guest-drivers-XXXXXX", NULL);
    g_assert(tmpdir);
    g.tmpdir = tmpdir;
    log = g_build_filename(tmpdir, "qemu.log", NULL);
    dlog = g_build_filename(tmpdir, "qemu-d.log", NULL);
    g.dlog = dlog;

    if (start(&g, argv[2], log, &pid)) {
        guest_blk_test(&g);
        guest_net_test(&g);
        guest_rng_test(&g);
        guest_console_test(&g);
        guest_9p_test(&g);
        kill(pid, SIGTERM);
        if (wait_child(pid, GUEST_TIMEOUT_MS) != -1) {
            ok(true, "QEMU ended on SIGTERM");
            guest_blk_after_exit(&g);
        } else {
            ok(false, "QEMU ended on SIGTERM");
        }
    }
    if (n_fail) {
        diag_file(log);
        diag_file(dlog);
    }
    if (pid > 0) {
        kill_and_reap(pid);
    }
    cleanup(&g);
    if (g.sim) {
        vmm_sim_free(g.sim);
    }
    printf("1..%d\n", n_test);
    cmd = g_strdup_printf(getenv("KEEP") ? "true %s" : "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", tmpdir);
    }
    return n_fail ? 1 : 0;
}
