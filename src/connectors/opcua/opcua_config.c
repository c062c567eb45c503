/* OPC-UA connector configuration (spec gateway.md §7.3). Every error names the field as a dotted
 * path. */
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"
#include "convert/report_cfg.h"

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static int get_int(const json_t *o, const char *key, int64_t def, int64_t min, int64_t *out, const char *path,
                   tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
    } else {
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a number", path, key);
    }
    if (*out < min)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a number >= %lld", path, key, (long long)min);
    return 0;
}

static int get_src(const json_t *o, const char *key, opcua_src def, opcua_src *out, const char *path,
                   tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    const char *s = json_string_value(v);
    if (!s)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected one of path, identifier, constant", path, key);
    if (strcmp(s, "path") == 0)
        *out = OPCUA_SRC_PATH;
    else if (strcmp(s, "identifier") == 0)
        *out = OPCUA_SRC_IDENTIFIER;
    else if (strcmp(s, "constant") == 0 || strcmp(s, "const") == 0)
        *out = OPCUA_SRC_CONST;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected one of path, identifier, constant", path, key);
    return 0;
}

/* reportStrategy objects through the shared parser; parent names the object holding it. */
static int parse_rs(const json_t *j, tbgw_report_strategy *rs, int *has, const char *parent, tbgw_err *err) {
    tbgw_err e2 = {0};
    int rc = tbgw_rs_parse(j, rs, &e2);
    if (rc) return tbgw_err_set(err, rc, "%s.%s", parent, e2.msg);
    *has = rs->type != TBGW_RS_UNSET;
    return 0;
}

static int parse_dps(const json_t *arr, opcua_dp_cfg **out, size_t *n, const char *path, tbgw_err *err) {
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an array", path);
    size_t cnt = json_array_size(arr);
    if (cnt == 0) return 0;
    *out = calloc(cnt, sizeof **out);
    if (!*out) return TBGW_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_array_get(arr, i);
        opcua_dp_cfg *d = &(*out)[i];
        (*n)++;
        const char *key = json_string_value(json_object_get(e, "key"));
        const json_t *val = json_object_get(e, "value");
        if (!key || !*key)
            return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu].key: expected a non-empty string", path, i);
        char sub[256];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (get_src(e, "type", OPCUA_SRC_PATH, &d->type, sub, err)) return TBGW_EINVAL;
        d->key = strdup(key);
        if (json_is_string(val))
            d->value = strdup(json_string_value(val));
        else if (val && d->type == OPCUA_SRC_CONST)
            d->value = tbgw_json_dumps(val, 0);
        else
            return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu].value: expected a string", path, i);
        const char *tl = json_string_value(json_object_get(e, "timestampLocation"));
        if (!tl || strcasecmp(tl, "gateway") == 0)
            d->tsloc = OPCUA_TS_GATEWAY;
        else if (strcasecmp(tl, "sourceTimestamp") == 0 || strcasecmp(tl, "source") == 0)
            d->tsloc = OPCUA_TS_SOURCE;
        else if (strcasecmp(tl, "serverTimestamp") == 0 || strcasecmp(tl, "server") == 0)
            d->tsloc = OPCUA_TS_SERVER;
        else
            return tbgw_err_set(
                err, TBGW_EINVAL,
                "%s[%zu].timestampLocation: expected one of gateway, sourceTimestamp, serverTimestamp", path,
                i);
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (parse_rs(json_object_get(e, "reportStrategy"), &d->rs, &d->has_rs, sub, err)) return TBGW_EINVAL;
        if (!d->key || !d->value) return TBGW_ENOMEM;
    }
    return 0;
}

static int parse_rpcs(const json_t *arr, opcua_mapping *m, const char *path, tbgw_err *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an array", path);
    size_t cnt = json_array_size(arr);
    if (cnt == 0) return 0;
    m->rpcs = calloc(cnt, sizeof *m->rpcs);
    if (!m->rpcs) return TBGW_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *meth = json_string_value(json_object_get(e, "method"));
        if (!meth || !*meth)
            return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu].method: expected a non-empty string", path, i);
        const json_t *args = json_object_get(e, "arguments");
        if (args && !json_is_array(args) && !json_is_null(args))
            return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu].arguments: expected an array", path, i);
        m->rpcs[i].method = strdup(meth);
        m->rpcs[i].args = json_is_array(args) ? json_incref((json_t *)args) : json_array();
        m->n_rpcs++;
    }
    return 0;
}

