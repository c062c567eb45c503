/* REST connector configuration (spec §7.4): server, mapping[], requestsMapping. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "connectors/rest/rest.h"
#include "convert/cfg_util.h"

unsigned rs_method_bit(const char *m) {
    static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(m, names[i])) return 1u << i;
    return 0;
}

const tbgw_http_out_dialect rs_dialect = {.method_key = "HTTPMethod",
                                          .value_key = "valueExpression",
                                          .default_method = "POST",
                                          .entry_security = 1};

static int parse_methods(const json_t *e, const char *key, const char *path, unsigned *out, tbgw_err *err) {
    const json_t *m = json_object_get(e, key);
    *out = 0;
    if (!m) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: missing (a list such as [\"POST\"])", path, key);
    if (!json_is_array(m))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a list of methods", path, key);
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v) {
        unsigned b = json_is_string(v) ? rs_method_bit(json_string_value(v)) : 0;
        if (!b) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s[%zu]: not an HTTP method", path, key, i);
        *out |= b;
    }
    return 0;
}

static int parse_route(rs_endpoint *ep, const json_t *e, const char *path, tbgw_err *err) {
    int rc = tbgw_cfg_strdup(e, "endpoint", path, 1, &ep->path, err);
    if (rc) return rc;
    if (ep->path[0] != '/') return tbgw_err_set(err, TBGW_EINVAL, "%s.endpoint: must start with '/'", path);
    size_t n = 1;
    for (const char *p = ep->path; *p; p++) n += *p == '/';
    if (!(ep->segs = calloc(n, sizeof *ep->segs))) return TBGW_ENOMEM;
    char *copy = strdup(ep->path + 1), *save = NULL;
    if (!copy) return TBGW_ENOMEM;
    for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        rs_seg *g = &ep->segs[ep->n_segs++];
        size_t l = strlen(s);
        g->var = l > 2 && s[0] == '{' && s[l - 1] == '}';
        g->text = g->var ? strndup(s + 1, l - 2) : strdup(s);
        if (!g->text) {
            free(copy);
            return TBGW_ENOMEM;
        }
    }
    free(copy);
    return 0;
}

int rs_route_match(const rs_endpoint *ep, const char *path, json_t *params) {
    const char *p = path;
    for (size_t i = 0; i < ep->n_segs; i++) {
        while (*p == '/') p++;
        const char *end = strchr(p, '/');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (!l) return 0;
        if (ep->segs[i].var) {
            if (params) json_object_set_new(params, ep->segs[i].text, json_stringn(p, l));
        } else if (strlen(ep->segs[i].text) != l || strncmp(ep->segs[i].text, p, l)) {
            return 0;
        }
        p += l;
    }
    while (*p == '/') p++;
    return *p == 0;
}

/* REST values go up as strings, as the reference's converter renders them (spec §7.4). */
static json_t *adapt_converter(const json_t *conv) {
    json_t *c = json_deep_copy(conv);
    static const char *const lists[] = {"attributes", "timeseries"};
    for (size_t k = 0; k < 2; k++) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(c, lists[k]), i, e) {
            if (json_is_object(e)) json_object_set_new(e, "type", json_string("string"));
        }
    }
    if (!json_object_get(c, "timeseries") && json_object_get(c, "telemetry"))
        json_object_set(c, "timeseries", json_object_get(c, "telemetry"));
    return c;
}

