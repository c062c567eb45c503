/* Benchmark sink on the platform broker: answers getSessionLimits, counts every telemetry value that
 * arrives (tbgw's v1/gateway/telemetry, or the bare relay's packed arrays on relay/telemetry) and the
 * end-to-end latency of each (receive time - the publisher's "ts"). Prints one JSON line.
 * Usage: bench_sink -p port -n expected_values [-i idle_timeout_ms] [-t total_timeout_s] [-m max_payload]
 *                   [-s filter]   (subscribes filter instead, e.g. bench/#: single device messages,
 *                                  the load generator's output without a forwarder, for the bench's
 *                                  ceiling; read by a minimal MQTT 3.1.1 client of its own that reads
 *                                  in 64 KB chunks, writes one batch of PUBACKs per chunk and does not
 *                                  parse JSON, so that it is not what bounds that run; with -R n it
 *                                  speaks MQTT 5 and announces Receive Maximum n)
 *        bench_sink -p port -a   (only answers getSessionLimits, until killed)
 *        bench_sink --serve -p port -n expected_values [-i ..] [-t ..] [-m ..]
 *                                (is the platform broker itself, for one gateway or relay: counts as
 *                                 above, without mosquitto in between; see serve_run) */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

static void account_ms(long long ts, long nvalues, int64_t now) {
    if (nvalues <= 0) return;
    int64_t lat = now - ts;
    if (lat < 0) lat = 0;
    if (lat > HIST_MS) lat = HIST_MS;
    hist[lat] += nvalues;
    values += nvalues;
}

static void account(json_t *ts, long nvalues, int64_t now) {
    if (json_is_integer(ts)) account_ms(json_integer_value(ts), nvalues, now);
}

/* A scanner for the two pack formats that counts like the jansson walk below without building a tree
 * (the platform side must stay far faster than the forwarders): the entries it finds are committed
 * only when the whole pack scanned as well-formed, otherwise the jansson walk counts it. */
typedef struct {
    const char *p, *e;
} scan;

