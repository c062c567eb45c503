/* Bare relay: the ceiling of this machine for a B -> A MQTT relay. Subscribes to bench/# on the
 * source broker and forwards the payloads, unparsed, packed into JSON arrays of at most max_payload
 * bytes, to relay/telemetry on the destination broker (QoS 1 both ways), like a gateway packs.
 * Usage: bench_relay -s src_port -d dst_port [-m max_payload] [-5]
 * -5: MQTT 5 towards the source (libmosquitto then announces its default Receive Maximum, 20, as the
 *     gateway's MQTT 5 client does), 3.1.1 otherwise. */
#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *buf;
static size_t len, max_payload = 52428;
static struct mosquitto *dst;
static volatile sig_atomic_t stop;

static void flush_locked(void) {
    if (len <= 1) return;
    buf[len++] = ']';
    mosquitto_publish(dst, NULL, "relay/telemetry", (int)len, buf, 1, false);
    len = 0;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    (void)m;
    (void)ud;
    pthread_mutex_lock(&mu);
    if (len && len + (size_t)msg->payloadlen + 2 > max_payload) flush_locked();
    char sep = len ? ',' : '[';
    buf[len++] = sep;
    memcpy(buf + len, msg->payload, (size_t)msg->payloadlen);
    len += (size_t)msg->payloadlen;
    pthread_mutex_unlock(&mu);
}

static void on_connect(struct mosquitto *m, void *ud, int rc) {
    (void)ud;
    if (!rc) mosquitto_subscribe(m, NULL, "bench/#", 1);
}

static void on_signal(int s) {
    (void)s;
    stop = 1;
}

int main(int argc, char **argv) {
    int sport = 0, dport = 0, v5 = 0, opt;
    while ((opt = getopt(argc, argv, "s:d:m:5")) != -1) {
        switch (opt) {
        case 's':
            sport = atoi(optarg);
            break;
        case 'd':
            dport = atoi(optarg);
            break;
        case 'm':
            max_payload = (size_t)atol(optarg);
            break;
        case '5':
            v5 = 1;
            break;
        default:
            fprintf(stderr, "usage: %s -s src_port -d dst_port\n", argv[0]);
            return 2;
        }
    }
    buf = malloc(max_payload + 65536);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    mosquitto_lib_init();
    dst = mosquitto_new("relay-out", true, NULL);
    mosquitto_max_inflight_messages_set(dst, 1000);
    struct mosquitto *src = mosquitto_new("relay-in", true, NULL);
    if (v5) mosquitto_int_option(src, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_callback_set(src, on_connect);
    mosquitto_message_callback_set(src, on_message);
    if (mosquitto_connect(dst, "127.0.0.1", dport, 60) || mosquitto_connect(src, "127.0.0.1", sport, 60)) {
        fprintf(stderr, "relay: cannot connect\n");
        return 1;
    }
    mosquitto_loop_start(dst);
    mosquitto_loop_start(src);
    while (!stop) {
        usleep(2000);
        pthread_mutex_lock(&mu);
        flush_locked();
        pthread_mutex_unlock(&mu);
    }
    mosquitto_loop_stop(src, true);
    mosquitto_loop_stop(dst, true);
    return 0;
}
