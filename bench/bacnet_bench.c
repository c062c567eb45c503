/* BACnet connector benchmark: the whole connector (through a minimal in-process host that counts
 * what is emitted) against N simulated devices x M analog inputs, each device its own UDP socket in
 * a child process built on the project's BACnet codec (Who-Is -> I-Am, ReadPropertyMultiple,
 * SubscribeCOV, COV notifications). Reports properties read per second, CPU and RSS of the
 * connector process, and the latency from a COV notification leaving the device to the record
 * being emitted (the notified value carries the sending time).
 *
 * usage: bench_bacnet_bench [seconds (default 5)] [devices (default 100)] [objects (default 100)]
 *                           [pollPeriod ms (default 1000)] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <tbgw/connector.h>

#include "proto/bacnet/bn.h"
#include "util/time.h"

extern const tbgw_connector_ops tbgw_connector_bacnet;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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

/* ---------------- the simulated devices (child process) ---------------- */

typedef struct sim {
    int fd;
    uint32_t inst;
    struct sockaddr_in sub; /* COV subscriber */
    int subscribed;
    uint32_t pid;
} sim;

static void reply(int fd, const struct sockaddr_in *to, const uint8_t *apdu, size_t n) {
    uint8_t f[BN_MAX_FRAME];
    bn_w w;
    bn_w_init(&w, f, sizeof f);
    bn_put(&w, "\0\0\0\0", 4);
    bn_npdu_encode(&w, 0, 0, NULL, 0);
    bn_put(&w, apdu, n);
    if (w.overflow) return;
    bn_bvll_finish(f, w.len, BN_BVLC_UNICAST);
    sendto(fd, f, w.len, 0, (const struct sockaddr *)to, sizeof *to);
}

static void answer_rpm(sim *s, const bn_apdu *a, const struct sockaddr_in *from) {
    uint8_t out[BN_MAX_APDU];
    bn_w w;
    bn_w_init(&w, out, sizeof out);
    bn_apdu_complex_ack(&w, a->invoke_id, a->service);
    size_t off = 0;
    while (off < a->len) {
        uint16_t type;
        uint32_t inst;
        if (bn_dec_ctx_oid(a->data, a->len, &off, 0, &type, &inst) != 0 ||
            !bn_peek_open(a->data, a->len, off, 1))
            return;
        off++;
        bn_enc_ctx_oid(&w, 0, type, inst);
        bn_enc_open(&w, 1);
        while (!bn_peek_close(a->data, a->len, off, 1)) {
            uint64_t prop;
            if (bn_dec_ctx_unsigned(a->data, a->len, &off, 0, &prop) != 0) return;
            bn_enc_ctx_enum(&w, 2, (uint32_t)prop);
            bn_enc_open(&w, 4);
            bn_enc_real(&w, (float)(inst % 100) + 0.25f);
            bn_enc_close(&w, 4);
        }
        off++;
        bn_enc_close(&w, 1);
    }
    reply(s->fd, from, out, w.len);
}

static void sim_input(sim *s, const uint8_t *p, size_t n, const struct sockaddr_in *from) {
    bn_bvll b;
    bn_npdu np;
    bn_apdu a;
    if (bn_bvll_decode(p, n, &b) != 0 || !b.npdu || bn_npdu_decode(b.npdu, b.npdu_len, &np) != 0 ||
        bn_apdu_decode(np.apdu, np.apdu_len, &a) != 0)
        return;
    uint8_t out[64];
    bn_w w;
    bn_w_init(&w, out, sizeof out);
    if (a.type == BN_PDU_UNCONFIRMED && a.service == BN_USVC_WHO_IS) {
        bn_iam iam = {s->inst, 1476, 3, 260};
        bn_i_am(&w, &iam);
        reply(s->fd, from, out, w.len);
    } else if (a.type == BN_PDU_CONFIRMED && a.service == BN_SVC_READ_PROP_MULTIPLE) {
        answer_rpm(s, &a, from);
    } else if (a.type == BN_PDU_CONFIRMED && a.service == BN_SVC_SUBSCRIBE_COV) {
        uint64_t pid = 0;
        size_t off = 0;
        bn_dec_ctx_unsigned(a.data, a.len, &off, 0, &pid);
        s->pid = (uint32_t)pid;
        s->sub = *from;
        s->subscribed = 1;
        bn_apdu_simple_ack(&w, a.invoke_id, a.service);
        reply(s->fd, from, out, w.len);
    } else if (a.type == BN_PDU_CONFIRMED) {
        bn_apdu_reject(&w, a.invoke_id, 9);
        reply(s->fd, from, out, w.len);
    }
}

