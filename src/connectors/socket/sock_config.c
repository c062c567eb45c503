/* Parsing and validation of the Socket connector file (spec §7.6). No I/O. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/socket/sock.h"
#include "convert/report_cfg.h"

#define DEFAULT_CONVERTER "BytesSocketUplinkConverter"

json_t *sock_config_upgrade(const json_t *cfg, int *was_old) {
    *was_old = json_object_get(cfg, "socket") == NULL;
    if (!*was_old) return json_incref((json_t *)cfg);
    json_t *c = json_deep_copy(cfg);
    if (!c) return NULL;
    json_t *s = json_object();
    static const char *const keys[] = {"type", "address", "port", "bufferSize"};
    json_t *dflt[] = {json_string("TCP"), json_string("127.0.0.1"), json_integer(50000), json_integer(1024)};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(c, keys[i]);
        json_object_set(s, keys[i], v ? v : dflt[i]);
        json_decref(dflt[i]);
        json_object_del(c, keys[i]);
    }
    json_object_set_new(c, "socket", s);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(c, "devices"), i, d) {
        json_t *af = json_object_get(d, "addressFilter");
        if (json_is_string(af) && *json_string_value(af)) {
            json_object_set(d, "address", af);
            json_object_del(d, "addressFilter");
        }
        size_t k;
        json_t *ar;
        json_array_foreach(json_object_get(d, "attributeRequests"), k, ar) {
            if (!json_is_object(ar)) continue;
            json_object_set_new(ar, "requestExpressionSource", json_string("expression"));
            json_object_set_new(ar, "attributeNameExpressionSource", json_string("expression"));
        }
    }
    return c;
}

static const char *get_str(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Integer (or whole real / numeric string): 1 present, 0 absent, -1 malformed. */
static int get_int(const json_t *o, const char *k, int64_t *out) {
    const json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) {
        *out = (int64_t)json_real_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*json_string_value(v) && !*end) {
            *out = x;
            return 1;
        }
    }
    return -1;
}

static int parse_enc(const json_t *o, const char *key, const sock_enc *dflt, sock_enc *out, const char *path,
                     tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (dflt)
            *out = *dflt;
        else
            sock_enc_parse("utf-8", out);
        return 0;
    }
    if (!json_is_string(v) || sock_enc_parse(json_string_value(v), out) < 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.%s: unknown encoding %s%s%s (expected a Python codec name such as "
                            "utf-8, hex, ascii, latin-1, utf-16, utf-16-be)",
                            path, key, json_is_string(v) ? "'" : "",
                            json_is_string(v) ? json_string_value(v) : "?", json_is_string(v) ? "'" : "");
    return 0;
}

/* telemetry[] / attributes[]: a bad entry is reported and skipped. */
static int parse_keys(const tbgw_host *h, const json_t *arr, const char *path, sock_key **out, size_t *n,
                      tbgw_err *err) {
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list", path);
    *out = calloc(json_array_size(arr) + 1, sizeof **out);
    if (!*out) return TBGW_ENOMEM;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        char p[256];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        const char *key = get_str(e, "key");
        int64_t from = 0, to = -1;
        int rf = json_is_object(e) ? get_int(e, "byteFrom", &from) : -1;
        int rt = json_is_object(e) ? get_int(e, "byteTo", &to) : -1;
        if (!key || rf < 0 || rt < 0) {
            TBGW_ERRORF(h->log, "%s: %s; entry skipped", p,
                        !json_is_object(e) ? "expected an object"
                        : !key             ? "key: required string"
                                           : "byteFrom/byteTo: expected integers");
            continue;
        }
        sock_key *k = &(*out)[*n];
        tbgw_err e2 = {0};
        if (tbgw_rs_parse_in(json_object_get(e, "reportStrategy"), p, &k->rs, &e2) < 0) {
            TBGW_ERRORF(h->log, "%s; entry skipped", e2.msg);
            continue;
        }
        k->has_rs = k->rs.type != TBGW_RS_UNSET;
        k->slice.has_from = rf == 1;
        k->slice.from = from;
        /* byteTo -1 means "to the end" (the reference replaces it by len(data)) */
        k->slice.has_to = rt == 1 && to != -1;
        k->slice.to = to;
        k->key = strdup(key);
        if (!k->key) return TBGW_ENOMEM;
        (*n)++;
    }
    return 0;
}

