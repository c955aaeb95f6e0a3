/*
 * The simulated seL4 VMM (lib/vmm) against a fake device side
 * built on the project's own transport and queue library: registrations
 * and START_VM, config space through RPC and INTERRUPT_LINE/PIN answered
 * locally, synchronous and pipelined MMIO, SET_IRQ levels and MSI pulses,
 * protocol errors counted, timeouts, and the device side dying.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sel4/sim_transport.h"
#include "sel4/vso_rpc.h"
#include "sel4/vmm_sim.h"

#define NDEVS           3
#define PCI_BASE        VMM_SIM_DEFAULT_PCI_MMIO_BASE
#define GLOBAL_XOR      UINT64_C(0x5a5a5a5a5a5a5a5a)
#define IRQ_REG         (PCI_BASE + 0x1000)    /* 1: INTx 0 set; 0: clear+MSI */
#define DIE_REG         (PCI_BASE + 0x2000)    /* read: no reply, then die */
#define HANG_REG        (PCI_BASE + 0x3000)    /* read: never answered */
#define MSI_SPI         100u
#define WAIT_MS         2000

/* ---- the fake device side: a thread playing QEMU ---- */

typedef struct FakeDev {
    char *path;
    bool misbehave;         /* late REGISTER_PCI_DEV + unknown opcode */
    GThread *thread;
    int stop;               /* atomic: leave the loop, hang up */
    int ready;              /* atomic: connected, events sent */
    int line_pin_rpcs;      /* atomic: config accesses to 0x3c/0x3d */
    int requests;           /* atomic */
    int max_per_wake;       /* atomic: most requests taken per doorbell */
    int bad_slot;           /* atomic: requests from unexpected slots */
    uint8_t cfg[NDEVS][256];
    uint64_t store_addr[64];
    uint64_t store_val[64];
    unsigned nstore;
} FakeDev;

static void fake_send(VsoRpc *rpc, uint64_t op, uint64_t mr1, uint64_t mr2)
{
    rpcmsg_t m = { .mr0 = rpc_mr0_op(op), .mr1 = mr1, .mr2 = mr2 };

    g_assert_cmpint(vso_rpc_send_events(rpc, &m, 1), ==, 1);
}

static void ring(int fd)
{
    uint64_t one = 1;

    g_assert_cmpint(write(fd, &one, sizeof(one)), ==, sizeof(one));
}

/* Returns the read data; *reply is false when the request is not answered. */
static uint64_t fake_serve(FakeDev *fd, VsoRpc *rpc, const VsoMmio *m,
                           bool *reply, bool *die)
{
    uint64_t mask = m->len == 8 ? UINT64_MAX
                                : (UINT64_C(1) << (m->len * 8)) - 1;
    uint64_t v = 0;
    unsigned i;

    *reply = true;
    if (m->as != AS_GLOBAL) {
        if (m->slot != VMM_SIM_CONFIG_SLOT) {
            g_atomic_int_inc(&fd->bad_slot);
        }
        if (m->as >= NDEVS || m->addr + m->len > 256) {
            return UINT64_MAX;
        }
        if (m->addr < 0x3e && m->addr + m->len > 0x3c) {
            g_atomic_int_inc(&fd->line_pin_rpcs);
        }
        for (i = 0; i < m->len; i++) {
            if (m->write) {
                fd->cfg[m->as][m->addr + i] = m->data >> (8 * i);
            } else {
                v |= (uint64_t)fd->cfg[m->as][m->addr + i] << (8 * i);
            }
        }
        return v;
    }
    if (m->addr == DIE_REG) {
        *reply = false;
        *die = true;
        return 0;
    }
    if (m->addr == HANG_REG) {
        *reply = false;
        return 0;
    }
    if (m->write && m->addr == IRQ_REG) {
        if (m->data) {
            fake_send(rpc, QEMU_OP_SET_IRQ, 0, RPC_IRQ_SET);
        } else {
            fake_send(rpc, QEMU_OP_SET_IRQ, 0, RPC_IRQ_CLR);
            fake_send(rpc, QEMU_OP_SET_IRQ, MSI_SPI, RPC_IRQ_PULSE);
        }
    }
    for (i = 0; i < fd->nstore; i++) {
        if (fd->store_addr[i] == m->addr) {
            break;
        }
    }
    if (m->write) {
        g_assert_cmpuint(i, <, G_N_ELEMENTS(fd->store_addr));
        fd->store_addr[i] = m->addr;
        fd->store_val[i] = m->data & mask;
        fd->nstore += i == fd->nstore;
        return 0;
    }
    return (i < fd->nstore ? fd->store_val[i] : m->addr ^ GLOBAL_XOR) & mask;
}

