/*
 * The simulated seL4 VMM: guest MMIO and PCI config accesses forwarded to
 * the device side as QEMU_OP_MMIO requests.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * As in tii-sel4-vm's io_proxy: each request names the waiter (slot) that
 * stays blocked until its reply, takes a message id the VMM lends it, and
 * is completed by id when the reply comes back on drvrpc_resp.  A request
 * whose caller gave up (timeout, device death) keeps its id until a late
 * reply returns it: the id cannot be reused while the device may still
 * write its body.
 */
#include <errno.h>

#include "vmm_sim_int.h"

#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d
#define PCI_CONFIG_SPACE_SIZE   4096u

static uint64_t len_mask(unsigned len)
{
    return len >= 8 ? UINT64_MAX : (UINT64_C(1) << (len * 8)) - 1;
}

static bool in_window(uint64_t addr, unsigned len, uint64_t base,
                      uint64_t size)
{
    return addr >= base && addr - base < size && len <= size - (addr - base);
}

static bool check_access(VmmSim *sim, const VmmSimAccess *a, GError **errp)
{
    unsigned i;

    if (sim->conn < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_CONNECTED,
                    "vmm-sim: no device side connected");
        return false;
    }
    if (sim->peer_gone) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_PEER_GONE,
                    "vmm-sim: the device side has hung up");
        return false;
    }
    if (!sim->started) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED,
                    "vmm-sim: the device side has not sent START_VM yet");
        return false;
    }
    if (a->slot > VMM_SIM_MAX_SLOT) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: waiter slot %u > %u", a->slot,
                    VMM_SIM_MAX_SLOT);
        return false;
    }
    if (a->len != 1 && a->len != 2 && a->len != 4 && a->len != 8) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: access length %u is not 1, 2, 4 or 8", a->len);
        return false;
    }
    if (a->as == AS_GLOBAL) {
        if (in_window(a->addr, a->len, sim->cfg.pci_mmio_base,
                      sim->cfg.pci_mmio_size + SIM_PCI_PIO_SIZE)) {
            return true;
        }
        for (i = 0; i < sim->nregions; i++) {
            if (in_window(a->addr, a->len, sim->mmio_regions[i].base,
                          sim->mmio_regions[i].size)) {
                return true;
            }
        }
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: address 0x%" G_GINT64_MODIFIER "x+%u is in "
                    "no forwarded window", a->addr, a->len);
        return false;
    }
    if (a->as >= RPC_MAX_PCIDEV || sim->dev_by_index[a->as] < 0) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: address space %u is no registered device",
                    a->as);
        return false;
    }
    if (!in_window(a->addr, a->len, 0, PCI_CONFIG_SPACE_SIZE)) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID,
                    "vmm-sim: config offset 0x%" G_GINT64_MODIFIER "x+%u "
                    "outside config space", a->addr, a->len);
        return false;
    }
    return true;
}

void vmm_sim_complete(VmmSimPending *p, const rpcmsg_t *reply)
{
    if (p->batch->raw) {
        p->batch->raw[p->idx] = *reply;
    } else if (!p->batch->acc[p->idx].write) {
        VmmSimAccess *a = &p->batch->acc[p->idx];

        a->data = reply->mr2 & len_mask(a->len);
    }
    p->batch->done++;
    p->batch = NULL;
    p->state = VMM_SIM_FREE;
}

void vmm_sim_fail(VmmSimPending *p)
{
    /* what a read of nothing returns on a PCI bus */
    rpcmsg_t reply = { .mr0 = p->mr0, .mr2 = UINT64_MAX };

    if (p->batch->acc) {
        p->batch->acc[p->idx].failed = true;
    }
    p->batch->failed++;
    vmm_sim_complete(p, &reply);
}

/* Give up on the batch's requests in flight; their ids return with a reply. */
static void abandon(VmmSim *sim, VmmSimBatch *b)
{
    unsigned i;

    for (i = 0; i < RPCMSG_BUFFER_SIZE; i++) {
        VmmSimPending *p = &sim->pending[i];

        if (p->state == VMM_SIM_WAITING && p->batch == b) {
            p->state = VMM_SIM_ABANDONED;
            p->batch = NULL;
        }
    }
}

static bool fail_timeout(VmmSim *sim, const char *what, GError **errp)
{
    sim->stats.timeouts++;
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT,
                "vmm-sim: %s from the device side within %d ms", what,
                sim->cfg.timeout_ms);
    return false;
}

static bool fail_peer_gone(unsigned missing, GError **errp)
{
    g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_PEER_GONE,
                "vmm-sim: the device side hung up with %u request(s) "
                "unanswered", missing);
    return false;
}

