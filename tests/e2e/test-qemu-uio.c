/*
 * End-to-end: QEMU's transport=uio against a stand-in UIO tree.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-qemu-uio QEMU_BINARY LOOP_OPTIONS
 *
 * This kernel has no UIO module, so the two PCI functions of the device VM
 * are stood in for by a directory tree: ROOT/sys/class/uio/uio{0,1}/
 * {name,maps/mapM/{addr,size,offset}} and ROOT/dev/uio{0,1} as regular
 * files with map M at offset M * page size, exactly as /dev/uioN lays them
 * out.  QEMU runs with x-uio-root=ROOT, finds the functions by name,
 * maps them, and the test plays the VMM on the same file: it reads the
 * registrations and START_VM from devevt and gets a config read answered.
 * With the queues in its hands it also plays a hostile VMM: requests with
 * a bad opcode, length or address space, for an unregistered device,
 * beyond config space or into a hole are each answered with all-ones and
 * the SLOT untouched, logged under -d guest_errors (-D), and QEMU serves
 * the next good request.
 *
 * What a stand-in cannot show: the blocking 4-byte read and the write of
 * 1 that re-enables a real UIO interrupt (a regular file is always
 * readable, so QEMU's loop spins while this test runs), and the EMIT store
 * faulting into the VMM.  Every drain of the doorbell is a positional
 * 4-byte read and write at offset 0 (a UIO device ignores the position),
 * so the stand-in's event bar page only ever sees its first word change.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "sel4/rpc.h"
#include "sel4/vso_rpc.h"
#include "qemu-harness.h"

#define PAGE            4096u
#define RAM_SIZE        (16u << 20)
#define TIMEOUT_MS      20000
#define USERVM          "7:0x40000000:0x1000000:0x10000000:0x1000000"

static char *root;

static void put(const char *dir, const char *file, const char *text)
{
    g_autofree char *path = g_build_filename(dir, file, NULL);

    g_assert(g_file_set_contents(path, text, -1, NULL));
}

/* sys/class/uio/uioN with @name and two maps, dev/uioN sized for both. */
static void make_function(unsigned n, const char *name, uint64_t map1_size)
{
    g_autofree char *dir = g_strdup_printf("%s/sys/class/uio/uio%u", root, n);
    g_autofree char *node = g_strdup_printf("%s/dev/uio%u", root, n);
    g_autofree char *line = g_strdup_printf("%s\n", name);
    g_autofree char *root_dev = g_build_filename(root, "dev", NULL);
    uint64_t sizes[2] = { PAGE, map1_size };
    int fd;

    for (unsigned m = 0; m < 2; m++) {
        g_autofree char *map = g_strdup_printf("%s/maps/map%u", dir, m);
        g_autofree char *size = g_strdup_printf("0x%" PRIx64 "\n", sizes[m]);

        g_assert(g_mkdir_with_parents(map, 0755) == 0);
        put(map, "addr", "0x0000000040000000\n");
        put(map, "size", size);
        put(map, "offset", "0x0\n");
    }
    put(dir, "name", line);
    g_assert(g_mkdir_with_parents(root_dev, 0755) == 0);
    fd = open(node, O_RDWR | O_CREAT | O_TRUNC, 0600);
    g_assert(fd >= 0);
    g_assert(ftruncate(fd, PAGE + map1_size) == 0);
    /* the event bar carries the function's name at 0x8 */
    g_assert(pwrite(fd, name, strlen(name) + 1, 0x8) ==
             (ssize_t)strlen(name) + 1);
    close(fd);
}

static pid_t spawn_qemu(const char *loop_opts, const char *log,
                        const char *dlog)
{
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=uio,x-uio-root=%s,uservm=%s,%s", root, USERVM,
        loop_opts);
    const char *argv[] = {
        qemu, "-nodefaults", "-display", "none", "-machine", "virt-sel4",
        "-accel", accel, "-device", "virtio-rng-pci",
        "-d", "guest_errors,unimp", "-D", dlog, NULL
    };

    return spawn_qemu_argv(argv, log);
}

