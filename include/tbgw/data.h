/* The uplink data model: what a converter produces and a connector emits.
 * One tbgw_converted = one device's telemetry and attributes. All strings are copied into the
 * record's own arena, so a converted record owns everything it points to. */
#ifndef TBGW_DATA_H
#define TBGW_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tbgw_vtype {
    TBGW_V_NULL = 0,
    TBGW_V_BOOL,
    TBGW_V_INT,
    TBGW_V_DOUBLE,
    TBGW_V_STRING,
    TBGW_V_JSON, /* s holds compact JSON text of an array or object */
    /* Added after ABI 1 (appended so earlier values keep their numbers): */
    TBGW_V_UINT,   /* u64: an unsigned integer above INT64_MAX (smaller ones are TBGW_V_INT) */
    TBGW_V_NUMBER, /* s holds the exact JSON text of a number no other type holds (an integer beyond
                    * 64 bits, a real beyond the double range); written as that bare number */
} tbgw_vtype;

typedef struct tbgw_value {
    tbgw_vtype type;
    union {
        int b;
        int64_t i;
        double d;
        const char *s;
        uint64_t u64;
    } u;
} tbgw_value;

static inline tbgw_value tbgw_value_null(void) {
    tbgw_value v = {TBGW_V_NULL, {0}};
    return v;
}
static inline tbgw_value tbgw_value_bool(int b) {
    tbgw_value v = {TBGW_V_BOOL, {0}};
    v.u.b = b ? 1 : 0;
    return v;
}
static inline tbgw_value tbgw_value_int(int64_t i) {
    tbgw_value v = {TBGW_V_INT, {0}};
    v.u.i = i;
    return v;
}
static inline tbgw_value tbgw_value_double(double d) {
    tbgw_value v = {TBGW_V_DOUBLE, {0}};
    v.u.d = d;
    return v;
}
/* Any unsigned integer: TBGW_V_INT when it fits int64, else TBGW_V_UINT. */
static inline tbgw_value tbgw_value_uint(uint64_t u) {
    tbgw_value v = {TBGW_V_INT, {0}};
    if (u > (uint64_t)INT64_MAX) {
        v.type = TBGW_V_UINT;
        v.u.u64 = u;
    } else {
        v.u.i = (int64_t)u;
    }
    return v;
}
/* Values whose s points to text (copied when the value is added to a record). */
static inline int tbgw_value_has_text(const tbgw_value *v) {
    return v->type == TBGW_V_STRING || v->type == TBGW_V_JSON || v->type == TBGW_V_NUMBER;
}
/* The string is copied when the value is added to a record. */
static inline tbgw_value tbgw_value_string(const char *s) {
    tbgw_value v = {TBGW_V_STRING, {0}};
    v.u.s = s;
    return v;
}

/* Report strategies (spec §4). */
typedef enum tbgw_rs_type {
    TBGW_RS_UNSET = 0, /* inherit from the next level (key > device > connector > gateway) */
    TBGW_RS_ON_RECEIVED,
    TBGW_RS_ON_CHANGE,
    TBGW_RS_ON_REPORT_PERIOD,
    TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD,
    TBGW_RS_DISABLED,
} tbgw_rs_type;

typedef struct tbgw_report_strategy {
    tbgw_rs_type type;
    int64_t period_ms; /* for the *_REPORT_PERIOD types, > 0 */
    int64_t ttl_s;     /* cache lifetime, default 86400 */
} tbgw_report_strategy;

typedef struct tbgw_kv {
    const char *key;
    int64_t ts; /* epoch ms; telemetry only */
    tbgw_value v;
    const tbgw_report_strategy *rs; /* NULL = inherit; must outlive the record (config-owned) */
} tbgw_kv;

struct tbgw_arena;

typedef struct tbgw_converted {
    const char *device_name;
    const char *device_type;        /* "default" when not given */
    const tbgw_report_strategy *rs; /* device level; NULL = inherit */
    tbgw_kv *telemetry;
    size_t n_telemetry, cap_telemetry;
    tbgw_kv *attributes;
    size_t n_attributes, cap_attributes;
    struct tbgw_arena *arena;
    struct tbgw_converted *next; /* a batch is a chain; emit takes the whole chain */
} tbgw_converted;

/* device_type NULL means "default". Returns NULL on allocation failure. */
tbgw_converted *tbgw_converted_new(const char *device_name, const char *device_type);
void tbgw_converted_free(tbgw_converted *c); /* frees the whole chain starting at c; NULL is a no-op */

/* Copies key and string/JSON payloads. Telemetry entries keep their order; entries with the same
 * ts are sent in one {"ts","values"} group. Returns 0 or TBGW_ENOMEM. */
int tbgw_converted_add_telemetry(tbgw_converted *c, int64_t ts, const char *key, const tbgw_value *v,
                                 const tbgw_report_strategy *rs);
int tbgw_converted_add_attribute(tbgw_converted *c, const char *key, const tbgw_value *v,
                                 const tbgw_report_strategy *rs);
/* Converts a jansson value (objects/arrays become TBGW_V_JSON text in the shortest-double JSON form).
 * Numbers jansson cannot hold, as parsed by the gateway's JSON reader, become TBGW_V_UINT or
 * TBGW_V_NUMBER. NaN/inf reals are refused (-1). */
int tbgw_value_from_json(const json_t *j, tbgw_value *out, char **tmp_text);
/* Arena string copy owned by c. */
const char *tbgw_converted_strdup(tbgw_converted *c, const char *s);
int tbgw_converted_set_device(tbgw_converted *c, const char *device_name, const char *device_type);
size_t tbgw_converted_count(const tbgw_converted *c); /* telemetry + attribute datapoints */

/* Equality for ON_CHANGE: doubles within 0.001 are equal; int, uint and double compare numerically;
 * TBGW_V_NUMBER texts compare as text. */
int tbgw_value_equal(const tbgw_value *a, const tbgw_value *b);

/* Current wall-clock time in epoch milliseconds. */
int64_t tbgw_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
