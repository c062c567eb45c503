/* `${...}` templates, the jsonpath-like path language and type casts (spec §5.2). */
#include "convert/expr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/json.h"

typedef enum step_kind { STEP_KEY, STEP_INDEX, STEP_WILD, STEP_DESC } step_kind;

typedef struct path_step {
    step_kind kind;
    char *name; /* KEY, DESC */
    long index; /* INDEX; negative counts from the end */
} path_step;

struct tbgw_path {
    char *text;
    char *first_token; /* first whitespace-separated token, tried as a top-level key */
    size_t first_len;
    path_step *steps;
    size_t n_steps;
};

typedef struct expr_part {
    char *lit;       /* literal text (NULL for a placeholder) */
    char *ph;        /* placeholder text inside ${} */
    tbgw_path *path; /* compiled placeholder (NULL for literal) */
} expr_part;

struct tbgw_expr {
    char *text;
    expr_part *parts;
    size_t n_parts, n_ph;
};

/* ---------------------------------------------------------------- paths */

void tbgw_path_free(tbgw_path *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_steps; i++) free(p->steps[i].name);
    free(p->steps);
    free(p->text);
    free(p->first_token);
    free(p);
}

static int push_step(tbgw_path *p, step_kind kind, const char *name, size_t name_len, long index) {
    path_step *ns = realloc(p->steps, (p->n_steps + 1) * sizeof *ns);
    if (!ns) return TBGW_ENOMEM;
    p->steps = ns;
    path_step *s = &ns[p->n_steps];
    s->kind = kind;
    s->index = index;
    s->name = NULL;
    if (name) {
        s->name = strndup(name, name_len);
        if (!s->name) return TBGW_ENOMEM;
    }
    p->n_steps++;
    return 0;
}

/* Reads one name at *pos (quoted or bare, up to '.' or '['). */
static int parse_name(tbgw_path *p, const char *t, size_t *pos, step_kind kind, tbgw_err *err) {
    size_t i = *pos;
    if (t[i] == '"' || t[i] == '\'') {
        char q = t[i];
        const char *end = strchr(t + i + 1, q);
        if (!end) return tbgw_err_set(err, TBGW_EINVAL, "unterminated quote in path \"%s\"", t);
        int rc = push_step(p, kind, t + i + 1, (size_t)(end - (t + i + 1)), 0);
        *pos = (size_t)(end - t) + 1;
        return rc;
    }
    size_t start = i;
    while (t[i] && t[i] != '.' && t[i] != '[') i++;
    if (i == start) return tbgw_err_set(err, TBGW_EINVAL, "empty key in path \"%s\"", t);
    *pos = i;
    if (i - start == 1 && t[start] == '*' && kind == STEP_KEY) return push_step(p, STEP_WILD, NULL, 0, 0);
    return push_step(p, kind, t + start, i - start, 0);
}

static int parse_bracket(tbgw_path *p, const char *t, size_t *pos, tbgw_err *err) {
    size_t i = *pos + 1; /* after '[' */
    const char *close = strchr(t + i, ']');
    if (!close) return tbgw_err_set(err, TBGW_EINVAL, "missing ']' in path \"%s\"", t);
    size_t end = (size_t)(close - t);
    int rc;
    if (end - i == 1 && (t[i] == '*' || t[i] == ':')) { /* [*] and the whole slice [:] */
        rc = push_step(p, STEP_WILD, NULL, 0, 0);
    } else if (t[i] == '"' || t[i] == '\'') {
        if (end - i < 2 || t[end - 1] != t[i])
            return tbgw_err_set(err, TBGW_EINVAL, "bad quoted key in path \"%s\"", t);
        rc = push_step(p, STEP_KEY, t + i + 1, end - i - 2, 0);
    } else {
        char *ep;
        errno = 0;
        long v = strtol(t + i, &ep, 10);
        if (ep == t + i || ep != close || errno)
            return tbgw_err_set(err, TBGW_EINVAL, "bad index in path \"%s\": expected a number or *", t);
        rc = push_step(p, STEP_INDEX, NULL, 0, v);
    }
    *pos = end + 1;
    return rc;
}

