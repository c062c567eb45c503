/* Non-blocking MQTT client session (see mqtt_session.h). */
#include "proto/mqtt/mqtt_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <tbgw/err.h>
#include <unistd.h>

#define MQS_READ_CHUNK  65536               /* bytes asked of one read() */
#define MQS_DEFAULT_MAX (64u * 1024 * 1024) /* largest incoming packet by default */
#define MQS_WINDOW      20                  /* messages in flight without a v5 Receive Maximum */
#define MQS_QUEUE_MAX   10000               /* outgoing QoS 1/2 messages kept while offline */
#define MQS_WBUF_MAX    (8u * 1024 * 1024)  /* output bytes waiting for the socket */
#define MQS_WBUF_KEEP   (64u * 1024)        /* an output buffer larger than this is released */
#define MQS_CONNECT_MS  10000

struct mqs_out {
    mqs_out *next;
    uint16_t mid;
    uint8_t qos;
    uint8_t state; /* 0 queued, 1 PUBLISH sent, 2 PUBREC received (PUBREL sent) */
    size_t len;
    uint8_t pkt[];
};

struct mqs_sub {
    mqs_sub *next;
    uint16_t mid;
    char filter[];
};

#define set_err(s, ...) snprintf((s)->err, sizeof(s)->err, __VA_ARGS__)

static int tls_err_text(mqtt_session *s, const char *what) {
    char e[200];
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, e, sizeof e);
    else
        snprintf(e, sizeof e, "%s", errno ? strerror(errno) : "connection closed");
    ERR_clear_error();
    set_err(s, "%s: %s", what, e);
    return TBGW_EIO;
}

/* ------------------------------------------------------------------ lifecycle */

static int tls_setup(mqtt_session *s) {
    const mqtt_session_cfg *c = &s->cfg;
    s->ctx = SSL_CTX_new(TLS_client_method());
    if (!s->ctx) return tls_err_text(s, "TLS setup failed");
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (c->ca_file && SSL_CTX_load_verify_locations(s->ctx, c->ca_file, NULL) != 1)
        return tls_err_text(s, "cannot load the CA certificate");
    if (c->cert_file && SSL_CTX_use_certificate_chain_file(s->ctx, c->cert_file) != 1)
        return tls_err_text(s, "cannot load the client certificate");
    if (c->key_file && SSL_CTX_use_PrivateKey_file(s->ctx, c->key_file, SSL_FILETYPE_PEM) != 1)
        return tls_err_text(s, "cannot load the client key");
    SSL_CTX_set_verify(s->ctx, c->ca_file ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return 0;
}

int mqtt_session_init(mqtt_session *s, const mqtt_session_cfg *cfg, const mqtt_session_cb *cb, char *err,
                      size_t errlen) {
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->cb = *cb;
    s->fd = -1;
    s->out_tail = &s->out;
    s->window = MQS_WINDOW;
    if (!s->cfg.connect_timeout_ms) s->cfg.connect_timeout_ms = MQS_CONNECT_MS;
    if (!s->cfg.max_packet) s->cfg.max_packet = MQS_DEFAULT_MAX;
    tbgw_buf_init(&s->wbuf);
    if (cfg->tls && tls_setup(s)) {
        snprintf(err, errlen, "%s", s->err);
        return TBGW_EINVAL;
    }
    return 0;
}

static void close_conn(mqtt_session *s) {
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    if (s->ai) freeaddrinfo(s->ai);
    s->ai = s->ai_next = NULL;
    s->state = MQS_IDLE;
    s->rlen = s->rpos = 0; /* the buffer itself stays: a callback may still point into it */
    tbgw_buf_free(&s->wbuf);
    tbgw_buf_init(&s->wbuf);
    s->wpos = 0;
    s->ping_sent = 0;
    s->tls_events = 0;
    for (mqs_sub *u = s->subs, *n; u; u = n) {
        n = u->next;
        free(u);
    }
    s->subs = NULL;
    s->n_inflight = 0;
    for (mqs_out *o = s->out; o; o = o->next)
        if (o->state) s->n_inflight++; /* resent after the next CONNACK */
}

/* The connection ended: closes and reports once. */
static void drop(mqtt_session *s, const char *why, int protocol_error) {
    if (s->state == MQS_IDLE) return;
    char text[sizeof s->err];
    snprintf(text, sizeof text, "%s", why);
    if (protocol_error) s->protocol_errors++;
    close_conn(s);
    snprintf(s->err, sizeof s->err, "%s", text);
    if (s->cb.on_lost) s->cb.on_lost(s->cb.ud, text, protocol_error);
}

/* A packet that does not parse ends the connection as a protocol error: "malformed <what>: <why>". */
static void drop_malformed(mqtt_session *s, const char *what, const char *why) {
    char t[200];
    snprintf(t, sizeof t, "malformed %s: %s", what, why);
    drop(s, t, 1);
}

/* A TLS failure: OpenSSL's reason (or errno's) ends the connection. */
static void drop_tls(mqtt_session *s, const char *what) {
    tls_err_text(s, what);
    char t[sizeof s->err];
    snprintf(t, sizeof t, "%s", s->err);
    drop(s, t, 0);
}

void mqtt_session_free(mqtt_session *s) {
    close_conn(s);
    free(s->rbuf);
    s->rbuf = NULL;
    for (mqs_out *o = s->out, *n; o; o = n) {
        n = o->next;
        free(o);
    }
    s->out = NULL;
    s->out_tail = &s->out;
    free(s->qos2_in);
    s->qos2_in = NULL;
    tbgw_buf_free(&s->wbuf);
    if (s->ctx) SSL_CTX_free(s->ctx);
    s->ctx = NULL;
}

int mqtt_session_fd(const mqtt_session *s) {
    return s->fd;
}

int mqtt_session_up(const mqtt_session *s) {
    return s->state == MQS_UP;
}

void mqtt_session_pause(mqtt_session *s, int on) {
    s->paused = on;
}

/* ------------------------------------------------------------------ connecting */

static int try_next_address(mqtt_session *s) {
    int last = 0;
    while (s->ai_next) {
        struct addrinfo *a = s->ai_next;
        s->ai_next = a->ai_next;
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            s->fd = fd;
            s->state = MQS_TCP;
            return 0;
        }
        last = errno;
        close(fd);
    }
    errno = last;
    return -1;
}

