/*
 * seL4 accelerator: reaching the VMM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Whatever the transport, attaching leaves us with the iobuf mapped, the
 * guest RAM as an fd the machine maps (memory_region_init_ram_from_fd),
 * the guest address map, a doorbell fd the VMM rings, and a way to ring
 * the VMM back:
 *  - sim: the simulated VMM's memfds and eventfds (sel4/sim_transport.h);
 *  - uio: the device VM's /dev/uioN functions (sel4/uio_transport.h).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "sel4-internal.h"
#include "trace.h"

/* ---- doorbells ---- */

uint64_t sel4_doorbell_drain(Sel4State *s)
{
    uint64_t count = 0;
    uint32_t irqs = 0, one = 1;
    ssize_t r;

    if (!s->doorbell_is_uio) {
        /* the eventfd is O_NONBLOCK: EAGAIN is a stale wake-up */
        do {
            r = read(s->doorbell_fd, &count, sizeof(count));
        } while (r < 0 && errno == EINTR);
        return r == sizeof(count) ? count : 0;
    }
    /* UIO: the irq count, then a write of 1 re-enables the interrupt */
    do {
        r = read(s->doorbell_fd, &irqs, sizeof(irqs));
    } while (r < 0 && errno == EINTR);
    if (r == sizeof(irqs)) {
        if (write(s->doorbell_fd, &one, sizeof(one)) != sizeof(one)) {
            error_report_once("sel4: re-enabling the UIO interrupt failed: "
                              "%s", strerror(errno));
            sel4_error(s, "uio_irq_enable", errno, 0);
        }
        return irqs;
    }
    return 0;
}

void sel4_ring_vmm(Sel4State *s)
{
    uint64_t one = 1;
    ssize_t r;

    s->stats.doorbells_out++;
    trace_sel4_doorbell_ring(s->stats.doorbells_out);
    if (s->ring_fd < 0) {
        /*
         * The EMIT store faults into the VMM: everything we published
         * must be visible before it.
         */
        smp_mb();
        qatomic_set((uint32_t *)(s->event_bar + SIM_EVENT_BAR_EMIT), 1);
        return;
    }
    do {
        r = write(s->ring_fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
    /* EAGAIN: the counter is near overflow, so a ring is pending anyway */
    if (r < 0 && errno != EAGAIN) {
        error_report_once("sel4: ringing the VMM failed: %s",
                          strerror(errno));
        sel4_error(s, "ring", errno, 0);
    }
}

/* ---- sim ---- */

static bool sel4_attach_sim(Sel4State *s, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    SimHello hello = { 0 }, *h = &hello;
    void *region;

    if (!s->socket || !*s->socket) {
        error_setg(errp, "sel4: transport=sim needs socket=PATH");
        return false;
    }
    s->conn = sim_transport_connect(s->socket, h, s->sim_fds, &gerr);
    if (s->conn < 0) {
        error_setg(errp, "sel4: cannot attach to the VMM at '%s': %s",
                   s->socket, gerr->message);
        return false;
    }
    /* validated by sim_transport_connect(): sizes, seals, fd kinds */
    region = mmap(NULL, h->iobuf_region_size, PROT_READ | PROT_WRITE,
                  MAP_SHARED, s->sim_fds[SIM_FD_IOBUF], 0);
    if (region == MAP_FAILED) {
        error_setg_errno(errp, errno, "sel4: cannot map the VMM's iobuf");
        return false;
    }
    s->iobuf_region = region;
    s->iobuf_region_size = h->iobuf_region_size;
    s->event_bar = (uint8_t *)region + SIM_IOBUF_REGION_EVENT_BAR;

    s->layout = (Sel4GuestLayout) {
        .vmid = h->vmid,
        .ram_base = h->ram_base,
        .ram_size = h->ram_size,
        .ram_fd = s->sim_fds[SIM_FD_RAM],
        .ram_fd_offset = 0,
        .pci_mmio_base = h->pci_mmio_base,
        .pci_mmio_size = h->pci_mmio_size,
        .pci_pio_size = SIM_PCI_PIO_SIZE,
    };
    s->sim_fds[SIM_FD_RAM] = -1;    /* the machine's now */
    s->doorbell_fd = s->sim_fds[SIM_FD_DOORBELL_TO_DEVICE];
    s->ring_fd = s->sim_fds[SIM_FD_DOORBELL_TO_VMM];
    s->doorbell_is_uio = false;
    return true;
}

/* ---- common ---- */

bool sel4_transport_attach(Sel4State *s, Error **errp)
{
    bool ok;

    if (g_str_equal(s->transport, "sim")) {
        ok = sel4_attach_sim(s, errp);
    } else {
        error_setg(errp, "sel4: transport=%s is not implemented yet",
                   s->transport);
        ok = false;
    }
    if (!ok) {
        sel4_transport_detach(s);
        return false;
    }
    if (vso_rpc_init(&s->rpc, (uint8_t *)s->iobuf_region +
                     SIM_IOBUF_REGION_IOBUF, RPC_IOBUF_SIZE,
                     VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ) < 0) {
        error_setg(errp, "sel4: the VMM's iobuf is unusable");
        sel4_transport_detach(s);
        return false;
    }
    /*
     * The VMM never resets the queues: a predecessor may have died
     * mid-claim, and we are the only device-side actor.
     */
    vso_queue_recover(&s->rpc.req, false);
    vso_queue_recover(&s->rpc.resp, true);
    vso_queue_recover(&s->rpc.evt, true);
    s->attached = true;
    trace_sel4_attached(s->transport, s->layout.vmid, s->layout.ram_base,
                        s->layout.ram_size, s->layout.pci_mmio_base,
                        s->layout.pci_mmio_size);
    return true;
}

void sel4_transport_detach(Sel4State *s)
{
    if (s->iobuf_region) {
        munmap(s->iobuf_region, s->iobuf_region_size);
        s->iobuf_region = NULL;
        s->event_bar = NULL;
    }
    sim_transport_close_fds(s->sim_fds);
    if (s->layout.ram_fd >= 0 && !s->attached) {
        close(s->layout.ram_fd);
        s->layout.ram_fd = -1;
    }
    if (s->conn >= 0) {
        close(s->conn);
        s->conn = -1;
    }
    s->doorbell_fd = -1;
    s->ring_fd = -1;
    s->attached = false;
}
