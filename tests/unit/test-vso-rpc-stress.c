/*
 * Multi-threaded stress of the vso_rpc queues: STRESS_MESSAGES messages
 * (default 10 million) per test, each carrying a sequence number and a
 * checksum, across 1:1 and 2:2 producers/consumers, batched against the
 * reference one-at-a-time peer, request/reply with 32 in flight, and
 * requests, replies and events all at once (duplex).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sel4/vso_rpc.h"
#include "rpc-ref-peer.h"

static uint64_t total_messages = 10000000;

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static inline unsigned rnd_batch(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return 1 + (*s % RPCMSG_BUFFER_SIZE);
}

typedef struct Shared {
    rpcmsg_iobuf_t *io;
    uint64_t per_producer;
    unsigned producers, consumers;
    uint64_t consumed;          /* atomic, across consumers */
    uint64_t sum[2];            /* atomic, per producer: sum of sequences */
    uint64_t check[2];          /* atomic, per producer: xor of checksums */
} Shared;

typedef struct Actor {
    Shared *sh;
    unsigned id;
    bool reference;             /* use the one-at-a-time reference peer */
    pthread_t thread;
} Actor;

static rpcmsg_t make_msg(unsigned producer, uint64_t seq)
{
    return (rpcmsg_t){ producer, seq, mix(seq ^ producer), mix(~seq) };
}

static void *producer_main(void *opaque)
{
    Actor *a = opaque;
    rpcmsg_queue_t *q = &a->sh->io->queues[RPC_QUEUE_DEVEVT];
    rpcmsg_buffer_t *b = &a->sh->io->buffers[RPC_IOBUF_DEVEVT];
    rpcmsg_t batch[RPCMSG_BUFFER_SIZE];
    uint64_t seq = 0, rs = 0x9e3779b9u + a->id;
    VsoQueue vq;

    vso_queue_init(&vq, q, b, "stress");
    while (seq < a->sh->per_producer) {
        if (a->reference) {
            rpcmsg_t m = make_msg(a->id, seq);

            if (ref_send_event(q, b, &m)) {
                seq++;
            } else {
                sched_yield();
            }
            continue;
        }
        unsigned n = rnd_batch(&rs);
        int sent;

        if (n > a->sh->per_producer - seq) {
            n = a->sh->per_producer - seq;
        }
        for (unsigned i = 0; i < n; i++) {
            batch[i] = make_msg(a->id, seq + i);
        }
        sent = vso_queue_send_events(&vq, batch, n);
        g_assert_cmpint(sent, !=, -EPIPE);
        if (sent > 0) {
            seq += sent;
        } else {
            sched_yield();
        }
    }
    g_assert_false(vq.broken);
    return NULL;
}

static void *consumer_main(void *opaque)
{
    Actor *a = opaque;
    Shared *sh = a->sh;
    rpcmsg_queue_t *q = &sh->io->queues[RPC_QUEUE_DEVEVT];
    rpcmsg_buffer_t *b = &sh->io->buffers[RPC_IOBUF_DEVEVT];
    rpcmsg_t batch[RPCMSG_BUFFER_SIZE];
    uint64_t next[2] = { 0, 0 }, sum[2] = { 0, 0 }, check[2] = { 0, 0 };
    uint64_t total = sh->per_producer * sh->producers, rs = 7 + a->id;
    VsoQueue vq;

    vso_queue_init(&vq, q, b, "stress");
    while (__atomic_load_n(&sh->consumed, __ATOMIC_RELAXED) < total) {
        int n;

        if (a->reference) {
            n = ref_recv_event(q, b, batch) ? 1 : 0;
        } else {
            n = vso_queue_recv_events(&vq, batch, rnd_batch(&rs));
            g_assert_cmpint(n, !=, -EPIPE);
        }
        if (n <= 0) {
            sched_yield();
            continue;
        }
        for (int i = 0; i < n; i++) {
            unsigned p = batch[i].mr0;
            uint64_t seq = batch[i].mr1;

            g_assert_cmpuint(p, <, sh->producers);
            /* Each producer's messages arrive in order at each consumer. */
            g_assert_cmpuint(seq, >=, next[p]);
            g_assert_cmphex(batch[i].mr2, ==, mix(seq ^ p));
            g_assert_cmphex(batch[i].mr3, ==, mix(~seq));
            if (sh->producers == 1 && sh->consumers == 1) {
                /* 1:1: exactly in order, nothing skipped. */
                g_assert_cmpuint(seq, ==, next[p]);
            }
            next[p] = seq + 1;
            sum[p] += seq;
            check[p] ^= batch[i].mr2;
        }
        __atomic_fetch_add(&sh->consumed, n, __ATOMIC_RELAXED);
    }
    for (unsigned p = 0; p < sh->producers; p++) {
        __atomic_fetch_add(&sh->sum[p], sum[p], __ATOMIC_RELAXED);
        __atomic_fetch_xor(&sh->check[p], check[p], __ATOMIC_RELAXED);
    }
    g_assert_false(vq.broken);
    return NULL;
}

