/* CAN transports: SocketCAN raw sockets (classic and FD frames, kernel filters) and slcan serial
 * adapters (LAWICEL ASCII). Both are non-blocking descriptors the connector polls. */
#include <errno.h>
#include <fcntl.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "connectors/can/can_internal.h"

static void t_close(can_transport *t) {
    if (!t) return;
    if (t->fd >= 0) close(t->fd);
    free(t);
}

/* ---- SocketCAN ---- */

static int sc_read(can_transport *t, void (*on_frame)(void *, const can_msg *), void *ud) {
    for (;;) {
        struct canfd_frame f;
        ssize_t n = read(t->fd, &f, sizeof f);
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0) return -1;
        if (n != CAN_MTU && n != CANFD_MTU) continue;           /* not a frame */
        if (f.can_id & (CAN_ERR_FLAG | CAN_RTR_FLAG)) continue; /* error and remote frames: not data */
        can_msg m = {0};
        m.extended = (f.can_id & CAN_EFF_FLAG) != 0;
        m.id = f.can_id & (m.extended ? CAN_EFF_MASK : CAN_SFF_MASK);
        m.fd = n == CANFD_MTU;
        m.brs = m.fd && (f.flags & CANFD_BRS);
        m.len =
            f.len > (m.fd ? CANFD_MAX_DLEN : CAN_MAX_DLEN) ? (m.fd ? CANFD_MAX_DLEN : CAN_MAX_DLEN) : f.len;
        memcpy(m.data, f.data, m.len);
        on_frame(ud, &m);
    }
}

static int sc_write(can_transport *t, const can_msg *m, tbgw_err *err) {
    if ((!m->extended && m->id > CAN_SFF_MASK) || m->id > CAN_EFF_MASK)
        return tbgw_err_set(err, TBGW_EINVAL, "arbitration id 0x%X does not fit a%s id", m->id,
                            m->extended ? "n extended" : " standard (11-bit)");
    if (m->len > (m->fd ? CANFD_MAX_DLEN : CAN_MAX_DLEN))
        return tbgw_err_set(err, TBGW_EINVAL, "%u bytes do not fit a %s frame", m->len,
                            m->fd ? "CAN FD" : "CAN");
    if (m->fd && !t->fd_frames)
        return tbgw_err_set(err, TBGW_EINVAL, "the bus is not open for CAN FD frames");
    struct canfd_frame f;
    memset(&f, 0, sizeof f);
    f.can_id = m->id | (m->extended ? CAN_EFF_FLAG : 0);
    f.len = m->len;
    if (m->brs) f.flags |= CANFD_BRS;
    memcpy(f.data, m->data, m->len);
    size_t sz = m->fd ? CANFD_MTU : CAN_MTU;
    ssize_t w = write(t->fd, &f, sz);
    if (w != (ssize_t)sz) return tbgw_err_set(err, TBGW_EIO, "cannot send the frame: %s", strerror(errno));
    return 0;
}

can_transport *can_socketcan_wrap(int sock, int fd_frames) {
    can_transport *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fd = sock;
    t->fd_frames = fd_frames;
    t->read = sc_read;
    t->write = sc_write;
    t->close = t_close;
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    return t;
}

