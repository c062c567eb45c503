/* BACnet connector configuration (spec 2.1): application, foreign device, devices and their items;
 * the old format and EDE import are converted into the new format first. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"

static void warn(const tbgw_host *h, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(const tbgw_host *h, const char *path, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (h && h->config_warning)
        h->config_warning(h, path, msg);
    else if (h && h->log)
        TBGW_WARNF(h->log, "%s: %s", path, msg);
}

const char *bnc_mask_normalise(const char *m) {
    if (!m || !*m) return "24";
    int digits = 1, dots = 0;
    for (const char *p = m; *p; p++) {
        if (*p == '.')
            dots++;
        else if (!isdigit((unsigned char)*p))
            digits = 0;
    }
    if (!digits) return "24";
    if (dots == 0) {
        if (strlen(m) > 2) return "24";
        int v = atoi(m);
        return v >= 0 && v <= 32 ? m : "24";
    }
    struct in_addr a;
    if (dots != 3 || inet_pton(AF_INET, m, &a) != 1) return "24";
    return m;
}

/* "host[/mask][:port]" into host (no mask) and port; 0 or -1. */
static int split_address(const char *s, char *host, size_t hcap, char *mask, size_t mcap, char *port,
                         size_t pcap) {
    const char *colon = strrchr(s, ':'), *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : colon ? (size_t)(colon - s) : strlen(s);
    if (hl >= hcap) return -1;
    memcpy(host, s, hl);
    host[hl] = 0;
    mask[0] = port[0] = 0;
    if (slash) {
        size_t ml = colon && colon > slash ? (size_t)(colon - slash - 1) : strlen(slash + 1);
        if (ml >= mcap) return -1;
        memcpy(mask, slash + 1, ml);
        mask[ml] = 0;
    }
    if (colon && (!slash || colon > slash)) snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

static int parse_ipv4(const char *s, uint32_t *ip) {
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) return -1;
    *ip = ntohl(a.s_addr);
    return 0;
}

static uint32_t mask_bits(const char *m) {
    if (strchr(m, '.')) {
        uint32_t ip = 0;
        parse_ipv4(m, &ip);
        return ip;
    }
    int n = atoi(m);
    return n <= 0 ? 0 : n >= 32 ? 0xFFFFFFFFu : ~((1u << (32 - n)) - 1);
}

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* Reads a port given as a number or a numeric string. */
static int jport(const json_t *v, uint16_t def, uint16_t *out) {
    if (!v) {
        *out = def;
        return 0;
    }
    long p = -1;
    if (json_is_integer(v))
        p = (long)json_integer_value(v);
    else if (json_is_string(v) && *json_string_value(v)) {
        char *end;
        p = strtol(json_string_value(v), &end, 10);
        if (*end) p = -1;
    }
    if (p < 1 || p > 65535) return -1;
    *out = (uint16_t)p;
    return 0;
}

static int64_t jint(const json_t *o, const char *k, int64_t def) {
    const json_t *v = json_object_get(o, k);
    if (json_is_integer(v)) return json_integer_value(v);
    if (json_is_real(v)) return (int64_t)json_real_value(v);
    if (json_is_string(v) && isdigit((unsigned char)*json_string_value(v)))
        return atoll(json_string_value(v));
    return def;
}

