/*
 * Starting QEMU as the simulated VMM's device model (see qemu-launch.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu-launch.h"

bool vmm_sim_qemu_spawn(VmmSimQemu *q, VmmSim *sim, GError **errp)
{
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s%s%s", vmm_sim_socket_path(sim),
        q->accel_opts && *q->accel_opts ? "," : "",
        q->accel_opts ? q->accel_opts : "");
    /* each -trace sets the file: without file=, the last one is stderr */
    g_autofree char *trace = g_strdup_printf("enable=sel4_*stats,file=%s",
                                             q->stats_trace);
    g_autofree char *trace_hist = g_strdup_printf(
        "enable=sel4_batch_hist,file=%s", q->stats_trace);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    const char *fixed[] = {
        q->qemu, "-nodefaults", "-display", "none",
        "-machine", "virt-sel4", "-accel", accel,
    };
    unsigned i;
    pid_t pid;

    for (i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_ptr_array_add(argv, (gpointer)fixed[i]);
    }
    for (i = 0; q->args && q->args[i]; i++) {
        g_ptr_array_add(argv, (gpointer)q->args[i]);
    }
    if (q->stats_trace) {
        /* events that fire once, at shutdown: no cost while running */
        g_ptr_array_add(argv, "-trace");
        g_ptr_array_add(argv, trace);
        g_ptr_array_add(argv, "-trace");
        g_ptr_array_add(argv, trace_hist);
    }
    g_ptr_array_add(argv, NULL);
    pid = fork();
    if (pid < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "fork: %s", g_strerror(errno));
        return false;
    }
    if (pid == 0) {
        sigset_t none;

        /* the caller may keep signals for a thread of its own: not QEMU */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (q->quiet) {
            int fd = open("/dev/null", O_WRONLY);

            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execv(q->qemu, (char **)argv->pdata);
        fprintf(stderr, "exec %s: %s\n", q->qemu, strerror(errno));
        _exit(127);
    }
    q->pid = pid;
    return true;
}

bool vmm_sim_qemu_start(VmmSimQemu *q, VmmSim *sim, int timeout_ms,
                        GError **errp)
{
    if (!vmm_sim_qemu_spawn(q, sim, errp)) {
        return false;
    }
    if (!vmm_sim_accept(sim, timeout_ms, errp)) {
        vmm_sim_qemu_stop(q, NULL, NULL);
        return false;
    }
    if (!vmm_sim_wait_started(sim, timeout_ms)) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED,
                    "QEMU sent no START_VM within %d ms", timeout_ms);
        vmm_sim_qemu_stop(q, NULL, NULL);
        return false;
    }
    return true;
}

int64_t vmm_sim_qemu_cpu_us(const VmmSimQemu *q)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)q->pid);
    g_autofree char *text = NULL;
    unsigned long long utime, stime;
    const char *p;

    if (q->pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    /* the name in parentheses may hold anything: fields follow the last ')' */
    p = strrchr(text, ')');
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%llu %llu", &utime, &stime) != 2) {
        return -1;
    }
    return (int64_t)(utime + stime) * 1000000 / sysconf(_SC_CLK_TCK);
}

void vmm_sim_qemu_stop(VmmSimQemu *q, int *status, struct rusage *ru)
{
    int st = 0;

    if (q->pid <= 0) {
        return;
    }
    kill(q->pid, SIGTERM);
    while (wait4(q->pid, &st, 0, ru) < 0 && errno == EINTR) {
        /* again */
    }
    if (status) {
        *status = st;
    }
    q->pid = 0;
}

/*
 * The numbers of trace line @event ("name=N" or "label: N" pairs, in the
 * order of its format) into @v; how many were found.
 */
static unsigned trace_values(const char *text, const char *event,
                             uint64_t *v, unsigned max)
{
    g_autofree char *key = g_strdup_printf("%s ", event);
    const char *p = text;
    unsigned n = 0;

    /* at the start of a line, or after the "pid@time:" of a timestamp */
    while ((p = strstr(p, key)) && p != text && p[-1] != '\n' &&
           p[-1] != ':') {
        p++;
    }
    if (!p) {
        return 0;
    }
    p += strlen(key);
    while (n < max) {
        char *end;

        p += strcspn(p, "=:\n");
        if (*p != '=' && *p != ':') {
            break;
        }
        v[n++] = g_ascii_strtoull(p + 1, &end, 10);
        p = end;
    }
    return n;
}

bool vmm_sim_accel_stats_read(const char *path, VmmSimAccelStats *st)
{
    g_autofree char *text = NULL;
    uint64_t v[6];

    memset(st, 0, sizeof(*st));
    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        trace_values(text, "sel4_stats", v, 6) != 6) {
        return false;
    }
    *st = (VmmSimAccelStats) {
        .requests = v[0], .batches = v[1], .doorbells_in = v[2],
        .doorbells_out = v[3], .events = v[4], .errors = v[5],
    };
    return trace_values(text, "sel4_batch_hist", st->batch_hist,
                        VMM_SIM_BATCH_HIST) == VMM_SIM_BATCH_HIST;
}

char *vmm_sim_accel_stats_json(const VmmSimAccelStats *st)
{
    const uint64_t *h = st->batch_hist;

    return g_strdup_printf(
        "{\"requests\": %" PRIu64 ", \"batches\": %" PRIu64
        ", \"doorbells_in\": %" PRIu64 ", \"doorbells_out\": %" PRIu64
        ", \"events\": %" PRIu64 ", \"errors\": %" PRIu64
        ", \"batch_hist\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
        ", %" PRIu64 ", %" PRIu64 "]}", st->requests, st->batches,
        st->doorbells_in, st->doorbells_out, st->events, st->errors,
        h[0], h[1], h[2], h[3], h[4], h[5]);
}
