/* Benchmark sink on the platform broker: answers getSessionLimits, counts every telemetry value that
 * arrives (tbgw's v1/gateway/telemetry, or the bare relay's packed arrays on relay/telemetry) and the
 * end-to-end latency of each (receive time - the publisher's "ts"). Prints one JSON line.
 * Usage: bench_sink -p port -n expected_values [-i idle_timeout_ms] [-t total_timeout_s] [-m max_payload]
 *                   [-s filter]   (subscribes filter instead, e.g. bench/#: single device messages,
 *                                  the load generator's output without a forwarder, for the bench's
 *                                  ceiling; read by a minimal MQTT 3.1.1 client of its own that reads
 *                                  in 64 KB chunks, writes one batch of PUBACKs per chunk and does not
 *                                  parse JSON, so that it is not what bounds that run)
 *        bench_sink -p port -a   (only answers getSessionLimits, until killed) */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_frame.h"

#define HIST_MS 60000

static long expected, values, messages;
static int64_t first_ms, last_ms;
static long hist[HIST_MS + 1];
static long max_payload = 65536;
static atomic_int ready;
static const char *raw_filter; /* -s: device messages straight from the load generator */

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void account(json_t *ts, long nvalues, int64_t now) {
    if (!json_is_integer(ts) || nvalues <= 0) return;
    int64_t lat = now - json_integer_value(ts);
    if (lat < 0) lat = 0;
    if (lat > HIST_MS) lat = HIST_MS;
    hist[lat] += nvalues;
    values += nvalues;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    (void)ud;
    int64_t now = wall_ms();
    if (!strncmp(msg->topic, "v1/devices/me/rpc/request/", 26)) {
        char topic[128], body[128];
        snprintf(topic, sizeof topic, "v1/devices/me/rpc/response/%s", msg->topic + 26);
        int n =
            snprintf(body, sizeof body, "{\"maxPayloadSize\":%ld,\"maxInflightMessages\":1000}", max_payload);
        mosquitto_publish(m, NULL, topic, n, body, 1, false);
        return;
    }
    json_t *j = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, NULL);
    if (!j) return;
    long before = values;
    if (json_is_object(j)) { /* {"dev":[{"ts":..,"values":{..}}]} */
        const char *dev;
        json_t *arr;
        json_object_foreach(j, dev, arr) {
            size_t i;
            json_t *e;
            json_array_foreach(arr, i, e)
                account(json_object_get(e, "ts"), (long)json_object_size(json_object_get(e, "values")), now);
        }
    } else if (json_is_array(j)) { /* relay: [{"ts":..,"v1":..},...] */
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) account(json_object_get(e, "ts"), (long)json_object_size(e) - 1, now);
    }
    json_decref(j);
    if (values > before) {
        if (!first_ms) first_ms = now;
        last_ms = now;
        messages++;
    }
}

static void on_connect(struct mosquitto *m, void *ud, int rc) {
    (void)ud;
    if (rc) return;
    mosquitto_subscribe(m, NULL, "v1/gateway/telemetry", 1);
    mosquitto_subscribe(m, NULL, "relay/telemetry", 1);
}

/* Ready only once the broker acknowledged both subscriptions: a pack published before that would
 * reach no subscriber (announcing readiness on CONNACK lost the gateway's first pack of 256 records
 * now and then on a loaded machine). */
static void on_subscribe(struct mosquitto *m, void *ud, int mid, int qos_count, const int *granted) {
    (void)m;
    (void)ud;
    (void)mid;
    (void)qos_count;
    (void)granted;
    static int acked;
    if (++acked == 2) atomic_store(&ready, 1);
}

static void on_connect_limits(struct mosquitto *m, void *ud, int rc) {
    (void)ud;
    if (!rc) mosquitto_subscribe(m, NULL, "v1/devices/me/rpc/request/+", 1);
}

