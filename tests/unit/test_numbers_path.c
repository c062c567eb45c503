/* 64-bit and larger integers, stage by stage: the JSON converter and its casts, Modbus decoding,
 * scaling and writing, report-strategy caching, and records through every storage to the packer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "connectors/modbus/mb_value.h"
#include "connectors/opcua/opcua.h"
#include "convert/expr.h"
#include "convert/json_conv.h"
#include "core/record.h"
#include "core/report.h"
#include "platform/tb_codec.h"
#include "storage_contract.h"
#include "util/buf.h"
#include "util/json.h"

#include "convert_helpers.h"

static json_t *parse(const char *text) {
    json_error_t je;
    json_t *j = tbgw_json_loads(text, JSON_DECODE_ANY, &je);
    if (!j) fprintf(stderr, "parse: %s\n", je.text);
    assert_non_null(j);
    return j;
}

static void test_json_converter_keeps_big_integers(void **st) {
    (void)st;
    json_t *cfg =
        parse("{\"deviceInfo\":{\"deviceNameExpressionSource\":\"message\",\"deviceNameExpression\":"
              "\"${serial}\"},\"timeseries\":\"*\",\"attributes\":["
              "{\"type\":\"int\",\"key\":\"i\",\"value\":\"${c}\"},"
              "{\"type\":\"double\",\"key\":\"d\",\"value\":\"${c}\"},"
              "{\"type\":\"string\",\"key\":\"s\",\"value\":\"${c}\"},"
              "{\"type\":\"bool\",\"key\":\"b\",\"value\":\"${c}\"},"
              "{\"type\":\"raw\",\"key\":\"r\",\"value\":\"${h}\"},"
              "{\"type\":\"int\",\"key\":\"it\",\"value\":\"${txt}\"},"
              "{\"type\":\"int\",\"key\":\"ht\",\"value\":\"${htxt}\"},"
              "{\"type\":\"string\",\"key\":\"tpl\",\"value\":\"${c}/${f}\"}]}");
    tbgw_json_conv *conv = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_json_conv_new(cfg, NULL, "converter", &conv, &err), 0);
    json_t *body = parse("{\"serial\":18446744073709551615,\"c\":12345678901234567890,"
                         "\"h\":-123456789012345678901234567890,\"f\":7.1,\"txt\":\"12345678901234567890\","
                         "\"htxt\":\" 99999999999999999999999 \"}");
    tbgw_converted *chain = NULL;
    assert_int_equal(tbgw_json_conv_convert(conv, "t", body, 5, &chain, &err), 1);
    char *d = conv_dump(chain);
    assert_string_equal(
        d, "18446744073709551615/default a{i=12345678901234567890,d=1.2345678901234567e+19,"
           "s=\"12345678901234567890\",b=true,r=-123456789012345678901234567890,"
           "it=12345678901234567890,ht=99999999999999999999999 ,tpl=\"12345678901234567890/7.1\"} "
           "t{5:serial=18446744073709551615,5:c=12345678901234567890,"
           "5:h=-123456789012345678901234567890,5:f=7.1,5:txt=\"12345678901234567890\","
           "5:htxt=\" 99999999999999999999999 \"}");
    free(d);
    tbgw_converted_free(chain);
    json_decref(body);
    tbgw_json_conv_free(conv);
    json_decref(cfg);
}

static json_t *mb_decode_div(const char *type, int count, const uint8_t *b, size_t n, double mult,
                             double div) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    assert_int_equal(tbgw_mbv_spec_type(&s, type, count), 0);
    s.count = count;
    s.byte_little = s.word_little = 0;
    if (mult != 0) {
        s.multiplier = mult;
        s.multiplier_is_int = mult == (double)(long long)mult;
    }
    s.divider = div;
    s.divider_is_int = div == (double)(long long)div;
    char err[100] = "";
    json_t *v = tbgw_mbv_decode(&s, 3, b, n, err, sizeof err);
    assert_non_null(v);
    return v;
}

static json_t *mb_decode(const char *type, int count, const uint8_t *b, size_t n, double mult) {
    return mb_decode_div(type, count, b, n, mult, 0);
}

static void expect_text(json_t *v, const char *want) {
    char *s = tbgw_json_dumps(v, 0);
    assert_string_equal(s, want);
    free(s);
    json_decref(v);
}

static void test_modbus_64bit_values(void **st) {
    (void)st;
    const uint8_t efbe[8] = {0xEF, 0xBE, 0xAD, 0xDE, 0xEF, 0xBE, 0xAD, 0xDE};
    const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    expect_text(mb_decode("64uint", 4, efbe, 8, 0), "17275436393656397278");
    expect_text(mb_decode("uint", 4, efbe, 8, 0), "17275436393656397278");
    expect_text(mb_decode("64int", 4, efbe, 8, 0), "-1171307680053154338");
    expect_text(mb_decode("int", 4, efbe, 8, 0), "-1171307680053154338");
    expect_text(mb_decode("64uint", 4, ones, 8, 0), "18446744073709551615");
    expect_text(mb_decode("64int", 4, ones, 8, 0), "-1");
    /* an integer multiplier stays exact (Python int * int), beyond 64 bits too */
    expect_text(mb_decode("64uint", 4, efbe, 8, 10), "172754363936563972780");
    expect_text(mb_decode("64int", 4, efbe, 8, -3), "3513923040159463014");
    expect_text(mb_decode("64uint", 4, ones, 8, 1000000007), "18446744202836760130966861305");
    expect_text(mb_decode("64uint", 4, efbe, 8, 0.5), "8.637718196828199e+18");
    /* an integer divider divides like Python's int / int: rounded once (dividing the double of the
     * value would give ...514e+18, ...737e+18, ...075e+18, ...765e+17) */
    const uint8_t q1[8] = {0x91, 0xb7, 0x58, 0x4a, 0x22, 0x65, 0xb1, 0xf5},
                  q2[8] = {0xcd, 0x61, 0x3e, 0x30, 0xd8, 0xf1, 0x6a, 0xdf},
                  q3[8] = {0xc2, 0xce, 0x6f, 0x44, 0x7e, 0xd4, 0xd5, 0x7b},
                  q4[8] = {0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2d, 0xff};
    expect_text(mb_decode_div("64uint", 4, q1, 8, 0, 10), "1.0499958131665516e+18");
    expect_text(mb_decode_div("64uint", 4, q2, 8, 0, 3), "4.933059410011738e+18");
    expect_text(mb_decode_div("64uint", 4, q3, 8, 0, 7), "2.0053256326481073e+18");
    expect_text(mb_decode_div("64int", 4, q4, 8, 0, 10), "-9.223372036854764e+17");
    expect_text(mb_decode_div("64int", 4, q4, 8, 0, -10), "9.223372036854764e+17");
    expect_text(mb_decode_div("64uint", 4, q1, 8, 0, 2.5), "4.1999832526662057e+18"); /* int / float */
    /* round (default 6 digits) is Python's round(): the exact decimal, halves to even */
    const struct {
        double v;
        int digits;
        const char *want;
    } rounds[] = {{0x1.41f334ff30396p+38, 4, "345691209676.056"},
                  {-0x1.271ce432eed2dp+51, 0, "-2595840142571158.0"},
                  {2.5, 0, "2.0"},
                  {-0x1.7a979bc1ea2bep+29, 6, "-793965432.239341"},
                  {(double)7.1f, 6, "7.1"},
                  {1.0499958131665516e+18, 6, "1.0499958131665516e+18"}};
    for (size_t k = 0; k < sizeof rounds / sizeof rounds[0]; k++) {
        uint64_t bits;
        memcpy(&bits, &rounds[k].v, 8);
        uint8_t b8[8];
        for (int j = 0; j < 8; j++) b8[j] = (uint8_t)(bits >> (56 - 8 * j));
        tbgw_mbv_spec rs;
        tbgw_mbv_spec_init(&rs);
        rs.type = MBV_64FLOAT;
        rs.count = 4;
        rs.byte_little = rs.word_little = 0;
        rs.round_digits = rounds[k].digits;
        char rerr[64] = "";
        expect_text(tbgw_mbv_decode(&rs, 3, b8, 8, rerr, sizeof rerr), rounds[k].want);
    }
    /* the variants key is Python's str() of the value */
    char key[64];
    json_t *v = mb_decode("64uint", 4, ones, 8, 0);
    tbgw_mbv_pystr(v, key, sizeof key);
    assert_string_equal(key, "18446744073709551615");
    /* writing a number node gives its exact registers */
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = MBV_64UINT;
    s.count = 4;
    s.byte_little = s.word_little = 0;
    uint16_t regs[8];
    uint8_t coils[8];
    size_t n = 0;
    char err[100] = "";
    json_t *w = parse("17275436393656397278");
    assert_int_equal(tbgw_mbv_encode(&s, 16, w, regs, coils, 8, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(regs[0], 0xEFBE);
    assert_int_equal(regs[1], 0xADDE);
    assert_int_equal(regs[3], 0xADDE);
    json_decref(w);
    w = json_string("18446744073709551614"); /* a text value too */
    assert_int_equal(tbgw_mbv_encode(&s, 16, w, regs, coils, 8, &n, err, sizeof err), 0);
    assert_int_equal(regs[0], 0xFFFF);
    assert_int_equal(regs[3], 0xFFFE);
    json_decref(w);
    json_decref(v);
}

/* ON_CHANGE compares big values exactly and keeps its own copy of their text. */
static void test_report_on_change_big_values(void **st) {
    (void)st;
    tbgw_report_strategy rs = {TBGW_RS_ON_CHANGE, 0, 86400};
    tbgw_report *r = tbgw_report_new(&rs, 0);
    const char *texts[] = {"123456789012345678901234567890", "123456789012345678901234567890",
                           "123456789012345678901234567891"};
    uint64_t us[] = {18446744073709551615ull, 18446744073709551615ull, 18446744073709551614ull};
    size_t kept[3];
    for (int i = 0; i < 3; i++) {
        tbgw_converted *c = tbgw_converted_new("D", NULL);
        char *copy = strdup(texts[i]);
        tbgw_value big = {TBGW_V_NUMBER, {0}};
        big.u.s = copy;
        tbgw_value u = tbgw_value_uint(us[i]);
        tbgw_converted_add_telemetry(c, 1, "big", &big, NULL);
        tbgw_converted_add_telemetry(c, 1, "u", &u, NULL);
        free(copy);
        kept[i] = tbgw_report_filter(r, "conn", NULL, c, 1000 + i);
        tbgw_converted_free(c);
    }
    assert_int_equal(kept[0], 2);
    assert_int_equal(kept[1], 0);
    assert_int_equal(kept[2], 2);
    tbgw_report_free(r);
}

typedef struct collect {
    tbgw_buf b;
} collect;

static int to_buf(void *ud, const void *rec, size_t len) {
    collect *c = ud;
    return tbgw_buf_append(&c->b, rec, len);
}

static int msg_text(void *ud, const tb_msg *m) {
    return tbgw_buf_append(ud, m->payload, m->len);
}

static void storage_roundtrip(const sfx *proto) {
    void *state = NULL;
    assert_int_equal(sfx_setup(&state, proto), 0);
    sfx *f = state;
    tbgw_converted *c = tbgw_converted_new("M", NULL);
    tbgw_value u = tbgw_value_uint(17275436393656397278ull), i = tbgw_value_int(-9223372036854775807 - 1),
               d = tbgw_value_double(0.1 + 0.2), big = {TBGW_V_NUMBER, {0}};
    big.u.s = "-123456789012345678901234567890";
    tbgw_converted_add_telemetry(c, 7, "u", &u, NULL);
    tbgw_converted_add_telemetry(c, 7, "i", &i, NULL);
    tbgw_converted_add_telemetry(c, 7, "d", &d, NULL);
    tbgw_converted_add_telemetry(c, 7, "big", &big, NULL);
    collect rec = {0};
    assert_int_equal(tbgw_record_encode(c, 0, 65536, to_buf, &rec), 0);
    tbgw_storage *s = sfx_open(f, NULL);
    assert_int_equal(s->ops->append(s, rec.b.p, rec.b.len), 0);
    assert_int_equal(s->ops->sync(s), 0);
    if (f->durable) {
        s->ops->close(s);
        s = sfx_open(f, NULL);
    }
    tbgw_pack p;
    assert_int_equal(s->ops->peek(s, 10, &p), 0);
    assert_int_equal(p.n, 1);
    tbgw_record_view v;
    assert_int_equal(tbgw_record_decode(p.recs[0].data, p.recs[0].len, &v), 0);
    tbgw_buf out;
    tbgw_buf_init(&out);
    assert_int_equal(tb_codec_pack(&v, 1, 65536, NULL, NULL, msg_text, &out), 0);
    assert_string_equal(tbgw_buf_cstr(&out), "{\"M\":[{\"ts\":7,\"values\":{\"u\":17275436393656397278,\"i\":"
                                             "-9223372036854775808,\"d\":0.30000000000000004,\"big\":"
                                             "-123456789012345678901234567890}}]}");
    tbgw_buf_free(&out);
    tbgw_pack_free(&p);
    s->ops->close(s);
    tbgw_buf_free(&rec.b);
    tbgw_converted_free(c);
    sfx_teardown(&state);
}

static void test_records_through_every_storage(void **st) {
    (void)st;
    const sfx mem = {.type = "memory"};
    const sfx file = {.type = "file", .durable = 1, .path_key = "data_folder_path"};
    const sfx sql = {.type = "sqlite", .durable = 1, .path_key = "data_file_path"};
    storage_roundtrip(&mem);
    storage_roundtrip(&file);
    storage_roundtrip(&sql);
}

/* OPC-UA UInt64/Int64: exact in telemetry and RPC JSON, and when written from JSON. */
static void test_opcua_64bit_values(void **st) {
    (void)st;
    tbgw_ua_datavalue dv;
    memset(&dv, 0, sizeof dv);
    dv.mask = TBGW_UA_DV_VALUE;
    tbgw_ua_scalar sc;
    memset(&sc, 0, sizeof sc);
    sc.u = 17275436393656397278ull;
    assert_int_equal(tbgw_ua_variant_set_scalar(&dv.value, TBGW_UA_UINT64, &sc), 0);
    tbgw_value v;
    char *tmp = NULL;
    assert_int_equal(opcua_value_convert(&dv, "ns=2;i=1", &v, &tmp), 0);
    assert_int_equal(v.type, TBGW_V_UINT);
    assert_true(v.u.u64 == 17275436393656397278ull);
    free(tmp);
    expect_text(opcua_variant_to_json(&dv.value), "17275436393656397278");
    tbgw_ua_variant_clear(&dv.value);
    tbgw_ua_variant out;
    json_t *j = parse("18446744073709551615");
    assert_int_equal(opcua_variant_cast(j, TBGW_UA_UINT64, &out), 0);
    assert_true(out.v[0].u == UINT64_MAX);
    tbgw_ua_variant_clear(&out);
    json_decref(j);
    j = json_integer(-9223372036854775807 - 1);
    assert_int_equal(opcua_variant_cast(j, TBGW_UA_INT64, &out), 0);
    assert_true(out.v[0].i == INT64_MIN);
    tbgw_ua_variant_clear(&out);
    json_decref(j);
    j = json_integer(9007199254740993); /* 2^53 + 1: not a double */
    assert_int_equal(opcua_variant_cast(j, TBGW_UA_INT64, &out), 0);
    assert_true(out.v[0].i == 9007199254740993);
    tbgw_ua_variant_clear(&out);
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_converter_keeps_big_integers), cmocka_unit_test(test_modbus_64bit_values),
        cmocka_unit_test(test_report_on_change_big_values),       cmocka_unit_test(test_opcua_64bit_values),
        cmocka_unit_test(test_records_through_every_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
