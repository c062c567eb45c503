/* DPT codecs: group value <-> tbgw/JSON values (see knx_dpt.h). */
#include <ctype.h>
#include <float.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/err.h>

#include "proto/knx/knx_dpt_int.h"

/* ---- 2-octet float (DPT 9) ---- */

static double f16_decode(uint16_t raw) {
    int e = (raw >> 11) & 0x0F;
    int m = raw & 0x7FF;
    if (raw & 0x8000) m -= 2048;
    return (double)(m * (1 << e)) / 100.0;
}

static int f16_encode(double v, uint16_t *out) {
    double x = v * 100.0;
    if (nearbyint(x) == 0) { /* includes -0.004 .. 0.004: never the negative zero 0x8000 (= -20.48) */
        *out = 0;
        return 0;
    }
    for (int e = 0; e < 16; e++) {
        double m = nearbyint(x / (double)(1 << e));
        if (m >= -2048 && m <= 2047) {
            int mi = (int)m;
            if (e == 15 && mi == 2047) return -1; /* 0x7FFF means "invalid data" */
            uint16_t r = (uint16_t)((e << 11) | (mi & 0x7FF));
            if (mi < 0) r |= 0x8000;
            *out = r;
            return 0;
        }
    }
    return -1;
}

/* ---- helpers for encoding ---- */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...) {
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return TBGW_EINVAL;
}

/* A number from a JSON number, bool or a string holding a number. */
static int json_num(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return isfinite(*out) ? 0 : -1;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1 : 0;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) return -1;
        *out = strtod(s, &end);
        while (isspace((unsigned char)*end)) end++;
        return (*end || !isfinite(*out)) ? -1 : 0;
    }
    return -1;
}

static int json_bool(const json_t *v, int *out) {
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && (json_real_value(v) == 0 || json_real_value(v) == 1)) {
        *out = json_real_value(v) == 1;
        return 0;
    }
    if (json_is_string(v)) {
        static const char *const t[] = {"1", "true", "on", "yes", "y", "t"};
        static const char *const f[] = {"0", "false", "off", "no", "n", "f"};
        const char *s = json_string_value(v);
        for (size_t i = 0; i < 6; i++) {
            if (!strcasecmp(s, t[i])) return (*out = 1), 0;
            if (!strcasecmp(s, f[i])) return (*out = 0), 0;
        }
    }
    return -1;
}

