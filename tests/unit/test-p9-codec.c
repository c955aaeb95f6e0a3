/*
 * The 9P2000.L codec of the simulated guest's 9p client
 * (tools/sel4-vmm-sim/guest/p9-codec.c): T-messages byte for byte, and
 * replies decoded, with every truncation, trailing bytes, an oversized size
 * field, a wrong tag or type and impossible counts refused.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "p9-codec.h"

#define MSIZE   8192u

/* ---- T-messages: a table of exact encodings ---- */

typedef struct EncCase {
    const char *name;
    bool (*enc)(P9Enc *e, uint8_t *buf, uint32_t cap, GError **errp);
    uint8_t bytes[64];
    uint32_t len;
} EncCase;

static bool enc_version(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tversion(e, b, cap, 8192, "9P2000.L", errp);
}

static bool enc_attach(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tattach(e, b, cap, 1, 1, P9_NOFID, "u", "", 1000, errp);
}

static bool enc_walk(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    const char *names[] = { "a", "bc" };

    return p9_enc_twalk(e, b, cap, 2, 1, 2, names, 2, errp);
}

static bool enc_getattr(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tgetattr(e, b, cap, 3, 2, P9_GETATTR_ALL, errp);
}

static bool enc_lopen(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tlopen(e, b, cap, 4, 2, P9_DOTL_RDONLY, errp);
}

static bool enc_lcreate(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tlcreate(e, b, cap, 5, 3, "x", P9_DOTL_WRONLY |
                           P9_DOTL_CREATE | P9_DOTL_TRUNC, 0644, 7, errp);
}

static bool enc_read(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tread(e, b, cap, P9_TREAD, 6, 3,
                        UINT64_C(0x0102030405060708), 0x1000, errp);
}

static bool enc_readdir(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tread(e, b, cap, P9_TREADDIR, 7, 9, 0, 100, errp);
}

static bool enc_write(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_twrite(e, b, cap, 8, 3, 16, "hi", 2, errp);
}

static bool enc_clunk(P9Enc *e, uint8_t *b, uint32_t cap, GError **errp)
{
    return p9_enc_tclunk(e, b, cap, 9, 3, errp);
}

static const EncCase enc_cases[] = {
    { "Tversion", enc_version,
      { 21, 0, 0, 0, 100, 0xff, 0xff, 0x00, 0x20, 0, 0, 8, 0,
        '9', 'P', '2', '0', '0', '0', '.', 'L' }, 21 },
    { "Tattach", enc_attach,
      { 24, 0, 0, 0, 104, 1, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
        1, 0, 'u', 0, 0, 0xe8, 0x03, 0, 0 }, 24 },
    { "Twalk", enc_walk,
      { 24, 0, 0, 0, 110, 2, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0,
        1, 0, 'a', 2, 0, 'b', 'c' }, 24 },
    { "Tgetattr", enc_getattr,
      { 19, 0, 0, 0, 24, 3, 0, 2, 0, 0, 0, 0xff, 0x3f, 0, 0, 0, 0, 0, 0 },
      19 },
    { "Tlopen", enc_lopen,
      { 15, 0, 0, 0, 12, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0 }, 15 },
    { "Tlcreate", enc_lcreate,
      { 26, 0, 0, 0, 14, 5, 0, 3, 0, 0, 0, 1, 0, 'x', 0x41, 0x02, 0, 0,
        0xa4, 0x01, 0, 0, 7, 0, 0, 0 }, 26 },
    { "Tread", enc_read,
      { 23, 0, 0, 0, 116, 6, 0, 3, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1,
        0, 0x10, 0, 0 }, 23 },
    { "Treaddir", enc_readdir,
      { 23, 0, 0, 0, 40, 7, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        100, 0, 0, 0 }, 23 },
    { "Twrite", enc_write,
      { 25, 0, 0, 0, 118, 8, 0, 3, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0,
        2, 0, 0, 0, 'h', 'i' }, 25 },
    { "Tclunk", enc_clunk,
      { 11, 0, 0, 0, 120, 9, 0, 3, 0, 0, 0 }, 11 },
};

