/* Builtin functions and types (the names available unless the expression is strict). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"
#include "util/utf8.h"

/* ---- argument helpers ---- */

pv py_kwarg(X *x, const py_args *a, const char *name, int pos, int *found) {
    if (pos >= 0 && (size_t)pos < a->n) {
        if (found) *found = 1;
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwn[k].u.s->s, name))
                py_type_error(x, "argument for function given by name ('%s') and position (%d)", name,
                              pos + 1);
        return a->v[pos];
    }
    for (size_t k = 0; k < a->nkw; k++)
        if (!strcmp(a->kwn[k].u.s->s, name)) {
            if (found) *found = 1;
            return a->kwv[k];
        }
    if (found) *found = 0;
    return pv_none();
}

void py_args_max(X *x, const py_args *a, const char *fn, size_t max_pos, const char *const *kw) {
    if (a->n > max_pos)
        py_type_error(x, "%s() takes at most %zu argument%s (%zu given)", fn, max_pos,
                      max_pos == 1 ? "" : "s", a->n);
    for (size_t k = 0; k < a->nkw; k++) {
        int ok = 0;
        for (size_t j = 0; kw && kw[j]; j++)
            if (!strcmp(kw[j], a->kwn[k].u.s->s)) ok = 1;
        if (!ok) py_type_error(x, "%s() got an unexpected keyword argument '%s'", fn, a->kwn[k].u.s->s);
    }
}

static void need(X *x, const py_args *a, const char *fn, size_t min, size_t max) {
    if (a->nkw) py_type_error(x, "%s() takes no keyword arguments", fn);
    if (a->n < min || a->n > max) {
        if (min == max && min == 1) py_type_error(x, "%s() takes exactly one argument (%zu given)", fn, a->n);
        if (min == max) py_type_error(x, "%s expected %zu arguments, got %zu", fn, min, a->n);
        if (a->n < min)
            py_type_error(x, "%s expected at least %zu argument%s, got %zu", fn, min, min == 1 ? "" : "s",
                          a->n);
        py_type_error(x, "%s expected at most %zu argument%s, got %zu", fn, max, max == 1 ? "" : "s", a->n);
    }
}

pv py_call_value(X *x, pv fn, pv arg) {
    py_args a = {&arg, 1, NULL, NULL, 0};
    return py_call(x, fn, &a);
}

/* ---- conversions ---- */