static void put_be(knx_payload *p, uint64_t v, int n) {
    p->small = 0;
    p->len = (uint8_t)n;
    for (int i = 0; i < n; i++) p->data[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const knx_payload *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p->data[i];
    return v;
}

/* Wire length a type needs (0 = small, in the APCI octet). */
static int wire_len(knx_kind k) {
    switch (k) {
    case K_BOOL:
    case K_CTRL2:
    case K_CTRL4:
        return 0;
    case K_U8:
    case K_SCALE8:
    case K_S8:
    case K_SCENE:
    case K_SCENE_CTRL:
    case K_ENUM8:
        return 1;
    case K_U16:
    case K_S16:
    case K_F16:
        return 2;
    case K_TIME:
    case K_DATE:
    case K_RGB:
        return 3;
    case K_U32:
    case K_S32:
    case K_F32:
        return 4;
    case K_STR_ASCII:
    case K_STR_LATIN1:
        return 14;
    case K_DATETIME:
        return 8;
    }
    return -1;
}

static const char *bool_str(int b) {
    return b ? "true" : "false";
}

/* Latin-1 octets to UTF-8 text (ASCII: octets above 0x7F become '?'). */
static void text_from_octets(const knx_payload *p, int latin1, char *text, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < p->len && p->data[i]; i++) {
        uint8_t c = p->data[i];
        if (c < 0x80 || !latin1) {
            if (o + 1 >= cap) break;
            text[o++] = (c < 0x80 && c >= 0x20) ? (char)c : (c < 0x80 ? (char)c : '?');
        } else {
            if (o + 2 >= cap) break;
            text[o++] = (char)(0xC0 | (c >> 6));
            text[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    text[o] = '\0';
}

static int decode_small(const knx_dpt *d, const knx_payload *p, tbgw_value *out, char *text, size_t cap) {
    uint8_t b = p->small ? p->data[0] : (p->len ? p->data[p->len - 1] : 0);
    if (!p->small && p->len != 1) return TBGW_EPROTO;
    if (d->kind == K_BOOL) {
        *out = tbgw_value_bool(b & 1);
        return 0;
    }
    if (d->kind == K_CTRL2)
        snprintf(text, cap, "{\"control\":%s,\"value\":%s}", bool_str(b & 2), bool_str(b & 1));
    else
        snprintf(text, cap, "{\"control\":%d,\"step_code\":%d}", (b >> 3) & 1, b & 7);
    out->type = TBGW_V_JSON;
    out->u.s = text;
    return 0;
}

static int decode_temporal(const knx_dpt *d, const knx_payload *p, tbgw_value *out, char *text, size_t cap) {
    const uint8_t *b = p->data;
    if (d->kind == K_TIME) {
        int h = b[0] & 0x1F, m = b[1] & 0x3F, s = b[2] & 0x3F;
        if (h > 23 || m > 59 || s > 59) return TBGW_EPROTO;
        snprintf(text, cap, "%02d:%02d:%02d", h, m, s);
    } else if (d->kind == K_DATE) {
        int day = b[0] & 0x1F, mon = b[1] & 0x0F, y = b[2] & 0x7F;
        if (day < 1 || mon < 1 || mon > 12 || y > 99) return TBGW_EPROTO;
        snprintf(text, cap, "%04d-%02d-%02d", y >= 90 ? 1900 + y : 2000 + y, mon, day);
    } else {
        int y = 1900 + b[0], mon = b[1] & 0x0F, day = b[2] & 0x1F, h = b[3] & 0x1F, m = b[4] & 0x3F,
            s = b[5] & 0x3F;
        if (b[6] & 0x80) return TBGW_EPROTO; /* fault flag: the value is not valid */
        if (mon < 1 || mon > 12 || day < 1 || h > 24 || m > 59 || s > 59) return TBGW_EPROTO;
        snprintf(text, cap, "%04d-%02d-%02dT%02d:%02d:%02d", y, mon, day, h, m, s);
    }
    *out = tbgw_value_string(text);
    return 0;
}

int knx_dpt_decode(const knx_dpt *d, const knx_payload *p, tbgw_value *out, char *text, size_t cap) {
    int wl = wire_len(d->kind);
    if (cap < KNX_DPT_TEXT_CAP) return TBGW_EINVAL;
    text[0] = '\0';
    if (wl == 0) return decode_small(d, p, out, text, cap);
    if (p->small) return TBGW_EPROTO;
    if (d->kind == K_STR_ASCII || d->kind == K_STR_LATIN1) {
        if (p->len > 14) return TBGW_EPROTO;
        text_from_octets(p, d->kind == K_STR_LATIN1, text, cap);
        *out = tbgw_value_string(text);
        return 0;
    }
    if (p->len != wl) return TBGW_EPROTO;
    uint64_t raw = get_be(p, wl);
    switch (d->kind) {
    case K_U8:
    case K_U32:
        *out = tbgw_value_int((int64_t)raw);
        break;
    case K_SCALE8:
        *out = tbgw_value_int((int64_t)nearbyint((double)raw / 255.0 * d->max));
        break;
    case K_S8:
        *out = tbgw_value_int((int8_t)raw);
        break;
    case K_S32:
        *out = tbgw_value_int((int32_t)(uint32_t)raw);
        break;
    case K_U16:
    case K_S16: {
        int64_t r = d->kind == K_U16 ? (int64_t)raw : (int64_t)(int16_t)raw;
        double f = d->factor ? d->factor : 1;
        if (f == (double)(int64_t)f)
            *out = tbgw_value_int(r * (int64_t)f);
        else
            *out = tbgw_value_double((double)r * f);
        break;
    }
    case K_F16: {
        if (raw == 0x7FFF) return TBGW_EPROTO; /* "invalid data" */
        *out = tbgw_value_double(f16_decode((uint16_t)raw));
        break;
    }
    case K_F32: {
        uint32_t u = (uint32_t)raw;
        float f;
        memcpy(&f, &u, sizeof f);
        if (!isfinite(f)) return TBGW_EPROTO;
        *out = tbgw_value_double((double)f);
        break;
    }
    case K_SCENE:
        if (raw > 63) return TBGW_EPROTO;
        *out = tbgw_value_int((int64_t)raw + 1);
        break;
    case K_SCENE_CTRL:
        if ((raw & 0x3F) > 63) return TBGW_EPROTO;
        snprintf(text, cap, "{\"learn\":%s,\"scene_number\":%d}", bool_str(raw & 0x80),
                 (int)(raw & 0x3F) + 1);
        out->type = TBGW_V_JSON;
        out->u.s = text;
        break;
    case K_ENUM8:
        if (d->names && raw < d->n_names && d->names[raw])
            *out = tbgw_value_string(strcpy(text, d->names[raw]));
        else
            *out = tbgw_value_int((int64_t)raw);
        break;
    case K_RGB:
        snprintf(text, cap, "#%02x%02x%02x", (unsigned)p->data[0], (unsigned)p->data[1],
                 (unsigned)p->data[2]);
        *out = tbgw_value_string(text);
        break;
    default:
        return decode_temporal(d, p, out, text, cap);
    }
    return 0;
}

/* ---- encoding ---- */

static int enc_small(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t cap) {
    int b = 0;
    out->small = 1;
    out->len = 0;
    if (d->kind == K_BOOL) {
        if (json_bool(v, &b) < 0) return fail(err, cap, "expected a boolean for %s", d->name);
        out->data[0] = (uint8_t)b;
        return 0;
    }
    if (json_is_object(v)) {
        const json_t *c = json_object_get(v, "control");
        int ci = 0;
        if (c && json_bool(c, &ci) < 0)
            return fail(err, cap, "%s: \"control\" must be 0/1 or a boolean", d->name);
        if (d->kind == K_CTRL2) {
            int vi = 0;
            const json_t *x = json_object_get(v, "value");
            if (!x || json_bool(x, &vi) < 0)
                return fail(err, cap, "%s: expected {\"control\":…,\"value\":…}", d->name);
            out->data[0] = (uint8_t)(ci << 1 | vi);
        } else {
            const json_t *x = json_object_get(v, "step_code");
            json_int_t sc = json_is_integer(x) ? json_integer_value(x) : -1;
            if (sc < 0 || sc > 7)
                return fail(err, cap, "%s: expected {\"control\":…,\"step_code\":0..7}", d->name);
            out->data[0] = (uint8_t)(ci << 3 | (int)sc);
        }
        return 0;
    }
    double n;
    int maxv = d->kind == K_CTRL2 ? 3 : 15;
    if (json_num(v, &n) < 0 || n != floor(n) || n < 0 || n > maxv)
        return fail(err, cap, "expected an object or a small integer for %s", d->name);
    out->data[0] = (uint8_t)n;
    return 0;
}

/* Text to Latin-1 (or ASCII) octets; characters that do not fit become '?'. */
static int enc_string(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t cap) {
    char num[64];
    const char *s;
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_number(v) || json_is_boolean(v)) {
        if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.15g", json_real_value(v));
        else
            snprintf(num, sizeof num, "%s", json_is_true(v) ? "True" : "False");
        s = num;
    } else
        return fail(err, cap, "expected a string for %s", d->name);
    memset(out->data, 0, sizeof out->data);
    out->small = 0;
    out->len = 14;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned c = *u++;
        if (c >= 0x80) { /* decode one UTF-8 sequence */
            int extra = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
            unsigned cp = extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
            for (int i = 0; i < extra && (*u & 0xC0) == 0x80; i++) cp = cp << 6 | (*u++ & 0x3F);
            c = (d->kind == K_STR_LATIN1 && extra && cp <= 0xFF) ? cp : '?';
        }
        if (o == 14) return fail(err, cap, "%s: longer than 14 characters", d->name);
        out->data[o++] = (uint8_t)c;
    }
    return 0;
}

static int parse_ints(const char *s, const char *fmt_sep, int *a, int n) {
    int got = 0;
    const char *p = s;
    while (got < n) {
        char *end;
        if (!isdigit((unsigned char)*p)) return -1;
        long x = strtol(p, &end, 10);
        if (end - p > 4) return -1;
        a[got++] = (int)x;
        p = end;
        if (got < n) {
            if (!*p) break;
            if (!strchr(fmt_sep, *p)) return -1;
            p++;
        }
    }
    return *p ? -1 : got;
}

static int enc_temporal(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t cap) {
    if (!json_is_string(v)) return fail(err, cap, "expected a date/time string for %s", d->name);
    const char *s = json_string_value(v);
    int a[6] = {0};
    out->small = 0;
    if (d->kind == K_TIME) {
        int n = parse_ints(s, ":", a, 3);
        if (n < 2 || a[0] > 23 || a[1] > 59 || a[2] > 59)
            return fail(err, cap, "expected HH:MM[:SS] for %s", d->name);
        put_be(out, (uint64_t)a[0] << 16 | (uint64_t)a[1] << 8 | (uint64_t)a[2], 3);
        return 0;
    }
    if (d->kind == K_DATE) {
        if (parse_ints(s, "-", a, 3) != 3 || a[0] < 1990 || a[0] > 2089 || a[1] < 1 || a[1] > 12 ||
            a[2] < 1 || a[2] > 31)
            return fail(err, cap, "expected YYYY-MM-DD (1990..2089) for %s", d->name);
        put_be(out, (uint64_t)a[2] << 16 | (uint64_t)a[1] << 8 | (uint64_t)(a[0] % 100), 3);
        return 0;
    }
    int n = parse_ints(s, "-T :", a, 6);
    if (n < 3 || a[0] < 1900 || a[0] > 2155 || a[1] < 1 || a[1] > 12 || a[2] < 1 || a[2] > 31 || a[3] > 24 ||
        a[4] > 59 || a[5] > 59)
        return fail(err, cap, "expected YYYY-MM-DDTHH:MM:SS for %s", d->name);
    out->len = 8;
    out->data[0] = (uint8_t)(a[0] - 1900);
    out->data[1] = (uint8_t)a[1];
    out->data[2] = (uint8_t)a[2];
    out->data[3] = (uint8_t)a[3];
    out->data[4] = (uint8_t)a[4];
    out->data[5] = (uint8_t)a[5];
    out->data[6] = 0x24 | (n < 4 ? 0x02 : 0); /* no working-day info, no day of week, time given? */
    out->data[7] = 0;
    return 0;
}

static int enc_rgb(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t cap) {
    unsigned rgb[3];
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (*s == '#') s++;
        if (strlen(s) != 6 || strspn(s, "0123456789abcdefABCDEF") != 6)
            return fail(err, cap, "expected \"#rrggbb\" for %s", d->name);
        unsigned long x = strtoul(s, NULL, 16);
        rgb[0] = (unsigned)(x >> 16) & 0xFF;
        rgb[1] = (unsigned)(x >> 8) & 0xFF;
        rgb[2] = (unsigned)x & 0xFF;
    } else {
        static const char *const k[] = {"red", "green", "blue"};
        for (size_t i = 0; i < 3; i++) {
            const json_t *c = json_is_array(v) ? json_array_get(v, i) : json_object_get(v, k[i]);
            if (!json_is_integer(c) || json_integer_value(c) < 0 || json_integer_value(c) > 255 ||
                (json_is_array(v) && json_array_size(v) != 3))
                return fail(err, cap, "expected \"#rrggbb\", [r,g,b] or {\"red\",\"green\",\"blue\"} for %s",
                            d->name);
            rgb[i] = (unsigned)json_integer_value(c);
        }
    }
    put_be(out, (uint64_t)rgb[0] << 16 | rgb[1] << 8 | rgb[2], 3);
    return 0;
}

