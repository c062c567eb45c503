/* The MQTT connector (spec §7.1): the gateway's own non-blocking MQTT client (proto/mqtt) driven
 * from the connector thread.
 *
 * run() owns the session. It sleeps in poll() on the broker socket, the host's downlink descriptor
 * and its next timer (reconnect, coalescing window, request deadlines, keep-alive, connect timeout),
 * reads what is pending with one read(), converts the messages framed from it, hands the records of
 * one read burst to the core in a single emit(), writes the acknowledgements of the burst and any
 * downlink publishes in one write(), and calls host->dispatch() each turn so downlink callbacks
 * (attribute updates, RPC, attribute responses) run on this same thread. No locks are needed; stop() only
 * sets a flag (the host's stop request also makes the downlink descriptor readable, which wakes the loop). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "connectors/mqtt/mqtt_internal.h"
#include "util/json.h"
#include "util/time.h"

#define MQ_EMIT_BATCH 256  /* records per emit */
#define MQ_SEEN_MAX   1024 /* distinct topics remembered for "log malformed payload once" */
#ifndef MQ_COALESCE_US
#define MQ_COALESCE_US 5000 /* records wait at most this long for more before being emitted */
#endif
#define MQ_SHORT_BURST        8 /* a read burst of fewer packets than this means a moderate rate: gather */
#define MQ_CONNECT_TIMEOUT_MS 10000 /* TCP connect + TLS handshake + CONNACK */
#define MQ_RELEASE_MS         1     /* wait at a window's end for what our acknowledgements release */

/* ------------------------------------------------------------------ helpers used by requests */

static void trace_frame(mq_conn *c, const char *dir, const char *topic, const void *p, size_t len) {
    if (c->host->log->level > TBGW_TRACE) return;
    char hex[3 * 64 + 1];
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++) snprintf(hex + 3 * i, 4, "%02x ", ((const uint8_t *)p)[i]);
    hex[3 * n] = 0;
    TBGW_TRACEF(c->host->log, "%s %s (%zu bytes): %s%s", dir, topic, len, hex, len > n ? "..." : "");
}

static const char *session_strerror(int rc) {
    switch (rc) {
    case TBGW_EIO:
        return "not connected to the broker";
    case TBGW_EFULL:
        return "too many messages waiting for the broker";
    case TBGW_EINVAL:
        return "invalid topic";
    default:
        return tbgw_strerror(rc);
    }
}

/* Queued in the session's output buffer; it leaves with the write at the end of this turn (the
 * socket has TCP_NODELAY: a downlink to a device does not wait behind anything). */
int mq_publish(mq_conn *c, const char *topic, const char *payload, size_t len, int qos, int retain) {
    if (!c->sess_ready) return TBGW_EIO;
    trace_frame(c, "publish", topic, payload, len);
    int rc = mqtt_session_publish(&c->sess, topic, payload, len, qos, retain != 0);
    if (rc) {
        TBGW_WARNF(c->host->log, "publish to %s failed: %s", topic, session_strerror(rc));
        return TBGW_EIO;
    }
    return 0;
}

int mq_subscribe(mq_conn *c, const char *topic, int qos) {
    if (!c->sess_ready || !c->connected) return TBGW_EIO;
    int rc = mqtt_session_subscribe(&c->sess, topic, qos);
    if (rc) {
        TBGW_WARNF(c->host->log, "subscribe to %s failed: %s", topic, session_strerror(rc));
        return TBGW_EIO;
    }
    TBGW_DEBUGF(c->host->log, "subscribing to %s (qos %d)", topic, qos);
    return 0;
}

void mq_unsubscribe(mq_conn *c, const char *topic) {
    if (c->sess_ready && c->connected) mqtt_session_unsubscribe(&c->sess, topic);
}