static int app_parse(const tbgw_host *h, const json_t *root, bnc_app *a, tbgw_err *err) {
    const json_t *app = json_object_get(root, "application");
    if (!json_is_object(app)) return tbgw_err_set(err, TBGW_EINVAL, "application: expected an object");
    char host[64], mask[32], port[16];
    const char *addr = jstr(app, "address");
    if (addr && *addr) {
        if (split_address(addr, host, sizeof host, mask, sizeof mask, port, sizeof port) != 0)
            return tbgw_err_set(err, TBGW_EINVAL, "application.address: expected host[/mask][:port]");
    } else {
        const char *hs = jstr(app, "host");
        if (!hs) return tbgw_err_set(err, TBGW_EINVAL, "application.host: required (an IPv4 address)");
        snprintf(host, sizeof host, "%s", hs);
        snprintf(mask, sizeof mask, "%s", jstr(app, "mask") ? jstr(app, "mask") : "24");
        port[0] = 0;
    }
    if (parse_ipv4(host, &a->bind_ip) != 0)
        return tbgw_err_set(err, TBGW_EINVAL, "application.host: \"%s\" is not an IPv4 address", host);
    const char *m = bnc_mask_normalise(mask);
    if (strcmp(m, mask) != 0 && mask[0])
        warn(h, "application.mask", "\"%s\" is not a valid mask; using 24", mask);
    uint32_t bits = mask_bits(m);
    a->broadcast_ip = a->bind_ip ? (a->bind_ip & bits) | ~bits : 0xFFFFFFFFu;
    json_t *pv = port[0] ? json_string(port) : NULL;
    int pr = jport(pv ? pv : json_object_get(app, "port"), BN_DEFAULT_PORT, &a->port);
    json_decref(pv);
    if (pr != 0) return tbgw_err_set(err, TBGW_EINVAL, "application.port: expected 1..65535");
    int64_t inst = jint(app, "objectIdentifier", -1);
    if (inst < 0 || inst > (int64_t)BN_MAX_INST)
        return tbgw_err_set(err, TBGW_EINVAL, "application.objectIdentifier: required, 0..4194303");
    a->instance = (uint32_t)inst;
    a->object_name = strdup(jstr(app, "objectName") ? jstr(app, "objectName") : "Gateway");
    int64_t apdu = jint(app, "maxApduLengthAccepted", 1476);
    if (apdu != 50 && apdu != 128 && apdu != 206 && apdu != 480 && apdu != 1024 && apdu != 1476) {
        warn(h, "application.maxApduLengthAccepted", "must be one of 50,128,206,480,1024,1476; using 1476");
        apdu = 1476;
    }
    a->max_apdu = (unsigned)apdu;
    const char *seg = jstr(app, "segmentationSupported");
    static const char *const segs[] = {"segmentedBoth", "segmentedTransmit", "segmentedReceive",
                                       "noSegmentation"};
    a->segmentation = 0;
    for (uint32_t i = 0; seg && i < 4; i++)
        if (strcmp(seg, segs[i]) == 0) a->segmentation = i;
    a->vendor = (uint32_t)jint(app, "vendorIdentifier", 15);
    a->discovery_timeout_ms = jint(app, "deviceDiscoveryTimeoutInSec", 5) * 1000;
    a->rescan_ms = jint(app, "devicesRescanObjectsPeriodSeconds", 60) * 1000;
    /* the standard device properties apdu-timeout (ms) and number-of-apdu-retries */
    int64_t to = jint(app, "apduTimeout", 3000), rt = jint(app, "numberOfApduRetries", 2);
    a->apdu_timeout_ms = (int)(to < 100 ? 100 : to > 60000 ? 60000 : to);
    a->apdu_retries = (int)(rt < 0 ? 0 : rt > 10 ? 10 : rt);
    /* the reference reads the discovery period from the top level only; the example puts it in
     * application: both are honoured, application first */
    a->discover_ms =
        jint(app, "devicesDiscoverPeriodSeconds", jint(root, "devicesDiscoverPeriodSeconds", 30)) * 1000;
    if (a->discover_ms < 1000) a->discover_ms = 1000;
    const json_t *fd = json_object_get(root, "foreignDevice");
    const char *fa = jstr(fd, "address");
    if (fa && *fa) {
        char fh[64], fm[32], fp[16];
        uint32_t ip = 0;
        if (split_address(fa, fh, sizeof fh, fm, sizeof fm, fp, sizeof fp) != 0 || parse_ipv4(fh, &ip) != 0) {
            warn(h, "foreignDevice.address", "\"%s\" is not an IPv4 address; foreign-device mode off", fa);
        } else if (ip == 0) {
            /* 0.0.0.0 names no BBMD (the reference's example): stay a normal device */
            TBGW_INFOF(h->log,
                       "foreignDevice.address is 0.0.0.0: no BBMD, not registering as a foreign device");
        } else {
            a->bbmd_ip = ip;
            json_t *p = fp[0] ? json_string(fp) : NULL;
            if (jport(p, BN_DEFAULT_PORT, &a->bbmd_port) != 0) a->bbmd_port = BN_DEFAULT_PORT;
            json_decref(p);
            int64_t ttl = jint(fd, "ttl", 900);
            a->ttl = (uint16_t)(ttl < 1 ? 1 : ttl > 65535 ? 65535 : ttl);
        }
    }
    return 0;
}