static void strip_ws(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

static pv parse_int_text(X *x, pv orig, const char *s, size_t n, int64_t base) {
    const char *p = s;
    size_t len = n;
    strip_ws(&p, &len);
    int neg = 0;
    if (len && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
        len--;
    }
    int64_t b = base;
    if (len >= 2 && p[0] == '0') {
        char c = (char)(p[1] | 0x20);
        int pb = c == 'x' ? 16 : c == 'o' ? 8 : c == 'b' ? 2 : 0;
        if (pb && (b == 0 || b == pb)) {
            b = pb;
            p += 2;
            len -= 2;
            if (len && *p == '_') {
                p++;
                len--;
            }
        }
    }
    int zero_lead = 0;
    if (b == 0) {
        b = 10;
        zero_lead = len > 1 && p[0] == '0';
    }
    char *clean = py_alloc(x, len + 1);
    size_t nc = 0;
    int ok = len > 0;
    for (size_t i = 0; i < len && ok; i++) {
        char c = p[i];
        if (c == '_' && nc && i + 1 < len && p[i + 1] != '_') continue;
        int d = isdigit((unsigned char)c) ? c - '0' : isalpha((unsigned char)c) ? (c | 0x20) - 'a' + 10 : 99;
        if (d >= b) ok = 0;
        clean[nc++] = c;
    }
    if (ok && zero_lead)
        for (size_t i = 0; i < nc; i++)
            if (clean[i] != '0') ok = 0;
    if (!ok || !nc) {
        tbgw_buf *r = py_buf(x);
        pv_repr(x, orig, r);
        pv rs = py_buf_done(x, r);
        py_raise(x, "ValueError", "invalid literal for int() with base %lld: %s", (long long)base, rs.u.s->s);
    }
    if (nc > 4300 && b == 10)
        py_raise(x, "ValueError",
                 "Exceeds the limit (4300 digits) for integer string conversion: value has %zu digits", nc);
    pv v = big_parse(x, clean, nc, (unsigned)b);
    return neg ? num_unary(x, UOP_NEG, v) : v;
}

pv py_to_int(X *x, pv v, int has_base, int64_t base) {
    if (has_base && (base != 0 && (base < 2 || base > 36)))
        py_raise(x, "ValueError", "int() base must be >= 2 and <= 36, or 0");
    if (v.t == PT_STR || v.t == PT_BYTES || v.t == PT_BYTEARRAY) {
        const char *s = v.t == PT_STR ? v.u.s->s : (const char *)v.u.b->b;
        size_t n = v.t == PT_STR ? v.u.s->n : v.u.b->n;
        return parse_int_text(x, v, s, n, has_base ? base : 10);
    }
    if (has_base) py_type_error(x, "int() can't convert non-string with explicit base");
    if (v.t == PT_BOOL) return pv_int(v.u.i);
    if (v.t == PT_INT || v.t == PT_BIG) return v;
    if (v.t == PT_FLOAT) return int_from_float(x, v.u.f);
    py_type_error(x, "int() argument must be a string, a bytes-like object or a real number, not '%s'",
                  pv_tname(v));
}

static int float_syntax_ok(const char *s, size_t n, char *clean) {
    size_t i = 0, k = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) clean[k++] = s[i++];
    const char *rest = s + i;
    size_t rn = n - i;
    static const char *const words[] = {"inf", "infinity", "nan"};
    for (int w = 0; w < 3; w++)
        if (rn == strlen(words[w]) && !strncasecmp(rest, words[w], rn)) {
            memcpy(clean + k, rest, rn);
            clean[k + rn] = 0;
            return 1;
        }
    int digits = 0, prev_digit = 0;
    for (; i < n && (isdigit((unsigned char)s[i]) ||
                     (s[i] == '_' && prev_digit && i + 1 < n && isdigit((unsigned char)s[i + 1])));
         i++) {
        prev_digit = s[i] != '_';
        if (s[i] != '_') clean[k++] = s[i], digits++;
    }
    if (i < n && s[i] == '.') {
        clean[k++] = s[i++];
        prev_digit = 0;
        for (; i < n && (isdigit((unsigned char)s[i]) ||
                         (s[i] == '_' && prev_digit && i + 1 < n && isdigit((unsigned char)s[i + 1])));
             i++) {
            prev_digit = s[i] != '_';
            if (s[i] != '_') clean[k++] = s[i], digits++;
        }
    }
    if (!digits) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        clean[k++] = s[i++];
        if (i < n && (s[i] == '+' || s[i] == '-')) clean[k++] = s[i++];
        int ed = 0;
        prev_digit = 0;
        for (; i < n && (isdigit((unsigned char)s[i]) ||
                         (s[i] == '_' && prev_digit && i + 1 < n && isdigit((unsigned char)s[i + 1])));
             i++) {
            prev_digit = s[i] != '_';
            if (s[i] != '_') clean[k++] = s[i], ed++;
        }
        if (!ed) return 0;
    }
    clean[k] = 0;
    return i == n;
}

pv py_to_float(X *x, pv v) {
    if (v.t == PT_FLOAT) return v;
    if (pv_is_int(v)) return pv_float(pv_to_double(x, v));
    if (v.t == PT_STR || v.t == PT_BYTES || v.t == PT_BYTEARRAY) {
        const char *s = v.t == PT_STR ? v.u.s->s : (const char *)v.u.b->b;
        size_t n = v.t == PT_STR ? v.u.s->n : v.u.b->n;
        strip_ws(&s, &n);
        char *clean = py_alloc(x, n + 2);
        if (!n || !float_syntax_ok(s, n, clean)) {
            tbgw_buf *r = py_buf(x);
            pv_repr(x, v, r);
            pv rs = py_buf_done(x, r);
            py_raise(x, "ValueError", "could not convert string to float: %s", rs.u.s->s);
        }
        return pv_float(strtod(clean, NULL));
    }
    py_type_error(x, "float() argument must be a string or a real number, not '%s'", pv_tname(v));
}

pv py_to_str(X *x, pv v) {
    char tmp[40];
    switch (v.t) { /* the common scalars without a text buffer */
    case PT_STR:
        return v;
    case PT_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        return pv_cstr(x, tmp);
    case PT_FLOAT:
        float_repr(v.u.f, tmp, sizeof tmp);
        return pv_cstr(x, tmp);
    case PT_BOOL:
        return pv_str_chars(x, v.u.i ? "True" : "False", v.u.i ? 4 : 5, v.u.i ? 4 : 5);
    case PT_NONE:
        return pv_str_chars(x, "None", 4, 4);
    default:
        break;
    }
    tbgw_buf *b = py_buf(x);
    pv_strv(x, v, b);
    return py_buf_done(x, b);
}

