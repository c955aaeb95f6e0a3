/*
 * The UIO transport: finding and mapping the device VM's shared regions
 * when the connection driver exposes them as /dev/uioN.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each shared region is a PCI function of the device VM (protocol.md,
 * "Doorbells and regions"), exposed as one UIO device:
 *
 *   guest-iobuf-<id>  map0 = event BAR (4 KiB), map1 = iobuf (RPC_IOBUF_SIZE)
 *   guest-ram-<id>    map1 = the driver VM's RAM (>= uservm ram_size)
 *
 * sysfs describes them: <class>/uioN/name is the function's name and
 * <class>/uioN/maps/mapM/{addr,size,offset,name} each map, the numbers as
 * "0x..." hex text.  The mmap offset of map M on /dev/uioN is M times the
 * page size.  The iobuf function's fd is also the VMM -> device doorbell:
 * a 4-byte read() waits for (or, non-blocking, reports) the interrupt,
 * a 4-byte write() of 1 re-enables it.  The device -> VMM doorbell is a
 * 32-bit store to event BAR offset 0x0, which faults into the VMM.
 *
 * Everything read from sysfs and from the event BAR is checked: the maps
 * must exist with page-aligned starts (offset 0) and sufficient sizes,
 * and the event BAR must carry the function's own name at offset 0x8.
 */
#ifndef SEL4_UIO_TRANSPORT_H
#define SEL4_UIO_TRANSPORT_H

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "sel4/event_bar.h"
#include "sel4/rpc.h"

#define UIO_SYSFS_CLASS_DIR     "/sys/class/uio"
#define UIO_DEV_DIR             "/dev"

/* Linux's MAX_UIO_MAPS: sysfs has maps/map0 .. map4 at most. */
#define UIO_MAX_MAPS            5
#define UIO_NAME_MAX            64      /* longest name we accept, + NUL */

#define UIO_MAP_EVENT_BAR       0       /* on the iobuf function */
#define UIO_MAP_IOBUF           1       /* on the iobuf function */
#define UIO_MAP_RAM             1       /* on the RAM function */

#define UIO_IOBUF_NAME_FMT      "guest-iobuf-%" PRIu32
#define UIO_RAM_NAME_FMT        "guest-ram-%" PRIu32

typedef struct UioMap {
    uint64_t addr;              /* physical address (informational) */
    uint64_t size;              /* bytes */
    uint64_t offset;            /* in-page offset of addr; must be 0 */
} UioMap;

typedef struct UioDevice {
    unsigned index;             /* N of uioN */
    char name[UIO_NAME_MAX];    /* sysfs name, trailing newline removed */
    char dev_path[PATH_MAX];    /* the node: <dev_dir>/uioN, or as given */
    unsigned n_maps;            /* maps[0 .. n_maps - 1] exist */
    UioMap maps[UIO_MAX_MAPS];
} UioDevice;

#define UIO_TRANSPORT_ERROR uio_transport_error_quark()
GQuark uio_transport_error_quark(void);

typedef enum UioTransportError {
    UIO_TRANSPORT_ERROR_FAILED,     /* a system call failed */
    UIO_TRANSPORT_ERROR_NOT_FOUND,  /* no device of that name or path */
    UIO_TRANSPORT_ERROR_DUPLICATE,  /* two devices of the same name */
    UIO_TRANSPORT_ERROR_SYSFS,      /* a sysfs file is unreadable/malformed */
    UIO_TRANSPORT_ERROR_MAP,        /* a map is missing, too small, unaligned */
    UIO_TRANSPORT_ERROR_NAME,       /* the event BAR carries the wrong name */
} UioTransportError;

/*
 * Find the one UIO device called @name under @sysfs_class_dir
 * (UIO_SYSFS_CLASS_DIR, or a test tree): scan its uio<N> entries, read
 * each `name`, match exactly.  Fills @out with the node path
 * <@dev_dir>/uioN and the maps.  Errors: no such device (the message
 * lists the names found), two devices of that name, an unreadable name,
 * an unreadable or malformed map file.  @out is undefined on failure.
 */
bool uio_find_device(const char *sysfs_class_dir, const char *dev_dir,
                     const char *name, UioDevice *out, GError **errp);

/*
 * The same for an explicit node (e.g. uio-iobuf=/dev/uio3): uioN is the
 * basename of @dev_path, whose sysfs entry gives the name and the maps;
 * dev_path is kept as given.
 */
bool uio_device_from_path(const char *sysfs_class_dir, const char *dev_path,
                          UioDevice *out, GError **errp);

typedef enum UioMapFlags {
    UIO_MAP_DEFAULT = 0,
    /*
     * Check the RAM function's map and keep its fd open, but do not mmap
     * it: the machine maps it itself (memory_region_init_ram_from_fd()
     * with ram_fd and ram_offset).  ram is then NULL.
     */
    UIO_MAP_RAM_FD_ONLY = 1 << 0,
} UioMapFlags;

typedef struct UioRegions {
    int iobuf_fd;               /* O_RDWR|O_CLOEXEC; the VMM -> device bell */
    void *event_bar;            /* SEL4_EVENT_BAR_SIZE bytes (map0) */
    void *iobuf;                /* RPC_IOBUF_SIZE bytes (map1) */
    int ram_fd;                 /* O_RDWR|O_CLOEXEC */
    uint64_t ram_offset;        /* mmap offset of RAM in ram_fd */
    uint64_t ram_size;          /* bytes of RAM checked (and mapped) */
    void *ram;                  /* host = ram + (gpa - ram_base); or NULL */
} UioRegions;

/*
 * Open both nodes O_RDWR|O_CLOEXEC, check the maps (event BAR map0 >=
 * SEL4_EVENT_BAR_SIZE, iobuf map1 >= RPC_IOBUF_SIZE, RAM map1 >=
 * @ram_size, all with offset 0), mmap them MAP_SHARED read/write at
 * M * page size (RAM only without UIO_MAP_RAM_FD_ONLY), and check that
 * the event BAR names @iobuf_dev (bounded read at SEL4_EVENT_BAR_NAME).
 * @ram_size comes from uservm (validated there) and must be non-zero.  On
 * failure nothing stays open or mapped and @out is empty (safe to pass
 * to uio_unmap_regions()).
 */
bool uio_map_regions(const UioDevice *iobuf_dev, const UioDevice *ram_dev,
                     uint64_t ram_size, unsigned flags, UioRegions *out,
                     GError **errp);

/*
 * Undo uio_map_regions(): unmap, close, leave @r empty; idempotent.  Only
 * for a struct that uio_map_regions() filled (on success or failure).
 */
void uio_unmap_regions(UioRegions *r);

/*
 * Take the VMM -> device doorbell on the iobuf fd: read the 4-byte
 * interrupt count, then write u32 1 to re-enable the interrupt (always,
 * even when nothing was pending: a predecessor may have died between the
 * two).  Returns 1 when an interrupt was pending, 0 when not (EAGAIN on a
 * non-blocking fd), -errno on failure.  A blocking fd waits in read().
 */
int uio_doorbell_ack(int fd);

/*
 * Ring the device -> VMM doorbell: a release barrier (the iobuf writes
 * before it are visible first), then one volatile 32-bit store to event
 * BAR offset SEL4_EVENT_BAR_EMIT.  The value is irrelevant to the VMM.
 */
void uio_ring(void *event_bar);

#endif /* SEL4_UIO_TRANSPORT_H */
