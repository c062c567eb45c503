/* Fuzzes the FTP connector's streamed line splitter: the input is cut into chunks at positions taken
 * from its first bytes and fed as a transfer would deliver it, to a csv table and a SLICED txt stream
 * (FULL and PARTIAL), with a sink that refuses some batches as a saturated core does. Checks that
 * what was consumed never exceeds what was fed and that a refused batch leaves the position alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ftp_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
    unsigned seed;
} sink;

static int to_sink(void *ud, tbgw_converted *chain) {
    sink *k = ud;
    k->seed = k->seed * 1103515245u + 12345u;
    tbgw_converted_free(chain);
    return (k->seed >> 16) % 4 == 0 ? TBGW_EAGAIN : 0;
}

static void run(const ftp_path *p, char kind, int full, const uint8_t *cuts, size_t n_cuts, const char *text,
                size_t len) {
    sink k = {(unsigned)len};
    ftp_stream s;
    ftp_stream_init(&s, p, kind, full, !full || len % 2, full ? NULL : "name,temp,ts", to_sink, &k);
    size_t at = 0, c = 0;
    while (at < len) {
        size_t step = n_cuts ? (size_t)cuts[c++ % n_cuts] * 37 + 1 : len;
        if (step > len - at) step = len - at;
        long long before = s.consumed;
        int rc = ftp_stream_feed(&s, text + at, step);
        if (rc == TBGW_ENOMEM) break;
        at += step;
        if (s.consumed > (long long)at || s.consumed < before) abort();
        if (rc == TBGW_EAGAIN) { /* offered again until taken, as the connector does */
            int tries = 0;
            while (ftp_stream_flush(&s, 0) == TBGW_EAGAIN && ++tries < 64) {
            }
        }
    }
    for (int tries = 0; tries < 64 && ftp_stream_flush(&s, 1) == TBGW_EAGAIN; tries++) {
    }
    if (s.consumed > (long long)len) abort();
    if (s.tail_len > FTP_STREAM_TAIL || (s.consumed && !s.tail_len)) abort();
    ftp_stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ftp_path sliced, table;
    static int ready;
    if (!ready) {
        sliced = ftp_fuzz_path(
            "{\"path\": \"fol/a.txt\", \"readMode\": \"PARTIAL\", \"txtFileDataView\": \"SLICED\", "
            "\"devicePatternName\": \"[0:2]\", \"timeseries\": [{\"key\": \"[0:1]\", \"value\": "
            "\"[-2:]\"}, {\"key\": \"ts\", \"value\": \"[3]\"}]}");
        table = ftp_fuzz_path(
            "{\"path\": \"d/x.csv\", \"readMode\": \"PARTIAL\", \"devicePatternName\": \"${name}\", "
            "\"timeseries\": [{\"key\": \"t\", \"value\": \"${temp}\"}, {\"key\": \"ts\", \"value\": "
            "\"${ts}\"}], \"attributes\": [{\"key\": \"a\", \"value\": \"${temp}\"}]}");
        ready = 1;
    }
    size_t n_cuts = size ? data[0] % 8 : 0;
    if (n_cuts + 1 > size) n_cuts = 0;
    const uint8_t *cuts = data + 1;
    const char *text = (const char *)data + (size ? 1 + n_cuts : 0);
    size_t len = size ? size - 1 - n_cuts : 0;
    for (int full = 0; full < 2; full++) {
        run(&table, 'c', full, cuts, n_cuts, text, len);
        run(&sliced, 't', full, cuts, n_cuts, text, len);
    }
    return 0;
}
