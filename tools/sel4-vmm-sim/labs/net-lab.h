/*
 * A host-side network lab for the simulated guest's virtio-net driver:
 * two network namespaces bridged through the guest.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   namespace A: tap "g<tag>A<pid>" (fd held by this process)
 *     <-> the guest's driver (virtio_net_bridge)
 *     <-> QEMU's virtio-net-pci <-> -netdev tap "q<tag>B<pid>"
 *   namespace B: that tap, moved there once QEMU has opened it
 *
 * The namespaces are "<prefix>A-<pid>" and "<prefix>B-<pid>"; A is
 * 10.77.<pid % 200>.1/24 and carries the device's MAC, B is .2.  Traffic
 * comes from forked children that enter their namespace with setns(), so
 * no tool beyond ip(8) is needed; the calling process bridges frames
 * meanwhile.  Needs CAP_NET_ADMIN and CAP_SYS_ADMIN.
 *
 * Use: net_lab_init(), net_lab_setup() before QEMU starts (QEMU gets
 * net_lab_netdev()), net_lab_configure() once the driver knows the MAC,
 * then net_lab_ping() / net_lab_tcp_echo(); net_lab_cleanup() at the end
 * or at any time before (idempotent).
 */
#ifndef VMM_SIM_NET_LAB_H
#define VMM_SIM_NET_LAB_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "virtio-net.h"

#define NET_LAB_PINGS       3
#define NET_LAB_PING_WAIT_MS 2000
#define NET_LAB_TCP_BYTES   (2u << 20)

typedef struct NetLab {
    char ns[2][32];             /* A, B */
    char tap[2][IFNAMSIZ];      /* ours in A, QEMU's (to move to B) */
    char ip[2][16];
    unsigned port;              /* of the TCP echo server in B */
    int tap_fd;
    /*
     * Our tap with IFF_VNET_HDR (12-byte headers), for a driver with
     * offloads; set between net_lab_init() and net_lab_setup().
     */
    bool vnet_hdr;
    /* addresses set, QEMU's tap in B: a rebooted guest only sets its MAC */
    bool configured;
} NetLab;

/* A forked child's work, in its namespace; reports on fd @out. */
typedef int NetLabChildFn(const NetLab *l, int out);

typedef struct NetLabChild {
    pid_t pid;
    int out;                    /* read end of its report pipe */
    int status;
    bool done;
} NetLabChild;

typedef struct NetLabTcp {
    char want[65];              /* SHA-256 of the pattern sent */
    char srv_sha[65], cli_sha[65];
    size_t srv_bytes, cli_bytes;
    int64_t us;                 /* the client's time, there and back */
    int status[2];              /* of the server, the client */
} NetLabTcp;

/* Names and addresses from @prefix, @tag and our pid; nothing made yet. */
void net_lab_init(NetLab *l, const char *prefix, const char *tag);
/*
 * Remove what an earlier run with the same names left, create both
 * namespaces and open our tap inside A.
 */
bool net_lab_setup(NetLab *l, GError **errp);
/*
 * TUNSETOFFLOAD on our tap (TUN_F_* flags: what the kernel may hand us,
 * see virtio_net_tap_offloads()); needs vnet_hdr.
 */
bool net_lab_tap_offloads(NetLab *l, unsigned flags, GError **errp);
/* QEMU's -netdev value: a tap named l->tap[1], no scripts. */
char *net_lab_netdev(const NetLab *l, const char *id);
/*
 * Once QEMU has opened its tap: A gets @mac and its address, QEMU's tap
 * moves to B and gets B's; both up.
 */
bool net_lab_configure(NetLab *l, const uint8_t *mac, GError **errp);
/* Close our tap, delete both namespaces and QEMU's tap; quiet, idempotent. */
void net_lab_cleanup(NetLab *l);

/* Fork @fn inside namespace @ns, reporting on a pipe. */
bool net_lab_child(const NetLab *l, NetLabChild *c, const char *ns,
                   NetLabChildFn *fn);
/* Its report (empty if none); closes the pipe. */
char *net_lab_child_report(NetLabChild *c);
/*
 * Bridge through @n until the @nc children (all forked, or none run:
 * @forked false) end; kill what is left and reap them all.
 */
bool net_lab_run_children(const NetLab *l, VirtioNet *n, NetLabChild *c,
                          unsigned nc, bool forked, GError **errp);

/*
 * NET_LAB_PINGS ICMP echoes from A to B, bridged by @n.  @rtts gets the
 * RTTs in us ("-1" for a lost one), @status the pinger's wait status;
 * true when all were answered.
 */
bool net_lab_ping(const NetLab *l, VirtioNet *n, char **rtts, int *status,
                  GError **errp);
/*
 * A TCP echo of NET_LAB_TCP_BYTES from A to B and back, bridged by @n;
 * true when the bridge held and both ends saw all of the pattern.
 */
bool net_lab_tcp_echo(const NetLab *l, VirtioNet *n, NetLabTcp *t,
                      GError **errp);
/*
 * iperf3 (the real tool) from A to B through the guest for
 * NET_LAB_IPERF3_SECONDS: the server in B (one test), the client in A;
 * *mbps is what the server received, in Mbit/s.  False when either fails.
 */
#define NET_LAB_IPERF3_SECONDS  1
bool net_lab_iperf3(const NetLab *l, VirtioNet *n, double *mbps,
                    GError **errp);

#endif
