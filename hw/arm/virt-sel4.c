/*
 * virt-sel4: the device side of a guest that runs under the seL4 VMM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * No CPUs: the guest's vCPUs belong to the VMM.  This machine holds what
 * the guest's devices need to see:
 *  - the guest's RAM, at the guest-physical address the VMM announced:
 *    the transport's RAM fd (a memfd in simulation, the RAM function's
 *    /dev/uioN on seL4) mapped shared, so the guest and the VMM see our
 *    DMA, as a RAM block that keeps its fd (vhost-user can share it);
 *  - a GPEX PCIe host: its ECAM is mapped only so QEMU's own code can find
 *    the bus (the guest's config accesses come as AS_PCIDEV requests), the
 *    MMIO window is aliased 1:1 at the VMM's pci_mmio_base/size, and the
 *    PIO window follows it.  The devices on its root bus are the guest's
 *    devices; their INTx lines and MSIs go to the VMM (sel4_intc).
 * It only works with -accel sel4.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/boards.h"
#include "hw/pci/pci_host.h"
#include "hw/pci/pcie_host.h"
#include "hw/pci-host/gpex.h"
#include "hw/pci/msi.h"
#include "hw/intc/sel4_intc.h"
#include "hw/sysbus.h"
#include "hw/qdev-properties.h"
#include "system/sel4.h"
#include "system/sel4-compat.h"

/*
 * The ECAM is not guest-visible (config goes through the VMM); it only
 * needs a free spot in our address space, below the usual PCI windows.
 */
#define VIRT_SEL4_ECAM_BASE     0x4010000000ULL
#define VIRT_SEL4_ECAM_SIZE     (16 * MiB)  /* 16 buses */

/* The interrupt routes' view of the accelerator (hw/intc/sel4_intc.c). */
static const Sel4IntcOps virt_sel4_intc_ops = {
    .pci_index = sel4_pci_index,
    .set_intx = sel4_set_intx,
    .send_msi = sel4_send_msi,
};

