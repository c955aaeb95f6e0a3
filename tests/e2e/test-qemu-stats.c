/*
 * End-to-end: the accelerator's counters, read through a QMP socket while
 * the simulated VMM sends known traffic.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * usage: test-qemu-stats QEMU_BINARY [LOOP_OPTIONS]
 * (exit 77, a skip, when QEMU_BINARY is empty or missing; TAP-style
 * output, exit-code protocol).
 *
 * QEMU runs with two virtio-rng-pci devices and -qmp on a unix socket.
 * Checks: the accelerator is /machine/accel in the QOM tree; its "stats"
 * dict and the stats-* properties agree; the registrations and START_VM
 * are counted; a known mix of requests (a pipelined batch of 20 config
 * reads, 4 writes, a read of a hole in the PCI window, and written into
 * the queue by hand: a request with an unknown opcode, a config read of an
 * unregistered device and a read where nothing is mapped) moves the per-opcode counters by
 * exactly that much and each error kind by one (global-access by two:
 * the hole and the unmapped read); batches and the batch-size
 * histogram agree (loop=thread: batches of one only; the others,
 * loop=thread-batch too: the batch of 20 in one pass); doorbells and the request queue's high-water
 * mark moved; virtio-rng traffic with MSI-X moves the MSI and SET_IRQ
 * pulse counters; HMP `info sel4` (through human-monitor-command) prints
 * the same numbers; query-stats has provider sel4 with the same values
 * and a 7-bucket histogram, query-stats-schemas types them; and without
 * the sel4 accelerator `info sel4` is "not available".
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include "sel4/vmm_sim.h"
#include "virtio-rng.h"
#include "qmp-client.h"
#include "qemu-harness.h"

#define TIMEOUT_MS      20000
#define N_READS         20
#define N_WRITES        4
#define ACCEL_PATH      "/machine/accel"

static const char *loop_opts = "loop=uring";
static char *tmpdir;

/* The accelerator's "stats" dict; NULL (and a failed test) on error. */
static JsonObject *stats_get(QmpClient *qmp, JsonNode **holder)
{
    g_autoptr(GError) err = NULL;

    *holder = qmp_client_call(qmp, "qom-get", "{\"path\": \"" ACCEL_PATH
                              "\", \"property\": \"stats\"}", &err);
    if (!*holder || !JSON_NODE_HOLDS_OBJECT(*holder)) {
        ok(false, "qom-get " ACCEL_PATH " stats: %s",
           err ? err->message : "not a dict");
        return NULL;
    }
    return json_node_get_object(*holder);
}

static uint64_t val(JsonObject *o, const char *name)
{
    return json_object_has_member(o, name) ?
           (uint64_t)json_object_get_int_member(o, name) : UINT64_MAX;
}

static uint64_t delta(JsonObject *a, JsonObject *b, const char *name)
{
    return val(b, name) - val(a, name);
}

static uint64_t hist(JsonObject *o, unsigned bucket)
{
    JsonArray *a = json_object_get_array_member(o, "batch-size");

    return a && bucket < json_array_get_length(a) ?
           (uint64_t)json_array_get_int_element(a, bucket) : 0;
}

