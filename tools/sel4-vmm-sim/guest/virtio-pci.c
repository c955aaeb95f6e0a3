/*
 * The simulated guest's virtio-pci modern transport driver
 * (see virtio-pci.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <string.h>

#include "virtio-pci.h"

/* PCI config space */
#define PCI_COMMAND             0x04
#define PCI_COMMAND_MEMORY      0x2
#define PCI_COMMAND_MASTER      0x4
#define PCI_BAR0                0x10
#define PCI_CAP_PTR             0x34
#define PCI_CAP_ID_MSIX         0x11
#define PCI_CAP_ID_VNDR         0x09

/* virtio_pci_cap (virtio 1.x 4.1.4) */
#define VIRTIO_PCI_CAP_COMMON   1
#define VIRTIO_PCI_CAP_NOTIFY   2
#define VIRTIO_PCI_CAP_ISR      3
#define VIRTIO_PCI_CAP_DEVICE   4

/* common config (virtio 1.x 4.1.4.3) */
#define CC_DFSELECT     0x00
#define CC_DF           0x04
#define CC_GFSELECT     0x08
#define CC_GF           0x0c
#define CC_MSIX_CONFIG  0x10
#define CC_NUM_QUEUES   0x12
#define CC_STATUS       0x14
#define CC_Q_SELECT     0x16
#define CC_Q_SIZE       0x18
#define CC_Q_MSIX       0x1a
#define CC_Q_ENABLE     0x1c
#define CC_Q_NOFF       0x1e
#define CC_Q_DESC       0x20
#define CC_Q_AVAIL      0x28
#define CC_Q_USED       0x30

#define VIRTIO_NO_VECTOR 0xffff
/* a found structure before its BAR has an address: marker | BAR | offset */
#define CAP_FOUND       (UINT64_C(1) << 63)
#define CAP_OFFSET_MASK ((UINT64_C(1) << 56) - 1)
#define VCPU_SLOT       0           /* our accesses come from vCPU 0 */

static bool cfg_rd(VirtioPci *d, unsigned off, unsigned len, uint64_t *v,
                   GError **errp)
{
    return vmm_sim_config_read(d->sim, d->index, off, len, v, errp);
}

static bool cfg_wr(VirtioPci *d, unsigned off, unsigned len, uint64_t v,
                   GError **errp)
{
    return vmm_sim_config_write(d->sim, d->index, off, len, v, errp);
}

bool virtio_pci_common_read(VirtioPci *d, unsigned off, unsigned len,
                            uint64_t *val, GError **errp)
{
    return vmm_sim_mmio_read(d->sim, VCPU_SLOT, AS_GLOBAL, d->common + off,
                             len, val, errp);
}

bool virtio_pci_common_write(VirtioPci *d, unsigned off, unsigned len,
                             uint64_t val, GError **errp)
{
    return vmm_sim_mmio_write(d->sim, VCPU_SLOT, AS_GLOBAL, d->common + off,
                              len, val, errp);
}

/* A 64-bit field as two 32-bit writes, low first, as Linux does. */
static bool common_write64(VirtioPci *d, unsigned off, uint64_t val,
                           GError **errp)
{
    return virtio_pci_common_write(d, off, 4, val & 0xffffffff, errp) &&
           virtio_pci_common_write(d, off + 4, 4, val >> 32, errp);
}

static bool fail(GError **errp, VirtioPci *d, const char *what)
{
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                "virtio-pci device %u (0x%04x): %s", d->index, d->device_id,
                what);
    return false;
}

/* ---- probe ---- */

/* Size BAR @i (and its upper half); returns the size, 0 when unused. */
static uint64_t bar_size(VirtioPci *d, unsigned i, bool *is64,
                         GError **errp)
{
    unsigned off = PCI_BAR0 + 4 * i;
    uint64_t lo = 0, hi = 0, orig;

    if (!cfg_rd(d, off, 4, &orig, errp) ||
        !cfg_wr(d, off, 4, 0xffffffff, errp) ||
        !cfg_rd(d, off, 4, &lo, errp)) {
        return 0;
    }
    *is64 = !(lo & 1) && ((lo >> 1) & 3) == 2;
    if (*is64 &&
        (!cfg_wr(d, off + 4, 4, 0xffffffff, errp) ||
         !cfg_rd(d, off + 4, 4, &hi, errp))) {
        return 0;
    }
    if ((lo & 1) || !(lo & ~UINT64_C(0xf))) {
        return 0;               /* I/O BARs are not used by modern virtio */
    }
    return (~(((hi << 32) | lo) & ~UINT64_C(0xf)) + 1) &
           (*is64 ? UINT64_MAX : 0xffffffff);
}

