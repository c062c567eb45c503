/* XMPP uplink conversion (the reference's XmppUplinkConverter): values go up as strings. */
#include <stdlib.h>
#include <string.h>

#include "connectors/xmpp/xmpp_internal.h"
#include "convert/text_slice.h"
#include "util/buf.h"
#include "util/json.h"

/* Renders a template over a JSON body as the reference's str() replacement; 0 unless it failed. */
static int render(const tbgw_expr *e, const json_t *body, tbgw_buf *out) {
    tbgw_buf_reset(out);
    int rc = tbgw_expr_render(e, body, TBGW_FMT_PY, TBGW_MISSING_NONE, out);
    return rc == 0 && !out->oom ? 0 : -1;
}

/* The character slice [i] / [a:b] of a text body named by a text expression (its first such token),
 * or the expression itself. */
static int text_value(const char *body, const char *expr, tbgw_buf *out) {
    tbgw_buf_reset(out);
    tbgw_slice sl;
    int found = tbgw_slice_find(expr, &sl);
    if (found < 0) return -1;
    if (!found) return tbgw_buf_puts(out, expr);
    return tbgw_slice_apply(&sl, body, strlen(body), out);
}

static void add_value(tbgw_converted *rec, int telemetry, int64_t ts, const char *key, const char *value) {
    tbgw_value v = tbgw_value_string(value);
    if (telemetry)
        tbgw_converted_add_telemetry(rec, ts, key, &v, NULL);
    else
        tbgw_converted_add_attribute(rec, key, &v, NULL);
}

/* A JSON body: templates over it; keys or values rendering to None are skipped. */
static tbgw_converted *convert_json(const xdev *d, const json_t *body) {
    tbgw_buf name, type, k, v;
    tbgw_buf_init(&name), tbgw_buf_init(&type), tbgw_buf_init(&k), tbgw_buf_init(&v);
    tbgw_converted *rec = NULL;
    if (render(d->name, body, &name) || render(d->type, body, &type) || !name.len) goto out;
    rec = tbgw_converted_new(tbgw_buf_cstr(&name), tbgw_buf_cstr(&type));
    if (!rec) goto out;
    const json_t *jts = json_object_get(body, "ts");
    if (!jts) jts = json_object_get(body, "timestamp");
    int64_t ts = json_is_integer(jts) ? (int64_t)json_integer_value(jts) : tbgw_now_ms();
    for (int t = 0; t < 2; t++) {
        const xkey *list = t ? d->ts : d->attrs;
        size_t n = t ? d->n_ts : d->n_attrs;
        for (size_t i = 0; i < n; i++) {
            if (render(list[i].key, body, &k) || render(list[i].value, body, &v)) continue;
            if (strcmp(tbgw_buf_cstr(&k), "None") == 0 || strcmp(tbgw_buf_cstr(&v), "None") == 0) continue;
            add_value(rec, t, ts, tbgw_buf_cstr(&k), tbgw_buf_cstr(&v));
        }
    }
out:
    tbgw_buf_free(&name), tbgw_buf_free(&type), tbgw_buf_free(&k), tbgw_buf_free(&v);
    return rec;
}

/* Any other body: [i] / [a:b] character slices, or the expressions' own text. */
static tbgw_converted *convert_text(const xdev *d, const char *body) {
    tbgw_buf name, type, k, v;
    tbgw_buf_init(&name), tbgw_buf_init(&type), tbgw_buf_init(&k), tbgw_buf_init(&v);
    tbgw_converted *rec = NULL;
    if (text_value(body, tbgw_expr_text(d->name), &name) ||
        text_value(body, tbgw_expr_text(d->type), &type) || !name.len || !type.len)
        goto out;
    rec = tbgw_converted_new(tbgw_buf_cstr(&name), tbgw_buf_cstr(&type));
    if (!rec) goto out;
    int64_t ts = tbgw_now_ms() / 1000 * 1000;
    for (int t = 0; t < 2; t++) {
        const xkey *list = t ? d->ts : d->attrs;
        size_t n = t ? d->n_ts : d->n_attrs;
        for (size_t i = 0; i < n; i++) {
            if (text_value(body, tbgw_expr_text(list[i].key), &k) ||
                text_value(body, tbgw_expr_text(list[i].value), &v) || !k.len || !v.len)
                continue;
            add_value(rec, t, ts, tbgw_buf_cstr(&k), tbgw_buf_cstr(&v));
        }
    }
out:
    tbgw_buf_free(&name), tbgw_buf_free(&type), tbgw_buf_free(&k), tbgw_buf_free(&v);
    return rec;
}

/* Converts one message body of device d; NULL when it yields no device. */
tbgw_converted *tbgw_xmpp_convert(const xdev *d, const char *body) {
    json_error_t je;
    json_t *j = tbgw_json_loads(body, JSON_DECODE_ANY, &je);
    tbgw_converted *rec = NULL;
    if (json_is_object(j) || json_is_array(j))
        rec = convert_json(d, j);
    else
        rec = convert_text(d, body);
    json_decref(j);
    return rec;
}
