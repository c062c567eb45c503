/* Parsing and validation of the KNX connector file (spec connectors.md §9.1). No I/O. A malformed
 * per-key entry (unknown DPT name, bad group address, bad filter) is reported with its position and
 * skipped; problems with the connection settings fail the configuration. */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/knx/knx_conn.h"
#include "convert/report_cfg.h"

static const char *get_str(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A number (or numeric string) under key; 0 absent, 1 present, -1 malformed. */
static int get_num(const json_t *o, const char *key, double *out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return isfinite(*out) ? 1 : -1;
    }
    if (json_is_string(v)) {
        char *end;
        *out = strtod(json_string_value(v), &end);
        return (*json_string_value(v) && !*end && isfinite(*out)) ? 1 : -1;
    }
    return -1;
}

static int get_bool(const json_t *o, const char *key, int dflt) {
    const json_t *v = json_object_get(o, key);
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    if (json_is_string(v)) return !strcasecmp(json_string_value(v), "true");
    return dflt;
}

/* A skipped entry (or a setting replaced by the reference's default), through the kit: to
 * host->config_warning (file:line:column, counted, listed by --check-config) or the log. */
__attribute__((format(printf, 3, 4))) static void skip_warn(kx *k, const char *dotted, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tbgw_cfg w;
    tbgw_cfg_init(&w, k->host, NULL);
    tbgw_cfg_skip(&w, dotted, "%s", msg);
}

/* The DPT under key of o, or NULL after reporting it (path = the entry's dotted path). */
static const knx_dpt *entry_dpt(kx *k, const json_t *o, const char *key, const char *path) {
    const char *name = get_str(o, key);
    char dotted[300];
    snprintf(dotted, sizeof dotted, "%s.%s", path, key);
    if (!name) {
        skip_warn(k, dotted, "missing datapoint type");
        return NULL;
    }
    const knx_dpt *d = knx_dpt_find(name);
    if (!d) {
        const char *s = knx_dpt_suggest(name);
        skip_warn(k, dotted, "unknown datapoint type \"%s\"%s%s%s", name, s ? " (did you mean \"" : "",
                  s ? s : "", s ? "\"?)" : "");
    }
    return d;
}

static int entry_ga(kx *k, const json_t *o, const char *path, uint16_t *ga) {
    const char *s = get_str(o, "groupAddress");
    char dotted[300];
    snprintf(dotted, sizeof dotted, "%s.groupAddress", path);
    if (!s || knx_ga_parse(s, ga) < 0) {
        skip_warn(k, dotted, "expected a group address like \"1/0/6\", \"1/6\" or \"2054\"");
        return -1;
    }
    return 0;
}

/* ---- client ---- */

static int parse_ip(const json_t *o, const char *key, uint32_t *out, tbgw_err *err) {
    const char *s = get_str(o, key);
    if (!s) return 0;
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return tbgw_err_set(err, TBGW_EINVAL, "client.%s: expected an IPv4 address, got \"%s\"", key, s);
    *out = ntohl(a.s_addr);
    return 1;
}

static int parse_port(const json_t *o, const char *key, uint16_t *out, tbgw_err *err) {
    double d;
    int r = get_num(o, key, &d);
    if (r == 0) return 0;
    if (r < 0 || d < 0 || d > 65535 || d != floor(d))
        return tbgw_err_set(err, TBGW_EINVAL, "client.%s: expected a port number 0..65535", key);
    *out = (uint16_t)d;
    return 0;
}

