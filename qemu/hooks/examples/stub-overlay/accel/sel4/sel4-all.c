/*
 * SKELETON (qemu/hooks/examples/stub-overlay): the smallest accelerator that
 * builds and runs in QEMU 10.2.2 (-accel sel4). Build-pipeline test only.
 */
#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qemu/accel.h"
#include "accel/accel-ops.h"
#include "accel/accel-cpu-ops.h"
#include "accel/dummy-cpus.h"
#include "system/sel4.h"
#include "trace.h"

bool sel4_allowed;

static int sel4_init_machine(AccelState *as, MachineState *ms)
{
    trace_sel4_init("stub");
    return 0;
}

static void sel4_accel_class_init(ObjectClass *oc, const void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);
    ac->name = "seL4";
    ac->init_machine = sel4_init_machine;
    ac->allowed = &sel4_allowed;
}

static const TypeInfo sel4_accel_type = {
    .name = ACCEL_CLASS_NAME("sel4"),
    .parent = TYPE_ACCEL,
    .class_init = sel4_accel_class_init,
};

static void sel4_accel_ops_class_init(ObjectClass *oc, const void *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);
    ops->create_vcpu_thread = dummy_start_vcpu_thread;
    /* 10.2: cpus_register_accel() asserts ops->handle_interrupt */
    ops->handle_interrupt = generic_handle_interrupt;
}

static const TypeInfo sel4_accel_ops_type = {
    .name = ACCEL_OPS_NAME("sel4"),
    .parent = TYPE_ACCEL_OPS,
    .class_init = sel4_accel_ops_class_init,
    .abstract = true,
};

static void sel4_type_init(void)
{
    type_register_static(&sel4_accel_type);
    type_register_static(&sel4_accel_ops_type);
}
type_init(sel4_type_init);