/*
 * Send every access, as many per enqueue (and doorbell) as the queue and
 * the free message ids allow, and wait for every reply.  The deadline
 * restarts whenever the device makes progress.
 */
static bool run_batch(VmmSim *sim, VmmSimBatch *b, const rpcmsg_t *msgs,
                      unsigned n, GError **errp)
{
    gint64 timeout_us = (gint64)sim->cfg.timeout_ms * 1000;
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    unsigned sent = 0, done = 0, i;

    while (b->done < n) {
        gint64 left;

        if (sent < n) {
            uint16_t ids[RPCMSG_BUFFER_SIZE];
            int r = vso_rpc_call(&sim->rpc, &msgs[sent],
                                 MIN(n - sent, RPCMSG_BUFFER_SIZE), ids);

            if (r < 0 && r != -EAGAIN) {
                g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                            "vmm-sim: drvrpc_req is broken: %s",
                            sim->rpc.req.broken_reason);
                return false;
            }
            for (i = 0; r > 0 && i < (unsigned)r; i++) {
                VmmSimPending *p = &sim->pending[ids[i]];

                p->state = VMM_SIM_WAITING;
                p->mr0 = msgs[sent + i].mr0;
                p->batch = b;
                p->idx = sent + i;
            }
            if (r > 0) {
                sim->stats.requests += r;
                sent += r;
                vmm_sim_ring(sim);      /* once per enqueued batch */
                deadline = g_get_monotonic_time() + timeout_us;
                if (sent < n) {
                    continue;           /* more room? try at once */
                }
            }
        }
        if (b->done != done) {
            done = b->done;
            deadline = g_get_monotonic_time() + timeout_us;
            continue;
        }
        left = (deadline - g_get_monotonic_time() + 999) / 1000;
        if (left <= 0) {
            return fail_timeout(sim, sent < n ? "no room" : "no reply", errp);
        }
        if (vmm_sim_pump(sim, (int)left) < 0 && b->done < n) {
            return fail_peer_gone(n - b->done, errp);
        }
    }
    return true;
}

bool vmm_sim_run_batch(VmmSim *sim, VmmSimBatch *b, const rpcmsg_t *msgs,
                       unsigned n, GError **errp)
{
    if (!run_batch(sim, b, msgs, n, errp)) {
        abandon(sim, b);
        return false;
    }
    return true;
}

/* Check @n accesses and build their requests (NULL: errp set). */
static rpcmsg_t *build_requests(VmmSim *sim, VmmSimAccess *acc, unsigned n,
                                GError **errp)
{
    rpcmsg_t *msgs;
    unsigned i;

    for (i = 0; i < n; i++) {
        if (!check_access(sim, &acc[i], errp)) {
            return NULL;
        }
    }
    msgs = g_new0(rpcmsg_t, MAX(n, 1));
    for (i = 0; i < n; i++) {
        acc[i].failed = false;
        msgs[i].mr0 = rpc_mr0_mmio(acc[i].write ? RPC_MR0_MMIO_DIRECTION_WRITE
                                                : RPC_MR0_MMIO_DIRECTION_READ,
                                   acc[i].as, acc[i].slot, acc[i].len);
        msgs[i].mr1 = acc[i].addr;
        msgs[i].mr2 = acc[i].write ? acc[i].data & len_mask(acc[i].len) : 0;
    }
    return msgs;
}

bool vmm_sim_mmio_batch(VmmSim *sim, VmmSimAccess *acc, unsigned n,
                        GError **errp)
{
    g_autofree rpcmsg_t *msgs = build_requests(sim, acc, n, errp);
    VmmSimBatch b = { .acc = acc, .n = n };

    return msgs && vmm_sim_run_batch(sim, &b, msgs, n, errp);
}

bool vmm_sim_mmio_send(VmmSim *sim, VmmSimBatch *b, VmmSimAccess *acc,
                       unsigned n, GError **errp)
{
    g_autofree rpcmsg_t *msgs = build_requests(sim, acc, n, errp);
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    int r;

    *b = (VmmSimBatch) { .acc = acc };
    if (!msgs) {
        return false;
    }
    r = vso_rpc_call(&sim->rpc, msgs, MIN(n, RPCMSG_BUFFER_SIZE), ids);
    for (int i = 0; i < r; i++) {
        VmmSimPending *p = &sim->pending[ids[i]];

        *p = (VmmSimPending) {
            .state = VMM_SIM_WAITING, .mr0 = msgs[i].mr0, .batch = b, .idx = i,
        };
    }
    if (r > 0) {
        b->n = r;
        sim->stats.requests += r;
        vmm_sim_ring(sim);
    }
    if (r != (int)n) {
        g_set_error(errp, VMM_SIM_ERROR, VMM_SIM_ERROR_FAILED,
                    "vmm-sim: sent %d of %u requests (free ids: %u%s)",
                    MAX(r, 0), n,
                    RPCMSG_BUFFER_SIZE - vso_rpc_owned(&sim->rpc),
                    r < 0 ? ", drvrpc_req refused" : "");
        return false;
    }
    return true;
}

