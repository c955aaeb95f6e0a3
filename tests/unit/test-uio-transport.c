/*
 * The UIO transport's discovery and mapping against a stand-in UIO tree
 * in a temporary directory: a sysfs-like class/uio/uioN/{name,maps/mapM/
 * {addr,size,offset}} and dev/uioN as regular files laid out as UIO lays
 * out its mmap offsets (map M at M * page size).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What a stand-in cannot cover (this kernel has no UIO module, and no
 * seL4 VMM is behind the files):
 *  - the interrupt semantics of a real /dev/uioN: the 4-byte read() that
 *    blocks until the next interrupt and returns the event count, and the
 *    write() of 1 that re-enables a masked interrupt.  uio_doorbell_ack()
 *    is exercised on a socketpair, which checks its reads, writes and
 *    return values, not the kernel's behaviour;
 *  - the event BAR store faulting into the VMM (the page is read-only in
 *    stage 2); here uio_ring() is an ordinary store into a file mapping;
 *  - the kernel's own mmap checks (map index from the offset, length <=
 *    map size), its sysfs formatting beyond the "0x..." text used here,
 *    and device-memory access semantics of the BARs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sel4/uio_transport.h"
#include "fd-count.h"

#define RAM_SIZE        UINT64_C(0x10000)
#define IOBUF_NAME      "guest-iobuf-1"
#define RAM_NAME        "guest-ram-1"

typedef struct StandIn {
    char *root;
    char *class_dir;            /* root/class/uio */
    char *dev_dir;              /* root/dev */
} StandIn;

static uint64_t page(void)
{
    return (uint64_t)sysconf(_SC_PAGESIZE);
}

static void standin_init(StandIn *s)
{
    s->root = g_dir_make_tmp("uio-standin-XXXXXX", NULL);
    g_assert_nonnull(s->root);
    s->class_dir = g_build_filename(s->root, "class", "uio", NULL);
    s->dev_dir = g_build_filename(s->root, "dev", NULL);
    g_assert_cmpint(g_mkdir_with_parents(s->class_dir, 0755), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(s->dev_dir, 0755), ==, 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(path);
}

static void standin_cleanup(StandIn *s)
{
    g_assert_cmpint(nftw(s->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS),
                    ==, 0);
    g_free(s->root);
    g_free(s->class_dir);
    g_free(s->dev_dir);
}

static void write_text(const char *path, const char *text)
{
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* class/uio/uio<index>/<rel> */
static char *sys_path(const StandIn *s, unsigned index, const char *rel)
{
    return g_strdup_printf("%s/uio%u/%s", s->class_dir, index, rel);
}

static char *node_path(const StandIn *s, unsigned index)
{
    return g_strdup_printf("%s/uio%u", s->dev_dir, index);
}

static void set_map_file(const StandIn *s, unsigned index, unsigned m,
                         const char *file, const char *text)
{
    g_autofree char *rel = g_strdup_printf("maps/map%u/%s", m, file);
    g_autofree char *path = sys_path(s, index, rel);

    write_text(path, text);
}

/*
 * uio<index> called @name with @n maps of @sizes, and its node: a file
 * covering every map at M * page size.  @bar_name (if any) is written at
 * the event BAR's name offset.
 */
static void standin_add(const StandIn *s, unsigned index, const char *name,
                        const uint64_t *sizes, unsigned n,
                        const char *bar_name)
{
    g_autofree char *dir = sys_path(s, index, "");
    g_autofree char *name_path = sys_path(s, index, "name");
    g_autofree char *name_text = g_strdup_printf("%s\n", name);
    g_autofree char *node = node_path(s, index);
    uint64_t file_size = 0;
    int fd;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    write_text(name_path, name_text);
    for (unsigned m = 0; m < n; m++) {
        g_autofree char *rel = g_strdup_printf("maps/map%u", m);
        g_autofree char *mdir = sys_path(s, index, rel);
        g_autofree char *size = g_strdup_printf("0x%" PRIx64 "\n", sizes[m]);
        g_autofree char *addr =
            g_strdup_printf("0x%016" PRIx64 "\n",
                            UINT64_C(0x10000000) + index * 0x100000 +
                            m * 0x10000);

        g_assert_cmpint(g_mkdir_with_parents(mdir, 0755), ==, 0);
        set_map_file(s, index, m, "size", size);
        set_map_file(s, index, m, "addr", addr);
        set_map_file(s, index, m, "offset", "0x0\n");
        file_size = MAX(file_size, m * page() + sizes[m]);
    }
    fd = open(node, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)file_size), ==, 0);
    if (bar_name) {
        g_assert_cmpint(pwrite(fd, bar_name, strlen(bar_name) + 1,
                               SEL4_EVENT_BAR_NAME), ==,
                        (ssize_t)strlen(bar_name) + 1);
    }
    close(fd);
}

