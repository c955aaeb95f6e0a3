/*
 * The `sim` transport: how the simulated seL4 VMM hands its shared regions
 * and doorbells to the device side (QEMU's sel4 accelerator).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The simulated VMM (lib/vmm, the driver side) listens on a unix
 * stream socket.  When the device side connects, the VMM sends exactly ONE
 * message: a SimHello header (below) as the data bytes, and one SCM_RIGHTS
 * control message carrying exactly SIM_FD_COUNT descriptors:
 *
 *   fds[SIM_FD_IOBUF]     memfd: event-bar page + iobuf, the UIO maps of the
 *                         real device VM laid end to end (see the offsets)
 *   fds[SIM_FD_RAM]       memfd: the driver VM's RAM; byte 0 is ram_base
 *   fds[SIM_FD_DOORBELL_TO_DEVICE]   eventfd: VMM -> device doorbell
 *                         (the UIO interrupt / CONSUME counter of the
 *                         real device VM)
 *   fds[SIM_FD_DOORBELL_TO_VMM]      eventfd: device -> VMM doorbell
 *                         (the EMIT store of the real device VM)
 *
 * Nothing else is ever sent on the socket.  After the hello, the connection
 * is only a liveness signal: the accelerator watches the connection fd in
 * its event loop and treats POLLHUP/POLLRDHUP/POLLERR (or EOF on read) as
 * the VMM dying; any byte arriving after the hello is a protocol violation
 * and is handled the same way.  The VMM likewise treats the device side
 * hanging up as the device dying.
 *
 * The iobuf region (fds[SIM_FD_IOBUF], SIM_IOBUF_REGION_SIZE bytes):
 *
 *   +0x0000  event-bar page (SEL4_EVENT_BAR_SIZE = 4 KiB; layout in
 *            sel4/event_bar.h)
 *   +0x1000  iobuf (RPC_IOBUF_SIZE = 2 pages; layout in sel4/rpc.h)
 *   +0x3000  end
 *
 * The hello header, little-endian, naturally aligned, no padding:
 *
 *   off   size  field
 *   0x00  4     magic              SIM_HELLO_MAGIC ("S4SM" in memory)
 *   0x04  2     version            SIM_HELLO_VERSION
 *   0x06  2     header_size        bytes of the whole message (>= 64)
 *   0x08  4     flags              must be 0 in version 1
 *   0x0c  4     vmid               uservm id
 *   0x10  8     ram_base           uservm: guest-physical base of RAM
 *   0x18  8     ram_size           uservm: bytes of guest RAM
 *   0x20  8     pci_mmio_base      uservm: PCIe MMIO window base
 *   0x28  8     pci_mmio_size      uservm: PCIe MMIO window size
 *   0x30  8     iobuf_region_size  bytes of fds[SIM_FD_IOBUF] to map
 *   0x38  8     ram_region_size    bytes of fds[SIM_FD_RAM] to map
 *   0x40        end (sizeof(SimHello) == 64)
 *
 * Versioning: the reader accepts only version == SIM_HELLO_VERSION.  Within
 * a version, a newer writer may append fields that an older reader may
 * safely ignore: header_size is then larger than sizeof(SimHello) (at most
 * SIM_HELLO_MAX_SIZE), the message is exactly header_size bytes, and the
 * reader checks the size and ignores the tail.  Anything a reader must
 * understand needs a new version or a flag; unknown flags are rejected.
 *
 * Rules the receiver enforces (the VMM is another security domain), each
 * failure a SIM_TRANSPORT_ERROR_PROTOCOL GError naming the field and value,
 * with every received descriptor closed:
 *  - message size == header_size, 64 <= header_size <= SIM_HELLO_MAX_SIZE;
 *    magic, version, flags == 0;
 *  - exactly one SCM_RIGHTS control message with exactly 4 fds, nothing
 *    truncated (MSG_CTRUNC), no other control message type;
 *  - fds 0/1: regular files (memfds) opened O_RDWR, distinct files, sealed
 *    against shrinking (F_SEAL_SHRINK: a shrink would turn our accesses
 *    into SIGBUS), fstat size >= the declared region size;
 *  - iobuf_region_size == SIM_IOBUF_REGION_SIZE;
 *  - ram_size non-zero, ram_base and ram_size 4 KiB aligned, ram_base +
 *    ram_size does not overflow, ram_region_size >= ram_size and 4 KiB
 *    aligned;
 *  - pci_mmio_size non-zero; pci_mmio_base + pci_mmio_size +
 *    SIM_PCI_PIO_SIZE (the PIO window right after it) does not overflow;
 *    the PCI window (with PIO) and RAM do not overlap;
 *  - fds 2/3: eventfds ("anon_inode:[eventfd]" in /proc/self/fd), and two
 *    different eventfds when /proc/self/fdinfo reports eventfd-id.
 *
 * File status flags (O_NONBLOCK) of the received descriptors are shared
 * with the VMM's copies (same open file description): neither side may
 * change them.  sim_transport_create_fds() makes the eventfds O_NONBLOCK
 * from the start; wait with poll/io_uring, then read.
 */
