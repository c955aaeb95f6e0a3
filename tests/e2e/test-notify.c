/*
 * End-to-end: queue notifies through the accelerator's ioeventfd fast
 * path, and guest notifies off while a virtqueue has requests in flight.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-notify QEMU_BINARY LOOP_OPTIONS SCENARIO
 * (exit 77, a skip, when QEMU_BINARY is empty or missing; TAP-style
 * output, exit-code protocol).
 *
 * One virtio-blk-pci on a null-co node whose requests take latency-ns,
 * driven by the simulated guest; every new request is followed by a kick,
 * which notifies only when the ring's avail_event asks for it.  Counted:
 * the guest's notifies (MMIO writes it sent), and the accelerator's
 * counters over QMP.
 *
 *  steady   a steady guest at 32 in flight: requests of 32 ms, a new one
 *           every millisecond, so the device has long taken each request
 *           before the next comes (the state in which a device that turns
 *           notifies back on whenever it catches up makes the guest notify
 *           for every request: with notify-suppress-us=0 this fails).
 *           Every request completes; the guest notifies for well under
 *           one request in four; most requests are found in the ring by
 *           the accelerator with notifies off; every notify took the fast
 *           path.  Then the fio-like burst: 32 in flight of 200 us, each
 *           completion replaced by a new request at once.  Then a device
 *           reset: its ioeventfds go away, and a write to the old notify
 *           address is no longer matched; after re-initialising, requests
 *           complete through the fast path again.
 *  instant  requests that complete within the main-loop turn that took
 *           them (null-co without latency), fio's pattern at 32 in
 *           flight: each completion replaced at once and kicked.  When
 *           the loop is about to sleep nothing is in flight; the queue
 *           keeps notifies off for notify-poll-us (10 ms here, so that the
 *           guest's next request comes within it however slow the
 *           machine) and the accelerator finds the requests in the ring.
 *           The guest notifies for fewer than one request in 50 (about
 *           one in 1000 here; with notify-poll-us=0, one in 30 to one in 7
 *           under loop=uring: the slow state of the main-loop modes on null-co,
 *           one notify round trip per few requests).
 *  stall    requests of 20 ms: one in flight, then another; the second
 *           is served once nothing completed for notify-suppress-us
 *           (counted as notify-stalled), it does not wait for the guest.
 *  off      -device ...,ioeventfd=off: nothing is registered, nothing
 *           takes the fast path, requests complete through the memory
 *           API.
 *  iothread the device in an IOThread (iothread=io0): steady's checks,
 *           the guest's notifies held off by virtio in the IOThread (its
 *           notify hold, turned on by the accelerator), a device reset
 *           while it holds; also with num-queues=2 and iothread-vq-mapping
 *           over two IOThreads (iothread-vq-mapping), and instant's and
 *           stall's checks in an IOThread (iothread-instant,
 *           iothread-stall).
 *  mq2, mq3 num-queues=N with iothread-vq-mapping over N IOThreads, and the
 *           guest driving all N queues (VIRTIO_BLK_F_MQ): every request
 *           completes on the queue it was put on, every queue's notifies
 *           take the fast path.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "sel4/vmm_sim.h"
#include "guest-alloc.h"
#include "virtio-blk.h"
#include "blk-load.h"
#include "qemu-launch.h"
#include "qmp-client.h"
#include "qemu-harness.h"
#include "vmm-qemu-rig.h"

#define TIMEOUT_MS      20000
#define QD              32
#define PACED_REQS      320
#define INSTANT_REQS    2000
#define SECTOR_BYTES    4096
#define ACCEL_PATH      "/machine/accel"
#define VCPU_SLOT       0           /* the guest driver's vCPU */

typedef struct Rig {
    VmmSim *sim;
    VmmSimQemu q;
    GuestAlloc mem;
    VirtioBlk blk;
    uint64_t mmio_next;
    uint64_t buf;               /* guest-physical, QD * 4 KiB */
    unsigned nqueues;           /* request queues the guest drives */
} Rig;

static uint64_t counter(Rig *r, const char *name)
{
    g_autofree char *prop = g_strdup_printf("stats-%s", name);
    g_autoptr(GError) err = NULL;
    QmpClient *c;
    uint64_t v = 0;

    if (!r->q.qmp_client) {
        r->q.qmp_client = qmp_client_connect(r->q.qmp, TIMEOUT_MS, &err);
    }
    c = r->q.qmp_client;
    if (!c || !qmp_client_qom_get_u64(c, ACCEL_PATH, prop, &v, &err)) {
        ok(false, "qom-get %s %s: %s", ACCEL_PATH, prop,
           err ? err->message : "no connection");
        return 0;
    }
    return v;
}

