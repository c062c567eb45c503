/* JSON numbers end to end: shortest doubles (compared with Python's repr), the JSON reader that
 * accepts every number, the JSON writer, values, records and the packer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/record.h"
#include "platform/tb_codec.h"
#include "util/buf.h"
#include "util/json.h"

static const char *fmt(double d) {
    static char out[TBGW_DOUBLE_MAX];
    size_t n = tbgw_fmt_double(out, d);
    assert_int_equal(n, strlen(out));
    return out;
}

static void test_fmt_double_python_forms(void **state) {
    (void)state;
    assert_string_equal(fmt(7.1), "7.1");
    assert_string_equal(fmt(0.1 + 0.2), "0.30000000000000004");
    assert_string_equal(fmt(1e300), "1e+300");
    assert_string_equal(fmt(1e-7), "1e-07");
    assert_string_equal(fmt(1e16), "1e+16");
    assert_string_equal(fmt(123456789012345680.0), "1.2345678901234568e+17");
    assert_string_equal(fmt(25.0), "25.0");
    assert_string_equal(fmt(-25.0), "-25.0");
    assert_string_equal(fmt(0.0), "0.0");
    assert_string_equal(fmt(-0.0), "-0.0");
    assert_string_equal(fmt(1e15), "1000000000000000.0");
    assert_string_equal(fmt(9999999999999998.0), "9999999999999998.0");
    assert_string_equal(fmt(0.0001), "0.0001");
    assert_string_equal(fmt(0.00001), "1e-05");
    assert_string_equal(fmt(12.5), "12.5");
    assert_string_equal(fmt(5e-324), "5e-324");
    assert_string_equal(fmt(1.7976931348623157e308), "1.7976931348623157e+308");
    assert_string_equal(fmt(2.2250738585072014e-308), "2.2250738585072014e-308");
    assert_string_equal(fmt(-1.5e-10), "-1.5e-10");
    assert_string_equal(fmt(1.7275436391653063e19), "1.7275436391653063e+19");
    assert_string_equal(fmt(NAN), "nan");
    assert_string_equal(fmt(-INFINITY), "-inf");
    /* JSON writers: non-finite is null, everything else the same text */
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_value v = tbgw_value_double(INFINITY);
    tbgw_buf_json_value(&b, &v);
    v = tbgw_value_double(7.1);
    tbgw_buf_putc(&b, ',');
    tbgw_buf_json_value(&b, &v);
    assert_string_equal(tbgw_buf_cstr(&b), "null,7.1");
    tbgw_buf_free(&b);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* A mix: random bit patterns, short decimals at every scale, whole numbers, powers of ten, values
 * around the exponent switch points, subnormals, neighbours of powers of ten. */
static double sample(int i) {
    double d;
    switch (i % 7) {
    case 6: /* next to powers of ten, where the layout and the digit count switch */
        return nextafter(pow(10, (double)(int)(rnd() % 24) - 6), rnd() & 1 ? 0 : 1e300);
    case 0: {
        uint64_t bits = rnd();
        memcpy(&d, &bits, sizeof d);
        return isfinite(d) ? d : 1.0 / (double)(i + 1);
    }
    case 1:
        return (double)(int64_t)(rnd() % 2000001 - 1000000) / pow(10, (double)(rnd() % 12));
    case 2:
        return (double)(int64_t)(rnd() >> (rnd() % 64)) * (rnd() & 1 ? 1 : -1);
    case 3:
        return pow(10, (double)(int)(rnd() % 60) - 30) * (double)(rnd() % 1000);
    case 4:
        return (double)(rnd() % 100000) * pow(10, (double)(int)(rnd() % 10) + 12) / 1000.0;
    default: {
        uint64_t bits = rnd() % 0x0010000000000000ull; /* subnormal */
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    }
}

static void test_fmt_double_matches_python_repr(void **state) {
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0) skip();
    enum { N = 30000 };
    double *vals = malloc(N * sizeof *vals);
    assert_non_null(vals);
    char path[] = "/tmp/tbgw-repr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < N; i++) {
        vals[i] = sample(i);
        fprintf(f, "%a\n", vals[i]);
    }
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys\nfor l in open(sys.argv[1]): print(repr(float.fromhex(l)))' %s",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[64];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, p) && n < N) {
        line[strcspn(line, "\n")] = 0;
        const char *ours = fmt(vals[n]);
        if (strcmp(ours, line) != 0 && bad++ < 10)
            fprintf(stderr, "%a: python %s, tbgw %s\n", vals[n], line, ours);
        n++;
    }
    pclose(p);
    unlink(path);
    free(vals);
    assert_int_equal(n, N);
    assert_int_equal(bad, 0);
}

