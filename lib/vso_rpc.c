/*
 * vso_rpc: wire-compatible MPMC queues over the shared iobuf, with
 * batching and validation of everything the peer can write.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The algorithm (protocol.md, "The queue algorithm"):
 *
 *   claim:  load my side's tail; wait while tail.pos - head.pos > 8 (an
 *           actor of my side is mid-commit); compute room from the other
 *           side's committed head; CAS tail {pos, count} ->
 *           {pos + n, count + 1}.
 *   access: write (or read) ring[pos & 31] for each claimed position.
 *   commit: CAS loop on my side's head: count + 1, and when that equals
 *           tail.count, also head.pos = tail.pos, so that concurrent
 *           claimers publish in order.
 *
 * Memory ordering.  The peer runs on another CPU (another VM, or another
 * thread) and arm64 is weakly ordered: a CPU may make its stores visible
 * in another order than it issued them, and may let a load be satisfied
 * after a later store.  On x86 (TSO) every pair below compiles to plain
 * moves and a locked cmpxchg, so only the arm64 build shows that the
 * orderings are in the code: there the acquire loads are ldar, the
 * acquire fence is dmb ishld, the release fence dmb ish, and the ACQ_REL
 * CAS GCC's __aarch64_cas8_acq_rel (casal, or an ldaxr/stlxr loop).
 * The protocol is correct because of these acquire/release pairs:
 *
 *  1. Entries and bodies are published (producer -> consumer).  The
 *     producer writes ring[pos & 31], and the event body at
 *     buf[pos & 31] (or, for requests and replies, the message body in the
 *     iobuf's buffers[0][id]), then commits.  The release fence at the top
 *     of queue_commit(), before the CAS of prod.head, orders those stores
 *     before the new head.pos.  It pairs with the consumer's acquire load
 *     of prod.head in queue_claim() (marker_load(other)): a consumer that
 *     sees the new head.pos reads entries and bodies after it (the acquire
 *     CAS of its tail and the acquire fence after the claim keep those
 *     reads after the claim).  Without the release, the head could become
 *     visible first: QEMU would read a stale ring entry (an id already
 *     answered: served twice) or a half-written body (a torn MMIO).
 *  2. Slots are freed (consumer -> producer).  The consumer reads the
 *     entry and copies the event body out, then commits cons.head after
 *     the same release fence.  It pairs with the producer's acquire load
 *     of cons.head in queue_claim(), from which it computes the room.
 *     Without the release, arm64 may satisfy the consumer's loads after
 *     its head store is visible: the producer would overwrite an event
 *     body that the consumer is still copying.
 *  3. Actors of one side.  The tail and head CASes are ACQ_REL: a claim
 *     acquires the previous claimer's tail, and the commit whose count
 *     meets tail.count publishes the positions of every actor of its side,
 *     so it must acquire their commits (the head CAS chain) before its own
 *     release makes their entries visible to the consumer (cumulativity).
 *  4. Message ids lent round trip (vso_rpc_*).  The driver writes a request
 *     body, then enqueues its id on the request queue (pair 1); the device
 *     copies the body out and writes mr2 of the same slot before enqueueing
 *     the id on the reply queue (pair 1 again), and the driver rewrites
 *     that body only after it collected the id (the reply queue's acquire).
 *     So a body is never read and written at once, with no ordering of
 *     its own.
 *
 * The doorbell (eventfd, UIO interrupt, seL4 notification) is only a
 * wake-up: the side woken reads the markers again, with acquire, so the
 * protocol does not depend on the doorbell's own barriers.  Markers are
 * 8-byte aligned (vso_rpc_init() refuses a misaligned region): arm64's
 * 64-bit atomics need it.
 *
 * The deployed stack lacks pair 1's and pair 2's release on the user-space
 * side: its queue header (rpc_queue.h, used by tiiuae/qemu-sel4-virtio)
 * CASes with __ATOMIC_ACQUIRE only outside the kernel, and its older
 * QEMU ring advances the head with a plain store after a "smp_wmb()?"
 * comment.  Ours is the __atomic_thread_fence(__ATOMIC_RELEASE) at the top
 * of queue_commit() (and the CASes' ACQ_REL).
 *
 * The peer writes the other side's markers, the ring entries it produces
 * and the message bodies.  Each is read once; a marker value that no
 * correct peer can produce marks the queue broken.  Every index into the
 * region is masked with RPCMSG_BUFFER_MASK or checked against
 * RPCMSG_BUFFER_SIZE before use, so nothing outside the iobuf is touched.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sel4/vso_rpc.h"

/*
 * Bounded waits for an actor of our own side that is mid-commit.  The
 * fuzz build (tests/fuzz/) shortens them: one input must not take
 * milliseconds of sched_yield()s.
 */
