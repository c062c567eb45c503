/* Python-expression evaluator benchmark (convert/pyexpr.h): compile (parse-once) cost and
 * evaluation time per expression for the kinds of expressions the reference configurations carry,
 * bindings included (a context reset + binding the names, as a connector does per value).
 * With "-" as the only argument, expressions are read from stdin (one per line) instead.
 *
 * usage: bench_pyexpr_bench [-n iterations] [-] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "convert/pyexpr.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char *const builtin_cases[] = {
    "value * 10",                                                      /* CAN expression */
    "value / 4",                                                       /* CAN expression */
    "bool(value & 0b00000100)",                                        /* CAN expression */
    "userSpeed if maxAllowedSpeed > userSpeed else maxAllowedSpeed",   /* CAN dataExpression */
    "'ODBC ' + str(entity_id)",                                        /* ODBC device name */
    "[i for i in [str_v, long_v, dbl_v, bool_v] if i is not None][0]", /* stock odbc.json */
    "value * 9 / 5 + 32",                                              /* MQTT useEval-style */
    "int.from_bytes(raw[0:2], 'big') / 10",                            /* BLE compute-style */
    "f'{value:.2f} C'",                                                /* formatting */
    "sorted(rows, key=lambda r: r[1])[0][0]",                          /* lambda key */
};

static void bind_all(tbgw_py_ctx *c) {
    tbgw_py_ctx_reset(c);
    tbgw_py_bind(c, "value", tbgw_py_int(c, 1234));
    tbgw_py_bind(c, "userSpeed", tbgw_py_int(c, 70));
    tbgw_py_bind(c, "maxAllowedSpeed", tbgw_py_int(c, 90));
    tbgw_py_bind(c, "entity_id", tbgw_py_int(c, 17));
    tbgw_py_bind(c, "str_v", tbgw_py_none(c));
    tbgw_py_bind(c, "long_v", tbgw_py_int(c, 42));
    tbgw_py_bind(c, "dbl_v", tbgw_py_float(c, 2.5));
    tbgw_py_bind(c, "bool_v", tbgw_py_bool(c, 1));
    tbgw_py_bind(c, "raw", tbgw_py_bytes(c, "\x01\x17\xff", 3));
    json_t *rows = json_pack("[[s,i],[s,i],[s,i]]", "a", 3, "b", 1, "c", 2);
    tbgw_py_bind(c, "rows", tbgw_py_from_json(c, rows));
    json_decref(rows);
}

static int bench(const char *src, long n, tbgw_py_ctx *c) {
    size_t len = strlen(src);
    tbgw_err err;
    tbgw_py *e = NULL;
    /* compile */
    long nc = n / 10 > 1000 ? n / 10 : 1000;
    double t0 = now_ns();
    for (long i = 0; i < nc; i++) {
        tbgw_py *tmp = NULL;
        if (tbgw_py_compile(src, len, 0, &tmp, &err, NULL)) {
            printf("%-66s compile error: %s\n", src, err.msg);
            return 1;
        }
        tbgw_py_free(tmp);
    }
    double compile_ns = (now_ns() - t0) / (double)nc;
    tbgw_py_compile(src, len, 0, &e, &err, NULL);
    /* bindings alone */
    t0 = now_ns();
    for (long i = 0; i < n; i++) bind_all(c);
    double bind_ns = (now_ns() - t0) / (double)n;
    /* evaluation (bindings made once) */
    bind_all(c);
    const tbgw_py_val *v = NULL;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (tbgw_py_eval(e, c, &v, &err)) {
            printf("%-66s eval error: %s\n", src, err.msg);
            tbgw_py_free(e);
            return 1;
        }
        if ((i & 1023) == 1023) bind_all(c); /* values accumulate until a reset */
    }
    double eval_ns = (now_ns() - t0) / (double)n;
    tbgw_buf b;
    tbgw_buf_init(&b);
    bind_all(c);
    tbgw_py_eval(e, c, &v, &err);
    tbgw_py_repr(c, v, &b);
    printf("%-66s compile %7.0f ns  eval %6.0f ns  (+bind %5.0f ns)  -> %s\n", src, compile_ns, eval_ns,
           bind_ns, tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    tbgw_py_free(e);
    return 0;
}

int main(int argc, char **argv) {
    long n = 200000;
    int from_stdin = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-"))
            from_stdin = 1;
        else {
            fprintf(stderr, "usage: %s [-n iterations] [-]\n", argv[0]);
            return 2;
        }
    }
    tbgw_py_ctx *c = tbgw_py_ctx_new(NULL);
    int rc = 0;
    if (from_stdin) {
        char line[4096];
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\n")] = 0;
            if (*line) rc |= bench(line, n, c);
        }
    } else {
        for (size_t i = 0; i < sizeof builtin_cases / sizeof builtin_cases[0]; i++)
            rc |= bench(builtin_cases[i], n, c);
    }
    tbgw_py_ctx_free(c);
    return rc;
}