/* ---- builtins ---- */

static pv b_int(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"base", NULL};
    py_args_max(x, a, "int", 2, kw);
    int has_v, has_b;
    pv v = py_kwarg(x, a, "x", 0, &has_v);
    pv base = py_kwarg(x, a, "base", 1, &has_b);
    if (!has_v) {
        if (has_b) py_type_error(x, "int() missing string argument");
        return pv_int(0);
    }
    if (has_b && !pv_is_int(base))
        py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(base));
    return py_to_int(x, v, has_b, has_b ? (base.t == PT_BIG ? 99 : base.u.i) : 10);
}

static pv b_float(X *x, pv self, const py_args *a) {
    need(x, a, "float", 0, 1);
    return a->n ? py_to_float(x, a->v[0]) : pv_float(0.0);
}

static pv b_bool(X *x, pv self, const py_args *a) {
    need(x, a, "bool", 0, 1);
    return pv_bool(a->n && pv_truthy(x, a->v[0]));
}

static pv b_str(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"object", "encoding", "errors", NULL};
    py_args_max(x, a, "str", 3, kw);
    int has_v, has_e, has_r;
    pv v = py_kwarg(x, a, "object", 0, &has_v);
    pv enc = py_kwarg(x, a, "encoding", 1, &has_e);
    pv err = py_kwarg(x, a, "errors", 2, &has_r);
    if (!has_v) return pv_str(x, "", 0);
    if (has_e || has_r) {
        if (v.t != PT_BYTES && v.t != PT_BYTEARRAY)
            py_type_error(x, "decoding to str: need a bytes-like object, %s found", pv_tname(v));
        return py_decode(x, v, has_e ? enc : pv_none(), has_r ? err : pv_none());
    }
    return py_to_str(x, v);
}

static pv b_repr(X *x, pv self, const py_args *a) {
    need(x, a, "repr", 1, 1);
    tbgw_buf *b = py_buf(x);
    pv_repr(x, a->v[0], b);
    return py_buf_done(x, b);
}

static pv to_bytes_like(X *x, int t, const py_args *a, const char *fn) {
    static const char *const kw[] = {"source", "encoding", "errors", NULL};
    py_args_max(x, a, fn, 3, kw);
    int has_v, has_e, has_r;
    pv v = py_kwarg(x, a, "source", 0, &has_v);
    pv enc = py_kwarg(x, a, "encoding", 1, &has_e);
    pv err = py_kwarg(x, a, "errors", 2, &has_r);
    if (!has_v) return pv_bytes(x, t, "", 0);
    if (v.t == PT_STR) {
        if (!has_e) py_type_error(x, "string argument without an encoding");
        pv r = py_encode(x, v, enc, has_r ? err : pv_none());
        r.t = (uint8_t)t;
        return r;
    }
    if (has_e) py_type_error(x, "encoding without a string argument");
    if (pv_is_int(v)) {
        int64_t n = pv_index(x, v, "");
        if (n < 0) py_raise(x, "ValueError", "negative count");
        if (x->mem.limit && (uint64_t)n > x->mem.limit) py_oom(x);
        py_step(x, (uint64_t)n / 64);
        unsigned char *z = py_alloc(x, (size_t)n + 1);
        memset(z, 0, (size_t)n + 1);
        return pv_bytes(x, t, z, (size_t)n);
    }
    if (v.t == PT_BYTES || v.t == PT_BYTEARRAY) return pv_bytes(x, t, v.u.b->b, v.u.b->n);
    if (v.t == PT_FLOAT) py_type_error(x, "cannot convert 'float' object to %s", fn);
    py_list *l = pv_iter(x, v);
    unsigned char *buf = py_alloc(x, l->n + 1);
    for (size_t i = 0; i < l->n; i++) {
        pv e = l->v[i];
        if (!pv_is_int(e)) py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(e));
        if (e.t == PT_BIG || e.u.i < 0 || e.u.i > 255)
            py_raise(x, "ValueError", "bytes must be in range(0, 256)");
        buf[i] = (unsigned char)e.u.i;
    }
    return pv_bytes(x, t, buf, l->n);
}

