/* Outgoing HTTP requests of the HTTP connectors (see http_out.h). */
#include "convert/http_out.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/connkit.h>
#include "convert/cfg_util.h"
#include "util/buf.h"
#include "util/json.h"

/* ------------------------------------------------------------------ configuration */

int tbgw_http_cfg_template(const json_t *o, const char *k, const char *path, int required, tbgw_expr **out,
                           tbgw_err *err) {
    const char *s;
    *out = NULL;
    int rc = tbgw_cfg_str(o, k, path, required, NULL, &s, err);
    if (rc || !s) return rc;
    char fp[300];
    snprintf(fp, sizeof fp, "%s.%s", path, k);
    return tbgw_err_prefix(err, tbgw_expr_compile(s, out, err), fp, ':');
}

/* dflt NULL: required */
static int compile_re(const json_t *o, const char *k, const char *path, const char *dflt, tbgw_regex **out,
                      tbgw_err *err) {
    const char *s;
    int rc = tbgw_cfg_str(o, k, path, dflt == NULL, dflt, &s, err);
    if (rc) return rc;
    char fp[300];
    snprintf(fp, sizeof fp, "%s.%s", path, k);
    return tbgw_regex_compile(s, out, fp, err);
}

int tbgw_http_cfg_security(const json_t *e, const char *path, int allow_cert, char **user, char **pass,
                           char **cert, char **key, tbgw_err *err) {
    const json_t *sec = json_object_get(e, "security");
    char sp[300];
    snprintf(sp, sizeof sp, "%s.security", path);
    if (!sec || json_is_null(sec)) return 0;
    if (!json_is_object(sec)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", sp);
    const char *type;
    int rc = tbgw_cfg_str(sec, "type", sp, 0, "anonymous", &type, err);
    if (rc) return rc;
    if (!strcasecmp(type, "anonymous")) return 0;
    if (!strcasecmp(type, "basic")) {
        if ((rc = tbgw_cfg_strdup(sec, "username", sp, 1, user, err))) return rc;
        return tbgw_cfg_strdup(sec, "password", sp, 1, pass, err);
    }
    if (allow_cert && !strcasecmp(type, "cert")) {
        if ((rc = tbgw_cfg_strdup(sec, "cert", sp, 1, cert, err))) return rc;
        return tbgw_cfg_strdup(sec, "key", sp, 0, key, err);
    }
    return tbgw_err_set(err, TBGW_EINVAL, "%s.type: expected \"anonymous\" or \"basic\"%s", sp,
                        allow_cert ? " or \"cert\"" : "");
}

int tbgw_http_cfg_method(const json_t *e, const char *key, const char *path, const char *dflt, char **out,
                         tbgw_err *err) {
    const char *s;
    *out = NULL;
    int rc = tbgw_cfg_str(e, key, path, 0, dflt, &s, err);
    if (rc) return rc;
    if (!*s || strlen(s) > 16 ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != strlen(s))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: \"%s\" is not an HTTP method", path, key, s);
    if (!(*out = strdup(s))) return TBGW_ENOMEM;
    for (char *p = *out; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    return 0;
}

int tbgw_http_cfg_headers(const json_t *e, const char *path, json_t **out, int *json_body, tbgw_err *err) {
    const json_t *h = json_object_get(e, "httpHeaders");
    *out = NULL;
    if (json_body) *json_body = 0;
    if (!h || json_is_null(h)) return 0;
    if (!json_is_object(h)) return tbgw_err_set(err, TBGW_EINVAL, "%s.httpHeaders: expected an object", path);
    *out = json_incref((json_t *)h);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)h, name, v) {
        if (json_body && json_is_string(v) && !strcasecmp(name, "Content-Type") &&
            strcasestr(json_string_value(v), "json"))
            *json_body = 1;
    }
    return 0;
}

