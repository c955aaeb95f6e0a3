/*
 * docs/protocol.md says what include/sel4/rpc.h says: the iobuf layout
 * table, the mr0 field table, the opcodes, the test vectors and the
 * constants table, each compared with the header.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-protocol-doc --tap PATH/docs/protocol.md
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "sel4/rpc.h"

static char *doc;

/* The rows of the markdown table whose header row starts with @first. */
static GPtrArray *table_rows(const char *first)
{
    g_autofree char *head = g_strdup_printf("| %s |", first);
    GPtrArray *rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    const char *p = strstr(doc, head);
    g_auto(GStrv) lines = NULL;

    g_assert_nonnull(p);
    lines = g_strsplit(p, "\n", -1);
    /* header, separator, then rows until the first non-table line */
    for (char **l = lines + 2; *l && (*l)[0] == '|'; l++) {
        g_auto(GStrv) cells = g_strsplit(*l + 1, "|", -1);
        GStrvBuilder *b = g_strv_builder_new();

        for (char **c = cells; *c && c[1]; c++) {
            g_strv_builder_add(b, g_strstrip(*c));
        }
        g_ptr_array_add(rows, g_strv_builder_end(b));
        g_strv_builder_unref(b);
    }
    return rows;
}

static uint64_t num(const char *s)
{
    char *end;
    uint64_t v = g_ascii_strtoull(s, &end, 0);

    g_assert_true(end != s);
    return v;
}

static void test_layout(void)
{
    static const struct {
        const char *object;
        size_t offset, size;
    } want[] = {
        { "`buffers[0]`", offsetof(rpcmsg_iobuf_t, buffers[0]),
          sizeof(rpcmsg_buffer_t) },
        { "`buffers[1]`", offsetof(rpcmsg_iobuf_t, buffers[1]),
          sizeof(rpcmsg_buffer_t) },
        { "`queues[0]`", offsetof(rpcmsg_iobuf_t, queues[0]),
          sizeof(rpcmsg_queue_t) },
        { "`queues[1]`", offsetof(rpcmsg_iobuf_t, queues[1]),
          sizeof(rpcmsg_queue_t) },
        { "`queues[2]`", offsetof(rpcmsg_iobuf_t, queues[2]),
          sizeof(rpcmsg_queue_t) },
        { "`queues[3]`", offsetof(rpcmsg_iobuf_t, queues[3]),
          sizeof(rpcmsg_queue_t) },
    };
    g_autoptr(GPtrArray) rows = table_rows("offset");
    g_autofree char *used = g_strdup_printf("%zu bytes used",
                                            sizeof(rpcmsg_iobuf_t));
    unsigned i;

    g_assert_cmpuint(rows->len, ==, G_N_ELEMENTS(want));
    for (i = 0; i < rows->len; i++) {
        char **r = rows->pdata[i];

        g_test_message("%s at %s, %s bytes", r[2], r[0], r[1]);
        g_assert_true(g_str_has_prefix(r[2], want[i].object));
        g_assert_cmpuint(num(r[0]), ==, want[i].offset);
        g_assert_cmpuint(num(r[1]), ==, want[i].size);
    }
    g_assert_nonnull(strstr(doc, used));
}

static void test_mr0_fields(void)
{
    static const struct {
        const char *name;
        unsigned shift, width;
    } want[] = {
        { "OP", RPC_MR0_OP_SHIFT, RPC_MR0_OP_WIDTH },
        { "SLOT", RPC_MR0_SLOT_SHIFT, RPC_MR0_SLOT_WIDTH },
        { "DIR", RPC_MR0_DIR_SHIFT, RPC_MR0_DIR_WIDTH },
        { "AS", RPC_MR0_AS_SHIFT, RPC_MR0_AS_WIDTH },
        { "LEN", RPC_MR0_LEN_SHIFT, RPC_MR0_LEN_WIDTH },
    };
    g_autoptr(GPtrArray) rows = table_rows("field");
    g_autofree char *zero = g_strdup_printf("Bits 63..%u are zero",
                                            RPC_MR0_USED_BITS);
    unsigned i, hi, lo;

    g_assert_cmpuint(rows->len, ==, G_N_ELEMENTS(want));
    for (i = 0; i < rows->len; i++) {
        char **r = rows->pdata[i];

        g_assert_cmpstr(r[0], ==, want[i].name);
        if (sscanf(r[1], "%u..%u", &hi, &lo) != 2) {
            hi = lo = num(r[1]);
        }
        g_test_message("%s: bits %u..%u", r[0], hi, lo);
        g_assert_cmpuint(lo, ==, want[i].shift);
        g_assert_cmpuint(hi - lo + 1, ==, want[i].width);
    }
    g_assert_nonnull(strstr(doc, zero));
}

