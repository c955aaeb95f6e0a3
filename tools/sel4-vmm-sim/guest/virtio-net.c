/*
 * The simulated guest's virtio-net driver (see virtio-net.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Buffers are allocated once in guest RAM: one per receive descriptor and
 * one per transmit descriptor, so neither ring can run out of room while
 * a buffer is free.  A transmit buffer holds the header and the frame
 * back to back (one descriptor; VERSION_1 implies ANY_LAYOUT), and a
 * frame read from a tap lands there directly.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sel4/sel4_error.h"
#include "virtio-net.h"

#define NET_DEFAULT_QUEUE   256
/* the default receive buffer: a whole plain frame */
#define NET_TX_BUF_LEN      (VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME)
#define NET_OFFLOADS        (UINT64_C(1) << VIRTIO_NET_F_CSUM | \
                             UINT64_C(1) << VIRTIO_NET_F_GUEST_CSUM | \
                             UINT64_C(1) << VIRTIO_NET_F_GUEST_TSO4 | \
                             UINT64_C(1) << VIRTIO_NET_F_GUEST_TSO6 | \
                             UINT64_C(1) << VIRTIO_NET_F_HOST_TSO4 | \
                             UINT64_C(1) << VIRTIO_NET_F_HOST_TSO6)
#define NET_TSO             (UINT64_C(1) << VIRTIO_NET_F_GUEST_TSO4 | \
                             UINT64_C(1) << VIRTIO_NET_F_GUEST_TSO6 | \
                             UINT64_C(1) << VIRTIO_NET_F_HOST_TSO4 | \
                             UINT64_C(1) << VIRTIO_NET_F_HOST_TSO6)
/* the device config space (virtio 1.x 5.1.4) */
#define NET_CFG_MAC         0
#define NET_CFG_STATUS      6
/* num_buffers in struct virtio_net_hdr */
#define NET_HDR_NUM_BUFFERS 10
/* ISR bits (virtio 1.x 4.1.4.5) */
#define ISR_QUEUE           1
#define ISR_CONFIG          2
/* how often the bridge asks its stop condition while idle */
#define NET_BRIDGE_TICK_MS  20

#define net_fail(errp, ...) \
    sel4_fail(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED, \
              "virtio-net: " __VA_ARGS__)

/* ---- set-up ---- */

/* @count buffers of @len bytes in one block of guest RAM. */
static VirtioNetBuf *net_alloc_bufs(GuestAlloc *mem, unsigned count,
                                    uint32_t len)
{
    uint32_t stride = (len + 63) & ~63u;
    uint64_t base = guest_alloc(mem, (uint64_t)stride * count, 4096);
    VirtioNetBuf *bufs;

    if (!base) {
        return NULL;
    }
    bufs = g_new0(VirtioNetBuf, count);
    for (unsigned i = 0; i < count; i++) {
        bufs[i].gpa = base + (uint64_t)i * stride;
        bufs[i].host = guest_ptr(mem, bufs[i].gpa, len);
    }
    return bufs;
}

static bool net_read_mac(VirtioNet *n, GError **errp)
{
    uint64_t v;

    if (!virtio_pci_has(&n->pci, VIRTIO_NET_F_MAC)) {
        return true;            /* all zeroes: the device has none to say */
    }
    for (unsigned i = 0; i < 6; i++) {
        if (!virtio_pci_config_read(&n->pci, NET_CFG_MAC + i, 1, &v, errp)) {
            return false;
        }
        n->mac[i] = v;
    }
    return true;
}

static bool net_rx_post(VirtioNet *n, VirtioNetBuf *b)
{
    VirtqBuf vb = {
        .gpa = b->gpa, .len = n->rx_buf_len, .device_writes = true,
    };

    return virtq_add(&n->rxq, &vb, 1, b, false) >= 0;
}

/* Fill the receive ring and the stack of free transmit buffers. */
static bool net_alloc_queues(VirtioNet *n, GError **errp)
{
    GuestAlloc *mem = n->pci.mem;

    n->rx_bufs = net_alloc_bufs(mem, n->rxq.size, n->rx_buf_len);
    n->tx_bufs = net_alloc_bufs(mem, n->txq.size,
                                VIRTIO_NET_HDR_LEN + n->max_frame);
    if (!n->rx_bufs || !n->tx_bufs) {
        return net_fail(errp, "no guest RAM for the buffers");
    }
    n->tx_free = g_new(unsigned, n->txq.size);
    for (unsigned i = 0; i < n->txq.size; i++) {
        n->tx_free[n->tx_nfree++] = i;
    }
    return true;
}

