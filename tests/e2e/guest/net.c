/*
 * virtio-net: the simulated guest bridges a tap to its virtio-net device,
 * and real traffic crosses network namespaces through it:
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
 * and again without it after a reset: ICMP echo from A to B, then a TCP
 * echo of NET_TCP_BYTES from A to B and back, SHA-256 compared on both
 * ends.  The pinger and both TCP ends are forked children that enter
 * their namespace with setns(), so no tool beyond ip(8) is needed; this
 * process bridges frames meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest.h"
#include "virtio-net.h"
#include "../qemu-harness.h"

#define NET_PINGS           3
#define NET_PING_WAIT_MS    2000
#define NET_TCP_BYTES       (2u << 20)
#define NET_TCP_CHUNK       65536
#define NET_CHILD_WAIT_MS   20000
#define NET_BRIDGE_MS       60000
/* small buffers make a full-size frame span three of them */
#define NET_MRG_BUF_LEN     512u

typedef struct NetEnv {
    char ns[2][32];             /* A, B */
    char tap[2][IFNAMSIZ];      /* ours in A, QEMU's (to move to B) */
    char ip[2][16];
    unsigned port;
    int tap_fd;
} NetEnv;

static NetEnv env = { .tap_fd = -1 };

/* ---- host set-up ---- */

