/* The event loop and the client side of the Modbus stack (see mb_loop.h). */
#include <errno.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/modbus/mb_internal.h"
#include "util/time.h"

typedef struct mb_item {
    struct mb_item *next;
    uint8_t unit;
    tbgw_mb_req req;
    tbgw_mb_done_fn cb;
    void *ud;
} mb_item;

enum { ST_DOWN = 0, ST_CONNECTING, ST_HANDSHAKE, ST_READY };

struct tbgw_mb_conn {
    mb_handler h;
    tbgw_mb_loop *loop;
    tbgw_mb_endpoint ep; /* a copy; its strings are borrowed (see tbgw_mb_endpoint) */
    char *name;
    int fd, state;
    SSL_CTX *ctx;
    SSL *ssl;
    mb_item *head, *tail;
    size_t n_queued;
    mb_item *inflight;
    uint16_t tid;
    int64_t deadline, send_at;
    uint8_t *tx; /* the frame being sent: the loop's tx_scratch, or tx_pend once a write was partial */
    size_t tx_len, tx_off, echo_skip;
    uint8_t *tx_pend;
    uint8_t *rx;   /* received bytes: the loop's rx_scratch while reading, else rx_pend (or NULL) */
    size_t rx_cap; /* the longest answer of the framing (ASCII: two) */
    size_t rx_len;
    uint8_t *rx_pend; /* the rx_len bytes of a frame not complete yet */
    uint32_t mask;
    int64_t last_err_log;
    uint64_t suppressed;
};

/* Frees what a connection kept of a half-sent request frame. */
static void tx_release(tbgw_mb_conn *c) {
    free(c->tx_pend);
    c->tx_pend = NULL;
    c->tx = NULL;
    c->tx_len = c->tx_off = 0;
}

static void conn_on_io(mb_handler *h, uint32_t ev);

int tbgw_mb_char_bits(const tbgw_mb_endpoint *ep) {
    int data = ep->bytesize >= 5 && ep->bytesize <= 8 ? ep->bytesize : 8;
    int parity = ep->parity == 'E' || ep->parity == 'O' ? 1 : 0;
    int stop = ep->stopbits == 2 ? 2 : 1;
    return 1 + data + parity + stop;
}

int64_t tbgw_mb_t35_us(const tbgw_mb_endpoint *ep) {
    if (ep->baudrate <= 0) return 0;
    if (ep->baudrate > 19200) return 1750;
    /* 3.5 characters of char_bits bits: 3.5 * bits * 1e6 / baud, rounded up */
    int64_t num = (int64_t)7 * tbgw_mb_char_bits(ep) * 1000000;
    int64_t den = (int64_t)2 * ep->baudrate;
    return (num + den - 1) / den;
}

tbgw_mb_loop *tbgw_mb_loop_new(tbgw_logger *log) {
    tbgw_mb_loop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->log = log ? log : tbgw_logger_get("modbus");
    return l;
}

static void watched_io(mb_handler *h, uint32_t events) {
    (void)h;
    (void)events; /* readiness only ends the wait; the owner of the descriptor services it */
}

static mb_handler watched_handler = {watched_io};

int tbgw_mb_loop_watch(tbgw_mb_loop *l, int fd) {
    return mb_epoll_add(l, fd, &watched_handler, EPOLLIN);
}

static void conn_close(tbgw_mb_conn *c) {
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        mb_epoll_del(c->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->state = ST_DOWN;
    c->mask = 0;
    c->rx_len = c->echo_skip = 0;
    free(c->rx_pend);
    c->rx_pend = NULL;
    if (c->rx != c->loop->rx_scratch) c->rx = NULL;
    tx_release(c);
}

void tbgw_mb_loop_free(tbgw_mb_loop *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n_conns; i++) {
        tbgw_mb_conn *c = l->conns[i];
        conn_close(c);
        free(c->inflight);
        for (mb_item *it = c->head, *nx; it; it = nx) {
            nx = it->next;
            free(it);
        }
        if (c->ctx) SSL_CTX_free(c->ctx);
        free(c->name);
        free(c);
    }
    for (size_t i = 0; i < l->n_servers; i++) mb_server_free(l->servers[i]);
    free(l->conns);
    free(l->servers);
    close(l->epfd);
    free(l);
}