static bool net_post_all_rx(VirtioNet *n, GError **errp)
{
    for (unsigned i = 0; i < n->rxq.size; i++) {
        if (!net_rx_post(n, &n->rx_bufs[i])) {
            return net_fail(errp, "receive ring refused buffer %u", i);
        }
    }
    n->stats.rx_kicks++;
    return virtio_pci_kick(&n->pci, &n->rxq, errp);
}

bool virtio_net_init(VirtioNet *n, VmmSim *sim, GuestAlloc *mem,
                     unsigned index, uint64_t *mmio_next, unsigned spi_base,
                     bool use_msix, const VirtioNetConfig *cfg,
                     GError **errp)
{
    static const VirtioNetConfig defaults;
    uint64_t wanted = UINT64_C(1) << VIRTIO_NET_F_MAC |
                      UINT64_C(1) << VIRTIO_NET_F_STATUS |
                      UINT64_C(1) << VIRTIO_F_EVENT_IDX;
    uint16_t qsize;

    cfg = cfg ? cfg : &defaults;
    memset(n, 0, sizeof(*n));
    qsize = cfg->queue_size ? cfg->queue_size : NET_DEFAULT_QUEUE;
    n->rx_buf_len = cfg->rx_buf_len ? cfg->rx_buf_len : NET_TX_BUF_LEN;
    if (cfg->mrg_rxbuf || cfg->offloads) {
        wanted |= UINT64_C(1) << VIRTIO_NET_F_MRG_RXBUF;
    }
    if (cfg->offloads) {
        wanted |= NET_OFFLOADS;
    }
    if (!virtio_pci_probe(&n->pci, sim, mem, index, mmio_next, errp) ||
        !virtio_pci_negotiate(&n->pci, wanted, errp)) {
        return false;
    }
    n->mrg = virtio_pci_has(&n->pci, VIRTIO_NET_F_MRG_RXBUF);
    n->offloads = n->pci.features & NET_OFFLOADS;
    n->max_frame = (n->pci.features & NET_TSO) ? VIRTIO_NET_MAX_GSO_FRAME
                                               : VIRTIO_NET_MAX_FRAME;
    n->rx_frame = g_malloc(n->max_frame);
    /* without merging, one buffer must hold the largest frame (5.1.6.3.1) */
    if (n->rx_buf_len <= VIRTIO_NET_HDR_LEN ||
        (!n->mrg && n->rx_buf_len < VIRTIO_NET_HDR_LEN + n->max_frame)) {
        return net_fail(errp, "receive buffers of %" PRIu32 " bytes are too "
                        "small%s", n->rx_buf_len,
                        n->mrg ? "" : " without MRG_RXBUF");
    }
    if (!virtio_pci_setup_irqs(&n->pci, spi_base, use_msix, errp)) {
        return false;
    }
    /* the SPI's count runs on across resets: start from where it is */
    if (n->pci.msix) {
        n->config_irqs_seen = vmm_sim_irq_count(sim, n->pci.spi_config);
    }
    return virtio_pci_setup_queue(&n->pci, &n->rxq, VIRTIO_NET_RX_QUEUE,
                                  qsize, errp) &&
           virtio_pci_setup_queue(&n->pci, &n->txq, VIRTIO_NET_TX_QUEUE,
                                  qsize, errp) &&
           net_read_mac(n, errp) &&
           net_alloc_queues(n, errp) &&
           virtio_pci_driver_ok(&n->pci, errp) &&
           /* buffers only once the device may look at them */
           net_post_all_rx(n, errp);
}

void virtio_net_destroy(VirtioNet *n)
{
    if (n->pci.sim && vmm_sim_connected(n->pci.sim)) {
        /* stop the device writing into buffers we no longer watch */
        virtio_pci_reset(&n->pci, NULL);
    }
    virtq_destroy(&n->rxq);
    virtq_destroy(&n->txq);
    g_clear_pointer(&n->rx_bufs, g_free);
    g_clear_pointer(&n->tx_bufs, g_free);
    g_clear_pointer(&n->tx_free, g_free);
    g_clear_pointer(&n->rx_frame, g_free);
    n->tx_nfree = 0;
}

