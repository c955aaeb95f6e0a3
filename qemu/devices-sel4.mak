# Our QEMU device set (aarch64-softmmu). build.sh installs this file as
# configs/devices/aarch64-softmmu/sel4.mak and configures with
# --without-default-devices --with-devices-aarch64=sel4, so only what is
# listed here (plus what these entries `select`) is built.
#
# CONFIG_SEL4_VIRT (below) is our machine; its Kconfig entry (declared by
# qemu/hooks/10-sel4-wiring.sh) selects the PCIe host and devices it needs.

# TCG `virt` guest machine (guest-side proxy tests, iotests).
CONFIG_ARM_VIRT=y
# Its seL4 VMM stand-in (hw/sel4/sel4-vmm-proxy.c; Kconfig symbol declared by
# qemu/hooks/10-sel4-wiring.sh): a real guest on `virt`, its devices served
# by a virt-sel4 QEMU. Run it with -machine virt,gic-version=2 (GICv2m).
CONFIG_SEL4_VMM_PROXY=y

# PCIe host bridge (GPEX) used by both virt and our machine.
CONFIG_PCI_EXPRESS_GENERIC_BRIDGE=y

# The guest's devices.
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_9P=y
# vhost-user-blk-pci: the block data path in qemu-storage-daemon (or SPDK),
# guest RAM shared with it through the transport's fd (vhost-user is on by
# default in configure; the daemon's export is CONFIG_VHOST_USER_BLK_SERVER).
CONFIG_VHOST_USER_BLK=y

# QEMU's iotests (./run iotests) on the `virt` machine: many quick-group
# tests attach their disk as scsi-hd on virtio-scsi-pci (with iothreads).
CONFIG_VIRTIO_SCSI=y

# QEMU 10.2.2 with --without-default-devices: ARM_VIRT selects ACPI_CXL but
# hw/acpi/cxl.c then needs cxl_fmws_get_all_sorted() from hw/cxl/, which is
# only built with CXL (normally `default y`), and CXL in turn needs the
# pxb, the CXL type-3 memory device and the PCIe root port. Without these the
# link of qemu-system-aarch64 fails with
#   undefined reference to `cxl_fmws_get_all_sorted'
CONFIG_PXB=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
CONFIG_PCIE_PORT=y

# Our machine (hw/arm/virt-sel4.c; Kconfig symbol declared by
# qemu/hooks/10-sel4-wiring.sh). Needs the sel4 accelerator.
CONFIG_SEL4_VIRT=y
