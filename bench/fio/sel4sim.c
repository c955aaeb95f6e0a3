/*
 * sel4sim: a fio ioengine that does its I/O through the simulated seL4
 * guest's virtio-blk driver, served by QEMU's sel4 accelerator.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   fio --ioengine=external:sel4sim.so --sel4_qemu=PATH
 *       --filename=BACKING --sel4_loop=thread|thread-batch|aio|uring [--sel4_poll_us=N]
 *       [--sel4_accel=MORE_ACCEL_OPTIONS]
 *       [--sel4_cache=writeback|none|...] [--sel4_aio=threads|native|io_uring]
 *       [--sel4_drive=file|null-co] [--sel4_doorbell_ns=N]
 *       [--sel4_vhost_user=QEMU_STORAGE_DAEMON
 *        [--sel4_vhost_notify_suppress_us=N]] [--sel4_stats=FILE] ...
 *
 * The job's file is QEMU's raw drive (sel4_drive=file), or only gives its
 * size to a null-co drive that reads zeroes and drops writes
 * (sel4_drive=null-co: the device path without the host's storage).
 * sel4_doorbell_ns charges the VMM each doorbell it rings or takes
 * (VmmSimConfig.doorbell_ns: what a doorbell may cost on seL4).  At init (in the job's process: fio
 * forks jobs) the engine becomes the seL4 VMM: it starts QEMU with
 * -accel sel4,transport=sim and one virtio-blk-pci, and brings the device
 * up through the guest driver.  fio's buffers are allocated in guest RAM
 * (iomem_alloc), so requests are zero-copy:
 *
 *   queue      one request on the virtqueue (no notification yet)
 *   commit     one notify (an MMIO write through the VMM) for the batch,
 *              skipped when the device said it needs none (EVENT_IDX)
 *   getevents  reap the used ring; sleep on the queue's MSI (a SET_IRQ
 *              event from QEMU, the VMM's doorbell) when it is empty
 *   event      the io_u of a reaped request
 *
 * With sel4_vhost_user, the device is vhost-user-blk-pci instead, served
 * by that qemu-storage-daemon on the same file (sel4_cache and sel4_aio
 * apply to its file node): the guest's kicks go through the accelerator's
 * ioeventfd fast path to the daemon, which reads the requests from guest
 * RAM (the transport's fd) itself; QEMU serves the device's configuration
 * and its interrupts only.  The export holds the guest's notifies off
 * while it has requests in flight (sel4_vhost_notify_suppress_us, default
 * 200; 0: the export as upstream has it).
 *
 * With sel4_stats, cleanup appends one JSON line: I/Os, QEMU's CPU time
 * from the first I/O to the end, the VMM's doorbells and MMIO requests
 * per I/O in that span (and the daemon's CPU time), and the accelerator's own counters over the same
 * span (requests, passes and their batch-size histogram, doorbells,
 * events; qom-get /machine/accel stats on QEMU's QMP socket).
 *
 * numjobs=N (up to 4, with --thread) shares one QEMU and one device with
 * num-queues=N: job n is request queue n, so requests of several queues
 * can meet in one of the accelerator's batches.  Job n is vCPU n: its
 * notifies come from waiter slot n, sent and then waited for like its
 * completions, so several can be in flight.  The jobs share the VMM under
 * a lock; the one that sleeps on the doorbell takes the events for all
 * (only it polls the VMM) and wakes the others; the last one out writes
 * the one stats line.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fio.h"
#include "optgroup.h"

#include "qemu-launch.h"
#include "storage-daemon.h"
#include "virtio-blk.h"

#define SEL4SIM_TIMEOUT_MS  20000
/* a completion that takes longer means the device is stuck */
#define SEL4SIM_IO_TIMEOUT_MS 30000
#define SEL4SIM_SPI_BASE    VMM_SIM_DEFAULT_MSI_SPI_BASE

struct sel4sim_options {
    void *pad;                  /* fio: an option's off1 may not be 0 */
    char *qemu;
    char *loop;
    unsigned int poll_us;
    char *accel;
    char *cache;
    char *aio;
    char *drive;
    unsigned int doorbell_ns;
    unsigned int queue_size;
    char *blk_opts;
    unsigned int iothread;
    char *vhost_user;
    unsigned int vhost_suppress_us;
    char *stats;
};

