/*
 * The sim transport handoff over real unix sockets, memfds and eventfds:
 * a good handoff end to end against a forked VMM, a table of hostile
 * hellos each rejected with a clear message and no descriptor leaked,
 * no listener, a silent VMM (timeout), and peer-death detection.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sel4/sim_transport.h"
#include "fd-count.h"

#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "the raw hellos below are built as little-endian memory images"
#endif

#define RAM_BASE        UINT64_C(0x40000000)
#define RAM_SIZE        UINT64_C(0x100000)
#define PCI_BASE        UINT64_C(0x10000000)
#define PCI_SIZE        UINT64_C(0x1000000)
#define HELLO_WAIT_MS   2000

typedef struct TmpSock {
    char *dir;
    char *path;
} TmpSock;

static void tmp_sock_init(TmpSock *t)
{
    t->dir = g_dir_make_tmp("sim-transport-XXXXXX", NULL);
    g_assert_nonnull(t->dir);
    t->path = g_build_filename(t->dir, "vmm.sock", NULL);
}

static void tmp_sock_cleanup(TmpSock *t)
{
    g_unlink(t->path);
    g_assert_cmpint(g_rmdir(t->dir), ==, 0);
    g_free(t->path);
    g_free(t->dir);
}

static void good_hello(SimHello *h)
{
    sim_hello_init(h, 1, RAM_BASE, RAM_SIZE, PCI_BASE, PCI_SIZE);
}

/* sendmsg() of arbitrary bytes and an arbitrary number of fds. */
static bool raw_send(int conn, const void *buf, size_t len, const int *fds,
                     unsigned nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 32)];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

    g_assert_cmpuint(nfds, <=, 32);
    memset(&ctrl, 0, sizeof(ctrl));
    if (nfds) {
        struct cmsghdr *cmsg;

        msg.msg_control = ctrl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    return sendmsg(conn, &msg, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Wait until the peer on @fd hangs up (or @ms pass). */
static void wait_hangup(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

    while (poll(&pfd, 1, ms) < 0 && errno == EINTR) {
    }
}

/* ---- a VMM in a thread: accept, send what it is told, wait ---- */

typedef struct VmmThread {
    int listen_fd;
    /* what to send */
    bool send_nothing;
    unsigned char bytes[512];
    size_t len;
    int fds[32];
    unsigned nfds;
    /* keep the connection open for the test instead of waiting */
    bool keep_conn;
    /* close the connection right after accepting it */
    bool hang_up;
    /* results */
    int conn;
    bool sent;
} VmmThread;

static gpointer vmm_thread_fn(gpointer opaque)
{
    VmmThread *v = opaque;
    int conn = sim_transport_accept(v->listen_fd, NULL);

    if (conn < 0) {
        return NULL;
    }
    if (v->hang_up) {
        close(conn);
        return NULL;
    }
    if (!v->send_nothing) {
        v->sent = raw_send(conn, v->bytes, v->len, v->fds, v->nfds);
    }
    if (v->keep_conn) {
        v->conn = conn;
        return NULL;
    }
    /* Stay connected until the device side gives up: it must decide. */
    wait_hangup(conn, 10000);
    close(conn);
    return NULL;
}

/* A well-formed setup that each bad case then breaks in one way. */
typedef struct Setup {
    SimHello hello;
    int fds[32];            /* fds[0..3] as sim_transport_create_fds() */
    unsigned nfds;
    size_t len;             /* bytes of the message */
    size_t header_bytes;    /* bytes of hello copied (the rest are zero) */
    int extra[4];           /* other fds to close at the end */
} Setup;

static void setup_good(Setup *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < G_N_ELEMENTS(s->fds); i++) {
        s->fds[i] = -1;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(s->extra); i++) {
        s->extra[i] = -1;
    }
    good_hello(&s->hello);
    g_assert_cmpint(sim_transport_create_fds(&s->hello, s->fds, NULL), ==, 0);
    s->nfds = SIM_FD_COUNT;
    s->len = sizeof(SimHello);
    s->header_bytes = sizeof(SimHello);
}

static void setup_free(Setup *s)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(s->fds); i++) {
        if (s->fds[i] >= 0) {
            close(s->fds[i]);
        }
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(s->extra); i++) {
        if (s->extra[i] >= 0) {
            close(s->extra[i]);
        }
    }
}

