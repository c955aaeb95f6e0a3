/*
 * virtio-console: a port of virtio-serial, echoed through a chardev.
 * (Being written: only the device so far.)
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "guest.h"
#include "../qemu-harness.h"

void guest_console_args(GPtrArray *argv, Guest *g)
{
    guest_args(argv, "-device", "virtio-serial-pci", NULL);
}

void guest_console_test(Guest *g)
{
}

void guest_console_cleanup(Guest *g)
{
}