unsigned virtio_net_tap_offloads(const VirtioNet *n)
{
    unsigned f = 0;

    /* what the device takes from us: partial checksums, TSO frames */
    if (virtio_pci_has(&n->pci, VIRTIO_NET_F_CSUM)) {
        f |= TUN_F_CSUM;
        if (virtio_pci_has(&n->pci, VIRTIO_NET_F_HOST_TSO4)) {
            f |= TUN_F_TSO4;
        }
        if (virtio_pci_has(&n->pci, VIRTIO_NET_F_HOST_TSO6)) {
            f |= TUN_F_TSO6;
        }
    }
    return f;
}

bool virtio_net_link_up(VirtioNet *n, GError **errp)
{
    uint64_t status = 0;

    if (!virtio_pci_has(&n->pci, VIRTIO_NET_F_STATUS)) {
        return true;            /* 5.1.4: assume the link is up */
    }
    return virtio_pci_config_read(&n->pci, NET_CFG_STATUS, 2, &status,
                                  errp) &&
           (status & VIRTIO_NET_S_LINK_UP);
}

/* ---- interrupts ---- */

/*
 * Take note of the interrupts that came.  Their only job here is to wake
 * us (the rings are looked at anyway), but INTx stays asserted until the
 * ISR is read, and an asserted line sends no further events.
 */
static bool net_ack_irqs(VirtioNet *n, GError **errp)
{
    VirtioPci *d = &n->pci;
    uint64_t count, isr = 0;

    if (d->msix) {
        count = vmm_sim_irq_count(d->sim, d->spi_queues);
        n->stats.irqs += count - d->irqs_seen;
        d->irqs_seen = count;
        count = vmm_sim_irq_count(d->sim, d->spi_config);
        n->stats.config_irqs += count - n->config_irqs_seen;
        n->config_irqs_seen = count;
        return true;
    }
    if (!vmm_sim_irq_level(d->sim, d->index)) {
        return true;
    }
    if (!vmm_sim_mmio_read(d->sim, 0, AS_GLOBAL, d->isr, 1, &isr, errp)) {
        return false;
    }
    n->stats.irqs += !!(isr & ISR_QUEUE);
    n->stats.config_irqs += !!(isr & ISR_CONFIG);
    return true;
}

/* ---- transmit ---- */

static void net_tx_reap(VirtioNet *n)
{
    VirtioNetBuf *b;

    while ((b = virtq_get_used(&n->txq, NULL))) {
        n->tx_free[n->tx_nfree++] = b - n->tx_bufs;
    }
}

/* The free transmit buffer to fill next; NULL if none. */
static VirtioNetBuf *net_tx_peek(VirtioNet *n)
{
    return n->tx_nfree ? &n->tx_bufs[n->tx_free[n->tx_nfree - 1]] : NULL;
}

/*
 * Hand the buffer net_tx_peek() gave, holding a @len-byte frame, over;
 * its header as it is when @hdr_set (a tap's), else an empty one.
 */
static bool net_tx_commit(VirtioNet *n, size_t len, bool hdr_set,
                          GError **errp)
{
    VirtioNetBuf *b = net_tx_peek(n);
    VirtqBuf vb = { .gpa = b->gpa, .len = VIRTIO_NET_HDR_LEN + len };

    if (!hdr_set) {
        /* flags, gso_type and num_buffers all 0: nothing left to do */
        memset(b->host, 0, VIRTIO_NET_HDR_LEN);
    }
    if (virtq_add(&n->txq, &vb, 1, b, false) < 0) {
        return net_fail(errp, "transmit ring full with a buffer free");
    }
    n->tx_nfree--;
    n->stats.tx_frames++;
    n->stats.tx_bytes += len;
    n->stats.tx_max_frame = MAX(n->stats.tx_max_frame, len);
    return true;
}

static bool net_tx_kick(VirtioNet *n, GError **errp)
{
    n->stats.tx_kicks++;
    return virtio_pci_kick(&n->pci, &n->txq, errp);
}

