/* BLE uplink conversion: the reference's BytesBLEUplinkConverter and HexBytesBLEUplinkConverter
 * (docs/connectors/ble.md). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/ble/ble_internal.h"

int tbgw_ble_conv_init(tbgw_ble_conv *cv) {
    memset(cv, 0, sizeof *cv);
    tbgw_buf_init(&cv->scratch);
    tbgw_err err;
    static const char big[] = "int(h, 16)";
    cv->ctx = tbgw_py_ctx_new(NULL);
    if (!cv->ctx || tbgw_py_compile(big, sizeof big - 1, 0, &cv->bigint, &err, NULL) != 0) {
        tbgw_ble_conv_free(cv);
        return TBGW_ENOMEM;
    }
    return 0;
}

void tbgw_ble_conv_free(tbgw_ble_conv *cv) {
    if (cv->ctx) tbgw_py_ctx_free(cv->ctx);
    if (cv->bigint) tbgw_py_free(cv->bigint);
    tbgw_buf_free(&cv->scratch);
    memset(cv, 0, sizeof *cv);
}

/* Length of a token matching the reference's \[[^\s][0-9:]*] at s, or 0. */
static size_t token_at(const char *s) {
    if (s[0] != '[' || !s[1] || isspace((unsigned char)s[1])) return 0;
    size_t i = 2;
    if ((unsigned char)s[1] >= 0xC0) /* [^\s] takes a whole code point */
        while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
    while (isdigit((unsigned char)s[i]) || s[i] == ':') i++;
    return s[i] == ']' ? i + 1 : 0;
}