static int parse_data_ep(rs_endpoint *ep, const json_t *e, const char *path, const tbgw_host *host,
                         tbgw_err *err) {
    const json_t *resp = json_object_get(e, "response");
    char rp[300], cp[300];
    int rc;
    snprintf(rp, sizeof rp, "%s.response", path);
    snprintf(cp, sizeof cp, "%s.converter", path);
    if (resp && !json_is_object(resp)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", rp);
    if ((rc = tbgw_cfg_bool(resp, "responseExpected", rp, 0, &ep->response_expected, err)) ||
        (rc = tbgw_cfg_seconds_ms(resp, "timeout", rp, 120000, &ep->timeout_ms, err)) ||
        (rc = tbgw_cfg_strdup(resp, "responseAttribute", rp, 0, &ep->resp_attr, err)) ||
        (rc = tbgw_cfg_strdup(resp, "successResponse", rp, 0, &ep->success, err)) ||
        (rc = tbgw_cfg_strdup(resp, "unsuccessfulResponse", rp, 0, &ep->unsuccess, err)))
        return rc;
    if (ep->response_expected && !ep->resp_attr)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.responseAttribute: required when responseExpected is true",
                            rp);
    const json_t *conv = json_object_get(e, "converter");
    if (!json_is_object(conv)) return tbgw_err_set(err, TBGW_EINVAL, "%s: missing or not an object", cp);
    const char *type;
    if ((rc = tbgw_cfg_str(conv, "type", cp, 0, "json", &type, err))) return rc;
    json_t *c = adapt_converter(conv);
    if (!c) return TBGW_ENOMEM;
    if (!strcasecmp(type, "custom")) {
        ep->custom = 1;
        rc = tbgw_custom_conv_new(c, "rest", host ? host->config_dir : NULL, cp, host ? host->conv_log : NULL,
                                  &ep->conv, err);
        if (rc == TBGW_ENOENT) { /* like the reference: logged, the endpoint answers 500 */
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof err->msg - l, "; requests to %s get 500", ep->path);
            tbgw_cfg_skip_entry(host, err);
            ep->disabled = 1;
            memset(err, 0, sizeof *err);
            rc = 0;
        }
    } else if (!strcasecmp(type, "json")) {
        rc = tbgw_json_conv_new(c, e, cp, &ep->json, err);
    } else {
        rc = tbgw_err_set(err, TBGW_EINVAL, "%s.type: expected \"json\" or \"custom\"", cp);
    }
    json_decref(c);
    return rc;
}

static int parse_ep(rs_endpoint *ep, const json_t *e, const char *path, rs_kind kind, const tbgw_host *host,
                    tbgw_err *err) {
    int rc;
    ep->kind = kind;
    pthread_mutex_init(&ep->conv_mu, NULL);
    if (!json_is_object(e)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    if ((rc = parse_route(ep, e, path, err)) ||
        (rc = parse_methods(e, "HTTPMethods", path, &ep->methods, err)) ||
        (rc = tbgw_http_cfg_security(e, path, 0, &ep->user, &ep->pass, NULL, NULL, err)))
        return rc;
    if (kind == RS_DATA) return parse_data_ep(ep, e, path, host, err);
    const char *scope;
    if ((rc = tbgw_cfg_str(e, "type", path, 0, "shared", &scope, err)) ||
        (rc = tbgw_cfg_seconds_ms(e, "timeout", path, 10000, &ep->timeout_ms, err)) ||
        (rc = tbgw_http_cfg_template(e, "deviceNameExpression", path, 1, &ep->dev_expr, err)) ||
        (rc = tbgw_http_cfg_template(e, "attributeNameExpression", path, 1, &ep->attr_expr, err)))
        return rc;
    if (strcasecmp(scope, "shared") && strcasecmp(scope, "client"))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.type: expected \"shared\" or \"client\"", path);
    ep->client_scope = !strcasecmp(scope, "client");
    return 0;
}

static void ep_clear(rs_endpoint *ep) {
    free(ep->path);
    for (size_t i = 0; i < ep->n_segs; i++) free(ep->segs[i].text);
    free(ep->segs);
    free(ep->user);
    free(ep->pass);
    free(ep->resp_attr);
    free(ep->success);
    free(ep->unsuccess);
    tbgw_json_conv_free(ep->json);
    tbgw_custom_conv_free(ep->conv);
    tbgw_expr_free(ep->dev_expr);
    tbgw_expr_free(ep->attr_expr);
    pthread_mutex_destroy(&ep->conv_mu);
}

static int parse_list(const json_t *arr, const char *name, size_t *n, tbgw_err *err) {
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list", name);
    *n = json_array_size(arr);
    return 0;
}

