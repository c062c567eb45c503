/* Configuration loading: positions in messages, reference defaults, YAML, env overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"
#include "util/doc.h"

static char dir[256];

static const char *write_file(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *load_errors(const char *path, tbgw_config **out, int *errors) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    tbgw_cfg_report rep = {0, 0, mem};
    tbgw_config *c = tbgw_config_load(path, &rep);
    fclose(mem);
    *errors = rep.errors;
    if (out)
        *out = c;
    else
        tbgw_config_free(c);
    return buf;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tbgw-cfg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void test_reference_config_loads(void **state) {
    (void)state;
    const char *src = getenv("TBGW_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/reference/tb_gateway.json", src ? src : "..");
    tbgw_config *c;
    int errors;
    char *out = load_errors(path, &c, &errors);
    assert_int_equal(errors, 0);
    assert_non_null(c);
    assert_string_equal(c->host, "thingsboard.cloud");
    assert_int_equal(c->port, 1883);
    assert_int_equal(c->qos, 1);
    assert_int_equal(c->keep_alive, 120);
    assert_int_equal(c->sec.type, TBGW_SEC_ACCESS_TOKEN);
    assert_string_equal(c->sec.access_token, "YOUR_ACCESS_TOKEN");
    assert_int_equal(c->max_payload_size, 8196);
    assert_int_equal(c->rs.type, TBGW_RS_ON_RECEIVED);
    assert_int_equal(c->remote_configuration, 1);
    assert_string_equal(c->rate_limits[0], "DEFAULT_TELEMETRY_RATE_LIMIT");
    tbgw_config_free(c);
    free(out);
}

static void test_errors_name_file_line_column_and_field(void **state) {
    (void)state;
    const char *p =
        write_file("bad.json", "{\n  \"thingsboard\": {\n    \"host\": \"h\",\n    \"port\": \"1883\",\n"
                               "    \"security\": {\"accessToken\": \"t\"},\n    \"qos\": 7,\n"
                               "    \"unknownThing\": 1\n  }\n}\n");
    int errors;
    char *out = load_errors(p, NULL, &errors);
    assert_int_equal(errors, 2);
    char expect[600];
    snprintf(expect, sizeof expect, "%s:4:5: thingsboard.port: expected an integer, got a string", p);
    assert_non_null(strstr(out, expect));
    snprintf(expect, sizeof expect, "%s:6:5: thingsboard.qos: expected 0 or 1", p);
    assert_non_null(strstr(out, expect));
    snprintf(expect, sizeof expect, "warning: %s:7:5: thingsboard.unknownThing: unknown key, ignored", p);
    assert_non_null(strstr(out, expect));
    free(out);
}

static void test_syntax_error_and_missing_required(void **state) {
    (void)state;
    const char *p = write_file("syntax.json", "{\n  \"thingsboard\": {\n    \"host\": \"h\",,\n  }\n}\n");
    int errors;
    char *out = load_errors(p, NULL, &errors);
    assert_int_equal(errors, 1);
    assert_non_null(strstr(out, "syntax.json:3:"));
    assert_non_null(strstr(out, "invalid JSON"));
    free(out);
    p = write_file("nohost.json", "{\"thingsboard\": {\"security\": {\"accessToken\": \"t\"}}}");
    out = load_errors(p, NULL, &errors);
    assert_int_equal(errors, 1);
    assert_non_null(strstr(out, "thingsboard.host: required field is missing"));
    free(out);
}

static void test_unknown_connector_type_names_entry(void **state) {
    (void)state;
    const char *p = write_file(
        "conn.json", "{\"thingsboard\": {\"host\": \"h\", \"security\": {\"accessToken\": \"t\"}},\n"
                     " \"connectors\": [\n  {\"type\": \"frobnicator\", \"name\": \"X\", "
                     "\"configuration\": \"x.json\"}\n ]\n}\n");
    int errors;
    char *out = load_errors(p, NULL, &errors);
    assert_true(errors >= 1);
    assert_non_null(
        strstr(out, "connectors[0].type: connector \"X\": unknown connector type \"frobnicator\""));
    assert_non_null(strstr(out, "conn.json:3:"));
    free(out);
}

static void test_grpc_connector_refused_with_reason(void **state) {
    (void)state;
    const char *p = write_file(
        "grpc.json", "{\"thingsboard\": {\"host\": \"h\", \"security\": {\"accessToken\": \"t\"}},\n"
                     " \"connectors\": [\n  {\"type\": \"grpc\", \"name\": \"G\", \"key\": \"auto\", "
                     "\"configuration\": \"g.json\"}\n ]\n}\n");
    int errors;
    char *out = load_errors(p, NULL, &errors);
    assert_true(errors >= 1);
    assert_non_null(strstr(out, "grpc.json:3:"));
    assert_non_null(strstr(out, "gRPC connectors (separate programs speaking the gateway's gRPC API) are not "
                                "supported by tbgw"));
    free(out);
}

static void test_yaml_config(void **state) {
    (void)state;
    const char *p =
        write_file("tb_gateway.yaml", "thingsboard:\n  host: yaml.example\n  port: 1884\n  security:\n"
                                      "    accessToken: abc\n  qos: 0\nstorage:\n  type: memory\n");
    tbgw_config *c;
    int errors;
    char *out = load_errors(p, &c, &errors);
    assert_int_equal(errors, 0);
    assert_string_equal(c->host, "yaml.example");
    assert_int_equal(c->port, 1884);
    assert_int_equal(c->qos, 0);
    tbgw_config_free(c);
    free(out);
    p = write_file("bad.yaml",
                   "thingsboard:\n  host: h\n  port: notaport\n  security:\n    accessToken: abc\n");
    out = load_errors(p, NULL, &errors);
    assert_int_equal(errors, 1);
    assert_non_null(strstr(out, "bad.yaml:3:9: thingsboard.port: expected an integer, got a string"));
    free(out);
}

static void test_env_overrides_and_security(void **state) {
    (void)state;
    const char *p = write_file(
        "env.json", "{\"thingsboard\": {\"host\": \"h\", \"port\": 8883, \"security\": "
                    "{\"type\": \"usernamePassword\", \"username\": \"u\", \"password\": \"p\"}}}");
    setenv("TB_GW_HOST", "envhost", 1);
    setenv("host", "must-not-leak", 1);
    tbgw_config *c;
    int errors;
    char *out = load_errors(p, &c, &errors);
    unsetenv("TB_GW_HOST");
    unsetenv("host");
    assert_int_equal(errors, 0);
    assert_string_equal(c->host, "envhost");
    assert_int_equal(c->sec.type, TBGW_SEC_USERNAME_PASSWORD);
    assert_true(c->sec.tls); /* port 8883 */
    tbgw_config_free(c);
    free(out);
}

