/*
 * The soak's VMM restart (see demo-soak-restart.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What the systemd unit does (contrib/systemd/qemu-virtio@.service,
 * Restart=): QEMU exits when its VMM hangs up (accel/sel4/sel4-all.c,
 * status 1), and a new QEMU attaches to the new VMM.  The guest's disk is
 * the same image file, so what the guest wrote and flushed before must
 * read back after.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <glib.h>

#include "demo-soak-restart.h"

#define RESTART_TIMEOUT_MS  20000   /* for QEMU's exit; for the new one */
#define RESTART_DISK_BYTES  (64u << 20)     /* the demo's image */
#define RESTART_DEPTH       16u
#define RESTART_FLUSH       64u
#define RESTART_DEVICES     (DEMO_DEV_9P + 1)

static void failed(SoakRestart *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void failed(SoakRestart *r, const char *fmt, ...)
{
    va_list ap;

    if (r->why) {
        return;
    }
    va_start(ap, fmt);
    r->why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

void soak_restart_write(DemoGuest *g, GRand *rand, uint64_t nonce,
                        SoakRestart *r)
{
    const uint64_t spots = RESTART_DISK_BYTES / BLK_WRITER_BLOCK -
                           SOAK_RESTART_BLOCKS;
    uint64_t first = (uint64_t)g_rand_int_range(rand, 0, spots) *
                     (BLK_WRITER_BLOCK / VIRTIO_BLK_SECTOR);
    g_autoptr(GError) err = NULL;
    VirtioBlk b;
    bool ok;

    r->done++;
    ok = virtio_blk_init(&b, g->sim, &g->mem, DEMO_DEV_BLK, &g->mmio_next,
                         demo_spi_base(g, DEMO_DEV_BLK), true, 128, &err) &&
         blk_writer_init(&r->w, &b, &g->mem, first, SOAK_RESTART_BLOCKS,
                         RESTART_DEPTH, RESTART_FLUSH, nonce, &err);
    while (ok && blk_writer_acked_prefix(&r->w) < SOAK_RESTART_BLOCKS) {
        ok = blk_writer_step(&r->w, RESTART_TIMEOUT_MS, &err);
    }
    /* every block acknowledged and flushed: durable */
    ok = ok && blk_writer_drain(&r->w, RESTART_TIMEOUT_MS, &err);
    r->written = ok;
    if (!ok) {
        failed(r, "restart %u: writing before it: %s", r->done,
               err ? err->message : "failed");
        if (r->w.state) {
            blk_writer_destroy(&r->w);
        }
    }
    /* the driver goes with the VMM; the writer keeps what it knows */
    r->w.blk = NULL;
    virtio_blk_destroy(&b);
}

bool soak_restart_vmm(DemoGuest *g, DemoVmm *vmm, SoakRestart *r)
{
    g_autoptr(GError) err = NULL;
    const VmmSimConfig *c;
    unsigned n = 0;
    double ms = 0;
    int st;

    if (demo_vmm_hang_up(vmm, RESTART_TIMEOUT_MS, &st, &ms) &&
        WIFEXITED(st) && WEXITSTATUS(st) == 1) {
        r->exited++;
    } else {
        failed(r, "restart %u: after the VMM hung up QEMU %s", r->done,
               st == -1 ? "did not exit (killed)" :
               WIFEXITED(st) ? "exited with another status" :
               "was killed by a signal");
    }
    r->exit_ms_max = MAX(r->exit_ms_max, ms);
    printf("soak: restart %u: the VMM hung up, QEMU exited (%s %d) after "
           "%.1f ms; a new VMM and QEMU start\n", r->done,
           st != -1 && WIFSIGNALED(st) ? "signal" : "status",
           st == -1 ? -1 : WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
           ms);
    g->sim = NULL;
    if (!demo_vmm_start(vmm, RESTART_TIMEOUT_MS, &err)) {
        failed(r, "restart %u: the new QEMU: %s", r->done, err->message);
        return false;
    }
    vmm_sim_pci_devs(vmm->sim, &n);
    if (n == RESTART_DEVICES) {
        r->started++;
    } else {
        failed(r, "restart %u: the new QEMU registered %u devices, not %u",
               r->done, n, RESTART_DEVICES);
    }
    /* a rebooted guest: its RAM and BARs as at the first start */
    c = vmm_sim_config(vmm->sim);
    g->sim = vmm->sim;
    guest_alloc_init(&g->mem, g->sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    g->mmio_next = c->pci_mmio_base;
    return true;
}

void soak_restart_read(DemoGuest *g, SoakRestart *r)
{
    g_autoptr(GError) err = NULL;
    BlkVerify bv = { 0 };
    VirtioBlk b;
    bool ok;

    if (!r->written) {
        return;
    }
    ok = virtio_blk_init(&b, g->sim, &g->mem, DEMO_DEV_BLK, &g->mmio_next,
                         demo_spi_base(g, DEMO_DEV_BLK), true, 128, &err) &&
         blk_writer_verify(&r->w, &b, &bv, &err);
    r->blocks += SOAK_RESTART_BLOCKS;
    r->intact += bv.durable_ok;
    if (!ok) {
        failed(r, "restart %u: reading back after it: %s", r->done,
               err->message);
    } else if (bv.durable_ok != SOAK_RESTART_BLOCKS) {
        failed(r, "restart %u: %" PRIu64 " of %u blocks written before it "
               "read back intact", r->done, bv.durable_ok,
               SOAK_RESTART_BLOCKS);
    }
    virtio_blk_destroy(&b);
    blk_writer_destroy(&r->w);
    r->written = false;
}

void soak_restart_next_round(SoakRestart *r, bool ok, const char *why)
{
    if (ok) {
        r->next_ok++;
    } else {
        failed(r, "the round after restart %u: %s", r->done, why);
    }
}

void soak_restart_free(SoakRestart *r)
{
    if (r->w.state) {
        blk_writer_destroy(&r->w);
    }
    g_clear_pointer(&r->why, g_free);
}
