/*
 * The command line of the simulated VMM's programs (see cli.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

bool cli_parse(const char *prog, const char *params, const char *summary,
               const char *description, const GOptionEntry *entries,
               int *argc, char ***argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(params);
    g_autoptr(GError) err = NULL;

    g_set_prgname(prog);
    if (summary) {
        g_option_context_set_summary(ctx, summary);
    }
    if (description) {
        g_option_context_set_description(ctx, description);
    }
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, argc, argv, &err)) {
        cli_usage_error("%s", err->message);
        return false;
    }
    signal(SIGPIPE, SIG_IGN);
    return true;
}

int cli_usage_error(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s (see --help)\n", g_get_prgname(), msg);
    return CLI_EXIT_USAGE;
}

bool cli_check_qemu(const char *qemu)
{
    if (!qemu || access(qemu, X_OK) != 0) {
        cli_usage_error("--qemu PATH (an executable qemu-system-aarch64) is "
                        "required");
        return false;
    }
    return true;
}

static const char *const cli_loops[] = {
    "thread", "thread-batch", "aio", "uring", NULL,
};

bool cli_check_loop(char **loop)
{
    if (!*loop) {
        *loop = g_strdup("uring");
    }
    if (!g_strv_contains(cli_loops, *loop)) {
        cli_usage_error("--loop is thread, thread-batch, aio or uring, "
                        "not '%s'", *loop);
        return false;
    }
    return true;
}
