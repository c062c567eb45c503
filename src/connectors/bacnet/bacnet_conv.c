/* BACnet values to platform values (spec 2.4) and downlink values to BACnet (WriteProperty). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"

#define MAX_ITEMS 512

/* Python repr of a float ("40.0", "0.1", "1e+16"). */
static void py_float(tbgw_buf *b, double d) {
    char s[TBGW_DOUBLE_MAX];
    tbgw_buf_append(b, s, tbgw_fmt_double(s, d));
}

/* Appends a character string as UTF-8 (charset 0 UTF-8, 4 UCS-2, 5 ISO 8859-1; others raw). */
static void put_charstr(tbgw_buf *b, const bn_value *v) {
    if (v->charset == 5) {
        for (size_t i = 0; i < v->len; i++) {
            uint8_t c = v->data[i];
            if (c < 0x80) {
                tbgw_buf_putc(b, (char)c);
            } else {
                tbgw_buf_putc(b, (char)(0xC0 | (c >> 6)));
                tbgw_buf_putc(b, (char)(0x80 | (c & 0x3F)));
            }
        }
        return;
    }
    if (v->charset == 4) {
        for (size_t i = 0; i + 1 < v->len; i += 2) {
            unsigned u = ((unsigned)v->data[i] << 8) | v->data[i + 1];
            if (u < 0x80) {
                tbgw_buf_putc(b, (char)u);
            } else if (u < 0x800) {
                tbgw_buf_putc(b, (char)(0xC0 | (u >> 6)));
                tbgw_buf_putc(b, (char)(0x80 | (u & 0x3F)));
            } else {
                tbgw_buf_putc(b, (char)(0xE0 | (u >> 12)));
                tbgw_buf_putc(b, (char)(0x80 | ((u >> 6) & 0x3F)));
                tbgw_buf_putc(b, (char)(0x80 | (u & 0x3F)));
            }
        }
        return;
    }
    for (size_t i = 0; i < v->len; i++) tbgw_buf_putc(b, v->data[i] ? (char)v->data[i] : '?');
}

static void put_oid(tbgw_buf *b, uint16_t type, uint32_t inst) {
    const char *n = bn_object_type_name(type);
    if (n) {
        char k[64];
        bn_kebab(n, k, sizeof k);
        tbgw_buf_printf(b, "%s,%u", k, inst);
    } else {
        tbgw_buf_printf(b, "%u,%u", type, inst);
    }
}

/* str() of one primitive. */
static void put_prim(tbgw_buf *b, const bn_value *v) {
    switch (v->type) {
    case BN_NULL:
        tbgw_buf_puts(b, "None");
        break;
    case BN_BOOLEAN:
        tbgw_buf_puts(b, v->v.b ? "True" : "False");
        break;
    case BN_UNSIGNED:
    case BN_ENUM:
        tbgw_buf_printf(b, "%llu", (unsigned long long)v->v.u);
        break;
    case BN_SIGNED:
        tbgw_buf_printf(b, "%lld", (long long)v->v.i);
        break;
    case BN_REAL:
        py_float(b, (double)v->v.r);
        break;
    case BN_DOUBLE:
        py_float(b, v->v.d);
        break;
    case BN_CHARSTR:
        put_charstr(b, v);
        break;
    case BN_OCTETS:
        for (size_t i = 0; i < v->len; i++) tbgw_buf_printf(b, "%02x", v->data[i]);
        break;
    case BN_BITSTR: {
        size_t nbits = v->len * 8 - (v->len ? v->unused : 0);
        tbgw_buf_putc(b, '[');
        for (size_t i = 0; i < nbits; i++)
            tbgw_buf_printf(b, "%s%d", i ? ", " : "", (v->data[i / 8] >> (7 - i % 8)) & 1);
        tbgw_buf_putc(b, ']');
        break;
    }
    case BN_DATE: {
        const uint8_t *d = v->v.dt;
        if (d[0] == 255 || d[1] > 12 || d[2] > 31)
            tbgw_buf_puts(b, "*-*-*"); /* unspecified parts */
        else
            tbgw_buf_printf(b, "%04d-%02d-%02d", 1900 + d[0], d[1], d[2]);
        break;
    }
    case BN_TIME: {
        const uint8_t *t = v->v.dt;
        if (t[0] == 255)
            tbgw_buf_puts(b, "*:*:*");
        else
            tbgw_buf_printf(b, "%02d:%02d:%02d", t[0], t[1] == 255 ? 0 : t[1], t[2] == 255 ? 0 : t[2]);
        break;
    }
    case BN_OID:
        put_oid(b, v->v.oid.type, v->v.oid.inst);
        break;
    case BN_CTXPRIM:
        /* context-tagged primitive inside a constructed value: its unsigned reading */
        tbgw_buf_printf(b, "%llu", (unsigned long long)bn_raw_unsigned(v->data, v->len));
        break;
    default:
        break;
    }
}