/* Known traffic: N_READS + 3 reads, N_WRITES writes, one invalid. */
static void send_traffic(VmmSim *sim)
{
    const VmmSimConfig *cfg = vmm_sim_config(sim);
    VmmSimAccess acc[N_READS];
    g_autoptr(GError) err = NULL;
    VsoRpc *rpc = (VsoRpc *)vmm_sim_rpc(sim);
    rpcmsg_t bad[3] = {
        { .mr0 = RPC_MR0_SET(0, OP, 7) },   /* no such opcode */
        /* decode fine; device 30 is not registered, nothing is at 0x1000 */
        { .mr0 = rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, 30, 16, 4) },
        { .mr0 = rpc_mr0_mmio(RPC_MR0_MMIO_DIRECTION_READ, AS_GLOBAL, 16, 4),
          .mr1 = 0x1000 },
    };
    VsoRequest replies[3];
    uint16_t ids[3];
    uint64_t hole = 0;
    unsigned i, got = 0;
    gint64 end;
    bool r;

    for (i = 0; i < N_READS; i++) {
        acc[i] = (VmmSimAccess) {
            .slot = 16, .as = i % 2, .addr = 0x00, .len = 4,
        };
    }
    r = vmm_sim_mmio_batch(sim, acc, N_READS, &err);
    ok(r && acc[0].data == 0x10441af4, "%d config reads in one batch "
       "(device 0 ID 0x%08" PRIx64 "): %s", N_READS, acc[0].data,
       err ? err->message : "ok");
    g_clear_error(&err);
    for (i = 0, r = true; i < N_WRITES && r; i++) {
        r = vmm_sim_config_write(sim, 1, 0x04, 2, 0, &err);
    }
    ok(r, "%d config writes: %s", N_WRITES, err ? err->message : "ok");
    g_clear_error(&err);
    r = vmm_sim_mmio_read(sim, 0, AS_GLOBAL, cfg->pci_mmio_base + 0x2000000,
                          4, &hole, &err);
    ok(r && hole == 0xffffffff, "a read of a hole in the PCI window: 0x%"
       PRIx64 ": %s", hole, err ? err->message : "ok");
    /* the simulator refuses to send these: write them into the queue */
    ok(vso_rpc_call(rpc, bad, 3, ids) == 3, "an unknown opcode, a read of "
       "unregistered device 30 and of unmapped 0x1000, queued by hand");
    vmm_sim_ring(sim);
    end = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    while (got < 3 && g_get_monotonic_time() < end) {
        got += vso_rpc_collect(rpc, replies + got, 3 - got);
        g_usleep(1000);
    }
    ok(got == 3 && replies[0].msg.mr2 == UINT64_MAX &&
       replies[1].msg.mr2 == UINT64_MAX && replies[2].msg.mr2 == UINT64_MAX,
       "all three answered with all-ones (%u replies)", got);
}

/* virtio-rng with MSI-X: the device's interrupts become SET_IRQ pulses. */
static void rng_traffic(VmmSim *sim)
{
    const VmmSimConfig *cfg = vmm_sim_config(sim);
    uint64_t mmio_next = cfg->pci_mmio_base;
    g_autoptr(GError) err = NULL;
    uint8_t bytes[64];
    GuestAlloc mem;
    VirtioRng rng;
    bool r;

    guest_alloc_init(&mem, sim, cfg->ram_base + cfg->ram_size / 2,
                     cfg->ram_size / 2);
    r = virtio_rng_init(&rng, sim, &mem, 0, &mmio_next, cfg->msi_spi_base,
                        true, &err) &&
        virtio_rng_read(&rng, bytes, sizeof(bytes), &err);
    ok(r && rng.pci.msix, "virtio-rng read %zu bytes with MSI-X: %s",
       sizeof(bytes), err ? err->message : "ok");
    if (r) {
        virtq_destroy(&rng.vq);
    }
}

/* The "stats" dict and each stats-* property say the same. */
static void check_props(QmpClient *qmp, JsonObject *s)
{
    static const char *const names[] = {
        "requests", "requests-read", "events-register-pci-dev",
        "errors-bad-op", "requests-peak", "doorbells-in",
    };
    unsigned i, same = 0;

    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *prop = g_strdup_printf("stats-%s", names[i]);
        g_autoptr(GError) err = NULL;
        uint64_t v = UINT64_MAX;

        if (qmp_client_qom_get_u64(qmp, ACCEL_PATH, prop, &v, &err) &&
            v == val(s, names[i])) {
            same++;
        } else {
            printf("# %s: %" PRIu64 " vs %" PRIu64 " %s\n", prop, v,
                   val(s, names[i]), err ? err->message : "");
        }
    }
    ok(same == G_N_ELEMENTS(names), "%u stats-* properties match the "
       "stats dict", same);
}

