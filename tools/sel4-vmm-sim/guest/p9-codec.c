/*
 * A 9P2000.L message encoder and decoder (see p9-codec.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <string.h>

#include "sel4/sel4_error.h"
#include "p9-codec.h"

G_DEFINE_QUARK(p9-error-quark, p9_error)
G_DEFINE_QUARK(p9-errno-error-quark, p9_errno_error)

#define proto_fail(errp, ...) \
    sel4_fail(errp, P9_ERROR, P9_ERROR_PROTOCOL, "9p: " __VA_ARGS__)

/* ---- encoder ---- */

/* Room for @n more bytes, or mark the overflow and return NULL. */
static uint8_t *enc_reserve(P9Enc *e, uint32_t n)
{
    uint8_t *p;

    if (e->overflow || n > e->cap - e->len) {
        e->overflow = true;
        return NULL;
    }
    p = e->buf + e->len;
    e->len += n;
    return p;
}

/* little-endian whatever the host is */
static void enc_le(P9Enc *e, uint64_t v, unsigned n)
{
    uint8_t *p = enc_reserve(e, n);

    for (unsigned i = 0; p && i < n; i++) {
        p[i] = v >> (8 * i);
    }
}

void p9_put_u8(P9Enc *e, uint8_t v)
{
    enc_le(e, v, 1);
}

void p9_put_u16(P9Enc *e, uint16_t v)
{
    enc_le(e, v, 2);
}

void p9_put_u32(P9Enc *e, uint32_t v)
{
    enc_le(e, v, 4);
}

void p9_put_u64(P9Enc *e, uint64_t v)
{
    enc_le(e, v, 8);
}

void p9_put_bytes(P9Enc *e, const void *p, uint32_t n)
{
    uint8_t *dst = enc_reserve(e, n);

    if (dst && n) {
        memcpy(dst, p, n);
    }
}

void p9_put_str(P9Enc *e, const char *s)
{
    size_t n = strlen(s);

    if (n > UINT16_MAX) {
        e->overflow = true;
        return;
    }
    p9_put_u16(e, n);
    p9_put_bytes(e, s, n);
}

void p9_enc_begin(P9Enc *e, void *buf, uint32_t cap, uint8_t type,
                  uint16_t tag)
{
    *e = (P9Enc) { .buf = buf, .cap = cap };
    p9_put_u32(e, 0);           /* size: filled in by p9_enc_end() */
    p9_put_u8(e, type);
    p9_put_u16(e, tag);
}

bool p9_enc_end(P9Enc *e, GError **errp)
{
    if (e->overflow) {
        g_set_error(errp, P9_ERROR, P9_ERROR_TOO_BIG,
                    "9p: T-message type %u does not fit in %u bytes",
                    e->cap > 4 ? e->buf[4] : 0, e->cap);
        return false;
    }
    for (unsigned i = 0; i < 4; i++) {
        e->buf[i] = e->len >> (8 * i);
    }
    return true;
}

bool p9_enc_tversion(P9Enc *e, void *buf, uint32_t cap, uint32_t msize,
                     const char *version, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TVERSION, P9_NOTAG);
    p9_put_u32(e, msize);
    p9_put_str(e, version);
    return p9_enc_end(e, errp);
}

bool p9_enc_tattach(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                    uint32_t fid, uint32_t afid, const char *uname,
                    const char *aname, uint32_t n_uname, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TATTACH, tag);
    p9_put_u32(e, fid);
    p9_put_u32(e, afid);
    p9_put_str(e, uname);
    p9_put_str(e, aname);
    p9_put_u32(e, n_uname);
    return p9_enc_end(e, errp);
}

bool p9_enc_twalk(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                  uint32_t fid, uint32_t newfid, const char *const *names,
                  unsigned n, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TWALK, tag);
    if (n > P9_MAXWELEM) {
        e->overflow = true;     /* the protocol's limit, not the buffer's */
    }
    p9_put_u32(e, fid);
    p9_put_u32(e, newfid);
    p9_put_u16(e, n);
    for (unsigned i = 0; i < n; i++) {
        p9_put_str(e, names[i]);
    }
    return p9_enc_end(e, errp);
}

bool p9_enc_tgetattr(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                     uint32_t fid, uint64_t mask, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TGETATTR, tag);
    p9_put_u32(e, fid);
    p9_put_u64(e, mask);
    return p9_enc_end(e, errp);
}

bool p9_enc_tlopen(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                   uint32_t fid, uint32_t flags, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TLOPEN, tag);
    p9_put_u32(e, fid);
    p9_put_u32(e, flags);
    return p9_enc_end(e, errp);
}

