/* OPC-UA connector benchmark: N mapped nodes on an OPC UA server offering Objects/Many with N Double
 * variables that all change every CHANGE_MS. Measures the time from start to the first telemetry
 * covering all nodes, the values/s delivered by the subscription, the gateway's CPU and RSS, and the
 * server's CPU (so one sees whether the server was the limit).
 * Usage: bench_opcua [--peer node|c] [N=10000] [SECONDS=10] [RESCAN_MS] [CHANGE_MS=100]
 * --peer node (default; or TBGW_BENCH_PEER=node): the node-opcua test server (tests/peers/opcua_server.js
 * --many N; needs TBGW_SOURCE_DIR or the current folder = repo). --peer c: the C bench server
 * bench_opcua_peer (built next to bench_opcua). RESCAN_MS = 0: no rescans. With RESCAN_MS the connector
 * rescans every RESCAN_MS (scanPeriodInMillis) and an RPC `get` of node V0 is issued every 500 ms
 * during the measurement: the RPC latencies (p50, p99, max), the longest gap between two deliveries of
 * values, and the values delivered are reported. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/opcua_peer.h"
#include "util/time.h"
#include "util/wakefd.h"
#include <tbgw/connector.h>

extern const tbgw_connector_ops tbgw_connector_opcua;

#define MAX_RPCS 4096

typedef struct bench_host {
    tbgw_host host;
    pthread_mutex_t mu;
    uint64_t values;
    size_t max_record;
    int64_t first_full_ms;
    volatile int stop;
    void *self;
    /* RPCs: sent[i] when queued, answered[i] when the reply came (0 = not yet) */
    int64_t sent[MAX_RPCS], answered[MAX_RPCS];
    int n_rpcs, next_dispatch, bad_replies;
    int64_t last_emit_ms, max_gap_ms; /* longest time without values while measuring */
    int measuring;
    /* start-up: which nodes (keys v0..v{N-1}) delivered a first value */
    uint8_t *seen;
    int n_nodes, distinct;
} bench_host;

