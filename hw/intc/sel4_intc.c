/*
 * seL4 interrupt controller placeholder: INTx/MSI forwarding to the VMM
 * (SET_IRQ events) comes later.  Only the type exists for now.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "hw/sysbus.h"
#include "qemu/module.h"

static const TypeInfo sel4_intc_info = {
    .name = "sel4-intc",
    .parent = TYPE_SYS_BUS_DEVICE,
    .instance_size = sizeof(SysBusDevice),
};

static void sel4_intc_register(void)
{
    type_register_static(&sel4_intc_info);
}
type_init(sel4_intc_register);