static int parse_attr_req(const tbgw_host *h, const json_t *e, const char *p, sock_attr_req *r) {
    const char *type = get_str(e, "type");
    const char *rx = get_str(e, "requestExpression");
    const char *nx = get_str(e, "attributeNameExpression");
    char msg[200] = "";
    if (!type || (strcasecmp(type, "shared") && strcasecmp(type, "client"))) {
        TBGW_ERRORF(h->log, "%s.type: expected shared or client; entry skipped", p);
        return -1;
    }
    r->client = !strcasecmp(type, "client");
    if (!rx || !*rx) {
        TBGW_ERRORF(h->log, "%s.requestExpression: required non-empty string; entry skipped", p);
        return -1;
    }
    if (!nx) {
        TBGW_ERRORF(h->log, "%s.attributeNameExpression: required string; entry skipped", p);
        return -1;
    }
    const char *open = strstr(rx, "${");
    if (open && strchr(open, '}')) {
        const char *eq = strstr(rx, "==");
        sock_slice *sl = NULL;
        size_t n = 0;
        if (!eq || sock_slices_find(rx, &sl, &n, msg, sizeof msg) <= 0) {
            TBGW_ERRORF(
                h->log,
                "%s.requestExpression: '%s' is not valid (expected ${[from:to]==text}%s%s); entry skipped", p,
                rx, *msg ? ": " : "", msg);
            free(sl);
            return -1;
        }
        r->cond = sl[0];
        free(sl);
        /* the text after the last "==" without the closing brace */
        const char *lit = eq + 2;
        for (const char *q = lit; (q = strstr(q, "==")); q += 2) lit = q + 2;
        size_t ll = strlen(lit);
        if (ll && lit[ll - 1] == '}') ll--;
        r->equal = strndup(lit, ll);
    } else {
        r->whole = 1;
        r->equal = strdup(rx);
    }
    int rc = sock_slices_find(nx, &r->names, &r->n_names, msg, sizeof msg);
    if (rc < 0) {
        TBGW_ERRORF(h->log, "%s.attributeNameExpression: %s; entry skipped", p, msg);
        return -1;
    }
    if (rc == 0) {
        if (!*nx) {
            TBGW_ERRORF(h->log, "%s.attributeNameExpression: empty; entry skipped", p);
            return -1;
        }
        r->literal_name = strdup(nx);
    }
    return r->equal ? 0 : TBGW_ENOMEM;
}

static void free_attr_req(sock_attr_req *r) {
    free(r->equal);
    free(r->names);
    free(r->literal_name);
}

static int parse_downlink(const tbgw_host *h, sock_device *d, const json_t *o, const char *path,
                          tbgw_err *err) {
    size_t i;
    json_t *e;
    const json_t *a = json_object_get(o, "attributeRequests");
    d->attr_reqs = calloc(json_array_size(a) + 1, sizeof *d->attr_reqs);
    d->attr_updates =
        calloc(json_array_size(json_object_get(o, "attributeUpdates")) + 1, sizeof *d->attr_updates);
    d->rpcs = calloc(json_array_size(json_object_get(o, "serverSideRpc")) + 1, sizeof *d->rpcs);
    if (!d->attr_reqs || !d->attr_updates || !d->rpcs) return TBGW_ENOMEM;
    json_array_foreach(a, i, e) {
        char p[256];
        snprintf(p, sizeof p, "%s.attributeRequests[%zu]", path, i);
        sock_attr_req *r = &d->attr_reqs[d->n_attr_reqs];
        if (parse_attr_req(h, e, p, r) == 0)
            d->n_attr_reqs++;
        else
            free_attr_req(r), memset(r, 0, sizeof *r);
    }
    json_array_foreach(json_object_get(o, "attributeUpdates"), i, e) {
        char p[256];
        snprintf(p, sizeof p, "%s.attributeUpdates[%zu]", path, i);
        const char *attr = get_str(e, "attributeOnThingsBoard");
        if (!attr) {
            TBGW_ERRORF(h->log, "%s.attributeOnThingsBoard: required string; entry skipped", p);
            continue;
        }
        sock_attr_update *u = &d->attr_updates[d->n_attr_updates];
        if (parse_enc(e, "encoding", &d->enc, &u->enc, p, err) < 0) return TBGW_EINVAL;
        if (!(u->attr = strdup(attr))) return TBGW_ENOMEM;
        d->n_attr_updates++;
    }
    json_array_foreach(json_object_get(o, "serverSideRpc"), i, e) {
        char p[256];
        snprintf(p, sizeof p, "%s.serverSideRpc[%zu]", path, i);
        const char *m = get_str(e, "methodRPC");
        const char *proc = get_str(e, "methodProcessing");
        if (!m) {
            TBGW_ERRORF(h->log, "%s.methodRPC: required string; entry skipped", p);
            continue;
        }
        if (proc && strcasecmp(proc, "write")) {
            TBGW_ERRORF(h->log, "%s.methodProcessing: '%s' unknown (expected write); entry skipped", p, proc);
            continue;
        }
        sock_rpc_cfg *r = &d->rpcs[d->n_rpcs];
        if (parse_enc(e, "encoding", &d->enc, &r->enc, p, err) < 0) return TBGW_EINVAL;
        r->write = 1;
        const json_t *wr = json_object_get(e, "withResponse");
        r->with_response =
            json_is_true(wr) || (json_is_string(wr) && !strcasecmp(json_string_value(wr), "true"));
        if (!(r->method = strdup(m))) return TBGW_ENOMEM;
        d->n_rpcs++;
    }
    return 0;
}