static void replace_fd(Setup *s, unsigned idx, int fd)
{
    g_assert_cmpint(fd, >=, 0);
    close(s->fds[idx]);
    s->fds[idx] = fd;
}

static int unsealed_memfd(size_t size)
{
    int fd = memfd_create("unsealed", MFD_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    return fd;
}

static void bad_magic(Setup *s)     { s->hello.magic = 0xdeadbeef; }
static void bad_version(Setup *s)   { s->hello.version = 2; }
static void bad_short(Setup *s)     { s->len = 32; }
static void bad_3fds(Setup *s)      { s->nfds = 3; }
static void bad_nofds(Setup *s)     { s->nfds = 0; }
static void bad_flags(Setup *s)     { s->hello.flags = 1; }
static void bad_hdr_small(Setup *s) { s->hello.header_size = 32; }
static void bad_hdr_big(Setup *s)   { s->hello.header_size = 80; }
static void bad_long(Setup *s)      { s->len = 300; }
static void bad_ram_zero(Setup *s)  { s->hello.ram_size = 0; }
static void bad_ram_align(Setup *s) { s->hello.ram_size = RAM_SIZE - 0x800; }
static void bad_base_align(Setup *s) { s->hello.ram_base = RAM_BASE + 0x10; }
static void bad_iobuf_size(Setup *s) { s->hello.iobuf_region_size = 0x2000; }

static void bad_5fds(Setup *s)
{
    s->fds[4] = eventfd(0, EFD_CLOEXEC);
    s->nfds = 5;
}

static void bad_20fds(Setup *s)
{
    for (unsigned i = SIM_FD_COUNT; i < 20; i++) {
        s->fds[i] = eventfd(0, EFD_CLOEXEC);
    }
    s->nfds = 20;
}

static void bad_memfd_small(Setup *s)
{
    /* Declare twice the RAM the memfd has. */
    s->hello.ram_size = 2 * RAM_SIZE;
    s->hello.ram_region_size = 2 * RAM_SIZE;
}

static void bad_region_small(Setup *s)
{
    s->hello.ram_region_size = RAM_SIZE - SIM_PAGE_SIZE;
}

static void bad_ram_overflow(Setup *s)
{
    s->hello.ram_base = UINT64_C(0xfffffffffffff000);
}

static void bad_pci_overflow(Setup *s)
{
    s->hello.pci_mmio_base = UINT64_C(0xffffffffff000000);
    s->hello.pci_mmio_size = UINT64_C(0x1000000) - 0x1000;
}

static void bad_pci_overlap(Setup *s)
{
    s->hello.pci_mmio_base = RAM_BASE + RAM_SIZE - 0x1000;
}

static void bad_pci_zero(Setup *s)
{
    s->hello.pci_mmio_size = 0;
}

static void bad_pipe(Setup *s)
{
    int p[2];

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    replace_fd(s, SIM_FD_DOORBELL_TO_DEVICE, p[0]);
    s->extra[0] = p[1];
}

static void bad_memfd_for_eventfd(Setup *s)
{
    replace_fd(s, SIM_FD_DOORBELL_TO_VMM, unsealed_memfd(4096));
}

static void bad_eventfd_for_memfd(Setup *s)
{
    replace_fd(s, SIM_FD_IOBUF, eventfd(0, EFD_CLOEXEC));
}

static void bad_same_eventfd(Setup *s)
{
    replace_fd(s, SIM_FD_DOORBELL_TO_VMM,
               fcntl(s->fds[SIM_FD_DOORBELL_TO_DEVICE], F_DUPFD_CLOEXEC, 0));
}

static void bad_same_memfd(Setup *s)
{
    s->hello.ram_size = SIM_IOBUF_REGION_SIZE;
    s->hello.ram_region_size = SIM_IOBUF_REGION_SIZE;
    replace_fd(s, SIM_FD_RAM, fcntl(s->fds[SIM_FD_IOBUF], F_DUPFD_CLOEXEC, 0));
}

static void bad_unsealed(Setup *s)
{
    replace_fd(s, SIM_FD_RAM, unsealed_memfd(RAM_SIZE));
}

static void bad_readonly(Setup *s)
{
    g_autofree char *p = g_strdup_printf("/proc/self/fd/%d",
                                         s->fds[SIM_FD_RAM]);

    replace_fd(s, SIM_FD_RAM, open(p, O_RDONLY | O_CLOEXEC));
}

typedef struct BadCase {
    const char *name;
    void (*mutate)(Setup *s);
    const char *expect;         /* substring of the error message */
    /*
     * Not under qemu-user (meson test sets MESON_EXE_WRAPPER in a cross
     * build): its recvmsg() gives the kernel a control buffer twice ours,
     * copies back what fits without MSG_CTRUNC and leaves the other
     * descriptors open, so the case would test the emulator.
     */
    bool native_only;
} BadCase;

static const BadCase bad_cases[] = {
    { "wrong-magic", bad_magic, "magic 0xdeadbeef, expected 0x4d533453" },
    { "wrong-version", bad_version, "version 2, only version 1" },
    { "short-message", bad_short, "short message, 32 bytes" },
    { "long-message", bad_long, "message is 257 or more bytes" },
    { "header-size-small", bad_hdr_small, "header_size 32, expected 64..256" },
    { "header-size-mismatch", bad_hdr_big,
      "message is 64 bytes, header_size says 80" },
    { "flags", bad_flags, "flags 0x1, no flags are defined" },
    { "3-fds", bad_3fds, "3 fds attached, expected 4" },
    { "5-fds", bad_5fds, "5 fds attached, expected 4" },
    { "20-fds", bad_20fds, "control data truncated", true },
    { "no-fds", bad_nofds, "0 fds attached, expected 4" },
    { "memfd-smaller-than-declared", bad_memfd_small,
      "fd 1 (RAM memfd) is 0x100000 bytes, smaller than ram_region_size "
      "0x200000" },
    { "ram-region-smaller-than-ram", bad_region_small,
      "ram_region_size 0xff000 must be a multiple of 0x1000 and >= "
      "ram_size 0x100000" },
    { "iobuf-region-size", bad_iobuf_size,
      "iobuf_region_size 0x2000, expected 0x3000" },
    { "ram-size-0", bad_ram_zero, "ram_size is 0" },
    { "ram-size-unaligned", bad_ram_align,
      "ram_size 0xff800 is not a multiple of 0x1000" },
    { "ram-base-unaligned", bad_base_align,
      "ram_base 0x40000010 is not a multiple of 0x1000" },
    { "ram-overflow", bad_ram_overflow,
      "ram_base 0xfffffffffffff000 + ram_size 0x100000 overflows" },
    { "pci-overflow", bad_pci_overflow,
      "pci_mmio_base 0xffffffffff000000 + pci_mmio_size 0xfff000 + "
      "PIO window 0x10000 overflows" },
    { "pci-size-0", bad_pci_zero, "pci_mmio_size is 0" },
    { "pci-overlaps-ram", bad_pci_overlap,
      "RAM [0x40000000, 0x40100000) overlaps the PCI window" },
    { "pipe-for-eventfd", bad_pipe,
      "fd 2 (VMM->device doorbell eventfd) is not an eventfd (it is 'pipe:[" },
    { "memfd-for-eventfd", bad_memfd_for_eventfd,
      "fd 3 (device->VMM doorbell eventfd) is not an eventfd (it is "
      "'/memfd:unsealed" },
    { "eventfd-for-memfd", bad_eventfd_for_memfd,
      "fd 0 (iobuf memfd) is not a regular file or memfd" },
    { "same-eventfd-twice", bad_same_eventfd,
      "fds 2 and 3 (the doorbells) are the same eventfd" },
    { "same-memfd-twice", bad_same_memfd,
      "fds 0 and 1 (iobuf and RAM memfds) are the same file" },
    { "memfd-not-sealed", bad_unsealed,
      "fd 1 (RAM memfd) is not sealed against shrinking" },
    { "memfd-read-only", bad_readonly,
      "fd 1 (RAM memfd) is not open read-write" },
};

static void test_bad_hello(gconstpointer data)
{
    const BadCase *c = data;
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    VmmThread v = { .conn = -1 };
    GThread *th;
    Setup s;
    SimHello got;
    int fds[SIM_FD_COUNT];
    int conn;

    if (c->native_only && g_getenv("MESON_EXE_WRAPPER")) {
        g_test_skip("qemu-user passes at most our control buffer's "
                    "descriptors, without MSG_CTRUNC, and leaks the rest");
        return;
    }
    tmp_sock_init(&t);
    setup_good(&s);
    c->mutate(&s);

    v.listen_fd = sim_transport_listen(t.path, NULL);
    g_assert_cmpint(v.listen_fd, >=, 0);
    g_assert_cmpuint(s.len, <=, sizeof(v.bytes));
    memcpy(v.bytes, &s.hello, MIN(s.header_bytes, s.len));
    v.len = s.len;
    memcpy(v.fds, s.fds, sizeof(int) * s.nfds);
    v.nfds = s.nfds;
    th = g_thread_new("vmm", vmm_thread_fn, &v);

    conn = sim_transport_connect_timeout(t.path, HELLO_WAIT_MS, &got, fds,
                                         &err);
    g_test_message("%s -> %s", c->name, err ? err->message : "accepted");
    g_assert_cmpint(conn, ==, -1);
    g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(err->message, c->expect));
    for (unsigned i = 0; i < SIM_FD_COUNT; i++) {
        g_assert_cmpint(fds[i], ==, -1);
    }

    g_thread_join(th);
    g_assert_true(v.sent);
    close(v.listen_fd);
    setup_free(&s);
    tmp_sock_cleanup(&t);
    /* Every fd the device side received was closed. */
    g_assert_cmpuint(count_fds(), ==, before);
}

