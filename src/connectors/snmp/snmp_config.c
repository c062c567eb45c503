/* Parsing and validation of the SNMP connector file (connectors spec §4.1). No I/O. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/snmp/snmpc.h"
#include "convert/report_cfg.h"

#define DEFAULT_CONVERTER "SNMPUplinkConverter"

static const char *get_str(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Number (integer, real or numeric string): 1 present, 0 absent, -1 malformed. */
static int get_num(const json_t *o, const char *k, double *out) {
    const json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        char *end;
        *out = strtod(json_string_value(v), &end);
        return *json_string_value(v) && !*end ? 1 : -1;
    }
    return -1;
}

static int parse_oid_list(const json_t *v, const char *path, const char *key, snmp_oid **out, size_t *n,
                          tbgw_err *err) {
    *out = NULL;
    *n = 0;
    size_t cnt = json_is_array(v) ? json_array_size(v) : 1;
    *out = calloc(cnt + 1, sizeof **out);
    if (!*out) return TBGW_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(e) || snmp_oid_parse(json_string_value(e), &(*out)[i]))
            return tbgw_err_set(err, TBGW_EINVAL,
                                "%s.%s%s: expected a numeric OID like 1.3.6.1.2.1.1.1.0 (MIB names "
                                "are not resolved)%s%s",
                                path, key, json_is_array(v) ? "[]" : "", json_is_string(e) ? ", got " : "",
                                json_is_string(e) ? json_string_value(e) : "");
        (*n)++;
    }
    return 0;
}

static int compile_filter(snmp_item *it, const char *path, const char *key, tbgw_err *err) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *rx = pcre2_compile((PCRE2_SPTR)it->filter, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!rx) {
        char m[120];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)m, sizeof m);
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: bad regular expression at offset %zu: %s", path, key,
                            (size_t)off, m);
    }
    it->filter_rx = rx;
    return 0;
}

