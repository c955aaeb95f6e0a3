/*
 * seL4 accelerator: serving the VMM's MMIO requests, and the event outbox.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A pass takes up to `batch` requests with one claim, performs each
 * access, answers every one of them (a failed read answers all-ones, a
 * failed write is dropped; SLOT stays as the VMM wrote it), publishes the
 * replies with one commit, publishes the events the pass raised (MSIs,
 * INTx changes) with one more, and rings the VMM once.  Nothing the VMM
 * writes can make us exit or stall: bad requests are answered, dropped
 * entries and doorbell storms counted, and a queue the VMM breaks is
 * resynchronised to its marker; each is logged under -d guest_errors and
 * counted (trace sel4_error).
 *
 * Events (SET_IRQ, REGISTER_PCI_DEV, START_VM) wait in an outbox until
 * devevt has room.  A full devevt is back-pressure: we retry after the
 * next doorbell and on a short timer, never exit.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_host.h"
#include "sel4/sel4_decode.h"
#include "sel4-internal.h"
#include "trace.h"

#define SEL4_EVT_RETRY_NS   (1 * SCALE_MS)
/* devevt full this long: the VMM takes no events; say so once */
#define SEL4_EVT_FULL_NS    (1000 * SCALE_MS)
/* empty doorbells in a row before a storm is logged (then at doublings) */
#define SEL4_IDLE_DOORBELLS 1024
/* a VMM reservation uncommitted this long is logged, once */
#define SEL4_RESERVED_NS    (1000 * SCALE_MS)

/* ---- what a misbehaving VMM gets: a log line, a count, no stall ---- */

/*
 * A queue the VMM broke (impossible markers) or stalled (our tail
 * rewritten ahead of our head, which no actor of ours left): say why,
 * count it, and start over at the VMM's marker (we are the only actor on
 * our side, see vso_queue_resync()), so that what it queues next is
 * served.  What lay between is abandoned: the VMM's own doing.
 */
static void sel4_queue_resync(Sel4State *s, VsoQueue *q, bool producer,
                              int err, Sel4Error kind)
{
    g_autofree char *why = g_strdup(err == -EAGAIN ? q->stall_reason
                                                   : q->broken_reason);
    g_autofree char *lost = NULL;
    int32_t abandoned = 0;

    vso_queue_resync(q, producer, &abandoned);
    if (abandoned > 0) {
        lost = g_strdup_printf("%d %s abandoned", abandoned,
                               producer ? "entries the VMM had not taken"
                                        : "entries the VMM queued");
    } else if (abandoned < 0) {
        /* nothing lay between: our marker only moves to the VMM's */
        lost = g_strdup_printf("nothing abandoned (our %s moved %u "
                               "positions %s)",
                               producer ? "producer" : "consumer",
                               -(uint32_t)abandoned,
                               producer ? "forward" : "back");
    } else {
        lost = g_strdup("nothing abandoned");
    }
    qemu_log_mask(LOG_GUEST_ERROR, "sel4: %s %s (%s); resynchronised to "
                  "the VMM's marker, %s\n", q->name,
                  err == -EAGAIN ? "stalled" : "broken", why, lost);
    sel4_error(s, kind, -err, abandoned);
}

/* Entries vso_rpc dropped (id >= 32, still outstanding), markers fixed. */
static uint64_t sel4_req_errors(Sel4State *s)
{
    return s->rpc.req.stats.bad_ids + s->rpc.stats.dup_id +
           s->rpc.req.stats.errors;
}

static void sel4_note_req_errors(Sel4State *s)
{
    uint64_t errors = sel4_req_errors(s);

    if (errors != s->req_errors_logged) {
        qemu_log_mask(LOG_GUEST_ERROR, "sel4: drvrpc_req: %" PRIu64
                      " bad entries dropped or markers repaired (so far: "
                      "%" PRIu64 " ids >= 32, %" PRIu64 " copies of an id "
                      "still outstanding, %" PRIu64 " rewritten counts)\n",
                      errors - s->req_errors_logged,
                      s->rpc.req.stats.bad_ids, s->rpc.stats.dup_id,
                      s->rpc.req.stats.errors);
        sel4_error(s, SEL4_ERR_REQ_DROPPED, errors - s->req_errors_logged,
                   errors);
        s->req_errors_logged = errors;
    }
}