can_transport *can_socketcan_open(const char *ifname, int fd, const uint32_t *ids, const int *ext,
                                  size_t n_ids, tbgw_err *err) {
    int s = socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
    if (s < 0) {
        tbgw_err_set(err, TBGW_EIO, "SocketCAN is not available here (%s)", strerror(errno));
        return NULL;
    }
    int on = 1;
    if (fd && setsockopt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof on) != 0) {
        tbgw_err_set(err, TBGW_EIO, "%s: CAN FD frames not supported: %s", ifname, strerror(errno));
        close(s);
        return NULL;
    }
    if (n_ids) { /* only the configured ids reach the connector */
        struct can_filter *f = calloc(n_ids, sizeof *f);
        for (size_t i = 0; f && i < n_ids; i++) {
            f[i].can_id = ids[i] | (ext[i] ? CAN_EFF_FLAG : 0);
            f[i].can_mask = (ext[i] ? CAN_EFF_MASK : CAN_SFF_MASK) | CAN_EFF_FLAG | CAN_RTR_FLAG;
        }
        if (f) setsockopt(s, SOL_CAN_RAW, CAN_RAW_FILTER, f, (socklen_t)(n_ids * sizeof *f));
        free(f);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(s, SIOCGIFINDEX, &ifr) != 0) {
        tbgw_err_set(err, TBGW_EIO, "CAN interface %s: %s", ifname, strerror(errno));
        close(s);
        return NULL;
    }
    struct sockaddr_can addr = {.can_family = AF_CAN, .can_ifindex = ifr.ifr_ifindex};
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        tbgw_err_set(err, TBGW_EIO, "CAN interface %s: %s", ifname, strerror(errno));
        close(s);
        return NULL;
    }
    return can_socketcan_wrap(s, fd);
}

/* ---- slcan ---- */

static int sl_read(can_transport *t, void (*on_frame)(void *, const can_msg *), void *ud) {
    for (;;) {
        char tmp[256];
        ssize_t n = read(t->fd, tmp, sizeof tmp);
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0) return 0; /* VMIN = 0: nothing more now */
        for (ssize_t i = 0; i < n; i++) {
            char c = tmp[i];
            if (c == '\r' || c == '\n' || c == 7) { /* a line ends (BEL: the adapter refused a command) */
                can_msg m;
                if (t->blen && can_slcan_parse(t->buf, t->blen, &m) == 0) on_frame(ud, &m);
                t->blen = 0;
            } else if (t->blen < sizeof t->buf) {
                t->buf[t->blen++] = c;
            } else {
                t->blen = 0; /* an overlong line is garbage */
            }
        }
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(1000);
            continue;
        }
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sl_write(can_transport *t, const can_msg *m, tbgw_err *err) {
    if (m->fd || m->len > 8)
        return tbgw_err_set(err, TBGW_EINVAL, "slcan adapters carry classic CAN frames only");
    if ((!m->extended && m->id > 0x7FF) || m->id > 0x1FFFFFFF)
        return tbgw_err_set(err, TBGW_EINVAL, "arbitration id 0x%X does not fit a%s id", m->id,
                            m->extended ? "n extended" : " standard (11-bit)");
    char line[40];
    size_t n = can_slcan_format(m, line, sizeof line);
    if (!n || write_all(t->fd, line, n) != 0)
        return tbgw_err_set(err, TBGW_EIO, "cannot write to the adapter: %s", strerror(errno));
    return 0;
}

can_transport *can_slcan_wrap(int fd) {
    can_transport *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fd = fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    t->read = sl_read;
    t->write = sl_write;
    t->close = t_close;
    return t;
}

can_transport *can_slcan_open(const char *port, long bitrate, tbgw_err *err) {
    int fd = open(port, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        tbgw_err_set(err, TBGW_EIO, "slcan adapter %s: %s", port, strerror(errno));
        return NULL;
    }
    struct termios tio;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetspeed(&tio, B115200);
        tio.c_cflag |= CLOCAL | CREAD;
        tio.c_cc[VMIN] = 0;
        tio.c_cc[VTIME] = 0;
        tcsetattr(fd, TCSANOW, &tio);
    }
    char setup[32];
    int sp = can_slcan_speed(bitrate > 0 ? bitrate : 500000);
    int n = snprintf(setup, sizeof setup, "C\rS%d\rO\r", sp < 0 ? 6 : sp);
    if (write_all(fd, setup, (size_t)n) != 0) {
        tbgw_err_set(err, TBGW_EIO, "slcan adapter %s: %s", port, strerror(errno));
        close(fd);
        return NULL;
    }
    return can_slcan_wrap(fd);
}