static void test_encodings(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(enc_cases); i++) {
        const EncCase *c = &enc_cases[i];
        uint8_t buf[128];
        g_autoptr(GError) err = NULL;
        P9Enc e;

        memset(buf, 0xee, sizeof(buf));
        g_test_message("%s", c->name);
        g_assert_true(c->enc(&e, buf, sizeof(buf), &err));
        g_assert_no_error(err);
        g_assert_cmpmem(buf, e.len, c->bytes, c->len);
        g_assert_cmpuint(buf[c->len], ==, 0xee);    /* nothing past it */

        /* one byte short of room: refused, nothing written past cap */
        memset(buf, 0xee, sizeof(buf));
        g_assert_false(c->enc(&e, buf, c->len - 1, &err));
        g_assert_error(err, P9_ERROR, P9_ERROR_TOO_BIG);
        g_assert_cmpuint(buf[c->len - 1], ==, 0xee);
    }
}

static void test_walk_too_many(void)
{
    const char *names[P9_MAXWELEM + 1];
    g_autoptr(GError) err = NULL;
    uint8_t buf[512];
    P9Enc e;

    for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
        names[i] = "n";
    }
    g_assert_true(p9_enc_twalk(&e, buf, sizeof(buf), 1, 1, 2, names,
                               P9_MAXWELEM, NULL));
    g_assert_false(p9_enc_twalk(&e, buf, sizeof(buf), 1, 1, 2, names,
                                P9_MAXWELEM + 1, &err));
    g_assert_error(err, P9_ERROR, P9_ERROR_TOO_BIG);
}

/* ---- replies ---- */

#define TAG     0x1234

/* Decode a whole reply of @type; what each body yields is discarded. */
static bool decode(uint8_t type, const uint8_t *buf, uint32_t len,
                   uint32_t msize, uint16_t tag, GError **errp)
{
    g_autofree char *version = NULL;
    P9Qid qids[P9_MAXWELEM];
    const uint8_t *data;
    uint32_t u32;
    unsigned n;
    P9Attr attr;
    P9Dirent ent;
    P9Dec d, dd;
    int r;

    if (!p9_dec_begin(&d, buf, len, msize, type, tag, errp)) {
        return false;
    }
    switch (type) {
    case P9_RVERSION:
        return p9_dec_rversion(&d, &u32, &version, errp);
    case P9_RATTACH:
        return p9_dec_rattach(&d, &qids[0], errp);
    case P9_RWALK:
        return p9_dec_rwalk(&d, qids, 2, &n, errp);
    case P9_RGETATTR:
        return p9_dec_rgetattr(&d, &attr, errp);
    case P9_RLOPEN:
        return p9_dec_rlopen(&d, &qids[0], &u32, errp);
    case P9_RREAD:
        return p9_dec_rread(&d, 100, &data, &u32, errp);
    case P9_RWRITE:
        return p9_dec_rwrite(&d, 100, &u32, errp);
    case P9_RCLUNK:
        return p9_dec_rclunk(&d, errp);
    case P9_RREADDIR:
        if (!p9_dec_rread(&d, 1000, &data, &u32, errp)) {
            return false;
        }
        p9_dec_init(&dd, data, u32);
        while ((r = p9_dec_dirent(&dd, &ent, errp)) > 0) {
        }
        return r == 0;
    }
    g_assert_not_reached();
}

static void put_qid(P9Enc *e, uint8_t type, uint32_t version, uint64_t path)
{
    p9_put_u8(e, type);
    p9_put_u32(e, version);
    p9_put_u64(e, path);
}

static void put_dirent(P9Enc *e, uint64_t path, uint64_t off,
                       const char *name)
{
    put_qid(e, 0, 0, path);
    p9_put_u64(e, off);
    p9_put_u8(e, 8);
    p9_put_str(e, name);
}

