/* CAN connector: slcan lines, value and command layouts, and the byte converters. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/can/can_internal.h"

/* ---- slcan ---- */

size_t can_slcan_format(const can_msg *m, char *out, size_t n) {
    size_t len = m->len > 8 ? 8 : m->len;
    int w = m->extended ? snprintf(out, n, "T%08X%zu", (unsigned)(m->id & 0x1FFFFFFFu), len)
                        : snprintf(out, n, "t%03X%zu", (unsigned)(m->id & 0x7FFu), len);
    if (w < 0 || (size_t)w >= n) return 0;
    size_t o = (size_t)w;
    for (size_t i = 0; i < len && o + 3 < n; i++) o += (size_t)snprintf(out + o, n - o, "%02X", m->data[i]);
    if (o + 2 > n) return 0;
    out[o++] = '\r';
    out[o] = 0;
    return o;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int can_slcan_parse(const char *line, size_t len, can_msg *m) {
    memset(m, 0, sizeof *m);
    if (len < 1 || (line[0] != 't' && line[0] != 'T')) return -1;
    m->extended = line[0] == 'T';
    size_t idl = m->extended ? 8 : 3;
    if (len < 1 + idl + 1) return -1;
    uint32_t id = 0;
    for (size_t i = 1; i <= idl; i++) {
        int h = hexval(line[i]);
        if (h < 0) return -1;
        id = id * 16 + (uint32_t)h;
    }
    int dlc = line[1 + idl] - '0';
    if (dlc < 0 || dlc > 8) return -1;
    if ((m->extended && id > 0x1FFFFFFFu) || (!m->extended && id > 0x7FFu)) return -1;
    size_t need = 1 + idl + 1 + (size_t)dlc * 2;
    if (len < need) return -1;
    for (int i = 0; i < dlc; i++) {
        int a = hexval(line[2 + idl + 2 * i]), b = hexval(line[3 + idl + 2 * i]);
        if (a < 0 || b < 0) return -1;
        m->data[i] = (uint8_t)(a * 16 + b);
    }
    /* an adapter may append a 4-digit timestamp: ignored */
    m->id = id;
    m->len = (uint8_t)dlc;
    return 0;
}

int can_slcan_speed(long bitrate) {
    static const long r[] = {10000, 20000, 50000, 100000, 125000, 250000, 500000, 800000, 1000000};
    for (int i = 0; i < 9; i++)
        if (r[i] == bitrate) return i;
    return -1;
}

/* ---- layouts ---- */

int can_hex(const char *s, uint8_t *out, size_t max) {
    size_t n = 0;
    int hi = -1;
    for (const char *p = s; *p; p++) {
        if (isspace((unsigned char)*p)) {
            if (hi >= 0) return -1; /* bytearray.fromhex: no space inside a byte */
            continue;
        }
        int h = hexval(*p);
        if (h < 0) return -1;
        if (hi < 0) {
            hi = h;
        } else {
            if (n == max) return -1;
            out[n++] = (uint8_t)(hi * 16 + h);
            hi = -1;
        }
    }
    return hi >= 0 ? -1 : (int)n;
}

static int parse_int_field(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int type_of(const char *t, can_value_spec *s) {
    if (!strcmp(t, "bool") || !strcmp(t, "boolean"))
        s->type = CV_BOOL;
    else if (!strcmp(t, "int") || !strcmp(t, "long"))
        s->type = CV_INT;
    else if (!strcmp(t, "float") || !strcmp(t, "double")) {
        s->type = CV_FLOAT;
        s->is_double = t[0] == 'd';
    } else if (!strcmp(t, "string"))
        s->type = CV_STRING;
    else if (!strcmp(t, "raw"))
        s->type = CV_RAW;
    else
        return -1;
    return 0;
}

int can_value_parse(const json_t *v, can_value_spec *s, tbgw_err *err) {
    memset(s, 0, sizeof *s);
    s->length = -1;
    snprintf(s->encoding, sizeof s->encoding, "ascii");
    if (json_is_object(v)) {
        const json_t *x;
        s->start = json_is_integer(x = json_object_get(v, "start")) ? (int)json_integer_value(x) : 0;
        if (json_is_integer(x = json_object_get(v, "length"))) s->length = (int)json_integer_value(x);
        const char *bo = json_string_value(json_object_get(v, "byteorder"));
        s->little = bo && strcmp(bo, "little") == 0;
        const char *t = json_string_value(json_object_get(v, "type"));
        s->is_signed = json_is_true(json_object_get(v, "signed"));
        const char *enc = json_string_value(json_object_get(v, "encoding"));
        if (enc) snprintf(s->encoding, sizeof s->encoding, "%s", enc);
        if (!t || type_of(t, s) != 0)
            return tbgw_err_set(err, TBGW_EINVAL,
                                "value.type: expected bool, boolean, int, long, float, double, "
                                "string or raw");
        if (s->start < 0 || s->start > 63 || s->length < -1 || s->length > 64)
            return tbgw_err_set(err, TBGW_EINVAL, "value: start 0..63 and length -1..64 expected");
        return 0;
    }
    const char *str = json_string_value(v);
    if (!str)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "value: expected \"start:length[:byteorder]:type\" or an object");
    char copy[128];
    snprintf(copy, sizeof copy, "%s", str);
    char *f[6] = {0};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(copy, ":", &save); t && n < 6; t = strtok_r(NULL, ":", &save))
        f[n++] = t;
    /* "4:1:int", "4:2:big:int", "0:-1:string:utf-8", "0:2:big:int:signed" */
    int i = 0;
    if (n < 3 || parse_int_field(f[i++], 0, 99, &s->start) != 0) goto bad;
    if (parse_int_field(f[i], -1, 99, &s->length) != 0) goto bad;
    i++;
    if (!strcmp(f[i], "big") || !strcmp(f[i], "little")) s->little = f[i++][0] == 'l';
    if (i >= n || type_of(f[i++], s) != 0) goto bad;
    if (i < n) {
        if (!strcmp(f[i], "signed"))
            s->is_signed = 1;
        else if (s->type == CV_STRING)
            snprintf(s->encoding, sizeof s->encoding, "%s", f[i]);
        i++;
    }
    if (i != n) goto bad;
    return 0;
bad:
    return tbgw_err_set(err, TBGW_EINVAL,
                        "value: \"%s\" is not start:length[:byteorder]:type[:signed|encoding]", str);
}

