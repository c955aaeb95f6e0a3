/*
 * virtio-9p: a 9P2000.L client, through the simulated guest's driver,
 * reading and writing a host directory that QEMU exports (fsdev local,
 * security_model=none).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Before QEMU starts, the share gets hello.txt, big.bin (larger than
 * msize, so it takes many Treads) and sub/inner.txt.  Checks: the mount
 * tag, the negotiated msize, the root's listing against the host's, each
 * file's size and contents against the host's (big.bin by sha256), a walk
 * of two names at once, ENOENT for a missing name (whole and part way),
 * then a file the guest creates and writes, read back on the host.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "guest.h"
#include "virtio-9p.h"
#include "../qemu-harness.h"

#define P9_TAG          "share"
#define P9_HELLO_TEXT   "Hello from the host, through virtio-9p.\n"
#define P9_INNER_TEXT   "a file one directory down\n"
#define P9_BIG_BYTES    (300u * 1024 + 123)     /* not a multiple of msize */
#define P9_GUEST_FILE   "from-guest.txt"
#define P9_GUEST_BYTES  (100u * 1024 + 45)
#define P9_BIG_SEED     0x9e3779b9u
#define P9_GUEST_SEED   0x2545f491u

static Virtio9p p9;

/* A deterministic byte pattern (xorshift32) from @seed. */
static void p9_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = x >> 24;
    }
}

static char *share_path(Guest *g, const char *name)
{
    return g_build_filename(g->tmpdir, "share", name, NULL);
}

/* A host file in the share; a failure shows up as a failed check later. */
static void host_put(Guest *g, const char *name, const void *data,
                     size_t len)
{
    g_autofree char *path = share_path(g, name);
    g_autoptr(GError) err = NULL;

    if (!g_file_set_contents(path, data, len, &err)) {
        printf("# 9p: %s\n", err->message);
    }
}

void guest_9p_args(GPtrArray *argv, Guest *g)
{
    g_autofree char *share = share_path(g, NULL);
    g_autofree char *sub = share_path(g, "sub");
    g_autofree char *fsdev = g_strdup_printf(
        "local,id=f0,path=%s,security_model=none", share);
    g_autofree uint8_t *big = g_malloc(P9_BIG_BYTES);

    g_mkdir_with_parents(sub, 0700);
    host_put(g, "hello.txt", P9_HELLO_TEXT, strlen(P9_HELLO_TEXT));
    p9_pattern(big, P9_BIG_BYTES, P9_BIG_SEED);
    host_put(g, "big.bin", big, P9_BIG_BYTES);
    host_put(g, "sub/inner.txt", P9_INNER_TEXT, strlen(P9_INNER_TEXT));

    guest_args(argv, "-device",
               "virtio-9p-pci,fsdev=f0,mount_tag=" P9_TAG,
               "-fsdev", fsdev, NULL);
}

/* ---- host side ---- */

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the host's share, sorted, joined by spaces. */
static char *host_listing(Guest *g)
{
    g_autofree char *share = share_path(g, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) dir = g_dir_open(share, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_ptr_array_add(names, g_strdup(name));
    }
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static GBytes *host_get(Guest *g, const char *name)
{
    g_autofree char *path = share_path(g, name);
    char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, NULL)) {
        return g_bytes_new(NULL, 0);
    }
    return g_bytes_new_take(data, len);
}

/* ---- guest side ---- */

/* Every name of directory @root but . and .., sorted, space-joined. */
static char *p9_listing(uint32_t root, unsigned *calls, GError **errp)
{
    g_autoptr(GPtrArray) names = virtio_9p_list(&p9, root, calls, errp);

    if (!names) {
        return NULL;
    }
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static bool p9_up(Guest *g)
{
    g_autoptr(GError) err = NULL;
    bool r;

    r = virtio_9p_init(&p9, g->sim, &g->mem, GUEST_DEV_9P, &g->mmio_next,
                       guest_spi_base(g, GUEST_DEV_9P), g->use_msix, &err);
    ok(r && g_strcmp0(p9.mount_tag, P9_TAG) == 0,
       "virtio-9p: up, features 0x%" PRIx64 ", mount tag \"%s\" (want \""
       P9_TAG "\"), %s: %s", p9.pci.features,
       p9.mount_tag ? p9.mount_tag : "(none)",
       p9.pci.msix ? "MSI-X" : "INTx", err ? err->message : "ok");
    ok(p9.pci.msix == g->use_msix, "virtio-9p: %s as asked",
       p9.pci.msix ? "MSI-X" : "INTx");
    if (!r) {
        return false;
    }
    r = virtio_9p_version(&p9, VIRTIO_9P_MSIZE, &err);
    ok(r && p9.msize >= P9_MIN_MSIZE && p9.msize <= VIRTIO_9P_MSIZE,
       "virtio-9p: Tversion " P9_VERSION_L ", msize %u (offered %u): %s",
       p9.msize, VIRTIO_9P_MSIZE, err ? err->message : "ok");
    return r;
}

static bool p9_attach_root(uint32_t *root)
{
    g_autoptr(GError) err = NULL;
    P9Qid qid = { 0 };
    bool r;

    *root = virtio_9p_new_fid(&p9);
    r = virtio_9p_attach(&p9, *root, "root", "", getuid(), &qid, &err);
    ok(r && (qid.type & P9_QTDIR), "virtio-9p: Tattach fid %u, root qid "
       "type 0x%x path 0x%" PRIx64 " (a directory: %s): %s", *root,
       qid.type, qid.path, qid.type & P9_QTDIR ? "yes" : "no",
       err ? err->message : "ok");
    return r;
}

static void test_listing(Guest *g, uint32_t root)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *host = host_listing(g);
    g_autofree char *guest = NULL;
    unsigned calls = 0;

    guest = p9_listing(root, &calls, &err);
    ok(guest && g_str_equal(guest, host), "virtio-9p: root listing in %u "
       "Treaddirs \"%s\", host has \"%s\": %s", calls,
       guest ? guest : "(none)", host, err ? err->message : "ok");
}