bool p9_enc_tlcreate(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                     uint32_t fid, const char *name, uint32_t flags,
                     uint32_t mode, uint32_t gid, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TLCREATE, tag);
    p9_put_u32(e, fid);
    p9_put_str(e, name);
    p9_put_u32(e, flags);
    p9_put_u32(e, mode);
    p9_put_u32(e, gid);
    return p9_enc_end(e, errp);
}

bool p9_enc_tread(P9Enc *e, void *buf, uint32_t cap, uint8_t type,
                  uint16_t tag, uint32_t fid, uint64_t offset,
                  uint32_t count, GError **errp)
{
    p9_enc_begin(e, buf, cap, type, tag);
    p9_put_u32(e, fid);
    p9_put_u64(e, offset);
    p9_put_u32(e, count);
    return p9_enc_end(e, errp);
}

bool p9_enc_twrite(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                   uint32_t fid, uint64_t offset, const void *data,
                   uint32_t count, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TWRITE, tag);
    p9_put_u32(e, fid);
    p9_put_u64(e, offset);
    p9_put_u32(e, count);
    p9_put_bytes(e, data, count);
    return p9_enc_end(e, errp);
}

bool p9_enc_tclunk(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                   uint32_t fid, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TCLUNK, tag);
    p9_put_u32(e, fid);
    return p9_enc_end(e, errp);
}

bool p9_enc_tremove(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                    uint32_t fid, GError **errp)
{
    p9_enc_begin(e, buf, cap, P9_TREMOVE, tag);
    p9_put_u32(e, fid);
    return p9_enc_end(e, errp);
}

/* ---- decoder ---- */

void p9_dec_init(P9Dec *d, const void *buf, uint32_t len)
{
    *d = (P9Dec) { .buf = buf, .len = len };
}

const uint8_t *p9_get_bytes(P9Dec *d, uint32_t n)
{
    const uint8_t *p;

    if (d->short_read || n > d->len - d->pos) {
        d->short_read = true;
        return NULL;
    }
    p = d->buf + d->pos;
    d->pos += n;
    return p;
}