/* Wait until a transmit buffer is free. */
static bool net_tx_wait_free(VirtioNet *n, int timeout_ms, GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (net_tx_reap(n); !n->tx_nfree; net_tx_reap(n)) {
        int left = (end - g_get_monotonic_time()) / 1000;

        n->stats.tx_full++;
        if (left <= 0 || !virtio_pci_wait(&n->pci, left, errp)) {
            return (errp && *errp) ? false :
                   net_fail(errp, "no transmit buffer came back in %d ms",
                            timeout_ms);
        }
    }
    return true;
}

bool virtio_net_send(VirtioNet *n, const void *frame, size_t len,
                     int timeout_ms, GError **errp)
{
    if (len > VIRTIO_NET_MAX_FRAME) {
        return net_fail(errp, "a frame of %zu bytes is too long", len);
    }
    if (!net_tx_wait_free(n, timeout_ms, errp)) {
        return false;
    }
    memcpy(net_tx_peek(n)->host + VIRTIO_NET_HDR_LEN, frame, len);
    return net_tx_commit(n, len, false, errp) && net_tx_kick(n, errp);
}

/* ---- receive ---- */

/* Append @len bytes to the frame being gathered (dropped if too long). */
static void net_rx_gather(VirtioNet *n, const uint8_t *p, size_t len)
{
    if (n->rx_have + len > n->max_frame) {
        n->rx_overflow = true;
        return;
    }
    memcpy(n->rx_frame + n->rx_have, p, len);
    n->rx_have += len;
}

/* Start a frame from the first buffer @b of it, @len bytes written. */
static void net_rx_start(VirtioNet *n, const VirtioNetBuf *b, uint32_t len)
{
    uint16_t nbufs = 1;

    n->rx_have = 0;
    n->rx_overflow = len < VIRTIO_NET_HDR_LEN;
    if (!n->rx_overflow) {
        memcpy(n->rx_hdr, b->host, VIRTIO_NET_HDR_LEN);
    }
    if (n->mrg && !n->rx_overflow) {
        memcpy(&nbufs, b->host + NET_HDR_NUM_BUFFERS, sizeof(nbufs));
        nbufs = le16toh(nbufs);
    }
    /* 0 or more than we posted: take this buffer as all of the frame */
    n->rx_bufs_left = (nbufs && nbufs <= n->rxq.size) ? nbufs : 1;
    if (!n->rx_overflow) {
        net_rx_gather(n, b->host + VIRTIO_NET_HDR_LEN,
                      len - VIRTIO_NET_HDR_LEN);
    }
}

/*
 * Take used receive buffers until a frame is complete: copy it into
 * n->rx_frame (n->rx_have bytes) and return true.  Each buffer is posted
 * again as soon as it is copied; the caller kicks.
 */
static bool net_rx_take(VirtioNet *n, GError **errp)
{
    VirtioNetBuf *b;
    uint32_t len;

    while ((b = virtq_get_used(&n->rxq, &len))) {
        len = MIN(len, n->rx_buf_len);
        n->stats.rx_bufs++;
        if (!n->rx_bufs_left) {
            net_rx_start(n, b, len);
        } else {
            net_rx_gather(n, b->host, len);
        }
        if (!net_rx_post(n, b)) {
            return net_fail(errp, "receive ring refused a buffer back");
        }
        if (--n->rx_bufs_left) {
            continue;
        }
        if (!n->rx_overflow && n->rx_have) {
            n->stats.rx_frames++;
            n->stats.rx_bytes += n->rx_have;
            n->stats.rx_max_frame = MAX(n->stats.rx_max_frame, n->rx_have);
            return true;
        }
        n->stats.rx_dropped++;
    }
    return false;
}

static bool net_rx_kick(VirtioNet *n, GError **errp)
{
    n->stats.rx_kicks++;
    return virtio_pci_kick(&n->pci, &n->rxq, errp);
}

ssize_t virtio_net_recv(VirtioNet *n, void *buf, size_t max, int timeout_ms,
                        GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        int left;

        if (!net_ack_irqs(n, errp)) {
            return -1;
        }
        if (net_rx_take(n, errp)) {
            size_t len = MIN(n->rx_have, max);

            memcpy(buf, n->rx_frame, len);
            return net_rx_kick(n, errp) ? (ssize_t)len : -1;
        }
        if (errp && *errp) {
            return -1;
        }
        left = (end - g_get_monotonic_time()) / 1000;
        if (left <= 0 || !virtio_pci_wait(&n->pci, left, errp)) {
            if (vmm_sim_peer_gone(n->pci.sim) && !(errp && *errp)) {
                net_fail(errp, "the device side is gone");
            }
            return (errp && *errp) ? -1 : 0;
        }
    }
}

