/*
 * rpc-pingpong: the RPC transport between the VMM and the device model,
 * measured mode against mode in one run.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Two processes share a memfd-backed iobuf and two eventfd doorbells, as
 * the simulated VMM and QEMU do.  The parent plays the VMM: it sends
 * <depth> MMIO read requests, rings, and blocks on its doorbell until all
 * replies are in; that is one round trip.  The child plays the device
 * side, in one of these modes:
 *
 *   eventfd_limit  no queue at all: read the doorbell, write the peer's.
 *                  The physical limit of a doorbell round trip.
 *   thread         the seed's shape: blocking read on the doorbell, then
 *                  one message at a time, a lock per message (the BQL),
 *                  reply, ring, for every message.  The VMM rings per
 *                  message too.
 *   epoll          epoll_wait on the doorbell, drain the queue in batches,
 *                  one commit and one ring per batch.
 *   uring          io/uring_doorbell.c: multishot poll, batched drain, one
 *                  ring per pass.  uring_poll adds a busy-poll before
 *                  sleeping.
 *
 * The *_batch<N> variants keep N requests per round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/uring_doorbell.h"
#include "sel4/vso_rpc.h"

typedef enum ServerKind {
    SERVER_EVENTFD,
    SERVER_THREAD,
    SERVER_EPOLL,
    SERVER_URING,
} ServerKind;

typedef struct Mode {
    const char *name;
    ServerKind kind;
    unsigned depth;         /* requests per round trip */
    unsigned poll_us;       /* uring: busy-poll before sleeping */
    UringDoorbellRingMode ring;
} Mode;

static const Mode modes[] = {
    { "eventfd_limit", SERVER_EVENTFD, 1 },
    { "thread", SERVER_THREAD, 1 },
    { "thread_batch32", SERVER_THREAD, 32 },
    { "epoll", SERVER_EPOLL, 1 },
    { "uring", SERVER_URING, 1, 0, UD_RING_WRITE },
    { "uring_sqe_ring", SERVER_URING, 1, 0, UD_RING_SQE },
    { "uring_poll", SERVER_URING, 1, 50, UD_RING_WRITE },
    { "uring_batch8", SERVER_URING, 8, 0, UD_RING_WRITE },
    { "uring_batch32", SERVER_URING, 32, 0, UD_RING_WRITE },
    { "epoll_batch32", SERVER_EPOLL, 32 },
};

typedef struct Result {
    double msgs_per_s;
    double rtt_p50_us, rtt_p99_us;
    double cpu_us_per_msg;
    double doorbells_per_msg;   /* doorbells the VMM rang */
} Result;

/* What both processes share. */
typedef struct Link {
    void *iobuf;
    int to_dev;             /* VMM -> device doorbell */
    int to_vmm;             /* device -> VMM doorbell */
} Link;

static void ring_fd(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one)) {
        perror("rpc-pingpong: doorbell write");
        _exit(1);
    }
}

static uint64_t wait_fd(int fd)
{
    uint64_t v;

    if (read(fd, &v, sizeof(v)) != sizeof(v)) {
        perror("rpc-pingpong: doorbell read");
        _exit(1);
    }
    return v;
}

/* ---- the device side, one function per mode ---- */

typedef struct Server {
    Link *link;
    VsoRpc rpc;
    UringDoorbell *ud;
    pthread_mutex_t bql;
} Server;

/* "Perform" an MMIO read: the transport is what is measured. */
static uint64_t serve_one(const VsoRequest *req)
{
    return req->msg.mr1 ^ UINT64_C(0x5a5a5a5a);
}

/* Drain everything, one commit per batch; true when anything was done. */
static bool serve_batches(Server *s)
{
    VsoRequest reqs[RPCMSG_BUFFER_SIZE];
    VsoReply rep[RPCMSG_BUFFER_SIZE];
    bool any = false;
    int n;

    while ((n = vso_rpc_recv(&s->rpc, reqs, RPCMSG_BUFFER_SIZE)) > 0) {
        for (int i = 0; i < n; i++) {
            rep[i] = (VsoReply){ reqs[i].id, serve_one(&reqs[i]) };
        }
        /* 32 ids at most are in flight, so the reply queue has room. */
        if (vso_rpc_reply(&s->rpc, rep, n) != n) {
            fprintf(stderr, "rpc-pingpong: reply queue refused a batch\n");
            _exit(1);
        }
        any = true;
    }
    if (n < 0) {
        fprintf(stderr, "rpc-pingpong: %s\n", strerror(-n));
        _exit(1);
    }
    return any;
}