/* Run a shell command line; its output only shows when it fails. */
static bool net_sh(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static bool net_sh(const char *fmt, ...)
{
    g_autofree char *cmd = NULL, *out = NULL, *err = NULL;
    int status = -1;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!g_spawn_command_line_sync(cmd, &out, &err, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        printf("# net: '%s' failed: %s", cmd, err ? err : "");
        return false;
    }
    return true;
}

/* Enter network namespace @ns (by name) or, with @ns NULL, fd @back. */
static bool net_enter(const char *ns, int back)
{
    g_autofree char *path = ns ? g_strdup_printf("/run/netns/%s", ns) : NULL;
    int fd = ns ? open(path, O_RDONLY | O_CLOEXEC) : back;
    bool r = fd >= 0 && setns(fd, CLONE_NEWNET) == 0;

    if (ns && fd >= 0) {
        close(fd);
    }
    return r;
}

static int net_tap_open(const char *name)
{
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    g_strlcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
    if (fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * A tap that belongs to namespace @ns: the tun device is created in the
 * namespace of whoever opens /dev/net/tun, so open it from inside.
 */
static int net_tap_open_in(const char *ns, const char *name)
{
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = -1;

    if (self < 0) {
        return -1;
    }
    if (net_enter(ns, -1)) {
        fd = net_tap_open(name);
        /* staying in A would move the whole test there */
        g_assert(net_enter(NULL, self));
    }
    close(self);
    return fd;
}

static void net_names(void)
{
    unsigned pid = getpid();

    snprintf(env.ns[0], sizeof(env.ns[0]), "sel4-netA-%u", pid);
    snprintf(env.ns[1], sizeof(env.ns[1]), "sel4-netB-%u", pid);
    snprintf(env.tap[0], sizeof(env.tap[0]), "gtA%u", pid);
    snprintf(env.tap[1], sizeof(env.tap[1]), "qtB%u", pid);
    snprintf(env.ip[0], sizeof(env.ip[0]), "10.77.%u.1", pid % 200);
    snprintf(env.ip[1], sizeof(env.ip[1]), "10.77.%u.2", pid % 200);
    env.port = 20000 + pid % 20000;
}

void guest_net_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *netdev = NULL;

    net_names();
    /* a namespace of an earlier run killed before its clean-up */
    guest_net_cleanup(g);
    netdev = g_strdup_printf("tap,id=n0,ifname=%s,script=no,downscript=no",
                             env.tap[1]);
    if (net_sh("ip netns add %s", env.ns[0]) &&
        net_sh("ip netns add %s", env.ns[1])) {
        env.tap_fd = net_tap_open_in(env.ns[0], env.tap[0]);
        if (env.tap_fd < 0) {
            printf("# net: tap %s in %s: %s\n", env.tap[0], env.ns[0],
                   g_strerror(errno));
        }
    }
    guest_args(argv, "-device", "virtio-net-pci,netdev=n0,romfile=",
               "-netdev", netdev, NULL);
}

/* A gets the guest's MAC, B gets QEMU's tap; both get addresses. */
static bool net_configure(const uint8_t *mac)
{
    const char *a = env.ns[0], *b = env.ns[1];

    return env.tap_fd >= 0 &&
           net_sh("ip -n %s link set %s address "
                  "%02x:%02x:%02x:%02x:%02x:%02x", a, env.tap[0],
                  mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]) &&
           net_sh("ip -n %s addr add %s/24 dev %s", a, env.ip[0],
                  env.tap[0]) &&
           net_sh("ip -n %s link set %s up", a, env.tap[0]) &&
           net_sh("ip link set %s netns %s", env.tap[1], b) &&
           net_sh("ip -n %s addr add %s/24 dev %s", b, env.ip[1],
                  env.tap[1]) &&
           net_sh("ip -n %s link set %s up", b, env.tap[1]);
}

void guest_net_cleanup(Guest *g)
{
    g_autofree char *cmd = NULL;

    if (env.tap_fd >= 0) {
        close(env.tap_fd);      /* our tap goes with it */
        env.tap_fd = -1;
    }
    if (!env.ns[0][0]) {
        return;                 /* never set up */
    }
    /*
     * Quietly, whatever is left or not: QEMU's tap is in B or, if the
     * move failed, still here (QEMU's exit removes it too).
     */
    cmd = g_strdup_printf("sh -c 'ip netns del %s; ip netns del %s; "
                          "ip link del %s' >/dev/null 2>&1",
                          env.ns[0], env.ns[1], env.tap[1]);
    if (system(cmd) < 0) {
        printf("# net: cleanup could not run\n");
    }
}

/* ---- children: pinger and TCP ends ---- */

typedef struct NetChild {
    pid_t pid;
    int out;                    /* read end of its report pipe */
    int status;
    bool done;
} NetChild;

typedef int NetChildFn(int out);

/* Fork @fn inside namespace @ns, reporting on a pipe. */
static bool net_child(NetChild *c, const char *ns, NetChildFn *fn)
{
    int p[2];

    memset(c, 0, sizeof(*c));
    c->out = -1;
    if (pipe2(p, O_CLOEXEC) < 0) {
        return false;
    }
    fflush(stdout);
    c->pid = fork();
    if (c->pid < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (c->pid == 0) {
        close(p[0]);
        if (env.tap_fd >= 0) {
            close(env.tap_fd);
        }
        _exit(net_enter(ns, -1) ? fn(p[1]) : 126);
    }
    close(p[1]);
    c->out = p[0];
    return c->pid > 0;
}

static char *net_child_report(NetChild *c)
{
    char buf[1024];
    ssize_t r = read(c->out, buf, sizeof(buf) - 1);

    close(c->out);
    return g_strdup(r > 0 ? (buf[r] = 0, buf) : "");
}

typedef struct NetChildren {
    NetChild *c;
    unsigned n;
} NetChildren;

/* VirtioNetStop: every child has ended. */
static bool net_children_done(void *opaque)
{
    NetChildren *cs = opaque;
    bool all = true;

    for (unsigned i = 0; i < cs->n; i++) {
        NetChild *c = &cs->c[i];

        if (!c->done && waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
            c->done = true;
        }
        all &= c->done;
    }
    return all;
}

static void net_children_kill(NetChildren *cs)
{
    for (unsigned i = 0; i < cs->n; i++) {
        if (!cs->c[i].done && cs->c[i].pid > 0) {
            kill(cs->c[i].pid, SIGKILL);
            waitpid(cs->c[i].pid, &cs->c[i].status, 0);
            cs->c[i].done = true;
        }
    }
}

static uint16_t net_inet_csum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint32_t sum = 0;

    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += b[i] << 8 | b[i + 1];
    }
    if (len & 1) {
        sum += b[len - 1] << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return htons(~sum);
}

/* Wait for the echo reply @seq on raw socket @s; its RTT in us or -1. */
static long net_ping_reply(int s, uint16_t id, uint16_t seq, gint64 sent)
{
    gint64 end = sent + NET_PING_WAIT_MS * 1000;
    uint8_t buf[2048];
    struct pollfd pfd = { .fd = s, .events = POLLIN };

    while (g_get_monotonic_time() < end) {
        int left = (end - g_get_monotonic_time()) / 1000 + 1;
        ssize_t r;
        uint8_t *icmp;

        if (poll(&pfd, 1, left) <= 0 ||
            (r = recv(s, buf, sizeof(buf), 0)) < 20) {
            continue;
        }
        icmp = buf + (buf[0] & 0xf) * 4;
        /* type 0: echo reply, ours by id and sequence */
        if (icmp + 8 <= buf + r && icmp[0] == 0 &&
            !memcmp(icmp + 4, &id, 2) && !memcmp(icmp + 6, &seq, 2)) {
            return g_get_monotonic_time() - sent;
        }
    }
    return -1;
}

/* In A: NET_PINGS echo requests to B; reports "rtt_us ..." (-1: lost). */
static int net_pinger(int out)
{
    struct sockaddr_in to = { .sin_family = AF_INET };
    int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    GString *rep = g_string_new(NULL);
    int lost = 0;

    inet_pton(AF_INET, env.ip[1], &to.sin_addr);
    for (unsigned i = 0; s >= 0 && i < NET_PINGS; i++) {
        uint8_t pkt[64] = { 8, 0 };     /* echo request */
        uint16_t id = htons(getpid()), seq = htons(i), csum;
        gint64 t = g_get_monotonic_time();
        long rtt;

        memcpy(pkt + 4, &id, 2);
        memcpy(pkt + 6, &seq, 2);
        memset(pkt + 8, 0xa5, sizeof(pkt) - 8);
        csum = net_inet_csum(pkt, sizeof(pkt));
        memcpy(pkt + 2, &csum, 2);
        rtt = sendto(s, pkt, sizeof(pkt), 0, (struct sockaddr *)&to,
                     sizeof(to)) == sizeof(pkt) ?
              net_ping_reply(s, id, seq, t) : -1;
        lost += rtt < 0;
        g_string_append_printf(rep, "%ld ", rtt);
    }
    if (write(out, rep->str, rep->len) < 0) {
        return 125;
    }
    return s < 0 ? 124 : lost;
}

/* ---- the checks ---- */

/* An ARP request for B's address from the guest's MAC, as .3. */
static size_t net_arp_request(const VirtioNet *n, uint8_t *f)
{
    static const uint8_t arp_hdr[] = { 0, 1, 8, 0, 6, 4, 0, 1 };
    uint32_t me, him;

    inet_pton(AF_INET, env.ip[1], &him);
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

    inet_pton(AF_INET, env.ip[1], &him);
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
    gint64 end = g_get_monotonic_time() + NET_PING_WAIT_MS * 1000;
    unsigned others = 0;
    bool r, got = false;
    ssize_t len;

    r = virtio_net_send(n, f, net_arp_request(n, f), NET_PING_WAIT_MS,
                        &err);
    while (r && !got && g_get_monotonic_time() < end) {
        len = virtio_net_recv(n, f, sizeof(f), NET_PING_WAIT_MS, &err);
        r = len >= 0;
        got = net_is_arp_reply(n, f, len, mac);
        others += len > 0 && !got;
    }
    ok(r && got, "virtio-net %s: virtio_net_send() of an ARP request, "
       "virtio_net_recv() of B's reply (%02x:%02x:%02x:%02x:%02x:%02x, "
       "%u other frames skipped): %s", mode, mac[0], mac[1], mac[2],
       mac[3], mac[4], mac[5], others, err ? err->message : "ok");
}

/* Bridge until the children (all forked, or none run) end; reap them. */
static bool net_run_children(VirtioNet *n, NetChild *c, unsigned nc,
                             bool forked, GError **errp)
{
    NetChildren cs = { c, nc };
    bool r = forked && virtio_net_bridge(n, env.tap_fd, net_children_done,
                                         &cs, NET_BRIDGE_MS, errp);

    net_children_kill(&cs);
    return r;
}

static void test_ping(VirtioNet *n, const char *mode)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *rtts = NULL;
    NetChild c = { .out = -1 };
    bool r;

    r = net_child(&c, env.ns[0], net_pinger);
    r = net_run_children(n, &c, 1, r, &err);
    rtts = net_child_report(&c);
    ok(r && WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
       "virtio-net %s: %u ICMP echoes %s -> %s answered, RTT us: %s"
       "(exit 0x%x): %s", mode, NET_PINGS, env.ip[0], env.ip[1], rtts,
       c.status, err ? err->message : "ok");
}

