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
#include <string.h>

#include "vmm_sim_int.h"

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

bool vmm_sim_parse_event(const rpcmsg_t *msg, VmmSimEvent *ev)
{
    memset(ev, 0, sizeof(*ev));
    /* For events mr0 holds only OP. */
    if (msg->mr0 >> RPC_MR0_OP_WIDTH) {
        ev->kind = VMM_SIM_EV_BAD;
        return false;
    }
    switch (msg->mr0) {
    case QEMU_OP_REGISTER_PCI_DEV:
        ev->kind = VMM_SIM_EV_REGISTER;
        ev->index = msg->mr1;
        return msg->mr1 < RPC_MAX_PCIDEV;
    case QEMU_OP_START_VM:
        ev->kind = VMM_SIM_EV_START;
        return true;
    case QEMU_OP_SET_IRQ:
        ev->kind = VMM_SIM_EV_SET_IRQ;
        ev->irq = msg->mr1;
        ev->level = msg->mr2;
        return msg->mr1 < VMM_SIM_MAX_IRQ && msg->mr2 <= RPC_IRQ_PULSE;
    case QEMU_OP_MMIO_REGION_CONFIG:
        ev->kind = VMM_SIM_EV_REGION;
        ev->base = msg->mr1;
        ev->size = msg->mr2;
        ev->free = msg->mr3 & RPC_MMIO_REGION_FREE;
        return msg->mr2 != 0 && msg->mr1 + msg->mr2 >= msg->mr1 &&
               !(msg->mr3 & ~(uint64_t)RPC_MMIO_REGION_FREE);
    default:
        ev->kind = VMM_SIM_EV_UNKNOWN;
        return false;
    }
}

static bool register_pci_dev(VmmSim *sim, unsigned index)
{
    VmmSimPciDev *dev;

    if (sim->started || sim->ndevs >= RPC_MAX_PCIDEV ||
        sim->dev_by_index[index] >= 0) {
        /* late (after START_VM), too many, or a duplicate */
        return false;
    }
    dev = &sim->devs[sim->ndevs];
    dev->index = index;
    dev->devfn = choose_devfn(index);
    dev->intx_line = intx_line_of(dev->devfn);
    sim->intx_line[index] = dev->intx_line;
    sim->dev_by_index[index] = sim->ndevs++;
    return true;
}

static void notify_irq(VmmSim *sim, unsigned irq, unsigned op)
{
    if (sim->cfg.irq_fn) {
        sim->cfg.irq_fn(sim->cfg.irq_opaque, irq, op);
    }
}

static bool set_irq(VmmSim *sim, unsigned irq, unsigned op)
{
    bool *level;

    if (irq < RPC_MAX_PCIDEV && sim->dev_by_index[irq] < 0) {
        return false;                           /* unregistered INTx */
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
        return true;
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
    return true;
}

static bool mmio_region_config(VmmSim *sim, const VmmSimEvent *ev)
{
    unsigned i;

    for (i = 0; i < sim->nregions; i++) {
        if (sim->mmio_regions[i].base == ev->base &&
            sim->mmio_regions[i].size == ev->size) {
            break;
        }
    }
    if (ev->free) {
        if (i == sim->nregions) {
            return false;                       /* freeing what is not there */
        }
        sim->mmio_regions[i] = sim->mmio_regions[--sim->nregions];
        return true;
    }
    if (i < sim->nregions) {
        return true;                            /* already forwarded */
    }
    if (sim->nregions >= VMM_SIM_MAX_REGIONS) {
        return false;
    }
    sim->mmio_regions[sim->nregions].base = ev->base;
    sim->mmio_regions[sim->nregions].size = ev->size;
    sim->nregions++;
    return true;
}

void vmm_sim_handle_event(VmmSim *sim, const rpcmsg_t *msg)
{
    VmmSimEvent ev;
    bool ok = vmm_sim_parse_event(msg, &ev);

    if (ok) {
        switch (ev.kind) {
        case VMM_SIM_EV_REGISTER:
            ok = register_pci_dev(sim, ev.index);
            break;
        case VMM_SIM_EV_START:
            ok = !sim->started;                 /* a second START_VM */
            sim->started = true;
            break;
        case VMM_SIM_EV_SET_IRQ:
            ok = set_irq(sim, ev.irq, ev.level);
            break;
        default:
            ok = mmio_region_config(sim, &ev);
            break;
        }
    }
    if (ok) {
        return;
    }
    sim->stats.protocol_errors++;
    switch (ev.kind) {
    case VMM_SIM_EV_UNKNOWN:
        sim->stats.unknown_ops++;
        break;
    case VMM_SIM_EV_REGISTER:
        sim->stats.bad_registrations++;
        break;
    case VMM_SIM_EV_SET_IRQ:
        sim->stats.bad_irqs++;
        break;
    default:
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
