/*
 * seL4 interrupt routing: the guest's PCI interrupts become SET_IRQ
 * events to the VMM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_INTC_SEL4_INTC_H
#define HW_INTC_SEL4_INTC_H

#include "hw/pci/pci.h"

/*
 * What the routes need from the accelerator, handed over by the machine
 * (hw/intc names no accelerator function).
 */
typedef struct Sel4IntcOps {
    /* registration index of @dev (its INTx number), or -1 */
    int (*pci_index)(PCIDevice *dev);
    /* SET_IRQ(n, set/clear) */
    void (*set_intx)(unsigned n, bool level);
    /* SET_IRQ(data & 0xffff, PULSE) of an MSI message */
    void (*send_msi)(uint64_t address, uint32_t data);
} Sel4IntcOps;

/*
 * Take over @bus's INTx lines: the INTx of registered device n becomes
 * SET_IRQ(n, set/clear).  Call from the machine, after creating the host;
 * @ops must outlive the machine.
 */
void sel4_intc_connect_pci(PCIBus *bus, const Sel4IntcOps *ops);

/*
 * Send @dev's MSI/MSI-X messages to the VMM as SET_IRQ(data & 0xffff,
 * PULSE) instead of writing them to memory.  Called on registration.
 */
void sel4_intc_route_msi(PCIDevice *dev);

#endif
