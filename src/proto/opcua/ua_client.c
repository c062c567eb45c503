/* OPC UA client: transport, secure channel, session (with its security checks and user identity
 * tokens), publish loop. */
#include "proto/opcua/ua_internal.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <unistd.h>

#include "proto/opcua/ua_secure.h"
#include "util/time.h"

#define UA_RECV_BUF        65536u
#define UA_MAX_MSG         (16u * 1024u * 1024u)
#define UA_CHANNEL_LIFE_MS 600000u
#define UA_MAX_PUBLISH     4
#define UA_MAX_ACKS        64

struct tbgw_ua_client {
    tbgw_ua_client_cfg cfg;
    char *url, *app_uri, *username, *password;
    char *policy, *cert_path, *key_path, *ca_path, *crl_path;
    char *user_cert_path, *user_key_path;
    tbgw_ua_sec *sec;      /* NULL for SecurityPolicy None */
    tbgw_ua_sec *user_sec; /* the X509 user identity's certificate and key (loaded on connect) */
    int user_token;        /* TBGW_UA_TOKEN_* */
    const char *identity;  /* the identity token of the last ActivateSession */
    int secure;            /* the current channel is secured with sec */
    int app_uri_given;
    tbgw_logger *log;
    int fd;
    int session_ok;
    int closing;
    tbgw_buf rx;
    tbgw_ua_assembler as;
    uint32_t send_buf, max_msg, max_chunks;
    uint32_t channel_id, token_id, seq, next_rid, req_handle;
    int64_t renew_at;
    tbgw_ua_nodeid auth_token;
    tbgw_buf server_nonce, server_cert;
    char *user_policy_id, *user_policy_uri, *anon_policy_id, *x509_policy_id, *x509_policy_uri;
    int x509_offered;
    uint8_t client_nonce[32];
    /* publishing */
    uint32_t n_subs;
    uint32_t pub_rids[UA_MAX_PUBLISH];
    unsigned n_pub, pub_target;
    struct {
        uint32_t sub, seq;
    } acks[UA_MAX_ACKS];
    unsigned n_acks;
    struct {
        uint32_t sub, last;
    } seqs[8]; /* last notification sequence number per subscription */
    unsigned n_seqs;
    struct {
        uint32_t sub, seq;
    } missing[16]; /* gaps to fetch with Republish */
    unsigned n_missing;
    int drop_publish; /* test hook: notifications to treat as lost */
    int64_t last_pub_ms, keepalive_ms, last_activity_ms;
    int wake_fd; /* tbgw_ua_client_set_wake_fd; -1 = none */
    int in_poll; /* inside tbgw_ua_client_poll: wake_fd readable ends the wait */
    uint32_t last_status;
    char last_error[256];
    uint64_t bytes_in;
};

static char *dupstr(const char *s) {
    return s ? strdup(s) : NULL;
}

int tbgw_ua_client_fail(tbgw_ua_client *c, int code, uint32_t status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    c->last_status = status;
    return code;
}

tbgw_logger *tbgw_ua_client_log(tbgw_ua_client *c) {
    return c->log;
}

uint32_t tbgw_ua_client_last_status(const tbgw_ua_client *c) {
    return c->last_status;
}

const char *tbgw_ua_client_last_error(const tbgw_ua_client *c) {
    return c->last_error;
}

uint64_t tbgw_ua_client_bytes_received(const tbgw_ua_client *c) {
    return c->bytes_in;
}

uint32_t tbgw_ua_client_token_id(const tbgw_ua_client *c) {
    return c->token_id;
}

int tbgw_ua_client_connected(const tbgw_ua_client *c) {
    return c->fd >= 0 && c->session_ok;
}

tbgw_ua_client *tbgw_ua_client_new(const tbgw_ua_client_cfg *cfg) {
    tbgw_ua_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cfg;
    c->wake_fd = -1;
    c->url = dupstr(cfg->url);
    c->app_uri = dupstr(cfg->app_uri ? cfg->app_uri : "urn:tbgw:client");
    c->username = dupstr(cfg->username);
    c->password = dupstr(cfg->password ? cfg->password : "");
    int want_sec = cfg->security_policy && strcmp(cfg->security_policy, "None") != 0 &&
                   strcmp(cfg->security_policy, TBGW_UA_POLICY_NONE) != 0;
    if (want_sec) {
        c->policy = dupstr(cfg->security_policy);
        c->cert_path = dupstr(cfg->cert_path);
        c->key_path = dupstr(cfg->key_path);
        c->ca_path = dupstr(cfg->ca_path);
        c->crl_path = dupstr(cfg->crl_path);
    }
    c->user_cert_path = dupstr(cfg->user_cert_path);
    c->user_key_path = dupstr(cfg->user_key_path);
    c->user_token = cfg->user_token;
    c->identity = "anonymous";
    c->app_uri_given = cfg->app_uri != NULL;
    if (!c->url || !c->app_uri || (cfg->username && !c->username) || !c->password ||
        (want_sec && !c->policy) || (cfg->user_cert_path && !c->user_cert_path) ||
        (cfg->user_key_path && !c->user_key_path)) {
        tbgw_ua_client_free(c);
        return NULL;
    }
    c->log = cfg->log ? cfg->log : tbgw_logger_get("opcua");
    if (c->cfg.timeout_ms <= 0) c->cfg.timeout_ms = 4000;
    if (c->cfg.session_timeout_ms <= 0) c->cfg.session_timeout_ms = 120000;
    c->fd = -1;
    tbgw_buf_init(&c->rx);
    tbgw_buf_init(&c->server_nonce);
    tbgw_buf_init(&c->server_cert);
    tbgw_ua_asm_init(&c->as, UA_MAX_MSG, 0);
    c->auth_token = tbgw_ua_nodeid_num(0, 0);
    return c;
}

static void reset_state(tbgw_ua_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->session_ok = 0;
    tbgw_buf_reset(&c->rx);
    tbgw_ua_asm_free(&c->as);
    tbgw_ua_asm_init(&c->as, UA_MAX_MSG, 0);
    tbgw_ua_nodeid_clear(&c->auth_token);
    tbgw_buf_reset(&c->server_nonce);
    tbgw_buf_reset(&c->server_cert);
    free(c->user_policy_id);
    free(c->user_policy_uri);
    free(c->anon_policy_id);
    free(c->x509_policy_id);
    free(c->x509_policy_uri);
    c->user_policy_id = c->user_policy_uri = c->anon_policy_id = c->x509_policy_id = c->x509_policy_uri =
        NULL;
    c->x509_offered = 0;
    c->n_subs = 0;
    c->n_pub = 0;
    c->n_acks = 0;
    c->n_seqs = 0;
    c->n_missing = 0;
    c->keepalive_ms = 0;
}

