/* Log formats, rotating files, logs.json routing, device filter, metrics text, provisioning
 * request/credentials, remote log keys. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/filter.h"
#include "core/metrics.h"
#include "core/mgmt.h"
#include "platform/provision.h"
#include "util/log_config.h"
#include "util/log_file.h"

static char g_tmp[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tbgw-unit-mgmt-XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    return 0;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

static void test_format(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    tbgw_log_record r = {"service",          TBGW_WARNING, "/src/core/router.c", "gw_method", 171,
                         {1700000000, 7000}, "hi"};
    char out[512];
    tbgw_log_format(
        "%(asctime)s.%(msecs)03d - |%(levelname)s| - [%(filename)s] - %(module)s - %(funcName)s - "
        "%(lineno)d - %(message)s",
        "%Y-%m-%d %H:%M:%S", &r, out, sizeof out);
    assert_string_equal(out,
                        "2023-11-14 22:13:20.007 - |WARNING| - [router.c] - router - gw_method - 171 - hi");
    tbgw_log_format("%(asctime)s [%(name)-8s] %(levelno)d %% %(unknown)s", NULL, &r, out, sizeof out);
    assert_string_equal(out, "2023-11-14 22:13:20,007 [service ] 30 % %(unknown)s");
    /* no source location: file-based keys fall back to the logger name */
    tbgw_log_record r2 = {"storage", TBGW_INFO, NULL, NULL, 0, {1700000000, 0}, "m"};
    tbgw_log_format("[%(filename)s] %(module)s %(funcName)s %(lineno)d", NULL, &r2, out, sizeof out);
    assert_string_equal(out, "[storage] storage - 0");
    /* truncation keeps a NUL */
    assert_int_equal(tbgw_log_format("%(message)s%(message)s%(message)s", NULL, &r, out, 4), 3);
    assert_string_equal(out, "hih");
    tbgw_err err;
    assert_int_equal(tbgw_log_format_check("%(asctime)s %(message)", "f", &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "f: \"%(message)\" needs a conversion"));
    assert_int_equal(tbgw_log_format_check("%(a", "f", &err), TBGW_EINVAL);
    assert_int_equal(tbgw_log_format_check("100% sure", "f", &err), TBGW_EINVAL);
    assert_int_equal(tbgw_log_format_check("%(name)s 100%%", "f", &err), 0);
}

static void test_file_names_and_when(void **state) {
    (void)state;
    unsetenv("TB_GW_LOGS_PATH");
    char *n = tbgw_log_file_name("./logs/tb_connection.log");
    assert_string_equal(n, "./logs/tb_connection.log");
    free(n);
    n = tbgw_log_file_name("logs/My Modbus-Connector.log");
    assert_string_equal(n, "logs/my_modbus_connector.log");
    free(n);
    n = tbgw_log_file_name("modbusConnector");
    assert_string_equal(n, "modbus_connector.log");
    free(n);
    setenv("TB_GW_LOGS_PATH", "/var/log/tbgw", 1);
    n = tbgw_log_file_name("./logs/service.log");
    assert_string_equal(n, "/var/log/tbgw/service.log");
    free(n);
    unsetenv("TB_GW_LOGS_PATH");
    assert_int_equal(tbgw_rot_when_parse("midnight"), TBGW_ROT_MIDNIGHT);
    assert_int_equal(tbgw_rot_when_parse("d"), TBGW_ROT_D);
    assert_int_equal(tbgw_rot_when_parse("W6"), TBGW_ROT_W0 + 6);
    assert_int_equal(tbgw_rot_when_parse("W7"), -1);
    assert_int_equal(tbgw_rot_when_parse("fortnight"), -1);
}

