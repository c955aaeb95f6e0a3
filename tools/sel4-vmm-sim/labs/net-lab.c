/*
 * A host-side network lab for the virtio-net driver (see net-lab.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net-lab.h"

#define NET_TCP_CHUNK       65536
#define NET_CHILD_WAIT_MS   20000
#define NET_BRIDGE_MS       60000

/* ---- host set-up ---- */

/* Run a shell command line; on failure @errp gets it and its stderr. */
static bool net_sh(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool net_sh(GError **errp, const char *fmt, ...)
{
    g_autofree char *cmd = NULL, *out = NULL, *err = NULL;
    int status = -1;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!g_spawn_command_line_sync(cmd, &out, &err, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "'%s' failed: %s", cmd, err ? g_strchomp(err) : "");
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

/* With @vnet_hdr, every frame carries a 12-byte virtio_net_hdr. */
static int net_tap_open(const char *name, bool vnet_hdr)
{
    struct ifreq ifr = {
        .ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0),
    };
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    int hdr_len = VIRTIO_NET_HDR_LEN;

    g_strlcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
    if (fd >= 0 && (ioctl(fd, TUNSETIFF, &ifr) < 0 ||
                    (vnet_hdr && ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0))) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * A tap that belongs to namespace @ns: the tun device is created in the
 * namespace of whoever opens /dev/net/tun, so open it from inside.
 */
static int net_tap_open_in(const char *ns, const char *name, bool vnet_hdr)
{
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = -1;

    if (self < 0) {
        return -1;
    }
    if (net_enter(ns, -1)) {
        fd = net_tap_open(name, vnet_hdr);
        /* staying in A would move the whole process there */
        if (!net_enter(NULL, self)) {
            abort();
        }
    }
    close(self);
    return fd;
}

void net_lab_init(NetLab *l, const char *prefix, const char *tag)
{
    unsigned pid = getpid();

    memset(l, 0, sizeof(*l));
    l->tap_fd = -1;
    snprintf(l->ns[0], sizeof(l->ns[0]), "%sA-%u", prefix, pid);
    snprintf(l->ns[1], sizeof(l->ns[1]), "%sB-%u", prefix, pid);
    snprintf(l->tap[0], sizeof(l->tap[0]), "g%sA%u", tag, pid);
    snprintf(l->tap[1], sizeof(l->tap[1]), "q%sB%u", tag, pid);
    snprintf(l->ip[0], sizeof(l->ip[0]), "10.77.%u.1", pid % 200);
    snprintf(l->ip[1], sizeof(l->ip[1]), "10.77.%u.2", pid % 200);
    l->port = 20000 + pid % 20000;
}

bool net_lab_setup(NetLab *l, GError **errp)
{
    /* a namespace of an earlier run killed before its clean-up */
    net_lab_cleanup(l);
    if (!net_sh(errp, "ip netns add %s", l->ns[0]) ||
        !net_sh(errp, "ip netns add %s", l->ns[1])) {
        return false;
    }
    l->tap_fd = net_tap_open_in(l->ns[0], l->tap[0], l->vnet_hdr);
    if (l->tap_fd < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "tap %s in %s: %s", l->tap[0], l->ns[0],
                    g_strerror(errno));
        return false;
    }
    return true;
}

bool net_lab_tap_offloads(NetLab *l, unsigned flags, GError **errp)
{
    if (l->tap_fd < 0 || ioctl(l->tap_fd, TUNSETOFFLOAD, flags) < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "TUNSETOFFLOAD 0x%x on %s: %s", flags, l->tap[0],
                    l->tap_fd < 0 ? "no tap" : g_strerror(errno));
        return false;
    }
    return true;
}

char *net_lab_netdev(const NetLab *l, const char *id)
{
    return g_strdup_printf("tap,id=%s,ifname=%s,script=no,downscript=no",
                           id, l->tap[1]);
}

