/* The Modbus connector driven through a minimal in-test host against a libmodbus TCP slave (a peer we
 * did not write) running in a thread: exact values, one timestamp per poll, RPC and attribute updates
 * changing the peer's registers, dead-slave isolation, slave mode and the reference configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <modbus.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
#include <tbgw/connector.h>

#include "proto/modbus/mb_loop.h"
#include "util/time.h"
#include "util/wakefd.h"

extern const tbgw_connector_ops tbgw_connector_modbus;

/* ---------------- the libmodbus peer ---------------- */
typedef struct peer {
    int port;
    modbus_t *ctx;
    modbus_mapping_t *map;
    pthread_t th;
    volatile int stop;
    int listen_fd;
    pthread_mutex_t mu;
} peer;

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static void *peer_main(void *arg) {
    peer *p = arg;
    int clients[16];
    int nc = 0;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!p->stop) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p->listen_fd, &rd);
        int mx = p->listen_fd;
        for (int i = 0; i < nc; i++) {
            FD_SET(clients[i], &rd);
            if (clients[i] > mx) mx = clients[i];
        }
        struct timeval tv = {0, 20000};
        if (select(mx + 1, &rd, NULL, NULL, &tv) <= 0) continue;
        if (FD_ISSET(p->listen_fd, &rd) && nc < 16) {
            int fd = accept(p->listen_fd, NULL, NULL);
            if (fd >= 0) clients[nc++] = fd;
        }
        for (int i = 0; i < nc; i++) {
            if (!FD_ISSET(clients[i], &rd)) continue;
            modbus_set_socket(p->ctx, clients[i]);
            int n = modbus_receive(p->ctx, q);
            if (n > 0) {
                pthread_mutex_lock(&p->mu);
                modbus_reply(p->ctx, q, n, p->map);
                pthread_mutex_unlock(&p->mu);
            } else if (n < 0) {
                close(clients[i]);
                clients[i--] = clients[--nc];
            }
        }
    }
    for (int i = 0; i < nc; i++) close(clients[i]);
    return NULL;
}

static void peer_start(peer *p) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->port = free_port();
    p->ctx = modbus_new_tcp("127.0.0.1", p->port);
    p->map = modbus_mapping_new(100, 100, 200, 100);
    p->listen_fd = modbus_tcp_listen(p->ctx, 8);
    assert_true(p->listen_fd >= 0);
    pthread_create(&p->th, NULL, peer_main, p);
}

static void peer_stop(peer *p) {
    p->stop = 1;
    pthread_join(p->th, NULL);
    close(p->listen_fd);
    modbus_mapping_free(p->map);
    modbus_free(p->ctx);
}

/* ---------------- the minimal host ---------------- */
typedef struct dl_item {
    int is_rpc;
    char device[64], method[64];
    json_t *params;
    uint64_t handle;
} dl_item;

typedef struct thost {
    tbgw_host h;
    void *conn;
    pthread_mutex_t mu;
    json_t *records; /* [{"device","ts","telemetry":{},"attributes":{}}] */
    json_t *replies; /* {handle: content} */
    json_t *events;  /* ["connect:D", "disconnect:D"] */
    dl_item dl[16];
    int n_dl;
    pthread_t th;
    int rc;
    uint64_t stats[TBGW_STAT__COUNT];
    json_t *warnings; /* ["dotted: msg"] from config_warning */
} thost;

static json_t *value_json(const tbgw_value *v) {
    switch (v->type) {
    case TBGW_V_BOOL:
        return json_boolean(v->u.b);
    case TBGW_V_INT:
        return json_integer(v->u.i);
    case TBGW_V_DOUBLE:
        return json_real(v->u.d);
    case TBGW_V_STRING:
        return json_string(v->u.s);
    case TBGW_V_JSON:
        return json_loads(v->u.s, JSON_DECODE_ANY, NULL);
    default:
        return json_null();
    }
}

static int h_emit(const tbgw_host *h, tbgw_converted *chain) {
    thost *t = (thost *)h;
    pthread_mutex_lock(&t->mu);
    for (tbgw_converted *c = chain; c; c = c->next) {
        json_t *tel = json_object(), *att = json_object();
        int64_t ts = c->n_telemetry ? c->telemetry[0].ts : 0;
        int same_ts = 1;
        for (size_t i = 0; i < c->n_telemetry; i++) {
            json_object_set_new(tel, c->telemetry[i].key, value_json(&c->telemetry[i].v));
            if (c->telemetry[i].ts != ts) same_ts = 0;
        }
        for (size_t i = 0; i < c->n_attributes; i++)
            json_object_set_new(att, c->attributes[i].key, value_json(&c->attributes[i].v));
        json_array_append_new(t->records, json_pack("{s:s,s:I,s:b,s:o,s:o,s:f}", "device", c->device_name,
                                                    "ts", (json_int_t)ts, "same_ts", same_ts, "telemetry",
                                                    tel, "attributes", att, "mono", (double)tbgw_mono_ms()));
    }
    pthread_mutex_unlock(&t->mu);
    tbgw_converted_free(chain);
    return 0;
}

static int h_connected(const tbgw_host *h, const char *d, const char *type) {
    thost *t = (thost *)h;
    (void)type;
    pthread_mutex_lock(&t->mu);
    json_array_append_new(t->events, json_pack("s+", "connect:", d));
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int h_disconnected(const tbgw_host *h, const char *d) {
    thost *t = (thost *)h;
    pthread_mutex_lock(&t->mu);
    json_array_append_new(t->events, json_pack("s+", "disconnect:", d));
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int h_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    thost *t = (thost *)h;
    (void)success;
    char k[32];
    snprintf(k, sizeof k, "%llu", (unsigned long long)handle);
    pthread_mutex_lock(&t->mu);
    json_object_set_new(t->replies, k, content ? content : json_null());
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int stop_flag;

static void h_stat_add(const tbgw_host *h, tbgw_stat stat, uint64_t n) {
    thost *t = (thost *)h;
    pthread_mutex_lock(&t->mu);
    if ((int)stat >= 0 && stat < TBGW_STAT__COUNT) t->stats[stat] += n;
    pthread_mutex_unlock(&t->mu);
}

static uint64_t stat_get(thost *t, tbgw_stat stat) {
    pthread_mutex_lock(&t->mu);
    uint64_t v = t->stats[stat];
    pthread_mutex_unlock(&t->mu);
    return v;
}

static int h_wait(const tbgw_host *h, int timeout_ms) {
    thost *t = (thost *)h;
    dl_item items[16];
    tbgw_wakefd_drain(h->downlink_fd); /* before taking the queue: a later kick stays readable */
    pthread_mutex_lock(&t->mu);
    int n = t->n_dl;
    memcpy(items, t->dl, sizeof items);
    t->n_dl = 0;
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < n; i++) {
        if (items[i].is_rpc) {
            tbgw_rpc_req r = {.handle = items[i].handle,
                              .device = items[i].device[0] ? items[i].device : NULL,
                              .id = (int64_t)items[i].handle,
                              .method = items[i].method,
                              .params = items[i].params,
                              .timeout_ms = 5000};
            tbgw_connector_modbus.on_rpc(t->conn, &r);
        } else {
            tbgw_attr_update u = {.device = items[i].device, .data = items[i].params};
            tbgw_connector_modbus.on_attribute_update(t->conn, &u);
        }
        json_decref(items[i].params);
    }
    if (timeout_ms > 0) tbgw_sleep_ms(timeout_ms > 5 ? 5 : timeout_ms);
    return stop_flag;
}

static int h_dispatch(const tbgw_host *h) {
    return h_wait(h, 0);
}

static void *run_main(void *arg) {
    thost *t = arg;
    t->rc = tbgw_connector_modbus.run(t->conn);
    return NULL;
}

static void h_config_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    thost *t = (thost *)h;
    json_array_append_new(t->warnings, json_sprintf("%s: %s", dotted ? dotted : "", msg));
}

