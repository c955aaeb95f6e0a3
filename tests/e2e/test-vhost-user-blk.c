/*
 * End-to-end: vhost-user-blk-pci under -accel sel4, served by
 * qemu-storage-daemon: the block data path leaves QEMU.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-vhost-user-blk QEMU_BINARY LOOP_OPTIONS [SCENARIO]
 * (exit 77, a skip, when QEMU_BINARY is empty or missing, or when
 * storage-daemon/qemu-storage-daemon is not built next to it; TAP-style
 * output, exit-code protocol).
 *
 * qemu-storage-daemon serves a vhost-user-blk export; QEMU (-machine
 * virt-sel4, the guest's RAM a shared fd of the transport) has -device
 * vhost-user-blk-pci on it and no block node of its own.
 *
 *  data      (the default) the export serves a raw file, with its notify
 *            hold on (notify-suppress-us=200).  The simulated guest's
 *            virtio-blk driver writes a pattern, flushes, reads it back
 *            and compares.  Checked besides: the file on disk holds the
 *            pattern (read directly); the daemon read and wrote the data
 *            (its /proc/PID/io rchar and wchar grew by at least the
 *            pattern's size, QEMU's by far less; its node's
 *            wr_highest_offset, from query-blockstats, is the pattern's
 *            end: the export keeps no request counters); QEMU has no
 *            block device at all; and the guest's notifies reached the
 *            daemon's kick eventfds through the accelerator's ioeventfd
 *            fast path (its notifies-fast counter).
 *  steady    the export serves a null-co node whose requests take 32 ms,
 *            notify-suppress-us=20000 (its completions come a
 *            millisecond apart: with a bound under that, every gap
 *            between them is a stall and notifies are on); a steady
 *            guest at 32 in flight, a new request every millisecond,
 *            each kicked.  The export has long taken each request before
 *            the next comes, so without its hold the guest notifies for
 *            every one (see upstream).  Every request completes, and the
 *            guest notifies for well under one request in four: the
 *            export found the rest in its ring after completions.  Then
 *            fio's burst pattern, 32 in flight, each completion replaced
 *            at once.
 *  upstream  steady's load on an export without notify-suppress-us: the
 *            guest notifies for at least half of its requests (nearly
 *            all; what steady's check would catch if the hold did
 *            nothing).
 *  drain     steady's export: 32 requests added at once, most of them
 *            with notifies off, then the daemon's node moves to an
 *            IOThread (x-blockdev-set-iothread: a drain, which ends the
 *            hold while requests wait in the ring; they reach the export
 *            through its kick eventfd) and all 32 complete; a steady
 *            guest is then held in the IOThread, and again after the node
 *            moves back to the main loop.
 *  option    an export with notify-suppress-us=1000001, over its bound:
 *            the daemon refuses it, with a message that says so.
 *  stall     requests of 1 s, notify-suppress-us=100000: one, then 10 ms
 *            later a second, which does not notify (the queue is held);
 *            the export takes it once nothing completed for 100 ms, so it
 *            completes well before the first plus a whole request's time
 *            (less than 500 ms after the first; it would be 1 s if it
 *            waited for the first's completion).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "sel4/vmm_sim.h"
#include "guest-alloc.h"
#include "virtio-blk.h"
#include "blk-load.h"
#include "qemu-launch.h"
#include "qmp-client.h"
#include "storage-daemon.h"
#include "qemu-harness.h"
#include "vmm-qemu-rig.h"

#define TIMEOUT_MS      20000
#define DISK_BYTES      (16u << 20)
#define CHUNK_BYTES     65536u
#define CHUNKS          32u         /* 2 MiB of pattern */
#define SECTOR          512u
#define ACCEL_PATH      "/machine/accel"
#define HOLD_OPTS       ",notify-suppress-us=200"
/* steady: completions come a millisecond apart, so the bound is longer */
#define STEADY_OPTS     ",notify-suppress-us=20000"
#define PACED_REQS      320
#define QD              32
#define STEADY_LAT_NS   32000000ll
/* stall: requests of 1 s, a bound of 100 ms */
#define STALL_LAT_NS    1000000000ll
#define STALL_OPTS      ",notify-suppress-us=100000"

