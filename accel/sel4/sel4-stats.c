/*
 * seL4 accelerator: counters, and the monitor's ways to read them.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The serving code counts into Sel4Stats (Stat64: atomic, since
 * loop=thread serves from its own thread); the queue library's own
 * counters (bad ids, broken markers, high-water marks) are read from the
 * VsoRpc handle, relaxed.  One table names every value, and each reader
 * walks it:
 *  - QOM: a read-only property per value, "stats-<name>", and "stats",
 *    all of them as one dict; the accelerator object is added to the QOM
 *    tree as /machine/accel so that qom-get reaches it;
 *  - query-stats: provider "sel4", target "vm" (qemu/hooks/20-sel4-monitor.sh
 *    adds the provider to the QAPI schema), also HMP `info stats vm sel4`;
 *  - HMP `info sel4` and, on 10.2, `info accel` / x-accel-stats: text.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qapi/type-helpers.h"
#include "qapi/qapi-visit-common.h"
#include "monitor/monitor.h"
#include "system/stats.h"
#include "hw/boards.h"
#include "sel4-internal.h"
#include "trace.h"

#define SEL4_QOM_NAME   "accel"         /* child of /machine */

/* Values the library keeps, after ours in the table. */
enum {
    SEL4_LIB_REQUESTS = SEL4_COUNTERS,  /* sum of the four opcodes */
    SEL4_LIB_BAD_IDS,
    SEL4_LIB_DUP_IDS,
    SEL4_LIB_QUEUE_ERRORS,
    SEL4_LIB_QUEUE_STALLS,
    SEL4_LIB_REQUESTS_PEAK,
    SEL4_LIB_REPLIES_PEAK,
    SEL4_LIB_DEVEVT_PEAK,
    SEL4_VALUES,
};

typedef struct Sel4StatDesc {
    const char *name;
    bool peak;                  /* a high-water mark, not a sum */
    const char *help;
} Sel4StatDesc;

