/* The MQTT JSON converter (spec §5.3), including the reference unit-test expectations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "convert/json_conv.h"
#include "convert_helpers.h"

#define RECV 1000

static json_t *J(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j) fprintf(stderr, "bad test json: %s (%s)\n", e.text, text);
    assert_non_null(j);
    return j;
}

/* Converts payload with converter cfg and returns the dump ("ERR: msg" on error). */
static char *run(const char *cfg, const char *topic, const char *payload) {
    json_t *c = J(cfg), *p = J(payload);
    tbgw_json_conv *conv = NULL;
    tbgw_err err = {0};
    int rc = tbgw_json_conv_new(c, NULL, "converter", &conv, &err);
    if (rc) fprintf(stderr, "config error: %s\n", err.msg);
    assert_int_equal(rc, 0);
    tbgw_converted *out = NULL;
    rc = tbgw_json_conv_convert(conv, topic, p, RECV, &out, &err);
    char *d;
    if (rc < 0) {
        d = malloc(600);
        snprintf(d, 600, "ERR: %s", err.msg);
    } else {
        d = conv_dump(out);
    }
    tbgw_converted_free(out);
    tbgw_json_conv_free(conv);
    json_decref(c);
    json_decref(p);
    return d;
}

static void expect(const char *cfg, const char *topic, const char *payload, const char *want) {
    char *got = run(cfg, topic, payload);
    assert_string_equal(got, want);
    free(got);
}

#define DI_CONST                                                                                             \
    "\"deviceInfo\":{\"deviceNameExpressionSource\":\"constant\",\"deviceNameExpression\":\"Dev\"}"

static void test_reference_topic_regex_name_and_type(void **st) {
    (void)st;
    const char *cfg = "{\"type\":\"json\",\"deviceInfo\":{\"deviceNameExpressionSource\":\"topic\","
                      "\"deviceNameExpression\":\"(.*?)(?=/.*)\",\"deviceProfileExpressionSource\":\"topic\","
                      "\"deviceProfileExpression\":\"(?<=TestDevice/)(.*)\"},"
                      "\"timeseries\":[{\"type\":\"double\",\"key\":\"temp\",\"value\":\"${temp}\"}]}";
    expect(cfg, "TestDevice/TestDeviceType", "{\"temp\":1.5}",
           "TestDevice/TestDeviceType a{} t{1000:temp=1.5}");
}

static void test_reference_name_from_message(void **st) {
    (void)st;
    const char *cfg =
        "{\"deviceInfo\":{\"deviceNameExpressionSource\":\"message\",\"deviceNameExpression\":"
        "\"${DeviceName}\",\"deviceProfileExpressionSource\":\"message\",\"deviceProfileExpression\":"
        "\"${DeviceType}\"},\"attributes\":[{\"type\":\"string\",\"key\":\"model\",\"value\":\"${m}\"}]}";
    expect(cfg, "t", "{\"DeviceName\":\"D1\",\"DeviceType\":\"T1\",\"m\":\"X\"}", "D1/T1 a{model=\"X\"} t{}");
    /* missing name placeholder keeps the literal expression (reference) */
    expect(cfg, "t", "{\"m\":\"X\"}", "${DeviceName}/${DeviceType} a{model=\"X\"} t{}");
}

static void test_reference_wildcards(void **st) {
    (void)st;
    const char *cfg = "{" DI_CONST ",\"attributes\":\"*\",\"timeseries\":\"*\"}";
    expect(cfg, "t", "{\"a\":1,\"b\":\"x\",\"c\":{\"d\":true}}",
           "Dev/default a{a=1,b=\"x\",c={\"d\":true}} t{1000:a=1,1000:b=\"x\",1000:c={\"d\":true}}");
    const char *cfg2 = "{" DI_CONST ",\"attributes\":[\"*\"],\"timeseries\":[]}";
    expect(cfg2, "t", "{\"a\":2}", "Dev/default a{a=2} t{}");
}

static void test_reference_list_payload(void **st) {
    (void)st;
    const char *cfg = "{\"deviceInfo\":{\"deviceNameExpression\":\"${name}\"},"
                      "\"timeseries\":[{\"type\":\"int\",\"key\":\"v\",\"value\":\"${v}\"}]}";
    expect(cfg, "t", "[{\"name\":\"A\",\"v\":1},{\"name\":\"B\",\"v\":2},{\"name\":\"A\",\"v\":3}]",
           "A/default a{} t{1000:v=1,1000:v=3} | B/default a{} t{1000:v=2}");
}