void tbgw_ua_client_free(tbgw_ua_client *c) {
    if (!c) return;
    if (c->fd >= 0) tbgw_ua_client_disconnect(c);
    reset_state(c);
    tbgw_ua_asm_free(&c->as);
    tbgw_buf_free(&c->rx);
    tbgw_buf_free(&c->server_nonce);
    tbgw_buf_free(&c->server_cert);
    free(c->url);
    free(c->app_uri);
    free(c->username);
    free(c->password);
    free(c->policy);
    free(c->cert_path);
    free(c->key_path);
    free(c->ca_path);
    free(c->crl_path);
    free(c->user_cert_path);
    free(c->user_key_path);
    tbgw_ua_sec_free(c->sec);
    tbgw_ua_sec_free(c->user_sec);
    free(c);
}

/* ------------------------------------------------------------------ socket */

static int parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap) {
    const char *p = url;
    if (strncmp(p, "opc.tcp://", 10) != 0) return TBGW_EINVAL;
    p += 10;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) return TBGW_EINVAL;
        if ((size_t)(rb - p - 1) >= hcap) return TBGW_EINVAL;
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = 0;
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        const char *hend = colon ? colon : end;
        if (hend == p || (size_t)(hend - p) >= hcap) return TBGW_EINVAL;
        memcpy(host, p, (size_t)(hend - p));
        host[hend - p] = 0;
    }
    if (colon) {
        size_t n = (size_t)(end - colon - 1);
        if (n == 0 || n >= pcap) return TBGW_EINVAL;
        memcpy(port, colon + 1, n);
        port[n] = 0;
    } else {
        snprintf(port, pcap, "4840");
    }
    return 0;
}

static int tcp_connect(tbgw_ua_client *c) {
    char host[256], port[16];
    if (parse_url(c->url, host, sizeof host, port, sizeof port))
        return tbgw_ua_client_fail(c, TBGW_EINVAL, 0, "invalid url %s", c->url);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) return tbgw_ua_client_fail(c, TBGW_EIO, 0, "cannot resolve %s: %s", host, gai_strerror(gai));
    int rc = TBGW_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            tbgw_ua_client_fail(c, TBGW_EIO, 0, "connect to %s:%s: %s", host, port, strerror(errno));
            close(fd);
            continue;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&pfd, 1, c->cfg.timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ||
            soerr) {
            tbgw_ua_client_fail(c, TBGW_EIO, 0, "connect to %s:%s: %s", host, port,
                                soerr ? strerror(soerr) : "timed out");
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(tbgw_ua_client *c, const void *p, size_t n) {
    const uint8_t *q = p;
    int64_t deadline = tbgw_mono_ms() + c->cfg.timeout_ms;
    if (c->log->level <= TBGW_TRACE && n >= 8) TBGW_TRACEF(c->log, "send %.4s %zu bytes", (const char *)p, n);
    while (n > 0) {
        ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL);
        if (w > 0) {
            q += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = (int)(deadline - tbgw_mono_ms());
            struct pollfd pfd = {c->fd, POLLOUT, 0};
            if (left > 0 && poll(&pfd, 1, left) >= 0) continue;
            return tbgw_ua_client_fail(c, TBGW_ETIMEDOUT, 0, "send timed out");
        }
        return tbgw_ua_client_fail(c, TBGW_EIO, 0, "send: %s", strerror(errno));
    }
    return 0;
}

/* Reads one complete frame into the front of c->rx. Returns its size, 0 on timeout, <0 on error. */
static int64_t read_frame(tbgw_ua_client *c, int64_t deadline) {
    for (;;) {
        int64_t fs = tbgw_ua_frame_size((const uint8_t *)c->rx.p, c->rx.len, UA_RECV_BUF);
        if (fs < 0 && fs != TBGW_EAGAIN)
            return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed frame header from server");
        if (fs > 0 && (size_t)fs <= c->rx.len) return fs;
        if (tbgw_buf_reserve(&c->rx, 65536)) return tbgw_ua_client_fail(c, TBGW_ENOMEM, 0, "out of memory");
        ssize_t r = recv(c->fd, c->rx.p + c->rx.len, c->rx.cap - c->rx.len - 1, 0);
        if (r > 0) {
            c->rx.len += (size_t)r;
            c->bytes_in += (uint64_t)r;
            continue;
        }
        if (r == 0) return tbgw_ua_client_fail(c, TBGW_EIO, 0x80AE0000u, "connection closed by server");
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return tbgw_ua_client_fail(c, TBGW_EIO, 0, "recv: %s", strerror(errno));
        int left = (int)(deadline - tbgw_mono_ms());
        if (left <= 0) return 0;
        struct pollfd pfd[2] = {{c->fd, POLLIN, 0}, {c->wake_fd, POLLIN, 0}};
        int pr = poll(pfd, c->in_poll && c->wake_fd >= 0 ? 2 : 1, left);
        if (pr == 0) return 0;
        if (pr > 0 && !pfd[0].revents) return 0; /* woken: the caller has other work */
        if (pr < 0 && errno != EINTR) return tbgw_ua_client_fail(c, TBGW_EIO, 0, "poll: %s", strerror(errno));
    }
}

static void consume_frame(tbgw_ua_client *c, size_t n) {
    memmove(c->rx.p, c->rx.p + n, c->rx.len - n);
    c->rx.len -= n;
}

/* Receives until one message completes. Returns 1 (message in out, *rid set), 2 (the server aborted
 * message *rid), 0 on timeout, <0 on error. */
static int recv_message(tbgw_ua_client *c, int64_t deadline, tbgw_buf *out, uint32_t *rid) {
    for (;;) {
        int64_t fs = read_frame(c, deadline);
        if (fs <= 0) return (int)fs;
        tbgw_ua_chunk ch;
        int rc = tbgw_ua_chunk_parse((const uint8_t *)c->rx.p, (size_t)fs, &ch);
        if (rc) {
            consume_frame(c, (size_t)fs);
            return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed chunk from server");
        }
        if (strcmp(ch.type, "ERR") == 0) {
            uint32_t st = 0;
            char reason[128];
            tbgw_ua_err_decode(ch.body, ch.body_len, &st, reason, sizeof reason);
            consume_frame(c, (size_t)fs);
            char nb[16];
            return tbgw_ua_client_fail(c, TBGW_EIO, st, "server error %s: %s", tbgw_ua_status_name(st, nb),
                                       reason);
        }
        if (strcmp(ch.type, "ACK") == 0) {
            tbgw_ua_ack ack;
            rc = tbgw_ua_ack_decode(ch.body, ch.body_len, &ack);
            consume_frame(c, (size_t)fs);
            if (rc) return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed ACK");
            c->send_buf = ack.recv_buf; /* what the server can receive is our send chunk size */
            c->max_msg = ack.max_msg;
            c->max_chunks = ack.max_chunks;
            *rid = 0;
            return 1;
        }
        if (strcmp(ch.type, "MSG") && strcmp(ch.type, "OPN") && strcmp(ch.type, "CLO")) {
            consume_frame(c, (size_t)fs);
            return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "unexpected %s message", ch.type);
        }
        if (strcmp(ch.type, "OPN") != 0 && ch.channel_id != c->channel_id) {
            consume_frame(c, (size_t)fs);
            return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "message for another secure channel");
        }
        if (c->secure && tbgw_ua_sec_decode(c->sec, (const uint8_t *)c->rx.p, (size_t)fs, &ch) != 0) {
            consume_frame(c, (size_t)fs);
            return tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80130000u, "%s chunk failed the security checks",
                                       ch.type);
        }
        const uint8_t *msg;
        size_t len;
        rc = tbgw_ua_asm_feed(&c->as, &ch, &msg, &len, rid);
        if (rc == 1 || rc == 2) {
            tbgw_buf_reset(out);
            tbgw_buf_append(out, msg, len);
        }
        consume_frame(c, (size_t)fs);
        if (rc < 0) return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "message exceeds limits");
        if (rc > 0) {
            c->last_activity_ms = tbgw_mono_ms();
            return out->oom ? TBGW_ENOMEM : rc;
        }
    }
}