static void host_init(thost *t) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->h.abi = TBGW_CONNECTOR_ABI;
    t->h.name = "Modbus";
    t->h.type = "modbus";
    t->h.log = tbgw_logger_get("connector.Modbus");
    t->h.conv_log = t->h.log;
    t->h.emit = h_emit;
    t->h.device_connected = h_connected;
    t->h.device_disconnected = h_disconnected;
    t->h.rpc_reply = h_reply;
    t->h.wait = h_wait;
    t->h.dispatch = h_dispatch;
    t->h.downlink_fd = tbgw_wakefd_new();
    t->h.stat_add = h_stat_add;
    t->h.config_warning = h_config_warning;
    t->warnings = json_array();
    t->records = json_array();
    t->replies = json_object();
    t->events = json_array();
    stop_flag = 0;
}

static void host_start(thost *t, const char *cfg_text) {
    json_error_t je;
    json_t *cfg = json_loads(cfg_text, 0, &je);
    if (!cfg) fail_msg("bad test config: %s (line %d)", je.text, je.line);
    tbgw_err err = {0};
    int rc = tbgw_connector_modbus.create(&t->h, cfg, &t->conn, &err);
    if (rc) fail_msg("create: %s", err.msg);
    json_decref(cfg);
    pthread_create(&t->th, NULL, run_main, t);
}

static void host_stop(thost *t) {
    stop_flag = 1;
    tbgw_wakefd_kick(t->h.downlink_fd);
    tbgw_connector_modbus.stop(t->conn);
    pthread_join(t->th, NULL);
    close(t->h.downlink_fd);
    tbgw_connector_modbus.destroy(t->conn);
    json_decref(t->records);
    json_decref(t->replies);
    json_decref(t->events);
    json_decref(t->warnings);
}

static void send_dl(thost *t, int is_rpc, const char *device, const char *method, json_t *params,
                    uint64_t handle) {
    pthread_mutex_lock(&t->mu);
    dl_item *d = &t->dl[t->n_dl++];
    memset(d, 0, sizeof *d);
    d->is_rpc = is_rpc;
    snprintf(d->device, sizeof d->device, "%s", device ? device : "");
    snprintf(d->method, sizeof d->method, "%s", method ? method : "");
    d->params = params;
    d->handle = handle;
    pthread_mutex_unlock(&t->mu);
    tbgw_wakefd_kick(t->h.downlink_fd);
}

/* Waits for the reply to handle; returns it as compact JSON text (caller frees). */
static char *wait_reply(thost *t, uint64_t handle, int timeout_ms) {
    char k[32];
    snprintf(k, sizeof k, "%llu", (unsigned long long)handle);
    int64_t end = tbgw_mono_ms() + timeout_ms;
    while (tbgw_mono_ms() < end) {
        pthread_mutex_lock(&t->mu);
        json_t *r = json_object_get(t->replies, k);
        char *s = r ? json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
                    : NULL;
        pthread_mutex_unlock(&t->mu);
        if (s) return s;
        tbgw_sleep_ms(5);
    }
    fail_msg("no reply for rpc %llu", (unsigned long long)handle);
    return NULL;
}

/* The newest record of a device with a telemetry (or attribute) key, as JSON (caller decrefs). */
static json_t *latest(thost *t, const char *device, const char *key, int timeout_ms) {
    int64_t end = tbgw_mono_ms() + timeout_ms;
    while (tbgw_mono_ms() < end) {
        pthread_mutex_lock(&t->mu);
        json_t *found = NULL;
        for (size_t i = json_array_size(t->records); i-- > 0 && !found;) {
            json_t *r = json_array_get(t->records, i);
            if (strcmp(json_string_value(json_object_get(r, "device")), device)) continue;
            if (json_object_get(json_object_get(r, "telemetry"), key) ||
                json_object_get(json_object_get(r, "attributes"), key))
                found = json_incref(r);
        }
        pthread_mutex_unlock(&t->mu);
        if (found) return found;
        tbgw_sleep_ms(10);
    }
    fail_msg("no data for %s/%s", device, key);
    return NULL;
}

