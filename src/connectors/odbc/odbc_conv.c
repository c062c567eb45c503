/* ODBC row -> record conversion (docs/connectors/odbc.md): device name and type, "*" sections and
 * per-key items with column values or Python expressions over the row's columns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/odbc/odbc_internal.h"
#include "util/buf.h"
#include "util/json.h"

static void item_free(odbc_item *it) {
    free(it->name);
    free(it->column);
    tbgw_py_free(it->name_expr);
    tbgw_py_free(it->value);
}

void odbc_mapping_free(odbc_mapping *m) {
    tbgw_py_free(m->dev_name);
    tbgw_py_free(m->dev_type);
    free(m->type_text);
    odbc_section *secs[2] = {&m->attrs, &m->ts};
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < secs[s]->n; i++) item_free(&secs[s]->items[i]);
        free(secs[s]->items);
    }
    memset(m, 0, sizeof *m);
}

/* Compiles the string member key of o; "dotted@offset: error" on a syntax error. */
static int compile_member(const json_t *o, const char *key, const char *dotted, tbgw_py **out,
                          tbgw_err *err) {
    const char *src = json_string_value(json_object_get(o, key));
    if (!src) return 0;
    tbgw_err e = {0};
    size_t off = 0;
    if (tbgw_py_compile(src, strlen(src), 0, out, &e, &off) != 0)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s@%zu: %s", dotted, key, off, e.msg);
    return 0;
}

static int parse_section(const json_t *v, const char *dotted, odbc_section *s, odbc_warn_fn warn, void *ud,
                         tbgw_err *err) {
    if (!v) return 0;
    if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
        s->all = 1;
        return 0;
    }
    if (!json_is_array(v))
        return tbgw_err_set(
            err, TBGW_EINVAL,
            "%s: expected \"*\" or a list of column names or {name|nameExpression, column|value}", dotted);
    s->items = calloc(json_array_size(v) + 1, sizeof *s->items);
    if (!s->items) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        char path[160];
        snprintf(path, sizeof path, "%s[%zu]", dotted, i);
        odbc_item it = {0};
        tbgw_err ie = {0};
        if (json_is_string(e) && *json_string_value(e)) { /* a column name: the key is the column's */
            it.name = strdup(json_string_value(e));
            it.column = strdup(json_string_value(e));
            if (!it.name || !it.column) {
                item_free(&it);
                return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
            }
            s->items[s->n++] = it;
            continue;
        }
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *col = json_string_value(json_object_get(e, "column"));
        if (!json_is_object(e))
            tbgw_err_set(&ie, TBGW_EINVAL, "expected an object");
        else if (compile_member(e, "nameExpression", path, &it.name_expr, &ie) == 0 &&
                 compile_member(e, "value", path, &it.value, &ie) == 0) {
            if (!name && !it.name_expr)
                tbgw_err_set(&ie, TBGW_EINVAL, "needs \"name\" or \"nameExpression\"");
            else if (!col && !it.value)
                tbgw_err_set(&ie, TBGW_EINVAL, "needs \"column\" or \"value\"");
        }
        if (ie.code) {
            item_free(&it);
            /* "mapping.timeseries[1].value@4: SyntaxError ..." points into the expression */
            const char *colon = strstr(ie.msg, ": ");
            size_t pl = strlen(path);
            if (colon && strncmp(ie.msg, path, pl) == 0 && (size_t)(colon - ie.msg) < sizeof path) {
                snprintf(path, sizeof path, "%.*s", (int)(colon - ie.msg), ie.msg);
                if (warn) warn(ud, path, colon + 2);
            } else if (warn) {
                warn(ud, path, ie.msg);
            }
            continue;
        }
        it.name = name && !it.name_expr ? strdup(name) : NULL;
        it.column = col && !it.value ? strdup(col) : NULL;
        s->items[s->n++] = it;
    }
    return 0;
}

