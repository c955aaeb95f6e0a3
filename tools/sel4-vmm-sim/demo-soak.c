/*
 * The demo as a soak: its workloads in rounds, faults injected between
 * them, QEMU's resources sampled every second.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A round is the demo's five workloads (virtio-blk 16 MiB written,
 * flushed and read back compared; virtio-net pings and a checksummed TCP
 * echo; virtio-rng; a 64 KiB console echo; 9P reads compared) and the
 * soak's own (4 MiB of stamped blocks at a random offset, verified as
 * fio's verify does; iperf3 for a second; 8 files created, written, read
 * back and removed over 9P), each setting its device up anew as a
 * rebooted guest would, from the same guest RAM and BAR addresses.  They
 * run one after another: the simulated guest is one vCPU.
 *
 * Throughout, the VMM's doorbells fail at random (vmm_sim_set_doorbell_
 * faults(), seeded, the seed printed): a ring of QEMU's doorbell dropped
 * (2 %), duplicated (5 %) or delayed by 2 ms (5 %), a ring of ours left
 * untaken until the next poll (3 %); the VMM rings again when a request
 * waited 20 ms (a doorbell is a hint: that is the repair a VMM owes).
 * After each round one fault more, in turn:
 *
 *   doorbells  2048 extra doorbells with nothing queued (duplicated or
 *              stale doorbells): a storm, errors-idle-doorbells + 1
 *   hostile    8 ring entries with message id 32 and 2 requests with an
 *              unknown opcode: dropped (queue-bad-ids) and answered
 *              all-ones (errors-bad-op)
 *   devevt     the VMM takes no events for the first 300 ms of the next
 *              round (the drivers' interrupts wait): every event QEMU
 *              published still reaches the VMM, none is dropped
 *
 * A sampler thread reads /proc/<qemu>/status and /proc/<qemu>/fd every
 * second; after warm-up nothing may grow (see levels_of()).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "demo-soak.h"
#include "soak-workloads.h"
#include "qmp-client.h"
#include "sel4/rpc.h"
#include "vmm_sim_hostile.h"

#define SOAK_TIMEOUT_MS     20000
#define SOAK_BAD_IDS        8       /* per hostile fault */
#define SOAK_BAD_OPS        2
#define SOAK_DOORBELLS      2048    /* > 1024: a storm QEMU reports */
#define SOAK_HOLD_MS        300

static const VmmSimDoorbellFaults soak_doorbell_faults = {
    .drop_pct = 2, .dup_pct = 5, .delay_pct = 5, .ignore_pct = 3,
    .delay_us = 2000, .resend_ms = 20,
};

typedef struct Sample {
    double t;                   /* seconds since the start */
    uint64_t rss_kb;
    unsigned fds, threads;
} Sample;

typedef struct Sampler {
    pid_t pid;
    gint64 start;
    GMutex lock;
    GArray *samples;            /* of Sample */
    gboolean stop;
} Sampler;

/* QEMU's counters the checks read (qom-get /machine/accel stats-NAME) */
enum {
    C_DOORBELLS_IN, C_IDLE_DOORBELLS, C_BAD_IDS, C_BAD_OP, C_EVT_DROPPED,
    C_EVT_REGISTER, C_EVT_START, C_EVT_SET, C_EVT_CLEAR, C_EVT_PULSE,
    C_COUNT
};
static const char *const counter_names[C_COUNT] = {
    "doorbells-in", "errors-idle-doorbells", "queue-bad-ids",
    "errors-bad-op", "events-dropped", "events-register-pci-dev",
    "events-start-vm", "events-irq-set", "events-irq-clear",
    "events-irq-pulse",
};
typedef struct Counters {
    uint64_t v[C_COUNT];
} Counters;

/* The status line "@key:  N ..." of /proc/<pid>/status. */
static uint64_t status_value(const char *text, const char *key)
{
    const char *p = strstr(text, key);

    return p ? g_ascii_strtoull(p + strlen(key), NULL, 10) : 0;
}

