/*
 * contrib/systemd: the units pass systemd-analyze verify, and the
 * template's ExecStart, run as systemd would run it, serves the
 * simulated VMM with the documented configuration and QMP paths.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-systemd-unit QEMU_BINARY SOURCE_ROOT [SEL4_VMM_DEMO]
 * (exit 77 when QEMU_BINARY is empty or missing; TAP-style output).
 *
 * There is no systemd running here, so nothing is started as a unit:
 * contrib/systemd/install.sh installs into a temporary root (with a copy
 * of the system's own units, which verify needs for the default
 * dependencies), systemd-analyze verify --root checks both units there
 * (ExecStart must exist and be executable in that root), and a unit with
 * a misspelt key and a missing binary must be reported, so the check can
 * fail.  Then the test reads ExecStart=, RuntimeDirectory= and
 * ConfigurationDirectory= from the installed template, expands %i, sets
 * the CONFIGURATION_DIRECTORY and RUNTIME_DIRECTORY that systemd would
 * set (under the temporary root) and runs that command line with a
 * NAME.conf for the simulated VMM: QEMU attaches and registers the
 * configured devices, answers config reads, and its QMP socket is where
 * the docs say, named after the instance, the user's alone (or also
 * QMP_GROUP's).  The start script's refusals (unknown key, missing conf,
 * another accelerator, a bad name, a QMP socket path that is a symlink
 * or another user's) exit 2 with a message.
 *
 * The sandbox: systemd-analyze security --offline scores each unit's
 * exposure at 3.0 or less (and a unit without the hardening above it, so
 * the parse can fail), and sel4-vmm-demo runs its five devices' workloads
 * against a QEMU with the arguments the start script adds, QEMU's own
 * -sandbox among them.  What is not covered here, for want of systemd as
 * PID 1: the unit's own restrictions (User=, the capability set, the
 * system-call filter) around a running QEMU.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "sel4/vmm_sim.h"
#include "qmp-client.h"
#include "qemu-harness.h"

#define TIMEOUT_MS      20000

static const char *srcdir;
static const char *demo;
static char *tmpdir, *root;

/* Run @cmd (a shell command line); its wait status, output in @out. */
static int sh(const char *cmd, char **out)
{
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    g_autofree char *o = NULL, *e = NULL;
    int status = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                      &o, &e, &status, NULL)) {
        *out = g_strdup("spawn failed");
        return -1;
    }
    *out = g_strconcat(o, e, NULL);
    return status;
}

static void diag(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    for (char **l = lines; *l; l++) {
        if (**l) {
            printf("#   %s\n", *l);
        }
    }
}

/* The value of @key= in unit @path, %i expanded to @inst. */
static char *unit_value(const char *path, const char *key, const char *inst)
{
    g_autofree char *text = NULL;
    g_autofree char *prefix = g_strdup_printf("%s=", key);
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return NULL;
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (g_str_has_prefix(*l, prefix)) {
            g_auto(GStrv) parts = g_strsplit(*l + strlen(prefix), "%i", -1);

            return g_strjoinv(inst, parts);
        }
    }
    return NULL;
}

