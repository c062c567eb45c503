/* The JSON uplink converter (spec §5.3). */
#include "convert/json_conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/cfg_util.h"
#include "convert/expr.h"
#include "convert/py_cast.h"
#include "convert/report_cfg.h"
#include "convert/source_expr.h"
#include "convert/ts.h"
#include "util/buf.h"
#include "util/json.h"

typedef struct dp_cfg {
    tbgw_expr *key;
    tbgw_regex *key_re; /* keySource "topic" */
    char *key_text;
    tbgw_expr *value;
    tbgw_cast cast;
    tbgw_path *ts_path; /* tsField */
    int dayfirst, yearfirst;
    tbgw_report_strategy rs;
    int has_rs;
    int use_eval;   /* useEval and a type that is evaluated */
    tbgw_py_key py; /* the last compiled value text */
} dp_cfg;

typedef struct dp_list {
    dp_cfg *items;
    size_t n;
    int all; /* "*" */
} dp_list;

/* useEval state, changed while converting (a converter is used by one thread) */
typedef struct json_eval {
    tbgw_py_ctx *ctx;
    tbgw_json_eval_report fn;
    void *ud;
} json_eval;

struct tbgw_json_conv {
    tbgw_devinfo *dev;
    dp_list attrs, ts;
    int use_received_ts;
    tbgw_report_strategy rs;
    int has_rs;
    int use_eval;
    json_eval *ev;
    int reads_text; /* tbgw_json_conv_reads_text */
};

static void dp_clear(dp_cfg *d) {
    tbgw_expr_free(d->key);
    tbgw_regex_free(d->key_re);
    free(d->key_text);
    tbgw_expr_free(d->value);
    tbgw_path_free(d->ts_path);
    tbgw_py_key_clear(&d->py);
}

void tbgw_json_conv_free(tbgw_json_conv *c) {
    if (!c) return;
    tbgw_devinfo_free(c->dev);
    for (size_t i = 0; i < c->attrs.n; i++) dp_clear(&c->attrs.items[i]);
    for (size_t i = 0; i < c->ts.n; i++) dp_clear(&c->ts.items[i]);
    free(c->attrs.items);
    free(c->ts.items);
    if (c->ev) tbgw_py_ctx_free(c->ev->ctx);
    free(c->ev);
    free(c);
}

static int prefix_err(tbgw_err *err, int rc, const char *path) {
    return tbgw_err_prefix(err, rc, path, '.');
}

static int str_field(const json_t *o, const char *k, const char *path, const char **out, int required,
                     tbgw_err *err) {
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v) return required ? tbgw_err_set(err, TBGW_EINVAL, "%s.%s: missing", path, k) : 0;
    if (!json_is_string(v)) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a string", path, k);
    *out = json_string_value(v);
    return 0;
}

/* a constant value text under useEval is compiled now, so a syntax error is a configuration error
 * (the field path gets "@<offset>": the position inside the string, see util/doc.h) */
static int eval_init(dp_cfg *d, const char *type, const char *text, const char *path, tbgw_err *err) {
    d->use_eval = tbgw_py_cast_applies(type);
    if (!d->use_eval || !tbgw_expr_is_constant(d->value)) return 0;
    size_t off = 0, len = strlen(text);
    tbgw_err perr = {0};
    int rc = tbgw_py_compile(text, len, 0, &d->py.e, &perr, &off);
    if (rc == TBGW_ENOMEM) return rc;
    if (rc) return tbgw_err_set(err, TBGW_EINVAL, "%s.value@%zu: %s", path, off, perr.msg);
    if (!(d->py.src = strdup(text))) return TBGW_ENOMEM;
    d->py.len = len;
    return 0;
}

