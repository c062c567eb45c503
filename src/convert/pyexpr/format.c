/* Text formatting: repr of str/bytes, the format-spec mini-language (format(), f-strings,
 * str.format) and printf-style `%` formatting. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"

uint32_t py_utf8_next(const char *s, size_t n, size_t *i) {
    unsigned char c = (unsigned char)s[*i];
    uint32_t cp = c;
    size_t l = 1;
    if (c >= 0xF0)
        cp = c & 7u, l = 4;
    else if (c >= 0xE0)
        cp = c & 15u, l = 3;
    else if (c >= 0xC0)
        cp = c & 31u, l = 2;
    for (size_t j = 1; j < l && *i + j < n; j++) cp = cp << 6 | ((unsigned char)s[*i + j] & 0x3Fu);
    *i += l;
    return cp;
}

static int printable(uint32_t cp) {
    if (cp < 0x20 || cp == 0x7f) return 0;
    if (cp < 0x7f) return 1;
    if (cp <= 0xa0 || cp == 0xad) return 0;
    if ((cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) ||
        cp == 0x3000 || cp == 0xfeff || (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfff0 && cp <= 0xfffb) ||
        cp > 0x3134a || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0x1680 || cp == 0x180e)
        return 0;
    return 1;
}

void repr_str(const char *s, size_t n, tbgw_buf *out) {
    char q = '\'';
    if (memchr(s, '\'', n) && !memchr(s, '"', n)) q = '"';
    tbgw_buf_putc(out, q);
    for (size_t i = 0; i < n;) {
        size_t st = i;
        uint32_t cp = py_utf8_next(s, n, &i);
        if (cp == '\\' || cp == (uint32_t)q) {
            tbgw_buf_putc(out, '\\');
            tbgw_buf_putc(out, (char)cp);
        } else if (cp == '\n') {
            tbgw_buf_puts(out, "\\n");
        } else if (cp == '\r') {
            tbgw_buf_puts(out, "\\r");
        } else if (cp == '\t') {
            tbgw_buf_puts(out, "\\t");
        } else if (printable(cp)) {
            tbgw_buf_append(out, s + st, i - st);
        } else if (cp < 0x100) {
            tbgw_buf_printf(out, "\\x%02x", cp);
        } else if (cp < 0x10000) {
            tbgw_buf_printf(out, "\\u%04x", cp);
        } else {
            tbgw_buf_printf(out, "\\U%08x", cp);
        }
    }
    tbgw_buf_putc(out, q);
}

void repr_bytes(int bytearray, const unsigned char *b, size_t n, tbgw_buf *out) {
    char q = '\'';
    if (memchr(b, '\'', n) && !memchr(b, '"', n)) q = '"';
    if (bytearray) tbgw_buf_puts(out, "bytearray(");
    tbgw_buf_putc(out, 'b');
    tbgw_buf_putc(out, q);
    for (size_t i = 0; i < n; i++) {
        unsigned c = b[i];
        if (c == '\\' || c == (unsigned)q) {
            tbgw_buf_putc(out, '\\');
            tbgw_buf_putc(out, (char)c);
        } else if (c == '\n') {
            tbgw_buf_puts(out, "\\n");
        } else if (c == '\r') {
            tbgw_buf_puts(out, "\\r");
        } else if (c == '\t') {
            tbgw_buf_puts(out, "\\t");
        } else if (c < 0x20 || c >= 0x7f) {
            tbgw_buf_printf(out, "\\x%02x", c);
        } else {
            tbgw_buf_putc(out, (char)c);
        }
    }
    tbgw_buf_putc(out, q);
    if (bytearray) tbgw_buf_putc(out, ')');
}

/* ---- format spec ---- */

typedef struct fspec {
    char fill[5];
    size_t fill_n;
    char align; /* 0, < > = ^ */
    char sign;  /* 0, + - space */
    int z, alt, zero;
    int64_t width, prec; /* -1 = none */
    char group;          /* 0 , _ */
    char type;           /* 0 or the type char */
} fspec;

