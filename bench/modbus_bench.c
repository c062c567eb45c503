/* Modbus throughput and scale benchmark.
 *
 * A. One TCP connection to a libmodbus slave (bench_modbus_slave, a separate process): read 10 holding
 *    registers back to back for a fixed time with a bare blocking libmodbus loop, then with tbgw's
 *    non-blocking stack (tbgw_mb_loop). Reports polls/s of each.
 * B. The whole Modbus connector (through a minimal in-process host) polling N slaves x 10 registers
 *    every 100 ms, the slaves being N servers on distinct ports in a child process. Reports achieved
 *    polls/s, poll-interval jitter, CPU of the connector process and RSS; during the run RPC writes
 *    are injected and their latency (request handed to the connector -> reply) is measured.
 *
 * usage: bench_modbus_bench [seconds_per_run (default 5)] [slave counts... (default 100 1000)]
 *        bench_modbus_bench --serve N: only the slaves of B, N servers on distinct ports, for a gateway
 *        in another process (bench/memory.py); writes their ports (native ints) to stdout, serves
 *        until killed. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <modbus.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <tbgw/connector.h>

#include "proto/modbus/mb_loop.h"
#include "util/time.h"
#include "util/wakefd.h"

extern const tbgw_connector_ops tbgw_connector_modbus;

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_dbl);
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

/* ---------------- A: one connection ---------------- */
static pid_t start_libmodbus_slave(const char *self, int port) {
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", self);
    char *slash = strrchr(bin, '/');
    snprintf(slash ? slash + 1 : bin, sizeof bin - (size_t)(slash ? slash + 1 - bin : 0),
             "bench_modbus_slave");
    pid_t pid = fork();
    if (pid == 0) {
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        execl(bin, bin, "tcp", ps, "-h", "0=1,1=2,2=3,3=4,4=5,5=6,6=7,7=8,8=9,9=10", (char *)NULL);
        _exit(127);
    }
    tbgw_sleep_ms(300);
    return pid;
}

static int64_t a_done, a_errors;
static tbgw_mb_conn *a_conn;

static void a_cb(void *ud, int status, const tbgw_mb_rsp *rsp) {
    (void)ud;
    if (status == 0 && !rsp->exception)
        a_done++;
    else
        a_errors++;
    tbgw_mb_req req = {.fc = 3, .addr = 0, .count = 10};
    tbgw_mb_conn_submit(a_conn, 1, &req, 0, a_cb, NULL);
}

static void part_a(const char *self, double secs) {
    int port = free_port();
    pid_t pid = start_libmodbus_slave(self, port);
    /* bare libmodbus */
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    if (modbus_connect(ctx) < 0) {
        fprintf(stderr, "libmodbus connect: %s\n", modbus_strerror(errno));
        kill(pid, SIGTERM);
        return;
    }
    modbus_set_slave(ctx, 1);
    uint16_t regs[10];
    int64_t n = 0, t0 = tbgw_mono_ms();
    while (tbgw_mono_ms() - t0 < (int64_t)(secs * 1000))
        if (modbus_read_registers(ctx, 0, 10, regs) == 10) n++;
    double bare = (double)n / ((double)(tbgw_mono_ms() - t0) / 1000.0);
    modbus_close(ctx);
    modbus_free(ctx);
    /* tbgw stack */
    tbgw_logger *lg = tbgw_logger_get("bench");
    tbgw_mb_loop *l = tbgw_mb_loop_new(lg);
    tbgw_mb_endpoint ep = {
        .transport = TBGW_MB_TCP, .framing = TBGW_MB_FRAMING_SOCKET, .port = port, .timeout_ms = 3000};
    ep.host = "127.0.0.1";
    a_conn = tbgw_mb_conn_new(l, &ep);
    tbgw_mb_req req = {.fc = 3, .addr = 0, .count = 10};
    tbgw_mb_conn_submit(a_conn, 1, &req, 0, a_cb, NULL);
    t0 = tbgw_mono_ms();
    while (tbgw_mono_ms() - t0 < (int64_t)(secs * 1000)) tbgw_mb_loop_run(l, 10);
    double ours = (double)a_done / ((double)(tbgw_mono_ms() - t0) / 1000.0);
    tbgw_mb_loop_free(l);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    printf("A. one TCP connection, 10 registers per read, %.0f s each:\n", secs);
    printf("   bare libmodbus loop : %8.0f polls/s (%.1f us per round trip)\n", bare, 1e6 / bare);
    printf("   tbgw modbus stack   : %8.0f polls/s (%.1f us per round trip), %.0f%% of bare, %lld errors\n",
           ours, 1e6 / ours, 100.0 * ours / bare, (long long)a_errors);
}

