/*
 * The simulated guest's virtio-pci modern transport driver (virtio 1.x,
 * section 4.1): what a guest kernel does to a virtio-pci function, with
 * every config and BAR access going through the VMM's RPC path.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Bring-up, in order: virtio_pci_probe() (capabilities, BARs, reset,
 * ACKNOWLEDGE|DRIVER), virtio_pci_negotiate() (FEATURES_OK),
 * virtio_pci_setup_irqs() (MSI-X vectors aimed at the VMM's GICv2m frame,
 * or INTx), virtio_pci_setup_queue() per queue, virtio_pci_driver_ok().
 * Interrupts: MSI-X vector 0 is the config interrupt, vector 1 every
 * queue's; each is one SPI of the VMM's GICv2m range.  Without MSI-X the
 * device's INTx (its registration index) is used and the ISR read
 * acknowledges it.
 */
#ifndef VMM_SIM_VIRTIO_PCI_H
#define VMM_SIM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "guest-alloc.h"
#include "virtqueue.h"
#include "sel4/vmm_sim.h"

#define VIRTIO_F_INDIRECT_DESC      28
#define VIRTIO_F_EVENT_IDX          29
#define VIRTIO_F_VERSION_1          32

#define VIRTIO_STATUS_ACKNOWLEDGE   1
#define VIRTIO_STATUS_DRIVER        2
#define VIRTIO_STATUS_DRIVER_OK     4
#define VIRTIO_STATUS_FEATURES_OK   8
#define VIRTIO_STATUS_FAILED        0x80

#define VIRTIO_PCI_MAX_QUEUES       8

typedef struct VirtioPci {
    VmmSim *sim;
    GuestAlloc *mem;
    unsigned index;             /* AS_PCIDEV(n); also INTx n */
    uint16_t device_id;         /* 0x1040 + virtio device type */
    uint64_t bar[6];            /* guest-physical, as we programmed them */
    uint64_t common, isr, device_cfg, notify;   /* guest-physical */
    uint32_t notify_mult;
    unsigned msix_cap;          /* 0: no MSI-X */
    uint64_t msix_table, msix_pba;  /* guest-physical, once set up */
    uint64_t features;          /* negotiated */
    bool msix;                  /* vectors in use (else INTx) */
    unsigned spi_config, spi_queues;
    uint64_t irqs_seen;         /* queue interrupts consumed */
    uint16_t num_queues;
    uint16_t notify_off[VIRTIO_PCI_MAX_QUEUES];
} VirtioPci;

/*
 * Find the capabilities of registered device @index, give its BARs
 * addresses from *@mmio_next (PCI window, advanced), enable memory and
 * bus mastering, reset it and set ACKNOWLEDGE|DRIVER.
 */
bool virtio_pci_probe(VirtioPci *d, VmmSim *sim, GuestAlloc *mem,
                      unsigned index, uint64_t *mmio_next, GError **errp);
/* Accept what the device offers of @wanted, plus VERSION_1; FEATURES_OK. */
bool virtio_pci_negotiate(VirtioPci *d, uint64_t wanted, GError **errp);
/*
 * MSI-X vectors 0 (config) and 1 (queues) -> SPIs @spi_base and
 * @spi_base + 1 of the GICv2m frame; INTx when @use_msix is false or the
 * device has no MSI-X.
 */
bool virtio_pci_setup_irqs(VirtioPci *d, unsigned spi_base, bool use_msix,
                           GError **errp);
/*
 * MSI-X by hand, for tests of the device's interrupt routes (the entries
 * of virtio_pci_setup_irqs()): mask or unmask vector @vec (its vector
 * control word), aim it at @spi (address and data; the mask is left as
 * it is), read its pending bit, and put queue @q on vector @vec (after
 * DRIVER_OK too, as a guest may).
 */
bool virtio_pci_msix_mask(VirtioPci *d, unsigned vec, bool masked,
                          GError **errp);
bool virtio_pci_msix_route(VirtioPci *d, unsigned vec, unsigned spi,
                           GError **errp);
bool virtio_pci_msix_pending(VirtioPci *d, unsigned vec, bool *pending,
                             GError **errp);
bool virtio_pci_queue_vector(VirtioPci *d, unsigned q, unsigned vec,
                             GError **errp);

/* Queue @index with at most @max_size entries, on vector 1. */
bool virtio_pci_setup_queue(VirtioPci *d, Virtq *vq, unsigned index,
                            uint16_t max_size, GError **errp);
bool virtio_pci_driver_ok(VirtioPci *d, GError **errp);
/* Reset the device (status 0): it forgets its queues. */
bool virtio_pci_reset(VirtioPci *d, GError **errp);

static inline bool virtio_pci_has(const VirtioPci *d, unsigned feature)
{
    return d->features & (UINT64_C(1) << feature);
}

/* Notify the device of @vq's new requests if it wants to be (MMIO). */
bool virtio_pci_kick(VirtioPci *d, Virtq *vq, GError **errp);
/* The guest-physical address a notify of @vq is written to (2 bytes). */
uint64_t virtio_pci_notify_addr(const VirtioPci *d, const Virtq *vq);
/*
 * Wait up to @timeout_ms for a queue interrupt not seen yet (MSI pulse,
 * or INTx, acknowledged by reading the ISR).  False on timeout.
 */
bool virtio_pci_wait(VirtioPci *d, int timeout_ms, GError **errp);

/*
 * The next completed request of @vq (its token), waiting for interrupts
 * up to @timeout_ms; NULL with @errp set on timeout.
 */
void *virtio_pci_wait_used(VirtioPci *d, Virtq *vq, uint32_t *len,
                           int timeout_ms, GError **errp);

/* Device-specific config space (virtio 1.x 4.1.4.6). */
bool virtio_pci_config_read(VirtioPci *d, unsigned off, unsigned len,
                            uint64_t *val, GError **errp);

/* Its common config (offsets of virtio 1.x 4.1.4.3), for tests. */
bool virtio_pci_common_read(VirtioPci *d, unsigned off, unsigned len,
                            uint64_t *val, GError **errp);
bool virtio_pci_common_write(VirtioPci *d, unsigned off, unsigned len,
                             uint64_t val, GError **errp);

#endif /* VMM_SIM_VIRTIO_PCI_H */
