/*
 * The simulated seL4 VMM: the driver side of the vso_rpc protocol.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Plays what tii-sel4-vm's io_proxy does on seL4, over the `sim`
 * transport (include/sel4/sim_transport.h): owns guest RAM and the iobuf
 * (memfds) and both doorbells (eventfds), zeroes the queues at boot, hands
 * them to the device side (QEMU's sel4 accelerator) on a unix socket, and
 * then:
 *
 *  - takes devevt events: REGISTER_PCI_DEV (it picks the guest devfn
 *    itself: slot n + 1 on bus 0), START_VM (gates the guest),
 *    SET_IRQ (INTx levels, MSI pulses on the GICv2m SPI range, level SPIs),
 *    MMIO_REGION_CONFIG (extra AS_GLOBAL windows);
 *  - forwards guest MMIO as QEMU_OP_MMIO requests with the deployed VMM's
 *    waiter slots (0..15 vCPUs, 16..31 VMM threads, config accesses from
 *    slot 16), answering PCI_INTERRUPT_LINE/PIN itself;
 *  - notices the device side's death (the connection hanging up).
 *
 * Counted as protocol errors (VmmSimStats), never acted on: a
 * REGISTER_PCI_DEV after START_VM, with n >= 32 or a duplicate n; a second
 * START_VM; SET_IRQ of an unregistered INTx, an INTID >= 1020 or an mr2
 * other than 0/1/2; an impossible or unknown MMIO_REGION_CONFIG; an unknown
 * opcode (also unknown_ops); event mr0 bits above OP; a reply whose mr0
 * differs from the request's (the device may only write mr2).
 *
 * Default guest address map (qemu-arm-virt's, which is also what the
 * deployed uservm= lines use):
 *   RAM          0x40000000, 512 MiB
 *   PCIe MMIO    0x10000000 .. 0x3efeffff (size 0x2eff0000)
 *   PCI PIO      0x3eff0000 .. 0x3effffff (64 KiB, right after MMIO)
 *   GICv2m frame 0x08020000 (MSI doorbell at +0x40, MSI data = SPI INTID),
 *                MSI SPIs 96..127
 *   PCI INTx     INTIDs 35..38 (SPIs 3..6), swizzled by slot
 *
 * Threading: a VmmSim is used from one thread at a time.  Nothing runs in
 * the background: events are processed inside vmm_sim_poll() and while a
 * synchronous access waits for its reply.
 */
#ifndef SEL4_VMM_SIM_H
#define SEL4_VMM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "sel4/rpc.h"
#include "sel4/vso_rpc.h"

#define VMM_SIM_DEFAULT_VMID            1u
#define VMM_SIM_DEFAULT_RAM_BASE        UINT64_C(0x40000000)
#define VMM_SIM_DEFAULT_RAM_SIZE        (UINT64_C(512) << 20)
#define VMM_SIM_DEFAULT_PCI_MMIO_BASE   UINT64_C(0x10000000)
#define VMM_SIM_DEFAULT_PCI_MMIO_SIZE   UINT64_C(0x2eff0000)
#define VMM_SIM_DEFAULT_GICV2M_BASE     UINT64_C(0x08020000)
#define VMM_SIM_GICV2M_SETSPI           0x40    /* MSI doorbell offset */
#define VMM_SIM_DEFAULT_MSI_SPI_BASE    96u
#define VMM_SIM_DEFAULT_MSI_SPI_COUNT   32u
#define VMM_SIM_DEFAULT_INTX_BASE       35u     /* INTA of slot 0 */
/* How long a synchronous access waits for its reply by default. */
#define VMM_SIM_DEFAULT_TIMEOUT_MS      2000

/* GIC INTIDs the simulator tracks: 0..31 are INTx, 32.. SPIs. */
#define VMM_SIM_MAX_IRQ                 1020u
/* Extra AS_GLOBAL windows from MMIO_REGION_CONFIG. */
#define VMM_SIM_MAX_REGIONS             16u

/* The waiter slot config accesses use (a VMM-internal thread). */
#define VMM_SIM_CONFIG_SLOT             RPC_SLOT_VMM_BASE
#define VMM_SIM_MAX_SLOT                31u

/*
 * What the VMM does with a valid SET_IRQ, for a VMM that has a guest to
 * interrupt (the proxy of hw/sel4/sel4-vmm-proxy.c): @op is RPC_IRQ_SET
 * or RPC_IRQ_CLR for a level line (INTx n < 32, or a level SPI), and
 * RPC_IRQ_PULSE for an edge: a pulse of a level line, or one MSI on an
 * MSI SPI (a PULSE, or the SET of the deployed QEMU's SET-then-CLEAR;
 * the CLEAR is not passed on).  Called from inside vmm_sim_poll() and the
 * synchronous accesses, after the state of vmm_sim_irq_level/count is
 * updated.
 */
