/* The server (slave) side: a register store and listeners on TCP, UDP and serial lines. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/modbus/mb_internal.h"

typedef struct srv_client {
    mb_handler h;
    struct tbgw_mb_server *srv;
    int fd, dead;
    SSL *ssl;
    int handshaken;
    uint8_t rx[1100];
    size_t rx_len;
    struct srv_client *next;
} srv_client;

struct tbgw_mb_server {
    mb_handler h;
    tbgw_mb_loop *loop;
    tbgw_mb_endpoint ep;
    int fd, port;
    uint8_t unit;
    tbgw_mb_store *store;
    tbgw_mb_write_fn on_write;
    void *ud;
    srv_client *clients;
    SSL_CTX *ctx;
    uint8_t rx[1100];
    size_t rx_len;
};

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t read_bits(const uint8_t *table, const tbgw_mb_req *q, uint8_t *rsp) {
    size_t nbytes = (size_t)(q->count + 7) / 8;
    rsp[1] = (uint8_t)nbytes;
    memset(rsp + 2, 0, nbytes);
    for (size_t i = 0; i < q->count; i++) tbgw_mb_bit_set(rsp + 2, i, table[q->addr + i]);
    return 2 + nbytes;
}

static size_t read_regs(const uint16_t *table, const tbgw_mb_req *q, uint8_t *rsp) {
    rsp[1] = (uint8_t)(q->count * 2);
    for (size_t i = 0; i < q->count; i++) put16(rsp + 2 + 2 * i, table[q->addr + i]);
    return 2 + (size_t)q->count * 2;
}

static size_t exception_rsp(uint8_t fc, uint8_t code, uint8_t *rsp) {
    rsp[0] = (uint8_t)(fc | 0x80);
    rsp[1] = code;
    return 2;
}

static int ident_has(const tbgw_mb_identity *id, unsigned oid) {
    return oid <= 2 || id->obj[oid] != NULL; /* the basic objects are mandatory */
}

/* Function 43 / MEI 14, Read Device Identification (Modbus application protocol v1.1b3, 6.21):
 * read code 1 basic, 2 regular, 3 extended (stream access from an object id, split over several
 * answers with "more follows" when they do not fit one PDU), 4 one object (individual access). */
static size_t read_device_id(const tbgw_mb_identity *id, const uint8_t *pdu, size_t len, uint8_t *rsp) {
    if (!id) return exception_rsp(pdu[0], TBGW_MB_EX_ILLEGAL_FUNCTION, rsp);
    if (len < 2 || pdu[1] != TBGW_MB_MEI_DEVICE_ID)
        return exception_rsp(pdu[0], TBGW_MB_EX_ILLEGAL_FUNCTION, rsp);
    if (len != 4) return exception_rsp(pdu[0], TBGW_MB_EX_ILLEGAL_VALUE, rsp);
    uint8_t code = pdu[2], oid = pdu[3];
    if (code < 1 || code > 4) return exception_rsp(pdu[0], TBGW_MB_EX_ILLEGAL_VALUE, rsp);
    uint8_t conformity = 0x81; /* basic, individual access supported */
    for (unsigned i = 3; i < 256; i++)
        if (id->obj[i]) conformity = i >= 0x80 ? 0x83 : (conformity < 0x82 ? 0x82 : conformity);
    unsigned first = oid, last;
    if (code == 4) {
        if (!ident_has(id, oid)) return exception_rsp(pdu[0], TBGW_MB_EX_ILLEGAL_ADDRESS, rsp);
        last = oid;
    } else {
        last = code == 1 ? 2 : code == 2 ? 0x7F : 0xFF;
        if (first > last || !ident_has(id, first)) first = 0; /* unknown start: from the beginning */
    }
    rsp[0] = TBGW_MB_FC_MEI;
    rsp[1] = TBGW_MB_MEI_DEVICE_ID;
    rsp[2] = code;
    rsp[3] = conformity;
    rsp[4] = 0; /* more follows */
    rsp[5] = 0; /* next object id */
    rsp[6] = 0; /* number of objects */
    size_t off = 7;
    for (unsigned i = first; i <= last; i++) {
        if (!ident_has(id, i)) continue;
        const char *v = id->obj[i] ? id->obj[i] : "";
        size_t n = strlen(v);
        if (n > 255) n = 255;
        if (off + 2 + n > TBGW_MB_MAX_PDU) {
            if (rsp[6]) { /* the rest comes with the next request */
                rsp[4] = 0xFF;
                rsp[5] = (uint8_t)i;
                break;
            }
            n = TBGW_MB_MAX_PDU - off - 2; /* a single object longer than a PDU is cut */
        }
        rsp[off] = (uint8_t)i;
        rsp[off + 1] = (uint8_t)n;
        memcpy(rsp + off + 2, v, n);
        off += 2 + n;
        rsp[6]++;
    }
    return off;
}