static int64_t spec_number(X *x, const char *s, size_t n, size_t *i) {
    int64_t v = 0;
    while (*i < n && isdigit((unsigned char)s[*i])) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[*i] - '0', &v))
            py_raise(x, "ValueError", "Too many decimal digits in format string");
        (*i)++;
    }
    return v;
}

static void parse_spec(X *x, const char *s, size_t n, fspec *f, pv v) {
    memset(f, 0, sizeof *f);
    f->width = f->prec = -1;
    f->fill[0] = ' ';
    f->fill_n = 1;
    size_t i = 0;
    size_t cl = 1;
    if (n && ((unsigned char)s[0] & 0x80)) {
        size_t j = 0;
        py_utf8_next(s, n, &j);
        cl = j;
    }
    if (n > cl && strchr("<>=^", s[cl]) && s[cl]) {
        memcpy(f->fill, s, cl);
        f->fill_n = cl;
        f->align = s[cl];
        i = cl + 1;
    } else if (n && strchr("<>=^", s[0]) && s[0]) {
        f->align = s[0];
        i = 1;
    }
    if (i < n && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) f->sign = s[i++];
    if (i < n && s[i] == 'z') f->z = 1, i++;
    if (i < n && s[i] == '#') f->alt = 1, i++;
    if (i < n && s[i] == '0') {
        f->zero = 1;
        i++;
    }
    if (i < n && isdigit((unsigned char)s[i])) f->width = spec_number(x, s, n, &i);
    if (i < n && (s[i] == ',' || s[i] == '_')) f->group = s[i++];
    if (i < n && (s[i] == ',' || s[i] == '_')) py_raise(x, "ValueError", "Cannot specify both ',' and '_'.");
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !isdigit((unsigned char)s[i]))
            py_raise(x, "ValueError", "Format specifier missing precision");
        f->prec = spec_number(x, s, n, &i);
    }
    if (i < n) f->type = s[i++];
    if (i < n)
        py_raise(x, "ValueError", "Invalid format specifier '%.*s' for object of type '%s'", (int)n, s,
                 pv_tname(v));
    if (f->zero && !f->align) {
        f->fill[0] = '0';
        f->fill_n = 1;
        f->align = '=';
    }
    if (x->mem.limit && (uint64_t)(f->width > 0 ? f->width : 0) > x->mem.limit) py_oom(x);
}

/* writes sign+prefix+body padded to the spec's width */
static void emit(X *x, const fspec *f, const char *sign, const char *body, size_t blen, char dflt_align,
                 tbgw_buf *out) {
    size_t sl = strlen(sign);
    size_t chars = utf8_count(sign, sl) + utf8_count(body, blen);
    size_t pad = f->width > 0 && (size_t)f->width > chars ? (size_t)f->width - chars : 0;
    char al = f->align ? f->align : dflt_align;
    size_t left = al == '>'   ? pad
                  : al == '^' ? pad / 2
                              : 0,
           right = al == '<'   ? pad
                   : al == '^' ? pad - pad / 2
                               : 0;
    py_step(x, pad / 16);
    if (al == '=') {
        tbgw_buf_puts(out, sign);
        for (size_t i = 0; i < pad; i++) tbgw_buf_append(out, f->fill, f->fill_n);
        tbgw_buf_append(out, body, blen);
        return;
    }
    for (size_t i = 0; i < left; i++) tbgw_buf_append(out, f->fill, f->fill_n);
    tbgw_buf_puts(out, sign);
    tbgw_buf_append(out, body, blen);
    for (size_t i = 0; i < right; i++) tbgw_buf_append(out, f->fill, f->fill_n);
}

/* inserts grouping separators into the leading digit run of s (decimal digits for floats) */
static void group_digits(const char *s, size_t n, char sep, size_t every, tbgw_buf *out) {
    size_t d = 0;
    while (d < n && (every == 4 ? isxdigit((unsigned char)s[d]) : isdigit((unsigned char)s[d]))) d++;
    for (size_t i = 0; i < d; i++) {
        if (i && (d - i) % every == 0) tbgw_buf_putc(out, sep);
        tbgw_buf_putc(out, s[i]);
    }
    tbgw_buf_append(out, s + d, n - d);
}

