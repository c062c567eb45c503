#include "util/buf.h"

#include <math.h>
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

static int buf_double(tbgw_buf *b, double d) {
    if (!isfinite(d)) return tbgw_buf_puts(b, "null");
    char tmp[40];
    /* Shortest representation that round-trips, like the reference's JSON encoder. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* Keep a float recognisable as such: 25 -> 25.0 */
    if (!strpbrk(tmp, ".eEn")) strcat(tmp, ".0");
    return tbgw_buf_puts(b, tmp);
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
    }
    return TBGW_EINVAL;
}

const char *tbgw_buf_cstr(tbgw_buf *b) {
    if (!b->p && tbgw_buf_reserve(b, 0)) return NULL;
    b->p[b->len] = 0;
    return b->p;
}