int tbgw_http_out_parse(tbgw_http_out *o, const json_t *e, const char *path, int rpc,
                        const tbgw_http_out_dialect *d, tbgw_err *err) {
    int rc;
    int64_t tries;
    memset(o, 0, sizeof *o);
    if (!json_is_object(e)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    if ((rc = compile_re(e, "deviceNameFilter", path, ".*", &o->dev_filter, err)) ||
        (rc = compile_re(e, rpc ? "methodFilter" : "attributeFilter", path,
                         rpc && d->method_filter_required ? NULL : ".*", &o->name_filter, err)) ||
        (rc = tbgw_http_cfg_template(e, "requestUrlExpression", path, 1, &o->url, err)) ||
        (rc = tbgw_http_cfg_template(e, d->value_key, path, 0, &o->value, err)) ||
        (d->response_value &&
         (rc = tbgw_http_cfg_template(e, "responseValueExpression", path, 0, &o->resp_value, err))) ||
        (rc = tbgw_http_cfg_method(e, d->method_key, path, d->default_method, &o->method, err)) ||
        (rc = tbgw_http_cfg_headers(e, path, &o->headers, &o->json_body, err)) ||
        (d->entry_security && (rc = tbgw_cfg_bool(e, "SSLVerify", path, 0, &o->verify, err))) ||
        (rc = tbgw_cfg_bool(e, "allowRedirects", path, 0, &o->redirects, err)) ||
        (rc = tbgw_cfg_seconds_ms(e, "timeout", path, 1000, &o->timeout_ms, err)) ||
        (rc = tbgw_cfg_seconds_ms(e, "responseTimeout", path, 0, &o->resp_timeout_ms, err)) ||
        (rc = tbgw_cfg_int(e, "tries", path, 1, 1, 100, &tries, err)) ||
        (d->entry_security &&
         (rc = tbgw_http_cfg_security(e, path, 1, &o->user, &o->pass, &o->cert, &o->key, err))))
        return rc;
    o->tries = (int)tries;
    return 0;
}

void tbgw_http_out_clear(tbgw_http_out *o) {
    tbgw_regex_free(o->dev_filter);
    tbgw_regex_free(o->name_filter);
    tbgw_expr_free(o->url);
    tbgw_expr_free(o->value);
    tbgw_expr_free(o->resp_value);
    free(o->method);
    json_decref(o->headers);
    free(o->user);
    free(o->pass);
    free(o->cert);
    free(o->key);
    memset(o, 0, sizeof *o);
}

int tbgw_http_out_parse_list(const json_t *arr, const char *name, int rpc, const tbgw_http_out_dialect *d,
                             const tbgw_host *host, tbgw_http_out **out, size_t *n, tbgw_err *err) {
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list", name);
    if (!(*out = calloc(json_array_size(arr) + 1, sizeof **out))) return TBGW_ENOMEM;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        char p[80];
        tbgw_err ee = {0};
        snprintf(p, sizeof p, "%s[%zu]", name, i);
        int rc = tbgw_http_out_parse(&(*out)[*n], e, p, rpc, d, &ee);
        if (!rc) {
            (*n)++;
            continue;
        }
        tbgw_http_out_clear(&(*out)[*n]);
        /* an entry that cannot be used is reported and skipped; out of memory stops */
        if (rc == TBGW_ENOMEM || tbgw_cfg_skip_entry(host, &ee))
            return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    return 0;
}

void tbgw_http_out_free_list(tbgw_http_out *v, size_t n) {
    for (size_t i = 0; i < n; i++) tbgw_http_out_clear(&v[i]);
    free(v);
}

const tbgw_http_out *tbgw_http_out_match(const tbgw_http_out *v, size_t n, const char *device,
                                         const char *name) {
    for (size_t i = 0; i < n; i++)
        if (tbgw_regex_fullmatch(v[i].dev_filter, device) && tbgw_regex_fullmatch(v[i].name_filter, name))
            return &v[i];
    return NULL;
}

int tbgw_http_out_reserved(tbgw_http_out *o, const tbgw_rpc_req *r, int set, const tbgw_http_out_dialect *d,
                           const json_t *defaults, const char *schema, char *why, size_t why_len) {
    json_t *e = NULL;
    memset(o, 0, sizeof *o);
    if (json_is_object(r->params)) {
        e = json_deep_copy(r->params);
    } else if (json_is_string(r->params)) {
        tbgw_params p = {0};
        tbgw_err pe = {0};
        e = json_object();
        if (e && !tbgw_params_parse(json_string_value(r->params), TBGW_PARAMS_LENIENT, &p, &pe))
            for (size_t i = 0; i < p.n; i++)
                if (*p.v[i].value)
                    json_object_set_new(e, !strcmp(p.v[i].key, "value") ? d->value_key : p.v[i].key,
                                        json_string(p.v[i].value));
        tbgw_params_free(&p);
    }
    if (!e || !json_object_get(e, "requestUrlExpression") || (set && !json_object_get(e, d->value_key))) {
        snprintf(why, why_len, "%s", schema);
        json_decref(e);
        return TBGW_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)defaults, k, v) {
        if (!json_object_get(e, k)) json_object_set(e, k, v);
    }
    tbgw_err err = {0};
    int rc = tbgw_http_out_parse(o, e, "params", 1, d, &err);
    if (rc) snprintf(why, why_len, "%s", err.msg);
    json_decref(e);
    return rc;
}

