#include "convert/text_slice.h"

#include <stdlib.h>
#include <string.h>

static int parse_long(const char *s, size_t n, long *out) {
    if (n == 0 || n > 18) return -1;
    char tmp[24];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    long v = strtol(tmp, &end, 10);
    if (*end) return -1;
    *out = v;
    return 0;
}

int tbgw_slice_find(const char *expr, tbgw_slice *out) {
    for (const char *p = expr; (p = strchr(p, '[')); p++) {
        if (!p[1] || p[1] == ' ' || p[1] == '\t' || p[1] == ']') continue;
        const char *q = p + 2;
        while ((*q >= '0' && *q <= '9') || *q == ':' || *q == '-') q++;
        if (*q != ']') continue;
        const char *in = p + 1;
        size_t n = (size_t)(q - in);
        const char *colon = memchr(in, ':', n);
        memset(out, 0, sizeof *out);
        if (!colon) {
            out->is_index = 1;
            return parse_long(in, n, &out->a) == 0 ? 1 : -1;
        }
        if (memchr(colon + 1, ':', (size_t)(q - colon - 1))) return -1;
        size_t la = (size_t)(colon - in), lb = (size_t)(q - colon - 1);
        if (la && parse_long(in, la, &out->a) != 0) return -1;
        if (lb && parse_long(colon + 1, lb, &out->b) != 0) return -1;
        out->has_a = la > 0;
        out->has_b = lb > 0;
        return 1;
    }
    return 0;
}

int tbgw_slice_apply(const tbgw_slice *s, const char *text, size_t len, tbgw_buf *out) {
    size_t *at = malloc((len + 1) * sizeof *at);
    if (!at) return -1;
    size_t cps = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80) at[cps++] = i;
    at[cps] = len;
    long n = (long)cps;
    int rc = 0;
    if (s->is_index) {
        long i = s->a < 0 ? s->a + n : s->a;
        if (i < 0 || i >= n)
            rc = -1;
        else
            tbgw_buf_append(out, text + at[i], at[i + 1] - at[i]);
    } else {
        long a = s->has_a ? s->a : 0, b = s->has_b ? s->b : n;
        if (a < 0) a = a + n < 0 ? 0 : a + n;
        if (b < 0) b = b + n < 0 ? 0 : b + n;
        if (a > n) a = n;
        if (b > n) b = n;
        if (b > a) tbgw_buf_append(out, text + at[a], at[b] - at[a]);
    }
    free(at);
    return rc;
}
