/*
 * End-to-end: the simulated VMM drives a real qemu-system-aarch64 running
 * -accel sel4 -machine virt-sel4 with five virtio-pci devices.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-qemu-boot QEMU_BINARY [LOOP_OPTIONS [ENGINE]]
 * LOOP_OPTIONS are appended to -accel sel4,... (default "loop=uring"),
 * e.g. "loop=thread" or "loop=uring,x-uring-ring=own"; ENGINE is what the
 * sel4_loop_start trace event must name (thread, aio, uring-shared,
 * uring-own), so that a loop silently falling back to another fails.
 * Exit 77 (skip) when QEMU_BINARY is empty or does not exist.  TAP-style
 * output; meson runs it with the exit-code protocol so that 77 is a skip.
 *
 * Checks: -accel help lists sel4; -machine help lists virt-sel4;
 * transport=bogus is refused with a message naming 'transport'; QEMU
 * attaches, registers one PCI device per -device and sends START_VM; each
 * device's vendor/device ID and BAR sizes read through AS_PCIDEV config
 * requests; an INTx the device raises arrives as SET_IRQ set and leaves
 * as SET_IRQ clear, and an MSI-X vector as one PULSE of the programmed
 * SPI (virtio-net's config interrupt, triggered by set_link on the HMP
 * monitor); SIGTERM ends QEMU; a devevt queue full of registrations is
 * back-pressure that START_VM waits out; a request queued before QEMU
 * attached is served without a doorbell; and a QEMU whose VMM hangs up
 * exits non-zero saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "sel4/vmm_sim.h"
#include "qemu-harness.h"

#define N_DEVICES       5
#define TIMEOUT_MS      20000

static const char *loop_opts = "loop=uring";
static const char *want_engine;
static char *tmpdir;
/* Start QEMU on @sock with the five devices; stderr+stdout to @log. */
static pid_t spawn_qemu(const char *sock, const char *log)
{
    g_autofree char *mon_path = g_build_filename(tmpdir, "hmp.sock", NULL);
    g_autofree char *mon = g_strdup_printf("unix:%s,server=on,wait=off",
                                           mon_path);
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s,%s", sock, loop_opts);
    g_autofree char *disk = g_build_filename(tmpdir, "disk.raw", NULL);
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=d0,file=%s,format=raw", disk);
    g_autofree char *share = g_build_filename(tmpdir, "share", NULL);
    g_autofree char *fsdev = g_strdup_printf(
        "local,id=f0,path=%s,security_model=none", share);
    const char *argv[] = {
        qemu, "-nodefaults", "-display", "none",
        "-machine", "virt-sel4", "-accel", accel,
        "-trace", "sel4_loop_start",
        "-device", "virtio-blk-pci,drive=d0", "-drive", drive,
        "-device", "virtio-net-pci,netdev=n0,romfile=,id=nic1",
        "-monitor", mon,
        "-netdev", "hubport,id=n0,hubid=0",
        "-device", "virtio-rng-pci",
        "-device", "virtio-serial-pci",
        "-device", "virtio-9p-pci,fsdev=f0,mount_tag=t",
        "-fsdev", fsdev,
        NULL
    };

    return spawn_qemu_argv(argv, log);
}

/* Options QEMU must refuse, each with a message naming the problem. */
static const struct {
    const char *machine;
    const char *accel;
    const char *says;
} bad_options[] = {
    { "virt-sel4", "sel4,transport=bogus", "transport must be" },
    { "virt-sel4", "sel4,loop=bogus", "'loop' does not accept" },
    { "virt-sel4", "sel4,batch=0", "batch must be 1..32" },
    { "virt-sel4", "sel4,batch=33", "batch must be 1..32" },
    { "virt-sel4", "sel4,poll-us=5000", "poll-us must be 0..1000" },
    { "virt-sel4", "sel4,x-uring-ring=x", "'x-uring-ring' does not accept" },
    { "virt-sel4", "sel4,transport=sim", "needs socket=PATH" },
    { "virt-sel4", "sel4,socket=/nonexistent/vmm.sock",
      "cannot attach to the VMM" },
    { "none", "sel4,socket=/nonexistent/vmm.sock",
      "needs -machine virt-sel4" },
    { "virt-sel4", "qtest", "needs -accel sel4" },
};