static void test_timed_rotation(void **state) {
    (void)state;
    char path[400], dir[300];
    snprintf(dir, sizeof dir, "%s/timed", g_tmp);
    snprintf(path, sizeof path, "%s/sub/service.log", dir); /* missing folders are created */
    tbgw_rotfile rf;
    tbgw_err err;
    time_t t0 = 1700000000;
    assert_int_equal(tbgw_rotfile_open(&rf, path, TBGW_ROT_S, 10, 2, 0, t0, &err), 0);
    tbgw_rotfile_write(&rf, "a\n", 2, t0);
    tbgw_rotfile_write(&rf, "b\n", 2, t0 + 5);
    assert_int_equal(rf.rollovers, 0);
    for (int i = 1; i <= 4; i++) tbgw_rotfile_write(&rf, "c\n", 2, t0 + 10 * i);
    assert_int_equal(rf.rollovers, 4);
    char sub[400];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(count_prefix(sub, "service.log."), 2); /* backupCount */
    assert_string_equal(slurp(path), "c\n");
    tbgw_rotfile_close(&rf);
    /* midnight: the next rollover is at the next midnight (a new file: counted from now, not mtime) */
    snprintf(path, sizeof path, "%s/sub/midnight.log", dir);
    assert_int_equal(tbgw_rotfile_open(&rf, path, TBGW_ROT_MIDNIGHT, 1, 0, 0, t0, &err), 0);
    assert_true(rf.rollover_at > t0 && rf.rollover_at <= t0 + 86400);
    tbgw_rotfile_close(&rf);
}

static void test_size_rotation(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/size.log", g_tmp);
    tbgw_rotfile rf;
    tbgw_err err;
    time_t t0 = 1700000000;
    assert_int_equal(tbgw_rotfile_open(&rf, path, TBGW_ROT_NONE, 1, 3, 100, t0, &err), 0);
    char line[41];
    memset(line, 'x', 40);
    line[39] = '\n';
    for (int i = 0; i < 20; i++) tbgw_rotfile_write(&rf, line, 40, t0); /* same second: names get .N */
    assert_true(rf.rollovers >= 6);
    assert_int_equal(count_prefix(g_tmp, "size.log."), 3);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size <= 100);
    tbgw_rotfile_close(&rf);
    assert_int_not_equal(tbgw_rotfile_open(&rf, "/proc/nope/x.log", TBGW_ROT_D, 1, 0, 0, t0, &err), 0);
    assert_non_null(strstr(err.msg, "/proc/nope"));
}

