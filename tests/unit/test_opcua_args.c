/* OPC-UA RPC inputs: the reserved get/set params forms (spec gateway.md §7.3), the Argument
 * structure of InputArguments (hand-made bodies, every truncation, hostile counts) and JSON values
 * encoded as declared argument types (ranges, kinds, ranks, error texts). No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"
#include "proto/opcua/ua_argument.h"

/* ------------------------------------------------------------------ get / set params */

static void expect_split(const char *params, const char *target, const char *value) {
    char *t = NULL, *v = NULL;
    int rc = opcua_set_split(params, &t, &v);
    if (!target) {
        assert_int_equal(rc, TBGW_EINVAL);
        assert_null(t);
        assert_null(v);
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(t, target);
    assert_string_equal(v, value);
    free(t);
    free(v);
}

static void test_set_node_id_forms(void **state) {
    (void)state;
    /* the reference users' form: node id, ';', spaces, value */
    expect_split("ns=3;i=9; 456.34", "ns=3;i=9", "456.34");
    expect_split("ns=3;i=9;456.34", "ns=3;i=9", "456.34");
    expect_split("ns=3;i=9 456.34", "ns=3;i=9", "456.34");
    expect_split("ns=3;i=9=456.34", "ns=3;i=9", "456.34");
    expect_split("ns=3;i=9;=456.34", "ns=3;i=9", "456.34");
    expect_split("  ns=3;i=9 ;  456.34 ; ", "ns=3;i=9", "456.34");
    expect_split("ns=3; i=9; 1", "ns=3;i=9", "1");
    /* without ns= (namespace 0) */
    expect_split("i=2258; 5", "i=2258", "5");
    expect_split("i=2258 5", "i=2258", "5");
    /* string identifiers: up to the first space, else up to the last ';' or '=' */
    expect_split("ns=2;s=Temp; 25", "ns=2;s=Temp", "25");
    expect_split("ns=2;s=Temp 25", "ns=2;s=Temp", "25");
    expect_split("ns=2;s=Temp=25", "ns=2;s=Temp", "25");
    expect_split("ns=2;s=Temp;25", "ns=2;s=Temp", "25");
    expect_split("ns=2;s=Dev.Temp; hello world", "ns=2;s=Dev.Temp", "hello world");
    expect_split("s=Temp true", "s=Temp", "true");
    /* GUID and opaque identifiers */
    expect_split("ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63;=8",
                 "ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63", "8");
    expect_split("ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63 8",
                 "ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "8");
    expect_split("ns=1;b=dGJndw== changed", "ns=1;b=dGJndw==", "changed");
    expect_split("b=dGJndw==; x", "b=dGJndw==", "x");
    /* a value is required */
    expect_split("ns=3;i=9", NULL, NULL);
    expect_split("ns=3;i=9; ", NULL, NULL);
    expect_split("ns=2;s=Temp;", NULL, NULL);
    expect_split("", NULL, NULL);
    expect_split("   ", NULL, NULL);
    expect_split(NULL, NULL, NULL);
}

static void test_set_key_and_path_forms(void **state) {
    (void)state;
    expect_split("Power 231.5", "Power", "231.5");
    expect_split("Power=231.5", "Power", "231.5");
    expect_split("Power;231.5", "Power", "231.5");
    expect_split("Power; 231.5", "Power", "231.5");
    expect_split("Power ;= 231.5 ;", "Power", "231.5");
    expect_split("temperature=-3", "temperature", "-3");
    expect_split("Sub\\.Temp 4", "Sub\\.Temp", "4");
    expect_split("Root\\.Objects\\.MyObject\\.Power;242.5", "Root\\.Objects\\.MyObject\\.Power", "242.5");
    expect_split("  Root\\.Objects\\.MyObject\\.Frequency ;= 62 ; ", "Root\\.Objects\\.MyObject\\.Frequency",
                 "62");
    /* with ';' or '=' the path may hold spaces, the value too */
    expect_split("Root\\.Objects\\.My Device\\.Name=new name", "Root\\.Objects\\.My Device\\.Name",
                 "new name");
    expect_split("${Power}=5", "${Power}", "5");
    expect_split("${ns=1;s=Power} 5", "${ns=1;s=Power}", "5");
    expect_split("${ns=1;s=Power};=5", "${ns=1;s=Power}", "5");
    expect_split("${Sub\\.Temp}; 5", "${Sub\\.Temp}", "5");
    expect_split("Power", NULL, NULL);
    expect_split("=5", NULL, NULL);
    expect_split(";5", NULL, NULL);
}

static void test_get_target(void **state) {
    (void)state;
    const struct {
        const char *in, *want;
    } cases[] = {
        {"ns=3;i=9", "ns=3;i=9"},
        {" ns=3;i=9; ", "ns=3;i=9"},
        {"ns=3;  i=9", "ns=3;i=9"},
        {"ns=3;i=9;", "ns=3;i=9"},
        {"i=2259", "i=2259"},
        {"temperature", "temperature"},
        {"${Power}", "${Power}"},
        {"Root\\.Objects\\.MyObject\\.Power ", "Root\\.Objects\\.MyObject\\.Power"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = opcua_get_target(cases[i].in);
        assert_non_null(t);
        assert_string_equal(t, cases[i].want);
        free(t);
    }
    assert_null(opcua_get_target(""));
    assert_null(opcua_get_target(" ; "));
    assert_null(opcua_get_target(NULL));
}

/* ------------------------------------------------------------------ Argument decoding */

/* An Argument ExtensionObject body: Name, DataType, ValueRank, ArrayDimensions, Description. */
static void argument_body(tbgw_buf *b, const char *name, tbgw_ua_nodeid dt, int32_t rank, int32_t ndims,
                          const uint32_t *dims, int with_description) {
    tbgw_ua_enc_cstr(b, name);
    tbgw_ua_enc_nodeid(b, &dt);
    tbgw_ua_enc_i32(b, rank);
    tbgw_ua_enc_i32(b, ndims);
    for (int32_t i = 0; i < ndims; i++) tbgw_ua_enc_u32(b, dims[i]);
    if (with_description) {
        tbgw_ua_ltext lt = {{-1, NULL}, {4, (uint8_t *)"text"}};
        tbgw_ua_enc_ltext(b, &lt);
    }
}

static tbgw_ua_extobj extobj_of(const tbgw_buf *b, size_t len) {
    tbgw_ua_extobj eo;
    memset(&eo, 0, sizeof eo);
    eo.type_id = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_ARGUMENT_BINARY);
    eo.enc = TBGW_UA_EO_BINARY;
    eo.body.len = (int32_t)len;
    eo.body.data = (uint8_t *)b->p;
    return eo;
}

static void test_argument_decode(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    uint32_t dims[1] = {3};
    argument_body(&b, "values", tbgw_ua_nodeid_num(0, TBGW_UA_INT32), 1, 1, dims, 1);
    tbgw_ua_extobj eo = extobj_of(&b, b.len);
    tbgw_ua_argument a;
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), 0);
    assert_string_equal(a.name, "values");
    assert_int_equal(a.data_type.num, TBGW_UA_INT32);
    assert_int_equal(a.value_rank, 1);
    assert_int_equal(a.n_dims, 1);
    assert_int_equal(a.dims[0], 3);
    tbgw_ua_argument_clear(&a);

    /* every truncation before the Description is refused with nothing to free */
    size_t full = b.len;
    tbgw_buf_reset(&b);
    argument_body(&b, "values", tbgw_ua_nodeid_num(0, TBGW_UA_INT32), 1, 1, dims, 0);
    size_t no_descr = b.len;
    assert_true(no_descr < full);
    for (size_t n = 0; n < no_descr; n++) {
        eo = extobj_of(&b, n);
        assert_int_equal(tbgw_ua_argument_decode(&eo, &a), TBGW_EPROTO);
        assert_null(a.name);
        assert_null(a.dims);
    }
    /* a body without the Description is accepted (some servers send it so) */
    eo = extobj_of(&b, no_descr);
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), 0);
    tbgw_ua_argument_clear(&a);

    /* a null name becomes "" */
    tbgw_buf_reset(&b);
    argument_body(&b, NULL, tbgw_ua_nodeid_num(0, TBGW_UA_DOUBLE), -1, -1, NULL, 1);
    eo = extobj_of(&b, b.len);
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), 0);
    assert_string_equal(a.name, "");
    assert_int_equal(a.n_dims, 0);
    tbgw_ua_argument_clear(&a);

    /* hostile dimension counts */
    tbgw_buf_reset(&b);
    argument_body(&b, "x", tbgw_ua_nodeid_num(0, TBGW_UA_DOUBLE), 1, 0, NULL, 0);
    b.len -= 4;
    tbgw_ua_enc_i32(&b, 0x7FFFFFFF);
    eo = extobj_of(&b, b.len);
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), TBGW_EPROTO);
    tbgw_buf_reset(&b);
    uint32_t many[40] = {0};
    argument_body(&b, "x", tbgw_ua_nodeid_num(0, TBGW_UA_DOUBLE), 40, 40, many, 0);
    eo = extobj_of(&b, b.len);
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), TBGW_EPROTO);

    /* not an Argument: another encoding id, XML, no body */
    tbgw_buf_reset(&b);
    argument_body(&b, "x", tbgw_ua_nodeid_num(0, TBGW_UA_DOUBLE), -1, 0, NULL, 1);
    eo = extobj_of(&b, b.len);
    eo.type_id.num = 297;
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), TBGW_EPROTO);
    eo = extobj_of(&b, b.len);
    eo.enc = TBGW_UA_EO_XML;
    assert_int_equal(tbgw_ua_argument_decode(&eo, &a), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_argument_decode(NULL, &a), TBGW_EPROTO);
    tbgw_buf_free(&b);
}