/* Python repr of a primitive inside a list: strings quoted. */
static void put_repr(tbgw_buf *b, const bn_value *v) {
    int quote = v->type == BN_CHARSTR || v->type == BN_OCTETS || v->type == BN_DATE || v->type == BN_TIME ||
                v->type == BN_OID;
    if (quote) tbgw_buf_putc(b, '\'');
    put_prim(b, v);
    if (quote) tbgw_buf_putc(b, '\'');
}

static int decode_all(const uint8_t *p, size_t n, bn_value *items, size_t cap) {
    size_t off = 0, cnt = 0;
    while (off < n) {
        if (cnt == cap) return -2;
        if (bn_dec_item(p, n, &off, &items[cnt]) != 0) return -1;
        cnt++;
    }
    return (int)cnt;
}

int bnc_value_text(uint16_t otype, uint32_t prop, const uint8_t *p, size_t n, tbgw_buf *text) {
    (void)otype;
    (void)prop;
    bn_value *items = malloc(MAX_ITEMS * sizeof *items);
    if (!items) return -1;
    int cnt = decode_all(p, n, items, MAX_ITEMS);
    if (cnt < 0) {
        free(items);
        return -1;
    }
    if (cnt == 1 && items[0].type < BN_OPEN) {
        put_prim(text, &items[0]);
    } else {
        /* arrays, lists and constructed values: a Python list; nested constructions as sub-lists */
        tbgw_buf_putc(text, '[');
        int first = 1;
        for (int i = 0; i < cnt; i++) {
            const bn_value *v = &items[i];
            if (v->type == BN_CLOSE) {
                tbgw_buf_putc(text, ']');
                first = 0;
                continue;
            }
            if (!first) tbgw_buf_puts(text, ", ");
            if (v->type == BN_OPEN) {
                tbgw_buf_putc(text, '[');
                first = 1;
                continue;
            }
            put_repr(text, v);
            first = 0;
        }
        tbgw_buf_putc(text, ']');
    }
    free(items);
    return text->oom ? -1 : 0;
}

/* round(x, 2) as Python: correctly rounded from the exact binary value. */
static double round2(double d) {
    if (!isfinite(d)) return d;
    char s[400];
    snprintf(s, sizeof s, "%.2f", d);
    return strtod(s, NULL);
}

int bnc_value_convert(uint16_t otype, uint32_t prop, const uint8_t *p, size_t n, tbgw_value *out,
                      tbgw_buf *text) {
    size_t off = 0;
    bn_value v;
    if (bn_dec_item(p, n, &off, &v) == 0 && off == n && (v.type == BN_REAL || v.type == BN_DOUBLE)) {
        double d = v.type == BN_REAL ? (double)v.v.r : v.v.d;
        if (isfinite(d)) {
            *out = tbgw_value_double(round2(d));
            return 0;
        }
    }
    tbgw_buf_reset(text);
    if (bnc_value_text(otype, prop, p, n, text) != 0) return -1;
    *out = tbgw_value_string(tbgw_buf_cstr(text));
    return 0;
}

