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

#define OUT_BATCH   32768
#define MAX_UNACKED 20000

static int sock = -1;
static uint8_t *out;
static size_t out_len, out_cap;
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

static void put(const void *p, size_t n) {
    if (out_len + n > out_cap) {
        out_cap = (out_len + n) * 2;
        out = realloc(out, out_cap);
        if (!out) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(1);
        }
    }
    memcpy(out + out_len, p, n);
    out_len += n;
}

static void put_u8(uint8_t b) {
    put(&b, 1);
}

static void put_u16(uint16_t v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(b, 2);
}

static void put_varint(size_t v) {
    do {
        uint8_t b = v % 128;
        v /= 128;
        put_u8(v ? b | 0x80 : b);
    } while (v);
}

static void flush_out(void) {
    size_t off = 0;
    while (off < out_len) {
        ssize_t w = write(sock, out + off, out_len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            perror("loadgen: write");
            exit(1);
        }
        off += (size_t)w;
    }
    out_len = 0;
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

static void publish(const char *topic, const char *payload, size_t len, int qos, uint16_t id) {
    size_t tl = strlen(topic);
    put_u8((uint8_t)(0x30 | (qos << 1)));
    put_varint(2 + tl + (qos ? 2 : 0) + len);
    put_u16((uint16_t)tl);
    put(topic, tl);
    if (qos) put_u16(id);
    put(payload, len);
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
    put_u8(0x10); /* CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s */
    put_varint(10 + 2 + (size_t)idl);
    put_u16(4);
    put("MQTT", 4);
    put_u8(4);
    put_u8(0x02);
    put_u16(60);
    put_u16((uint16_t)idl);
    put(id, (size_t)idl);
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
        while (qos && published - acked > MAX_UNACKED) {
            flush_out();
            if (pump_in(1000) < 0) {
                fprintf(stderr, "loadgen: the broker closed the connection\n");
                return 1;
            }
        }
        snprintf(topic, sizeof topic, "bench/dev%ld/data", i % devices);
        int len = snprintf(payload, sizeof payload,
                           "{\"ts\":%lld,\"v1\":%ld.5,\"v2\":%ld,\"v3\":%s,\"v4\":\"s%ld\"}",
                           (long long)wall_ms(), i % 1000, i, (i & 1) ? "true" : "false", i % 97);
        if (packbuf) {
            char sep = packlen ? ',' : '[';
            packbuf[packlen++] = sep;
            memcpy(packbuf + packlen, payload, (size_t)len);
            packlen += (size_t)len;
            if (packlen >= (size_t)pack || i == n - 1) {
                packbuf[packlen++] = ']';
                if (++pid == 0) pid = 1;
                publish(pack_topic, packbuf, packlen, qos, pid);
                packlen = 0;
                published++;
            }
        } else {
            if (++pid == 0) pid = 1;
            publish(topic, payload, (size_t)len, qos, pid);
            published++;
        }
        if (rate > 0 || out_len >= OUT_BATCH) {
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
    put_u8(0xE0); /* DISCONNECT */
    put_u8(0);
    flush_out();
    close(sock);
    free(packbuf);
    free(out);
    return 0;
}