static pv b_bytes(X *x, pv self, const py_args *a) {
    return to_bytes_like(x, PT_BYTES, a, "bytes");
}
static pv b_bytearray(X *x, pv self, const py_args *a) {
    return to_bytes_like(x, PT_BYTEARRAY, a, "bytearray");
}

static pv b_list(X *x, pv self, const py_args *a) {
    need(x, a, "list", 0, 1);
    pv r = pv_list(x, PT_LIST, 0);
    if (!a->n) return r;
    py_list *it = pv_iter(x, a->v[0]);
    py_step(x, it->n);
    r = pv_list(x, PT_LIST, it->n);
    memcpy(r.u.l->v, it->v, it->n * sizeof(pv));
    r.u.l->n = it->n;
    return r;
}

static pv b_tuple(X *x, pv self, const py_args *a) {
    need(x, a, "tuple", 0, 1);
    if (a->n && a->v[0].t == PT_TUPLE) return a->v[0];
    pv r = b_list(x, self, a);
    r.t = PT_TUPLE;
    return r;
}

static pv b_set(X *x, pv self, const py_args *a) {
    need(x, a, "set", 0, 1);
    pv s = pv_dict(x, PT_SET);
    if (!a->n) return s;
    py_list *it = pv_iter(x, a->v[0]);
    for (size_t i = 0; i < it->n; i++) py_dict_set(x, s.u.d, it->v[i], pv_none());
    return s;
}

static pv b_dict(X *x, pv self, const py_args *a) {
    if (a->n > 1) py_type_error(x, "dict expected at most 1 argument, got %zu", a->n);
    pv d = pv_dict(x, PT_DICT);
    if (a->n) {
        pv src = a->v[0];
        if (src.t == PT_DICT) {
            for (size_t i = 0; i < src.u.d->n; i++) py_dict_set(x, d.u.d, src.u.d->k[i], src.u.d->v[i]);
        } else {
            py_list *it = pv_iter(x, src);
            for (size_t i = 0; i < it->n; i++) {
                py_list *kv = pv_iter(x, it->v[i]);
                if (kv->n != 2)
                    py_raise(x, "ValueError",
                             "dictionary update sequence element #%zu has length %zu; 2 is required", i,
                             kv->n);
                py_dict_set(x, d.u.d, kv->v[0], kv->v[1]);
            }
        }
    }
    for (size_t k = 0; k < a->nkw; k++) py_dict_set(x, d.u.d, a->kwn[k], a->kwv[k]);
    return d;
}

static int64_t int_arg(X *x, pv v) {
    if (v.t == PT_INT || v.t == PT_BOOL) return v.u.i;
    if (v.t == PT_BIG) py_raise(x, "OverflowError", "Python int too large to convert to C ssize_t");
    py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(v));
}

static pv b_range(X *x, pv self, const py_args *a) {
    need(x, a, "range", 1, 3);
    py_range *r = py_alloc(x, sizeof *r);
    r->start = 0;
    r->step = 1;
    if (a->n == 1) {
        r->stop = int_arg(x, a->v[0]);
    } else {
        r->start = int_arg(x, a->v[0]);
        r->stop = int_arg(x, a->v[1]);
        if (a->n == 3) r->step = int_arg(x, a->v[2]);
        if (r->step == 0) py_raise(x, "ValueError", "range() arg 3 must not be zero");
    }
    return pv_ptr(PT_RANGE, r);
}

static pv b_len(X *x, pv self, const py_args *a) {
    need(x, a, "len", 1, 1);
    return pv_int(pv_len(x, a->v[0]));
}

static pv b_abs(X *x, pv self, const py_args *a) {
    need(x, a, "abs", 1, 1);
    pv v = a->v[0];
    if (v.t == PT_FLOAT) return pv_float(fabs(v.u.f));
    if (pv_is_int(v))
        return num_cmp(x, v, pv_int(0)) < 0 ? num_unary(x, UOP_NEG, v) : num_unary(x, UOP_POS, v);
    py_type_error(x, "bad operand type for abs(): '%s'", pv_tname(v));
}

