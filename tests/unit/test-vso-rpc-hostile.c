/*
 * A hostile or broken peer: every field it can write in the iobuf,
 * corrupted one at a time.  Each case must be answered with an error
 * return or a counted drop, never a crash, a hang or an access outside the
 * region (the iobuf is allocated at its exact size: run under ASan), and
 * the queues the corruption did not touch must keep working.
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

#define REQ(f)  (&(f)->io->queues[RPC_QUEUE_DRVRPC_REQ])
#define RESP(f) (&(f)->io->queues[RPC_QUEUE_DRVRPC_RESP])
#define EVT(f)  (&(f)->io->queues[RPC_QUEUE_DEVEVT])

/* ---- the call that meets the corruption ---- */

static int dev_recv(Fixture *f)
{
    VsoRequest reqs[32];

    return vso_rpc_recv(&f->dev, reqs, 32);
}

/* Receive whatever is there and answer it; returns the reply result. */
static int dev_serve(Fixture *f)
{
    VsoRequest reqs[32];
    VsoReply rep[32];
    int n = vso_rpc_recv(&f->dev, reqs, 32);

    if (n <= 0) {
        return n;
    }
    for (int i = 0; i < n; i++) {
        rep[i] = (VsoReply){ reqs[i].id, 0 };
    }
    return vso_rpc_reply(&f->dev, rep, n);
}

static int dev_send_event(Fixture *f)
{
    rpcmsg_t ev = { rpc_mr0_op(QEMU_OP_SET_IRQ), 1, RPC_IRQ_SET, 0 };

    return vso_rpc_send_events(&f->dev, &ev, 1);
}

static int drv_collect(Fixture *f)
{
    VsoRequest rep[32];

    return vso_rpc_collect(&f->drv, rep, 32);
}

static int drv_recv_events(Fixture *f)
{
    rpcmsg_t ev[32];

    return vso_rpc_recv_events(&f->drv, ev, 32);
}

/* ---- corruptions; the fixture has one request and one event queued ---- */

static void req_prod_head_jump(Fixture *f)  { REQ(f)->prod.head.pos += 40; }
static void req_prod_head_back(Fixture *f)  { REQ(f)->prod.head.pos -= 2; }
static void req_prod_tail_junk(Fixture *f)  { REQ(f)->prod.tail.raw = ~0ull; }
static void req_cons_tail_jump(Fixture *f)  { REQ(f)->cons.tail.pos += 33; }
static void req_cons_head_ahead(Fixture *f) { REQ(f)->cons.head.pos += 1; }
static void req_cons_tail_htd(Fixture *f)
{
    /* A same-side actor that claimed 9 entries and never committed. */
    for (unsigned i = 1; i <= 9; i++) {
        g_assert_true(ref_enqueue_id(REQ(f), i));
    }
    REQ(f)->cons.tail.pos += 9;
    REQ(f)->cons.tail.count += 1;
}
static void req_cons_count_junk(Fixture *f)
{
    REQ(f)->cons.tail.count = 0xdeadbeef;
    REQ(f)->cons.head.count = 0x12345678;
}
static void req_ring_id_32(Fixture *f)      { REQ(f)->ring[0] = 32; }
static void req_ring_id_ffff(Fixture *f)    { REQ(f)->ring[0] = 0xffff; }
static void req_ring_dup(Fixture *f)
{
    /* The same message id queued twice. */
    g_assert_true(ref_enqueue_id(REQ(f), REQ(f)->ring[0]));
}
static void resp_cons_head_ahead(Fixture *f) { RESP(f)->cons.head.pos += 1; }
static void resp_cons_head_back(Fixture *f)  { RESP(f)->cons.head.pos -= 33; }
static void resp_prod_tail_jump(Fixture *f)  { RESP(f)->prod.tail.pos += 33; }
static void resp_prod_head_ahead(Fixture *f) { RESP(f)->prod.head.pos += 1; }
static void evt_cons_head_ahead(Fixture *f)  { EVT(f)->cons.head.pos += 5; }
static void evt_cons_head_junk(Fixture *f)   { EVT(f)->cons.head.pos ^= 1u << 31; }
static void evt_prod_tail_junk(Fixture *f)   { EVT(f)->prod.tail.pos -= 1; }

