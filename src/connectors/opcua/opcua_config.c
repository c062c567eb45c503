/* OPC-UA connector configuration (spec gateway.md §7.3). Every error names the field as a dotted
 * path. */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/opcua/opcua.h"
#include "convert/report_cfg.h"

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Whole milliseconds and counts; a fraction is cut off, as before (the reference reads them with int()). */
static int get_int(const json_t *o, const char *key, int64_t def, int64_t min, int64_t *out, const char *path,
                   tbgw_err *err) {
    return tbgw_cfg_get_int_ex(o, path, key, def, min, INT64_MAX, TBGW_CFG_NUM_TRUNC, out, err);
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

/* A node reference that is written as a node id ("ns=2;i=5", "i=85", "${ns=3;s=Temp}") must parse as
 * one; browse paths are resolved against the server later. */
static int check_node_ref(const char *v, const char *path, tbgw_err *err) {
    char buf[512];
    const char *in = v;
    size_t n = strlen(v);
    if (n >= 3 && v[0] == '$' && v[1] == '{' && v[n - 1] == '}') {
        in = v + 2;
        n -= 3;
    }
    while (n && isspace((unsigned char)*in)) in++, n--;
    while (n && isspace((unsigned char)in[n - 1])) n--;
    if (n >= sizeof buf) return 0;
    memcpy(buf, in, n);
    buf[n] = 0;
    int looks_like_id = (!strncmp(buf, "ns=", 3) || (n >= 2 && strchr("isgb", buf[0]) && buf[1] == '=')) &&
                        !strpbrk(buf, "${}"); /* one reference, not a template of several */
    if (!looks_like_id) return 0;
    tbgw_ua_nodeid id;
    if (tbgw_ua_nodeid_parse(buf, &id) == 0) {
        tbgw_ua_nodeid_clear(&id);
        return 0;
    }
    return tbgw_err_set(
        err, TBGW_EINVAL,
        "%s: \"%s\" is not a valid node id (expected ns=<n>;i=<number>|s=<text>|g=<guid>|b=<base64>)", path,
        buf);
}

static void free_dp(opcua_dp_cfg *d) {
    free(d->key);
    free(d->value);
    memset(d, 0, sizeof *d);
}

static int parse_dp(const json_t *e, opcua_dp_cfg *d, const char *sub, tbgw_err *err) {
    const char *key = json_string_value(json_object_get(e, "key"));
    const json_t *val = json_object_get(e, "value");
    if (!key || !*key) return tbgw_err_set(err, TBGW_EINVAL, "%s.key: expected a non-empty string", sub);
    if (get_src(e, "type", OPCUA_SRC_PATH, &d->type, sub, err)) return TBGW_EINVAL;
    if (!(d->key = strdup(key))) return TBGW_ENOMEM;
    if (json_is_string(val))
        d->value = strdup(json_string_value(val));
    else if (val && d->type == OPCUA_SRC_CONST)
        d->value = tbgw_json_dumps(val, 0);
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.value: expected a string", sub);
    if (!d->value) return TBGW_ENOMEM;
    char vp[300];
    snprintf(vp, sizeof vp, "%s.value", sub);
    if (d->type != OPCUA_SRC_CONST && check_node_ref(d->value, vp, err)) return TBGW_EINVAL;
    const char *tl = json_string_value(json_object_get(e, "timestampLocation"));
    if (!tl || strcasecmp(tl, "gateway") == 0)
        d->tsloc = OPCUA_TS_GATEWAY;
    else if (strcasecmp(tl, "sourceTimestamp") == 0 || strcasecmp(tl, "source") == 0)
        d->tsloc = OPCUA_TS_SOURCE;
    else if (strcasecmp(tl, "serverTimestamp") == 0 || strcasecmp(tl, "server") == 0)
        d->tsloc = OPCUA_TS_SERVER;
    else
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.timestampLocation: expected one of gateway, sourceTimestamp, serverTimestamp",
                            sub);
    if (parse_rs(json_object_get(e, "reportStrategy"), &d->rs, &d->has_rs, sub, err)) return TBGW_EINVAL;
    return 0;
}

/* The per-key lists (attributes, timeseries, rpc_methods, attributes_updates) go through tbgw_cfg_list:
 * an entry that cannot be used is released, reported with its file:line:column and skipped. */
static int dp_parse(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud;
    return parse_dp(e, slot, path, err);
}

static void dp_free(void *slot) {
    free_dp(slot);
}

static int rpc_parse(tbgw_cfg *w, const json_t *e, const char *sub, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud;
    opcua_rpc_cfg *r = slot;
    const char *meth = json_string_value(json_object_get(e, "method"));
    if (!meth || !*meth) return tbgw_err_set(err, TBGW_EINVAL, "%s.method: expected a non-empty string", sub);
    const json_t *args = json_object_get(e, "arguments");
    if (args && !json_is_array(args) && !json_is_null(args))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.arguments: expected an array", sub);
    r->method = strdup(meth);
    r->args = json_is_array(args) ? json_incref((json_t *)args) : json_array();
    return r->method && r->args ? 0 : TBGW_ENOMEM;
}