static void test_arguments_from_variant(void **state) {
    (void)state;
    tbgw_buf b1, b2;
    tbgw_buf_init(&b1);
    tbgw_buf_init(&b2);
    argument_body(&b1, "a", tbgw_ua_nodeid_num(0, TBGW_UA_INT32), -1, 0, NULL, 1);
    argument_body(&b2, "b", tbgw_ua_nodeid_num(0, 294), -1, 0, NULL, 1); /* UtcTime */
    tbgw_ua_extobj eo[2] = {extobj_of(&b1, b1.len), extobj_of(&b2, b2.len)};
    tbgw_ua_scalar sc[2] = {{.eo = &eo[0]}, {.eo = &eo[1]}};
    tbgw_ua_variant v = {.type = TBGW_UA_EXTENSIONOBJECT, .is_array = 1, .n = 2, .v = sc};
    tbgw_ua_argument *args;
    size_t n;
    assert_int_equal(tbgw_ua_arguments_from_variant(&v, &args, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(args[0].name, "a");
    assert_string_equal(args[1].name, "b");
    assert_int_equal(tbgw_ua_builtin_of_datatype(&args[1].data_type), TBGW_UA_DATETIME);
    tbgw_ua_arguments_free(args, n);
    /* one broken element refuses the whole list */
    eo[1].body.len = 3;
    assert_int_equal(tbgw_ua_arguments_from_variant(&v, &args, &n), TBGW_EPROTO);
    assert_null(args);
    assert_int_equal(n, 0);
    /* not ExtensionObjects; empty */
    v.type = TBGW_UA_INT32;
    assert_int_equal(tbgw_ua_arguments_from_variant(&v, &args, &n), TBGW_EPROTO);
    tbgw_ua_variant empty = {0};
    assert_int_equal(tbgw_ua_arguments_from_variant(&empty, &args, &n), 0);
    assert_int_equal(n, 0);
    tbgw_buf_free(&b1);
    tbgw_buf_free(&b2);
}

static void test_builtin_of_datatype(void **state) {
    (void)state;
    const struct {
        uint16_t ns;
        uint32_t id;
        uint8_t want;
    } cases[] = {
        {0, 1, TBGW_UA_BOOLEAN},
        {0, 6, TBGW_UA_INT32},
        {0, 15, TBGW_UA_BYTESTRING},
        {0, 24, 0},
        {0, 26, 0},
        {0, 27, TBGW_UA_INT64},
        {0, 28, TBGW_UA_UINT64},
        {0, 29, TBGW_UA_INT32},
        {0, 290, TBGW_UA_DOUBLE},
        {0, 294, TBGW_UA_DATETIME},
        {0, 295, TBGW_UA_STRING},
        {0, 2003, TBGW_UA_BYTESTRING},
        {0, 22, TBGW_UA_EXTENSIONOBJECT},
        {2, 6, 0},
        {0, 99999, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tbgw_ua_nodeid id = tbgw_ua_nodeid_num(cases[i].ns, cases[i].id);
        assert_int_equal(tbgw_ua_builtin_of_datatype(&id), cases[i].want);
    }
    assert_int_equal(tbgw_ua_builtin_of_datatype(NULL), 0);
}

/* ------------------------------------------------------------------ JSON -> declared type */

static tbgw_ua_argument arg(const char *name, uint32_t type, int32_t rank) {
    tbgw_ua_argument a;
    memset(&a, 0, sizeof a);
    a.name = (char *)(uintptr_t)name;
    a.data_type = tbgw_ua_nodeid_num(0, type);
    a.value_rank = rank;
    return a;
}

/* Encodes text (JSON) as argument a and returns the variant (caller clears). */
static tbgw_ua_variant encode_ok(const char *text, tbgw_ua_argument a) {
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    tbgw_ua_variant v;
    char err[256] = "";
    int rc = opcua_arg_from_json(j, &a, tbgw_ua_builtin_of_datatype(&a.data_type), 0, &v, err, sizeof err);
    if (rc) fail_msg("%s: %s", text, err);
    json_decref(j);
    return v;
}

static void encode_err(const char *text, tbgw_ua_argument a, size_t index, const char *want) {
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    tbgw_ua_variant v;
    char err[256] = "";
    assert_int_equal(
        opcua_arg_from_json(j, &a, tbgw_ua_builtin_of_datatype(&a.data_type), index, &v, err, sizeof err),
        TBGW_EINVAL);
    assert_string_equal(err, want);
    assert_int_equal(v.type, 0);
    assert_null(v.v);
    json_decref(j);
}

static void test_integers_as_declared(void **state) {
    (void)state;
    const struct {
        uint32_t type;
        const char *ok_lo, *ok_hi, *bad_lo, *bad_hi, *range;
    } cases[] = {
        {TBGW_UA_SBYTE, "-128", "127", "-129", "128", "-128..127"},
        {TBGW_UA_BYTE, "0", "255", "-1", "256", "0..255"},
        {TBGW_UA_INT16, "-32768", "32767", "-32769", "32768", "-32768..32767"},
        {TBGW_UA_UINT16, "0", "65535", "-1", "65536", "0..65535"},
        {TBGW_UA_INT32, "-2147483648", "2147483647", "-2147483649", "2147483648", "-2147483648..2147483647"},
        {TBGW_UA_UINT32, "0", "4294967295", "-1", "4294967296", "0..4294967295"},
        {TBGW_UA_INT64, "-9223372036854775808", "9223372036854775807", "-1e+19", "1e+19",
         "-9223372036854775808..9223372036854775807"},
        {TBGW_UA_UINT64, "0", "9223372036854775807", "-1", "2e+19", "0..18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tbgw_ua_argument a = arg("n", cases[i].type, TBGW_UA_RANK_SCALAR);
        tbgw_ua_variant v = encode_ok(cases[i].ok_lo, a);
        assert_int_equal(v.type, cases[i].type);
        assert_int_equal(v.is_array, 0);
        assert_int_equal(v.n, 1);
        tbgw_ua_variant_clear(&v);
        v = encode_ok(cases[i].ok_hi, a);
        tbgw_ua_variant_clear(&v);
        char want[200];
        const char *tn = tbgw_ua_type_name((uint8_t)cases[i].type);
        snprintf(want, sizeof want, "argument 1 'n' (%s): %s out of range (%s)", tn, cases[i].bad_lo,
                 cases[i].range);
        encode_err(cases[i].bad_lo, a, 0, want);
        snprintf(want, sizeof want, "argument 1 'n' (%s): %s out of range (%s)", tn, cases[i].bad_hi,
                 cases[i].range);
        encode_err(cases[i].bad_hi, a, 0, want);
        snprintf(want, sizeof want, "argument 1 'n' (%s): 1.5 expected an integer", tn);
        encode_err("1.5", a, 0, want);
        snprintf(want, sizeof want, "argument 1 'n' (%s): true expected an integer", tn);
        encode_err("true", a, 0, want);
        snprintf(want, sizeof want, "argument 1 'n' (%s): \"12a\" expected an integer", tn);
        encode_err("\"12a\"", a, 0, want);
    }
    /* the value lands in the right union member; integral reals and decimal text fit */
    tbgw_ua_variant v = encode_ok("-7", arg("a", TBGW_UA_INT32, -1));
    assert_int_equal(v.v[0].i, -7);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("8.0", arg("a", TBGW_UA_UINT16, -1));
    assert_int_equal(v.v[0].u, 8);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("\" 42 \"", arg("a", TBGW_UA_BYTE, -1));
    assert_int_equal(v.v[0].u, 42);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("\"18446744073709551615\"", arg("a", TBGW_UA_UINT64, -1));
    assert_true(v.v[0].u == UINT64_MAX);
    tbgw_ua_variant_clear(&v);
    encode_err("\"-5\"", arg("u", TBGW_UA_UINT32, -1), 2,
               "argument 3 'u' (UInt32): \"-5\" out of range (0..4294967295)");
    encode_err("\"18446744073709551616\"", arg("u", TBGW_UA_UINT64, -1), 0,
               "argument 1 'u' (UInt64): \"18446744073709551616\" out of range (0..18446744073709551615)");
}

static void test_other_types_as_declared(void **state) {
    (void)state;
    tbgw_ua_variant v = encode_ok("true", arg("b", TBGW_UA_BOOLEAN, -1));
    assert_int_equal(v.type, TBGW_UA_BOOLEAN);
    assert_int_equal(v.v[0].u, 1);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("0", arg("b", TBGW_UA_BOOLEAN, -1));
    assert_int_equal(v.v[0].u, 0);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("\"FALSE\"", arg("b", TBGW_UA_BOOLEAN, -1));
    assert_int_equal(v.v[0].u, 0);
    tbgw_ua_variant_clear(&v);
    encode_err("2", arg("b", TBGW_UA_BOOLEAN, -1), 0, "argument 1 'b' (Boolean): 2 expected true or false");

    v = encode_ok("7", arg("f", TBGW_UA_FLOAT, -1));
    assert_int_equal(v.type, TBGW_UA_FLOAT);
    assert_true(v.v[0].d == 7.0);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("\"2.5\"", arg("d", TBGW_UA_DOUBLE, -1));
    assert_true(v.v[0].d == 2.5);
    tbgw_ua_variant_clear(&v);
    encode_err("1e39", arg("f", TBGW_UA_FLOAT, -1), 0, "argument 1 'f' (Float): 1e+39 out of range of Float");
    encode_err("\"warm\"", arg("d", TBGW_UA_DOUBLE, -1), 0,
               "argument 1 'd' (Double): \"warm\" expected a number");

    /* strings: text as is, numbers and booleans as their JSON text, containers refused */
    v = encode_ok("\"hello\"", arg("s", TBGW_UA_STRING, -1));
    assert_int_equal(v.type, TBGW_UA_STRING);
    assert_string_equal((char *)v.v[0].s.data, "hello");
    tbgw_ua_variant_clear(&v);
    v = encode_ok("12", arg("s", TBGW_UA_STRING, -1));
    assert_string_equal((char *)v.v[0].s.data, "12");
    tbgw_ua_variant_clear(&v);
    encode_err("{\"a\":1}", arg("s", TBGW_UA_STRING, -1), 0,
               "argument 1 's' (String): {\"a\":1} expected a string");

    /* DateTime: ISO 8601 (UTC without a zone, offsets, fractions) or ms since 1970 */
    int64_t base = tbgw_ua_datetime_from_ms(1704164645000LL); /* 2024-01-02T03:04:05Z */
    const struct {
        const char *text;
        int64_t want;
    } times[] = {
        {"\"2024-01-02T03:04:05Z\"", base},
        {"\"2024-01-02T03:04:05\"", base},
        {"\"2024-01-02 03:04:05.25Z\"", base + 2500000},
        {"\"2024-01-02T05:04:05+02:00\"", base},
        {"\"2024-01-02T02:04:05.1234567-01:00\"", base + 1234567},
        {"1704164645000", base},
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        v = encode_ok(times[i].text, arg("t", TBGW_UA_DATETIME, -1));
        assert_int_equal(v.type, TBGW_UA_DATETIME);
        assert_int_equal(v.v[0].dt, times[i].want);
        tbgw_ua_variant_clear(&v);
    }
    encode_err(
        "\"yesterday\"", arg("t", TBGW_UA_DATETIME, -1), 0,
        "argument 1 't' (DateTime): \"yesterday\" expected an ISO 8601 time or milliseconds since 1970");
    encode_err(
        "\"2024-13-02T03:04:05Z\"", arg("t", TBGW_UA_DATETIME, -1), 0,
        "argument 1 't' (DateTime): \"2024-13-02T03:04:05Z\" expected an ISO 8601 time or milliseconds "
        "since 1970");
}

static void test_binary_and_id_types_as_declared(void **state) {
    (void)state;
    /* ByteString: hex text (as ByteStrings are reported) or a list of bytes */
    tbgw_ua_variant v = encode_ok("\"0a0BfF\"", arg("raw", TBGW_UA_BYTESTRING, -1));
    assert_int_equal(v.type, TBGW_UA_BYTESTRING);
    assert_int_equal(v.v[0].s.len, 3);
    assert_memory_equal(v.v[0].s.data, "\x0a\x0b\xff", 3);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("[1, 2, 255]", arg("raw", TBGW_UA_BYTESTRING, -1));
    assert_int_equal(v.is_array, 0);
    assert_memory_equal(v.v[0].s.data, "\x01\x02\xff", 3);
    tbgw_ua_variant_clear(&v);
    encode_err("\"abc\"", arg("raw", TBGW_UA_BYTESTRING, -1), 0,
               "argument 1 'raw' (ByteString): \"abc\" expected a hex string or a list of byte values");
    encode_err("[1, 256]", arg("raw", TBGW_UA_BYTESTRING, -1), 0,
               "argument 1 'raw' (ByteString): [1,256] expected a hex string or a list of byte values");

    /* Guid, NodeId, LocalizedText */
    v = encode_ok("\"72962b91-fa75-4ae6-8d28-b404dc7daf63\"", arg("g", TBGW_UA_GUID, -1));
    assert_int_equal(v.type, TBGW_UA_GUID);
    assert_int_equal(v.v[0].guid[0], 0x91); /* Data1 little endian */
    tbgw_ua_variant_clear(&v);
    encode_err("\"nope\"", arg("g", TBGW_UA_GUID, -1), 0, "argument 1 'g' (Guid): \"nope\" expected a GUID");
    v = encode_ok("\"ns=2;s=X\"", arg("id", TBGW_UA_NODEID, -1));
    assert_int_equal(v.v[0].nodeid->id.ns, 2);
    assert_string_equal((char *)v.v[0].nodeid->id.str.data, "X");
    tbgw_ua_variant_clear(&v);
    encode_err("5", arg("id", TBGW_UA_NODEID, -1), 0, "argument 1 'id' (NodeId): 5 expected a node id");
    v = encode_ok("\"Hallo\"", arg("lt", TBGW_UA_LOCALIZEDTEXT, -1));
    assert_string_equal((char *)v.v[0].lt.text.data, "Hallo");
    tbgw_ua_variant_clear(&v);
    encode_err("\"x\"", arg("x", TBGW_UA_EXTENSIONOBJECT, -1), 0,
               "argument 1 'x' (ExtensionObject): \"x\" ExtensionObject arguments are not supported");

    /* abstract and custom types keep the JSON type */
    v = encode_ok("5", arg("any", 24, -2));
    assert_int_equal(v.type, TBGW_UA_INT64);
    tbgw_ua_variant_clear(&v);
    tbgw_ua_argument custom = arg("c", 3003, -1);
    custom.data_type.ns = 2;
    v = encode_ok("1.5", custom);
    assert_int_equal(v.type, TBGW_UA_DOUBLE);
    tbgw_ua_variant_clear(&v);
}

static void test_value_ranks(void **state) {
    (void)state;
    tbgw_ua_variant v = encode_ok("[1, 2, 3]", arg("values", TBGW_UA_INT32, 1));
    assert_int_equal(v.type, TBGW_UA_INT32);
    assert_int_equal(v.is_array, 1);
    assert_int_equal(v.n, 3);
    assert_int_equal(v.v[2].i, 3);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("[]", arg("values", TBGW_UA_DOUBLE, 0));
    assert_int_equal(v.is_array, 1);
    assert_int_equal(v.n, 0);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("[\"a\", \"b\"]", arg("names", TBGW_UA_STRING, 1));
    assert_string_equal((char *)v.v[1].s.data, "b");
    tbgw_ua_variant_clear(&v);
    /* any rank / scalar or one dimension: as the JSON is */
    v = encode_ok("[1.5]", arg("x", TBGW_UA_DOUBLE, TBGW_UA_RANK_ANY));
    assert_int_equal(v.is_array, 1);
    tbgw_ua_variant_clear(&v);
    v = encode_ok("1.5", arg("x", TBGW_UA_DOUBLE, TBGW_UA_RANK_SCALAR_OR_ONE));
    assert_int_equal(v.is_array, 0);
    tbgw_ua_variant_clear(&v);
    /* lists of ByteStrings */
    v = encode_ok("[\"00\", [1]]", arg("blobs", TBGW_UA_BYTESTRING, 1));
    assert_int_equal(v.n, 2);
    tbgw_ua_variant_clear(&v);

    encode_err("5", arg("values", TBGW_UA_INT32, 1), 0, "argument 1 'values' (Int32[]): 5 expected a list");
    encode_err("[5]", arg("v", TBGW_UA_INT32, -1), 1, "argument 2 'v' (Int32): [5] expected a single value");
    encode_err("[1, \"z\"]", arg("values", TBGW_UA_INT32, 1), 0,
               "argument 1 'values' (Int32[]): [1,\"z\"] element 2: expected an integer");
    encode_err("[1, 300]", arg("values", TBGW_UA_BYTE, 1), 0,
               "argument 1 'values' (Byte[]): [1,300] element 2: out of range (0..255)");
    encode_err("[[1]]", arg("m", TBGW_UA_INT32, 2), 0,
               "argument 1 'm' (Int32[]): [[1]] 2-dimensional arguments are not supported");
    uint32_t three = 3;
    tbgw_ua_argument fixed = arg("xyz", TBGW_UA_DOUBLE, 1);
    fixed.dims = &three;
    fixed.n_dims = 1;
    v = encode_ok("[1, 2, 3]", fixed);
    tbgw_ua_variant_clear(&v);
    encode_err("[1, 2]", fixed, 0, "argument 1 'xyz' (Double[]): [1,2] expected 3 elements");
    /* no value (null, or a configured argument without "value") */
    encode_err("null", arg("a", TBGW_UA_INT32, -1), 0, "argument 1 'a' (Int32): no value");
    char err[128];
    tbgw_ua_argument any = arg("x", 24, -2);
    assert_int_equal(opcua_arg_from_json(NULL, &any, 0, 1, &v, err, sizeof err), TBGW_EINVAL);
    assert_string_equal(err, "argument 2 'x' (any type): no value");
    /* long values are cut in the message */
    encode_err(
        "\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij\"", arg("n", TBGW_UA_INT32, -1), 0,
        "argument 1 'n' (Int32): \"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq... expected an integer");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_node_id_forms),
        cmocka_unit_test(test_set_key_and_path_forms),
        cmocka_unit_test(test_get_target),
        cmocka_unit_test(test_argument_decode),
        cmocka_unit_test(test_arguments_from_variant),
        cmocka_unit_test(test_builtin_of_datatype),
        cmocka_unit_test(test_integers_as_declared),
        cmocka_unit_test(test_other_types_as_declared),
        cmocka_unit_test(test_binary_and_id_types_as_declared),
        cmocka_unit_test(test_value_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
