/*
 * End-to-end: the accelerator's irqfd, the interrupt fast path of devices
 * that complete requests in an IOThread.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-irqfd QEMU_BINARY LOOP_OPTIONS SCENARIO [no-uring]
 * (exit 77, a skip, when QEMU_BINARY is empty or missing; TAP-style
 * output, exit-code protocol).  no-uring: io_uring_setup() fails where
 * QEMU runs (qemu-user has no io_uring syscalls), so the irqfd thread
 * cannot start: QEMU must say so and serve every interrupt through
 * virtio-pci's own guest-notifier handler, which is what is checked.
 *
 * One virtio-blk-pci in an IOThread on a null-co node, driven by the
 * simulated guest with MSI-X: vector 0 (config) on one SPI, vector 1 (the
 * queue) on the next.  Counted: the SET_IRQ pulses the VMM received per
 * SPI, and the accelerator's counters over QMP (interrupts-fast: guest
 * notifier signals the irqfd thread sent; msi: interrupts raised through
 * QEMU's MSI-X emulation in the main loop).
 *
 *  fast    requests complete; their interrupts all come through the
 *          irqfd (interrupts-fast grows, msi does not).
 *  off     irqfd=off: the same requests complete through virtio-pci's own
 *          guest-notifier handler in the main loop (msi grows,
 *          interrupts-fast stays 0).
 *  mask    the queue's vector masked: a request completes with no pulse;
 *          the PBA shows it pending; unmasking delivers exactly one.  Then
 *          again without reading the PBA (the irqfd, added back on
 *          unmask, finds its eventfd signalled), and a vector aimed at
 *          another SPI while masked (the route follows the message).
 *  vector  the queue moved to vector 0 after DRIVER_OK: its completions
 *          pulse the config SPI, not the queue's; moved back, they pulse
 *          the queue's again.
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
#include "qemu-launch.h"
#include "qmp-client.h"
#include "qemu-harness.h"
#include "vmm-qemu-rig.h"

#define TIMEOUT_MS      20000
#define QD              8
#define SECTOR_BYTES    4096
#define ACCEL_PATH      "/machine/accel"
#define SPI_BASE        VMM_SIM_DEFAULT_MSI_SPI_BASE
#define SPI_OTHER       (SPI_BASE + 5)  /* unused by anything else */

typedef struct Rig {
    VmmSim *sim;
    VmmSimQemu q;
    GuestAlloc mem;
    VirtioBlk blk;
    uint64_t mmio_next;
    uint64_t buf;               /* guest-physical, QD * 4 KiB */
} Rig;

/* io_uring fails where QEMU runs: no irqfd thread (see the usage) */
static bool no_uring;

static uint64_t counter(Rig *r, const char *name)
{
    g_autofree char *prop = g_strdup_printf("stats-%s", name);
    g_autoptr(GError) err = NULL;
    uint64_t v = 0;

    if (!r->q.qmp_client) {
        r->q.qmp_client = qmp_client_connect(r->q.qmp, TIMEOUT_MS, &err);
    }
    if (!r->q.qmp_client ||
        !qmp_client_qom_get_u64(r->q.qmp_client, ACCEL_PATH, prop, &v,
                                &err)) {
        ok(false, "qom-get %s %s: %s", ACCEL_PATH, prop,
           err ? err->message : "no connection");
        return 0;
    }
    return v;
}

static uint64_t pulses(Rig *r, unsigned spi)
{
    return vmm_sim_irq_count(r->sim, spi);
}