/* ---- items ---- */

static int parse_types(const json_t *v, bnc_item *it) {
    it->n_types = 0;
    if (json_is_string(v)) {
        int t = bn_object_type_parse(json_string_value(v));
        if (t < 0) return -1;
        it->types[it->n_types++] = t;
        return 0;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        int t = bn_object_type_parse(json_string_value(e));
        if (t < 0 || it->n_types == 8) return -1;
        it->types[it->n_types++] = t;
    }
    return it->n_types ? 0 : -1;
}

static int add_prop(uint32_t *arr, size_t *n, uint32_t p) {
    for (size_t i = 0; i < *n; i++)
        if (arr[i] == p) return 0;
    if (*n == BNC_MAX_PROPS) return -1;
    arr[(*n)++] = p;
    return 0;
}

int bnc_property_parse(int proprietary, const char *name) {
    int p = bn_property_parse(name);
    return p >= 0 || !proprietary ? p : bn_vendor_property_parse(0, name);
}

const char *bnc_property_name(int proprietary, uint32_t prop) {
    const char *n = bn_property_name(prop);
    return n || !proprietary ? n : bn_vendor_property_name(0, prop);
}

/* *bad names the property that is not known (NULL when the shape is wrong or there are too many). */
static int parse_props(const json_t *v, bnc_item *it, const char **bad) {
    *bad = NULL;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        int p = strcmp(s, "*") == 0 ? 8 : bnc_property_parse(it->proprietary, s);
        if (p < 0) *bad = s;
        return p < 0 ? -1 : add_prop(it->props, &it->n_props, (uint32_t)p);
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        int p = bnc_property_parse(it->proprietary, json_string_value(e));
        if (p < 0) *bad = json_string_value(e);
        if (p < 0 || add_prop(it->props, &it->n_props, (uint32_t)p) != 0) return -1;
    }
    return it->n_props ? 0 : -1;
}

/* The reason a property name is not taken: a vendor's proprietary name without
 * loadProprietaryDevices, or a name nobody knows. */
static void warn_property(const tbgw_host *h, const char *path, const char *name, int proprietary) {
    char p[160];
    snprintf(p, sizeof p, "%s.propertyId", path);
    uint32_t vendor = bn_vendor_property_owner(name);
    if (vendor && !proprietary)
        warn(h, p,
             "'%s' is a proprietary property of vendor %u: set loadProprietaryDevices to true to use it",
             name, vendor);
    else
        warn(h, p, "unknown property '%s' (camelCase or kebab-case name or a number expected)", name);
}

/* objectId: int, numeric string, "*", "a-b", or a list of those; ranges to instances. */
static int parse_ids(const json_t *v, int64_t *out, size_t cap, size_t *n) {
    if (json_is_integer(v)) {
        int64_t x = json_integer_value(v);
        if (x < 0 || x > (int64_t)BN_MAX_INST || *n == cap) return -1;
        out[(*n)++] = x;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "*") == 0) {
            if (*n == cap) return -1;
            out[(*n)++] = BNC_INST_ANY;
            return 0;
        }
        char *end;
        long long a = strtoll(s, &end, 10), b = a;
        if (end == s) return -1;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtoll(q, &end, 10);
            if (end == q) return -1;
        }
        while (*end == ' ') end++;
        if (*end || a < 0 || b < a || b > (long long)BN_MAX_INST || (size_t)(b - a) >= cap - *n) return -1;
        for (long long x = a; x <= b; x++) out[(*n)++] = x;
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) if (parse_ids(e, out, cap, n) != 0) return -1;
        return *n ? 0 : -1;
    }
    return -1;
}

static void item_free(bnc_item *it) {
    free(it->key);
    tbgw_expr_free(it->key_expr);
}

static int push_item(bnc_devcfg *d, size_t *cap, const bnc_item *it) {
    if (d->n_items == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        bnc_item *n = realloc(d->items, nc * sizeof *n);
        if (!n) return -1;
        d->items = n;
        *cap = nc;
    }
    d->items[d->n_items++] = *it;
    return 0;
}

#define MAX_IDS 4096