static char *dump_key(json_t *rec, const char *key) {
    json_t *v = json_object_get(json_object_get(rec, "telemetry"), key);
    if (!v) v = json_object_get(json_object_get(rec, "attributes"), key);
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

#define ASSERT_KEY(rec, key, want)                                                                           \
    do {                                                                                                     \
        char *s_ = dump_key(rec, key);                                                                       \
        if (!s_ || strcmp(s_, want)) fail_msg("%s: got %s, want %s", key, s_ ? s_ : "(none)", want);         \
        free(s_);                                                                                            \
    } while (0)

#define POLL_CFG                                                                                             \
    "{\"master\":{\"slaves\":[{\"host\":\"127.0.0.1\",\"port\":%d,\"type\":\"tcp\",\"method\":\"socket\","   \
    "\"unitId\":1,\"deviceName\":\"Meter\",\"deviceType\":\"meter\",\"timeout\":2,\"byteOrder\":\"BIG\","    \
    "\"wordOrder\":\"BIG\",\"pollPeriod\":100,\"timeseries\":["                                              \
    "{\"tag\":\"temperature\",\"type\":\"16int\",\"functionCode\":3,\"objectsCount\":1,\"address\":0,"       \
    "\"divider\":10},"                                                                                       \
    "{\"tag\":\"humidity\",\"type\":\"16uint\",\"functionCode\":3,\"objectsCount\":1,\"address\":1},"        \
    "{\"tag\":\"energy\",\"type\":\"32float\",\"functionCode\":3,\"objectsCount\":2,\"address\":2},"         \
    "{\"tag\":\"counter_le\",\"type\":\"32uint\",\"functionCode\":3,\"objectsCount\":2,\"address\":4,"       \
    "\"byteOrder\":\"LITTLE\",\"wordOrder\":\"LITTLE\"},"                                                    \
    "{\"tag\":\"big64\",\"type\":\"64int\",\"functionCode\":4,\"objectsCount\":4,\"address\":0},"            \
    "{\"tag\":\"relay\",\"type\":\"bits\",\"functionCode\":1,\"objectsCount\":1,\"address\":1},"             \
    "{\"tag\":\"inputs\",\"type\":\"bits\",\"functionCode\":2,\"objectsCount\":3,\"address\":0},"            \
    "{\"tag\":\"state\",\"type\":\"16int\",\"functionCode\":3,\"objectsCount\":1,\"address\":6,"             \
    "\"variants\":{\"1\":\"RUN\",\"0\":\"STOP\"}},"                                                          \
    "{\"tag\":\"cell_${address}\",\"type\":\"16int\",\"functionCode\":3,\"objectsCount\":1,\"address\":"     \
    "\"10-"                                                                                                  \
    "13\","                                                                                                  \
    "\"maxRegistersPerRequest\":2}],"                                                                        \
    "\"attributes\":[{\"tag\":\"model\",\"type\":\"string\",\"functionCode\":3,\"objectsCount\":2,"          \
    "\"address\":20}],"                                                                                      \
    "\"attributeUpdates\":[{\"tag\":\"setpoint\",\"type\":\"16int\",\"functionCode\":6,\"objectsCount\":1,"  \
    "\"address\":30}],"                                                                                      \
    "\"rpc\":[{\"tag\":\"getRelay\",\"type\":\"bits\",\"functionCode\":1,\"objectsCount\":1,\"address\":1}," \
    "{\"tag\":\"setRelay\",\"type\":\"bits\",\"functionCode\":5,\"objectsCount\":1,\"address\":1},"          \
    "{\"tag\":\"setTotal\",\"type\":\"32int\",\"functionCode\":16,\"objectsCount\":2,\"address\":40}]}]}}"

static void seed_peer(peer *p) {
    uint16_t *h = p->map->tab_registers;
    h[0] = 215;
    h[1] = 455;
    h[2] = 0x41B2;
    h[3] = 0xB852;
    h[4] = 0x7856;
    h[5] = 0x3412;
    h[6] = 1;
    for (int i = 0; i < 4; i++) h[10 + i] = (uint16_t)(i + 1);
    h[20] = 0x4142;
    h[21] = 0x3132;
    uint16_t *in = p->map->tab_input_registers;
    in[0] = 0xFFFF;
    in[1] = 0xFFFF;
    in[2] = 0x2152;
    in[3] = 0x4111;
    p->map->tab_bits[1] = 1;
    p->map->tab_input_bits[0] = 1;
    p->map->tab_input_bits[1] = 1;
}

static void test_poll_values(void **st) {
    (void)st;
    peer p;
    peer_start(&p);
    seed_peer(&p);
    thost t;
    host_init(&t);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, POLL_CFG, p.port);
    host_start(&t, cfg);
    json_t *r = latest(&t, "Meter", "temperature", 5000);
    ASSERT_KEY(r, "temperature", "21.5");
    ASSERT_KEY(r, "humidity", "455");
    ASSERT_KEY(r, "energy", "22.34");
    ASSERT_KEY(r, "counter_le", "305419896");
    ASSERT_KEY(r, "big64", "-3735928559");
    ASSERT_KEY(r, "relay", "true");
    ASSERT_KEY(r, "inputs", "[false,true,true]");
    ASSERT_KEY(r, "state", "\"RUN\"");
    ASSERT_KEY(r, "cell_10", "1");
    ASSERT_KEY(r, "cell_13", "4");
    ASSERT_KEY(r, "model", "\"AB12\"");
    assert_true(json_is_true(json_object_get(r, "same_ts")));
    int64_t ts = json_integer_value(json_object_get(r, "ts"));
    assert_true(llabs(ts - tbgw_now_ms()) < 5000);
    json_decref(r);
    pthread_mutex_lock(&t.mu);
    assert_string_equal(json_string_value(json_array_get(t.events, 0)), "connect:Meter");
    pthread_mutex_unlock(&t.mu);
    /* a change on the device shows up on a later poll */
    pthread_mutex_lock(&p.mu);
    p.map->tab_registers[0] = (uint16_t)-40;
    pthread_mutex_unlock(&p.mu);
    int64_t end = tbgw_mono_ms() + 3000;
    int seen = 0;
    while (!seen && tbgw_mono_ms() < end) {
        r = latest(&t, "Meter", "temperature", 1000);
        char *s = dump_key(r, "temperature");
        seen = !strcmp(s, "-4.0");
        free(s);
        json_decref(r);
        tbgw_sleep_ms(20);
    }
    assert_true(seen);
    host_stop(&t);
    peer_stop(&p);
}

static void expect_reply(thost *t, uint64_t handle, const char *want) {
    char *s = wait_reply(t, handle, 5000);
    if (strcmp(s, want)) fail_msg("rpc %llu: got %s, want %s", (unsigned long long)handle, s, want);
    free(s);
}

static int wait_reg(peer *p, int addr, uint16_t want) {
    int64_t end = tbgw_mono_ms() + 3000;
    while (tbgw_mono_ms() < end) {
        pthread_mutex_lock(&p->mu);
        uint16_t v = p->map->tab_registers[addr];
        pthread_mutex_unlock(&p->mu);
        if (v == want) return 1;
        tbgw_sleep_ms(10);
    }
    return 0;
}

