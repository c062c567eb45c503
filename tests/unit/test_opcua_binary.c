/* OPC UA binary encoding: hand-checked byte vectors (Part 6 §5.2 examples), round trips and
 * malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "proto/opcua/ua_types.h"
#include <tbgw/err.h>

static void expect_bytes(const tbgw_buf *b, const uint8_t *want, size_t n) {
    assert_int_equal(b->oom, 0);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->p, want, n);
}

static void test_nodeid_forms(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_nodeid id;

    /* two-byte form: i=72 */
    assert_int_equal(tbgw_ua_nodeid_parse("i=72", &id), 0);
    tbgw_ua_enc_nodeid(&b, &id);
    expect_bytes(&b, (const uint8_t[]){0x00, 0x48}, 2);

    /* four-byte form: ns=5;i=1025 (Part 6 example) */
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_ua_nodeid_parse("ns=5;i=1025", &id), 0);
    tbgw_ua_enc_nodeid(&b, &id);
    expect_bytes(&b, (const uint8_t[]){0x01, 0x05, 0x01, 0x04}, 4);

    /* numeric form: ns=2;i=70000 */
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_ua_nodeid_parse("ns=2;i=70000", &id), 0);
    tbgw_ua_enc_nodeid(&b, &id);
    expect_bytes(&b, (const uint8_t[]){0x02, 0x02, 0x00, 0x70, 0x11, 0x01, 0x00}, 7);

    /* string form: ns=1;s=Hot水 (Part 6 example) */
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_ua_nodeid_parse("ns=1;s=Hot\xe6\xb0\xb4", &id), 0);
    tbgw_ua_enc_nodeid(&b, &id);
    expect_bytes(&b, (const uint8_t[]){0x03, 0x01, 0x00, 0x06, 0, 0, 0, 'H', 'o', 't', 0xE6, 0xB0, 0xB4}, 13);
    tbgw_ua_nodeid back;
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_nodeid(&d, &back), 0);
    assert_true(tbgw_ua_nodeid_equal(&id, &back));
    tbgw_ua_nodeid_clear(&back);
    tbgw_ua_nodeid_clear(&id);

    /* guid form (Part 6 example Guid 72962B91-FA75-4AE6-8D28-B404DC7DAF63) */
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_ua_nodeid_parse("g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", &id), 0);
    tbgw_ua_enc_nodeid(&b, &id);
    expect_bytes(&b,
                 (const uint8_t[]){0x04, 0x00, 0x00, 0x91, 0x2B, 0x96, 0x72, 0x75, 0xFA, 0xE6, 0x4A, 0x8D,
                                   0x28, 0xB4, 0x04, 0xDC, 0x7D, 0xAF, 0x63},
                 19);
    tbgw_buf fmt;
    tbgw_buf_init(&fmt);
    tbgw_ua_nodeid_format(&id, &fmt);
    assert_string_equal(tbgw_buf_cstr(&fmt), "g=72962b91-fa75-4ae6-8d28-b404dc7daf63");

    /* bytestring form: ns=3;b=AQID */
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_ua_nodeid_parse("ns=3;b=AQID", &id), 0);
    tbgw_ua_enc_nodeid(&b, &id);
    expect_bytes(&b, (const uint8_t[]){0x05, 0x03, 0x00, 0x03, 0, 0, 0, 1, 2, 3}, 10);
    tbgw_buf_reset(&fmt);
    tbgw_ua_nodeid_format(&id, &fmt);
    assert_string_equal(tbgw_buf_cstr(&fmt), "ns=3;b=AQID");
    tbgw_ua_nodeid_clear(&id);

    /* parse errors */
    assert_int_equal(tbgw_ua_nodeid_parse("ns=x;i=1", &id), TBGW_EINVAL);
    assert_int_equal(tbgw_ua_nodeid_parse("ns=70000;i=1", &id), TBGW_EINVAL);
    assert_int_equal(tbgw_ua_nodeid_parse("q=1", &id), TBGW_EINVAL);
    assert_int_equal(tbgw_ua_nodeid_parse("i=12a", &id), TBGW_EINVAL);
    assert_int_equal(tbgw_ua_nodeid_parse("g=1234", &id), TBGW_EINVAL);
    assert_int_equal(tbgw_ua_nodeid_parse("Root.Objects", &id), TBGW_EINVAL);

    /* a plain NodeId must not carry expanded flags; unknown form */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x80, 0x05}, 2);
    assert_int_equal(tbgw_ua_dec_nodeid(&d, &id), TBGW_EPROTO);
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x06, 0x05}, 2);
    assert_int_equal(tbgw_ua_dec_nodeid(&d, &id), TBGW_EPROTO);
    tbgw_buf_free(&fmt);
    tbgw_buf_free(&b);
}

