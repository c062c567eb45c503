#include "util/buf.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

void tbgw_buf_init(tbgw_buf *b) {
    memset(b, 0, sizeof *b);
}

void tbgw_buf_free(tbgw_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

#define SCRATCH_SLOTS 16
#define SCRATCH_KEEP  4096
typedef struct scratch_pool {
    size_t n;
    char *p[SCRATCH_SLOTS];
    size_t cap[SCRATCH_SLOTS];
} scratch_pool;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_pool_free(void *v) {
    scratch_pool *sp = v;
    for (size_t i = 0; i < sp->n; i++) free(sp->p[i]);
    free(sp);
}

static void scratch_key_init(void) {
    pthread_key_create(&scratch_key, scratch_pool_free);
}

static scratch_pool *scratch_pool_get(int create) {
    pthread_once(&scratch_once, scratch_key_init);
    scratch_pool *sp = pthread_getspecific(scratch_key);
    if (!sp && create && (sp = calloc(1, sizeof *sp)) && pthread_setspecific(scratch_key, sp)) {
        free(sp);
        sp = NULL;
    }
    return sp;
}

void tbgw_buf_scratch_take(tbgw_buf *b) {
    tbgw_buf_init(b);
    scratch_pool *sp = scratch_pool_get(0);
    if (!sp || !sp->n) return;
    sp->n--;
    b->p = sp->p[sp->n];
    b->cap = sp->cap[sp->n];
    b->p[0] = 0;
}

void tbgw_buf_scratch_give(tbgw_buf *b) {
    scratch_pool *sp = b->p && !b->oom && b->cap <= SCRATCH_KEEP ? scratch_pool_get(1) : NULL;
    if (sp && sp->n < SCRATCH_SLOTS) {
        sp->p[sp->n] = b->p;
        sp->cap[sp->n] = b->cap;
        sp->n++;
    } else {
        free(b->p);
    }
    tbgw_buf_init(b);
}

void tbgw_buf_reset(tbgw_buf *b) {
    b->len = 0;
    b->oom = 0;
}

int tbgw_buf_reserve(tbgw_buf *b, size_t extra) {
    if (b->oom) return TBGW_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return TBGW_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int tbgw_buf_append(tbgw_buf *b, const void *data, size_t n) {
    if (tbgw_buf_reserve(b, n)) return TBGW_ENOMEM;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int tbgw_buf_puts(tbgw_buf *b, const char *s) {
    return tbgw_buf_append(b, s, strlen(s));
}

int tbgw_buf_putc(tbgw_buf *b, char c) {
    if (tbgw_buf_reserve(b, 1)) return TBGW_ENOMEM;
    b->p[b->len++] = c;
    b->p[b->len] = 0;
    return 0;
}

int tbgw_buf_printf(tbgw_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return TBGW_EINVAL;
    if ((size_t)n < sizeof tmp) return tbgw_buf_append(b, tmp, (size_t)n);
    if (tbgw_buf_reserve(b, (size_t)n)) return TBGW_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int tbgw_buf_json_strn(tbgw_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (tbgw_buf_reserve(b, n + 2)) return TBGW_ENOMEM;
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (tbgw_buf_append(b, s + run, i - run)) return TBGW_ENOMEM;
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (tbgw_buf_append(b, esc, elen)) return TBGW_ENOMEM;
    }
    if (tbgw_buf_append(b, s + run, n - run)) return TBGW_ENOMEM;
    return tbgw_buf_putc(b, '"');
}

int tbgw_buf_json_str(tbgw_buf *b, const char *s) {
    return tbgw_buf_json_strn(b, s, strlen(s));
}

int tbgw_buf_i64(tbgw_buf *b, int64_t v) {
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return tbgw_buf_append(b, p, (size_t)(e - p));
}

int tbgw_buf_u64(tbgw_buf *b, uint64_t u) {
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return tbgw_buf_append(b, p, (size_t)(e - p));
}

/* Writes sign, digits and exponent the way Python's float_repr_style "short" does: positional
 * notation while the decimal point position decpt (value = 0.DIGITS x 10^decpt) is in (-4, 16],
 * else d.ddde+XX with at least two exponent digits. */
static size_t py_layout(char *out, int neg, const char *dig, int nd, int decpt) {
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt <= -4 || decpt > 16) {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        int e = decpt - 1;
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        if (e >= 100) *o++ = (char)('0' + e / 100);
        *o++ = (char)('0' + e / 10 % 10);
        *o++ = (char)('0' + e % 10);
    } else if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = decpt; i < 0; i++) *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    } else if (decpt >= nd) {
        memcpy(o, dig, (size_t)nd);
        o += nd;
        for (int i = nd; i < decpt; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    } else {
        memcpy(o, dig, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        memcpy(o, dig + decpt, (size_t)(nd - decpt));
        o += nd - decpt;
    }
    *o = 0;
    return (size_t)(o - out);
}

/* Fast path for values with at most 15 significant digits between 1e-4 and 1e15 (what sensors
 * send: 12.5, 21.37): the fewest decimals k for which the integer M = round(|d| * 10^k) reads back
 * as M / 10^k == |d|. Both are exact doubles and IEEE division rounds correctly, so that is exactly
 * what reading the decimal text gives; with at most 15 digits no other string of that length reads
 * back, so the result is the shortest one, as printf finds it. Returns 0 when it does not apply. */
static size_t fmt_short_decimal(char *out, double d) {
    static const double p10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15)) return 0;
    for (int k = 0; k < 16; k++) {
        double m = round(a * p10[k]);
        if (m >= 1e15) return 0; /* more than 15 digits */
        if (m / p10[k] != a) continue;
        char tmp[20], dig[20];
        int nd = 0;
        for (uint64_t u = (uint64_t)m; u; u /= 10) tmp[nd++] = (char)('0' + u % 10);
        for (int i = 0; i < nd; i++) dig[i] = tmp[nd - 1 - i];
        int decpt = nd - k;
        while (nd > 1 && dig[nd - 1] == '0') nd--;
        return py_layout(out, signbit(d) != 0, dig, nd, decpt);
    }
    return 0;
}

