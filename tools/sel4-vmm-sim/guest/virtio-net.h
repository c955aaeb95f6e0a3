/*
 * The simulated guest's virtio-net driver (virtio 1.x, section 5.1).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Queue 0 receives, queue 1 transmits; no control queue.  By default no
 * offloads, so frames are plain Ethernet frames of at most
 * VIRTIO_NET_MAX_FRAME bytes, each behind a 12-byte virtio_net_hdr
 * (VERSION_1 always has num_buffers) that says nothing.  With
 * VirtioNetConfig.offloads the driver also negotiates checksum and TSO
 * offloads both ways (as Linux guests do): frames of up to
 * VIRTIO_NET_MAX_GSO_FRAME bytes whose header carries the checksum and
 * segmentation the other side still has to do, which the bridge passes
 * to and from a tap opened with IFF_VNET_HDR unchanged.
 * The receive queue is kept full: every buffer the device uses is posted
 * again once its frame is taken.  With VIRTIO_NET_F_MRG_RXBUF a frame may
 * span several (smaller) receive buffers; without it each buffer holds a
 * whole frame.
 *
 * The driver is single-threaded like the VmmSim under it: virtio_net_recv()
 * and virtio_net_bridge() wait inside the simulator's event processing.
 */
#ifndef VMM_SIM_VIRTIO_NET_H
#define VMM_SIM_VIRTIO_NET_H

#include <stddef.h>
#include <sys/types.h>

#include "virtio-pci.h"

#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_GUEST_TSO6     8
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16
#define VIRTIO_NET_S_LINK_UP        1

#define VIRTIO_NET_HDR_LEN          12u
/* Ethernet header + 1500 bytes of payload (no VLAN tag, no GSO). */
#define VIRTIO_NET_MAX_FRAME        1514u
/* With TSO: an IP packet of up to 64 KiB behind the Ethernet header. */
#define VIRTIO_NET_MAX_GSO_FRAME    (14u + 65535u)
#define VIRTIO_NET_RX_QUEUE         0
#define VIRTIO_NET_TX_QUEUE         1

typedef struct VirtioNetConfig {
    bool mrg_rxbuf;             /* ask for VIRTIO_NET_F_MRG_RXBUF */
    /*
     * Bytes per receive buffer, header included.  0: a whole frame
     * (VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME).  Smaller only with
     * mrg_rxbuf negotiated (at least VIRTIO_NET_HDR_LEN + 1).
     */
    uint32_t rx_buf_len;
    uint16_t queue_size;        /* per queue, 0: 256 */
    /*
     * Ask for CSUM, GUEST_CSUM, HOST_TSO4/6 and GUEST_TSO4/6 (and
     * MRG_RXBUF, so receive buffers stay small): frames up to
     * VIRTIO_NET_MAX_GSO_FRAME, their headers meaningful.
     */
    bool offloads;
} VirtioNetConfig;

typedef struct VirtioNetStats {
    uint64_t tx_frames, tx_bytes, tx_kicks, tx_full;
    uint64_t rx_frames, rx_bytes, rx_bufs, rx_kicks, rx_dropped;
    uint64_t irqs, config_irqs;
    uint64_t tx_max_frame, rx_max_frame;        /* bytes, headers not counted */
} VirtioNetStats;

typedef struct VirtioNetBuf {
    uint64_t gpa;
    uint8_t *host;
} VirtioNetBuf;

typedef struct VirtioNet {
    VirtioPci pci;
    Virtq rxq, txq;
    uint8_t mac[6];
    bool mrg;                   /* VIRTIO_NET_F_MRG_RXBUF negotiated */
    bool offloads;              /* some checksum/TSO offload negotiated */
    uint32_t max_frame;         /* VIRTIO_NET_MAX_FRAME or _GSO_FRAME */
    uint32_t rx_buf_len;
    VirtioNetBuf *rx_bufs, *tx_bufs;
    unsigned *tx_free;          /* stack of free tx_bufs[] indices */
    unsigned tx_nfree;
    /* a frame being gathered from several merged receive buffers */
    uint8_t *rx_frame;          /* max_frame bytes */
    uint8_t rx_hdr[VIRTIO_NET_HDR_LEN];         /* and its header */
    size_t rx_have;
    unsigned rx_bufs_left;      /* still to come; 0: no frame open */
    bool rx_overflow;           /* this frame is too long: drop it */
    uint64_t config_irqs_seen;
    VirtioNetStats stats;
} VirtioNet;

/*
 * Bring up registered device @index (a virtio-net-pci): negotiate MAC,
 * STATUS, EVENT_IDX and (if @cfg asks) MRG_RXBUF, read the MAC, set up
 * both queues, post every receive buffer, DRIVER_OK.  @cfg may be NULL.
 * May be called again on the same device (after virtio_net_destroy()):
 * probing resets it.
 */
bool virtio_net_init(VirtioNet *n, VmmSim *sim, GuestAlloc *mem,
                     unsigned index, uint64_t *mmio_next, unsigned spi_base,
                     bool use_msix, const VirtioNetConfig *cfg,
                     GError **errp);
/* Reset the device and free host-side state (guest RAM stays used). */
void virtio_net_destroy(VirtioNet *n);

/* VIRTIO_NET_S_LINK_UP from the config space (up without F_STATUS). */
bool virtio_net_link_up(VirtioNet *n, GError **errp);

/*
 * The TUN_F_* offloads (linux/if_tun.h) a tap opened with IFF_VNET_HDR
 * may hand this device, given what was negotiated: for TUNSETOFFLOAD on
 * the bridge's tap.  0 without offloads.
 */
unsigned virtio_net_tap_offloads(const VirtioNet *n);

/*
 * Queue one frame (@len <= VIRTIO_NET_MAX_FRAME) for transmission and
 * notify the device; waits up to @timeout_ms for a free buffer.
 */
bool virtio_net_send(VirtioNet *n, const void *frame, size_t len,
                     int timeout_ms, GError **errp);
/*
 * The next received frame into @buf (at most @max bytes; a longer frame
 * is cut).  Returns its length, 0 when none came within @timeout_ms, -1
 * with @errp set on error.
 */
ssize_t virtio_net_recv(VirtioNet *n, void *buf, size_t max, int timeout_ms,
                        GError **errp);

/* Whether to stop bridging; called after every round. */
typedef bool VirtioNetStop(void *opaque);
/*
 * Pump frames between the device and @tap_fd (a tap opened with
 * IFF_TAP | IFF_NO_PI, and with IFF_VNET_HDR and a 12-byte header exactly
 * when n->offloads; made non-blocking here) until @stop returns true
 * (returns true) or @timeout_ms passes, the device side dies or the tap
 * fails (returns false, @errp set).  Waits with poll() on the tap and the
 * VMM's doorbell, so frames in either direction are forwarded as they
 * come; @stop is also asked at least every 20 ms.
 */
bool virtio_net_bridge(VirtioNet *n, int tap_fd, VirtioNetStop *stop,
                       void *opaque, int timeout_ms, GError **errp);

#endif
