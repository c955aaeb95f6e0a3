/*
 * What the end-to-end tests share: TAP output and QEMU processes.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <glib.h>

#include "qemu-harness.h"

int n_test;
int n_fail;
const char *qemu;

/* One TAP line: @head (its number follows), then the description. */
static void tap_line(const char *head, const char *sep, const char *fmt,
                     va_list ap)
{
    n_test++;
    printf("%s %d%s", head, n_test, sep);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
}

void ok(bool cond, const char *fmt, ...)
{
    va_list ap;

    if (!cond) {
        n_fail++;
    }
    va_start(ap, fmt);
    tap_line(cond ? "ok" : "not ok", " - ", fmt, ap);
    va_end(ap);
}

void skip(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tap_line("ok", " # SKIP ", fmt, ap);
    va_end(ap);
}

void diag_file(const char *path)
{
    g_autofree char *text = NULL;

    if (g_file_get_contents(path, &text, NULL, NULL) && *text) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        for (char **l = lines; *l; l++) {
            if (**l) {
                printf("# qemu: %s\n", *l);
            }
        }
    }
}

/* Run QEMU with @args to completion; returns its wait status. */
int run_qemu_sync(const char *const *args, char **out)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *o = NULL, *e = NULL;
    g_autoptr(GError) err = NULL;
    int status = -1;

    g_ptr_array_add(argv, (char *)qemu);
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT,
                      NULL, NULL, &o, &e, &status, &err)) {
        printf("# spawn %s: %s\n", qemu, err->message);
        *out = g_strdup("");
        return -1;
    }
    *out = g_strconcat(o, e, NULL);
    return status;
}

pid_t spawn_qemu_argv(const char *const *argv, const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        sigset_t none;

        /* a test that keeps signals for a thread of its own: not QEMU's */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char **)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* waitpid with a timeout; returns the status, or -1 on timeout. */
int wait_child(pid_t pid, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000LL;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            return status;
        }
        if (g_get_monotonic_time() > end) {
            return -1;
        }
        g_usleep(10 * 1000);
    }
}

void kill_and_reap(pid_t pid)
{
    if (wait_child(pid, 0) == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}


static char *harness_dir;

char *harness_init(const char *path, const char *prefix)
{
    g_autofree char *tmpl = g_strdup_printf("%s-XXXXXX", prefix);

    qemu = path;
    if (!*qemu || access(qemu, X_OK) != 0) {
        printf("1..1\nok 1 # SKIP no QEMU binary ('%s')\n", qemu);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    harness_dir = g_dir_make_tmp(tmpl, NULL);
    g_assert(harness_dir);
    return harness_dir;
}

int harness_done(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", harness_dir);

    printf("1..%d\n", n_test);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", harness_dir);
    }
    return n_fail ? 1 : 0;
}

void harness_stop_qemu(pid_t pid, int want_status, const char *log)
{
    int st;

    kill(pid, SIGTERM);
    st = wait_child(pid, 20000);
    ok(st != -1 && (want_status == -1 || st == want_status),
       "QEMU ended on SIGTERM (status 0x%x)", st);
    if (n_fail) {
        diag_file(log);
    }
    kill_and_reap(pid);
}