typedef void VmmSimIrqFn(void *opaque, unsigned irq, unsigned op);

/*
 * Zero (or NULL) fields take the defaults above.  socket_path is
 * required.
 */
typedef struct VmmSimConfig {
    const char *socket_path;    /* created 0600 ... */
    const char *socket_group;   /* ... or 0660 and of this group */
    uint32_t vmid;
    uint64_t ram_base;
    uint64_t ram_size;
    uint64_t pci_mmio_base;
    uint64_t pci_mmio_size;
    uint64_t gicv2m_base;
    unsigned msi_spi_base;
    unsigned msi_spi_count;
    int timeout_ms;             /* synchronous accesses; default 2000 */
    /*
     * Lend this fd as guest RAM instead of a memfd of our own (a real
     * guest's RAM: it must be a memfd of at least ram_size bytes, sealed
     * against shrinking); the VMM keeps a copy.
     */
    bool has_ram_fd;
    int ram_fd;
    VmmSimIrqFn *irq_fn;        /* optional */
    void *irq_opaque;
    /*
     * Busy-wait this long for each doorbell rung (to the device) or taken
     * (from it): what a doorbell costs the VMM on seL4 (a signal, a
     * context switch), charged to a simulator whose eventfd costs less.
     * 0: none.
     */
    uint32_t doorbell_ns;
} VmmSimConfig;

#define VMM_SIM_ERROR vmm_sim_error_quark()
GQuark vmm_sim_error_quark(void);

typedef enum VmmSimError {
    VMM_SIM_ERROR_FAILED,       /* a system call or the queue failed */
    VMM_SIM_ERROR_INVALID,      /* bad argument: slot, len, AS, address */
    VMM_SIM_ERROR_NOT_CONNECTED,/* no device side (yet) */
    VMM_SIM_ERROR_NOT_STARTED,  /* the device side has not sent START_VM */
    VMM_SIM_ERROR_TIMEOUT,      /* no reply within the timeout */
    VMM_SIM_ERROR_PEER_GONE,    /* the device side hung up */
} VmmSimError;

typedef struct VmmSim VmmSim;

/* One registered PCI device (REGISTER_PCI_DEV). */
typedef struct VmmSimPciDev {
    unsigned index;             /* QEMU's registration index n: AS_PCIDEV(n) */
    unsigned devfn;             /* bus 0, chosen by the VMM: slot n + 1 */
    uint8_t intx_line;          /* what PCI_INTERRUPT_LINE reads */
} VmmSimPciDev;

typedef struct VmmSimRegion {
    uint64_t base;
    uint64_t size;
} VmmSimRegion;

typedef struct VmmSimStats {
    uint64_t events;            /* devevt messages taken */
    uint64_t replies;           /* drvrpc_resp messages taken */
    uint64_t requests;          /* MMIO requests sent */
    uint64_t local_config;      /* config accesses answered without RPC */
    uint64_t doorbells_rx;      /* device -> VMM doorbells */
    uint64_t doorbells_tx;      /* VMM -> device doorbells */
    uint64_t timeouts;          /* synchronous accesses that timed out */
    uint64_t late_replies;      /* replies to abandoned requests */
    uint64_t protocol_errors;   /* everything the device did wrong */
    uint64_t unknown_ops;       /* of which: unknown event opcodes */
    uint64_t bad_registrations; /* of which: refused REGISTER_PCI_DEV */
    uint64_t bad_irqs;          /* of which: bad SET_IRQ */
    uint64_t bad_replies;       /* of which: reply with a changed mr0 */
    uint64_t reconnects;        /* device sides accepted after a death */
    uint64_t reclaimed;         /* ids a dead device side took, unanswered */
    /* doorbell faults (vmm_sim_set_doorbell_faults()) and their repair */
    uint64_t doorbells_dropped;     /* rings of the device's not made */
    uint64_t doorbells_duplicated;  /* ... made twice */
    uint64_t doorbells_delayed;     /* ... made late */
    uint64_t wakes_ignored;         /* the device's rings left untaken */
    uint64_t doorbells_resent;      /* rings again: a request waited */
} VmmSimStats;

/* ---- lifecycle (vmm_sim.c) ---- */

/*
 * Create RAM and iobuf memfds and the two doorbell eventfds, map them,
 * zero the queues and listen on cfg->socket_path.
 */
VmmSim *vmm_sim_new(const VmmSimConfig *cfg, GError **errp);
/*
 * Accept the device side within @timeout_ms (< 0: forever), send hello.
 *
 * Once the device side has died (vmm_sim_peer_gone()), this accepts its
 * successor, as the deployed VMM lets a restarted QEMU attach: the
 * queues are NOT reset.  Requests still in drvrpc_req wait for the
 * successor (which also rolls back the claims its predecessor left
 * uncommitted); those the dead side had taken will never be answered,
 * so their ids are reclaimed and their accesses fail (VmmSimAccess.failed,
 * reads all-ones).  Registrations, START_VM and interrupt levels start
 * over; interrupt counts go on.
 */
