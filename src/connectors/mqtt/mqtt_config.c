/* MQTT connector configuration (spec §7.1): broker, mapping[], requestsMapping, old-format adaptation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/connkit.h>

#include "connectors/mqtt/mqtt_internal.h"
#include "convert/cfg_util.h"

/* ------------------------------------------------------------------ old format adaptation */

/* Moves old deviceName/deviceType keys of obj into a deviceInfo object (when obj has none). */
static void adapt_devinfo(json_t *obj) {
    if (!json_is_object(obj) || json_object_get(obj, "deviceInfo")) return;
    static const struct {
        const char *old, *src, *key, *src_key;
    } m[] = {
        {"deviceNameJsonExpression", "message", "deviceNameExpression", "deviceNameExpressionSource"},
        {"deviceNameTopicExpression", "topic", "deviceNameExpression", "deviceNameExpressionSource"},
        {"deviceTypeJsonExpression", "message", "deviceProfileExpression", "deviceProfileExpressionSource"},
        {"deviceTypeTopicExpression", "topic", "deviceProfileExpression", "deviceProfileExpressionSource"},
        {"deviceNameExpression", NULL, "deviceNameExpression", "deviceNameExpressionSource"},
        {"deviceProfileExpression", NULL, "deviceProfileExpression", "deviceProfileExpressionSource"},
        {"deviceTypeExpression", NULL, "deviceProfileExpression", "deviceProfileExpressionSource"},
    };
    json_t *di = NULL;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        json_t *v = json_object_get(obj, m[i].old);
        if (!v || (di && json_object_get(di, m[i].key))) continue;
        if (!di) di = json_object();
        json_object_set(di, m[i].key, v);
        json_t *src = m[i].src ? json_string(m[i].src) : json_incref(json_object_get(obj, m[i].src_key));
        if (src) json_object_set_new(di, m[i].src_key, src);
    }
    if (di) json_object_set_new(obj, "deviceInfo", di);
}

static void adapt_attr_request(json_t *r) {
    adapt_devinfo(r);
    if (json_object_get(r, "attributeNameExpression")) return;
    json_t *v = json_object_get(r, "attributeNameJsonExpression");
    const char *src = "message";
    if (!v) {
        v = json_object_get(r, "attributeNameTopicExpression");
        src = "topic";
    }
    if (!v) return;
    json_object_set(r, "attributeNameExpression", v);
    json_object_set_new(r, "attributeNameExpressionSource", json_string(src));
}

json_t *mq_config_adapt(const json_t *in) {
    json_t *cfg = json_deep_copy(in);
    if (!cfg) return NULL;
    if (!json_object_get(cfg, "mapping") && json_object_get(cfg, "dataMapping"))
        json_object_set(cfg, "mapping", json_object_get(cfg, "dataMapping"));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(cfg, "mapping"), i, e) {
        json_t *conv = json_object_get(e, "converter");
        adapt_devinfo(conv);
        json_t *ext = json_object_get(conv, "extension-config");
        if (ext && !json_object_get(conv, "extensionConfig")) json_object_set(conv, "extensionConfig", ext);
    }
    json_t *rm = json_object_get(cfg, "requestsMapping");
    static const char *const kinds[] = {"connectRequests", "disconnectRequests", "attributeRequests",
                                        "attributeUpdates", "serverSideRpc"};
    if (!json_is_object(rm)) {
        rm = json_object();
        for (size_t k = 0; k < 5; k++)
            if (json_object_get(cfg, kinds[k])) json_object_set(rm, kinds[k], json_object_get(cfg, kinds[k]));
        json_object_set_new(cfg, "requestsMapping", rm);
    }
    for (size_t k = 0; k < 2; k++) json_array_foreach(json_object_get(rm, kinds[k]), i, e) adapt_devinfo(e);
    json_array_foreach(json_object_get(rm, "attributeRequests"), i, e) adapt_attr_request(e);
    return cfg;
}

/* ------------------------------------------------------------------ helpers */

