/* One-expression Python functions (see convert/pyexpr.h, tbgw_py_compile_def): the header
 * `def name(p1, p2, ...):` is read here, the body `return <expression>` is compiled by
 * tbgw_py_compile, and a call binds the arguments as names before evaluating it. */
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/lex.h"

#define DEF_MAX_PARAMS 16

struct tbgw_py_def {
    char *name;
    char *params[DEF_MAX_PARAMS];
    size_t n_params;
    tbgw_py *body;
};

typedef struct def_scan {
    const char *s;
    size_t len, i;
    tbgw_err *err;
    size_t *err_off;
} def_scan;

static int fail(def_scan *d, size_t at, const char *what) {
    if (d->err_off) *d->err_off = at;
    return tbgw_err_set(d->err, TBGW_EINVAL, "%s (column %zu)", what, at + 1);
}

/* Skips spaces and tabs (and, inside brackets, newlines and comments). */
static void skip_blank(def_scan *d, int newlines) {
    while (d->i < d->len) {
        char c = d->s[d->i];
        if (c == ' ' || c == '\t' || c == '\f' ||
            (c == '\\' && d->i + 1 < d->len && d->s[d->i + 1] == '\n')) {
            d->i += c == '\\' ? 2 : 1;
        } else if (newlines && (c == '\n' || c == '\r')) {
            d->i++;
        } else if (newlines && c == '#') {
            while (d->i < d->len && d->s[d->i] != '\n') d->i++;
        } else {
            break;
        }
    }
}

/* Skips blank and comment-only lines; d->i stays at the start of the first line with code, or at the
 * end. */
static void skip_empty_lines(def_scan *d) {
    size_t line = d->i;
    for (size_t j = d->i; j <= d->len; j++) {
        char c = j < d->len ? d->s[j] : '\n';
        if (c == ' ' || c == '\t' || c == '\f' || c == '\r') continue;
        if (c == '#') {
            while (j < d->len && d->s[j] != '\n') j++;
            if (j >= d->len) break;
            c = '\n';
        }
        if (c != '\n') break;
        line = j + 1;
    }
    d->i = line < d->len ? line : d->len;
}

/* An identifier at d->i that is not a keyword: its length, or 0. */
static size_t ident(const def_scan *d) {
    size_t j = d->i;
    if (j >= d->len || !py_is_id_start((unsigned char)d->s[j])) return 0;
    while (j < d->len && py_is_id((unsigned char)d->s[j])) j++;
    return py_keyword(d->s + d->i, j - d->i) ? 0 : j - d->i;
}

static int is_word(const def_scan *d, const char *w) {
    size_t n = strlen(w);
    return d->i + n <= d->len && !memcmp(d->s + d->i, w, n) &&
           (d->i + n == d->len || !py_is_id((unsigned char)d->s[d->i + n]));
}

static const char *const ONE_RETURN =
    "only a function whose body is one `return <expression>` is supported (more statements, "
    "assignments and loops are not)";

static int parse_params(def_scan *d, tbgw_py_def *f) {
    for (;;) {
        skip_blank(d, 1);
        if (d->i < d->len && d->s[d->i] == ')') return 0;
        if (d->i < d->len && d->s[d->i] == '*') return fail(d, d->i, "*args and **kwargs are not supported");
        size_t n = ident(d);
        if (!n) return fail(d, d->i, "SyntaxError: expected a parameter name");
        if (n >= 2 && d->s[d->i] == '_' && d->s[d->i + 1] == '_')
            return fail(d, d->i, "names starting with '__' are not allowed");
        if (f->n_params == DEF_MAX_PARAMS) return fail(d, d->i, "too many parameters");
        for (size_t k = 0; k < f->n_params; k++)
            if (strlen(f->params[k]) == n && !memcmp(f->params[k], d->s + d->i, n))
                return fail(d, d->i, "SyntaxError: duplicate argument in function definition");
        if (!(f->params[f->n_params] = strndup(d->s + d->i, n))) return TBGW_ENOMEM;
        f->n_params++;
        d->i += n;
        skip_blank(d, 1);
        if (d->i < d->len && (d->s[d->i] == '=' || d->s[d->i] == ':'))
            return fail(d, d->i, "default values and annotations of parameters are not supported");
        if (d->i < d->len && d->s[d->i] == ',') {
            d->i++;
            continue;
        }
        if (d->i < d->len && d->s[d->i] == ')') return 0;
        return fail(d, d->i, "SyntaxError: expected ',' or ')' in the parameter list");
    }
}