static void test_verify(const char *qemu_bin)
{
    g_autofree char *cmd = NULL, *out = NULL, *bad = NULL;
    g_autofree char *units = g_build_filename(root, "etc/systemd/system",
                                              NULL);
    g_autofree char *tmpl = g_build_filename(units, "qemu-virtio@.service",
                                             NULL);
    g_autofree char *text = NULL;
    int st;

    cmd = g_strdup_printf("'%s/contrib/systemd/install.sh' --root '%s' "
                          "--qemu '%s' && mkdir -p '%s/usr/lib/systemd' && "
                          "cp -a /usr/lib/systemd/system '%s/usr/lib/systemd/'",
                          srcdir, root, qemu_bin, root, root);
    st = sh(cmd, &out);
    ok(st == 0, "install.sh --root --qemu: %s", g_strstrip(out));
    g_free(out);
    g_free(cmd);
    cmd = g_strdup_printf("systemd-analyze verify --root='%s' "
                          "qemu-virtio.service qemu-virtio@vm1.service",
                          root);
    st = sh(cmd, &out);
    ok(st == 0 && !strstr(out, "qemu-virtio"), "systemd-analyze verify: "
       "both units, no complaint (status 0x%x)", st);
    diag(out);

    /* the same check on a broken copy must complain */
    g_assert(g_file_get_contents(tmpl, &text, NULL, NULL));
    bad = g_build_filename(units, "qemu-virtio-bad@.service", NULL);
    {
        g_autoptr(GString) s = g_string_new(text);

        g_string_replace(s, "Restart=always", "Restrat=always", 1);
        g_string_replace(s, "/usr/local/libexec/qemu-virtio-start",
                         "/usr/local/libexec/no-such-start", 0);
        g_assert(g_file_set_contents(bad, s->str, -1, NULL));
    }
    g_free(out);
    g_free(cmd);
    cmd = g_strdup_printf("systemd-analyze verify --root='%s' "
                          "qemu-virtio-bad@vm1.service", root);
    st = sh(cmd, &out);
    ok(st != 0 && strstr(out, "Restrat") && strstr(out, "no-such-start"),
       "a misspelt key and a missing ExecStart binary are reported");
    diag(out);
    g_unlink(bad);
}

/* ExecStart of the installed template for @inst, argv[0] in the root. */
/* The exposure systemd-analyze security gives unit file @path, or -1. */
static double exposure(const char *path, char **out)
{
    g_autofree char *cmd = g_strdup_printf(
        "systemd-analyze security --offline=true '%s' 2>&1", path);
    const char *at;

    sh(cmd, out);
    at = strstr(*out, "Overall exposure level for ");
    at = at ? strstr(at, ": ") : NULL;
    return at ? g_ascii_strtod(at + 2, NULL) : -1;
}

static void test_security(void)
{
    static const char *const units[] = {
        "qemu-virtio.service", "qemu-virtio@.service",
    };
    g_autofree char *bare = g_build_filename(tmpdir, "bare.service", NULL);
    g_autofree char *out = NULL;
    double e;

    for (unsigned i = 0; i < G_N_ELEMENTS(units); i++) {
        g_autofree char *path = g_build_filename(srcdir, "contrib/systemd",
                                                 units[i], NULL);

        g_free(out);
        e = exposure(path, &out);
        ok(e >= 0 && e <= 3.0, "systemd-analyze security: %s exposure %.1f "
           "(at most 3.0)", units[i], e);
        if (e < 0 || e > 3.0) {
            diag(out);
        }
    }
    g_assert(g_file_set_contents(bare, "[Service]\nExecStart=/bin/true\n",
                                 -1, NULL));
    g_free(out);
    e = exposure(bare, &out);
    ok(e > 3.0, "... where a unit without the hardening scores %.1f", e);
}

static char **exec_start(const char *inst)
{
    g_autofree char *unit = g_build_filename(
        root, "etc/systemd/system/qemu-virtio@.service", NULL);
    g_autofree char *line = unit_value(unit, "ExecStart", inst);
    g_autofree char *path = NULL;
    char **argv = NULL;

    if (!line || !g_shell_parse_argv(line, NULL, &argv, NULL)) {
        return NULL;
    }
    path = argv[0];
    argv[0] = g_build_filename(root, path, NULL);
    return argv;
}

