/*
 * End-to-end: a hostile VMM against a real QEMU (-accel sel4).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-hostile-peer QEMU_BINARY LOOP_OPTIONS
 *
 * The simulated VMM in its hostile mode (vmm_sim_hostile.c) sends what no
 * correct VMM sends: unknown opcodes, MMIO lengths 0/3/9/16, bad address
 * spaces and unregistered devices, config offsets beyond config space,
 * guest-physical addresses outside RAM and every BAR (one wrapping past
 * 2^64), ring entries with message ids beyond the 32 messages or never
 * lent, a producer index that jumps by more than the ring or falls behind
 * the consumer, QEMU's own markers rewritten (pushed ahead, and their
 * counts scribbled on from another thread while a batch is in flight),
 * its reply queue's consumer marker moved, a doorbell storm with empty
 * queues, and, in a second QEMU, registrations (and START_VM) that the
 * VMM never takes (REGISTER_PCI_DEV has no reply in the protocol: the
 * VMM acknowledges nothing, devevt stays full).
 *
 * Each case must show: the answer (an error reply, or a counted drop: the
 * sel4_error trace line is the counter's increment), a line of QEMU's
 * -d guest_errors log (-D), QEMU still running, and another device still
 * served (a config read of device 1 answered with its ID).  The table of
 * cases and outcomes is printed at the end.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include "sel4/vmm_sim.h"
#include "vmm_sim_hostile.h"
#include "qemu-harness.h"

#define TIMEOUT_MS      20000
#define LOG_WAIT_MS     5000
#define RNG_ID          UINT64_C(0x10441af4)    /* virtio-rng-pci, modern */
#define RD              RPC_MR0_MMIO_DIRECTION_READ
#define WR              RPC_MR0_MMIO_DIRECTION_WRITE
#define REQ_Q(io)       (&(io)->queues[RPC_QUEUE_DRVRPC_REQ])
#define RESP_Q(io)      (&(io)->queues[RPC_QUEUE_DRVRPC_RESP])

static const char *loop_opts;
static char *tmpdir;

typedef struct Peer {
    const char *name;
    VmmSim *sim;
    pid_t pid;
    char *log;              /* QEMU's stdout and stderr */
    char *dlog;             /* -D: guest_errors and sel4_error traces */
    size_t mark;            /* dlog bytes before the current case */
} Peer;

/* One row of the table. */
typedef struct Row {
    char *name;
    char *answer;
    char *counted;          /* the sel4_error trace line's name, or "-" */
    char *logged;           /* the guest_errors line, shortened */
    bool alive, served, pass;
} Row;

static GPtrArray *rows;

/* ---- QEMU and the hostile VMM ---- */

static bool peer_start(Peer *p, const char *name, unsigned n_devices,
                       bool ignore_events)
{
    g_autofree char *sock = g_strdup_printf("%s/%s.sock", tmpdir, name);
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s,%s", sock, loop_opts);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    VmmSimConfig cfg = { .socket_path = sock, .timeout_ms = 5000 };
    g_autoptr(GError) err = NULL;
    const char *fixed[] = {
        qemu, "-nodefaults", "-display", "none", "-machine", "virt-sel4",
        "-accel", accel, "-d", "guest_errors", "-trace", "sel4_error",
    };
    unsigned i;

    memset(p, 0, sizeof(*p));
    p->name = name;
    p->log = g_strdup_printf("%s/%s.log", tmpdir, name);
    p->dlog = g_strdup_printf("%s/%s-d.log", tmpdir, name);
    for (i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_ptr_array_add(argv, g_strdup(fixed[i]));
    }
    g_ptr_array_add(argv, g_strdup("-D"));
    g_ptr_array_add(argv, g_strdup(p->dlog));
    for (i = 0; i < n_devices; i++) {
        g_ptr_array_add(argv, g_strdup("-device"));
        g_ptr_array_add(argv, g_strdup_printf(
            "virtio-rng-pci,addr=0x%x.%u,multifunction=on", 1 + i / 8, i % 8));
    }
    g_ptr_array_add(argv, NULL);

    p->sim = vmm_sim_new(&cfg, &err);
    if (!p->sim) {
        ok(false, "%s: vmm_sim_new: %s", name, err->message);
        return false;
    }
    vmm_sim_set_ignore_events(p->sim, ignore_events);
    p->pid = spawn_qemu_argv((const char *const *)argv->pdata, p->log);
    if (!vmm_sim_accept(p->sim, TIMEOUT_MS, &err) ||
        (!ignore_events && !vmm_sim_wait_started(p->sim, TIMEOUT_MS))) {
        ok(false, "%s: QEMU attached and started: %s", name,
           err ? err->message : "no START_VM");
        diag_file(p->log);
        return false;
    }
    return true;
}

