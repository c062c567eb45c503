/* Fuzzes the FTP connector's file conversion: the input is a file's content, converted as a csv
 * table, a SLICED txt file (the reference configuration's path) and a JSON file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ftp_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ftp_path sliced, table, js;
    static int ready;
    if (!ready) {
        sliced = ftp_fuzz_path(
            "{\"path\": \"fol/*_hello*.txt\", \"readMode\": \"FULL\", \"txtFileDataView\": \"SLICED\", "
            "\"devicePatternName\": \"[0:2]\", \"attributes\": [{\"key\": \"temp\", \"value\": \"[1:]\"}], "
            "\"timeseries\": [{\"key\": \"[0:1]\", \"value\": \"[-2:]\"}, {\"key\": \"ts\", \"value\": "
            "\"[3]\"}]}");
        table = ftp_fuzz_path(
            "{\"path\": \"d/x.csv\", \"readMode\": \"PARTIAL\", \"devicePatternName\": \"${name}\", "
            "\"timeseries\": [{\"key\": \"t_${name}\", \"value\": \"${temp} C\"}, {\"key\": \"ts\", "
            "\"value\": "
            "\"${ts}\"}]}");
        js = ftp_fuzz_path(
            "{\"path\": \"j/x.json\", \"readMode\": \"FULL\", \"devicePatternName\": \"${dev}\", "
            "\"timeseries\": "
            "[{\"type\": \"integer\", \"key\": \"v\", \"value\": \"${v}\"}, {\"type\": \"double\", "
            "\"key\": \"d\", "
            "\"value\": \"${a.b[0]}\"}]}");
        ready = 1;
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    size_t cap = 16, n = 0;
    char **lines = malloc(cap * sizeof *lines);
    for (char *p = text, *nl; lines && p <= text + size; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(text + size - p));
        if (!nl) nl = text + size;
        *nl = 0;
        if (n == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        if (lines) lines[n++] = p;
        if (nl == text + size) break;
    }
    if (lines && n) {
        tbgw_converted_free(ftp_convert_lines(&sliced, 't', NULL, lines, n, 0));
        tbgw_converted_free(ftp_convert_lines(&table, 'c', lines[0], lines, n, 1));
    }
    free(lines);
    free(text);
    tbgw_converted_free(ftp_convert_json(&js, (const char *)data, size, NULL));
    return 0;
}
