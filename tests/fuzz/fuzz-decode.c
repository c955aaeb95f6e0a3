/*
 * Fuzz target: decode + dispatch decision of one request (lib/sel4_decode.c,
 * what QEMU's accel/sel4/sel4-dispatch.c calls for every request).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Input: byte 0 = number of registered devices (mod 33), bytes 1..4 = which
 * of them are PCIe (4096-byte config space, else 256), byte 5 = size of
 * the buffer the rejection is described into; then 32-byte request bodies.
 * Each body is decided, and a CONFIG route is carried out on a config
 * space allocated at exactly its size (ASan catches any access beyond it)
 * and checked against a plain little-endian load or store.  Every
 * invariant of the decision is checked; a violation aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "sel4/sel4_decode.h"
#include "fuzz-common.h"

typedef struct Devs {
    uint8_t *config[RPC_MAX_PCIDEV];
    uint32_t size[RPC_MAX_PCIDEV];
} Devs;

static uint32_t config_size(void *opaque, unsigned index)
{
    Devs *devs = opaque;

    FUZZ_CHECK(index < RPC_MAX_PCIDEV);
    return devs->size[index];
}

/* What QEMU's sel4_config_access() does, on a plain buffer. */
static uint64_t config_access(const Sel4Decision *d, uint8_t *cfg)
{
    uint64_t data = d->m.write ? d->m.data : 0;
    uint32_t offset;
    unsigned done, len, pieces = 0;

    for (done = 0; (len = sel4_config_next(d, done, &offset)); done += len) {
        uint32_t v = 0;

        FUZZ_CHECK(len <= 4 && offset == d->m.addr + done);
        if (d->m.write) {
            v = sel4_config_piece(data, done, len);
            memcpy(cfg + offset, &v, len);
        } else {
            memcpy(&v, cfg + offset, len);
            data = sel4_config_merge(data, done, v);
        }
        pieces++;
    }
    FUZZ_CHECK(done == d->m.len && pieces == (d->m.len + 3) / 4);
    return data;
}

static void check_one(const rpcmsg_t *msg, const Sel4Devices *sd, Devs *devs,
                      size_t why_size)
{
    Sel4Decision d;
    VsoMmio m;
    VsoRpcError err = vso_rpc_decode(msg, &m);
    uint64_t reply, data, want = 0;
    char *why;

    sel4_decide(msg, sd, &d);
    FUZZ_CHECK((d.reject == SEL4_REJECT_DECODE) == (err != VSO_RPC_OK));
    FUZZ_CHECK((d.route == SEL4_ROUTE_REJECT) ==
               (d.reject != SEL4_REJECT_NONE));
    switch (d.route) {
    case SEL4_ROUTE_REJECT:
        why = malloc(why_size);
        sel4_reject_describe(&d, why, why_size);
        FUZZ_CHECK(strlen(why) < why_size);
        free(why);
        FUZZ_CHECK(*sel4_reject_name(d.reject));
        reply = sel4_reply(&d, true, 0);
        FUZZ_CHECK(reply == UINT64_MAX ||
                   (reply == 0 && d.m.write && d.reject != SEL4_REJECT_DECODE));
        return;
    case SEL4_ROUTE_IGNORE:
        FUZZ_CHECK(d.m.op == QEMU_OP_PUTC_LOG);
        FUZZ_CHECK(sel4_reply(&d, false, 0) == 0);
        return;
    case SEL4_ROUTE_GLOBAL:
        FUZZ_CHECK(d.m.as == AS_GLOBAL && d.m.op == QEMU_OP_MMIO);
        break;
    case SEL4_ROUTE_CONFIG:
        FUZZ_CHECK(d.m.as < sd->n && d.m.op == QEMU_OP_MMIO);
        FUZZ_CHECK(d.limit == devs->size[d.m.as]);
        FUZZ_CHECK(d.m.addr + d.m.len <= d.limit);
        data = config_access(&d, devs->config[d.m.as]);
        memcpy(&want, devs->config[d.m.as] + d.m.addr, d.m.len);
        /* a write leaves its data there; a read returns what is there */
        FUZZ_CHECK(data == want);
        break;
    }
    FUZZ_CHECK(d.m.len == 1 || d.m.len == 2 || d.m.len == 4 || d.m.len == 8);
    FUZZ_CHECK(d.m.len == 8 || d.m.data >> (d.m.len * 8) == 0);
    reply = sel4_reply(&d, true, msg->mr2);
    if (d.m.write) {
        FUZZ_CHECK(reply == 0 && sel4_reply(&d, false, 0) == 0);
    } else {
        FUZZ_CHECK(d.m.len == 8 || reply >> (d.m.len * 8) == 0);
        FUZZ_CHECK(sel4_reply(&d, false, 0) == UINT64_MAX);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Devs devs = { 0 };
    Sel4Devices sd = { .config_size = config_size, .opaque = &devs };
    uint32_t pcie = 0;
    size_t why_size, off;
    unsigned i;

    if (size < 6) {
        return 0;
    }
    sd.n = data[0] % (RPC_MAX_PCIDEV + 1);
    memcpy(&pcie, data + 1, 4);
    why_size = data[5] % 160 + 1;
    for (i = 0; i < sd.n; i++) {
        devs.size[i] = pcie & (1u << i) ? 4096 : 256;
        devs.config[i] = malloc(devs.size[i]);
        memset(devs.config[i], i, devs.size[i]);
    }
    for (off = 6; off < size; off += sizeof(rpcmsg_t)) {
        rpcmsg_t msg = { 0 };

        memcpy(&msg, data + off, FUZZ_MIN(size - off, sizeof(msg)));
        check_one(&msg, &sd, &devs, why_size);
    }
    for (i = 0; i < sd.n; i++) {
        free(devs.config[i]);
    }
    return 0;
}