static void emit_number(X *x, const fspec *f, int neg, const char *prefix, const char *digits, size_t every,
                        tbgw_buf *out) {
    char sign[8];
    snprintf(sign, sizeof sign, "%s%s", neg ? "-" : f->sign == '+' ? "+" : f->sign == ' ' ? " " : "", prefix);
    tbgw_buf *b = py_buf(x);
    if (f->group) {
        size_t n = strlen(digits);
        if (f->align == '=' && f->width > 0 && f->fill[0] == '0' && f->fill_n == 1) {
            /* zero padding takes part in grouping: 01,234,567 */
            size_t intd = 0;
            while (intd < n && (every == 4 ? isxdigit((unsigned char)digits[intd])
                                           : isdigit((unsigned char)digits[intd])))
                intd++;
            int64_t want = f->width - (int64_t)strlen(sign) - (int64_t)(n - intd);
            tbgw_buf *z = py_buf(x);
            size_t total = intd;
            while (total + (total - 1) / every < (size_t)(want > 0 ? want : 0)) total++;
            for (size_t i = intd; i < total; i++) tbgw_buf_putc(z, '0');
            tbgw_buf_puts(z, digits);
            group_digits(z->p, z->len, f->group, every, b);
            py_buf_release(x, z);
        } else {
            group_digits(digits, n, f->group, every, b);
        }
    } else {
        tbgw_buf_puts(b, digits);
    }
    py_buf_check(x, b);
    emit(x, f, sign, b->p ? b->p : "", b->len, '>', out);
    py_buf_release(x, b);
}

static void format_int(X *x, pv v, const fspec *f, tbgw_buf *out) {
    char t = f->type ? f->type : 'd';
    if (f->prec >= 0) py_raise(x, "ValueError", "Precision not allowed in integer format specifier");
    if (t == 'c') {
        if (f->sign) py_raise(x, "ValueError", "Sign not allowed with integer format specifier 'c'");
        py_args a = {&v, 1, NULL, NULL, 0};
        pv c = py_builtins[py_builtin_find("chr")].fn(x, pv_none(), &a);
        emit(x, f, "", c.u.s->s, c.u.s->n, '>', out);
        return;
    }
    unsigned base = t == 'x' || t == 'X' ? 16 : t == 'o' ? 8 : t == 'b' ? 2 : 10;
    if ((base != 10 || t == 'n') && f->group == ',')
        py_raise(x, "ValueError", "Cannot specify ',' with '%c'.", t);
    if (t == 'n' && f->group) py_raise(x, "ValueError", "Cannot specify '%c' with 'n'.", f->group);
    py_big *b = big_of(x, v);
    int neg = b->neg;
    pv mag = neg ? num_unary(x, UOP_NEG, v) : v;
    tbgw_buf *d = py_buf(x);
    big_to_str(x, big_of(x, mag), base, d);
    tbgw_buf_putc(d, 0);
    if (t == 'X')
        for (char *p = d->p; *p; p++) *p = (char)toupper((unsigned char)*p);
    const char *prefix = "";
    if (f->alt) prefix = t == 'x' ? "0x" : t == 'X' ? "0X" : t == 'o' ? "0o" : t == 'b' ? "0b" : "";
    emit_number(x, f, neg, prefix, d->p, base == 10 ? 3 : 4, out);
    py_buf_release(x, d);
}