static uint64_t dec_le(P9Dec *d, unsigned n)
{
    const uint8_t *p = p9_get_bytes(d, n);
    uint64_t v = 0;

    for (unsigned i = 0; p && i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

uint8_t p9_get_u8(P9Dec *d)
{
    return dec_le(d, 1);
}

uint16_t p9_get_u16(P9Dec *d)
{
    return dec_le(d, 2);
}

uint32_t p9_get_u32(P9Dec *d)
{
    return dec_le(d, 4);
}

uint64_t p9_get_u64(P9Dec *d)
{
    return dec_le(d, 8);
}

void p9_get_qid(P9Dec *d, P9Qid *qid)
{
    qid->type = p9_get_u8(d);
    qid->version = p9_get_u32(d);
    qid->path = p9_get_u64(d);
}

const char *p9_get_str(P9Dec *d, uint16_t *len)
{
    *len = p9_get_u16(d);
    return (const char *)p9_get_bytes(d, *len);
}

bool p9_dec_end(P9Dec *d, const char *what, GError **errp)
{
    if (d->short_read) {
        return proto_fail(errp, "%s truncated (%u bytes)", what, d->len);
    }
    if (d->pos != d->len) {
        return proto_fail(errp, "%s has %u bytes left over", what,
                          d->len - d->pos);
    }
    return true;
}

/* An Rlerror body: ecode[4], as a P9_ERRNO_ERROR. */
static bool dec_rlerror(P9Dec *d, uint8_t type, GError **errp)
{
    uint32_t ecode = p9_get_u32(d);

    if (!p9_dec_end(d, "Rlerror", errp)) {
        return false;
    }
    /* 0 would be an error that is no error; Linux's errnos end at 4095 */
    if (ecode == 0 || ecode > P9_MAX_ERRNO) {
        return proto_fail(errp, "Rlerror with errno %u", ecode);
    }
    /* the reply to T-message type - 1 */
    g_set_error(errp, P9_ERRNO_ERROR, ecode, "9p: T%u: Rlerror %u (%s)",
                type - 1u, ecode, g_strerror(ecode));
    return false;
}

bool p9_dec_begin(P9Dec *d, const void *buf, uint32_t len, uint32_t msize,
                  uint8_t type, uint16_t tag, GError **errp)
{
    uint32_t size;
    uint16_t rtag;
    uint8_t rtype;

    p9_dec_init(d, buf, MIN(len, msize));
    size = p9_get_u32(d);
    rtype = p9_get_u8(d);
    rtag = p9_get_u16(d);
    if (d->short_read) {
        return proto_fail(errp, "reply of %u bytes, shorter than a header",
                          len);
    }
    if (size < P9_HDR_SIZE || size > len || size > msize) {
        return proto_fail(errp, "reply size field %u, but %u bytes received "
                          "(msize %u)", size, len, msize);
    }
    if (rtag != tag) {
        return proto_fail(errp, "reply tag %u to a request with tag %u",
                          rtag, tag);
    }
    d->len = size;
    if (rtype == P9_RLERROR) {
        return dec_rlerror(d, type, errp);
    }
    if (rtype != type) {
        return proto_fail(errp, "reply type %u, expected %u", rtype, type);
    }
    return true;
}

bool p9_dec_rversion(P9Dec *d, uint32_t *msize, char **version,
                     GError **errp)
{
    uint16_t n;
    const char *s;

    *msize = p9_get_u32(d);
    s = p9_get_str(d, &n);
    if (!p9_dec_end(d, "Rversion", errp)) {
        return false;
    }
    *version = g_strndup(s, n);
    return true;
}

bool p9_dec_rattach(P9Dec *d, P9Qid *qid, GError **errp)
{
    p9_get_qid(d, qid);
    return p9_dec_end(d, "Rattach", errp);
}

bool p9_dec_rwalk(P9Dec *d, P9Qid *qids, unsigned max, unsigned *nwqid,
                  GError **errp)
{
    unsigned n = p9_get_u16(d);

    if (n > max || n > P9_MAXWELEM) {
        return proto_fail(errp, "Rwalk with %u qids for %u names", n, max);
    }
    for (unsigned i = 0; i < n; i++) {
        p9_get_qid(d, &qids[i]);
    }
    *nwqid = n;
    return p9_dec_end(d, "Rwalk", errp);
}

bool p9_dec_rgetattr(P9Dec *d, P9Attr *a, GError **errp)
{
    a->valid = p9_get_u64(d);
    p9_get_qid(d, &a->qid);
    a->mode = p9_get_u32(d);
    a->uid = p9_get_u32(d);
    a->gid = p9_get_u32(d);
    a->nlink = p9_get_u64(d);
    a->rdev = p9_get_u64(d);
    a->size = p9_get_u64(d);
    a->blksize = p9_get_u64(d);
    a->blocks = p9_get_u64(d);
    a->atime_sec = p9_get_u64(d);
    a->atime_nsec = p9_get_u64(d);
    a->mtime_sec = p9_get_u64(d);
    a->mtime_nsec = p9_get_u64(d);
    a->ctime_sec = p9_get_u64(d);
    a->ctime_nsec = p9_get_u64(d);
    a->btime_sec = p9_get_u64(d);
    a->btime_nsec = p9_get_u64(d);
    a->gen = p9_get_u64(d);
    a->data_version = p9_get_u64(d);
    return p9_dec_end(d, "Rgetattr", errp);
}

bool p9_dec_rlopen(P9Dec *d, P9Qid *qid, uint32_t *iounit, GError **errp)
{
    p9_get_qid(d, qid);
    *iounit = p9_get_u32(d);
    return p9_dec_end(d, "Rlopen", errp);
}

bool p9_dec_rread(P9Dec *d, uint32_t asked, const uint8_t **data,
                  uint32_t *count, GError **errp)
{
    uint32_t n = p9_get_u32(d);

    if (!d->short_read && n > asked) {
        return proto_fail(errp, "Rread of %u bytes, %u asked", n, asked);
    }
    *data = p9_get_bytes(d, n);
    *count = n;
    return p9_dec_end(d, "Rread", errp);
}

bool p9_dec_rwrite(P9Dec *d, uint32_t asked, uint32_t *count, GError **errp)
{
    *count = p9_get_u32(d);
    if (!p9_dec_end(d, "Rwrite", errp)) {
        return false;
    }
    return *count <= asked ? true
                           : proto_fail(errp, "Rwrite of %u bytes, %u sent",
                                        *count, asked);
}

bool p9_dec_rclunk(P9Dec *d, GError **errp)
{
    return p9_dec_end(d, "Rclunk", errp);
}

bool p9_dec_rremove(P9Dec *d, GError **errp)
{
    return p9_dec_end(d, "Rremove", errp);
}

int p9_dec_dirent(P9Dec *d, P9Dirent *ent, GError **errp)
{
    if (d->pos == d->len) {
        return 0;
    }
    p9_get_qid(d, &ent->qid);
    ent->offset = p9_get_u64(d);
    ent->type = p9_get_u8(d);
    ent->name = p9_get_str(d, &ent->name_len);
    if (d->short_read) {
        proto_fail(errp, "Rreaddir entry truncated at byte %u of %u",
                   d->pos, d->len);
        return -1;
    }
    return 1;
}
