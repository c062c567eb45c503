/* Benchmark load generator: publishes N JSON messages of 4 values over D devices to an MQTT broker,
 * at a fixed rate or flat out. Topic bench/<device>/data, payload
 * {"ts":<publish time, epoch ms>,"v1":..,"v2":..,"v3":..,"v4":..}.
 * Usage: bench_loadgen -p port [-h host] [-n messages] [-d devices] [-r msgs_per_s (0 = flat out)] [-q qos]
 *                      [-k pack_bytes [-t topic]]
 * With -k the messages are packed into JSON arrays of about pack_bytes, published to topic (default
 * relay/telemetry), the format the bare relay sends: the sink's own ceiling, without a forwarder.
 *
 * A minimal MQTT 3.1.1 publisher of its own (one TCP session, QoS 0 or 1): flat out it writes the
 * PUBLISH packets in batches of about 32 KB (one write() per batch) and counts the PUBACKs as they
 * come, so the generator costs far less CPU per message than the forwarders it loads. At a fixed
 * rate every message is written when it is due. At most 20000 QoS 1 messages are unacknowledged. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_frame.h"

#define OUT_BATCH 32768

static int sock = -1;
static mqtt_buf out;
static uint8_t in[65536];
static size_t in_len;
static long acked;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void flush_out(void) {
    size_t off = 0;
    while (off < out.len) {
        ssize_t w = write(sock, out.p + off, out.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            perror("loadgen: write");
            exit(1);
        }
        off += (size_t)w;
    }
    out.len = 0;
}

/* Reads what the broker sent (waiting up to timeout_ms), counts PUBACKs; returns -1 on EOF. */
static int pump_in(int timeout_ms) {
    struct pollfd p = {.fd = sock, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) return 0;
    ssize_t r = read(sock, in + in_len, sizeof in - in_len);
    if (r == 0) return -1;
    if (r < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    in_len += (size_t)r;
    size_t off = 0;
    size_t body, rl;
    while (mqtt_frame(in, in_len, off, &body, &rl)) {
        if ((in[off] & 0xF0) == 0x40) acked++;
        off = body + rl;
    }
    memmove(in, in + off, in_len - off);
    in_len -= off;
    return 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 1883, qos = 1, opt;
    long n = 100000, devices = 100, pack = 0;
    double rate = 0;
    const char *pack_topic = "relay/telemetry";
    while ((opt = getopt(argc, argv, "h:p:n:d:r:q:k:t:")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
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
        case 'k':
            pack = atol(optarg);
            break;
        case 't':
            pack_topic = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s -p port [-n N] [-d D] [-r rate] [-q qos] [-k pack_bytes [-t topic]]\n",
                    argv[0]);
            return 2;
        }
    }
    if (devices < 1) devices = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "loadgen: host must be an IPv4 address\n");
        return 2;
    }
    sock = socket(AF_INET, SOCK_STREAM, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "loadgen: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* batches are written whole */
    char id[64];
    int idl = snprintf(id, sizeof id, "loadgen-%d", (int)getpid());
    mqtt_put_u8(&out, 0x10); /* CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s */
    mqtt_put_varint(&out, 10 + 2 + (size_t)idl);
    mqtt_put_u16(&out, 4);
    mqtt_put(&out, "MQTT", 4);
    mqtt_put_u8(&out, 4);
    mqtt_put_u8(&out, 0x02);
    mqtt_put_u16(&out, 60);
    mqtt_put_u16(&out, (uint16_t)idl);
    mqtt_put(&out, id, (size_t)idl);
    flush_out();
    uint8_t ca[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t r = read(sock, ca + got, 4 - got);
        if (r <= 0) {
            fprintf(stderr, "loadgen: no CONNACK\n");
            return 1;
        }
        got += (size_t)r;
    }
    if (ca[0] != 0x20 || ca[3] != 0) {
        fprintf(stderr, "loadgen: connection refused (%u)\n", ca[3]);
        return 1;
    }
    char topic[64], payload[160];
    char *packbuf = pack > 0 ? malloc((size_t)pack + sizeof payload + 2) : NULL;
    size_t packlen = 0;
    long published = 0; /* MQTT messages (packs with -k) */
    uint16_t pid = 0;
    if (pack > 0 && !packbuf) return 1;
    int64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        if (rate > 0) {
            int64_t due = start + (int64_t)((double)i * 1e9 / rate);
            int64_t ahead = due - now_ns();
            if (ahead > 200000) {
                struct timespec ts = {0, (long)ahead};
                nanosleep(&ts, NULL);
            }
        }
        while (qos && published - acked > BENCH_MAX_UNACKED) {
            flush_out();
            if (pump_in(1000) < 0) {
                fprintf(stderr, "loadgen: the broker closed the connection\n");
                return 1;
            }
        }
        int len =
            bench_message(topic, sizeof topic, payload, sizeof payload, i, devices, (long long)wall_ms());
        if (packbuf) {
            char sep = packlen ? ',' : '[';
            packbuf[packlen++] = sep;
            memcpy(packbuf + packlen, payload, (size_t)len);
            packlen += (size_t)len;
            if (packlen >= (size_t)pack || i == n - 1) {
                packbuf[packlen++] = ']';
                if (++pid == 0) pid = 1;
                mqtt_put_publish(&out, 0, pack_topic, packbuf, packlen, qos, pid);
                packlen = 0;
                published++;
            }
        } else {
            if (++pid == 0) pid = 1;
            mqtt_put_publish(&out, 0, topic, payload, (size_t)len, qos, pid);
            published++;
        }
        if (rate > 0 || out.len >= OUT_BATCH) {
            flush_out();
            if (qos) pump_in(0);
        }
    }
    flush_out();
    int64_t sent = now_ns();
    int64_t give_up = sent + 60 * 1000000000LL;
    while (qos && acked < published && now_ns() < give_up)
        if (pump_in(100) < 0) break;
    double secs = (double)(sent - start) / 1e9;
    printf("{\"messages\":%ld,\"published\":%ld,\"acked\":%ld,\"publish_seconds\":%.3f,\"rate\":%.0f}\n", n,
           published, acked, secs, secs > 0 ? (double)n / secs : 0);
    mqtt_put_u8(&out, 0xE0); /* DISCONNECT */
    mqtt_put_u8(&out, 0);
    flush_out();
    close(sock);
    free(packbuf);
    free(out.p);
    return 0;
}
