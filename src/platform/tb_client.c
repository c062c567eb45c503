#include "platform/tb_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <tbgw/err.h>
#include <tbgw/log.h>

#include "util/backoff.h"
#include "proto/mqtt/mqtt_codec.h"
#include "util/tcp.h"

typedef enum { ST_IDLE, ST_CONNECTING, ST_WAIT_CONNACK, ST_CONNECTED, ST_BACKOFF, ST_STOPPED } cstate;

struct tb_client {
    uv_loop_t *loop;
    const tbgw_config *cfg;
    tb_client_cbs cbs;
    void *ud;
    tbgw_logger *log;
    struct mosquitto *mosq;
    cstate st;
    uv_poll_t *poll;
    int poll_events;
    uv_timer_t misc_timer, retry_timer;
    uv_work_t work;
    int work_rc, work_errno;
    int lost; /* set from callbacks, handled after loop_read/write returns */
    char lost_why[300];
    char last_tls[256];
    tbgw_backoff backoff;
    int server_max_packet, server_receive_max;
    int work_busy; /* a connect runs in the thread pool */
    int64_t connack_deadline;
    int64_t tcp_deadline; /* the TCP handshake (non-blocking connect) must finish by then */
    int tcp_pending;      /* connect() in progress: no SYN-ACK yet */
    unsigned fails;
};

/* A silent host (SYNs dropped) would hold a blocking connect() for the kernel's SYN retries (about
 * two minutes): the TCP connect is non-blocking and given up after this, so an attempt that started
 * while the platform was away never delays the first one after it is back by more than a backoff. */
#define TB_TCP_CONNECT_TIMEOUT_MS 5000
#define TB_CONNACK_TIMEOUT_MS     10000

static void schedule_retry(tb_client *c);
static int tcp_check(tb_client *c);

const char *tb_client_connack_text(int rc, int v5) {
    return mqtt_connack_text(v5 ? MQTT_V5 : MQTT_V311, rc);
}

static int has_outer_space(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

static void credential_hint(tb_client *c, char *out, size_t n) {
    const tbgw_security *s = &c->cfg->sec;
    out[0] = 0;
    switch (s->type) {
    case TBGW_SEC_ACCESS_TOKEN:
    case TBGW_SEC_TLS_ACCESS_TOKEN:
        snprintf(out, n, " — check the gateway access token%s",
                 has_outer_space(s->access_token) ? " (it contains whitespace)" : "");
        break;
    case TBGW_SEC_USERNAME_PASSWORD:
        snprintf(out, n, " — check clientId/username/password of the gateway's MQTT basic credentials%s",
                 has_outer_space(s->username) || has_outer_space(s->password) || has_outer_space(s->client_id)
                     ? " (one of them contains whitespace)"
                     : "");
        break;
    case TBGW_SEC_TLS_PRIVATE_KEY:
        snprintf(out, n, " — check the gateway's X.509 certificate");
        break;
    }
}

static void on_log(struct mosquitto *m, void *ud, int level, const char *str) {
    (void)m;
    tb_client *c = ud;
    if (strstr(str, "OpenSSL") || strstr(str, "TLS") || strstr(str, "certificate"))
        snprintf(c->last_tls, sizeof c->last_tls, "%s", str);
    TBGW_TRACEF(c->log, "mosquitto: %s", str);
    (void)level;
}

static void mark_lost(tb_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mark_lost(tb_client *c, const char *fmt, ...) {
    if (c->lost) return;
    c->lost = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->lost_why, sizeof c->lost_why, fmt, ap);
    va_end(ap);
}

static void subscribe_all(tb_client *c) {
    int q = c->cfg->qos;
    const char *own[] = {"v1/devices/me/attributes", "v1/devices/me/attributes/response/+",
                         "v1/devices/me/rpc/request/+", "v1/devices/me/rpc/response/+"};
    const char *gw[] = {"v1/gateway/attributes", "v1/gateway/attributes/response", "v1/gateway/rpc"};
    /* MQTT 5 "no local": never receive our own client-side RPC requests back from a broker that
     * relays them (ThingsBoard does not, plain brokers do). */
    int opts = c->cfg->mqtt_version == 5 ? MQTT_SUB_OPT_NO_LOCAL : 0;
    for (size_t i = 0; i < 4; i++) mosquitto_subscribe_v5(c->mosq, NULL, own[i], q, opts, NULL);
    for (size_t i = 0; i < 3; i++) mosquitto_subscribe_v5(c->mosq, NULL, gw[i], 1, opts, NULL);
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *props) {
    (void)m;
    (void)flags;
    tb_client *c = ud;
    if (rc != 0) {
        char hint[200] = "";
        if (rc == MQTT_RC_NOT_AUTHORIZED || rc == MQTT_RC_BAD_USERNAME_OR_PASSWORD || rc == 4 || rc == 5)
            credential_hint(c, hint, sizeof hint);
        char msg[300];
        snprintf(msg, sizeof msg, "%s%s", tb_client_connack_text(rc, c->cfg->mqtt_version == 5), hint);
        mark_lost(c, "ThingsBoard refused the connection: %s", msg);
        return;
    }
    uint32_t maxp = 0;
    uint16_t recvmax = 0;
    if (mosquitto_property_read_int32(props, MQTT_PROP_MAXIMUM_PACKET_SIZE, &maxp, false))
        c->server_max_packet = (int)maxp;
    if (mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &recvmax, false))
        c->server_receive_max = recvmax;
    c->st = ST_CONNECTED;
    c->fails = 0;
    tbgw_backoff_reset(&c->backoff);
    subscribe_all(c);
    TBGW_INFOF(c->log, "connected to ThingsBoard at %s:%d", c->cfg->host, c->cfg->port);
    if (c->cbs.on_ready) c->cbs.on_ready(c->ud);
}