size_t tbgw_mb_store_execute(tbgw_mb_store *s, const uint8_t *pdu, size_t len, uint8_t *rsp, int *wrote,
                             tbgw_mb_req *parsed) {
    tbgw_mb_req q;
    *wrote = 0;
    if (len >= 1 && pdu[0] == TBGW_MB_FC_MEI) {
        if (parsed) {
            memset(parsed, 0, sizeof *parsed);
            parsed->fc = TBGW_MB_FC_MEI;
        }
        return read_device_id(s->identity, pdu, len, rsp);
    }
    int ex = tbgw_mb_pdu_parse_req(pdu, len, &q);
    if (parsed) *parsed = q;
    rsp[0] = len ? pdu[0] : 0;
    if (ex) {
        rsp[0] |= 0x80;
        rsp[1] = (uint8_t)ex;
        return 2;
    }
    switch (q.fc) {
    case 1:
        return read_bits(s->coils, &q, rsp);
    case 2:
        return read_bits(s->discrete, &q, rsp);
    case 3:
        return read_regs(s->holding, &q, rsp);
    case 4:
        return read_regs(s->input, &q, rsp);
    case 5:
        s->coils[q.addr] = (uint8_t)q.value;
        memcpy(rsp, pdu, 5);
        *wrote = 1;
        return 5;
    case 6:
        s->holding[q.addr] = q.value;
        memcpy(rsp, pdu, 5);
        *wrote = 1;
        return 5;
    case 15:
        for (size_t i = 0; i < q.count; i++) s->coils[q.addr + i] = (uint8_t)tbgw_mb_bit_get(q.data, i);
        memcpy(rsp, pdu, 5);
        *wrote = 1;
        return 5;
    default: /* 16 */
        for (size_t i = 0; i < q.count; i++)
            s->holding[q.addr + i] = (uint16_t)(q.data[2 * i] << 8 | q.data[2 * i + 1]);
        memcpy(rsp, pdu, 5);
        *wrote = 1;
        return 5;
    }
}

/* Handles one request frame; returns the response frame length (0 = no answer). */
static size_t serve_frame(tbgw_mb_server *s, const tbgw_mb_frame *fr, uint8_t *out, size_t cap) {
    if (s->unit && fr->unit != s->unit && s->ep.framing != TBGW_MB_FRAMING_TLS)
        return 0; /* bare PDU: no unit */
    uint8_t rsp[TBGW_MB_MAX_PDU];
    int wrote = 0;
    tbgw_mb_req q;
    size_t n = tbgw_mb_store_execute(s->store, fr->pdu, fr->pdu_len, rsp, &wrote, &q);
    if (wrote && s->on_write) s->on_write(s->ud, q.fc, q.addr, q.count);
    int r = tbgw_mb_frame_encode(s->ep.framing, fr->tid, fr->unit, rsp, n, out, cap);
    return r > 0 ? (size_t)r : 0;
}

