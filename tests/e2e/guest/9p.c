/*
 * virtio-9p: a 9P2000.L client reading the host's share.
 * (Being written: only the device so far.)
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib/gstdio.h>

#include "guest.h"
#include "../qemu-harness.h"

void guest_9p_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *share = g_build_filename(g->tmpdir, "share", NULL);
    g_autofree char *fsdev = g_strdup_printf(
        "local,id=f0,path=%s,security_model=none", share);

    g_mkdir_with_parents(share, 0700);

    guest_args(argv, "-device", "virtio-9p-pci,fsdev=f0,mount_tag=share",
               "-fsdev", fsdev, NULL);
}

void guest_9p_test(Guest *g)
{
}
