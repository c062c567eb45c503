/* KNX datapoint types: encode and decode against the value tables of the KNX standard (3/7/2) and
 * the reference's value-type names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <tbgw/err.h>

#include "proto/knx/knx_dpt.h"

/* Encodes the JSON text v with type name and checks the octets (small: the 6-bit value). */
static void enc_ok(const char *name, const char *v, int small, const uint8_t *want, size_t n) {
    const knx_dpt *d = knx_dpt_find(name);
    assert_non_null(d);
    json_error_t je;
    json_t *j = json_loads(v, JSON_DECODE_ANY, &je);
    assert_non_null(j);
    knx_payload p;
    char err[160] = "";
    int rc = knx_dpt_encode(d, j, &p, err, sizeof err);
    if (rc) fail_msg("%s %s: %s", name, v, err);
    json_decref(j);
    assert_int_equal(p.small, small);
    if (small)
        assert_int_equal(p.data[0], want[0]);
    else {
        assert_int_equal(p.len, n);
        assert_memory_equal(p.data, want, n);
    }
}

static void enc_bad(const char *name, const char *v) {
    const knx_dpt *d = knx_dpt_find(name);
    assert_non_null(d);
    json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    knx_payload p;
    char err[160] = "";
    assert_int_equal(knx_dpt_encode(d, j, &p, err, sizeof err), TBGW_EINVAL);
    assert_true(strlen(err) > 0);
    json_decref(j);
}

static knx_payload pl(int small, const uint8_t *b, size_t n) {
    knx_payload p = {0};
    p.small = (uint8_t)small;
    if (small)
        p.data[0] = b[0];
    else {
        p.len = (uint8_t)n;
        memcpy(p.data, b, n);
    }
    return p;
}

static tbgw_value dec(const char *name, knx_payload p, char *text) {
    const knx_dpt *d = knx_dpt_find(name);
    assert_non_null(d);
    tbgw_value v;
    assert_int_equal(knx_dpt_decode(d, &p, &v, text, KNX_DPT_TEXT_CAP), 0);
    return v;
}

static void dec_bad(const char *name, knx_payload p) {
    tbgw_value v;
    char text[KNX_DPT_TEXT_CAP];
    assert_int_equal(knx_dpt_decode(knx_dpt_find(name), &p, &v, text, sizeof text), TBGW_EPROTO);
}

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void test_lookup(void **st) {
    (void)st;
    char num[16];
    knx_dpt_number(knx_dpt_find("temperature"), num, sizeof num);
    assert_string_equal(num, "9.001");
    assert_string_equal(knx_dpt_name(knx_dpt_find("9.001")), "temperature");
    assert_string_equal(knx_dpt_name(knx_dpt_find("9.7")), "humidity");
    assert_string_equal(knx_dpt_name(knx_dpt_find("PERCENTU8")), "percentU8");
    assert_string_equal(knx_dpt_name(knx_dpt_find("1.001")), "switch");
    assert_string_equal(knx_dpt_name(knx_dpt_find("9.999")), "2byte_float"); /* unknown sub: the main type */
    assert_string_equal(knx_dpt_name(knx_dpt_find("14.056")), "power");
    assert_string_equal(knx_dpt_name(knx_dpt_find("232.600")), "color_rgb");
    assert_null(knx_dpt_find("precent_U8"));
    assert_null(knx_dpt_find("4.001x"));
    assert_null(knx_dpt_find(""));
    assert_null(knx_dpt_find("250"));
    assert_string_equal(knx_dpt_suggest("precent_U8"), "percentU8");
    assert_string_equal(knx_dpt_suggest("temprature"), "temperature");
    assert_null(knx_dpt_suggest("completely_different"));
    /* every table entry round-trips through its own number or name */
    for (size_t i = 0; i < knx_dpt_count(); i++)
        assert_ptr_equal(knx_dpt_find(knx_dpt_name(knx_dpt_at(i))), knx_dpt_at(i));
}