size_t tbgw_fmt_double(char out[TBGW_DOUBLE_MAX], double d) {
    if (isnan(d)) return (size_t)snprintf(out, TBGW_DOUBLE_MAX, "%s", "nan");
    if (isinf(d)) return (size_t)snprintf(out, TBGW_DOUBLE_MAX, "%s", d < 0 ? "-inf" : "inf");
    if (d == 0) return (size_t)snprintf(out, TBGW_DOUBLE_MAX, "%s", signbit(d) ? "-0.0" : "0.0");
    size_t n = fmt_short_decimal(out, d);
    if (n) return n;
    /* The shortest digits that read back: 15 significant digits always suffice when a string of 15
     * or fewer does for a normal double (trailing zeros are dropped below); otherwise 16, else 17. printf
     * rounds correctly, and the nearest string of a length is the one that reads back if any does. */
    char e[40];
    int prec = fabs(d) < DBL_MIN ? 1 : 15; /* subnormals carry fewer digits: search from 1 */
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    if (prec == 17) snprintf(e, sizeof e, "%.16e", d);
    const char *p = e;
    int neg = *p == '-';
    if (neg) p++;
    char dig[20];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') dig[nd++] = *p;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    int exp10 = atoi(p + 1);
    return py_layout(out, neg, dig, nd, exp10 + 1);
}

static int buf_double(tbgw_buf *b, double d) {
    if (!isfinite(d)) return tbgw_buf_puts(b, "null");
    char tmp[TBGW_DOUBLE_MAX];
    size_t n = tbgw_fmt_double(tmp, d);
    return tbgw_buf_append(b, tmp, n);
}

/* 1 when s is one JSON number token (surrounding whitespace allowed). */
static int json_number_text(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    if (*s == '-') s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9') s++;
    else
        return 0;
    if (*s == '.') {
        if (*++s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        if (*++s == '+' || *s == '-') s++;
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == 0;
}

int tbgw_buf_json_value(tbgw_buf *b, const tbgw_value *v) {
    switch (v->type) {
    case TBGW_V_NULL:
        return tbgw_buf_puts(b, "null");
    case TBGW_V_BOOL:
        return tbgw_buf_puts(b, v->u.b ? "true" : "false");
    case TBGW_V_INT:
        return tbgw_buf_i64(b, v->u.i);
    case TBGW_V_DOUBLE:
        return buf_double(b, v->u.d);
    case TBGW_V_STRING:
        return tbgw_buf_json_str(b, v->u.s ? v->u.s : "");
    case TBGW_V_JSON:
        return tbgw_buf_puts(b, v->u.s ? v->u.s : "null");
    case TBGW_V_UINT:
        return tbgw_buf_u64(b, v->u.u64);
    case TBGW_V_NUMBER: /* a text that is not a JSON number (a plugin's mistake) goes as a string */
        if (!v->u.s || !*v->u.s) return tbgw_buf_puts(b, "null");
        return json_number_text(v->u.s) ? tbgw_buf_puts(b, v->u.s) : tbgw_buf_json_str(b, v->u.s);
    }
    return TBGW_EINVAL;
}

const char *tbgw_buf_cstr(tbgw_buf *b) {
    if (!b->p && tbgw_buf_reserve(b, 0)) return NULL;
    b->p[b->len] = 0;
    return b->p;
}
