/*
 * The simulated guest's virtio-9p driver and 9P2000.L client
 * (see virtio-9p.h).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>

#include "virtio-9p.h"

#define P9_TIMEOUT_MS       10000
#define P9_MAX_TAG_LEN      256     /* more than any sane mount tag */
/* device config (virtio 1.x 5.9.4): tag_len[2] then the tag's bytes */
#define CFG_TAG_LEN         0
#define CFG_TAG             2

static bool p9_fail(GError **errp, const char *what)
{
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED, "virtio-9p: %s",
                what);
    return false;
}

/* ---- bring-up ---- */

static bool p9_read_tag(Virtio9p *p, GError **errp)
{
    uint64_t len = 0, c = 0;
    g_autofree char *tag = NULL;

    if (!virtio_pci_has(&p->pci, VIRTIO_9P_MOUNT_TAG)) {
        p->mount_tag = g_strdup("");
        return true;
    }
    if (!virtio_pci_config_read(&p->pci, CFG_TAG_LEN, 2, &len, errp)) {
        return false;
    }
    if (len > P9_MAX_TAG_LEN) {
        return p9_fail(errp, "mount tag length out of range");
    }
    tag = g_malloc0(len + 1);
    for (unsigned i = 0; i < len; i++) {
        if (!virtio_pci_config_read(&p->pci, CFG_TAG + i, 1, &c, errp)) {
            return false;
        }
        tag[i] = c;
    }
    if (strlen(tag) != len) {
        return p9_fail(errp, "mount tag with a NUL byte");
    }
    p->mount_tag = g_steal_pointer(&tag);
    return true;
}

static bool p9_alloc_reqs(Virtio9p *p, GuestAlloc *mem, GError **errp)
{
    for (unsigned i = 0; i < VIRTIO_9P_MAX_REQS; i++) {
        Virtio9pReq *req = &p->reqs[i];

        req->tag = i;
        req->t_gpa = guest_alloc(mem, p->buf_size, 64);
        req->r_gpa = guest_alloc(mem, p->buf_size, 64);
        if (!req->t_gpa || !req->r_gpa) {
            return p9_fail(errp, "no guest RAM for request buffers");
        }
        req->t = guest_ptr(mem, req->t_gpa, p->buf_size);
        req->r = guest_ptr(mem, req->r_gpa, p->buf_size);
        if (!req->t || !req->r) {
            return p9_fail(errp, "request buffers outside guest RAM");
        }
    }
    return true;
}

bool virtio_9p_init(Virtio9p *p, VmmSim *sim, GuestAlloc *mem,
                    unsigned index, uint64_t *mmio_next, unsigned spi_base,
                    bool use_msix, GError **errp)
{
    uint64_t wanted = UINT64_C(1) << VIRTIO_9P_MOUNT_TAG |
                      UINT64_C(1) << VIRTIO_F_INDIRECT_DESC |
                      UINT64_C(1) << VIRTIO_F_EVENT_IDX;

    memset(p, 0, sizeof(*p));
    p->buf_size = VIRTIO_9P_MSIZE;
    p->msize = p->buf_size;     /* until Tversion says otherwise */
    p->next_fid = 1;
    return p9_alloc_reqs(p, mem, errp) &&
           virtio_pci_probe(&p->pci, sim, mem, index, mmio_next, errp) &&
           virtio_pci_negotiate(&p->pci, wanted, errp) &&
           virtio_pci_setup_irqs(&p->pci, spi_base, use_msix, errp) &&
           virtio_pci_setup_queue(&p->pci, &p->vq, 0,
                                  2 * VIRTIO_9P_MAX_REQS, errp) &&
           p9_read_tag(p, errp) &&
           virtio_pci_driver_ok(&p->pci, errp);
}

void virtio_9p_destroy(Virtio9p *p)
{
    virtq_destroy(&p->vq);
    g_free(p->mount_tag);
    p->mount_tag = NULL;
}

/* ---- requests ---- */

Virtio9pReq *virtio_9p_req_get(Virtio9p *p, GError **errp)
{
    for (unsigned i = 0; i < VIRTIO_9P_MAX_REQS; i++) {
        Virtio9pReq *req = &p->reqs[i];

        if (!req->busy) {
            req->busy = true;
            req->sent = req->done = req->abandoned = false;
            req->t_len = req->r_cap = req->r_len = 0;
            return req;
        }
    }
    p9_fail(errp, "every tag is in flight");
    return NULL;
}

