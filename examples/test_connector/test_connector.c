/* A scripted connector used by the integration tests and as the example of a custom connector
 * plugin. Configuration:
 *   {"devices": 2, "deviceNamePrefix": "Test Device ", "deviceType": "test", "intervalMs": 100,
 *    "messages": 10, "keys": 4, "attributes": {"firmware": "1.0"}, "failAfter": 0}
 * Every intervalMs each device emits telemetry {"seq": n, "k0".."k<keys-1>": n*i}; the attributes
 * are sent once at start. Downlink: an attribute update is echoed back as telemetry "echo_<key>";
 * RPC "echo" replies {"echo": params}, "slow" never replies, "fail" replies an error; the
 * connector RPC "tbgw_test_ping" replies {"pong": true}. failAfter > 0 makes run() fail after that
 * many rounds (to exercise the supervisor).
 *
 * It is also the example of the connector kit (tbgw/connkit.h): its configuration is read with the
 * kit's typed getters, and "deviceList": [{"deviceName", "deviceType", "reportStrategy",
 * "timeseries": [{"key", "reportStrategy"}], "attributes": [{"key", "value"}]}] adds devices whose
 * timeseries keys carry the round number every intervalMs (attributes once, at start); a bad entry
 * there is reported with its file:line:column and skipped. Reserved RPCs on every device: "set" with
 * params "key=<k>;value=<v>;" stores v and replies {"result":{"value":v}}, "get" with "key=<k>;"
 * replies the stored value the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/connector.h>
#include <tbgw/connkit.h>

typedef struct tc {
    const tbgw_host *h;
    int devices, interval_ms, keys;
    long messages, fail_after, sent_rounds, seq;
    char prefix[128], type[64];
    json_t *attrs;
    tbgw_cfg_device *list; /* deviceList */
    size_t n_list;
    json_t *stored; /* values of the reserved "set" RPC: {"device": {"key": value}} */
    volatile int stop;
} tc;

static void tc_destroy(void *self);

/* One deviceList entry: the kit parses the device and its keys; a broken device is skipped. */
static int list_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    tc *t = ud;
    (void)index;
    tbgw_cfg_device d;
    if (tbgw_cfg_device_parse(w, e, path, &d, err) < 0) return TBGW_EINVAL;
    tbgw_cfg_device *nv = realloc(t->list, (t->n_list + 1) * sizeof *nv);
    if (!nv) {
        tbgw_cfg_device_free(&d);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    t->list = nv;
    t->list[t->n_list++] = d;
    return 0;
}

static int tc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    tc *t = calloc(1, sizeof *t);
    if (!t) return TBGW_ENOMEM;
    t->h = h;
    t->stored = json_object();
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
    int64_t devices, interval, keys, messages, fail_after;
    const char *prefix, *type;
    int rc = tbgw_cfg_get_int(cfg, NULL, "devices", 1, 0, 1000000, &devices, err);
    if (!rc) rc = tbgw_cfg_get_int(cfg, NULL, "intervalMs", 1000, 0, 86400000, &interval, err);
    if (!rc) rc = tbgw_cfg_get_int(cfg, NULL, "keys", 1, 0, 100000, &keys, err);
    if (!rc) rc = tbgw_cfg_get_int(cfg, NULL, "messages", 0, 0, INT64_MAX, &messages, err);
    if (!rc) rc = tbgw_cfg_get_int(cfg, NULL, "failAfter", 0, 0, INT64_MAX, &fail_after, err);
    if (!rc) rc = tbgw_cfg_get_str(cfg, NULL, "deviceNamePrefix", "Test Device ", &prefix, err);
    if (!rc) rc = tbgw_cfg_get_str(cfg, NULL, "deviceType", "default", &type, err);
    if (!rc && tbgw_cfg_each(&w, cfg, NULL, "deviceList", list_entry, t) < 0) rc = TBGW_EINVAL;
    if (rc) {
        tc_destroy(t);
        return rc;
    }
    t->devices = (int)devices;
    t->interval_ms = (int)interval;
    t->keys = (int)keys;
    t->messages = (long)messages;
    t->fail_after = (long)fail_after;
    snprintf(t->prefix, sizeof t->prefix, "%s", prefix);
    snprintf(t->type, sizeof t->type, "%s", type);
    t->attrs = json_incref(json_object_get(cfg, "attributes"));
    *self = t;
    return 0;
}