/* A well-formed reply of @type in @buf; returns its length. */
static uint32_t build_reply(uint8_t type, uint8_t *buf, uint32_t cap)
{
    P9Enc e;

    p9_enc_begin(&e, buf, cap, type, TAG);
    switch (type) {
    case P9_RVERSION:
        p9_put_u32(&e, 4096);
        p9_put_str(&e, "9P2000.L");
        break;
    case P9_RATTACH:
        put_qid(&e, P9_QTDIR, 1, UINT64_C(0x1122334455667788));
        break;
    case P9_RWALK:
        p9_put_u16(&e, 2);
        put_qid(&e, P9_QTDIR, 0, 1);
        put_qid(&e, 0, 0, 2);
        break;
    case P9_RGETATTR:
        p9_put_u64(&e, P9_GETATTR_BASIC);
        put_qid(&e, 0, 0, 3);
        p9_put_u32(&e, 0100644);
        p9_put_u32(&e, 0);
        p9_put_u32(&e, 0);
        for (unsigned i = 0; i < 15; i++) {
            p9_put_u64(&e, i == 2 ? 12345 : i);     /* [2] is size */
        }
        break;
    case P9_RLOPEN:
        put_qid(&e, 0, 0, 4);
        p9_put_u32(&e, 0);
        break;
    case P9_RREAD:
        p9_put_u32(&e, 5);
        p9_put_bytes(&e, "hello", 5);
        break;
    case P9_RWRITE:
        p9_put_u32(&e, 2);
        break;
    case P9_RREADDIR: {
        uint8_t ents[128];
        P9Enc de;

        de = (P9Enc) { .buf = ents, .cap = sizeof(ents) };
        put_dirent(&de, 5, 1, "one");
        put_dirent(&de, 6, 2, "two");
        p9_put_u32(&e, de.len);
        p9_put_bytes(&e, ents, de.len);
        break;
    }
    case P9_RCLUNK:
        break;
    }
    g_assert_true(p9_enc_end(&e, NULL));
    return e.len;
}

static const uint8_t reply_types[] = {
    P9_RVERSION, P9_RATTACH, P9_RWALK, P9_RGETATTR, P9_RLOPEN, P9_RREAD,
    P9_RWRITE, P9_RREADDIR, P9_RCLUNK,
};

static void set_size(uint8_t *buf, uint32_t size)
{
    for (unsigned i = 0; i < 4; i++) {
        buf[i] = size >> (8 * i);
    }
}

static void test_replies_good(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(reply_types); i++) {
        uint8_t buf[256];
        uint32_t len = build_reply(reply_types[i], buf, sizeof(buf));
        g_autoptr(GError) err = NULL;

        g_test_message("R%u, %u bytes", reply_types[i], len);
        g_assert_true(decode(reply_types[i], buf, len, MSIZE, TAG, &err));
        g_assert_no_error(err);
        /* more received than the size field says: the field wins */
        g_assert_true(decode(reply_types[i], buf, len + 10, MSIZE, TAG,
                             NULL));
    }
}

/* Cut anywhere, with or without a consistent size field: refused. */
static void test_replies_truncated(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(reply_types); i++) {
        uint8_t buf[256];
        uint32_t len = build_reply(reply_types[i], buf, sizeof(buf));

        for (uint32_t cut = 0; cut < len; cut++) {
            g_autoptr(GError) e1 = NULL;
            g_autoptr(GError) e2 = NULL;

            /* fewer bytes received than the size field says */
            g_assert_false(decode(reply_types[i], buf, cut, MSIZE, TAG,
                                  &e1));
            g_assert_error(e1, P9_ERROR, P9_ERROR_PROTOCOL);
            /* a size field that agrees, but the body is short */
            set_size(buf, cut);
            g_assert_false(decode(reply_types[i], buf, cut, MSIZE, TAG,
                                  &e2));
            g_assert_error(e2, P9_ERROR, P9_ERROR_PROTOCOL);
            set_size(buf, len);
        }
    }
}

