/* Source expressions (topic regex with last capture group, lookbehind), topic filters, timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "convert/source_expr.h"
#include "convert/ts.h"

static const char *topic_expr(const char *re, const char *topic) {
    static char out[256];
    tbgw_src_expr e;
    tbgw_err err = {0};
    assert_int_equal(tbgw_src_expr_init(&e, TBGW_SRC_TOPIC, re, "x", &err), 0);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(tbgw_src_expr_eval(&e, topic, NULL, &b), 0);
    snprintf(out, sizeof out, "%s", tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    tbgw_src_expr_clear(&e);
    return out;
}

static void test_topic_regex(void **st) {
    (void)st;
    assert_string_equal(topic_expr("(?<=sensor/)(.*?)(?=/data)", "sensor/SN-1/data"), "SN-1");
    assert_string_equal(topic_expr("(?<=sensor/).*(?=/data)", "sensor/SN-2/data"), "SN-2"); /* whole match */
    assert_string_equal(topic_expr("(.*?)(?=/.*)", "TestDevice/TestDeviceType"), "TestDevice");
    assert_string_equal(topic_expr("(?<=TestDevice/)(.*)", "TestDevice/TestDeviceType"), "TestDeviceType");
    assert_string_equal(topic_expr("([a-z]+)/([0-9]+)", "ab/12"), "12"); /* last group */
    assert_string_equal(topic_expr("(a)|(b)", "b"), "b");
    assert_string_equal(topic_expr("(a)(x)?", "a"), "a"); /* unset last group => last set one */
    assert_string_equal(topic_expr("(?<=sensor/)(.*?)(?=/connect)", "sensor/d1/disconnect"),
                        "(?<=sensor/)(.*?)(?=/connect)");
    assert_string_equal(topic_expr("(?P<n>[a-z]+)", "xy"), "xy"); /* Python named groups */
}

static void test_message_and_constant(void **st) {
    (void)st;
    tbgw_src_expr e;
    tbgw_err err = {0};
    tbgw_src s;
    assert_int_equal(tbgw_src_parse("Message", &s), 0);
    assert_int_equal(s, TBGW_SRC_MESSAGE);
    assert_int_equal(tbgw_src_parse("nope", &s), -1);
    json_t *body = json_loads("{\"id\":\"A\",\"n\":2}", 0, NULL);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(tbgw_src_expr_init(&e, TBGW_SRC_MESSAGE, "${id}-${n}-${zz}", "x", &err), 0);
    assert_int_equal(tbgw_src_expr_eval(&e, "t", body, &b), 0);
    assert_string_equal(tbgw_buf_cstr(&b), "A-2-${zz}");
    tbgw_src_expr_clear(&e);
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_src_expr_init(&e, TBGW_SRC_CONSTANT, "Demo Device", "x", &err), 0);
    assert_int_equal(tbgw_src_expr_eval(&e, "t", body, &b), 0);
    assert_string_equal(tbgw_buf_cstr(&b), "Demo Device");
    tbgw_src_expr_clear(&e);
    assert_int_equal(tbgw_src_expr_init(&e, TBGW_SRC_TOPIC, "(?<=a", "mapping[1].x", &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "mapping[1].x: invalid regular expression"));
    tbgw_src_expr_clear(&e);
    tbgw_buf_free(&b);
    json_decref(body);
}

static void test_topic_filters(void **st) {
    (void)st;
    assert_true(tbgw_topic_matches("sensor/+/data", "sensor/a/data"));
    assert_false(tbgw_topic_matches("sensor/+/data", "sensor//data")); /* + needs one char (regex [^/]+) */
    assert_false(tbgw_topic_matches("sensor/+/data", "sensor/a/b/data"));
    assert_true(tbgw_topic_matches("sensor/#", "sensor/a/b"));
    assert_false(tbgw_topic_matches("sensor/#", "sensor/"));
    assert_false(tbgw_topic_matches("sensor/#", "sensor"));
    assert_true(tbgw_topic_matches("#", "x"));
    assert_true(tbgw_topic_matches("data/", "data/"));
    assert_false(tbgw_topic_matches("data/", "data"));
    assert_false(tbgw_topic_matches("a.b", "axb")); /* no regex metacharacters */
    assert_true(tbgw_topic_matches("$share/g1/sensor/+", "sensor/x"));
    assert_string_equal(tbgw_topic_unshared("$share/g1/a/b"), "a/b");
    assert_string_equal(tbgw_topic_unshared("a/b"), "a/b");
    assert_true(tbgw_topic_matches("+/+", "a/b"));
    assert_false(tbgw_topic_matches("+", "a/b"));
}

static void test_regex_match_modes(void **st) {
    (void)st;
    tbgw_regex *re;
    tbgw_err err = {0};
    assert_int_equal(tbgw_regex_compile("rel.*", &re, "f", &err), 0);
    assert_true(tbgw_regex_match(re, "relay"));
    assert_true(tbgw_regex_fullmatch(re, "relay"));
    assert_false(tbgw_regex_match(re, "xrelay"));
    assert_true(tbgw_regex_search(re, "xrelay", NULL));
    tbgw_regex_free(re);
    assert_int_equal(tbgw_regex_compile("a|ab", &re, "f", &err), 0);
    assert_true(tbgw_regex_fullmatch(re, "ab"));
    assert_false(tbgw_regex_fullmatch(re, "abc"));
    tbgw_regex_free(re);
}

static void test_ts_text(void **st) {
    (void)st;
    int64_t t;
    assert_int_equal(tbgw_ts_parse_text("1700000000123", 0, 0, &t), 0);
    assert_int_equal(t, 1700000000123LL);
    assert_int_equal(tbgw_ts_parse_text("2023-11-14T22:13:20Z", 0, 0, &t), 0);
    assert_int_equal(t, 1700000000000LL);
    assert_int_equal(tbgw_ts_parse_text("2023-11-14 23:13:20.250+01:00", 0, 0, &t), 0);
    assert_int_equal(t, 1700000000250LL);
    assert_int_equal(tbgw_ts_parse_text("11/14/2023 22:13:20Z", 0, 0, &t), 0);
    assert_int_equal(t, 1700000000000LL);
    assert_int_equal(tbgw_ts_parse_text("14.11.2023 22:13:20Z", 0, 0, &t), 0);
    assert_int_equal(t, 1700000000000LL);
    assert_int_equal(tbgw_ts_parse_text("2023/11/14T22:13:20-0000", 0, 0, &t), 0);
    assert_int_equal(t, 1700000000000LL);
    assert_int_equal(tbgw_ts_parse_text("yesterday", 0, 0, &t), -1);
    assert_int_equal(tbgw_ts_parse_text("2023-13-01", 0, 0, &t), -1);
    assert_int_equal(tbgw_ts_parse_text("", 0, 0, &t), -1);
    setenv("TZ", "UTC", 1);
    assert_int_equal(tbgw_ts_parse_text("2023-11-14 22:13:20", 0, 0, &t), 0); /* local time */
    assert_int_equal(t, 1700000000000LL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_regex),   cmocka_unit_test(test_message_and_constant),
        cmocka_unit_test(test_topic_filters), cmocka_unit_test(test_regex_match_modes),
        cmocka_unit_test(test_ts_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