/* Take devevt events until START_VM; true when it came after REGISTER(0). */
static bool wait_for_start(VsoRpc *rpc, unsigned *registered)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    rpcmsg_t evs[RPCMSG_BUFFER_SIZE];

    *registered = 0;
    while (g_get_monotonic_time() < end) {
        int n = vso_rpc_recv_events(rpc, evs, RPCMSG_BUFFER_SIZE);

        for (int i = 0; i < n; i++) {
            unsigned op = RPC_MR0_GET(evs[i].mr0, OP);

            if (op == QEMU_OP_REGISTER_PCI_DEV && evs[i].mr1 == *registered) {
                (*registered)++;
            } else if (op == QEMU_OP_START_VM) {
                return true;
            }
        }
        g_usleep(1000);
    }
    return false;
}

/* Send @n requests at once; the replies land in @replies, in id order. */
static bool call(VsoRpc *rpc, const rpcmsg_t *reqs, unsigned n,
                 rpcmsg_t *replies)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    uint16_t ids[RPCMSG_BUFFER_SIZE];
    VsoRequest got[RPCMSG_BUFFER_SIZE];
    unsigned done = 0;

    if (vso_rpc_call(rpc, reqs, n, ids) != (int)n) {
        return false;
    }
    while (done < n && g_get_monotonic_time() < end) {
        int k = vso_rpc_collect(rpc, got, RPCMSG_BUFFER_SIZE);

        for (int i = 0; i < k; i++) {
            for (unsigned j = 0; j < n; j++) {
                if (ids[j] == got[i].id) {
                    replies[j] = got[i].msg;
                    done++;
                }
            }
        }
        if (k <= 0) {
            g_usleep(1000);
        }
    }
    return done == n;
}

/* One config read of registered device 0 through the request queue. */
static bool config_read(VsoRpc *rpc, unsigned offset, uint64_t *val)
{
    rpcmsg_t req = {
        .mr0 = rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, 0, 16, 4),
        .mr1 = offset,
    };
    rpcmsg_t reply;

    if (!call(rpc, &req, 1, &reply)) {
        return false;
    }
    *val = reply.mr2;
    return true;
}

#define RD  RPC_MR0_MMIO_DIRECTION_READ

static void test_hostile(VsoRpc *rpc, const char *dlog)
{
    /* What a hostile VMM may send, what QEMU answers, what it logs. */
    const struct {
        const char *what;
        rpcmsg_t req;
        uint64_t reply;
        const char *logged;
    } hostile[] = {
        { "unknown opcode 7", { .mr0 = RPC_MR0_SET(7, SLOT, 5) },
          UINT64_MAX, "unknown opcode" },
        { "length 3", { .mr0 = rpc_mr0_mmio(RD, 0, 6, 3) },
          UINT64_MAX, "bad access length" },
        { "address space 0x40", { .mr0 = rpc_mr0_mmio(RD, 0x40, 7, 4) },
          UINT64_MAX, "bad address space" },
        { "unregistered device 5", { .mr0 = rpc_mr0_mmio(RD, 5, 8, 4) },
          UINT64_MAX, "unregistered device 5" },
        { "config offset 0x2000", { .mr0 = rpc_mr0_mmio(RD, 0, 9, 4),
          .mr1 = 0x2000 }, UINT64_MAX, "beyond its" },
        /* outside RAM and the PCI window (a hole inside the window reads
         * all-ones as a PCI master abort: not an error) */
        { "AS_GLOBAL outside every window",
          { .mr0 = rpc_mr0_mmio(RD, AS_GLOBAL, 10, 4), .mr1 = 0x3f000000 },
          UINT64_MAX, "read of 4 bytes at 0x3f000000" },
    };
    rpcmsg_t reqs[G_N_ELEMENTS(hostile)], replies[G_N_ELEMENTS(hostile)];
    g_autofree char *text = NULL;
    uint64_t id = 0;
    bool answered;

    for (unsigned i = 0; i < G_N_ELEMENTS(hostile); i++) {
        reqs[i] = hostile[i].req;
    }
    answered = call(rpc, reqs, G_N_ELEMENTS(hostile), replies);
    ok(answered, "hostile: all %zu bad requests answered",
       G_N_ELEMENTS(hostile));
    if (!answered) {
        return;
    }
    g_file_get_contents(dlog, &text, NULL, NULL);
    for (unsigned i = 0; i < G_N_ELEMENTS(hostile); i++) {
        ok(replies[i].mr2 == hostile[i].reply &&
           replies[i].mr0 == reqs[i].mr0 &&
           text && strstr(text, hostile[i].logged),
           "hostile: %s: reply 0x%" PRIx64 ", mr0 (slot %u) untouched, "
           "logged '%s'", hostile[i].what, replies[i].mr2,
           (unsigned)RPC_MR0_GET(replies[i].mr0, SLOT), hostile[i].logged);
    }
    answered = config_read(rpc, 0x0, &id);
    ok(answered && id == 0x10441af4,
       "hostile: QEMU still serves: device 0 ID 0x%08" PRIx64, id);
}

