/* The OPC-UA connector against the node-opcua test server, driven through a test host that records
 * what the connector emits and replies: polling and subscription modes, device info from nodes,
 * RPCs (get, set, multiply, unknown), attribute updates, server restart, rescans (the subscription
 * is kept, only new nodes are added, devices appear and vanish, RPCs are answered during a scan),
 * config errors. Skipped when node or node-opcua are not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "connectors/opcua/opcua.h"
#include "opcua_peer.h"
#include "util/buf.h"
#include "util/time.h"
#include "util/wakefd.h"
#include <tbgw/connector.h>

extern const tbgw_connector_ops tbgw_connector_opcua;

typedef struct fake {
    tbgw_host host;
    pthread_mutex_t mu;
    json_t *records;      /* [{"device","type","ts":{key:value},"attr":{key:value},"tsv":{key:ts}}] */
    json_t *replies;      /* {handle: content} */
    json_t *connected;    /* {device: type} */
    json_t *n_connected;  /* {device: times reported connected} */
    json_t *disconnected; /* {device: times reported disconnected} */
    json_t *in_scan;      /* {handle: whether a scan was running when the reply was made} */
    opcua_scan_info info; /* the connector's, as of its last host->wait */
    struct {
        int is_rpc;
        char device[64], method[64];
        json_t *params;
        uint64_t handle;
    } q[16];
    int nq;
    void *self;
    volatile int stop;
    int state;
    uint64_t stats[TBGW_STAT__COUNT];
} fake;

static json_t *value_json(const tbgw_value *v) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_json_value(&b, v);
    json_t *j = json_loads(tbgw_buf_cstr(&b), JSON_DECODE_ANY, NULL);
    tbgw_buf_free(&b);
    return j;
}

static int f_emit(const tbgw_host *h, tbgw_converted *chain) {
    fake *f = (fake *)h;
    pthread_mutex_lock(&f->mu);
    for (tbgw_converted *c = chain; c; c = c->next) {
        json_t *ts = json_object(), *attr = json_object(), *tsv = json_object();
        for (size_t i = 0; i < c->n_telemetry; i++) {
            json_object_set_new(ts, c->telemetry[i].key, value_json(&c->telemetry[i].v));
            json_object_set_new(tsv, c->telemetry[i].key, json_integer(c->telemetry[i].ts));
        }
        for (size_t i = 0; i < c->n_attributes; i++)
            json_object_set_new(attr, c->attributes[i].key, value_json(&c->attributes[i].v));
        json_array_append_new(f->records, json_pack("{s:s,s:s,s:o,s:o,s:o}", "device", c->device_name, "type",
                                                    c->device_type, "ts", ts, "attr", attr, "tsv", tsv));
    }
    pthread_mutex_unlock(&f->mu);
    tbgw_converted_free(chain);
    return 0;
}

static int f_connected(const tbgw_host *h, const char *device, const char *type) {
    fake *f = (fake *)h;
    pthread_mutex_lock(&f->mu);
    json_object_set_new(f->connected, device, json_string(type ? type : "default"));
    json_object_set_new(f->n_connected, device,
                        json_integer(json_integer_value(json_object_get(f->n_connected, device)) + 1));
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int f_disconnected(const tbgw_host *h, const char *device) {
    fake *f = (fake *)h;
    pthread_mutex_lock(&f->mu);
    json_object_set_new(f->disconnected, device,
                        json_integer(json_integer_value(json_object_get(f->disconnected, device)) + 1));
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int f_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    fake *f = (fake *)h;
    (void)success;
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)handle);
    opcua_scan_info info;
    opcua_scan_info_get(f->self, &info); /* on the connector thread, like the reply */
    pthread_mutex_lock(&f->mu);
    json_object_set_new(f->in_scan, key, json_boolean(info.scanning));
    json_object_set_new(f->replies, key, content ? content : json_null());
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int f_wait(const tbgw_host *h, int timeout_ms) {
    fake *f = (fake *)h;
    tbgw_wakefd_drain(h->downlink_fd); /* before taking the queue: a later kick stays readable */
    opcua_scan_info info;
    opcua_scan_info_get(f->self, &info);
    pthread_mutex_lock(&f->mu);
    f->info = info;
    int n = f->nq;
    typeof(f->q[0]) items[16];
    memcpy(items, f->q, sizeof items);
    f->nq = 0;
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < n; i++) {
        if (items[i].is_rpc) {
            tbgw_rpc_req r = {items[i].handle,
                              items[i].device[0] ? items[i].device : NULL,
                              1,
                              items[i].method,
                              items[i].params,
                              5000};
            tbgw_connector_opcua.on_rpc(f->self, &r);
        } else {
            tbgw_attr_update u = {items[i].device, items[i].params};
            tbgw_connector_opcua.on_attribute_update(f->self, &u);
        }
        json_decref(items[i].params);
    }
    if (timeout_ms > 0) tbgw_sleep_ms(timeout_ms < 20 ? timeout_ms : 20);
    return f->stop;
}