int tbgw_path_compile(const char *text, tbgw_path **out, tbgw_err *err) {
    *out = NULL;
    tbgw_path *p = calloc(1, sizeof *p);
    if (!p) return TBGW_ENOMEM;
    p->text = strdup(text);
    const char *s = text;
    while (isspace((unsigned char)*s)) s++;
    size_t tl = 0;
    while (s[tl] && !isspace((unsigned char)s[tl])) tl++;
    p->first_token = strndup(s, tl);
    p->first_len = tl;
    if (!p->text || !p->first_token) {
        tbgw_path_free(p);
        return TBGW_ENOMEM;
    }
    int rc = 0;
    size_t i = 0;
    if (text[0] == '$' && (text[1] == 0 || text[1] == '.' || text[1] == '[')) {
        i = 1;
        if (text[1] == '.' && text[2] != '.') i = 2;
    }
    if (!text[i] && i == 0) rc = tbgw_err_set(err, TBGW_EINVAL, "empty expression ${}");
    while (!rc && text[i]) {
        if (text[i] == '[') {
            rc = parse_bracket(p, text, &i, err);
        } else if (text[i] == '.' && text[i + 1] == '.') {
            i += 2;
            rc = parse_name(p, text, &i, STEP_DESC, err);
        } else {
            if (text[i] == '.') {
                if (p->n_steps == 0 && i > 1) {
                    rc = tbgw_err_set(err, TBGW_EINVAL, "empty key in path \"%s\"", text);
                    break;
                }
                i++;
            }
            rc = parse_name(p, text, &i, STEP_KEY, err);
        }
    }
    if (rc) {
        tbgw_path_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static const json_t *match_from(const tbgw_path *p, size_t i, const json_t *node, int depth);

static const json_t *match_children(const tbgw_path *p, size_t i, const json_t *node, int depth) {
    const json_t *r = NULL;
    if (json_is_object(node)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)node, k, v) {
            if ((r = match_from(p, i, v, depth + 1))) return r;
        }
    } else if (json_is_array(node)) {
        size_t idx;
        json_t *v;
        json_array_foreach(node, idx, v) {
            if ((r = match_from(p, i, v, depth + 1))) return r;
        }
    }
    return NULL;
}

static const json_t *desc_search(const tbgw_path *p, size_t i, const json_t *node, int depth) {
    if (depth > 256) return NULL;
    const path_step *s = &p->steps[i];
    if (json_is_object(node)) {
        const json_t *v = json_object_get(node, s->name);
        const json_t *r;
        if (v && (r = match_from(p, i + 1, v, depth + 1))) return r;
    }
    if (json_is_object(node)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)node, k, v) {
            const json_t *r = desc_search(p, i, v, depth + 1);
            if (r) return r;
        }
    } else if (json_is_array(node)) {
        size_t idx;
        json_t *v;
        json_array_foreach(node, idx, v) {
            const json_t *r = desc_search(p, i, v, depth + 1);
            if (r) return r;
        }
    }
    return NULL;
}

static const json_t *match_from(const tbgw_path *p, size_t i, const json_t *node, int depth) {
    if (!node || depth > 256) return NULL;
    if (i == p->n_steps) return node;
    const path_step *s = &p->steps[i];
    switch (s->kind) {
    case STEP_KEY:
        if (!json_is_object(node)) return NULL;
        return match_from(p, i + 1, json_object_get(node, s->name), depth + 1);
    case STEP_INDEX: {
        if (!json_is_array(node)) return NULL;
        long n = (long)json_array_size(node), idx = s->index < 0 ? n + s->index : s->index;
        if (idx < 0 || idx >= n) return NULL;
        return match_from(p, i + 1, json_array_get(node, (size_t)idx), depth + 1);
    }
    case STEP_WILD:
        return match_children(p, i + 1, node, depth);
    case STEP_DESC:
        return desc_search(p, i, node, depth);
    }
    return NULL;
}

const json_t *tbgw_path_get(const tbgw_path *p, const json_t *body) {
    if (!p || !body) return NULL;
    if (json_is_object(body) && p->first_token[0]) {
        const json_t *v = json_object_get(body, p->first_token);
        if (v) return v;
    }
    return match_from(p, 0, body, 0);
}

const char *tbgw_path_last_key(const tbgw_path *p) {
    for (size_t i = p->n_steps; i-- > 0;)
        if (p->steps[i].name) return p->steps[i].name;
    return NULL;
}

static const json_t *find_key_rec(const json_t *body, const char *key, int depth) {
    if (depth > 256) return NULL;
    if (json_is_object(body)) {
        const json_t *v = json_object_get(body, key);
        if (v) return v;
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)body, k, c) {
            const json_t *r = find_key_rec(c, key, depth + 1);
            if (r) return r;
        }
    } else if (json_is_array(body)) {
        size_t i;
        json_t *c;
        json_array_foreach(body, i, c) {
            const json_t *r = find_key_rec(c, key, depth + 1);
            if (r) return r;
        }
    }
    return NULL;
}