static void test_configure_routes(void **state) {
    (void)state;
    char json[2048];
    snprintf(json, sizeof json,
             "{\"formatters\":{\"F\":{\"format\":\"%%(levelname)s %%(name)s %%(message)s\"}},"
             "\"handlers\":{\"svc\":{\"class\":\"logging.FileHandler\",\"formatter\":\"F\",\"filename\":\"%s/"
             "svc.log\","
             "\"level\":\"INFO\"},"
             "\"conn\":{\"class\":\"logging.handlers.RotatingFileHandler\",\"formatter\":\"F\","
             "\"filename\":\"%s/conn.log\",\"maxBytes\":1000,\"backupCount\":1},"
             "\"all\":{\"class\":\"logging.FileHandler\",\"formatter\":\"F\",\"filename\":\"%s/all.log\"}},"
             "\"loggers\":{\"service\":{\"handlers\":[\"svc\"],\"level\":\"DEBUG\",\"propagate\":false},"
             "\"connector\":{\"handlers\":[\"conn\"],\"level\":\"WARNING\"}},"
             "\"root\":{\"level\":\"INFO\",\"handlers\":[\"all\"]}}",
             g_tmp, g_tmp, g_tmp);
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    tbgw_err err;
    assert_int_equal(tbgw_log_configure(j, &err), 0);
    tbgw_logger *svc = tbgw_logger_get("service"), *conn = tbgw_logger_get("connector.Modbus A");
    tbgw_logger *other = tbgw_logger_get("storage");
    TBGW_DEBUGF(svc, "debug line"); /* logger DEBUG, handler INFO: filtered by the handler */
    TBGW_INFOF(svc, "info line");
    TBGW_INFOF(conn, "connector info"); /* below WARNING */
    TBGW_WARNF(conn, "connector warning");
    TBGW_INFOF(other, "storage info");
    tbgw_log_reset();
    char p[400];
    snprintf(p, sizeof p, "%s/svc.log", g_tmp);
    assert_string_equal(slurp(p), "INFO service info line\n");
    snprintf(p, sizeof p, "%s/conn.log", g_tmp);
    assert_string_equal(slurp(p), "WARNING connector.Modbus A connector warning\n");
    snprintf(p, sizeof p, "%s/all.log", g_tmp); /* connector propagates to root; service does not */
    assert_string_equal(slurp(p),
                        "WARNING connector.Modbus A connector warning\nINFO storage storage info\n");
    json_decref(j);
    /* errors name the field; nothing changes */
    const char *bad[][2] = {
        {"{\"handlers\":{\"h\":{\"class\":\"logging.handlers.SysLogHandler\"}}}",
         "handlers.h.class: unsupported"},
        {"{\"handlers\":{\"h\":{\"class\":\"logging.StreamHandler\",\"formatter\":\"nope\"}}}",
         "handlers.h.formatter: no formatter \"nope\""},
        {"{\"loggers\":{\"service\":{\"handlers\":[\"missing\"]}}}",
         "loggers.service.handlers[0]: no handler"},
        {"{\"root\":{\"level\":\"LOUD\"}}", "root.level: expected a level"},
        {"{\"handlers\":{\"h\":{\"class\":\"logging.FileHandler\"}}}", "handlers.h.filename: required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i][0], 0, NULL);
        assert_non_null(j);
        assert_int_not_equal(tbgw_log_check(j, &err), 0);
        if (!strstr(err.msg, bad[i][1])) fail_msg("check %s: got \"%s\"", bad[i][1], err.msg);
        assert_int_not_equal(tbgw_log_configure(j, &err), 0);
        if (!strstr(err.msg, bad[i][1])) fail_msg("%s: got \"%s\"", bad[i][1], err.msg);
        json_decref(j);
    }
    tbgw_log_set_level(NULL, TBGW_INFO);
    tbgw_log_set_level("service", TBGW_INFO);
    tbgw_log_set_level("connector", TBGW_INFO);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_filter(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/list.json", g_tmp);
    write_file(path, "{\"deny\": {\"A\": [\"Dev [0-9]\", \"Bad.*\"]},\n \"allow\": {\"A\": [\"Dev.*\"], "
                     "\"B\": [\"Only\"]}}");
    tbgw_err err;
    tbgw_filter *f = tbgw_filter_load(path, &err);
    assert_non_null(f);
    assert_int_equal(tbgw_filter_allows(f, "A", "Dev 1"), 0);  /* deny wins */
    assert_int_equal(tbgw_filter_allows(f, "A", "Dev 10"), 1); /* full match only */
    assert_int_equal(tbgw_filter_allows(f, "A", "Other"), 0);  /* not in A's allow list */
    assert_int_equal(tbgw_filter_allows(f, "B", "Only"), 1);
    assert_int_equal(tbgw_filter_allows(f, "B", "Only2"), 0);
    assert_int_equal(tbgw_filter_allows(f, "C", "anything"), 1); /* no lists for C */
    assert_int_equal(tbgw_filter_allows(NULL, "C", "x"), 1);
    tbgw_filter_free(f);
    write_file(path, "{\n  \"allow\": {\n    \"A\": [\n      \"[z-a]\"\n    ]\n  }\n}\n");
    assert_null(tbgw_filter_load(path, &err));
    assert_non_null(strstr(err.msg, "list.json:4:7: allow.A[0]: bad regular expression \"[z-a]\""));
    write_file(path, "{\"deny\": {\"A\": \"x\"}}");
    assert_null(tbgw_filter_load(path, &err));
    assert_non_null(strstr(err.msg, "deny.A: expected a list"));
    write_file(path, "{\"block\": {}}");
    assert_null(tbgw_filter_load(path, &err));
    assert_non_null(strstr(err.msg, "block: unknown key"));
    write_file(path, "{\"deny\": ");
    assert_null(tbgw_filter_load(path, &err));
    assert_non_null(strstr(err.msg, "list.json"));
}

static void test_metrics_text(void **state) {
    (void)state;
    static tbgw_metrics_snap s;
    memset(&s, 0, sizeof s);
    s.platform_connected = 1;
    s.msgs_sent = 42;
    s.storage_records = 7;
    s.filtered_records = 3;
    s.n_conns = 1;
    snprintf(s.conns[0].name, sizeof s.conns[0].name, "My \"Conn\"\\1");
    snprintf(s.conns[0].type, sizeof s.conns[0].type, "modbus");
    s.conns[0].state = TBGW_CONN_FAILED;
    s.conns[0].restarts = 2;
    s.conns[0].stats[TBGW_STAT_MSGS_RECEIVED] = 9;
    s.conns[0].storage_pushed = 11;
    s.conns[0].events_sent = 10;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_metrics_render(&s, &b);
    const char *t = tbgw_buf_cstr(&b);
    assert_non_null(strstr(t, "# TYPE tbgw_messages_sent_total counter\ntbgw_messages_sent_total 42\n"));
    assert_non_null(strstr(t, "tbgw_storage_records 7\n"));
    assert_non_null(strstr(t, "tbgw_filtered_records_total 3\n"));
    assert_non_null(strstr(
        t, "tbgw_connector_state{connector=\"My \\\"Conn\\\"\\\\1\",type=\"modbus\",state=\"FAILED\"} 1\n"));
    assert_non_null(strstr(
        t,
        "tbgw_connector_state{connector=\"My \\\"Conn\\\"\\\\1\",type=\"modbus\",state=\"CONNECTED\"} 0\n"));
    assert_non_null(strstr(t, "tbgw_connector_restarts_total{connector=\"My \\\"Conn\\\"\\\\1\"} 2\n"));
    assert_non_null(
        strstr(t, "tbgw_connector_messages_received_total{connector=\"My \\\"Conn\\\"\\\\1\"} 9\n"));
    assert_non_null(
        strstr(t, "tbgw_connector_storage_pushed_total{connector=\"My \\\"Conn\\\"\\\\1\"} 11\n"));
    assert_non_null(strstr(t, "tbgw_connector_events_sent_total{connector=\"My \\\"Conn\\\"\\\\1\"} 10\n"));
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_metrics_health(&s, &b), 0); /* a failed connector */
    assert_non_null(strstr(tbgw_buf_cstr(&b), "\"status\":\"unhealthy\""));
    s.conns[0].state = TBGW_CONN_CONNECTED;
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_metrics_health(&s, &b), 1);
    s.platform_connected = 0;
    tbgw_buf_reset(&b);
    assert_int_equal(tbgw_metrics_health(&s, &b), 0);
    assert_non_null(strstr(tbgw_buf_cstr(&b), "\"platform\":\"disconnected\""));
    tbgw_buf_free(&b);
}