#define ERR(kind, n, h) \
    [SEL4_STAT_ERRORS + SEL4_ERR_##kind] = { "errors-" n, false, h }

static const Sel4StatDesc sel4_stat_desc[SEL4_VALUES] = {
    [SEL4_STAT_REQ_READ] = { "requests-read", false,
                             "MMIO read requests served" },
    [SEL4_STAT_REQ_WRITE] = { "requests-write", false,
                              "MMIO write requests served" },
    [SEL4_STAT_REQ_PUTC_LOG] = { "requests-putc-log", false,
                                 "PUTC_LOG requests (answered, ignored)" },
    [SEL4_STAT_REQ_INVALID] = { "requests-invalid", false,
                                "requests refused by decode (errors-bad-*)" },
    [SEL4_STAT_BATCHES] = { "batches", false,
                            "passes that served requests (one reply "
                            "commit each)" },
    [SEL4_STAT_DOORBELLS_IN] = { "doorbells-in", false,
                                 "wake-ups by the VMM's doorbell" },
    [SEL4_STAT_DOORBELLS_OUT] = { "doorbells-out", false,
                                  "rings of the VMM's doorbell" },
    [SEL4_STAT_EVT_REGISTER] = { "events-register-pci-dev", false,
                                 "REGISTER_PCI_DEV events published" },
    [SEL4_STAT_EVT_START_VM] = { "events-start-vm", false,
                                 "START_VM events published" },
    [SEL4_STAT_EVT_IRQ_SET] = { "events-irq-set", false,
                                "SET_IRQ set (INTx asserted) published" },
    [SEL4_STAT_EVT_IRQ_CLEAR] = { "events-irq-clear", false,
                                  "SET_IRQ clear (INTx deasserted) "
                                  "published" },
    [SEL4_STAT_EVT_IRQ_PULSE] = { "events-irq-pulse", false,
                                  "SET_IRQ pulse (MSI) published" },
    [SEL4_STAT_INTX_CHANGES] = { "intx-changes", false,
                                 "INTx level changes raised by devices" },
    [SEL4_STAT_MSI] = { "msi", false, "MSIs raised by devices" },
    [SEL4_STAT_MSI_MERGED] = { "msi-merged", false,
                               "MSIs merged into a pulse still queued" },
    [SEL4_STAT_EVT_DROPPED] = { "events-dropped", false,
                                "events dropped: the outbox was full" },
    [SEL4_STAT_DEVEVT_FULL] = { "devevt-full", false,
                                "flushes that found devevt full "
                                "(back-pressure)" },
    [SEL4_STAT_OUTBOX_PEAK] = { "outbox-peak", true,
                                "most events waiting in the outbox" },
    [SEL4_STAT_IOEVENTFD] = { "notifies-fast", false,
                              "MMIO writes that matched an ioeventfd: the "
                              "eventfd signalled, no memory dispatch" },
    [SEL4_STAT_NOTIFY_SUPPRESSED] = { "notify-suppressed", false,
                                      "times a queue with requests in "
                                      "flight had guest notifies turned "
                                      "off" },
    [SEL4_STAT_NOTIFY_POLLED] = { "notify-polled", false,
                                  "new requests found in a ring with guest "
                                  "notifies off (the device kicked for "
                                  "them)" },
    [SEL4_STAT_NOTIFY_STALLED] = { "notify-stalled", false,
                                   "guest notifies turned on again because "
                                   "nothing completed for "
                                   "notify-suppress-us" },
    [SEL4_STAT_IRQFD] = { "interrupts-fast", false,
                          "guest-notifier signals taken by the irqfd "
                          "thread and sent as SET_IRQ pulses (no BQL, no "
                          "main loop)" },
    ERR(BAD_OP, "bad-op", "requests with an unknown opcode"),
    ERR(BAD_LEN, "bad-len", "MMIO requests of length not 1, 2, 4 or 8"),
    ERR(BAD_AS, "bad-as", "requests with an impossible address space"),
    ERR(RESERVED, "reserved", "requests with reserved mr0 bits set"),
    ERR(CONFIG_ACCESS, "config-access", "config accesses refused "
        "(unregistered device, beyond config space)"),
    ERR(GLOBAL_ACCESS, "global-access", "AS_GLOBAL accesses that failed "
        "(nothing mapped there)"),
    ERR(REPLY, "reply", "reply queue broken by the VMM (resynchronised "
        "to its marker), or replies it had no room for"),
    ERR(RECV, "recv", "request queue broken or stalled by the VMM "
        "(resynchronised to its marker)"),
    ERR(SEND_EVENTS, "send-events", "event queue broken by the VMM "
        "(resynchronised to its marker, events kept)"),
    ERR(RING, "ring", "failed rings of the VMM's doorbell"),
    ERR(UIO_IRQ, "uio-irq", "failed UIO interrupt acknowledgements"),
    ERR(URING, "uring", "failed io_uring doorbell and irqfd waits"),
    ERR(TOO_MANY_PCIDEV, "too-many-pcidev", "PCI devices beyond the 32 "
        "the protocol numbers (not registered)"),
    ERR(REQ_DROPPED, "req-dropped", "passes that dropped request entries "
        "(id >= 32, a copy of an id still outstanding) or repaired "
        "rewritten markers"),
    ERR(IDLE_DOORBELLS, "idle-doorbells", "doorbell storms: 1024 doorbells "
        "in a row (then each doubling) that found no request"),
    ERR(IOEVENTFD, "ioeventfd", "writes to a matched ioeventfd that "
        "failed"),
    ERR(DEVEVT_STUCK, "devevt-stuck", "devevt full for a second: the VMM "
        "takes no events"),
    ERR(REQ_UNCOMMITTED, "req-uncommitted", "drvrpc_req entries the VMM "
        "reserved and left uncommitted for a second"),
    [SEL4_LIB_REQUESTS] = { "requests", false, "requests served (all "
                            "opcodes)" },
    [SEL4_LIB_BAD_IDS] = { "queue-bad-ids", false,
                           "ring entries naming a message id >= 32, and "
                           "replies to ids not in flight, dropped" },
    [SEL4_LIB_DUP_IDS] = { "queue-dup-ids", false,
                           "copies of a request id still outstanding "
                           "(taken, or its reply not yet taken), dropped" },
    [SEL4_LIB_QUEUE_ERRORS] = { "queue-errors", false,
                                "impossible or rewritten queue markers "
                                "(all queues)" },
    [SEL4_LIB_QUEUE_STALLS] = { "queue-stalls", false,
                                "bounded waits that gave up (all queues)" },
    [SEL4_LIB_REQUESTS_PEAK] = { "requests-peak", true,
                                 "most requests seen pending at once" },
    [SEL4_LIB_REPLIES_PEAK] = { "replies-peak", true,
                                "most replies the VMM had not taken yet" },
    [SEL4_LIB_DEVEVT_PEAK] = { "devevt-peak", true,
                               "most events the VMM had not taken yet" },
};

#define SEL4_BATCH_SIZE_NAME "batch-size"
#define SEL4_BATCH_SIZE_HELP "passes by requests served, log2 buckets: " \
                             "0, 1, 2-3, 4-7, 8-15, 16-31, 32"

static const char *const sel4_error_names[SEL4_ERR__MAX] = {
    [SEL4_ERR_BAD_OP] = "decode: unknown opcode",
    [SEL4_ERR_BAD_LEN] = "decode: bad length",
    [SEL4_ERR_BAD_AS] = "decode: bad address space",
    [SEL4_ERR_RESERVED] = "decode: reserved bits",
    [SEL4_ERR_CONFIG_ACCESS] = "config_access",
    [SEL4_ERR_GLOBAL_ACCESS] = "global_access",
    [SEL4_ERR_REPLY] = "reply",
    [SEL4_ERR_RECV] = "recv",
    [SEL4_ERR_SEND_EVENTS] = "send_events",
    [SEL4_ERR_RING] = "ring",
    [SEL4_ERR_UIO_IRQ] = "uio_irq",
    [SEL4_ERR_URING] = "uring",
    [SEL4_ERR_TOO_MANY_PCIDEV] = "too_many_pcidev",
    [SEL4_ERR_REQ_DROPPED] = "req_dropped",
    [SEL4_ERR_IDLE_DOORBELLS] = "idle_doorbells",
    [SEL4_ERR_DEVEVT_STUCK] = "devevt_stuck",
    [SEL4_ERR_IOEVENTFD] = "ioeventfd",
    [SEL4_ERR_REQ_UNCOMMITTED] = "req_uncommitted",
};

/* ---- counting ---- */

void sel4_error(Sel4State *s, Sel4Error kind, uint64_t a, uint64_t b)
{
    assert(kind < SEL4_ERR__MAX);
    sel4_stat_add(s, SEL4_STAT_ERRORS + kind, 1);
    trace_sel4_error(sel4_error_names[kind], a, b);
}

uint64_t sel4_stat_get(Sel4State *s, Sel4Counter c)
{
    return stat64_get(&s->stats.c[c]);
}

void sel4_stats_request(Sel4State *s, VsoRpcError err, const VsoMmio *m)
{
    QEMU_BUILD_BUG_ON(VSO_RPC_EBADLEN - VSO_RPC_EBADOP !=
                      SEL4_ERR_BAD_LEN - SEL4_ERR_BAD_OP);
    QEMU_BUILD_BUG_ON(VSO_RPC_EBADAS - VSO_RPC_EBADOP !=
                      SEL4_ERR_BAD_AS - SEL4_ERR_BAD_OP);
    QEMU_BUILD_BUG_ON(VSO_RPC_ERESERVED - VSO_RPC_EBADOP !=
                      SEL4_ERR_RESERVED - SEL4_ERR_BAD_OP);

    if (err != VSO_RPC_OK) {
        sel4_stat_add(s, SEL4_STAT_REQ_INVALID, 1);
        return;
    }
    if (m->op == QEMU_OP_PUTC_LOG) {
        sel4_stat_add(s, SEL4_STAT_REQ_PUTC_LOG, 1);
    } else {
        sel4_stat_add(s, m->write ? SEL4_STAT_REQ_WRITE : SEL4_STAT_REQ_READ,
                      1);
    }
}

/* The decode error's kind: the four decode kinds follow VsoRpcError. */
Sel4Error sel4_decode_error(VsoRpcError err)
{
    assert(err >= VSO_RPC_EBADOP && err <= VSO_RPC_ERESERVED);
    return SEL4_ERR_BAD_OP + (err - VSO_RPC_EBADOP);
}

void sel4_stats_batch(Sel4State *s, unsigned n)
{
    unsigned bucket = n ? MIN(32 - clz32(n), SEL4_BATCH_BUCKETS - 1) : 0;

    stat64_add(&s->stats.batch_size[bucket], 1);
    if (n) {
        sel4_stat_add(s, SEL4_STAT_BATCHES, 1);
    }
}

void sel4_stats_events(Sel4State *s, const rpcmsg_t *msgs, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        Sel4Counter c;

        switch (RPC_MR0_GET(msgs[i].mr0, OP)) {
        case QEMU_OP_REGISTER_PCI_DEV:
            c = SEL4_STAT_EVT_REGISTER;
            break;
        case QEMU_OP_START_VM:
            c = SEL4_STAT_EVT_START_VM;
            break;
        default:        /* SET_IRQ: the only other event we send */
            c = msgs[i].mr2 == RPC_IRQ_PULSE ? SEL4_STAT_EVT_IRQ_PULSE :
                msgs[i].mr2 == RPC_IRQ_SET ? SEL4_STAT_EVT_IRQ_SET :
                                             SEL4_STAT_EVT_IRQ_CLEAR;
            break;
        }
        sel4_stat_add(s, c, 1);
    }
}