int mqtt_session_start(mqtt_session *s, int64_t now) {
    close_conn(s);
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    int gai = getaddrinfo(s->cfg.host, port, &hints, &s->ai);
    if (gai) {
        s->ai = NULL;
        set_err(s, "cannot resolve %s: %s", s->cfg.host, gai_strerror(gai));
        return TBGW_EIO;
    }
    s->ai_next = s->ai;
    if (try_next_address(s)) {
        set_err(s, "cannot connect to %s: %s", s->cfg.host, strerror(errno));
        close_conn(s);
        return TBGW_EIO;
    }
    s->deadline = now + s->cfg.connect_timeout_ms;
    return 0;
}

static void send_connect(mqtt_session *s, int64_t now) {
    mqtt_connect_opts o = {.version = s->cfg.version,
                           .client_id = s->cfg.client_id,
                           .username = s->cfg.username,
                           .password = s->cfg.password,
                           .keepalive = s->cfg.keepalive,
                           .clean = s->cfg.clean,
                           .session_expiry = s->cfg.session_expiry};
    s->state = MQS_CONNACK;
    if (mqtt_enc_connect(&s->wbuf, &o)) {
        drop(s, "cannot encode CONNECT (client id, user name or password too long)", 0);
        return;
    }
    mqtt_session_flush(s, now);
}

