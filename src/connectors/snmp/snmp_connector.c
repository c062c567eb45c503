/* The SNMP connector (connectors spec §4): every device has its own net-snmp session (single-session
 * API, asynchronous requests) and its own poll period; all sessions are served by one poll() loop on
 * the connector thread, so a dead agent's timeouts never delay another device. The loop sleeps on
 * the sessions' sockets and host->downlink_fd until an answer, downlink work, the next poll or
 * net-snmp's next retransmission (snmp_sess_select_info2) is due. */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net-snmp/library/large_fd_set.h>

#include <tbgw/connkit.h>

#include "util/json.h"
#include "connectors/snmp/snmpc.h"
#include "util/time.h"
#include "util/wakefd.h"

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static tbgw_logger *lib_log;

static int lib_log_cb(int major, int minor, void *server_arg, void *client_arg) {
    (void)major, (void)minor, (void)client_arg;
    const struct snmp_log_message *m = server_arg;
    if (!m || !m->msg) return 0;
    size_t n = strlen(m->msg);
    while (n && m->msg[n - 1] == '\n') n--;
    TBGW_LOG(lib_log, m->priority <= LOG_WARNING ? TBGW_WARNING : TBGW_DEBUG, "net-snmp: %.*s", (int)n,
             m->msg);
    return 0;
}

/* net-snmp is initialised once per process: no configuration files, no MIB files (numeric OIDs
 * only), no persistent state, its log lines into ours. */
static void lib_init(void) {
    lib_log = tbgw_logger_get("connector.snmp");
    setenv("MIBS", "", 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_QUICK_PRINT, 1);
    snmp_disable_log();
    netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, lib_log_cb, NULL);
    init_snmp("tbgw");
}

void snmp_warn(snmp *s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TBGW_WARNF(s->host->log, "%s", msg);
}