static void emit_attributes(tc *t) {
    if (!json_is_object(t->attrs)) return;
    tbgw_converted *chain = NULL;
    for (int d = 0; d < t->devices; d++) {
        char name[200];
        snprintf(name, sizeof name, "%s%d", t->prefix, d + 1);
        tbgw_converted *c = tbgw_converted_new(name, t->type);
        const char *k;
        json_t *v;
        json_object_foreach(t->attrs, k, v) {
            tbgw_value tv;
            char *tmp;
            if (tbgw_value_from_json(v, &tv, &tmp) == 0) tbgw_converted_add_attribute(c, k, &tv, NULL);
            free(tmp);
        }
        c->next = chain;
        chain = c;
    }
    t->h->emit(t->h, chain);
}

static void emit_list_attributes(tc *t) {
    for (size_t i = 0; i < t->n_list; i++) {
        const tbgw_cfg_device *d = &t->list[i];
        if (!d->attributes.n) continue;
        tbgw_converted *c = tbgw_converted_new(d->name, d->type);
        if (!c) return;
        c->rs = d->has_rs ? &d->rs : NULL;
        for (size_t k = 0; k < d->attributes.n; k++) {
            const tbgw_cfg_key *key = &d->attributes.v[k];
            tbgw_value tv;
            char *tmp = NULL;
            if (tbgw_value_from_json(json_object_get(key->cfg, "value"), &tv, &tmp) == 0)
                tbgw_converted_add_attribute(c, key->key, &tv, key->has_rs ? &key->rs : NULL);
            free(tmp);
        }
        t->h->emit(t->h, c);
    }
}

/* The listed devices' records of one round, appended at *tail. */
static tbgw_converted **list_round(tc *t, int64_t ts, tbgw_converted **tail) {
    for (size_t i = 0; i < t->n_list; i++) {
        const tbgw_cfg_device *d = &t->list[i];
        if (!d->timeseries.n) continue;
        tbgw_converted *c = tbgw_converted_new(d->name, d->type);
        if (!c) break;
        c->rs = d->has_rs ? &d->rs : NULL;
        tbgw_value v = tbgw_value_int(t->seq);
        for (size_t k = 0; k < d->timeseries.n; k++) {
            const tbgw_cfg_key *key = &d->timeseries.v[k];
            tbgw_converted_add_telemetry(c, ts, key->key, &v, key->has_rs ? &key->rs : NULL);
        }
        *tail = c;
        tail = &c->next;
    }
    return tail;
}

static int emit_round(tc *t) {
    tbgw_converted *chain = NULL, **tail = &chain;
    int64_t ts = tbgw_now_ms();
    t->seq++;
    for (int d = 0; d < t->devices; d++) {
        char name[200], key[32];
        snprintf(name, sizeof name, "%s%d", t->prefix, d + 1);
        tbgw_converted *c = tbgw_converted_new(name, t->type);
        if (!c) break;
        tbgw_value v = tbgw_value_int(t->seq);
        tbgw_converted_add_telemetry(c, ts, "seq", &v, NULL);
        for (int k = 0; k < t->keys; k++) {
            snprintf(key, sizeof key, "k%d", k);
            v = tbgw_value_int(t->seq * k);
            tbgw_converted_add_telemetry(c, ts, key, &v, NULL);
        }
        *tail = c;
        tail = &c->next;
    }
    list_round(t, ts, tail);
    t->h->stat_add(t->h, TBGW_STAT_MSGS_RECEIVED, (uint64_t)t->devices);
    return t->h->emit(t->h, chain);
}

