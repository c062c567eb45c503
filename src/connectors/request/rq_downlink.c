/* Request connector downlink (spec §7.5): attribute updates and server-side RPC become HTTP requests
 * on the connector's curl multi handle. A call is retried (up to `tries`, with backoff) when the
 * transfer fails or the server answers 5xx; an RPC is answered once, with the device's answer or an
 * error, within its responseTimeout. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "util/json.h"
#include "connectors/request/request.h"
#include "util/time.h"

typedef struct rq_call {
    rq_conn *c;
    char *url, *method, *body, *what;
    size_t body_len;
    json_t *headers;
    int64_t timeout_ms;
    int redirects;
    int is_rpc, reserved;
    uint64_t handle;
    tbgw_expr *resp_value; /* borrowed from the config, or own_resp */
    tbgw_expr *own_resp;   /* reserved calls: a copy (their entry is temporary) */
} rq_call;

void rq_req_auth(const rq_conn *c, tbgw_http_req *req) {
    req->username = c->cfg.user;
    req->password = c->cfg.pass;
    req->verify_tls = c->cfg.verify;
}

static void call_free(rq_call *k) {
    free(k->url);
    free(k->method);
    free(k->body);
    free(k->what);
    json_decref(k->headers);
    tbgw_expr_free(k->own_resp);
    free(k);
}