static bool blk_up(Rig *r)
{
    g_autoptr(GError) err = NULL;
    const VmmSimConfig *c = vmm_sim_config(r->sim);

    r->mmio_next = c->pci_mmio_base;
    guest_alloc_init(&r->mem, r->sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    if (!virtio_blk_init_mq(&r->blk, r->sim, &r->mem, 0, &r->mmio_next,
                            VMM_SIM_DEFAULT_MSI_SPI_BASE, true, 128,
                            MAX(r->nqueues, 1), &err)) {
        ok(false, "virtio-blk up: %s", err->message);
        return false;
    }
    r->buf = guest_alloc(&r->mem, QD * SECTOR_BYTES, 4096);
    return true;
}

/* virtio-blk-pci options of the IOThread scenarios (JSON: a list) */
#define IOTHREAD_OPTS   ", \"iothread\": \"io0\""
#define IO2             "{\"iothread\": \"io0\"}, {\"iothread\": \"io1\"}"
#define IO3             IO2 ", {\"iothread\": \"io2\"}"
#define MAPPING_OPTS    ", \"num-queues\": 2, \"iothread-vq-mapping\": [" \
                        IO2 "]"

static bool rig_up(Rig *r, const char *dir, const char *loop_opts,
                   const char *blk_opts, const char *iothread_opts,
                   uint64_t latency_ns)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *node = g_strdup_printf(
        "driver=null-co,node-name=n0,size=%u,latency-ns=%" PRIu64
        ",read-zeroes=on", 64u << 20, latency_ns);
    g_autofree char *dev = g_strdup_printf(
        "{\"driver\": \"virtio-blk-pci\", \"drive\": \"n0\"%s%s}",
        blk_opts, iothread_opts);
    const char *args[] = {
        "-blockdev", node, "-device", dev,
        "-object", "iothread,id=io0", "-object", "iothread,id=io1",
        "-object", "iothread,id=io2", NULL,
    };

    if (!e2e_vmm_qemu_up(dir, loop_opts, args, &r->sim, &r->q)) {
        return false;
    }
    return blk_up(r);
}

static void rig_down(Rig *r)
{
    int status = -1;

    if (r->blk.reqs) {
        virtio_blk_destroy(&r->blk);
    }
    if (r->q.pid) {
        g_autofree char *log = NULL;

        vmm_sim_qemu_quit(&r->q, TIMEOUT_MS, &status);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "QEMU quits cleanly over QMP (status 0x%x)", status);
        ok(g_file_get_contents(r->q.log, &log, NULL, NULL) &&
           !strstr(log, "terminating on signal"),
           "... without a line that a signal ended it");
        if (n_fail) {
            diag_file(r->q.log);
        }
    }
    g_free((char *)r->q.qmp);
    g_free((char *)r->q.log);
    if (r->sim) {
        vmm_sim_free(r->sim);
    }
}

static bool submit_read(Rig *r, unsigned slot, uint64_t sector,
                        GError **errp)
{
    return blk_load_read(&r->blk, r->buf, slot, sector, errp);
}

/* fio's pattern at iodepth QD (blk-load.h) */
static unsigned run_burst(Rig *r, unsigned total)
{
    return blk_load_burst(&r->blk, r->buf, QD, total, TIMEOUT_MS);
}

/* a steady guest: a new request every millisecond (blk-load.h) */
static unsigned run_paced(Rig *r, unsigned total)
{
    return blk_load_paced(&r->blk, r->buf, QD, total, 1000, TIMEOUT_MS);
}

