/*
 * The UIO transport: discovery of the shared-region functions in sysfs,
 * mapping them from /dev/uioN, and the two doorbells.  See
 * sel4/uio_transport.h for the layout and the rules.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * sysfs is trusted to be well-formed only as far as it is checked here:
 * every number is parsed strictly, and a malformed file is an error, not
 * a guess.  Every failure path closes and unmaps what it opened.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sel4/uio_transport.h"

#define UIO_ERR_PREFIX      "uio transport: "

_Static_assert(UIO_NAME_MAX <= SEL4_EVENT_BAR_NAME_SIZE,
               "a device name fits the event bar");

GQuark uio_transport_error_quark(void)
{
    return g_quark_from_static_string("uio-transport-error-quark");
}

/* ---- sysfs ---- */

/* Read a small sysfs text file, without its one trailing newline. */
static char *read_sysfs_text(const char *path, GError **errp)
{
    g_autoptr(GError) local = NULL;
    char *text = NULL;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, &local)) {
        /* The message names the path already. */
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_SYSFS,
                    UIO_ERR_PREFIX "%s", local->message);
        return NULL;
    }
    if (len && text[len - 1] == '\n') {
        text[--len] = '\0';
    }
    if (strlen(text) != len) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_SYSFS,
                    UIO_ERR_PREFIX "%s contains a NUL byte", path);
        g_free(text);
        return NULL;
    }
    return text;
}

/* A "0x<hex>" sysfs number, strictly: nothing before or after. */
static bool read_sysfs_hex(const char *path, uint64_t *out, GError **errp)
{
    g_autofree char *text = read_sysfs_text(path, errp);
    guint64 v;

    if (!text) {
        return false;
    }
    if (!g_str_has_prefix(text, "0x") || !g_ascii_isxdigit(text[2]) ||
        !g_ascii_string_to_unsigned(text + 2, 16, 0, UINT64_MAX, &v, NULL)) {
        g_autofree char *shown = g_strescape(text, NULL);

        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_SYSFS,
                    UIO_ERR_PREFIX "%s: '%s' is not a 0x-hex number", path,
                    shown);
        return false;
    }
    *out = v;
    return true;
}

/* "uio<N>", N decimal without leading zeros. */
static bool parse_uio_entry(const char *ent, unsigned *index)
{
    guint64 v;

    if (!g_str_has_prefix(ent, "uio") || !g_ascii_isdigit(ent[3]) ||
        (ent[3] == '0' && ent[4] != '\0')) {
        return false;
    }
    if (!g_ascii_string_to_unsigned(ent + 3, 10, 0, G_MAXINT, &v, NULL)) {
        return false;
    }
    *index = (unsigned)v;
    return true;
}

static char *read_device_name(const char *class_dir, unsigned index,
                              GError **errp)
{
    g_autofree char *path = g_strdup_printf("%s/uio%u/name", class_dir,
                                            index);
    char *name = read_sysfs_text(path, errp);

    if (name && strlen(name) >= UIO_NAME_MAX) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_SYSFS,
                    UIO_ERR_PREFIX "%s: name '%s' is longer than %d bytes",
                    path, name, UIO_NAME_MAX - 1);
        g_clear_pointer(&name, g_free);
    }
    return name;
}

/* maps/mapM for M = 0.. until the first missing one (Linux: contiguous). */
static bool read_maps(const char *class_dir, UioDevice *dev, GError **errp)
{
    dev->n_maps = 0;
    for (unsigned m = 0; m < UIO_MAX_MAPS; m++) {
        g_autofree char *dir = g_strdup_printf("%s/uio%u/maps/map%u",
                                               class_dir, dev->index, m);
        g_autofree char *size = g_build_filename(dir, "size", NULL);
        g_autofree char *addr = g_build_filename(dir, "addr", NULL);
        g_autofree char *offset = g_build_filename(dir, "offset", NULL);
        UioMap *map = &dev->maps[m];

        if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
            break;
        }
        map->offset = 0;    /* kernels before 3.x have no offset file */
        if (!read_sysfs_hex(size, &map->size, errp) ||
            !read_sysfs_hex(addr, &map->addr, errp) ||
            (g_file_test(offset, G_FILE_TEST_EXISTS) &&
             !read_sysfs_hex(offset, &map->offset, errp))) {
            return false;
        }
        dev->n_maps = m + 1;
    }
    return true;
}

static bool set_dev_path(UioDevice *dev, const char *path, GError **errp)
{
    if (strlen(path) >= sizeof(dev->dev_path)) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_FAILED,
                    UIO_ERR_PREFIX "device path '%s' is too long", path);
        return false;
    }
    strcpy(dev->dev_path, path);
    return true;
}