static int tc_run(void *self) {
    tc *t = self;
    t->h->set_state(t->h, TBGW_CONN_CONNECTED, NULL);
    emit_attributes(t);
    emit_list_attributes(t);
    long rounds = 0;
    while (!t->stop) {
        if (t->messages == 0 || t->sent_rounds < t->messages) {
            if (emit_round(t) == 0) t->sent_rounds++;
            rounds++;
            if (t->fail_after && rounds >= t->fail_after) return TBGW_EIO;
        }
        if (t->h->wait(t->h, t->interval_ms)) break;
    }
    return 0;
}

static void tc_stop(void *self) {
    ((tc *)self)->stop = 1;
}

static void tc_destroy(void *self) {
    tc *t = self;
    json_decref(t->attrs);
    json_decref(t->stored);
    for (size_t i = 0; i < t->n_list; i++) tbgw_cfg_device_free(&t->list[i]);
    free(t->list);
    free(t);
}

static int tc_attr_update(void *self, const tbgw_attr_update *u) {
    tc *t = self;
    tbgw_converted *c = tbgw_converted_new(u->device, t->type);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)u->data, k, v) {
        char key[200];
        snprintf(key, sizeof key, "echo_%s", k);
        tbgw_value tv;
        char *tmp;
        if (tbgw_value_from_json(v, &tv, &tmp) == 0)
            tbgw_converted_add_telemetry(c, tbgw_now_ms(), key, &tv, NULL);
        free(tmp);
    }
    return t->h->emit(t->h, c);
}

/* Reserved get/set: "key=<k>;value=<v>;" (set) and "key=<k>;" (get). */
static int reserved_rpc(tc *t, const tbgw_rpc_req *r) {
    tbgw_params p;
    tbgw_err err = {0};
    if (tbgw_params_parse(json_string_value(r->params), 0, &p, &err))
        return tbgw_rpc_error(t->h, r->handle, "%s", err.msg);
    const char *key = tbgw_params_get(&p, "key"), *value = tbgw_params_get(&p, "value");
    int rc;
    json_t *dev = json_object_get(t->stored, r->device);
    if (!key) {
        rc = tbgw_rpc_error(t->h, r->handle, "params: key=<name>; is required");
    } else if (!strcmp(r->method, "set")) {
        if (!value) {
            rc = tbgw_rpc_error(t->h, r->handle, "params: value=<value>; is required for set");
        } else {
            if (!dev) json_object_set_new(t->stored, r->device, dev = json_object());
            json_object_set_new(dev, key, json_string(value));
            rc = tbgw_rpc_value(t->h, r->handle, json_string(value));
        }
    } else {
        json_t *v = json_object_get(dev, key);
        rc = v ? tbgw_rpc_value(t->h, r->handle, json_incref(v))
               : tbgw_rpc_error(t->h, r->handle, "%s has no value for %s", r->device, key);
    }
    tbgw_params_free(&p);
    return rc;
}

static int tc_rpc(void *self, const tbgw_rpc_req *r) {
    tc *t = self;
    if (!r->device) {
        if (strcmp(r->method, "ping") == 0)
            return t->h->rpc_reply(t->h, r->handle, json_pack("{s:b}", "pong", 1), -1);
        return tbgw_rpc_error(t->h, r->handle, "Unsupported method");
    }
    if (strcmp(r->method, "echo") == 0)
        return t->h->rpc_reply(t->h, r->handle, json_pack("{s:O?}", "echo", r->params), -1);
    if (strcmp(r->method, "slow") == 0) return 0;
    if (strcmp(r->method, "fail") == 0) return tbgw_rpc_failed(t->h, r->handle, "device failed");
    if (!strcmp(r->method, "get") || !strcmp(r->method, "set")) return reserved_rpc(t, r);
    return tbgw_rpc_error(t->h, r->handle, "Unsupported method");
}

static const tbgw_connector_ops ops = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "tbgw_test",
    .create = tc_create,
    .run = tc_run,
    .stop = tc_stop,
    .destroy = tc_destroy,
    .on_attribute_update = tc_attr_update,
    .on_rpc = tc_rpc,
};

TBGW_CONNECTOR_PLUGIN(ops)