/* A COV notification for (multiStateValue, 1) whose value is the sending time in ms. */
static void notify(sim *s) {
    uint8_t out[64];
    bn_w w;
    bn_w_init(&w, out, sizeof out);
    bn_apdu_unconfirmed(&w, BN_USVC_COV_NOTIFICATION);
    bn_enc_ctx_unsigned(&w, 0, s->pid);
    bn_enc_ctx_oid(&w, 1, 8, s->inst);
    bn_enc_ctx_oid(&w, 2, 19, 1);
    bn_enc_ctx_unsigned(&w, 3, 300);
    bn_enc_open(&w, 4);
    bn_enc_ctx_enum(&w, 0, 85);
    bn_enc_open(&w, 2);
    bn_enc_unsigned(&w, (uint64_t)(mono_us() / 1000) & 0x7FFFFFFF);
    bn_enc_close(&w, 2);
    bn_enc_close(&w, 4);
    reply(s->fd, &s->sub, out, w.len);
}

static void run_devices(int n, int fd_out) {
    sim *s = calloc((size_t)n, sizeof *s);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    for (int i = 0; i < n; i++) {
        s[i].fd = socket(AF_INET, SOCK_DGRAM, 0);
        s[i].inst = (uint32_t)(1000 + i);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
        bind(s[i].fd, (struct sockaddr *)&sa, sizeof sa);
        socklen_t sl = sizeof sa;
        getsockname(s[i].fd, (struct sockaddr *)&sa, &sl);
        int port = ntohs(sa.sin_port);
        if (write(fd_out, &port, sizeof port) != sizeof port) _exit(1);
        pf[i] = (struct pollfd){.fd = s[i].fd, .events = POLLIN};
    }
    close(fd_out);
    int64_t next_cov = mono_us() + 1000000;
    int turn = 0;
    for (;;) {
        if (poll(pf, (nfds_t)n, 5) > 0) {
            for (int i = 0; i < n; i++) {
                if (!(pf[i].revents & POLLIN)) continue;
                uint8_t buf[BN_MAX_FRAME];
                struct sockaddr_in from;
                socklen_t sl = sizeof from;
                ssize_t r = recvfrom(s[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &sl);
                if (r > 0) sim_input(&s[i], buf, (size_t)r, &from);
            }
        }
        /* 20 notifications per second, round robin over the subscribed devices */
        if (mono_us() >= next_cov) {
            next_cov += 50000;
            for (int k = 0; k < n; k++) {
                sim *x = &s[(turn + k) % n];
                if (x->subscribed) {
                    notify(x);
                    turn = (turn + k + 1) % n;
                    break;
                }
            }
        }
    }
}

/* ---------------- the connector (this process) ---------------- */

typedef struct bhost {
    tbgw_host h;
    pthread_mutex_t mu;
    int64_t values, records, cov_values;
    double lat[8192];
    size_t n_lat;
    volatile int stop;
} bhost;

static int b_emit(const tbgw_host *h, tbgw_converted *c) {
    bhost *b = (bhost *)h;
    int64_t now_ms = mono_us() / 1000;
    pthread_mutex_lock(&b->mu);
    for (tbgw_converted *r = c; r; r = r->next) {
        b->records++;
        b->values += (int64_t)tbgw_converted_count(r);
        for (size_t i = 0; i < r->n_telemetry; i++)
            if (!strcmp(r->telemetry[i].key, "cov") && r->telemetry[i].v.type == TBGW_V_STRING) {
                b->cov_values++; /* from a notification (a poll reads it as a number) */
                if (b->n_lat < 8192)
                    b->lat[b->n_lat++] = (double)((now_ms & 0x7FFFFFFF) - atoll(r->telemetry[i].v.u.s));
            }
    }
    pthread_mutex_unlock(&b->mu);
    tbgw_converted_free(c);
    return 0;
}

static int b_dev(const tbgw_host *h, const char *d, const char *t) {
    (void)h, (void)d, (void)t;
    return 0;
}

static int b_wait(const tbgw_host *h, int timeout_ms) {
    if (timeout_ms > 0) tbgw_sleep_ms(timeout_ms);
    return ((const bhost *)h)->stop;
}

static void b_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    (void)h, (void)s, (void)n;
}

static void b_state(const tbgw_host *h, tbgw_conn_state s, const char *t) {
    (void)h, (void)s, (void)t;
}