/* The driver side (the simulated VMM) meeting a hostile device side. */
static void resp_foreign_id(Fixture *f)
{
    /* A reply for a message id the driver never lent. */
    g_assert_true(ref_enqueue_id(RESP(f), 31));
}
static void resp_id_ffff(Fixture *f)
{
    g_assert_true(ref_enqueue_id(RESP(f), 0xffff));
}
static void resp_prod_head_jump(Fixture *f)  { RESP(f)->prod.head.pos += 64; }
static void evt_ring_id_bad(Fixture *f)
{
    EVT(f)->ring[EVT(f)->cons.tail.pos & 31] = 40;
}
static void evt_prod_head_jump(Fixture *f)   { EVT(f)->prod.head.pos += 33; }

/* ---- the table ---- */

typedef enum Counter {
    C_NONE,         /* a field this side never reads: served as usual */
    C_BROKEN,       /* the queue is marked broken */
    C_ERRORS,       /* the queue's error counter */
    C_STALLS,
    C_DUP,
    C_BAD_ID,
    C_BAD_ENTRY,    /* the queue's count of entries naming an id >= 32 */
} Counter;

typedef struct HostileCase {
    const char *field;
    const char *value;
    void (*corrupt)(Fixture *f);
    int (*meet)(Fixture *f);
    int expect;             /* return of meet() */
    Counter counter;        /* what must have counted it */
    int queue;              /* the queue it concerns (RPC_QUEUE_*) */
} HostileCase;

static const HostileCase cases[] = {
    { "req prod.head", "+40 (pending > 32)", req_prod_head_jump, dev_recv,
      -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_REQ },
    { "req prod.head", "-2 (behind consumer)", req_prod_head_back, dev_recv,
      -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_REQ },
    { "req prod.tail", "all ones", req_prod_tail_junk, dev_serve,
      1, C_NONE, RPC_QUEUE_DRVRPC_REQ },
    { "req cons.tail", "+33 (ahead of head)", req_cons_tail_jump, dev_recv,
      -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_REQ },
    { "req cons.head", "+1 (ahead of tail)", req_cons_head_ahead, dev_recv,
      -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_REQ },
    { "req cons.tail", "+9, never committed", req_cons_tail_htd, dev_recv,
      -EAGAIN, C_STALLS, RPC_QUEUE_DRVRPC_REQ },
    { "req cons counts", "junk", req_cons_count_junk, dev_serve,
      1, C_ERRORS, RPC_QUEUE_DRVRPC_REQ },
    { "req ring[]", "id 32", req_ring_id_32, dev_recv,
      0, C_BAD_ENTRY, RPC_QUEUE_DRVRPC_REQ },
    { "req ring[]", "id 0xffff", req_ring_id_ffff, dev_recv,
      0, C_BAD_ENTRY, RPC_QUEUE_DRVRPC_REQ },
    { "req ring[]", "id queued twice", req_ring_dup, dev_recv,
      1, C_DUP, RPC_QUEUE_DRVRPC_REQ },
    { "resp cons.head", "+1 (ahead of producer)", resp_cons_head_ahead,
      dev_serve, -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_RESP },
    { "resp cons.head", "-33 (more than full)", resp_cons_head_back,
      dev_serve, -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_RESP },
    { "resp prod.tail", "+33", resp_prod_tail_jump, dev_serve,
      -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_RESP },
    { "resp prod.head", "+1 (ahead of tail)", resp_prod_head_ahead,
      dev_serve, -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_RESP },
    { "devevt cons.head", "+5 (ahead of producer)", evt_cons_head_ahead,
      dev_send_event, -EPIPE, C_BROKEN, RPC_QUEUE_DEVEVT },
    { "devevt cons.head", "bit 31 flipped", evt_cons_head_junk, dev_send_event,
      -EPIPE, C_BROKEN, RPC_QUEUE_DEVEVT },
    { "devevt prod.tail", "-1 (behind head)", evt_prod_tail_junk,
      dev_send_event, -EPIPE, C_BROKEN, RPC_QUEUE_DEVEVT },
    { "resp ring[] (driver)", "id never lent", resp_foreign_id, drv_collect,
      0, C_BAD_ID, RPC_QUEUE_DRVRPC_RESP },
    { "resp ring[] (driver)", "id 0xffff", resp_id_ffff, drv_collect,
      0, C_BAD_ENTRY, RPC_QUEUE_DRVRPC_RESP },
    { "resp prod.head (driver)", "+64", resp_prod_head_jump, drv_collect,
      -EPIPE, C_BROKEN, RPC_QUEUE_DRVRPC_RESP },
    { "devevt ring[] (driver)", "id 40", evt_ring_id_bad, drv_recv_events,
      0, C_BAD_ENTRY, RPC_QUEUE_DEVEVT },
    { "devevt prod.head (driver)", "+33", evt_prod_head_jump,
      drv_recv_events, -EPIPE, C_BROKEN, RPC_QUEUE_DEVEVT },
};

