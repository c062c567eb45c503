/* The JSON reader that accepts every number (util/json.c) and the JSON writer: whatever parses is
 * written, the text parses again and writes the same text; every double the input's bytes spell is
 * formatted so that it reads back to itself. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_values(const json_t *j) {
    tbgw_value v;
    char *tmp = NULL;
    if (tbgw_value_from_json(j, &v, &tmp) == 0) {
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_buf_json_value(&b, &v);
        tbgw_buf_free(&b);
    }
    free(tmp);
    if (json_is_array(j))
        for (size_t i = 0; i < json_array_size(j); i++) walk_values(json_array_get(j, i));
}

static void check_doubles(const uint8_t *data, size_t size) {
    for (size_t i = 0; i + 8 <= size && i < 64; i += 8) {
        double d;
        memcpy(&d, data + i, 8);
        char t[TBGW_DOUBLE_MAX];
        size_t n = tbgw_fmt_double(t, d);
        if (n >= TBGW_DOUBLE_MAX || strlen(t) != n) abort();
        if (isfinite(d) && strtod(t, NULL) != d) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t flags = size && (data[0] & 1) ? JSON_DECODE_ANY | JSON_ALLOW_NUL : JSON_DECODE_ANY;
    json_error_t je;
    json_t *j = tbgw_json_loadb(data, size, flags, &je);
    if (j) {
        char *a = tbgw_json_dumps(j, 0);
        json_t *again = a ? tbgw_json_loadb(a, strlen(a), flags, &je) : NULL;
        if (a && !again) abort(); /* the writer wrote something the reader refuses */
        char *b = again ? tbgw_json_dumps(again, (int)(size % 3)) : NULL;
        json_t *third = b ? tbgw_json_loadb(b, strlen(b), flags, &je) : NULL;
        char *c = third ? tbgw_json_dumps(third, 0) : NULL;
        if (a && c && strcmp(a, c) != 0) abort(); /* not stable */
        walk_values(j);
        free(a);
        free(b);
        free(c);
        json_decref(third);
        json_decref(again);
        json_decref(j);
    }
    check_doubles(data, size);
    return 0;
}
