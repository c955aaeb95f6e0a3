/*
 * A reference peer for the tests: the deployed one-entry-at-a-time queue
 * algorithm, written independently of lib/vso_rpc.c straight from the
 * steps in docs/protocol.md, so that batched operations are checked
 * against a second implementation rather than against themselves.
 *
 * It trusts the queue (it plays a correct peer) and spins without bound,
 * as the deployed code does.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_RPC_REF_PEER_H
#define TESTS_RPC_REF_PEER_H

#include <sched.h>
#include <stdbool.h>
#include "sel4/rpc.h"

static inline uint64_t ref_load(rpcmsg_marker_t *m)
{
    return __atomic_load_n(&m->raw, __ATOMIC_ACQUIRE);
}

static inline bool ref_acquire(rpcmsg_queue_t *q, bool producer,
                               uint32_t *pos)
{
    rpcmsg_queue_bound_t *b = producer ? &q->prod : &q->cons;
    rpcmsg_marker_t t, h, o, n;

    t.raw = ref_load(&b->tail);
    for (;;) {
        h.raw = ref_load(&b->head);
        if (t.pos - h.pos > RPCMSG_HTD_MAX) {
            sched_yield();
            t.raw = ref_load(&b->tail);
            continue;
        }
        if (producer) {
            o.raw = ref_load(&q->cons.head);
            if (RPCMSG_BUFFER_SIZE + o.pos - t.pos == 0) {
                return false;
            }
        } else {
            o.raw = ref_load(&q->prod.head);
            if (o.pos - t.pos == 0) {
                return false;
            }
        }
        n.pos = t.pos + 1;
        n.count = t.count + 1;
        if (__atomic_compare_exchange_n(&b->tail.raw, &t.raw, n.raw, false,
                                        __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
            *pos = t.pos;
            return true;
        }
    }
}

static inline void ref_commit(rpcmsg_queue_t *q, bool producer)
{
    rpcmsg_queue_bound_t *b = producer ? &q->prod : &q->cons;
    rpcmsg_marker_t h, t, n;

    __atomic_thread_fence(__ATOMIC_RELEASE);
    h.raw = ref_load(&b->head);
    do {
        t.raw = ref_load(&b->tail);
        n = h;
        if (++n.count == t.count) {
            n.pos = t.pos;
        }
    } while (!__atomic_compare_exchange_n(&b->head.raw, &h.raw, n.raw, false,
                                          __ATOMIC_RELEASE, __ATOMIC_ACQUIRE));
}

/* Event queue: body into buf[pos & 31], ring[pos & 31] = pos & 31. */
static inline bool ref_send_event(rpcmsg_queue_t *q, rpcmsg_buffer_t *buf,
                                  const rpcmsg_t *msg)
{
    uint32_t pos;

    if (!ref_acquire(q, true, &pos)) {
        return false;
    }
    buf->messages[pos & RPCMSG_BUFFER_MASK] = *msg;
    q->ring[pos & RPCMSG_BUFFER_MASK] = pos & RPCMSG_BUFFER_MASK;
    ref_commit(q, true);
    return true;
}

static inline bool ref_recv_event(rpcmsg_queue_t *q, rpcmsg_buffer_t *buf,
                                  rpcmsg_t *msg)
{
    uint32_t pos;

    if (!ref_acquire(q, false, &pos)) {
        return false;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    *msg = buf->messages[q->ring[pos & RPCMSG_BUFFER_MASK]];
    ref_commit(q, false);
    return true;
}

/* RPC queues carry message ids. */
static inline bool ref_enqueue_id(rpcmsg_queue_t *q, uint16_t id)
{
    uint32_t pos;

    if (!ref_acquire(q, true, &pos)) {
        return false;
    }
    q->ring[pos & RPCMSG_BUFFER_MASK] = id;
    ref_commit(q, true);
    return true;
}

static inline bool ref_dequeue_id(rpcmsg_queue_t *q, uint16_t *id)
{
    uint32_t pos;

    if (!ref_acquire(q, false, &pos)) {
        return false;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    *id = q->ring[pos & RPCMSG_BUFFER_MASK];
    ref_commit(q, false);
    return true;
}

#endif /* TESTS_RPC_REF_PEER_H */
