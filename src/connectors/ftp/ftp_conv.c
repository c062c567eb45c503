/* FTP connector: configuration (with the old-format adapter) and the reference's FTPUplinkConverter
 * rules for txt/csv (TABLE, SLICED) and json files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/ftp/ftp_internal.h"
#include "convert/text_slice.h"
#include "util/buf.h"
#include "util/json.h"

/* ---- the old flat format ---- */

static json_t *upgrade_items(const json_t *list, int attributes) {
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e) {
        json_t *c = json_deep_copy(e);
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *to = NULL; /* decided before the old value is replaced (and freed) */
        if (!t)
            to = attributes ? "string" : NULL;
        else if (strcmp(t, "int") == 0)
            to = "integer";
        else if (!attributes && strcmp(t, "str") == 0)
            to = "string";
        if (to) json_object_set_new(c, "type", json_string(to));
        json_array_append_new(out, c);
    }
    return out;
}

json_t *ftp_config_upgrade(const json_t *cfg) {
    if (json_object_get(cfg, "parameters")) return json_deep_copy(cfg);
    json_t *n = json_object(); /* name, id and log settings come from tb_gateway.json, as in the reference */
    json_t *params = json_object();
    json_object_set(params, "host", json_object_get(cfg, "host"));
    json_object_set(params, "port", json_object_get(cfg, "port"));
    json_object_set_new(params, "TLSSupport", json_boolean(json_is_true(json_object_get(cfg, "TLSSupport"))));
    json_t *sec = json_deep_copy(json_object_get(cfg, "security"));
    const char *st = json_string_value(json_object_get(sec, "type"));
    if (sec && (!st || strcmp(st, "basic") != 0)) {
        json_object_del(sec, "username");
        json_object_del(sec, "password");
    }
    if (sec) json_object_set_new(params, "security", sec);
    json_object_set_new(n, "parameters", params);
    json_t *paths = json_array();
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(cfg, "paths"), i, p) {
        json_t *c = json_deep_copy(p);
        const json_t *attrs = json_object_get(p, "attributes");
        if (attrs) {
            json_object_set_new(c, "attributes", upgrade_items(attrs, 1));
            if (json_object_get(p, "timeseries"))
                json_object_set_new(c, "timeseries", upgrade_items(json_object_get(p, "timeseries"), 0));
        }
        json_array_append_new(paths, c);
    }
    json_object_set_new(n, "paths", paths);
    json_t *rm = json_object();
    if (json_object_get(cfg, "attributeUpdates"))
        json_object_set(rm, "attributeUpdates", json_object_get(cfg, "attributeUpdates"));
    if (json_object_get(cfg, "serverSideRpc"))
        json_object_set(rm, "serverSideRpc", json_object_get(cfg, "serverSideRpc"));
    json_object_set_new(n, "requestsMapping", rm);
    return n;
}

/* ---- a path entry ---- */

static int compile(const char *text, const char *path, const char *field, tbgw_expr **out, tbgw_err *err) {
    if (tbgw_expr_compile(text, out, err) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: %s", path, field, why);
    }
    return 0;
}

static int items_parse(const json_t *list, const char *path, ftp_item **out, size_t *n, tbgw_err *err) {
    size_t cnt = json_array_size(list), i;
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out) return TBGW_ENOMEM;
    const json_t *e;
    json_array_foreach(list, i, e) {
        char p[160];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        const char *k = json_string_value(json_object_get(e, "key"));
        const char *v = json_string_value(json_object_get(e, "value"));
        if (!k || !v) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected \"key\" and \"value\" strings", p);
        ftp_item *it = &(*out)[(*n)++];
        it->key_text = strdup(k);
        it->value_text = strdup(v);
        it->cast = tbgw_cast_parse(json_string_value(json_object_get(e, "type")));
        if (compile(k, p, "key", &it->key, err) || compile(v, p, "value", &it->value, err))
            return TBGW_EINVAL;
    }
    return 0;
}

