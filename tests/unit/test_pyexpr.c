/* The Python-expression evaluator (convert/pyexpr.h): unit tests, and with `--stdin` a driver for
 * the differential test against python3 (tests/integration/test_pyexpr_diff.py): every input line
 * is a JSON string (the expression) or an object {"e": expr, "b": {name: value}, "strict": bool};
 * every output line is "OK <repr>" or "ERR <Python-style error>". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr.h"
#include "util/doc.h"
#include "util/json.h"

/* evaluates src with optional bindings (JSON object text); returns "OK repr" / "ERR msg" (static) */
static const char *run(tbgw_py_ctx *c, const char *src, size_t len, const json_t *binds, int strict) {
    static char out[1 << 16];
    tbgw_err err = {0};
    tbgw_py *e = NULL;
    size_t off = 0;
    tbgw_py_ctx_reset(c);
    if (tbgw_py_compile(src, len, strict ? TBGW_PY_STRICT : 0, &e, &err, &off)) {
        snprintf(out, sizeof out, "ERR %s", err.msg);
        return out;
    }
    if (binds) tbgw_py_bind_json_members(c, binds);
    const tbgw_py_val *v;
    if (tbgw_py_eval(e, c, &v, &err)) {
        snprintf(out, sizeof out, "ERR %s", err.msg);
    } else {
        tbgw_buf b;
        tbgw_buf_init(&b);
        if (tbgw_py_repr(c, v, &b))
            snprintf(out, sizeof out, "ERR %s", tbgw_py_last_error(c));
        else
            snprintf(out, sizeof out, "OK %.*s", (int)b.len, b.p ? b.p : "");
        tbgw_buf_free(&b);
    }
    tbgw_py_free(e);
    return out;
}

static int stdin_mode(void) {
    tbgw_py_ctx *c = tbgw_py_ctx_new(NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)n, JSON_DECODE_ANY, &je);
        if (!j) {
            printf("ERR bad input line\n");
            continue;
        }
        const json_t *ej = json_is_object(j) ? json_object_get(j, "e") : j;
        const json_t *bj = json_is_object(j) ? json_object_get(j, "b") : NULL;
        int strict = json_is_object(j) && json_is_true(json_object_get(j, "strict"));
        if (!json_is_string(ej)) {
            printf("ERR bad input line\n");
        } else {
            const char *r = run(c, json_string_value(ej), json_string_length(ej), bj, strict);
            fputs(r, stdout);
            fputc('\n', stdout);
        }
        json_decref(j);
    }
    free(line);
    tbgw_py_ctx_free(c);
    return 0;
}

static tbgw_py_ctx *ctx;

static void expect(const char *src, const char *want) {
    const char *got = run(ctx, src, strlen(src), NULL, 0);
    if (strcmp(got, want)) fail_msg("%s: got [%s], want [%s]", src, got, want);
}

static void expect_prefix(const char *src, const char *want) {
    const char *got = run(ctx, src, strlen(src), NULL, 0);
    if (strncmp(got, want, strlen(want))) fail_msg("%s: got [%s], want prefix [%s]", src, got, want);
}