static VsoQueue *queue_of(Fixture *f, const HostileCase *c)
{
    bool drv = c->meet == drv_collect || c->meet == drv_recv_events;

    switch (c->queue) {
    case RPC_QUEUE_DRVRPC_REQ:
        return drv ? &f->drv.req : &f->dev.req;
    case RPC_QUEUE_DRVRPC_RESP:
        return drv ? &f->drv.resp : &f->dev.resp;
    default:
        return drv ? &f->drv.evt : &f->dev.evt;
    }
}

static uint64_t counter_of(Fixture *f, const HostileCase *c)
{
    VsoQueue *q = queue_of(f, c);
    VsoRpc *rpc = (c->meet == drv_collect || c->meet == drv_recv_events) ?
                  &f->drv : &f->dev;

    switch (c->counter) {
    case C_NONE:
        return q->stats.errors + q->stats.stalls + q->broken;
    case C_BROKEN:
        return q->broken && q->stats.errors > 0;
    case C_ERRORS:
        return q->stats.errors;
    case C_STALLS:
        return q->stats.stalls;
    case C_DUP:
        return rpc->stats.dup_id;
    case C_BAD_ENTRY:
        return q->stats.bad_ids;
    default:
        return rpc->stats.bad_id;
    }
}

/* One request and one event in flight, as in normal operation. */
static void fixture_start(Fixture *f)
{
    rpcmsg_t req = { rpc_mr0_mmio(1, AS_GLOBAL, 0, 4), 0x1000, 0x55, 0 };
    uint16_t id;

    /* Exactly the used size: ASan flags any access beyond it. */
    f->io = g_malloc0(sizeof(rpcmsg_iobuf_t));
    g_assert_cmpint(vso_rpc_init(&f->drv, f->io, sizeof(*f->io),
                                 VSO_RPC_DRIVER, RPC_QUEUE_DRVRPC_REQ), ==, 0);
    g_assert_cmpint(vso_rpc_init(&f->dev, f->io, sizeof(*f->io),
                                 VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ), ==, 0);
    g_assert_cmpint(vso_rpc_call(&f->drv, &req, 1, &id), ==, 1);
    g_assert_cmpint(dev_send_event(f), ==, 1);
}

/* The queues the corruption did not concern still carry messages. */
static void check_others_alive(Fixture *f, const HostileCase *c)
{
    rpcmsg_t ev[32];

    if (c->queue != RPC_QUEUE_DEVEVT) {
        g_assert_cmpint(dev_send_event(f), ==, 1);
        g_assert_cmpint(vso_rpc_recv_events(&f->drv, ev, 32), >=, 1);
    } else {
        g_assert_cmpint(dev_serve(f), ==, 1);
        g_assert_cmpint(drv_collect(f), ==, 1);
    }
}

static void test_case(gconstpointer data)
{
    const HostileCase *c = data;
    Fixture f;
    int ret;

    fixture_start(&f);
    c->corrupt(&f);
    ret = c->meet(&f);
    g_test_message("%-26s %-24s -> %-7s %s=%" G_GUINT64_FORMAT,
                   c->field, c->value,
                   ret == -EPIPE ? "EPIPE" : ret == -EAGAIN ? "EAGAIN" :
                   ret < 0 ? "error" : ret == 0 ? "dropped" : "served",
                   (const char *[]){ "errors", "broken", "errors", "stalls",
                                     "dup_id", "bad_id",
                                     "bad_ids" }[c->counter],
                   counter_of(&f, c));
    g_assert_cmpint(ret, ==, c->expect);
    if (c->counter == C_NONE) {
        g_assert_cmpuint(counter_of(&f, c), ==, 0);
    } else {
        g_assert_cmpuint(counter_of(&f, c), >=, 1);
    }
    if (c->counter != C_BROKEN) {
        g_assert_false(queue_of(&f, c)->broken);
    } else {
        /* Broken stays broken, and says why. */
        g_assert_cmpint(vso_queue_pending(queue_of(&f, c)), ==, -EPIPE);
        g_assert_cmpstr(queue_of(&f, c)->broken_reason, !=, "");
    }
    check_others_alive(&f, c);
    g_free(f.io);
}