const json_t *tbgw_json_find_key(const json_t *body, const char *key) {
    return key ? find_key_rec(body, key, 0) : NULL;
}

/* ---------------------------------------------------------------- templates */

void tbgw_expr_free(tbgw_expr *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n_parts; i++) {
        free(e->parts[i].lit);
        free(e->parts[i].ph);
        tbgw_path_free(e->parts[i].path);
    }
    free(e->parts);
    free(e->text);
    free(e);
}

static int push_part(tbgw_expr *e, const char *lit, size_t n, int is_ph, tbgw_err *err) {
    expr_part *np = realloc(e->parts, (e->n_parts + 1) * sizeof *np);
    if (!np) return TBGW_ENOMEM;
    e->parts = np;
    expr_part *pt = &np[e->n_parts];
    memset(pt, 0, sizeof *pt);
    char *s = strndup(lit, n);
    if (!s) return TBGW_ENOMEM;
    e->n_parts++;
    if (!is_ph) {
        pt->lit = s;
        return 0;
    }
    pt->ph = s;
    e->n_ph++;
    return tbgw_path_compile(s, &pt->path, err);
}

int tbgw_expr_compile(const char *text, tbgw_expr **out, tbgw_err *err) {
    *out = NULL;
    if (!text) return tbgw_err_set(err, TBGW_EINVAL, "expression missing");
    tbgw_expr *e = calloc(1, sizeof *e);
    if (!e || !(e->text = strdup(text))) {
        free(e);
        return TBGW_ENOMEM;
    }
    const char *s = text;
    int rc = 0;
    while (*s && !rc) {
        const char *open = strstr(s, "${");
        const char *close = open ? strchr(open + 2, '}') : NULL;
        if (!open || !close) {
            rc = push_part(e, s, strlen(s), 0, err);
            break;
        }
        if (open > s) rc = push_part(e, s, (size_t)(open - s), 0, err);
        if (!rc) rc = push_part(e, open + 2, (size_t)(close - open - 2), 1, err);
        s = close + 1;
    }
    if (rc) {
        tbgw_expr_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

const char *tbgw_expr_text(const tbgw_expr *e) {
    return e->text;
}
size_t tbgw_expr_placeholders(const tbgw_expr *e) {
    return e->n_ph;
}
const char *tbgw_expr_placeholder(const tbgw_expr *e, size_t i) {
    for (size_t k = 0; k < e->n_parts; k++)
        if (e->parts[k].ph && i-- == 0) return e->parts[k].ph;
    return NULL;
}
int tbgw_expr_is_constant(const tbgw_expr *e) {
    return e->n_ph == 0;
}
int tbgw_expr_is_single(const tbgw_expr *e) {
    return e->n_parts == 1 && e->n_ph == 1;
}

int tbgw_fmt_jval(tbgw_buf *out, const tbgw_jval *v, tbgw_fmt fmt) {
    switch (v->type) {
    case JSON_STRING:
        if (v->node) return tbgw_buf_append(out, v->s, v->n); /* Python writes an int's digits too */
        if (fmt == TBGW_FMT_JSON) return tbgw_buf_json_strn(out, v->s, v->n);
        return tbgw_buf_append(out, v->s, v->n);
    case JSON_INTEGER:
        return tbgw_buf_i64(out, v->i);
    case JSON_REAL: {
        if (fmt == TBGW_FMT_PY) {
            char t[TBGW_DOUBLE_MAX];
            return tbgw_buf_append(out, t, tbgw_fmt_double(t, v->d));
        }
        tbgw_value dv = tbgw_value_double(v->d);
        return tbgw_buf_json_value(out, &dv);
    }
    case JSON_TRUE:
        return tbgw_buf_puts(out, fmt == TBGW_FMT_PY ? "True" : "true");
    case JSON_FALSE:
        return tbgw_buf_puts(out, fmt == TBGW_FMT_PY ? "False" : "false");
    case JSON_NULL:
        return tbgw_buf_puts(out, fmt == TBGW_FMT_PY ? "None" : "null");
    default:
        return tbgw_buf_json(out, v->j, 0);
    }
}

int tbgw_fmt_json(tbgw_buf *out, const json_t *v, tbgw_fmt fmt) {
    tbgw_jval jv;
    tbgw_jval_of(v, &jv);
    return tbgw_fmt_jval(out, &jv, fmt);
}

/* ---------------------------------------------------------------- sources */

int tbgw_path_is_plain(const tbgw_path *p) {
    if (p->n_steps > 200) return 0;
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].kind != STEP_KEY && p->steps[i].kind != STEP_INDEX) return 0;
    return 1;
}