#ifndef VSO_SPIN_TRIES
#define VSO_SPIN_TRIES      256     /* cpu_relax() iterations */
#endif
#ifndef VSO_YIELD_TRIES
#define VSO_YIELD_TRIES     4096    /* then sched_yield()s, then -EAGAIN */
#endif
/* A CAS on our own marker that keeps failing means someone scribbles. */
#define VSO_CAS_TRIES       (1u << 20)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" : : : "memory");
#endif
}

static inline rpcmsg_marker_t marker_load(rpcmsg_marker_t *m)
{
    rpcmsg_marker_t v;

    v.raw = __atomic_load_n(&m->raw, __ATOMIC_ACQUIRE);
    return v;
}

static inline bool marker_cas(rpcmsg_marker_t *m, rpcmsg_marker_t *expected,
                              rpcmsg_marker_t desired)
{
    return __atomic_compare_exchange_n(&m->raw, &expected->raw, desired.raw,
                                       false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}

static inline uint16_t ring_load(rpcmsg_queue_t *q, uint32_t pos)
{
    return __atomic_load_n(&q->ring[pos & RPCMSG_BUFFER_MASK],
                           __ATOMIC_RELAXED);
}

static inline void ring_store(rpcmsg_queue_t *q, uint32_t pos, uint16_t id)
{
    __atomic_store_n(&q->ring[pos & RPCMSG_BUFFER_MASK], id, __ATOMIC_RELAXED);
}

/* Copy a body out of shared memory, each word read exactly once. */
static void msg_load(rpcmsg_t *dst, rpcmsg_t *src)
{
    dst->mr0 = __atomic_load_n(&src->mr0, __ATOMIC_RELAXED);
    dst->mr1 = __atomic_load_n(&src->mr1, __ATOMIC_RELAXED);
    dst->mr2 = __atomic_load_n(&src->mr2, __ATOMIC_RELAXED);
    dst->mr3 = __atomic_load_n(&src->mr3, __ATOMIC_RELAXED);
}

static void msg_store(rpcmsg_t *dst, const rpcmsg_t *src)
{
    __atomic_store_n(&dst->mr0, src->mr0, __ATOMIC_RELAXED);
    __atomic_store_n(&dst->mr1, src->mr1, __ATOMIC_RELAXED);
    __atomic_store_n(&dst->mr2, src->mr2, __ATOMIC_RELAXED);
    __atomic_store_n(&dst->mr3, src->mr3, __ATOMIC_RELAXED);
}

static void __attribute__((format(printf, 2, 3)))
queue_break(VsoQueue *vq, const char *fmt, ...)
{
    va_list ap;

    vq->stats.errors++;
    if (vq->broken) {
        return;
    }
    vq->broken = true;
    va_start(ap, fmt);
    vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, ap);
    va_end(ap);
}

/* One step of a bounded wait; false once the bound is exhausted. */
static bool backoff(unsigned *waited)
{
    if (*waited < VSO_SPIN_TRIES) {
        cpu_relax();
    } else if (*waited < VSO_SPIN_TRIES + VSO_YIELD_TRIES) {
        sched_yield();
    } else {
        return false;
    }
    (*waited)++;
    return true;
}

static const char *bound_name(bool producer)
{
    return producer ? "prod" : "cons";
}

static const char *bound_owner(const VsoQueue *vq, bool producer)
{
    const char *o = producer ? vq->owner_prod : vq->owner_cons;

    return o ? o : producer ? "producer side" : "consumer side";
}