typedef struct Rig {
    VmmSim *sim;
    VmmSimQemu q;
    GuestAlloc mem;
    VirtioBlk blk;
    uint64_t mmio_next;
    VmmSimQsd qsd;
    QmpClient *dqmp;            /* the daemon's monitor */
    uint64_t buf;               /* guest-physical, QD * 4 KiB */
} Rig;

/* byte @i of chunk @c: differs per chunk and per offset */
static uint8_t pattern(unsigned c, unsigned i)
{
    return (uint8_t)(i * 7 + c * 31 + (i >> 9));
}

static uint64_t accel_counter(Rig *r, const char *name)
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
    }
    return v;
}

static bool daemon_up(Rig *r, const char *dir, const char *blockdev,
                      const char *export_opts, const char *sock)
{
    g_autoptr(GError) err = NULL;

    r->qsd = (VmmSimQsd) {
        .bin = vmm_sim_qsd_path(qemu), .blockdev = blockdev, .sock = sock,
        .export_opts = export_opts,
        .object = "iothread,id=io0",
        .qmp = g_build_filename(dir, "qsd-qmp.sock", NULL),
        .log = g_build_filename(dir, "qsd.log", NULL),
    };
    if (!vmm_sim_qsd_start(&r->qsd, TIMEOUT_MS, &err)) {
        ok(false, "qemu-storage-daemon: %s", err->message);
        diag_file(r->qsd.log);
        return false;
    }
    r->dqmp = qmp_client_connect(r->qsd.qmp, TIMEOUT_MS, &err);
    ok(r->dqmp != NULL, "qemu-storage-daemon up, its QMP connected%s%s",
       err ? ": " : "", err ? err->message : "");
    return r->dqmp != NULL;
}

static bool rig_up(Rig *r, const char *dir, const char *loop_opts,
                   const char *blockdev, const char *export_opts)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *vsock = g_build_filename(dir, "vhost-blk.sock", NULL);
    g_autofree char *chardev = g_strdup_printf("socket,id=vu0,path=%s",
                                               vsock);
    const VmmSimConfig *c;
    const char *args[] = {
        "-chardev", chardev,
        "-device", "vhost-user-blk-pci,chardev=vu0,num-queues=1", NULL,
    };

    if (!daemon_up(r, dir, blockdev, export_opts, vsock)) {
        return false;
    }
    if (!e2e_vmm_qemu_up(dir, loop_opts, args, &r->sim, &r->q)) {
        return false;
    }
    c = vmm_sim_config(r->sim);
    r->mmio_next = c->pci_mmio_base;
    guest_alloc_init(&r->mem, r->sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    if (!virtio_blk_init(&r->blk, r->sim, &r->mem, 0, &r->mmio_next,
                         VMM_SIM_DEFAULT_MSI_SPI_BASE, true, 128, &err)) {
        ok(false, "virtio-blk up on vhost-user-blk-pci: %s", err->message);
        return false;
    }
    ok(r->blk.capacity * SECTOR == DISK_BYTES, "the guest sees the "
       "daemon's disk: %" PRIu64 " sectors", r->blk.capacity);
    r->buf = guest_alloc(&r->mem, QD * BLK_LOAD_REQ_BYTES, 4096);
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
    if (r->dqmp) {
        qmp_client_free(r->dqmp);
    }
    if (r->qsd.pid) {
        int st;

        vmm_sim_qsd_stop(&r->qsd, &st);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "qemu-storage-daemon ends cleanly on SIGTERM (status 0x%x)", st);
        if (n_fail) {
            diag_file(r->qsd.log);
        }
    }
    g_free((char *)r->qsd.bin);
    g_free((char *)r->qsd.qmp);
    g_free((char *)r->qsd.log);
    g_free((char *)r->q.qmp);
    g_free((char *)r->q.log);
    if (r->sim) {
        vmm_sim_free(r->sim);
    }
}

