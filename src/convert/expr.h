/* `${...}` expressions (spec §5.2): templates mixing literal text and placeholders, resolved against
 * a JSON body with a jsonpath-like path language, and the type casts converters apply.
 *
 * Path language (a subset of jsonpath-rw): `a.b[0].c`, `a[*].b` (or `a[:].b`), `*`, `a..b` (descendant), `$`
 * root, quoted segments `"a.b"` / `'a b'`, negative indexes count from the end. A segment may contain spaces
 * (`${device name}`, `${a.b c}`). Before the path is evaluated, the first whitespace-separated token of the
 * placeholder is looked up as a top-level key (reference behaviour). */
#ifndef TBGW_CONVERT_EXPR_H
#define TBGW_CONVERT_EXPR_H

#include <jansson.h>
#include <stddef.h>
#include <tbgw/data.h>
#include <tbgw/err.h>
#include "util/buf.h"
#include "util/jscan.h"

typedef struct tbgw_path tbgw_path;
typedef struct tbgw_expr tbgw_expr;

/* Compiles a path (the text inside `${}`). */
int tbgw_path_compile(const char *text, tbgw_path **out, tbgw_err *err);
void tbgw_path_free(tbgw_path *p);
/* First match in document order, borrowed from body; NULL when nothing matches. */
const json_t *tbgw_path_get(const tbgw_path *p, const json_t *body);
/* The last named segment of the path ("c" for "a.b[0].c"), or NULL. */
const char *tbgw_path_last_key(const tbgw_path *p);
/* Depth-first search of a key anywhere in body (objects and arrays). */
const json_t *tbgw_json_find_key(const json_t *body, const char *key);

/* Compiles a template. A template without `${` is a constant. */
int tbgw_expr_compile(const char *text, tbgw_expr **out, tbgw_err *err);
void tbgw_expr_free(tbgw_expr *e);
const char *tbgw_expr_text(const tbgw_expr *e);
size_t tbgw_expr_placeholders(const tbgw_expr *e);
/* The i-th placeholder's path text (inside `${}`). */
const char *tbgw_expr_placeholder(const tbgw_expr *e, size_t i);
int tbgw_expr_is_constant(const tbgw_expr *e);
/* 1 when the template is exactly one placeholder with no text around it. */
int tbgw_expr_is_single(const tbgw_expr *e);

/* How a resolved value is written into text. */
typedef enum tbgw_fmt {
    TBGW_FMT_PY,   /* like Python str(): True/False/None, 25.0; objects/arrays as compact JSON */
    TBGW_FMT_TEXT, /* strings raw; true/false/null; numbers and objects as JSON */
    TBGW_FMT_JSON, /* every value JSON-encoded (strings quoted) */
} tbgw_fmt;

/* What to do with a placeholder that resolves to nothing (or JSON null). */
typedef enum tbgw_missing {
    TBGW_MISSING_FAIL, /* render returns TBGW_ENOENT */
    TBGW_MISSING_KEEP, /* the literal `${path}` stays in the output */
    TBGW_MISSING_NONE, /* written as None / null (per fmt), like the reference's str(None) */
} tbgw_missing;

/* Appends the rendered template to out. Returns 0, TBGW_ENOENT (a placeholder missing under
 * TBGW_MISSING_FAIL; out then holds a partial rendering) or TBGW_ENOMEM. */
int tbgw_expr_render(const tbgw_expr *e, const json_t *body, tbgw_fmt fmt, tbgw_missing missing,
                     tbgw_buf *out);
/* Renders with a caller-supplied resolver: fn appends the value of one placeholder (its text and
 * compiled path given) and returns 0, or TBGW_ENOENT to apply `missing`. */
typedef int (*tbgw_expr_resolve_fn)(void *ud, const char *placeholder, const tbgw_path *path, tbgw_buf *out);
int tbgw_expr_render_cb(const tbgw_expr *e, tbgw_expr_resolve_fn fn, void *ud, tbgw_missing missing,
                        tbgw_buf *out);
/* Writes one JSON value as text. */
int tbgw_fmt_json(tbgw_buf *out, const json_t *v, tbgw_fmt fmt);
int tbgw_fmt_jval(tbgw_buf *out, const tbgw_jval *v, tbgw_fmt fmt);

/* Where placeholders are looked up: a jansson tree, or a value of a scanned text (util/jscan.h:
 * the same results without building a tree; only plain paths, see tbgw_expr_is_plain). */
typedef struct tbgw_jsrc {
    const json_t *tree; /* used when doc is NULL */
    tbgw_jdoc *doc;
    size_t tok; /* the value's token in doc */
} tbgw_jsrc;
/* 1 when every step of the path is a key or an index (no `*`, `[*]`, `..`). */
int tbgw_path_is_plain(const tbgw_path *p);
/* 1 when every placeholder of the template has a plain path. */
int tbgw_expr_is_plain(const tbgw_expr *e);
/* tbgw_path_get on a source: 0 and *out (JSON null included), TBGW_ENOENT or TBGW_ENOMEM. */
int tbgw_path_get_src(const tbgw_path *p, const tbgw_jsrc *src, tbgw_jval *out);
/* The member key of the source's value when it is an object (json_object_get): as above. */
int tbgw_jsrc_member(const tbgw_jsrc *src, const char *key, tbgw_jval *out);
int tbgw_expr_render_src(const tbgw_expr *e, const tbgw_jsrc *src, tbgw_fmt fmt, tbgw_missing missing,
                         tbgw_buf *out);

/* Type casts of spec §5.2 (`type` of a datapoint config). */
typedef enum tbgw_cast {
    TBGW_CAST_STRING = 0,
    TBGW_CAST_INT,    /* int, integer, long, ... (name contains int/long) */
    TBGW_CAST_DOUBLE, /* exactly double or float */
    TBGW_CAST_BOOL,   /* bool, boolean */
    TBGW_CAST_RAW,    /* keep the JSON type of a single placeholder */
} tbgw_cast;

/* Maps a type name to a cast (case-insensitive; NULL or unknown names give STRING). */
tbgw_cast tbgw_cast_parse(const char *type);

/* Evaluates a template into a typed value. String results point into scratch (valid until it is
 * reset) or into body. Returns 0, TBGW_ENOENT when a placeholder is missing or null, TBGW_ENOMEM. */
int tbgw_expr_eval(const tbgw_expr *e, const json_t *body, tbgw_cast cast, tbgw_value *out,
                   tbgw_buf *scratch);
int tbgw_expr_eval_src(const tbgw_expr *e, const tbgw_jsrc *src, tbgw_cast cast, tbgw_value *out,
                       tbgw_buf *scratch);
/* Casts a JSON value (a failed cast yields the value's text as a string, like the reference). */
int tbgw_cast_json(const json_t *v, tbgw_cast cast, tbgw_value *out, tbgw_buf *scratch);
/* The same on a value view (NULL = missing). */
int tbgw_cast_jval(const tbgw_jval *v, tbgw_cast cast, tbgw_value *out, tbgw_buf *scratch);
/* Casts text. */
int tbgw_cast_text(const char *s, tbgw_cast cast, tbgw_value *out);
/* Python-style boolean parsing: y/yes/t/true/on/1 => 1, n/no/f/false/off/0 => 0, else -1. */
int tbgw_parse_bool(const char *s);

#endif