static int parse_upds(const json_t *arr, opcua_mapping *m, const char *path, tbgw_err *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an array", path);
    size_t cnt = json_array_size(arr);
    if (cnt == 0) return 0;
    m->upds = calloc(cnt, sizeof *m->upds);
    if (!m->upds) return TBGW_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *val = json_string_value(json_object_get(e, "value"));
        if (!key || !*key)
            return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu].key: expected a non-empty string", path, i);
        if (!val || !*val)
            return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu].value: expected a node id or browse path", path,
                                i);
        char sub[256];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (get_src(e, "type", OPCUA_SRC_PATH, &m->upds[i].type, sub, err)) return TBGW_EINVAL;
        m->upds[i].key = strdup(key);
        m->upds[i].value = strdup(val);
        m->n_upds++;
    }
    return 0;
}

static int parse_mapping(const json_t *e, opcua_mapping *m, size_t idx, tbgw_err *err) {
    char path[128];
    snprintf(path, sizeof path, "mapping[%zu]", idx);
    const char *pattern = json_string_value(json_object_get(e, "deviceNodePattern"));
    if (!pattern || !*pattern)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceNodePattern: expected a browse path or node id",
                            path);
    m->pattern = strdup(pattern);
    if (get_src(e, "deviceNodeSource", OPCUA_SRC_PATH, &m->dev_src, path, err)) return TBGW_EINVAL;
    const json_t *info = json_object_get(e, "deviceInfo");
    char sub[192];
    snprintf(sub, sizeof sub, "%s.deviceInfo", path);
    if (info && !json_is_object(info)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", sub);
    const char *name = json_string_value(json_object_get(info, "deviceNameExpression"));
    if (!name) name = json_string_value(json_object_get(e, "deviceNamePattern")); /* older configs */
    if (!name || !*name)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceNameExpression: expected a non-empty string", sub);
    m->name_expr = strdup(name);
    if (get_src(info, "deviceNameExpressionSource", OPCUA_SRC_PATH, &m->name_src, sub, err))
        return TBGW_EINVAL;
    const char *prof = json_string_value(json_object_get(info, "deviceProfileExpression"));
    if (!prof) prof = json_string_value(json_object_get(e, "deviceTypePattern"));
    m->profile_expr = strdup(prof && *prof ? prof : "default");
    if (get_src(info, "deviceProfileExpressionSource", OPCUA_SRC_CONST, &m->profile_src, sub, err))
        return TBGW_EINVAL;
    snprintf(sub, sizeof sub, "%s.attributes", path);
    if (parse_dps(json_object_get(e, "attributes"), &m->attrs, &m->n_attrs, sub, err)) return TBGW_EINVAL;
    snprintf(sub, sizeof sub, "%s.timeseries", path);
    if (parse_dps(json_object_get(e, "timeseries"), &m->ts, &m->n_ts, sub, err)) return TBGW_EINVAL;
    snprintf(sub, sizeof sub, "%s.rpc_methods", path);
    if (parse_rpcs(json_object_get(e, "rpc_methods"), m, sub, err)) return TBGW_EINVAL;
    snprintf(sub, sizeof sub, "%s.attributes_updates", path);
    if (parse_upds(json_object_get(e, "attributes_updates"), m, sub, err)) return TBGW_EINVAL;
    if (parse_rs(json_object_get(e, "reportStrategy"), &m->rs, &m->has_rs, path, err)) return TBGW_EINVAL;
    if (!m->pattern || !m->name_expr || !m->profile_expr) return TBGW_ENOMEM;
    return 0;
}

static char *resolve_path(const char *dir, const char *p) {
    if (!p || !*p) return NULL;
    if (p[0] == '/' || !dir || !*dir) return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", dir, p);
    return out;
}

static const char *either(const json_t *o, const char *a, const char *b) {
    const char *s = json_string_value(json_object_get(o, a));
    return s ? s : json_string_value(json_object_get(o, b));
}