/* ---- reading ---- */

/* Every value of the table, as of now. */
static void sel4_stats_snapshot(Sel4State *s, uint64_t *v)
{
    const VsoRpc *rpc = &s->rpc;
    const VsoQueue *q[] = { &rpc->req, &rpc->resp, &rpc->evt };
    unsigned i;

    for (i = 0; i < SEL4_COUNTERS; i++) {
        v[i] = stat64_get(&s->stats.c[i]);
    }
    v[SEL4_LIB_REQUESTS] = v[SEL4_STAT_REQ_READ] + v[SEL4_STAT_REQ_WRITE] +
                           v[SEL4_STAT_REQ_PUTC_LOG] +
                           v[SEL4_STAT_REQ_INVALID];
    v[SEL4_LIB_BAD_IDS] = qatomic_read(&rpc->stats.bad_id);
    v[SEL4_LIB_DUP_IDS] = qatomic_read(&rpc->stats.dup_id);
    v[SEL4_LIB_QUEUE_ERRORS] = 0;
    v[SEL4_LIB_QUEUE_STALLS] = 0;
    for (i = 0; i < ARRAY_SIZE(q); i++) {
        v[SEL4_LIB_BAD_IDS] += qatomic_read(&q[i]->stats.bad_ids);
        v[SEL4_LIB_QUEUE_ERRORS] += qatomic_read(&q[i]->stats.errors);
        v[SEL4_LIB_QUEUE_STALLS] += qatomic_read(&q[i]->stats.stalls);
    }
    v[SEL4_LIB_REQUESTS_PEAK] = qatomic_read(&rpc->req.stats.high_water);
    v[SEL4_LIB_REPLIES_PEAK] = qatomic_read(&rpc->resp.stats.high_water);
    v[SEL4_LIB_DEVEVT_PEAK] = qatomic_read(&rpc->evt.stats.high_water);
}