/* Run producers and consumers; bits of @ref_mask pick reference actors. */
static void run_events(unsigned producers, unsigned consumers,
                       unsigned ref_mask)
{
    Shared sh = { 0 };
    Actor actors[4];
    unsigned n = 0;

    g_assert_cmpuint(producers + consumers, <=, 4);
    sh.io = g_malloc0(sizeof(*sh.io));
    sh.producers = producers;
    sh.consumers = consumers;
    sh.per_producer = total_messages / producers;
    for (unsigned i = 0; i < producers + consumers; i++, n++) {
        actors[i] = (Actor){ &sh, i < producers ? i : i - producers,
                             ref_mask & (1u << i) };
        pthread_create(&actors[i].thread, NULL,
                       i < producers ? producer_main : consumer_main,
                       &actors[i]);
    }
    for (unsigned i = 0; i < n; i++) {
        pthread_join(actors[i].thread, NULL);
    }
    g_assert_cmpuint(sh.consumed, ==, sh.per_producer * producers);
    for (unsigned p = 0; p < producers; p++) {
        uint64_t check = 0;

        for (uint64_t s = 0; s < sh.per_producer; s++) {
            check ^= mix(s ^ p);
        }
        g_assert_cmpuint(sh.sum[p], ==,
                         sh.per_producer * (sh.per_producer - 1) / 2);
        g_assert_cmphex(sh.check[p], ==, check);
    }
    /* Everything published, nothing half-committed. */
    g_assert_cmphex(sh.io->queues[RPC_QUEUE_DEVEVT].prod.head.raw, ==,
                    sh.io->queues[RPC_QUEUE_DEVEVT].prod.tail.raw);
    g_assert_cmphex(sh.io->queues[RPC_QUEUE_DEVEVT].cons.head.raw, ==,
                    sh.io->queues[RPC_QUEUE_DEVEVT].cons.tail.raw);
    g_test_message("%" G_GUINT64_FORMAT " messages, %u:%u", sh.consumed,
                   producers, consumers);
    g_free(sh.io);
}

static void test_1p1c_batched(void)
{
    run_events(1, 1, 0);
}

static void test_batched_producer_ref_consumer(void)
{
    run_events(1, 1, 1u << 1);
}

static void test_ref_producer_batched_consumer(void)
{
    run_events(1, 1, 1u << 0);
}

/* Two of each; one producer and one consumer are reference actors. */
static void test_2p2c_mixed(void)
{
    run_events(2, 2, (1u << 1) | (1u << 3));
}

static void test_2p2c_batched(void)
{
    run_events(2, 2, 0);
}

/* ---- request/reply: the VMM and QEMU in two threads ---- */

typedef struct RpcStress {
    rpcmsg_iobuf_t *io;
    bool events;                /* the device also sends an event each */
    uint64_t done;              /* atomic: driver finished */
} RpcStress;

/* The event the device sends for the request whose mr1 is @seq. */
static rpcmsg_t duplex_event(uint64_t seq)
{
    return (rpcmsg_t){ 0xe5, seq, mix(seq ^ 0xe5), ~seq };
}

/* Device side: send @n events, waiting for room (the driver drains). */
static void device_send_events(VsoRpc *dev, const rpcmsg_t *evs, int n)
{
    int off = 0;

    while (off < n) {
        int k = vso_rpc_send_events(dev, evs + off, n - off);

        g_assert_cmpint(k, >=, 0);
        off += k;
        if (k == 0) {
            sched_yield();
        }
    }
}

static void *device_main(void *opaque)
{
    RpcStress *st = opaque;
    VsoRequest reqs[RPCMSG_BUFFER_SIZE];
    VsoReply rep[RPCMSG_BUFFER_SIZE];
    rpcmsg_t evs[RPCMSG_BUFFER_SIZE];
    VsoRpc dev;

    g_assert_cmpint(vso_rpc_init(&dev, st->io, sizeof(*st->io),
                                 VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ), ==, 0);
    while (!__atomic_load_n(&st->done, __ATOMIC_ACQUIRE)) {
        int n = vso_rpc_recv(&dev, reqs, RPCMSG_BUFFER_SIZE), off = 0;

        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            sched_yield();
            continue;
        }
        for (int i = 0; i < n; i++) {
            rep[i] = (VsoReply){ reqs[i].id, mix(reqs[i].msg.mr1) };
            evs[i] = duplex_event(reqs[i].msg.mr1);
        }
        if (st->events) {
            device_send_events(&dev, evs, n);
        }
        while (off < n) {
            int k = vso_rpc_reply(&dev, rep + off, n - off);

            g_assert_cmpint(k, >=, 0);
            off += k;
        }
    }
    g_assert_cmpuint(dev.stats.bad_id + dev.stats.dup_id, ==, 0);
    return NULL;
}