int can_cmd_parse(const json_t *v, can_cmd *c, tbgw_err *err) {
    memset(c, 0, sizeof *c);
    if (json_is_object(v)) {
        const json_t *x;
        c->start = json_is_integer(x = json_object_get(v, "start")) ? (int)json_integer_value(x) : 0;
        c->length = json_is_integer(x = json_object_get(v, "length")) ? (int)json_integer_value(x) : 1;
        const char *bo = json_string_value(json_object_get(v, "byteorder"));
        c->little = bo && strcmp(bo, "little") == 0;
        x = json_object_get(v, "value");
        if (!json_is_integer(x)) return tbgw_err_set(err, TBGW_EINVAL, "command.value: expected an integer");
        c->value = (uint64_t)json_integer_value(x);
    } else {
        const char *s = json_string_value(v);
        if (!s) return tbgw_err_set(err, TBGW_EINVAL, "command: expected \"start:length[:byteorder]:value\"");
        char copy[96];
        snprintf(copy, sizeof copy, "%s", s);
        char *f[5] = {0};
        int n = 0;
        for (char *save = NULL, *t = strtok_r(copy, ":", &save); t && n < 5; t = strtok_r(NULL, ":", &save))
            f[n++] = t;
        int i = 0;
        if (n < 3 || n > 4 || parse_int_field(f[i++], 0, 63, &c->start) ||
            parse_int_field(f[i++], 1, 8, &c->length))
            return tbgw_err_set(err, TBGW_EINVAL, "command: \"%s\" is not start:length[:byteorder]:value", s);
        if (n == 4) {
            if (strcmp(f[i], "big") && strcmp(f[i], "little"))
                return tbgw_err_set(err, TBGW_EINVAL, "command: byteorder big or little expected in \"%s\"",
                                    s);
            c->little = f[i++][0] == 'l';
        }
        char *end;
        c->value = strtoull(f[i], &end, 10);
        if (*end) return tbgw_err_set(err, TBGW_EINVAL, "command: \"%s\": the value is not a number", s);
    }
    if (c->length < 1 || c->length > 8)
        return tbgw_err_set(err, TBGW_EINVAL, "command.length: expected 1..8");
    return 0;
}

