/* The special writes of spec 2.5: weeklySchedule (7 day lists of (time, value) pairs) and
 * listOfObjectPropertyReferences (object ids), given as Python literals as the reference takes them
 * (`[[("08:00", 21.5)], [], ...]`, `["analogValue:1", "analog-value,2"]`) or as JSON lists. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"

/* ---- a Python literal subset: lists, tuples, strings, numbers, True/False/None ---- */

static void skip_ws(const char **p) {
    while (isspace((unsigned char)**p)) (*p)++;
}

static json_t *lit_value(const char **p, int depth);

static json_t *lit_seq(const char **p, char close, int depth) {
    json_t *a = json_array();
    (*p)++;
    for (;;) {
        skip_ws(p);
        if (**p == close) {
            (*p)++;
            return a;
        }
        json_t *v = lit_value(p, depth + 1);
        if (!v) break;
        json_array_append_new(a, v);
        skip_ws(p);
        if (**p == ',') {
            (*p)++;
            continue;
        }
        if (**p == close) continue;
        break;
    }
    json_decref(a);
    return NULL;
}

static json_t *lit_string(const char **p) {
    char q = **p;
    const char *s = ++*p;
    while (**p && **p != q) (*p)++;
    if (**p != q) return NULL;
    json_t *v = json_stringn(s, (size_t)(*p - s));
    (*p)++;
    return v;
}

static json_t *lit_value(const char **p, int depth) {
    if (depth > 8) return NULL;
    skip_ws(p);
    char ch = **p;
    if (ch == '[') return lit_seq(p, ']', depth);
    if (ch == '(') return lit_seq(p, ')', depth);
    if (ch == '\'' || ch == '"') return lit_string(p);
    static const struct {
        const char *w;
        int kind;
    } words[] = {{"True", 1}, {"False", 0}, {"None", 2}};
    for (size_t i = 0; i < 3; i++)
        if (!strncmp(*p, words[i].w, strlen(words[i].w))) {
            *p += strlen(words[i].w);
            return words[i].kind == 2 ? json_null() : json_boolean(words[i].kind);
        }
    char *end;
    double d = strtod(*p, &end);
    if (end == *p) return NULL;
    int is_int = 1;
    for (const char *q = *p; q < end; q++) is_int &= isdigit((unsigned char)*q) || *q == '-' || *q == '+';
    *p = end;
    /* an integer beyond 64 bits stays a (rounded) number instead of overflowing */
    return is_int && d > -9.2e18 && d < 9.2e18 ? json_integer((json_int_t)d) : json_real(d);
}

json_t *bnc_py_literal(const char *s) {
    const char *p = s;
    json_t *v = lit_value(&p, 0);
    skip_ws(&p);
    if (v && *p) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ---- encodings ---- */

/* "analogValue:1", "analog-value,1" or ["analogValue", 1] */
static int parse_oid(const json_t *v, uint16_t *type, uint32_t *inst) {
    char t[64];
    long long n = -1;
    if (json_is_string(v)) {
        const char *s = json_string_value(v), *sep = strpbrk(s, ":,");
        if (!sep || (size_t)(sep - s) >= sizeof t) return -1;
        snprintf(t, sizeof t, "%.*s", (int)(sep - s), s);
        n = atoll(sep + 1);
    } else if (json_array_size(v) == 2 && json_is_string(json_array_get(v, 0))) {
        snprintf(t, sizeof t, "%s", json_string_value(json_array_get(v, 0)));
        n = json_integer_value(json_array_get(v, 1));
    }
    int ot = bn_object_type_parse(t);
    if (ot < 0 || n < 0 || n > (long long)BN_MAX_INST) return -1;
    *type = (uint16_t)ot;
    *inst = (uint32_t)n;
    return 0;
}

static int parse_time(const char *s, uint8_t dt[4]) {
    unsigned h = 0, m = 0, sec = 0;
    int n = s ? sscanf(s, "%u:%u:%u", &h, &m, &sec) : 0;
    if (n < 2 || h > 23 || m > 59 || sec > 59) return -1;
    dt[0] = (uint8_t)h, dt[1] = (uint8_t)m, dt[2] = (uint8_t)sec, dt[3] = 0;
    return 0;
}

int bnc_encode_special(bn_w *w, uint32_t prop, const json_t *value, uint16_t elem_otype, char *why,
                       size_t cap) {
    json_t *own = json_is_string(value) ? bnc_py_literal(json_string_value(value)) : NULL;
    const json_t *v = own ? own : value;
    int rc = 0;
    size_t i, k;
    const json_t *e, *pair;
    if (!json_is_array(v)) {
        snprintf(why, cap, "expected a list (a Python literal or JSON)");
        rc = -1;
    } else if (prop == 54) { /* listOfObjectPropertyReferences: presentValue of each object */
        json_array_foreach(v, i, e) {
            uint16_t t;
            uint32_t n;
            if (parse_oid(e, &t, &n) != 0) {
                snprintf(why, cap, "entry %zu: expected an object id like \"analogValue:1\"", i);
                rc = -1;
                break;
            }
            bn_enc_ctx_oid(w, 0, t, n);
            bn_enc_ctx_enum(w, 1, 85);
        }
    } else if (json_array_size(v) != 7) {
        snprintf(why, cap, "weeklySchedule: expected 7 day lists");
        rc = -1;
    } else {
        json_array_foreach(v, i, e) {
            bn_enc_open(w, 0);
            json_array_foreach(e, k, pair) {
                uint8_t dt[4];
                if (json_array_size(pair) != 2 ||
                    parse_time(json_string_value(json_array_get(pair, 0)), dt) != 0) {
                    snprintf(why, cap, "day %zu entry %zu: expected (\"HH:MM\", value)", i, k);
                    rc = -1;
                    break;
                }
                bn_enc_time(w, dt);
                if (bnc_value_encode(w, elem_otype, 85, json_array_get(pair, 1), why, cap) != 0) {
                    rc = -1;
                    break;
                }
            }
            bn_enc_close(w, 0);
            if (rc) break;
        }
    }
    json_decref(own);
    return rc;
}

uint16_t bnc_first_reference_type(const uint8_t *p, size_t n) {
    size_t off = 0;
    uint16_t t;
    uint32_t inst;
    if (bn_dec_ctx_oid(p, n, &off, 0, &t, &inst) == 0) return t;
    return 0xFFFF;
}
