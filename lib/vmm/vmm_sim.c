/*
 * The simulated seL4 VMM: lifecycle, the doorbells and the poll loop.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The wait is a plain poll(2) on two fds: the device -> VMM doorbell
 * eventfd and the connection socket.  The io_uring engine
 * (io/uring_doorbell.c) only watches doorbells, while the simulator must
 * notice the device side's death in the same wait, and it runs one
 * blocked "vCPU" at a time, so a ring of its own would buy nothing.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm_sim_int.h"

GQuark vmm_sim_error_quark(void)
{
    return g_quark_from_static_string("vmm-sim-error-quark");
}

static void config_defaults(VmmSimConfig *c)
{
    if (!c->vmid) {
        c->vmid = VMM_SIM_DEFAULT_VMID;
    }
    if (!c->ram_size) {
        c->ram_base = c->ram_base ? c->ram_base : VMM_SIM_DEFAULT_RAM_BASE;
        c->ram_size = VMM_SIM_DEFAULT_RAM_SIZE;
    }
    if (!c->ram_base) {
        c->ram_base = VMM_SIM_DEFAULT_RAM_BASE;
    }
    if (!c->pci_mmio_size) {
        c->pci_mmio_base = VMM_SIM_DEFAULT_PCI_MMIO_BASE;
        c->pci_mmio_size = VMM_SIM_DEFAULT_PCI_MMIO_SIZE;
    }
    if (!c->gicv2m_base) {
        c->gicv2m_base = VMM_SIM_DEFAULT_GICV2M_BASE;
    }
    if (!c->msi_spi_count) {
        c->msi_spi_base = VMM_SIM_DEFAULT_MSI_SPI_BASE;
        c->msi_spi_count = VMM_SIM_DEFAULT_MSI_SPI_COUNT;
    }
    if (!c->timeout_ms) {
        c->timeout_ms = VMM_SIM_DEFAULT_TIMEOUT_MS;
    }
}

void vmm_sim_state_init(VmmSim *sim, const VmmSimConfig *cfg)
{
    unsigned i;

    memset(sim, 0, sizeof(*sim));
    sim->cfg = *cfg;
    config_defaults(&sim->cfg);
    sim->listen_fd = sim->conn = -1;
    for (i = 0; i < SIM_FD_COUNT; i++) {
        sim->fds[i] = -1;
    }
    for (i = 0; i < RPC_MAX_PCIDEV; i++) {
        sim->dev_by_index[i] = -1;
    }
}

VmmSim *vmm_sim_new(const VmmSimConfig *cfg, GError **errp)
{
    gid_t group = (gid_t)-1;
    VmmSim *sim;
    unsigned i;

    if (!cfg || !cfg->socket_path) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: no socket path");
        return NULL;
    }
    sim = g_new(VmmSim, 1);
    vmm_sim_state_init(sim, cfg);
    sim->socket_path = g_strdup(cfg->socket_path);
    sim->cfg.socket_path = sim->socket_path;
    if (sim->cfg.msi_spi_base < 32 ||
        sim->cfg.msi_spi_base + sim->cfg.msi_spi_count > VMM_SIM_MAX_IRQ) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: MSI SPI range %u+%u outside 32..%u",
                    sim->cfg.msi_spi_base, sim->cfg.msi_spi_count,
                    VMM_SIM_MAX_IRQ - 1);
        goto fail;
    }

    sim_hello_init(&sim->hello, sim->cfg.vmid, sim->cfg.ram_base,
                   sim->cfg.ram_size, sim->cfg.pci_mmio_base,
                   sim->cfg.pci_mmio_size);
    if (sim_transport_create_fds_with_ram(&sim->hello,
                                          cfg->has_ram_fd ? cfg->ram_fd : -1,
                                          sim->fds, errp) < 0) {
        goto fail;
    }
    /* Check our own hello as the device side will (overlaps, sizes). */
    if (!sim_transport_validate(&sim->hello, sim->fds, errp) ||
        sim_transport_map(&sim->hello, sim->fds, &sim->regions, errp) < 0) {
        goto fail;
    }
    if (vso_rpc_init(&sim->rpc, sim->regions.iobuf, RPC_IOBUF_SIZE,
                     VSO_RPC_DRIVER, RPC_QUEUE_DRVRPC_REQ) < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "vmm-sim: cannot attach to the iobuf");
        goto fail;
    }
    /* The VMM owns the queues at boot. */
    for (i = 0; i < RPC_QUEUE_COUNT; i++) {
        VsoQueue q;

        vso_queue_init(&q, &sim->rpc.iobuf->queues[i], NULL, "boot");
        vso_queue_reset(&q);
    }
    if (cfg->socket_group) {
        struct group *g = getgrnam(cfg->socket_group);

        if (!g) {
            g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                        "vmm-sim: socket group '%s': no such group",
                        cfg->socket_group);
            goto fail;
        }
        group = g->gr_gid;
    }
    sim->listen_fd = sim_transport_listen_group(sim->socket_path, group,
                                                errp);
    if (sim->listen_fd < 0) {
        goto fail;
    }
    return sim;

