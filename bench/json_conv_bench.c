/* JSON uplink converter per message, the two ways of reading a payload measured in the same run:
 * tree = tbgw_json_loadb + tbgw_json_conv_convert (a jansson tree of the whole payload), text =
 * tbgw_json_conv_convert_text (the payload scanned in place, util/jscan.h). The mapping and payloads
 * are those of bench/run.sh (device name from the topic, 4 typed timeseries keys). CPU time of the
 * calling thread (CLOCK_THREAD_CPUTIME_ID), best of the rounds; the records are freed per message
 * as the connector's batch does.
 *
 * usage: bench_json_conv_bench [-n messages] [-r rounds] [-w tree|text (only that way, for profiles)] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "convert/json_conv.h"
#include "util/json.h"

static const char *const cfg =
    "{\"deviceInfo\": {\"deviceNameExpressionSource\": \"topic\", \"deviceNameExpression\": "
    "\"(?<=bench/)[^/]+\", \"deviceProfileExpressionSource\": \"constant\", \"deviceProfileExpression\": "
    "\"bench\"}, \"timeseries\": [{\"type\": \"double\", \"key\": \"v1\", \"value\": \"${v1}\"}, {\"type\": "
    "\"integer\", \"key\": \"v2\", \"value\": \"${v2}\"}, {\"type\": \"boolean\", \"key\": \"v3\", "
    "\"value\": "
    "\"${v3}\"}, {\"type\": \"string\", \"key\": \"v4\", \"value\": \"${v4}\"}]}";

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define NPAY 64

int main(int argc, char **argv) {
    long n = 1000000;
    int rounds = 5, only = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n = atol(argv[i + 1]);
        if (!strcmp(argv[i], "-r")) rounds = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "-w")) only = !strcmp(argv[i + 1], "text");
    }
    json_t *c = json_loads(cfg, 0, NULL);
    tbgw_json_conv *conv = NULL;
    tbgw_err err = {0};
    if (!c || tbgw_json_conv_new(c, NULL, "converter", &conv, &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 1;
    }
    json_decref(c);
    /* payloads and topics as bench/loadgen.c writes them */
    char pay[NPAY][160], topic[NPAY][64];
    size_t len[NPAY];
    for (int i = 0; i < NPAY; i++) {
        len[i] = (size_t)snprintf(pay[i], sizeof pay[i],
                                  "{\"ts\":%lld,\"v1\":%d.5,\"v2\":%d,\"v3\":%s,\"v4\":\"s%d\"}",
                                  1764769000000LL + i, i, i, i % 2 ? "true" : "false", i);
        snprintf(topic[i], sizeof topic[i], "bench/dev%d/data", i % 10);
    }
    double best[2] = {1e30, 1e30};
    long values = 0;
    for (int r = 0; r < rounds; r++) {
        for (int way = 0; way < 2; way++) {
            if (only >= 0 && way != only) continue;
            double t0 = cpu_ns();
            for (long i = 0; i < n; i++) {
                int k = (int)(i % NPAY);
                tbgw_converted *out = NULL;
                int rc;
                if (way == 0) {
                    json_t *body = tbgw_json_loadb(pay[k], len[k], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                    rc = tbgw_json_conv_convert(conv, topic[k], body, 1, &out, &err);
                    json_decref(body);
                } else {
                    rc = tbgw_json_conv_convert_text(conv, topic[k], pay[k], len[k], 1, &out, &err);
                }
                if (rc != 1) {
                    fprintf(stderr, "convert failed: %d %s\n", rc, err.msg);
                    return 1;
                }
                values += (long)tbgw_converted_count(out);
                tbgw_converted_free(out);
            }
            double ns = (cpu_ns() - t0) / (double)n;
            if (ns < best[way]) best[way] = ns;
        }
    }
    printf("{\"messages\": %ld, \"rounds\": %d, \"tree_ns_per_msg\": %.0f, \"text_ns_per_msg\": %.0f, "
           "\"ratio\": %.2f, \"values\": %ld, \"reads_text\": %d}\n",
           n, rounds, best[0], best[1], best[0] / best[1], values, tbgw_json_conv_reads_text(conv));
    tbgw_json_conv_free(conv);
    return 0;
}