/* |d| of a signed marker difference, INT32_MIN included */
static uint32_t magnitude(int32_t d)
{
    return d < 0 ? -(uint32_t)d : (uint32_t)d;
}

/*
 * Our tail and head, and the other side's head, are impossible together:
 * say which markers disagree, whose they are and by how much (signed).
 */
static void queue_break_markers(VsoQueue *vq, bool producer,
                                rpcmsg_marker_t tail, rpcmsg_marker_t head,
                                rpcmsg_marker_t other)
{
    const char *me = bound_name(producer);
    int32_t ahead = tail.pos - head.pos;
    /* how far the producer's marker is past the consumer's */
    int32_t gap = producer ? (int32_t)(tail.pos - other.pos)
                           : (int32_t)(other.pos - tail.pos);

    if ((uint32_t)ahead > RPCMSG_BUFFER_SIZE) {
        queue_break(vq, "%s: %s.tail %u is %u %s %s.head %u (both the %s's): "
                    "outside 0..%u", vq->name, me, tail.pos, magnitude(ahead),
                    ahead < 0 ? "behind" : "ahead of", me, head.pos,
                    bound_owner(vq, producer), RPCMSG_BUFFER_SIZE);
    } else if (gap < 0) {
        queue_break(vq, "%s: cons.%s %u (the %s's) is %u past prod.%s %u "
                    "(the %s's): entries taken that were never produced",
                    vq->name, producer ? "head" : "tail",
                    producer ? other.pos : tail.pos,
                    bound_owner(vq, false), magnitude(gap),
                    producer ? "tail" : "head",
                    producer ? tail.pos : other.pos, bound_owner(vq, true));
    } else {
        queue_break(vq, "%s: prod.%s %u (the %s's) is %d past cons.%s %u "
                    "(the %s's): more than the %u entries a queue holds",
                    vq->name, producer ? "tail" : "head",
                    producer ? tail.pos : other.pos, bound_owner(vq, true),
                    gap, producer ? "head" : "tail",
                    producer ? other.pos : tail.pos, bound_owner(vq, false),
                    RPCMSG_BUFFER_SIZE);
    }
}

/* A bounded wait for our own side's commit gave up: say on what. */
static void queue_stall(VsoQueue *vq, bool producer, rpcmsg_marker_t tail,
                        rpcmsg_marker_t head)
{
    const char *me = bound_name(producer);

    vq->stats.stalls++;
    snprintf(vq->stall_reason, sizeof(vq->stall_reason),
             "%s: %s.tail %u runs %u ahead of %s.head %u (the %s's) and no "
             "commit came%s", vq->name, me, tail.pos, tail.pos - head.pos,
             me, head.pos, bound_owner(vq, producer),
             vq->exclusive ? "; no claim of ours is open: rewritten by "
                             "another writer" : "");
}

static inline rpcmsg_queue_bound_t *own_bound(VsoQueue *vq, bool producer)
{
    return producer ? &vq->q->prod : &vq->q->cons;
}

/*
 * Claim up to @max entries on our side.  Returns the number claimed (the
 * first at *@first), 0 when full (producer) or empty (consumer), -EAGAIN
 * or -EPIPE.
 */
