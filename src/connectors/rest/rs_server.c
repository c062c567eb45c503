/* REST connector: the HTTP server side (spec §7.4). Runs on the HTTP module's worker threads. */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "util/json.h"
#include "connectors/rest/rest.h"
#include "util/module.h"
#include "util/time.h"

#define RS_LOG_EVERY_MS 60000

/* ------------------------------------------------------------------ refusals */

void rs_refusal(rs_conn *c, const char *client, unsigned status, const char *why) {
    unsigned long long n = atomic_fetch_add(&c->refused, 1) + 1;
    c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
    char addr[48];
    snprintf(addr, sizeof addr, "%s", client ? client : "?");
    char *colon = strrchr(addr, ':'); /* per client address, not per connection */
    if (colon) *colon = 0;
    int64_t now = tbgw_mono_ms();
    int log = 1;
    pthread_mutex_lock(&c->mu);
    size_t i;
    for (i = 0; i < RS_SEEN; i++)
        if (!strcmp(c->seen[i].client, addr)) break;
    if (i < RS_SEEN) {
        if (now - c->seen[i].last_ms < RS_LOG_EVERY_MS)
            log = 0;
        else
            c->seen[i].last_ms = now;
    } else {
        i = c->seen_next++ % RS_SEEN;
        snprintf(c->seen[i].client, sizeof c->seen[i].client, "%s", addr);
        c->seen[i].last_ms = now;
    }
    pthread_mutex_unlock(&c->mu);
    if (log)
        TBGW_WARNF(c->host->log,
                   "refused a request from %s: %u %s (%llu refusals in all; this client is logged "
                   "at most once a minute)",
                   addr, status, why, n);
    else
        TBGW_DEBUGF(c->host->log, "refused a request from %s: %u %s", addr, status, why);
}

static void on_refusal(void *ud, const char *client, unsigned status, const char *why) {
    rs_refusal(ud, client, status, why);
}

/* ------------------------------------------------------------------ replies */

static void set_reply(tbgw_http_reply *out, unsigned status, const char *ctype, const char *body) {
    out->status = status;
    out->ctype = ctype;
    out->body = body ? strdup(body) : NULL;
    out->len = out->body ? strlen(out->body) : 0;
}

static int refuse(rs_conn *c, const tbgw_http_request *rq, tbgw_http_reply *out, unsigned status,
                  const rs_endpoint *ep, const char *why) {
    rs_refusal(c, rq->client, status, why);
    set_reply(out, status, "text/plain", ep && ep->unsuccess ? ep->unsuccess : why);
    return 0;
}

/* ------------------------------------------------------------------ request data */

static void put_kvs(json_t *data, const tbgw_http_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++)
        json_object_set_new(data, kv[i].key, json_stringn(kv[i].value, kv[i].value_len));
}

/* Request data (spec §7.4): path params + body (JSON object, first element of a JSON list, form
 * fields, or {"text": body}) + query params (last: they win). GET uses the query only. NULL with *status
 * and why set when the body is malformed JSON. A JSON object body becomes the data itself (the path
 * params fill the keys it lacks), so the common request builds no second object. */
static json_t *request_data(const tbgw_http_request *rq, const json_t *params, unsigned *status, char *why,
                            size_t wl) {
    json_t *data = NULL;
    int is_json = rq->ctype && strcasestr(rq->ctype, "json");
    if (strcasecmp(rq->method, "GET") && rq->body_len) {
        json_error_t je;
        json_t *b = tbgw_json_loadb(rq->body, rq->body_len, JSON_DECODE_ANY, &je);
        if (json_is_array(b)) {
            json_t *first = json_array_get(b, 0);
            json_incref(first);
            json_decref(b);
            b = first;
        }
        if (json_is_object(b)) {
            data = b;
            b = NULL;
            if (params) json_object_update_missing(data, (json_t *)params);
        } else if (!b && is_json) {
            snprintf(why, wl, "malformed JSON at line %d column %d (byte %d): %s", je.line, je.column,
                     je.position, je.text);
            *status = 400;
            return NULL;
        } else {
            data = params ? json_copy((json_t *)params) : json_object();
            if (rq->n_form)
                put_kvs(data, rq->form, rq->n_form);
            else
                json_object_set_new(data, "text", json_stringn(rq->body, rq->body_len));
        }
        json_decref(b);
    } else {
        data = params ? json_copy((json_t *)params) : json_object();
    }
    if (!data) {
        snprintf(why, wl, "out of memory");
        *status = 503;
        return NULL;
    }
    put_kvs(data, rq->query, rq->n_query);
    return data;
}