/* A longer header of the same version: accepted, the tail ignored. */
static void test_longer_header(void)
{
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    VmmThread v = { .conn = -1 };
    GThread *th;
    Setup s;
    SimHello got;
    int fds[SIM_FD_COUNT];
    int conn;

    tmp_sock_init(&t);
    setup_good(&s);
    s.hello.header_size = 80;
    s.len = 80;
    memset(v.bytes, 0xa5, sizeof(v.bytes));
    memcpy(v.bytes, &s.hello, sizeof(s.hello));
    v.len = s.len;
    memcpy(v.fds, s.fds, sizeof(int) * s.nfds);
    v.nfds = s.nfds;
    v.listen_fd = sim_transport_listen(t.path, NULL);
    g_assert_cmpint(v.listen_fd, >=, 0);
    th = g_thread_new("vmm", vmm_thread_fn, &v);

    conn = sim_transport_connect_timeout(t.path, HELLO_WAIT_MS, &got, fds,
                                         &err);
    g_assert_no_error(err);
    g_assert_cmpint(conn, >=, 0);
    g_assert_cmpuint(got.header_size, ==, 80);
    g_assert_cmpuint(got.ram_size, ==, RAM_SIZE);
    close(conn);
    sim_transport_close_fds(fds);
    for (unsigned i = 0; i < SIM_FD_COUNT; i++) {
        g_assert_cmpint(fds[i], ==, -1);
    }

    g_thread_join(th);
    close(v.listen_fd);
    setup_free(&s);
    tmp_sock_cleanup(&t);
    g_assert_cmpuint(count_fds(), ==, before);
}

