/* BLE connector downlink: attribute updates and RPCs as GATT writes and reads (the reference
 * means to do this; it fails every request). Writes carry str(value) as UTF-8, with response. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/ble/ble_conn.h"

static bdev *dev_named(bc *c, const char *name) {
    for (size_t i = 0; name && i < c->n_devs; i++)
        if (strcmp(c->devs[i].name, name) == 0) return &c->devs[i];
    return NULL;
}

/* str(value) of a JSON value as Python prints it. */
static int py_str(bc *c, const json_t *v, tbgw_buf *out) {
    tbgw_py_ctx_reset(c->conv.ctx);
    tbgw_buf_reset(out);
    const tbgw_py_val *pv = v ? tbgw_py_from_json(c->conv.ctx, v) : tbgw_py_none(c->conv.ctx);
    return pv ? tbgw_py_text(c->conv.ctx, pv, out) : TBGW_ENOMEM;
}

/* The characteristic uuid of d, connected; NULL with why. */
static bchar *target(bc *c, bdev *d, const char *uuid, char *why, size_t n) {
    (void)c;
    if (!d->path) return snprintf(why, n, "device %s is not in range", d->name), NULL;
    if (!d->connected) return snprintf(why, n, "device %s is not connected", d->name), NULL;
    char lower[40] = {0};
    for (size_t i = 0; uuid && uuid[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)uuid[i]);
    bchar *ch = ble_char(d, lower);
    if (!ch) snprintf(why, n, "characteristic %s not found on %s", uuid ? uuid : "(none)", d->name);
    return ch;
}

static void attr_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    (void)reply;
    if (error)
        TBGW_ERRORF(c->h->log, "attribute update %s of %s: %s", k->key, d->name, error);
    else
        TBGW_DEBUGF(c->h->log, "%s: %s written", d->name, k->key);
}

int ble_attr_update(void *self, const tbgw_attr_update *u) {
    bc *c = self;
    bdev *d = dev_named(c, u->device);
    if (!d) {
        TBGW_ERRORF(c->h->log, "attribute update for %s: no such device", u->device);
        return 0;
    }
    tbgw_buf text;
    tbgw_buf_init(&text);
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)u->data, key, val) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(d->cfg, "attributeUpdates"), i, e) {
            const char *on = json_string_value(json_object_get(e, "attributeOnThingsBoard"));
            if (!on || strcmp(on, key) != 0) continue;
            char why[256] = "";
            bchar *ch =
                target(c, d, json_string_value(json_object_get(e, "characteristicUUID")), why, sizeof why);
            int ack = !json_is_true(json_object_get(e, "withoutResponse"));
            ble_call k = {0};
            snprintf(k.key, sizeof k.key, "%s", key);
            if (!ch || py_str(c, val, &text) != 0 ||
                ble_write_async(c, d, ch, text.p, text.len, ack, attr_done, &k) < 0)
                TBGW_ERRORF(c->h->log, "attribute update %s of %s: %s", key, d->name,
                            why[0] ? why : "failed");
        }
    }
    tbgw_buf_free(&text);
    return 0;
}

static int fail_h(bc *c, uint64_t handle, const char *why) {
    return c->h->rpc_reply(c->h, handle, json_pack("{s:s,s:b}", "error", why, "success", 0), -1);
}

static int fail(bc *c, const tbgw_rpc_req *r, const char *why) {
    return fail_h(c, r->handle, why);
}

/* Completes an RPC: the text result, or the error; nothing when the entry wants no response. */
static void rpc_answer(bc *c, bdev *d, const ble_call *k, json_t *res, const char *error) {
    if (!res) TBGW_ERRORF(c->h->log, "RPC %s of %s: %s", k->key, d->name, error ? error : "failed");
    if (!k->flags) {
        json_decref(res);
        return;
    }
    if (res)
        c->h->rpc_reply(c->h, k->handle, res, -1);
    else
        fail_h(c, k->handle, error ? error : "failed");
}

static void rpc_read_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    const void *p = NULL;
    size_t n = 0;
    json_t *res = NULL;
    if (!error && sd_bus_message_read_array(reply, 'y', &p, &n) < 0) error = "malformed ReadValue reply";
    if (!error && !(res = json_stringn(n ? p : "", n))) error = "UnicodeDecodeError: the value is not UTF-8";
    rpc_answer(c, d, k, res, error);
}