static void rpc_error(rq_conn *c, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rpc_error(rq_conn *c, uint64_t handle, const char *fmt, ...) {
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    TBGW_WARNF(c->host->log, "RPC: %s", text);
    c->host->rpc_reply(c->host, handle, json_pack("{s:s}", "error", text), 0);
}

/* {"result":{"value":...}} from the device's answer. */
static void rpc_answer(rq_call *k, const tbgw_http_resp *r) {
    rq_conn *c = k->c;
    json_t *body = k->reserved ? NULL : tbgw_json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    json_t *value = NULL;
    if (body && k->resp_value) {
        tbgw_buf out;
        tbgw_buf_init(&out);
        int rc = tbgw_expr_render(k->resp_value, body, TBGW_FMT_PY, TBGW_MISSING_FAIL, &out);
        if (rc || !tbgw_buf_cstr(&out)) {
            tbgw_buf_free(&out);
            json_decref(body);
            rpc_error(c, k->handle, "No values found for responseValueExpression: %s in RPC response",
                      tbgw_expr_text(k->resp_value));
            return;
        }
        value = json_stringn(out.p, out.len);
        tbgw_buf_free(&out);
        json_decref(body);
    } else {
        value = body ? body : json_stringn(r->body, r->len);
    }
    c->host->rpc_reply(c->host, k->handle,
                       json_pack("{s:{s:o}}", "result", "value", value ? value : json_null()), -1);
}

static void on_call_done(void *ud, const tbgw_http_resp *r) {
    rq_call *k = ud;
    rq_conn *c = k->c;
    if (r->error && !strcmp(r->error, "aborted") && atomic_load(&c->stop)) {
        call_free(k);
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        TBGW_DEBUGF(c->host->log, "%s: %s answered %ld", k->what, k->url, r->status);
        if (k->is_rpc) rpc_answer(k, r);
        call_free(k);
        return;
    }
    char why[300];
    if (r->error)
        snprintf(why, sizeof why, "%s", r->error);
    else
        snprintf(why, sizeof why, "HTTP status %ld", r->status);
    c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
    if (k->is_rpc)
        rpc_error(c, k->handle, "%s: request to %s failed after %d tries: %s", k->what, k->url, r->tries,
                  why);
    else
        TBGW_WARNF(c->host->log, "%s: request to %s failed after %d tries: %s", k->what, k->url, r->tries,
                   why);
    call_free(k);
}

static int submit(rq_call *k, int tries, int64_t budget_ms) {
    rq_conn *c = k->c;
    tbgw_http_req req = {.method = k->method,
                         .url = k->url,
                         .headers = k->headers,
                         .body = k->body,
                         .body_len = k->body_len,
                         .follow_redirects = k->redirects,
                         .timeout_ms = k->timeout_ms,
                         .tries = tries,
                         .budget_ms = budget_ms};
    rq_req_auth(c, &req);
    return tbgw_http_client_submit(c->http, &req, on_call_done, k);
}

/* Builds and starts a call from an entry; vars give the template values. NULL what = nothing sent. */
static int start_call(rq_conn *c, const rq_out *o, const tbgw_dl_vars *vars, const char *what,
                      uint64_t handle, int is_rpc, int reserved, int64_t core_timeout_ms) {
    rq_call *k = calloc(1, sizeof *k);
    tbgw_buf url, body;
    tbgw_buf_init(&url);
    tbgw_buf_init(&body);
    int rc = TBGW_ENOMEM;
    if (!k) goto out;
    k->c = c;
    tbgw_dl_vars uv = *vars;
    uv.quote = 1;
    uv.json_escape = 0;
    if ((rc = tbgw_dl_render(o->url, &uv, &url)) || !tbgw_buf_cstr(&url)) {
        if (!rc) rc = TBGW_ENOMEM;
        goto out;
    }
    if (o->value) {
        tbgw_dl_vars bv = *vars;
        bv.quote = 0;
        bv.json_escape = o->json_body;
        if ((rc = tbgw_dl_render(o->value, &bv, &body)) || !tbgw_buf_cstr(&body)) {
            if (!rc) rc = TBGW_ENOMEM;
            goto out;
        }
        k->body = body.p;
        k->body_len = body.len;
        tbgw_buf_init(&body);
    }
    k->url = rq_join_url(c->cfg.host, url.p);
    k->method = strdup(o->method ? o->method : "GET");
    k->what = strdup(what);
    k->headers = o->headers ? json_incref(o->headers) : NULL;
    k->timeout_ms = o->timeout_ms;
    k->redirects = o->redirects;
    k->is_rpc = is_rpc;
    k->reserved = reserved;
    k->handle = handle;
    k->resp_value = o->resp_value;
    if (reserved && o->resp_value &&
        tbgw_expr_compile(tbgw_expr_text(o->resp_value), &k->own_resp, NULL) == 0)
        k->resp_value = k->own_resp;
    else if (reserved)
        k->resp_value = NULL;
    int64_t limit = o->resp_timeout_ms;
    if (is_rpc && core_timeout_ms > 0 && (!limit || core_timeout_ms < limit)) limit = core_timeout_ms;
    if (!k->url || !k->method || !k->what) {
        rc = TBGW_ENOMEM;
        goto out;
    }
    TBGW_DEBUGF(c->host->log, "%s: %s %s", what, k->method, k->url);
    rc = submit(k, o->tries, limit);
    if (!rc) k = NULL;
out:
    if (k) call_free(k);
    tbgw_buf_free(&url);
    tbgw_buf_free(&body);
    return rc;
}

int rq_on_attribute_update(void *self, const tbgw_attr_update *u) {
    rq_conn *c = self;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)u->data, key, value) {
        for (size_t i = 0; i < c->cfg.n_upds; i++) {
            const rq_out *o = &c->cfg.upds[i];
            if (!tbgw_regex_fullmatch(o->dev_filter, u->device) || !tbgw_regex_fullmatch(o->name_filter, key))
                continue;
            tbgw_dl_vars v = {.device = u->device, .key = key, .value = value, .root = u->data};
            char what[300];
            snprintf(what, sizeof what, "attribute update %s of %s", key, u->device);
            int rc = start_call(c, o, &v, what, 0, 0, 0, 0);
            if (rc) {
                c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
                TBGW_WARNF(c->host->log, "%s: not sent (%s)", what,
                           rc == TBGW_ENOENT ? "a template refers to a missing value" : tbgw_strerror(rc));
            }
        }
    }
    return 0;
}

