/*
 * The simulated guest's virtio-console driver (virtio 1.x, section 5.3),
 * for QEMU's virtio-serial-pci with virtserialport/virtconsole ports.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * With VIRTIO_CONSOLE_F_MULTIPORT (QEMU offers it whenever max_ports > 1)
 * the queues are: 0/1 port 0 receive/transmit, 2/3 control
 * receive/transmit, then 2p + 2 / 2p + 3 for port p >= 1.  Ports are
 * announced on the control queue: after our DEVICE_READY the device sends
 * PORT_ADD per port; our PORT_READY makes it send CONSOLE_PORT, PORT_NAME
 * and PORT_OPEN (the host side, i.e. the chardev, is connected); our
 * PORT_OPEN tells it the guest has the port open, and only then does it
 * pass chardev input to the guest.  Data the guest sends while the host
 * side is closed is dropped by the device.
 *
 * We set up the queues of the ports that fit in VIRTIO_PCI_MAX_QUEUES
 * (ports 0..VIRTIO_CONSOLE_MAX_PORTS - 1); a port with a larger id is
 * refused with PORT_READY 0.  Without MULTIPORT there is only port 0,
 * always open, and no control queues.
 *
 * Receive buffers stay posted; one that the device filled is reposted
 * once its bytes have been read (so an unread port back-pressures the
 * chardev instead of growing memory).  Control messages are handled, and
 * answered, whenever the driver looks at its queues: inside every call
 * below that waits, and in virtio_console_poll().
 *
 * Threading: one thread (the VmmSim's).
 */
#ifndef VMM_SIM_VIRTIO_CONSOLE_H
#define VMM_SIM_VIRTIO_CONSOLE_H

#include <sys/types.h>

#include "virtio-pci.h"

#define VIRTIO_CONSOLE_F_SIZE           0
#define VIRTIO_CONSOLE_F_MULTIPORT      1
#define VIRTIO_CONSOLE_F_EMERG_WRITE    2

/* Ports whose queues fit below VIRTIO_PCI_MAX_QUEUES: 0/1, 4/5, 6/7. */
#define VIRTIO_CONSOLE_MAX_PORTS    ((VIRTIO_PCI_MAX_QUEUES - 2) / 2)
#define VIRTIO_CONSOLE_NAME_MAX     128
#define VIRTIO_CONSOLE_BUF          4096u   /* port rx/tx buffer size */
#define VIRTIO_CONSOLE_RX_BUFS      8u
#define VIRTIO_CONSOLE_TX_BUFS      8u
#define VIRTIO_CONSOLE_CTRL_BUF     256u    /* header + a port name */
#define VIRTIO_CONSOLE_CTRL_BUFS    16u

/* One guest buffer of a queue (its token). */
typedef struct VirtioConsoleBuf {
    uint64_t gpa;
    uint32_t len;               /* rx: bytes the device wrote */
    uint32_t off;               /* rx: bytes already read */
    bool busy;                  /* tx: in flight */
} VirtioConsoleBuf;

typedef struct VirtioConsolePort {
    unsigned id;
    bool added;                 /* PORT_ADD seen and not removed */
    bool readied;               /* we sent PORT_READY */
    bool console;               /* CONSOLE_PORT: a virtconsole */
    bool host_open;             /* PORT_OPEN from the device */
    bool guest_open;            /* we sent PORT_OPEN 1 */
    char name[VIRTIO_CONSOLE_NAME_MAX];    /* PORT_NAME, "" if none */
    Virtq rx, tx;
    VirtioConsoleBuf rxb[VIRTIO_CONSOLE_RX_BUFS];
    VirtioConsoleBuf txb[VIRTIO_CONSOLE_TX_BUFS];
    GQueue filled;              /* rx buffers with unread bytes, in order */
    uint64_t rx_bytes, tx_bytes;
} VirtioConsolePort;

typedef struct VirtioConsole {
    VirtioPci pci;
    bool multiport;
    uint32_t max_nr_ports;      /* device config (1 without MULTIPORT) */
    unsigned nr_ports;          /* ports with queues set up */
    Virtq ctrl_rx, ctrl_tx;
    VirtioConsoleBuf ctrl_rxb[VIRTIO_CONSOLE_CTRL_BUFS];
    VirtioConsoleBuf ctrl_txb[VIRTIO_CONSOLE_CTRL_BUFS];
    VirtioConsolePort port[VIRTIO_CONSOLE_MAX_PORTS];
    uint64_t ctrl_in, ctrl_out; /* control messages taken / sent */
    uint64_t ctrl_bad;          /* of those taken: malformed or unknown */
} VirtioConsole;

/*
 * Bring up registered device @index (a virtio-serial-pci or
 * virtio-console-pci): MULTIPORT and EVENT_IDX if offered, queues, receive
 * buffers, DRIVER_OK, then DEVICE_READY.  Ports arrive afterwards.
 */
bool virtio_console_init(VirtioConsole *c, VmmSim *sim, GuestAlloc *mem,
                         unsigned index, uint64_t *mmio_next,
                         unsigned spi_base, bool use_msix, GError **errp);
/* Forget the queues' host-side state (the device keeps running). */
void virtio_console_destroy(VirtioConsole *c);

/*
 * Handle what the device sent (control messages, received data, transmit
 * completions), waiting up to @timeout_ms for something if nothing is
 * there.  Returns how many buffers were taken, -1 with @errp set.
 */
int virtio_console_poll(VirtioConsole *c, int timeout_ms, GError **errp);

/*
 * Wait up to @timeout_ms for the port named @name (NULL: port 0 without
 * MULTIPORT) and open it (PORT_OPEN 1).  Returns its id, -1 with @errp.
 */
int virtio_console_open(VirtioConsole *c, const char *name, int timeout_ms,
                        GError **errp);
/* Close port @id (PORT_OPEN 0). */
bool virtio_console_close(VirtioConsole *c, unsigned id, GError **errp);
/* Wait up to @timeout_ms until the host side of port @id is connected. */
bool virtio_console_wait_host(VirtioConsole *c, unsigned id, int timeout_ms,
                              GError **errp);

/*
 * Queue all @len bytes on port @id (waiting up to @timeout_ms for
 * transmit buffers when they are all in flight).
 */
bool virtio_console_write(VirtioConsole *c, unsigned id, const void *buf,
                          size_t len, int timeout_ms, GError **errp);
/* Wait up to @timeout_ms until every write of port @id is completed. */
bool virtio_console_flush(VirtioConsole *c, unsigned id, int timeout_ms,
                          GError **errp);
/*
 * Up to @len received bytes of port @id, waiting up to @timeout_ms for
 * the first one.  Returns the count, 0 on timeout, -1 with @errp set.
 */
ssize_t virtio_console_read(VirtioConsole *c, unsigned id, void *buf,
                            size_t len, int timeout_ms, GError **errp);

#endif