void snmp_dev_error(snmp_dev *d, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int64_t now = tbgw_mono_ms();
    tbgw_logger *lg = d->s->host->log;
    if (strcmp(msg, d->last_err) || now - d->last_err_ts >= 60000) {
        if (d->err_repeats)
            TBGW_WARNF(lg, "%s: %s (%llu time(s) since the last report)", d->cfg->name, msg,
                       (unsigned long long)d->err_repeats + 1);
        else
            TBGW_WARNF(lg, "%s: %s", d->cfg->name, msg);
        snprintf(d->last_err, sizeof d->last_err, "%s", msg);
        d->last_err_ts = now;
        d->err_repeats = 0;
    } else {
        d->err_repeats++;
        TBGW_DEBUGF(lg, "%s: %s", d->cfg->name, msg);
    }
    snprintf(d->s->last_error, sizeof d->s->last_error, "%s: %s", d->cfg->name, msg);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static int is_numeric(const char *h) {
    unsigned char b[16];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void *resolve_thread(void *arg) {
    snmp_dev *d = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    d->resolved[0] = 0;
    if (!getaddrinfo(d->cfg->host, NULL, &hints, &ai) && ai) {
        void *a = ai->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                           : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, a, d->resolved, sizeof d->resolved);
    }
    if (ai) freeaddrinfo(ai);
    atomic_store(&d->resolve_state, 2);
    if (d->s->resolved_fd >= 0) tbgw_wakefd_kick(d->s->resolved_fd); /* the loop joins it at once */
    return NULL;
}

static int open_session(snmp_dev *d, const char *addr) {
    const snmp_dev_cfg *c = d->cfg;
    netsnmp_session ss;
    snmp_sess_init(&ss);
    char peer[128];
    snprintf(peer, sizeof peer, strchr(addr, ':') ? "udp6:[%s]:%d" : "udp:%s:%d", addr, c->port);
    ss.peername = peer;
    ss.version = c->version;
    ss.timeout = (long)(c->timeout_ms * 1000);
    ss.retries = c->retries;
    ss.flags |= SNMP_FLAGS_DONT_PROBE; /* engine discovery happens asynchronously with the first request */
    if (c->version == SNMP_VERSION_3) {
        ss.securityName = c->user;
        ss.securityNameLen = strlen(c->user);
        ss.securityLevel = c->sec_level;
        if (c->context) {
            ss.contextName = c->context;
            ss.contextNameLen = strlen(c->context);
        }
        if (c->sec_level >= SNMP_SEC_LEVEL_AUTHNOPRIV) {
            ss.securityAuthProto = (oid *)c->auth_proto;
            ss.securityAuthProtoLen = c->auth_proto_len;
            ss.securityAuthKeyLen = USM_AUTH_KU_LEN;
            if (generate_Ku(ss.securityAuthProto, (u_int)ss.securityAuthProtoLen,
                            (const u_char *)c->auth_pass, strlen(c->auth_pass), ss.securityAuthKey,
                            &ss.securityAuthKeyLen) != SNMPERR_SUCCESS) {
                snprintf(d->open_error, sizeof d->open_error, "cannot derive the authentication key");
                return -1;
            }
        }
        if (c->sec_level == SNMP_SEC_LEVEL_AUTHPRIV) {
            ss.securityPrivProto = (oid *)c->priv_proto;
            ss.securityPrivProtoLen = c->priv_proto_len;
            ss.securityPrivKeyLen = USM_PRIV_KU_LEN;
            if (generate_Ku(ss.securityAuthProto, (u_int)ss.securityAuthProtoLen,
                            (const u_char *)c->priv_pass, strlen(c->priv_pass), ss.securityPrivKey,
                            &ss.securityPrivKeyLen) != SNMPERR_SUCCESS) {
                snprintf(d->open_error, sizeof d->open_error, "cannot derive the privacy key");
                return -1;
            }
        }
    } else {
        ss.community = (u_char *)c->community;
        ss.community_len = strlen(c->community);
    }
    d->sess = snmp_sess_open(&ss);
    if (!d->sess) {
        char *msg = NULL;
        int e1, e2;
        snmp_error(&ss, &e1, &e2, &msg);
        snprintf(d->open_error, sizeof d->open_error, "cannot open a session to %s: %s", peer,
                 msg ? msg : "?");
        free(msg);
        return -1;
    }
    netsnmp_transport *t = snmp_sess_transport(d->sess);
    d->fd = t ? t->sock : -1;
    TBGW_DEBUGF(d->s->host->log, "%s: session to %s (SNMP v%s)", c->name, peer,
                c->version == SNMP_VERSION_1    ? "1"
                : c->version == SNMP_VERSION_2c ? "2c"
                                                : "3");
    return 0;
}

static void close_session(snmp_dev *d, const char *why) {
    if (!d->sess) return;
    /* net-snmp calls back for outstanding requests while closing: the operations are still alive
     * then and the callbacks ignore them (closing); they are failed afterwards */
    d->closing = 1;
    snmp_sess_close(d->sess);
    d->closing = 0;
    d->sess = NULL;
    d->fd = -1;
    snmp_dev_fail_all(d, why);
}

/* Opens sessions that are due; host names go through the resolver thread first. */
static void sessions_tick(snmp *s, snmp_dev *d, int64_t now) {
    if (d->sess || now < d->next_open) return;
    const char *addr = d->cfg->host;
    if (!is_numeric(addr)) {
        int st = atomic_load(&d->resolve_state);
        if (st == 0) {
            atomic_store(&d->resolve_state, 1);
            if (pthread_create(&d->resolver, NULL, resolve_thread, d)) {
                atomic_store(&d->resolve_state, 0);
                d->next_open = now + 1000;
            } else {
                d->resolver_joinable = 1;
            }
            return;
        }
        if (st == 1) return;
        pthread_join(d->resolver, NULL);
        d->resolver_joinable = 0;
        atomic_store(&d->resolve_state, 0);
        if (!d->resolved[0]) {
            snprintf(d->open_error, sizeof d->open_error, "cannot resolve %s", d->cfg->host);
            goto failed;
        }
        addr = d->resolved;
    }
    if (open_session(d, addr) == 0) return;
failed:
    d->errors++;
    s->host->stat_add(s->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
    snmp_dev_error(d, "%s", d->open_error);
    d->next_open = now + (d->cfg->poll_ms < 30000 ? d->cfg->poll_ms : 30000);
}

/* ---- polling ------------------------------------------------------------------------------ */

static void start_cycle(snmp *s, snmp_dev *d, int64_t now) {
    (void)s;
    d->cycle_start = tbgw_now_ms();
    d->next_poll =
        (d->next_poll + d->cfg->poll_ms > now) ? d->next_poll + d->cfg->poll_ms : now + d->cfg->poll_ms;
    if (!d->cfg->n_items) return;
    d->cycle_results = json_object();
    d->cycle_left = d->cfg->n_items;
    d->cycle_failed = 0;
    d->polls++;
    for (size_t i = 0; i < d->cfg->n_items; i++) {
        snmp_op *op = calloc(1, sizeof *op);
        if (!op) {
            d->cycle_left--;
            continue;
        }
        op->item = &d->cfg->items[i];
        op->kind = OP_POLL;
        snmp_op_submit(d, op, 0);
    }
    snmp_dev_kick(d);
}

/* The reference converter's shapes: objects -> {str(k): str(v)}, lists -> joined with ",". */
static json_t *shape(const json_t *r) {
    tbgw_buf t;
    tbgw_buf_init(&t);
    json_t *out = NULL;
    if (json_is_object(r)) {
        if (!json_object_size(r)) goto done;
        out = json_object();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)r, k, v) {
            tbgw_buf_reset(&t);
            snmp_json_text(v, &t);
            json_object_set_new(out, k, json_stringn(t.p ? t.p : "", t.len));
        }
    } else if (json_is_array(r)) {
        if (!json_array_size(r)) goto done;
        for (size_t i = 0; i < json_array_size(r); i++) {
            if (i) tbgw_buf_putc(&t, ',');
            snmp_json_text(json_array_get(r, i), &t);
        }
        out = json_stringn(t.p ? t.p : "", t.len);
    } else if (r && !json_is_null(r)) {
        out = json_incref((json_t *)r);
    }
done:
    tbgw_buf_free(&t);
    return out;
}

