/*
 * seL4 accelerator: QEMU as the device model of an seL4 VMM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * There are no vCPUs here: the guest runs under the seL4 VMM, which
 * forwards the guest's PCI config and BAR accesses to us as MMIO requests
 * over a shared iobuf (sel4/vso_rpc.h), rings our doorbell and waits for
 * the replies.  We register the PCI devices of the machine's root bus
 * (sel4-vpci.c), tell the VMM when we run (START_VM), serve its requests
 * in batches (sel4-dispatch.c) from the loop chosen with loop=
 * (sel4-loop.c), and send the devices' interrupts back as SET_IRQ events
 * (hw/intc/sel4_intc.c).
 *
 *   -accel sel4,transport=sim,socket=PATH | transport=uio[,uio-iobuf=DEV]
 *              [,uio-ram=DEV][,uservm=ID:RAM_BASE:RAM_SIZE:MMIO_BASE:MMIO_SIZE]
 *              [,loop=thread|thread-batch|aio|uring][,batch=N][,poll-us=N]
 */
#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "qapi/util.h"
#include "qapi/visitor.h"
#include "hw/boards.h"
#include "sel4-internal.h"
#include "trace.h"

bool sel4_allowed;
Sel4State *sel4_state;

static const QEnumLookup sel4_loop_lookup = {
    .array = (const char *const[]) {
        [SEL4_LOOP_THREAD] = "thread",
        [SEL4_LOOP_AIO] = "aio",
        [SEL4_LOOP_URING] = "uring",
        [SEL4_LOOP_THREAD_BATCH] = "thread-batch",
    },
    .size = 4,
};

static const QEnumLookup sel4_uring_ring_lookup = {
    .array = (const char *const[]) {
        [SEL4_URING_AUTO] = "auto",
        [SEL4_URING_SHARED] = "shared",
        [SEL4_URING_OWN] = "own",
    },
    .size = 3,
};

bool sel4_guest_layout(Sel4GuestLayout *layout)
{
    Sel4State *s = sel4_state;

    if (!s || !s->attached) {
        return false;
    }
    *layout = s->layout;
    s->layout.ram_fd = -1;      /* handed over */
    return true;
}

/* The VMM's socket (sim) only ever says that the VMM is gone. */
static void sel4_conn_event(void *opaque)
{
    Sel4State *s = opaque;
    char c;
    ssize_t r = recv(s->conn, &c, 1, MSG_DONTWAIT);

    if (r < 0 && (errno == EAGAIN || errno == EINTR) &&
        !sim_transport_peer_gone(s->conn)) {
        return;
    }
    /* EOF, an error, or a byte after the hello (a protocol violation) */
    qemu_set_fd_handler(s->conn, NULL, NULL, NULL);
    error_report("sel4: the VMM hung up; shutting down");
    qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR, 1);
}

static void sel4_shutdown(Notifier *notifier, void *data)
{
    Sel4State *s = container_of(notifier, Sel4State, shutdown);

    sel4_irqfd_stop(s);
    s->loop_ops->stop(s);
    sel4_stats_trace(s);
}

/* Options of one transport given with the other are mistakes. */
static bool sel4_check_transport_options(Sel4State *s, Error **errp)
{
    bool uio = g_str_equal(s->transport, "uio");

    if (uio && s->socket) {
        error_setg(errp, "sel4: socket= is an option of transport=sim");
        return false;
    }
    if (!uio && (s->uio_iobuf || s->uio_ram || s->uio_root || s->uservm)) {
        error_setg(errp, "sel4: uio-iobuf=, uio-ram=, uservm= and "
                   "x-uio-root= are options of transport=uio");
        return false;
    }
    return true;
}