static const uint64_t iobuf_sizes[] = { SEL4_EVENT_BAR_SIZE, RPC_IOBUF_SIZE };
static const uint64_t ram_sizes[] = { SEL4_EVENT_BAR_SIZE, RAM_SIZE };

/* The usual pair: uio0 = RAM, uio3 = iobuf, plus an unrelated uio1. */
static void standin_good(StandIn *s)
{
    static const uint64_t other[] = { 0x1000 };

    standin_init(s);
    standin_add(s, 0, RAM_NAME, ram_sizes, 2, NULL);
    standin_add(s, 1, "other-device", other, 1, NULL);
    standin_add(s, 3, IOBUF_NAME, iobuf_sizes, 2, IOBUF_NAME);
}

static void find_both(const StandIn *s, UioDevice *io, UioDevice *ram)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(uio_find_device(s->class_dir, s->dev_dir, IOBUF_NAME, io,
                                  &err));
    g_assert_no_error(err);
    g_assert_true(uio_find_device(s->class_dir, s->dev_dir, RAM_NAME, ram,
                                  &err));
    g_assert_no_error(err);
}

/* ---- discovery ---- */

static void test_found_by_name(void)
{
    g_autofree char *node = NULL;
    StandIn s;
    UioDevice io, ram;

    standin_good(&s);
    find_both(&s, &io, &ram);
    node = node_path(&s, 3);
    g_assert_cmpuint(io.index, ==, 3);
    g_assert_cmpstr(io.name, ==, IOBUF_NAME);
    g_assert_cmpstr(io.dev_path, ==, node);
    g_assert_cmpuint(io.n_maps, ==, 2);
    g_assert_cmphex(io.maps[0].size, ==, SEL4_EVENT_BAR_SIZE);
    g_assert_cmphex(io.maps[1].size, ==, RPC_IOBUF_SIZE);
    g_assert_cmphex(io.maps[1].addr, ==, 0x10310000);
    g_assert_cmphex(io.maps[1].offset, ==, 0);
    g_assert_cmpuint(ram.index, ==, 0);
    g_assert_cmphex(ram.maps[1].size, ==, RAM_SIZE);
    standin_cleanup(&s);
}

/* uio_find_device(@name) fails with @code, the message holding @expect. */
static void expect_find_error(const StandIn *s, const char *name,
                              UioTransportError code, const char *expect)
{
    g_autoptr(GError) err = NULL;
    UioDevice d;

    g_assert_false(uio_find_device(s->class_dir, s->dev_dir, name, &d,
                                   &err));
    g_test_message("%s", err->message);
    g_assert_error(err, UIO_TRANSPORT_ERROR, (gint)code);
    g_assert_nonnull(strstr(err->message, expect));
}

static void test_not_found(void)
{
    g_autofree char *missing = NULL;
    StandIn s;

    standin_good(&s);
    expect_find_error(&s, "guest-iobuf-2", UIO_TRANSPORT_ERROR_NOT_FOUND,
                      "no UIO device called 'guest-iobuf-2'");
    expect_find_error(&s, "guest-iobuf-2", UIO_TRANSPORT_ERROR_NOT_FOUND,
                      "(found: uio0 'guest-ram-1', uio1 'other-device', "
                      "uio3 'guest-iobuf-1')");

    /* No class directory at all: the kernel has no UIO devices. */
    g_free(s.class_dir);
    s.class_dir = g_build_filename(s.root, "nothing", NULL);
    expect_find_error(&s, IOBUF_NAME, UIO_TRANSPORT_ERROR_NOT_FOUND,
                      "cannot list");
    standin_cleanup(&s);

    /* An empty class directory. */
    standin_init(&s);
    expect_find_error(&s, IOBUF_NAME, UIO_TRANSPORT_ERROR_NOT_FOUND,
                      "(found: none)");
    standin_cleanup(&s);
}

