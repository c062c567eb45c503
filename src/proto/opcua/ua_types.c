/* Helpers on OPC UA built-in types: copies, node id text form, time conversion. */
#include "proto/opcua/ua_types.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tbgw/err.h>

/* 100 ns ticks between 1601-01-01 and 1970-01-01. */
#define UA_EPOCH_DELTA 116444736000000000LL

int64_t tbgw_ua_datetime_to_ms(int64_t dt) {
    if (dt <= 0) return 0;
    return (dt - UA_EPOCH_DELTA) / 10000;
}

int64_t tbgw_ua_datetime_from_ms(int64_t ms) {
    return ms * 10000 + UA_EPOCH_DELTA;
}

int64_t tbgw_ua_datetime_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 10000000LL + ts.tv_nsec / 100 + UA_EPOCH_DELTA;
}

tbgw_ua_nodeid tbgw_ua_nodeid_num(uint16_t ns, uint32_t num) {
    tbgw_ua_nodeid id;
    memset(&id, 0, sizeof id);
    id.ns = ns;
    id.num = num;
    id.str.len = -1;
    return id;
}

int tbgw_ua_nodeid_copy(tbgw_ua_nodeid *dst, const tbgw_ua_nodeid *src) {
    *dst = *src;
    dst->str.data = NULL;
    dst->str.len = -1;
    if ((src->type == TBGW_UA_ID_STRING || src->type == TBGW_UA_ID_BYTESTRING) && src->str.len >= 0)
        return tbgw_ua_bytes_set(&dst->str, src->str.data, (size_t)src->str.len);
    return 0;
}

int tbgw_ua_nodeid_equal(const tbgw_ua_nodeid *a, const tbgw_ua_nodeid *b) {
    if (a->ns != b->ns || a->type != b->type) return 0;
    switch (a->type) {
    case TBGW_UA_ID_NUMERIC:
        return a->num == b->num;
    case TBGW_UA_ID_GUID:
        return memcmp(a->guid, b->guid, 16) == 0;
    default:
        if (a->str.len != b->str.len) return 0;
        return a->str.len <= 0 || memcmp(a->str.data, b->str.data, (size_t)a->str.len) == 0;
    }
}

int tbgw_ua_variant_copy(tbgw_ua_variant *dst, const tbgw_ua_variant *src) {
    /* Encoding then decoding is the simplest exact deep copy. */
    tbgw_buf b;
    tbgw_buf_init(&b);
    memset(dst, 0, sizeof *dst);
    int rc = tbgw_ua_enc_variant(&b, src);
    if (rc == 0) {
        tbgw_ua_dec d;
        tbgw_ua_dec_init(&d, b.p, b.len);
        rc = tbgw_ua_dec_variant(&d, dst);
    }
    tbgw_buf_free(&b);
    return rc;
}

int tbgw_ua_variant_set_scalar(tbgw_ua_variant *v, uint8_t type, const tbgw_ua_scalar *val) {
    memset(v, 0, sizeof *v);
    v->v = calloc(1, sizeof *v->v);
    if (!v->v) return TBGW_ENOMEM;
    v->type = type;
    v->n = 1;
    v->v[0] = *val;
    if (type == TBGW_UA_STRING || type == TBGW_UA_BYTESTRING || type == TBGW_UA_XMLELEMENT) {
        v->v[0].s.data = NULL;
        v->v[0].s.len = -1;
        if (val->s.len >= 0 && tbgw_ua_bytes_set(&v->v[0].s, val->s.data, (size_t)val->s.len)) {
            tbgw_ua_variant_clear(v);
            return TBGW_ENOMEM;
        }
    }
    return 0;
}

int tbgw_ua_variant_set_string(tbgw_ua_variant *v, const char *s) {
    tbgw_ua_scalar sc;
    memset(&sc, 0, sizeof sc);
    sc.s.data = (uint8_t *)(uintptr_t)s;
    sc.s.len = s ? (int32_t)strlen(s) : -1;
    return tbgw_ua_variant_set_scalar(v, TBGW_UA_STRING, &sc);
}