static bool rig_up(Rig *r, const char *dir, const char *accel_opts)
{
    g_autoptr(GError) err = NULL;
    const VmmSimConfig *c;
    const char *args[] = {
        "-object", "iothread,id=io0",
        "-blockdev", "driver=null-co,node-name=n0,size=67108864,"
                     "latency-ns=200000,read-zeroes=on",
        "-device", "virtio-blk-pci,drive=n0,iothread=io0", NULL,
    };

    if (!e2e_vmm_qemu_up(dir, accel_opts, args, &r->sim, &r->q)) {
        return false;
    }
    c = vmm_sim_config(r->sim);
    r->mmio_next = c->pci_mmio_base;
    guest_alloc_init(&r->mem, r->sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    if (!virtio_blk_init_mq(&r->blk, r->sim, &r->mem, 0, &r->mmio_next,
                            SPI_BASE, true, 128, 1, &err)) {
        ok(false, "virtio-blk up: %s", err->message);
        return false;
    }
    ok(r->blk.pci.msix && r->blk.pci.spi_config == SPI_BASE &&
       r->blk.pci.spi_queues == SPI_BASE + 1,
       "MSI-X: config on SPI %u, the queue on SPI %u", SPI_BASE,
       SPI_BASE + 1);
    r->buf = guest_alloc(&r->mem, QD * SECTOR_BYTES, 4096);
    return true;
}

static void rig_down(Rig *r)
{
    int status = -1;

    if (r->blk.reqs) {
        virtio_blk_destroy(&r->blk);
    }
    if (r->q.pid) {
        vmm_sim_qemu_quit(&r->q, TIMEOUT_MS, &status);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "QEMU quits cleanly over QMP (status 0x%x)", status);
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

/* @n reads, all kicked at once; false (with a test line) on failure */
static bool submit(Rig *r, unsigned n)
{
    g_autoptr(GError) err = NULL;
    unsigned i;

    for (i = 0; i < n; i++) {
        if (!virtio_blk_submit(&r->blk, VIRTIO_BLK_T_IN, i * 8,
                               r->buf + (uint64_t)i * SECTOR_BYTES,
                               SECTOR_BYTES, NULL, &err)) {
            break;
        }
    }
    if (!err) {
        virtio_blk_kick(&r->blk, &err);
    }
    if (err) {
        ok(false, "submitting %u requests: %s", n, err->message);
    }
    return !err;
}

/*
 * Reap @n completions from the used ring without waiting for interrupts
 * (they may go elsewhere, or nowhere); how many completed OK.
 */
static unsigned reap_polling(Rig *r, unsigned n)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000;
    unsigned done = 0, good = 0;
    VirtioBlkReq *req;

    while (done < n && g_get_monotonic_time() < end) {
        req = virtio_blk_poll(&r->blk);
        if (!req) {
            g_usleep(500);
            continue;
        }
        good += req->status == VIRTIO_BLK_S_OK;
        done++;
    }
    return good;
}

/* @rounds rounds of QD requests, reaped through their interrupts */
static unsigned run_rounds(Rig *r, unsigned rounds)
{
    g_autoptr(GError) err = NULL;
    unsigned i, got, good = 0;
    VirtioBlkReq *req;

    for (i = 0; i < rounds; i++) {
        if (!submit(r, QD)) {
            return good;
        }
        for (got = 0; got < QD; got++) {
            req = virtio_blk_complete(&r->blk, TIMEOUT_MS, &err);
            if (!req) {
                ok(false, "round %u: %s", i, err->message);
                return good;
            }
            good += req->status == VIRTIO_BLK_S_OK;
        }
    }
    return good;
}

static void scenario_fast(Rig *r)
{
    uint64_t fast0 = counter(r, "interrupts-fast");
    uint64_t msi0 = counter(r, "msi");
    uint64_t spi0 = pulses(r, SPI_BASE + 1);
    unsigned good = run_rounds(r, 50);

    ok(good == 50 * QD, "in an IOThread, %u of %u requests completed, "
       "reaped through their interrupts", good, 50 * QD);
    ok(pulses(r, SPI_BASE + 1) > spi0, "the queue's SPI was pulsed %" PRIu64
       " times", pulses(r, SPI_BASE + 1) - spi0);
    if (no_uring) {
        g_autofree char *log = NULL;

        ok(g_file_get_contents(r->q.log, &log, NULL, NULL) &&
           strstr(log, "irqfd: no io_uring"), "without io_uring, QEMU "
           "warns that the irqfd thread is off");
        ok(counter(r, "interrupts-fast") == fast0,
           "none through an irqfd (interrupts-fast +%" PRIu64 ")",
           counter(r, "interrupts-fast") - fast0);
        ok(counter(r, "msi") > msi0, "all through virtio-pci's guest-"
           "notifier handler in the main loop (msi +%" PRIu64 ")",
           counter(r, "msi") - msi0);
        return;
    }
    ok(counter(r, "interrupts-fast") > fast0,
       "through the irqfd thread (interrupts-fast +%" PRIu64 ")",
       counter(r, "interrupts-fast") - fast0);
    ok(counter(r, "msi") == msi0, "none through the main loop's MSI-X "
       "emulation (msi +%" PRIu64 ")", counter(r, "msi") - msi0);
}

static void scenario_off(Rig *r)
{
    uint64_t msi0 = counter(r, "msi");
    unsigned good = run_rounds(r, 50);

    ok(good == 50 * QD, "irqfd=off: %u of %u requests completed, reaped "
       "through their interrupts", good, 50 * QD);
    ok(counter(r, "interrupts-fast") == 0, "nothing went through an irqfd");
    ok(counter(r, "msi") > msi0, "the interrupts came from the main loop's "
       "guest-notifier handler (msi +%" PRIu64 ")",
       counter(r, "msi") - msi0);
}

/*
 * Vector 1's pending bit, once the IOThread has signalled (it publishes
 * the used entry first, then signals: a read just after the entry could
 * come between the two).
 */
static bool pba_pending(Rig *r, GError **errp)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000;
    bool pending = false;

    while (virtio_pci_msix_pending(&r->blk.pci, 1, &pending, errp) &&
           !pending && g_get_monotonic_time() < end) {
        g_usleep(1000);
    }
    return pending;
}

