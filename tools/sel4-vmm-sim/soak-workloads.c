/*
 * The soak's workloads beyond the demo's (see soak-workloads.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "soak-workloads.h"
#include "blk-writer.h"
#include "virtio-9p.h"

#define SOAK_BLK_BLOCKS     1024u           /* 4 MiB a round */
#define SOAK_BLK_DEPTH      16u
#define SOAK_BLK_FLUSH      64u
#define SOAK_DISK_BYTES     (64u << 20)     /* the demo's image */
#define SOAK_9P_FILES       8u
#define SOAK_9P_BYTES       (64u << 10)
#define SOAK_WAIT_MS        20000

void soak_blk_verify(DemoGuest *g, GRand *rand, uint64_t nonce,
                     SoakVerify *v)
{
    const uint64_t spots = (SOAK_DISK_BYTES / BLK_WRITER_BLOCK) -
                           SOAK_BLK_BLOCKS;
    uint64_t first = (uint64_t)g_rand_int_range(rand, 0, spots) *
                     (BLK_WRITER_BLOCK / 512);
    g_autoptr(GError) err = NULL;
    BlkVerify bv = { 0 };
    BlkWriter w = { 0 };
    VirtioBlk b;
    uint64_t bad;
    bool ok;

    ok = virtio_blk_init(&b, g->sim, &g->mem, DEMO_DEV_BLK, &g->mmio_next,
                         demo_spi_base(g, DEMO_DEV_BLK), true, 128, &err) &&
         blk_writer_init(&w, &b, &g->mem, first, SOAK_BLK_BLOCKS,
                         SOAK_BLK_DEPTH, SOAK_BLK_FLUSH, nonce, &err);
    /* every block written and acknowledged, then a last flush */
    while (ok && blk_writer_acked_prefix(&w) < SOAK_BLK_BLOCKS) {
        ok = blk_writer_step(&w, SOAK_WAIT_MS, &err);
    }
    ok = ok && blk_writer_drain(&w, SOAK_WAIT_MS, &err) &&
         blk_writer_verify(&w, &b, &bv, &err);
    /* after the drain every block is durable: anything else is an error */
    bad = SOAK_BLK_BLOCKS - bv.durable_ok;
    if (ok) {
        v->blocks += SOAK_BLK_BLOCKS;
        v->bad += bad;
    }
    if (ok) {
        demo_row(g, "virtio-blk", "verify 4 MiB at a random offset",
                 !bad, "sector %" PRIu64 ": %" PRIu64 " of %u blocks "
                 "durable and intact (%" PRIu64 " damaged or zero, %"
                 PRIu64 " flushes)", first, bv.durable_ok, SOAK_BLK_BLOCKS,
                 bad, w.flushes_done);
    } else {
        demo_row(g, "virtio-blk", "verify 4 MiB at a random offset", false,
                 "%s", err ? err->message : "failed");
    }
    if (w.blk) {
        blk_writer_destroy(&w);
    }
    virtio_blk_destroy(&b);
}

/* One file: create, write, read back, compare, remove; false: @errp. */
static bool p9_churn_one(Virtio9p *p, uint32_t root, const char *share,
                         const char *name, const uint8_t *data,
                         GError **errp)
{
    g_autofree char *host = g_build_filename(share, name, NULL);
    g_autofree uint8_t *back = g_malloc(SOAK_9P_BYTES);
    uint32_t fid = virtio_9p_new_fid(p), iounit, n;
    uint32_t done = 0, got = 0;
    P9Qid qid;

    if (!virtio_9p_walk(p, root, fid, NULL, 0, NULL, errp) ||
        !virtio_9p_lcreate(p, fid, name, P9_DOTL_RDWR | P9_DOTL_CREATE |
                           P9_DOTL_EXCL, 0600, getgid(), &qid, &iounit,
                           errp)) {
        return false;
    }
    while (done < SOAK_9P_BYTES &&
           virtio_9p_write(p, fid, done, data + done, SOAK_9P_BYTES - done,
                           &n, errp) && n) {
        done += n;
    }
    while (done == SOAK_9P_BYTES && got < SOAK_9P_BYTES &&
           virtio_9p_read(p, fid, got, back + got, SOAK_9P_BYTES - got, &n,
                          errp) && n) {
        got += n;
    }
    if (got != SOAK_9P_BYTES || memcmp(back, data, SOAK_9P_BYTES)) {
        if (errp && !*errp) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                        "%s: wrote %u bytes, read back %u%s", name, done,
                        got, got == SOAK_9P_BYTES ? ", different" : "");
        }
        virtio_9p_remove(p, fid, NULL);
        return false;
    }
    if (!virtio_9p_remove(p, fid, errp)) {
        return false;
    }
    if (access(host, F_OK) == 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "%s: removed through 9P, still in the share", name);
        return false;
    }
    return true;
}

void soak_9p_churn(DemoGuest *g, unsigned round)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *share = g_build_filename(g->workdir, "share", NULL);
    g_autofree uint8_t *data = g_malloc(SOAK_9P_BYTES);
    Virtio9p *p = g_new0(Virtio9p, 1);
    uint32_t root = P9_NOFID;
    unsigned i, files = 0;
    P9Qid qid;
    bool ok;

    for (i = 0; i < SOAK_9P_BYTES; i++) {
        data[i] = (uint8_t)((i + round) * 2654435761u >> 24);
    }
    ok = virtio_9p_init(p, g->sim, &g->mem, DEMO_DEV_9P, &g->mmio_next,
                        demo_spi_base(g, DEMO_DEV_9P), true, &err) &&
         virtio_9p_version(p, VIRTIO_9P_MSIZE, &err);
    if (ok) {
        root = virtio_9p_new_fid(p);
        ok = virtio_9p_attach(p, root, "root", "", getuid(), &qid, &err);
    }
    for (i = 0; ok && i < SOAK_9P_FILES; i++) {
        g_autofree char *name = g_strdup_printf("churn-%u-%u", round, i);

        ok = p9_churn_one(p, root, share, name, data, &err);
        files += ok;
    }
    if (ok) {
        ok = virtio_9p_clunk(p, root, &err);
    }
    if (ok) {
        demo_row(g, "virtio-9p", "create, write, read back, remove 8 files",
                 true, "%u x %u KiB equal, gone from the share", files,
                 SOAK_9P_BYTES >> 10);
    } else {
        demo_row(g, "virtio-9p", "create, write, read back, remove 8 files",
                 false, "%s", err->message);
    }
    virtio_9p_destroy(p);
    g_free(p);
}