int tbgw_expr_is_plain(const tbgw_expr *e) {
    for (size_t i = 0; i < e->n_parts; i++)
        if (e->parts[i].path && !tbgw_path_is_plain(e->parts[i].path)) return 0;
    return 1;
}

/* tbgw_path_get on tokens (plain paths only): the token, or -1 */
static long path_tok(const tbgw_path *p, const tbgw_jdoc *d, size_t root) {
    if (d->tok[root].type == JSON_OBJECT && p->first_token[0]) {
        long v = tbgw_jdoc_member(d, root, p->first_token, p->first_len);
        if (v >= 0) return v;
    }
    long t = (long)root;
    for (size_t i = 0; i < p->n_steps && t >= 0; i++) {
        const path_step *s = &p->steps[i];
        if (s->kind == STEP_KEY)
            t = tbgw_jdoc_member(d, (size_t)t, s->name, strlen(s->name));
        else if (s->kind == STEP_INDEX)
            t = tbgw_jdoc_element(d, (size_t)t, s->index);
        else
            return -1;
    }
    return t;
}

int tbgw_path_get_src(const tbgw_path *p, const tbgw_jsrc *src, tbgw_jval *out) {
    if (!src->doc) return tbgw_jval_of(tbgw_path_get(p, src->tree), out);
    long t = path_tok(p, src->doc, src->tok);
    if (t < 0) {
        memset(out, 0, sizeof *out);
        return TBGW_ENOENT;
    }
    return tbgw_jdoc_val(src->doc, (size_t)t, out);
}

int tbgw_jsrc_member(const tbgw_jsrc *src, const char *key, tbgw_jval *out) {
    if (!src->doc)
        return tbgw_jval_of(json_is_object(src->tree) ? json_object_get(src->tree, key) : NULL, out);
    long t = tbgw_jdoc_member(src->doc, src->tok, key, strlen(key));
    if (t < 0) {
        memset(out, 0, sizeof *out);
        return TBGW_ENOENT;
    }
    return tbgw_jdoc_val(src->doc, (size_t)t, out);
}

int tbgw_expr_render_src(const tbgw_expr *e, const tbgw_jsrc *src, tbgw_fmt fmt, tbgw_missing missing,
                         tbgw_buf *out) {
    int rc = 0;
    for (size_t i = 0; i < e->n_parts && !rc; i++) {
        const expr_part *pt = &e->parts[i];
        if (pt->lit) {
            rc = tbgw_buf_puts(out, pt->lit);
            continue;
        }
        tbgw_jval v;
        int found = tbgw_path_get_src(pt->path, src, &v);
        if (found == TBGW_ENOMEM) return found;
        if (found == 0 && v.type != JSON_NULL) {
            rc = tbgw_fmt_jval(out, &v, fmt);
        } else if (missing == TBGW_MISSING_KEEP) {
            rc = tbgw_buf_printf(out, "${%s}", pt->ph);
        } else if (missing == TBGW_MISSING_NONE) {
            rc = tbgw_buf_puts(out, fmt == TBGW_FMT_PY ? "None" : "null");
        } else {
            return TBGW_ENOENT;
        }
    }
    return out->oom ? TBGW_ENOMEM : rc;
}

int tbgw_expr_render(const tbgw_expr *e, const json_t *body, tbgw_fmt fmt, tbgw_missing missing,
                     tbgw_buf *out) {
    tbgw_jsrc src = {.tree = body};
    return tbgw_expr_render_src(e, &src, fmt, missing, out);
}

int tbgw_expr_render_cb(const tbgw_expr *e, tbgw_expr_resolve_fn fn, void *ud, tbgw_missing missing,
                        tbgw_buf *out) {
    int rc = 0;
    for (size_t i = 0; i < e->n_parts && !rc; i++) {
        const expr_part *pt = &e->parts[i];
        if (pt->lit) {
            rc = tbgw_buf_puts(out, pt->lit);
            continue;
        }
        size_t mark = out->len;
        rc = fn(ud, pt->ph, pt->path, out);
        if (rc != TBGW_ENOENT) continue;
        out->len = mark;
        if (missing == TBGW_MISSING_KEEP)
            rc = tbgw_buf_printf(out, "${%s}", pt->ph);
        else if (missing == TBGW_MISSING_NONE)
            rc = tbgw_buf_puts(out, "null");
        else
            return TBGW_ENOENT;
    }
    return out->oom ? TBGW_ENOMEM : rc;
}