static void test_help_and_bad_args(void)
{
    const char *accel_help[] = { "-accel", "help", NULL };
    const char *machine_help[] = { "-machine", "help", NULL };
    g_autofree char *out1 = NULL, *out2 = NULL;
    unsigned i;
    int st;

    st = run_qemu_sync(accel_help, &out1);
    ok(st == 0 && strstr(out1, "sel4"), "-accel help lists sel4");
    st = run_qemu_sync(machine_help, &out2);
    ok(st == 0 && strstr(out2, "virt-sel4"), "-machine help lists virt-sel4");
    for (i = 0; i < G_N_ELEMENTS(bad_options); i++) {
        const char *args[] = {
            "-nodefaults", "-display", "none",
            "-machine", bad_options[i].machine,
            "-accel", bad_options[i].accel, NULL
        };
        g_autofree char *out = NULL;

        st = run_qemu_sync(args, &out);
        ok(st != 0 && WIFEXITED(st) && strstr(out, bad_options[i].says),
           "-M %s -accel %s refused: %s", bad_options[i].machine,
           bad_options[i].accel, g_strdelimit(g_strstrip(out), "\n", ' '));
    }
}

/* Size a BAR word: write all-ones, read back, restore. */
static bool bar_probe(VmmSim *sim, unsigned dev, unsigned off,
                      uint64_t *probe, GError **errp)
{
    uint64_t orig;

    return vmm_sim_config_read(sim, dev, off, 4, &orig, errp) &&
           vmm_sim_config_write(sim, dev, off, 4, 0xffffffff, errp) &&
           vmm_sim_config_read(sim, dev, off, 4, probe, errp) &&
           vmm_sim_config_write(sim, dev, off, 4, orig, errp);
}

/* @lo: the probed low word; @hi: the probed high word (64-bit BARs). */
static uint64_t bar_size(uint64_t lo, uint64_t hi)
{
    uint64_t mask;

    if (!lo) {
        return 0;
    }
    mask = (lo & 1) ? ~UINT64_C(3) : ~UINT64_C(0xf);
    if (lo & 1) {
        hi = 0xffffffff;    /* I/O BARs are 32-bit */
    }
    return ~(((hi << 32) | lo) & mask) + 1;
}

/*
 * AS_GLOBAL: map device 0's BAR4 (virtio common config at offset 0) inside
 * the PCI window, enable memory decoding and read the device's feature
 * word 1 (VIRTIO_F_VERSION_1 is its bit 0).  Then a read where nothing is
 * mapped: QEMU must still reply, with all-ones.
 */
static void test_bar_access(VmmSim *sim)
{
    const VmmSimConfig *cfg = vmm_sim_config(sim);
    uint64_t bar = cfg->pci_mmio_base + 0x100000;
    uint64_t cmd = 0, feat = 0, hole = 0;
    g_autoptr(GError) err = NULL;
    bool r;

    r = vmm_sim_config_write(sim, 0, 0x20, 4, bar & 0xffffffff, &err) &&
        vmm_sim_config_write(sim, 0, 0x24, 4, bar >> 32, &err) &&
        vmm_sim_config_read(sim, 0, 0x04, 2, &cmd, &err) &&
        vmm_sim_config_write(sim, 0, 0x04, 2, cmd | 0x2, &err);
    ok(r, "device 0: BAR4 at 0x%" PRIx64 ", memory decoding on: %s", bar,
       err ? err->message : "ok");
    g_clear_error(&err);
    r = vmm_sim_mmio_write(sim, 0, AS_GLOBAL, bar + 0x0, 4, 1, &err) &&
        vmm_sim_mmio_read(sim, 0, AS_GLOBAL, bar + 0x4, 4, &feat, &err);
    ok(r && (feat & 1), "AS_GLOBAL: virtio device_feature[1] = 0x%08" PRIx64
       " has VERSION_1: %s", feat, err ? err->message : "ok");
    g_clear_error(&err);
    r = vmm_sim_mmio_read(sim, 1, AS_GLOBAL, cfg->pci_mmio_base + 0x2000000,
                          4, &hole, &err);
    ok(r && hole == 0xffffffff, "AS_GLOBAL read of a hole replies 0x%"
       PRIx64 ": %s", hole, err ? err->message : "ok");
}