/* Open @names from @root, check getattr's size, read it all, compare. */
static void test_file(Guest *g, uint32_t root, const char *path,
                      const char *const *names, unsigned n)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) host = host_get(g, path);
    g_autoptr(GByteArray) got = NULL;
    P9Qid qids[P9_MAXWELEM] = { 0 };
    P9Attr attr = { 0 };
    unsigned treads = 0, dirs;
    uint32_t fid;
    bool r;

    r = virtio_9p_open_path(&p9, root, names, n, P9_DOTL_RDONLY, &fid, qids, &err) &&
        virtio_9p_getattr(&p9, fid, P9_GETATTR_BASIC, &attr, &err);
    /* the qids: directories on the way, then a file */
    dirs = 0;
    for (unsigned i = 0; i < n; i++) {
        dirs += !!(qids[i].type & P9_QTDIR);
    }
    ok(r && (attr.valid & P9_GETATTR_SIZE) &&
       attr.size == g_bytes_get_size(host) &&
       dirs == n - 1 && !(qids[n - 1].type & P9_QTDIR),
       "virtio-9p: walk of %u name(s) to %s (%u directory qids), Rgetattr "
       "size %" PRIu64 " (valid 0x%" PRIx64 "), host's stat size %zu: %s",
       n, path, dirs, attr.size, attr.valid, g_bytes_get_size(host),
       err ? err->message : "ok");
    if (r) {
        got = virtio_9p_read_all(&p9, fid, NULL, &treads, &err);
    }
    r = got && got->len == g_bytes_get_size(host) &&
        !memcmp(got->data, g_bytes_get_data(host, NULL), got->len);
    ok(r, "virtio-9p: %s read in %u Treads, %u bytes, host has %zu, %s: %s",
       path, treads, got ? got->len : 0, g_bytes_get_size(host),
       r ? "equal" : "not equal", err ? err->message : "ok");
    if (fid != P9_NOFID) {
        g_clear_error(&err);
        r = virtio_9p_clunk(&p9, fid, &err);
        ok(r, "virtio-9p: Tclunk of %s's fid %u: %s", path, fid,
           err ? err->message : "ok");
    }
}

/* big.bin: larger than msize, compared by sha256 as it is read. */
static void test_big(Guest *g, uint32_t root)
{
    const char *names[] = { "big.bin" };
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) host = host_get(g, "big.bin");
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autoptr(GByteArray) got = NULL;
    g_autofree char *host_sum = g_compute_checksum_for_bytes(
        G_CHECKSUM_SHA256, host);
    g_autofree uint8_t *want = g_malloc(P9_BIG_BYTES);
    unsigned treads = 0, least;
    uint32_t fid;
    bool r, pattern;

    /* the host's file is the pattern: else the set-up went wrong */
    p9_pattern(want, P9_BIG_BYTES, P9_BIG_SEED);
    pattern = g_bytes_get_size(host) == P9_BIG_BYTES &&
              !memcmp(g_bytes_get_data(host, NULL), want, P9_BIG_BYTES);
    r = virtio_9p_open_path(&p9, root, names, 1, P9_DOTL_RDONLY, &fid, NULL, &err);
    if (r) {
        got = virtio_9p_read_all(&p9, fid, sum, &treads, &err);
    }
    r = got && got->len == P9_BIG_BYTES && pattern &&
        g_str_equal(g_checksum_get_string(sum), host_sum);
    /* no Tread may carry more than msize allows; one more sees the end */
    least = (P9_BIG_BYTES + p9.msize - P9_IOHDRSZ - 1) /
            (p9.msize - P9_IOHDRSZ) + 1;
    r = r && treads >= least;
    ok(r, "virtio-9p: big.bin, %u of %u bytes in %u Treads (at least %u "
       "at msize %u), sha256 %.16s..., host's %.16s... (host file is the "
       "pattern: %s): %s", got ? got->len : 0, P9_BIG_BYTES, treads, least,
       p9.msize,
       g_checksum_get_string(sum), host_sum, pattern ? "yes" : "no",
       err ? err->message : "ok");
    if (fid != P9_NOFID) {
        g_clear_error(&err);
        r = virtio_9p_clunk(&p9, fid, &err);
        ok(r, "virtio-9p: Tclunk of big.bin's fid %u: %s", fid,
           err ? err->message : "ok");
    }
}