static void test_run(void)
{
    g_autofree char *unit = g_build_filename(
        root, "etc/systemd/system/qemu-virtio@.service", NULL);
    g_autofree char *rundir_rel = unit_value(unit, "RuntimeDirectory", "vm1");
    g_autofree char *confdir_rel = unit_value(unit, "ConfigurationDirectory",
                                              "vm1");
    g_autofree char *confdir = NULL, *rundir = NULL, *conf = NULL;
    g_autofree char *sock = g_build_filename(tmpdir, "vmm.sock", NULL);
    g_autofree char *disk = g_build_filename(tmpdir, "vm1.raw", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu.log", NULL);
    g_autofree char *qsock = NULL, *text = NULL;
    g_auto(GStrv) argv = exec_start("vm1");
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(QmpClient) qmp = NULL;
    g_autoptr(JsonNode) name = NULL;
    g_autoptr(GError) err = NULL;
    uint64_t id0 = 0, id1 = 0, reads = 0;
    unsigned n = 0;
    VmmSim *sim;
    pid_t pid;
    bool r;

    ok(argv && argv[1] && g_str_equal(argv[1], "vm1") && !argv[2] &&
       rundir_rel && g_str_equal(rundir_rel, "qemu-virtio/vm1") &&
       confdir_rel && g_str_equal(confdir_rel, "qemu-virtio"),
       "template: ExecStart=%s %s, RuntimeDirectory=%s, "
       "ConfigurationDirectory=%s", argv ? argv[0] : "?",
       argv && argv[1] ? argv[1] : "?", rundir_rel, confdir_rel);
    if (!argv || !rundir_rel || !confdir_rel) {
        return;
    }
    /* what systemd sets, under our root */
    confdir = g_build_filename(root, "etc", confdir_rel, NULL);
    rundir = g_build_filename(root, "run", rundir_rel, NULL);
    g_assert(g_mkdir_with_parents(rundir, 0750) == 0);
    g_setenv("CONFIGURATION_DIRECTORY", confdir, true);
    g_setenv("RUNTIME_DIRECTORY", rundir, true);
    g_assert(g_file_set_contents(disk, "", 0, NULL));
    g_assert(truncate(disk, 1 << 20) == 0);
    conf = g_build_filename(confdir, "vm1.conf", NULL);
    text = g_strdup_printf(
        "# vm1: the simulated VMM\n\n"
        "QEMU=%s/usr/local/bin/qemu-system-aarch64\n"
        "ACCEL=sel4,transport=sim,socket=%s,loop=uring\n"
        "  ARGS=-device virtio-rng-pci\n"
        "ARGS=-device virtio-blk-pci,drive=d0   "
        "-drive if=none,id=d0,file=%s,format=raw\n", root, sock, disk);
    g_assert(g_file_set_contents(conf, text, -1, NULL));

    sim = vmm_sim_new(&cfg, &err);
    g_assert(sim);
    pid = spawn_qemu_argv((const char *const *)argv, log);
    r = vmm_sim_accept(sim, TIMEOUT_MS, &err) &&
        vmm_sim_wait_started(sim, TIMEOUT_MS);
    vmm_sim_pci_devs(sim, &n);
    ok(r && n == 2, "ExecStart with vm1.conf: QEMU attached, %u devices "
       "registered (want 2): %s", n, err ? err->message : "ok");
    g_clear_error(&err);
    r = r && vmm_sim_config_read(sim, 0, 0, 4, &id0, &err) &&
        vmm_sim_config_read(sim, 1, 0, 4, &id1, &err);
    ok(r && id0 == 0x10441af4 && id1 == 0x10421af4, "config reads: "
       "0x%08" PRIx64 " (rng), 0x%08" PRIx64 " (blk): %s", id0, id1,
       err ? err->message : "ok");
    g_clear_error(&err);
    qsock = g_build_filename(rundir, "qmp.sock", NULL);
    qmp = qmp_client_connect(qsock, TIMEOUT_MS, &err);
    if (qmp) {
        name = qmp_client_call(qmp, "query-name", NULL, &err);
    }
    ok(name && JSON_NODE_HOLDS_OBJECT(name) &&
       g_str_equal(json_object_get_string_member(json_node_get_object(name),
                                                 "name"), "vm1"),
       "QMP at $RUNTIME_DIRECTORY/qmp.sock: query-name says vm1: %s",
       err ? err->message : "ok");
    g_clear_error(&err);
    {
        struct stat st = { 0 };
        bool found = lstat(qsock, &st) == 0;

        ok(found && S_ISSOCK(st.st_mode) && st.st_uid == geteuid() &&
           !(st.st_mode & 0077), "the QMP socket is the user's alone "
           "(mode 0%o)", (unsigned)(st.st_mode & 07777));
    }
    r = qmp && qmp_client_qom_get_u64(qmp, "/machine/accel",
                                      "stats-requests-read", &reads, &err);
    ok(r && reads == 2, "qom-get /machine/accel stats-requests-read: %" PRIu64
       ": %s", reads, err ? err->message : "ok");
    g_clear_pointer(&qmp, qmp_client_free);
    harness_stop_qemu(pid, 0, log);     /* systemctl stop: SIGTERM, 0 */
    vmm_sim_free(sim);
}

/* QMP_GROUP: the socket also its group's. */
static void test_qmp_group(void)
{
    g_autofree char *sock = g_build_filename(tmpdir, "vmm-g.sock", NULL);
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(GError) err = NULL;
    VmmSim *sim = vmm_sim_new(&cfg, &err);
    g_autofree char *conf = g_strdup_printf("%s/etc/qemu-virtio/g.conf",
                                            root);
    g_autofree char *rundir = g_build_filename(root, "run/qemu-virtio/g",
                                               NULL);
    g_autofree char *qsock = g_build_filename(rundir, "qmp.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu-g.log", NULL);
    g_autofree char *text = g_strdup_printf(
        "QEMU=%s/usr/local/bin/qemu-system-aarch64\n"
        "ACCEL=sel4,transport=sim,socket=%s\n"
        "QMP_GROUP=daemon\n", root, sock);
    g_auto(GStrv) argv = exec_start("g");
    gint64 end = g_get_monotonic_time() + TIMEOUT_MS * 1000;
    struct stat st = { 0 };
    pid_t pid;

    g_assert(g_file_set_contents(conf, text, -1, NULL));
    g_assert(g_mkdir_with_parents(rundir, 0750) == 0);
    g_setenv("RUNTIME_DIRECTORY", rundir, true);
    g_assert(sim);
    pid = spawn_qemu_argv((const char *const *)argv, log);
    if (vmm_sim_accept(sim, TIMEOUT_MS, &err) &&
        vmm_sim_wait_started(sim, TIMEOUT_MS)) {
        /* -qmp is listening before the machine starts */
        while (lstat(qsock, &st) < 0 && g_get_monotonic_time() < end) {
            g_usleep(1000);
        }
    }
    ok(S_ISSOCK(st.st_mode) && st.st_gid == 1 &&
       (st.st_mode & 0060) == 0060 && !(st.st_mode & 0007),
       "QMP_GROUP=daemon: the QMP socket is the user's and group daemon's "
       "(gid %u, mode 0%o)", (unsigned)st.st_gid,
       (unsigned)(st.st_mode & 07777));
    /* (test_run checks how SIGTERM ends it) */
    harness_stop_qemu(pid, -1, log);
    vmm_sim_free(sim);
}

/* The start script's refusals: @conf_text for instance @inst. */
static void refuse(const char *inst, const char *conf_text, const char *says)
{
    g_autofree char *conf = NULL, *cmd = NULL, *out = NULL;
    int st;

    if (conf_text) {
        conf = g_strdup_printf("%s/etc/qemu-virtio/%s.conf", root, inst);
        g_assert(g_file_set_contents(conf, conf_text, -1, NULL));
    }
    cmd = g_strdup_printf("'%s/usr/local/libexec/qemu-virtio-start' '%s'",
                          root, inst);
    st = sh(cmd, &out);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(out, says),
       "refused: %s", g_strstrip(out));
}

