/*
 * sel4-net-bridge: the simulated seL4 guest bridging two network
 * namespaces through QEMU's virtio-net, until told to stop.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   namespace A: tap <-> the guest's virtio-net driver (this process)
 *     <-> QEMU (-accel sel4,transport=sim,loop=...) virtio-net-pci
 *     <-> -netdev tap <-> namespace B
 *
 * Once traffic can flow it prints one line on stdout,
 *   ready <namespace A> <namespace B> <address in A> <address in B>
 * and forwards frames until SIGTERM or SIGINT.  Then it stops QEMU,
 * removes the namespaces and prints one JSON line of counters for the
 * span from "ready" to the signal: frames and bytes each way, CPU time
 * of QEMU and of this process, the VMM's doorbells and MMIO requests,
 * the driver's kicks and interrupts, and the accelerator's counters.
 * Used by the iperf3 benchmark (bench/run-bench.py); needs root.
 *
 * usage: sel4-net-bridge --qemu PATH [--loop thread|thread-batch|aio|uring]
 *                        [--poll-us N] [--mrg-rxbuf] [--offloads] [--check]
 *
 * --check is its test: pings and a TCP echo (SHA-256 on both ends) from A
 * to B and back through the bridge, frame sizes as the offloads say
 * (bigger than an MTU only with TSO), no protocol errors; TAP output.
 */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <glib.h>

#include "cli.h"
#include "net-lab.h"
#include "qemu-launch.h"
#include "virtio-net.h"

#define TIMEOUT_MS      20000

static char *opt_qemu;
static char *opt_loop;
static int opt_poll_us;
static char *opt_accel;
static gboolean opt_mrg;
static gboolean opt_offloads;
static gboolean opt_check;