#ifndef SEL4_SIM_TRANSPORT_H
#define SEL4_SIM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "sel4/event_bar.h"
#include "sel4/rpc.h"

/* ---- the iobuf region ---- */

#define SIM_PAGE_SIZE               4096u
#define SIM_IOBUF_REGION_EVENT_BAR  0x0     /* offset of the event bar */
#define SIM_IOBUF_REGION_IOBUF      SEL4_EVENT_BAR_SIZE  /* 0x1000 */
#define SIM_IOBUF_REGION_SIZE       (SEL4_EVENT_BAR_SIZE + RPC_IOBUF_SIZE)

/* The PIO window follows the PCIe MMIO window (protocol.md). */
#define SIM_PCI_PIO_SIZE            0x10000u

/* ---- the hello ---- */

#define SIM_HELLO_MAGIC             0x4d533453u     /* "S4SM" little-endian */
#define SIM_HELLO_VERSION           1
#define SIM_HELLO_MAX_SIZE          256u

enum {
    SIM_FD_IOBUF = 0,               /* memfd, SIM_IOBUF_REGION_SIZE */
    SIM_FD_RAM = 1,                 /* memfd, ram_region_size */
    SIM_FD_DOORBELL_TO_DEVICE = 2,  /* eventfd, VMM -> device */
    SIM_FD_DOORBELL_TO_VMM = 3,     /* eventfd, device -> VMM */
    SIM_FD_COUNT
};

/*
 * Host-order view of the header; sim_transport_send_hello() and
 * sim_transport_connect() convert to and from little-endian on the wire.
 */
typedef struct SimHello {
    uint32_t magic;
    uint16_t version;
    uint16_t header_size;
    uint32_t flags;
    uint32_t vmid;
    uint64_t ram_base;
    uint64_t ram_size;
    uint64_t pci_mmio_base;
    uint64_t pci_mmio_size;
    uint64_t iobuf_region_size;
    uint64_t ram_region_size;
} SimHello;

_Static_assert(offsetof(SimHello, magic) == 0x00, "magic");
_Static_assert(offsetof(SimHello, version) == 0x04, "version");
_Static_assert(offsetof(SimHello, header_size) == 0x06, "header_size");
_Static_assert(offsetof(SimHello, flags) == 0x08, "flags");
_Static_assert(offsetof(SimHello, vmid) == 0x0c, "vmid");
_Static_assert(offsetof(SimHello, ram_base) == 0x10, "ram_base");
_Static_assert(offsetof(SimHello, ram_size) == 0x18, "ram_size");
_Static_assert(offsetof(SimHello, pci_mmio_base) == 0x20, "pci_mmio_base");
_Static_assert(offsetof(SimHello, pci_mmio_size) == 0x28, "pci_mmio_size");
_Static_assert(offsetof(SimHello, iobuf_region_size) == 0x30,
               "iobuf_region_size");
_Static_assert(offsetof(SimHello, ram_region_size) == 0x38,
               "ram_region_size");
_Static_assert(sizeof(SimHello) == 64, "the version-1 hello is 64 bytes");
_Static_assert(sizeof(SimHello) <= SIM_HELLO_MAX_SIZE, "fits the maximum");
_Static_assert(SIM_IOBUF_REGION_SIZE == 0x3000, "event bar + 2-page iobuf");
_Static_assert(SEL4_EVENT_BAR_SIZE == SIM_PAGE_SIZE, "the event bar is a page");

/* ---- errors ---- */

#define SIM_TRANSPORT_ERROR sim_transport_error_quark()
GQuark sim_transport_error_quark(void);

typedef enum SimTransportError {
    SIM_TRANSPORT_ERROR_FAILED,     /* a system call failed */
    SIM_TRANSPORT_ERROR_CONNECT,    /* nobody listening at the path */
    SIM_TRANSPORT_ERROR_TIMEOUT,    /* no hello within the timeout */
    SIM_TRANSPORT_ERROR_CLOSED,     /* the VMM hung up before the hello */
    SIM_TRANSPORT_ERROR_PROTOCOL,   /* the hello or its fds are invalid */
} SimTransportError;

/* How long the device side waits for the hello by default. */
#define SIM_TRANSPORT_TIMEOUT_MS    5000

/* ---- driver side (the VMM) ---- */

/*
 * Fill @hello: magic, version, header_size = sizeof(SimHello), flags 0,
 * the uservm values, iobuf_region_size = SIM_IOBUF_REGION_SIZE and
 * ram_region_size = @ram_size.
 */
void sim_hello_init(SimHello *hello, uint32_t vmid, uint64_t ram_base,
                    uint64_t ram_size, uint64_t pci_mmio_base,
                    uint64_t pci_mmio_size);

/*
 * Create the four descriptors for @hello: two memfds of the declared
 * region sizes (CLOEXEC, sealed with F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_SEAL) and two eventfds (CLOEXEC, initial count 0).  The iobuf
 * region's event-bar name is set to "guest-iobuf-<vmid>".  On failure
 * nothing stays open.  Returns 0 or -1.
 */
