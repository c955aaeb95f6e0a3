/*
 * vmm_sim_qemu_start() (tools/sel4-vmm-sim/labs/qemu-launch.c) when the
 * program it starts dies before it is up: the wait ends at once, and the
 * error says how it ended and where its output went, rather than that no
 * START_VM came within the timeout.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "sel4/vmm_sim.h"
#include "qemu-launch.h"

/* long enough that a test waiting it out would hit meson's timeout */
#define TIMEOUT_MS  600000

static void start_dead(const char *program, const char *want)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("qemu-launch-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "vmm.sock", NULL);
    g_autofree char *log = g_build_filename(dir, "qemu.log", NULL);
    VmmSimConfig cfg = { .socket_path = sock };
    VmmSim *sim = vmm_sim_new(&cfg, &err);
    VmmSimQemu q = { .qemu = program, .log = log };

    g_assert_no_error(err);
    g_assert_false(vmm_sim_qemu_start(&q, sim, TIMEOUT_MS, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED);
    g_test_message("%s: %s", program, err->message);
    g_assert_nonnull(strstr(err->message, want));
    g_assert_nonnull(strstr(err->message, "before it connected"));
    g_assert_nonnull(strstr(err->message, log));
    g_assert_cmpint(q.pid, ==, 0);      /* reaped */
    vmm_sim_free(sim);
    g_unlink(log);
    g_rmdir(dir);
}

static void test_exits(void)
{
    start_dead("/bin/false", "exited with status 1");
}

static void test_no_such_program(void)
{
    /* the child's execv fails: it exits 127 */
    start_dead("/nonexistent/qemu-system-aarch64", "exited with status 127");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qemu-launch/exits-before-connecting", test_exits);
    g_test_add_func("/qemu-launch/no-such-program", test_no_such_program);
    return g_test_run();
}
