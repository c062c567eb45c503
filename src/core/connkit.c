/* The connector kit (include/tbgw/connkit.h). */
#include <tbgw/connkit.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/report_cfg.h"
#include "core/gateway_int.h"
#include "util/doc.h"

/* ---- configuration walk ---------------------------------------------------------------------- */

void tbgw_cfg_init(tbgw_cfg *w, const tbgw_host *host, tbgw_err *err) {
    w->host = host;
    w->err = err;
    w->skipped = 0;
}

/* The connector file's document when host is one the core made (the instance embeds its host). */
static const tbgw_doc *host_doc(const tbgw_host *h) {
    if (!h || !h->core) return NULL;
    const conn_inst *ci = h->core;
    if (&ci->host != h || !ci->entry) return NULL;
    return ci->entry->doc;
}

const char *tbgw_cfg_where(const tbgw_cfg *w, const char *path, char *buf, size_t len) {
    const tbgw_doc *d = host_doc(w->host);
    if (!len) return buf;
    buf[0] = 0;
    if (!d) return buf;
    int line = 0, col = 0;
    tbgw_doc_locate(d, path ? path : "", &line, &col);
    snprintf(buf, len, "%s:%d:%d", d->path ? d->path : "?", line, col);
    return buf;
}

void tbgw_cfg_skip(tbgw_cfg *w, const char *path, const char *fmt, ...) {
    char msg[400], where[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->skipped++;
    const tbgw_host *h = w->host;
    if (!h) return;
    if (h->config_warning) { /* the core's: file:line:column, counted, listed by --check-config */
        h->config_warning(h, path && *path ? path : NULL, msg);
        return;
    }
    tbgw_cfg_where(w, path, where, sizeof where);
    if (h->log)
        TBGW_WARNF(h->log, "%s%s%s: %s; the entry is skipped", where, *where ? ": " : "", path ? path : "",
                   msg);
    if (h->stat_add) h->stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
}

int tbgw_cfg_fail(tbgw_cfg *w, const char *path, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path && *path) return tbgw_err_set(w->err, TBGW_EINVAL, "%s: %s", path, msg);
    return tbgw_err_set(w->err, TBGW_EINVAL, "%s", msg);
}

/* A leading "field[@N]: " of msg (relative to the entry at ep, or starting with ep itself when
 * absolute) becomes the reported path, the rest the reason; else the whole msg is reported at ep. */
static void skip_field(tbgw_cfg *w, const char *ep, const char *msg, int absolute) {
    ep = ep ? ep : "";
    size_t el = strlen(ep), from = 0;
    if (absolute) {
        if (!el || strncmp(msg, ep, el) || !msg[el] || !strchr(".[@:", msg[el])) {
            tbgw_cfg_skip(w, ep, "%s", msg);
            return;
        }
        from = el + (msg[el] == '.');
    }
    const char *f = msg + from;
    size_t n = 0;
    while (isalnum((unsigned char)f[n]) || (f[n] && strchr("_.[]", f[n]))) n++;
    if (f[n] == '@' && isdigit((unsigned char)f[n + 1]))
        for (n++; isdigit((unsigned char)f[n]);) n++;
    if (f[n] != ':' || f[n + 1] != ' ' || (!absolute && (!n || f[0] == '.' || f[0] == '[')) ||
        from + n >= 300) {
        tbgw_cfg_skip(w, ep, "%s", msg);
        return;
    }
    char field[600];
    if (absolute)
        snprintf(field, sizeof field, "%.*s", (int)(from + n), msg);
    else
        snprintf(field, sizeof field, "%s%s%.*s", ep, el ? "." : "", (int)n, f);
    tbgw_cfg_skip(w, field, "%s", f + n + 2);
}

void tbgw_cfg_skip_err(tbgw_cfg *w, const char *ep, const char *msg) {
    skip_field(w, ep, msg, 1);
}

void tbgw_cfg_skip_msg(tbgw_cfg *w, const char *path, const char *msg) {
    skip_field(w, path, msg, 0);
}

