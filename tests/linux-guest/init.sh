#!/bin/busybox sh
# /init of the sel4-vmm-proxy test guest (tests/linux-guest/make-image.sh).
# Linux's own virtio drivers, on devices served by our backend through the
# proxy. Parameters come from the kernel command line:
#   lg.mode=check|shell  checks then power off (default), or a shell
#   lg.ndev=N            virtio-pci functions expected (default 5)
#   lg.irq=msix|intx     the interrupt mode every function must use
#   lg.ip=A lg.peer=B    our address (/24) and the backend's tap peer
#   lg.token=T           in the host's 9p file share/hello.txt
#   lg.port=NAME         the virtserialport the host echoes
# Output: one line per check, "CHECK <name> ok <detail>" or
# "CHECK <name> FAIL <detail>", then "CHECKS DONE <failures>"; PCI, IRQ and
# DMESG lines describe what Linux found.
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo 1 >/proc/sys/kernel/printk 2>/dev/null

param() { # name default
    local kv
    for kv in $(cat /proc/cmdline); do
        case $kv in "lg.$1="*) echo "${kv#*=}"; return ;; esac
    done
    echo "$2"
}
MODE=$(param mode check)
NDEV=$(param ndev 5)
IRQ=$(param irq msix)
IP=$(param ip 10.77.0.3)
PEER=$(param peer 10.77.0.2)
TOKEN=$(param token none)
PORT=$(param port org.sel4.test.0)
FAILS=0

check() { # name ok|FAIL detail...
    local name=$1 res=$2
    shift 2
    [ "$res" = ok ] || FAILS=$((FAILS + 1))
    echo "CHECK $name $res $*"
}

for m in $(cat /modules/order); do
    insmod "/modules/$m" || echo "insmod $m failed"
done
# let the drivers' probes finish
sleep 1

