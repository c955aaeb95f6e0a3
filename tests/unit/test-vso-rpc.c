/*
 * vso_rpc queues: empty, full, wrap-around, batches against the reference
 * one-at-a-time peer, request/reply, events, recovery, counters.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "sel4/vso_rpc.h"
#include "rpc-ref-peer.h"

typedef struct Fixture {
    rpcmsg_iobuf_t *io;
    VsoRpc drv, dev;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->io = g_malloc0(RPC_IOBUF_SIZE);
    g_assert_cmpint(vso_rpc_init(&f->drv, f->io, RPC_IOBUF_SIZE,
                                 VSO_RPC_DRIVER, RPC_QUEUE_DRVRPC_REQ), ==, 0);
    g_assert_cmpint(vso_rpc_init(&f->dev, f->io, RPC_IOBUF_SIZE,
                                 VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ), ==, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_free(f->io);
}

static void test_init_rejects(void)
{
    g_autofree uint8_t *mem = g_malloc0(RPC_IOBUF_SIZE + 8);
    VsoRpc rpc;

    g_assert_cmpint(vso_rpc_init(&rpc, NULL, RPC_IOBUF_SIZE, VSO_RPC_DEVICE,
                                 RPC_QUEUE_DRVRPC_REQ), ==, -EINVAL);
    g_assert_cmpint(vso_rpc_init(&rpc, mem, sizeof(rpcmsg_iobuf_t) - 1,
                                 VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ),
                    ==, -EINVAL);
    g_assert_cmpint(vso_rpc_init(&rpc, mem + 4, RPC_IOBUF_SIZE, VSO_RPC_DEVICE,
                                 RPC_QUEUE_DRVRPC_REQ), ==, -EINVAL);
    g_assert_cmpint(vso_rpc_init(&rpc, mem, RPC_IOBUF_SIZE, VSO_RPC_DEVICE,
                                 RPC_QUEUE_DRVRPC_RESP), ==, -EINVAL);
    g_assert_cmpint(vso_rpc_init(&rpc, mem, RPC_IOBUF_SIZE, VSO_RPC_DEVICE,
                                 RPC_QUEUE_DRVRPC_REQ_DEV), ==, 0);
    g_assert_true(rpc.req.q == &((rpcmsg_iobuf_t *)mem)->queues[1]);
}

static void test_empty(Fixture *f, gconstpointer data)
{
    uint16_t ids[32];
    VsoRequest reqs[32];
    rpcmsg_t evts[32];

    g_assert_cmpint(vso_queue_dequeue(&f->dev.req, ids, 32), ==, 0);
    g_assert_cmpint(vso_rpc_recv(&f->dev, reqs, 32), ==, 0);
    g_assert_cmpint(vso_rpc_collect(&f->drv, reqs, 32), ==, 0);
    g_assert_cmpint(vso_rpc_recv_events(&f->drv, evts, 32), ==, 0);
    g_assert_cmpint(vso_queue_pending(&f->dev.req), ==, 0);
    g_assert_cmpuint(f->dev.req.stats.empty, ==, 2);
}

/* Fill to exactly 32, refuse the 33rd, drain, and repeat across wraps. */
static void test_full_and_wrap(Fixture *f, gconstpointer data)
{
    VsoQueue *q = &f->dev.evt;
    rpcmsg_t in[40], out[40];

    /* Start just below the u32 wrap of the free-running positions. */
    f->io->queues[RPC_QUEUE_DEVEVT].prod.tail.pos = UINT32_MAX - 40;
    f->io->queues[RPC_QUEUE_DEVEVT].prod.head.pos = UINT32_MAX - 40;
    f->io->queues[RPC_QUEUE_DEVEVT].cons.tail.pos = UINT32_MAX - 40;
    f->io->queues[RPC_QUEUE_DEVEVT].cons.head.pos = UINT32_MAX - 40;

    for (unsigned round = 0; round < 5; round++) {
        for (unsigned i = 0; i < 40; i++) {
            in[i] = (rpcmsg_t){ round, i, ~i, round * 100 + i };
        }
        g_assert_cmpint(vso_queue_send_events(q, in, 40), ==, 32);
        g_assert_cmpint(vso_queue_send_events(q, in + 32, 8), ==, 0);
        g_assert_cmpint(vso_queue_pending(q), ==, 32);
        g_assert_cmpint(vso_queue_recv_events(&f->drv.evt, out, 40), ==, 32);
        g_assert_cmpmem(in, 32 * sizeof(rpcmsg_t), out, 32 * sizeof(rpcmsg_t));
        g_assert_cmpint(vso_queue_recv_events(&f->drv.evt, out, 40), ==, 0);
    }
    g_assert_cmpuint(q->stats.full, ==, 5);
    g_assert_cmpuint(q->stats.messages, ==, 160);
    g_assert_cmpuint(q->stats.batches, ==, 5);
    g_assert_cmpuint(q->stats.high_water, ==, 32);
    g_assert_false(q->broken);
}

