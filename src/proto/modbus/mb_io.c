/* Transport helpers: sockets, serial ports, TLS contexts. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "proto/modbus/mb_internal.h"

int mb_epoll_add(tbgw_mb_loop *l, int fd, mb_handler *h, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = h};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) ? TBGW_EIO : 0;
}

int mb_epoll_mod(tbgw_mb_loop *l, int fd, mb_handler *h, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = h};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) ? TBGW_EIO : 0;
}

void mb_epoll_del(tbgw_mb_loop *l, int fd) {
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void mb_hex(const uint8_t *p, size_t n, char *out, size_t outlen) {
    static const char d[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 < outlen; i++) {
        out[o++] = d[p[i] >> 4];
        out[o++] = d[p[i] & 15];
    }
    if (outlen) out[o < outlen ? o : outlen - 1] = 0;
}

static int resolve(const char *host, int port, int udp, int passive, struct addrinfo **res) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    return getaddrinfo(host && *host ? host : NULL, ps, &hints, res) ? TBGW_EIO : 0;
}

int mb_socket_open(const char *host, int port, int udp, int *in_progress) {
    struct addrinfo *res = NULL;
    *in_progress = 0;
    if (resolve(host, port, udp, 0, &res)) return TBGW_EIO;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (!udp) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            *in_progress = 1;
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : TBGW_EIO;
}

int mb_socket_listen(const char *host, int port, int udp) {
    struct addrinfo *res = NULL;
    if (resolve(host, port, udp, 1, &res)) return TBGW_EIO;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && (udp || listen(fd, 128) == 0)) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : TBGW_EIO;
}

static speed_t baud_const(int b) {
    static const struct {
        int b;
        speed_t s;
    } t[] = {{1200, B1200},       {2400, B2400},       {4800, B4800},       {9600, B9600},
             {19200, B19200},     {38400, B38400},     {57600, B57600},     {115200, B115200},
             {230400, B230400},   {460800, B460800},   {500000, B500000},   {921600, B921600},
             {300, B300},         {1000000, B1000000}, {600, B600},         {110, B110},
             {150, B150},         {200, B200},         {576000, B576000},   {1152000, B1152000},
             {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000},
             {3500000, B3500000}, {4000000, B4000000}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].b == b) return t[i].s;
    return 0;
}

int tbgw_mb_baud_supported(int baudrate) {
    return baud_const(baudrate) != 0;
}

int mb_serial_termios(const tbgw_mb_endpoint *ep, struct termios *t, char *errbuf, size_t errlen) {
    speed_t sp = baud_const(ep->baudrate);
    if (!sp) {
        snprintf(errbuf, errlen, "unsupported baudrate %d", ep->baudrate);
        return TBGW_EINVAL;
    }
    cfmakeraw(t);
    cfsetispeed(t, sp);
    cfsetospeed(t, sp);
    t->c_cflag |= CLOCAL | CREAD;
    t->c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    switch (ep->bytesize) {
    case 5:
        t->c_cflag |= CS5;
        break;
    case 6:
        t->c_cflag |= CS6;
        break;
    case 7:
        t->c_cflag |= CS7;
        break;
    default:
        t->c_cflag |= CS8;
        break;
    }
    if (ep->parity == 'E') t->c_cflag |= PARENB;
    if (ep->parity == 'O') t->c_cflag |= PARENB | PARODD;
    if (ep->parity == 'E' || ep->parity == 'O') t->c_iflag |= INPCK; /* drop characters with parity errors */
    if (ep->stopbits == 2) t->c_cflag |= CSTOPB;
    t->c_cc[VMIN] = 0;
    t->c_cc[VTIME] = 0;
    return 0;
}

int mb_serial_open(const tbgw_mb_endpoint *ep, char *errbuf, size_t errlen) {
    if (!baud_const(ep->baudrate)) {
        snprintf(errbuf, errlen, "unsupported baudrate %d", ep->baudrate);
        return TBGW_EINVAL;
    }
    int fd = open(ep->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errbuf, errlen, "open %s: %s", ep->path, strerror(errno));
        return TBGW_EIO;
    }
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        snprintf(errbuf, errlen, "%s is not a serial port: %s", ep->path, strerror(errno));
        close(fd);
        return TBGW_EIO;
    }
    mb_serial_termios(ep, &t, errbuf, errlen);
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
        snprintf(errbuf, errlen, "configure %s: %s", ep->path, strerror(errno));
        close(fd);
        return TBGW_EIO;
    }
    tcflush(fd, TCIOFLUSH);
    return fd;
}

static int pw_cb(char *buf, int size, int rw, void *ud) {
    (void)rw;
    const char *pw = ud;
    int n = (int)strlen(pw);
    if (n >= size) n = size - 1;
    memcpy(buf, pw, (size_t)n);
    return n;
}

#define HAS(s) ((s) && *(s)) /* an endpoint string that is set */

static SSL_CTX *tls_ctx(const tbgw_mb_endpoint *ep, int server, char *errbuf, size_t errlen) {
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        snprintf(errbuf, errlen, "TLS context: out of memory");
        return NULL;
    }
    if (HAS(ep->tls_password)) {
        SSL_CTX_set_default_passwd_cb(ctx, pw_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)ep->tls_password);
    }
    const char *what = NULL;
    if (HAS(ep->tls_ca) && SSL_CTX_load_verify_locations(ctx, ep->tls_ca, NULL) != 1) what = ep->tls_ca;
    if (!what && HAS(ep->tls_cert) && SSL_CTX_use_certificate_chain_file(ctx, ep->tls_cert) != 1)
        what = ep->tls_cert;
    if (!what && HAS(ep->tls_key) && SSL_CTX_use_PrivateKey_file(ctx, ep->tls_key, SSL_FILETYPE_PEM) != 1)
        what = ep->tls_key;
    if (what) {
        char e[160];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        snprintf(errbuf, errlen, "TLS file %s: %s", what, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (server && (!HAS(ep->tls_cert) || !HAS(ep->tls_key))) {
        snprintf(errbuf, errlen, "TLS server needs certfile and keyfile");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* a server with a CA asks for and verifies client certificates */
    int mode =
        ep->tls_verify ? (SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)) : SSL_VERIFY_NONE;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return ctx;
}

SSL_CTX *mb_tls_client_ctx(const tbgw_mb_endpoint *ep, char *errbuf, size_t errlen) {
    return tls_ctx(ep, 0, errbuf, errlen);
}

SSL_CTX *mb_tls_server_ctx(const tbgw_mb_endpoint *ep, char *errbuf, size_t errlen) {
    return tls_ctx(ep, 1, errbuf, errlen);
}
