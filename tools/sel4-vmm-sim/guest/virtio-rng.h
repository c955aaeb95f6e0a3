/*
 * The simulated guest's virtio-rng driver (virtio 1.x, section 5.4).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VMM_SIM_VIRTIO_RNG_H
#define VMM_SIM_VIRTIO_RNG_H

#include "virtio-pci.h"

typedef struct VirtioRng {
    VirtioPci pci;
    Virtq vq;                   /* requestq */
    uint64_t buf_gpa;           /* VIRTIO_RNG_BUF bytes */
} VirtioRng;

#define VIRTIO_RNG_BUF  4096u

/* Bring up registered device @index (a virtio-rng-pci). */
bool virtio_rng_init(VirtioRng *r, VmmSim *sim, GuestAlloc *mem,
                     unsigned index, uint64_t *mmio_next, unsigned spi_base,
                     bool use_msix, GError **errp);
/* Fill @buf with @len random bytes (several requests if needed). */
bool virtio_rng_read(VirtioRng *r, void *buf, size_t len, GError **errp);

#endif