static int item_parse(const tbgw_host *h, const json_t *e, const char *path, int attr, bnc_devcfg *d,
                      size_t *cap) {
    bnc_item base;
    memset(&base, 0, sizeof base);
    base.attr = attr;
    base.proprietary = d->proprietary;
    const char *key = jstr(e, "key");
    if (!key || !*key) return warn(h, path, "key: required"), -1;
    const json_t *ot = json_object_get(e, "objectType");
    if (parse_types(ot, &base) != 0)
        return warn(h, path, "objectType: unknown object type (camelCase or kebab-case name expected)"), -1;
    const char *bad;
    if (parse_props(json_object_get(e, "propertyId"), &base, &bad) != 0) {
        if (bad) return warn_property(h, path, bad, d->proprietary), -1;
        return warn(h, path, "propertyId: unknown property, or more than %d", BNC_MAX_PROPS), -1;
    }
    tbgw_err err;
    tbgw_expr *ke = NULL;
    if (tbgw_expr_compile(key, &ke, &err) != 0) return warn(h, path, "key: %s", err.msg), -1;
    for (size_t i = 0; i < tbgw_expr_placeholders(ke); i++) {
        int p = bnc_property_parse(d->proprietary, tbgw_expr_placeholder(ke, i));
        if (p < 0) {
            warn(h, path, "key: ${%s} is not a property name", tbgw_expr_placeholder(ke, i));
            tbgw_expr_free(ke);
            return -1;
        }
        add_prop(base.tags, &base.n_tags, (uint32_t)p);
    }
    tbgw_expr_free(ke);
    static int64_t ids[MAX_IDS];
    size_t n = 0;
    if (base.types[0] == 8 && base.n_types == 1) {
        ids[n++] = BNC_INST_SELF;
    } else if (parse_ids(json_object_get(e, "objectId"), ids, MAX_IDS, &n) != 0) {
        return warn(h, path, "objectId: expected an instance, \"*\", \"a-b\" or a list of those"), -1;
    }
    if (base.n_types > 1 && !(n == 1 && ids[0] == BNC_INST_ANY))
        return warn(h, path, "objectType: a list of types needs objectId \"*\""), -1;
    for (size_t i = 0; i < n; i++) {
        bnc_item it = base;
        it.inst = ids[i];
        it.key = strdup(key);
        if (!it.key || tbgw_expr_compile(key, &it.key_expr, &err) != 0 || push_item(d, cap, &it) != 0) {
            item_free(&it);
            return -1;
        }
    }
    return 0;
}

static int section_parse(const tbgw_host *h, const json_t *sec, const char *path, int attr, bnc_devcfg *d,
                         size_t *cap) {
    if (!sec) return 0;
    if (json_is_string(sec) && strcmp(json_string_value(sec), "*") == 0) {
        bnc_item it;
        memset(&it, 0, sizeof it);
        it.attr = attr;
        it.types[0] = -1;
        it.n_types = 1;
        it.inst = BNC_INST_ANY;
        it.proprietary = d->proprietary;
        it.props[it.n_props++] = 85; /* presentValue */
        it.tags[it.n_tags++] = 77;   /* key = objectName */
        it.key = strdup("${objectName}");
        tbgw_err err;
        if (!it.key || tbgw_expr_compile(it.key, &it.key_expr, &err) != 0 || push_item(d, cap, &it) != 0) {
            item_free(&it);
            return -1;
        }
        return 0;
    }
    if (!json_is_array(sec)) {
        warn(h, path, "expected a list of items or \"*\"");
        return 0;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(sec, i, e) {
        char p[128];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        item_parse(h, e, p, attr, d, cap); /* a bad item is reported and skipped */
    }
    return 0;
}

/* ---- deviceId ---- */

static int id_parse(const json_t *v, bnc_idmatch *m) {
    if (json_is_integer(v)) {
        m->ranges = calloc(1, sizeof *m->ranges);
        if (!m->ranges) return -1;
        m->ranges[0][0] = m->ranges[0][1] = json_integer_value(v);
        m->n_ranges = 1;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "*") == 0) return m->any = 1, 0;
        char *end;
        long long a = strtoll(s, &end, 10), b = a;
        if (end != s && *end == '-') b = strtoll(end + 1, &end, 10);
        if (end != s && *end == 0 && b >= a) {
            m->ranges = calloc(1, sizeof *m->ranges);
            if (!m->ranges) return -1;
            m->ranges[0][0] = a;
            m->ranges[0][1] = b;
            m->n_ranges = 1;
            return 0;
        }
        m->regex = strdup(s);
        return m->regex ? 0 : -1;
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            bnc_idmatch one = {0};
            if (id_parse(e, &one) != 0 || one.regex) {
                free(one.ranges);
                free(one.regex);
                return -1;
            }
            if (one.any) m->any = 1;
            for (size_t k = 0; k < one.n_ranges; k++) {
                void *n = realloc(m->ranges, (m->n_ranges + 1) * sizeof *m->ranges);
                if (!n) return free(one.ranges), -1;
                m->ranges = n;
                m->ranges[m->n_ranges][0] = one.ranges[k][0];
                m->ranges[m->n_ranges++][1] = one.ranges[k][1];
            }
            free(one.ranges);
        }
        return 0;
    }
    return -1;
}