static struct fio_option options[] = {
    {
        .name = "sel4_qemu",
        .lname = "qemu-system-aarch64 with the sel4 accelerator",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, qemu),
        .help = "path of qemu-system-aarch64 built by qemu/build.sh",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_loop",
        .lname = "the accelerator's loop",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, loop),
        .def = "uring",
        .help = "thread, thread-batch, aio or uring",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_poll_us",
        .lname = "the accelerator's poll-us",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct sel4sim_options, poll_us),
        .def = "0",
        .help = "look for more requests this long before sleeping",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_accel",
        .lname = "more -accel sel4 options",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, accel),
        .help = "appended to -accel sel4 (e.g. notify-suppress-us=0,"
                "ioeventfd=off)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_cache",
        .lname = "QEMU drive cache mode",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, cache),
        .def = "writeback",
        .help = "-drive cache=: writeback, none, unsafe, directsync",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_aio",
        .lname = "QEMU drive aio mode",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, aio),
        .def = "io_uring",
        .help = "-drive aio=: threads, native (needs cache=none) or io_uring",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_drive",
        .lname = "QEMU drive kind",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, drive),
        .def = "file",
        .help = "file (the job's file, raw) or null-co (reads zeroes, "
                "drops writes: the device path alone)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_doorbell_ns",
        .lname = "the VMM's cost per doorbell",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct sel4sim_options, doorbell_ns),
        .def = "0",
        .maxval = 1000000,
        .help = "busy-wait this many ns in the VMM for each doorbell it "
                "rings or takes (what a doorbell costs on seL4)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_queue_size",
        .lname = "virtqueue entries",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct sel4sim_options, queue_size),
        .def = "128",
        .minval = 2,
        .maxval = 256,
        .help = "entries of the virtio-blk queue (a power of 2)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_blk_opts",
        .lname = "more virtio-blk-pci properties",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, blk_opts),
        .help = "appended to -device virtio-blk-pci (e.g. ioeventfd=off)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_iothread",
        .lname = "virtio-blk in an iothread",
        .type = FIO_OPT_BOOL,
        .off1 = offsetof(struct sel4sim_options, iothread),
        .def = "0",
        .help = "serve the device's queues in an iothread instead of the "
                "main loop",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_vhost_user",
        .lname = "vhost-user-blk-pci served by qemu-storage-daemon",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, vhost_user),
        .help = "path of qemu-storage-daemon: it serves the file as a "
                "vhost-user-blk export, QEMU has vhost-user-blk-pci on it",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_vhost_notify_suppress_us",
        .lname = "the vhost-user-blk export's notify-suppress-us",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct sel4sim_options, vhost_suppress_us),
        .def = "200",
        .help = "with sel4_vhost_user: the guest's notifies off while the "
                "export has requests in flight, back on when nothing "
                "completed for this long (0: never off)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "sel4_stats",
        .lname = "where to append this job's path counters",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct sel4sim_options, stats),
        .help = "a file; one JSON line per job is appended",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = NULL,
    },
};

typedef struct Sel4Sim {
    GMutex lock;                /* the VmmSim is used by one job at a time */
    GCond changed;              /* events taken: used rings may have more */
    bool fd_waiter;             /* a job sleeps on the doorbell fd */
    unsigned users;             /* jobs on this device */
    VmmSim *sim;
    VmmSimQemu qemu;
    GuestAlloc mem;
    VirtioBlk blk;
    bool blk_up;
    char *dir;                  /* the VMM's and QMP's sockets */
    char *qmp_path;
    VmmSimQsd qsd;              /* with sel4_vhost_user */
    char *vhost_sock;
    /* the measured span: from the first queue to cleanup */
    bool measuring;
    int64_t qemu_cpu0;
    int64_t qsd_cpu0;
    VmmSimStats st0;
    VmmSimAccelStats acc0;
    uint64_t irqs0;
    uint64_t ios, commits;
    bool stats;                 /* sel4_stats given: counters wanted */
} Sel4Sim;