static void peer_stop(Peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        ok(wait_child(p->pid, TIMEOUT_MS) == 0,
           "%s: QEMU (%s) ended cleanly on SIGTERM after its cases",
           p->name, loop_opts);
        if (n_fail) {
            diag_file(p->log);
        }
        kill_and_reap(p->pid);
    }
    vmm_sim_free(p->sim);
    g_free(p->log);
    g_free(p->dlog);
}

static bool qemu_alive(Peer *p)
{
    int st;

    return waitpid(p->pid, &st, WNOHANG) == 0;
}

/* ---- the -D log ---- */

static char *log_text(Peer *p)
{
    g_autofree char *text = NULL;
    gsize len = 0;

    if (!g_file_get_contents(p->dlog, &text, &len, NULL) || len < p->mark) {
        return g_strdup("");
    }
    return g_strdup(text + p->mark);
}

static void log_mark(Peer *p)
{
    g_autofree char *text = NULL;
    gsize len = 0;

    p->mark = g_file_get_contents(p->dlog, &text, &len, NULL) ? len : 0;
}

/* The line of the log (since the mark) holding @needle, or NULL. */
static char *log_wait(Peer *p, const char *needle)
{
    gint64 end = g_get_monotonic_time() + LOG_WAIT_MS * 1000LL;

    do {
        g_autofree char *text = log_text(p);
        char *at = strstr(text, needle);

        if (at) {
            char *start = at, *stop = strchr(at, '\n');

            while (start > text && start[-1] != '\n') {
                start--;
            }
            return g_strndup(start, stop ? (size_t)(stop - start)
                                         : strlen(start));
        }
        g_usleep(10 * 1000);
    } while (g_get_monotonic_time() < end);
    return NULL;
}

/* ---- one case ---- */

/* Device 1's ID through the normal path: QEMU still serves the others. */
static bool other_device_served(Peer *p)
{
    g_autoptr(GError) err = NULL;
    uint64_t id = 0;

    return vmm_sim_config_read(p->sim, 1, 0, 4, &id, &err) && id == RNG_ID;
}

/* Raw read of device 1's ID, for a VMM that has not seen START_VM. */
static bool other_device_served_raw(Peer *p)
{
    rpcmsg_t req = { .mr0 = rpc_mr0_mmio(RD, 1, 16, 4) }, reply;

    return vmm_sim_call_raw(p->sim, &req, 1, &reply, NULL) &&
           reply.mr2 == RNG_ID;
}

/*
 * Close a case: the guest_errors line holding @logged and the sel4_error
 * trace line of @counted must be there, QEMU alive and serving.
 */
static void finish(Peer *p, const char *name, bool answered,
                   const char *answer, const char *logged,
                   const char *counted, bool raw_check)
{
    g_autofree char *trace = g_strdup_printf("sel4_error %s ", counted);
    g_autofree char *line = log_wait(p, logged);
    g_autofree char *count = log_wait(p, trace);
    Row *r = g_new0(Row, 1);

    r->name = g_strdup(name);
    r->answer = g_strdup(answer);
    r->counted = g_strdup(count ? counted : "MISSING");
    r->logged = line ? g_strndup(strstr(line, "sel4") ? strstr(line, "sel4")
                                                      : line, 70)
                     : g_strdup("MISSING");
    r->alive = qemu_alive(p);
    r->served = r->alive &&
                (raw_check ? other_device_served_raw(p)
                           : other_device_served(p));
    r->pass = answered && line && count && r->alive && r->served;
    ok(r->pass, "%s: %s; counted (%s); logged '%s'; QEMU %s; device 1 %s",
       name, answer, r->counted, r->logged, r->alive ? "alive" : "DEAD",
       r->served ? "served" : "NOT served");
    g_ptr_array_add(rows, r);
}