static bool assign_bar(VirtioPci *d, unsigned i, uint64_t *mmio_next,
                       GError **errp)
{
    unsigned off = PCI_BAR0 + 4 * i;
    bool is64 = false;
    uint64_t size = bar_size(d, i, &is64, errp), base;

    if (!size) {
        return errp && *errp ? false : fail(errp, d, "a capability points "
                                            "at an unused BAR");
    }
    base = (*mmio_next + size - 1) & ~(size - 1);
    *mmio_next = base + size;
    d->bar[i] = base;
    return cfg_wr(d, off, 4, base & 0xffffffff, errp) &&
           (!is64 || cfg_wr(d, off + 4, 4, base >> 32, errp));
}

/* Walk the capability list: the virtio structures and MSI-X. */
static bool find_caps(VirtioPci *d, uint32_t *bars_used, GError **errp)
{
    uint64_t ptr = 0, hdr, type, bar, offset, mult, tbl;
    int guard = 48;

    if (!cfg_rd(d, PCI_CAP_PTR, 1, &ptr, errp)) {
        return false;
    }
    for (ptr &= 0xfc; ptr && guard-- > 0; ptr = (hdr >> 8) & 0xfc) {
        if (!cfg_rd(d, ptr, 2, &hdr, errp)) {
            return false;
        }
        if ((hdr & 0xff) == PCI_CAP_ID_MSIX) {
            if (!cfg_rd(d, ptr + 4, 4, &tbl, errp)) {
                return false;
            }
            d->msix_cap = ptr;
            *bars_used |= 1u << (tbl & 7);
            continue;
        }
        if ((hdr & 0xff) != PCI_CAP_ID_VNDR) {
            continue;
        }
        if (!cfg_rd(d, ptr + 3, 1, &type, errp) ||
            !cfg_rd(d, ptr + 4, 1, &bar, errp) ||
            !cfg_rd(d, ptr + 8, 4, &offset, errp)) {
            return false;
        }
        if (bar > 5 || type < VIRTIO_PCI_CAP_COMMON ||
            type > VIRTIO_PCI_CAP_DEVICE) {
            continue;
        }
        *bars_used |= 1u << bar;
        /* remember BAR index and offset; addresses once BARs are set */
        switch (type) {
        case VIRTIO_PCI_CAP_COMMON:
            d->common = CAP_FOUND | bar << 56 | offset;
            break;
        case VIRTIO_PCI_CAP_ISR:
            d->isr = CAP_FOUND | bar << 56 | offset;
            break;
        case VIRTIO_PCI_CAP_DEVICE:
            d->device_cfg = CAP_FOUND | bar << 56 | offset;
            break;
        case VIRTIO_PCI_CAP_NOTIFY:
            if (!cfg_rd(d, ptr + 16, 4, &mult, errp)) {
                return false;
            }
            d->notify = CAP_FOUND | bar << 56 | offset;
            d->notify_mult = mult;
            break;
        }
    }
    if (!d->common || !d->isr || !d->notify) {
        return fail(errp, d, "no common, ISR or notify capability");
    }
    return true;
}

/* CAP_FOUND | BAR index << 56 | offset -> guest-physical address */
static uint64_t resolve(const VirtioPci *d, uint64_t where)
{
    return where ? d->bar[(where >> 56) & 7] + (where & CAP_OFFSET_MASK) : 0;
}

