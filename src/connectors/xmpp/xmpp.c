/* XMPP connector (docs/connectors/xmpp.md): one XMPP client session (libstrophe) on the connector
 * thread. Chat messages from the configured device JIDs are converted as the reference's
 * XmppUplinkConverter does (JSON bodies through ${...} templates, other bodies by character slices);
 * attribute updates and RPCs go to the device as chat messages. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>
#include <tbgw/connector.h>
#include <tbgw/connkit.h>

#include "connectors/xmpp/xmpp_internal.h"
#include "convert/expr.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

typedef struct xname {
    char *device;
    xdev *dev;
} xname;

typedef struct xc {
    const tbgw_host *h;
    json_t *cfg;
    const char *jid, *password, *host, *cafile;
    int port;
    long flags;
    xdev *devs;
    size_t n_devs;
    xname *names; /* device name -> device, learned from the first message (as the reference) */
    size_t n_names, cap_names;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    int connected;
    int64_t reconnect_at, last_attempt; /* the next connection attempt, the last one made */
    tbgw_backoff backoff;
    volatile int stop;
} xc;

/* ---- configuration ---- */

static int compile(const json_t *o, const char *k, const char *path, tbgw_expr **out, tbgw_err *err) {
    const char *s = json_string_value(json_object_get(o, k));
    if (!s) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a string", path, k);
    if (tbgw_expr_compile(s, out, err) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: %s", path, k, why);
    }
    return 0;
}

static void key_drop(void *slot) {
    xkey *k = slot;
    tbgw_expr_free(k->key);
    tbgw_expr_free(k->value);
}

static int key_parse(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud;
    xkey *k = slot;
    return compile(e, "key", path, &k->key, err) || compile(e, "value", path, &k->value, err) ? TBGW_EINVAL
                                                                                              : 0;
}

static void dev_free(void *slot) {
    xdev *d = slot;
    free(d->jid);
    tbgw_expr_free(d->name);
    tbgw_expr_free(d->type);
    for (size_t i = 0; i < d->n_attrs; i++) key_drop(&d->attrs[i]);
    for (size_t i = 0; i < d->n_ts; i++) key_drop(&d->ts[i]);
    free(d->attrs);
    free(d->ts);
}

/* One devices[] entry; a bad one (or a bad key inside) is reported with file:line:column and skipped. */
static int dev_parse(tbgw_cfg *w, const json_t *jd, const char *path, void *slot, void *ud, tbgw_err *err) {
    (void)ud;
    xdev *d = slot;
    const char *jid = json_string_value(json_object_get(jd, "jid"));
    if (!jid || !strchr(jid, '@'))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.jid: expected the device's full JID (user@domain/resource)",
                            path);
    const char *conv = json_string_value(json_object_get(jd, "converter"));
    if (conv && strcmp(conv, "XmppUplinkConverter") != 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.converter: \"%s\" is not available (XmppUplinkConverter is)", path, conv);
    if (compile(jd, "deviceNameExpression", path, &d->name, err) ||
        compile(jd, "deviceTypeExpression", path, &d->type, err))
        return TBGW_EINVAL;
    if (!(d->jid = strdup(jid))) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    d->cfg = jd;
    const char *ts = json_object_get(jd, "timeseries") ? "timeseries" : "telemetry";
    tbgw_err lerr = {0}; /* a key list that is not a list refuses the device */
    tbgw_cfg lw = {w->host, &lerr, 0};
    int rc = tbgw_cfg_list(&lw, jd, path, "attributes", sizeof *d->attrs, (void **)&d->attrs, &d->n_attrs,
                           key_parse, key_drop, NULL);
    if (rc >= 0)
        rc = tbgw_cfg_list(&lw, jd, path, ts, sizeof *d->ts, (void **)&d->ts, &d->n_ts, key_parse, key_drop,
                           NULL);
    w->skipped += lw.skipped;
    return rc < 0 ? tbgw_err_set(err, rc, "%s", lerr.msg) : 0;
}

static void xc_destroy(void *self);