static void join(char *out, size_t len, const char *path, const char *key) {
    if (path && *path)
        snprintf(out, len, "%s.%s", path, key);
    else
        snprintf(out, len, "%s", key);
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int wrong(tbgw_err *err, const char *path, const char *key, const char *want, const json_t *v) {
    char p[256];
    join(p, sizeof p, path, key);
    return tbgw_err_set(err, TBGW_EINVAL, "%s: expected %s, got %s", p, want, type_name(v));
}

int tbgw_cfg_get_str(const json_t *o, const char *path, const char *key, const char *def, const char **out,
                     tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return wrong(err, path, key, "a string", v);
    *out = json_string_value(v);
    return 0;
}

static int range_err(tbgw_err *err, const char *path, const char *key, long long x, long long min,
                     long long max) {
    char p[256];
    join(p, sizeof p, path, key);
    if (max == INT64_MAX)
        return tbgw_err_set(err, TBGW_EINVAL, "%s: %lld is below the minimum %lld", p, x, min);
    return tbgw_err_set(err, TBGW_EINVAL, "%s: %lld is out of range %lld..%lld", p, x, min, max);
}

/* A string holding a number (spaces around it allowed): 0, or -1 when it holds none. */
static int str_num(const char *s, double *d, int64_t *i, int *is_int) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (end != s && !*end && errno == 0) {
        *i = x;
        *d = (double)x;
        *is_int = 1;
        return 0;
    }
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == s || *end || !isfinite(v)) return -1;
    *d = v;
    *is_int = 0;
    return 0;
}

int tbgw_cfg_get_int_ex(const json_t *o, const char *path, const char *key, int64_t def, int64_t min,
                        int64_t max, unsigned flags, int64_t *out, tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    double d = 0;
    int is_int = 0, have = 0;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
        is_int = have = 1;
    } else if (json_is_real(v)) {
        d = json_real_value(v);
        have = 1;
    } else if ((flags & TBGW_CFG_NUM_BOOL) && json_is_boolean(v)) {
        x = json_is_true(v);
        is_int = have = 1;
    } else if ((flags & TBGW_CFG_NUM_STRING) && json_is_string(v)) {
        have = str_num(json_string_value(v), &d, &x, &is_int) == 0;
    }
    if (have && !is_int) { /* 10.0 written by a tool; 4000.7 only when truncation is asked for */
        if (!(fabs(d) < 9e15) || (d != floor(d) && !(flags & TBGW_CFG_NUM_TRUNC)))
            have = 0;
        else
            x = (int64_t)d;
    }
    if (!have) return wrong(err, path, key, "an integer", v);
    if (x < min || x > max) return range_err(err, path, key, (long long)x, (long long)min, (long long)max);
    *out = x;
    return 0;
}

int tbgw_cfg_get_int(const json_t *o, const char *path, const char *key, int64_t def, int64_t min,
                     int64_t max, int64_t *out, tbgw_err *err) {
    return tbgw_cfg_get_int_ex(o, path, key, def, min, max, 0, out, err);
}

int tbgw_cfg_get_num_ex(const json_t *o, const char *path, const char *key, double def, double min,
                        double max, unsigned flags, double *out, tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    double x;
    int64_t i;
    int is_int;
    if (json_is_number(v))
        x = json_number_value(v);
    else if ((flags & TBGW_CFG_NUM_BOOL) && json_is_boolean(v))
        x = json_is_true(v);
    else if (!(flags & TBGW_CFG_NUM_STRING) || !json_is_string(v) ||
             str_num(json_string_value(v), &x, &i, &is_int) < 0)
        return wrong(err, path, key, "a number", v);
    if (!(x >= min && x <= max)) {
        char p[256];
        join(p, sizeof p, path, key);
        return tbgw_err_set(err, TBGW_EINVAL, "%s: %g is out of range %g..%g", p, x, min, max);
    }
    *out = x;
    return 0;
}

int tbgw_cfg_get_num(const json_t *o, const char *path, const char *key, double def, double min, double max,
                     double *out, tbgw_err *err) {
    return tbgw_cfg_get_num_ex(o, path, key, def, min, max, 0, out, err);
}

int tbgw_cfg_get_bool(const json_t *o, const char *path, const char *key, int def, int *out, tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return wrong(err, path, key, "true or false", v);
    *out = json_is_true(v);
    return 0;
}