/* ------------------------------------------------------------------ requests */

void tbgw_ua_req_begin(tbgw_ua_client *c, tbgw_buf *b, uint32_t type_id) {
    tbgw_ua_nodeid t = tbgw_ua_nodeid_num(0, type_id);
    tbgw_ua_enc_nodeid(b, &t);
    tbgw_ua_enc_nodeid(b, &c->auth_token);
    tbgw_ua_enc_i64(b, tbgw_ua_datetime_now());
    tbgw_ua_enc_u32(b, ++c->req_handle);
    tbgw_ua_enc_u32(b, 0);     /* returnDiagnostics */
    tbgw_ua_enc_cstr(b, NULL); /* auditEntryId */
    tbgw_ua_enc_u32(b, type_id == UA_ID_PUBLISH_REQ ? 0 : (uint32_t)c->cfg.timeout_ms);
    tbgw_ua_enc_nodeid(b,
                       &(tbgw_ua_nodeid){0, TBGW_UA_ID_NUMERIC, 0, {-1, NULL}, {0}}); /* additionalHeader */
    tbgw_ua_enc_u8(b, 0);
}

static int send_msg(tbgw_ua_client *c, const char *type, const tbgw_buf *body, uint32_t *rid) {
    if (body->oom) return tbgw_ua_client_fail(c, TBGW_ENOMEM, 0, "out of memory");
    if (c->max_msg && body->len > c->max_msg)
        return tbgw_ua_client_fail(c, TBGW_EINVAL, 0x80B80000u, "request too large for the server");
    tbgw_buf out;
    tbgw_buf_init(&out);
    *rid = ++c->next_rid;
    int rc = c->secure
                 ? tbgw_ua_sec_encode_msg(c->sec, &out, type, c->channel_id, c->token_id, &c->seq, *rid,
                                          (const uint8_t *)body->p, body->len, c->send_buf, c->max_chunks)
                 : tbgw_ua_chunk_split(&out, type, c->channel_id, c->token_id, &c->seq, *rid,
                                       (const uint8_t *)body->p, body->len, c->send_buf, c->max_chunks);
    if (rc == 0)
        rc = send_all(c, out.p, out.len);
    else
        tbgw_ua_client_fail(c, rc, 0, "cannot chunk request");
    tbgw_buf_free(&out);
    return rc;
}

/* Reads the type id and ResponseHeader; Bad results and ServiceFaults become TBGW_EPROTO. */
static int read_response_header(tbgw_ua_client *c, tbgw_ua_dec *d, uint32_t want_type) {
    tbgw_ua_nodeid t;
    if (tbgw_ua_dec_nodeid(d, &t)) return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed response");
    uint32_t type = t.type == TBGW_UA_ID_NUMERIC && t.ns == 0 ? t.num : 0;
    tbgw_ua_nodeid_clear(&t);
    tbgw_ua_dec_i64(d); /* timestamp */
    tbgw_ua_dec_u32(d); /* requestHandle */
    uint32_t result = tbgw_ua_dec_u32(d);
    tbgw_ua_diag di;
    if (tbgw_ua_dec_diag(d, &di) == 0) tbgw_ua_diag_clear(&di);
    tbgw_ua_dec_skip_strings(d);
    tbgw_ua_extobj eo;
    if (tbgw_ua_dec_extobj(d, &eo) == 0) tbgw_ua_extobj_clear(&eo);
    if (d->err) return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed response header");
    char nb[16];
    if (type == UA_ID_SERVICE_FAULT || UA_BAD(result)) {
        if (!UA_BAD(result)) result = 0x80010000u;
        return tbgw_ua_client_fail(c, TBGW_EPROTO, result, "service failed: %s",
                                   tbgw_ua_status_name(result, nb));
    }
    if (type != want_type) return tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "unexpected response type %u", type);
    return 0;
}

static void handle_publish(tbgw_ua_client *c, const tbgw_buf *msg);

static int is_publish_rid(tbgw_ua_client *c, uint32_t rid) {
    for (unsigned i = 0; i < c->n_pub; i++) {
        if (c->pub_rids[i] == rid) {
            c->pub_rids[i] = c->pub_rids[--c->n_pub];
            return 1;
        }
    }
    return 0;
}

/* Waits for the response to rid, dispatching publish responses that arrive meanwhile. */
static int wait_response(tbgw_ua_client *c, uint32_t rid, tbgw_buf *resp) {
    int64_t deadline = tbgw_mono_ms() + c->cfg.timeout_ms;
    for (;;) {
        uint32_t got = 0;
        int rc = recv_message(c, deadline, resp, &got);
        if (rc == 0) return tbgw_ua_client_fail(c, TBGW_ETIMEDOUT, 0x800A0000u, "request timed out");
        if (rc < 0) return rc;
        if (rc == 2) {
            if (got == rid) {
                uint32_t st = 0;
                tbgw_ua_err_decode((const uint8_t *)resp->p, resp->len, &st, NULL, 0);
                return tbgw_ua_client_fail(c, TBGW_EPROTO, st, "server aborted the response");
            }
            is_publish_rid(c, got);
            continue;
        }
        if (got == rid) return 0;
        if (is_publish_rid(c, got)) handle_publish(c, resp);
        /* else: a late response to a request that timed out earlier; dropped */
    }
}

static void drop_connection(tbgw_ua_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->session_ok = 0;
}

int tbgw_ua_req_call(tbgw_ua_client *c, tbgw_buf *b, uint32_t resp_type, tbgw_buf *resp, tbgw_ua_dec *d) {
    if (c->fd < 0) return tbgw_ua_client_fail(c, TBGW_EIO, 0x80AE0000u, "not connected");
    uint32_t rid;
    int rc = send_msg(c, "MSG", b, &rid);
    if (rc == 0) rc = wait_response(c, rid, resp);
    if (rc == 0) {
        tbgw_ua_dec_init(d, resp->p, resp->len);
        rc = read_response_header(c, d, resp_type);
        /* session-level failures end the session: the caller reconnects */
        uint32_t st = c->last_status & 0xFFFF0000u;
        if (rc && (st == 0x80250000u || st == 0x80260000u || st == 0x80270000u || st == 0x80220000u))
            drop_connection(c);
        return rc;
    }
    if (rc == TBGW_EIO || rc == TBGW_ETIMEDOUT || rc == TBGW_EPROTO || rc == TBGW_ENOMEM) drop_connection(c);
    return rc;
}

/* ------------------------------------------------------------------ secure channel */