static void emit_cycle(snmp *s, snmp_dev *d) {
    const tbgw_host *h = s->host;
    json_t *res = d->cycle_results;
    d->cycle_results = NULL;
    if (!json_object_size(res)) {
        json_decref(res);
        return;
    }
    tbgw_converted *c = NULL;
    if (d->cfg->custom) {
        char *text = tbgw_json_dumps(res, 0);
        tbgw_err err = {0};
        int rc = text ? tbgw_custom_conv_convert(d->cfg->custom, d->cfg->name, (const uint8_t *)text,
                                                 strlen(text), &c, &err)
                      : TBGW_ENOMEM;
        free(text);
        if (rc < 0) {
            tbgw_converted_free(c);
            c = NULL;
            h->stat_add(h, TBGW_STAT_CONVERTER_ERRORS, 1);
            snmp_warn(s, "%s: custom converter: %s", d->cfg->name, err.msg);
        }
    } else if ((c = tbgw_converted_new(d->cfg->name, d->cfg->type))) {
        c->rs = d->cfg->has_rs ? &d->cfg->rs : NULL;
        for (size_t i = 0; i < d->cfg->n_items; i++) {
            const snmp_item *it = &d->cfg->items[i];
            json_t *v = shape(json_object_get(res, it->key));
            if (!v) continue;
            tbgw_value tv;
            char *tmp = NULL;
            if (tbgw_value_from_json(v, &tv, &tmp) == 0) {
                const tbgw_report_strategy *rs = it->has_rs ? &it->rs : NULL;
                if (it->is_attr)
                    tbgw_converted_add_attribute(c, it->key, &tv, rs);
                else
                    tbgw_converted_add_telemetry(c, d->cycle_start, it->key, &tv, rs);
            }
            free(tmp);
            json_decref(v);
        }
        if (!c->n_attributes && !c->n_telemetry) {
            tbgw_converted_free(c);
            c = NULL;
        }
    }
    json_decref(res);
    if (!c) return;
    h->stat_add(h, TBGW_STAT_CONV_PROCESSED, 1);
    h->emit(h, c);
}

/* A timeout ends the device's cycle: the polls still queued are dropped, nothing is sent. */
static void drop_polls(snmp_dev *d) {
    snmp_op **pp = &d->queue;
    d->queue_tail = NULL;
    while (*pp) {
        snmp_op *op = *pp;
        if (op->kind == OP_POLL && !op->reqid) {
            *pp = op->next;
            d->queued--;
            d->cycle_left--;
            snmp_op_free(op);
            continue;
        }
        d->queue_tail = op;
        pp = &op->next;
    }
}