static int is_ip_literal(const char *h) {
    unsigned char b[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void tls_step(mqtt_session *s, int64_t now) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(s->ssl);
    if (r == 1) {
        s->tls_events = 0;
        send_connect(s, now);
        return;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        s->tls_events = POLLIN;
    } else if (e == SSL_ERROR_WANT_WRITE) {
        s->tls_events = POLLOUT;
    } else {
        long v = SSL_get_verify_result(s->ssl);
        if (v != X509_V_OK) {
            char t[200];
            snprintf(t, sizeof t, "TLS handshake failed: certificate verification: %s",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
            drop(s, t, 0);
            return;
        }
        drop_tls(s, "TLS handshake failed");
    }
}

static void tcp_connected(mqtt_session *s, int64_t now) {
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) soerr = errno;
    if (soerr) {
        close(s->fd);
        s->fd = -1;
        if (try_next_address(s) == 0) return;
        char t[200];
        snprintf(t, sizeof t, "cannot connect to %s:%d: %s", s->cfg.host, s->cfg.port, strerror(soerr));
        s->state = MQS_TCP; /* so that drop reports */
        drop(s, t, 0);
        return;
    }
    freeaddrinfo(s->ai);
    s->ai = s->ai_next = NULL;
    if (!s->cfg.tls) {
        send_connect(s, now);
        return;
    }
    s->ssl = SSL_new(s->ctx);
    if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
        drop(s, "TLS setup failed", 0);
        return;
    }
    const char *h = s->cfg.host;
    int ip = is_ip_literal(h);
    if (!ip) SSL_set_tlsext_host_name(s->ssl, h);
    if (s->cfg.ca_file && !s->cfg.tls_insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, h);
        else
            X509_VERIFY_PARAM_set1_host(vp, h, 0);
    }
    s->state = MQS_TLS;
    tls_step(s, now);
}

/* ------------------------------------------------------------------ writing */

void mqtt_session_flush(mqtt_session *s, int64_t now) {
    while (s->fd >= 0 && s->state >= MQS_CONNACK && s->wpos < s->wbuf.len) {
        size_t n = s->wbuf.len - s->wpos;
        const char *p = s->wbuf.p + s->wpos;
        ssize_t w;
        if (s->ssl) {
            ERR_clear_error();
            int r = SSL_write(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return;
                drop_tls(s, "TLS write failed");
                return;
            }
            w = r;
        } else {
            w = send(s->fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                char t[200];
                snprintf(t, sizeof t, "write to the broker failed: %s", strerror(errno));
                drop(s, t, 0);
                return;
            }
        }
        s->wpos += (size_t)w;
        s->last_out = now;
    }
    if (s->wpos && s->wpos >= s->wbuf.len) {
        s->wpos = 0;
        if (s->wbuf.cap > MQS_WBUF_KEEP) {
            tbgw_buf_free(&s->wbuf);
            tbgw_buf_init(&s->wbuf);
        } else {
            tbgw_buf_reset(&s->wbuf);
        }
    }
}

/* ------------------------------------------------------------------ outgoing QoS 1/2 */

static int mid_in_use(const mqtt_session *s, uint16_t mid) {
    for (const mqs_out *o = s->out; o; o = o->next)
        if (o->mid == mid) return 1;
    for (const mqs_sub *u = s->subs; u; u = u->next)
        if (u->mid == mid) return 1;
    return 0;
}

static uint16_t new_mid(mqtt_session *s) {
    for (int i = 0; i < 65536; i++) {
        if (++s->next_mid == 0) s->next_mid = 1;
        if (!mid_in_use(s, s->next_mid)) return s->next_mid;
    }
    return 0;
}

/* Sends queued messages while the window has room. */
static void fill_window(mqtt_session *s) {
    if (s->state != MQS_UP) return;
    for (mqs_out *o = s->out; o && s->n_inflight < s->window; o = o->next) {
        if (o->state) continue;
        if (tbgw_buf_append(&s->wbuf, o->pkt, o->len)) return;
        o->state = 1;
        s->n_inflight++;
    }
}

static void out_remove(mqtt_session *s, mqs_out **pp) {
    mqs_out *o = *pp;
    *pp = o->next;
    if (s->out_tail == &o->next) s->out_tail = pp;
    if (o->state) s->n_inflight--;
    s->n_out--;
    free(o);
}

static mqs_out **out_find(mqtt_session *s, uint16_t mid) {
    for (mqs_out **pp = &s->out; *pp; pp = &(*pp)->next)
        if ((*pp)->mid == mid && (*pp)->state) return pp;
    return NULL;
}