static int xc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    const json_t *srv = json_object_get(cfg, "server");
    if (!json_is_object(srv)) return tbgw_err_set(err, TBGW_EINVAL, "server: expected an object");
    const char *jid = json_string_value(json_object_get(srv, "jid"));
    const char *pw = json_string_value(json_object_get(srv, "password"));
    if (!jid || !strchr(jid, '@')) return tbgw_err_set(err, TBGW_EINVAL, "server.jid: expected user@domain");
    if (!pw) return tbgw_err_set(err, TBGW_EINVAL, "server.password: expected a string");
    int64_t port;
    if (tbgw_cfg_get_int(srv, "server", "port", 0, 1, 65535, &port, err)) return TBGW_EINVAL; /* 0: SRV */
    const json_t *devs = json_object_get(cfg, "devices");
    if (devs && !json_is_null(devs) && !json_is_array(devs))
        return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a list");
    xc *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->h = h;
    c->cfg = json_deep_copy(cfg);
    srv = json_object_get(c->cfg, "server");
    c->jid = json_string_value(json_object_get(srv, "jid"));
    c->password = json_string_value(json_object_get(srv, "password"));
    c->host = json_string_value(json_object_get(srv, "host"));
    c->cafile = json_string_value(json_object_get(srv, "caCert"));
    c->port = (int)port;
    if (json_is_true(json_object_get(srv, "use_ssl"))) c->flags |= XMPP_CONN_FLAG_LEGACY_SSL;
    if (json_is_true(json_object_get(srv, "disable_starttls"))) c->flags |= XMPP_CONN_FLAG_DISABLE_TLS;
    const json_t *force = json_object_get(srv, "force_starttls");
    if ((!force || json_is_true(force)) &&
        !(c->flags & (XMPP_CONN_FLAG_DISABLE_TLS | XMPP_CONN_FLAG_LEGACY_SSL)))
        c->flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
    if (json_is_true(json_object_get(srv, "insecure"))) c->flags |= XMPP_CONN_FLAG_TRUST_TLS;
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
    int rc = tbgw_cfg_list(&w, c->cfg, NULL, "devices", sizeof *c->devs, (void **)&c->devs, &c->n_devs,
                           dev_parse, dev_free, NULL);
    if (rc < 0) {
        xc_destroy(c);
        return rc;
    }
    tbgw_backoff_init(&c->backoff, 1000, 30000);
    *self = c;
    return 0;
}

static void xc_destroy(void *self) {
    xc *c = self;
    for (size_t i = 0; i < c->n_devs; i++) dev_free(&c->devs[i]);
    free(c->devs);
    for (size_t i = 0; i < c->n_names; i++) free(c->names[i].device);
    free(c->names);
    json_decref(c->cfg);
    free(c);
}

static void xc_stop(void *self) {
    ((xc *)self)->stop = 1;
}

/* ---- uplink conversion ---- */

static void learn(xc *c, const char *device, xdev *d) {
    for (size_t i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i].device, device) == 0) return;
    if (c->n_names == c->cap_names) {
        size_t cap = c->cap_names ? c->cap_names * 2 : 8;
        xname *n = realloc(c->names, cap * sizeof *n);
        if (!n) return;
        c->names = n;
        c->cap_names = cap;
    }
    c->names[c->n_names].device = strdup(device);
    c->names[c->n_names++].dev = d;
}

static xdev *learned(xc *c, const char *device) {
    for (size_t i = 0; device && i < c->n_names; i++)
        if (strcmp(c->names[i].device, device) == 0) return c->names[i].dev;
    return NULL;
}

/* json.dumps(v) as Python writes it by default: ASCII only, ", " and ": " between items. */
static int py_dumps(tbgw_buf *out, const json_t *v) {
    return tbgw_buf_json_py(out, v);
}

static int resolve_py_json(void *ud, const char *placeholder, const tbgw_path *path, tbgw_buf *out) {
    (void)placeholder;
    const json_t *v = path ? tbgw_path_get(path, ud) : NULL;
    if (!v) return TBGW_ENOENT;
    return py_dumps(out, v);
}

/* ---- the session ---- */