static int parse_client(kx *k, const json_t *c, tbgw_err *err) {
    knx_client_cfg *cc = &k->ccfg;
    const char *type = get_str(c, "type");
    if (!type) type = "AUTOMATIC";
    if (!strcasecmp(type, "ROUTING"))
        cc->mode = KNX_MODE_ROUTING;
    else if (!strcasecmp(type, "TUNNELING") || !strcasecmp(type, "AUTOMATIC"))
        cc->mode = KNX_MODE_TUNNEL;
    else if (!strcasecmp(type, "TUNNELING_TCP")) {
        cc->mode = KNX_MODE_TUNNEL;
        cc->tcp = 1;
    } else if (!strcasecmp(type, "ROUTING_SECURE") || !strcasecmp(type, "TUNNELING_TCP_SECURE"))
        return tbgw_err_set(err, TBGW_EINVAL, "client.type: KNX IP Secure (%s) is not supported", type);
    else { /* the reference falls back to AUTOMATIC */
        skip_warn(k, "client.type",
                  "unknown connection type \"%s\" (expected AUTOMATIC, ROUTING, TUNNELING or "
                  "TUNNELING_TCP): AUTOMATIC is used",
                  type);
        cc->mode = KNX_MODE_TUNNEL;
    }
    const char *fmt = get_str(c, "addressFormat");
    k->ga_style = KNX_GA_LONG;
    if (fmt && !strcasecmp(fmt, "SHORT"))
        k->ga_style = KNX_GA_SHORT;
    else if (fmt && !strcasecmp(fmt, "FREE"))
        k->ga_style = KNX_GA_FREE;
    else if (fmt && strcasecmp(fmt, "LONG"))
        skip_warn(k, "client.addressFormat",
                  "unknown format \"%s\" (expected LONG, SHORT or FREE): LONG is used", fmt);
    /* the reference reads gatewayIp; its example writes gatewayIP: both are accepted */
    if (parse_ip(c, "gatewayIP", &cc->gw_ip, err) < 0 || parse_ip(c, "gatewayIp", &cc->gw_ip, err) < 0 ||
        parse_ip(c, "localIp", &cc->local_ip, err) < 0 ||
        parse_ip(c, "multicastGroup", &cc->mcast_ip, err) < 0 ||
        parse_port(c, "gatewayPort", &cc->gw_port, err) < 0 ||
        parse_port(c, "localPort", &cc->local_port, err) < 0 ||
        parse_port(c, "multicastPort", &cc->mcast_port, err) < 0)
        return TBGW_EINVAL;
    const char *ia = get_str(c, "individualAddress");
    if (ia && knx_ia_parse(ia, &cc->individual) < 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "client.individualAddress: expected \"area.line.device\" like 1.0.10");
    if (!ia) cc->individual = 0xFF01; /* 15.15.1 */
    double d;
    d = 0;
    if (get_num(c, "rateLimit", &d) < 0 || d < 0)
        return tbgw_err_set(err, TBGW_EINVAL, "client.rateLimit: expected >= 0");
    cc->min_interval_ms = d > 0 ? (int64_t)ceil(1000.0 / (d < 0.001 ? 0.001 : d)) : 0;
    d = 3;
    if (get_num(c, "autoReconnectWait", &d) < 0 || d < 0 || d > 86400)
        return tbgw_err_set(err, TBGW_EINVAL, "client.autoReconnectWait: expected seconds 0..86400");
    cc->reconnect_base_ms = d > 0 ? (int64_t)(d * 1000) : 100;
    cc->reconnect_cap_ms = cc->reconnect_base_ms * 8 > 30000 ? cc->reconnect_base_ms * 8 : 30000;
    if (!get_bool(c, "autoReconnect", 1))
        TBGW_INFOF(k->host->log, "knx: client.autoReconnect is false; a lost tunnel is still re-established");
    if (json_object_get(c, "security"))
        TBGW_WARNF(k->host->log, "knx: client.security is ignored (KNX IP Secure is not supported)");
    const json_t *gs = json_object_get(c, "gatewaysScanner");
    if (json_is_object(gs) && get_bool(gs, "enabled", 0)) {
        cc->search = 1;
        d = 3;
        if (get_num(gs, "scanPeriod", &d) < 0 || d <= 0 || d > 3600)
            return tbgw_err_set(err, TBGW_EINVAL,
                                "client.gatewaysScanner.scanPeriod: expected seconds 0..3600");
        cc->search_ms = (int64_t)(d * 1000);
        cc->search_stop_on_found = get_bool(gs, "stopOnFound", 0);
    }
    cc->describe = 1;
    if (cc->mode == KNX_MODE_ROUTING) {
        cc->search = 0;
        if (cc->mcast_ip && (cc->mcast_ip >> 28) != 0xE)
            return tbgw_err_set(err, TBGW_EINVAL, "client.multicastGroup: routing needs a multicast address");
    }
    return 0;
}

/* ---- devices ---- */