/*
 * Missing names: a one-name walk (the server answers Rlerror) and one
 * that fails at its second name (a short Rwalk).  Both are ENOENT, and
 * neither may leave @newfid in use: it is returned for the caller to use
 * next, so a server that made it would refuse that walk (EEXIST).
 */
static uint32_t test_missing(uint32_t root)
{
    const char *missing[] = { "no-such-file" };
    const char *part[] = { "sub", "no-such-file" };
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    uint32_t newfid = virtio_9p_new_fid(&p9);
    bool r;

    r = virtio_9p_walk(&p9, root, newfid, missing, 1, NULL, &e1);
    ok(!r && g_error_matches(e1, P9_ERRNO_ERROR, ENOENT), "virtio-9p: walk "
       "to no-such-file: %s (domain %s, code %d)",
       e1 ? e1->message : "succeeded",
       e1 ? g_quark_to_string(e1->domain) : "-", e1 ? e1->code : 0);
    r = virtio_9p_walk(&p9, root, newfid, part, 2, NULL, &e2);
    ok(!r && g_error_matches(e2, P9_ERRNO_ERROR, ENOENT), "virtio-9p: walk "
       "to sub/no-such-file: %s (domain %s, code %d)",
       e2 ? e2->message : "succeeded",
       e2 ? g_quark_to_string(e2->domain) : "-", e2 ? e2->code : 0);
    return newfid;
}

/* Twrite all of @data to open @fid from offset 0; Twrites in *n. */
static bool p9_write_all(uint32_t fid, const uint8_t *data, uint32_t len,
                         unsigned *n, GError **errp)
{
    uint32_t off = 0;

    for (*n = 0; off < len; (*n)++) {
        uint32_t done = 0;

        if (!virtio_9p_write(&p9, fid, off, data + off, len - off, &done,
                             errp)) {
            return false;
        }
        if (!done) {
            g_set_error(errp, P9_ERROR, P9_ERROR_PROTOCOL,
                        "9p: Rwrite of 0 bytes at %u", off);
            return false;
        }
        off += done;
    }
    return true;
}

/*
 * Create P9_GUEST_FILE through a clone of @root (made as @fid, which
 * test_missing() left free), write it, clunk it, read it on the host.
 */
static void test_create(Guest *g, uint32_t root, uint32_t fid)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) host = NULL;
    g_autofree uint8_t *data = g_malloc(P9_GUEST_BYTES);
    uint32_t iounit = 0;
    unsigned twrites = 0;
    P9Qid qid = { 0 };
    bool r, made, clunked = false, equal;

    p9_pattern(data, P9_GUEST_BYTES, P9_GUEST_SEED);
    made = virtio_9p_walk(&p9, root, fid, NULL, 0, NULL, &err);
    r = made &&
        virtio_9p_lcreate(&p9, fid, P9_GUEST_FILE, P9_DOTL_WRONLY |
                          P9_DOTL_CREATE | P9_DOTL_EXCL, 0644, getgid(),
                          &qid, &iounit, &err) &&
        p9_write_all(fid, data, P9_GUEST_BYTES, &twrites, &err);
    if (made) {
        clunked = virtio_9p_clunk(&p9, fid, r ? &err : NULL);
        r = r && clunked;
    }
    host = host_get(g, P9_GUEST_FILE);
    equal = g_bytes_get_size(host) == P9_GUEST_BYTES &&
            !memcmp(g_bytes_get_data(host, NULL), data, P9_GUEST_BYTES);
    ok(r && equal, "virtio-9p: Tlcreate " P9_GUEST_FILE " in a clone of "
       "the root (fid %u, iounit %u), %u bytes in %u Twrites, clunked: %s; "
       "the host's file has %zu bytes, %s: %s", fid, iounit,
       P9_GUEST_BYTES, twrites, clunked ? "yes" : "no",
       g_bytes_get_size(host), equal ? "equal" : "not equal",
       err ? err->message : "ok");
}

void guest_9p_test(Guest *g)
{
    g_autoptr(GError) err = NULL;
    const char *hello[] = { "hello.txt" };
    const char *inner[] = { "sub", "inner.txt" };
    uint32_t root, fid;
    bool r;

    if (p9_up(g) && p9_attach_root(&root)) {
        test_listing(g, root);
        test_file(g, root, "hello.txt", hello, 1);
        test_file(g, root, "sub/inner.txt", inner, 2);
        test_big(g, root);
        fid = test_missing(root);
        test_create(g, root, fid);

        r = virtio_9p_clunk(&p9, root, &err);
        ok(r, "virtio-9p: Tclunk of the root fid %u: %s", root,
           err ? err->message : "ok");
        g_clear_error(&err);
        /* the fid is gone now: the server must say so */
        r = virtio_9p_clunk(&p9, root, &err);
        ok(!r && err && err->domain == P9_ERRNO_ERROR, "virtio-9p: a second "
           "Tclunk of fid %u is refused: %s", root,
           err ? err->message : "it succeeded");
    }
    virtio_9p_destroy(&p9);
}