/* ---- devices ---- */

static int compile_info(const json_t *info, const char *k, const char *src_k, const char *def,
                        tbgw_expr **out, int *is_const) {
    const char *s = jstr(info, k);
    const char *src = jstr(info, src_k);
    *is_const = src && strcmp(src, "expression") != 0;
    tbgw_err err;
    return tbgw_expr_compile(s ? s : def, out, &err);
}

static int uses_tag(const tbgw_expr *e, const char *tag) {
    for (size_t i = 0; e && i < tbgw_expr_placeholders(e); i++)
        if (strcmp(tbgw_expr_placeholder(e, i), tag) == 0) return 1;
    return 0;
}

static int uses_object_name(const tbgw_expr *e) {
    return uses_tag(e, "objectName");
}

static int uses_router(const tbgw_expr *e) {
    return uses_tag(e, "routerName") || uses_tag(e, "routerId") || uses_tag(e, "routerVendorId") ||
           uses_tag(e, "routerAddress");
}

static void devcfg_free(bnc_devcfg *d) {
    free(d->address);
    free(d->id.ranges);
    free(d->id.regex);
    for (size_t i = 0; i < d->n_alt; i++) free(d->alt[i]);
    free(d->alt);
    tbgw_expr_free(d->name_expr);
    tbgw_expr_free(d->profile_expr);
    for (size_t i = 0; i < d->n_items; i++) item_free(&d->items[i]);
    free(d->items);
}

static int devcfg_address(const json_t *jd, bnc_devcfg *d) {
    char host[128], mask[32], port[16];
    const char *addr = jstr(jd, "address");
    if (addr && *addr) {
        if (split_address(addr, host, sizeof host, mask, sizeof mask, port, sizeof port) != 0) return -1;
    } else {
        const char *hs = jstr(jd, "host");
        if (!hs) return -1;
        snprintf(host, sizeof host, "%s", hs);
        const json_t *p = json_object_get(jd, "port");
        if (json_is_integer(p))
            snprintf(port, sizeof port, "%lld", (long long)json_integer_value(p));
        else
            snprintf(port, sizeof port, "%s", json_is_string(p) ? json_string_value(p) : "");
    }
    /* the device mask is not part of the pattern: a masked address still finds its device */
    char pat[160];
    snprintf(pat, sizeof pat, "%s%s%s", host, port[0] ? ":" : "", port);
    d->address = strdup(pat);
    if (!d->address) return -1;
    json_t *pj = port[0] && strcmp(port, "*") != 0 ? json_string(port) : NULL;
    int port_ok = jport(pj, BN_DEFAULT_PORT, &d->port) == 0 && (!port[0] || pj);
    json_decref(pj);
    d->unicast = port_ok && parse_ipv4(host, &d->ip) == 0;
    d->global = !d->unicast && strchr(pat, ':') != NULL;
    /* "net:station" or "net:*": a device on a remote network, reached through its router */
    char *end;
    unsigned long net = strtoul(host, &end, 10);
    if (!d->unicast && host[0] && !*end && isdigit((unsigned char)host[0]) && net >= 1 && net <= 65534) {
        if (strcmp(port, "*") == 0) {
            d->net = (uint16_t)net;
            d->global = 0;
        } else if (port[0] && isdigit((unsigned char)port[0])) {
            unsigned long long st = strtoull(port, &end, 10);
            if (!*end) {
                d->net = (uint16_t)net;
                d->global = 0;
                uint8_t be[8];
                int k = 0;
                do {
                    be[k++] = (uint8_t)st;
                    st >>= 8;
                } while (st && k < 8);
                for (int i = 0; i < k; i++) d->mac[i] = be[k - 1 - i];
                d->mac_len = (uint8_t)k;
            }
        }
    }
    return 0;
}

