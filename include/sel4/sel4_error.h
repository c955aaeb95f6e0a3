/*
 * The one GError helper of our libraries and tools.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A file whose errors all carry the same context puts it in front of the
 * format as a string literal, e.g.
 *
 *   #define net_fail(errp, ...) \
 *       sel4_fail(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED, \
 *                 "virtio-net: " __VA_ARGS__)
 *
 * and a context known only to a caller is added there with
 * g_prefix_error().
 */
#ifndef SEL4_ERROR_H
#define SEL4_ERROR_H

#include <stdbool.h>
#include <glib.h>

/* g_set_error(), returning false: "return sel4_fail(...)". */
bool sel4_fail(GError **errp, GQuark domain, int code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

#endif /* SEL4_ERROR_H */
