/*
 * virtio-blk: patterns written and read back through the simulated
 * guest's driver, on a qcow2 image that qemu-img then checks.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Then the guest misbehaves: a notify of a queue that does not exist, and
 * a request whose data lies outside guest RAM.  QEMU must stay up, say so
 * under -d guest_errors, and the device must go on serving.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"
#include "virtio-blk.h"
#include "../qemu-harness.h"

#define BLK_IMAGE_SIZE      (64u << 20)
#define BLK_QUEUE           128
#define BLK_NREQ            100         /* in flight at once */
#define BLK_REQ_BYTES       4096u
#define BLK_BIG_BYTES       (1u << 20)
/* a constant pattern qemu-io checks in the image after QEMU exits */
#define BLK_MARK_OFFSET     (1u << 20)
#define BLK_MARK_BYTES      65536u
#define BLK_MARK_BYTE       0x5a

static VirtioBlk blk;
static bool blk_up;

void guest_blk_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *dir = g_path_get_dirname(g->qemu);
    g_autofree char *cmd = g_strdup_printf(
        "'%s/qemu-img' create -q -f qcow2 '%s/disk.qcow2' %u", dir,
        g->tmpdir, BLK_IMAGE_SIZE);
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=d0,file=%s/disk.qcow2,format=qcow2", g->tmpdir);

    if (system(cmd) != 0) {
        printf("# %s failed\n", cmd);
    }
    guest_args(argv, "-device", "virtio-blk-pci,drive=d0", "-drive", drive,
               NULL);
}

static void fill(uint8_t *p, uint32_t len, unsigned seed)
{
    for (uint32_t j = 0; j < len; j++) {
        p[j] = (uint8_t)(seed * 131 + j * 7 + (j >> 9));
    }
    memcpy(p, &seed, sizeof(seed));
}

/* BLK_NREQ requests of one type in flight at once, one kick. */
static bool blk_batch(Guest *g, unsigned type, uint64_t *gpa,
                      uint64_t stride, GError **errp)
{
    unsigned i, done = 0, bad = 0;

    for (i = 0; i < BLK_NREQ; i++) {
        if (!virtio_blk_submit(&blk, type, i * stride, gpa[i],
                               BLK_REQ_BYTES, NULL, errp)) {
            return false;
        }
    }
    if (!virtio_blk_kick(&blk, errp)) {
        return false;
    }
    for (; done < BLK_NREQ; done++) {
        VirtioBlkReq *req = virtio_blk_complete(&blk, GUEST_TIMEOUT_MS, errp);

        if (!req) {
            return false;
        }
        bad += req->status != VIRTIO_BLK_S_OK;
    }
    if (bad) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "%u requests failed", bad);
    }
    return !bad;
}

static void test_patterns(Guest *g)
{
    g_autoptr(GError) err = NULL;
    uint64_t wgpa[BLK_NREQ], rgpa[BLK_NREQ];
    uint64_t stride = blk.capacity / BLK_NREQ & ~UINT64_C(7);
    unsigned i, mismatches = 0;
    bool r;

    for (i = 0; i < BLK_NREQ; i++) {
        wgpa[i] = guest_alloc(&g->mem, BLK_REQ_BYTES, 4096);
        rgpa[i] = guest_alloc(&g->mem, BLK_REQ_BYTES, 4096);
        fill(guest_ptr(&g->mem, wgpa[i], BLK_REQ_BYTES), BLK_REQ_BYTES, i);
    }
    r = blk_batch(g, VIRTIO_BLK_T_OUT, wgpa, stride, &err) &&
        virtio_blk_flush(&blk, &err) &&
        blk_batch(g, VIRTIO_BLK_T_IN, rgpa, stride, &err);
    for (i = 0; r && i < BLK_NREQ; i++) {
        mismatches += memcmp(guest_ptr(&g->mem, wgpa[i], BLK_REQ_BYTES),
                             guest_ptr(&g->mem, rgpa[i], BLK_REQ_BYTES),
                             BLK_REQ_BYTES) != 0;
    }
    ok(r && !mismatches, "virtio-blk: %u x 4 KiB written at %u offsets "
       "(all in flight, one kick), flushed, read back: %u mismatches: %s",
       BLK_NREQ, BLK_NREQ, mismatches, err ? err->message : "ok");
}