/* the float body (no sign) for type t */
static void float_body(X *x, double d, const fspec *f, char t, tbgw_buf *out) {
    if (f->prec > 2147483647) py_raise(x, "ValueError", "precision too big");
    if (x->mem.limit && (uint64_t)(f->prec > 0 ? f->prec : 0) > x->mem.limit) py_oom(x);
    size_t bufsz = (size_t)(f->prec > 0 ? f->prec : 0) + 420;
    char *buf = py_alloc(x, bufsz);
    int upper = t == 'E' || t == 'F' || t == 'G';
    if (isinf(d) || isnan(d)) {
        tbgw_buf_puts(out, isnan(d) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf"));
        if (t == '%') tbgw_buf_putc(out, '%');
        return;
    }
    int64_t p = f->prec;
    switch (t) {
    case 0:
        if (p < 0) {
            float_repr(d, buf, bufsz);
            char *ep = strchr(buf, 'e');
            if (f->alt && ep && !strchr(buf, '.')) { /* '#': the point stays (1.e+16) */
                memmove(ep + 1, ep, strlen(ep) + 1);
                *ep = '.';
            }
            tbgw_buf_puts(out, buf);
            return;
        } else {
            /* like 'g', but a fixed-point result keeps one decimal and scientific notation is used
             * from exp >= p - 1 */
            if (p == 0) p = 1;
            snprintf(buf, bufsz, "%.*e", (int)(p - 1), d);
            int e = atoi(strchr(buf, 'e') + 1);
            if (e >= -4 && e < p - 1) {
                snprintf(buf, bufsz, f->alt ? "%#.*f" : "%.*f", (int)(p - 1 - e), d);
                char *dot = strchr(buf, '.');
                if (dot && !f->alt) {
                    char *end = buf + strlen(buf) - 1;
                    while (end > dot + 1 && *end == '0') *end-- = 0;
                }
            } else if (f->alt) {
                snprintf(buf, bufsz, "%#.*e", (int)(p - 1), d);
            } else {
                char *ep = strchr(buf, 'e'), *dot = strchr(buf, '.');
                if (dot) {
                    char *q = ep - 1;
                    while (q > dot && *q == '0') q--;
                    if (q == dot) q--;
                    memmove(q + 1, ep, strlen(ep) + 1);
                }
            }
        }
        break;
    case 'e':
    case 'E':
        snprintf(buf, bufsz, f->alt ? "%#.*e" : "%.*e", (int)(p < 0 ? 6 : p), d);
        break;
    case 'f':
    case 'F':
        snprintf(buf, bufsz, f->alt ? "%#.*f" : "%.*f", (int)(p < 0 ? 6 : p), d);
        break;
    case '%':
        snprintf(buf, bufsz, f->alt ? "%#.*f%%" : "%.*f%%", (int)(p < 0 ? 6 : p), d * 100.0);
        break;
    case 'g':
    case 'G':
    case 'n':
        snprintf(buf, bufsz, f->alt ? "%#.*g" : "%.*g", (int)(p < 0 ? 6 : p == 0 ? 1 : p), d);
        break;
    default:
        buf[0] = 0;
    }
    if (upper)
        for (char *c = buf; *c; c++) *c = (char)toupper((unsigned char)*c);
    tbgw_buf_puts(out, buf);
}

static void format_float(X *x, double d, const fspec *f, tbgw_buf *out) {
    char t = f->type;
    if (t && !strchr("eEfFgGn%", t))
        py_raise(x, "ValueError", "Unknown format code '%c' for object of type 'float'", t);
    int neg = signbit(d) && !isnan(d);
    double m = fabs(d);
    tbgw_buf *b = py_buf(x);
    float_body(x, m, f, t, b);
    tbgw_buf_putc(b, 0);
    if (f->z && neg) { /* negative zero after rounding prints as zero */
        int allzero = 1;
        for (const char *c = b->p; *c; c++)
            if (*c >= '1' && *c <= '9') allzero = 0;
        if (allzero) neg = 0;
    }
    emit_number(x, f, neg, "", b->p, 3, out);
    py_buf_release(x, b);
}

void py_format_spec(X *x, pv v, const char *spec, size_t n, tbgw_buf *out) {
    if (!n) {
        pv_strv(x, v, out);
        return;
    }
    if (v.t != PT_STR && !pv_is_num(v))
        py_type_error(x, "unsupported format string passed to %s.__format__", pv_tname(v));
    fspec f;
    parse_spec(x, spec, n, &f, v);
    if (v.t == PT_STR) {
        if (f.type && f.type != 's')
            py_raise(x, "ValueError", "Unknown format code '%c' for object of type 'str'", f.type);
        if (f.sign) py_raise(x, "ValueError", "Sign not allowed in string format specifier");
        if (f.align == '=') py_raise(x, "ValueError", "'=' alignment not allowed in string format specifier");
        if (f.group) py_raise(x, "ValueError", "Cannot specify '%c' with 's'.", f.group);
        size_t len = v.u.s->n;
        if (f.prec >= 0 && (size_t)f.prec < v.u.s->nchars) {
            size_t i = 0;
            for (int64_t c = 0; c < f.prec; c++) py_utf8_next(v.u.s->s, v.u.s->n, &i);
            len = i;
        }
        emit(x, &f, "", v.u.s->s, len, '<', out);
        return;
    }
    if (pv_is_int(v)) {
        if (f.type && strchr("eEfFgG%", f.type)) {
            format_float(x, pv_to_double(x, v), &f, out);
            return;
        }
        if (f.type && !strchr("bcdoxXn", f.type))
            py_raise(x, "ValueError", "Unknown format code '%c' for object of type 'int'", f.type);
        format_int(x, v.t == PT_BOOL ? pv_int(v.u.i) : v, &f, out);
        return;
    }
    if (v.t == PT_FLOAT) {
        format_float(x, v.u.f, &f, out);
        return;
    }
    py_type_error(x, "unsupported format string passed to %s.__format__", pv_tname(v));
}

/* ---- % formatting ---- */

static pv percent_arg(X *x, const py_list *args, size_t *ai) {
    if (*ai >= args->n) py_type_error(x, "not enough arguments for format string");
    return args->v[(*ai)++];
}

static void percent_one(X *x, char conv, pv v, const char *flags, int64_t width, int64_t prec,
                        tbgw_buf *out) {
    fspec f;
    memset(&f, 0, sizeof f);
    f.fill[0] = ' ';
    f.fill_n = 1;
    f.width = width;
    f.prec = prec;
    f.align = strchr(flags, '-') ? '<' : '>';
    f.sign = strchr(flags, '+') ? '+' : strchr(flags, ' ') ? ' ' : 0;
    f.alt = strchr(flags, '#') != NULL;
    if (strchr(flags, '0') && f.align == '>' && conv != 's' && conv != 'r' && conv != 'a' && conv != 'c') {
        f.fill[0] = '0';
        f.align = '=';
    }
    switch (conv) {
    case 's':
    case 'r':
    case 'a': {
        tbgw_buf *b = py_buf(x);
        if (conv == 's')
            pv_strv(x, v, b);
        else
            pv_repr(x, v, b);
        size_t len = b->len;
        pv s = py_buf_done(x, b);
        if (prec >= 0 && (size_t)prec < s.u.s->nchars) {
            size_t i = 0;
            for (int64_t c = 0; c < prec; c++) py_utf8_next(s.u.s->s, s.u.s->n, &i);
            len = i;
        }
        emit(x, &f, "", s.u.s->s, len, '>', out);
        return;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
        int is_d = conv == 'd' || conv == 'i' || conv == 'u';
        if (v.t == PT_FLOAT && is_d) {
            v = int_from_float(x, v.u.f);
        } else if (!pv_is_int(v)) {
            if (is_d) py_type_error(x, "%%%c format: a real number is required, not %s", conv, pv_tname(v));
            py_type_error(x, "%%%c format: an integer is required, not %s", conv, pv_tname(v));
        }
        if (v.t == PT_BOOL) v = pv_int(v.u.i);
        f.type = is_d ? 'd' : conv;
        f.prec = -1;
        if (prec > 0) { /* minimum number of digits */
            int neg = num_cmp(x, v, pv_int(0)) < 0;
            tbgw_buf *d = py_buf(x);
            big_to_str(x, big_of(x, neg ? num_unary(x, UOP_NEG, v) : v), is_d ? 10 : conv == 'o' ? 8 : 16, d);
            tbgw_buf_putc(d, 0);
            if (conv == 'X')
                for (char *p = d->p; *p; p++) *p = (char)toupper((unsigned char)*p);
            tbgw_buf *z = py_buf(x);
            for (size_t k = strlen(d->p); k < (size_t)prec; k++) tbgw_buf_putc(z, '0');
            tbgw_buf_puts(z, d->p);
            tbgw_buf_putc(z, 0);
            const char *prefix = f.alt ? (conv == 'x'   ? "0x"
                                          : conv == 'X' ? "0X"
                                          : conv == 'o' ? "0o"
                                                        : "")
                                       : "";
            emit_number(x, &f, neg, prefix, z->p, 3, out);
            py_buf_release(x, d);
            py_buf_release(x, z);
            return;
        }
        format_int(x, v, &f, out);
        return;
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G': {
        if (!pv_is_num(v)) py_type_error(x, "must be real number, not %s", pv_tname(v));
        f.type = conv;
        format_float(x, pv_to_double(x, v), &f, out);
        return;
    }
    case 'c': {
        pv c = v;
        if (pv_is_int(v)) {
            py_args a = {&v, 1, NULL, NULL, 0};
            c = py_builtins[py_builtin_find("chr")].fn(x, pv_none(), &a);
        } else if (v.t != PT_STR || v.u.s->nchars != 1) {
            py_type_error(x, "%%c requires int or char");
        }
        emit(x, &f, "", c.u.s->s, c.u.s->n, '>', out);
        return;
    }
    default:
        break;
    }
}

pv py_percent(X *x, pv fmt, pv args) {
    const py_str *s = fmt.u.s;
    py_list one = {1, 1, &args, NULL};
    const py_list *al = args.t == PT_TUPLE ? args.u.l : &one;
    /* CPython: any argument with item access (but a tuple or str) works as the mapping, and then
     * unused arguments are no error */
    int mapping = args.t == PT_DICT || args.t == PT_LIST || args.t == PT_RANGE || args.t == PT_BYTES ||
                  args.t == PT_BYTEARRAY;
    size_t ai = 0;
    int used_map = 0;
    tbgw_buf *out = py_buf(x);
    for (size_t i = 0; i < s->n;) {
        if (s->s[i] != '%') {
            const char *nx = memchr(s->s + i, '%', s->n - i);
            size_t e = nx ? (size_t)(nx - s->s) : s->n;
            tbgw_buf_append(out, s->s + i, e - i);
            i = e;
            continue;
        }
        size_t start = i++;
        pv v = pv_none();
        int have_v = 0;
        if (i < s->n && s->s[i] == '(') {
            if (!mapping) py_type_error(x, "format requires a mapping");
            size_t k = i + 1;
            int depth = 1;
            while (k < s->n && depth) {
                if (s->s[k] == '(') depth++;
                if (s->s[k] == ')') depth--;
                k++;
            }
            if (depth) py_raise(x, "ValueError", "incomplete format key");
            pv key = pv_str(x, s->s + i + 1, k - i - 2);
            v = py_index_get(x, args, key);
            have_v = 1;
            used_map = 1;
            i = k;
        }
        char flags[8] = {0};
        size_t nf = 0;
        while (i < s->n && strchr("-+ #0", s->s[i]) && s->s[i]) {
            if (nf < sizeof flags - 1) flags[nf++] = s->s[i];
            i++;
        }
        int64_t width = -1, prec = -1;
        if (i < s->n && s->s[i] == '*') {
            pv w = percent_arg(x, al, &ai);
            if (!pv_is_int(w)) py_type_error(x, "* wants int");
            width = pv_index(x, w, "* wants int");
            if (width < 0) {
                width = -width;
                if (nf < sizeof flags - 1) flags[nf++] = '-';
            }
            i++;
        } else {
            while (i < s->n && isdigit((unsigned char)s->s[i])) {
                width = (width < 0 ? 0 : width * 10) + (s->s[i++] - '0');
                if (width > 2147483647) py_raise(x, "ValueError", "width too big");
            }
        }
        if (i < s->n && s->s[i] == '.') {
            i++;
            prec = 0;
            if (i < s->n && s->s[i] == '*') {
                prec = pv_index(x, percent_arg(x, al, &ai), "* wants int");
                i++;
            } else {
                while (i < s->n && isdigit((unsigned char)s->s[i])) {
                    prec = prec * 10 + (s->s[i++] - '0');
                    if (prec > 2147483647) py_raise(x, "ValueError", "precision too big");
                }
            }
        }
        if (x->mem.limit && (width > (int64_t)x->mem.limit || prec > 100000)) py_oom(x);
        while (i < s->n && strchr("hlL", s->s[i]) && s->s[i]) i++;
        if (i >= s->n) py_raise(x, "ValueError", "incomplete format");
        char conv = s->s[i++];
        if (conv == '%' && i - start == 2) { /* "%%" only: with flags or a width it is an error */
            tbgw_buf_putc(out, '%');
            continue;
        }
        if (!have_v) { /* the argument is taken before the conversion is checked (as CPython) */
            v = mapping && !used_map ? args : percent_arg(x, al, &ai);
            have_v = 1;
        }
        if (!strchr("sradiuxXoeEfFgGc", conv) || conv == '%')
            py_raise(x, "ValueError", "unsupported format character '%c' (0x%x) at index %zu",
                     conv >= 0x20 && conv < 0x7f ? conv : '?', (unsigned)(unsigned char)conv,
                     start + (i - 1 - start));
        if (!have_v) v = mapping && !used_map ? args : percent_arg(x, al, &ai);
        percent_one(x, conv, v, flags, width, prec, out);
        py_buf_check(x, out);
    }
    if (!mapping && ai < al->n) py_type_error(x, "not all arguments converted during string formatting");
    return py_buf_done(x, out);
}

/* ---- str.format ---- */

typedef struct fmt_state {
    const pv *args;
    size_t nargs;
    const pv *kwn, *kwv;
    size_t nkw;
    int auto_idx; /* -1 manual, >= 0 next automatic index */
    int manual;
} fmt_state;

static pv field_value(X *x, fmt_state *st, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] != '.' && s[i] != '[') i++;
    pv v;
    if (i == 0) {
        if (st->manual)
            py_raise(x, "ValueError",
                     "cannot switch from manual field specification to automatic field numbering");
        size_t idx = (size_t)st->auto_idx++;
        if (idx >= st->nargs)
            py_raise(x, "IndexError", "Replacement index %zu out of range for positional args tuple", idx);
        v = st->args[idx];
    } else if (isdigit((unsigned char)s[0])) {
        if (st->auto_idx > 0)
            py_raise(x, "ValueError",
                     "cannot switch from automatic field numbering to manual field specification");
        st->manual = 1;
        size_t idx = 0;
        for (size_t k = 0; k < i; k++) {
            if (!isdigit((unsigned char)s[k])) py_raise(x, "ValueError", "invalid field name");
            idx = idx * 10 + (size_t)(s[k] - '0');
            if (idx > 1000000) break;
        }
        if (idx >= st->nargs)
            py_raise(x, "IndexError", "Replacement index %zu out of range for positional args tuple", idx);
        v = st->args[idx];
    } else {
        size_t k;
        for (k = 0; k < st->nkw; k++)
            if (st->kwn[k].u.s->n == i && !memcmp(st->kwn[k].u.s->s, s, i)) break;
        if (k == st->nkw) py_raise(x, "KeyError", "'%.*s'", (int)i, s);
        v = st->kwv[k];
    }
    while (i < n) {
        if (s[i] == '.') {
            size_t j = ++i;
            while (j < n && s[j] != '.' && s[j] != '[') j++;
            if (j == i || s[i] == '_')
                py_raise(x, "ValueError", "attribute names starting with '_' or empty are not supported");
            pv name = pv_str(x, s + i, j - i);
            v = py_getattr(x, v, name.u.s->s);
            i = j;
        } else if (s[i] == '[') {
            size_t j = ++i;
            while (j < n && s[j] != ']') j++;
            if (j >= n) py_raise(x, "ValueError", "Missing ']' in format string");
            int digits = j > i;
            for (size_t k = i; k < j; k++) digits &= isdigit((unsigned char)s[k]) != 0;
            pv key = digits ? big_parse(x, s + i, j - i, 10) : pv_str(x, s + i, j - i);
            v = py_index_get(x, v, key);
            i = j + 1;
        } else {
            py_raise(x, "ValueError", "Only '.' or '[' may follow ']' in format field specifier");
        }
    }
    return v;
}