/*
 * What the VMM's producer markers on drvrpc_req show when a doorbell
 * found no request: entries reserved (prod.tail) and not committed
 * (prod.head) are invisible to us, so its doorbells find nothing.  Keeps
 * since when the same reservation stands; NULL when there is none.
 */
static char *sel4_req_reserved(Sel4State *s, int64_t *age)
{
    rpcmsg_marker_t t, h;
    int32_t n = vso_queue_uncommitted(&s->rpc.req, true, &t, &h);
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    g_autoptr(GDateTime) since = NULL;
    g_autofree char *when = NULL;

    if (n <= 0 || t.raw == h.raw) {
        s->req_reserved_since = 0;
        return NULL;
    }
    if (!s->req_reserved_since || t.raw != s->req_reserved_tail) {
        s->req_reserved_tail = t.raw;
        s->req_reserved_since = now;
        s->req_reserved_wall = g_get_real_time();
        s->req_reserved_logged = false;
    }
    *age = now - s->req_reserved_since;
    since = g_date_time_new_from_unix_utc(s->req_reserved_wall /
                                          G_USEC_PER_SEC);
    when = since ? g_date_time_format(since, "%H:%M:%S UTC") : NULL;
    return g_strdup_printf("drvrpc_req: the VMM's producer reserved %d "
                           "entries (prod.tail %u, count %u) and has not "
                           "committed them (prod.head %u, count %u) for %"
                           PRId64 " ms, since %s", n, t.pos, t.count, h.pos,
                           h.count, *age / SCALE_MS, when ? when : "?");
}

void sel4_doorbell_done(Sel4State *s, uint64_t count, bool served)
{
    g_autofree char *reserved = NULL;
    int64_t age = 0;
    uint64_t before = s->idle_doorbells;
    bool served_last = s->served_last_wake;

    s->served_last_wake = served;
    if (served) {
        s->idle_doorbells = 0;
        return;
    }
    reserved = sel4_req_reserved(s, &age);
    if (reserved && !s->req_reserved_logged && age >= SEL4_RESERVED_NS) {
        qemu_log_mask(LOG_GUEST_ERROR, "sel4: %s; its doorbells find no "
                      "request until it commits\n", reserved);
        sel4_error(s, SEL4_ERR_REQ_UNCOMMITTED, s->req_reserved_tail,
                   age / SCALE_MS);
        s->req_reserved_logged = true;
    }
    if (served_last) {
        /* rung for requests the last wake's pass (or poll) took already */
        return;
    }
    /* a doorbell is only a hint, but thousands in a row are a storm */
    s->idle_doorbells += MAX(count, 1);
    if (s->idle_doorbells >= SEL4_IDLE_DOORBELLS &&
        pow2floor(s->idle_doorbells) > before) {
        qemu_log_mask(LOG_GUEST_ERROR, "sel4: %" PRIu64 " doorbells in a "
                      "row found no request (%s)\n", s->idle_doorbells,
                      reserved ? reserved : "nothing reserved either: a "
                      "doorbell storm");
        sel4_error(s, SEL4_ERR_IDLE_DOORBELLS, s->idle_doorbells, count);
    }
}

/*
 * devevt stays full: the VMM takes no events.  REGISTER_PCI_DEV and
 * START_VM have no reply in the protocol, so nothing of ours waits for
 * one; we keep serving requests and retrying, and say so once.
 */