int can_cmd_of(const can_cmd *c, const uint8_t *d, size_t len, uint64_t *out) {
    if ((size_t)(c->start + c->length) > len) return -1;
    uint64_t v = 0;
    for (int i = 0; i < c->length; i++) {
        uint8_t b = d[c->start + (c->little ? c->length - 1 - i : i)];
        v = v << 8 | b;
    }
    *out = v;
    return 0;
}

/* ---- uplink ---- */

static int utf8_ok(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

int can_value_decode(const can_value_spec *s, const uint8_t *d, size_t len, tbgw_py_ctx *ctx,
                     const tbgw_py_val **out) {
    if ((size_t)s->start > len) return -1;
    size_t n = s->length < 0 ? len - (size_t)s->start : (size_t)s->length;
    if ((size_t)s->start + n > len) n = len - (size_t)s->start; /* Python slices stop at the end */
    const uint8_t *p = d + s->start;
    switch (s->type) {
    case CV_BOOL:
        if ((size_t)s->start >= len) return -1;
        *out = tbgw_py_bool(ctx, p[0] != 0);
        break;
    case CV_INT: {
        /* int.from_bytes of any length: through the evaluator's big integers when over 8 bytes */
        if (n <= 8) {
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++) v = v << 8 | p[s->little ? n - 1 - i : i];
            if (s->is_signed && n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ULL << (8 * n);
            if (!s->is_signed && n == 8 && (v >> 63)) {
                tbgw_py_val *b = tbgw_py_bytes(ctx, p, n);
                tbgw_err err;
                const tbgw_py_val *bound = NULL;
                tbgw_py *e = NULL;
                char src[64];
                snprintf(src, sizeof src, "int.from_bytes(b, '%s')", s->little ? "little" : "big");
                if (!b || tbgw_py_bind(ctx, "b", b) || tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL) ||
                    tbgw_py_eval(e, ctx, &bound, &err)) {
                    tbgw_py_free(e);
                    return -1;
                }
                tbgw_py_free(e);
                *out = bound;
                break;
            }
            *out = tbgw_py_int(ctx, (int64_t)v);
        } else {
            tbgw_py_val *b = tbgw_py_bytes(ctx, p, n);
            tbgw_err err;
            tbgw_py *e = NULL;
            char src[80];
            snprintf(src, sizeof src, "int.from_bytes(b, '%s', signed=%s)", s->little ? "little" : "big",
                     s->is_signed ? "True" : "False");
            int rc = !b || tbgw_py_bind(ctx, "b", b) ||
                     tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL) || tbgw_py_eval(e, ctx, out, &err);
            tbgw_py_free(e);
            if (rc) return -1;
        }
        break;
    }
    case CV_FLOAT: {
        size_t need = s->is_double ? 8 : 4;
        if (n < need) return -1; /* struct.unpack_from needs the whole value */
        uint64_t bits = 0;
        for (size_t i = 0; i < need; i++) bits = bits << 8 | p[s->little ? need - 1 - i : i];
        double v;
        if (s->is_double) {
            memcpy(&v, &bits, 8);
        } else {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            v = f;
        }
        *out = tbgw_py_float(ctx, v);
        break;
    }
    case CV_STRING:
        if (!strcasecmp(s->encoding, "ascii")) {
            for (size_t i = 0; i < n; i++)
                if (p[i] > 0x7F) return -1;
        } else if (!strcasecmp(s->encoding, "utf-8") || !strcasecmp(s->encoding, "utf8")) {
            if (!utf8_ok(p, n)) return -1;
        } else if (strcasecmp(s->encoding, "latin-1") && strcasecmp(s->encoding, "latin1")) {
            return -1; /* an encoding the converter does not have */
        }
        if (!strncasecmp(s->encoding, "latin", 5)) {
            char tmp[2 * CAN_MAX_DATA + 1];
            size_t o = 0;
            for (size_t i = 0; i < n; i++) {
                if (p[i] < 0x80)
                    tmp[o++] = (char)p[i];
                else {
                    tmp[o++] = (char)(0xC0 | (p[i] >> 6));
                    tmp[o++] = (char)(0x80 | (p[i] & 0x3F));
                }
            }
            *out = tbgw_py_str(ctx, tmp, o);
        } else {
            *out = tbgw_py_str(ctx, (const char *)p, n);
        }
        break;
    case CV_RAW: {
        char hex[2 * CAN_MAX_DATA + 1];
        for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", p[i]);
        *out = tbgw_py_str(ctx, hex, 2 * n);
        break;
    }
    }
    return *out ? 0 : -1;
}