/* One fio job: request queue @q of the shared device. */
typedef struct Sel4SimJob {
    Sel4Sim *s;
    unsigned q;
    struct io_u **events;       /* reaped by getevents, handed by event */
    unsigned queued;            /* since the last commit */
    unsigned in_flight, max_in_flight;
    uint64_t ios, commits;
} Sel4SimJob;

/* The devices of this fio process by job name: numjobs share one. */
static GMutex sel4sim_devices_lock;
static GCond sel4sim_devices_added;
static GHashTable *sel4sim_devices;

static const char *const sel4_loops[] = {
    "thread", "thread-batch", "aio", "uring",
};

static bool sel4sim_check_options(struct sel4sim_options *o)
{
    bool loop_ok = false;

    for (unsigned i = 0; i < G_N_ELEMENTS(sel4_loops); i++) {
        loop_ok |= o->loop && !strcmp(o->loop, sel4_loops[i]);
    }
    if (!o->qemu || access(o->qemu, X_OK) != 0) {
        log_err("sel4sim: sel4_qemu=PATH (an executable "
                "qemu-system-aarch64) is required\n");
        return false;
    }
    if (!loop_ok) {
        log_err("sel4sim: sel4_loop must be thread, thread-batch, aio or "
                "uring, not '%s'\n", o->loop ? o->loop : "");
        return false;
    }
    if (strcmp(o->drive, "file") && strcmp(o->drive, "null-co")) {
        log_err("sel4sim: sel4_drive must be file or null-co, not '%s'\n",
                o->drive);
        return false;
    }
    if (o->vhost_user && access(o->vhost_user, X_OK) != 0) {
        log_err("sel4sim: sel4_vhost_user=%s is not an executable "
                "qemu-storage-daemon\n", o->vhost_user);
        return false;
    }
    if (o->queue_size & (o->queue_size - 1)) {
        log_err("sel4sim: sel4_queue_size=%u is not a power of 2\n",
                o->queue_size);
        return false;
    }
    return true;
}

/*
 * qemu-storage-daemon serving @file (QEMU's option syntax) as a
 * vhost-user-blk export; sel4_cache and sel4_aio as -drive would have
 * them on its file node.
 */
static bool sel4sim_start_daemon(Sel4Sim *s, struct sel4sim_options *o,
                                 const char *file, GError **errp)
{
    bool direct = !strcmp(o->cache, "none") ||
                  !strcmp(o->cache, "directsync");
    g_autofree char *blockdev = g_strdup_printf(
        "driver=file,filename=%s,aio=%s,cache.direct=%s,cache.no-flush=%s",
        file, o->aio, direct ? "on" : "off",
        !strcmp(o->cache, "unsafe") ? "on" : "off");
    g_autofree char *export_opts = g_strdup_printf(",notify-suppress-us=%u",
                                                   o->vhost_suppress_us);

    s->vhost_sock = g_build_filename(s->dir, "vhost-blk.sock", NULL);
    s->qsd = (VmmSimQsd) {
        .bin = o->vhost_user, .blockdev = blockdev, .sock = s->vhost_sock,
        .export_opts = export_opts,
    };
    return vmm_sim_qsd_start(&s->qsd, SEL4SIM_TIMEOUT_MS, errp);
}

static bool sel4sim_start(struct thread_data *td, Sel4Sim *s,
                          struct sel4sim_options *o, GError **errp)
{
    g_autofree char *sock = g_build_filename(s->dir, "vmm.sock", NULL);
    g_autofree char *accel = g_strdup_printf("loop=%s,poll-us=%u%s%s",
                                             o->loop, o->poll_us,
                                             o->accel && *o->accel ? ","
                                                                   : "",
                                             o->accel ? o->accel : "");
    g_autofree char *drive = NULL;
    VmmSimConfig cfg = {
        .socket_path = sock, .doorbell_ns = o->doorbell_ns,
    };
    const VmmSimConfig *c;
    uint64_t mmio_next;
    g_autofree char *device = NULL;
    const char *args[] = {
        "-drive", NULL, "-device", NULL,
        /* without sel4_iothread the list ends here */
        o->iothread ? "-object" : NULL, "iothread,id=io0",
        NULL,
    };