static uint64List *sel4_batch_size_list(Sel4State *s)
{
    uint64List *list = NULL;
    int i;

    for (i = SEL4_BATCH_BUCKETS - 1; i >= 0; i--) {
        QAPI_LIST_PREPEND(list, stat64_get(&s->stats.batch_size[i]));
    }
    return list;
}

void sel4_stats_trace(Sel4State *s)
{
    uint64_t v[SEL4_VALUES];
    uint64_t events = 0, errors = 0;
    unsigned i;

    sel4_stats_snapshot(s, v);
    for (i = SEL4_STAT_EVT_REGISTER; i <= SEL4_STAT_EVT_IRQ_PULSE; i++) {
        events += v[i];
    }
    for (i = 0; i < SEL4_ERR__MAX; i++) {
        errors += v[SEL4_STAT_ERRORS + i];
    }
    trace_sel4_stats(v[SEL4_LIB_REQUESTS], v[SEL4_STAT_BATCHES],
                     v[SEL4_STAT_DOORBELLS_IN], v[SEL4_STAT_DOORBELLS_OUT],
                     events, errors);
    trace_sel4_event_stats(v[SEL4_STAT_MSI_MERGED], v[SEL4_STAT_EVT_DROPPED],
                           v[SEL4_STAT_DEVEVT_FULL]);
}

