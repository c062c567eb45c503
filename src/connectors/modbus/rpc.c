/* Downlink: attribute updates, device RPC (by tag, reserved get/set) and connector RPC modbus_get/set. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/modbus/mbc.h"
#include "util/json.h"
#include "util/time.h"

typedef struct mbc_rpc mbc_rpc;

typedef struct mbc_sub {
    mbc_rpc *rpc;
    mbc_slave *sl; /* NULL for an ad-hoc slave */
    tbgw_mb_conn *conn;
    uint8_t unit;
    char device_name[128];
    tbgw_mbv_spec spec; /* the request's spec with this slave's byte/word order where params had none */
    json_t *result;     /* {"value":..} or {"error":..} once done */
    tbgw_mb_req req;    /* kept for retries */
    int tries, retries, retry_on_empty, retry_on_invalid;
} mbc_sub;

struct mbc_rpc {
    struct mbc_rpc *next;
    mbc *m;
    uint64_t handle;
    int connector_rpc, replied, attr_update;
    int slave_byte_order, slave_word_order; /* connector RPC params without byteOrder/wordOrder */
    int own_repack;                         /* connector RPC params with repack */
    int64_t deadline;
    char device[256];
    mbc_write w;
    json_t *value; /* value to write (NULL for reads) */
    json_t *echo;  /* what a successful write answers with */
    size_t n_subs, outstanding;
    mbc_sub *subs;
};

static void rpc_free(mbc_rpc *r) {
    for (size_t i = 0; i < r->n_subs; i++) json_decref(r->subs[i].result);
    free(r->subs);
    free(r->w.tag);
    json_decref(r->w.spec.variants);
    json_decref(r->value);
    json_decref(r->echo);
    free(r);
}