/* The daemon's query-blockstats of its node: @field. */
static int64_t daemon_stat(Rig *r, const char *field)
{
    g_autoptr(GError) err = NULL;
    JsonNode *ret = qmp_client_call(r->dqmp, "query-blockstats",
                                    "{\"query-nodes\": true}", &err);
    int64_t v = -1;
    JsonArray *a;
    guint i;

    if (!ret) {
        ok(false, "daemon query-blockstats: %s", err->message);
        return -1;
    }
    a = json_node_get_array(ret);
    for (i = 0; a && i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);

        if (g_strcmp0(json_object_get_string_member_with_default(
                          o, "node-name", ""), VMM_SIM_QSD_NODE) == 0) {
            v = json_object_get_int_member(
                json_object_get_object_member(o, "stats"), field);
        }
    }
    json_node_unref(ret);
    return v;
}

/* How many block devices QEMU itself has (query-block). */
static int qemu_block_devices(Rig *r)
{
    g_autoptr(GError) err = NULL;
    JsonNode *ret;
    int n;

    accel_counter(r, "notifies-fast");     /* connects */
    ret = qmp_client_call(r->q.qmp_client, "query-block", NULL, &err);
    if (!ret) {
        ok(false, "QEMU query-block: %s", err->message);
        return -1;
    }
    n = json_array_get_length(json_node_get_array(ret));
    json_node_unref(ret);
    return n;
}

/* Bytes @pid passed to read/write system calls so far: @field of
 * /proc/PID/io (rchar, wchar); -1 when it cannot be read. */
static int64_t proc_io(pid_t pid, const char *field)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/io", (int)pid);
    g_autofree char *text = NULL;
    g_autofree char *key = g_strdup_printf("%s: ", field);
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strstr(text, key))) {
        return -1;
    }
    return g_ascii_strtoll(p + strlen(key), NULL, 10);
}

static void check_file(const char *image)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    unsigned c, i, bad = 0;

    if (!g_file_get_contents(image, &data, &len, NULL) || len < DISK_BYTES) {
        ok(false, "read %s directly", image);
        return;
    }
    for (c = 0; c < CHUNKS; c++) {
        for (i = 0; i < CHUNK_BYTES; i++) {
            bad += (uint8_t)data[c * CHUNK_BYTES + i] != pattern(c, i);
        }
    }
    ok(bad == 0, "the file on disk, read directly, holds the pattern "
       "(%u bytes differ)", bad);
}

