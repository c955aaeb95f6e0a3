/*
 * A 9P2000.L message encoder and decoder for the simulated guest's 9p
 * client: pure functions over byte buffers, no transport.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every message is size[4] type[1] tag[2] then its fields, all
 * little-endian; a string is len[2] and that many bytes (no NUL); a qid is
 * type[1] version[4] path[8].  The encoder never writes past its buffer
 * (it remembers an overflow instead); the decoder trusts nothing in a
 * reply: the size field, every count and string length are checked
 * against what was actually received, trailing bytes are refused, and an
 * Rlerror becomes a GError in P9_ERRNO_ERROR whose code is the errno.
 */
#ifndef VMM_SIM_P9_CODEC_H
#define VMM_SIM_P9_CODEC_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define P9_VERSION_L        "9P2000.L"
#define P9_HDR_SIZE         7       /* size[4] type[1] tag[2] */
#define P9_QID_SIZE         13
#define P9_NOTAG            0xffffu
#define P9_NOFID            0xffffffffu
#define P9_MAXWELEM         16      /* names in one Twalk */
/* Room a Tread/Twrite/Treaddir header needs; count <= msize - this. */
#define P9_IOHDRSZ          24
#define P9_MIN_MSIZE        4096
/* An Rlerror's ecode is an errno from 1 to this (Linux's MAX_ERRNO). */
#define P9_MAX_ERRNO        4095

/* Message types (9P2000.L and the 9P2000 ones it keeps). */
typedef enum P9Type {
    P9_RLERROR = 7,
    P9_TLOPEN = 12,
    P9_RLOPEN,
    P9_TLCREATE = 14,
    P9_RLCREATE,
    P9_TGETATTR = 24,
    P9_RGETATTR,
    P9_TREADDIR = 40,
    P9_RREADDIR,
    P9_TVERSION = 100,
    P9_RVERSION,
    P9_TATTACH = 104,
    P9_RATTACH,
    P9_TWALK = 110,
    P9_RWALK,
    P9_TREAD = 116,
    P9_RREAD,
    P9_TWRITE = 118,
    P9_RWRITE,
    P9_TCLUNK = 120,
    P9_RCLUNK,
    P9_TREMOVE = 122,
    P9_RREMOVE,
} P9Type;

/* Tlopen/Tlcreate flags: Linux's generic values, whatever the host's. */
#define P9_DOTL_RDONLY      0
#define P9_DOTL_WRONLY      1
#define P9_DOTL_RDWR        2
#define P9_DOTL_CREATE      00000100
#define P9_DOTL_EXCL        00000200
#define P9_DOTL_TRUNC       00001000
#define P9_DOTL_APPEND      00002000
#define P9_DOTL_DIRECTORY   00200000

/* Tgetattr request_mask / Rgetattr valid */
#define P9_GETATTR_MODE     0x00000001ull
#define P9_GETATTR_SIZE     0x00000200ull
#define P9_GETATTR_BASIC    0x000007ffull
#define P9_GETATTR_ALL      0x00003fffull

#define P9_QTDIR            0x80

/* Protocol errors; Rlerror is in P9_ERRNO_ERROR instead. */
#define P9_ERROR p9_error_quark()
GQuark p9_error_quark(void);
typedef enum P9Error {
    P9_ERROR_PROTOCOL,          /* a malformed or unexpected reply */
    P9_ERROR_TOO_BIG,           /* a T-message does not fit msize */
} P9Error;

/* The code of an error in this domain is the errno of an Rlerror. */
#define P9_ERRNO_ERROR p9_errno_error_quark()
GQuark p9_errno_error_quark(void);

typedef struct P9Qid {
    uint8_t type;
    uint32_t version;
    uint64_t path;
} P9Qid;

typedef struct P9Attr {
    uint64_t valid;
    P9Qid qid;
    uint32_t mode, uid, gid;
    uint64_t nlink, rdev, size, blksize, blocks;
    uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec;
    uint64_t ctime_sec, ctime_nsec, btime_sec, btime_nsec;
    uint64_t gen, data_version;
} P9Attr;

/* One Rreaddir entry; name points into the reply, name_len bytes. */
typedef struct P9Dirent {
    P9Qid qid;
    uint64_t offset;            /* where the next Treaddir goes on */
    uint8_t type;
    const char *name;
    uint16_t name_len;
} P9Dirent;

typedef struct P9Enc {
    uint8_t *buf;
    uint32_t cap;
    uint32_t len;
    bool overflow;
} P9Enc;

typedef struct P9Dec {
    const uint8_t *buf;
    uint32_t len;
    uint32_t pos;
    bool short_read;            /* a field ran past len */
} P9Dec;

/* ---- encoder ---- */

/* Start a @type message with @tag in @buf (@cap bytes). */
void p9_enc_begin(P9Enc *e, void *buf, uint32_t cap, uint8_t type,
                  uint16_t tag);
