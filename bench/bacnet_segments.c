/* Segmented requests of the BACnet endpoint (src/proto/bacnet/bn_client.c): COUNT WriteProperty
 * requests of SIZE octets, one after the other, to a peer that takes segments (max APDU MAXAPDU). The
 * peer is a thread on its own UDP socket, built on the project's codec: it acknowledges the first
 * segment at once and then every WINDOW segments (and the last), and answers SimpleACK after the
 * last segment. Reports requests/s, segments/s, the latency per request and the CPU time of the
 * endpoint's thread per segment (RUSAGE_THREAD: the peer thread is not counted).
 *
 * usage: bench_bacnet_segments [count (default 2000)] [size (default 8000)] [window (default 4)]
 *                              [maxapdu (default 480)] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/bacnet/bn.h"
#include "proto/bacnet/bn_client.h"

static int peer_fd;
static volatile int stop_peer;
static unsigned long peer_segments;

static double thread_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void peer_reply(const struct sockaddr_in *to, const uint8_t *apdu, size_t n) {
    uint8_t f[64];
    bn_w w;
    bn_w_init(&w, f, sizeof f);
    bn_put(&w, "\0\0\0\0", 4);
    bn_npdu_encode(&w, 0, 0, NULL, 0);
    bn_put(&w, apdu, n);
    bn_bvll_finish(f, w.len, BN_BVLC_UNICAST);
    sendto(peer_fd, f, w.len, 0, (const struct sockaddr *)to, sizeof *to);
}

/* Reassembles nothing (the bench counts, the unit tests check the content): in-order segments are
 * acknowledged per window, an out-of-order one with a NAK for the last in order. */
static void *peer_main(void *arg) {
    (void)arg;
    int expected = 0, in_window = 0;
    while (!stop_peer) {
        struct pollfd p = {.fd = peer_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        uint8_t buf[1600];
        struct sockaddr_in from;
        socklen_t sl = sizeof from;
        ssize_t n = recvfrom(peer_fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &sl);
        bn_bvll b;
        bn_npdu np;
        bn_apdu a;
        if (n <= 0 || bn_bvll_decode(buf, (size_t)n, &b) != 0 || !b.npdu ||
            bn_npdu_decode(b.npdu, b.npdu_len, &np) != 0 || np.netmsg ||
            bn_apdu_decode(np.apdu, np.apdu_len, &a) != 0 || a.type != BN_PDU_CONFIRMED || !a.segmented)
            continue;
        peer_segments++;
        uint8_t ack[4];
        bn_w w;
        bn_w_init(&w, ack, sizeof ack);
        if (a.seq != (uint8_t)expected) {
            if (expected > 0) {
                ack[0] = 0x43; /* SegmentACK, NAK, from the server */
                ack[1] = a.invoke_id;
                ack[2] = (uint8_t)(expected - 1);
                ack[3] = a.window;
                peer_reply(&from, ack, 4);
            }
            continue;
        }
        expected++;
        in_window++;
        if (a.seq == 0 || in_window == a.window || !a.more_follows) {
            ack[0] = 0x41;
            ack[1] = a.invoke_id;
            ack[2] = a.seq;
            ack[3] = a.window;
            peer_reply(&from, ack, 4);
            in_window = 0;
        }
        if (!a.more_follows) {
            uint8_t sa[3];
            bn_w_init(&w, sa, sizeof sa);
            bn_apdu_simple_ack(&w, a.invoke_id, a.service);
            peer_reply(&from, sa, w.len);
            expected = 0;
        }
    }
    return NULL;
}

static void on_done(void *ud, const bn_result *r) {
    *(int *)ud = r->status == BN_OK ? 1 : -1;
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 2000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 8000;
    unsigned window = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
    unsigned maxapdu = argc > 4 ? (unsigned)atoi(argv[4]) : 480;
    if (count < 1 || size < 1 || size > BN_MAX_REQUEST || maxapdu < 50 || maxapdu > BN_MAX_APDU) {
        fprintf(stderr, "usage: %s [count] [size <= %d] [window] [maxapdu 50..1476]\n", argv[0],
                BN_MAX_REQUEST);
        return 2;
    }
    peer_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    if (bind(peer_fd, (struct sockaddr *)&sa, sizeof sa) != 0) return perror("bind"), 1;
    socklen_t sl = sizeof sa;
    getsockname(peer_fd, (struct sockaddr *)&sa, &sl);
    bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .timeout_ms = 1000, .retries = 2};
    char why[128];
    bn_client *c = bn_client_open(&o, NULL, why, sizeof why);
    if (!c) return fprintf(stderr, "%s\n", why), 1;
    bn_client_set_window(c, window);
    pthread_t th;
    pthread_create(&th, NULL, peer_main, NULL);
    uint8_t *req = malloc(size);
    for (size_t i = 0; i < size; i++) req[i] = (uint8_t)i;
    bn_addr dst = {.ip = 0x7F000001, .port = ntohs(sa.sin_port)};
    double t0 = now_s(), c0 = thread_cpu_s();
    int ok = 0, failed = 0;
    for (int i = 0; i < count; i++) {
        int st = 0;
        if (bn_client_request(c, &dst, BN_SVC_WRITE_PROPERTY, req, size, maxapdu, 1, on_done, &st) != 0) {
            failed++;
            continue;
        }
        while (!st) bn_client_poll(c, 100);
        if (st > 0)
            ok++;
        else
            failed++;
    }
    double wall = now_s() - t0, cpu = thread_cpu_s() - c0;
    bn_client_stats cs;
    bn_client_get_stats(c, &cs);
    stop_peer = 1;
    pthread_join(th, NULL);
    printf("BACnet segmented requests: %d x %zu octets, peer max APDU %u, window %u\n", count, size, maxapdu,
           window);
    printf("  completed         : %d (%d failed), %.0f requests/s, %.0f segments/s\n", ok, failed, ok / wall,
           (double)cs.segments_sent / wall);
    printf("  segments          : %llu sent (%llu retries), %lu received by the peer\n",
           (unsigned long long)cs.segments_sent, (unsigned long long)cs.retries, peer_segments);
    printf("  latency           : %.0f us per request (loopback, one at a time)\n", wall / count * 1e6);
    printf("  endpoint CPU      : %.2f us per segment, %.1f us per request\n",
           cs.segments_sent ? cpu / (double)cs.segments_sent * 1e6 : 0.0, cpu / count * 1e6);
    bn_client_close(c);
    close(peer_fd);
    free(req);
    return failed ? 1 : 0;
}
