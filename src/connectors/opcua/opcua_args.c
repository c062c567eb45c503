/* RPC inputs of the OPC-UA connector: the text of the reserved get/set RPCs split into node and value
 * (spec gateway.md §7.3), and method arguments encoded as the types the method declares in its
 * InputArguments property (read once per method node and session). */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json.h"
#include "connectors/opcua/opcua.h"

/* ------------------------------------------------------------------ get / set params */

static const char *skip_space(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    return s;
}

/* Copies [s, e) without surrounding spaces and trailing ';'. */
static char *trimmed(const char *s, const char *e) {
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && (isspace((unsigned char)e[-1]) || e[-1] == ';')) e--;
    return strndup(s, (size_t)(e - s));
}

/* Length of a node id at the start of s ("ns=3;i=9", "i=85", "ns=2;s=Name", "g=...", "b=..."),
 * 0 when s does not start with one. Numeric and GUID identifiers end at the first character that
 * cannot belong to them; string and opaque ones at the first space, or without a space at the last
 * ';' or '=' (a trailing ';' is dropped). */
static size_t nodeid_prefix(const char *s) {
    const char *p = s;
    if (strncmp(p, "ns=", 3) == 0) {
        p += 3;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p)) p++;
        if (*p != ';') return 0;
        p = skip_space(p + 1);
    }
    if (!strchr("isgb", p[0]) || p[0] == '\0' || p[1] != '=') return 0;
    char kind = p[0];
    p += 2;
    const char *start = p;
    if (kind == 'i')
        while (isdigit((unsigned char)*p)) p++;
    else if (kind == 'g')
        while (isxdigit((unsigned char)*p) || *p == '-') p++;
    else
        while (*p && !isspace((unsigned char)*p)) p++;
    if (p == start) return 0;
    if ((kind == 's' || kind == 'b') && !*p) {
        /* no space before the end: the value follows the last ';' or '=' ("ns=2;s=Temp=25") */
        const char *q = p;
        while (q > start + 1 && q[-1] != ';' && q[-1] != '=') q--;
        if (q > start + 1) p = q - 1;
    }
    if (kind == 's' || kind == 'b')
        while (p > start + 1 && p[-1] == ';') p--;
    return (size_t)(p - s);
}

/* "ns=3; i=9" -> "ns=3;i=9" (node id text has no spaces; users put one after the ';'). */
static void squeeze_ns(char *t) {
    if (!t || strncmp(t, "ns=", 3) != 0) return;
    char *p = t + 3;
    while (isdigit((unsigned char)*p)) p++;
    if (*p != ';' || !isspace((unsigned char)p[1])) return;
    const char *q = skip_space(p + 1);
    memmove(p + 1, q, strlen(q) + 1);
}

char *opcua_get_target(const char *params) {
    if (!params) return NULL;
    char *t = trimmed(params, params + strlen(params));
    squeeze_ns(t);
    if (t && !*t) {
        free(t);
        return NULL;
    }
    return t;
}