/* ------------------------------------------------------------------ pending answers */

/* 0, or -1 when out of memory (the caller answers at once then). */
static int park(rs_conn *c, const tbgw_http_request *rq, const rs_endpoint *ep, int attr_request,
                const char *device, uint64_t cookie) {
    rs_pending *p = calloc(1, sizeof *p);
    if (!p || !(p->device = strdup(device))) {
        free(p);
        return -1;
    }
    p->http_id = rq->id;
    p->ep = ep;
    p->attr_request = attr_request;
    snprintf(p->client, sizeof p->client, "%s", rq->client ? rq->client : "?");
    p->cookie = cookie;
    p->deadline = tbgw_mono_ms() + ep->timeout_ms;
    pthread_mutex_lock(&c->mu);
    p->next = c->pending;
    c->pending = p;
    int wake = p->deadline < c->wake_at; /* the connector thread sleeps past this deadline */
    if (wake) c->wake_at = p->deadline;
    pthread_mutex_unlock(&c->mu);
    if (wake && c->http) tbgw_http_client_wakeup(c->http);
    return 0;
}

int64_t rs_pending_arm(rs_conn *c) {
    pthread_mutex_lock(&c->mu);
    int64_t next = INT64_MAX;
    for (const rs_pending *p = c->pending; p; p = p->next)
        if (p->deadline < next) next = p->deadline;
    c->wake_at = next;
    pthread_mutex_unlock(&c->mu);
    return next;
}

static void pending_free(rs_pending *p) {
    free(p->device);
    free(p);
}