void mq_malformed(mq_conn *c, const char *topic, const char *what) {
    c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
    mq_seen *s = &c->seen;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->topics[i], topic)) {
            s->suppressed++;
            TBGW_DEBUGF(c->host->conv_log, "malformed payload on topic %s: %s", topic, what);
            return;
        }
    if (s->n < MQ_SEEN_MAX) {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 16;
            char **nt = realloc(s->topics, nc * sizeof *nt);
            if (nt) {
                s->topics = nt;
                s->cap = nc;
            }
        }
        if (s->n < s->cap && (s->topics[s->n] = strdup(topic))) s->n++;
    } else if (s->suppressed++ % 1000) {
        return; /* too many distinct bad topics: log one in a thousand */
    }
    TBGW_WARNF(c->host->conv_log, "malformed payload on topic %s: %s (further errors on this topic at DEBUG)",
               topic, what);
}

/* ------------------------------------------------------------------ uplink */

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Hands the batch to the core. keep: a batch the saturated core refuses stays here (host->offer),
 * the session stops framing packets (what was read stays in its buffer, not yet acknowledged) and
 * the broker socket is not read until the core takes it, so nothing already acknowledged to the
 * broker is lost and the rest waits at the broker; without keep (at stop, or an older host) a
 * refused batch is dropped and counted. */
static void flush_batch(mq_conn *c, int keep) {
    if (!c->batch) return;
    keep = keep && c->host->offer;
    if (keep && c->held && tbgw_mono_ms() < c->read_pause_until) return;
    tbgw_converted *b = c->batch, **tail = c->batch_tail;
    size_t n = c->batch_n;
    c->batch = NULL;
    c->batch_tail = &c->batch;
    c->batch_n = 0;
    int rc = keep ? c->host->offer(c->host, b) : c->host->emit(c->host, b);
    c->held = 0;
    if (c->sess_ready) mqtt_session_pause(&c->sess, 0);
    if (rc == TBGW_EAGAIN) {
        c->read_pause_until = tbgw_mono_ms() + (keep ? 20 : 50);
        if (keep) {
            c->batch = b;
            c->batch_tail = tail;
            c->batch_n = n;
            c->held = 1;
        }
        if (c->held && c->sess_ready) mqtt_session_pause(&c->sess, 1);
        if (c->saturated++ % 100 == 0)
            TBGW_WARNF(c->host->log, "core saturated: a batch was refused (%llu so far); %s",
                       (unsigned long long)c->saturated,
                       keep ? "it is kept and reads pause until the core takes it" : "it was dropped");
    }
}

/* Appends converted records to the batch (the oldest record starts the coalescing window). */
static void batch_add(mq_conn *c, tbgw_converted *chain) {
    if (!chain) return;
    if (!c->batch) c->batch_since_us = mono_us();
    *c->batch_tail = chain;
    for (; chain; chain = chain->next) {
        c->batch_n++;
        c->batch_tail = &chain->next;
    }
}

/* Emits when the batch is full or its oldest record waited MQ_COALESCE_US (or force). */
static void maybe_flush(mq_conn *c, int force) {
    if (c->batch && (force || c->batch_n >= MQ_EMIT_BATCH || mono_us() - c->batch_since_us >= MQ_COALESCE_US))
        flush_batch(c, 1);
}