/* ---- bridge ---- */

/*
 * Frames from the tap into the transmit ring, one kick for all.  With
 * offloads the tap puts its virtio_net_hdr in front: it is the device's.
 */
static int net_bridge_tx(VirtioNet *n, int tap_fd, GError **errp)
{
    size_t hdr = n->offloads ? 0 : VIRTIO_NET_HDR_LEN;
    VirtioNetBuf *b;
    int moved = 0;
    ssize_t r;

    net_tx_reap(n);
    while ((b = net_tx_peek(n))) {
        /* straight into guest RAM, behind our header or with the tap's */
        r = read(tap_fd, b->host + hdr,
                 VIRTIO_NET_HDR_LEN - hdr + n->max_frame);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (r <= 0) {
            net_fail(errp, "reading the tap: %s",
                     r ? g_strerror(errno) : "end of file");
            return -1;
        }
        if (!hdr && r < (ssize_t)VIRTIO_NET_HDR_LEN) {
            net_fail(errp, "a read of %zd bytes from the tap has no header",
                     r);
            return -1;
        }
        if (!net_tx_commit(n, r + hdr - VIRTIO_NET_HDR_LEN, !hdr, errp)) {
            return -1;
        }
        moved++;
    }
    return moved && !net_tx_kick(n, errp) ? -1 : moved;
}

/* Received frames out to the tap, one kick for the reposted buffers. */
static int net_bridge_rx(VirtioNet *n, int tap_fd, GError **errp)
{
    int moved = 0;

    while (net_rx_take(n, errp)) {
        struct iovec iov[2] = {
            { n->rx_hdr, VIRTIO_NET_HDR_LEN }, { n->rx_frame, n->rx_have },
        };
        int i = n->offloads ? 0 : 1;
        ssize_t want = n->rx_have + (n->offloads ? VIRTIO_NET_HDR_LEN : 0);

        /* a tap takes a whole frame or nothing; a refused one is lost */
        if (writev(tap_fd, iov + i, 2 - i) != want) {
            n->stats.rx_dropped++;
        }
        moved++;
    }
    if (errp && *errp) {
        return -1;
    }
    return moved && !net_rx_kick(n, errp) ? -1 : moved;
}

/* Wait for the tap (if a transmit buffer is free) or the doorbell. */
static bool net_bridge_wait(VirtioNet *n, int tap_fd, int timeout_ms,
                            GError **errp)
{
    struct pollfd pfd[2] = {
        { .fd = n->tx_nfree ? tap_fd : -1, .events = POLLIN },
        { .fd = vmm_sim_doorbell_fd(n->pci.sim), .events = POLLIN },
    };

    if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR) {
        return net_fail(errp, "poll: %s", g_strerror(errno));
    }
    if ((pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))) {
        return net_fail(errp, "the tap failed (revents 0x%x)",
                        pfd[0].revents);
    }
    /* also when only the tick ran out: notices a hang-up */
    if (vmm_sim_poll(n->pci.sim, 0) < 0) {
        return net_fail(errp, "the device side is gone");
    }
    return true;
}

bool virtio_net_bridge(VirtioNet *n, int tap_fd, VirtioNetStop *stop,
                       void *opaque, int timeout_ms, GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    int flags = fcntl(tap_fd, F_GETFL);

    if (flags < 0 || fcntl(tap_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        return net_fail(errp, "tap fd: %s", g_strerror(errno));
    }
    for (;;) {
        int tx, rx, left;

        /*
         * Rings first, then block: events taken during our own kicks
         * leave no doorbell behind, so the rings are the truth.
         */
        if (!net_ack_irqs(n, errp) ||
            (tx = net_bridge_tx(n, tap_fd, errp)) < 0 ||
            (rx = net_bridge_rx(n, tap_fd, errp)) < 0) {
            return false;
        }
        if (stop(opaque)) {
            return true;
        }
        left = (end - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            return net_fail(errp, "bridge still running after %d ms",
                            timeout_ms);
        }
        if (!tx && !rx &&
            !net_bridge_wait(n, tap_fd, MIN(left, NET_BRIDGE_TICK_MS),
                             errp)) {
            return false;
        }
    }
}
