/*
 * virtio-net: the simulated guest bridges a tap to its virtio-net device,
 * and real traffic crosses network namespaces through it (net-lab.h):
 *
 *   namespace A: tap "gtA<pid>" (fd held by this process)
 *     <-> the guest's driver (virtio_net_bridge)
 *     <-> QEMU's virtio-net-pci <-> -netdev tap "qtB<pid>"
 *   namespace B: that tap, moved there once QEMU has opened it
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A is 10.77.<pid % 200>.1/24 and carries the device's MAC; B is .2.
 * Checks, with MRG_RXBUF (small receive buffers, so frames span several)
 * and again without it after a reset: ARP through the driver's own send
 * and receive, ICMP echo from A to B, then a TCP echo of
 * NET_LAB_TCP_BYTES from A to B and back, SHA-256 compared on both ends.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"
#include "net-lab.h"
#include "virtio-net.h"
#include "../qemu-harness.h"

/* small buffers make a full-size frame span three of them */
#define NET_MRG_BUF_LEN     512u

static NetLab lab = { .tap_fd = -1 };

void guest_net_args(GPtrArray *argv, Guest *g)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *netdev = NULL;

    net_lab_init(&lab, "sel4-net", "t");
    if (!net_lab_setup(&lab, &err)) {
        printf("# net: %s\n", err->message);
    }
    netdev = net_lab_netdev(&lab, "n0");
    guest_args(argv, "-device", "virtio-net-pci,netdev=n0,romfile=",
               "-netdev", netdev, NULL);
}

void guest_net_cleanup(Guest *g)
{
    net_lab_cleanup(&lab);
}

/* ---- the checks ---- */

/* An ARP request for B's address from the guest's MAC, as .3. */
static size_t net_arp_request(const VirtioNet *n, uint8_t *f)
{
    static const uint8_t arp_hdr[] = { 0, 1, 8, 0, 6, 4, 0, 1 };
    uint32_t me, him;

    inet_pton(AF_INET, lab.ip[1], &him);
    me = htonl(ntohl(him) + 1);
    memset(f, 0xff, 6);
    memcpy(f + 6, n->mac, 6);
    f[12] = 0x08;
    f[13] = 0x06;
    memcpy(f + 14, arp_hdr, sizeof(arp_hdr));
    memcpy(f + 22, n->mac, 6);
    memcpy(f + 28, &me, 4);
    memset(f + 32, 0, 6);
    memcpy(f + 38, &him, 4);
    return 42;
}

/* An ARP reply to us about B's address; its sender MAC into @mac. */
static bool net_is_arp_reply(const VirtioNet *n, const uint8_t *f,
                             ssize_t len, uint8_t *mac)
{
    uint32_t him;

    inet_pton(AF_INET, lab.ip[1], &him);
    if (len < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 2 ||
        memcmp(f + 28, &him, 4) || memcmp(f + 32, n->mac, 6)) {
        return false;
    }
    memcpy(mac, f + 22, 6);
    return true;
}

/*
 * The driver's own send and receive, without the tap: the guest asks B
 * who has its address and waits for the answer (skipping B's other
 * chatter, such as IPv6 neighbour discovery).
 */
static void test_arp(VirtioNet *n, const char *mode)
{
    g_autoptr(GError) err = NULL;
    uint8_t f[VIRTIO_NET_MAX_FRAME], mac[6] = { 0 };
    gint64 end = g_get_monotonic_time() + NET_LAB_PING_WAIT_MS * 1000;
    unsigned others = 0;
    bool r, got = false;
    ssize_t len;

    r = virtio_net_send(n, f, net_arp_request(n, f), NET_LAB_PING_WAIT_MS,
                        &err);
    while (r && !got && g_get_monotonic_time() < end) {
        len = virtio_net_recv(n, f, sizeof(f), NET_LAB_PING_WAIT_MS, &err);
        r = len >= 0;
        got = net_is_arp_reply(n, f, len, mac);
        others += len > 0 && !got;
    }
    ok(r && got, "virtio-net %s: virtio_net_send() of an ARP request, "
       "virtio_net_recv() of B's reply (%02x:%02x:%02x:%02x:%02x:%02x, "
       "%u other frames skipped): %s", mode, mac[0], mac[1], mac[2],
       mac[3], mac[4], mac[5], others, err ? err->message : "ok");
}