int tbgw_py_compile_def(const char *src, size_t len, unsigned flags, tbgw_py_def **out, tbgw_err *err,
                        size_t *err_off) {
    *out = NULL;
    if (err_off) *err_off = 0;
    def_scan d = {src, len, 0, err, err_off};
    tbgw_py_def *f = calloc(1, sizeof *f);
    if (!f) return TBGW_ENOMEM;
    int rc;
    skip_empty_lines(&d);
    skip_blank(&d, 0);
    if (!is_word(&d, "def")) {
        rc = fail(&d, d.i, "expected a function `def name(parameters): return <expression>`");
        goto bad;
    }
    d.i += 3;
    skip_blank(&d, 0);
    size_t n = ident(&d);
    if (!n) {
        rc = fail(&d, d.i, "SyntaxError: expected the function's name");
        goto bad;
    }
    if (!(f->name = strndup(src + d.i, n))) {
        rc = TBGW_ENOMEM;
        goto bad;
    }
    d.i += n;
    skip_blank(&d, 0);
    if (d.i >= len || src[d.i] != '(') {
        rc = fail(&d, d.i, "SyntaxError: expected '(' after the function's name");
        goto bad;
    }
    d.i++;
    if ((rc = parse_params(&d, f))) goto bad;
    d.i++; /* ')' */
    skip_blank(&d, 0);
    if (d.i + 1 < len && src[d.i] == '-' && src[d.i + 1] == '>') {
        rc = fail(&d, d.i, "return annotations are not supported");
        goto bad;
    }
    if (d.i >= len || src[d.i] != ':') {
        rc = fail(&d, d.i, "SyntaxError: expected ':' after the parameter list");
        goto bad;
    }
    d.i++;
    skip_blank(&d, 0);
    if (d.i < len && src[d.i] == '#')
        while (d.i < len && src[d.i] != '\n') d.i++;
    if (d.i < len && (src[d.i] == '\n' || src[d.i] == '\r')) {
        /* the body on the next (indented) line */
        skip_empty_lines(&d);
        size_t line = d.i;
        skip_blank(&d, 0);
        if (d.i == line || d.i >= len) {
            rc = fail(&d, d.i, "IndentationError: expected an indented block after the function definition");
            goto bad;
        }
    }
    if (!is_word(&d, "return")) {
        rc = fail(&d, d.i, ONE_RETURN);
        goto bad;
    }
    d.i += 6;
    size_t body = d.i;
    tbgw_err be = {0};
    size_t boff = 0;
    rc = tbgw_py_compile(src + body, len - body, flags, &f->body, &be, &boff);
    if (rc == TBGW_EINVAL) {
        if (strstr(be.msg, "a statement or a second line") || strstr(be.msg, "statements are not")) {
            rc = fail(&d, body + boff, ONE_RETURN);
        } else {
            /* the evaluator counts columns from the start of the expression: count from the source */
            if (err_off) *err_off = body + boff;
            char *col = strstr(be.msg, " (column ");
            if (col) *col = 0;
            rc = tbgw_err_set(err, TBGW_EINVAL, "%s (column %zu)", be.msg, body + boff + 1);
        }
    } else if (rc) {
        tbgw_err_set(err, rc, "%s", be.msg);
    }
    if (rc) goto bad;
    *out = f;
    return 0;
bad:
    tbgw_py_def_free(f);
    return rc;
}

void tbgw_py_def_free(tbgw_py_def *f) {
    if (!f) return;
    free(f->name);
    for (size_t k = 0; k < f->n_params; k++) free(f->params[k]);
    tbgw_py_free(f->body);
    free(f);
}

const char *tbgw_py_def_name(const tbgw_py_def *f) {
    return f->name;
}

size_t tbgw_py_def_arity(const tbgw_py_def *f) {
    return f->n_params;
}

int tbgw_py_call_def(const tbgw_py_def *f, tbgw_py_ctx *c, const tbgw_py_val *const *args, size_t n,
                     const tbgw_py_val **out, tbgw_err *err) {
    *out = NULL;
    if (n != f->n_params)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "TypeError: %s() takes %zu positional argument%s but %zu %s given", f->name,
                            f->n_params, f->n_params == 1 ? "" : "s", n, n == 1 ? "was" : "were");
    for (size_t k = 0; k < n; k++) {
        int rc = tbgw_py_bind(c, f->params[k], args[k]);
        if (rc) return tbgw_err_set(err, rc, "MemoryError: out of memory");
    }
    return tbgw_py_eval(f->body, c, out, err);
}