static void test_dpt1_2_3(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    enc_ok("switch", "true", 1, B(1));
    enc_ok("1.001", "false", 1, B(0));
    enc_ok("switch", "\"on\"", 1, B(1));
    enc_ok("switch", "1", 1, B(1));
    enc_bad("switch", "2");
    enc_bad("switch", "\"maybe\"");
    tbgw_value v = dec("1.001", pl(1, B(1)), t);
    assert_int_equal(v.type, TBGW_V_BOOL);
    assert_true(v.u.b);
    v = dec("up_down", pl(1, B(0)), t);
    assert_int_equal(v.type, TBGW_V_BOOL);
    assert_false(v.u.b);
    dec_bad("switch", pl(0, B(1, 2)));
    enc_ok("switch_control", "{\"control\":true,\"value\":false}", 1, B(2));
    v = dec("2.001", pl(1, B(3)), t);
    assert_int_equal(v.type, TBGW_V_JSON);
    assert_string_equal(v.u.s, "{\"control\":true,\"value\":true}");
    enc_ok("control_dimming", "{\"control\":1,\"step_code\":3}", 1, B(0x0B));
    v = dec("3.007", pl(1, B(0x05)), t);
    assert_string_equal(v.u.s, "{\"control\":0,\"step_code\":5}");
    enc_bad("control_dimming", "{\"control\":1,\"step_code\":9}");
}

static void test_dpt5_6(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    /* 5.001 scaling: 0..100 % over 0..255 (standard: 0x80 = 50.2 %; 50 % encodes as round(127.5) = 128) */
    enc_ok("percent", "100", 0, B(0xFF));
    enc_ok("percent", "0", 0, B(0x00));
    enc_ok("percent", "50", 0, B(0x80));
    enc_bad("percent", "101");
    assert_int_equal(dec("5.001", pl(0, B(0xFF)), t).u.i, 100);
    assert_int_equal(dec("5.001", pl(0, B(0x80)), t).u.i, 50);
    /* 5.003 angle 0..360 */
    enc_ok("angle", "360", 0, B(0xFF));
    assert_int_equal(dec("angle", pl(0, B(0x40)), t).u.i, 90);
    enc_ok("percentU8", "42", 0, B(0x2A));
    enc_ok("percentU8", "\"42\"", 0, B(0x2A));
    enc_bad("percentU8", "256");
    enc_bad("tariff", "255");
    assert_int_equal(dec("pulse", pl(0, B(0xC8)), t).u.i, 200);
    /* 6.x two's complement */
    enc_ok("percentV8", "-128", 0, B(0x80));
    enc_ok("1byte_signed", "-1", 0, B(0xFF));
    assert_int_equal(dec("6.010", pl(0, B(0x80)), t).u.i, -128);
    enc_bad("percentV8", "128");
    dec_bad("percentU8", pl(0, B(1, 2)));
    dec_bad("percentU8", pl(1, B(1)));
}

static void test_dpt7_8(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    enc_ok("2byte_unsigned", "65535", 0, B(0xFF, 0xFF));
    enc_bad("7.001", "65536");
    assert_int_equal(dec("brightness", pl(0, B(0x01, 0x00)), t).u.i, 256);
    /* 7.003: resolution 10 ms */
    enc_ok("time_period_10msec", "1000", 0, B(0x00, 0x64));
    assert_int_equal(dec("7.003", pl(0, B(0x00, 0x64)), t).u.i, 1000);
    enc_ok("2byte_signed", "-32768", 0, B(0x80, 0x00));
    assert_int_equal(dec("8.001", pl(0, B(0xFF, 0xFE)), t).u.i, -2);
    /* 8.010 percentV16: resolution 0.01 % */
    tbgw_value v = dec("percentV16", pl(0, B(0x04, 0xD2)), t);
    assert_int_equal(v.type, TBGW_V_DOUBLE);
    assert_true(fabs(v.u.d - 12.34) < 1e-9);
    enc_ok("percentV16", "-0.01", 0, B(0xFF, 0xFF));
}

