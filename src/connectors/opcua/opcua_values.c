/* Variant <-> JSON conversions for the OPC-UA connector (spec gateway.md §7.3 "Values"). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/opcua/opcua.h"

static const struct {
    uint32_t code;
    const char *doc;
} status_docs[] = {
    {0x80340000u, "The node id refers to a node that does not exist in the server address space."},
    {0x80330000u, "The syntax of the node id is not valid."},
    {0x803A0000u, "The access level does not allow reading or subscribing to the Node."},
    {0x80320000u, "Waiting for the server to obtain values from the underlying data source."},
    {0x80310000u, "Communication with the data source is defined, but not established, and there is no last "
                  "known value available."},
    {0x808D0000u, "The source of the data is not operational."},
    {0x80350000u, "The attribute is not supported for the specified Node."},
    {0x80020000u, "An internal error occurred as a result of a programming or configuration error."},
    {0x80010000u, "An unexpected error occurred."},
};

static const char *status_doc(uint32_t st) {
    for (size_t i = 0; i < sizeof status_docs / sizeof status_docs[0]; i++)
        if (status_docs[i].code == (st & 0xFFFF0000u)) return status_docs[i].doc;
    return "";
}

/* Shortest text that reads back as the same double (Python repr). */
static void put_double(tbgw_buf *b, double d) {
    char tmp[TBGW_DOUBLE_MAX];
    tbgw_buf_append(b, tmp, tbgw_fmt_double(tmp, d));
}

static void put_datetime(tbgw_buf *b, int64_t dt) {
    int64_t ticks = dt - 116444736000000000LL; /* 100 ns since the Unix epoch */
    int64_t secs = ticks >= 0 ? ticks / 10000000 : -((-ticks + 9999999) / 10000000);
    int64_t us = (ticks - secs * 10000000) / 10;
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[64];
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    tbgw_buf_puts(b, tmp);
    if (us) tbgw_buf_printf(b, ".%06lld", (long long)us);
    tbgw_buf_puts(b, "+00:00");
}

static void put_hex(tbgw_buf *b, const tbgw_ua_bytes *s) {
    for (int32_t i = 0; i < s->len; i++) tbgw_buf_printf(b, "%02x", s->data[i]);
}

/* Text form of one element (used for arrays, for types without a JSON form, and for replies). */
static void scalar_text(tbgw_buf *b, uint8_t type, const tbgw_ua_scalar *s) {
    char nb[16];
    switch (type) {
    case TBGW_UA_BOOLEAN:
        tbgw_buf_puts(b, s->u ? "True" : "False");
        break;
    case TBGW_UA_SBYTE:
    case TBGW_UA_INT16:
    case TBGW_UA_INT32:
    case TBGW_UA_INT64:
        tbgw_buf_printf(b, "%lld", (long long)s->i);
        break;
    case TBGW_UA_BYTE:
    case TBGW_UA_UINT16:
    case TBGW_UA_UINT32:
    case TBGW_UA_UINT64:
        tbgw_buf_printf(b, "%llu", (unsigned long long)s->u);
        break;
    case TBGW_UA_FLOAT:
    case TBGW_UA_DOUBLE:
        put_double(b, s->d);
        break;
    case TBGW_UA_STRING:
    case TBGW_UA_XMLELEMENT:
        if (s->s.len > 0) tbgw_buf_append(b, s->s.data, (size_t)s->s.len);
        break;
    case TBGW_UA_BYTESTRING:
        put_hex(b, &s->s);
        break;
    case TBGW_UA_DATETIME:
        put_datetime(b, s->dt);
        break;
    case TBGW_UA_GUID: {
        tbgw_ua_nodeid g = tbgw_ua_nodeid_num(0, 0);
        g.type = TBGW_UA_ID_GUID;
        memcpy(g.guid, s->guid, 16);
        tbgw_buf tmp;
        tbgw_buf_init(&tmp);
        tbgw_ua_nodeid_format(&g, &tmp);
        tbgw_buf_puts(b, tbgw_buf_cstr(&tmp) + 2); /* drop "g=" */
        tbgw_buf_free(&tmp);
        break;
    }
    case TBGW_UA_NODEID:
    case TBGW_UA_EXPANDEDNODEID:
        if (s->nodeid) tbgw_ua_nodeid_format(&s->nodeid->id, b);
        break;
    case TBGW_UA_STATUSCODE:
        tbgw_buf_puts(b, tbgw_ua_status_name(s->status, nb));
        break;
    case TBGW_UA_QUALIFIEDNAME:
        tbgw_buf_printf(b, "%u:", (unsigned)s->qn.ns);
        if (s->qn.name.len > 0) tbgw_buf_append(b, s->qn.name.data, (size_t)s->qn.name.len);
        break;
    case TBGW_UA_LOCALIZEDTEXT:
        if (s->lt.text.len > 0) tbgw_buf_append(b, s->lt.text.data, (size_t)s->lt.text.len);
        break;
    case TBGW_UA_EXTENSIONOBJECT:
        if (s->eo) {
            tbgw_buf_puts(b, "ExtensionObject(TypeId=");
            tbgw_ua_nodeid_format(&s->eo->type_id, b);
            tbgw_buf_puts(b, ", Body=");
            put_hex(b, &s->eo->body);
            tbgw_buf_puts(b, ")");
        }
        break;
    case TBGW_UA_VARIANT:
        if (s->var && s->var->n == 1 && s->var->v) scalar_text(b, s->var->type, &s->var->v[0]);
        break;
    case TBGW_UA_DATAVALUE:
        if (s->dv && s->dv->value.n == 1 && s->dv->value.v)
            scalar_text(b, s->dv->value.type, &s->dv->value.v[0]);
        break;
    default:
        break;
    }
}