static const GOptionEntry entries[] = {
    { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &opt_qemu,
      "qemu-system-aarch64 built with the sel4 overlay", "PATH" },
    { "loop", 0, 0, G_OPTION_ARG_STRING, &opt_loop,
      "the accelerator's loop: thread, thread-batch, aio or uring "
      "(default)", "LOOP" },
    { "poll-us", 0, 0, G_OPTION_ARG_INT, &opt_poll_us,
      "the accelerator's poll-us (default 0)", "N" },
    { "accel", 0, 0, G_OPTION_ARG_STRING, &opt_accel,
      "more -accel sel4 options (e.g. notify-suppress-us=0,ioeventfd=off)",
      "OPTS" },
    { "mrg-rxbuf", 0, 0, G_OPTION_ARG_NONE, &opt_mrg,
      "negotiate VIRTIO_NET_F_MRG_RXBUF", NULL },
    { "offloads", 0, 0, G_OPTION_ARG_NONE, &opt_offloads,
      "checksum and TSO offloads, as a Linux guest negotiates them "
      "(passed through a tap with IFF_VNET_HDR)", NULL },
    { "check", 0, 0, G_OPTION_ARG_NONE, &opt_check,
      "instead of waiting for a signal: ping and a TCP echo across, "
      "checked (TAP output), then exit", NULL },
    { NULL }
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static bool should_stop(void *opaque)
{
    return stop_signal != 0;
}

static int64_t self_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

typedef struct Span {
    int64_t qemu_cpu, self_cpu, t;
    VmmSimStats vmm;
    VirtioNetStats net;
    VmmSimAccelStats acc;
} Span;

static void span_mark(Span *sp, VmmSimQemu *q, VmmSim *sim, VirtioNet *n)
{
    g_autoptr(GError) err = NULL;

    if (!vmm_sim_qemu_accel_stats(q, &sp->acc, &err)) {
        fprintf(stderr, "sel4-net-bridge: the accelerator's counters: %s\n",
                err->message);
    }
    sp->qemu_cpu = vmm_sim_qemu_cpu_us(q);
    sp->self_cpu = self_cpu_us();
    sp->t = g_get_monotonic_time();
    vmm_sim_get_stats(sim, &sp->vmm);
    sp->net = n->stats;
}

static void print_stats(const Span *a, const Span *b, uint64_t features,
                        bool bridged)
{
    g_autofree char *accel = NULL;
    VmmSimAccelStats acc;

    vmm_sim_accel_stats_sub(&acc, &b->acc, &a->acc);
    accel = vmm_sim_accel_stats_json(&acc);

    printf("{\"loop\": \"%s\", \"poll_us\": %d, \"offloads\": %s, "
           "\"features\": \"0x%" PRIx64 "\", \"bridged\": %s, "
           "\"seconds\": %.3f, "
           "\"tx_frames\": %" PRIu64 ", \"tx_bytes\": %" PRIu64 ", "
           "\"rx_frames\": %" PRIu64 ", \"rx_bytes\": %" PRIu64 ", "
           "\"rx_dropped\": %" PRIu64 ", "
           "\"tx_kicks\": %" PRIu64 ", \"rx_kicks\": %" PRIu64 ", "
           "\"irqs\": %" PRIu64 ", "
           "\"qemu_cpu_us\": %" PRId64 ", \"sim_cpu_us\": %" PRId64 ", "
           "\"mmio_requests\": %" PRIu64 ", "
           "\"vmm_doorbells_out\": %" PRIu64 ", "
           "\"vmm_doorbells_in\": %" PRIu64 ", "
           "\"protocol_errors\": %" PRIu64 ", \"accel\": %s}\n",
           opt_loop, opt_poll_us, opt_offloads ? "true" : "false", features,
           bridged ? "true" : "false",
           (b->t - a->t) / 1e6,
           b->net.tx_frames - a->net.tx_frames,
           b->net.tx_bytes - a->net.tx_bytes,
           b->net.rx_frames - a->net.rx_frames,
           b->net.rx_bytes - a->net.rx_bytes,
           b->net.rx_dropped - a->net.rx_dropped,
           b->net.tx_kicks - a->net.tx_kicks,
           b->net.rx_kicks - a->net.rx_kicks,
           b->net.irqs - a->net.irqs,
           b->qemu_cpu - a->qemu_cpu, b->self_cpu - a->self_cpu,
           b->vmm.requests - a->vmm.requests,
           b->vmm.doorbells_tx - a->vmm.doorbells_tx,
           b->vmm.doorbells_rx - a->vmm.doorbells_rx,
           b->vmm.protocol_errors, accel);
    fflush(stdout);
}

static int tap_n, tap_failed;

static void tap_ok(bool ok, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void tap_ok(bool ok, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    printf("%sok %d - %s\n", ok ? "" : "not ", ++tap_n, msg);
    tap_failed += !ok;
}

/* --check: traffic across the bridge, verified. */
static bool self_check(NetLab *lab, VirtioNet *n, VmmSim *sim)
{
    const uint64_t tso = UINT64_C(1) << VIRTIO_NET_F_HOST_TSO4 |
                         UINT64_C(1) << VIRTIO_NET_F_GUEST_TSO4;
    g_autoptr(GError) perr = NULL, terr = NULL;
    g_autofree char *rtts = NULL;
    int status = 0;
    NetLabTcp t;
    VmmSimStats st;
    bool tso_on = (n->pci.features & tso) == tso;
    bool ok;

    printf("1..5\n");
    tap_ok(tso_on == !!opt_offloads && n->offloads == !!opt_offloads,
           "features 0x%" PRIx64 ": TSO both ways %s, as asked",
           n->pci.features, tso_on ? "on" : "off");
    /* (the calls first: the messages read what they fill in) */
    ok = net_lab_ping(lab, n, &rtts, &status, &perr);
    tap_ok(ok, "ICMP echoes %s -> %s, RTT us: %s: %s", lab->ip[0],
           lab->ip[1], rtts ? rtts : "", perr ? perr->message : "ok");
    ok = net_lab_tcp_echo(lab, n, &t, &terr);
    tap_ok(ok,
           "TCP echo of %u bytes, sha256 %.16s... sent, %.16s... and "
           "%.16s... received: %s", NET_LAB_TCP_BYTES, t.want, t.srv_sha,
           t.cli_sha, terr ? terr->message : "ok");
    /* with TSO the stacks hand over segments larger than the MTU */
    tap_ok(opt_offloads ? n->stats.tx_max_frame > VIRTIO_NET_MAX_FRAME &&
                          n->stats.rx_max_frame > VIRTIO_NET_MAX_FRAME
                        : n->stats.tx_max_frame <= VIRTIO_NET_MAX_FRAME &&
                          n->stats.rx_max_frame <= VIRTIO_NET_MAX_FRAME,
           "largest frames: %" PRIu64 " bytes to the device, %" PRIu64
           " from it", n->stats.tx_max_frame, n->stats.rx_max_frame);
    vmm_sim_get_stats(sim, &st);
    tap_ok(!st.protocol_errors && !n->stats.rx_dropped,
           "%" PRIu64 " protocol errors, %" PRIu64 " frames dropped",
           st.protocol_errors, n->stats.rx_dropped);
    return !tap_failed;
}

static int run(const char *dir)
{
    g_autofree char *sock = g_build_filename(dir, "vmm.sock", NULL);
    g_autofree char *qmp = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *accel = g_strdup_printf("loop=%s,poll-us=%d%s%s",
                                             opt_loop, opt_poll_us,
                                             opt_accel ? "," : "",
                                             opt_accel ? opt_accel : "");
    g_autofree char *netdev = NULL;
    g_autoptr(GError) err = NULL;
    VmmSimConfig cfg = { .socket_path = sock };
    VirtioNetConfig ncfg = { .mrg_rxbuf = opt_mrg, .offloads = opt_offloads };
    VirtioNet n = { 0 };
    VmmSimQemu q = { 0 };
    GuestAlloc mem;
    const VmmSimConfig *c;
    uint64_t mmio_next;
    NetLab lab;
    Span a, b;
    VmmSim *sim = NULL;
    bool up = false, bridged = false;
    uint64_t features = 0;
    int ret = 1;

    net_lab_init(&lab, "s4b", "b");
    lab.vnet_hdr = opt_offloads;
    if (!net_lab_setup(&lab, &err)) {
        goto out;
    }
    netdev = net_lab_netdev(&lab, "n0");
    {
        const char *args[] = {
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-netdev", netdev, NULL,
        };

        sim = vmm_sim_new(&cfg, &err);
        q = (VmmSimQemu) {
            .qemu = opt_qemu, .accel_opts = accel, .args = args,
            .qmp = qmp,
        };
        if (!sim || !vmm_sim_qemu_start(&q, sim, TIMEOUT_MS, &err)) {
            goto out;
        }
    }
    c = vmm_sim_config(sim);
    mmio_next = c->pci_mmio_base;
    guest_alloc_init(&mem, sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    if (!virtio_net_init(&n, sim, &mem, 0, &mmio_next,
                         VMM_SIM_DEFAULT_MSI_SPI_BASE, true, &ncfg, &err)) {
        goto out;
    }
    up = true;
    features = n.pci.features;
    if ((opt_offloads &&
         !net_lab_tap_offloads(&lab, virtio_net_tap_offloads(&n), &err)) ||
        !net_lab_configure(&lab, n.mac, &err)) {
        goto out;
    }
    if (opt_check) {
        ret = self_check(&lab, &n, sim) ? 0 : 1;
        goto out;
    }
    span_mark(&a, &q, sim, &n);
    printf("ready %s %s %s %s\n", lab.ns[0], lab.ns[1], lab.ip[0], lab.ip[1]);
    fflush(stdout);
    bridged = virtio_net_bridge(&n, lab.tap_fd, should_stop, NULL, INT_MAX,
                                &err);
    span_mark(&b, &q, sim, &n);
    ret = bridged ? 0 : 1;
out:
    if (err) {
        fprintf(stderr, "sel4-net-bridge: %s\n", err->message);
    }
    if (up) {
        virtio_net_destroy(&n);
    }
    vmm_sim_qemu_stop(&q, NULL, NULL);
    net_lab_cleanup(&lab);
    if (up && ret == 0 && !opt_check) {
        print_stats(&a, &b, features, bridged);
    }
    vmm_sim_free(sim);
    unlink(qmp);
    return ret;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    struct sigaction sa = { .sa_handler = on_signal };
    int ret;

    if (!cli_parse("sel4-net-bridge",
                   "- the simulated seL4 guest bridges two namespaces "
                   "through QEMU", NULL, NULL, entries, &argc, &argv) ||
        !cli_check_qemu(opt_qemu) || !cli_check_loop(&opt_loop)) {
        return CLI_EXIT_USAGE;
    }
    if (opt_poll_us < 0) {
        return cli_usage_error("--poll-us must be >= 0");
    }
    /* no SA_RESTART: the bridge's poll() returns and sees the flag */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    dir = g_dir_make_tmp("sel4-net-bridge-XXXXXX", &err);
    if (!dir) {
        fprintf(stderr, "sel4-net-bridge: %s\n", err->message);
        return 1;
    }
    ret = run(dir);
    rmdir(dir);
    return ret;
}