static int queue_claim(VsoQueue *vq, bool producer, unsigned max,
                       uint32_t *first)
{
    rpcmsg_queue_bound_t *self = own_bound(vq, producer);
    rpcmsg_marker_t *other = producer ? &vq->q->cons.head : &vq->q->prod.head;
    rpcmsg_marker_t ot, nt, head;
    unsigned waited = 0, tries = 0;
    uint32_t ahead, pending, room, n;

    if (vq->broken) {
        return -EPIPE;
    }
    for (;; tries++) {
        if (tries > VSO_CAS_TRIES) {
            vq->stats.stalls++;
            snprintf(vq->stall_reason, sizeof(vq->stall_reason),
                     "%s: %s.tail changed under %u CAS attempts (owned by "
                     "the %s)", vq->name, bound_name(producer), tries,
                     bound_owner(vq, producer));
            return -EAGAIN;
        }
        ot = marker_load(&self->tail);
        head = marker_load(&self->head);
        /* Producer: entries not yet freed; consumer: entries to take. */
        pending = producer ? ot.pos - marker_load(other).pos
                           : marker_load(other).pos - ot.pos;
        ahead = ot.pos - head.pos;

        if (ahead > RPCMSG_BUFFER_SIZE || pending > RPCMSG_BUFFER_SIZE) {
            /*
             * Impossible in a consistent snapshot.  If our tail moved
             * meanwhile, an actor of our side raced us: look again.
             */
            if (marker_load(&self->tail).raw != ot.raw) {
                continue;
            }
            queue_break_markers(vq, producer, ot, head, marker_load(other));
            return -EPIPE;
        }
        if (ahead > RPCMSG_HTD_MAX) {
            /* An actor of our side is mid-commit: wait for it, bounded. */
            if (!backoff(&waited)) {
                queue_stall(vq, producer, ot, head);
                return -EAGAIN;
            }
            continue;
        }
        if (pending > vq->stats.high_water) {
            vq->stats.high_water = pending;
        }
        room = producer ? RPCMSG_BUFFER_SIZE - pending : pending;
        n = room < max ? room : max;
        if (n == 0) {
            return 0;
        }
        nt.pos = ot.pos + n;
        nt.count = ot.count + 1;
        if (marker_cas(&self->tail, &ot, nt)) {
            break;
        }
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    *first = ot.pos;
    return n;
}

/* Publish our side's claim: count + 1, and pos once all claims are in. */
static int queue_commit(VsoQueue *vq, bool producer, unsigned n)
{
    rpcmsg_queue_bound_t *self = own_bound(vq, producer);
    rpcmsg_marker_t oh, nh, t;
    unsigned tries;

    __atomic_thread_fence(__ATOMIC_RELEASE);
    oh = marker_load(&self->head);
    for (tries = 0; tries < VSO_CAS_TRIES; tries++) {
        t = marker_load(&self->tail);
        nh = oh;
        if (++nh.count == t.count) {
            nh.pos = t.pos;
        } else if (vq->exclusive) {
            /*
             * We are the only actor of this side, so every claim is ours
             * and committed: the counts can only disagree if someone
             * rewrote them.  Publish anyway, or the queue would stall.
             */
            vq->stats.errors++;
            nh = t;
        }
        if (marker_cas(&self->head, &oh, nh)) {
            vq->stats.messages += n;
            vq->stats.batches++;
            return 0;
        }
    }
    queue_break(vq, "%s: %s.head (the %s's) changed under %u commit "
                "attempts: rewritten by another writer", vq->name,
                bound_name(producer), bound_owner(vq, producer), tries);
    return -EPIPE;
}

void vso_queue_init(VsoQueue *vq, rpcmsg_queue_t *q, rpcmsg_buffer_t *buf,
                    const char *name)
{
    memset(vq, 0, sizeof(*vq));
    vq->q = q;
    vq->buf = buf;
    vq->name = name;
}

void vso_queue_reset(VsoQueue *vq)
{
    memset(vq->q, 0, sizeof(*vq->q));
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->broken = false;
    vq->broken_reason[0] = '\0';
}

/*
 * The two halves every transfer shares.  @put writes entry @k at ring
 * position @pos; @take reads the entry whose message id is @id (already
 * checked < 32) into slot @k of its output.  They are static and called
 * with constant functions, so the compiler inlines them.
 */
typedef void QueuePutFn(VsoQueue *vq, uint32_t pos, unsigned k,
                        const void *in);
typedef void QueueTakeFn(VsoQueue *vq, uint16_t id, unsigned k, void *out);

static inline void queue_fault(VsoQueue *vq, VsoFaultPoint point,
                               unsigned n)
{
    if (vq->fault) {
        vq->fault(vq, point, n, vq->fault_opaque);
    }
}

static int queue_put(VsoQueue *vq, unsigned n, QueuePutFn *put,
                     const void *in)
{
    uint32_t first;
    int got, i, ret;

    got = queue_claim(vq, true, n, &first);
    if (got <= 0) {
        vq->stats.full += got == 0 && n > 0;
        return got;
    }
    for (i = 0; i < got; i++) {
        put(vq, first + i, i, in);
    }
    queue_fault(vq, VSO_FAULT_CLAIMED, got);
    ret = queue_commit(vq, true, got);
    if (ret < 0) {
        return ret;
    }
    vq->end_pos = first + got;
    queue_fault(vq, VSO_FAULT_COMMITTED, got);
    return got;
}

static int queue_take(VsoQueue *vq, unsigned max, QueueTakeFn *take,
                      void *out)
{
    uint32_t first;
    uint16_t id;
    int got, i, ret, valid = 0;

    /* A batch of nothing but bad ids must not read as "empty". */
    while (valid == 0) {
        got = queue_claim(vq, false, max, &first);
        if (got <= 0) {
            vq->stats.empty += got == 0 && max > 0;
            return got;
        }
        for (i = 0; i < got; i++) {
            id = ring_load(vq->q, first + i);
            if (id >= RPCMSG_BUFFER_SIZE) {
                vq->stats.bad_ids++;
                continue;
            }
            take(vq, id, valid++, out);
        }
        queue_fault(vq, VSO_FAULT_CLAIMED, got);
        ret = queue_commit(vq, false, got);
        if (ret < 0) {
            return ret;
        }
        vq->end_pos = first + got;
        queue_fault(vq, VSO_FAULT_COMMITTED, got);
    }
    return valid;
}

static void put_id(VsoQueue *vq, uint32_t pos, unsigned k, const void *in)
{
    ring_store(vq->q, pos, ((const uint16_t *)in)[k]);
}

static void take_id(VsoQueue *vq, uint16_t id, unsigned k, void *out)
{
    ((uint16_t *)out)[k] = id;
}

/* An event's body sits at its ring position, and the entry names it. */
static void put_event(VsoQueue *vq, uint32_t pos, unsigned k, const void *in)
{
    uint32_t slot = pos & RPCMSG_BUFFER_MASK;

    msg_store(&vq->buf->messages[slot], &((const rpcmsg_t *)in)[k]);
    ring_store(vq->q, slot, slot);
}

static void take_event(VsoQueue *vq, uint16_t id, unsigned k, void *out)
{
    msg_load(&((rpcmsg_t *)out)[k], &vq->buf->messages[id]);
}

int vso_queue_enqueue(VsoQueue *vq, const uint16_t *ids, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (ids[i] >= RPCMSG_BUFFER_SIZE) {
            return -EINVAL;
        }
    }
    return queue_put(vq, n, put_id, ids);
}

