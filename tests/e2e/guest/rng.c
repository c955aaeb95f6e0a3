/*
 * virtio-rng: 32 random bytes through the simulated guest's driver.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>

#include "guest.h"
#include "virtio-rng.h"
#include "../qemu-harness.h"

void guest_rng_args(GPtrArray *argv, Guest *g)
{
    guest_args(argv, "-device", "virtio-rng-pci", NULL);
}

void guest_rng_test(Guest *g)
{
    g_autoptr(GError) err = NULL;
    uint8_t bytes[32] = { 0 };
    VirtioRng rng;
    bool r, differ = false;

    r = virtio_rng_init(&rng, g->sim, &g->mem, GUEST_DEV_RNG, &g->mmio_next,
                        guest_spi_base(g, GUEST_DEV_RNG), g->use_msix, &err) &&
        virtio_rng_read(&rng, bytes, sizeof(bytes), &err);
    for (unsigned i = 1; i < sizeof(bytes); i++) {
        differ |= bytes[i] != bytes[0];
    }
    ok(r && differ, "virtio-rng: 32 bytes, not all equal (%02x %02x %02x "
       "%02x ...), features 0x%" PRIx64 ", %s: %s", bytes[0], bytes[1],
       bytes[2], bytes[3], rng.pci.features,
       rng.pci.msix ? "MSI-X" : "INTx", err ? err->message : "ok");
    ok(rng.pci.msix == g->use_msix, "virtio-rng: %s as asked",
       rng.pci.msix ? "MSI-X" : "INTx");
    virtq_destroy(&rng.vq);
}