/* Batches of every size against the reference peer, both directions. */
static void test_batch_vs_reference(Fixture *f, gconstpointer data)
{
    rpcmsg_queue_t *q = &f->io->queues[RPC_QUEUE_DRVRPC_RESP];
    VsoQueue *vq = &f->dev.resp;
    uint16_t ids[32], got = 0;
    uint32_t next_in = 0, next_out = 0;

    for (unsigned n = 1; n <= 32; n++) {
        /* Batched producer, one-at-a-time consumer. */
        for (unsigned i = 0; i < n; i++) {
            ids[i] = (next_in + i) & 31;
        }
        g_assert_cmpint(vso_queue_enqueue(vq, ids, n), ==, n);
        next_in += n;
        for (unsigned i = 0; i < n; i++) {
            g_assert_true(ref_dequeue_id(q, &got));
            g_assert_cmpuint(got, ==, next_out++ & 31);
        }
        g_assert_false(ref_dequeue_id(q, &got));

        /* One-at-a-time producer, batched consumer. */
        for (unsigned i = 0; i < n; i++) {
            g_assert_true(ref_enqueue_id(q, (next_in++) & 31));
        }
        g_assert_cmpint(vso_queue_dequeue(&f->drv.resp, ids, 32), ==, n);
        for (unsigned i = 0; i < n; i++) {
            g_assert_cmpuint(ids[i], ==, next_out++ & 31);
        }
    }
    /* Markers: each batch advanced count by one, pos by n. */
    g_assert_cmpuint(q->prod.head.pos, ==, 32 * 33);
    g_assert_cmpuint(q->prod.head.count, ==, 32 + 32 * 33 / 2);
    g_assert_cmphex(q->prod.head.raw, ==, q->prod.tail.raw);
    g_assert_cmphex(q->cons.head.raw, ==, q->cons.tail.raw);
}

