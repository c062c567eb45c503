/* The MQTT bytes uplink converter (spec §5.4). */
#include "convert/bytes_conv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/cfg_util.h"
#include "convert/report_cfg.h"
#include "convert/source_expr.h"

typedef struct slice_part {
    char *lit; /* literal text, or NULL for a slice */
    int single, has_a, has_b;
    long a, b;
} slice_part;

struct tbgw_slice_tmpl {
    slice_part *parts;
    size_t n;
};

typedef struct bdp {
    tbgw_slice_tmpl *key, *value;
    int hex;
    tbgw_report_strategy rs;
    int has_rs;
} bdp;

typedef struct bname {
    tbgw_src src;
    tbgw_slice_tmpl *tmpl; /* message */
    tbgw_src_expr sx;      /* topic / constant */
    int present;
} bname;

struct tbgw_bytes_conv {
    bname name, profile;
    bdp *attrs, *ts;
    size_t n_attrs, n_ts;
    tbgw_report_strategy rs;
    int has_rs;
};

void tbgw_slice_free(tbgw_slice_tmpl *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->parts[i].lit);
    free(t->parts);
    free(t);
}

static int push(tbgw_slice_tmpl *t, const slice_part *p) {
    slice_part *np = realloc(t->parts, (t->n + 1) * sizeof *np);
    if (!np) return TBGW_ENOMEM;
    t->parts = np;
    np[t->n++] = *p;
    return 0;
}

static int push_lit(tbgw_slice_tmpl *t, const char *s, size_t n) {
    if (!n) return 0;
    slice_part p = {0};
    if (!(p.lit = strndup(s, n))) return TBGW_ENOMEM;
    int rc = push(t, &p);
    if (rc) free(p.lit);
    return rc;
}

/* Parses an optional signed integer; returns chars consumed. */
static size_t opt_int(const char *s, int *has, long *v) {
    char *end;
    *has = 0;
    if (!(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1])))) return 0;
    *v = strtol(s, &end, 10);
    *has = 1;
    return (size_t)(end - s);
}

/* Tries to read "[a:b]" / "[i]" at s; returns its length or 0. */
static size_t parse_slice(const char *s, slice_part *p) {
    memset(p, 0, sizeof *p);
    size_t i = 1;
    i += opt_int(s + i, &p->has_a, &p->a);
    if (s[i] == ']') {
        if (!p->has_a) return 0;
        p->single = 1;
        return i + 1;
    }
    if (s[i] != ':') return 0;
    i++;
    i += opt_int(s + i, &p->has_b, &p->b);
    return s[i] == ']' ? i + 1 : 0;
}