static void run(Rig *r, const char *image)
{
    g_autofree uint8_t *buf = g_malloc(CHUNK_BYTES);
    g_autoptr(GError) err = NULL;
    uint64_t fast0 = accel_counter(r, "notifies-fast");
    uint64_t kicks0 = r->blk.vq.stats_kicks;
    uint64_t kicks, fast;
    unsigned c, i, bad = 0, done = 0;
    const int64_t bytes = (int64_t)CHUNKS * CHUNK_BYTES;
    int64_t qsd_r0 = proc_io(r->qsd.pid, "rchar");
    int64_t qsd_w0 = proc_io(r->qsd.pid, "wchar");
    int64_t qemu_r0 = proc_io(r->q.pid, "rchar");
    int64_t qemu_w0 = proc_io(r->q.pid, "wchar");
    int64_t qsd_r, qsd_w, qemu_r, qemu_w;

    for (c = 0; c < CHUNKS; c++, done++) {
        for (i = 0; i < CHUNK_BYTES; i++) {
            buf[i] = pattern(c, i);
        }
        if (!virtio_blk_rw(&r->blk, true, c * (CHUNK_BYTES / SECTOR), buf,
                           CHUNK_BYTES, &err)) {
            break;
        }
    }
    ok(done == CHUNKS, "the guest wrote %u chunks of 64 KiB%s%s", done,
       err ? ": " : "", err ? err->message : "");
    ok(virtio_blk_flush(&r->blk, &err), "... and flushed%s%s",
       err ? ": " : "", err ? err->message : "");
    g_clear_error(&err);
    for (c = 0, done = 0; c < CHUNKS; c++, done++) {
        memset(buf, 0, CHUNK_BYTES);
        if (!virtio_blk_rw(&r->blk, false, c * (CHUNK_BYTES / SECTOR), buf,
                           CHUNK_BYTES, &err)) {
            break;
        }
        for (i = 0; i < CHUNK_BYTES; i++) {
            bad += buf[i] != pattern(c, i);
        }
    }
    ok(done == CHUNKS && bad == 0, "read back %u chunks: %u bytes differ%s%s",
       done, bad, err ? ": " : "", err ? err->message : "");

    check_file(image);
    qsd_r = proc_io(r->qsd.pid, "rchar") - qsd_r0;
    qsd_w = proc_io(r->qsd.pid, "wchar") - qsd_w0;
    qemu_r = proc_io(r->q.pid, "rchar") - qemu_r0;
    qemu_w = proc_io(r->q.pid, "wchar") - qemu_w0;
    ok(qsd_r >= bytes && qsd_w >= bytes, "the daemon read %" PRId64
       " and wrote %" PRId64 " bytes (the pattern: %" PRId64 ")",
       qsd_r, qsd_w, bytes);
    ok(qemu_r >= 0 && qemu_w >= 0 && qemu_r < bytes / 8 &&
       qemu_w < bytes / 8, "QEMU read %" PRId64 " and wrote %" PRId64
       " bytes meanwhile: the data did not pass through it", qemu_r, qemu_w);
    ok(daemon_stat(r, "wr_highest_offset") == bytes,
       "the daemon's node was written up to the pattern's end (%" PRId64
       ")", daemon_stat(r, "wr_highest_offset"));
    ok(qemu_block_devices(r) == 0,
       "QEMU has no block device: its block layer saw none of them");
    kicks = r->blk.vq.stats_kicks - kicks0;
    fast = accel_counter(r, "notifies-fast") - fast0;
    ok(kicks > 0 && fast >= kicks, "every guest notify took the "
       "accelerator's fast path to the daemon's kick eventfd (%" PRIu64
       " fast, %" PRIu64 " sent)", fast, kicks);
}

/*
 * A steady guest at 32 in flight (blk-load.h); returns the notifies it
 * sent per request, after checking that every request completed.
 */
static double run_steady(Rig *r)
{
    uint64_t kicks0 = r->blk.vq.stats_kicks;
    unsigned good = blk_load_paced(&r->blk, r->buf, QD, PACED_REQS, 1000,
                                   TIMEOUT_MS);
    uint64_t kicks = r->blk.vq.stats_kicks - kicks0;

    ok(good == PACED_REQS, "%u of %u requests of a steady guest completed "
       "OK", good, PACED_REQS);
    printf("# the guest notified %" PRIu64 " times for %u requests\n",
           kicks, PACED_REQS);
    return (double)kicks / PACED_REQS;
}

static void scenario_steady(Rig *r)
{
    double per_req = run_steady(r);
    unsigned good;

    ok(per_req < 0.25, "the guest notified for %.3f of its requests: the "
       "export held its notifies off and found the rest in its ring "
       "(must stay well below one)", per_req);
    good = blk_load_burst(&r->blk, r->buf, QD, 500, TIMEOUT_MS);
    ok(good == 500, "then 500 requests, 32 in flight, each replaced at "
       "once: %u completed OK", good);
}

