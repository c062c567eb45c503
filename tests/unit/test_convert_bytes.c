/* The MQTT bytes converter (spec §5.4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "convert/bytes_conv.h"
#include "convert_helpers.h"

static const char *slice(const char *tmpl, const void *p, size_t n, int hex) {
    static char out[256];
    tbgw_slice_tmpl *t;
    tbgw_err err = {0};
    assert_int_equal(tbgw_slice_compile(tmpl, &t, &err), 0);
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = tbgw_slice_render(t, p, n, hex, &b);
    snprintf(out, sizeof out, "%s", rc ? "<ENOENT>" : tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    tbgw_slice_free(t);
    return out;
}

static void test_slices(void **st) {
    (void)st;
    const char *p = "Dev123.5";
    size_t n = strlen(p);
    assert_string_equal(slice("[0:4]", p, n, 0), "Dev1");
    assert_string_equal(slice("[4:]", p, n, 0), "23.5");
    assert_string_equal(slice("[:3]", p, n, 0), "Dev");
    assert_string_equal(slice("[:]", p, n, 0), "Dev123.5");
    assert_string_equal(slice("[-3:]", p, n, 0), "3.5");
    assert_string_equal(slice("[1:-5]", p, n, 0), "ev");
    assert_string_equal(slice("[2]", p, n, 0), "v"); /* single index works without hexMode too */
    assert_string_equal(slice("[-1]", p, n, 0), "5");
    assert_string_equal(slice("[20]", p, n, 0), "<ENOENT>");
    assert_string_equal(slice("[5:2]", p, n, 0), "");
    assert_string_equal(slice("[100:200]", p, n, 0), "");
    assert_string_equal(slice("id-[0:3]-[6:]", p, n, 0), "id-Dev-.5");
    assert_string_equal(slice("no [slice] here [a:b]", p, n, 0), "no [slice] here [a:b]");
}

static void test_hex_and_binary(void **st) {
    (void)st;
    const uint8_t p[] = {0x01, 0xAB, 0x00, 0xFF, 'A'};
    assert_string_equal(slice("[:]", p, sizeof p, 1), "01ab00ff41");
    assert_string_equal(slice("[1]", p, sizeof p, 1), "ab");
    assert_string_equal(slice("[0:2]", p, sizeof p, 1), "01ab");
    /* text mode: invalid UTF-8 => U+FFFD, NUL dropped */
    assert_string_equal(slice("[:]", p, sizeof p, 0), "\x01\xEF\xBF\xBD\xEF\xBF\xBD"
                                                      "A");
    const char *utf = "\xC3\xA9t\xC3\xA9";
    assert_string_equal(slice("[:]", utf, strlen(utf), 0), "\xC3\xA9t\xC3\xA9");
    assert_string_equal(slice("[0:1]", utf, strlen(utf), 0), "\xEF\xBF\xBD"); /* cut sequence */
}

static char *convert(const char *cfg, const char *topic, const void *p, size_t n) {
    json_error_t je;
    json_t *c = json_loads(cfg, 0, &je);
    assert_non_null(c);
    tbgw_bytes_conv *conv;
    tbgw_err err = {0};
    int rc = tbgw_bytes_conv_new(c, NULL, "converter", &conv, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    tbgw_converted *out = NULL;
    rc = tbgw_bytes_conv_convert(conv, topic, p, n, 1000, &out, &err);
    char *d = rc < 0 ? strdup(err.msg) : conv_dump(out);
    tbgw_converted_free(out);
    tbgw_bytes_conv_free(conv);
    json_decref(c);
    return d;
}

static void test_reference_mapping(void **st) {
    (void)st;
    /* mapping[2] of tests/data/reference/mqtt.json */
    const char *cfg =
        "{\"type\":\"bytes\",\"deviceInfo\":{\"deviceNameExpressionSource\":\"message\","
        "\"deviceNameExpression\":\"[0:4]\",\"deviceProfileExpressionSource\":\"constant\","
        "\"deviceProfileExpression\":\"default\"},\"timeout\":60000,\"attributes\":[{\"type\":\"raw\","
        "\"key\":\"rawData\",\"value\":\"[:]\"}],\"timeseries\":[{\"type\":\"raw\",\"key\":\"temp\","
        "\"value\":\"[4:]\"}]}";
    char *d = convert(cfg, "sensor/raw_data", "AM0125.5", 8);
    assert_string_equal(d, "AM01/default a{rawData=\"AM0125.5\"} t{1000:temp=\"25.5\"}");
    free(d);
    d = convert(cfg, "sensor/raw_data", "", 0);
    assert_string_equal(d, "device name is empty (topic sensor/raw_data)");
    free(d);
}

static void test_hex_mode_topic_name_and_keys(void **st) {
    (void)st;
    const char *cfg =
        "{\"deviceInfo\":{\"deviceNameExpressionSource\":\"topic\",\"deviceNameExpression\":"
        "\"(?<=bin/)[^/]+\"},\"timeseries\":[{\"key\":\"k[0:1]\",\"value\":\"[1:3]\",\"hexMode\":true},"
        "{\"key\":\"b\",\"value\":\"[3]\",\"hexMode\":true},{\"key\":\"far\",\"value\":\"[9]\"}]}";
    const uint8_t p[] = {'x', 0x12, 0x34, 0xfe};
    char *d = convert(cfg, "bin/node7", p, sizeof p);
    assert_string_equal(d, "node7/default a{} t{1000:k78=\"1234\",1000:b=\"fe\"}");
    free(d);
}

static void test_config_errors(void **st) {
    (void)st;
    const char *bad[] = {"{}", "{\"deviceInfo\":{}}",
                         "{\"deviceInfo\":{\"deviceNameExpression\":\"[0:1]\"},\"timeseries\":[{\"key\":1}]}",
                         "{\"deviceInfo\":{\"deviceNameExpression\":\"[0:1]\"},\"timeseries\":{}}"};
    const char *want[] = {
        "converter.deviceInfo: expected an object", "converter.deviceInfo.deviceNameExpression: missing",
        "converter.timeseries[0].key: expected a string", "converter.timeseries: expected a list"};
    for (size_t i = 0; i < 4; i++) {
        json_t *c = json_loads(bad[i], 0, NULL);
        tbgw_bytes_conv *conv = NULL;
        tbgw_err err = {0};
        assert_int_equal(tbgw_bytes_conv_new(c, NULL, "converter", &conv, &err), TBGW_EINVAL);
        assert_string_equal(err.msg, want[i]);
        json_decref(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slices),
        cmocka_unit_test(test_hex_and_binary),
        cmocka_unit_test(test_reference_mapping),
        cmocka_unit_test(test_hex_mode_topic_name_and_keys),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