static void test_rpc_and_attribute_updates(void **st) {
    (void)st;
    peer p;
    peer_start(&p);
    seed_peer(&p);
    thost t;
    host_init(&t);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, POLL_CFG, p.port);
    host_start(&t, cfg);
    json_decref(latest(&t, "Meter", "temperature", 5000));

    send_dl(&t, 1, "Meter", "getRelay", NULL, 1);
    expect_reply(&t, 1, "{\"result\":{\"value\":true}}");
    send_dl(&t, 1, "Meter", "setRelay", json_false(), 2);
    expect_reply(&t, 2, "{\"result\":{\"value\":false}}");
    assert_int_equal(p.map->tab_bits[1], 0);
    send_dl(&t, 1, "Meter", "setTotal", json_integer(100000), 3);
    expect_reply(&t, 3, "{\"result\":{\"value\":100000}}");
    assert_true(wait_reg(&p, 40, 0x0001) && wait_reg(&p, 41, 0x86A0));
    send_dl(&t, 1, "Meter", "set",
            json_string("type=16int;functionCode=6;objectsCount=1;address=31;value=-5;"), 4);
    expect_reply(&t, 4, "{\"result\":{\"value\":-5}}");
    assert_true(wait_reg(&p, 31, 0xFFFB));
    send_dl(&t, 1, "Meter", "get", json_string("type=16int;functionCode=3;objectsCount=1;address=31;"), 5);
    expect_reply(&t, 5, "{\"result\":{\"value\":-5}}");
    send_dl(&t, 1, "Meter", "foo", NULL, 6);
    expect_reply(&t, 6, "{\"result\":{\"error\":\"Method not found for foo\"}}");
    send_dl(&t, 1, "Meter", "get", json_string("address=1;"), 7);
    char *s = wait_reply(&t, 7, 3000);
    assert_non_null(strstr(s, "\"error\":\"Invalid params for get"));
    free(s);
    /* read past the peer's map: the exception text reaches the platform */
    send_dl(&t, 1, "Meter", "get", json_string("type=16int;functionCode=3;objectsCount=1;address=5000;"), 8);
    expect_reply(&t, 8, "{\"result\":{\"error\":\"Modbus exception 2 (illegal data address) from unit 1\"}}");
    /* connector RPC on every slave */
    send_dl(
        &t, 1, NULL, "get",
        json_pack("{s:s,s:i,s:i,s:i}", "type", "16int", "functionCode", 3, "objectsCount", 1, "address", 1),
        9);
    expect_reply(&t, 9, "[{\"device_name\":\"Meter\",\"result\":{\"value\":455}}]");
    send_dl(&t, 1, NULL, "set",
            json_pack("{s:s,s:i,s:i,s:i,s:i}", "type", "16uint", "functionCode", 6, "objectsCount", 1,
                      "address", 32, "value", 4242),
            10);
    expect_reply(&t, 10, "[{\"device_name\":\"Meter\",\"result\":{\"value\":4242}}]");
    assert_true(wait_reg(&p, 32, 4242));
    /* ad-hoc slave named by the params */
    send_dl(&t, 1, NULL, "get",
            json_pack("{s:s,s:i,s:i,s:i,s:s,s:i,s:i,s:s,s:s}", "type", "16int", "functionCode", 3,
                      "objectsCount", 1, "address", 0, "host", "127.0.0.1", "port", p.port, "unitId", 1,
                      "deviceName", "adhoc", "byteOrder", "BIG"),
            11);
    expect_reply(&t, 11, "[{\"device_name\":\"adhoc\",\"result\":{\"value\":215}}]");
    /* shared attribute update */
    send_dl(&t, 0, "Meter", NULL, json_pack("{s:i,s:i}", "setpoint", 77, "unrelated", 1), 0);
    assert_true(wait_reg(&p, 30, 77));
    host_stop(&t);
    peer_stop(&p);
}

/* Records of device d in [from, to) monotonic ms; fills the largest gap between two of them. */
static int count_records(thost *t, const char *d, double from, double to, double *max_gap) {
    int n = 0;
    double last = -1;
    *max_gap = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < json_array_size(t->records); i++) {
        json_t *r = json_array_get(t->records, i);
        double m = json_real_value(json_object_get(r, "mono"));
        if (strcmp(json_string_value(json_object_get(r, "device")), d) || m < from || m >= to) continue;
        if (last >= 0 && m - last > *max_gap) *max_gap = m - last;
        last = m;
        n++;
    }
    pthread_mutex_unlock(&t->mu);
    return n;
}

#define SLAVE_FMT                                                                                            \
    "{\"host\":\"127.0.0.1\",\"port\":%d,\"unitId\":1,\"deviceName\":\"%s\",\"timeout\":1,"                  \
    "\"pollPeriod\":100,\"retries\":0,\"timeseries\":[{\"tag\":\"v\",\"type\":\"16int\","                    \
    "\"functionCode\":3,\"objectsCount\":1,\"address\":0}]}"

static void test_dead_slaves_isolated(void **st) {
    (void)st;
    peer p1, p2;
    peer_start(&p1);
    peer_start(&p2);
    /* a slave that accepts TCP connections but never answers, and one that refuses them */
    int hung = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    bind(hung, (struct sockaddr *)&a, sizeof a);
    listen(hung, 16);
    socklen_t l = sizeof a;
    getsockname(hung, (struct sockaddr *)&a, &l);
    int refused = free_port();
    char s1[512], s2[512], s3[512], s4[512], cfg[4096];
    snprintf(s1, sizeof s1, SLAVE_FMT, p1.port, "Live");
    snprintf(s2, sizeof s2, SLAVE_FMT, p2.port, "Killed");
    snprintf(s3, sizeof s3, SLAVE_FMT, ntohs(a.sin_port), "Hung");
    snprintf(s4, sizeof s4, SLAVE_FMT, refused, "Refused");
    snprintf(cfg, sizeof cfg, "{\"master\":{\"slaves\":[%s,%s,%s,%s]}}", s3, s4, s1, s2);
    thost t;
    host_init(&t);
    double t0 = (double)tbgw_mono_ms();
    host_start(&t, cfg);
    tbgw_sleep_ms(1500);
    double t1 = (double)tbgw_mono_ms();
    peer_stop(&p2);
    tbgw_sleep_ms(1500);
    double t2 = (double)tbgw_mono_ms(), gap1, gap2, gapk;
    int live1 = count_records(&t, "Live", t0 + 300, t1, &gap1);
    int live2 = count_records(&t, "Live", t1, t2, &gap2);
    int killed_before = count_records(&t, "Killed", t0 + 300, t1, &gapk);
    double g;
    int hung_n = count_records(&t, "Hung", t0, t2, &g), refused_n = count_records(&t, "Refused", t0, t2, &g);
    print_message("live: %d then %d records (max gap %.0f / %.0f ms), killed before: %d\n", live1, live2,
                  gap1, gap2, killed_before);
    /* ~12 and ~15 expected; a poll held up by the hung (1 s timeout) or killed slave would leave a gap
     * of 1000 ms or more */
    assert_true(live1 >= 6 && live2 >= 7);
    assert_true(gap1 < 700 && gap2 < 700);
    assert_true(killed_before >= 6);
    assert_int_equal(hung_n, 0);
    assert_int_equal(refused_n, 0);
    pthread_mutex_lock(&t.mu);
    int disc = 0;
    for (size_t i = 0; i < json_array_size(t.events); i++)
        if (!strcmp(json_string_value(json_array_get(t.events, i)), "disconnect:Killed")) disc = 1;
    pthread_mutex_unlock(&t.mu);
    assert_true(disc);
    host_stop(&t);
    close(hung);
    peer_stop(&p1);
}