static void t_basics(void **st) {
    expect("1 + 2 * 3", "OK 7");
    expect("2 ** 100", "OK 1267650600228229401496703205376");
    expect("-7 // 2, -7 % 2, 7 % -2, 7.5 // -2", "OK (-4, 1, -1, -4.0)");
    expect("1 / 3", "OK 0.3333333333333333");
    expect("0.1 + 0.2", "OK 0.30000000000000004");
    expect("1e-7, 25.0, 1e16, 1.5e300 * 1e10", "OK (1e-07, 25.0, 1e+16, inf)");
    expect("round(2.5), round(3.5), round(2.675, 2), round(1234.5, -2)", "OK (2, 4, 2.67, 1200.0)");
    expect("1 < 2 < 3, 1 < 3 < 2, not 1, 1 and 0 or 5", "OK (True, False, False, 5)");
    expect("'abc'[::-1], 'hello'[1:-1], [1, 2, 3, 4][::2]", "OK ('cba', 'ell', [1, 3])");
    expect("[x * x for x in range(5) if x % 2]", "OK [1, 9]");
    expect("{k: v for k, v in zip('ab', (1, 2))}", "OK {'a': 1, 'b': 2}");
    expect("sorted([(1, 'b'), (0, 'c'), (1, 'a')], key=lambda r: r[0])", "OK [(0, 'c'), (1, 'b'), (1, 'a')]");
    expect("'%05.1f|%-4d|%x' % (3.14159, 7, 255)", "OK '003.1|7   |ff'");
    expect("'{:>6.2f}|{!r}|{name}'.format(2.5, 'x', name=3)", "OK \"  2.50|'x'|3\"");
    expect("f'{1+1:03d} {\"q\"!r} {3.0=}'", "OK \"002 'q' 3.0=3.0\"");
    expect("int.from_bytes(b'\\x01\\x00', 'little'), bytes([1, 255]).hex(), bytearray(b'ab')",
           "OK (1, '01ff', bytearray(b'ab'))");
    expect("' a b '.split(), 'a,b,,c'.split(','), '-'.join(['x', 'y'])",
           "OK (['a', 'b'], ['a', 'b', '', 'c'], 'x-y')");
    expect("None is None, 1 in [1, 2], 'b' not in 'abc', isinstance(True, int)",
           "OK (True, True, False, True)");
    expect("1 if 0 else 2 if 0 else 3", "OK 3");
    expect("(lambda a, b: a * b)(3, b=4)", "OK 12");
    expect("hex(-255), bin(5), abs(-2**70), divmod(-7, 2)",
           "OK ('-0xff', '0b101', 1180591620717411303424, (-4, 1))");
    expect("str(0.1), repr(\"it's\"), str(None), str(True)", "OK ('0.1', '\"it\\'s\"', 'None', 'True')");
    expect("'ODBC ' + str(5)", "OK 'ODBC 5'");
}

static void t_errors(void **st) {
    expect("1 / 0", "ERR ZeroDivisionError: division by zero");
    expect("1 + 'a'", "ERR TypeError: unsupported operand type(s) for +: 'int' and 'str'");
    expect("{}['k']", "ERR KeyError: 'k'");
    expect("[1][5]", "ERR IndexError: list index out of range");
    expect("undefined_name", "ERR NameError: name 'undefined_name' is not defined");
    expect("int('x')", "ERR ValueError: invalid literal for int() with base 10: 'x'");
    expect_prefix("lambda x=1: x",
                  "ERR SyntaxError: lambda with default arguments is not supported (column 9)");
    expect_prefix("__import__('os')", "ERR SyntaxError: access to dunder names");
    expect_prefix("(1).__class__", "ERR SyntaxError: access to private attribute");
    expect_prefix("import os", "ERR SyntaxError: 'import' is not supported");
    expect_prefix("x = 1", "ERR SyntaxError: invalid syntax (statements are not expressions)");
    expect_prefix("1 +", "ERR SyntaxError: unexpected end of expression");
    expect_prefix("open('f')", "ERR NameError: name 'open' is not defined");
    expect_prefix("[x for x in range(10**7)]", "ERR RuntimeError: the evaluation exceeded its limit");
    expect_prefix("'a' * 10**9", "ERR MemoryError");
    expect_prefix("2 ** 10 ** 10", "ERR OverflowError");
    expect_prefix("(lambda f: f(f))(lambda f: f(f))", "ERR RecursionError");
    expect_prefix("(1).foo", "ERR AttributeError: 'int' object has no attribute 'foo'");
    /* a chain deep enough to threaten the stack is refused at load */
    static char deep[40000];
    for (size_t i = 0; i + 2 < sizeof deep; i += 2) memcpy(deep + i, "1+", 2);
    deep[sizeof deep - 2] = '1';
    expect_prefix(deep, "ERR SyntaxError: expression nested too deeply");
    for (size_t i = 0; i + 3 < sizeof deep; i += 3) memcpy(deep + i, "2**", 3);
    deep[sizeof deep - 2] = '2';
    deep[sizeof deep - 3] = '2';
    expect_prefix(deep, "ERR SyntaxError: expression nested too deeply");
    memset(deep, ' ', sizeof deep - 1);
    for (size_t i = 0; i + 24 < sizeof deep; i += 12) memcpy(deep + i, "1 if 0 else ", 12);
    deep[sizeof deep - 2] = '1';
    expect_prefix(deep, "ERR SyntaxError: expression nested too deeply");
    expect("1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1", "OK 40");
}

