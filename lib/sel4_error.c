/*
 * The one GError helper of our libraries and tools (sel4/sel4_error.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>

#include "sel4/sel4_error.h"

bool sel4_fail(GError **errp, GQuark domain, int code, const char *fmt, ...)
{
    va_list ap;

    if (errp) {
        va_start(ap, fmt);
        g_propagate_error(errp, g_error_new_valist(domain, code, fmt, ap));
        va_end(ap);
    }
    return false;
}
