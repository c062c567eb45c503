/* Value conversion pinned to the reference's payload decoder semantics (spec §7.2 and the reference's
 * tests/unit/converters/modbus/test_bytes_modbus_uplink_converter.py values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "connectors/modbus/mb_value.h"

static json_t *dec(const char *type, int count, int byte_little, int word_little, int fc,
                   const uint16_t *regs, size_t nregs) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    assert_int_equal(tbgw_mbv_type_parse(type, count, &s.type), 0);
    s.count = count;
    s.byte_little = byte_little;
    s.word_little = word_little;
    uint8_t b[64];
    for (size_t i = 0; i < nregs; i++) {
        b[2 * i] = (uint8_t)(regs[i] >> 8);
        b[2 * i + 1] = (uint8_t)regs[i];
    }
    char err[128] = "";
    return tbgw_mbv_decode(&s, fc, b, nregs * 2, err, sizeof err);
}

static void expect_json(json_t *v, const char *want) {
    assert_non_null(v);
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_string_equal(t, want);
    free(t);
    json_decref(v);
}

static void test_reference_values(void **st) {
    (void)st;
    const uint16_t str[] = {0x6162, 0x6364, 0x6566, 0x6768};
    expect_json(dec("string", 4, 0, 0, 4, str, 4), "\"abcdefgh\"");
    const uint16_t bits[] = {0xCA00};
    expect_json(dec("bits", 8, 0, 0, 4, bits, 1), "[false,true,false,true,false,false,true,true]");
    expect_json(dec("bits", 2, 0, 0, 4, bits, 1), "[true,true]");
    const uint16_t i8[] = {0xEE00};
    expect_json(dec("8int", 1, 0, 0, 4, i8, 1), "-18");
    const uint16_t i16[] = {0xA988};
    expect_json(dec("16int", 1, 0, 0, 4, i16, 1), "-22136");
    expect_json(dec("long", 1, 0, 0, 4, i16, 1), "-22136");
    const uint16_t i32[] = {0xFFFF, 0xEDCC};
    expect_json(dec("32int", 2, 0, 0, 4, i32, 2), "-4660");
    const uint16_t i64[] = {0xFFFF, 0xFFFF, 0x2152, 0x4111};
    expect_json(dec("64int", 4, 0, 0, 4, i64, 4), "-3735928559");
    const uint16_t u8[] = {0x1200};
    expect_json(dec("8uint", 1, 0, 0, 4, u8, 1), "18");
    const uint16_t u16[] = {0x1234};
    expect_json(dec("16uint", 2, 0, 0, 4, u16, 1), "4660");
    const uint16_t u32[] = {0x1234, 0x5678};
    expect_json(dec("32uint", 4, 0, 0, 4, u32, 2), "305419896");
    const uint16_t u64[] = {0x1234, 0x5678, 0xDEAD, 0xBEEF};
    expect_json(dec("64uint", 1, 0, 0, 4, u64, 4), "1311768468603649775");
    const uint16_t f32[] = {0x41B4, 0x0000};
    expect_json(dec("double", 2, 0, 0, 4, f32, 2), "22.5");
    const uint16_t f16[] = {0x3CF6};
    expect_json(dec("16float", 1, 0, 0, 4, f16, 1), "1.240234");
    const uint16_t f32b[] = {0x41B2, 0xB852};
    expect_json(dec("32float", 2, 0, 0, 4, f32b, 2), "22.34");
    const uint16_t f64[] = {0xC05E, 0xDCCC, 0xCCCC, 0xCCCD};
    expect_json(dec("64float", 4, 0, 0, 4, f64, 4), "-123.45");
}

static void test_divider_multiplier_round(void **st) {
    (void)st;
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.byte_little = s.word_little = 0;
    s.divider = 10;
    uint8_t b[] = {0xA9, 0x88};
    char err[64] = "";
    expect_json(tbgw_mbv_decode(&s, 3, b, 2, err, sizeof err), "-2213.6");
    s.divider = 0;
    s.multiplier = 3;
    s.multiplier_is_int = 1;
    expect_json(tbgw_mbv_decode(&s, 3, b, 2, err, sizeof err), "-66408");
    s.multiplier = 0.5;
    s.multiplier_is_int = 0;
    expect_json(tbgw_mbv_decode(&s, 3, b, 2, err, sizeof err), "-11068.0");
    /* divider applies to registers only */
    s.multiplier = 0;
    s.divider = 10;
    s.type = MBV_BITS;
    uint8_t c[] = {0x01};
    expect_json(tbgw_mbv_decode(&s, 1, c, 1, err, sizeof err), "true");
    /* round */
    tbgw_mbv_spec_init(&s);
    s.byte_little = s.word_little = 0;
    s.type = MBV_32FLOAT;
    s.count = 2;
    s.round_digits = 2;
    uint8_t f[] = {0x40, 0x49, 0x0F, 0xDB}; /* pi */
    expect_json(tbgw_mbv_decode(&s, 3, f, 4, err, sizeof err), "3.14");
}