/* ---- request bodies ---- */

typedef struct BodyCase {
    const char *name;
    uint64_t mr0, mr1, mr2;
    uint64_t reply;         /* mr2 QEMU must answer */
    const char *logged;
    const char *counted;
} BodyCase;

static void test_bodies(Peer *p)
{
    const BodyCase body_cases[] = {
        { "unknown opcode 7", 7 | 5 << RPC_MR0_SLOT_SHIFT, 0, 0,
          UINT64_MAX, "unknown opcode", "decode: unknown opcode" },
        { "opcode 16 (an event) as a request",
          QEMU_OP_SET_IRQ | 5 << RPC_MR0_SLOT_SHIFT, 0, 0,
          UINT64_MAX, "unknown opcode", "decode: unknown opcode" },
        { "MMIO length 0", rpc_mr0_mmio(RD, 0, 6, 0), 0, 0, UINT64_MAX,
          "bad access length", "decode: bad length" },
        { "MMIO length 3", rpc_mr0_mmio(RD, 0, 6, 3), 0, 0, UINT64_MAX,
          "bad access length", "decode: bad length" },
        { "MMIO length 9", rpc_mr0_mmio(RD, 0, 6, 9), 0, 0, UINT64_MAX,
          "bad access length", "decode: bad length" },
        /* LEN is 4 bits wide: 16 spills into reserved bit 25 */
        { "MMIO length 16 (bit 25)",
          rpc_mr0_mmio(RD, 0, 6, 0) | UINT64_C(16) << RPC_MR0_LEN_SHIFT,
          0, 0, UINT64_MAX, "reserved mr0 bits set",
          "decode: reserved bits" },
        { "address space 0x40", rpc_mr0_mmio(RD, 0x40, 7, 4), 0, 0,
          UINT64_MAX, "bad address space",
          "decode: bad address space" },
        { "unregistered device 5", rpc_mr0_mmio(RD, 5, 8, 4), 0, 0,
          UINT64_MAX, "unregistered device 5", "config_access" },
        { "unregistered device 31 (write)", rpc_mr0_mmio(WR, 31, 8, 4),
          0x4, 0x1, 0, "unregistered device 31", "config_access" },
        { "config offset 0x2000", rpc_mr0_mmio(RD, 0, 9, 4), 0x2000, 0,
          UINT64_MAX, "at 0x2000 len 4 beyond", "config_access" },
        { "config 4 bytes at 0xffe (straddles the end)",
          rpc_mr0_mmio(RD, 0, 9, 4), 0xffe, 0, UINT64_MAX,
          "at 0xffe len 4 beyond", "config_access" },
        { "read outside RAM and every window (0x3f000000)",
          rpc_mr0_mmio(RD, AS_GLOBAL, 0, 4), 0x3f000000, 0, UINT64_MAX,
          "read of 4 bytes at 0x3f000000 failed", "global_access" },
        { "write of 8 bytes at guest-physical 0",
          rpc_mr0_mmio(WR, AS_GLOBAL, 1, 8), 0, 0x1234, 0,
          "write of 8 bytes at 0x0 failed", "global_access" },
        { "read in the PCI window, no BAR there (0x10000000)",
          rpc_mr0_mmio(RD, AS_GLOBAL, 0, 4), 0x10000000, 0, UINT64_MAX,
          "read of 4 bytes at 0x10000000 failed", "global_access" },
        { "read of 8 bytes wrapping past 2^64",
          rpc_mr0_mmio(RD, AS_GLOBAL, 2, 8), UINT64_C(0xfffffffffffffffc), 0,
          UINT64_MAX, "read of 8 bytes at 0xfffffffffffffffc failed",
          "global_access" },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(body_cases); i++) {
        const BodyCase *c = &body_cases[i];
        rpcmsg_t req = { c->mr0, c->mr1, c->mr2, 0 }, reply = { 0 };
        g_autofree char *answer = NULL;
        bool answered;

        log_mark(p);
        answered = vmm_sim_call_raw(p->sim, &req, 1, &reply, NULL);
        answer = answered ? g_strdup_printf("reply 0x%" PRIx64 "%s",
                                            reply.mr2,
                                            reply.mr0 == req.mr0 ? ""
                                                : ", mr0 CHANGED")
                          : g_strdup("NO REPLY");
        finish(p, c->name, answered && reply.mr2 == c->reply &&
               reply.mr0 == req.mr0, answer, c->logged, c->counted, false);
    }
}

