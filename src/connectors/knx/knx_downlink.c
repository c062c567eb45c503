/* Downlink of the KNX connector (spec connectors.md §9.2): attribute updates become GroupValueWrite
 * telegrams (per key, the first attributeUpdates entry whose deviceNameFilter fullmatches the device);
 * RPCs are group writes or reads — the reserved get/set with "groupAddress=..;dataType=..;value=..;"
 * params, or the first serverSideRpc entry with that method whose filter matches the device.
 * Replies: {"result": "{'value': <repr>}"} (a read's response, or the value a write put on the bus),
 * {"result": "None"} when a read got no response in time, {"result": "<error>"} with success false. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/knx/knx_conn.h"
#include "util/time.h"

static void reply(kx *k, uint64_t handle, const char *result, int success) {
    k->host->rpc_reply(k->host, handle, json_pack("{s:s}", "result", result), success);
}

__attribute__((format(printf, 3, 4))) static void reply_error(kx *k, uint64_t handle, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TBGW_WARNF(k->host->log, "knx: RPC failed: %s", msg);
    reply(k, handle, msg, 0);
}

static void reply_value(kx *k, uint64_t handle, const tbgw_value *v) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_puts(&b, "{'value': ");
    kx_value_repr(v, &b);
    tbgw_buf_putc(&b, '}');
    reply(k, handle, tbgw_buf_cstr(&b), -1);
    tbgw_buf_free(&b);
}

static const kx_write *find_entry(const kx_write *w, size_t n, const char *key, const char *device) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w[i].key, key) && tbgw_regex_fullmatch(w[i].filter, device ? device : "") == 1)
            return &w[i];
    return NULL;
}

int kx_on_attribute_update(kx *k, const tbgw_attr_update *u) {
    const char *key;
    const json_t *val;
    int matched = 0;
    json_object_foreach((json_t *)u->data, key, val) {
        const kx_write *w = find_entry(k->attr_updates, k->n_attr_updates, key, u->device);
        if (!w) continue;
        matched = 1;
        char gs[16], err[160];
        knx_ga_format(w->ga, k->ga_style, gs, sizeof gs);
        knx_payload p;
        if (!k->connected) {
            TBGW_ERRORF(k->host->log, "knx: attribute %s of %s not written to %s: KNX bus is not connected",
                        key, u->device, gs);
            continue;
        }
        if (knx_dpt_encode(w->dpt, val, &p, err, sizeof err) < 0) {
            TBGW_ERRORF(k->host->log, "knx: attribute %s of %s not written to %s: %s", key, u->device, gs,
                        err);
            continue;
        }
        int rc = knx_client_send(k->client, w->ga, KNX_APCI_WRITE, &p,
                                 kx_tag(KX_TAG_WRITE, (uint64_t)(w - k->attr_updates), 0));
        if (rc < 0)
            TBGW_ERRORF(k->host->log, "knx: attribute %s of %s not written to %s: %s", key, u->device, gs,
                        tbgw_strerror(rc));
        else
            TBGW_DEBUGF(k->host->log, "knx: attribute %s of %s -> GroupValueWrite %s", key, u->device, gs);
    }
    if (!matched)
        TBGW_WARNF(k->host->log, "knx: no attributeUpdates entry for device %s and the keys of the update",
                   u->device);
    return 0;
}

/* Starts one RPC telegram. value NULL = read. */
static void start_rpc(kx *k, const tbgw_rpc_req *r, uint16_t ga, const knx_dpt *dpt, const json_t *value) {
    char gs[16], err[160];
    knx_ga_format(ga, k->ga_style, gs, sizeof gs);
    if (!k->connected) return reply_error(k, r->handle, "KNX bus is not connected");
    knx_payload p;
    if (value && knx_dpt_encode(dpt, value, &p, err, sizeof err) < 0)
        return reply_error(k, r->handle, "%s: %s", gs, err);
    kx_rpc *x = calloc(1, sizeof *x);
    if (!x) return reply_error(k, r->handle, "out of memory");
    x->id = ++k->next_rpc_id;
    x->handle = r->handle;
    x->ga = ga;
    x->dpt = dpt;
    x->is_read = value == NULL;
    int64_t wait = k->read_timeout_ms;
    if (r->timeout_ms > 400 && r->timeout_ms - 200 < wait) wait = r->timeout_ms - 200;
    x->deadline = wait; /* relative until the read is confirmed */
    if (value) {        /* what a successful write replies: the value as decoded back from the telegram */
        tbgw_value v;
        char text[KNX_DPT_TEXT_CAP];
        tbgw_buf b;
        tbgw_buf_init(&b);
        if (knx_dpt_decode(dpt, &p, &v, text, sizeof text) == 0) kx_value_repr(&v, &b);
        x->written = strdup(tbgw_buf_cstr(&b));
        tbgw_buf_free(&b);
    }
    int rc = knx_client_send(k->client, ga, value ? KNX_APCI_WRITE : KNX_APCI_READ, value ? &p : NULL,
                             kx_tag(KX_TAG_RPC, 0, x->id));
    if (rc < 0) {
        free(x->written);
        free(x);
        return reply_error(k, r->handle, "%s: %s", gs, tbgw_strerror(rc));
    }
    x->next = k->pending;
    k->pending = x;
}