/* ---------------- B: the connector at scale ---------------- */
typedef struct bhost {
    tbgw_host h;
    void *conn;
    pthread_mutex_t mu;
    int nslaves;
    int64_t *last_emit; /* per slave, mono us */
    double *intervals;
    size_t n_int, cap_int;
    int64_t records;
    /* injected RPC */
    int pending_rpc;
    uint64_t rpc_handle;
    int64_t rpc_sent_us;
    char rpc_device[64];
    double lat[4096];
    size_t n_lat;
    volatile int stop;
} bhost;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int b_emit(const tbgw_host *h, tbgw_converted *c) {
    bhost *b = (bhost *)h;
    int64_t now = mono_us();
    pthread_mutex_lock(&b->mu);
    for (tbgw_converted *r = c; r; r = r->next) {
        int idx = atoi(r->device_name + 1);
        if (idx >= 0 && idx < b->nslaves) {
            if (b->last_emit[idx] && b->n_int < b->cap_int)
                b->intervals[b->n_int++] = (double)(now - b->last_emit[idx]) / 1000.0;
            b->last_emit[idx] = now;
        }
        b->records++;
    }
    pthread_mutex_unlock(&b->mu);
    tbgw_converted_free(c);
    return 0;
}

static int b_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    bhost *b = (bhost *)h;
    (void)success;
    int64_t now = mono_us();
    pthread_mutex_lock(&b->mu);
    if (handle == b->rpc_handle && b->n_lat < 4096)
        b->lat[b->n_lat++] = (double)(now - b->rpc_sent_us) / 1000.0;
    pthread_mutex_unlock(&b->mu);
    json_decref(content);
    return 0;
}

static int b_noop_dev(const tbgw_host *h, const char *d, const char *t) {
    (void)h, (void)d, (void)t;
    return 0;
}

static int b_noop_disc(const tbgw_host *h, const char *d) {
    (void)h, (void)d;
    return 0;
}

static int b_wait(const tbgw_host *h, int timeout_ms) {
    bhost *b = (bhost *)h;
    tbgw_wakefd_drain(h->downlink_fd);
    pthread_mutex_lock(&b->mu);
    int go = b->pending_rpc;
    b->pending_rpc = 0;
    char dev[64];
    snprintf(dev, sizeof dev, "%s", b->rpc_device);
    uint64_t handle = b->rpc_handle;
    pthread_mutex_unlock(&b->mu);
    if (go) {
        json_t *p = json_string("type=16uint;functionCode=6;objectsCount=1;address=20;value=42;");
        tbgw_rpc_req r = {.handle = handle,
                          .device = dev,
                          .id = (int64_t)handle,
                          .method = "set",
                          .params = p,
                          .timeout_ms = 5000};
        tbgw_connector_modbus.on_rpc(b->conn, &r);
        json_decref(p);
    }
    if (timeout_ms > 0) tbgw_wakefd_wait(h->downlink_fd, timeout_ms);
    return b->stop;
}

static int b_dispatch(const tbgw_host *h) {
    return b_wait(h, 0);
}

static void *b_run(void *arg) {
    bhost *b = arg;
    tbgw_connector_modbus.run(b->conn);
    return NULL;
}

/* Child process: n servers on consecutive listening sockets, ports written to fd. */
static void serve_slaves(int n, int fd) {
    tbgw_mb_loop *l = tbgw_mb_loop_new(tbgw_logger_get("bench.slaves"));
    tbgw_mb_store *store = calloc(1, sizeof *store);
    for (int i = 0; i < 10; i++) store->holding[i] = (uint16_t)(i + 1);
    for (int i = 0; i < n; i++) {
        tbgw_mb_endpoint ep = {.transport = TBGW_MB_TCP, .framing = TBGW_MB_FRAMING_SOCKET, .port = 0};
        ep.host = "127.0.0.1";
        tbgw_err err;
        tbgw_mb_server *s = tbgw_mb_server_new(l, &ep, 0, store, NULL, NULL, &err);
        int port = s ? tbgw_mb_server_port(s) : -1;
        if (write(fd, &port, sizeof port) != sizeof port) _exit(1);
    }
    close(fd);
    for (;;) tbgw_mb_loop_run(l, 100);
}