/* ---- text: HMP `info sel4`, `info accel` ---- */

static void sel4_stats_text(Sel4State *s, GString *buf)
{
    uint64_t v[SEL4_VALUES];
    unsigned i;

    sel4_stats_snapshot(s, v);
    g_string_append_printf(buf, "sel4: transport=%s engine=%s batch=%u "
                           "poll-us=%u devices=%u started=%s\n",
                           s->transport, s->engine ? s->engine : "-",
                           s->batch, s->poll_us,
                           s->n_pcidev, s->started ? "yes" : "no");
    for (i = 0; i < SEL4_VALUES; i++) {
        g_string_append_printf(buf, "  %-24s %" PRIu64 "\n",
                               sel4_stat_desc[i].name, v[i]);
    }
    g_string_append_printf(buf, "  %-24s", SEL4_BATCH_SIZE_NAME);
    for (i = 0; i < SEL4_BATCH_BUCKETS; i++) {
        g_string_append_printf(buf, " %" PRIu64,
                               stat64_get(&s->stats.batch_size[i]));
    }
    g_string_append(buf, "   (0 1 2-3 4-7 8-15 16-31 32)\n");
}

static HumanReadableText *sel4_hmp_info(Error **errp)
{
    g_autoptr(GString) buf = g_string_new("");

    if (!sel4_state) {
        error_setg(errp, "sel4: the accelerator is not attached");
        return NULL;
    }
    sel4_stats_text(sel4_state, buf);
    return human_readable_text_from_str(buf);
}

#if !SEL4_QEMU_10_0 /* 10.0 has no AccelClass::get_stats */
void sel4_accel_get_stats(AccelState *as, GString *buf)
{
    Sel4State *s = SEL4_ACCEL(as);

    if (s->attached) {
        sel4_stats_text(s, buf);
    }
}
#endif

/* ---- QOM ---- */

static void sel4_prop_get_value(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    uint64_t vals[SEL4_VALUES];

    sel4_stats_snapshot(SEL4_ACCEL(obj), vals);
    visit_type_uint64(v, name, &vals[(uintptr_t)opaque], errp);
}

static void sel4_prop_get_batch_size(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    uint64List *list = sel4_batch_size_list(SEL4_ACCEL(obj));

    visit_type_uint64List(v, name, &list, errp);
    qapi_free_uint64List(list);
}

/* "stats": every value in one dict, the histogram as a list. */
static void sel4_prop_get_all(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    Sel4State *s = SEL4_ACCEL(obj);
    uint64_t vals[SEL4_VALUES];
    uint64List *list;
    unsigned i;
    bool ok;

    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
    sel4_stats_snapshot(s, vals);
    for (i = 0; i < SEL4_VALUES; i++) {
        if (!visit_type_uint64(v, sel4_stat_desc[i].name, &vals[i], errp)) {
            visit_end_struct(v, NULL);
            return;
        }
    }
    list = sel4_batch_size_list(s);
    ok = visit_type_uint64List(v, SEL4_BATCH_SIZE_NAME, &list, errp);
    qapi_free_uint64List(list);
    if (ok) {
        visit_check_struct(v, errp);
    }
    visit_end_struct(v, NULL);
}

