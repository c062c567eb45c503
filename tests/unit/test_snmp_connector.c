/* SNMP connector: the reference example configuration, configuration errors, numeric OIDs, varbind
 * conversion, typed SET values and table merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/snmp/snmpc.h"

static tbgw_host host;

static int setup(void **st) {
    (void)st;
    host.abi = TBGW_CONNECTOR_ABI;
    host.name = "SNMP";
    host.type = "snmp";
    host.config_dir = "/nonexistent";
    host.log = tbgw_logger_get("connector.SNMP");
    host.conv_log = tbgw_logger_get("converter.SNMP");
    return 0;
}

static void test_reference_example(void **st) {
    (void)st;
    const char *sd = getenv("TBGW_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/reference/snmp.json", sd ? sd : "..");
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    snmp_cfg c;
    tbgw_err err = {0};
    assert_int_equal(snmp_config_parse(&c, j, &host, &err), 0);
    assert_int_equal((int)c.n_devices, 2);
    snmp_dev_cfg *d = &c.devices[0];
    assert_string_equal(d->name, "SNMP router");
    assert_string_equal(d->host, "snmp.live.gambitcommunications.com");
    assert_int_equal(d->port, 161);
    assert_int_equal((int)d->poll_ms, 5000);
    assert_int_equal((int)d->timeout_ms, 6000);
    assert_int_equal((int)d->version, SNMP_VERSION_1);
    assert_int_equal((int)d->n_items, 8); /* 6 attributes + 2 telemetry */
    assert_int_equal(d->items[0].method, SM_GET);
    assert_int_equal(d->items[1].method, SM_MULTIGET);
    assert_int_equal((int)d->items[1].n_oids, 2);
    assert_int_equal(d->items[5].method, SM_BULKGET);
    assert_int_equal(d->items[5].max_list, 10);
    assert_int_equal((int)d->items[5].n_rep, 2);
    assert_int_equal(d->items[7].method, SM_TABLE);
    assert_false(d->items[7].is_attr);
    assert_int_equal((int)d->n_attr_updates, 2);
    assert_int_equal(d->attr_updates[1].method, SM_MULTISET);
    assert_int_equal((int)d->n_rpcs, 4);
    assert_true(snmp_filter_matches(&d->rpcs[0], "setData"));
    assert_false(snmp_filter_matches(&d->rpcs[0], "getData"));
    /* the second device names a converter that does not exist: the built-in one is used */
    assert_null(c.devices[1].custom);
    snmp_config_free(&c);
    json_decref(j);
}

static void bad(const char *text, const char *want) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    snmp_cfg c;
    tbgw_err err = {0};
    assert_true(snmp_config_parse(&c, j, &host, &err) < 0);
    if (!strstr(err.msg, want)) fail_msg("error '%s' does not contain '%s'", err.msg, want);
    json_decref(j);
}