static void t_bindings(void **st) {
    tbgw_py *e = NULL;
    tbgw_err err;
    const char *src = "device.name + ':' + str(value * 2) + data['k'].upper() + str(len(raw))";
    assert_int_equal(tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL), 0);
    tbgw_py_ctx_reset(ctx);
    tbgw_py_val *dev = tbgw_py_object(ctx, "Device");
    assert_int_equal(tbgw_py_setattr(ctx, dev, "name", tbgw_py_str(ctx, "D1", 2)), 0);
    assert_int_equal(tbgw_py_bind(ctx, "device", dev), 0);
    assert_int_equal(tbgw_py_bind(ctx, "value", tbgw_py_int(ctx, 21)), 0);
    json_t *j = json_pack("{s:s}", "k", "ab");
    assert_int_equal(tbgw_py_bind(ctx, "data", tbgw_py_from_json(ctx, j)), 0);
    json_decref(j);
    assert_int_equal(tbgw_py_bind(ctx, "raw", tbgw_py_bytes(ctx, "\x01\x02\x03", 3)), 0);
    const tbgw_py_val *v;
    assert_int_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(tbgw_py_text(ctx, v, &b), 0);
    assert_string_equal(tbgw_buf_cstr(&b), "D1:42AB3");
    tbgw_buf_free(&b);
    /* attribute access outside bound objects fails cleanly */
    tbgw_py_free(e);
    src = "device.missing";
    assert_int_equal(tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL), 0);
    assert_int_not_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    assert_string_equal(err.msg, "AttributeError: 'Device' object has no attribute 'missing'");
    tbgw_py_free(e);
}

static void t_strict_and_results(void **st) {
    tbgw_py *e = NULL;
    tbgw_err err;
    const char *src = "pow(value, 2)";
    assert_int_equal(tbgw_py_compile(src, strlen(src), TBGW_PY_STRICT, &e, &err, NULL), 0);
    tbgw_py_ctx_reset(ctx);
    tbgw_py_bind(ctx, "value", tbgw_py_int(ctx, 3));
    const tbgw_py_val *v;
    assert_int_not_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    assert_string_equal(err.msg, "NameError: name 'pow' is not defined");
    tbgw_py_free(e);
    src = "value * value";
    assert_int_equal(tbgw_py_compile(src, strlen(src), TBGW_PY_STRICT, &e, &err, NULL), 0);
    assert_int_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    tbgw_value tv;
    tbgw_buf scratch;
    tbgw_buf_init(&scratch);
    assert_int_equal(tbgw_py_to_value(ctx, v, &tv, &scratch, &err), 0);
    assert_int_equal(tv.type, TBGW_V_INT);
    assert_int_equal(tv.u.i, 9);
    tbgw_py_free(e);
    /* JSON results and a big int as an exact JSON number */
    src = "{'a': [1, 2.5, None, True], 'b': 2**70}";
    assert_int_equal(tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL), 0);
    assert_int_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    json_t *j = NULL;
    assert_int_equal(tbgw_py_to_json(ctx, v, &j, &err), 0);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"a\":[1,2.5,null,true],\"b\":1.1805916207174113e21}");
    free(s);
    json_decref(j);
    tbgw_py_free(e);
    src = "2**70";
    assert_int_equal(tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL), 0);
    assert_int_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    assert_int_equal(tbgw_py_to_value(ctx, v, &tv, &scratch, &err), 0);
    assert_int_equal(tv.type, TBGW_V_NUMBER); /* an exact JSON integer */
    assert_string_equal(tv.u.s, "1180591620717411303424");
    tbgw_py_free(e);
    src = "2**64 - 1";
    assert_int_equal(tbgw_py_compile(src, strlen(src), 0, &e, &err, NULL), 0);
    assert_int_equal(tbgw_py_eval(e, ctx, &v, &err), 0);
    assert_int_equal(tbgw_py_to_value(ctx, v, &tv, &scratch, &err), 0);
    assert_int_equal(tv.type, TBGW_V_UINT);
    assert_true(tv.u.u64 == UINT64_MAX);
    tbgw_value num = {TBGW_V_NUMBER, {0}};
    num.u.s = "-123456789012345678901234567890";
    tbgw_buf rb;
    tbgw_buf_init(&rb);
    tbgw_py_repr(ctx, tbgw_py_from_value(ctx, &num), &rb);
    assert_string_equal(tbgw_buf_cstr(&rb), "-123456789012345678901234567890");
    tbgw_buf_free(&rb);
    tbgw_buf_free(&scratch);
    tbgw_py_free(e);
    /* apply: int(float('5.7')) as the MQTT useEval cast does */
    tbgw_py_val *sv = tbgw_py_str(ctx, "5.7", 3);
    const tbgw_py_val *f, *i;
    assert_int_equal(tbgw_py_apply(ctx, "float", sv, &f, &err), 0);
    assert_int_equal(tbgw_py_apply(ctx, "int", f, &i, &err), 0);
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_py_repr(ctx, i, &b);
    assert_string_equal(tbgw_buf_cstr(&b), "5");
    tbgw_buf_free(&b);
}