    /* a ',' in a path is ',,' to QEMU's option parser */
    g_auto(GStrv) parts = g_strsplit(td->files[0]->file_name, ",", -1);
    g_autofree char *file = g_strjoinv(",,", parts);

    if (o->vhost_user) {
        /* the daemon's export: one queue, a file */
        if (td->o.numjobs > 1 || strcmp(o->drive, "file")) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                        "sel4_vhost_user serves one job's file: not with "
                        "numjobs=%u or sel4_drive=%s", td->o.numjobs,
                        o->drive);
            return false;
        }
        if (!sel4sim_start_daemon(s, o, file, errp)) {
            return false;
        }
        drive = g_strdup_printf("socket,id=vu0,path=%s", s->vhost_sock);
        args[0] = "-chardev";
        device = g_strdup_printf("vhost-user-blk-pci,chardev=vu0,"
                                 "num-queues=1%s%s", o->blk_opts ? "," : "",
                                 o->blk_opts ? o->blk_opts : "");
    } else {
        if (!strcmp(o->drive, "null-co")) {
            /* the job's size; cache= and aio= are the file's, ignored */
            drive = g_strdup_printf("if=none,id=d0,driver=null-co,"
                                    "read-zeroes=on,size=%" PRIu64,
                                    (uint64_t)(td->files[0]->real_file_size ?:
                                               td->o.size));
        } else {
            drive = g_strdup_printf("if=none,id=d0,format=raw,file=%s,"
                                    "cache=%s,aio=%s", file, o->cache,
                                    o->aio);
        }
        device = g_strdup_printf("virtio-blk-pci,drive=d0,num-queues=%u%s%s%s",
                                 td->o.numjobs,
                                 o->iothread ? ",iothread=io0" : "",
                                 o->blk_opts ? "," : "",
                                 o->blk_opts ? o->blk_opts : "");
    }
    args[1] = drive;
    args[3] = device;
    s->qmp_path = g_build_filename(s->dir, "qmp.sock", NULL);
    s->stats = o->stats != NULL;

    s->sim = vmm_sim_new(&cfg, errp);
    if (!s->sim) {
        return false;
    }
    s->qemu = (VmmSimQemu) {
        .qemu = o->qemu, .accel_opts = accel, .args = args,
        .qmp = s->qmp_path,
    };
    if (!vmm_sim_qemu_start(&s->qemu, s->sim, SEL4SIM_TIMEOUT_MS, errp)) {
        return false;
    }
    c = vmm_sim_config(s->sim);
    mmio_next = c->pci_mmio_base;
    /* the driver's rings, headers and fio's buffers: upper half of RAM */
    guest_alloc_init(&s->mem, s->sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    if (!virtio_blk_init_mq(&s->blk, s->sim, &s->mem, 0, &mmio_next,
                            SEL4SIM_SPI_BASE, true, o->queue_size,
                            td->o.numjobs, errp)) {
        return false;
    }
    s->blk_up = true;
    return true;
}

static void sel4sim_cleanup(struct thread_data *td);
static void sel4sim_put(struct thread_data *td, Sel4Sim *s);

/*
 * The device of @td's job and its numjobs, started by the job itself:
 * fio's clones of it (subjob 1..) carry numjobs=1 and wait for it.
 */
static Sel4Sim *sel4sim_get(struct thread_data *td, GError **errp)
{
    struct sel4sim_options *o = td->eo;
    g_autoptr(GMutexLocker) locker =
        g_mutex_locker_new(&sel4sim_devices_lock);
    gint64 end = g_get_monotonic_time() +
                 (gint64)SEL4SIM_TIMEOUT_MS * 1000;
    Sel4Sim *s;

    if (!sel4sim_devices) {
        sel4sim_devices = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                g_free, NULL);
    }
    s = g_hash_table_lookup(sel4sim_devices, td->o.name);
    while (!s && td->subjob_number) {
        if (!g_cond_wait_until(&sel4sim_devices_added, &sel4sim_devices_lock,
                               end)) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                        "job %s.%u: no device from job %s.0 within %d ms",
                        td->o.name, td->subjob_number, td->o.name,
                        SEL4SIM_TIMEOUT_MS);
            return NULL;
        }
        s = g_hash_table_lookup(sel4sim_devices, td->o.name);
    }
    if (s) {
        s->users++;
        return s;
    }
    s = g_new0(Sel4Sim, 1);
    g_mutex_init(&s->lock);
    g_cond_init(&s->changed);
    s->users = 1;
    s->dir = g_dir_make_tmp("sel4sim-XXXXXX", errp);
    if (!s->dir || !sel4sim_start(td, s, o, errp)) {
        sel4sim_put(td, s);
        return NULL;
    }
    g_hash_table_insert(sel4sim_devices, g_strdup(td->o.name), s);
    g_cond_broadcast(&sel4sim_devices_added);
    return s;
}