static int send_all(int fd, SSL *ssl, const uint8_t *p, size_t n) {
    if (ssl) return SSL_write(ssl, p, (int)n) == (int)n ? 0 : -1;
    return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

/* Consumes complete frames from rx, answering each on fd (through ssl when set). Returns -1 on a write
 * failure. */
static int serve_buffer(tbgw_mb_server *s, int fd, SSL *ssl, uint8_t *rx, size_t *rx_len) {
    while (*rx_len) {
        tbgw_mb_frame fr;
        int r = tbgw_mb_frame_decode(s->ep.framing, 1, rx, *rx_len, &fr);
        if (r == 0) break;
        if (r < 0) {
            TBGW_DEBUGF(s->loop->log, "modbus server: corrupt request frame dropped");
            s->loop->ctr.bad_frames++;
            *rx_len = 0;
            break;
        }
        memmove(rx, rx + r, *rx_len - (size_t)r);
        *rx_len -= (size_t)r;
        uint8_t out[TBGW_MB_MAX_FRAME];
        size_t n = serve_frame(s, &fr, out, sizeof out);
        if (n && send_all(fd, ssl, out, n) < 0) return -1;
    }
    return 0;
}

static void client_close(srv_client *cl) {
    if (cl->ssl) SSL_free(cl->ssl);
    cl->ssl = NULL;
    mb_epoll_del(cl->srv->loop, cl->fd);
    close(cl->fd);
    cl->fd = -1;
    cl->dead = 1; /* freed by mb_server_sweep after the event batch */
}

/* Reads what is available: >0 bytes, 0 = nothing now, -1 = closed or failed. */
static ssize_t client_read(srv_client *cl) {
    uint8_t *dst = cl->rx + cl->rx_len;
    size_t room = sizeof cl->rx - cl->rx_len;
    if (cl->ssl) {
        int n = SSL_read(cl->ssl, dst, (int)room);
        if (n > 0) return n;
        int e = SSL_get_error(cl->ssl, n);
        return (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? 0 : -1;
    }
    ssize_t n = read(cl->fd, dst, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return n > 0 ? n : -1;
}

static void client_on_io(mb_handler *h, uint32_t ev) {
    srv_client *cl = (srv_client *)h;
    (void)ev;
    if (cl->dead) return;
    if (cl->ssl && !cl->handshaken) {
        int r = SSL_accept(cl->ssl);
        if (r == 1) {
            cl->handshaken = 1;
        } else {
            int e = SSL_get_error(cl->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            TBGW_DEBUGF(cl->srv->loop->log, "modbus server: TLS handshake with a client failed");
            client_close(cl);
            return;
        }
    }
    while (!cl->dead) {
        if (cl->rx_len == sizeof cl->rx) cl->rx_len = 0;
        ssize_t n = client_read(cl);
        if (n == 0) break;
        if (n > 0) {
            cl->rx_len += (size_t)n;
            cl->srv->loop->ctr.bytes_rx += (uint64_t)n;
            if (serve_buffer(cl->srv, cl->fd, cl->ssl, cl->rx, &cl->rx_len) == 0) continue;
        }
        client_close(cl);
    }
}

void mb_server_sweep(tbgw_mb_server *s) {
    srv_client **pp = &s->clients;
    while (*pp) {
        srv_client *c = *pp;
        if (c->dead) {
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void server_on_io(mb_handler *h, uint32_t ev) {
    tbgw_mb_server *s = (tbgw_mb_server *)h;
    (void)ev;
    if (s->ep.transport == TBGW_MB_UDP) {
        for (;;) {
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            uint8_t buf[TBGW_MB_MAX_FRAME];
            ssize_t n = recvfrom(s->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (n <= 0) break;
            tbgw_mb_frame fr;
            if (tbgw_mb_frame_decode(s->ep.framing, 1, buf, (size_t)n, &fr) <= 0) {
                s->loop->ctr.bad_frames++;
                continue;
            }
            uint8_t out[TBGW_MB_MAX_FRAME];
            size_t o = serve_frame(s, &fr, out, sizeof out);
            if (o) sendto(s->fd, out, o, 0, (struct sockaddr *)&from, fl);
        }
        return;
    }
    if (s->ep.transport == TBGW_MB_SERIAL) {
        for (;;) {
            if (s->rx_len == sizeof s->rx) s->rx_len = 0;
            ssize_t n = read(s->fd, s->rx + s->rx_len, sizeof s->rx - s->rx_len);
            if (n <= 0) break;
            s->rx_len += (size_t)n;
            serve_buffer(s, s->fd, NULL, s->rx, &s->rx_len);
        }
        return;
    }
    for (;;) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        srv_client *cl = calloc(1, sizeof *cl);
        if (!cl) {
            close(fd);
            continue;
        }
        cl->h.on_io = client_on_io;
        cl->srv = s;
        cl->fd = fd;
        if (s->ctx && (!(cl->ssl = SSL_new(s->ctx)) || SSL_set_fd(cl->ssl, fd) != 1)) {
            if (cl->ssl) SSL_free(cl->ssl);
            close(fd);
            free(cl);
            continue;
        }
        if (cl->ssl) SSL_set_accept_state(cl->ssl);
        if (mb_epoll_add(s->loop, fd, &cl->h, EPOLLIN) < 0) {
            close(fd);
            free(cl);
            continue;
        }
        cl->next = s->clients;
        s->clients = cl;
    }
}

void mb_server_free(tbgw_mb_server *s) {
    for (srv_client *c = s->clients, *nx; c; c = nx) {
        nx = c->next;
        if (c->ssl) SSL_free(c->ssl);
        if (c->fd >= 0) {
            mb_epoll_del(s->loop, c->fd);
            close(c->fd);
        }
        free(c);
    }
    if (s->fd >= 0) {
        mb_epoll_del(s->loop, s->fd);
        close(s->fd);
    }
    if (s->ctx) SSL_CTX_free(s->ctx);
    free(s);
}

tbgw_mb_server *tbgw_mb_server_new(tbgw_mb_loop *l, const tbgw_mb_endpoint *ep, uint8_t unit,
                                   tbgw_mb_store *store, tbgw_mb_write_fn on_write, void *ud, tbgw_err *err) {
    if (l->n_servers == l->cap_servers) {
        size_t nc = l->cap_servers ? l->cap_servers * 2 : 4;
        tbgw_mb_server **p = realloc(l->servers, nc * sizeof *p);
        if (!p) return NULL;
        l->servers = p;
        l->cap_servers = nc;
    }
    tbgw_mb_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->h.on_io = server_on_io;
    s->loop = l;
    s->ep = *ep;
    s->unit = unit;
    s->store = store;
    s->on_write = on_write;
    s->ud = ud;
    char eb[300] = "";
    if (ep->transport == TBGW_MB_TLS && !(s->ctx = mb_tls_server_ctx(ep, eb, sizeof eb))) {
        tbgw_err_set(err, TBGW_EINVAL, "slave.security: %s", eb);
        free(s);
        return NULL;
    }
    if (ep->transport == TBGW_MB_SERIAL) {
        s->fd = mb_serial_open(ep, eb, sizeof eb);
    } else {
        s->fd = mb_socket_listen(tbgw_mb_ep_host(ep), ep->port, ep->transport == TBGW_MB_UDP);
        snprintf(eb, sizeof eb, "cannot listen on %s:%d: %s", tbgw_mb_ep_host(ep), ep->port, strerror(errno));
    }
    if (s->fd < 0 || mb_epoll_add(l, s->fd, &s->h, EPOLLIN) < 0) {
        tbgw_err_set(err, TBGW_EIO, "slave: %s", eb);
        if (s->fd >= 0) close(s->fd);
        if (s->ctx) SSL_CTX_free(s->ctx);
        free(s);
        return NULL;
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    s->port = ep->port;
    if (ep->transport != TBGW_MB_SERIAL && getsockname(s->fd, (struct sockaddr *)&sa, &sl) == 0)
        s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    l->servers[l->n_servers++] = s;
    return s;
}

int tbgw_mb_server_port(const tbgw_mb_server *s) {
    return s->port;
}
