/*
 * seL4 accelerator: QEMU as the device model of an seL4 VMM.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * There are no vCPUs here: the guest runs under the seL4 VMM, which
 * forwards the guest's PCI config and BAR accesses to us as MMIO requests
 * over the shared iobuf (sel4/vso_rpc.h), rings our doorbell, and waits
 * for the replies.  We register the PCI devices of the machine's root bus
 * (REGISTER_PCI_DEV) and tell the VMM when we run (START_VM).
 *
 * This first slice supports transport=sim (sel4/sim_transport.h: the
 * simulated VMM hands us memfds and eventfds over a unix socket) and
 * loop=aio (the doorbell eventfd is served by the main loop, with the BQL
 * held).
 */
#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qemu/accel.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "accel/accel-ops.h"
#include "accel/accel-cpu-ops.h"
#include "accel/dummy-cpus.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_host.h"
#include "hw/pci-host/gpex.h"
#include "system/address-spaces.h"
#include "system/memory.h"
#include "system/runstate.h"
#include "system/system.h"
#include "system/sel4.h"
#include "sel4/rpc.h"
#include "sel4/vso_rpc.h"
#include "sel4/sim_transport.h"
#include "trace.h"

#define SEL4_BATCH_MAX      RPCMSG_BUFFER_SIZE

typedef struct Sel4State {
    AccelState parent_obj;

    /* properties */
    char *transport;
    char *socket;
    char *loop;
    uint32_t batch;

    /* sim transport */
    SimHello hello;
    int fds[SIM_FD_COUNT];
    int conn;
    SimRegions regions;

    VsoRpc rpc;
    bool attached;

    PCIBus *root_bus;
    PCIDevice *pcidev[RPC_MAX_PCIDEV];
    unsigned n_pcidev;
    bool started;

    Notifier machine_done;
    VMChangeStateEntry *vmstate;

    /* counters */
    uint64_t requests;
    uint64_t errors;
    uint64_t doorbells;
} Sel4State;

#define TYPE_SEL4_ACCEL ACCEL_CLASS_NAME("sel4")
OBJECT_DECLARE_SIMPLE_TYPE(Sel4State, SEL4_ACCEL)

bool sel4_allowed;
static Sel4State *sel4_state;

/* ---- the machine's view ---- */

bool sel4_guest_layout(Sel4GuestLayout *layout)
{
    Sel4State *s = sel4_state;

    if (!s || !s->attached) {
        return false;
    }
    layout->ram_base = s->hello.ram_base;
    layout->ram_size = s->hello.ram_size;
    layout->ram = s->regions.ram;
    layout->pci_mmio_base = s->hello.pci_mmio_base;
    layout->pci_mmio_size = s->hello.pci_mmio_size;
    layout->pci_pio_size = SIM_PCI_PIO_SIZE;
    return true;
}

void sel4_set_pci_root_bus(PCIBus *bus)
{
    if (sel4_state) {
        sel4_state->root_bus = bus;
    }
}

/* ---- doorbells and events ---- */