int tbgw_cfg_each(tbgw_cfg *w, const json_t *parent, const char *parent_path, const char *key,
                  tbgw_cfg_entry_fn fn, void *ud) {
    char path[256];
    join(path, sizeof path, parent_path, key);
    const json_t *arr = json_object_get(parent, key);
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_cfg_fail(w, path, "expected a list, got %s", type_name(arr));
    int accepted = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char ep[300];
        snprintf(ep, sizeof ep, "%s[%zu]", path, i);
        const json_t *e = json_array_get(arr, i);
        if (!json_is_object(e)) {
            tbgw_cfg_skip(w, ep, "expected an object, got %s", type_name(e));
            continue;
        }
        tbgw_err err = {0};
        int rc = fn ? fn(w, e, ep, (size_t)accepted, ud, &err) : 0;
        if (rc == TBGW_ENOMEM || (rc < 0 && err.code == TBGW_ENOMEM))
            return tbgw_err_set(w->err, TBGW_ENOMEM, "%s: out of memory", ep);
        if (rc < 0) {
            tbgw_cfg_skip_err(w, ep, err.msg[0] ? err.msg : "invalid entry");
            continue;
        }
        accepted++;
    }
    return accepted;
}

typedef struct list_ctx {
    char *base;
    size_t size, *n;
    tbgw_cfg_slot_fn fn;
    void (*drop)(void *slot);
    void *ud;
} list_ctx;

static int list_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    list_ctx *l = ud;
    void *slot = l->base + index * l->size;
    int rc = l->fn(w, e, path, slot, l->ud, err);
    if (rc < 0) {
        if (l->drop) l->drop(slot);
        memset(slot, 0, l->size);
        return rc;
    }
    *l->n = index + 1;
    return 0;
}

int tbgw_cfg_list(tbgw_cfg *w, const json_t *parent, const char *parent_path, const char *key, size_t size,
                  void **items, size_t *n, tbgw_cfg_slot_fn fn, void (*drop)(void *slot), void *ud) {
    *items = NULL;
    *n = 0;
    const json_t *arr = json_object_get(parent, key);
    size_t cnt = json_is_array(arr) ? json_array_size(arr) : 0;
    list_ctx l = {NULL, size, n, fn, drop, ud};
    if (cnt && !(l.base = calloc(cnt, size))) return tbgw_err_set(w->err, TBGW_ENOMEM, "out of memory");
    *items = l.base;
    return tbgw_cfg_each(w, parent, parent_path, key, list_entry, &l);
}

/* ---- device and key entries ------------------------------------------------------------------ */

typedef struct keys_ctx {
    tbgw_cfg_keys *out;
    const char *const *names;
    tbgw_cfg_entry_fn extra;
    void *ud;
} keys_ctx;

static int key_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    keys_ctx *k = ud;
    const char *name = NULL;
    for (const char *const *f = k->names; *f && !name; f++) name = json_string_value(json_object_get(e, *f));
    if (!name || !*name)
        return tbgw_err_set(err, TBGW_EINVAL, "%s: missing (a non-empty string)", k->names[0]);
    const json_t *type = json_object_get(e, "type");
    if (type && !json_is_string(type)) return wrong(err, NULL, "type", "a string", type);
    tbgw_cfg_key key = {0};
    if (tbgw_rs_parse(json_object_get(e, "reportStrategy"), &key.rs, err)) return TBGW_EINVAL;
    key.has_rs = key.rs.type != TBGW_RS_UNSET;
    key.type = json_string_value(type);
    key.cfg = e;
    snprintf(key.path, sizeof key.path, "%s", path);
    tbgw_cfg_keys *out = k->out;
    tbgw_cfg_key *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
    if (!nv || !(key.key = strdup(name))) {
        if (nv) out->v = nv;
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    out->v = nv;
    out->v[out->n] = key;
    if (k->extra && k->extra(w, e, path, index, k->ud, err) < 0) {
        free(key.key);
        return TBGW_EINVAL;
    }
    out->n++;
    return 0;
}

int tbgw_cfg_keys_parse(tbgw_cfg *w, const json_t *parent, const char *parent_path, const char *section,
                        const char *const *name_fields, tbgw_cfg_entry_fn extra, void *ud,
                        tbgw_cfg_keys *out) {
    static const char *const def_names[] = {"key", "tag", NULL};
    keys_ctx k = {out, name_fields ? name_fields : def_names, extra, ud};
    out->v = NULL;
    out->n = 0;
    int rc = tbgw_cfg_each(w, parent, parent_path, section, key_entry, &k);
    if (rc < 0) tbgw_cfg_keys_free(out);
    return rc;
}

void tbgw_cfg_keys_free(tbgw_cfg_keys *k) {
    for (size_t i = 0; i < k->n; i++) free(k->v[i].key);
    free(k->v);
    k->v = NULL;
    k->n = 0;
}