static void test_dpt9_float16(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    /* value table of DPT 9: (E, M) with value = 0.01 * M * 2^E */
    struct {
        double v;
        uint8_t hi, lo;
    } tab[] = {
        {0.0, 0x00, 0x00},       {0.01, 0x00, 0x01}, {-0.01, 0x87, 0xFF},   {20.47, 0x07, 0xFF},
        {20.48, 0x0C, 0x00},     {21.5, 0x0C, 0x33}, {-30.0, 0x8A, 0x24},   {-671088.64, 0xF8, 0x00},
        {670433.28, 0x7F, 0xFE}, {20.0, 0x07, 0xD0}, {-272.96, 0xA1, 0x56}, {44.0, 0x14, 0x4C},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        char js[64];
        snprintf(js, sizeof js, "%.17g", tab[i].v);
        enc_ok("2byte_float", js, 0, B(tab[i].hi, tab[i].lo));
        tbgw_value v = dec("2byte_float", pl(0, B(tab[i].hi, tab[i].lo)), t);
        assert_int_equal(v.type, TBGW_V_DOUBLE);
        assert_true(fabs(v.u.d - tab[i].v) < 1e-9);
    }
    /* 0x7FFF = invalid data; near-zero negatives never encode as 0x8000 (= -20.48) */
    dec_bad("temperature", pl(0, B(0x7F, 0xFF)));
    enc_ok("temperature", "-0.004", 0, B(0x00, 0x00));
    assert_true(fabs(dec("temperature", pl(0, B(0x80, 0x00)), t).u.d + 20.48) < 1e-9);
    enc_bad("temperature", "-274");      /* below absolute zero */
    enc_bad("2byte_float", "670760.97"); /* above the range */
    enc_bad("humidity", "-1");
    enc_ok("temperature", "\"21.5\"", 0, B(0x0C, 0x33));
    enc_bad("temperature", "\"warm\"");
    enc_bad("temperature", "null");
    dec_bad("temperature", pl(0, B(0x07)));
}

static void test_dpt10_11_19(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    enc_ok("time", "\"23:59:59\"", 0, B(0x17, 0x3B, 0x3B));
    enc_ok("time", "\"07:05\"", 0, B(0x07, 0x05, 0x00));
    enc_bad("time", "\"24:00:00\"");
    assert_string_equal(dec("10.001", pl(0, B(0x37, 0x1E, 0x0A)), t).u.s, "23:30:10"); /* Monday 23:30:10 */
    dec_bad("time", pl(0, B(0x18, 0, 0)));
    enc_ok("date", "\"2024-05-17\"", 0, B(0x11, 0x05, 0x18));
    enc_ok("date", "\"1995-01-01\"", 0, B(0x01, 0x01, 0x5F));
    assert_string_equal(dec("date", pl(0, B(0x01, 0x01, 0x5F)), t).u.s, "1995-01-01");
    assert_string_equal(dec("11.001", pl(0, B(0x1F, 0x0C, 0x59)), t).u.s, "2089-12-31");
    enc_bad("date", "\"2090-01-01\"");
    dec_bad("date", pl(0, B(0x00, 0x01, 0x01)));
    enc_ok("datetime", "\"2024-05-17T12:30:15\"", 0, B(0x7C, 0x05, 0x11, 0x0C, 0x1E, 0x0F, 0x24, 0x00));
    assert_string_equal(dec("19.001", pl(0, B(0x7C, 0x05, 0x11, 0x0C, 0x1E, 0x0F, 0x24, 0x00)), t).u.s,
                        "2024-05-17T12:30:15");
    dec_bad("datetime", pl(0, B(0x7C, 0x05, 0x11, 0x0C, 0x1E, 0x0F, 0x80, 0x00))); /* fault flag */
}

