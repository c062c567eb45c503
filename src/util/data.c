/* The uplink data model (include/tbgw/data.h) with a small chunk arena per record. A record, its first
 * arena chunk and the first KV_FIRST entries of its telemetry and attribute lists are one allocation
 * (a request of a few values costs one malloc and one free, however many strings it carries). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

#include "util/json.h"

typedef struct tbgw_arena {
    struct tbgw_arena *next;
    size_t used, cap;
    size_t embedded; /* the first chunk, allocated with its record */
    char mem[];
} tbgw_arena;

#define FIRST_CHUNK  960  /* the least bytes of a later chunk */
#define RECORD_BLOCK 1024 /* a record with its first chunk: within glibc's per-thread cache (1032) */
#define KV_FIRST     4    /* list entries taken from the arena before a list gets its own array */

static void *arena_alloc(tbgw_converted *c, size_t n) {
    n = (n + 7) & ~(size_t)7;
    tbgw_arena *a = c->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > FIRST_CHUNK ? n : FIRST_CHUNK;
        tbgw_arena *na = malloc(sizeof *na + cap);
        if (!na) return NULL;
        na->next = a;
        na->used = 0;
        na->cap = cap;
        na->embedded = 0;
        c->arena = na;
        a = na;
    }
    void *p = a->mem + a->used;
    a->used += n;
    return p;
}

const char *tbgw_converted_strdup(tbgw_converted *c, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(c, n);
    if (p) memcpy(p, s, n);
    return p;
}

int tbgw_converted_set_device(tbgw_converted *c, const char *device_name, const char *device_type) {
    const char *n = tbgw_converted_strdup(c, device_name ? device_name : "");
    const char *t = tbgw_converted_strdup(c, device_type && *device_type ? device_type : "default");
    if (!n || !t) return TBGW_ENOMEM;
    c->device_name = n;
    c->device_type = t;
    return 0;
}

tbgw_converted *tbgw_converted_new(const char *device_name, const char *device_type) {
    size_t off = (sizeof(tbgw_converted) + 15) & ~(size_t)15;
    _Static_assert(RECORD_BLOCK > sizeof(tbgw_converted) + 15 + sizeof(tbgw_arena) + 512, "record block");
    tbgw_converted *c = malloc(RECORD_BLOCK);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    tbgw_arena *a = (tbgw_arena *)(void *)((char *)c + off);
    a->next = NULL;
    a->used = 0;
    a->cap = RECORD_BLOCK - off - sizeof(tbgw_arena);
    a->embedded = 1;
    c->arena = a;
    if (tbgw_converted_set_device(c, device_name, device_type)) {
        tbgw_converted_free(c);
        return NULL;
    }
    return c;
}

void tbgw_converted_free(tbgw_converted *c) {
    while (c) {
        tbgw_converted *next = c->next;
        tbgw_arena *a = c->arena;
        while (a) {
            tbgw_arena *an = a->next;
            if (!a->embedded) free(a);
            a = an;
        }
        if (c->cap_telemetry > KV_FIRST) free(c->telemetry);
        if (c->cap_attributes > KV_FIRST) free(c->attributes);
        free(c);
        c = next;
    }
}

static int kv_push(tbgw_converted *c, tbgw_kv **arr, size_t *n, size_t *cap, int64_t ts, const char *key,
                   const tbgw_value *v, const tbgw_report_strategy *rs) {
    if (*n == *cap) { /* the first KV_FIRST entries live in the arena, more in an array of their own */
        size_t ncap = *cap ? *cap * 2 : KV_FIRST;
        tbgw_kv *na = ncap <= KV_FIRST  ? arena_alloc(c, ncap * sizeof *na)
                      : *cap > KV_FIRST ? realloc(*arr, ncap * sizeof *na)
                                        : malloc(ncap * sizeof *na);
        if (!na) return TBGW_ENOMEM;
        if (*cap && *cap <= KV_FIRST) memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = ncap;
    }
    tbgw_kv *kv = &(*arr)[*n];
    kv->key = tbgw_converted_strdup(c, key ? key : "");
    kv->ts = ts;
    kv->v = *v;
    kv->rs = rs;
    if (!kv->key) return TBGW_ENOMEM;
    if (tbgw_value_has_text(v)) {
        kv->v.u.s = tbgw_converted_strdup(c, v->u.s ? v->u.s : (v->type == TBGW_V_JSON ? "null" : ""));
        if (!kv->v.u.s) return TBGW_ENOMEM;
    }
    (*n)++;
    return 0;
}