static void poll_done(snmp_dev *d, snmp_op *op, int ok, const char *error) {
    snmp *s = d->s;
    const tbgw_host *h = s->host;
    if (s->stop) { /* the session closes: nothing of this poll is sent */
        if (!--d->cycle_left) {
            json_decref(d->cycle_results);
            d->cycle_results = NULL;
        }
        return;
    }
    if (ok) {
        h->stat_add(h, TBGW_STAT_MSGS_RECEIVED, 1);
        if (op->result) json_object_set(d->cycle_results, op->item->key, op->result);
    } else if (!strcmp(error, "timeout")) {
        d->cycle_failed = 1;
        drop_polls(d);
    } else {
        d->errors++;
        h->stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
        snmp_dev_error(d, "%s %s: %s", op->item->key, snmp_method_name(op->item->method), error);
    }
    if (--d->cycle_left) return;
    if (d->cycle_failed) {
        json_decref(d->cycle_results);
        d->cycle_results = NULL;
        if (!d->failing) {
            snmp_warn(s, "%s: no answer from %s:%d within %lld ms; this poll is dropped", d->cfg->name,
                      d->cfg->host, d->cfg->port, (long long)d->cfg->timeout_ms);
            snprintf(s->last_error, sizeof s->last_error, "%s: timeout", d->cfg->name);
        }
        d->failing = 1;
        return;
    }
    if (d->failing) TBGW_INFOF(h->log, "%s: the agent answers again", d->cfg->name);
    d->failing = 0;
    emit_cycle(s, d);
}

/* ---- downlink ----------------------------------------------------------------------------- */

/* RPC results: the uplink shapes for objects and lists (texts), str() of scalars. */
static json_t *rpc_result(const json_t *r) {
    if (json_is_object(r) || json_is_array(r)) {
        json_t *v = shape(r);
        return v ? v : json_object();
    }
    tbgw_buf t;
    tbgw_buf_init(&t);
    if (r) snmp_json_text(r, &t);
    json_t *j = json_stringn(t.p ? t.p : "", t.len);
    tbgw_buf_free(&t);
    return j;
}

void snmp_op_done(snmp_op *op, int ok, const char *error) {
    snmp_dev *d = op->dev;
    const tbgw_host *h = d->s->host;
    switch (op->kind) {
    case OP_POLL:
        poll_done(d, op, ok, error);
        break;
    case OP_RPC:
        if (ok)
            tbgw_rpc_result(h, op->rpc, rpc_result(op->result));
        else
            tbgw_rpc_failed(h, op->rpc, "%s", error);
        break;
    case OP_ATTR:
        if (ok)
            TBGW_DEBUGF(h->log, "%s: attribute update written (%s)", d->cfg->name,
                        snmp_method_name(op->item->method));
        else
            snmp_dev_error(d, "attribute update (%s): %s", snmp_method_name(op->item->method), error);
        break;
    }
    snmp_op_free(op);
}

static snmp_dev *find_dev(snmp *s, const char *name) {
    for (size_t i = 0; name && i < s->n_devs; i++)
        if (!strcmp(s->devs[i].cfg->name, name)) return &s->devs[i];
    return NULL;
}

static void submit_downlink(snmp_dev *d, const snmp_item *it, snmp_item *owned, const json_t *value, int kind,
                            uint64_t rpc) {
    const tbgw_host *h = d->s->host;
    snmp_op *op = calloc(1, sizeof *op);
    if (!op || !d->sess) {
        if (kind == OP_RPC) tbgw_rpc_failed(h, rpc, "%s", op ? d->open_error : "out of memory");
        if (owned) {
            snmp_item_free(owned);
            free(owned);
        }
        free(op);
        return;
    }
    op->item = it;
    op->owned = owned;
    op->kind = kind;
    op->rpc = rpc;
    op->value = value ? json_deep_copy(value) : NULL;
    snmp_op_submit(d, op, 1);
    snmp_dev_kick(d);
}

/* Reserved get/set: params "method=get;oid=1.3.6...;" (set: also value=..; optional type=..); segments
 * without '=' are ignored. */
static int reserved_rpc(snmp *s, snmp_dev *d, const tbgw_rpc_req *r) {
    const tbgw_host *h = s->host;
    tbgw_params kv = {0};
    tbgw_err err = {0};
    if (tbgw_params_parse(json_is_string(r->params) ? json_string_value(r->params) : "", TBGW_PARAMS_LENIENT,
                          &kv, &err) < 0)
        return tbgw_rpc_failed(h, r->handle, "params: %s", err.msg), 0;
    json_t *o = tbgw_params_object(&kv);
    tbgw_params_free(&kv);
    if (!o) return tbgw_rpc_failed(h, r->handle, "out of memory"), 0;
    if (!json_object_get(o, "method")) json_object_set_new(o, "method", json_string(r->method));
    snmp_item *it = calloc(1, sizeof *it);
    if (!it || snmp_item_parse(o, "params", 3, it, &err) < 0) {
        tbgw_rpc_failed(h, r->handle, "%s", it ? err.msg : "out of memory");
        if (it) snmp_item_free(it);
        free(it);
        json_decref(o);
        return 0;
    }
    json_t *value = json_incref(json_object_get(o, "value"));
    json_decref(o);
    submit_downlink(d, it, it, value, OP_RPC, r->handle);
    json_decref(value);
    return 0;
}

