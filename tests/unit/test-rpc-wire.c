/*
 * The wire format of include/sel4/rpc.h, byte for byte.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "sel4/rpc.h"
#include "sel4/vso_rpc.h"

/* The example encodings of protocol.md. */
static void test_mr0_vectors(void)
{
    g_assert_cmphex(rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_WRITE, AS_GLOBAL, 0, 4),
                    ==, 0x9FF000);
    g_assert_cmphex(rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, AS_PCIDEV(1), 16, 4),
                    ==, 0x802400);
    g_assert_cmphex(rpc_mr0_op(QEMU_OP_SET_IRQ), ==, 16);
    g_assert_cmphex(rpc_mr0_op(QEMU_OP_REGISTER_PCI_DEV), ==, 19);
}

typedef struct FieldCase {
    const char *name;
    unsigned shift, width;
} FieldCase;

static const FieldCase fields[] = {
    { "OP", RPC_MR0_OP_SHIFT, RPC_MR0_OP_WIDTH },
    { "SLOT", RPC_MR0_SLOT_SHIFT, RPC_MR0_SLOT_WIDTH },
    { "DIR", RPC_MR0_DIR_SHIFT, RPC_MR0_DIR_WIDTH },
    { "AS", RPC_MR0_AS_SHIFT, RPC_MR0_AS_WIDTH },
    { "LEN", RPC_MR0_LEN_SHIFT, RPC_MR0_LEN_WIDTH },
};

static uint64_t field_get(uint64_t mr0, unsigned i)
{
    switch (i) {
    case 0: return RPC_MR0_GET(mr0, OP);
    case 1: return RPC_MR0_GET(mr0, SLOT);
    case 2: return RPC_MR0_GET(mr0, DIR);
    case 3: return RPC_MR0_GET(mr0, AS);
    default: return RPC_MR0_GET(mr0, LEN);
    }
}

static uint64_t field_set(uint64_t mr0, unsigned i, uint64_t v)
{
    switch (i) {
    case 0: return RPC_MR0_SET(mr0, OP, v);
    case 1: return RPC_MR0_SET(mr0, SLOT, v);
    case 2: return RPC_MR0_SET(mr0, DIR, v);
    case 3: return RPC_MR0_SET(mr0, AS, v);
    default: return RPC_MR0_SET(mr0, LEN, v);
    }
}

/* Every field at 0, 1, max and max+1, over a background of ones. */
static void test_mr0_fields(void)
{
    unsigned used = 0;

    for (unsigned i = 0; i < G_N_ELEMENTS(fields); i++) {
        uint64_t max = (UINT64_C(1) << fields[i].width) - 1;
        uint64_t mask = max << fields[i].shift;
        uint64_t values[] = { 0, 1, max, max - 1 };

        g_assert_cmpuint(used & mask, ==, 0);   /* fields don't overlap */
        used |= mask;
        for (unsigned v = 0; v < G_N_ELEMENTS(values); v++) {
            uint64_t ones = (UINT64_C(1) << RPC_MR0_USED_BITS) - 1;
            uint64_t mr0 = field_set(ones, i, values[v]);

            g_assert_cmphex(field_get(mr0, i), ==, values[v]);
            /* The other fields are untouched. */
            g_assert_cmphex(mr0 | mask, ==, ones);
            g_assert_cmphex(field_get(field_set(0, i, values[v]), i), ==,
                            values[v]);
        }
        /* A value too wide is cut to the field, never spills over. */
        g_assert_cmphex(field_set(0, i, max + 1), ==, 0);
    }
    g_assert_cmphex(used, ==, (UINT64_C(1) << RPC_MR0_USED_BITS) - 1);
}

static void test_mmio_roundtrip(void)
{
    static const unsigned lens[] = { 1, 2, 4, 8 };

    for (unsigned dir = 0; dir <= 1; dir++) {
        for (unsigned as = 0; as <= 0xff; as++) {
            for (unsigned slot = 0; slot < 64; slot += 21) {
                for (unsigned l = 0; l < 4; l++) {
                    rpcmsg_t m = {
                        .mr0 = rpc_mr0_mmio(dir, as, slot, lens[l]),
                        .mr1 = 0x8000000000ull + as,
                        .mr2 = ~UINT64_C(0),
                    };
                    VsoMmio d;
                    VsoRpcError err = vso_rpc_decode(&m, &d);

                    g_assert_cmpuint(d.op, ==, QEMU_OP_MMIO);
                    g_assert_cmpuint(d.write, ==, dir);
                    g_assert_cmpuint(d.as, ==, as);
                    g_assert_cmpuint(d.slot, ==, slot);
                    g_assert_cmpuint(d.len, ==, lens[l]);
                    g_assert_cmphex(d.addr, ==, m.mr1);
                    g_assert_cmphex(d.data, ==, lens[l] == 8 ? ~UINT64_C(0) :
                                    (UINT64_C(1) << (lens[l] * 8)) - 1);
                    g_assert_cmpint(err, ==, as == AS_GLOBAL || as < 32 ?
                                    VSO_RPC_OK : VSO_RPC_EBADAS);
                }
            }
        }
    }
}

/* The layout as seen through a real two-page buffer, byte by byte. */
static void test_iobuf_bytes(void)
{
    g_autofree uint8_t *page = g_malloc0(RPC_IOBUF_SIZE);
    rpcmsg_iobuf_t *io = (rpcmsg_iobuf_t *)page;
    static const size_t queue_off[] = { 0x800, 0x860, 0x8c0, 0x920 };

    for (unsigned i = 0; i < RPC_QUEUE_COUNT; i++) {
        rpcmsg_queue_t *q = &io->queues[i];

        g_assert_cmpuint((uint8_t *)q - page, ==, queue_off[i]);
        q->prod.tail.pos = 0x11111111;
        q->prod.tail.count = 0x22222222;
        q->cons.head.raw = UINT64_C(0x4444444433333333);
        q->ring[31] = 0xabcd;
        g_assert_cmphex(page[queue_off[i] + 0], ==, 0x11);
        g_assert_cmphex(page[queue_off[i] + 4], ==, 0x22);
        g_assert_cmphex(page[queue_off[i] + 24], ==, 0x33);
        g_assert_cmphex(page[queue_off[i] + 28], ==, 0x44);
        g_assert_cmphex(page[queue_off[i] + 32 + 62], ==, 0xcd);
        g_assert_cmphex(page[queue_off[i] + 32 + 63], ==, 0xab);
    }
    io->buffers[RPC_IOBUF_DEVEVT].messages[0].mr1 = 0x0102030405060708ull;
    g_assert_cmphex(page[0x400 + 8], ==, 0x08);
    g_assert_cmphex(page[0x400 + 15], ==, 0x01);
    io->buffers[RPC_IOBUF_DRVRPC].messages[31].mr3 = 0xff;
    g_assert_cmphex(page[31 * 32 + 24], ==, 0xff);
    g_assert_cmpuint(sizeof(*io), ==, 2432);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rpc-wire/mr0-vectors", test_mr0_vectors);
    g_test_add_func("/rpc-wire/mr0-fields", test_mr0_fields);
    g_test_add_func("/rpc-wire/mmio-roundtrip", test_mmio_roundtrip);
    g_test_add_func("/rpc-wire/iobuf-bytes", test_iobuf_bytes);
    return g_test_run();
}