static void test_duplicate_names(void)
{
    StandIn s;

    standin_good(&s);
    standin_add(&s, 12, IOBUF_NAME, iobuf_sizes, 2, IOBUF_NAME);
    expect_find_error(&s, IOBUF_NAME, UIO_TRANSPORT_ERROR_DUPLICATE,
                      "two UIO devices are called 'guest-iobuf-1': uio3 and "
                      "uio12");
    standin_cleanup(&s);
}

/* Entries that are not uio<N> are not devices. */
static void test_ignores_other_entries(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *junk1 = NULL, *junk2 = NULL, *junk3 = NULL;
    StandIn s;
    UioDevice d;

    standin_good(&s);
    junk1 = g_build_filename(s.class_dir, "uio03", NULL);
    junk2 = g_build_filename(s.class_dir, "uiox", NULL);
    junk3 = g_build_filename(s.class_dir, "README", NULL);
    g_assert_cmpint(g_mkdir(junk1, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(junk2, 0755), ==, 0);
    write_text(junk3, "x");
    g_assert_true(uio_find_device(s.class_dir, s.dev_dir, IOBUF_NAME, &d,
                                  &err));
    g_assert_no_error(err);
    g_assert_cmpuint(d.index, ==, 3);
    standin_cleanup(&s);
}

static void test_explicit_path(void)
{
    g_autoptr(GError) err = NULL;
    StandIn s;
    UioDevice d;

    standin_good(&s);
    /* The node path is kept as given; only its basename selects sysfs. */
    g_assert_true(uio_device_from_path(s.class_dir, "/dev/uio3", &d, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(d.index, ==, 3);
    g_assert_cmpstr(d.name, ==, IOBUF_NAME);
    g_assert_cmpstr(d.dev_path, ==, "/dev/uio3");
    g_assert_cmpuint(d.n_maps, ==, 2);
    g_assert_cmphex(d.maps[1].size, ==, RPC_IOBUF_SIZE);

    g_assert_false(uio_device_from_path(s.class_dir, "/dev/uio7", &d, &err));
    g_assert_error(err, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(err->message, "'/dev/uio7'"));
    g_clear_error(&err);
    g_assert_false(uio_device_from_path(s.class_dir, "/dev/sda", &d, &err));
    g_assert_error(err, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(err->message, "'/dev/sda' is not a UIO device"));
    standin_cleanup(&s);
}

/* ---- malformed sysfs ---- */

typedef struct SysfsCase {
    const char *name;
    const char *file;           /* under maps/map1 of uio3 */
    const char *text;           /* NULL: remove the file */
    const char *expect;
    size_t len;                 /* bytes of text; 0: strlen(text) */
} SysfsCase;

static const SysfsCase sysfs_cases[] = {
    { "size-decimal", "size", "8192\n", "'8192' is not a 0x-hex number" },
    { "size-bare-0x", "size", "0x\n", "'0x' is not a 0x-hex number" },
    { "size-garbage", "size", "0x2000 bytes\n", "'0x2000 bytes'" },
    { "size-two-newlines", "size", "0x2000\n\n",
      "'0x2000\\n' is not a 0x-hex number" },
    { "size-negative", "size", "-0x2000\n", "'-0x2000'" },
    { "size-hex-sign", "size", "0x-2000\n", "'0x-2000'" },
    { "size-empty", "size", "", "'' is not a 0x-hex number" },
    { "size-overflow", "size", "0x10000000000000000\n",
      "'0x10000000000000000'" },
    { "size-nul", "size", "0x20\0" "00\n", "contains a NUL byte", 7 },
    { "size-missing", "size", NULL, "No such file or directory" },
    { "addr-garbage", "addr", "banana\n", "'banana' is not a 0x-hex" },
    { "offset-garbage", "offset", "0xzz\n", "'0xzz' is not a 0x-hex" },
};

static void test_malformed_sysfs(gconstpointer data)
{
    const SysfsCase *c = data;
    g_autoptr(GError) err = NULL;
    g_autofree char *rel = g_strdup_printf("maps/map1/%s", c->file);
    g_autofree char *path = NULL;
    StandIn s;
    UioDevice d;

    standin_good(&s);
    path = sys_path(&s, 3, rel);
    if (!c->text) {
        g_assert_cmpint(g_unlink(path), ==, 0);
    } else {
        size_t len = c->len ? c->len : strlen(c->text);

        g_assert_true(g_file_set_contents(path, c->text, (gssize)len, NULL));
    }
    expect_find_error(&s, IOBUF_NAME, UIO_TRANSPORT_ERROR_SYSFS, path);
    expect_find_error(&s, IOBUF_NAME, UIO_TRANSPORT_ERROR_SYSFS, c->expect);
    /* The explicit path reads the same files. */
    g_assert_false(uio_device_from_path(s.class_dir, "/dev/uio3", &d, &err));
    g_assert_error(err, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_SYSFS);
    standin_cleanup(&s);
}

/* A name that cannot be read might be ours: an error, not a skip. */
static void test_unreadable_name(void)
{
    g_autofree char *name = NULL;
    StandIn s;

    standin_good(&s);
    name = sys_path(&s, 1, "name");
    g_assert_cmpint(g_unlink(name), ==, 0);
    g_assert_cmpint(g_mkdir(name, 0755), ==, 0);       /* read fails */
    expect_find_error(&s, IOBUF_NAME, UIO_TRANSPORT_ERROR_SYSFS, name);
    standin_cleanup(&s);
}

/* ---- mapping ---- */

/* uio_map_regions() fails with @code and @expect, leaving nothing open. */
static void expect_map_error_devs(const UioDevice *io, const UioDevice *ram,
                                  uint64_t ram_size, UioTransportError code,
                                  const char *expect)
{
    g_autoptr(GError) err = NULL;
    unsigned before = count_fds();
    UioRegions r;

    g_assert_false(uio_map_regions(io, ram, ram_size, UIO_MAP_DEFAULT, &r,
                                   &err));
    g_test_message("%s", err->message);
    g_assert_error(err, UIO_TRANSPORT_ERROR, (gint)code);
    g_assert_nonnull(strstr(err->message, expect));
    g_assert_cmpint(r.iobuf_fd, ==, -1);
    g_assert_cmpint(r.ram_fd, ==, -1);
    g_assert_null(r.event_bar);
    g_assert_null(r.iobuf);
    g_assert_null(r.ram);
    uio_unmap_regions(&r);              /* harmless after a failure */
    g_assert_cmpuint(count_fds(), ==, before);
}

static void expect_map_error(const StandIn *s, uint64_t ram_size,
                             UioTransportError code, const char *expect)
{
    UioDevice io, ram;

    find_both(s, &io, &ram);
    expect_map_error_devs(&io, &ram, ram_size, code, expect);
}

static void test_map_too_small(void)
{
    static const uint64_t small_bar[] = { 0x800, RPC_IOBUF_SIZE };
    static const uint64_t small_iobuf[] = { SEL4_EVENT_BAR_SIZE, 0x1000 };
    g_autofree char *map1 = NULL;
    StandIn s;

    standin_good(&s);
    expect_map_error(&s, RAM_SIZE + 0x1000, UIO_TRANSPORT_ERROR_MAP,
                     "(uio0 'guest-ram-1') map1 (the guest RAM) is 0x10000 "
                     "bytes, smaller than 0x11000");
    expect_map_error(&s, 0, UIO_TRANSPORT_ERROR_MAP, "ram_size 0x0 is 0");
    standin_add(&s, 3, IOBUF_NAME, small_bar, 2, IOBUF_NAME);
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_MAP,
                     "map0 (the event BAR) is 0x800 bytes, smaller than "
                     "0x1000");
    standin_add(&s, 3, IOBUF_NAME, small_iobuf, 2, IOBUF_NAME);
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_MAP,
                     "map1 (the iobuf) is 0x1000 bytes, smaller than 0x2000");
    standin_cleanup(&s);

    /* The iobuf function without its map1. */
    standin_good(&s);
    map1 = sys_path(&s, 3, "maps/map1");
    g_assert_cmpint(nftw(map1, remove_entry, 4, FTW_DEPTH | FTW_PHYS), ==, 0);
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_MAP,
                     "(uio3 'guest-iobuf-1') has no map1 (the iobuf)");
    standin_cleanup(&s);
}