static gpointer fake_thread(gpointer opaque)
{
    FakeDev *fd = opaque;
    GError *err = NULL;
    SimHello hello;
    SimRegions reg;
    VsoRpc rpc;
    int fds[SIM_FD_COUNT];
    int conn, n;
    bool die = false;

    conn = sim_transport_connect(fd->path, &hello, fds, &err);
    g_assert_no_error(err);
    g_assert_cmpint(sim_transport_map(&hello, fds, &reg, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(vso_rpc_init(&rpc, reg.iobuf, RPC_IOBUF_SIZE,
                                 VSO_RPC_DEVICE, RPC_QUEUE_DRVRPC_REQ), ==, 0);

    for (n = 0; n < NDEVS; n++) {
        fake_send(&rpc, QEMU_OP_REGISTER_PCI_DEV, n, 0);
    }
    fake_send(&rpc, QEMU_OP_START_VM, 0, 0);
    if (fd->misbehave) {
        fake_send(&rpc, QEMU_OP_REGISTER_PCI_DEV, NDEVS, 0);
        fake_send(&rpc, 33, 0, 0);
    }
    ring(fds[SIM_FD_DOORBELL_TO_VMM]);
    g_atomic_int_set(&fd->ready, 1);

    while (!g_atomic_int_get(&fd->stop) && !die) {
        struct pollfd pfd = {
            .fd = fds[SIM_FD_DOORBELL_TO_DEVICE], .events = POLLIN,
        };
        VsoRequest reqs[RPCMSG_BUFFER_SIZE];
        VsoReply reps[RPCMSG_BUFFER_SIZE];
        int got = 0, k = 0, i;
        uint64_t cnt;

        if (poll(&pfd, 1, 20) <= 0) {
            continue;
        }
        g_assert_cmpint(read(pfd.fd, &cnt, sizeof(cnt)), ==, sizeof(cnt));
        while ((n = vso_rpc_recv(&rpc, reqs, RPCMSG_BUFFER_SIZE)) > 0) {
            for (i = 0; i < n; i++) {
                VsoMmio m;
                bool reply;
                uint64_t v;

                g_assert_cmpint(vso_rpc_decode(&reqs[i].msg, &m), ==,
                                VSO_RPC_OK);
                v = fake_serve(fd, &rpc, &m, &reply, &die);
                if (reply) {
                    reps[k].id = reqs[i].id;
                    reps[k++].data = v;
                }
            }
            got += n;
            g_assert_cmpint(vso_rpc_reply(&rpc, reps, k), ==, k);
            k = 0;
        }
        g_atomic_int_add(&fd->requests, got);
        if (got > g_atomic_int_get(&fd->max_per_wake)) {
            g_atomic_int_set(&fd->max_per_wake, got);
        }
        if (die) {
            /* Leave the request unanswered, then die "later". */
            g_usleep(100 * 1000);
            break;
        }
        ring(fds[SIM_FD_DOORBELL_TO_VMM]);
    }
    close(conn);
    sim_transport_unmap(&reg);
    sim_transport_close_fds(fds);
    return NULL;
}

static void fake_start(FakeDev *fd, char *path)
{
    fd->path = path;
    for (unsigned d = 0; d < NDEVS; d++) {
        fd->cfg[d][0] = 0xf4;                   /* vendor 0x1af4 */
        fd->cfg[d][1] = 0x1a;
        fd->cfg[d][2] = 0x41 + d;               /* device 0x1041 + d */
        fd->cfg[d][3] = 0x10;
        fd->cfg[d][0x3c] = 0xee;                /* must never be seen */
    }
    fd->thread = g_thread_new("fake-qemu", fake_thread, fd);
}

/* ---- fixture: a VMM with a connected, started fake device ---- */

typedef struct Fixture {
    char *dir;
    char *path;
    VmmSim *sim;
    FakeDev fd;
} Fixture;

/* @cfg: the VMM's configuration but for socket_path (may be NULL) */
static void fixture_start_cfg(Fixture *f, const VmmSimConfig *cfg_in,
                              bool misbehave)
{
    VmmSimConfig cfg = { 0 };
    GError *err = NULL;

    if (cfg_in) {
        cfg = *cfg_in;
    }
    memset(f, 0, sizeof(*f));
    f->dir = g_dir_make_tmp("vmm-sim-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->path = g_build_filename(f->dir, "vmm.sock", NULL);
    cfg.socket_path = f->path;
    f->sim = vmm_sim_new(&cfg, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->sim);

    f->fd.misbehave = misbehave;
    fake_start(&f->fd, f->path);

    g_assert_true(vmm_sim_accept(f->sim, WAIT_MS, &err));
    g_assert_no_error(err);
    g_assert_true(vmm_sim_wait_started(f->sim, WAIT_MS));
}

static void fixture_start(Fixture *f, bool misbehave, int timeout_ms)
{
    VmmSimConfig cfg = { .timeout_ms = timeout_ms };

    fixture_start_cfg(f, &cfg, misbehave);
}

static void fixture_stop(Fixture *f)
{
    g_atomic_int_set(&f->fd.stop, 1);
    g_thread_join(f->fd.thread);
    vmm_sim_free(f->sim);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    g_assert_cmpint(g_rmdir(f->dir), ==, 0);
    g_free(f->path);
    g_free(f->dir);
}

static VmmSimStats stats_of(VmmSim *sim)
{
    VmmSimStats s;

    vmm_sim_get_stats(sim, &s);
    return s;
}

/* ---- tests ---- */

static void test_boot(void)
{
    Fixture f;
    const VmmSimPciDev *devs;
    const VmmSimConfig *cfg;
    unsigned n, i;

    fixture_start(&f, false, 0);
    g_assert_true(vmm_sim_started(f.sim));
    g_assert_true(vmm_sim_connected(f.sim));
    devs = vmm_sim_pci_devs(f.sim, &n);
    g_assert_cmpuint(n, ==, NDEVS);
    for (i = 0; i < n; i++) {
        g_assert_cmpuint(devs[i].index, ==, i);
        g_assert_cmpuint(devs[i].devfn, ==, (i + 1) << 3);
        g_assert_true(vmm_sim_pci_dev(f.sim, i) == &devs[i]);
    }
    g_assert_null(vmm_sim_pci_dev(f.sim, NDEVS));

    cfg = vmm_sim_config(f.sim);
    g_assert_cmphex(cfg->ram_base, ==, 0x40000000);
    g_assert_cmphex(cfg->ram_size, ==, 512u << 20);
    g_assert_cmphex(vmm_sim_ram_size(f.sim), ==, 512u << 20);
    g_assert_nonnull(vmm_sim_ram(f.sim));
    g_assert_true(vmm_sim_gpa_to_host(f.sim, 0x40001000, 16) ==
                  (uint8_t *)vmm_sim_ram(f.sim) + 0x1000);
    g_assert_null(vmm_sim_gpa_to_host(f.sim, 0x3ffff000, 16));
    g_assert_null(vmm_sim_gpa_to_host(f.sim, 0x40000000 + (512u << 20) - 8,
                                      16));
    g_assert_cmpuint(stats_of(f.sim).protocol_errors, ==, 0);
    g_assert_cmpuint(stats_of(f.sim).events, ==, NDEVS + 1);
    fixture_stop(&f);
}

static void test_config(void)
{
    Fixture f;
    GError *err = NULL;
    uint64_t v;

    fixture_start(&f, false, 0);
    g_assert_true(vmm_sim_config_read(f.sim, 0, 0, 2, &v, &err));
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, 0x1af4);
    g_assert_true(vmm_sim_config_read(f.sim, 2, 0, 4, &v, &err));
    g_assert_cmphex(v, ==, 0x10431af4);

    /* INTERRUPT_LINE/PIN: answered by the VMM, no RPC */
    g_assert_true(vmm_sim_config_read(f.sim, 1, 0x3d, 1, &v, &err));
    g_assert_cmphex(v, ==, 1);
    g_assert_true(vmm_sim_config_read(f.sim, 1, 0x3c, 1, &v, &err));
    g_assert_cmphex(v, ==, vmm_sim_pci_dev(f.sim, 1)->intx_line);
    g_assert_cmphex(v, ==, VMM_SIM_DEFAULT_INTX_BASE + 2);  /* slot 2 */
    g_assert_true(vmm_sim_config_write(f.sim, 1, 0x3c, 1, 0x2a, &err));
    g_assert_true(vmm_sim_config_read(f.sim, 1, 0x3c, 2, &v, &err));
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, 0x012a);
    g_assert_cmpint(g_atomic_int_get(&f.fd.line_pin_rpcs), ==, 0);
    g_assert_cmpuint(stats_of(f.sim).local_config, ==, 4);

    /* a dword over 0x3c goes to the device, with LINE/PIN overlaid */
    f.fd.cfg[1][0x3e] = 0x77;
    g_assert_true(vmm_sim_config_read(f.sim, 1, 0x3c, 4, &v, &err));
    g_assert_cmphex(v, ==, 0x0077012a);

    /* unregistered device, bad length, bad offset */
    g_assert_false(vmm_sim_config_read(f.sim, NDEVS, 0, 4, &v, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(vmm_sim_config_read(f.sim, 0, 0, 3, &v, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(vmm_sim_config_read(f.sim, 0, 4094, 4, &v, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(g_atomic_int_get(&f.fd.bad_slot), ==, 0);
    fixture_stop(&f);
}

static void test_mmio_roundtrip(void)
{
    Fixture f;
    GError *err = NULL;
    uint64_t v;

    fixture_start(&f, false, 0);
    g_assert_true(vmm_sim_mmio_write(f.sim, 0, AS_GLOBAL, PCI_BASE + 0x100,
                                     4, 0x1deadbeefull, &err));
    g_assert_no_error(err);
    g_assert_true(vmm_sim_mmio_read(f.sim, 3, AS_GLOBAL, PCI_BASE + 0x100,
                                    4, &v, &err));
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, 0xdeadbeef);     /* masked to 4 bytes */
    g_assert_true(vmm_sim_mmio_read(f.sim, 15, AS_GLOBAL, PCI_BASE + 0x208,
                                    8, &v, &err));
    g_assert_cmphex(v, ==, (PCI_BASE + 0x208) ^ GLOBAL_XOR);
    g_assert_true(vmm_sim_mmio_read(f.sim, 0, AS_GLOBAL, PCI_BASE + 0x209,
                                    1, &v, &err));
    g_assert_cmphex(v, ==, ((PCI_BASE + 0x209) ^ GLOBAL_XOR) & 0xff);
    /* the PIO window after the MMIO window is forwarded too */
    g_assert_true(vmm_sim_mmio_read(f.sim, 0, AS_GLOBAL, 0x3eff0000, 2, &v,
                                    &err));
    g_assert_no_error(err);

    /* outside every window; bad length; bad slot */
    g_assert_false(vmm_sim_mmio_read(f.sim, 0, AS_GLOBAL, 0x40000000, 4,
                                     &v, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(vmm_sim_mmio_read(f.sim, 0, AS_GLOBAL, PCI_BASE, 3, &v,
                                     &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(vmm_sim_mmio_read(f.sim, 32, AS_GLOBAL, PCI_BASE, 4, &v,
                                     &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);

    g_assert_cmpuint(stats_of(f.sim).requests, ==, 5);
    g_assert_cmpuint(stats_of(f.sim).bad_replies, ==, 0);
    g_assert_cmpuint(stats_of(f.sim).protocol_errors, ==, 0);
    g_assert_cmpuint(vso_rpc_owned(vmm_sim_rpc(f.sim)), ==, 0);
    fixture_stop(&f);
}

/*
 * doorbell_ns: each doorbell the VMM rings or takes costs it that long,
 * spent in the calling thread, so the calls take at least the sum.
 */
static void test_doorbell_cost(void)
{
    const uint32_t cost_ns = 2000000;
    VmmSimConfig cfg = { .doorbell_ns = cost_ns };
    VmmSimStats before, after;
    GError *err = NULL;
    uint64_t v, doorbells;
    gint64 t0, elapsed_ns;
    unsigned i;
    Fixture f;

    fixture_start_cfg(&f, &cfg, false);
    before = stats_of(f.sim);
    t0 = g_get_monotonic_time();
    for (i = 0; i < 4; i++) {
        g_assert_true(vmm_sim_mmio_read(f.sim, i, AS_GLOBAL, PCI_BASE, 4,
                                        &v, &err));
        g_assert_no_error(err);
    }
    elapsed_ns = (g_get_monotonic_time() - t0) * 1000;
    after = stats_of(f.sim);
    doorbells = after.doorbells_tx - before.doorbells_tx +
                after.doorbells_rx - before.doorbells_rx;
    /* four rung at least; the device's, taken, may merge */
    g_assert_cmpuint(after.doorbells_tx - before.doorbells_tx, >=, 4);
    g_assert_cmpint(elapsed_ns, >=, (gint64)(doorbells * cost_ns));
    fixture_stop(&f);
}

static void test_batch(void)
{
    Fixture f;
    GError *err = NULL;
    VmmSimAccess acc[32];
    uint64_t rings;
    unsigned i;

    fixture_start(&f, false, 0);
    for (i = 0; i < 16; i++) {
        acc[i] = (VmmSimAccess) {
            .slot = i, .as = AS_GLOBAL, .addr = PCI_BASE + 0x400 + 8 * i,
            .len = 8, .write = true, .data = 0x1000 + i,
        };
        acc[16 + i] = (VmmSimAccess) {
            .slot = i, .as = AS_GLOBAL, .addr = PCI_BASE + 0x400 + 8 * i,
            .len = 8,
        };
    }
    rings = stats_of(f.sim).doorbells_tx;
    g_assert_true(vmm_sim_mmio_batch(f.sim, acc, 32, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(stats_of(f.sim).doorbells_tx - rings, ==, 1);
    g_assert_cmpint(g_atomic_int_get(&f.fd.max_per_wake), ==, 32);
    for (i = 0; i < 16; i++) {
        g_assert_cmphex(acc[16 + i].data, ==, 0x1000 + i);
    }
    g_assert_cmpuint(stats_of(f.sim).replies, ==, 32);
    g_assert_cmpuint(vso_rpc_owned(vmm_sim_rpc(f.sim)), ==, 0);

    /* more than the queue holds: goes out in rounds, all answered */
    {
        VmmSimAccess big[80];

        for (i = 0; i < 80; i++) {
            big[i] = (VmmSimAccess) {
                .slot = i % 16, .as = AS_GLOBAL, .addr = PCI_BASE + 8 * i,
                .len = 8,
            };
        }
        g_assert_true(vmm_sim_mmio_batch(f.sim, big, 80, &err));
        g_assert_no_error(err);
        for (i = 0; i < 80; i++) {
            g_assert_cmphex(big[i].data, ==, (PCI_BASE + 8 * i) ^ GLOBAL_XOR);
        }
    }
    fixture_stop(&f);
}

static void test_irq(void)
{
    Fixture f;
    GError *err = NULL;

    fixture_start(&f, false, 0);
    g_assert_true(vmm_sim_is_msi_spi(f.sim, MSI_SPI));
    g_assert_false(vmm_sim_irq_level(f.sim, 0));
    g_assert_true(vmm_sim_mmio_write(f.sim, 0, AS_GLOBAL, IRQ_REG, 4, 1,
                                     &err));
    g_assert_no_error(err);
    g_assert_true(vmm_sim_wait_irq_level(f.sim, 0, true, WAIT_MS));
    g_assert_true(vmm_sim_intx_pending(f.sim));
    g_assert_cmpuint(vmm_sim_irq_count(f.sim, 0), ==, 1);

    g_assert_true(vmm_sim_mmio_write(f.sim, 0, AS_GLOBAL, IRQ_REG, 4, 0,
                                     &err));
    g_assert_true(vmm_sim_wait_irq_count(f.sim, MSI_SPI, 1, WAIT_MS));
    g_assert_false(vmm_sim_irq_level(f.sim, 0));
    g_assert_false(vmm_sim_intx_pending(f.sim));
    g_assert_false(vmm_sim_irq_level(f.sim, MSI_SPI));
    g_assert_cmpuint(vmm_sim_irq_count(f.sim, MSI_SPI), ==, 1);
    g_assert_cmpuint(vmm_sim_irq_count(f.sim, 0), ==, 1);
    g_assert_cmpuint(stats_of(f.sim).protocol_errors, ==, 0);
    fixture_stop(&f);
}

/* What the irq_fn of a VMM with a guest to interrupt is told. */
typedef struct IrqLog {
    unsigned n;
    unsigned irq[8];
    unsigned op[8];
} IrqLog;

static void irq_log(void *opaque, unsigned irq, unsigned op)
{
    IrqLog *l = opaque;

    if (l->n < G_N_ELEMENTS(l->irq)) {
        l->irq[l->n] = irq;
        l->op[l->n] = op;
    }
    l->n++;
}

/* A memfd as a real guest's RAM would be: sized, sealed or not. */
static int guest_ram_memfd(uint64_t size, bool seal)
{
    int fd = memfd_create("test-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    if (seal) {
        g_assert_cmpint(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW),
                        ==, 0);
    }
    return fd;
}

/*
 * The proxy's use (hw/sel4/sel4-vmm-proxy.c): the guest's own RAM lent to
 * the device side, and every SET_IRQ passed on as it is taken.
 */
static void test_lent_ram_irq_fn(void)
{
    const uint64_t size = 64u << 20;
    IrqLog log = { 0 };
    VmmSimConfig cfg = {
        .ram_size = size, .has_ram_fd = true, .irq_fn = irq_log,
        .irq_opaque = &log,
    };
    GError *err = NULL;
    uint8_t *guest;
    Fixture f;

    cfg.ram_fd = guest_ram_memfd(size, true);
    guest = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, cfg.ram_fd,
                 0);
    g_assert_true(guest != MAP_FAILED);
    fixture_start_cfg(&f, &cfg, false);
    /* our fd stays ours; the VMM's copy maps the same bytes */
    g_assert_cmpint(fcntl(cfg.ram_fd, F_GETFD), >=, 0);
    memcpy(guest + 0x1234, "lent", 4);
    g_assert_cmpmem(vmm_sim_gpa_to_host(f.sim, 0x40001234, 4), 4, "lent", 4);
    g_assert_cmpuint(vmm_sim_ram_size(f.sim), ==, size);

    /* INTx 0 set; then cleared with an MSI pulse (the fake's IRQ_REG) */
    g_assert_true(vmm_sim_mmio_write(f.sim, 0, AS_GLOBAL, IRQ_REG, 4, 1,
                                     &err));
    g_assert_true(vmm_sim_wait_irq_level(f.sim, 0, true, WAIT_MS));
    g_assert_true(vmm_sim_mmio_write(f.sim, 0, AS_GLOBAL, IRQ_REG, 4, 0,
                                     &err));
    g_assert_no_error(err);
    g_assert_true(vmm_sim_wait_irq_count(f.sim, MSI_SPI, 1, WAIT_MS));
    g_assert_cmpuint(log.n, ==, 3);
    g_assert_cmpuint(log.irq[0], ==, 0);
    g_assert_cmpuint(log.op[0], ==, RPC_IRQ_SET);
    g_assert_cmpuint(log.irq[1], ==, 0);
    g_assert_cmpuint(log.op[1], ==, RPC_IRQ_CLR);
    g_assert_cmpuint(log.irq[2], ==, MSI_SPI);
    g_assert_cmpuint(log.op[2], ==, RPC_IRQ_PULSE);
    fixture_stop(&f);
    munmap(guest, size);
    close(cfg.ram_fd);
}

/* Lent RAM the device side could not trust is refused up front. */
static void test_lent_ram_refused(void)
{
    g_autofree char *dir = g_dir_make_tmp("vmm-sim-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "vmm.sock", NULL);
    struct {
        uint64_t size;
        bool seal;
        const char *want;
    } bad[] = {
        { 16u << 20, true, "smaller" },         /* less than ram_size */
        { 64u << 20, false, "F_SEAL_SHRINK" },  /* could shrink under us */
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        VmmSimConfig cfg = {
            .socket_path = path, .ram_size = 64u << 20, .has_ram_fd = true,
            .ram_fd = guest_ram_memfd(bad[i].size, bad[i].seal),
        };
        GError *err = NULL;

        g_assert_null(vmm_sim_new(&cfg, &err));
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, bad[i].want));
        g_clear_error(&err);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        close(cfg.ram_fd);
    }
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static bool cond_two_errors(VmmSim *sim, void *opaque)
{
    return stats_of(sim).protocol_errors >= 2;
}

static void test_protocol_errors(void)
{
    Fixture f;
    unsigned n;
    VmmSimStats s;

    fixture_start(&f, true, 0);
    g_assert_true(vmm_sim_wait_for(f.sim, cond_two_errors, NULL, WAIT_MS));
    s = stats_of(f.sim);
    g_assert_cmpuint(s.protocol_errors, ==, 2);
    g_assert_cmpuint(s.unknown_ops, ==, 1);
    g_assert_cmpuint(s.bad_registrations, ==, 1);
    vmm_sim_pci_devs(f.sim, &n);
    g_assert_cmpuint(n, ==, NDEVS);
    g_assert_null(vmm_sim_pci_dev(f.sim, NDEVS));
    g_assert_true(vmm_sim_connected(f.sim));     /* still alive */
    fixture_stop(&f);
}

static void test_death_poll(void)
{
    Fixture f;
    gint64 t0;
    int r = 0;

    fixture_start(&f, false, 0);
    g_assert_cmpint(vmm_sim_poll(f.sim, 0), >=, 0);
    g_atomic_int_set(&f.fd.stop, 1);
    t0 = g_get_monotonic_time();
    while (r >= 0 && g_get_monotonic_time() - t0 < WAIT_MS * 1000) {
        r = vmm_sim_poll(f.sim, 100);
    }
    g_assert_cmpint(r, ==, -EPIPE);
    g_assert_true(vmm_sim_peer_gone(f.sim));
    g_assert_false(vmm_sim_connected(f.sim));
    g_assert_cmpint(vmm_sim_poll(f.sim, 0), ==, -EPIPE);
    fixture_stop(&f);
}

static void test_death_pending_read(void)
{
    Fixture f;
    GError *err = NULL;
    uint64_t v;

    /* Death is seen by the socket's hang-up: PEER_GONE, not TIMEOUT. */
    fixture_start(&f, false, 0);
    g_assert_false(vmm_sim_mmio_read(f.sim, 1, AS_GLOBAL, DIE_REG, 4, &v,
                                     &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_PEER_GONE);
    g_test_message("%s", err->message);
    g_clear_error(&err);
    g_assert_true(vmm_sim_peer_gone(f.sim));
    g_assert_cmpuint(stats_of(f.sim).timeouts, ==, 0);

    /* later accesses fail at once */
    g_assert_false(vmm_sim_config_read(f.sim, 0, 0, 2, &v, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_PEER_GONE);
    g_clear_error(&err);
    fixture_stop(&f);
}

/*
 * The device side dies having taken one request it never answers, while
 * four more wait in drvrpc_req; a successor attaches to the same queues.
 * The taken one is failed and its id reclaimed, the four are served by
 * the successor, and no id stays lent.
 */
static void test_reconnect(void)
{
    VmmSimAccess die = { .slot = 1, .as = AS_GLOBAL, .addr = DIE_REG,
                         .len = 4 };
    VmmSimAccess q[4];
    VmmSimBatch bd, bq;
    FakeDev next = { 0 };
    GError *err = NULL;
    VmmSimStats st;
    Fixture f;
    gint64 t0;
    int r = 0;

    fixture_start(&f, false, 0);
    g_assert_true(vmm_sim_mmio_send(f.sim, &bd, &die, 1, &err));
    g_assert_no_error(err);
    /* once it has taken DIE_REG it waits 100 ms, then hangs up */
    t0 = g_get_monotonic_time();
    while (g_atomic_int_get(&f.fd.requests) < 1 &&
           g_get_monotonic_time() - t0 < WAIT_MS * 1000) {
        g_usleep(1000);
    }
    for (unsigned i = 0; i < 4; i++) {
        q[i] = (VmmSimAccess) { .slot = 2 + i, .as = AS_PCIDEV(i % NDEVS),
                                .addr = 0, .len = 4 };
    }
    g_assert_true(vmm_sim_mmio_send(f.sim, &bq, q, 4, &err));
    g_assert_no_error(err);
    while (r >= 0 && g_get_monotonic_time() - t0 < WAIT_MS * 1000) {
        r = vmm_sim_poll(f.sim, 100);
    }
    g_assert_cmpint(r, ==, -EPIPE);
    g_assert_false(vmm_sim_mmio_wait(f.sim, &bq, 10));
    g_assert_cmpuint(bd.done + bq.done, ==, 0);
    g_assert_cmpuint(vso_rpc_owned(vmm_sim_rpc(f.sim)), ==, 5);

    fake_start(&next, f.path);
    g_assert_true(vmm_sim_accept(f.sim, WAIT_MS, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(bd.done, ==, 1);
    g_assert_cmpuint(bd.failed, ==, 1);
    g_assert_true(die.failed);
    g_assert_cmphex(die.data, ==, 0xffffffff);
    g_assert_true(vmm_sim_wait_started(f.sim, WAIT_MS));
    g_assert_true(vmm_sim_mmio_wait(f.sim, &bq, WAIT_MS));
    g_assert_cmpuint(bq.failed, ==, 0);
    for (unsigned i = 0; i < 4; i++) {
        g_assert_false(q[i].failed);
        g_assert_cmphex(q[i].data, ==, 0x10411af4 + ((i % NDEVS) << 16));
    }
    vmm_sim_get_stats(f.sim, &st);
    g_assert_cmpuint(st.reconnects, ==, 1);
    g_assert_cmpuint(st.reclaimed, ==, 1);
    g_assert_cmpuint(vso_rpc_owned(vmm_sim_rpc(f.sim)), ==, 0);
    g_atomic_int_set(&next.stop, 1);
    g_thread_join(next.thread);
    fixture_stop(&f);
}

/*
 * A VMM that stops taking replies for a while: the device side fills
 * drvrpc_resp (32 ids, 32 entries), the VMM has no id for more requests
 * until it takes them, and a batch of 80 is answered in full.
 */
static void test_hold_replies(void)
{
    VmmSimAccess acc[80];
    GError *err = NULL;
    Fixture f;
    gint64 t0;

    fixture_start(&f, false, 0);
    for (unsigned i = 0; i < G_N_ELEMENTS(acc); i++) {
        acc[i] = (VmmSimAccess) { .slot = 1, .as = AS_GLOBAL,
                                  .addr = PCI_BASE + 8 * i, .len = 8 };
    }
    vmm_sim_hold(f.sim, VMM_SIM_HOLD_REPLIES, 200);
    t0 = g_get_monotonic_time();
    g_assert_true(vmm_sim_mmio_batch(f.sim, acc, G_N_ELEMENTS(acc), &err));
    g_assert_no_error(err);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 190 * 1000);
    for (unsigned i = 0; i < G_N_ELEMENTS(acc); i++) {
        g_assert_cmphex(acc[i].data, ==, (PCI_BASE + 8 * i) ^ GLOBAL_XOR);
    }
    g_assert_cmpuint(vmm_sim_rpc(f.sim)->resp.stats.high_water, ==,
                     RPCMSG_BUFFER_SIZE);
    fixture_stop(&f);
}

static void test_timeout(void)
{
    Fixture f;
    GError *err = NULL;
    gint64 t0;
    uint64_t v;

    fixture_start(&f, false, 200);
    t0 = g_get_monotonic_time();
    g_assert_false(vmm_sim_mmio_read(f.sim, 2, AS_GLOBAL, HANG_REG, 4, &v,
                                     &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT);
    g_clear_error(&err);
    /* the 200 ms configured, not the 2 s default */
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 190 * 1000);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 1800 * 1000);
    g_assert_cmpuint(stats_of(f.sim).timeouts, ==, 1);
    /* the abandoned id stays lent; the VMM keeps working */
    g_assert_cmpuint(vso_rpc_owned(vmm_sim_rpc(f.sim)), ==, 1);
    g_assert_true(vmm_sim_mmio_read(f.sim, 2, AS_GLOBAL, PCI_BASE, 4, &v,
                                    &err));
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, (PCI_BASE ^ GLOBAL_XOR) & 0xffffffff);
    fixture_stop(&f);
}

/*
 * Doorbell faults (vmm_sim_set_doorbell_faults, what the soak injects at
 * random), each at 100 % so that it strikes every time.  The fake device
 * serves only when rung, as QEMU with poll-us=0: a dropped doorbell hangs
 * the access until its timeout, unless the VMM rings again (resend_ms);
 * duplicated and delayed ones are counted and harmless.
 */
static void test_doorbell_faults(void)
{
    VmmSimDoorbellFaults df = { .drop_pct = 100, .seed = 1 };
    GError *err = NULL;
    VmmSimStats st;
    Fixture f;
    uint64_t tx, v;
    gint64 t0;

    fixture_start(&f, false, 300);
    vmm_sim_set_doorbell_faults(f.sim, &df);
    g_assert_false(vmm_sim_mmio_read(f.sim, 1, AS_GLOBAL, PCI_BASE, 4, &v,
                                     &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT);
    g_clear_error(&err);
    st = stats_of(f.sim);
    g_assert_cmpuint(st.doorbells_dropped, >=, 1);
    g_assert_cmpuint(st.doorbells_resent, ==, 0);

    /* every ring dropped, but rung again after 50 ms: it completes */
    df.resend_ms = 50;
    vmm_sim_set_doorbell_faults(f.sim, &df);
    g_assert_true(vmm_sim_mmio_read(f.sim, 2, AS_GLOBAL, PCI_BASE, 4, &v,
                                    &err));
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, (PCI_BASE ^ GLOBAL_XOR) & 0xffffffff);
    g_assert_cmpuint(stats_of(f.sim).doorbells_resent, >=, 1);

    /* every ring twice */
    df = (VmmSimDoorbellFaults) { .dup_pct = 100, .seed = 1 };
    vmm_sim_set_doorbell_faults(f.sim, &df);
    st = stats_of(f.sim);
    tx = st.doorbells_tx;
    g_assert_true(vmm_sim_mmio_read(f.sim, 2, AS_GLOBAL, PCI_BASE, 4, &v,
                                    &err));
    g_assert_no_error(err);
    g_assert_cmpuint(stats_of(f.sim).doorbells_duplicated -
                     st.doorbells_duplicated, ==, 1);
    g_assert_cmpuint(stats_of(f.sim).doorbells_tx - tx, ==, 2);

    /* every ring 30 ms late */
    df = (VmmSimDoorbellFaults) { .delay_pct = 100, .delay_us = 30000,
                                  .seed = 1 };
    vmm_sim_set_doorbell_faults(f.sim, &df);
    st = stats_of(f.sim);
    t0 = g_get_monotonic_time();
    g_assert_true(vmm_sim_mmio_read(f.sim, 2, AS_GLOBAL, PCI_BASE, 4, &v,
                                    &err));
    g_assert_no_error(err);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 30 * 1000);
    g_assert_cmpuint(stats_of(f.sim).doorbells_delayed -
                     st.doorbells_delayed, ==, 1);

    /* all zero: no faults, nothing counted */
    df = (VmmSimDoorbellFaults) { 0 };
    vmm_sim_set_doorbell_faults(f.sim, &df);
    st = stats_of(f.sim);
    g_assert_true(vmm_sim_mmio_read(f.sim, 2, AS_GLOBAL, PCI_BASE, 4, &v,
                                    &err));
    g_assert_no_error(err);
    g_assert_cmpuint(stats_of(f.sim).doorbells_dropped, ==,
                     st.doorbells_dropped);
    g_assert_cmpuint(stats_of(f.sim).doorbells_duplicated, ==,
                     st.doorbells_duplicated);
    g_assert_cmpuint(stats_of(f.sim).doorbells_delayed, ==,
                     st.doorbells_delayed);
    g_assert_cmpuint(stats_of(f.sim).protocol_errors, ==, 0);
    fixture_stop(&f);
}

static void test_not_started(void)
{
    VmmSimConfig cfg = { 0 };
    GError *err = NULL;
    g_autofree char *dir = g_dir_make_tmp("vmm-sim-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "vmm.sock", NULL);
    VmmSim *sim;
    uint64_t v;

    cfg.socket_path = path;
    sim = vmm_sim_new(&cfg, &err);
    g_assert_no_error(err);
    g_assert_cmpint(vmm_sim_poll(sim, 0), ==, -ENOTCONN);
    g_assert_false(vmm_sim_mmio_read(sim, 0, AS_GLOBAL, PCI_BASE, 4, &v,
                                     &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_CONNECTED);
    g_clear_error(&err);
    g_assert_false(vmm_sim_accept(sim, 10, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_TIMEOUT);
    g_clear_error(&err);
    vmm_sim_free(sim);

    /* a bad MSI range is refused */
    cfg.msi_spi_base = 8;
    cfg.msi_spi_count = 4;
    g_assert_null(vmm_sim_new(&cfg, &err));
    g_assert_error(err, VMM_SIM_ERROR, VMM_SIM_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmm-sim/boot", test_boot);
    g_test_add_func("/vmm-sim/config", test_config);
    g_test_add_func("/vmm-sim/mmio-roundtrip", test_mmio_roundtrip);
    g_test_add_func("/vmm-sim/batch", test_batch);
    g_test_add_func("/vmm-sim/doorbell-cost", test_doorbell_cost);
    g_test_add_func("/vmm-sim/irq", test_irq);
    g_test_add_func("/vmm-sim/lent-ram-irq-fn", test_lent_ram_irq_fn);
    g_test_add_func("/vmm-sim/lent-ram-refused", test_lent_ram_refused);
    g_test_add_func("/vmm-sim/protocol-errors", test_protocol_errors);
    g_test_add_func("/vmm-sim/death-poll", test_death_poll);
    g_test_add_func("/vmm-sim/death-pending-read", test_death_pending_read);
    g_test_add_func("/vmm-sim/reconnect", test_reconnect);
    g_test_add_func("/vmm-sim/hold-replies", test_hold_replies);
    g_test_add_func("/vmm-sim/timeout", test_timeout);
    g_test_add_func("/vmm-sim/doorbell-faults", test_doorbell_faults);
    g_test_add_func("/vmm-sim/not-started", test_not_started);
    return g_test_run();
}
