/*
 * sel4-vmm-proxy: the seL4 VMM's I/O proxy, for a real guest under TCG.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * On seL4 a guest's virtio devices live in QEMU in another VM (the device
 * VM): the VMM traps the guest's accesses to them and forwards each one
 * as an RPC request.  This device plays that VMM for the guest of a
 * `virt` machine, with the VMM core of lib/vmm (include/sel4/vmm_sim.h) as its
 * engine, so a real Linux guest drives our backend (-machine virt-sel4
 * -accel sel4,transport=sim) with its own drivers:
 *
 *   -machine virt,gic-version=2,highmem=off,memory-backend=ram
 *   -object memory-backend-memfd,id=ram,size=512M,share=on
 *   -device sel4-vmm-proxy,socket=PATH[,socket-group=GROUP]
 *
 *  - guest RAM: the machine's memory backend is lent to the backend as
 *    the guest-RAM region of the `sim` transport, at the guest-physical
 *    address the machine maps it (virt: 0x40000000), so both sides see
 *    the same bytes at the same addresses;
 *  - realize listens on PATH and waits (start-timeout) for the backend's
 *    registrations and START_VM: the guest's devices must exist before
 *    its firmware or kernel probes the bus, as the VMM holds the guest
 *    until START_VM;
 *  - each REGISTER_PCI_DEV n becomes a function on the guest's root bus
 *    at the devfn the VMM picks (slot n + 1), whose config space is
 *    forwarded as AS_PCIDEV(n) (PCI_INTERRUPT_LINE/PIN answered by the
 *    VMM);
 *  - the PCIe MMIO window is forwarded as AS_GLOBAL at the address the
 *    guest programmed (a background region of the bus's memory space, so
 *    BARs of QEMU's own PCI devices still win), from the waiter slot of
 *    the vCPU that made the access;
 *  - SET_IRQ n (< 32) is function n's INTx level; an MSI (a pulse of an
 *    SPI of the GICv2m frame; the guest programs the frame's doorbell and
 *    data = SPI into the backend's MSI-X table) pulses that SPI of the
 *    GIC through the frame's own lines.
 *
 * Every access is synchronous under the BQL (the vCPU waits for its
 * reply, as a vCPU trapped into the seL4 VMM does); the backend's events
 * are taken by a main-loop handler on the doorbell and during any wait.
 * If the backend hangs up the guest has lost its devices: QEMU shuts
 * down with exit status 1.
 *
 * Limits: one proxy per machine; the PCI PIO window is not forwarded (our
 * backend's virtio-pci devices are modern-only); TCG does not see the
 * backend's DMA into pages it has translated code for, so the guest must
 * not execute code it read from these devices without the kernel
 * flushing it (Linux's exec of a file does, its page cache DMA does not).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "hw/irq.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_host.h"
#include "hw/qdev-properties.h"
#include "hw/sysbus.h"
#include "system/runstate.h"
#include "system/sel4-compat.h"
#include "exec/cpu-common.h"
#include "trace.h"

#include "sel4/vmm_sim.h"

#define TYPE_SEL4_VMM_PROXY     "sel4-vmm-proxy"
#define TYPE_SEL4_VMM_PROXY_FN  "sel4-vmm-proxy-function"
OBJECT_DECLARE_SIMPLE_TYPE(Sel4VmmProxy, SEL4_VMM_PROXY)
OBJECT_DECLARE_SIMPLE_TYPE(Sel4VmmProxyFn, SEL4_VMM_PROXY_FN)

/* The GICv2m frame of the virt machine (hw/intc/arm_gicv2m.c). */
#define GICV2M_TYPE             "arm-gicv2m"
#define GIC_INTERNAL            32

/* virt's PCIe MMIO window (below 4 GiB), as vmm-sim's default. */
#define PROXY_PCI_MMIO_BASE     VMM_SIM_DEFAULT_PCI_MMIO_BASE
#define PROXY_PCI_MMIO_SIZE     VMM_SIM_DEFAULT_PCI_MMIO_SIZE

struct Sel4VmmProxyFn {
    PCIDevice parent_obj;
    Sel4VmmProxy *proxy;
    uint32_t index;             /* the backend's registration index n */
};

struct Sel4VmmProxy {
    DeviceState parent_obj;

    /* properties */
    char *socket;
    char *socket_group;         /* the socket 0660 and this group's */
    uint32_t start_timeout;     /* seconds for accept + START_VM */
    uint32_t access_timeout;    /* ms per forwarded access */
    uint64_t pci_mmio_base;
    uint64_t pci_mmio_size;

