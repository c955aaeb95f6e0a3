/*
 * SKELETON (qemu/hooks/examples/stub-overlay): a CPU-less aarch64 machine
 * that builds and runs in QEMU 10.2.2 (-M virt-sel4). Build-pipeline test only.
 * 10.2 needs DEFINE_MACHINE_AARCH64 (hw/arm/machines-qom.h) for the machine
 * to appear in qemu-system-aarch64; 10.0 has no such header.
 */
#include "qemu/osdep.h"
#include "hw/boards.h"
#include "hw/arm/machines-qom.h"
#include "system/address-spaces.h"

static void virt_sel4_init(MachineState *ms)
{
    if (ms->ram) {
        memory_region_add_subregion(get_system_memory(), 0, ms->ram);
    }
}

static void virt_sel4_machine_init(MachineClass *mc)
{
    mc->desc = "seL4 device VM (stub)";
    mc->init = virt_sel4_init;
    mc->max_cpus = 1;
    mc->default_ram_size = 0;
    mc->default_ram_id = "ram";
    mc->no_serial = 1;
    mc->no_parallel = 1;
    mc->no_floppy = 1;
    mc->no_cdrom = 1;
}
DEFINE_MACHINE_AARCH64("virt-sel4", virt_sel4_machine_init)
