/* OPC-UA connector benchmark: N mapped nodes on the node-opcua test server (opcua_server.js --many N,
 * every node changing every 100 ms). Measures the time from start to the first telemetry covering
 * all nodes, the values/s delivered by the subscription, and the process RSS.
 * Usage: bench_opcua [N=10000] [SECONDS=10]   (needs TBGW_SOURCE_DIR or the current folder = repo) */
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/opcua_peer.h"
#include "util/time.h"
#include <tbgw/connector.h>

extern const tbgw_connector_ops tbgw_connector_opcua;

typedef struct bench_host {
    tbgw_host host;
    pthread_mutex_t mu;
    uint64_t values;
    size_t max_record;
    int64_t first_full_ms;
    volatile int stop;
} bench_host;

static int b_emit(const tbgw_host *h, tbgw_converted *chain) {
    bench_host *b = (bench_host *)h;
    pthread_mutex_lock(&b->mu);
    for (tbgw_converted *c = chain; c; c = c->next) {
        size_t n = tbgw_converted_count(c);
        b->values += n;
        if (n > b->max_record) b->max_record = n;
    }
    pthread_mutex_unlock(&b->mu);
    tbgw_converted_free(chain);
    return 0;
}

static int b_connected(const tbgw_host *h, const char *d, const char *t) {
    (void)h, (void)d, (void)t;
    return 0;
}

static int b_disconnected(const tbgw_host *h, const char *d) {
    (void)h, (void)d;
    return 0;
}

static int b_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    (void)h, (void)handle, (void)success;
    json_decref(content);
    return 0;
}

static int b_wait(const tbgw_host *h, int ms) {
    if (ms > 0) tbgw_sleep_ms(ms);
    return ((bench_host *)h)->stop;
}

static void b_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    (void)h, (void)s, (void)n;
}

static void b_state(const tbgw_host *h, tbgw_conn_state s, const char *t) {
    (void)h, (void)s, (void)t;
}

static void *run(void *self) {
    tbgw_connector_opcua.run(self);
    return NULL;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int secs = argc > 2 ? atoi(argv[2]) : 10;
    if (!getenv("TBGW_SOURCE_DIR")) setenv("TBGW_SOURCE_DIR", ".", 0);
    char many[16];
    snprintf(many, sizeof many, "%d", n);
    opcua_peer peer = {0};
    if (peer_start(&peer, 0, NULL, many)) {
        fprintf(stderr, "cannot start the node-opcua server (tests/peers)\n");
        return 1;
    }
    json_t *cfg = json_pack(
        "{s:{s:s,s:b,s:i},s:[{s:s,s:{s:s,s:s},s:[]}]}", "server", "url", peer.url, "enableSubscriptions", 1,
        "subCheckPeriodInMillis", 100, "mapping", "deviceNodePattern", "Root\\.Objects\\.Many", "deviceInfo",
        "deviceNameExpression", "Many", "deviceNameExpressionSource", "constant", "timeseries");
    json_t *ts = json_object_get(json_array_get(json_object_get(cfg, "mapping"), 0), "timeseries");
    for (int i = 0; i < n; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "v%d", i);
        snprintf(val, sizeof val, "${V%d}", i);
        json_array_append_new(ts, json_pack("{s:s,s:s,s:s}", "key", key, "type", "path", "value", val));
    }
    bench_host b;
    memset(&b, 0, sizeof b);
    b.host.abi = TBGW_CONNECTOR_ABI;
    b.host.name = "bench";
    b.host.type = "opcua";
    b.host.log = tbgw_logger_get("connector.bench");
    b.host.conv_log = b.host.log;
    b.host.emit = b_emit;
    b.host.device_connected = b_connected;
    b.host.device_disconnected = b_disconnected;
    b.host.rpc_reply = b_reply;
    b.host.wait = b_wait;
    b.host.stat_add = b_stat;
    b.host.set_state = b_state;
    pthread_mutex_init(&b.mu, NULL);
    void *self = NULL;
    tbgw_err err = {0};
    if (tbgw_connector_opcua.create(&b.host, cfg, &self, &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    json_decref(cfg);
    int64_t t0 = tbgw_mono_ms();
    pthread_t th;
    pthread_create(&th, NULL, run, self);
    /* start-up: until all n initial values arrived */
    int64_t full = -1;
    while (tbgw_mono_ms() - t0 < 120000) {
        pthread_mutex_lock(&b.mu);
        uint64_t v = b.values;
        pthread_mutex_unlock(&b.mu);
        if (v >= (uint64_t)n) {
            full = tbgw_mono_ms() - t0;
            break;
        }
        tbgw_sleep_ms(10);
    }
    pthread_mutex_lock(&b.mu);
    uint64_t v0 = b.values;
    pthread_mutex_unlock(&b.mu);
    int64_t m0 = tbgw_mono_ms();
    tbgw_sleep_ms(secs * 1000);
    pthread_mutex_lock(&b.mu);
    uint64_t v1 = b.values;
    pthread_mutex_unlock(&b.mu);
    double rate = (double)(v1 - v0) * 1000.0 / (double)(tbgw_mono_ms() - m0);
    long rss = rss_kb();
    b.stop = 1;
    tbgw_connector_opcua.stop(self);
    pthread_join(th, NULL);
    tbgw_connector_opcua.destroy(self);
    peer_stop(&peer);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    printf("nodes=%d startup_to_all_values_ms=%lld values_per_s=%.0f rss_kb=%ld gateway_cpu_s=%.2f\n", n,
           (long long)full, rate, rss, cpu);
    return full < 0;
}