/* ---- the HMP monitor, to make a device raise an interrupt ---- */

/* Read from @fd until @text has arrived, or the timeout. */
static bool read_until(int fd, GString *buf, const char *text)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    char chunk[512];

    while (!strstr(buf->str, text)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int left = (end - g_get_monotonic_time()) / 1000;
        ssize_t r;

        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            return false;
        }
        r = read(fd, chunk, sizeof(chunk));
        if (r <= 0) {
            return false;
        }
        g_string_append_len(buf, chunk, r);
    }
    return true;
}

/* Run one HMP command; true once the next prompt came back. */
static bool hmp(const char *cmd)
{
    g_autofree char *path = g_build_filename(tmpdir, "hmp.sock", NULL);
    g_autoptr(GString) buf = g_string_new("");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_autofree char *line = g_strdup_printf("%s\n", cmd);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool r;

    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    r = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        read_until(fd, buf, "(qemu) ") &&
        write(fd, line, strlen(line)) == (ssize_t)strlen(line);
    if (r) {
        g_string_truncate(buf, 0);
        r = read_until(fd, buf, "(qemu) ");
    }
    if (fd >= 0) {
        close(fd);
    }
    return r;
}

/* ---- interrupts ---- */

#define NET_DEV         1           /* registration index of virtio-net */
#define NET_BAR4        UINT64_C(0x200000)  /* offsets in the PCI window */
#define NET_BAR1        UINT64_C(0x300000)
/* QEMU's virtio-pci modern layout of BAR4 */
#define VIRTIO_COMMON   0x0000
#define VIRTIO_ISR      0x1000

static bool cfg_w(VmmSim *sim, unsigned off, unsigned len, uint64_t v,
                  GError **errp)
{
    return vmm_sim_config_write(sim, NET_DEV, off, len, v, errp);
}

static bool mmio_w(VmmSim *sim, uint64_t addr, unsigned len, uint64_t v,
                   GError **errp)
{
    return vmm_sim_mmio_write(sim, 0, AS_GLOBAL, addr, len, v, errp);
}

/* The offset of capability @id in the device's list, or 0. */
static unsigned find_cap(VmmSim *sim, unsigned id)
{
    uint64_t ptr = 0, hdr = 0;
    int guard = 48;

    if (!vmm_sim_config_read(sim, NET_DEV, 0x34, 1, &ptr, NULL)) {
        return 0;
    }
    while (ptr >= 0x40 && guard-- > 0) {
        if (!vmm_sim_config_read(sim, NET_DEV, ptr, 2, &hdr, NULL)) {
            return 0;
        }
        if ((hdr & 0xff) == id) {
            return ptr;
        }
        ptr = (hdr >> 8) & 0xfc;
    }
    return 0;
}

/*
 * Bring virtio-net up far enough to send config interrupts: BARs mapped,
 * VERSION_1 accepted, DRIVER_OK.
 */