int tbgw_cfg_device_parse(tbgw_cfg *w, const json_t *dev, const char *path, tbgw_cfg_device *out,
                          tbgw_err *err) {
    static const char *const upd_names[] = {"attributeOnThingsBoard", "key", "tag", NULL};
    static const char *const rpc_names[] = {"method", "tag", "key", NULL};
    memset(out, 0, sizeof *out);
    const char *name = json_string_value(json_object_get(dev, "deviceName"));
    if (!name) name = json_string_value(json_object_get(dev, "name"));
    if (!name || !*name) return tbgw_err_set(err, TBGW_EINVAL, "deviceName: missing (a non-empty string)");
    const char *type = json_string_value(json_object_get(dev, "deviceType"));
    if (!type) type = json_string_value(json_object_get(dev, "type"));
    out->name = name;
    out->type = type && *type ? type : "default";
    if (tbgw_rs_parse(json_object_get(dev, "reportStrategy"), &out->rs, err)) return TBGW_EINVAL;
    out->has_rs = out->rs.type != TBGW_RS_UNSET;
    /* a key list that is not a list is a broken device: the caller decides (skip it or refuse) */
    tbgw_err lerr = {0};
    tbgw_cfg sub = {w->host, &lerr, 0};
    if (tbgw_cfg_keys_parse(&sub, dev, path, "timeseries", NULL, NULL, NULL, &out->timeseries) < 0 ||
        tbgw_cfg_keys_parse(&sub, dev, path, "attributes", NULL, NULL, NULL, &out->attributes) < 0 ||
        tbgw_cfg_keys_parse(&sub, dev, path, "attributeUpdates", upd_names, NULL, NULL,
                            &out->attribute_updates) < 0 ||
        tbgw_cfg_keys_parse(&sub, dev, path, "rpc", rpc_names, NULL, NULL, &out->rpc) < 0) {
        w->skipped += sub.skipped;
        tbgw_cfg_device_free(out);
        size_t pl = strlen(path); /* messages are relative to the device (the caller names it) */
        const char *m = !strncmp(lerr.msg, path, pl) && lerr.msg[pl] == '.' ? lerr.msg + pl + 1 : lerr.msg;
        return tbgw_err_set(err, TBGW_EINVAL, "%s", m);
    }
    w->skipped += sub.skipped;
    return 0;
}

void tbgw_cfg_device_free(tbgw_cfg_device *d) {
    tbgw_cfg_keys_free(&d->timeseries);
    tbgw_cfg_keys_free(&d->attributes);
    tbgw_cfg_keys_free(&d->attribute_updates);
    tbgw_cfg_keys_free(&d->rpc);
}

/* ---- RPC replies ------------------------------------------------------------------------------ */

int tbgw_rpc_result(const tbgw_host *h, uint64_t handle, json_t *result) {
    json_t *o = json_object();
    json_object_set_new(o, "result", result ? result : json_null());
    return h->rpc_reply(h, handle, o, -1);
}

int tbgw_rpc_value(const tbgw_host *h, uint64_t handle, json_t *value) {
    json_t *v = json_object();
    json_object_set_new(v, "value", value ? value : json_null());
    return tbgw_rpc_result(h, handle, v);
}

static json_t *error_obj(const char *fmt, va_list ap) {
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    return json_pack("{s:s}", "error", text);
}

int tbgw_rpc_error(const tbgw_host *h, uint64_t handle, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    json_t *e = error_obj(fmt, ap);
    va_end(ap);
    return h->rpc_reply(h, handle, e, -1);
}

int tbgw_rpc_failed(const tbgw_host *h, uint64_t handle, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    json_t *e = error_obj(fmt, ap);
    va_end(ap);
    return h->rpc_reply(h, handle, e, 0);
}

int tbgw_rpc_success(const tbgw_host *h, uint64_t handle, int ok) {
    return h->rpc_reply(h, handle, NULL, ok ? 1 : 0);
}

int tbgw_rpc_success_object(const tbgw_host *h, uint64_t handle, int ok) {
    return h->rpc_reply(h, handle, json_pack("{s:b}", "success", ok ? 1 : 0), -1);
}

/* ---- reserved get/set parameters ------------------------------------------------------------- */

