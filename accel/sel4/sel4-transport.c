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
 *  - uio: the device VM's /dev/uioN functions (sel4/uio_transport.h),
 *    the address map from uservm= (sel4/uservm.h).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "sel4/uio_transport.h"
#include "sel4/uservm.h"
#include "sel4-internal.h"
#include "trace.h"

/* ---- doorbells ---- */

uint64_t sel4_doorbell_drain(Sel4State *s)
{
    uint64_t count = 0;
    ssize_t r;

    if (!s->doorbell_is_uio) {
        /* the eventfd is O_NONBLOCK: EAGAIN is a stale wake-up */
        do {
            r = read(s->doorbell_fd, &count, sizeof(count));
        } while (r < 0 && errno == EINTR);
        return r == sizeof(count) ? count : 0;
    }
    /* UIO: the irq count, then a write of 1 re-enables the interrupt */
    r = uio_doorbell_ack(s->doorbell_fd);
    if (r < 0) {
        error_report_once("sel4: taking the UIO interrupt failed: %s",
                          strerror(-r));
        sel4_error(s, SEL4_ERR_UIO_IRQ, -r, 0);
        return 0;
    }
    return r;
}

void sel4_ring_vmm(Sel4State *s)
{
    uint64_t one = 1;
    ssize_t r;

    sel4_stat_add(s, SEL4_STAT_DOORBELLS_OUT, 1);
    trace_sel4_doorbell_ring(sel4_stat_get(s, SEL4_STAT_DOORBELLS_OUT));
    if (s->ring_fd < 0) {
        /* the EMIT store faults into the VMM, after a release barrier */
        uio_ring(s->event_bar);
        return;
    }
    do {
        r = write(s->ring_fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
    /* EAGAIN: the counter is near overflow, so a ring is pending anyway */
    if (r < 0 && errno != EAGAIN) {
        error_report_once("sel4: ringing the VMM failed: %s",
                          strerror(errno));
        sel4_error(s, SEL4_ERR_RING, errno, 0);
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
    s->iobuf = (uint8_t *)region + SIM_IOBUF_REGION_IOBUF;

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

/* ---- uio ---- */

/* uservm=<id>,<ram_base>,... as an option, else from the kernel's line */
static bool sel4_uio_uservm(Sel4State *s, Sel4Uservm *u, GError **errp)
{
    g_autofree char *cmdline = NULL;
    uint32_t vmid;

    if (s->uservm) {
        /*
         * The kernel's syntax with ':' for ',' (a comma would end the
         * -accel option); the option names its VM in its first field.
         */
        g_autofree char *value = g_strdelimit(g_strdup(s->uservm), ":", ',');
        g_autofree char *id = g_strndup(value, strcspn(value, ","));

        if (!sel4_vmid_from_env(id, &vmid, errp)) {
            g_prefix_error(errp, "uservm=%s: its first field, the VM id: ",
                           s->uservm);
            return false;
        }
        cmdline = g_strconcat(SEL4_USERVM_PREFIX, value, NULL);
    } else {
        if (!sel4_vmid_from_env(g_getenv(SEL4_VMID_ENV), &vmid, errp) ||
            !g_file_get_contents("/proc/cmdline", &cmdline, NULL, errp)) {
            return false;
        }
    }
    return sel4_uservm_parse(cmdline, vmid, u, errp) &&
           sel4_uservm_validate(u, errp);
}

/* By name under /sys/class/uio, or the node the options give. */
static bool sel4_uio_device(Sel4State *s, const char *path, const char *fmt,
                            uint32_t vmid, UioDevice *dev, GError **errp)
{
    g_autofree char *sysfs = g_build_filename(s->uio_root ?: "/",
                                              UIO_SYSFS_CLASS_DIR, NULL);
    g_autofree char *devdir = g_build_filename(s->uio_root ?: "/",
                                               UIO_DEV_DIR, NULL);
    g_autofree char *name = g_strdup_printf(fmt, vmid);

    if (path) {
        return uio_device_from_path(sysfs, path, dev, errp);
    }
    return uio_find_device(sysfs, devdir, name, dev, errp);
}

static bool sel4_attach_uio(Sel4State *s, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    UioDevice iobuf_dev, ram_dev;
    Sel4Uservm u;
    int flags;

    if (!sel4_uio_uservm(s, &u, &gerr) ||
        !sel4_uio_device(s, s->uio_iobuf, UIO_IOBUF_NAME_FMT, u.id,
                         &iobuf_dev, &gerr) ||
        !sel4_uio_device(s, s->uio_ram, UIO_RAM_NAME_FMT, u.id, &ram_dev,
                         &gerr) ||
        !uio_map_regions(&iobuf_dev, &ram_dev, u.ram_size,
                         UIO_MAP_RAM_FD_ONLY, &s->uio, &gerr)) {
        error_setg(errp, "sel4: transport=uio: %s", gerr->message);
        return false;
    }
    /* a stale wake-up must find nothing rather than block */
    flags = fcntl(s->uio.iobuf_fd, F_GETFL);
    if (flags < 0 ||
        fcntl(s->uio.iobuf_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        error_setg_errno(errp, errno, "sel4: transport=uio: %s",
                         iobuf_dev.dev_path);
        return false;
    }
    s->event_bar = s->uio.event_bar;
    s->iobuf = s->uio.iobuf;
    s->layout = (Sel4GuestLayout) {
        .vmid = u.id,
        .ram_base = u.ram_base,
        .ram_size = u.ram_size,
        .ram_fd = s->uio.ram_fd,
        .ram_fd_offset = s->uio.ram_offset,
        .pci_mmio_base = u.pci_mmio_base,
        .pci_mmio_size = u.pci_mmio_size,
        .pci_pio_size = SEL4_USERVM_PIO_SIZE,
    };
    s->uio.ram_fd = -1;             /* the machine's now */
    s->doorbell_fd = s->uio.iobuf_fd;
    s->doorbell_is_uio = true;
    s->ring_fd = -1;
    return true;
}

/* ---- common ---- */

bool sel4_transport_attach(Sel4State *s, Error **errp)
{
    bool ok;

    if (g_str_equal(s->transport, "sim")) {
        ok = sel4_attach_sim(s, errp);
    } else {
        ok = sel4_attach_uio(s, errp);
    }
    if (!ok) {
        sel4_transport_detach(s);
        return false;
    }
    if (vso_rpc_init(&s->rpc, s->iobuf, RPC_IOBUF_SIZE, VSO_RPC_DEVICE,
                     RPC_QUEUE_DRVRPC_REQ) < 0) {
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
    sel4_fault_arm(s);
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
    }
    uio_unmap_regions(&s->uio);
    s->event_bar = NULL;
    s->iobuf = NULL;
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