static void sel4_ring_vmm(Sel4State *s)
{
    uint64_t one = 1;
    ssize_t r;

    do {
        r = write(s->fds[SIM_FD_DOORBELL_TO_VMM], &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
    /*
     * EAGAIN: the counter is about to overflow, so the VMM has a doorbell
     * pending anyway.
     */
    if (r < 0 && errno != EAGAIN) {
        error_report("sel4: ringing the VMM doorbell failed: %s",
                     strerror(errno));
    }
    s->doorbells++;
    trace_sel4_doorbell_rung(s->doorbells);
}

static void sel4_error(Sel4State *s, const char *what, uint64_t a,
                       uint64_t b)
{
    s->errors++;
    trace_sel4_error(what, a, b);
}

/* Send @n events as one batch and ring once. */
static void sel4_send_events(Sel4State *s, const rpcmsg_t *msgs, unsigned n)
{
    int sent = vso_rpc_send_events(&s->rpc, msgs, n);

    if (sent != (int)n) {
        error_report("sel4: the VMM's event queue took %d of %u events",
                     sent, n);
        sel4_error(s, "send_events", n, sent < 0 ? 0 : sent);
    }
    if (sent > 0) {
        sel4_ring_vmm(s);
    }
}

/* ---- registration and START_VM ---- */

static void sel4_collect_pcidev(PCIBus *bus, PCIDevice *dev, void *opaque)
{
    Sel4State *s = opaque;

    /* the host bridge's own function is not a guest device */
    if (object_dynamic_cast(OBJECT(dev), TYPE_GPEX_ROOT_DEVICE)) {
        return;
    }
    if (s->n_pcidev >= RPC_MAX_PCIDEV) {
        error_report("sel4: more than %u PCI devices; %s is not registered",
                     RPC_MAX_PCIDEV, object_get_typename(OBJECT(dev)));
        sel4_error(s, "too_many_pcidev", s->n_pcidev, dev->devfn);
        return;
    }
    s->pcidev[s->n_pcidev++] = dev;
}

static void sel4_machine_init_done(Notifier *notifier, void *data)
{
    Sel4State *s = container_of(notifier, Sel4State, machine_done);
    rpcmsg_t msgs[RPC_MAX_PCIDEV];
    unsigned i;

    if (!s->root_bus) {
        warn_report("sel4: the machine has no PCI root bus; "
                    "no devices registered");
        return;
    }
    pci_for_each_device(s->root_bus, pci_bus_num(s->root_bus),
                        sel4_collect_pcidev, s);
    for (i = 0; i < s->n_pcidev; i++) {
        PCIDevice *dev = s->pcidev[i];

        msgs[i] = (rpcmsg_t) {
            .mr0 = rpc_mr0_op(QEMU_OP_REGISTER_PCI_DEV),
            .mr1 = i,
        };
        trace_sel4_register_pci_dev(i, dev->devfn,
                                    object_get_typename(OBJECT(dev)));
    }
    if (s->n_pcidev) {
        sel4_send_events(s, msgs, s->n_pcidev);
    }
}

static void sel4_vm_state_change(void *opaque, bool running, RunState state)
{
    Sel4State *s = opaque;
    rpcmsg_t msg = { .mr0 = rpc_mr0_op(QEMU_OP_START_VM) };

    if (!running || s->started) {
        return;
    }
    s->started = true;
    trace_sel4_start_vm(s->n_pcidev);
    sel4_send_events(s, &msg, 1);
}

/* ---- request dispatch ---- */

static bool sel4_config_access(Sel4State *s, const VsoMmio *m,
                               uint64_t *data)
{
    PCIDevice *dev;
    uint32_t limit;
    unsigned done;

    if (m->as >= s->n_pcidev) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "sel4: config access to unregistered device %u\n",
                      m->as);
        return false;
    }
    dev = s->pcidev[m->as];
    limit = pci_config_size(dev);
    if (m->addr >= limit || m->len > limit - m->addr) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "sel4: config access of device %u at 0x%" PRIx64
                      " len %u beyond its 0x%x bytes\n",
                      m->as, m->addr, m->len, limit);
        return false;
    }
    /* config space accesses are at most 4 bytes: split an 8-byte one */
    if (!m->write) {
        *data = 0;
    }
    for (done = 0; done < m->len; done += 4) {
        unsigned len = MIN(m->len - done, 4u);
        uint32_t addr = m->addr + done;

        if (m->write) {
            pci_host_config_write_common(dev, addr, limit,
                                         extract64(*data, done * 8, len * 8),
                                         len);
        } else {
            uint64_t v = pci_host_config_read_common(dev, addr, limit, len);

            *data |= v << (done * 8);
        }
    }
    return true;
}

static bool sel4_global_access(Sel4State *s, const VsoMmio *m,
                               uint64_t *data)
{
    uint8_t buf[8];
    MemTxResult r;

    if (m->write) {
        stn_le_p(buf, m->len, *data);
        r = address_space_write(&address_space_memory, m->addr,
                                MEMTXATTRS_UNSPECIFIED, buf, m->len);
    } else {
        r = address_space_read(&address_space_memory, m->addr,
                               MEMTXATTRS_UNSPECIFIED, buf, m->len);
        if (r == MEMTX_OK) {
            *data = ldn_le_p(buf, m->len);
        }
    }
    if (r != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "sel4: %s of %u bytes at 0x%" PRIx64 " failed (%u)\n",
                      m->write ? "write" : "read", m->len, m->addr, r);
        return false;
    }
    return true;
}