static pv minmax(X *x, const py_args *a, int is_max) {
    const char *fn = is_max ? "max" : "min";
    static const char *const kw[] = {"key", "default", NULL};
    py_args_max(x, a, fn, SIZE_MAX, kw);
    int has_key, has_def;
    pv key = py_kwarg(x, a, "key", -1, &has_key);
    pv def = py_kwarg(x, a, "default", -1, &has_def);
    if (!a->n) py_type_error(x, "%s expected at least 1 argument, got 0", fn);
    const pv *items;
    size_t n;
    if (a->n == 1) {
        py_list *it = pv_iter(x, a->v[0]);
        items = it->v;
        n = it->n;
    } else {
        if (has_def)
            py_type_error(x, "Cannot specify a default for %s() with multiple positional arguments", fn);
        items = a->v;
        n = a->n;
    }
    if (!n) {
        if (has_def) return def;
        py_raise(x, "ValueError", "%s() arg is an empty sequence", fn);
    }
    pv best = items[0];
    pv bk = has_key && key.t != PT_NONE ? py_call_value(x, key, best) : best;
    for (size_t i = 1; i < n; i++) {
        py_step(x, 1);
        pv k = has_key && key.t != PT_NONE ? py_call_value(x, key, items[i]) : items[i];
        if (py_compare(x, is_max ? CMP_GT : CMP_LT, k, bk)) {
            best = items[i];
            bk = k;
        }
    }
    return best;
}

static pv b_max(X *x, pv self, const py_args *a) {
    return minmax(x, a, 1);
}
static pv b_min(X *x, pv self, const py_args *a) {
    return minmax(x, a, 0);
}

static pv b_sum(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"start", NULL};
    py_args_max(x, a, "sum", 2, kw);
    if (!a->n) py_type_error(x, "sum() takes at least 1 positional argument (0 given)");
    int has_s;
    pv acc = py_kwarg(x, a, "start", 1, &has_s);
    if (!has_s) acc = pv_int(0);
    if (acc.t == PT_STR) py_type_error(x, "sum() can't sum strings [use ''.join(seq) instead]");
    if (acc.t == PT_BYTES) py_type_error(x, "sum() can't sum bytes [use b''.join(seq) instead]");
    py_list *it = pv_iter(x, a->v[0]);
    for (size_t i = 0; i < it->n; i++) {
        py_step(x, 1);
        acc = py_binop(x, OP_ADD, acc, it->v[i]);
    }
    return acc;
}

static pv b_pow(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"base", "exp", "mod", NULL};
    py_args_max(x, a, "pow", 3, kw);
    int hb, he, hm;
    pv b = py_kwarg(x, a, "base", 0, &hb), e = py_kwarg(x, a, "exp", 1, &he),
       m = py_kwarg(x, a, "mod", 2, &hm);
    if (!hb || !he) py_type_error(x, "pow() missing required argument '%s'", hb ? "exp" : "base");
    if (hm && m.t != PT_NONE) return num_pow3(x, b, e, m);
    return py_binop(x, OP_POW, b, e);
}

static pv int_text(X *x, const py_args *a, const char *fn, unsigned base, const char *prefix) {
    need(x, a, fn, 1, 1);
    pv v = a->v[0];
    if (!pv_is_int(v)) py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(v));
    py_big *b = big_of(x, v);
    tbgw_buf *out = py_buf(x);
    if (b->neg) tbgw_buf_putc(out, '-');
    tbgw_buf_puts(out, prefix);
    py_big *m = big_of(x, num_binop(x, OP_MUL, v, pv_int(b->neg ? -1 : 1), &(int){0}));
    big_to_str(x, m, base, out);
    return py_buf_done(x, out);
}

static pv b_hex(X *x, pv self, const py_args *a) {
    return int_text(x, a, "hex", 16, "0x");
}
static pv b_oct(X *x, pv self, const py_args *a) {
    return int_text(x, a, "oct", 8, "0o");
}
static pv b_bin(X *x, pv self, const py_args *a) {
    return int_text(x, a, "bin", 2, "0b");
}

static pv b_ord(X *x, pv self, const py_args *a) {
    need(x, a, "ord", 1, 1);
    pv v = a->v[0];
    if (v.t == PT_BYTES || v.t == PT_BYTEARRAY) {
        if (v.u.b->n != 1)
            py_type_error(x, "ord() expected a character, but string of length %zu found", v.u.b->n);
        return pv_int(v.u.b->b[0]);
    }
    if (v.t != PT_STR) py_type_error(x, "ord() expected string of length 1, but %s found", pv_tname(v));
    if (v.u.s->nchars != 1)
        py_type_error(x, "ord() expected a character, but string of length %zu found", v.u.s->nchars);
    const unsigned char *s = (const unsigned char *)v.u.s->s;
    uint32_t cp = s[0];
    if (cp >= 0xF0)
        cp = (cp & 7) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
    else if (cp >= 0xE0)
        cp = (cp & 15) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
    else if (cp >= 0xC0)
        cp = (cp & 31) << 6 | (s[1] & 0x3Fu);
    return pv_int(cp);
}