static void test_replies_bad_header(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(reply_types); i++) {
        uint8_t type = reply_types[i];
        uint8_t buf[256];
        uint32_t len = build_reply(type, buf, sizeof(buf));
        g_autoptr(GError) e1 = NULL;
        g_autoptr(GError) e2 = NULL;
        g_autoptr(GError) e3 = NULL;
        g_autoptr(GError) e4 = NULL;
        g_autoptr(GError) e5 = NULL;

        /* a trailing byte inside the size field */
        buf[len] = 0;
        set_size(buf, len + 1);
        g_assert_false(decode(type, buf, len + 1, MSIZE, TAG, &e1));
        g_assert_error(e1, P9_ERROR, P9_ERROR_PROTOCOL);
        set_size(buf, len);
        /* bigger than msize, even if all of it came */
        g_assert_false(decode(type, buf, len, len - 1, TAG, &e2));
        g_assert_error(e2, P9_ERROR, P9_ERROR_PROTOCOL);
        /* a size field below the header's */
        set_size(buf, 6);
        g_assert_false(decode(type, buf, len, MSIZE, TAG, &e3));
        g_assert_error(e3, P9_ERROR, P9_ERROR_PROTOCOL);
        set_size(buf, len);
        /* another tag */
        g_assert_false(decode(type, buf, len, MSIZE, TAG + 1, &e4));
        g_assert_error(e4, P9_ERROR, P9_ERROR_PROTOCOL);
        /* another type */
        buf[4] = type == P9_RCLUNK ? P9_RREAD : P9_RCLUNK;
        g_assert_false(decode(type, buf, len, MSIZE, TAG, &e5));
        g_assert_error(e5, P9_ERROR, P9_ERROR_PROTOCOL);
    }
}

static void test_rlerror(void)
{
    static const uint8_t lerror[] = {
        11, 0, 0, 0, P9_RLERROR, 0x34, 0x12, ENOENT, 0, 0, 0,
    };
    static const uint8_t lerror_short[] = {
        10, 0, 0, 0, P9_RLERROR, 0x34, 0x12, ENOENT, 0, 0,
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) e2 = NULL;

    g_assert_false(decode(P9_RWALK, lerror, sizeof(lerror), MSIZE, TAG,
                          &err));
    g_assert_error(err, P9_ERRNO_ERROR, ENOENT);
    g_test_message("%s", err->message);
    g_assert_false(decode(P9_RWALK, lerror_short, sizeof(lerror_short),
                          MSIZE, TAG, &e2));
    g_assert_error(e2, P9_ERROR, P9_ERROR_PROTOCOL);
}

/* An Rlerror is still a reply: its header and body are checked too. */
static void test_rlerror_bad(void)
{
    static const struct {
        const char *what;
        uint32_t size, len;     /* size field, bytes received */
        uint16_t tag;
        uint32_t ecode;
        int code;               /* P9_ERRNO_ERROR code, or -1: PROTOCOL */
    } cases[] = {
        { "EACCES", 11, 11, TAG, EACCES, EACCES },
        { "the largest errno", 11, 11, TAG, P9_MAX_ERRNO, P9_MAX_ERRNO },
        { "a trailing byte", 12, 12, TAG, ENOENT, -1 },
        { "another tag", 11, 11, TAG + 1, ENOENT, -1 },
        { "errno 0", 11, 11, TAG, 0, -1 },
        { "errno beyond MAX_ERRNO", 11, 11, TAG, P9_MAX_ERRNO + 1, -1 },
        { "errno -1", 11, 11, TAG, UINT32_MAX, -1 },
        { "size field past what came", 11, 10, TAG, ENOENT, -1 },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        uint8_t buf[16] = { 0 };
        P9Enc e;

        g_test_message("Rlerror: %s", cases[i].what);
        p9_enc_begin(&e, buf, sizeof(buf), P9_RLERROR, cases[i].tag);
        p9_put_u32(&e, cases[i].ecode);
        g_assert_true(p9_enc_end(&e, NULL));
        set_size(buf, cases[i].size);
        g_assert_false(decode(P9_RREAD, buf, cases[i].len, MSIZE, TAG,
                              &err));
        if (cases[i].code < 0) {
            g_assert_error(err, P9_ERROR, P9_ERROR_PROTOCOL);
        } else {
            g_assert_error(err, P9_ERRNO_ERROR, cases[i].code);
        }
    }
}

