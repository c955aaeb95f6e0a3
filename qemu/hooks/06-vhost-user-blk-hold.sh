#!/usr/bin/env bash
# Hook: the vhost-user-blk export's notify hold
# (block/export/vhost-user-blk-hold.c.inc, overlay): guest notifies off
# while a virtqueue has requests in flight, as virtio's notify hold (05)
# does for QEMU's own devices.  Off unless the export has
# notify-suppress-us; off, the export is unchanged.
# qapi/block-export.json gets the option (BlockExportOptionsVhostUserBlk);
# block/export/vhost-user-blk-server.c includes the .c.inc after its own
# includes (VuBlkExport holds its type), keeps a VuBlkHolds in
# VuBlkExport, and calls it after the queue handler's loop, after each
# completion's notify, when the frontend stops a queue, before a drain
# detaches the export, and on create (the option) and delete.
# Tested: QEMU 10.2.2.
#
# Runs in the QEMU source tree; idempotent; every anchor is checked.
set -euo pipefail

HOOK=06-vhost-user-blk-hold.sh
. "$SEL4_REPO_ROOT/qemu/hooks/anchor.bash"

f=block/export/vhost-user-blk-server.c
q=qapi/block-export.json
[ -f block/export/vhost-user-blk-hold.c.inc ] || exit 0
grep -qF 'vhost-user-blk-hold.c.inc' "$f" && exit 0

# the option's description goes after num-queues' (the one such line)
at "$q" '' '#     Defaults to 1.' after \
'#
# @notify-suppress-us: While a virtqueue has requests in flight, keep
#     the guest'"'"'s notifies off (avail_event parked, or
#     VRING_USED_F_NO_NOTIFY) and look at the ring after completions
#     instead.  Notifies come back on when nothing is in flight, or
#     when nothing completed for this many microseconds.  0 (the
#     default): never off.  At most 1000000.
#     (since 10.2, seL4 builds)'
at "$q" '' "            '*num-queues': 'uint16'} }" instead \
"            '*num-queues': 'uint16',
            '*notify-suppress-us': 'uint32' } }"

at "$f" '' '    struct virtio_blk_config blkcfg;' after \
    '    VuBlkHolds holds;           /* vhost-user-blk-hold.c.inc */'
at "$f" '' '#include "virtio-blk-handler.h"' after \
    '#include "vhost-user-blk-hold.c.inc"'
at "$f" 'static void vu_blk_req_complete(VuBlkReq *req, size_t in_len)' \
    '    vu_queue_notify(vu_dev, req->vq);' after \
    '    vu_blk_hold_completed(&container_of(req->server, VuBlkExport,
                                        vu_server)->holds,
                          req->server, req->vq);'
# the first "    }" of the handler closes its loop of pops
at "$f" 'static void vu_blk_process_vq(VuDev *vu_dev, int idx)' '    }' after \
    '    vu_blk_hold_handled(&container_of(server, VuBlkExport,
                                      vu_server)->holds, server, vq);'
at "$f" 'static void vu_blk_queue_set_started(VuDev *vu_dev, int idx, bool started)' \
    '    vu_set_queue_handler(vu_dev, vq, started ? vu_blk_process_vq : NULL);' \
    after '    if (!started) {
        VuServer *server = container_of(vu_dev, VuServer, vu_dev);

        vu_blk_hold_stopped(&container_of(server, VuBlkExport,
                                          vu_server)->holds, server, vq);
    }'
at "$f" 'static void vu_blk_drained_begin(void *opaque)' \
    '    vhost_user_server_detach_aio_context(&vexp->vu_server);' before \
    '    vu_blk_hold_detach(&vexp->holds);'
at "$f" 'static int vu_blk_exp_create(BlockExport *exp, BlockExportOptions *opts,' \
    '    vexp->handler.blk = exp->blk;' before \
    '    if (!vu_blk_hold_init(&vexp->holds, &vexp->vu_server, vu_opts,
                          num_queues, errp)) {
        return -EINVAL;
    }'
at "$f" 'static int vu_blk_exp_create(BlockExport *exp, BlockExportOptions *opts,' \
    '        g_free(vexp->handler.serial);' after \
    '        vu_blk_hold_free(&vexp->holds);'
at "$f" 'static void vu_blk_exp_delete(BlockExport *exp)' \
    '    g_free(vexp->handler.serial);' after \
    '    vu_blk_hold_free(&vexp->holds);'