int vso_queue_dequeue(VsoQueue *vq, uint16_t *ids, unsigned max)
{
    return queue_take(vq, max, take_id, ids);
}

int vso_queue_send_events(VsoQueue *vq, const rpcmsg_t *msgs, unsigned n)
{
    return queue_put(vq, n, put_event, msgs);
}

int vso_queue_recv_events(VsoQueue *vq, rpcmsg_t *msgs, unsigned max)
{
    return queue_take(vq, max, take_event, msgs);
}

int vso_queue_pending(VsoQueue *vq)
{
    rpcmsg_marker_t ph, ct;
    uint32_t pending;

    if (vq->broken) {
        return -EPIPE;
    }
    ph = marker_load(&vq->q->prod.head);
    ct = marker_load(&vq->q->cons.tail);
    pending = ph.pos - ct.pos;
    if (pending > RPCMSG_BUFFER_SIZE) {
        /* as the consumer sees it: its tail against the producer's head */
        queue_break_markers(vq, false, ct, ct, ph);
        return -EPIPE;
    }
    return pending;
}

int vso_queue_recover(VsoQueue *vq, bool producer)
{
    rpcmsg_queue_bound_t *self = own_bound(vq, producer);
    rpcmsg_marker_t t = marker_load(&self->tail);
    rpcmsg_marker_t h = marker_load(&self->head);
    uint32_t lost = t.pos - h.pos;

    if (vq->broken) {
        return -EPIPE;
    }
    if (lost > RPCMSG_BUFFER_SIZE) {
        queue_break(vq, "%s: %s.tail %u is %u %s %s.head %u (the %s's): "
                    "outside 0..%u", vq->name, bound_name(producer), t.pos,
                    magnitude(lost), (int32_t)lost < 0 ? "behind"
                    : "ahead of", bound_name(producer), h.pos,
                    bound_owner(vq, producer), RPCMSG_BUFFER_SIZE);
        return -EPIPE;
    }
    if (t.raw != h.raw) {
        __atomic_store_n(&self->tail.raw, h.raw, __ATOMIC_RELEASE);
    }
    vq->end_pos = h.pos;
    return lost;
}