static int sel4sim_init(struct thread_data *td)
{
    struct sel4sim_options *o = td->eo;
    g_autoptr(GError) err = NULL;
    Sel4SimJob *j;

    if (!sel4sim_check_options(o)) {
        return 1;
    }
    if (td->o.nr_files != 1) {
        log_err("sel4sim: one file per job (QEMU's drive), not %u\n",
                td->o.nr_files);
        return 1;
    }
    if (td->o.numjobs > VIRTIO_BLK_MAX_QUEUES ||
        ((td->o.numjobs > 1 || td->subjob_number) && !td->o.use_thread)) {
        log_err("sel4sim: numjobs=%u: one queue each of one device needs "
                "--thread and at most %u jobs\n", td->o.numjobs,
                VIRTIO_BLK_MAX_QUEUES);
        return 1;
    }
    j = g_new0(Sel4SimJob, 1);
    td->io_ops_data = j;
    j->q = td->subjob_number;
    j->s = sel4sim_get(td, &err);
    if (!j->s) {
        log_err("sel4sim: %s\n", err ? err->message : "cannot start");
        sel4sim_cleanup(td);
        return 1;
    }
    /* the requests are shared by the queues: each job its part */
    j->max_in_flight = j->s->blk.nreqs / j->s->blk.nqueues;
    j->events = g_new0(struct io_u *, j->max_in_flight);
    if (td->o.iodepth > j->max_in_flight) {
        log_info("sel4sim: iodepth %u above the queue's %u requests: "
                 "fio will see it full\n", td->o.iodepth, j->max_in_flight);
    }
    return 0;
}

/* fio's I/O buffers, in guest RAM so the device reaches them directly. */
static int sel4sim_iomem_alloc(struct thread_data *td, size_t size)
{
    Sel4SimJob *j = td->io_ops_data;
    Sel4Sim *s = j->s;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&s->lock);
    uint64_t gpa = guest_alloc(&s->mem, size, 4096);

    if (!gpa) {
        log_err("sel4sim: %zu bytes of buffers do not fit in guest RAM\n",
                size);
        return 1;
    }
    td->orig_buffer = (char *)guest_ptr(&s->mem, gpa, size);
    return 0;
}

static void sel4sim_iomem_free(struct thread_data *td)
{
    /* guest RAM is never given back (a bump allocator); it goes with us */
}

static int sel4sim_get_file_size(struct thread_data *td, struct fio_file *f)
{
    struct stat st;

    if (stat(f->file_name, &st) < 0) {
        td_verror(td, errno, "stat");
        return 1;
    }
    /* whole sectors only, as QEMU reports the capacity */
    f->real_file_size = st.st_size & ~(uint64_t)(VIRTIO_BLK_SECTOR - 1);
    fio_file_set_size_known(f);
    return 0;
}

static int sel4sim_open_file(struct thread_data *td, struct fio_file *f)
{
    /* QEMU has the file open; nothing is read here */
    f->fd = -1;
    return 0;
}

static int sel4sim_close_file(struct thread_data *td, struct fio_file *f)
{
    return 0;
}