static int devcfg_parse(const tbgw_host *h, const json_t *jd, size_t idx, bnc_devcfg *d, tbgw_err *err) {
    char path[64];
    snprintf(path, sizeof path, "devices[%zu]", idx);
    d->index = idx;
    if (!json_is_object(jd)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    if (devcfg_address(jd, d) != 0)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.host: required (host/port or address)", path);
    const json_t *id = json_object_get(jd, "deviceId");
    if (id) {
        if (id_parse(id, &d->id) != 0)
            return tbgw_err_set(err, TBGW_EINVAL,
                                "%s.deviceId: expected \"*\", an instance, \"a-b\" or a list", path);
        d->has_id = 1;
    }
    const json_t *alt = json_object_get(jd, "altResponsesAddresses");
    if (json_array_size(alt)) {
        d->alt = calloc(json_array_size(alt), sizeof *d->alt);
        size_t i;
        const json_t *e;
        json_array_foreach(alt, i, e) if (json_is_string(e) && d->alt) d->alt[d->n_alt++] =
            strdup(json_string_value(e));
    }
    const json_t *info = json_object_get(jd, "deviceInfo");
    if (!jstr(info, "deviceNameExpression"))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceInfo.deviceNameExpression: required", path);
    if (compile_info(info, "deviceNameExpression", "deviceNameExpressionSource", "", &d->name_expr,
                     &d->name_const) ||
        compile_info(info, "deviceProfileExpression", "deviceProfileExpressionSource", "default",
                     &d->profile_expr, &d->profile_const))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceInfo: invalid expression", path);
    d->need_object_name = (!d->name_const && uses_object_name(d->name_expr)) ||
                          (!d->profile_const && uses_object_name(d->profile_expr));
    d->need_router =
        (!d->name_const && uses_router(d->name_expr)) || (!d->profile_const && uses_router(d->profile_expr));
    d->poll_ms = jint(jd, "pollPeriod", 10000);
    if (d->poll_ms < 10) d->poll_ms = 10;
    d->use_cov = json_is_true(json_object_get(jd, "useCov"));
    int64_t life = jint(jd, "covLifetime", 300);
    d->cov_lifetime_s = (uint32_t)(life < 2 ? 2 : life > 86400 ? 86400 : life);
    size_t cap = 0;
    char p[80];
    snprintf(p, sizeof p, "%s.attributes", path);
    section_parse(h, json_object_get(jd, "attributes"), p, 1, d, &cap);
    snprintf(p, sizeof p, "%s.timeseries", path);
    section_parse(h, json_object_get(jd, "timeseries"), p, 0, d, &cap);
    d->attr_updates = json_object_get(jd, "attributeUpdates");
    d->rpcs = json_object_get(jd, "serverSideRpc");
    if (!d->rpcs) d->rpcs = json_object_get(jd, "rpc");
    return 0;
}

/* ---- old format and EDE ---- */

static void split_object_ids(json_t *list) {
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *s = jstr(e, "objectId");
        const char *colon = s ? strchr(s, ':') : NULL;
        if (!colon) continue;
        char type[64];
        snprintf(type, sizeof type, "%.*s", (int)(colon - s), s);
        json_t *id = json_string(colon + 1);
        json_object_set_new(e, "objectType", json_string(type));
        json_object_set_new(e, "objectId", id);
    }
}

json_t *bnc_config_upgrade(const json_t *old) {
    json_t *c = json_deep_copy(old);
    if (!c) return NULL;
    json_t *gen = json_object_get(c, "general");
    json_object_set(c, "application", gen ? gen : json_object());
    json_object_del(c, "general");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(c, "devices"), i, d) {
        const char *name = jstr(d, "deviceName");
        const char *type = jstr(d, "deviceType");
        if (!json_object_get(d, "deviceInfo"))
            json_object_set_new(d, "deviceInfo",
                                json_pack("{s:s,s:s,s:s,s:s}", "deviceNameExpressionSource", "expression",
                                          "deviceProfileExpressionSource", "expression",
                                          "deviceNameExpression", name ? name : "", "deviceProfileExpression",
                                          type ? type : "default"));
        json_object_del(d, "deviceName");
        json_object_del(d, "deviceType");
        split_object_ids(json_object_get(d, "attributes"));
        split_object_ids(json_object_get(d, "timeseries"));
        split_object_ids(json_object_get(d, "attributeUpdates"));
        split_object_ids(json_object_get(d, "rpc"));
        split_object_ids(json_object_get(d, "serverSideRpc"));
    }
    return c;
}

