/*
 * seL4 accelerator: state shared by the files of accel/sel4/.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   sel4-all.c        the accelerator object: options, init, shutdown
 *   sel4-transport.c  reaching the VMM: regions, doorbells (sim, uio)
 *   sel4-dispatch.c   serving a batch of MMIO requests, the event outbox
 *   sel4-vpci.c       REGISTER_PCI_DEV and START_VM
 *   sel4-stats.c      counters; QOM, query-stats and HMP readers
 *   sel4-loop.c       who waits for the doorbell: thread, thread-batch,
 *                     aio, uring
 *   sel4-ioeventfd.c  the ioeventfds QEMU registers: the notify fast path
 *   sel4-notify.c     guest notifies off while a queue has requests in flight
 *   sel4-irqfd.c      the devices' guest notifiers: the interrupt fast path
 */
#ifndef ACCEL_SEL4_INTERNAL_H
#define ACCEL_SEL4_INTERNAL_H

#include "qemu/accel.h"
#include "system/sel4-compat.h"     /* accel ops (10.0 and 10.2) */
#include "qemu/thread.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qemu/stats64.h"
#include "block/aio.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio.h"
#include "system/memory.h"
#include "system/runstate.h"
#include "system/sel4.h"
#include "sel4/rpc.h"
#include "sel4/vso_rpc.h"
#include "sel4/sim_transport.h"
#include "sel4/uio_transport.h"

/* QEMU 10.2 lets us put our own SQEs on the AioContext's io_uring. */
#if defined(CONFIG_LINUX_IO_URING) && \
    (QEMU_VERSION_MAJOR > 10 || \
     (QEMU_VERSION_MAJOR == 10 && QEMU_VERSION_MINOR >= 2))
#define SEL4_HAVE_AIO_ADD_SQE 1
#endif

#ifdef CONFIG_LINUX_IO_URING
#include "io/uring_doorbell.h"
#endif

#define SEL4_BATCH_MAX      RPCMSG_BUFFER_SIZE

/*
 * Events waiting for room in devevt.  MSI pulses of one SPI that are
 * still queued merge into one (an edge the guest has not seen yet), so
 * the outbox holds at most one entry per distinct vector plus the
 * one-off registrations and START_VM.
 */
#define SEL4_OUTBOX_SIZE    256

typedef enum Sel4Loop {
    SEL4_LOOP_THREAD,
    SEL4_LOOP_AIO,
    SEL4_LOOP_URING,
    SEL4_LOOP_THREAD_BATCH,
} Sel4Loop;

/* loop=uring: whose io_uring carries the doorbell wait */
typedef enum Sel4UringRing {
    SEL4_URING_AUTO,        /* the AioContext's when it has one, else own */
    SEL4_URING_SHARED,      /* aio_add_sqe() on the AioContext's ring */
    SEL4_URING_OWN,         /* io/uring_doorbell.c, ring fd in the loop */
} Sel4UringRing;

/*
 * Counters (sel4-stats.c).  Stat64: atomic, because loop=thread counts
 * from its own thread while the monitor reads with the BQL.
 */
typedef enum Sel4Counter {
    /* requests served, by opcode */
    SEL4_STAT_REQ_READ,
    SEL4_STAT_REQ_WRITE,
    SEL4_STAT_REQ_PUTC_LOG,
    SEL4_STAT_REQ_INVALID,          /* refused by decode */
    SEL4_STAT_BATCHES,              /* passes that served a request */
    SEL4_STAT_DOORBELLS_IN,         /* wake-ups of our doorbell */
    SEL4_STAT_DOORBELLS_OUT,        /* rings of the VMM's doorbell */
    /* events published to devevt, by opcode */
    SEL4_STAT_EVT_REGISTER,
    SEL4_STAT_EVT_START_VM,
    SEL4_STAT_EVT_IRQ_SET,
    SEL4_STAT_EVT_IRQ_CLEAR,
    SEL4_STAT_EVT_IRQ_PULSE,
    /* what the devices raised, and what became of it */
    SEL4_STAT_INTX_CHANGES,         /* sel4_set_intx() calls */
    SEL4_STAT_MSI,                  /* sel4_send_msi() calls */
    SEL4_STAT_MSI_MERGED,           /* into a pulse still queued */
    SEL4_STAT_EVT_DROPPED,          /* outbox overflow (logged) */
    SEL4_STAT_DEVEVT_FULL,          /* flushes that found devevt full */
    SEL4_STAT_OUTBOX_PEAK,          /* most events waiting in the outbox */
    /* the notify fast path and notify suppression */
    SEL4_STAT_IOEVENTFD,            /* writes answered by an ioeventfd */
    SEL4_STAT_NOTIFY_SUPPRESSED,    /* windows with guest notifies off */
    SEL4_STAT_NOTIFY_POLLED,        /* requests found with notifies off */
    SEL4_STAT_NOTIFY_STALLED,       /* windows closed: nothing completed */
    /* the interrupt fast path */
    SEL4_STAT_IRQFD,                /* irqfd signals turned into pulses */
    /* errors by kind (Sel4Error): SEL4_STAT_ERRORS + kind */
    SEL4_STAT_ERRORS,
} Sel4Counter;