int opcua_set_split(const char *params, char **target, char **value) {
    *target = *value = NULL;
    if (!params) return TBGW_EINVAL;
    const char *s = skip_space(params);
    const char *sep;
    size_t idn = nodeid_prefix(s);
    if (idn) {
        sep = s + idn;
    } else if (strncmp(s, "${", 2) == 0 && strchr(s, '}')) {
        sep = strchr(s, '}') + 1; /* an expression: "${ns=2;s=Temp} 25", "${Sub\.Temp}=25" */
    } else {
        /* a key or a browse path: up to the first ';' or '=' when there is one (browse names may hold
         * spaces), else up to the first space */
        sep = strpbrk(s, ";=");
        if (!sep) {
            sep = s;
            while (*sep && !isspace((unsigned char)*sep)) sep++;
        }
    }
    const char *v = sep;
    while (*v && (isspace((unsigned char)*v) || *v == ';' || *v == '=')) v++;
    if (sep == s || v == sep || !*v) return TBGW_EINVAL;
    *target = trimmed(s, sep);
    *value = trimmed(v, v + strlen(v));
    if (idn) squeeze_ns(*target);
    if (!*target || !*value || !**target || !**value) {
        free(*target);
        free(*value);
        *target = *value = NULL;
        return TBGW_EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ JSON -> declared type */

static void value_text(const json_t *j, char *buf, size_t n) {
    if (json_is_real(j)) { /* as the gateway writes doubles: shortest round-trip text */
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_value tv = {.type = TBGW_V_DOUBLE, .u.d = json_real_value(j)};
        tbgw_buf_json_value(&b, &tv);
        snprintf(buf, n, "%s", b.oom ? "?" : tbgw_buf_cstr(&b));
        tbgw_buf_free(&b);
        return;
    }
    char *t = tbgw_json_dumps(j, 0);
    snprintf(buf, n, "%s", t ? t : "?");
    if (t && strlen(t) >= n && n > 4) memcpy(buf + n - 4, "...", 4);
    free(t);
}

/* Integral JSON number or decimal text -> int64 / uint64. 0, or -1 (not an integer), -2 (range). */
static int json_int(const json_t *j, int is_unsigned, int64_t *si, uint64_t *ui) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (is_unsigned && v < 0) return -2;
        *si = v;
        *ui = (uint64_t)v;
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!isfinite(d) || d != floor(d)) return -1;
        if (is_unsigned ? (d < 0 || d >= 18446744073709551616.0)
                        : (d < -9223372036854775808.0 || d >= 9223372036854775808.0))
            return -2;
        if (is_unsigned)
            *ui = (uint64_t)d;
        else
            *si = (int64_t)d;
        return 0;
    }
    if (!json_is_string(j)) return -1;
    const char *s = skip_space(json_string_value(j));
    if (!*s) return -1;
    char *end;
    errno = 0;
    if (is_unsigned) {
        if (*s == '-') { /* a negative integer is out of range, anything else not an integer */
            (void)strtoll(s, &end, 10);
            return end > s + 1 && !*skip_space(end) ? -2 : -1;
        }
        *ui = strtoull(s, &end, 10);
    } else {
        *si = strtoll(s, &end, 10);
    }
    if (end == s || *skip_space(end)) return -1;
    return errno == ERANGE ? -2 : 0;
}

static int json_float(const json_t *j, double *d) {
    if (json_is_number(j)) {
        *d = json_number_value(j);
        return 0;
    }
    if (!json_is_string(j)) return -1;
    const char *s = skip_space(json_string_value(j));
    char *end;
    *d = strtod(s, &end);
    if (end == s || *skip_space(end) || !isfinite(*d)) return -1;
    return 0;
}

static int json_bool(const json_t *j, uint64_t *u) {
    if (json_is_boolean(j)) {
        *u = json_is_true(j);
        return 0;
    }
    if (json_is_integer(j) && (json_integer_value(j) == 0 || json_integer_value(j) == 1)) {
        *u = (uint64_t)json_integer_value(j);
        return 0;
    }
    const char *s = json_string_value(j);
    if (s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0))
        *u = 1;
    else if (s && (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0))
        *u = 0;
    else
        return -1;
    return 0;
}

/* "2024-01-02T03:04:05.250Z", "...+02:00", no zone = UTC; or a number of ms since the epoch. */
static int json_datetime(const json_t *j, int64_t *dt) {
    if (json_is_number(j)) {
        double ms = json_number_value(j);
        if (!isfinite(ms) || fabs(ms) > 1e16) return -1;
        *dt = tbgw_ua_datetime_from_ms((int64_t)ms);
        return 0;
    }
    const char *s = json_string_value(j);
    if (!s) return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    const char *p = s + n;
    int64_t ticks = 0; /* 100 ns below the second */
    if (*p == '.') {
        int64_t scale = 1000000;
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10) ticks += (*p - '0') * scale;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || hh > 23 || mm > 59) return -1;
        offset = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
        p += 1 + k;
    }
    if (*p) return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *dt = tbgw_ua_datetime_from_ms(((int64_t)t - offset) * 1000) + ticks;
    return 0;
}

static int hexval(int c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A hex string ("0a1b", as ByteStrings are reported) or a list of byte values. */
static int json_bytes(const json_t *j, tbgw_ua_bytes *out) {
    size_t n = json_is_array(j) ? json_array_size(j) : json_is_string(j) ? json_string_length(j) : 0;
    if (!json_is_array(j) && (!json_is_string(j) || n % 2)) return -1;
    size_t len = json_is_array(j) ? n : n / 2;
    uint8_t *b = malloc(len + 1);
    if (!b) return TBGW_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        int v;
        if (json_is_array(j)) {
            const json_t *e = json_array_get(j, i);
            v = json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) <= 255
                    ? (int)json_integer_value(e)
                    : -1;
        } else {
            const char *s = json_string_value(j);
            int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
            v = hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
        }
        if (v < 0) {
            free(b);
            return -1;
        }
        b[i] = (uint8_t)v;
    }
    int rc = tbgw_ua_bytes_set(out, b, len);
    free(b);
    return rc;
}