/* loop=thread, the one engine that takes one request per pass */
static bool loop_one_at_a_time(void)
{
    g_auto(GStrv) opts = g_strsplit(loop_opts, ",", -1);

    return g_strv_contains((const char *const *)opts, "loop=thread");
}

static void check_traffic(JsonObject *a, JsonObject *b, const VmmSimStats *sa,
                          const VmmSimStats *sb)
{
    bool thread = loop_one_at_a_time();
    uint64_t batches = delta(a, b, "batches"), in_hist = 0, multi = 0;
    unsigned i;

    ok(delta(a, b, "requests-read") == N_READS + 3 &&
       delta(a, b, "requests-write") == N_WRITES &&
       delta(a, b, "requests-invalid") == 1 &&
       delta(a, b, "requests") == N_READS + N_WRITES + 4,
       "requests by opcode: read +%" PRIu64 " (want %d), write +%" PRIu64
       " (want %d), invalid +%" PRIu64 " (want 1)",
       delta(a, b, "requests-read"), N_READS + 3,
       delta(a, b, "requests-write"), N_WRITES,
       delta(a, b, "requests-invalid"));
    ok(delta(a, b, "errors-bad-op") == 1 &&
       delta(a, b, "errors-config-access") == 1 &&
       /* the hole answers all-ones, and counts: no BAR is there */
       delta(a, b, "errors-global-access") == 2 &&
       delta(a, b, "errors-bad-len") == 0,
       "errors by kind: bad-op +%" PRIu64 ", config-access +%" PRIu64
       ", global-access +%" PRIu64 ", bad-len +%" PRIu64,
       delta(a, b, "errors-bad-op"), delta(a, b, "errors-config-access"),
       delta(a, b, "errors-global-access"), delta(a, b, "errors-bad-len"));
    for (i = 0; i < 7; i++) {
        in_hist += hist(b, i) - hist(a, i);
        multi += i >= 2 ? hist(b, i) - hist(a, i) : 0;
    }
    ok(batches >= 1 && batches <= N_READS + N_WRITES + 4 &&
       in_hist == batches, "%" PRIu64 " batches, as many in the batch-size "
       "histogram (%" PRIu64 ")", batches, in_hist);
    if (thread) {
        ok(multi == 0 && batches == N_READS + N_WRITES + 4,
           "loop=thread: one request per batch (%" PRIu64 " larger)", multi);
    } else {
        ok(hist(b, 5) - hist(a, 5) >= 1, "the pipelined batch of %d was "
           "served in one pass (bucket 16-31: +%" PRIu64 ")", N_READS,
           hist(b, 5) - hist(a, 5));
    }
    ok(val(b, "requests-peak") >= N_READS, "request queue high-water "
       "mark %" PRIu64 " >= %d", val(b, "requests-peak"), N_READS);
    ok(delta(a, b, "doorbells-in") >= 1 &&
       delta(a, b, "doorbells-in") <= sb->doorbells_tx - sa->doorbells_tx &&
       delta(a, b, "doorbells-out") >= 1,
       "doorbells: in +%" PRIu64 " (the VMM rang %" PRIu64 "), out +%"
       PRIu64, delta(a, b, "doorbells-in"),
       sb->doorbells_tx - sa->doorbells_tx, delta(a, b, "doorbells-out"));
}

/* QEMU's version, from query-version: major * 100 + minor (0 if unknown). */
static unsigned qemu_version(QmpClient *qmp)
{
    g_autoptr(JsonNode) v = qmp_client_call(qmp, "query-version", NULL, NULL);
    JsonObject *q;

    if (!v || !JSON_NODE_HOLDS_OBJECT(v) ||
        !(q = json_object_get_object_member(json_node_get_object(v),
                                            "qemu"))) {
        return 0;
    }
    return json_object_get_int_member(q, "major") * 100 +
           json_object_get_int_member(q, "minor");
}