static void scenario_steady(Rig *r)
{
    uint64_t kicks0 = r->blk.vq.stats_kicks;
    uint64_t fast0 = counter(r, "notifies-fast");
    uint64_t polled0 = counter(r, "notify-polled");
    uint64_t kicks, fast, polled, fast_before;
    g_autoptr(GError) err = NULL;
    unsigned good;

    good = run_paced(r, PACED_REQS);
    kicks = r->blk.vq.stats_kicks - kicks0;
    fast = counter(r, "notifies-fast") - fast0;
    polled = counter(r, "notify-polled") - polled0;
    ok(good == PACED_REQS, "%u of %u requests of a steady guest completed OK",
       good, PACED_REQS);
    ok(kicks * 4 < PACED_REQS, "the guest notified %" PRIu64 " times for "
       "%u requests (%.3f per request; must stay well below one)", kicks,
       PACED_REQS, (double)kicks / PACED_REQS);
    ok(polled * 8 > PACED_REQS, "they were found in the ring with "
       "notifies off, the device kicked %" PRIu64 " times", polled);
    ok(fast >= kicks && kicks > 0, "every notify took the fast path (%"
       PRIu64 " fast, %" PRIu64 " sent)", fast, kicks);

    /* reset: the ioeventfds go away with the queue */
    fast_before = counter(r, "notifies-fast");
    ok(virtio_pci_reset(&r->blk.pci, &err), "device reset%s%s",
       err ? ": " : "", err ? err->message : "");
    ok(vmm_sim_mmio_write(r->sim, VCPU_SLOT, AS_GLOBAL,
                          r->blk.pci.notify, 2, 0, &err),
       "a write to the reset device's notify address is answered");
    ok(counter(r, "notifies-fast") == fast_before,
       "... by the memory API: its ioeventfd is no longer matched");
    virtio_blk_destroy(&r->blk);
    if (!blk_up(r)) {
        return;
    }
    fast_before = counter(r, "notifies-fast");
    good = run_burst(r, 200);
    ok(good == 200, "after the reset, 200 requests complete (%u), "
       "32 in flight, each replaced at once", good);
    ok(counter(r, "notifies-fast") > fast_before,
       "... and notifies take the fast path again");
}

static void scenario_instant(Rig *r)
{
    uint64_t kicks0 = r->blk.vq.stats_kicks;
    uint64_t polled0 = counter(r, "notify-polled");
    uint64_t kicks, polled;
    unsigned good = run_burst(r, INSTANT_REQS);

    kicks = r->blk.vq.stats_kicks - kicks0;
    polled = counter(r, "notify-polled") - polled0;
    ok(good == INSTANT_REQS, "%u of %u requests that complete within the "
       "turn completed OK, 32 in flight, each replaced at once", good,
       INSTANT_REQS);
    ok(kicks * 50 < INSTANT_REQS, "the guest notified %" PRIu64 " times "
       "for %u requests (%.3f per request; must stay below 0.02)", kicks,
       INSTANT_REQS, (double)kicks / INSTANT_REQS);
    ok(polled > kicks, "the accelerator found them in the drained ring "
       "with notifies off and kicked the device %" PRIu64 " times", polled);
}

static void scenario_stall(Rig *r)
{
    g_autoptr(GError) err = NULL;
    uint64_t stalled0 = counter(r, "notify-stalled");
    VirtioBlkReq *a, *b;

    uint64_t suppressed0 = counter(r, "notify-suppressed");
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000;

    ok(submit_read(r, 0, 0, &err), "a 20 ms request submitted");
    /* the device takes it: in flight, notifies off */
    while (counter(r, "notify-suppressed") == suppressed0 &&
           g_get_monotonic_time() < end) {
        g_usleep(1000);
    }
    ok(counter(r, "notify-suppressed") > suppressed0,
       "with it in flight, the queue's notifies are off");
    ok(submit_read(r, 1, 8, &err), "a second one behind it");
    a = virtio_blk_complete(&r->blk, TIMEOUT_MS, &err);
    ok(a && a->status == VIRTIO_BLK_S_OK, "the first completes%s%s",
       err ? ": " : "", err ? err->message : "");
    b = virtio_blk_complete(&r->blk, TIMEOUT_MS, &err);
    ok(b && b->status == VIRTIO_BLK_S_OK, "the second completes%s%s",
       err ? ": " : "", err ? err->message : "");
    ok(counter(r, "notify-stalled") > stalled0,
       "the queue's notifies came back on while nothing completed (%"
       PRIu64 ")", counter(r, "notify-stalled") - stalled0);
}

static void scenario_off(Rig *r)
{
    unsigned good = run_burst(r, 500);

    ok(good == 500, "with ioeventfd=off, 500 requests complete (%u)", good);
    ok(counter(r, "notifies-fast") == 0,
       "nothing took the fast path: the device registered no ioeventfd");
    ok(counter(r, "notify-suppressed") == 0,
       "nor was a queue without one suppressed");
}

