/* SNMP values: numeric OIDs, varbinds to JSON, JSON to typed SET values, table merging. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/snmp/snmpc.h"
#include "convert/expr.h"
#include "util/utf8.h"

static const char *const method_names[SM__COUNT] = {"get",       "multiget", "getnext", "walk",
                                                    "multiwalk", "bulkwalk", "bulkget", "table",
                                                    "bulktable", "set",      "multiset"};

const char *snmp_method_name(snmp_method m) {
    return (unsigned)m < SM__COUNT ? method_names[m] : "?";
}

int snmp_method_parse(const char *s, snmp_method *out) {
    for (int i = 0; s && i < SM__COUNT; i++)
        if (!strcasecmp(s, method_names[i])) {
            *out = (snmp_method)i;
            return 0;
        }
    return TBGW_EINVAL;
}

int snmp_oid_parse(const char *text, snmp_oid *out) {
    out->len = 0;
    const char *p = text;
    if (!p) return TBGW_EINVAL;
    if (*p == '.') p++;
    if (!*p) return TBGW_EINVAL;
    while (*p) {
        if (!isdigit((unsigned char)*p) || out->len >= MAX_OID_LEN) return TBGW_EINVAL;
        unsigned long long v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (unsigned long long)(*p - '0');
            if (v > 0xFFFFFFFFull) return TBGW_EINVAL;
            p++;
        }
        out->v[out->len++] = (oid)v;
        if (*p == '.') {
            p++;
            if (!*p) return TBGW_EINVAL;
        } else if (*p) {
            return TBGW_EINVAL;
        }
    }
    return out->len >= 1 ? 0 : TBGW_EINVAL;
}

void snmp_oid_format(const oid *v, size_t len, char *out, size_t cap) {
    size_t o = 0;
    if (cap) out[0] = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        int n = snprintf(out + o, cap - o, i ? ".%lu" : "%lu", (unsigned long)v[i]);
        if (n < 0) break;
        o += (size_t)n;
    }
}

int snmp_oid_in_subtree(const oid *v, size_t len, const snmp_oid *base) {
    if (len < base->len) return 0;
    for (size_t i = 0; i < base->len; i++)
        if (v[i] != base->v[i]) return 0;
    return 1;
}

static json_t *hex_json(const u_char *p, size_t n) {
    char *t = malloc(n * 2 + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < n; i++) snprintf(t + 2 * i, 3, "%02x", p[i]);
    t[2 * n] = 0;
    json_t *j = json_string(t);
    free(t);
    return j;
}

static json_t *u64_json(uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    return json_string(t);
}

json_t *snmp_vb_to_json(const netsnmp_variable_list *vb, char *err, size_t errlen) {
    const netsnmp_vardata *d = &vb->val;
    size_t n = vb->val_len;
    switch (vb->type) {
    case ASN_INTEGER:
        if (!d->integer || n < sizeof(long)) break;
        return json_integer(*d->integer);
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_UINTEGER:
        if (!d->integer || n < sizeof(long)) break;
        return json_integer((json_int_t)((unsigned long)*d->integer & 0xFFFFFFFFul));
    case ASN_TIMETICKS:
        if (!d->integer || n < sizeof(long)) break;
        return json_real((double)((unsigned long)*d->integer & 0xFFFFFFFFul) / 100.0);
    case ASN_COUNTER64:
    case ASN_OPAQUE_COUNTER64:
    case ASN_OPAQUE_U64:
        if (!d->counter64 || n < sizeof(struct counter64)) break;
        return u64_json((uint64_t)(d->counter64->high & 0xFFFFFFFFul) << 32 |
                        (d->counter64->low & 0xFFFFFFFFul));
    case ASN_OPAQUE_I64:
        if (!d->counter64 || n < sizeof(struct counter64)) break;
        return json_integer((json_int_t)(int64_t)((uint64_t)(d->counter64->high & 0xFFFFFFFFul) << 32 |
                                                  (d->counter64->low & 0xFFFFFFFFul)));
    case ASN_OPAQUE_FLOAT:
        if (!d->floatVal || n < sizeof(float) || !isfinite(*d->floatVal)) break;
        return json_real(*d->floatVal);
    case ASN_OPAQUE_DOUBLE:
        if (!d->doubleVal || n < sizeof(double) || !isfinite(*d->doubleVal)) break;
        return json_real(*d->doubleVal);
    case ASN_OCTET_STR: {
        if (!d->string && n) break;
        /* text when it is UTF-8 (NUL bytes dropped), else hex */
        const u_char *p = d->string;
        if (!tbgw_utf8_valid(p, n)) return hex_json(p, n);
        char *t = malloc(n + 1);
        if (!t) return NULL;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (p[i]) t[m++] = (char)p[i];
        t[m] = 0;
        json_t *j = json_stringn(t, m);
        free(t);
        return j;
    }
    case ASN_OPAQUE:
    case ASN_NSAP:
    case ASN_BIT_STR:
        if (!d->string && n) break;
        return hex_json(d->string, n);
    case ASN_OBJECT_ID: {
        if (!d->objid || n % sizeof(oid) || n / sizeof(oid) > MAX_OID_LEN) break;
        char t[MAX_OID_LEN * 11 + 1];
        snmp_oid_format(d->objid, n / sizeof(oid), t, sizeof t);
        return json_string(t);
    }
    case ASN_IPADDRESS: {
        if (!d->string || n != 4) break;
        char t[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, d->string, t, sizeof t);
        return json_string(t);
    }
    case ASN_NULL:
        return json_null();
    case SNMP_NOSUCHOBJECT:
        snprintf(err, errlen, "no such object");
        return NULL;
    case SNMP_NOSUCHINSTANCE:
        snprintf(err, errlen, "no such instance");
        return NULL;
    case SNMP_ENDOFMIBVIEW:
        snprintf(err, errlen, "end of MIB view");
        return NULL;
    default:
        snprintf(err, errlen, "unsupported value type 0x%02x", vb->type);
        return NULL;
    }
    snprintf(err, errlen, "malformed value of type 0x%02x (%zu bytes)", vb->type, n);
    return NULL;
}