static void test_values(void)
{
    uint8_t buf[256];
    uint32_t len, msize = 0, iounit = 0;
    g_autofree char *version = NULL;
    P9Attr attr;
    P9Qid qid;
    P9Dec d;

    len = build_reply(P9_RVERSION, buf, sizeof(buf));
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RVERSION, TAG, NULL));
    g_assert_true(p9_dec_rversion(&d, &msize, &version, NULL));
    g_assert_cmpuint(msize, ==, 4096);
    g_assert_cmpstr(version, ==, "9P2000.L");

    len = build_reply(P9_RATTACH, buf, sizeof(buf));
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RATTACH, TAG, NULL));
    g_assert_true(p9_dec_rattach(&d, &qid, NULL));
    g_assert_cmpuint(qid.type, ==, P9_QTDIR);
    g_assert_cmpuint(qid.version, ==, 1);
    g_assert_cmphex(qid.path, ==, UINT64_C(0x1122334455667788));

    len = build_reply(P9_RGETATTR, buf, sizeof(buf));
    g_assert_cmpuint(len, ==, P9_HDR_SIZE + 8 + P9_QID_SIZE + 12 + 15 * 8);
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RGETATTR, TAG, NULL));
    g_assert_true(p9_dec_rgetattr(&d, &attr, NULL));
    g_assert_cmpuint(attr.mode, ==, 0100644);
    g_assert_cmpuint(attr.size, ==, 12345);
    g_assert_cmpuint(attr.data_version, ==, 14);

    len = build_reply(P9_RLOPEN, buf, sizeof(buf));
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RLOPEN, TAG, NULL));
    g_assert_true(p9_dec_rlopen(&d, &qid, &iounit, NULL));
    g_assert_cmpuint(qid.path, ==, 4);
}

static void test_counts(void)
{
    uint8_t buf[256];
    uint32_t len, count;
    const uint8_t *data;
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    P9Qid qids[1];
    unsigned n;
    P9Dec d;

    /* Rread: its data, and no more than was asked for */
    len = build_reply(P9_RREAD, buf, sizeof(buf));
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RREAD, TAG, NULL));
    g_assert_true(p9_dec_rread(&d, 5, &data, &count, NULL));
    g_assert_cmpmem(data, count, "hello", 5);
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RREAD, TAG, NULL));
    g_assert_false(p9_dec_rread(&d, 4, &data, &count, &e1));
    g_assert_error(e1, P9_ERROR, P9_ERROR_PROTOCOL);

    /* Rwalk: more qids than names walked */
    len = build_reply(P9_RWALK, buf, sizeof(buf));
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RWALK, TAG, NULL));
    g_assert_false(p9_dec_rwalk(&d, qids, 1, &n, &e2));
    g_assert_error(e2, P9_ERROR, P9_ERROR_PROTOCOL);

    /* Rwrite: more written than sent */
    len = build_reply(P9_RWRITE, buf, sizeof(buf));
    g_assert_true(p9_dec_begin(&d, buf, len, MSIZE, P9_RWRITE, TAG, NULL));
    g_assert_false(p9_dec_rwrite(&d, 1, &count, &e3));
    g_assert_error(e3, P9_ERROR, P9_ERROR_PROTOCOL);
}

