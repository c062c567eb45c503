/* REST connector downlink (spec §7.4): responseAttribute updates complete parked requests;
 * requestsMapping.attributeUpdates / serverSideRpc become outgoing HTTP requests (connector thread). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "util/json.h"
#include "connectors/rest/rest.h"
#include "util/time.h"

typedef struct rs_call {
    rs_conn *c;
    char *url, *what;
    int is_rpc;
    uint64_t handle;
} rs_call;

static void call_free(rs_call *k) {
    free(k->url);
    free(k->what);
    free(k);
}

static void rpc_error(rs_conn *c, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rpc_error(rs_conn *c, uint64_t handle, const char *fmt, ...) {
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    TBGW_WARNF(c->host->log, "RPC: %s", text);
    c->host->rpc_reply(c->host, handle, json_pack("{s:s}", "error", text), 0);
}

static void on_done(void *ud, const tbgw_http_resp *r) {
    rs_call *k = ud;
    rs_conn *c = k->c;
    if (r->error && !strcmp(r->error, "aborted") && atomic_load(&c->stop)) {
        call_free(k);
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        TBGW_DEBUGF(c->host->log, "%s: %s answered %ld", k->what, k->url, r->status);
        if (k->is_rpc) { /* {"result": <the answer as JSON, or its text>} */
            json_t *v = tbgw_json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
            if (!v) v = json_stringn(r->body, r->len);
            c->host->rpc_reply(c->host, k->handle, json_pack("{s:o}", "result", v ? v : json_null()), -1);
        }
    } else {
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
    }
    call_free(k);
}

static int start_call(rs_conn *c, const rs_out *o, const tbgw_dl_vars *vars, const char *what, int is_rpc,
                      uint64_t handle, int64_t core_timeout_ms) {
    tbgw_buf url, body;
    tbgw_buf_init(&url);
    tbgw_buf_init(&body);
    tbgw_dl_vars uv = *vars, bv = *vars;
    uv.quote = 1;
    bv.quote = 0;
    bv.json_escape = o->json_body;
    int rc = tbgw_dl_render(o->url, &uv, &url);
    if (!rc && o->value) rc = tbgw_dl_render(o->value, &bv, &body);
    if (!rc && (!tbgw_buf_cstr(&url) || (o->value && !tbgw_buf_cstr(&body)))) rc = TBGW_ENOMEM;
    if (!rc && strncasecmp(url.p, "http://", 7) && strncasecmp(url.p, "https://", 8)) rc = TBGW_EINVAL;
    rs_call *k = rc ? NULL : calloc(1, sizeof *k);
    if (!rc && !k) rc = TBGW_ENOMEM;
    if (!rc) {
        k->c = c;
        k->url = strdup(url.p);
        k->what = strdup(what);
        k->is_rpc = is_rpc;
        k->handle = handle;
        int64_t budget = o->resp_timeout_ms;
        if (is_rpc && core_timeout_ms > 0 && (!budget || core_timeout_ms < budget)) budget = core_timeout_ms;
        tbgw_http_req req = {.method = o->method,
                             .url = url.p,
                             .headers = o->headers,
                             .body = o->value ? body.p : NULL,
                             .body_len = body.len,
                             .username = o->user,
                             .password = o->pass,
                             .cert = o->cert,
                             .key = o->key,
                             .verify_tls = o->verify,
                             .follow_redirects = o->redirects,
                             .timeout_ms = o->timeout_ms,
                             .tries = o->tries,
                             .budget_ms = budget};
        TBGW_DEBUGF(c->host->log, "%s: %s %s", what, o->method, url.p);
        if (!k->url || !k->what || tbgw_http_client_submit(c->http, &req, on_done, k)) {
            call_free(k);
            rc = TBGW_ENOMEM;
        }
    }
    if (rc == TBGW_EINVAL)
        TBGW_WARNF(c->host->log, "%s: \"%s\" is not an http(s) URL", what, url.p ? url.p : "");
    tbgw_buf_free(&url);
    tbgw_buf_free(&body);
    return rc;
}

