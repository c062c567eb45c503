/* Report strategy configuration parsing (spec §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>
#include "convert/report_cfg.h"

static int parse(const char *text, tbgw_report_strategy *rs, tbgw_err *err) {
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    int rc = tbgw_rs_parse(j, rs, err);
    json_decref(j);
    return rc;
}

static void test_valid(void **st) {
    (void)st;
    tbgw_report_strategy rs;
    tbgw_err err = {0};
    assert_int_equal(parse(NULL, &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_UNSET);
    assert_int_equal(parse("{}", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_UNSET);
    assert_int_equal(parse("{\"ttl\":5}", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_UNSET);
    assert_int_equal(parse("{\"type\":\"on_received\"}", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_ON_RECEIVED);
    assert_int_equal(rs.ttl_s, 86400);
    assert_int_equal(parse("{\"type\":\"ON_CHANGE\",\"ttl\":60}", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_ON_CHANGE);
    assert_int_equal(rs.ttl_s, 60);
    assert_int_equal(parse("{\"type\":\"ON_REPORT_PERIOD\",\"reportPeriod\":5000}", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_ON_REPORT_PERIOD);
    assert_int_equal(rs.period_ms, 5000);
    assert_int_equal(parse("{\"type\":\"On_Change_Or_Report_Period\",\"reportPeriod\":250.0,"
                           "\"aggregationFunction\":\"average\"}",
                           &rs, &err),
                     0);
    assert_int_equal(rs.type, TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD);
    assert_int_equal(rs.period_ms, 250);
    assert_int_equal(parse("{\"type\":\"DISABLED\"}", &rs, &err), 0);
    assert_int_equal(rs.type, TBGW_RS_DISABLED);
    assert_string_equal(tbgw_rs_type_name(TBGW_RS_ON_CHANGE), "ON_CHANGE");
}

static void bad(const char *text, const char *want) {
    tbgw_report_strategy rs;
    tbgw_err err = {0};
    assert_int_equal(parse(text, &rs, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, want);
}

static void test_invalid(void **st) {
    (void)st;
    bad("5", "reportStrategy: expected an object");
    bad("{\"reportPeriod\":100}",
        "reportStrategy.type: missing (reportPeriod given without a strategy type)");
    bad("{\"type\":\"SOMETIMES\"}",
        "reportStrategy.type: expected one of ON_RECEIVED, ON_CHANGE, ON_REPORT_PERIOD, "
        "ON_CHANGE_OR_REPORT_PERIOD, DISABLED");
    bad("{\"type\":7}", "reportStrategy.type: expected one of ON_RECEIVED, ON_CHANGE, ON_REPORT_PERIOD, "
                        "ON_CHANGE_OR_REPORT_PERIOD, DISABLED");
    bad("{\"type\":\"ON_REPORT_PERIOD\"}", "reportStrategy.reportPeriod: required for ON_REPORT_PERIOD");
    bad("{\"type\":\"ON_REPORT_PERIOD\",\"reportPeriod\":0}",
        "reportStrategy.reportPeriod: expected a number of ms > 0");
    bad("{\"type\":\"ON_CHANGE\",\"reportPeriod\":\"5\"}",
        "reportStrategy.reportPeriod: expected a number of ms > 0");
    bad("{\"type\":\"ON_CHANGE\",\"ttl\":-1}", "reportStrategy.ttl: expected a number of seconds > 0");
    bad("{\"type\":\"ON_CHANGE\",\"aggregationFunction\":\"MEDIAN\"}",
        "reportStrategy.aggregationFunction: expected one of NONE, SUM, COUNT, MIN, MAX, AVERAGE");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
