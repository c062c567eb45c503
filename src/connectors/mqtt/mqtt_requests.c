/* MQTT connector requests (spec §7.1): connect/disconnect/attribute requests from devices, attribute
 * updates and server-side RPC from the platform, two-way RPC responses and their timeouts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/connkit.h>
#include "connectors/mqtt/mqtt_internal.h"
#include "util/json.h"
#include "util/time.h"

#define MQ_ATTR_REQ_TTL_MS 60000 /* pending attribute requests are forgotten after this */
#define MQ_GETSET_TIMEOUT  5000  /* reserved get/set default response timeout */

/* ------------------------------------------------------------------ template context */

/* Placeholders resolved against a context object; `json_prefix` placeholders are JSON-encoded
 * (RPC bodies encode ${params...}), everything else is written as text. */
typedef struct tctx {
    const json_t *root;
    const char *json_prefix;
} tctx;

static int resolve(void *ud, const char *ph, const tbgw_path *path, tbgw_buf *out) {
    const tctx *t = ud;
    const json_t *v = tbgw_path_get(path, t->root);
    if (!v) return TBGW_ENOENT;
    size_t pl = t->json_prefix ? strlen(t->json_prefix) : 0;
    int as_json = pl && !strncmp(ph, t->json_prefix, pl) && (ph[pl] == 0 || ph[pl] == '.' || ph[pl] == '[');
    return tbgw_fmt_json(out, v, as_json ? TBGW_FMT_JSON : TBGW_FMT_TEXT);
}

/* Renders e into a new string (missing placeholders keep their literal text). */
static char *render(const tbgw_expr *e, const json_t *root, const char *json_prefix) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    tctx t = {root, json_prefix};
    int rc = tbgw_expr_render_cb(e, resolve, &t, TBGW_MISSING_KEEP, &b);
    const char *s = rc ? NULL : tbgw_buf_cstr(&b);
    char *r = s ? strdup(s) : NULL;
    tbgw_buf_free(&b);
    return r;
}

/* ------------------------------------------------------------------ device requests */

static json_t *parse_body(const uint8_t *p, size_t len) {
    return tbgw_json_loadb(p, len, JSON_DECODE_ANY, NULL);
}

static int device_request(mq_conn *c, const mq_dev_req *r, const char *topic, const json_t *body,
                          int connect) {
    char *name = NULL, *profile = NULL;
    int rc = tbgw_devinfo_eval_strict(r->dev, topic, body, &name, &profile);
    if (rc) {
        TBGW_WARNF(c->host->log, "%s request on %s: no device name found", connect ? "connect" : "disconnect",
                   topic);
    } else if (connect) {
        TBGW_INFOF(c->host->log, "connecting device %s of type %s", name, profile ? profile : "default");
        c->host->device_connected(c->host, name, profile);
    } else {
        TBGW_INFOF(c->host->log, "disconnecting device %s", name);
        c->host->device_disconnected(c->host, name);
    }
    free(name);
    free(profile);
    return 1;
}

static int add_key(char ***keys, size_t *n, const char *k) {
    if (!k || !*k) return 0;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*keys)[i], k)) return 0;
    char **nk = realloc(*keys, (*n + 1) * sizeof *nk);
    if (!nk) return TBGW_ENOMEM;
    *keys = nk;
    if (!(nk[*n] = strdup(k))) return TBGW_ENOMEM;
    (*n)++;
    return 0;
}

static void free_keys(char **keys, size_t n) {
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

/* Attribute names of a request: one per placeholder (message), the topic regex result, or the text. */
static int attr_keys(const mq_attr_req *r, const char *topic, const json_t *body, char ***keys, size_t *n) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = 0;
    if (r->name_re) {
        if (tbgw_regex_search(r->name_re, topic, &b)) rc = add_key(keys, n, tbgw_buf_cstr(&b));
    } else if (r->name_src == TBGW_SRC_MESSAGE && tbgw_expr_placeholders(r->name_expr) > 0) {
        for (size_t i = 0; i < tbgw_expr_placeholders(r->name_expr) && !rc; i++) {
            tbgw_path *p;
            if (tbgw_path_compile(tbgw_expr_placeholder(r->name_expr, i), &p, NULL)) continue;
            const json_t *v = tbgw_path_get(p, body);
            tbgw_buf_reset(&b);
            if (v && !json_is_null(v) && !tbgw_fmt_json(&b, v, TBGW_FMT_TEXT))
                rc = add_key(keys, n, tbgw_buf_cstr(&b));
            tbgw_path_free(p);
        }
    } else {
        tbgw_expr_render(r->name_expr, body, TBGW_FMT_TEXT, TBGW_MISSING_KEEP, &b);
        rc = add_key(keys, n, tbgw_buf_cstr(&b));
    }
    tbgw_buf_free(&b);
    return rc;
}