static void test_slave_mode(void **st) {
    (void)st;
    int port = free_port();
    char cfg[4096];
    snprintf(
        cfg, sizeof cfg,
        "{\"slave\":{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":%d,\"method\":\"socket\",\"unitId\":1,"
        "\"deviceName\":\"Modbus Slave\",\"pollPeriod\":100,\"sendDataToThingsBoard\":true,"
        "\"byteOrder\":\"BIG\",\"wordOrder\":\"BIG\",\"values\":{\"holding_registers\":{"
        "\"attributes\":[{\"address\":1,\"type\":\"string\",\"tag\":\"sm\",\"objectsCount\":1,\"value\":"
        "\"ON\"}],"
        "\"timeseries\":[{\"address\":2,\"type\":\"16int\",\"tag\":\"smm\",\"objectsCount\":1,\"value\":"
        "12334}],"
        "\"attributeUpdates\":[{\"tag\":\"shared\",\"type\":\"16int\",\"functionCode\":6,\"objectsCount\":1,"
        "\"address\":29,\"value\":1243}],"
        "\"rpc\":[{\"tag\":\"setValue\",\"value\":22,\"type\":\"16int\",\"address\":31,\"objectsCount\":1,"
        "\"functionCode\":6}]},"
        "\"coils_initializer\":{\"attributes\":[{\"address\":5,\"type\":\"bits\",\"tag\":\"coil\","
        "\"objectsCount\":1,\"value\":1}]}}}}",
        port);
    thost t;
    host_init(&t);
    host_start(&t, cfg);
    json_t *r = latest(&t, "Modbus Slave", "smm", 5000);
    ASSERT_KEY(r, "smm", "12334");
    ASSERT_KEY(r, "sm", "\"ON\"");
    ASSERT_KEY(r, "coil", "true");
    json_decref(r);
    /* a libmodbus master talks to the gateway's server */
    modbus_t *c = modbus_new_tcp("127.0.0.1", port);
    modbus_set_slave(c, 1);
    assert_int_equal(modbus_connect(c), 0);
    uint16_t regs[4];
    assert_int_equal(modbus_read_registers(c, 29, 3, regs), 3);
    assert_int_equal(regs[0], 1243);
    assert_int_equal(regs[2], 22);
    assert_int_equal(modbus_write_register(c, 2, 999), 1);
    int64_t end = tbgw_mono_ms() + 3000;
    int seen = 0;
    while (!seen && tbgw_mono_ms() < end) {
        r = latest(&t, "Modbus Slave", "smm", 1000);
        char *s = dump_key(r, "smm");
        seen = !strcmp(s, "999");
        free(s);
        json_decref(r);
        tbgw_sleep_ms(20);
    }
    assert_true(seen);
    send_dl(&t, 1, "Modbus Slave", "setValue", json_integer(55), 1);
    expect_reply(&t, 1, "{\"result\":{\"value\":55}}");
    send_dl(&t, 0, "Modbus Slave", NULL, json_pack("{s:i}", "shared", 7), 0);
    end = tbgw_mono_ms() + 3000;
    do {
        tbgw_sleep_ms(20);
        assert_int_equal(modbus_read_registers(c, 29, 3, regs), 3);
    } while (regs[0] != 7 && tbgw_mono_ms() < end);
    assert_int_equal(regs[0], 7);
    assert_int_equal(regs[2], 55);
    modbus_close(c);
    modbus_free(c);
    host_stop(&t);
}

/* ---------------- a scripted misbehaving MBAP peer (retry semantics) ---------------- */
enum { BAD_NONE = 0, BAD_EMPTY, BAD_SHORT, BAD_CORRUPT, BAD_WRONG_FC };

typedef struct script_peer {
    int lfd, port;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    tbgw_mb_store store;
    int bad_mode, bad_left; /* the next bad_left answers misbehave with bad_mode */
    int requests;           /* read requests seen */
} script_peer;

static void *script_main(void *arg) {
    script_peer *p = arg;
    while (!p->stop) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p->lfd, &rd);
        struct timeval tv = {0, 20000};
        if (select(p->lfd + 1, &rd, NULL, NULL, &tv) <= 0) continue;
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0) continue;
        uint8_t buf[600];
        size_t have = 0;
        while (!p->stop) {
            FD_ZERO(&rd);
            FD_SET(fd, &rd);
            tv = (struct timeval){0, 20000};
            if (select(fd + 1, &rd, NULL, NULL, &tv) <= 0) continue;
            ssize_t n = read(fd, buf + have, sizeof buf - have);
            if (n <= 0) break;
            have += (size_t)n;
            tbgw_mb_frame fr;
            int used;
            while ((used = tbgw_mb_frame_decode(TBGW_MB_FRAMING_SOCKET, 1, buf, have, &fr)) > 0) {
                memmove(buf, buf + used, have - (size_t)used);
                have -= (size_t)used;
                uint8_t rsp[260], out[600];
                int wrote;
                pthread_mutex_lock(&p->mu);
                size_t rl = tbgw_mb_store_execute(&p->store, fr.pdu, fr.pdu_len, rsp, &wrote, NULL);
                int mode = BAD_NONE;
                if (fr.pdu[0] <= 4) {
                    p->requests++;
                    if (p->bad_left > 0) {
                        p->bad_left--;
                        mode = p->bad_mode;
                    }
                }
                pthread_mutex_unlock(&p->mu);
                if (mode == BAD_EMPTY) { /* a well-formed answer carrying no data */
                    rsp[1] = 0;
                    rl = 2;
                } else if (mode == BAD_SHORT && rsp[1] >= 2) { /* one register (or byte) too few */
                    size_t drop = fr.pdu[0] <= 2 ? 1 : 2;
                    rsp[1] = (uint8_t)(rsp[1] - drop);
                    rl -= drop;
                } else if (mode == BAD_WRONG_FC) {
                    rsp[0] = rsp[0] == 3 ? 4 : 3;
                }
                int ol =
                    tbgw_mb_frame_encode(TBGW_MB_FRAMING_SOCKET, fr.tid, fr.unit, rsp, rl, out, sizeof out);
                if (mode == BAD_CORRUPT) out[2] = 0x77; /* MBAP protocol id must be 0 */
                if (write(fd, out, (size_t)ol) != ol) break;
            }
            if (used < 0) have = 0;
        }
        close(fd);
    }
    return NULL;
}

