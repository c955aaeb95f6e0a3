/*
 * The host side of a virtserialport for the simulated guest's
 * virtio-console driver: QEMU's unix socket chardev, whose client end
 * this process holds, and an echo thread on it.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Use: console_lab_chardev() for QEMU's -chardev, console_lab_connect()
 * once QEMU listens, then plain bytes (console_lab_write/read) or an echo
 * (console_lab_echo_start/stop) while the guest talks on its port;
 * console_lab_close() at the end (idempotent).  The echo thread touches
 * only the socket: the VmmSim stays on the caller's thread.
 */
#ifndef VMM_SIM_CONSOLE_LAB_H
#define VMM_SIM_CONSOLE_LAB_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "virtio-console.h"

typedef struct ConsoleLab {
    char *path;                 /* the chardev's socket */
    int fd;                     /* our (client) end, -1 when closed */
    GThread *echo;
    gint stop;
    size_t echoed;              /* read only after the thread is joined */
} ConsoleLab;

#define CONSOLE_LAB_INIT { .fd = -1 }

/* QEMU's -chardev value: socket "<dir>/<id>.sock", QEMU the server. */
char *console_lab_chardev(ConsoleLab *l, const char *dir, const char *id);
/* Connect to QEMU's socket (retrying for up to 5 s). */
bool console_lab_connect(ConsoleLab *l, GError **errp);
bool console_lab_write(ConsoleLab *l, const void *buf, size_t len);
/* Exactly @len bytes from the socket; how many arrived in time. */
size_t console_lab_read(ConsoleLab *l, void *buf, size_t len,
                        int timeout_ms);
/* Send back whatever arrives, until console_lab_echo_stop(). */
void console_lab_echo_start(ConsoleLab *l);
/* @unblock: shut the socket down first (a write blocked on QEMU). */
void console_lab_echo_stop(ConsoleLab *l, bool unblock);
/* The connection closed; console_lab_connect() may open another. */
void console_lab_disconnect(ConsoleLab *l);
void console_lab_close(ConsoleLab *l);

/* ---- the guest's side of an exchange ---- */

/* Exactly @len bytes of port @id; how many arrived in @timeout_ms. */
size_t console_lab_guest_read(VirtioConsole *c, unsigned id, void *buf,
                              size_t len, int timeout_ms, GError **errp);
/*
 * Through an echoing host: write @out in @chunk-byte pieces, reading back
 * what has come after each, as a terminal user would (never more than a
 * chunk or two outstanding).  Returns how many bytes came back into @in.
 */
size_t console_lab_echo_chunks(VirtioConsole *c, unsigned id,
                               const uint8_t *out, uint8_t *in, size_t len,
                               size_t chunk, int timeout_ms, GError **errp);

#endif
