/*
 * Guest RAM for the simulated guest's drivers (see guest-alloc.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "guest-alloc.h"

void guest_alloc_init(GuestAlloc *ga, VmmSim *sim, uint64_t base,
                      uint64_t size)
{
    ga->sim = sim;
    ga->next = base;
    ga->end = base + size;
}

uint64_t guest_alloc(GuestAlloc *ga, uint64_t size, uint64_t align)
{
    uint64_t gpa = (ga->next + align - 1) & ~(align - 1);
    void *p;

    if (gpa < ga->next || gpa > ga->end || size > ga->end - gpa) {
        return 0;
    }
    p = guest_ptr(ga, gpa, size);
    if (!p) {
        return 0;
    }
    memset(p, 0, size);
    ga->next = gpa + size;
    return gpa;
}

void *guest_ptr(const GuestAlloc *ga, uint64_t gpa, uint64_t len)
{
    return vmm_sim_gpa_to_host(ga->sim, gpa, len);
}
