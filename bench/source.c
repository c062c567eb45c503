/* Benchmark source: a minimal MQTT 3.1.1 / 5 server for ONE subscriber (a forwarder, or bench_sink -s)
 * that streams the load generator's device messages to it, so that the load side of the bench is not
 * bounded by a broker. It accepts one connection on 127.0.0.1:port, answers CONNECT, SUBSCRIBE (any
 * filter, granting the requested QoS up to 1) and PINGREQ, then sends N PUBLISH packets on the topics
 * and with the payloads of bench_loadgen (bench_message: 4 values + ts over D devices), QoS 0 or 1
 * (the lower of -q and the granted QoS, as a broker delivers).
 *
 * The packets are encoded once, after CONNECT told the protocol version; each batch gets the current
 * time patched into its messages' "ts" just before it is first written. Flat out the batches are
 * about 256 KB, written as fast as the socket takes them; with -r every message is written when it
 * is due. QoS 1: PUBACKs are counted, at most BENCH_MAX_UNACKED (or the subscriber's Receive Maximum)
 * are unacknowledged. On exit (the subscriber disconnected, or SIGTERM/SIGINT) it prints one JSON
 * line: messages sent, acknowledged, the seconds the sending took, the rate, and its CPU seconds from
 * the start of the stream (the encoding before it is not counted).
 * Usage: bench_source -p port [-n messages] [-d devices] [-r msgs_per_s (0 = flat out)] [-q qos] [-w]
 *        -w: after the SUBACK wait for SIGUSR1 before streaming (the bench starts all runs alike). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_frame.h"

#define BATCH (256 * 1024)

static volatile sig_atomic_t go, stop;

static void on_usr1(int s) {
    (void)s;
    go = 1;
}

static void on_term(int s) {
    (void)s;
    stop = 1;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            poll(&pf, 1, 100);
            continue;
        }
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = 0, qos = 1, wait_go = 0, opt;
    long n = 100000, devices = 100;
    double rate = 0;
    while ((opt = getopt(argc, argv, "p:n:d:r:q:w")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'n':
            n = atol(optarg);
            break;
        case 'd':
            devices = atol(optarg);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'q':
            qos = atoi(optarg) ? 1 : 0;
            break;
        case 'w':
            wait_go = 1;
            break;
        default:
            fprintf(stderr, "usage: %s -p port [-n N] [-d D] [-r rate] [-q qos] [-w]\n", argv[0]);
            return 2;
        }
    }
    if (devices < 1) devices = 1;
    if (n < 0) n = 0;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa_go = {.sa_handler = on_usr1}, sa_stop = {.sa_handler = on_term};
    sigaction(SIGUSR1, &sa_go, NULL);
    sigaction(SIGTERM, &sa_stop, NULL);
    sigaction(SIGINT, &sa_stop, NULL);

    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1)) {
        fprintf(stderr, "source: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    fprintf(stderr, "source: listening\n");
    int fd = -1;
    while (fd < 0 && !stop) {
        struct pollfd pl = {.fd = ls, .events = POLLIN};
        if (poll(&pl, 1, 100) > 0) fd = accept(ls, NULL, NULL);
    }
    close(ls); /* one subscriber only */
    if (fd < 0) return 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    static uint8_t in[1 << 16];
    size_t in_len = 0;
    mqtt_buf ctl = {0};  /* CONNACK, SUBACK, PINGRESP: written between batches only */
    mqtt_buf pubs = {0}; /* every PUBLISH, encoded once the protocol version is known */
    size_t *msg_at = NULL, *ts_at = NULL;
    int v5 = 0, subscribed = 0, eff_qos = qos;
    long recv_max = BENCH_MAX_UNACKED, next = 0, acked = 0;
    size_t wpos = 0, pend = 0; /* written up to wpos of the patched bytes [0, pend) */
    int64_t start = 0, sent_at = 0;
    double cpu0 = 0;
    for (;;) {
        if (stop) break;
        int64_t now = now_ns();
        if (wpos == pend && ctl.len) {
            if (write_all(fd, ctl.p, ctl.len)) break;
            ctl.len = 0;
        }
        if (subscribed && !start && (go || !wait_go)) {
            start = now;
            cpu0 = cpu_s();
        }
        int64_t timeout = 100000000; /* ns */
        /* the next batch: messages allowed now (in flight, due), patched with the current time */
        if (start && wpos == pend && next < n) {
            long allowed = n;
            if (eff_qos && acked + recv_max < allowed) allowed = acked + recv_max;
            if (rate > 0) {
                long due = (long)((double)(now - start) * rate / 1e9) + 1;
                if (due < allowed) allowed = due;
                if (allowed <= next) {
                    int64_t at = start + (int64_t)((double)next * 1e9 / rate);
                    timeout = at - now;
                }
            }
            if (next < allowed) {
                char ts[32];
                snprintf(ts, sizeof ts, "%lld", wall_ms());
                while (next < allowed && msg_at[next] - wpos < BATCH) {
                    memcpy(pubs.p + ts_at[next], ts, 13);
                    next++;
                }
                pend = next < n ? msg_at[next] : pubs.len;
            }
        }
        if (start && next == n && wpos == pend && !sent_at) sent_at = now_ns();
        struct pollfd pf = {.fd = fd, .events = POLLIN | (wpos < pend ? POLLOUT : 0)};
        if (wpos < pend) timeout = 100000000;
        if (!start) timeout = 10000000;
        if (timeout < 0) timeout = 0;
        struct timespec tw = {(time_t)(timeout / 1000000000), (long)(timeout % 1000000000)};
        int pr = ppoll(&pf, 1, &tw, NULL);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (pf.revents & POLLOUT) {
            ssize_t w = send(fd, pubs.p + wpos, pend - wpos, MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EINTR) break;
            if (w > 0) wpos += (size_t)w;
        }
        if (!(pf.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t r = recv(fd, in + in_len, sizeof in - in_len, MSG_DONTWAIT);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            break;
        }
        in_len += (size_t)r;
        size_t off = 0, b, bl;
        int bye = 0;
        while (mqtt_frame(in, in_len, off, &b, &bl)) {
            uint8_t type = in[off] & 0xF0;
            const uint8_t *p = in + b;
            if (type == 0x10) {
                long rm = 0;
                v5 = mqtt_connect_accept(p, bl, &ctl, &rm) == 1;
                if (rm > 0 && rm < recv_max) recv_max = rm;
            } else if (type == 0x80) {
                int q = mqtt_subscribe_accept(p, bl, v5, &ctl);
                if (!subscribed && q >= 0 && q < eff_qos) eff_qos = q;
                if (!subscribed) {
                    subscribed = 1;
                    /* the whole run, encoded once; the ts is patched per batch */
                    msg_at = malloc(sizeof *msg_at * (size_t)(n + 1));
                    ts_at = malloc(sizeof *ts_at * (size_t)(n + 1));
                    if (!msg_at || !ts_at) return 1;
                    char topic[64], payload[160];
                    for (long k = 0; k < n; k++) {
                        int len = bench_message(topic, sizeof topic, payload, sizeof payload, k, devices,
                                                1000000000000LL); /* 13 digits, as every ts until 2286 */
                        msg_at[k] = pubs.len;
                        ts_at[k] = mqtt_put_publish(&pubs, v5, topic, payload, (size_t)len, eff_qos,
                                                    (uint16_t)(k % 65535 + 1)) +
                                   BENCH_TS_AT;
                    }
                    fprintf(stderr, "source: subscribed (MQTT %s, QoS %d, at most %ld in flight)\n",
                            v5 ? "5" : "3.1.1", eff_qos, recv_max);
                }
            } else if (type == 0x40) { /* PUBACK */
                acked++;
            } else if (type == 0xC0) { /* PINGREQ */
                const uint8_t pong[] = {0xD0, 0};
                mqtt_put(&ctl, pong, 2);
            } else if (type == 0xE0) { /* DISCONNECT */
                bye = 1;
            }
            off = b + bl;
        }
        memmove(in, in + off, in_len - off);
        in_len -= off;
        if (bye || in_len == sizeof in) break;
    }
    if (start && !sent_at && next == n && wpos == pend) sent_at = now_ns();
    double secs = sent_at ? (double)(sent_at - start) / 1e9 : 0;
    long sent = 0; /* messages written whole */
    while (sent < next && (sent + 1 < n ? msg_at[sent + 1] : pubs.len) <= wpos) sent++;
    printf("{\"messages\":%ld,\"sent\":%ld,\"acked\":%ld,\"qos\":%d,\"max_inflight\":%ld,\"publish_seconds\":"
           "%.3f,"
           "\"rate\":%.0f,\"cpu_s\":%.3f}\n",
           n, sent, acked, eff_qos, recv_max, secs, secs > 0 ? (double)sent / secs : 0,
           start ? cpu_s() - cpu0 : 0);
    close(fd);
    free(pubs.p);
    free(ctl.p);
    free(msg_at);
    free(ts_at);
    return 0;
}
