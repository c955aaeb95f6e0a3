/*
 * Starting QEMU as the simulated VMM's device model (see qemu-launch.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <gio/gio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu-launch.h"
#include "qmp-client.h"

pid_t vmm_sim_spawn(const char *const *argv, bool quiet, const char *log,
                    GError **errp)
{
    pid_t pid = fork();

    if (pid < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "fork: %s", g_strerror(errno));
        return -1;
    }
    if (pid == 0) {
        sigset_t none;

        /* the caller may keep signals for a thread of its own: not QEMU's */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (quiet || log) {
            int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)
                         : open("/dev/null", O_WRONLY);

            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execv(argv[0], (char **)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

bool vmm_sim_qemu_spawn(VmmSimQemu *q, VmmSim *sim, GError **errp)
{
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s%s%s", vmm_sim_socket_path(sim),
        q->accel_opts && *q->accel_opts ? "," : "",
        q->accel_opts ? q->accel_opts : "");
    g_autofree char *qmp = g_strdup_printf("unix:%s,server=on,wait=off",
                                           q->qmp);
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
    if (q->qmp) {
        g_ptr_array_add(argv, "-qmp");
        g_ptr_array_add(argv, qmp);
    }
    g_ptr_array_add(argv, NULL);
    pid = vmm_sim_spawn((const char *const *)argv->pdata, q->quiet, q->log,
                        errp);
    if (pid < 0) {
        return false;
    }
    q->pid = pid;
    return true;
}

/* Whether QEMU has exited, reaped and said in @errp (before it was up). */
static bool qemu_exited(VmmSimQemu *q, const char *before, GError **errp)
{
    int st;

    if (waitpid(q->pid, &st, WNOHANG) != q->pid) {
        return false;
    }
    q->pid = 0;
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED,
                "QEMU %s %d before %s%s%s",
                WIFEXITED(st) ? "exited with status" : "was killed by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), before,
                q->log ? "; its output is in " : "", q->log ? q->log : "");
    return true;
}

/* a wait for QEMU, cut short when it exits: slices of this many ms */
#define START_SLICE_MS  100

bool vmm_sim_qemu_start(VmmSimQemu *q, VmmSim *sim, int timeout_ms,
                        GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    GError *err = NULL;

    if (!vmm_sim_qemu_spawn(q, sim, errp)) {
        return false;
    }
    while (!vmm_sim_accept(sim, START_SLICE_MS, &err)) {
        if (!g_error_matches(err, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT) ||
            g_get_monotonic_time() >= end) {
            g_propagate_error(errp, err);
            vmm_sim_qemu_stop(q, NULL, NULL);
            return false;
        }
        g_clear_error(&err);
        if (qemu_exited(q, "it connected", errp)) {
            return false;
        }
    }
    while (!vmm_sim_wait_started(sim, START_SLICE_MS)) {
        if (qemu_exited(q, "it sent START_VM", errp)) {
            return false;
        }
        if (g_get_monotonic_time() >= end) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED,
                        "QEMU sent no START_VM within %d ms", timeout_ms);
            vmm_sim_qemu_stop(q, NULL, NULL);
            return false;
        }
    }
    return true;
}

int64_t vmm_sim_qemu_cpu_us(const VmmSimQemu *q)
{
    return vmm_sim_pid_cpu_us(q->pid);
}