int vso_queue_resync(VsoQueue *vq, bool producer, int32_t *abandoned)
{
    rpcmsg_queue_bound_t *self = own_bound(vq, producer);
    rpcmsg_marker_t *other = producer ? &vq->q->cons.head : &vq->q->prod.head;
    rpcmsg_marker_t h = marker_load(&self->head);
    rpcmsg_marker_t to;

    if (!vq->exclusive) {
        return -EINVAL;
    }
    /*
     * The other side's committed head is the one position both sides can
     * agree on: start over there, with our counts equal (nothing claimed).
     */
    to.pos = marker_load(other).pos;
    to.count = h.count;
    __atomic_store_n(&self->tail.raw, to.raw, __ATOMIC_RELAXED);
    __atomic_store_n(&self->head.raw, to.raw, __ATOMIC_RELEASE);
    vq->end_pos = to.pos;
    vq->broken = false;
    vq->broken_reason[0] = '\0';
    /* produced and not consumed, or queued and not taken: lost now */
    *abandoned = producer ? (int32_t)(h.pos - to.pos)
                          : (int32_t)(to.pos - h.pos);
    return 0;
}

int32_t vso_queue_uncommitted(VsoQueue *vq, bool producer,
                              rpcmsg_marker_t *tail, rpcmsg_marker_t *head)
{
    rpcmsg_queue_bound_t *b = own_bound(vq, producer);

    *tail = marker_load(&b->tail);
    *head = marker_load(&b->head);
    return (int32_t)(tail->pos - head->pos);
}

/* ---- decode ---- */

VsoRpcError vso_rpc_decode(const rpcmsg_t *msg, VsoMmio *out)
{
    uint64_t mr0 = msg->mr0;

    memset(out, 0, sizeof(*out));
    out->op = RPC_MR0_GET(mr0, OP);
    out->slot = RPC_MR0_GET(mr0, SLOT);
    out->write = RPC_MR0_GET(mr0, DIR) == RPC_MR0_MMIO_DIRECTION_WRITE;
    out->as = RPC_MR0_GET(mr0, AS);
    out->len = RPC_MR0_GET(mr0, LEN);
    out->addr = msg->mr1;
    out->data = msg->mr2;

    if (mr0 >> RPC_MR0_USED_BITS) {
        return VSO_RPC_ERESERVED;
    }
    switch (out->op) {
    case QEMU_OP_MMIO:
        break;
    case QEMU_OP_PUTC_LOG:
        return VSO_RPC_OK;
    default:
        return VSO_RPC_EBADOP;
    }
    switch (out->len) {
    case 1:
    case 2:
    case 4:
        out->data &= (UINT64_C(1) << (out->len * 8)) - 1;
        break;
    case 8:
        break;
    default:
        return VSO_RPC_EBADLEN;
    }
    if (out->as != AS_GLOBAL && out->as >= RPC_MAX_PCIDEV) {
        return VSO_RPC_EBADAS;
    }
    return VSO_RPC_OK;
}

const char *vso_rpc_strerror(VsoRpcError err)
{
    static const char *const names[VSO_RPC_ERR_COUNT] = {
        [VSO_RPC_OK] = "ok",
        [VSO_RPC_EBADOP] = "unknown opcode",
        [VSO_RPC_EBADLEN] = "bad access length",
        [VSO_RPC_EBADAS] = "bad address space",
        [VSO_RPC_ERESERVED] = "reserved mr0 bits set",
    };

    return (unsigned)err < VSO_RPC_ERR_COUNT ? names[err] : "unknown error";
}

