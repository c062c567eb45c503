/* Benchmark sink on the platform broker: answers getSessionLimits, counts every telemetry value that
 * arrives (tbgw's v1/gateway/telemetry, or the bare relay's packed arrays on relay/telemetry) and the
 * end-to-end latency of each (receive time - the publisher's "ts"). Prints one JSON line.
 * Usage: bench_sink -p port -n expected_values [-i idle_timeout_ms] [-t total_timeout_s] [-m max_payload]
 *        bench_sink -p port -a   (only answers getSessionLimits, until killed) */
#include <jansson.h>
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HIST_MS 60000

static long expected, values, messages;
static int64_t first_ms, last_ms;
static long hist[HIST_MS + 1];
static long max_payload = 65536;
static atomic_int ready;

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
    atomic_store(&ready, 1);
}

static void on_connect_limits(struct mosquitto *m, void *ud, int rc) {
    (void)ud;
    if (!rc) mosquitto_subscribe(m, NULL, "v1/devices/me/rpc/request/+", 1);
}

static long percentile(double p) {
    long want = (long)((double)values * p), acc = 0;
    for (long i = 0; i <= HIST_MS; i++) {
        acc += hist[i];
        if (acc > want) return i;
    }
    return HIST_MS;
}

int main(int argc, char **argv) {
    int port = 1883, opt;
    long idle_ms = 3000, total_s = 300;
    int answer_only = 0;
    while ((opt = getopt(argc, argv, "p:n:i:t:m:a")) != -1) {
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
        case 'a': /* only answer getSessionLimits, until killed */
            answer_only = 1;
            break;
        default:
            fprintf(stderr, "usage: %s -p port -n expected_values\n", argv[0]);
            return 2;
        }
    }
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "sink-%d", (int)getpid());
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_connect_callback_set(m, answer_only ? on_connect_limits : on_connect);
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
    double secs = first_ms && last_ms > first_ms ? (double)(last_ms - first_ms) / 1000.0 : 0;
    printf("{\"values\":%ld,\"expected\":%ld,\"messages\":%ld,\"seconds\":%.3f,\"values_per_s\":%.0f,"
           "\"p50_ms\":%ld,\"p99_ms\":%ld,\"max_ms\":%ld}\n",
           values, expected, messages, secs, secs > 0 ? (double)values / secs : 0, percentile(0.5),
           percentile(0.99), percentile(1.0 - 1e-12));
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