static bool net_driver_ok(VmmSim *sim, uint64_t bar4, uint64_t bar1,
                          GError **errp)
{
    uint64_t common = bar4 + VIRTIO_COMMON;

    return cfg_w(sim, 0x20, 4, bar4 & 0xffffffff, errp) &&
           cfg_w(sim, 0x24, 4, bar4 >> 32, errp) &&
           cfg_w(sim, 0x14, 4, bar1, errp) &&
           cfg_w(sim, 0x04, 2, 0x2, errp) &&                /* memory on */
           mmio_w(sim, common + 0x14, 1, 0, errp) &&        /* reset */
           mmio_w(sim, common + 0x14, 1, 0x3, errp) &&      /* ACK|DRIVER */
           mmio_w(sim, common + 0x08, 4, 1, errp) &&        /* features hi */
           mmio_w(sim, common + 0x0c, 4, 1, errp) &&        /* VERSION_1 */
           mmio_w(sim, common + 0x14, 1, 0xb, errp) &&      /* FEATURES_OK */
           mmio_w(sim, common + 0x14, 1, 0xf, errp);        /* DRIVER_OK */
}

static void test_interrupts(VmmSim *sim)
{
    const VmmSimConfig *cfg = vmm_sim_config(sim);
    uint64_t bar4 = cfg->pci_mmio_base + NET_BAR4;
    uint64_t bar1 = cfg->pci_mmio_base + NET_BAR1;
    unsigned spi = cfg->msi_spi_base + 5, msix;
    g_autoptr(GError) err = NULL;
    uint64_t isr = 0, status = 0, feat_sel = 0;
    bool r;

    r = net_driver_ok(sim, bar4, bar1, &err) &&
        vmm_sim_mmio_read(sim, 0, AS_GLOBAL, bar4 + VIRTIO_COMMON + 0x14, 1,
                          &status, &err) &&
        vmm_sim_mmio_read(sim, 0, AS_GLOBAL, bar4 + VIRTIO_COMMON + 0x08, 4,
                          &feat_sel, &err);
    ok(r && status == 0xf && feat_sel == 1,
       "virtio-net common config: status 0x%" PRIx64 " (want 0xf: "
       "DRIVER_OK), driver_feature_select %" PRIu64 " read back: %s",
       status, feat_sel, err ? err->message : "ok");
    if (!r) {
        return;
    }
    /* INTx: no MSI-X yet, so the config interrupt is the device's INTx */
    ok(hmp("set_link nic1 off"), "HMP set_link nic1 off");
    ok(vmm_sim_wait_irq_level(sim, NET_DEV, true, TIMEOUT_MS),
       "INTx %u: SET_IRQ set arrived", NET_DEV);
    r = vmm_sim_mmio_read(sim, 0, AS_GLOBAL, bar4 + VIRTIO_ISR, 1, &isr,
                          &err);
    ok(r && (isr & 2), "ISR read 0x%" PRIx64 " (config change): %s", isr,
       err ? err->message : "ok");
    ok(vmm_sim_wait_irq_level(sim, NET_DEV, false, TIMEOUT_MS),
       "INTx %u: reading the ISR sent SET_IRQ clear", NET_DEV);

    /* MSI-X: table entry 0 -> the GICv2m doorbell with data = our SPI */
    msix = find_cap(sim, 0x11);
    ok(msix != 0, "MSI-X capability at 0x%x", msix);
    if (!msix) {
        return;
    }
    r = mmio_w(sim, bar1 + 0x0, 4, cfg->gicv2m_base + 0x40, &err) &&
        mmio_w(sim, bar1 + 0x4, 4, 0, &err) &&
        mmio_w(sim, bar1 + 0x8, 4, spi, &err) &&
        mmio_w(sim, bar1 + 0xc, 4, 0, &err) &&              /* unmasked */
        cfg_w(sim, msix + 2, 2, 0x8000, &err) &&            /* enable */
        mmio_w(sim, bar4 + VIRTIO_COMMON + 0x10, 2, 0, &err); /* config
                                                                 vector 0 */
    ok(r, "MSI-X vector 0 -> SPI %u, config vector 0: %s", spi,
       err ? err->message : "ok");
    ok(hmp("set_link nic1 on"), "HMP set_link nic1 on");
    r = vmm_sim_wait_irq_count(sim, spi, 1, TIMEOUT_MS);
    ok(r, "MSI-X: SPI %u pulsed (count %" PRIu64 ")", spi,
       vmm_sim_irq_count(sim, spi));
    ok(!vmm_sim_irq_level(sim, spi) && !vmm_sim_irq_level(sim, NET_DEV) &&
       vmm_sim_irq_count(sim, NET_DEV) == 1,
       "the MSI was a pulse, and INTx stayed quiet");
}

