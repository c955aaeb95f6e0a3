/*
 * seL4 accelerator stubs: what system/accel-irq.h calls, for targets
 * built without the accelerator (it is never enabled there).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "hw/pci/msi.h"
#include "system/sel4.h"

bool sel4_msi_via_irqfd_allowed;

int sel4_irqchip_add_msi_route(int vector, PCIDevice *dev)
{
    return -ENOSYS;
}

int sel4_irqchip_update_msi_route(int virq, MSIMessage msg, PCIDevice *dev)
{
    return -ENOSYS;
}

void sel4_irqchip_release_virq(int virq)
{
}

int sel4_irqchip_add_irqfd_notifier_gsi(EventNotifier *n, EventNotifier *rn,
                                        int virq)
{
    return -ENOSYS;
}

int sel4_irqchip_remove_irqfd_notifier_gsi(EventNotifier *n, int virq)
{
    return -ENOSYS;
}
