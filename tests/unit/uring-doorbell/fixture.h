/*
 * The shared fixture of the io/uring_doorbell.c tests, one file per
 * behaviour (wake, batch, rearm, membership, uio, busy-poll, gsource,
 * fallback, teardown, ping-pong), each its own meson test.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Most tests run in three modes: io_uring with multishot poll ("uring"),
 * io_uring with one-shot polls re-armed after every wake-up ("oneshot"),
 * and the poll(2) fallback ("poll"): add_mode_tests() registers one test
 * path per mode, /uring-doorbell/MODE/NAME.
 */
#ifndef TESTS_URING_DOORBELL_FIXTURE_H
#define TESTS_URING_DOORBELL_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "io/uring_doorbell.h"
#include "../fd-count.h"

#define UD_TEST_MODES 3

typedef struct Mode {
    const char *name;
    unsigned flags;
} Mode;

/* What a doorbell handler saw. */
typedef struct Hits {
    UringDoorbell *ud;
    unsigned calls;
    uint64_t total;
    uint64_t last;
    unsigned rings;         /* uring_doorbell_ring() calls per handler call */
    int remove_index;       /* remove this doorbell from the handler, or -1 */
    int wait_ret;           /* uring_doorbell_wait() from the handler */
    bool try_wait;
    GMainLoop *quit_loop;   /* quit when @total reaches @quit_at */
    uint64_t quit_at;
    int write_fd;           /* write 1 here from the handler, or -1 */
    int add_fd;             /* add this eventfd from the handler, or -1 */
    struct Hits *add_hits;  /* ... with this handler state */
    int added_index;        /* ... and the index it got */
    bool add_remove;        /* ... then remove it again at once */
} Hits;

/* A thread that writes 1 to an eventfd after a delay. */
typedef struct Writer {
    int fd;
    unsigned times;
    unsigned delay_ms;
} Writer;

/*
 * A watchdog that writes 1 to @fd unless cancelled within 3 s: turns a
 * read that would block forever into a wrong count.
 */
typedef struct Watchdog {
    GMutex lock;
    GCond cond;
    bool done;
    bool fired;
    int fd;
    GThread *thread;
} Watchdog;

extern const Mode modes[UD_TEST_MODES];

void hits_init(Hits *h, UringDoorbell *ud);
/* The doorbell handler: counts, then does what @opaque (a Hits) asks. */
void hits_cb(void *opaque, uint64_t count);

/* Eventfds: a new one, signal @v, readable within @timeout_ms. */
int efd_new(bool nonblock);
void efd_signal(int fd, uint64_t v);
bool readable(int fd, int timeout_ms);
/* The eventfd's counter, reset to 0; 0 when it was not readable. */
uint64_t efd_take(int fd);

/* An engine of @flags, or NULL (test skipped) without io_uring. */
UringDoorbell *engine_new(unsigned flags);
/* Add eventfd @fd with hits_cb on @h; its index. */
int add_efd(UringDoorbell *ud, int fd, Hits *h);
UringDoorbellStats stats_of(UringDoorbell *ud);

gpointer writer_thread(gpointer opaque);
void watchdog_start(Watchdog *w, int fd);
/* Stop the watchdog; true when it had fired. */
bool watchdog_stop(Watchdog *w);

/* Register @fn once per mode as /uring-doorbell/MODE/@name. */
void add_mode_tests(const char *name, GTestDataFunc fn);

#endif /* TESTS_URING_DOORBELL_FIXTURE_H */