/* ---- ring entries ---- */

static void test_bad_ids(Peer *p)
{
    static const uint16_t ids[] = { 32, 0xffff };

    for (unsigned i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_autofree char *name = g_strdup_printf(
            "ring entry with message id %u (beyond the 32)", ids[i]);
        bool queued;

        log_mark(p);
        queued = vmm_sim_enqueue_raw_id(p->sim, ids[i]);
        vmm_sim_ring(p->sim);
        finish(p, name, queued, "dropped, no reply",
               "bad entries dropped", "req_dropped", false);
    }
}

/* A message id the VMM never lent: served from whatever its body holds. */
static void test_unlent_id(Peer *p)
{
    rpcmsg_iobuf_t *io = vmm_sim_iobuf(p->sim);
    uint64_t before = vmm_sim_rpc(p->sim)->stats.bad_id;
    const uint16_t id = 30;
    gint64 end;
    bool queued;

    log_mark(p);
    /* a body no request of ours wrote: len 0 */
    io->buffers[RPC_IOBUF_DRVRPC].messages[id] = (rpcmsg_t){ .mr0 = 0 };
    queued = vmm_sim_enqueue_raw_id(p->sim, id);
    vmm_sim_ring(p->sim);
    end = g_get_monotonic_time() + LOG_WAIT_MS * 1000LL;
    while (vmm_sim_rpc(p->sim)->stats.bad_id == before &&
           g_get_monotonic_time() < end) {
        vmm_sim_poll(p->sim, 10);
    }
    finish(p, "message id 30, never lent (body: length 0)",
           queued && vmm_sim_rpc(p->sim)->stats.bad_id == before + 1,
           "error reply (the VMM drops it: not lent)",
           "bad access length", "decode: bad length", false);
}

/* Replies in drvrpc_resp the VMM has not claimed yet. */
static unsigned replies_waiting(Peer *p)
{
    rpcmsg_queue_t *q = RESP_Q(vmm_sim_iobuf(p->sim));

    return __atomic_load_n(&q->prod.head.pos, __ATOMIC_ACQUIRE) -
           __atomic_load_n(&q->cons.tail.pos, __ATOMIC_ACQUIRE);
}

/*
 * The same message id queued twice: in one go (the batching loops take
 * both copies in one pass, the thread one at a time), or again after QEMU
 * answered the first copy in a pass of its own, its reply not yet taken.
 * Either way the id is outstanding when the copy arrives: one reply, the
 * copy dropped and counted.  The VMM looks at drvrpc_resp only once QEMU
 * has logged the drop.
 */