static char *take_text(tbgw_buf *b) {
    tbgw_buf_cstr(b);
    if (b->oom) {
        tbgw_buf_free(b);
        return NULL;
    }
    char *p = b->p ? b->p : strdup("");
    b->p = NULL;
    tbgw_buf_free(b);
    return p;
}

int opcua_value_convert(const tbgw_ua_datavalue *dv, const char *node_text, tbgw_value *out, char **tmp) {
    *tmp = NULL;
    *out = tbgw_value_null();
    const tbgw_ua_variant *v = &dv->value;
    tbgw_buf b;
    tbgw_buf_init(&b);
    if ((dv->mask & TBGW_UA_DV_STATUS) && (dv->status & 0x80000000u) && v->type == 0) {
        char nb[16];
        tbgw_buf_printf(&b, "Bad status code: %s for node: %s with description %s",
                        tbgw_ua_status_name(dv->status, nb), node_text, status_doc(dv->status));
        *tmp = take_text(&b);
        if (!*tmp) return TBGW_ENOMEM;
        *out = tbgw_value_string(*tmp);
        return 0;
    }
    if (v->type == 0 || v->n < 0) return 0;
    if (v->is_array) {
        json_t *arr = json_array();
        for (int32_t i = 0; arr && i < v->n; i++) {
            tbgw_buf_reset(&b);
            scalar_text(&b, v->type, &v->v[i]);
            json_array_append_new(arr, json_string(tbgw_buf_cstr(&b)));
        }
        tbgw_buf_free(&b);
        if (!arr) return TBGW_ENOMEM;
        *tmp = tbgw_json_dumps(arr, 0);
        json_decref(arr);
        if (!*tmp) return TBGW_ENOMEM;
        out->type = TBGW_V_JSON;
        out->u.s = *tmp;
        return 0;
    }
    const tbgw_ua_scalar *s = &v->v[0];
    switch (v->type) {
    case TBGW_UA_BOOLEAN:
        *out = tbgw_value_bool(s->u != 0);
        return 0;
    case TBGW_UA_SBYTE:
    case TBGW_UA_INT16:
    case TBGW_UA_INT32:
    case TBGW_UA_INT64:
        *out = tbgw_value_int(s->i);
        return 0;
    case TBGW_UA_BYTE:
    case TBGW_UA_UINT16:
    case TBGW_UA_UINT32:
    case TBGW_UA_UINT64:
        *out = tbgw_value_uint(s->u); /* exact above 2^63 too */
        return 0;
    case TBGW_UA_FLOAT:
    case TBGW_UA_DOUBLE:
        if (isfinite(s->d)) {
            *out = tbgw_value_double(s->d);
            return 0;
        }
        break;
    default:
        break;
    }
    scalar_text(&b, v->type, s);
    *tmp = take_text(&b);
    if (!*tmp) return TBGW_ENOMEM;
    *out = tbgw_value_string(*tmp);
    return 0;
}