static void test_ping(VirtioNet *n, const char *mode)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *rtts = NULL;
    int status = 0;
    bool r;

    r = net_lab_ping(&lab, n, &rtts, &status, &err);
    ok(r, "virtio-net %s: %u ICMP echoes %s -> %s answered, RTT us: %s"
       "(exit 0x%x): %s", mode, NET_LAB_PINGS, lab.ip[0], lab.ip[1], rtts,
       status, err ? err->message : "ok");
}

static void test_tcp(VirtioNet *n, const char *mode)
{
    g_autoptr(GError) err = NULL;
    NetLabTcp t;
    bool r;

    r = net_lab_tcp_echo(&lab, n, &t, &err);
    ok(r, "virtio-net %s: TCP %s -> %s and back, %u bytes each way in "
       "%.0f ms (%.1f MiB/s both ways), sha256 %.16s..., server %.16s "
       "(%zu), client %.16s (%zu), exits 0x%x 0x%x: %s", mode, lab.ip[0],
       lab.ip[1], NET_LAB_TCP_BYTES, t.us / 1000.0,
       t.us ? 2.0 * NET_LAB_TCP_BYTES / t.us * 1e6 / (1 << 20) : 0.0,
       t.want, t.srv_sha, t.srv_bytes, t.cli_sha, t.cli_bytes,
       t.status[0], t.status[1], err ? err->message : "ok");
}

/* Once: A gets the guest's MAC, QEMU's tap moves to B; addresses. */
static bool test_configure(VirtioNet *n)
{
    g_autoptr(GError) err = NULL;
    bool r = net_lab_configure(&lab, n->mac, &err);

    if (!r) {
        printf("# net: %s\n", err->message);
    }
    ok(r, "virtio-net: namespaces %s (%s) and %s (%s) set up",
       lab.ns[0], lab.ip[0], lab.ns[1], lab.ip[1]);
    return r;
}

static void net_print_stats(const VirtioNet *n, const char *mode)
{
    const VirtioNetStats *s = &n->stats;

    printf("# virtio-net %s: tx %" PRIu64 " frames %" PRIu64 " bytes %"
           PRIu64 " kicks %" PRIu64 " waits-for-buffer; rx %" PRIu64
           " frames %" PRIu64 " bytes in %" PRIu64 " buffers, %" PRIu64
           " kicks, %" PRIu64 " dropped; %" PRIu64 " irqs, %" PRIu64
           " config irqs\n", mode, s->tx_frames, s->tx_bytes, s->tx_kicks,
           s->tx_full, s->rx_frames, s->rx_bytes, s->rx_bufs, s->rx_kicks,
           s->rx_dropped, s->irqs, s->config_irqs);
}

/* One bring-up of the device and its traffic checks. */
static bool net_round(Guest *g, VirtioNet *n, const VirtioNetConfig *cfg,
                      bool first)
{
    const char *mode = cfg->mrg_rxbuf ? "MRG_RXBUF" : "no MRG_RXBUF";
    g_autoptr(GError) err = NULL;
    bool r, link;

    r = virtio_net_init(n, g->sim, &g->mem, GUEST_DEV_NET, &g->mmio_next,
                        guest_spi_base(g, GUEST_DEV_NET), g->use_msix, cfg,
                        &err);
    link = r && virtio_net_link_up(n, &err);
    ok(r && link && n->mrg == cfg->mrg_rxbuf,
       "virtio-net %s: up, features 0x%" PRIx64 ", MAC %02x:%02x:%02x:"
       "%02x:%02x:%02x, link %s, %u-byte rx buffers, %s: %s", mode,
       n->pci.features, n->mac[0], n->mac[1], n->mac[2], n->mac[3],
       n->mac[4], n->mac[5], link ? "up" : "down", n->rx_buf_len,
       n->pci.msix ? "MSI-X" : "INTx", err ? err->message : "ok");
    if (!r) {
        return false;
    }
    if (first) {
        r = test_configure(n);
    }
    if (r) {
        test_arp(n, mode);
        test_ping(n, mode);
        test_tcp(n, mode);
    }
    net_print_stats(n, mode);
    virtio_net_destroy(n);
    return r;
}

void guest_net_test(Guest *g)
{
    VirtioNetConfig mrg = { .mrg_rxbuf = true,
                            .rx_buf_len = NET_MRG_BUF_LEN };
    VirtioNetConfig whole = { .mrg_rxbuf = false };
    VirtioNet *n = g_new0(VirtioNet, 1);

    /* the second round resets the device and probes it afresh */
    if (net_round(g, n, &mrg, true)) {
        net_round(g, n, &whole, false);
    }
    g_free(n);
}
