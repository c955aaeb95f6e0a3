/*
 * The uservm= entries of the device VM's kernel command line and the
 * VMID that selects one.  See sel4/uservm.h for the syntax and rules.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "sel4/sel4_error.h"
#include "sel4/uservm.h"

#define USERVM_FIELDS   5

GQuark sel4_uservm_error_quark(void)
{
    return g_quark_from_static_string("sel4-uservm-error-quark");
}

static const char *const field_names[USERVM_FIELDS] = {
    "id", "ram_base", "ram_size", "pci_mmio_base", "pci_mmio_size",
};

/*
 * Strict unsigned number: decimal or 0x-hex, at most @max.  Rejects "",
 * signs, whitespace, trailing garbage and leading zeros (octal to
 * strtoull, see the header).
 */
static bool parse_number(const char *s, uint64_t max, uint64_t *out)
{
    guint64 v;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        /* g_ascii_string_to_unsigned() takes neither "0x" nor a sign. */
        if (!g_ascii_isxdigit(s[2]) ||
            !g_ascii_string_to_unsigned(s + 2, 16, 0, max, &v, NULL)) {
            return false;
        }
    } else {
        if (!g_ascii_isdigit(s[0]) || (s[0] == '0' && s[1] != '\0') ||
            !g_ascii_string_to_unsigned(s, 10, 0, max, &v, NULL)) {
            return false;
        }
    }
    *out = v;
    return true;
}

/* Field @i of @tok (already split into @fields) into @out. */
static bool parse_field(const char *tok, char **fields, unsigned i,
                        uint64_t max, uint64_t *out, GError **errp)
{
    if (fields[i][0] == '\0') {
        g_set_error(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_MALFORMED,
                    "malformed '%s' on the kernel command line: field %u "
                    "(%s) is empty", tok, i + 1, field_names[i]);
        return false;
    }
    if (!parse_number(fields[i], max, out)) {
        g_set_error(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_MALFORMED,
                    "malformed '%s' on the kernel command line: field %u "
                    "(%s) '%s' is not a %s number (decimal or 0x-hex)",
                    tok, i + 1, field_names[i], fields[i],
                    max == UINT32_MAX ? "32-bit" : "64-bit");
        return false;
    }
    return true;
}

/* Only the id of @tok: what decides whether the rest is ours to check. */
static bool parse_token_id(const char *tok, uint32_t *id, GError **errp)
{
    const char *body = tok + strlen(SEL4_USERVM_PREFIX);
    g_autofree char *text = g_strndup(body, strcspn(body, ","));
    char *fields[] = { text, NULL };
    uint64_t v;

    if (!parse_field(tok, fields, 0, UINT32_MAX, &v, errp)) {
        return false;
    }
    *id = (uint32_t)v;
    return true;
}

static bool parse_token(const char *tok, Sel4Uservm *u, GError **errp)
{
    g_auto(GStrv) fields = g_strsplit(tok + strlen(SEL4_USERVM_PREFIX), ",",
                                      -1);
    uint64_t v[USERVM_FIELDS];
    guint n = g_strv_length(fields);

    if (n != USERVM_FIELDS) {
        g_set_error(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_MALFORMED,
                    "malformed '%s' on the kernel command line: %u "
                    "field%s, expected %d (id,ram_base,ram_size,"
                    "pci_mmio_base,pci_mmio_size)", tok, n, n == 1 ? "" : "s",
                    USERVM_FIELDS);
        return false;
    }
    for (unsigned i = 0; i < USERVM_FIELDS; i++) {
        if (!parse_field(tok, fields, i, i == 0 ? UINT32_MAX : UINT64_MAX,
                         &v[i], errp)) {
            return false;
        }
    }
    u->id = (uint32_t)v[0];
    u->ram_base = v[1];
    u->ram_size = v[2];
    u->pci_mmio_base = v[3];
    u->pci_mmio_size = v[4];
    return true;
}

