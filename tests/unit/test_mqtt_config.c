/* MQTT connector configuration: the reference mqtt.json unchanged, old-format adaptation, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/mqtt/mqtt_internal.h"

extern const tbgw_connector_ops tbgw_connector_mqtt;

static tbgw_host host;
static char last_warning[600];
static int n_warnings;

static void on_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    snprintf(last_warning, sizeof last_warning, "%s: %s", dotted ? dotted : "", msg);
    n_warnings++;
}

static int setup(void **st) {
    (void)st;
    host.config_warning = on_warning;
    host.abi = TBGW_CONNECTOR_ABI;
    host.name = "MQTT";
    host.type = "mqtt";
    host.config_dir = "/nonexistent";
    host.log = tbgw_logger_get("connector.MQTT");
    host.conv_log = tbgw_logger_get("converter.MQTT");
    return 0;
}

static json_t *load_reference(void) {
    char p[1024];
    const char *sd = getenv("TBGW_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests/data/reference/mqtt.json", sd ? sd : "..");
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_reference_config_as_is(void **st) {
    (void)st;
    json_t *j = load_reference();
    mq_config cfg;
    tbgw_err err = {0};
    int rc = mq_config_parse(&cfg, j, &host, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 1883);
    assert_string_equal(cfg.client_id, "ThingsBoard_gateway");
    assert_int_equal(cfg.version, 5);
    assert_int_equal(cfg.n_maps, 4);
    assert_int_equal(cfg.maps[2].kind, MQ_CONV_BYTES);
    assert_int_equal(cfg.maps[3].kind, MQ_CONV_CUSTOM);
    /* the example plugin in build/plugins provides CustomMqttUplinkConverter */
    assert_false(cfg.maps[3].disabled);
    assert_int_equal(cfg.n_connects, 2);
    assert_int_equal(cfg.n_disconnects, 2);
    assert_int_equal(cfg.n_attr_reqs, 1);
    assert_int_equal(cfg.n_attr_upds, 1);
    assert_int_equal(cfg.n_rpcs, 2);
    assert_non_null(cfg.rpcs[0].resp_topic);
    assert_int_equal(cfg.rpcs[0].timeout_ms, 10000);
    assert_null(cfg.rpcs[1].resp_topic);
    mq_config_free(&cfg);
    /* through the connector table too */
    void *self = NULL;
    assert_int_equal(tbgw_connector_mqtt.create(&host, j, &self, &err), 0);
    tbgw_connector_mqtt.destroy(self);
    json_decref(j);
}

static void test_old_format(void **st) {
    (void)st;
    json_t *j = json_loads(
        "{\"broker\":{\"host\":\"h\",\"version\":\"3.1.1\",\"security\":{\"username\":\"u\",\"password\":"
        "\"p\"}},"
        "\"dataMapping\":[{\"topicFilter\":\"a/"
        "+\",\"converter\":{\"type\":\"json\",\"deviceNameTopicExpression\":"
        "\"(?<=a/).*\",\"deviceTypeJsonExpression\":\"${t}\",\"timeseries\":[{\"type\":\"int\",\"key\":\"k\","
        "\"value\":\"${k}\"}]}}],\"connectRequests\":[{\"topicFilter\":\"c\",\"deviceNameJsonExpression\":\"$"
        "{n}\"}],"
        "\"attributeRequests\":[{\"topicFilter\":\"r\",\"deviceNameJsonExpression\":\"${n}\","
        "\"attributeNameJsonExpression\":\"${a}\",\"topicExpression\":\"t\",\"valueExpression\":\"v\"}]}",
        0, NULL);
    assert_non_null(j);
    json_t *a = mq_config_adapt(j);
    json_t *di = json_object_get(
        json_object_get(json_array_get(json_object_get(a, "mapping"), 0), "converter"), "deviceInfo");
    assert_string_equal(json_string_value(json_object_get(di, "deviceNameExpressionSource")), "topic");
    assert_string_equal(json_string_value(json_object_get(di, "deviceProfileExpression")), "${t}");
    json_t *ar =
        json_array_get(json_object_get(json_object_get(a, "requestsMapping"), "attributeRequests"), 0);
    assert_string_equal(json_string_value(json_object_get(ar, "attributeNameExpressionSource")), "message");
    json_decref(a);
    mq_config cfg;
    tbgw_err err = {0};
    assert_int_equal(mq_config_parse(&cfg, j, &host, &err), 0);
    assert_int_equal(cfg.version, 4);
    assert_string_equal(cfg.username, "u");
    assert_int_equal(cfg.n_maps, 1);
    assert_int_equal(cfg.n_connects, 1);
    assert_int_equal(cfg.n_attr_reqs, 1);
    assert_int_equal(strlen(cfg.client_id), 23);
    mq_config_free(&cfg);
    json_decref(j);
}

