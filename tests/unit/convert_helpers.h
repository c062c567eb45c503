/* Test helpers: a compact text form of converted records for exact comparisons. */
#ifndef TBGW_TEST_CONVERT_HELPERS_H
#define TBGW_TEST_CONVERT_HELPERS_H

#include <stdlib.h>
#include <string.h>
#include <tbgw/data.h>
#include "util/buf.h"

/* "Name/type a{k=v,..} t{ts:k=v,..}" per record, records joined by " | ". Caller frees. */
static inline char *conv_dump(const tbgw_converted *c) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    for (; c; c = c->next) {
        tbgw_buf_printf(&b, "%s/%s a{", c->device_name, c->device_type);
        for (size_t i = 0; i < c->n_attributes; i++) {
            tbgw_buf_printf(&b, "%s%s=", i ? "," : "", c->attributes[i].key);
            tbgw_buf_json_value(&b, &c->attributes[i].v);
        }
        tbgw_buf_puts(&b, "} t{");
        for (size_t i = 0; i < c->n_telemetry; i++) {
            tbgw_buf_printf(&b, "%s%lld:%s=", i ? "," : "", (long long)c->telemetry[i].ts,
                            c->telemetry[i].key);
            tbgw_buf_json_value(&b, &c->telemetry[i].v);
        }
        tbgw_buf_puts(&b, "}");
        if (c->next) tbgw_buf_puts(&b, " | ");
    }
    char *r = strdup(tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    return r;
}

/* Every record field that a converter sets, value types and exact double bits included: two
 * converters that give the same text gave the same records. Caller frees. */
static inline char *conv_dump_exact(const tbgw_converted *c) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    for (; c; c = c->next) {
        tbgw_buf_printf(&b, "[%s|%s|%p]", c->device_name, c->device_type, (const void *)c->rs);
        for (int t = 0; t < 2; t++) {
            const tbgw_kv *kv = t ? c->telemetry : c->attributes;
            size_t n = t ? c->n_telemetry : c->n_attributes;
            for (size_t i = 0; i < n; i++) {
                const tbgw_value *v = &kv[i].v;
                tbgw_buf_printf(&b, " %c%lld:%s=%d:", t ? 't' : 'a', (long long)kv[i].ts, kv[i].key,
                                (int)v->type);
                if (v->type == TBGW_V_DOUBLE)
                    tbgw_buf_printf(&b, "%a", v->u.d);
                else
                    tbgw_buf_json_value(&b, v);
                tbgw_buf_printf(&b, "/%p", (const void *)kv[i].rs);
            }
        }
        tbgw_buf_puts(&b, "\n");
    }
    char *r = strdup(b.p ? tbgw_buf_cstr(&b) : "");
    tbgw_buf_free(&b);
    return r;
}

#endif