static void test_reference_key_with_space_and_int_cast(void **st) {
    (void)st;
    const char *cfg =
        "{\"deviceInfo\":{\"deviceNameExpressionSource\":\"message\",\"deviceNameExpression\":"
        "\"${device name}\"},\"timeseries\":[{\"type\":\"int\",\"key\":\"count\",\"value\":\"${count}\"},"
        "{\"type\":\"integer\",\"key\":\"n\",\"value\":\"${n}\"}]}";
    expect(cfg, "t", "{\"device name\":\"Space Dev\",\"count\":\"5.0\",\"n\":7.9}",
           "Space Dev/default a{} t{1000:count=5,1000:n=7}");
}

static void test_reference_mqtt_json_mappings(void **st) {
    (void)st;
    /* mapping[0] and mapping[1] of tests/data/reference/mqtt.json */
    const char *m0 =
        "{\"type\":\"json\",\"deviceInfo\":{\"deviceNameExpressionSource\":\"constant\","
        "\"deviceNameExpression\":\"Demo Device\",\"deviceProfileExpressionSource\":\"constant\","
        "\"deviceProfileExpression\":\"default\"},\"sendDataOnlyOnChange\":false,\"timeout\":60000,"
        "\"attributes\":[{\"type\":\"double\",\"key\":\"power\",\"value\":\"${power}\"},"
        "{\"type\":\"integer\",\"key\":\"frequency\",\"value\":\"${frequency}\"}],"
        "\"timeseries\":[{\"type\":\"double\",\"key\":\"temperature\",\"value\":\"${temperature}\"},"
        "{\"type\":\"double\",\"key\":\"humidity\",\"value\":\"${humidity}\"},"
        "{\"type\":\"boolean\",\"key\":\"relay\",\"value\":\"${relay}\"}]}";
    expect(m0, "data/",
           "{\"power\":1200,\"frequency\":\"50\",\"temperature\":21.5,\"humidity\":60,\"relay\":\"on\"}",
           "Demo Device/default a{power=1200.0,frequency=50} "
           "t{1000:temperature=21.5,1000:humidity=60.0,1000:relay=true}");
    /* missing keys are skipped */
    expect(m0, "data/", "{\"temperature\":20}", "Demo Device/default a{} t{1000:temperature=20.0}");
    /* nothing matched: no record */
    expect(m0, "data/", "{\"other\":1}", "");
    const char *m1 =
        "{\"type\":\"json\",\"deviceInfo\":{\"deviceNameExpressionSource\":\"topic\","
        "\"deviceNameExpression\":\"(?<=sensor/)(.*?)(?=/data)\",\"deviceProfileExpressionSource\":"
        "\"constant\",\"deviceProfileExpression\":\"Thermometer\"},\"attributes\":[{\"type\":\"string\","
        "\"key\":\"model\",\"value\":\"${sensorModel}\"}],\"timeseries\":[{\"type\":\"double\",\"key\":"
        "\"temperature\",\"value\":\"${temp}\"},{\"type\":\"string\",\"key\":\"humidity\",\"value\":"
        "\"${hum}\"}]}";
    expect(m1, "sensor/SN-001/data", "{\"sensorModel\":\"T1000\",\"temp\":\"23.5\",\"hum\":41}",
           "SN-001/Thermometer a{model=\"T1000\"} t{1000:temperature=23.5,1000:humidity=\"41\"}");
    /* regex without a match: the literal expression is the name (reference) */
    expect(m1, "other", "{\"temp\":1}", "(?<=sensor/)(.*?)(?=/data)/Thermometer a{} t{1000:temperature=1.0}");
}

static void test_timestamps(void **st) {
    (void)st;
    const char *cfg = "{" DI_CONST ",\"timeseries\":[{\"type\":\"int\",\"key\":\"v\",\"value\":\"${v}\"}]}";
    expect(cfg, "t", "{\"v\":1,\"ts\":1700000000123}", "Dev/default a{} t{1700000000123:v=1}");
    expect(cfg, "t", "{\"v\":1,\"timestamp\":1700000000999}", "Dev/default a{} t{1700000000999:v=1}");
    expect(cfg, "t", "{\"v\":1,\"ts\":\"1700000000124\"}", "Dev/default a{} t{1700000000124:v=1}");
    expect(cfg, "t", "{\"v\":1,\"ts\":\"2023-11-14T22:13:20.5Z\"}", "Dev/default a{} t{1700000000500:v=1}");
    expect(cfg, "t", "{\"v\":1,\"ts\":\"garbage\"}", "Dev/default a{} t{1000:v=1}");
    const char *recv = "{" DI_CONST ",\"useReceivedTs\":true,\"timeseries\":[{\"type\":\"int\",\"key\":\"v\","
                       "\"value\":\"${v}\",\"tsField\":\"${t}\"}]}";
    expect(recv, "t", "{\"v\":1,\"ts\":5,\"t\":6}", "Dev/default a{} t{1000:v=1}");
    const char *tsf = "{" DI_CONST ",\"timeseries\":[{\"type\":\"int\",\"key\":\"v\",\"value\":\"${v}\","
                      "\"tsField\":\"${meta.time}\"},{\"type\":\"int\",\"key\":\"w\",\"value\":\"${v}\","
                      "\"tsField\":\"${x.when}\"},{\"type\":\"int\",\"key\":\"u\",\"value\":\"${v}\","
                      "\"tsField\":\"${d}\",\"dayfirst\":true}]}";
    expect(tsf, "t",
           "{\"v\":1,\"ts\":77,\"meta\":{\"time\":1700000000001},\"deep\":{\"when\":1700000000002},"
           "\"d\":\"14/11/2023 22:13:20Z\"}",
           "Dev/default a{} t{1700000000001:v=1,1700000000002:w=1,1700000000000:u=1}");
}