/* ---- downlink ---- */

static int hex_opt(const json_t *o, const char *k, uint8_t *out, int *len, tbgw_err *err) {
    const char *s = json_string_value(json_object_get(o, k));
    if (!s || !*s) return 0;
    int n = can_hex(s, out, CAN_MAX_DATA);
    if (n < 0) return tbgw_err_set(err, TBGW_EINVAL, "%s: \"%s\" is not hex bytes", k, s);
    *len = n;
    return 0;
}

/* Numbers and booleans also as text ("16", "true"): RPC params of the reserved set are strings. */
static int num_opt(const json_t *o, const char *k, long *out) {
    const json_t *v = json_object_get(o, k);
    if (json_is_integer(v)) {
        *out = (long)json_integer_value(v);
        return 1;
    }
    const char *s = json_string_value(v);
    if (s && *s) {
        char *end;
        long x = strtol(s, &end, 0);
        if (!*end) {
            *out = x;
            return 1;
        }
    }
    return 0;
}

static int bool_opt(const json_t *o, const char *k, int *out) {
    const json_t *v = json_object_get(o, k);
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 1;
    }
    const char *s = json_string_value(v);
    if (s) {
        *out = !strcasecmp(s, "true") || !strcmp(s, "1");
        return 1;
    }
    return 0;
}

int can_down_parse(const json_t *o, const can_down *d, int strict, can_down *out, tbgw_err *err) {
    if (d) {
        *out = *d; /* the defaults' expression is borrowed */
        out->own_expr = NULL;
    } else {
        memset(out, 0, sizeof *out);
        out->node_id = -1;
        out->data_length = 1;
        out->hex_len = -1;
        snprintf(out->encoding, sizeof out->encoding, "ascii");
    }
    out->strict = strict;
    long v;
    int b;
    if (num_opt(o, "nodeId", &v)) out->node_id = v;
    if (bool_opt(o, "isExtendedId", &b)) out->extended = b;
    if (bool_opt(o, "isFd", &b)) out->fd = b;
    if (bool_opt(o, "bitrateSwitch", &b)) out->brs = b;
    if (bool_opt(o, "response", &b)) out->response = b;
    if (bool_opt(o, "dataSigned", &b)) out->is_signed = b;
    if (num_opt(o, "dataLength", &v)) {
        if (v < 1 || v > 8) return tbgw_err_set(err, TBGW_EINVAL, "dataLength: expected 1..8");
        out->data_length = (int)v;
    }
    const char *bo = json_string_value(json_object_get(o, "dataByteorder"));
    if (bo && *bo) out->little = bo[0] == 'l';
    const char *enc = json_string_value(json_object_get(o, "dataEncoding"));
    if (enc && *enc) snprintf(out->encoding, sizeof out->encoding, "%s", enc);
    if (hex_opt(o, "dataInHex", out->hex, &out->hex_len, err) ||
        hex_opt(o, "dataBefore", out->before, &out->before_len, err) ||
        hex_opt(o, "dataAfter", out->after, &out->after_len, err))
        return TBGW_EINVAL;
    const char *ex = json_string_value(json_object_get(o, "dataExpression"));
    if (ex && *ex) {
        size_t off = 0;
        if (tbgw_py_compile(ex, strlen(ex), strict ? TBGW_PY_STRICT : 0, &out->own_expr, err, &off) != 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return tbgw_err_set(err, TBGW_EINVAL, "dataExpression@%zu: %s", off, why);
        }
        out->expr = out->own_expr;
    }
    return 0;
}