static bool ranges_overlap64(uint64_t a, uint64_t alen, uint64_t b,
                             uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/*
 * Everything no region claims: a guest-physical access there, by a
 * device's DMA or a request of the VMM, is a guest bug or an attack.
 * Say so under -d guest_errors and fail the transaction, rather than the
 * silent all-ones and dropped writes of QEMU's unassigned memory.
 */
static MemTxResult virt_sel4_unmapped_read(void *opaque, hwaddr addr,
                                           uint64_t *data, unsigned size,
                                           MemTxAttrs attrs)
{
    qemu_log_mask(LOG_GUEST_ERROR, "virt-sel4: read of %u bytes at unmapped "
                  "guest-physical 0x%" HWADDR_PRIx "\n", size, addr);
    *data = UINT64_MAX;
    return MEMTX_DECODE_ERROR;
}

static MemTxResult virt_sel4_unmapped_write(void *opaque, hwaddr addr,
                                            uint64_t data, unsigned size,
                                            MemTxAttrs attrs)
{
    qemu_log_mask(LOG_GUEST_ERROR, "virt-sel4: write of %u bytes at "
                  "unmapped guest-physical 0x%" HWADDR_PRIx "\n", size,
                  addr);
    return MEMTX_DECODE_ERROR;
}

static const MemoryRegionOps virt_sel4_unmapped_ops = {
    .read_with_attrs = virt_sel4_unmapped_read,
    .write_with_attrs = virt_sel4_unmapped_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid.min_access_size = 1,
    .valid.max_access_size = 8,
    .impl.min_access_size = 1,
    .impl.max_access_size = 8,
};

static void virt_sel4_init(MachineState *ms)
{
    MemoryRegion *sysmem = get_system_memory();
    Sel4GuestLayout layout;
    MemoryRegion *ram, *ecam_alias, *mmio_alias, *unmapped;
    DeviceState *dev;
    PCIHostState *pci;

    if (!sel4_enabled() || !sel4_guest_layout(&layout)) {
        error_report("machine virt-sel4 needs -accel sel4 (it has no CPUs; "
                     "the seL4 VMM runs the guest)");
        exit(1);
    }
    if (ranges_overlap64(VIRT_SEL4_ECAM_BASE, VIRT_SEL4_ECAM_SIZE,
                         layout.ram_base, layout.ram_size) ||
        ranges_overlap64(VIRT_SEL4_ECAM_BASE, VIRT_SEL4_ECAM_SIZE,
                         layout.pci_mmio_base,
                         layout.pci_mmio_size + layout.pci_pio_size)) {
        error_report("virt-sel4: the VMM's RAM or PCI window overlaps our "
                     "ECAM at 0x%llx", VIRT_SEL4_ECAM_BASE);
        exit(1);
    }

    ram = g_new0(MemoryRegion, 1);
    memory_region_init_ram_from_fd(ram, OBJECT(ms), "virt-sel4.ram",
                                   layout.ram_size, RAM_SHARED,
                                   layout.ram_fd, layout.ram_fd_offset,
                                   &error_fatal);
    memory_region_add_subregion(sysmem, layout.ram_base, ram);

    unmapped = g_new0(MemoryRegion, 1);
    memory_region_init_io(unmapped, OBJECT(ms), &virt_sel4_unmapped_ops, NULL,
                          "virt-sel4.unmapped", UINT64_MAX);
    memory_region_add_subregion_overlap(sysmem, 0, unmapped, -1000);

    /* MSI-X works: sel4_intc hands each message to the VMM */
    msi_nonbroken = true;

    dev = qdev_new(TYPE_GPEX_HOST);
    /*
     * No silent all-ones window behind the BARs: an access to a hole of
     * the PCI window reaches virt-sel4.unmapped, which logs it and fails
     * it (the VMM's request is still answered all-ones, as a master abort
     * would be).
     */
    qdev_prop_set_bit(dev, "allow-unmapped-accesses", false);
    sysbus_realize_and_unref(SYS_BUS_DEVICE(dev), &error_fatal);

    ecam_alias = g_new0(MemoryRegion, 1);
    memory_region_init_alias(ecam_alias, OBJECT(dev), "pcie-ecam",
                             sysbus_mmio_get_region(SYS_BUS_DEVICE(dev), 0),
                             0, VIRT_SEL4_ECAM_SIZE);
    memory_region_add_subregion(sysmem, VIRT_SEL4_ECAM_BASE, ecam_alias);

    /* PCI addresses == guest-physical addresses inside the window */
    mmio_alias = g_new0(MemoryRegion, 1);
    memory_region_init_alias(mmio_alias, OBJECT(dev), "pcie-mmio",
                             sysbus_mmio_get_region(SYS_BUS_DEVICE(dev), 1),
                             layout.pci_mmio_base, layout.pci_mmio_size);
    memory_region_add_subregion(sysmem, layout.pci_mmio_base, mmio_alias);

    sysbus_mmio_map(SYS_BUS_DEVICE(dev), 2,
                    layout.pci_mmio_base + layout.pci_mmio_size);

    pci = PCI_HOST_BRIDGE(dev);
    sel4_intc_connect_pci(pci->bus, &virt_sel4_intc_ops);
    sel4_set_pci_root_bus(pci->bus);
}

/*
 * Modern-only virtio (device IDs 0x1040 + type, no legacy I/O BAR): the
 * guest's driver talks to the devices through MMIO BARs the VMM forwards.
 * -global virtio-pci.disable-legacy=off still overrides it.
 */
static GlobalProperty virt_sel4_globals[] = {
    { "virtio-pci", "disable-legacy", "on" },
};

static void virt_sel4_machine_init(MachineClass *mc)
{
    compat_props_add(mc->compat_props, virt_sel4_globals,
                     G_N_ELEMENTS(virt_sel4_globals));
    mc->desc = "seL4 device VM: devices of a guest run by the seL4 VMM "
               "(needs -accel sel4)";
    mc->init = virt_sel4_init;
    mc->max_cpus = 1;
    /* RAM is the VMM's, from the accelerator: no -m backend */
    mc->default_ram_size = 0;
    mc->default_ram_id = NULL;
    mc->no_serial = 1;
    mc->no_parallel = 1;
    mc->no_floppy = 1;
    mc->no_cdrom = 1;
}
SEL4_DEFINE_MACHINE("virt-sel4", virt_sel4_machine_init)
