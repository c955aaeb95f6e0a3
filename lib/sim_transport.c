/*
 * The `sim` transport handoff: one hello message with four descriptors
 * from the simulated VMM to the device side.  See sel4/sim_transport.h
 * for the layout and for every rule enforced here.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The device side trusts nothing it receives: the bytes, the number and
 * kind of descriptors, the sizes of the files behind them.  Every failure
 * path closes every descriptor received so far, so a hostile VMM cannot
 * make the device side leak or keep anything.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sel4/sim_transport.h"
#include "sel4/uservm.h"

/* Descriptors accepted in one receive before MSG_CTRUNC; extras closed. */
#define SIM_RECV_MAX_FDS    16

#define SIM_ERR_PREFIX      "sim transport: "

_Static_assert(SIM_PCI_PIO_SIZE == SEL4_USERVM_PIO_SIZE, "one PIO window");
_Static_assert(SIM_PAGE_SIZE == SEL4_USERVM_PAGE_SIZE, "one page size");

GQuark sim_transport_error_quark(void)
{
    return g_quark_from_static_string("sim-transport-error-quark");
}

static const char *const sim_fd_names[SIM_FD_COUNT] = {
    [SIM_FD_IOBUF] = "iobuf memfd",
    [SIM_FD_RAM] = "RAM memfd",
    [SIM_FD_DOORBELL_TO_DEVICE] = "VMM->device doorbell eventfd",
    [SIM_FD_DOORBELL_TO_VMM] = "device->VMM doorbell eventfd",
};

static void close_fd_array(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

void sim_transport_close_fds(int fds[SIM_FD_COUNT])
{
    close_fd_array(fds, SIM_FD_COUNT);
}

static bool sun_path_fill(struct sockaddr_un *sun, const char *path,
                          GError **errp)
{
    size_t len = strlen(path);

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (len == 0 || len >= sizeof(sun->sun_path)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "socket path '%s' is empty or longer than "
                    "%zu bytes", path, sizeof(sun->sun_path) - 1);
        return false;
    }
    memcpy(sun->sun_path, path, len);
    return true;
}

/* ---- the hello on the wire (little-endian) ---- */

static void hello_to_wire(SimHello *w, const SimHello *h)
{
    w->magic = GUINT32_TO_LE(h->magic);
    w->version = GUINT16_TO_LE(h->version);
    w->header_size = GUINT16_TO_LE(h->header_size);
    w->flags = GUINT32_TO_LE(h->flags);
    w->vmid = GUINT32_TO_LE(h->vmid);
    w->ram_base = GUINT64_TO_LE(h->ram_base);
    w->ram_size = GUINT64_TO_LE(h->ram_size);
    w->pci_mmio_base = GUINT64_TO_LE(h->pci_mmio_base);
    w->pci_mmio_size = GUINT64_TO_LE(h->pci_mmio_size);
    w->iobuf_region_size = GUINT64_TO_LE(h->iobuf_region_size);
    w->ram_region_size = GUINT64_TO_LE(h->ram_region_size);
}

static void hello_from_wire(SimHello *h, const SimHello *w)
{
    h->magic = GUINT32_FROM_LE(w->magic);
    h->version = GUINT16_FROM_LE(w->version);
    h->header_size = GUINT16_FROM_LE(w->header_size);
    h->flags = GUINT32_FROM_LE(w->flags);
    h->vmid = GUINT32_FROM_LE(w->vmid);
    h->ram_base = GUINT64_FROM_LE(w->ram_base);
    h->ram_size = GUINT64_FROM_LE(w->ram_size);
    h->pci_mmio_base = GUINT64_FROM_LE(w->pci_mmio_base);
    h->pci_mmio_size = GUINT64_FROM_LE(w->pci_mmio_size);
    h->iobuf_region_size = GUINT64_FROM_LE(w->iobuf_region_size);
    h->ram_region_size = GUINT64_FROM_LE(w->ram_region_size);
}

/* ---- driver side ---- */