static int enc_enum(const knx_dpt *d, const json_t *v, double *n) {
    if (json_is_string(v) && d->names)
        for (size_t i = 0; i < d->n_names; i++)
            if (d->names[i] && !strcasecmp(d->names[i], json_string_value(v))) return (*n = (double)i), 0;
    return json_num(v, n);
}

static int enc_numeric(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t cap) {
    double n;
    int rc = d->kind == K_ENUM8 ? enc_enum(d, v, &n) : json_num(v, &n);
    if (rc < 0) return fail(err, cap, "expected a number for %s", d->name);
    char rng[96];
    snprintf(rng, sizeof rng, "%s: value out of range", d->name);
    double lo = d->min, hi = d->max;
    switch (d->kind) {
    case K_U8:
    case K_ENUM8:
    case K_S8:
    case K_SCENE:
        if (n < lo || n > hi) return fail(err, cap, "%s", rng);
        put_be(out, (uint64_t)((int64_t)nearbyint(n) - (d->kind == K_SCENE ? 1 : 0)) & 0xFF, 1);
        return 0;
    case K_SCALE8:
        if (n < lo || n > hi) return fail(err, cap, "%s", rng);
        put_be(out, (uint64_t)nearbyint(n / hi * 255.0), 1);
        return 0;
    case K_U16:
    case K_S16: {
        double f = d->factor ? d->factor : 1;
        double r = nearbyint(n / f);
        if (d->kind == K_U16 ? (r < 0 || r > 65535) : (r < -32768 || r > 32767))
            return fail(err, cap, "%s", rng);
        put_be(out, (uint64_t)(int64_t)r & 0xFFFF, 2);
        return 0;
    }
    case K_F16: {
        uint16_t r;
        if (n < lo || n > hi || f16_encode(n, &r) < 0) return fail(err, cap, "%s", rng);
        put_be(out, r, 2);
        return 0;
    }
    case K_U32:
    case K_S32: {
        double r = nearbyint(n);
        if (d->kind == K_U32 ? (r < 0 || r > 4294967295.0) : (r < -2147483648.0 || r > 2147483647.0))
            return fail(err, cap, "%s", rng);
        put_be(out, (uint64_t)(int64_t)r & 0xFFFFFFFFu, 4);
        return 0;
    }
    case K_F32: {
        if (fabs(n) > FLT_MAX) return fail(err, cap, "%s", rng);
        float f = (float)n;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        put_be(out, u, 4);
        return 0;
    }
    default:
        return fail(err, cap, "cannot encode %s", d->name);
    }
}

