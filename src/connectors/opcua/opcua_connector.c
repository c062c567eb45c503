/* OPC-UA connector: connects with our own client stack, discovers the devices of mapping[] and their
 * nodes, and delivers values by polling or subscriptions (spec gateway.md §7.3). Reconnects with
 * backoff; after a reconnect or a lost subscription everything is resolved and subscribed again. */
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/time.h"

#define MAX_DEVICE_MATCHES 256
#define RETRY_SCAN_MS      5000 /* a node not found or not subscribed is looked for again this soon */

/* ------------------------------------------------------------------ devices */

static void free_devices(opcua_conn *oc) {
    for (size_t i = 0; i < oc->n_devs; i++) {
        opcua_device *d = &oc->devs[i];
        for (size_t k = 0; k < d->n_dps; k++) {
            tbgw_ua_nodeid_clear(&d->dps[k].node);
            free(d->dps[k].node_text);
        }
        free(d->dps);
        tbgw_ua_nodeid_clear(&d->node);
        free(d->name);
        free(d->profile);
        tbgw_converted_free(d->pending);
    }
    free(oc->devs);
    free(oc->flat);
    oc->devs = NULL;
    oc->flat = NULL;
    oc->n_devs = oc->n_flat = 0;
}

opcua_device *opcua_find_device(opcua_conn *oc, const char *name) {
    for (size_t i = 0; name && i < oc->n_devs; i++)
        if (strcmp(oc->devs[i].name, name) == 0) return &oc->devs[i];
    return NULL;
}

/* Expands ${...} parts of a name/profile expression with the values of the nodes they name. */
static char *expand_expr(opcua_conn *oc, const char *expr, opcua_src src, const tbgw_ua_nodeid *base) {
    if (src == OPCUA_SRC_CONST || !strstr(expr, "${")) return strdup(expr);
    tbgw_buf out;
    tbgw_buf_init(&out);
    const char *p = expr;
    while (*p) {
        const char *a = strstr(p, "${");
        const char *b = a ? strchr(a + 2, '}') : NULL;
        if (!a || !b) {
            tbgw_buf_puts(&out, p);
            break;
        }
        tbgw_buf_append(&out, p, (size_t)(a - p));
        char *body = strndup(a + 2, (size_t)(b - a - 2));
        tbgw_ua_nodeid id;
        int n = body ? opcua_resolve(oc->client, oc->cache, base, body, &id, 1) : TBGW_ENOMEM;
        free(body);
        if (n <= 0) {
            tbgw_buf_free(&out);
            return NULL;
        }
        tbgw_ua_datavalue dv;
        int rc = tbgw_ua_read(oc->client, &id, 1, TBGW_UA_ATTR_VALUE, &dv);
        tbgw_ua_nodeid_clear(&id);
        if (rc) {
            tbgw_buf_free(&out);
            return NULL;
        }
        tbgw_value v;
        char *tmp = NULL;
        if (opcua_value_convert(&dv, "", &v, &tmp) == 0) {
            if (v.type == TBGW_V_STRING || v.type == TBGW_V_JSON)
                tbgw_buf_puts(&out, v.u.s);
            else if (v.type != TBGW_V_NULL)
                tbgw_buf_json_value(&out, &v);
        }
        free(tmp);
        tbgw_ua_datavalue_clear(&dv);
        p = b + 1;
    }
    char *s = out.oom ? NULL : strdup(tbgw_buf_cstr(&out));
    tbgw_buf_free(&out);
    return s;
}

static int resolve_dp(opcua_conn *oc, opcua_device *d, opcua_dp *dp) {
    if (dp->cfg->type == OPCUA_SRC_CONST) return 0;
    char *body = opcua_expr_body(dp->cfg->value);
    if (!body) return TBGW_ENOMEM;
    int n = opcua_resolve(oc->client, oc->cache, &d->node, body, &dp->node, 1);
    free(body);
    if (n < 0) return n;
    if (n == 0) {
        TBGW_WARNF(oc->host->log, "Node not found; device: %s, key: %s, path: %s", d->name, dp->cfg->key,
                   dp->cfg->value);
        oc->incomplete++;
        return 0;
    }
    dp->resolved = 1;
    tbgw_buf t;
    tbgw_buf_init(&t);
    tbgw_ua_nodeid_format(&dp->node, &t);
    dp->node_text = t.oom ? NULL : strdup(tbgw_buf_cstr(&t));
    tbgw_buf_free(&t);
    return 0;
}