static int open_channel(tbgw_ua_client *c, int renew) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_OPN_REQ);
    tbgw_ua_enc_u32(&b, 0);               /* clientProtocolVersion */
    tbgw_ua_enc_u32(&b, renew ? 1u : 0u); /* requestType */
    const uint8_t *nonce = NULL;
    size_t nonce_len = 0;
    int rc = c->secure ? tbgw_ua_sec_new_nonce(c->sec, &nonce, &nonce_len) : 0;
    tbgw_ua_enc_u32(&b, c->secure ? (uint32_t)tbgw_ua_sec_mode(c->sec) : 1u); /* securityMode */
    tbgw_ua_enc_raw_bytes(&b, nonce, (int32_t)nonce_len);                     /* clientNonce */
    tbgw_ua_enc_u32(&b, c->cfg.channel_lifetime_ms ? c->cfg.channel_lifetime_ms : UA_CHANNEL_LIFE_MS);
    tbgw_buf out;
    tbgw_buf_init(&out);
    uint32_t rid = ++c->next_rid;
    if (rc == 0 && c->secure)
        rc = tbgw_ua_sec_encode_opn(c->sec, &out, c->channel_id, c->seq++, rid, (const uint8_t *)b.p, b.len);
    else if (rc == 0)
        rc = tbgw_ua_chunk_opn(&out, c->channel_id, TBGW_UA_POLICY_NONE, &c->seq, rid, (const uint8_t *)b.p,
                               b.len);
    if (rc == 0) rc = send_all(c, out.p, out.len);
    if (rc == 0) rc = wait_response(c, rid, &resp);
    if (rc == 0) {
        tbgw_ua_dec d;
        tbgw_ua_dec_init(&d, resp.p, resp.len);
        rc = read_response_header(c, &d, UA_ID_OPN_RESP);
        if (rc == 0) {
            tbgw_ua_dec_u32(&d); /* serverProtocolVersion */
            uint32_t ch = tbgw_ua_dec_u32(&d);
            uint32_t tok = tbgw_ua_dec_u32(&d);
            tbgw_ua_dec_i64(&d);
            uint32_t life = tbgw_ua_dec_u32(&d);
            tbgw_ua_bytes sn;
            if (tbgw_ua_dec_bytes(&d, &sn) == 0) {
                if (c->secure && tbgw_ua_sec_derive(c->sec, tok, sn.data, sn.len > 0 ? (size_t)sn.len : 0))
                    rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80130000u, "bad server nonce");
                tbgw_ua_bytes_clear(&sn);
            }
            if (rc) {
                /* reported above */
            } else if (d.err) {
                rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed OpenSecureChannel response");
            } else {
                c->channel_id = ch;
                c->token_id = tok;
                if (life < 1000) life = 1000;
                c->renew_at = tbgw_mono_ms() + (int64_t)life * 3 / 4; /* renewed before it expires */
                TBGW_DEBUGF(c->log, "secure channel %u token %u lifetime %u ms", ch, tok, life);
            }
        }
    }
    tbgw_buf_free(&out);
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

static int hello(tbgw_ua_client *c) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_hello h = {0, UA_RECV_BUF, UA_RECV_BUF, UA_MAX_MSG, 0, c->url};
    tbgw_ua_hello_encode(&b, &h);
    int rc = b.oom ? TBGW_ENOMEM : send_all(c, b.p, b.len);
    uint32_t rid;
    if (rc == 0) {
        rc = recv_message(c, tbgw_mono_ms() + c->cfg.timeout_ms, &resp, &rid);
        if (rc == 0)
            rc = tbgw_ua_client_fail(c, TBGW_ETIMEDOUT, 0, "no ACK from server");
        else if (rc > 0)
            rc = 0;
    }
    if (rc == 0 && c->send_buf == 0) rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "expected ACK");
    if (rc == 0 && c->send_buf > UA_RECV_BUF) c->send_buf = UA_RECV_BUF;
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

/* ------------------------------------------------------------------ session */

static void enc_app_description(tbgw_ua_client *c, tbgw_buf *b) {
    tbgw_ua_enc_cstr(b, c->app_uri);
    tbgw_ua_enc_cstr(b, "urn:tbgw");
    tbgw_ua_ltext name = {{-1, NULL}, {4, (uint8_t *)"tbgw"}};
    tbgw_ua_enc_ltext(b, &name);
    tbgw_ua_enc_u32(b, 1);     /* Client */
    tbgw_ua_enc_cstr(b, NULL); /* gatewayServerUri */
    tbgw_ua_enc_cstr(b, NULL); /* discoveryProfileUri */
    tbgw_ua_enc_i32(b, 0);     /* discoveryUrls */
}

static int get_endpoints(tbgw_ua_client *c) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_GET_ENDPOINTS_REQ);
    tbgw_ua_enc_cstr(&b, c->url);
    tbgw_ua_enc_i32(&b, 0);
    tbgw_ua_enc_i32(&b, 0);
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_GET_ENDPOINTS_RESP, &resp, &d);
    if (rc == 0) {
        tbgw_ua_endpoint_pick p;
        memset(&p, 0, sizeof p);
        tbgw_buf_init(&p.server_cert);
        p.want_policy = c->sec ? tbgw_ua_policy_uri(tbgw_ua_sec_policy(c->sec)) : TBGW_UA_POLICY_NONE;
        p.want_mode = c->sec ? (uint32_t)tbgw_ua_sec_mode(c->sec) : 1u;
        if (tbgw_ua_endpoints_decode(&d, &p)) {
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed GetEndpoints response");
        } else {
            tbgw_buf_reset(&c->server_cert);
            tbgw_buf_append(&c->server_cert, p.server_cert.p, p.server_cert.len);
            c->anon_policy_id = p.anon_id;
            c->user_policy_id = p.user_id;
            c->user_policy_uri = p.user_uri;
            c->x509_policy_id = p.x509_id;
            c->x509_policy_uri = p.x509_uri;
            c->x509_offered = p.x509_offered;
            p.anon_id = p.user_id = p.user_uri = p.x509_id = p.x509_uri = NULL;
            if (c->server_cert.oom) rc = tbgw_ua_client_fail(c, TBGW_ENOMEM, 0, "out of memory");
        }
        tbgw_ua_endpoint_pick_clear(&p);
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

/* The checks of a CreateSession response on a secured channel (Part 4 §5.6.2): the server
 * certificate is the one the channel was opened with, the nonce is long enough, and the server
 * proved possession of its key by signing our certificate and nonce. */
static int check_session_security(tbgw_ua_client *c, const tbgw_ua_session_resp *r) {
    size_t chan_len = 0;
    const uint8_t *chan = tbgw_ua_sec_server_cert(c->sec, &chan_len);
    size_t got_len = r->cert.len > 0 ? tbgw_ua_cert_leaf_len(r->cert.data, (size_t)r->cert.len) : 0;
    if (got_len != chan_len || memcmp(r->cert.data, chan, chan_len) != 0)
        return tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80120000u,
                                   "CreateSession: the server certificate in the response is not the one of "
                                   "the endpoint the secure channel was opened with");
    if (r->nonce.len < 32)
        return tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80240000u,
                                   "CreateSession: the server nonce has %d bytes, at least 32 are required",
                                   r->nonce.len < 0 ? 0 : r->nonce.len);
    size_t cert_len = 0;
    const uint8_t *cert = tbgw_ua_sec_cert(c->sec, &cert_len);
    const char *alg = r->sig_alg.len > 0 ? (const char *)r->sig_alg.data : NULL;
    const uint8_t *sig = r->sig.len > 0 ? r->sig.data : NULL;
    size_t sl = r->sig.len > 0 ? (size_t)r->sig.len : 0;
    tbgw_err e = {0};
    /* over the certificate as sent (with its chain) or, as Part 4 1.05 says, its leaf only */
    int rc = tbgw_ua_sec_verify_server(c->sec, cert, cert_len, c->client_nonce, sizeof c->client_nonce, alg,
                                       sig, sl, &e);
    size_t leaf = tbgw_ua_sec_cert_leaf_len(c->sec);
    if (rc && leaf && leaf < cert_len)
        rc = tbgw_ua_sec_verify_server(c->sec, cert, leaf, c->client_nonce, sizeof c->client_nonce, alg, sig,
                                       sl, &e);
    if (rc)
        return tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80580000u, "CreateSession: invalid server signature: %s",
                                   e.msg);
    return 0;
}