static void sel4_events_note_full(Sel4State *s, unsigned waiting)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    if (!waiting) {
        s->evt_full_since = 0;
        s->evt_full_logged = false;
        return;
    }
    if (!s->evt_full_since) {
        s->evt_full_since = now;
    } else if (!s->evt_full_logged &&
               now - s->evt_full_since >= SEL4_EVT_FULL_NS) {
        qemu_log_mask(LOG_GUEST_ERROR, "sel4: devevt full for %" PRId64
                      " ms: the VMM takes no events (%u waiting); still "
                      "serving requests\n",
                      (now - s->evt_full_since) / SCALE_MS, waiting);
        sel4_error(s, SEL4_ERR_DEVEVT_STUCK, waiting, 0);
        s->evt_full_logged = true;
    }
}

/* ---- one access ---- */

static uint32_t sel4_config_size(void *opaque, unsigned index)
{
    Sel4State *s = opaque;

    return pci_config_size(s->pcidev[index]);
}

/* A CONFIG route (sel4_decide() checked the device and the bounds). */
static void sel4_config_access(Sel4State *s, const Sel4Decision *d,
                               uint64_t *data)
{
    PCIDevice *dev = s->pcidev[d->m.as];
    uint32_t offset;
    unsigned done, len;

    if (!d->m.write) {
        *data = 0;
    }
    for (done = 0; (len = sel4_config_next(d, done, &offset)); done += len) {
        if (d->m.write) {
            pci_host_config_write_common(dev, offset, d->limit,
                                         sel4_config_piece(*data, done, len),
                                         len);
        } else {
            *data = sel4_config_merge(*data, done,
                pci_host_config_read_common(dev, offset, d->limit, len));
        }
    }
}

/* AS_GLOBAL: guest-physical, where the guest-programmed BARs live. */
static bool sel4_global_access(const VsoMmio *m, uint64_t *data)
{
    uint8_t buf[8];
    MemTxResult r;

    if (m->write) {
        stn_le_p(buf, m->len, *data);
        r = address_space_write(&address_space_memory, m->addr,
                                MEMTXATTRS_UNSPECIFIED, buf, m->len);
    } else {
        r = address_space_read(&address_space_memory, m->addr,
                               MEMTXATTRS_UNSPECIFIED, buf, m->len);
        if (r == MEMTX_OK) {
            *data = ldn_le_p(buf, m->len);
        }
    }
    if (r != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "sel4: %s of %u bytes at 0x%" PRIx64 " failed (%u)\n",
                      m->write ? "write" : "read", m->len, m->addr, r);
        return false;
    }
    return true;
}

static void sel4_decide_request(Sel4State *s, const VsoRequest *req,
                                Sel4Decision *d)
{
    const Sel4Devices devs = {
        .n = s->n_pcidev, .config_size = sel4_config_size, .opaque = s,
    };

    sel4_decide(&req->msg, &devs, d);
    sel4_stats_request(s, d->err, &d->m);
}

/*
 * The notify fast path: a write that matches an ioeventfd is done once
 * the eventfd is signalled (sel4-ioeventfd.c).  No BQL needed.
 */
static bool sel4_try_fast_write(Sel4State *s, const VsoRequest *req,
                                const Sel4Decision *d, uint64_t *reply)
{
    if (d->route != SEL4_ROUTE_GLOBAL || !d->m.write ||
        !sel4_ioeventfd_write(s, d->m.addr, d->m.len, d->m.data)) {
        return false;
    }
    trace_sel4_request(req->id, d->m.slot, d->m.as, d->m.write, d->m.len,
                       d->m.addr, d->m.data);
    *reply = sel4_reply(d, true, 0);
    return true;
}

/*
 * Perform one decided request, with the BQL; returns what goes into the
 * reply's mr2.  What to do is sel4_decide()'s (lib/sel4_decode.c,
 * fuzzed); this only acts.
 */
