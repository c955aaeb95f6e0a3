/*
 * End-to-end: a real Linux guest (Debian's arm64 kernel, its own virtio
 * drivers) whose devices are our backend, through the seL4 VMM's path.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-linux-guest QEMU IMAGE_DIR LOOP_OPTIONS [intx] [--interactive]
 *
 *   guest:   QEMU -machine virt,gic-version=2 -accel tcg -cpu max, RAM in a
 *            shared memfd, -device sel4-vmm-proxy (the seL4 VMM's I/O
 *            proxy): config and BAR accesses become RPC requests
 *   backend: QEMU -machine virt-sel4 -accel sel4,transport=sim,LOOP_OPTIONS
 *            with virtio-blk, -net, -rng, -serial (a port) and -9p, DMA
 *            straight into the guest's RAM
 *
 * IMAGE_DIR holds Image and initramfs.cpio.gz from
 * tests/linux-guest/make-image.sh; its /init (tests/linux-guest/init.sh)
 * runs the checks and prints one "CHECK name ok|FAIL" line each.  Around
 * the guest: the backend's tap in a network namespace (net-lab.h, the
 * guest pings it), an echo on the port's socket (console-lab.h), the 9p
 * share's file.  The host then checks what the guest left: the block
 * pattern in the disk image, a file in the share.  With "intx" the guest
 * boots with pci=nomsi and every function must use INTx; otherwise MSI-X.
 * Any failure prints the guest's console and both QEMUs' logs.
 *
 * --interactive: the same set-up, the guest's console on stdio and a
 * shell instead of the checks (./run guest).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "console-lab.h"
#include "net-lab.h"
#include "qemu-harness.h"

#define LG_PORT             "org.sel4.test.0"
#define LG_MAC              "52:54:00:5e:14:01"
#define LG_RAM              "512M"
#define LG_DISK_SIZE        (64u << 20)
#define LG_BLK_OFFSET       (48u << 20)     /* init.sh's pattern */
#define LG_BLK_LEN          (4u << 20)
#define LG_START_MS         30000           /* guest QEMU to listen */
#define LG_TAP_MS           30000           /* backend to open its tap */
#define LG_BOOT_MS          180000          /* the whole guest run */
#define LG_EXIT_MS          20000           /* backend after the guest */

/* The checks init.sh must report ok, in its order. */
static const char *const lg_checks[] = {
    "pci", "blk", "blk-fs", "net", "console", "rng", "9p", "irq",
};

typedef struct LinuxGuest {
    char *tmpdir, *sock, *disk, *share, *console, *token;
    char *guest_log, *guest_dlog, *backend_log, *backend_dlog;
    char ip[16];                /* the guest's: .3 of namespace B's /24 */
    NetLab net;
    ConsoleLab con;
    bool intx;
    bool interactive;
} LinuxGuest;

static GPtrArray *argv_new(void)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(a, g_strdup(qemu));
    return a;
}

static void add(GPtrArray *a, const char *first, ...) G_GNUC_NULL_TERMINATED;

static void add(GPtrArray *a, const char *first, ...)
{
    va_list ap;

    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) {
        g_ptr_array_add(a, g_strdup(s));
    }
    va_end(ap);
}

static GPtrArray *guest_argv(LinuxGuest *g, const char *image_dir)
{
    GPtrArray *a = argv_new();
    g_autofree char *kernel = g_build_filename(image_dir, "Image", NULL);
    g_autofree char *initrd = g_build_filename(image_dir,
                                               "initramfs.cpio.gz", NULL);
    g_autofree char *append = g_strdup_printf(
        "console=ttyAMA0 quiet panic=-1 lg.mode=%s lg.irq=%s%s lg.ip=%s "
        "lg.peer=%s lg.token=%s lg.port=%s",
        g->interactive ? "shell" : "check", g->intx ? "intx" : "msix",
        g->intx ? " pci=nomsi" : "", g->ip, g->net.ip[1], g->token, LG_PORT);
    g_autofree char *proxy = g_strdup_printf("sel4-vmm-proxy,socket=%s",
                                             g->sock);
    g_autofree char *serial = g_strdup_printf("file:%s", g->console);

    add(a, "-nodefaults", "-display", "none", "-no-reboot",
        "-machine", "virt,gic-version=2,highmem=off,memory-backend=ram",
        "-accel", "tcg", "-cpu", "max,pauth-impdef=on", "-smp", "1",
        "-object", "memory-backend-memfd,id=ram,size=" LG_RAM ",share=on",
        "-kernel", kernel, "-initrd", initrd, "-append", append,
        "-device", proxy, "-d", "guest_errors", "-D", g->guest_dlog, NULL);
    if (g->interactive) {
        add(a, "-serial", "mon:stdio", NULL);
    } else {
        add(a, "-serial", serial, NULL);
    }
    g_ptr_array_add(a, NULL);
    return a;
}