static int attr_scope_client(const mq_attr_req *r, const json_t *body) {
    if (!r->scope_expr) return !strcasecmp(r->scope, "client");
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_expr_render(r->scope_expr, body, TBGW_FMT_TEXT, TBGW_MISSING_FAIL, &b);
    int client = !strcasecmp(tbgw_buf_cstr(&b) ? tbgw_buf_cstr(&b) : "", "client");
    tbgw_buf_free(&b);
    return client;
}

static void attribute_request(mq_conn *c, size_t idx, const char *topic, const json_t *body) {
    const mq_attr_req *r = &c->cfg.attr_reqs[idx];
    char *name = NULL, *profile = NULL;
    char **keys = NULL;
    size_t n = 0;
    int rc = tbgw_devinfo_eval_strict(r->dev, topic, body, &name, &profile);
    if (rc) {
        TBGW_WARNF(c->host->log, "attribute request on %s: no device name found", topic);
        goto out;
    }
    if (attr_keys(r, topic, body, &keys, &n) || n == 0) {
        TBGW_WARNF(c->host->log, "attribute request on %s: no attribute name found", topic);
        goto out;
    }
    mq_pending_attr *pa = calloc(1, sizeof *pa);
    if (!pa) goto out;
    pa->cookie = c->next_cookie++;
    pa->req = idx;
    pa->device = name;
    pa->keys = keys;
    pa->n_keys = n;
    pa->deadline = tbgw_mono_ms() + MQ_ATTR_REQ_TTL_MS;
    pa->next = c->attrs;
    c->attrs = pa;
    name = NULL;
    keys = NULL;
    int client = attr_scope_client(r, body);
    TBGW_DEBUGF(c->host->log, "requesting %zu %s attribute(s) of %s", n, client ? "client" : "shared",
                pa->device);
    c->host->request_attributes(c->host, pa->device, (const char *const *)pa->keys, pa->n_keys, client,
                                pa->cookie);
out:
    free(name);
    free(profile);
    if (keys) free_keys(keys, n);
}

int mq_handle_requests(mq_conn *c, const char *topic, const uint8_t *payload, size_t len) {
    const mq_config *cfg = &c->cfg;
    json_t *body = NULL;
    int handled = 0;
    for (size_t i = 0; i < cfg->n_connects && !handled; i++)
        if (tbgw_topic_matches(cfg->connects[i].topic_filter, topic)) {
            body = parse_body(payload, len);
            handled = device_request(c, &cfg->connects[i], topic, body, 1);
        }
    for (size_t i = 0; i < cfg->n_disconnects && !handled; i++)
        if (tbgw_topic_matches(cfg->disconnects[i].topic_filter, topic)) {
            body = parse_body(payload, len);
            handled = device_request(c, &cfg->disconnects[i], topic, body, 0);
        }
    for (size_t i = 0; i < cfg->n_attr_reqs && !handled; i++)
        if (tbgw_topic_matches(cfg->attr_reqs[i].topic_filter, topic)) {
            body = parse_body(payload, len);
            attribute_request(c, i, topic, body);
            handled = 1;
        }
    json_decref(body);
    return handled;
}