/* Python's int() of one token part; saturates far beyond any byte count. */
static int part_int(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return -1;
    long long v = 0;
    for (; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        if (v < LLONG_MAX / 100) v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

typedef struct tok {
    int is_index, has_a, has_b;
    long long a, b;
} tok;

/* Splits the inside of a token on ':' as the reference: two parts = slice, one = index. */
static int tok_parse(const char *in, size_t n, tok *t) {
    memset(t, 0, sizeof *t);
    const char *colon = memchr(in, ':', n);
    if (!colon) {
        t->is_index = 1;
        return part_int(in, n, &t->a);
    }
    size_t la = (size_t)(colon - in), lb = n - la - 1;
    if (memchr(colon + 1, ':', lb)) return -1; /* three parts: int() of the whole fails */
    if (la && part_int(in, la, &t->a)) return -1;
    if (lb && part_int(colon + 1, lb, &t->b)) return -1;
    t->has_a = la > 0;
    t->has_b = lb > 0;
    return 0;
}

static long long clampi(long long x, long long n) {
    if (x < 0) {
        x += n;
        return x < 0 ? 0 : x;
    }
    return x > n ? n : x;
}

/* Python slice bounds [a:b] over n elements. */
static void slice_bounds(int has_a, long long a, int has_b, long long b, long long n, size_t *from,
                         size_t *to) {
    long long f = has_a ? clampi(a, n) : 0, e = has_b ? clampi(b, n) : n;
    *from = (size_t)f;
    *to = (size_t)(e < f ? f : e);
}

static int index_of(long long i, size_t n, size_t *out) {
    if (i < 0) i += (long long)n;
    if (i < 0 || i >= (long long)n) return -1;
    *out = (size_t)i;
    return 0;
}

static int bytes_value(tbgw_ble_conv *cv, const bitem *it, const uint8_t *d, size_t n, tbgw_value *out,
                       tbgw_err *err) {
    tbgw_buf *b = &cv->scratch;
    for (const char *p = it->expr; *p;) {
        size_t tl = token_at(p);
        if (!tl) {
            tbgw_buf_putc(b, *p++);
            continue;
        }
        tok t;
        size_t from, to;
        if (tok_parse(p + 1, tl - 2, &t))
            return tbgw_err_set(err, TBGW_EINVAL, "%s: invalid literal for int() in %.*s", it->key, (int)tl,
                                p);
        if (t.is_index) {
            if (index_of(t.a, n, &from))
                return tbgw_err_set(err, TBGW_EINVAL, "%s: IndexError: index %lld out of range (%zu bytes)",
                                    it->key, t.a, n);
            to = from + 1;
        } else {
            slice_bounds(t.has_a, t.a, t.has_b, t.b, (long long)n, &from, &to);
        }
        for (size_t i = from; i < to; i++) tbgw_buf_printf(b, "%u", d[i]);
        p += tl;
    }
    if (b->oom) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    *out = tbgw_value_string(tbgw_buf_cstr(b));
    return 0;
}

static const char hexd[] = "0123456789abcdef";

/* The integer of one hex token over data.hex(), as the reference computes it; an index gives
 * the byte at that position. */
static int hex_token(tbgw_ble_conv *cv, const bitem *it, const tok *t, const uint8_t *d, size_t n,
                     const tbgw_py_val **v, tbgw_err *err) {
    size_t from, to;
    if (t->is_index) {
        if (index_of(t->a, n, &from))
            return tbgw_err_set(err, TBGW_EINVAL, "%s: IndexError: index %lld out of range (%zu bytes)",
                                it->key, t->a, n);
        *v = tbgw_py_int(cv->ctx, d[from]);
        return *v ? 0 : TBGW_ENOMEM;
    }
    /* from = a*2 (or none), to = b*2 only when both are given */
    int both = t->has_a && t->has_b;
    slice_bounds(t->has_a, t->a * 2, both, t->b * 2, (long long)n * 2, &from, &to);
    if (from == to)
        return tbgw_err_set(err, TBGW_EINVAL, "%s: ValueError: invalid literal for int() with base 16: ''",
                            it->key);
    char small[16];
    if (to - from <= 15) {
        for (size_t i = from; i < to; i++) small[i - from] = hexd[(d[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
        small[to - from] = 0;
        *v = tbgw_py_int(cv->ctx, (int64_t)strtoll(small, NULL, 16));
        return *v ? 0 : TBGW_ENOMEM;
    }
    tbgw_buf h;
    tbgw_buf_init(&h);
    for (size_t i = from; i < to; i++) tbgw_buf_putc(&h, hexd[(d[i / 2] >> ((i & 1) ? 0 : 4)) & 15]);
    const tbgw_py_val *hv = h.oom ? NULL : tbgw_py_str(cv->ctx, tbgw_buf_cstr(&h), h.len);
    tbgw_buf_free(&h);
    if (!hv || tbgw_py_bind(cv->ctx, "h", hv)) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    return tbgw_py_eval(cv->bigint, cv->ctx, v, err);
}

static int hex_value(tbgw_ble_conv *cv, const bitem *it, const uint8_t *d, size_t n, tbgw_value *out,
                     tbgw_err *err) {
    const tbgw_py_val *v = NULL;
    for (const char *p = it->expr; *p; p++) {
        size_t tl = token_at(p);
        if (!tl) continue;
        tok t;
        if (tok_parse(p + 1, tl - 2, &t))
            return tbgw_err_set(err, TBGW_EINVAL, "%s: invalid literal for int() in %.*s", it->key, (int)tl,
                                p);
        int rc = hex_token(cv, it, &t, d, n, &v, err);
        if (rc) return rc;
        if (it->compute) {
            if (tbgw_py_bind(cv->ctx, "value", v)) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
            tbgw_err e2 = {0};
            if (tbgw_py_eval(it->compute, cv->ctx, &v, &e2))
                return tbgw_err_set(err, TBGW_EINVAL, "%s: compute: %s", it->key, e2.msg);
        }
        p += tl - 1;
    }
    if (!v) { /* no slice token: the expression's own text */
        *out = tbgw_value_string(it->expr);
        return 0;
    }
    tbgw_err e2 = {0};
    if (tbgw_py_to_value(cv->ctx, v, out, &cv->scratch, &e2))
        return tbgw_err_set(err, TBGW_EINVAL, "%s: %s", it->key, e2.msg);
    return 0;
}

int tbgw_ble_value(tbgw_ble_conv *cv, const bitem *it, const uint8_t *data, size_t n, tbgw_value *out,
                   tbgw_err *err) {
    tbgw_py_ctx_reset(cv->ctx);
    tbgw_buf_reset(&cv->scratch);
    if (!data) data = (const uint8_t *)"";
    return it->hex ? hex_value(cv, it, data, n, out, err) : bytes_value(cv, it, data, n, out, err);
}

int tbgw_ble_add(tbgw_ble_conv *cv, tbgw_converted *rec, const bitem *it, const uint8_t *data, size_t n,
                 tbgw_err *err) {
    tbgw_value v;
    int rc = tbgw_ble_value(cv, it, data, n, &v, err);
    if (rc) return rc;
    const tbgw_report_strategy *rs = it->rs.type != TBGW_RS_UNSET ? &it->rs : NULL;
    rc = it->telemetry ? tbgw_converted_add_telemetry(rec, tbgw_now_ms(), it->key, &v, rs)
                       : tbgw_converted_add_attribute(rec, it->key, &v, rs);
    return rc ? tbgw_err_set(err, rc, "%s: cannot add the value", it->key) : 0;
}