static void net_tcp_fill(uint8_t *p, size_t len)
{
    GRand *rand = g_rand_new_with_seed(0x5e14);

    for (size_t i = 0; i < len; i += 4) {
        guint32 v = g_rand_int(rand);

        memcpy(p + i, &v, MIN(4, len - i));
    }
    g_rand_free(rand);
}

static int net_report_sha(int out, GChecksum *sum, size_t bytes,
                          gint64 t0)
{
    g_autofree char *rep = g_strdup_printf(
        "%s %zu %" PRId64, g_checksum_get_string(sum), bytes,
        g_get_monotonic_time() - t0);

    g_checksum_free(sum);
    return write(out, rep, strlen(rep)) < 0 ? 125 : 0;
}

static void net_sock_timeouts(int s)
{
    struct timeval tv = { .tv_sec = NET_CHILD_WAIT_MS / 1000 };

    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* In B: take everything, then send it back; reports "sha bytes us". */
static int net_tcp_server(int out)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(env.port) };
    int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c;
    struct pollfd pfd = { .fd = s, .events = POLLIN };
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    GByteArray *data = g_byte_array_new();
    uint8_t buf[NET_TCP_CHUNK];
    gint64 t0 = g_get_monotonic_time();
    ssize_t r;

    inet_pton(AF_INET, env.ip[1], &a.sin_addr);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
        poll(&pfd, 1, NET_CHILD_WAIT_MS) <= 0 ||
        (c = accept(s, NULL, NULL)) < 0) {
        return 120;
    }
    net_sock_timeouts(c);
    while ((r = recv(c, buf, sizeof(buf), 0)) > 0) {
        g_checksum_update(sum, buf, r);
        g_byte_array_append(data, buf, r);
    }
    if (r < 0 || send(c, data->data, data->len, MSG_NOSIGNAL) !=
                 (ssize_t)data->len) {
        return 121;
    }
    close(c);
    return net_report_sha(out, sum, data->len, t0);
}