/* Takes the first parked entry matching fn out of the list. */
typedef int (*match_fn)(const rs_pending *p, const void *key);
static rs_pending *take(rs_conn *c, match_fn fn, const void *key) {
    pthread_mutex_lock(&c->mu);
    rs_pending *found = NULL;
    for (rs_pending **pp = &c->pending; *pp; pp = &(*pp)->next)
        if (fn(*pp, key)) {
            found = *pp;
            *pp = found->next;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    return found;
}

static void answer(rs_conn *c, const rs_pending *p, unsigned status, const char *body) {
    if (c->server)
        c->mod->reply(c->server, p->http_id, status, "text/plain", body ? body : "", body ? strlen(body) : 0);
}

static int match_expired(const rs_pending *p, const void *key) {
    return p->deadline <= *(const int64_t *)key;
}

void rs_pending_expire(rs_conn *c, int64_t now) {
    rs_pending *p;
    while ((p = take(c, match_expired, &now))) {
        rs_refusal(c, p->client, 408,
                   p->attr_request ? "no attribute response in time" : "no response attribute in time");
        answer(c, p, 408, p->ep->unsuccess);
        pending_free(p);
    }
}

typedef struct attr_key {
    const char *device, *key;
} attr_key;

static int match_attr(const rs_pending *p, const void *key) {
    const attr_key *k = key;
    return !p->attr_request && !strcmp(p->device, k->device) && !strcmp(p->ep->resp_attr, k->key);
}

void rs_pending_attribute(rs_conn *c, const char *device, const char *key, const json_t *value) {
    attr_key k = {device, key};
    rs_pending *p;
    while ((p = take(c, match_attr, &k))) {
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_fmt_json(&b, value, TBGW_FMT_PY); /* the reference answers str(value) */
        const char *s = tbgw_buf_cstr(&b);
        if (c->server) c->mod->reply(c->server, p->http_id, 200, "text/plain", s ? s : "", b.len);
        tbgw_buf_free(&b);
        pending_free(p);
    }
}

static int match_cookie(const rs_pending *p, const void *key) {
    return p->attr_request && p->cookie == *(const uint64_t *)key;
}

void rs_pending_attr_response(rs_conn *c, uint64_t cookie, const char *device, const json_t *data) {
    rs_pending *p = take(c, match_cookie, &cookie);
    if (!p) return;
    if (!data) {
        answer(c, p, 408, p->ep->unsuccess);
    } else {
        json_t *j = json_pack("{s:I,s:s,s:O}", "id", (json_int_t)cookie, "device",
                              device ? device : p->device, "values", (json_t *)data);
        char *s = j ? tbgw_json_dumps(j, 0) : NULL;
        if (c->server)
            c->mod->reply(c->server, p->http_id, 200, "application/json", s ? s : "{}", s ? strlen(s) : 2);
        free(s);
        json_decref(j);
    }
    pending_free(p);
}

/* ------------------------------------------------------------------ endpoints */

static int attr_request(rs_conn *c, const tbgw_http_request *rq, const rs_endpoint *ep, json_t *data,
                        tbgw_http_reply *out) {
    tbgw_buf dev;
    tbgw_buf_init(&dev);
    int rc = tbgw_expr_render(ep->dev_expr, data, TBGW_FMT_PY, TBGW_MISSING_FAIL, &dev);
    const char *name = tbgw_buf_cstr(&dev);
    if (rc || !name || !*name) {
        tbgw_buf_free(&dev);
        return refuse(c, rq, out, 400, ep, "the device name expression finds nothing in the request");
    }
    const char *keys[32];
    char *owned[32];
    size_t n = 0;
    for (size_t i = 0; i < tbgw_expr_placeholders(ep->attr_expr) && n < 32; i++) {
        tbgw_path *path = NULL;
        if (tbgw_path_compile(tbgw_expr_placeholder(ep->attr_expr, i), &path, NULL)) continue;
        const json_t *v = tbgw_path_get(path, data);
        tbgw_path_free(path);
        if (!v || json_is_null(v)) continue;
        tbgw_buf k;
        tbgw_buf_init(&k);
        tbgw_fmt_json(&k, v, TBGW_FMT_PY);
        if (tbgw_buf_cstr(&k))
            keys[n] = owned[n] = k.p, n++;
        else
            tbgw_buf_free(&k);
    }
    if (!n) {
        tbgw_buf_free(&dev);
        return refuse(c, rq, out, 400, ep, "the attribute name expression finds nothing in the request");
    }
    pthread_mutex_lock(&c->mu);
    uint64_t cookie = ++c->next_cookie;
    pthread_mutex_unlock(&c->mu);
    rc = park(c, rq, ep, 1, name, cookie)
             ? TBGW_ENOMEM
             : c->host->request_attributes(c->host, name, keys, n, ep->client_scope, cookie);
    for (size_t i = 0; i < n; i++) free(owned[i]);
    tbgw_buf_free(&dev);
    c->host->stat_add(c->host, TBGW_STAT_MSGS_RECEIVED, 1);
    if (rc) {
        rs_pending *p = take(c, match_cookie, &cookie);
        if (p) pending_free(p);
        set_reply(out, 503, "text/plain", "attribute request not accepted");
        return 0;
    }
    return TBGW_HTTP_LATER;
}

static tbgw_converted *convert(rs_conn *c, const tbgw_http_request *rq, rs_endpoint *ep, json_t *data,
                               int *rc, tbgw_err *err) {
    tbgw_converted *chain = NULL;
    if (ep->custom) {
        pthread_mutex_lock(&ep->conv_mu);
        *rc = tbgw_custom_conv_convert(ep->conv, rq->path, (const uint8_t *)rq->body, rq->body_len, &chain,
                                       err);
        pthread_mutex_unlock(&ep->conv_mu);
    } else {
        *rc = tbgw_json_conv_convert(ep->json, rq->path, data, tbgw_now_ms(), &chain, err);
    }
    (void)c;
    return chain;
}

static int data_request(rs_conn *c, const tbgw_http_request *rq, rs_endpoint *ep, json_t *data,
                        tbgw_http_reply *out) {
    tbgw_err err = {0};
    int rc;
    if (ep->disabled)
        return refuse(c, rq, out, 500, ep, "the custom converter of this endpoint was not found");
    tbgw_converted *chain = convert(c, rq, ep, data, &rc, &err);
    if (rc < 0) {
        tbgw_converted_free(chain);
        c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
        TBGW_WARNF(c->host->conv_log, "%s %s from %s: %s", rq->method, rq->path, rq->client,
                   err.msg[0] ? err.msg : tbgw_strerror(rc));
        set_reply(out, 500, "text/plain", ep->unsuccess ? ep->unsuccess : "conversion failed");
        return 0;
    }
    c->host->stat_add(c->host, TBGW_STAT_CONV_PROCESSED, 1);
    char *device = NULL;
    if (ep->response_expected && chain) {
        tbgw_value t = tbgw_value_bool(1);
        for (tbgw_converted *r = chain; r; r = r->next)
            tbgw_converted_add_attribute(r, "responseExpected", &t, NULL);
        device = strdup(chain->device_name);
    }
    if (chain && c->host->emit(c->host, chain) == TBGW_EAGAIN) {
        free(device);
        set_reply(out, 503, "text/plain", "gateway saturated, retry later");
        return 0;
    }
    if (device) {
        int parked = park(c, rq, ep, 0, device, 0) == 0;
        free(device);
        if (parked) return TBGW_HTTP_LATER;
        set_reply(out, 503, "text/plain", "out of memory");
        return 0;
    }
    set_reply(out, 200, "text/plain", ep->success);
    return 0;
}

int rs_handle(void *ud, const tbgw_http_request *rq, tbgw_http_reply *out) {
    rs_conn *c = ud;
    c->host->stat_add(c->host, TBGW_STAT_BYTES_RECEIVED, rq->body_len);
    rs_endpoint *ep = NULL;
    for (size_t i = 0; i < c->cfg.n_eps && !ep; i++)
        if (rs_route_match(&c->cfg.eps[i], rq->path, NULL)) ep = &c->cfg.eps[i];
    if (!ep) return refuse(c, rq, out, 404, NULL, "no such endpoint");
    if (ep->user && (!rq->user || strcmp(rq->user, ep->user) || strcmp(rq->password, ep->pass)))
        return refuse(c, rq, out, 401, ep, rq->user ? "wrong credentials" : "credentials required");
    json_t *params = NULL; /* only endpoints with {var} segments have path parameters */
    for (size_t i = 0; i < ep->n_segs && !params; i++)
        if (ep->segs[i].var && (params = json_object())) rs_route_match(ep, rq->path, params);
    unsigned status = 0;
    char why[300];
    json_t *data = request_data(rq, params, &status, why, sizeof why);
    json_decref(params);
    if (!data) return refuse(c, rq, out, status, NULL, why);
    int rc;
    if (json_object_size(data) == 0)
        rc = refuse(c, rq, out, 415, ep, "the request carries no data");
    else if (!(rs_method_bit(rq->method) & ep->methods))
        rc = refuse(c, rq, out, 405, ep, "method not allowed on this endpoint");
    else if (ep->kind == RS_ATTR_REQUEST)
        rc = attr_request(c, rq, ep, data, out);
    else {
        c->host->stat_add(c->host, TBGW_STAT_MSGS_RECEIVED, 1);
        rc = data_request(c, rq, ep, data, out);
    }
    json_decref(data);
    return rc;
}

/* ------------------------------------------------------------------ TLS and start */

int rs_selfsigned(const char *host, char **cert_pem, char **key_pem) {
    int rc = TBGW_EIO;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    if (!k || !x || !cb || !kb) goto out;
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(tbgw_now_ms() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"tbgw REST connector", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, k, EVP_sha256())) goto out;
    if (!PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL)) goto out;
    char *p;
    long l = BIO_get_mem_data(cb, &p);
    *cert_pem = strndup(p, (size_t)l);
    l = BIO_get_mem_data(kb, &p);
    *key_pem = strndup(p, (size_t)l);
    rc = *cert_pem && *key_pem ? 0 : TBGW_ENOMEM;
