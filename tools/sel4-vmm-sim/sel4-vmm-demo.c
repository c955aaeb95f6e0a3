/*
 * sel4-vmm-demo: the simulated seL4 VMM runs QEMU as its device model.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Starts qemu-system-aarch64 -machine virt-sel4 -accel sel4,transport=sim
 * with a virtio-blk (a qcow2 image made by qemu-img), -net, -rng, -serial
 * and -9p device, waits for the registrations and START_VM, does what a
 * guest kernel's PCI probe does through the VMM (every device's IDs in one
 * pipelined batch of config reads: one doorbell for all of them), then
 * runs a short workload on each device through the simulated guest's
 * virtio drivers and prints a table.  Exits 0 only if every row is ok.
 * virtio-net's backend is a tap that moves to network namespace B once
 * QEMU runs; the guest bridges it to a tap in namespace A (net-lab.h), so
 * pings and TCP from A reach B through it (that needs root).
 * With --trace, QEMU's sel4_* trace events go to the given file.  At the
 * end it prints QEMU's own counters (HMP `info sel4` over its QMP socket).
 * SIGINT/SIGTERM stop QEMU and remove what the demo set up.
 *
 * usage: sel4-vmm-demo --qemu PATH [--loop thread|thread-batch|aio|uring]
 *                      [--trace FILE] [--workdir DIR] [--qemu-arg ARG]...
 * (--qemu-arg: one more argument for QEMU's command line, e.g. the
 * -sandbox of contrib/systemd's start script)
 */
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "sel4/vmm_sim.h"
#include "demo-workloads.h"
#include "demo-soak.h"
#include "demo-vmm.h"
#include "cli.h"
#include "qemu-launch.h"
#include "qmp-client.h"

#define TIMEOUT_MS  20000

static char *opt_qemu;
static char *opt_loop;
static char *opt_trace;
static char *opt_workdir;
static int opt_soak;
static char *opt_soak_out;
static int opt_soak_seed;
static char **opt_qemu_args;

static const GOptionEntry entries[] = {
    { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &opt_qemu,
      "qemu-system-aarch64 built with the sel4 overlay", "PATH" },
    { "loop", 0, 0, G_OPTION_ARG_STRING, &opt_loop,
      "the accelerator's loop: thread, thread-batch, aio or uring "
      "(default)", "LOOP" },
    { "trace", 0, 0, G_OPTION_ARG_FILENAME, &opt_trace,
      "write QEMU's sel4_* trace events to FILE", "FILE" },
    { "workdir", 0, 0, G_OPTION_ARG_FILENAME, &opt_workdir,
      "where the socket, disk and share live (default: a temp dir)", "DIR" },
    { "soak", 0, 0, G_OPTION_ARG_INT, &opt_soak,
      "instead of one round of workloads: rounds for SECONDS, a fault "
      "after each, QEMU's RSS, fds and threads sampled (demo-soak.c)",
      "SECONDS" },
    { "soak-out", 0, 0, G_OPTION_ARG_FILENAME, &opt_soak_out,
      "--soak: write samples.tsv and soak.png there", "DIR" },
    { "soak-seed", 0, 0, G_OPTION_ARG_INT, &opt_soak_seed,
      "--soak: the seed of the doorbell faults (default: a new one, "
      "printed)", "N" },
    { "qemu-arg", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_qemu_args,
      "one more argument for QEMU (repeat for more), after the demo's own",
      "ARG" },
    { NULL }
};

static const char *const device_names[] = {
    [0x1041 - 0x1040] = "virtio-net", [0x1042 - 0x1040] = "virtio-blk",
    [0x1043 - 0x1040] = "virtio-console", [0x1044 - 0x1040] = "virtio-rng",
    [0x1049 - 0x1040] = "virtio-9p",
};