/* ---- the good handoff, end to end against a forked VMM ---- */

static const char iobuf_text[] = "queues from the VMM";
static const char ram_text[] = "guest RAM from the VMM";
static const char dev_text[] = "written by the device";
static const char ack_text[] = "the VMM saw it";

#define RAM_OFF_VMM     0x1234
#define RAM_OFF_DEV     0x80000
#define RAM_OFF_ACK     (RAM_SIZE - 64)
#define IOBUF_OFF_DEV   0x800

/* The child: plain checks and exit codes, no GLib assertions. */
static int vmm_child(int listen_fd)
{
    SimHello h;
    SimRegions r;
    int fds[SIM_FD_COUNT];
    struct pollfd pfd;
    uint64_t val;
    uint32_t consume = 7;
    int conn;

    conn = sim_transport_accept(listen_fd, NULL);
    if (conn < 0) {
        return 10;
    }
    good_hello(&h);
    if (sim_transport_create_fds(&h, fds, NULL) < 0 ||
        !sim_transport_validate(&h, fds, NULL) ||
        sim_transport_map(&h, fds, &r, NULL) < 0) {
        return 11;
    }
    memcpy(r.iobuf, iobuf_text, sizeof(iobuf_text));
    memcpy((char *)r.ram + RAM_OFF_VMM, ram_text, sizeof(ram_text));
    memcpy(r.event_bar + SEL4_EVENT_BAR_CONSUME, &consume, sizeof(consume));
    if (sim_transport_send_hello(conn, &h, fds, NULL) < 0) {
        return 12;
    }

    /* The device rings us once it has written its bytes. */
    pfd = (struct pollfd){ .fd = fds[SIM_FD_DOORBELL_TO_VMM],
                           .events = POLLIN };
    if (poll(&pfd, 1, 5000) != 1 ||
        read(fds[SIM_FD_DOORBELL_TO_VMM], &val, 8) != 8 || val != 3) {
        return 13;
    }
    if (memcmp((char *)r.ram + RAM_OFF_DEV, dev_text, sizeof(dev_text)) ||
        memcmp((char *)r.iobuf + IOBUF_OFF_DEV, dev_text, sizeof(dev_text))) {
        return 14;
    }
    memcpy((char *)r.ram + RAM_OFF_ACK, ack_text, sizeof(ack_text));
    val = 1;
    if (write(fds[SIM_FD_DOORBELL_TO_DEVICE], &val, 8) != 8) {
        return 15;
    }
    /* The device is still connected: it must not look dead to us. */
    if (sim_transport_peer_gone(conn)) {
        return 16;
    }
    /* Exit (the VMM dying) with everything still open. */
    return 0;
}

