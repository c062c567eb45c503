/* Byte and text helpers of the Socket connector: Python slices, codecs, bytes repr and json.dumps. */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/socket/sock.h"
#include "util/utf8.h"

static void normalize(const char *in, char *out, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < cap; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        out[j++] = c == '_' ? '-' : c;
    }
    out[j] = 0;
}

static const struct {
    const char *py, *iconv;
} codec_alias[] = {
    {"latin-1", "ISO-8859-1"},    {"latin1", "ISO-8859-1"},    {"l1", "ISO-8859-1"},
    {"iso-8859-1", "ISO-8859-1"}, {"iso8859-1", "ISO-8859-1"}, {"ascii", "ASCII"},
    {"us-ascii", "ASCII"},        {"utf-16-le", "UTF-16LE"},   {"utf-16le", "UTF-16LE"},
    {"utf-16-be", "UTF-16BE"},    {"utf-16be", "UTF-16BE"},    {"utf-32-le", "UTF-32LE"},
    {"utf-32le", "UTF-32LE"},     {"utf-32-be", "UTF-32BE"},   {"utf-32be", "UTF-32BE"},
};

int sock_enc_parse(const char *name, sock_enc *out) {
    memset(out, 0, sizeof *out);
    normalize(name ? name : "utf-8", out->name, sizeof out->name);
    const char *n = out->name;
    if (!strcmp(n, "utf-8") || !strcmp(n, "utf8") || !strcmp(n, "u8") || !strcmp(n, "utf")) {
        out->kind = SOCK_ENC_UTF8;
        return 0;
    }
    if (!strcmp(n, "hex")) {
        out->kind = SOCK_ENC_HEX;
        return 0;
    }
    if (!strcmp(n, "utf-16") || !strcmp(n, "utf16")) {
        out->kind = SOCK_ENC_UTF16;
        return 0;
    }
    if (!strcmp(n, "utf-32") || !strcmp(n, "utf32")) {
        out->kind = SOCK_ENC_UTF32;
        return 0;
    }
    out->kind = SOCK_ENC_ICONV;
    const char *ic = NULL;
    for (size_t i = 0; i < sizeof codec_alias / sizeof codec_alias[0]; i++)
        if (!strcmp(n, codec_alias[i].py)) ic = codec_alias[i].iconv;
    char up[32];
    if (!ic) {
        size_t i = 0;
        for (; n[i] && i + 1 < sizeof up; i++) up[i] = (char)toupper((unsigned char)n[i]);
        up[i] = 0;
        ic = up;
    }
    snprintf(out->iconv, sizeof out->iconv, "%s", ic);
    iconv_t cd = iconv_open("UTF-8", out->iconv);
    if (cd == (iconv_t)-1) return TBGW_EINVAL;
    iconv_close(cd);
    return 0;
}

int sock_slice_resolve(const sock_slice *s, size_t len, size_t *a, size_t *b) {
    int64_t n = (int64_t)len;
    if (s->single) {
        int64_t i = s->from < 0 ? s->from + n : s->from;
        if (i < 0 || i >= n) return -1;
        *a = (size_t)i;
        *b = (size_t)i + 1;
        return 0;
    }
    int64_t f = s->has_from ? s->from : 0, t = s->has_to ? s->to : n;
    if (f < 0) f = f + n < 0 ? 0 : f + n;
    if (t < 0) t = t + n < 0 ? 0 : t + n;
    if (f > n) f = n;
    if (t > n) t = n;
    if (t < f) t = f;
    *a = (size_t)f;
    *b = (size_t)t;
    return 0;
}

int sock_py_repr_bytes(const uint8_t *p, size_t n, tbgw_buf *out) {
    int sq = 0, dq = 0;
    for (size_t i = 0; i < n; i++) {
        sq |= p[i] == '\'';
        dq |= p[i] == '"';
    }
    char quote = (sq && !dq) ? '"' : '\'';
    tbgw_buf_putc(out, 'b');
    tbgw_buf_putc(out, quote);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == (uint8_t)quote || c == '\\') {
            tbgw_buf_putc(out, '\\');
            tbgw_buf_putc(out, (char)c);
        } else if (c == '\t') {
            tbgw_buf_puts(out, "\\t");
        } else if (c == '\n') {
            tbgw_buf_puts(out, "\\n");
        } else if (c == '\r') {
            tbgw_buf_puts(out, "\\r");
        } else if (c < 0x20 || c >= 0x7F) {
            tbgw_buf_printf(out, "\\x%02x", c);
        } else {
            tbgw_buf_putc(out, (char)c);
        }
    }
    tbgw_buf_putc(out, quote);
    return out->oom ? TBGW_ENOMEM : 0;
}