int ftp_path_parse(const json_t *e, const char *path, ftp_path *p, tbgw_err *err) {
    memset(p, 0, sizeof *p);
    const char *pat, *mode, *view, *d;
    double poll, mx;
    int srt;
    if (tbgw_cfg_get_str(e, path, "path", NULL, &pat, err)) return TBGW_EINVAL;
    if (!pat || !*pat) return tbgw_err_set(err, TBGW_EINVAL, "%s.path: expected dir/.../name.ext", path);
    p->pattern = strdup(pat);
    if (tbgw_cfg_get_str(e, path, "readMode", "FULL", &mode, err) ||
        tbgw_cfg_get_str(e, path, "txtFileDataView", "TABLE", &view, err) ||
        tbgw_cfg_get_str(e, path, "delimiter", ",", &d, err) ||
        tbgw_cfg_get_num(e, path, "pollPeriod", 60, 0, 1e7, &poll, err) ||
        tbgw_cfg_get_num(e, path, "maxFileSize", 5, 0, 1e7, &mx, err))
        return TBGW_EINVAL;
    if (strcasecmp(mode, "FULL") == 0)
        p->mode = FTP_FULL;
    else if (strcasecmp(mode, "PARTIAL") == 0)
        p->mode = FTP_PARTIAL;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.readMode: expected FULL or PARTIAL", path);
    if (strcasecmp(view, "TABLE") == 0)
        p->view = FTP_VIEW_TABLE;
    else if (strcasecmp(view, "SLICED") == 0)
        p->view = FTP_VIEW_SLICED;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.txtFileDataView: expected TABLE or SLICED", path);
    p->delimiter = *d ? d[0] : ',';
    p->poll_s = poll < 1 ? 1 : (int)poll;
    p->max_bytes = (long long)(mx * 1024 * 1024);
    /* with_sorting_files, or the example's spelling withSortingFiles (honoured) */
    const char *sk = json_object_get(e, "with_sorting_files") ? "with_sorting_files" : "withSortingFiles";
    if (tbgw_cfg_get_bool(e, path, sk, 1, &srt, err)) return TBGW_EINVAL;
    p->sorting = srt;
    const char *name = json_string_value(json_object_get(e, "devicePatternName"));
    const char *type = json_string_value(json_object_get(e, "devicePatternType"));
    if (!name) return tbgw_err_set(err, TBGW_EINVAL, "%s.devicePatternName: expected a string", path);
    p->name_text = strdup(name);
    p->type_text = strdup(type ? type : "Device");
    if (compile(p->name_text, path, "devicePatternName", &p->name, err) ||
        compile(p->type_text, path, "devicePatternType", &p->type, err))
        return TBGW_EINVAL;
    char ip[160];
    snprintf(ip, sizeof ip, "%s.attributes", path);
    if (items_parse(json_object_get(e, "attributes"), ip, &p->attrs, &p->n_attrs, err)) return TBGW_EINVAL;
    snprintf(ip, sizeof ip, "%s.timeseries", path);
    if (items_parse(json_object_get(e, "timeseries"), ip, &p->ts, &p->n_ts, err)) return TBGW_EINVAL;
    return 0;
}

static void items_free(ftp_item *it, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(it[i].key_text);
        free(it[i].value_text);
        tbgw_expr_free(it[i].key);
        tbgw_expr_free(it[i].value);
    }
    free(it);
}

void ftp_path_free(ftp_path *p) {
    free(p->pattern);
    free(p->name_text);
    free(p->type_text);
    tbgw_expr_free(p->name);
    tbgw_expr_free(p->type);
    items_free(p->attrs, p->n_attrs);
    items_free(p->ts, p->n_ts);
    memset(p, 0, sizeof *p);
}

char ftp_file_kind(const char *name) {
    const char *dot = strrchr(name, '.');
    if (dot && strcasecmp(dot, ".json") == 0) return 'j';
    if (dot && strcasecmp(dot, ".csv") == 0) return 'c';
    return 't';
}

