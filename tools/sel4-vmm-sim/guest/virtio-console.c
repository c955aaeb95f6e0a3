/*
 * The simulated guest's virtio-console driver (see virtio-console.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <endian.h>
#include <stdarg.h>
#include <string.h>

#include "sel4/sel4_error.h"
#include "virtio-console.h"

/* control events (virtio 1.x 5.3.6.2; QEMU says PORT_ADD/PORT_REMOVE) */
#define VIRTIO_CONSOLE_DEVICE_READY     0
#define VIRTIO_CONSOLE_PORT_ADD         1
#define VIRTIO_CONSOLE_PORT_REMOVE      2
#define VIRTIO_CONSOLE_PORT_READY       3
#define VIRTIO_CONSOLE_CONSOLE_PORT     4
#define VIRTIO_CONSOLE_RESIZE           5
#define VIRTIO_CONSOLE_PORT_OPEN        6
#define VIRTIO_CONSOLE_PORT_NAME        7

/* device config: cols, rows, then max_nr_ports */
#define VIRTIO_CONSOLE_CFG_MAX_NR_PORTS 4

#define CTRL_RX_QUEUE   2
#define CTRL_TX_QUEUE   3
/* how long bring-up steps wait for the device */
#define CONSOLE_TIMEOUT_MS  5000

/* struct virtio_console_control, little-endian */
typedef struct VirtioConsoleControl {
    uint32_t id;
    uint16_t event;
    uint16_t value;
} VirtioConsoleControl;

_Static_assert(sizeof(VirtioConsoleControl) == 8,
               "virtio 1.x: 8-byte control header");

typedef bool ConsoleCond(VirtioConsole *c, const void *opaque);