static int add_device(opcua_conn *oc, const opcua_mapping *m, tbgw_ua_nodeid *node, size_t *cap) {
    char *name = expand_expr(oc, m->name_expr, m->name_src, node);
    char *profile = expand_expr(oc, m->profile_expr, m->profile_src, node);
    if (!tbgw_ua_client_connected(oc->client)) {
        free(name);
        free(profile);
        return TBGW_EIO;
    }
    if (!name || !*name) {
        TBGW_WARNF(oc->host->log, "device name expression %s could not be evaluated; device skipped",
                   m->name_expr);
        free(name);
        free(profile);
        return 0;
    }
    if (oc->n_devs == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        opcua_device *nd = realloc(oc->devs, nc * sizeof *nd);
        if (!nd) {
            free(name);
            free(profile);
            return TBGW_ENOMEM;
        }
        oc->devs = nd;
        *cap = nc;
    }
    opcua_device *d = &oc->devs[oc->n_devs++];
    memset(d, 0, sizeof *d);
    d->map = m;
    d->node = *node;
    *node = tbgw_ua_nodeid_num(0, 0);
    d->name = name;
    d->profile = profile ? profile : strdup("default");
    d->n_dps = m->n_attrs + m->n_ts;
    d->dps = calloc(d->n_dps ? d->n_dps : 1, sizeof *d->dps);
    if (!d->dps || !d->profile) return TBGW_ENOMEM;
    for (size_t i = 0; i < d->n_dps; i++) {
        opcua_dp *dp = &d->dps[i];
        dp->is_attr = i < m->n_attrs;
        dp->cfg = dp->is_attr ? &m->attrs[i] : &m->ts[i - m->n_attrs];
        dp->node = tbgw_ua_nodeid_num(0, 0);
        int rc = resolve_dp(oc, d, dp);
        if (rc) return rc;
    }
    return 0;
}

static void link_devices(opcua_conn *oc) {
    size_t total = 0;
    for (size_t i = 0; i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) {
            oc->devs[i].dps[k].dev = &oc->devs[i];
            total += oc->devs[i].dps[k].resolved;
        }
    oc->flat = calloc(total ? total : 1, sizeof *oc->flat);
    oc->n_flat = 0;
    for (size_t i = 0; oc->flat && i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++)
            if (oc->devs[i].dps[k].resolved) oc->flat[oc->n_flat++] = &oc->devs[i].dps[k];
}

/* Discovers devices and their nodes. */
static int scan(opcua_conn *oc) {
    free_devices(oc);
    oc->incomplete = 0;
    opcua_cache_free(oc->cache);
    oc->cache = opcua_cache_new();
    if (!oc->cache) return TBGW_ENOMEM;
    size_t cap = 0;
    tbgw_ua_nodeid *nodes = calloc(MAX_DEVICE_MATCHES, sizeof *nodes);
    if (!nodes) return TBGW_ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < oc->cfg.n_maps; i++) {
        const opcua_mapping *m = &oc->cfg.maps[i];
        int n = opcua_resolve(oc->client, oc->cache, NULL, m->pattern, nodes, MAX_DEVICE_MATCHES);
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0) TBGW_WARNF(oc->host->log, "mapping[%zu]: no node matches %s", i, m->pattern);
        for (int k = 0; k < n; k++) {
            if (rc == 0) rc = add_device(oc, m, &nodes[k], &cap);
            tbgw_ua_nodeid_clear(&nodes[k]);
        }
    }
    free(nodes);
    link_devices(oc);
    if (rc) return rc;
    if (!oc->flat) return TBGW_ENOMEM;
    for (size_t i = 0; i < oc->n_devs; i++) {
        oc->host->device_connected(oc->host, oc->devs[i].name, oc->devs[i].profile);
        TBGW_INFOF(oc->host->log, "Added device node: %s", oc->devs[i].name);
    }
    TBGW_INFOF(oc->host->log, "%zu device(s), %zu node(s) mapped", oc->n_devs, oc->n_flat);
    return 0;
}

