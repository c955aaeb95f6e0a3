/*
 * sel4_decode: the device side's decode/validate/route step.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Compiled into QEMU (accel/sel4/meson.build) and into the fuzz targets;
 * see include/sel4/sel4_decode.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sel4/sel4_decode.h"

/* Config space accesses are at most this wide: split wider ones. */
#define SEL4_CONFIG_PIECE   4u

void sel4_decide(const rpcmsg_t *msg, const Sel4Devices *devs,
                 Sel4Decision *d)
{
    memset(d, 0, sizeof(*d));
    d->mr0 = msg->mr0;
    d->route = SEL4_ROUTE_REJECT;
    d->err = vso_rpc_decode(msg, &d->m);
    if (d->err != VSO_RPC_OK) {
        d->reject = SEL4_REJECT_DECODE;
        return;
    }
    if (d->m.op == QEMU_OP_PUTC_LOG) {
        /* defined by the protocol, used by no VMM: answer, don't act */
        d->route = SEL4_ROUTE_IGNORE;
        return;
    }
    if (d->m.as == AS_GLOBAL) {
        /* the memory API checks the address: holes fail the access */
        d->route = SEL4_ROUTE_GLOBAL;
        return;
    }
    if (d->m.as >= devs->n) {
        d->reject = SEL4_REJECT_UNREGISTERED;
        return;
    }
    d->limit = devs->config_size(devs->opaque, d->m.as);
    if (d->m.addr >= d->limit || d->m.len > d->limit - d->m.addr) {
        d->reject = SEL4_REJECT_CONFIG_RANGE;
        return;
    }
    d->route = SEL4_ROUTE_CONFIG;
}

uint64_t sel4_reply(const Sel4Decision *d, bool ok, uint64_t data)
{
    switch (d->route) {
    case SEL4_ROUTE_IGNORE:
        return 0;
    case SEL4_ROUTE_GLOBAL:
    case SEL4_ROUTE_CONFIG:
        if (d->m.write) {
            return 0;               /* done, or dropped */
        }
        if (!ok) {
            return UINT64_MAX;
        }
        return d->m.len == 8 ? data
                             : data & ((UINT64_C(1) << (d->m.len * 8)) - 1);
    default:
        /* a write that decoded is dropped like a failed one */
        return d->reject != SEL4_REJECT_DECODE && d->m.write ? 0
                                                             : UINT64_MAX;
    }
}

unsigned sel4_config_next(const Sel4Decision *d, unsigned done,
                          uint32_t *offset)
{
    unsigned left;

    if (d->route != SEL4_ROUTE_CONFIG || done >= d->m.len) {
        return 0;
    }
    left = d->m.len - done;
    /* in bounds: sel4_decide() checked addr + len <= limit <= 4096 */
    *offset = (uint32_t)d->m.addr + done;
    return left < SEL4_CONFIG_PIECE ? left : SEL4_CONFIG_PIECE;
}

uint64_t sel4_config_merge(uint64_t data, unsigned done, uint64_t piece)
{
    return data | (piece << (done * 8));
}

uint64_t sel4_config_piece(uint64_t data, unsigned done, unsigned len)
{
    uint64_t v = data >> (done * 8);

    return len >= 8 ? v : v & ((UINT64_C(1) << (len * 8)) - 1);
}

const char *sel4_reject_name(Sel4Reject reject)
{
    static const char *const names[] = {
        [SEL4_REJECT_NONE] = "none",
        [SEL4_REJECT_DECODE] = "decode",
        [SEL4_REJECT_UNREGISTERED] = "unregistered",
        [SEL4_REJECT_CONFIG_RANGE] = "config_range",
    };

    return (unsigned)reject < sizeof(names) / sizeof(names[0]) ?
           names[reject] : "unknown";
}

void sel4_reject_describe(const Sel4Decision *d, char *buf, size_t size)
{
    switch (d->reject) {
    case SEL4_REJECT_DECODE:
        snprintf(buf, size, "bad request mr0=0x%" PRIx64 ": %s", d->mr0,
                 vso_rpc_strerror(d->err));
        break;
    case SEL4_REJECT_UNREGISTERED:
        snprintf(buf, size, "config access to unregistered device %u",
                 d->m.as);
        break;
    case SEL4_REJECT_CONFIG_RANGE:
        snprintf(buf, size, "config access of device %u at 0x%" PRIx64
                 " len %u beyond its 0x%x bytes", d->m.as, d->m.addr,
                 d->m.len, d->limit);
        break;
    default:
        snprintf(buf, size, "request mr0=0x%" PRIx64 " not rejected",
                 d->mr0);
        break;
    }
}
