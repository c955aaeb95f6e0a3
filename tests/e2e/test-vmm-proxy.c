/*
 * End-to-end: sel4-vmm-proxy's refusals and its backend's death, without
 * a guest kernel (the Linux guest itself: test-linux-guest.c).
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-vmm-proxy QEMU_BINARY
 *
 *  - configurations the proxy cannot serve are refused at start-up, each
 *    with a message naming what is missing: no socket, RAM not in a
 *    shared memfd, no GICv2m frame (gic-version=3), bad timeouts, a
 *    socket-group that does not exist, a symbolic link at the socket path;
 *  - the socket is created 0600, or 0660 and socket-group's;
 *  - a backend that connects and then says nothing, or hangs up before
 *    START_VM: the guest QEMU exits non-zero saying so;
 *  - a backend (a real virt-sel4 QEMU) that dies while the guest runs:
 *    the guest QEMU shuts down with exit status 1, naming the hang-up.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include "sel4/sim_transport.h"
#include "qemu-harness.h"

#define PROXY_WAIT_MS   30000

/*
 * The guest never runs (-S): qtest is the accelerator every build has (the
 * arm64 build, the device VM's QEMU, has no TCG).
 */
static const char *const machine_ok[] = {
    "-nodefaults", "-display", "none", "-S", "-accel", "qtest", "-m", "64M",
    "-machine", "virt,gic-version=2,highmem=off,memory-backend=ram",
    "-object", "memory-backend-memfd,id=ram,size=64M,share=on",
};

/* QEMU with machine_ok (or @machine, @ram instead) and @proxy. */
static GPtrArray *guest_argv(const char *machine, const char *ram,
                             const char *proxy)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(a, g_strdup(qemu));
    for (size_t i = 0; i < G_N_ELEMENTS(machine_ok); i++) {
        const char *arg = machine_ok[i];

        if (machine && i > 0 && g_str_equal(machine_ok[i - 1], "-machine")) {
            arg = machine;
        }
        if (ram && i > 0 && g_str_equal(machine_ok[i - 1], "-object")) {
            arg = ram;
        }
        g_ptr_array_add(a, g_strdup(arg));
    }
    g_ptr_array_add(a, g_strdup("-device"));
    g_ptr_array_add(a, g_strdup(proxy));
    g_ptr_array_add(a, NULL);
    return a;
}

/*
 * QEMU refuses the configuration, saying @want.  A QEMU that cannot build
 * the machine at all says @unbuildable instead (when given): @skip_why.
 */
static void refused_unless(const char *why, const char *machine,
                           const char *ram, const char *proxy,
                           const char *want, const char *unbuildable,
                           const char *skip_why)
{
    g_autoptr(GPtrArray) a = guest_argv(machine, ram, proxy);
    g_autofree char *out = NULL;
    int st = run_qemu_sync((const char *const *)a->pdata + 1, &out);

    if (unbuildable && strstr(out, unbuildable)) {
        skip("refused: %s: %s", why, skip_why);
        return;
    }
    ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
       strstr(out, want), "refused: %s (status 0x%x): %s", why, st,
       g_strchomp(out));
}

static void refused(const char *why, const char *machine, const char *ram,
                    const char *proxy, const char *want)
{
    refused_unless(why, machine, ram, proxy, want, NULL, NULL);
}

static void test_refusals(const char *dir)
{
    g_autofree char *sock = g_build_filename(dir, "refused.sock", NULL);
    g_autofree char *proxy = g_strdup_printf("sel4-vmm-proxy,socket=%s",
                                             sock);
    g_autofree char *t0 = g_strdup_printf("%s,start-timeout=0", proxy);
    g_autofree char *a0 = g_strdup_printf("%s,access-timeout=0", proxy);
    g_autofree char *g0 = g_strdup_printf("%s,socket-group=no-such-group",
                                          proxy);
    g_autofree char *link = g_build_filename(dir, "link.sock", NULL);
    g_autofree char *pl = g_strdup_printf("sel4-vmm-proxy,socket=%s", link);

    refused("no socket", NULL, NULL, "sel4-vmm-proxy", "socket=PATH");
    refused("RAM not in a memfd", "virt,gic-version=2,highmem=off", NULL,
            proxy, "shared memfd");
    refused("RAM memfd not shared", NULL,
            "memory-backend-memfd,id=ram,size=64M,share=off", proxy,
            "shared memfd");
    /* the arm64 build: its GICv3 would be KVM's, qemu-user has none */
    refused_unless("no GICv2m (gic-version=3)",
                   "virt,gic-version=3,highmem=off,memory-backend=ram", NULL,
                   proxy, "GICv2m", "does not support GICv3 emulation",
                   "this QEMU emulates no GICv3 (built without TCG), so "
                   "every virt machine it builds has the GICv2m frame");
    refused("start-timeout=0", NULL, NULL, t0, "start-timeout");
    refused("access-timeout=0", NULL, NULL, a0, "access-timeout");
    refused("socket-group=no-such-group", NULL, NULL, g0,
            "socket group 'no-such-group': no such group");
    if (symlink(sock, link) < 0) {
        ok(false, "symlink %s: %s", link, g_strerror(errno));
        return;
    }
    refused("the socket path a symbolic link", NULL, NULL, pl,
            "is a symbolic link: refused");
    unlink(link);
}