static void scenario_upstream(Rig *r)
{
    double per_req = run_steady(r);

    ok(per_req >= 0.5, "without notify-suppress-us the guest notified for "
       "%.3f of its requests (the export turns notifies on whenever it "
       "has caught up)", per_req);
}

static void scenario_stall(Rig *r)
{
    g_autoptr(GError) err = NULL;
    VirtioBlkReq *req;
    uint64_t kicks0;
    int64_t t[2] = { 0, 0 };
    unsigned n;

    ok(blk_load_read(&r->blk, r->buf, 0, 0, &err), "a request of 1 s "
       "submitted%s%s", err ? ": " : "", err ? err->message : "");
    g_usleep(10000);
    kicks0 = r->blk.vq.stats_kicks;
    ok(blk_load_read(&r->blk, r->buf, 1, 8, &err), "10 ms later a second "
       "one%s%s", err ? ": " : "", err ? err->message : "");
    ok(r->blk.vq.stats_kicks == kicks0, "... which did not notify: the "
       "queue is held (%" PRIu64 " notifies)", r->blk.vq.stats_kicks - kicks0);
    for (n = 0; n < 2; n++) {
        req = virtio_blk_complete(&r->blk, TIMEOUT_MS, &err);
        if (!req) {
            ok(false, "completion %u of 2: %s", n + 1, err->message);
            return;
        }
        ok(req->status == VIRTIO_BLK_S_OK, "request %u completed OK",
           GPOINTER_TO_UINT(req->opaque));
        t[GPOINTER_TO_UINT(req->opaque)] = g_get_monotonic_time();
    }
    ok(t[1] - t[0] < 500000, "the second completed %" PRId64 " ms after "
       "the first: taken once nothing completed for 100 ms, not after the "
       "first (1000 ms)", (t[1] - t[0]) / 1000);
}

/* x-blockdev-set-iothread of the daemon's node: a drain, then @iothread */
static bool daemon_move(Rig *r, const char *iothread)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *args = g_strdup_printf(
        "{\"node-name\": \"" VMM_SIM_QSD_NODE "\", \"iothread\": %s, "
        "\"force\": true}", iothread);
    JsonNode *ret = qmp_client_call(r->dqmp, "x-blockdev-set-iothread", args,
                                    &err);

    ok(ret != NULL, "the daemon's node moves to %s (a drain)%s%s",
       iothread, err ? ": " : "", err ? err->message : "");
    if (ret) {
        json_node_unref(ret);
    }
    return ret != NULL;
}

/*
 * Moves while held: 32 requests of 32 ms added at once, the first
 * notifying, the rest found in the ring; the node (and the export) then
 * moves to an IOThread, a drain that ends the hold with requests still in
 * the ring: they reach the export through its kick eventfd, and all 32
 * complete.  In the IOThread a steady guest is held as in the main loop;
 * then back to the main loop, the same.
 */
static void scenario_drain(Rig *r)
{
    g_autoptr(GError) err = NULL;
    VirtioBlkReq *req;
    unsigned slot, good = 0, done = 0;
    double per_req;

    for (slot = 0; slot < QD; slot++) {
        if (!blk_load_read(&r->blk, r->buf, slot, slot * 8, &err)) {
            ok(false, "request %u: %s", slot, err->message);
            return;
        }
    }
    if (!daemon_move(r, "\"io0\"")) {
        return;
    }
    while (done < QD && (req = virtio_blk_complete(&r->blk, TIMEOUT_MS,
                                                   &err))) {
        good += req->status == VIRTIO_BLK_S_OK;
        done++;
    }
    ok(good == QD, "the 32 requests added with notifies off all completed "
       "OK across the move (%u)%s%s", good, err ? ": " : "",
       err ? err->message : "");
    if (good != QD) {
        return;                 /* the queue's state is unknown */
    }
    per_req = run_steady(r);
    ok(per_req < 0.25, "in the IOThread the guest notified for %.3f of "
       "its requests (held)", per_req);
    if (!daemon_move(r, "null")) {
        return;
    }
    per_req = run_steady(r);
    ok(per_req < 0.25, "back in the main loop: %.3f", per_req);
}