/* Reserved get/set: params "requestUrlExpression=<url>;[httpMethod=<m>;][value=<v>;]" (set needs value).
 * A connector RPC (no device) may give the same fields as an object. */
static int reserved_entry(rq_out *o, const tbgw_rpc_req *r, int set, char *why, size_t why_len) {
    json_t *e = NULL;
    tbgw_err err = {0};
    if (json_is_object(r->params)) {
        e = json_deep_copy(r->params);
    } else if (json_is_string(r->params)) {
        e = json_object();
        char *s = strdup(json_string_value(r->params)), *save = NULL;
        for (char *tok = s ? strtok_r(s, ";", &save) : NULL; tok; tok = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq || eq == tok || !eq[1]) continue;
            *eq = 0;
            json_object_set_new(e, !strcmp(tok, "value") ? "requestValueExpression" : tok,
                                json_string(eq + 1));
        }
        free(s);
    }
    const char *schema = set ? "requestUrlExpression=<url>;[httpMethod=<method>;]value=<value>;"
                             : "requestUrlExpression=<url>;[httpMethod=<method>;]";
    if (!e || !json_object_get(e, "requestUrlExpression") ||
        (set && !json_object_get(e, "requestValueExpression"))) {
        snprintf(why, why_len, "The requested RPC does not match with the schema: %s", schema);
        json_decref(e);
        return TBGW_EINVAL;
    }
    if (!json_object_get(e, "httpHeaders"))
        json_object_set_new(e, "httpHeaders", json_pack("{s:s}", "Content-Type", "application/json"));
    if (!json_object_get(e, "timeout")) json_object_set_new(e, "timeout", json_real(0.5));
    if (!json_object_get(e, "responseTimeout")) json_object_set_new(e, "responseTimeout", json_integer(1));
    if (!json_object_get(e, "tries")) json_object_set_new(e, "tries", json_integer(3));
    json_object_set_new(e, "methodFilter", json_string(".*"));
    int rc = rq_out_parse(o, e, "params", 1, &err);
    if (rc) snprintf(why, why_len, "%s", err.msg);
    json_decref(e);
    return rc;
}

int rq_on_rpc(void *self, const tbgw_rpc_req *r) {
    rq_conn *c = self;
    const char *dev = r->device ? r->device : "";
    json_t *root = json_pack("{s:I,s:s,s:O?}", "id", (json_int_t)r->id, "method", r->method, "params",
                             (json_t *)r->params);
    tbgw_dl_vars v = {.device = dev, .method = r->method, .id = r->id, .root = root};
    char what[300], why[300];
    snprintf(what, sizeof what, "RPC %s of %s", r->method, r->device ? r->device : "the connector");
    int set = !strcasecmp(r->method, "set");
    const rq_out *o = NULL;
    rq_out tmp = {0};
    int rc = 0;
    if (!r->device || set || !strcasecmp(r->method, "get")) {
        rc = reserved_entry(&tmp, r, set, why, sizeof why);
        if (rc) {
            rpc_error(c, r->handle, "%s", why);
            goto out;
        }
        o = &tmp;
    } else {
        for (size_t i = 0; i < c->cfg.n_rpcs && !o; i++)
            if (tbgw_regex_fullmatch(c->cfg.rpcs[i].dev_filter, dev) &&
                tbgw_regex_fullmatch(c->cfg.rpcs[i].name_filter, r->method))
                o = &c->cfg.rpcs[i];
        if (!o) {
            rpc_error(c, r->handle, "Neither of configured device rpc methods match with %s", r->method);
            goto out;
        }
    }
    rc = start_call(c, o, &v, what, r->handle, 1, o == &tmp, r->timeout_ms);
    if (rc)
        rpc_error(c, r->handle, "%s: %s", what,
                  rc == TBGW_ENOENT ? "a template refers to a missing value" : tbgw_strerror(rc));
out:
    /* a call keeps no pointer into tmp (reserved calls copy their response expression) */
    rq_out_clear(&tmp);
    json_decref(root);
    return 0;
}
