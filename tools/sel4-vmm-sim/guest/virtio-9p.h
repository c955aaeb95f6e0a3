/*
 * The simulated guest's virtio-9p driver (virtio 1.x, section 5.9, the
 * 9P transport) and a small 9P2000.L client on it.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each request owns a tag and two buffers of msize bytes in guest RAM:
 * the T-message (device-readable) and the R-message (device-writable),
 * one chain per request on queue 0.  Requests are asynchronous at the
 * bottom (virtio_9p_req_get/send/kick/wait: up to VIRTIO_9P_MAX_REQS tags
 * in flight, replies matched to requests by token and checked by tag);
 * the operations on top each send one request and wait for it.
 *
 * Errors: an Rlerror is a GError in P9_ERRNO_ERROR with the errno as its
 * code; a malformed reply is P9_ERROR_PROTOCOL; transport failures are
 * VMM_SIM_ERROR.
 */
#ifndef VMM_SIM_VIRTIO_9P_H
#define VMM_SIM_VIRTIO_9P_H

#include "p9-codec.h"
#include "virtio-pci.h"

#define VIRTIO_9P_MOUNT_TAG     0       /* feature: config has the tag */
#define VIRTIO_9P_MAX_REQS      8       /* tags, each with its buffers */
#define VIRTIO_9P_MSIZE         (64u * 1024)    /* what we ask for */

typedef struct Virtio9pReq {
    uint16_t tag;               /* its index in reqs[] */
    bool busy;                  /* handed out by virtio_9p_req_get() */
    bool sent, done;
    bool abandoned;             /* put before its reply came */
    uint8_t type;               /* T-message type sent */
    uint64_t t_gpa, r_gpa;      /* msize bytes each */
    uint8_t *t, *r;             /* host views */
    uint32_t t_len;             /* T-message length */
    uint32_t r_cap;             /* reply buffer handed to the device */
    uint32_t r_len;             /* bytes the device wrote (<= r_cap) */
} Virtio9pReq;

typedef struct Virtio9p {
    VirtioPci pci;
    Virtq vq;
    char *mount_tag;            /* from device config */
    uint32_t buf_size;          /* each request buffer (VIRTIO_9P_MSIZE) */
    uint32_t msize;             /* negotiated by virtio_9p_version() */
    Virtio9pReq reqs[VIRTIO_9P_MAX_REQS];
    uint32_t next_fid;
} Virtio9p;

/*
 * Bring up registered device @index (a virtio-9p-pci): negotiate
 * VIRTIO_9P_MOUNT_TAG, read the tag, queue 0, DRIVER_OK.  No 9P yet.
 */
bool virtio_9p_init(Virtio9p *p, VmmSim *sim, GuestAlloc *mem,
                    unsigned index, uint64_t *mmio_next, unsigned spi_base,
                    bool use_msix, GError **errp);
void virtio_9p_destroy(Virtio9p *p);

/* ---- requests ---- */

/* A free tag; build its T-message in req->t (p->msize bytes). */
Virtio9pReq *virtio_9p_req_get(Virtio9p *p, GError **errp);
/* Queue @req's T-message (@len bytes) with its reply buffer; no kick. */
bool virtio_9p_req_send(Virtio9p *p, Virtio9pReq *req, uint32_t len,
                        GError **errp);
bool virtio_9p_kick(Virtio9p *p, GError **errp);
/*
 * Wait until @req's reply is in (other requests' replies that arrive
 * first are kept for their own wait), then check its header: size, tag,
 * @rtype or Rlerror.  @d then covers the body, in req->r, valid until
 * virtio_9p_req_put().
 */
bool virtio_9p_req_wait(Virtio9p *p, Virtio9pReq *req, uint8_t rtype,
                        P9Dec *d, GError **errp);
void virtio_9p_req_put(Virtio9p *p, Virtio9pReq *req);

/* ---- operations (synchronous: one tag each) ---- */