#define fail(errp, c, fmt, ...) \
    sel4_fail(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED, \
              "virtio-console (device %u): " fmt, (c)->pci.index, \
              ##__VA_ARGS__)

/* Port 0 is queues 0/1; port p >= 1 follows the control queues 2/3. */
static unsigned port_queue(unsigned id, bool tx)
{
    return (id ? 2 * id + 2 : 0) + tx;
}

static bool alloc_bufs(GuestAlloc *mem, VirtioConsoleBuf *b, unsigned n,
                       uint32_t size)
{
    uint64_t gpa = guest_alloc(mem, (uint64_t)n * size, 64);

    for (unsigned i = 0; i < n; i++) {
        b[i] = (VirtioConsoleBuf) { .gpa = gpa + (uint64_t)i * size };
    }
    return gpa != 0;
}

/* Make @b available to the device as a receive buffer of @size bytes. */
static bool post_rx(Virtq *vq, VirtioConsoleBuf *b, uint32_t size)
{
    VirtqBuf vb = { .gpa = b->gpa, .len = size, .device_writes = true };

    b->len = b->off = 0;
    return virtq_add(vq, &vb, 1, b, false) >= 0;
}

/* ---- control queue ---- */

static int reap_ctrl_tx(VirtioConsole *c)
{
    VirtioConsoleBuf *b;
    int n = 0;

    while ((b = virtq_get_used(&c->ctrl_tx, NULL))) {
        b->busy = false;
        n++;
    }
    return n;
}

static VirtioConsoleBuf *free_ctrl_txb(VirtioConsole *c)
{
    reap_ctrl_tx(c);
    for (unsigned i = 0; i < VIRTIO_CONSOLE_CTRL_BUFS; i++) {
        if (!c->ctrl_txb[i].busy) {
            return &c->ctrl_txb[i];
        }
    }
    return NULL;
}

/*
 * Send one control message (@name, if any, after the header).  Only the
 * control transmit queue is looked at while waiting for a free buffer, so
 * this may be called while control messages are being handled.
 */
static bool ctrl_send(VirtioConsole *c, uint32_t id, uint16_t event,
                      uint16_t value, GError **errp)
{
    gint64 end = g_get_monotonic_time() + CONSOLE_TIMEOUT_MS * 1000;
    VirtioConsoleControl msg = {
        .id = htole32(id), .event = htole16(event), .value = htole16(value),
    };
    VirtioConsoleBuf *b;
    VirtqBuf vb;

    while (!(b = free_ctrl_txb(c))) {
        int left = (end - g_get_monotonic_time()) / 1000;
        GError *local = NULL;

        if (left <= 0 || vmm_sim_peer_gone(c->pci.sim)) {
            return fail(errp, c, "control queue stuck (event %u)", event);
        }
        if (!virtio_pci_wait(&c->pci, left, &local) && local) {
            g_propagate_error(errp, local);
            return false;
        }
    }
    memcpy(guest_ptr(c->pci.mem, b->gpa, sizeof(msg)), &msg, sizeof(msg));
    vb = (VirtqBuf) { .gpa = b->gpa, .len = sizeof(msg) };
    if (virtq_add(&c->ctrl_tx, &vb, 1, b, false) < 0) {
        return fail(errp, c, "control transmit queue full");
    }
    b->busy = true;
    c->ctrl_out++;
    return virtio_pci_kick(&c->pci, &c->ctrl_tx, errp);
}

static VirtioConsolePort *ctrl_port(VirtioConsole *c, uint32_t id)
{
    return id < c->nr_ports ? &c->port[id] : NULL;
}

/* PORT_ADD: the port exists; say we are ready for it (or cannot be). */
static bool ctrl_port_add(VirtioConsole *c, uint32_t id, GError **errp)
{
    VirtioConsolePort *p = ctrl_port(c, id);

    if (!p) {
        /* its queues are beyond what we set up */
        return ctrl_send(c, id, VIRTIO_CONSOLE_PORT_READY, 0, errp);
    }
    p->added = true;
    p->readied = true;
    return ctrl_send(c, id, VIRTIO_CONSOLE_PORT_READY, 1, errp);
}

static void ctrl_port_name(VirtioConsolePort *p, const char *name,
                           size_t len)
{
    len = MIN(len, sizeof(p->name) - 1);
    memcpy(p->name, name, len);
    p->name[len] = 0;       /* also cuts at the device's own NUL */
}

/* One message from the device's control queue (@len bytes at @buf). */
static bool ctrl_handle(VirtioConsole *c, const uint8_t *buf, uint32_t len,
                        GError **errp)
{
    VirtioConsoleControl msg;
    VirtioConsolePort *p;
    uint32_t id;

    c->ctrl_in++;
    if (len < sizeof(msg)) {
        c->ctrl_bad++;
        return true;
    }
    memcpy(&msg, buf, sizeof(msg));
    id = le32toh(msg.id);
    if (le16toh(msg.event) == VIRTIO_CONSOLE_PORT_ADD) {
        return ctrl_port_add(c, id, errp);
    }
    p = ctrl_port(c, id);
    if (!p) {
        c->ctrl_bad++;
        return true;
    }
    switch (le16toh(msg.event)) {
    case VIRTIO_CONSOLE_PORT_REMOVE:
        p->added = p->readied = p->host_open = p->guest_open = false;
        p->console = false;
        p->name[0] = 0;
        break;
    case VIRTIO_CONSOLE_CONSOLE_PORT:
        p->console = msg.value != 0;
        break;
    case VIRTIO_CONSOLE_PORT_OPEN:
        p->host_open = msg.value != 0;
        break;
    case VIRTIO_CONSOLE_PORT_NAME:
        ctrl_port_name(p, (const char *)buf + sizeof(msg), len - sizeof(msg));
        break;
    case VIRTIO_CONSOLE_RESIZE:
        break;              /* we have no window size to care about */
    default:
        c->ctrl_bad++;
    }
    return true;
}

static int reap_ctrl_rx(VirtioConsole *c, GError **errp)
{
    VirtioConsoleBuf *b;
    uint32_t len = 0;
    int n = 0;

    while ((b = virtq_get_used(&c->ctrl_rx, &len))) {
        len = MIN(len, VIRTIO_CONSOLE_CTRL_BUF);
        n++;
        if (!ctrl_handle(c, guest_ptr(c->pci.mem, b->gpa, len), len, errp)) {
            return -1;
        }
        if (!post_rx(&c->ctrl_rx, b, VIRTIO_CONSOLE_CTRL_BUF)) {
            fail(errp, c, "cannot repost a control buffer");
            return -1;
        }
    }
    return n && !virtio_pci_kick(&c->pci, &c->ctrl_rx, errp) ? -1 : n;
}

/* ---- ports ---- */

static int reap_port(VirtioConsolePort *p)
{
    VirtioConsoleBuf *b;
    uint32_t len = 0;
    int n = 0;

    while ((b = virtq_get_used(&p->rx, &len))) {
        b->len = MIN(len, VIRTIO_CONSOLE_BUF);
        b->off = 0;
        p->rx_bytes += b->len;
        g_queue_push_tail(&p->filled, b);
        n++;
    }
    while ((b = virtq_get_used(&p->tx, NULL))) {
        b->busy = false;
        n++;
    }
    return n;
}

/* Everything the device used on every queue; -1 on error. */
static int reap_all(VirtioConsole *c, GError **errp)
{
    int n = 0, r;

    if (c->multiport) {
        r = reap_ctrl_rx(c, errp);
        if (r < 0) {
            return -1;
        }
        n += r + reap_ctrl_tx(c);
    }
    for (unsigned i = 0; i < c->nr_ports; i++) {
        n += reap_port(&c->port[i]);
    }
    return n;
}

int virtio_console_poll(VirtioConsole *c, int timeout_ms, GError **errp)
{
    GError *local = NULL;
    int n = reap_all(c, errp);

    if (n != 0 || timeout_ms == 0) {
        return n;
    }
    if (!virtio_pci_wait(&c->pci, timeout_ms, &local) && local) {
        g_propagate_error(errp, local);
        return -1;
    }
    return reap_all(c, errp);
}

/*
 * Handle the device's messages until @cond holds; a TIMEOUT error naming
 * @what after @timeout_ms.
 */
static bool console_wait(VirtioConsole *c, ConsoleCond *cond,
                         const void *opaque, int timeout_ms, const char *what,
                         GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        int left;

        if (virtio_console_poll(c, 0, errp) < 0) {
            return false;
        }
        if (cond(c, opaque)) {
            return true;
        }
        if (vmm_sim_peer_gone(c->pci.sim)) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_PEER_GONE,
                        "virtio-console: QEMU went away waiting for %s",
                        what);
            return false;
        }
        left = (end - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                        "virtio-console: no %s within %d ms", what,
                        timeout_ms);
            return false;
        }
        if (virtio_console_poll(c, left, errp) < 0) {
            return false;
        }
    }
}