static void rpc_free(void *slot) {
    opcua_rpc_cfg *r = slot;
    free(r->method);
    json_decref(r->args);
}

static int upd_parse(tbgw_cfg *w, const json_t *e, const char *sub, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud;
    opcua_upd_cfg *u = slot;
    const char *key = json_string_value(json_object_get(e, "key"));
    const char *val = json_string_value(json_object_get(e, "value"));
    if (!key || !*key) return tbgw_err_set(err, TBGW_EINVAL, "%s.key: expected a non-empty string", sub);
    if (!val || !*val)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.value: expected a node id or browse path", sub);
    if (get_src(e, "type", OPCUA_SRC_PATH, &u->type, sub, err)) return TBGW_EINVAL;
    char vp[300];
    snprintf(vp, sizeof vp, "%s.value", sub);
    if (check_node_ref(val, vp, err)) return TBGW_EINVAL;
    u->key = strdup(key);
    u->value = strdup(val);
    return u->key && u->value ? 0 : TBGW_ENOMEM;
}

static void upd_free(void *slot) {
    opcua_upd_cfg *u = slot;
    free(u->key);
    free(u->value);
}

static void free_mapping(opcua_mapping *m) {
    free(m->pattern);
    free(m->name_expr);
    free(m->profile_expr);
    for (size_t k = 0; k < m->n_attrs; k++) free_dp(&m->attrs[k]);
    free(m->attrs);
    for (size_t k = 0; k < m->n_ts; k++) free_dp(&m->ts[k]);
    free(m->ts);
    for (size_t k = 0; k < m->n_rpcs; k++) rpc_free(&m->rpcs[k]);
    free(m->rpcs);
    for (size_t k = 0; k < m->n_upds; k++) upd_free(&m->upds[k]);
    free(m->upds);
    memset(m, 0, sizeof *m);
}

static void mapping_free(void *slot) {
    free_mapping(slot);
}

/* One device mapping; one that cannot be used is reported and skipped, like one key. */
static int parse_mapping(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud,
                         tbgw_err *err) {
    (void)ud;
    opcua_mapping *m = slot;
    const char *pattern = json_string_value(json_object_get(e, "deviceNodePattern"));
    if (!pattern || !*pattern)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceNodePattern: expected a browse path or node id",
                            path);
    char pp[160];
    snprintf(pp, sizeof pp, "%s.deviceNodePattern", path);
    if (check_node_ref(pattern, pp, err)) return TBGW_EINVAL;
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
    static const struct {
        const char *key;
        size_t items, count, size;
        tbgw_cfg_slot_fn parse;
        void (*drop)(void *slot);
    } lists[] = {
        {"attributes", offsetof(opcua_mapping, attrs), offsetof(opcua_mapping, n_attrs), sizeof(opcua_dp_cfg),
         dp_parse, dp_free},
        {"timeseries", offsetof(opcua_mapping, ts), offsetof(opcua_mapping, n_ts), sizeof(opcua_dp_cfg),
         dp_parse, dp_free},
        {"rpc_methods", offsetof(opcua_mapping, rpcs), offsetof(opcua_mapping, n_rpcs), sizeof(opcua_rpc_cfg),
         rpc_parse, rpc_free},
        {"attributes_updates", offsetof(opcua_mapping, upds), offsetof(opcua_mapping, n_upds),
         sizeof(opcua_upd_cfg), upd_parse, upd_free},
    };
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        /* a per-key list that is not a list refuses the mapping (reported at the list, skipped) */
        tbgw_err lerr = {0};
        tbgw_cfg lw = {w->host, &lerr, 0};
        int rc =
            tbgw_cfg_list(&lw, e, path, lists[l].key, lists[l].size, (void **)((char *)m + lists[l].items),
                          (size_t *)((char *)m + lists[l].count), lists[l].parse, lists[l].drop, NULL);
        w->skipped += lw.skipped;
        if (rc < 0) return tbgw_err_set(err, rc, "%s", lerr.msg);
    }
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

int opcua_cfg_parse(const json_t *j, const char *config_dir, const tbgw_host *h, opcua_cfg *cfg,
                    tbgw_err *err) {
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
    if (tbgw_cfg_get_bool(srv, "server", "enableSubscriptions", 1, &cfg->subscriptions, err))
        return TBGW_EINVAL;
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
    if (!cfg->url) return TBGW_ENOMEM;
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
    int top = json_object_get(j, "mapping") != NULL;
    rc = tbgw_cfg_list(&w, top ? j : srv, top ? NULL : "server", "mapping", sizeof *cfg->maps,
                       (void **)&cfg->maps, &cfg->n_maps, parse_mapping, mapping_free, NULL);
    return rc < 0 ? rc : 0;
}

void opcua_cfg_free(opcua_cfg *cfg) {
    for (size_t i = 0; i < cfg->n_maps; i++) free_mapping(&cfg->maps[i]);
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