static void test_boot(void)
{
    g_autofree char *sock = g_build_filename(tmpdir, "vmm.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu.log", NULL);
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(GError) err = NULL;
    const VmmSimPciDev *devs;
    unsigned n = 0, i;
    VmmSim *sim;
    pid_t pid;
    int st;

    sim = vmm_sim_new(&cfg, &err);
    ok(sim != NULL, "vmm_sim_new: %s", err ? err->message : "ok");
    if (!sim) {
        return;
    }
    pid = spawn_qemu(sock, log);
    ok(vmm_sim_accept(sim, TIMEOUT_MS, &err), "QEMU attached: %s",
       err ? err->message : "ok");
    if (err) {
        diag_file(log);
        kill_and_reap(pid);
        vmm_sim_free(sim);
        return;
    }
    ok(vmm_sim_wait_started(sim, TIMEOUT_MS), "START_VM received");
    if (want_engine) {
        g_autofree char *text = NULL;
        g_autofree char *needle = g_strdup_printf("engine=%s ", want_engine);

        g_file_get_contents(log, &text, NULL, NULL);
        ok(text && strstr(text, needle), "the doorbell is served by '%s'",
           want_engine);
    }
    devs = vmm_sim_pci_devs(sim, &n);
    ok(n == N_DEVICES, "%u PCI devices registered (want %d)", n, N_DEVICES);
    for (i = 0; i < n; i++) {
        uint64_t vendor = 0, device = 0;
        unsigned b, nbars = 0;
        GString *bars = g_string_new("");
        bool r;

        ok(devs[i].index == i, "registration %u has index %u", i,
           devs[i].index);
        r = vmm_sim_config_read(sim, devs[i].index, 0x00, 2, &vendor, &err) &&
            vmm_sim_config_read(sim, devs[i].index, 0x02, 2, &device, &err);
        ok(r, "device %u: ID read: %s", i, err ? err->message : "ok");
        g_clear_error(&err);
        ok(vendor == 0x1af4 && device >= 0x1041 && device <= 0x105a,
           "device %u: vendor 0x%04" PRIx64 " device 0x%04" PRIx64,
           i, vendor, device);
        for (b = 0; b < 6; b++) {
            unsigned off = 0x10 + 4 * b;
            uint64_t lo = 0, hi = 0xffffffff, size;
            bool is64;

            r = bar_probe(sim, i, off, &lo, &err);
            is64 = r && !(lo & 1) && ((lo >> 1) & 3) == 2 && b < 5;
            if (r && is64) {
                r = bar_probe(sim, i, off + 4, &hi, &err);
            }
            if (!r) {
                ok(false, "device %u BAR%u sizing: %s", i, b, err->message);
                g_clear_error(&err);
                break;
            }
            size = bar_size(lo, hi);
            if (size) {
                nbars++;
                g_string_append_printf(bars, " BAR%u(%s%s)=0x%" PRIx64, b,
                                       lo & 1 ? "io" : "mem",
                                       is64 ? "64" : "", size);
            }
            if (is64) {
                b++;
            }
        }
        ok(nbars > 0, "device %u has %u BARs:%s", i, nbars, bars->str);
        g_string_free(bars, true);
    }

    if (n > 0) {
        test_bar_access(sim);
    }
    if (n > NET_DEV) {
        test_interrupts(sim);
    }

    kill(pid, SIGTERM);
    st = wait_child(pid, TIMEOUT_MS);
    ok(st != -1, "QEMU ended on SIGTERM (status 0x%x)", st);
    if (n_fail) {
        diag_file(log);
    }
    kill_and_reap(pid);
    vmm_sim_free(sim);
}