static int dp_init(dp_cfg *d, const json_t *o, const char *path, int use_eval, tbgw_err *err) {
    const char *key, *value, *type, *key_src, *ts_field;
    char fp[300];
    int rc;
    if (!json_is_object(o)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object or \"*\"", path);
    if ((rc = str_field(o, "key", path, &key, 1, err)) || (rc = str_field(o, "type", path, &type, 0, err)) ||
        (rc = str_field(o, "keySource", path, &key_src, 0, err)) ||
        (rc = str_field(o, "tsField", path, &ts_field, 0, err)))
        return rc;
    const json_t *vj = json_object_get(o, "value");
    if (!vj) return tbgw_err_set(err, TBGW_EINVAL, "%s.value: missing", path);
    if (!json_is_string(vj)) return tbgw_err_set(err, TBGW_EINVAL, "%s.value: expected a string", path);
    value = json_string_value(vj);
    d->cast = tbgw_cast_parse(type);
    if (!(d->key_text = strdup(key))) return TBGW_ENOMEM;
    snprintf(fp, sizeof fp, "%s.key", path);
    if (key_src && !strcmp(key_src, "topic"))
        rc = tbgw_regex_compile(key, &d->key_re, fp, err);
    else
        rc = tbgw_err_prefix(err, tbgw_expr_compile(key, &d->key, err), fp, ':');
    if (rc) return rc;
    snprintf(fp, sizeof fp, "%s.value", path);
    if ((rc = tbgw_err_prefix(err, tbgw_expr_compile(value, &d->value, err), fp, ':'))) return rc;
    if (ts_field) {
        const char *inner = ts_field;
        size_t n = strlen(ts_field);
        char *tmp = NULL;
        if (n > 3 && !strncmp(ts_field, "${", 2) && ts_field[n - 1] == '}') {
            tmp = strndup(ts_field + 2, n - 3);
            if (!tmp) return TBGW_ENOMEM;
            inner = tmp;
        }
        snprintf(fp, sizeof fp, "%s.tsField", path);
        rc = tbgw_err_prefix(err, tbgw_path_compile(inner, &d->ts_path, err), fp, ':');
        free(tmp);
        if (rc) return rc;
    }
    if (use_eval && (rc = eval_init(d, type, value, path, err))) return rc;
    d->dayfirst = json_is_true(json_object_get(o, "dayfirst"));
    d->yearfirst = json_is_true(json_object_get(o, "yearfirst"));
    if ((rc = tbgw_rs_parse(json_object_get(o, "reportStrategy"), &d->rs, err)))
        return prefix_err(err, rc, path);
    d->has_rs = d->rs.type != TBGW_RS_UNSET;
    return 0;
}

static int list_init(dp_list *l, const json_t *arr, const char *path, int use_eval, const tbgw_host *tolerate,
                     tbgw_err *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (json_is_string(arr)) {
        if (strcmp(json_string_value(arr), "*") != 0)
            return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list or \"*\"", path);
        l->all = 1;
        return 0;
    }
    if (!json_is_array(arr)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a list or \"*\"", path);
    l->items = calloc(json_array_size(arr) + 1, sizeof *l->items);
    if (!l->items) return TBGW_ENOMEM;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        char ip[280];
        snprintf(ip, sizeof ip, "%s[%zu]", path, i);
        if (json_is_string(o) && !strcmp(json_string_value(o), "*")) {
            l->all = 1;
            continue;
        }
        tbgw_err ee = {0, ""};
        int rc = dp_init(&l->items[l->n], o, ip, use_eval, &ee);
        if (rc == 0) {
            l->n++;
            continue;
        }
        dp_clear(&l->items[l->n]);
        memset(&l->items[l->n], 0, sizeof l->items[l->n]);
        if (!tolerate || (rc = tbgw_cfg_skip_entry(tolerate, &ee)) != 0)
            return tbgw_err_set(err, rc, "%s", ee.msg);
    }
    return 0;
}

static int reads_text(const tbgw_json_conv *c);

int tbgw_json_conv_new(const json_t *conv, const json_t *entry, const char *path, tbgw_json_conv **out,
                       tbgw_err *err) {
    return tbgw_json_conv_new_ex(conv, entry, path, NULL, out, err);
}