/* ------------------------------------------------------------------ values */

static int64_t pick_ts(const opcua_dp *dp, const tbgw_ua_datavalue *dv, int64_t now) {
    int64_t dt = 0;
    if (dp->cfg->tsloc == OPCUA_TS_SOURCE && (dv->mask & TBGW_UA_DV_SOURCE_TS)) dt = dv->source_ts;
    if (dp->cfg->tsloc == OPCUA_TS_SERVER && (dv->mask & TBGW_UA_DV_SERVER_TS)) dt = dv->server_ts;
    return dt > 0 ? tbgw_ua_datetime_to_ms(dt) : now;
}

static tbgw_converted *pending_for(opcua_device *d) {
    if (!d->pending) d->pending = tbgw_converted_new(d->name, d->profile);
    if (d->pending && d->map->has_rs) d->pending->rs = &d->map->rs;
    return d->pending;
}

static void add_value(opcua_conn *oc, opcua_dp *dp, const tbgw_ua_datavalue *dv, int64_t now) {
    tbgw_converted *c = pending_for(dp->dev);
    if (!c) return;
    tbgw_value v;
    char *tmp = NULL;
    if (opcua_value_convert(dv, dp->node_text ? dp->node_text : "", &v, &tmp)) {
        oc->host->stat_add(oc->host, TBGW_STAT_CONVERTER_ERRORS, 1);
        return;
    }
    const tbgw_report_strategy *rs = dp->cfg->has_rs ? &dp->cfg->rs : NULL;
    if (dp->is_attr)
        tbgw_converted_add_attribute(c, dp->cfg->key, &v, rs);
    else
        tbgw_converted_add_telemetry(c, pick_ts(dp, dv, now), dp->cfg->key, &v, rs);
    free(tmp);
}

static void add_constants(opcua_conn *oc, int64_t now) {
    for (size_t i = 0; i < oc->n_devs; i++) {
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) {
            opcua_dp *dp = &oc->devs[i].dps[k];
            if (dp->cfg->type != OPCUA_SRC_CONST) continue;
            tbgw_converted *c = pending_for(&oc->devs[i]);
            json_t *j = json_loads(dp->cfg->value, JSON_DECODE_ANY, NULL);
            tbgw_value v = tbgw_value_string(dp->cfg->value);
            char *tmp = NULL;
            if (j) tbgw_value_from_json(j, &v, &tmp);
            const tbgw_report_strategy *rs = dp->cfg->has_rs ? &dp->cfg->rs : NULL;
            if (c && dp->is_attr)
                tbgw_converted_add_attribute(c, dp->cfg->key, &v, rs);
            else if (c)
                tbgw_converted_add_telemetry(c, now, dp->cfg->key, &v, rs);
            free(tmp);
            json_decref(j);
        }
    }
}

static void flush(opcua_conn *oc) {
    tbgw_converted *head = NULL, **tail = &head;
    uint64_t n = 0;
    for (size_t i = 0; i < oc->n_devs; i++) {
        tbgw_converted *c = oc->devs[i].pending;
        if (!c) continue;
        oc->devs[i].pending = NULL;
        if (tbgw_converted_count(c) == 0) {
            tbgw_converted_free(c);
            continue;
        }
        n += tbgw_converted_count(c);
        *tail = c;
        tail = &c->next;
    }
    if (!head) return;
    oc->host->stat_add(oc->host, TBGW_STAT_CONV_PROCESSED, n);
    if (oc->host->emit(oc->host, head) == TBGW_EAGAIN)
        TBGW_WARNF(oc->host->log, "core saturated: %llu value(s) dropped", (unsigned long long)n);
}