static bool cond_batch_done(VmmSim *sim, void *opaque)
{
    VmmSimBatch *b = opaque;

    return b->done == b->n;
}

bool vmm_sim_mmio_wait(VmmSim *sim, VmmSimBatch *b, int timeout_ms)
{
    return vmm_sim_wait_for(sim, cond_batch_done, b, timeout_ms);
}

void vmm_sim_mmio_abandon(VmmSim *sim, VmmSimBatch *b)
{
    abandon(sim, b);
}

bool vmm_sim_mmio_read(VmmSim *sim, unsigned slot, unsigned as,
                       uint64_t addr, unsigned len, uint64_t *val,
                       GError **errp)
{
    VmmSimAccess a = { .slot = slot, .as = as, .addr = addr, .len = len };

    if (!vmm_sim_mmio_batch(sim, &a, 1, errp)) {
        return false;
    }
    *val = a.data;
    return true;
}

bool vmm_sim_mmio_write(VmmSim *sim, unsigned slot, unsigned as,
                        uint64_t addr, unsigned len, uint64_t val,
                        GError **errp)
{
    VmmSimAccess a = {
        .slot = slot, .as = as, .addr = addr, .len = len, .write = true,
        .data = val,
    };

    return vmm_sim_mmio_batch(sim, &a, 1, errp);
}

/* ---- PCI config space, with INTERRUPT_LINE/PIN answered here ---- */

/* Byte @off (0x3c or 0x3d) of device @index as the VMM answers it. */
static uint8_t local_byte(VmmSim *sim, unsigned index, unsigned off)
{
    return off == PCI_INTERRUPT_LINE ? sim->intx_line[index] : 1; /* INTA */
}

static bool overlaps_local(unsigned offset, unsigned len)
{
    return offset < PCI_INTERRUPT_PIN + 1 && offset + len > PCI_INTERRUPT_LINE;
}

static bool only_local(unsigned offset, unsigned len)
{
    return offset >= PCI_INTERRUPT_LINE &&
           offset + len <= PCI_INTERRUPT_PIN + 1;
}

bool vmm_sim_config_read(VmmSim *sim, unsigned dev_index, unsigned offset,
                         unsigned len, uint64_t *val, GError **errp)
{
    VmmSimAccess a = {
        .slot = VMM_SIM_CONFIG_SLOT, .as = AS_PCIDEV(dev_index),
        .addr = offset, .len = len,
    };
    unsigned off;

    if (!check_access(sim, &a, errp)) {
        return false;
    }
    if (only_local(offset, len)) {
        sim->stats.local_config++;
        a.data = 0;
    } else if (!vmm_sim_mmio_batch(sim, &a, 1, errp)) {
        return false;
    }
    for (off = PCI_INTERRUPT_LINE; off <= PCI_INTERRUPT_PIN; off++) {
        if (overlaps_local(offset, len) && off >= offset &&
            off < offset + len) {
            unsigned shift = (off - offset) * 8;

            a.data &= ~(UINT64_C(0xff) << shift);
            a.data |= (uint64_t)local_byte(sim, dev_index, off) << shift;
        }
    }
    *val = a.data;
    return true;
}

bool vmm_sim_config_write(VmmSim *sim, unsigned dev_index, unsigned offset,
                          unsigned len, uint64_t val, GError **errp)
{
    VmmSimAccess a = {
        .slot = VMM_SIM_CONFIG_SLOT, .as = AS_PCIDEV(dev_index),
        .addr = offset, .len = len, .write = true, .data = val,
    };

    if (!check_access(sim, &a, errp)) {
        return false;
    }
    if (overlaps_local(offset, len) && offset <= PCI_INTERRUPT_LINE) {
        /* LINE is scratch for the guest; PIN is read-only. */
        sim->intx_line[dev_index] = val >> ((PCI_INTERRUPT_LINE - offset) * 8);
    }
    if (only_local(offset, len)) {
        sim->stats.local_config++;
        return true;
    }
    return vmm_sim_mmio_batch(sim, &a, 1, errp);
}