/*
 * With vector 1 masked, one request completes without a pulse; then
 * unmasking delivers exactly one, on @spi.  @read_pba: look at the
 * pending bit in between (which moves the signal from the eventfd to the
 * PBA, as with KVM).
 */
static void masked_request(Rig *r, bool read_pba, unsigned spi,
                           const char *what)
{
    g_autoptr(GError) err = NULL;
    uint64_t spi0 = pulses(r, spi), fast0, msi0;
    bool pending = false, arrived;

    if (!submit(r, 1)) {
        return;
    }
    ok(reap_polling(r, 1) == 1, "%s: with vector 1 masked, a request "
       "completes (seen in the used ring)", what);
    ok(pulses(r, spi) == spi0, "... and no pulse came for it");
    if (read_pba) {
        ok(pba_pending(r, &err), "... the PBA shows vector 1 pending%s%s",
           err ? ": " : "", err ? err->message : "");
    }
    fast0 = counter(r, "interrupts-fast");
    msi0 = counter(r, "msi");
    ok(virtio_pci_msix_mask(&r->blk.pci, 1, false, &err),
       "vector 1 unmasked%s%s", err ? ": " : "", err ? err->message : "");
    arrived = vmm_sim_wait_irq_count(r->sim, spi, spi0 + 1, TIMEOUT_MS);
    ok(arrived, "... and the interrupt held back arrives on SPI %u", spi);
    if (!arrived) {
        /* where it stopped: in the PBA (lost by the unmask) or before */
        g_clear_error(&err);
        if (virtio_pci_msix_pending(&r->blk.pci, 1, &pending, &err)) {
            printf("# vector 1 pending bit now %d; interrupts-fast %" PRIu64
                   ", msi %" PRIu64 "\n", pending,
                   counter(r, "interrupts-fast"), counter(r, "msi"));
        }
    }
    if (read_pba) {
        ok(virtio_pci_msix_pending(&r->blk.pci, 1, &pending, &err) &&
           !pending, "... the pending bit is clear");
    } else if (no_uring) {
        ok(counter(r, "msi") == msi0 + 1, "... through virtio-pci's "
           "unmask, which found the guest notifier signalled (msi +%"
           PRIu64 ")", counter(r, "msi") - msi0);
    } else {
        ok(counter(r, "interrupts-fast") == fast0 + 1, "... through the "
           "irqfd added back, which found its eventfd signalled");
    }
    /* nothing else is in flight: exactly one */
    ok(pulses(r, spi) == spi0 + 1, "... exactly one (%" PRIu64 ")",
       pulses(r, spi) - spi0);
    r->blk.pci.irqs_seen = pulses(r, r->blk.pci.spi_queues);
}

