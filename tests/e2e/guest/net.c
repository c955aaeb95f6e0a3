/*
 * virtio-net: the simulated guest bridged to a tap, traffic across
 * network namespaces.  (Being written: only the device so far.)
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "guest.h"
#include "../qemu-harness.h"

void guest_net_args(GPtrArray *argv, Guest *g)
{
    guest_args(argv, "-device", "virtio-net-pci,netdev=n0,romfile=",
               "-netdev", "hubport,id=n0,hubid=0", NULL);
}

void guest_net_test(Guest *g)
{
}

void guest_net_cleanup(Guest *g)
{
}