int sim_transport_create_fds(const SimHello *hello, int fds[SIM_FD_COUNT],
                             GError **errp);
/*
 * The same, but the RAM region is @ram_fd (>= 0), an existing memfd the
 * caller lends (a copy is made; the caller keeps @ram_fd): the guest RAM
 * of a real guest, e.g. QEMU's memory-backend-memfd.  It is not sized or
 * sealed here: sim_transport_validate() then checks it like any RAM fd.
 * With @ram_fd < 0 this is sim_transport_create_fds().
 */
int sim_transport_create_fds_with_ram(const SimHello *hello, int ram_fd,
                                      int fds[SIM_FD_COUNT], GError **errp);

/*
 * Listen on @path, backlog 1, CLOEXEC.  The socket is created 0600, or
 * 0660 and of group @group when @group is not (gid_t)-1.  What is at
 * @path already: a stale socket of ours is unlinked; a live one, a
 * symbolic link, anything of another user or anything not a socket is
 * refused with an error saying which.  @path appears only once it
 * accepts connections (bound as "@path.<pid>", its mode set, then
 * renamed), so a peer may connect as soon as it sees the file, and never
 * sees it with other permissions.  Returns the fd or -1.
 */
int sim_transport_listen_group(const char *path, gid_t group, GError **errp);
/* The same, 0600. */
int sim_transport_listen(const char *path, GError **errp);
/*
 * Whether @path may be trusted as a socket to connect to: if it exists,
 * it is not a symbolic link and belongs to us or to root.  False with
 * @errp set (naming the path and what is wrong) otherwise.
 */
bool sim_transport_check_socket(const char *path, GError **errp);
/* Accept one device side (CLOEXEC, blocking).  Returns the fd or -1. */
int sim_transport_accept(int listen_fd, GError **errp);
/*
 * Send @hello (exactly sizeof(SimHello) bytes, converted to little-endian,
 * fields as given: nothing is validated or filled in here) and the four
 * fds in one message.  The caller keeps its own copies of @fds.
 */
int sim_transport_send_hello(int conn, const SimHello *hello,
                             const int fds[SIM_FD_COUNT], GError **errp);

/* ---- device side (the accelerator) ---- */

/*
 * Connect to the VMM at @path, receive the hello within @timeout_ms
 * (< 0: wait forever) and validate all of it (see the rules above).  On
 * success stores the header in @hello and the fds (CLOEXEC) in @fds, and
 * returns the connection fd (CLOEXEC, O_NONBLOCK), which the caller keeps
 * open and watches for the VMM's death.  On failure returns -1, and no fd
 * stays open.  A VMM that is not listening fails at once (no retry).
 */
int sim_transport_connect_timeout(const char *path, int timeout_ms,
                                  SimHello *hello, int fds[SIM_FD_COUNT],
                                  GError **errp);
/* The same with SIM_TRANSPORT_TIMEOUT_MS. */
int sim_transport_connect(const char *path, SimHello *hello,
                          int fds[SIM_FD_COUNT], GError **errp);

/*
 * Validate a hello and its fds as sim_transport_connect() does (exposed
 * for tests and for the VMM's own self-check).  Closes nothing.
 */
bool sim_transport_validate(const SimHello *hello,
                            const int fds[SIM_FD_COUNT], GError **errp);

/* ---- both sides ---- */

typedef struct SimRegions {
    void *iobuf_region;         /* SIM_IOBUF_REGION_SIZE bytes */
    size_t iobuf_region_size;
    uint8_t *event_bar;         /* iobuf_region + SIM_IOBUF_REGION_EVENT_BAR */
    void *iobuf;                /* iobuf_region + SIM_IOBUF_REGION_IOBUF */
    void *ram;                  /* guest RAM: host = ram + (gpa - ram_base) */
    size_t ram_region_size;
} SimRegions;

/*
 * mmap both regions MAP_SHARED, read/write, with the sizes of @hello
 * (call it only on a hello that sim_transport_connect() or
 * sim_transport_validate() accepted).  The mappings outlive the fds and
 * the VMM: the memfds may be closed afterwards.  On failure nothing stays
 * mapped and @regions is zeroed.
 */
int sim_transport_map(const SimHello *hello, const int fds[SIM_FD_COUNT],
                      SimRegions *regions, GError **errp);
/* Unmap what sim_transport_map() mapped; idempotent. */
void sim_transport_unmap(SimRegions *regions);

/* Close every fd >= 0 in @fds and set it to -1. */
void sim_transport_close_fds(int fds[SIM_FD_COUNT]);

/*
 * true when the peer on @conn has hung up or the socket is in error
 * (poll for POLLHUP | POLLRDHUP | POLLERR, timeout 0).  For a one-off
 * check; the accelerator watches @conn in its event loop instead.
 */
bool sim_transport_peer_gone(int conn);

#endif /* SEL4_SIM_TRANSPORT_H */
