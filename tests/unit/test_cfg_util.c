/* The tolerant rule for per-key configuration entries (tbgw_cfg_skip_entry): the parsers' "path: reason"
 * messages reach host->config_warning split into the field path and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "convert/cfg_util.h"

static char got_dotted[256], got_msg[512];
static int calls, had_path;

static void on_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    calls++;
    had_path = dotted != NULL;
    snprintf(got_dotted, sizeof got_dotted, "%s", dotted ? dotted : "");
    snprintf(got_msg, sizeof got_msg, "%s", msg);
}

static void test_split_and_report(void **st) {
    (void)st;
    tbgw_host h;
    memset(&h, 0, sizeof h);
    h.config_warning = on_warning;
    tbgw_err e = {0, ""};
    tbgw_err_set(&e, TBGW_EINVAL, "master.slaves[0].timeseries[2].type: unknown type '4bits' (expected ...)");
    assert_int_equal(tbgw_cfg_skip_entry(&h, &e), 0);
    assert_int_equal(calls, 1);
    assert_string_equal(got_dotted, "master.slaves[0].timeseries[2].type");
    assert_string_equal(got_msg, "unknown type '4bits' (expected ...)");
    /* a message that does not start with a path is passed whole */
    tbgw_err_set(&e, TBGW_EINVAL, "device name is empty: here");
    assert_int_equal(tbgw_cfg_skip_entry(&h, &e), 0);
    assert_false(had_path);
    assert_string_equal(got_msg, "device name is empty: here");
    /* out of memory is never tolerated */
    tbgw_err_set(&e, TBGW_ENOMEM, "out of memory");
    assert_int_equal(tbgw_cfg_skip_entry(&h, &e), TBGW_ENOMEM);
    assert_int_equal(calls, 2);
    /* without a host (fuzzing, tools) the entry is skipped silently */
    tbgw_err_set(&e, TBGW_EINVAL, "mapping[0].key: missing");
    assert_int_equal(tbgw_cfg_skip_entry(NULL, &e), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_split_and_report)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