static int compile_filter(sock_device *d, const char *path, tbgw_err *err) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    for (const char *q = d->filter; *q; q++) {
        if (*q == '*')
            tbgw_buf_puts(&b, ".*");
        else
            tbgw_buf_putc(&b, *q);
    }
    int ec;
    PCRE2_SIZE off;
    const char *pat = tbgw_buf_cstr(&b);
    pcre2_code *rx = pat ? pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                         PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &off, NULL)
                         : NULL;
    tbgw_buf_free(&b);
    if (!rx) {
        char m[120];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)m, sizeof m);
        return tbgw_err_set(err, TBGW_EINVAL, "%s.address: '%s' is not a valid address pattern: %s", path,
                            d->filter, m);
    }
    d->rx = rx;
    d->md = pcre2_match_data_create_from_pattern(rx, NULL);
    return d->md ? 0 : tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
}

static int parse_converter(const tbgw_host *h, sock_device *d, const json_t *o, const char *path,
                           tbgw_err *err) {
    const json_t *cv = json_object_get(o, "converter");
    if (!cv || json_is_null(cv)) return 0;
    json_t *conv;
    if (json_is_string(cv)) {
        if (!strcmp(json_string_value(cv), DEFAULT_CONVERTER)) return 0;
        conv = json_pack("{s:s,s:s}", "type", "custom", "extension", json_string_value(cv));
    } else if (json_is_object(cv)) {
        conv = json_deep_copy(cv);
    } else {
        return tbgw_err_set(err, TBGW_EINVAL, "%s.converter: expected a converter name or object", path);
    }
    if (!conv) return TBGW_ENOMEM;
    json_object_set_new(conv, "deviceName", json_string(d->name));
    json_object_set_new(conv, "deviceType", json_string(d->type));
    char cp[300];
    snprintf(cp, sizeof cp, "%s.converter", path);
    int rc = tbgw_custom_conv_new(conv, "socket", h->config_dir ? h->config_dir : ".", cp, h->conv_log,
                                  &d->custom, err);
    json_decref(conv);
    return rc < 0 ? rc : 0;
}

static int parse_device(const tbgw_host *h, sock_device *d, const json_t *o, const char *path,
                        tbgw_err *err) {
    const char *name = get_str(o, "deviceName");
    const char *filter = get_str(o, "addressFilter");
    if (!filter || !*filter) filter = get_str(o, "address");
    if (!name) return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceName: required string", path);
    if (!filter || !*filter)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.address: required (address or addressFilter, \"ip:port\" with * "
                            "wildcards)",
                            path);
    const char *type = get_str(o, "deviceType");
    d->name = strdup(name);
    d->type = strdup(type ? type : "default");
    d->filter = strdup(filter);
    if (!d->name || !d->type || !d->filter) return TBGW_ENOMEM;
    if (compile_filter(d, path, err) < 0) return TBGW_EINVAL;
    /* a literal "ip:port" is where downlink goes until the device has sent something */
    if (!strchr(filter, '*') && strrchr(filter, ':'))
        snprintf(d->last_peer, sizeof d->last_peer, "%s", filter);
    if (parse_enc(o, "encoding", NULL, &d->enc, path, err) < 0) return TBGW_EINVAL;
    if (tbgw_rs_parse_in(json_object_get(o, "reportStrategy"), path, &d->rs, err) < 0) return TBGW_EINVAL;
    d->has_rs = d->rs.type != TBGW_RS_UNSET;
    char p[256];
    snprintf(p, sizeof p, "%s.telemetry", path);
    int rc = parse_keys(h, json_object_get(o, "telemetry"), p, &d->telemetry, &d->n_telemetry, err);
    if (rc < 0) return rc;
    snprintf(p, sizeof p, "%s.attributes", path);
    rc = parse_keys(h, json_object_get(o, "attributes"), p, &d->attributes, &d->n_attributes, err);
    if (rc < 0) return rc;
    if ((rc = parse_converter(h, d, o, path, err)) < 0) return rc;
    return parse_downlink(h, d, o, path, err);
}