bool virtio_pci_probe(VirtioPci *d, VmmSim *sim, GuestAlloc *mem,
                      unsigned index, uint64_t *mmio_next, GError **errp)
{
    uint32_t bars_used = 0;
    uint64_t id = 0, cmd = 0, nq = 0;
    unsigned i;

    memset(d, 0, sizeof(*d));
    d->sim = sim;
    d->mem = mem;
    d->index = index;
    if (!cfg_rd(d, 0x02, 2, &id, errp)) {
        return false;
    }
    d->device_id = id;
    if (id < 0x1041 || id > 0x107f) {
        return fail(errp, d, "not a modern virtio device");
    }
    if (!find_caps(d, &bars_used, errp)) {
        return false;
    }
    for (i = 0; i < 6; i++) {
        if ((bars_used & (1u << i)) && !assign_bar(d, i, mmio_next, errp)) {
            return false;
        }
    }
    d->common = resolve(d, d->common);
    d->isr = resolve(d, d->isr);
    d->notify = resolve(d, d->notify);
    d->device_cfg = resolve(d, d->device_cfg);
    if (!cfg_rd(d, PCI_COMMAND, 2, &cmd, errp) ||
        !cfg_wr(d, PCI_COMMAND, 2,
                cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, errp) ||
        !virtio_pci_reset(d, errp) ||
        !virtio_pci_common_write(d, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE,
                                 errp) ||
        !virtio_pci_common_write(d, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE |
                                 VIRTIO_STATUS_DRIVER, errp) ||
        !virtio_pci_common_read(d, CC_NUM_QUEUES, 2, &nq, errp)) {
        return false;
    }
    d->num_queues = nq;
    return true;
}

bool virtio_pci_reset(VirtioPci *d, GError **errp)
{
    uint64_t status = 1;

    /* the device says it is done resetting by reading 0 back */
    for (int i = 0; i < 100 && status; i++) {
        if (!virtio_pci_common_write(d, CC_STATUS, 1, 0, errp) ||
            !virtio_pci_common_read(d, CC_STATUS, 1, &status, errp)) {
            return false;
        }
    }
    d->irqs_seen = 0;
    return status == 0 ? true : fail(errp, d, "reset did not complete");
}

/* ---- features ---- */

bool virtio_pci_negotiate(VirtioPci *d, uint64_t wanted, GError **errp)
{
    uint64_t lo = 0, hi = 0, status = 0, offered;

    if (!virtio_pci_common_write(d, CC_DFSELECT, 4, 0, errp) ||
        !virtio_pci_common_read(d, CC_DF, 4, &lo, errp) ||
        !virtio_pci_common_write(d, CC_DFSELECT, 4, 1, errp) ||
        !virtio_pci_common_read(d, CC_DF, 4, &hi, errp)) {
        return false;
    }
    offered = hi << 32 | lo;
    if (!(offered & (UINT64_C(1) << VIRTIO_F_VERSION_1))) {
        return fail(errp, d, "the device does not offer VIRTIO_F_VERSION_1");
    }
    d->features = offered & (wanted | UINT64_C(1) << VIRTIO_F_VERSION_1);
    if (!virtio_pci_common_write(d, CC_GFSELECT, 4, 0, errp) ||
        !virtio_pci_common_write(d, CC_GF, 4, d->features & 0xffffffff,
                                 errp) ||
        !virtio_pci_common_write(d, CC_GFSELECT, 4, 1, errp) ||
        !virtio_pci_common_write(d, CC_GF, 4, d->features >> 32, errp) ||
        !virtio_pci_common_write(d, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE |
                                 VIRTIO_STATUS_DRIVER |
                                 VIRTIO_STATUS_FEATURES_OK, errp) ||
        !virtio_pci_common_read(d, CC_STATUS, 1, &status, errp)) {
        return false;
    }
    if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
        return fail(errp, d, "the device refused our features");
    }
    return true;
}

/* ---- interrupts ---- */

/* MSI-X table entry @vec: message address and data (the SPI) */
static bool msix_aim(VirtioPci *d, uint64_t table, unsigned vec,
                     unsigned spi, GError **errp)
{
    const VmmSimConfig *cfg = vmm_sim_config(d->sim);
    uint64_t e = table + 16 * vec;

    return vmm_sim_mmio_write(d->sim, VCPU_SLOT, AS_GLOBAL, e + 0, 4,
                              (cfg->gicv2m_base + VMM_SIM_GICV2M_SETSPI) &
                              0xffffffff, errp) &&
           vmm_sim_mmio_write(d->sim, VCPU_SLOT, AS_GLOBAL, e + 4, 4,
                              (cfg->gicv2m_base + VMM_SIM_GICV2M_SETSPI) >> 32,
                              errp) &&
           vmm_sim_mmio_write(d->sim, VCPU_SLOT, AS_GLOBAL, e + 8, 4, spi,
                              errp);
}