/* Compiles a name/type template: with is_expr, each ${...} must hold a group address. */
static int tmpl_init(kx *k, kx_tmpl *t, const char *text, int is_expr, const knx_dpt *dpt, const char *dotted,
                     tbgw_err *err) {
    t->text = strdup(text);
    if (!t->text) return TBGW_ENOMEM;
    t->is_expr = is_expr;
    t->dpt = dpt;
    if (!is_expr) return 0;
    for (const char *p = strstr(text, "${"); p; p = strstr(p, "${")) {
        const char *e = strchr(p, '}');
        if (!e) break;
        char ga[32];
        size_t n = (size_t)(e - p - 2);
        uint16_t a;
        if (n >= sizeof ga) return tbgw_err_set(err, TBGW_EINVAL, "%s: placeholder too long", dotted);
        memcpy(ga, p + 2, n);
        ga[n] = '\0';
        if (knx_ga_parse(ga, &a) < 0)
            return tbgw_err_set(err, TBGW_EINVAL, "%s: \"${%s}\" is not a group address", dotted, ga);
        if (t->n_ga == KX_MAX_NAME_GA)
            return tbgw_err_set(err, TBGW_EINVAL, "%s: more than %d placeholders", dotted, KX_MAX_NAME_GA);
        t->ga[t->n_ga++] = a;
        p = e + 1;
    }
    return 0;
}

static const knx_dpt *info_dpt(kx *k, const json_t *info, const char *key, const char *path, size_t n_ga) {
    const char *name = get_str(info, key);
    if (!n_ga) return NULL;
    if (!name) name = "string";
    const knx_dpt *d = knx_dpt_find(name);
    if (!d) {
        char dotted[300];
        snprintf(dotted, sizeof dotted, "%s.%s", path, key);
        skip_warn(k, dotted, "unknown datapoint type \"%s\"; the placeholders are not read", name);
    }
    return d;
}

static int parse_device_info(kx *k, kx_device *dv, const json_t *info, const char *path, tbgw_err *err) {
    char dotted[300];
    if (!json_is_object(info)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    const char *ns = get_str(info, "deviceNameExpressionSource");
    const char *name = get_str(info, "deviceNameExpression");
    if (!name) name = "KNX Device";
    int expr = ns && !strcasecmp(ns, "expression");
    snprintf(dotted, sizeof dotted, "%s.deviceNameExpression", path);
    if (tmpl_init(k, &dv->name, name, expr, NULL, dotted, err) < 0) return TBGW_EINVAL;
    dv->name.dpt = info_dpt(k, info, "deviceNameDataType", path, dv->name.n_ga);
    const char *ps = get_str(info, "deviceProfileExpressionSource");
    int texpr = ps && !strcasecmp(ps, "expression");
    const char *type =
        texpr ? get_str(info, "deviceProfileExpression") : get_str(info, "deviceProfileNameExpression");
    if (texpr && !type) type = get_str(info, "deviceTypeExpression");
    if (!type) type = "default";
    snprintf(dotted, sizeof dotted, "%s.%s", path,
             texpr ? "deviceProfileExpression" : "deviceProfileNameExpression");
    if (tmpl_init(k, &dv->type, type, texpr, NULL, dotted, err) < 0) return TBGW_EINVAL;
    dv->type.dpt = info_dpt(k, info, "deviceProfileDataType", path, dv->type.n_ga);
    return 0;
}

static int add_gas(kx_device *dv, uint16_t ga) {
    for (size_t i = 0; i < dv->n_gas; i++)
        if (dv->gas[i] == ga) return 0;
    uint16_t *n = realloc(dv->gas, (dv->n_gas + 1) * sizeof *n);
    if (!n) return TBGW_ENOMEM;
    dv->gas = n;
    dv->gas[dv->n_gas++] = ga;
    return 0;
}

static int parse_points(kx *k, kx_device *dv, const json_t *list, const char *section, const char *path,
                        tbgw_err *err) {
    if (!list || json_is_null(list)) return 0;
    if (!json_is_array(list)) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a list", path, section);
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o) {
        char p[300];
        snprintf(p, sizeof p, "%s.%s[%zu]", path, section, i);
        const char *key = get_str(o, "key");
        if (!json_is_object(o) || !key || !*key) {
            skip_warn(k, p, "expected an object with \"key\", \"groupAddress\" and \"type\"");
            continue;
        }
        kx_point pt = {0};
        if (entry_ga(k, o, p, &pt.ga) < 0 || !(pt.dpt = entry_dpt(k, o, "type", p))) continue;
        if (tbgw_rs_parse_in(json_object_get(o, "reportStrategy"), p, &pt.rs, err) < 0) return TBGW_EINVAL;
        pt.has_rs = pt.rs.type != TBGW_RS_UNSET;
        pt.is_attr = !strcmp(section, "attributes");
        pt.key = strdup(key);
        kx_point *n = realloc(dv->points, (dv->n_points + 1) * sizeof *n);
        if (!pt.key || !n) {
            free(pt.key);
            if (n) dv->points = n;
            return TBGW_ENOMEM;
        }
        dv->points = n;
        dv->points[dv->n_points++] = pt;
    }
    return 0;
}