/* After a CONNACK: what was in flight goes again (PUBLISH with DUP, or PUBREL), then the queue. */
static void resend_inflight(mqtt_session *s) {
    for (mqs_out *o = s->out; o; o = o->next) {
        if (o->state == 1) {
            o->pkt[0] |= 0x08;
            tbgw_buf_append(&s->wbuf, o->pkt, o->len);
        } else if (o->state == 2) {
            mqtt_enc_ack(&s->wbuf, MQTT_PUBREL, o->mid);
        }
    }
    fill_window(s);
}

int mqtt_session_publish(mqtt_session *s, const char *topic, const void *payload, size_t len, int qos,
                         int retain) {
    if (qos < 0 || qos > 2) return TBGW_EINVAL;
    if (qos == 0) {
        if (s->state != MQS_UP) return TBGW_EIO;
        if (s->wbuf.len - s->wpos > MQS_WBUF_MAX) return TBGW_EFULL;
        return mqtt_enc_publish(&s->wbuf, s->cfg.version, topic, payload, len, 0, retain, 0, 0);
    }
    if (s->n_out >= MQS_QUEUE_MAX) return TBGW_EFULL;
    uint16_t mid = new_mid(s);
    if (!mid) return TBGW_EFULL;
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = mqtt_enc_publish(&b, s->cfg.version, topic, payload, len, qos, retain, 0, mid);
    mqs_out *o = rc ? NULL : malloc(sizeof *o + b.len);
    if (!o) {
        tbgw_buf_free(&b);
        return rc ? rc : TBGW_ENOMEM;
    }
    o->next = NULL;
    o->mid = mid;
    o->qos = (uint8_t)qos;
    o->state = 0;
    o->len = b.len;
    memcpy(o->pkt, b.p, b.len);
    tbgw_buf_free(&b);
    *s->out_tail = o;
    s->out_tail = &o->next;
    s->n_out++;
    fill_window(s);
    return 0;
}

int mqtt_session_subscribe(mqtt_session *s, const char *filter, int qos) {
    if (s->state != MQS_UP) return TBGW_EIO;
    uint16_t mid = new_mid(s);
    size_t fl = strlen(filter);
    mqs_sub *u = mid ? malloc(sizeof *u + fl + 1) : NULL;
    if (!u) return TBGW_ENOMEM;
    int rc = mqtt_enc_subscribe(&s->wbuf, s->cfg.version, mid, filter, qos);
    if (rc) {
        free(u);
        return rc;
    }
    u->mid = mid;
    memcpy(u->filter, filter, fl + 1);
    u->next = s->subs;
    s->subs = u;
    return 0;
}

int mqtt_session_unsubscribe(mqtt_session *s, const char *filter) {
    if (s->state != MQS_UP) return TBGW_EIO;
    uint16_t mid = new_mid(s);
    if (!mid) return TBGW_EFULL;
    return mqtt_enc_unsubscribe(&s->wbuf, s->cfg.version, mid, filter);
}

void mqtt_session_disconnect(mqtt_session *s) {
    if (s->state == MQS_UP) {
        mqtt_enc_disconnect(&s->wbuf, s->cfg.version);
        mqtt_session_flush(s, 0);
        if (s->ssl && s->state == MQS_UP) SSL_shutdown(s->ssl);
    }
    close_conn(s);
}

/* ------------------------------------------------------------------ incoming QoS 2 */

static int qos2_has(const mqtt_session *s, uint16_t mid) {
    for (size_t i = 0; i < s->n_qos2; i++)
        if (s->qos2_in[i] == mid) return 1;
    return 0;
}

static int qos2_add(mqtt_session *s, uint16_t mid) {
    if (s->n_qos2 == s->cap_qos2) {
        size_t nc = s->cap_qos2 ? s->cap_qos2 * 2 : 16;
        if (nc > 65536) return TBGW_EFULL;
        uint16_t *n = realloc(s->qos2_in, nc * sizeof *n);
        if (!n) return TBGW_ENOMEM;
        s->qos2_in = n;
        s->cap_qos2 = nc;
    }
    s->qos2_in[s->n_qos2++] = mid;
    return 0;
}

static void qos2_del(mqtt_session *s, uint16_t mid) {
    for (size_t i = 0; i < s->n_qos2; i++)
        if (s->qos2_in[i] == mid) {
            s->qos2_in[i] = s->qos2_in[--s->n_qos2];
            return;
        }
}