static void scenario_mask(Rig *r)
{
    g_autoptr(GError) err = NULL;
    unsigned good;

    ok(virtio_pci_msix_mask(&r->blk.pci, 1, true, &err),
       "vector 1 masked%s%s", err ? ": " : "", err ? err->message : "");
    masked_request(r, true, SPI_BASE + 1, "PBA read");
    ok(virtio_pci_msix_mask(&r->blk.pci, 1, true, &err), "masked again");
    masked_request(r, false, SPI_BASE + 1, "PBA not read");

    /* aimed elsewhere while masked: the route follows on unmask */
    ok(virtio_pci_msix_mask(&r->blk.pci, 1, true, &err) &&
       virtio_pci_msix_route(&r->blk.pci, 1, SPI_OTHER, &err),
       "vector 1 masked and aimed at SPI %u%s%s", SPI_OTHER,
       err ? ": " : "", err ? err->message : "");
    masked_request(r, false, SPI_OTHER, "new SPI");
    r->blk.pci.spi_queues = SPI_OTHER;
    r->blk.pci.irqs_seen = pulses(r, SPI_OTHER);
    good = run_rounds(r, 10);
    ok(good == 10 * QD, "then %u of %u requests complete through SPI %u",
       good, 10 * QD, SPI_OTHER);
}

static void scenario_vector(Rig *r)
{
    g_autoptr(GError) err = NULL;
    uint64_t cfg0, q0;
    unsigned good;

    ok(virtio_pci_queue_vector(&r->blk.pci, 0, 0, &err),
       "queue 0 moved to vector 0 after DRIVER_OK%s%s", err ? ": " : "",
       err ? err->message : "");
    cfg0 = pulses(r, SPI_BASE);
    q0 = pulses(r, SPI_BASE + 1);
    good = 0;
    for (int i = 0; i < 10 && submit(r, QD); i++) {
        good += reap_polling(r, QD);
    }
    ok(good == 10 * QD, "%u of %u requests completed", good, 10 * QD);
    ok(vmm_sim_wait_irq_count(r->sim, SPI_BASE, cfg0 + 1, TIMEOUT_MS),
       "their interrupts pulse vector 0's SPI %u (%" PRIu64 ")", SPI_BASE,
       pulses(r, SPI_BASE) - cfg0);
    ok(pulses(r, SPI_BASE + 1) == q0, "none pulses the old vector's SPI %u",
       SPI_BASE + 1);

    ok(virtio_pci_queue_vector(&r->blk.pci, 0, 1, &err),
       "queue 0 back on vector 1%s%s", err ? ": " : "",
       err ? err->message : "");
    r->blk.pci.irqs_seen = pulses(r, SPI_BASE + 1);
    cfg0 = pulses(r, SPI_BASE);
    good = run_rounds(r, 10);
    ok(good == 10 * QD, "%u of %u requests complete through SPI %u again",
       good, 10 * QD, SPI_BASE + 1);
    ok(pulses(r, SPI_BASE) == cfg0, "and none pulses SPI %u", SPI_BASE);
}

int main(int argc, char **argv)
{
    const char *loop_opts = argc > 2 ? argv[2] : "loop=uring";
    const char *scenario = argc > 3 ? argv[3] : "fast";
    bool off = g_str_equal(scenario, "off");
    g_autofree char *dir = NULL;
    g_autofree char *accel = NULL;
    Rig r = { 0 };

    no_uring = argc > 4 && g_str_equal(argv[4], "no-uring");
    dir = harness_init(argc > 1 ? argv[1] : NULL, "test-irqfd");
    if (!dir) {
        return 77;
    }
    printf("# %s, %s%s\n", loop_opts, scenario,
           no_uring ? " (no io_uring here: no irqfd thread)" : "");
    accel = g_strdup_printf("%s%s", off ? "irqfd=off," : "", loop_opts);
    if (rig_up(&r, dir, accel)) {
        if (off) {
            scenario_off(&r);
        } else if (g_str_equal(scenario, "mask")) {
            scenario_mask(&r);
        } else if (g_str_equal(scenario, "vector")) {
            scenario_vector(&r);
        } else {
            scenario_fast(&r);
        }
    }
    rig_down(&r);
    return harness_done();
}
