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
 * and, instead of that round's, at evenly spaced moments (once in a soak
 * of 30 s or more, once more per 150 s: restarts_planned()):
 *
 *   restart    the VMM hangs up; QEMU must exit by itself (status 1), as
 *              under its systemd unit, and a new VMM and QEMU start as the
 *              demo's did, on the same disk image: blocks written before
 *              read back after, and the next round must be all ok
 *              (demo-soak-restart.c)
 *
 * A sampler thread reads /proc/<qemu>/status and /proc/<qemu>/fd every
 * second, following each new QEMU; after warm-up nothing may grow, judged
 * for each QEMU by its own samples (see levels_of()).  QEMU's counters
 * and the VMM's are taken from each one's start to its end and summed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "demo-soak.h"
#include "demo-soak-restart.h"
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
    unsigned qemu;              /* which QEMU: 1, then 2 after a restart */
} Sample;

typedef struct Sampler {
    GMutex lock;
    pid_t pid;                  /* (lock) 0: none now (a restart) */
    unsigned qemu;              /* (lock) */
    gint64 start;
    GArray *samples;            /* (lock) of Sample */
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

/* A sample each second, at a random moment of it (see levels_of()). */
static gpointer sampler_thread(gpointer opaque)
{
    Sampler *sp = opaque;
    g_autoptr(GRand) rand = g_rand_new();
    Sample s;
    pid_t pid;

    for (gint64 k = 0; !g_atomic_int_get(&sp->stop); k++) {
        gint64 at = sp->start + k * G_USEC_PER_SEC +
                    g_rand_int_range(rand, 0, G_USEC_PER_SEC);
        gint64 now = g_get_monotonic_time();

        if (at > now) {
            g_usleep(at - now);
        }
        g_mutex_lock(&sp->lock);
        pid = sp->pid;
        s.qemu = sp->qemu;
        g_mutex_unlock(&sp->lock);
        if (pid > 0 && sample_once(pid, &s)) {
            s.t = (g_get_monotonic_time() - sp->start) / 1e6;
            g_mutex_lock(&sp->lock);
            /* not if a restart began meanwhile: it may be of a dead one */
            if (sp->pid == pid) {
                g_array_append_val(sp->samples, s);
            }
            g_mutex_unlock(&sp->lock);
        }
    }
    return NULL;
}

/* Follow QEMU @pid (0: none, while the VMM restarts), the @qemu'th. */
static void sampler_follow(Sampler *sp, pid_t pid, unsigned qemu)
{
    g_mutex_lock(&sp->lock);
    sp->pid = pid;
    sp->qemu = qemu;
    g_mutex_unlock(&sp->lock);
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

/*
 * The counters of one QEMU and its VMM start at zero, so each pair is
 * taken from its start (or the soak's) to its end, and summed: at both
 * ends quiet (no doorbell faults, every event taken), so that what QEMU
 * published and what the VMM took are of the same moments.
 */
typedef struct Tally {
    Counters c0, sum;
    VmmSimStats st0, st_sum;
    unsigned lent;              /* ids still lent at the ends */
    GError *err;                /* the first QMP failure */
} Tally;

/* VmmSimStats holds uint64_t counters only */
G_STATIC_ASSERT(sizeof(VmmSimStats) % sizeof(uint64_t) == 0);

static void quiet(VmmSim *sim)
{
    vmm_sim_set_doorbell_faults(sim, &(VmmSimDoorbellFaults) { 0 });
    /* take the last events (the last completions' MSIs) */
    while (vmm_sim_poll(sim, 200) > 0) {
        continue;
    }
}

/* A QEMU's start: quiet (before the doorbell faults are set). */
static void tally_begin(Tally *t, VmmSim *sim, const char *qmp)
{
    g_autoptr(GError) err = NULL;

    quiet(sim);
    vmm_sim_get_stats(sim, &t->st0);
    if (!read_counters(qmp, &t->c0, &err) && !t->err) {
        g_prefix_error(&err, "QEMU's counters at its start: ");
        t->err = g_steal_pointer(&err);
    }
}

/* A QEMU's end (the soak's, or a restart's): quiet first. */
static void tally_end(Tally *t, VmmSim *sim, const char *qmp)
{
    g_autoptr(GError) err = NULL;
    const uint64_t *a = (const uint64_t *)&t->st0, *b;
    uint64_t *sum = (uint64_t *)&t->st_sum;
    VmmSimStats st1;
    Counters c1;

    quiet(sim);
    vmm_sim_get_stats(sim, &st1);
    b = (const uint64_t *)&st1;
    for (unsigned i = 0; i < sizeof(st1) / sizeof(uint64_t); i++) {
        sum[i] += b[i] - a[i];
    }
    t->lent += vso_rpc_owned(vmm_sim_rpc(sim));
    if (!read_counters(qmp, &c1, &err)) {
        if (!t->err) {
            g_prefix_error(&err, "QEMU's counters at its end: ");
            t->err = g_steal_pointer(&err);
        }
        return;
    }
    for (unsigned i = 0; i < C_COUNT; i++) {
        t->sum.v[i] += c1.v[i] - t->c0.v[i];
    }
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

/*
 * Growth, for each QEMU by its own samples (a restarted one starts small
 * again): the medians of the last quarter of them against the upper
 * quartiles of the second (the first is warm-up).  Medians, because fds
 * and RSS spike for a second now and then (a workload's files open, the
 * block thread pool's workers) at the same heights throughout; a leak
 * moves the median.  The upper quartile, because the rounds set their
 * devices up anew: QEMU's fds step between levels within a round (a
 * device's queues' eventfds, 6 or 7 of them), so that a window whose
 * samples fell mostly on one level and one that fell mostly on the other
 * differ by that much without growing.  The sampler takes each second's
 * sample at a random moment of it, so that the samples do not keep one
 * phase of the rounds for a long stretch.  Each has a small allowance.
 */
#define SOAK_FD_SLACK       4
#define SOAK_THREAD_SLACK   4
#define SOAK_RSS_SLACK_PCT  5
#define SOAK_MIN_SAMPLES    8       /* fewer: a QEMU's growth not judged */

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
/* The @q'th quarter quantile (2: the median) of field @off over [from, to) */
static uint64_t quantile_of(GArray *samples, unsigned from, unsigned to,
                            size_t off, bool wide, unsigned q)
{
    g_autofree uint64_t *v = g_new0(uint64_t, MAX(to - from, 1));
    unsigned n = 0;

    for (unsigned i = from; i < to && i < samples->len; i++) {
        const char *s = (const char *)&g_array_index(samples, Sample, i);

        v[n++] = wide ? *(const uint64_t *)(s + off)
                      : *(const unsigned *)(s + off);
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    return n ? v[MIN(n * q / 4, n - 1)] : 0;
}

static void levels_of(GArray *samples, unsigned from, unsigned to,
                      unsigned q, Levels *l)
{
    l->rss = quantile_of(samples, from, to, offsetof(Sample, rss_kb), true,
                         q);
    l->fds = quantile_of(samples, from, to, offsetof(Sample, fds), false, q);
    l->threads = quantile_of(samples, from, to, offsetof(Sample, threads),
                             false, q);
}

/*
 * One check line for each QEMU of the soak (@nqemu) that has enough
 * samples; false when one grew or none could be judged.
 */
static bool check_growth(GArray *samples, unsigned nqemu)
{
    unsigned from = 0, to, judged = 0;
    bool ok = true;

    for (unsigned q = 1; q <= nqemu; q++, from = to) {
        Levels early, late;
        unsigned n;

        for (to = from; to < samples->len &&
             g_array_index(samples, Sample, to).qemu == q; to++) {
            continue;
        }
        n = to - from;
        if (n < SOAK_MIN_SAMPLES) {
            printf("     QEMU %u of %u: %u samples, too few to judge its "
                   "growth\n", q, nqemu, n);
            continue;
        }
        judged++;
        levels_of(samples, from + n / 4, from + n / 2, 3, &early);
        levels_of(samples, to - n / 4, to, 2, &late);
        ok &= check(late.fds <= early.fds + SOAK_FD_SLACK &&
                    late.threads <= early.threads + SOAK_THREAD_SLACK &&
                    late.rss <= early.rss +
                    early.rss * SOAK_RSS_SLACK_PCT / 100,
                    "no growth after warm-up, QEMU %u of %u by its own "
                    "samples: medians of the last quarter of its %u "
                    "against the upper quartiles of the second: RSS %"
                    PRIu64 " KiB (%" PRIu64 ", +%u %% allowed), fds %u "
                    "(%u, +%u), threads %u (%u, "
                    "+%u)", q, nqemu, n, late.rss, early.rss,
                    SOAK_RSS_SLACK_PCT, late.fds, early.fds, SOAK_FD_SLACK,
                    late.threads, early.threads, SOAK_THREAD_SLACK);
    }
    if (!judged) {
        return check(false, "no growth after warm-up: no QEMU had %u "
                     "samples", SOAK_MIN_SAMPLES);
    }
    return ok;
}

static void write_outputs(const char *dir, GArray *samples)
{
    g_autofree char *tsv = g_build_filename(dir, "samples.tsv", NULL);
    g_autofree char *png = g_build_filename(dir, "soak.png", NULL);
    g_autofree char *cmd = NULL;
    GString *s = g_string_new("# seconds\trss_kb\tfds\tthreads\tqemu\n");

    for (unsigned i = 0; i < samples->len; i++) {
        Sample *x = &g_array_index(samples, Sample, i);

        g_string_append_printf(s, "%.1f\t%" PRIu64 "\t%u\t%u\t%u\n", x->t,
                               x->rss_kb, x->fds, x->threads, x->qemu);
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

    printf("\n%8s %10s %6s %8s %5s\n", "seconds", "RSS (KiB)", "fds",
           "threads", "QEMU");
    for (unsigned i = 0; i < samples->len; i += step) {
        Sample *s = &g_array_index(samples, Sample, i);

        printf("%8.1f %10" PRIu64 " %6u %8u %5u\n", s->t, s->rss_kb, s->fds,
               s->threads, s->qemu);
    }
    if (samples->len && (samples->len - 1) % step) {
        Sample *s = &g_array_index(samples, Sample, samples->len - 1);

        printf("%8.1f %10" PRIu64 " %6u %8u %5u\n", s->t, s->rss_kb, s->fds,
               s->threads, s->qemu);
    }
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

/* VMM restarts in a soak of @seconds: once from 30 s, one more per 150 s */
#define SOAK_RESTART_MIN_S      30
#define SOAK_RESTART_EVERY_S    150

static unsigned restarts_planned(unsigned seconds)
{
    return seconds < SOAK_RESTART_MIN_S ? 0 :
           MAX(1, seconds / SOAK_RESTART_EVERY_S);
}

/* What goes on from one QEMU to the next. */
typedef struct SoakRun {
    const DemoSoak *soak;
    Sampler sp;
    Tally tally;
    SoakRestart restart;
    VmmSimDoorbellFaults df;    /* seed: the soak's + the restarts so far */
    uint32_t seed;
    GuestAlloc mem;             /* a rebooted guest's RAM and BARs */
    uint64_t mmio;
} SoakRun;

/* The doorbell faults on the VMM of the current QEMU, from now on. */
static void faults_on(SoakRun *s, VmmSim *sim)
{
    s->df.seed = s->seed + s->restart.done;
    vmm_sim_set_doorbell_faults(sim, &s->df);
}

/*
 * The restart fault: a region written and flushed, this QEMU's counters
 * taken, the VMM hangs up, a new VMM and QEMU, theirs from here on, the
 * region read back.  False: no new QEMU, the soak cannot go on.
 */
static bool fault_restart(SoakRun *s, DemoGuest *g, GRand *rand)
{
    DemoVmm *vmm = s->soak->vmm;

    g->mem = s->mem;
    g->mmio_next = s->mmio;
    soak_restart_write(g, rand, (uint64_t)g_rand_int(rand) << 32 |
                       (0xffff0000u + s->restart.done), &s->restart);
    tally_end(&s->tally, g->sim, vmm->q.qmp);
    sampler_follow(&s->sp, 0, vmm->starts);
    if (!soak_restart_vmm(g, vmm, &s->restart)) {
        return false;
    }
    s->mem = g->mem;
    s->mmio = g->mmio_next;
    tally_begin(&s->tally, g->sim, vmm->q.qmp);
    faults_on(s, g->sim);
    sampler_follow(&s->sp, vmm->q.pid, vmm->starts);
    soak_restart_read(g, &s->restart);
    return true;
}

static bool check_restarts(const SoakRun *s, unsigned planned)
{
    const SoakRestart *r = &s->restart;

    if (!planned) {
        return check(true, "VMM restarts: none in a soak of %u s (from %u "
                     "s)", s->soak->seconds, SOAK_RESTART_MIN_S);
    }
    return check(r->done == planned && r->exited == r->done &&
                 r->started == r->done && r->next_ok == r->done &&
                 r->blocks == (uint64_t)r->done * SOAK_RESTART_BLOCKS &&
                 r->intact == r->blocks && !r->why,
                 "VMM restarts: %u of %u, QEMU exited on each (status 1 on "
                 "%u, at most %.0f ms after the hang-up), a new QEMU "
                 "attached and served every device (all %u registered on "
                 "%u, the round after all ok on %u); data written before "
                 "each restart read back after it (%" PRIu64 " of %" PRIu64
                 " blocks of 4 KiB intact)%s%s", r->done, planned, r->exited,
                 r->exit_ms_max, DEMO_DEV_9P + 1, r->started, r->next_ok,
                 r->intact, r->blocks, r->why ? ": " : "",
                 r->why ? r->why : "");
}

bool demo_soak(DemoGuest *g, const DemoSoak *soak)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL;
    g_autofree char *last = g_strdup("");
    SoakRun s = {
        .soak = soak, .df = soak_doorbell_faults,
        .mem = g->mem, .mmio = g->mmio_next,
    };
    const unsigned planned = restarts_planned(soak->seconds);
    const Counters *c = &s.tally.sum;
    const VmmSimStats *st = &s.tally.st_sum;
    g_autoptr(GRand) rand = NULL;
    SoakVerify verify = { 0 };
    unsigned rounds = 0, failed = 0, faults[3] = { 0 }, fault_failed = 0;
    unsigned rounds_before = 0;     /* the last restart */
    bool ok = true, after_restart = false, broken = false;
    uint64_t published = 0;
    GThread *t;
    gint64 end;

    s.seed = soak->seed ? soak->seed
                        : (uint32_t)g_random_int_range(1, G_MAXINT32);
    rand = g_rand_new_with_seed(s.seed);
    tally_begin(&s.tally, g->sim, soak->vmm->q.qmp);
    if (s.tally.err) {
        ok = check(false, "%s", s.tally.err->message);
        g_clear_error(&s.tally.err);
        return ok;
    }
    faults_on(&s, g->sim);
    s.sp.start = g_get_monotonic_time();
    s.sp.samples = g_array_new(FALSE, FALSE, sizeof(Sample));
    g_mutex_init(&s.sp.lock);
    sampler_follow(&s.sp, soak->vmm->q.pid, soak->vmm->starts);
    t = g_thread_new("sampler", sampler_thread, &s.sp);
    end = s.sp.start + (gint64)soak->seconds * G_USEC_PER_SEC;
    printf("soak: %u s of rounds (blk, net, rng, console, 9p), doorbell "
           "faults throughout (seed %u: --soak-seed %u replays them), a "
           "fault after each round, %u VMM restart%s\n", soak->seconds,
           s.seed, s.seed, planned, planned == 1 ? "" : "s");
    while (g_get_monotonic_time() < end) {
        g_autofree char *round_why = NULL;
        unsigned next = s.restart.done + 1;
        bool fine;

        /* a rebooted guest: the same RAM and BARs, devices set up anew */
        g->mem = s.mem;
        g->mmio_next = s.mmio;
        fine = round_once(g, rounds, rand, &verify, &round_why);
        rounds++;
        if (!fine) {
            failed++;
            if (!why) {
                why = g_strdup_printf("round %u: %s", rounds, round_why);
            }
        }
        if (after_restart) {
            soak_restart_next_round(&s.restart, fine, round_why);
            after_restart = false;
        }
        if (next <= planned && g_get_monotonic_time() >= s.sp.start +
            (gint64)soak->seconds * next / (planned + 1) * G_USEC_PER_SEC) {
            if (!fault_restart(&s, g, rand)) {
                broken = true;
                break;
            }
            after_restart = true;
            rounds_before = rounds;
            continue;
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
    g_atomic_int_set(&s.sp.stop, TRUE);
    g_thread_join(t);
    if (!broken) {
        tally_end(&s.tally, g->sim, soak->vmm->q.qmp);
    }

    if (s.restart.done) {
        g_free(last);
        last = g_strdup_printf(" (%u on the last QEMU)",
                               rounds - rounds_before);
    }
    print_samples(s.sp.samples);
    if (soak->out_dir) {
        write_outputs(soak->out_dir, s.sp.samples);
    }
    printf("\n");
    ok &= check(failed == 0 && !broken, "%u rounds%s, %u failed%s%s (blk "
                "data compared after each read-back, TCP echo by sha256, 9P "
                "reads compared)%s", rounds, last, failed, why ? ": " : "",
                why ? why : "",
                broken ? "; stopped: no new QEMU after a restart" : "");
    ok &= check(verify.blocks > 0 && verify.bad == 0, "blk verify: %"
                PRIu64 " blocks of 4 KiB written at random offsets and read "
                "back, %" PRIu64 " damaged, zero or stale", verify.blocks,
                verify.bad);
    ok &= check(st->doorbells_dropped && st->doorbells_duplicated &&
                st->doorbells_delayed && st->wakes_ignored,
                "doorbell faults at random moments (seed %u%s): %" PRIu64
                " dropped, %" PRIu64 " duplicated, %" PRIu64 " delayed %u "
                "us, %" PRIu64 " of QEMU's wake-ups ignored; %" PRIu64
                " rings again after %u ms without a reply", s.seed,
                planned ? ", one more after each restart" : "",
                st->doorbells_dropped,
                st->doorbells_duplicated, st->doorbells_delayed,
                s.df.delay_us, st->wakes_ignored, st->doorbells_resent,
                s.df.resend_ms);
    ok &= check(fault_failed == 0, "faults injected: %u x %u doorbells, "
                "%u x hostile burst (%u ids >= 32, %u bad opcodes), %u x "
                "devevt held %u ms; %u did not go as planned", faults[0],
                SOAK_DOORBELLS, faults[1], SOAK_BAD_IDS, SOAK_BAD_OPS,
                faults[2], SOAK_HOLD_MS, fault_failed);
    ok &= check_restarts(&s, planned);
    ok &= check(st->timeouts == 0 && st->late_replies == 0 &&
                st->protocol_errors == 0 && s.tally.lent == 0,
                "VMM%s: %" PRIu64 " requests, no reply lost (%" PRIu64
                " timeouts) or late (%" PRIu64 "), %" PRIu64 " protocol "
                "errors, %u ids still lent", soak->vmm->starts > 1 ?
                "s, summed" : "", st->requests, st->timeouts,
                st->late_replies, st->protocol_errors, s.tally.lent);
    for (unsigned i = C_EVT_REGISTER; i <= C_EVT_PULSE; i++) {
        published += c->v[i];
    }
    if (s.tally.err) {
        ok &= check(false, "%s", s.tally.err->message);
    } else {
        ok &= check(c->v[C_BAD_IDS] == (uint64_t)faults[1] * SOAK_BAD_IDS &&
                    c->v[C_BAD_OP] == (uint64_t)faults[1] * SOAK_BAD_OPS &&
                    c->v[C_IDLE_DOORBELLS] >= faults[0] &&
                    c->v[C_EVT_DROPPED] == 0 && published == st->events,
                    "QEMU counted them%s: queue-bad-ids +%" PRIu64
                    ", errors-bad-op +%" PRIu64 ", errors-idle-doorbells +%"
                    PRIu64 " (doorbells-in +%" PRIu64 "); events published "
                    "%" PRIu64 ", taken by the VMM %" PRIu64 ", dropped %"
                    PRIu64, soak->vmm->starts > 1 ?
                    " (each QEMU's, summed)" : "", c->v[C_BAD_IDS],
                    c->v[C_BAD_OP], c->v[C_IDLE_DOORBELLS],
                    c->v[C_DOORBELLS_IN], published, st->events,
                    c->v[C_EVT_DROPPED]);
    }
    ok &= check_growth(s.sp.samples, soak->vmm->starts);
    g_array_free(s.sp.samples, TRUE);
    g_mutex_clear(&s.sp.lock);
    g_clear_error(&s.tally.err);
    soak_restart_free(&s.restart);
    return ok;
}