static int params_set(tbgw_params *p, const char *k, size_t kl, const char *v, size_t vl) {
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->v[i].key) == kl && !memcmp(p->v[i].key, k, kl)) {
            char *nv = strndup(v, vl);
            if (!nv) return TBGW_ENOMEM;
            free(p->v[i].value);
            p->v[i].value = nv;
            return 0;
        }
    tbgw_param *nv = realloc(p->v, (p->n + 1) * sizeof *nv);
    if (!nv) return TBGW_ENOMEM;
    p->v = nv;
    char *key = strndup(k, kl), *val = strndup(v, vl);
    if (!key || !val) {
        free(key);
        free(val);
        return TBGW_ENOMEM;
    }
    p->v[p->n++] = (tbgw_param){key, val};
    return 0;
}

int tbgw_params_parse(const char *text, unsigned flags, tbgw_params *out, tbgw_err *err) {
    out->v = NULL;
    out->n = 0;
    if (!text) return tbgw_err_set(err, TBGW_EINVAL, "params: expected a string \"key=value;...\"");
    for (const char *s = text; *s;) {
        const char *end = strchr(s, ';');
        size_t seg = end ? (size_t)(end - s) : strlen(s);
        const char *k = s, *eq = memchr(s, '=', seg);
        while (k < s + seg && isspace((unsigned char)*k)) k++;
        if (k < s + seg && (eq || !(flags & TBGW_PARAMS_LENIENT))) { /* not an empty segment */
            if (!eq) {
                tbgw_params_free(out);
                return tbgw_err_set(err, TBGW_EINVAL, "params: \"%.*s\" is not key=value", (int)seg, s);
            }
            const char *ke = eq;
            while (ke > k && isspace((unsigned char)ke[-1])) ke--;
            if (ke == k) {
                tbgw_params_free(out);
                return tbgw_err_set(err, TBGW_EINVAL, "params: \"%.*s\" has no key", (int)seg, s);
            }
            if (params_set(out, k, (size_t)(ke - k), eq + 1, (size_t)(s + seg - eq - 1))) {
                tbgw_params_free(out);
                return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
            }
        }
        s += seg;
        if (*s == ';') s++;
    }
    return 0;
}

const char *tbgw_params_get(const tbgw_params *p, const char *key) {
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].key, key)) return p->v[i].value;
    return NULL;
}

int tbgw_params_int(const tbgw_params *p, const char *key, int64_t *out) {
    const char *v = tbgw_params_get(p, key);
    if (!v) return TBGW_ENOENT;
    char *end;
    while (isspace((unsigned char)*v)) v++;
    long long x = strtoll(v, &end, 0);
    while (isspace((unsigned char)*end)) end++;
    if (end == v || *end) return TBGW_EINVAL;
    *out = x;
    return 0;
}

json_t *tbgw_params_object(const tbgw_params *p) {
    json_t *o = json_object();
    for (size_t i = 0; o && i < p->n; i++) json_object_set_new(o, p->v[i].key, json_string(p->v[i].value));
    return o;
}

void tbgw_params_free(tbgw_params *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].key);
        free(p->v[i].value);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* ---- waiting ------------------------------------------------------------------------------------ */

int tbgw_host_poll(const tbgw_host *h, struct pollfd *fds, size_t n, int64_t timeout_ms) {
    if (timeout_ms > INT32_MAX) timeout_ms = INT32_MAX;
    if (!h->dispatch || h->downlink_fd < 0) { /* a host without the descriptor: slices */
        if (!n) return h->wait(h, timeout_ms < 0 || timeout_ms > 20 ? 20 : (int)timeout_ms);
        int r = poll(fds, (nfds_t)n, timeout_ms < 0 || timeout_ms > 20 ? 20 : (int)timeout_ms);
        if (r < 0 && errno != EINTR) return TBGW_EIO;
        if (r < 0)
            for (size_t i = 0; i < n; i++) fds[i].revents = 0;
        return h->wait(h, 0);
    }
    struct pollfd local[16], *pf = n < 16 ? local : malloc((n + 1) * sizeof *pf);
    if (!pf) return TBGW_ENOMEM;
    if (n) memcpy(pf, fds, n * sizeof *pf);
    pf[n] = (struct pollfd){.fd = h->downlink_fd, .events = POLLIN};
    int r = poll(pf, (nfds_t)n + 1, timeout_ms < 0 ? -1 : (int)timeout_ms);
    int err = r < 0 ? errno : 0;
    for (size_t i = 0; i < n; i++) fds[i].revents = r > 0 ? pf[i].revents : 0;
    int ready = r > 0 && pf[n].revents;
    if (pf != local) free(pf);
    if (r < 0 && err != EINTR) return TBGW_EIO;
    return ready ? h->dispatch(h) : 0;
}