static int poll_once(opcua_conn *oc) {
    int64_t now = tbgw_now_ms();
    if (oc->n_flat > 0) {
        tbgw_ua_nodeid *ids = malloc(oc->n_flat * sizeof *ids);
        tbgw_ua_datavalue *dvs = malloc(oc->n_flat * sizeof *dvs);
        if (!ids || !dvs) {
            free(ids);
            free(dvs);
            return TBGW_ENOMEM;
        }
        for (size_t i = 0; i < oc->n_flat; i++) ids[i] = oc->flat[i]->node; /* shallow: not freed */
        int rc = tbgw_ua_read(oc->client, ids, oc->n_flat, TBGW_UA_ATTR_VALUE, dvs);
        free(ids);
        if (rc) {
            free(dvs);
            return rc;
        }
        oc->host->stat_add(oc->host, TBGW_STAT_MSGS_RECEIVED, oc->n_flat);
        for (size_t i = 0; i < oc->n_flat; i++) {
            add_value(oc, oc->flat[i], &dvs[i], now);
            tbgw_ua_datavalue_clear(&dvs[i]);
        }
        free(dvs);
    }
    add_constants(oc, now);
    flush(oc);
    return 0;
}

static void on_data(void *ctx, uint32_t sub, uint32_t handle, const tbgw_ua_datavalue *dv) {
    opcua_conn *oc = ctx;
    if (sub != oc->sub_id || handle >= oc->n_flat) return;
    oc->host->stat_add(oc->host, TBGW_STAT_MSGS_RECEIVED, 1);
    add_value(oc, oc->flat[handle], dv, tbgw_now_ms());
}

static void on_sub_lost(void *ctx, uint32_t sub, uint32_t status) {
    opcua_conn *oc = ctx;
    if (sub == oc->sub_id) oc->sub_lost = 1;
}

static int subscribe(opcua_conn *oc) {
    oc->sub_lost = 0;
    oc->sub_id = 0;
    if (oc->n_flat == 0) return 0;
    int rc = tbgw_ua_sub_create(oc->client, (double)oc->cfg.sub_period_ms, &oc->sub_id);
    if (rc) return rc;
    tbgw_ua_nodeid *ids = malloc(oc->n_flat * sizeof *ids);
    uint32_t *handles = malloc(oc->n_flat * sizeof *handles);
    uint32_t *st = malloc(oc->n_flat * sizeof *st);
    if (!ids || !handles || !st) rc = TBGW_ENOMEM;
    for (size_t i = 0; rc == 0 && i < oc->n_flat; i++) {
        ids[i] = oc->flat[i]->node;
        handles[i] = (uint32_t)i;
    }
    if (rc == 0) rc = tbgw_ua_sub_add(oc->client, oc->sub_id, ids, handles, oc->n_flat, 0, st);
    size_t bad = 0;
    for (size_t i = 0; rc == 0 && i < oc->n_flat; i++) {
        if (!(st[i] & 0x80000000u)) continue;
        char nb[16];
        if (bad++ < 10)
            TBGW_WARNF(oc->host->log, "cannot subscribe to %s (device %s, key %s): %s",
                       oc->flat[i]->node_text, oc->flat[i]->dev->name, oc->flat[i]->cfg->key,
                       tbgw_ua_status_name(st[i], nb));
    }
    oc->incomplete += bad;
    if (rc == 0) TBGW_INFOF(oc->host->log, "Subscribed to %zu of %zu node(s)", oc->n_flat - bad, oc->n_flat);
    free(ids);
    free(handles);
    free(st);
    return rc;
}

/* ------------------------------------------------------------------ lifecycle */

/* The next discovery: after scanPeriodInMillis, or soon when some node was missing (a bad node is
 * never silently dropped: it is looked for again until it appears). */
static void schedule_scan(opcua_conn *oc, int64_t now) {
    int64_t period = oc->cfg.scan_period_ms > 0 ? oc->cfg.scan_period_ms : INT64_MAX / 2;
    if (oc->incomplete && period > RETRY_SCAN_MS) period = RETRY_SCAN_MS;
    oc->next_scan_ms = now + period;
}

static int conn_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    opcua_conn *oc = calloc(1, sizeof *oc);
    if (!oc) return TBGW_ENOMEM;
    oc->host = host;
    int rc = opcua_cfg_parse(cfg, host->config_dir, &oc->cfg, err);
    if (rc) {
        opcua_cfg_free(&oc->cfg);
        free(oc);
        return rc;
    }
    *self = oc;
    return 0;
}

