/*
 * The demo as a soak: its workloads in rounds, faults injected between
 * them, QEMU's resources sampled every second.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_DEMO_SOAK_H
#define VMM_SIM_DEMO_SOAK_H

#include <stdbool.h>
#include <sys/types.h>

#include "demo-vmm.h"
#include "demo-workloads.h"

typedef struct DemoSoak {
    unsigned seconds;           /* how long the rounds go on */
    DemoVmm *vmm;               /* QEMU: sampled, its QMP counters read */
    const char *out_dir;        /* samples.tsv, soak.md, soak.png; or NULL */
    uint32_t seed;              /* of the doorbell faults; 0: a new one */
} DemoSoak;

/*
 * Run the demo's five workloads and the soak's own (a verified random
 * block write, iperf3, 9P churn) over and over for soak->seconds, with
 * doorbell faults at random moments throughout (dropped, duplicated,
 * delayed, ignored; seeded) and a fault after each round (a doorbell
 * storm, a burst of hostile ring entries, devevt held full; in a soak of
 * 30 s or more, a VMM restart now and then: soak->vmm is stopped and
 * started again, QEMU with it), sampling QEMU's RSS, open fds and threads
 * every second.  Prints the rounds, the samples and the checks; true when
 * every round was ok, no block failed its verify, no reply was lost,
 * every fault was injected and shows in the counters, QEMU exited on each
 * restart and the new one served every device and read the old one's
 * data back, and no QEMU grew after warm-up.
 */
bool demo_soak(DemoGuest *g, const DemoSoak *soak);

#endif