out:
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

static char *read_pem(const char *path, const char *dir) {
    if (!path) return NULL;
    char full[1024];
    const char *home = getenv("HOME");
    if (path[0] == '~' && home)
        snprintf(full, sizeof full, "%s%s", home, path + 1);
    else if (path[0] != '/' && dir)
        snprintf(full, sizeof full, "%s/%s", dir, path);
    else
        snprintf(full, sizeof full, "%s", path);
    FILE *f = fopen(full, "rb");
    if (!f) return NULL;
    char *s = malloc(65537);
    size_t len = s ? fread(s, 1, 65536, f) : 0;
    fclose(f);
    if (s) s[len] = 0;
    if (s && !len) {
        free(s);
        s = NULL;
    }
    return s;
}

/* maxConnections needs as many descriptors: raise the soft limit towards the hard one when lower. */
static void raise_fd_limit(rs_conn *c) {
    struct rlimit rl;
    rlim_t want = (rlim_t)c->cfg.max_connections + 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want) return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (rl.rlim_cur > old && !setrlimit(RLIMIT_NOFILE, &rl))
        TBGW_INFOF(c->host->log, "open file limit raised from %llu to %llu for maxConnections %u",
                   (unsigned long long)old, (unsigned long long)rl.rlim_cur, c->cfg.max_connections);
}

