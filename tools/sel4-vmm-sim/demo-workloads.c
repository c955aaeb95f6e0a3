/*
 * The demo's workloads (see demo-workloads.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "demo-workloads.h"
#include "virtio-blk.h"
#include "virtio-rng.h"

#define DEMO_TIMEOUT_MS     20000
#define BLK_TOTAL           (16u << 20)     /* bytes written, then read */
#define BLK_REQ             (64u << 10)
#define BLK_DEPTH           32u

unsigned demo_spi_base(const DemoGuest *g, unsigned n)
{
    return vmm_sim_config(g->sim)->msi_spi_base + 2 * n;
}

void demo_row(DemoGuest *g, const char *device, const char *operation,
              bool ok, const char *fmt, ...)
{
    DemoRow *row = g_new0(DemoRow, 1);
    va_list ap;

    row->device = g_strdup(device);
    row->operation = g_strdup(operation);
    row->ok = ok;
    va_start(ap, fmt);
    row->result = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(g->rows, row);
}

bool demo_print_table(const DemoGuest *g)
{
    bool all = true;

    printf("\n%-15s %-44s %-4s %s\n", "device", "operation", "ok",
           "ops/s or MB/s");
    for (unsigned i = 0; i < g->rows->len; i++) {
        const DemoRow *r = g_ptr_array_index(g->rows, i);

        printf("%-15s %-44s %-4s %s\n", r->device, r->operation,
               r->ok ? "ok" : "FAIL", r->result);
        all &= r->ok;
    }
    return all;
}

void demo_cleanup(void)
{
    /* nothing yet: the network part will remove its namespaces here */
}

/* ---- virtio-blk ---- */

/* Move BLK_TOTAL bytes in BLK_REQ requests, BLK_DEPTH in flight. */
static bool blk_stream(VirtioBlk *b, unsigned type, uint64_t gpa,
                       double *mbps, GError **errp)
{
    unsigned total = BLK_TOTAL / BLK_REQ, sent = 0, done = 0;
    gint64 t0 = g_get_monotonic_time();

    while (done < total) {
        while (sent < total && sent - done < BLK_DEPTH) {
            if (!virtio_blk_submit(b, type, (uint64_t)sent * BLK_REQ / 512,
                                   gpa + (uint64_t)sent * BLK_REQ, BLK_REQ,
                                   NULL, errp)) {
                return false;
            }
            sent++;
        }
        if (!virtio_blk_kick(b, errp)) {
            return false;
        }
        VirtioBlkReq *req = virtio_blk_complete(b, DEMO_TIMEOUT_MS, errp);

        if (!req) {
            return false;
        }
        if (req->status != VIRTIO_BLK_S_OK) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                        "status %u", req->status);
            return false;
        }
        done++;
    }
    *mbps = BLK_TOTAL / 1e6 / ((g_get_monotonic_time() - t0) / 1e6);
    return true;
}

void demo_blk(DemoGuest *g)
{
    g_autoptr(GError) err = NULL;
    VirtioBlk b;
    uint64_t wgpa, rgpa;
    double wr = 0, rd = 0;
    bool ok;

    ok = virtio_blk_init(&b, g->sim, &g->mem, DEMO_DEV_BLK, &g->mmio_next,
                         demo_spi_base(g, DEMO_DEV_BLK), true, 128, &err);
    wgpa = guest_alloc(&g->mem, BLK_TOTAL, 4096);
    rgpa = guest_alloc(&g->mem, BLK_TOTAL, 4096);
    if (ok && wgpa && rgpa) {
        uint8_t *w = guest_ptr(&g->mem, wgpa, BLK_TOTAL);

        for (unsigned i = 0; i < BLK_TOTAL; i++) {
            w[i] = (uint8_t)(i * 2654435761u >> 24);
        }
        ok = blk_stream(&b, VIRTIO_BLK_T_OUT, wgpa, &wr, &err) &&
             virtio_blk_flush(&b, &err) &&
             blk_stream(&b, VIRTIO_BLK_T_IN, rgpa, &rd, &err) &&
             !memcmp(w, guest_ptr(&g->mem, rgpa, BLK_TOTAL), BLK_TOTAL);
    }
    if (ok) {
        demo_row(g, "virtio-blk", "write 16 MiB (qcow2), flush, read back",
                 true, "write %.1f MB/s, read %.1f MB/s", wr, rd);
    } else {
        demo_row(g, "virtio-blk", "write 16 MiB (qcow2), flush, read back",
                 false, "%s", err ? err->message : "data differs");
    }
    virtio_blk_destroy(&b);
}

/* ---- virtio-rng ---- */

void demo_rng(DemoGuest *g)
{
    g_autoptr(GError) err = NULL;
    uint8_t bytes[32];
    VirtioRng r;
    bool ok, differ = false;
    gint64 t0;

    ok = virtio_rng_init(&r, g->sim, &g->mem, DEMO_DEV_RNG, &g->mmio_next,
                         demo_spi_base(g, DEMO_DEV_RNG), true, &err);
    t0 = g_get_monotonic_time();
    ok = ok && virtio_rng_read(&r, bytes, sizeof(bytes), &err);
    for (unsigned i = 1; ok && i < sizeof(bytes); i++) {
        differ |= bytes[i] != bytes[0];
    }
    if (ok && differ) {
        demo_row(g, "virtio-rng", "read 32 random bytes", true,
                 "%02x%02x%02x%02x... in %" PRId64 " us", bytes[0], bytes[1],
                 bytes[2], bytes[3], g_get_monotonic_time() - t0);
    } else {
        demo_row(g, "virtio-rng", "read 32 random bytes", false, "%s",
                 err ? err->message : "all bytes equal");
    }
    virtq_destroy(&r.vq);
}