/* ---- request/reply ---- */

int vso_rpc_init(VsoRpc *rpc, void *iobuf, size_t size, VsoRpcSide side,
                 unsigned req_queue)
{
    rpcmsg_iobuf_t *io = iobuf;

    memset(rpc, 0, sizeof(*rpc));
    if (!io || ((uintptr_t)io & 7) || size < sizeof(rpcmsg_iobuf_t) ||
        (req_queue != RPC_QUEUE_DRVRPC_REQ &&
         req_queue != RPC_QUEUE_DRVRPC_REQ_DEV)) {
        return -EINVAL;
    }
    rpc->iobuf = io;
    rpc->side = side;
    vso_queue_init(&rpc->req, &io->queues[req_queue],
                   &io->buffers[RPC_IOBUF_DRVRPC], "drvrpc_req");
    vso_queue_init(&rpc->resp, &io->queues[RPC_QUEUE_DRVRPC_RESP],
                   &io->buffers[RPC_IOBUF_DRVRPC], "drvrpc_resp");
    vso_queue_init(&rpc->evt, &io->queues[RPC_QUEUE_DEVEVT],
                   &io->buffers[RPC_IOBUF_DEVEVT], "devevt");
    /* The device side is the only consumer and producer of its bounds. */
    rpc->req.exclusive = rpc->resp.exclusive = rpc->evt.exclusive =
        side == VSO_RPC_DEVICE;
    rpc->req.owner_prod = rpc->resp.owner_cons = rpc->evt.owner_cons = "VMM";
    rpc->req.owner_cons = rpc->resp.owner_prod = rpc->evt.owner_prod =
        "device side";
    memset(rpc->answered, 0xff, sizeof(rpc->answered));
    rpc->resp.end_pos = marker_load(&rpc->resp.q->prod.head).pos;
    return 0;
}

static inline rpcmsg_t *rpc_body(VsoRpc *rpc, uint16_t id)
{
    return &rpc->iobuf->buffers[RPC_IOBUF_DRVRPC].messages[id];
}

static inline bool rpc_owns(const VsoRpc *rpc, uint16_t id)
{
    return rpc->owned & (UINT32_C(1) << id);
}

/*
 * Device side: ids whose reply we published and the driver has not
 * claimed yet (its cons.tail is before it).  A driver lends an id again
 * only after it took the reply, so a request with one of these ids is a
 * copy of one we answered.  Markers out of range: none (the queue code
 * reports those).
 */
static uint32_t rpc_unclaimed_replies(VsoRpc *rpc)
{
    uint32_t tail = marker_load(&rpc->resp.q->cons.tail).pos;
    uint32_t n = rpc->resp.end_pos - tail, ids = 0;
    uint16_t id;

    if (n > RPCMSG_BUFFER_SIZE) {
        return 0;
    }
    while (n--) {
        id = rpc->answered[(tail + n) & RPCMSG_BUFFER_MASK];
        if (id < RPCMSG_BUFFER_SIZE) {
            ids |= UINT32_C(1) << id;
        }
    }
    return ids;
}

int vso_rpc_recv(VsoRpc *rpc, VsoRequest *reqs, unsigned max)
{
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    uint32_t outstanding;
    int got, i, n = 0;

    if (max > RPCMSG_BUFFER_SIZE) {
        max = RPCMSG_BUFFER_SIZE;
    }
    while (n == 0) {
        got = vso_queue_dequeue(&rpc->req, ids, max);
        if (got <= 0) {
            return got;
        }
        outstanding = rpc->owned | rpc_unclaimed_replies(rpc);
        for (i = 0; i < got; i++) {
            if (outstanding & (UINT32_C(1) << ids[i])) {
                /*
                 * A copy of a request we hold or answered, whose reply
                 * the VMM has not taken: serve it once.
                 */
                rpc->stats.dup_id++;
                continue;
            }
            outstanding |= UINT32_C(1) << ids[i];
            rpc->owned |= UINT32_C(1) << ids[i];
            reqs[n].id = ids[i];
            msg_load(&reqs[n].msg, rpc_body(rpc, ids[i]));
            n++;
        }
    }
    return n;
}

