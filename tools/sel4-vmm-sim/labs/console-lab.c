/*
 * The host side of a virtserialport (see console-lab.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "console-lab.h"
#include "sel4/vmm_sim.h"

#define CONSOLE_LAB_CONNECT_TRIES   50
#define CONSOLE_LAB_CONNECT_WAIT_US (100 * 1000)

char *console_lab_chardev(ConsoleLab *l, const char *dir, const char *id)
{
    g_autofree char *name = g_strdup_printf("%s.sock", id);

    g_free(l->path);
    l->path = g_build_filename(dir, name, NULL);
    return g_strdup_printf("socket,id=%s,path=%s,server=on,wait=off", id,
                           l->path);
}

bool console_lab_connect(ConsoleLab *l, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int err = 0;

    if (strlen(l->path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "socket path %s is too long", l->path);
        return false;
    }
    strcpy(sa.sun_path, l->path);
    /* QEMU listens before START_VM; retry a little anyway */
    for (int i = 0; i < CONSOLE_LAB_CONNECT_TRIES; i++) {
        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l->fd >= 0 &&
            connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return true;
        }
        err = errno;
        if (l->fd >= 0) {
            close(l->fd);
            l->fd = -1;
        }
        g_usleep(CONSOLE_LAB_CONNECT_WAIT_US);
    }
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                "connect to %s: %s", l->path, g_strerror(err));
    return false;
}

static bool write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

bool console_lab_write(ConsoleLab *l, const void *buf, size_t len)
{
    return write_all(l->fd, buf, len);
}

size_t console_lab_read(ConsoleLab *l, void *buf, size_t len, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
        int left = (end - g_get_monotonic_time()) / 1000;
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            break;
        }
        n = read(l->fd, (uint8_t *)buf + got, len - got);
        if (n <= 0) {
            break;
        }
        got += n;
    }
    return got;
}

static gpointer echo_thread(gpointer opaque)
{
    ConsoleLab *l = opaque;
    uint8_t buf[4096];

    while (!g_atomic_int_get(&l->stop)) {
        struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        n = read(l->fd, buf, sizeof(buf));
        if (n <= 0 || !write_all(l->fd, buf, n)) {
            break;
        }
        l->echoed += n;
    }
    return NULL;
}

void console_lab_echo_start(ConsoleLab *l)
{
    g_atomic_int_set(&l->stop, 0);
    l->echoed = 0;
    l->echo = g_thread_new("console-echo", echo_thread, l);
}

void console_lab_echo_stop(ConsoleLab *l, bool unblock)
{
    if (!l->echo) {
        return;
    }
    g_atomic_int_set(&l->stop, 1);
    if (unblock) {
        shutdown(l->fd, SHUT_RDWR);
    }
    g_thread_join(l->echo);
    l->echo = NULL;
}

void console_lab_disconnect(ConsoleLab *l)
{
    console_lab_echo_stop(l, true);
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}

void console_lab_close(ConsoleLab *l)
{
    console_lab_disconnect(l);
    g_free(l->path);
    l->path = NULL;
}

/* ---- the guest's side ---- */

size_t console_lab_guest_read(VirtioConsole *c, unsigned id, void *buf,
                              size_t len, int timeout_ms, GError **errp)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    size_t got = 0;

    while (got < len) {
        int left = (end - g_get_monotonic_time()) / 1000;
        ssize_t n;

        if (left <= 0) {
            break;
        }
        n = virtio_console_read(c, id, (uint8_t *)buf + got, len - got, left,
                                errp);
        if (n < 0) {
            break;
        }
        got += n;
    }
    return got;
}

size_t console_lab_echo_chunks(VirtioConsole *c, unsigned id,
                               const uint8_t *out, uint8_t *in, size_t len,
                               size_t chunk, int timeout_ms, GError **errp)
{
    size_t sent = 0, got = 0;

    while (got < len) {
        size_t n = MIN(chunk, len - sent);
        ssize_t r;

        if (n && !virtio_console_write(c, id, out + sent, n, timeout_ms,
                                       errp)) {
            break;
        }
        sent += n;
        r = virtio_console_read(c, id, in + got, len - got,
                                sent == len ? timeout_ms : 10, errp);
        if (r < 0 || (r == 0 && sent == len)) {
            break;
        }
        got += r;
    }
    return got;
}