/* The connector's own copy of a string field (the adapted document is freed after parsing). */
static int get_str(const json_t *o, const char *k, const char *path, int required, const char *dflt,
                   char **out, tbgw_err *err) {
    const char *v;
    *out = NULL;
    if (tbgw_cfg_get_str(o, path, k, NULL, &v, err)) return TBGW_EINVAL;
    if (!v && required) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: missing", path, k);
    if (!v) v = dflt;
    return !v || (*out = strdup(v)) ? 0 : TBGW_ENOMEM;
}

/* Integers may be written as strings ("1883"), as the reference reads them with int(). */
static int get_int(const json_t *o, const char *k, const char *path, int64_t dflt, int64_t lo, int64_t hi,
                   int64_t *out, tbgw_err *err) {
    return tbgw_cfg_get_int_ex(o, path, k, dflt, lo, hi, TBGW_CFG_NUM_STRING, out, err);
}

static int get_bool(const json_t *o, const char *k, const char *path, int dflt, int *out, tbgw_err *err) {
    return tbgw_cfg_get_bool(o, path, k, dflt, out, err);
}

static int compile_tmpl(const json_t *o, const char *k, const char *path, int required, tbgw_expr **out,
                        tbgw_err *err) {
    char *s;
    *out = NULL;
    int rc = get_str(o, k, path, required, NULL, &s, err);
    if (rc || !s) return rc;
    char fp[300];
    snprintf(fp, sizeof fp, "%s.%s", path, k);
    rc = tbgw_err_prefix(err, tbgw_expr_compile(s, out, err), fp, ':');
    free(s);
    return rc;
}

static int compile_re(const json_t *o, const char *k, const char *path, tbgw_regex **out, tbgw_err *err) {
    char *s;
    *out = NULL;
    int rc = get_str(o, k, path, 1, NULL, &s, err);
    if (rc) return rc;
    char fp[300];
    snprintf(fp, sizeof fp, "%s.%s", path, k);
    rc = tbgw_regex_compile(s, out, fp, err);
    free(s);
    return rc;
}

static void rel_path(char **p, const char *dir) {
    if (!*p || (*p)[0] == '/' || !dir || !*dir) return;
    size_t n = strlen(dir) + strlen(*p) + 2;
    char *np = malloc(n);
    if (!np) return;
    snprintf(np, n, "%s/%s", dir, *p);
    free(*p);
    *p = np;
}

/* ------------------------------------------------------------------ broker */

static int parse_version(const json_t *v, int *out) {
    *out = 5;
    if (!v) return 0;
    const char *s = json_string_value(v);
    int64_t n = json_is_integer(v) ? json_integer_value(v) : -1;
    if (json_is_real(v)) n = (int64_t)json_real_value(v);
    if (n == 3 || (s && (!strcmp(s, "3") || !strcmp(s, "3.1"))))
        *out = 3;
    else if (n == 4 || (s && (!strcmp(s, "4") || !strcmp(s, "3.1.1"))))
        *out = 4;
    return 0; /* unknown => 5 (reference) */
}