/* Queues and buffers of port @id, receive buffers posted. */
static bool setup_port(VirtioConsole *c, unsigned id, GError **errp)
{
    VirtioConsolePort *p = &c->port[id];

    p->id = id;
    g_queue_init(&p->filled);
    if (!alloc_bufs(c->pci.mem, p->rxb, VIRTIO_CONSOLE_RX_BUFS,
                    VIRTIO_CONSOLE_BUF) ||
        !alloc_bufs(c->pci.mem, p->txb, VIRTIO_CONSOLE_TX_BUFS,
                    VIRTIO_CONSOLE_BUF)) {
        return fail(errp, c, "no guest RAM for port %u's buffers", id);
    }
    if (!virtio_pci_setup_queue(&c->pci, &p->rx, port_queue(id, false),
                                VIRTIO_CONSOLE_RX_BUFS, errp) ||
        !virtio_pci_setup_queue(&c->pci, &p->tx, port_queue(id, true),
                                VIRTIO_CONSOLE_TX_BUFS, errp)) {
        return false;
    }
    for (unsigned i = 0; i < VIRTIO_CONSOLE_RX_BUFS; i++) {
        if (!post_rx(&p->rx, &p->rxb[i], VIRTIO_CONSOLE_BUF)) {
            return fail(errp, c, "port %u: receive ring too small", id);
        }
    }
    return true;
}

static bool setup_ctrl(VirtioConsole *c, GError **errp)
{
    if (!alloc_bufs(c->pci.mem, c->ctrl_rxb, VIRTIO_CONSOLE_CTRL_BUFS,
                    VIRTIO_CONSOLE_CTRL_BUF) ||
        !alloc_bufs(c->pci.mem, c->ctrl_txb, VIRTIO_CONSOLE_CTRL_BUFS,
                    VIRTIO_CONSOLE_CTRL_BUF)) {
        return fail(errp, c, "no guest RAM for control buffers");
    }
    if (!virtio_pci_setup_queue(&c->pci, &c->ctrl_rx, CTRL_RX_QUEUE,
                                VIRTIO_CONSOLE_CTRL_BUFS, errp) ||
        !virtio_pci_setup_queue(&c->pci, &c->ctrl_tx, CTRL_TX_QUEUE,
                                VIRTIO_CONSOLE_CTRL_BUFS, errp)) {
        return false;
    }
    /* the device drops control messages when it finds no buffer */
    for (unsigned i = 0; i < VIRTIO_CONSOLE_CTRL_BUFS; i++) {
        if (!post_rx(&c->ctrl_rx, &c->ctrl_rxb[i], VIRTIO_CONSOLE_CTRL_BUF)) {
            return fail(errp, c, "control receive ring too small");
        }
    }
    return true;
}