static void test_refusals(void)
{
    g_autofree char *cmd = NULL, *out = NULL;
    int st;

    refuse("k", "ACCEL=sel4\nMACHINE=virt\n", "k.conf:2: unknown key "
           "'MACHINE'");
    refuse("nope", NULL, "cannot read");
    refuse("t", "ACCEL=tcg\n", "ACCEL must be sel4");
    refuse("m", "ARGS=-device virtio-rng-pci\n", "ACCEL= is missing");
    refuse("../x", NULL, "bad instance name");
    /* what QEMU would replace at the QMP socket's path */
    {
        g_autofree char *rd = g_build_filename(root, "run/qemu-virtio/s",
                                               NULL);
        g_autofree char *qs = g_build_filename(rd, "qmp.sock", NULL);
        const char *conf = "QEMU=/bin/true\nACCEL=sel4\n";

        g_assert(g_mkdir_with_parents(rd, 0750) == 0);
        g_setenv("RUNTIME_DIRECTORY", rd, true);
        g_assert(symlink("/etc/passwd", qs) == 0);
        refuse("s", conf, "qmp.sock is a symbolic link: refused");
        g_unlink(qs);
        g_assert(g_file_set_contents(qs, "", 0, NULL) && chown(qs, 1, 1) == 0);
        refuse("s", conf, "qmp.sock belongs to uid 1, not to us");
        g_unlink(qs);
    }
    /* --dry-run: the default instance's command line, paths included */
    cmd = g_strdup_printf("printf 'ACCEL=sel4,transport=uio\\n' > "
                          "'%s/etc/qemu-virtio/default.conf' && "
                          "RUNTIME_DIRECTORY=/run/qemu-virtio/default "
                          "'%s/usr/local/libexec/qemu-virtio-start' "
                          "--dry-run default", root, root);
    st = sh(cmd, &out);
    ok(st == 0 && g_str_has_prefix(out, "/usr/local/bin/qemu-system-aarch64"
                                   "\n-name\ndefault\n") &&
       strstr(out, "\n-accel\nsel4,transport=uio\n") &&
       strstr(out, "\n-qmp\nunix:/run/qemu-virtio/default/qmp.sock,"
              "server=on,wait=off\n"),
       "--dry-run default: the documented defaults");
    diag(out);
}