/* @per_queue requests on each queue, all kicked, all reaped. */
static void scenario_mq(Rig *r, unsigned per_queue)
{
    unsigned done[VIRTIO_BLK_MAX_QUEUES] = { 0 }, wrong = 0, total = 0;
    uint64_t kicks = 0;
    g_autoptr(GError) err = NULL;
    VirtioBlkReq *req;
    unsigned q, i, round;

    for (round = 0; round < 20 && !err; round++) {
        unsigned want = total + per_queue * r->nqueues;

        for (q = 0; q < r->nqueues && !err; q++) {
            uint64_t k0 = virtio_blk_vq(&r->blk, q)->stats_kicks;

            for (i = 0; i < per_queue && !err; i++) {
                unsigned slot = q * per_queue + i;

                if (!virtio_blk_submit_on(&r->blk, q, VIRTIO_BLK_T_IN,
                                          slot * 8,
                                          r->buf + slot * SECTOR_BYTES,
                                          SECTOR_BYTES,
                                          GUINT_TO_POINTER(q), &err)) {
                    break;
                }
            }
            if (!err && virtio_blk_kick_on(&r->blk, q, &err)) {
                kicks += virtio_blk_vq(&r->blk, q)->stats_kicks - k0;
            }
        }
        while (!err && total < want) {
            for (q = 0; q < r->nqueues; q++) {
                while ((req = virtio_blk_poll_on(&r->blk, q))) {
                    wrong += GPOINTER_TO_UINT(req->opaque) != q ||
                             req->status != VIRTIO_BLK_S_OK;
                    done[q]++;
                    total++;
                }
            }
            if (total < want && !virtio_pci_wait(&r->blk.pci, TIMEOUT_MS,
                                                 &err) && !err) {
                g_set_error(&err, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                            "no queue interrupt");
            }
        }
    }
    ok(!err, "20 rounds of %u requests on each of %u queues%s%s", per_queue,
       r->nqueues, err ? ": " : "", err ? err->message : "");
    for (q = 0; q < r->nqueues; q++) {
        ok(done[q] == 20 * per_queue, "queue %u: %u requests completed on "
           "it", q, done[q]);
    }
    ok(!wrong, "every request completed OK on the queue it was put on "
       "(%u did not)", wrong);
    ok(kicks >= r->nqueues && counter(r, "notifies-fast") >= kicks,
       "every queue's notifies took the fast path (%" PRIu64 " fast, %"
       PRIu64 " sent)", counter(r, "notifies-fast"), kicks);
}

int main(int argc, char **argv)
{
    const char *loop_opts = argc > 2 ? argv[2] : "loop=uring";
    const char *scenario = argc > 3 ? argv[3] : "steady";
    const char *kind = scenario;    /* the scenario, wherever the device */
    const char *placement = "";     /* virtio-blk-pci's IOThread options */
    g_autofree char *dir = NULL;
    g_autofree char *accel = NULL;
    g_autofree char *mq_opts = NULL;
    Rig r = { 0 };
    bool stall, instant, off;

    if (g_str_has_prefix(scenario, "mq")) {
        r.nqueues = atoi(scenario + 2);
        if (r.nqueues < 2 || r.nqueues > 3) {
            fprintf(stderr, "test-notify: mq2 or mq3, not %s\n", scenario);
            return 2;
        }
        mq_opts = g_strdup_printf(", \"num-queues\": %u, "
                                  "\"iothread-vq-mapping\": [%s]",
                                  r.nqueues, r.nqueues == 2 ? IO2 : IO3);
        placement = mq_opts;
        kind = "mq";
    } else if (g_str_equal(scenario, "iothread-vq-mapping")) {
        placement = MAPPING_OPTS;
        kind = "steady";
    } else if (g_str_has_prefix(scenario, "iothread")) {
        placement = IOTHREAD_OPTS;
        kind = scenario[8] == '-' ? scenario + 9 : "steady";
    }
    stall = g_str_equal(kind, "stall");
    instant = g_str_equal(kind, "instant");
    off = g_str_equal(kind, "off");

    dir = harness_init(argc > 1 ? argv[1] : NULL, "test-notify");
    if (!dir) {
        return 77;
    }
    printf("# %s, %s\n", loop_opts, scenario);
    /*
     * steady: its completions come a millisecond apart, so notifies stay
     * off only if a millisecond without one is not a stall
     */
    accel = g_strdup_printf("%s%s", g_str_equal(kind, "steady") ?
                            "notify-suppress-us=20000," :
                            instant ? "notify-poll-us=10000," : "",
                            loop_opts);
    if (rig_up(&r, dir, accel, off ? ", \"ioeventfd\": false" : "",
               placement,
               stall ? 20000000 : mq_opts ? 200000 :
               instant ? 0 : 32000000)) {
        if (stall) {
            scenario_stall(&r);
        } else if (off) {
            scenario_off(&r);
        } else if (instant) {
            scenario_instant(&r);
        } else if (mq_opts) {
            scenario_mq(&r, QD / r.nqueues);
        } else {
            scenario_steady(&r);
        }
    }
    rig_down(&r);
    return harness_done();
}