static int parse_security(mq_config *cfg, const json_t *sec, const char *dir, tbgw_err *err) {
    if (!sec || json_is_null(sec)) return 0;
    if (!json_is_object(sec)) return tbgw_err_set(err, TBGW_EINVAL, "broker.security: expected an object");
    const char *type = json_string_value(json_object_get(sec, "type"));
    int rc = 0;
    if (json_object_get(sec, "username") || (type && !strcasecmp(type, "basic"))) {
        if ((rc = get_str(sec, "username", "broker.security", 1, NULL, &cfg->username, err)) ||
            (rc = get_str(sec, "password", "broker.security", 0, NULL, &cfg->password, err)))
            return rc;
    }
    if (type && (!strcasecmp(type, "certificates") || !strcasecmp(type, "tls"))) {
        cfg->tls = 1;
        if ((rc = get_str(sec, "pathToCACert", "broker.security", 0, NULL, &cfg->ca_cert, err)) ||
            (rc = get_str(sec, "pathToPrivateKey", "broker.security", 0, NULL, &cfg->key, err)) ||
            (rc = get_str(sec, "pathToClientCert", "broker.security", 0, NULL, &cfg->cert, err)) ||
            (rc = get_bool(sec, "insecure", "broker.security", 0, &cfg->tls_insecure, err)))
            return rc;
        if (!cfg->cert != !cfg->key)
            return tbgw_err_set(
                err, TBGW_EINVAL,
                "broker.security: pathToClientCert and pathToPrivateKey must be given together");
        rel_path(&cfg->ca_cert, dir);
        rel_path(&cfg->key, dir);
        rel_path(&cfg->cert, dir);
    } else if (type && strcasecmp(type, "anonymous") && strcasecmp(type, "basic")) {
        return tbgw_err_set(err, TBGW_EINVAL,
                            "broker.security.type: expected one of anonymous, basic, certificates");
    }
    return 0;
}

static int parse_broker(mq_config *cfg, const json_t *b, const char *dir, tbgw_err *err) {
    if (!json_is_object(b)) return tbgw_err_set(err, TBGW_EINVAL, "broker: expected an object");
    int64_t v;
    int rc;
    if ((rc = get_str(b, "host", "broker", 1, NULL, &cfg->host, err))) return rc;
    if ((rc = get_int(b, "port", "broker", 1883, 1, 65535, &v, err))) return rc;
    cfg->port = (int)v;
    if ((rc = get_str(b, "clientId", "broker", 0, NULL, &cfg->client_id, err))) return rc;
    if (!cfg->client_id || !*cfg->client_id) {
        free(cfg->client_id);
        cfg->client_id = malloc(24);
        if (!cfg->client_id) return TBGW_ENOMEM;
        uint64_t seed = (uint64_t)tbgw_now_ms() ^ (uint64_t)(uintptr_t)cfg;
        for (int i = 0; i < 23; i++) cfg->client_id[i] = (char)('a' + tbgw_rand_next(&seed) % 26);
        cfg->client_id[23] = 0;
    }
    parse_version(json_object_get(b, "version"), &cfg->version);
    if ((rc = get_int(b, "keepAlive", "broker", 60, 0, 65535, &v, err))) return rc;
    cfg->keepalive = (int)v;
    if ((rc = get_bool(b, "cleanSession", "broker", 1, &cfg->clean_session, err)) ||
        (rc = get_bool(b, "cleanStart", "broker", 1, &cfg->clean_start, err)) ||
        (rc = get_int(b, "sessionExpiryInterval", "broker", 0, 0, 4294967295LL, &cfg->session_expiry, err)))
        return rc;
    return parse_security(cfg, json_object_get(b, "security"), dir, err);
}

/* ------------------------------------------------------------------ mapping */

static int parse_qos(const json_t *o, const char *k, const char *path, int dflt, int *out, tbgw_err *err) {
    int64_t v;
    int rc = get_int(o, k, path, dflt, 0, 2, &v, err);
    *out = (int)v;
    return rc;
}