# --- the functions Linux found (an lspci without lspci) ---
virtio_pci=0
for d in /sys/bus/pci/devices/*; do
    drv=-
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    msi=0
    [ -d "$d/msi_irqs" ] && msi=$(ls "$d/msi_irqs" | wc -l)
    echo "PCI $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device")" \
        "class $(cat "$d/class") irq $(cat "$d/irq") msi_irqs $msi driver $drv"
    [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$drv" = virtio-pci ] &&
        virtio_pci=$((virtio_pci + 1))
done
if [ "$virtio_pci" = "$NDEV" ]; then
    check pci ok "$virtio_pci virtio-pci functions"
else
    check pci FAIL "$virtio_pci virtio-pci functions, expected $NDEV"
fi

# MSI-X: every function has msi_irqs; INTx: none has, and its line fired
mode_ok=1
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1af4 ] || continue
    n=0
    [ -d "$d/msi_irqs" ] && n=$(ls "$d/msi_irqs" | wc -l)
    case $IRQ in
    msix) [ "$n" -gt 0 ] || mode_ok=0 ;;
    intx) [ "$n" = 0 ] || mode_ok=0 ;;
    esac
done
grep -iE 'virtio|v2m|MSI|pcie|GICv2' /proc/interrupts | sed 's/^/IRQ /'

# --- virtio-blk: a pattern past the file system, then ext2 on the rest ---
blk() {
    local disk=/dev/vda want got
    [ -b $disk ] || { check blk FAIL "no $disk"; return; }
    dd if=/dev/urandom of=/tmp/pat bs=65536 count=64 2>/dev/null
    want=$(sha256sum </tmp/pat | cut -d' ' -f1)
    # at 48 MiB: the file system below takes the first 32 MiB
    dd if=/tmp/pat of=$disk bs=65536 seek=768 conv=fsync 2>/dev/null
    sync
    echo 3 >/proc/sys/vm/drop_caches
    got=$(dd if=$disk bs=65536 skip=768 count=64 2>/dev/null | sha256sum | cut -d' ' -f1)
    echo "BLKSHA $want"
    if [ "$want" = "$got" ]; then
        check blk ok "4 MiB at 48 MiB read back equal, sha256 $want"
    else
        check blk FAIL "wrote sha256 $want, read back $got"
    fi
    if ! mke2fs -F $disk 32768 >/tmp/mkfs.log 2>&1; then
        check blk-fs FAIL "mke2fs: $(tail -n 1 /tmp/mkfs.log)"
        return
    fi
    mkdir -p /mnt/vda
    mount -t ext2 $disk /mnt/vda && echo "$TOKEN" >/mnt/vda/token &&
        umount /mnt/vda && echo 3 >/proc/sys/vm/drop_caches &&
        mount -t ext2 $disk /mnt/vda
    got=$(cat /mnt/vda/token 2>/dev/null)
    umount /mnt/vda 2>/dev/null
    if [ "$got" = "$TOKEN" ]; then
        check blk-fs ok "mke2fs, mount, write, remount, read back"
    else
        check blk-fs FAIL "read back '$got'"
    fi
}

# --- virtio-net: static address, ping the backend's tap in its namespace ---
net_up() { # -> IFC, the virtio_net interface, up with $IP
    local i
    IFC=
    for i in /sys/class/net/*; do
        [ "$(basename "$(readlink "$i/device/driver" 2>/dev/null)")" = virtio_net ] &&
            IFC=$(basename "$i")
    done
    [ -n "$IFC" ] && ip link set "$IFC" up && ip addr add "$IP/24" dev "$IFC"
}

net() {
    local ifc
    net_up || { check net FAIL "no virtio_net interface '$IFC' to configure"; return; }
    ifc=$IFC
    if ping -c 3 -W 5 "$PEER" >/tmp/ping.log 2>&1; then
        check net ok "$ifc $IP: $(grep -E 'packets|round-trip' /tmp/ping.log | tr '\n' ' ')"
    else
        check net FAIL "$ifc $IP: ping $PEER: $(tail -n 2 /tmp/ping.log | tr '\n' ' ')"
    fi
}

# --- virtio-console: a line to the host's echo and back ---
console() {
    local p dev= line
    for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name" 2>/dev/null)" = "$PORT" ] && dev=/dev/$(basename "$p")
    done
    [ -n "$dev" ] && [ -c "$dev" ] || { check console FAIL "no port $PORT"; return; }
    # bounded: a write blocks while the host end is not connected
    line=$(timeout 15 sh -c 'exec 3<>"$1"; echo "echo $2" >&3
                             read -r -t 10 l <&3; echo "$l"' - "$dev" "$TOKEN")
    if [ "$line" = "echo $TOKEN" ]; then
        check console ok "$dev ($PORT): a line to the host and back"
    else
        check console FAIL "$dev ($PORT): got '$line'"
    fi
}

# --- virtio-rng: /dev/hwrng from the virtio driver ---
rng() {
    local cur n z
    cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
    case $cur in virtio_rng*) ;; *) check rng FAIL "rng_current is '$cur'"; return ;; esac
    n=$(timeout 20 dd if=/dev/hwrng bs=64 count=4 2>/dev/null | tee /tmp/rng | wc -c)
    z=$(od -An -v -tx1 /tmp/rng | tr -d ' \n' | tr -d 0 | wc -c)
    if [ "$n" = 256 ] && [ "$z" -gt 0 ]; then
        check rng ok "$cur: 256 bytes from /dev/hwrng"
    else
        check rng FAIL "$cur: $n bytes (non-zero digits: $z)"
    fi
}

# --- 9p: read the host's file, leave one for the host ---
p9() {
    local got
    mkdir -p /mnt/9p
    mount -t 9p -o trans=virtio,version=9p2000.L share /mnt/9p ||
        { check 9p FAIL "mount -t 9p share"; return; }
    got=$(cat /mnt/9p/hello.txt 2>/dev/null)
    echo "from the guest: $TOKEN" >/mnt/9p/guest.txt
    sync
    umount /mnt/9p
    if [ "$got" = "$TOKEN" ]; then
        check 9p ok "read the host's hello.txt, wrote guest.txt"
    else
        check 9p FAIL "hello.txt reads '$got'"
    fi
}

if [ "$MODE" = shell ]; then
    net_up
    mkdir -p /mnt/9p
    mount -t 9p -o trans=virtio,version=9p2000.L share /mnt/9p
    echo "lg: a shell. /dev/vda; $IFC is $IP/24, the backend's tap $PEER;" \
         "the host's share on /mnt/9p; /dev/hwrng; the port $PORT is" \
         "/dev/$(grep -l "$PORT" /sys/class/virtio-ports/*/name | cut -d/ -f5)" \
         "(the host echoes it). poweroff -f to leave."
    setsid cttyhack sh
    poweroff -f
fi

blk
net
console
rng
p9
# after the traffic: the interrupts that carried it, MSI (GICv2m) lines
# for msix, GIC lines for intx; "count other" of the virtio lines
set -- $(grep -i virtio /proc/interrupts | awk -v want="$IRQ" '{
    n = 0
    for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
    if (($0 ~ / MSI /) == (want == "msix")) t += n; else other++
} END { print t + 0, other + 0 }')
if [ $mode_ok = 1 ] && [ "$1" -gt 0 ] && [ "$2" = 0 ]; then
    check irq ok "every virtio function uses $IRQ; $1 interrupts taken"
else
    check irq FAIL "mode $IRQ on every function: $mode_ok; $1 interrupts" \
        "of that kind, $2 lines of another"
fi
grep -iE 'virtio' /proc/interrupts | sed 's/^/IRQ /'
dmesg | grep -iE 'virtio|vd[a-z]|9p|v2m|pci 0000:00:0[1-9]' | sed 's/^/DMESG /'
echo "CHECKS DONE $FAILS"
sync
poweroff -f