int odbc_mapping_parse(const json_t *m, odbc_mapping *out, odbc_warn_fn warn, void *ud, tbgw_err *err) {
    memset(out, 0, sizeof *out);
    if (json_is_string(m) && strcmp(json_string_value(m), "*") == 0) {
        out->whole = 1;
        return 0;
    }
    const json_t *dev = json_object_get(m, "device");
    if (!json_is_object(m) || !json_is_string(json_object_get(dev, "name")))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "mapping.device.name: expected a Python expression over the row's columns");
    int rc = compile_member(dev, "name", "mapping.device", &out->dev_name, err);
    if (rc != 0) return rc;
    const char *type = json_string_value(json_object_get(dev, "type"));
    out->type_text = strdup(type && *type ? type : "default");
    /* A type that is not a valid expression is a constant; one that is is evaluated per row and
     * falls back to its own text when it fails (a literal like "postgres") or is falsy. */
    if (type && *type) {
        tbgw_err e = {0};
        if (tbgw_py_compile(type, strlen(type), 0, &out->dev_type, &e, NULL) != 0) out->dev_type = NULL;
    }
    if ((rc = parse_section(json_object_get(m, "attributes"), "mapping.attributes", &out->attrs, warn, ud,
                            err)) ||
        (rc = parse_section(json_object_get(m, "timeseries"), "mapping.timeseries", &out->ts, warn, ud,
                            err))) {
        odbc_mapping_free(out);
        return rc;
    }
    return 0;
}

json_t *odbc_decimal_json(const char *text) {
    while (*text == ' ') text++;
    if (!*text) return NULL;
    char *end;
    int has_frac = strpbrk(text, ".eE") != NULL;
    if (!has_frac) {
        errno = 0;
        long long i = strtoll(text, &end, 10);
        if (*end == 0 && errno == 0) return json_integer(i);
    } else {
        /* 12.000 is an integer value; keep it a number with its fraction dropped only if exact */
        const char *dot = strchr(text, '.');
        if (dot && !strpbrk(text, "eE")) {
            const char *p = dot + 1;
            while (*p == '0') p++;
            if (*p == 0) {
                errno = 0;
                long long i = strtoll(text, &end, 10);
                if (end == dot && errno == 0) return json_integer(i);
            }
        }
    }
    errno = 0;
    double d = strtod(text, &end);
    while (*end == ' ') end++;
    if (*end != 0 || end == text) return NULL;
    if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308) return NULL;
    return json_real(d);
}

/* str(value) of an evaluated expression into b. */
static int eval_text(const tbgw_py *e, tbgw_py_ctx *ctx, tbgw_buf *b, tbgw_err *err) {
    const tbgw_py_val *v;
    if (tbgw_py_eval(e, ctx, &v, err) != 0) return TBGW_EINVAL;
    tbgw_buf_reset(b);
    if (tbgw_py_text(ctx, v, b) != 0) return tbgw_err_set(err, TBGW_EINVAL, "%s", tbgw_py_last_error(ctx));
    return 0;
}

typedef struct conv_state {
    tbgw_converted *rec;
    int64_t ts;
    size_t *item_errors;
} conv_state;

static void add_value(conv_state *st, int telemetry, const char *key, const tbgw_value *v) {
    if (v->type == TBGW_V_NULL || !*key) return;
    if (telemetry)
        tbgw_converted_add_telemetry(st->rec, st->ts, key, v, NULL);
    else
        tbgw_converted_add_attribute(st->rec, key, v, NULL);
}

static void add_json(conv_state *st, int telemetry, const char *key, const json_t *j) {
    if (!j || json_is_null(j)) return; /* SQL NULL: that column only is skipped */
    tbgw_value v;
    char *tmp = NULL;
    if (tbgw_value_from_json(j, &v, &tmp) == 0) add_value(st, telemetry, key, &v);
    free(tmp);
}