static int parse_mapping(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud,
                         tbgw_err *err) {
    (void)ud;
    mq_mapping *m = slot;
    const tbgw_host *host = w->host;
    int rc = get_str(e, "topicFilter", path, 1, NULL, &m->topic_filter, err);
    if (!rc) rc = parse_qos(e, "subscriptionQos", path, 1, &m->qos, err);
    if (rc) return rc;
    const json_t *conv = json_object_get(e, "converter");
    char cp[280];
    snprintf(cp, sizeof cp, "%s.converter", path);
    if (!json_is_object(conv)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", cp);
    const json_t *tj = json_object_get(conv, "type");
    const char *type = tj ? json_string_value(tj) : "json";
    if (!type) type = "";
    if (!strcasecmp(type, "json")) {
        m->kind = MQ_CONV_JSON;
        return tbgw_json_conv_new_ex(conv, e, cp, host, &m->json, err);
    }
    if (!strcasecmp(type, "bytes")) {
        m->kind = MQ_CONV_BYTES;
        return tbgw_bytes_conv_new_ex(conv, e, cp, host, &m->bytes, err);
    }
    if (!strcasecmp(type, "custom")) {
        m->kind = MQ_CONV_CUSTOM;
        rc = tbgw_custom_conv_new(conv, "mqtt", host ? host->config_dir : ".", cp,
                                  host ? host->conv_log : NULL, &m->custom, err);
        if (rc == TBGW_ENOENT && host) {
            /* a missing plugin disables this mapping only (the reference skips it too) */
            TBGW_ERRORF(host->log, "%s; mapping for %s disabled", err->msg, m->topic_filter);
            m->disabled = 1;
            err->code = 0;
            err->msg[0] = 0;
            return 0;
        }
        return rc;
    }
    return tbgw_err_set(err, TBGW_EINVAL, "%s.type: expected one of json, bytes, custom", cp);
}

static int parse_dev_req(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud,
                         tbgw_err *err) {
    (void)w, (void)ud; /* the list walker's uniform signature */
    mq_dev_req *r = slot;
    int rc = get_str(e, "topicFilter", path, 1, NULL, &r->topic_filter, err);
    char fp[300];
    snprintf(fp, sizeof fp, "%s.deviceInfo", path);
    const json_t *di = json_object_get(e, "deviceInfo");
    if (!rc && !di) rc = tbgw_err_set(err, TBGW_EINVAL, "%s: missing", fp);
    if (!rc) rc = tbgw_devinfo_new(di, fp, 0, &r->dev, err);
    return rc;
}

static int parse_attr_req(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud,
                          tbgw_err *err) {
    mq_attr_req *r = slot;
    mq_dev_req base = {0};
    int rc = parse_dev_req(w, e, path, &base, ud, err);
    r->topic_filter = base.topic_filter;
    r->dev = base.dev;
    if (rc) return rc;
    char *src = NULL, *name = NULL;
    if ((rc = get_str(e, "attributeNameExpressionSource", path, 0, "message", &src, err)) ||
        (rc = get_str(e, "attributeNameExpression", path, 1, NULL, &name, err)))
        goto out;
    if (tbgw_src_parse(src, &r->name_src)) {
        rc = tbgw_err_set(err, TBGW_EINVAL,
                          "%s.attributeNameExpressionSource: expected one of message, topic, constant", path);
        goto out;
    }
    char fp[300];
    snprintf(fp, sizeof fp, "%s.attributeNameExpression", path);
    if (r->name_src == TBGW_SRC_TOPIC)
        rc = tbgw_regex_compile(name, &r->name_re, fp, err);
    else
        rc = tbgw_err_prefix(err, tbgw_expr_compile(name, &r->name_expr, err), fp, ':');
    if (rc) goto out;
    if ((rc = get_str(e, "scope", path, 0, "shared", &r->scope, err))) goto out;
    if (strstr(r->scope, "${"))
        rc = tbgw_expr_compile(r->scope, &r->scope_expr, err);
    else if (strcasecmp(r->scope, "shared") && strcasecmp(r->scope, "client"))
        rc = tbgw_err_set(err, TBGW_EINVAL, "%s.scope: expected shared or client", path);
    if (!rc) rc = compile_tmpl(e, "topicExpression", path, 1, &r->topic_expr, err);
    if (!rc) rc = compile_tmpl(e, "valueExpression", path, 1, &r->value_expr, err);
    if (!rc) rc = get_bool(e, "retain", path, 0, &r->retain, err);
    if (!rc) rc = parse_qos(e, "qos", path, 0, &r->qos, err);
out:
    free(src);
    free(name);
    return rc;
}

static int parse_attr_upd(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud,
                          tbgw_err *err) {
    (void)w, (void)ud; /* the list walker's uniform signature */
    mq_attr_upd *u = slot;
    const json_t *af = json_object_get(e, "attributeFilter");
    if (json_is_string(af) && !json_string_length(af))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.attributeFilter: empty; a rule needs a regular expression naming the "
                            "attributes it forwards (\".*\" for all)",
                            path);
    int rc = compile_re(e, "deviceNameFilter", path, &u->dev_filter, err);
    if (!rc) rc = compile_re(e, "attributeFilter", path, &u->attr_filter, err);
    if (!rc) rc = compile_tmpl(e, "topicExpression", path, 1, &u->topic_expr, err);
    if (!rc) rc = compile_tmpl(e, "valueExpression", path, 1, &u->value_expr, err);
    if (!rc) rc = get_bool(e, "retain", path, 0, &u->retain, err);
    if (!rc) rc = parse_qos(e, "qos", path, 0, &u->qos, err);
    return rc;
}