/* What went wrong; each kind has its counter and trace name. */
typedef enum Sel4Error {
    SEL4_ERR_BAD_OP,                /* decode: VSO_RPC_EBADOP */
    SEL4_ERR_BAD_LEN,               /* decode: VSO_RPC_EBADLEN */
    SEL4_ERR_BAD_AS,                /* decode: VSO_RPC_EBADAS */
    SEL4_ERR_RESERVED,              /* decode: VSO_RPC_ERESERVED */
    SEL4_ERR_CONFIG_ACCESS,
    SEL4_ERR_GLOBAL_ACCESS,
    SEL4_ERR_REPLY,
    SEL4_ERR_RECV,
    SEL4_ERR_SEND_EVENTS,
    SEL4_ERR_RING,
    SEL4_ERR_UIO_IRQ,
    SEL4_ERR_URING,
    SEL4_ERR_TOO_MANY_PCIDEV,
    SEL4_ERR_REQ_DROPPED,           /* bad ring entries, repaired markers */
    SEL4_ERR_IDLE_DOORBELLS,        /* a doorbell storm */
    SEL4_ERR_DEVEVT_STUCK,          /* the VMM takes no events */
    SEL4_ERR_IOEVENTFD,             /* an ioeventfd write failed */
    SEL4_ERR_REQ_UNCOMMITTED,       /* the VMM reserved, never committed */
    SEL4_ERR__MAX,
} Sel4Error;

#define SEL4_COUNTERS       (SEL4_STAT_ERRORS + SEL4_ERR__MAX)
/* batch sizes, log2 buckets: 0, 1, 2-3, 4-7, 8-15, 16-31, 32 */
#define SEL4_BATCH_BUCKETS  7

typedef struct Sel4Stats {
    Stat64 c[SEL4_COUNTERS];
    Stat64 batch_size[SEL4_BATCH_BUCKETS];
} Sel4Stats;

/* sel4-notify.c's view of one virtqueue (BQL) */
typedef struct Sel4NotifyState {
    bool on;                    /* guest notifies are off */
    uint16_t last_avail;        /* the device's, when avail_event parked */
    uint16_t used;              /* used->idx at the last completion seen */
    int64_t progress_ns;        /* ... seen then */
    bool kicked;                /* we kicked the device ... */
    uint16_t kicked_at;         /* ... when its last_avail_idx was this */
    bool hold;                  /* stalled: not again until ... */
    uint16_t hold_used;         /* ... used->idx moves from this */
    int64_t idle_ns;            /* drained since (0: not drained) */
} Sel4NotifyState;

/* One ioeventfd registration (sel4-ioeventfd.c). */
typedef struct Sel4Ioeventfd {
    struct rcu_head rcu;
    hwaddr addr;
    uint64_t len;               /* 0: any access size */
    bool match_data;
    uint64_t data;
    EventNotifier *e;           /* the device's */
    int fd;                     /* our dup() of its fd: the fast path's */
    /* the virtqueue it kicks, if any (a virtio-pci notify) */
    VirtIODevice *vdev;
    int queue;                  /* -1: none */
    bool main_loop;             /* its queues are served in the main loop */
    bool active;                /* notified since last idle (atomic) */
    Sel4NotifyState sup;
} Sel4Ioeventfd;

typedef struct Sel4IoeventfdTable Sel4IoeventfdTable;
typedef struct Sel4Irqfd Sel4Irqfd;
typedef struct Sel4State Sel4State;

/* Who waits for the doorbell (sel4-loop.c): one engine, chosen at start. */
typedef struct Sel4LoopOps {
    const char *name;           /* for traces and logs */
    bool (*start)(Sel4State *s, Error **errp);
    void (*stop)(Sel4State *s);
    /* Serve what is queued without a doorbell (START_VM, a predecessor's). */
    void (*kick)(Sel4State *s);
    /* Ring the VMM at the end of this pass (once, however often called). */
    void (*ring)(Sel4State *s);
} Sel4LoopOps;