void sim_hello_init(SimHello *hello, uint32_t vmid, uint64_t ram_base,
                    uint64_t ram_size, uint64_t pci_mmio_base,
                    uint64_t pci_mmio_size)
{
    memset(hello, 0, sizeof(*hello));
    hello->magic = SIM_HELLO_MAGIC;
    hello->version = SIM_HELLO_VERSION;
    hello->header_size = sizeof(SimHello);
    hello->flags = 0;
    hello->vmid = vmid;
    hello->ram_base = ram_base;
    hello->ram_size = ram_size;
    hello->pci_mmio_base = pci_mmio_base;
    hello->pci_mmio_size = pci_mmio_size;
    hello->iobuf_region_size = SIM_IOBUF_REGION_SIZE;
    hello->ram_region_size = ram_size;
}

static int sealed_memfd(const char *name, uint64_t size, GError **errp)
{
    int fd;

    if (size > (uint64_t)INT64_MAX) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "%s: size 0x%" PRIx64 " too large",
                    name, size);
        return -1;
    }
    fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "memfd_create(%s): %s", name,
                    g_strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int err = errno;

        close(fd);
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "sizing or sealing %s (0x%" PRIx64
                    " bytes): %s", name, size, g_strerror(err));
        return -1;
    }
    return fd;
}

int sim_transport_create_fds(const SimHello *hello, int fds[SIM_FD_COUNT],
                             GError **errp)
{
    return sim_transport_create_fds_with_ram(hello, -1, fds, errp);
}

int sim_transport_create_fds_with_ram(const SimHello *hello, int ram_fd,
                                      int fds[SIM_FD_COUNT], GError **errp)
{
    char name[SEL4_EVENT_BAR_NAME_SIZE];
    int len;

    for (unsigned i = 0; i < SIM_FD_COUNT; i++) {
        fds[i] = -1;
    }
    fds[SIM_FD_IOBUF] = sealed_memfd("sel4-sim-iobuf",
                                     hello->iobuf_region_size, errp);
    if (fds[SIM_FD_IOBUF] < 0) {
        goto fail;
    }
    if (ram_fd >= 0) {
        /* Lent RAM: a copy of the caller's fd, checked by validate later. */
        fds[SIM_FD_RAM] = fcntl(ram_fd, F_DUPFD_CLOEXEC, 3);
        if (fds[SIM_FD_RAM] < 0) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "duplicating the RAM fd %d: %s",
                        ram_fd, g_strerror(errno));
            goto fail;
        }
    } else {
        fds[SIM_FD_RAM] = sealed_memfd("sel4-sim-ram",
                                       hello->ram_region_size, errp);
        if (fds[SIM_FD_RAM] < 0) {
            goto fail;
        }
    }
    /*
     * Non-blocking from birth: the device side shares these open files
     * and must not change their flags, and its doorbell engine drains a
     * non-blocking fd with one read() where a blocking one costs a poll()
     * first.  Both sides only read after a poll says there is something.
     */
    for (unsigned i = SIM_FD_DOORBELL_TO_DEVICE; i < SIM_FD_COUNT; i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fds[i] < 0) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "eventfd (%s): %s", sim_fd_names[i],
                        g_strerror(errno));
            goto fail;
        }
    }

    /* The event bar's name, as the real device VM's region carries it. */
    if (hello->iobuf_region_size >= SEL4_EVENT_BAR_NAME + sizeof(name)) {
        memset(name, 0, sizeof(name));
        len = snprintf(name, sizeof(name), "guest-iobuf-%" PRIu32,
                       hello->vmid);
        g_assert(len > 0 && (size_t)len < sizeof(name));
        if (pwrite(fds[SIM_FD_IOBUF], name, sizeof(name),
                   SIM_IOBUF_REGION_EVENT_BAR + SEL4_EVENT_BAR_NAME)
            != (ssize_t)sizeof(name)) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "writing the event-bar name: %s",
                        g_strerror(errno));
            goto fail;
        }
    }
    return 0;

fail:
    sim_transport_close_fds(fds);
    return -1;
}

/* Whether @st at @path is refused as a socket path (@errp says why). */
static bool socket_path_refused(const char *path, const struct stat *st,
                                bool root_ok, GError **errp)
{
    if (S_ISLNK(st->st_mode)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "'%s' is a symbolic link: refused (give "
                    "the socket's own path)", path);
        return true;
    }
    if (st->st_uid != geteuid() && !(root_ok && st->st_uid == 0)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "'%s' belongs to uid %u, not to us (uid "
                    "%u)%s: refused", path, (unsigned)st->st_uid,
                    (unsigned)geteuid(), root_ok ? " or root" : "");
        return true;
    }
    return false;
}

