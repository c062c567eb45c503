#include "connectors/modbus/mb_value.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/json.h"

static const struct {
    const char *name;
    tbgw_mbv_type t;
} TYPES[] = {{"8int", MBV_8INT},     {"8uint", MBV_8UINT},     {"16int", MBV_16INT},
             {"16uint", MBV_16UINT}, {"16float", MBV_16FLOAT}, {"32int", MBV_32INT},
             {"32uint", MBV_32UINT}, {"32float", MBV_32FLOAT}, {"64int", MBV_64INT},
             {"64uint", MBV_64UINT}, {"64float", MBV_64FLOAT}, {"string", MBV_STRING},
             {"bytes", MBV_BYTES},   {"bits", MBV_BITS},       {"bit", MBV_BITS}};

int tbgw_mbv_spec_type(tbgw_mbv_spec *s, const char *name, int count) {
    tbgw_mbv_type t;
    if (tbgw_mbv_type_parse(name, count, &t) < 0) return -1;
    s->type = (uint8_t)t;
    return 0;
}

int tbgw_mbv_type_parse(const char *name, int count, tbgw_mbv_type *out) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcasecmp(name, TYPES[i].name)) {
            *out = TYPES[i].t;
            return 0;
        }
    const char *suffix = NULL;
    if (!strcasecmp(name, "int") || !strcasecmp(name, "long") || !strcasecmp(name, "integer"))
        suffix = "int";
    else if (!strcasecmp(name, "float") || !strcasecmp(name, "double"))
        suffix = "float";
    else if (!strcasecmp(name, "uint"))
        suffix = "uint";
    if (!suffix) return -1;
    char buf[32];
    snprintf(buf, sizeof buf, "%d%s", count * 16, suffix);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(buf, TYPES[i].name)) {
            *out = TYPES[i].t;
            return 0;
        }
    return -1;
}

const char *tbgw_mbv_type_name(tbgw_mbv_type t) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].t == t) return TYPES[i].name;
    return "?";
}

void tbgw_mbv_spec_init(tbgw_mbv_spec *s) {
    memset(s, 0, sizeof *s);
    s->type = MBV_16INT;
    s->count = 1;
    s->byte_little = 1;
    s->word_little = 1;
    s->bit = -1;
    s->round_digits = 6;
}

static size_t type_width(tbgw_mbv_type t) {
    switch (t) {
    case MBV_8INT:
    case MBV_8UINT:
        return 1;
    case MBV_16INT:
    case MBV_16UINT:
    case MBV_16FLOAT:
        return 2;
    case MBV_32INT:
    case MBV_32UINT:
    case MBV_32FLOAT:
        return 4;
    case MBV_64INT:
    case MBV_64UINT:
    case MBV_64FLOAT:
        return 8;
    default:
        return 0;
    }
}

/* Byte order inside each 16-bit word and word order, as the reference's payload decoder/builder. */
static void apply_order(const tbgw_mbv_spec *s, uint8_t *b, size_t n) {
    if (s->byte_little)
        for (size_t i = 0; i + 1 < n; i += 2) {
            uint8_t t = b[i];
            b[i] = b[i + 1];
            b[i + 1] = t;
        }
    if (s->word_little)
        for (size_t i = 0, j = n / 2 - 1; n >= 2 && i < j; i++, j--) {
            uint8_t t0 = b[2 * i], t1 = b[2 * i + 1];
            b[2 * i] = b[2 * j];
            b[2 * i + 1] = b[2 * j + 1];
            b[2 * j] = t0;
            b[2 * j + 1] = t1;
        }
}

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static uint16_t double_to_half(double d) {
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    d = fabs(d);
    if (isnan(d)) return 0x7E00;
    if (d >= 65520.0) return sign | 0x7C00;
    if (d < ldexp(1, -24) / 2) return sign;
    int e;
    double fr = frexp(d, &e); /* d = fr * 2^e, fr in [0.5,1) */
    int exp = e - 1 + 15;
    if (exp <= 0) { /* subnormal */
        long m = lrint(ldexp(d, 24));
        return (uint16_t)(sign | (uint16_t)m);
    }
    long m = lrint((fr * 2 - 1) * 1024);
    if (m == 1024) {
        m = 0;
        exp++;
    }
    if (exp >= 31) return sign | 0x7C00;
    return (uint16_t)(sign | (uint16_t)(exp << 10) | (uint16_t)m);
}