static void test_opcodes_and_vectors(void)
{
    g_autofree char *ops = g_strdup_printf(
        "%d MMIO, %d PUTC_LOG; events: %d SET_IRQ, %d START_VM, "
        "%d REGISTER_PCI_DEV, %d MMIO_REGION_CONFIG", QEMU_OP_MMIO,
        QEMU_OP_PUTC_LOG, QEMU_OP_SET_IRQ, QEMU_OP_START_VM,
        QEMU_OP_REGISTER_PCI_DEV, QEMU_OP_MMIO_REGION_CONFIG);
    g_autofree char *w = g_strdup_printf(
        "a 4-byte guest-physical write from slot 0\nis `0x%" G_GINT64_MODIFIER
        "X`", rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_WRITE, AS_GLOBAL, 0, 4));
    g_autofree char *r = g_strdup_printf(
        "a 4-byte config read of device 1 from slot 16 is `0x%"
        G_GINT64_MODIFIER "X`",
        rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, AS_PCIDEV(1), 16, 4));
    g_autoptr(GPtrArray) events = table_rows("event");
    static const unsigned event_ops[] = {
        QEMU_OP_SET_IRQ, QEMU_OP_START_VM, QEMU_OP_REGISTER_PCI_DEV,
        QEMU_OP_MMIO_REGION_CONFIG,
    };
    unsigned i;

    g_assert_nonnull(strstr(doc, ops));
    g_assert_nonnull(strstr(doc, w));
    g_assert_nonnull(strstr(doc, r));
    g_assert_cmpuint(events->len, ==, G_N_ELEMENTS(event_ops));
    for (i = 0; i < events->len; i++) {
        char **row = events->pdata[i];

        g_assert_cmpuint(num(row[1] + strlen("OP ")), ==, event_ops[i]);
    }
}

#define C(name) { #name, name }

static void test_constants(void)
{
    static const struct {
        const char *name;
        uint64_t value;
    } want[] = {
        C(RPCMSG_BUFFER_SIZE), C(RPCMSG_HTD_MAX), C(RPC_IOBUF_PAGES),
        C(RPC_IOBUF_SIZE), C(RPC_MR0_USED_BITS), C(QEMU_OP_MMIO),
        C(QEMU_OP_PUTC_LOG), C(QEMU_OP_SET_IRQ), C(QEMU_OP_START_VM),
        C(QEMU_OP_REGISTER_PCI_DEV), C(QEMU_OP_MMIO_REGION_CONFIG),
        C(RPC_MR0_MMIO_DIRECTION_READ), C(RPC_MR0_MMIO_DIRECTION_WRITE),
        C(AS_GLOBAL), C(RPC_MAX_PCIDEV), C(RPC_SLOT_VCPU_MAX),
        C(RPC_SLOT_VMM_BASE), C(RPC_IRQ_CLR), C(RPC_IRQ_SET),
        C(RPC_IRQ_PULSE), C(RPC_MMIO_REGION_FREE),
    };
    g_autoptr(GPtrArray) rows = table_rows("name");
    unsigned i, j;

    /* every row is a known macro with its value, and every macro a row */
    g_assert_cmpuint(rows->len, ==, G_N_ELEMENTS(want));
    for (i = 0; i < rows->len; i++) {
        char **r = rows->pdata[i];

        for (j = 0; j < G_N_ELEMENTS(want); j++) {
            if (g_str_equal(r[0], want[j].name)) {
                break;
            }
        }
        g_assert_cmpuint(j, <, G_N_ELEMENTS(want));
        g_assert_cmpuint(num(r[1]), ==, want[j].value);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (argc < 2 || !g_file_get_contents(argv[1], &doc, NULL, NULL)) {
        g_printerr("usage: test-protocol-doc [--tap] docs/protocol.md\n");
        return 2;
    }
    g_test_add_func("/protocol-doc/layout", test_layout);
    g_test_add_func("/protocol-doc/mr0-fields", test_mr0_fields);
    g_test_add_func("/protocol-doc/opcodes-and-vectors",
                    test_opcodes_and_vectors);
    g_test_add_func("/protocol-doc/constants", test_constants);
    return g_test_run();
}