static void free_device(sock_device *d) {
    free(d->name);
    free(d->type);
    free(d->filter);
    if (d->md) pcre2_match_data_free(d->md);
    if (d->rx) pcre2_code_free(d->rx);
    for (size_t i = 0; i < d->n_telemetry; i++) free(d->telemetry[i].key);
    for (size_t i = 0; i < d->n_attributes; i++) free(d->attributes[i].key);
    free(d->telemetry);
    free(d->attributes);
    tbgw_custom_conv_free(d->custom);
    for (size_t i = 0; i < d->n_attr_reqs; i++) free_attr_req(&d->attr_reqs[i]);
    free(d->attr_reqs);
    for (size_t i = 0; i < d->n_attr_updates; i++) free(d->attr_updates[i].attr);
    free(d->attr_updates);
    for (size_t i = 0; i < d->n_rpcs; i++) free(d->rpcs[i].method);
    free(d->rpcs);
}

static int parse_socket(sock_cfg *c, const json_t *s, tbgw_err *err) {
    if (s && !json_is_object(s)) return tbgw_err_set(err, TBGW_EINVAL, "socket: expected an object");
    const char *type = get_str(s, "type");
    if (type && strcasecmp(type, "TCP") && strcasecmp(type, "UDP"))
        return tbgw_err_set(err, TBGW_EINVAL, "socket.type: '%s' unknown (expected TCP or UDP)", type);
    c->udp = type && !strcasecmp(type, "UDP");
    const char *addr = get_str(s, "address");
    c->bind_addr = strdup(addr && *addr ? addr : "127.0.0.1");
    if (!c->bind_addr) return TBGW_ENOMEM;
    int64_t port = 50000, bs = 1024, maxc = 10000, reads = 16, cto = 5000, rate = 10000;
    if (get_int(s, "port", &port) < 0 || port < 0 || port > 65535)
        return tbgw_err_set(err, TBGW_EINVAL, "socket.port: expected an integer 0..65535");
    int r = get_int(s, "bufferSize", &bs);
    if (r == 0) r = get_int(s, "buffer_size", &bs);
    if (r < 0 || bs < 1 || bs > 16 * 1024 * 1024)
        return tbgw_err_set(err, TBGW_EINVAL, "socket.bufferSize: expected an integer 1..16777216");
    if (get_int(s, "maxConnections", &maxc) < 0 || maxc < 1 || maxc > 1000000)
        return tbgw_err_set(err, TBGW_EINVAL, "socket.maxConnections: expected an integer 1..1000000");
    if (get_int(s, "maxReadsPerTurn", &reads) < 0 || reads < 1 || reads > 10000)
        return tbgw_err_set(err, TBGW_EINVAL, "socket.maxReadsPerTurn: expected an integer 1..10000");
    if (get_int(s, "connectTimeoutMs", &cto) < 0 || cto < 1 || cto > 600000)
        return tbgw_err_set(err, TBGW_EINVAL, "socket.connectTimeoutMs: expected an integer 1..600000");
    if (get_int(s, "maxMessagesPerSecond", &rate) < 0 || rate < 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "socket.maxMessagesPerSecond: expected an integer >= 0 (0 = unlimited)");
    c->max_rate = rate;
    c->port = (int)port;
    c->buffer_size = (size_t)bs;
    c->max_connections = (size_t)maxc;
    c->max_reads_per_turn = (size_t)reads;
    c->connect_timeout_ms = cto;
    return 0;
}

int sock_config_parse(sock_cfg *c, const json_t *in, const tbgw_host *h, tbgw_err *err) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(in)) return tbgw_err_set(err, TBGW_EINVAL, "expected an object");
    json_t *cfg = sock_config_upgrade(in, &c->old_format);
    if (!cfg) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    int rc = parse_socket(c, json_object_get(cfg, "socket"), err);
    const json_t *devs = json_object_get(cfg, "devices");
    if (!rc && devs && !json_is_array(devs)) rc = tbgw_err_set(err, TBGW_EINVAL, "devices: expected a list");
    if (!rc) {
        c->devices = calloc(json_array_size(devs) + 1, sizeof *c->devices);
        if (!c->devices) rc = tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !rc && i < json_array_size(devs); i++) {
        char p[64];
        snprintf(p, sizeof p, "devices[%zu]", i);
        const json_t *o = json_array_get(devs, i);
        if (!json_is_object(o)) {
            rc = tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", p);
            break;
        }
        c->n_devices++;
        rc = parse_device(h, &c->devices[i], o, p, err);
    }
    json_decref(cfg);
    if (rc < 0) {
        sock_config_free(c);
        return rc;
    }
    return 0;
}

void sock_config_free(sock_cfg *c) {
    for (size_t i = 0; i < c->n_devices; i++) free_device(&c->devices[i]);
    free(c->devices);
    free(c->bind_addr);
    memset(c, 0, sizeof *c);
}

int sock_device_matches(const sock_device *d, const char *peer, size_t len) {
    if (strlen(d->filter) == len && !memcmp(d->filter, peer, len)) return 1;
    return d->md && pcre2_match(d->rx, (PCRE2_SPTR)peer, len, 0, 0, d->md, NULL) >= 0;
}