static void convert_item(conv_state *st, const odbc_item *it, int telemetry, tbgw_py_ctx *ctx,
                         const json_t *row, tbgw_buf *kb, tbgw_buf *scratch) {
    tbgw_err e = {0};
    const char *key = it->name;
    if (it->name_expr) {
        if (eval_text(it->name_expr, ctx, kb, &e) != 0) {
            (*st->item_errors)++;
            return;
        }
        key = tbgw_buf_cstr(kb);
    }
    if (it->column) {
        add_json(st, telemetry, key, json_object_get(row, it->column));
        return;
    }
    const tbgw_py_val *pv;
    tbgw_value v;
    tbgw_buf_reset(scratch);
    if (tbgw_py_eval(it->value, ctx, &pv, &e) != 0 || tbgw_py_to_value(ctx, pv, &v, scratch, &e) != 0) {
        (*st->item_errors)++;
        return;
    }
    add_value(st, telemetry, key, &v);
}

static void convert_section(conv_state *st, const odbc_section *s, int telemetry, tbgw_py_ctx *ctx,
                            const json_t *row, tbgw_buf *kb, tbgw_buf *scratch) {
    if (s->all) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)row, k, v) add_json(st, telemetry, k, v);
        return;
    }
    for (size_t i = 0; i < s->n; i++) convert_item(st, &s->items[i], telemetry, ctx, row, kb, scratch);
}

/* The row's "ts" column (epoch ms) as the telemetry time: an integer, a real or integer text (drivers
 * report untyped expressions as text); anything else keeps dflt. */
static int64_t row_ts(const json_t *ts, int64_t dflt) {
    if (json_is_integer(ts)) return json_integer_value(ts) > 0 ? (int64_t)json_integer_value(ts) : dflt;
    if (json_is_real(ts))
        return json_real_value(ts) >= 1 && json_real_value(ts) < 9.2e18 ? (int64_t)json_real_value(ts) : dflt;
    const char *s = json_string_value(ts);
    if (!s || !*s) return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return *end == 0 && errno == 0 && v > 0 ? (int64_t)v : dflt;
}

/* One attributes/telemetry column of the whole-mapping mode (see odbc_internal.h). */
static int add_whole(conv_state *st, int telemetry, const char *col, const json_t *v, int depth,
                     tbgw_err *err) {
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        json_error_t je;
        json_t *j = tbgw_json_loads(json_string_value(v), JSON_DECODE_ANY, &je);
        if (!j)
            return tbgw_err_set(err, TBGW_EINVAL, "column %s: not JSON (%s at column %d)", col, je.text,
                                je.column);
        int rc = json_is_string(j) ? tbgw_err_set(err, TBGW_EINVAL, "column %s: expected a JSON object", col)
                                   : add_whole(st, telemetry, col, j, depth, err);
        json_decref(j);
        return rc;
    }
    if (depth > 2) return tbgw_err_set(err, TBGW_EINVAL, "column %s: nested too deeply", col);
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            if (json_is_string(e) || add_whole(st, telemetry, col, e, depth + 1, err) != 0)
                return err->code
                           ? err->code
                           : tbgw_err_set(err, TBGW_EINVAL, "column %s[%zu]: expected an object", col, i);
        }
        return 0;
    }
    if (!json_is_object(v)) return tbgw_err_set(err, TBGW_EINVAL, "column %s: expected a JSON object", col);
    const json_t *values = json_object_get(v, "values");
    if (telemetry && json_is_object(values)) {
        const json_t *ts = json_object_get(v, "ts");
        int64_t saved = st->ts;
        if (json_is_integer(ts) && json_integer_value(ts) > 0) st->ts = (int64_t)json_integer_value(ts);
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)values, k, x) add_json(st, 1, k, x);
        st->ts = saved;
        return 0;
    }
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) add_json(st, telemetry, k, x);
    return 0;
}

