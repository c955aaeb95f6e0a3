/*
 * seL4 accelerator: what the virt-sel4 machine needs from it (and hands
 * on to sel4_intc).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SYSTEM_SEL4_H
#define SYSTEM_SEL4_H

extern bool sel4_allowed;
#define sel4_enabled() (sel4_allowed)

/* The guest's address map (uservm) and its RAM, from the transport. */
typedef struct Sel4GuestLayout {
    uint32_t vmid;
    uint64_t ram_base;
    uint64_t ram_size;
    int ram_fd;             /* the machine maps it (shared) and owns it */
    uint64_t ram_fd_offset; /* of ram_base in ram_fd */
    uint64_t pci_mmio_base;
    uint64_t pci_mmio_size;
    uint64_t pci_pio_size;  /* the PIO window follows the MMIO window */
} Sel4GuestLayout;

/*
 * The layout of the attached VMM.  Valid after the accelerator's
 * init_machine, which runs before the board's init.  Returns false when
 * the sel4 accelerator is not in use.  The first call hands ram_fd over
 * to the caller; later calls report it as -1.
 */
bool sel4_guest_layout(Sel4GuestLayout *layout);

/*
 * The machine hands over the root bus whose devices are the guest's
 * devices; they are registered with the VMM (REGISTER_PCI_DEV) at machine
 * init done, in devfn order.
 */
void sel4_set_pci_root_bus(PCIBus *bus);

/* Registration index of @dev (AS_PCIDEV(n), INTx n), or -1. */
int sel4_pci_index(PCIDevice *dev);

/* Interrupts to the VMM, for hw/intc/sel4_intc.c: SET_IRQ events. */
void sel4_set_intx(unsigned n, bool level);
void sel4_send_msi(uint64_t address, uint32_t data);

/*
 * The accelerator's irqfd (accel/sel4/sel4-irqfd.c), reached through
 * system/accel-irq.h as KVM's and MSHV's are: an MSI route per vector
 * (virq: its index), eventfds signalling a route.  Stubs for targets
 * without the accelerator: accel/stubs/sel4-stub.c.
 */
extern bool sel4_msi_via_irqfd_allowed;
#define sel4_msi_via_irqfd_enabled() (sel4_msi_via_irqfd_allowed)
int sel4_irqchip_add_msi_route(int vector, PCIDevice *dev);
int sel4_irqchip_update_msi_route(int virq, MSIMessage msg, PCIDevice *dev);
void sel4_irqchip_release_virq(int virq);
int sel4_irqchip_add_irqfd_notifier_gsi(EventNotifier *n, EventNotifier *rn,
                                        int virq);
int sel4_irqchip_remove_irqfd_notifier_gsi(EventNotifier *n, int virq);

#endif