static void part_b(int n, double secs) {
    struct rlimit rl = {8192, 8192};
    setrlimit(RLIMIT_NOFILE, &rl);
    int pfd[2];
    if (pipe(pfd)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        serve_slaves(n, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    json_t *slaves = json_array();
    for (int i = 0; i < n; i++) {
        int port;
        if (read(pfd[0], &port, sizeof port) != sizeof port || port <= 0) {
            fprintf(stderr, "slave server %d failed\n", i);
            kill(pid, SIGKILL);
            return;
        }
        json_t *ts = json_array();
        for (int k = 0; k < 10; k++) {
            char tag[16];
            snprintf(tag, sizeof tag, "r%d", k);
            json_array_append_new(ts, json_pack("{s:s,s:s,s:i,s:i,s:i}", "tag", tag, "type", "16uint",
                                                "functionCode", 3, "objectsCount", 1, "address", k));
        }
        char name[32];
        snprintf(name, sizeof name, "S%d", i);
        json_array_append_new(slaves, json_pack("{s:s,s:i,s:i,s:s,s:i,s:i,s:o}", "host", "127.0.0.1", "port",
                                                port, "unitId", 1, "deviceName", name, "pollPeriod", 100,
                                                "timeout", 5, "timeseries", ts));
    }
    close(pfd[0]);
    json_t *cfg = json_pack("{s:{s:o}}", "master", "slaves", slaves);
    bhost b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    b.h.abi = TBGW_CONNECTOR_ABI;
    b.h.name = "bench";
    b.h.type = "modbus";
    b.h.log = tbgw_logger_get("connector.bench");
    b.h.conv_log = b.h.log;
    b.h.emit = b_emit;
    b.h.rpc_reply = b_reply;
    b.h.wait = b_wait;
    b.h.dispatch = b_dispatch;
    b.h.downlink_fd = tbgw_wakefd_new();
    b.h.device_connected = b_noop_dev;
    b.h.device_disconnected = b_noop_disc;
    b.nslaves = n;
    b.last_emit = calloc((size_t)n, sizeof *b.last_emit);
    b.cap_int = (size_t)(n * (secs * 12 + 20));
    b.intervals = calloc(b.cap_int, sizeof *b.intervals);
    tbgw_err err;
    if (tbgw_connector_modbus.create(&b.h, cfg, &b.conn, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        return;
    }
    json_decref(cfg);
    pthread_t th;
    pthread_create(&th, NULL, b_run, &b);
    tbgw_sleep_ms(1000); /* warm-up: connects and staggered first polls */
    pthread_mutex_lock(&b.mu);
    b.n_int = 0;
    b.records = 0;
    pthread_mutex_unlock(&b.mu);
    double c0 = cpu_s();
    int64_t t0 = tbgw_mono_ms();
    uint64_t handle = 0;
    while (tbgw_mono_ms() - t0 < (int64_t)(secs * 1000)) {
        tbgw_sleep_ms(20);
        pthread_mutex_lock(&b.mu);
        b.rpc_handle = ++handle;
        b.rpc_sent_us = mono_us();
        snprintf(b.rpc_device, sizeof b.rpc_device, "S%d", (int)(handle * 7919 % (uint64_t)n));
        b.pending_rpc = 1;
        tbgw_wakefd_kick(b.h.downlink_fd);
        pthread_mutex_unlock(&b.mu);
    }
    double wall = (double)(tbgw_mono_ms() - t0) / 1000.0, cpu = cpu_s() - c0;
    pthread_mutex_lock(&b.mu);
    int64_t recs = b.records;
    size_t ni = b.n_int;
    double *dev = malloc((ni ? ni : 1) * sizeof *dev);
    for (size_t i = 0; i < ni; i++) dev[i] = fabs(b.intervals[i] - 100.0);
    size_t nl = b.n_lat;
    pthread_mutex_unlock(&b.mu);
    long rss = rss_kb();
    b.stop = 1;
    tbgw_wakefd_kick(b.h.downlink_fd);
    tbgw_connector_modbus.stop(b.conn);
    pthread_join(th, NULL);
    tbgw_connector_modbus.destroy(b.conn);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    printf("B. connector, %d slaves x 10 registers every 100 ms (%d TCP connections), %.0f s:\n", n, n, secs);
    printf("   achieved %.0f polls/s of %d target (%.1f%%), CPU %.0f%% of one core, RSS %ld kB\n",
           (double)recs / wall, n * 10, 100.0 * (double)recs / wall / (n * 10.0), 100.0 * cpu / wall, rss);
    printf("   poll interval deviation from 100 ms: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           pct(dev, ni, 0.5), pct(dev, ni, 0.99), pct(dev, ni, 1.0));
    printf("   RPC write latency under load (%zu writes): p50 %.2f ms, p99 %.2f ms\n", nl,
           pct(b.lat, nl, 0.5), pct(b.lat, nl, 0.99));
    free(dev);
    free(b.intervals);
    free(b.last_emit);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc > 2 && !strcmp(argv[1], "--serve")) {
        struct rlimit rl = {16384, 16384};
        setrlimit(RLIMIT_NOFILE, &rl);
        tbgw_logger_get("bench.slaves")->level = TBGW_ERROR;
        serve_slaves(atoi(argv[2]), STDOUT_FILENO);
        return 0;
    }
    double secs = argc > 1 ? atof(argv[1]) : 5;
    if (secs <= 0) secs = 5;
    tbgw_logger_get("connector.bench")->level = TBGW_ERROR;
    tbgw_logger_get("bench")->level = TBGW_ERROR;
    tbgw_logger_get("bench.slaves")->level = TBGW_ERROR;
    part_a(argv[0], secs);
    if (argc > 2)
        for (int i = 2; i < argc; i++) part_b(atoi(argv[i]), secs);
    else {
        part_b(100, secs);
        part_b(1000, secs);
    }
    return 0;
}