bool sim_transport_check_socket(const char *path, GError **errp)
{
    struct stat st;

    return lstat(path, &st) < 0 ||
           !socket_path_refused(path, &st, true, errp);
}

int sim_transport_listen(const char *path, GError **errp)
{
    return sim_transport_listen_group(path, (gid_t)-1, errp);
}

int sim_transport_listen_group(const char *path, gid_t group, GError **errp)
{
    struct sockaddr_un sun, tmp_sun;
    struct stat st;
    const char *bound;
    char *tmp;
    int fd;

    if (!sun_path_fill(&sun, path, errp)) {
        return -1;
    }
    if (lstat(path, &st) == 0) {
        int probe;

        if (socket_path_refused(path, &st, false, errp)) {
            return -1;
        }
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "'%s' exists and is not a socket",
                        path);
            return -1;
        }
        /* A socket file: stale unless someone still listens on it. */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe >= 0) {
            int r = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
            int err = errno;

            close(probe);
            if (r == 0 || err == EAGAIN) {
                g_set_error(errp, SIM_TRANSPORT_ERROR,
                            SIM_TRANSPORT_ERROR_FAILED,
                            SIM_ERR_PREFIX "'%s' is in use by a live listener",
                            path);
                return -1;
            }
        }
        if (unlink(path) < 0 && errno != ENOENT) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "unlinking stale socket '%s': %s",
                        path, g_strerror(errno));
            return -1;
        }
    }

    /*
     * Bind a temporary name and rename it to @path once listening: a peer
     * that waits for @path to appear and connects at once must not find
     * a socket that refuses it (bound, not yet listening).
     */
    tmp = g_strdup_printf("%s.%d", path, (int)getpid());
    if (!sun_path_fill(&tmp_sun, tmp, NULL)) {
        g_free(tmp);
        tmp = NULL;             /* too long: bind @path itself */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "socket: %s", g_strerror(errno));
        g_free(tmp);
        return -1;
    }
    if (tmp && lstat(tmp, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(tmp);            /* left by a killed run with our pid */
    }
    /*
     * The mode is set on the bound name before anyone can connect: under
     * @tmp before the rename, or on @path before listen() (a connect to a
     * socket that does not listen yet is refused).
     */
    bound = tmp ? tmp : path;
    if (bind(fd, (struct sockaddr *)(tmp ? &tmp_sun : &sun),
             sizeof(sun)) < 0 ||
        (group != (gid_t)-1 && chown(bound, (uid_t)-1, group) < 0) ||
        chmod(bound, group != (gid_t)-1 ? 0660 : 0600) < 0 ||
        listen(fd, 1) < 0 || (tmp && rename(tmp, path) < 0)) {
        int err = errno;

        close(fd);
        if (tmp) {
            unlink(tmp);
        }
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "listening on '%s': %s", path,
                    g_strerror(err));
        g_free(tmp);
        return -1;
    }
    g_free(tmp);
    return fd;
}

int sim_transport_accept(int listen_fd, GError **errp)
{
    int fd;

    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "accept: %s", g_strerror(errno));
    }
    return fd;
}

/*
 * One message of the handshake: a data buffer and room for @max_fds
 * descriptors of control data (sendmsg and recvmsg alike).  Points into
 * itself: initialise in place, never copy.
 */
typedef struct SimMsg {
    struct msghdr msg;
    struct iovec iov;
    union {
        char buf[CMSG_SPACE(sizeof(int) * SIM_RECV_MAX_FDS)];
        struct cmsghdr align;
    } ctrl;
} SimMsg;

_Static_assert(SIM_FD_COUNT <= SIM_RECV_MAX_FDS, "the hello's fds fit");

static void sim_msg_init(SimMsg *m, void *data, size_t size,
                         unsigned max_fds)
{
    memset(&m->ctrl, 0, sizeof(m->ctrl));
    m->iov = (struct iovec) { .iov_base = data, .iov_len = size };
    m->msg = (struct msghdr) {
        .msg_iov = &m->iov,
        .msg_iovlen = 1,
        .msg_control = m->ctrl.buf,
        .msg_controllen = CMSG_SPACE(sizeof(int) * max_fds),
    };
}