/*
 * The arguments the start script adds to every QEMU (the sandbox among
 * them) around the demo's five devices and their workloads.
 */
static void test_demo_sandboxed(void)
{
    g_autofree char *cmd = NULL, *out = NULL, *dout = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GString) args = g_string_new(NULL);
    bool sandbox = false;
    int st;

    if (!demo || !*demo) {
        ok(false, "no sel4-vmm-demo given");
        return;
    }
    cmd = g_strdup_printf("printf 'ACCEL=sel4,transport=uio\\n' > "
                          "'%s/etc/qemu-virtio/d.conf' && "
                          "'%s/usr/local/libexec/qemu-virtio-start' "
                          "--dry-run d", root, root);
    st = sh(cmd, &out);
    lines = g_strsplit(out, "\n", -1);
    /* what the demo does not set itself: -name and -sandbox */
    for (char **l = lines; st == 0 && *l && l[1]; l++) {
        if (g_str_equal(*l, "-name") || g_str_equal(*l, "-sandbox")) {
            g_autofree char *a = g_shell_quote(*l);
            g_autofree char *v = g_shell_quote(l[1]);

            sandbox |= g_str_equal(*l, "-sandbox");
            g_string_append_printf(args, " --qemu-arg=%s --qemu-arg=%s", a,
                                   v);
        }
    }
    ok(sandbox, "the start script gives QEMU a -sandbox:%s", args->str);
    g_free(cmd);
    cmd = g_strdup_printf("'%s' --qemu '%s'%s", demo, qemu, args->str);
    st = sh(cmd, &dout);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(dout, "virtio-9p"),
       "sel4-vmm-demo with them: every device's workload ok (status 0x%x)",
       st);
    diag(dout);
}

int main(int argc, char **argv)
{
    srcdir = argc > 2 ? argv[2] : ".";
    demo = argc > 3 ? argv[3] : NULL;
    tmpdir = harness_init(argc > 1 ? argv[1] : "", "systemd-unit");
    if (!tmpdir) {
        return 77;
    }
    root = g_build_filename(tmpdir, "root", NULL);
    test_security();
    test_verify(qemu);
    test_run();
    test_qmp_group();
    test_refusals();
    test_demo_sandboxed();
    return harness_done();
}