bool net_lab_configure(NetLab *l, const uint8_t *mac, GError **errp)
{
    const char *a = l->ns[0], *b = l->ns[1];

    if (l->tap_fd < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "no tap in %s", a);
        return false;
    }
    if (!net_sh(errp, "ip -n %s link set %s address "
                "%02x:%02x:%02x:%02x:%02x:%02x", a, l->tap[0],
                mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])) {
        return false;
    }
    l->configured = l->configured ||
        (net_sh(errp, "ip -n %s addr add %s/24 dev %s", a, l->ip[0],
                l->tap[0]) &&
         net_sh(errp, "ip -n %s link set %s up", a, l->tap[0]) &&
         net_sh(errp, "ip link set %s netns %s", l->tap[1], b) &&
         net_sh(errp, "ip -n %s addr add %s/24 dev %s", b, l->ip[1],
                l->tap[1]) &&
         net_sh(errp, "ip -n %s link set %s up", b, l->tap[1]));
    return l->configured;
}

void net_lab_cleanup(NetLab *l)
{
    g_autofree char *cmd = NULL;

    if (l->tap_fd >= 0) {
        close(l->tap_fd);       /* our tap goes with it */
        l->tap_fd = -1;
    }
    if (!l->ns[0][0]) {
        return;                 /* never set up */
    }
    /*
     * Quietly, whatever is left or not: QEMU's tap is in B or, if the
     * move failed, still here (QEMU's exit removes it too).
     */
    cmd = g_strdup_printf("sh -c 'ip netns del %s; ip netns del %s; "
                          "ip link del %s' >/dev/null 2>&1",
                          l->ns[0], l->ns[1], l->tap[1]);
    if (system(cmd) < 0) {
        fprintf(stderr, "net-lab: cleanup could not run\n");
    }
}

/* ---- children ---- */

/* In the child: die with the parent, so none outlives a killed run. */
static int net_child_main(const NetLab *l, const char *ns, NetLabChildFn *fn,
                          int out, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
        return 127;
    }
    if (l->tap_fd >= 0) {
        close(l->tap_fd);
    }
    return net_enter(ns, -1) ? fn(l, out) : 126;
}

bool net_lab_child(const NetLab *l, NetLabChild *c, const char *ns,
                   NetLabChildFn *fn)
{
    pid_t parent = getpid();
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
        _exit(net_child_main(l, ns, fn, p[1], parent));
    }
    close(p[1]);
    c->out = p[0];
    return true;
}

char *net_lab_child_report(NetLabChild *c)
{
    char buf[1024];
    ssize_t r = c->out >= 0 ? read(c->out, buf, sizeof(buf) - 1) : -1;

    if (c->out >= 0) {
        close(c->out);
        c->out = -1;
    }
    return g_strdup(r > 0 ? (buf[r] = 0, buf) : "");
}

typedef struct NetChildren {
    NetLabChild *c;
    unsigned n;
} NetChildren;