static pv b_chr(X *x, pv self, const py_args *a) {
    need(x, a, "chr", 1, 1);
    pv v = a->v[0];
    if (!pv_is_int(v)) py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(v));
    if (v.t == PT_BIG) py_raise(x, "OverflowError", "Python int too large to convert to C int");
    int64_t c = v.u.i;
    if (c < 0 || c > 0x10FFFF) py_raise(x, "ValueError", "chr() arg not in range(0x110000)");
    if (c >= 0xD800 && c <= 0xDFFF) py_raise(x, "ValueError", "surrogate code points are not supported");
    char u[4];
    size_t n = tbgw_utf8_put(u, (uint32_t)c);
    return pv_str_chars(x, u, n, 1);
}

static pv make_iter(X *x, py_list *l, const char *kind) {
    pv r = pv_list(x, PT_ITER, 0);
    r.u.l->v = l->v;
    r.u.l->n = l->n;
    r.u.l->cap = l->cap;
    r.u.l->kind = kind;
    return r;
}

static pv b_enumerate(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"iterable", "start", NULL};
    py_args_max(x, a, "enumerate", 2, kw);
    int hi, hs;
    pv itv = py_kwarg(x, a, "iterable", 0, &hi), st = py_kwarg(x, a, "start", 1, &hs);
    if (!hi) py_type_error(x, "enumerate() missing required argument 'iterable'");
    py_list *it = pv_iter(x, itv);
    pv start = hs ? st : pv_int(0);
    if (!pv_is_int(start))
        py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(start));
    pv r = pv_list(x, PT_LIST, it->n);
    py_step(x, it->n);
    for (size_t i = 0; i < it->n; i++) {
        r.u.l->v[i] = pv_tuple2(x, start, it->v[i]);
        start = py_binop(x, OP_ADD, start, pv_int(1));
    }
    r.u.l->n = it->n;
    return make_iter(x, r.u.l, "enumerate");
}

static pv b_zip(X *x, pv self, const py_args *a) {
    for (size_t k = 0; k < a->nkw; k++)
        if (strcmp(a->kwn[k].u.s->s, "strict"))
            py_type_error(x, "'%s' is an invalid keyword argument for zip()", a->kwn[k].u.s->s);
    size_t n = SIZE_MAX;
    py_list **its = py_alloc(x, (a->n + 1) * sizeof *its);
    for (size_t i = 0; i < a->n; i++) {
        its[i] = pv_iter(x, a->v[i]);
        if (its[i]->n < n) n = its[i]->n;
    }
    if (!a->n) n = 0;
    pv r = pv_list(x, PT_LIST, n);
    py_step(x, n * (a->n + 1));
    for (size_t j = 0; j < n; j++) {
        pv t = pv_list(x, PT_TUPLE, a->n);
        for (size_t i = 0; i < a->n; i++) t.u.l->v[i] = its[i]->v[j];
        t.u.l->n = a->n;
        r.u.l->v[j] = t;
    }
    r.u.l->n = n;
    return make_iter(x, r.u.l, "zip");
}

static pv b_map(X *x, pv self, const py_args *a) {
    if (a->n < 2) py_type_error(x, "map() must have at least two arguments.");
    if (a->nkw) py_type_error(x, "map() takes no keyword arguments");
    size_t n = SIZE_MAX, k = a->n - 1;
    py_list **its = py_alloc(x, k * sizeof *its);
    for (size_t i = 0; i < k; i++) {
        its[i] = pv_iter(x, a->v[i + 1]);
        if (its[i]->n < n) n = its[i]->n;
    }
    pv r = pv_list(x, PT_LIST, n);
    pv *args = py_alloc(x, k * sizeof(pv));
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < k; i++) args[i] = its[i]->v[j];
        py_args ca = {args, k, NULL, NULL, 0};
        r.u.l->v[j] = py_call(x, a->v[0], &ca);
        r.u.l->n = j + 1;
    }
    return make_iter(x, r.u.l, "map");
}