static void *b_run(void *arg) {
    void **a = arg;
    tbgw_connector_bacnet.run(a[0]);
    return NULL;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int free_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static json_t *make_config(const int *ports, int n, int objects, int period) {
    json_t *devs = json_array();
    for (int i = 0; i < n; i++) {
        json_t *ts = json_array();
        char range[32];
        snprintf(range, sizeof range, "1-%d", objects);
        json_array_append_new(ts, json_pack("{s:s,s:s,s:s,s:s}", "key", "ai", "objectType", "analogInput",
                                            "objectId", range, "propertyId", "presentValue"));
        json_array_append_new(ts, json_pack("{s:s,s:s,s:i,s:s}", "key", "cov", "objectType",
                                            "multiStateValue", "objectId", 1, "propertyId", "presentValue"));
        char name[32];
        snprintf(name, sizeof name, "D%d", i);
        json_array_append_new(devs, json_pack("{s:s,s:i,s:{s:s,s:s},s:i,s:b,s:o}", "host", "127.0.0.1",
                                              "port", ports[i], "deviceInfo", "deviceNameExpression", name,
                                              "deviceNameExpressionSource", "constant", "pollPeriod", period,
                                              "useCov", 1, "timeseries", ts));
    }
    return json_pack("{s:{s:s,s:i,s:i,s:i},s:o}", "application", "host", "127.0.0.1", "port", free_udp_port(),
                     "objectIdentifier", 599, "apduTimeout", 2000, "devices", devs);
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 5;
    int n = argc > 2 ? atoi(argv[2]) : 100;
    int objects = argc > 3 ? atoi(argv[3]) : 100;
    int period = argc > 4 ? atoi(argv[4]) : 1000;
    int pfd[2];
    if (pipe(pfd) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[0]);
        run_devices(n, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    int *ports = calloc((size_t)n, sizeof *ports);
    for (int i = 0; i < n; i++)
        if (read(pfd[0], &ports[i], sizeof ports[i]) != sizeof ports[i]) return 1;
    close(pfd[0]);
    json_t *cfg = make_config(ports, n, objects, period);
    bhost b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    b.h.abi = TBGW_CONNECTOR_ABI;
    b.h.name = "BACnet";
    b.h.type = "bacnet";
    b.h.log = tbgw_logger_get("connector.BACnet");
    b.h.conv_log = b.h.log;
    b.h.emit = b_emit;
    b.h.device_connected = b_dev;
    b.h.wait = b_wait;
    b.h.stat_add = b_stat;
    b.h.set_state = b_state;
    void *conn = NULL;
    tbgw_err err = {0};
    if (tbgw_connector_bacnet.create(&b.h, cfg, &conn, &err) != 0) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    json_decref(cfg);
    pthread_t th;
    void *arg[1] = {conn};
    pthread_create(&th, NULL, b_run, arg);
    tbgw_sleep_ms(2000); /* discovery, first cycles, subscriptions */
    pthread_mutex_lock(&b.mu);
    int64_t v0 = b.values - b.cov_values;
    b.n_lat = 0;
    pthread_mutex_unlock(&b.mu);
    double c0 = cpu_s();
    int64_t t0 = mono_us();
    tbgw_sleep_ms((int64_t)(secs * 1000));
    pthread_mutex_lock(&b.mu);
    int64_t v1 = b.values - b.cov_values;
    size_t nl = b.n_lat;
    double *lat = malloc((nl ? nl : 1) * sizeof *lat);
    memcpy(lat, b.lat, nl * sizeof *lat);
    pthread_mutex_unlock(&b.mu);
    double el = (double)(mono_us() - t0) / 1e6, cpu = cpu_s() - c0;
    long rss = rss_kb();
    b.stop = 1;
    tbgw_connector_bacnet.stop(conn);
    pthread_join(th, NULL);
    tbgw_connector_bacnet.destroy(conn);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    qsort(lat, nl, sizeof *lat, cmp_dbl);
    printf("BACnet: %d devices x %d analog inputs, pollPeriod %d ms, RPM, useCov\n", n, objects, period);
    printf("  properties read   : %.0f/s (of %.0f/s configured)\n", (double)(v1 - v0) / el,
           n * (objects + 1) * 1000.0 / period);
    printf("  CPU               : %.1f%% of one core\n", 100.0 * cpu / el);
    printf("  RSS               : %.1f MB\n", rss / 1024.0);
    if (nl)
        printf("  COV -> emit       : p50 %.0f ms, p99 %.0f ms (%zu notifications, ms resolution)\n",
               lat[nl / 2], lat[(size_t)((double)nl * 0.99)], nl);
    free(lat);
    free(ports);
    return 0;
}