static int create_session(tbgw_ua_client *c) {
    if (tbgw_ua_random(c->client_nonce, sizeof c->client_nonce))
        return tbgw_ua_client_fail(c, TBGW_EIO, 0, "no random numbers for the session nonce");
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_CREATE_SESSION_REQ);
    enc_app_description(c, &b);
    tbgw_ua_enc_cstr(&b, NULL); /* serverUri */
    tbgw_ua_enc_cstr(&b, c->url);
    tbgw_ua_enc_cstr(&b, "tbgw session");
    tbgw_ua_enc_raw_bytes(&b, c->client_nonce, sizeof c->client_nonce);
    size_t cert_len = 0;
    const uint8_t *cert = c->secure ? tbgw_ua_sec_cert(c->sec, &cert_len) : NULL;
    tbgw_ua_enc_raw_bytes(&b, cert, cert ? (int32_t)cert_len : -1); /* clientCertificate */
    tbgw_ua_enc_double(&b, c->cfg.session_timeout_ms);
    tbgw_ua_enc_u32(&b, UA_MAX_MSG);
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_CREATE_SESSION_RESP, &resp, &d);
    if (rc == 0) {
        tbgw_ua_session_resp r;
        if (tbgw_ua_create_session_decode(&d, &r)) {
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed CreateSession response");
        } else {
            tbgw_ua_nodeid_clear(&c->auth_token);
            c->auth_token = r.auth_token;
            r.auth_token = tbgw_ua_nodeid_num(0, 0);
            tbgw_buf_reset(&c->server_nonce);
            if (r.nonce.len > 0) tbgw_buf_append(&c->server_nonce, r.nonce.data, (size_t)r.nonce.len);
            /* an unsecured channel: the certificate an X509 identity signs for comes from here when the
             * endpoint carried none */
            if (c->server_cert.len == 0 && r.cert.len > 0)
                tbgw_buf_append(&c->server_cert, r.cert.data, (size_t)r.cert.len);
            if (c->secure) rc = check_session_security(c, &r);
        }
        tbgw_ua_session_resp_clear(&r);
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

enum { ID_ANONYMOUS, ID_USERNAME, ID_X509 };

/* Username when one is configured; with a user certificate the X509 token when asked for, or when
 * the endpoint offers no anonymous token but an X509 one; else anonymous. */
static int pick_identity(const tbgw_ua_client *c) {
    if (c->username) return ID_USERNAME;
    if (!c->user_sec) return ID_ANONYMOUS;
    if (c->user_token == TBGW_UA_TOKEN_CERTIFICATE) return ID_X509;
    if (!c->anon_policy_id && c->x509_offered) return ID_X509;
    return ID_ANONYMOUS;
}

static void enc_username(tbgw_ua_client *c, tbgw_buf *body, int *rc) {
    tbgw_ua_enc_cstr(body, c->user_policy_id ? c->user_policy_id : "username");
    tbgw_ua_enc_cstr(body, c->username);
    const char *puri = c->user_policy_uri;
    if ((!puri || !*puri) && c->secure) puri = tbgw_ua_policy_uri(tbgw_ua_sec_policy(c->sec));
    if (puri && *puri && strcmp(puri, TBGW_UA_POLICY_NONE) != 0) {
        tbgw_buf secret;
        tbgw_buf_init(&secret);
        const char *alg = NULL;
        *rc = tbgw_ua_encrypt_secret(puri, (const uint8_t *)c->server_cert.p, c->server_cert.len, c->password,
                                     (const uint8_t *)c->server_nonce.p, c->server_nonce.len, &secret, &alg);
        if (*rc) tbgw_ua_client_fail(c, *rc, 0, "cannot encrypt the password for %s", puri);
        tbgw_ua_enc_raw_bytes(body, secret.p, (int32_t)secret.len);
        tbgw_ua_enc_cstr(body, alg);
        tbgw_buf_free(&secret);
    } else {
        tbgw_ua_enc_raw_bytes(body, c->password, (int32_t)strlen(c->password));
        tbgw_ua_enc_cstr(body, NULL);
    }
}

/* X509IdentityToken (Part 4 §7.36.5) and its userTokenSignature: the user's key signs the server
 * certificate and nonce with the token policy's security policy, or the channel's when it names
 * none. */
static int enc_x509(tbgw_ua_client *c, tbgw_buf *body, tbgw_buf *sig, const char **alg) {
    if (!c->x509_policy_id)
        return tbgw_ua_client_fail(c, TBGW_EINVAL, 0x80210000u,
                                   c->x509_offered
                                       ? "the server's X509 user token policies name no supported "
                                         "security policy"
                                       : "the server endpoint offers no X509 user token");
    const tbgw_ua_policy *pol = NULL;
    const char *puri = c->x509_policy_uri;
    if (puri && *puri && strcmp(puri, TBGW_UA_POLICY_NONE) != 0)
        pol = tbgw_ua_policy_find(puri);
    else if (c->secure)
        pol = tbgw_ua_sec_policy(c->sec);
    if (!pol)
        return tbgw_ua_client_fail(c, TBGW_EINVAL, 0x80550000u,
                                   "no security policy to sign the X509 user token with (%s)",
                                   puri && *puri ? puri : "the channel has none");
    size_t srv_len = 0;
    const uint8_t *srv = NULL;
    if (c->secure) {
        srv = tbgw_ua_sec_server_cert(c->sec, &srv_len);
    } else {
        srv = (const uint8_t *)c->server_cert.p;
        srv_len = tbgw_ua_cert_leaf_len(srv, c->server_cert.len);
    }
    if (!srv || srv_len == 0)
        return tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80120000u,
                                   "the server sent no certificate to sign the X509 user token for");
    size_t cert_len = 0;
    const uint8_t *cert = tbgw_ua_sec_cert(c->user_sec, &cert_len);
    tbgw_ua_enc_cstr(body, c->x509_policy_id);
    tbgw_ua_enc_raw_bytes(body, cert, (int32_t)tbgw_ua_sec_cert_leaf_len(c->user_sec));
    (void)cert_len;
    int rc = tbgw_ua_sec_sign_as(c->user_sec, pol, srv, srv_len, (const uint8_t *)c->server_nonce.p,
                                 c->server_nonce.len, sig, alg);
    if (rc) return tbgw_ua_client_fail(c, rc, 0, "cannot sign the X509 user token");
    return 0;
}