static uint64_t sel4_act(Sel4State *s, const VsoRequest *req,
                         const Sel4Decision *d)
{
    char why[128];
    uint64_t data;
    bool ok = true;

    switch (d->route) {
    case SEL4_ROUTE_REJECT:
        sel4_reject_describe(d, why, sizeof(why));
        qemu_log_mask(LOG_GUEST_ERROR, "sel4: %s\n", why);
        sel4_error(s, d->reject == SEL4_REJECT_DECODE ?
                      sel4_decode_error(d->err) : SEL4_ERR_CONFIG_ACCESS,
                   req->msg.mr0, d->m.addr);
        break;
    case SEL4_ROUTE_IGNORE:
        qemu_log_mask(LOG_UNIMP, "sel4: PUTC_LOG request (mr1=0x%" PRIx64
                      ") ignored\n", req->msg.mr1);
        break;
    case SEL4_ROUTE_GLOBAL:
    case SEL4_ROUTE_CONFIG:
        trace_sel4_request(req->id, d->m.slot, d->m.as, d->m.write, d->m.len,
                           d->m.addr, d->m.data);
        data = d->m.data;
        if (d->route == SEL4_ROUTE_CONFIG) {
            sel4_config_access(s, d, &data);
        } else if (!sel4_global_access(&d->m, &data)) {
            sel4_error(s, SEL4_ERR_GLOBAL_ACCESS, d->m.as, d->m.addr);
            ok = false;
        }
        return sel4_reply(d, ok, data);
    }
    return sel4_reply(d, false, 0);
}

/* ---- passes ---- */

static void sel4_publish_replies(Sel4State *s, const VsoReply *replies,
                                 int n)
{
    int published = vso_rpc_reply(&s->rpc, replies, n);

    if (published < 0) {
        sel4_queue_resync(s, &s->rpc.resp, true, published,
                          SEL4_ERR_REPLY);
        published = vso_rpc_reply(&s->rpc, replies, n);
    }
    trace_sel4_reply_batch(n, published);
    if (published != n) {
        /* it holds at most the 32 ids in flight: full means rewritten */
        qemu_log_mask(LOG_GUEST_ERROR, "sel4: drvrpc_resp took %d of %d "
                      "replies\n", published, n);
        sel4_error(s, SEL4_ERR_REPLY, n, published);
    }
}

static int sel4_recv(Sel4State *s, VsoRequest *reqs, unsigned max)
{
    int n = vso_rpc_recv(&s->rpc, reqs, max);

    if (n < 0) {
        sel4_queue_resync(s, &s->rpc.req, false, n, SEL4_ERR_RECV);
        /* the break itself is in the line just logged */
        s->req_errors_logged = sel4_req_errors(s);
        return 0;
    }
    sel4_note_req_errors(s);
    return n;
}

/*
 * One pass; returns the number of requests served.  With @bql_held false
 * (the loop threads) requests are decided and notifies done without the
 * BQL; the first request that needs a memory dispatch takes it, and the
 * pass keeps it to the end: once per pass, and the requests still acted
 * on in the order the VMM queued them.
 */
static int sel4_serve_pass(Sel4State *s, unsigned batch, bool bql_held)
{
    VsoRequest reqs[SEL4_BATCH_MAX];
    VsoReply replies[SEL4_BATCH_MAX];
    Sel4Decision d;
    bool locked = bql_held;
    int n = sel4_recv(s, reqs, batch);
    int i;

    if (!n) {
        return 0;
    }
    trace_sel4_batch(n);
    for (i = 0; i < n; i++) {
        replies[i].id = reqs[i].id;
        sel4_decide_request(s, &reqs[i], &d);
        if (sel4_try_fast_write(s, &reqs[i], &d, &replies[i].data)) {
            continue;
        }
        if (!locked) {
            bql_lock();
            locked = true;
        }
        replies[i].data = sel4_act(s, &reqs[i], &d);
    }
    if (locked && !bql_held) {
        bql_unlock();
    }
    sel4_publish_replies(s, replies, n);
    sel4_stats_batch(s, n);
    return n;
}

