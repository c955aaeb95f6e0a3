/*
 * virtio-console: a virtserialport of virtio-serial-pci, backed by a unix
 * socket chardev whose client end the test holds as the host side.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Checks: the port is announced by name and opens on both sides, bytes
 * the guest writes come out of the socket, bytes written to the socket
 * reach the guest, and a round trip through a host thread that echoes
 * the socket compares equal (the host side: console-lab.h).
 */
#include <inttypes.h>
#include <string.h>

#include "guest.h"
#include "console-lab.h"
#include "../qemu-harness.h"

#define CON_PORT_NAME   "org.sel4.test.0"
#define CON_TO_HOST     1000    /* guest -> host bytes */
#define CON_TO_GUEST    1500    /* host -> guest bytes */
/* more than the guest's receive buffers (32 KiB), less than the socket's */
#define CON_BACKLOG     (48 * 1024)
/* more than the guest's receive buffers hold, so they are reposted */
#define CON_ECHO        (64 * 1024)
#define CON_ECHO_CHUNK  3000    /* not a buffer size: chunks straddle them */
#define CON_TIMEOUT_MS  5000

static ConsoleLab host = CONSOLE_LAB_INIT;

void guest_console_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *chardev = console_lab_chardev(&host, g->tmpdir, "con0");

    /* the port goes on the bus of the virtio-serial-pci before it */
    guest_args(argv, "-device", "virtio-serial-pci",
               "-chardev", chardev,
               "-device", "virtserialport,chardev=con0,name=" CON_PORT_NAME,
               NULL);
}

/* ---- the guest side ---- */

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);

    for (size_t i = 0; i < len; i++) {
        buf[i] = g_rand_int(r);
    }
}

static bool test_to_host(VirtioConsole *c, unsigned id)
{
    g_autoptr(GError) err = NULL;
    uint8_t out[CON_TO_HOST], in[CON_TO_HOST] = { 0 };
    size_t got = 0;
    bool r;

    fill(out, sizeof(out), 1);
    r = virtio_console_write(c, id, out, sizeof(out), CON_TIMEOUT_MS, &err) &&
        virtio_console_flush(c, id, CON_TIMEOUT_MS, &err);
    if (r) {
        got = console_lab_read(&host, in, sizeof(in), CON_TIMEOUT_MS);
    }
    r = r && got == sizeof(in) && !memcmp(in, out, sizeof(in));
    ok(r, "virtio-console: guest -> host, %zu of %u bytes on the socket, "
       "%s: %s", got, CON_TO_HOST,
       got == sizeof(in) && !memcmp(in, out, sizeof(in)) ? "equal" :
       "different", err ? err->message : "ok");
    return r;
}

static bool test_to_guest(VirtioConsole *c, unsigned id)
{
    g_autoptr(GError) err = NULL;
    uint8_t out[CON_TO_GUEST], in[CON_TO_GUEST] = { 0 };
    size_t got = 0;
    bool r;

    fill(out, sizeof(out), 2);
    r = console_lab_write(&host, out, sizeof(out));
    if (r) {
        got = console_lab_guest_read(c, id, in, sizeof(in), CON_TIMEOUT_MS,
                                     &err);
    }
    r = r && got == sizeof(in) && !memcmp(in, out, sizeof(in));
    ok(r, "virtio-console: host -> guest, %zu of %u bytes read by the "
       "guest, %s: %s", got, CON_TO_GUEST, r ? "equal" : "not equal",
       err ? err->message : "ok");
    return r;
}

/*
 * The host writes more than fits in the guest's receive buffers before
 * the guest reads: the rest must wait in QEMU and the socket until the
 * guest reposts buffers, and then all of it must arrive in order.
 */