static void enc_identity(tbgw_ua_client *c, tbgw_buf *b, int *rc) {
    tbgw_buf body, sig;
    tbgw_buf_init(&body);
    tbgw_buf_init(&sig);
    const char *alg = NULL;
    uint32_t type_id;
    int id = pick_identity(c);
    if (id == ID_USERNAME) {
        type_id = UA_ID_USERNAME_TOKEN;
        c->identity = "username";
        enc_username(c, &body, rc);
    } else if (id == ID_X509) {
        type_id = UA_ID_X509_TOKEN;
        c->identity = "X509 certificate";
        int r = enc_x509(c, &body, &sig, &alg);
        if (r) *rc = r;
    } else {
        type_id = UA_ID_ANONYMOUS_TOKEN;
        c->identity = "anonymous";
        tbgw_ua_enc_cstr(&body, c->anon_policy_id ? c->anon_policy_id : "anonymous");
    }
    tbgw_ua_nodeid t = tbgw_ua_nodeid_num(0, type_id);
    tbgw_ua_enc_nodeid(b, &t);
    tbgw_ua_enc_u8(b, 1);
    tbgw_ua_enc_raw_bytes(b, body.p, (int32_t)body.len);
    tbgw_ua_enc_cstr(b, alg); /* userTokenSignature */
    tbgw_ua_enc_raw_bytes(b, sig.p, alg ? (int32_t)sig.len : -1);
    tbgw_buf_free(&body);
    tbgw_buf_free(&sig);
}

static int activate_session(tbgw_ua_client *c) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    int rc = 0;
    tbgw_ua_req_begin(c, &b, UA_ID_ACTIVATE_SESSION_REQ);
    if (c->secure) { /* clientSignature over serverCertificate + serverNonce */
        tbgw_buf data, sig;
        tbgw_buf_init(&data);
        tbgw_buf_init(&sig);
        const char *alg = NULL;
        size_t leaf_len = 0;
        const uint8_t *leaf = tbgw_ua_sec_server_cert(c->sec, &leaf_len);
        tbgw_buf_append(&data, leaf, leaf_len);
        tbgw_buf_append(&data, c->server_nonce.p, c->server_nonce.len);
        rc = data.oom ? TBGW_ENOMEM : tbgw_ua_sec_sign(c->sec, (const uint8_t *)data.p, data.len, &sig, &alg);
        tbgw_ua_enc_cstr(&b, alg);
        tbgw_ua_enc_raw_bytes(&b, sig.p, (int32_t)sig.len);
        tbgw_buf_free(&data);
        tbgw_buf_free(&sig);
    } else {
        tbgw_ua_enc_cstr(&b, NULL); /* clientSignature.algorithm */
        tbgw_ua_enc_raw_bytes(&b, NULL, -1);
    }
    tbgw_ua_enc_i32(&b, 0); /* clientSoftwareCertificates */
    tbgw_ua_enc_i32(&b, 0); /* localeIds */
    enc_identity(c, &b, &rc);
    tbgw_ua_dec d;
    if (rc == 0) {
        rc = tbgw_ua_req_call(c, &b, UA_ID_ACTIVATE_SESSION_RESP, &resp, &d);
        if (rc == TBGW_EPROTO && c->last_status) {
            char nb[16], msg[sizeof c->last_error];
            snprintf(msg, sizeof msg, "%s", c->last_error);
            tbgw_ua_client_fail(c, rc, c->last_status, "the server refused the %s identity (%s): %s",
                                c->identity, tbgw_ua_status_name(c->last_status, nb), msg);
        }
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

/* Loads the X509 user identity's certificate and key once. */
static int setup_user_cert(tbgw_ua_client *c, tbgw_err *err) {
    if (!c->user_cert_path || c->user_sec) return 0;
    tbgw_err e2 = {0};
    c->user_sec = tbgw_ua_sec_new(tbgw_ua_policy_find("Basic256Sha256"), TBGW_UA_MODE_NONE, c->user_cert_path,
                                  c->user_key_path, NULL, NULL, &e2);
    if (!c->user_sec) return tbgw_err_set(err, e2.code ? e2.code : TBGW_EINVAL, "user identity: %s", e2.msg);
    return 0;
}

static int setup_security(tbgw_ua_client *c, tbgw_err *err) {
    const tbgw_ua_policy *pol = tbgw_ua_policy_find(c->policy);
    if (!pol)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "unknown security policy %s (expected Basic128Rsa15, Basic256, Basic256Sha256, "
                            "Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss)",
                            c->policy);
    int mode = c->cfg.security_mode == TBGW_UA_MODE_SIGN ? TBGW_UA_MODE_SIGN : TBGW_UA_MODE_SIGN_ENCRYPT;
    tbgw_err e2 = {0};
    c->sec = tbgw_ua_sec_new(pol, mode, c->cert_path, c->key_path, c->ca_path, c->crl_path, &e2);
    if (!c->sec) return tbgw_err_set(err, e2.code ? e2.code : TBGW_EINVAL, "%s", e2.msg);
    const char *uri = tbgw_ua_sec_app_uri(c->sec);
    if (!c->app_uri_given && uri) {
        char *u = strdup(uri);
        if (!u) return TBGW_ENOMEM;
        free(c->app_uri);
        c->app_uri = u;
    }
    return 0;
}

/* After GetEndpoints on an unsecured channel: checks the server certificate, then opens a new
 * connection with a secured channel. */
static int secure_reconnect(tbgw_ua_client *c) {
    const tbgw_ua_policy *pol = tbgw_ua_sec_policy(c->sec);
    if (c->server_cert.len == 0)
        return tbgw_ua_client_fail(c, TBGW_EPROTO, 0x80550000u,
                                   "the server offers no endpoint with %s and mode %s",
                                   tbgw_ua_policy_name(pol),
                                   tbgw_ua_sec_mode(c->sec) == TBGW_UA_MODE_SIGN ? "Sign" : "SignAndEncrypt");
    tbgw_err e2 = {0};
    int rc = tbgw_ua_sec_set_server_cert(c->sec, (const uint8_t *)c->server_cert.p, c->server_cert.len, &e2);
    if (rc) return tbgw_ua_client_fail(c, rc, 0x80120000u, "%s", e2.msg);
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_req_begin(c, &b, UA_ID_CLO_REQ);
    uint32_t rid;
    send_msg(c, "CLO", &b, &rid);
    tbgw_buf_free(&b);
    drop_connection(c);
    tbgw_buf_reset(&c->rx);
    tbgw_ua_asm_free(&c->as);
    tbgw_ua_asm_init(&c->as, UA_MAX_MSG, 0);
    c->channel_id = c->token_id = c->send_buf = 0;
    c->seq = 1;
    rc = tcp_connect(c);
    if (rc == 0) rc = hello(c);
    c->secure = 1;
    if (rc == 0) rc = open_channel(c, 0);
    return rc;
}

