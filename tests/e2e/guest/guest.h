/*
 * The end-to-end test of the simulated guest's drivers: what each
 * device's part (tests/e2e/guest/<device>.c) gets and provides.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Devices, in registration order (AS_PCIDEV(n), INTx n, MSI-X SPIs
 * msi_spi_base + 2n and + 2n + 1):
 *   0 virtio-blk   guest/blk.c
 *   1 virtio-net   guest/net.c
 *   2 virtio-rng   guest/rng.c
 *   3 virtio-serial guest/console.c
 *   4 virtio-9p    guest/9p.c
 * Each part adds its device (and backends) to QEMU's command line, in this
 * order, and runs its checks with ok() (qemu-harness.h) once QEMU runs.
 */
#ifndef TESTS_E2E_GUEST_H
#define TESTS_E2E_GUEST_H

#include <stdbool.h>
#include <glib.h>

#include "sel4/vmm_sim.h"
#include "guest-alloc.h"

enum {
    GUEST_DEV_BLK,
    GUEST_DEV_NET,
    GUEST_DEV_RNG,
    GUEST_DEV_CONSOLE,
    GUEST_DEV_9P,
};

#define GUEST_TIMEOUT_MS    20000

typedef struct Guest {
    VmmSim *sim;
    GuestAlloc mem;             /* the drivers' rings and buffers */
    uint64_t mmio_next;         /* next free address in the PCI window */
    bool use_msix;              /* else INTx */
    const char *tmpdir;         /* the test's scratch directory */
    const char *qemu;           /* qemu-system-aarch64 (qemu-img is beside) */
    const char *dlog;           /* QEMU's -d guest_errors log (-D) */
} Guest;

/* The first MSI-X SPI of device @n (it uses this one and the next). */
unsigned guest_spi_base(const Guest *g, unsigned n);

/*
 * Each part: add the device's QEMU arguments to @argv (before QEMU
 * starts; may set up host-side things such as files or taps in
 * g->tmpdir), run the checks, and undo the host-side set-up (also after
 * a failure; g->sim may then be NULL).
 */
void guest_blk_args(GPtrArray *argv, Guest *g);
void guest_blk_test(Guest *g);
/* after QEMU exited: the image checked from outside */
void guest_blk_after_exit(Guest *g);
void guest_blk_cleanup(Guest *g);
void guest_net_args(GPtrArray *argv, Guest *g);
void guest_net_test(Guest *g);
void guest_net_cleanup(Guest *g);
void guest_rng_args(GPtrArray *argv, Guest *g);
void guest_rng_test(Guest *g);
void guest_console_args(GPtrArray *argv, Guest *g);
void guest_console_test(Guest *g);
void guest_console_cleanup(Guest *g);
void guest_9p_args(GPtrArray *argv, Guest *g);
void guest_9p_test(Guest *g);

/* Append a NULL-terminated list of strings to @argv (copies). */
void guest_args(GPtrArray *argv, ...) G_GNUC_NULL_TERMINATED;

#endif