/* One device message straight from the load generator: {"ts":<ms>, then one ':' per further value. */
static void account_raw(const uint8_t *p, size_t len, int64_t now) {
    long colons = 0;
    for (size_t i = 0; i < len; i++) colons += p[i] == ':';
    if (len <= 6 || memcmp(p, "{\"ts\":", 6) != 0 || colons < 2) return;
    int64_t lat = now - strtoll((const char *)p + 6, NULL, 10);
    if (lat < 0) lat = 0;
    if (lat > HIST_MS) lat = HIST_MS;
    hist[lat] += colons - 1;
    values += colons - 1;
    if (!first_ms) first_ms = now;
    last_ms = now;
    messages++;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* -s: subscribes filter with QoS 1 over a session of its own and counts until done. */
static int raw_run(int port, const char *filter, long idle_ms, long total_s) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "sink: cannot connect to port %d\n", port);
        return 1;
    }
    static uint8_t in[1 << 17], acks[1 << 16];
    char id[32];
    int idl = snprintf(id, sizeof id, "sink-%d", (int)getpid());
    size_t fl = strlen(filter), n = 0;
    uint8_t pkt[512];
    if (fl > 400) return 2;
    /* CONNECT (3.1.1, clean session, keep-alive 60 s), then SUBSCRIBE filter QoS 1 */
    pkt[n++] = 0x10;
    pkt[n++] = (uint8_t)(12 + idl);
    memcpy(pkt + n, "\0\4MQTT\4\2\0\74", 10);
    n += 10;
    pkt[n++] = 0;
    pkt[n++] = (uint8_t)idl;
    memcpy(pkt + n, id, (size_t)idl);
    n += (size_t)idl;
    size_t rl = 2 + 2 + fl + 1;
    pkt[n++] = 0x82;
    if (rl > 127) {
        pkt[n++] = (uint8_t)(rl % 128 | 0x80);
        pkt[n++] = (uint8_t)(rl / 128);
    } else {
        pkt[n++] = (uint8_t)rl;
    }
    pkt[n++] = 0;
    pkt[n++] = 1;
    pkt[n++] = (uint8_t)(fl >> 8);
    pkt[n++] = (uint8_t)fl;
    memcpy(pkt + n, filter, fl);
    n += fl;
    pkt[n++] = 1;
    if (write_all(fd, pkt, n)) return 1;
    size_t in_len = 0;
    int64_t start = wall_ms();
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, 10);
        int64_t now = wall_ms();
        if (pr > 0) {
            ssize_t r = read(fd, in + in_len, sizeof in - in_len);
            if (r <= 0) break;
            in_len += (size_t)r;
            size_t off = 0, na = 0;
            size_t i, len;
            while (mqtt_frame(in, in_len, off, &i, &len)) {
                uint8_t type = in[off] & 0xF0;
                if (type == 0x90) { /* SUBACK */
                    if (!atomic_load(&ready)) fprintf(stderr, "sink: ready\n");
                    atomic_store(&ready, 1);
                } else if (type == 0x30 && len >= 2) {
                    int qos = (in[off] >> 1) & 3;
                    size_t tl = (size_t)in[i] << 8 | in[i + 1], h = 2 + tl + (qos ? 2 : 0);
                    if (h <= len) {
                        account_raw(in + i + h, len - h, now);
                        if (qos == 1 && na + 4 <= sizeof acks) {
                            acks[na++] = 0x40;
                            acks[na++] = 2;
                            acks[na++] = in[i + 2 + tl];
                            acks[na++] = in[i + 3 + tl];
                        }
                    }
                }
                off = i + len;
            }
            if (na && write_all(fd, acks, na)) break;
            memmove(in, in + off, in_len - off);
            in_len -= off;
            if (in_len == sizeof in) break; /* a packet larger than the buffer: not a bench message */
        }
        if (expected && values >= expected) break;
        if (first_ms && now - last_ms > idle_ms) break;
        if (now - start > total_s * 1000) break;
    }
    close(fd);
    return 0;
}

static long percentile(double p) {
    long want = (long)((double)values * p), acc = 0;
    for (long i = 0; i <= HIST_MS; i++) {
        acc += hist[i];
        if (acc > want) return i;
    }
    return HIST_MS;
}

static void print_result(void) {
    double secs = first_ms && last_ms > first_ms ? (double)(last_ms - first_ms) / 1000.0 : 0;
    printf("{\"values\":%ld,\"expected\":%ld,\"messages\":%ld,\"seconds\":%.3f,\"values_per_s\":%.0f,"
           "\"p50_ms\":%ld,\"p99_ms\":%ld,\"max_ms\":%ld}\n",
           values, expected, messages, secs, secs > 0 ? (double)values / secs : 0, percentile(0.5),
           percentile(0.99), percentile(1.0 - 1e-12));
}

int main(int argc, char **argv) {
    int port = 1883, opt;
    long idle_ms = 3000, total_s = 300;
    int answer_only = 0;
    while ((opt = getopt(argc, argv, "p:n:i:t:m:as:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'n':
            expected = atol(optarg);
            break;
        case 'i':
            idle_ms = atol(optarg);
            break;
        case 't':
            total_s = atol(optarg);
            break;
        case 'm':
            max_payload = atol(optarg);
            break;
        case 's':
            raw_filter = optarg;
            break;
        case 'a': /* only answer getSessionLimits, until killed */
            answer_only = 1;
            break;
        default:
            fprintf(stderr, "usage: %s -p port -n expected_values\n", argv[0]);
            return 2;
        }
    }
    if (raw_filter) {
        int rc = raw_run(port, raw_filter, idle_ms, total_s);
        if (rc) return rc;
        print_result();
        return 0;
    }
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "sink-%d", (int)getpid());
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_connect_callback_set(m, answer_only ? on_connect_limits : on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "sink: cannot connect to port %d\n", port);
        return 1;
    }
    if (answer_only) return mosquitto_loop_forever(m, 1000, 1);
    int64_t start = wall_ms();
    int announced = 0;
    for (;;) {
        mosquitto_loop(m, 10, 1000);
        int64_t now = wall_ms();
        if (atomic_load(&ready) && !announced) {
            fprintf(stderr, "sink: ready\n");
            announced = 1;
        }
        if (expected && values >= expected) break;
        if (first_ms && now - last_ms > idle_ms) break;
        if (now - start > total_s * 1000) break;
    }
    print_result();
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