static pv b_filter(X *x, pv self, const py_args *a) {
    need(x, a, "filter", 2, 2);
    py_list *it = pv_iter(x, a->v[1]);
    pv r = pv_list(x, PT_LIST, it->n);
    for (size_t i = 0; i < it->n; i++) {
        pv keep = a->v[0].t == PT_NONE ? it->v[i] : py_call_value(x, a->v[0], it->v[i]);
        if (pv_truthy(x, keep)) r.u.l->v[r.u.l->n++] = it->v[i];
    }
    return make_iter(x, r.u.l, "filter");
}

static pv b_reversed(X *x, pv self, const py_args *a) {
    need(x, a, "reversed", 1, 1);
    pv v = a->v[0];
    if (v.t == PT_SET || (v.t == PT_ITER && strncmp(v.u.l->kind, "dict_", 5)))
        py_type_error(x, "'%s' object is not reversible", pv_tname(v));
    py_list *it = pv_iter(x, v);
    pv r = pv_list(x, PT_LIST, it->n);
    py_step(x, it->n);
    for (size_t i = 0; i < it->n; i++) r.u.l->v[i] = it->v[it->n - 1 - i];
    r.u.l->n = it->n;
    return make_iter(x, r.u.l, v.t == PT_LIST ? "list_reverseiterator" : "reversed");
}

static pv b_sorted(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"key", "reverse", NULL};
    if (a->n != 1) py_type_error(x, "sorted expected 1 argument, got %zu", a->n);
    py_args_max(x, a, "sorted", 1, kw);
    int hk, hr;
    pv key = py_kwarg(x, a, "key", -1, &hk), rev = py_kwarg(x, a, "reverse", -1, &hr);
    return py_sorted(x, a->v[0], hk ? key : pv_none(), hr && pv_truthy(x, rev));
}

static pv b_any(X *x, pv self, const py_args *a) {
    need(x, a, "any", 1, 1);
    py_list *it = pv_iter(x, a->v[0]);
    for (size_t i = 0; i < it->n; i++)
        if (pv_truthy(x, it->v[i])) return pv_bool(1);
    return pv_bool(0);
}

static pv b_all(X *x, pv self, const py_args *a) {
    need(x, a, "all", 1, 1);
    py_list *it = pv_iter(x, a->v[0]);
    for (size_t i = 0; i < it->n; i++)
        if (!pv_truthy(x, it->v[i])) return pv_bool(0);
    return pv_bool(1);
}

static int is_instance(X *x, pv v, pv cls) {
    if (cls.t == PT_TUPLE) {
        for (size_t i = 0; i < cls.u.l->n; i++)
            if (is_instance(x, v, cls.u.l->v[i])) return 1;
        return 0;
    }
    if (cls.t != PT_BUILTIN || py_builtins[cls.u.i].type < 0)
        py_type_error(x, "isinstance() arg 2 must be a type, a tuple of types, or a union");
    int t = py_builtins[cls.u.i].type;
    if (t == PT_INT) return pv_is_int(v);
    return v.t == t;
}

static pv b_isinstance(X *x, pv self, const py_args *a) {
    need(x, a, "isinstance", 2, 2);
    return pv_bool(is_instance(x, a->v[0], a->v[1]));
}

static pv b_divmod(X *x, pv self, const py_args *a) {
    need(x, a, "divmod", 2, 2);
    if (!pv_is_num(a->v[0]) || !pv_is_num(a->v[1]))
        py_type_error(x, "unsupported operand type(s) for divmod(): '%s' and '%s'", pv_tname(a->v[0]),
                      pv_tname(a->v[1]));
    return py_divmod(x, a->v[0], a->v[1]);
}

static pv b_round(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"number", "ndigits", NULL};
    py_args_max(x, a, "round", 2, kw);
    int hn, hd;
    pv n = py_kwarg(x, a, "number", 0, &hn), d = py_kwarg(x, a, "ndigits", 1, &hd);
    if (!hn) py_type_error(x, "round() missing required argument 'number' (pos 1)");
    return py_round(x, n, hd, d);
}

static pv b_format(X *x, pv self, const py_args *a) {
    need(x, a, "format", 1, 2);
    pv spec = a->n > 1 ? a->v[1] : pv_str(x, "", 0);
    if (spec.t != PT_STR) py_type_error(x, "format() argument 2 must be str, not %s", pv_tname(spec));
    tbgw_buf *b = py_buf(x);
    py_format_spec(x, a->v[0], spec.u.s->s, spec.u.s->n, b);
    return py_buf_done(x, b);
}