static void send_chat(xc *c, const char *jid, const char *text) {
    xmpp_stanza_t *m = xmpp_message_new(c->ctx, "chat", jid, NULL);
    if (!m) return;
    xmpp_message_set_body(m, text);
    xmpp_send(c->conn, m);
    xmpp_stanza_release(m);
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud) {
    (void)conn;
    xc *c = ud;
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);
    if (!from || (type && strcmp(type, "error") == 0)) return 1;
    char *body = xmpp_message_get_body(st);
    if (!body) return 1;
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, strlen(body));
    xdev *d = NULL;
    for (size_t i = 0; i < c->n_devs; i++)
        if (strcmp(c->devs[i].jid, from) == 0) d = &c->devs[i];
    if (!d) {
        TBGW_DEBUGF(c->h->log, "message from %s: no device with that JID", from);
    } else {
        tbgw_converted *rec = tbgw_xmpp_convert(d, body);
        if (rec && tbgw_converted_count(rec) > 0) {
            learn(c, rec->device_name, d);
            c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, 1);
            c->h->emit(c->h, rec);
        } else {
            if (rec) learn(c, rec->device_name, d);
            tbgw_converted_free(rec);
            c->h->stat_add(c->h, TBGW_STAT_CONV_DROPPED, 1);
            TBGW_DEBUGF(c->h->conv_log, "message from %s gave no values", from);
        }
    }
    xmpp_free(c->ctx, body);
    return 1;
}

static _Thread_local char certfail_msg[200];

static int on_certfail(const xmpp_tlscert_t *cert, const char *const errormsg) {
    (void)cert;
    snprintf(certfail_msg, sizeof certfail_msg, "server certificate refused: %s", errormsg);
    return 0;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error, xmpp_stream_error_t *se, void *ud) {
    xc *c = ud;
    if (ev == XMPP_CONN_CONNECT) {
        xmpp_handler_add(conn, on_message, NULL, "message", NULL, c);
        xmpp_stanza_t *pres = xmpp_presence_new(c->ctx);
        xmpp_send(conn, pres);
        xmpp_stanza_release(pres);
        c->connected = 1;
        tbgw_backoff_reset(&c->backoff);
        TBGW_INFOF(c->h->log, "connected to the XMPP server as %s (%s)", xmpp_conn_get_bound_jid(conn),
                   xmpp_conn_is_secured(conn) ? "TLS" : "no TLS");
        c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
        return;
    }
    char why[256];
    if (certfail_msg[0])
        snprintf(why, sizeof why, "%s", certfail_msg);
    else if (se && se->text)
        snprintf(why, sizeof why, "stream error: %s", se->text);
    else if (error)
        snprintf(why, sizeof why, "%s", strerror(error));
    else
        snprintf(why, sizeof why, "%s", c->connected ? "connection closed" : "login or TLS failed");
    c->connected = 0;
    int64_t d = tbgw_backoff_next(&c->backoff);
    c->reconnect_at = tbgw_mono_ms() + d;
    TBGW_ERRORF(c->h->log, "XMPP session ended: %s; reconnecting in %lld ms", why, (long long)d);
    c->h->set_state(c->h, TBGW_CONN_DISCONNECTED, why);
}

/* libstrophe hands the socket of a session only to this callback (each new socket of a connection
 * attempt); the connector thread polls it itself. TCP keepalive stays as libstrophe sets it. */
static _Thread_local int strophe_sock = -1;

static int on_socket(xmpp_conn_t *conn, void *sock) {
    strophe_sock = *(int *)sock;
    return xmpp_sockopt_cb_keepalive(conn, sock);
}

static void strophe_log(void *ud, xmpp_log_level_t level, const char *area, const char *msg) {
    xc *c = ud;
    if (level >= XMPP_LEVEL_ERROR)
        TBGW_WARNF(c->h->log, "libstrophe %s: %s", area, msg);
    else
        TBGW_TRACEF(c->h->log, "libstrophe %s: %s", area, msg);
}

static void start_session(xc *c) {
    if (c->conn) xmpp_conn_release(c->conn);
    c->conn = xmpp_conn_new(c->ctx);
    certfail_msg[0] = 0;
    xmpp_conn_set_flags(c->conn, c->flags);
    xmpp_conn_set_jid(c->conn, c->jid);
    xmpp_conn_set_pass(c->conn, c->password);
    if (c->cafile) xmpp_conn_set_cafile(c->conn, c->cafile);
    xmpp_conn_set_certfail_handler(c->conn, on_certfail);
    xmpp_conn_set_sockopt_callback(c->conn, on_socket);
    strophe_sock = -1;
    c->h->set_state(c->h, TBGW_CONN_STARTING, NULL);
    if (xmpp_connect_client(c->conn, c->host, (unsigned short)c->port, on_conn, c) != XMPP_EOK) {
        int64_t d = tbgw_backoff_next(&c->backoff);
        c->reconnect_at = tbgw_mono_ms() + d;
        TBGW_ERRORF(c->h->log, "cannot connect to %s:%d; retrying in %lld ms", c->host ? c->host : "(SRV)",
                    c->port, (long long)d);
    }
}