fail:
    vmm_sim_free(sim);
    return NULL;
}

/*
 * The ids of the requests still in drvrpc_req: from the dead device
 * side's committed consumer head (its uncommitted claims are rolled back
 * by the successor) to our producer head.  The ring entries there are
 * ours; a head that is impossible leaves nothing queued.
 */
static uint32_t still_queued(VmmSim *sim)
{
    rpcmsg_queue_t *q = sim->rpc.req.q;
    rpcmsg_marker_t prod, cons;
    uint32_t ids = 0, pending;

    prod.raw = __atomic_load_n(&q->prod.head.raw, __ATOMIC_ACQUIRE);
    cons.raw = __atomic_load_n(&q->cons.head.raw, __ATOMIC_ACQUIRE);
    pending = prod.pos - cons.pos;
    if (pending > RPCMSG_BUFFER_SIZE) {
        return 0;
    }
    for (uint32_t i = 1; i <= pending; i++) {
        uint16_t id = q->ring[(prod.pos - i) & RPCMSG_BUFFER_MASK];

        ids |= UINT32_C(1) << (id & RPCMSG_BUFFER_MASK);
    }
    return ids;
}

/*
 * Before a successor attaches (see vmm_sim_accept()): take what the dead
 * side published, fail what it took and never answered, forget its
 * devices.  The successor cannot touch the queues before our hello, and
 * the dead side cannot any more, so this runs without races.
 */
static void forget_device_side(VmmSim *sim)
{
    uint32_t queued;
    unsigned i;

    vmm_sim_take(sim);
    queued = still_queued(sim);
    for (i = 0; i < RPCMSG_BUFFER_SIZE; i++) {
        VmmSimPending *p = &sim->pending[i];

        if (p->state == VMM_SIM_FREE || (queued & (UINT32_C(1) << i))) {
            continue;
        }
        vso_rpc_reclaim(&sim->rpc, i);
        sim->stats.reclaimed++;
        if (p->state == VMM_SIM_WAITING) {
            vmm_sim_fail(p);
        } else {
            p->state = VMM_SIM_FREE;
        }
    }
    close(sim->conn);
    sim->conn = -1;
    sim->peer_gone = false;
    sim->started = false;
    sim->ndevs = 0;
    sim->nregions = 0;
    for (i = 0; i < RPC_MAX_PCIDEV; i++) {
        sim->dev_by_index[i] = -1;
    }
    memset(sim->irq_level, 0, sizeof(sim->irq_level));
    sim->stats.reconnects++;
}

bool vmm_sim_accept(VmmSim *sim, int timeout_ms, GError **errp)
{
    struct pollfd pfd = { .fd = sim->listen_fd, .events = POLLIN };
    int r;

    if (sim->conn >= 0 && sim->peer_gone) {
        forget_device_side(sim);
    }
    if (sim->conn >= 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: a device side is already connected");
        return false;
    }
    do {
        r = poll(&pfd, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "vmm-sim: poll on %s: %s", sim->socket_path,
                    g_strerror(errno));
        return false;
    }
    if (r == 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                    "vmm-sim: no device side connected to %s within %d ms",
                    sim->socket_path, timeout_ms);
        return false;
    }
    sim->conn = sim_transport_accept(sim->listen_fd, errp);
    if (sim->conn < 0) {
        return false;
    }
    if (sim_transport_send_hello(sim->conn, &sim->hello, sim->fds,
                                 errp) < 0) {
        close(sim->conn);
        sim->conn = -1;
        return false;
    }
    return true;
}