/* Python truthiness of the params. */
static int truthy(const json_t *v) {
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if (json_is_string(v)) return *json_string_value(v) != '\0';
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    if (json_is_real(v)) return json_real_value(v) != 0;
    if (json_is_array(v)) return json_array_size(v) > 0;
    if (json_is_object(v)) return json_object_size(v) > 0;
    return 1;
}

/* get/set with "k=v;k=v;" params. */
static void reserved_rpc(kx *k, const tbgw_rpc_req *r) {
    if (!json_is_string(r->params))
        return reply_error(k, r->handle, "%s: params must be \"groupAddress=..;dataType=..;[value=..;]\"",
                           r->method);
    tbgw_params kv = {0};
    tbgw_err perr = {0};
    if (tbgw_params_parse(json_string_value(r->params), TBGW_PARAMS_LENIENT, &kv, &perr) < 0)
        return reply_error(k, r->handle, "%s: %s", r->method, perr.msg);
    char ga_s[64], type[64], rt[16], value[256];
    const char *v_ga = tbgw_params_get(&kv, "groupAddress"), *v_type = tbgw_params_get(&kv, "dataType");
    const char *v_rt = tbgw_params_get(&kv, "requestType"), *v_value = tbgw_params_get(&kv, "value");
    snprintf(ga_s, sizeof ga_s, "%s", v_ga ? v_ga : "");
    snprintf(type, sizeof type, "%s", v_type ? v_type : "");
    snprintf(rt, sizeof rt, "%s", v_rt ? v_rt : "");
    snprintf(value, sizeof value, "%s", v_value ? v_value : "");
    int has_value = v_value != NULL;
    tbgw_params_free(&kv);
    uint16_t ga;
    if (!*ga_s || knx_ga_parse(ga_s, &ga) < 0)
        return reply_error(k, r->handle, "%s: groupAddress missing or malformed (\"%s\")", r->method, ga_s);
    const knx_dpt *d = knx_dpt_find(type);
    if (!d) return reply_error(k, r->handle, "%s: unknown dataType \"%s\"", r->method, type);
    int write = has_value || !strcasecmp(rt, "write");
    if (write && !has_value)
        return reply_error(k, r->handle, "%s: requestType write needs value=", r->method);
    json_t *v = write ? json_string(value) : NULL;
    start_rpc(k, r, ga, d, v);
    json_decref(v);
}