int ftp_glob_match(const char *pat, const char *s) {
    if (!*pat) return !*s;
    if (*pat == '*') {
        for (const char *q = s;; q++) {
            if (ftp_glob_match(pat + 1, q)) return 1;
            if (!*q) return 0;
        }
    }
    return *s && *pat == *s && ftp_glob_match(pat + 1, s + 1);
}

/* ---- lines of a table ---- */

typedef struct row {
    char **names, **cells;
    size_t n;
} row;

static size_t split(char *line, char delim, char **out, size_t max) {
    size_t n = 0;
    char *p = line;
    while (n < max) {
        out[n++] = p;
        char *d = strchr(p, delim);
        if (!d) break;
        *d = 0;
        p = d + 1;
    }
    return n;
}

static int resolve_cell(void *ud, const char *ph, const tbgw_path *path, tbgw_buf *out) {
    (void)path;
    const row *r = ud;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], ph) == 0) return tbgw_buf_puts(out, r->cells[i]);
    return TBGW_ENOENT;
}

/* SLICED: `[a:b]` takes characters of the line's first field; anything else is literal. */
static int sliced(const char *expr, const char *first, tbgw_buf *out) {
    tbgw_buf_reset(out);
    tbgw_slice s;
    int f = tbgw_slice_find(expr, &s);
    if (f < 0) return -1;
    if (!f || expr[0] != '[' || expr[strlen(expr) - 1] != ']') return tbgw_buf_puts(out, expr);
    return tbgw_slice_apply(&s, first, strlen(first), out);
}

static int cell_text(const ftp_path *p, const tbgw_expr *ex, const char *text, const row *r,
                     const char *first, tbgw_buf *out) {
    if (p->view == FTP_VIEW_SLICED && r == NULL) return sliced(text, first, out);
    tbgw_buf_reset(out);
    return tbgw_expr_render_cb(ex, resolve_cell, (void *)r, TBGW_MISSING_FAIL, out);
}

static tbgw_converted *convert_line(const ftp_path *p, const row *r, const char *first) {
    tbgw_buf name, type, k, v;
    tbgw_buf_init(&name), tbgw_buf_init(&type), tbgw_buf_init(&k), tbgw_buf_init(&v);
    tbgw_converted *rec = NULL;
    if (cell_text(p, p->name, p->name_text, r, first, &name) || !name.len ||
        cell_text(p, p->type, p->type_text, r, first, &type))
        goto out;
    /* the timestamp: a timeseries item keyed ts (or timestamp), not sent as a datapoint */
    int64_t ts = tbgw_now_ms();
    for (size_t i = 0; i < p->n_ts; i++) {
        if (strcmp(p->ts[i].key_text, "ts") != 0 && strcmp(p->ts[i].key_text, "timestamp") != 0) continue;
        if (cell_text(p, p->ts[i].value, p->ts[i].value_text, r, first, &v) == 0) {
            char *end;
            long long t = strtoll(tbgw_buf_cstr(&v), &end, 10);
            if (v.len && !*end) ts = t;
        }
    }
    for (int t = 0; t < 2; t++) {
        const ftp_item *list = t ? p->ts : p->attrs;
        size_t n = t ? p->n_ts : p->n_attrs;
        for (size_t i = 0; i < n; i++) {
            if (t && (strcmp(list[i].key_text, "ts") == 0 || strcmp(list[i].key_text, "timestamp") == 0))
                continue;
            if (cell_text(p, list[i].key, list[i].key_text, r, first, &k) ||
                cell_text(p, list[i].value, list[i].value_text, r, first, &v) || !k.len)
                continue;
            if (!rec && !(rec = tbgw_converted_new(tbgw_buf_cstr(&name), tbgw_buf_cstr(&type)))) goto out;
            tbgw_value tv = tbgw_value_string(tbgw_buf_cstr(&v)); /* TABLE and SLICED values stay strings */
            if (t)
                tbgw_converted_add_telemetry(rec, ts, tbgw_buf_cstr(&k), &tv, NULL);
            else
                tbgw_converted_add_attribute(rec, tbgw_buf_cstr(&k), &tv, NULL);
        }
    }
out:
    tbgw_buf_free(&name), tbgw_buf_free(&type), tbgw_buf_free(&k), tbgw_buf_free(&v);
    return rec;
}