    VmmSim *sim;
    MemoryRegion window;        /* the forwarded PCIe MMIO window */
    Sel4VmmProxyFn *fns[RPC_MAX_PCIDEV];    /* by registration index */
    SysBusDevice *v2m;
    unsigned msi_intid_base;    /* INTID of the frame's first SPI */
    unsigned msi_count;
    bool gone;                  /* the backend hung up */
    uint64_t errors;            /* failed forwards, bad SET_IRQs */
};

/* ---- the backend's death and failed accesses ---- */

static void proxy_unwatch(Sel4VmmProxy *s)
{
    if (s->sim && vmm_sim_doorbell_fd(s->sim) >= 0) {
        qemu_set_fd_handler(vmm_sim_doorbell_fd(s->sim), NULL, NULL, NULL);
    }
    if (s->sim && vmm_sim_conn_fd(s->sim) >= 0) {
        qemu_set_fd_handler(vmm_sim_conn_fd(s->sim), NULL, NULL, NULL);
    }
}

static void proxy_backend_gone(Sel4VmmProxy *s)
{
    if (s->gone) {
        return;
    }
    s->gone = true;
    proxy_unwatch(s);
    error_report("sel4-vmm-proxy: the device VM on %s hung up; the guest "
                 "has lost its devices, shutting down", s->socket);
    qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR, 1);
}

static void proxy_access_failed(Sel4VmmProxy *s, const char *what,
                                 GError *err)
{
    s->errors++;
    trace_sel4_proxy_error(what, err->message);
    if (vmm_sim_peer_gone(s->sim)) {
        proxy_backend_gone(s);
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "sel4-vmm-proxy: %s: %s\n", what,
                  err->message);
}

static uint64_t len_ones(unsigned len)
{
    return len >= 8 ? UINT64_MAX : (UINT64_C(1) << (len * 8)) - 1;
}

/* ---- interrupts from the backend ---- */

static void proxy_irq(void *opaque, unsigned irq, unsigned op)
{
    Sel4VmmProxy *s = opaque;

    trace_sel4_proxy_irq(irq, op);
    if (irq < RPC_MAX_PCIDEV) {
        PCIDevice *d = s->fns[irq] ? PCI_DEVICE(s->fns[irq]) : NULL;

        if (!d) {
            s->errors++;        /* vmm-sim checked the registration */
        } else if (op == RPC_IRQ_PULSE) {
            pci_irq_assert(d);
            pci_irq_deassert(d);
        } else {
            pci_set_irq(d, op == RPC_IRQ_SET);
        }
        return;
    }
    if (op == RPC_IRQ_PULSE && irq >= s->msi_intid_base &&
        irq - s->msi_intid_base < s->msi_count) {
        /* What the frame does with a write of @irq to its doorbell. */
        qemu_irq_pulse(sysbus_get_connected_irq(s->v2m,
                                                irq - s->msi_intid_base));
        return;
    }
    /* A level SPI of an emulated device: the guest has none from us. */
    s->errors++;
    qemu_log_mask(LOG_GUEST_ERROR, "sel4-vmm-proxy: SET_IRQ of INTID %u "
                  "(op %u): no such line here\n", irq, op);
}

/* Main loop: the backend rang, or its connection changed. */
static void proxy_doorbell(void *opaque)
{
    Sel4VmmProxy *s = opaque;

    if (vmm_sim_poll(s->sim, 0) == -EPIPE || vmm_sim_peer_gone(s->sim)) {
        proxy_backend_gone(s);
    }
}

/* ---- the PCIe MMIO window: AS_GLOBAL ---- */

static unsigned proxy_vcpu_slot(void)
{
    return current_cpu ? MIN(current_cpu->cpu_index, RPC_SLOT_VCPU_MAX) : 0;
}

static MemTxResult proxy_window_read(void *opaque, hwaddr addr,
                                     uint64_t *data, unsigned size,
                                     MemTxAttrs attrs)
{
    Sel4VmmProxy *s = opaque;
    g_autoptr(GError) err = NULL;
    uint64_t gpa = s->pci_mmio_base + addr;

    *data = len_ones(size);
    if (!s->gone && !vmm_sim_mmio_read(s->sim, proxy_vcpu_slot(), AS_GLOBAL,
                                       gpa, size, data, &err)) {
        *data = len_ones(size);
        proxy_access_failed(s, "MMIO read", err);
    }
    trace_sel4_proxy_mmio(0, gpa, size, *data);
    return MEMTX_OK;
}