/* All devices' vendor/device/class words in one batch: one doorbell. */
static bool probe_devices(VmmSim *sim, unsigned n, GError **errp)
{
    g_autofree VmmSimAccess *acc = g_new0(VmmSimAccess, n * 2);
    unsigned i;

    for (i = 0; i < n; i++) {
        acc[2 * i] = (VmmSimAccess) {
            .slot = 16, .as = i, .addr = 0x00, .len = 4,
        };
        acc[2 * i + 1] = (VmmSimAccess) {
            .slot = 16, .as = i, .addr = 0x08, .len = 4,
        };
    }
    if (!vmm_sim_mmio_batch(sim, acc, n * 2, errp)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        unsigned vendor = acc[2 * i].data & 0xffff;
        unsigned device = acc[2 * i].data >> 16;
        unsigned class = acc[2 * i + 1].data >> 8;
        const char *name = device >= 0x1040 &&
            device - 0x1040 < G_N_ELEMENTS(device_names) ?
            device_names[device - 0x1040] : NULL;

        printf("  AS_PCIDEV(%u): %04x:%04x class %06x  %s\n", i, vendor,
               device, class, name ? name : "?");
    }
    return true;
}

/*
 * The demo's VMM and QEMU (a soak restarts them: the signal thread reads
 * vmm.q.pid each time), and what the signal thread removes: its dir.
 */
static DemoVmm vmm;
static char *tmp_dir;

/*
 * SIGINT/SIGTERM: stop QEMU, remove what the demo made, leave.  A thread
 * of its own (sigwait), so that it may do all of that safely.
 */
static gpointer signal_thread(gpointer data)
{
    sigset_t *set = data;
    int status, sig = 0;
    pid_t pid;

    sigwait(set, &sig);
    fprintf(stderr, "sel4-vmm-demo: signal %d: stopping QEMU, cleaning up\n",
            sig);
    pid = g_atomic_int_get(&vmm.q.pid);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
    }
    demo_cleanup();
    if (tmp_dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp_dir);

        if (system(cmd) != 0) {
            fprintf(stderr, "sel4-vmm-demo: could not remove %s\n", tmp_dir);
        }
    }
    _exit(128 + sig);
}

