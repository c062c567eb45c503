/* BACnet attribute updates and RPC (spec 2.5): WriteProperty with priority (Null relinquishes),
 * ReadProperty, the reserved get/set methods, and the reference's reply texts. */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"

#define SUPPORTED_TYPES                                                                                      \
    "['analogInput', 'analogOutput', 'analogValue', 'binaryInput', 'binaryOutput', 'binaryValue']"
#define GET_SCHEMA "get objectType=<objectType>;objectId=<objectId>;propertyId=<propertyId>;"
#define SET_SCHEMA                                                                                           \
    "set "                                                                                                   \
    "objectType=<objectType>;objectId=<objectId>;propertyId=<propertyId>;priority=<priority>;value=<value>;"

typedef struct op {
    bnc_conn *c;
    uint64_t handle; /* 0 = attribute update (no reply) */
    int write;
    uint16_t type;
    uint32_t inst, prop;
    json_t *value; /* what the reply shows for a write */
    char key[128];
    int stage; /* 1: reading listOfObjectPropertyReferences before a weeklySchedule write */
    unsigned prio;
    bnc_device *d;
} op;

static void op_done(void *ud, const bn_result *r);

/* Encodes the WriteProperty of o (a special value for weeklySchedule and the reference list). */
static int encode_write(const op *o, uint16_t elem_otype, bn_w *w, char *why, size_t cap) {
    bn_wp_begin(w, o->type, o->inst, o->prop, BN_ARRAY_ALL);
    int rc = (o->prop == 123 || o->prop == 54) && o->value && !json_is_null(o->value)
                 ? bnc_encode_special(w, o->prop, o->value, elem_otype, why, cap)
                 : bnc_value_encode(w, o->type, o->prop, o->value, why, cap);
    if (rc != 0) return -1;
    bn_wp_end(w, o->prio);
    if (w->overflow) return snprintf(why, cap, "value too long"), -1;
    return 0;
}

/* Second step of a weeklySchedule write: the element type is the presentValue type of the first
 * referenced object (as the reference does). 0 = sent, -1 = failed (why filled). */
static int schedule_write(op *o, const bn_result *r, char *why, size_t cap) {
    uint16_t elem = 0xFFFF;
    bn_rp_ack a;
    if (r->status == BN_OK && bn_rp_ack_decode(r->data, r->len, &a) == 0)
        elem = bnc_first_reference_type(a.value, a.value_len);
    uint8_t buf[BN_MAX_REQUEST];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    if (encode_write(o, elem, &w, why, cap) != 0) return -1;
    o->stage = 2;
    unsigned max = o->d->iam.max_apdu ? o->d->iam.max_apdu : 480;
    if (bn_client_request(o->c->cl, &o->d->addr, BN_SVC_WRITE_PROPERTY, buf, w.len, max,
                          bnc_takes_segments(o->d), op_done, o) != 0)
        return snprintf(why, cap, "request too long for the device or too many pending"), -1;
    return 0;
}

/* Python repr of a JSON value: 'text', True/False/None, {'k': v}, [a, b]. */
static void py_repr(tbgw_buf *b, const json_t *v) {
    if (!v || json_is_null(v)) {
        tbgw_buf_puts(b, "None");
    } else if (json_is_true(v)) {
        tbgw_buf_puts(b, "True");
    } else if (json_is_false(v)) {
        tbgw_buf_puts(b, "False");
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
        tbgw_buf_putc(b, q);
        for (; *s; s++) {
            if (*s == '\\' || *s == q) tbgw_buf_putc(b, '\\');
            if (*s == '\n')
                tbgw_buf_puts(b, "\\n");
            else
                tbgw_buf_putc(b, *s);
        }
        tbgw_buf_putc(b, q);
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        tbgw_buf_putc(b, '[');
        json_array_foreach(v, i, e) {
            if (i) tbgw_buf_puts(b, ", ");
            py_repr(b, e);
        }
        tbgw_buf_putc(b, ']');
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *e;
        int first = 1;
        tbgw_buf_putc(b, '{');
        json_object_foreach((json_t *)v, k, e) {
            json_t *ks = json_string(k);
            if (!first) tbgw_buf_puts(b, ", ");
            py_repr(b, ks);
            tbgw_buf_puts(b, ": ");
            py_repr(b, e);
            json_decref(ks);
            first = 0;
        }
        tbgw_buf_putc(b, '}');
    } else if (json_is_integer(v)) {
        tbgw_buf_printf(b, "%lld", (long long)json_integer_value(v));
    } else {
        char s[40];
        double d = json_real_value(v);
        for (int p = 1; p <= 17; p++) {
            snprintf(s, sizeof s, "%.*g", p, d);
            if (strtod(s, NULL) == d) break;
        }
        if (!strpbrk(s, ".en")) strcat(s, ".0");
        tbgw_buf_puts(b, s);
    }
}

