/*
 * What the end-to-end tests share: TAP output and QEMU processes.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_E2E_QEMU_HARNESS_H
#define TESTS_E2E_QEMU_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

extern const char *qemu;        /* the binary under test */
extern int n_test;
extern int n_fail;

/* One TAP test line. */
void ok(bool cond, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* One TAP skip line: a case this build cannot reach, and why. */
void skip(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Copy a log file into the TAP output as comments. */
void diag_file(const char *path);
/* Run QEMU with @args to completion; stdout+stderr in @out; wait status. */
int run_qemu_sync(const char *const *args, char **out);
/* Start @argv (argv[0] = qemu), stdout and stderr to the file @log. */
pid_t spawn_qemu_argv(const char *const *argv, const char *log);
/* waitpid with a timeout; returns the status, or -1 on timeout. */
int wait_child(pid_t pid, int timeout_ms);
/* SIGKILL @pid unless it has ended, and reap it. */
void kill_and_reap(pid_t pid);

/*
 * main()'s frame: harness_init() sets qemu to @path and returns false
 * (after printing a TAP skip) when it is not an executable, else makes
 * the temp dir @prefix-XXXXXX (returned; removed by harness_done()).
 * harness_done() prints the plan and returns the exit status.
 */
char *harness_init(const char *path, const char *prefix);
int harness_done(void);
/* SIGTERM @pid, ok() that it ends with @want_status (-1: any), reap it;
 * @log goes into the output when a test failed so far. */
void harness_stop_qemu(pid_t pid, int want_status, const char *log);

#endif
