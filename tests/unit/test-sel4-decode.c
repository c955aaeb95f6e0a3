/*
 * The device side's decision for one request (lib/sel4_decode.c): what
 * QEMU's dispatch does with each shape of request, and the reply it gets.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "sel4/sel4_decode.h"

#define RD  RPC_MR0_MMIO_DIRECTION_READ
#define WR  RPC_MR0_MMIO_DIRECTION_WRITE

/* Device 0: 256 bytes of config space (PCI), device 1: 4096 (PCIe). */
static uint32_t config_size(void *opaque, unsigned index)
{
    return index ? 4096 : 256;
}

static const Sel4Devices devs = { .n = 2, .config_size = config_size };

static void test_routes(void)
{
    const struct {
        const char *what;
        rpcmsg_t msg;
        Sel4Route route;
        Sel4Reject reject;
        uint64_t reply;         /* sel4_reply(d, false, 0) */
        const char *says;       /* in the description of a rejection */
    } cases[] = {
        { "config read", { rpc_mr0_mmio(RD, 0, 16, 4), 0 },
          SEL4_ROUTE_CONFIG, SEL4_REJECT_NONE, UINT64_MAX, NULL },
        { "config write, last 8 bytes of PCIe", { rpc_mr0_mmio(WR, 1, 16, 8),
          0xff8, 1 }, SEL4_ROUTE_CONFIG, SEL4_REJECT_NONE, 0, NULL },
        { "global read", { rpc_mr0_mmio(RD, AS_GLOBAL, 0, 2), 0x10000000 },
          SEL4_ROUTE_GLOBAL, SEL4_REJECT_NONE, UINT64_MAX, NULL },
        { "PUTC_LOG", { rpc_mr0_op(QEMU_OP_PUTC_LOG), 'x' },
          SEL4_ROUTE_IGNORE, SEL4_REJECT_NONE, 0, NULL },
        { "unknown opcode", { rpc_mr0_op(7) }, SEL4_ROUTE_REJECT,
          SEL4_REJECT_DECODE, UINT64_MAX, "unknown opcode" },
        { "write of length 3", { rpc_mr0_mmio(WR, 0, 0, 3) },
          SEL4_ROUTE_REJECT, SEL4_REJECT_DECODE, UINT64_MAX,
          "bad access length" },
        { "unregistered device 2 (read)", { rpc_mr0_mmio(RD, 2, 0, 4) },
          SEL4_ROUTE_REJECT, SEL4_REJECT_UNREGISTERED, UINT64_MAX,
          "unregistered device 2" },
        { "unregistered device 31 (write)", { rpc_mr0_mmio(WR, 31, 0, 4) },
          SEL4_ROUTE_REJECT, SEL4_REJECT_UNREGISTERED, 0,
          "unregistered device 31" },
        { "PCI config at 0x100", { rpc_mr0_mmio(RD, 0, 0, 1), 0x100 },
          SEL4_ROUTE_REJECT, SEL4_REJECT_CONFIG_RANGE, UINT64_MAX,
          "beyond its 0x100 bytes" },
        { "PCIe config 8 bytes at 0xffc", { rpc_mr0_mmio(RD, 1, 0, 8), 0xffc },
          SEL4_ROUTE_REJECT, SEL4_REJECT_CONFIG_RANGE, UINT64_MAX,
          "at 0xffc len 8 beyond its 0x1000 bytes" },
        { "config at 2^64 - 1", { rpc_mr0_mmio(RD, 1, 0, 4), UINT64_MAX },
          SEL4_ROUTE_REJECT, SEL4_REJECT_CONFIG_RANGE, UINT64_MAX,
          "beyond" },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        Sel4Decision d;
        char why[128] = "";

        sel4_decide(&cases[i].msg, &devs, &d);
        if (d.route == SEL4_ROUTE_REJECT) {
            sel4_reject_describe(&d, why, sizeof(why));
        }
        g_test_message("%-36s -> route %d, %s: %s", cases[i].what, d.route,
                       sel4_reject_name(d.reject), why);
        g_assert_cmpint(d.route, ==, cases[i].route);
        g_assert_cmpint(d.reject, ==, cases[i].reject);
        g_assert_cmpuint(sel4_reply(&d, false, 0), ==, cases[i].reply);
        if (cases[i].says) {
            g_assert_nonnull(strstr(why, cases[i].says));
        }
    }
}

/* An 8-byte config access goes in two 4-byte pieces, little-endian. */
static void test_config_pieces(void)
{
    rpcmsg_t msg = { rpc_mr0_mmio(WR, 1, 0, 8), 0x40, 0x1122334455667788 };
    Sel4Decision d;
    uint32_t off;
    uint64_t data = 0;
    unsigned done, len, n = 0;

    sel4_decide(&msg, &devs, &d);
    g_assert_cmpint(d.route, ==, SEL4_ROUTE_CONFIG);
    for (done = 0; (len = sel4_config_next(&d, done, &off)); done += len) {
        g_assert_cmpuint(len, ==, 4);
        g_assert_cmpuint(off, ==, 0x40 + 4 * n);
        g_assert_cmpuint(sel4_config_piece(d.m.data, done, len), ==,
                         n ? 0x11223344 : 0x55667788);
        data = sel4_config_merge(data, done,
                                 sel4_config_piece(d.m.data, done, len));
        n++;
    }
    g_assert_cmpuint(n, ==, 2);
    g_assert_cmpuint(data, ==, 0x1122334455667788);
    g_assert_cmpuint(sel4_reply(&d, true, data), ==, 0);     /* a write */
}

/* A read's reply is masked to its length; a failed read is all-ones. */
static void test_read_replies(void)
{
    rpcmsg_t msg = { rpc_mr0_mmio(RD, AS_GLOBAL, 3, 2), 0x10000000 };
    Sel4Decision d;

    sel4_decide(&msg, &devs, &d);
    g_assert_cmpuint(sel4_reply(&d, true, 0xdeadbeef), ==, 0xbeef);
    g_assert_cmpuint(sel4_reply(&d, false, 0xdeadbeef), ==, UINT64_MAX);
    /* the slot is the VMM's: decoded, never judged */
    g_assert_cmpuint(d.m.slot, ==, 3);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sel4-decode/routes", test_routes);
    g_test_add_func("/sel4-decode/config-pieces", test_config_pieces);
    g_test_add_func("/sel4-decode/read-replies", test_read_replies);
    return g_test_run();
}
