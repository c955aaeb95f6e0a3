/*
 * The simulated guest's virtio-rng driver (see virtio-rng.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "virtio-rng.h"

#define RNG_TIMEOUT_MS  5000

bool virtio_rng_init(VirtioRng *r, VmmSim *sim, GuestAlloc *mem,
                     unsigned index, uint64_t *mmio_next, unsigned spi_base,
                     bool use_msix, GError **errp)
{
    memset(r, 0, sizeof(*r));
    r->buf_gpa = guest_alloc(mem, VIRTIO_RNG_BUF, 64);
    if (!r->buf_gpa) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "virtio-rng: no guest RAM for the buffer");
        return false;
    }
    return virtio_pci_probe(&r->pci, sim, mem, index, mmio_next, errp) &&
           virtio_pci_negotiate(&r->pci, UINT64_C(1) << VIRTIO_F_EVENT_IDX,
                                errp) &&
           virtio_pci_setup_irqs(&r->pci, spi_base, use_msix, errp) &&
           virtio_pci_setup_queue(&r->pci, &r->vq, 0, 64, errp) &&
           virtio_pci_driver_ok(&r->pci, errp);
}

bool virtio_rng_read(VirtioRng *r, void *buf, size_t len, GError **errp)
{
    uint8_t *out = buf;

    while (len) {
        VirtqBuf b = {
            .gpa = r->buf_gpa,
            .len = MIN(len, VIRTIO_RNG_BUF),
            .device_writes = true,
        };
        uint32_t got = 0;

        if (virtq_add(&r->vq, &b, 1, r, false) < 0 ||
            !virtio_pci_kick(&r->pci, &r->vq, errp) ||
            !virtio_pci_wait_used(&r->pci, &r->vq, &got, RNG_TIMEOUT_MS,
                                  errp)) {
            return false;
        }
        /* the device may give fewer bytes than asked, never more */
        got = MIN(got, b.len);
        memcpy(out, guest_ptr(r->pci.mem, r->buf_gpa, got), got);
        out += got;
        len -= got;
    }
    return true;
}