static json_t *load_data(const char *name) {
    char p[1024];
    const char *sd = getenv("TBGW_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests/data/reference/mqtt_old_format/%s", sd ? sd : "..", name);
    json_t *j = json_load_file(p, 0, NULL);
    assert_non_null(j);
    return j;
}

/* The reference's own old->new pairs: the adapted old config carries the new config's deviceInfo,
 * extensionConfig and request fields, and both parse to the same model. */
static void test_reference_old_new_pairs(void **st) {
    (void)st;
    json_t *old = load_data("mapping_old.json"), *nw = load_data("mapping_new.json");
    json_t *a = mq_config_adapt(old);
    json_t *am = json_object_get(a, "mapping"), *nm = json_object_get(nw, "mapping");
    assert_int_equal(json_array_size(am), json_array_size(nm));
    for (size_t i = 0; i < json_array_size(nm); i++) {
        json_t *ac = json_object_get(json_array_get(am, i), "converter");
        json_t *nc = json_object_get(json_array_get(nm, i), "converter");
        if (json_object_get(nc, "deviceInfo"))
            assert_true(json_equal(json_object_get(ac, "deviceInfo"), json_object_get(nc, "deviceInfo")));
        else
            assert_null(json_object_get(ac, "deviceInfo"));
        if (json_object_get(nc, "extensionConfig"))
            assert_true(
                json_equal(json_object_get(ac, "extensionConfig"), json_object_get(nc, "extensionConfig")));
    }
    mq_config c1, c2;
    tbgw_err err = {0};
    assert_int_equal(mq_config_parse(&c1, old, &host, &err), 0);
    assert_int_equal(mq_config_parse(&c2, nw, &host, &err), 0); /* "{}" request sections are empty lists */
    assert_int_equal(c1.n_maps, 4);
    assert_int_equal(c2.n_maps, 4);
    assert_int_equal(c1.maps[2].kind, MQ_CONV_BYTES);
    assert_int_equal(c2.n_connects + c2.n_attr_reqs + c2.n_rpcs, 0);
    mq_config_free(&c1);
    mq_config_free(&c2);
    json_decref(a);
    json_decref(old);
    json_decref(nw);

    old = load_data("attribute_requests_old.json");
    nw = load_data("attribute_requests_new.json");
    a = mq_config_adapt(old);
    json_t *ar =
        json_array_get(json_object_get(json_object_get(a, "requestsMapping"), "attributeRequests"), 0);
    json_t *nr =
        json_array_get(json_object_get(json_object_get(nw, "requestsMapping"), "attributeRequests"), 0);
    const char *keys[] = {"deviceInfo",
                          "attributeNameExpressionSource",
                          "attributeNameExpression",
                          "topicExpression",
                          "valueExpression",
                          "topicFilter",
                          "retain"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_true(json_equal(json_object_get(ar, keys[i]), json_object_get(nr, keys[i])));
    assert_int_equal(mq_config_parse(&c1, old, &host, &err), 0);
    assert_int_equal(mq_config_parse(&c2, nw, &host, &err), 0);
    assert_int_equal(c1.n_attr_reqs, 1);
    assert_int_equal(c2.n_attr_reqs, 1);
    assert_int_equal(tbgw_expr_placeholders(c1.attr_reqs[0].name_expr), 2);
    mq_config_free(&c1);
    mq_config_free(&c2);
    json_decref(a);
    json_decref(old);
    json_decref(nw);
}

static void bad(const char *text, const char *want) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    mq_config cfg;
    tbgw_err err = {0};
    assert_int_not_equal(mq_config_parse(&cfg, j, &host, &err), 0);
    assert_string_equal(err.msg, want);
    json_decref(j);
}

/* One per-key entry that cannot be used: reported (path and reason) and skipped, the rest parses. */
static void skipped(const char *text, const char *want) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    mq_config cfg;
    tbgw_err err = {0};
    n_warnings = 0;
    last_warning[0] = 0;
    assert_int_equal(mq_config_parse(&cfg, j, &host, &err), 0);
    assert_int_equal(n_warnings, 1);
    assert_string_equal(last_warning, want);
    assert_int_equal(cfg.n_maps + cfg.n_connects + cfg.n_attr_upds + cfg.n_rpcs, 1); /* the good one */
    mq_config_free(&cfg);
    json_decref(j);
}