/* Fill @out for uio<index> called @name: the node path and the maps. */
static bool fill_device(const char *class_dir, unsigned index,
                        const char *name, const char *dev_path,
                        UioDevice *out, GError **errp)
{
    memset(out, 0, sizeof(*out));
    out->index = index;
    g_strlcpy(out->name, name, sizeof(out->name));
    return set_dev_path(out, dev_path, errp) &&
           read_maps(class_dir, out, errp);
}

static gint compare_uint(gconstpointer a, gconstpointer b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

    return x < y ? -1 : x > y;
}

/* The N of every uio<N> in @class_dir, sorted (for stable messages). */
static GArray *list_uio_indices(const char *class_dir, GError **errp)
{
    g_autoptr(GError) local = NULL;
    GDir *dir = g_dir_open(class_dir, 0, &local);
    GArray *indices;
    const char *ent;

    if (!dir) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NOT_FOUND,
                    UIO_ERR_PREFIX "cannot list %s (no UIO devices?): %s",
                    class_dir, local->message);
        return NULL;
    }
    indices = g_array_new(FALSE, FALSE, sizeof(unsigned));
    while ((ent = g_dir_read_name(dir))) {
        unsigned index;

        if (parse_uio_entry(ent, &index)) {
            g_array_append_val(indices, index);
        }
    }
    g_dir_close(dir);
    g_array_sort(indices, compare_uint);
    return indices;
}

bool uio_find_device(const char *sysfs_class_dir, const char *dev_dir,
                     const char *name, UioDevice *out, GError **errp)
{
    g_autoptr(GArray) indices = list_uio_indices(sysfs_class_dir, errp);
    g_autoptr(GString) found = g_string_new(NULL);
    g_autofree char *dev_path = NULL;
    int match = -1;

    if (!indices) {
        return false;
    }
    for (guint i = 0; i < indices->len; i++) {
        unsigned index = g_array_index(indices, unsigned, i);
        g_autofree char *n = read_device_name(sysfs_class_dir, index, errp);

        /* An unreadable name may be the one we want: do not guess. */
        if (!n) {
            return false;
        }
        g_string_append_printf(found, "%suio%u '%s'", found->len ? ", " : "",
                               index, n);
        if (strcmp(n, name) != 0) {
            continue;
        }
        if (match >= 0) {
            g_set_error(errp, UIO_TRANSPORT_ERROR,
                        UIO_TRANSPORT_ERROR_DUPLICATE,
                        UIO_ERR_PREFIX "two UIO devices are called '%s': "
                        "uio%d and uio%u", name, match, index);
            return false;
        }
        match = (int)index;
    }
    if (match < 0) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NOT_FOUND,
                    UIO_ERR_PREFIX "no UIO device called '%s' in %s (found: "
                    "%s)", name, sysfs_class_dir,
                    found->len ? found->str : "none");
        return false;
    }
    dev_path = g_strdup_printf("%s/uio%d", dev_dir, match);
    return fill_device(sysfs_class_dir, (unsigned)match, name, dev_path, out,
                       errp);
}

bool uio_device_from_path(const char *sysfs_class_dir, const char *dev_path,
                          UioDevice *out, GError **errp)
{
    g_autofree char *base = g_path_get_basename(dev_path);
    g_autofree char *sys = NULL;
    g_autofree char *name = NULL;
    unsigned index;

    if (!parse_uio_entry(base, &index)) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NOT_FOUND,
                    UIO_ERR_PREFIX "'%s' is not a UIO device node (expected "
                    "a path ending in uio<N>)", dev_path);
        return false;
    }
    sys = g_strdup_printf("%s/uio%u", sysfs_class_dir, index);
    if (!g_file_test(sys, G_FILE_TEST_IS_DIR)) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NOT_FOUND,
                    UIO_ERR_PREFIX "'%s': no %s", dev_path, sys);
        return false;
    }
    name = read_device_name(sysfs_class_dir, index, errp);
    return name && fill_device(sysfs_class_dir, index, name, dev_path, out,
                               errp);
}

/* ---- mapping ---- */

static void regions_clear(UioRegions *r)
{
    memset(r, 0, sizeof(*r));
    r->iobuf_fd = -1;
    r->ram_fd = -1;
}

