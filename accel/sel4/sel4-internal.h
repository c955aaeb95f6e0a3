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
 *   sel4-loop.c       who waits for the doorbell: thread, aio, uring
 */
#ifndef ACCEL_SEL4_INTERNAL_H
#define ACCEL_SEL4_INTERNAL_H

#include "qemu/accel.h"
#include "system/sel4-compat.h"     /* accel ops (10.0 and 10.2) */
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "block/aio.h"
#include "hw/pci/pci.h"
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
} Sel4Loop;

/* loop=uring: whose io_uring carries the doorbell wait */
typedef enum Sel4UringRing {
    SEL4_URING_AUTO,        /* the AioContext's when it has one, else own */
    SEL4_URING_SHARED,      /* aio_add_sqe() on the AioContext's ring */
    SEL4_URING_OWN,         /* io/uring_doorbell.c, ring fd in the loop */
} Sel4UringRing;

typedef struct Sel4Stats {
    uint64_t requests;      /* MMIO requests served */
    uint64_t batches;       /* passes that served at least one request */
    uint64_t doorbells_in;  /* wake-ups of our doorbell */
    uint64_t doorbells_out; /* rings of the VMM's doorbell */
    uint64_t events;        /* events published to devevt */
    uint64_t events_merged; /* MSI pulses merged into a queued one */
    uint64_t events_dropped;/* outbox overflow (logged) */
    uint64_t backpressure;  /* flushes that found devevt full */
    uint64_t errors;        /* bad requests and failed accesses */
} Sel4Stats;

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

    /* transport (sel4-transport.c) */
    Sel4GuestLayout layout;     /* ram_fd is handed over to the machine */
    void *iobuf_region;         /* sim: event bar page + iobuf */
    size_t iobuf_region_size;
    UioRegions uio;             /* uio: the two functions */
    uint8_t *event_bar;
    void *iobuf;
    int doorbell_fd;            /* VMM -> us */
    bool doorbell_is_uio;       /* 4-byte irq count, write 1 re-enables */
    int ring_fd;                /* us -> VMM: eventfd (sim), or -1 for
                                   the EMIT store to the event bar */
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
    const char *engine;         /* what actually waits, for traces/logs */

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
 * one doorbell.  Called with the BQL held.
 */
void sel4_serve(Sel4State *s, unsigned batch);
/* The thread loop's shape: one request, the BQL only around its access. */
bool sel4_serve_one_unlocked(Sel4State *s);
/* Queue an event; it goes out with the current pass or from a BH. */
void sel4_event_push(Sel4State *s, const rpcmsg_t *msg);
/* Publish what fits in devevt; true when something was published. */
bool sel4_events_flush(Sel4State *s);
void sel4_error(Sel4State *s, const char *what, uint64_t a, uint64_t b);

/* sel4-vpci.c */
void sel4_vpci_init(Sel4State *s);

/* sel4-loop.c */
bool sel4_loop_start(Sel4State *s, Error **errp);
void sel4_loop_stop(Sel4State *s);
/* Serve what is queued without a doorbell (e.g. a predecessor's requests). */
void sel4_loop_kick(Sel4State *s);
/* A doorbell wake-up of the aio and uring loops: drain it, serve. */
void sel4_doorbell_fired(Sel4State *s);
/* Ring the VMM at the end of this pass (once, however often called). */
void sel4_loop_ring(Sel4State *s);

#endif /* ACCEL_SEL4_INTERNAL_H */