static bool sample_once(pid_t pid, Sample *s)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *fd_dir = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autofree char *text = NULL;
    g_autoptr(GDir) d = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(d = g_dir_open(fd_dir, 0, NULL))) {
        return false;
    }
    s->rss_kb = status_value(text, "\nVmRSS:");
    s->threads = status_value(text, "\nThreads:");
    s->fds = 0;
    while (g_dir_read_name(d)) {
        s->fds++;
    }
    return true;
}

static gpointer sampler_thread(gpointer opaque)
{
    Sampler *sp = opaque;
    Sample s;

    while (!g_atomic_int_get(&sp->stop)) {
        if (sample_once(sp->pid, &s)) {
            s.t = (g_get_monotonic_time() - sp->start) / 1e6;
            g_mutex_lock(&sp->lock);
            g_array_append_val(sp->samples, s);
            g_mutex_unlock(&sp->lock);
        }
        g_usleep(G_USEC_PER_SEC);
    }
    return NULL;
}

static bool read_counters(const char *qmp_path, Counters *c, GError **errp)
{
    g_autoptr(QmpClient) qmp = qmp_client_connect(qmp_path, SOAK_TIMEOUT_MS,
                                                  errp);

    for (unsigned i = 0; qmp && i < C_COUNT; i++) {
        g_autofree char *prop = g_strdup_printf("stats-%s",
                                                counter_names[i]);

        if (!qmp_client_qom_get_u64(qmp, "/machine/accel", prop, &c->v[i],
                                    errp)) {
            return false;
        }
    }
    return qmp != NULL;
}

static uint64_t delta(const Counters *a, const Counters *b, unsigned i)
{
    return b->v[i] - a->v[i];
}

/* ---- faults ---- */

static bool fault_doorbells(DemoGuest *g)
{
    /*
     * QEMU takes the first empty wake after serving for the doorbell of
     * requests it already served: let that one go by alone.
     */
    vmm_sim_ring(g->sim);
    g_usleep(20 * 1000);
    for (unsigned i = 0; i < SOAK_DOORBELLS; i++) {
        vmm_sim_ring(g->sim);
    }
    /* and let it take them before the next round's requests come */
    g_usleep(50 * 1000);
    return true;
}

static bool fault_hostile(DemoGuest *g, GError **errp)
{
    rpcmsg_t bad[SOAK_BAD_OPS], replies[SOAK_BAD_OPS];
    bool ok = true;

    for (unsigned i = 0; i < SOAK_BAD_IDS; i++) {
        ok &= vmm_sim_enqueue_raw_id(g->sim, RPCMSG_BUFFER_SIZE);
    }
    vmm_sim_ring(g->sim);
    for (unsigned i = 0; i < SOAK_BAD_OPS; i++) {
        bad[i] = (rpcmsg_t){ .mr0 = 7 | (16 + i) << RPC_MR0_SLOT_SHIFT };
    }
    return ok && vmm_sim_call_raw(g->sim, bad, SOAK_BAD_OPS, replies, errp) &&
           replies[0].mr2 == UINT64_MAX && replies[1].mr2 == UINT64_MAX;
}

/* The VMM takes no events for a while: the next round's start. */
static bool fault_devevt(DemoGuest *g)
{
    vmm_sim_hold(g->sim, VMM_SIM_HOLD_EVENTS, SOAK_HOLD_MS);
    return true;
}

/* ---- the report ---- */

/*
 * Growth: the medians of the last quarter of the samples against those
 * of the second (the first is warm-up).  Medians, because fds and RSS
 * spike for a second now and then (a workload's files open, the block
 * thread pool's workers) at the same heights throughout; a leak moves
 * the median.  Each has a small allowance.
 */
#define SOAK_FD_SLACK       4
#define SOAK_THREAD_SLACK   4
#define SOAK_RSS_SLACK_PCT  5

