/*
 * uservm= command-line parsing, the layout rules and the VMID variable:
 * tables of good and bad inputs; every bad one must be refused with a
 * message naming the offending token (and field).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "sel4/uservm.h"

/* ---- parse: good lines ---- */

typedef struct GoodLine {
    const char *name;
    const char *cmdline;
    uint32_t vmid;
    Sel4Uservm want;
} GoodLine;

static const GoodLine good_lines[] = {
    { "deployed-example",
      "console=ttyAMA0 uservm=1,0x60000000,0x2000000,0xc0000000,0x80000 "
      "root=/dev/vda\n", 1,
      { 1, 0x60000000, 0x2000000, 0xc0000000, 0x80000 } },
    { "decimal", "uservm=7,1073741824,1048576,268435456,16777216", 7,
      { 7, 0x40000000, 0x100000, 0x10000000, 0x1000000 } },
    { "picks-second", "uservm=1,0x1000,0x1000,0x10000000,0x1000 "
      "uservm=2,0x40000000,0x100000,0x20000000,0x10000", 2,
      { 2, 0x40000000, 0x100000, 0x20000000, 0x10000 } },
    { "tabs-and-newlines", "quiet\tuservm=3,0x0,0x1000,0x8000,0x1000\n\n", 3,
      { 3, 0, 0x1000, 0x8000, 0x1000 } },
    { "upper-0X", "uservm=0X1,0XA000,0X1000,0XFF0000,0X10", 1,
      { 1, 0xa000, 0x1000, 0xff0000, 0x10 } },
    { "id-0", "uservm=0,0,4096,0,1", 0, { 0, 0, 4096, 0, 1 } },
    { "maximum-values", "uservm=4294967295,0xffffffffffffffff,"
      "18446744073709551615,0xFFFFFFFFFFFFFFFF,1", 4294967295u,
      { 4294967295u, UINT64_MAX, UINT64_MAX, UINT64_MAX, 1 } },
    /* Other VMs' malformed entries are their problem. */
    { "other-id-malformed", "uservm=2,garbage uservm=3,,, "
      "uservm=1,0x1000,0x1000,0x10000000,0x1000 uservm=4,1,2,3,4,5,6", 1,
      { 1, 0x1000, 0x1000, 0x10000000, 0x1000 } },
    /* Only tokens that start with exactly "uservm=" count. */
    { "prefix-lookalikes", "xuservm=1,1,1,1,1 uservm2=1 USERVM=1,x "
      "uservm=1,0x1000,0x1000,0x10000000,0x1000 uservm", 1,
      { 1, 0x1000, 0x1000, 0x10000000, 0x1000 } },
};