bool virtio_9p_req_send(Virtio9p *p, Virtio9pReq *req, uint32_t len,
                        GError **errp)
{
    VirtqBuf bufs[2] = {
        { req->t_gpa, len, false },
        { req->r_gpa, p->msize, true },
    };

    if (!req->busy || req->sent) {
        return p9_fail(errp, "sending a tag not held, or twice");
    }
    if (len < P9_HDR_SIZE || len > p->msize) {
        return p9_fail(errp, "T-message length out of range");
    }
    req->type = req->t[4];
    req->t_len = len;
    /* what the device may fill, whatever msize becomes before it does */
    req->r_cap = p->msize;
    if (virtq_add(&p->vq, bufs, 2, req, true) < 0) {
        return p9_fail(errp, "virtqueue full");
    }
    req->sent = true;
    return true;
}

bool virtio_9p_kick(Virtio9p *p, GError **errp)
{
    return virtio_pci_kick(&p->pci, &p->vq, errp);
}

/* Reap completions until @req's is in. */
static bool p9_reap_until(Virtio9p *p, Virtio9pReq *req, GError **errp)
{
    while (!req->done) {
        uint32_t len = 0;
        Virtio9pReq *got = virtio_pci_wait_used(&p->pci, &p->vq, &len,
                                                P9_TIMEOUT_MS, errp);

        if (!got) {
            return false;
        }
        /* the device cannot have written more than the buffer we gave */
        got->r_len = MIN(len, got->r_cap);
        got->done = true;
        if (got->abandoned) {
            got->busy = false;  /* its waiter gave up: free the tag now */
        }
    }
    return true;
}

bool virtio_9p_req_wait(Virtio9p *p, Virtio9pReq *req, uint8_t rtype,
                        P9Dec *d, GError **errp)
{
    /* Tversion goes out with NOTAG whatever slot carries it */
    uint16_t tag = req->type == P9_TVERSION ? P9_NOTAG : req->tag;

    if (!req->sent) {
        return p9_fail(errp, "waiting for a request never sent");
    }
    return p9_reap_until(p, req, errp) &&
           p9_dec_begin(d, req->r, req->r_len, req->r_cap, rtype, tag, errp);
}

void virtio_9p_req_put(Virtio9p *p, Virtio9pReq *req)
{
    if (!req) {
        return;
    }
    if (req->sent && !req->done) {
        /* the device still owns the buffers: free it when it answers */
        req->abandoned = true;
        return;
    }
    req->busy = false;
}

/* ---- operations ---- */

/* Send @req's T-message (built in @e), wait for its @rtype reply. */
static bool p9_rpc(Virtio9p *p, Virtio9pReq *req, const P9Enc *e,
                   uint8_t rtype, P9Dec *d, GError **errp)
{
    return virtio_9p_req_send(p, req, e->len, errp) &&
           virtio_9p_kick(p, errp) &&
           virtio_9p_req_wait(p, req, rtype, d, errp);
}

/* What one Tread/Twrite/Treaddir may carry. */
static uint32_t p9_io_max(const Virtio9p *p)
{
    return p->msize - P9_IOHDRSZ;
}

bool virtio_9p_version(Virtio9p *p, uint32_t msize, GError **errp)
{
    Virtio9pReq *req;
    g_autofree char *version = NULL;
    uint32_t got = 0;
    P9Enc e;
    P9Dec d;
    bool r;

    if (msize < P9_MIN_MSIZE || msize > p->buf_size) {
        return p9_fail(errp, "msize out of range");
    }
    p->msize = msize;
    req = virtio_9p_req_get(p, errp);
    r = req &&
        p9_enc_tversion(&e, req->t, p->msize, msize, P9_VERSION_L, errp) &&
        p9_rpc(p, req, &e, P9_RVERSION, &d, errp) &&
        p9_dec_rversion(&d, &got, &version, errp);
    virtio_9p_req_put(p, req);
    if (!r) {
        return false;
    }
    if (strcmp(version, P9_VERSION_L) != 0) {
        g_set_error(errp, P9_ERROR, P9_ERROR_PROTOCOL,
                    "9p: the server speaks \"%s\", not " P9_VERSION_L,
                    version);
        return false;
    }
    if (got < P9_MIN_MSIZE || got > msize) {
        g_set_error(errp, P9_ERROR, P9_ERROR_PROTOCOL,
                    "9p: Rversion msize %u (we offered %u)", got, msize);
        return false;
    }
    p->msize = got;
    return true;
}

uint32_t virtio_9p_new_fid(Virtio9p *p)
{
    return p->next_fid++;
}

