/* KNX connector configuration: the reference example (its misspelt DPT entry located and skipped),
 * errors naming the field, names from group addresses, Python-style reprs of RPC replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/connector.h>

#include "connectors/knx/knx_conn.h"

extern const tbgw_connector_ops tbgw_connector_knx;

static char located[8][128];
static int n_located;

static void warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h, (void)msg;
    if (n_located < 8) snprintf(located[n_located++], sizeof located[0], "%s", dotted);
}

static tbgw_host host_new(void) {
    tbgw_host h = {0};
    h.abi = TBGW_CONNECTOR_ABI;
    h.name = "KNX";
    h.log = tbgw_logger_get("test.knx");
    h.conv_log = h.log;
    h.config_warning = warning;
    return h;
}

static json_t *load_ref(void) {
    char path[512];
    const char *src = getenv("TBGW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/reference/knx.json", src ? src : "..");
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_reference_example(void **st) {
    (void)st;
    tbgw_host h = host_new();
    json_t *cfg = load_ref();
    void *self = NULL;
    tbgw_err err = {0};
    n_located = 0;
    assert_int_equal(tbgw_connector_knx.create(&h, cfg, &self, &err), 0);
    kx *k = self;
    assert_int_equal(k->ccfg.mode, KNX_MODE_TUNNEL);
    assert_int_equal(k->ccfg.gw_ip, 0xC0A801A0); /* gatewayIP 192.168.1.160 */
    assert_int_equal(k->ccfg.gw_port, 3671);
    assert_int_equal(k->ccfg.local_port, 3671);
    assert_int_equal(k->ccfg.individual, 0x100A);
    assert_int_equal(k->ccfg.reconnect_base_ms, 3000);
    assert_int_equal(k->n_devices, 1);
    kx_device *d = &k->devices[0];
    assert_int_equal(d->poll_ms, 5000);
    assert_int_equal(d->n_points, 2);
    assert_string_equal(d->points[0].key, "temperature");
    assert_true(d->points[0].is_attr);
    assert_int_equal(d->points[1].ga, 0x0807);
    assert_int_equal(d->n_gas, 3);
    assert_int_equal(d->gas[0], 0x0805); /* the name's address first */
    assert_true(d->name.is_expr);
    assert_string_equal(d->type.text, "default");
    assert_int_equal(k->n_attr_updates, 0); /* precent_U8: skipped */
    assert_int_equal(n_located, 1);
    assert_string_equal(located[0], "attributeUpdates[0].dataType");
    assert_int_equal(k->n_rpcs, 2);
    assert_false(k->rpcs[0].is_write);
    assert_true(k->rpcs[1].is_write);
    assert_int_equal(k->n_gas, 3);
    tbgw_connector_knx.destroy(self);
    json_decref(cfg);
}

static void create_fails(const char *text, const char *msg) {
    tbgw_host h = host_new();
    json_error_t je;
    json_t *cfg = json_loads(text, 0, &je);
    assert_non_null(cfg);
    void *self = NULL;
    tbgw_err err = {0};
    assert_true(tbgw_connector_knx.create(&h, cfg, &self, &err) < 0);
    if (!strstr(err.msg, msg)) fail_msg("\"%s\" lacks \"%s\"", err.msg, msg);
    json_decref(cfg);
}