int tbgw_json_conv_new_ex(const json_t *conv, const json_t *entry, const char *path,
                          const tbgw_host *tolerate, tbgw_json_conv **out, tbgw_err *err) {
    char fp[280];
    *out = NULL;
    if (!json_is_object(conv)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    tbgw_json_conv *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    snprintf(fp, sizeof fp, "%s.deviceInfo", path);
    const json_t *di = json_object_get(conv, "deviceInfo");
    int rc =
        di ? tbgw_devinfo_new(di, fp, 0, &c->dev, err) : tbgw_err_set(err, TBGW_EINVAL, "%s: missing", fp);
    const json_t *ue = json_object_get(conv, "useEval");
    if (!rc && ue && !json_is_boolean(ue))
        rc = tbgw_err_set(err, TBGW_EINVAL, "%s.useEval: expected true or false", path);
    c->use_eval = json_is_true(ue);
    if (!rc && c->use_eval) {
        c->ev = calloc(1, sizeof *c->ev);
        if (!c->ev || !(c->ev->ctx = tbgw_py_ctx_new(NULL))) rc = TBGW_ENOMEM;
    }
    if (!rc) {
        snprintf(fp, sizeof fp, "%s.attributes", path);
        rc = list_init(&c->attrs, json_object_get(conv, "attributes"), fp, c->use_eval, tolerate, err);
    }
    if (!rc) {
        snprintf(fp, sizeof fp, "%s.timeseries", path);
        rc = list_init(&c->ts, json_object_get(conv, "timeseries"), fp, c->use_eval, tolerate, err);
    }
    c->use_received_ts = json_is_true(json_object_get(conv, "useReceivedTs"));
    if (!rc) {
        const json_t *rsj = json_object_get(conv, "reportStrategy");
        const char *where = path;
        if (!rsj && entry) {
            rsj = json_object_get(entry, "reportStrategy");
            where = "";
        }
        rc = tbgw_rs_parse(rsj, &c->rs, err);
        if (rc && *where) prefix_err(err, rc, where);
        c->has_rs = c->rs.type != TBGW_RS_UNSET;
        if (!rc && !c->has_rs && json_is_true(json_object_get(conv, "sendDataOnlyOnChange"))) {
            c->rs.type = TBGW_RS_ON_CHANGE;
            c->has_rs = 1;
        }
    }
    if (rc) {
        tbgw_json_conv_free(c);
        return rc;
    }
    c->reads_text = reads_text(c);
    *out = c;
    return 0;
}

static int list_reads_text(const dp_list *l) {
    if (l->all) return 0;
    for (size_t i = 0; i < l->n; i++) {
        const dp_cfg *d = &l->items[i];
        if (d->ts_path || (d->key && !tbgw_expr_is_plain(d->key)) || !tbgw_expr_is_plain(d->value)) return 0;
    }
    return 1;
}

static int reads_text(const tbgw_json_conv *c) {
    return !c->use_eval && tbgw_devinfo_is_plain(c->dev) && list_reads_text(&c->attrs) &&
           list_reads_text(&c->ts);
}

int tbgw_json_conv_reads_text(const tbgw_json_conv *c) {
    return c->reads_text;
}

/* ------------------------------------------------------------------ conversion */

typedef struct conv_ctx {
    const tbgw_json_conv *c;
    const char *topic;
    int64_t recv_ts;
    tbgw_converted *head; /* records of this message, one per device */
    tbgw_buf scratch, key, name, text;
    size_t added;       /* datapoints produced from this message */
    char eval_err[300]; /* first useEval error (when nobody is told through the report hook) */
    const char *device;
    char missing[96];     /* first value expression that found nothing */
    char wrong_type[200]; /* first value that could not be cast (sent as text) */
} conv_ctx;

static tbgw_converted *record_for(conv_ctx *x, const char *name, const char *profile) {
    for (tbgw_converted *r = x->head; r; r = r->next)
        if (!strcmp(r->device_name, name)) return r;
    tbgw_converted *r = tbgw_converted_new(name, profile);
    if (!r) return NULL;
    r->rs = x->c->has_rs ? &x->c->rs : NULL;
    tbgw_converted **tail = &x->head;
    while (*tail) tail = &(*tail)->next;
    *tail = r;
    return r;
}

static int64_t payload_ts(const conv_ctx *x, const tbgw_jsrc *item) {
    int64_t ts;
    tbgw_jval v;
    if (x->c->use_received_ts || (!item->doc && !json_is_object(item->tree))) return x->recv_ts;
    int rc = tbgw_jsrc_member(item, "ts", &v);
    if (rc == TBGW_ENOENT) rc = tbgw_jsrc_member(item, "timestamp", &v);
    if (!rc && !tbgw_ts_parse_jval(&v, 0, 0, &ts)) return ts;
    return x->recv_ts;
}

/* (tsField: tree items only, see reads_text) */
static int64_t dp_ts(const conv_ctx *x, const dp_cfg *d, const json_t *item, int64_t dflt) {
    if (x->c->use_received_ts || !d->ts_path || !item) return dflt;
    const json_t *v = tbgw_path_get(d->ts_path, item);
    if (!v) v = tbgw_json_find_key(item, tbgw_path_last_key(d->ts_path));
    int64_t ts;
    if (v && !tbgw_ts_parse(v, d->dayfirst, d->yearfirst, &ts)) return ts;
    return dflt;
}

/* "*": every key of the payload object becomes a datapoint with its JSON type. */
static int add_all(conv_ctx *x, tbgw_converted *r, const json_t *item, int telemetry, int64_t ts) {
    if (!json_is_object(item)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)item, k, v) {
        tbgw_value tv;
        char *tmp = NULL;
        if (tbgw_value_from_json(v, &tv, &tmp)) continue;
        x->added++;
        int rc = telemetry ? tbgw_converted_add_telemetry(r, ts, k, &tv, NULL)
                           : tbgw_converted_add_attribute(r, k, &tv, NULL);
        free(tmp);
        if (rc) return rc;
    }
    return 0;
}