/* A Guid ("72962b91-fa75-...") or NodeId ("ns=2;s=X") from text. 0, -1 (not one) or TBGW_ENOMEM. */
static int id_from_json(const json_t *j, uint8_t type, tbgw_ua_scalar *sc) {
    const char *s = json_string_value(j);
    if (!s) return -1;
    char *text = malloc(strlen(s) + 3);
    if (!text) return TBGW_ENOMEM;
    sprintf(text, "%s%s", type == TBGW_UA_GUID ? "g=" : "", s);
    tbgw_ua_nodeid id = tbgw_ua_nodeid_num(0, 0);
    int r = tbgw_ua_nodeid_parse(text, &id) == 0 ? 0 : -1;
    free(text);
    if (r == 0 && type == TBGW_UA_GUID) memcpy(sc->guid, id.guid, 16);
    if (r == 0 && type == TBGW_UA_NODEID) {
        sc->nodeid = calloc(1, sizeof *sc->nodeid);
        if (!sc->nodeid) {
            tbgw_ua_nodeid_clear(&id);
            return TBGW_ENOMEM;
        }
        sc->nodeid->id = id;
        sc->nodeid->ns_uri.len = -1;
        return 0;
    }
    tbgw_ua_nodeid_clear(&id);
    return r;
}

static const struct {
    uint8_t type;
    int is_unsigned;
    int64_t lo;
    uint64_t hi;
} int_ranges[] = {
    {TBGW_UA_SBYTE, 0, -128, 127},
    {TBGW_UA_BYTE, 1, 0, 255},
    {TBGW_UA_INT16, 0, -32768, 32767},
    {TBGW_UA_UINT16, 1, 0, 65535},
    {TBGW_UA_INT32, 0, INT32_MIN, INT32_MAX},
    {TBGW_UA_UINT32, 1, 0, UINT32_MAX},
    {TBGW_UA_INT64, 0, INT64_MIN, INT64_MAX},
    {TBGW_UA_UINT64, 1, 0, UINT64_MAX},
};

/* One element of the declared type. Returns 0, TBGW_ENOMEM, or TBGW_EINVAL with why set. */
static int scalar_from_json(const json_t *j, uint8_t type, tbgw_ua_scalar *sc, char *why, size_t wn) {
    memset(sc, 0, sizeof *sc);
    for (size_t i = 0; i < sizeof int_ranges / sizeof int_ranges[0]; i++) {
        if (int_ranges[i].type != type) continue;
        int64_t si = 0;
        uint64_t ui = 0;
        int r = json_is_boolean(j) ? -1 : json_int(j, int_ranges[i].is_unsigned, &si, &ui);
        if (r == 0 && (int_ranges[i].is_unsigned ? ui > int_ranges[i].hi
                                                 : si < int_ranges[i].lo || si > (int64_t)int_ranges[i].hi))
            r = -2;
        if (r == -1) snprintf(why, wn, "expected an integer");
        if (r == -2)
            snprintf(why, wn, "out of range (%lld..%llu)", (long long)int_ranges[i].lo,
                     (unsigned long long)int_ranges[i].hi);
        if (r) return TBGW_EINVAL;
        if (int_ranges[i].is_unsigned)
            sc->u = ui;
        else
            sc->i = si;
        return 0;
    }
    int r = 0;
    switch (type) {
    case TBGW_UA_BOOLEAN:
        if ((r = json_bool(j, &sc->u)) != 0) snprintf(why, wn, "expected true or false");
        break;
    case TBGW_UA_FLOAT:
    case TBGW_UA_DOUBLE:
        if ((r = json_float(j, &sc->d)) != 0)
            snprintf(why, wn, "expected a number");
        else if (type == TBGW_UA_FLOAT && fabs(sc->d) > FLT_MAX)
            r = -1, snprintf(why, wn, "out of range of Float");
        break;
    case TBGW_UA_STRING:
    case TBGW_UA_XMLELEMENT: {
        if (json_is_object(j) || json_is_array(j)) {
            snprintf(why, wn, "expected a string");
            return TBGW_EINVAL;
        }
        char *t = json_is_string(j) ? strdup(json_string_value(j)) : tbgw_json_dumps(j, 0);
        sc->s.len = -1;
        r = t ? tbgw_ua_bytes_set(&sc->s, t, strlen(t)) : TBGW_ENOMEM;
        free(t);
        return r;
    }
    case TBGW_UA_DATETIME:
        if ((r = json_datetime(j, &sc->dt)) != 0)
            snprintf(why, wn, "expected an ISO 8601 time or milliseconds since 1970");
        break;
    case TBGW_UA_BYTESTRING:
        sc->s.len = -1;
        if ((r = json_bytes(j, &sc->s)) == TBGW_ENOMEM) return r;
        if (r) snprintf(why, wn, "expected a hex string or a list of byte values");
        break;
    case TBGW_UA_GUID:
    case TBGW_UA_NODEID:
        r = id_from_json(j, type, sc);
        if (r == -1) snprintf(why, wn, type == TBGW_UA_GUID ? "expected a GUID" : "expected a node id");
        break;
    case TBGW_UA_LOCALIZEDTEXT: {
        const char *s = json_string_value(j);
        sc->lt.locale.len = -1;
        sc->lt.text.len = -1;
        if (!s) {
            snprintf(why, wn, "expected a string");
            return TBGW_EINVAL;
        }
        return tbgw_ua_bytes_set(&sc->lt.text, s, strlen(s));
    }
    default:
        snprintf(why, wn, "%s arguments are not supported", tbgw_ua_type_name(type));
        return TBGW_EINVAL;
    }
    return r == TBGW_ENOMEM ? r : r ? TBGW_EINVAL : 0;
}

