/*
 * seL4 accelerator: the ioeventfds QEMU registers, and the notify fast
 * path they give.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A device that wants its doorbell writes as an eventfd (virtio-pci's
 * queue notify, once the driver is ready) registers it with
 * memory_region_add_eventfd(); accelerators hear of it through a
 * MemoryListener's eventfd_add/eventfd_del, as accel/kvm does.  We keep
 * the registrations of address_space_memory in a table, and an AS_GLOBAL
 * write of a batch that matches one is answered in that batch's reply
 * commit after one eventfd write: no memory dispatch and, in loop=thread,
 * no BQL.  Writes that match nothing take the memory API, as before
 * (which signals ioeventfds itself without KVM, so both paths agree).
 *
 * The table is read without the BQL by loop=thread, so it is replaced
 * whole under RCU; each entry signals a dup() of the device's eventfd,
 * closed after the grace period, so a write racing with the device's
 * teardown lands in an eventfd nobody reads, never in a reused fd.
 * Entries that kick a virtqueue also carry that queue, for
 * sel4-notify.c's suppression (BQL only).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "qobject/qlist.h"
#include "system/memory.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-pci.h"
#include "sel4-internal.h"
#include "trace.h"

struct Sel4IoeventfdTable {
    struct rcu_head rcu;
    unsigned n;
    Sel4Ioeventfd *e[];
};

static Sel4IoeventfdTable sel4_ioeventfd_empty;

/* memory.c's memory_region_ioeventfd_equal(), for one access */
static bool sel4_ioeventfd_matches(const Sel4Ioeventfd *io, hwaddr addr,
                                   unsigned len, uint64_t data)
{
    return io->addr == addr &&
           (!io->len || (io->len == len &&
                         (!io->match_data || io->data == data)));
}

bool sel4_ioeventfd_write(Sel4State *s, hwaddr addr, unsigned len,
                          uint64_t data)
{
    static const uint64_t one = 1;
    Sel4IoeventfdTable *t;
    bool hit = false;
    unsigned i;

    if (!s->ioeventfd) {
        return false;
    }
    WITH_RCU_READ_LOCK_GUARD() {
        t = qatomic_rcu_read(&s->ioeventfds);
        for (i = 0; i < t->n && !hit; i++) {
            Sel4Ioeventfd *io = t->e[i];

            if (!sel4_ioeventfd_matches(io, addr, len, data)) {
                continue;
            }
            hit = true;
            /* sel4-notify.c looks at its queue from now on */
            qatomic_set(&io->active, true);
            /* an eventfd counter only fails to add at 2^64 - 1 */
            if (write(io->fd, &one, sizeof(one)) != sizeof(one)) {
                sel4_error(s, SEL4_ERR_IOEVENTFD, errno, addr);
            }
            trace_sel4_ioeventfd_hit(addr, len, data, io->queue);
        }
    }
    if (hit) {
        sel4_stat_add(s, SEL4_STAT_IOEVENTFD, 1);
    }
    return hit;
}

/*
 * The virtqueue an eventfd kicks: the queue whose host notifier it is, of
 * one of the virtio-pci devices we registered.  (The listener is told the
 * address, not the region, so the notifier is what identifies it.)
 */
static void sel4_ioeventfd_find_vq(Sel4State *s, Sel4Ioeventfd *io,
                                   EventNotifier *e)
{
    unsigned i;
    int n;

    io->queue = -1;
    for (i = 0; i < s->n_pcidev; i++) {
        VirtIOPCIProxy *proxy = (VirtIOPCIProxy *)
            object_dynamic_cast(OBJECT(s->pcidev[i]), TYPE_VIRTIO_PCI);
        VirtIODevice *vdev = proxy ? virtio_bus_get_device(&proxy->bus)
                                   : NULL;

        for (n = 0; vdev && n < VIRTIO_QUEUE_MAX; n++) {
            if (virtio_queue_get_num(vdev, n) &&
                virtio_queue_get_host_notifier(virtio_get_queue(vdev, n)) ==
                e) {
                io->vdev = vdev;
                io->queue = n;
                io->main_loop = sel4_vdev_in_main_loop(vdev);
                return;
            }
        }
    }
}