/* ------------------------------------------------------------------ requests */

char *tbgw_http_join_url(const char *base, const char *url) {
    if (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8)) return strdup(url);
    size_t n = strlen(base) + strlen(url) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", base, url[0] == '/' ? "" : "/", url);
    return s;
}

void tbgw_http_rpc_failed(const tbgw_host *h, uint64_t handle, const char *fmt, ...) {
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    TBGW_WARNF(h->log, "RPC: %s", text);
    tbgw_rpc_failed(h, handle, "%s", text);
}

typedef struct http_call { /* what a request needs after tbgw_http_out_send returned */
    const tbgw_host *host;
    tbgw_http_answer answer;
    const atomic_int *stop;
    char *url, *what;
    int is_rpc, reserved;
    uint64_t handle;
    const tbgw_expr *resp_value; /* borrowed from the configuration (never a reserved entry's) */
} http_call;

static void call_free(http_call *k) {
    free(k->url);
    free(k->what);
    free(k);
}

/* The RPC reply of a 2xx answer. */
static void answer(const http_call *k, const tbgw_http_resp *r) {
    const tbgw_host *h = k->host;
    if (k->answer == TBGW_HTTP_ANSWER_RESULT) { /* {"result": <the answer as JSON, or its text>} */
        json_t *v = tbgw_json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
        tbgw_rpc_result(h, k->handle, v ? v : json_stringn(r->body, r->len));
        return;
    }
    /* {"result":{"value":...}}: responseValueExpression over the JSON answer, else the answer itself;
     * a reserved call answers the text */
    json_t *body = k->reserved ? NULL : tbgw_json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    json_t *value;
    if (body && k->resp_value) {
        tbgw_buf out;
        tbgw_buf_init(&out);
        int rc = tbgw_expr_render(k->resp_value, body, TBGW_FMT_PY, TBGW_MISSING_FAIL, &out);
        json_decref(body);
        if (rc || !tbgw_buf_cstr(&out)) {
            tbgw_buf_free(&out);
            tbgw_http_rpc_failed(h, k->handle,
                                 "No values found for responseValueExpression: %s in RPC response",
                                 tbgw_expr_text(k->resp_value));
            return;
        }
        value = json_stringn(out.p, out.len);
        tbgw_buf_free(&out);
    } else {
        value = body ? body : json_stringn(r->body, r->len);
    }
    tbgw_rpc_value(h, k->handle, value);
}

static void on_done(void *ud, const tbgw_http_resp *r) {
    http_call *k = ud;
    const tbgw_host *h = k->host;
    if (r->error && !strcmp(r->error, "aborted") && k->stop && atomic_load(k->stop)) {
        call_free(k);
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        TBGW_DEBUGF(h->log, "%s: %s answered %ld", k->what, k->url, r->status);
        if (k->is_rpc) answer(k, r);
        call_free(k);
        return;
    }
    char why[300];
    if (r->error)
        snprintf(why, sizeof why, "%s", r->error);
    else
        snprintf(why, sizeof why, "HTTP status %ld", r->status);
    h->stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
    if (k->is_rpc)
        tbgw_http_rpc_failed(h, k->handle, "%s: request to %s failed after %d tries: %s", k->what, k->url,
                             r->tries, why);
    else
        TBGW_WARNF(h->log, "%s: request to %s failed after %d tries: %s", k->what, k->url, r->tries, why);
    call_free(k);
}