/* ------------------------------------------------------------------ reading */

static void reason_suffix(char *out, size_t n, const mqtt_props *p) {
    if (p->reason && p->reason_len)
        snprintf(out, n, " (%.*s)", (int)(p->reason_len > 200 ? 200 : p->reason_len), p->reason);
    else
        out[0] = 0;
}

static void on_connack(mqtt_session *s, const mqtt_frame *f) {
    const char *why = NULL;
    mqtt_connack ca;
    if (s->state != MQS_CONNACK) {
        drop(s, "protocol error: a second CONNACK", 1);
        return;
    }
    if (mqtt_parse_connack(f, s->cfg.version, &ca, &why)) {
        drop_malformed(s, "CONNACK", why);
        return;
    }
    if (ca.code) {
        char rs[220], t[400];
        reason_suffix(rs, sizeof rs, &ca.props);
        snprintf(t, sizeof t, "%s%s", mqtt_connack_text(s->cfg.version, ca.code), rs);
        if (s->cb.on_connack) s->cb.on_connack(s->cb.ud, ca.code, t);
        drop(s, t, 0);
        return;
    }
    s->state = MQS_UP;
    s->keepalive = ca.props.server_keepalive >= 0 ? ca.props.server_keepalive : s->cfg.keepalive;
    s->window = ca.props.receive_max > 0 ? (size_t)ca.props.receive_max : MQS_WINDOW;
    if (!ca.session_present) s->n_qos2 = 0; /* the broker starts afresh: nothing to release */
    if (s->cb.on_connack) s->cb.on_connack(s->cb.ud, 0, NULL);
    if (s->state == MQS_UP) resend_inflight(s);
}

static int on_publish(mqtt_session *s, const mqtt_frame *f) {
    const char *why = NULL;
    mqtt_publish m;
    if (mqtt_parse_publish(f, s->cfg.version, &m, &why)) {
        drop_malformed(s, "PUBLISH", why);
        return 0;
    }
    int deliver = 1;
    if (m.qos == 2) {
        if (qos2_has(s, m.mid))
            deliver = 0; /* a resend of a message already delivered, waiting for PUBREL */
        else if (qos2_add(s, m.mid)) {
            drop(s, "too many QoS 2 messages waiting for PUBREL", 1);
            return 0;
        }
    }
    if (deliver && s->cb.on_message) {
        /* NUL-terminate both in place: the topic moves over its length prefix, the byte after the
         * payload (the next packet's first byte, or spare room) is saved and restored */
        char *topic = (char *)m.topic - 2;
        memmove(topic, m.topic, m.topic_len);
        topic[m.topic_len] = 0;
        uint8_t *end = (uint8_t *)m.payload + m.payload_len, saved = *end;
        *end = 0;
        s->cb.on_message(s->cb.ud, topic, m.payload, m.payload_len, m.qos, m.retain);
        *end = saved;
    }
    if (s->state < MQS_UP) return deliver;
    if (m.qos == 1) mqtt_enc_ack(&s->wbuf, MQTT_PUBACK, m.mid);
    if (m.qos == 2) mqtt_enc_ack(&s->wbuf, MQTT_PUBREC, m.mid);
    return deliver;
}

static void on_ack(mqtt_session *s, const mqtt_frame *f) {
    const char *why = NULL;
    mqtt_ack a;
    char t[400], rs[220];
    if (mqtt_parse_ack(f, s->cfg.version, &a, &why)) {
        snprintf(t, sizeof t, "packet of type %d", f->type);
        drop_malformed(s, t, why);
        return;
    }
    mqs_out **pp;
    switch (f->type) {
    case MQTT_PUBACK:
    case MQTT_PUBCOMP:
        if ((pp = out_find(s, a.mid))) out_remove(s, pp);
        fill_window(s);
        break;
    case MQTT_PUBREC:
        if (!(pp = out_find(s, a.mid))) {
            mqtt_enc_ack(&s->wbuf, MQTT_PUBREL, a.mid); /* unknown: release so the broker forgets it */
        } else if (a.code >= 0x80) {
            out_remove(s, pp); /* refused by the broker: no PUBREL follows */
            fill_window(s);
        } else {
            (*pp)->state = 2;
            mqtt_enc_ack(&s->wbuf, MQTT_PUBREL, a.mid);
        }
        break;
    case MQTT_PUBREL:
        qos2_del(s, a.mid);
        mqtt_enc_ack(&s->wbuf, MQTT_PUBCOMP, a.mid);
        break;
    case MQTT_UNSUBACK:
        break;
    case MQTT_DISCONNECT:
        reason_suffix(rs, sizeof rs, &a.props);
        snprintf(t, sizeof t, "the broker disconnected: %s%s", mqtt_reason_text(a.code), rs);
        drop(s, t, 0);
        break;
    default: /* AUTH: no enhanced authentication was asked for */
        drop(s, "protocol error: AUTH without an authentication method", 1);
    }
}