static void test_key_templates_and_topic_keys(void **st) {
    (void)st;
    const char *cfg =
        "{" DI_CONST ",\"timeseries\":[{\"type\":\"double\",\"key\":\"${name}_t\",\"value\":"
        "\"${val}\"},{\"type\":\"string\",\"key\":\"(?<=k/)[a-z]+\",\"keySource\":\"topic\","
        "\"value\":\"${val}\"},{\"type\":\"string\",\"key\":\"lbl\",\"value\":\"${name}: ${val} C\"}]}";
    expect(cfg, "k/abc", "{\"name\":\"room\",\"val\":3}",
           "Dev/default a{} t{1000:room_t=3.0,1000:abc=\"3\",1000:lbl=\"room: 3 C\"}");
    /* missing key placeholder drops that datapoint; partially missing template drops it too */
    expect(cfg, "k/abc", "{\"val\":3}", "Dev/default a{} t{1000:abc=\"3\"}");
}

static void test_report_strategies(void **st) {
    (void)st;
    json_t *c =
        J("{" DI_CONST ",\"sendDataOnlyOnChange\":true,\"timeseries\":[{\"type\":\"int\",\"key\":\"v\","
          "\"value\":\"${v}\",\"reportStrategy\":{\"type\":\"ON_REPORT_PERIOD\",\"reportPeriod\":500}},"
          "{\"type\":\"int\",\"key\":\"w\",\"value\":\"${v}\"}]}");
    tbgw_json_conv *conv;
    tbgw_err err = {0};
    assert_int_equal(tbgw_json_conv_new(c, NULL, "converter", &conv, &err), 0);
    json_t *p = J("{\"v\":1}");
    tbgw_converted *out = NULL;
    assert_int_equal(tbgw_json_conv_convert(conv, "t", p, RECV, &out, &err), 1);
    assert_non_null(out->rs);
    assert_int_equal(out->rs->type, TBGW_RS_ON_CHANGE);
    assert_non_null(out->telemetry[0].rs);
    assert_int_equal(out->telemetry[0].rs->type, TBGW_RS_ON_REPORT_PERIOD);
    assert_int_equal(out->telemetry[0].rs->period_ms, 500);
    assert_null(out->telemetry[1].rs);
    tbgw_converted_free(out);
    tbgw_json_conv_free(conv);
    json_decref(c);
    /* mapping-entry level strategy */
    json_t *entry =
        J("{\"reportStrategy\":{\"type\":\"on_change\"},\"converter\":{" DI_CONST ",\"attributes\":\"*\"}}");
    assert_int_equal(
        tbgw_json_conv_new(json_object_get(entry, "converter"), entry, "mapping[0].converter", &conv, &err),
        0);
    out = NULL;
    assert_int_equal(tbgw_json_conv_convert(conv, "t", p, RECV, &out, &err), 1);
    assert_non_null(out->rs);
    assert_int_equal(out->rs->type, TBGW_RS_ON_CHANGE);
    assert_null(out->attributes[0].rs);
    tbgw_converted_free(out);
    tbgw_json_conv_free(conv);
    json_decref(entry);
    json_decref(p);
}