static void test_big_and_zeroes(Guest *g)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *w = g_malloc(BLK_BIG_BYTES);
    g_autofree uint8_t *rd = g_malloc0(BLK_BIG_BYTES);
    g_autofree uint8_t *mark = g_malloc(BLK_MARK_BYTES);
    uint64_t sector = 8192;
    bool r, zeroed = true;

    fill(w, BLK_BIG_BYTES, 4242);
    r = virtio_blk_rw(&blk, true, sector, w, BLK_BIG_BYTES, &err) &&
        virtio_blk_rw(&blk, false, sector, rd, BLK_BIG_BYTES, &err);
    ok(r && !memcmp(w, rd, BLK_BIG_BYTES), "virtio-blk: 1 MiB in one "
       "request, read back equal: %s", err ? err->message : "ok");
    g_clear_error(&err);

    if (virtio_pci_has(&blk.pci, VIRTIO_BLK_F_WRITE_ZEROES)) {
        r = virtio_blk_zero(&blk, VIRTIO_BLK_T_WRITE_ZEROES, sector + 8, 16,
                            &err) &&
            virtio_blk_rw(&blk, false, sector, rd, BLK_BIG_BYTES, &err);
        for (unsigned j = 8 * 512; j < 24 * 512; j++) {
            zeroed &= rd[j] == 0;
        }
        ok(r && zeroed && !memcmp(w, rd, 8 * 512) &&
           !memcmp(w + 24 * 512, rd + 24 * 512, BLK_BIG_BYTES - 24 * 512),
           "virtio-blk: WRITE_ZEROES of 16 sectors zeroes exactly them: %s",
           err ? err->message : "ok");
        g_clear_error(&err);
    }
    if (virtio_pci_has(&blk.pci, VIRTIO_BLK_F_DISCARD)) {
        r = virtio_blk_zero(&blk, VIRTIO_BLK_T_DISCARD, sector + 64, 64,
                            &err);
        ok(r, "virtio-blk: DISCARD of 64 sectors completes OK: %s",
           err ? err->message : "ok");
        g_clear_error(&err);
    }
    memset(mark, BLK_MARK_BYTE, BLK_MARK_BYTES);
    r = virtio_blk_rw(&blk, true, BLK_MARK_OFFSET / 512, mark,
                      BLK_MARK_BYTES, &err) &&
        virtio_blk_flush(&blk, &err);
    ok(r, "virtio-blk: 64 KiB of 0x%02x at 1 MiB written and flushed "
       "(checked in the image after QEMU exits): %s", BLK_MARK_BYTE,
       err ? err->message : "ok");
}

static void test_misbehaving_guest(Guest *g)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    uint8_t buf[512];
    VirtqBuf bad[3];
    uint64_t notify = blk.pci.notify + 7 * blk.pci.notify_mult;
    bool r;

    /* queue 7 does not exist */
    r = vmm_sim_mmio_write(g->sim, 0, AS_GLOBAL, notify, 2, 7, &err) &&
        virtio_blk_rw(&blk, false, 0, buf, sizeof(buf), &err);
    ok(r, "bad guest: a notify of queue 7 (none) is ignored, the device "
       "still serves: %s", err ? err->message : "ok");
    g_clear_error(&err);

    /*
     * A read whose data lies below guest RAM, where nothing is mapped:
     * the device's DMA fails there, the machine logs it, and the request
     * still completes.
     */
    bad[0] = (VirtqBuf) { blk.reqs[0].hdr_gpa, 16, false };
    bad[1] = (VirtqBuf) { 0x1000, 4096, true };
    bad[2] = (VirtqBuf) { blk.reqs[0].hdr_gpa + 32, 1, true };
    memset(guest_ptr(&g->mem, blk.reqs[0].hdr_gpa, 16), 0, 16);
    blk.reqs[0].busy = true;
    blk.in_flight++;
    r = virtq_add(&blk.vq, bad, 3, &blk.reqs[0], false) >= 0 &&
        virtio_blk_kick(&blk, &err) &&
        virtio_blk_complete(&blk, GUEST_TIMEOUT_MS, &err);
    ok(r, "bad guest: a read into guest-physical 0x1000 (outside RAM) "
       "completes: %s", err ? err->message : "ok");
    g_clear_error(&err);
    g_file_get_contents(g->dlog, &text, NULL, NULL);
    ok(text && strstr(text, "unmapped guest-physical 0x1000"),
       "bad guest: -d guest_errors reports the DMA to 0x1000");
    r = virtio_blk_rw(&blk, false, 0, buf, sizeof(buf), &err);
    ok(r, "bad guest: QEMU and the device still serve: %s",
       err ? err->message : "ok");
}

void guest_blk_test(Guest *g)
{
    g_autoptr(GError) err = NULL;

    blk_up = virtio_blk_init(&blk, g->sim, &g->mem, GUEST_DEV_BLK,
                             &g->mmio_next, guest_spi_base(g, GUEST_DEV_BLK),
                             g->use_msix, BLK_QUEUE, &err);
    ok(blk_up && blk.capacity == BLK_IMAGE_SIZE / 512,
       "virtio-blk: up, %" PRIu64 " sectors, queue %u, features 0x%" PRIx64
       ", %s: %s", blk.capacity, blk.vq.size, blk.pci.features,
       blk.pci.msix ? "MSI-X" : "INTx", err ? err->message : "ok");
    if (!blk_up) {
        return;
    }
    test_patterns(g);
    test_big_and_zeroes(g);
    test_misbehaving_guest(g);
    if (blk_up) {
        virtio_blk_destroy(&blk);
    }
}

void guest_blk_after_exit(Guest *g)
{
    g_autofree char *dir = g_path_get_dirname(g->qemu);
    g_autofree char *check = g_strdup_printf(
        "'%s/qemu-img' check -q '%s/disk.qcow2'", dir, g->tmpdir);
    g_autofree char *io = g_strdup_printf(
        "'%s/qemu-io' -r -f qcow2 -c 'read -q -P 0x%02x %u %u' "
        "'%s/disk.qcow2'", dir, BLK_MARK_BYTE, BLK_MARK_OFFSET,
        BLK_MARK_BYTES, g->tmpdir);

    ok(system(check) == 0, "virtio-blk: qemu-img check of the qcow2 is "
       "clean after QEMU exits");
    ok(system(io) == 0, "virtio-blk: qemu-io finds the flushed 64 KiB of "
       "0x%02x in the image", BLK_MARK_BYTE);
}

void guest_blk_cleanup(Guest *g)
{
}