static void on_suback(mqtt_session *s, const mqtt_frame *f) {
    const char *why = NULL;
    mqtt_suback a;
    if (mqtt_parse_suback(f, s->cfg.version, &a, &why)) {
        drop_malformed(s, "SUBACK", why);
        return;
    }
    for (mqs_sub **pp = &s->subs; *pp; pp = &(*pp)->next) {
        mqs_sub *u = *pp;
        if (u->mid != a.mid) continue;
        *pp = u->next;
        if (s->cb.on_suback) s->cb.on_suback(s->cb.ud, u->filter, a.codes[0]);
        free(u);
        return;
    }
}

/* One packet; returns 1 when it was a delivered PUBLISH. */
static int handle(mqtt_session *s, const mqtt_frame *f) {
    if (s->state == MQS_CONNACK && f->type != MQTT_CONNACK && f->type != MQTT_AUTH &&
        f->type != MQTT_DISCONNECT) {
        drop(s, "protocol error: a packet before CONNACK", 1);
        return 0;
    }
    switch (f->type) {
    case MQTT_CONNACK:
        on_connack(s, f);
        return 0;
    case MQTT_PUBLISH:
        return on_publish(s, f);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        on_ack(s, f);
        return 0;
    case MQTT_SUBACK:
        on_suback(s, f);
        return 0;
    case MQTT_PINGRESP:
        if (f->len || f->flags) {
            drop(s, "malformed PINGRESP", 1);
            return 0;
        }
        s->ping_sent = 0;
        return 0;
    default: {
        char t[100];
        snprintf(t, sizeof t, "protocol error: unexpected packet type %d from the broker", f->type);
        drop(s, t, 1);
        return 0;
    }
    }
}

int mqtt_session_process(mqtt_session *s, int64_t now) {
    int delivered = 0;
    while (!s->paused && s->state >= MQS_CONNACK && s->rpos < s->rlen) {
        mqtt_frame f;
        size_t need;
        const char *why = NULL;
        int r = mqtt_frame_next(s->rbuf + s->rpos, s->rlen - s->rpos, &f, &need, &why);
        if (r < 0) {
            drop_malformed(s, "packet", why);
            break;
        }
        if (r == 0) {
            if (need > s->cfg.max_packet) {
                char t[200];
                snprintf(t, sizeof t, "the broker sent a packet of %zu bytes, more than the limit of %zu",
                         need, s->cfg.max_packet);
                drop(s, t, 1);
            }
            break;
        }
        s->rpos += f.total;
        delivered += handle(s, &f);
    }
    if (s->rpos == s->rlen) {
        s->rpos = s->rlen = 0;
        if (s->rcap > MQS_READ_CHUNK + 1) { /* drained after a large packet: give the buffer back */
            free(s->rbuf);
            s->rbuf = NULL;
            s->rcap = 0;
        }
    }
    (void)now;
    return delivered;
}

/* Room for one read: the unparsed rest moves to the front; the buffer grows for a large packet. */
static int make_room(mqtt_session *s) {
    if (s->rpos) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
    size_t want = MQS_READ_CHUNK;
    mqtt_frame f;
    size_t need = 0;
    const char *why;
    if (s->rlen && mqtt_frame_next(s->rbuf, s->rlen, &f, &need, &why) == 0 && need > want) want = need;
    if (want > s->cfg.max_packet + 5) want = s->cfg.max_packet + 5;
    if (s->rcap < want + 1) { /* one spare byte: NUL after the last payload */
        uint8_t *n = realloc(s->rbuf, want + 1);
        if (!n) return TBGW_ENOMEM;
        s->rbuf = n;
        s->rcap = want + 1;
    }
    return 0;
}