void vmm_sim_free(VmmSim *sim)
{
    if (!sim) {
        return;
    }
    if (sim->conn >= 0) {
        close(sim->conn);
    }
    if (sim->listen_fd >= 0) {
        close(sim->listen_fd);
        unlink(sim->socket_path);
    }
    sim_transport_unmap(&sim->regions);
    sim_transport_close_fds(sim->fds);
    g_clear_pointer(&sim->fault_rand, g_rand_free);
    g_free(sim->socket_path);
    g_free(sim);
}

/* cfg.doorbell_ns: the CPU a doorbell costs on seL4, spent here. */
static void doorbell_charge(const VmmSim *sim)
{
    struct timespec t;
    int64_t until;

    if (!sim->cfg.doorbell_ns) {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    until = t.tv_sec * G_GINT64_CONSTANT(1000000000) + t.tv_nsec +
            sim->cfg.doorbell_ns;
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec * G_GINT64_CONSTANT(1000000000) + t.tv_nsec < until);
}

static void ring_now(VmmSim *sim)
{
    uint64_t one = 1;
    uint32_t *consume =
        (uint32_t *)(sim->regions.event_bar + SEL4_EVENT_BAR_CONSUME);

    /* The CONSUME counter is informational in `sim`; the eventfd rings. */
    __atomic_fetch_add(consume, 1, __ATOMIC_RELEASE);
    if (write(sim->fds[SIM_FD_DOORBELL_TO_DEVICE], &one, sizeof(one)) ==
        sizeof(one)) {
        sim->stats.doorbells_tx++;
    }
    doorbell_charge(sim);
}

/* Whether the fault of chance @pct (percent) strikes now. */
static bool fault_strikes(VmmSim *sim, unsigned pct)
{
    return pct && sim->fault_rand &&
           (unsigned)g_rand_int_range(sim->fault_rand, 0, 100) < pct;
}

void vmm_sim_ring(VmmSim *sim)
{
    const VmmSimDoorbellFaults *f = &sim->faults;

    sim->last_progress = g_get_monotonic_time();
    if (fault_strikes(sim, f->drop_pct)) {
        sim->stats.doorbells_dropped++;
        return;
    }
    if (fault_strikes(sim, f->delay_pct)) {
        sim->stats.doorbells_delayed++;
        g_usleep(f->delay_us);
    }
    ring_now(sim);
    if (fault_strikes(sim, f->dup_pct)) {
        sim->stats.doorbells_duplicated++;
        ring_now(sim);
    }
}

void vmm_sim_set_doorbell_faults(VmmSim *sim, const VmmSimDoorbellFaults *f)
{
    sim->faults = *f;
    g_clear_pointer(&sim->fault_rand, g_rand_free);
    if (f->drop_pct || f->dup_pct || f->delay_pct || f->ignore_pct) {
        sim->fault_rand = g_rand_new_with_seed(f->seed);
    }
}

/*
 * A lost doorbell's repair: requests outstanding, no reply taken for
 * resend_ms (nor a ring since): ring again, past the faults.
 */
static void resend_if_stuck(VmmSim *sim)
{
    gint64 now = g_get_monotonic_time();

    if (sim->faults.resend_ms && vso_rpc_owned(&sim->rpc) > 0 &&
        !sim->peer_gone &&
        now - sim->last_progress >= (gint64)sim->faults.resend_ms * 1000) {
        sim->stats.doorbells_resent++;
        sim->last_progress = now;
        ring_now(sim);
    }
}