/* Publish @t, retire the table it replaces. */
static void sel4_ioeventfd_publish(Sel4State *s, Sel4IoeventfdTable *t)
{
    Sel4IoeventfdTable *old = s->ioeventfds;

    qatomic_rcu_set(&s->ioeventfds, t);
    if (old != &sel4_ioeventfd_empty) {
        g_free_rcu(old, rcu);
    }
}

static Sel4IoeventfdTable *sel4_ioeventfd_table_new(unsigned n)
{
    Sel4IoeventfdTable *t = g_malloc0(sizeof(*t) + n * sizeof(t->e[0]));

    t->n = n;
    return t;
}

static void sel4_ioeventfd_add(MemoryListener *listener,
                               MemoryRegionSection *section,
                               bool match_data, uint64_t data,
                               EventNotifier *e)
{
    Sel4State *s = container_of(listener, Sel4State, ioeventfd_listener);
    Sel4IoeventfdTable *old = s->ioeventfds, *t;
    Sel4Ioeventfd *io = g_new0(Sel4Ioeventfd, 1);

    io->addr = section->offset_within_address_space;
    io->len = int128_get64(section->size);
    io->match_data = match_data;
    io->data = data;
    io->e = e;
    io->fd = dup(event_notifier_get_fd(e));
    if (io->fd < 0) {
        /* the memory API still signals it: only the fast path is lost */
        warn_report("sel4: no fast path for the ioeventfd at 0x%" HWADDR_PRIx
                    ": dup: %s", io->addr, strerror(errno));
        g_free(io);
        return;
    }
    sel4_ioeventfd_find_vq(s, io, e);
    trace_sel4_ioeventfd_add(io->addr, io->len, match_data, data, io->queue,
                             io->main_loop);

    t = sel4_ioeventfd_table_new(old->n + 1);
    memcpy(t->e, old->e, old->n * sizeof(t->e[0]));
    t->e[old->n] = io;
    sel4_ioeventfd_publish(s, t);
}

static void sel4_ioeventfd_free(Sel4Ioeventfd *io)
{
    close(io->fd);
    g_free(io);
}

static void sel4_ioeventfd_del(MemoryListener *listener,
                               MemoryRegionSection *section,
                               bool match_data, uint64_t data,
                               EventNotifier *e)
{
    Sel4State *s = container_of(listener, Sel4State, ioeventfd_listener);
    Sel4IoeventfdTable *old = s->ioeventfds, *t;
    hwaddr addr = section->offset_within_address_space;
    unsigned i, j;

    for (i = 0; i < old->n; i++) {
        Sel4Ioeventfd *io = old->e[i];

        if (io->e == e && io->addr == addr && io->match_data == match_data &&
            io->data == data) {
            break;
        }
    }
    if (i == old->n) {
        return;                 /* its add found no fd to dup */
    }
    trace_sel4_ioeventfd_del(addr, old->e[i]->queue);
    /* the device takes its queue back as it was before we suppressed */
    sel4_notify_release(s, old->e[i]);
    t = old->n > 1 ? sel4_ioeventfd_table_new(old->n - 1)
                   : &sel4_ioeventfd_empty;
    for (j = 0; j < old->n; j++) {
        if (j != i) {
            t->e[j - (j > i)] = old->e[j];
        }
    }
    call_rcu(old->e[i], sel4_ioeventfd_free, rcu);
    sel4_ioeventfd_publish(s, t);
}

void sel4_ioeventfd_foreach(Sel4State *s,
                            void (*fn)(Sel4State *, Sel4Ioeventfd *))
{
    Sel4IoeventfdTable *t = s->ioeventfds;
    unsigned i;

    for (i = 0; i < t->n; i++) {
        fn(s, t->e[i]);
    }
}

void sel4_ioeventfd_init(Sel4State *s)
{
    s->ioeventfds = &sel4_ioeventfd_empty;
    s->ioeventfd_listener = (MemoryListener) {
        .name = "sel4-ioeventfd",
        .eventfd_add = sel4_ioeventfd_add,
        .eventfd_del = sel4_ioeventfd_del,
        .priority = MEMORY_LISTENER_PRIORITY_DEV_BACKEND,
    };
    memory_listener_register(&s->ioeventfd_listener, &address_space_memory);
}