/* Python's round(v, digits): the exact binary value rounded to a decimal, halves to even, read back.
 * Fast path when v * 10^digits is far enough from a half that its own rounding cannot matter; the
 * division then gives the double nearest the decimal, as reading it would. */
static double round_to(double v, int digits) {
    if (!isfinite(v) || digits < 0 || digits > 15) return v;
    if (fabs(v) >= 4503599627370496.0) return v; /* 2^52: every double is whole */
    double p = pow(10, digits), x = v * p;
    double f = fabs(x - trunc(x));
    if (fabs(x) < 4503599627370496.0 && fabs(f - 0.5) > fabs(x) * 4.5e-16 + 1e-300) {
        double r = round(x) / p;
        return isfinite(r) ? r : v;
    }
    char t[400];
    snprintf(t, sizeof t, "%.*f", digits, v);
    return strtod(t, NULL);
}

/* Payload bytes as the reference's decoder sees them (numbers and text; bits map through
 * bit_slot_target). Registers: as received (big-endian). Coils: the response's bit list (whole bytes, so
 * padded at the end) cut in groups of 8, each group reversed and packed LSB-first — i.e. every byte
 * bit-reversed. */
static size_t make_payload(int fc, const uint8_t *data, size_t len, uint8_t *out, size_t cap) {
    size_t n = len < cap ? len : cap;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = data[i];
        if (fc == 1 || fc == 2) {
            uint8_t r = 0;
            for (int k = 0; k < 8; k++) r |= (uint8_t)(((b >> k) & 1) << (7 - k));
            b = r;
        }
        out[i] = b;
    }
    return n;
}

/* The reference's bit list (spec §7.2 "Bits", pymodbus 3.9.2 semantics): the first two payload bytes,
 * each unpacked LSB first, the first byte's bits first, of which the last objectsCount are kept. For
 * coils the payload packs 8 coils a byte with the first coil in the most significant bit; for registers
 * it is the first register, high byte first. So slot s (byte k = s/8, bit j = s%8) holds coil 8k+7-j,
 * or bit 8(1-k)+j of the first register. Reads and writes both map through this one function. */
static int bit_slot_target(int coils, int slot) {
    int k = slot / 8, j = slot % 8;
    return coils ? 8 * k + 7 - j : 8 * (1 - k) + j;
}

/* Slots of the list for a payload of n bytes (at most two are decoded). */
static int bit_slots(size_t n) {
    return n >= 2 ? 16 : n == 1 ? 8 : 0;
}

/* raw: fc 1/2 the coils as on the wire (LSB first); fc 3/4 the registers big-endian. */
static json_t *decode_bits(const tbgw_mbv_spec *s, int fc, const uint8_t *raw, size_t n) {
    int coils = fc == 1 || fc == 2;
    int nslots = bit_slots(n);
    int keep = s->count < nslots ? s->count : nslots;
    if (keep <= 0) return NULL;
    int bits[16];
    unsigned reg = n >= 2 ? (unsigned)raw[0] << 8 | raw[1] : 0;
    for (int i = 0; i < keep; i++) {
        int t = bit_slot_target(coils, nslots - keep + i);
        bits[i] = coils ? (raw[t / 8] >> (t % 8)) & 1 : (int)(reg >> t) & 1;
    }
    if (s->bit >= 0) /* the reference: int(kept[bit]), the last one when bit is past the end */
        return json_integer(bits[s->bit < keep ? s->bit : keep - 1]);
    if (s->count == 1) return s->bit_int ? json_integer(bits[keep - 1]) : json_boolean(bits[keep - 1]);
    json_t *arr = json_array();
    for (int i = 0; i < keep; i++)
        json_array_append_new(arr, s->bit_int ? json_integer(bits[i]) : json_boolean(bits[i]));
    return arr;
}

