/* SNMP connector benchmark: N devices (one snmpd queried as N devices) each bulk-walking the same
 * subtrees (about 800 OIDs) every period, through a minimal in-process host counting what is
 * emitted; against the ceiling of `snmpbulkwalk` of the same OIDs run back to back. Reports the
 * achieved varbinds/s, the polls completed, the connector thread's CPU, the process RSS and the
 * agent's CPU. Needs snmpd and snmpbulkwalk (Debian snmpd, snmp).
 * Usage: bench_snmp_bench [devices (100)] [seconds (5)] [period ms (1000)] */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tbgw/connector.h>

#include "util/time.h"

extern const tbgw_connector_ops tbgw_connector_snmp;

static const char *const SUBTREES[] = {"1.3.6.1.2.1.1", "1.3.6.1.2.1.2", "1.3.6.1.2.1.4", "1.3.6.1.2.1.11",
                                       "1.3.6.1.6.3"};
#define N_SUBTREES (sizeof SUBTREES / sizeof SUBTREES[0])

typedef struct bhost {
    tbgw_host h;
    void *conn;
    atomic_int stop;
    atomic_long polls;
    long per_poll; /* varbinds in one device's poll (from the first record) */
} bhost;

static long count_keys(const char *json) {
    json_t *j = json_loads(json, 0, NULL);
    long n = j ? (long)json_object_size(j) : 0;
    json_decref(j);
    return n;
}

static int b_emit(const tbgw_host *h, tbgw_converted *c) {
    bhost *b = (bhost *)h;
    for (tbgw_converted *x = c; x; x = x->next) {
        if (!b->per_poll) {
            long n = 0;
            for (size_t i = 0; i < x->n_telemetry; i++)
                if (x->telemetry[i].v.type == TBGW_V_JSON) n += count_keys(x->telemetry[i].v.u.s);
            b->per_poll = n;
        }
        atomic_fetch_add(&b->polls, 1);
    }
    tbgw_converted_free(c);
    return 0;
}

static int b_wait(const tbgw_host *h, int timeout_ms) {
    bhost *b = (bhost *)h;
    if (timeout_ms > 0) tbgw_sleep_ms(timeout_ms);
    return b->stop;
}

static void b_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    (void)h, (void)s, (void)n;
}

static void b_state(const tbgw_host *h, tbgw_conn_state s, const char *e) {
    (void)h, (void)s, (void)e;
}

static void *b_run(void *arg) {
    bhost *b = arg;
    tbgw_connector_snmp.run(b->conn);
    return NULL;
}

static double proc_cpu_s(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long ut = 0, st = 0;
    int r = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    fclose(f);
    return r == 2 ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : 0;
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

static pid_t start_snmpd(const char *dir, int port) {
    char conf[512], persist[512];
    snprintf(conf, sizeof conf, "%s/snmpd.conf", dir);
    snprintf(persist, sizeof persist, "%s/persist", dir);
    FILE *f = fopen(conf, "w");
    if (!f) exit(2);
    fprintf(f, "agentAddress udp:127.0.0.1:%d\nrocommunity public 127.0.0.1\n", port);
    fclose(f);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SNMP_PERSISTENT_DIR", persist, 1);
        setenv("MIBS", "", 1);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("snmpd", "snmpd", "-f", "-Lo", "-C", "-c", conf, (char *)NULL);
        _exit(127);
    }
    tbgw_sleep_ms(1000);
    return pid;
}

/* snmpbulkwalk of the subtrees back to back for secs: varbinds per second of one synchronous client. */
static double ceiling(int port, double secs, long *per_walk) {
    char cmd[1024];
    int o = snprintf(cmd, sizeof cmd, "MIBS= sh -c '");
    for (size_t i = 0; i < N_SUBTREES; i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, "snmpbulkwalk -v2c -c public -Cr25 127.0.0.1:%d %s; ",
                      port, SUBTREES[i]);
    snprintf(cmd + o, sizeof cmd - (size_t)o, "' | wc -l");
    long total = 0, walks = 0;
    int64_t t0 = tbgw_mono_ms();
    while (tbgw_mono_ms() - t0 < (int64_t)(secs * 1000)) {
        FILE *p = popen(cmd, "r");
        long n = 0;
        if (!p || fscanf(p, "%ld", &n) != 1) n = 0;
        if (p) pclose(p);
        total += n;
        walks++;
        *per_walk = n;
    }
    double el = (double)(tbgw_mono_ms() - t0) / 1000.0;
    return el > 0 ? (double)total / el : 0;
}