bool virtio_9p_attach(Virtio9p *p, uint32_t fid, const char *uname,
                      const char *aname, uint32_t n_uname, P9Qid *qid,
                      GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_tattach(&e, req->t, p->msize, req->tag, fid, P9_NOFID, uname,
                       aname, n_uname, errp) &&
        p9_rpc(p, req, &e, P9_RATTACH, &d, errp) &&
        p9_dec_rattach(&d, qid, errp);
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_walk(Virtio9p *p, uint32_t fid, uint32_t newfid,
                    const char *const *names, unsigned n, P9Qid *qids,
                    GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Qid got[P9_MAXWELEM];
    unsigned nwqid = 0;
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_twalk(&e, req->t, p->msize, req->tag, fid, newfid, names, n,
                     errp) &&
        p9_rpc(p, req, &e, P9_RWALK, &d, errp) &&
        p9_dec_rwalk(&d, got, n, &nwqid, errp);
    virtio_9p_req_put(p, req);
    if (!r) {
        return false;
    }
    if (nwqid < n) {
        /* a partial walk: the server did not make newfid */
        g_set_error(errp, P9_ERRNO_ERROR, ENOENT,
                    "9p: walk stopped at \"%s\" (%u of %u names)",
                    names[nwqid], nwqid, n);
        return false;
    }
    if (qids) {
        memcpy(qids, got, n * sizeof(*qids));
    }
    return true;
}

bool virtio_9p_getattr(Virtio9p *p, uint32_t fid, uint64_t mask,
                       P9Attr *attr, GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_tgetattr(&e, req->t, p->msize, req->tag, fid, mask, errp) &&
        p9_rpc(p, req, &e, P9_RGETATTR, &d, errp) &&
        p9_dec_rgetattr(&d, attr, errp);
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_lopen(Virtio9p *p, uint32_t fid, uint32_t flags, P9Qid *qid,
                     uint32_t *iounit, GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_tlopen(&e, req->t, p->msize, req->tag, fid, flags, errp) &&
        p9_rpc(p, req, &e, P9_RLOPEN, &d, errp) &&
        p9_dec_rlopen(&d, qid, iounit, errp);
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_lcreate(Virtio9p *p, uint32_t fid, const char *name,
                       uint32_t flags, uint32_t mode, uint32_t gid,
                       P9Qid *qid, uint32_t *iounit, GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_tlcreate(&e, req->t, p->msize, req->tag, fid, name, flags,
                        mode, gid, errp) &&
        p9_rpc(p, req, &e, P9_RLCREATE, &d, errp) &&
        p9_dec_rlopen(&d, qid, iounit, errp);
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_read(Virtio9p *p, uint32_t fid, uint64_t offset, void *buf,
                    uint32_t count, uint32_t *got, GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    const uint8_t *data = NULL;
    P9Enc e;
    P9Dec d;
    bool r;

    count = MIN(count, p9_io_max(p));
    r = req &&
        p9_enc_tread(&e, req->t, p->msize, P9_TREAD, req->tag, fid, offset,
                     count, errp) &&
        p9_rpc(p, req, &e, P9_RREAD, &d, errp) &&
        p9_dec_rread(&d, count, &data, got, errp);
    if (r && *got) {
        memcpy(buf, data, *got);
    }
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_write(Virtio9p *p, uint32_t fid, uint64_t offset,
                     const void *buf, uint32_t count, uint32_t *done,
                     GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    count = MIN(count, p9_io_max(p));
    r = req &&
        p9_enc_twrite(&e, req->t, p->msize, req->tag, fid, offset, buf,
                      count, errp) &&
        p9_rpc(p, req, &e, P9_RWRITE, &d, errp) &&
        p9_dec_rwrite(&d, count, done, errp);
    virtio_9p_req_put(p, req);
    return r;
}

/* Append the names in Rreaddir @data to @names; a bad name fails it. */
static bool p9_parse_dirents(const uint8_t *data, uint32_t len,
                             GPtrArray *names, uint64_t *next, unsigned *n,
                             GError **errp)
{
    P9Dirent ent;
    P9Dec d;
    int r;

    p9_dec_init(&d, data, len);
    while ((r = p9_dec_dirent(&d, &ent, errp)) > 0) {
        if (!ent.name_len || memchr(ent.name, '/', ent.name_len) ||
            memchr(ent.name, '\0', ent.name_len)) {
            g_set_error(errp, P9_ERROR, P9_ERROR_PROTOCOL,
                        "9p: Rreaddir entry with an impossible name");
            return false;
        }
        g_ptr_array_add(names, g_strndup(ent.name, ent.name_len));
        *next = ent.offset;
        (*n)++;
    }
    return r == 0;
}

bool virtio_9p_readdir(Virtio9p *p, uint32_t fid, uint64_t offset,
                       GPtrArray *names, uint64_t *next, unsigned *n,
                       GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    uint32_t count = p9_io_max(p), got = 0;
    const uint8_t *data = NULL;
    P9Enc e;
    P9Dec d;
    bool r;

    *n = 0;
    *next = offset;
    r = req &&
        p9_enc_tread(&e, req->t, p->msize, P9_TREADDIR, req->tag, fid,
                     offset, count, errp) &&
        p9_rpc(p, req, &e, P9_RREADDIR, &d, errp) &&
        p9_dec_rread(&d, count, &data, &got, errp) &&
        p9_parse_dirents(data, got, names, next, n, errp);
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_clunk(Virtio9p *p, uint32_t fid, GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_tclunk(&e, req->t, p->msize, req->tag, fid, errp) &&
        p9_rpc(p, req, &e, P9_RCLUNK, &d, errp) &&
        p9_dec_rclunk(&d, errp);
    virtio_9p_req_put(p, req);
    return r;
}

bool virtio_9p_remove(Virtio9p *p, uint32_t fid, GError **errp)
{
    Virtio9pReq *req = virtio_9p_req_get(p, errp);
    P9Enc e;
    P9Dec d;
    bool r;

    r = req &&
        p9_enc_tremove(&e, req->t, p->msize, req->tag, fid, errp) &&
        p9_rpc(p, req, &e, P9_RREMOVE, &d, errp) &&
        p9_dec_rremove(&d, errp);
    virtio_9p_req_put(p, req);
    return r;
}

/* ---- on top of those ---- */

#define VIRTIO_9P_MAX_READDIR   1000    /* Treaddirs before we call it a loop */

bool virtio_9p_open_path(Virtio9p *p, uint32_t root,
                         const char *const *names, unsigned n,
                         uint32_t flags, uint32_t *fid, P9Qid *qids,
                         GError **errp)
{
    uint32_t iounit;
    P9Qid qid;

    *fid = virtio_9p_new_fid(p);
    if (!virtio_9p_walk(p, root, *fid, names, n, qids, errp)) {
        *fid = P9_NOFID;
        return false;
    }
    return virtio_9p_lopen(p, *fid, flags, &qid, &iounit, errp);
}

GByteArray *virtio_9p_read_all(Virtio9p *p, uint32_t fid, GChecksum *sum,
                               unsigned *treads, GError **errp)
{
    g_autoptr(GByteArray) all = g_byte_array_new();
    g_autofree uint8_t *buf = g_malloc(p->msize);

    *treads = 0;
    for (;;) {
        uint32_t got = 0;

        if (!virtio_9p_read(p, fid, all->len, buf, p->msize, &got, errp)) {
            return NULL;
        }
        (*treads)++;
        if (!got) {
            return g_steal_pointer(&all);
        }
        if (sum) {
            g_checksum_update(sum, buf, got);
        }
        g_byte_array_append(all, buf, got);
    }
}

static gint p9_cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *virtio_9p_list(Virtio9p *p, uint32_t root, unsigned *calls,
                          GError **errp)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *kept;
    uint64_t offset = 0;
    uint32_t dir;
    unsigned n = 1;
    bool r;

    r = virtio_9p_open_path(p, root, NULL, 0,
                            P9_DOTL_RDONLY | P9_DOTL_DIRECTORY, &dir, NULL,
                            errp);
    for (*calls = 0; r && n && *calls < VIRTIO_9P_MAX_READDIR; (*calls)++) {
        r = virtio_9p_readdir(p, dir, offset, names, &offset, &n, errp);
    }
    if (dir != P9_NOFID) {
        r = virtio_9p_clunk(p, dir, r ? errp : NULL) && r;
    }
    if (r && n) {
        g_set_error(errp, P9_ERROR, P9_ERROR_PROTOCOL,
                    "9p: no end of the directory after %u Treaddirs",
                    *calls);
        r = false;
    }
    if (!r) {
        return NULL;
    }
    kept = g_ptr_array_new_with_free_func(g_free);
    for (unsigned i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];

        if (!g_str_equal(name, ".") && !g_str_equal(name, "..")) {
            g_ptr_array_add(kept, g_strdup(name));
        }
    }
    g_ptr_array_sort(kept, p9_cmp_names);
    return kept;
}