static json_t *decode_text(const tbgw_mbv_spec *s, const uint8_t *p, size_t n) {
    size_t want = (size_t)s->count * 2;
    if (want > n) want = n;
    static const char hx[] = "0123456789abcdef";
    char *buf = malloc(want * 2 + 1);
    if (!buf) return NULL;
    json_t *r = NULL;
    if (s->type == MBV_STRING) {
        size_t m = want;
        while (m && p[m - 1] == 0) m--; /* register padding */
        memcpy(buf, p, m);
        buf[m] = 0;
        r = json_stringn(buf, m); /* NULL when not valid UTF-8 */
    }
    if (!r) {
        for (size_t i = 0; i < want; i++) {
            buf[2 * i] = hx[p[i] >> 4];
            buf[2 * i + 1] = hx[p[i] & 15];
        }
        buf[want * 2] = 0;
        r = json_string(buf);
    }
    free(buf);
    return r;
}

static json_t *decode_number(const tbgw_mbv_spec *s, const uint8_t *p, size_t n, char *err, size_t errlen) {
    size_t w = type_width(s->type);
    if (n < w || (w == 1 && n < 1)) {
        snprintf(err, errlen, "%zu bytes received, %s needs %zu", n, tbgw_mbv_type_name(s->type), w);
        return NULL;
    }
    uint8_t b[8];
    memcpy(b, p, w);
    if (w >= 2) apply_order(s, b, w);
    uint64_t u = 0;
    for (size_t i = 0; i < w; i++) u = u << 8 | b[i];
    switch (s->type) {
    case MBV_8INT:
        return json_integer((int8_t)u);
    case MBV_8UINT:
        return json_integer((uint8_t)u);
    case MBV_16INT:
        return json_integer((int16_t)u);
    case MBV_16UINT:
        return json_integer((uint16_t)u);
    case MBV_32INT:
        return json_integer((int32_t)u);
    case MBV_32UINT:
        return json_integer((uint32_t)u);
    case MBV_64INT:
        return json_integer((int64_t)u);
    case MBV_64UINT:
        return tbgw_json_u64(u); /* above 2^63: an exact integer, never a double */
    case MBV_16FLOAT:
        return json_real(half_to_double((uint16_t)u));
    case MBV_32FLOAT: {
        uint32_t x = (uint32_t)u;
        float f;
        memcpy(&f, &x, 4);
        return json_real((double)f);
    }
    default: {
        double d;
        memcpy(&d, &u, 8);
        return json_real(d);
    }
    }
}

