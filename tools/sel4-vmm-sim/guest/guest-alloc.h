/*
 * Guest RAM for the simulated guest's drivers: a bump allocator over the
 * simulated VMM's RAM memfd, which QEMU maps as the guest's RAM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Drivers allocate their rings and buffers once, at set-up, and keep them:
 * there is no free().  guest_ptr() turns a guest-physical range into a
 * host pointer, refusing anything outside RAM.
 */
#ifndef VMM_SIM_GUEST_ALLOC_H
#define VMM_SIM_GUEST_ALLOC_H

#include <stdint.h>

#include "sel4/vmm_sim.h"

typedef struct GuestAlloc {
    VmmSim *sim;
    uint64_t next;              /* next free guest-physical address */
    uint64_t end;
} GuestAlloc;

/* Hand out guest RAM [@base, @base + @size). */
void guest_alloc_init(GuestAlloc *ga, VmmSim *sim, uint64_t base,
                      uint64_t size);
/* @size bytes aligned to @align (a power of 2), zeroed; 0 when full. */
uint64_t guest_alloc(GuestAlloc *ga, uint64_t size, uint64_t align);
/* Host pointer of [@gpa, @gpa + @len), or NULL outside guest RAM. */
void *guest_ptr(const GuestAlloc *ga, uint64_t gpa, uint64_t len);

#endif /* VMM_SIM_GUEST_ALLOC_H */
