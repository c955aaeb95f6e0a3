/*
 * seL4 accelerator: what the virt-sel4 machine needs from it.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SYSTEM_SEL4_H
#define SYSTEM_SEL4_H

extern bool sel4_allowed;
#define sel4_enabled() (sel4_allowed)

/* The uservm layout the VMM announced (the sim transport's hello). */
typedef struct Sel4GuestLayout {
    uint64_t ram_base;
    uint64_t ram_size;
    void *ram;              /* host mapping of ram_base, ram_size bytes */
    uint64_t pci_mmio_base;
    uint64_t pci_mmio_size;
    uint64_t pci_pio_size;  /* the PIO window follows the MMIO window */
} Sel4GuestLayout;

/*
 * The layout of the connected VMM.  Valid after the accelerator's
 * init_machine, which runs before the board's init.  Returns false when
 * the sel4 accelerator is not in use.
 */
bool sel4_guest_layout(Sel4GuestLayout *layout);

/*
 * The machine hands over the root bus whose devices are the guest's
 * devices; they are registered with the VMM (REGISTER_PCI_DEV) at machine
 * init done, in devfn order.
 */
void sel4_set_pci_root_bus(PCIBus *bus);

#endif
