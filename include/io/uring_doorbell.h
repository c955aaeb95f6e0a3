/*
 * io_uring doorbell engine: keeps a wait armed on doorbell fds and rings
 * the peer once per batch.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A doorbell is an fd that becomes readable when the peer has put work in
 * shared memory: an eventfd (simulated VMM) or a UIO device (seL4 device
 * VM: a 4-byte read returns the interrupt count, a 4-byte write of 1
 * re-enables the interrupt).  The engine arms one multishot POLL_ADD per
 * doorbell (measured: a READ SQE on an eventfd costs ~2.5x a blocking
 * read, a poll SQE followed by read() ~1.1x), drains the fd when the poll
 * fires, and calls the doorbell's handler.  Handlers run in a *pass*; a
 * uring_doorbell_ring() made inside a pass is deferred to its end, so one
 * pass rings the peer at most once however many messages it completed.
 *
 * Where io_uring is unavailable (or UD_FLAG_POLL forces it), the same API
 * runs on poll(2) and says so once on stderr.
 *
 * Threading: an engine is used from one thread at a time.  Handlers may
 * call uring_doorbell_ring(), _add() and _remove(), but not _wait() or
 * _free().
 */
#ifndef IO_URING_DOORBELL_H
#define IO_URING_DOORBELL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct UringDoorbell UringDoorbell;

typedef enum UringDoorbellKind {
    UD_KIND_EVENTFD,    /* 8-byte counter, drained by read() */
    UD_KIND_UIO,        /* 4-byte irq count; write of 1 re-enables the irq */
} UringDoorbellKind;

typedef enum UringDoorbellRingMode {
    UD_RING_WRITE,      /* write(2) of 1 on the peer eventfd at pass end */
    UD_RING_SQE,        /* IORING_OP_WRITE submitted with the next wait */
} UringDoorbellRingMode;

/* Creation flags */
#define UD_FLAG_POLL        (1u << 0)   /* use the poll(2) fallback */
#define UD_FLAG_NO_MULTISHOT (1u << 1)  /* one-shot POLL_ADD, re-armed */

#define UD_MAX_DOORBELLS    32

/*
 * Called in a pass for each doorbell that fired; @count is what the drain
 * read returned (eventfd counter or UIO irq count; 0 for a spurious wake).
 */
typedef void UringDoorbellFn(void *opaque, uint64_t count);

/* Rings the peer in a caller-defined way (e.g. a store to the event BAR). */
typedef void UringDoorbellRingFn(void *opaque);

/* Optional busy-poll check: true when there is work without a doorbell. */
typedef bool UringDoorbellPollFn(void *opaque);

typedef struct UringDoorbellStats {
    uint64_t passes;        /* passes that ran at least one handler */
    uint64_t wakeups;       /* doorbell handler calls */
    uint64_t spurious;      /* handler calls whose drain read found nothing */
    uint64_t rings;         /* doorbells sent to the peer */
    uint64_t ring_requests; /* uring_doorbell_ring() calls (>= rings) */
    uint64_t rearms;        /* poll SQEs (re)armed */
    uint64_t polled_hits;   /* busy-poll found work before sleeping */
    uint64_t errors;        /* failed drains, rings and polls (logged once) */
} UringDoorbellStats;

UringDoorbell *uring_doorbell_new(unsigned entries, unsigned flags,
                                  GError **errp);
/* Cancels every armed poll, reaps its completion, closes the ring. */
void uring_doorbell_free(UringDoorbell *ud);

/* true when running on io_uring, false for the poll(2) fallback */
bool uring_doorbell_is_uring(const UringDoorbell *ud);

/*
 * Returns the doorbell index (0..UD_MAX_DOORBELLS-1) or -errno.  @fd stays
 * the caller's: never closed, its flags never changed.  A wake-up can be
 * stale, so the drain must find nothing rather than block: an O_NONBLOCK
 * fd is drained with one read(2), a blocking one is first confirmed
 * readable with poll(2) (one more syscall per wake-up).  Either way the
 * engine must be the fd's only reader.
 */
int uring_doorbell_add(UringDoorbell *ud, int fd, UringDoorbellKind kind,
                       UringDoorbellFn *fn, void *opaque);
/* Stops watching a doorbell; its handler is not called again. */
void uring_doorbell_remove(UringDoorbell *ud, int index);

/*
 * How to ring the peer: an eventfd, or a function.  With UD_RING_SQE the
 * write goes out with the next uring_doorbell_wait() (sharing its
 * io_uring_enter), or at once when rung outside a pass; the poll(2)
 * fallback uses write(2) for both modes.
 */
void uring_doorbell_set_peer_fd(UringDoorbell *ud, int fd,
                                UringDoorbellRingMode mode);
void uring_doorbell_set_peer_fn(UringDoorbell *ud, UringDoorbellRingFn *fn,
                                void *opaque);

/*
 * Before sleeping, call @fn for up to @poll_us microseconds; when it
 * returns true, run every handler as if its doorbell had fired.
 */
void uring_doorbell_set_poll(UringDoorbell *ud, unsigned poll_us,
                             UringDoorbellPollFn *fn, void *opaque);

/* Ask for the peer to be rung: at the end of the current pass, or now. */
void uring_doorbell_ring(UringDoorbell *ud);

/*
 * Waits up to @timeout_ms (-1: forever, 0: don't block) for doorbells,
 * then runs one pass over everything that completed.  Returns the number
 * of handler calls, 0 on timeout or when a signal interrupted the wait
 * (EINTR), or -errno (-EBUSY when called from a handler).
 * With @timeout_ms == 0, whatever the pass queued (re-arms, an SQE ring)
 * is submitted before returning, so a caller may then sleep on
 * uring_doorbell_get_fd().
 */
int uring_doorbell_wait(UringDoorbell *ud, int timeout_ms);

/*
 * For an external event loop: an fd that is readable when
 * uring_doorbell_wait(ud, 0) has work (the ring fd), or -1 with the poll
 * fallback (then watch the doorbell fds themselves).
 */
int uring_doorbell_get_fd(const UringDoorbell *ud);

/*
 * A GSource that runs uring_doorbell_wait(ud, 0) in a GMainContext, then
 * the callback set with g_source_set_callback(), if any.  The source does
 * not own @ud: destroy it before uring_doorbell_free().
 */
GSource *uring_doorbell_source_new(UringDoorbell *ud);

void uring_doorbell_get_stats(const UringDoorbell *ud,
                              UringDoorbellStats *stats);

#endif /* IO_URING_DOORBELL_H */