static void t_positions(void **st) {
    /* the member's key is at line 2, col 3, its string at col 12; decoded offset 6 (the second +) is
     * at col 20 */
    const char *text = "{\n  \"value\": \"a \\\" + + b\"\n}";
    int l, c;
    assert_int_equal(tbgw_json_string_pos(text, strlen(text), 2, 3, 6, &l, &c), 0);
    assert_int_equal(l, 2);
    assert_int_equal(c, 20);
    /* the compile offset, reported as field@offset, becomes file:line:col */
    tbgw_py *e = NULL;
    tbgw_err err;
    size_t off = 99;
    assert_int_equal(tbgw_py_compile("1 + * 2", 7, 0, &e, &err, &off), TBGW_EINVAL);
    assert_int_equal(off, 4);
    const char *cfg = "{\"m\": [{\"value\": \"1 + * 2\"}]}";
    tbgw_doc *d = tbgw_doc_parse_json("conf.json", cfg, strlen(cfg), &err);
    assert_non_null(d);
    tbgw_err_set(&err, TBGW_EINVAL, "m[0].value@%zu: SyntaxError: invalid syntax", off);
    tbgw_doc_prefix_error(d, &err);
    assert_string_equal(err.msg, "conf.json:1:23: m[0].value: SyntaxError: invalid syntax");
    tbgw_doc_free(d);
}

/* def name(params): return <expr> — the Request connector's processingFunction */
static const char *call_def(const char *src, const char *data_json, const char *key) {
    static char out[4096];
    tbgw_err err = {0};
    tbgw_py_def *f = NULL;
    size_t off = 0;
    tbgw_py_ctx_reset(ctx);
    if (tbgw_py_compile_def(src, strlen(src), 0, &f, &err, &off)) {
        snprintf(out, sizeof out, "ERR@%zu %s", off, err.msg);
        return out;
    }
    json_t *j = json_loads(data_json, JSON_DECODE_ANY, NULL);
    const tbgw_py_val *args[2] = {tbgw_py_from_json(ctx, j), tbgw_py_str(ctx, key, strlen(key))};
    json_decref(j);
    const tbgw_py_val *v;
    if (tbgw_py_call_def(f, ctx, args, 2, &v, &err)) {
        snprintf(out, sizeof out, "ERR %s", err.msg);
    } else {
        json_t *r = NULL;
        if (tbgw_py_to_json(ctx, v, &r, &err)) {
            snprintf(out, sizeof out, "ERR %s", err.msg);
        } else {
            char *t = tbgw_json_dumps(r, 0);
            snprintf(out, sizeof out, "OK %s", t);
            free(t);
            json_decref(r);
        }
    }
    tbgw_py_def_free(f);
    return out;
}