static GPtrArray *backend_argv(LinuxGuest *g, const char *loop_opts)
{
    GPtrArray *a = argv_new();
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s,%s", g->sock, loop_opts);
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=d0,file=%s,format=raw", g->disk);
    g_autofree char *netdev = net_lab_netdev(&g->net, "n0");
    g_autofree char *chardev = console_lab_chardev(&g->con, g->tmpdir,
                                                   "con0");
    g_autofree char *fsdev = g_strdup_printf(
        "local,id=f0,path=%s,security_model=none", g->share);

    /* registration order: blk, net, rng, serial, 9p */
    add(a, "-nodefaults", "-display", "none", "-machine", "virt-sel4",
        "-accel", accel,
        "-device", "virtio-blk-pci,drive=d0", "-drive", drive,
        "-device", "virtio-net-pci,netdev=n0,romfile=,mac=" LG_MAC,
        "-netdev", netdev,
        "-device", "virtio-rng-pci",
        "-device", "virtio-serial-pci", "-chardev", chardev,
        "-device", "virtserialport,chardev=con0,name=" LG_PORT,
        "-device", "virtio-9p-pci,fsdev=f0,mount_tag=share",
        "-fsdev", fsdev,
        "-d", "guest_errors", "-D", g->backend_dlog, NULL);
    g_ptr_array_add(a, NULL);
    return a;
}