int snmp_filter_matches(const snmp_item *it, const char *name) {
    if (!it->filter) return 0;
    if (!strcmp(it->filter, name)) return 1;
    if (!it->filter_rx) return 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return 0;
    int rc = pcre2_match(it->filter_rx, (PCRE2_SPTR)name, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static int item_parse(const json_t *o, const char *path, int downlink, snmp_item *it, tbgw_err *err);

int snmp_item_parse(const json_t *o, const char *path, int downlink, snmp_item *it, tbgw_err *err) {
    memset(it, 0, sizeof *it);
    int rc = item_parse(o, path, downlink, it, err);
    if (rc < 0) snmp_item_free(it);
    return rc;
}

static int item_parse(const json_t *o, const char *path, int downlink, snmp_item *it, tbgw_err *err) {
    if (!json_is_object(o)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    const char *m = get_str(o, "method");
    if (!m) return tbgw_err_set(err, TBGW_EINVAL, "%s.method: required string", path);
    if (snmp_method_parse(m, &it->method))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.method: '%s' unknown (expected get, multiget, getnext, walk, "
                            "multiwalk, bulkwalk, bulkget, table, bulktable, set, multiset)",
                            path, m);
    if (!downlink && (it->method == SM_SET || it->method == SM_MULTISET) && !json_object_get(o, "value") &&
        !json_object_get(o, "mappings"))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.method: %s needs a value to poll with", path, m);
    double d;
    int r;
    if (it->method == SM_BULKGET) {
        const json_t *sc = json_object_get(o, "scalarOid"), *rp = json_object_get(o, "repeatingOid");
        if (sc && parse_oid_list(sc, path, "scalarOid", &it->oids, &it->n_oids, err)) return TBGW_EINVAL;
        if (rp && parse_oid_list(rp, path, "repeatingOid", &it->rep, &it->n_rep, err)) return TBGW_EINVAL;
        if (!it->n_oids && !it->n_rep)
            return tbgw_err_set(err, TBGW_EINVAL, "%s.scalarOid: bulkget needs scalarOid or repeatingOid",
                                path);
    } else if (it->method == SM_MULTISET) {
        const json_t *mp = json_object_get(o, "mappings");
        if (mp && !json_is_object(mp))
            return tbgw_err_set(err, TBGW_EINVAL, "%s.mappings: expected an object {oid: value}", path);
        const char *k;
        json_t *v;
        snmp_oid tmp;
        json_object_foreach((json_t *)mp, k, v) {
            if (snmp_oid_parse(k, &tmp))
                return tbgw_err_set(err, TBGW_EINVAL, "%s.mappings: '%s' is not a numeric OID", path, k);
        }
        it->mappings = mp ? json_deep_copy(mp) : NULL;
    } else {
        const json_t *ov = json_object_get(o, "oid");
        if (!ov) return tbgw_err_set(err, TBGW_EINVAL, "%s.oid: required", path);
        if (parse_oid_list(ov, path, "oid", &it->oids, &it->n_oids, err)) return TBGW_EINVAL;
        if (!it->n_oids) return tbgw_err_set(err, TBGW_EINVAL, "%s.oid: empty list", path);
    }
    it->max_list = 1;
    it->bulk = 10;
    if ((r = get_num(o, "maxListSize", &d)) < 0 || (r && (d < 1 || d > 1000)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.maxListSize: expected an integer 1..1000", path);
    if (r) it->max_list = (int)d;
    if ((r = get_num(o, "bulkSize", &d)) < 0 || (r && (d < 1 || d > 1000)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.bulkSize: expected an integer 1..1000", path);
    if (r) it->bulk = (int)d;
    it->timeout_ms = 5000;
    if ((r = get_num(o, "timeout", &d)) < 0 || (r && (d <= 0 || d > 3600)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.timeout: expected seconds 0..3600", path);
    if (r) it->timeout_ms = (int64_t)(d * 1000);
    const char *ty = get_str(o, "type");
    if (ty && !(it->set_type = snmp_type_parse(ty)))
        return tbgw_err_set(
            err, TBGW_EINVAL,
            "%s.type: '%s' unknown (expected i, u, c, C, g, t, s, x, o, a or "
            "Integer, Unsigned32, Counter32, Counter64, Gauge32, TimeTicks, OctetString, Hex, "
            "ObjectIdentifier, IpAddress)",
            path, ty);
    const json_t *val = json_object_get(o, "value");
    it->value = val ? json_incref((json_t *)val) : NULL;
    const char *f = downlink == 3 ? NULL : get_str(o, downlink == 1 ? "attributeFilter" : "requestFilter");
    if ((downlink == 1 || downlink == 2) && !f)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: required string", path,
                            downlink == 1 ? "attributeFilter" : "requestFilter");
    if (f) {
        if (!(it->filter = strdup(f))) return TBGW_ENOMEM;
        if (compile_filter(it, path, downlink == 1 ? "attributeFilter" : "requestFilter", err))
            return TBGW_EINVAL;
    }
    const char *key = get_str(o, "key");
    if (!downlink && !key) return tbgw_err_set(err, TBGW_EINVAL, "%s.key: required string", path);
    if (key && !(it->key = strdup(key))) return TBGW_ENOMEM;
    if (tbgw_rs_parse_in(json_object_get(o, "reportStrategy"), path, &it->rs, err) < 0) return TBGW_EINVAL;
    it->has_rs = it->rs.type != TBGW_RS_UNSET;
    return 0;
}

void snmp_item_free(snmp_item *it) {
    free(it->key);
    free(it->oids);
    free(it->rep);
    json_decref(it->value);
    json_decref(it->mappings);
    free(it->filter);
    if (it->filter_rx) pcre2_code_free(it->filter_rx);
    memset(it, 0, sizeof *it);
}

typedef struct items_ctx {
    snmp_item *items;
    size_t n;
    int downlink, is_attr;
} items_ctx;

static int item_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    (void)w, (void)index;
    items_ctx *x = ud;
    snmp_item *it = &x->items[x->n];
    tbgw_err ierr = {0};
    int rc = snmp_item_parse(e, path, x->downlink, it, &ierr);
    if (rc == TBGW_ENOMEM) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    if (rc < 0) {
        tbgw_cfg_skip_err(w, path, ierr.msg); /* at the field it names (the message starts with the path) */
        return 0;
    }
    it->is_attr = x->is_attr;
    x->n++;
    return 0;
}

/* o[section] appended to *items: a bad entry is reported with its position and skipped. */
static int parse_items(tbgw_cfg *w, const json_t *o, const char *path, const char *section, int downlink,
                       int is_attr, snmp_item **items, size_t *n) {
    snmp_item *ni = realloc(*items, (*n + json_array_size(json_object_get(o, section)) + 1) * sizeof *ni);
    if (!ni) return tbgw_err_set(w->err, TBGW_ENOMEM, "out of memory");
    items_ctx x = {ni, *n, downlink, is_attr};
    int rc = tbgw_cfg_each(w, o, path, section, item_entry, &x);
    *items = x.items;
    *n = x.n;
    return rc < 0 ? rc : 0;
}

static int parse_version(const json_t *o, const char *path, snmp_dev_cfg *d, tbgw_err *err) {
    const json_t *v = json_object_get(o, "snmpVersion");
    if (!v) v = json_object_get(o, "version");
    char t[16] = "1";
    if (json_is_integer(v))
        snprintf(t, sizeof t, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(t, sizeof t, "%s", json_string_value(v));
    else if (v && !json_is_null(v))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.snmpVersion: expected 1, 2c or 3", path);
    const char *s = t[0] == 'v' || t[0] == 'V' ? t + 1 : t;
    if (!strcmp(s, "1"))
        d->version = SNMP_VERSION_1;
    else if (!strcasecmp(s, "2c") || !strcmp(s, "2"))
        d->version = SNMP_VERSION_2c;
    else if (!strcmp(s, "3"))
        d->version = SNMP_VERSION_3;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.snmpVersion: '%s' unknown (expected 1, 2c or 3)", path, t);
    return 0;
}

static int parse_v3(const json_t *o, const char *path, snmp_dev_cfg *d, tbgw_err *err) {
    const char *user = get_str(o, "securityName");
    if (!user) user = get_str(o, "user");
    if (!user) user = get_str(o, "username");
    if (!user) return tbgw_err_set(err, TBGW_EINVAL, "%s.securityName: required for snmpVersion 3", path);
    const char *ap = get_str(o, "authKey"), *pp = get_str(o, "privKey");
    if (!ap) ap = get_str(o, "authPassword");
    if (!pp) pp = get_str(o, "privPassword");
    const char *aproto = get_str(o, "authProtocol"), *pproto = get_str(o, "privProtocol");
    const char *lvl = get_str(o, "securityLevel");
    d->sec_level = pp ? SNMP_SEC_LEVEL_AUTHPRIV : ap ? SNMP_SEC_LEVEL_AUTHNOPRIV : SNMP_SEC_LEVEL_NOAUTH;
    if (lvl) {
        if (!strcasecmp(lvl, "noAuthNoPriv"))
            d->sec_level = SNMP_SEC_LEVEL_NOAUTH;
        else if (!strcasecmp(lvl, "authNoPriv"))
            d->sec_level = SNMP_SEC_LEVEL_AUTHNOPRIV;
        else if (!strcasecmp(lvl, "authPriv"))
            d->sec_level = SNMP_SEC_LEVEL_AUTHPRIV;
        else
            return tbgw_err_set(err, TBGW_EINVAL,
                                "%s.securityLevel: '%s' unknown (expected noAuthNoPriv, authNoPriv, "
                                "authPriv)",
                                path, lvl);
    }
    if (d->sec_level >= SNMP_SEC_LEVEL_AUTHNOPRIV && (!ap || strlen(ap) < 8))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.authKey: a pass phrase of at least 8 characters is required", path);
    if (d->sec_level == SNMP_SEC_LEVEL_AUTHPRIV && (!pp || strlen(pp) < 8))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.privKey: a pass phrase of at least 8 characters is required", path);
    static const struct {
        const char *name;
        const oid *p;
        size_t len;
    } auths[] =
        {
            {"MD5", usmHMACMD5AuthProtocol, USM_AUTH_PROTO_MD5_LEN},
            {"SHA", usmHMACSHA1AuthProtocol, USM_AUTH_PROTO_SHA_LEN},
            {"SHA1", usmHMACSHA1AuthProtocol, USM_AUTH_PROTO_SHA_LEN},
            {"SHA-224", usmHMAC128SHA224AuthProtocol, 10},
            {"SHA224", usmHMAC128SHA224AuthProtocol, 10},
            {"SHA-256", usmHMAC192SHA256AuthProtocol, 10},
            {"SHA256", usmHMAC192SHA256AuthProtocol, 10},
            {"SHA-384", usmHMAC256SHA384AuthProtocol, 10},
            {"SHA384", usmHMAC256SHA384AuthProtocol, 10},
            {"SHA-512", usmHMAC384SHA512AuthProtocol, 10},
            {"SHA512", usmHMAC384SHA512AuthProtocol, 10},
        },
      privs[] = {
          {"DES", usmDESPrivProtocol, USM_PRIV_PROTO_DES_LEN},
          {"AES", usmAESPrivProtocol, USM_PRIV_PROTO_AES_LEN},
          {"AES128", usmAESPrivProtocol, USM_PRIV_PROTO_AES_LEN},
          {"AES-128", usmAESPrivProtocol, USM_PRIV_PROTO_AES_LEN},
          {"AES192", usmAES192PrivProtocol, 9},
          {"AES-192", usmAES192PrivProtocol, 9},
          {"AES256", usmAES256PrivProtocol, 9},
          {"AES-256", usmAES256PrivProtocol, 9},
      };
    d->auth_proto = usmHMACSHA1AuthProtocol;
    d->auth_proto_len = USM_AUTH_PROTO_SHA_LEN;
    if (aproto) {
        d->auth_proto = NULL;
        for (size_t i = 0; i < sizeof auths / sizeof auths[0]; i++)
            if (!strcasecmp(aproto, auths[i].name))
                d->auth_proto = auths[i].p, d->auth_proto_len = auths[i].len;
        if (!d->auth_proto)
            return tbgw_err_set(err, TBGW_EINVAL,
                                "%s.authProtocol: '%s' unknown (expected MD5, SHA, SHA-224, SHA-256, "
                                "SHA-384, SHA-512)",
                                path, aproto);
    }
    d->priv_proto = usmAESPrivProtocol;
    d->priv_proto_len = USM_PRIV_PROTO_AES_LEN;
    if (pproto) {
        d->priv_proto = NULL;
        for (size_t i = 0; i < sizeof privs / sizeof privs[0]; i++)
            if (!strcasecmp(pproto, privs[i].name))
                d->priv_proto = privs[i].p, d->priv_proto_len = privs[i].len;
        if (!d->priv_proto)
            return tbgw_err_set(err, TBGW_EINVAL,
                                "%s.privProtocol: '%s' unknown (expected DES, AES, AES-192, AES-256)", path,
                                pproto);
    }
    d->user = strdup(user);
    d->auth_pass = ap ? strdup(ap) : NULL;
    d->priv_pass = pp ? strdup(pp) : NULL;
    const char *ctx = get_str(o, "contextName");
    d->context = ctx ? strdup(ctx) : NULL;
    return d->user ? 0 : TBGW_ENOMEM;
}

static int parse_converter(const tbgw_host *h, snmp_dev_cfg *d, const json_t *o, const char *path) {
    const json_t *cv = json_object_get(o, "converter");
    if (!cv || (json_is_string(cv) && !strcmp(json_string_value(cv), DEFAULT_CONVERTER))) return 0;
    json_t *conv = json_is_string(cv)
                       ? json_pack("{s:s,s:s}", "type", "custom", "extension", json_string_value(cv))
                   : json_is_object(cv) ? json_deep_copy(cv)
                                        : NULL;
    char cp[300];
    snprintf(cp, sizeof cp, "%s.converter", path);
    if (!conv) {
        TBGW_ERRORF(h->log, "%s: expected a converter name or object; the built-in converter is used", cp);
        return 0;
    }
    json_object_set_new(conv, "deviceName", json_string(d->name));
    json_object_set_new(conv, "deviceType", json_string(d->type));
    tbgw_err e = {0};
    if (tbgw_custom_conv_new(conv, "snmp", h->config_dir ? h->config_dir : ".", cp, h->conv_log, &d->custom,
                             &e) < 0)
        TBGW_ERRORF(h->log, "%s; the built-in converter is used for %s", e.msg, d->name);
    json_decref(conv);
    return 0;
}

static int parse_device(tbgw_cfg *w, snmp_dev_cfg *d, const json_t *o, const char *path) {
    const tbgw_host *h = w->host;
    tbgw_err *err = w->err;
    const char *name = get_str(o, "deviceName"), *ip = get_str(o, "ip");
    if (!name) return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceName: required string", path);
    if (!ip || !*ip) return tbgw_err_set(err, TBGW_EINVAL, "%s.ip: required string", path);
    const char *type = get_str(o, "deviceType"), *comm = get_str(o, "community");
    d->name = strdup(name);
    d->type = strdup(type ? type : "default");
    d->host = strdup(ip);
    if (!d->name || !d->type || !d->host) return TBGW_ENOMEM;
    double v;
    int r;
    d->port = 161;
    if ((r = get_num(o, "port", &v)) < 0 || (r && (v < 1 || v > 65535 || v != (int)v)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.port: expected an integer 1..65535", path);
    if (r) d->port = (int)v;
    d->timeout_ms = 6000;
    if ((r = get_num(o, "timeout", &v)) < 0 || (r && (v <= 0 || v > 3600)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.timeout: expected seconds 0..3600", path);
    if (r) d->timeout_ms = (int64_t)(v * 1000);
    d->poll_ms = 10000;
    if ((r = get_num(o, "pollPeriod", &v)) < 0 || (r && (v < 1 || v > 86400000)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.pollPeriod: expected milliseconds 1..86400000", path);
    if (r) d->poll_ms = (int64_t)v;
    if ((r = get_num(o, "retries", &v)) < 0 || (r && (v < 0 || v > 10)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.retries: expected an integer 0..10", path);
    d->retries = r ? (int)v : 0;
    if (parse_version(o, path, d, err)) return TBGW_EINVAL;
    if (d->version == SNMP_VERSION_3) {
        if (parse_v3(o, path, d, err)) return TBGW_EINVAL;
    } else {
        if (!comm)
            return tbgw_err_set(err, TBGW_EINVAL, "%s.community: required string for SNMP v1/v2c", path);
        if (!(d->community = strdup(comm))) return TBGW_ENOMEM;
    }
    if (tbgw_rs_parse_in(json_object_get(o, "reportStrategy"), path, &d->rs, err) < 0) return TBGW_EINVAL;
    d->has_rs = d->rs.type != TBGW_RS_UNSET;
    int rc;
    if ((rc = parse_items(w, o, path, "attributes", 0, 1, &d->items, &d->n_items))) return rc;
    if ((rc = parse_items(w, o, path, "telemetry", 0, 0, &d->items, &d->n_items))) return rc;
    if ((rc = parse_items(w, o, path, "attributeUpdateRequests", 1, 0, &d->attr_updates, &d->n_attr_updates)))
        return rc;
    if ((rc = parse_items(w, o, path, "serverSideRpcRequests", 2, 0, &d->rpcs, &d->n_rpcs))) return rc;
    return parse_converter(h, d, o, path);
}

static void free_device(snmp_dev_cfg *d) {
    free(d->name);
    free(d->type);
    free(d->host);
    free(d->community);
    free(d->user);
    free(d->auth_pass);
    free(d->priv_pass);
    free(d->context);
    for (size_t i = 0; i < d->n_items; i++) snmp_item_free(&d->items[i]);
    for (size_t i = 0; i < d->n_attr_updates; i++) snmp_item_free(&d->attr_updates[i]);
    for (size_t i = 0; i < d->n_rpcs; i++) snmp_item_free(&d->rpcs[i]);
    free(d->items);
    free(d->attr_updates);
    free(d->rpcs);
    tbgw_custom_conv_free(d->custom);
}

int snmp_config_parse(snmp_cfg *c, const json_t *cfg, const tbgw_host *h, tbgw_err *err) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(cfg)) return tbgw_err_set(err, TBGW_EINVAL, "expected an object");
    const json_t *devs = json_object_get(cfg, "devices");
    if (!json_is_array(devs)) return tbgw_err_set(err, TBGW_EINVAL, "devices: required list");
    c->devices = calloc(json_array_size(devs) + 1, sizeof *c->devices);
    if (!c->devices) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
    int rc = 0;
    for (size_t i = 0; !rc && i < json_array_size(devs); i++) {
        char p[64];
        snprintf(p, sizeof p, "devices[%zu]", i);
        c->n_devices++;
        rc = json_is_object(json_array_get(devs, i))
                 ? parse_device(&w, &c->devices[i], json_array_get(devs, i), p)
                 : tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", p);
    }
    if (rc < 0) {
        if (rc == TBGW_ENOMEM && !err->msg[0]) tbgw_err_set(err, rc, "out of memory");
        snmp_config_free(c);
        return rc;
    }
    return 0;
}

void snmp_config_free(snmp_cfg *c) {
    for (size_t i = 0; i < c->n_devices; i++) free_device(&c->devices[i]);
    free(c->devices);
    memset(c, 0, sizeof *c);
}
