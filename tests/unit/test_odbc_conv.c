/* ODBC connector: the reference configuration's mapping applied to rows (the list comprehension,
 * "*" with NULL columns, the literal device type), expressions for names, values and types,
 * broken rows and items, mapping errors with their position, DECIMAL text as numbers, the whole-mapping
 * "*" mode and column-name items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "connectors/odbc/odbc_internal.h"

static json_t *reference_mapping(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/reference/odbc.json", getenv("TBGW_SOURCE_DIR"));
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    json_t *m = json_incref(json_object_get(j, "mapping"));
    json_decref(j);
    return m;
}

static const tbgw_kv *find(const tbgw_kv *kv, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0) return &kv[i];
    return NULL;
}

static tbgw_converted *convert(const odbc_mapping *m, tbgw_py_ctx *ctx, const char *row_json, size_t *errs,
                               tbgw_err *err) {
    json_error_t je;
    json_t *row = json_loads(row_json, 0, &je);
    assert_non_null(row);
    tbgw_converted *rec = odbc_convert_row(m, ctx, row, errs, err);
    json_decref(row);
    return rec;
}

static void test_reference_mapping(void **state) {
    (void)state;
    json_t *mj = reference_mapping();
    odbc_mapping m;
    tbgw_err err = {0};
    assert_int_equal(odbc_mapping_parse(mj, &m, NULL, NULL, &err), 0);
    tbgw_py_ctx *ctx = tbgw_py_ctx_new(NULL);
    size_t errs = 0;
    tbgw_converted *r =
        convert(&m, ctx,
                "{\"bool_v\": null, \"str_v\": null, \"dbl_v\": null, \"long_v\": 9007199254740993,"
                " \"entity_id\": \"E1\", \"ts\": 1700000000123}",
                &errs, &err);
    assert_non_null(r);
    assert_string_equal(r->device_name, "ODBC E1");
    assert_string_equal(r->device_type, "postgres");
    assert_int_equal(r->n_telemetry, 1);
    assert_string_equal(r->telemetry[0].key, "value");
    assert_int_equal(r->telemetry[0].v.type, TBGW_V_INT);
    assert_true(r->telemetry[0].v.u.i == 9007199254740993LL);
    assert_true(r->telemetry[0].ts == 1700000000123LL);
    /* "*": the non-NULL columns only */
    assert_int_equal(r->n_attributes, 3);
    assert_null(find(r->attributes, r->n_attributes, "bool_v"));
    assert_int_equal(find(r->attributes, r->n_attributes, "long_v")->v.type, TBGW_V_INT);
    tbgw_converted_free(r);
    /* every value NULL: the comprehension's [0] raises, the item is dropped, attributes remain */
    r = convert(
        &m, ctx,
        "{\"bool_v\": null, \"str_v\": null, \"dbl_v\": null, \"long_v\": null, \"entity_id\": \"E2\"}",
        &errs, &err);
    assert_non_null(r);
    assert_int_equal(r->n_telemetry, 0);
    assert_int_equal(errs, 1);
    tbgw_converted_free(r);
    /* the device name cannot be computed (int + str): the row is broken */
    r = convert(&m, ctx, "{\"entity_id\": 5, \"str_v\": \"x\"}", &errs, &err);
    assert_null(r);
    assert_int_equal(err.code, TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "TypeError"));
    odbc_mapping_free(&m);
    tbgw_py_ctx_free(ctx);
    json_decref(mj);
}

static void warn_count(void *ud, const char *dotted, const char *msg) {
    (void)msg;
    assert_non_null(strstr(dotted, "mapping.timeseries["));
    (*(int *)ud)++;
}

static void test_expressions_and_errors(void **state) {
    (void)state;
    json_error_t je;
    json_t *mj =
        json_loads("{\"device\": {\"name\": \"dev\", \"type\": \"kind or 'none'\"},"
                   " \"attributes\": [{\"nameExpression\": \"'a_' + str(id)\", \"column\": \"v\"}],"
                   " \"timeseries\": [{\"name\": \"twice\", \"value\": \"v * 2\"}, {\"name\": \"x\"},"
                   " {\"value\": \"1\"}, {\"name\": \"bad\", \"value\": \"v +\"}]}",
                   0, &je);
    odbc_mapping m;
    tbgw_err err = {0};
    int warnings = 0;
    assert_int_equal(odbc_mapping_parse(mj, &m, warn_count, &warnings, &err), 0);
    assert_int_equal(warnings, 3); /* the three broken items are reported and skipped */
    assert_int_equal(m.ts.n, 1);
    tbgw_py_ctx *ctx = tbgw_py_ctx_new(NULL);
    size_t errs = 0;
    tbgw_converted *r =
        convert(&m, ctx, "{\"dev\": \"D\", \"kind\": \"meter\", \"id\": 7, \"v\": 1.25}", &errs, &err);
    assert_non_null(r);
    assert_string_equal(r->device_type, "meter");
    assert_string_equal(r->attributes[0].key, "a_7");
    assert_true(r->telemetry[0].v.type == TBGW_V_DOUBLE && r->telemetry[0].v.u.d == 2.5);
    tbgw_converted_free(r);
    r = convert(&m, ctx, "{\"dev\": \"D\", \"kind\": null, \"id\": 7, \"v\": 1}", &errs, &err);
    assert_non_null(r); /* None or 'none' */
    assert_string_equal(r->device_type, "none");
    tbgw_converted_free(r);
    /* ts as text (an untyped expression column) is the telemetry time */
    r = convert(&m, ctx, "{\"dev\": \"D\", \"id\": 7, \"v\": 1, \"ts\": \"1700000000555\"}", &errs, &err);
    assert_non_null(r);
    assert_true(r->telemetry[0].ts == 1700000000555LL);
    tbgw_converted_free(r);
    r = convert(&m, ctx, "{\"dev\": \"D\", \"kind\": \"\", \"id\": 7, \"v\": null}", &errs, &err);
    assert_null(r); /* None * 2 fails (that item only), the NULL column is skipped: no datapoint */
    assert_int_equal(err.code, TBGW_ENOENT);
    odbc_mapping_free(&m);
    json_decref(mj);
    /* a syntax error in the device name names the field and the offset */
    mj = json_loads("{\"device\": {\"name\": \"'a' +\"}}", 0, &je);
    assert_int_equal(odbc_mapping_parse(mj, &m, NULL, NULL, &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "mapping.device.name@"));
    json_decref(mj);
    mj = json_loads("{\"device\": {}}", 0, &je);
    assert_int_equal(odbc_mapping_parse(mj, &m, NULL, NULL, &err), TBGW_EINVAL);
    json_decref(mj);
    tbgw_py_ctx_free(ctx);
}