static void format_field(X *x, fmt_state *st, const char *s, size_t n, int level, tbgw_buf *out);

static void format_text(X *x, fmt_state *st, const char *s, size_t n, int level, tbgw_buf *out) {
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '{' && i + 1 < n && s[i + 1] == '{') {
            tbgw_buf_putc(out, '{');
            i += 2;
        } else if (c == '}' && i + 1 < n && s[i + 1] == '}') {
            tbgw_buf_putc(out, '}');
            i += 2;
        } else if (c == '}') {
            py_raise(x, "ValueError", "Single '}' encountered in format string");
        } else if (c == '{') {
            size_t j = i + 1;
            int depth = 1, in_name = 1;
            while (j < n && depth) {
                if (in_name && s[j] == '[') { /* an index in the field name: braces inside do not count */
                    while (j < n && s[j] != ']') j++;
                    if (j >= n) py_raise(x, "ValueError", "expected '}' before end of string");
                }
                if (s[j] == ':' || s[j] == '!') in_name = 0;
                if (s[j] == '{') depth++;
                if (s[j] == '}') depth--;
                if (depth) j++;
            }
            if (j >= n)
                py_raise(x, "ValueError", "%s",
                         level ? "unmatched '{' in format spec" : "Single '{' encountered in format string");
            format_field(x, st, s + i + 1, j - i - 1, level, out);
            i = j + 1;
        } else {
            tbgw_buf_putc(out, c);
            i++;
        }
        py_buf_check(x, out);
    }
}

