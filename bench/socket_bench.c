/* Socket connector benchmark: messages/s into a minimal in-process host (counting what is emitted)
 * from 1 and many TCP clients and over UDP, against a bare epoll loop that only recv()s and counts.
 * The load generator is a child process sending 64-byte messages flat out for the run's duration.
 * For TCP a "message" is one recv() chunk (as the connector defines it): the byte totals must match
 * (zero loss); for UDP each datagram is a message and the kernel drops what is not read in time.
 * Usage: bench_socket [seconds per run (3)] [clients of the many-client run (1000)]
 *        bench_socket --send tcp|udp PORT MESSAGES RATE CLIENTS   (paced load only, for socket_e2e.sh:
 *        MESSAGES in total at RATE per second, round-robin over CLIENTS connections) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tbgw/connector.h>

#include "util/time.h"

extern const tbgw_connector_ops tbgw_connector_socket;

#define MSG 64

typedef struct result {
    uint64_t msgs, bytes, datapoints; /* received */
    double cpu_s;                     /* server thread CPU */
} result;

static int free_port(int udp) {
    int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) exit(2);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- load generator (child process) -------------------------------------------------------- */

static int connect_to(int port, int udp, int nonblock) {
    int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        exit(2);
    }
    if (nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Sends for secs seconds; writes the bytes and messages sent to out. */
static void generate(int port, int udp, int clients, double secs, int out) {
    char msg[MSG];
    memset(msg, 'x', sizeof msg);
    int *fds = calloc((size_t)clients, sizeof *fds);
    for (int i = 0; i < clients; i++) fds[i] = connect_to(port, udp, clients > 1);
    tbgw_sleep_ms(200); /* every connection accepted before the clock starts */
    uint64_t w[2] = {0, 0};
    int64_t end = tbgw_mono_ms() + (int64_t)(secs * 1000);
    while (tbgw_mono_ms() < end) {
        for (int r = 0; r < 16; r++)
            for (int i = 0; i < clients; i++) {
                ssize_t n = send(fds[i], msg, sizeof msg, MSG_NOSIGNAL);
                if (n > 0) w[0] += (uint64_t)n, w[1]++;
            }
    }
    for (int i = 0; i < clients; i++) close(fds[i]);
    if (write(out, w, sizeof w) != sizeof w) _exit(3);
    _exit(0);
}

static pid_t start_generator(int port, int udp, int clients, double secs, int *rfd) {
    int p[2];
    if (pipe(p)) exit(2);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        generate(port, udp, clients, secs, p[1]);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static void finish_generator(pid_t pid, int rfd, uint64_t *bytes, uint64_t *msgs) {
    uint64_t w[2] = {0, 0};
    if (read(rfd, w, sizeof w) != sizeof w) fprintf(stderr, "generator failed\n");
    close(rfd);
    waitpid(pid, NULL, 0);
    *bytes = w[0];
    *msgs = w[1];
}

/* ---- the bare loop ------------------------------------------------------------------------ */

typedef struct bare {
    int port, udp;
    atomic_int stop;
    result r;
} bare;

static void *bare_run(void *arg) {
    bare *b = arg;
    int ep = epoll_create1(0);
    int ls = socket(AF_INET, (b->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rcv = 4 << 20;
    if (b->udp) setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || (!b->udp && listen(ls, SOMAXCONN))) exit(2);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    char buf[1024];
    struct epoll_event evs[256];
    while (!b->stop) {
        int n = epoll_wait(ep, evs, 256, 10);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls && !b->udp) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            for (int k = 0; k < 16; k++) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0) {
                    b->r.msgs++;
                    b->r.bytes += (uint64_t)r;
                    continue;
                }
                if (r == 0 && !b->udp) close(fd);
                break;
            }
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    b->r.cpu_s = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    close(ls);
    close(ep);
    return NULL;
}

/* ---- the connector through a minimal host ------------------------------------------------- */

typedef struct bhost {
    tbgw_host h;
    void *conn;
    atomic_int stop;
    result r;
} bhost;

static int b_emit(const tbgw_host *h, tbgw_converted *c) {
    bhost *b = (bhost *)h;
    for (tbgw_converted *x = c; x; x = x->next) {
        b->r.msgs++;
        b->r.datapoints += tbgw_converted_count(x);
        for (size_t i = 0; i < x->n_telemetry; i++)
            if (x->telemetry[i].v.type == TBGW_V_STRING) b->r.bytes += strlen(x->telemetry[i].v.u.s);
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
    tbgw_connector_socket.run(b->conn);
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    b->r.cpu_s = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    return NULL;
}

/* ---- runs --------------------------------------------------------------------------------- */

static void run_one(const char *label, int use_tbgw, int udp, int clients, double secs) {
    int port = free_port(udp);
    bare br;
    bhost bh;
    memset(&br, 0, sizeof br);
    memset(&bh, 0, sizeof bh);
    pthread_t th;
    if (use_tbgw) {
        json_t *cfg = json_pack("{s:{s:s,s:s,s:i,s:i,s:i},s:[{s:s,s:s,s:[{s:s,s:i,s:i}]}]}", "socket", "type",
                                udp ? "UDP" : "TCP", "address", "127.0.0.1", "port", port, "bufferSize", 1024,
                                "maxMessagesPerSecond", 0, "devices", "address", "*:*", "deviceName", "bench",
                                "telemetry", "key", "v", "byteFrom", 0, "byteTo", -1);
        bh.h.abi = TBGW_CONNECTOR_ABI;
        bh.h.name = "bench";
        bh.h.type = "socket";
        bh.h.log = tbgw_logger_get("connector.bench");
        bh.h.conv_log = bh.h.log;
        bh.h.emit = b_emit;
        bh.h.wait = b_wait;
        bh.h.stat_add = b_stat;
        bh.h.set_state = b_state;
        tbgw_err err = {0};
        if (tbgw_connector_socket.create(&bh.h, cfg, &bh.conn, &err)) {
            fprintf(stderr, "create: %s\n", err.msg);
            exit(2);
        }
        json_decref(cfg);
        pthread_create(&th, NULL, b_run, &bh);
    } else {
        br.port = port;
        br.udp = udp;
        pthread_create(&th, NULL, bare_run, &br);
    }
    tbgw_sleep_ms(200);
    int rfd;
    int64_t t0 = tbgw_mono_ms();
    pid_t pid = start_generator(port, udp, clients, secs, &rfd);
    uint64_t sent_bytes, sent_msgs;
    finish_generator(pid, rfd, &sent_bytes, &sent_msgs);
    tbgw_sleep_ms(500); /* drain */
    double wall = (double)(tbgw_mono_ms() - t0 - 700) / 1000.0;
    if (use_tbgw)
        bh.stop = 1;
    else
        br.stop = 1;
    pthread_join(th, NULL);
    if (use_tbgw) tbgw_connector_socket.destroy(bh.conn);
    result *r = use_tbgw ? &bh.r : &br.r;
    double rate = (double)r->msgs / (wall > 0 ? wall : secs);
    printf("| %-22s | %-4s | %10.0f | %8.1f | %6.1f%% | %8.2f | %s |\n", label, use_tbgw ? "tbgw" : "bare",
           rate, (double)r->bytes / 1e6 / (wall > 0 ? wall : secs),
           100.0 * r->cpu_s / (wall > 0 ? wall : secs), r->msgs ? 1e6 * r->cpu_s / (double)r->msgs : 0.0,
           udp ? "see below" : (r->bytes == sent_bytes ? "all bytes" : "BYTES LOST"));
    if (udp)
        printf("|   (udp: %llu sent, %llu received, %.2f%% lost) | | | | | | |\n",
               (unsigned long long)sent_msgs, (unsigned long long)r->msgs,
               sent_msgs ? 100.0 * (double)(sent_msgs - (r->msgs < sent_msgs ? r->msgs : sent_msgs)) /
                               (double)sent_msgs
                         : 0.0);
}

/* Paced sender: every message is its own send, spaced so that TCP does not coalesce them. */
static int paced(int udp, int port, long total, long rate, int clients) {
    int *fds = calloc((size_t)clients, sizeof *fds);
    for (int i = 0; i < clients; i++) fds[i] = connect_to(port, udp, 0);
    tbgw_sleep_ms(300);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long sent = 0;
    char msg[32];
    while (sent < total) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        long due = (long)(el * (double)rate) + 1;
        if (due > total) due = total;
        for (; sent < due; sent++) {
            int n = snprintf(msg, sizeof msg, "m%011ld", sent);
            if (send(fds[sent % clients], msg, (size_t)n, MSG_NOSIGNAL) != n) {
                perror("send");
                return 1;
            }
        }
        tbgw_sleep_ms(1);
    }
    tbgw_sleep_ms(500);
    for (int i = 0; i < clients; i++) close(fds[i]);
    printf("sent %ld\n", sent);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "--send"))
        return paced(!strcmp(argv[2], "udp"), atoi(argv[3]), atol(argv[4]), atol(argv[5]), atoi(argv[6]));
    double secs = argc > 1 ? atof(argv[1]) : 3;
    int many = argc > 2 ? atoi(argv[2]) : 1000;
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char many_label[64];
    snprintf(many_label, sizeof many_label, "TCP, %d clients", many);
    printf("| run | server | messages/s | MB/s | server CPU | CPU µs/msg | loss "
           "|\n|---|---|---|---|---|---|---|\n");
    for (int t = 0; t < 2; t++) run_one("TCP, 1 client", t, 0, 1, secs);
    for (int t = 0; t < 2; t++) run_one(many_label, t, 0, many, secs);
    for (int t = 0; t < 2; t++) run_one("UDP, 1 client", t, 1, 1, secs);
    return 0;
}