static void test_good_handoff(void)
{
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    SimHello h;
    SimRegions r;
    int fds[SIM_FD_COUNT];
    struct pollfd pfd;
    uint64_t val;
    uint32_t consume;
    int listen_fd, conn, status;
    pid_t pid;

    tmp_sock_init(&t);
    listen_fd = sim_transport_listen(t.path, &err);
    g_assert_no_error(err);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        _exit(vmm_child(listen_fd));
    }
    close(listen_fd);

    conn = sim_transport_connect(t.path, &h, fds, &err);
    g_assert_no_error(err);
    g_assert_cmpint(conn, >=, 0);
    g_assert_cmphex(h.magic, ==, SIM_HELLO_MAGIC);
    g_assert_cmpuint(h.version, ==, SIM_HELLO_VERSION);
    g_assert_cmpuint(h.header_size, ==, sizeof(SimHello));
    g_assert_cmpuint(h.vmid, ==, 1);
    g_assert_cmphex(h.ram_base, ==, RAM_BASE);
    g_assert_cmphex(h.ram_size, ==, RAM_SIZE);
    g_assert_cmphex(h.pci_mmio_base, ==, PCI_BASE);
    g_assert_cmphex(h.pci_mmio_size, ==, PCI_SIZE);
    g_assert_cmphex(h.iobuf_region_size, ==, SIM_IOBUF_REGION_SIZE);
    g_assert_cmphex(h.ram_region_size, ==, RAM_SIZE);
    g_assert_cmphex(h.flags, ==, 0);
    g_assert_true(fcntl(conn, F_GETFD) & FD_CLOEXEC);
    for (unsigned i = 0; i < SIM_FD_COUNT; i++) {
        g_assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    }

    g_assert_cmpint(sim_transport_map(&h, fds, &r, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(r.iobuf == (char *)r.iobuf_region + 0x1000);
    g_assert_true(r.event_bar == (uint8_t *)r.iobuf_region);
    g_assert_cmpstr((char *)r.iobuf, ==, iobuf_text);
    g_assert_cmpstr((char *)r.ram + RAM_OFF_VMM, ==, ram_text);
    g_assert_cmpstr((char *)r.event_bar + SEL4_EVENT_BAR_NAME, ==,
                    "guest-iobuf-1");
    memcpy(&consume, r.event_bar + SEL4_EVENT_BAR_CONSUME, sizeof(consume));
    g_assert_cmpuint(consume, ==, 7);

    /* Write into RAM and the iobuf, ring the VMM (count 3), wait for it. */
    memcpy((char *)r.ram + RAM_OFF_DEV, dev_text, sizeof(dev_text));
    memcpy((char *)r.iobuf + IOBUF_OFF_DEV, dev_text, sizeof(dev_text));
    val = 3;
    g_assert_cmpint(write(fds[SIM_FD_DOORBELL_TO_VMM], &val, 8), ==, 8);
    pfd = (struct pollfd){ .fd = fds[SIM_FD_DOORBELL_TO_DEVICE],
                           .events = POLLIN };
    g_assert_cmpint(poll(&pfd, 1, 5000), ==, 1);
    g_assert_cmpint(read(fds[SIM_FD_DOORBELL_TO_DEVICE], &val, 8), ==, 8);
    g_assert_cmpuint(val, ==, 1);
    g_assert_cmpstr((char *)r.ram + RAM_OFF_ACK, ==, ack_text);

    /* The VMM process exits: its end of the socket hangs up. */
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_true(sim_transport_peer_gone(conn));
    /* The regions outlive the VMM: nothing turns into SIGBUS. */
    g_assert_cmpstr((char *)r.ram + RAM_OFF_VMM, ==, ram_text);

    sim_transport_unmap(&r);
    g_assert_null(r.ram);
    sim_transport_unmap(&r);
    sim_transport_close_fds(fds);
    close(conn);
    tmp_sock_cleanup(&t);
    g_assert_cmpuint(count_fds(), ==, before);
}

/* peer_gone, both directions, with a thread VMM that keeps the socket. */
static void test_peer_gone(void)
{
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    VmmThread v = { .conn = -1, .keep_conn = true };
    GThread *th;
    Setup s;
    SimHello got;
    int fds[SIM_FD_COUNT];
    int conn, conn2;

    tmp_sock_init(&t);
    setup_good(&s);
    sim_transport_send_hello(-1, &s.hello, s.fds, &err);
    g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED);
    g_clear_error(&err);
    memcpy(v.bytes, &s.hello, sizeof(s.hello));
    v.len = sizeof(s.hello);
    memcpy(v.fds, s.fds, sizeof(int) * SIM_FD_COUNT);
    v.nfds = SIM_FD_COUNT;
    v.listen_fd = sim_transport_listen(t.path, NULL);
    g_assert_cmpint(v.listen_fd, >=, 0);
    th = g_thread_new("vmm", vmm_thread_fn, &v);

    conn = sim_transport_connect_timeout(t.path, HELLO_WAIT_MS, &got, fds,
                                         &err);
    g_assert_no_error(err);
    g_thread_join(th);
    g_assert_cmpint(v.conn, >=, 0);
    g_assert_false(sim_transport_peer_gone(conn));
    g_assert_false(sim_transport_peer_gone(v.conn));
    close(v.conn);                  /* the VMM dies */
    g_assert_true(sim_transport_peer_gone(conn));
    close(conn);
    sim_transport_close_fds(fds);

    /* And the other way: the VMM sees the device side go. */
    v.conn = -1;
    th = g_thread_new("vmm", vmm_thread_fn, &v);
    conn = sim_transport_connect_timeout(t.path, HELLO_WAIT_MS, &got, fds,
                                         &err);
    g_assert_no_error(err);
    g_thread_join(th);
    conn2 = v.conn;
    g_assert_false(sim_transport_peer_gone(conn2));
    close(conn);
    sim_transport_close_fds(fds);
    g_assert_true(sim_transport_peer_gone(conn2));
    close(conn2);

    close(v.listen_fd);
    setup_free(&s);
    tmp_sock_cleanup(&t);
    g_assert_cmpuint(count_fds(), ==, before);
}