static int parse_server(rs_config *cfg, const json_t *srv, tbgw_err *err) {
    const char *host, *cert = NULL, *key = NULL;
    int64_t port, max_body, threads, maxc, cto;
    int rc;
    if (!json_is_object(srv)) return tbgw_err_set(err, TBGW_EINVAL, "server: missing or not an object");
    if ((rc = tbgw_cfg_str(srv, "host", "server", 0, "0.0.0.0", &host, err)) ||
        (rc = tbgw_cfg_int(srv, "port", "server", 5000, 0, 65535, &port, err)) ||
        (rc = tbgw_cfg_bool(srv, "SSL", "server", 0, &cfg->ssl, err)) ||
        (rc = tbgw_cfg_int(srv, "maxBodySize", "server", 1 << 20, 1, 1 << 30, &max_body, err)) ||
        (rc = tbgw_cfg_int(srv, "threads", "server", 0, 0, 256, &threads, err)) ||
        (rc = tbgw_cfg_int(srv, "maxConnections", "server", 10000, 1, 1000000, &maxc, err)) ||
        (rc = tbgw_cfg_int(srv, "connectionTimeout", "server", 30, 1, 3600, &cto, err)))
        return rc;
    struct in_addr a;
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a) != 1)
        return tbgw_err_set(err, TBGW_EINVAL, "server.host: expected an IPv4 address, got \"%s\"", host);
    snprintf(cfg->host, sizeof cfg->host, "%s", host);
    cfg->port = (int)port;
    cfg->max_body = (size_t)max_body;
    cfg->threads = (unsigned)threads;
    cfg->max_connections = (unsigned)maxc;
    cfg->conn_timeout_s = (unsigned)cto;
    const json_t *sec = json_object_get(srv, "security");
    if (json_is_object(sec) && ((rc = tbgw_cfg_str(sec, "cert", "server.security", 0, NULL, &cert, err)) ||
                                (rc = tbgw_cfg_str(sec, "key", "server.security", 0, NULL, &key, err))))
        return rc;
    if (cert && !(cfg->cert_file = strdup(cert))) return TBGW_ENOMEM;
    if (key && !(cfg->key_file = strdup(key))) return TBGW_ENOMEM;
    return 0;
}

/* An entry that cannot be used is reported and skipped (tbgw_cfg_skip_entry); out of memory stops. */
static int skip(const tbgw_host *host, int rc, tbgw_err *ee, tbgw_err *err) {
    if (rc == TBGW_ENOMEM || tbgw_cfg_skip_entry(host, ee))
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    return 0;
}

int rs_config_parse(rs_config *cfg, const json_t *json, const tbgw_host *host, tbgw_err *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(json)) return tbgw_err_set(err, TBGW_EINVAL, "expected a JSON object");
    const json_t *maps = json_object_get(json, "mapping"), *rm = json_object_get(json, "requestsMapping");
    const json_t *areq = json_object_get(rm, "attributeRequests");
    size_t n_maps, n_areq;
    int rc;
    if ((rc = parse_server(cfg, json_object_get(json, "server"), err)) ||
        (rc = parse_list(maps, "mapping", &n_maps, err)) ||
        (rc = parse_list(areq, "requestsMapping.attributeRequests", &n_areq, err)))
        goto fail;
    if (rm && !json_is_object(rm)) {
        rc = tbgw_err_set(err, TBGW_EINVAL, "requestsMapping: expected an object");
        goto fail;
    }
    if (!(cfg->eps = calloc(n_maps + n_areq + 1, sizeof *cfg->eps))) {
        rc = TBGW_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n_maps + n_areq; i++) {
        char p[80];
        int data = i < n_maps;
        if (data)
            snprintf(p, sizeof p, "mapping[%zu]", i);
        else
            snprintf(p, sizeof p, "requestsMapping.attributeRequests[%zu]", i - n_maps);
        tbgw_err ee = {0};
        rc = parse_ep(&cfg->eps[cfg->n_eps], json_array_get(data ? maps : areq, data ? i : i - n_maps), p,
                      data ? RS_DATA : RS_ATTR_REQUEST, host, &ee);
        if (!rc) {
            cfg->n_eps++;
            continue;
        }
        ep_clear(&cfg->eps[cfg->n_eps]);
        memset(&cfg->eps[cfg->n_eps], 0, sizeof cfg->eps[0]);
        if ((rc = skip(host, rc, &ee, err))) goto fail;
    }
    if ((rc = tbgw_http_out_parse_list(json_object_get(rm, "attributeUpdates"),
                                       "requestsMapping.attributeUpdates", 0, &rs_dialect, host, &cfg->upds,
                                       &cfg->n_upds, err)) ||
        (rc = tbgw_http_out_parse_list(json_object_get(rm, "serverSideRpc"), "requestsMapping.serverSideRpc",
                                       1, &rs_dialect, host, &cfg->rpcs, &cfg->n_rpcs, err)))
        goto fail;
    return 0;
fail:
    rs_config_free(cfg);
    return rc;
}

void rs_config_free(rs_config *cfg) {
    for (size_t i = 0; i < cfg->n_eps; i++) ep_clear(&cfg->eps[i]);
    tbgw_http_out_free_list(cfg->upds, cfg->n_upds);
    tbgw_http_out_free_list(cfg->rpcs, cfg->n_rpcs);
    free(cfg->eps);
    free(cfg->cert_file);
    free(cfg->key_file);
    memset(cfg, 0, sizeof *cfg);
}
