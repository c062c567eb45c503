/* Parsing and validation of the Socket connector file (spec §7.6). No I/O. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

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
                            "%s%s%s: unknown encoding %s%s%s (expected a Python codec name such as "
                            "utf-8, hex, ascii, latin-1, utf-16, utf-16-be)",
                            path ? path : "", path ? "." : "", key, json_is_string(v) ? "'" : "",
                            json_is_string(v) ? json_string_value(v) : "?", json_is_string(v) ? "'" : "");
    return 0;
}

static int key_bytes(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    (void)w, (void)path, (void)index, (void)ud;
    int64_t x;
    if (get_int(e, "byteFrom", &x) < 0 || get_int(e, "byteTo", &x) < 0)
        return tbgw_err_set(err, TBGW_EINVAL, "byteFrom/byteTo: expected integers");
    return 0;
}

/* telemetry[] / attributes[] of the device at path: a bad entry is reported and skipped. */
static int parse_keys(tbgw_cfg *w, const json_t *dev, const char *path, const char *section, sock_key **out,
                      size_t *n) {
    static const char *const names[] = {"key", NULL};
    *out = NULL;
    *n = 0;
    tbgw_cfg_keys keys;
    int rc = tbgw_cfg_keys_parse(w, dev, path, section, names, key_bytes, NULL, &keys);
    if (rc < 0) return rc;
    *out = calloc(keys.n + 1, sizeof **out);
    if (!*out) rc = TBGW_ENOMEM;
    for (size_t i = 0; rc >= 0 && i < keys.n; i++) {
        const tbgw_cfg_key *ck = &keys.v[i];
        sock_key *k = &(*out)[(*n)++];
        int64_t from = 0, to = -1;
        int rf = get_int(ck->cfg, "byteFrom", &from), rt = get_int(ck->cfg, "byteTo", &to);
        k->rs = ck->rs;
        k->has_rs = ck->has_rs;
        k->slice.has_from = rf == 1;
        k->slice.from = from;
        /* byteTo -1 means "to the end" (the reference replaces it by len(data)) */
        k->slice.has_to = rt == 1 && to != -1;
        k->slice.to = to;
        k->key = ck->key;
        keys.v[i].key = NULL; /* moved */
    }
    tbgw_cfg_keys_free(&keys);
    return rc < 0 ? rc : 0;
}

static void free_attr_req(sock_attr_req *r) {
    free(r->equal);
    free(r->names);
    free(r->literal_name);
}