static void G_GNUC_NORETURN server_eventfd(Server *s)
{
    for (;;) {
        wait_fd(s->link->to_dev);
        ring_fd(s->link->to_vmm);
    }
}

static void G_GNUC_NORETURN server_thread(Server *s)
{
    VsoRequest req;
    VsoReply rep;

    for (;;) {
        wait_fd(s->link->to_dev);
        while (vso_rpc_recv(&s->rpc, &req, 1) == 1) {
            pthread_mutex_lock(&s->bql);
            rep = (VsoReply){ req.id, serve_one(&req) };
            pthread_mutex_unlock(&s->bql);
            if (vso_rpc_reply(&s->rpc, &rep, 1) != 1) {
                _exit(1);
            }
            ring_fd(s->link->to_vmm);
        }
    }
}

static void G_GNUC_NORETURN server_epoll(Server *s)
{
    struct epoll_event ev = { .events = EPOLLIN };
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->link->to_dev, &ev) < 0) {
        perror("rpc-pingpong: epoll");
        _exit(1);
    }
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) == 1) {
            wait_fd(s->link->to_dev);
            if (serve_batches(s)) {
                ring_fd(s->link->to_vmm);
            }
        }
    }
}

static void on_doorbell(void *opaque, uint64_t count)
{
    Server *s = opaque;

    if (serve_batches(s)) {
        uring_doorbell_ring(s->ud);
    }
}

static bool queue_has_work(void *opaque)
{
    Server *s = opaque;

    return vso_queue_pending(&s->rpc.req) > 0;
}

static void G_GNUC_NORETURN server_uring(Server *s, const Mode *m)
{
    g_autoptr(GError) err = NULL;

    /* The engine drains without blocking: a wake-up may be stale. */
    fcntl(s->link->to_dev, F_SETFL, O_NONBLOCK);
    s->ud = uring_doorbell_new(64, 0, &err);
    if (!s->ud) {
        fprintf(stderr, "rpc-pingpong: %s\n", err->message);
        _exit(1);
    }
    if (uring_doorbell_add(s->ud, s->link->to_dev, UD_KIND_EVENTFD,
                           on_doorbell, s) < 0) {
        _exit(1);
    }
    uring_doorbell_set_peer_fd(s->ud, s->link->to_vmm, m->ring);
    if (m->poll_us) {
        uring_doorbell_set_poll(s->ud, m->poll_us, queue_has_work, s);
    }
    for (;;) {
        if (uring_doorbell_wait(s->ud, -1) < 0) {
            _exit(1);
        }
    }
}

static void G_GNUC_NORETURN run_server(Link *link, const Mode *m)
{
    Server s = { .link = link };

    pthread_mutex_init(&s.bql, NULL);
    if (vso_rpc_init(&s.rpc, link->iobuf, RPC_IOBUF_SIZE, VSO_RPC_DEVICE,
                     RPC_QUEUE_DRVRPC_REQ) < 0) {
        _exit(1);
    }
    switch (m->kind) {
    case SERVER_EVENTFD:
        server_eventfd(&s);
    case SERVER_THREAD:
        server_thread(&s);
    case SERVER_EPOLL:
        server_epoll(&s);
    default:
        server_uring(&s, m);
    }
}

