/* Fuzzes the templates of outgoing HTTP requests (convert/dl_tmpl.h): "<template>\0<JSON document>",
 * rendered with URL quoting and with JSON-string escaping. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "convert/dl_tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    const uint8_t *z = memchr(data, 0, size);
    size_t tl = z ? (size_t)(z - data) : size;
    char *t = strndup((const char *)data, tl);
    json_t *root = z ? json_loadb((const char *)z + 1, size - tl - 1, JSON_DECODE_ANY, NULL) : NULL;
    tbgw_expr *e = NULL;
    if (t && tbgw_expr_compile(t, &e, NULL) == 0) {
        json_t *val = json_object_get(root, "v");
        for (int mode = 0; mode < 4; mode++) {
            tbgw_dl_vars v = {.device = "dev ice/1",
                              .key = "k",
                              .value = val ? val : root,
                              .method = "m",
                              .id = 42,
                              .root = root,
                              .quote = mode & 1,
                              .json_escape = mode >> 1};
            tbgw_buf out;
            tbgw_buf_init(&out);
            tbgw_dl_render(e, &v, &out);
            tbgw_buf_free(&out);
        }
        tbgw_expr_free(e);
    }
    json_decref(root);
    free(t);
    return 0;
}