/* A line "  NAME  VALUE" of `info sel4`. */
static uint64_t hmp_value(const char *text, const char *name)
{
    g_autofree char *pat = g_strdup_printf("\n  %s +([0-9]+)\r?\n", name);
    g_autoptr(GRegex) re = g_regex_new(pat, 0, 0, NULL);
    g_autoptr(GMatchInfo) m = NULL;
    g_autofree char *num = NULL;

    if (!g_regex_match(re, text, 0, &m)) {
        return UINT64_MAX;
    }
    num = g_match_info_fetch(m, 1);
    return g_ascii_strtoull(num, NULL, 10);
}

static void check_monitor(QmpClient *qmp)
{
    g_autoptr(JsonNode) sn = NULL, qs = NULL, schema = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *info = qmp_client_hmp(qmp, "info sel4", &err);
    g_autofree char *accel = NULL, *istats = NULL;
    JsonObject *s = stats_get(qmp, &sn);
    JsonObject *res = NULL;
    JsonArray *list;
    unsigned i, same = 0, len = 0;
    bool hist_ok = false, types_ok = false;

    if (!s) {
        return;
    }
    ok(info && hmp_value(info, "requests-read") == val(s, "requests-read") &&
       hmp_value(info, "errors-bad-op") == val(s, "errors-bad-op") &&
       strstr(info, "batch-size"), "HMP info sel4: requests-read %" PRIu64
       ", errors-bad-op %" PRIu64 ": %s",
       info ? hmp_value(info, "requests-read") : 0,
       info ? hmp_value(info, "errors-bad-op") : 0,
       err ? err->message : "ok");

    g_clear_error(&err);
    accel = qmp_client_hmp(qmp, "info accel", &err);
    if (qemu_version(qmp) >= 1001) {
        ok(accel && strstr(accel, "requests-read"), "HMP info accel has "
           "the same table: %s", err ? err->message : "ok");
    } else {
        /* AccelClass::get_stats, behind `info accel`, came with 10.1 */
        ok(qemu_version(qmp) == 1000 &&
           !(accel && strstr(accel, "requests-read")),
           "QEMU %u: no info accel table before 10.1",
           qemu_version(qmp));
    }
    g_clear_error(&err);

    qs = qmp_client_call(qmp, "query-stats", "{\"target\": \"vm\", "
                         "\"providers\": [{\"provider\": \"sel4\"}]}", &err);
    if (qs && JSON_NODE_HOLDS_ARRAY(qs) &&
        json_array_get_length(json_node_get_array(qs)) == 1) {
        res = json_array_get_object_element(json_node_get_array(qs), 0);
    }
    ok(res && g_str_equal(json_object_get_string_member(res, "provider"),
                          "sel4") &&
       g_str_equal(json_object_get_string_member(res, "qom-path"),
                   ACCEL_PATH), "query-stats: one result, provider sel4, "
       "qom-path " ACCEL_PATH ": %s", err ? err->message : "ok");
    if (res) {
        list = json_object_get_array_member(res, "stats");
        len = json_array_get_length(list);
        for (i = 0; i < len; i++) {
            JsonObject *st = json_array_get_object_element(list, i);
            const char *name = json_object_get_string_member(st, "name");
            JsonNode *v = json_object_get_member(st, "value");

            if (JSON_NODE_HOLDS_ARRAY(v)) {
                hist_ok = g_str_equal(name, "batch-size") &&
                          json_array_get_length(json_node_get_array(v)) == 7;
            } else if (json_node_get_int(v) == (gint64)val(s, name) ||
                       g_str_has_suffix(name, "-peak") ||
                       g_str_has_prefix(name, "doorbells")) {
                /* peaks and doorbells may move between the two reads */
                same++;
            }
        }
    }
    ok(len > 30 && same == len - 1 && hist_ok, "query-stats: %u values, %u "
       "as qom-get says, batch-size a 7-bucket histogram", len, same);
    g_clear_error(&err);
    schema = qmp_client_call(qmp, "query-stats-schemas",
                             "{\"provider\": \"sel4\"}", &err);
    if (schema && JSON_NODE_HOLDS_ARRAY(schema) &&
        json_array_get_length(json_node_get_array(schema)) == 1) {
        JsonObject *o = json_array_get_object_element(
            json_node_get_array(schema), 0);
        JsonArray *vals = json_object_get_array_member(o, "stats");
        unsigned peaks = 0, log2 = 0;

        for (i = 0; vals && i < json_array_get_length(vals); i++) {
            const char *type = json_object_get_string_member(
                json_array_get_object_element(vals, i), "type");

            peaks += g_str_equal(type, "peak");
            log2 += g_str_equal(type, "log2-histogram");
        }
        types_ok = peaks == 4 && log2 == 1;
    }
    ok(types_ok, "query-stats-schemas: 4 peaks, 1 log2-histogram: %s",
       err ? err->message : "ok");
    g_clear_error(&err);
    istats = qmp_client_hmp(qmp, "info stats vm * sel4", &err);
    ok(istats && strstr(istats, "requests-read"), "HMP info stats vm * sel4: "
       "%s", err ? err->message : "ok");
}