static void test_dup_id(Peer *p, bool later_batch)
{
    rpcmsg_iobuf_t *io = vmm_sim_iobuf(p->sim);
    const uint16_t id = 27;
    g_autofree char *line = NULL, *answer = NULL;
    unsigned waiting = 0;
    bool queued;
    gint64 end;

    log_mark(p);
    io->buffers[RPC_IOBUF_DRVRPC].messages[id] =
        (rpcmsg_t){ .mr0 = rpc_mr0_mmio(RD, 1, 16, 4) };
    queued = vmm_sim_enqueue_raw_id(p->sim, id);
    if (later_batch) {
        vmm_sim_ring(p->sim);
        end = g_get_monotonic_time() + LOG_WAIT_MS * 1000LL;
        while (replies_waiting(p) == 0 && g_get_monotonic_time() < end) {
            g_usleep(1000);
        }
    }
    queued &= vmm_sim_enqueue_raw_id(p->sim, id);
    vmm_sim_ring(p->sim);
    line = log_wait(p, "copies of an id still outstanding");
    if (line) {
        /* the copy's pass is over: what it published is there */
        waiting = replies_waiting(p);
    }
    answer = g_strdup_printf("%u reply, copy dropped", waiting);
    finish(p, later_batch ? "message id 27 again, after its reply, before "
                            "the VMM took it"
                          : "message id 27 queued twice in a row",
           queued && waiting == 1, answer,
           "copies of an id still outstanding", "req_dropped", false);
}

/*
 * The VMM's producer reserves 3 entries (prod.tail) and never commits
 * (prod.head): QEMU cannot see them, its doorbells find nothing.  QEMU
 * says what the markers show and since when; the VMM then rolls back.
 */
static void test_reserved_uncommitted(Peer *p)
{
    rpcmsg_queue_t *q = REQ_Q(vmm_sim_iobuf(p->sim));
    rpcmsg_marker_t head = q->prod.head;
    g_autofree char *line = NULL;

    log_mark(p);
    q->prod.tail.pos += 3;
    q->prod.tail.count += 1;
    vmm_sim_ring(p->sim);
    g_usleep(1100 * 1000);
    for (unsigned i = 0; i < 3; i++) {
        vmm_sim_ring(p->sim);
        g_usleep(10 * 1000);
    }
    line = log_wait(p, "has not committed them");
    q->prod.tail = head;
    finish(p, "VMM producer reserved 3 entries, never committed", true,
           "reported with since-when", "reserved 3 entries",
           "req_uncommitted", false);
}

/* ---- markers ---- */

/* Move the request queue's producer (both its tail and head) by @delta. */
static void test_producer_jump(Peer *p, int32_t delta, const char *name)
{
    rpcmsg_queue_t *q = REQ_Q(vmm_sim_iobuf(p->sim));

    log_mark(p);
    q->prod.tail.pos += delta;
    q->prod.head.pos += delta;
    vmm_sim_ring(p->sim);
    finish(p, name, true, "queue resynchronised to the VMM's producer",
           "drvrpc_req broken", "recv", false);
}

/*
 * QEMU's consumer tail 9 ahead of its head over 9 pending entries: a
 * claim nobody of QEMU's made or will commit (a stall, not a break).
 */
static void test_consumer_stall(Peer *p)
{
    rpcmsg_queue_t *q = REQ_Q(vmm_sim_iobuf(p->sim));
    bool queued = true;

    log_mark(p);
    for (unsigned i = 0; i < 9; i++) {
        queued &= vmm_sim_enqueue_raw_id(p->sim, 20 + i);
    }
    q->cons.tail.pos += 9;
    q->cons.tail.count += 1;
    vmm_sim_ring(p->sim);
    finish(p, "QEMU's consumer tail pushed 9 ahead, never committed", queued,
           "stall detected, resynchronised", "drvrpc_req stalled", "recv",
           false);
}

typedef struct Scribbler {
    rpcmsg_queue_t *q;
    bool stop;
    unsigned writes;
} Scribbler;