static void t_def(void **state) {
    (void)state;
    /* the reference request.json entry, exactly */
    const char *ref = "def process_data(data, key): return {key: float(data[\"values\"][0][\"avg\"])/1000.0}";
    assert_string_equal(call_def(ref, "{\"values\":[{\"avg\":12345}]}", "cumPwr"), "OK {\"cumPwr\":12.345}");
    assert_string_equal(call_def(ref, "{\"values\":[{\"avg\":\"1500\"}]}", "k"), "OK {\"k\":1.5}");
    /* the body on the next indented line, blank and comment lines around, parameters split */
    assert_string_equal(call_def("\n# scale\ndef f(d,\n      k):  # the answer and its key\n\n"
                                 "    return {k: d['v'] * 2}\n\n",
                                 "{\"v\":21}", "x"),
                        "OK {\"x\":42}");
    assert_string_equal(call_def("def f(d, k): return d", "[1,2]", "x"), "OK [1,2]");
    /* parameters shadow other bindings; runtime errors are Python's */
    assert_string_equal(call_def(ref, "{\"values\":[]}", "k"), "ERR IndexError: list index out of range");
    assert_string_equal(call_def("def f(a): return a", "1", "k"),
                        "ERR TypeError: f() takes 1 positional argument but 2 were given");
    /* refused forms name the column (1-based) and the offset */
    assert_string_equal(call_def("def f(d, k):\n    x = 1\n    return x", "1", "k"),
                        "ERR@17 only a function whose body is one `return <expression>` is supported (more "
                        "statements, assignments and loops are not) (column 18)");
    assert_string_equal(call_def("def f(d, k):\n    return d\n    return k", "1", "k"),
                        "ERR@25 only a function whose body is one `return <expression>` is supported (more "
                        "statements, assignments and loops are not) (column 26)");
    assert_string_equal(call_def("def f(d, k): return d; k", "1", "k"),
                        "ERR@21 only a function whose body is one `return <expression>` is supported (more "
                        "statements, assignments and loops are not) (column 22)");
    assert_string_equal(call_def("def f(d, k):\nreturn d", "1", "k"),
                        "ERR@13 IndentationError: expected an indented block after the function definition "
                        "(column 14)");
    assert_string_equal(call_def("def f(d, k=1): return d", "1", "k"),
                        "ERR@10 default values and annotations of parameters are not supported (column 11)");
    assert_string_equal(call_def("def f(*a): return a", "1", "k"),
                        "ERR@6 *args and **kwargs are not supported (column 7)");
    assert_string_equal(call_def("def f(__d): return 1", "1", "k"),
                        "ERR@6 names starting with '__' are not allowed (column 7)");
    assert_string_equal(call_def("def f(d, d): return 1", "1", "k"),
                        "ERR@9 SyntaxError: duplicate argument in function definition (column 10)");
    assert_string_equal(call_def("lambda d, k: d", "1", "k"),
                        "ERR@0 expected a function `def name(parameters): return <expression>` (column 1)");
    assert_string_equal(call_def("def f(d, k): for x in d: pass", "1", "k"),
                        "ERR@13 only a function whose body is one `return <expression>` is supported (more "
                        "statements, assignments and loops are not) (column 14)");
    assert_int_equal(call_def("def f(d, k): return", "1", "k")[0], 'E');
    assert_int_equal(call_def("def f(d, k): return __import__('os')", "1", "k")[0], 'E');
    tbgw_py_def *f = NULL;
    tbgw_err err;
    assert_int_equal(tbgw_py_compile_def(ref, strlen(ref), 0, &f, &err, NULL), 0);
    assert_string_equal(tbgw_py_def_name(f), "process_data");
    assert_int_equal(tbgw_py_def_arity(f), 2);
    tbgw_py_def_free(f);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--stdin")) return stdin_mode();
    ctx = tbgw_py_ctx_new(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_basics),    cmocka_unit_test(t_errors),
        cmocka_unit_test(t_bindings),  cmocka_unit_test(t_strict_and_results),
        cmocka_unit_test(t_positions), cmocka_unit_test(t_def),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tbgw_py_ctx_free(ctx);
    return rc;
}
