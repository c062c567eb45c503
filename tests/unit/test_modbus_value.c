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
    assert_int_equal(tbgw_mbv_spec_type(&s, type, count), 0);
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

/* spec §7.2 "Bits", worked out by hand. Registers (fc 3/4): only the first register, its high byte
 * then its low byte, each LSB first; the last objectsCount are kept. 0xDA4B: DA = 1101 1010 gives
 * 0,1,0,1,1,0,1,1; 4B = 0100 1011 gives 1,1,0,1,0,0,1,0. */
static json_t *dec_bits(int fc, int count, int bit, int bit_int, const uint8_t *raw, size_t n) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = MBV_BITS;
    s.count = count;
    s.bit = bit;
    s.bit_int = bit_int;
    char err[64] = "";
    return tbgw_mbv_decode(&s, fc, raw, n, err, sizeof err);
}

static void test_bits_registers(void **st) {
    (void)st;
    const uint8_t r[] = {0xDA, 0x4B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    for (int fc = 3; fc <= 4; fc++) {
        expect_json(
            dec_bits(fc, 16, -1, 0, r, 2),
            "[false,true,false,true,true,false,true,true,true,true,false,true,false,false,true,false]");
        expect_json(dec_bits(fc, 8, -1, 0, r, 2), "[true,true,false,true,false,false,true,false]");
        expect_json(dec_bits(fc, 4, -1, 0, r, 2), "[false,false,true,false]");
        expect_json(dec_bits(fc, 4, -1, 1, r, 2), "[0,0,1,0]");
        /* one bit: the last slot, bit 7 of the low byte */
        expect_json(dec_bits(fc, 1, -1, 0, r, 2), "false");
        expect_json(dec_bits(fc, 1, -1, 0, (const uint8_t[]){0x00, 0x80}, 2), "true");
        expect_json(dec_bits(fc, 1, -1, 1, (const uint8_t[]){0x00, 0x80}, 2), "1");
        /* objectsCount 4 reads 4 registers: still only the first one is decoded */
        expect_json(dec_bits(fc, 4, -1, 0, r, 8), "[false,false,true,false]");
        /* bit indexes the kept list (an integer, as the reference's int()), the last one past its end */
        expect_json(dec_bits(fc, 16, 1, 0, r, 2), "1");
        expect_json(dec_bits(fc, 16, 0, 0, r, 2), "0");
        expect_json(dec_bits(fc, 4, 2, 0, r, 2), "1");
        expect_json(dec_bits(fc, 4, 9, 0, r, 2), "0");
    }
}

/* Coils/discrete inputs (fc 1/2): packed 8 a byte with the first coil in the most significant bit and
 * read back LSB first, so 16 coils come out [c7..c0, c15..c8]. Coils c0..c7 = 1,1,0,1,0,0,0,1 (wire byte
 * 0x8B), c8..c15 = 0,1,1,0,0,0,0,1 (0x86). */
static void test_bits_coils(void **st) {
    (void)st;
    const uint8_t c[] = {0x8B, 0x86};
    for (int fc = 1; fc <= 2; fc++) {
        expect_json(
            dec_bits(fc, 16, -1, 0, c, 2),
            "[true,false,false,false,true,false,true,true,true,false,false,false,false,true,true,false]");
        expect_json(dec_bits(fc, 8, -1, 0, c, 1), "[true,false,false,false,true,false,true,true]");
        /* 4 coils: one byte 0x0B (c0..c3 = 1,1,0,1, zero padding) -> [0,0,0,0,c3,c2,c1,c0], last 4 */
        expect_json(dec_bits(fc, 4, -1, 0, (const uint8_t[]){0x0B}, 1), "[true,false,true,true]");
        expect_json(dec_bits(fc, 1, -1, 0, (const uint8_t[]){0x01}, 1), "true");
        expect_json(dec_bits(fc, 1, -1, 0, (const uint8_t[]){0x00}, 1), "false");
        expect_json(dec_bits(fc, 1, -1, 1, (const uint8_t[]){0x01}, 1), "1");
        /* 12 coils: [c7..c0, 0,0,0,0, c11..c8] with c8..c11 = 0,1,1,0 (0x06); last 12 */
        expect_json(dec_bits(fc, 12, -1, 0, (const uint8_t[]){0x8B, 0x06}, 2),
                    "[true,false,true,true,false,false,false,false,false,true,true,false]");
        /* 20 coils: only the first two bytes count */
        expect_json(
            dec_bits(fc, 20, -1, 0, (const uint8_t[]){0x8B, 0x86, 0x0F}, 3),
            "[true,false,false,false,true,false,true,true,true,false,false,false,false,true,true,false]");
        expect_json(dec_bits(fc, 16, 0, 0, c, 2), "1");
        expect_json(dec_bits(fc, 16, 1, 0, c, 2), "0");
    }
}

static void enc_coils(int count, int bit, json_t *v, const char *want) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = MBV_BITS;
    s.count = count;
    s.bit = bit;
    uint8_t coils[32];
    size_t n = 0;
    char err[64] = "", got[40] = "";
    assert_int_equal(tbgw_mbv_encode(&s, 15, v, NULL, coils, sizeof coils, &n, err, sizeof err), 0);
    json_decref(v);
    for (size_t i = 0; i < n; i++) got[i] = (char)('0' + coils[i]);
    assert_string_equal(got, want);
}

