/*
 * vso_rpc wire protocol between the seL4 VMM (driver side) and the device
 * model in the device VM (device side).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * This header only describes bytes in shared memory; the algorithms that
 * move them live in lib/vso_rpc.c.  The layout is the one of the deployed
 * seL4 virtio stack ("v3"), which we must stay byte-compatible with so that
 * a deployment can swap its QEMU for ours.  Every size and offset is pinned
 * by a static assertion below; see docs/protocol.md for the prose.
 *
 *   iobuf (2 pages, 2432 bytes used)
 *   +0x000  buffers[0]   32 x rpcmsg_t  RPC bodies, indexed by message id
 *   +0x400  buffers[1]   32 x rpcmsg_t  event bodies, indexed by ring position
 *   +0x800  queues[0]    drvrpc_req      VMM -> device VM
 *   +0x860  queues[1]    drvrpc_req_dev  device-VM kernel -> QEMU (/dev/sel4)
 *   +0x8c0  queues[2]    drvrpc_resp     replies -> VMM
 *   +0x920  queues[3]    devevt          events -> VMM
 *
 * A queue is a ring of 32 u16 message ids plus two bounds (producer and
 * consumer), each bound a {tail, head} pair of 64-bit markers.  A side
 * claims entries by CASing its tail forward and publishes them by
 * committing on its head; see lib/vso_rpc.c for the exact algorithm.
 */
#ifndef SEL4_RPC_H
#define SEL4_RPC_H

#include <stddef.h>
#include <stdint.h>

/* One message: four machine words, native (little) endian. */
typedef struct rpcmsg {
    uint64_t mr0;
    uint64_t mr1;
    uint64_t mr2;
    uint64_t mr3;
} rpcmsg_t;

#define RPCMSG_BUFFER_SIZE  32u
#define RPCMSG_BUFFER_MASK  (RPCMSG_BUFFER_SIZE - 1)
/* A side waits while its tail runs more than this ahead of its head. */
#define RPCMSG_HTD_MAX      (RPCMSG_BUFFER_SIZE / 4)

typedef struct rpcmsg_buffer {
    rpcmsg_t messages[RPCMSG_BUFFER_SIZE];
} rpcmsg_buffer_t;

/*
 * A marker is read and CASed as one 64-bit word; pos is the low word on
 * the little-endian machines this runs on.  Positions are free running.
 * A side publishes with a release before its head moves and reads the
 * other side's head with acquire: on a weakly ordered CPU (arm64) that is
 * what makes ring entries and bodies visible in time (lib/vso_rpc.c,
 * "Memory ordering", lists the pairs).
 */
typedef union rpcmsg_marker {
    uint64_t raw;
    struct {
        uint32_t pos;
        uint32_t count;
    };
} rpcmsg_marker_t;

typedef struct rpcmsg_queue_bound {
    rpcmsg_marker_t tail;
    rpcmsg_marker_t head;
} rpcmsg_queue_bound_t;

typedef struct rpcmsg_queue {
    rpcmsg_queue_bound_t prod;
    rpcmsg_queue_bound_t cons;
    uint16_t ring[RPCMSG_BUFFER_SIZE];
} rpcmsg_queue_t;

enum rpcmsg_iobuf_id {
    RPC_IOBUF_DRVRPC = 0,       /* RPC bodies, indexed by message id */
    RPC_IOBUF_DEVEVT = 1,       /* event bodies, indexed by ring position */
    RPC_IOBUF_COUNT
};

enum rpcmsg_queue_id {
    RPC_QUEUE_DRVRPC_REQ = 0,   /* VMM -> device VM */
    RPC_QUEUE_DRVRPC_REQ_DEV,   /* device-VM kernel -> QEMU (/dev/sel4 only) */
    RPC_QUEUE_DRVRPC_RESP,      /* device VM -> VMM, replies */
    RPC_QUEUE_DEVEVT,           /* device VM -> VMM, events */
    RPC_QUEUE_COUNT
};

typedef struct rpcmsg_iobuf {
    rpcmsg_buffer_t buffers[RPC_IOBUF_COUNT];
    rpcmsg_queue_t queues[RPC_QUEUE_COUNT];
} rpcmsg_iobuf_t;

#define RPC_IOBUF_PAGES     2
#define RPC_IOBUF_SIZE      (RPC_IOBUF_PAGES * 4096)

/* ---- mr0 of an MMIO request (bits 63..25 are zero) ---- */

#define RPC_MR0_OP_SHIFT        0
#define RPC_MR0_OP_WIDTH        6
#define RPC_MR0_SLOT_SHIFT      6       /* the VMM's waiter id, echoed back */
#define RPC_MR0_SLOT_WIDTH      6
#define RPC_MR0_DIR_SHIFT       12
#define RPC_MR0_DIR_WIDTH       1
#define RPC_MR0_AS_SHIFT        13
#define RPC_MR0_AS_WIDTH        8
#define RPC_MR0_LEN_SHIFT       21
#define RPC_MR0_LEN_WIDTH       4
#define RPC_MR0_USED_BITS       25

