/*
 * The demo's workloads (see demo-workloads.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console-lab.h"
#include "demo-workloads.h"
#include "net-lab.h"
#include "virtio-9p.h"
#include "virtio-blk.h"
#include "virtio-rng.h"

#define DEMO_TIMEOUT_MS     20000
#define BLK_TOTAL           (16u << 20)     /* bytes written, then read */
#define BLK_REQ             (64u << 10)
#define BLK_DEPTH           32u
#define CONSOLE_ECHO        (64u << 10)
#define CONSOLE_CHUNK       4096u
#define P9_TEXT_NAME        "hello.txt"
#define P9_DATA_NAME        "data.bin"
#define P9_DATA_BYTES       (1u << 20)

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

void demo_rows_free(GPtrArray *rows)
{
    for (unsigned i = 0; i < rows->len; i++) {
        DemoRow *r = g_ptr_array_index(rows, i);

        g_free(r->device);
        g_free(r->operation);
        g_free(r->result);
        g_free(r);
    }
    g_ptr_array_free(rows, TRUE);
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

/* The network lab; the lock keeps cleanup from racing its set-up. */
static NetLab net_lab = { .tap_fd = -1 };
static GMutex net_lock;
static GError *net_setup_err;

void demo_cleanup(void)
{
    g_mutex_lock(&net_lock);
    net_lab_cleanup(&net_lab);
    g_mutex_unlock(&net_lock);
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

/* ---- virtio-net ---- */

char *demo_net_prepare(const char *id)
{
    g_mutex_lock(&net_lock);
    net_lab_init(&net_lab, "sel4-demo", "d");
    g_clear_error(&net_setup_err);
    net_lab_setup(&net_lab, &net_setup_err);
    g_mutex_unlock(&net_lock);
    return net_lab_netdev(&net_lab, id);
}

/* The device up, QEMU's tap moved to B, both namespaces addressed. */
static bool net_up(DemoGuest *g, VirtioNet *n, GError **errp)
{
    bool ok;

    if (net_setup_err) {
        *errp = g_error_copy(net_setup_err);
        return false;
    }
    if (!virtio_net_init(n, g->sim, &g->mem, DEMO_DEV_NET, &g->mmio_next,
                         demo_spi_base(g, DEMO_DEV_NET), true, NULL, errp) ||
        !virtio_net_link_up(n, errp)) {
        return false;
    }
    g_mutex_lock(&net_lock);
    ok = net_lab_configure(&net_lab, n->mac, errp);
    g_mutex_unlock(&net_lock);
    return ok;
}

/* The mean of the RTTs in @rtts ("us us ..."). */
static long net_rtt_avg(const char *rtts)
{
    long sum = 0, count = 0;
    char *end;

    for (long v = strtol(rtts, &end, 10); end != rtts;
         v = strtol(rtts, &end, 10)) {
        sum += v;
        count++;
        rtts = end;
    }
    return count ? sum / count : -1;
}

static void net_ping_row(DemoGuest *g, VirtioNet *n)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *rtts = NULL;
    int status = 0;
    bool ok = net_lab_ping(&net_lab, n, &rtts, &status, &err);

    if (ok) {
        demo_row(g, "virtio-net", "ping A->B across namespaces x3", true,
                 "rtt avg %ld us (%s)", net_rtt_avg(rtts), g_strchomp(rtts));
    } else {
        demo_row(g, "virtio-net", "ping A->B across namespaces x3", false,
                 "%s", err ? err->message : "echoes lost");
    }
}

static void net_tcp_row(DemoGuest *g, VirtioNet *n)
{
    g_autoptr(GError) err = NULL;
    NetLabTcp t;
    bool ok = net_lab_tcp_echo(&net_lab, n, &t, &err);

    if (ok) {
        demo_row(g, "virtio-net", "TCP 2 MiB echo A->B->A, sha256", true,
                 "%.1f MB/s both ways, sha256 %.8s... equal",
                 t.us ? 2.0 * NET_LAB_TCP_BYTES / t.us : 0,
                 t.want);
    } else {
        demo_row(g, "virtio-net", "TCP 2 MiB echo A->B->A, sha256", false,
                 "%s (server %zu bytes, client %zu, exits 0x%x 0x%x)",
                 err ? err->message : "data differs", t.srv_bytes,
                 t.cli_bytes, t.status[0], t.status[1]);
    }
}

void demo_net(DemoGuest *g)
{
    g_autoptr(GError) err = NULL;
    VirtioNet *n = g_new0(VirtioNet, 1);

    if (net_up(g, n, &err)) {
        net_ping_row(g, n);
        net_tcp_row(g, n);
    } else {
        demo_row(g, "virtio-net", "ping A->B across namespaces x3", false,
                 "%s", err->message);
    }
    virtio_net_destroy(n);
    g_free(n);
}

void demo_net_iperf3(DemoGuest *g)
{
    g_autoptr(GError) err = NULL;
    VirtioNet *n = g_new0(VirtioNet, 1);
    const char *op = "iperf3 A->B, " G_STRINGIFY(NET_LAB_IPERF3_SECONDS)
                     " s";
    double mbps = 0;

    if (net_up(g, n, &err) && net_lab_iperf3(&net_lab, n, &mbps, &err)) {
        demo_row(g, "virtio-net", op, true, "%.1f Mbit/s", mbps);
    } else {
        demo_row(g, "virtio-net", op, false, "%s", err->message);
    }
    virtio_net_destroy(n);
    g_free(n);
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

/* ---- virtio-console ---- */

static ConsoleLab console_lab = CONSOLE_LAB_INIT;

char *demo_console_prepare(const char *dir, const char *id)
{
    return console_lab_chardev(&console_lab, dir, id);
}

/* The port up on both sides: its id, or -1 with @errp set. */
static int console_up(DemoGuest *g, VirtioConsole *c, GError **errp)
{
    int id;

    if (!console_lab_connect(&console_lab, errp) ||
        !virtio_console_init(c, g->sim, &g->mem, DEMO_DEV_CONSOLE,
                             &g->mmio_next,
                             demo_spi_base(g, DEMO_DEV_CONSOLE), true,
                             errp)) {
        return -1;
    }
    id = virtio_console_open(c, DEMO_CONSOLE_PORT, DEMO_TIMEOUT_MS, errp);
    if (id < 0 || !virtio_console_wait_host(c, id, DEMO_TIMEOUT_MS, errp)) {
        return -1;
    }
    return id;
}

void demo_console(DemoGuest *g)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *out = g_malloc(CONSOLE_ECHO);
    g_autofree uint8_t *in = g_malloc0(CONSOLE_ECHO);
    VirtioConsole *c = g_new0(VirtioConsole, 1);
    const char *op = "echo 64 KiB through port " DEMO_CONSOLE_PORT;
    size_t got = 0;
    gint64 t0;
    int id;

    for (size_t i = 0; i < CONSOLE_ECHO; i++) {
        out[i] = ' ' + i % 95;
    }
    id = console_up(g, c, &err);
    if (id >= 0) {
        console_lab_echo_start(&console_lab);
        t0 = g_get_monotonic_time();
        got = console_lab_echo_chunks(c, id, out, in, CONSOLE_ECHO,
                                      CONSOLE_CHUNK, DEMO_TIMEOUT_MS, &err);
        t0 = g_get_monotonic_time() - t0;
        console_lab_echo_stop(&console_lab, got != CONSOLE_ECHO);
    }
    if (got == CONSOLE_ECHO && !memcmp(in, out, CONSOLE_ECHO)) {
        demo_row(g, "virtio-console", op, true, "%.1f MB/s round trip",
                 t0 ? (double)CONSOLE_ECHO / t0 : 0.0);
    } else {
        demo_row(g, "virtio-console", op, false, "%zu of %u bytes back, %s",
                 got, CONSOLE_ECHO,
                 err ? err->message :
                 got == CONSOLE_ECHO ? "not equal" : "timed out");
    }
    if (id >= 0) {
        virtio_console_close(c, id, NULL);
    }
    virtio_console_destroy(c);
    g_free(c);
    /* a soak comes back for another round: the path stays */
    console_lab_disconnect(&console_lab);
}

/* ---- virtio-9p ---- */

static const char p9_text[] =
    "Hello from the device VM's disk, read by the guest through 9P.\n";

bool demo_9p_prepare(const char *share)
{
    g_autofree char *text = g_build_filename(share, P9_TEXT_NAME, NULL);
    g_autofree char *data = g_build_filename(share, P9_DATA_NAME, NULL);
    g_autofree uint8_t *bytes = g_malloc(P9_DATA_BYTES);
    g_autoptr(GRand) r = g_rand_new_with_seed(9);

    for (size_t i = 0; i < P9_DATA_BYTES; i++) {
        bytes[i] = g_rand_int(r);
    }
    return g_file_set_contents(text, p9_text, -1, NULL) &&
           g_file_set_contents(data, (char *)bytes, P9_DATA_BYTES, NULL);
}

/* Read share file @name through @root; equal to the host's copy? */
static bool p9_read_equal(DemoGuest *g, Virtio9p *p, uint32_t root,
                          const char *name, size_t *len, GError **errp)
{
    g_autofree char *path = g_build_filename(g->workdir, "share", name,
                                             NULL);
    g_autofree char *want = NULL;
    g_autoptr(GByteArray) got = NULL;
    const char *names[] = { name };
    unsigned treads;
    gsize want_len;
    uint32_t fid;
    bool ok;

    ok = virtio_9p_open_path(p, root, names, 1, P9_DOTL_RDONLY, &fid, NULL,
                             errp);
    if (ok) {
        got = virtio_9p_read_all(p, fid, NULL, &treads, errp);
    }
    if (fid != P9_NOFID) {
        ok = virtio_9p_clunk(p, fid, ok && got ? errp : NULL) && ok;
    }
    if (!ok || !got) {
        return false;
    }
    *len = got->len;
    if (!g_file_get_contents(path, &want, &want_len, errp)) {
        return false;
    }
    if (want_len != got->len || memcmp(want, got->data, got->len)) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "%s: %u bytes through 9P differ from the host's %zu",
                    name, got->len, want_len);
        return false;
    }
    return true;
}

