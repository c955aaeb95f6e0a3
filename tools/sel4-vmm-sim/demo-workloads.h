/*
 * The demo's workloads: one short job per device through the simulated
 * guest's drivers, each adding a row to the results table.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_DEMO_WORKLOADS_H
#define VMM_SIM_DEMO_WORKLOADS_H

#include <stdbool.h>
#include <glib.h>

#include "guest-alloc.h"
#include "sel4/vmm_sim.h"

/* Registration order of the demo's devices (AS_PCIDEV(n), INTx n). */
enum {
    DEMO_DEV_BLK,
    DEMO_DEV_NET,
    DEMO_DEV_RNG,
    DEMO_DEV_CONSOLE,
    DEMO_DEV_9P,
};

typedef struct DemoGuest {
    VmmSim *sim;
    GuestAlloc mem;
    uint64_t mmio_next;
    const char *workdir;
    GPtrArray *rows;            /* of DemoRow */
} DemoGuest;

typedef struct DemoRow {
    char *device;
    char *operation;
    bool ok;
    char *result;               /* a rate, or what went wrong */
} DemoRow;

/* the virtserialport's name */
#define DEMO_CONSOLE_PORT   "org.sel4.demo.0"

/* MSI-X SPIs of device @n: this one (config) and the next (queues). */
unsigned demo_spi_base(const DemoGuest *g, unsigned n);

void demo_row(DemoGuest *g, const char *device, const char *operation,
              bool ok, const char *fmt, ...) G_GNUC_PRINTF(5, 6);
/* Free an array of DemoRow (g->rows). */
void demo_rows_free(GPtrArray *rows);
/* Print the table; true when every row is ok. */
bool demo_print_table(const DemoGuest *g);

/* Undo host-side set-up (namespaces, taps); safe to call at any time. */
void demo_cleanup(void);

void demo_blk(DemoGuest *g);
/*
 * Before QEMU starts: network namespaces A and B, our tap in A (a failure
 * shows in demo_net()'s row).  Returns QEMU's -netdev value: a tap with
 * @id, which demo_net() moves to B.
 */
char *demo_net_prepare(const char *id);
/* virtio-net up; pings and a TCP echo from A to B through the guest */
void demo_net(DemoGuest *g);
/* iperf3 from A to B through the guest (the soak's) */
void demo_net_iperf3(DemoGuest *g);
void demo_rng(DemoGuest *g);
/* QEMU's -chardev value for the console port, a socket in @dir. */
char *demo_console_prepare(const char *dir, const char *id);
/* The port opened on both sides; a 64 KiB echo through the host. */
void demo_console(DemoGuest *g);
/* Files for the 9p share in @share (false: could not write them). */
bool demo_9p_prepare(const char *share);
/* Attach, list the share's root and read its files through 9P. */
void demo_9p(DemoGuest *g);

#endif