static void convert_one(mq_conn *c, const mq_mapping *m, const char *topic, const uint8_t *p, size_t len,
                        json_t **body, int *parsed, int64_t now) {
    tbgw_err err = {0};
    tbgw_converted *out = NULL;
    int rc;
    if (m->kind == MQ_CONV_JSON && !*parsed && tbgw_json_conv_reads_text(m->json)) {
        /* the payload scanned in place, no tree (parsed once here when it is not valid JSON) */
        rc = tbgw_json_conv_convert_text(m->json, topic, p, len, now, &out, &err);
        if (rc == TBGW_EPROTO) {
            *parsed = 1;
            mq_malformed(c, topic, err.msg);
            return;
        }
    } else if (m->kind == MQ_CONV_JSON) {
        if (!*parsed) {
            json_error_t je;
            *parsed = 1;
            *body = tbgw_json_loadb(p, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!*body) {
                char what[300];
                snprintf(what, sizeof what, "invalid JSON at line %d column %d: %s", je.line, je.column,
                         je.text);
                mq_malformed(c, topic, what);
                return;
            }
        }
        if (!*body) return;
        rc = tbgw_json_conv_convert(m->json, topic, *body, now, &out, &err);
    } else if (m->kind == MQ_CONV_BYTES) {
        rc = tbgw_bytes_conv_convert(m->bytes, topic, p, len, now, &out, &err);
    } else {
        rc = tbgw_custom_conv_convert(m->custom, topic, p, len, &out, &err);
    }
    batch_add(c, out);
    if (rc < 0) {
        mq_malformed(c, topic, err.msg[0] ? err.msg : tbgw_strerror(rc));
        return;
    }
    c->host->stat_add(c->host, TBGW_STAT_CONV_PROCESSED, 1);
    if (err.code) mq_malformed(c, topic, err.msg); /* some list elements were skipped */
    if (rc == 0) TBGW_DEBUGF(c->host->conv_log, "no data converted from topic %s", topic);
}

static void dispatch(mq_conn *c, const char *topic, const uint8_t *p, size_t len) {
    const tbgw_host *h = c->host;
    h->stat_add(h, TBGW_STAT_MSGS_RECEIVED, 1);
    h->stat_add(h, TBGW_STAT_BYTES_RECEIVED, len);
    trace_frame(c, "received", topic, p, len);
    json_t *body = NULL;
    int parsed = 0, matched = 0;
    int64_t now = tbgw_now_ms();
    for (size_t i = 0; i < c->cfg.n_maps; i++) {
        const mq_mapping *m = &c->cfg.maps[i];
        if (m->disabled || !tbgw_topic_matches(m->topic_filter, topic)) continue;
        matched = 1;
        convert_one(c, m, topic, p, len, &body, &parsed, now);
    }
    json_decref(body);
    if (matched) {
        if (c->batch_n >= MQ_EMIT_BATCH) flush_batch(c, 1);
        return;
    }
    if (mq_handle_requests(c, topic, p, len)) return;
    if (mq_handle_rpc_response(c, topic, p, len)) return;
    TBGW_DEBUGF(h->log, "message on %s matches no mapping or request", topic);
}

static void on_message(void *ud, const char *topic, const uint8_t *payload, size_t len, int qos, int retain) {
    (void)qos;
    (void)retain;
    dispatch(ud, topic, payload, len);
}

/* ------------------------------------------------------------------ connection */

static void set_state(mq_conn *c, tbgw_conn_state s, const char *text) {
    c->st.state = s;
    snprintf(c->st.last_error, sizeof c->st.last_error, "%s", text ? text : "");
    c->host->set_state(c->host, s, text);
}

static void subscribe_all(mq_conn *c) {
    const mq_config *cfg = &c->cfg;
    for (size_t i = 0; i < cfg->n_maps; i++)
        if (!cfg->maps[i].disabled) mq_subscribe(c, cfg->maps[i].topic_filter, cfg->maps[i].qos);
    for (size_t i = 0; i < cfg->n_connects; i++) mq_subscribe(c, cfg->connects[i].topic_filter, 1);
    for (size_t i = 0; i < cfg->n_disconnects; i++) mq_subscribe(c, cfg->disconnects[i].topic_filter, 1);
    for (size_t i = 0; i < cfg->n_attr_reqs; i++) mq_subscribe(c, cfg->attr_reqs[i].topic_filter, 1);
    for (mq_pending_rpc *r = c->rpcs; r; r = r->next) mq_subscribe(c, r->topic, 1);
}

static void schedule_reconnect(mq_conn *c) {
    c->next_connect = tbgw_mono_ms() + tbgw_backoff_next(&c->backoff);
}