/* ---- failures before any hello ---- */

static void test_no_listener(void)
{
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    SimHello got;
    int fds[SIM_FD_COUNT];
    int fd;

    tmp_sock_init(&t);
    /* Nothing at the path. */
    g_assert_cmpint(sim_transport_connect(t.path, &got, fds, &err), ==, -1);
    g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_CONNECT);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "cannot connect to the VMM at '"));
    g_assert_nonnull(strstr(err->message, "No such file or directory"));
    g_clear_error(&err);

    /* A stale socket file: the VMM died without unlinking it. */
    fd = sim_transport_listen(t.path, &err);
    g_assert_no_error(err);
    close(fd);
    g_assert_cmpint(sim_transport_connect(t.path, &got, fds, &err), ==, -1);
    g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_CONNECT);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "Connection refused"));
    g_clear_error(&err);

    /* A path too long for sun_path. */
    {
        g_autofree char *lng = g_strnfill(200, 'x');

        g_assert_cmpint(sim_transport_connect(lng, &got, fds, &err), ==, -1);
        g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED);
        g_clear_error(&err);
    }
    tmp_sock_cleanup(&t);
    g_assert_cmpuint(count_fds(), ==, before);
}

static void test_listen_path(void)
{
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    int fd, fd2;

    tmp_sock_init(&t);
    /* A stale socket file is replaced. */
    fd = sim_transport_listen(t.path, &err);
    g_assert_no_error(err);
    close(fd);
    fd = sim_transport_listen(t.path, &err);
    g_assert_no_error(err);
    g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    {
        /* bound under a temporary name, renamed once listening */
        g_autofree char *tmp = g_strdup_printf("%s.%d", t.path, getpid());
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
        g_strlcpy(sa.sun_path, t.path, sizeof(sa.sun_path));
        g_assert_cmpint(connect(c, (struct sockaddr *)&sa, sizeof(sa)), ==,
                        0);
        close(c);
    }
    /* A live listener is not stolen. */
    fd2 = sim_transport_listen(t.path, &err);
    g_assert_cmpint(fd2, ==, -1);
    g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED);
    g_assert_nonnull(strstr(err->message, "in use by a live listener"));
    g_clear_error(&err);
    close(fd);
    g_unlink(t.path);
    /* A regular file is never unlinked. */
    g_assert_true(g_file_set_contents(t.path, "keep", -1, NULL));
    fd = sim_transport_listen(t.path, &err);
    g_assert_cmpint(fd, ==, -1);
    g_assert_error(err, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED);
    g_assert_nonnull(strstr(err->message, "exists and is not a socket"));
    g_assert_true(g_file_test(t.path, G_FILE_TEST_IS_REGULAR));
    tmp_sock_cleanup(&t);
    g_assert_cmpuint(count_fds(), ==, before);
}