static int on_rpc(snmp *s, const tbgw_rpc_req *r) {
    const tbgw_host *h = s->host;
    snmp_dev *d = find_dev(s, r->device);
    if (!d) {
        tbgw_rpc_failed(h, r->handle, "device not found");
        return TBGW_ENOENT;
    }
    if (!strcmp(r->method, "get") || !strcmp(r->method, "set")) return reserved_rpc(s, d, r);
    for (size_t i = 0; i < d->cfg->n_rpcs; i++)
        if (snmp_filter_matches(&d->cfg->rpcs[i], r->method)) {
            submit_downlink(d, &d->cfg->rpcs[i], NULL, r->params, OP_RPC, r->handle);
            return 0;
        }
    tbgw_rpc_failed(h, r->handle, "no serverSideRpcRequests entry of %s matches method '%s'", d->cfg->name,
                    r->method);
    return TBGW_ENOENT;
}

static int on_attr(snmp *s, const tbgw_attr_update *u) {
    snmp_dev *d = find_dev(s, u->device);
    if (!d) return TBGW_ENOENT;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)u->data, k, v) {
        for (size_t i = 0; i < d->cfg->n_attr_updates; i++)
            if (snmp_filter_matches(&d->cfg->attr_updates[i], k))
                submit_downlink(d, &d->cfg->attr_updates[i], NULL, v, OP_ATTR, 0);
    }
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Sleeps in one poll() on every session's socket and host->downlink_fd until an answer, downlink
 * work (dispatched at once) or the next timer (timeout_ms, < 0: none); reads what arrived. 1 when
 * the connector should stop. */
static int serve(snmp *s, int64_t timeout_ms) {
    struct pollfd *pf = calloc(s->n_devs + 2, sizeof *pf);
    snmp_dev **owner = calloc(s->n_devs + 2, sizeof *owner);
    if (!pf || !owner) {
        free(pf);
        free(owner);
        return tbgw_host_poll(s->host, NULL, 0, timeout_ms < 0 || timeout_ms > 100 ? 100 : timeout_ms) == 1;
    }
    size_t n = 0;
    if (s->resolved_fd >= 0) { /* slot 0: a resolver thread finished */
        pf[n].fd = s->resolved_fd;
        pf[n].events = POLLIN;
        owner[n++] = NULL;
    }
    for (size_t i = 0; i < s->n_devs; i++)
        if (s->devs[i].sess && s->devs[i].fd >= 0) {
            pf[n].fd = s->devs[i].fd;
            pf[n].events = POLLIN;
            owner[n++] = &s->devs[i];
        }
    int r = tbgw_host_poll(s->host, pf, n, timeout_ms);
    if (r < 0) tbgw_sleep_ms(10); /* poll() failing (ENOMEM): no busy loop */
    /* sessions are only closed by the loop itself, so owner[] is still valid after a dispatch */
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (!owner[i]) {
            if (pf[i].revents) tbgw_wakefd_drain(pf[i].fd);
            continue;
        }
        if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP)) || !owner[i]->sess) continue;
        NETSNMP_LARGE_FD_ZERO(&s->fdset);
        NETSNMP_LARGE_FD_SET(pf[i].fd, &s->fdset);
        snmp_sess_read2(owner[i]->sess, &s->fdset);
    }
    free(pf);
    free(owner);
    return r == 1;
}