static json_t *scalar_json(uint8_t type, const tbgw_ua_scalar *s) {
    switch (type) {
    case TBGW_UA_BOOLEAN:
        return json_boolean(s->u != 0);
    case TBGW_UA_SBYTE:
    case TBGW_UA_INT16:
    case TBGW_UA_INT32:
    case TBGW_UA_INT64:
        return json_integer(s->i);
    case TBGW_UA_BYTE:
    case TBGW_UA_UINT16:
    case TBGW_UA_UINT32:
    case TBGW_UA_UINT64:
        return tbgw_json_u64(s->u);
    case TBGW_UA_FLOAT:
    case TBGW_UA_DOUBLE:
        return isfinite(s->d) ? json_real(s->d) : json_null();
    default: {
        tbgw_buf b;
        tbgw_buf_init(&b);
        scalar_text(&b, type, s);
        json_t *j = json_string(tbgw_buf_cstr(&b));
        tbgw_buf_free(&b);
        return j;
    }
    }
}

json_t *opcua_variant_to_json(const tbgw_ua_variant *v) {
    if (!v || v->type == 0 || v->n < 0) return json_null();
    if (!v->is_array) return scalar_json(v->type, &v->v[0]);
    json_t *arr = json_array();
    for (int32_t i = 0; arr && i < v->n; i++) json_array_append_new(arr, scalar_json(v->type, &v->v[i]));
    return arr;
}

static int set_str(tbgw_ua_variant *out, const char *s) {
    return tbgw_ua_variant_set_string(out, s);
}

int opcua_variant_from_json(const json_t *j, tbgw_ua_variant *out) {
    memset(out, 0, sizeof *out);
    tbgw_ua_scalar sc;
    memset(&sc, 0, sizeof sc);
    if (!j || json_is_null(j)) return 0;
    if (json_is_boolean(j)) {
        sc.u = json_is_true(j);
        return tbgw_ua_variant_set_scalar(out, TBGW_UA_BOOLEAN, &sc);
    }
    if (json_is_integer(j)) {
        sc.i = json_integer_value(j);
        return tbgw_ua_variant_set_scalar(out, TBGW_UA_INT64, &sc);
    }
    if (json_is_real(j)) {
        sc.d = json_real_value(j);
        return tbgw_ua_variant_set_scalar(out, TBGW_UA_DOUBLE, &sc);
    }
    if (json_is_string(j)) return set_str(out, json_string_value(j));
    if (json_is_array(j)) {
        size_t n = json_array_size(j);
        uint8_t type = TBGW_UA_INT64;
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(j, i);
            if (json_is_real(e) && type == TBGW_UA_INT64)
                type = TBGW_UA_DOUBLE;
            else if (json_is_boolean(e) && i == 0)
                type = TBGW_UA_BOOLEAN;
            else if (!json_is_number(e) && !json_is_boolean(e))
                type = TBGW_UA_STRING;
        }
        out->type = type;
        out->is_array = 1;
        out->n = (int32_t)n;
        out->v = calloc(n ? n : 1, sizeof *out->v);
        if (!out->v) return TBGW_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(j, i);
            if (type == TBGW_UA_INT64)
                out->v[i].i = json_integer_value(e);
            else if (type == TBGW_UA_DOUBLE)
                out->v[i].d = json_number_value(e);
            else if (type == TBGW_UA_BOOLEAN)
                out->v[i].u = json_is_true(e);
            else {
                char *txt = json_is_string(e) ? strdup(json_string_value(e)) : tbgw_json_dumps(e, 0);
                out->v[i].s.len = -1;
                if (txt && tbgw_ua_bytes_set(&out->v[i].s, txt, strlen(txt)) == 0) {
                    free(txt);
                    continue;
                }
                free(txt);
                out->n = (int32_t)i;
                tbgw_ua_variant_clear(out);
                return TBGW_ENOMEM;
            }
        }
        return 0;
    }
    char *txt = tbgw_json_dumps(j, 0);
    int rc = txt ? set_str(out, txt) : TBGW_ENOMEM;
    free(txt);
    return rc;
}