/* The measured span starts at the first I/O of any job; lock held. */
static void sel4sim_measure_start(Sel4Sim *s)
{
    g_autoptr(GError) err = NULL;

    s->measuring = true;
    s->qemu_cpu0 = vmm_sim_qemu_cpu_us(&s->qemu);
    s->qsd_cpu0 = vmm_sim_pid_cpu_us(s->qsd.pid);
    vmm_sim_get_stats(s->sim, &s->st0);
    s->irqs0 = vmm_sim_irq_count(s->sim, s->blk.pci.spi_queues);
    if (s->stats &&
        !vmm_sim_qemu_accel_stats(&s->qemu, &s->acc0, &err)) {
        log_err("sel4sim: the accelerator's counters: %s\n", err->message);
    }
}

/* The guest-physical address of fio's buffer @p, @len long; 0: not ours. */
static uint64_t sel4sim_gpa(Sel4Sim *s, void *p, size_t len)
{
    const VmmSimConfig *c = vmm_sim_config(s->sim);
    uint64_t base = c->ram_base + c->ram_size / 2;
    uint8_t *host = guest_ptr(&s->mem, base, c->ram_size / 2);

    if ((uint8_t *)p < host || len > c->ram_size / 2 ||
        (size_t)((uint8_t *)p - host) > c->ram_size / 2 - len) {
        return 0;
    }
    return base + ((uint8_t *)p - host);
}

static enum fio_q_status sel4sim_queue(struct thread_data *td,
                                       struct io_u *io_u)
{
    Sel4SimJob *j = td->io_ops_data;
    Sel4Sim *s = j->s;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&s->lock);
    g_autoptr(GError) err = NULL;
    uint64_t gpa = 0;
    unsigned type;

    fio_ro_check(td, io_u);
    if (!s->measuring) {
        sel4sim_measure_start(s);
    }
    if (j->in_flight == j->max_in_flight) {
        return FIO_Q_BUSY;
    }
    switch (io_u->ddir) {
    case DDIR_READ:
        type = VIRTIO_BLK_T_IN;
        break;
    case DDIR_WRITE:
        type = VIRTIO_BLK_T_OUT;
        break;
    case DDIR_SYNC:
    case DDIR_DATASYNC:
        type = VIRTIO_BLK_T_FLUSH;
        break;
    case DDIR_TRIM:
        type = VIRTIO_BLK_T_DISCARD;
        break;
    default:
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT) {
        /* fio hands out its own buffers, which live in guest RAM */
        gpa = sel4sim_gpa(s, io_u->xfer_buf, io_u->xfer_buflen);
        if (!gpa) {
            io_u->error = EFAULT;
            return FIO_Q_COMPLETED;
        }
    }
    if (!virtio_blk_submit_on(&s->blk, j->q, type,
                              io_u->offset / VIRTIO_BLK_SECTOR, gpa,
                              io_u->xfer_buflen, io_u, &err)) {
        log_err("sel4sim: %s\n", err->message);
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    j->in_flight++;
    j->queued++;
    return FIO_Q_QUEUED;
}

/*
 * Sleep until events come or @end passes; lock held.  One job sleeps on
 * the doorbell (and QEMU's hang-up) without the lock, the others on the
 * condition it broadcasts once it has taken the events.
 */
static void sel4sim_wait(Sel4Sim *s, gint64 end)
{
    struct pollfd fds[] = {
        { .fd = vmm_sim_doorbell_fd(s->sim), .events = POLLIN },
        { .fd = vmm_sim_conn_fd(s->sim), .events = POLLRDHUP },
    };
    gint64 left_ms = (end - g_get_monotonic_time() + 999) / 1000;

    if (s->fd_waiter) {
        g_cond_wait_until(&s->changed, &s->lock, end);
        return;
    }
    s->fd_waiter = true;
    g_mutex_unlock(&s->lock);
    poll(fds, G_N_ELEMENTS(fds), MAX(left_ms, 0));
    g_mutex_lock(&s->lock);
    s->fd_waiter = false;
    vmm_sim_poll(s->sim, 0);
    g_cond_broadcast(&s->changed);
}

/*
 * One notify for the batch, as vCPU @q writes it: sent, then waited for
 * as the other jobs' events are, so notifies of several queues can be in
 * flight together (waiter slots 0..3) and meet in one of QEMU's passes.
 */
