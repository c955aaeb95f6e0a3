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
 * the socket compares equal.  The VmmSim stays on this thread; the echo
 * thread only touches the socket.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "guest.h"
#include "virtio-console.h"
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

typedef struct ConsoleHost {
    char *path;                 /* the chardev's socket */
    int fd;                     /* our (client) end */
    GThread *echo;
    gint stop;
    size_t echoed;              /* read only after the thread is joined */
} ConsoleHost;

static ConsoleHost host = { .fd = -1 };

void guest_console_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *chardev = NULL;

    host.path = g_build_filename(g->tmpdir, "con.sock", NULL);
    chardev = g_strdup_printf("socket,id=con0,path=%s,server=on,wait=off",
                              host.path);
    /* the port goes on the bus of the virtio-serial-pci before it */
    guest_args(argv, "-device", "virtio-serial-pci",
               "-chardev", chardev,
               "-device", "virtserialport,chardev=con0,name=" CON_PORT_NAME,
               NULL);
}

/* ---- the host side ---- */

static bool host_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (strlen(host.path) >= sizeof(sa.sun_path)) {
        return false;
    }
    strcpy(sa.sun_path, host.path);
    /* QEMU listens before START_VM; retry a little anyway */
    for (int i = 0; i < 50; i++) {
        host.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (host.fd >= 0 &&
            connect(host.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return true;
        }
        if (host.fd >= 0) {
            close(host.fd);
            host.fd = -1;
        }
        g_usleep(100 * 1000);
    }
    return false;
}

static bool write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

/* Exactly @len bytes from the socket; how many arrived in time. */
static size_t host_read(uint8_t *buf, size_t len, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = { .fd = host.fd, .events = POLLIN };
        int left = (end - g_get_monotonic_time()) / 1000;
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            break;
        }
        n = read(host.fd, buf + got, len - got);
        if (n <= 0) {
            break;
        }
        got += n;
    }
    return got;
}

/* Send back whatever arrives, until told to stop or the socket ends. */
static gpointer echo_thread(gpointer opaque)
{
    uint8_t buf[4096];

    while (!g_atomic_int_get(&host.stop)) {
        struct pollfd pfd = { .fd = host.fd, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        n = read(host.fd, buf, sizeof(buf));
        if (n <= 0 || !write_all(host.fd, buf, n)) {
            break;
        }
        host.echoed += n;
    }
    return NULL;
}

static void echo_stop(bool unblock)
{
    if (!host.echo) {
        return;
    }
    g_atomic_int_set(&host.stop, 1);
    if (unblock) {
        /* a write blocked on a QEMU that stopped reading */
        shutdown(host.fd, SHUT_RDWR);
    }
    g_thread_join(host.echo);
    host.echo = NULL;
}

/* ---- the guest side ---- */

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);

    for (size_t i = 0; i < len; i++) {
        buf[i] = g_rand_int(r);
    }
}

/* Exactly @len bytes of port @id; how many arrived in time. */
static size_t guest_read(VirtioConsole *c, unsigned id, uint8_t *buf,
                         size_t len, GError **errp)
{
    gint64 end = g_get_monotonic_time() + CON_TIMEOUT_MS * 1000;
    size_t got = 0;

    while (got < len) {
        int left = (end - g_get_monotonic_time()) / 1000;
        ssize_t n;

        if (left <= 0) {
            break;
        }
        n = virtio_console_read(c, id, buf + got, len - got, left, errp);
        if (n < 0) {
            break;
        }
        got += n;
    }
    return got;
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
        got = host_read(in, sizeof(in), CON_TIMEOUT_MS);
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
    r = write_all(host.fd, out, sizeof(out));
    if (r) {
        got = guest_read(c, id, in, sizeof(in), &err);
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
    r = write_all(host.fd, out, CON_BACKLOG);
    /* let the device fill what it can, then see how much it did */
    g_usleep(200 * 1000);
    if (r && virtio_console_poll(c, 0, &err) >= 0) {
        filled = c->port[id].filled.length;
        got = guest_read(c, id, in, CON_BACKLOG, &err);
    }
    r = r && got == CON_BACKLOG && !memcmp(in, out, CON_BACKLOG);
    ok(r, "virtio-console: host -> guest backlog of %u bytes (%u of %u "
       "receive buffers were full before reading), %zu read, %s: %s",
       CON_BACKLOG, filled, VIRTIO_CONSOLE_RX_BUFS, got,
       r ? "equal" : "not equal", err ? err->message : "ok");
    return r;
}

/*
 * Write a chunk, then read back what has come so far: the guest never
 * has more than a chunk or two outstanding, as a terminal user would.
 */
static size_t echo_chunks(VirtioConsole *c, unsigned id, const uint8_t *out,
                          uint8_t *in, GError **errp)
{
    size_t sent = 0, got = 0;

    while (got < CON_ECHO) {
        size_t n = MIN(CON_ECHO_CHUNK, CON_ECHO - sent);
        ssize_t r;

        if (n && !virtio_console_write(c, id, out + sent, n, CON_TIMEOUT_MS,
                                       errp)) {
            break;
        }
        sent += n;
        r = virtio_console_read(c, id, in + got, CON_ECHO - got,
                                sent == CON_ECHO ? CON_TIMEOUT_MS : 10, errp);
        if (r < 0 || (r == 0 && sent == CON_ECHO)) {
            break;
        }
        got += r;
    }
    return got;
}

static void test_echo(VirtioConsole *c, unsigned id)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *out = g_malloc(CON_ECHO);
    g_autofree uint8_t *in = g_malloc0(CON_ECHO);
    size_t got;
    bool r;

    fill(out, CON_ECHO, 3);
    host.echo = g_thread_new("console-echo", echo_thread, NULL);
    got = echo_chunks(c, id, out, in, &err);
    r = got == CON_ECHO && !memcmp(in, out, CON_ECHO);
    echo_stop(!r);
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

    if (!host_connect()) {
        ok(false, "virtio-console: connect to %s: %s", host.path,
           g_strerror(errno));
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
    echo_stop(true);
    if (host.fd >= 0) {
        close(host.fd);
        host.fd = -1;
    }
    g_free(host.path);
    host.path = NULL;
}