static int parse_rpc(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud; /* the list walker's uniform signature */
    mq_rpc_cfg *r = slot;
    int rc = compile_re(e, "deviceNameFilter", path, &r->dev_filter, err);
    if (!rc) rc = compile_re(e, "methodFilter", path, &r->method_filter, err);
    if (!rc) rc = compile_tmpl(e, "requestTopicExpression", path, 1, &r->req_topic, err);
    if (!rc) rc = compile_tmpl(e, "responseTopicExpression", path, 0, &r->resp_topic, err);
    if (!rc) rc = compile_tmpl(e, "valueExpression", path, 1, &r->value, err);
    if (!rc) rc = get_int(e, "responseTimeout", path, 0, 0, 86400000, &r->timeout_ms, err);
    if (!rc) rc = parse_qos(e, "responseTopicQoS", path, 1, &r->resp_qos, err);
    if (!rc) rc = get_bool(e, "retain", path, 0, &r->retain, err);
    if (!rc) rc = parse_qos(e, "qos", path, 0, &r->qos, err);
    /* two-way iff both a response topic and a timeout are configured (spec §7.1) */
    if (!rc && (!r->resp_topic || r->timeout_ms <= 0)) {
        tbgw_expr_free(r->resp_topic);
        r->resp_topic = NULL;
        r->timeout_ms = 0;
    }
    return rc;
}

static void free_mapping(void *slot);
static void free_dev_req(void *slot);
static void free_attr_req(void *slot);
static void free_attr_upd(void *slot);
static void free_rpc(void *slot);

/* One list of entries under obj[key] into *arr (through the kit's tbgw_cfg_list: an entry that cannot be
 * used is released, reported with its file:line:column and skipped); an empty object is no list. */
static int parse_list(tbgw_cfg *w, const json_t *obj, const char *path, const char *key, size_t size,
                      void *arr, size_t *n, tbgw_cfg_slot_fn fn, void (*drop)(void *slot)) {
    const json_t *l = json_object_get(obj, key);
    if (json_is_object(l) && !json_object_size(l)) return 0; /* {} = none */
    int rc = tbgw_cfg_list(w, obj, path, key, size, (void **)arr, n, fn, drop, NULL);
    return rc < 0 ? rc : 0;
}

