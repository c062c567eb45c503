/* FTP connector: the old-format adapter against the reference's own test vectors, and the
 * conversion rules of SLICED, TABLE and JSON files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "connectors/ftp/ftp_internal.h"

static json_t *load(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/reference/ftp_old_format/%s", getenv("TBGW_SOURCE_DIR"), rel);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    return j;
}

static void test_old_format_adapter(void **state) {
    (void)state;
    const char *cases[] = {"anonym_type", "basic_type", "attribute_updates"};
    for (size_t i = 0; i < 3; i++) {
        char a[128], b[128];
        snprintf(a, sizeof a, "%s/old_config.json", cases[i]);
        snprintf(b, sizeof b, "%s/new_config.json", cases[i]);
        json_t *old = load(a), *want = load(b), *got = ftp_config_upgrade(old);
        if (!json_equal(got, want)) {
            char *t = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
            fprintf(stderr, "%s: got %s\n", cases[i], t);
            free(t);
        }
        assert_true(json_equal(got, want));
        json_t *again = ftp_config_upgrade(want); /* a new-format configuration stays as it is */
        assert_true(json_equal(again, want));
        json_decref(again);
        json_decref(old);
        json_decref(want);
        json_decref(got);
    }
}

static ftp_path path_of(const char *text) {
    json_error_t je;
    json_t *e = json_loads(text, 0, &je);
    assert_non_null(e);
    ftp_path p;
    tbgw_err err;
    assert_int_equal(ftp_path_parse(e, "paths[0]", &p, &err), 0);
    json_decref(e);
    return p;
}

static const char *tel(const tbgw_converted *c, const char *key) {
    for (size_t i = 0; c && i < c->n_telemetry; i++)
        if (strcmp(c->telemetry[i].key, key) == 0) return c->telemetry[i].v.u.s;
    return NULL;
}

static void test_sliced_table_json(void **state) {
    (void)state;
    ftp_path s = path_of(
        "{\"path\": \"fol/*_hello*.txt\", \"readMode\": \"FULL\", \"txtFileDataView\": \"SLICED\", "
        "\"devicePatternName\": \"asd\", \"timeseries\": [{\"key\": \"[0:1]\", \"value\": \"[0:1]\"}, "
        "{\"key\": \"temp\", \"value\": \"[1:]\"}, {\"key\": \"ts\", \"value\": \"[-2:]\"}]}");
    char l0[] = "12345,x", l1[] = "67890,y";
    char *lines[] = {l0, l1};
    tbgw_converted *c = ftp_convert_lines(&s, 't', NULL, lines, 2, 0);
    assert_non_null(c);
    assert_string_equal(c->device_name, "asd");
    assert_string_equal(tel(c, "1"), "1");
    assert_string_equal(tel(c, "temp"), "2345"); /* characters of the first field only */
    assert_null(tel(c, "ts"));                   /* the timestamp is not a datapoint */
    assert_int_equal(c->telemetry[0].ts, 45);
    assert_non_null(c->next);
    assert_string_equal(tel(c->next, "temp"), "7890");
    tbgw_converted_free(c);
    ftp_path_free(&s);

    ftp_path t =
        path_of("{\"path\": \"d/log.csv\", \"readMode\": \"PARTIAL\", \"devicePatternName\": \"${name}\", "
                "\"timeseries\": [{\"key\": \"t_${name}\", \"value\": \"${temp} C\"}, "
                "{\"key\": \"bad\", \"value\": \"${nope}\"}]}");
    char h[] = "name,temp", r1[] = "d1,10", r2[] = "d2,11";
    char *rows[] = {h, r1, r2};
    c = ftp_convert_lines(&t, 'c', "name,temp", rows, 3, 1);
    assert_non_null(c);
    assert_string_equal(c->device_name, "d1");
    assert_string_equal(tel(c, "t_d1"), "10 C");
    assert_null(tel(c, "bad")); /* a header that does not exist: that item only is skipped */
    assert_string_equal(c->next->device_name, "d2");
    tbgw_converted_free(c);
    ftp_path_free(&t);

    ftp_path j =
        path_of("{\"path\": \"j/x.json\", \"readMode\": \"FULL\", \"devicePatternName\": \"${dev}\", "
                "\"timeseries\": [{\"type\": \"integer\", \"key\": \"v\", \"value\": \"${v}\"}]}");
    const char *text = "[{\"dev\":\"J1\",\"v\":5,\"ts\":1700000000000},{\"dev\":\"J2\",\"v\":\"7\"}]";
    c = ftp_convert_json(&j, text, strlen(text), NULL);
    assert_non_null(c);
    assert_int_equal(c->telemetry[0].v.type, TBGW_V_INT);
    assert_int_equal(c->telemetry[0].v.u.i, 5);
    assert_int_equal(c->telemetry[0].ts, 1700000000000LL);
    assert_string_equal(c->next->device_name, "J2");
    assert_int_equal(c->next->telemetry[0].v.u.i, 7);
    tbgw_converted_free(c);
    ftp_path_free(&j);
    assert_true(ftp_glob_match("*_hello*.txt", "a_hello1.txt"));
    assert_false(ftp_glob_match("*_hello*.txt", "other.txt"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_format_adapter),
        cmocka_unit_test(test_sliced_table_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