static bool wait_sock(const char *path, pid_t pid)
{
    gint64 end = g_get_monotonic_time() + PROXY_WAIT_MS * 1000LL;
    struct stat st;

    while (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        if (wait_child(pid, 0) != -1 || g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(20 * 1000);
    }
    return true;
}

static bool log_has(const char *log, const char *what)
{
    g_autofree char *text = NULL;

    return g_file_get_contents(log, &text, NULL, NULL) && strstr(text, what);
}

/* The proxy's socket: 0600, or 0660 and @group's. */
static void check_sock_mode(const char *sock, const struct group *group)
{
    struct stat st = { 0 };
    unsigned want = group ? 0660 : 0600;
    int r = lstat(sock, &st);

    ok(r == 0 && (st.st_mode & 07777) == want &&
       (!group || st.st_gid == group->gr_gid),
       "the proxy's socket is mode %04o%s%s (mode %04o, gid %u)", want,
       group ? " and group " : "", group ? group->gr_name : "",
       (unsigned)(st.st_mode & 07777), (unsigned)st.st_gid);
}

/*
 * A backend that takes the hello and then is silent (@hang_up false) or
 * goes away: the guest QEMU must give up with @want in its log.  The
 * proxy's socket is made @group's (NULL: the user's alone).
 */
static void test_no_start(const char *dir, bool hang_up, const char *want,
                          const struct group *group)
{
    g_autofree char *sock = g_build_filename(dir, "nostart.sock", NULL);
    g_autofree char *log = g_build_filename(dir, "nostart.log", NULL);
    g_autofree char *proxy = g_strdup_printf(
        "sel4-vmm-proxy,socket=%s,start-timeout=2%s%s", sock,
        group ? ",socket-group=" : "", group ? group->gr_name : "");
    g_autoptr(GPtrArray) a = guest_argv(NULL, NULL, proxy);
    g_autoptr(GError) err = NULL;
    int fds[SIM_FD_COUNT];
    SimHello hello;
    pid_t pid;
    int conn = -1, st;

    pid = spawn_qemu_argv((const char *const *)a->pdata, log);
    if (wait_sock(sock, pid)) {
        check_sock_mode(sock, group);
        conn = sim_transport_connect(sock, &hello, fds, &err);
    }
    ok(conn >= 0 && hello.ram_base == 0x40000000 &&
       hello.ram_size == 64 << 20, "the proxy lends the guest's RAM: "
       "base 0x%" G_GINT64_MODIFIER "x size 0x%" G_GINT64_MODIFIER "x%s%s",
       conn >= 0 ? hello.ram_base : 0, conn >= 0 ? hello.ram_size : 0,
       err ? ": " : "", err ? err->message : "");
    if (conn >= 0) {
        sim_transport_close_fds(fds);
        if (hang_up) {
            close(conn);
        }
    }
    st = wait_child(pid, PROXY_WAIT_MS);
    ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
       log_has(log, want), "a backend that %s: the guest QEMU gives up "
       "(status 0x%x, '%s')", hang_up ? "hangs up before START_VM" :
       "never sends START_VM", st, want);
    if (st == -1) {
        diag_file(log);
        kill_and_reap(pid);
    }
    if (conn >= 0 && !hang_up) {
        close(conn);
    }
}

/* A real backend registers, starts, then dies under the running guest. */
static void test_backend_death(const char *dir)
{
    g_autofree char *sock = g_build_filename(dir, "death.sock", NULL);
    g_autofree char *glog = g_build_filename(dir, "death-guest.log", NULL);
    g_autofree char *blog = g_build_filename(dir, "death-backend.log",
                                             NULL);
    g_autofree char *proxy = g_strdup_printf("sel4-vmm-proxy,socket=%s",
                                             sock);
    g_autofree char *accel = g_strdup_printf("sel4,transport=sim,socket=%s",
                                             sock);
    g_autoptr(GPtrArray) a = guest_argv(NULL, NULL, proxy);
    const char *backend[] = {
        qemu, "-nodefaults", "-display", "none", "-machine", "virt-sel4",
        "-accel", accel, "-device", "virtio-rng-pci", NULL,
    };
    gint64 end = g_get_monotonic_time() + PROXY_WAIT_MS * 1000LL;
    pid_t guest, be = -1;
    bool registered = false;
    int st;

    guest = spawn_qemu_argv((const char *const *)a->pdata, glog);
    if (wait_sock(sock, guest)) {
        be = spawn_qemu_argv(backend, blog);
    }
    while (be > 0 && !registered && g_get_monotonic_time() < end &&
           wait_child(guest, 0) == -1) {
        registered = log_has(glog, "registered 1 PCI device");
        g_usleep(20 * 1000);
    }
    ok(registered, "the backend registered its device with the proxy");
    if (be > 0) {
        kill(be, SIGKILL);
        waitpid(be, NULL, 0);
    }
    st = wait_child(guest, PROXY_WAIT_MS);
    ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1 &&
       log_has(glog, "hung up"), "the backend dies: the guest QEMU shuts "
       "down with status 1 (0x%x), saying it hung up", st);
    if (n_fail) {
        diag_file(glog);
        diag_file(blog);
    }
    kill_and_reap(guest);
}

int main(int argc, char **argv)
{
    const char *dir;

    if (argc < 2) {
        fprintf(stderr, "usage: test-vmm-proxy QEMU_BINARY\n");
        return 2;
    }
    dir = harness_init(argv[1], "vmm-proxy");
    if (!dir) {
        return 0;
    }
    test_refusals(dir);
    test_no_start(dir, false, "sent no START_VM in time", NULL);
    /* a group other than ours: gid 1 (daemon) on Debian */
    ok(getgrgid(1) != NULL, "a group of gid 1 to give the socket to");
    test_no_start(dir, true, "hung up before START_VM", getgrgid(1));
    test_backend_death(dir);
    return harness_done();
}