static void script_start(script_peer *p) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    listen(p->lfd, 4);
    socklen_t al = sizeof a;
    getsockname(p->lfd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    pthread_create(&p->th, NULL, script_main, p);
}

static void script_stop(script_peer *p) {
    p->stop = 1;
    pthread_join(p->th, NULL);
    close(p->lfd);
}

static void script_set(script_peer *p, int mode, int count) {
    pthread_mutex_lock(&p->mu);
    p->bad_mode = mode;
    p->bad_left = count;
    pthread_mutex_unlock(&p->mu);
}

static int script_requests(script_peer *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->requests;
    pthread_mutex_unlock(&p->mu);
    return n;
}

#define RETRY_CFG                                                                                            \
    "{\"master\":{\"slaves\":[{\"host\":\"127.0.0.1\",\"port\":%d,\"unitId\":1,\"deviceName\":\"R\","        \
    "\"timeout\":1,\"byteOrder\":\"BIG\",\"wordOrder\":\"BIG\",\"pollPeriod\":800,\"retries\":%d,"           \
    "\"retryOnEmpty\":%s,\"retryOnInvalid\":%s,\"timeseries\":["                                             \
    "{\"tag\":\"a\",\"type\":\"16uint\",\"functionCode\":3,\"objectsCount\":1,\"address\":0},"               \
    "{\"tag\":\"b\",\"type\":\"16uint\",\"functionCode\":3,\"objectsCount\":1,\"address\":1}],"              \
    "\"rpc\":[{\"tag\":\"getB\",\"type\":\"16uint\",\"functionCode\":3,\"objectsCount\":1,\"address\":1}]}]" \
    "}}"

/* One scenario: the first poll's answer misbehaves `bad` times with `mode`; then the peer is correct.
 * retried: the first record must come from the first poll (bad+1 requests, no error counted);
 * otherwise the first poll is dropped with one counted error and the record comes from the second. */
static void retry_case(int mode, int bad, int retries, int on_empty, int on_invalid, int retried) {
    /* requests until the first record: the first poll's attempts (+ the second poll when dropped) */
    int applies = mode == BAD_EMPTY || mode == BAD_SHORT ? on_empty : on_invalid;
    int attempts = applies ? (bad < retries + 1 ? bad + (retried ? 1 : 0) : retries + 1) : 1;
    int want_reqs = retried ? attempts : attempts + 1;
    script_peer p;
    script_start(&p);
    p.store.holding[0] = 1234;
    p.store.holding[1] = 5678;
    script_set(&p, mode, bad);
    char cfg[2048];
    snprintf(cfg, sizeof cfg, RETRY_CFG, p.port, retries, on_empty ? "true" : "false",
             on_invalid ? "true" : "false");
    thost t;
    host_init(&t);
    host_start(&t, cfg);
    json_t *r = latest(&t, "R", "a", 5000);
    int reqs = script_requests(&p);
    uint64_t errors = stat_get(&t, TBGW_STAT_CONNECTOR_ERRORS);
    ASSERT_KEY(r, "a", "1234");
    ASSERT_KEY(r, "b", "5678");
    json_decref(r);
    if (retried) {
        if (reqs != want_reqs || errors != 0)
            fail_msg("mode %d: expected a retried first poll: %d requests, %llu errors", mode, reqs,
                     (unsigned long long)errors);
    } else {
        if (reqs != want_reqs || errors != 1)
            fail_msg("mode %d: expected a dropped first poll: %d requests, %llu errors", mode, reqs,
                     (unsigned long long)errors);
        pthread_mutex_lock(&t.mu);
        size_t n = json_array_size(t.records);
        pthread_mutex_unlock(&t.mu);
        assert_int_equal(n, 1); /* the dropped poll emitted nothing */
    }
    /* RPC reads follow the same rules */
    int before = script_requests(&p);
    script_set(&p, mode, bad);
    send_dl(&t, 1, "R", "getB", NULL, 1);
    char *s = wait_reply(&t, 1, 5000);
    if (retried) {
        if (strcmp(s, "{\"result\":{\"value\":5678}}")) fail_msg("mode %d: rpc: %s", mode, s);
    } else if (!strstr(s, mode == BAD_EMPTY || mode == BAD_SHORT ? "Empty or short response from unit 1"
                                                                 : "Invalid response from unit 1")) {
        fail_msg("mode %d: rpc: %s", mode, s);
    }
    free(s);
    (void)before;
    host_stop(&t);
    script_stop(&p);
}

static void test_retry_semantics(void **st) {
    (void)st;
    /* short/empty answers: retried only with retryOnEmpty */
    retry_case(BAD_EMPTY, 1, 3, 1, 0, 1);
    retry_case(BAD_EMPTY, 1, 3, 0, 1, 0);
    retry_case(BAD_SHORT, 1, 3, 1, 0, 1);
    retry_case(BAD_SHORT, 1, 3, 0, 0, 0);
    /* invalid answers (corrupt MBAP header, wrong function): retried only with retryOnInvalid */
    retry_case(BAD_CORRUPT, 1, 3, 0, 1, 1);
    retry_case(BAD_CORRUPT, 1, 3, 1, 0, 0);
    retry_case(BAD_WRONG_FC, 1, 3, 0, 1, 1);
    retry_case(BAD_WRONG_FC, 1, 3, 0, 0, 0);
    /* retries bounds every kind: two bad answers with one retry drop the poll */
    retry_case(BAD_EMPTY, 2, 1, 1, 1, 0);
    retry_case(BAD_EMPTY, 2, 2, 1, 1, 1);
    /* retries 0: nothing is retried */
    retry_case(BAD_CORRUPT, 1, 0, 1, 1, 0);
}

/* repack (pymodbus builder semantics) on every write path: device RPC, shared attribute update,
 * connector RPC (params may override), and the slave section's initial values. */