/* iconv from codec to UTF-8; -1 when the input is refused. */
static int iconv_to_utf8(const char *codec, const uint8_t *p, size_t n, tbgw_buf *out) {
    iconv_t cd = iconv_open("UTF-8", codec);
    if (cd == (iconv_t)-1) return -1;
    size_t mark = out->len;
    char *in = (char *)p;
    size_t inleft = n;
    int rc = 0;
    while (inleft) {
        if (tbgw_buf_reserve(out, inleft * 4 + 16) < 0) {
            rc = TBGW_ENOMEM;
            break;
        }
        char *o = out->p + out->len;
        size_t oleft = out->cap - out->len;
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        out->len = (size_t)(o - out->p);
        if (r == (size_t)-1 && errno != E2BIG) {
            rc = -1;
            break;
        }
    }
    iconv_close(cd);
    if (rc) out->len = mark;
    return rc;
}

static const char *utf16_codec(const uint8_t **p, size_t *n, int wide) {
    size_t bl = wide ? 4 : 2;
    if (*n >= bl) {
        static const uint8_t le16[] = {0xFF, 0xFE}, be16[] = {0xFE, 0xFF};
        static const uint8_t le32[] = {0xFF, 0xFE, 0, 0}, be32[] = {0, 0, 0xFE, 0xFF};
        if (!memcmp(*p, wide ? le32 : le16, bl)) {
            *p += bl, *n -= bl;
            return wide ? "UTF-32LE" : "UTF-16LE";
        }
        if (!memcmp(*p, wide ? be32 : be16, bl)) {
            *p += bl, *n -= bl;
            return wide ? "UTF-32BE" : "UTF-16BE";
        }
    }
    return wide ? "UTF-32LE" : "UTF-16LE"; /* Python: native order without a BOM */
}

