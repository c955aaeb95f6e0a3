/*
 * vso_rpc: the queues of include/sel4/rpc.h, moved safely.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Both ends use this library: the device side (QEMU's sel4 accelerator)
 * and the driver side (the simulated VMM, tests, benchmarks).  The peer
 * lives in another domain and may be broken or hostile, so every value it
 * can write is read once into a local and checked before use:
 *
 *  - a queue whose markers are impossible (more than 32 entries pending,
 *    a tail more than 32 ahead of its head) is marked *broken*: every
 *    later call on it returns -EPIPE and nothing in it is touched again;
 *  - a bad entry (message id >= 32, an id the receiver does not own) is
 *    dropped and counted, and the queue goes on;
 *  - waiting for another actor of the same side to commit is bounded:
 *    past the bound the call returns -EAGAIN and counts a stall.
 *
 * Batches: vso_queue_enqueue()/vso_queue_dequeue() move up to n entries
 * with one CAS on the tail and one commit on the head.  A peer using the
 * deployed one-entry-at-a-time algorithm sees the same states, because a
 * batch of n advances tail.pos by n but tail.count by one, and the commit
 * publishes head.pos = tail.pos when the counts meet.
 *
 * Ordering: every commit is a release (the entries and bodies written or
 * read before it are done), every claim an acquire of the other side's
 * head; a peer must do the same (lib/vso_rpc.c, "Memory ordering").
 */
#ifndef SEL4_VSO_RPC_H
#define SEL4_VSO_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sel4/rpc.h"

typedef struct VsoQueueStats {
    uint64_t messages;      /* entries moved */
    uint64_t batches;       /* acquire+commit rounds that moved entries */
    uint64_t empty;         /* dequeues that found nothing */
    uint64_t full;          /* enqueues that found no room */
    uint64_t stalls;        /* bounded waits that gave up (-EAGAIN) */
    uint64_t errors;        /* impossible markers, rewritten counts */
    uint64_t bad_ids;       /* entries naming an id >= 32, dropped */
    uint32_t high_water;    /* most entries seen pending at once */
} VsoQueueStats;

typedef struct VsoQueue VsoQueue;

/*
 * Fault injection (tests): the points of a transfer where a death leaves
 * the queue half done.  CLAIMED: our tail moved over @n entries (written
 * or read), our head not yet; COMMITTED: the head published them.
 */
typedef enum VsoFaultPoint {
    VSO_FAULT_CLAIMED,
    VSO_FAULT_COMMITTED,
} VsoFaultPoint;
typedef void VsoFaultFn(VsoQueue *vq, VsoFaultPoint point, unsigned n,
                        void *opaque);

struct VsoQueue {
    rpcmsg_queue_t *q;      /* in shared memory */
    rpcmsg_buffer_t *buf;   /* message bodies of this queue */
    const char *name;
    /* who owns the prod and the cons markers, as messages name them */
    const char *owner_prod;
    const char *owner_cons;
    /*
     * This handle is the only actor on its side of the queue (the device
     * side always is): a commit then publishes everything claimed even if
     * the peer rewrote our counts, and recovery at attach is safe.
     */
    bool exclusive;
    bool broken;
    char broken_reason[192];
    char stall_reason[192];   /* what the last -EAGAIN waited for */
    /* the position after this handle's last transfer (or resync) */
    uint32_t end_pos;
    VsoFaultFn *fault;        /* NULL but in fault-injection tests */
    void *fault_opaque;
    VsoQueueStats stats;
};

void vso_queue_init(VsoQueue *vq, rpcmsg_queue_t *q, rpcmsg_buffer_t *buf,
                    const char *name);
/* Zero the shared queue (the VMM does this when it boots the guest). */
void vso_queue_reset(VsoQueue *vq);

/*
 * Enqueue up to @n message ids (producer side).  Returns how many were
 * enqueued (0: full), -EAGAIN (bounded wait gave up) or -EPIPE (broken).
 */
int vso_queue_enqueue(VsoQueue *vq, const uint16_t *ids, unsigned n);
/*
 * Dequeue up to @max message ids (consumer side).  Ids >= 32 are dropped
 * and counted.  Returns how many valid ids were stored (0: empty), or
 * -EAGAIN / -EPIPE as above.
 */
int vso_queue_dequeue(VsoQueue *vq, uint16_t *ids, unsigned max);

/* Event queues carry bodies: copied into buf[pos & 31], ring[pos & 31]. */
int vso_queue_send_events(VsoQueue *vq, const rpcmsg_t *msgs, unsigned n);
int vso_queue_recv_events(VsoQueue *vq, rpcmsg_t *msgs, unsigned max);

/* Entries pending for the consumer, or -EPIPE. */
int vso_queue_pending(VsoQueue *vq);

/*
 * Roll back claims left half-done by a predecessor that died between
 * acquire and commit, on the side this process is the only actor of
 * (@producer: the prod bound, else the cons bound).  Returns the number of
 * entries rolled back.  The deployed VMM never resets the queues when the
 * device side restarts, so a new device side calls this at attach.
 */
int vso_queue_recover(VsoQueue *vq, bool producer);

/*
 * Start over after the peer broke the queue (or stalled it by rewriting
 * our markers), on the side this process is the only actor of: our tail
 * and head both move to the other side's committed head, and the broken
 * flag is cleared.  *@abandoned is signed: > 0, that many entries are
 * abandoned (a consumer skips requests the peer queued; a producer's
 * entries the peer had not taken are lost); <= 0, nothing is (our marker
 * moved over -n positions that held nothing of ours).  Returns 0, or
 * -EINVAL on a queue that is not exclusive.
 */