/* ---- the VMM side ---- */

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_us(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

/* One round trip of @depth requests; returns the doorbells rung. */
static unsigned round_trip(Link *link, VsoRpc *drv, const Mode *m,
                           uint64_t seq)
{
    rpcmsg_t msgs[RPCMSG_BUFFER_SIZE];
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    VsoRequest rep[RPCMSG_BUFFER_SIZE];
    unsigned got = 0, rings = 0;

    if (m->kind == SERVER_EVENTFD) {
        ring_fd(link->to_dev);
        wait_fd(link->to_vmm);
        return 1;
    }
    for (unsigned i = 0; i < m->depth; i++) {
        msgs[i] = (rpcmsg_t){
            rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, AS_GLOBAL, i % 16, 4),
            seq + i, 0, 0 };
    }
    if (m->kind == SERVER_THREAD) {
        /* The seed's VMM: each trapped access is its own request + ring. */
        for (unsigned i = 0; i < m->depth; i++) {
            if (vso_rpc_call(drv, &msgs[i], 1, &ids[i]) != 1) {
                fprintf(stderr, "rpc-pingpong: request queue full\n");
                exit(1);
            }
            ring_fd(link->to_dev);
            rings++;
        }
    } else {
        if (vso_rpc_call(drv, msgs, m->depth, ids) != (int)m->depth) {
            fprintf(stderr, "rpc-pingpong: request queue full\n");
            exit(1);
        }
        ring_fd(link->to_dev);
        rings++;
    }
    while (got < m->depth) {
        int n;

        wait_fd(link->to_vmm);
        while ((n = vso_rpc_collect(drv, rep, RPCMSG_BUFFER_SIZE)) > 0) {
            for (int i = 0; i < n; i++) {
                if (rep[i].msg.mr2 != (rep[i].msg.mr1 ^ 0x5a5a5a5a)) {
                    fprintf(stderr, "rpc-pingpong: wrong reply\n");
                    exit(1);
                }
            }
            got += n;
        }
        if (n < 0) {
            fprintf(stderr, "rpc-pingpong: %s\n", strerror(-n));
            exit(1);
        }
    }
    return rings;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* What the rounds of one mode add up to. */
typedef struct Tally {
    double busy_us;             /* wall time of the measured round trips */
    double cpu_us;              /* both processes */
    uint64_t msgs, rings;
    GArray *rtt;                /* of double, one per round trip */
} Tally;

/* One round: a fresh server process, @iterations measured round trips. */
static void run_round(const Mode *m, unsigned iterations, Tally *t)
{
    Link link;
    VsoRpc drv;
    unsigned warmup = iterations / 10 + 100;
    double tw, t0, t1, cpu0, cpu1, child0, child;
    int memfd, status;
    pid_t pid;

    memfd = memfd_create("rpc-pingpong-iobuf", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, RPC_IOBUF_SIZE) < 0) {
        perror("rpc-pingpong: memfd");
        exit(1);
    }
    link.iobuf = mmap(NULL, RPC_IOBUF_SIZE, PROT_READ | PROT_WRITE,
                      MAP_SHARED, memfd, 0);
    link.to_dev = eventfd(0, EFD_CLOEXEC);
    link.to_vmm = eventfd(0, EFD_CLOEXEC);
    if (link.iobuf == MAP_FAILED || link.to_dev < 0 || link.to_vmm < 0) {
        perror("rpc-pingpong: setup");
        exit(1);
    }
    vso_rpc_init(&drv, link.iobuf, RPC_IOBUF_SIZE, VSO_RPC_DRIVER,
                 RPC_QUEUE_DRVRPC_REQ);

    child0 = cpu_us(RUSAGE_CHILDREN);
    pid = fork();
    if (pid == 0) {
        run_server(&link, m);
    }
    tw = now_us();
    for (unsigned i = 0; i < warmup; i++) {
        round_trip(&link, &drv, m, i * 32);
    }
    cpu0 = cpu_us(RUSAGE_SELF);
    t0 = now_us();
    for (unsigned i = 0; i < iterations; i++) {
        double s = now_us(), e;

        t->rings += round_trip(&link, &drv, m, i * 32);
        e = now_us() - s;
        g_array_append_val(t->rtt, e);
    }
    t1 = now_us();
    cpu1 = cpu_us(RUSAGE_SELF);

    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    /*
     * The child's CPU time includes the warm-up: count the share of it
     * that the measured part took of the wall time.
     */
    child = (cpu_us(RUSAGE_CHILDREN) - child0) * (t1 - t0) / (t1 - tw);
    t->cpu_us += (cpu1 - cpu0) + child;
    t->busy_us += t1 - t0;
    t->msgs += (uint64_t)iterations * m->depth;
    munmap(link.iobuf, RPC_IOBUF_SIZE);
    close(memfd);
    close(link.to_dev);
    close(link.to_vmm);
}

static Result tally_result(Tally *t)
{
    Result r;
    double *v = (double *)t->rtt->data;

    qsort(v, t->rtt->len, sizeof(double), cmp_double);
    r.msgs_per_s = t->msgs / (t->busy_us / 1e6);
    r.rtt_p50_us = v[t->rtt->len / 2];
    r.rtt_p99_us = v[(size_t)(t->rtt->len * 0.99)];
    r.cpu_us_per_msg = t->cpu_us / t->msgs;
    r.doorbells_per_msg = (double)t->rings / t->msgs;
    return r;
}

