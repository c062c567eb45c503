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
    /* lines of one device in one batch: one record, each line's datapoints at its own timestamp */
    assert_null(c->next);
    assert_int_equal(c->n_telemetry, 4);
    assert_string_equal(c->telemetry[3].key, "temp");
    assert_string_equal(c->telemetry[3].v.u.s, "7890");
    assert_int_equal(c->telemetry[3].ts, 90);
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

typedef struct sink {
    int refuse; /* refuse this many batches (as a saturated core) */
    size_t records, points;
    char devices[4096];
} sink;

static int to_sink(void *ud, tbgw_converted *chain) {
    sink *k = ud;
    if (k->refuse > 0) {
        k->refuse--;
        tbgw_converted_free(chain);
        return TBGW_EAGAIN;
    }
    for (tbgw_converted *r = chain; r; r = r->next) {
        k->records++;
        k->points += tbgw_converted_count(r);
        for (size_t i = 0; i < r->n_telemetry; i++) {
            size_t l = strlen(k->devices);
            snprintf(k->devices + l, sizeof k->devices - l, "%s=%s;", r->device_name, r->telemetry[i].v.u.s);
        }
    }
    tbgw_converted_free(chain);
    return 0;
}

/* The values one device got, in order ("1,3"). */
static const char *vals(const sink *k, const char *dev, char *out, size_t n) {
    out[0] = 0;
    char want[64];
    snprintf(want, sizeof want, "%s=", dev);
    for (const char *p = k->devices; (p = strstr(p, want));) {
        if (p != k->devices && p[-1] != ';') {
            p++;
            continue;
        }
        p += strlen(want);
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%.*s", l ? "," : "", (int)strcspn(p, ";"), p);
    }
    return out;
}

/* The streamed splitter: every split of the bytes gives the same rows; a partial last line is carried
 * (PARTIAL) or converted at the end (FULL); CRLF; a refused batch stays pending; over-long lines. */
static void test_stream(void **state) {
    (void)state;
    ftp_path t = path_of("{\"path\": \"d/log.csv\", \"readMode\": \"PARTIAL\", \"devicePatternName\": "
                         "\"${name}\", \"timeseries\": [{\"key\": \"v\", \"value\": \"${v}\"}]}");
    const char *text = "name,v\r\nd1,1\r\nd2,2\nd1,3\nd2,4";
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut++) {
        for (int full = 0; full < 2; full++) {
            sink k = {0};
            ftp_stream s;
            ftp_stream_init(&s, &t, 'c', full, 1, NULL, to_sink, &k);
            assert_int_equal(ftp_stream_feed(&s, text, cut), 0);
            assert_int_equal(ftp_stream_feed(&s, text + cut, len - cut), 0);
            assert_int_equal(ftp_stream_flush(&s, 1), 0);
            assert_string_equal(s.header, "name,v");
            char v1[64], v2[64];
            assert_string_equal(vals(&k, "d1", v1, sizeof v1), "1,3");
            if (full) {
                assert_string_equal(vals(&k, "d2", v2, sizeof v2), "2,4");
                assert_int_equal(s.consumed, (long long)len);
            } else {
                assert_string_equal(vals(&k, "d2", v2, sizeof v2), "2");
                assert_int_equal(s.consumed, (long long)(len - strlen("d2,4")));
            }
            ftp_stream_free(&s);
        }
    }
    /* resumed with the header remembered; a refused batch is offered again */
    sink k = {.refuse = 2};
    ftp_stream s;
    ftp_stream_init(&s, &t, 'c', 0, 0, "name,v", to_sink, &k);
    assert_int_equal(ftp_stream_feed(&s, "d3,5\nd3,6\n", 10), 0); /* under a batch: kept */
    assert_int_equal(ftp_stream_flush(&s, 0), TBGW_EAGAIN);
    assert_int_equal(ftp_stream_flush(&s, 0), TBGW_EAGAIN);
    assert_int_equal(s.consumed, 0);
    assert_int_equal(ftp_stream_flush(&s, 0), 0);
    assert_string_equal(k.devices, "d3=5;d3=6;");
    assert_int_equal(k.points, 2); /* one record or two: both read in the same millisecond cannot share one */
    assert_int_equal(s.consumed, 10);
    /* a line longer than FTP_STREAM_MAX_LINE is skipped, the next one is read */
    char *big = malloc(FTP_STREAM_MAX_LINE + 100);
    memset(big, 'x', FTP_STREAM_MAX_LINE + 100);
    for (size_t off = 0; off < FTP_STREAM_MAX_LINE + 100; off += 4096)
        assert_int_equal(
            ftp_stream_feed(&s, big + off,
                            4096 < FTP_STREAM_MAX_LINE + 100 - off ? 4096 : FTP_STREAM_MAX_LINE + 100 - off),
            0);
    assert_int_equal(ftp_stream_feed(&s, "yy\nd4,7\n", 8), 0);
    assert_int_equal(ftp_stream_flush(&s, 1), 0);
    assert_int_equal(s.long_lines, 1);
    assert_int_equal(s.tail_len, FTP_STREAM_TAIL); /* the bytes before the position: "...xxyy\nd4,7\n" */
    assert_memory_equal(s.tail + FTP_STREAM_TAIL - 8, "yy\nd4,7\n", 8);
    assert_memory_equal(s.tail, "xxxxxxxx", 8);
    assert_string_equal(k.devices, "d3=5;d3=6;d4=7;");
    assert_int_equal(s.consumed, 10 + FTP_STREAM_MAX_LINE + 100 + 8);
    assert_true(s.pend.cap < 2 * FTP_STREAM_MAX_LINE + 65536);
    free(big);
    ftp_stream_free(&s);
    ftp_path_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_format_adapter),
        cmocka_unit_test(test_sliced_table_json),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