typedef struct Levels {
    uint64_t rss;
    unsigned fds, threads;
} Levels;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The median of field @off (a uint64_t or unsigned) over [from, to). */
static uint64_t median_of(GArray *samples, unsigned from, unsigned to,
                          size_t off, bool wide)
{
    g_autofree uint64_t *v = g_new0(uint64_t, MAX(to - from, 1));
    unsigned n = 0;

    for (unsigned i = from; i < to && i < samples->len; i++) {
        const char *s = (const char *)&g_array_index(samples, Sample, i);

        v[n++] = wide ? *(const uint64_t *)(s + off)
                      : *(const unsigned *)(s + off);
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    return n ? v[n / 2] : 0;
}

static void levels_of(GArray *samples, unsigned from, unsigned to,
                      Levels *l)
{
    l->rss = median_of(samples, from, to, offsetof(Sample, rss_kb), true);
    l->fds = median_of(samples, from, to, offsetof(Sample, fds), false);
    l->threads = median_of(samples, from, to, offsetof(Sample, threads),
                           false);
}

static void write_outputs(const char *dir, GArray *samples)
{
    g_autofree char *tsv = g_build_filename(dir, "samples.tsv", NULL);
    g_autofree char *png = g_build_filename(dir, "soak.png", NULL);
    g_autofree char *cmd = NULL;
    GString *s = g_string_new("# seconds\trss_kb\tfds\tthreads\n");

    for (unsigned i = 0; i < samples->len; i++) {
        Sample *x = &g_array_index(samples, Sample, i);

        g_string_append_printf(s, "%.1f\t%" PRIu64 "\t%u\t%u\n", x->t,
                               x->rss_kb, x->fds, x->threads);
    }
    g_mkdir_with_parents(dir, 0755);
    g_file_set_contents(tsv, s->str, s->len, NULL);
    g_string_free(s, TRUE);
    cmd = g_strdup_printf(
        "gnuplot -e \"set terminal png size 900,500; set output '%s'; "
        "set xlabel 'seconds'; set ylabel 'RSS (MiB)'; set y2label "
        "'fds, threads'; set y2tics; set ytics nomirror; set key outside; "
        "plot '%s' using 1:(\\$2/1024) with lines title 'RSS', "
        "'' using 1:3 axes x1y2 with lines title 'open fds', "
        "'' using 1:4 axes x1y2 with lines title 'threads'\" 2>/dev/null",
        png, tsv);
    if (g_find_program_in_path("gnuplot") && system(cmd) == 0) {
        printf("plot: %s\n", png);
    }
    printf("samples: %s\n", tsv);
}

static void print_samples(GArray *samples)
{
    unsigned step = MAX(1, samples->len / 12);

    printf("\n%8s %10s %6s %8s\n", "seconds", "RSS (KiB)", "fds", "threads");
    for (unsigned i = 0; i < samples->len; i += step) {
        Sample *s = &g_array_index(samples, Sample, i);

        printf("%8.1f %10" PRIu64 " %6u %8u\n", s->t, s->rss_kb, s->fds,
               s->threads);
    }
    if (samples->len && (samples->len - 1) % step) {
        Sample *s = &g_array_index(samples, Sample, samples->len - 1);

        printf("%8.1f %10" PRIu64 " %6u %8u\n", s->t, s->rss_kb, s->fds,
               s->threads);
    }
}

/* One check line; returns @ok. */
static bool check(bool ok, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool check(bool ok, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    printf("%-4s %s\n", ok ? "ok" : "FAIL", text);
    return ok;
}

/* ---- the soak ---- */

/* One round of the workloads; false (first failure in *@why). */
static bool round_once(DemoGuest *g, unsigned round, GRand *rand,
                       SoakVerify *v, char **why)
{
    g_autoptr(GPtrArray) rows = g->rows;
    bool ok = true;

    g->rows = g_ptr_array_new();
    demo_blk(g);
    soak_blk_verify(g, rand, ((uint64_t)g_rand_int(rand) << 32) | round, v);
    demo_net(g);
    demo_net_iperf3(g);
    demo_rng(g);
    demo_console(g);
    demo_9p(g);
    soak_9p_churn(g, round);
    for (unsigned i = 0; i < g->rows->len; i++) {
        DemoRow *r = g_ptr_array_index(g->rows, i);

        if (!r->ok && ok) {
            *why = g_strdup_printf("%s: %s: %s", r->device, r->operation,
                                   r->result);
            ok = false;
        }
    }
    demo_rows_free(g->rows);
    g->rows = rows;
    rows = NULL;
    return ok;
}

bool demo_soak(DemoGuest *g, const DemoSoak *soak)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL;
    const GuestAlloc mem = g->mem;
    const uint64_t mmio = g->mmio_next;
    Sampler sp = { .pid = soak->vmm->q.pid };
    VmmSimDoorbellFaults df = soak_doorbell_faults;
    g_autoptr(GRand) rand = NULL;
    SoakVerify verify = { 0 };
    unsigned rounds = 0, failed = 0, faults[3] = { 0 }, fault_failed = 0;
    Counters c0 = { 0 }, c1 = { 0 };
    VmmSimStats st0, st1;
    GThread *t;
    Levels early, late;
    unsigned n;
    bool ok = true, counted;
    gint64 end;

    if (!read_counters(soak->vmm->q.qmp, &c0, &err)) {
        return check(false, "QEMU's counters at the start: %s",
                     err->message);
    }
    df.seed = soak->seed ? soak->seed
                         : (uint32_t)g_random_int_range(1, G_MAXINT32);
    rand = g_rand_new_with_seed(df.seed);
    vmm_sim_get_stats(g->sim, &st0);
    vmm_sim_set_doorbell_faults(g->sim, &df);
    sp.start = g_get_monotonic_time();
    sp.samples = g_array_new(FALSE, FALSE, sizeof(Sample));
    g_mutex_init(&sp.lock);
    t = g_thread_new("sampler", sampler_thread, &sp);
    end = sp.start + (gint64)soak->seconds * G_USEC_PER_SEC;
    printf("soak: %u s of rounds (blk, net, rng, console, 9p), doorbell "
           "faults throughout (seed %u: --soak-seed %u replays them), a "
           "fault after each round\n", soak->seconds, df.seed, df.seed);
    while (g_get_monotonic_time() < end) {
        g_autofree char *round_why = NULL;
        bool fine;

        /* a rebooted guest: the same RAM and BARs, devices set up anew */
        g->mem = mem;
        g->mmio_next = mmio;
        fine = round_once(g, rounds, rand, &verify, &round_why);
        rounds++;
        if (!fine) {
            failed++;
            if (!why) {
                why = g_strdup_printf("round %u: %s", rounds, round_why);
            }
        }
        switch (rounds % 3) {
        case 0:
            fine = fault_doorbells(g);
            break;
        case 1:
            g_clear_error(&err);
            fine = fault_hostile(g, &err);
            break;
        default:
            fine = fault_devevt(g);
            break;
        }
        faults[rounds % 3]++;
        fault_failed += !fine;
    }
    g_atomic_int_set(&sp.stop, TRUE);
    g_thread_join(t);
    vmm_sim_set_doorbell_faults(g->sim, &(VmmSimDoorbellFaults) { 0 });
    /* quiet now: take the last events (the last completions' MSIs) */
    while (vmm_sim_poll(g->sim, 200) > 0) {
        continue;
    }
    vmm_sim_get_stats(g->sim, &st1);
    counted = read_counters(soak->vmm->q.qmp, &c1, &err);

    print_samples(sp.samples);
    if (soak->out_dir) {
        write_outputs(soak->out_dir, sp.samples);
    }
    printf("\n");
    ok &= check(failed == 0, "%u rounds, %u failed%s%s (blk data compared "
                "after each read-back, TCP echo by sha256, 9P reads "
                "compared)", rounds, failed, why ? ": " : "",
                why ? why : "");
    ok &= check(verify.blocks > 0 && verify.bad == 0, "blk verify: %"
                PRIu64 " blocks of 4 KiB written at random offsets and read "
                "back, %" PRIu64 " damaged, zero or stale", verify.blocks,
                verify.bad);
    ok &= check(st1.doorbells_dropped > st0.doorbells_dropped &&
                st1.doorbells_duplicated > st0.doorbells_duplicated &&
                st1.doorbells_delayed > st0.doorbells_delayed &&
                st1.wakes_ignored > st0.wakes_ignored,
                "doorbell faults at random moments (seed %u): %" PRIu64
                " dropped, %" PRIu64 " duplicated, %" PRIu64 " delayed %u "
                "us, %" PRIu64 " of QEMU's wake-ups ignored; %" PRIu64
                " rings again after %u ms without a reply", df.seed,
                st1.doorbells_dropped - st0.doorbells_dropped,
                st1.doorbells_duplicated - st0.doorbells_duplicated,
                st1.doorbells_delayed - st0.doorbells_delayed, df.delay_us,
                st1.wakes_ignored - st0.wakes_ignored,
                st1.doorbells_resent - st0.doorbells_resent, df.resend_ms);
    ok &= check(fault_failed == 0, "faults injected: %u x %u doorbells, "
                "%u x hostile burst (%u ids >= 32, %u bad opcodes), %u x "
                "devevt held %u ms; %u did not go as planned", faults[0],
                SOAK_DOORBELLS, faults[1], SOAK_BAD_IDS, SOAK_BAD_OPS,
                faults[2], SOAK_HOLD_MS, fault_failed);
    ok &= check(st1.timeouts == st0.timeouts &&
                st1.late_replies == st0.late_replies &&
                st1.protocol_errors == st0.protocol_errors &&
                vso_rpc_owned(vmm_sim_rpc(g->sim)) == 0,
                "VMM: %" PRIu64 " requests, no reply lost (%" PRIu64
                " timeouts) or late (%" PRIu64 "), %" PRIu64 " protocol "
                "errors, %u ids still lent", st1.requests - st0.requests,
                st1.timeouts - st0.timeouts,
                st1.late_replies - st0.late_replies,
                st1.protocol_errors - st0.protocol_errors,
                vso_rpc_owned(vmm_sim_rpc(g->sim)));
    if (!counted) {
        ok &= check(false, "QEMU's counters at the end: %s", err->message);
    } else {
        uint64_t published = 0;

        for (unsigned i = C_EVT_REGISTER; i <= C_EVT_PULSE; i++) {
            published += delta(&c0, &c1, i);
        }
        ok &= check(delta(&c0, &c1, C_BAD_IDS) ==
                    (uint64_t)faults[1] * SOAK_BAD_IDS &&
                    delta(&c0, &c1, C_BAD_OP) ==
                    (uint64_t)faults[1] * SOAK_BAD_OPS &&
                    delta(&c0, &c1, C_IDLE_DOORBELLS) >= faults[0] &&
                    delta(&c0, &c1, C_EVT_DROPPED) == 0 &&
                    published == st1.events - st0.events,
                    "QEMU counted them: queue-bad-ids +%" PRIu64
                    ", errors-bad-op +%" PRIu64 ", errors-idle-doorbells +%"
                    PRIu64 " (doorbells-in +%" PRIu64 "); events published "
                    "%" PRIu64 ", taken by the VMM %" PRIu64 ", dropped %"
                    PRIu64, delta(&c0, &c1, C_BAD_IDS),
                    delta(&c0, &c1, C_BAD_OP),
                    delta(&c0, &c1, C_IDLE_DOORBELLS),
                    delta(&c0, &c1, C_DOORBELLS_IN), published,
                    st1.events - st0.events, delta(&c0, &c1, C_EVT_DROPPED));
    }
    n = sp.samples->len;
    levels_of(sp.samples, n / 4, n / 2, &early);
    levels_of(sp.samples, n - n / 4, n, &late);
    ok &= check(n >= 8 && late.fds <= early.fds + SOAK_FD_SLACK &&
                late.threads <= early.threads + SOAK_THREAD_SLACK &&
                late.rss <= early.rss + early.rss * SOAK_RSS_SLACK_PCT / 100,
                "no growth after warm-up: medians of the last quarter of %u "
                "samples against the second: RSS %" PRIu64 " KiB (%" PRIu64
                ", +%u %% allowed), fds %u (%u, +%u), threads %u (%u, +%u)",
                n, late.rss, early.rss, SOAK_RSS_SLACK_PCT, late.fds,
                early.fds, SOAK_FD_SLACK, late.threads, early.threads,
                SOAK_THREAD_SLACK);
    g_array_free(sp.samples, TRUE);
    g_mutex_clear(&sp.lock);
    return ok;
}
