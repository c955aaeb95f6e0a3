/*
 * Fuzz target: the device side's queues (lib/vso_rpc.c) over an iobuf
 * whose headers, rings and bodies the fuzzer writes, before and between
 * the calls QEMU makes (a peer rewriting a queue mid-batch).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Input: the first 2432 bytes are the iobuf as the peer left it (shorter
 * inputs are zero-filled); the rest is a script, one opcode byte each:
 *
 *   0  receive up to N requests (N: next byte), decide each (sel4_decide)
 *   1  reply to every request received and not yet answered
 *   2  poke: the peer writes 1, 2, 4 or 8 bytes at an offset of the iobuf
 *   3  send N events
 *   4  look at the request queue's pending count
 *   5  attach again: recover our side of each queue (a restarted QEMU)
 *
 * The iobuf is allocated at its exact size, so ASan flags any access
 * beyond it.  Checked: counts stay within what was asked, received ids
 * are < 32 and never held twice, a broken queue stays broken until it is
 * resynchronised as QEMU does (sel4-dispatch.c), after which it works, and
 * no call waits unboundedly (the fuzz build shortens the bounded waits).
 */
#include <errno.h>
#include <string.h>

#include "sel4/sel4_decode.h"
#include "fuzz-common.h"

#define N_DEVS  3

static uint32_t config_size(void *opaque, unsigned index)
{
    return index ? 4096 : 256;
}

typedef struct State {
    rpcmsg_iobuf_t *io;
    VsoRpc dev;
    VsoReply held[RPCMSG_BUFFER_SIZE];  /* received, not yet answered */
    unsigned n_held;
} State;

/*
 * After a failed call: a broken queue stays broken until QEMU's answer,
 * a resync to the peer's marker, which leaves a working queue.
 */
static void check_and_resync(VsoQueue *q, bool was, int ret, bool producer)
{
    int32_t abandoned;

    FUZZ_CHECK(!was || q->broken);
    if (q->broken) {
        /* a call with nothing to move does not look at the queue */
        FUZZ_CHECK(ret == -EPIPE || ret == 0);
        FUZZ_CHECK(vso_queue_pending(q) == -EPIPE);
    }
    if (ret >= 0) {
        return;
    }
    FUZZ_CHECK(vso_queue_resync(q, producer, &abandoned) == 0);
    FUZZ_CHECK(!q->broken);
    /* the consumer starts at the producer's head: nothing pending */
    FUZZ_CHECK(producer || vso_queue_pending(q) == 0);
}

static void op_recv(State *s, unsigned max)
{
    const Sel4Devices devs = { .n = N_DEVS, .config_size = config_size };
    VsoRequest reqs[RPCMSG_BUFFER_SIZE];
    bool was = s->dev.req.broken;
    int n = vso_rpc_recv(&s->dev, reqs, max);

    FUZZ_CHECK(n == -EPIPE || n == -EAGAIN || (n >= 0 && n <= (int)max &&
               n <= (int)RPCMSG_BUFFER_SIZE));
    check_and_resync(&s->dev.req, was, n, false);
    for (int i = 0; i < n; i++) {
        Sel4Decision d;

        FUZZ_CHECK(reqs[i].id < RPCMSG_BUFFER_SIZE);
        for (unsigned j = 0; j < s->n_held; j++) {
            FUZZ_CHECK(s->held[j].id != reqs[i].id);
        }
        sel4_decide(&reqs[i].msg, &devs, &d);
        FUZZ_CHECK(s->n_held < RPCMSG_BUFFER_SIZE);
        s->held[s->n_held].id = reqs[i].id;
        s->held[s->n_held++].data = sel4_reply(&d, false, 0);
    }
    FUZZ_CHECK(vso_rpc_owned(&s->dev) == s->n_held);
}

static void op_reply(State *s)
{
    bool was = s->dev.resp.broken;
    int n = vso_rpc_reply(&s->dev, s->held, s->n_held);

    check_and_resync(&s->dev.resp, was, n, true);
    FUZZ_CHECK(n == -EPIPE || n == -EAGAIN ||
               (n >= 0 && n <= (int)s->n_held));
    if (n > 0) {
        memmove(s->held, s->held + n, (s->n_held - n) * sizeof(s->held[0]));
        s->n_held -= n;
    }
    FUZZ_CHECK(vso_rpc_owned(&s->dev) == s->n_held);
}

static void op_poke(State *s, FuzzInput *in)
{
    static const unsigned widths[] = { 1, 2, 4, 8 };
    unsigned width = widths[fuzz_u8(in) & 3];
    size_t off = fuzz_bytes(in, 2) % (sizeof(*s->io) - width + 1);
    uint64_t v = fuzz_bytes(in, width);

    memcpy((uint8_t *)s->io + off, &v, width);
}

static void op_events(State *s, unsigned n)
{
    rpcmsg_t msgs[40];
    bool was = s->dev.evt.broken;
    int sent;

    for (unsigned i = 0; i < n; i++) {
        msgs[i] = (rpcmsg_t){ rpc_mr0_op(QEMU_OP_SET_IRQ), i, RPC_IRQ_PULSE };
    }
    sent = vso_rpc_send_events(&s->dev, msgs, n);
    check_and_resync(&s->dev.evt, was, sent, true);
    FUZZ_CHECK(sent == -EPIPE || sent == -EAGAIN ||
               (sent >= 0 && sent <= (int)n));
}

static void op_recover(State *s)
{
    int r;

    r = vso_queue_recover(&s->dev.req, false);
    FUZZ_CHECK(r == -EPIPE || (r >= 0 && r <= (int)RPCMSG_BUFFER_SIZE));
    r = vso_queue_recover(&s->dev.resp, true);
    FUZZ_CHECK(r == -EPIPE || (r >= 0 && r <= (int)RPCMSG_BUFFER_SIZE));
    r = vso_queue_recover(&s->dev.evt, true);
    FUZZ_CHECK(r == -EPIPE || (r >= 0 && r <= (int)RPCMSG_BUFFER_SIZE));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, sizeof(rpcmsg_iobuf_t) };
    State s = { 0 };
    unsigned steps = 0;
    int pending;

    /* exactly its size: ASan flags any access beyond it */
    s.io = calloc(1, sizeof(*s.io));
    memcpy(s.io, data, FUZZ_MIN(size, sizeof(*s.io)));
    FUZZ_CHECK(vso_rpc_init(&s.dev, s.io, sizeof(*s.io), VSO_RPC_DEVICE,
                            RPC_QUEUE_DRVRPC_REQ) == 0);
    /* with no script: what QEMU does on its first doorbell */
    if (!fuzz_more(&in)) {
        op_recover(&s);
        op_recv(&s, RPCMSG_BUFFER_SIZE);
        op_reply(&s);
        op_events(&s, 2);
    }
    while (fuzz_more(&in) && steps++ < 256) {
        switch (fuzz_u8(&in) % 6) {
        case 0:
            op_recv(&s, fuzz_u8(&in) % (RPCMSG_BUFFER_SIZE + 1));
            break;
        case 1:
            op_reply(&s);
            break;
        case 2:
            op_poke(&s, &in);
            break;
        case 3:
            op_events(&s, fuzz_u8(&in) % 41);
            break;
        case 4:
            pending = vso_queue_pending(&s.dev.req);
            FUZZ_CHECK(pending == -EPIPE ||
                       (pending >= 0 && pending <= (int)RPCMSG_BUFFER_SIZE));
            break;
        default:
            op_recover(&s);
            break;
        }
    }
    free(s.io);
    return 0;
}