int snmp_json_text(const json_t *v, tbgw_buf *out) {
    if (json_is_string(v)) return tbgw_buf_append(out, json_string_value(v), json_string_length(v));
    return tbgw_fmt_json(out, v, TBGW_FMT_PY);
}

static const struct {
    const char *name;
    u_char type;
} type_names[] = {
    {"i", ASN_INTEGER},
    {"integer", ASN_INTEGER},
    {"int", ASN_INTEGER},
    {"integer32", ASN_INTEGER},
    {"u", ASN_UNSIGNED},
    {"unsigned", ASN_UNSIGNED},
    {"unsigned32", ASN_UNSIGNED},
    {"g", ASN_GAUGE},
    {"gauge", ASN_GAUGE},
    {"gauge32", ASN_GAUGE},
    {"c", ASN_COUNTER},
    {"counter", ASN_COUNTER},
    {"counter32", ASN_COUNTER},
    {"C", ASN_COUNTER64},
    {"counter64", ASN_COUNTER64},
    {"t", ASN_TIMETICKS},
    {"timeticks", ASN_TIMETICKS},
    {"s", ASN_OCTET_STR},
    {"string", ASN_OCTET_STR},
    {"octetstring", ASN_OCTET_STR},
    {"x", ASN_OCTET_STR | 0x80},
    {"hex", ASN_OCTET_STR | 0x80},
    {"o", ASN_OBJECT_ID},
    {"oid", ASN_OBJECT_ID},
    {"objectidentifier", ASN_OBJECT_ID},
    {"a", ASN_IPADDRESS},
    {"ipaddress", ASN_IPADDRESS},
};

u_char snmp_type_parse(const char *s) {
    if (!s) return 0;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strlen(type_names[i].name) == 1 ? !strcmp(s, type_names[i].name)
                                            : !strcasecmp(s, type_names[i].name))
            return type_names[i].type;
    return 0;
}

/* Number from a JSON value: integers, whole reals, numeric strings, booleans. */
static int json_i64(const json_t *v, long long *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -9.2e18 || d > 9.2e18) return -1;
        *out = (long long)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        double d;
        long long x = strtoll(s, &end, 0);
        if (*s && !*end && !errno) {
            *out = x;
            return 0;
        }
        d = strtod(s, &end);
        if (*s && !*end && d == floor(d) && d > -9.2e18 && d < 9.2e18) {
            *out = (long long)d;
            return 0;
        }
    }
    return -1;
}

