/*
 * The simulated seL4 VMM: state shared by its source files (private).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SEL4_VMM_SIM_INT_H
#define SEL4_VMM_SIM_INT_H

#include "sel4/sim_transport.h"
#include "sel4/vmm_sim.h"

/* What the VMM remembers of one lent message id. */
typedef enum VmmSimPendingState {
    VMM_SIM_FREE = 0,
    VMM_SIM_WAITING,            /* sent, no reply yet */
    VMM_SIM_ABANDONED,          /* its caller gave up (timeout) */
} VmmSimPendingState;

/*
 * A batch (VmmSimBatch, sel4/vmm_sim.h) waits for its requests: a reply is
 * stored at once in acc[idx] (or raw[idx]) and its message id freed, so
 * within a batch of more than 32 accesses ids are reused.
 */
typedef struct VmmSimPending {
    VmmSimPendingState state;
    uint64_t mr0;               /* as sent: the reply must echo it */
    VmmSimBatch *batch;         /* while WAITING */
    unsigned idx;               /* in batch->acc */
} VmmSimPending;

struct VmmSim {
    VmmSimConfig cfg;
    bool ignore_events;         /* hostile: devevt is never taken */
    char *socket_path;
    SimHello hello;
    int fds[SIM_FD_COUNT];
    SimRegions regions;
    int listen_fd;
    int conn;
    bool peer_gone;
    bool started;

    VsoRpc rpc;
    VmmSimPending pending[RPCMSG_BUFFER_SIZE];

    VmmSimPciDev devs[RPC_MAX_PCIDEV];
    unsigned ndevs;
    int dev_by_index[RPC_MAX_PCIDEV];   /* position in devs[], or -1 */
    uint8_t intx_line[RPC_MAX_PCIDEV];  /* guest-written LINE, per index */
    VmmSimRegion mmio_regions[VMM_SIM_MAX_REGIONS];
    unsigned nregions;

    bool irq_level[VMM_SIM_MAX_IRQ];
    uint64_t irq_count[VMM_SIM_MAX_IRQ];

    gint64 hold_replies_until;  /* vmm_sim_hold(), monotonic us */
    gint64 hold_events_until;

    VmmSimDoorbellFaults faults;    /* vmm_sim_set_doorbell_faults() */
    GRand *fault_rand;
    gint64 last_progress;       /* a reply taken or a request rung, us */

    VmmSimStats stats;
};

/* vmm_sim_mmio.c: store the @reply of request @p, free its id. */
void vmm_sim_complete(VmmSimPending *p, const rpcmsg_t *reply);
/* vmm_sim_mmio.c: request @p will never be answered: fail it, free its id. */
void vmm_sim_fail(VmmSimPending *p);
/*
 * vmm_sim_mmio.c: send the @n request bodies @msgs of batch @b as room and
 * ids allow, and wait for every reply (see vmm_sim_mmio_batch()).
 */
bool vmm_sim_run_batch(VmmSim *sim, VmmSimBatch *b, const rpcmsg_t *msgs,
                       unsigned n, GError **errp);

/* One devevt message, parsed: the checks that need no state. */
typedef enum VmmSimEventKind {
    VMM_SIM_EV_BAD,             /* mr0 bits above OP */
    VMM_SIM_EV_UNKNOWN,         /* an opcode that is no event */
    VMM_SIM_EV_REGISTER,
    VMM_SIM_EV_START,
    VMM_SIM_EV_SET_IRQ,
    VMM_SIM_EV_REGION,
} VmmSimEventKind;

typedef struct VmmSimEvent {
    VmmSimEventKind kind;
    uint64_t index;             /* REGISTER: QEMU's index n */
    uint64_t irq;               /* SET_IRQ: INTx n or GIC INTID */
    uint64_t level;             /* SET_IRQ: RPC_IRQ_* */
    uint64_t base, size;        /* REGION */
    bool free;                  /* REGION: RPC_MMIO_REGION_FREE */
} VmmSimEvent;

/*
 * vmm_sim_events.c: parse @msg (a local copy); false when it is bad
 * whatever the state (ev->kind still says what it claimed to be).  Pure.
 */
bool vmm_sim_parse_event(const rpcmsg_t *msg, VmmSimEvent *ev);
/* vmm_sim_events.c: take one devevt message (parse, then act on it). */
void vmm_sim_handle_event(VmmSim *sim, const rpcmsg_t *msg);

/*
 * vmm_sim.c: a VmmSim's state before anything is created (config with
 * defaults, no fds, no devices): what vmm_sim_new() starts from, and what
 * the event fuzz target (tests/fuzz/) feeds events to.
 */
void vmm_sim_state_init(VmmSim *sim, const VmmSimConfig *cfg);

/*
 * vmm_sim.c: take every reply and event the queues hold, without waiting;
 * returns how many.  Also what the event fuzz target drives.
 */
int vmm_sim_take(VmmSim *sim);

/*
 * vmm_sim.c: one round of waiting (up to @timeout_ms) and taking replies
 * and events; see vmm_sim_poll().
 */
int vmm_sim_pump(VmmSim *sim, int timeout_ms);

#endif /* SEL4_VMM_SIM_INT_H */