int opcua_variant_cast(const json_t *j, uint8_t type, tbgw_ua_variant *out) {
    memset(out, 0, sizeof *out);
    int text = json_is_string(j) && !tbgw_json_number_of(j, NULL); /* number nodes as their digits */
    char *owned = text ? NULL : tbgw_json_dumps(j, 0);
    const char *s = text ? json_string_value(j) : owned;
    if (!s) return TBGW_ENOMEM;
    while (isspace((unsigned char)*s)) s++;
    tbgw_ua_scalar sc;
    memset(&sc, 0, sizeof sc);
    int rc = 0;
    char *end = NULL;
    errno = 0;
    switch (type) {
    case TBGW_UA_BOOLEAN:
        if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
            sc.u = 1;
        else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
            sc.u = 0;
        else
            rc = TBGW_EINVAL;
        break;
    case TBGW_UA_SBYTE:
    case TBGW_UA_INT16:
    case TBGW_UA_INT32:
    case TBGW_UA_INT64: {
        sc.i = strtoll(s, &end, 10); /* exact for integer texts */
        if (end != s && !*end && !errno) break;
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || *end || errno || d != floor(d) || !(fabs(d) < 9.2e18))
            rc = TBGW_EINVAL;
        else
            sc.i = (int64_t)d;
        break;
    }
    case TBGW_UA_BYTE:
    case TBGW_UA_UINT16:
    case TBGW_UA_UINT32:
    case TBGW_UA_UINT64: {
        sc.u = *s == '-' ? 0 : strtoull(s, &end, 10); /* exact for integer texts */
        if (*s != '-' && end != s && !*end && !errno) break;
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || *end || errno || d < 0 || d != floor(d) || !(d < 1.8e19))
            rc = TBGW_EINVAL;
        else
            sc.u = (uint64_t)d;
        break;
    }
    case TBGW_UA_FLOAT:
    case TBGW_UA_DOUBLE:
        sc.d = strtod(s, &end);
        if (end == s || *end || errno) rc = TBGW_EINVAL;
        break;
    case TBGW_UA_STRING:
        rc = set_str(out, s);
        goto done;
    default:
        rc = TBGW_EINVAL;
    }
    if (rc == 0) rc = tbgw_ua_variant_set_scalar(out, type, &sc);
done:
    free(owned);
    return rc;
}

int opcua_variant_from_arg(const json_t *arg, tbgw_ua_variant *out) {
    const json_t *val = json_is_object(arg) ? json_object_get(arg, "value") : arg;
    const char *type = json_is_object(arg) ? json_string_value(json_object_get(arg, "type")) : NULL;
    static const struct {
        const char *name;
        uint8_t type;
    } types[] = {{"integer", TBGW_UA_INT64},   {"int", TBGW_UA_INT64},     {"int64", TBGW_UA_INT64},
                 {"int32", TBGW_UA_INT32},     {"int16", TBGW_UA_INT16},   {"uint32", TBGW_UA_UINT32},
                 {"float", TBGW_UA_FLOAT},     {"double", TBGW_UA_DOUBLE}, {"string", TBGW_UA_STRING},
                 {"boolean", TBGW_UA_BOOLEAN}, {"bool", TBGW_UA_BOOLEAN}};
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(type, types[i].name) == 0) return opcua_variant_cast(val, types[i].type, out);
    return opcua_variant_from_json(val, out);
}

json_t *opcua_json_from_text(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    char *t = strndup(s, n);
    if (!t) return NULL;
    json_t *j = NULL;
    if (strcasecmp(t, "true") == 0)
        j = json_true();
    else if (strcasecmp(t, "false") == 0)
        j = json_false();
    else {
        char *end;
        errno = 0;
        long long ll = strtoll(t, &end, 10);
        int64_t i;
        uint64_t u;
        if (*t && !*end && !errno)
            j = json_integer(ll);
        else if (tbgw_int_text(t, n, &i, &u) > 0)
            j = tbgw_json_number_text(t, n); /* beyond int64: keep the digits */
        else {
            double d = strtod(t, &end);
            if (*t && !*end && !errno && isfinite(d))
                j = json_real(d);
            else
                j = json_string(t);
        }
    }
    free(t);
    return j;
}