/* The guest QEMU with the console on our stdio: no log redirection. */
static pid_t spawn_interactive(const char *const *argv)
{
    pid_t pid = fork();

    if (pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], (char **)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Poll until @cond holds, @pid (if > 0) dies, or @ms pass. */
static bool wait_until(bool (*cond)(LinuxGuest *), LinuxGuest *g, pid_t pid,
                       int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000LL;

    while (!cond(g)) {
        if ((pid > 0 && wait_child(pid, 0) != -1) ||
            g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(50 * 1000);
    }
    return true;
}

static bool sock_exists(LinuxGuest *g)
{
    struct stat st;

    return stat(g->sock, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool tap_exists(LinuxGuest *g)
{
    g_autofree char *p = g_strdup_printf("/sys/class/net/%s", g->net.tap[1]);

    return access(p, F_OK) == 0;
}

static bool setup_files(LinuxGuest *g, GError **errp)
{
    g_autofree char *hello = NULL;
    int fd;

    g->token = g_strdup_printf("%08x%08x", g_random_int(), g_random_int());
    g->share = g_build_filename(g->tmpdir, "share", NULL);
    g->disk = g_build_filename(g->tmpdir, "disk.raw", NULL);
    g->sock = g_build_filename(g->tmpdir, "vmm.sock", NULL);
    g->console = g_build_filename(g->tmpdir, "console.log", NULL);
    g->guest_log = g_build_filename(g->tmpdir, "guest-qemu.log", NULL);
    g->guest_dlog = g_build_filename(g->tmpdir, "guest-qemu-d.log", NULL);
    g->backend_log = g_build_filename(g->tmpdir, "backend.log", NULL);
    g->backend_dlog = g_build_filename(g->tmpdir, "backend-d.log", NULL);
    hello = g_build_filename(g->share, "hello.txt", NULL);
    g_mkdir_with_parents(g->share, 0700);
    fd = open(g->disk, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, LG_DISK_SIZE) < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "%s: %s", g->disk, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    close(fd);
    return g_file_set_contents(hello, g->token, -1, errp);
}

/* The guest's report: every check ok, and what Linux found. */
static void judge_console(LinuxGuest *g, char **blk_sha)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    bool done = false;

    if (!g_file_get_contents(g->console, &text, NULL, NULL)) {
        text = g_strdup("");
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_strchomp(*l);
        if (g_str_has_prefix(*l, "PCI ") || g_str_has_prefix(*l, "IRQ ") ||
            g_str_has_prefix(*l, "DMESG ")) {
            printf("# %s\n", *l);
        } else if (g_str_has_prefix(*l, "BLKSHA ")) {
            g_free(*blk_sha);
            *blk_sha = g_strdup(*l + strlen("BLKSHA "));
        } else if (g_str_has_prefix(*l, "CHECKS DONE ")) {
            done = true;
        }
    }
    ok(done, "the guest's /init ran to the end");
    for (size_t i = 0; i < G_N_ELEMENTS(lg_checks); i++) {
        g_autofree char *want = g_strdup_printf("CHECK %s ", lg_checks[i]);
        const char *line = NULL;

        for (char **l = lines; *l; l++) {
            if (g_str_has_prefix(*l, want)) {
                line = *l;
            }
        }
        ok(line && g_str_has_prefix(line + strlen(want), "ok"), "guest: %s",
           line ? line + strlen("CHECK ") : lg_checks[i]);
    }
}

/* What the guest left on the host: the block pattern, the 9p file. */
static void judge_host(LinuxGuest *g, const char *blk_sha)
{
    g_autofree char *disk = NULL, *sha = NULL, *left = NULL;
    g_autofree char *path = g_build_filename(g->share, "guest.txt", NULL);
    g_autofree char *want = g_strdup_printf("from the guest: %s\n", g->token);
    gsize len = 0;

    if (g_file_get_contents(g->disk, &disk, &len, NULL) &&
        len >= LG_BLK_OFFSET + LG_BLK_LEN) {
        sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                          (guchar *)disk + LG_BLK_OFFSET,
                                          LG_BLK_LEN);
    }
    ok(sha && blk_sha && g_str_equal(sha, blk_sha),
       "host: the disk image holds the guest's pattern (sha256 %s)",
       sha ? sha : "unreadable");
    bool same;

    if (!g_file_get_contents(path, &left, NULL, NULL)) {
        left = g_strdup("(missing)");
    }
    same = g_str_equal(left, want);
    ok(same, "host: the guest's 9p file guest.txt: %s", g_strchomp(left));
}

static void diag_all(LinuxGuest *g)
{
    printf("# --- guest console (%s)\n", g->console);
    diag_file(g->console);
    printf("# --- guest QEMU\n");
    diag_file(g->guest_log);
    diag_file(g->guest_dlog);
    printf("# --- backend QEMU\n");
    diag_file(g->backend_log);
    diag_file(g->backend_dlog);
}

static void lg_free(LinuxGuest *g)
{
    g_free(g->sock);
    g_free(g->disk);
    g_free(g->share);
    g_free(g->console);
    g_free(g->token);
    g_free(g->guest_log);
    g_free(g->guest_dlog);
    g_free(g->backend_log);
    g_free(g->backend_dlog);
}

/* What the signal thread undoes: both QEMUs (0: none), the lab. */
static volatile pid_t lg_pids[2];
static LinuxGuest *lg_current;

/*
 * SIGINT/SIGTERM/SIGHUP (a killed ./run guest or test): stop both QEMUs,
 * remove the namespaces and the temp dir, leave.  A thread of its own
 * (sigwait), so that it may do all of that safely.
 */
static gpointer signal_thread(gpointer data)
{
    sigset_t *set = data;
    int sig = 0;

    sigwait(set, &sig);
    fprintf(stderr, "test-linux-guest: signal %d: stopping both QEMUs, "
            "cleaning up\n", sig);
    for (int i = 0; i < 2; i++) {
        if (lg_pids[i] > 0) {
            kill_and_reap(lg_pids[i]);
        }
    }
    net_lab_cleanup(&lg_current->net);
    if (!getenv("KEEP")) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'",
                                               lg_current->tmpdir);

        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", lg_current->tmpdir);
        }
    }
    _exit(128 + sig);
}

