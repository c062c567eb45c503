/* Configuration documents: positions in error messages after the source text was released. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/doc.h"

static const char *TEXT =
    "{\n  \"master\": {\n    \"slaves\": [\n      {\"unitId\": 1,\n       \"port\": \"x\"}\n    ]\n  }\n}\n";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_positions_after_release(void **st) {
    (void)st;
    char path[] = "/tmp/tbgw-doc-XXXXXX.json";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, TEXT);
    tbgw_err err;
    tbgw_doc *d = tbgw_doc_load(path, &err);
    assert_non_null(d);
    int line, col;
    tbgw_doc_locate(d, "master.slaves[0].port", &line, &col);
    assert_int_equal(line, 5);
    assert_int_equal(col, 8);
    tbgw_doc_release_text(d);
    assert_null(d->text);
    assert_non_null(d->root); /* the parsed configuration stays */
    /* a later error: the position comes from the file, read again */
    tbgw_doc_error(d, &err, "master.slaves[0].port", "expected an integer");
    char want[600];
    snprintf(want, sizeof want, "%s:5:8: master.slaves[0].port: expected an integer", path);
    assert_string_equal(err.msg, want);
    assert_non_null(d->text);
    /* an offset inside a string value still works */
    tbgw_doc_error(d, &err, "master.slaves[0].port@0", "bad");
    assert_non_null(strstr(err.msg, ":5:17:"));
    tbgw_doc_free(d);

    /* the file gone: no position, but a message (and no crash) */
    d = tbgw_doc_load(path, &err);
    assert_non_null(d);
    tbgw_doc_release_text(d);
    unlink(path);
    tbgw_doc_error(d, &err, "master.slaves[0].port", "expected an integer");
    snprintf(want, sizeof want, "%s:1:1: master.slaves[0].port: expected an integer", path);
    assert_string_equal(err.msg, want);
    tbgw_doc_free(d);

    /* a document not read from a file keeps its text */
    d = tbgw_doc_parse_json("inline", TEXT, strlen(TEXT), &err);
    assert_non_null(d);
    tbgw_doc_release_text(d);
    assert_non_null(d->text);
    tbgw_doc_free(d);
}

/* tbgw_doc_pack: the tree is gone, positions stay, tbgw_doc_tree gives back an equal tree (reals, big
 * integers, NUL and non-ASCII strings, key order, an array root) every time it is asked. */
static void test_pack_round_trip(void **st) {
    (void)st;
    const char *text =
        "{\n  \"z\": 1, \"a\": [0.1, -0.0, 1e300, 1.0, 9223372036854775807, -9223372036854775807],\n"
        "  \"s\": \"a\\u0000b \u00fc \\ud83d\\ude00\", \"o\": {\"n\": null, \"t\": true, \"e\": {}}}\n";
    tbgw_err err = {0};
    tbgw_doc *d = tbgw_doc_parse_json("p.json", text, strlen(text), &err);
    assert_non_null(d);
    json_t *want = json_deep_copy(d->root);
    json_t *same = tbgw_doc_tree(d); /* before packing: the tree itself */
    assert_ptr_equal(same, d->root);
    json_decref(same);
    assert_int_equal(tbgw_doc_pack(d), 0);
    assert_null(d->root);
    assert_non_null(d->packed);
    for (int i = 0; i < 2; i++) {
        json_t *back = tbgw_doc_tree(d);
        assert_non_null(back);
        assert_true(json_equal(back, want));
        char *a = json_dumps(back, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);
        assert_string_equal(a, b); /* same order, same number forms */
        free(a);
        free(b);
        json_decref(back);
    }
    int line, col;
    tbgw_doc_locate(d, "o.t", &line, &col); /* the source text is still there for positions */
    assert_int_equal(line, 3);
    assert_int_equal(tbgw_doc_pack(d), 0); /* packing twice is harmless */
    json_decref(want);
    tbgw_doc_free(d);
    d = tbgw_doc_parse_json("n.json", "[42]", 4, &err);
    assert_non_null(d);
    assert_int_equal(tbgw_doc_pack(d), 0);
    json_t *n = tbgw_doc_tree(d);
    assert_int_equal(json_integer_value(json_array_get(n, 0)), 42);
    json_decref(n);
    tbgw_doc_free(d);
    assert_null(tbgw_doc_tree(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_positions_after_release),
                                       cmocka_unit_test(test_pack_round_trip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