static MemTxResult proxy_window_write(void *opaque, hwaddr addr,
                                      uint64_t data, unsigned size,
                                      MemTxAttrs attrs)
{
    Sel4VmmProxy *s = opaque;
    g_autoptr(GError) err = NULL;
    uint64_t gpa = s->pci_mmio_base + addr;

    trace_sel4_proxy_mmio(1, gpa, size, data);
    if (!s->gone && !vmm_sim_mmio_write(s->sim, proxy_vcpu_slot(), AS_GLOBAL,
                                        gpa, size, data, &err)) {
        proxy_access_failed(s, "MMIO write", err);
    }
    return MEMTX_OK;
}

static const MemoryRegionOps proxy_window_ops = {
    .read_with_attrs = proxy_window_read,
    .write_with_attrs = proxy_window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid.min_access_size = 1,
    .valid.max_access_size = 8,
    .impl.min_access_size = 1,
    .impl.max_access_size = 8,
};

/* ---- one registered device: config space as AS_PCIDEV(n) ---- */

static uint32_t proxy_fn_config_read(PCIDevice *d, uint32_t addr, int len)
{
    Sel4VmmProxyFn *fn = SEL4_VMM_PROXY_FN(d);
    Sel4VmmProxy *s = fn->proxy;
    g_autoptr(GError) err = NULL;
    uint64_t val = len_ones(len);

    if (!s->gone && !vmm_sim_config_read(s->sim, fn->index, addr, len, &val,
                                         &err)) {
        val = len_ones(len);
        proxy_access_failed(s, "config read", err);
    }
    trace_sel4_proxy_config(fn->index, 0, addr, len, val);
    return val;
}

static void proxy_fn_config_write(PCIDevice *d, uint32_t addr, uint32_t val,
                                  int len)
{
    Sel4VmmProxyFn *fn = SEL4_VMM_PROXY_FN(d);
    Sel4VmmProxy *s = fn->proxy;
    g_autoptr(GError) err = NULL;

    trace_sel4_proxy_config(fn->index, 1, addr, len, val);
    if (!s->gone && !vmm_sim_config_write(s->sim, fn->index, addr, len, val,
                                          &err)) {
        proxy_access_failed(s, "config write", err);
    }
}

static void proxy_fn_realize(PCIDevice *d, Error **errp)
{
    Sel4VmmProxyFn *fn = SEL4_VMM_PROXY_FN(d);

    if (!fn->proxy || fn->index >= RPC_MAX_PCIDEV) {
        error_setg(errp, "%s is created by %s only", TYPE_SEL4_VMM_PROXY_FN,
                   TYPE_SEL4_VMM_PROXY);
        return;
    }
    /*
     * Our own copy of config space is not what the guest sees; it only
     * routes INTx (pci_set_irq() uses PIN and the INTx-disable bit, which
     * stays clear here: the backend's device masks its own INTx).
     */
    d->config[PCI_INTERRUPT_PIN] = 1;
}

static void proxy_fn_class_init(ObjectClass *klass, SEL4_CLASS_DATA *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = proxy_fn_realize;
    k->config_read = proxy_fn_config_read;
    k->config_write = proxy_fn_config_write;
    k->vendor_id = PCI_VENDOR_ID_REDHAT_QUMRANET;
    k->device_id = 0xffff;
    k->class_id = PCI_CLASS_OTHERS;
    dc->desc = "a device of the seL4 device VM, seen through the VMM proxy";
    dc->user_creatable = false;
    dc->hotpluggable = false;
}

/* ---- the proxy ---- */

static bool proxy_find_ram(MachineState *ms, int *fd, uint64_t *base,
                           uint64_t *size, Error **errp)
{
    MemoryRegion *ram = ms->ram;

    if (!ram || !ms->memdev || memory_region_get_fd(ram) < 0 ||
        !ram->ram_block || !qemu_ram_is_shared(ram->ram_block)) {
        error_setg(errp, "%s needs the machine's RAM in a shared memfd: "
                   "-object memory-backend-memfd,id=ram,share=on,size=... "
                   "-machine ...,memory-backend=ram", TYPE_SEL4_VMM_PROXY);
        return false;
    }
    if (ram->container != get_system_memory()) {
        error_setg(errp, "%s: the machine's RAM is not mapped directly in "
                   "the system address space", TYPE_SEL4_VMM_PROXY);
        return false;
    }
    *fd = memory_region_get_fd(ram);
    *base = ram->addr;
    *size = memory_region_size(ram);
    return true;
}