static void test_int_text(void **state) {
    (void)state;
    int64_t i = 0;
    uint64_t u = 0;
    assert_int_equal(tbgw_int_text("9223372036854775807", 19, &i, &u), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(tbgw_int_text("-9223372036854775808", 20, &i, &u), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(tbgw_int_text("9223372036854775808", 19, &i, &u), 1);
    assert_true(u == (uint64_t)INT64_MAX + 1);
    assert_int_equal(tbgw_int_text("18446744073709551615", 20, &i, &u), 1);
    assert_true(u == UINT64_MAX);
    assert_int_equal(tbgw_int_text("18446744073709551616", 20, &i, &u), 2);
    assert_int_equal(tbgw_int_text("-9223372036854775809", 20, &i, &u), 2);
    assert_int_equal(tbgw_int_text("1.5", 3, &i, &u), -1);
    assert_int_equal(tbgw_int_text("-", 1, &i, &u), -1);
}

static char *roundtrip(const char *text, size_t flags) {
    json_error_t je;
    json_t *j = tbgw_json_loads(text, flags, &je);
    if (!j) return NULL;
    char *s = tbgw_json_dumps(j, 0);
    json_decref(j);
    return s;
}

static void test_reader_keeps_every_number(void **state) {
    (void)state;
    const char *in = "{\"a\":12345678901234567890,\"b\":7.1,\"c\":\"x\",\"d\":[-9223372036854775809,"
                     "18446744073709551615,123456789012345678901234567890,1e400,-1E+999,0.5],"
                     "\"e\":{\"f\":9223372036854775808},\"g\":\"12345678901234567890\"}";
    char *out = roundtrip(in, 0);
    assert_non_null(out);
    assert_string_equal(out, in);
    free(out);
    /* a bare number, JSON_DECODE_ANY */
    out = roundtrip("12345678901234567890", JSON_DECODE_ANY);
    assert_string_equal(out, "12345678901234567890");
    free(out);
    /* a real beyond the double range alone, and a negative integer alone */
    out = roundtrip("[1e400,-1.5e-400]", 0);
    assert_string_equal(out, "[1e400,-0.0]");
    free(out);
    out = roundtrip("{\"n\":-9223372036854775809}", 0);
    assert_string_equal(out, "{\"n\":-9223372036854775809}");
    free(out);
    /* numbers inside strings are left alone, escapes are kept */
    out = roundtrip("[\"99999999999999999999 \\\"q\\\" \\\\\",99999999999999999999]", 0);
    assert_string_equal(out, "[\"99999999999999999999 \\\"q\\\" \\\\\",99999999999999999999]");
    free(out);
    /* values */
    json_t *j = tbgw_json_loads("[12345678901234567890,123456789012345678901234567890,-5,{\"x\":"
                                "18446744073709551615,\"y\":0.1}]",
                                0, NULL);
    assert_non_null(j);
    tbgw_value v;
    char *tmp;
    assert_int_equal(tbgw_value_from_json(json_array_get(j, 0), &v, &tmp), 0);
    assert_int_equal(v.type, TBGW_V_UINT);
    assert_true(v.u.u64 == 12345678901234567890ull);
    assert_int_equal(tbgw_value_from_json(json_array_get(j, 1), &v, &tmp), 0);
    assert_int_equal(v.type, TBGW_V_NUMBER);
    assert_string_equal(v.u.s, "123456789012345678901234567890");
    assert_int_equal(tbgw_value_from_json(json_array_get(j, 2), &v, &tmp), 0);
    assert_int_equal(v.type, TBGW_V_INT);
    assert_int_equal(tbgw_value_from_json(json_array_get(j, 3), &v, &tmp), 0);
    assert_int_equal(v.type, TBGW_V_JSON);
    assert_string_equal(v.u.s, "{\"x\":18446744073709551615,\"y\":0.1}");
    free(tmp);
    /* a number node reads as "" to code that does not know it */
    assert_string_equal(json_string_value(json_array_get(j, 0)), "");
    assert_true(tbgw_json_is_number(json_array_get(j, 0)));
    assert_true(tbgw_json_number_double(json_array_get(j, 0)) == 12345678901234567890.0);
    json_decref(j);
}

static void test_reader_errors_and_nul(void **state) {
    (void)state;
    json_error_t je;
    /* an error after a big number is reported at its place in the original text */
    json_t *j = tbgw_json_loads("{\"a\": 123456789012345678901,\n \"b\": tru}", 0, &je);
    assert_null(j);
    assert_int_equal(je.line, 2);
    assert_true(je.column >= 6 && je.column <= 10);
    /* a string with \u0000 is still refused without JSON_ALLOW_NUL, accepted with it, and never
     * taken for a number node */
    j = tbgw_json_loads("[123456789012345678901,\"\\u0000x\"]", 0, &je);
    assert_null(j);
    assert_non_null(strstr(je.text, "u0000"));
    j = tbgw_json_loads("[123456789012345678901,\"\\u0000\\u00ff1\"]", JSON_ALLOW_NUL, &je);
    assert_non_null(j);
    assert_non_null(tbgw_json_number_of(json_array_get(j, 0), NULL));
    assert_null(tbgw_json_number_of(json_array_get(j, 1), NULL));
    assert_int_equal(json_string_length(json_array_get(j, 1)), 4);
    json_decref(j);
    /* ordinary errors keep jansson's report */
    j = tbgw_json_loads("{\"a\":", 0, &je);
    assert_null(j);
    assert_int_equal(je.line, 1);
}

static void test_writer_matches_jansson_layout(void **state) {
    (void)state;
    const char *doc = "{\"name\":\"M\\u00e9ter \\\"1\\\"\\n\",\"n\":-42,\"on\":true,\"off\":false,\"z\":null,"
                      "\"list\":[1,[],{},[2,{\"k\":\"v\"}]],\"obj\":{\"a\":{\"b\":[\"c\"]}}}";
    json_t *j = json_loads(doc, 0, NULL);
    assert_non_null(j);
    for (int indent = 0; indent <= 4; indent += 2) {
        size_t flags = indent ? JSON_INDENT(indent) : JSON_COMPACT;
        char *want = json_dumps(j, flags | JSON_PRESERVE_ORDER);
        char *got = tbgw_json_dumps(j, indent);
        assert_string_equal(got, want);
        free(want);
        free(got);
    }
    json_decref(j);
    j = json_pack("{s:f,s:f,s:[f,f]}", "a", 7.1, "b", 25.0, "c", 1e300, 0.1 + 0.2);
    char *got = tbgw_json_dumps(j, 0);
    assert_string_equal(got, "{\"a\":7.1,\"b\":25.0,\"c\":[1e+300,0.30000000000000004]}");
    free(got);
    json_decref(j);
    j = tbgw_json_u64(17275436391653061650ull);
    got = tbgw_json_dumps(j, 0);
    assert_string_equal(got, "17275436391653061650");
    free(got);
    json_decref(j);
    j = tbgw_json_u64(42);
    assert_true(json_is_integer(j));
    json_decref(j);
}

/* tbgw_buf_json_py against Python's own json.dumps(json.loads(doc)). */
static void test_python_dumps_style(void **state) {
    (void)state;
    const char *doc = "{\"t\":\"caf\\u00e9 \\u20ac \\ud83d\\ude00 \\\" \\\\ \\n\\t\\u0001 \\u007f/\\u00ff\","
                      "\"n\":[7.1,0.30000000000000004,1e-07,25.0,-0.0,12345678901234567890,-5,true,null],"
                      "\"o\":{\"k\\u00e9y\":{},\"e\":[]},\"f\":1e+300}";
    json_t *j = tbgw_json_loads(doc, 0, NULL);
    assert_non_null(j);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(tbgw_buf_json_py(&b, j), 0);
    json_decref(j);
    if (access("/usr/bin/python3", X_OK) != 0) {
        tbgw_buf_free(&b);
        skip();
    }
    char path[] = "/tmp/tbgw-pyjson-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    char cmd[200];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; "
             "sys.stdout.write(json.dumps(json.load(open(sys.argv[1]))))' %s",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char want[1024] = "";
    size_t n = fread(want, 1, sizeof want - 1, p);
    want[n] = 0;
    pclose(p);
    unlink(path);
    assert_string_equal(tbgw_buf_cstr(&b), want);
    tbgw_buf_free(&b);
}

typedef struct one_rec {
    tbgw_buf b;
} one_rec;

static int rec_sink(void *ud, const void *rec, size_t len) {
    one_rec *r = ud;
    return tbgw_buf_append(&r->b, rec, len);
}

typedef struct got_msgs {
    tbgw_buf all;
} got_msgs;

static int msg_sink(void *ud, const tb_msg *m) {
    got_msgs *g = ud;
    tbgw_buf_puts(&g->all, m->topic);
    tbgw_buf_putc(&g->all, ' ');
    tbgw_buf_append(&g->all, m->payload, m->len);
    tbgw_buf_putc(&g->all, '\n');
    return 0;
}

/* converter values -> record -> packer -> MQTT payload text */
static void test_record_and_packer_keep_digits(void **state) {
    (void)state;
    tbgw_converted *c = tbgw_converted_new("Meter", NULL);
    tbgw_value u = tbgw_value_uint(17275436391653061650ull), i = tbgw_value_int(INT64_MIN),
               d = tbgw_value_double(7.1), big = {TBGW_V_NUMBER, {0}};
    big.u.s = "123456789012345678901234567890";
    tbgw_converted_add_telemetry(c, 1000, "u", &u, NULL);
    tbgw_converted_add_telemetry(c, 1000, "i", &i, NULL);
    tbgw_converted_add_telemetry(c, 1000, "d", &d, NULL);
    tbgw_converted_add_telemetry(c, 1000, "big", &big, NULL);
    tbgw_converted_add_attribute(c, "a", &u, NULL);
    tbgw_value d2 = tbgw_value_double(0.1 + 0.2);
    tbgw_converted *c2 = tbgw_converted_new("Meter", NULL);
    tbgw_converted_add_attribute(c2, "a", &d2, NULL);
    tbgw_converted_add_attribute(c2, "b", &u, NULL);
    one_rec r1 = {0}, r2 = {0};
    assert_int_equal(tbgw_record_encode(c, 0, 65536, rec_sink, &r1), 0);
    assert_int_equal(tbgw_record_encode(c2, 0, 65536, rec_sink, &r2), 0);
    tbgw_record_view v[2];
    assert_int_equal(tbgw_record_decode((const uint8_t *)r1.b.p, r1.b.len, &v[0]), 0);
    assert_int_equal(tbgw_record_decode((const uint8_t *)r2.b.p, r2.b.len, &v[1]), 0);
    got_msgs g;
    tbgw_buf_init(&g.all);
    assert_int_equal(tb_codec_pack(v, 2, 65536, NULL, NULL, msg_sink, &g), 0);
    /* the two attribute records of one device are merged: later wins, numbers unchanged */
    assert_string_equal(
        tbgw_buf_cstr(&g.all),
        "v1/gateway/attributes {\"Meter\":{\"a\":0.30000000000000004,\"b\":17275436391653061650}}\n"
        "v1/gateway/telemetry {\"Meter\":[{\"ts\":1000,\"values\":{\"u\":17275436391653061650,"
        "\"i\":-9223372036854775808,\"d\":7.1,\"big\":123456789012345678901234567890}}]}\n");
    tbgw_buf_free(&g.all);
    /* a TBGW_V_NUMBER text that is no JSON number is written as a string, never as broken JSON */
    tbgw_buf t;
    tbgw_buf_init(&t);
    const char *texts[] = {"12e", "1.", "abc", "--1", "01", " -0.5E+3 "};
    for (size_t k = 0; k < 6; k++) {
        tbgw_value nv = {TBGW_V_NUMBER, {0}};
        nv.u.s = texts[k];
        tbgw_buf_json_value(&t, &nv);
        tbgw_buf_putc(&t, ';');
    }
    assert_string_equal(tbgw_buf_cstr(&t), "\"12e\";\"1.\";\"abc\";\"--1\";\"01\"; -0.5E+3 ;");
    tbgw_buf_free(&t);
    tbgw_buf_free(&r1.b);
    tbgw_buf_free(&r2.b);
    tbgw_converted_free(c);
    tbgw_converted_free(c2);
}

static void test_value_equal_numbers(void **state) {
    (void)state;
    tbgw_value a = tbgw_value_uint(18446744073709551615ull), b = tbgw_value_uint(18446744073709551614ull);
    assert_false(tbgw_value_equal(&a, &b));
    assert_true(tbgw_value_equal(&a, &a));
    tbgw_value i = tbgw_value_int(-1);
    assert_false(tbgw_value_equal(&a, &i));
    tbgw_value d = tbgw_value_double(18446744073709551615.0);
    assert_true(tbgw_value_equal(&a, &d));
    assert_int_equal(tbgw_value_uint(5).type, TBGW_V_INT);
}

/* Downlink from the platform and RPC replies: numbers keep their digits, doubles are shortest. */
static void test_downlink_and_rpc_reply(void **state) {
    (void)state;
    const char *p =
        "{\"device\":\"D\",\"data\":{\"id\":5,\"method\":\"set\",\"params\":{\"v\":12345678901234567890,"
        "\"f\":7.1}}}";
    tb_down d;
    char err[200];
    assert_int_equal(tb_codec_parse_down(TB_TOPIC_GW_RPC, p, strlen(p), &d, err, sizeof err), 0);
    char *s = tbgw_json_dumps(d.params, 0);
    assert_string_equal(s, "{\"v\":12345678901234567890,\"f\":7.1}");
    free(s);
    char topic[128];
    json_t *content =
        json_pack("{s:{s:o,s:f}}", "result", "value", tbgw_json_u64(17275436391653061650ull), "f", 7.1);
    char *out = tb_codec_rpc_reply("D", 5, content, -1, topic, sizeof topic);
    assert_string_equal(
        out, "{\"device\":\"D\",\"id\":5,\"data\":{\"result\":{\"value\":17275436391653061650,\"f\":7.1}}}");
    free(out);
    out = tb_codec_rpc_reply("D", 5, content, 1, topic, sizeof topic);
    assert_string_equal(
        out, "{\"device\":\"D\",\"id\":5,\"data\":\"{\\\"value\\\":17275436391653061650,\\\"f\\\":7.1}\"}");
    free(out);
    json_decref(content);
    tb_down_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_double_python_forms),
        cmocka_unit_test(test_fmt_double_matches_python_repr),
        cmocka_unit_test(test_int_text),
        cmocka_unit_test(test_reader_keeps_every_number),
        cmocka_unit_test(test_reader_errors_and_nul),
        cmocka_unit_test(test_writer_matches_jansson_layout),
        cmocka_unit_test(test_python_dumps_style),
        cmocka_unit_test(test_record_and_packer_keep_digits),
        cmocka_unit_test(test_value_equal_numbers),
        cmocka_unit_test(test_downlink_and_rpc_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