int vso_rpc_reply(VsoRpc *rpc, const VsoReply *replies, unsigned n)
{
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    unsigned pos[RPCMSG_BUFFER_SIZE];
    unsigned i, k = 0;
    int sent;

    if (n > RPCMSG_BUFFER_SIZE) {
        n = RPCMSG_BUFFER_SIZE;
    }
    for (i = 0; i < n; i++) {
        uint16_t id = replies[i].id;

        if (id >= RPCMSG_BUFFER_SIZE || !rpc_owns(rpc, id)) {
            rpc->stats.bad_id++;
            continue;
        }
        __atomic_store_n(&rpc_body(rpc, id)->mr2, replies[i].data,
                         __ATOMIC_RELAXED);
        pos[k] = i;
        ids[k++] = id;
    }
    if (k == 0) {
        return n;
    }
    sent = vso_queue_enqueue(&rpc->resp, ids, k);
    if (sent < 0) {
        return sent;
    }
    for (i = 0; i < (unsigned)sent; i++) {
        rpc->owned &= ~(UINT32_C(1) << ids[i]);
        rpc->answered[(rpc->resp.end_pos - sent + i) & RPCMSG_BUFFER_MASK] =
            ids[i];
    }
    /* Everything before the first unsent reply is consumed. */
    return (unsigned)sent == k ? (int)n : (int)pos[sent];
}

int vso_rpc_send_events(VsoRpc *rpc, const rpcmsg_t *msgs, unsigned n)
{
    return vso_queue_send_events(&rpc->evt, msgs, n);
}

int vso_rpc_call(VsoRpc *rpc, const rpcmsg_t *msgs, unsigned n, uint16_t *ids)
{
    uint32_t lent = 0;
    unsigned i, k;
    int sent;

    for (k = 0; k < n && ~(rpc->owned | lent); k++) {
        uint16_t id = __builtin_ctz(~(rpc->owned | lent));

        lent |= UINT32_C(1) << id;
        ids[k] = id;
        msg_store(rpc_body(rpc, id), &msgs[k]);
    }
    if (k == 0) {
        return 0;
    }
    sent = vso_queue_enqueue(&rpc->req, ids, k);
    if (sent < 0) {
        return sent;
    }
    for (i = 0; i < (unsigned)sent; i++) {
        rpc->owned |= UINT32_C(1) << ids[i];
    }
    return sent;
}

int vso_rpc_collect(VsoRpc *rpc, VsoRequest *replies, unsigned max)
{
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    int got, i, n = 0;

    if (max > RPCMSG_BUFFER_SIZE) {
        max = RPCMSG_BUFFER_SIZE;
    }
    while (n == 0) {
        got = vso_queue_dequeue(&rpc->resp, ids, max);
        if (got <= 0) {
            return got;
        }
        for (i = 0; i < got; i++) {
            if (!rpc_owns(rpc, ids[i])) {
                rpc->stats.bad_id++;
                continue;
            }
            rpc->owned &= ~(UINT32_C(1) << ids[i]);
            replies[n].id = ids[i];
            msg_load(&replies[n].msg, rpc_body(rpc, ids[i]));
            n++;
        }
    }
    return n;
}

bool vso_rpc_reclaim(VsoRpc *rpc, uint16_t id)
{
    if (rpc->side != VSO_RPC_DRIVER || id >= RPCMSG_BUFFER_SIZE ||
        !rpc_owns(rpc, id)) {
        return false;
    }
    rpc->owned &= ~(UINT32_C(1) << id);
    return true;
}

int vso_rpc_recv_events(VsoRpc *rpc, rpcmsg_t *msgs, unsigned max)
{
    return vso_queue_recv_events(&rpc->evt, msgs, max);
}

unsigned vso_rpc_owned(const VsoRpc *rpc)
{
    return __builtin_popcount(rpc->owned);
}
