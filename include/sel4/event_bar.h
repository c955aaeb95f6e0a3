/*
 * The event BAR: the page in front of the iobuf on the deployed device VM
 * (BAR0 of the guest-iobuf-<id> PCI function) and in the `sim`
 * transport's iobuf region.  One layout for both transports.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   +0x0  EMIT     u32  device -> VMM doorbell: a 32-bit store faults
 *                       into the VMM (informational in `sim`, whose
 *                       doorbell is an eventfd)
 *   +0x4  CONSUME  u32  VMM -> device counter (informational)
 *   +0x8  name     NUL-terminated name of the region ("guest-iobuf-<id>"),
 *                  at most SEL4_EVENT_BAR_NAME_SIZE bytes; readers bound it
 */
#ifndef SEL4_EVENT_BAR_H
#define SEL4_EVENT_BAR_H

#define SEL4_EVENT_BAR_SIZE         4096u
#define SEL4_EVENT_BAR_EMIT         0x0     /* u32, device -> VMM */
#define SEL4_EVENT_BAR_CONSUME      0x4     /* u32, VMM -> device counter */
#define SEL4_EVENT_BAR_NAME         0x8     /* NUL-terminated region name */
#define SEL4_EVENT_BAR_NAME_SIZE    64u     /* read at most, NUL included */

_Static_assert(SEL4_EVENT_BAR_NAME + SEL4_EVENT_BAR_NAME_SIZE <=
               SEL4_EVENT_BAR_SIZE, "the name fits the event bar");

#endif /* SEL4_EVENT_BAR_H */