static void test_report_strategy_parse(void **state) {
    (void)state;
    tbgw_report_strategy rs;
    tbgw_err err;
    json_t *j =
        json_loads("{\"type\":\"on_change_or_report_period\",\"reportPeriod\":5000,\"ttl\":60}", 0, NULL);
    assert_int_equal(tbgw_config_parse_rs(j, "x", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD);
    assert_int_equal(rs.period_ms, 5000);
    assert_int_equal(rs.ttl_s, 60);
    json_decref(j);
    j = json_loads("{\"type\":\"ON_REPORT_PERIOD\"}", 0, NULL);
    assert_int_not_equal(tbgw_config_parse_rs(j, "slaves[0].reportStrategy", &rs, &err), 0);
    assert_non_null(strstr(err.msg, "slaves[0].reportStrategy.reportPeriod: required"));
    json_decref(j);
    j = json_loads("{\"type\":\"SOMETIMES\"}", 0, NULL);
    assert_int_not_equal(tbgw_config_parse_rs(j, "r", &rs, &err), 0);
    json_decref(j);
    j = json_loads("{}", 0, NULL);
    assert_int_equal(tbgw_config_parse_rs(j, "r", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_UNSET);
    json_decref(j);
}

static void test_locate_paths(void **state) {
    (void)state;
    const char *t = "{\"a\": [1, {\"b c\": {\"d\": true}}],\n \"e\": \"x\"}";
    int l, c;
    assert_int_equal(tbgw_json_locate(t, strlen(t), "a[1].b c.d", &l, &c), 0);
    assert_int_equal(l, 1);
    assert_int_equal(c, 20); /* the key "d" */
    assert_int_equal(tbgw_json_locate(t, strlen(t), "e", &l, &c), 0);
    assert_int_equal(l, 2);
    assert_int_equal(c, 2);
    assert_int_not_equal(tbgw_json_locate(t, strlen(t), "zz", &l, &c), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_config_loads),
        cmocka_unit_test(test_errors_name_file_line_column_and_field),
        cmocka_unit_test(test_syntax_error_and_missing_required),
        cmocka_unit_test(test_unknown_connector_type_names_entry),
        cmocka_unit_test(test_grpc_connector_refused_with_reason),
        cmocka_unit_test(test_yaml_config),
        cmocka_unit_test(test_env_overrides_and_security),
        cmocka_unit_test(test_report_strategy_parse),
        cmocka_unit_test(test_locate_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