int sim_transport_send_hello(int conn, const SimHello *hello,
                             const int fds[SIM_FD_COUNT], GError **errp)
{
    SimHello wire;
    SimMsg m;
    struct cmsghdr *cmsg;
    ssize_t n;

    hello_to_wire(&wire, hello);
    sim_msg_init(&m, &wire, sizeof(wire), SIM_FD_COUNT);
    cmsg = CMSG_FIRSTHDR(&m.msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * SIM_FD_COUNT);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * SIM_FD_COUNT);

    do {
        n = sendmsg(conn, &m.msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "sending the hello: %s", g_strerror(errno));
        return -1;
    }
    if ((size_t)n != sizeof(wire)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "sending the hello: short send, %zd of "
                    "%zu bytes", n, sizeof(wire));
        return -1;
    }
    return 0;
}

/* ---- validation ---- */

static bool validate_header(const SimHello *h, GError **errp)
{
    if (h->magic != SIM_HELLO_MAGIC) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: magic 0x%08" PRIx32
                    ", expected 0x%08x", h->magic, SIM_HELLO_MAGIC);
        return false;
    }
    if (h->version != SIM_HELLO_VERSION) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: version %u, only version %u "
                    "is supported", h->version, SIM_HELLO_VERSION);
        return false;
    }
    if (h->header_size < sizeof(SimHello) ||
        h->header_size > SIM_HELLO_MAX_SIZE) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: header_size %u, expected "
                    "%zu..%u", h->header_size, sizeof(SimHello),
                    SIM_HELLO_MAX_SIZE);
        return false;
    }
    if (h->flags != 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: flags 0x%" PRIx32
                    ", no flags are defined", h->flags);
        return false;
    }
    return true;
}

/* The uservm values obey sel4/uservm.h's rules: one check for both. */
static bool validate_uservm(const SimHello *h, GError **errp)
{
    g_autoptr(GError) local = NULL;
    Sel4Uservm u = {
        .id = h->vmid,
        .ram_base = h->ram_base,
        .ram_size = h->ram_size,
        .pci_mmio_base = h->pci_mmio_base,
        .pci_mmio_size = h->pci_mmio_size,
    };

    if (!sel4_uservm_validate(&u, &local)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: %s", local->message);
        return false;
    }
    return true;
}

static bool validate_layout(const SimHello *h, GError **errp)
{
    if (h->iobuf_region_size != SIM_IOBUF_REGION_SIZE) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: iobuf_region_size 0x%" PRIx64
                    ", expected 0x%x (event bar + iobuf)",
                    h->iobuf_region_size, SIM_IOBUF_REGION_SIZE);
        return false;
    }
    if (!validate_uservm(h, errp)) {
        return false;
    }
    if (h->ram_region_size < h->ram_size ||
        h->ram_region_size % SIM_PAGE_SIZE) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: ram_region_size 0x%" PRIx64
                    " must be a multiple of 0x%x and >= ram_size 0x%" PRIx64,
                    h->ram_region_size, SIM_PAGE_SIZE, h->ram_size);
        return false;
    }
#if SIZE_MAX < UINT64_MAX
    if (h->ram_region_size > SIZE_MAX) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: ram_region_size 0x%" PRIx64
                    " does not fit the address space", h->ram_region_size);
        return false;
    }
#endif
    return true;
}

static bool validate_memfd(int idx, int fd, uint64_t declared,
                           const char *field, struct stat *st, GError **errp)
{
    int fl, seals;

    if (fstat(fd, st) < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s): fstat: %s", idx,
                    sim_fd_names[idx], g_strerror(errno));
        return false;
    }
    if (!S_ISREG(st->st_mode)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s) is not a regular file or memfd "
                    "(mode 0%o)", idx, sim_fd_names[idx],
                    (unsigned)st->st_mode);
        return false;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) != O_RDWR) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s) is not open read-write "
                    "(flags 0%o)", idx, sim_fd_names[idx], (unsigned)fl);
        return false;
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s) is not sealed against "
                    "shrinking (F_SEAL_SHRINK; seals %d)", idx,
                    sim_fd_names[idx], seals);
        return false;
    }
    if (st->st_size < 0 || (uint64_t)st->st_size < declared) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s) is 0x%llx bytes, smaller than "
                    "%s 0x%" PRIx64, idx, sim_fd_names[idx],
                    (unsigned long long)st->st_size, field, declared);
        return false;
    }
    return true;
}