/* Map @m of @dev exists, starts on a page (offset 0), has @need bytes. */
static bool check_map(const UioDevice *dev, unsigned m, uint64_t need,
                      const char *what, GError **errp)
{
    if (m >= dev->n_maps) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_MAP,
                    UIO_ERR_PREFIX "%s (uio%u '%s') has no map%u (the %s)",
                    dev->dev_path, dev->index, dev->name, m, what);
        return false;
    }
    if (dev->maps[m].offset != 0) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_MAP,
                    UIO_ERR_PREFIX "%s (uio%u '%s') map%u (the %s) starts "
                    "at in-page offset 0x%" PRIx64 ", expected 0",
                    dev->dev_path, dev->index, dev->name, m, what,
                    dev->maps[m].offset);
        return false;
    }
    if (dev->maps[m].size < need) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_MAP,
                    UIO_ERR_PREFIX "%s (uio%u '%s') map%u (the %s) is 0x%"
                    PRIx64 " bytes, smaller than 0x%" PRIx64, dev->dev_path,
                    dev->index, dev->name, m, what, dev->maps[m].size, need);
        return false;
    }
    return true;
}

static int open_node(const UioDevice *dev, GError **errp)
{
    int fd = open(dev->dev_path, O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_FAILED,
                    UIO_ERR_PREFIX "cannot open %s ('%s'): %s", dev->dev_path,
                    dev->name, g_strerror(errno));
    }
    return fd;
}

/* UIO selects map M by the mmap offset M * page size, not by bytes. */
static uint64_t map_offset(unsigned m)
{
    return (uint64_t)m * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void *map_one(int fd, const UioDevice *dev, unsigned m, size_t len,
                     const char *what, GError **errp)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   (off_t)map_offset(m));

    if (p == MAP_FAILED) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_FAILED,
                    UIO_ERR_PREFIX "mapping %s map%u (the %s, 0x%zx bytes): "
                    "%s", dev->dev_path, m, what, len, g_strerror(errno));
        return NULL;
    }
    return p;
}

/*
 * The event BAR names its function at SEL4_EVENT_BAR_NAME.  Another
 * domain writes it: read a bounded copy once, byte by byte (device
 * memory), then compare.
 */
static bool check_event_bar_name(const void *event_bar, const UioDevice *dev,
                                 GError **errp)
{
    /* device memory another domain writes: each byte read exactly once */
    const volatile uint8_t *src =
        (const uint8_t *)event_bar + SEL4_EVENT_BAR_NAME;
    char name[SEL4_EVENT_BAR_NAME_SIZE];

    for (unsigned i = 0; i < sizeof(name); i++) {
        name[i] = (char)src[i];
    }
    if (!memchr(name, '\0', sizeof(name))) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NAME,
                    UIO_ERR_PREFIX "%s: the event BAR name at 0x%x is not "
                    "NUL-terminated within %u bytes (expected '%s')",
                    dev->dev_path, SEL4_EVENT_BAR_NAME,
                    SEL4_EVENT_BAR_NAME_SIZE, dev->name);
        return false;
    }
    if (strcmp(name, dev->name) != 0) {
        g_autofree char *shown = g_strescape(name, NULL);

        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NAME,
                    UIO_ERR_PREFIX "%s: the event BAR is named '%s', "
                    "expected '%s'", dev->dev_path, shown, dev->name);
        return false;
    }
    return true;
}

static bool check_distinct(const UioDevice *iobuf_dev,
                           const UioDevice *ram_dev, int iobuf_fd, int ram_fd,
                           GError **errp)
{
    struct stat a, b;

    if (fstat(iobuf_fd, &a) < 0 || fstat(ram_fd, &b) < 0) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_FAILED,
                    UIO_ERR_PREFIX "fstat: %s", g_strerror(errno));
        return false;
    }
    if (strcmp(iobuf_dev->name, ram_dev->name) == 0 ||
        (a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_MAP,
                    UIO_ERR_PREFIX "the iobuf and RAM functions are the same "
                    "device (%s '%s', %s '%s')", iobuf_dev->dev_path,
                    iobuf_dev->name, ram_dev->dev_path, ram_dev->name);
        return false;
    }
    return true;
}

static bool check_ram_size(uint64_t ram_size, GError **errp)
{
    if (ram_size == 0 || ram_size > SIZE_MAX) {
        g_set_error(errp, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_MAP,
                    UIO_ERR_PREFIX "ram_size 0x%" PRIx64 " is 0 or does not "
                    "fit the address space", ram_size);
        return false;
    }
    return true;
}