/* Fields of a request body: decode rejects, nothing else is touched. */
static void test_body_fields(void)
{
    static const struct {
        const char *what;
        uint64_t mr0;
        VsoRpcError err;
    } bodies[] = {
        { "op 1", 1, VSO_RPC_EBADOP },
        { "op 16 (an event op)", RPC_MR0_SET(0x9FF000, OP, 16), VSO_RPC_EBADOP },
        { "op 63", RPC_MR0_SET(0x9FF000, OP, 63), VSO_RPC_EBADOP },
        { "len 0", RPC_MR0_SET(0x9FF000, LEN, 0), VSO_RPC_EBADLEN },
        { "len 3", RPC_MR0_SET(0x9FF000, LEN, 3), VSO_RPC_EBADLEN },
        { "len 9", RPC_MR0_SET(0x9FF000, LEN, 9), VSO_RPC_EBADLEN },
        { "len 15", RPC_MR0_SET(0x9FF000, LEN, 15), VSO_RPC_EBADLEN },
        { "len 16 (bit 25)", 0x9FF000 | (UINT64_C(16) << 21), VSO_RPC_ERESERVED },
        { "as 32", RPC_MR0_SET(0x9FF000, AS, 32), VSO_RPC_EBADAS },
        { "as 0xfe", RPC_MR0_SET(0x9FF000, AS, 0xfe), VSO_RPC_EBADAS },
        { "bit 63", 0x9FF000 | (UINT64_C(1) << 63), VSO_RPC_ERESERVED },
    };
    Fixture f;

    fixture_start(&f);
    for (unsigned i = 0; i < G_N_ELEMENTS(bodies); i++) {
        rpcmsg_t m = { bodies[i].mr0, ~0ull, ~0ull, ~0ull };
        uint16_t id;
        VsoRequest req;
        VsoMmio d;
        VsoReply rep;
        VsoRpcError err;

        g_assert_cmpint(drv_collect(&f), >=, 0);
        g_assert_cmpint(vso_rpc_call(&f.drv, &m, 1, &id), ==, 1);
        /* Drain the fixture's request first. */
        while (vso_rpc_recv(&f.dev, &req, 1) == 1 && req.id != id) {
            rep = (VsoReply){ req.id, 0 };
            g_assert_cmpint(vso_rpc_reply(&f.dev, &rep, 1), ==, 1);
        }
        g_assert_cmpuint(req.id, ==, id);
        err = vso_rpc_decode(&req.msg, &d);
        g_test_message("body mr0 %-22s -> %s", bodies[i].what,
                       vso_rpc_strerror(err));
        g_assert_cmpint(err, ==, bodies[i].err);
        /* Always answered: a failed read replies all-ones. */
        rep = (VsoReply){ req.id, ~0ull };
        g_assert_cmpint(vso_rpc_reply(&f.dev, &rep, 1), ==, 1);
    }
    g_assert_cmpint(drv_collect(&f), ==, 1);
    g_assert_cmpuint(vso_rpc_owned(&f.drv), ==, 0);
    g_free(f.io);
}

/*
 * What QEMU does with a queue the peer broke or stalled: resynchronise its
 * own side to the peer's marker.  The queue then works: the same call
 * no longer fails, and a consumer has nothing pending.
 */
static void test_resync(gconstpointer data)
{
    const HostileCase *c = data;
    VsoQueue *q;
    bool producer = c->queue != RPC_QUEUE_DRVRPC_REQ;
    g_autofree char *reason = NULL;
    Fixture f;
    int32_t abandoned;
    int ret;

    fixture_start(&f);
    c->corrupt(&f);
    g_assert_cmpint(c->meet(&f), ==, c->expect);
    q = queue_of(&f, c);
    reason = g_strdup(c->expect == -EAGAIN ? q->stall_reason
                                           : q->broken_reason);
    /* the queue, the marker and whose it is; no negative shown unsigned */
    g_assert_true(g_str_has_prefix(reason, q->name));
    g_assert_true(strstr(reason, "prod.") || strstr(reason, "cons."));
    g_assert_true(strstr(reason, "VMM's") || strstr(reason, "device side's"));
    g_assert_true(g_regex_match_simple(
        " is [0-9]{1,10} (past|ahead of|behind) |runs [0-9]{1,9} ahead",
        reason, 0, 0));
    g_assert_cmpint(vso_queue_resync(q, producer, &abandoned), ==, 0);
    g_assert_false(q->broken);
    g_assert_cmpstr(q->broken_reason, ==, "");
    ret = c->meet(&f);
    g_test_message("%-26s %-24s -> after resync %d (%d abandoned; %s)",
                   c->field, c->value, ret, abandoned, reason);
    g_assert_cmpint(ret, >=, 0);
    g_assert_false(q->broken);
    if (!producer) {
        /* our consumer starts at the producer's head */
        g_assert_cmpint(vso_queue_pending(q), ==, 0);
    }
    check_others_alive(&f, c);
    /* only the side's sole actor may do this */
    g_assert_cmpint(vso_queue_resync(&f.drv.req, true, &abandoned), ==,
                    -EINVAL);
    g_free(f.io);
}