/* attributeRequests[] entry (index: its slot in d->attr_reqs). */
static int parse_attr_req(tbgw_cfg *w, const json_t *e, const char *p, size_t index, void *ud,
                          tbgw_err *err) {
    (void)w, (void)p;
    sock_device *d = ud;
    sock_attr_req *r = &d->attr_reqs[index];
    memset(r, 0, sizeof *r);
    const char *type = get_str(e, "type");
    const char *rx = get_str(e, "requestExpression");
    const char *nx = get_str(e, "attributeNameExpression");
    char msg[200] = "";
    if (!type || (strcasecmp(type, "shared") && strcasecmp(type, "client"))) {
        return tbgw_err_set(err, TBGW_EINVAL, "type: expected shared or client");
    }
    r->client = !strcasecmp(type, "client");
    if (!rx || !*rx) {
        return tbgw_err_set(err, TBGW_EINVAL, "requestExpression: required non-empty string");
    }
    if (!nx) {
        return tbgw_err_set(err, TBGW_EINVAL, "attributeNameExpression: required string");
    }
    const char *open = strstr(rx, "${");
    if (open && strchr(open, '}')) {
        const char *eq = strstr(rx, "==");
        sock_slice *sl = NULL;
        size_t n = 0;
        if (!eq || sock_slices_find(rx, &sl, &n, msg, sizeof msg) <= 0) {
            free(sl);
            return tbgw_err_set(err, TBGW_EINVAL,
                                "requestExpression: '%s' is not valid (expected ${[from:to]==text}%s%s)", rx,
                                *msg ? ": " : "", msg);
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
        free_attr_req(r);
        return tbgw_err_set(err, TBGW_EINVAL, "attributeNameExpression: %s", msg);
    }
    if (rc == 0) {
        if (!*nx) {
            free_attr_req(r);
            return tbgw_err_set(err, TBGW_EINVAL, "attributeNameExpression: empty");
        }
        r->literal_name = strdup(nx);
    }
    if (r->equal) return 0;
    free_attr_req(r);
    return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
}

static int parse_attr_update(tbgw_cfg *w, const json_t *e, const char *p, size_t index, void *ud,
                             tbgw_err *err) {
    (void)w, (void)p;
    sock_device *d = ud;
    const char *attr = get_str(e, "attributeOnThingsBoard");
    if (!attr) return tbgw_err_set(err, TBGW_EINVAL, "attributeOnThingsBoard: required string");
    sock_attr_update *u = &d->attr_updates[index];
    if (parse_enc(e, "encoding", &d->enc, &u->enc, NULL, err) < 0) return TBGW_EINVAL;
    if (!(u->attr = strdup(attr))) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    d->n_attr_updates = index + 1;
    return 0;
}

static int parse_rpc(tbgw_cfg *w, const json_t *e, const char *p, size_t index, void *ud, tbgw_err *err) {
    (void)w, (void)p;
    sock_device *d = ud;
    const char *m = get_str(e, "methodRPC");
    const char *proc = get_str(e, "methodProcessing");
    if (!m) return tbgw_err_set(err, TBGW_EINVAL, "methodRPC: required string");
    if (proc && strcasecmp(proc, "write"))
        return tbgw_err_set(err, TBGW_EINVAL, "methodProcessing: '%s' unknown (expected write)", proc);
    sock_rpc_cfg *r = &d->rpcs[index];
    if (parse_enc(e, "encoding", &d->enc, &r->enc, NULL, err) < 0) return TBGW_EINVAL;
    r->write = 1;
    const json_t *wr = json_object_get(e, "withResponse");
    r->with_response = json_is_true(wr) || (json_is_string(wr) && !strcasecmp(json_string_value(wr), "true"));
    if (!(r->method = strdup(m))) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    d->n_rpcs = index + 1;
    return 0;
}

/* attributeRequests, attributeUpdates, serverSideRpc: a bad entry is reported and skipped. */
static int parse_downlink(tbgw_cfg *w, sock_device *d, const json_t *o, const char *path) {
    d->attr_reqs = calloc(json_array_size(json_object_get(o, "attributeRequests")) + 1, sizeof *d->attr_reqs);
    d->attr_updates =
        calloc(json_array_size(json_object_get(o, "attributeUpdates")) + 1, sizeof *d->attr_updates);
    d->rpcs = calloc(json_array_size(json_object_get(o, "serverSideRpc")) + 1, sizeof *d->rpcs);
    if (!d->attr_reqs || !d->attr_updates || !d->rpcs)
        return tbgw_err_set(w->err, TBGW_ENOMEM, "out of memory");
    int n = tbgw_cfg_each(w, o, path, "attributeRequests", parse_attr_req, d);
    if (n < 0) return n;
    d->n_attr_reqs = (size_t)n;
    if ((n = tbgw_cfg_each(w, o, path, "attributeUpdates", parse_attr_update, d)) < 0) return n;
    if ((n = tbgw_cfg_each(w, o, path, "serverSideRpc", parse_rpc, d)) < 0) return n;
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

static int parse_device(tbgw_cfg *w, sock_device *d, const json_t *o, const char *path) {
    const tbgw_host *h = w->host;
    tbgw_err *err = w->err;
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
    int rc = parse_keys(w, o, path, "telemetry", &d->telemetry, &d->n_telemetry);
    if (rc < 0) return rc;
    if ((rc = parse_keys(w, o, path, "attributes", &d->attributes, &d->n_attributes)) < 0) return rc;
    if ((rc = parse_converter(h, d, o, path, err)) < 0) return rc;
    return parse_downlink(w, d, o, path);
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
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
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
        rc = parse_device(&w, &c->devices[i], o, p);
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