/* useEval: the rendered text is evaluated (reference: str(value) substituted, then eval) */
static int eval_value(conv_ctx *x, dp_cfg *d, const json_t *item, const char *key, tbgw_value *v) {
    tbgw_buf_reset(&x->text);
    int rc = tbgw_expr_render(d->value, item, TBGW_FMT_PY, TBGW_MISSING_FAIL, &x->text);
    if (rc) return rc;
    const char *text = tbgw_buf_cstr(&x->text);
    if (!text) return TBGW_ENOMEM;
    tbgw_err err = {0};
    rc = tbgw_py_eval_cast(x->c->ev->ctx, &d->py, text, d->cast, v, &x->scratch, &err);
    if (rc != TBGW_EINVAL) return rc;
    int64_t now = tbgw_now_ms();
    int due = !d->py.logged_ms || now - d->py.logged_ms >= 60000;
    if (due) d->py.logged_ms = now;
    const json_eval *ev = x->c->ev;
    if (ev->fn)
        ev->fn(ev->ud, x->device, key, err.msg, due);
    else if (!x->eval_err[0])
        snprintf(x->eval_err, sizeof x->eval_err, "%s: useEval of \"%.60s\": %s", key, text, err.msg);
    return TBGW_EINVAL;
}

void tbgw_json_conv_on_eval_error(tbgw_json_conv *c, tbgw_json_eval_report fn, void *ud) {
    if (!c->ev) return;
    c->ev->fn = fn;
    c->ev->ud = ud;
}

/* item: a tree, or a scanned object when the converter reads text (then no "*", useEval, tsField) */
static int add_list(conv_ctx *x, tbgw_converted *r, const dp_list *l, const tbgw_jsrc *item, int telemetry) {
    int64_t base_ts = telemetry ? payload_ts(x, item) : 0;
    int rc = l->all && !item->doc ? add_all(x, r, item->tree, telemetry, base_ts) : 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        dp_cfg *d = &l->items[i];
        tbgw_buf_reset(&x->key);
        if (d->key_re) {
            if (!x->topic || !tbgw_regex_search(d->key_re, x->topic, &x->key)) continue;
        } else if (tbgw_expr_render_src(d->key, item, TBGW_FMT_PY, TBGW_MISSING_FAIL, &x->key)) {
            continue; /* key template refers to a missing field */
        }
        const char *key = tbgw_buf_cstr(&x->key);
        if (!key) return TBGW_ENOMEM;
        if (!*key) continue;
        tbgw_value v;
        int erc = d->use_eval && !item->doc ? eval_value(x, d, item->tree, key, &v)
                                            : tbgw_expr_eval_src(d->value, item, d->cast, &v, &x->scratch);
        if (erc == TBGW_EINVAL && d->use_eval) continue; /* reported; only this key is skipped */
        if (erc == TBGW_ENOENT) {                        /* missing keys are skipped (reference: "None") */
            if (!x->missing[0]) snprintf(x->missing, sizeof x->missing, "%s", tbgw_expr_text(d->value));
            continue;
        }
        if (erc) return erc;
        if (v.type == TBGW_V_STRING && d->cast != TBGW_CAST_STRING && d->cast != TBGW_CAST_RAW &&
            !x->wrong_type[0])
            snprintf(x->wrong_type, sizeof x->wrong_type, "%s: \"%.60s\" is not %s (sent as text)", key,
                     v.u.s,
                     d->cast == TBGW_CAST_INT      ? "an integer"
                     : d->cast == TBGW_CAST_DOUBLE ? "a number"
                                                   : "a boolean");
        x->added++;
        const tbgw_report_strategy *rs = d->has_rs ? &d->rs : NULL;
        rc = telemetry ? tbgw_converted_add_telemetry(r, dp_ts(x, d, item->tree, base_ts), key, &v, rs)
                       : tbgw_converted_add_attribute(r, key, &v, rs);
    }
    return rc;
}

static int convert_item(conv_ctx *x, const tbgw_jsrc *item, tbgw_err *err) {
    const char *name = NULL, *profile = NULL;
    /* the profile's text is in x->text until record_for has copied it (useEval reuses x->text) */
    int rc = tbgw_devinfo_eval_buf(x->c->dev, x->topic, item, &x->name, &x->text, &name, &profile);
    if (rc == TBGW_ENOENT) {
        tbgw_err_set(err, TBGW_EINVAL, "device name is empty (topic %s)", x->topic ? x->topic : "-");
        rc = TBGW_EINVAL;
    }
    tbgw_converted *r = rc ? NULL : record_for(x, name, profile);
    if (!rc && !r) rc = TBGW_ENOMEM;
    x->device = r ? r->device_name : NULL;
    if (!rc) rc = add_list(x, r, &x->c->attrs, item, 0);
    if (!rc) rc = add_list(x, r, &x->c->ts, item, 1);
    return rc;
}