#define MAX_COLUMNS  256
#define MERGE_WINDOW 16  /* the devices of the last records a line may be merged into */
#define MERGE_MAX    128 /* datapoints in one merged record at most */

/* Whether merging rec into t would put one key twice into an attribute set or a {"ts","values"} group
 * (lines without a timestamp column share the millisecond they were read in). */
static int clash(const tbgw_converted *t, const tbgw_converted *rec) {
    for (size_t i = 0; i < rec->n_attributes; i++)
        for (size_t j = 0; j < t->n_attributes; j++)
            if (strcmp(rec->attributes[i].key, t->attributes[j].key) == 0) return 1;
    for (size_t i = 0; i < rec->n_telemetry; i++)
        for (size_t j = 0; j < t->n_telemetry; j++)
            if (rec->telemetry[i].ts == t->telemetry[j].ts &&
                strcmp(rec->telemetry[i].key, t->telemetry[j].key) == 0)
                return 1;
    return 0;
}

/* Adds rec's datapoints to t (the same device): one record per device and batch instead of one per
 * line keeps a queued batch small. 0, or -1 when t keeps nothing of rec. */
static int merge_into(tbgw_converted *t, const tbgw_converted *rec) {
    if (tbgw_converted_count(t) + tbgw_converted_count(rec) > MERGE_MAX || clash(t, rec)) return -1;
    size_t nt = t->n_telemetry, na = t->n_attributes;
    for (size_t i = 0; i < rec->n_telemetry; i++) {
        const tbgw_kv *kv = &rec->telemetry[i];
        if (tbgw_converted_add_telemetry(t, kv->ts, kv->key, &kv->v, kv->rs)) goto undo;
    }
    for (size_t i = 0; i < rec->n_attributes; i++) {
        const tbgw_kv *kv = &rec->attributes[i];
        if (tbgw_converted_add_attribute(t, kv->key, &kv->v, kv->rs)) goto undo;
    }
    return 0;
undo: /* out of memory: rec is kept as a record of its own */
    t->n_telemetry = nt;
    t->n_attributes = na;
    return -1;
}

tbgw_converted *ftp_convert_lines(const ftp_path *p, char kind, const char *header, char **lines, size_t n,
                                  size_t from) {
    int table = kind == 'c' || p->view == FTP_VIEW_TABLE;
    char *hcopy = NULL, *names[MAX_COLUMNS];
    size_t nn = 0;
    if (table) {
        if (!header) return NULL;
        hcopy = strdup(header);
        if (!hcopy) return NULL;
        nn = split(hcopy, p->delimiter, names, MAX_COLUMNS);
    }
    tbgw_converted *chain = NULL, **tail = &chain, *recent[MERGE_WINDOW];
    size_t n_recent = 0;
    for (size_t i = from; i < n; i++) {
        if (!lines[i][0]) continue;
        char *copy = strdup(lines[i]);
        if (!copy) break;
        char *cells[MAX_COLUMNS];
        size_t nc = split(copy, p->delimiter, cells, MAX_COLUMNS);
        tbgw_converted *rec;
        if (table) {
            row r = {names, cells, nc < nn ? nc : nn};
            rec = convert_line(p, &r, NULL);
        } else {
            rec = convert_line(p, NULL, cells[0]);
        }
        free(copy);
        if (!rec) continue;
        tbgw_converted *t = NULL; /* the newest record of the same device */
        for (size_t k = n_recent; k-- > 0 && !t;)
            if (strcmp(recent[k]->device_name, rec->device_name) == 0 &&
                strcmp(recent[k]->device_type, rec->device_type) == 0)
                t = recent[k];
        if (t && merge_into(t, rec) == 0) {
            tbgw_converted_free(rec);
            continue;
        }
        *tail = rec;
        tail = &rec->next;
        if (n_recent == MERGE_WINDOW) memmove(recent, recent + 1, --n_recent * sizeof *recent);
        recent[n_recent++] = rec;
    }
    free(hcopy);
    return chain;
}