int mq_config_parse(mq_config *cfg, const json_t *in, const tbgw_host *host, tbgw_err *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(in)) return tbgw_err_set(err, TBGW_EINVAL, "expected a JSON object");
    json_t *j = mq_config_adapt(in);
    if (!j) return TBGW_ENOMEM;
    int rc = parse_broker(cfg, json_object_get(j, "broker"), host ? host->config_dir : NULL, err);
    tbgw_cfg w;
    tbgw_cfg_init(&w, host, err);
    if (!rc) {
        const json_t *maps = json_object_get(j, "mapping");
        if (maps && !json_is_array(maps))
            rc = tbgw_err_set(err, TBGW_EINVAL, "mapping: expected a list");
        else
            rc = parse_list(&w, j, NULL, "mapping", sizeof *cfg->maps, &cfg->maps, &cfg->n_maps,
                            parse_mapping, free_mapping);
    }
    const json_t *rm = json_object_get(j, "requestsMapping");
    const char *rp = "requestsMapping";
    if (!rc)
        rc = parse_list(&w, rm, rp, "connectRequests", sizeof *cfg->connects, &cfg->connects,
                        &cfg->n_connects, parse_dev_req, free_dev_req);
    if (!rc)
        rc = parse_list(&w, rm, rp, "disconnectRequests", sizeof *cfg->disconnects, &cfg->disconnects,
                        &cfg->n_disconnects, parse_dev_req, free_dev_req);
    if (!rc)
        rc = parse_list(&w, rm, rp, "attributeRequests", sizeof *cfg->attr_reqs, &cfg->attr_reqs,
                        &cfg->n_attr_reqs, parse_attr_req, free_attr_req);
    if (!rc)
        rc = parse_list(&w, rm, rp, "attributeUpdates", sizeof *cfg->attr_upds, &cfg->attr_upds,
                        &cfg->n_attr_upds, parse_attr_upd, free_attr_upd);
    if (!rc)
        rc = parse_list(&w, rm, rp, "serverSideRpc", sizeof *cfg->rpcs, &cfg->rpcs, &cfg->n_rpcs, parse_rpc,
                        free_rpc);
    json_decref(j);
    if (rc) mq_config_free(cfg);
    return rc;
}

static void free_mapping(void *slot) {
    mq_mapping *m = slot;
    free(m->topic_filter);
    tbgw_json_conv_free(m->json);
    tbgw_bytes_conv_free(m->bytes);
    tbgw_custom_conv_free(m->custom);
}

static void free_dev_req(void *slot) {
    mq_dev_req *r = slot;
    free(r->topic_filter);
    tbgw_devinfo_free(r->dev);
}

static void free_attr_req(void *slot) {
    mq_attr_req *r = slot;
    free(r->topic_filter);
    tbgw_devinfo_free(r->dev);
    tbgw_expr_free(r->name_expr);
    tbgw_regex_free(r->name_re);
    free(r->scope);
    tbgw_expr_free(r->scope_expr);
    tbgw_expr_free(r->topic_expr);
    tbgw_expr_free(r->value_expr);
}

static void free_attr_upd(void *slot) {
    mq_attr_upd *u = slot;
    tbgw_regex_free(u->dev_filter);
    tbgw_regex_free(u->attr_filter);
    tbgw_expr_free(u->topic_expr);
    tbgw_expr_free(u->value_expr);
}

static void free_rpc(void *slot) {
    mq_rpc_cfg *r = slot;
    tbgw_regex_free(r->dev_filter);
    tbgw_regex_free(r->method_filter);
    tbgw_expr_free(r->req_topic);
    tbgw_expr_free(r->resp_topic);
    tbgw_expr_free(r->value);
}

void mq_config_free(mq_config *cfg) {
    free(cfg->host);
    free(cfg->client_id);
    free(cfg->username);
    free(cfg->password);
    free(cfg->ca_cert);
    free(cfg->cert);
    free(cfg->key);
    for (size_t i = 0; i < cfg->n_maps; i++) free_mapping(&cfg->maps[i]);
    free(cfg->maps);
    for (size_t i = 0; i < cfg->n_connects; i++) free_dev_req(&cfg->connects[i]);
    free(cfg->connects);
    for (size_t i = 0; i < cfg->n_disconnects; i++) free_dev_req(&cfg->disconnects[i]);
    free(cfg->disconnects);
    for (size_t i = 0; i < cfg->n_attr_reqs; i++) free_attr_req(&cfg->attr_reqs[i]);
    free(cfg->attr_reqs);
    for (size_t i = 0; i < cfg->n_attr_upds; i++) free_attr_upd(&cfg->attr_upds[i]);
    free(cfg->attr_upds);
    for (size_t i = 0; i < cfg->n_rpcs; i++) free_rpc(&cfg->rpcs[i]);
    free(cfg->rpcs);
    memset(cfg, 0, sizeof *cfg);
}