void vmm_sim_hold(VmmSim *sim, unsigned what, int ms)
{
    gint64 until = ms > 0 ? g_get_monotonic_time() + (gint64)ms * 1000 : 0;

    if (what & VMM_SIM_HOLD_REPLIES) {
        sim->hold_replies_until = until;
    }
    if (what & VMM_SIM_HOLD_EVENTS) {
        sim->hold_events_until = until;
    }
}

/* Whether a hold ending at @until is on; if so, cap *@left_ms to its rest. */
static bool held(gint64 until, int *left_ms)
{
    gint64 left = until - g_get_monotonic_time();

    if (left <= 0) {
        return false;
    }
    if (left_ms) {
        *left_ms = MIN(*left_ms < 0 ? INT_MAX : *left_ms,
                       (int)((left + 999) / 1000));
    }
    return true;
}

static void take_replies(VmmSim *sim, int *taken)
{
    VsoRequest rep[RPCMSG_BUFFER_SIZE];
    int n, i;

    if (held(sim->hold_replies_until, NULL)) {
        return;
    }
    while ((n = vso_rpc_collect(&sim->rpc, rep, RPCMSG_BUFFER_SIZE)) > 0) {
        for (i = 0; i < n; i++) {
            VmmSimPending *p = &sim->pending[rep[i].id];

            sim->stats.replies++;
            (*taken)++;
            if (p->state == VMM_SIM_ABANDONED) {
                sim->stats.late_replies++;
                p->state = VMM_SIM_FREE;
                continue;
            }
            if (p->state != VMM_SIM_WAITING) {
                /* vso_rpc only hands back ids it lent: cannot happen */
                sim->stats.protocol_errors++;
                continue;
            }
            if (rep[i].msg.mr0 != p->mr0) {
                /* The device may only write mr2 of a reply. */
                sim->stats.protocol_errors++;
                sim->stats.bad_replies++;
            }
            vmm_sim_complete(p, &rep[i].msg);
        }
    }
}

static void take_events(VmmSim *sim, int *taken)
{
    rpcmsg_t msgs[RPCMSG_BUFFER_SIZE];
    int pending;
    int n, i;

    if (held(sim->hold_events_until, NULL)) {
        return;
    }
    pending = vso_queue_pending(&sim->rpc.evt);
    while ((n = vso_rpc_recv_events(&sim->rpc, msgs,
                                    RPCMSG_BUFFER_SIZE)) > 0) {
        for (i = 0; i < n; i++) {
            sim->stats.events++;
            (*taken)++;
            vmm_sim_handle_event(sim, &msgs[i]);
        }
    }
    /*
     * A full devevt is back-pressure: the device side retries after our
     * next doorbell, so give it one now that there is room.
     */
    if (pending >= (int)RPCMSG_BUFFER_SIZE && sim->conn >= 0 &&
        !sim->peer_gone) {
        vmm_sim_ring(sim);
    }
}

int vmm_sim_take(VmmSim *sim)
{
    int taken = 0;

    take_replies(sim, &taken);
    if (!sim->ignore_events) {
        take_events(sim, &taken);
    }
    return taken;
}

