/* The bench's own MQTT servers and pack counter (bench/sink.c, bench/mqtt_frame.h): the packets of
 * the input, framed as bench_sink --serve frames them, are answered without reading out of bounds;
 * and the pack scanner counts exactly what the jansson walk counts for every input jansson reads as
 * JSON without duplicate keys (the scanner gives up on anything else, and the walk counts it). */
#define main bench_sink_main
int bench_sink_main(int argc, char **argv);
#include "../../bench/sink.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* 1. the server side of CONNECT / SUBSCRIBE / PUBLISH / PINGREQ, MQTT 3.1.1 then 5 */
    for (int v5 = 0; v5 < 2; v5++) {
        serve_client c = {.fd = -1, .v5 = v5};
        mqtt_buf out = {0};
        size_t off = 0, b, bl;
        while (off < size && mqtt_frame(data, size, off, &b, &bl)) {
            serve_packet(&c, data[off], data + b, bl, 0, &out);
            long rm = 0;
            mqtt_connect_accept(data + b, bl, &out, &rm);
            mqtt_subscribe_accept(data + b, bl, v5, &out);
            out.len = 0;
            off = b + bl;
        }
        free(out.p);
    }
    /* 2. the scanner against the jansson walk */
    long nf = scan_pack((const char *)data, size);
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j && nf >= 0) {
        long scanned = 0, before = values;
        for (long i = 0; i < nf; i++) scanned += found[i].n;
        count_tree(j, 0);
        if (values - before != scanned) {
            fprintf(stderr, "scanner counted %ld values, jansson %ld\n", scanned, values - before);
            abort();
        }
    }
    json_decref(j);
    return 0;
}