static pv b_type(X *x, pv self, const py_args *a) {
    need(x, a, "type", 1, 1);
    int t = a->v[0].t == PT_BIG ? PT_INT : a->v[0].t;
    for (size_t i = 0; i < py_nbuiltins; i++)
        if (py_builtins[i].type == t) {
            pv r = pv_ptr(PT_BUILTIN, NULL);
            r.u.i = (int64_t)i;
            return r;
        }
    py_type_error(x, "type() of a '%s' object is not supported", pv_tname(a->v[0]));
}

const py_builtin py_builtins[] = {
    {"abs", b_abs, -1},
    {"all", b_all, -1},
    {"any", b_any, -1},
    {"ascii", b_repr, -1},
    {"bin", b_bin, -1},
    {"bool", b_bool, PT_BOOL},
    {"bytearray", b_bytearray, PT_BYTEARRAY},
    {"bytes", b_bytes, PT_BYTES},
    {"chr", b_chr, -1},
    {"dict", b_dict, PT_DICT},
    {"divmod", b_divmod, -1},
    {"enumerate", b_enumerate, PT_ITER},
    {"filter", b_filter, PT_ITER},
    {"float", b_float, PT_FLOAT},
    {"format", b_format, -1},
    {"hex", b_hex, -1},
    {"int", b_int, PT_INT},
    {"isinstance", b_isinstance, -1},
    {"len", b_len, -1},
    {"list", b_list, PT_LIST},
    {"map", b_map, PT_ITER},
    {"max", b_max, -1},
    {"min", b_min, -1},
    {"oct", b_oct, -1},
    {"ord", b_ord, -1},
    {"pow", b_pow, -1},
    {"range", b_range, PT_RANGE},
    {"repr", b_repr, -1},
    {"reversed", b_reversed, PT_ITER},
    {"round", b_round, -1},
    {"set", b_set, PT_SET},
    {"sorted", b_sorted, -1},
    {"str", b_str, PT_STR},
    {"sum", b_sum, -1},
    {"tuple", b_tuple, PT_TUPLE},
    {"type", b_type, -1},
    {"zip", b_zip, PT_ITER},
};
const size_t py_nbuiltins = sizeof py_builtins / sizeof py_builtins[0];

int py_builtin_find(const char *name) {
    size_t lo = 0, hi = py_nbuiltins;
    while (lo < hi) { /* the table is sorted by name */
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, py_builtins[mid].name);
        if (!c) return (int)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

/* ---- sorting: stable merge sort on (key, value) pairs ---- */

static void merge_sort(X *x, pv *k, pv *v, pv *tk, pv *tv, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(x, k, v, tk, tv, h);
    merge_sort(x, k + h, v + h, tk, tv, n - h);
    size_t i = 0, j = h, o = 0;
    py_step(x, n);
    while (i < h && j < n) {
        if (py_compare(x, CMP_LT, k[j], k[i])) {
            tk[o] = k[j];
            tv[o++] = v[j++];
        } else {
            tk[o] = k[i];
            tv[o++] = v[i++];
        }
    }
    while (i < h) {
        tk[o] = k[i];
        tv[o++] = v[i++];
    }
    while (j < n) {
        tk[o] = k[j];
        tv[o++] = v[j++];
    }
    memcpy(k, tk, n * sizeof(pv));
    memcpy(v, tv, n * sizeof(pv));
}

static void reverse(pv *a, size_t n) {
    for (size_t i = 0; i < n / 2; i++) {
        pv t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

pv py_sorted(X *x, pv itv, pv key, int rev) {
    py_list *it = pv_iter(x, itv);
    size_t n = it->n;
    pv r = pv_list(x, PT_LIST, n);
    pv *k = py_alloc(x, (n + 1) * sizeof(pv)), *tk = py_alloc(x, (n + 1) * sizeof(pv)),
       *tv = py_alloc(x, (n + 1) * sizeof(pv));
    memcpy(r.u.l->v, it->v, n * sizeof(pv));
    r.u.l->n = n;
    if (rev) reverse(r.u.l->v, n);
    for (size_t i = 0; i < n; i++) k[i] = key.t == PT_NONE ? r.u.l->v[i] : py_call_value(x, key, r.u.l->v[i]);
    merge_sort(x, k, r.u.l->v, tk, tv, n);
    if (rev) reverse(r.u.l->v, n);
    return r;
}
