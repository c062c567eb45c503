/* Benchmark load generator: publishes N JSON messages of 4 values over D devices to an MQTT broker,
 * at a fixed rate or flat out. Topic bench/<device>/data, payload
 * {"ts":<publish time, epoch ms>,"v1":..,"v2":..,"v3":..,"v4":..}.
 * Usage: bench_loadgen -p port [-h host] [-n messages] [-d devices] [-r msgs_per_s (0 = flat out)] [-q qos]
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long acked;

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

static void on_publish(struct mosquitto *m, void *ud, int mid) {
    (void)m;
    (void)ud;
    (void)mid;
    atomic_fetch_add(&acked, 1);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 1883, qos = 1, opt;
    long n = 100000, devices = 100;
    double rate = 0;
    while ((opt = getopt(argc, argv, "h:p:n:d:r:q:")) != -1) {
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
            qos = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s -p port [-n N] [-d D] [-r rate] [-q qos]\n", argv[0]);
            return 2;
        }
    }
    if (devices < 1) devices = 1;
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "loadgen-%d", (int)getpid());
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_max_inflight_messages_set(m, 1000);
    mosquitto_publish_callback_set(m, on_publish);
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "loadgen: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    mosquitto_loop_start(m);
    char topic[64], payload[160];
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
        /* bound what libmosquitto buffers: at most 20000 unacknowledged messages */
        while (qos > 0 && i - atomic_load(&acked) > 20000) usleep(200);
        snprintf(topic, sizeof topic, "bench/dev%ld/data", i % devices);
        int len = snprintf(payload, sizeof payload,
                           "{\"ts\":%lld,\"v1\":%ld.5,\"v2\":%ld,\"v3\":%s,\"v4\":\"s%ld\"}",
                           (long long)wall_ms(), i % 1000, i, (i & 1) ? "true" : "false", i % 97);
        int rc = mosquitto_publish(m, NULL, topic, len, payload, qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "loadgen: publish failed: %s\n", mosquitto_strerror(rc));
            return 1;
        }
    }
    int64_t sent = now_ns();
    for (int w = 0; qos > 0 && atomic_load(&acked) < n && w < 60000; w++) usleep(1000);
    double secs = (double)(sent - start) / 1e9;
    printf("{\"messages\":%ld,\"acked\":%ld,\"publish_seconds\":%.3f,\"rate\":%.0f}\n", n,
           atomic_load(&acked), secs, secs > 0 ? (double)n / secs : 0);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