/* Tversion "9P2000.L" offering @msize (<= VIRTIO_9P_MSIZE); sets msize. */
bool virtio_9p_version(Virtio9p *p, uint32_t msize, GError **errp);
/* A fid number not handed out before. */
uint32_t virtio_9p_new_fid(Virtio9p *p);
bool virtio_9p_attach(Virtio9p *p, uint32_t fid, const char *uname,
                      const char *aname, uint32_t n_uname, P9Qid *qid,
                      GError **errp);
/*
 * Walk @fid along @n names (0: clone) to @newfid; ENOENT in
 * P9_ERRNO_ERROR when the server walked only part of the way (newfid is
 * then not in use).  @qids (may be NULL) gets the n qids.
 */
bool virtio_9p_walk(Virtio9p *p, uint32_t fid, uint32_t newfid,
                    const char *const *names, unsigned n, P9Qid *qids,
                    GError **errp);
bool virtio_9p_getattr(Virtio9p *p, uint32_t fid, uint64_t mask,
                       P9Attr *attr, GError **errp);
/* @flags: P9_DOTL_* */
bool virtio_9p_lopen(Virtio9p *p, uint32_t fid, uint32_t flags, P9Qid *qid,
                     uint32_t *iounit, GError **errp);
/* Create @name in directory @fid, which then stands for the open file. */
bool virtio_9p_lcreate(Virtio9p *p, uint32_t fid, const char *name,
                       uint32_t flags, uint32_t mode, uint32_t gid,
                       P9Qid *qid, uint32_t *iounit, GError **errp);
/*
 * One Tread of up to @count bytes (clamped to msize - P9_IOHDRSZ) at
 * @offset into @buf; *got is what came back (0: end of file).
 */
bool virtio_9p_read(Virtio9p *p, uint32_t fid, uint64_t offset, void *buf,
                    uint32_t count, uint32_t *got, GError **errp);
/* One Twrite of up to @count bytes (clamped likewise); *done: written. */
bool virtio_9p_write(Virtio9p *p, uint32_t fid, uint64_t offset,
                     const void *buf, uint32_t count, uint32_t *done,
                     GError **errp);
/*
 * One Treaddir from @offset: each entry's name (g_strdup) is appended to
 * @names; *next is where the next call goes on; *n entries (0: end).
 */
bool virtio_9p_readdir(Virtio9p *p, uint32_t fid, uint64_t offset,
                       GPtrArray *names, uint64_t *next, unsigned *n,
                       GError **errp);
bool virtio_9p_clunk(Virtio9p *p, uint32_t fid, GError **errp);
/* Remove the file of @fid; @fid is clunked, whether it went or not. */
bool virtio_9p_remove(Virtio9p *p, uint32_t fid, GError **errp);

/* ---- on top of those ---- */

/*
 * Walk from @root along @n names to a new fid and open it with @flags
 * (P9_DOTL_*); *fid is P9_NOFID when the walk failed, else the caller's
 * to clunk.  @qids as for virtio_9p_walk().
 */
bool virtio_9p_open_path(Virtio9p *p, uint32_t root,
                         const char *const *names, unsigned n,
                         uint32_t flags, uint32_t *fid, P9Qid *qids,
                         GError **errp);
/*
 * Read open @fid from offset 0 to its end in Treads as large as msize
 * allows; @sum (may be NULL) is fed every byte, *treads counts the
 * Treads.  Returns the bytes, NULL with @errp set.
 */
GByteArray *virtio_9p_read_all(Virtio9p *p, uint32_t fid, GChecksum *sum,
                               unsigned *treads, GError **errp);
/*
 * The names in directory @root but . and .., sorted (an array of
 * strings it owns); *calls counts the Treaddirs.  NULL with @errp set.
 */
GPtrArray *virtio_9p_list(Virtio9p *p, uint32_t root, unsigned *calls,
                          GError **errp);

#endif