static void rpc_unlink_free(mbc *m, mbc_rpc *r) {
    for (mbc_rpc **pp = &m->rpcs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    rpc_free(r);
}

void mbc_rpc_free_all(mbc *m) {
    while (m->rpcs) {
        mbc_rpc *r = m->rpcs;
        m->rpcs = r->next;
        rpc_free(r);
    }
}

static json_t *error_obj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_obj(const char *fmt, ...) {
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return json_pack("{s:s}", "error", buf);
}

static void reply(mbc_rpc *r, json_t *content) {
    const tbgw_host *h = r->m->host;
    r->replied = 1;
    if (r->attr_update) {
        json_t *e = json_object_get(content, "error");
        if (e)
            TBGW_WARNF(h->log, "%s: attribute update %s failed: %s", r->device, r->w.tag,
                       json_string_value(e));
        else
            TBGW_DEBUGF(h->log, "%s: attribute update %s written", r->device, r->w.tag);
        json_decref(content);
        return;
    }
    h->rpc_reply(h, r->handle, content, -1);
}

static void finish(mbc_rpc *r) {
    if (!r->replied) {
        if (r->connector_rpc) {
            json_t *arr = json_array();
            for (size_t i = 0; i < r->n_subs; i++)
                json_array_append_new(arr, json_pack("{s:O,s:s}", "result", r->subs[i].result, "device_name",
                                                     r->subs[i].device_name));
            reply(r, arr);
        } else {
            reply(r, json_pack("{s:O}", "result", r->subs[0].result));
        }
    }
    rpc_unlink_free(r->m, r);
}

static void sub_done(void *ud, int status, const tbgw_mb_rsp *rsp) {
    mbc_sub *s = ud;
    mbc_rpc *r = s->rpc;
    const char *conn = tbgw_mb_conn_name(s->conn);
    if (status != 0 && !r->replied && !r->m->stop &&
        mbc_retry_ok(status, s->tries, s->retries, s->retry_on_empty, s->retry_on_invalid)) {
        s->tries++;
        if (s->sl) s->sl->retried++;
        if (tbgw_mb_conn_submit(s->conn, s->unit, &s->req, 1, sub_done, s) == 0) return;
    }
    if (status == 0 && rsp->exception)
        s->result = error_obj("Modbus exception %u (%s) from unit %u", rsp->exception,
                              tbgw_mb_exception_name(rsp->exception), s->unit);
    else if (status == TBGW_ETIMEDOUT)
        s->result = error_obj("No response from unit %u on %s", s->unit, conn);
    else if (status == TBGW_EIO)
        s->result = error_obj("Connection to %s failed", conn);
    else if (status == TBGW_MB_EEMPTY)
        s->result = error_obj("Empty or short response from unit %u on %s", s->unit, conn);
    else if (status < 0)
        s->result = error_obj("Invalid response from unit %u on %s", s->unit, conn);
    else if (r->value) {
        s->result = json_pack("{s:O}", "value", r->echo);
    } else {
        char err[160] = "";
        json_t *v = tbgw_mbv_decode(&s->spec, r->w.fc, rsp->data, rsp->data_len, err, sizeof err);
        s->result = v ? json_pack("{s:o}", "value", v) : error_obj("Cannot decode response: %s", err);
    }
    if (--r->outstanding == 0) finish(r);
}

/* Builds the Modbus request of a read or write. */
static int build_req(const mbc_write *w, const json_t *value, tbgw_mb_req *req, char *err, size_t errlen) {
    memset(req, 0, sizeof *req);
    req->fc = (uint8_t)w->fc;
    req->addr = w->addr;
    req->count = (uint16_t)w->count;
    if (tbgw_mb_fc_is_read(req->fc)) return 0;
    uint16_t regs[TBGW_MB_MAX_WRITE_REGS];
    uint8_t coils[TBGW_MB_MAX_WRITE_BITS];
    size_t n = 0;
    int is_coil = w->fc == 5 || w->fc == 15;
    if (tbgw_mbv_encode(&w->spec, w->fc, value, regs, coils, is_coil ? sizeof coils : TBGW_MB_MAX_WRITE_REGS,
                        &n, err, errlen) < 0)
        return -1;
    if (!n) {
        snprintf(err, errlen, "nothing to write");
        return -1;
    }
    if (w->fc == 5) req->value = coils[0];
    if (w->fc == 6) req->value = regs[0];
    if (w->fc == 15) {
        req->count = (uint16_t)n;
        memset(req->data, 0, sizeof req->data);
        for (size_t i = 0; i < n; i++) tbgw_mb_bit_set(req->data, i, coils[i]);
        req->data_len = (n + 7) / 8;
    }
    if (w->fc == 16) {
        req->count = (uint16_t)n;
        for (size_t i = 0; i < n; i++) {
            req->data[2 * i] = (uint8_t)(regs[i] >> 8);
            req->data[2 * i + 1] = (uint8_t)regs[i];
        }
        req->data_len = n * 2;
    }
    return 0;
}

/* Queues the request on every sub (urgent: ahead of polls). Replies at once on a build error. */
static void launch(mbc *m, mbc_rpc *r) {
    r->next = m->rpcs;
    m->rpcs = r;
    r->outstanding = r->n_subs;
    if (!r->n_subs) {
        finish(r);
        return;
    }
    for (size_t i = 0; i < r->n_subs; i++) {
        mbc_sub *s = &r->subs[i];
        mbc_write w = r->w;
        if (s->sl && r->slave_byte_order) w.spec.byte_little = s->sl->byte_little;
        if (s->sl && r->slave_word_order) w.spec.word_little = s->sl->word_little;
        if (s->sl) {
            if (!r->own_repack) w.spec.repack = s->sl->repack;
            s->retries = s->sl->retries;
            s->retry_on_empty = s->sl->retry_on_empty;
            s->retry_on_invalid = s->sl->retry_on_invalid;
        }
        s->spec = w.spec;
        char err[200] = "";
        int rc = build_req(&w, r->value, &s->req, err, sizeof err);
        if (rc == 0 && tbgw_mb_conn_submit(s->conn, s->unit, &s->req, 1, sub_done, s) < 0) {
            rc = -1;
            snprintf(err, sizeof err, "request cannot be encoded");
        }
        if (rc < 0) {
            s->result = error_obj("%s", err);
            if (--r->outstanding == 0) {
                finish(r);
                return;
            }
        }
    }
}

static mbc_rpc *rpc_new(mbc *m, const tbgw_rpc_req *q, size_t n_subs) {
    mbc_rpc *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->subs = calloc(n_subs ? n_subs : 1, sizeof *r->subs);
    if (!r->subs) {
        free(r);
        return NULL;
    }
    r->m = m;
    r->n_subs = n_subs;
    if (q) {
        r->handle = q->handle;
        int64_t t = q->timeout_ms > 0 ? q->timeout_ms - 50 : 5000;
        r->deadline = tbgw_mono_ms() + (t > 0 ? t : 1);
        snprintf(r->device, sizeof r->device, "%s", q->device ? q->device : "");
    } else {
        r->deadline = tbgw_mono_ms() + 5000;
    }
    for (size_t i = 0; i < n_subs; i++) r->subs[i].rpc = r;
    return r;
}

static void sub_for_slave(mbc_sub *s, mbc_slave *sl) {
    s->sl = sl;
    s->conn = sl->conn;
    s->unit = sl->unit;
    snprintf(s->device_name, sizeof s->device_name, "%s", sl->device_name);
}

static mbc_slave *find_slave(mbc *m, const char *device) {
    for (size_t i = 0; i < m->n_slaves; i++)
        if (device && !strcmp(m->slaves[i].device_name, device)) return &m->slaves[i];
    return NULL;
}

/* "type=16int;functionCode=3;objectsCount=1;address=5;value=7;" -> JSON object. NULL when malformed. */
static json_t *parse_kv_params(const char *s) {
    tbgw_params p;
    if (tbgw_params_parse(s, 0, &p, NULL)) return NULL;
    json_t *o = tbgw_params_object(&p);
    tbgw_params_free(&p);
    static const char *required[] = {"type", "functionCode", "objectsCount", "address"};
    for (size_t i = 0; o && i < 4; i++)
        if (!json_object_get(o, required[i])) {
            json_decref(o);
            return NULL;
        }
    return o;
}

/* A string value from get/set params: JSON-looking text becomes that JSON, else the string itself. */
static json_t *value_from_text(const char *t) {
    json_error_t e;
    json_t *v = tbgw_json_loads(t, JSON_DECODE_ANY, &e);
    return v ? v : json_string(t);
}

static int device_rpc(mbc *m, const tbgw_rpc_req *q) {
    const tbgw_host *h = m->host;
    mbc_slave *sl = find_slave(m, q->device);
    if (!sl) {
        h->rpc_reply(h, q->handle,
                     json_pack("{s:{s:s+}}", "result", "error", "Device not found: ", q->device), -1);
        return 0;
    }
    const mbc_write *cfg = NULL;
    for (size_t i = 0; i < sl->n_rpcs && !cfg; i++)
        if (!strcmp(sl->rpcs[i].tag, q->method)) cfg = &sl->rpcs[i];
    if (cfg && cfg->error) {
        h->rpc_reply(h, q->handle,
                     json_pack("{s:{s:s+}}", "result", "error", "RPC entry not usable: ", cfg->error), -1);
        return 0;
    }
    mbc_rpc *r = rpc_new(m, q, 1);
    if (!r) return TBGW_ENOMEM;
    sub_for_slave(&r->subs[0], sl);
    int reserved = !cfg && (!strcasecmp(q->method, "get") || !strcasecmp(q->method, "set"));
    if (cfg) {
        r->w = *cfg;
        r->w.tag = strdup(cfg->tag);
        json_incref(r->w.spec.variants);
        if (tbgw_mb_fc_is_write((uint8_t)cfg->fc)) {
            const json_t *p = q->params;
            const json_t *inner = json_is_object(p) ? json_object_get(p, "value") : NULL;
            r->value = json_deep_copy(inner ? inner : p ? p : json_null());
            r->echo = json_deep_copy(p ? p : json_null());
        }
    } else if (reserved) {
        json_t *kv = json_is_string(q->params) ? parse_kv_params(json_string_value(q->params)) : NULL;
        int is_set = !strcasecmp(q->method, "set");
        tbgw_err err = {0};
        if (!kv || (is_set && !json_object_get(kv, "value"))) {
            json_decref(kv);
            r->subs[0].result = error_obj("Invalid params for %s: expected "
                                          "\"type=<type>;functionCode=<fc>;objectsCount=<n>;address=<a>;%s\"",
                                          q->method, is_set ? "value=<v>;" : "");
            finish(r);
            return 0;
        }
        if (mbc_parse_write(kv, "params", sl->byte_little, sl->word_little, &r->w, &err) < 0 ||
            tbgw_mb_fc_is_write((uint8_t)r->w.fc) != is_set) {
            r->subs[0].result = error_obj("Invalid params for %s: %s", q->method,
                                          err.msg[0] ? err.msg : "function code does not match the method");
            json_decref(kv);
            finish(r);
            return 0;
        }
        if (is_set) {
            r->value = value_from_text(json_string_value(json_object_get(kv, "value")));
            r->echo = json_deep_copy(r->value);
        }
        json_decref(kv);
    } else {
        r->subs[0].result = error_obj("Method not found for %s", q->method);
        finish(r);
        return 0;
    }
    launch(m, r);
    return 0;
}

/* modbus_get / modbus_set on the gateway device: every configured slave, or an ad-hoc slave when the
 * params name a host/port/serial device. */
static int connector_rpc(mbc *m, const tbgw_rpc_req *q) {
    const tbgw_host *h = m->host;
    const char *method = q->method;
    if (!strncasecmp(method, "modbus_", 7)) method += 7;
    int is_set = !strcasecmp(method, "set");
    if (!is_set && strcasecmp(method, "get")) {
        h->rpc_reply(h, q->handle, json_pack("{s:s+}", "error", "Method not found for modbus_", method), -1);
        return 0;
    }
    const json_t *p = q->params;
    if (json_is_string(p)) p = NULL;
    tbgw_err err = {0};
    mbc_write w;
    memset(&w, 0, sizeof w);
    if (!json_is_object(p) || mbc_parse_write(p, "params", 1, 1, &w, &err) < 0 ||
        tbgw_mb_fc_is_write((uint8_t)w.fc) != is_set || (is_set && !json_object_get(p, "value"))) {
        h->rpc_reply(h, q->handle,
                     json_pack("{s:s}", "error",
                               err.msg[0] ? err.msg
                                          : "params: expected {type, functionCode, objectsCount, address"
                                            "[, value]} with a function code matching the method"),
                     -1);
        mbc_write_clear(&w);
        return 0;
    }
    int adhoc = json_object_get(p, "host") || json_object_get(p, "port");
    mbc_rpc *r = rpc_new(m, q, adhoc ? 1 : m->n_slaves);
    if (!r) {
        mbc_write_clear(&w);
        return TBGW_ENOMEM;
    }
    r->connector_rpc = 1;
    r->slave_byte_order = !json_object_get(p, "byteOrder");
    r->slave_word_order = !json_object_get(p, "wordOrder");
    r->own_repack = json_object_get(p, "repack") != NULL;
    r->w = w;
    if (is_set) {
        r->value = json_deep_copy(json_object_get(p, "value"));
        r->echo = json_deep_copy(r->value);
    }
    if (adhoc) {
        tbgw_mb_endpoint ep;
        /* "type" is the data type here; the transport of an ad-hoc slave is "connectionType" */
        json_t *epj = json_deep_copy(p);
        json_object_del(epj, "type");
        if (json_object_get(p, "connectionType"))
            json_object_set(epj, "type", json_object_get(p, "connectionType"));
        int eprc = mbc_parse_endpoint(epj, "params", &ep, &err);
        json_decref(epj);
        if (eprc < 0) {
            r->subs[0].result = error_obj("%s", err.msg);
            r->next = m->rpcs;
            m->rpcs = r;
            finish(r);
            return 0;
        }
        if (!json_object_get(p, "timeout")) ep.timeout_ms = 5000;
        json_int_t unit = json_integer_value(json_object_get(p, "unitId"));
        r->subs[0].conn = mbc_conn_adhoc(m, &ep);
        r->subs[0].unit = (uint8_t)(json_is_integer(json_object_get(p, "unitId")) ? unit : 1);
        const json_t *rj = json_object_get(p, "retries");
        r->subs[0].retries = json_is_integer(rj) ? (int)json_integer_value(rj) : json_is_false(rj) ? 0 : 3;
        if (r->subs[0].retries < 0 || r->subs[0].retries > 100) r->subs[0].retries = 3;
        r->subs[0].retry_on_empty = json_is_true(json_object_get(p, "retryOnEmpty"));
        r->subs[0].retry_on_invalid = json_is_true(json_object_get(p, "retryOnInvalid"));
        const char *dn = json_string_value(json_object_get(p, "deviceName"));
        if (r->subs[0].conn)
            snprintf(r->subs[0].device_name, sizeof r->subs[0].device_name, "%s",
                     dn ? dn : tbgw_mb_conn_name(r->subs[0].conn));
        if (!r->subs[0].conn) {
            r->subs[0].result = error_obj("out of memory");
            r->next = m->rpcs;
            m->rpcs = r;
            finish(r);
            return 0;
        }
    } else {
        for (size_t i = 0; i < m->n_slaves; i++) sub_for_slave(&r->subs[i], &m->slaves[i]);
    }
    launch(m, r);
    return 0;
}

int mbc_on_rpc(mbc *m, const tbgw_rpc_req *q) {
    if (!q->method) {
        m->host->rpc_reply(m->host, q->handle, json_pack("{s:{s:s}}", "result", "error", "No method"), -1);
        return 0;
    }
    return q->device ? device_rpc(m, q) : connector_rpc(m, q);
}

int mbc_on_attribute_update(mbc *m, const tbgw_attr_update *u) {
    mbc_slave *sl = find_slave(m, u->device);
    if (!sl || !json_is_object(u->data)) return 0;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)u->data, key, val) {
        for (size_t i = 0; i < sl->n_attr_updates; i++) {
            const mbc_write *w = &sl->attr_updates[i];
            if (strcmp(w->tag, key)) continue;
            if (!tbgw_mb_fc_is_write((uint8_t)w->fc)) {
                TBGW_WARNF(m->host->log, "%s: attributeUpdates %s: function code %d cannot write",
                           sl->device_name, key, w->fc);
                continue;
            }
            mbc_rpc *r = rpc_new(m, NULL, 1);
            if (!r) return TBGW_ENOMEM;
            r->attr_update = 1;
            snprintf(r->device, sizeof r->device, "%s", sl->device_name);
            sub_for_slave(&r->subs[0], sl);
            r->w = *w;
            r->w.tag = strdup(w->tag);
            json_incref(r->w.spec.variants);
            r->value = json_deep_copy(val);
            r->echo = json_deep_copy(val);
            launch(m, r);
        }
    }
    return 0;
}

int64_t mbc_rpc_next_deadline(const mbc *m) {
    int64_t due = INT64_MAX;
    for (const mbc_rpc *r = m->rpcs; r; r = r->next)
        if (!r->replied && r->deadline < due) due = r->deadline;
    return due;
}

void mbc_rpc_expire(mbc *m, int64_t now) {
    for (mbc_rpc *r = m->rpcs; r; r = r->next) {
        if (r->replied || now < r->deadline) continue;
        if (r->attr_update) {
            TBGW_WARNF(m->host->log, "%s: attribute update %s: no answer within 5 s", r->device, r->w.tag);
            r->replied = 1;
        } else if (r->connector_rpc) {
            reply(r, json_pack("{s:s}", "error", "Timeout rpc has been reached for the gateway"));
        } else {
            reply(r, json_pack("{s:s+}", "error", "Timeout rpc has been reached for ", r->device));
        }
    }
}