static void test_whole_mapping_and_column_names(void **state) {
    (void)state;
    json_t *star = json_string("*");
    odbc_mapping m;
    tbgw_err err = {0};
    assert_int_equal(odbc_mapping_parse(star, &m, NULL, NULL, &err), 0);
    assert_true(m.whole);
    json_decref(star);
    tbgw_py_ctx *ctx = tbgw_py_ctx_new(NULL);
    size_t errs = 0;
    tbgw_converted *r = convert(&m, ctx,
                                "{\"deviceName\": \"D\", \"deviceType\": \"k\", \"ts\": 77,"
                                " \"attributes\": \"{\\\"a\\\": 1}\","
                                " \"timeseries\": \"[{\\\"ts\\\": 5, \\\"values\\\": {\\\"t\\\": 2.5}},"
                                " {\\\"u\\\": \\\"x\\\"}]\"}",
                                &errs, &err);
    assert_non_null(r);
    assert_string_equal(r->device_name, "D");
    assert_string_equal(r->device_type, "k");
    assert_int_equal(r->n_attributes, 1);
    assert_int_equal(find(r->attributes, r->n_attributes, "a")->v.u.i, 1);
    assert_int_equal(r->n_telemetry, 2);
    const tbgw_kv *t = find(r->telemetry, r->n_telemetry, "t"), *u = find(r->telemetry, r->n_telemetry, "u");
    assert_int_equal(t->ts, 5);
    assert_true(t->v.type == TBGW_V_DOUBLE && t->v.u.d == 2.5);
    assert_int_equal(u->ts, 77);
    assert_string_equal(u->v.u.s, "x");
    tbgw_converted_free(r);
    /* no deviceName, a column that is not JSON, a JSON string: broken rows */
    const char *broken[] = {"{\"attributes\": \"{}\"}", "{\"deviceName\": \"D\", \"telemetry\": \"{x\"}",
                            "{\"deviceName\": \"D\", \"telemetry\": \"\\\"s\\\"\"}"};
    for (int i = 0; i < 3; i++) {
        tbgw_err e = {0};
        assert_null(convert(&m, ctx, broken[i], &errs, &e));
        assert_int_equal(e.code, TBGW_EINVAL);
    }
    tbgw_err e = {0};
    assert_null(convert(&m, ctx, "{\"deviceName\": \"D\"}", &errs, &e));
    assert_int_equal(e.code, TBGW_ENOENT);
    odbc_mapping_free(&m);
    /* a list item that is a column name: the key is the column's name */
    json_error_t je;
    json_t *mj =
        json_loads("{\"device\": {\"name\": \"'n'\"}, \"timeseries\": [\"v\", \"missing\"]}", 0, &je);
    assert_int_equal(odbc_mapping_parse(mj, &m, NULL, NULL, &err), 0);
    r = convert(&m, ctx, "{\"v\": 3}", &errs, &err);
    assert_non_null(r);
    assert_int_equal(r->n_telemetry, 1);
    assert_int_equal(find(r->telemetry, 1, "v")->v.u.i, 3);
    tbgw_converted_free(r);
    odbc_mapping_free(&m);
    json_decref(mj);
    tbgw_py_ctx_free(ctx);
}

static void test_decimal(void **state) {
    (void)state;
    struct {
        const char *in;
        int is_int;
        double v;
    } cases[] = {{"12", 1, 12}, {"-7.000", 1, -7}, {"12.50", 0, 12.5}, {"0.001", 0, 0.001}, {"1e3", 0, 1000}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = odbc_decimal_json(cases[i].in);
        assert_non_null(j);
        assert_int_equal(json_is_integer(j), cases[i].is_int);
        assert_true(json_number_value(j) == cases[i].v);
        json_decref(j);
    }
    json_t *big = odbc_decimal_json("123456789012345678901234567890");
    assert_true(json_is_real(big));
    json_decref(big);
    assert_null(odbc_decimal_json("abc"));
    assert_null(odbc_decimal_json(""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_mapping),
        cmocka_unit_test(test_expressions_and_errors),
        cmocka_unit_test(test_whole_mapping_and_column_names),
        cmocka_unit_test(test_decimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