static void test_dpt12_13_14(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    enc_ok("4byte_unsigned", "4294967295", 0, B(0xFF, 0xFF, 0xFF, 0xFF));
    enc_bad("12.001", "-1");
    assert_int_equal(dec("12.001", pl(0, B(0x80, 0, 0, 0)), t).u.i, 2147483648LL);
    enc_ok("4byte_signed", "-2147483648", 0, B(0x80, 0, 0, 0));
    assert_int_equal(dec("active_energy", pl(0, B(0xFF, 0xFF, 0xFF, 0xFE)), t).u.i, -2);
    enc_ok("4byte_float", "1.0", 0, B(0x3F, 0x80, 0x00, 0x00));
    enc_ok("power", "-2.5", 0, B(0xC0, 0x20, 0x00, 0x00));
    enc_ok("14.056", "1000.5", 0, B(0x44, 0x7A, 0x20, 0x00));
    tbgw_value v = dec("frequency", pl(0, B(0x42, 0x48, 0x00, 0x00)), t);
    assert_true(v.type == TBGW_V_DOUBLE && v.u.d == 50.0);
    dec_bad("power", pl(0, B(0x7F, 0xC0, 0x00, 0x00))); /* NaN */
    enc_bad("power", "1e39");
}

static void test_dpt16_17_18_20_232(void **st) {
    (void)st;
    char t[KNX_DPT_TEXT_CAP];
    /* the standard's example for 16.000: "KNX is OK" */
    enc_ok("string", "\"KNX is OK\"", 0,
           B(0x4B, 0x4E, 0x58, 0x20, 0x69, 0x73, 0x20, 0x4F, 0x4B, 0, 0, 0, 0, 0));
    assert_string_equal(
        dec("16.000", pl(0, B(0x4B, 0x4E, 0x58, 0x20, 0x69, 0x73, 0x20, 0x4F, 0x4B, 0, 0, 0, 0, 0)), t).u.s,
        "KNX is OK");
    enc_bad("string", "\"fifteen chars!!\"");
    enc_ok("string", "\"\xc3\x9c\"", 0,
           B(0x3F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)); /* not ASCII -> '?' */
    enc_ok("latin_1", "\"\xc3\x9c\"", 0, B(0xDC, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)); /* U+00DC */
    assert_string_equal(dec("latin_1", pl(0, B(0xDC, 0x62, 0)), t).u.s, "\xc3\x9c"
                                                                        "b");
    assert_string_equal(dec("string", pl(0, B(0x48, 0x69)), t).u.s, "Hi"); /* short strings accepted */
    enc_ok("string", "42", 0, B(0x34, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    enc_ok("scene_number", "1", 0, B(0x00));
    enc_ok("scene_number", "64", 0, B(0x3F));
    enc_bad("scene_number", "0");
    assert_int_equal(dec("17.001", pl(0, B(0x3F)), t).u.i, 64);
    enc_ok("scene_control", "{\"scene_number\":5,\"learn\":true}", 0, B(0x84));
    assert_string_equal(dec("18.001", pl(0, B(0x84)), t).u.s, "{\"learn\":true,\"scene_number\":5}");
    enc_ok("hvac_mode", "\"Comfort\"", 0, B(0x01));
    enc_ok("hvac_mode", "3", 0, B(0x03));
    enc_bad("hvac_mode", "\"Party\"");
    tbgw_value v = dec("20.102", pl(0, B(0x04)), t);
    assert_int_equal(v.type, TBGW_V_STRING);
    assert_string_equal(v.u.s, "Building Protection");
    assert_int_equal(dec("1byte_enum", pl(0, B(0x07)), t).u.i, 7);
    enc_ok("color_rgb", "\"#ff8000\"", 0, B(0xFF, 0x80, 0x00));
    enc_ok("color_rgb", "[1,2,3]", 0, B(1, 2, 3));
    enc_ok("color_rgb", "{\"red\":4,\"green\":5,\"blue\":6}", 0, B(4, 5, 6));
    enc_bad("color_rgb", "\"#12345\"");
    assert_string_equal(dec("232.600", pl(0, B(0x12, 0xAB, 0x00)), t).u.s, "#12ab00");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),       cmocka_unit_test(test_dpt1_2_3),
        cmocka_unit_test(test_dpt5_6),       cmocka_unit_test(test_dpt7_8),
        cmocka_unit_test(test_dpt9_float16), cmocka_unit_test(test_dpt10_11_19),
        cmocka_unit_test(test_dpt12_13_14),  cmocka_unit_test(test_dpt16_17_18_20_232),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