/* Rewrite QEMU's consumer counts (not positions) as fast as possible. */
static gpointer scribble(gpointer opaque)
{
    Scribbler *s = opaque;
    uint32_t junk = 0x9e3779b9;

    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        junk = junk * 1664525 + 1013904223;
        __atomic_store_n(&s->q->cons.tail.count, junk, __ATOMIC_RELAXED);
        __atomic_store_n(&s->q->cons.head.count, junk >> 7, __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->writes, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/*
 * The header rewritten while batches are in flight: another thread
 * scribbles on QEMU's consumer counts during 20 rounds of 96 pipelined
 * reads.  Every read must still be answered right.
 */
static void test_header_mid_batch(Peer *p)
{
    enum { ROUNDS = 20, N = 96 };
    Scribbler s = { .q = REQ_Q(vmm_sim_iobuf(p->sim)) };
    VmmSimAccess acc[N];
    g_autofree char *answer = NULL;
    unsigned right = 0, round, i;
    bool done = true;
    GThread *t;

    log_mark(p);
    t = g_thread_new("scribbler", scribble, &s);
    while (!__atomic_load_n(&s.writes, __ATOMIC_RELAXED)) {
        g_usleep(100);
    }
    for (round = 0; round < ROUNDS && done; round++) {
        for (i = 0; i < N; i++) {
            acc[i] = (VmmSimAccess){ .slot = i % 16, .as = AS_PCIDEV(i & 1),
                                     .addr = 0, .len = 4 };
        }
        done = vmm_sim_mmio_batch(p->sim, acc, N, NULL);
        for (i = 0; done && i < N; i++) {
            right += acc[i].data == RNG_ID;
        }
    }
    __atomic_store_n(&s.stop, true, __ATOMIC_RELAXED);
    g_thread_join(t);
    answer = g_strdup_printf("%u of %u reads right, %u rewrites", right,
                             ROUNDS * N, s.writes);
    finish(p, "QEMU's consumer counts rewritten during 20x96 reads",
           done && right == ROUNDS * N, answer, "markers repaired",
           "req_dropped", false);
}

/*
 * Someone rewrites drvrpc_resp's markers: @corrupt does it; QEMU's next
 * reply meets them.  The request goes out as a raw id and the VMM looks
 * at drvrpc_resp only once QEMU has logged @logged (its own consumer
 * would break on the same markers).  The reply must still arrive.
 */
static void reply_case(Peer *p, const char *name,
                       void (*corrupt)(rpcmsg_queue_t *q),
                       const char *logged)
{
    rpcmsg_iobuf_t *io = vmm_sim_iobuf(p->sim);
    uint64_t before = vmm_sim_rpc(p->sim)->stats.bad_id;
    g_autofree char *line = NULL;
    const uint16_t id = 29;
    gint64 end;
    bool queued;

    log_mark(p);
    corrupt(RESP_Q(io));
    io->buffers[RPC_IOBUF_DRVRPC].messages[id] =
        (rpcmsg_t){ .mr0 = rpc_mr0_mmio(RD, 0, 16, 4) };
    queued = vmm_sim_enqueue_raw_id(p->sim, id);
    vmm_sim_ring(p->sim);
    line = log_wait(p, logged);
    end = g_get_monotonic_time() + LOG_WAIT_MS * 1000LL;
    while (line && vmm_sim_rpc(p->sim)->stats.bad_id == before &&
           g_get_monotonic_time() < end) {
        vmm_sim_poll(p->sim, 10);
    }
    finish(p, name, queued && vmm_sim_rpc(p->sim)->stats.bad_id == before + 1,
           "resynchronised; the reply still arrived", logged, "reply",
           false);
}

/* The VMM moves its reply consumer (tail and head) 5 past QEMU's producer. */
static void consumer_plus_5(rpcmsg_queue_t *q)
{
    q->cons.tail.pos += 5;
    q->cons.head.pos += 5;
}

/*
 * A torn update: the VMM's consumer head moves 33 positions in one store
 * (tail with it).  -33 entries pending: said signed, nothing abandoned.
 */
static void consumer_plus_33(rpcmsg_queue_t *q)
{
    q->cons.tail.pos += 33;
    q->cons.head.pos += 33;
}

/* QEMU's own producer tail pushed 9 ahead of its head, no claim open. */
static void producer_tail_plus_9(rpcmsg_queue_t *q)
{
    q->prod.tail.pos += 9;
    q->prod.tail.count += 1;
}

static void test_reply_markers(Peer *p)
{
    reply_case(p, "reply queue's consumer moved 5 past QEMU's producer",
               consumer_plus_5, "drvrpc_resp broken (drvrpc_resp: cons.head");
    reply_case(p, "reply queue's consumer head moved 33 in one store",
               consumer_plus_33, "(the VMM's) is 33 past prod.tail");
    reply_case(p, "QEMU's reply producer tail pushed 9 ahead of its head",
               producer_tail_plus_9, "drvrpc_resp stalled (drvrpc_resp: "
               "prod.tail");
}

/* ---- doorbells ---- */

static void test_doorbell_storm(Peer *p)
{
    log_mark(p);
    for (unsigned i = 0; i < 100000; i++) {
        vmm_sim_ring(p->sim);
    }
    finish(p, "doorbell storm: 100000 rings, empty queues", true,
           "nothing to answer", "found no request",
           "idle_doorbells", false);
}

/* ---- a VMM that takes no events ---- */

static void test_registrations_never_taken(void)
{
    Peer p;
    const VsoRpc *rpc;
    int pending = 0;
    bool full = false;

    if (!peer_start(&p, "deaf", RPC_MAX_PCIDEV, true)) {
        peer_stop(&p);
        return;
    }
    rpc = vmm_sim_rpc(p.sim);
    for (unsigned i = 0; i < 500 && !full; i++) {
        pending = vso_queue_pending((VsoQueue *)&rpc->evt);
        full = pending >= (int)RPCMSG_BUFFER_SIZE;
        g_usleep(10 * 1000);
    }
    finish(&p, "REGISTER_PCI_DEV never taken (devevt full, START_VM waits)",
           full, "back-pressure; requests still served", "devevt full for",
           "devevt_stuck", true);
    vmm_sim_set_ignore_events(p.sim, false);
    ok(vmm_sim_wait_started(p.sim, TIMEOUT_MS),
       "once the VMM takes events: the registrations and START_VM arrive");
    peer_stop(&p);
}

static void print_table(void)
{
    printf("# %-58s | %-44s | %-25s | %-3s | %-5s | %s\n", "case",
           "QEMU's answer", "counted", "ok", "alive", "-d guest_errors");
    for (unsigned i = 0; i < rows->len; i++) {
        Row *r = rows->pdata[i];

        printf("# %-58s | %-44s | %-25s | %-3s | %-5s | %s\n", r->name,
               r->answer, r->counted, r->pass ? "yes" : "NO",
               r->alive && r->served ? "yes" : "NO", r->logged);
    }
}

static void row_free(gpointer data)
{
    Row *r = data;

    g_free(r->name);
    g_free(r->answer);
    g_free(r->counted);
    g_free(r->logged);
    g_free(r);
}

int main(int argc, char **argv)
{
    g_autofree char *cmd = NULL;
    Peer p;

    if (argc < 3 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "usage: test-hostile-peer QEMU_BINARY LOOP_OPTIONS\n");
        return 2;
    }
    qemu = argv[1];
    loop_opts = argv[2];
    signal(SIGPIPE, SIG_IGN);
    printf("# -accel sel4,transport=sim,...,%s\n", loop_opts);
    tmpdir = g_dir_make_tmp("hostile-peer-XXXXXX", NULL);
    g_assert(tmpdir);
    rows = g_ptr_array_new_with_free_func(row_free);

    if (peer_start(&p, "hostile", 2, false)) {
        test_bodies(&p);
        test_bad_ids(&p);
        test_unlent_id(&p);
        test_dup_id(&p, false);
        test_dup_id(&p, true);
        test_reserved_uncommitted(&p);
        test_producer_jump(&p, 40, "producer index jumps by 40 (> 32)");
        test_producer_jump(&p, -2, "producer index falls 2 behind QEMU");
        test_consumer_stall(&p);
        test_header_mid_batch(&p);
        test_reply_markers(&p);
        test_doorbell_storm(&p);
    }
    peer_stop(&p);
    test_registrations_never_taken();

    print_table();
    printf("1..%d\n", n_test);
    /* KEEP=1: leave the logs there */
    cmd = g_strdup_printf(getenv("KEEP") ? "echo '# logs in %s'"
                                         : "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", tmpdir);
    }
    g_ptr_array_free(rows, TRUE);
    return n_fail ? 1 : 0;
}