typedef struct Sel4State {
    AccelState parent_obj;

    /* options */
    char *transport;
    char *socket;
    char *uio_iobuf;            /* explicit /dev/uioN nodes */
    char *uio_ram;
    char *uio_root;             /* x-uio-root: a stand-in / for tests */
    char *uservm;               /* overrides /proc/cmdline */
    int loop;                   /* Sel4Loop */
    int uring_ring;             /* Sel4UringRing */
    uint32_t batch;
    uint32_t poll_us;
    bool ioeventfd;             /* the notify fast path */
    bool irqfd_on;              /* the interrupt fast path */
    uint32_t notify_suppress_us;    /* 0: off */
    uint32_t notify_poll_us;        /* look at a drained queue this long */
    char *fault_kill;           /* x-fault-kill (sel4-fault.c) */
    int fault_point;            /* VsoFaultPoint */
    unsigned fault_left;        /* hits until the kill */

    /* transport (sel4-transport.c) */
    Sel4GuestLayout layout;     /* ram_fd is handed over to the machine */
    void *iobuf_region;         /* sim: event bar page + iobuf */
    size_t iobuf_region_size;
    UioRegions uio;             /* uio: the two functions */
    uint8_t *event_bar;
    void *iobuf;
    int doorbell_fd;            /* VMM -> us */
    bool doorbell_is_uio;       /* 4-byte irq count, write 1 re-enables */
    /* us -> VMM: eventfd (sim), or -1 for the EMIT store to the event bar */
    int ring_fd;
    int conn;                   /* sim: the VMM's socket, for hang-ups */
    int sim_fds[SIM_FD_COUNT];

    VsoRpc rpc;
    bool attached;

    /* virtual PCI (sel4-vpci.c) */
    PCIBus *root_bus;
    PCIDevice *pcidev[RPC_MAX_PCIDEV];
    unsigned n_pcidev;
    bool started;
    Notifier machine_done;
    VMChangeStateEntry *vmstate;

    /* event outbox (sel4-dispatch.c), under evt_lock */
    QemuMutex evt_lock;
    rpcmsg_t outbox[SEL4_OUTBOX_SIZE];
    unsigned n_outbox;
    uint32_t intx_level;        /* INTx n is asserted */
    uint32_t intx_sent;         /* ... as last published */
    QEMUBH *evt_bh;
    QEMUTimer *evt_retry;

    /* a misbehaving VMM, as last logged (sel4-dispatch.c) */
    uint64_t req_errors_logged; /* drvrpc_req entries dropped, bad markers */
    uint64_t idle_doorbells;    /* doorbells in a row that found nothing */
    bool served_last_wake;      /* the last doorbell wake served requests */
    int64_t evt_full_since;     /* devevt full since (realtime ns), or 0 */
    bool evt_full_logged;
    /* the VMM's drvrpc_req reservation seen uncommitted (prod.tail) */
    uint64_t req_reserved_tail;
    int64_t req_reserved_since; /* realtime ns, or 0: none */
    int64_t req_reserved_wall;  /* the same moment, g_get_real_time() */
    bool req_reserved_logged;

    /* poll-us (sel4-dispatch.c): look at the queue until then */
    QEMUBH *poll_bh;
    int64_t poll_deadline;

    /* loops (sel4-loop.c) */
    QemuThread thread;
    int thread_ctl_fd;          /* wakes the thread: kick or stop */
    bool thread_stop;
    bool thread_running;
    Notifier shutdown;
#ifdef SEL4_HAVE_AIO_ADD_SQE
    CqeHandler cqe;
#endif
#ifdef CONFIG_LINUX_IO_URING
    UringDoorbell *ud;
#endif
    const Sel4LoopOps *loop_ops;
    const char *engine;         /* loop_ops->name, for traces/logs */

    /* ioeventfds (sel4-ioeventfd.c), replaced whole under RCU */
    MemoryListener ioeventfd_listener;
    Sel4IoeventfdTable *ioeventfds;

    /* irqfd (sel4-irqfd.c): its routes, slots, ring and thread */
    Sel4Irqfd *irqfd;

    /* notify suppression (sel4-notify.c), BQL */
    Notifier notify_poll;
    QEMUTimer *notify_timer;    /* the wake-up without io_uring */
#ifdef SEL4_HAVE_AIO_ADD_SQE
    CqeHandler notify_cqe;      /* ... with: an IORING_OP_TIMEOUT */
    struct __kernel_timespec notify_ts;
    bool notify_timeout_armed;
#endif
    int64_t notify_now;         /* this turn's clock */
    int64_t notify_deadline;    /* the next stall check */
    bool notify_polling;        /* a queue is in its poll window */

    Sel4Stats stats;
} Sel4State;

#define TYPE_SEL4_ACCEL ACCEL_CLASS_NAME("sel4")
OBJECT_DECLARE_SIMPLE_TYPE(Sel4State, SEL4_ACCEL)

/* The one accelerator instance, once attached. */
extern Sel4State *sel4_state;