static void on_connack(void *ud, int code, const char *reason) {
    mq_conn *c = ud;
    if (code != 0) {
        char text[300];
        snprintf(text, sizeof text, "broker %s:%d refused the connection: %s", c->cfg.host, c->cfg.port,
                 reason);
        TBGW_ERRORF(c->host->log, "%s", text);
        c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
        set_state(c, TBGW_CONN_DISCONNECTED, text);
        c->refused = 1; /* the session closes the socket and reports it lost: the state keeps this text */
        return;
    }
    c->connected = 1;
    tbgw_backoff_reset(&c->backoff);
    TBGW_INFOF(c->host->log, "connected to %s:%d as %s", c->cfg.host, c->cfg.port, c->cfg.client_id);
    set_state(c, TBGW_CONN_CONNECTED, NULL);
    subscribe_all(c);
}

static void on_suback(void *ud, const char *filter, int code) {
    mq_conn *c = ud;
    if (code >= 0x80) {
        c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
        TBGW_ERRORF(c->host->log, "broker %s:%d refused the subscription to %s: %s", c->cfg.host, c->cfg.port,
                    filter, c->cfg.version == 5 ? mqtt_reason_text(code) : "failure");
    } else {
        TBGW_DEBUGF(c->host->log, "subscribed to %s (granted qos %d)", filter, code);
    }
}

static void on_lost(void *ud, const char *why, int protocol_error) {
    mq_conn *c = ud;
    int was = c->connected, refused = c->refused;
    c->connected = 0;
    c->refused = 0;
    if (protocol_error) c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
    schedule_reconnect(c);
    if (atomic_load(&c->stop) || refused) return;
    char text[sizeof c->st.last_error];
    snprintf(text, sizeof text, "%s %s:%d: %s", was ? "disconnected from" : "cannot connect to", c->cfg.host,
             c->cfg.port, why);
    if (was || protocol_error)
        TBGW_WARNF(c->host->log, "%s", text);
    else
        TBGW_DEBUGF(c->host->log, "%s", text);
    set_state(c, TBGW_CONN_DISCONNECTED, text);
}

static int setup_client(mq_conn *c) {
    const mq_config *cfg = &c->cfg;
    mqtt_session_cfg sc = {
        .host = cfg->host,
        .port = cfg->port,
        .client_id = cfg->client_id,
        .version = cfg->version,
        .keepalive = cfg->keepalive,
        .clean = cfg->version == 5 ? cfg->clean_start : cfg->clean_session,
        .session_expiry = cfg->version == 5 ? (uint32_t)cfg->session_expiry : 0,
        .username = cfg->username,
        .password = cfg->username ? cfg->password : NULL,
        .tls = cfg->tls,
        /* no CA: TLS without verification of the broker (reference behaviour) */
        .tls_insecure = cfg->tls_insecure || !cfg->ca_cert,
        .ca_file = cfg->ca_cert,
        .cert_file = cfg->cert,
        .key_file = cfg->key,
        .connect_timeout_ms = MQ_CONNECT_TIMEOUT_MS,
    };
    mqtt_session_cb cb = {.ud = c,
                          .on_connack = on_connack,
                          .on_message = on_message,
                          .on_suback = on_suback,
                          .on_lost = on_lost};
    char err[300];
    if (mqtt_session_init(&c->sess, &sc, &cb, err, sizeof err)) {
        TBGW_ERRORF(c->host->log, "%s", err);
        mqtt_session_free(&c->sess);
        return TBGW_EINVAL;
    }
    c->sess_ready = 1;
    return 0;
}

/* Starts a connection attempt; it completes (or fails) in later turns without blocking the loop. */
static void try_connect(mq_conn *c) {
    set_state(c, TBGW_CONN_STARTING, NULL);
    if (mqtt_session_start(&c->sess, tbgw_mono_ms())) {
        char text[sizeof c->st.last_error];
        snprintf(text, sizeof text, "cannot connect to %s:%d: %s", c->cfg.host, c->cfg.port, c->sess.err);
        TBGW_DEBUGF(c->host->log, "%s", text);
        set_state(c, TBGW_CONN_DISCONNECTED, text);
        schedule_reconnect(c);
    }
}

