/*
 * The simulated VMM and a QEMU attached to it (see vmm-qemu-rig.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "vmm-qemu-rig.h"
#include "qemu-harness.h"

bool e2e_vmm_qemu_up(const char *dir, const char *accel_opts,
                     const char *const *args, VmmSim **sim, VmmSimQemu *q)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *sock = g_build_filename(dir, "vmm.sock", NULL);
    VmmSimConfig cfg = { .socket_path = sock };

    *sim = vmm_sim_new(&cfg, &err);
    if (!*sim) {
        ok(false, "simulated VMM: %s", err->message);
        return false;
    }
    *q = (VmmSimQemu) {
        .qemu = qemu, .accel_opts = accel_opts, .args = args,
        .qmp = g_build_filename(dir, "qmp.sock", NULL),
        .log = g_build_filename(dir, "qemu.log", NULL),
    };
    if (!vmm_sim_qemu_start(q, *sim, E2E_START_TIMEOUT_MS, &err)) {
        ok(false, "QEMU start (%s): %s", accel_opts, err->message);
        return false;
    }
    return true;
}