static bool sel4_serve_until_empty(Sel4State *s, unsigned batch,
                                   bool bql_held)
{
    bool served = false;
    int n;

    do {
        n = sel4_serve_pass(s, batch, bql_held);
        /* replies and events of this pass: one doorbell */
        if (sel4_events_flush(s) || n > 0) {
            s->loop_ops->ring(s);
        }
        served |= n > 0;
        /* a short pass means the queue was empty when we claimed */
    } while (n == (int)batch);
    return served;
}

/*
 * poll-us: the VMM is likely to send more soon, and looking at the queue
 * is cheaper than sleeping and being woken.  We look from a BH, once per
 * main loop iteration, instead of spinning in here: the devices' own
 * handlers (ioeventfds, block and network completions, the MSIs they
 * raise) run in this same thread, and a spin would hold them up for the
 * whole window (a request the VMM sends *because* of them could not come).
 */
static void sel4_poll_bh(void *opaque)
{
    Sel4State *s = opaque;

    if (vso_queue_pending(&s->rpc.req) > 0) {
        if (sel4_serve(s, s->batch)) {
            /* the doorbells of what we took find nothing: not a storm */
            sel4_doorbell_done(s, 0, true);
        }
    } else if (get_clock() < s->poll_deadline) {
        qemu_bh_schedule(s->poll_bh);
    }
}

bool sel4_serve(Sel4State *s, unsigned batch)
{
    bool served = sel4_serve_until_empty(s, batch, true);

    if (s->poll_us && !s->thread_running) {
        if (served) {
            s->poll_deadline = get_clock() + s->poll_us * SCALE_US;
        }
        if (get_clock() < s->poll_deadline) {
            qemu_bh_schedule(s->poll_bh);
        }
    }
    return served;
}

bool sel4_serve_unlocked(Sel4State *s, unsigned batch)
{
    return sel4_serve_until_empty(s, batch, false);
}

/* ---- the event outbox ---- */

static bool sel4_event_is_pulse(const rpcmsg_t *msg)
{
    return RPC_MR0_GET(msg->mr0, OP) == QEMU_OP_SET_IRQ &&
           msg->mr2 == RPC_IRQ_PULSE;
}

void sel4_event_queue(Sel4State *s, const rpcmsg_t *msg)
{
    unsigned i;

    QEMU_LOCK_GUARD(&s->evt_lock);
    if (sel4_event_is_pulse(msg)) {
        for (i = 0; i < s->n_outbox; i++) {
            if (!memcmp(&s->outbox[i], msg, sizeof(*msg))) {
                sel4_stat_add(s, SEL4_STAT_MSI_MERGED, 1);
                return;
            }
        }
    }
    if (s->n_outbox == SEL4_OUTBOX_SIZE) {
        sel4_stat_add(s, SEL4_STAT_EVT_DROPPED, 1);
        error_report_once("sel4: more than %u events wait for the VMM; "
                          "dropping", SEL4_OUTBOX_SIZE);
        return;
    }
    s->outbox[s->n_outbox++] = *msg;
    sel4_stat_max(s, SEL4_STAT_OUTBOX_PEAK, s->n_outbox);
}

void sel4_event_push(Sel4State *s, const rpcmsg_t *msg)
{
    sel4_event_queue(s, msg);
    /* a pass in progress flushes it; otherwise the BH does, coalesced */
    qemu_bh_schedule(s->evt_bh);
}

void sel4_set_intx(unsigned n, bool level)
{
    Sel4State *s = sel4_state;

    assert(n < RPC_MAX_PCIDEV);
    trace_sel4_intx(n, level);
    sel4_stat_add(s, SEL4_STAT_INTX_CHANGES, 1);
    WITH_QEMU_LOCK_GUARD(&s->evt_lock) {
        s->intx_level = deposit32(s->intx_level, n, 1, level);
    }
    qemu_bh_schedule(s->evt_bh);
}

void sel4_send_msi(uint64_t address, uint32_t data)
{
    Sel4State *s = sel4_state;
    rpcmsg_t msg = {
        .mr0 = rpc_mr0_op(QEMU_OP_SET_IRQ),
        .mr1 = data & 0xffff,
        .mr2 = RPC_IRQ_PULSE,
    };

    trace_sel4_msi(address, data);
    sel4_stat_add(s, SEL4_STAT_MSI, 1);
    sel4_event_push(s, &msg);
}