int vmm_sim_pump(VmmSim *sim, int timeout_ms)
{
    struct pollfd pfd[2] = {
        { .fd = sim->fds[SIM_FD_DOORBELL_TO_VMM], .events = POLLIN },
        { .fd = sim->conn, .events = POLLIN | POLLRDHUP },
    };
    int taken;
    int r;

    if (sim->conn < 0) {
        return -ENOTCONN;
    }
    /* A doorbell is only a hint: look at the queues first. */
    taken = vmm_sim_take(sim);
    if (taken) {
        sim->last_progress = g_get_monotonic_time();
    }
    if (taken || sim->peer_gone) {
        return sim->peer_gone && !taken ? -EPIPE : taken;
    }
    resend_if_stuck(sim);
    /* wake up when a hold ends: what waits is taken then */
    held(sim->hold_replies_until, &timeout_ms);
    held(sim->hold_events_until, &timeout_ms);
    /* ... and when a resend is due */
    if (sim->faults.resend_ms &&
        (timeout_ms < 0 || timeout_ms > (int)sim->faults.resend_ms)) {
        timeout_ms = sim->faults.resend_ms;
    }

    do {
        r = poll(pfd, 2, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        return 0;
    }
    if (pfd[0].revents & POLLIN) {
        uint64_t count;

        /* We are the only reader and it is readable: does not block. */
        if (read(pfd[0].fd, &count, sizeof(count)) == sizeof(count)) {
            sim->stats.doorbells_rx++;
            doorbell_charge(sim);
        }
        if (fault_strikes(sim, sim->faults.ignore_pct) && !pfd[1].revents) {
            /* taken at the next pump, which looks at the queues first */
            sim->stats.wakes_ignored++;
            return 0;
        }
    }
    if (pfd[1].revents) {
        /*
         * Hang-up, error, or bytes after the hello (a violation treated
         * the same): the device side is dead to us.
         */
        sim->peer_gone = true;
    }
    taken = vmm_sim_take(sim);
    if (taken) {
        sim->last_progress = g_get_monotonic_time();
    }
    return sim->peer_gone && !taken ? -EPIPE : taken;
}

int vmm_sim_poll(VmmSim *sim, int timeout_ms)
{
    return vmm_sim_pump(sim, timeout_ms);
}

bool vmm_sim_wait_for(VmmSim *sim, VmmSimCond *cond, void *opaque,
                      int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        gint64 left;

        if (cond(sim, opaque)) {
            return true;
        }
        left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0 || sim->conn < 0) {
            return false;
        }
        if (vmm_sim_pump(sim, (int)MIN(left, 100)) < 0) {
            return cond(sim, opaque);
        }
    }
}

static bool cond_started(VmmSim *sim, void *opaque)
{
    return sim->started;
}

bool vmm_sim_wait_started(VmmSim *sim, int timeout_ms)
{
    return vmm_sim_wait_for(sim, cond_started, NULL, timeout_ms);
}

/* ---- accessors ---- */

const VmmSimConfig *vmm_sim_config(const VmmSim *sim)
{
    return &sim->cfg;
}

const char *vmm_sim_socket_path(const VmmSim *sim)
{
    return sim->socket_path;
}

void *vmm_sim_ram(const VmmSim *sim)
{
    return sim->regions.ram;
}

uint64_t vmm_sim_ram_size(const VmmSim *sim)
{
    return sim->cfg.ram_size;
}

void *vmm_sim_gpa_to_host(const VmmSim *sim, uint64_t gpa, uint64_t len)
{
    uint64_t off = gpa - sim->cfg.ram_base;

    if (gpa < sim->cfg.ram_base || off > sim->cfg.ram_size ||
        len > sim->cfg.ram_size - off) {
        return NULL;
    }
    return (uint8_t *)sim->regions.ram + off;
}

bool vmm_sim_connected(const VmmSim *sim)
{
    return sim->conn >= 0 && !sim->peer_gone;
}

bool vmm_sim_started(const VmmSim *sim)
{
    return sim->started;
}

bool vmm_sim_peer_gone(const VmmSim *sim)
{
    return sim->peer_gone;
}

int vmm_sim_doorbell_fd(const VmmSim *sim)
{
    return sim->fds[SIM_FD_DOORBELL_TO_VMM];
}

int vmm_sim_conn_fd(const VmmSim *sim)
{
    return sim->conn;
}

const VmmSimPciDev *vmm_sim_pci_devs(const VmmSim *sim, unsigned *n)
{
    *n = sim->ndevs;
    return sim->devs;
}

const VmmSimPciDev *vmm_sim_pci_dev(const VmmSim *sim, unsigned index)
{
    if (index >= RPC_MAX_PCIDEV || sim->dev_by_index[index] < 0) {
        return NULL;
    }
    return &sim->devs[sim->dev_by_index[index]];
}

const VmmSimRegion *vmm_sim_regions(const VmmSim *sim, unsigned *n)
{
    *n = sim->nregions;
    return sim->mmio_regions;
}

void vmm_sim_get_stats(const VmmSim *sim, VmmSimStats *stats)
{
    *stats = sim->stats;
}

const VsoRpc *vmm_sim_rpc(const VmmSim *sim)
{
    return &sim->rpc;
}