bool vmm_sim_accept(VmmSim *sim, int timeout_ms, GError **errp);
/* Close everything, unlink the socket. */
void vmm_sim_free(VmmSim *sim);

/*
 * Wait up to @timeout_ms (-1: forever, 0: no wait) for the device side's
 * doorbell or death, then take every reply and event.  Returns how many
 * messages were taken (0: none), or -EPIPE once the device side is gone
 * (after taking what it left in the queues), -ENOTCONN before accept.
 */
int vmm_sim_poll(VmmSim *sim, int timeout_ms);

/*
 * Fault injection: a VMM that stops consuming.  For @ms from now (0: end
 * it), leave the device side's replies (VMM_SIM_HOLD_REPLIES) and/or
 * events (VMM_SIM_HOLD_EVENTS) in their queues; polls take them once the
 * hold ends.  The device side must wait for room, not drop anything.
 */
#define VMM_SIM_HOLD_REPLIES    1u
#define VMM_SIM_HOLD_EVENTS     2u
void vmm_sim_hold(VmmSim *sim, unsigned what, int ms);

/* Ring the VMM -> device doorbell (normally done by the MMIO calls). */
void vmm_sim_ring(VmmSim *sim);

/*
 * Doorbell faults at random moments (a soak): each ring of the device's
 * doorbell is dropped, duplicated or delayed by @delay_us with the given
 * chances (percent, from a PRNG seeded with @seed), and each wake-up by
 * the device's doorbell is ignored (taken only at the next poll) with
 * @ignore_pct.  A doorbell is only a hint, so a VMM repairs what a lost
 * one costs by ringing again: with @resend_ms, a wait that has requests
 * outstanding and took no reply for that long rings again (counted as
 * doorbells_resent; never dropped).  All zero: no faults (the default).
 */
typedef struct VmmSimDoorbellFaults {
    unsigned drop_pct, dup_pct, delay_pct, ignore_pct;
    unsigned delay_us;
    unsigned resend_ms;
    uint32_t seed;
} VmmSimDoorbellFaults;
void vmm_sim_set_doorbell_faults(VmmSim *sim, const VmmSimDoorbellFaults *f);

/*
 * The device -> VMM doorbell (an eventfd), for a caller that waits on
 * other fds too: poll it for POLLIN, then vmm_sim_poll(sim, 0).  Only a
 * hint: synchronous accesses take events too, so look at your state
 * before blocking.  -1 before vmm_sim_new() succeeded.
 */
int vmm_sim_doorbell_fd(const VmmSim *sim);
/*
 * The connection to the device side, for a caller that watches it for
 * the device's death (POLLRDHUP or POLLHUP; then vmm_sim_poll() says
 * -EPIPE).  -1 before vmm_sim_accept() succeeded.
 */
int vmm_sim_conn_fd(const VmmSim *sim);

/* ---- state (vmm_sim.c) ---- */

const VmmSimConfig *vmm_sim_config(const VmmSim *sim);
const char *vmm_sim_socket_path(const VmmSim *sim);
void *vmm_sim_ram(const VmmSim *sim);           /* host pointer of ram_base */
uint64_t vmm_sim_ram_size(const VmmSim *sim);
/* Host pointer of guest-physical @gpa..@gpa+@len, or NULL if not RAM. */
void *vmm_sim_gpa_to_host(const VmmSim *sim, uint64_t gpa, uint64_t len);
bool vmm_sim_connected(const VmmSim *sim);
bool vmm_sim_started(const VmmSim *sim);
bool vmm_sim_peer_gone(const VmmSim *sim);
/* Registrations in arrival order; *n is set to their number. */
const VmmSimPciDev *vmm_sim_pci_devs(const VmmSim *sim, unsigned *n);
/* The registration with QEMU index @index, or NULL. */
const VmmSimPciDev *vmm_sim_pci_dev(const VmmSim *sim, unsigned index);
const VmmSimRegion *vmm_sim_regions(const VmmSim *sim, unsigned *n);
void vmm_sim_get_stats(const VmmSim *sim, VmmSimStats *stats);
/* The driver side's queue library state (queue stats, broken flags). */
const VsoRpc *vmm_sim_rpc(const VmmSim *sim);

/* ---- interrupts (vmm_sim_events.c) ---- */

/* Current level of INTx n (< 32) or SPI INTID @irq (>= 32). */
bool vmm_sim_irq_level(const VmmSim *sim, unsigned irq);
/*
 * Assertions of @irq so far: clear->set transitions plus pulses.  For an
 * MSI SPI, the number of MSIs received.
 */