static int sel4_init_machine(AccelState *as, MachineState *ms)
{
    Sel4State *s = SEL4_ACCEL(as);
    Error *err = NULL;

    trace_sel4_init(s->transport, sel4_loop_lookup.array[s->loop], s->batch,
                    s->poll_us);
    if (!g_str_equal(MACHINE_GET_CLASS(ms)->name, "virt-sel4")) {
        error_report("sel4: -accel sel4 needs -machine virt-sel4, not %s",
                     MACHINE_GET_CLASS(ms)->name);
        return -EINVAL;
    }
    if (!sel4_check_transport_options(s, &err) ||
        !sel4_transport_attach(s, &err)) {
        error_report_err(err);
        return -EIO;
    }
    sel4_state = s;
    sel4_events_init(s);
    sel4_ioeventfd_init(s);
    sel4_notify_init(s);
    sel4_vpci_init(s);
    if (!sel4_loop_start(s, &err) || !sel4_irqfd_start(s, &err)) {
        error_report_err(err);
        return -EIO;
    }
    if (s->conn >= 0) {
        qemu_set_fd_handler(s->conn, sel4_conn_event, NULL, s);
    }
    sel4_stats_init(s, ms);
    s->shutdown.notify = sel4_shutdown;
    qemu_register_shutdown_notifier(&s->shutdown);
    return 0;
}

#if SEL4_QEMU_10_0 /* 10.0: init_machine(MachineState *), no AccelState */
static int sel4_init_machine_10_0(MachineState *ms)
{
    return sel4_init_machine(ms->accelerator, ms);
}
#define sel4_init_machine sel4_init_machine_10_0
#endif

/* ---- properties ---- */

static char *sel4_get_transport(Object *obj, Error **errp)
{
    return g_strdup(SEL4_ACCEL(obj)->transport);
}

static void sel4_set_transport(Object *obj, const char *value, Error **errp)
{
    Sel4State *s = SEL4_ACCEL(obj);

    if (!g_str_equal(value, "sim") && !g_str_equal(value, "uio")) {
        error_setg(errp, "sel4: transport must be 'sim' or 'uio', not '%s'",
                   value);
        return;
    }
    g_free(s->transport);
    s->transport = g_strdup(value);
}

static char *sel4_get_fault_kill(Object *obj, Error **errp)
{
    return g_strdup(SEL4_ACCEL(obj)->fault_kill);
}

static void sel4_set_fault_kill(Object *obj, const char *value, Error **errp)
{
    Sel4State *s = SEL4_ACCEL(obj);

    if (sel4_fault_check(value, errp)) {
        g_free(s->fault_kill);
        s->fault_kill = g_strdup(value);
    }
}

/* String options that need no checks of their own, by field offset. */
static void sel4_get_str(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    char **field = (char **)((char *)obj + (uintptr_t)opaque);
    char *value = *field ? *field : (char *)"";

    visit_type_str(v, name, &value, errp);
}

static void sel4_set_str(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    char **field = (char **)((char *)obj + (uintptr_t)opaque);
    char *value;

    if (!visit_type_str(v, name, &value, errp)) {
        return;
    }
    g_free(*field);
    *field = *value ? value : NULL;
    if (!*field) {
        g_free(value);
    }
}

static void sel4_add_str(ObjectClass *oc, const char *name, size_t offset,
                         const char *description)
{
    object_class_property_add(oc, name, "str", sel4_get_str, sel4_set_str,
                              NULL, (void *)offset);
    object_class_property_set_description(oc, name, description);
}

static int sel4_get_loop(Object *obj, Error **errp)
{
    return SEL4_ACCEL(obj)->loop;
}

static void sel4_set_loop(Object *obj, int value, Error **errp)
{
    SEL4_ACCEL(obj)->loop = value;
}

static int sel4_get_uring_ring(Object *obj, Error **errp)
{
    return SEL4_ACCEL(obj)->uring_ring;
}

static void sel4_set_uring_ring(Object *obj, int value, Error **errp)
{
    SEL4_ACCEL(obj)->uring_ring = value;
}

/* A uint32 option of Sel4State and the values it takes. */
typedef struct Sel4U32Option {
    size_t offset;
    uint32_t min, max;
} Sel4U32Option;

/* Busy-polling longer than a millisecond only burns the BQL holder. */
#define SEL4_POLL_US_MAX    1000
/* A request waits at most this long behind a slow one (sel4-notify.c). */
#define SEL4_NOTIFY_SUPPRESS_US_MAX 100000
/* How long a main-loop turn may poll a drained queue (sel4-notify.c). */
#define SEL4_NOTIFY_POLL_US_MAX 10000