int tbgw_ua_client_connect(tbgw_ua_client *c, tbgw_err *err) {
    if (c->fd >= 0) tbgw_ua_client_disconnect(c);
    reset_state(c);
    c->channel_id = 0;
    c->token_id = 0;
    c->send_buf = 0;
    c->seq = 1;
    c->last_status = 0;
    c->last_error[0] = 0;
    c->secure = 0;
    int rc = c->policy && !c->sec ? setup_security(c, err) : 0;
    if (rc == 0) rc = setup_user_cert(c, err);
    if (rc) return rc;
    rc = tcp_connect(c);
    if (rc == 0) rc = hello(c);
    if (rc == 0) rc = open_channel(c, 0);
    if (rc == 0) rc = get_endpoints(c);
    if (rc == 0 && c->sec) rc = secure_reconnect(c);
    if (rc == 0) rc = create_session(c);
    if (rc == 0) rc = activate_session(c);
    if (rc) {
        tbgw_err_set(err, rc, "%s: %s", c->url, c->last_error);
        drop_connection(c);
        return rc;
    }
    c->session_ok = 1;
    c->last_activity_ms = c->last_pub_ms = tbgw_mono_ms();
    TBGW_INFOF(c->log, "connected to %s (channel %u, SecurityPolicy %s%s, %s identity)", c->url,
               c->channel_id, c->secure ? tbgw_ua_policy_name(tbgw_ua_sec_policy(c->sec)) : "None",
               !c->secure                                      ? ""
               : tbgw_ua_sec_mode(c->sec) == TBGW_UA_MODE_SIGN ? " Sign"
                                                               : " SignAndEncrypt",
               c->identity);
    return 0;
}

void tbgw_ua_client_disconnect(tbgw_ua_client *c) {
    if (c->fd >= 0 && c->session_ok) {
        tbgw_buf b, resp;
        tbgw_buf_init(&b);
        tbgw_buf_init(&resp);
        tbgw_ua_req_begin(c, &b, UA_ID_CLOSE_SESSION_REQ);
        tbgw_ua_enc_u8(&b, 1); /* deleteSubscriptions */
        int saved = c->cfg.timeout_ms;
        c->cfg.timeout_ms = saved < 1000 ? saved : 1000;
        c->closing = 1;
        tbgw_ua_dec d;
        tbgw_ua_req_call(c, &b, UA_ID_CLOSE_SESSION_RESP, &resp, &d);
        c->cfg.timeout_ms = saved;
        c->closing = 0;
        if (c->fd >= 0) {
            tbgw_buf_reset(&b);
            tbgw_ua_req_begin(c, &b, UA_ID_CLO_REQ);
            uint32_t rid;
            send_msg(c, "CLO", &b, &rid);
        }
        tbgw_buf_free(&b);
        tbgw_buf_free(&resp);
    }
    drop_connection(c);
}

/* ------------------------------------------------------------------ publishing */

static int send_publish(tbgw_ua_client *c) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_req_begin(c, &b, UA_ID_PUBLISH_REQ);
    tbgw_ua_enc_i32(&b, (int32_t)c->n_acks);
    for (unsigned i = 0; i < c->n_acks; i++) {
        tbgw_ua_enc_u32(&b, c->acks[i].sub);
        tbgw_ua_enc_u32(&b, c->acks[i].seq);
    }
    uint32_t rid;
    int rc = send_msg(c, "MSG", &b, &rid);
    tbgw_buf_free(&b);
    if (rc) return rc;
    c->n_acks = 0;
    c->pub_rids[c->n_pub++] = rid;
    return 0;
}

static void dispatch_data_change(tbgw_ua_client *c, uint32_t sub, const tbgw_ua_extobj *eo) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, eo->body.data, (size_t)(eo->body.len > 0 ? eo->body.len : 0));
    int32_t n = tbgw_ua_dec_count(&d, 5);
    for (int32_t i = 0; i < n && !d.err; i++) {
        uint32_t handle = tbgw_ua_dec_u32(&d);
        tbgw_ua_datavalue dv;
        if (tbgw_ua_dec_datavalue(&d, &dv)) break;
        if (c->cfg.on_data) c->cfg.on_data(c->cfg.ctx, sub, handle, &dv);
        tbgw_ua_datavalue_clear(&dv);
    }
    if (d.err) TBGW_WARNF(c->log, "malformed DataChangeNotification dropped");
}

static int32_t handle_notifications(tbgw_ua_client *c, uint32_t sub, tbgw_ua_dec *d) {
    int32_t n = tbgw_ua_dec_count(d, 3);
    for (int32_t i = 0; i < n && !d->err; i++) {
        tbgw_ua_extobj eo;
        if (tbgw_ua_dec_extobj(d, &eo)) break;
        uint32_t t = eo.type_id.type == TBGW_UA_ID_NUMERIC ? eo.type_id.num : 0;
        if (t == UA_ID_DATA_CHANGE && eo.enc == TBGW_UA_EO_BINARY) {
            dispatch_data_change(c, sub, &eo);
        } else if (t == UA_ID_STATUS_CHANGE && eo.body.len >= 4) {
            tbgw_ua_dec sd;
            tbgw_ua_dec_init(&sd, eo.body.data, (size_t)eo.body.len);
            uint32_t st = tbgw_ua_dec_u32(&sd);
            char nb[16];
            TBGW_WARNF(c->log, "subscription %u status change %s", sub, tbgw_ua_status_name(st, nb));
            if (UA_BAD(st) && c->cfg.on_sub_lost) c->cfg.on_sub_lost(c->cfg.ctx, sub, st);
        }
        tbgw_ua_extobj_clear(&eo);
    }
    return n;
}

/* Notices gaps in a subscription's sequence numbers; the missing messages are fetched with
 * Republish. */
static void track_seq(tbgw_ua_client *c, uint32_t sub, uint32_t seq) {
    unsigned i = 0;
    while (i < c->n_seqs && c->seqs[i].sub != sub) i++;
    if (i == c->n_seqs) {
        if (c->n_seqs == sizeof c->seqs / sizeof c->seqs[0]) return;
        c->seqs[c->n_seqs].sub = sub;
        c->seqs[c->n_seqs++].last = seq;
        return;
    }
    uint32_t last = c->seqs[i].last;
    for (uint32_t s = last + 1; seq > last + 1 && s < seq && c->n_missing < 16; s++) {
        c->missing[c->n_missing].sub = sub;
        c->missing[c->n_missing++].seq = s;
    }
    if (seq > last) c->seqs[i].last = seq;
}

void tbgw_ua_client_test_drop_publish(tbgw_ua_client *c, int n) {
    c->drop_publish = n;
}

