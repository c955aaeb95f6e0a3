/*
 * Fuzz target: the simulated VMM taking what QEMU wrote (replies on
 * drvrpc_resp, events on devevt) from an iobuf the fuzzer writes, and its
 * parse of each event (lib/vmm/vmm_sim_events.c).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Input: bytes 0..3 = message ids the VMM has lent (requests waiting for a
 * reply), bytes 4..7 = which of those it gave up on; then 2432 bytes of
 * iobuf (zero-filled when short); then a script, one opcode byte each:
 *
 *   0  take every reply and event (vmm_sim_take(), what vmm_sim_poll() does)
 *   1  poke: the device side writes 1, 2, 4 or 8 bytes of the iobuf
 *   2  one event body (the next 32 bytes) straight to the parser
 *
 * Checked: what was taken is what the counters say; the protocol error
 * counters add up; the registration and region tables stay within their
 * bounds and consistent; a reply completes only a request that waited.
 */
#include <string.h>

#include "vmm_sim_int.h"
#include "fuzz-common.h"

#define HDR     8

static void check_state(const VmmSim *sim)
{
    const VmmSimStats *st = &sim->stats;
    unsigned i, n = 0;

    FUZZ_CHECK(st->protocol_errors >= st->unknown_ops + st->bad_registrations +
                                      st->bad_irqs + st->bad_replies);
    FUZZ_CHECK(sim->ndevs <= RPC_MAX_PCIDEV);
    FUZZ_CHECK(sim->nregions <= VMM_SIM_MAX_REGIONS);
    for (i = 0; i < RPC_MAX_PCIDEV; i++) {
        int at = sim->dev_by_index[i];

        if (at >= 0) {
            FUZZ_CHECK((unsigned)at < sim->ndevs);
            FUZZ_CHECK(sim->devs[at].index == i);
            n++;
        }
    }
    FUZZ_CHECK(n == sim->ndevs);
    for (i = 0; i < sim->nregions; i++) {
        FUZZ_CHECK(sim->mmio_regions[i].size != 0);
    }
}

static void parse_one(VmmSim *sim, FuzzInput *in)
{
    rpcmsg_t msg;
    VmmSimEvent ev;
    uint64_t errors = sim->stats.protocol_errors;
    bool ok;

    msg.mr0 = fuzz_bytes(in, 8);
    msg.mr1 = fuzz_bytes(in, 8);
    msg.mr2 = fuzz_bytes(in, 8);
    msg.mr3 = fuzz_bytes(in, 8);
    ok = vmm_sim_parse_event(&msg, &ev);
    switch (ev.kind) {
    case VMM_SIM_EV_BAD:
    case VMM_SIM_EV_UNKNOWN:
        FUZZ_CHECK(!ok);
        break;
    case VMM_SIM_EV_REGISTER:
        FUZZ_CHECK(ok == (ev.index < RPC_MAX_PCIDEV));
        break;
    case VMM_SIM_EV_SET_IRQ:
        FUZZ_CHECK(!ok || (ev.irq < VMM_SIM_MAX_IRQ &&
                           ev.level <= RPC_IRQ_PULSE));
        break;
    case VMM_SIM_EV_REGION:
        FUZZ_CHECK(!ok || (ev.size && ev.base + ev.size >= ev.base));
        break;
    default:
        break;
    }
    vmm_sim_handle_event(sim, &msg);
    /* a message bad whatever the state is always counted */
    FUZZ_CHECK(ok || sim->stats.protocol_errors == errors + 1);
    FUZZ_CHECK(sim->stats.protocol_errors <= errors + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const VmmSimConfig cfg = { .socket_path = "fuzz" };
    FuzzInput in = { data, size, HDR + sizeof(rpcmsg_iobuf_t) };
    VmmSimAccess acc[RPCMSG_BUFFER_SIZE] = { 0 };
    VmmSimBatch batch = { .acc = acc };
    uint32_t lent, abandoned;
    unsigned steps = 0, waiting = 0;
    rpcmsg_iobuf_t *io;
    VmmSim *sim;

    if (size < HDR) {
        return 0;
    }
    memcpy(&lent, data, 4);
    memcpy(&abandoned, data + 4, 4);
    io = calloc(1, sizeof(*io));
    memcpy(io, data + HDR, FUZZ_MIN(size - HDR, sizeof(*io)));
    sim = calloc(1, sizeof(*sim));
    vmm_sim_state_init(sim, &cfg);
    FUZZ_CHECK(vso_rpc_init(&sim->rpc, io, sizeof(*io), VSO_RPC_DRIVER,
                            RPC_QUEUE_DRVRPC_REQ) == 0);
    /* the requests in flight, as vmm_sim_mmio_batch() leaves them */
    sim->rpc.owned = lent;
    for (unsigned id = 0; id < RPCMSG_BUFFER_SIZE; id++) {
        VmmSimPending *p = &sim->pending[id];

        if (!(lent & (1u << id))) {
            continue;
        }
        p->mr0 = io->buffers[RPC_IOBUF_DRVRPC].messages[id].mr0;
        acc[id].len = 1u << (id & 3);
        if (abandoned & (1u << id)) {
            p->state = VMM_SIM_ABANDONED;
        } else {
            p->state = VMM_SIM_WAITING;
            p->batch = &batch;
            p->idx = id;
            waiting++;
        }
    }
    if (!fuzz_more(&in)) {
        vmm_sim_take(sim);
    }
    while (fuzz_more(&in) && steps++ < 256) {
        uint64_t before = sim->stats.events + sim->stats.replies;
        int taken;

        switch (fuzz_u8(&in) % 3) {
        case 0:
            taken = vmm_sim_take(sim);
            FUZZ_CHECK(taken >= 0 && sim->stats.events + sim->stats.replies ==
                                     before + (uint64_t)taken);
            break;
        case 1: {
            static const unsigned widths[] = { 1, 2, 4, 8 };
            unsigned width = widths[fuzz_u8(&in) & 3];
            size_t off = fuzz_bytes(&in, 2) % (sizeof(*io) - width + 1);
            uint64_t v = fuzz_bytes(&in, width);

            memcpy((uint8_t *)io + off, &v, width);
            break;
        }
        default:
            parse_one(sim, &in);
            break;
        }
        check_state(sim);
        FUZZ_CHECK(batch.done <= waiting);
    }
    check_state(sim);
    free(sim);
    free(io);
    return 0;
}