static int f_dispatch(const tbgw_host *h) {
    return f_wait(h, 0);
}

static void f_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    fake *f = (fake *)h;
    pthread_mutex_lock(&f->mu);
    f->stats[s] += n;
    pthread_mutex_unlock(&f->mu);
}

static void f_state(const tbgw_host *h, tbgw_conn_state st, const char *text) {
    (void)text;
    ((fake *)h)->state = st;
}

static char last_warning[600];
static int n_warnings;

static void f_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    snprintf(last_warning, sizeof last_warning, "%s: %s", dotted ? dotted : "", msg);
    n_warnings++;
}

static void fake_init(fake *f) {
    memset(f, 0, sizeof *f);
    f->host.abi = TBGW_CONNECTOR_ABI;
    f->host.name = "OPC-UA";
    f->host.type = "opcua";
    f->host.log = tbgw_logger_get("connector.OPC-UA");
    f->host.conv_log = f->host.log;
    f->host.emit = f_emit;
    f->host.device_connected = f_connected;
    f->host.device_disconnected = f_disconnected;
    f->host.rpc_reply = f_reply;
    f->host.wait = f_wait;
    f->host.dispatch = f_dispatch;
    f->host.downlink_fd = tbgw_wakefd_new();
    f->host.stat_add = f_stat;
    f->host.set_state = f_state;
    f->host.config_warning = f_warning;
    pthread_mutex_init(&f->mu, NULL);
    f->records = json_array();
    f->replies = json_object();
    f->connected = json_object();
    f->n_connected = json_object();
    f->disconnected = json_object();
    f->in_scan = json_object();
}

static void fake_free(fake *f) {
    close(f->host.downlink_fd);
    json_decref(f->records);
    json_decref(f->replies);
    json_decref(f->connected);
    json_decref(f->n_connected);
    json_decref(f->disconnected);
    json_decref(f->in_scan);
    pthread_mutex_destroy(&f->mu);
}

static void *run_thread(void *arg) {
    fake *f = arg;
    tbgw_connector_opcua.run(f->self);
    return NULL;
}

static void enqueue(fake *f, int is_rpc, const char *device, const char *method, json_t *params,
                    uint64_t handle) {
    pthread_mutex_lock(&f->mu);
    f->q[f->nq].is_rpc = is_rpc;
    snprintf(f->q[f->nq].device, sizeof f->q[f->nq].device, "%s", device ? device : "");
    snprintf(f->q[f->nq].method, sizeof f->q[f->nq].method, "%s", method ? method : "");
    f->q[f->nq].params = params;
    f->q[f->nq].handle = handle;
    f->nq++;
    pthread_mutex_unlock(&f->mu);
    tbgw_wakefd_kick(f->host.downlink_fd);
}

/* Waits until a reply for handle arrives; returns its compact JSON text (caller frees). */
static char *wait_reply(fake *f, uint64_t handle, int ms) {
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)handle);
    for (int64_t end = tbgw_mono_ms() + ms; tbgw_mono_ms() < end; tbgw_sleep_ms(20)) {
        pthread_mutex_lock(&f->mu);
        json_t *r = json_object_get(f->replies, key);
        char *s = r ? json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        pthread_mutex_unlock(&f->mu);
        if (s) return s;
    }
    return NULL;
}