uint64_t vmm_sim_irq_count(const VmmSim *sim, unsigned irq);
/* OR of the INTx levels of every registered device. */
bool vmm_sim_intx_pending(const VmmSim *sim);
bool vmm_sim_is_msi_spi(const VmmSim *sim, unsigned irq);

/*
 * Poll until @cond returns true, the device side dies or @timeout_ms runs
 * out.  Returns whether @cond became true.
 */
typedef bool VmmSimCond(VmmSim *sim, void *opaque);
bool vmm_sim_wait_for(VmmSim *sim, VmmSimCond *cond, void *opaque,
                      int timeout_ms);
bool vmm_sim_wait_started(VmmSim *sim, int timeout_ms);
bool vmm_sim_wait_irq_count(VmmSim *sim, unsigned irq, uint64_t count,
                            int timeout_ms);
bool vmm_sim_wait_irq_level(VmmSim *sim, unsigned irq, bool level,
                            int timeout_ms);

/* ---- MMIO (vmm_sim_mmio.c) ---- */

/*
 * One access as a guest vCPU (slot 0..15) or VMM thread (16..31) makes
 * it.  as is AS_GLOBAL (addr: guest-physical, inside the PCIe MMIO/PIO
 * window or a MMIO_REGION_CONFIG region) or AS_PCIDEV(n) of a registered
 * device (addr: config offset < 4096).  len is 1, 2, 4 or 8.  Every access
 * needs START_VM first.
 */
typedef struct VmmSimAccess {
    unsigned slot;
    unsigned as;
    uint64_t addr;
    unsigned len;
    bool write;
    uint64_t data;              /* write data in; read data out */
    bool failed;                /* out: no device side will answer it */
} VmmSimAccess;

/*
 * Accesses sent with vmm_sim_mmio_send() and answered while the simulator
 * polls: @done of @n are answered, @failed of those were failed by the
 * VMM (the device side that took them died).
 */
typedef struct VmmSimBatch {
    VmmSimAccess *acc;
    rpcmsg_t *raw;              /* instead of acc: whole reply bodies */
    unsigned n;
    unsigned done;
    unsigned failed;
} VmmSimBatch;

bool vmm_sim_mmio_read(VmmSim *sim, unsigned slot, unsigned as,
                       uint64_t addr, unsigned len, uint64_t *val,
                       GError **errp);
bool vmm_sim_mmio_write(VmmSim *sim, unsigned slot, unsigned as,
                        uint64_t addr, unsigned len, uint64_t val,
                        GError **errp);
/*
 * Pipelined: enqueue as many of the @n accesses as the queue and the 32
 * message ids allow with one commit and ONE doorbell, go on as replies
 * free ids, and return when every access is answered (reads: acc[].data).
 * Requests are sent in order, so the device sees them in order.  Returns
 * false with @errp set (TIMEOUT after timeout_ms without progress,
 * PEER_GONE, INVALID before anything is sent); the read data of a failed
 * batch is then unspecified.
 */
bool vmm_sim_mmio_batch(VmmSim *sim, VmmSimAccess *acc, unsigned n,
                        GError **errp);

/*
 * Asynchronous: send the @n accesses (at most the free message ids) with
 * one commit and one doorbell, and return.  @b and @acc must stay valid
 * until every access is answered or vmm_sim_mmio_abandon().  Unlike a
 * synchronous call, such a batch outlives the device side's death: see
 * vmm_sim_accept() for what its successor answers.  Returns false (errp)
 * when not all could be sent; b->n then says how many were.
 */
bool vmm_sim_mmio_send(VmmSim *sim, VmmSimBatch *b, VmmSimAccess *acc,
                       unsigned n, GError **errp);
/* Poll until @b is answered, the device side dies, or @timeout_ms ends. */
bool vmm_sim_mmio_wait(VmmSim *sim, VmmSimBatch *b, int timeout_ms);
/* Stop tracking @b: its unanswered ids come back with late replies. */
void vmm_sim_mmio_abandon(VmmSim *sim, VmmSimBatch *b);

/*
 * Config space of registered device @dev_index (QEMU's index n), from
 * slot 16.  PCI_INTERRUPT_LINE (0x3c) and PCI_INTERRUPT_PIN (0x3d) are
 * answered here without an RPC: PIN reads 1 (INTA), LINE reads the
 * swizzled INTx INTID (writable by the guest, as on hardware).
 */
bool vmm_sim_config_read(VmmSim *sim, unsigned dev_index, unsigned offset,
                         unsigned len, uint64_t *val, GError **errp);
bool vmm_sim_config_write(VmmSim *sim, unsigned dev_index, unsigned offset,
                          unsigned len, uint64_t val, GError **errp);

#endif /* SEL4_VMM_SIM_H */