/* The "eventfd-id:" of /proc/self/fdinfo/<fd>, or NULL if not reported. */
static char *eventfd_id(int fd)
{
    g_autofree char *path = g_strdup_printf("/proc/self/fdinfo/%d", fd);
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return NULL;
    }
    p = strstr(text, "\neventfd-id:");
    if (!p) {
        return NULL;
    }
    p += strlen("\neventfd-id:");
    return g_strstrip(g_strndup(p, strcspn(p, "\n")));
}

static bool validate_eventfd(int idx, int fd, GError **errp)
{
    static const char want[] = "anon_inode:[eventfd]";
    char path[64], target[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s): cannot inspect %s: %s",
                    idx, sim_fd_names[idx], path, g_strerror(errno));
        return false;
    }
    target[n] = '\0';
    if (strcmp(target, want) != 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fd %d (%s) is not an eventfd (it is "
                    "'%s')", idx, sim_fd_names[idx], target);
        return false;
    }
    return true;
}

bool sim_transport_validate(const SimHello *hello,
                            const int fds[SIM_FD_COUNT], GError **errp)
{
    struct stat st_iobuf, st_ram;
    g_autofree char *id_to_dev = NULL;
    g_autofree char *id_to_vmm = NULL;

    if (!validate_header(hello, errp) || !validate_layout(hello, errp)) {
        return false;
    }
    if (!validate_memfd(SIM_FD_IOBUF, fds[SIM_FD_IOBUF],
                        hello->iobuf_region_size, "iobuf_region_size",
                        &st_iobuf, errp) ||
        !validate_memfd(SIM_FD_RAM, fds[SIM_FD_RAM], hello->ram_region_size,
                        "ram_region_size", &st_ram, errp)) {
        return false;
    }
    if (st_iobuf.st_dev == st_ram.st_dev && st_iobuf.st_ino == st_ram.st_ino) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fds 0 and 1 (iobuf and RAM memfds) are "
                    "the same file");
        return false;
    }
    if (!validate_eventfd(SIM_FD_DOORBELL_TO_DEVICE,
                          fds[SIM_FD_DOORBELL_TO_DEVICE], errp) ||
        !validate_eventfd(SIM_FD_DOORBELL_TO_VMM,
                          fds[SIM_FD_DOORBELL_TO_VMM], errp)) {
        return false;
    }
    /* All eventfds share one anon inode: compare their ids when we can. */
    id_to_dev = eventfd_id(fds[SIM_FD_DOORBELL_TO_DEVICE]);
    id_to_vmm = eventfd_id(fds[SIM_FD_DOORBELL_TO_VMM]);
    if (id_to_dev && id_to_vmm && strcmp(id_to_dev, id_to_vmm) == 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "fds 2 and 3 (the doorbells) are the same "
                    "eventfd (eventfd-id %s)", id_to_dev);
        return false;
    }
    return true;
}

/* ---- device side ---- */

/* Milliseconds left until @deadline (monotonic µs), -1 for "forever". */
static int ms_left(gint64 deadline)
{
    gint64 now;

    if (deadline < 0) {
        return -1;
    }
    now = g_get_monotonic_time();
    if (now >= deadline) {
        return 0;
    }
    return (int)MIN((deadline - now + 999) / 1000, G_MAXINT);
}

/*
 * Receive the hello: data bytes into @buf, descriptors into @rfds.
 * Returns the byte count (0: EOF) or -1 with errno (EAGAIN: nothing yet).
 */
static ssize_t recv_hello(int sock, void *buf, size_t size,
                          int rfds[SIM_RECV_MAX_FDS], unsigned *nfds,
                          bool *bad_cmsg, bool *ctrunc)
{
    SimMsg m;
    struct cmsghdr *cmsg;
    ssize_t n;

    sim_msg_init(&m, buf, size, SIM_RECV_MAX_FDS);
    do {
        n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -1;
    }

    /* Take every descriptor first, whatever else is wrong. */
    for (cmsg = CMSG_FIRSTHDR(&m.msg); cmsg;
         cmsg = CMSG_NXTHDR(&m.msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET &&
            cmsg->cmsg_type == SCM_RIGHTS &&
            cmsg->cmsg_len >= CMSG_LEN(0)) {
            size_t k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            const unsigned char *data = CMSG_DATA(cmsg);

            for (size_t i = 0; i < k; i++) {
                int fd;

                memcpy(&fd, data + i * sizeof(int), sizeof(int));
                if (*nfds < SIM_RECV_MAX_FDS) {
                    rfds[(*nfds)++] = fd;
                } else {
                    close(fd);      /* cannot happen: ctrl is bounded */
                    *ctrunc = true;
                }
            }
        } else {
            *bad_cmsg = true;
        }
    }
    if (m.msg.msg_flags & MSG_CTRUNC) {
        *ctrunc = true;
    }
    return n;
}