static bool test_backlog(VirtioConsole *c, unsigned id)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *out = g_malloc(CON_BACKLOG);
    g_autofree uint8_t *in = g_malloc0(CON_BACKLOG);
    unsigned filled = 0;
    size_t got = 0;
    bool r;

    fill(out, CON_BACKLOG, 4);
    r = console_lab_write(&host, out, CON_BACKLOG);
    /* let the device fill what it can, then see how much it did */
    g_usleep(200 * 1000);
    if (r && virtio_console_poll(c, 0, &err) >= 0) {
        filled = c->port[id].filled.length;
        got = console_lab_guest_read(c, id, in, CON_BACKLOG, CON_TIMEOUT_MS,
                                     &err);
    }
    r = r && got == CON_BACKLOG && !memcmp(in, out, CON_BACKLOG);
    ok(r, "virtio-console: host -> guest backlog of %u bytes (%u of %u "
       "receive buffers were full before reading), %zu read, %s: %s",
       CON_BACKLOG, filled, VIRTIO_CONSOLE_RX_BUFS, got,
       r ? "equal" : "not equal", err ? err->message : "ok");
    return r;
}

static void test_echo(VirtioConsole *c, unsigned id)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *out = g_malloc(CON_ECHO);
    g_autofree uint8_t *in = g_malloc0(CON_ECHO);
    size_t got;
    bool r;

    fill(out, CON_ECHO, 3);
    console_lab_echo_start(&host);
    got = console_lab_echo_chunks(c, id, out, in, CON_ECHO, CON_ECHO_CHUNK,
                                  CON_TIMEOUT_MS, &err);
    r = got == CON_ECHO && !memcmp(in, out, CON_ECHO);
    console_lab_echo_stop(&host, !r);
    ok(r, "virtio-console: echo round trip of %u bytes in %u-byte writes, "
       "%zu back (host echoed %zu), %s: %s", CON_ECHO, CON_ECHO_CHUNK, got,
       host.echoed, r ? "equal" : "not equal", err ? err->message : "ok");
}

/* Bring the device up and open the port on both sides; its id or -1. */
static int console_open(Guest *g, VirtioConsole *c)
{
    g_autoptr(GError) err = NULL;
    int id = -1;
    bool r;

    r = virtio_console_init(c, g->sim, &g->mem, GUEST_DEV_CONSOLE,
                            &g->mmio_next,
                            guest_spi_base(g, GUEST_DEV_CONSOLE), g->use_msix,
                            &err);
    ok(r && c->multiport, "virtio-console: up, features 0x%" PRIx64
       " (MULTIPORT %s), max_nr_ports %u, %u ports set up, %s: %s",
       c->pci.features, c->multiport ? "yes" : "no", c->max_nr_ports,
       c->nr_ports, c->pci.msix ? "MSI-X" : "INTx",
       err ? err->message : "ok");
    ok(c->pci.msix == g->use_msix, "virtio-console: %s as asked",
       c->pci.msix ? "MSI-X" : "INTx");
    if (r) {
        id = virtio_console_open(c, CON_PORT_NAME, CON_TIMEOUT_MS, &err);
    }
    r = id >= 0 && virtio_console_wait_host(c, id, CON_TIMEOUT_MS, &err);
    ok(r, "virtio-console: port \"%s\" is id %d (queues %u/%u), %s, open "
       "on both sides: %s", CON_PORT_NAME, id,
       id >= 0 ? c->port[id].rx.index : 0, id >= 0 ? c->port[id].tx.index : 0,
       id >= 0 && c->port[id].console ? "a console" : "not a console",
       err ? err->message : "ok");
    return r ? id : -1;
}

void guest_console_test(Guest *g)
{
    g_autoptr(GError) err = NULL;
    VirtioConsole c;
    int id;

    if (!console_lab_connect(&host, &err)) {
        ok(false, "virtio-console: %s", err->message);
        return;
    }
    id = console_open(g, &c);
    if (id >= 0 && test_to_host(&c, id) && test_to_guest(&c, id) &&
        test_backlog(&c, id)) {
        test_echo(&c, id);
    }
    if (id >= 0) {
        bool r = virtio_console_close(&c, id, &err);

        ok(r && c.ctrl_bad == 0, "virtio-console: port closed; control "
           "messages %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " bad; "
           "port rx %" PRIu64 " tx %" PRIu64 " bytes: %s", c.ctrl_in,
           c.ctrl_out, c.ctrl_bad, c.port[id].rx_bytes, c.port[id].tx_bytes,
           err ? err->message : "ok");
    }
    virtio_console_destroy(&c);
}

void guest_console_cleanup(Guest *g)
{
    console_lab_close(&host);
}