int tbgw_http_out_send(const tbgw_http_sender *s, const tbgw_http_out *o, const tbgw_dl_vars *vars,
                       const char *what, int is_rpc, int reserved, uint64_t handle, int64_t core_timeout_ms) {
    tbgw_buf url, body;
    tbgw_buf_init(&url);
    tbgw_buf_init(&body);
    tbgw_dl_vars uv = *vars, bv = *vars;
    uv.quote = 1;
    uv.json_escape = 0;
    bv.quote = 0;
    bv.json_escape = o->json_body;
    http_call *k = NULL;
    int rc = tbgw_dl_render(o->url, &uv, &url);
    if (!rc && o->value) rc = tbgw_dl_render(o->value, &bv, &body);
    if (!rc && (!tbgw_buf_cstr(&url) || (o->value && !tbgw_buf_cstr(&body)))) rc = TBGW_ENOMEM;
    if (!rc && !s->base && strncasecmp(url.p, "http://", 7) && strncasecmp(url.p, "https://", 8)) {
        TBGW_WARNF(s->host->log, "%s: \"%s\" is not an http(s) URL", what, url.p);
        rc = TBGW_EINVAL;
    }
    if (!rc && !(k = calloc(1, sizeof *k))) rc = TBGW_ENOMEM;
    if (rc) goto out;
    k->host = s->host;
    k->answer = s->answer;
    k->stop = s->stop;
    k->url = s->base ? tbgw_http_join_url(s->base, url.p) : strdup(url.p);
    k->what = strdup(what);
    k->is_rpc = is_rpc;
    k->reserved = reserved;
    k->handle = handle;
    k->resp_value = reserved ? NULL : o->resp_value;
    int64_t budget = o->resp_timeout_ms;
    if (is_rpc && core_timeout_ms > 0 && (!budget || core_timeout_ms < budget)) budget = core_timeout_ms;
    tbgw_http_req req = {.method = o->method,
                         .url = k->url,
                         .headers = o->headers,
                         .body = o->value ? body.p : NULL,
                         .body_len = body.len,
                         .username = o->user ? o->user : s->user,
                         .password = o->user ? o->pass : s->pass,
                         .cert = o->cert,
                         .key = o->key,
                         .verify_tls = o->verify || s->verify,
                         .follow_redirects = o->redirects,
                         .timeout_ms = o->timeout_ms,
                         .tries = o->tries,
                         .budget_ms = budget};
    if (!k->url || !k->what) {
        rc = TBGW_ENOMEM;
    } else {
        TBGW_DEBUGF(s->host->log, "%s: %s %s", what, o->method, k->url);
        rc = tbgw_http_client_submit(s->http, &req, on_done, k);
    }
    if (!rc) k = NULL;
out:
    if (k) call_free(k);
    tbgw_buf_free(&url);
    tbgw_buf_free(&body);
    return rc;
}

void tbgw_http_out_attribute_update(const tbgw_http_sender *s, const tbgw_http_out *upds, size_t n,
                                    const tbgw_attr_update *u) {
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)u->data, key, value) {
        for (size_t i = 0; i < n; i++) {
            const tbgw_http_out *o = &upds[i];
            if (!tbgw_regex_fullmatch(o->dev_filter, u->device) || !tbgw_regex_fullmatch(o->name_filter, key))
                continue;
            tbgw_dl_vars v = {.device = u->device, .key = key, .value = value, .root = u->data};
            char what[300];
            snprintf(what, sizeof what, "attribute update %s of %s", key, u->device);
            int rc = tbgw_http_out_send(s, o, &v, what, 0, 0, 0, 0);
            if (rc) {
                s->host->stat_add(s->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
                TBGW_WARNF(s->host->log, "%s: not sent (%s)", what,
                           rc == TBGW_ENOENT ? "a template refers to a missing value" : tbgw_strerror(rc));
            }
        }
    }
}

int tbgw_http_out_rpc(const tbgw_http_sender *s, const tbgw_http_out *rpcs, size_t n,
                      const tbgw_http_out *reserved, const tbgw_rpc_req *r) {
    const char *dev = r->device ? r->device : "";
    const tbgw_http_out *o = reserved ? reserved : tbgw_http_out_match(rpcs, n, dev, r->method);
    if (!o) return TBGW_ENOENT;
    json_t *root = json_pack("{s:I,s:s,s:O?}", "id", (json_int_t)r->id, "method", r->method, "params",
                             (json_t *)r->params);
    tbgw_dl_vars v = {.device = dev, .method = r->method, .id = r->id, .root = root};
    char what[300];
    snprintf(what, sizeof what, "RPC %s of %s", r->method, r->device ? r->device : "the connector");
    int rc = tbgw_http_out_send(s, o, &v, what, 1, reserved != NULL, r->handle, r->timeout_ms);
    if (rc)
        tbgw_http_rpc_failed(s->host, r->handle, "%s: %s", what,
                             rc == TBGW_ENOENT   ? "a template refers to a missing value"
                             : rc == TBGW_EINVAL ? "requestUrlExpression is not an http(s) URL"
                                                 : tbgw_strerror(rc));
    json_decref(root);
    return 0;
}