/* ---- json ---- */

static tbgw_converted *convert_object(const ftp_path *p, const json_t *o) {
    tbgw_buf name, type, k, scratch;
    tbgw_buf_init(&name), tbgw_buf_init(&type), tbgw_buf_init(&k), tbgw_buf_init(&scratch);
    tbgw_converted *rec = NULL;
    if (tbgw_expr_render(p->name, o, TBGW_FMT_PY, TBGW_MISSING_FAIL, &name) || !name.len ||
        tbgw_expr_render(p->type, o, TBGW_FMT_PY, TBGW_MISSING_NONE, &type))
        goto out;
    const json_t *jts = json_object_get(o, "ts");
    if (!jts) jts = json_object_get(o, "timestamp");
    int64_t ts = json_is_integer(jts) ? (int64_t)json_integer_value(jts) : tbgw_now_ms();
    for (int t = 0; t < 2; t++) {
        const ftp_item *list = t ? p->ts : p->attrs;
        size_t n = t ? p->n_ts : p->n_attrs;
        for (size_t i = 0; i < n; i++) {
            tbgw_buf_reset(&k);
            tbgw_buf_reset(&scratch);
            tbgw_value v;
            if (tbgw_expr_render(list[i].key, o, TBGW_FMT_PY, TBGW_MISSING_FAIL, &k) || !k.len ||
                tbgw_expr_eval(list[i].value, o, list[i].cast, &v, &scratch) != 0)
                continue;
            if (!rec && !(rec = tbgw_converted_new(tbgw_buf_cstr(&name), tbgw_buf_cstr(&type)))) goto out;
            if (t)
                tbgw_converted_add_telemetry(rec, ts, tbgw_buf_cstr(&k), &v, NULL);
            else
                tbgw_converted_add_attribute(rec, tbgw_buf_cstr(&k), &v, NULL);
        }
    }
out:
    tbgw_buf_free(&name), tbgw_buf_free(&type), tbgw_buf_free(&k), tbgw_buf_free(&scratch);
    return rec;
}

tbgw_converted *ftp_convert_json(const ftp_path *p, const char *text, size_t len, json_error_t *jerr) {
    json_error_t je;
    json_t *j = tbgw_json_loadb(text, len, 0, &je);
    if (jerr) *jerr = j ? (json_error_t){0} : je;
    if (!j) return NULL;
    tbgw_converted *chain = NULL, **tail = &chain;
    if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) {
            tbgw_converted *rec = json_is_object(e) ? convert_object(p, e) : NULL;
            if (rec) {
                *tail = rec;
                tail = &rec->next;
            }
        }
    } else if (json_is_object(j)) {
        chain = convert_object(p, j);
    }
    json_decref(j);
    return chain;
}

/* ---- streamed text files ---- */

void ftp_stream_init(ftp_stream *s, const ftp_path *p, char kind, int last_line, int need_header,
                     const char *header, ftp_emit_fn emit, void *ud) {
    memset(s, 0, sizeof *s);
    s->p = p;
    s->kind = kind;
    s->table = kind == 'c' || p->view == FTP_VIEW_TABLE;
    s->last_line = last_line;
    s->need_header = s->table && need_header;
    s->header = header ? strdup(header) : NULL;
    tbgw_buf_init(&s->pend);
    tbgw_buf_init(&s->scratch);
    s->emit = emit;
    s->ud = ud;
}

void ftp_stream_free(ftp_stream *s) {
    free(s->header);
    free(s->lines);
    tbgw_buf_free(&s->pend);
    tbgw_buf_free(&s->scratch);
    memset(s, 0, sizeof *s);
}

/* Keeps the last FTP_STREAM_TAIL bytes of what the position moves over. */
static void keep_tail(ftp_stream *s, const char *p, size_t n) {
    if (n >= FTP_STREAM_TAIL) {
        memcpy(s->tail, p + n - FTP_STREAM_TAIL, FTP_STREAM_TAIL);
        s->tail_len = FTP_STREAM_TAIL;
        return;
    }
    size_t keep = s->tail_len + n > FTP_STREAM_TAIL ? FTP_STREAM_TAIL - n : s->tail_len;
    memmove(s->tail, s->tail + s->tail_len - keep, keep);
    memcpy(s->tail + keep, p, n);
    s->tail_len = keep + n;
}