static int sel4sim_commit(struct thread_data *td)
{
    Sel4SimJob *j = td->io_ops_data;
    Sel4Sim *s = j->s;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&s->lock);
    g_autoptr(GError) err = NULL;
    Virtq *vq = virtio_blk_vq(&s->blk, j->q);
    gint64 end = g_get_monotonic_time() +
                 (gint64)SEL4SIM_IO_TIMEOUT_MS * 1000;
    VmmSimAccess acc = {
        .slot = j->q, .as = AS_GLOBAL, .len = 2, .write = true,
        .addr = virtio_pci_notify_addr(&s->blk.pci, vq), .data = vq->index,
    };
    VmmSimBatch b = { 0 };

    if (!j->queued) {
        return 0;
    }
    j->queued = 0;
    j->commits++;
    if (!virtq_kick_prepare(vq)) {
        return 0;               /* EVENT_IDX: the device needs no notify */
    }
    if (!vmm_sim_mmio_send(s->sim, &b, &acc, 1, &err)) {
        log_err("sel4sim: queue %u: notify: %s\n", j->q, err->message);
        return -EIO;
    }
    while (b.done < b.n && g_get_monotonic_time() < end) {
        sel4sim_wait(s, end);
    }
    if (b.done < b.n || b.failed) {
        log_err("sel4sim: queue %u: notify %s\n", j->q,
                b.failed ? "failed: QEMU is gone" : "not answered");
        if (b.done < b.n) {
            vmm_sim_mmio_abandon(s->sim, &b);
        }
        return -EIO;
    }
    return 0;
}

static int sel4sim_getevents(struct thread_data *td, unsigned int min,
                             unsigned int max, const struct timespec *t)
{
    Sel4SimJob *j = td->io_ops_data;
    Sel4Sim *s = j->s;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&s->lock);
    int timeout_ms = t ? t->tv_sec * 1000 + t->tv_nsec / 1000000
                       : SEL4SIM_IO_TIMEOUT_MS;
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    unsigned n = 0;

    for (;;) {
        VirtioBlkReq *req;

        while (n < MIN(max, j->max_in_flight) &&
               (req = virtio_blk_poll_on(&s->blk, j->q))) {
            struct io_u *io_u = req->opaque;

            io_u->error = req->status == VIRTIO_BLK_S_OK ? 0 : EIO;
            io_u->resid = 0;
            j->events[n++] = io_u;
        }
        if (n >= min) {
            break;
        }
        if (g_get_monotonic_time() >= end) {
            if (!t) {
                log_err("sel4sim: queue %u: no completion within %d ms\n",
                        j->q, timeout_ms);
                return -EIO;
            }
            break;
        }
        /* the used ring is checked again after the next events */
        sel4sim_wait(s, end);
    }
    j->in_flight -= n;
    j->ios += n;
    return n;
}

static struct io_u *sel4sim_event(struct thread_data *td, int event)
{
    Sel4SimJob *j = td->io_ops_data;

    return j->events[event];
}

/* The measured span's counters; @acc: the accelerator's, in the span. */
static void sel4sim_write_stats(struct thread_data *td, Sel4Sim *s,
                                int64_t qemu_cpu_us, int64_t qsd_cpu_us,
                                const VmmSimAccelStats *acc)
{
    struct sel4sim_options *o = td->eo;
    g_autofree char *accel = vmm_sim_accel_stats_json(acc);
    VmmSimStats st;
    FILE *f;

    vmm_sim_get_stats(s->sim, &st);
    f = fopen(o->stats, "a");
    if (!f) {
        log_err("sel4sim: %s: %s\n", o->stats, strerror(errno));
        return;
    }
    fprintf(f, "{\"job\": \"%s\", \"loop\": \"%s\", \"poll_us\": %u, "
            "\"drive\": \"%s\", \"doorbell_ns\": %u, \"queues\": %u, "
            "\"ios\": %" PRIu64 ", \"commits\": %" PRIu64 ", "
            "\"qemu_cpu_us\": %" PRId64 ", "
            "\"daemon_cpu_us\": %" PRId64 ", "
            "\"mmio_requests\": %" PRIu64 ", "
            "\"vmm_doorbells_out\": %" PRIu64 ", "
            "\"vmm_doorbells_in\": %" PRIu64 ", \"msis\": %" PRIu64 ", "
            "\"protocol_errors\": %" PRIu64 ", \"accel\": %s}\n",
            td->o.name, o->loop, o->poll_us, o->drive, o->doorbell_ns,
            s->blk.nqueues, s->ios, s->commits,
            qemu_cpu_us, qsd_cpu_us, st.requests - s->st0.requests,
            st.doorbells_tx - s->st0.doorbells_tx,
            st.doorbells_rx - s->st0.doorbells_rx,
            vmm_sim_irq_count(s->sim, s->blk.pci.spi_queues) - s->irqs0,
            st.protocol_errors, accel);
    fclose(f);
}