/* The value of key in the newest record of device that has it (new reference), or NULL. */
static json_t *latest(fake *f, const char *device, const char *section, const char *key) {
    json_t *found = NULL;
    pthread_mutex_lock(&f->mu);
    for (size_t i = json_array_size(f->records); i-- > 0 && !found;) {
        json_t *r = json_array_get(f->records, i);
        if (strcmp(json_string_value(json_object_get(r, "device")), device) != 0) continue;
        json_t *v = json_object_get(json_object_get(r, section), key);
        if (v) found = json_incref(v);
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* Waits until the newest value of key equals want (any value when want is NULL). */
static json_t *wait_value(fake *f, const char *device, const char *section, const char *key, int ms) {
    for (int64_t end = tbgw_mono_ms() + ms; tbgw_mono_ms() < end; tbgw_sleep_ms(20)) {
        json_t *v = latest(f, device, section, key);
        if (v) return v;
    }
    return NULL;
}

static int wait_equal(fake *f, const char *device, const char *section, const char *key, json_t *want,
                      int ms) {
    int ok = 0;
    for (int64_t end = tbgw_mono_ms() + ms; tbgw_mono_ms() < end && !ok; tbgw_sleep_ms(20)) {
        json_t *v = latest(f, device, section, key);
        ok = v && json_equal(v, want);
        json_decref(v);
    }
    json_decref(want);
    return ok;
}

/* How many records of device carry key in section. */
static int count_values(fake *f, const char *device, const char *section, const char *key) {
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < json_array_size(f->records); i++) {
        json_t *r = json_array_get(f->records, i);
        if (strcmp(json_string_value(json_object_get(r, "device")), device) == 0 &&
            json_object_get(json_object_get(r, section), key))
            n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* The connector's scan info as of its last host->wait (a kick makes it dispatch, so refresh, soon). */
static opcua_scan_info scan_info(fake *f) {
    tbgw_wakefd_kick(f->host.downlink_fd);
    pthread_mutex_lock(&f->mu);
    opcua_scan_info i = f->info;
    pthread_mutex_unlock(&f->mu);
    return i;
}

/* Waits until at least scans scans completed. */
static int wait_scans(fake *f, uint64_t scans, int ms) {
    for (int64_t end = tbgw_mono_ms() + ms; tbgw_mono_ms() < end; tbgw_sleep_ms(20))
        if (scan_info(f).scans >= scans) return 1;
    return 0;
}

static int64_t json_count(fake *f, json_t *obj, const char *key) {
    pthread_mutex_lock(&f->mu);
    int64_t n = json_integer_value(json_object_get(obj, key));
    pthread_mutex_unlock(&f->mu);
    return n;
}

static opcua_peer peer;
static opcua_peer late_peer;

static int setup(void **state) {
    (void)state;
    if (peer_start(&peer, 0, NULL, NULL)) peer.pid = 0;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    peer_stop(&peer);
    peer_stop(&late_peer);
    return 0;
}

/* The reference's example config (tests/data/reference/opcua.json shape), pointed at the test server. */
static json_t *example_config(const char *url, int subscriptions) {
    json_error_t je;
    json_t *cfg = json_loads(
        "{\"server\":{\"timeoutInMillis\":5000,\"scanPeriodInMillis\":3600000,\"pollPeriodInMillis\":300,"
        "\"subCheckPeriodInMillis\":100,\"security\":\"Basic128Rsa15\",\"identity\":{\"type\":\"anonymous\"}}"
        ","
        "\"mapping\":[{\"deviceNodeSource\":\"path\",\"deviceNodePattern\":\"Root\\\\.Objects\\\\.MyObject\","
        "\"deviceInfo\":{\"deviceNameExpression\":\"Demo "
        "Device\",\"deviceNameExpressionSource\":\"constant\","
        "\"deviceProfileExpression\":\"default\",\"deviceProfileExpressionSource\":\"constant\"},"
        "\"attributes\":[{\"key\":\"frequency\",\"type\":\"path\",\"value\":\"${Frequency}\"},"
        "{\"key\":\"power\",\"type\":\"path\",\"value\":\"${Power}\"}],"
        "\"timeseries\":[{\"key\":\"temperature\",\"type\":\"path\",\"value\":\"${Temperature}\"},"
        "{\"key\":\"humidity\",\"type\":\"path\",\"value\":\"${Humidity}\"},"
        "{\"key\":\"relay\",\"type\":\"path\",\"value\":\"${Relay}\"},"
        "{\"key\":\"counter\",\"type\":\"identifier\",\"value\":\"${ns=1;s=Counter}\","
        "\"timestampLocation\":\"sourceTimestamp\"}],"
        "\"rpc_methods\":[{\"method\":\"multiply\",\"arguments\":[{\"type\":\"integer\",\"value\":2},"
        "{\"type\":\"integer\",\"value\":4}]},{\"method\":\"get_relay\",\"arguments\":[]}],"
        "\"attributes_updates\":[{\"key\":\"relay\",\"type\":\"path\","
        "\"value\":\"Root\\\\.Objects\\\\.MyObject\\\\.Relay\"}]}]}",
        0, &je);
    assert_non_null(cfg);
    json_t *srv = json_object_get(cfg, "server");
    json_object_set_new(srv, "url", json_string(url));
    json_object_set_new(srv, "enableSubscriptions", json_boolean(subscriptions));
    return cfg;
}

static void start(fake *f, json_t *cfg, pthread_t *th) {
    fake_init(f);
    tbgw_err err = {0};
    assert_int_equal(tbgw_connector_opcua.create(&f->host, cfg, &f->self, &err), 0);
    json_decref(cfg);
    assert_int_equal(pthread_create(th, NULL, run_thread, f), 0);
}

static void finish(fake *f, pthread_t th) {
    f->stop = 1;
    tbgw_wakefd_kick(f->host.downlink_fd);
    tbgw_connector_opcua.stop(f->self);
    pthread_join(th, NULL);
    tbgw_connector_opcua.destroy(f->self);
    fake_free(f);
}

static void assert_reply(fake *f, uint64_t handle, const char *want) {
    char *got = wait_reply(f, handle, 8000);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_polling_rpc_and_updates(void **state) {
    (void)state;
    if (!peer.pid) skip();
    fake f;
    pthread_t th;
    start(&f, example_config(peer.url, 0), &th);
    json_t *v = wait_value(&f, "Demo Device", "ts", "temperature", 15000);
    assert_non_null(v);
    assert_true(json_real_value(v) == 21.5);
    json_decref(v);
    v = wait_value(&f, "Demo Device", "attr", "frequency", 3000);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), 50);
    json_decref(v);
    pthread_mutex_lock(&f.mu);
    assert_string_equal(json_string_value(json_object_get(f.connected, "Demo Device")), "default");
    json_t *last = json_array_get(f.records, 0);
    assert_true(json_real_value(json_object_get(json_object_get(last, "attr"), "power")) == 230.5);
    assert_true(json_real_value(json_object_get(json_object_get(last, "ts"), "humidity")) == 55.25);
    pthread_mutex_unlock(&f.mu);

    /* RPCs: method with params overriding the configured arguments, unknown method, get, set */
    enqueue(&f, 1, "Demo Device", "multiply", json_pack("[i,i]", 7, 8), 1);
    assert_reply(&f, 1, "{\"result\":{\"result\":56}}");
    enqueue(&f, 1, "Demo Device", "multiply", NULL, 2);
    assert_reply(&f, 2, "{\"result\":{\"result\":8}}");
    enqueue(&f, 1, "Demo Device", "no_such", NULL, 3);
    assert_reply(&f, 3, "{\"result\":{\"error\":\"Requested rpc method is not found in config\"}}");
    enqueue(&f, 1, "Demo Device", "get", json_string("temperature"), 4);
    assert_reply(&f, 4, "{\"result\":{\"value\":21.5}}");
    enqueue(&f, 1, "Demo Device", "get", json_string("ns=1;s=Frequency"), 5);
    assert_reply(&f, 5, "{\"result\":{\"value\":50}}");
    enqueue(&f, 1, "Demo Device", "set", json_string("Power=231.25"), 6);
    assert_reply(&f, 6, "{\"result\":{\"value\":231.25}}");
    enqueue(&f, 1, "Demo Device", "get", json_string("Root\\.Objects\\.MyObject\\.Power"), 7);
    assert_reply(&f, 7, "{\"result\":{\"value\":231.25}}");
    /* Frequency is Int32: the Int64 write is retried with the node's type */
    enqueue(&f, 1, "Demo Device", "set", json_string("Frequency;60"), 8);
    assert_reply(&f, 8, "{\"result\":{\"value\":60}}");
    /* connector RPC opcua_multiply */
    enqueue(&f, 1, NULL, "multiply", json_pack("{s:[{s:i},{s:i}]}", "arguments", "value", 3, "value", 5), 9);
    assert_reply(&f, 9, "{\"result\":{\"result\":15}}");

    /* attribute update writes Relay; the next poll reports it */
    enqueue(&f, 0, "Demo Device", NULL, json_pack("{s:b}", "relay", 1), 0);
    assert_true(wait_equal(&f, "Demo Device", "ts", "relay", json_true(), 8000));
    /* a Frequency written by the set RPC shows in the next poll */
    assert_true(wait_equal(&f, "Demo Device", "attr", "frequency", json_integer(60), 3000));
    /* statistics: values received and converted, bytes from the server */
    pthread_mutex_lock(&f.mu);
    assert_true(f.stats[TBGW_STAT_MSGS_RECEIVED] >= 6);
    assert_true(f.stats[TBGW_STAT_CONV_PROCESSED] >= 6);
    assert_true(f.stats[TBGW_STAT_BYTES_RECEIVED] > 1000);
    pthread_mutex_unlock(&f.mu);
    finish(&f, th);
}

static void test_subscriptions_and_restart(void **state) {
    (void)state;
    if (!peer.pid) skip();
    fake f;
    pthread_t th;
    json_t *cfg = example_config(peer.url, 1);
    json_t *info = json_object_get(json_array_get(json_object_get(cfg, "mapping"), 0), "deviceInfo");
    json_object_set_new(info, "deviceNameExpression", json_string("OPC ${Name}"));
    json_object_set_new(info, "deviceNameExpressionSource", json_string("path"));
    json_object_set_new(json_object_get(cfg, "server"), "reconnectBackoffInitialDelay", json_integer(200));
    start(&f, cfg, &th);
    json_t *v = wait_value(&f, "OPC Demo Device", "ts", "counter", 15000);
    assert_non_null(v);
    int64_t first = json_integer_value(v);
    json_decref(v);
    assert_true(wait_equal(&f, "OPC Demo Device", "ts", "counter", json_integer(first + 2), 5000));
    /* source timestamps are used for counter: close to now */
    pthread_mutex_lock(&f.mu);
    json_t *rec = NULL;
    for (size_t i = 0; i < json_array_size(f.records); i++)
        if (json_object_get(json_object_get(json_array_get(f.records, i), "tsv"), "counter"))
            rec = json_array_get(f.records, i);
    assert_non_null(rec);
    int64_t ts = json_integer_value(json_object_get(json_object_get(rec, "tsv"), "counter"));
    assert_true(llabs(ts - tbgw_now_ms()) < 10000);
    pthread_mutex_unlock(&f.mu);

    /* server restart: the counter starts again from 0 and keeps arriving */
    int port = peer.port;
    peer_stop(&peer);
    tbgw_sleep_ms(500);
    assert_int_equal(peer_start(&peer, port, NULL, NULL), 0);
    /* values keep arriving through a new session and subscription: two increasing counters after
     * the restart */
    size_t mark;
    pthread_mutex_lock(&f.mu);
    mark = json_array_size(f.records);
    pthread_mutex_unlock(&f.mu);
    int64_t seen[2] = {-1, -1};
    int nseen = 0;
    for (int64_t end = tbgw_mono_ms() + 45000; tbgw_mono_ms() < end && nseen < 2; tbgw_sleep_ms(50)) {
        pthread_mutex_lock(&f.mu);
        for (; mark < json_array_size(f.records) && nseen < 2; mark++) {
            json_t *c = json_object_get(json_object_get(json_array_get(f.records, mark), "ts"), "counter");
            if (c && (nseen == 0 || json_integer_value(c) > seen[0])) seen[nseen++] = json_integer_value(c);
        }
        pthread_mutex_unlock(&f.mu);
    }
    assert_int_equal(nseen, 2);
    assert_int_equal(f.state, TBGW_CONN_CONNECTED);
    finish(&f, th);
}

/* A node that does not exist yet is looked for again until it appears, then subscribed. */
static void test_missing_node_appears(void **state) {
    (void)state;
    peer_extra[0] = "--late";
    peer_extra[1] = "4";
    int rc = peer_start(&late_peer, 0, NULL, NULL);
    peer_extra[0] = peer_extra[1] = NULL;
    if (rc) skip();
    fake f;
    pthread_t th;
    json_t *cfg = example_config(late_peer.url, 1);
    json_t *ts = json_object_get(json_array_get(json_object_get(cfg, "mapping"), 0), "timeseries");
    json_array_append_new(ts, json_pack("{s:s,s:s,s:s}", "key", "late", "type", "path", "value", "${Late}"));
    start(&f, cfg, &th);
    json_t *v = wait_value(&f, "Demo Device", "ts", "temperature", 15000);
    assert_non_null(v);
    json_decref(v);
    v = latest(&f, "Demo Device", "ts", "late");
    assert_null(v); /* not there yet */
    uint32_t sub = scan_info(&f).sub_id;
    assert_true(sub != 0);
    assert_true(wait_equal(&f, "Demo Device", "ts", "late", json_real(7.5), 20000));
    /* the rescan added the new node to the same subscription; nothing else was sent again */
    opcua_scan_info info = scan_info(&f);
    assert_true(info.scans >= 2);
    assert_int_equal(info.sub_id, sub);
    assert_int_equal(info.monitored, 7);
    assert_int_equal(count_values(&f, "Demo Device", "ts", "temperature"), 1);
    assert_int_equal(count_values(&f, "Demo Device", "attr", "power"), 1);
    assert_int_equal(count_values(&f, "Demo Device", "ts", "late"), 1);
    assert_int_equal(json_count(&f, f.n_connected, "Demo Device"), 1);
    finish(&f, th);
    peer_stop(&late_peer);
}

/* Rescans of an unchanged namespace keep the subscription and send no initial value again, while
 * values keep flowing. */
static void test_rescan_keeps_subscription(void **state) {
    (void)state;
    if (!peer.pid) skip();
    fake f;
    pthread_t th;
    json_t *cfg = example_config(peer.url, 1);
    json_object_set_new(json_object_get(cfg, "server"), "scanPeriodInMillis", json_integer(700));
    start(&f, cfg, &th);
    json_t *v = wait_value(&f, "Demo Device", "ts", "temperature", 15000);
    assert_non_null(v);
    json_decref(v);
    assert_true(wait_scans(&f, 1, 5000));
    opcua_scan_info first = scan_info(&f);
    assert_true(first.sub_id != 0);
    assert_int_equal(first.monitored, 6);
    v = wait_value(&f, "Demo Device", "ts", "counter", 5000);
    assert_non_null(v);
    int64_t c0 = json_integer_value(v);
    json_decref(v);
    assert_true(wait_scans(&f, first.scans + 3, 20000));
    opcua_scan_info later = scan_info(&f);
    assert_int_equal(later.sub_id, first.sub_id);
    assert_int_equal(later.monitored, 6);
    /* the constant-valued nodes were reported once, the device announced once */
    assert_int_equal(count_values(&f, "Demo Device", "ts", "temperature"), 1);
    assert_int_equal(count_values(&f, "Demo Device", "ts", "humidity"), 1);
    assert_int_equal(count_values(&f, "Demo Device", "attr", "frequency"), 1);
    assert_int_equal(json_count(&f, f.n_connected, "Demo Device"), 1);
    assert_int_equal(json_count(&f, f.disconnected, "Demo Device"), 0);
    /* the counter kept arriving across the rescans */
    v = latest(&f, "Demo Device", "ts", "counter");
    assert_non_null(v);
    assert_true(json_integer_value(v) >= c0 + 5);
    json_decref(v);
    finish(&f, th);
}

/* A device that appears on the server is announced and subscribed (or polled) from the next rescan
 * on; when it vanishes it is reported disconnected and no longer read. The other device is left
 * alone. */
static void blink_case(int subscriptions) {
    opcua_peer bp = {0};
    peer_extra[0] = "--blink";
    peer_extra[1] = "3";
    int rc = peer_start(&bp, 0, NULL, NULL);
    peer_extra[0] = peer_extra[1] = NULL;
    if (rc) skip();
    fake f;
    pthread_t th;
    json_t *cfg = example_config(bp.url, subscriptions);
    json_object_set_new(json_object_get(cfg, "server"), "scanPeriodInMillis", json_integer(500));
    json_array_append_new(json_object_get(cfg, "mapping"),
                          json_pack("{s:s,s:{s:s,s:s},s:[{s:s,s:s,s:s}]}", "deviceNodePattern",
                                    "Root\\.Objects\\.Blink", "deviceInfo", "deviceNameExpression",
                                    "Blink Device", "deviceNameExpressionSource", "constant", "timeseries",
                                    "key", "value", "type", "path", "value", "${Value}"));
    start(&f, cfg, &th);
    json_t *v = wait_value(&f, "Demo Device", "ts", "temperature", 15000);
    assert_non_null(v);
    json_decref(v);
    uint32_t sub = scan_info(&f).sub_id;
    assert_true(wait_equal(&f, "Blink Device", "ts", "value", json_real(1.25), 15000));
    assert_int_equal(json_count(&f, f.n_connected, "Blink Device"), 1);
    for (int64_t end = tbgw_mono_ms() + 15000;
         tbgw_mono_ms() < end && json_count(&f, f.disconnected, "Blink Device") == 0;)
        tbgw_sleep_ms(50);
    assert_int_equal(json_count(&f, f.disconnected, "Blink Device"), 1);
    int blink_values = count_values(&f, "Blink Device", "ts", "value");
    assert_true(wait_scans(&f, scan_info(&f).scans + 2, 5000));
    assert_int_equal(count_values(&f, "Blink Device", "ts", "value"), blink_values); /* not read any more */
    opcua_scan_info info = scan_info(&f);
    assert_int_equal(info.devices, 1);
    if (subscriptions) {
        assert_int_equal(info.sub_id, sub);
        assert_int_equal(info.monitored, 6);
        assert_int_equal(count_values(&f, "Demo Device", "ts", "temperature"), 1);
    } else {
        assert_int_equal(info.monitored, 0);
        assert_true(count_values(&f, "Demo Device", "ts", "temperature") > 1); /* polled */
    }
    assert_int_equal(json_count(&f, f.n_connected, "Demo Device"), 1);
    assert_int_equal(json_count(&f, f.disconnected, "Demo Device"), 0);
    finish(&f, th);
    peer_stop(&bp);
}

static void test_rescan_device_appears_and_vanishes(void **state) {
    (void)state;
    blink_case(1);
}

static void test_rescan_device_appears_and_vanishes_polling(void **state) {
    (void)state;
    blink_case(0);
}

/* An RPC that arrives while a scan of many nodes runs is answered before the scan ends. */
static void test_rpc_during_scan(void **state) {
    (void)state;
    opcua_peer mp = {0};
    peer_extra[0] = "--many-period";
    peer_extra[1] = "1000";
    int rc = peer_start(&mp, 0, NULL, "3000");
    peer_extra[0] = peer_extra[1] = NULL;
    if (rc) skip();
    json_t *cfg =
        json_pack("{s:{s:s,s:b,s:i,s:i},s:[{s:s,s:{s:s,s:s},s:[]}]}", "server", "url", mp.url,
                  "enableSubscriptions", 1, "subCheckPeriodInMillis", 100, "scanPeriodInMillis", 1000,
                  "mapping", "deviceNodePattern", "Root\\.Objects\\.Many", "deviceInfo",
                  "deviceNameExpression", "Many", "deviceNameExpressionSource", "constant", "timeseries");
    json_t *ts = json_object_get(json_array_get(json_object_get(cfg, "mapping"), 0), "timeseries");
    for (int i = 0; i < 3000; i++) {
        char key[16], val[16];
        snprintf(key, sizeof key, "v%d", i);
        snprintf(val, sizeof val, "${V%d}", i);
        json_array_append_new(ts, json_pack("{s:s,s:s,s:s}", "key", key, "type", "path", "value", val));
    }
    fake f;
    pthread_t th;
    start(&f, cfg, &th);
    json_t *v = wait_value(&f, "Many", "ts", "v2999", 60000);
    assert_non_null(v);
    json_decref(v);
    uint32_t sub = scan_info(&f).sub_id;
    /* RPCs one after the other until one is answered while a rescan runs */
    int answered_in_scan = 0;
    uint64_t h = 100;
    for (int64_t end = tbgw_mono_ms() + 60000; tbgw_mono_ms() < end && !answered_in_scan; h++) {
        enqueue(&f, 1, "Many", "get", json_string("v0"), h);
        char *got = wait_reply(&f, h, 10000);
        assert_non_null(got);
        json_t *reply = json_loads(got, 0, NULL);
        assert_true(json_is_number(json_object_get(json_object_get(reply, "result"), "value")));
        json_decref(reply);
        free(got);
        char key[32];
        snprintf(key, sizeof key, "%llu", (unsigned long long)h);
        pthread_mutex_lock(&f.mu);
        answered_in_scan = json_is_true(json_object_get(f.in_scan, key));
        pthread_mutex_unlock(&f.mu);
        tbgw_sleep_ms(25);
    }
    assert_true(answered_in_scan);
    opcua_scan_info info = scan_info(&f);
    assert_int_equal(info.sub_id, sub);
    assert_int_equal(info.monitored, 3000);
    finish(&f, th);
    peer_stop(&mp);
}

static void test_config_errors(void **state) {
    (void)state;
    fake f;
    fake_init(&f);
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"mapping\":[]}", "server: expected an object"},
        {"{\"server\":{},\"mapping\":[]}", "server.url: expected a string like opc.tcp://host:4840"},
        {"{\"server\":{\"url\":\"x\"}}", "mapping: expected an array"},
        {"{\"server\":{\"url\":\"x\",\"timeoutInMillis\":\"a\"},\"mapping\":[]}",
         "server.timeoutInMillis: expected an integer, got a string"},
        {"{\"server\":{\"url\":\"x\",\"identity\":{\"type\":\"cert.PEM\",\"cert\":\"c.pem\",\"privateKey\":"
         "\"k.pem\",\"crl\":\"r.crl\"}},\"mapping\":[]}",
         "server.identity.crl: a certificate revocation list needs caCert (the CA it belongs to)"},
        {"{\"server\":{\"url\":\"x\",\"identity\":{\"type\":\"cert.PEM\",\"cert\":\"c.pem\",\"privateKey\":"
         "\"k.pem\",\"userToken\":\"x509\"}},\"mapping\":[]}",
         "server.identity.userToken: expected auto or certificate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *cfg = json_loads(cases[i].json, 0, NULL);
        assert_non_null(cfg);
        tbgw_err err = {0};
        void *self = NULL;
        assert_int_equal(tbgw_connector_opcua.create(&f.host, cfg, &self, &err), TBGW_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
        json_decref(cfg);
    }
    /* one entry (or one device mapping) that cannot be used is reported and skipped */
    static const struct {
        const char *json, *msg;
        size_t maps, ts, attrs;
    } warn_cases[] = {
        {"{\"server\":{\"url\":\"x\"},\"mapping\":[{}]}",
         "mapping[0].deviceNodePattern: expected a browse path or node id", 0, 0, 0},
        {"{\"server\":{\"url\":\"x\"},\"mapping\":[{\"deviceNodePattern\":\"a\",\"deviceInfo\":{"
         "\"deviceNameExpression\":\"d\"},\"timeseries\":[{\"key\":\"k\",\"value\":\"${a}\","
         "\"timestampLocation\":\"moon\"}]}]}",
         "mapping[0].timeseries[0].timestampLocation: expected one of gateway, sourceTimestamp, "
         "serverTimestamp",
         1, 0, 0},
        {"{\"server\":{\"url\":\"x\"},\"mapping\":[{\"deviceNodePattern\":\"a\",\"deviceInfo\":{"
         "\"deviceNameExpression\":\"d\"},\"attributes\":[{\"key\":\"k\",\"value\":\"${a}\","
         "\"reportStrategy\":{\"type\":\"SOMETIMES\"}}]}]}",
         "mapping[0].attributes[0].reportStrategy.type: expected one of ON_RECEIVED, ON_CHANGE, "
         "ON_REPORT_PERIOD, "
         "ON_CHANGE_OR_REPORT_PERIOD, DISABLED",
         1, 0, 0},
        {"{\"server\":{\"url\":\"x\"},\"mapping\":[{\"deviceNodePattern\":\"a\",\"deviceInfo\":{"
         "\"deviceNameExpression\":\"d\"},\"timeseries\":[{\"key\":\"bad\",\"value\":\"${ns=2;x=5}\"},{"
         "\"key\":"
         "\"k\",\"value\":\"${ns=2;i=5}\"}]}]}",
         "mapping[0].timeseries[0].value: \"ns=2;x=5\" is not a valid node id (expected "
         "ns=<n>;i=<number>|s=<text>|g=<guid>|b=<base64>)",
         1, 1, 0},
        {"{\"server\":{\"url\":\"x\"},\"mapping\":[{\"deviceNodePattern\":\"a\",\"deviceInfo\":{"
         "\"deviceNameExpression\":\"d\"},\"rpc_methods\":[{\"arguments\":[]}]}]}",
         "mapping[0].rpc_methods[0].method: expected a non-empty string", 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof warn_cases / sizeof warn_cases[0]; i++) {
        json_t *cfg = json_loads(warn_cases[i].json, 0, NULL);
        assert_non_null(cfg);
        tbgw_err err = {0};
        void *self = NULL;
        n_warnings = 0;
        assert_int_equal(tbgw_connector_opcua.create(&f.host, cfg, &self, &err), 0);
        assert_int_equal(n_warnings, 1);
        assert_string_equal(last_warning, warn_cases[i].msg);
        opcua_conn *oc = self;
        assert_int_equal(oc->cfg.n_maps, warn_cases[i].maps);
        if (oc->cfg.n_maps) {
            assert_int_equal(oc->cfg.maps[0].n_ts, warn_cases[i].ts);
            assert_int_equal(oc->cfg.maps[0].n_attrs, warn_cases[i].attrs);
        }
        tbgw_connector_opcua.destroy(self);
        json_decref(cfg);
    }
    /* the reference's example config is accepted as is */
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/reference/opcua.json",
             getenv("TBGW_SOURCE_DIR") ? getenv("TBGW_SOURCE_DIR") : ".");
    json_t *ref = json_load_file(path, 0, NULL);
    assert_non_null(ref);
    tbgw_err err = {0};
    void *self = NULL;
    assert_int_equal(tbgw_connector_opcua.create(&f.host, ref, &self, &err), 0);
    tbgw_connector_opcua.destroy(self);
    json_decref(ref);
    fake_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_polling_rpc_and_updates),
        cmocka_unit_test(test_subscriptions_and_restart),
        cmocka_unit_test(test_missing_node_appears),
        cmocka_unit_test(test_rescan_keeps_subscription),
        cmocka_unit_test(test_rescan_device_appears_and_vanishes),
        cmocka_unit_test(test_rescan_device_appears_and_vanishes_polling),
        cmocka_unit_test(test_rpc_during_scan),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