static int b_emit(const tbgw_host *h, tbgw_converted *chain) {
    bench_host *b = (bench_host *)h;
    pthread_mutex_lock(&b->mu);
    int64_t now = tbgw_mono_ms();
    if (b->measuring && b->last_emit_ms && now - b->last_emit_ms > b->max_gap_ms)
        b->max_gap_ms = now - b->last_emit_ms;
    b->last_emit_ms = now;
    for (tbgw_converted *c = chain; c; c = c->next) {
        size_t n = tbgw_converted_count(c);
        b->values += n;
        for (size_t i = 0; b->distinct < b->n_nodes && i < c->n_telemetry; i++) {
            const char *k = c->telemetry[i].key;
            int idx = k && k[0] == 'v' ? atoi(k + 1) : -1;
            if (idx >= 0 && idx < b->n_nodes && !b->seen[idx]) {
                b->seen[idx] = 1;
                b->distinct++;
            }
        }
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
    bench_host *b = (bench_host *)h;
    (void)success;
    json_t *v = json_object_get(json_object_get(content, "result"), "value");
    pthread_mutex_lock(&b->mu);
    if (handle < MAX_RPCS && !b->answered[handle]) b->answered[handle] = tbgw_mono_ms();
    if (!json_is_number(v)) b->bad_replies++;
    pthread_mutex_unlock(&b->mu);
    json_decref(content);
    return 0;
}

/* Dispatches the queued RPCs on the connector thread, as the core does inside host->wait. */
static int b_wait(const tbgw_host *h, int ms) {
    bench_host *b = (bench_host *)h;
    tbgw_wakefd_drain(h->downlink_fd);
    pthread_mutex_lock(&b->mu);
    int from = b->next_dispatch, to = b->n_rpcs; /* what is queued now, like the core's inbox */
    b->next_dispatch = to;
    pthread_mutex_unlock(&b->mu);
    for (int i = from; i < to; i++) {
        json_t *params = json_string("v0");
        tbgw_rpc_req r = {(uint64_t)i, "Many", i, "get", params, 10000};
        tbgw_connector_opcua.on_rpc(b->self, &r);
        json_decref(params);
    }
    if (ms > 0) tbgw_wakefd_wait(h->downlink_fd, ms);
    return b->stop;
}

static int b_dispatch(const tbgw_host *h) {
    return b_wait(h, 0);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
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

/* CPU seconds (user + system) used so far by process pid (0 = this process). */
static double cpu_s(pid_t pid) {
    if (pid == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    }
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    const char *p = strrchr(line, ')'); /* fields after the command name: state is field 3 */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Starts bench_opcua_peer (next to this executable) on a free port; fills p (pid, port, url). */
static int c_peer_start(opcua_peer *p, int n, const char *change_ms) {
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 32);
    if (k <= 0) return -1;
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    snprintf(slash + 1, 32, "bench_opcua_peer");
    int fds[2];
    if (pipe(fds)) return -1;
    char nstr[16];
    snprintf(nstr, sizeof nstr, "%d", n);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, "0", nstr, change_ms ? change_ms : "100", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    FILE *f = fdopen(fds[0], "r");
    char line[128];
    int port = 0;
    if (f && fgets(line, sizeof line, f)) sscanf(line, "READY %d", &port);
    if (f) fclose(f);
    p->pid = pid;
    if (port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        p->pid = 0;
        return -1;
    }
    p->port = port;
    snprintf(p->url, sizeof p->url, "opc.tcp://127.0.0.1:%d/", port);
    return 0;
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
    const char *peer_kind = getenv("TBGW_BENCH_PEER") ? getenv("TBGW_BENCH_PEER") : "node";
    const char *pos[4] = {NULL, NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            peer_kind = argv[++i];
        else if (npos < 4)
            pos[npos++] = argv[i];
    }
    int c_peer = strcmp(peer_kind, "c") == 0;
    if (!c_peer && strcmp(peer_kind, "node") != 0) {
        fprintf(stderr, "--peer: node or c\n");
        return 2;
    }
    int n = pos[0] ? atoi(pos[0]) : 10000;
    int secs = pos[1] ? atoi(pos[1]) : 10;
    int rescan_ms = pos[2] ? atoi(pos[2]) : 0;
    const char *change_ms = pos[3];
    if (!getenv("TBGW_SOURCE_DIR")) setenv("TBGW_SOURCE_DIR", ".", 0);
    char many[16];
    snprintf(many, sizeof many, "%d", n);
    opcua_peer peer = {0};
    if (change_ms) peer_extra[0] = "--many-period", peer_extra[1] = change_ms;
    if (c_peer ? c_peer_start(&peer, n, change_ms) : peer_start(&peer, 0, NULL, many)) {
        fprintf(stderr, c_peer ? "cannot start bench_opcua_peer (built next to bench_opcua)\n"
                               : "cannot start the node-opcua server (tests/peers)\n");
        return 1;
    }
    double peer_cpu0 = cpu_s(peer.pid);
    json_t *cfg = json_pack(
        "{s:{s:s,s:b,s:i},s:[{s:s,s:{s:s,s:s},s:[]}]}", "server", "url", peer.url, "enableSubscriptions", 1,
        "subCheckPeriodInMillis", 100, "mapping", "deviceNodePattern", "Root\\.Objects\\.Many", "deviceInfo",
        "deviceNameExpression", "Many", "deviceNameExpressionSource", "constant", "timeseries");
    if (rescan_ms > 0)
        json_object_set_new(json_object_get(cfg, "server"), "scanPeriodInMillis", json_integer(rescan_ms));
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
    b.host.dispatch = b_dispatch;
    b.host.downlink_fd = tbgw_wakefd_new();
    b.host.stat_add = b_stat;
    b.host.set_state = b_state;
    pthread_mutex_init(&b.mu, NULL);
    b.n_nodes = n;
    b.seen = calloc((size_t)(n > 0 ? n : 1), 1);
    if (!b.seen) return 1;
    void *self = NULL;
    tbgw_err err = {0};
    if (tbgw_connector_opcua.create(&b.host, cfg, &self, &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    json_decref(cfg);
    b.self = self;
    int64_t t0 = tbgw_mono_ms();
    pthread_t th;
    pthread_create(&th, NULL, run, self);
    /* start-up: until every one of the n nodes delivered a value */
    int64_t full = -1;
    while (tbgw_mono_ms() - t0 < 120000) {
        pthread_mutex_lock(&b.mu);
        int got = b.distinct;
        pthread_mutex_unlock(&b.mu);
        if (got >= n) {
            full = tbgw_mono_ms() - t0;
            break;
        }
        tbgw_sleep_ms(10);
    }
    pthread_mutex_lock(&b.mu);
    uint64_t v0 = b.values;
    pthread_mutex_unlock(&b.mu);
    int64_t m0 = tbgw_mono_ms();
    double gw_cpu_start = cpu_s(0), peer_cpu_start = cpu_s(peer.pid);
    pthread_mutex_lock(&b.mu);
    b.measuring = 1;
    b.last_emit_ms = m0;
    pthread_mutex_unlock(&b.mu);
    if (rescan_ms > 0) {
        while (tbgw_mono_ms() - m0 < secs * 1000) {
            pthread_mutex_lock(&b.mu);
            if (b.n_rpcs < MAX_RPCS) b.sent[b.n_rpcs++] = tbgw_mono_ms();
            tbgw_wakefd_kick(b.host.downlink_fd);
            pthread_mutex_unlock(&b.mu);
            tbgw_sleep_ms(500);
        }
        tbgw_sleep_ms(2000); /* the last RPCs are answered */
    } else {
        tbgw_sleep_ms(secs * 1000);
    }
    double gw_cpu_end = cpu_s(0), peer_cpu_end = cpu_s(peer.pid);
    pthread_mutex_lock(&b.mu);
    uint64_t v1 = b.values;
    b.measuring = 0;
    int64_t gap = b.max_gap_ms;
    if (tbgw_mono_ms() - b.last_emit_ms > gap) gap = tbgw_mono_ms() - b.last_emit_ms;
    int nr = b.n_rpcs, unanswered = 0, bad = b.bad_replies;
    int64_t *lat = malloc((size_t)(nr ? nr : 1) * sizeof *lat);
    int nl = 0;
    for (int i = 0; lat && i < nr; i++) {
        if (b.answered[i])
            lat[nl++] = b.answered[i] - b.sent[i];
        else
            unanswered++;
    }
    pthread_mutex_unlock(&b.mu);
    double window_s = (double)(tbgw_mono_ms() - m0) / 1000.0;
    double rate = (double)(v1 - v0) / window_s;
    if (rescan_ms > 0 && lat) {
        qsort(lat, (size_t)nl, sizeof *lat, cmp_i64);
        printf("rescan_ms=%d rpcs=%d unanswered=%d bad=%d rpc_ms_p50=%lld p99=%lld max=%lld "
               "longest_gap_without_values_ms=%lld\n",
               rescan_ms, nr, unanswered, bad, nl ? (long long)lat[nl / 2] : -1LL,
               nl ? (long long)lat[(nl * 99) / 100] : -1LL, nl ? (long long)lat[nl - 1] : -1LL,
               (long long)gap);
    }
    free(lat);
    long rss = rss_kb();
    b.stop = 1;
    tbgw_wakefd_kick(b.host.downlink_fd);
    tbgw_connector_opcua.stop(self);
    pthread_join(th, NULL);
    tbgw_connector_opcua.destroy(self);
    free(b.seen);
    double peer_cpu_total = cpu_s(peer.pid) - peer_cpu0;
    if (c_peer && peer.pid > 0) { /* SIGTERM: it prints its counters */
        kill(peer.pid, SIGTERM);
        waitpid(peer.pid, NULL, 0);
        peer.pid = 0;
    }
    peer_stop(&peer);
    double cpu = cpu_s(0);
    int period = change_ms ? atoi(change_ms) : 100;
    printf("peer=%s nodes=%d offered_changes_per_s=%.0f startup_to_all_values_ms=%lld values_per_s=%.0f "
           "rss_kb=%ld gateway_cpu_s=%.2f gateway_cpu_pct=%.0f peer_cpu_pct=%.0f peer_cpu_s=%.2f\n",
           c_peer ? "c" : "node", n, period > 0 ? (double)n * 1000.0 / period : 0.0, (long long)full, rate,
           rss, cpu, (gw_cpu_end - gw_cpu_start) * 100.0 / window_s,
           (peer_cpu_end - peer_cpu_start) * 100.0 / window_s, peer_cpu_total);
    return full < 0;
}