/*
 * Outbox entries first (in order), then INTx lines whose level differs
 * from what the VMM last saw.  Returns the number of messages built.
 */
static unsigned sel4_events_collect(Sel4State *s, rpcmsg_t *msgs,
                                    uint32_t *intx_bits)
{
    unsigned n = MIN(s->n_outbox, RPCMSG_BUFFER_SIZE);
    uint32_t dirty = s->intx_level ^ s->intx_sent;

    memcpy(msgs, s->outbox, n * sizeof(*msgs));
    *intx_bits = 0;
    while (dirty && n < RPCMSG_BUFFER_SIZE) {
        unsigned line = ctz32(dirty);

        msgs[n++] = (rpcmsg_t) {
            .mr0 = rpc_mr0_op(QEMU_OP_SET_IRQ),
            .mr1 = line,
            .mr2 = extract32(s->intx_level, line, 1) ? RPC_IRQ_SET
                                                     : RPC_IRQ_CLR,
        };
        *intx_bits |= 1u << line;
        dirty &= dirty - 1;
    }
    return n;
}

/* Publish one collected batch; returns how many went out. */
static int sel4_events_send(Sel4State *s)
{
    rpcmsg_t msgs[RPCMSG_BUFFER_SIZE];
    unsigned n, from_outbox, i;
    uint32_t intx_bits;
    int sent;

    n = sel4_events_collect(s, msgs, &intx_bits);
    if (!n) {
        return 0;
    }
    sent = vso_rpc_send_events(&s->rpc, msgs, n);
    if (sent < 0) {
        /* the events are kept: the retry timer sends them after this */
        sel4_queue_resync(s, &s->rpc.evt, true, sent, SEL4_ERR_SEND_EVENTS);
        return 0;
    }
    from_outbox = MIN((unsigned)sent, s->n_outbox);
    memmove(s->outbox, s->outbox + from_outbox,
            (s->n_outbox - from_outbox) * sizeof(s->outbox[0]));
    s->n_outbox -= from_outbox;
    for (i = from_outbox; i < (unsigned)sent; i++) {
        s->intx_sent = deposit32(s->intx_sent, msgs[i].mr1, 1,
                                 msgs[i].mr2 == RPC_IRQ_SET);
    }
    sel4_stats_events(s, msgs, sent);
    return sent;
}

bool sel4_events_flush(Sel4State *s)
{
    unsigned total = 0, waiting;
    int sent;

    QEMU_LOCK_GUARD(&s->evt_lock);
    /* more than one batch may wait (e.g. 32 registrations and START_VM) */
    do {
        sent = sel4_events_send(s);
        total += MAX(sent, 0);
    } while (sent == RPCMSG_BUFFER_SIZE);
    waiting = s->n_outbox + ctpop32(s->intx_level ^ s->intx_sent);
    if (total || waiting) {
        trace_sel4_events_flush(total, waiting);
    }
    if (waiting) {
        /* devevt is full: back-pressure, not an error */
        sel4_stat_add(s, SEL4_STAT_DEVEVT_FULL, 1);
        timer_mod(s->evt_retry,
                  qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SEL4_EVT_RETRY_NS);
    }
    sel4_events_note_full(s, waiting);
    return total > 0;
}

static void sel4_events_bh(void *opaque)
{
    Sel4State *s = opaque;

    if (sel4_events_flush(s)) {
        s->loop_ops->ring(s);
    }
}

void sel4_events_init(Sel4State *s)
{
    qemu_mutex_init(&s->evt_lock);
    s->evt_bh = qemu_bh_new(sel4_events_bh, s);
    s->poll_bh = qemu_bh_new(sel4_poll_bh, s);
    s->evt_retry = timer_new_ns(QEMU_CLOCK_REALTIME, sel4_events_bh, s);
}