static void test_errors(void **st) {
    (void)st;
    bad("{}", "broker: expected an object");
    bad("{\"broker\":{}}", "broker.host: missing");
    bad("{\"broker\":{\"host\":\"h\",\"port\":70000}}", "broker.port: 70000 is out of range 1..65535");
    bad("{\"broker\":{\"host\":\"h\",\"security\":{\"type\":\"kerberos\"}}}",
        "broker.security.type: expected one of anonymous, basic, certificates");
    skipped("{\"broker\":{\"host\":\"h\"},\"mapping\":[{\"topicFilter\":\"ok\",\"converter\":{\"type\":"
            "\"json\",\"deviceInfo\":{\"deviceNameExpression\":\"d\",\"deviceNameExpressionSource\":"
            "\"constant\"},\"timeseries\":[]}},{\"topicFilter\":\"t\",\"converter\":{\"type\":\"xml\"}}]}",
            "mapping[1].converter.type: expected one of json, bytes, custom");
    skipped("{\"broker\":{\"host\":\"h\"},\"mapping\":[{\"topicFilter\":\"ok\",\"converter\":{\"type\":"
            "\"json\",\"deviceInfo\":{\"deviceNameExpression\":\"d\",\"deviceNameExpressionSource\":"
            "\"constant\"},\"timeseries\":[]}},{\"converter\":{}}]}",
            "mapping[1].topicFilter: missing");
    skipped(
        "{\"broker\":{\"host\":\"h\"},\"mapping\":[{\"topicFilter\":\"t\",\"subscriptionQos\":3,"
        "\"converter\":{}},{\"topicFilter\":\"ok\",\"converter\":{\"type\":\"json\",\"deviceInfo\":{"
        "\"deviceNameExpression\":\"d\",\"deviceNameExpressionSource\":\"constant\"},\"timeseries\":[]}}]}",
        "mapping[0].subscriptionQos: 3 is out of range 0..2");
    skipped("{\"broker\":{\"host\":\"h\"},\"requestsMapping\":{\"serverSideRpc\":[{\"deviceNameFilter\":\"("
            "\"},{\"deviceNameFilter\":\".*\",\"methodFilter\":\"m\",\"requestTopicExpression\":\"t\","
            "\"valueExpression\":\"v\"}]}}",
            "requestsMapping.serverSideRpc[0].deviceNameFilter: invalid regular expression \"(\": missing "
            "closing parenthesis at offset 1");
    skipped("{\"broker\":{\"host\":\"h\"},\"requestsMapping\":{\"attributeUpdates\":[{\"deviceNameFilter\":"
            "\".*\",\"attributeFilter\":\".*\",\"topicExpression\":\"t\"},{\"deviceNameFilter\":\".*\","
            "\"attributeFilter\":\"x\",\"topicExpression\":\"t\",\"valueExpression\":\"v\"}]}}",
            "requestsMapping.attributeUpdates[0].valueExpression: missing");
    skipped("{\"broker\":{\"host\":\"h\"},\"requestsMapping\":{\"attributeUpdates\":[{\"deviceNameFilter\":"
            "\".*\",\"attributeFilter\":\"x\",\"topicExpression\":\"t\",\"valueExpression\":\"v\"},{"
            "\"deviceNameFilter\":\".*\",\"attributeFilter\":\"\",\"topicExpression\":\"t\","
            "\"valueExpression\":\"v\"}]}}",
            "requestsMapping.attributeUpdates[1].attributeFilter: empty; a rule needs a regular expression "
            "naming the attributes it forwards (\".*\" for all)");
    skipped("{\"broker\":{\"host\":\"h\"},\"requestsMapping\":{\"connectRequests\":[{\"topicFilter\":\"c\"},{"
            "\"topicFilter\":\"c\",\"deviceInfo\":{\"deviceNameExpression\":\"d\","
            "\"deviceNameExpressionSource\":\"constant\"}}]}}",
            "requestsMapping.connectRequests[0].deviceInfo: missing");
    /* one key of a converter: the mapping stays, the key is skipped */
    skipped("{\"broker\":{\"host\":\"h\"},\"mapping\":[{\"topicFilter\":\"t\",\"converter\":{\"type\":"
            "\"json\",\"deviceInfo\":{\"deviceNameExpression\":\"d\",\"deviceNameExpressionSource\":"
            "\"constant\"},\"timeseries\":[{\"key\":\"a\",\"value\":\"${a}\"},{\"key\":\"b\"}]}}]}",
            "mapping[0].converter.timeseries[1].value: missing");
    bad("{\"broker\":{\"host\":\"h\"},\"requestsMapping\":{\"connectRequests\":{\"a\":1}}}",
        "requestsMapping.connectRequests: expected a list, got an object");
}

static void test_missing_plugin_disables_mapping(void **st) {
    (void)st;
    json_t *j =
        json_loads("{\"broker\":{\"host\":\"h\"},\"mapping\":[{\"topicFilter\":\"t\",\"converter\":{\"type\":"
                   "\"custom\",\"extension\":\"NoSuchConverter\"}}]}",
                   0, NULL);
    mq_config cfg;
    tbgw_err err = {0};
    assert_int_equal(mq_config_parse(&cfg, j, &host, &err), 0);
    assert_true(cfg.maps[0].disabled);
    mq_config_free(&cfg);
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_config_as_is),          cmocka_unit_test(test_old_format),
        cmocka_unit_test(test_reference_old_new_pairs),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_plugin_disables_mapping),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