/* The options docs/user-guide.md lists, each with a description. */
static void check_options(QmpClient *qmp)
{
    static const char *const documented[] = {
        "transport", "socket", "uio-iobuf", "uio-ram", "uservm",
        "x-uio-root", "loop", "x-uring-ring", "batch", "poll-us",
        "ioeventfd", "irqfd", "notify-suppress-us",
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) props = qmp_client_call(qmp, "qom-list-properties",
                                                "{\"typename\": "
                                                "\"sel4-accel\"}", &err);
    JsonArray *a = props && JSON_NODE_HOLDS_ARRAY(props) ?
                   json_node_get_array(props) : NULL;
    unsigned i, j, found = 0;

    for (i = 0; a && i < G_N_ELEMENTS(documented); i++) {
        for (j = 0; j < json_array_get_length(a); j++) {
            JsonObject *p = json_array_get_object_element(a, j);

            if (g_str_equal(json_object_get_string_member(p, "name"),
                            documented[i]) &&
                json_object_has_member(p, "description")) {
                found++;
                break;
            }
        }
    }
    ok(found == G_N_ELEMENTS(documented), "qom-list-properties sel4-accel: "
       "%u of the %zu documented options, described: %s", found,
       G_N_ELEMENTS(documented), err ? err->message : "ok");
}

static pid_t spawn(const char *sock, const char *qmp, const char *log)
{
    g_autofree char *accel = g_strdup_printf(
        "sel4,transport=sim,socket=%s,%s", sock, loop_opts);
    g_autofree char *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off",
                                               qmp);
    const char *argv[] = {
        qemu, "-nodefaults", "-display", "none", "-machine", "virt-sel4",
        "-accel", accel, "-qmp", qmp_arg,
        "-device", "virtio-rng-pci", "-device", "virtio-rng-pci", NULL
    };

    return spawn_qemu_argv(argv, log);
}