static void test_request_reply(Fixture *f, gconstpointer data)
{
    rpcmsg_t msgs[40];
    uint16_t ids[40];
    VsoRequest reqs[40];
    VsoReply replies[40];
    int n;

    for (unsigned i = 0; i < 40; i++) {
        msgs[i] = (rpcmsg_t){
            rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, AS_GLOBAL, i % 16, 4),
            0x1000 + 4 * i, 0, 0 };
    }
    /* At most 32 outstanding: the 33rd has no message id to lend. */
    g_assert_cmpint(vso_rpc_call(&f->drv, msgs, 40, ids), ==, 32);
    g_assert_cmpuint(vso_rpc_owned(&f->drv), ==, 32);
    g_assert_cmpint(vso_rpc_call(&f->drv, msgs + 32, 8, ids + 32), ==, 0);

    n = vso_rpc_recv(&f->dev, reqs, 40);
    g_assert_cmpint(n, ==, 32);
    for (int i = 0; i < n; i++) {
        g_assert_cmpuint(reqs[i].id, ==, ids[i]);
        g_assert_cmphex(reqs[i].msg.mr1, ==, 0x1000 + 4 * i);
        replies[i] = (VsoReply){ reqs[i].id, reqs[i].msg.mr1 * 3 };
    }
    g_assert_cmpuint(vso_rpc_owned(&f->dev), ==, 32);
    /* Replies go out in two batches, in a different order. */
    g_assert_cmpint(vso_rpc_reply(&f->dev, replies + 16, 16), ==, 16);
    g_assert_cmpint(vso_rpc_reply(&f->dev, replies, 16), ==, 16);
    g_assert_cmpuint(vso_rpc_owned(&f->dev), ==, 0);

    n = vso_rpc_collect(&f->drv, reqs, 40);
    g_assert_cmpint(n, ==, 32);
    for (int i = 0; i < n; i++) {
        unsigned k = (i + 16) % 32;

        g_assert_cmpuint(reqs[i].id, ==, ids[k]);
        g_assert_cmphex(reqs[i].msg.mr2, ==, (0x1000 + 4 * k) * 3);
        /* Everything but mr2 is the request, untouched. */
        g_assert_cmphex(reqs[i].msg.mr0, ==, msgs[k].mr0);
    }
    g_assert_cmpuint(vso_rpc_owned(&f->drv), ==, 0);
    /* Ids are lent again. */
    g_assert_cmpint(vso_rpc_call(&f->drv, msgs + 32, 8, ids + 32), ==, 8);
    g_assert_cmpuint(f->dev.resp.stats.batches, ==, 2);
    g_assert_cmpuint(f->dev.req.stats.batches, ==, 1);
}

/* A full reply queue is back-pressure: partial publish, then the rest. */
static void test_reply_backpressure(Fixture *f, gconstpointer data)
{
    rpcmsg_t msgs[32] = { 0 };
    uint16_t ids[32], junk[32];
    VsoRequest reqs[32];
    VsoReply replies[32];
    int n;

    g_assert_cmpint(vso_rpc_call(&f->drv, msgs, 32, ids), ==, 32);
    g_assert_cmpint(vso_rpc_recv(&f->dev, reqs, 32), ==, 32);
    /* Stuff 20 foreign entries into drvrpc_resp so only 12 fit. */
    for (unsigned i = 0; i < 20; i++) {
        g_assert_true(ref_enqueue_id(&f->io->queues[RPC_QUEUE_DRVRPC_RESP], i));
    }
    for (unsigned i = 0; i < 32; i++) {
        replies[i] = (VsoReply){ reqs[i].id, i };
    }
    n = vso_rpc_reply(&f->dev, replies, 32);
    g_assert_cmpint(n, ==, 12);
    g_assert_cmpuint(vso_rpc_owned(&f->dev), ==, 20);
    g_assert_cmpuint(f->dev.resp.stats.full, ==, 0);
    g_assert_cmpint(vso_rpc_reply(&f->dev, replies + n, 32 - n), ==, 0);
    g_assert_cmpuint(f->dev.resp.stats.full, ==, 1);
    /* The VMM drains; the rest goes out. */
    g_assert_cmpint(vso_queue_dequeue(&f->drv.resp, junk, 32), ==, 32);
    g_assert_cmpint(vso_rpc_reply(&f->dev, replies + n, 32 - n), ==, 32 - n);
    g_assert_cmpuint(vso_rpc_owned(&f->dev), ==, 0);
}