/* ---------------------------------------------------------------- casts */

tbgw_cast tbgw_cast_parse(const char *type) {
    if (!type) return TBGW_CAST_STRING;
    char low[32];
    size_t n = strlen(type);
    if (n >= sizeof low) return TBGW_CAST_STRING;
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)type[i]);
    if (strstr(low, "int") || strstr(low, "long")) return TBGW_CAST_INT;
    if (!strcmp(low, "double") || !strcmp(low, "float")) return TBGW_CAST_DOUBLE;
    if (strstr(low, "bool")) return TBGW_CAST_BOOL;
    if (!strcmp(low, "raw")) return TBGW_CAST_RAW;
    return TBGW_CAST_STRING;
}

int tbgw_parse_bool(const char *s) {
    static const char *const yes[] = {"y", "yes", "t", "true", "on", "1"};
    static const char *const no[] = {"n", "no", "f", "false", "off", "0"};
    for (size_t i = 0; i < 6; i++) {
        if (!strcasecmp(s, yes[i])) return 1;
        if (!strcasecmp(s, no[i])) return 0;
    }
    return -1;
}

/* Python float(): surrounding whitespace allowed, the whole rest must be a number. */
static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

static int double_to_int(double d, tbgw_value *out) {
    double t = trunc(d);
    if (!isfinite(t) || t < -9223372036854775808.0 || t >= 9223372036854775808.0) return -1;
    *out = tbgw_value_int((int64_t)t);
    return 0;
}

/* Python int() of a digit string beyond int64: exact (TBGW_V_UINT, or TBGW_V_NUMBER keeping the
 * digits). Surrounding whitespace is allowed; the value points into s. */
static int big_int_text(const char *s, tbgw_value *out) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n])) n++;
    for (size_t k = n; s[k]; k++)
        if (!isspace((unsigned char)s[k])) return -1;
    int64_t i;
    uint64_t u;
    int kind = tbgw_int_text(s, n, &i, &u);
    if (kind == 1) {
        *out = tbgw_value_uint(u);
        return 0;
    }
    if (kind != 2 || s[s[0] == '-'] == '0') return -1; /* no leading zeros in JSON */
    out->type = TBGW_V_NUMBER;
    out->u.s = s; /* trailing whitespace is JSON whitespace */
    return 0;
}

/* A number node (a number jansson cannot hold) cast like the reference casts a Python int/float. */
static int cast_number_node(const char *num, size_t n, tbgw_cast cast, tbgw_value *out) {
    int64_t i;
    uint64_t u;
    int kind = tbgw_int_text(num, n, &i, &u);
    double d = strtod(num, NULL);
    switch (cast) {
    case TBGW_CAST_RAW:
    case TBGW_CAST_INT:
        if (kind == 1) {
            *out = tbgw_value_uint(u);
            return 0;
        }
        if (kind == 2 || cast == TBGW_CAST_RAW) {
            out->type = TBGW_V_NUMBER;
            out->u.s = num;
            return 0;
        }
        break;
    case TBGW_CAST_DOUBLE:
        if (isfinite(d)) {
            *out = tbgw_value_double(d);
            return 0;
        }
        break;
    case TBGW_CAST_BOOL:
        *out = tbgw_value_bool(d != 0);
        return 0;
    default:
        break;
    }
    *out = tbgw_value_string(num);
    return 0;
}

int tbgw_cast_text(const char *s, tbgw_cast cast, tbgw_value *out) {
    double d;
    switch (cast) {
    case TBGW_CAST_INT: {
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (end != s && !errno) {
            while (isspace((unsigned char)*end)) end++;
            if (!*end) {
                *out = tbgw_value_int(ll);
                return 0;
            }
        }
        if (errno == ERANGE && !big_int_text(s, out)) return 0;
        if (!parse_double(s, &d) && !double_to_int(d, out)) return 0;
        break;
    }
    case TBGW_CAST_DOUBLE:
        if (!parse_double(s, &d)) {
            *out = tbgw_value_double(d);
            return 0;
        }
        break;
    case TBGW_CAST_BOOL: {
        int b = tbgw_parse_bool(s);
        if (b >= 0) {
            *out = tbgw_value_bool(b);
            return 0;
        }
        break;
    }
    default:
        break;
    }
    *out = tbgw_value_string(s);
    return 0;
}