int mq_on_attribute_response(void *self, uint64_t cookie, const char *device, const json_t *data) {
    mq_conn *c = self;
    mq_pending_attr **pp = &c->attrs, *pa = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->cookie == cookie) {
            pa = *pp;
            *pp = pa->next;
            break;
        }
    if (!pa) return TBGW_ENOENT;
    const mq_attr_req *r = &c->cfg.attr_reqs[pa->req];
    int rc = 0;
    if (!data) {
        TBGW_WARNF(c->host->log, "attribute request for %s timed out", pa->device);
        rc = TBGW_ETIMEDOUT;
        goto out;
    }
    json_t *root = json_object();
    json_object_set_new(root, "deviceName", json_string(device ? device : pa->device));
    char *value_text = NULL;
    if (pa->n_keys == 1) {
        const json_t *v = json_object_get(data, pa->keys[0]);
        json_object_set_new(root, "attributeKey", json_string(pa->keys[0]));
        value_text = tbgw_json_dumps(v ? v : json_null(), 0);
        json_object_set_new(root, "attributeValue", json_string(value_text ? value_text : "null"));
    } else {
        tbgw_buf kb;
        tbgw_buf_init(&kb);
        for (size_t i = 0; i < pa->n_keys; i++) tbgw_buf_printf(&kb, "%s%s", i ? "," : "", pa->keys[i]);
        json_object_set_new(root, "attributeKey", json_string(tbgw_buf_cstr(&kb)));
        tbgw_buf_free(&kb);
        value_text = tbgw_json_dumps(data, 0);
    }
    char *topic = render(r->topic_expr, root, NULL);
    char *body =
        pa->n_keys == 1 ? render(r->value_expr, root, NULL) : (value_text ? strdup(value_text) : NULL);
    if (topic && body) rc = mq_publish(c, topic, body, strlen(body), r->qos, r->retain);
    free(topic);
    free(body);
    free(value_text);
    json_decref(root);
out:
    free(pa->device);
    free_keys(pa->keys, pa->n_keys);
    free(pa);
    return rc;
}

/* ------------------------------------------------------------------ attribute updates */

int mq_on_attribute_update(void *self, const tbgw_attr_update *u) {
    mq_conn *c = self;
    const mq_config *cfg = &c->cfg;
    const char *key;
    const json_t *val;
    int sent = 0;
    json_object_foreach((json_t *)u->data, key, val) {
        for (size_t i = 0; i < cfg->n_attr_upds; i++) {
            const mq_attr_upd *a = &cfg->attr_upds[i];
            if (!tbgw_regex_match(a->dev_filter, u->device) || !tbgw_regex_match(a->attr_filter, key))
                continue;
            json_t *root = json_pack("{s:s,s:s,s:O}", "deviceName", u->device, "attributeKey", key,
                                     "attributeValue", val);
            if (!root) return TBGW_ENOMEM;
            char *topic = render(a->topic_expr, root, NULL);
            char *body = render(a->value_expr, root, NULL);
            if (topic && body && !mq_publish(c, topic, body, strlen(body), a->qos, a->retain)) sent++;
            TBGW_DEBUGF(c->host->log, "attribute update %s of %s -> %s", key, u->device, topic ? topic : "?");
            free(topic);
            free(body);
            json_decref(root);
        }
    }
    if (!sent)
        TBGW_DEBUGF(c->host->log, "attribute update for %s matched no attributeUpdates entry", u->device);
    return 0;
}

/* ------------------------------------------------------------------ server-side RPC */

typedef struct rpc_exec {
    const tbgw_expr *req_topic, *resp_topic, *value;
    int64_t timeout_ms;
    int resp_qos, qos, retain;
} rpc_exec;