static void test_config_errors(void **st) {
    (void)st;
    bad("{}", "devices: required list");
    bad("{\"devices\":[{\"ip\":\"h\",\"community\":\"c\"}]}", "devices[0].deviceName: required");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"community\":\"c\"}]}", "devices[0].ip: required");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\"}]}", "devices[0].community: required");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"community\":\"c\",\"snmpVersion\":\"4\"}]}",
        "devices[0].snmpVersion: '4' unknown");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"snmpVersion\":3}]}",
        "devices[0].securityName: required");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"snmpVersion\":3,\"securityName\":\"u\","
        "\"authKey\":"
        "\"short\"}]}",
        "devices[0].authKey: a pass phrase of at least 8");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"snmpVersion\":3,\"securityName\":\"u\","
        "\"authKey\":"
        "\"longenough\",\"authProtocol\":\"SHA-999\"}]}",
        "devices[0].authProtocol: 'SHA-999' unknown");
    bad("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"community\":\"c\",\"pollPeriod\":0}]}",
        "devices[0].pollPeriod");
    /* a bad item is skipped with an error, the device stays */
    json_t *j =
        json_loads("{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"community\":\"c\",\"telemetry\":["
                   "{\"key\":\"a\",\"method\":\"get\",\"oid\":\"sysDescr.0\"},"
                   "{\"key\":\"b\",\"method\":\"fetch\",\"oid\":\"1.3\"},"
                   "{\"key\":\"c\",\"method\":\"get\",\"oid\":\".1.3.6.1.2.1.1.5.0\"}]}]}",
                   0, NULL);
    snmp_cfg c;
    tbgw_err err = {0};
    assert_int_equal(snmp_config_parse(&c, j, &host, &err), 0);
    assert_int_equal((int)c.devices[0].n_items, 1);
    assert_string_equal(c.devices[0].items[0].key, "c");
    assert_int_equal((int)c.devices[0].items[0].oids[0].len, 9);
    snmp_config_free(&c);
    json_decref(j);
    /* report strategies: device level and per item */
    j = json_loads(
        "{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"community\":\"c\",\"reportStrategy\":"
        "{\"type\":\"ON_CHANGE\"},\"telemetry\":[{\"key\":\"a\",\"method\":\"get\",\"oid\":\"1.3\","
        "\"reportStrategy\":{\"type\":\"ON_REPORT_PERIOD\",\"reportPeriod\":5000}}]}]}",
        0, NULL);
    assert_int_equal(snmp_config_parse(&c, j, &host, &err), 0);
    assert_true(c.devices[0].has_rs);
    assert_int_equal(c.devices[0].rs.type, TBGW_RS_ON_CHANGE);
    assert_true(c.devices[0].items[0].has_rs);
    assert_int_equal(c.devices[0].items[0].rs.type, TBGW_RS_ON_REPORT_PERIOD);
    assert_int_equal((int)c.devices[0].items[0].rs.period_ms, 5000);
    snmp_config_free(&c);
    json_decref(j);
    /* v3 with every option */
    j = json_loads(
        "{\"devices\":[{\"deviceName\":\"d\",\"ip\":\"h\",\"snmpVersion\":\"v3\",\"securityName\":\"u\","
        "\"authProtocol\":\"SHA-512\",\"authKey\":\"authpass1\",\"privProtocol\":\"AES-256\",\"privKey\":"
        "\"privpass1\"}]}",
        0, NULL);
    assert_int_equal(snmp_config_parse(&c, j, &host, &err), 0);
    assert_int_equal(c.devices[0].sec_level, SNMP_SEC_LEVEL_AUTHPRIV);
    assert_ptr_equal(c.devices[0].auth_proto, usmHMAC384SHA512AuthProtocol);
    assert_ptr_equal(c.devices[0].priv_proto, usmAES256PrivProtocol);
    snmp_config_free(&c);
    json_decref(j);
}

static void test_oids(void **st) {
    (void)st;
    snmp_oid o;
    assert_int_equal(snmp_oid_parse("1.3.6.1.2.1.1.1.0", &o), 0);
    assert_int_equal((int)o.len, 9);
    char t[64];
    snmp_oid_format(o.v, o.len, t, sizeof t);
    assert_string_equal(t, "1.3.6.1.2.1.1.1.0");
    assert_int_equal(snmp_oid_parse(".1.3.6", &o), 0);
    assert_int_equal((int)o.len, 3);
    assert_int_equal(snmp_oid_parse("1..3", &o), TBGW_EINVAL);
    assert_int_equal(snmp_oid_parse("1.3.", &o), TBGW_EINVAL);
    assert_int_equal(snmp_oid_parse("", &o), TBGW_EINVAL);
    assert_int_equal(snmp_oid_parse("1.3.4294967296", &o), TBGW_EINVAL);
    assert_int_equal(snmp_oid_parse("SNMPv2-MIB::sysDescr.0", &o), TBGW_EINVAL);
}

static char *vb_text(u_char type, const void *val, size_t len) {
    netsnmp_variable_list vb;
    memset(&vb, 0, sizeof vb);
    oid name[] = {1, 3, 6, 1};
    snmp_set_var_objid(&vb, name, 4);
    assert_int_equal(snmp_set_var_typed_value(&vb, type, val, len), 0);
    char err[120] = "";
    json_t *j = snmp_vb_to_json(&vb, err, sizeof err);
    char *s = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : strdup(err);
    json_decref(j);
    snmp_set_var_value(&vb, NULL, 0);
    return s;
}

static void expect_vb(u_char type, const void *val, size_t len, const char *want) {
    char *s = vb_text(type, val, len);
    assert_string_equal(s, want);
    free(s);
}

static void test_varbinds(void **st) {
    (void)st;
    long i = -5;
    expect_vb(ASN_INTEGER, &i, sizeof i, "-5");
    unsigned long u = 4000000000ul;
    expect_vb(ASN_COUNTER, &u, sizeof u, "4000000000");
    expect_vb(ASN_GAUGE, &u, sizeof u, "4000000000");
    unsigned long ticks = 12345;
    expect_vb(ASN_TIMETICKS, &ticks, sizeof ticks, "123.45");
    struct counter64 c64 = {.high = 1, .low = 2};
    expect_vb(ASN_COUNTER64, &c64, sizeof c64, "4294967298");
    struct counter64 big = {.high = 0xFFFFFFFF, .low = 0xFFFFFFFF};
    expect_vb(ASN_COUNTER64, &big, sizeof big, "\"18446744073709551615\"");
    expect_vb(ASN_OCTET_STR, "Linux box", 9, "\"Linux box\"");
    expect_vb(ASN_OCTET_STR, "\x00\x1a\xff", 3, "\"001aff\"");
    expect_vb(ASN_OCTET_STR, "", 0, "\"\"");
    oid ov[] = {1, 3, 6, 1, 4, 1, 8072, 3, 2, 10};
    expect_vb(ASN_OBJECT_ID, ov, sizeof ov, "\"1.3.6.1.4.1.8072.3.2.10\"");
    expect_vb(ASN_IPADDRESS, "\x0a\x00\x00\x01", 4, "\"10.0.0.1\"");
    expect_vb(ASN_NULL, NULL, 0, "null");
    expect_vb(SNMP_NOSUCHOBJECT, NULL, 0, "no such object");
    expect_vb(SNMP_ENDOFMIBVIEW, NULL, 0, "end of MIB view");
}