/*
 * Connect to the VMM's socket before @deadline (monotonic µs, -1: none).
 * A full backlog is retried until then; a missing or refusing listener
 * is SIM_TRANSPORT_ERROR_CONNECT at once.
 */
static int connect_vmm(const char *path, gint64 deadline, int timeout_ms,
                       GError **errp)
{
    struct sockaddr_un sun;
    int sock;

    if (!sun_path_fill(&sun, path, errp) ||
        !sim_transport_check_socket(path, errp)) {
        return -1;
    }
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sock < 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "socket: %s", g_strerror(errno));
        return -1;
    }
    for (;;) {
        if (connect(sock, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            return sock;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN && ms_left(deadline) != 0) {
            /* The listener's backlog is full: it may accept soon. */
            g_usleep(5000);
            continue;
        }
        if (errno == EAGAIN) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_TIMEOUT,
                        SIM_ERR_PREFIX "the VMM at '%s' did not accept the "
                        "connection within %d ms", path, timeout_ms);
        } else {
            g_set_error(errp, SIM_TRANSPORT_ERROR,
                        errno == ENOENT || errno == ECONNREFUSED ?
                        SIM_TRANSPORT_ERROR_CONNECT :
                        SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "cannot connect to the VMM at '%s': %s",
                        path, g_strerror(errno));
        }
        close(sock);
        return -1;
    }
}

/* What one receive of the hello brought. */
typedef struct SimHelloRecv {
    union {
        SimHello hello;
        unsigned char bytes[SIM_HELLO_MAX_SIZE + 1];
    } buf;
    ssize_t len;                /* bytes received; 0: EOF */
    int fds[SIM_RECV_MAX_FDS];
    unsigned nfds;
    bool bad_cmsg;              /* a control message other than SCM_RIGHTS */
    bool ctrunc;                /* control data truncated */
} SimHelloRecv;

/*
 * Wait for the hello until @deadline and receive it (its descriptors
 * are in @r even when false is returned).
 */
static bool wait_hello(int sock, const char *path, gint64 deadline,
                       int timeout_ms, SimHelloRecv *r, GError **errp)
{
    for (;;) {
        struct pollfd pfd = { .fd = sock, .events = POLLIN };
        int ret = poll(&pfd, 1, ms_left(deadline));

        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret < 0) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "waiting for the hello: poll: %s",
                        g_strerror(errno));
            return false;
        }
        if (ret == 0) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_TIMEOUT,
                        SIM_ERR_PREFIX "no hello from the VMM at '%s' within "
                        "%d ms", path, timeout_ms);
            return false;
        }
        r->len = recv_hello(sock, r->buf.bytes, sizeof(r->buf.bytes), r->fds,
                            &r->nfds, &r->bad_cmsg, &r->ctrunc);
        if (r->len >= 0) {
            return true;
        }
        if (errno != EAGAIN) {
            g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                        SIM_ERR_PREFIX "receiving the hello: %s",
                        g_strerror(errno));
            return false;
        }
    }
}

/* Check a received hello, its size and its descriptors, into @hello. */
static bool check_hello(const SimHelloRecv *r, const char *path,
                        SimHello *hello, GError **errp)
{
    ssize_t n = r->len;

    if (n == 0) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_CLOSED,
                    SIM_ERR_PREFIX "the VMM at '%s' closed the connection "
                    "before sending the hello", path);
        return false;
    }
    if ((size_t)n < sizeof(SimHello)) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: short message, %zd bytes, "
                    "expected at least %zu", n, sizeof(SimHello));
        return false;
    }
    hello_from_wire(hello, &r->buf.hello);
    if (!validate_header(hello, errp)) {
        return false;
    }
    if ((size_t)n != hello->header_size) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: message is %zd%s bytes, "
                    "header_size says %u", n,
                    (size_t)n > SIM_HELLO_MAX_SIZE ? " or more" : "",
                    hello->header_size);
        return false;
    }
    if (r->bad_cmsg) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: a control message other than "
                    "SCM_RIGHTS");
        return false;
    }
    if (r->ctrunc) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: control data truncated (more "
                    "than %d fds), expected %d fds", SIM_RECV_MAX_FDS,
                    SIM_FD_COUNT);
        return false;
    }
    if (r->nfds != SIM_FD_COUNT) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "bad hello: %u fds attached, expected %d",
                    r->nfds, SIM_FD_COUNT);
        return false;
    }
    return sim_transport_validate(hello, r->fds, errp);
}

