/*
 * seL4 accelerator: the guest's virtual PCI devices.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every device on the machine's root bus (the host bridge's own function
 * aside) is a device of the guest.  When the machine is complete we
 * register them with the VMM in devfn order, REGISTER_PCI_DEV with the
 * registration index n in mr1 and no reply: the VMM picks the guest-
 * visible devfn itself and sends that device's config accesses as
 * AS_PCIDEV(n).  n is also the device's INTx number, and its MSI-X
 * messages are routed to the VMM by sel4_intc (hw/intc/sel4_intc.c).
 * All registrations precede START_VM, sent when the run state becomes
 * running.  Nothing here waits for the VMM.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "hw/pci/pci_device.h"
#include "hw/pci-host/gpex.h"
#include "hw/intc/sel4_intc.h"
#include "system/system.h"
#include "sel4-internal.h"
#include "trace.h"

int sel4_pci_index(PCIDevice *dev)
{
    Sel4State *s = sel4_state;
    unsigned i;

    for (i = 0; s && i < s->n_pcidev; i++) {
        if (s->pcidev[i] == dev) {
            return i;
        }
    }
    return -1;
}

void sel4_set_pci_root_bus(PCIBus *bus)
{
    if (sel4_state) {
        sel4_state->root_bus = bus;
    }
}

static void sel4_collect_pcidev(PCIBus *bus, PCIDevice *dev, void *opaque)
{
    Sel4State *s = opaque;

    /* the host bridge's own function is not a guest device */
    if (object_dynamic_cast(OBJECT(dev), TYPE_GPEX_ROOT_DEVICE)) {
        return;
    }
    if (s->n_pcidev >= RPC_MAX_PCIDEV) {
        error_report("sel4: more than %u PCI devices; %s is not registered",
                     RPC_MAX_PCIDEV, object_get_typename(OBJECT(dev)));
        sel4_error(s, SEL4_ERR_TOO_MANY_PCIDEV, s->n_pcidev, dev->devfn);
        return;
    }
    s->pcidev[s->n_pcidev++] = dev;
}

static void sel4_machine_init_done(Notifier *notifier, void *data)
{
    Sel4State *s = container_of(notifier, Sel4State, machine_done);
    unsigned i;

    if (!s->root_bus) {
        warn_report("sel4: the machine has no PCI root bus; "
                    "no devices registered");
        return;
    }
    pci_for_each_device(s->root_bus, pci_bus_num(s->root_bus),
                        sel4_collect_pcidev, s);
    for (i = 0; i < s->n_pcidev; i++) {
        PCIDevice *dev = s->pcidev[i];
        rpcmsg_t msg = {
            .mr0 = rpc_mr0_op(QEMU_OP_REGISTER_PCI_DEV),
            .mr1 = i,
        };

        sel4_intc_route_msi(dev);
        trace_sel4_register_pci_dev(i, dev->devfn,
                                    object_get_typename(OBJECT(dev)));
        sel4_event_push(s, &msg);
    }
}

static void sel4_vm_state_change(void *opaque, bool running, RunState state)
{
    Sel4State *s = opaque;
    rpcmsg_t msg = { .mr0 = rpc_mr0_op(QEMU_OP_START_VM) };

    if (!running || s->started) {
        return;
    }
    /* pairs with sel4_loop_serving(): the devices are there first */
    qatomic_store_release(&s->started, true);
    trace_sel4_start_vm(s->n_pcidev);
    /* behind the registrations in the outbox: the order is kept */
    sel4_event_push(s, &msg);
    /*
     * Requests a predecessor left queued, with their doorbell consumed,
     * would otherwise wait for the next one.  The devices exist now.
     */
    s->loop_ops->kick(s);
}

void sel4_vpci_init(Sel4State *s)
{
    s->machine_done.notify = sel4_machine_init_done;
    qemu_add_machine_init_done_notifier(&s->machine_done);
    s->vmstate = qemu_add_vm_change_state_handler(sel4_vm_state_change, s);
}