/* ---- downlink ---- */

static int json_number(const json_t *v, double *d) {
    if (json_is_number(v)) {
        *d = json_number_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        *d = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) return -1;
        *d = strtod(s, &end);
        while (isspace((unsigned char)*end)) end++;
        if (*end == 0) return 0;
        if (strcasecmp(s, "true") == 0 || strcasecmp(s, "active") == 0 || strcasecmp(s, "on") == 0)
            return *d = 1, 0;
        if (strcasecmp(s, "false") == 0 || strcasecmp(s, "inactive") == 0 || strcasecmp(s, "off") == 0)
            return *d = 0, 0;
    }
    return -1;
}

/* The application type presentValue / relinquishDefault take on an object type. */
static int pv_type(uint16_t t) {
    switch (t) {
    case 0:
    case 1:
    case 2:
        return BN_REAL;
    case 3:
    case 4:
    case 5:
        return BN_ENUM;
    case 13:
    case 14:
    case 19:
    case 48:
        return BN_UNSIGNED;
    case 40:
        return BN_CHARSTR;
    case 45:
        return BN_SIGNED;
    case 46:
        return BN_DOUBLE;
    default:
        return -1;
    }
}

static int prop_type(uint16_t otype, uint32_t prop) {
    switch (prop) {
    case 85:
    case 104:
        return pv_type(otype);
    case 81:
        return BN_BOOLEAN; /* outOfService */
    case 28:
    case 77:
    case 58:
        return BN_CHARSTR; /* description, objectName, location */
    case 22:
    case 25:
    case 45:
    case 59:
    case 65:
    case 69:
        return BN_REAL;
    case 117:
    case 36:
    case 103:
    case 84:
        return BN_ENUM;
    default:
        return -1;
    }
}

int bnc_value_encode(bn_w *w, uint16_t otype, uint32_t prop, const json_t *v, char *why, size_t cap) {
    if (!v || json_is_null(v)) {
        bn_enc_null(w); /* relinquish */
        return 0;
    }
    if (json_is_string(v) &&
        (strcmp(json_string_value(v), "None") == 0 || strcmp(json_string_value(v), "null") == 0)) {
        bn_enc_null(w);
        return 0;
    }
    int t = prop_type(otype, prop);
    if (t < 0) {
        if (json_is_boolean(v))
            t = BN_BOOLEAN;
        else if (json_is_integer(v))
            t = json_integer_value(v) < 0 ? BN_SIGNED : BN_UNSIGNED;
        else if (json_is_real(v))
            t = BN_REAL;
        else if (json_is_string(v))
            t = BN_CHARSTR;
        else
            return snprintf(why, cap, "value must be a number, boolean, string or null"), -1;
    }
    double d = 0;
    if (t == BN_CHARSTR) {
        char num[64];
        const char *s = json_string_value(v);
        if (!s) {
            snprintf(num, sizeof num, "%g", json_number_value(v));
            s = num;
        }
        bn_enc_charstr(w, s, strlen(s));
        return 0;
    }
    if (json_number(v, &d) != 0)
        return snprintf(why, cap, "value %s is not a number", json_string_value(v)), -1;
    switch (t) {
    case BN_REAL:
        bn_enc_real(w, (float)d);
        break;
    case BN_DOUBLE:
        bn_enc_double(w, d);
        break;
    case BN_BOOLEAN:
        bn_enc_bool(w, d != 0);
        break;
    case BN_SIGNED:
        bn_enc_signed(w, (int64_t)d);
        break;
    case BN_UNSIGNED:
    case BN_ENUM:
        if (d < 0 || d > 4294967295.0 || d != floor(d))
            return snprintf(why, cap, "value %g must be a whole number >= 0", d), -1;
        if (t == BN_ENUM)
            bn_enc_enum(w, (uint32_t)d);
        else
            bn_enc_unsigned(w, (uint64_t)d);
        break;
    default:
        return snprintf(why, cap, "unsupported value type"), -1;
    }
    return 0;
}