/* An exact 128-bit product as JSON: an integer, or a number node when beyond int64. */
static json_t *json_i128(__int128 r) {
    if (r >= INT64_MIN && r <= INT64_MAX) return json_integer((json_int_t)r);
    char tmp[48], *e = tmp + sizeof tmp, *p = e;
    unsigned __int128 m = r < 0 ? (unsigned __int128)0 - (unsigned __int128)r : (unsigned __int128)r;
    do {
        *--p = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    if (r < 0) *--p = '-';
    return tbgw_json_number_text(p, (size_t)(e - p));
}

static int bitlen(unsigned __int128 x) {
    int b = 0;
    for (; x; x >>= 1) b++;
    return b;
}

/* n / d correctly rounded to a double, as Python's int / int (d > 0, |n| < 2^65). Above 2^53 the
 * double of n is already rounded, and dividing it would round twice (1 ulp off for about a quarter
 * of 64-bit values): take a 53-bit quotient from the exact integers and round it once. */
static double int_div(__int128 n, uint64_t d) {
    int neg = n < 0;
    unsigned __int128 a = neg ? (unsigned __int128)(-n) : (unsigned __int128)n;
    if (a < ((unsigned __int128)1 << 53) && d < (1ull << 53)) return (double)n / (double)d;
    unsigned __int128 q = a / d, r = a % d, m, lhs, rhs;
    int t = 53 - bitlen(q); /* scale so that the quotient has 53 bits */
    if (t >= 0) {
        unsigned __int128 x = a << t;
        m = x / d;
        lhs = 2 * (x % d);
        rhs = d;
    } else {
        int sh = -t;
        m = q >> sh;
        unsigned __int128 rem = q & (((unsigned __int128)1 << sh) - 1);
        lhs = 2 * (rem * d + r);
        rhs = (unsigned __int128)d << sh;
    }
    if (lhs > rhs || (lhs == rhs && (m & 1))) m++; /* nearest, ties to even */
    double out = ldexp((double)m, -t);
    return neg ? -out : out;
}

/* divider / multiplier, with Python's arithmetic on integers: int * int exact, int / int rounded
 * once. */
static json_t *apply_scaling(const tbgw_mbv_spec *s, int fc, json_t *v) {
    if (fc != 3 && fc != 4) return v;
    if (!tbgw_json_is_number(v)) return v;
    double d = tbgw_json_number_double(v);
    size_t nl;
    const char *num = tbgw_json_number_of(v, &nl);
    int64_t i = json_integer_value(v);
    uint64_t u = 0;
    int kind = num ? tbgw_int_text(num, nl, &i, &u) : json_is_integer(v) ? 0 : -1; /* 0 int64, 1 uint64 */
    int is_int = kind == 0 || kind == 1;
    __int128 n = kind == 1 ? (__int128)u : (__int128)i;
    json_t *r = NULL;
    if (s->divider != 0) {
        double dv = s->divider;
        if (is_int && (n >= ((__int128)1 << 53) || n <= -((__int128)1 << 53)) && s->divider_is_int &&
            fabs(dv) < 9007199254740992.0)
            r = json_real(int_div(dv < 0 ? -n : n, (uint64_t)fabs(dv)));
        else
            r = json_real(d / dv);
    } else if (s->multiplier != 0) {
        if (is_int && s->multiplier_is_int && fabs(s->multiplier) < 9e18)
            r = json_i128(n * (__int128)(int64_t)s->multiplier);
        else
            r = json_real(d * s->multiplier);
    }
    if (r) {
        json_decref(v);
        v = r;
    }
    return v;
}

json_t *tbgw_mbv_decode(const tbgw_mbv_spec *s, int fc, const uint8_t *data, size_t len, char *err,
                        size_t errlen) {
    uint8_t payload[512];
    size_t n = make_payload(fc, data, len, payload, sizeof payload);
    json_t *v;
    if (s->type == MBV_BITS)
        v = decode_bits(s, fc, data, len < 2 ? len : 2);
    else if (s->type == MBV_STRING || s->type == MBV_BYTES)
        v = decode_text(s, payload, n);
    else
        v = decode_number(s, payload, n, err, errlen);
    if (!v) {
        if (err && errlen && !err[0]) snprintf(err, errlen, "empty payload");
        return NULL;
    }
    v = apply_scaling(s, fc, v);
    if (json_is_real(v)) {
        double r = round_to(json_real_value(v), s->round_digits);
        if (!isfinite(r)) {
            json_decref(v);
            snprintf(err, errlen, "decoded value is not a finite number");
            return NULL;
        }
        json_real_set(v, r);
    }
    if (s->variants && json_is_object(s->variants)) {
        char key[256];
        tbgw_mbv_pystr(v, key, sizeof key);
        json_t *m = json_object_get(s->variants, key);
        if (m) {
            json_decref(v);
            v = json_deep_copy(m);
        }
    }
    return v;
}

static void pyfloat(double d, char *out, size_t cap) {
    char t[TBGW_DOUBLE_MAX];
    tbgw_fmt_double(t, d);
    snprintf(out, cap, "%s", t);
}

void tbgw_mbv_pystr(const json_t *v, char *out, size_t cap) {
    if (!cap) return;
    out[0] = 0;
    if (json_is_true(v))
        snprintf(out, cap, "True");
    else if (json_is_false(v))
        snprintf(out, cap, "False");
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        pyfloat(json_real_value(v), out, cap);
    else if (tbgw_json_number_of(v, NULL))
        snprintf(out, cap, "%s", tbgw_json_number_of(v, NULL));
    else if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_array(v)) {
        size_t o = 0;
        o += (size_t)snprintf(out + o, cap - o, "[");
        for (size_t i = 0; i < json_array_size(v) && o < cap; i++) {
            char item[64];
            tbgw_mbv_pystr(json_array_get(v, i), item, sizeof item);
            o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", item);
        }
        if (o < cap) snprintf(out + o, cap - o, "]");
    } else
        snprintf(out, cap, "None");
}