static void set_state(opcua_conn *oc, tbgw_conn_state st, const char *text) {
    oc->state = st;
    size_t n = text ? strnlen(text, sizeof oc->last_error - 1) : 0;
    if (n) memcpy(oc->last_error, text, n);
    oc->last_error[n] = 0;
    oc->host->set_state(oc->host, st, text);
}

/* Waits ms in steps of at most 100 ms through host->wait. Returns 1 when asked to stop. */
static int idle(opcua_conn *oc, int64_t ms) {
    int64_t end = tbgw_mono_ms() + ms;
    do {
        int64_t left = end - tbgw_mono_ms();
        if (oc->stop || oc->host->wait(oc->host, (int)(left > 100 ? 100 : left < 0 ? 0 : left))) return 1;
    } while (tbgw_mono_ms() < end);
    return 0;
}

static int session_up(opcua_conn *oc) {
    tbgw_err err = {0};
    int rc = tbgw_ua_client_connect(oc->client, &err);
    if (rc) {
        set_state(oc, TBGW_CONN_DISCONNECTED, err.msg);
        return rc;
    }
    rc = scan(oc);
    if (rc == 0 && oc->cfg.subscriptions) rc = subscribe(oc);
    if (rc == 0 && oc->cfg.subscriptions) {
        add_constants(oc, tbgw_now_ms());
        flush(oc);
    }
    if (rc) {
        set_state(oc, TBGW_CONN_DISCONNECTED, tbgw_ua_client_last_error(oc->client));
        tbgw_ua_client_disconnect(oc->client);
        return rc;
    }
    set_state(oc, TBGW_CONN_CONNECTED, NULL);
    int64_t now = tbgw_mono_ms();
    oc->next_poll_ms = now;
    schedule_scan(oc, now);
    return 0;
}

/* One turn while connected: poll or publish, periodic re-discovery. */
static int turn(opcua_conn *oc) {
    int64_t now = tbgw_mono_ms();
    int rc = 0;
    if (now >= oc->next_scan_ms || oc->sub_lost) {
        if (oc->sub_lost) TBGW_WARNF(oc->host->log, "subscription lost; subscribing again");
        if (oc->sub_id)
            tbgw_ua_sub_delete(oc->client, oc->sub_id); /* also a lost one: the count of live ones */
        rc = scan(oc);
        if (rc == 0 && oc->cfg.subscriptions) rc = subscribe(oc);
        schedule_scan(oc, now);
        if (rc) return rc;
    }
    if (oc->cfg.subscriptions) {
        rc = tbgw_ua_client_poll(oc->client, 50);
        flush(oc);
        return rc;
    }
    if (now >= oc->next_poll_ms) {
        rc = poll_once(oc);
        oc->next_poll_ms += oc->cfg.poll_period_ms;
        if (oc->next_poll_ms < now) oc->next_poll_ms = now + oc->cfg.poll_period_ms;
        if (rc) return rc;
    }
    return tbgw_ua_client_poll(oc->client, 0);
}