bool sel4_uservm_parse(const char *cmdline, uint32_t vmid, Sel4Uservm *out,
                       GError **errp)
{
    g_auto(GStrv) toks = g_strsplit_set(cmdline, " \t\n\r", -1);
    g_autoptr(GString) ids = g_string_new(NULL);
    const char *ours = NULL;
    Sel4Uservm u;

    for (char **t = toks; *t; t++) {
        uint32_t id;

        if (!g_str_has_prefix(*t, SEL4_USERVM_PREFIX)) {
            continue;
        }
        if (!parse_token_id(*t, &id, errp)) {
            return false;
        }
        g_string_append_printf(ids, "%s%" PRIu32, ids->len ? ", " : "", id);
        if (id != vmid) {
            continue;           /* another VM's entry, however malformed */
        }
        if (ours) {
            g_set_error(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_DUPLICATE,
                        "two uservm= entries for VMID %" PRIu32 " on the "
                        "kernel command line: '%s' and '%s'", vmid, ours, *t);
            return false;
        }
        if (!parse_token(*t, &u, errp)) {
            return false;
        }
        ours = *t;
    }
    if (!ours) {
        g_set_error(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_NOT_FOUND,
                    "no uservm= entry for VMID %" PRIu32 " on the kernel "
                    "command line (found ids: %s)", vmid,
                    ids->len ? ids->str : "none");
        return false;
    }
    *out = u;
    return true;
}

#define layout_error(u, errp, fmt, ...) \
    sel4_fail(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_LAYOUT, \
              "uservm %" PRIu32 ": " fmt, (u)->id, ##__VA_ARGS__)

static bool validate_ram(const Sel4Uservm *u, GError **errp)
{
    if (u->ram_size == 0) {
        return layout_error(u, errp, "ram_size is 0");
    }
    if (u->ram_size % SEL4_USERVM_PAGE_SIZE) {
        return layout_error(u, errp, "ram_size 0x%" PRIx64 " is not a "
                            "multiple of 0x%x", u->ram_size,
                            SEL4_USERVM_PAGE_SIZE);
    }
    if (u->ram_base % SEL4_USERVM_PAGE_SIZE) {
        return layout_error(u, errp, "ram_base 0x%" PRIx64 " is not a "
                            "multiple of 0x%x", u->ram_base,
                            SEL4_USERVM_PAGE_SIZE);
    }
    if (u->ram_size > UINT64_MAX - u->ram_base) {
        return layout_error(u, errp, "ram_base 0x%" PRIx64 " + ram_size 0x%"
                            PRIx64 " overflows", u->ram_base, u->ram_size);
    }
    return true;
}

static bool validate_pci(const Sel4Uservm *u, GError **errp)
{
    uint64_t ram_end, pci_end;

    if (u->pci_mmio_size == 0) {
        return layout_error(u, errp, "pci_mmio_size is 0");
    }
    if (u->pci_mmio_base > UINT64_MAX - SEL4_USERVM_PIO_SIZE ||
        u->pci_mmio_size > UINT64_MAX - SEL4_USERVM_PIO_SIZE -
                           u->pci_mmio_base) {
        return layout_error(u, errp, "pci_mmio_base 0x%" PRIx64 " + "
                            "pci_mmio_size 0x%" PRIx64 " + PIO window 0x%x "
                            "overflows", u->pci_mmio_base, u->pci_mmio_size,
                            SEL4_USERVM_PIO_SIZE);
    }
    /* validate_ram() ran first: ram_end cannot overflow. */
    ram_end = u->ram_base + u->ram_size;
    pci_end = u->pci_mmio_base + u->pci_mmio_size + SEL4_USERVM_PIO_SIZE;
    if (u->ram_base < pci_end && u->pci_mmio_base < ram_end) {
        return layout_error(u, errp, "RAM [0x%" PRIx64 ", 0x%" PRIx64 ") "
                            "overlaps the PCI window [0x%" PRIx64 ", 0x%"
                            PRIx64 ")", u->ram_base, ram_end,
                            u->pci_mmio_base, pci_end);
    }
    return true;
}

bool sel4_uservm_validate(const Sel4Uservm *u, GError **errp)
{
    return validate_ram(u, errp) && validate_pci(u, errp);
}

bool sel4_vmid_from_env(const char *value, uint32_t *vmid, GError **errp)
{
    uint64_t v;

    if (!value) {
        *vmid = SEL4_VMID_DEFAULT;
        return true;
    }
    if (!parse_number(value, UINT32_MAX, &v)) {
        g_set_error(errp, SEL4_USERVM_ERROR, SEL4_USERVM_ERROR_VMID,
                    "%s='%s' is not a 32-bit number (decimal or 0x-hex)",
                    SEL4_VMID_ENV, value);
        return false;
    }
    *vmid = (uint32_t)v;
    return true;
}
