/*
 * The guest address map of one driver VM ("uservm"), as the device VM's
 * kernel command line carries it, and the VMID that selects the entry.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The command line (/proc/cmdline) holds one token per driver VM:
 *
 *   uservm=<id>,<ram_base>,<ram_size>,<pci_mmio_base>,<pci_mmio_size>
 *
 * Each field is decimal or 0x-hex (0X too).  Parsing is strict: exactly
 * five fields, none empty, no sign, no whitespace, no trailing garbage,
 * no overflow (id fits 32 bits, the others 64).  A leading zero followed
 * by more digits ("010") is rejected: strtoull would read it as octal,
 * the deployed C QEMU (sscanf %lx) as hex and the deployed Rust one as
 * decimal, so it is ambiguous.  Caution: the deployed C QEMU reads even
 * unprefixed values as hex; every deployed example uses 0x, as should
 * every command line meant for both.
 *
 * Which entries matter: only the one whose id equals the VMID.
 *  - An entry whose id field is unparseable is an error: it may be ours.
 *  - An entry with a valid id other than the VMID is not looked at
 *    further: a malformed one is the other VM's problem.
 *  - Two entries with the VMID's id are an error, even if identical.
 *  - No entry with the VMID's id is an error listing the ids found.
 *
 * The parse checks syntax only; sel4_uservm_validate() checks the layout.
 */
#ifndef SEL4_USERVM_H
#define SEL4_USERVM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define SEL4_USERVM_PREFIX      "uservm="
#define SEL4_USERVM_PAGE_SIZE   4096u
/* The PIO window follows the PCIe MMIO window (protocol.md). */
#define SEL4_USERVM_PIO_SIZE    0x10000u

/* The environment variable that selects the uservm entry, and its default. */
#define SEL4_VMID_ENV           "VMID"
#define SEL4_VMID_DEFAULT       1u

typedef struct Sel4Uservm {
    uint32_t id;
    uint64_t ram_base;          /* guest-physical base of the driver VM's RAM */
    uint64_t ram_size;
    uint64_t pci_mmio_base;     /* PCIe MMIO window; the PIO window follows */
    uint64_t pci_mmio_size;
} Sel4Uservm;

#define SEL4_USERVM_ERROR sel4_uservm_error_quark()
GQuark sel4_uservm_error_quark(void);

typedef enum Sel4UservmError {
    SEL4_USERVM_ERROR_NOT_FOUND,    /* no entry for the VMID */
    SEL4_USERVM_ERROR_MALFORMED,    /* a token or field does not parse */
    SEL4_USERVM_ERROR_DUPLICATE,    /* two entries for the VMID */
    SEL4_USERVM_ERROR_LAYOUT,       /* sel4_uservm_validate() refused it */
    SEL4_USERVM_ERROR_VMID,         /* the VMID value does not parse */
} Sel4UservmError;

/*
 * Find the entry for @vmid in @cmdline (whitespace-separated tokens, as
 * /proc/cmdline) and store it in @out (untouched on failure).  Errors
 * name the offending token and field; see the rules above.
 */
bool sel4_uservm_parse(const char *cmdline, uint32_t vmid, Sel4Uservm *out,
                       GError **errp);

/*
 * The layout rules (the sim transport's hello obeys the same ones):
 * ram_size non-zero; ram_base and ram_size multiples of 4 KiB;
 * ram_base + ram_size does not overflow; pci_mmio_size non-zero;
 * pci_mmio_base + pci_mmio_size + SEL4_USERVM_PIO_SIZE does not overflow;
 * RAM and the PCI window with its PIO window do not overlap.  Messages
 * are "uservm <id>: <rule>" (SEL4_USERVM_ERROR_LAYOUT).
 */
bool sel4_uservm_validate(const Sel4Uservm *u, GError **errp);

/*
 * Parse the VMID environment variable's @value (getenv(SEL4_VMID_ENV)):
 * NULL (unset) gives SEL4_VMID_DEFAULT; otherwise decimal or 0x-hex, the
 * same strict syntax as the uservm= id, 0 included (protocol.md gives 0
 * no special meaning; ids are only compared).  An empty or garbage value
 * is an error, never the default.
 */
bool sel4_vmid_from_env(const char *value, uint32_t *vmid, GError **errp);

#endif /* SEL4_USERVM_H */