int tbgw_slice_compile(const char *text, tbgw_slice_tmpl **out, tbgw_err *err) {
    *out = NULL;
    if (!text) return tbgw_err_set(err, TBGW_EINVAL, "expression missing");
    tbgw_slice_tmpl *t = calloc(1, sizeof *t);
    if (!t) return TBGW_ENOMEM;
    const char *s = text, *lit = text;
    int rc = 0;
    while (*s && !rc) {
        slice_part p;
        size_t n = *s == '[' ? parse_slice(s, &p) : 0;
        if (!n) {
            s++;
            continue;
        }
        if (!(rc = push_lit(t, lit, (size_t)(s - lit)))) rc = push(t, &p);
        s += n;
        lit = s;
    }
    if (!rc) rc = push_lit(t, lit, (size_t)(s - lit));
    if (rc) {
        tbgw_slice_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static long clamp_idx(long v, long len) {
    if (v < 0) v += len;
    if (v < 0) v = 0;
    if (v > len) v = len;
    return v;
}

/* Appends bytes as UTF-8 text: invalid sequences become U+FFFD, NUL bytes are dropped. */
static void put_utf8(tbgw_buf *out, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t need = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 0;
        int ok = need > 0 && i + need <= n && !(need == 2 && c < 0xC2);
        for (size_t k = 1; ok && k < need; k++)
            if ((p[i + k] & 0xC0) != 0x80) ok = 0;
        if (ok && need == 3) {
            unsigned cp = ((c & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6);
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) ok = 0;
        }
        if (ok && need == 4) {
            unsigned cp = ((c & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12);
            if (cp < 0x10000 || cp > 0x10FFFF) ok = 0;
        }
        if (!ok) {
            tbgw_buf_puts(out, "\xEF\xBF\xBD");
            i++;
        } else {
            if (c) tbgw_buf_append(out, p + i, need);
            i += need;
        }
    }
}

static void put_hex(tbgw_buf *out, const uint8_t *p, size_t n) {
    static const char hx[] = "0123456789abcdef";
    tbgw_buf_reserve(out, n * 2);
    for (size_t i = 0; i < n; i++) {
        tbgw_buf_putc(out, hx[p[i] >> 4]);
        tbgw_buf_putc(out, hx[p[i] & 15]);
    }
}

int tbgw_slice_render(const tbgw_slice_tmpl *t, const uint8_t *p, size_t len, int hex, tbgw_buf *out) {
    long L = (long)len;
    for (size_t i = 0; i < t->n; i++) {
        const slice_part *sp = &t->parts[i];
        if (sp->lit) {
            tbgw_buf_puts(out, sp->lit);
            continue;
        }
        long a, b;
        if (sp->single) {
            a = sp->a < 0 ? sp->a + L : sp->a;
            if (a < 0 || a >= L) return TBGW_ENOENT;
            b = a + 1;
        } else {
            a = sp->has_a ? clamp_idx(sp->a, L) : 0;
            b = sp->has_b ? clamp_idx(sp->b, L) : L;
        }
        if (b <= a) continue;
        if (hex)
            put_hex(out, p + a, (size_t)(b - a));
        else
            put_utf8(out, p + a, (size_t)(b - a));
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

/* ------------------------------------------------------------------ config */

static void name_clear(bname *n) {
    tbgw_slice_free(n->tmpl);
    tbgw_src_expr_clear(&n->sx);
}

void tbgw_bytes_conv_free(tbgw_bytes_conv *c) {
    if (!c) return;
    name_clear(&c->name);
    name_clear(&c->profile);
    for (size_t i = 0; i < c->n_attrs; i++) {
        tbgw_slice_free(c->attrs[i].key);
        tbgw_slice_free(c->attrs[i].value);
    }
    for (size_t i = 0; i < c->n_ts; i++) {
        tbgw_slice_free(c->ts[i].key);
        tbgw_slice_free(c->ts[i].value);
    }
    free(c->attrs);
    free(c->ts);
    free(c);
}

static int name_init(bname *n, const json_t *di, const char *sk, const char *ek, const char *path,
                     tbgw_err *err) {
    const json_t *src = json_object_get(di, sk), *ex = json_object_get(di, ek);
    if (!ex) return 0;
    if (!json_is_string(ex)) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a string", path, ek);
    n->src = TBGW_SRC_MESSAGE;
    if (src && (!json_is_string(src) || tbgw_src_parse(json_string_value(src), &n->src)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected one of message, topic, constant", path, sk);
    n->present = 1;
    char fp[300];
    snprintf(fp, sizeof fp, "%s.%s", path, ek);
    if (n->src == TBGW_SRC_MESSAGE || n->src == TBGW_SRC_REQUEST)
        return tbgw_slice_compile(json_string_value(ex), &n->tmpl, err);
    return tbgw_src_expr_init(&n->sx, n->src, json_string_value(ex), fp, err);
}

static void bdp_clear(bdp *d) {
    tbgw_slice_free(d->key);
    tbgw_slice_free(d->value);
    memset(d, 0, sizeof *d);
}

static int bdp_init(bdp *d, const json_t *o, const char *ip, tbgw_err *err) {
    const json_t *k = json_object_get(o, "key"), *v = json_object_get(o, "value");
    if (!json_is_object(o)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", ip);
    if (!json_is_string(k)) return tbgw_err_set(err, TBGW_EINVAL, "%s.key: expected a string", ip);
    if (!json_is_string(v)) return tbgw_err_set(err, TBGW_EINVAL, "%s.value: expected a string", ip);
    char fp[300];
    snprintf(fp, sizeof fp, "%s.key", ip);
    int rc = tbgw_err_prefix(err, tbgw_slice_compile(json_string_value(k), &d->key, err), fp, ':');
    snprintf(fp, sizeof fp, "%s.value", ip);
    if (!rc) rc = tbgw_err_prefix(err, tbgw_slice_compile(json_string_value(v), &d->value, err), fp, ':');
    if (rc) return rc;
    d->hex = json_is_true(json_object_get(o, "hexMode"));
    if ((rc = tbgw_rs_parse(json_object_get(o, "reportStrategy"), &d->rs, err)))
        return tbgw_err_prefix(err, rc, ip, '.');
    d->has_rs = d->rs.type != TBGW_RS_UNSET;
    return 0;
}

static int list_init(bdp **out, size_t *n, const json_t *arr, const char *path, const tbgw_host *tolerate,
                     tbgw_err *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list", path);
    *out = calloc(json_array_size(arr) + 1, sizeof **out);
    if (!*out) return TBGW_ENOMEM;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        char ip[300];
        snprintf(ip, sizeof ip, "%s[%zu]", path, i);
        tbgw_err ee = {0, ""};
        int rc = bdp_init(&(*out)[*n], o, ip, &ee);
        if (rc == 0) {
            (*n)++;
            continue;
        }
        bdp_clear(&(*out)[*n]);
        if (!tolerate || (rc = tbgw_cfg_skip_entry(tolerate, &ee)) != 0)
            return tbgw_err_set(err, rc, "%s", ee.msg);
    }
    return 0;
}

int tbgw_bytes_conv_new(const json_t *conv, const json_t *entry, const char *path, tbgw_bytes_conv **out,
                        tbgw_err *err) {
    return tbgw_bytes_conv_new_ex(conv, entry, path, NULL, out, err);
}

int tbgw_bytes_conv_new_ex(const json_t *conv, const json_t *entry, const char *path,
                           const tbgw_host *tolerate, tbgw_bytes_conv **out, tbgw_err *err) {
    char fp[280];
    *out = NULL;
    if (!json_is_object(conv)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    tbgw_bytes_conv *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    const json_t *di = json_object_get(conv, "deviceInfo");
    snprintf(fp, sizeof fp, "%s.deviceInfo", path);
    int rc = 0;
    if (!json_is_object(di)) rc = tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", fp);
    if (!rc) rc = name_init(&c->name, di, "deviceNameExpressionSource", "deviceNameExpression", fp, err);
    if (!rc && !c->name.present) rc = tbgw_err_set(err, TBGW_EINVAL, "%s.deviceNameExpression: missing", fp);
    if (!rc)
        rc = name_init(&c->profile, di, "deviceProfileExpressionSource", "deviceProfileExpression", fp, err);
    snprintf(fp, sizeof fp, "%s.attributes", path);
    if (!rc) rc = list_init(&c->attrs, &c->n_attrs, json_object_get(conv, "attributes"), fp, tolerate, err);
    snprintf(fp, sizeof fp, "%s.timeseries", path);
    if (!rc) rc = list_init(&c->ts, &c->n_ts, json_object_get(conv, "timeseries"), fp, tolerate, err);
    if (!rc) {
        const json_t *rsj = json_object_get(conv, "reportStrategy");
        if (!rsj && entry) rsj = json_object_get(entry, "reportStrategy");
        rc = tbgw_rs_parse(rsj, &c->rs, err);
        c->has_rs = c->rs.type != TBGW_RS_UNSET;
    }
    if (rc) {
        tbgw_bytes_conv_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------ conversion */

static int eval_name(const bname *n, const char *topic, const uint8_t *p, size_t len, tbgw_buf *out) {
    if (!n->present) return 0;
    if (n->tmpl) return tbgw_slice_render(n->tmpl, p, len, 0, out);
    return tbgw_src_expr_eval(&n->sx, topic, NULL, out);
}

static int add_dps(tbgw_converted *r, const bdp *l, size_t n, int telemetry, const uint8_t *p, size_t len,
                   int64_t ts, tbgw_buf *kb, tbgw_buf *vb) {
    for (size_t i = 0; i < n; i++) {
        tbgw_buf_reset(kb);
        tbgw_buf_reset(vb);
        if (tbgw_slice_render(l[i].key, p, len, l[i].hex, kb) ||
            tbgw_slice_render(l[i].value, p, len, l[i].hex, vb))
            continue;
        const char *k = tbgw_buf_cstr(kb), *v = tbgw_buf_cstr(vb);
        if (!k || !v) return TBGW_ENOMEM;
        if (!*k) continue;
        tbgw_value tv = tbgw_value_string(v);
        const tbgw_report_strategy *rs = l[i].has_rs ? &l[i].rs : NULL;
        int rc = telemetry ? tbgw_converted_add_telemetry(r, ts, k, &tv, rs)
                           : tbgw_converted_add_attribute(r, k, &tv, rs);
        if (rc) return rc;
    }
    return 0;
}

int tbgw_bytes_conv_convert(const tbgw_bytes_conv *c, const char *topic, const uint8_t *payload, size_t len,
                            int64_t recv_ts_ms, tbgw_converted **chain, tbgw_err *err) {
    tbgw_buf nb, pb, kb, vb;
    tbgw_buf_init(&nb);
    tbgw_buf_init(&pb);
    tbgw_buf_init(&kb);
    tbgw_buf_init(&vb);
    tbgw_converted *r = NULL;
    int rc = eval_name(&c->name, topic, payload, len, &nb);
    if (!rc) rc = eval_name(&c->profile, topic, payload, len, &pb);
    const char *name = tbgw_buf_cstr(&nb), *prof = tbgw_buf_cstr(&pb);
    if (!rc && (!name || !prof)) rc = TBGW_ENOMEM;
    if (!rc && !*name)
        rc = tbgw_err_set(err, TBGW_EINVAL, "device name is empty (topic %s)", topic ? topic : "-");
    if (!rc && !(r = tbgw_converted_new(name, *prof ? prof : NULL))) rc = TBGW_ENOMEM;
    if (!rc) {
        r->rs = c->has_rs ? &c->rs : NULL;
        rc = add_dps(r, c->attrs, c->n_attrs, 0, payload, len, 0, &kb, &vb);
    }
    if (!rc) rc = add_dps(r, c->ts, c->n_ts, 1, payload, len, recv_ts_ms, &kb, &vb);
    tbgw_buf_free(&nb);
    tbgw_buf_free(&pb);
    tbgw_buf_free(&kb);
    tbgw_buf_free(&vb);
    if (rc || tbgw_converted_count(r) == 0) {
        tbgw_converted_free(r);
        return rc;
    }
    tbgw_converted **tail = chain;
    while (*tail) tail = &(*tail)->next;
    *tail = r;
    return 1;
}