static void test_repack_writes(void **st) {
    (void)st;
    peer p;
    peer_start(&p);
    thost t;
    host_init(&t);
    char cfg[4096];
    snprintf(
        cfg, sizeof cfg,
        "{\"master\":{\"slaves\":[{\"host\":\"127.0.0.1\",\"port\":%d,\"unitId\":1,\"deviceName\":\"P\","
        "\"timeout\":2,\"pollPeriod\":100,\"byteOrder\":\"LITTLE\",\"wordOrder\":\"BIG\",\"repack\":true,"
        "\"timeseries\":[{\"tag\":\"x\",\"type\":\"16uint\",\"functionCode\":3,\"objectsCount\":1,"
        "\"address\":0}],"
        "\"attributeUpdates\":[{\"tag\":\"sp\",\"type\":\"32int\",\"functionCode\":16,\"objectsCount\":2,"
        "\"address\":52}],"
        "\"rpc\":[{\"tag\":\"setW\",\"type\":\"16uint\",\"functionCode\":6,\"objectsCount\":1,"
        "\"address\":50}]}]},"
        "\"slave\":{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":%d,\"unitId\":1,"
        "\"sendDataToThingsBoard\":true,\"byteOrder\":\"LITTLE\",\"wordOrder\":\"BIG\",\"repack\":true,"
        "\"deviceName\":\"S\",\"pollPeriod\":100,\"values\":{\"holding_registers\":{\"timeseries\":["
        "{\"tag\":\"a\",\"type\":\"32int\",\"objectsCount\":2,\"address\":0,\"value\":305419896},"
        "{\"tag\":\"b\",\"type\":\"16uint\",\"objectsCount\":1,\"address\":2,\"value\":4660,"
        "\"repack\":false}]}}}}",
        p.port, free_port());
    host_start(&t, cfg);
    json_decref(latest(&t, "P", "x", 5000));
    /* 16uint 0x1234 little: without repack 0x3412, with repack 0x1234 */
    send_dl(&t, 1, "P", "setW", json_integer(0x1234), 1);
    expect_reply(&t, 1, "{\"result\":{\"value\":4660}}");
    assert_true(wait_reg(&p, 50, 0x1234));
    /* 32int 0x12345678, byte LITTLE word BIG: 0x3412 0x7856 without repack, 0x1234 0x5678 with */
    send_dl(&t, 0, "P", NULL, json_pack("{s:i}", "sp", 0x12345678), 0);
    assert_true(wait_reg(&p, 52, 0x1234) && wait_reg(&p, 53, 0x5678));
    /* connector RPC params: repack false overrides the slave's */
    send_dl(&t, 1, NULL, "set",
            json_pack("{s:s,s:i,s:i,s:i,s:i,s:b}", "type", "16uint", "functionCode", 6, "objectsCount", 1,
                      "address", 60, "value", 0x1234, "repack", 0),
            2);
    char *s = wait_reply(&t, 2, 5000);
    free(s);
    assert_true(wait_reg(&p, 60, 0x3412));
    /* the slave section seeds through the same builder: repacked 0x1234 0x5678; item b opted out. The
     * poll decodes with byteOrder LITTLE (no repack on reads), as the reference does. */
    json_t *r = latest(&t, "S", "a", 5000);
    ASSERT_KEY(r, "a", "873625686"); /* 0x34127856: the repacked registers read back little-endian */
    ASSERT_KEY(r, "b", "4660");
    json_decref(r);
    host_stop(&t);
    peer_stop(&p);
}

static void test_old_format(void **st) {
    (void)st;
    peer p;
    peer_start(&p);
    seed_peer(&p);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"server\":{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":%d,\"timeout\":2,"
             "\"byteOrder\":\"BIG\",\"devices\":[{\"unitId\":1,\"deviceName\":\"Old\","
             "\"timeseriesPollPeriod\":100,\"timeseries\":[{\"tag\":\"h\",\"type\":\"16uint\","
             "\"functionCode\":3,\"registerCount\":1,\"address\":1}]}]}}",
             p.port);
    thost t;
    host_init(&t);
    host_start(&t, cfg);
    json_t *r = latest(&t, "Old", "h", 5000);
    ASSERT_KEY(r, "h", "455");
    json_decref(r);
    host_stop(&t);
    peer_stop(&p);
}

static void create_file(const char *name, int want_rc) {
    char path[1024];
    const char *src = getenv("TBGW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/modbus/%s", src ? src : ".", name);
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    if (!cfg) fail_msg("%s: %s", path, je.text);
    thost t;
    host_init(&t);
    tbgw_err err = {0};
    void *self = NULL;
    int rc = tbgw_connector_modbus.create(&t.h, cfg, &self, &err);
    if (rc != want_rc) fail_msg("%s: rc %d: %s", name, rc, err.msg);
    if (self) tbgw_connector_modbus.destroy(self);
    json_decref(cfg);
    json_decref(t.records);
    json_decref(t.replies);
    json_decref(t.events);
    json_decref(t.warnings);
}

static void test_reference_configs(void **st) {
    (void)st;
    create_file("modbus.json", 0);
    create_file("modbus_serial.json", 0);
}

static void expect_config_error(const char *text, const char *want) {
    json_t *cfg = json_loads(text, 0, NULL);
    assert_non_null(cfg);
    thost t;
    host_init(&t);
    tbgw_err err = {0};
    void *self = NULL;
    int rc = tbgw_connector_modbus.create(&t.h, cfg, &self, &err);
    if (rc >= 0) fail_msg("accepted: %s", text);
    if (!strstr(err.msg, want)) fail_msg("error '%s' does not contain '%s'", err.msg, want);
    json_decref(cfg);
    json_decref(t.records);
    json_decref(t.replies);
    json_decref(t.events);
    json_decref(t.warnings);
}

/* uplink_converter: the example plugin (build/plugins/modbus_custom_converter.so) gets the raw data of
 * every poll and its records replace the built-in decoding. */