static uint64_t sel4_handle_request(Sel4State *s, const VsoRequest *req)
{
    VsoMmio m;
    VsoRpcError err;
    uint64_t data;
    bool ok;

    s->requests++;
    err = vso_rpc_decode(&req->msg, &m);
    if (err != VSO_RPC_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "sel4: bad request mr0=0x%" PRIx64 ": %s\n",
                      req->msg.mr0, vso_rpc_strerror(err));
        sel4_error(s, "decode", req->msg.mr0, err);
        trace_sel4_request(req->id, req->msg.mr0, req->msg.mr1, 0);
        return UINT64_MAX;
    }
    trace_sel4_request(req->id, req->msg.mr0, m.addr, m.data);
    data = m.data;
    if (m.as == AS_GLOBAL) {
        ok = sel4_global_access(s, &m, &data);
    } else {
        ok = sel4_config_access(s, &m, &data);
    }
    if (!ok) {
        sel4_error(s, m.as == AS_GLOBAL ? "global_access" : "config_access",
                   m.as, m.addr);
        return m.write ? 0 : UINT64_MAX;
    }
    if (m.write) {
        return 0;
    }
    return m.len == 8 ? data : data & MAKE_64BIT_MASK(0, m.len * 8);
}

static void sel4_doorbell_read(void *opaque)
{
    Sel4State *s = opaque;
    VsoRequest reqs[SEL4_BATCH_MAX];
    VsoReply replies[SEL4_BATCH_MAX];
    uint64_t count;
    ssize_t r;
    int n, i, published;

    /* drain the eventfd; EAGAIN (nothing pending) is fine */
    do {
        r = read(s->fds[SIM_FD_DOORBELL_TO_DEVICE], &count, sizeof(count));
    } while (r < 0 && errno == EINTR);

    /*
     * The doorbell is drained, so take everything queued now: a request
     * left behind would wait for the next doorbell.
     */
    for (;;) {
        n = vso_rpc_recv(&s->rpc, reqs, s->batch);
        if (n <= 0) {
            if (n < 0) {
                error_report_once("sel4: the request queue is broken (%d)",
                                  n);
                sel4_error(s, "recv", -n, 0);
            }
            return;
        }
        for (i = 0; i < n; i++) {
            replies[i].id = reqs[i].id;
            replies[i].data = sel4_handle_request(s, &reqs[i]);
        }
        published = vso_rpc_reply(&s->rpc, replies, n);
        trace_sel4_reply_batch(n, published);
        if (published != n) {
            error_report_once("sel4: published %d of %d replies", published,
                              n);
            sel4_error(s, "reply", n, published);
        }
        sel4_ring_vmm(s);
        if (published < 0) {
            return;
        }
    }
}

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
    error_report("sel4: the VMM hung up");
    exit(1);
}

/* ---- init ---- */

static bool sel4_attach_sim(Sel4State *s, Error **errp)
{
    GError *gerr = NULL;

    if (!s->socket || !*s->socket) {
        error_setg(errp, "sel4: transport=sim needs socket=PATH");
        return false;
    }
    s->conn = sim_transport_connect(s->socket, &s->hello, s->fds, &gerr);
    if (s->conn < 0) {
        error_setg(errp, "sel4: cannot attach to the VMM at '%s': %s",
                   s->socket, gerr->message);
        g_error_free(gerr);
        return false;
    }
    if (sim_transport_map(&s->hello, s->fds, &s->regions, &gerr) < 0) {
        error_setg(errp, "sel4: cannot map the VMM's regions: %s",
                   gerr->message);
        g_error_free(gerr);
        goto fail;
    }
    if (vso_rpc_init(&s->rpc, s->regions.iobuf, RPC_IOBUF_SIZE,
                     VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ) < 0) {
        error_setg(errp, "sel4: the VMM's iobuf is unusable");
        goto fail;
    }
    /* a predecessor may have died mid-claim: we are the only device side */
    vso_queue_recover(&s->rpc.req, false);
    vso_queue_recover(&s->rpc.resp, true);
    vso_queue_recover(&s->rpc.evt, true);
    s->attached = true;
    return true;

fail:
    sim_transport_unmap(&s->regions);
    sim_transport_close_fds(s->fds);
    close(s->conn);
    s->conn = -1;
    return false;
}