/* After MULTIPORT: how many ports the device has, how many we take. */
static bool read_max_ports(VirtioConsole *c, GError **errp)
{
    uint64_t v = 1;

    if (c->multiport &&
        !virtio_pci_config_read(&c->pci, VIRTIO_CONSOLE_CFG_MAX_NR_PORTS, 4,
                                &v, errp)) {
        return false;
    }
    if (!v) {
        return fail(errp, c, "max_nr_ports is 0");
    }
    c->max_nr_ports = v;
    c->nr_ports = MIN(v, VIRTIO_CONSOLE_MAX_PORTS);
    return true;
}

/* Tell the device what receive buffers it has, then that we are ready. */
static bool console_start(VirtioConsole *c, GError **errp)
{
    for (unsigned i = 0; i < c->nr_ports; i++) {
        if (!virtio_pci_kick(&c->pci, &c->port[i].rx, errp)) {
            return false;
        }
    }
    if (!c->multiport) {
        /* a single port is there, and open, from the start */
        c->port[0].added = c->port[0].readied = true;
        c->port[0].host_open = true;
        return true;
    }
    return virtio_pci_kick(&c->pci, &c->ctrl_rx, errp) &&
           ctrl_send(c, 0, VIRTIO_CONSOLE_DEVICE_READY, 1, errp);
}

bool virtio_console_init(VirtioConsole *c, VmmSim *sim, GuestAlloc *mem,
                         unsigned index, uint64_t *mmio_next,
                         unsigned spi_base, bool use_msix, GError **errp)
{
    memset(c, 0, sizeof(*c));
    if (!virtio_pci_probe(&c->pci, sim, mem, index, mmio_next, errp) ||
        !virtio_pci_negotiate(&c->pci,
                              UINT64_C(1) << VIRTIO_CONSOLE_F_MULTIPORT |
                              UINT64_C(1) << VIRTIO_F_EVENT_IDX, errp) ||
        !virtio_pci_setup_irqs(&c->pci, spi_base, use_msix, errp)) {
        return false;
    }
    c->multiport = virtio_pci_has(&c->pci, VIRTIO_CONSOLE_F_MULTIPORT);
    if (!read_max_ports(c, errp)) {
        return false;
    }
    for (unsigned i = 0; i < c->nr_ports; i++) {
        if (!setup_port(c, i, errp)) {
            return false;
        }
    }
    return (!c->multiport || setup_ctrl(c, errp)) &&
           virtio_pci_driver_ok(&c->pci, errp) &&
           console_start(c, errp);
}

void virtio_console_destroy(VirtioConsole *c)
{
    for (unsigned i = 0; i < c->nr_ports; i++) {
        g_queue_clear(&c->port[i].filled);
        virtq_destroy(&c->port[i].rx);
        virtq_destroy(&c->port[i].tx);
    }
    if (c->multiport) {
        virtq_destroy(&c->ctrl_rx);
        virtq_destroy(&c->ctrl_tx);
    }
}

/* ---- opening ---- */

static VirtioConsolePort *port_by_name(VirtioConsole *c, const char *name)
{
    for (unsigned i = 0; i < c->nr_ports; i++) {
        VirtioConsolePort *p = &c->port[i];

        if (p->added && (name ? g_str_equal(p->name, name) : i == 0)) {
            return p;
        }
    }
    return NULL;
}

static bool cond_named(VirtioConsole *c, const void *name)
{
    return port_by_name(c, name) != NULL;
}

int virtio_console_open(VirtioConsole *c, const char *name, int timeout_ms,
                        GError **errp)
{
    g_autofree char *what = g_strdup_printf("port named \"%s\"",
                                            name ? name : "(port 0)");
    VirtioConsolePort *p;

    if (!console_wait(c, cond_named, name, timeout_ms, what, errp)) {
        return -1;
    }
    p = port_by_name(c, name);
    if (c->multiport && !p->guest_open &&
        !ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_OPEN, 1, errp)) {
        return -1;
    }
    p->guest_open = true;
    return p->id;
}

static VirtioConsolePort *open_port(VirtioConsole *c, unsigned id,
                                    GError **errp)
{
    if (id >= c->nr_ports || !c->port[id].guest_open) {
        fail(errp, c, "port %u is not open", id);
        return NULL;
    }
    return &c->port[id];
}

bool virtio_console_close(VirtioConsole *c, unsigned id, GError **errp)
{
    VirtioConsolePort *p = open_port(c, id, errp);

    if (!p) {
        return false;
    }
    p->guest_open = false;
    return !c->multiport ||
           ctrl_send(c, id, VIRTIO_CONSOLE_PORT_OPEN, 0, errp);
}