/* ... and its vector control word: bit 0 masks it */
static bool msix_control(VirtioPci *d, uint64_t table, unsigned vec,
                         bool masked, GError **errp)
{
    return vmm_sim_mmio_write(d->sim, VCPU_SLOT, AS_GLOBAL,
                              table + 16 * vec + 12, 4, masked, errp);
}

static bool msix_entry(VirtioPci *d, uint64_t table, unsigned vec,
                       unsigned spi, GError **errp)
{
    return msix_aim(d, table, vec, spi, errp) &&
           msix_control(d, table, vec, false, errp);
}

static bool msix_ready(VirtioPci *d, GError **errp)
{
    if (!d->msix) {
        return fail(errp, d, "MSI-X is not in use");
    }
    return true;
}

bool virtio_pci_msix_mask(VirtioPci *d, unsigned vec, bool masked,
                          GError **errp)
{
    return msix_ready(d, errp) &&
           msix_control(d, d->msix_table, vec, masked, errp);
}

bool virtio_pci_msix_route(VirtioPci *d, unsigned vec, unsigned spi,
                           GError **errp)
{
    return msix_ready(d, errp) && msix_aim(d, d->msix_table, vec, spi, errp);
}

bool virtio_pci_msix_pending(VirtioPci *d, unsigned vec, bool *pending,
                             GError **errp)
{
    uint64_t bits = 0;

    if (!msix_ready(d, errp) ||
        !vmm_sim_mmio_read(d->sim, VCPU_SLOT, AS_GLOBAL,
                           d->msix_pba + vec / 64 * 8, 8, &bits, errp)) {
        return false;
    }
    *pending = bits >> (vec % 64) & 1;
    return true;
}

bool virtio_pci_queue_vector(VirtioPci *d, unsigned q, unsigned vec,
                             GError **errp)
{
    uint64_t got = 0;

    if (!msix_ready(d, errp) ||
        !virtio_pci_common_write(d, CC_Q_SELECT, 2, q, errp) ||
        !virtio_pci_common_write(d, CC_Q_MSIX, 2, vec, errp) ||
        !virtio_pci_common_read(d, CC_Q_MSIX, 2, &got, errp)) {
        return false;
    }
    if (got != vec) {
        return fail(errp, d, "the device refused the queue's new vector");
    }
    return true;
}

bool virtio_pci_setup_irqs(VirtioPci *d, unsigned spi_base, bool use_msix,
                           GError **errp)
{
    uint64_t ctrl = 0, tbl = 0, pba = 0, vec = 0, table;

    d->msix = false;
    if (!use_msix || !d->msix_cap) {
        return true;            /* INTx n */
    }
    if (!cfg_rd(d, d->msix_cap + 2, 2, &ctrl, errp) ||
        !cfg_rd(d, d->msix_cap + 4, 4, &tbl, errp) ||
        !cfg_rd(d, d->msix_cap + 8, 4, &pba, errp)) {
        return false;
    }
    if ((ctrl & 0x7ff) + 1 < 2) {
        return true;            /* one vector: not worth it, use INTx */
    }
    table = d->bar[tbl & 7] + (tbl & ~UINT64_C(7));
    if (!msix_entry(d, table, 0, spi_base, errp) ||
        !msix_entry(d, table, 1, spi_base + 1, errp) ||
        !cfg_wr(d, d->msix_cap + 2, 2, ctrl | 0x8000, errp) ||
        !virtio_pci_common_write(d, CC_MSIX_CONFIG, 2, 0, errp) ||
        !virtio_pci_common_read(d, CC_MSIX_CONFIG, 2, &vec, errp)) {
        return false;
    }
    if (vec != 0) {
        return fail(errp, d, "the device refused MSI-X vector 0");
    }
    d->msix = true;
    d->msix_table = table;
    d->msix_pba = d->bar[pba & 7] + (pba & ~UINT64_C(7));
    d->spi_config = spi_base;
    d->spi_queues = spi_base + 1;
    d->irqs_seen = vmm_sim_irq_count(d->sim, d->spi_queues);
    return true;
}

/* ---- queues ---- */

