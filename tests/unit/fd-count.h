/*
 * Counting this process's open fds, to prove that nothing leaks.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_FD_COUNT_H
#define TESTS_FD_COUNT_H

#include <glib.h>

static inline unsigned count_fds(void)
{
    GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    g_dir_close(dir);
    return n;
}

#endif /* TESTS_FD_COUNT_H */