static void set_ok(u_char type, const char *json, const void *want, size_t wlen) {
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    u_char buf[256];
    size_t len = 0;
    char err[120] = "";
    if (snmp_set_value(type, v, buf, sizeof buf, &len, err, sizeof err)) fail_msg("%s: %s", json, err);
    assert_int_equal((int)len, (int)wlen);
    assert_memory_equal(buf, want, wlen);
    json_decref(v);
}

static void set_bad(u_char type, const char *json) {
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    u_char buf[256];
    size_t len = 0;
    char err[120] = "";
    assert_int_equal(snmp_set_value(type, v, buf, sizeof buf, &len, err, sizeof err), TBGW_EINVAL);
    assert_true(err[0] != 0);
    json_decref(v);
}

static void test_set_values(void **st) {
    (void)st;
    long zero = 0, five = 5, neg = -3;
    set_ok(ASN_INTEGER, "0", &zero, sizeof zero);
    set_ok(ASN_INTEGER, "\"5\"", &five, sizeof five);
    set_ok(ASN_INTEGER, "5.0", &five, sizeof five);
    set_ok(ASN_INTEGER, "-3", &neg, sizeof neg);
    set_ok(ASN_INTEGER, "true", (long[]){1}, sizeof(long));
    set_bad(ASN_INTEGER, "\"abc\"");
    set_bad(ASN_INTEGER, "5.5");
    set_bad(ASN_INTEGER, "4294967296");
    set_bad(ASN_GAUGE, "-1");
    set_ok(ASN_OCTET_STR, "\"\"", "", 0);
    set_ok(ASN_OCTET_STR, "\"abc\"", "abc", 3);
    set_ok(ASN_OCTET_STR, "25.0", "25.0", 4);
    set_ok(ASN_OCTET_STR, "true", "True", 4);
    set_ok(ASN_OCTET_STR | 0x80, "\"00:1a ff\"", "\x00\x1a\xff", 3);
    set_bad(ASN_OCTET_STR | 0x80, "\"abc\"");
    oid want[] = {1, 3, 6};
    set_ok(ASN_OBJECT_ID, "\"1.3.6\"", want, sizeof want);
    set_ok(ASN_IPADDRESS, "\"10.0.0.1\"", "\x0a\x00\x00\x01", 4);
    set_bad(ASN_IPADDRESS, "\"10.0.0\"");
    set_bad(ASN_OPAQUE, "\"x\"");
    assert_int_equal(snmp_type_parse("i"), ASN_INTEGER);
    assert_int_equal(snmp_type_parse("Counter64"), ASN_COUNTER64);
    assert_int_equal(snmp_type_parse("C"), ASN_COUNTER64);
    assert_int_equal(snmp_type_parse("c"), ASN_COUNTER);
    assert_int_equal(snmp_type_parse("nope"), 0);
}

static void test_table(void **st) {
    (void)st;
    snmp_oid base;
    assert_int_equal(snmp_oid_parse("1.3.6.1.2.1.2.2", &base), 0);
    json_t *m = json_object();
    oid r1c2[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 1}, r2c2[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 2},
        r2c3[] = {1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 2}, other[] = {1, 3, 6, 1, 2, 1, 3, 1};
    json_t *lo = json_string("lo"), *eth = json_string("eth0"), *t24 = json_integer(24);
    assert_int_equal(snmp_table_add(m, &base, r1c2, 11, lo), 0);
    assert_int_equal(snmp_table_add(m, &base, r2c2, 11, eth), 0);
    assert_int_equal(snmp_table_add(m, &base, r2c3, 11, t24), 0);
    assert_int_equal(snmp_table_add(m, &base, other, 8, t24), TBGW_EINVAL);
    char *s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"0\":\"2\",\"2\":\"eth0\",\"3\":\"24\"}");
    free(s);
    json_decref(lo);
    json_decref(eth);
    json_decref(t24);
    json_decref(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_example),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_oids),
        cmocka_unit_test(test_varbinds),
        cmocka_unit_test(test_set_values),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