static void format_field(X *x, fmt_state *st, const char *s, size_t n, int level, tbgw_buf *out) {
    if (level > 1) py_raise(x, "ValueError", "Max string recursion exceeded");
    size_t i = 0;
    int br = 0;
    while (i < n && (br || (s[i] != '!' && s[i] != ':'))) {
        if (s[i] == '[') br = 1;
        if (s[i] == ']') br = 0;
        i++;
    }
    pv v = field_value(x, st, s, i);
    char conv = 0;
    if (i < n && s[i] == '!') {
        if (i + 1 >= n || !strchr("rsa", s[i + 1]) || (i + 2 < n && s[i + 2] != ':'))
            py_raise(x, "ValueError", "Unknown conversion specifier %c", i + 1 < n ? s[i + 1] : '?');
        conv = s[i + 1];
        i += 2;
    }
    if (conv) {
        tbgw_buf *b = py_buf(x);
        if (conv == 's')
            pv_strv(x, v, b);
        else
            pv_repr(x, v, b);
        v = py_buf_done(x, b);
    }
    if (i < n && s[i] == ':') {
        tbgw_buf *spec = py_buf(x);
        format_text(x, st, s + i + 1, n - i - 1, level + 1, spec);
        py_format_spec(x, v, spec->p ? spec->p : "", spec->len, out);
        py_buf_release(x, spec);
    } else {
        pv_strv(x, v, out);
    }
}

pv py_str_format(X *x, pv fmt, const pv *args, size_t nargs, const pv *kwn, const pv *kwv, size_t nkw) {
    fmt_state st = {args, nargs, kwn, kwv, nkw, 0, 0};
    tbgw_buf *out = py_buf(x);
    format_text(x, &st, fmt.u.s->s, fmt.u.s->n, 0, out);
    return py_buf_done(x, out);
}
