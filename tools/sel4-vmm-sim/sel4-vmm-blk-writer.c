/*
 * sel4-vmm-blk-writer: the simulated seL4 VMM for a QEMU started by
 * someone else (e.g. a QEMU iotest), whose guest writes checkable blocks
 * (blk-writer.h) to the first virtio-blk device until told to stop.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 *   sel4-vmm-blk-writer --socket PATH [--blocks N] [--nonce X] [--pace-us U]
 *       Listen on PATH (the QEMU's -accel sel4,transport=sim,socket=PATH),
 *       print "listening", accept, bring the disk up, print "started" and
 *       write blocks 0..N-1 in order (32 in flight, a flush every 256, a
 *       pause of U us between rounds).  Commands on stdin, one per line:
 *         acked   print "acked K": blocks 0..K-1 are all acknowledged
 *         stop    stop writing, wait for what is in flight, flush, read
 *                 every block back through the guest and print
 *                 "verified written=W intact=I bad=B"; then wait for
 *                 QEMU to go and exit 0 (1 if B > 0)
 *
 *   sel4-vmm-blk-writer --check FILE --nonce X --blocks N [--prefix K]
 *       Check a raw image: blocks 0..K-1 must be intact, the others up
 *       to N intact or zero.  Prints "checked intact=I zero=Z bad=B";
 *       exit 0 when B is 0 and the prefix holds.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "blk-writer.h"
#include "cli.h"

#define TIMEOUT_MS      30000
#define QUEUE_SIZE      128

static char *opt_socket, *opt_check;
static gint64 opt_blocks = 16384, opt_prefix, opt_pace_us;
static char *opt_nonce;

static GOptionEntry entries[] = {
    { "socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
      "the VMM's socket (QEMU's -accel sel4,...,socket=)", "PATH" },
    { "blocks", 0, 0, G_OPTION_ARG_INT64, &opt_blocks,
      "4 KiB blocks to write (default 16384)", "N" },
    { "nonce", 0, 0, G_OPTION_ARG_STRING, &opt_nonce,
      "the run's nonce (default 1)", "X" },
    { "pace-us", 0, 0, G_OPTION_ARG_INT64, &opt_pace_us,
      "pause between rounds of writes", "U" },
    { "check", 0, 0, G_OPTION_ARG_FILENAME, &opt_check,
      "check a raw image instead", "FILE" },
    { "prefix", 0, 0, G_OPTION_ARG_INT64, &opt_prefix,
      "with --check: blocks that must be intact", "K" },
    { NULL }
};

static int check_image(uint64_t nonce)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *data = NULL;
    uint64_t intact = 0, zero = 0, bad = 0, prefix_bad = 0;
    gsize len;

    if (!g_file_get_contents(opt_check, &data, &len, &err)) {
        fprintf(stderr, "sel4-vmm-blk-writer: %s\n", err->message);
        return 2;
    }
    for (gint64 n = 0; n < opt_blocks; n++) {
        int r = (uint64_t)(n + 1) * BLK_WRITER_BLOCK > len ? -1 :
                blk_writer_check_block(data + n * BLK_WRITER_BLOCK, nonce, n);

        intact += r > 0;
        zero += r == 0;
        bad += r < 0;
        prefix_bad += n < opt_prefix && r <= 0;
    }
    printf("checked intact=%" PRIu64 " zero=%" PRIu64 " bad=%" PRIu64
           " prefix-missing=%" PRIu64 "\n", intact, zero, bad, prefix_bad);
    return bad || prefix_bad ? 1 : 0;
}

/* A line from stdin if one is there (non-blocking), else NULL. */
static char *read_command(void)
{
    static char buf[256];
    static size_t have;
    struct pollfd p = { .fd = 0, .events = POLLIN };
    char *nl;
    ssize_t r;

    if ((nl = memchr(buf, '\n', have)) == NULL && poll(&p, 1, 0) == 1) {
        r = read(0, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0) {
            /* stdin closed: as "stop" */
            memcpy(buf, "stop\n", 5);
            have = 5;
        } else {
            have += r;
        }
        nl = memchr(buf, '\n', have);
    }
    if (!nl) {
        if (have == sizeof(buf) - 1) {
            have = 0;   /* a line that long is no command */
        }
        return NULL;
    }
    *nl = '\0';
    {
        static char line[256];

        g_strlcpy(line, buf, sizeof(line));
        have -= nl + 1 - buf;
        memmove(buf, nl + 1, have);
        return line;
    }
}

