#!/usr/bin/env bash
# install.sh [--root DIR] [--qemu PATH]
#
# Installs the qemu-virtio units and their start script under DIR
# (default /):
#   DIR/etc/systemd/system/qemu-virtio.service, qemu-virtio@.service
#   DIR/usr/local/libexec/qemu-virtio-start
#   DIR/etc/qemu-virtio/example.conf.sample
#   DIR/etc/udev/rules.d/70-qemu-virtio-uio.rules (the UIO functions
#   for group qemu-virtio)
# and with --qemu, that binary as DIR/usr/local/bin/qemu-system-aarch64
# (the start script's default).  On / it also creates the system user
# and group qemu-virtio that the units run as.  Then: systemctl
# daemon-reload, udevadm trigger -s uio, write /etc/qemu-virtio/NAME.conf,
# systemctl enable --now qemu-virtio@NAME.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=/
qemu=
while [ $# -gt 0 ]; do
    case $1 in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --qemu) qemu=${2:?--qemu needs a path}; shift 2 ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
if [ -n "$qemu" ] && [ ! -x "$qemu" ]; then
    echo "install.sh: --qemu $qemu is not an executable" >&2
    exit 2
fi
install -d "$root/etc/systemd/system" "$root/usr/local/libexec" \
    "$root/etc/qemu-virtio" "$root/etc/udev/rules.d"
install -m 0644 "$here/qemu-virtio.service" "$here/qemu-virtio@.service" \
    "$root/etc/systemd/system/"
install -m 0755 "$here/qemu-virtio-start" "$root/usr/local/libexec/"
install -m 0644 "$here/example.conf" "$root/etc/qemu-virtio/example.conf.sample"
install -m 0644 "$here/70-qemu-virtio-uio.rules" "$root/etc/udev/rules.d/"
if [ "$(cd "$root" && pwd)" = / ] && ! getent passwd qemu-virtio >/dev/null; then
    useradd --system --user-group --no-create-home \
        --home-dir /var/lib/qemu-virtio --shell /usr/sbin/nologin qemu-virtio
fi
if [ -n "$qemu" ]; then
    install -D -m 0755 "$qemu" "$root/usr/local/bin/qemu-system-aarch64"
fi
echo "installed under $root"