static void test_events_vs_reference(Fixture *f, gconstpointer data)
{
    rpcmsg_queue_t *q = &f->io->queues[RPC_QUEUE_DEVEVT];
    rpcmsg_buffer_t *b = &f->io->buffers[RPC_IOBUF_DEVEVT];
    rpcmsg_t ev[3] = {
        { rpc_mr0_op(QEMU_OP_REGISTER_PCI_DEV), 0, 0, 0 },
        { rpc_mr0_op(QEMU_OP_SET_IRQ), 100, RPC_IRQ_PULSE, 0 },
        { rpc_mr0_op(QEMU_OP_START_VM), 0, 0, 0 },
    }, out;

    for (unsigned round = 0; round < 20; round++) {
        g_assert_cmpint(vso_rpc_send_events(&f->dev, ev, 3), ==, 3);
        for (unsigned i = 0; i < 3; i++) {
            g_assert_true(ref_recv_event(q, b, &out));
            g_assert_cmpmem(&out, sizeof(out), &ev[i], sizeof(out));
        }
        g_assert_false(ref_recv_event(q, b, &out));
        /* Bodies sit at their ring position: the deployed VMM relies on it. */
        g_assert_cmpuint(q->ring[(round * 3 + 2) & 31], ==, (round * 3 + 2) & 31);
    }
}

/* A predecessor died between claim and commit on both of its sides. */
static void test_recover(Fixture *f, gconstpointer data)
{
    rpcmsg_queue_t *req = &f->io->queues[RPC_QUEUE_DRVRPC_REQ];
    rpcmsg_queue_t *resp = &f->io->queues[RPC_QUEUE_DRVRPC_RESP];
    rpcmsg_t msgs[2] = { { 0, 1, 0, 0 }, { 0, 2, 0, 0 } };
    uint16_t ids[2];
    VsoRequest reqs[2];
    VsoReply rep[2];

    g_assert_cmpint(vso_rpc_call(&f->drv, msgs, 2, ids), ==, 2);
    /* The dead device side claimed both requests and one reply slot. */
    req->cons.tail.pos += 2;
    req->cons.tail.count += 1;
    resp->prod.tail.pos += 1;
    resp->prod.tail.count += 1;

    g_assert_cmpint(vso_queue_recover(&f->dev.req, false), ==, 2);
    g_assert_cmpint(vso_queue_recover(&f->dev.resp, true), ==, 1);
    g_assert_cmpint(vso_queue_recover(&f->dev.resp, true), ==, 0);
    /* The requests are served by the new device side. */
    g_assert_cmpint(vso_rpc_recv(&f->dev, reqs, 2), ==, 2);
    rep[0] = (VsoReply){ reqs[0].id, 10 };
    rep[1] = (VsoReply){ reqs[1].id, 20 };
    g_assert_cmpint(vso_rpc_reply(&f->dev, rep, 2), ==, 2);
    g_assert_cmpint(vso_rpc_collect(&f->drv, reqs, 2), ==, 2);
    g_assert_cmphex(reqs[0].msg.mr2, ==, 10);
    g_assert_cmphex(reqs[1].msg.mr2, ==, 20);
    g_assert_cmphex(resp->prod.head.raw, ==, resp->prod.tail.raw);
}

/*
 * A predecessor's stale claim: recovery at attach drops it, so the first
 * event published afterwards is ours alone.
 */
static void test_stale_claim_recovered(Fixture *f, gconstpointer data)
{
    rpcmsg_queue_t *q = &f->io->queues[RPC_QUEUE_DEVEVT];
    rpcmsg_t ev = { rpc_mr0_op(QEMU_OP_START_VM), 0, 0, 0 }, out[2];

    q->prod.tail.pos += 1;
    q->prod.tail.count += 1;
    g_assert_cmpint(vso_queue_recover(&f->dev.evt, true), ==, 1);
    g_assert_cmpint(vso_rpc_send_events(&f->dev, &ev, 1), ==, 1);
    g_assert_cmpint(vso_rpc_recv_events(&f->drv, out, 2), ==, 1);
    g_assert_cmphex(out[0].mr0, ==, QEMU_OP_START_VM);
    g_assert_cmpuint(f->dev.evt.stats.errors, ==, 0);
}

/*
 * The peer rewrote the count of our side's tail.  The device side is the
 * only actor there, so its commit still publishes (counted as an error);
 * the one-at-a-time algorithm would hold head.pos back forever.
 */