static void test_errors_and_skips(void **st) {
    (void)st;
    create_fails("{\"client\":{\"type\":\"ROUTING_SECURE\"}}", "client.type: KNX IP Secure");
    create_fails("{\"client\":{\"gatewayIp\":\"999.1.1.1\"}}", "client.gatewayIp: expected an IPv4 address");
    create_fails("{\"client\":{\"gatewayPort\":70000}}", "client.gatewayPort");
    create_fails("{\"client\":{\"individualAddress\":\"1/0/1\"}}", "client.individualAddress");
    create_fails("{\"client\":{\"type\":\"ROUTING\",\"multicastGroup\":\"10.0.0.1\"}}",
                 "client.multicastGroup");
    { /* a bad device is reported and skipped, the others stay */
        tbgw_host h0 = host_new();
        json_t *c0 = json_loads(
            "{\"devices\":[{\"deviceInfo\":{\"deviceNameExpressionSource\":\"expression\","
            "\"deviceNameExpression\":\"D ${temp}\"}},{\"deviceInfo\":{},\"pollPeriod\":\"often\"},"
            "{\"deviceInfo\":{\"deviceNameExpression\":\"ok\"}},{}]}",
            0, NULL);
        void *s0 = NULL;
        tbgw_err e0 = {0};
        n_located = 0;
        assert_int_equal(tbgw_connector_knx.create(&h0, c0, &s0, &e0), 0);
        assert_int_equal(((kx *)s0)->n_devices, 1);
        assert_string_equal(((kx *)s0)->devices[0].name.text, "ok");
        assert_int_equal(n_located, 3);
        assert_string_equal(located[0], "devices[0].deviceInfo.deviceNameExpression");
        assert_string_equal(located[1], "devices[1].pollPeriod");
        assert_string_equal(located[2], "devices[3].deviceInfo");
        tbgw_connector_knx.destroy(s0);
        json_decref(c0);
    }
    /* an unknown connection type or address format: reported, the reference's default used */
    {
        tbgw_host h0 = host_new();
        json_t *c0 = json_loads("{\"client\":{\"type\":\"TUNNEL\",\"addressFormat\":\"x\"}}", 0, NULL);
        void *s0 = NULL;
        tbgw_err e0 = {0};
        n_located = 0;
        assert_int_equal(tbgw_connector_knx.create(&h0, c0, &s0, &e0), 0);
        assert_int_equal(((kx *)s0)->ccfg.mode, KNX_MODE_TUNNEL);
        assert_int_equal(n_located, 2);
        assert_string_equal(located[0], "client.type");
        assert_string_equal(located[1], "client.addressFormat");
        tbgw_connector_knx.destroy(s0);
        json_decref(c0);
    }
    /* per-entry problems: reported and skipped */
    tbgw_host h = host_new();
    json_t *cfg = json_loads(
        "{\"devices\":[{\"deviceInfo\":{\"deviceNameExpression\":\"D\"},\"timeseries\":["
        "{\"key\":\"a\",\"groupAddress\":\"32/0/0\",\"type\":\"temperature\"},"
        "{\"key\":\"b\",\"groupAddress\":\"1/0/1\",\"type\":\"temprature\"},"
        "{\"key\":\"c\",\"groupAddress\":\"1/0/2\"},"
        "{\"key\":\"d\",\"groupAddress\":\"1/3\",\"type\":\"9.001\"}]}],"
        "\"serverSideRpc\":[{\"method\":\"m\",\"deviceNameFilter\":\"(\",\"groupAddress\":\"1/0/1\","
        "\"dataType\":\"switch\"}]}",
        0, NULL);
    void *self = NULL;
    tbgw_err err = {0};
    n_located = 0;
    assert_int_equal(tbgw_connector_knx.create(&h, cfg, &self, &err), 0);
    kx *k = self;
    assert_int_equal(k->devices[0].n_points, 1);
    assert_string_equal(k->devices[0].points[0].key, "d");
    assert_int_equal(k->devices[0].points[0].ga, 0x0803);
    assert_int_equal(k->n_rpcs, 0);
    assert_int_equal(n_located, 4);
    assert_string_equal(located[0], "devices[0].timeseries[0].groupAddress");
    assert_string_equal(located[1], "devices[0].timeseries[1].type");
    assert_string_equal(located[2], "devices[0].timeseries[2].type");
    assert_string_equal(located[3], "serverSideRpc[0].deviceNameFilter");
    tbgw_connector_knx.destroy(self);
    json_decref(cfg);
}

static void test_reprs(void **st) {
    (void)st;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_value v = tbgw_value_string("it's");
    kx_value_repr(&v, &b);
    assert_string_equal(tbgw_buf_cstr(&b), "\"it's\"");
    tbgw_buf_reset(&b);
    v = tbgw_value_string("a\\b'\"\n");
    kx_value_repr(&v, &b);
    assert_string_equal(tbgw_buf_cstr(&b), "'a\\\\b\\'\"\\n'");
    tbgw_buf_reset(&b);
    v = tbgw_value_double(20.0);
    kx_value_repr(&v, &b);
    assert_string_equal(tbgw_buf_cstr(&b), "20.0");
    tbgw_buf_reset(&b);
    v.type = TBGW_V_JSON;
    v.u.s = "{\"control\":true,\"value\":false,\"n\":null,\"l\":[1,2.5,\"x\"]}";
    kx_value_repr(&v, &b);
    assert_string_equal(tbgw_buf_cstr(&b),
                        "{'control': True, 'value': False, 'n': None, 'l': [1, 2.5, 'x']}");
    tbgw_buf_reset(&b);
    v = tbgw_value_bool(1);
    kx_value_str(&v, &b);
    assert_string_equal(tbgw_buf_cstr(&b), "True");
    tbgw_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_example),
        cmocka_unit_test(test_errors_and_skips),
        cmocka_unit_test(test_reprs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