static int net_tcp_connect(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(env.port) };
    gint64 end = g_get_monotonic_time() + NET_CHILD_WAIT_MS * 1000LL;

    inet_pton(AF_INET, env.ip[1], &a.sin_addr);
    /* the server may not listen yet: retry */
    while (g_get_monotonic_time() < end) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
            net_sock_timeouts(s);
            return s;
        }
        close(s);
        g_usleep(50000);
    }
    return -1;
}

/* In A: send the pattern, read the echo; reports "sha bytes us". */
static int net_tcp_client(int out)
{
    g_autofree uint8_t *data = g_malloc(NET_TCP_BYTES);
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t buf[NET_TCP_CHUNK];
    gint64 t0 = g_get_monotonic_time();
    size_t got = 0;
    ssize_t r;
    int s;

    net_tcp_fill(data, NET_TCP_BYTES);
    s = net_tcp_connect();
    if (s < 0 || send(s, data, NET_TCP_BYTES, MSG_NOSIGNAL) !=
                 NET_TCP_BYTES || shutdown(s, SHUT_WR) < 0) {
        return 122;
    }
    while ((r = recv(s, buf, sizeof(buf), 0)) > 0) {
        g_checksum_update(sum, buf, r);
        got += r;
    }
    return r < 0 ? 123 : net_report_sha(out, sum, got, t0);
}

static char *net_sha_of_pattern(void)
{
    g_autofree uint8_t *data = g_malloc(NET_TCP_BYTES);

    net_tcp_fill(data, NET_TCP_BYTES);
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data,
                                       NET_TCP_BYTES);
}

static void test_tcp(VirtioNet *n, const char *mode)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *want = net_sha_of_pattern();
    g_autofree char *srv = NULL, *cli = NULL;
    char srv_sha[65] = "", cli_sha[65] = "";
    size_t srv_bytes = 0, cli_bytes = 0;
    int64_t us = 0;
    NetChild c[2] = { { .out = -1 }, { .out = -1 } };
    bool r;

    r = net_child(&c[0], env.ns[1], net_tcp_server) &&
        net_child(&c[1], env.ns[0], net_tcp_client);
    r = net_run_children(n, c, 2, r, &err);
    srv = net_child_report(&c[0]);
    cli = net_child_report(&c[1]);
    sscanf(srv, "%64s %zu", srv_sha, &srv_bytes);
    sscanf(cli, "%64s %zu %" SCNd64, cli_sha, &cli_bytes, &us);
    r = r && g_str_equal(srv_sha, want) && g_str_equal(cli_sha, want) &&
        srv_bytes == NET_TCP_BYTES && cli_bytes == NET_TCP_BYTES;
    ok(r, "virtio-net %s: TCP %s -> %s and back, %u bytes each way in "
       "%.0f ms (%.1f MiB/s both ways), sha256 %.16s..., server %.16s "
       "(%zu), client %.16s (%zu), exits 0x%x 0x%x: %s", mode, env.ip[0],
       env.ip[1], NET_TCP_BYTES, us / 1000.0,
       us ? 2.0 * NET_TCP_BYTES / us * 1e6 / (1 << 20) : 0.0, want,
       srv_sha, srv_bytes, cli_sha, cli_bytes, c[0].status, c[1].status,
       err ? err->message : "ok");
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
        r = net_configure(n->mac);
        ok(r, "virtio-net: namespaces %s (%s) and %s (%s) set up",
           env.ns[0], env.ip[0], env.ns[1], env.ip[1]);
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