static const char *rank_text(int32_t rank) {
    return rank == TBGW_UA_RANK_SCALAR ? "a single value" : "a list";
}

int opcua_arg_from_json(const json_t *j, const tbgw_ua_argument *a, uint8_t type, size_t index,
                        tbgw_ua_variant *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char why[96] = "", vt[48];
    int rc = 0;
    if (!j || json_is_null(j)) {
        snprintf(err, errlen, "argument %zu '%s' (%s): no value", index + 1, a->name,
                 type ? tbgw_ua_type_name(type) : "any type");
        return TBGW_EINVAL;
    }
    if (type == 0) return opcua_variant_from_json(j, out); /* BaseDataType, Number, unknown: as JSON says */
    int want_array = a->value_rank >= 0;
    int is_list = json_is_array(j) && !(type == TBGW_UA_BYTESTRING && a->value_rank == TBGW_UA_RANK_SCALAR);
    if (a->value_rank == TBGW_UA_RANK_ANY || a->value_rank == TBGW_UA_RANK_SCALAR_OR_ONE)
        want_array = is_list;
    if (a->value_rank > 1) {
        snprintf(why, sizeof why, "%d-dimensional arguments are not supported", (int)a->value_rank);
        rc = TBGW_EINVAL;
    } else if (want_array != is_list) {
        snprintf(why, sizeof why, "expected %s", rank_text(a->value_rank));
        rc = TBGW_EINVAL;
    } else if (want_array && a->n_dims > 0 && a->dims[0] && json_array_size(j) != a->dims[0]) {
        snprintf(why, sizeof why, "expected %u elements", (unsigned)a->dims[0]);
        rc = TBGW_EINVAL;
    } else if (!want_array) {
        out->v = calloc(1, sizeof *out->v);
        if (!out->v) return TBGW_ENOMEM;
        out->type = type;
        rc = scalar_from_json(j, type, &out->v[0], why, sizeof why);
        if (rc == 0) out->n = 1;
    } else {
        size_t n = json_array_size(j);
        out->type = type;
        out->is_array = 1;
        out->v = calloc(n ? n : 1, sizeof *out->v);
        if (!out->v) return TBGW_ENOMEM;
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = scalar_from_json(json_array_get(j, i), type, &out->v[i], why, sizeof why);
            if (rc == 0)
                out->n = (int32_t)(i + 1);
            else if (rc == TBGW_EINVAL) {
                char tmp[96];
                snprintf(tmp, sizeof tmp, "element %zu: %s", i + 1, why);
                snprintf(why, sizeof why, "%s", tmp);
            }
        }
    }
    if (rc == 0) return 0;
    tbgw_ua_variant_clear(out);
    if (rc == TBGW_EINVAL) {
        value_text(j, vt, sizeof vt);
        snprintf(err, errlen, "argument %zu '%s' (%s%s): %s %s", index + 1, a->name, tbgw_ua_type_name(type),
                 a->value_rank >= 0 ? "[]" : "", vt, why);
    }
    return rc;
}