static void sel4_stats_add_props(Sel4State *s)
{
    Object *obj = OBJECT(s);
    unsigned i;

    for (i = 0; i < SEL4_VALUES; i++) {
        g_autofree char *name = g_strdup_printf("stats-%s",
                                                sel4_stat_desc[i].name);

        object_property_add(obj, name, "uint64", sel4_prop_get_value, NULL,
                            NULL, (void *)(uintptr_t)i);
        object_property_set_description(obj, name, sel4_stat_desc[i].help);
    }
    object_property_add(obj, "stats-" SEL4_BATCH_SIZE_NAME, "uint64List",
                        sel4_prop_get_batch_size, NULL, NULL, NULL);
    object_property_set_description(obj, "stats-" SEL4_BATCH_SIZE_NAME,
                                    SEL4_BATCH_SIZE_HELP);
    object_property_add(obj, "stats", "Sel4Stats", sel4_prop_get_all, NULL,
                        NULL, NULL);
    object_property_set_description(obj, "stats",
                                    "every stats-* value in one dict");
}

/* ---- query-stats ---- */

static Stats *sel4_stats_scalar(const char *name, uint64_t value)
{
    Stats *st = g_new0(Stats, 1);

    st->name = g_strdup(name);
    st->value = g_new0(StatsValue, 1);
    st->value->type = QTYPE_QNUM;
    st->value->u.scalar = value;
    return st;
}

static void sel4_query_stats(StatsResultList **result, StatsTarget target,
                             strList *names, strList *targets, Error **errp)
{
    Sel4State *s = sel4_state;
    g_autofree char *path = NULL;
    StatsList *list = NULL;
    uint64_t v[SEL4_VALUES];
    int i;

    if (target != STATS_TARGET_VM || !s) {
        return;
    }
    if (apply_str_list_filter(SEL4_BATCH_SIZE_NAME, names)) {
        Stats *st = g_new0(Stats, 1);

        st->name = g_strdup(SEL4_BATCH_SIZE_NAME);
        st->value = g_new0(StatsValue, 1);
        st->value->type = QTYPE_QLIST;
        st->value->u.list = sel4_batch_size_list(s);
        QAPI_LIST_PREPEND(list, st);
    }
    sel4_stats_snapshot(s, v);
    for (i = SEL4_VALUES - 1; i >= 0; i--) {
        if (apply_str_list_filter(sel4_stat_desc[i].name, names)) {
            QAPI_LIST_PREPEND(list, sel4_stats_scalar(sel4_stat_desc[i].name,
                                                      v[i]));
        }
    }
    path = object_get_canonical_path(OBJECT(s));
    add_stats_entry(result, STATS_PROVIDER_SEL4, path, list);
}

static StatsSchemaValue *sel4_schema_value(const char *name, StatsType type)
{
    StatsSchemaValue *sv = g_new0(StatsSchemaValue, 1);

    sv->name = g_strdup(name);
    sv->type = type;
    return sv;
}

static void sel4_query_schemas(StatsSchemaList **result, Error **errp)
{
    StatsSchemaValueList *list = NULL;
    int i;

    QAPI_LIST_PREPEND(list, sel4_schema_value(SEL4_BATCH_SIZE_NAME,
                                              STATS_TYPE_LOG2_HISTOGRAM));
    for (i = SEL4_VALUES - 1; i >= 0; i--) {
        QAPI_LIST_PREPEND(list, sel4_schema_value(sel4_stat_desc[i].name,
                              sel4_stat_desc[i].peak ? STATS_TYPE_PEAK :
                                                       STATS_TYPE_CUMULATIVE));
    }
    add_stats_schema(result, STATS_PROVIDER_SEL4, STATS_TARGET_VM, list);
}

void sel4_stats_init(Sel4State *s, MachineState *ms)
{
    Error *err = NULL;

    sel4_stats_add_props(s);
    /* accelerators are not in the QOM tree: put ours where qom-get looks */
    if (!object_property_try_add_child(OBJECT(ms), SEL4_QOM_NAME, OBJECT(s),
                                       &err)) {
        warn_report_err(err);
    }
    add_stats_callbacks(STATS_PROVIDER_SEL4, sel4_query_stats,
                        sel4_query_schemas);
    monitor_register_hmp_info_hrt("sel4", sel4_hmp_info);
}