#define RPC_FIELD_MASK(f)       ((UINT64_C(1) << RPC_MR0_##f##_WIDTH) - 1)
#define RPC_MR0_GET(mr0, f) \
    (((uint64_t)(mr0) >> RPC_MR0_##f##_SHIFT) & RPC_FIELD_MASK(f))
#define RPC_MR0_SET(mr0, f, v) \
    (((uint64_t)(mr0) & ~(RPC_FIELD_MASK(f) << RPC_MR0_##f##_SHIFT)) | \
     (((uint64_t)(v) & RPC_FIELD_MASK(f)) << RPC_MR0_##f##_SHIFT))

/* Opcodes, VMM -> device VM */
#define QEMU_OP_MMIO                0
#define QEMU_OP_PUTC_LOG            2
/* Opcodes, device VM -> VMM */
#define QEMU_OP_SET_IRQ             16
#define QEMU_OP_START_VM            18
#define QEMU_OP_REGISTER_PCI_DEV    19
#define QEMU_OP_MMIO_REGION_CONFIG  20

#define RPC_MR0_MMIO_DIRECTION_READ     0
#define RPC_MR0_MMIO_DIRECTION_WRITE    1

/* Address spaces: 0xff is guest-physical, n < 32 is the n-th PCI device. */
#define AS_GLOBAL               0xffu
#define AS_PCIDEV(n)            ((unsigned)(n))
#define RPC_MAX_PCIDEV          32u

/* Waiter slots as the deployed VMM uses them (informational only). */
#define RPC_SLOT_VCPU_MAX       15u
#define RPC_SLOT_VMM_BASE       16u

/* SET_IRQ levels (mr2) */
#define RPC_IRQ_CLR             0
#define RPC_IRQ_SET             1
#define RPC_IRQ_PULSE           2

/* MMIO_REGION_CONFIG flags (mr3) */
#define RPC_MMIO_REGION_FREE    1

static inline uint64_t rpc_mr0_mmio(unsigned dir, unsigned as, unsigned slot,
                                    unsigned len)
{
    uint64_t mr0 = RPC_MR0_SET(0, OP, QEMU_OP_MMIO);

    mr0 = RPC_MR0_SET(mr0, SLOT, slot);
    mr0 = RPC_MR0_SET(mr0, DIR, dir);
    mr0 = RPC_MR0_SET(mr0, AS, as);
    return RPC_MR0_SET(mr0, LEN, len);
}

static inline uint64_t rpc_mr0_op(unsigned op)
{
    return RPC_MR0_SET(0, OP, op);
}

/* ---- the layout, pinned ---- */

_Static_assert(sizeof(rpcmsg_t) == 32, "rpcmsg_t is four words");
_Static_assert(sizeof(rpcmsg_marker_t) == 8, "marker is one 64-bit word");
_Static_assert(offsetof(rpcmsg_marker_t, pos) == 0, "pos is the low word");
_Static_assert(offsetof(rpcmsg_marker_t, count) == 4, "count is the high word");
_Static_assert(sizeof(rpcmsg_buffer_t) == 0x400, "32 messages");
_Static_assert(offsetof(rpcmsg_queue_t, prod.tail) == 0, "prod.tail");
_Static_assert(offsetof(rpcmsg_queue_t, prod.head) == 8, "prod.head");
_Static_assert(offsetof(rpcmsg_queue_t, cons.tail) == 16, "cons.tail");
_Static_assert(offsetof(rpcmsg_queue_t, cons.head) == 24, "cons.head");
_Static_assert(offsetof(rpcmsg_queue_t, ring) == 32, "ring");
_Static_assert(sizeof(rpcmsg_queue_t) == 0x60, "queue is 96 bytes");
_Static_assert(offsetof(rpcmsg_iobuf_t, buffers[1]) == 0x400, "buffers[1]");
_Static_assert(offsetof(rpcmsg_iobuf_t, queues[0]) == 0x800, "drvrpc_req");
_Static_assert(offsetof(rpcmsg_iobuf_t, queues[1]) == 0x860, "drvrpc_req_dev");
_Static_assert(offsetof(rpcmsg_iobuf_t, queues[2]) == 0x8c0, "drvrpc_resp");
_Static_assert(offsetof(rpcmsg_iobuf_t, queues[3]) == 0x920, "devevt");
_Static_assert(sizeof(rpcmsg_iobuf_t) == 2432, "2432 bytes of the iobuf used");
_Static_assert(sizeof(rpcmsg_iobuf_t) <= RPC_IOBUF_SIZE, "fits two pages");
_Static_assert((RPCMSG_BUFFER_SIZE & RPCMSG_BUFFER_MASK) == 0, "power of two");

#endif /* SEL4_RPC_H */