int tbgw_converted_add_telemetry(tbgw_converted *c, int64_t ts, const char *key, const tbgw_value *v,
                                 const tbgw_report_strategy *rs) {
    return kv_push(c, &c->telemetry, &c->n_telemetry, &c->cap_telemetry, ts, key, v, rs);
}

int tbgw_converted_add_attribute(tbgw_converted *c, const char *key, const tbgw_value *v,
                                 const tbgw_report_strategy *rs) {
    return kv_push(c, &c->attributes, &c->n_attributes, &c->cap_attributes, 0, key, v, rs);
}

size_t tbgw_converted_count(const tbgw_converted *c) {
    return c->n_telemetry + c->n_attributes;
}

int tbgw_value_from_json(const json_t *j, tbgw_value *out, char **tmp_text) {
    *tmp_text = NULL;
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = tbgw_value_null();
        return 0;
    case JSON_TRUE:
        *out = tbgw_value_bool(1);
        return 0;
    case JSON_FALSE:
        *out = tbgw_value_bool(0);
        return 0;
    case JSON_INTEGER:
        *out = tbgw_value_int(json_integer_value(j));
        return 0;
    case JSON_REAL: {
        double d = json_real_value(j);
        if (!isfinite(d)) return -1;
        *out = tbgw_value_double(d);
        return 0;
    }
    case JSON_STRING: {
        size_t n;
        const char *num = tbgw_json_number_of(j, &n);
        if (!num) {
            *out = tbgw_value_string(json_string_value(j));
            return 0;
        }
        int64_t i;
        uint64_t u;
        int kind = tbgw_int_text(num, n, &i, &u);
        if (kind == 0)
            *out = tbgw_value_int(i);
        else if (kind == 1)
            *out = tbgw_value_uint(u);
        else {
            out->type = TBGW_V_NUMBER;
            out->u.s = num; /* NUL-terminated inside the node */
        }
        return 0;
    }
    case JSON_OBJECT:
    case JSON_ARRAY: {
        char *t = tbgw_json_dumps(j, 0);
        if (!t) return TBGW_ENOMEM;
        out->type = TBGW_V_JSON;
        out->u.s = t;
        *tmp_text = t;
        return 0;
    }
    }
    return -1;
}

static double num_of(const tbgw_value *v) {
    return v->type == TBGW_V_INT ? (double)v->u.i : v->type == TBGW_V_UINT ? (double)v->u.u64 : v->u.d;
}

int tbgw_value_equal(const tbgw_value *a, const tbgw_value *b) {
    int an = a->type == TBGW_V_INT || a->type == TBGW_V_DOUBLE || a->type == TBGW_V_UINT;
    int bn = b->type == TBGW_V_INT || b->type == TBGW_V_DOUBLE || b->type == TBGW_V_UINT;
    if (an && bn) {
        if (a->type == b->type && a->type == TBGW_V_INT) return a->u.i == b->u.i;
        if (a->type == b->type && a->type == TBGW_V_UINT) return a->u.u64 == b->u.u64;
        if (a->type != TBGW_V_DOUBLE && b->type != TBGW_V_DOUBLE) return 0; /* int vs uint: disjoint */
        return fabs(num_of(a) - num_of(b)) < 0.001;
    }
    if (a->type != b->type) return 0;
    switch (a->type) {
    case TBGW_V_NULL:
        return 1;
    case TBGW_V_BOOL:
        return a->u.b == b->u.b;
    case TBGW_V_STRING:
    case TBGW_V_JSON:
    case TBGW_V_NUMBER:
        return strcmp(a->u.s ? a->u.s : "", b->u.s ? b->u.s : "") == 0;
    default:
        return 0;
    }
}

int64_t tbgw_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