int main(int argc, char **argv) {
    int ndev = argc > 1 ? atoi(argv[1]) : 100;
    double secs = argc > 2 ? atof(argv[2]) : 5;
    int period = argc > 3 ? atoi(argv[3]) : 1000;
    char dir[] = "/tmp/tbgw-snmpbench-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    int port = 20000 + (int)(getpid() % 20000);
    pid_t agent = start_snmpd(dir, port);
    long per_walk = 0;
    double ceil_rate = ceiling(port, secs, &per_walk);
    printf("ceiling: snmpbulkwalk of %zu subtrees back to back: %ld varbinds per walk, %.0f varbinds/s\n",
           N_SUBTREES, per_walk, ceil_rate);

    json_t *devs = json_array();
    for (int i = 0; i < ndev; i++) {
        json_t *oids = json_array();
        for (size_t k = 0; k < N_SUBTREES; k++) json_array_append_new(oids, json_string(SUBTREES[k]));
        char name[32];
        snprintf(name, sizeof name, "D%d", i);
        json_array_append_new(devs, json_pack("{s:s,s:s,s:i,s:s,s:s,s:i,s:i,s:[],s:[{s:s,s:s,s:o,s:i}]}",
                                              "deviceName", name, "ip", "127.0.0.1", "port", port,
                                              "community", "public", "snmpVersion", "2c", "pollPeriod",
                                              period, "timeout", 10, "attributes", "telemetry", "key", "walk",
                                              "method", "bulkwalk", "oid", oids, "bulkSize", 25));
    }
    json_t *cfg = json_pack("{s:o}", "devices", devs);
    bhost b;
    memset(&b, 0, sizeof b);
    b.h.abi = TBGW_CONNECTOR_ABI;
    b.h.name = "bench";
    b.h.type = "snmp";
    b.h.log = tbgw_logger_get("connector.bench");
    b.h.conv_log = b.h.log;
    b.h.emit = b_emit;
    b.h.wait = b_wait;
    b.h.stat_add = b_stat;
    b.h.set_state = b_state;
    tbgw_err err = {0};
    if (tbgw_connector_snmp.create(&b.h, cfg, &b.conn, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 2;
    }
    json_decref(cfg);
    pthread_t th;
    pthread_create(&th, NULL, b_run, &b);
    clockid_t cid;
    pthread_getcpuclockid(th, &cid);
    tbgw_sleep_ms(2000); /* warm-up: first polls */
    struct timespec c0, c1;
    clock_gettime(cid, &c0);
    double a0 = proc_cpu_s(agent);
    long p0 = atomic_load(&b.polls);
    int64_t t0 = tbgw_mono_ms();
    tbgw_sleep_ms((int64_t)(secs * 1000));
    long p1 = atomic_load(&b.polls);
    double el = (double)(tbgw_mono_ms() - t0) / 1000.0;
    clock_gettime(cid, &c1);
    double a1 = proc_cpu_s(agent);
    long rss = rss_kb();
    b.stop = 1;
    pthread_join(th, NULL);
    tbgw_connector_snmp.destroy(b.conn);
    kill(agent, SIGTERM);
    waitpid(agent, NULL, 0);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    double polls_s = (double)(p1 - p0) / el, want = (double)ndev * 1000.0 / period;
    printf(
        "tbgw: %d devices x %ld varbinds every %d ms: %.1f polls/s of %.1f wanted (%.0f%%), %.0f varbinds/s "
        "(%.0f%% of the ceiling); connector thread CPU %.1f%%, %.2f us per varbind; RSS %ld kB; agent CPU "
        "%.0f%%\n",
        ndev, b.per_poll, period, polls_s, want, 100.0 * polls_s / want, polls_s * (double)b.per_poll,
        ceil_rate > 0 ? 100.0 * polls_s * (double)b.per_poll / ceil_rate : 0.0, 100.0 * cpu / el,
        polls_s > 0 ? 1e6 * cpu / (el * polls_s * (double)b.per_poll) : 0.0, rss, 100.0 * (a1 - a0) / el);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm)) return 0;
    return 0;
}