static void test_byte_word_orders(void **st) {
    (void)st;
    /* 0x12345678 as a device presents it for every byte/word order */
    const uint16_t bb[] = {0x1234, 0x5678}, bl[] = {0x5678, 0x1234}, lb[] = {0x3412, 0x7856},
                   ll[] = {0x7856, 0x3412};
    expect_json(dec("32uint", 2, 0, 0, 3, bb, 2), "305419896");
    expect_json(dec("32uint", 2, 0, 1, 3, bl, 2), "305419896");
    expect_json(dec("32uint", 2, 1, 0, 3, lb, 2), "305419896");
    expect_json(dec("32uint", 2, 1, 1, 3, ll, 2), "305419896");
    /* 16-bit values swap bytes too; 8-bit ones never */
    const uint16_t r[] = {0x3412};
    expect_json(dec("16uint", 1, 1, 1, 3, r, 1), "4660");
    expect_json(dec("8uint", 1, 1, 1, 3, r, 1), "52");
    /* default is LITTLE/LITTLE */
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    assert_int_equal(s.byte_little, 1);
    assert_int_equal(s.word_little, 1);
    /* 64-bit, word LITTLE only */
    const uint16_t w[] = {0xBEEF, 0xDEAD, 0x5678, 0x1234};
    expect_json(dec("64uint", 4, 0, 1, 3, w, 4), "1311768468603649775");
}

static void test_coils_and_bits(void **st) {
    (void)st;
    char err[64] = "";
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = MBV_BITS;
    uint8_t one[] = {0x01};
    expect_json(tbgw_mbv_decode(&s, 1, one, 1, err, sizeof err), "true");
    uint8_t zero[] = {0x00};
    expect_json(tbgw_mbv_decode(&s, 2, zero, 1, err, sizeof err), "false");
    s.bit_int = 1;
    expect_json(tbgw_mbv_decode(&s, 1, one, 1, err, sizeof err), "1");
    s.bit_int = 0;
    /* several coils come out in the reference's reversed order: [c2, c1, c0] */
    s.count = 3;
    uint8_t c3[] = {0x03}; /* c0=1 c1=1 c2=0 */
    expect_json(tbgw_mbv_decode(&s, 1, c3, 1, err, sizeof err), "[false,true,true]");
    /* a register's bit list: index i = bit i once all 16 are kept */
    s.count = 16;
    uint8_t reg[] = {0x80, 0x01};
    json_t *v = tbgw_mbv_decode(&s, 3, reg, 2, err, sizeof err);
    assert_true(json_is_true(json_array_get(v, 0)));
    assert_true(json_is_true(json_array_get(v, 15)));
    assert_true(json_is_false(json_array_get(v, 1)));
    json_decref(v);
    /* bit picks one bit of the register */
    s.bit = 15;
    expect_json(tbgw_mbv_decode(&s, 3, reg, 2, err, sizeof err), "true");
    s.bit = 3;
    s.bit_int = 1;
    expect_json(tbgw_mbv_decode(&s, 3, reg, 2, err, sizeof err), "0");
}

static void test_string_bytes_variants(void **st) {
    (void)st;
    const uint16_t on[] = {0x4F4E};
    expect_json(dec("string", 1, 1, 1, 3, on, 1), "\"ON\"");
    const uint16_t pad[] = {0x4F00};
    expect_json(dec("string", 1, 0, 0, 3, pad, 1), "\"O\"");
    const uint16_t bad[] = {0xFFFE};
    expect_json(dec("string", 1, 0, 0, 3, bad, 1), "\"fffe\"");
    const uint16_t by[] = {0x0102, 0xA0FF};
    expect_json(dec("bytes", 2, 0, 0, 3, by, 2), "\"0102a0ff\"");
    /* variants map the decoded value's str() form */
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.variants = json_pack("{s:s,s:s}", "1", "RUNNING", "0", "STOPPED");
    uint8_t one[] = {0x01, 0x00}; /* 16int LITTLE bytes: 1 */
    char err[64] = "";
    expect_json(tbgw_mbv_decode(&s, 3, one, 2, err, sizeof err), "\"RUNNING\"");
    json_decref(s.variants);
    s.variants = json_pack("{s:i}", "True", 7);
    s.type = MBV_BITS;
    uint8_t c[] = {0x01};
    expect_json(tbgw_mbv_decode(&s, 1, c, 1, err, sizeof err), "7");
    json_decref(s.variants);
}