void can_down_free(can_down *d) {
    tbgw_py_free(d->own_expr);
    d->own_expr = NULL;
    d->expr = NULL;
}

int can_down_encode(const can_down *d, const json_t *data, tbgw_py_ctx *ctx, uint8_t *out, size_t max,
                    tbgw_err *err) {
    if (d->hex_len >= 0) {
        memcpy(out, d->hex, (size_t)d->hex_len);
        return d->hex_len;
    }
    if (!json_is_object(data) || json_object_size(data) == 0)
        return tbgw_err_set(err, TBGW_EINVAL, "data is empty or not a dictionary"), -1;
    const char *dh = json_string_value(json_object_get(data, "dataInHex"));
    if (dh && *dh) {
        int n = can_hex(dh, out, max);
        if (n < 0) tbgw_err_set(err, TBGW_EINVAL, "dataInHex: not hex bytes");
        return n;
    }
    json_t *value = NULL;
    if (d->expr) {
        tbgw_py_ctx_reset(ctx);
        const tbgw_py_val *r;
        if (tbgw_py_bind_json_members(ctx, data) || tbgw_py_eval(d->expr, ctx, &r, err) ||
            tbgw_py_to_json(ctx, r, &value, err))
            return -1;
    } else if (json_object_get(data, "value")) {
        value = json_incref(json_object_get(data, "value"));
    } else {
        return tbgw_err_set(err, TBGW_EINVAL, "no `value` or `dataExpression`"), -1;
    }
    size_t n = 0;
    memcpy(out, d->before, (size_t)d->before_len);
    n += (size_t)d->before_len;
    int rc = 0;
    if (json_is_boolean(value)) {
        out[n++] = json_is_true(value);
    } else if (json_is_integer(value)) {
        json_int_t v = json_integer_value(value);
        int sgn = d->is_signed || v < 0;
        int len = d->data_length;
        if (len < 8) { /* int.to_bytes raises OverflowError when it does not fit */
            long long lo = sgn ? -(1LL << (8 * len - 1)) : 0;
            long long hi = sgn ? (1LL << (8 * len - 1)) - 1 : (1LL << (8 * len)) - 1;
            if (v < lo || v > hi)
                rc = tbgw_err_set(err, TBGW_EINVAL, "OverflowError: int too big to convert");
        } else if (!sgn && v < 0) {
            rc = tbgw_err_set(err, TBGW_EINVAL, "OverflowError: can't convert negative int to unsigned");
        }
        for (int i = 0; !rc && i < len; i++) {
            uint8_t byte = (uint8_t)((uint64_t)v >> (8 * i));
            out[n + (size_t)(d->little ? i : len - 1 - i)] = byte;
        }
        n += (size_t)len;
    } else if (json_is_real(value)) {
        float f = (float)json_real_value(value);
        uint32_t b;
        memcpy(&b, &f, 4);
        for (int i = 0; i < 4; i++) out[n + (size_t)(d->little ? i : 3 - i)] = (uint8_t)(b >> (8 * i));
        n += 4;
    } else if (json_is_string(value)) {
        const char *s = json_string_value(value);
        size_t l = strlen(s);
        if (!strcasecmp(d->encoding, "ascii"))
            for (size_t i = 0; i < l; i++)
                if ((unsigned char)s[i] > 0x7F)
                    rc = tbgw_err_set(err, TBGW_EINVAL, "UnicodeEncodeError: not ascii");
        if (n + l > max) rc = tbgw_err_set(err, TBGW_EINVAL, "the data do not fit a frame");
        if (!rc) memcpy(out + n, s, l);
        n += l;
    }
    json_decref(value);
    if (rc) return -1;
    if (n + (size_t)d->after_len > max)
        return tbgw_err_set(err, TBGW_EINVAL, "the data do not fit a frame"), -1;
    memcpy(out + n, d->after, (size_t)d->after_len);
    n += (size_t)d->after_len;
    return (int)n;
}
