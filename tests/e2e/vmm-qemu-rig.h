/*
 * What the end-to-end tests that drive a device through the simulated
 * guest share: the simulated VMM and a QEMU attached to it.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_E2E_VMM_QEMU_RIG_H
#define TESTS_E2E_VMM_QEMU_RIG_H

#include <stdbool.h>

#include "sel4/vmm_sim.h"
#include "qemu-launch.h"

#define E2E_START_TIMEOUT_MS    20000

/*
 * The simulated VMM on @dir/vmm.sock and the harness's QEMU started on it
 * with -accel sel4,...,@accel_opts and @args (its QMP socket and log in
 * @dir), up to START_VM.  False, after a failed TAP line saying which
 * did not come up, otherwise; *@sim and *@q are to be freed either way
 * (vmm_sim_free(), the caller's QEMU stop).
 */
bool e2e_vmm_qemu_up(const char *dir, const char *accel_opts,
                     const char *const *args, VmmSim **sim, VmmSimQemu *q);

#endif