bool virtio_pci_setup_queue(VirtioPci *d, Virtq *vq, unsigned index,
                            uint16_t max_size, GError **errp)
{
    uint64_t size = 0, vec = 0, noff = 0;

    if (index >= d->num_queues || index >= VIRTIO_PCI_MAX_QUEUES) {
        return fail(errp, d, "no such queue");
    }
    if (!virtio_pci_common_write(d, CC_Q_SELECT, 2, index, errp) ||
        !virtio_pci_common_read(d, CC_Q_SIZE, 2, &size, errp) ||
        !virtio_pci_common_read(d, CC_Q_NOFF, 2, &noff, errp)) {
        return false;
    }
    if (!size) {
        return fail(errp, d, "queue not available");
    }
    size = MIN(size, max_size);
    if (!virtq_init(vq, d->mem, index, size,
                    virtio_pci_has(d, VIRTIO_F_EVENT_IDX),
                    virtio_pci_has(d, VIRTIO_F_INDIRECT_DESC))) {
        return fail(errp, d, "no guest RAM for the queue");
    }
    if (!virtio_pci_common_write(d, CC_Q_SIZE, 2, size, errp) ||
        !common_write64(d, CC_Q_DESC, vq->desc_gpa, errp) ||
        !common_write64(d, CC_Q_AVAIL, vq->avail_gpa, errp) ||
        !common_write64(d, CC_Q_USED, vq->used_gpa, errp)) {
        return false;
    }
    if (d->msix &&
        (!virtio_pci_common_write(d, CC_Q_MSIX, 2, 1, errp) ||
         !virtio_pci_common_read(d, CC_Q_MSIX, 2, &vec, errp))) {
        return false;
    }
    if (d->msix && vec != 1) {
        return fail(errp, d, "the device refused MSI-X vector 1");
    }
    d->notify_off[index] = noff;
    return virtio_pci_common_write(d, CC_Q_ENABLE, 2, 1, errp);
}

bool virtio_pci_driver_ok(VirtioPci *d, GError **errp)
{
    return virtio_pci_common_write(d, CC_STATUS, 1,
                                   VIRTIO_STATUS_ACKNOWLEDGE |
                                   VIRTIO_STATUS_DRIVER |
                                   VIRTIO_STATUS_FEATURES_OK |
                                   VIRTIO_STATUS_DRIVER_OK, errp);
}

uint64_t virtio_pci_notify_addr(const VirtioPci *d, const Virtq *vq)
{
    return d->notify + (uint64_t)d->notify_off[vq->index] * d->notify_mult;
}

bool virtio_pci_kick(VirtioPci *d, Virtq *vq, GError **errp)
{
    if (!virtq_kick_prepare(vq)) {
        return true;
    }
    return vmm_sim_mmio_write(d->sim, VCPU_SLOT, AS_GLOBAL,
                              virtio_pci_notify_addr(d, vq), 2, vq->index,
                              errp);
}

bool virtio_pci_wait(VirtioPci *d, int timeout_ms, GError **errp)
{
    uint64_t isr = 0;

    if (d->msix) {
        if (!vmm_sim_wait_irq_count(d->sim, d->spi_queues, d->irqs_seen + 1,
                                    timeout_ms)) {
            return false;
        }
        d->irqs_seen = vmm_sim_irq_count(d->sim, d->spi_queues);
        return true;
    }
    if (!vmm_sim_wait_irq_level(d->sim, d->index, true, timeout_ms)) {
        return false;
    }
    /* reading the ISR acknowledges it and drops INTx */
    return vmm_sim_mmio_read(d->sim, VCPU_SLOT, AS_GLOBAL, d->isr, 1, &isr,
                             errp);
}

void *virtio_pci_wait_used(VirtioPci *d, Virtq *vq, uint32_t *len,
                           int timeout_ms, GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    void *token;

    while (!(token = virtq_get_used(vq, len))) {
        int left = (end - g_get_monotonic_time()) / 1000;

        if (left <= 0 || !virtio_pci_wait(d, left, errp)) {
            if (errp && !*errp) {
                g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                            "virtio-pci device %u queue %u: no completion "
                            "within %d ms", d->index, vq->index, timeout_ms);
            }
            return NULL;
        }
    }
    return token;
}

bool virtio_pci_config_read(VirtioPci *d, unsigned off, unsigned len,
                            uint64_t *val, GError **errp)
{
    if (!d->device_cfg) {
        return fail(errp, d, "no device config capability");
    }
    return vmm_sim_mmio_read(d->sim, VCPU_SLOT, AS_GLOBAL,
                             d->device_cfg + off, len, val, errp);
}