static void rpc_write_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    (void)reply;
    rpc_answer(c, d, k, error ? NULL : json_string("Ok"), error);
}

/* read / write / scan on d; answered when with_response; ack = a write with response. */
static int process(bc *c, const tbgw_rpc_req *r, bdev *d, const char *how, const char *uuid,
                   const json_t *value, int with_response, int ack) {
    char why[256] = "";
    ble_call k = {.handle = r->handle, .flags = with_response, .always = 1};
    snprintf(k.key, sizeof k.key, "%s", r->method);
    int is_read = strcasecmp(how, "read") == 0;
    if (strcasecmp(how, "scan") == 0) {
        tbgw_buf b;
        tbgw_buf_init(&b);
        ble_gatt_map(d, &b);
        rpc_answer(c, d, &k, json_stringn(b.p ? b.p : "", b.len), NULL);
        tbgw_buf_free(&b);
        return 0;
    }
    if (!is_read && strcasecmp(how, "write") != 0) {
        snprintf(why, sizeof why, "unknown methodProcessing \"%s\"", how);
        rpc_answer(c, d, &k, NULL, why);
        return 0;
    }
    bchar *ch = target(c, d, uuid, why, sizeof why);
    if (!ch) {
        rpc_answer(c, d, &k, NULL, why);
        return 0;
    }
    int rc;
    if (is_read) {
        rc = ble_call_async(c, d, ch->path, BLE_CHAR_IF, "ReadValue", rpc_read_done, &k, "a{sv}", 0);
    } else {
        tbgw_buf b;
        tbgw_buf_init(&b);
        rc = py_str(c, value, &b);
        if (rc == 0) rc = ble_write_async(c, d, ch, b.p, b.len, ack, rpc_write_done, &k);
        tbgw_buf_free(&b);
    }
    if (rc < 0) rpc_answer(c, d, &k, NULL, "the request could not be sent");
    return 0;
}

/* Reserved get/set: "characteristicUUID=...;value=...;". */
static int reserved(bc *c, const tbgw_rpc_req *r, bdev *d, int set) {
    const char *p = json_string_value(r->params);
    char *copy = strdup(p ? p : ""), *save = NULL;
    char *uuid = NULL, *value = NULL;
    for (char *kv = copy ? strtok_r(copy, ";", &save) : NULL; kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || strchr(eq + 1, '=') || eq == kv || !eq[1]) continue;
        *eq = 0;
        if (strcmp(kv, "characteristicUUID") == 0) uuid = eq + 1;
        if (strcmp(kv, "value") == 0) value = eq + 1;
    }
    int rc;
    if (!uuid || (set && !value)) {
        rc = fail(c, r,
                  set ? "expected params characteristicUUID=...;value=...;"
                      : "expected params characteristicUUID=...;");
    } else {
        json_t *v = set ? json_string(value) : NULL;
        rc = process(c, r, d, set ? "write" : "read", uuid, v, 1, 1);
        json_decref(v);
    }
    free(copy);
    return rc;
}

int ble_rpc(void *self, const tbgw_rpc_req *r) {
    bc *c = self;
    if (!r->device) return fail(c, r, "Unsupported connector RPC");
    bdev *d = dev_named(c, r->device);
    if (!d) return fail(c, r, "Device not found");
    if (strcmp(r->method, "get") == 0) return reserved(c, r, d, 0);
    if (strcmp(r->method, "set") == 0) return reserved(c, r, d, 1);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(d->cfg, "serverSideRpc"), i, e) {
        const char *m = json_string_value(json_object_get(e, "methodRPC"));
        if (!m || strcmp(m, r->method) != 0) continue;
        const char *how = json_string_value(json_object_get(e, "methodProcessing"));
        int with = json_is_true(json_object_get(e, "withResponse"));
        return process(c, r, d, how ? how : "", json_string_value(json_object_get(e, "characteristicUUID")),
                       r->params, with, !json_is_true(json_object_get(e, "withoutResponse")));
    }
    return fail(c, r, "Method not found");
}