int sim_transport_connect_timeout(const char *path, int timeout_ms,
                                  SimHello *hello, int fds[SIM_FD_COUNT],
                                  GError **errp)
{
    SimHelloRecv r = { .nfds = 0 };
    gint64 deadline = -1;
    SimHello h;
    int sock;

    for (unsigned i = 0; i < SIM_FD_COUNT; i++) {
        fds[i] = -1;
    }
    if (timeout_ms >= 0) {
        deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    }
    sock = connect_vmm(path, deadline, timeout_ms, errp);
    if (sock < 0) {
        return -1;
    }
    if (!wait_hello(sock, path, deadline, timeout_ms, &r, errp) ||
        !check_hello(&r, path, &h, errp)) {
        close_fd_array(r.fds, r.nfds);
        close(sock);
        return -1;
    }
    memcpy(fds, r.fds, sizeof(int) * SIM_FD_COUNT);
    *hello = h;
    return sock;
}

int sim_transport_connect(const char *path, SimHello *hello,
                          int fds[SIM_FD_COUNT], GError **errp)
{
    return sim_transport_connect_timeout(path, SIM_TRANSPORT_TIMEOUT_MS,
                                         hello, fds, errp);
}

/* ---- both sides ---- */

int sim_transport_map(const SimHello *hello, const int fds[SIM_FD_COUNT],
                      SimRegions *regions, GError **errp)
{
    void *io, *ram;

    memset(regions, 0, sizeof(*regions));
    if (hello->iobuf_region_size != SIM_IOBUF_REGION_SIZE ||
        hello->ram_region_size == 0 ||
        hello->ram_region_size > (uint64_t)SIZE_MAX) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_PROTOCOL,
                    SIM_ERR_PREFIX "cannot map: iobuf_region_size 0x%" PRIx64
                    ", ram_region_size 0x%" PRIx64, hello->iobuf_region_size,
                    hello->ram_region_size);
        return -1;
    }
    io = mmap(NULL, SIM_IOBUF_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
              fds[SIM_FD_IOBUF], 0);
    if (io == MAP_FAILED) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "mapping the iobuf region (0x%x bytes): %s",
                    SIM_IOBUF_REGION_SIZE, g_strerror(errno));
        return -1;
    }
    ram = mmap(NULL, hello->ram_region_size, PROT_READ | PROT_WRITE,
               MAP_SHARED, fds[SIM_FD_RAM], 0);
    if (ram == MAP_FAILED) {
        g_set_error(errp, SIM_TRANSPORT_ERROR, SIM_TRANSPORT_ERROR_FAILED,
                    SIM_ERR_PREFIX "mapping guest RAM (0x%" PRIx64
                    " bytes): %s", hello->ram_region_size, g_strerror(errno));
        munmap(io, SIM_IOBUF_REGION_SIZE);
        return -1;
    }
    regions->iobuf_region = io;
    regions->iobuf_region_size = SIM_IOBUF_REGION_SIZE;
    regions->event_bar = (uint8_t *)io + SIM_IOBUF_REGION_EVENT_BAR;
    regions->iobuf = (uint8_t *)io + SIM_IOBUF_REGION_IOBUF;
    regions->ram = ram;
    regions->ram_region_size = hello->ram_region_size;
    return 0;
}

void sim_transport_unmap(SimRegions *regions)
{
    if (regions->iobuf_region) {
        munmap(regions->iobuf_region, regions->iobuf_region_size);
    }
    if (regions->ram) {
        munmap(regions->ram, regions->ram_region_size);
    }
    memset(regions, 0, sizeof(*regions));
}

bool sim_transport_peer_gone(int conn)
{
    struct pollfd pfd = { .fd = conn, .events = POLLRDHUP };
    int r;

    do {
        r = poll(&pfd, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return false;       /* no answer (ENOMEM): not evidence of death */
    }
    return pfd.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL);
}