/* Maps of both functions, before anything is opened. */
static bool check_maps(const UioDevice *iobuf_dev, const UioDevice *ram_dev,
                       uint64_t ram_size, GError **errp)
{
    return check_ram_size(ram_size, errp) &&
           check_map(iobuf_dev, UIO_MAP_EVENT_BAR, SEL4_EVENT_BAR_SIZE,
                     "event BAR", errp) &&
           check_map(iobuf_dev, UIO_MAP_IOBUF, RPC_IOBUF_SIZE, "iobuf",
                     errp) &&
           check_map(ram_dev, UIO_MAP_RAM, ram_size, "guest RAM", errp);
}

static bool map_iobuf_function(const UioDevice *dev, UioRegions *r,
                               GError **errp)
{
    r->event_bar = map_one(r->iobuf_fd, dev, UIO_MAP_EVENT_BAR,
                           SEL4_EVENT_BAR_SIZE, "event BAR", errp);
    if (!r->event_bar) {
        return false;
    }
    r->iobuf = map_one(r->iobuf_fd, dev, UIO_MAP_IOBUF, RPC_IOBUF_SIZE,
                       "iobuf", errp);
    return r->iobuf && check_event_bar_name(r->event_bar, dev, errp);
}

bool uio_map_regions(const UioDevice *iobuf_dev, const UioDevice *ram_dev,
                     uint64_t ram_size, unsigned flags, UioRegions *out,
                     GError **errp)
{
    UioRegions r;

    regions_clear(&r);
    regions_clear(out);
    if (!check_maps(iobuf_dev, ram_dev, ram_size, errp)) {
        return false;
    }
    r.iobuf_fd = open_node(iobuf_dev, errp);
    if (r.iobuf_fd < 0) {
        goto fail;
    }
    r.ram_fd = open_node(ram_dev, errp);
    if (r.ram_fd < 0 ||
        !check_distinct(iobuf_dev, ram_dev, r.iobuf_fd, r.ram_fd, errp) ||
        !map_iobuf_function(iobuf_dev, &r, errp)) {
        goto fail;
    }
    r.ram_offset = map_offset(UIO_MAP_RAM);
    r.ram_size = ram_size;
    if (!(flags & UIO_MAP_RAM_FD_ONLY)) {
        r.ram = map_one(r.ram_fd, ram_dev, UIO_MAP_RAM, (size_t)ram_size,
                        "guest RAM", errp);
        if (!r.ram) {
            goto fail;
        }
    }
    *out = r;
    return true;

fail:
    uio_unmap_regions(&r);
    return false;
}

void uio_unmap_regions(UioRegions *r)
{
    if (r->event_bar) {
        munmap(r->event_bar, SEL4_EVENT_BAR_SIZE);
    }
    if (r->iobuf) {
        munmap(r->iobuf, RPC_IOBUF_SIZE);
    }
    if (r->ram) {
        munmap(r->ram, (size_t)r->ram_size);
    }
    if (r->iobuf_fd >= 0) {
        close(r->iobuf_fd);
    }
    if (r->ram_fd >= 0) {
        close(r->ram_fd);
    }
    regions_clear(r);
}

/* ---- doorbells ---- */

/*
 * One 4-byte transfer at offset 0.  A UIO device ignores the file
 * position, so positional I/O is the same there, and it keeps a stand-in
 * regular file (tests) from being walked through by repeated calls.
 * Sockets and pipes have no position (ESPIPE): plain read/write.
 */
static ssize_t uio_xfer(int fd, void *buf, bool out)
{
    ssize_t n;

    do {
        n = out ? pwrite(fd, buf, 4, 0) : pread(fd, buf, 4, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ESPIPE) {
        do {
            n = out ? write(fd, buf, 4) : read(fd, buf, 4);
        } while (n < 0 && errno == EINTR);
    }
    return n;
}

int uio_doorbell_ack(int fd)
{
    uint32_t enable = 1;
    uint32_t count;
    ssize_t n;
    int pending;

    n = uio_xfer(fd, &count, false);
    if (n < 0 && errno != EAGAIN) {
        return -errno;
    }
    if (n >= 0 && n != sizeof(count)) {
        return -EIO;
    }
    pending = n == sizeof(count);

    n = uio_xfer(fd, &enable, true);
    if (n < 0) {
        return -errno;
    }
    return n == sizeof(enable) ? pending : -EIO;
}

void uio_ring(void *event_bar)
{
    /* an MMIO store that faults into the VMM: never elided or merged */
    volatile uint32_t *emit =
        (uint32_t *)((uint8_t *)event_bar + SEL4_EVENT_BAR_EMIT);

    /* The VMM reads the iobuf after the fault: publish it first. */
    atomic_thread_fence(memory_order_release);
    *emit = 1;
}