static void test_uio(const char *loop_opts)
{
    g_autofree char *node = g_strdup_printf("%s/dev/uio0", root);
    g_autofree char *log = g_build_filename(root, "qemu.log", NULL);
    g_autofree char *dlog = g_build_filename(root, "qemu-d.log", NULL);
    unsigned registered = 0;
    bool started, answered;
    uint64_t id = 0;
    VsoRpc rpc;
    void *iobuf;
    pid_t pid;
    int fd;

    make_function(0, "guest-iobuf-7", RPC_IOBUF_SIZE);
    make_function(1, "guest-ram-7", RAM_SIZE);
    fd = open(node, O_RDWR);
    g_assert(fd >= 0);
    iobuf = mmap(NULL, RPC_IOBUF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd, PAGE);
    g_assert(iobuf != MAP_FAILED);
    g_assert(vso_rpc_init(&rpc, iobuf, RPC_IOBUF_SIZE, VSO_RPC_DRIVER,
                          RPC_QUEUE_DRVRPC_REQ) == 0);

    pid = spawn_qemu(loop_opts, log, dlog);
    started = wait_for_start(&rpc, &registered);
    ok(started && registered == 1,
       "uio: QEMU found guest-iobuf-7 and guest-ram-7 by name, mapped the "
       "iobuf at page 1 and sent REGISTER_PCI_DEV(0) then START_VM "
       "(%u registered)", registered);
    answered = started && config_read(&rpc, 0x0, &id);
    ok(answered && id == 0x10441af4,
       "uio: config read of device 0 answered through the mapped queues: "
       "0x%08" PRIx64, id);
    if (answered) {
        test_hostile(&rpc, dlog);
    }
    kill(pid, SIGTERM);
    ok(wait_child(pid, TIMEOUT_MS) != -1, "uio: QEMU ended on SIGTERM");
    if (n_fail) {
        diag_file(log);
    }
    kill_and_reap(pid);
    munmap(iobuf, RPC_IOBUF_SIZE);
    close(fd);
}

/* Stand-ins that are wrong in one way each, and what QEMU must say. */
static void test_uio_refused(void)
{
    g_autofree char *opt = g_strdup_printf("x-uio-root=%s", root);
    const struct {
        const char *extra;
        const char *says;
    } cases[] = {
        /* no function of that VM's name */
        { "uservm=8:0x40000000:0x1000000:0x10000000:0x1000000",
          "guest-iobuf-8" },
        /* uservm's RAM larger than the RAM function's map */
        { "uservm=7:0x40000000:0x2000000:0x10000000:0x1000000", "map1" },
        /* an explicit node that is not the iobuf function */
        { "uservm=7:0x40000000:0x1000000:0x10000000:0x1000000,"
          "uio-iobuf=/dev/uio1", "uio1" },
    };

    make_function(0, "guest-iobuf-7", RPC_IOBUF_SIZE);
    make_function(1, "guest-ram-7", RAM_SIZE);
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *accel = g_strdup_printf(
            "sel4,transport=uio,%s,%s", opt, cases[i].extra);
        const char *args[] = {
            "-nodefaults", "-display", "none", "-machine", "virt-sel4",
            "-accel", accel, NULL
        };
        g_autofree char *out = NULL;
        int st = run_qemu_sync(args, &out);

        ok(st != 0 && strstr(out, cases[i].says),
           "uio: %s refused: %s", cases[i].extra,
           g_strdelimit(g_strstrip(out), "\n", ' '));
    }
}

int main(int argc, char **argv)
{
    g_autofree char *cmd = NULL;

    if (argc < 3 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "usage: test-qemu-uio QEMU_BINARY LOOP_OPTIONS\n");
        return 2;
    }
    qemu = argv[1];
    signal(SIGPIPE, SIG_IGN);
    printf("# -accel sel4,transport=uio,...,%s\n", argv[2]);
    root = g_dir_make_tmp("qemu-uio-XXXXXX", NULL);
    g_assert(root);

    test_uio(argv[2]);
    test_uio_refused();

    printf("1..%d\n", n_test);
    cmd = g_strdup_printf("rm -rf '%s'", root);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", root);
    }
    return n_fail ? 1 : 0;
}