/* payload: a tree (object or list), or a scanned object */
static int convert(const tbgw_json_conv *c, const char *topic, const tbgw_jsrc *src, int64_t recv_ts_ms,
                   tbgw_converted **chain, tbgw_err *err) {
    const json_t *payload = src->tree;
    conv_ctx x = {.c = c, .topic = topic, .recv_ts = recv_ts_ms, .added = 0};
    tbgw_buf_scratch_take(&x.scratch);
    tbgw_buf_scratch_take(&x.key);
    tbgw_buf_scratch_take(&x.name);
    tbgw_buf_scratch_take(&x.text);
    int rc = 0, bad = 0;
    if (!src->doc && json_is_array(payload)) {
        size_t i;
        json_t *item;
        json_array_foreach(payload, i, item) {
            tbgw_jsrc isrc = {.tree = item};
            int irc = json_is_object(item) ? convert_item(&x, &isrc, bad ? NULL : err)
                                           : tbgw_err_set(bad ? NULL : err, TBGW_EINVAL,
                                                          "payload[%zu]: expected a JSON object", i);
            if (irc == TBGW_EINVAL)
                bad = 1; /* skip this element, keep the others */
            else if (irc) {
                rc = irc;
                break;
            }
        }
    } else if (src->doc || json_is_object(payload)) {
        rc = convert_item(&x, src, err);
    } else {
        rc = tbgw_err_set(err, TBGW_EINVAL, "payload: expected a JSON object or a list of objects");
    }
    tbgw_buf_scratch_give(&x.scratch);
    tbgw_buf_scratch_give(&x.key);
    tbgw_buf_scratch_give(&x.name);
    tbgw_buf_scratch_give(&x.text);
    /* keep records with data only; on error nothing of this message is kept */
    int n = 0;
    tbgw_converted *keep = NULL, **kt = &keep;
    while (x.head) {
        tbgw_converted *r = x.head;
        x.head = r->next;
        r->next = NULL;
        if (rc || tbgw_converted_count(r) == 0) {
            tbgw_converted_free(r);
            continue;
        }
        *kt = r;
        kt = &r->next;
        n++;
    }
    if (rc) return rc;
    if (bad && n == 0) return TBGW_EINVAL;
    /* not fatal, but worth a (once per topic) warning: nothing found, or a value of the wrong type */
    if (!bad && err && !err->code) {
        if (x.eval_err[0])
            tbgw_err_set(err, TBGW_EINVAL, "%s", x.eval_err);
        else if (x.added == 0 && x.missing[0])
            tbgw_err_set(err, TBGW_ENOENT, "no configured key found in the payload (e.g. %s)", x.missing);
        else if (x.wrong_type[0])
            tbgw_err_set(err, TBGW_EINVAL, "%s", x.wrong_type);
    }
    tbgw_converted **tail = chain;
    while (*tail) tail = &(*tail)->next;
    *tail = keep;
    return n;
}

int tbgw_json_conv_convert(const tbgw_json_conv *c, const char *topic, const json_t *payload,
                           int64_t recv_ts_ms, tbgw_converted **chain, tbgw_err *err) {
    tbgw_jsrc src = {.tree = payload};
    return convert(c, topic, &src, recv_ts_ms, chain, err);
}

int tbgw_json_conv_convert_text(const tbgw_json_conv *c, const char *topic, const void *text, size_t len,
                                int64_t recv_ts_ms, tbgw_converted **chain, tbgw_err *err) {
    tbgw_jdoc doc;
    if (c->reads_text && !tbgw_jscan(text, len, &doc)) {
        if (doc.tok[0].type == JSON_OBJECT) {
            tbgw_jsrc src = {.doc = &doc, .tok = 0};
            int rc = convert(c, topic, &src, recv_ts_ms, chain, err);
            tbgw_jscan_done(&doc);
            return rc;
        }
        tbgw_jscan_done(&doc); /* a list or a bare value: the tree path */
    }
    json_error_t je;
    json_t *body = tbgw_json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!body)
        return tbgw_err_set(err, TBGW_EPROTO, "invalid JSON at line %d column %d: %s", je.line, je.column,
                            je.text);
    int rc = tbgw_json_conv_convert(c, topic, body, recv_ts_ms, chain, err);
    json_decref(body);
    return rc;
}