int sock_decode(const sock_enc *e, const uint8_t *p, size_t n, tbgw_buf *out) {
    if (e->kind == SOCK_ENC_HEX) {
        for (size_t i = 0; i < n; i++) tbgw_buf_printf(out, "%02x", p[i]);
        return out->oom ? TBGW_ENOMEM : 0;
    }
    /* NUL bytes removed first */
    uint8_t *q = NULL;
    const uint8_t *src = p;
    size_t m = n;
    int wide = e->kind == SOCK_ENC_UTF16 || e->kind == SOCK_ENC_UTF32 || strstr(e->iconv, "16") ||
               strstr(e->iconv, "32") || strstr(e->iconv, "UCS");
    if (!wide && memchr(p, 0, n)) {
        if (!(q = malloc(n))) return TBGW_ENOMEM;
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (p[i]) q[m++] = p[i];
        src = q;
    }
    int rc = 0;
    if (e->kind == SOCK_ENC_UTF8) {
        if (tbgw_utf8_valid(src, m))
            tbgw_buf_append(out, src, m);
        else
            rc = -1;
    } else {
        size_t mark = out->len;
        const uint8_t *b = src;
        size_t bl = m;
        const char *codec = e->kind == SOCK_ENC_UTF16   ? utf16_codec(&b, &bl, 0)
                            : e->kind == SOCK_ENC_UTF32 ? utf16_codec(&b, &bl, 1)
                                                        : e->iconv;
        rc = iconv_to_utf8(codec, b, bl, out);
        /* what iconv produced must itself be valid text (no lone surrogates) */
        if (!rc && out->len > mark && !tbgw_utf8_valid((const uint8_t *)out->p + mark, out->len - mark)) {
            out->len = mark;
            rc = -1;
        }
        if (!rc && wide) { /* U+0000 removed after decoding multi-byte codecs */
            size_t w = mark;
            for (size_t i = mark; i < out->len; i++)
                if (out->p[i]) out->p[w++] = out->p[i];
            out->len = w;
        }
    }
    free(q);
    if (rc == TBGW_ENOMEM) return rc;
    if (rc < 0) {
        sock_py_repr_bytes(p, n, out);
        return out->oom ? TBGW_ENOMEM : 1;
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

int sock_encode(const sock_enc *e, const char *text, size_t len, tbgw_buf *out) {
    if (e->kind == SOCK_ENC_UTF8) {
        tbgw_buf_append(out, text, len);
        return out->oom ? TBGW_ENOMEM : 0;
    }
    if (e->kind == SOCK_ENC_HEX) {
        size_t mark = out->len;
        int hi = -1;
        for (size_t i = 0; i < len; i++) {
            if (isspace((unsigned char)text[i])) continue;
            int v = hexval(text[i]);
            if (v < 0) {
                out->len = mark;
                return TBGW_EINVAL;
            }
            if (hi < 0) {
                hi = v;
            } else {
                tbgw_buf_putc(out, (char)(hi << 4 | v));
                hi = -1;
            }
        }
        if (hi >= 0) {
            out->len = mark;
            return TBGW_EINVAL;
        }
        return out->oom ? TBGW_ENOMEM : 0;
    }
    const char *codec = e->iconv;
    if (e->kind == SOCK_ENC_UTF16) {
        tbgw_buf_append(out, "\xFF\xFE", 2);
        codec = "UTF-16LE";
    } else if (e->kind == SOCK_ENC_UTF32) {
        tbgw_buf_append(out, "\xFF\xFE\0\0", 4);
        codec = "UTF-32LE";
    }
    iconv_t cd = iconv_open(codec, "UTF-8");
    if (cd == (iconv_t)-1) return TBGW_EINVAL;
    char *in = (char *)text;
    size_t inleft = len;
    int rc = 0;
    while (inleft && !rc) {
        if (tbgw_buf_reserve(out, inleft * 4 + 16) < 0) {
            rc = TBGW_ENOMEM;
            break;
        }
        char *o = out->p + out->len;
        size_t oleft = out->cap - out->len;
        size_t r = iconv(cd, &in, &inleft, &o, &oleft);
        out->len = (size_t)(o - out->p);
        if (r == (size_t)-1 && errno != E2BIG) rc = TBGW_EINVAL;
    }
    iconv_close(cd);
    return rc;
}

/* ---- json.dumps --------------------------------------------------------------------------- */

/* Python's repr(float): shortest round-trip digits; fixed notation for exponents -4..15. */
static int py_float(tbgw_buf *out, double d) {
    if (isnan(d)) return tbgw_buf_puts(out, "NaN");
    if (isinf(d)) return tbgw_buf_puts(out, d < 0 ? "-Infinity" : "Infinity");
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp = [-]D[.DDD]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *q = tmp;
    int neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (isdigit((unsigned char)*q)) digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    if (neg) tbgw_buf_putc(out, '-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            tbgw_buf_puts(out, "0.");
            for (int i = 0; i < -exp - 1; i++) tbgw_buf_putc(out, '0');
            tbgw_buf_puts(out, digits);
        } else {
            for (int i = 0; i <= exp; i++) tbgw_buf_putc(out, (size_t)i < nd ? digits[i] : '0');
            tbgw_buf_putc(out, '.');
            if ((size_t)exp + 1 < nd)
                tbgw_buf_puts(out, digits + exp + 1);
            else
                tbgw_buf_putc(out, '0');
        }
    } else {
        tbgw_buf_putc(out, digits[0]);
        if (nd > 1) {
            tbgw_buf_putc(out, '.');
            tbgw_buf_puts(out, digits + 1);
        }
        tbgw_buf_printf(out, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

static int py_str(tbgw_buf *out, const char *s, size_t n) {
    tbgw_buf_putc(out, '"');
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        if (c == '"' || c == '\\') {
            tbgw_buf_putc(out, '\\');
            tbgw_buf_putc(out, (char)c);
        } else if (c == '\n') {
            tbgw_buf_puts(out, "\\n");
        } else if (c == '\r') {
            tbgw_buf_puts(out, "\\r");
        } else if (c == '\t') {
            tbgw_buf_puts(out, "\\t");
        } else if (c == '\b') {
            tbgw_buf_puts(out, "\\b");
        } else if (c == '\f') {
            tbgw_buf_puts(out, "\\f");
        } else if (c < 0x20 || c == 0x7F) {
            tbgw_buf_printf(out, "\\u%04x", c);
        } else if (c < 0x80) {
            tbgw_buf_putc(out, (char)c);
        } else {
            /* jansson strings are valid UTF-8 */
            uint32_t cp;
            size_t k;
            if (c >= 0xF0)
                cp = c & 0x07, k = 3;
            else if (c >= 0xE0)
                cp = c & 0x0F, k = 2;
            else
                cp = c & 0x1F, k = 1;
            for (size_t j = 1; j <= k && i + j < n; j++) cp = cp << 6 | ((uint8_t)s[i + j] & 0x3F);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                tbgw_buf_printf(out, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                tbgw_buf_printf(out, "\\u%04x", cp);
            }
            i += k + 1;
            continue;
        }
        i++;
    }
    tbgw_buf_putc(out, '"');
    return out->oom ? TBGW_ENOMEM : 0;
}

int sock_py_dumps(const json_t *v, tbgw_buf *out) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        tbgw_buf_putc(out, '{');
        json_object_foreach((json_t *)v, k, x) {
            if (!first) tbgw_buf_puts(out, ", ");
            first = 0;
            py_str(out, k, strlen(k));
            tbgw_buf_puts(out, ": ");
            sock_py_dumps(x, out);
        }
        tbgw_buf_putc(out, '}');
        break;
    }
    case JSON_ARRAY:
        tbgw_buf_putc(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) tbgw_buf_puts(out, ", ");
            sock_py_dumps(json_array_get(v, i), out);
        }
        tbgw_buf_putc(out, ']');
        break;
    case JSON_STRING:
        py_str(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        tbgw_buf_i64(out, json_integer_value(v));
        break;
    case JSON_REAL:
        py_float(out, json_real_value(v));
        break;
    case JSON_TRUE:
        tbgw_buf_puts(out, "true");
        break;
    case JSON_FALSE:
        tbgw_buf_puts(out, "false");
        break;
    default:
        tbgw_buf_puts(out, "null");
        break;
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

/* ---- slice expressions -------------------------------------------------------------------- */

static int parse_int(const char *s, size_t n, int64_t *out) {
    if (!n || n > 18) return -1;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
        if (n == 1) return -1;
    }
    int64_t v = 0;
    for (; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* One `[...]` body: "a:b", "a:", ":b", ":", "i". */
static int parse_slice(const char *s, size_t n, sock_slice *sl) {
    memset(sl, 0, sizeof *sl);
    const char *colon = memchr(s, ':', n);
    if (!colon) {
        sl->single = 1;
        return parse_int(s, n, &sl->from);
    }
    if (memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) return -1; /* no steps */
    size_t a = (size_t)(colon - s), b = n - a - 1;
    if (a) {
        if (parse_int(s, a, &sl->from)) return -1;
        sl->has_from = 1;
    }
    if (b) {
        if (parse_int(colon + 1, b, &sl->to)) return -1;
        sl->has_to = 1;
    }
    return 0;
}

int sock_slices_find(const char *text, sock_slice **out, size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    for (const char *p = text; (p = strchr(p, '['));) {
        /* `\[[^\s][0-9:]*]`: one non-space character, then digits and colons, then `]` (a minus
         * sign is also accepted after the colon, so negative ends can be written) */
        const char *q = p + 1;
        if (!*q || isspace((unsigned char)*q)) {
            p++;
            continue;
        }
        q++;
        while (*q && (isdigit((unsigned char)*q) || *q == ':' || (*q == '-' && q[-1] == ':'))) q++;
        if (*q != ']') {
            p++;
            continue;
        }
        sock_slice sl;
        if (parse_slice(p + 1, (size_t)(q - p - 1), &sl)) {
            snprintf(err, errlen, "'%.*s' is not a slice [from:to] or an index [i]", (int)(q - p + 1), p);
            free(*out);
            *out = NULL;
            *n = 0;
            return TBGW_EINVAL;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            sock_slice *ns = realloc(*out, cap * sizeof *ns);
            if (!ns) {
                free(*out);
                *out = NULL;
                *n = 0;
                return TBGW_ENOMEM;
            }
            *out = ns;
        }
        (*out)[(*n)++] = sl;
        p = q + 1;
    }
    return (int)*n;
}