/* {"result": "<python repr of {'name': value}>"} */
static json_t *repr_reply(const char *name, const json_t *v) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_printf(&b, "{'%s': ", name);
    py_repr(&b, v);
    tbgw_buf_putc(&b, '}');
    json_t *r = json_pack("{s:s}", "result", tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    return r;
}

static void reply_error(bnc_conn *c, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(bnc_conn *c, uint64_t handle, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TBGW_ERRORF(c->h->log, "%s", msg);
    c->h->rpc_reply(c->h, handle, json_pack("{s:{s:s}}", "result", "error", msg), -1);
}

static void op_done(void *ud, const bn_result *r) {
    op *o = ud;
    bnc_conn *c = o->c;
    char why[160];
    json_t *reply = NULL;
    if (o->stage == 1 && r->status != BN_E_CANCELLED) {
        if (schedule_write(o, r, why, sizeof why) == 0) return;
        TBGW_ERRORF(c->h->log, "weeklySchedule of %u,%u: %s", o->type, o->inst, why);
        json_t *e = json_string(why);
        reply = repr_reply("error", e);
        json_decref(e);
    } else if (r->status == BN_E_CANCELLED) {
        reply = json_pack("{s:s}", "result", "None");
    } else if (r->status == BN_E_TIMEOUT) {
        /* the reference replies "None" on a timeout; the reason goes to the log */
        TBGW_ERRORF(c->h->log, "%s %u,%u property %u: no answer", o->write ? "write" : "read", o->type,
                    o->inst, o->prop);
        reply = json_pack("{s:s}", "result", "None");
    } else if (r->status != BN_OK) {
        bn_result_text(r, why, sizeof why);
        TBGW_ERRORF(c->h->log, "BACnet %s on %s %u,%u property %u", why, o->write ? "write" : "read", o->type,
                    o->inst, o->prop);
        json_t *e = json_string(why);
        reply = repr_reply("error", e);
        json_decref(e);
    } else if (o->write) {
        TBGW_DEBUGF(c->h->log, "written %u,%u property %u%s%s", o->type, o->inst, o->prop,
                    o->key[0] ? " for key " : "", o->key);
        reply = repr_reply("value", o->value);
    } else {
        bn_rp_ack a;
        tbgw_buf t;
        tbgw_buf_init(&t);
        if (bn_rp_ack_decode(r->data, r->len, &a) == 0 &&
            bnc_value_text(a.type, a.pr.prop, a.value, a.value_len, &t) == 0) {
            json_t *s = json_string(tbgw_buf_cstr(&t));
            reply = repr_reply("value", s);
            json_decref(s);
        } else {
            json_t *s = json_string("malformed ReadProperty answer");
            reply = repr_reply("error", s);
            json_decref(s);
        }
        tbgw_buf_free(&t);
    }
    if (o->handle)
        c->h->rpc_reply(c->h, o->handle, reply, -1);
    else
        json_decref(reply);
    json_decref(o->value);
    free(o);
}

/* Starts a read (value NULL and !write) or a write. Returns 0, or -1 with why filled. */
static int start_op(bnc_device *d, uint64_t handle, int write, uint16_t type, uint32_t inst, uint32_t prop,
                    const json_t *value, unsigned prio, const char *key, char *why, size_t cap) {
    op *o = calloc(1, sizeof *o);
    if (!o) return snprintf(why, cap, "out of memory"), -1;
    o->c = d->conn;
    o->d = d;
    o->handle = handle;
    o->write = write;
    o->type = type;
    o->inst = inst;
    o->prop = prop;
    o->prio = prio;
    o->value = value ? json_deep_copy(value) : json_null();
    snprintf(o->key, sizeof o->key, "%s", key ? key : "");
    uint8_t buf[BN_MAX_REQUEST];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    int service = BN_SVC_READ_PROPERTY;
    if (write && prop == 123 && !json_is_null(o->value)) {
        o->stage = 1; /* the element type first */
        bn_rp_request(&w, type, inst, 54, BN_ARRAY_ALL);
    } else if (write) {
        service = BN_SVC_WRITE_PROPERTY;
        if (encode_write(o, 0xFFFF, &w, why, cap) != 0) {
            json_decref(o->value);
            free(o);
            return -1;
        }
    } else {
        bn_rp_request(&w, type, inst, prop, BN_ARRAY_ALL);
    }
    unsigned max = d->iam.max_apdu ? d->iam.max_apdu : 480;
    if (bn_client_request(d->conn->cl, &d->addr, (uint8_t)service, buf, w.len, max, bnc_takes_segments(d),
                          op_done, o) != 0) {
        json_decref(o->value);
        free(o);
        return snprintf(why, cap, "request too long for the device or too many pending"), -1;
    }
    return 0;
}

/* objectId of a mapping: int or numeric string within 0..4194303 (the reference's checks). */
static int mapping_oid(const json_t *m, int proprietary, uint16_t *type, uint32_t *inst, uint32_t *prop,
                       char *why, size_t cap) {
    const char *ts = json_string_value(json_object_get(m, "objectType"));
    const json_t *id = json_object_get(m, "objectId");
    int t = bn_object_type_parse(ts);
    if (t < 0) return snprintf(why, cap, "unknown objectType %s", ts ? ts : "(none)"), -1;
    long long v = -1;
    if (json_is_integer(id))
        v = json_integer_value(id);
    else if (json_is_string(id) && isdigit((unsigned char)*json_string_value(id)))
        v = atoll(json_string_value(id));
    else
        return snprintf(why, cap, "objectId must be an integer"), -1;
    if (v < 0 || v > (long long)BN_MAX_INST)
        return snprintf(why, cap, "Such number of object id is not supported %lld", v), -1;
    const char *pn = json_string_value(json_object_get(m, "propertyId"));
    int p = bnc_property_parse(proprietary, pn);
    if (p < 0 && bn_vendor_property_owner(pn) && !proprietary)
        return snprintf(why, cap, "propertyId %s is proprietary (vendor %u): loadProprietaryDevices is off",
                        pn, bn_vendor_property_owner(pn)),
               -1;
    if (p < 0) return snprintf(why, cap, "unknown propertyId"), -1;
    *type = (uint16_t)t;
    *inst = (uint32_t)v;
    *prop = (uint32_t)p;
    return 0;
}

int bnc_on_attr_update(void *self, const tbgw_attr_update *u) {
    bnc_conn *c = self;
    bnc_device *d = bnc_find_device(c, u->device);
    if (!d) {
        TBGW_ERRORF(c->h->log, "Device %s not found", u->device);
        return 0;
    }
    if (!c->cl) {
        TBGW_ERRORF(c->h->log, "attribute update for %s: the BACnet endpoint is not open", d->name);
        return 0;
    }
    if (!json_array_size(d->cfg->attr_updates)) {
        TBGW_ERRORF(c->h->log, "No attribute mapping found for device %s", d->name);
        return 0;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(d->cfg->attr_updates, i, m) {
        const char *key = json_string_value(json_object_get(m, "key"));
        const json_t *val = key ? json_object_get(u->data, key) : NULL;
        if (!key || !json_object_get(u->data, key)) continue;
        char why[160];
        uint16_t type;
        uint32_t inst, prop;
        if (mapping_oid(m, d->cfg->proprietary, &type, &inst, &prop, why, sizeof why) != 0) {
            TBGW_ERRORF(c->h->log, "%s for key %s; mapping skipped", why, key);
            continue;
        }
        json_int_t prio = json_integer_value(json_object_get(m, "priority"));
        if (start_op(d, 0, 1, type, inst, prop, val, (unsigned)(prio >= 1 && prio <= 16 ? prio : 0), key, why,
                     sizeof why) != 0)
            TBGW_ERRORF(c->h->log, "attribute update %s of %s: %s", key, d->name, why);
    }
    return 0;
}

static int is_supported_type(const char *t) {
    static const char *const ok[] = {"analogInput", "analogOutput", "analogValue",
                                     "binaryInput", "binaryOutput", "binaryValue"};
    for (size_t i = 0; t && i < 6; i++)
        if (strcmp(t, ok[i]) == 0) return 1;
    return 0;
}

/* "k=v;k2=v2;" pieces into a JSON object (pieces that do not split in two are skipped). */
static json_t *split_params(const char *s) {
    json_t *o = json_object();
    char *copy = strdup(s), *save = NULL;
    for (char *p = copy ? strtok_r(copy, ";", &save) : NULL; p; p = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(p, '=');
        if (!eq || strchr(eq + 1, '=')) continue;
        *eq = 0;
        if (*p && eq[1]) json_object_set_new(o, p, json_string(eq + 1));
    }
    free(copy);
    return o;
}

static int prefix_match(const char *re, const char *s) {
    regex_t rx;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) return 0;
    int ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

static void run_mapping(bnc_conn *c, bnc_device *d, const tbgw_rpc_req *r, const json_t *m, int write,
                        const json_t *value) {
    char why[160];
    uint16_t type;
    uint32_t inst, prop;
    if (mapping_oid(m, d->cfg->proprietary, &type, &inst, &prop, why, sizeof why) != 0) {
        reply_error(c, r->handle, "Could not find correct mapping for %s", why);
        return;
    }
    const json_t *pj = json_object_get(m, "priority");
    long long prio = json_is_integer(pj)  ? json_integer_value(pj)
                     : json_is_string(pj) ? atoll(json_string_value(pj))
                                          : 0;
    if (write && (!value || json_is_null(value)) && !pj) {
        json_t *e = json_string("Value and priority cannot be None");
        c->h->rpc_reply(c->h, r->handle, repr_reply("error", e), -1);
        json_decref(e);
        return;
    }
    if (pj && (prio < 1 || prio > 16)) {
        json_t *e = json_string("Invalid priority value");
        c->h->rpc_reply(c->h, r->handle, repr_reply("error", e), -1);
        json_decref(e);
        return;
    }
    if (start_op(d, r->handle, write, type, inst, prop, value, (unsigned)prio, NULL, why, sizeof why) != 0) {
        json_t *e = json_string(why);
        c->h->rpc_reply(c->h, r->handle, repr_reply("error", e), -1);
        json_decref(e);
    }
}

static int reserved(bnc_conn *c, bnc_device *d, const tbgw_rpc_req *r, int set) {
    const char *p = json_string_value(r->params);
    if (!r->params || json_is_null(r->params) || (p && !*p) ||
        (json_is_object(r->params) && json_object_size(r->params) == 0)) {
        reply_error(c, r->handle, "No params section found in RPC request");
        return 0;
    }
    const char *re =
        set ? "^objectType=[A-Za-z]+;objectId=[0-9]+;propertyId=[A-Za-z]+;(priority=[0-9]+;)?value=.+;"
            : "^objectType=[A-Za-z]+;objectId=[0-9]+;propertyId=[A-Za-z]+;";
    if (!p || !prefix_match(re, p)) {
        reply_error(c, r->handle, "The requested RPC does not match with the schema: %s",
                    set ? SET_SCHEMA : GET_SCHEMA);
        return 0;
    }
    json_t *m = split_params(p);
    const char *t = json_string_value(json_object_get(m, "objectType"));
    if (!is_supported_type(t)) {
        reply_error(c, r->handle, "The objectType must be from '%s, but got'%s", SUPPORTED_TYPES, t ? t : "");
    } else {
        run_mapping(c, d, r, m, set, set ? json_object_get(m, "value") : NULL);
    }
    json_decref(m);
    return 0;
}

int bnc_on_rpc(void *self, const tbgw_rpc_req *r) {
    bnc_conn *c = self;
    bnc_device *d = bnc_find_device(c, r->device);
    if (!d) {
        c->h->rpc_reply(c->h, r->handle, json_pack("{s:{s:s}}", "result", "error", "Device not found"), -1);
        return 0;
    }
    if (!c->cl) {
        reply_error(c, r->handle, "the BACnet endpoint is not open");
        return 0;
    }
    if (!r->method || !*r->method) {
        reply_error(c, r->handle, "No valid rpc method found");
        return 0;
    }
    if (strcmp(r->method, "get") == 0 || strcmp(r->method, "set") == 0)
        return reserved(c, d, r, r->method[0] == 's');
    size_t i;
    const json_t *m;
    json_array_foreach(d->cfg->rpcs, i, m) {
        const char *meth = json_string_value(json_object_get(m, "method"));
        if (!meth || strcmp(meth, r->method) != 0) continue;
        const char *t = json_string_value(json_object_get(m, "objectType"));
        const char *rt = json_string_value(json_object_get(m, "requestType"));
        if (!is_supported_type(t)) {
            reply_error(c, r->handle, "Invalid objectType: '%s'. Expected one of %s.", t ? t : "None",
                        SUPPORTED_TYPES);
            return 0;
        }
        if (!rt || (strcmp(rt, "writeProperty") != 0 && strcmp(rt, "readProperty") != 0)) {
            reply_error(c, r->handle,
                        "Invalid requestType: '%s'. Expected 'writeProperty' or 'readProperty'.",
                        rt ? rt : "None");
            return 0;
        }
        run_mapping(c, d, r, m, strcmp(rt, "writeProperty") == 0, r->params);
        return 0;
    }
    reply_error(c, r->handle, "Neither of configured device rpc methods match with %s", r->method);
    return 0;
}