static bool proxy_find_v2m(Sel4VmmProxy *s, Error **errp)
{
    bool ambiguous = false;
    Object *o = object_resolve_path_type("", GICV2M_TYPE, &ambiguous);

    if (!o) {
        error_setg(errp, "%s needs a GICv2m frame for MSIs%s: use "
                   "-machine virt,gic-version=2", TYPE_SEL4_VMM_PROXY,
                   ambiguous ? " (and only one)" : "");
        return false;
    }
    s->v2m = SYS_BUS_DEVICE(o);
    s->msi_intid_base = object_property_get_uint(o, "base-spi", &error_abort)
                        + GIC_INTERNAL;
    s->msi_count = object_property_get_uint(o, "num-spi", &error_abort);
    return true;
}

static PCIBus *proxy_find_bus(Error **errp)
{
    bool ambiguous = false;
    Object *o = object_resolve_path_type("", TYPE_PCI_HOST_BRIDGE,
                                         &ambiguous);

    if (!o || !PCI_HOST_BRIDGE(o)->bus) {
        error_setg(errp, "%s needs one PCI host bridge%s",
                   TYPE_SEL4_VMM_PROXY, ambiguous ? ", found several" : "");
        return NULL;
    }
    return PCI_HOST_BRIDGE(o)->bus;
}

/* Accept the backend, then take events until its START_VM. */
static bool proxy_wait_backend(Sel4VmmProxy *s, Error **errp)
{
    g_autoptr(GError) err = NULL;
    gint64 t0 = g_get_monotonic_time();
    int ms = s->start_timeout * 1000;
    int left;

    info_report("%s: waiting up to %u s for the device VM on %s",
                TYPE_SEL4_VMM_PROXY, s->start_timeout, s->socket);
    if (!vmm_sim_accept(s->sim, ms, &err)) {
        error_setg(errp, "%s: %s", TYPE_SEL4_VMM_PROXY, err->message);
        return false;
    }
    left = ms - (int)((g_get_monotonic_time() - t0) / 1000);
    if (!vmm_sim_wait_started(s->sim, MAX(left, 1))) {
        error_setg(errp, "%s: the device VM on %s %s", TYPE_SEL4_VMM_PROXY,
                   s->socket, vmm_sim_peer_gone(s->sim) ?
                   "hung up before START_VM" :
                   "sent no START_VM in time (start-timeout)");
        return false;
    }
    return true;
}

/* One guest function per registration, where the VMM placed it. */
static bool proxy_create_functions(Sel4VmmProxy *s, PCIBus *bus,
                                   Error **errp)
{
    const VmmSimPciDev *devs;
    unsigned n, i;

    devs = vmm_sim_pci_devs(s->sim, &n);
    for (i = 0; i < n; i++) {
        PCIDevice *d;

        if (devs[i].devfn >= PCI_DEVFN_MAX) {
            error_setg(errp, "%s: no devfn for registration %u",
                       TYPE_SEL4_VMM_PROXY, devs[i].index);
            return false;
        }
        d = pci_new(devs[i].devfn, TYPE_SEL4_VMM_PROXY_FN);
        SEL4_VMM_PROXY_FN(d)->proxy = s;
        SEL4_VMM_PROXY_FN(d)->index = devs[i].index;
        if (!pci_realize_and_unref(d, bus, errp)) {
            return false;
        }
        s->fns[devs[i].index] = SEL4_VMM_PROXY_FN(d);
        trace_sel4_proxy_function(devs[i].index, PCI_SLOT(devs[i].devfn),
                                  PCI_FUNC(devs[i].devfn));
    }
    info_report("%s: the device VM registered %u PCI device(s)",
                TYPE_SEL4_VMM_PROXY, n);
    return true;
}

