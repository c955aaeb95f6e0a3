/*
 * The command line of the simulated VMM's programs (sel4-vmm-sim,
 * sel4-vmm-demo, sel4-vmm-blk-writer, bench's sel4-net-bridge): one
 * preamble and one convention.  --help exits 0; a bad command line prints
 * "PROGRAM: MESSAGE (see --help)" on stderr and exits 2; the programs
 * exit 1 for a failure at run time.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SEL4_SIM_CLI_H
#define SEL4_SIM_CLI_H

#include <stdbool.h>
#include <glib.h>

/* The exit status of a bad command line. */
#define CLI_EXIT_USAGE 2

/*
 * Name the program @prog (every later message starts with it), parse
 * @argv with @entries (@params follows the program's name in the usage
 * line; @summary and @description may be NULL) and ignore SIGPIPE (a
 * peer's death is an error reply, not a signal).  False after printing
 * the parser's message: exit with CLI_EXIT_USAGE.
 */
bool cli_parse(const char *prog, const char *params, const char *summary,
               const char *description, const GOptionEntry *entries,
               int *argc, char ***argv);

/* "PROGRAM: MESSAGE (see --help)" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* --qemu: given, and an executable (a qemu-system-aarch64). */
bool cli_check_qemu(const char *qemu);

/* --loop: thread, thread-batch, aio or uring; *@loop is set to "uring" when NULL. */
bool cli_check_loop(char **loop);

#endif /* SEL4_SIM_CLI_H */