/* Splits one CSV line on sep (no quoting in EDE files) into at most cap trimmed cells. */
static size_t csv_cells(char *line, char sep, char **cells, size_t cap) {
    size_t n = 0;
    char *p = line;
    while (n < cap) {
        char *e = strchr(p, sep);
        if (e) *e = 0;
        while (*p == ' ' || *p == '\t') p++;
        size_t l = strlen(p);
        while (l && (p[l - 1] == ' ' || p[l - 1] == '\r' || p[l - 1] == '\t')) p[--l] = 0;
        cells[n++] = p;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

/* EDE cells that are not valid UTF-8 read as empty */
static const char *jstr0(const json_t *o, const char *k) {
    const char *v = jstr(o, k);
    return v ? v : "";
}

static const char *ede_type(const char *code) {
    static const char *const t[] = {"analogInput", "analogOutput", "analogValue",
                                    "binaryInput", "binaryOutput", "binaryValue"};
    if (strlen(code) != 1 || code[0] < '0' || code[0] > '5') return NULL;
    return t[code[0] - '0'];
}

json_t *bnc_ede_devices(const char *text, char sep, tbgw_err *err) {
    char *copy = strdup(text);
    if (!copy) return NULL;
    enum { C_DEV, C_NAME, C_TYPE, C_INST, C_N };
    int col[C_N] = {-1, -1, -1, -1};
    json_t *rows = json_array();
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *cells[64];
        size_t n = csv_cells(line, sep, cells, 64);
        if (n == 0 || (n == 1 && !cells[0][0])) continue;
        if (strncmp(cells[0], "# keyname", 9) == 0) {
            for (size_t i = 0; i < n; i++) {
                const char *hname = cells[i];
                while (*hname == '#' || *hname == ' ') hname++;
                if (strcmp(hname, "device obj.-instance") == 0) col[C_DEV] = (int)i;
                if (strcmp(hname, "object-name") == 0) col[C_NAME] = (int)i;
                if (strcmp(hname, "object-type") == 0) col[C_TYPE] = (int)i;
                if (strcmp(hname, "object-instance") == 0) col[C_INST] = (int)i;
            }
            continue;
        }
        if (cells[0][0] == '#' || n == 2 || col[C_TYPE] < 0) continue;
        json_t *r = json_object();
        for (int k = 0; k < C_N; k++)
            json_object_set_new(r, (const char *[]){"dev", "name", "type", "inst"}[k],
                                json_string(col[k] >= 0 && (size_t)col[k] < n ? cells[col[k]] : ""));
        json_array_append_new(rows, r);
    }
    free(copy);
    if (col[C_TYPE] < 0 || col[C_INST] < 0 || col[C_DEV] < 0) {
        json_decref(rows);
        tbgw_err_set(err, TBGW_EINVAL,
                     "EDE: no \"# keyname\" header with device obj.-instance, object-type and "
                     "object-instance columns");
        return NULL;
    }
    json_t *devs = json_array();
    size_t i, k;
    json_t *r, *o;
    json_array_foreach(rows, i, r) {
        if (strcmp(jstr0(r, "type"), "8") != 0) continue;
        json_t *ts = json_array();
        json_array_foreach(rows, k, o) {
            const char *t = ede_type(jstr0(o, "type"));
            if (strcmp(jstr0(o, "dev"), jstr0(r, "inst")) != 0 || strcmp(jstr0(o, "type"), "8") == 0 || !t)
                continue;
            const char *nm = jstr0(o, "name");
            json_array_append_new(ts, json_pack("{s:s,s:s,s:s,s:s}", "key", *nm ? nm : "Unknown Object",
                                                "objectType", t, "objectId", jstr0(o, "inst"), "propertyId",
                                                "presentValue"));
        }
        if (json_array_size(ts) == 0) {
            json_decref(ts);
            continue;
        }
        const char *nm = jstr0(r, "name");
        json_array_append_new(
            devs, json_pack("{s:{s:s,s:s,s:s,s:s},s:s,s:s,s:s,s:s,s:i,s:o}", "deviceInfo",
                            "deviceNameExpression", *nm ? nm : "Unknown Device", "deviceProfileExpression",
                            "default", "deviceNameExpressionSource", "constant",
                            "deviceProfileExpressionSource", "constant", "deviceId", jstr0(r, "inst"), "host",
                            "*", "port", "*", "mask", "*", "pollPeriod", 10000, "timeseries", ts));
    }
    json_decref(rows);
    return devs;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static char *b64decode(const char *s) {
    size_t n = strlen(s), o = 0;
    char *out = malloc(n * 3 / 4 + 4);
    if (!out) return NULL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) continue; /* padding and white space */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[o] = 0;
    return out;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
        if (cap - len < 2) {
            char *n = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!n) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = n;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

static json_t *ede_import(const tbgw_host *h, const json_t *root, tbgw_err *err) {
    const char *file = jstr(root, "edeFilePath");
    char *text = NULL;
    char sep = ';';
    if (file) {
        char full[1024];
        if (file[0] != '/' && h && h->config_dir)
            snprintf(full, sizeof full, "%s/%s", h->config_dir, file);
        else
            snprintf(full, sizeof full, "%s", file);
        if (!(text = read_text(full))) {
            tbgw_err_set(err, TBGW_EINVAL, "edeFilePath: cannot read %s", full);
            return NULL;
        }
    } else {
        text = b64decode(jstr(root, "edeConfig") ? jstr(root, "edeConfig") : "");
        sep = ',';
    }
    if (!text) return NULL;
    json_t *devs = bnc_ede_devices(text, sep, err);
    free(text);
    return devs;
}

int bnc_config_parse(const tbgw_host *h, const json_t *cfg, bnc_config *out, tbgw_err *err) {
    memset(out, 0, sizeof *out);
    out->root = json_object_get(cfg, "general") ? bnc_config_upgrade(cfg) : json_deep_copy(cfg);
    if (!out->root) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    if (json_object_get(out->root, "edeFilePath") || json_object_get(out->root, "edeConfig")) {
        json_t *devs = ede_import(h, out->root, err);
        if (!devs) {
            if (!err->msg[0]) tbgw_err_set(err, TBGW_EINVAL, "edeConfig: not an EDE file");
            bnc_config_free(out);
            return TBGW_EINVAL;
        }
        json_object_set_new(out->root, "devices", devs);
    }
    if (app_parse(h, out->root, &out->app, err) != 0) {
        bnc_config_free(out);
        return TBGW_EINVAL;
    }
    /* the reference reads loadProprietaryDevices from the top level only, its example has it (false)
     * in application: true in either place loads them */
    out->proprietary =
        json_is_true(json_object_get(json_object_get(out->root, "application"), "loadProprietaryDevices")) ||
        json_is_true(json_object_get(out->root, "loadProprietaryDevices"));
    const json_t *devs = json_object_get(out->root, "devices");
    if (devs && !json_is_array(devs)) {
        bnc_config_free(out);
        return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a list");
    }
    out->devs = calloc(json_array_size(devs) + 1, sizeof *out->devs);
    if (!out->devs) {
        bnc_config_free(out);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    size_t i;
    const json_t *jd;
    json_array_foreach(devs, i, jd) {
        tbgw_err derr = {0};
        bnc_devcfg *d = &out->devs[out->n_devs];
        d->proprietary = out->proprietary;
        if (devcfg_parse(h, jd, i, d, &derr) != 0) {
            char path[32];
            snprintf(path, sizeof path, "devices[%zu]", i);
            warn(h, path, "%s; device skipped", derr.msg);
            devcfg_free(d);
            memset(d, 0, sizeof *d);
            d->proprietary = out->proprietary;
            continue;
        }
        out->n_devs++;
    }
    return 0;
}

void bnc_config_free(bnc_config *c) {
    for (size_t i = 0; i < c->n_devs; i++) devcfg_free(&c->devs[i]);
    free(c->devs);
    free(c->app.object_name);
    json_decref(c->root);
    memset(c, 0, sizeof *c);
}