static void read_step(mqtt_session *s, int64_t now) {
    if (make_room(s)) {
        drop(s, "out of memory for the read buffer", 0);
        return;
    }
    size_t avail = s->rcap - 1 - s->rlen;
    if (avail > MQS_READ_CHUNK) avail = MQS_READ_CHUNK;
    if (!avail) return;
    ssize_t n;
    if (s->ssl) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(s->ssl, s->rbuf + s->rlen, (int)avail);
        if (r <= 0) {
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            if (e == SSL_ERROR_ZERO_RETURN) {
                drop(s, "the broker closed the connection", 0);
                return;
            }
            drop_tls(s, "TLS read failed");
            return;
        }
        n = r;
    } else {
        n = read(s->fd, s->rbuf + s->rlen, avail);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            char t[200];
            snprintf(t, sizeof t, "read from the broker failed: %s", strerror(errno));
            drop(s, t, 0);
            return;
        }
        if (n == 0) {
            drop(s, "the broker closed the connection", 0);
            return;
        }
    }
    s->rlen += (size_t)n;
    (void)now;
}

short mqtt_session_events(const mqtt_session *s, int want_read) {
    switch (s->state) {
    case MQS_TCP:
        return POLLOUT;
    case MQS_TLS:
        return (short)s->tls_events;
    case MQS_CONNACK:
    case MQS_UP:
        return (short)((want_read && !s->paused ? POLLIN : 0) | (s->wpos < s->wbuf.len ? POLLOUT : 0));
    default:
        return 0;
    }
}

int mqtt_session_io(mqtt_session *s, short revents, int64_t now) {
    switch (s->state) {
    case MQS_TCP:
        if (revents & (POLLOUT | POLLERR | POLLHUP)) tcp_connected(s, now);
        return 0;
    case MQS_TLS:
        if (revents) tls_step(s, now);
        return 0;
    case MQS_CONNACK:
    case MQS_UP:
        break;
    default:
        return 0;
    }
    int delivered = mqtt_session_process(s, now); /* what a pause left in the buffer goes first */
    if (revents & POLLOUT) mqtt_session_flush(s, now);
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && s->state >= MQS_CONNACK) {
        if (s->paused && (revents & (POLLHUP | POLLERR)) && s->rcap - 1 - s->rlen == 0) {
            drop(s, "the broker closed the connection", 0);
            return delivered;
        }
        read_step(s, now);
        delivered += mqtt_session_process(s, now);
    }
    return delivered;
}

int64_t mqtt_session_due(const mqtt_session *s) {
    if (s->state == MQS_IDLE) return INT64_MAX;
    if (s->state != MQS_UP) return s->deadline;
    if (s->keepalive <= 0) return INT64_MAX;
    int64_t ka = (int64_t)s->keepalive * 1000;
    return s->ping_sent ? s->ping_sent + ka : s->last_out + ka;
}

void mqtt_session_tick(mqtt_session *s, int64_t now) {
    if (s->state == MQS_IDLE) return;
    if (s->state != MQS_UP) {
        if (now >= s->deadline) {
            char t[200];
            snprintf(t, sizeof t, "connecting to %s:%d timed out after %d ms", s->cfg.host, s->cfg.port,
                     s->cfg.connect_timeout_ms);
            drop(s, t, 0);
        }
        return;
    }
    if (s->keepalive <= 0) return;
    int64_t ka = (int64_t)s->keepalive * 1000;
    if (s->ping_sent) {
        if (now - s->ping_sent >= ka) drop(s, "keep-alive timeout: no PINGRESP from the broker", 0);
        return;
    }
    if (now - s->last_out >= ka) {
        mqtt_enc_pingreq(&s->wbuf);
        s->ping_sent = now;
        mqtt_session_flush(s, now);
    }
}
