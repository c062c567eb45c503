/* A scripted connector used by the integration tests and as the example of a custom connector
 * plugin. Configuration:
 *   {"devices": 2, "deviceNamePrefix": "Test Device ", "deviceType": "test", "intervalMs": 100,
 *    "messages": 10, "keys": 4, "attributes": {"firmware": "1.0"}, "failAfter": 0}
 * Every intervalMs each device emits telemetry {"seq": n, "k0".."k<keys-1>": n*i}; the attributes
 * are sent once at start. Downlink: an attribute update is echoed back as telemetry "echo_<key>";
 * RPC "echo" replies {"echo": params}, "slow" never replies, "fail" replies an error; the
 * connector RPC "tbgw_test_ping" replies {"pong": true}. failAfter > 0 makes run() fail after that
 * many rounds (to exercise the supervisor). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/connector.h>

typedef struct tc {
    const tbgw_host *h;
    int devices, interval_ms, keys;
    long messages, fail_after, sent_rounds, seq;
    char prefix[128], type[64];
    json_t *attrs;
    volatile int stop;
} tc;

static int tc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    tc *t = calloc(1, sizeof *t);
    if (!t) return TBGW_ENOMEM;
    t->h = h;
    json_t *v;
    t->devices = (v = json_object_get(cfg, "devices")) ? (int)json_integer_value(v) : 1;
    t->interval_ms = (v = json_object_get(cfg, "intervalMs")) ? (int)json_integer_value(v) : 1000;
    t->keys = (v = json_object_get(cfg, "keys")) ? (int)json_integer_value(v) : 1;
    t->messages = (v = json_object_get(cfg, "messages")) ? (long)json_integer_value(v) : 0;
    t->fail_after = (v = json_object_get(cfg, "failAfter")) ? (long)json_integer_value(v) : 0;
    const char *p = json_string_value(json_object_get(cfg, "deviceNamePrefix"));
    snprintf(t->prefix, sizeof t->prefix, "%s", p ? p : "Test Device ");
    p = json_string_value(json_object_get(cfg, "deviceType"));
    snprintf(t->type, sizeof t->type, "%s", p ? p : "default");
    t->attrs = json_incref(json_object_get(cfg, "attributes"));
    if (t->devices < 0 || t->interval_ms < 0 || t->keys < 0) {
        free(t);
        return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a non-negative number");
    }
    json_t *bad = json_object_get(cfg, "devices");
    if (bad && !json_is_integer(bad)) {
        json_decref(t->attrs);
        free(t);
        return tbgw_err_set(err, TBGW_EINVAL, "devices: expected an integer, got %s",
                            json_is_string(bad) ? "a string" : "another type");
    }
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
    t->h->stat_add(t->h, TBGW_STAT_MSGS_RECEIVED, (uint64_t)t->devices);
    return t->h->emit(t->h, chain);
}

static int tc_run(void *self) {
    tc *t = self;
    t->h->set_state(t->h, TBGW_CONN_CONNECTED, NULL);
    emit_attributes(t);
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

static int tc_rpc(void *self, const tbgw_rpc_req *r) {
    tc *t = self;
    if (!r->device) {
        if (strcmp(r->method, "ping") == 0)
            return t->h->rpc_reply(t->h, r->handle, json_pack("{s:b}", "pong", 1), -1);
        return t->h->rpc_reply(t->h, r->handle, json_pack("{s:s}", "error", "Unsupported method"), -1);
    }
    if (strcmp(r->method, "echo") == 0)
        return t->h->rpc_reply(t->h, r->handle, json_pack("{s:O?}", "echo", r->params), -1);
    if (strcmp(r->method, "slow") == 0) return 0;
    if (strcmp(r->method, "fail") == 0)
        return t->h->rpc_reply(t->h, r->handle, json_pack("{s:s}", "error", "device failed"), 0);
    return t->h->rpc_reply(t->h, r->handle, json_pack("{s:s}", "error", "Unsupported method"), -1);
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

const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi);
const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi) {
    return abi == TBGW_CONNECTOR_ABI ? &ops : NULL;
}
