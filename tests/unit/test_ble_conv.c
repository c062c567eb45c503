/* The BLE connector's converters (docs/connectors/ble.md): Bytes (decimal strings of the selected
 * bytes) and HexBytes (big-endian integers of slices, then `compute`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "connectors/ble/ble_internal.h"
#include "util/buf.h"

static tbgw_ble_conv cv;

/* The value as JSON text, or "<drop: ...>" when the item yields nothing. */
static const char *val(const char *expr, int hex, const char *compute, const void *p, size_t n) {
    static char out[512];
    bitem it = {.key = "k", .expr = (char *)expr, .hex = hex};
    tbgw_err err = {0};
    if (compute) assert_int_equal(tbgw_py_compile(compute, strlen(compute), 0, &it.compute, &err, NULL), 0);
    tbgw_value v;
    if (tbgw_ble_value(&cv, &it, p, n, &v, &err) != 0) {
        snprintf(out, sizeof out, "<drop: %s>", err.msg);
    } else {
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_buf_json_value(&b, &v);
        snprintf(out, sizeof out, "%s", tbgw_buf_cstr(&b));
        tbgw_buf_free(&b);
    }
    if (it.compute) tbgw_py_free(it.compute);
    return out;
}

static int setup(void **st) {
    (void)st;
    return tbgw_ble_conv_init(&cv);
}

static int teardown(void **st) {
    (void)st;
    tbgw_ble_conv_free(&cv);
    return 0;
}

static void test_bytes(void **st) {
    (void)st;
    const uint8_t d[] = {1, 23, 5, 200};
    /* the reference configuration's expressions */
    assert_string_equal(val("[0:2]cm [2:]A", 0, NULL, d, 3), "\"123cm 5A\"");
    assert_string_equal(val("All values: [:]", 0, NULL, d, 3), "\"All values: 1235\"");
    assert_string_equal(val("[2]", 0, NULL, d, 3), "\"5\"");
    assert_string_equal(val("[0]", 0, NULL, d, 4), "\"1\"");
    assert_string_equal(val("[-1]", 0, NULL, d, 4), "\"200\"");
    assert_string_equal(val("[-2:]", 0, NULL, d, 4), "\"5200\"");
    assert_string_equal(val("[1:100]", 0, NULL, d, 4), "\"235200\"");
    assert_string_equal(val("[3:1]", 0, NULL, d, 4), "\"\"");
    assert_string_equal(val("[0][0]", 0, NULL, d, 4), "\"11\"");
    assert_string_equal(val("no tokens", 0, NULL, d, 4), "\"no tokens\"");
    assert_string_equal(val("[ 1]", 0, NULL, d, 4), "\"[ 1]\""); /* not a token */
    assert_string_equal(val("", 0, NULL, d, 4), "\"\"");
    /* Python would raise: the item is dropped */
    assert_string_equal(val("[4]", 0, NULL, d, 4), "<drop: k: IndexError: index 4 out of range (4 bytes)>");
    assert_non_null(strstr(val("[x]", 0, NULL, d, 4), "<drop"));
    assert_non_null(strstr(val("[1:2:3]", 0, NULL, d, 4), "<drop"));
    assert_non_null(strstr(val("[\xc3\xa9]", 0, NULL, d, 4), "<drop"));
    assert_non_null(strstr(val("[0]", 0, NULL, NULL, 0), "<drop"));
}

static void test_hex(void **st) {
    (void)st;
    const uint8_t d[] = {0x01, 0x02, 0x07, 0xff};
    assert_string_equal(val("[0:2]", 1, NULL, d, 4), "258");
    assert_string_equal(val("[0:2]", 1, "value / 10", d, 4), "25.8");
    assert_string_equal(val("[2:]", 1, NULL, d, 4), "2047");
    assert_string_equal(val("[:3]", 1, NULL, d, 4), "16910335");   /* no start: the whole data */
    assert_string_equal(val("[2]", 1, NULL, d, 4), "7");           /* a byte (the reference raises) */
    assert_string_equal(val("[0:1] [3:4]", 1, NULL, d, 4), "255"); /* the last token wins */
    assert_string_equal(val("[0:1]", 1, "value > 0 and 'on' or 'off'", d, 4), "\"on\"");
    assert_string_equal(val("text", 1, "value * 2", d, 4), "\"text\""); /* no token, no compute */
    assert_non_null(strstr(val("[4:]", 1, NULL, d, 4), "invalid literal for int() with base 16"));
    assert_non_null(strstr(val("[0:1]", 1, "value / 0", d, 4), "ZeroDivisionError"));
    /* beyond 64 bits: exact */
    const uint8_t big[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_string_equal(val("[0:10]", 1, NULL, big, 10), "1208925819614629174706175");
    assert_string_equal(val("[0:10]", 1, "value % 1000", big, 10), "175");
}

static void test_add(void **st) {
    (void)st;
    const uint8_t d[] = {10, 20, 30};
    bitem t = {.key = "temperature", .expr = "[2]", .telemetry = 1};
    bitem a = {.key = "name", .expr = "[0:2]"};
    tbgw_converted *rec = tbgw_converted_new("dev", "default");
    tbgw_err err = {0};
    assert_int_equal(tbgw_ble_add(&cv, rec, &t, d, 3, &err), 0);
    assert_int_equal(tbgw_ble_add(&cv, rec, &a, d, 3, &err), 0);
    assert_int_equal(rec->n_telemetry, 1);
    assert_int_equal(rec->n_attributes, 1);
    assert_string_equal(rec->telemetry[0].v.u.s, "30");
    assert_string_equal(rec->attributes[0].v.u.s, "1020");
    tbgw_converted_free(rec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_add),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