const tbgw_mb_counters *tbgw_mb_loop_counters(const tbgw_mb_loop *l) {
    return &l->ctr;
}

tbgw_mb_conn *tbgw_mb_conn_new(tbgw_mb_loop *l, const tbgw_mb_endpoint *ep) {
    if (l->n_conns == l->cap_conns) {
        size_t nc = l->cap_conns ? l->cap_conns * 2 : 16;
        tbgw_mb_conn **p = realloc(l->conns, nc * sizeof *p);
        if (!p) return NULL;
        l->conns = p;
        l->cap_conns = nc;
    }
    tbgw_mb_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    /* no buffers of its own (see tbgw_mb_loop.rx_scratch); reads are limited to the framing's frame */
    c->rx_cap = ep->framing == TBGW_MB_FRAMING_ASCII ? sizeof l->rx_scratch : tbgw_mb_frame_max(ep->framing);
    c->h.on_io = conn_on_io;
    c->loop = l;
    c->ep = *ep;
    if (c->ep.timeout_ms <= 0) c->ep.timeout_ms = 3000;
    if (ep->transport == TBGW_MB_SERIAL && ep->baudrate > 0) {
        /* a serial line needs 3.5 character times of silence between frames (RTU) */
        int64_t t35 = (tbgw_mb_t35_us(ep) + 999) / 1000;
        if (c->ep.delay_between_ms < t35) c->ep.delay_between_ms = t35;
    }
    c->fd = -1;
    static const char *tn[] = {"tcp", "udp", "tls", "serial", "local"};
    char name[300];
    if (ep->transport == TBGW_MB_SERIAL)
        snprintf(name, sizeof name, "serial:%s", ep->path ? ep->path : "");
    else
        snprintf(name, sizeof name, "%s:%s:%d", tn[ep->transport], tbgw_mb_ep_host(ep), ep->port);
    if (!(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    l->conns[l->n_conns++] = c;
    return c;
}

const tbgw_mb_endpoint *tbgw_mb_conn_endpoint(const tbgw_mb_conn *c) {
    return &c->ep;
}

size_t tbgw_mb_loop_conn_count(const tbgw_mb_loop *l) {
    return l->n_conns;
}

tbgw_mb_conn *tbgw_mb_loop_conn_at(const tbgw_mb_loop *l, size_t i) {
    return i < l->n_conns ? l->conns[i] : NULL;
}

const char *tbgw_mb_conn_name(const tbgw_mb_conn *c) {
    return c->name;
}

int tbgw_mb_conn_is_up(const tbgw_mb_conn *c) {
    return c->state == ST_READY;
}

size_t tbgw_mb_conn_pending(const tbgw_mb_conn *c) {
    return c->n_queued + (c->inflight ? 1 : 0);
}

int tbgw_mb_conn_submit(tbgw_mb_conn *c, uint8_t unit, const tbgw_mb_req *req, int urgent, tbgw_mb_done_fn cb,
                        void *ud) {
    uint8_t tmp[TBGW_MB_MAX_PDU];
    if (tbgw_mb_pdu_encode_req(req, tmp, sizeof tmp) < 0) return TBGW_EINVAL;
    mb_item *it = malloc(sizeof *it);
    if (!it) return TBGW_ENOMEM;
    it->next = NULL;
    it->unit = unit;
    it->req = *req;
    it->cb = cb;
    it->ud = ud;
    if (urgent || !c->head) {
        it->next = c->head;
        c->head = it;
        if (!c->tail) c->tail = it;
    } else {
        c->tail->next = it;
        c->tail = it;
    }
    c->n_queued++;
    return 0;
}

size_t tbgw_mb_conn_cancel(tbgw_mb_conn *c, void *ud) {
    size_t n = 0;
    mb_item **pp = &c->head, *last = NULL;
    while (*pp) {
        mb_item *it = *pp;
        if (it->ud == ud) {
            *pp = it->next;
            free(it);
            n++;
        } else {
            last = it;
            pp = &it->next;
        }
    }
    c->tail = last;
    c->n_queued -= n;
    return n;
}

static void log_err(tbgw_mb_conn *c, const char *what) {
    int64_t now = tbgw_mono_ms();
    if (c->last_err_log && now - c->last_err_log < 30000) {
        c->suppressed++;
        return;
    }
    if (c->suppressed)
        TBGW_WARNF(c->loop->log, "%s: %s (%llu similar errors suppressed)", c->name, what,
                   (unsigned long long)c->suppressed);
    else
        TBGW_WARNF(c->loop->log, "%s: %s", c->name, what);
    c->last_err_log = now;
    c->suppressed = 0;
}

/* Closes the transport and fails the request in flight and every queued one. */
static void conn_fail(tbgw_mb_conn *c, const char *why) {
    log_err(c, why);
    c->loop->ctr.io_errors++;
    conn_close(c);
    mb_item *list = c->head, *infl = c->inflight;
    c->head = c->tail = NULL;
    c->n_queued = 0;
    c->inflight = NULL;
    if (infl) {
        infl->next = list;
        list = infl;
    }
    while (list) {
        mb_item *nx = list->next;
        list->cb(list->ud, TBGW_EIO, NULL);
        free(list);
        list = nx;
    }
}

static void set_mask(tbgw_mb_conn *c, uint32_t m) {
    if (c->fd < 0 || m == c->mask) return;
    if (mb_epoll_mod(c->loop, c->fd, &c->h, m) == 0) c->mask = m;
}

static void complete(tbgw_mb_conn *c, int status, const tbgw_mb_rsp *rsp) {
    mb_item *it = c->inflight;
    c->inflight = NULL;
    tx_release(c);
    c->send_at = tbgw_mono_ms() + c->ep.delay_between_ms;
    if (status == 0) c->loop->ctr.responses++;
    if (status == 0 && rsp && rsp->exception) c->loop->ctr.exceptions++;
    if (status == TBGW_ETIMEDOUT) c->loop->ctr.timeouts++;
    if (status == TBGW_EPROTO) c->loop->ctr.bad_frames++;
    if (status == TBGW_MB_EEMPTY) c->loop->ctr.empty++;
    if (it) {
        it->cb(it->ud, status, rsp);
        free(it);
    }
}

static int do_write(tbgw_mb_conn *c) {
    while (c->tx_off < c->tx_len) {
        ssize_t n;
        size_t left = c->tx_len - c->tx_off;
        if (c->ssl) {
            n = SSL_write(c->ssl, c->tx + c->tx_off, (int)left);
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, (int)n);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
                return TBGW_EIO;
            }
        } else if (c->ep.transport == TBGW_MB_SERIAL) {
            n = write(c->fd, c->tx + c->tx_off, left);
        } else {
            n = send(c->fd, c->tx + c->tx_off, left, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            return TBGW_EIO;
        }
        c->tx_off += (size_t)n;
        c->loop->ctr.bytes_tx += (uint64_t)n;
    }
    if (c->tx_off >= c->tx_len) {
        tx_release(c);
    } else if (c->tx != c->tx_pend) { /* the rest waits for EPOLLOUT: keep it, the scratch is shared */
        size_t left = c->tx_len - c->tx_off;
        uint8_t *p = malloc(left);
        if (!p) return TBGW_ENOMEM;
        memcpy(p, c->tx + c->tx_off, left);
        c->tx = c->tx_pend = p;
        c->tx_len = left;
        c->tx_off = 0;
    }
    set_mask(c, EPOLLIN | (c->tx_off < c->tx_len ? EPOLLOUT : 0));
    return 0;
}

static void send_next(tbgw_mb_conn *c) {
    mb_item *it = c->head;
    c->head = it->next;
    if (!c->head) c->tail = NULL;
    c->n_queued--;
    it->next = NULL;
    c->inflight = it;
    uint8_t pdu[TBGW_MB_MAX_PDU];
    int plen = tbgw_mb_pdu_encode_req(&it->req, pdu, sizeof pdu);
    if (c->ep.transport == TBGW_MB_LOCAL) {
        uint8_t out[TBGW_MB_MAX_PDU];
        int wrote;
        size_t n =
            tbgw_mb_store_execute(c->ep.local_store, pdu, plen > 0 ? (size_t)plen : 0, out, &wrote, NULL);
        tbgw_mb_rsp rsp;
        c->loop->ctr.requests++;
        int st = tbgw_mb_pdu_parse_rsp(&it->req, out, n, &rsp);
        complete(c, st, st == 0 || st == TBGW_MB_EEMPTY ? &rsp : NULL);
        return;
    }
    c->tid++;
    tx_release(c);
    c->tx = c->loop->tx_scratch;
    int flen = plen > 0 ? tbgw_mb_frame_encode(c->ep.framing, c->tid, it->unit, pdu, (size_t)plen, c->tx,
                                               sizeof c->loop->tx_scratch)
                        : plen;
    if (flen < 0) {
        complete(c, TBGW_EPROTO, NULL);
        return;
    }
    if (c->ep.framing != TBGW_MB_FRAMING_SOCKET) c->rx_len = 0; /* stale bytes of an earlier answer */
    c->tx_len = (size_t)flen;
    c->tx_off = 0;
    c->echo_skip = c->ep.handle_local_echo ? c->tx_len : 0;
    c->deadline = tbgw_mono_ms() + c->ep.timeout_ms;
    c->loop->ctr.requests++;
    if (c->loop->log->level <= TBGW_TRACE) {
        char hx[2 * TBGW_MB_MAX_FRAME + 1];
        mb_hex(c->tx, c->tx_len, hx, sizeof hx);
        TBGW_TRACEF(c->loop->log, "%s > %s", c->name, hx);
    }
    if (do_write(c) < 0) conn_fail(c, "write failed");
}

static void on_ready(tbgw_mb_conn *c) {
    c->state = ST_READY;
    c->last_err_log = 0;
    c->send_at = 0;
    set_mask(c, EPOLLIN);
    TBGW_DEBUGF(c->loop->log, "%s: connected", c->name);
}

static void tls_step(tbgw_mb_conn *c) {
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        on_ready(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        set_mask(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_mask(c, EPOLLIN | EPOLLOUT);
    else {
        char msg[200], es[160];
        ERR_error_string_n(ERR_get_error(), es, sizeof es);
        snprintf(msg, sizeof msg, "TLS handshake failed: %s", es);
        conn_fail(c, msg);
    }
}

static void on_connected(tbgw_mb_conn *c) {
    if (c->ep.transport != TBGW_MB_TLS) {
        on_ready(c);
        return;
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(c, "TLS: out of memory");
        return;
    }
    struct in6_addr ip6;
    struct in_addr ip4;
    int is_ip = inet_pton(AF_INET, tbgw_mb_ep_host(&c->ep), &ip4) == 1 ||
                inet_pton(AF_INET6, tbgw_mb_ep_host(&c->ep), &ip6) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(c->ssl, tbgw_mb_ep_host(&c->ep));
    if (c->ep.tls_verify) { /* the certificate must name the host (DNS name or IP address) */
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, tbgw_mb_ep_host(&c->ep));
        else
            X509_VERIFY_PARAM_set1_host(vp, tbgw_mb_ep_host(&c->ep), 0);
    }
    c->state = ST_HANDSHAKE;
    tls_step(c);
}

static void start_connect(tbgw_mb_conn *c) {
    char err[300];
    int in_progress = 0, fd;
    if (c->ep.transport == TBGW_MB_SERIAL) {
        fd = mb_serial_open(&c->ep, err, sizeof err);
    } else {
        if (c->ep.transport == TBGW_MB_TLS && !c->ctx &&
            !(c->ctx = mb_tls_client_ctx(&c->ep, err, sizeof err))) {
            conn_fail(c, err);
            return;
        }
        fd =
            mb_socket_open(tbgw_mb_ep_host(&c->ep), c->ep.port, c->ep.transport == TBGW_MB_UDP, &in_progress);
        snprintf(err, sizeof err, "connect failed: %s", strerror(errno));
    }
    if (fd < 0) {
        conn_fail(c, err);
        return;
    }
    c->fd = fd;
    c->mask = in_progress ? EPOLLOUT : EPOLLIN;
    if (mb_epoll_add(c->loop, fd, &c->h, c->mask) < 0) {
        conn_fail(c, "epoll registration failed");
        return;
    }
    if (in_progress) {
        c->state = ST_CONNECTING;
        c->deadline = tbgw_mono_ms() + c->ep.timeout_ms;
    } else {
        on_connected(c);
    }
}

static void process_rx(tbgw_mb_conn *c) {
    if (c->echo_skip) {
        size_t n = c->echo_skip < c->rx_len ? c->echo_skip : c->rx_len;
        memmove(c->rx, c->rx + n, c->rx_len - n);
        c->rx_len -= n;
        c->echo_skip -= n;
    }
    while (c->rx_len) {
        tbgw_mb_frame fr;
        int r = tbgw_mb_frame_decode(c->ep.framing, 0, c->rx, c->rx_len, &fr);
        if (r == 0) break;
        if (c->loop->log->level <= TBGW_TRACE) {
            char hx[2 * 1100 + 1];
            mb_hex(c->rx, r > 0 ? (size_t)r : c->rx_len, hx, sizeof hx);
            TBGW_TRACEF(c->loop->log, "%s < %s%s", c->name, hx, r < 0 ? " (corrupt)" : "");
        }
        if (r < 0) {
            c->rx_len = 0;
            if (c->inflight)
                complete(c, TBGW_EPROTO, NULL);
            else
                c->loop->ctr.bad_frames++;
            break;
        }
        memmove(c->rx, c->rx + r, c->rx_len - (size_t)r);
        c->rx_len -= (size_t)r;
        mb_item *it = c->inflight;
        if (!it) continue; /* late answer to a request that timed out */
        if ((c->ep.framing == TBGW_MB_FRAMING_SOCKET && fr.tid != c->tid) ||
            ((c->ep.framing == TBGW_MB_FRAMING_RTU || c->ep.framing == TBGW_MB_FRAMING_ASCII) &&
             fr.unit != it->unit)) {
            c->loop->ctr.stale++; /* an answer to an earlier request (or another unit): keep waiting */
            continue;
        }
        tbgw_mb_rsp rsp;
        int st = tbgw_mb_pdu_parse_rsp(&it->req, fr.pdu, fr.pdu_len, &rsp);
        complete(c, st, st == 0 || st == TBGW_MB_EEMPTY ? &rsp : NULL);
    }
}

static int read_some(tbgw_mb_conn *c) {
    for (;;) {
        if (c->ep.transport == TBGW_MB_UDP) c->rx_len = 0; /* one datagram = one frame */
        if (c->rx_len == c->rx_cap) c->rx_len = 0;         /* garbage flood: resynchronise */
        size_t room = c->rx_cap - c->rx_len;
        ssize_t n;
        if (c->ssl) {
            n = SSL_read(c->ssl, c->rx + c->rx_len, (int)room);
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, (int)n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
                return TBGW_EIO;
            }
        } else {
            n = read(c->fd, c->rx + c->rx_len, room);
            if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : TBGW_EIO;
            if (n == 0) return c->ep.transport == TBGW_MB_SERIAL ? 0 : TBGW_EIO;
        }
        c->rx_len += (size_t)n;
        c->loop->ctr.bytes_rx += (uint64_t)n;
        process_rx(c);
        if (c->state != ST_READY) return 0;
    }
}

/* Reads into the loop's scratch buffer (after the bytes still pending from the last read) and keeps
 * only what is left of an incomplete frame. */
static int do_read(tbgw_mb_conn *c) {
    tbgw_mb_loop *l = c->loop;
    int shared = !l->rx_busy; /* a callback reading another connection would nest: own buffer then */
    uint8_t *buf = shared ? l->rx_scratch : malloc(sizeof l->rx_scratch);
    if (!buf) return TBGW_ENOMEM;
    l->rx_busy = 1;
    if (c->rx_len) memcpy(buf, c->rx, c->rx_len);
    free(c->rx_pend);
    c->rx_pend = NULL;
    c->rx = buf;
    int rc = read_some(c);
    if (c->rx_len && (c->rx_pend = malloc(c->rx_len))) memcpy(c->rx_pend, c->rx, c->rx_len);
    if (!c->rx_pend) c->rx_len = 0;
    c->rx = c->rx_pend;
    if (shared)
        l->rx_busy = 0;
    else
        free(buf);
    return rc;
}

static void conn_on_io(mb_handler *h, uint32_t ev) {
    tbgw_mb_conn *c = (tbgw_mb_conn *)h;
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            char msg[160];
            snprintf(msg, sizeof msg, "connect failed: %s", strerror(err));
            conn_fail(c, msg);
        } else {
            on_connected(c);
        }
        return;
    }
    if (c->state == ST_HANDSHAKE) {
        tls_step(c);
        return;
    }
    if (c->state != ST_READY) return;
    if ((ev & EPOLLOUT) && c->tx_off < c->tx_len && do_write(c) < 0) {
        conn_fail(c, "write failed");
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (do_read(c) < 0) conn_fail(c, "connection lost");
    }
}