/*
 * Counts inside the body that promise more than the message holds, with a
 * size field that agrees with what was received.
 */
static void test_counts_beyond_received(void)
{
    uint8_t buf[512];
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    g_autoptr(GError) e4 = NULL;
    const uint8_t *data;
    P9Qid qids[P9_MAXWELEM + 4];
    uint32_t count;
    unsigned n;
    P9Enc e;
    P9Dec d;

    /* Rread: count 50 (fewer than asked), 5 bytes of data */
    p9_enc_begin(&e, buf, sizeof(buf), P9_RREAD, TAG);
    p9_put_u32(&e, 50);
    p9_put_bytes(&e, "hello", 5);
    g_assert_true(p9_enc_end(&e, NULL));
    g_assert_false(decode(P9_RREAD, buf, e.len, MSIZE, TAG, &e1));
    g_assert_error(e1, P9_ERROR, P9_ERROR_PROTOCOL);

    /* Rreaddir: count one byte more than the entries */
    p9_enc_begin(&e, buf, sizeof(buf), P9_RREADDIR, TAG);
    p9_put_u32(&e, 25 + 3 + 1);
    put_dirent(&e, 5, 1, "one");
    g_assert_true(p9_enc_end(&e, NULL));
    g_assert_false(decode(P9_RREADDIR, buf, e.len, MSIZE, TAG, &e2));
    g_assert_error(e2, P9_ERROR, P9_ERROR_PROTOCOL);

    /* Rwalk: nwqid 2, one qid */
    p9_enc_begin(&e, buf, sizeof(buf), P9_RWALK, TAG);
    p9_put_u16(&e, 2);
    put_qid(&e, 0, 0, 1);
    g_assert_true(p9_enc_end(&e, NULL));
    g_assert_false(decode(P9_RWALK, buf, e.len, MSIZE, TAG, &e3));
    g_assert_error(e3, P9_ERROR, P9_ERROR_PROTOCOL);

    /* Rwalk: more qids than the protocol allows, even if asked for more */
    p9_enc_begin(&e, buf, sizeof(buf), P9_RWALK, TAG);
    p9_put_u16(&e, P9_MAXWELEM + 1);
    for (unsigned i = 0; i < P9_MAXWELEM + 1; i++) {
        put_qid(&e, 0, 0, i);
    }
    g_assert_true(p9_enc_end(&e, NULL));
    g_assert_true(p9_dec_begin(&d, buf, e.len, MSIZE, P9_RWALK, TAG, NULL));
    g_assert_false(p9_dec_rwalk(&d, qids, G_N_ELEMENTS(qids), &n, &e4));
    g_assert_error(e4, P9_ERROR, P9_ERROR_PROTOCOL);

    /* and the well-formed Rread of 5 bytes next to them is accepted */
    p9_enc_begin(&e, buf, sizeof(buf), P9_RREAD, TAG);
    p9_put_u32(&e, 5);
    p9_put_bytes(&e, "hello", 5);
    g_assert_true(p9_enc_end(&e, NULL));
    g_assert_true(p9_dec_begin(&d, buf, e.len, MSIZE, P9_RREAD, TAG, NULL));
    g_assert_true(p9_dec_rread(&d, 100, &data, &count, NULL));
    g_assert_cmpmem(data, count, "hello", 5);
}