static int parse_certs(const json_t *id, const char *dir, opcua_cfg *cfg, tbgw_err *err) {
    cfg->cert_identity = 1;
    const char *cert = either(id, "cert", "pathToClientCert");
    const char *key = either(id, "privateKey", "pathToPrivateKey");
    const char *ca = either(id, "caCert", "pathToCACert");
    if (!cert || !*cert)
        return tbgw_err_set(err, TBGW_EINVAL, "server.identity.cert: expected a certificate file");
    if (!key || !*key)
        return tbgw_err_set(err, TBGW_EINVAL, "server.identity.privateKey: expected a private key file");
    cfg->cert_path = resolve_path(dir, cert);
    cfg->key_path = resolve_path(dir, key);
    cfg->ca_path = resolve_path(dir, ca);
    const char *crl = either(id, "crl", "pathToCRL");
    if (crl && *crl) {
        if (!ca || !*ca)
            return tbgw_err_set(err, TBGW_EINVAL,
                                "server.identity.crl: a certificate revocation list needs caCert (the CA it "
                                "belongs to)");
        cfg->crl_path = resolve_path(dir, crl);
    }
    const char *ut = json_string_value(json_object_get(id, "userToken"));
    if (!ut || strcmp(ut, "auto") == 0)
        cfg->user_token = TBGW_UA_TOKEN_AUTO;
    else if (strcmp(ut, "certificate") == 0)
        cfg->user_token = TBGW_UA_TOKEN_CERTIFICATE;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "server.identity.userToken: expected auto or certificate");
    const char *mode = json_string_value(json_object_get(id, "mode"));
    if (!mode || strcmp(mode, "SignAndEncrypt") == 0)
        cfg->mode = 3;
    else if (strcmp(mode, "Sign") == 0)
        cfg->mode = 2;
    else if (strcmp(mode, "None") == 0)
        cfg->mode = 1;
    else
        return tbgw_err_set(err, TBGW_EINVAL,
                            "server.identity.mode: expected one of None, Sign, SignAndEncrypt");
    return 0;
}

static int parse_identity(const json_t *id, const char *dir, opcua_cfg *cfg, tbgw_err *err) {
    if (!id || json_is_null(id)) return 0;
    if (!json_is_object(id)) return tbgw_err_set(err, TBGW_EINVAL, "server.identity: expected an object");
    const char *type = json_string_value(json_object_get(id, "type"));
    const char *user = json_string_value(json_object_get(id, "username"));
    if (type && (strcmp(type, "cert.PEM") == 0 || strcmp(type, "certificates") == 0)) {
        if (parse_certs(id, dir, cfg, err)) return TBGW_EINVAL;
    } else if (type && strcmp(type, "anonymous") != 0 && strcmp(type, "username") != 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "server.identity.type: expected one of anonymous, username, cert.PEM");
    if (user && *user) { /* any username key selects the username identity */
        cfg->username = strdup(user);
        const char *pw = json_string_value(json_object_get(id, "password"));
        cfg->password = strdup(pw ? pw : "");
    } else if (type && strcmp(type, "username") == 0) {
        return tbgw_err_set(err, TBGW_EINVAL, "server.identity.username: expected a non-empty string");
    }
    return 0;
}