/*
 * A copy of a request id arrives in a later batch than the first one,
 * after QEMU answered it and before the driver took the reply: it is
 * still outstanding, so it is dropped and counted, not served twice.
 * Once the driver has taken the reply, the id is free to come again.
 */
static void test_dup_across_batches(void)
{
    rpcmsg_t m = { rpc_mr0_mmio(0, AS_GLOBAL, 0, 4), 0x1000, 0, 0 };
    VsoRequest req[4];
    VsoReply rep;
    uint16_t id;
    Fixture f;

    fixture_start(&f);
    /* serve the fixture's request, take its reply */
    g_assert_cmpint(dev_serve(&f), ==, 1);
    g_assert_cmpint(drv_collect(&f), ==, 1);
    g_assert_cmpint(vso_rpc_call(&f.drv, &m, 1, &id), ==, 1);
    g_assert_cmpint(vso_rpc_recv(&f.dev, req, 4), ==, 1);
    rep = (VsoReply){ req[0].id, 7 };
    g_assert_cmpint(vso_rpc_reply(&f.dev, &rep, 1), ==, 1);
    /* the driver queues the same id again, its reply still untaken */
    g_assert_true(ref_enqueue_id(REQ(&f), id));
    g_assert_cmpint(vso_rpc_recv(&f.dev, req, 4), ==, 0);
    g_assert_cmpuint(f.dev.stats.dup_id, ==, 1);
    /* one reply, and the id lent again afterwards is served */
    g_assert_cmpint(drv_collect(&f), ==, 1);
    g_assert_cmpint(drv_collect(&f), ==, 0);
    g_assert_cmpint(vso_rpc_call(&f.drv, &m, 1, &id), ==, 1);
    g_assert_cmpint(vso_rpc_recv(&f.dev, req, 4), ==, 1);
    g_assert_cmpuint(req[0].id, ==, id);
    g_assert_cmpuint(f.dev.stats.dup_id, ==, 1);
    g_free(f.io);
}

/* The fault hook sees each transfer claimed, then committed. */
static void count_fault(VsoQueue *vq, VsoFaultPoint point, unsigned n,
                        void *opaque)
{
    unsigned *seen = opaque;

    seen[point] += n;
    if (point == VSO_FAULT_CLAIMED) {
        /* claimed: our tail moved, our head not yet */
        g_assert_cmpuint(vq->q->cons.tail.pos - vq->q->cons.head.pos, ==, n);
    }
}

static void test_fault_points(void)
{
    unsigned seen[2] = { 0, 0 };
    VsoRequest req[4];
    Fixture f;

    fixture_start(&f);
    f.dev.req.fault = count_fault;
    f.dev.req.fault_opaque = seen;
    g_assert_cmpint(vso_rpc_recv(&f.dev, req, 4), ==, 1);
    g_assert_cmpuint(seen[VSO_FAULT_CLAIMED], ==, 1);
    g_assert_cmpuint(seen[VSO_FAULT_COMMITTED], ==, 1);
    g_free(f.io);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/vso-rpc-hostile/%02u", i);

        g_test_add_data_func(path, &cases[i], test_case);
        if (cases[i].expect < 0 && cases[i].meet != drv_collect &&
            cases[i].meet != drv_recv_events) {
            g_autofree char *rpath =
                g_strdup_printf("/vso-rpc-hostile/resync/%02u", i);

            g_test_add_data_func(rpath, &cases[i], test_resync);
        }
    }
    g_test_add_func("/vso-rpc-hostile/body-fields", test_body_fields);
    g_test_add_func("/vso-rpc-hostile/dup-across-batches",
                    test_dup_across_batches);
    g_test_add_func("/vso-rpc-hostile/fault-points", test_fault_points);
    return g_test_run();
}