static void test_map_unaligned(void)
{
    StandIn s;

    standin_good(&s);
    set_map_file(&s, 0, 1, "offset", "0x800\n");
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_MAP,
                     "map1 (the guest RAM) starts at in-page offset 0x800");
    standin_cleanup(&s);
}

static void test_event_bar_name(void)
{
    char unterminated[SEL4_EVENT_BAR_NAME_SIZE + 8];
    g_autofree char *node = NULL;
    StandIn s;
    int fd;

    standin_good(&s);
    standin_add(&s, 3, IOBUF_NAME, iobuf_sizes, 2, "guest-iobuf-2");
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_NAME,
                     "the event BAR is named 'guest-iobuf-2', expected "
                     "'guest-iobuf-1'");
    standin_add(&s, 3, IOBUF_NAME, iobuf_sizes, 2, NULL);
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_NAME,
                     "the event BAR is named '', expected 'guest-iobuf-1'");

    /* No NUL within the bound: refused without reading past it. */
    memset(unterminated, 'A', sizeof(unterminated));
    node = node_path(&s, 3);
    fd = open(node, O_WRONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, unterminated, sizeof(unterminated),
                           SEL4_EVENT_BAR_NAME), ==, sizeof(unterminated));
    close(fd);
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_NAME,
                     "is not NUL-terminated within 64 bytes");
    standin_cleanup(&s);
}

