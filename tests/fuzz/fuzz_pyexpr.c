/* Fuzzes the Python-expression evaluator (convert/pyexpr.h): compile, evaluate with a few bound
 * names, repr/str/JSON of the result. Input: one flag byte (bit 0: strict; bit 1: the source is a
 * one-expression function `def f(a, b): return ...`, called with a JSON object and a string), then
 * the expression.
 * Evaluations are bounded (steps, memory, depth), so every input finishes quickly.
 *
 * With TBGW_PYEXPR_FUZZ_LOG=<file>, every input that compiles is appended to <file> as one JSON
 * line for tests/integration/test_pyexpr_diff.py (TBGW_PYEXPR_EXTRA=<file>), which compares the
 * evaluator with python3 on them. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tbgw_py_ctx *ctx;

static void log_input(const char *src, size_t len, int strict) {
    static FILE *f;
    static int tried;
    if (!tried) {
        tried = 1;
        const char *p = getenv("TBGW_PYEXPR_FUZZ_LOG");
        if (p) f = fopen(p, "a");
    }
    if (!f) return;
    json_t *j = json_pack("{s:s%,s:b}", "e", src, len, "strict", strict);
    if (!j) return;
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) fprintf(f, "%s\n", s);
    free(s);
    json_decref(j);
    fflush(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    if (!ctx) {
        tbgw_py_limits lim = {.max_steps = 200000, .max_memory = 4u << 20, .max_depth = 50};
        ctx = tbgw_py_ctx_new(&lim);
        if (!ctx) return 0;
    }
    int strict = data[0] & 1;
    const char *src = (const char *)data + 1;
    size_t len = size - 1;
    tbgw_py *e = NULL;
    tbgw_err err;
    size_t off;
    if (data[0] & 2) {
        tbgw_py_def *f = NULL;
        if (tbgw_py_compile_def(src, len, strict ? TBGW_PY_STRICT : 0, &f, &err, &off)) {
            if (off > len) abort();
            return 0;
        }
        tbgw_py_ctx_reset(ctx);
        json_t *arg = json_pack("{s:[{s:i}],s:s}", "values", "avg", 1500, "k", "v");
        const tbgw_py_val *args[2] = {tbgw_py_from_json(ctx, arg), tbgw_py_str(ctx, "key", 3)};
        json_decref(arg);
        const tbgw_py_val *v;
        if (!tbgw_py_call_def(f, ctx, args, 2, &v, &err)) {
            json_t *j = NULL;
            if (!tbgw_py_to_json(ctx, v, &j, &err)) json_decref(j);
        }
        tbgw_py_def_free(f);
        return 0;
    }
    if (tbgw_py_compile(src, len, strict ? TBGW_PY_STRICT : 0, &e, &err, &off)) return 0;
    if (off > len) abort();
    log_input(src, len, strict);
    tbgw_py_ctx_reset(ctx);
    tbgw_py_bind(ctx, "value", tbgw_py_int(ctx, 42));
    tbgw_py_bind(ctx, "raw", tbgw_py_bytes(ctx, "\x01\x02\xff", 3));
    json_t *row =
        json_pack("{s:i,s:f,s:s,s:n,s:[i,s]}", "id", 7, "t", 21.5, "name", "dev", "none", "list", 1, "x");
    tbgw_py_bind_json_members(ctx, row);
    tbgw_py_bind(ctx, "data", tbgw_py_from_json(ctx, row));
    json_decref(row);
    tbgw_py_val *dev = tbgw_py_object(ctx, "Device");
    tbgw_py_setattr(ctx, dev, "name", tbgw_py_str(ctx, "D1", 2));
    tbgw_py_bind(ctx, "device", dev);
    const tbgw_py_val *v;
    if (!tbgw_py_eval(e, ctx, &v, &err)) {
        tbgw_buf b, scratch;
        tbgw_buf_init(&b);
        tbgw_buf_init(&scratch);
        tbgw_py_repr(ctx, v, &b);
        tbgw_py_text(ctx, v, &b);
        tbgw_py_truthy(ctx, v);
        json_t *j = NULL;
        if (!tbgw_py_to_json(ctx, v, &j, &err)) json_decref(j);
        tbgw_value tv;
        tbgw_py_to_value(ctx, v, &tv, &scratch, &err);
        const tbgw_py_val *c;
        tbgw_py_apply(ctx, "int", v, &c, &err);
        tbgw_py_apply(ctx, "float", v, &c, &err);
        tbgw_buf_free(&b);
        tbgw_buf_free(&scratch);
    } else if (strncmp(err.msg, "SyntaxError", 11) && !strchr(err.msg, ':')) {
        abort(); /* runtime errors are "Type: message" */
    }
    tbgw_py_free(e);
    return 0;
}