static void test_pystr(void **st) {
    (void)st;
    char b[64];
    json_t *v = json_real(1.0);
    tbgw_mbv_pystr(v, b, sizeof b);
    assert_string_equal(b, "1.0");
    json_real_set(v, 22.34);
    tbgw_mbv_pystr(v, b, sizeof b);
    assert_string_equal(b, "22.34");
    json_decref(v);
    v = json_pack("[b,i]", 1, 0);
    tbgw_mbv_pystr(v, b, sizeof b);
    assert_string_equal(b, "[True, 0]");
    json_decref(v);
}

static void test_short_payload(void **st) {
    (void)st;
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = MBV_64FLOAT;
    uint8_t b[4] = {0};
    char err[64] = "";
    assert_null(tbgw_mbv_decode(&s, 3, b, 4, err, sizeof err));
    assert_true(strlen(err) > 0);
    tbgw_mbv_type t;
    assert_int_equal(tbgw_mbv_type_parse("float", 3, &t), -1);
    assert_int_equal(tbgw_mbv_type_parse("nonsense", 1, &t), -1);
    assert_int_equal(tbgw_mbv_type_parse("FLOAT", 2, &t), 0);
    assert_int_equal(t, MBV_32FLOAT);
    assert_int_equal(tbgw_mbv_type_parse("uint", 4, &t), 0);
    assert_int_equal(t, MBV_64UINT);
}

static void roundtrip(const char *type, int count, int bl, int wl, json_t *val, const char *want) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    assert_int_equal(tbgw_mbv_type_parse(type, count, &s.type), 0);
    s.count = count;
    s.byte_little = bl;
    s.word_little = wl;
    uint16_t regs[16];
    size_t n = 0;
    char err[64] = "";
    assert_int_equal(tbgw_mbv_encode(&s, 16, val, regs, NULL, 16, &n, err, sizeof err), 0);
    uint8_t b[32];
    for (size_t i = 0; i < n; i++) {
        b[2 * i] = (uint8_t)(regs[i] >> 8);
        b[2 * i + 1] = (uint8_t)regs[i];
    }
    expect_json(tbgw_mbv_decode(&s, 3, b, n * 2, err, sizeof err), want);
    json_decref(val);
}