/* A job leaves device @s; the last one out writes the stats, stops QEMU. */
static void sel4sim_put(struct thread_data *td, Sel4Sim *s)
{
    g_autoptr(GError) err = NULL;
    VmmSimAccelStats acc1, acc = { 0 };
    int64_t cpu = -1, qsd_cpu = 0;
    int status = 0;

    if (--s->users) {
        return;
    }
    if (sel4sim_devices) {
        g_hash_table_steal(sel4sim_devices, td->o.name);
    }
    if (s->measuring) {
        cpu = vmm_sim_qemu_cpu_us(&s->qemu);
        cpu = cpu >= 0 && s->qemu_cpu0 >= 0 ? cpu - s->qemu_cpu0 : -1;
        if (s->qsd.pid) {
            qsd_cpu = vmm_sim_pid_cpu_us(s->qsd.pid);
            qsd_cpu = qsd_cpu >= 0 && s->qsd_cpu0 >= 0 ? qsd_cpu - s->qsd_cpu0
                                                       : -1;
        }
        if (s->stats && vmm_sim_qemu_accel_stats(&s->qemu, &acc1, &err)) {
            vmm_sim_accel_stats_sub(&acc, &acc1, &s->acc0);
        } else if (s->stats) {
            log_err("sel4sim: the accelerator's counters: %s\n",
                    err->message);
        }
    }
    if (s->blk_up) {
        virtio_blk_destroy(&s->blk);
    }
    vmm_sim_qemu_stop(&s->qemu, &status, NULL);
    vmm_sim_qsd_stop(&s->qsd, NULL);
    if (s->sim && s->measuring && s->stats) {
        sel4sim_write_stats(td, s, cpu, qsd_cpu, &acc);
    }
    vmm_sim_free(s->sim);
    if (s->dir) {
        if (s->qmp_path) {
            unlink(s->qmp_path);
        }
        if (s->vhost_sock) {
            unlink(s->vhost_sock);
        }
        rmdir(s->dir);
    }
    g_free(s->qmp_path);
    g_free(s->vhost_sock);
    g_free(s->dir);
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->changed);
    g_free(s);
}

static void sel4sim_cleanup(struct thread_data *td)
{
    Sel4SimJob *j = td->io_ops_data;

    if (!j) {
        return;
    }
    if (j->s) {
        Sel4Sim *s = j->s;

        g_mutex_lock(&sel4sim_devices_lock);
        g_mutex_lock(&s->lock);
        s->ios += j->ios;
        s->commits += j->commits;
        g_mutex_unlock(&s->lock);
        sel4sim_put(td, s);
        g_mutex_unlock(&sel4sim_devices_lock);
    }
    g_free(j->events);
    g_free(j);
    td->io_ops_data = NULL;
}

struct ioengine_ops ioengine = {
    .name = "sel4sim",
    .version = FIO_IOOPS_VERSION,
    .flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL,
    .init = sel4sim_init,
    .queue = sel4sim_queue,
    .commit = sel4sim_commit,
    .getevents = sel4sim_getevents,
    .event = sel4sim_event,
    .cleanup = sel4sim_cleanup,
    .open_file = sel4sim_open_file,
    .close_file = sel4sim_close_file,
    .get_file_size = sel4sim_get_file_size,
    .iomem_alloc = sel4sim_iomem_alloc,
    .iomem_free = sel4sim_iomem_free,
    .options = options,
    .option_struct_size = sizeof(struct sel4sim_options),
};