/*
 * Back-pressure: 32 devices (the most the protocol numbers) register with
 * 32 events, which fill devevt while the VMM looks away; START_VM, the
 * 33rd, must wait in QEMU's outbox and still arrive once the VMM drains,
 * with no doorbell from the VMM to prompt it (the retry timer).
 */
static void test_backpressure(void)
{
    g_autofree char *sock = g_build_filename(tmpdir, "vmm3.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu3.log", NULL);
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s,%s", sock, loop_opts);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *text = NULL;
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(GError) err = NULL;
    const char *fixed[] = {
        qemu, "-nodefaults", "-display", "none", "-machine", "virt-sel4",
        "-accel", accel, "-trace", "sel4_events_flush",
    };
    VmmSimStats st;
    unsigned n = 0, i;
    int pending;
    VmmSim *sim;
    pid_t pid;

    for (i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_ptr_array_add(argv, g_strdup(fixed[i]));
    }
    for (i = 0; i < RPC_MAX_PCIDEV; i++) {
        g_ptr_array_add(argv, g_strdup("-device"));
        g_ptr_array_add(argv, g_strdup_printf(
            "virtio-rng-pci,addr=0x%x.%u,multifunction=on", 1 + i / 8, i % 8));
    }
    g_ptr_array_add(argv, NULL);

    sim = vmm_sim_new(&cfg, &err);
    if (!sim) {
        ok(false, "vmm_sim_new: %s", err->message);
        return;
    }
    pid = spawn_qemu_argv((const char *const *)argv->pdata, log);
    if (!vmm_sim_accept(sim, TIMEOUT_MS, &err)) {
        ok(false, "32-device QEMU attached: %s", err->message);
        diag_file(log);
        kill_and_reap(pid);
        vmm_sim_free(sim);
        return;
    }
    /* look away until devevt is full */
    for (i = 0; i < 200; i++) {
        pending = vso_queue_pending((VsoQueue *)&vmm_sim_rpc(sim)->evt);
        if (pending >= (int)RPCMSG_BUFFER_SIZE) {
            break;
        }
        g_usleep(10 * 1000);
    }
    ok(pending == (int)RPCMSG_BUFFER_SIZE, "devevt full with %d events while "
       "the VMM looks away", pending);
    /*
     * ... and on, until QEMU has found START_VM with no room for it: a
     * slow QEMU (qemu-user) may not have tried yet, and once we take
     * events it would find room.
     */
    for (i = 0; i < TIMEOUT_MS / 10; i++) {
        g_autofree char *sofar = NULL;

        if (g_file_get_contents(log, &sofar, NULL, NULL) &&
            strstr(sofar, "(waiting 1)")) {
            break;
        }
        g_usleep(10 * 1000);
    }
    ok(vmm_sim_wait_started(sim, TIMEOUT_MS), "START_VM still arrived");
    vmm_sim_pci_devs(sim, &n);
    vmm_sim_get_stats(sim, &st);
    ok(n == RPC_MAX_PCIDEV && st.protocol_errors == 0,
       "all %u registrations before it, %" PRIu64 " protocol errors", n,
       st.protocol_errors);
    kill(pid, SIGTERM);
    wait_child(pid, TIMEOUT_MS);
    g_file_get_contents(log, &text, NULL, NULL);
    ok(text && strstr(text, "(waiting 1)"),
       "QEMU's trace shows the event that waited");
    if (n_fail) {
        diag_file(log);
    }
    kill_and_reap(pid);
    vmm_sim_free(sim);
}

/*
 * A request already queued when QEMU attaches, its doorbell long gone (a
 * predecessor consumed it): QEMU must serve it once its devices exist,
 * without waiting for a doorbell that will not come.
 */