/* One turn: sleeps on the session's socket, the downlink descriptor and the next timer (the next
 * reconnection; libstrophe keeps its own timers private, so a session being set up is looked at every
 * 100 ms and an established one every second), dispatches downlink, then lets libstrophe write what is
 * queued, read what arrived and fire its timers. Returns 1 when the connector should stop. */
static int turn(xc *c) {
    int64_t now = tbgw_mono_ms();
    struct pollfd pfd[2] = {{.fd = c->h->downlink_fd, .events = POLLIN}, {.fd = -1}};
    int timeout;
    if (c->conn && !xmpp_conn_is_disconnected(c->conn) && strophe_sock >= 0) {
        pfd[1].fd = strophe_sock;
        pfd[1].events = xmpp_conn_is_connecting(c->conn) ? POLLOUT : POLLIN;
        if (xmpp_conn_send_queue_len(c->conn) > 0) pfd[1].events |= POLLOUT;
        timeout = c->connected ? 1000 : 100;
    } else if (c->conn && !xmpp_conn_is_disconnected(c->conn)) {
        timeout = 100; /* an attempt without a socket yet */
    } else {
        int64_t left = c->reconnect_at - now;
        timeout = c->last_attempt == c->reconnect_at ? 1000
                  : left <= 0                        ? 0
                  : left > 60000                     ? 60000
                                                     : (int)left;
    }
    int n = poll(pfd, 2, timeout);
    if (n > 0 && (pfd[0].revents & POLLIN) && c->h->dispatch(c->h)) return 1;
    /* a TLS record (up to 16 KiB) may be left decrypted inside the library after one 4 KiB read, with
     * nothing more on the socket: a readable socket gets four reads */
    int reads = n > 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) ? 4 : 1;
    for (int i = 0; i < reads; i++) xmpp_run_once(c->ctx, 0);
    return 0;
}

static int xc_run(void *self) {
    xc *c = self;
    xmpp_initialize();
    xmpp_log_t log = {strophe_log, c};
    c->ctx = xmpp_ctx_new(NULL, &log);
    if (!c->ctx) return TBGW_ENOMEM;
    c->reconnect_at = 0;
    c->last_attempt = -1;
    while (!c->stop) {
        if (!c->connected && tbgw_mono_ms() >= c->reconnect_at && c->last_attempt != c->reconnect_at) {
            c->last_attempt = c->reconnect_at;
            start_session(c);
        }
        if (turn(c)) break;
    }
    if (c->conn) {
        if (c->connected) xmpp_disconnect(c->conn);
        for (int i = 0; i < 10 && c->connected; i++) xmpp_run_once(c->ctx, 20);
        xmpp_conn_release(c->conn);
        c->conn = NULL;
    }
    c->connected = 0;
    xmpp_ctx_free(c->ctx);
    c->ctx = NULL;
    return 0;
}

/* ---- downlink ---- */

static int xc_attr_update(void *self, const tbgw_attr_update *u) {
    xc *c = self;
    xdev *d = learned(c, u->device);
    if (!d || !c->connected) {
        TBGW_ERRORF(c->h->log, "attribute update for %s: %s", u->device,
                    d ? "not connected to the XMPP server" : "device not found (no message from it yet)");
        return 0;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)u->data, key, val) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(d->cfg, "attributeUpdates"), i, e) {
            const char *on = json_string_value(json_object_get(e, "attributeOnThingsBoard"));
            const char *tmpl = json_string_value(json_object_get(e, "valueExpression"));
            if (!on || !tmpl || strcmp(on, key) != 0) continue;
            /* ${attributeKey} and ${attributeValue} of the first matching entry */
            json_t *vars = json_pack("{s:s,s:O}", "attributeKey", key, "attributeValue", val);
            tbgw_expr *ex = NULL;
            tbgw_err err;
            tbgw_buf out;
            tbgw_buf_init(&out);
            if (vars && tbgw_expr_compile(tmpl, &ex, &err) == 0 &&
                tbgw_expr_render(ex, vars, TBGW_FMT_PY, TBGW_MISSING_KEEP, &out) == 0)
                send_chat(c, d->jid, tbgw_buf_cstr(&out));
            tbgw_buf_free(&out);
            tbgw_expr_free(ex);
            json_decref(vars);
            return 0;
        }
    }
    TBGW_ERRORF(c->h->log, "attribute update for %s: no attributeUpdates entry for its keys", u->device);
    return 0;
}