tbgw_converted *odbc_convert_whole(const json_t *row, tbgw_err *err) {
    const json_t *name = json_object_get(row, "deviceName"), *type = json_object_get(row, "deviceType");
    if (!json_is_string(name) || !*json_string_value(name)) {
        tbgw_err_set(err, TBGW_EINVAL, "device name: the row has no deviceName text column");
        return NULL;
    }
    const char *t = json_is_string(type) && *json_string_value(type) ? json_string_value(type) : "default";
    tbgw_converted *rec = tbgw_converted_new(json_string_value(name), t);
    if (!rec) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        return NULL;
    }
    size_t dummy = 0;
    conv_state st = {rec, row_ts(json_object_get(row, "ts"), tbgw_now_ms()), &dummy};
    const json_t *tele = json_object_get(row, "telemetry");
    const char *tcol = "telemetry";
    if (!tele || json_is_null(tele)) tele = json_object_get(row, "timeseries"), tcol = "timeseries";
    if (add_whole(&st, 0, "attributes", json_object_get(row, "attributes"), 0, err) != 0 ||
        add_whole(&st, 1, tcol, tele, 0, err) != 0) {
        tbgw_converted_free(rec);
        return NULL;
    }
    if (tbgw_converted_count(rec) == 0) {
        tbgw_converted_free(rec);
        tbgw_err_set(err, TBGW_ENOENT, "no datapoint");
        return NULL;
    }
    return rec;
}

int odbc_device_name(const odbc_mapping *m, tbgw_py_ctx *ctx, const json_t *row, tbgw_buf *out,
                     tbgw_err *err) {
    tbgw_py_ctx_reset(ctx);
    if (tbgw_py_bind_json_members(ctx, row) != 0) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    tbgw_err e = {0};
    if (eval_text(m->dev_name, ctx, out, &e) != 0 || out->len == 0)
        return tbgw_err_set(err, TBGW_EINVAL, "device name: %s", e.code ? e.msg : "empty");
    return 0;
}

tbgw_converted *odbc_convert_row(const odbc_mapping *m, tbgw_py_ctx *ctx, const json_t *row,
                                 size_t *item_errors, tbgw_err *err) {
    if (m->whole) return odbc_convert_whole(row, err);
    tbgw_py_ctx_reset(ctx);
    if (tbgw_py_bind_json_members(ctx, row) != 0) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        return NULL;
    }
    tbgw_buf name, type, kb, scratch;
    tbgw_buf_init(&name), tbgw_buf_init(&type), tbgw_buf_init(&kb), tbgw_buf_init(&scratch);
    tbgw_converted *rec = NULL;
    tbgw_err e = {0};
    if (eval_text(m->dev_name, ctx, &name, &e) != 0 || name.len == 0) {
        tbgw_err_set(err, TBGW_EINVAL, "device name: %s", e.code ? e.msg : "empty");
        goto out;
    }
    const char *dtype = m->type_text;
    if (m->dev_type) {
        const tbgw_py_val *tv;
        tbgw_err te = {0};
        if (tbgw_py_eval(m->dev_type, ctx, &tv, &te) == 0 && tbgw_py_truthy(ctx, tv) == 1 &&
            tbgw_py_text(ctx, tv, &type) == 0)
            dtype = tbgw_buf_cstr(&type);
    }
    rec = tbgw_converted_new(tbgw_buf_cstr(&name), dtype);
    if (!rec) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        goto out;
    }
    conv_state st = {rec, tbgw_now_ms(), item_errors};
    st.ts = row_ts(json_object_get(row, "ts"), st.ts);
    convert_section(&st, &m->attrs, 0, ctx, row, &kb, &scratch);
    convert_section(&st, &m->ts, 1, ctx, row, &kb, &scratch);
    if (tbgw_converted_count(rec) == 0) {
        tbgw_converted_free(rec);
        rec = NULL;
        tbgw_err_set(err, TBGW_ENOENT, "no datapoint");
    }
out:
    tbgw_buf_free(&name), tbgw_buf_free(&type), tbgw_buf_free(&kb), tbgw_buf_free(&scratch);
    return rec;
}