int snmp_set_value(u_char type, const json_t *v, u_char *buf, size_t cap, size_t *len, char *err,
                   size_t errlen) {
    long long x;
    switch (type) {
    case ASN_INTEGER:
        if (json_i64(v, &x) || x < INT32_MIN || x > INT32_MAX) goto bad_num;
        {
            long l = (long)x;
            memcpy(buf, &l, sizeof l);
            *len = sizeof l;
        }
        return 0;
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
        if (json_i64(v, &x) || x < 0 || x > 0xFFFFFFFFll) goto bad_num;
        {
            unsigned long l = (unsigned long)x;
            memcpy(buf, &l, sizeof l);
            *len = sizeof l;
        }
        return 0;
    case ASN_COUNTER64: {
        if (json_i64(v, &x) || x < 0) goto bad_num;
        struct counter64 c = {.high = (unsigned long)((unsigned long long)x >> 32),
                              .low = (unsigned long)((unsigned long long)x & 0xFFFFFFFFull)};
        memcpy(buf, &c, sizeof c);
        *len = sizeof c;
        return 0;
    }
    case ASN_OCTET_STR | 0x80: { /* hex text */
        const char *s = json_string_value(v);
        size_t n = 0;
        int hi = -1;
        for (; s && *s; s++) {
            if (isspace((unsigned char)*s) || *s == ':') continue;
            int d = isdigit((unsigned char)*s) ? *s - '0'
                    : (tolower((unsigned char)*s) >= 'a' && tolower((unsigned char)*s) <= 'f')
                        ? tolower((unsigned char)*s) - 'a' + 10
                        : -1;
            if (d < 0 || n >= cap) goto bad_hex;
            if (hi < 0) {
                hi = d;
            } else {
                buf[n++] = (u_char)(hi << 4 | d);
                hi = -1;
            }
        }
        if (!s || hi >= 0) goto bad_hex;
        *len = n;
        return 0;
    }
    case ASN_OCTET_STR: {
        tbgw_buf t;
        tbgw_buf_init(&t);
        snmp_json_text(v, &t);
        if (t.len > cap) {
            tbgw_buf_free(&t);
            snprintf(err, errlen, "value too long (%zu bytes)", t.len);
            return TBGW_EINVAL;
        }
        if (t.len) memcpy(buf, t.p, t.len);
        *len = t.len;
        tbgw_buf_free(&t);
        return 0;
    }
    case ASN_OBJECT_ID: {
        snmp_oid o;
        if (!json_is_string(v) || snmp_oid_parse(json_string_value(v), &o) || o.len * sizeof(oid) > cap) {
            snprintf(err, errlen, "expected a numeric OID");
            return TBGW_EINVAL;
        }
        memcpy(buf, o.v, o.len * sizeof(oid));
        *len = o.len * sizeof(oid);
        return 0;
    }
    case ASN_IPADDRESS: {
        struct in_addr a;
        if (!json_is_string(v) || inet_pton(AF_INET, json_string_value(v), &a) != 1) {
            snprintf(err, errlen, "expected an IPv4 address");
            return TBGW_EINVAL;
        }
        memcpy(buf, &a, 4);
        *len = 4;
        return 0;
    }
    default:
        snprintf(err, errlen, "values of type 0x%02x cannot be set", type);
        return TBGW_EINVAL;
    }
bad_num:
    snprintf(err, errlen, "expected an integer in range for the OID's type");
    return TBGW_EINVAL;
bad_hex:
    snprintf(err, errlen, "expected hex text");
    return TBGW_EINVAL;
}

int snmp_table_add(json_t *merged, const snmp_oid *base, const oid *v, size_t len, const json_t *value) {
    if (!snmp_oid_in_subtree(v, len, base)) return TBGW_EINVAL;
    /* base, then the entry node, then the column, then the row index */
    size_t skip = base->len + 1;
    char col[16] = "0", row[MAX_OID_LEN * 11 + 1] = "";
    if (len > skip) snprintf(col, sizeof col, "%lu", (unsigned long)v[skip]);
    if (len > skip + 1) snmp_oid_format(v + skip + 1, len - skip - 1, row, sizeof row);
    tbgw_buf t;
    tbgw_buf_init(&t);
    snmp_json_text(value, &t);
    json_object_set_new(merged, "0", json_string(row));
    json_object_set_new(merged, col, json_stringn(t.p ? t.p : "", t.len));
    tbgw_buf_free(&t);
    return 0;
}