/* ------------------------------------------------------------------ node id text form */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "72962b91-fa75-4ae6-8d28-b404dc7daf63" -> wire order bytes */
static int parse_guid(const char *s, uint8_t out[16]) {
    uint8_t raw[16];
    int k = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '-') continue;
        int hi = hexval(p[0]);
        int lo = p[1] ? hexval(p[1]) : -1;
        if (hi < 0 || lo < 0 || k >= 16) return -1;
        raw[k++] = (uint8_t)(hi << 4 | lo);
        p++;
    }
    if (k != 16 || strlen(s) != 36) return -1;
    /* Data1..3 are little-endian on the wire */
    out[0] = raw[3], out[1] = raw[2], out[2] = raw[1], out[3] = raw[0];
    out[4] = raw[5], out[5] = raw[4];
    out[6] = raw[7], out[7] = raw[6];
    memcpy(out + 8, raw + 8, 8);
    return 0;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int parse_b64(const char *s, tbgw_ua_bytes *out) {
    size_t n = strlen(s);
    uint8_t *buf = malloc(n * 3 / 4 + 4);
    if (!buf) return TBGW_ENOMEM;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return TBGW_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (uint8_t)(acc >> bits);
        }
    }
    int rc = tbgw_ua_bytes_set(out, buf, k);
    free(buf);
    return rc;
}

int tbgw_ua_nodeid_parse(const char *text, tbgw_ua_nodeid *out) {
    *out = tbgw_ua_nodeid_num(0, 0);
    if (!text) return TBGW_EINVAL;
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    if (strncmp(p, "ns=", 3) == 0) {
        char *end;
        errno = 0;
        unsigned long ns = strtoul(p + 3, &end, 10);
        if (end == p + 3 || *end != ';' || ns > 0xFFFF || errno) return TBGW_EINVAL;
        out->ns = (uint16_t)ns;
        p = end + 1;
    }
    if (p[0] == '\0' || p[1] != '=') return TBGW_EINVAL;
    const char *v = p + 2;
    switch (p[0]) {
    case 'i': {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)*v)) return TBGW_EINVAL;
        unsigned long long n = strtoull(v, &end, 10);
        while (isspace((unsigned char)*end)) end++;
        if (*end || n > 0xFFFFFFFFull || errno) return TBGW_EINVAL;
        out->num = (uint32_t)n;
        return 0;
    }
    case 's':
        out->type = TBGW_UA_ID_STRING;
        return tbgw_ua_bytes_set(&out->str, v, strlen(v));
    case 'g':
        out->type = TBGW_UA_ID_GUID;
        return parse_guid(v, out->guid) ? TBGW_EINVAL : 0;
    case 'b':
        out->type = TBGW_UA_ID_BYTESTRING;
        return parse_b64(v, &out->str);
    default:
        return TBGW_EINVAL;
    }
}

int tbgw_ua_nodeid_format(const tbgw_ua_nodeid *id, tbgw_buf *out) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (id->ns) tbgw_buf_printf(out, "ns=%u;", (unsigned)id->ns);
    switch (id->type) {
    case TBGW_UA_ID_NUMERIC:
        tbgw_buf_printf(out, "i=%u", (unsigned)id->num);
        break;
    case TBGW_UA_ID_STRING:
        tbgw_buf_puts(out, "s=");
        if (id->str.len > 0) tbgw_buf_append(out, id->str.data, (size_t)id->str.len);
        break;
    case TBGW_UA_ID_GUID: {
        const uint8_t *g = id->guid;
        tbgw_buf_printf(out, "g=%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3],
                        g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
                        g[14], g[15]);
        break;
    }
    case TBGW_UA_ID_BYTESTRING: {
        tbgw_buf_puts(out, "b=");
        const uint8_t *s = id->str.data;
        int32_t n = id->str.len;
        for (int32_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)s[i] << 16;
            if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
            if (i + 2 < n) v |= s[i + 2];
            char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                         i + 2 < n ? b64[v & 63] : '='};
            tbgw_buf_append(out, q, 4);
        }
        break;
    }
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

const char *tbgw_ua_type_name(uint8_t type) {
    static const char *const names[] = {
        "Null",           "Boolean",       "SByte",         "Byte",          "Int16",           "UInt16",
        "Int32",          "UInt32",        "Int64",         "UInt64",        "Float",           "Double",
        "String",         "DateTime",      "Guid",          "ByteString",    "XmlElement",      "NodeId",
        "ExpandedNodeId", "StatusCode",    "QualifiedName", "LocalizedText", "ExtensionObject", "DataValue",
        "Variant",        "DiagnosticInfo"};
    return type < sizeof names / sizeof names[0] ? names[type] : "Unknown";
}