/* VirtioNetStop: every child has ended. */
static bool net_children_done(void *opaque)
{
    NetChildren *cs = opaque;
    bool all = true;

    for (unsigned i = 0; i < cs->n; i++) {
        NetLabChild *c = &cs->c[i];

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

bool net_lab_run_children(const NetLab *l, VirtioNet *n, NetLabChild *c,
                          unsigned nc, bool forked, GError **errp)
{
    NetChildren cs = { c, nc };
    bool r = forked && virtio_net_bridge(n, l->tap_fd, net_children_done,
                                         &cs, NET_BRIDGE_MS, errp);

    net_children_kill(&cs);
    return r;
}

/* ---- ICMP echo ---- */

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
    gint64 end = sent + NET_LAB_PING_WAIT_MS * 1000;
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

/* One echo request (sequence @i) to @to; its RTT in us or -1. */
static long net_ping_one(int s, const struct sockaddr_in *to, unsigned i)
{
    uint8_t pkt[64] = { 8, 0 };         /* echo request */
    uint16_t id = htons(getpid()), seq = htons(i), csum;
    gint64 t = g_get_monotonic_time();

    memcpy(pkt + 4, &id, 2);
    memcpy(pkt + 6, &seq, 2);
    memset(pkt + 8, 0xa5, sizeof(pkt) - 8);
    csum = net_inet_csum(pkt, sizeof(pkt));
    memcpy(pkt + 2, &csum, 2);
    if (sendto(s, pkt, sizeof(pkt), 0, (const struct sockaddr *)to,
               sizeof(*to)) != sizeof(pkt)) {
        return -1;
    }
    return net_ping_reply(s, id, seq, t);
}

/* In A: NET_LAB_PINGS echo requests to B; reports "rtt_us ..." (-1: lost). */
static int net_pinger(const NetLab *l, int out)
{
    struct sockaddr_in to = { .sin_family = AF_INET };
    int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    GString *rep = g_string_new(NULL);
    int lost = 0;

    inet_pton(AF_INET, l->ip[1], &to.sin_addr);
    for (unsigned i = 0; s >= 0 && i < NET_LAB_PINGS; i++) {
        long rtt = net_ping_one(s, &to, i);

        lost += rtt < 0;
        g_string_append_printf(rep, "%ld ", rtt);
    }
    if (write(out, rep->str, rep->len) < 0) {
        return 125;
    }
    return s < 0 ? 124 : lost;
}

bool net_lab_ping(const NetLab *l, VirtioNet *n, char **rtts, int *status,
                  GError **errp)
{
    NetLabChild c = { .out = -1 };
    bool r;

    r = net_lab_child(l, &c, l->ns[0], net_pinger);
    r = net_lab_run_children(l, n, &c, 1, r, errp);
    *rtts = net_lab_child_report(&c);
    *status = c.status;
    return r && WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0;
}

/* ---- TCP echo ---- */

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

/* B's listening socket with one connection accepted, or -1. */
static int net_tcp_accept(const NetLab *l)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(l->port) };
    int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct pollfd pfd = { .fd = s, .events = POLLIN };

    inet_pton(AF_INET, l->ip[1], &a.sin_addr);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
        poll(&pfd, 1, NET_CHILD_WAIT_MS) <= 0) {
        return -1;
    }
    return accept(s, NULL, NULL);
}

/* In B: take everything, then send it back; reports "sha bytes us". */
static int net_tcp_server(const NetLab *l, int out)
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    GByteArray *data = g_byte_array_new();
    uint8_t buf[NET_TCP_CHUNK];
    gint64 t0 = g_get_monotonic_time();
    int c = net_tcp_accept(l);
    ssize_t r;

    if (c < 0) {
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

static int net_tcp_connect(const NetLab *l)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(l->port) };
    gint64 end = g_get_monotonic_time() + NET_CHILD_WAIT_MS * 1000LL;

    inet_pton(AF_INET, l->ip[1], &a.sin_addr);
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
static int net_tcp_client(const NetLab *l, int out)
{
    g_autofree uint8_t *data = g_malloc(NET_LAB_TCP_BYTES);
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t buf[NET_TCP_CHUNK];
    gint64 t0 = g_get_monotonic_time();
    size_t got = 0;
    ssize_t r;
    int s;

    net_tcp_fill(data, NET_LAB_TCP_BYTES);
    s = net_tcp_connect(l);
    if (s < 0 || send(s, data, NET_LAB_TCP_BYTES, MSG_NOSIGNAL) !=
                 NET_LAB_TCP_BYTES || shutdown(s, SHUT_WR) < 0) {
        return 122;
    }
    while ((r = recv(s, buf, sizeof(buf), 0)) > 0) {
        g_checksum_update(sum, buf, r);
        got += r;
    }
    return r < 0 ? 123 : net_report_sha(out, sum, got, t0);
}

static void net_sha_of_pattern(char *want)
{
    g_autofree uint8_t *data = g_malloc(NET_LAB_TCP_BYTES);
    g_autofree char *sha = NULL;

    net_tcp_fill(data, NET_LAB_TCP_BYTES);
    sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data,
                                      NET_LAB_TCP_BYTES);
    g_strlcpy(want, sha, 65);
}