static void test_log_keys(void **state) {
    (void)state;
    char b[64];
    assert_string_equal(tbgw_mgmt_log_key("service", b, sizeof b), "SERVICE_LOGS");
    assert_string_equal(tbgw_mgmt_log_key("tb_connection", b, sizeof b), "CONNECTION_LOGS");
    assert_string_equal(tbgw_mgmt_log_key("storage", b, sizeof b), "STORAGE_LOGS");
    assert_string_equal(tbgw_mgmt_log_key("extension", b, sizeof b), "EXTENSION_LOGS");
    assert_string_equal(tbgw_mgmt_log_key("connector.Modbus", b, sizeof b), "Modbus_LOGS");
    assert_null(tbgw_mgmt_log_key("opcua", b, sizeof b));
}

static void test_provision_request_and_apply(void **state) {
    (void)state;
    tbgw_err err;
    json_t *prov = json_pack("{s:s,s:s}", "provisionDeviceKey", "K", "provisionDeviceSecret", "S");
    json_t *r = tbgw_provision_request(prov, g_tmp, &err);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "credentialsType")), "ACCESS_TOKEN");
    assert_int_equal(strlen(json_string_value(json_object_get(r, "token"))), 15);
    assert_true(json_is_true(json_object_get(r, "gateway")));
    assert_int_equal(strncmp(json_string_value(json_object_get(r, "deviceName")), "Gateway ", 8), 0);
    json_decref(r);
    json_object_set_new(prov, "type", json_string("PSK"));
    assert_null(tbgw_provision_request(prov, g_tmp, &err));
    assert_non_null(strstr(err.msg, "thingsboard.provisioning.type: expected ACCESS_TOKEN"));
    json_object_del(prov, "provisionDeviceSecret");
    assert_null(tbgw_provision_request(prov, g_tmp, &err));
    assert_non_null(strstr(err.msg, "thingsboard.provisioning.provisionDeviceSecret: required"));
    json_decref(prov);
    prov = json_pack("{s:s,s:s,s:s,s:s}", "type", "X509_CERTIFICATE", "provisionDeviceKey", "K",
                     "provisionDeviceSecret", "S", "deviceName", "GW X");
    r = tbgw_provision_request(prov, g_tmp, &err);
    assert_non_null(r);
    assert_non_null(strstr(json_string_value(json_object_get(r, "hash")), "BEGIN CERTIFICATE"));
    json_decref(r);
    json_decref(prov);

    tbgw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = g_tmp;
    cfg.port = 1883;
    json_t *c = json_loads("{\"credentialsType\":\"MQTT_BASIC\",\"credentialsValue\":{\"clientId\":\"c\","
                           "\"userName\":\"u\",\"password\":\"p\"},\"status\":\"SUCCESS\"}",
                           0, NULL);
    assert_int_equal(tbgw_provision_apply(&cfg, c, ".credentials", &err), 0);
    assert_int_equal(cfg.sec.type, TBGW_SEC_USERNAME_PASSWORD);
    assert_string_equal(cfg.sec.username, "u");
    assert_string_equal(cfg.sec.client_id, "c");
    assert_string_equal(cfg.sec.password, "p");
    json_decref(c);
    free(cfg.sec.username);
    free(cfg.sec.client_id);
    free(cfg.sec.password);
    memset(&cfg.sec, 0, sizeof cfg.sec);
    c = json_loads("{\"credentialsType\":\"X509_CERTIFICATE\",\"status\":\"SUCCESS\"}", 0, NULL);
    assert_int_equal(tbgw_provision_apply(&cfg, c, ".credentials", &err),
                     0); /* cert.pem/key.pem made above */
    assert_int_equal(cfg.sec.type, TBGW_SEC_TLS_PRIVATE_KEY);
    assert_true(cfg.sec.tls);
    free(cfg.sec.cert);
    free(cfg.sec.private_key);
    free(cfg.sec.ca_cert);
    json_decref(c);
    c = json_loads("{\"credentialsType\":\"ACCESS_TOKEN\"}", 0, NULL);
    memset(&cfg.sec, 0, sizeof cfg.sec);
    assert_int_not_equal(tbgw_provision_apply(&cfg, c, "/x/.credentials", &err), 0);
    assert_non_null(strstr(err.msg, "/x/.credentials: credentialsValue (token) missing"));
    json_decref(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_file_names_and_when),
        cmocka_unit_test(test_timed_rotation),
        cmocka_unit_test(test_size_rotation),
        cmocka_unit_test(test_configure_routes),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_log_keys),
        cmocka_unit_test(test_provision_request_and_apply),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