static void sk_ws(scan *s) {
    while (s->p < s->e && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int sk_ch(scan *s, char c) {
    sk_ws(s);
    if (s->p < s->e && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int sk_str(scan *s, const char **k, size_t *kl) {
    sk_ws(s);
    if (s->p >= s->e || *s->p != '"') return -1;
    const char *b = ++s->p;
    while (s->p < s->e && *s->p != '"') s->p += *s->p == '\\' ? 2 : 1;
    if (s->p >= s->e) return -1;
    *k = b;
    *kl = (size_t)(s->p - b);
    s->p++;
    return 0;
}

/* Skips one value; *int_ok and *iv tell whether it was a JSON integer and which. */
static int sk_value(scan *s, int *int_ok, long long *iv) {
    const char *k;
    size_t kl;
    if (int_ok) *int_ok = 0;
    sk_ws(s);
    if (s->p >= s->e) return -1;
    if (*s->p == '"') return sk_str(s, &k, &kl);
    if (*s->p == '{' || *s->p == '[') {
        int depth = 0;
        while (s->p < s->e) {
            char c = *s->p;
            if (c == '"') {
                if (sk_str(s, &k, &kl)) return -1;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if ((c == '}' || c == ']') && --depth == 0) {
                s->p++;
                return 0;
            }
            s->p++;
        }
        return -1;
    }
    const char *b = s->p;
    while (s->p < s->e && (isalnum((unsigned char)*s->p) || *s->p == '-' || *s->p == '+' || *s->p == '.'))
        s->p++;
    size_t n = (size_t)(s->p - b);
    if (!n) return -1;
    if ((n == 4 && !memcmp(b, "true", 4)) || (n == 5 && !memcmp(b, "false", 5)) ||
        (n == 4 && !memcmp(b, "null", 4)))
        return 0;
    size_t i = *b == '-';
    long long v = 0;
    int digits = 1;
    if (n - i > 18) return -1; /* beyond what the scanner reads exactly: jansson decides */
    for (size_t j = i; j < n; j++) {
        if (b[j] < '0' || b[j] > '9')
            digits = 0;
        else
            v = v * 10 + (b[j] - '0');
    }
    if (i == n || (!digits && !strchr("0123456789", b[i]))) return -1; /* not a number */
    if (digits && int_ok) {
        *int_ok = 1;
        *iv = i ? -v : v;
    }
    return 0;
}

static struct {
    long long ts;
    long n;
} found[1 << 15];

/* Entries of one pack into found[]; the count, or -1 if the pack is not one the scanner knows. */
static long scan_pack(const char *p, size_t len) {
    scan s = {p, p + len};
    long nf = 0;
    const char *k;
    size_t kl;
    int tbgw = sk_ch(&s, '{');
    if (!tbgw && !sk_ch(&s, '[')) return -1;
    if (!sk_ch(&s, tbgw ? '}' : ']')) {
        do {
            if (tbgw && (sk_str(&s, &k, &kl) || !sk_ch(&s, ':'))) return -1; /* "device": [...] */
            if (tbgw && !sk_ch(&s, '[')) {
                if (sk_value(&s, NULL, NULL)) return -1;
                continue;
            }
            if (!sk_ch(&s, ']')) {
                do { /* one entry: tbgw {"ts":..,"values":{..}}, the relay {"ts":..,"v1":..,..} */
                    if (!sk_ch(&s, '{')) {
                        if (sk_value(&s, NULL, NULL)) return -1;
                        continue;
                    }
                    int ts_ok = 0;
                    long long ts = 0;
                    long keys = 0, nv = 0;
                    if (!sk_ch(&s, '}')) {
                        do {
                            if (sk_str(&s, &k, &kl) || !sk_ch(&s, ':')) return -1;
                            keys++;
                            if (kl == 2 && !memcmp(k, "ts", 2)) {
                                if (sk_value(&s, &ts_ok, &ts)) return -1;
                            } else if (tbgw && kl == 6 && !memcmp(k, "values", 6) && sk_ch(&s, '{')) {
                                nv = 0;
                                if (!sk_ch(&s, '}')) {
                                    do {
                                        if (sk_str(&s, &k, &kl) || !sk_ch(&s, ':') ||
                                            sk_value(&s, NULL, NULL))
                                            return -1;
                                        nv++;
                                    } while (sk_ch(&s, ','));
                                    if (!sk_ch(&s, '}')) return -1;
                                }
                            } else if (sk_value(&s, NULL, NULL)) {
                                return -1;
                            }
                        } while (sk_ch(&s, ','));
                        if (!sk_ch(&s, '}')) return -1;
                    }
                    if (!tbgw) nv = keys - 1;
                    if (ts_ok && nv > 0) {
                        if (nf == (long)(sizeof found / sizeof found[0])) return -1;
                        found[nf].ts = ts;
                        found[nf++].n = nv;
                    }
                } while (sk_ch(&s, ','));
                if (!sk_ch(&s, ']')) return -1;
            }
        } while (tbgw && sk_ch(&s, ','));
        if (tbgw && !sk_ch(&s, '}')) return -1;
    }
    sk_ws(&s);
    return s.p == s.e ? nf : -1;
}

/* The limits the platform announces: the answer to getSessionLimits. */
static int limits_body(char *body, size_t n) {
    return snprintf(body, n, "{\"maxPayloadSize\":%ld,\"maxInflightMessages\":1000}", max_payload);
}

/* Counts the values of one telemetry pack: tbgw's {"dev":[{"ts":..,"values":{..}}]} or the relay's
 * [{"ts":..,"v1":..},...]. */
/* The jansson walk: the values of a parsed pack. */
static void count_tree(json_t *j, int64_t now) {
    if (json_is_object(j)) {
        const char *dev;
        json_t *arr;
        json_object_foreach(j, dev, arr) {
            size_t i;
            json_t *e;
            json_array_foreach(arr, i, e)
                account(json_object_get(e, "ts"), (long)json_object_size(json_object_get(e, "values")), now);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) account(json_object_get(e, "ts"), (long)json_object_size(e) - 1, now);
    }
}

static void count_pack(const void *payload, size_t len, int64_t now) {
    long before = values, nf = scan_pack(payload, len);
    for (long i = 0; i < nf; i++) account_ms(found[i].ts, found[i].n, now);
    if (nf < 0) {
        json_t *j = json_loadb(payload, len, 0, NULL);
        count_tree(j, now);
        json_decref(j);
    }
    if (values > before) {
        if (!first_ms) first_ms = now;
        last_ms = now;
        messages++;
    }
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    (void)ud;
    int64_t now = wall_ms();
    if (!strncmp(msg->topic, "v1/devices/me/rpc/request/", 26)) {
        char topic[128], body[128];
        snprintf(topic, sizeof topic, "v1/devices/me/rpc/response/%s", msg->topic + 26);
        int n = limits_body(body, sizeof body);
        mosquitto_publish(m, NULL, topic, n, body, 1, false);
        return;
    }
    count_pack(msg->payload, (size_t)msg->payloadlen, now);
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
static int raw_run(int port, const char *filter, long recv_max, long idle_ms, long total_s) {
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
    size_t fl = strlen(filter);
    int v5 = recv_max > 0;
    mqtt_buf pkt = {0};
    /* CONNECT (3.1.1, or 5 announcing Receive Maximum recv_max; clean session, keep-alive 60 s), then
     * SUBSCRIBE filter QoS 1 */
    mqtt_put_u8(&pkt, 0x10);
    mqtt_put_varint(&pkt, 10 + (v5 ? 4 : 0) + 2 + (size_t)idl);
    mqtt_put_u16(&pkt, 4);
    mqtt_put(&pkt, "MQTT", 4);
    mqtt_put_u8(&pkt, v5 ? 5 : 4);
    mqtt_put_u8(&pkt, 0x02);
    mqtt_put_u16(&pkt, 60);
    if (v5) {
        mqtt_put_u8(&pkt, 3);
        mqtt_put_u8(&pkt, 0x21);
        mqtt_put_u16(&pkt, (uint16_t)recv_max);
    }
    mqtt_put_u16(&pkt, (uint16_t)idl);
    mqtt_put(&pkt, id, (size_t)idl);
    mqtt_put_u8(&pkt, 0x82);
    mqtt_put_varint(&pkt, 2 + (v5 ? 1 : 0) + 2 + fl + 1);
    mqtt_put_u16(&pkt, 1);
    if (v5) mqtt_put_u8(&pkt, 0);
    mqtt_put_u16(&pkt, (uint16_t)fl);
    mqtt_put(&pkt, filter, fl);
    mqtt_put_u8(&pkt, 1);
    int wrc = write_all(fd, pkt.p, pkt.len);
    free(pkt.p);
    if (wrc) return 1;
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
                    if (v5 && h < len) { /* the property list */
                        size_t at = i + h;
                        long pl = mqtt_varint(in, i + len, &at);
                        h = pl < 0 ? len + 1 : at - i + (size_t)pl;
                    }
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

/* --serve: the platform's broker for the forwarder itself (no mosquitto in between). Accepts up to
 * SERVE_MAX clients on 127.0.0.1:port, answers CONNECT, SUBSCRIBE (granting what is asked, up to QoS 1)
 * and PINGREQ, answers getSessionLimits on v1/devices/me/rpc/request/<id> like -a does, and counts the
 * packs on v1/gateway/telemetry and relay/telemetry like the broker variant; the PUBACKs of one read
 * (up to 256 KB) go back in one write. */
#define SERVE_MAX 8
typedef struct {
    int fd, v5;
    size_t in_len;
    uint8_t *in;
} serve_client;

static void serve_packet(serve_client *c, uint8_t hdr, const uint8_t *p, size_t len, int64_t now,
                         mqtt_buf *out) {
    uint8_t type = hdr & 0xF0;
    long rm = 0;
    if (type == 0x10) {
        c->v5 = mqtt_connect_accept(p, len, out, &rm) == 1;
    } else if (type == 0x80) {
        mqtt_subscribe_accept(p, len, c->v5, out);
    } else if (type == 0x30 && len >= 2) { /* PUBLISH */
        int qos = (hdr >> 1) & 3;
        size_t tl = (size_t)(p[0] << 8 | p[1]), i = 2 + tl;
        if (i + (qos ? 2 : 0) > len) return;
        char topic[256];
        snprintf(topic, sizeof topic, "%.*s", (int)(tl < 255 ? tl : 255), (const char *)p + 2);
        if (qos) {
            const uint8_t ack[] = {0x40, 2, p[i], p[i + 1]};
            mqtt_put(out, ack, sizeof ack);
            i += 2;
        }
        if (c->v5) {
            long pl = mqtt_varint(p, len, &i);
            if (pl < 0 || i + (size_t)pl > len) return;
            i += (size_t)pl;
        }
        if (!strncmp(topic, "v1/devices/me/rpc/request/", 26)) {
            char rt[300], body[128];
            snprintf(rt, sizeof rt, "v1/devices/me/rpc/response/%s", topic + 26);
            int bl = limits_body(body, sizeof body);
            mqtt_put_publish(out, c->v5, rt, body, (size_t)bl, 0, 0);
            fprintf(stderr, "sink: answered getSessionLimits\n");
        } else if (!strcmp(topic, "v1/gateway/telemetry") || !strcmp(topic, "relay/telemetry")) {
            count_pack(p + i, len - i, now);
        }
    } else if (type == 0xC0) { /* PINGREQ */
        const uint8_t pong[] = {0xD0, 0};
        mqtt_put(out, pong, sizeof pong);
    }
}

static int serve_run(int port, long idle_ms, long total_s) {
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, SERVE_MAX)) {
        fprintf(stderr, "sink: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "sink: ready\n");
    serve_client cl[SERVE_MAX];
    size_t ncl = 0;
    mqtt_buf out = {0};
    enum { CHUNK = 1 << 18, BUF = 1 << 20 }; /* a packet may be up to BUF - 5 bytes */
    int64_t start = wall_ms();
    for (;;) {
        struct pollfd pf[SERVE_MAX + 1];
        pf[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (size_t k = 0; k < ncl; k++) pf[k + 1] = (struct pollfd){.fd = cl[k].fd, .events = POLLIN};
        int pr = poll(pf, (nfds_t)ncl + 1, 10);
        int64_t now = wall_ms();
        if (pr > 0 && (pf[0].revents & POLLIN) && ncl < SERVE_MAX) {
            int fd = accept(ls, NULL, NULL);
            if (fd >= 0) {
                cl[ncl] = (serve_client){.fd = fd, .in = malloc(BUF)};
                if (!cl[ncl].in) return 1;
                ncl++;
            }
        }
        for (size_t k = 0; pr > 0 && k < ncl; k++) {
            if (!(pf[k + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            serve_client *c = &cl[k];
            size_t room = BUF - c->in_len;
            ssize_t r = read(c->fd, c->in + c->in_len, room < CHUNK ? room : CHUNK);
            int gone = r <= 0;
            if (r > 0) {
                c->in_len += (size_t)r;
                size_t off = 0, b, bl;
                out.len = 0;
                while (mqtt_frame(c->in, c->in_len, off, &b, &bl)) {
                    if ((c->in[off] & 0xF0) == 0xE0) gone = 1; /* DISCONNECT */
                    serve_packet(c, c->in[off], c->in + b, bl, now, &out);
                    off = b + bl;
                }
                if (out.len && write_all(c->fd, out.p, out.len)) gone = 1;
                memmove(c->in, c->in + off, c->in_len - off);
                c->in_len -= off;
                if (c->in_len == BUF) gone = 1; /* a packet larger than the buffer: not a bench message */
            }
            if (gone) {
                close(c->fd);
                free(c->in);
                cl[k] = cl[--ncl];
                pf[k + 1] = pf[ncl + 1];
                k--;
            }
        }
        if (expected && values >= expected) break;
        if (first_ms && now - last_ms > idle_ms) break;
        if (now - start > total_s * 1000) break;
    }
    for (size_t k = 0; k < ncl; k++) {
        close(cl[k].fd);
        free(cl[k].in);
    }
    close(ls);
    free(out.p);
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
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("{\"values\":%ld,\"expected\":%ld,\"messages\":%ld,\"seconds\":%.3f,\"values_per_s\":%.0f,"
           "\"p50_ms\":%ld,\"p99_ms\":%ld,\"max_ms\":%ld,\"cpu_s\":%.3f}\n",
           values, expected, messages, secs, secs > 0 ? (double)values / secs : 0, percentile(0.5),
           percentile(0.99), percentile(1.0 - 1e-12), cpu);
}

int main(int argc, char **argv) {
    int port = 1883, opt;
    long idle_ms = 3000, total_s = 300;
    int answer_only = 0, serve = 0;
    long recv_max = 0;
    static const struct option longopts[] = {{"serve", no_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
    while ((opt = getopt_long(argc, argv, "p:n:i:t:m:as:SR:", longopts, NULL)) != -1) {
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
        case 'S':
            serve = 1;
            break;
        case 'R': /* -s over MQTT 5, announcing this Receive Maximum */
            recv_max = atol(optarg);
            if (recv_max < 0 || recv_max > 65535) recv_max = 0;
            break;
        case 'a': /* only answer getSessionLimits, until killed */
            answer_only = 1;
            break;
        default:
            fprintf(stderr, "usage: %s -p port -n expected_values\n", argv[0]);
            return 2;
        }
    }
    if (raw_filter || serve) {
        int rc =
            serve ? serve_run(port, idle_ms, total_s) : raw_run(port, raw_filter, recv_max, idle_ms, total_s);
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