int tbgw_cast_jval(const tbgw_jval *v, tbgw_cast cast, tbgw_value *out, tbgw_buf *scratch) {
    tbgw_buf_reset(scratch);
    if (!v || v->type == JSON_NULL) return TBGW_ENOENT;
    if (v->node) return cast_number_node(v->s, v->n, cast, out);
    int is_num = v->type == JSON_INTEGER || v->type == JSON_REAL;
    int is_bool = v->type == JSON_TRUE || v->type == JSON_FALSE;
    double d = is_num ? v->d : 0;
    switch (cast) {
    case TBGW_CAST_RAW:
        if (v->type == JSON_OBJECT || v->type == JSON_ARRAY) {
            if (tbgw_fmt_jval(scratch, v, TBGW_FMT_JSON) || !tbgw_buf_cstr(scratch)) return TBGW_ENOMEM;
            out->type = TBGW_V_JSON;
            out->u.s = scratch->p;
            return 0;
        }
        if (is_bool)
            *out = tbgw_value_bool(v->type == JSON_TRUE);
        else if (v->type == JSON_INTEGER)
            *out = tbgw_value_int(v->i);
        else if (is_num)
            *out = tbgw_value_double(d);
        else
            *out = tbgw_value_string(v->s);
        return isfinite(d) ? 0 : TBGW_ENOENT;
    case TBGW_CAST_INT:
        if (v->type == JSON_INTEGER) {
            *out = tbgw_value_int(v->i);
            return 0;
        }
        if (is_num && !double_to_int(d, out)) return 0;
        if (is_bool) {
            *out = tbgw_value_int(v->type == JSON_TRUE);
            return 0;
        }
        break;
    case TBGW_CAST_DOUBLE:
        if (is_num && isfinite(d)) {
            *out = tbgw_value_double(d);
            return 0;
        }
        if (is_bool) {
            *out = tbgw_value_double(v->type == JSON_TRUE ? 1.0 : 0.0);
            return 0;
        }
        break;
    case TBGW_CAST_BOOL:
        if (is_bool || is_num) {
            *out = tbgw_value_bool(is_bool ? v->type == JSON_TRUE : d != 0);
            return 0;
        }
        break;
    default:
        break;
    }
    if (v->type == JSON_STRING) return tbgw_cast_text(v->s, cast, out);
    /* everything else becomes its text (a failed cast yields a string) */
    if (tbgw_fmt_jval(scratch, v, TBGW_FMT_PY) || !tbgw_buf_cstr(scratch)) return TBGW_ENOMEM;
    *out = tbgw_value_string(scratch->p);
    return 0;
}

int tbgw_cast_json(const json_t *v, tbgw_cast cast, tbgw_value *out, tbgw_buf *scratch) {
    tbgw_jval jv;
    return tbgw_cast_jval(tbgw_jval_of(v, &jv) ? NULL : &jv, cast, out, scratch);
}

int tbgw_expr_eval_src(const tbgw_expr *e, const tbgw_jsrc *src, tbgw_cast cast, tbgw_value *out,
                       tbgw_buf *scratch) {
    tbgw_buf_reset(scratch);
    if (tbgw_expr_is_single(e)) {
        tbgw_jval v;
        int found = tbgw_path_get_src(e->parts[0].path, src, &v);
        if (found == TBGW_ENOMEM) return found;
        return tbgw_cast_jval(found ? NULL : &v, cast, out, scratch);
    }
    int rc = tbgw_expr_render_src(e, src, TBGW_FMT_PY, TBGW_MISSING_FAIL, scratch);
    if (rc) return rc;
    const char *s = tbgw_buf_cstr(scratch);
    if (!s) return TBGW_ENOMEM;
    return tbgw_cast_text(s, cast == TBGW_CAST_RAW ? TBGW_CAST_STRING : cast, out);
}

int tbgw_expr_eval(const tbgw_expr *e, const json_t *body, tbgw_cast cast, tbgw_value *out,
                   tbgw_buf *scratch) {
    tbgw_jsrc src = {.tree = body};
    return tbgw_expr_eval_src(e, &src, cast, out, scratch);
}