int rs_server_start(rs_conn *c, tbgw_err *err) {
    raise_fd_limit(c);
    if (!c->mod && !(c->mod = tbgw_module_symbol(TBGW_HTTP_MODULE_NAME, TBGW_HTTP_MODULE_SYMBOL, err)))
        return TBGW_EIO;
    tbgw_http_opts o = {.max_connections = c->cfg.max_connections,
                        .timeout_s = c->cfg.conn_timeout_s,
                        .threads = c->cfg.threads,
                        .max_body = c->cfg.max_body,
                        .on_refusal = on_refusal};
    o.sa.sin_family = AF_INET;
    o.sa.sin_port = htons((uint16_t)c->cfg.port);
    inet_pton(AF_INET, c->cfg.host, &o.sa.sin_addr);
    char *cert = NULL, *key = NULL;
    if (c->cfg.ssl) {
        cert = read_pem(c->cfg.cert_file, c->host->config_dir);
        key = read_pem(c->cfg.key_file, c->host->config_dir);
        if (!cert || !key) {
            free(cert);
            free(key);
            cert = key = NULL;
            TBGW_INFOF(c->host->log,
                       "SSL without readable certificate and key files: using a self-signed certificate");
            if (rs_selfsigned(c->cfg.host, &cert, &key))
                return tbgw_err_set(err, TBGW_EIO, "cannot make a self-signed certificate");
        }
        o.cert_pem = cert;
        o.key_pem = key;
    }
    char text[300] = "";
    c->server = c->mod->start_ex(&o, rs_handle, c, &c->bound_port, text, sizeof text);
    free(cert);
    free(key);
    if (!c->server) return tbgw_err_set(err, TBGW_EIO, "%s", text[0] ? text : "cannot start the HTTP server");
    TBGW_INFOF(c->host->log, "listening on %s://%s:%d (%zu endpoint(s))", c->cfg.ssl ? "https" : "http",
               c->cfg.host, c->bound_port, c->cfg.n_eps);
    return 0;
}

void rs_server_stop(rs_conn *c) {
    if (c->server) c->mod->stop(c->server); /* answers what still waits with 503 */
    c->server = NULL;
    pthread_mutex_lock(&c->mu);
    rs_pending *p = c->pending;
    c->pending = NULL;
    pthread_mutex_unlock(&c->mu);
    while (p) {
        rs_pending *n = p->next;
        pending_free(p);
        p = n;
    }
}
