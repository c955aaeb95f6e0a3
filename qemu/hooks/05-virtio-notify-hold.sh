#!/usr/bin/env bash
# Hook: virtio's notify hold (hw/virtio/virtio-notify-hold.c.inc, overlay):
# guest notifies off while an IOThread's virtqueue has requests in flight.
# Off until an accelerator calls virtio_notify_hold_configure() (the seL4
# accelerator does, with notify-suppress-us); off, virtio is unchanged.
# hw/virtio/virtio.c gets the header, a VirtQueueHold in struct VirtQueue,
# the .c.inc before virtio_queue_notify_vq(), and one call in each of:
# virtio_queue_notify_vq() (after the handler), virtio_notify(), the two
# poll callbacks, attach and detach of the host notifier.
# Tested: QEMU 10.2.2.
#
# Runs in the QEMU source tree; idempotent; every anchor is checked.
set -euo pipefail

HOOK=05-virtio-notify-hold.sh
. "$SEL4_REPO_ROOT/qemu/hooks/anchor.bash"

f=hw/virtio/virtio.c
[ -f hw/virtio/virtio-notify-hold.c.inc ] || exit 0
grep -qF 'virtio-notify-hold.c.inc' "$f" && exit 0

at "$f" '' '#include "hw/virtio/virtio.h"' after \
    '#include "hw/virtio/virtio-notify-hold.h"'
at "$f" 'struct VirtQueue' '    bool host_notifier_enabled;' after \
    '    VirtQueueHold hold;         /* virtio-notify-hold.c.inc */'
at "$f" '' 'static void virtio_queue_notify_vq(VirtQueue *vq)' before \
    '#include "virtio-notify-hold.c.inc"
'
at "$f" 'static void virtio_queue_notify_vq(VirtQueue *vq)' \
    '        vq->handle_output(vdev, vq);' after \
    '        virtio_queue_hold_handled(vq);'
at "$f" 'void virtio_notify(VirtIODevice *vdev, VirtQueue *vq)' '{' after \
    '    virtio_queue_hold_completed(vq);'
for fn in begin end; do
    at "$f" "static void virtio_queue_host_notifier_aio_poll_$fn(EventNotifier *n)" \
        '    VirtQueue *vq = container_of(n, VirtQueue, host_notifier);' after \
        '
    if (virtio_queue_hold_on(vq)) {
        return;                 /* notifies are the hold'"'"'s */
    }'
done
at "$f" 'void virtio_queue_aio_attach_host_notifier(VirtQueue *vq, AioContext *ctx)' \
    '    aio_set_event_notifier(ctx, &vq->host_notifier,' before \
    '    virtio_queue_hold_attach(vq, ctx);'
at "$f" 'void virtio_queue_aio_detach_host_notifier(VirtQueue *vq, AioContext *ctx)' \
    '    aio_set_event_notifier(ctx, &vq->host_notifier, NULL, NULL, NULL);' \
    after '    virtio_queue_hold_detach(vq);'
