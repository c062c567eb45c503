/* Request connector configuration (spec §7.5): host, security, mapping[], attributeUpdates[],
 * serverSideRpc[]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "util/json.h"
#include "connectors/request/request.h"
#include "convert/cfg_util.h"

const tbgw_http_out_dialect rq_dialect = {.method_key = "httpMethod",
                                          .value_key = "requestValueExpression",
                                          .default_method = "GET",
                                          .response_value = 1,
                                          .method_filter_required = 1};

static void map_clear(rq_map *m) {
    free(m->url);
    free(m->method);
    json_decref(m->headers);
    free(m->body);
    tbgw_path_free(m->unpack);
    for (size_t i = 0; i < m->n_subs; i++) {
        free(m->subs[i].key);
        tbgw_expr_free(m->subs[i].url);
        tbgw_py_def_free(m->subs[i].fn);
    }
    free(m->subs);
    tbgw_json_conv_free(m->json);
    tbgw_custom_conv_free(m->conv);
}

static int parse_subs(rq_map *m, const json_t *subs, const char *path, const tbgw_host *host, tbgw_err *err) {
    if (!subs || json_is_null(subs)) return 0;
    if (!json_is_object(subs))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.subRequests: expected an object", path);
    if (!(m->subs = calloc(json_object_size(subs) + 1, sizeof *m->subs))) return TBGW_ENOMEM;
    const char *key;
    json_t *s;
    json_object_foreach((json_t *)subs, key, s) {
        char sp[300];
        snprintf(sp, sizeof sp, "%s.subRequests.%s", path, key);
        rq_sub *r = &m->subs[m->n_subs++];
        if (!(r->key = strdup(key))) return TBGW_ENOMEM;
        if (!json_is_object(s)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", sp);
        int rc = tbgw_http_cfg_template(s, "url", sp, 1, &r->url, err);
        if (rc) return rc;
        const json_t *fn = json_object_get(s, "processingFunction");
        if (fn && !json_is_null(fn)) {
            tbgw_err fe = {0};
            size_t off = 0;
            if (!json_is_string(fn)) {
                tbgw_err_set(&fe, TBGW_EINVAL, "%s.processingFunction: expected a string (Python source)",
                             sp);
            } else if ((rc = tbgw_py_compile_def(json_string_value(fn), json_string_length(fn), 0, &r->fn,
                                                 &fe, &off))) {
                if (rc == TBGW_ENOMEM) return rc;
                char why[sizeof fe.msg];
                snprintf(why, sizeof why, "%s", fe.msg);
                tbgw_err_set(&fe, TBGW_EINVAL, "%s.processingFunction@%zu: %s", sp, off, why);
            } else if (tbgw_py_def_arity(r->fn) != 2) {
                tbgw_err_set(&fe, TBGW_EINVAL,
                             "%s.processingFunction: %s() takes %zu parameter(s); it is called with two (the "
                             "answer and the key)",
                             sp, tbgw_py_def_name(r->fn), tbgw_py_def_arity(r->fn));
            }
            if (fe.code) {
                size_t l = strlen(fe.msg);
                snprintf(fe.msg + l, sizeof fe.msg - l,
                         "; this sub-request is skipped (the rest of the mapping runs)");
                tbgw_py_def_free(r->fn);
                r->fn = NULL;
                r->unsupported = 1;
                tbgw_cfg_skip_entry(host, &fe);
            }
        }
    }
    return 0;
}

/* The request converter's names (deviceNameJsonExpression, telemetry) in the JSON converter's form. */
static json_t *adapt_converter(const json_t *conv) {
    json_t *c = json_deep_copy(conv);
    if (!c) return NULL;
    if (!json_object_get(c, "deviceInfo")) {
        const json_t *n = json_object_get(conv, "deviceNameJsonExpression");
        const json_t *t = json_object_get(conv, "deviceTypeJsonExpression");
        json_t *di = json_object();
        json_object_set_new(di, "deviceNameExpressionSource", json_string("message"));
        if (n) json_object_set(di, "deviceNameExpression", (json_t *)n);
        if (t) {
            json_object_set_new(di, "deviceProfileExpressionSource", json_string("message"));
            json_object_set(di, "deviceProfileExpression", (json_t *)t);
        }
        json_object_set_new(c, "deviceInfo", di);
    }
    if (!json_object_get(c, "timeseries") && json_object_get(conv, "telemetry"))
        json_object_set(c, "timeseries", json_object_get(conv, "telemetry"));
    if (!json_object_get(c, "extensionConfig") && json_object_get(conv, "extension-config"))
        json_object_set(c, "extensionConfig", json_object_get(conv, "extension-config"));
    return c;
}