static uint16_t enc_reg(int fc, int count, int bit, json_t *v) {
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = MBV_BITS;
    s.count = count;
    s.bit = bit;
    uint16_t regs[4] = {0};
    size_t n = 0;
    char err[64] = "";
    assert_int_equal(tbgw_mbv_encode(&s, fc, v, regs, NULL, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    json_decref(v);
    return regs[0];
}

/* Writes put every item where a read of the same entry takes it from (coils listed c0 first). */
static void test_bits_writes(void **st) {
    (void)st;
    enc_coils(16, -1, json_loads("[1,0,0,0,1,0,1,1, 1,0,0,0,0,1,1,0]", 0, NULL), "1101000101100001");
    enc_coils(8, -1, json_loads("[true,false,false,false,true,false,true,true]", 0, NULL), "11010001");
    enc_coils(4, -1, json_loads("[true,false,true,true]", 0, NULL), "1101");
    enc_coils(4, -1, json_string("1011"), "1101");
    enc_coils(1, -1, json_true(), "1");
    enc_coils(1, -1, json_loads("[false]", 0, NULL), "0");
    /* an integer: coil i = bit i */
    enc_coils(4, -1, json_integer(5), "1010");
    /* 12 coils: items 4..7 are padding slots; coils 4..7 are not reported by a read and written 0 */
    enc_coils(12, -1, json_loads("[1,0,1,1, 0,0,0,0, 0,1,1,0]", 0, NULL), "110100000110");
    /* bit: the coil a read with that bit reports (kept item 2 of 4 = c1) */
    enc_coils(4, 2, json_true(), "0100");
    enc_coils(4, 2, json_string("true"), "0100");
    enc_coils(4, 2, json_string("0111"), "1110"); /* a list still is a list */
    for (int fc = 6; fc <= 16; fc += 10) {
        assert_int_equal(enc_reg(fc, 16, -1, json_loads("[0,1,0,1,1,0,1,1, 1,1,0,1,0,0,1,0]", 0, NULL)),
                         0xDA4B);
        assert_int_equal(enc_reg(fc, 8, -1, json_loads("[1,1,0,1,0,0,1,0]", 0, NULL)), 0x004B);
        /* 4 bits are the low byte's bits 4..7: [F,F,T,F] sets bit 6 */
        assert_int_equal(enc_reg(fc, 4, -1, json_loads("[false,false,true,false]", 0, NULL)), 0x0040);
        assert_int_equal(enc_reg(fc, 1, -1, json_true()), 0x0080);
        assert_int_equal(enc_reg(fc, 16, -1, json_integer(0x1234)), 0x1234);
        assert_int_equal(enc_reg(fc, 16, 1, json_true()), 0x0200);
    }
    /* round trips: what a read returns, written back, reads the same */
    const char *lists[] = {
        "[true]", "[false]", "[true,false,true,true]", "[false,true,true,false,true,false,false,true]",
        "[true,false,false,false,true,false,true,true,true,false,false,false,false,true,true,false]"};
    const int counts[] = {1, 1, 4, 8, 16};
    for (int i = 0; i < 5; i++) {
        tbgw_mbv_spec s;
        tbgw_mbv_spec_init(&s);
        s.type = MBV_BITS;
        s.count = counts[i];
        json_t *want = json_loads(lists[i], 0, NULL);
        json_t *v = counts[i] == 1 ? json_incref(json_array_get(want, 0)) : json_incref(want);
        uint8_t coils[16], wire[2] = {0};
        uint16_t reg;
        size_t n;
        char err[64] = "";
        assert_int_equal(tbgw_mbv_encode(&s, 15, v, NULL, coils, 16, &n, err, sizeof err), 0);
        for (size_t k = 0; k < n; k++) wire[k / 8] |= (uint8_t)(coils[k] << (k % 8));
        json_t *back = tbgw_mbv_decode(&s, 1, wire, (n + 7) / 8, err, sizeof err);
        assert_true(json_equal(back, v));
        json_decref(back);
        assert_int_equal(tbgw_mbv_encode(&s, 16, v, &reg, NULL, 1, &n, err, sizeof err), 0);
        uint8_t rb[2] = {(uint8_t)(reg >> 8), (uint8_t)reg};
        back = tbgw_mbv_decode(&s, 3, rb, 2, err, sizeof err);
        assert_true(json_equal(back, v));
        json_decref(back);
        json_decref(v);
        json_decref(want);
    }
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
    assert_int_equal(tbgw_mbv_spec_type(&s, type, count), 0);
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
    s.count = 3;
    assert_int_equal(tbgw_mbv_encode(&s, 15, v, NULL, coils, 16, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(coils[0] + 2 * coils[1] + 4 * coils[2], 5);
    json_decref(v);
    v = json_string("0110");
    s.count = 4;
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
    assert_int_equal(tbgw_mbv_spec_type(&s, type, count), 0);
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
        cmocka_unit_test(test_reference_values),
        cmocka_unit_test(test_divider_multiplier_round),
        cmocka_unit_test(test_byte_word_orders),
        cmocka_unit_test(test_bits_registers),
        cmocka_unit_test(test_bits_coils),
        cmocka_unit_test(test_bits_writes),
        cmocka_unit_test(test_string_bytes_variants),
        cmocka_unit_test(test_pystr),
        cmocka_unit_test(test_short_payload),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_repack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