int vso_queue_resync(VsoQueue *vq, bool producer, int32_t *abandoned);

/*
 * Entries the producer (@producer) or consumer side has claimed and not
 * committed: its tail minus its head, signed, as the markers read now
 * (also stored in *@tail and *@head).  A peer that claimed and died, or
 * that never commits, shows here.
 */
int32_t vso_queue_uncommitted(VsoQueue *vq, bool producer,
                              rpcmsg_marker_t *tail, rpcmsg_marker_t *head);

/* ---- message decode and validation (device side) ---- */

typedef enum VsoRpcError {
    VSO_RPC_OK = 0,
    VSO_RPC_EBADOP,         /* unknown opcode */
    VSO_RPC_EBADLEN,        /* MMIO length not 1, 2, 4 or 8 */
    VSO_RPC_EBADAS,         /* address space neither 0xff nor < 32 */
    VSO_RPC_ERESERVED,      /* mr0 bits 63..25 set */
    VSO_RPC_ERR_COUNT
} VsoRpcError;

typedef struct VsoMmio {
    unsigned op;
    unsigned slot;
    bool write;
    unsigned as;            /* AS_GLOBAL or a PCI device index */
    unsigned len;           /* 1, 2, 4 or 8 */
    uint64_t addr;
    uint64_t data;          /* write data */
} VsoMmio;

/* Decode a request read from shared memory.  Pure: no side effects. */
VsoRpcError vso_rpc_decode(const rpcmsg_t *msg, VsoMmio *out);
const char *vso_rpc_strerror(VsoRpcError err);

/* ---- request/reply over one iobuf ---- */

typedef enum VsoRpcSide {
    VSO_RPC_DRIVER,         /* the VMM: sends requests, receives events */
    VSO_RPC_DEVICE,         /* QEMU: serves requests, sends events */
} VsoRpcSide;

typedef struct VsoRpcStats {
    uint64_t bad_id;        /* ids the receiver does not own */
    /*
     * An id received again while outstanding: taken and not yet answered,
     * or answered and its reply not yet claimed by the driver.
     */
    uint64_t dup_id;
    uint64_t decode[VSO_RPC_ERR_COUNT];
} VsoRpcStats;

typedef struct VsoRpc {
    rpcmsg_iobuf_t *iobuf;
    VsoRpcSide side;
    VsoQueue req;           /* drvrpc_req (or req_dev): driver -> device */
    VsoQueue resp;          /* drvrpc_resp: device -> driver */
    VsoQueue evt;           /* devevt: device -> driver */
    /*
     * Message ids this side holds: on the driver, ids lent to requests not
     * yet answered; on the device, ids received and not yet replied to.
     */
    uint32_t owned;
    /*
     * Device side: the id of the reply at each drvrpc_resp position (pos
     * & 31; 0xffff: none), up to resp.end_pos, our own copy of what the
     * peer can rewrite.  The replies between the driver's cons.tail and
     * resp.end_pos are not claimed yet: their ids are still outstanding.
     */
    uint16_t answered[RPCMSG_BUFFER_SIZE];
    VsoRpcStats stats;
} VsoRpc;

typedef struct VsoRequest {
    uint16_t id;
    rpcmsg_t msg;           /* local copy: safe from the peer's writes */
} VsoRequest;

typedef struct VsoReply {
    uint16_t id;
    uint64_t data;          /* becomes mr2 of the message */
} VsoReply;

/*
 * Attach to an iobuf of @size bytes.  @req_queue is RPC_QUEUE_DRVRPC_REQ
 * (UIO, simulation) or RPC_QUEUE_DRVRPC_REQ_DEV (behind /dev/sel4).
 * Returns 0 or -EINVAL when the region is too small or misaligned.
 */
int vso_rpc_init(VsoRpc *rpc, void *iobuf, size_t size, VsoRpcSide side,
                 unsigned req_queue);

/*
 * Device side: receive up to @max requests, each copied out.  A copy of
 * an id still outstanding (see VsoRpcStats.dup_id) is dropped and
 * counted, whichever batch it comes in.
 */
int vso_rpc_recv(VsoRpc *rpc, VsoRequest *reqs, unsigned max);
/*
 * Device side: answer requests in their own message slot (mr2 = data) and
 * publish them with one commit.  Returns how many were published (the
 * rest: retry later), or -EPIPE.  Ids not in flight are dropped, counted.
 */
int vso_rpc_reply(VsoRpc *rpc, const VsoReply *replies, unsigned n);
/* Device side: fire-and-forget events.  Returns how many were sent. */
int vso_rpc_send_events(VsoRpc *rpc, const rpcmsg_t *msgs, unsigned n);

/*
 * Driver side: lend a message id to each request, write its body and
 * enqueue them with one commit.  Returns how many were sent (0: no free
 * id or no room) and stores their ids in @ids.
 */
int vso_rpc_call(VsoRpc *rpc, const rpcmsg_t *msgs, unsigned n, uint16_t *ids);
/* Driver side: collect replies; each id is reclaimed.  Returns count. */
int vso_rpc_collect(VsoRpc *rpc, VsoRequest *replies, unsigned max);
/*
 * Driver side: take back the id of a request the device side took and
 * will never answer (it died; the deployed VMM never resets the queues).
 * False when @id is not lent.
 */
bool vso_rpc_reclaim(VsoRpc *rpc, uint16_t id);
/* Driver side: receive events. */
int vso_rpc_recv_events(VsoRpc *rpc, rpcmsg_t *msgs, unsigned max);

/* Number of message ids this side holds (see VsoRpc.owned). */
unsigned vso_rpc_owned(const VsoRpc *rpc);

#endif /* SEL4_VSO_RPC_H */