static int parse_converter(rq_map *m, const json_t *conv, const char *path, const tbgw_host *host,
                           tbgw_err *err) {
    char cp[300];
    snprintf(cp, sizeof cp, "%s.converter", path);
    if (!json_is_object(conv)) return tbgw_err_set(err, TBGW_EINVAL, "%s: missing or not an object", cp);
    const char *type;
    int rc = tbgw_cfg_str(conv, "type", cp, 0, "json", &type, err);
    if (rc) return rc;
    json_t *c = adapt_converter(conv);
    if (!c) return TBGW_ENOMEM;
    if (!strcasecmp(type, "custom")) {
        m->custom = 1;
        rc = tbgw_custom_conv_new(c, "request", host ? host->config_dir : NULL, cp,
                                  host ? host->conv_log : NULL, &m->conv, err);
        if (rc == TBGW_ENOENT) { /* like the reference: logged, the endpoint is not polled */
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof err->msg - l, "; this mapping is not polled");
            tbgw_cfg_skip_entry(host, err);
            m->disabled = 1;
            memset(err, 0, sizeof *err);
            rc = 0;
        }
    } else if (!strcasecmp(type, "json")) {
        if (!json_object_get(json_object_get(c, "deviceInfo"), "deviceNameExpression"))
            rc = tbgw_err_set(err, TBGW_EINVAL, "%s.deviceNameJsonExpression: missing", cp);
        else
            rc = tbgw_json_conv_new(c, NULL, cp, &m->json, err);
    } else {
        rc = tbgw_err_set(err, TBGW_EINVAL, "%s.type: expected \"json\" or \"custom\"", cp);
    }
    json_decref(c);
    return rc;
}

static int parse_body(rq_map *m, const json_t *content) {
    if (!content || json_is_null(content)) return 0;
    if (json_is_string(content)) {
        m->body = strdup(json_string_value(content));
    } else {
        m->body = tbgw_json_dumps(content, 0);
    }
    if (!m->body) return TBGW_ENOMEM;
    m->body_len = strlen(m->body);
    return 0;
}

