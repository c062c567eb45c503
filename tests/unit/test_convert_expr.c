/* ${...} expressions, paths and casts (spec §5.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>
#include "convert/expr.h"

static json_t *J(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    assert_non_null(j);
    return j;
}

/* Renders tmpl against body; returns a static copy ("<ENOENT>" when missing). */
static const char *render(const char *tmpl, const char *body, tbgw_fmt fmt, tbgw_missing missing) {
    static char out[512];
    tbgw_expr *e;
    tbgw_err err = {0};
    assert_int_equal(tbgw_expr_compile(tmpl, &e, &err), 0);
    json_t *j = J(body);
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = tbgw_expr_render(e, j, fmt, missing, &b);
    snprintf(out, sizeof out, "%s", rc == TBGW_ENOENT ? "<ENOENT>" : tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    json_decref(j);
    tbgw_expr_free(e);
    return out;
}

static const char *R(const char *tmpl, const char *body) {
    return render(tmpl, body, TBGW_FMT_PY, TBGW_MISSING_FAIL);
}

/* Evaluates with a cast and prints the value as JSON (type visible: "5" vs 5). */
static const char *eval(const char *tmpl, const char *body, const char *type) {
    static char out[512];
    tbgw_expr *e;
    tbgw_err err = {0};
    assert_int_equal(tbgw_expr_compile(tmpl, &e, &err), 0);
    json_t *j = J(body);
    tbgw_buf scratch, b;
    tbgw_buf_init(&scratch);
    tbgw_buf_init(&b);
    tbgw_value v;
    int rc = tbgw_expr_eval(e, j, tbgw_cast_parse(type), &v, &scratch);
    if (rc == TBGW_ENOENT)
        tbgw_buf_puts(&b, "<ENOENT>");
    else
        tbgw_buf_json_value(&b, &v);
    snprintf(out, sizeof out, "%s", tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    tbgw_buf_free(&scratch);
    json_decref(j);
    tbgw_expr_free(e);
    return out;
}

static void test_simple_and_nested(void **st) {
    (void)st;
    assert_string_equal(R("${temp}", "{\"temp\":25.5}"), "25.5");
    assert_string_equal(R("${a.b.c}", "{\"a\":{\"b\":{\"c\":\"deep\"}}}"), "deep");
    assert_string_equal(R("${a.b[1].c}", "{\"a\":{\"b\":[{\"c\":1},{\"c\":2}]}}"), "2");
    assert_string_equal(R("${arr[0]}", "{\"arr\":[7,8]}"), "7");
    assert_string_equal(R("${arr[-1]}", "{\"arr\":[7,8]}"), "8");
    assert_string_equal(R("${a[*].b}", "{\"a\":[{\"x\":1},{\"b\":\"second\"}]}"), "second");
    assert_string_equal(R("${a[:].b}", "{\"a\":[{\"x\":1},{\"b\":\"second\"}]}"), "second");
    assert_string_equal(R("${$.a.b}", "{\"a\":{\"b\":3}}"), "3");
    assert_string_equal(R("${a..id}", "{\"a\":{\"x\":{\"id\":9}}}"), "9");
    assert_string_equal(R("${a[\"b.c\"]}", "{\"a\":{\"b.c\":4}}"), "4");
}

static void test_keys_with_spaces(void **st) {
    (void)st;
    assert_string_equal(R("${device name}", "{\"device name\":\"Dev 1\"}"), "Dev 1");
    assert_string_equal(R("${a.b c}", "{\"a\":{\"b c\":true}}"), "True");
    /* first whitespace-separated token tried as a top-level key first (reference rule) */
    assert_string_equal(R("${device name}", "{\"device\":\"D\"}"), "D");
}

static void test_templates_mixing_text(void **st) {
    (void)st;
    assert_string_equal(R("${id}-${type}", "{\"id\":\"A1\",\"type\":\"th\"}"), "A1-th");
    assert_string_equal(R("${Developer}:${hum}", "{\"Developer\":\"X\",\"hum\":40}"), "X:40");
    assert_string_equal(
        R("Device ${serial} v${v.major}.${v.minor}", "{\"serial\":\"S\",\"v\":{\"major\":1,\"minor\":2}}"),
        "Device S v1.2");
    assert_string_equal(R("no placeholders", "{}"), "no placeholders");
    assert_string_equal(R("${unterminated", "{}"), "${unterminated");
}

static void test_missing(void **st) {
    (void)st;
    assert_string_equal(R("${nope}", "{\"a\":1}"), "<ENOENT>");
    assert_string_equal(R("x-${nope}", "{\"a\":1}"), "<ENOENT>");
    assert_string_equal(R("${a[5]}", "{\"a\":[1]}"), "<ENOENT>");
    assert_string_equal(R("${a.b}", "{\"a\":3}"), "<ENOENT>");
    assert_string_equal(R("${n}", "{\"n\":null}"), "<ENOENT>");
    assert_string_equal(render("${nope}-x", "{}", TBGW_FMT_PY, TBGW_MISSING_KEEP), "${nope}-x");
    assert_string_equal(render("${nope}", "{}", TBGW_FMT_PY, TBGW_MISSING_NONE), "None");
    assert_string_equal(eval("${nope}", "{}", "double"), "<ENOENT>");
}

static void test_formats(void **st) {
    (void)st;
    const char *body =
        "{\"b\":true,\"f\":25.0,\"i\":3,\"s\":\"txt\",\"o\":{\"k\":[1,2]},\"big\":1e16,\"sm\":0.0001}";
    assert_string_equal(R("${b}|${f}|${i}|${s}|${o}", body), "True|25.0|3|txt|{\"k\":[1,2]}");
    assert_string_equal(R("${big}|${sm}", body), "1e+16|0.0001");
    assert_string_equal(render("${b}|${f}|${s}", body, TBGW_FMT_TEXT, TBGW_MISSING_FAIL), "true|25.0|txt");
    assert_string_equal(render("${s}|${o}", body, TBGW_FMT_JSON, TBGW_MISSING_FAIL), "\"txt\"|{\"k\":[1,2]}");
}

static void test_casts(void **st) {
    (void)st;
    const char *body =
        "{\"s5\":\"5.0\",\"s\":\"abc\",\"d\":21.7,\"i\":7,\"t\":true,\"bs\":\"on\",\"bn\":\"off\","
        "\"o\":{\"a\":1},\"neg\":\"-3.9\",\"sp\":\" 42 \"}";
    assert_string_equal(eval("${s5}", body, "int"), "5");
    assert_string_equal(eval("${s5}", body, "integer"), "5");
    assert_string_equal(eval("${s5}", body, "long"), "5");
    assert_string_equal(eval("${d}", body, "int"), "21");
    assert_string_equal(eval("${neg}", body, "int"), "-3");
    assert_string_equal(eval("${sp}", body, "int"), "42");
    assert_string_equal(eval("${s}", body, "int"), "\"abc\""); /* failed cast => string */
    assert_string_equal(eval("${i}", body, "double"), "7.0");
    assert_string_equal(eval("${s5}", body, "float"), "5.0");
    assert_string_equal(eval("${s}", body, "double"), "\"abc\"");
    assert_string_equal(eval("${t}", body, "boolean"), "true");
    assert_string_equal(eval("${bs}", body, "bool"), "true");
    assert_string_equal(eval("${bn}", body, "bool"), "false");
    assert_string_equal(eval("${i}", body, "bool"), "true");
    assert_string_equal(eval("${s}", body, "bool"), "\"abc\"");
    assert_string_equal(eval("${d}", body, "string"), "\"21.7\"");
    assert_string_equal(eval("${t}", body, "string"), "\"True\"");
    assert_string_equal(eval("${i}", body, "raw"), "7");
    assert_string_equal(eval("${o}", body, "raw"), "{\"a\":1}");
    assert_string_equal(eval("${o}", body, "string"), "\"{\\\"a\\\":1}\"");
    assert_string_equal(eval("v=${i}", body, "string"), "\"v=7\"");
    assert_string_equal(eval("${i}${i}", body, "int"), "77");
    assert_string_equal(eval("constant", body, "string"), "\"constant\"");
    assert_string_equal(eval("12", body, "int"), "12");
    assert_string_equal(eval("${t}", body, "int"), "1");
}

static void test_cast_parse(void **st) {
    (void)st;
    assert_int_equal(tbgw_cast_parse("Integer"), TBGW_CAST_INT);
    assert_int_equal(tbgw_cast_parse("LONG"), TBGW_CAST_INT);
    assert_int_equal(tbgw_cast_parse("double"), TBGW_CAST_DOUBLE);
    assert_int_equal(tbgw_cast_parse("float"), TBGW_CAST_DOUBLE);
    assert_int_equal(tbgw_cast_parse("boolean"), TBGW_CAST_BOOL);
    assert_int_equal(tbgw_cast_parse("raw"), TBGW_CAST_RAW);
    assert_int_equal(tbgw_cast_parse("str"), TBGW_CAST_STRING);
    assert_int_equal(tbgw_cast_parse(NULL), TBGW_CAST_STRING);
}

static void test_compile_errors(void **st) {
    (void)st;
    tbgw_expr *e = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_expr_compile("${a[x]}", &e, &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "bad index"));
    assert_int_equal(tbgw_expr_compile("${}", &e, &err), TBGW_EINVAL);
    assert_int_equal(tbgw_expr_compile("${a[1}", &e, &err), TBGW_EINVAL);
    assert_int_equal(tbgw_expr_compile("${a.\"b}", &e, &err), TBGW_EINVAL);
    assert_null(e);
    assert_int_equal(tbgw_expr_compile("${a}-${b}", &e, &err), 0);
    assert_int_equal(tbgw_expr_placeholders(e), 2);
    assert_string_equal(tbgw_expr_placeholder(e, 1), "b");
    assert_false(tbgw_expr_is_single(e));
    tbgw_expr_free(e);
}

static void test_find_key(void **st) {
    (void)st;
    json_t *j = J("{\"a\":{\"b\":[{\"x\":1},{\"ts\":99}]}}");
    const json_t *v = tbgw_json_find_key(j, "ts");
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), 99);
    assert_null(tbgw_json_find_key(j, "nope"));
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_and_nested),
        cmocka_unit_test(test_keys_with_spaces),
        cmocka_unit_test(test_templates_mixing_text),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_casts),
        cmocka_unit_test(test_cast_parse),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_find_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