static int run(uint64_t nonce)
{
    VmmSimConfig cfg = { .socket_path = opt_socket };
    g_autoptr(GError) err = NULL;
    const VmmSimConfig *c;
    GuestAlloc mem;
    uint64_t mmio_next;
    VirtioBlk blk = { 0 };
    BlkWriter w = { 0 };
    BlkVerify v;
    VmmSim *sim;
    char *cmd;
    int ret = 1;

    sim = vmm_sim_new(&cfg, &err);
    if (!sim) {
        goto fail;
    }
    printf("listening\n");
    fflush(stdout);
    if (!vmm_sim_accept(sim, TIMEOUT_MS, &err)) {
        goto fail;
    }
    if (!vmm_sim_wait_started(sim, TIMEOUT_MS)) {
        g_set_error(&err, VMM_SIM_ERROR, VMM_SIM_ERROR_NOT_STARTED,
                    "QEMU sent no START_VM");
        goto fail;
    }
    c = vmm_sim_config(sim);
    guest_alloc_init(&mem, sim, c->ram_base + c->ram_size / 2,
                     c->ram_size / 2);
    mmio_next = c->pci_mmio_base;
    if (!virtio_blk_init(&blk, sim, &mem, 0, &mmio_next,
                         c->msi_spi_base, true, QUEUE_SIZE, &err) ||
        !blk_writer_init(&w, &blk, &mem, 0, opt_blocks, 32, 256, nonce,
                         &err)) {
        goto fail;
    }
    printf("started\n");
    fflush(stdout);
    for (;;) {
        cmd = read_command();
        if (cmd && g_str_equal(cmd, "acked")) {
            printf("acked %" PRIu64 "\n", blk_writer_acked_prefix(&w));
            fflush(stdout);
        } else if (cmd && g_str_equal(cmd, "stop")) {
            break;
        }
        if (!blk_writer_step(&w, TIMEOUT_MS, &err)) {
            goto fail;
        }
        if (!blk_writer_in_flight(&w)) {
            vmm_sim_poll(sim, 10);      /* all written: wait for "stop" */
        } else if (opt_pace_us) {
            g_usleep(opt_pace_us);
        }
    }
    if (!blk_writer_drain(&w, TIMEOUT_MS, &err) ||
        !blk_writer_verify(&w, &blk, &v, &err)) {
        goto fail;
    }
    printf("verified written=%" PRIu64 " intact=%" PRIu64 " bad=%" PRIu64
           "\n", w.acked, v.durable_ok, v.durable_bad + v.unwritten_bad);
    fflush(stdout);
    ret = v.durable_bad || v.unwritten_bad || v.durable_ok != w.acked;
    /* the QEMU's owner ends it; an error from us would end it first */
    while (vmm_sim_poll(sim, 1000) != -EPIPE) {
        continue;
    }
    goto out;

fail:
    fprintf(stderr, "sel4-vmm-blk-writer: %s\n", err ? err->message : "?");
    ret = 1;
out:
    blk_writer_destroy(&w);
    virtio_blk_destroy(&blk);
    vmm_sim_free(sim);
    return ret;
}

int main(int argc, char **argv)
{
    uint64_t nonce;

    if (!cli_parse("sel4-vmm-blk-writer",
                   "- the simulated seL4 VMM, a guest writing", NULL, NULL,
                   entries, &argc, &argv)) {
        return CLI_EXIT_USAGE;
    }
    nonce = opt_nonce ? g_ascii_strtoull(opt_nonce, NULL, 0) : 1;
    if (opt_blocks <= 0 || opt_prefix < 0 || opt_prefix > opt_blocks ||
        opt_pace_us < 0 || (!opt_socket == !opt_check)) {
        return cli_usage_error("give --socket or --check; --blocks > 0, "
                               "0 <= --prefix <= --blocks");
    }
    return opt_check ? check_image(nonce) : run(nonce);
}