static int parse_map(rq_map *m, const json_t *e, const char *path, const rq_config *cfg,
                     const tbgw_host *host, tbgw_err *err) {
    const char *url, *unpack;
    int rc;
    if (!json_is_object(e)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    if ((rc = tbgw_cfg_str(e, "url", path, 1, NULL, &url, err)) ||
        (rc = tbgw_http_cfg_method(e, "httpMethod", path, "GET", &m->method, err)) ||
        (rc = tbgw_http_cfg_headers(e, path, &m->headers, NULL, err)) ||
        (rc = tbgw_cfg_bool(e, "allowRedirects", path, 0, &m->redirects, err)) ||
        (rc = tbgw_cfg_seconds_ms(e, "timeout", path, 1000, &m->timeout_ms, err)) ||
        (rc = tbgw_cfg_seconds_ms(e, "scanPeriod", path, 10000, &m->period_ms, err)) ||
        (rc = tbgw_cfg_str(e, "dataUnpackExpression", path, 0, "", &unpack, err)))
        return rc;
    if (!(m->url = rq_join_url(cfg->host, url))) return TBGW_ENOMEM;
    if (m->period_ms < 1) m->period_ms = 1;
    if ((rc = parse_body(m, json_object_get(e, "content")))) return rc;
    if (*unpack) {
        size_t n = strlen(unpack);
        char *inner = n > 3 && !strncmp(unpack, "${", 2) && unpack[n - 1] == '}' ? strndup(unpack + 2, n - 3)
                                                                                 : strdup(unpack);
        if (!inner) return TBGW_ENOMEM;
        char fp[300];
        snprintf(fp, sizeof fp, "%s.dataUnpackExpression", path);
        rc = tbgw_err_prefix(err, tbgw_path_compile(inner, &m->unpack, err), fp, ':');
        free(inner);
        if (rc) return rc;
    }
    if ((rc = parse_subs(m, json_object_get(e, "subRequests"), path, host, err))) return rc;
    return parse_converter(m, json_object_get(e, "converter"), path, host, err);
}

static int parse_security(rq_config *cfg, const json_t *sec, tbgw_err *err) {
    if (!sec || json_is_null(sec)) return 0;
    if (!json_is_object(sec)) return tbgw_err_set(err, TBGW_EINVAL, "security: expected an object");
    const char *type, *user, *pass;
    int rc;
    if ((rc = tbgw_cfg_str(sec, "type", "security", 0, "anonymous", &type, err))) return rc;
    if (!strcasecmp(type, "anonymous")) return 0;
    if (strcasecmp(type, "basic"))
        return tbgw_err_set(err, TBGW_EINVAL, "security.type: expected \"anonymous\" or \"basic\"");
    const char *eu = getenv("REQUEST_BASIC_USERNAME"), *ep = getenv("REQUEST_BASIC_PASSWORD");
    if (eu && ep) {
        user = eu;
        pass = ep;
    } else if ((rc = tbgw_cfg_str(sec, "username", "security", 1, NULL, &user, err)) ||
               (rc = tbgw_cfg_str(sec, "password", "security", 1, NULL, &pass, err))) {
        return rc;
    }
    cfg->user = strdup(user);
    cfg->pass = strdup(pass);
    return cfg->user && cfg->pass ? 0 : TBGW_ENOMEM;
}

/* An entry that cannot be used is reported and skipped (tbgw_cfg_skip_entry); out of memory stops. */
static int skip(const tbgw_host *host, int rc, tbgw_err *ee, tbgw_err *err) {
    if (rc == TBGW_ENOMEM || tbgw_cfg_skip_entry(host, ee))
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    return 0;
}

int rq_config_parse(rq_config *cfg, const json_t *json, const tbgw_host *host, tbgw_err *err) {
    const char *h;
    int rc;
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(json)) return tbgw_err_set(err, TBGW_EINVAL, "expected a JSON object");
    if ((rc = tbgw_cfg_str(json, "host", "", 1, NULL, &h, err))) return rc;
    if (!strncasecmp(h, "http://", 7) || !strncasecmp(h, "https://", 8) || strstr(h, "://"))
        cfg->host = strdup(h);
    else if ((cfg->host = malloc(strlen(h) + 8)))
        sprintf(cfg->host, "http://%s", h);
    if (!cfg->host) return TBGW_ENOMEM;
    size_t hl = strlen(cfg->host);
    while (hl > 0 && cfg->host[hl - 1] == '/') cfg->host[--hl] = 0;
    if ((rc = tbgw_cfg_bool(json, "SSLVerify", "", 0, &cfg->verify, err)) ||
        (rc = parse_security(cfg, json_object_get(json, "security"), err)))
        goto fail;
    const json_t *maps = json_object_get(json, "mapping");
    if (maps && !json_is_array(maps)) {
        rc = tbgw_err_set(err, TBGW_EINVAL, "mapping: expected a list");
        goto fail;
    }
    if (!(cfg->maps = calloc(json_array_size(maps) + 1, sizeof *cfg->maps))) {
        rc = TBGW_ENOMEM;
        goto fail;
    }
    size_t i;
    json_t *e;
    json_array_foreach(maps, i, e) {
        char p[48];
        tbgw_err ee = {0};
        snprintf(p, sizeof p, "mapping[%zu]", i);
        rc = parse_map(&cfg->maps[cfg->n_maps], e, p, cfg, host, &ee);
        if (!rc) {
            cfg->n_maps++;
            continue;
        }
        map_clear(&cfg->maps[cfg->n_maps]);
        memset(&cfg->maps[cfg->n_maps], 0, sizeof cfg->maps[0]);
        if ((rc = skip(host, rc, &ee, err))) goto fail;
    }
    if ((rc = tbgw_http_out_parse_list(json_object_get(json, "attributeUpdates"), "attributeUpdates", 0,
                                       &rq_dialect, host, &cfg->upds, &cfg->n_upds, err)) ||
        (rc = tbgw_http_out_parse_list(json_object_get(json, "serverSideRpc"), "serverSideRpc", 1,
                                       &rq_dialect, host, &cfg->rpcs, &cfg->n_rpcs, err)))
        goto fail;
    return 0;
fail:
    rq_config_free(cfg);
    return rc;
}

void rq_config_free(rq_config *cfg) {
    for (size_t i = 0; i < cfg->n_maps; i++) map_clear(&cfg->maps[i]);
    tbgw_http_out_free_list(cfg->upds, cfg->n_upds);
    tbgw_http_out_free_list(cfg->rpcs, cfg->n_rpcs);
    free(cfg->maps);
    free(cfg->host);
    free(cfg->user);
    free(cfg->pass);
    memset(cfg, 0, sizeof *cfg);
}