static void test_scribbled_count(Fixture *f, gconstpointer data)
{
    rpcmsg_queue_t *q = &f->io->queues[RPC_QUEUE_DEVEVT];
    rpcmsg_t ev = { rpc_mr0_op(QEMU_OP_START_VM), 7, 0, 0 }, out;

    q->prod.tail.count += 5;
    g_assert_cmpint(vso_rpc_send_events(&f->dev, &ev, 1), ==, 1);
    g_assert_cmpuint(f->dev.evt.stats.errors, ==, 1);
    g_assert_cmpint(vso_rpc_recv_events(&f->drv, &out, 1), ==, 1);
    g_assert_cmphex(out.mr1, ==, 7);
    g_assert_cmpint(vso_rpc_send_events(&f->dev, &ev, 1), ==, 1);
    g_assert_cmpuint(f->dev.evt.stats.errors, ==, 1);
    g_assert_cmpint(vso_rpc_recv_events(&f->drv, &out, 1), ==, 1);
}

static void test_reset(Fixture *f, gconstpointer data)
{
    rpcmsg_t ev = { 0 };

    f->io->queues[RPC_QUEUE_DEVEVT].cons.head.pos = 1000;   /* broken */
    g_assert_cmpint(vso_rpc_send_events(&f->dev, &ev, 1), ==, -EPIPE);
    g_assert_true(f->dev.evt.broken);
    vso_queue_reset(&f->dev.evt);
    g_assert_false(f->dev.evt.broken);
    g_assert_cmpint(vso_rpc_send_events(&f->dev, &ev, 1), ==, 1);
}

static void test_decode(void)
{
    static const struct {
        uint64_t mr0;
        VsoRpcError err;
    } cases[] = {
        { 0x9FF000, VSO_RPC_OK },
        { 0x802400, VSO_RPC_OK },
        { QEMU_OP_PUTC_LOG, VSO_RPC_OK },
        { 0x9FF000 | QEMU_OP_SET_IRQ, VSO_RPC_EBADOP },
        { 0x9FF000 | 63, VSO_RPC_EBADOP },
        { 0x9FF000 | (UINT64_C(1) << 25), VSO_RPC_ERESERVED },
        { 0x9FF000 | (UINT64_C(1) << 63), VSO_RPC_ERESERVED },
        { RPC_MR0_SET(0x9FF000, LEN, 0), VSO_RPC_EBADLEN },
        { RPC_MR0_SET(0x9FF000, LEN, 3), VSO_RPC_EBADLEN },
        { RPC_MR0_SET(0x9FF000, LEN, 15), VSO_RPC_EBADLEN },
        { RPC_MR0_SET(0x9FF000, AS, 32), VSO_RPC_EBADAS },
        { RPC_MR0_SET(0x9FF000, AS, 0xfe), VSO_RPC_EBADAS },
        { RPC_MR0_SET(0x9FF000, AS, 31), VSO_RPC_OK },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        rpcmsg_t m = { cases[i].mr0, 0, 0, 0 };
        VsoMmio d;

        g_assert_cmpint(vso_rpc_decode(&m, &d), ==, cases[i].err);
        g_assert_nonnull(vso_rpc_strerror(cases[i].err));
    }
    g_assert_cmpstr(vso_rpc_strerror(VSO_RPC_ERR_COUNT), ==, "unknown error");
}

#define ADD(path, fn) \
    g_test_add("/vso-rpc/" path, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vso-rpc/init-rejects", test_init_rejects);
    g_test_add_func("/vso-rpc/decode", test_decode);
    ADD("empty", test_empty);
    ADD("full-and-wrap", test_full_and_wrap);
    ADD("batch-vs-reference", test_batch_vs_reference);
    ADD("request-reply", test_request_reply);
    ADD("reply-backpressure", test_reply_backpressure);
    ADD("events-vs-reference", test_events_vs_reference);
    ADD("recover", test_recover);
    ADD("stale-claim-recovered", test_stale_claim_recovered);
    ADD("scribbled-count", test_scribbled_count);
    ADD("reset", test_reset);
    return g_test_run();
}