static int conn_run(void *self) {
    opcua_conn *oc = self;
    tbgw_ua_client_cfg cc = {0};
    cc.url = oc->cfg.url;
    cc.timeout_ms = oc->cfg.timeout_ms;
    cc.session_timeout_ms = oc->cfg.session_timeout_ms;
    cc.app_uri = oc->cfg.app_uri;
    cc.username = oc->cfg.username;
    cc.password = oc->cfg.password;
    if (oc->cfg.cert_identity && oc->cfg.mode != 1) { /* certificates: the named policy applies */
        cc.security_policy = oc->cfg.security ? oc->cfg.security : "Basic256Sha256";
        cc.security_mode = oc->cfg.mode;
        cc.cert_path = oc->cfg.cert_path;
        cc.key_path = oc->cfg.key_path;
        cc.ca_path = oc->cfg.ca_path;
        cc.crl_path = oc->cfg.crl_path;
    }
    if (oc->cfg.cert_identity) { /* the X509 user token, when the server wants one (or asked for) */
        cc.user_cert_path = oc->cfg.cert_path;
        cc.user_key_path = oc->cfg.key_path;
        cc.user_token = oc->cfg.user_token;
    }
    cc.log = oc->host->log;
    cc.on_data = on_data;
    cc.on_sub_lost = on_sub_lost;
    cc.ctx = oc;
    oc->client = tbgw_ua_client_new(&cc);
    if (!oc->client) return TBGW_ENOMEM;
    if (!oc->cfg.cert_identity && oc->cfg.security && strcmp(oc->cfg.security, "None") != 0)
        TBGW_INFOF(oc->host->log,
                   "security policy %s is not in effect: the identity carries no certificates, "
                   "connecting with SecurityPolicy None",
                   oc->cfg.security);
    set_state(oc, TBGW_CONN_STARTING, NULL);
    tbgw_backoff bo;
    tbgw_backoff_init(&bo, oc->cfg.reconnect_delay_ms, 30000);
    int failures = 0, rc = 0;
    while (!oc->stop) {
        if (!tbgw_ua_client_connected(oc->client)) {
            if (session_up(oc) != 0) {
                failures++;
                if (failures == 1 || failures % 10 == 0)
                    TBGW_ERRORF(oc->host->log, "cannot connect to %s: %s (attempt %d)", oc->cfg.url,
                                oc->last_error, failures);
                oc->host->stat_add(oc->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
                if (oc->cfg.reconnect_retries > 0 && failures >= oc->cfg.reconnect_retries) {
                    rc = TBGW_EIO;
                    break;
                }
                if (idle(oc, tbgw_backoff_next(&bo))) break;
                continue;
            }
            failures = 0;
            tbgw_backoff_reset(&bo);
        }
        if (turn(oc) != 0 || !tbgw_ua_client_connected(oc->client)) {
            TBGW_WARNF(oc->host->log, "connection to %s lost: %s", oc->cfg.url,
                       tbgw_ua_client_last_error(oc->client));
            set_state(oc, TBGW_CONN_DISCONNECTED, tbgw_ua_client_last_error(oc->client));
            tbgw_ua_client_disconnect(oc->client);
            continue;
        }
        uint64_t bytes = tbgw_ua_client_bytes_received(oc->client);
        if (bytes > oc->bytes_reported) {
            oc->host->stat_add(oc->host, TBGW_STAT_BYTES_RECEIVED, bytes - oc->bytes_reported);
            oc->bytes_reported = bytes;
        }
        if (oc->host->wait(oc->host, oc->cfg.subscriptions ? 0 : 50)) break;
    }
    for (size_t i = 0; i < oc->n_devs; i++) oc->host->device_disconnected(oc->host, oc->devs[i].name);
    tbgw_ua_client_disconnect(oc->client);
    free_devices(oc);
    opcua_cache_free(oc->cache);
    oc->cache = NULL;
    tbgw_ua_client_free(oc->client);
    oc->client = NULL;
    set_state(oc, rc ? TBGW_CONN_FAILED : TBGW_CONN_STOPPED, rc ? oc->last_error : NULL);
    return rc;
}

static void conn_stop(void *self) {
    ((opcua_conn *)self)->stop = 1;
}

static void conn_destroy(void *self) {
    opcua_conn *oc = self;
    if (!oc) return;
    free_devices(oc);
    opcua_cache_free(oc->cache);
    tbgw_ua_client_free(oc->client);
    opcua_cfg_free(&oc->cfg);
    free(oc);
}

static void conn_status(void *self, tbgw_connector_status *out) {
    opcua_conn *oc = self;
    out->state = oc->state;
    snprintf(out->last_error, sizeof out->last_error, "%s", oc->last_error);
}

const tbgw_connector_ops tbgw_connector_opcua = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "opcua",
    .flags = 0,
    .create = conn_create,
    .run = conn_run,
    .stop = conn_stop,
    .destroy = conn_destroy,
    .on_attribute_update = opcua_on_attribute_update,
    .on_rpc = opcua_on_rpc,
    .on_attribute_response = NULL,
    .status = conn_status,
};