static int reply(xc *c, const tbgw_rpc_req *r, json_t *content) {
    return c->h->rpc_reply(c->h, r->handle, content, -1);
}

/* Reserved set: "k=v;k2=v2;" sent as the JSON object of those pairs. */
static int rpc_set(xc *c, const tbgw_rpc_req *r, xdev *d) {
    tbgw_params kv = {0};
    tbgw_err err;
    const char *p = json_string_value(r->params);
    json_t *obj = p && tbgw_params_parse(p, TBGW_PARAMS_LENIENT, &kv, &err) == 0 ? tbgw_params_object(&kv)
                                                                                 : json_object();
    tbgw_params_free(&kv);
    if (json_object_size(obj) == 0) {
        json_decref(obj);
        return reply(c, r,
                     json_pack("{s:s}", "set", "RPC params are empty, expected format: set value={value};"));
    }
    tbgw_buf text;
    tbgw_buf_init(&text);
    py_dumps(&text, obj);
    send_chat(c, d->jid, text.len ? tbgw_buf_cstr(&text) : "{}");
    tbgw_buf_free(&text);
    json_decref(obj);
    return reply(c, r, json_pack("{s:{s:b}}", "result", "success", 1));
}

static int xc_rpc(void *self, const tbgw_rpc_req *r) {
    xc *c = self;
    if (!r->device) return reply(c, r, json_pack("{s:s}", "error", "Unsupported connector RPC"));
    xdev *d = learned(c, r->device);
    if (!d) return reply(c, r, json_pack("{s:s}", "error", "Device not found (no message from it yet)"));
    if (!c->connected) return reply(c, r, json_pack("{s:s}", "error", "not connected to the XMPP server"));
    if (strcmp(r->method, "set") == 0) return rpc_set(c, r, d);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(d->cfg, "serverSideRpc"), i, e) {
        const char *m = json_string_value(json_object_get(e, "methodRPC"));
        if (!m || strcmp(m, r->method) != 0) continue;
        const char *tmpl = json_string_value(json_object_get(e, "valueExpression"));
        json_t *data =
            json_pack("{s:I,s:s,s:O?}", "id", (json_int_t)r->id, "method", r->method, "params", r->params);
        tbgw_expr *ex = NULL;
        tbgw_err err;
        tbgw_buf out;
        tbgw_buf_init(&out);
        int ok = tmpl && data && tbgw_expr_compile(tmpl, &ex, &err) == 0 &&
                 tbgw_expr_render_cb(ex, resolve_py_json, data, TBGW_MISSING_NONE, &out) == 0;
        if (ok) send_chat(c, d->jid, tbgw_buf_cstr(&out));
        tbgw_buf_free(&out);
        tbgw_expr_free(ex);
        json_decref(data);
        if (!ok) return reply(c, r, json_pack("{s:s}", "error", "valueExpression could not be rendered"));
        const json_t *wr = json_object_get(e, "withResponse");
        if (!wr || json_is_true(wr)) return c->h->rpc_reply(c->h, r->handle, NULL, 1);
        return 0; /* no answer configured: the platform's own timeout answers */
    }
    return reply(c, r, json_pack("{s:s}", "error", "Method not found"));
}

const tbgw_connector_ops tbgw_connector_xmpp = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "xmpp",
    .create = xc_create,
    .run = xc_run,
    .stop = xc_stop,
    .destroy = xc_destroy,
    .on_attribute_update = xc_attr_update,
    .on_rpc = xc_rpc,
};