/* Reads what is pending (one read()), converts every message framed from it and hands the records
 * to the core. A short burst that left records to emit starts a gather: the broker socket is not
 * watched until the coalescing window of the oldest record ends, then everything that arrived
 * meanwhile is read in one burst and emitted at once. At moderate rates one wake-up (and one
 * hand-off to the core) then serves several messages instead of one, for at most MQ_COALESCE_US
 * more latency; at high rates bursts are long and nothing waits. */
static void read_burst(mq_conn *c, short revents) {
    int n = mqtt_session_io(&c->sess, revents, tbgw_mono_ms());
    maybe_flush(c, 0);
    /* only records wait to be gathered: RPC answers and requests do not start a gather */
    c->gathering = n < MQ_SHORT_BURST && c->batch != NULL;
}

/* The end of a gather window: what arrived meanwhile joins the batch before it leaves. A broker with
 * Nagle's algorithm on (mosquitto's default) sends the first message of the window at once and holds
 * the rest until our ACK, which the kernel delays until our next write: so the acknowledgements are
 * written first and what that releases (within MQ_RELEASE_MS) is taken into the same batch, instead
 * of waiting for the next window. */
static void window_end(mq_conn *c) {
    int64_t now = tbgw_mono_ms();
    int n = mqtt_session_io(&c->sess, POLLIN, now);
    if (n > 0 && !c->held && c->sess.wpos < c->sess.wbuf.len) {
        mqtt_session_flush(&c->sess, now);
        struct pollfd p = {.fd = mqtt_session_fd(&c->sess), .events = POLLIN};
        if (p.fd >= 0 && poll(&p, 1, MQ_RELEASE_MS) > 0)
            n += mqtt_session_io(&c->sess, p.revents, tbgw_mono_ms());
    }
    maybe_flush(c, 0);
    c->gathering = n < MQ_SHORT_BURST && c->batch != NULL;
}

/* The earliest monotonic ms at which the loop has something to do without I/O: a reconnect, the
 * end of a read pause or of the coalescing window, a request deadline, the session's keep-alive or
 * connect timeout. */
static int64_t next_due(mq_conn *c, int sock, int64_t now) {
    int64_t due = now + 3600000;
    if (sock < 0)
        due = c->next_connect;
    else if (c->read_pause_until > now && c->read_pause_until < due)
        due = c->read_pause_until;
    if (c->batch && c->held) {
        if (c->read_pause_until < due) due = c->read_pause_until; /* the refused batch is offered again */
    } else if (c->batch) {
        int64_t left_us = MQ_COALESCE_US - (mono_us() - c->batch_since_us);
        int64_t at = now + (left_us <= 0 ? 0 : (left_us + 999) / 1000);
        if (at < due) due = at;
    }
    for (const mq_pending_rpc *r = c->rpcs; r; r = r->next)
        if (r->deadline < due) due = r->deadline;
    for (const mq_pending_attr *a = c->attrs; a; a = a->next)
        if (a->deadline < due) due = a->deadline;
    int64_t s = mqtt_session_due(&c->sess);
    if (s < due) due = s;
    return due;
}

/* One turn: sleeps on the broker socket, the downlink descriptor and the next timer, then does
 * what became due. */