static int truthy(const json_t *v) {
    if (json_is_array(v)) return json_array_size(v) ? truthy(json_array_get(v, 0)) : 0;
    if (json_is_boolean(v)) return json_is_true(v);
    if (tbgw_json_is_number(v)) return tbgw_json_number_double(v) != 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        return !strcasecmp(s, "true") || !strcasecmp(s, "on") || (strtod(s, NULL) != 0);
    }
    return 0;
}

static int64_t clamp_i64(double d) {
    if (d != d) return 0;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return (int64_t)d;
}

static int num_of(const json_t *v, double *d, int64_t *i, int *is_int) {
    *is_int = 0;
    if (json_is_integer(v)) {
        *i = json_integer_value(v);
        *d = (double)*i;
        *is_int = 1;
        return 0;
    }
    if (json_is_real(v)) {
        *d = json_real_value(v);
        *i = clamp_i64(*d);
        return 0;
    }
    if (json_is_boolean(v)) {
        *i = json_is_true(v);
        *d = (double)*i;
        *is_int = 1;
        return 0;
    }
    size_t nl;
    const char *num = tbgw_json_number_of(v, &nl);
    uint64_t u;
    if (num) { /* beyond int64: a uint64 keeps its bits in *i, larger ones go through the double */
        *is_int = tbgw_int_text(num, nl, i, &u) == 1;
        *d = strtod(num, NULL);
        if (*is_int)
            *i = (int64_t)u;
        else
            *i = clamp_i64(*d);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 0);
        if (*s && !*end && errno == ERANGE && *s != '-') {
            errno = 0;
            u = strtoull(s, &end, 0);
            if (!errno) {
                *i = (int64_t)u;
                *d = (double)u;
                *is_int = 1;
                return 0;
            }
        }
        if (*s && !*end && !errno) {
            *i = ll;
            *d = (double)ll;
            *is_int = 1;
            return 0;
        }
        *d = strtod(s, &end);
        if (*s && !*end) {
            *i = clamp_i64(*d);
            return 0;
        }
    }
    return -1;
}

/* A list of bits: a JSON list or a "0101" string (two characters or more). */
static int is_bit_list(const json_t *v) {
    return json_is_array(v) || (json_is_string(v) && json_string_length(v) > 1 &&
                                strspn(json_string_value(v), "01") == json_string_length(v));
}

/* Bits of a value: a list, a "0101" string, a bool or an integer (LSB first, count bits). */
static size_t value_bits(const json_t *v, int count, uint8_t *bits, size_t cap) {
    size_t n = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && n < cap; i++)
            bits[n++] = (uint8_t)truthy(json_array_get(v, i));
    } else if (is_bit_list(v)) {
        for (const char *p = json_string_value(v); *p && n < cap; p++) bits[n++] = (uint8_t)(*p == '1');
    } else if (json_is_integer(v) && count > 1) {
        json_int_t x = json_integer_value(v);
        for (int i = 0; i < count && i < 64 && n < cap; i++) bits[n++] = (uint8_t)((x >> i) & 1);
    } else if (cap) {
        bits[n++] = (uint8_t)truthy(v);
    }
    return n;
}

static int encode_payload(const tbgw_mbv_spec *s, const json_t *value, uint8_t *b, size_t cap, size_t *n,
                          char *err, size_t errlen) {
    size_t w = type_width(s->type);
    if (s->type == MBV_STRING || s->type == MBV_BYTES) {
        const char *str = json_is_string(value) ? json_string_value(value) : NULL;
        if (!str) {
            snprintf(err, errlen, "expected a string value");
            return -1;
        }
        size_t m = strlen(str);
        if (m > cap) m = cap;
        memcpy(b, str, m);
        *n = m;
        return 0;
    }
    double d;
    int64_t iv;
    int is_int;
    if (num_of(value, &d, &iv, &is_int) < 0) {
        snprintf(err, errlen, "value is not a number");
        return -1;
    }
    uint64_t u;
    switch (s->type) {
    case MBV_16FLOAT:
        u = double_to_half(d);
        break;
    case MBV_32FLOAT: {
        float f = (float)d;
        uint32_t x;
        memcpy(&x, &f, 4);
        u = x;
        break;
    }
    case MBV_64FLOAT:
        memcpy(&u, &d, 8);
        break;
    default:
        u = (uint64_t)(is_int ? iv : (int64_t)llround(d));
        break;
    }
    for (size_t i = 0; i < w; i++) b[i] = (uint8_t)(u >> (8 * (w - 1 - i)));
    if (w >= 2) apply_order(s, b, w);
    *n = w;
    return 0;
}