static void run(LinuxGuest *g, const char *image_dir, const char *loop_opts)
{
    g_autoptr(GPtrArray) gargv = NULL, bargv = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *blk_sha = NULL;
    pid_t guest = -1, backend = -1;
    int st;

    if (!setup_files(g, &err) || !net_lab_setup(&g->net, &err)) {
        ok(false, "set-up: %s", err->message);
        return;
    }
    gargv = guest_argv(g, image_dir);
    bargv = backend_argv(g, loop_opts);
    if (g->interactive) {
        printf("# logs of both QEMUs in %s%s; leave the guest with "
               "poweroff -f (or Ctrl-A x)\n", g->tmpdir,
               getenv("KEEP") ? "" : " (removed at the end unless KEEP=1)");
    }
    fflush(stdout);
    guest = g->interactive ?
            spawn_interactive((const char *const *)gargv->pdata) :
            spawn_qemu_argv((const char *const *)gargv->pdata, g->guest_log);
    lg_pids[0] = guest;
    /* the proxy listens in its realize, then waits for the backend */
    if (!wait_until(sock_exists, g, guest, LG_START_MS)) {
        ok(false, "the guest QEMU listens on %s", g->sock);
        goto out;
    }
    backend = spawn_qemu_argv((const char *const *)bargv->pdata,
                              g->backend_log);
    lg_pids[1] = backend;
    if (!wait_until(tap_exists, g, backend, LG_TAP_MS) ||
        !net_lab_configure(&g->net, (const uint8_t *)"\x02\0\0\0\0\x01",
                           &err)) {
        ok(false, "the backend's tap %s in %s: %s", g->net.tap[1],
           g->net.ns[1], err ? err->message : "not created");
        goto out;
    }
    if (!console_lab_connect(&g->con, &err)) {
        ok(false, "the backend's port socket: %s", err->message);
        goto out;
    }
    console_lab_echo_start(&g->con);

    st = wait_child(guest, g->interactive ? G_MAXINT : LG_BOOT_MS);
    guest = st == -1 ? guest : -1;
    if (g->interactive) {
        goto out;
    }
    ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "the guest powered off (QEMU status 0x%x%s)", st,
       st == -1 ? ", timed out" : "");
    /* its VMM gone, the backend shuts down: exit status 1 */
    st = wait_child(backend, LG_EXIT_MS);
    backend = st == -1 ? backend : -1;
    ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1,
       "the backend ended when the guest's VMM went (status 0x%x)", st);
    console_lab_echo_stop(&g->con, true);
    judge_console(g, &blk_sha);
    judge_host(g, blk_sha);

out:
    if (guest > 0) {
        kill_and_reap(guest);
    }
    if (backend > 0) {
        kill_and_reap(backend);
    }
    lg_pids[0] = lg_pids[1] = 0;
    console_lab_close(&g->con);
    if (n_fail && !g->interactive) {
        diag_all(g);
    }
}

int main(int argc, char **argv)
{
    static LinuxGuest g = { .con = CONSOLE_LAB_INIT };
    g_autofree char *cmd = NULL;
    static sigset_t sigs;

    if (argc < 4 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "usage: test-linux-guest QEMU IMAGE_DIR "
                "LOOP_OPTIONS [intx] [--interactive]\n");
        return 2;
    }
    qemu = argv[1];
    for (int i = 4; i < argc; i++) {
        if (g_str_equal(argv[i], "intx")) {
            g.intx = true;
        } else if (g_str_equal(argv[i], "--interactive")) {
            g.interactive = true;
        } else {
            fprintf(stderr, "test-linux-guest: unknown argument '%s'\n",
                    argv[i]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    printf("# Linux guest (TCG, sel4-vmm-proxy) <-> backend (-accel "
           "sel4,...,%s), %s\n", argv[3], g.intx ? "INTx" : "MSI-X");
    g.tmpdir = g_dir_make_tmp("linux-guest-XXXXXX", NULL);
    g_assert(g.tmpdir);
    net_lab_init(&g.net, "sel4-lg", "l");
    /* B's tap is .2 (net-lab); A's .1 is not part of this test */
    g_strlcpy(g.ip, g.net.ip[1], sizeof(g.ip));
    strcpy(strrchr(g.ip, '.'), ".3");
    /* every thread inherits the mask: only signal_thread takes them */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    lg_current = &g;
    g_thread_unref(g_thread_new("signals", signal_thread, &sigs));

    run(&g, argv[2], argv[3]);

    net_lab_cleanup(&g.net);
    if (!g.interactive) {
        printf("1..%d\n", n_test);
    }
    cmd = g_strdup_printf(getenv("KEEP") ? "true %s" : "rm -rf '%s'",
                          g.tmpdir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", g.tmpdir);
    }
    lg_free(&g);
    g_free(g.tmpdir);
    return n_fail ? 1 : 0;
}
