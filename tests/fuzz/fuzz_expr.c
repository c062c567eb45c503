/* Fuzzes ${} templates and paths: input = "<template>\n<json body>". */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "convert/bytes_conv.h"
#include "convert/expr.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char *nl = strchr(s, '\n');
    const char *body_text = "{}";
    if (nl) {
        *nl = 0;
        body_text = nl + 1;
    }
    json_t *body = tbgw_json_loads(body_text, JSON_DECODE_ANY, NULL);
    tbgw_expr *e = NULL;
    tbgw_err err = {0};
    if (!tbgw_expr_compile(s, &e, &err)) {
        tbgw_buf b, scratch;
        tbgw_buf_init(&b);
        tbgw_buf_init(&scratch);
        for (int f = TBGW_FMT_PY; f <= TBGW_FMT_JSON; f++)
            for (int m = TBGW_MISSING_FAIL; m <= TBGW_MISSING_NONE; m++) {
                tbgw_buf_reset(&b);
                tbgw_expr_render(e, body, (tbgw_fmt)f, (tbgw_missing)m, &b);
            }
        for (int c = TBGW_CAST_STRING; c <= TBGW_CAST_RAW; c++) {
            tbgw_value v;
            tbgw_expr_eval(e, body, (tbgw_cast)c, &v, &scratch);
        }
        tbgw_buf_free(&b);
        tbgw_buf_free(&scratch);
        tbgw_expr_free(e);
    }
    tbgw_slice_tmpl *t = NULL;
    if (!tbgw_slice_compile(s, &t, &err)) {
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_slice_render(t, (const uint8_t *)body_text, strlen(body_text), 0, &b);
        tbgw_slice_render(t, (const uint8_t *)body_text, strlen(body_text), 1, &b);
        tbgw_buf_free(&b);
        tbgw_slice_free(t);
    }
    json_decref(body);
    free(s);
    return 0;
}