/* sel4-transport.c */
bool sel4_transport_attach(Sel4State *s, Error **errp);
void sel4_transport_detach(Sel4State *s);
/* Consume the doorbell's count; 0 for a spurious (or stale) wake-up. */
uint64_t sel4_doorbell_drain(Sel4State *s);
void sel4_ring_vmm(Sel4State *s);

/* sel4-dispatch.c */
void sel4_events_init(Sel4State *s);
/*
 * Serve requests, up to @batch per pass, until the queue is empty, and
 * publish each pass's replies and queued events with one commit each and
 * one doorbell.  Called with the BQL held.  Returns whether any request
 * was served.
 */
bool sel4_serve(Sel4State *s, unsigned batch);
/*
 * The same from a thread of the accelerator, without the BQL: decoding and
 * notifies take none, and a pass takes it once, for its first request that
 * needs a memory dispatch (loop=thread: @batch 1, the seed's shape).
 */
bool sel4_serve_unlocked(Sel4State *s, unsigned batch);
/* Queue an event; it goes out with the current pass or from a BH. */
void sel4_event_push(Sel4State *s, const rpcmsg_t *msg);
/* Queue an event for a pass of the caller's own, which flushes (no BH). */
void sel4_event_queue(Sel4State *s, const rpcmsg_t *msg);
/* Publish what fits in devevt; true when something was published. */
bool sel4_events_flush(Sel4State *s);

/* sel4-stats.c */
/* Count an error of @kind and trace it with @a and @b. */
void sel4_error(Sel4State *s, Sel4Error kind, uint64_t a, uint64_t b);
static inline void sel4_stat_add(Sel4State *s, Sel4Counter c, uint64_t n)
{
    stat64_add(&s->stats.c[c], n);
}
static inline void sel4_stat_max(Sel4State *s, Sel4Counter c, uint64_t v)
{
    stat64_max(&s->stats.c[c], v);
}
uint64_t sel4_stat_get(Sel4State *s, Sel4Counter c);
/* The Sel4Error of a decode failure. */
Sel4Error sel4_decode_error(VsoRpcError err);
/* A served request (@err: its decode result, @m: what it decoded to). */
void sel4_stats_request(Sel4State *s, VsoRpcError err, const VsoMmio *m);
/* A pass that served @n requests. */
void sel4_stats_batch(Sel4State *s, unsigned n);
/* @n events published to devevt. */
void sel4_stats_events(Sel4State *s, const rpcmsg_t *msgs, unsigned n);
/* Monitor: QOM properties, query-stats, `info sel4` (after attaching). */
void sel4_stats_init(Sel4State *s, MachineState *ms);
/* The shutdown trace. */
void sel4_stats_trace(Sel4State *s);
#if !SEL4_QEMU_10_0
/* AccelClass::get_stats: HMP `info accel`, QMP x-accel-stats */
void sel4_accel_get_stats(AccelState *as, GString *buf);
#endif
/*
 * A doorbell of @count rings woke a loop, which then @served requests or
 * found none: a long run of empty ones (a storm) is logged.
 */
void sel4_doorbell_done(Sel4State *s, uint64_t count, bool served);

/* sel4-vpci.c */
void sel4_vpci_init(Sel4State *s);

/* sel4-ioeventfd.c */
void sel4_ioeventfd_init(Sel4State *s);
/*
 * An AS_GLOBAL write that matches a registered ioeventfd: signal it and
 * return true (the write is done).  Any thread; no BQL needed.
 */
bool sel4_ioeventfd_write(Sel4State *s, hwaddr addr, unsigned len,
                          uint64_t data);
/* Call @fn for each registration (BQL). */
void sel4_ioeventfd_foreach(Sel4State *s,
                            void (*fn)(Sel4State *, Sel4Ioeventfd *));

/* sel4-notify.c */
void sel4_notify_init(Sel4State *s);
/* Whether @vdev's queues are served in the main loop (no IOThread). */
bool sel4_vdev_in_main_loop(VirtIODevice *vdev);
/* @io's ioeventfd goes away: give its queue back with notifies on (BQL). */
void sel4_notify_release(Sel4State *s, Sel4Ioeventfd *io);
/* sel4-irqfd.c: with irqfd=on, the thread; system/accel-irq.h's routes */
bool sel4_irqfd_start(Sel4State *s, Error **errp);
void sel4_irqfd_stop(Sel4State *s);
/* sel4-fault.c: x-fault-kill=QUEUE.POINT[:N] (tests) */
bool sel4_fault_check(const char *spec, Error **errp);
/* After attaching: hook the named queue (nothing without the option). */
void sel4_fault_arm(Sel4State *s);

/* sel4-loop.c: picks s->loop_ops and starts it */
bool sel4_loop_start(Sel4State *s, Error **errp);

#endif /* ACCEL_SEL4_INTERNAL_H */
