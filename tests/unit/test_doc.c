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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_positions_after_release)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
