/* Custom converters: loads build/plugins/custom_converter_example.so through the ABI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "convert/custom_conv.h"
#include "convert_helpers.h"

static char so_path[1024];

static int setup(void **st) {
    (void)st;
    const char *bd = getenv("TBGW_BUILD_DIR");
    snprintf(so_path, sizeof so_path, "%s/plugins/custom_converter_example.so", bd ? bd : ".");
    return access(so_path, R_OK) == 0 ? 0 : -1;
}

static char *run(tbgw_custom_conv *c, const char *topic, const char *payload, int *rc) {
    tbgw_converted *out = NULL;
    tbgw_err err = {0};
    *rc = tbgw_custom_conv_convert(c, topic, (const uint8_t *)payload, strlen(payload), &out, &err);
    char *d = *rc < 0 ? strdup(err.msg) : conv_dump(out);
    /* timestamps are "now": blank them for exact comparisons */
    for (tbgw_converted *r = out; r; r = r->next)
        for (size_t i = 0; i < r->n_telemetry; i++) assert_true(r->telemetry[i].ts > 1700000000000LL);
    tbgw_converted_free(out);
    return d;
}

static void strip_ts(char *s) {
    /* replace "<digits>:" after '{' or ',' inside t{...} with "" */
    char *t = strstr(s, " t{");
    if (!t) return;
    char *w = t + 3, *r = t + 3;
    while (*r) {
        if ((r[-1] == '{' || r[-1] == ',') && r[0] >= '0' && r[0] <= '9') {
            while (*r >= '0' && *r <= '9') r++;
            if (*r == ':') r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
}

static void test_example_reference_config(void **st) {
    (void)st;
    json_t *cfg =
        json_loads("{\"type\":\"custom\",\"extension\":\"CustomMqttUplinkConverter\",\"cached\":true,"
                   "\"extensionConfig\":{\"temperature\":2,\"humidity\":2,\"batteryLevel\":1}}",
                   0, NULL);
    tbgw_custom_conv *c;
    tbgw_err err = {0};
    int rc = tbgw_custom_conv_load(so_path, "CustomMqttUplinkConverter", cfg, tbgw_logger_get("converter"),
                                   &c, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    char *d = run(c, "custom/sensors/SN-7", "0x00FA01F45F", &rc);
    assert_int_equal(rc, 1);
    strip_ts(d);
    assert_string_equal(d, "SN-7/Thermostat a{} t{temperature=250,humidity=500,batteryLevel=95}");
    free(d);
    d = run(c, "custom/sensors/SN-7", "zz", &rc);
    assert_int_equal(rc, TBGW_EINVAL);
    assert_string_equal(d, "payload: expected hex text");
    free(d);
    d = run(c, "custom/sensors/", "00", &rc);
    assert_int_equal(rc, TBGW_EINVAL);
    free(d);
    tbgw_custom_conv_free(c);
    json_decref(cfg);
}

static void test_lookup_in_config_dir(void **st) {
    (void)st;
    char dir[] = "/tmp/tbgw-ext-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[1200];
    snprintf(p, sizeof p, "%s/extensions", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/extensions/mqtt", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/extensions/mqtt/CustomMqttUplinkConverter.so", dir);
    assert_int_equal(symlink(so_path, p), 0);
    json_t *cfg = json_loads("{\"type\":\"custom\",\"extension\":\"CustomMqttUplinkConverter\"}", 0, NULL);
    tbgw_custom_conv *c = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_custom_conv_new(cfg, "mqtt", dir, "mapping[3].converter", NULL, &c, &err), 0);
    int rc;
    char *d = run(c, "a/dev", "0x10", &rc);
    assert_int_equal(rc, 1);
    strip_ts(d);
    assert_string_equal(d, "dev/Thermostat a{} t{data=16}");
    free(d);
    tbgw_custom_conv_free(c);
    json_decref(cfg);
    /* unknown names and missing files are clear errors */
    cfg = json_loads("{\"type\":\"custom\",\"extension\":\"Nope\"}", 0, NULL);
    assert_int_equal(tbgw_custom_conv_new(cfg, "mqtt", dir, "mapping[3].converter", NULL, &c, &err),
                     TBGW_ENOENT);
    assert_non_null(
        strstr(err.msg, "mapping[3].converter.extension: no shared object provides Nope (tried "));
    json_decref(cfg);
    cfg = json_loads("{\"type\":\"custom\"}", 0, NULL);
    assert_int_equal(tbgw_custom_conv_new(cfg, "mqtt", dir, "m", NULL, &c, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "m.extension: expected the converter name");
    json_decref(cfg);
    assert_int_equal(tbgw_custom_conv_load(so_path, "Other", NULL, NULL, &c, &err), TBGW_ENOENT);
    assert_non_null(strstr(err.msg, "has no converter named Other"));
    cfg = json_loads("{\"extensionConfig\":{\"a\":9}}", 0, NULL);
    assert_int_equal(tbgw_custom_conv_load(so_path, "CustomMqttUplinkConverter", cfg, NULL, &c, &err),
                     TBGW_EINVAL);
    assert_string_equal(err.msg, "extensionConfig: byte counts must be integers 1..8");
    json_decref(cfg);
    unlink(p);
    snprintf(p, sizeof p, "%s/extensions/mqtt", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/extensions", dir);
    rmdir(p);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_reference_config),
        cmocka_unit_test(test_lookup_in_config_dir),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