static void test_same_device_twice(void)
{
    StandIn s;
    UioDevice io, ram;

    standin_good(&s);
    find_both(&s, &io, &ram);
    /* RAM "found" at the iobuf's node under another name. */
    ram = io;
    g_strlcpy(ram.name, RAM_NAME, sizeof(ram.name));
    ram.maps[1].size = RAM_SIZE;
    expect_map_error_devs(&io, &ram, RAM_SIZE, UIO_TRANSPORT_ERROR_MAP,
                          "are the same device");
    standin_cleanup(&s);
}

static uint32_t pread_u32(const char *path, uint64_t off)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint32_t v = 0;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &v, sizeof(v), (off_t)off), ==, sizeof(v));
    close(fd);
    return v;
}

static void test_map_and_write_through(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *io_node = NULL, *ram_node = NULL;
    unsigned before = count_fds();
    StandIn s;
    UioDevice io, ram;
    UioRegions r;

    standin_good(&s);
    find_both(&s, &io, &ram);
    io_node = node_path(&s, 3);
    ram_node = node_path(&s, 0);
    g_assert_true(uio_map_regions(&io, &ram, RAM_SIZE, UIO_MAP_DEFAULT, &r,
                                  &err));
    g_assert_no_error(err);
    g_assert_cmpint(r.iobuf_fd, >=, 0);
    g_assert_cmpint(r.ram_fd, >=, 0);
    g_assert_cmpint(fcntl(r.iobuf_fd, F_GETFD), ==, FD_CLOEXEC);
    g_assert_cmpint(fcntl(r.ram_fd, F_GETFL) & O_ACCMODE, ==, O_RDWR);
    g_assert_cmphex(r.ram_offset, ==, page());
    g_assert_cmphex(r.ram_size, ==, RAM_SIZE);
    g_assert_nonnull(r.ram);
    g_assert_cmpstr((char *)r.event_bar + SEL4_EVENT_BAR_NAME, ==, IOBUF_NAME);

    /* Map M is at M * page size of the node: prove it with pread. */
    *(volatile uint32_t *)((uint8_t *)r.iobuf + 0x10) = 0x11223344;
    *(volatile uint32_t *)((uint8_t *)r.ram + RAM_SIZE - 4) = 0x55667788;
    *(volatile uint32_t *)((uint8_t *)r.event_bar + SEL4_EVENT_BAR_CONSUME) =
        0x99;
    g_assert_cmphex(pread_u32(io_node, page() + 0x10), ==, 0x11223344);
    g_assert_cmphex(pread_u32(ram_node, page() + RAM_SIZE - 4), ==,
                    0x55667788);
    g_assert_cmphex(pread_u32(io_node, SEL4_EVENT_BAR_CONSUME), ==, 0x99);

    /* The device -> VMM doorbell is a store at event BAR offset 0. */
    g_assert_cmphex(pread_u32(io_node, SEL4_EVENT_BAR_EMIT), ==, 0);
    uio_ring(r.event_bar);
    g_assert_cmphex(pread_u32(io_node, SEL4_EVENT_BAR_EMIT), !=, 0);

    uio_unmap_regions(&r);
    g_assert_cmpint(r.iobuf_fd, ==, -1);
    g_assert_null(r.ram);
    uio_unmap_regions(&r);              /* idempotent */
    g_assert_cmpuint(count_fds(), ==, before);
    standin_cleanup(&s);
}