int64_t vmm_sim_pid_cpu_us(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *text = NULL;
    unsigned long long utime, stime;
    const char *p;

    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL)) {
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

    g_clear_pointer(&q->qmp_client, qmp_client_free);
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

void vmm_sim_qemu_quit(VmmSimQemu *q, int timeout_ms, int *status)
{
    g_autoptr(GError) err = NULL;
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    JsonNode *ret;
    int st;

    if (q->pid <= 0) {
        return;
    }
    if (!q->qmp_client && q->qmp) {
        q->qmp_client = qmp_client_connect(q->qmp, timeout_ms, &err);
    }
    /* QEMU may close the socket before it answers: the wait says */
    ret = q->qmp_client ? qmp_client_call(q->qmp_client, "quit", NULL, &err)
                        : NULL;
    if (ret) {
        json_node_unref(ret);
    }
    g_clear_pointer(&q->qmp_client, qmp_client_free);
    while (q->qmp && g_get_monotonic_time() < end) {
        pid_t r = waitpid(q->pid, &st, WNOHANG);

        if (r == q->pid) {
            if (status) {
                *status = st;
            }
            q->pid = 0;
            return;
        }
        if (r < 0 && errno != EINTR) {
            break;
        }
        g_usleep(2000);
    }
    vmm_sim_qemu_stop(q, status, NULL);
}

static uint64_t stat_u64(JsonObject *o, const char *name)
{
    return json_object_has_member(o, name) ?
           (uint64_t)json_object_get_int_member(o, name) : 0;
}

/* The sum of the members whose names start with @prefix. */
static uint64_t stat_sum(JsonObject *o, const char *prefix)
{
    g_autoptr(GList) names = json_object_get_members(o);
    uint64_t sum = 0;

    for (GList *l = names; l; l = l->next) {
        JsonNode *v = json_object_get_member(o, l->data);

        if (g_str_has_prefix(l->data, prefix) && JSON_NODE_HOLDS_VALUE(v)) {
            sum += json_node_get_int(v);
        }
    }
    return sum;
}

bool vmm_sim_qemu_accel_stats(VmmSimQemu *q, VmmSimAccelStats *st,
                              GError **errp)
{
    g_autoptr(JsonNode) ret = NULL;
    JsonObject *o;
    JsonArray *hist;

    memset(st, 0, sizeof(*st));
    if (!q->qmp_client) {
        q->qmp_client = q->qmp ? qmp_client_connect(q->qmp, 20000, errp)
                               : NULL;
        if (!q->qmp_client) {
            if (!q->qmp) {
                g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                            "QEMU was started without a QMP socket");
            }
            return false;
        }
    }
    ret = qmp_client_call(q->qmp_client, "qom-get",
                          "{\"path\": \"/machine/accel\", "
                          "\"property\": \"stats\"}", errp);
    if (!ret) {
        return false;
    }
    o = JSON_NODE_HOLDS_OBJECT(ret) ? json_node_get_object(ret) : NULL;
    hist = o && json_object_has_member(o, "batch-size") ?
           json_object_get_array_member(o, "batch-size") : NULL;
    if (!hist || json_array_get_length(hist) != VMM_SIM_BATCH_HIST) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "QMP: /machine/accel stats is not the expected dict");
        return false;
    }
    *st = (VmmSimAccelStats) {
        .requests = stat_u64(o, "requests"),
        .batches = stat_u64(o, "batches"),
        .doorbells_in = stat_u64(o, "doorbells-in"),
        .doorbells_out = stat_u64(o, "doorbells-out"),
        .events = stat_sum(o, "events-") - stat_u64(o, "events-dropped"),
        .msi = stat_u64(o, "msi"),
        .msi_merged = stat_u64(o, "msi-merged"),
        .errors = stat_sum(o, "errors-"),
        .notifies_fast = stat_u64(o, "notifies-fast"),
        .notify_suppressed = stat_u64(o, "notify-suppressed"),
        .notify_polled = stat_u64(o, "notify-polled"),
        .notify_stalled = stat_u64(o, "notify-stalled"),
    };
    for (unsigned i = 0; i < VMM_SIM_BATCH_HIST; i++) {
        st->batch_hist[i] = json_array_get_int_element(hist, i);
    }
    return true;
}

void vmm_sim_accel_stats_sub(VmmSimAccelStats *d, const VmmSimAccelStats *b,
                             const VmmSimAccelStats *a)
{
    *d = (VmmSimAccelStats) {
        .requests = b->requests - a->requests,
        .batches = b->batches - a->batches,
        .doorbells_in = b->doorbells_in - a->doorbells_in,
        .doorbells_out = b->doorbells_out - a->doorbells_out,
        .events = b->events - a->events,
        .msi = b->msi - a->msi,
        .msi_merged = b->msi_merged - a->msi_merged,
        .errors = b->errors - a->errors,
        .notifies_fast = b->notifies_fast - a->notifies_fast,
        .notify_suppressed = b->notify_suppressed - a->notify_suppressed,
        .notify_polled = b->notify_polled - a->notify_polled,
        .notify_stalled = b->notify_stalled - a->notify_stalled,
    };
    for (unsigned i = 0; i < VMM_SIM_BATCH_HIST; i++) {
        d->batch_hist[i] = b->batch_hist[i] - a->batch_hist[i];
    }
}

char *vmm_sim_accel_stats_json(const VmmSimAccelStats *st)
{
    const uint64_t *h = st->batch_hist;

    return g_strdup_printf(
        "{\"requests\": %" PRIu64 ", \"batches\": %" PRIu64
        ", \"doorbells_in\": %" PRIu64 ", \"doorbells_out\": %" PRIu64
        ", \"events\": %" PRIu64 ", \"msi\": %" PRIu64
        ", \"msi_merged\": %" PRIu64 ", \"errors\": %" PRIu64
        ", \"notifies_fast\": %" PRIu64 ", \"notify_suppressed\": %" PRIu64
        ", \"notify_polled\": %" PRIu64 ", \"notify_stalled\": %" PRIu64
        ", \"batch_hist\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
        ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]}", st->requests,
        st->batches, st->doorbells_in, st->doorbells_out, st->events,
        st->msi, st->msi_merged, st->errors, st->notifies_fast,
        st->notify_suppressed, st->notify_polled, st->notify_stalled,
        h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
}