static void test_expanded_nodeid(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_expnodeid e;
    memset(&e, 0, sizeof e);
    e.id = tbgw_ua_nodeid_num(0, 5);
    assert_int_equal(tbgw_ua_bytes_set(&e.ns_uri, "u", 1), 0);
    e.server_index = 1;
    tbgw_ua_enc_expnodeid(&b, &e);
    expect_bytes(&b, (const uint8_t[]){0xC0, 0x05, 0x01, 0, 0, 0, 'u', 0x01, 0, 0, 0}, 11);
    tbgw_ua_expnodeid out;
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_expnodeid(&d, &out), 0);
    assert_int_equal(out.id.num, 5);
    assert_int_equal(out.server_index, 1);
    assert_int_equal(out.ns_uri.len, 1);
    assert_int_equal(tbgw_ua_dec_left(&d), 0);
    tbgw_ua_expnodeid_clear(&out);
    tbgw_ua_expnodeid_clear(&e);
    tbgw_buf_free(&b);
}

static void test_strings_and_small_types(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_enc_cstr(&b, NULL);
    tbgw_ua_enc_cstr(&b, "");
    tbgw_ua_enc_cstr(&b, "A");
    expect_bytes(&b, (const uint8_t[]){0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1, 0, 0, 0, 'A'}, 13);

    tbgw_ua_dec d;
    tbgw_ua_bytes s;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_bytes(&d, &s), 0);
    assert_int_equal(s.len, -1);
    assert_int_equal(tbgw_ua_dec_bytes(&d, &s), 0);
    assert_int_equal(s.len, 0);
    tbgw_ua_bytes_clear(&s);
    assert_int_equal(tbgw_ua_dec_bytes(&d, &s), 0);
    assert_string_equal((const char *)s.data, "A");
    tbgw_ua_bytes_clear(&s);

    /* QualifiedName 1:Temp, LocalizedText with text only, and with locale */
    tbgw_buf_reset(&b);
    tbgw_ua_qname q = {1, {4, (uint8_t *)"Temp"}};
    tbgw_ua_enc_qname(&b, &q);
    expect_bytes(&b, (const uint8_t[]){0x01, 0x00, 0x04, 0, 0, 0, 'T', 'e', 'm', 'p'}, 10);
    tbgw_buf_reset(&b);
    tbgw_ua_ltext lt = {{-1, NULL}, {2, (uint8_t *)"Hi"}};
    tbgw_ua_enc_ltext(&b, &lt);
    expect_bytes(&b, (const uint8_t[]){0x02, 0x02, 0, 0, 0, 'H', 'i'}, 7);
    tbgw_buf_reset(&b);
    tbgw_ua_ltext lt2 = {{2, (uint8_t *)"en"}, {1, (uint8_t *)"x"}};
    tbgw_ua_enc_ltext(&b, &lt2);
    expect_bytes(&b, (const uint8_t[]){0x03, 0x02, 0, 0, 0, 'e', 'n', 0x01, 0, 0, 0, 'x'}, 12);
    tbgw_ua_ltext lt3;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_ltext(&d, &lt3), 0);
    assert_string_equal((const char *)lt3.locale.data, "en");
    assert_string_equal((const char *)lt3.text.data, "x");
    tbgw_ua_ltext_clear(&lt3);

    /* DateTime: the Unix epoch is 116444736000000000 ticks */
    assert_int_equal(tbgw_ua_datetime_from_ms(0), 116444736000000000LL);
    assert_int_equal(tbgw_ua_datetime_to_ms(116444736000000000LL + 15000), 1);
    tbgw_buf_reset(&b);
    tbgw_ua_enc_i64(&b, tbgw_ua_datetime_from_ms(0));
    expect_bytes(&b, (const uint8_t[]){0x00, 0x80, 0x3E, 0xD5, 0xDE, 0xB1, 0x9D, 0x01}, 8);

    /* ExtensionObject with a binary body, type i=811 (four-byte form) */
    tbgw_buf_reset(&b);
    tbgw_ua_extobj eo = {tbgw_ua_nodeid_num(0, 811), TBGW_UA_EO_BINARY, {3, (uint8_t *)"\xAA\xBB\xCC"}};
    tbgw_ua_enc_extobj(&b, &eo);
    expect_bytes(&b, (const uint8_t[]){0x01, 0x00, 0x2B, 0x03, 0x01, 0x03, 0, 0, 0, 0xAA, 0xBB, 0xCC}, 12);
    tbgw_ua_extobj eo2;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_extobj(&d, &eo2), 0);
    assert_int_equal(eo2.type_id.num, 811);
    assert_int_equal(eo2.body.len, 3);
    tbgw_ua_extobj_clear(&eo2);
    /* encoding byte 3 is invalid */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x00, 0x01, 0x03}, 3);
    assert_int_equal(tbgw_ua_dec_extobj(&d, &eo2), TBGW_EPROTO);
    tbgw_buf_free(&b);
}