/* Driver side: receive events, each the next in request order. */
static uint64_t driver_recv_events(VsoRpc *drv, uint64_t next)
{
    rpcmsg_t evs[RPCMSG_BUFFER_SIZE];
    int n = vso_rpc_recv_events(drv, evs, RPCMSG_BUFFER_SIZE);

    g_assert_cmpint(n, >=, 0);
    for (int i = 0; i < n; i++, next++) {
        rpcmsg_t want = duplex_event(next);

        g_assert_cmpmem(&evs[i], sizeof(evs[i]), &want, sizeof(want));
    }
    return next;
}

static void run_request_reply(bool events)
{
    RpcStress st = { .io = g_malloc0(sizeof(rpcmsg_iobuf_t)),
                     .events = events };
    rpcmsg_t msgs[RPCMSG_BUFFER_SIZE];
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    uint64_t expect[RPCMSG_BUFFER_SIZE];
    VsoRequest rep[RPCMSG_BUFFER_SIZE];
    uint64_t sent = 0, received = 0, events_in = 0, rs = 42;
    pthread_t dev;
    VsoRpc drv;

    g_assert_cmpint(vso_rpc_init(&drv, st.io, sizeof(*st.io), VSO_RPC_DRIVER,
                                 RPC_QUEUE_DRVRPC_REQ), ==, 0);
    pthread_create(&dev, NULL, device_main, &st);
    while (received < total_messages ||
           (events && events_in < total_messages)) {
        unsigned want = rnd_batch(&rs);
        int n;

        if (want > total_messages - sent) {
            want = total_messages - sent;
        }
        for (unsigned i = 0; i < want; i++) {
            msgs[i] = (rpcmsg_t){ rpc_mr0_mmio(0, AS_GLOBAL, 0, 4),
                                  sent + i, 0, 0 };
        }
        n = want ? vso_rpc_call(&drv, msgs, want, ids) : 0;
        g_assert_cmpint(n, >=, 0);
        for (int i = 0; i < n; i++) {
            expect[ids[i]] = mix(sent + i);
        }
        sent += n;
        n = vso_rpc_collect(&drv, rep, RPCMSG_BUFFER_SIZE);
        g_assert_cmpint(n, >=, 0);
        for (int i = 0; i < n; i++) {
            g_assert_cmphex(rep[i].msg.mr2, ==, expect[rep[i].id]);
            g_assert_cmphex(rep[i].msg.mr2, ==, mix(rep[i].msg.mr1));
        }
        received += n;
        if (events) {
            uint64_t before = events_in;

            events_in = driver_recv_events(&drv, events_in);
            n += events_in - before;
        }
        if (n == 0) {
            sched_yield();
        }
    }
    __atomic_store_n(&st.done, 1, __ATOMIC_RELEASE);
    pthread_join(dev, NULL);
    g_assert_cmpuint(vso_rpc_owned(&drv), ==, 0);
    g_assert_cmpuint(drv.stats.bad_id, ==, 0);
    g_test_message("%" G_GUINT64_FORMAT " requests in %" G_GUINT64_FORMAT
                   " batches", drv.req.stats.messages, drv.req.stats.batches);
    g_free(st.io);
}

static void test_request_reply(void)
{
    run_request_reply(false);
}

/*
 * All three queues at once, as QEMU and the VMM use them: the device
 * thread answers every request and sends an event carrying its payload,
 * the driver thread checks replies and events.  Bodies cross threads both
 * ways through every queue, so each acquire/release pair of lib/vso_rpc.c
 * ("Memory ordering") is in use at the same time.
 */
static void test_duplex(void)
{
    run_request_reply(true);
}

int main(int argc, char **argv)
{
    const char *env = g_getenv("STRESS_MESSAGES");

    g_test_init(&argc, &argv, NULL);
    if (env) {
        total_messages = g_ascii_strtoull(env, NULL, 10);
        g_assert_cmpuint(total_messages, >=, 1000);
    }
    g_test_add_func("/stress/events-1p1c-batched", test_1p1c_batched);
    g_test_add_func("/stress/events-batched-vs-ref-consumer",
                    test_batched_producer_ref_consumer);
    g_test_add_func("/stress/events-ref-producer-vs-batched",
                    test_ref_producer_batched_consumer);
    g_test_add_func("/stress/events-2p2c-mixed", test_2p2c_mixed);
    g_test_add_func("/stress/events-2p2c-batched", test_2p2c_batched);
    g_test_add_func("/stress/request-reply", test_request_reply);
    g_test_add_func("/stress/duplex", test_duplex);
    return g_test_run();
}