static void test_custom_uplink_converter(void **st) {
    (void)st;
    const char *bd = getenv("TBGW_BUILD_DIR");
    char dir[1024], so[1100];
    snprintf(dir, sizeof dir, "%s/plugins", bd ? bd : ".");
    snprintf(so, sizeof so, "%s/modbus_custom_converter.so", dir);
    if (access(so, R_OK) != 0) fail_msg("%s not built", so);
    setenv("TBGW_EXTENSIONS_PATH", dir, 1);
    peer p;
    peer_start(&p);
    seed_peer(&p);
    thost t;
    host_init(&t);
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"master\":{\"slaves\":[{\"host\":\"127.0.0.1\",\"port\":%d,\"unitId\":1,\"deviceName\":\"C\","
             "\"timeout\":2,\"pollPeriod\":100,\"uplink_converter\":\"CustomModbusUplinkConverter\","
             "\"timeseries\":[{\"tag\":\"energy\",\"type\":\"32float\",\"functionCode\":3,\"objectsCount\":2,"
             "\"address\":2},{\"tag\":\"relay\",\"type\":\"bits\",\"functionCode\":1,\"objectsCount\":2,"
             "\"address\":0}],"
             "\"attributes\":[{\"tag\":\"model\",\"type\":\"string\",\"functionCode\":3,\"objectsCount\":2,"
             "\"address\":20}]},"
             "{\"host\":\"127.0.0.1\",\"port\":%d,\"unitId\":1,\"deviceName\":\"C2\",\"timeout\":2,"
             "\"pollPeriod\":100,\"uplink_converter\":{\"extension\":\"%s\",\"extensionName\":"
             "\"CustomModbusUplinkConverter\",\"extensionConfig\":{\"scale\":0.5}},"
             "\"timeseries\":[{\"tag\":\"h\",\"type\":\"16uint\",\"functionCode\":3,\"objectsCount\":1,"
             "\"address\":1}]}]}}",
             p.port, p.port, so);
    host_start(&t, cfg);
    json_t *r = latest(&t, "C", "energy", 5000);
    ASSERT_KEY(r, "energy",
               "1102231634");             /* 0x41B2 0xB852 joined, not the float the built-in decoder gives */
    ASSERT_KEY(r, "relay", "\"01\"");     /* coil 0 off, coil 1 on, in address order */
    ASSERT_KEY(r, "model", "1094857010"); /* 0x4142 0x3132 */
    json_decref(r);
    r = latest(&t, "C2", "h", 5000);
    ASSERT_KEY(r, "h", "227.5"); /* 455 * extensionConfig.scale */
    json_decref(r);
    assert_true(stat_get(&t, TBGW_STAT_CONV_PROCESSED) >= 2);
    host_stop(&t);
    peer_stop(&p);
    expect_config_error("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"uplink_converter\":"
                        "\"NoSuchConverter\"}]}}",
                        "master.slaves[0].uplink_converter: no shared object provides NoSuchConverter");
    expect_config_error(
        "{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"uplink_converter\":7}]}}",
        "master.slaves[0].uplink_converter: expected a converter name");
    expect_config_error("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"downlink_converter\":"
                        "\"CustomModbusDownlinkConverter\"}]}}",
                        "master.slaves[0].downlink_converter: custom downlink converters are not supported");
    unsetenv("TBGW_EXTENSIONS_PATH");
}

/* A per-key mistake is reported (path and reason) and skipped; the connector is created. */
static void expect_config_warning(const char *text, const char *want) {
    json_t *cfg = json_loads(text, 0, NULL);
    assert_non_null(cfg);
    thost t;
    host_init(&t);
    tbgw_err err = {0};
    void *self = NULL;
    int rc = tbgw_connector_modbus.create(&t.h, cfg, &self, &err);
    if (rc < 0) fail_msg("refused (%s): %s", err.msg, text);
    int found = 0;
    size_t i;
    json_t *w;
    json_array_foreach(t.warnings, i, w) found |= strstr(json_string_value(w), want) != NULL;
    if (!found) fail_msg("no warning containing '%s' for %s", want, text);
    tbgw_connector_modbus.destroy(self);
    json_decref(cfg);
    json_decref(t.records);
    json_decref(t.replies);
    json_decref(t.events);
    json_decref(t.warnings);
}

static void test_config_errors(void **st) {
    (void)st;
    expect_config_error("{\"master\":{\"slaves\":[{\"unitId\":1}]}}", "master.slaves[0].deviceName");
    expect_config_error("{\"master\":{\"slaves\":[{\"deviceName\":\"a\"}]}}", "master.slaves[0].unitId");
    expect_config_error("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"type\":\"ble\"}]}}",
                        "master.slaves[0].type: expected one of tcp, udp, tls, serial");
    expect_config_warning(
        "{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"timeseries\":[{\"tag\":\"x\","
        "\"type\":\"99int\",\"functionCode\":3,\"address\":0}]}]}}",
        "master.slaves[0].timeseries[0].type: unknown type '99int'");
    expect_config_warning(
        "{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"timeseries\":[{\"tag\":\"x\","
        "\"type\":\"16int\",\"functionCode\":6,\"address\":0}]}]}}",
        "master.slaves[0].timeseries[0].functionCode: expected one of 1, 2, 3, 4");
    expect_config_warning(
        "{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"attributes\":[{\"tag\":\"x\","
        "\"type\":\"16int\",\"functionCode\":3,\"address\":\"9-2\"}]}]}}",
        "master.slaves[0].attributes[0].address");
    expect_config_error("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"type\":\"serial\"}]}}",
                        "master.slaves[0].port: the serial device path is required");
    expect_config_error(
        "{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"reportStrategy\":{\"type\":"
        "\"ON_REPORT_PERIOD\"}}]}}",
        "master.slaves[0].reportStrategy.reportPeriod");
    expect_config_warning(
        "{\"slave\":{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":5026,\"unitId\":1,\"byteOrder\":"
        "\"BIG\",\"sendDataToThingsBoard\":true,\"values\":{\"holding_registers\":{\"timeseries\":[{\"tag\":"
        "\"ok\",\"type\":\"16int\",\"address\":0,\"objectsCount\":1,\"value\":5},{\"tag\":\"bad\",\"type\":"
        "\"4bits\",\"address\":1,\"objectsCount\":1,\"value\":1}]}}}}",
        "slave.values.holding_registers.timeseries[1].type: unknown type '4bits'");
    expect_config_warning("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"timeseries\":[{"
                          "\"type\":\"16int\",\"functionCode\":3,\"address\":0}]}]}}",
                          "master.slaves[0].timeseries[0].tag: required string");
    expect_config_warning("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"attributeUpdates\":["
                          "{\"tag\":\"x\",\"type\":\"4bits\",\"functionCode\":6,\"address\":0}]}]}}",
                          "master.slaves[0].attributeUpdates[0].type: unknown type '4bits'");
    expect_config_warning("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"rpc\":{\"m\":{"
                          "\"type\":\"16int\",\"functionCode\":9,\"address\":0}}}]}}",
                          "master.slaves[0].rpc.m.functionCode: expected one of 1, 2, 3, 4, 5, 6, 15, 16");
    expect_config_warning("{\"master\":{\"slaves\":[{\"deviceName\":\"a\",\"unitId\":1,\"rpc\":[{\"tag\":"
                          "\"r\",\"type\":\"16int\",\"functionCode\":3,\"address\":70000}]}]}}",
                          "master.slaves[0].rpc[0].address: 70000 is out of range 0..65535");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_configs),    cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_poll_values),          cmocka_unit_test(test_rpc_and_attribute_updates),
        cmocka_unit_test(test_dead_slaves_isolated), cmocka_unit_test(test_slave_mode),
        cmocka_unit_test(test_old_format),           cmocka_unit_test(test_retry_semantics),
        cmocka_unit_test(test_repack_writes),        cmocka_unit_test(test_custom_uplink_converter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