/* Timers and queue kicks; returns the ms until this connection next needs attention (-1 = none). */
static int64_t conn_service(tbgw_mb_conn *c, int64_t now) {
    if ((c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) && now >= c->deadline) {
        conn_fail(c, "connect timed out");
    }
    if (c->inflight && now >= c->deadline) {
        TBGW_DEBUGF(c->loop->log, "%s: unit %u fc %u addr %u: no answer within %lld ms", c->name,
                    c->inflight->unit, c->inflight->req.fc, c->inflight->req.addr,
                    (long long)c->ep.timeout_ms);
        c->rx_len = 0; /* a half answer must not prefix the next one */
        complete(c, TBGW_ETIMEDOUT, NULL);
    }
    if (c->state == ST_DOWN && c->head) {
        if (c->ep.transport == TBGW_MB_LOCAL)
            c->state = ST_READY;
        else
            start_connect(c);
    }
    while (c->ep.transport == TBGW_MB_LOCAL && c->head && !c->inflight) send_next(c);
    if (c->state == ST_READY && !c->inflight && c->head && now >= c->send_at) send_next(c);
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE || c->inflight) return c->deadline - now;
    if (c->state == ST_READY && c->head) return c->send_at > now ? c->send_at - now : 0;
    return -1;
}

int tbgw_mb_loop_run(tbgw_mb_loop *l, int timeout_ms) {
    int64_t now = tbgw_mono_ms();
    int64_t wait = timeout_ms;
    for (size_t i = 0; i < l->n_conns; i++) {
        int64_t d = conn_service(l->conns[i], now);
        if (d >= 0 && d < wait) wait = d;
    }
    struct epoll_event evs[128];
    int n = epoll_wait(l->epfd, evs, 128, (int)(wait < 0 ? 0 : wait));
    if (n < 0 && errno != EINTR) return TBGW_EIO;
    for (int i = 0; i < n; i++) {
        mb_handler *h = evs[i].data.ptr;
        h->on_io(h, evs[i].events);
    }
    now = tbgw_mono_ms();
    for (size_t i = 0; i < l->n_conns; i++) conn_service(l->conns[i], now);
    for (size_t i = 0; i < l->n_servers; i++) mb_server_sweep(l->servers[i]);
    return n < 0 ? 0 : n;
}
