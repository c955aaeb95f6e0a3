/*
 * The simulated seL4 VMM: events from the device side (devevt) and the
 * interrupt state they drive.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every field comes from another domain: each event is checked, and a bad
 * one is counted in VmmSimStats.protocol_errors (plus a reason counter),
 * never acted on, never fatal.
 */
#include "vmm-sim-int.h"

/* PCI_DEVFN(slot, 0) on bus 0: the VMM's own choice, slot n + 1. */
static unsigned choose_devfn(unsigned index)
{
    return (index + 1) << 3;
}

/* qemu-arm-virt's swizzle of INTA over four shared lines. */
static uint8_t intx_line_of(unsigned devfn)
{
    return VMM_SIM_DEFAULT_INTX_BASE + ((devfn >> 3) & 3);
}

static void register_pci_dev(VmmSim *sim, const rpcmsg_t *msg)
{
    uint64_t index = msg->mr1;
    VmmSimPciDev *dev;

    if (sim->started || index >= RPC_MAX_PCIDEV ||
        sim->ndevs >= RPC_MAX_PCIDEV || sim->dev_by_index[index] >= 0) {
        /* late (after START_VM), out of range, too many, or a duplicate */
        sim->stats.protocol_errors++;
        sim->stats.bad_registrations++;
        return;
    }
    dev = &sim->devs[sim->ndevs];
    dev->index = index;
    dev->devfn = choose_devfn(index);
    dev->intx_line = intx_line_of(dev->devfn);
    sim->intx_line[index] = dev->intx_line;
    sim->dev_by_index[index] = sim->ndevs++;
}

static void notify_irq(VmmSim *sim, unsigned irq, unsigned op)
{
    if (sim->cfg.irq_fn) {
        sim->cfg.irq_fn(sim->cfg.irq_opaque, irq, op);
    }
}

static void set_irq(VmmSim *sim, uint64_t irq, uint64_t op)
{
    bool *level;

    if (irq >= VMM_SIM_MAX_IRQ || op > RPC_IRQ_PULSE ||
        (irq < RPC_MAX_PCIDEV && sim->dev_by_index[irq] < 0)) {
        sim->stats.protocol_errors++;
        sim->stats.bad_irqs++;
        return;
    }
    level = &sim->irq_level[irq];
    if (vmm_sim_is_msi_spi(sim, irq)) {
        /*
         * An MSI is an edge: the deployed QEMU sends SET then CLEAR, ours
         * one PULSE.  Count the rising edges; the level stays low.
         */
        bool edge = op == RPC_IRQ_PULSE || (op == RPC_IRQ_SET && !*level);

        if (edge) {
            sim->irq_count[irq]++;
        }
        *level = op == RPC_IRQ_SET;
        if (edge) {
            notify_irq(sim, irq, RPC_IRQ_PULSE);
        }
        return;
    }
    switch (op) {
    case RPC_IRQ_CLR:
        *level = false;
        break;
    case RPC_IRQ_SET:
        if (!*level) {
            sim->irq_count[irq]++;
        }
        *level = true;
        break;
    case RPC_IRQ_PULSE:
        sim->irq_count[irq]++;
        *level = false;
        break;
    }
    notify_irq(sim, irq, op);
}

static void mmio_region_config(VmmSim *sim, const rpcmsg_t *msg)
{
    uint64_t base = msg->mr1, size = msg->mr2, flags = msg->mr3;
    unsigned i;

    if (size == 0 || base + size < base || (flags & ~RPC_MMIO_REGION_FREE)) {
        sim->stats.protocol_errors++;
        return;
    }
    for (i = 0; i < sim->nregions; i++) {
        if (sim->mmio_regions[i].base == base &&
            sim->mmio_regions[i].size == size) {
            break;
        }
    }
    if (flags & RPC_MMIO_REGION_FREE) {
        if (i == sim->nregions) {
            sim->stats.protocol_errors++;       /* freeing what is not there */
            return;
        }
        sim->mmio_regions[i] = sim->mmio_regions[--sim->nregions];
        return;
    }
    if (i < sim->nregions) {
        return;                                 /* already forwarded */
    }
    if (sim->nregions >= VMM_SIM_MAX_REGIONS) {
        sim->stats.protocol_errors++;
        return;
    }
    sim->mmio_regions[sim->nregions].base = base;
    sim->mmio_regions[sim->nregions].size = size;
    sim->nregions++;
}

void vmm_sim_handle_event(VmmSim *sim, const rpcmsg_t *msg)
{
    /* For events mr0 holds only OP. */
    if (msg->mr0 >> RPC_MR0_OP_WIDTH) {
        sim->stats.protocol_errors++;
        return;
    }
    switch (msg->mr0) {
    case QEMU_OP_REGISTER_PCI_DEV:
        register_pci_dev(sim, msg);
        break;
    case QEMU_OP_START_VM:
        if (sim->started) {
            sim->stats.protocol_errors++;
        }
        sim->started = true;
        break;
    case QEMU_OP_SET_IRQ:
        set_irq(sim, msg->mr1, msg->mr2);
        break;
    case QEMU_OP_MMIO_REGION_CONFIG:
        mmio_region_config(sim, msg);
        break;
    default:
        sim->stats.protocol_errors++;
        sim->stats.unknown_ops++;
        break;
    }
}

/* ---- interrupt state ---- */

bool vmm_sim_is_msi_spi(const VmmSim *sim, unsigned irq)
{
    return irq >= sim->cfg.msi_spi_base &&
           irq - sim->cfg.msi_spi_base < sim->cfg.msi_spi_count;
}

bool vmm_sim_irq_level(const VmmSim *sim, unsigned irq)
{
    return irq < VMM_SIM_MAX_IRQ && sim->irq_level[irq];
}

uint64_t vmm_sim_irq_count(const VmmSim *sim, unsigned irq)
{
    return irq < VMM_SIM_MAX_IRQ ? sim->irq_count[irq] : 0;
}

bool vmm_sim_intx_pending(const VmmSim *sim)
{
    unsigned i;

    for (i = 0; i < RPC_MAX_PCIDEV; i++) {
        if (sim->irq_level[i]) {
            return true;
        }
    }
    return false;
}

typedef struct IrqWait {
    unsigned irq;
    uint64_t count;
    bool level;
} IrqWait;

static bool cond_irq_count(VmmSim *sim, void *opaque)
{
    IrqWait *w = opaque;

    return vmm_sim_irq_count(sim, w->irq) >= w->count;
}

static bool cond_irq_level(VmmSim *sim, void *opaque)
{
    IrqWait *w = opaque;

    return vmm_sim_irq_level(sim, w->irq) == w->level;
}

bool vmm_sim_wait_irq_count(VmmSim *sim, unsigned irq, uint64_t count,
                            int timeout_ms)
{
    IrqWait w = { .irq = irq, .count = count };

    return vmm_sim_wait_for(sim, cond_irq_count, &w, timeout_ms);
}

bool vmm_sim_wait_irq_level(VmmSim *sim, unsigned irq, bool level,
                            int timeout_ms)
{
    IrqWait w = { .irq = irq, .level = level };

    return vmm_sim_wait_for(sim, cond_irq_level, &w, timeout_ms);
}