void demo_9p(DemoGuest *g)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) names = NULL;
    g_autofree char *listing = NULL;
    Virtio9p *p = g_new0(Virtio9p, 1);
    const char *op = "list /, read " P9_TEXT_NAME " and " P9_DATA_NAME;
    uint32_t root = P9_NOFID;
    P9Qid qid;
    size_t text_len = 0, data_len = 0;
    unsigned calls;
    gint64 us = 0;
    bool ok;

    ok = virtio_9p_init(p, g->sim, &g->mem, DEMO_DEV_9P, &g->mmio_next,
                        demo_spi_base(g, DEMO_DEV_9P), true, &err) &&
         virtio_9p_version(p, VIRTIO_9P_MSIZE, &err);
    if (ok) {
        root = virtio_9p_new_fid(p);
        ok = virtio_9p_attach(p, root, "root", "", getuid(), &qid, &err);
    }
    if (ok) {
        names = virtio_9p_list(p, root, &calls, &err);
        ok = names != NULL;
    }
    if (ok) {
        g_ptr_array_add(names, NULL);
        listing = g_strjoinv(" ", (char **)names->pdata);
        ok = p9_read_equal(g, p, root, P9_TEXT_NAME, &text_len, &err);
    }
    if (ok) {
        us = g_get_monotonic_time();
        ok = p9_read_equal(g, p, root, P9_DATA_NAME, &data_len, &err);
        us = g_get_monotonic_time() - us;
    }
    if (ok) {
        ok = virtio_9p_clunk(p, root, &err);
    }
    if (ok) {
        demo_row(g, "virtio-9p", op, true, "[%s], %zu + %zu bytes equal, "
                 "%.1f MB/s", listing, text_len, data_len,
                 us ? (double)data_len / us : 0.0);
    } else {
        demo_row(g, "virtio-9p", op, false, "%s", err->message);
    }
    virtio_9p_destroy(p);
    g_free(p);
}