/*
 * An export whose notify-suppress-us is over its bound: the daemon
 * refuses it, says why, and never listens.
 */
static void scenario_option(const char *dir)
{
    g_autofree char *sock = g_build_filename(dir, "vhost-blk.sock", NULL);
    g_autofree char *log = g_build_filename(dir, "qsd.log", NULL);
    g_autofree char *bin = vmm_sim_qsd_path(qemu);
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    VmmSimQsd d = {
        .bin = bin, .sock = sock, .log = log,
        .blockdev = "driver=null-co,size=16777216",
        .export_opts = ",notify-suppress-us=1000001",
    };

    ok(!vmm_sim_qsd_start(&d, TIMEOUT_MS, &err), "the daemon refuses "
       "notify-suppress-us=1000001%s%s", err ? ": " : "",
       err ? err->message : "");
    if (d.pid) {
        vmm_sim_qsd_stop(&d, NULL);
    }
    ok(g_file_get_contents(log, &text, NULL, NULL) &&
       strstr(text, "notify-suppress-us must be at most 1000000, not "
                    "1000001"), "... and says why");
    if (n_fail) {
        diag_file(log);
    }
}

int main(int argc, char **argv)
{
    const char *loop_opts = argc > 2 ? argv[2] : "loop=uring";
    const char *scenario = argc > 3 ? argv[3] : "data";
    g_autofree char *dir = NULL;
    g_autofree char *image = NULL;
    g_autofree char *daemon = NULL;
    g_autofree char *blockdev = NULL;
    Rig r = { 0 };

    if (argc > 1 && argv[1][0]) {
        daemon = vmm_sim_qsd_path(argv[1]);
        if (!g_file_test(daemon, G_FILE_TEST_IS_EXECUTABLE)) {
            printf("1..0 # SKIP %s not built\n", daemon);
            return 77;
        }
    }
    dir = harness_init(argc > 1 ? argv[1] : NULL, "test-vhost-user-blk");
    if (!dir) {
        return 77;
    }
    printf("# %s, %s\n", loop_opts, scenario);
    if (!strcmp(scenario, "data")) {
        image = g_build_filename(dir, "disk.raw", NULL);
        blockdev = g_strdup_printf("driver=file,filename=%s,aio=threads,"
                                   "cache.direct=off", image);
        if (!g_file_set_contents(image, "", 0, NULL)) {
            ok(false, "create %s", image);
        } else if (truncate(image, DISK_BYTES)) {
            ok(false, "size %s", image);
        } else if (rig_up(&r, dir, loop_opts, blockdev, HOLD_OPTS)) {
            run(&r, image);
        }
    } else if (!strcmp(scenario, "steady") ||
               !strcmp(scenario, "upstream") ||
               !strcmp(scenario, "stall") || !strcmp(scenario, "drain")) {
        bool stall = !strcmp(scenario, "stall");
        bool upstream = !strcmp(scenario, "upstream");

        blockdev = g_strdup_printf("driver=null-co,size=%u,latency-ns=%lld,"
                                   "read-zeroes=on", DISK_BYTES,
                                   stall ? STALL_LAT_NS : STEADY_LAT_NS);
        if (rig_up(&r, dir, loop_opts, blockdev,
                   stall ? STALL_OPTS : upstream ? NULL : STEADY_OPTS)) {
            if (stall) {
                scenario_stall(&r);
            } else if (upstream) {
                scenario_upstream(&r);
            } else if (!strcmp(scenario, "drain")) {
                scenario_drain(&r);
            } else {
                scenario_steady(&r);
            }
        }
    } else if (!strcmp(scenario, "option")) {
        scenario_option(dir);
    } else {
        ok(false, "unknown scenario %s", scenario);
    }
    rig_down(&r);
    return harness_done();
}