bool net_lab_tcp_echo(const NetLab *l, VirtioNet *n, NetLabTcp *t,
                      GError **errp)
{
    g_autofree char *srv = NULL, *cli = NULL;
    NetLabChild c[2] = { { .out = -1 }, { .out = -1 } };
    bool r;

    memset(t, 0, sizeof(*t));
    net_sha_of_pattern(t->want);
    r = net_lab_child(l, &c[0], l->ns[1], net_tcp_server) &&
        net_lab_child(l, &c[1], l->ns[0], net_tcp_client);
    r = net_lab_run_children(l, n, c, 2, r, errp);
    srv = net_lab_child_report(&c[0]);
    cli = net_lab_child_report(&c[1]);
    sscanf(srv, "%64s %zu", t->srv_sha, &t->srv_bytes);
    sscanf(cli, "%64s %zu %" SCNd64, t->cli_sha, &t->cli_bytes, &t->us);
    t->status[0] = c[0].status;
    t->status[1] = c[1].status;
    return r && g_str_equal(t->srv_sha, t->want) &&
           g_str_equal(t->cli_sha, t->want) &&
           t->srv_bytes == NET_LAB_TCP_BYTES &&
           t->cli_bytes == NET_LAB_TCP_BYTES;
}

/* ---- iperf3 ---- */

/* In B: one iperf3 test on our address; reports its exit status. */
static int net_iperf3_server(const NetLab *l, int out)
{
    const char *argv[] = {
        "iperf3", "-s", "-1", "-B", l->ip[1], NULL,
    };
    int status = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                      G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                      &status, NULL)) {
        return 124;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

/* In A: the client, again until the server listens; reports "Mbit/s". */
static int net_iperf3_client(const NetLab *l, int out)
{
    g_autofree char *secs = g_strdup_printf("%d", NET_LAB_IPERF3_SECONDS);
    const char *argv[] = {
        "iperf3", "-c", l->ip[1], "-t", secs, "-J", NULL,
    };
    gint64 end = g_get_monotonic_time() + NET_CHILD_WAIT_MS * 1000LL;

    while (g_get_monotonic_time() < end) {
        g_autofree char *json = NULL;
        const char *sum, *bps;
        int status = -1;

        if (g_spawn_sync(NULL, (char **)argv, NULL,
                         G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                         NULL, NULL, &json, NULL, &status, NULL) &&
            WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
            (sum = strstr(json, "\"sum_received\"")) &&
            (bps = strstr(sum, "\"bits_per_second\":"))) {
            g_autofree char *r = g_strdup_printf(
                "%.1f", g_ascii_strtod(bps + 18, NULL) / 1e6);

            return write(out, r, strlen(r)) == (ssize_t)strlen(r) ? 0 : 126;
        }
        g_usleep(100000);       /* the server is not up yet */
    }
    return 127;
}

bool net_lab_iperf3(const NetLab *l, VirtioNet *n, double *mbps,
                    GError **errp)
{
    g_autofree char *cli = NULL;
    NetLabChild c[2] = { { .out = -1 }, { .out = -1 } };
    bool r;

    *mbps = 0;
    r = net_lab_child(l, &c[0], l->ns[1], net_iperf3_server) &&
        net_lab_child(l, &c[1], l->ns[0], net_iperf3_client);
    r = net_lab_run_children(l, n, c, 2, r, errp);
    g_free(net_lab_child_report(&c[0]));
    cli = net_lab_child_report(&c[1]);
    *mbps = g_ascii_strtod(cli, NULL);
    if (r && !(WIFEXITED(c[0].status) && WEXITSTATUS(c[0].status) == 0 &&
               WIFEXITED(c[1].status) && WEXITSTATUS(c[1].status) == 0 &&
               *mbps > 0)) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "iperf3: server exit 0x%x, client exit 0x%x, %s Mbit/s",
                    c[0].status, c[1].status, *cli ? cli : "no");
        r = false;
    }
    return r;
}