int rs_on_attribute_update(void *self, const tbgw_attr_update *u) {
    rs_conn *c = self;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)u->data, key, value) {
        rs_pending_attribute(c, u->device, key, value);
        for (size_t i = 0; i < c->cfg.n_upds; i++) {
            const rs_out *o = &c->cfg.upds[i];
            if (!tbgw_regex_fullmatch(o->dev_filter, u->device) || !tbgw_regex_fullmatch(o->name_filter, key))
                continue;
            tbgw_dl_vars v = {.device = u->device, .key = key, .value = value, .root = u->data};
            char what[300];
            snprintf(what, sizeof what, "attribute update %s of %s", key, u->device);
            int rc = start_call(c, o, &v, what, 0, 0, 0);
            if (rc) {
                c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
                TBGW_WARNF(c->host->log, "%s: not sent (%s)", what,
                           rc == TBGW_ENOENT ? "a template refers to a missing value" : tbgw_strerror(rc));
            }
        }
    }
    return 0;
}

/* Reserved get/set: "requestUrlExpression=<url>;[HTTPMethod=<m>;][value=<v>;]". */
static int reserved_entry(rs_out *o, const tbgw_rpc_req *r, int set, char *why, size_t wl) {
    json_t *e = json_is_object(r->params) ? json_deep_copy(r->params) : json_object();
    if (json_is_string(r->params)) {
        char *s = strdup(json_string_value(r->params)), *save = NULL;
        for (char *t = s ? strtok_r(s, ";", &save) : NULL; t; t = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(t, '=');
            if (!eq || eq == t || !eq[1]) continue;
            *eq = 0;
            json_object_set_new(e, !strcmp(t, "value") ? "valueExpression" : t, json_string(eq + 1));
        }
        free(s);
    }
    if (!json_object_get(e, "requestUrlExpression") || (set && !json_object_get(e, "valueExpression"))) {
        snprintf(why, wl, "expected params \"requestUrlExpression=<url>;[HTTPMethod=<method>;]%s\"",
                 set ? "value=<value>;" : "");
        json_decref(e);
        return TBGW_EINVAL;
    }
    if (!json_object_get(e, "HTTPMethod"))
        json_object_set_new(e, "HTTPMethod", json_string(set ? "POST" : "GET"));
    tbgw_err err = {0};
    int rc = rs_out_parse(o, e, "params", 1, &err);
    if (rc) snprintf(why, wl, "%s", err.msg);
    json_decref(e);
    return rc;
}

int rs_on_rpc(void *self, const tbgw_rpc_req *r) {
    rs_conn *c = self;
    const char *dev = r->device ? r->device : "";
    json_t *root = json_pack("{s:I,s:s,s:O?}", "id", (json_int_t)r->id, "method", r->method, "params",
                             (json_t *)r->params);
    tbgw_dl_vars v = {.device = dev, .method = r->method, .id = r->id, .root = root};
    char what[300], why[300];
    snprintf(what, sizeof what, "RPC %s of %s", r->method, r->device ? r->device : "the connector");
    int set = !strcasecmp(r->method, "set");
    const rs_out *o = NULL;
    rs_out tmp = {0};
    if (!r->device || set || !strcasecmp(r->method, "get")) {
        if (reserved_entry(&tmp, r, set, why, sizeof why)) {
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
            rpc_error(c, r->handle, "no serverSideRpc entry takes method %s of %s", r->method, dev);
            goto out;
        }
    }
    int rc = start_call(c, o, &v, what, 1, r->handle, r->timeout_ms);
    if (rc)
        rpc_error(c, r->handle, "%s: %s", what,
                  rc == TBGW_ENOENT   ? "a template refers to a missing value"
                  : rc == TBGW_EINVAL ? "requestUrlExpression is not an http(s) URL"
                                      : tbgw_strerror(rc));
out:
    rs_out_clear(&tmp);
    json_decref(root);
    return 0;
}

int rs_on_attribute_response(void *self, uint64_t cookie, const char *device, const json_t *data) {
    rs_pending_attr_response(self, cookie, device, data);
    return 0;
}