/* RAM left for the machine to map from (ram_fd, ram_offset). */
static void test_ram_fd_only(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *ram_node = NULL;
    unsigned before = count_fds();
    StandIn s;
    UioDevice io, ram;
    UioRegions r;
    void *p;

    standin_good(&s);
    find_both(&s, &io, &ram);
    ram_node = node_path(&s, 0);
    g_assert_true(uio_map_regions(&io, &ram, RAM_SIZE, UIO_MAP_RAM_FD_ONLY,
                                  &r, &err));
    g_assert_no_error(err);
    g_assert_null(r.ram);
    g_assert_cmpint(r.ram_fd, >=, 0);
    p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r.ram_fd,
             (off_t)r.ram_offset);
    g_assert_true(p != MAP_FAILED);
    *(volatile uint32_t *)p = 0xabcd;
    g_assert_cmphex(pread_u32(ram_node, page()), ==, 0xabcd);
    munmap(p, RAM_SIZE);

    /* The RAM map is still checked. */
    uio_unmap_regions(&r);
    g_assert_false(uio_map_regions(&io, &ram, RAM_SIZE * 2,
                                   UIO_MAP_RAM_FD_ONLY, &r, &err));
    g_assert_error(err, UIO_TRANSPORT_ERROR, UIO_TRANSPORT_ERROR_MAP);
    g_assert_cmpuint(count_fds(), ==, before);
    standin_cleanup(&s);
}

static void test_missing_node(void)
{
    g_autofree char *node = NULL;
    StandIn s;

    standin_good(&s);
    node = node_path(&s, 0);
    g_assert_cmpint(g_unlink(node), ==, 0);
    expect_map_error(&s, RAM_SIZE, UIO_TRANSPORT_ERROR_FAILED,
                     "cannot open");
    standin_cleanup(&s);
}

/* ---- the VMM -> device doorbell's read/write protocol ---- */

static void test_doorbell_ack(void)
{
    uint32_t count = 5, got = 0;
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
                               SOCK_NONBLOCK, 0, sv), ==, 0);
    /* Pending: the count is consumed, then 1 is written back. */
    g_assert_cmpint(write(sv[1], &count, sizeof(count)), ==, sizeof(count));
    g_assert_cmpint(uio_doorbell_ack(sv[0]), ==, 1);
    g_assert_cmpint(read(sv[1], &got, sizeof(got)), ==, sizeof(got));
    g_assert_cmpuint(got, ==, 1);
    /* Nothing pending (EAGAIN): 0, and re-enabled all the same. */
    got = 0;
    g_assert_cmpint(uio_doorbell_ack(sv[0]), ==, 0);
    g_assert_cmpint(read(sv[1], &got, sizeof(got)), ==, sizeof(got));
    g_assert_cmpuint(got, ==, 1);
    /* A short read is an error, not an interrupt. */
    g_assert_cmpint(write(sv[1], &count, 2), ==, 2);
    g_assert_cmpint(uio_doorbell_ack(sv[0]), ==, -EIO);
    close(sv[0]);
    close(sv[1]);
    g_assert_cmpint(uio_doorbell_ack(sv[0]), ==, -EBADF);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/uio-transport/found-by-name", test_found_by_name);
    g_test_add_func("/uio-transport/not-found", test_not_found);
    g_test_add_func("/uio-transport/duplicate-names", test_duplicate_names);
    g_test_add_func("/uio-transport/ignores-other-entries",
                    test_ignores_other_entries);
    g_test_add_func("/uio-transport/explicit-path", test_explicit_path);
    for (unsigned i = 0; i < G_N_ELEMENTS(sysfs_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/uio-transport/malformed/%s",
                            sysfs_cases[i].name);

        g_test_add_data_func(path, &sysfs_cases[i], test_malformed_sysfs);
    }
    g_test_add_func("/uio-transport/unreadable-name", test_unreadable_name);
    g_test_add_func("/uio-transport/map-too-small", test_map_too_small);
    g_test_add_func("/uio-transport/map-unaligned", test_map_unaligned);
    g_test_add_func("/uio-transport/event-bar-name", test_event_bar_name);
    g_test_add_func("/uio-transport/same-device-twice",
                    test_same_device_twice);
    g_test_add_func("/uio-transport/map-and-write-through",
                    test_map_and_write_through);
    g_test_add_func("/uio-transport/ram-fd-only", test_ram_fd_only);
    g_test_add_func("/uio-transport/missing-node", test_missing_node);
    g_test_add_func("/uio-transport/doorbell-ack", test_doorbell_ack);
    return g_test_run();
}