static void reply_error(mq_conn *c, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(mq_conn *c, uint64_t handle, const char *fmt, ...) {
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    TBGW_WARNF(c->host->log, "%s", text);
    tbgw_rpc_failed(c->host, handle, "%s", text);
}

static int rpc_pending_uses(const mq_conn *c, const char *topic) {
    for (const mq_pending_rpc *r = c->rpcs; r; r = r->next)
        if (!strcmp(r->topic, topic)) return 1;
    return 0;
}

static int run_rpc(mq_conn *c, const tbgw_rpc_req *r, const rpc_exec *x) {
    json_t *root =
        json_pack("{s:s,s:s,s:I,s:O}", "deviceName", r->device ? r->device : "", "methodName", r->method,
                  "requestId", (json_int_t)r->id, "params", r->params ? r->params : json_null());
    if (!root) return TBGW_ENOMEM;
    char *topic = render(x->req_topic, root, NULL);
    char *body = render(x->value, root, "params");
    char *rtopic = x->resp_topic && x->timeout_ms > 0 ? render(x->resp_topic, root, NULL) : NULL;
    json_decref(root);
    int rc = 0;
    if (!topic || !body || (x->resp_topic && x->timeout_ms > 0 && !rtopic)) {
        rc = TBGW_ENOMEM;
    } else if (rtopic) {
        mq_pending_rpc *p = calloc(1, sizeof *p);
        if (!p) {
            rc = TBGW_ENOMEM;
        } else {
            if (!rpc_pending_uses(c, rtopic)) mq_subscribe(c, rtopic, x->resp_qos);
            p->handle = r->handle;
            p->topic = rtopic;
            rtopic = NULL;
            p->deadline = tbgw_mono_ms() + x->timeout_ms;
            mq_pending_rpc **tail = &c->rpcs; /* oldest first */
            while (*tail) tail = &(*tail)->next;
            *tail = p;
            if (mq_publish(c, topic, body, strlen(body), x->qos, x->retain))
                p->deadline = 0; /* fail at once */
        }
    } else {
        int ok = mq_publish(c, topic, body, strlen(body), x->qos, x->retain) == 0;
        c->host->rpc_reply(c->host, r->handle, NULL, ok);
    }
    TBGW_DEBUGF(c->host->log, "RPC %s to %s: %s", r->method, topic ? topic : "?", body ? body : "?");
    free(topic);
    free(body);
    free(rtopic);
    return rc;
}

/* Reserved get/set: params
 * "requestTopicExpression=..;responseTopicExpression=..;value=..;responseTimeout=..". */
static int rpc_get_set(mq_conn *c, const tbgw_rpc_req *r) {
    tbgw_params p;
    tbgw_err perr = {0};
    if (tbgw_params_parse(json_string_value(r->params), TBGW_PARAMS_LENIENT, &p, &perr)) {
        reply_error(c, r->handle, "RPC %s: %s", r->method, perr.msg);
        return 0;
    }
    const char *req = tbgw_params_get(&p, "requestTopicExpression");
    const char *resp = tbgw_params_get(&p, "responseTopicExpression");
    const char *value = tbgw_params_get(&p, "value");
    int64_t timeout = 0;
    tbgw_params_int(&p, "responseTimeout", &timeout);
    int rc = 0;
    tbgw_expr *ereq = NULL, *eresp = NULL, *eval = NULL;
    if (!req) {
        reply_error(c, r->handle, "RPC %s: params need requestTopicExpression=<topic>", r->method);
        goto out;
    }
    if (tbgw_expr_compile(req, &ereq, NULL) || (resp && tbgw_expr_compile(resp, &eresp, NULL)) ||
        tbgw_expr_compile(value ? value : "", &eval, NULL)) {
        reply_error(c, r->handle, "RPC %s: invalid expression in params", r->method);
        goto out;
    }
    rpc_exec x = {ereq, eresp, eval, eresp ? (timeout > 0 ? timeout : MQ_GETSET_TIMEOUT) : 0, 1, 0, 0};
    rc = run_rpc(c, r, &x);
out:
    tbgw_expr_free(ereq);
    tbgw_expr_free(eresp);
    tbgw_expr_free(eval);
    tbgw_params_free(&p);
    return rc;
}

/* Connector RPC "mqtt_<method>": params carry the request config itself. */
static int rpc_connector(mq_conn *c, const tbgw_rpc_req *r) {
    const json_t *p = r->params;
    const char *req = json_string_value(json_object_get(p, "requestTopicExpression"));
    const char *resp = json_string_value(json_object_get(p, "responseTopicExpression"));
    const char *val = json_string_value(json_object_get(p, "valueExpression"));
    json_int_t timeout = json_integer_value(json_object_get(p, "responseTimeout"));
    if (!req) {
        reply_error(c, r->handle, "RPC mqtt_%s: params need requestTopicExpression", r->method);
        return 0;
    }
    tbgw_expr *ereq = NULL, *eresp = NULL, *eval = NULL;
    int rc = 0;
    if (tbgw_expr_compile(req, &ereq, NULL) || (resp && tbgw_expr_compile(resp, &eresp, NULL)) ||
        tbgw_expr_compile(val ? val : "${params}", &eval, NULL)) {
        reply_error(c, r->handle, "RPC mqtt_%s: invalid expression in params", r->method);
    } else {
        rpc_exec x = {ereq,
                      eresp,
                      eval,
                      eresp ? (timeout > 0 ? timeout : MQ_GETSET_TIMEOUT) : 0,
                      1,
                      (int)json_integer_value(json_object_get(p, "qos")),
                      json_is_true(json_object_get(p, "retain"))};
        rc = run_rpc(c, r, &x);
    }
    tbgw_expr_free(ereq);
    tbgw_expr_free(eresp);
    tbgw_expr_free(eval);
    return rc;
}

int mq_on_rpc(void *self, const tbgw_rpc_req *r) {
    mq_conn *c = self;
    if (!r->method) {
        reply_error(c, r->handle, "RPC without a method%s", "");
        return 0;
    }
    if (!r->device) return rpc_connector(c, r);
    if ((!strcmp(r->method, "get") || !strcmp(r->method, "set")) && json_is_string(r->params))
        return rpc_get_set(c, r);
    for (size_t i = 0; i < c->cfg.n_rpcs; i++) {
        const mq_rpc_cfg *m = &c->cfg.rpcs[i];
        if (!tbgw_regex_search(m->dev_filter, r->device, NULL) ||
            !tbgw_regex_search(m->method_filter, r->method, NULL))
            continue;
        rpc_exec x = {m->req_topic, m->resp_topic, m->value, m->timeout_ms, m->resp_qos, m->qos, m->retain};
        return run_rpc(c, r, &x);
    }
    reply_error(c, r->handle, "no serverSideRpc entry matches method %s", r->method);
    return 0;
}

static void drop_rpc(mq_conn *c, mq_pending_rpc **pp) {
    mq_pending_rpc *p = *pp;
    *pp = p->next;
    if (!rpc_pending_uses(c, p->topic)) mq_unsubscribe(c, p->topic);
    free(p->topic);
    free(p);
}

int mq_handle_rpc_response(mq_conn *c, const char *topic, const uint8_t *payload, size_t len) {
    mq_pending_rpc **pp = &c->rpcs;
    while (*pp && strcmp((*pp)->topic, topic) && !tbgw_topic_matches((*pp)->topic, topic)) pp = &(*pp)->next;
    if (!*pp) return 0;
    char *text = malloc(len + 1);
    if (!text) return 1;
    memcpy(text, payload, len);
    text[len] = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\'') text[i] = '"';
    json_t *content = tbgw_json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!content) content = json_stringn(text, len);
    if (!content) content = json_string("<binary response>");
    TBGW_DEBUGF(c->host->log, "RPC response on %s", topic);
    c->host->rpc_reply(c->host, (*pp)->handle, content, -1);
    free(text);
    drop_rpc(c, pp);
    return 1;
}

void mq_check_timeouts(mq_conn *c) {
    if (!c->rpcs && !c->attrs) return;
    int64_t now = tbgw_mono_ms();
    mq_pending_rpc **pp = &c->rpcs;
    while (*pp) {
        if ((*pp)->deadline > now) {
            pp = &(*pp)->next;
            continue;
        }
        TBGW_WARNF(c->host->log, "RPC response on %s timed out", (*pp)->topic);
        c->host->rpc_reply(c->host, (*pp)->handle, NULL, 0);
        drop_rpc(c, pp);
    }
    mq_pending_attr **ap = &c->attrs;
    while (*ap) {
        mq_pending_attr *a = *ap;
        if (a->deadline > now) {
            ap = &a->next;
            continue;
        }
        *ap = a->next;
        free(a->device);
        free_keys(a->keys, a->n_keys);
        free(a);
    }
}

void mq_pending_free(mq_conn *c) {
    while (c->rpcs) {
        mq_pending_rpc *p = c->rpcs;
        c->rpcs = p->next;
        free(p->topic);
        free(p);
    }
    while (c->attrs) {
        mq_pending_attr *a = c->attrs;
        c->attrs = a->next;
        free(a->device);
        free_keys(a->keys, a->n_keys);
        free(a);
    }
}