int knx_dpt_encode(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t errcap) {
    memset(out, 0, sizeof *out);
    if (!v || json_is_null(v)) return fail(err, errcap, "no value for %s", d->name);
    switch (d->kind) {
    case K_BOOL:
    case K_CTRL2:
    case K_CTRL4:
        return enc_small(d, v, out, err, errcap);
    case K_STR_ASCII:
    case K_STR_LATIN1:
        return enc_string(d, v, out, err, errcap);
    case K_TIME:
    case K_DATE:
    case K_DATETIME:
        return enc_temporal(d, v, out, err, errcap);
    case K_RGB:
        return enc_rgb(d, v, out, err, errcap);
    case K_SCENE_CTRL: {
        const json_t *sn = json_object_get(v, "scene_number"), *l = json_object_get(v, "learn");
        int learn = 0;
        if (!json_is_integer(sn) || json_integer_value(sn) < 1 || json_integer_value(sn) > 64 ||
            (l && json_bool(l, &learn) < 0))
            return fail(err, errcap, "expected {\"scene_number\":1..64,\"learn\":bool} for %s", d->name);
        put_be(out, (uint64_t)(learn ? 0x80 : 0) | (uint64_t)(json_integer_value(sn) - 1), 1);
        return 0;
    }
    default:
        return enc_numeric(d, v, out, err, errcap);
    }
}
