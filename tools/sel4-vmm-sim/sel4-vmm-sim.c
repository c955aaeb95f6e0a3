/*
 * sel4-vmm-sim: the simulated seL4 VMM on its own, for trying a QEMU
 * command line.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Listens on --socket, runs the command after "--" (a qemu-system-aarch64
 * -accel sel4,transport=sim,socket=... command line; without one it waits
 * for a QEMU started elsewhere), waits for the registrations and
 * START_VM, reads every registered device's IDs through config requests
 * in one batch, keeps serving events for --hold seconds, runs HMP
 * commands (--hmp, default `info sel4`) on QEMU's QMP socket when --qmp
 * names it, then stops the QEMU it started.  Exit status: 0 when QEMU attached, started and answered the
 * probe; 1 when not; 2 for a bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include "sel4/vmm_sim.h"
#include "cli.h"
#include "qmp-client.h"

static char *opt_socket;
static char *opt_socket_group;
static char *opt_qmp;
static int opt_timeout = 20;
static int opt_hold;
static char **opt_hmp;

static const GOptionEntry entries[] = {
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &opt_socket,
      "listen here for QEMU (its -accel sel4,socket=PATH; required); the "
      "socket is created 0600, and a symlink or another user's file there "
      "is refused", "PATH" },
    { "socket-group", 0, 0, G_OPTION_ARG_STRING, &opt_socket_group,
      "create the socket 0660 and of this group (QEMU runs as another "
      "user of it)", "GROUP" },
    { "qmp", 'q', 0, G_OPTION_ARG_FILENAME, &opt_qmp,
      "QEMU's QMP socket: at the end, run the --hmp commands there "
      "(default: info sel4) and print their output", "PATH" },
    { "hmp", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_hmp,
      "an HMP command for --qmp (repeatable), e.g. "
      "'qom-get /machine/accel stats-requests'", "CMD" },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &opt_timeout,
      "seconds to wait for QEMU to attach and start (default 20)", "S" },
    { "hold", 0, 0, G_OPTION_ARG_INT, &opt_hold,
      "after the probe, keep serving for S seconds (default 0)", "S" },
    { NULL }
};

/* Every registered device's vendor/device word, one pipelined batch. */
static bool probe(VmmSim *sim)
{
    unsigned n, i;
    const VmmSimPciDev *devs = vmm_sim_pci_devs(sim, &n);
    g_autofree VmmSimAccess *acc = g_new0(VmmSimAccess, MAX(n, 1));
    g_autoptr(GError) err = NULL;

    for (i = 0; i < n; i++) {
        acc[i] = (VmmSimAccess) {
            .slot = VMM_SIM_CONFIG_SLOT, .as = devs[i].index, .len = 4,
        };
    }
    if (n && !vmm_sim_mmio_batch(sim, acc, n, &err)) {
        fprintf(stderr, "sel4-vmm-sim: probe: %s\n", err->message);
        return false;
    }
    printf("QEMU registered %u PCI devices and started:\n", n);
    for (i = 0; i < n; i++) {
        printf("  n=%u guest devfn %02x.%u  %04" PRIx64 ":%04" PRIx64 "\n",
               devs[i].index, devs[i].devfn >> 3, devs[i].devfn & 7,
               acc[i].data & 0xffff, acc[i].data >> 16);
    }
    return true;
}

/* The --hmp commands through QEMU's QMP socket; false on an error. */
static bool run_hmp(void)
{
    static const char *const dflt[] = { "info sel4", NULL };
    const char *const *cmds = opt_hmp ? (const char *const *)opt_hmp : dflt;
    g_autoptr(QmpClient) qmp = NULL;
    g_autoptr(GError) err = NULL;

    qmp = qmp_client_connect(opt_qmp, opt_timeout * 1000, &err);
    for (; qmp && *cmds; cmds++) {
        g_autofree char *text = qmp_client_hmp(qmp, *cmds, &err);

        if (!text) {
            break;
        }
        printf("(qemu) %s\n%s", *cmds, text);
    }
    if (err) {
        fprintf(stderr, "sel4-vmm-sim: %s\n", err->message);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    VmmSimConfig cfg = { 0 };
    char **cmd = NULL;
    pid_t pid = 0;
    VmmSim *sim;
    int ret = 1, i;

    if (!cli_parse("sel4-vmm-sim", "[-- QEMU_COMMAND...]",
        "The simulated seL4 VMM: listens on --socket, runs QEMU_COMMAND "
        "(or waits\nfor a QEMU started elsewhere), checks that it "
        "registers its devices,\nstarts and answers config requests, then "
        "stops it.",
        "Example:\n  sel4-vmm-sim --socket /tmp/vmm.sock -- "
        "qemu-system-aarch64 -nodefaults \\\n    -display none -machine "
        "virt-sel4 \\\n    -accel sel4,transport=sim,socket=/tmp/vmm.sock "
        "-device virtio-rng-pci\n\nExit status: 0 when QEMU attached, "
        "started and answered; 1 otherwise;\n2 for a bad command line.\n",
        entries, &argc, &argv)) {
        return CLI_EXIT_USAGE;
    }
    for (i = 1; i < argc; i++) {
        if (g_str_equal(argv[i], "--")) {
            cmd = argv + i + 1;
            break;
        }
    }
    if (!opt_socket || opt_timeout <= 0 || opt_hold < 0 ||
        (opt_hmp && !opt_qmp) ||
        (i == argc && argc > 1) || (cmd && !*cmd)) {
        return cli_usage_error("--socket PATH is required, --timeout > 0, "
                               "--hold >= 0, --hmp only with --qmp, and a "
                               "QEMU command only after \"--\"");
    }
    cfg.socket_path = opt_socket;
    cfg.socket_group = opt_socket_group;
    sim = vmm_sim_new(&cfg, &err);
    if (!sim) {
        fprintf(stderr, "sel4-vmm-sim: %s\n", err->message);
        return 1;
    }
    if (cmd) {
        pid = fork();
        if (pid == 0) {
            execvp(cmd[0], cmd);
            fprintf(stderr, "sel4-vmm-sim: %s: %s\n", cmd[0],
                    strerror(errno));
            _exit(127);
        }
    } else {
        printf("waiting for QEMU on %s\n", opt_socket);
        fflush(stdout);
    }
    if (!vmm_sim_accept(sim, opt_timeout * 1000, &err) ||
        !vmm_sim_wait_started(sim, opt_timeout * 1000)) {
        fprintf(stderr, "sel4-vmm-sim: QEMU did not attach and start: %s\n",
                err ? err->message : "no START_VM");
    } else if (probe(sim)) {
        gint64 end = g_get_monotonic_time() + opt_hold * G_USEC_PER_SEC;

        while (g_get_monotonic_time() < end &&
               vmm_sim_poll(sim, 100) != -EPIPE) {
            /* events only: the guest is not simulated here */
        }
        ret = vmm_sim_peer_gone(sim) || (opt_qmp && !run_hmp()) ? 1 : 0;
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    vmm_sim_free(sim);
    return ret;
}