/* The socket's mode and group; refusals of what another user put there. */
static void test_listen_perms(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *target = NULL;
    SimHello got;
    int fds[SIM_FD_COUNT];
    struct stat st;
    TmpSock t;
    int fd;

    if (geteuid() != 0) {
        /* chown to another user and group needs root */
        g_test_skip("not root: cannot make files of another user");
        return;
    }
    tmp_sock_init(&t);
    fd = sim_transport_listen(t.path, &err);
    g_assert_no_error(err);
    g_assert_cmpint(lstat(t.path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    close(fd);

    /* with a group: 0660, that group (1: daemon, in every Debian) */
    fd = sim_transport_listen_group(t.path, 1, &err);
    g_assert_no_error(err);
    g_assert_cmpint(lstat(t.path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0660);
    g_assert_cmpint(st.st_gid, ==, 1);
    close(fd);

    /* another user's socket: neither unlinked nor connected to */
    g_assert_cmpint(chown(t.path, 1, 1), ==, 0);
    g_assert_cmpint(sim_transport_listen(t.path, &err), ==, -1);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "belongs to uid 1, not to us"));
    g_assert_true(g_file_test(t.path, G_FILE_TEST_EXISTS));
    g_clear_error(&err);
    g_assert_cmpint(sim_transport_connect(t.path, &got, fds, &err), ==, -1);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "belongs to uid 1, not to us "
                            "(uid 0) or root: refused"));
    g_clear_error(&err);
    g_unlink(t.path);

    /* a symbolic link, even to a socket of ours: left alone, refused */
    target = g_strconcat(t.path, ".target", NULL);
    fd = sim_transport_listen(target, &err);
    g_assert_no_error(err);
    g_assert_cmpint(symlink(target, t.path), ==, 0);
    g_assert_cmpint(sim_transport_listen(t.path, &err), ==, -1);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "is a symbolic link: refused"));
    g_clear_error(&err);
    g_assert_cmpint(sim_transport_connect(t.path, &got, fds, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "is a symbolic link: refused"));
    g_clear_error(&err);
    g_assert_cmpint(lstat(t.path, &st), ==, 0);
    g_assert_true(S_ISLNK(st.st_mode));
    close(fd);
    g_unlink(target);
    g_unlink(t.path);
    tmp_sock_cleanup(&t);
}