static void on_connect311(struct mosquitto *m, void *ud, int rc) {
    on_connect(m, ud, rc, 0, NULL);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc, const mosquitto_property *props) {
    (void)m;
    (void)props;
    tb_client *c = ud;
    mark_lost(c, "connection closed (reason %d)", rc);
}

static void on_disconnect311(struct mosquitto *m, void *ud, int rc) {
    on_disconnect(m, ud, rc, NULL);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props) {
    (void)m;
    (void)props;
    tb_client *c = ud;
    if (c->cbs.on_message) c->cbs.on_message(c->ud, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

static void on_message311(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    on_message(m, ud, msg, NULL);
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason, const mosquitto_property *props) {
    (void)m;
    (void)props;
    tb_client *c = ud;
    if (reason >= 0x80) {
        /* Refused by the platform (e.g. rate limit 151 / quota 131): treat as not delivered. */
        TBGW_WARNF(c->log, "ThingsBoard refused a publish (reason %d); the pack will be re-sent", reason);
        mark_lost(c, "publish refused with reason %d", reason);
        return;
    }
    if (c->cbs.on_publish) c->cbs.on_publish(c->ud, mid);
}

static void on_publish311(struct mosquitto *m, void *ud, int mid) {
    on_publish(m, ud, mid, 0, NULL);
}

static void poll_closed(uv_handle_t *h) {
    free(h);
}

static void teardown(tb_client *c) {
    if (c->poll) {
        uv_poll_stop(c->poll);
        uv_close((uv_handle_t *)c->poll, poll_closed);
        c->poll = NULL;
    }
    uv_timer_stop(&c->misc_timer);
    if (c->mosq) {
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
}

static void handle_lost(tb_client *c) {
    int was_connected = c->st == ST_CONNECTED;
    const char *why = c->lost_why[0] ? c->lost_why : "connection lost";
    if (c->last_tls[0] && strstr(why, "closed")) {
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s", why);
        snprintf(c->lost_why, sizeof c->lost_why, "%s; TLS: %s", tmp, c->last_tls);
        why = c->lost_why;
    }
    teardown(c);
    if (was_connected) {
        TBGW_WARNF(c->log, "ThingsBoard session lost: %s", why);
        if (c->cbs.on_lost) c->cbs.on_lost(c->ud, why);
    } else {
        TBGW_ERRORF(c->log, "cannot connect to ThingsBoard at %s:%d: %s", c->cfg->host, c->cfg->port, why);
    }
    c->lost = 0;
    c->lost_why[0] = 0;
    c->last_tls[0] = 0;
    if (c->st != ST_STOPPED) schedule_retry(c);
}

static void update_poll(tb_client *c);

static void on_poll(uv_poll_t *h, int status, int events) {
    tb_client *c = h->data;
    if (!c->mosq) return;
    int rc = MOSQ_ERR_SUCCESS;
    if (status < 0) {
        mark_lost(c, "socket error: %s", uv_strerror(status));
    } else if (tcp_check(c) == 0) {
        /* the handshake is still running */
    } else if (!c->lost) {
        if (events & UV_READABLE) rc = mosquitto_loop_read(c->mosq, 64);
        if (rc == MOSQ_ERR_SUCCESS && c->mosq && (events & UV_WRITABLE))
            rc = mosquitto_loop_write(c->mosq, 64);
        if (rc != MOSQ_ERR_SUCCESS) {
            if (rc == MOSQ_ERR_ERRNO)
                mark_lost(c, "%s", strerror(errno));
            else if (rc == MOSQ_ERR_TLS)
                mark_lost(c, "TLS failure: %s",
                          c->last_tls[0] ? c->last_tls : "handshake or certificate error");
            else
                mark_lost(c, "%s", mosquitto_strerror(rc));
        }
    }
    if (c->lost) {
        handle_lost(c);
        return;
    }
    update_poll(c);
}

static void update_poll(tb_client *c) {
    if (!c->mosq || !c->poll) return;
    int ev = UV_READABLE | (mosquitto_want_write(c->mosq) ? UV_WRITABLE : 0);
    if (ev != c->poll_events) {
        uv_poll_start(c->poll, ev, on_poll);
        c->poll_events = ev;
    }
}

/* mosquitto_loop_misc sends PINGREQ once keep_alive seconds passed without traffic: called every
 * quarter of it (every 500 ms while waiting for CONNACK, for its deadline). */
static uint64_t misc_period(const tb_client *c) {
    if (c->st == ST_WAIT_CONNACK) return 500;
    int ka = c->cfg->keep_alive;
    return ka <= 0 ? 60000 : ka < 2 ? 500 : (uint64_t)ka * 250;
}

static void on_misc(uv_timer_t *t) {
    tb_client *c = t->data;
    if (!c->mosq) return;
    uv_timer_set_repeat(t, misc_period(c));
    if (c->st == ST_WAIT_CONNACK && tcp_check(c) == 0 && uv_now(c->loop) > (uint64_t)c->tcp_deadline) {
        mark_lost(c, "connection timed out: host does not answer within %d s",
                  TB_TCP_CONNECT_TIMEOUT_MS / 1000);
        handle_lost(c);
        return;
    }
    if (c->lost) {
        handle_lost(c);
        return;
    }
    if (c->st == ST_WAIT_CONNACK && uv_now(c->loop) > (uint64_t)c->connack_deadline) {
        mark_lost(c, "no CONNACK within %d s (is this an MQTT broker?)", TB_CONNACK_TIMEOUT_MS / 1000);
        handle_lost(c);
        return;
    }
    int rc = mosquitto_loop_misc(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
        mark_lost(c, "keepalive: %s", mosquitto_strerror(rc));
    if (rc == MOSQ_ERR_NO_CONN) mark_lost(c, "%s", "keepalive timeout: no answer from the broker");
    if (c->lost) {
        handle_lost(c);
        return;
    }
    update_poll(c);
}

/* Why a connection could not be made, in words that point at the setting to check. */
static void explain_connect_error(tb_client *c, int rc, int e, char *why, size_t n) {
    if (rc == MOSQ_ERR_EAI)
        snprintf(why, n, "cannot resolve host name \"%s\" (check thingsboard.host)", c->cfg->host);
    else if (rc == MOSQ_ERR_ERRNO && e == ECONNREFUSED)
        snprintf(why, n, "connection refused: nothing listens on port %d (check thingsboard.port)",
                 c->cfg->port);
    else if (rc == MOSQ_ERR_ERRNO && (e == EHOSTUNREACH || e == ENETUNREACH))
        snprintf(why, n, "host unreachable (%s)", strerror(e));
    else if (rc == MOSQ_ERR_ERRNO && e == ETIMEDOUT)
        snprintf(why, n, "connection timed out: host does not answer");
    else if (rc == MOSQ_ERR_TLS)
        snprintf(why, n, "TLS failure: %s", c->last_tls[0] ? c->last_tls : "handshake failed");
    else if (rc == MOSQ_ERR_ERRNO)
        snprintf(why, n, "%s", strerror(e));
    else
        snprintf(why, n, "%s", mosquitto_strerror(rc));
}

/* While the non-blocking connect() runs: 1 once it completed, 0 while pending, -1 (lost marked)
 * when it failed. */
static int tcp_check(tb_client *c) {
    if (!c->tcp_pending) return 1;
    int err = 0;
    socklen_t len = sizeof err;
    int fd = mosquitto_socket(c->mosq);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno ? errno : EBADF;
    if (err == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) return 0; /* still in progress */
        c->tcp_pending = 0;
        return 1;
    }
    char why[300];
    explain_connect_error(c, MOSQ_ERR_ERRNO, err, why, sizeof why);
    mark_lost(c, "%s", why);
    return -1;
}

static void connect_work(uv_work_t *w) {
    tb_client *c = w->data;
    errno = 0;
    /* DNS here (blocking, off the loop); the TCP connect only starts: the loop watches it */
    c->work_rc = mosquitto_connect_bind_async(c->mosq, c->cfg->host, c->cfg->port, c->cfg->keep_alive, NULL);
    c->work_errno = errno;
}

static void connect_done(uv_work_t *w, int status) {
    tb_client *c = w->data;
    c->work_busy = 0;
    if (c->st == ST_STOPPED) {
        teardown(c);
        return;
    }
    int rc = status ? MOSQ_ERR_UNKNOWN : c->work_rc;
    if (rc != MOSQ_ERR_SUCCESS) {
        char why[300];
        explain_connect_error(c, rc, c->work_errno, why, sizeof why);
        mark_lost(c, "%s", why);
        handle_lost(c);
        return;
    }
    c->st = ST_WAIT_CONNACK;
    c->tcp_pending = 1;
    c->tcp_deadline = (int64_t)uv_now(c->loop) + TB_TCP_CONNECT_TIMEOUT_MS;
    c->connack_deadline = (int64_t)uv_now(c->loop) + TB_CONNACK_TIMEOUT_MS;
    c->poll = calloc(1, sizeof *c->poll);
    if (!c->poll || uv_poll_init_socket(c->loop, c->poll, mosquitto_socket(c->mosq))) {
        free(c->poll);
        c->poll = NULL;
        mark_lost(c, "%s", "cannot watch the socket");
        handle_lost(c);
        return;
    }
    c->poll->data = c;
    c->poll_events = 0;
    update_poll(c);
    uv_timer_start(&c->misc_timer, on_misc, 500, 500);
}

static int setup_mosq(tb_client *c) {
    const tbgw_config *cfg = c->cfg;
    const tbgw_security *s = &cfg->sec;
    const char *client_id = s->type == TBGW_SEC_USERNAME_PASSWORD && s->client_id ? s->client_id : NULL;
    c->mosq = mosquitto_new(client_id, true, c);
    if (!c->mosq) return TBGW_ENOMEM;
    int ver = cfg->mqtt_version == 5   ? MQTT_PROTOCOL_V5
              : cfg->mqtt_version == 3 ? MQTT_PROTOCOL_V31
                                       : MQTT_PROTOCOL_V311;
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, ver);
    mosquitto_max_inflight_messages_set(c->mosq, 0);
    if (ver == MQTT_PROTOCOL_V5) {
        mosquitto_connect_v5_callback_set(c->mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
        mosquitto_message_v5_callback_set(c->mosq, on_message);
        mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    } else {
        mosquitto_connect_callback_set(c->mosq, on_connect311);
        mosquitto_disconnect_callback_set(c->mosq, on_disconnect311);
        mosquitto_message_callback_set(c->mosq, on_message311);
        mosquitto_publish_callback_set(c->mosq, on_publish311);
    }
    mosquitto_log_callback_set(c->mosq, on_log);
    const char *user = NULL, *pass = NULL;
    if (s->type == TBGW_SEC_ACCESS_TOKEN || s->type == TBGW_SEC_TLS_ACCESS_TOKEN)
        user = s->access_token;
    else if (s->type == TBGW_SEC_USERNAME_PASSWORD)
        user = s->username, pass = s->password;
    if (user || pass) mosquitto_username_pw_set(c->mosq, user, pass);
    if (s->tls) {
        int rc;
        if (s->ca_cert) {
            rc = mosquitto_tls_set(c->mosq, s->ca_cert, NULL, s->cert, s->private_key, NULL);
        } else {
            /* No CA given: verify against the system's trust store rather than not at all. */
            mosquitto_int_option(c->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
            rc = s->cert ? mosquitto_tls_set(c->mosq, NULL, "/etc/ssl/certs", s->cert, s->private_key, NULL)
                         : MOSQ_ERR_SUCCESS;
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            TBGW_ERRORF(c->log, "TLS setup failed (caCert %s, cert %s, privateKey %s): %s",
                        s->ca_cert ? s->ca_cert : "-", s->cert ? s->cert : "-",
                        s->private_key ? s->private_key : "-", mosquitto_strerror(rc));
            return TBGW_EINVAL;
        }
        mosquitto_tls_opts_set(c->mosq, 1, "tlsv1.2", NULL);
        if (s->insecure) mosquitto_tls_insecure_set(c->mosq, true);
    }
    return 0;
}

static void start_connect(tb_client *c) {
    if (c->st == ST_STOPPED) return;
    if (setup_mosq(c)) {
        teardown(c);
        schedule_retry(c);
        return;
    }
    c->st = ST_CONNECTING;
    c->work.data = c;
    TBGW_DEBUGF(c->log, "connecting to %s:%d", c->cfg->host, c->cfg->port);
    c->work_busy = 1;
    if (uv_queue_work(c->loop, &c->work, connect_work, connect_done)) {
        c->work_busy = 0;
        teardown(c);
        schedule_retry(c);
    }
}

static void on_retry(uv_timer_t *t) {
    start_connect(t->data);
}

static void schedule_retry(tb_client *c) {
    if (c->st == ST_STOPPED) return;
    c->st = ST_BACKOFF;
    int64_t d = tbgw_backoff_next(&c->backoff);
    c->fails++;
    TBGW_INFOF(c->log, "reconnecting to ThingsBoard in %lld ms", (long long)d);
    uv_timer_start(&c->retry_timer, on_retry, (uint64_t)d, 0);
}

tb_client *tb_client_new(uv_loop_t *loop, const tbgw_config *cfg, const tb_client_cbs *cbs, void *ud) {
    static int inited;
    if (!inited) {
        mosquitto_lib_init();
        inited = 1;
    }
    tb_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->cfg = cfg;
    c->cbs = *cbs;
    c->ud = ud;
    c->log = tbgw_logger_get("tb_connection");
    uv_timer_init(loop, &c->misc_timer);
    uv_timer_init(loop, &c->retry_timer);
    c->misc_timer.data = c->retry_timer.data = c;
    tbgw_backoff_init(&c->backoff, 1000, cfg->reconnect_max_ms > 1000 ? cfg->reconnect_max_ms : 1000);
    return c;
}

void tb_client_start(tb_client *c) {
    start_connect(c);
}

int tb_client_publish(tb_client *c, const char *topic, const void *payload, size_t len, int qos, int *mid) {
    if (c->st != ST_CONNECTED || !c->mosq) return TBGW_EAGAIN;
    if (len > 268435455) return TBGW_EINVAL;
    int rc = mosquitto_publish_v5(c->mosq, mid, topic, (int)len, payload, qos, false, NULL);
    if (rc == MOSQ_ERR_SUCCESS) {
        update_poll(c);
        return 0;
    }
    if (rc == MOSQ_ERR_OVERSIZE_PACKET || rc == MOSQ_ERR_PAYLOAD_SIZE) return TBGW_EINVAL;
    /* anything else (no memory, connection gone): end the session; the next one re-sends */
    mark_lost(c, "publish failed: %s", mosquitto_strerror(rc));
    return TBGW_EIO;
}

void tb_client_push(tb_client *c) {
    if (c->mosq) tbgw_tcp_push(mosquitto_socket(c->mosq));
}

int tb_client_is_connected(const tb_client *c) {
    return c->st == ST_CONNECTED;
}

int tb_client_server_max_packet(const tb_client *c) {
    return c->server_max_packet;
}

int tb_client_server_receive_max(const tb_client *c) {
    return c->server_receive_max;
}

void tb_client_stop(tb_client *c) {
    if (!c) return;
    cstate prev = c->st;
    c->st = ST_STOPPED;
    uv_timer_stop(&c->retry_timer);
    if (prev == ST_CONNECTED && c->mosq) {
        mosquitto_disconnect_v5(c->mosq, 0, NULL);
        mosquitto_loop_write(c->mosq, 1);
    }
    if (!c->work_busy) teardown(c);
}

static void timer_closed(uv_handle_t *h) {
    (void)h;
}

void tb_client_free(tb_client *c) {
    if (!c) return;
    tb_client_stop(c);
    uv_close((uv_handle_t *)&c->misc_timer, timer_closed);
    uv_close((uv_handle_t *)&c->retry_timer, timer_closed);
    if (c->work_busy) return; /* a connect still runs in the thread pool; the process is exiting */
    free(c);
}