static const Sel4U32Option sel4_opt_batch = {
    offsetof(Sel4State, batch), 1, SEL4_BATCH_MAX,
};
static const Sel4U32Option sel4_opt_poll_us = {
    offsetof(Sel4State, poll_us), 0, SEL4_POLL_US_MAX,
};
static const Sel4U32Option sel4_opt_notify_suppress_us = {
    offsetof(Sel4State, notify_suppress_us), 0, SEL4_NOTIFY_SUPPRESS_US_MAX,
};
static const Sel4U32Option sel4_opt_notify_poll_us = {
    offsetof(Sel4State, notify_poll_us), 0, SEL4_NOTIFY_POLL_US_MAX,
};

static uint32_t *sel4_u32_field(Object *obj, const Sel4U32Option *opt)
{
    return (uint32_t *)((char *)obj + opt->offset);
}

static void sel4_get_u32(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    visit_type_uint32(v, name, sel4_u32_field(obj, opaque), errp);
}

static void sel4_set_u32(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    const Sel4U32Option *opt = opaque;
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value < opt->min || value > opt->max) {
        error_setg(errp, "sel4: %s must be %u..%u, not %u",
                   name, opt->min, opt->max, value);
        return;
    }
    *sel4_u32_field(obj, opt) = value;
}

static bool sel4_get_ioeventfd(Object *obj, Error **errp)
{
    return SEL4_ACCEL(obj)->ioeventfd;
}

static void sel4_set_ioeventfd(Object *obj, bool value, Error **errp)
{
    SEL4_ACCEL(obj)->ioeventfd = value;
}

static bool sel4_get_irqfd(Object *obj, Error **errp)
{
    return SEL4_ACCEL(obj)->irqfd_on;
}

static void sel4_set_irqfd(Object *obj, bool value, Error **errp)
{
    SEL4_ACCEL(obj)->irqfd_on = value;
}

static void sel4_accel_instance_init(Object *obj)
{
    Sel4State *s = SEL4_ACCEL(obj);
    int i;

    s->transport = g_strdup("sim");
    s->loop = SEL4_LOOP_URING;
    s->uring_ring = SEL4_URING_AUTO;
    s->batch = SEL4_BATCH_MAX;
    s->ioeventfd = true;
    s->irqfd_on = true;
    s->notify_suppress_us = 200;
    s->notify_poll_us = 50;
    s->conn = -1;
    s->doorbell_fd = -1;
    s->ring_fd = -1;
    s->thread_ctl_fd = -1;
    s->layout.ram_fd = -1;
    /* detach may run before (or without) uio_map_regions() */
    s->uio.iobuf_fd = -1;
    s->uio.ram_fd = -1;
    for (i = 0; i < SIM_FD_COUNT; i++) {
        s->sim_fds[i] = -1;
    }
}

static void sel4_accel_class_init(ObjectClass *oc, SEL4_CLASS_DATA *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);

    ac->name = "seL4";
    ac->init_machine = sel4_init_machine;
    ac->allowed = &sel4_allowed;
#if !SEL4_QEMU_10_0
    ac->get_stats = sel4_accel_get_stats;