static void test_good_line(gconstpointer data)
{
    const GoodLine *c = data;
    g_autoptr(GError) err = NULL;
    Sel4Uservm u;

    g_assert_true(sel4_uservm_parse(c->cmdline, c->vmid, &u, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(u.id, ==, c->want.id);
    g_assert_cmphex(u.ram_base, ==, c->want.ram_base);
    g_assert_cmphex(u.ram_size, ==, c->want.ram_size);
    g_assert_cmphex(u.pci_mmio_base, ==, c->want.pci_mmio_base);
    g_assert_cmphex(u.pci_mmio_size, ==, c->want.pci_mmio_size);
}

/* ---- parse: bad lines ---- */

#define OK_REST ",0x40000000,0x100000,0x10000000,0x1000000"

typedef struct BadLine {
    const char *name;
    const char *cmdline;
    uint32_t vmid;
    Sel4UservmError code;
    const char *token;          /* must appear quoted in the message */
    const char *expect;         /* must appear in the message */
} BadLine;

static const BadLine bad_lines[] = {
    { "not-found", "uservm=1" OK_REST " uservm=2" OK_REST, 3,
      SEL4_USERVM_ERROR_NOT_FOUND, NULL,
      "no uservm= entry for VMID 3 on the kernel command line "
      "(found ids: 1, 2)" },
    { "none-at-all", "console=ttyAMA0 root=/dev/vda", 1,
      SEL4_USERVM_ERROR_NOT_FOUND, NULL, "(found ids: none)" },
    { "empty-line", "", 1, SEL4_USERVM_ERROR_NOT_FOUND, NULL,
      "(found ids: none)" },
    { "empty-field", "uservm=1,0x1000,,0x2000,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x1000,,0x2000,0x1000",
      "field 3 (ram_size) is empty" },
    { "empty-last-field", "uservm=1,0x1000,0x1000,0x2000,", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x1000,0x1000,0x2000,",
      "field 5 (pci_mmio_size) is empty" },
    { "four-fields", "uservm=1,0x1000,0x1000,0x2000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x1000,0x1000,0x2000",
      "4 fields, expected 5" },
    { "six-fields", "uservm=1" OK_REST ",7", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1" OK_REST ",7",
      "6 fields, expected 5" },
    { "id-only", "uservm=1", 1, SEL4_USERVM_ERROR_MALFORMED, "uservm=1",
      "1 field, expected 5" },
    { "trailing-garbage", "uservm=1,0x1000zz,0x1000,0x10000000,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED,
      "uservm=1,0x1000zz,0x1000,0x10000000,0x1000",
      "field 2 (ram_base) '0x1000zz' is not a 64-bit number" },
    { "negative", "uservm=1,0x1000,-4096,0x10000000,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x1000,-4096,0x10000000,0x1000",
      "field 3 (ram_size) '-4096'" },
    { "plus-sign", "uservm=1,0x1000,0x1000,+1,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x1000,0x1000,+1,0x1000",
      "field 4 (pci_mmio_base) '+1'" },
    { "hex-negative", "uservm=1,0x-1,0x1000,0x10000000,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x-1,0x1000,0x10000000,0x1000",
      "field 2 (ram_base) '0x-1'" },
    { "bare-0x", "uservm=1,0x,0x1000,0x10000000,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,0x,0x1000,0x10000000,0x1000",
      "field 2 (ram_base) '0x'" },
    { "64-bit-overflow", "uservm=1,0x1000,0x1000,0x10000000,"
      "0x10000000000000000", 1, SEL4_USERVM_ERROR_MALFORMED,
      "uservm=1,0x1000,0x1000,0x10000000,0x10000000000000000",
      "field 5 (pci_mmio_size) '0x10000000000000000' is not a 64-bit" },
    { "decimal-overflow", "uservm=1,18446744073709551616,1,1,1", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,18446744073709551616,1,1,1",
      "field 2 (ram_base)" },
    { "octal-looking", "uservm=1,010,0x1000,0x10000000,0x1000", 1,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=1,010,0x1000,0x10000000,0x1000",
      "field 2 (ram_base) '010'" },
    /* An unparseable id may be ours: refused whatever the VMID. */
    { "id-garbage", "uservm=one" OK_REST, 1, SEL4_USERVM_ERROR_MALFORMED,
      "uservm=one" OK_REST, "field 1 (id) 'one' is not a 32-bit number" },
    { "id-32-bit-overflow", "uservm=4294967296" OK_REST, 0,
      SEL4_USERVM_ERROR_MALFORMED, "uservm=4294967296" OK_REST,
      "field 1 (id) '4294967296' is not a 32-bit number" },
    { "id-empty", "uservm=" OK_REST, 1, SEL4_USERVM_ERROR_MALFORMED,
      "uservm=" OK_REST, "field 1 (id) is empty" },
    { "bare-prefix", "uservm=", 1, SEL4_USERVM_ERROR_MALFORMED, "uservm=",
      "field 1 (id) is empty" },
    { "id-garbage-other-vm-listed-first", "uservm=2" OK_REST " uservm=2x,1",
      2, SEL4_USERVM_ERROR_MALFORMED, "uservm=2x,1", "field 1 (id) '2x'" },
    { "duplicate", "uservm=1" OK_REST " uservm=1" OK_REST, 1,
      SEL4_USERVM_ERROR_DUPLICATE, "uservm=1" OK_REST,
      "two uservm= entries for VMID 1" },
    { "duplicate-second-malformed", "uservm=5" OK_REST " uservm=5,x", 5,
      SEL4_USERVM_ERROR_DUPLICATE, "uservm=5,x",
      "two uservm= entries for VMID 5" },
};

static void test_bad_line(gconstpointer data)
{
    const BadLine *c = data;
    g_autoptr(GError) err = NULL;
    Sel4Uservm u = { .id = 0xdead };

    g_assert_false(sel4_uservm_parse(c->cmdline, c->vmid, &u, &err));
    g_test_message("%s -> %s", c->name, err ? err->message : "accepted");
    g_assert_error(err, SEL4_USERVM_ERROR, (gint)c->code);
    g_assert_nonnull(strstr(err->message, c->expect));
    if (c->token) {
        g_autofree char *quoted = g_strdup_printf("'%s'", c->token);

        g_assert_nonnull(strstr(err->message, quoted));
    }
    g_assert_cmpuint(u.id, ==, 0xdead);     /* untouched on failure */
}

/* ---- validate ---- */

typedef struct LayoutCase {
    const char *name;
    Sel4Uservm u;
    const char *expect;         /* NULL: valid */
} LayoutCase;

#define RAM_OK          0x40000000, 0x100000
#define PCI_OK          0x10000000, 0x1000000

static const LayoutCase layout_cases[] = {
    { "good", { 1, RAM_OK, PCI_OK }, NULL },
    { "deployed-example", { 1, 0x60000000, 0x2000000, 0xc0000000, 0x80000 },
      NULL },
    { "pci-right-below-ram", { 1, RAM_OK, 0x3fff0000 - 0x10000, 0x10000 },
      NULL },
    { "pci-right-above-ram", { 1, RAM_OK, 0x40100000, 0x1000 }, NULL },
    { "ram-size-0", { 2, 0x40000000, 0, PCI_OK }, "uservm 2: ram_size is 0" },
    { "ram-size-unaligned", { 1, 0x40000000, 0xff800, PCI_OK },
      "ram_size 0xff800 is not a multiple of 0x1000" },
    { "ram-base-unaligned", { 1, 0x40000010, 0x100000, PCI_OK },
      "ram_base 0x40000010 is not a multiple of 0x1000" },
    { "ram-overflow", { 1, 0xfffffffffffff000, 0x100000, PCI_OK },
      "ram_base 0xfffffffffffff000 + ram_size 0x100000 overflows" },
    { "ram-near-top", { 1, 0xffffffffffe00000, 0x100000, PCI_OK }, NULL },
    /* RAM ending exactly at 2^64 counts as overflowing (as in the hello). */
    { "ram-ends-at-top", { 1, 0xfffffffffff00000, 0x100000, PCI_OK },
      "ram_base 0xfffffffffff00000 + ram_size 0x100000 overflows" },
    { "pci-size-0", { 1, RAM_OK, 0x10000000, 0 }, "pci_mmio_size is 0" },
    { "pci-overflow", { 1, RAM_OK, 0xffffffffff000000, 0xfff000 },
      "pci_mmio_base 0xffffffffff000000 + pci_mmio_size 0xfff000 + "
      "PIO window 0x10000 overflows" },
    { "pci-base-near-top", { 1, RAM_OK, 0xffffffffffff0001, 1 },
      "PIO window 0x10000 overflows" },
    { "pci-overlaps-ram", { 1, RAM_OK, 0x40080000, 0x1000 },
      "RAM [0x40000000, 0x40100000) overlaps the PCI window [0x40080000, "
      "0x40091000)" },
    /* The PIO window after the MMIO window counts. */
    { "pio-overlaps-ram", { 1, RAM_OK, 0x3fff8000, 0x1000 },
      "overlaps the PCI window [0x3fff8000, 0x40009000)" },
};

static void test_layout(gconstpointer data)
{
    const LayoutCase *c = data;
    g_autoptr(GError) err = NULL;
    bool ok = sel4_uservm_validate(&c->u, &err);

    g_test_message("%s -> %s", c->name, err ? err->message : "valid");
    if (!c->expect) {
        g_assert_no_error(err);
        g_assert_true(ok);
        return;
    }
    g_assert_false(ok);
    g_assert_error(err, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_LAYOUT);
    g_assert_nonnull(strstr(err->message, c->expect));
}

/* ---- VMID ---- */

typedef struct VmidCase {
    const char *value;          /* NULL: unset */
    bool ok;
    uint32_t want;
} VmidCase;

static const VmidCase vmid_cases[] = {
    { NULL, true, SEL4_VMID_DEFAULT }, { "1", true, 1 }, { "2", true, 2 },
    { "0", true, 0 }, { "0x10", true, 16 },
    { "4294967295", true, 4294967295u }, { "", false, 0 },
    { "abc", false, 0 }, { "1 ", false, 0 }, { " 1", false, 0 },
    { "-1", false, 0 }, { "+1", false, 0 }, { "4294967296", false, 0 },
    { "01", false, 0 }, { "1x", false, 0 }, { "0x", false, 0 },
};

static void test_vmid(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(vmid_cases); i++) {
        const VmidCase *c = &vmid_cases[i];
        g_autoptr(GError) err = NULL;
        uint32_t vmid = 0xdead;
        bool ok = sel4_vmid_from_env(c->value, &vmid, &err);

        g_test_message("VMID=%s -> %s", c->value ? c->value : "(unset)",
                       err ? err->message : "ok");
        g_assert_cmpint(ok, ==, c->ok);
        if (c->ok) {
            g_assert_no_error(err);
            g_assert_cmpuint(vmid, ==, c->want);
        } else {
            g_autofree char *quoted = g_strdup_printf("VMID='%s'", c->value);

            g_assert_error(err, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_VMID);
            g_assert_nonnull(strstr(err->message, quoted));
            g_assert_cmpuint(vmid, ==, 0xdead);
        }
    }
}

/* The parse result goes straight into validate: the usual pairing. */
static void test_parse_then_validate(void)
{
    g_autoptr(GError) err = NULL;
    Sel4Uservm u;

    g_assert_true(sel4_uservm_parse("uservm=1,0x40000000,0x100000,"
                                    "0x40080000,0x1000", 1, &u, &err));
    g_assert_false(sel4_uservm_validate(&u, &err));
    g_assert_error(err, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_LAYOUT);
    g_assert_nonnull(strstr(err->message, "uservm 1: RAM"));
}

static void add_cases(const char *kind, const void *cases, size_t size,
                      size_t n, GTestDataFunc fn)
{
    for (size_t i = 0; i < n; i++) {
        const void *c = (const char *)cases + i * size;
        /* Every case struct starts with its name. */
        g_autofree char *path =
            g_strdup_printf("/uservm/%s/%s", kind, *(const char *const *)c);

        g_test_add_data_func(path, c, fn);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_cases("good", good_lines, sizeof(good_lines[0]),
              G_N_ELEMENTS(good_lines), test_good_line);
    add_cases("bad", bad_lines, sizeof(bad_lines[0]),
              G_N_ELEMENTS(bad_lines), test_bad_line);
    add_cases("layout", layout_cases, sizeof(layout_cases[0]),
              G_N_ELEMENTS(layout_cases), test_layout);
    g_test_add_func("/uservm/vmid", test_vmid);
    g_test_add_func("/uservm/parse-then-validate", test_parse_then_validate);
    return g_test_run();
}