static void consume(ftp_stream *s, size_t n) {
    keep_tail(s, s->pend.p, n);
    memmove(s->pend.p, s->pend.p + n, s->pend.len - n);
    s->pend.len -= n;
    s->consumed += (long long)n;
}

static size_t trim_cr(const char *line, size_t n) {
    return n && line[n - 1] == '\r' ? n - 1 : n;
}

/* The first complete line (or, when whole, the pending text) becomes the table's header. */
static int take_header(ftp_stream *s, int whole) {
    char *nl = s->pend.len ? memchr(s->pend.p, '\n', s->pend.len) : NULL;
    if (!nl && !(whole && s->pend.len)) return 0;
    size_t n = nl ? (size_t)(nl - s->pend.p) : s->pend.len;
    char *h = malloc(n + 1);
    if (!h) return TBGW_ENOMEM;
    size_t k = trim_cr(s->pend.p, n);
    memcpy(h, s->pend.p, k);
    h[k] = 0;
    free(s->header);
    s->header = h;
    s->need_header = 0;
    consume(s, nl ? n + 1 : n);
    return 0;
}

/* Converts the pending complete lines (all pending bytes when whole) and hands them on. */
static int convert_pending(ftp_stream *s, int whole) {
    if (s->need_header) {
        int rc = take_header(s, whole);
        if (rc || s->need_header) return rc;
    }
    if (!s->pend.len) return 0;
    size_t upto = s->pend.len;
    if (!whole) {
        const char *nl = memrchr(s->pend.p, '\n', s->pend.len);
        if (!nl) return 0;
        upto = (size_t)(nl - s->pend.p) + 1;
    }
    tbgw_buf_reset(&s->scratch);
    if (tbgw_buf_append(&s->scratch, s->pend.p, upto)) return TBGW_ENOMEM;
    size_t n = 0;
    for (char *p = s->scratch.p, *end = p + upto; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (n == s->lines_cap) {
            size_t cap = s->lines_cap ? s->lines_cap * 2 : 256;
            char **g = realloc(s->lines, cap * sizeof *g);
            if (!g) return TBGW_ENOMEM;
            s->lines = g;
            s->lines_cap = cap;
        }
        p[trim_cr(p, (size_t)(stop - p))] = 0;
        s->lines[n++] = p;
        p = stop + 1;
    }
    tbgw_converted *chain =
        !s->table || s->header ? ftp_convert_lines(s->p, s->kind, s->header, s->lines, n, 0) : NULL;
    if (chain && s->emit(s->ud, chain) == TBGW_EAGAIN) return TBGW_EAGAIN;
    s->rows += n;
    consume(s, upto);
    return 0;
}

int ftp_stream_feed(ftp_stream *s, const char *data, size_t n) {
    if (s->skipping) { /* the rest of an over-long line */
        const char *nl = memchr(data, '\n', n);
        size_t k = nl ? (size_t)(nl - data) + 1 : n;
        keep_tail(s, data, k);
        s->consumed += (long long)k;
        data += k;
        n -= k;
        if (!nl) return 0;
        s->skipping = 0;
    }
    if (tbgw_buf_append(&s->pend, data, n)) return TBGW_ENOMEM;
    int rc = s->pend.len >= FTP_STREAM_BATCH || s->need_header ? convert_pending(s, 0) : 0;
    if (s->pend.len > FTP_STREAM_MAX_LINE && !memchr(s->pend.p, '\n', s->pend.len)) {
        s->long_lines++;
        s->long_at = s->consumed;
        s->skipping = 1;
        consume(s, s->pend.len);
    }
    return rc;
}

int ftp_stream_flush(ftp_stream *s, int final) {
    return convert_pending(s, final && s->last_line);
}