static void test_counters(void)
{
    g_autofree char *sock = g_build_filename(tmpdir, "vmm.sock", NULL);
    g_autofree char *qsock = g_build_filename(tmpdir, "qmp.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu.log", NULL);
    g_autoptr(JsonNode) na = NULL, nb = NULL, nc = NULL, tree = NULL;
    VmmSimConfig cfg = { .socket_path = sock };
    g_autoptr(QmpClient) qmp = NULL;
    g_autoptr(GError) err = NULL;
    JsonObject *a, *b, *c;
    VmmSimStats sa, sb;
    bool found = false;
    VmmSim *sim;
    pid_t pid;

    sim = vmm_sim_new(&cfg, &err);
    if (!sim) {
        ok(false, "vmm_sim_new: %s", err->message);
        return;
    }
    pid = spawn(sock, qsock, log);
    if (!vmm_sim_accept(sim, TIMEOUT_MS, &err) ||
        !vmm_sim_wait_started(sim, TIMEOUT_MS) ||
        !(qmp = qmp_client_connect(qsock, TIMEOUT_MS, &err))) {
        ok(false, "QEMU attached, started, QMP up: %s",
           err ? err->message : "no START_VM");
        goto out;
    }
    tree = qmp_client_call(qmp, "qom-list", "{\"path\": \"/machine\"}", &err);
    for (unsigned i = 0; tree && JSON_NODE_HOLDS_ARRAY(tree) &&
         i < json_array_get_length(json_node_get_array(tree)); i++) {
        JsonObject *p = json_array_get_object_element(
            json_node_get_array(tree), i);

        found |= g_str_equal(json_object_get_string_member(p, "name"),
                             "accel") &&
                 g_str_equal(json_object_get_string_member(p, "type"),
                             "child<sel4-accel>");
    }
    ok(found, "qom-list /machine has child<sel4-accel> 'accel': %s",
       err ? err->message : "ok");
    a = stats_get(qmp, &na);
    if (!a) {
        goto out;
    }
    ok(val(a, "events-register-pci-dev") == 2 &&
       val(a, "events-start-vm") == 1 && val(a, "requests") == 0,
       "at start: %" PRIu64 " registrations (want 2), %" PRIu64
       " START_VM, %" PRIu64 " requests", val(a, "events-register-pci-dev"),
       val(a, "events-start-vm"), val(a, "requests"));
    check_props(qmp, a);
    vmm_sim_get_stats(sim, &sa);
    send_traffic(sim);
    vmm_sim_get_stats(sim, &sb);
    b = stats_get(qmp, &nb);
    if (!b) {
        goto out;
    }
    check_traffic(a, b, &sa, &sb);
    rng_traffic(sim);
    c = stats_get(qmp, &nc);
    if (c) {
        ok(delta(b, c, "msi") >= 1 && delta(b, c, "events-irq-pulse") >= 1 &&
           delta(b, c, "events-irq-pulse") <= delta(b, c, "msi") &&
           delta(b, c, "events-irq-set") == 0,
           "MSI-X: msi +%" PRIu64 ", SET_IRQ pulses +%" PRIu64 ", merged +%"
           PRIu64 ", INTx set +%" PRIu64, delta(b, c, "msi"),
           delta(b, c, "events-irq-pulse"), delta(b, c, "msi-merged"),
           delta(b, c, "events-irq-set"));
    }
    check_monitor(qmp);
    check_options(qmp);
out:
    g_clear_pointer(&qmp, qmp_client_free);
    harness_stop_qemu(pid, -1, log);
    vmm_sim_free(sim);
}

/* Another accelerator: the command exists, nothing serves it. */
static void test_without_sel4(void)
{
    g_autofree char *qsock = g_build_filename(tmpdir, "qmp2.sock", NULL);
    g_autofree char *log = g_build_filename(tmpdir, "qemu2.log", NULL);
    g_autofree char *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off",
                                               qsock);
    const char *argv[] = {
        qemu, "-nodefaults", "-display", "none", "-machine", "none",
        "-accel", "qtest", "-qmp", qmp_arg, NULL
    };
    g_autoptr(QmpClient) qmp = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    pid_t pid = spawn_qemu_argv(argv, log);

    qmp = qmp_client_connect(qsock, TIMEOUT_MS, &err);
    if (qmp) {
        out = qmp_client_hmp(qmp, "info sel4", &err);
    }
    ok(out && strstr(out, "not available"), "-accel qtest: info sel4 says "
       "'%s'", out ? g_strstrip(out) : err->message);
    g_clear_pointer(&qmp, qmp_client_free);
    kill(pid, SIGTERM);
    wait_child(pid, TIMEOUT_MS);
    kill_and_reap(pid);
}

int main(int argc, char **argv)
{
    if (argc > 2) {
        loop_opts = argv[2];
    }
    tmpdir = harness_init(argc > 1 ? argv[1] : "", "qemu-stats");
    if (!tmpdir) {
        return 77;
    }
    printf("# -accel sel4,...,%s\n", loop_opts);
    test_counters();
    test_without_sel4();
    return harness_done();
}