static void run_workloads(const char *dir, int *ret)
{
    const VmmSimConfig *c = vmm_sim_config(vmm.sim);
    DemoGuest g = {
        .sim = vmm.sim,
        .mmio_next = c->pci_mmio_base,
        .workdir = dir,
        .rows = g_ptr_array_new(),
    };

    /* the drivers' rings and buffers: the upper half of guest RAM */
    guest_alloc_init(&g.mem, vmm.sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    if (opt_soak > 0) {
        DemoSoak soak = {
            .seconds = opt_soak, .vmm = &vmm,
            .out_dir = opt_soak_out, .seed = (uint32_t)opt_soak_seed,
        };

        *ret = demo_soak(&g, &soak) ? 0 : 1;
        demo_rows_free(g.rows);
        return;
    }
    demo_blk(&g);
    demo_net(&g);
    demo_rng(&g);
    demo_console(&g);
    demo_9p(&g);
    *ret = demo_print_table(&g) ? 0 : 1;
    demo_rows_free(g.rows);
}

/* QEMU's side of the same traffic: HMP `info sel4` over QMP. */
static void print_qemu_counters(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
    g_autoptr(QmpClient) qmp = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;

    qmp = qmp_client_connect(path, TIMEOUT_MS, &err);
    if (qmp) {
        text = qmp_client_hmp(qmp, "info sel4", &err);
    }
    if (!text) {
        fprintf(stderr, "sel4-vmm-demo: QEMU's counters: %s\n", err->message);
        return;
    }
    printf("QEMU's counters (QMP %s: human-monitor-command 'info sel4'):\n%s",
           path, text);
}

static int run(const char *dir)
{
    g_autoptr(GError) err = NULL;
    const VmmSimPciDev *devs;
    const VmmSimConfig *c;
    VmmSimStats st;
    unsigned n, i;
    int ret = 1;

    vmm = (DemoVmm) {
        .dir = dir, .qemu = opt_qemu, .loop = opt_loop, .trace = opt_trace,
        .qemu_args = opt_qemu_args,
    };
    if (!demo_vmm_start(&vmm, TIMEOUT_MS, &err)) {
        fprintf(stderr, "sel4-vmm-demo: QEMU did not start: %s\n",
                err->message);
        goto out;
    }
    c = vmm_sim_config(vmm.sim);
    printf("VMM: guest RAM 0x%" PRIx64 "+0x%" PRIx64 ", PCI window 0x%"
           PRIx64 "+0x%" PRIx64 ", socket %s\n", c->ram_base, c->ram_size,
           c->pci_mmio_base, c->pci_mmio_size, vmm_sim_socket_path(vmm.sim));
    devs = vmm_sim_pci_devs(vmm.sim, &n);
    printf("QEMU (loop=%s) registered %u PCI devices, then START_VM:\n",
           opt_loop, n);
    for (i = 0; i < n; i++) {
        printf("  n=%u -> guest devfn %02x.%u, INTx line %u\n", devs[i].index,
               devs[i].devfn >> 3, devs[i].devfn & 7, devs[i].intx_line);
    }
    printf("PCI probe, %u config reads in one pipelined batch:\n", 2 * n);
    if (!probe_devices(vmm.sim, n, &err)) {
        fprintf(stderr, "sel4-vmm-demo: %s\n", err->message);
        goto out;
    }
    run_workloads(dir, &ret);
    if (!vmm.sim) {
        goto out;               /* a soak's restart failed: it said so */
    }
    vmm_sim_get_stats(vmm.sim, &st);
    printf("\nVMM counters%s: %" PRIu64 " requests, %" PRIu64 " replies, %"
           PRIu64 " events, doorbells %" PRIu64 " sent / %" PRIu64
           " received, %" PRIu64 " protocol errors\n",
           vmm.starts > 1 ? " (the last VMM's)" : "", st.requests,
           st.replies, st.events, st.doorbells_tx, st.doorbells_rx,
           st.protocol_errors);
    if (st.protocol_errors) {
        ret = 1;
    }
    print_qemu_counters(dir);
out:
    demo_vmm_stop(&vmm, TIMEOUT_MS);
    if (opt_trace) {
        printf("QEMU's trace: %s\n", opt_trace);
    }
    return ret;
}

/* A fresh qcow2 image made by qemu-img (beside the QEMU binary). */
static bool make_disk(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(opt_qemu);
    g_autofree char *cmd = g_strdup_printf(
        "'%s/qemu-img' create -q -f qcow2 '%s' 64M", dir, path);

    if (system(cmd) != 0) {
        fprintf(stderr, "sel4-vmm-demo: %s failed\n", cmd);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *tmp = NULL;
    g_autofree char *disk = NULL, *share = NULL;
    static sigset_t sigs;
    const char *dir;
    int ret;

    if (!cli_parse("sel4-vmm-demo",
        "- the simulated seL4 VMM drives QEMU's sel4 accelerator",
        "Starts QEMU (-machine virt-sel4 -accel sel4,transport=sim) with "
        "virtio-blk, -net,\n-rng, -serial and -9p devices, probes them "
        "through the simulated VMM, runs a\nworkload on each through the "
        "simulated guest's drivers and prints a table,\nthen the VMM's and "
        "QEMU's counters.  virtio-net's workload uses network\nnamespaces "
        "and taps: run as root.",
        "Exit status: 0 when every row of the table is ok; 1 otherwise; 2 "
        "for a bad\ncommand line.  Example:\n  sel4-vmm-demo --qemu "
        "build/qemu/qemu-system-aarch64 --loop thread\n",
        entries, &argc, &argv) ||
        !cli_check_qemu(opt_qemu) || !cli_check_loop(&opt_loop)) {
        return CLI_EXIT_USAGE;
    }
    /* every thread inherits the mask: only signal_thread takes them */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    g_thread_unref(g_thread_new("signals", signal_thread, &sigs));
    dir = opt_workdir;
    if (!dir) {
        tmp = g_dir_make_tmp("sel4-vmm-demo-XXXXXX", &err);
        if (!tmp) {
            fprintf(stderr, "sel4-vmm-demo: %s\n", err->message);
            return 1;
        }
        dir = tmp;
        tmp_dir = tmp;
    }
    disk = g_build_filename(dir, "disk.qcow2", NULL);
    share = g_build_filename(dir, "share", NULL);
    if (!make_disk(disk)) {
        return 1;
    }
    if (g_mkdir_with_parents(share, 0700) < 0 || !demo_9p_prepare(share)) {
        fprintf(stderr, "sel4-vmm-demo: cannot fill %s\n", share);
        return 1;
    }
    ret = run(dir);
    if (tmp) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);

        if (system(cmd) != 0) {
            fprintf(stderr, "sel4-vmm-demo: could not remove %s\n", tmp);
        }
    }
    return ret;
}
