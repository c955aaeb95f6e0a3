/*
 * sel4_decode: what the device side does with one request from the queue.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The decode/validate/route step of QEMU's sel4 accelerator
 * (accel/sel4/sel4-dispatch.c), as plain C without QEMU headers, so that
 * the fuzz targets (tests/fuzz/) run exactly the code QEMU runs.  Given a
 * request body copied out of shared memory and the registered devices,
 * sel4_decide() says which access to make, if any, with every bound
 * checked; the caller only performs it (QEMU's memory and PCI APIs) and
 * turns the outcome into the reply with sel4_reply().
 *
 * Replies (mr2): a read answers its data masked to its length; a write
 * answers 0; a read that is rejected or whose access failed answers
 * all-ones; a write that is rejected or fails is dropped and answers 0; a
 * body that does not decode answers all-ones.  The rest of the body (mr0
 * with SLOT) is never written.
 */
#ifndef SEL4_DECODE_H
#define SEL4_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sel4/rpc.h"
#include "sel4/vso_rpc.h"

typedef enum Sel4Route {
    SEL4_ROUTE_REJECT,          /* no access; d->reject says why */
    SEL4_ROUTE_IGNORE,          /* PUTC_LOG: answered, not acted on */
    SEL4_ROUTE_GLOBAL,          /* guest-physical m.addr, m.len bytes */
    SEL4_ROUTE_CONFIG,          /* config space of device m.as, in bounds */
} Sel4Route;

typedef enum Sel4Reject {
    SEL4_REJECT_NONE,
    SEL4_REJECT_DECODE,         /* the body itself: d->err */
    SEL4_REJECT_UNREGISTERED,   /* AS_PCIDEV(n), n not registered */
    SEL4_REJECT_CONFIG_RANGE,   /* beyond the device's config space */
} Sel4Reject;

/*
 * The devices registered with REGISTER_PCI_DEV, indices 0..n-1.
 * config_size(opaque, i) is the size of device i's config space (256 or
 * 4096); it is only called for i < n.
 */
typedef struct Sel4Devices {
    unsigned n;
    uint32_t (*config_size)(void *opaque, unsigned index);
    void *opaque;
} Sel4Devices;

typedef struct Sel4Decision {
    Sel4Route route;
    Sel4Reject reject;
    VsoRpcError err;            /* for SEL4_REJECT_DECODE */
    VsoMmio m;                  /* decoded fields (valid unless DECODE) */
    uint64_t mr0;               /* as received, for messages */
    uint32_t limit;             /* config space size, for CONFIG routes */
} Sel4Decision;

/* Decide what to do with @msg (a local copy).  Pure: no side effects. */
void sel4_decide(const rpcmsg_t *msg, const Sel4Devices *devs,
                 Sel4Decision *d);

/*
 * The reply's mr2: @ok says whether the access succeeded (ignored for
 * REJECT and IGNORE), @data is what a read returned.
 */
uint64_t sel4_reply(const Sel4Decision *d, bool ok, uint64_t data);

/*
 * Config space is accessed at most 4 bytes at a time: the piece of a
 * CONFIG access starting @done bytes in.  Returns its length (0 once the
 * access is complete) and sets *@offset.  Read data is assembled with
 * sel4_config_merge(); write data of a piece is sel4_config_piece().
 */
unsigned sel4_config_next(const Sel4Decision *d, unsigned done,
                          uint32_t *offset);
uint64_t sel4_config_merge(uint64_t data, unsigned done, uint64_t piece);
uint64_t sel4_config_piece(uint64_t data, unsigned done, unsigned len);

/*
 * Why a REJECT was rejected, for the -d guest_errors line, and a short
 * name for counters and traces.
 */
void sel4_reject_describe(const Sel4Decision *d, char *buf, size_t size);
const char *sel4_reject_name(Sel4Reject reject);

#endif /* SEL4_DECODE_H */