static void republish_missing(tbgw_ua_client *c) {
    while (c->n_missing > 0 && c->fd >= 0) {
        uint32_t sub = c->missing[c->n_missing - 1].sub, seq = c->missing[c->n_missing - 1].seq;
        c->n_missing--;
        tbgw_buf b, resp;
        tbgw_buf_init(&b);
        tbgw_buf_init(&resp);
        tbgw_ua_req_begin(c, &b, UA_ID_REPUBLISH_REQ);
        tbgw_ua_enc_u32(&b, sub);
        tbgw_ua_enc_u32(&b, seq);
        tbgw_ua_dec d;
        char nb[16];
        if (tbgw_ua_req_call(c, &b, UA_ID_REPUBLISH_RESP, &resp, &d) == 0) {
            tbgw_ua_dec_u32(&d); /* sequenceNumber */
            tbgw_ua_dec_i64(&d); /* publishTime */
            if (handle_notifications(c, sub, &d) > 0 && c->n_acks < UA_MAX_ACKS) {
                c->acks[c->n_acks].sub = sub;
                c->acks[c->n_acks++].seq = seq;
            }
            TBGW_DEBUGF(c->log, "notification %u of subscription %u republished", seq, sub);
        } else {
            TBGW_WARNF(c->log, "notification %u of subscription %u lost: %s", seq, sub,
                       tbgw_ua_status_name(c->last_status, nb));
        }
        tbgw_buf_free(&b);
        tbgw_buf_free(&resp);
    }
}

static void handle_publish(tbgw_ua_client *c, const tbgw_buf *msg) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, msg->p, msg->len);
    c->last_pub_ms = tbgw_mono_ms();
    if (read_response_header(c, &d, UA_ID_PUBLISH_RESP)) {
        uint32_t st = c->last_status & 0xFFFF0000u;
        if (st == 0x80790000u || st == 0x80780000u) { /* BadNoSubscription, BadTooManyPublishRequests */
            if (c->pub_target > 1) c->pub_target--;
        } else if (st != 0x800A0000u && !c->closing) {
            char nb[16];
            TBGW_WARNF(c->log, "publish failed: %s", tbgw_ua_status_name(c->last_status, nb));
        }
        return;
    }
    uint32_t sub = tbgw_ua_dec_u32(&d);
    int32_t navail = tbgw_ua_dec_count(&d, 4); /* availableSequenceNumbers */
    tbgw_ua_dec_skip(&d, navail > 0 ? (size_t)navail * 4 : 0);
    tbgw_ua_dec_u8(&d); /* moreNotifications */
    uint32_t seq = tbgw_ua_dec_u32(&d);
    tbgw_ua_dec_i64(&d); /* publishTime */
    if (d.err) {
        TBGW_WARNF(c->log, "malformed publish response dropped");
        return;
    }
    (void)navail;
    size_t save = d.pos;
    int32_t nn = tbgw_ua_dec_count(&d, 3);
    d.pos = save;
    if (nn > 0) {
        if (c->drop_publish > 0) { /* as if this response had been lost on the way */
            c->drop_publish--;
            return;
        }
        track_seq(c, sub, seq);
    }
    /* keep-alive messages carry no notifications and nothing to acknowledge */
    if (handle_notifications(c, sub, &d) > 0 && c->n_acks < UA_MAX_ACKS) {
        c->acks[c->n_acks].sub = sub;
        c->acks[c->n_acks].seq = seq;
        c->n_acks++;
    }
}

void tbgw_ua_client_sub_added(tbgw_ua_client *c, int64_t keepalive_ms) {
    c->n_subs++;
    c->pub_target = 2;
    if (keepalive_ms > c->keepalive_ms) c->keepalive_ms = keepalive_ms;
    c->last_pub_ms = tbgw_mono_ms();
}

void tbgw_ua_client_sub_removed(tbgw_ua_client *c) {
    if (c->n_subs) c->n_subs--;
}

static int keep_alive(tbgw_ua_client *c) {
    int64_t now = tbgw_mono_ms();
    if (now >= c->renew_at) {
        int rc = open_channel(c, 1);
        if (rc) {
            drop_connection(c);
            return rc;
        }
    }
    if (c->n_subs > 0) {
        int64_t window = c->keepalive_ms * 3 + c->cfg.timeout_ms;
        if (now - c->last_pub_ms > window) {
            drop_connection(c);
            return tbgw_ua_client_fail(c, TBGW_ETIMEDOUT, 0x800A0000u, "no publish response for %lld ms",
                                       (long long)(now - c->last_pub_ms));
        }
        return 0;
    }
    /* no subscriptions: read the server state now and then so the session stays alive */
    if (now - c->last_activity_ms > (int64_t)(c->cfg.session_timeout_ms / 3)) {
        tbgw_ua_nodeid id = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_SERVER_STATE);
        tbgw_ua_datavalue dv;
        int rc = tbgw_ua_read(c, &id, 1, TBGW_UA_ATTR_VALUE, &dv);
        if (rc) return rc;
        tbgw_ua_datavalue_clear(&dv);
    }
    return 0;
}

void tbgw_ua_client_set_wake_fd(tbgw_ua_client *c, int fd) {
    c->wake_fd = fd;
}

int64_t tbgw_ua_client_next_due(const tbgw_ua_client *c) {
    if (c->fd < 0 || !c->session_ok) return tbgw_mono_ms();
    int64_t due = c->renew_at;
    int64_t own = c->n_subs > 0 ? c->last_pub_ms + c->keepalive_ms * 3 + c->cfg.timeout_ms + 1
                                : c->last_activity_ms + (int64_t)(c->cfg.session_timeout_ms / 3) + 1;
    return own < due ? own : due;
}

int tbgw_ua_client_poll(tbgw_ua_client *c, int timeout_ms) {
    if (c->fd < 0 || !c->session_ok) return tbgw_ua_client_fail(c, TBGW_EIO, 0x80AE0000u, "not connected");
    int rc = keep_alive(c);
    if (rc) return rc;
    while (c->n_subs > 0 && c->n_pub < c->pub_target && c->n_pub < UA_MAX_PUBLISH) {
        rc = send_publish(c);
        if (rc) {
            drop_connection(c);
            return rc;
        }
    }
    int64_t deadline = tbgw_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    tbgw_buf msg;
    tbgw_buf_init(&msg);
    c->in_poll = 1;
    for (;;) {
        uint32_t rid = 0;
        rc = recv_message(c, deadline, &msg, &rid);
        if (rc <= 0) break;
        if (is_publish_rid(c, rid)) {
            if (rc == 1) handle_publish(c, &msg);
            if (c->n_subs > 0 && c->n_pub < c->pub_target && (rc = send_publish(c)) != 0) break;
        }
        int64_t now = tbgw_mono_ms();
        if (now >= deadline) {
            rc = 0;
            break;
        }
        deadline = now; /* something arrived: take what is already readable, then return */
    }
    c->in_poll = 0;
    tbgw_buf_free(&msg);
    if (rc >= 0) republish_missing(c);
    if (rc < 0 || c->fd < 0) {
        drop_connection(c);
        return rc < 0 ? rc : tbgw_ua_client_fail(c, TBGW_EIO, 0x80AE0000u, "connection lost");
    }
    return 0;
}