static void proxy_realize(DeviceState *dev, Error **errp)
{
    Sel4VmmProxy *s = SEL4_VMM_PROXY(dev);
    MachineState *ms = MACHINE(qdev_get_machine());
    g_autoptr(GError) err = NULL;
    VmmSimConfig cfg = { 0 };
    PCIBus *bus;

    if (!s->socket || !*s->socket) {
        error_setg(errp, "%s: socket=PATH is required", TYPE_SEL4_VMM_PROXY);
        return;
    }
    if (!s->start_timeout || s->start_timeout > 3600) {
        error_setg(errp, "%s: start-timeout must be 1..3600 seconds",
                   TYPE_SEL4_VMM_PROXY);
        return;
    }
    if (!s->access_timeout || s->access_timeout > 600000) {
        error_setg(errp, "%s: access-timeout must be 1..600000 ms",
                   TYPE_SEL4_VMM_PROXY);
        return;
    }
    if (!s->pci_mmio_size || s->pci_mmio_base + s->pci_mmio_size <
        s->pci_mmio_base) {
        error_setg(errp, "%s: bad PCI MMIO window 0x%" PRIx64 "+0x%" PRIx64,
                   TYPE_SEL4_VMM_PROXY, s->pci_mmio_base, s->pci_mmio_size);
        return;
    }
    if (!proxy_find_ram(ms, &cfg.ram_fd, &cfg.ram_base, &cfg.ram_size,
                        errp) ||
        !proxy_find_v2m(s, errp)) {
        return;
    }
    bus = proxy_find_bus(errp);
    if (!bus) {
        return;
    }

    cfg.socket_path = s->socket;
    cfg.socket_group = s->socket_group;
    cfg.has_ram_fd = true;
    cfg.pci_mmio_base = s->pci_mmio_base;
    cfg.pci_mmio_size = s->pci_mmio_size;
    cfg.gicv2m_base = sysbus_mmio_get_region(s->v2m, 0)->addr;
    cfg.msi_spi_base = s->msi_intid_base;
    cfg.msi_spi_count = s->msi_count;
    cfg.timeout_ms = s->access_timeout;
    cfg.irq_fn = proxy_irq;
    cfg.irq_opaque = s;
    s->sim = vmm_sim_new(&cfg, &err);
    if (!s->sim) {
        error_setg(errp, "%s: %s", TYPE_SEL4_VMM_PROXY, err->message);
        return;
    }
    if (!proxy_wait_backend(s, errp) ||
        !proxy_create_functions(s, bus, errp)) {
        return;
    }

    memory_region_init_io(&s->window, OBJECT(s), &proxy_window_ops, s,
                          "sel4-vmm-proxy-window", s->pci_mmio_size);
    /* below every BAR of QEMU's own devices on this bus */
    memory_region_add_subregion_overlap(bus->address_space_mem,
                                        s->pci_mmio_base, &s->window, -1);
    qemu_set_fd_handler(vmm_sim_doorbell_fd(s->sim), proxy_doorbell, NULL,
                        s);
    /* readable on hang-up (or a byte after the hello: the same to us) */
    qemu_set_fd_handler(vmm_sim_conn_fd(s->sim), proxy_doorbell, NULL, s);
}

static void proxy_unrealize(DeviceState *dev)
{
    Sel4VmmProxy *s = SEL4_VMM_PROXY(dev);

    proxy_unwatch(s);
    vmm_sim_free(s->sim);
    s->sim = NULL;
}

static void proxy_finalize(Object *obj)
{
    Sel4VmmProxy *s = SEL4_VMM_PROXY(obj);

    /* a realize that failed half-way leaves its VmmSim here */
    proxy_unwatch(s);
    vmm_sim_free(s->sim);
    s->sim = NULL;
}

static const Property proxy_props[] = {
    DEFINE_PROP_STRING("socket", Sel4VmmProxy, socket),
    DEFINE_PROP_STRING("socket-group", Sel4VmmProxy, socket_group),
    DEFINE_PROP_UINT32("start-timeout", Sel4VmmProxy, start_timeout, 60),
    DEFINE_PROP_UINT32("access-timeout", Sel4VmmProxy, access_timeout,
                       VMM_SIM_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_UINT64("pci-mmio-base", Sel4VmmProxy, pci_mmio_base,
                       PROXY_PCI_MMIO_BASE),
    DEFINE_PROP_UINT64("pci-mmio-size", Sel4VmmProxy, pci_mmio_size,
                       PROXY_PCI_MMIO_SIZE),
};

static void proxy_class_init(ObjectClass *klass, SEL4_CLASS_DATA *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    dc->realize = proxy_realize;
    dc->unrealize = proxy_unrealize;
    dc->desc = "seL4 VMM I/O proxy: the guest's devices are a device VM's "
               "(-accel sel4,transport=sim)";
    dc->hotpluggable = false;
    device_class_set_props(dc, proxy_props);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo proxy_types[] = {
    {
        .name = TYPE_SEL4_VMM_PROXY,
        .parent = TYPE_DEVICE,
        .instance_size = sizeof(Sel4VmmProxy),
        .instance_finalize = proxy_finalize,
        .class_init = proxy_class_init,
    },
    {
        .name = TYPE_SEL4_VMM_PROXY_FN,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(Sel4VmmProxyFn),
        .class_init = proxy_fn_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(proxy_types)