/* A VMM that accepts and then never sends, or hangs up at once. */
static void run_silent_vmm(bool hang_up, int code, const char *expect)
{
    unsigned before = count_fds();
    g_autoptr(GError) err = NULL;
    TmpSock t;
    VmmThread v = { .conn = -1, .send_nothing = true, .hang_up = hang_up };
    GThread *th;
    SimHello got;
    int fds[SIM_FD_COUNT];
    gint64 start;

    tmp_sock_init(&t);
    v.listen_fd = sim_transport_listen(t.path, NULL);
    g_assert_cmpint(v.listen_fd, >=, 0);
    th = g_thread_new("vmm", vmm_thread_fn, &v);

    start = g_get_monotonic_time();
    g_assert_cmpint(sim_transport_connect_timeout(t.path, 200, &got, fds,
                                                  &err), ==, -1);
    g_test_message("%s (%.0f ms)", err ? err->message : "no error",
                   (g_get_monotonic_time() - start) / 1000.0);
    g_assert_error(err, SIM_TRANSPORT_ERROR, code);
    g_assert_nonnull(strstr(err->message, expect));
    /* the 200 ms given, not the 5 s default */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 4 * G_USEC_PER_SEC);
    if (code == SIM_TRANSPORT_ERROR_TIMEOUT) {
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 200 * 1000);
    }
    for (unsigned i = 0; i < SIM_FD_COUNT; i++) {
        g_assert_cmpint(fds[i], ==, -1);
    }
    g_thread_join(th);
    close(v.listen_fd);
    tmp_sock_cleanup(&t);
    g_assert_cmpuint(count_fds(), ==, before);
}

static void test_silent_vmm_times_out(void)
{
    run_silent_vmm(false, SIM_TRANSPORT_ERROR_TIMEOUT,
                   "no hello from the VMM at '");
}

static void test_vmm_hangs_up_before_hello(void)
{
    run_silent_vmm(true, SIM_TRANSPORT_ERROR_CLOSED,
                   "closed the connection before sending the hello");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sim-transport/good-handoff", test_good_handoff);
    g_test_add_func("/sim-transport/longer-header", test_longer_header);
    g_test_add_func("/sim-transport/peer-gone", test_peer_gone);
    g_test_add_func("/sim-transport/no-listener", test_no_listener);
    g_test_add_func("/sim-transport/listen-path", test_listen_path);
    g_test_add_func("/sim-transport/listen-perms", test_listen_perms);
    g_test_add_func("/sim-transport/silent-vmm-times-out",
                    test_silent_vmm_times_out);
    g_test_add_func("/sim-transport/vmm-hangs-up-before-hello",
                    test_vmm_hangs_up_before_hello);
    for (unsigned i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/sim-transport/bad/%s", bad_cases[i].name);

        g_test_add_data_func(path, &bad_cases[i], test_bad_hello);
    }
    return g_test_run();
}
