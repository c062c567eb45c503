/* HTTP peer for the HTTP connector benches, on the HTTP module (tbgw_http.so, libmicrohttpd, the same
 * options the REST connector uses).
 *   bench_http_bare -p port [-t threads]             answers 200 with an empty body: the ceiling of
 *                                                    the REST bench
 *   bench_http_bare -p port -b BODY -P period_ms     a device API for the Request bench: answers BODY
 *                                                    (JSON) and, per path, measures the interval
 *                                                    between requests; on SIGTERM prints one JSON line
 *                                                    (requests, paths, interval error p50/p99/max)
 * Runs until killed; prints "ready" on stderr once listening. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "modules/http/http_module.h"
#include "util/module.h"

#define MAX_PATHS 65536
#define HIST_MS   10000

static const char *body;
static long period_ms;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *path;
    int64_t last;
} paths[MAX_PATHS];
static long n_paths, requests, intervals, hist[HIST_MS + 1];

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Per path: |interval - period| into the histogram (open addressing on the path text). */
static void account(const char *path) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    int64_t t = now_ms();
    pthread_mutex_lock(&mu);
    requests++;
    for (size_t i = h % MAX_PATHS, k = 0; k < MAX_PATHS; i = (i + 1) % MAX_PATHS, k++) {
        if (!paths[i].path) {
            paths[i].path = strdup(path);
            paths[i].last = t;
            n_paths++;
            break;
        }
        if (!strcmp(paths[i].path, path)) {
            int64_t err = t - paths[i].last - period_ms;
            if (err < 0) err = -err;
            hist[err > HIST_MS ? HIST_MS : err]++;
            intervals++;
            paths[i].last = t;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

static long pct(double q) {
    long want = (long)(q * (double)intervals), acc = 0;
    for (long i = 0; i <= HIST_MS; i++)
        if ((acc += hist[i]) > want) return i;
    return HIST_MS;
}

static int handler(void *ud, const tbgw_http_request *rq, tbgw_http_reply *out) {
    (void)ud;
    out->status = 200;
    out->ctype = body ? "application/json" : "text/plain";
    if (body) {
        out->body = strdup(body);
        out->len = strlen(body);
        account(rq->path);
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = 0, opt;
    unsigned threads = 0;
    while ((opt = getopt(argc, argv, "p:t:b:P:")) != -1) {
        if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 't')
            threads = (unsigned)atoi(optarg);
        else if (opt == 'b')
            body = optarg;
        else if (opt == 'P')
            period_ms = atol(optarg);
    }
    tbgw_err err = {0};
    const tbgw_http_module *m = tbgw_module_symbol(TBGW_HTTP_MODULE_NAME, TBGW_HTTP_MODULE_SYMBOL, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    tbgw_http_opts o = {.max_connections = 10000, .timeout_s = 30, .threads = threads, .max_body = 1u << 20};
    o.sa.sin_family = AF_INET;
    o.sa.sin_port = htons((uint16_t)port);
    o.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char text[200];
    int bound;
    void *s = m->start_ex(&o, handler, NULL, &bound, text, sizeof text);
    if (!s) {
        fprintf(stderr, "%s\n", text);
        return 1;
    }
    fprintf(stderr, "ready on %d\n", bound);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    m->stop(s);
    if (body) {
        long mx = 0;
        for (long i = 0; i <= HIST_MS; i++)
            if (hist[i]) mx = i;
        printf("{\"requests\":%ld,\"paths\":%ld,\"intervals\":%ld,\"err_p50_ms\":%ld,\"err_p99_ms\":%ld,"
               "\"err_max_ms\":%ld}\n",
               requests, n_paths, intervals, pct(0.5), pct(0.99), mx);
    }
    return 0;
}