/* A bits write, the read rule backwards (bit_slot_target): a list (or "0101" string) is the list a read
 * returns, item i going where a read takes item i from; an integer sets coil i / register bit i from its
 * bit i; a scalar with `bit` sets the bit a read with that `bit` reports. Fills *out with `count` coils
 * (one byte 0/1 each) or returns the first register's value. */
static unsigned encode_bits(const tbgw_mbv_spec *s, int coils, const json_t *value, uint8_t *out,
                            size_t cap) {
    size_t ncoils = coils ? ((size_t)s->count < cap ? (size_t)s->count : cap) : 0;
    if (coils) memset(out, 0, ncoils);
    unsigned reg = 0;
    if (json_is_integer(value) && s->count > 1 && s->bit < 0) {
        json_int_t x = json_integer_value(value);
        for (size_t t = 0; t < (coils ? ncoils : 16) && t < 64; t++)
            if ((x >> t) & 1) {
                if (coils)
                    out[t] = 1;
                else
                    reg |= 1u << t;
            }
        return reg;
    }
    int nslots = coils ? bit_slots(((size_t)s->count + 7) / 8) : 16;
    int keep = s->count < nslots ? s->count : nslots;
    if (keep <= 0) return 0;
    uint8_t list[16] = {0};
    if (s->bit >= 0 && !is_bit_list(value))
        list[s->bit < keep ? s->bit : keep - 1] = (uint8_t)truthy(value);
    else
        value_bits(value, keep, list, (size_t)keep);
    for (int i = 0; i < keep; i++) {
        if (!list[i]) continue;
        int t = bit_slot_target(coils, nslots - keep + i);
        if (!coils)
            reg |= 1u << t;
        else if ((size_t)t < ncoils)
            out[t] = 1;
    }
    return reg;
}

int tbgw_mbv_encode(const tbgw_mbv_spec *s, int fc, const json_t *value, uint16_t *regs, uint8_t *coils,
                    size_t cap, size_t *n, char *err, size_t errlen) {
    *n = 0;
    if (!value) {
        snprintf(err, errlen, "no value to write");
        return -1;
    }
    if (fc == 5) {
        if (cap < 1) return -1;
        coils[0] = (uint8_t)truthy(value);
        *n = 1;
        return 0;
    }
    if (fc == 15 && s->type == MBV_BITS) {
        encode_bits(s, 1, value, coils, cap);
        *n = (size_t)s->count < cap ? (size_t)s->count : cap;
        return 0;
    }
    if ((fc == 6 || fc == 16) && s->type == MBV_BITS) {
        if (cap < 1) return -1;
        regs[0] = (uint16_t)encode_bits(s, 0, value, NULL, 0);
        *n = 1;
        return 0;
    }
    if (fc == 15) {
        uint8_t bits[2048];
        size_t nb = value_bits(value, s->count, bits, sizeof bits);
        if (nb > cap) nb = cap;
        memcpy(coils, bits, nb);
        *n = nb;
        return 0;
    }
    if (fc != 6 && fc != 16) {
        snprintf(err, errlen, "function code %d is not a write", fc);
        return -1;
    }
    uint8_t b[512];
    size_t nb = 0;
    if (encode_payload(s, value, b, sizeof b - 2, &nb, err, errlen) < 0) return -1;
    if (nb % 2) b[nb++] = 0; /* the builder pads to whole registers */
    size_t want = (s->type == MBV_STRING || s->type == MBV_BYTES) ? (size_t)s->count * 2 : 0;
    while (nb < want && nb + 2 <= sizeof b) {
        b[nb++] = 0;
        b[nb++] = 0;
    }
    size_t nr = nb / 2;
    if (fc == 6) nr = nr ? 1 : 0;
    if (nr > cap) nr = cap;
    int swap = s->repack && s->byte_little;
    for (size_t i = 0; i < nr; i++)
        regs[i] = swap ? (uint16_t)(b[2 * i + 1] << 8 | b[2 * i]) : (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
    *n = nr;
    return 0;
}