/* The encoder refuses what does not fit and never writes past cap. */
static void test_encoder_overflow(void)
{
    g_autofree char *long_name = g_malloc(UINT16_MAX + 2);
    g_autofree uint8_t *big = g_malloc(2 * UINT16_MAX);
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    uint8_t buf[64], data[64] = { 0 };
    P9Enc e;

    /* a name longer than a string's len[2] can say, in ample room */
    memset(long_name, 'n', UINT16_MAX + 1);
    long_name[UINT16_MAX + 1] = 0;
    g_assert_false(p9_enc_tlcreate(&e, big, 2 * UINT16_MAX, 1, 1, long_name,
                                   0, 0644, 0, &e1));
    g_assert_error(e1, P9_ERROR, P9_ERROR_TOO_BIG);
    /* the longest one fits */
    long_name[UINT16_MAX] = 0;
    g_assert_true(p9_enc_tlcreate(&e, big, 2 * UINT16_MAX, 1, 1, long_name,
                                  0, 0644, 0, NULL));
    g_assert_cmpuint(e.len, ==, P9_HDR_SIZE + 4 + 2 + UINT16_MAX + 12);

    /* Twrite data beyond the buffer: nothing past cap is touched */
    memset(buf, 0xee, sizeof(buf));
    g_assert_false(p9_enc_twrite(&e, buf, 40, 1, 1, 0, data, 40 - 23 + 1,
                                 &e2));
    g_assert_error(e2, P9_ERROR, P9_ERROR_TOO_BIG);
    for (unsigned i = 40; i < sizeof(buf); i++) {
        g_assert_cmpuint(buf[i], ==, 0xee);
    }
    g_assert_true(p9_enc_twrite(&e, buf, 40, 1, 1, 0, data, 40 - 23, NULL));

    /* no room even for the header */
    memset(buf, 0xee, sizeof(buf));
    g_assert_false(p9_enc_tclunk(&e, buf, 3, 1, 1, &e3));
    g_assert_error(e3, P9_ERROR, P9_ERROR_TOO_BIG);
    for (unsigned i = 3; i < sizeof(buf); i++) {
        g_assert_cmpuint(buf[i], ==, 0xee);
    }
}

static void test_dirents(void)
{
    uint8_t buf[128];
    P9Enc e = { .buf = buf, .cap = sizeof(buf) };
    g_autoptr(GError) err = NULL;
    P9Dirent ent;
    P9Dec d;

    put_dirent(&e, 5, 1, "one");
    put_dirent(&e, 6, 2, "two");
    p9_dec_init(&d, buf, e.len);
    g_assert_cmpint(p9_dec_dirent(&d, &ent, NULL), ==, 1);
    g_assert_cmpmem(ent.name, ent.name_len, "one", 3);
    g_assert_cmpuint(ent.qid.path, ==, 5);
    g_assert_cmpint(p9_dec_dirent(&d, &ent, NULL), ==, 1);
    g_assert_cmpmem(ent.name, ent.name_len, "two", 3);
    g_assert_cmpuint(ent.offset, ==, 2);
    g_assert_cmpint(p9_dec_dirent(&d, &ent, NULL), ==, 0);

    /* the second entry's name runs past the data */
    p9_dec_init(&d, buf, e.len - 1);
    g_assert_cmpint(p9_dec_dirent(&d, &ent, NULL), ==, 1);
    g_assert_cmpint(p9_dec_dirent(&d, &ent, &err), ==, -1);
    g_assert_error(err, P9_ERROR, P9_ERROR_PROTOCOL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/p9-codec/encodings", test_encodings);
    g_test_add_func("/p9-codec/walk-too-many", test_walk_too_many);
    g_test_add_func("/p9-codec/replies-good", test_replies_good);
    g_test_add_func("/p9-codec/replies-truncated", test_replies_truncated);
    g_test_add_func("/p9-codec/replies-bad-header", test_replies_bad_header);
    g_test_add_func("/p9-codec/rlerror", test_rlerror);
    g_test_add_func("/p9-codec/rlerror-bad", test_rlerror_bad);
    g_test_add_func("/p9-codec/counts-beyond-received",
                    test_counts_beyond_received);
    g_test_add_func("/p9-codec/encoder-overflow", test_encoder_overflow);
    g_test_add_func("/p9-codec/values", test_values);
    g_test_add_func("/p9-codec/counts", test_counts);
    g_test_add_func("/p9-codec/dirents", test_dirents);
    return g_test_run();
}