static void write_json(const char *path, const Result *res, const bool *ran,
                       unsigned iterations, unsigned rounds)
{
    g_autoptr(GString) s = g_string_new("{\n");
    struct utsname u;
    FILE *f;
    bool first = true;

    uname(&u);
    g_string_append_printf(s, "  \"machine\": {\"kernel\": \"%s\", "
                           "\"arch\": \"%s\", \"cpus\": %ld},\n"
                           "  \"iterations\": %u,\n  \"rounds\": %u,\n"
                           "  \"modes\": {\n",
                           u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN),
                           iterations, rounds);
    for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
        if (!ran[i]) {
            continue;
        }
        g_string_append_printf(s, "%s    \"%s\": {\"depth\": %u, "
                               "\"msgs_per_s\": %.0f, \"rtt_p50_us\": %.2f, "
                               "\"rtt_p99_us\": %.2f, \"cpu_us_per_msg\": %.3f, "
                               "\"doorbells_per_msg\": %.3f}",
                               first ? "" : ",\n", modes[i].name,
                               modes[i].depth, res[i].msgs_per_s,
                               res[i].rtt_p50_us, res[i].rtt_p99_us,
                               res[i].cpu_us_per_msg,
                               res[i].doorbells_per_msg);
        first = false;
    }
    g_string_append(s, "\n  }\n}\n");
    f = fopen(path, "w");
    if (!f || fputs(s->str, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "rpc-pingpong: cannot write %s: %s\n", path,
                strerror(errno));
        exit(1);
    }
}

static void G_GNUC_NORETURN usage(int code)
{
    FILE *out = code ? stderr : stdout;

    fprintf(out,
            "usage: rpc-pingpong [--quick] [--iterations N] [--json FILE]\n"
            "                    [--modes m1,m2,...]\n"
            "Measures VMM <-> device-model RPC round trips, all modes in one "
            "run,\ntaking turns over 5 rounds.  --iterations: round trips "
            "per mode (default\n100000, --quick 20000).\nModes:");
    for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
        fprintf(out, " %s", modes[i].name);
    }
    fprintf(out, "\n");
    exit(code);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "quick", no_argument, NULL, 'q' },
        { "iterations", required_argument, NULL, 'n' },
        { "json", required_argument, NULL, 'j' },
        { "modes", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    unsigned iterations = 100000;
    const char *json = NULL, *only = NULL;
    Result res[G_N_ELEMENTS(modes)] = { 0 };
    Tally tally[G_N_ELEMENTS(modes)] = { 0 };
    unsigned rounds = 5;
    bool ran[G_N_ELEMENTS(modes)] = { 0 };
    const Result *limit = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "qn:j:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'q':
            iterations = 20000;
            break;
        case 'n': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);

            if (*end || v < 1000 || v > 100000000) {
                fprintf(stderr, "rpc-pingpong: --iterations takes a number "
                        "from 1000 to 100000000, not '%s'\n", optarg);
                exit(2);
            }
            iterations = v;
            break;
        }
        case 'j':
            json = optarg;
            break;
        case 'm':
            only = optarg;
            break;
        case 'h':
            usage(0);
        default:
            usage(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rpc-pingpong: unexpected argument '%s'\n",
                argv[optind]);
        usage(2);
    }
    if (only) {
        g_auto(GStrv) names = g_strsplit(only, ",", -1);

        for (char **n = names; *n; n++) {
            bool found = false;

            for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
                if (!strcmp(*n, modes[i].name)) {
                    ran[i] = found = true;
                }
            }
            if (!found) {
                fprintf(stderr, "rpc-pingpong: unknown mode '%s'\n", *n);
                usage(2);
            }
        }
    } else {
        memset(ran, 1, sizeof(ran));
    }

    /*
     * Modes take turns, round after round, so that drift in the machine's
     * state (other load, idle states, frequency) spreads over all of them.
     */
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
            if (ran[i]) {
                if (!tally[i].rtt) {
                    tally[i].rtt = g_array_new(FALSE, FALSE, sizeof(double));
                }
                run_round(&modes[i], iterations / rounds, &tally[i]);
            }
        }
    }

    printf("%-16s %5s %12s %10s %10s %9s %9s %10s %10s\n", "mode", "depth",
           "msgs/s", "p50 us", "p99 us", "cpu us/m", "rings/m",
           "x limit/s", "x lim p50");
    for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
        if (ran[i]) {
            res[i] = tally_result(&tally[i]);
            g_array_free(tally[i].rtt, TRUE);
            if (modes[i].kind == SERVER_EVENTFD) {
                limit = &res[i];
            }
        }
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++) {
        if (!ran[i]) {
            continue;
        }
        printf("%-16s %5u %12.0f %10.1f %10.1f %9.2f %9.3f", modes[i].name,
               modes[i].depth, res[i].msgs_per_s, res[i].rtt_p50_us,
               res[i].rtt_p99_us, res[i].cpu_us_per_msg,
               res[i].doorbells_per_msg);
        if (limit) {
            printf(" %10.2f %10.2f", res[i].msgs_per_s / limit->msgs_per_s,
                   res[i].rtt_p50_us / limit->rtt_p50_us);
        }
        printf("\n");
    }
    if (json) {
        write_json(json, res, ran, iterations, rounds);
    }
    return 0;
}