static int sel4_init_machine(AccelState *as, MachineState *ms)
{
    Sel4State *s = SEL4_ACCEL(as);
    Error *err = NULL;

    trace_sel4_init(s->transport, s->loop, s->batch);
    if (g_str_equal(s->transport, "uio")) {
        error_report("sel4: transport=uio is not implemented yet");
        return -ENOTSUP;
    }
    if (!g_str_equal(s->loop, "aio")) {
        error_report("sel4: loop=%s is not implemented yet", s->loop);
        return -ENOTSUP;
    }
    if (!sel4_attach_sim(s, &err)) {
        error_report_err(err);
        return -EIO;
    }
    sel4_state = s;

    s->machine_done.notify = sel4_machine_init_done;
    qemu_add_machine_init_done_notifier(&s->machine_done);
    s->vmstate = qemu_add_vm_change_state_handler(sel4_vm_state_change, s);
    /* the eventfd is O_NONBLOCK already, shared with the VMM: keep it so */
    qemu_set_fd_handler(s->fds[SIM_FD_DOORBELL_TO_DEVICE],
                        sel4_doorbell_read, NULL, s);
    qemu_set_fd_handler(s->conn, sel4_conn_event, NULL, s);
    /* requests queued before we attached */
    sel4_doorbell_read(s);
    return 0;
}

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

static char *sel4_get_socket(Object *obj, Error **errp)
{
    return g_strdup(SEL4_ACCEL(obj)->socket);
}

static void sel4_set_socket(Object *obj, const char *value, Error **errp)
{
    Sel4State *s = SEL4_ACCEL(obj);

    g_free(s->socket);
    s->socket = g_strdup(value);
}

static char *sel4_get_loop(Object *obj, Error **errp)
{
    return g_strdup(SEL4_ACCEL(obj)->loop);
}

static void sel4_set_loop(Object *obj, const char *value, Error **errp)
{
    Sel4State *s = SEL4_ACCEL(obj);

    if (!g_str_equal(value, "aio") && !g_str_equal(value, "thread") &&
        !g_str_equal(value, "uring")) {
        error_setg(errp, "sel4: loop must be 'aio', 'thread' or 'uring', "
                   "not '%s'", value);
        return;
    }
    g_free(s->loop);
    s->loop = g_strdup(value);
}

static void sel4_get_batch(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    uint32_t value = SEL4_ACCEL(obj)->batch;

    visit_type_uint32(v, name, &value, errp);
}

static void sel4_set_batch(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value < 1 || value > SEL4_BATCH_MAX) {
        error_setg(errp, "sel4: batch must be 1..%u, not %u",
                   SEL4_BATCH_MAX, value);
        return;
    }
    SEL4_ACCEL(obj)->batch = value;
}

static void sel4_accel_instance_init(Object *obj)
{
    Sel4State *s = SEL4_ACCEL(obj);
    int i;

    s->transport = g_strdup("sim");
    s->loop = g_strdup("aio");
    s->batch = SEL4_BATCH_MAX;
    s->conn = -1;
    for (i = 0; i < SIM_FD_COUNT; i++) {
        s->fds[i] = -1;
    }
}

static void sel4_accel_class_init(ObjectClass *oc, const void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);

    ac->name = "seL4";
    ac->init_machine = sel4_init_machine;
    ac->allowed = &sel4_allowed;

    object_class_property_add_str(oc, "transport", sel4_get_transport,
                                  sel4_set_transport);
    object_class_property_set_description(oc, "transport",
        "how the VMM is reached: sim (unix socket of the simulated VMM) "
        "or uio (not implemented yet)");
    object_class_property_add_str(oc, "socket", sel4_get_socket,
                                  sel4_set_socket);
    object_class_property_set_description(oc, "socket",
        "transport=sim: path of the simulated VMM's socket");
    object_class_property_add_str(oc, "loop", sel4_get_loop, sel4_set_loop);
    object_class_property_set_description(oc, "loop",
        "who serves the doorbell: aio (main loop); thread and uring are "
        "not implemented yet");
    object_class_property_add(oc, "batch", "uint32", sel4_get_batch,
                              sel4_set_batch, NULL, NULL);
    object_class_property_set_description(oc, "batch",
        "requests taken per queue pass (1..32, default 32)");
}

static const TypeInfo sel4_accel_type = {
    .name = TYPE_SEL4_ACCEL,
    .parent = TYPE_ACCEL,
    .instance_size = sizeof(Sel4State),
    .instance_init = sel4_accel_instance_init,
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