static bool cond_host_open(VirtioConsole *c, const void *port)
{
    return ((const VirtioConsolePort *)port)->host_open;
}

bool virtio_console_wait_host(VirtioConsole *c, unsigned id, int timeout_ms,
                              GError **errp)
{
    VirtioConsolePort *p = open_port(c, id, errp);

    return p && console_wait(c, cond_host_open, p, timeout_ms,
                             "host side connection", errp);
}

/* ---- data ---- */

static VirtioConsoleBuf *free_txb(VirtioConsolePort *p)
{
    for (unsigned i = 0; i < VIRTIO_CONSOLE_TX_BUFS; i++) {
        if (!p->txb[i].busy) {
            return &p->txb[i];
        }
    }
    return NULL;
}

static bool cond_tx_free(VirtioConsole *c, const void *port)
{
    return free_txb((VirtioConsolePort *)port) != NULL;
}

bool virtio_console_write(VirtioConsole *c, unsigned id, const void *buf,
                          size_t len, int timeout_ms, GError **errp)
{
    VirtioConsolePort *p = open_port(c, id, errp);
    const uint8_t *in = buf;

    if (!p) {
        return false;
    }
    if (!p->host_open) {
        /* the device would drop it (as Linux refuses it) */
        return fail(errp, c, "port %u: the host side is not connected", id);
    }
    while (len) {
        VirtqBuf vb = { .len = MIN(len, VIRTIO_CONSOLE_BUF) };
        VirtioConsoleBuf *b;

        if (!console_wait(c, cond_tx_free, p, timeout_ms,
                          "free transmit buffer", errp)) {
            return false;
        }
        b = free_txb(p);
        vb.gpa = b->gpa;
        memcpy(guest_ptr(c->pci.mem, b->gpa, vb.len), in, vb.len);
        if (virtq_add(&p->tx, &vb, 1, b, false) < 0) {
            return fail(errp, c, "port %u: transmit ring full", id);
        }
        b->busy = true;
        p->tx_bytes += vb.len;
        in += vb.len;
        len -= vb.len;
        if (!virtio_pci_kick(&c->pci, &p->tx, errp)) {
            return false;
        }
    }
    return true;
}

static bool cond_tx_done(VirtioConsole *c, const void *port)
{
    return !virtq_in_flight(&((const VirtioConsolePort *)port)->tx);
}

bool virtio_console_flush(VirtioConsole *c, unsigned id, int timeout_ms,
                          GError **errp)
{
    VirtioConsolePort *p = open_port(c, id, errp);

    return p && console_wait(c, cond_tx_done, p, timeout_ms,
                             "transmit completion", errp);
}

static bool cond_rx(VirtioConsole *c, const void *port)
{
    return ((const VirtioConsolePort *)port)->filled.length != 0;
}

/* Copy out of the filled buffers; a drained one goes back to the device. */
static size_t take_rx(VirtioConsole *c, VirtioConsolePort *p, uint8_t *out,
                      size_t len, bool *reposted)
{
    size_t done = 0;
    VirtioConsoleBuf *b;

    while (done < len && (b = g_queue_peek_head(&p->filled))) {
        uint32_t n = MIN(len - done, b->len - b->off);

        memcpy(out + done, guest_ptr(c->pci.mem, b->gpa + b->off, n), n);
        b->off += n;
        done += n;
        if (b->off == b->len) {
            g_queue_pop_head(&p->filled);
            /* cannot fail: the ring has a slot for each of its buffers */
            post_rx(&p->rx, b, VIRTIO_CONSOLE_BUF);
            *reposted = true;
        }
    }
    return done;
}

ssize_t virtio_console_read(VirtioConsole *c, unsigned id, void *buf,
                            size_t len, int timeout_ms, GError **errp)
{
    VirtioConsolePort *p = open_port(c, id, errp);
    GError *local = NULL;
    bool reposted = false;
    size_t n;

    if (!p) {
        return -1;
    }
    if (!console_wait(c, cond_rx, p, timeout_ms, "received data", &local)) {
        if (g_error_matches(local, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT)) {
            g_error_free(local);
            return 0;
        }
        g_propagate_error(errp, local);
        return -1;
    }
    n = take_rx(c, p, buf, len, &reposted);
    /* a kick makes QEMU look at the chardev again */
    if (reposted && !virtio_pci_kick(&c->pci, &p->rx, errp)) {
        return -1;
    }
    return n;
}