void p9_put_u8(P9Enc *e, uint8_t v);
void p9_put_u16(P9Enc *e, uint16_t v);
void p9_put_u32(P9Enc *e, uint32_t v);
void p9_put_u64(P9Enc *e, uint64_t v);
/* len[2] + bytes; a string longer than 65535 bytes is an overflow. */
void p9_put_str(P9Enc *e, const char *s);
void p9_put_bytes(P9Enc *e, const void *p, uint32_t n);
/* Write the size field; false (TOO_BIG) if anything did not fit. */
bool p9_enc_end(P9Enc *e, GError **errp);

/* Whole T-messages into @e's buffer (p9_enc_begin .. p9_enc_end). */
bool p9_enc_tversion(P9Enc *e, void *buf, uint32_t cap, uint32_t msize,
                     const char *version, GError **errp);
bool p9_enc_tattach(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                    uint32_t fid, uint32_t afid, const char *uname,
                    const char *aname, uint32_t n_uname, GError **errp);
bool p9_enc_twalk(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                  uint32_t fid, uint32_t newfid, const char *const *names,
                  unsigned n, GError **errp);
bool p9_enc_tgetattr(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                     uint32_t fid, uint64_t mask, GError **errp);
bool p9_enc_tlopen(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                   uint32_t fid, uint32_t flags, GError **errp);
bool p9_enc_tlcreate(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                     uint32_t fid, const char *name, uint32_t flags,
                     uint32_t mode, uint32_t gid, GError **errp);
/* Tread and Treaddir: fid[4] offset[8] count[4] */
bool p9_enc_tread(P9Enc *e, void *buf, uint32_t cap, uint8_t type,
                  uint16_t tag, uint32_t fid, uint64_t offset,
                  uint32_t count, GError **errp);
bool p9_enc_twrite(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                   uint32_t fid, uint64_t offset, const void *data,
                   uint32_t count, GError **errp);
bool p9_enc_tclunk(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                   uint32_t fid, GError **errp);
/* Tremove: the file of @fid goes, and so does @fid (clunked either way). */
bool p9_enc_tremove(P9Enc *e, void *buf, uint32_t cap, uint16_t tag,
                    uint32_t fid, GError **errp);

/* ---- decoder ---- */

/*
 * Check the reply in @buf (@len bytes received, at most @msize): its size
 * field within both, its tag @tag, its type @type, or Rlerror (then false
 * with the errno in P9_ERRNO_ERROR).  On success @d covers the body.
 */
bool p9_dec_begin(P9Dec *d, const void *buf, uint32_t len, uint32_t msize,
                  uint8_t type, uint16_t tag, GError **errp);
uint8_t p9_get_u8(P9Dec *d);
uint16_t p9_get_u16(P9Dec *d);
uint32_t p9_get_u32(P9Dec *d);
uint64_t p9_get_u64(P9Dec *d);
void p9_get_qid(P9Dec *d, P9Qid *qid);
/* len[2] + bytes: a pointer into the buffer, not NUL-terminated. */
const char *p9_get_str(P9Dec *d, uint16_t *len);
/* @n bytes in place, or NULL when fewer remain. */
const uint8_t *p9_get_bytes(P9Dec *d, uint32_t n);
/* Everything read, nothing past the end and nothing left over. */
bool p9_dec_end(P9Dec *d, const char *what, GError **errp);

/* Bodies of the R-messages (after p9_dec_begin); each checks the end. */
bool p9_dec_rversion(P9Dec *d, uint32_t *msize, char **version,
                     GError **errp);
bool p9_dec_rattach(P9Dec *d, P9Qid *qid, GError **errp);
/* *nwqid <= @max (at most P9_MAXWELEM) qids into @qids. */
bool p9_dec_rwalk(P9Dec *d, P9Qid *qids, unsigned max, unsigned *nwqid,
                  GError **errp);
bool p9_dec_rgetattr(P9Dec *d, P9Attr *attr, GError **errp);
/* Rlopen and Rlcreate */
bool p9_dec_rlopen(P9Dec *d, P9Qid *qid, uint32_t *iounit, GError **errp);
/* Rread and Rreaddir: count[4] data[count], count <= @asked. */
bool p9_dec_rread(P9Dec *d, uint32_t asked, const uint8_t **data,
                  uint32_t *count, GError **errp);
bool p9_dec_rwrite(P9Dec *d, uint32_t asked, uint32_t *count,
                   GError **errp);
bool p9_dec_rclunk(P9Dec *d, GError **errp);
bool p9_dec_rremove(P9Dec *d, GError **errp);
/*
 * The next entry of Rreaddir data in @d (p9_dec_init'ed over it): 1 with
 * @ent filled, 0 at the end, -1 with @errp set for a truncated entry.
 */
int p9_dec_dirent(P9Dec *d, P9Dirent *ent, GError **errp);
void p9_dec_init(P9Dec *d, const void *buf, uint32_t len);

#endif /* VMM_SIM_P9_CODEC_H */