int kx_on_rpc(kx *k, const tbgw_rpc_req *r) {
    if (!r->device)
        return reply_error(k, r->handle, "knx: connector methods are not supported (%s)", r->method), 0;
    if (!strcmp(r->method, "get") || !strcmp(r->method, "set")) {
        if (!find_entry(k->rpcs, k->n_rpcs, r->method, r->device)) return reserved_rpc(k, r), 0;
    }
    const kx_write *w = find_entry(k->rpcs, k->n_rpcs, r->method, r->device);
    if (!w)
        return reply_error(k, r->handle, "no serverSideRpc entry for method %s of device %s", r->method,
                           r->device),
               0;
    const json_t *v = NULL;
    if (w->is_write || truthy(r->params)) {
        v = r->params;
        if (json_is_object(v) && json_object_get(v, "value")) v = json_object_get(v, "value");
        if (!v || json_is_null(v)) return reply_error(k, r->handle, "%s: no value to write", r->method), 0;
    }
    start_rpc(k, r, w->ga, w->dpt, v);
    return 0;
}

static kx_rpc *unlink_rpc(kx *k, kx_rpc *x) {
    for (kx_rpc **pp = &k->pending; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            return x;
        }
    return x;
}

static void free_rpc(kx_rpc *x) {
    free(x->written);
    free(x);
}

void kx_rpc_sent(kx *k, uint64_t id, int ok, const char *why) {
    kx_rpc *x = k->pending;
    while (x && x->id != id) x = x->next;
    if (!x) return;
    char gs[16];
    knx_ga_format(x->ga, k->ga_style, gs, sizeof gs);
    if (!ok) {
        unlink_rpc(k, x);
        reply_error(k, x->handle, "%s: %s", gs, why ? why : "not sent");
        return free_rpc(x);
    }
    if (x->is_read) {
        x->sent = 1;
        x->deadline += tbgw_mono_ms();
        return;
    }
    unlink_rpc(k, x);
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_printf(&b, "{'value': %s}", x->written ? x->written : "None");
    reply(k, x->handle, tbgw_buf_cstr(&b), -1);
    tbgw_buf_free(&b);
    free_rpc(x);
}

void kx_rpc_telegram(kx *k, const knx_ldata *ld) {
    for (kx_rpc *x = k->pending, *next; x; x = next) {
        next = x->next;
        if (!x->is_read || x->ga != ld->dst) continue;
        tbgw_value v;
        char text[KNX_DPT_TEXT_CAP];
        unlink_rpc(k, x);
        if (knx_dpt_decode(x->dpt, &ld->value, &v, text, sizeof text) < 0) {
            kx_warn_undecodable(k, x->ga, x->dpt, &ld->value, "RPC");
            char gs[16];
            knx_ga_format(x->ga, k->ga_style, gs, sizeof gs);
            reply_error(k, x->handle, "%s: the response does not decode as %s", gs, knx_dpt_name(x->dpt));
        } else
            reply_value(k, x->handle, &v);
        free_rpc(x);
    }
}

void kx_rpc_expire(kx *k, int64_t now) {
    for (kx_rpc *x = k->pending, *next; x; x = next) {
        next = x->next;
        if (!x->sent || now < x->deadline) continue;
        unlink_rpc(k, x);
        reply(k, x->handle, "None", -1); /* no response in time: what the reference answers */
        free_rpc(x);
    }
}

int64_t kx_rpc_next_ms(const kx *k, int64_t now) {
    int64_t t = INT64_MAX;
    for (const kx_rpc *x = k->pending; x; x = x->next)
        if (x->sent && x->deadline < t) t = x->deadline;
    return t == INT64_MAX ? INT64_MAX : t > now ? t - now : 0;
}

void kx_rpc_fail_all(kx *k, const char *why) {
    while (k->pending) {
        kx_rpc *x = k->pending;
        k->pending = x->next;
        reply(k, x->handle, why, 0);
        free_rpc(x);
    }
}
