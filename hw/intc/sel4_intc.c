/*
 * seL4 interrupt routing: the guest's PCI interrupts become SET_IRQ
 * events to the VMM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The guest's interrupt controller belongs to the VMM, so there is no
 * controller to model here, only two routes:
 *  - INTx: the root bus's lines are ours (pci_bus_irqs), one per
 *    registered device rather than four swizzled pins, because the VMM
 *    takes INTx by registration index (SET_IRQ mr1 = n) and ORs them
 *    onto its shared lines itself.  Devices that are not registered
 *    (more than RPC_MAX_PCIDEV) drive a line nobody listens to.
 *  - MSI/MSI-X: the guest programs the address/data of the VMM's GICv2m
 *    frame; instead of a memory write that nobody would see, the
 *    device's msi_trigger hands us the message and the SPI in its data
 *    goes out as one SET_IRQ PULSE.
 * Both are queued in the accelerator's event outbox, so interrupts raised
 * during one batch of requests leave with that batch's doorbell.
 */
#include "qemu/osdep.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msi.h"
#include "hw/intc/sel4_intc.h"
#include "sel4/rpc.h"

/* the line of devices beyond RPC_MAX_PCIDEV */
#define SEL4_INTC_NO_LINE   RPC_MAX_PCIDEV

/*
 * The machine's one root bus: map_irq and msi_trigger have no opaque
 * pointer to carry the ops.
 */
static const Sel4IntcOps *sel4_intc_ops;

static int sel4_intc_map_irq(PCIDevice *dev, int pin)
{
    int n = sel4_intc_ops->pci_index(dev);

    return n < 0 ? SEL4_INTC_NO_LINE : n;
}

static void sel4_intc_set_irq(void *opaque, int line, int level)
{
    const Sel4IntcOps *ops = opaque;

    if (line < RPC_MAX_PCIDEV) {
        ops->set_intx(line, level);
    }
}

void sel4_intc_connect_pci(PCIBus *bus, const Sel4IntcOps *ops)
{
    sel4_intc_ops = ops;
    pci_bus_irqs(bus, sel4_intc_set_irq, (void *)ops, SEL4_INTC_NO_LINE + 1);
    pci_bus_map_irqs(bus, sel4_intc_map_irq);
}

static void sel4_intc_msi_trigger(PCIDevice *dev, MSIMessage msg)
{
    sel4_intc_ops->send_msi(msg.address, msg.data);
}

void sel4_intc_route_msi(PCIDevice *dev)
{
    dev->msi_trigger = sel4_intc_msi_trigger;
}