static int parse_device(kx *k, kx_device *dv, const json_t *o, const char *path, tbgw_err *err) {
    if (!json_is_object(o)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    char p[300];
    snprintf(p, sizeof p, "%s.deviceInfo", path);
    if (parse_device_info(k, dv, json_object_get(o, "deviceInfo"), p, err) < 0) return TBGW_EINVAL;
    double d = 10000;
    if (get_num(o, "pollPeriod", &d) < 0 || d < 0 || d > 1e12)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.pollPeriod: expected milliseconds >= 0", path);
    dv->poll_ms = d >= 10 ? (int64_t)d : 10;
    if (tbgw_rs_parse_in(json_object_get(o, "reportStrategy"), path, &dv->rs, err) < 0) return TBGW_EINVAL;
    dv->has_rs = dv->rs.type != TBGW_RS_UNSET;
    if (json_object_get(o, "uplink_converter"))
        TBGW_WARNF(k->host->log,
                   "knx: %s.uplink_converter: custom converters are not supported here; the "
                   "built-in conversion is used",
                   path);
    if (parse_points(k, dv, json_object_get(o, "attributes"), "attributes", path, err) < 0 ||
        parse_points(k, dv, json_object_get(o, "timeseries"), "timeseries", path, err) < 0)
        return TBGW_EINVAL;
    if (dv->name.dpt)
        for (size_t i = 0; i < dv->name.n_ga; i++)
            if (add_gas(dv, dv->name.ga[i]) < 0) return TBGW_ENOMEM;
    if (dv->type.dpt)
        for (size_t i = 0; i < dv->type.n_ga; i++)
            if (add_gas(dv, dv->type.ga[i]) < 0) return TBGW_ENOMEM;
    for (size_t i = 0; i < dv->n_points; i++)
        if (add_gas(dv, dv->points[i].ga) < 0) return TBGW_ENOMEM;
    dv->answered = calloc(dv->n_gas + 1, 1);
    return dv->answered ? 0 : TBGW_ENOMEM;
}

/* ---- downlink entries ---- */

static int parse_writes(kx *k, const json_t *list, const char *section, kx_write **out, size_t *n,
                        tbgw_err *err) {
    if (!list || json_is_null(list)) return 0;
    if (!json_is_array(list)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list", section);
    *out = calloc(json_array_size(list) + 1, sizeof **out);
    if (!*out) return TBGW_ENOMEM;
    int is_rpc = !strcmp(section, "serverSideRpc");
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o) {
        char p[300], dotted[340];
        snprintf(p, sizeof p, "%s[%zu]", section, i);
        const char *key = get_str(o, is_rpc ? "method" : "key");
        const char *filter = get_str(o, "deviceNameFilter");
        if (!json_is_object(o) || !key) {
            skip_warn(k, p, "expected an object with \"%s\"", is_rpc ? "method" : "key");
            continue;
        }
        kx_write w = {0};
        snprintf(dotted, sizeof dotted, "%s.deviceNameFilter", p);
        tbgw_err rerr = {0};
        if (tbgw_regex_compile(filter ? filter : ".*", &w.filter, dotted, &rerr) < 0) {
            skip_warn(k, dotted, "%s", rerr.msg);
            continue;
        }
        if (entry_ga(k, o, p, &w.ga) < 0 || !(w.dpt = entry_dpt(k, o, "dataType", p))) {
            tbgw_regex_free(w.filter);
            continue;
        }
        const char *rt = get_str(o, "requestType");
        w.is_write = !is_rpc || (rt && !strcasecmp(rt, "write"));
        w.key = strdup(key);
        if (!w.key) {
            tbgw_regex_free(w.filter);
            return TBGW_ENOMEM;
        }
        (*out)[(*n)++] = w;
    }
    return 0;
}

/* ---- address index ---- */

static int cmp_ga(const void *a, const void *b) {
    const kx_ga *x = a, *y = b;
    return (int)x->ga - (int)y->ga;
}

kx_ga *kx_ga_find(kx *k, uint16_t ga) {
    kx_ga key = {.ga = ga};
    return bsearch(&key, k->gas, k->n_gas, sizeof *k->gas, cmp_ga);
}

static int build_index(kx *k) {
    size_t n = 0;
    for (size_t i = 0; i < k->n_devices; i++) n += k->devices[i].n_gas;
    k->gas = calloc(n + 1, sizeof *k->gas);
    if (!k->gas) return TBGW_ENOMEM;
    for (size_t i = 0; i < k->n_devices; i++)
        for (size_t j = 0; j < k->devices[i].n_gas; j++) k->gas[k->n_gas++].ga = k->devices[i].gas[j];
    qsort(k->gas, k->n_gas, sizeof *k->gas, cmp_ga);
    size_t o = 0;
    for (size_t i = 0; i < k->n_gas; i++)
        if (!o || k->gas[o - 1].ga != k->gas[i].ga) k->gas[o++] = k->gas[i];
    k->n_gas = o;
    return 0;
}

static void device_free(kx_device *dv) {
    free(dv->name.text);
    free(dv->type.text);
    for (size_t j = 0; j < dv->n_points; j++) free(dv->points[j].key);
    free(dv->points);
    free(dv->gas);
    free(dv->answered);
}

int kx_config_parse(kx *k, const json_t *cfg, tbgw_err *err) {
    if (!json_is_object(cfg)) return tbgw_err_set(err, TBGW_EINVAL, "expected an object");
    const json_t *c = json_object_get(cfg, "client");
    if (c && !json_is_object(c)) return tbgw_err_set(err, TBGW_EINVAL, "client: expected an object");
    if (parse_client(k, c, err) < 0) return TBGW_EINVAL;
    k->read_timeout_ms = 2000;
    const json_t *devs = json_object_get(cfg, "devices");
    if (devs && !json_is_array(devs)) return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a list");
    k->devices = calloc(json_array_size(devs) + 1, sizeof *k->devices);
    if (!k->devices) return TBGW_ENOMEM;
    size_t i;
    const json_t *o;
    json_array_foreach(devs, i, o) {
        char p[64];
        snprintf(p, sizeof p, "devices[%zu]", i);
        kx_device *dv = &k->devices[k->n_devices++];
        tbgw_err derr = {0};
        int rc = parse_device(k, dv, o, p, &derr);
        if (rc == TBGW_ENOMEM) return tbgw_err_set(err, rc, "out of memory");
        if (rc < 0) { /* one bad device does not take the others down; located at the field named */
            char dotted[300];
            const char *sep = strstr(derr.msg, ": ");
            size_t pl = strlen(p), dl = sep ? (size_t)(sep - derr.msg) : 0;
            if (sep && dl < sizeof dotted && !strncmp(derr.msg, p, pl)) {
                memcpy(dotted, derr.msg, dl);
                dotted[dl] = '\0';
                skip_warn(k, dotted, "%s (the whole device)", sep + 2);
            } else
                skip_warn(k, p, "%s (the whole device)", derr.msg);
            device_free(dv);
            memset(dv, 0, sizeof *dv);
            k->n_devices--;
        }
    }
    int rc = parse_writes(k, json_object_get(cfg, "attributeUpdates"), "attributeUpdates", &k->attr_updates,
                          &k->n_attr_updates, err);
    if (rc == 0)
        rc = parse_writes(k, json_object_get(cfg, "serverSideRpc"), "serverSideRpc", &k->rpcs, &k->n_rpcs,
                          err);
    if (rc == 0) rc = build_index(k);
    return rc;
}

static void free_writes(kx_write *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        tbgw_regex_free(w[i].filter);
        free(w[i].key);
    }
    free(w);
}

void kx_config_free(kx *k) {
    for (size_t i = 0; i < k->n_devices; i++) device_free(&k->devices[i]);
    free(k->devices);
    free_writes(k->attr_updates, k->n_attr_updates);
    free_writes(k->rpcs, k->n_rpcs);
    free(k->gas);
    k->devices = NULL;
    k->attr_updates = k->rpcs = NULL;
    k->gas = NULL;
    k->n_devices = k->n_attr_updates = k->n_rpcs = k->n_gas = 0;
}