static void test_bad_payloads(void **st) {
    (void)st;
    const char *cfg = "{" DI_CONST ",\"timeseries\":\"*\"}";
    expect(cfg, "t", "42", "ERR: payload: expected a JSON object or a list of objects");
    expect(cfg, "t", "\"str\"", "ERR: payload: expected a JSON object or a list of objects");
    /* bad list elements are skipped, good ones kept */
    expect(cfg, "t", "[1,{\"a\":1}]", "Dev/default a{} t{1000:a=1}");
    expect(cfg, "t", "[1,2]", "ERR: payload[0]: expected a JSON object");
    const char *empty = "{\"deviceInfo\":{\"deviceNameExpression\":\"${n}\"},\"timeseries\":\"*\"}";
    expect(empty, "t", "{\"n\":\"\",\"a\":1}", "ERR: device name is empty (topic t)");
}

/* Non-fatal diagnostics: nothing found at all, or a value of the wrong type (still sent as text). */
static void test_diagnostics(void **st) {
    (void)st;
    json_t *c = J("{" DI_CONST ",\"timeseries\":[{\"type\":\"double\",\"key\":\"t\",\"value\":\"${t}\"},"
                  "{\"type\":\"int\",\"key\":\"n\",\"value\":\"${n}\"}]}");
    tbgw_json_conv *conv;
    tbgw_err err = {0};
    assert_int_equal(tbgw_json_conv_new(c, NULL, "converter", &conv, &err), 0);
    const char *payloads[] = {"{\"x\":1}", "{\"t\":\"warm\",\"n\":2}", "{\"t\":1.5}", "{\"n\":\"x\"}"};
    const int want_rc[] = {0, 1, 1, 1};
    const char *want_err[] = {"no configured key found in the payload (e.g. ${t})",
                              "t: \"warm\" is not a number (sent as text)", "",
                              "n: \"x\" is not an integer (sent as text)"};
    for (size_t i = 0; i < 4; i++) {
        json_t *p = J(payloads[i]);
        tbgw_converted *out = NULL;
        memset(&err, 0, sizeof err);
        assert_int_equal(tbgw_json_conv_convert(conv, "t", p, RECV, &out, &err), want_rc[i]);
        assert_string_equal(err.msg, want_err[i]);
        tbgw_converted_free(out);
        json_decref(p);
    }
    tbgw_json_conv_free(conv);
    json_decref(c);
}

static void config_error(const char *cfg, const char *want) {
    json_t *c = J(cfg);
    tbgw_json_conv *conv = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_json_conv_new(c, NULL, "mapping[0].converter", &conv, &err), TBGW_EINVAL);
    assert_null(conv);
    assert_string_equal(err.msg, want);
    json_decref(c);
}

static void test_config_errors(void **st) {
    (void)st;
    config_error("{}", "mapping[0].converter.deviceInfo: missing");
    config_error("{\"deviceInfo\":{}}", "mapping[0].converter.deviceInfo.deviceNameExpression: missing");
    config_error("{\"deviceInfo\":{\"deviceNameExpressionSource\":\"x\",\"deviceNameExpression\":\"a\"}}",
                 "mapping[0].converter.deviceInfo.deviceNameExpressionSource: expected one of message, "
                 "topic, constant");
    config_error(
        "{\"deviceInfo\":{\"deviceNameExpressionSource\":\"topic\",\"deviceNameExpression\":\"(\"}}",
        "mapping[0].converter.deviceInfo.deviceNameExpression: invalid regular expression \"(\": missing "
        "closing parenthesis at offset 1");
    config_error("{" DI_CONST ",\"timeseries\":[{\"key\":\"a\"}]}",
                 "mapping[0].converter.timeseries[0].value: missing");
    config_error("{" DI_CONST ",\"attributes\":5}",
                 "mapping[0].converter.attributes: expected a list or \"*\"");
    config_error(
        "{" DI_CONST
        ",\"timeseries\":[{\"key\":\"a\",\"value\":\"${a\",\"reportStrategy\":{\"type\":\"x\"}}]}",
        "mapping[0].converter.timeseries[0].reportStrategy.type: expected one of ON_RECEIVED, ON_CHANGE, "
        "ON_REPORT_PERIOD, ON_CHANGE_OR_REPORT_PERIOD, DISABLED");
    config_error(
        "{" DI_CONST ",\"timeseries\":[{\"key\":\"a\",\"value\":\"${a[z]}\"}]}",
        "mapping[0].converter.timeseries[0].value: bad index in path \"a[z]\": expected a number or *");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_topic_regex_name_and_type),
        cmocka_unit_test(test_reference_name_from_message),
        cmocka_unit_test(test_reference_wildcards),
        cmocka_unit_test(test_reference_list_payload),
        cmocka_unit_test(test_reference_key_with_space_and_int_cast),
        cmocka_unit_test(test_reference_mqtt_json_mappings),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_key_templates_and_topic_keys),
        cmocka_unit_test(test_report_strategies),
        cmocka_unit_test(test_bad_payloads),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