static void test_diagnostic_info(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_diag inner = {0x10, 0, 0, 0, 0, {3, (uint8_t *)"abc"}, 0, NULL};
    tbgw_ua_diag di = {0x61, 1, 0, 0, 0, {-1, NULL}, 0x80000000u, &inner};
    tbgw_ua_enc_diag(&b, &di);
    expect_bytes(
        &b,
        (const uint8_t[]){0x61, 0x01, 0, 0, 0, 0x00, 0x00, 0x00, 0x80, 0x10, 0x03, 0, 0, 0, 'a', 'b', 'c'},
        17);
    tbgw_ua_dec d;
    tbgw_ua_diag out;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_diag(&d, &out), 0);
    assert_int_equal(out.symbolic_id, 1);
    assert_int_equal(out.inner_status, 0x80000000u);
    assert_non_null(out.inner);
    assert_string_equal((const char *)out.inner->additional_info.data, "abc");
    tbgw_ua_diag_clear(&out);

    /* a chain of inner diagnostics deeper than the limit is refused */
    uint8_t deep[64];
    memset(deep, 0x40, sizeof deep);
    tbgw_ua_dec_init(&d, deep, sizeof deep);
    assert_int_equal(tbgw_ua_dec_diag(&d, &out), TBGW_EPROTO);
    tbgw_buf_free(&b);
}

static void test_variant(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_variant v;
    tbgw_ua_scalar sc = {.i = 5};
    assert_int_equal(tbgw_ua_variant_set_scalar(&v, TBGW_UA_INT32, &sc), 0);
    assert_int_equal(tbgw_ua_enc_variant(&b, &v), 0);
    expect_bytes(&b, (const uint8_t[]){0x06, 0x05, 0, 0, 0}, 5);
    tbgw_ua_variant_clear(&v);

    /* array of Int32 [1,2] with dimensions [2] */
    tbgw_buf_reset(&b);
    tbgw_ua_scalar arr[2] = {{.i = 1}, {.i = 2}};
    int32_t dims[1] = {2};
    tbgw_ua_variant va = {TBGW_UA_INT32, 1, 2, arr, 1, dims};
    assert_int_equal(tbgw_ua_enc_variant(&b, &va), 0);
    expect_bytes(
        &b, (const uint8_t[]){0xC6, 0x02, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x01, 0, 0, 0, 0x02, 0, 0, 0}, 21);
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, b.p, b.len);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), 0);
    assert_int_equal(v.type, TBGW_UA_INT32);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.v[1].i, 2);
    assert_int_equal(v.n_dims, 1);
    assert_int_equal(v.dims[0], 2);
    tbgw_ua_variant_clear(&v);

    /* string array with a null element and a Boolean, Double, Float */
    tbgw_buf_reset(&b);
    tbgw_ua_scalar sarr[2] = {{.s = {2, (uint8_t *)"ab"}}, {.s = {-1, NULL}}};
    tbgw_ua_variant vs = {TBGW_UA_STRING, 1, 2, sarr, 0, NULL};
    assert_int_equal(tbgw_ua_enc_variant(&b, &vs), 0);
    expect_bytes(&b, (const uint8_t[]){0x8C, 0x02, 0, 0, 0, 0x02, 0, 0, 0, 'a', 'b', 0xFF, 0xFF, 0xFF, 0xFF},
                 15);
    tbgw_buf_reset(&b);
    tbgw_ua_scalar dsc = {.d = 21.5};
    tbgw_ua_variant vd = {TBGW_UA_DOUBLE, 0, 1, &dsc, 0, NULL};
    assert_int_equal(tbgw_ua_enc_variant(&b, &vd), 0);
    expect_bytes(&b, (const uint8_t[]){0x0B, 0, 0, 0, 0, 0, 0x80, 0x35, 0x40}, 9);
    tbgw_buf_reset(&b);
    tbgw_ua_scalar fsc = {.d = 1.0};
    tbgw_ua_variant vf = {TBGW_UA_FLOAT, 0, 1, &fsc, 0, NULL};
    assert_int_equal(tbgw_ua_enc_variant(&b, &vf), 0);
    expect_bytes(&b, (const uint8_t[]){0x0A, 0x00, 0x00, 0x80, 0x3F}, 5);

    /* null variant, null array */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x00}, 1);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), 0);
    assert_int_equal(v.type, 0);
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x86, 0xFF, 0xFF, 0xFF, 0xFF}, 5);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), 0);
    assert_int_equal(v.n, -1);
    tbgw_ua_variant_clear(&v);

    /* array of Variant holding an Int16 and a String; deep copy */
    tbgw_buf_reset(&b);
    static const uint8_t nested[] = {0x98, 0x02, 0, 0, 0, 0x04, 0xFE, 0xFF, 0x0C, 0x01, 0, 0, 0, 'z'};
    tbgw_ua_dec_init(&d, nested, sizeof nested);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), 0);
    assert_int_equal(v.v[0].var->v[0].i, -2);
    tbgw_ua_variant cp;
    assert_int_equal(tbgw_ua_variant_copy(&cp, &v), 0);
    assert_int_equal(tbgw_ua_enc_variant(&b, &cp), 0);
    expect_bytes(&b, nested, sizeof nested);
    tbgw_ua_variant_clear(&cp);
    tbgw_ua_variant_clear(&v);
    tbgw_buf_free(&b);
}