#endif

    object_class_property_add_str(oc, "transport", sel4_get_transport,
                                  sel4_set_transport);
    object_class_property_set_description(oc, "transport",
        "how the VMM is reached: sim (the simulated VMM's unix socket) "
        "or uio (the device VM's /dev/uioN functions)");
    sel4_add_str(oc, "socket", offsetof(Sel4State, socket),
        "transport=sim: path of the simulated VMM's socket");
    sel4_add_str(oc, "uio-iobuf", offsetof(Sel4State, uio_iobuf),
        "transport=uio: the iobuf function's node (default: the "
        "/sys/class/uio device named guest-iobuf-<id>)");
    sel4_add_str(oc, "uio-ram", offsetof(Sel4State, uio_ram),
        "transport=uio: the RAM function's node (default: the device "
        "named guest-ram-<id>)");
    sel4_add_str(oc, "uservm", offsetof(Sel4State, uservm),
        "transport=uio: <id>:<ram_base>:<ram_size>:<pci_mmio_base>:"
        "<pci_mmio_size> (default: the kernel command line's uservm= entry "
        "for $VMID, 1 when unset)");
    sel4_add_str(oc, "x-uio-root", offsetof(Sel4State, uio_root),
        "transport=uio: look for sys/class/uio and dev under this "
        "directory instead of / (a stand-in tree for tests)");
    object_class_property_add_str(oc, "x-fault-kill", sel4_get_fault_kill,
                                  sel4_set_fault_kill);
    object_class_property_set_description(oc, "x-fault-kill",
        "tests: QUEUE.POINT[:N], SIGKILL ourselves the N-th time a "
        "transfer on QUEUE (drvrpc_req, drvrpc_resp, devevt) is claimed "
        "or committed (see accel/sel4/sel4-fault.c)");
    object_class_property_add_enum(oc, "loop", "Sel4Loop", &sel4_loop_lookup,
                                   sel4_get_loop, sel4_set_loop);
    object_class_property_set_description(oc, "loop",
        "who waits for the doorbell: thread (one request at a time, the "
        "deployed shape), thread-batch (the same thread, batch requests "
        "per pass), aio (main loop fd handler) or uring (default)");
    object_class_property_add_enum(oc, "x-uring-ring", "Sel4UringRing",
                                   &sel4_uring_ring_lookup,
                                   sel4_get_uring_ring, sel4_set_uring_ring);
    object_class_property_set_description(oc, "x-uring-ring",
        "loop=uring: auto, shared (the main loop's io_uring) or own "
        "(a ring of our own, its fd in the main loop)");
    object_class_property_add(oc, "batch", "uint32", sel4_get_u32,
                              sel4_set_u32, NULL, (void *)&sel4_opt_batch);
    object_class_property_set_description(oc, "batch",
        "requests taken per pass, 1..32 (default 32); loop=thread takes 1");
    object_class_property_add(oc, "poll-us", "uint32", sel4_get_u32,
                              sel4_set_u32, NULL, (void *)&sel4_opt_poll_us);
    object_class_property_set_description(oc, "poll-us",
        "loop=aio and uring: after a pass, look for more requests this "
        "long before sleeping (0..1000 microseconds, default 0)");
    object_class_property_add_bool(oc, "ioeventfd", sel4_get_ioeventfd,
                                   sel4_set_ioeventfd);
    object_class_property_set_description(oc, "ioeventfd",
        "answer writes that match a device's ioeventfd (virtio queue "
        "notifies) in the batch, without the BQL or a memory dispatch "
        "(default on)");
    object_class_property_add_bool(oc, "irqfd", sel4_get_irqfd,
                                   sel4_set_irqfd);
    object_class_property_set_description(oc, "irqfd",
        "take the devices' guest notifiers (the interrupts of IOThreads "
        "and vhost) on a thread of the accelerator and send them as "
        "SET_IRQ pulses, without the BQL or the main loop (default on)");
    object_class_property_add(oc, "notify-suppress-us", "uint32",
                              sel4_get_u32, sel4_set_u32, NULL,
                              (void *)&sel4_opt_notify_suppress_us);
    object_class_property_set_description(oc, "notify-suppress-us",
        "keep a virtqueue's guest notifies off while it has requests in "
        "flight (served in the main loop or in an IOThread), unless none "
        "completes for this long (0..100000 microseconds, default 200; "
        "0: off)");
    object_class_property_add(oc, "notify-poll-us", "uint32",
                              sel4_get_u32, sel4_set_u32, NULL,
                              (void *)&sel4_opt_notify_poll_us);
    object_class_property_set_description(oc, "notify-poll-us",
        "once a virtqueue whose notifies are off has run dry, keep them "
        "off and look at its ring from every turn of its loop (the main "
        "loop or its IOThread) for this long before turning them on "
        "again (0..10000 microseconds, default 50; 0: on again at once)");
}

static const TypeInfo sel4_accel_type = {
    .name = TYPE_SEL4_ACCEL,
    .parent = TYPE_ACCEL,
    .instance_size = sizeof(Sel4State),
    .instance_init = sel4_accel_instance_init,
    .class_init = sel4_accel_class_init,
};

static void sel4_accel_ops_class_init(ObjectClass *oc, SEL4_CLASS_DATA *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);

    ops->create_vcpu_thread = dummy_start_vcpu_thread;
#if !SEL4_QEMU_10_0 /* 10.2 asserts handle_interrupt; 10.0 defaults it itself */
    /* 10.2: cpus_register_accel() asserts ops->handle_interrupt */
    ops->handle_interrupt = generic_handle_interrupt;
#endif
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