static void network_turn(mq_conn *c) {
    int sock = mqtt_session_fd(&c->sess);
    int64_t now = tbgw_mono_ms();
    if (sock < 0) {
        flush_batch(c, 1);
        if (now >= c->next_connect) try_connect(c);
        sock = mqtt_session_fd(&c->sess);
    }
    if (c->gathering && !c->batch) c->gathering = 0; /* the batch left (full, or by a forced flush) */
    if (!c->held && sock >= 0) {
        int n = mqtt_session_process(&c->sess, now); /* packets a pause left in the buffer */
        if (n) maybe_flush(c, 0);
    }
    mqtt_session_flush(&c->sess, now); /* downlink queued by dispatch(), acknowledgements */
    sock = mqtt_session_fd(&c->sess);
    struct pollfd pfd[2] = {{.fd = c->host->downlink_fd, .events = POLLIN}, {.fd = sock, .events = 0}};
    if (sock >= 0)
        pfd[1].events =
            mqtt_session_events(&c->sess, now >= c->read_pause_until && !c->gathering && !c->held);
    int64_t left = next_due(c, sock, now) - now;
    int n = poll(pfd, sock >= 0 ? 2 : 1, left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left);
    if (n > 0 && sock >= 0 && pfd[1].revents) {
        read_burst(c, pfd[1].revents);
    } else if (c->gathering && !c->held && sock >= 0 && mono_us() - c->batch_since_us >= MQ_COALESCE_US) {
        window_end(c);
    }
    now = tbgw_mono_ms();
    mqtt_session_tick(&c->sess, now);
    maybe_flush(c, 0);
    mqtt_session_flush(&c->sess, now); /* the acknowledgements of this burst: one write */
}

/* useEval failures: every one counted, logged once a minute per key */
static void on_eval_error(void *ud, const char *device, const char *key, const char *msg, int due) {
    mq_conn *c = ud;
    c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
    if (due)
        TBGW_WARNF(c->host->conv_log,
                   "device %s, key %s: useEval failed: %s (key skipped; repeated errors of this key "
                   "are logged once a minute)",
                   device ? device : "?", key, msg);
    else
        TBGW_DEBUGF(c->host->conv_log, "device %s, key %s: useEval failed: %s", device ? device : "?", key,
                    msg);
}

/* ------------------------------------------------------------------ connector ops */

static int mq_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    mq_conn *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    c->host = host;
    int rc = mq_config_parse(&c->cfg, cfg, host, err);
    if (rc) {
        free(c);
        return rc;
    }
    for (size_t i = 0; i < c->cfg.n_maps; i++)
        if (c->cfg.maps[i].kind == MQ_CONV_JSON)
            tbgw_json_conv_on_eval_error(c->cfg.maps[i].json, on_eval_error, c);
    tbgw_backoff_init(&c->backoff, 1000, 10000); /* as the platform session: back within seconds */
    tbgw_buf_init(&c->scratch);
    c->batch_tail = &c->batch;
    c->next_cookie = 1;
    *self = c;
    return 0;
}

static int mq_run(void *self) {
    mq_conn *c = self;
    const tbgw_host *h = c->host;
    if (!c->sess_ready && setup_client(c)) {
        set_state(c, TBGW_CONN_FAILED, "cannot set up the MQTT client");
        return TBGW_EINVAL;
    }
    c->next_connect = 0;
    while (!atomic_load(&c->stop)) {
        if (h->dispatch(h)) break;
        network_turn(c);
        mq_check_timeouts(c);
    }
    flush_batch(c, 0);
    if (c->connected) {
        mqtt_session_disconnect(&c->sess);
        c->connected = 0;
    }
    set_state(c, TBGW_CONN_STOPPED, NULL);
    return 0;
}

static void mq_stop(void *self) {
    mq_conn *c = self;
    atomic_store(&c->stop, 1);
}

static void mq_destroy(void *self) {
    mq_conn *c = self;
    if (!c) return;
    if (c->sess_ready) mqtt_session_free(&c->sess);
    mq_pending_free(c);
    mq_config_free(&c->cfg);
    for (size_t i = 0; i < c->seen.n; i++) free(c->seen.topics[i]);
    free(c->seen.topics);
    tbgw_converted_free(c->batch);
    tbgw_buf_free(&c->scratch);
    free(c);
}

static void mq_status(void *self, tbgw_connector_status *out) {
    mq_conn *c = self;
    *out = c->st;
}

const tbgw_connector_ops tbgw_connector_mqtt = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "mqtt",
    .create = mq_create,
    .run = mq_run,
    .stop = mq_stop,
    .destroy = mq_destroy,
    .on_attribute_update = mq_on_attribute_update,
    .on_rpc = mq_on_rpc,
    .on_attribute_response = mq_on_attribute_response,
    .status = mq_status,
};