static void test_datavalue(void **state) {
    (void)state;
    static const uint8_t wire[] = {0x0F, 0x0B, 0,    0,    0,    0,    0,    0x80, 0x35, 0x40,
                                   0x00, 0x00, 0x35, 0x80, 0x00, 0x80, 0x3E, 0xD5, 0xDE, 0xB1,
                                   0x9D, 0x01, 0x10, 0x27, 0,    0,    0,    0,    0,    0};
    tbgw_ua_dec d;
    tbgw_ua_datavalue dv;
    tbgw_ua_dec_init(&d, wire, sizeof wire);
    assert_int_equal(tbgw_ua_dec_datavalue(&d, &dv), 0);
    assert_int_equal(dv.value.type, TBGW_UA_DOUBLE);
    assert_true(dv.value.v[0].d == 21.5);
    assert_int_equal(dv.status, 0x80350000u);
    assert_int_equal(tbgw_ua_datetime_to_ms(dv.source_ts), 0);
    assert_int_equal(dv.server_ts, 10000);
    assert_int_equal(tbgw_ua_dec_left(&d), 0);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(tbgw_ua_enc_datavalue(&b, &dv), 0);
    expect_bytes(&b, wire, sizeof wire);
    tbgw_ua_datavalue_clear(&dv);
    tbgw_buf_free(&b);
}

/* Every truncation of valid encodings fails cleanly (ASan checks that nothing leaks). */
static void test_truncations(void **state) {
    (void)state;
    static const uint8_t nested[] = {0x98, 0x02, 0, 0, 0, 0x04, 0xFE, 0xFF, 0x0C, 0x01, 0, 0, 0, 'z'};
    for (size_t n = 0; n < sizeof nested; n++) {
        tbgw_ua_dec d;
        tbgw_ua_variant v;
        tbgw_ua_dec_init(&d, nested, n);
        assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
        assert_int_equal(v.type, 0);
    }
}

static void test_hostile_counts(void **state) {
    (void)state;
    tbgw_ua_dec d;
    tbgw_ua_variant v;
    /* array of 2^24 doubles announced in 5 bytes */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x8B, 0x00, 0x00, 0x00, 0x01}, 5);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
    /* negative count other than -1 */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x86, 0xFE, 0xFF, 0xFF, 0xFF}, 5);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
    /* string longer than the buffer */
    tbgw_ua_bytes s;
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x10, 0, 0, 0, 'a'}, 5);
    assert_int_equal(tbgw_ua_dec_bytes(&d, &s), TBGW_EPROTO);
    /* a scalar Variant may not hold a Variant; type 30 unknown */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x18, 0x00}, 2);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x1E, 0x00}, 2);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
    /* dimensions on a scalar; zero dimensions */
    tbgw_ua_dec_init(&d, (const uint8_t[]){0x46, 1, 0, 0, 0}, 5);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
    tbgw_ua_dec_init(&d, (const uint8_t[]){0xC6, 0, 0, 0, 0, 0, 0, 0, 0}, 9);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
    /* Variant arrays nested beyond the depth limit */
    uint8_t deep[5 * 40];
    for (size_t i = 0; i < 40; i++) memcpy(deep + 5 * i, (const uint8_t[]){0x98, 1, 0, 0, 0}, 5);
    tbgw_ua_dec_init(&d, deep, sizeof deep);
    assert_int_equal(tbgw_ua_dec_variant(&d, &v), TBGW_EPROTO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodeid_forms),
        cmocka_unit_test(test_expanded_nodeid),
        cmocka_unit_test(test_strings_and_small_types),
        cmocka_unit_test(test_diagnostic_info),
        cmocka_unit_test(test_variant),
        cmocka_unit_test(test_datavalue),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_hostile_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