static void test_encode(void **st) {
    (void)st;
    const char *types[] = {"16int", "32int", "64int", "32float", "64float"};
    const int counts[] = {1, 2, 4, 2, 4};
    for (int t = 0; t < 5; t++)
        for (int o = 0; o < 4; o++)
            roundtrip(types[t], counts[t], o & 1, o >> 1, json_integer(-1234), t >= 3 ? "-1234.0" : "-1234");
    roundtrip("16float", 1, 1, 1, json_real(1.24), "1.240234");
    roundtrip("8int", 1, 1, 1, json_integer(-18), "-18");
    roundtrip("string", 2, 1, 1, json_string("abc"), "\"abc\"");
    roundtrip("64uint", 4, 0, 1, json_string("1311768468603649775"), "1311768468603649775");

    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.byte_little = s.word_little = 0;
    s.type = MBV_32INT;
    s.count = 2;
    uint16_t regs[8];
    uint8_t coils[16];
    size_t n;
    char err[64] = "";
    json_t *v = json_integer(0x12345678);
    assert_int_equal(tbgw_mbv_encode(&s, 16, v, regs, NULL, 8, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(regs[0], 0x1234);
    assert_int_equal(regs[1], 0x5678);
    assert_int_equal(tbgw_mbv_encode(&s, 6, v, regs, NULL, 8, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    json_decref(v);
    s.type = MBV_8INT;
    v = json_integer(-18);
    assert_int_equal(tbgw_mbv_encode(&s, 6, v, regs, NULL, 8, &n, err, sizeof err), 0);
    assert_int_equal(regs[0], 0xEE00);
    json_decref(v);
    /* coils */
    s.type = MBV_BITS;
    v = json_true();
    assert_int_equal(tbgw_mbv_encode(&s, 5, v, NULL, coils, 16, &n, err, sizeof err), 0);
    assert_int_equal(coils[0], 1);
    json_decref(v);
    v = json_pack("[i,i,i]", 1, 0, 1);
    assert_int_equal(tbgw_mbv_encode(&s, 15, v, NULL, coils, 16, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(coils[0] + 2 * coils[1] + 4 * coils[2], 5);
    json_decref(v);
    v = json_string("0110");
    assert_int_equal(tbgw_mbv_encode(&s, 15, v, NULL, coils, 16, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(coils[1] + coils[2], 2);
    json_decref(v);
    v = json_string("false");
    assert_int_equal(tbgw_mbv_encode(&s, 5, v, NULL, coils, 16, &n, err, sizeof err), 0);
    assert_int_equal(coils[0], 0);
    json_decref(v);
    s.type = MBV_32INT;
    v = json_string("not a number");
    assert_int_equal(tbgw_mbv_encode(&s, 16, v, regs, NULL, 8, &n, err, sizeof err), -1);
    json_decref(v);
}

/* repack (pymodbus BinaryPayloadBuilder(repack=True)): the builder's byte payload is cut into 2-byte
 * chunks and each is unpacked with the configured byte order instead of big-endian. Hand-derived:
 * 32int 0x12345678, byteOrder LITTLE, wordOrder BIG: the builder emits bytes 34 12 78 56 (bytes inside
 * each word swapped); without repack the registers are 0x3412 0x7856, with repack each chunk is read
 * little-endian: 0x1234 0x5678. With byteOrder BIG, repack changes nothing. */
static void encode_regs(const char *type, int count, int bl, int wl, int repack, int fc, json_t *v,
                        const uint16_t *want, size_t n_want) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    assert_int_equal(tbgw_mbv_type_parse(type, count, &s.type), 0);
    s.count = count;
    s.byte_little = bl;
    s.word_little = wl;
    s.repack = repack;
    uint16_t regs[8];
    size_t n = 0;
    char err[64] = "";
    assert_int_equal(tbgw_mbv_encode(&s, fc, v, regs, NULL, 8, &n, err, sizeof err), 0);
    json_decref(v);
    if (n != n_want)
        fail_msg("%s bl=%d wl=%d repack=%d: %zu registers, want %zu", type, bl, wl, repack, n, n_want);
    for (size_t i = 0; i < n; i++)
        if (regs[i] != want[i])
            fail_msg("%s bl=%d wl=%d repack=%d: reg %zu = 0x%04x, want 0x%04x", type, bl, wl, repack, i,
                     regs[i], want[i]);
}

static void test_encode_repack(void **st) {
    (void)st;
    encode_regs("32int", 2, 1, 0, 0, 16, json_integer(0x12345678), (const uint16_t[]){0x3412, 0x7856}, 2);
    encode_regs("32int", 2, 1, 0, 1, 16, json_integer(0x12345678), (const uint16_t[]){0x1234, 0x5678}, 2);
    /* word order LITTLE: words reversed first (bytes 78 56 34 12), then each chunk read little-endian */
    encode_regs("32int", 2, 1, 1, 0, 16, json_integer(0x12345678), (const uint16_t[]){0x7856, 0x3412}, 2);
    encode_regs("32int", 2, 1, 1, 1, 16, json_integer(0x12345678), (const uint16_t[]){0x5678, 0x1234}, 2);
    /* byteOrder BIG: repack is a no-op */
    encode_regs("32int", 2, 0, 1, 1, 16, json_integer(0x12345678), (const uint16_t[]){0x5678, 0x1234}, 2);
    /* fc 6, 16uint 0x1234 little: the builder packs "<H" = 34 12 -> 0x3412, repacked -> 0x1234 */
    encode_regs("16uint", 1, 1, 1, 0, 6, json_integer(0x1234), (const uint16_t[]){0x3412}, 1);
    encode_regs("16uint", 1, 1, 1, 1, 6, json_integer(0x1234), (const uint16_t[]){0x1234}, 1);
    /* 8uint: one byte padded to 12 00 -> 0x1200; repacked little -> 0x0012 */
    encode_regs("8uint", 1, 1, 1, 0, 6, json_integer(0x12), (const uint16_t[]){0x1200}, 1);
    encode_regs("8uint", 1, 1, 1, 1, 6, json_integer(0x12), (const uint16_t[]){0x0012}, 1);
    /* string "abc" in 2 registers: bytes 61 62 63 00 -> 0x6162 0x6300; repacked -> 0x6261 0x0063 */
    encode_regs("string", 2, 1, 1, 0, 16, json_string("abc"), (const uint16_t[]){0x6162, 0x6300}, 2);
    encode_regs("string", 2, 1, 1, 1, 16, json_string("abc"), (const uint16_t[]){0x6261, 0x0063}, 2);
    /* 32float 1.0 (3F800000), byteOrder LITTLE, wordOrder BIG: 80 3F 00 00 -> 0x803F 0x0000; repacked
     * -> 0x3F80 0x0000 */
    encode_regs("32float", 2, 1, 0, 0, 16, json_real(1.0), (const uint16_t[]){0x803F, 0x0000}, 2);
    encode_regs("32float", 2, 1, 0, 1, 16, json_real(1.0), (const uint16_t[]){0x3F80, 0x0000}, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_values),      cmocka_unit_test(test_divider_multiplier_round),
        cmocka_unit_test(test_byte_word_orders),      cmocka_unit_test(test_coils_and_bits),
        cmocka_unit_test(test_string_bytes_variants), cmocka_unit_test(test_pystr),
        cmocka_unit_test(test_short_payload),         cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_repack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