/* Milliseconds until net-snmp's next retransmission or timeout of d's session (INT64_MAX: none). */
static int64_t session_timer_ms(snmp *s, snmp_dev *d) {
    int numfds = 0, block = 1;
    struct timeval tv = {0, 0};
    NETSNMP_LARGE_FD_ZERO(&s->fdset);
    snmp_sess_select_info2(d->sess, &numfds, &s->fdset, &tv, &block);
    if (block) return INT64_MAX;
    return (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
}

/* Disconnected when no device answers (every one without a session or failing), else connected. */
static void update_state(snmp *s) {
    size_t ok = 0;
    for (size_t i = 0; i < s->n_devs; i++)
        if (s->devs[i].sess && !s->devs[i].failing) ok++;
    tbgw_conn_state st = (!s->n_devs || ok) ? TBGW_CONN_CONNECTED : TBGW_CONN_DISCONNECTED;
    if (st == s->state) return;
    s->state = st;
    if (s->host->set_state) s->host->set_state(s->host, st, st == TBGW_CONN_CONNECTED ? NULL : s->last_error);
}

static int op_run(void *self) {
    snmp *s = self;
    const tbgw_host *h = s->host;
    netsnmp_large_fd_set_init(&s->fdset, 1024);
    int64_t now = tbgw_mono_ms();
    for (size_t i = 0; i < s->n_devs; i++) {
        snmp_dev *d = &s->devs[i];
        d->fd = -1;
        d->next_open = now;
        /* first polls spread over a short window so devices do not fire together */
        d->next_poll = now + (int64_t)(i * 10 % 1000);
    }
    if (h->set_state) h->set_state(h, TBGW_CONN_CONNECTED, NULL);
    s->state = TBGW_CONN_CONNECTED;
    TBGW_INFOF(h->log, "snmp: polling %zu device(s)", s->n_devs);
    while (!s->stop) {
        now = tbgw_mono_ms();
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < s->n_devs; i++) {
            snmp_dev *d = &s->devs[i];
            sessions_tick(s, d, now);
            if (!d->sess) {
                /* a host name being resolved: the thread kicks resolved_fd when it is done */
                int64_t due = atomic_load(&d->resolve_state) ? (s->resolved_fd >= 0 ? INT64_MAX : now + 20)
                                                             : d->next_open;
                if (due < next) next = due;
                continue;
            }
            if (now >= d->next_poll && !d->cycle_left) start_cycle(s, d, now);
            if (d->queue) snmp_sess_timeout(d->sess);
            if (!d->cycle_left && d->next_poll < next) next = d->next_poll;
            if (d->queue) {
                int64_t t = session_timer_ms(s, d);
                if (t != INT64_MAX && now + t < next) next = now + t;
            }
        }
        update_state(s);
        int64_t wait = -1;
        if (next != INT64_MAX) {
            wait = next - tbgw_mono_ms();
            if (wait < 0) wait = 0;
        }
        if (serve(s, wait)) {
            s->stop = 1;
            break;
        }
    }
    for (size_t i = 0; i < s->n_devs; i++) {
        snmp_dev *d = &s->devs[i];
        close_session(d, "the connector stopped");
        json_decref(d->cycle_results);
        d->cycle_results = NULL;
        d->cycle_left = 0;
        if (d->resolver_joinable) {
            pthread_join(d->resolver, NULL);
            d->resolver_joinable = 0;
            atomic_store(&d->resolve_state, 0);
        }
    }
    netsnmp_large_fd_set_cleanup(&s->fdset);
    s->state = TBGW_CONN_STOPPED;
    return 0;
}

static void snmp_free(snmp *s) {
    if (!s) return;
    if (s->resolved_fd >= 0) close(s->resolved_fd);
    free(s->devs);
    snmp_config_free(&s->cfg);
    free(s);
}

static int op_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    pthread_once(&lib_once, lib_init);
    snmp *s = calloc(1, sizeof *s);
    if (!s) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    s->host = host;
    s->resolved_fd = -1;
    int rc = snmp_config_parse(&s->cfg, cfg, host, err);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->resolved_fd = tbgw_wakefd_new(); /* -1: resolutions are looked at every 20 ms instead */
    s->n_devs = s->cfg.n_devices;
    s->devs = calloc(s->n_devs + 1, sizeof *s->devs);
    if (!s->devs) {
        snmp_free(s);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->n_devs; i++) {
        s->devs[i].s = s;
        s->devs[i].cfg = &s->cfg.devices[i];
        s->devs[i].fd = -1;
        snprintf(s->devs[i].open_error, sizeof s->devs[i].open_error, "no session to the agent yet");
    }
    *self = s;
    return 0;
}

static void op_stop(void *self) {
    snmp *s = self;
    s->stop = 1;
}

static void op_destroy(void *self) {
    snmp_free(self);
}

static int op_rpc(void *self, const tbgw_rpc_req *r) {
    return on_rpc(self, r);
}

static int op_attr(void *self, const tbgw_attr_update *u) {
    return on_attr(self, u);
}

const tbgw_connector_ops tbgw_connector_snmp = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "snmp",
    .create = op_create,
    .run = op_run,
    .stop = op_stop,
    .destroy = op_destroy,
    .on_attribute_update = op_attr,
    .on_rpc = op_rpc,
};