static void test_leftover_request(void)
{
    g_autofree char *sock = g_build_filename(tmpdir, "vmm4.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu4.log", NULL);
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(GError) err = NULL;
    rpcmsg_t req = {
        .mr0 = rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, 0, 16, 4),
    };
    VsoRequest reply = { 0 };
    VsoRpc *rpc;
    uint16_t id;
    gint64 end;
    int got = 0;
    VmmSim *sim;
    pid_t pid;

    sim = vmm_sim_new(&cfg, &err);
    if (!sim) {
        ok(false, "vmm_sim_new: %s", err->message);
        return;
    }
    /* the simulator's own queues, driven by hand: no doorbell is rung */
    rpc = (VsoRpc *)vmm_sim_rpc(sim);
    ok(vso_rpc_call(rpc, &req, 1, &id) == 1, "a request queued before "
       "QEMU attaches, no doorbell");
    pid = spawn_qemu(sock, log);
    if (vmm_sim_accept(sim, TIMEOUT_MS, &err)) {
        end = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
        while (!got && g_get_monotonic_time() < end) {
            got = vso_rpc_collect(rpc, &reply, 1);
            g_usleep(1000);
        }
    }
    ok(got == 1 && reply.id == id && reply.msg.mr2 == 0x10421af4,
       "QEMU served it at start: device 0 ID 0x%08" PRIx64, reply.msg.mr2);
    if (got != 1) {
        diag_file(log);
    }
    kill(pid, SIGTERM);
    wait_child(pid, TIMEOUT_MS);
    kill_and_reap(pid);
    vmm_sim_free(sim);
}

static void test_vmm_hangup(void)
{
    g_autofree char *sock = g_build_filename(tmpdir, "vmm2.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu2.log", NULL);
    g_autofree char *text = NULL;
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(GError) err = NULL;
    VmmSim *sim;
    pid_t pid;
    int st;

    sim = vmm_sim_new(&cfg, &err);
    if (!sim) {
        ok(false, "vmm_sim_new: %s", err->message);
        return;
    }
    pid = spawn_qemu(sock, log);
    if (!vmm_sim_accept(sim, TIMEOUT_MS, &err) ||
        !vmm_sim_wait_started(sim, TIMEOUT_MS)) {
        ok(false, "second QEMU attached and started: %s",
           err ? err->message : "no START_VM");
        diag_file(log);
        kill_and_reap(pid);
        vmm_sim_free(sim);
        return;
    }
    vmm_sim_free(sim);
    st = wait_child(pid, TIMEOUT_MS);
    g_file_get_contents(log, &text, NULL, NULL);
    ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 && text &&
       strstr(text, "hung up"),
       "QEMU exits non-zero when the VMM hangs up (status 0x%x)", st);
    kill_and_reap(pid);
}

int main(int argc, char **argv)
{
    g_autofree char *disk = NULL, *share = NULL;

    qemu = argc > 1 ? argv[1] : "";
    if (argc > 2) {
        loop_opts = argv[2];
    }
    if (argc > 3) {
        want_engine = argv[3];
    }
    if (!*qemu) {
        printf("1..1\nok 1 # SKIP QEMU was not built (meson option 'qemu' "
               "is empty)\n");
        return 77;
    }
    if (access(qemu, X_OK) != 0) {
        printf("1..1\nok 1 # SKIP %s does not exist (build it with "
               "qemu/build.sh)\n", qemu);
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("# -accel sel4,...,%s\n", loop_opts);
    tmpdir = g_dir_make_tmp("qemu-boot-XXXXXX", NULL);
    g_assert(tmpdir);
    disk = g_build_filename(tmpdir, "disk.raw", NULL);
    share = g_build_filename(tmpdir, "share", NULL);
    g_assert(g_file_set_contents(disk, "", 0, NULL));
    g_assert(truncate(disk, 1 << 20) == 0);
    g_assert(g_mkdir(share, 0700) == 0);

    test_help_and_bad_args();
    test_boot();
    test_backpressure();
    test_leftover_request();
    test_vmm_hangup();

    printf("1..%d\n", n_test);
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);

        if (system(cmd) != 0) {
            printf("# could not remove %s\n", tmpdir);
        }
    }
    return n_fail ? 1 : 0;
}