int opcua_cfg_parse(const json_t *j, const char *config_dir, opcua_cfg *cfg, tbgw_err *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(j)) return tbgw_err_set(err, TBGW_EINVAL, "expected a JSON object");
    const json_t *srv = json_object_get(j, "server");
    if (!json_is_object(srv)) return tbgw_err_set(err, TBGW_EINVAL, "server: expected an object");
    const char *url = json_string_value(json_object_get(srv, "url"));
    if (!url || !*url)
        return tbgw_err_set(err, TBGW_EINVAL, "server.url: expected a string like opc.tcp://host:4840");
    if (strncmp(url, "opc.tcp://", 10) != 0) {
        size_t n = strlen(url) + 11;
        cfg->url = malloc(n);
        if (cfg->url) snprintf(cfg->url, n, "opc.tcp://%s", url);
    } else {
        cfg->url = strdup(url);
    }
    int64_t v;
    int rc = get_int(srv, "timeoutInMillis", 4000, 1, &v, "server", err);
    cfg->timeout_ms = (int)(v > 600000 ? 600000 : v);
    rc = rc ? rc : get_int(srv, "scanPeriodInMillis", 3600000, 0, &cfg->scan_period_ms, "server", err);
    rc = rc ? rc : get_int(srv, "pollPeriodInMillis", 5000, 1, &cfg->poll_period_ms, "server", err);
    rc = rc ? rc : get_int(srv, "subCheckPeriodInMillis", 100, 0, &cfg->sub_period_ms, "server", err);
    if (cfg->sub_period_ms < 100) cfg->sub_period_ms = 100;
    rc = rc ? rc : get_int(srv, "sessionTimeoutInMillis", 120000, 1000, &v, "server", err);
    cfg->session_timeout_ms = (double)v;
    rc = rc ? rc : get_int(srv, "reconnectRetriesCount", 0, 0, &v, "server", err);
    cfg->reconnect_retries = (int)(v > 1000000 ? 1000000 : v);
    rc = rc ? rc
            : get_int(srv, "reconnectBackoffInitialDelay", 1000, 1, &cfg->reconnect_delay_ms, "server", err);
    if (rc) return rc;
    const json_t *f = json_object_get(srv, "reconnectBackoffFactor");
    cfg->reconnect_factor = json_is_number(f) ? json_number_value(f) : 2.0;
    if (cfg->reconnect_factor < 1.0) cfg->reconnect_factor = 1.0;
    const json_t *es = json_object_get(srv, "enableSubscriptions");
    if (es && !json_is_boolean(es))
        return tbgw_err_set(err, TBGW_EINVAL, "server.enableSubscriptions: expected a boolean");
    cfg->subscriptions = es ? json_is_true(es) : 1;
    cfg->app_uri = dup_or_null(json_string_value(json_object_get(srv, "uri")));
    cfg->security = dup_or_null(json_string_value(json_object_get(srv, "security")));
    if (parse_identity(json_object_get(srv, "identity"), config_dir, cfg, err)) return TBGW_EINVAL;
    static const char *const known[] = {"None",           "Basic128Rsa15",         "Basic256",
                                        "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"};
    int ok = !cfg->security;
    for (size_t i = 0; !ok && i < sizeof known / sizeof known[0]; i++)
        ok = strcmp(cfg->security, known[i]) == 0;
    if (!ok)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "server.security: expected one of None, Basic128Rsa15, Basic256, Basic256Sha256, "
                            "Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss");
    /* mapping is top-level in current configs and inside server in old ones */
    const json_t *maps = json_object_get(j, "mapping");
    if (!maps) maps = json_object_get(srv, "mapping");
    if (!json_is_array(maps)) return tbgw_err_set(err, TBGW_EINVAL, "mapping: expected an array");
    size_t n = json_array_size(maps);
    cfg->maps = calloc(n ? n : 1, sizeof *cfg->maps);
    if (!cfg->maps || !cfg->url) return TBGW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cfg->n_maps++;
        const json_t *e = json_array_get(maps, i);
        if (!json_is_object(e)) return tbgw_err_set(err, TBGW_EINVAL, "mapping[%zu]: expected an object", i);
        if ((rc = parse_mapping(e, &cfg->maps[i], i, err)) != 0) return rc;
    }
    return 0;
}

static void free_dps(opcua_dp_cfg *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(d[i].key);
        free(d[i].value);
    }
    free(d);
}

void opcua_cfg_free(opcua_cfg *cfg) {
    for (size_t i = 0; i < cfg->n_maps; i++) {
        opcua_mapping *m = &cfg->maps[i];
        free(m->pattern);
        free(m->name_expr);
        free(m->profile_expr);
        free_dps(m->attrs, m->n_attrs);
        free_dps(m->ts, m->n_ts);
        for (size_t k = 0; k < m->n_rpcs; k++) {
            free(m->rpcs[k].method);
            json_decref(m->rpcs[k].args);
        }
        free(m->rpcs);
        for (size_t k = 0; k < m->n_upds; k++) {
            free(m->upds[k].key);
            free(m->upds[k].value);
        }
        free(m->upds);
    }
    free(cfg->maps);
    free(cfg->url);
    free(cfg->app_uri);
    free(cfg->security);
    free(cfg->username);
    free(cfg->password);
    free(cfg->cert_path);
    free(cfg->key_path);
    free(cfg->ca_path);
    free(cfg->crl_path);
    memset(cfg, 0, sizeof *cfg);
}
