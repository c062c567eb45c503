/* Report strategies, rate limits, device registry and renames, memory storage contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/devices.h"
#include "core/report.h"
#include "platform/rate_limit.h"
#include "storage/storage.h"
#include "util/backoff.h"

static tbgw_converted *one(const char *key, tbgw_value v, const tbgw_report_strategy *rs) {
    tbgw_converted *c = tbgw_converted_new("Dev", NULL);
    tbgw_converted_add_telemetry(c, 1, key, &v, rs);
    return c;
}

static size_t run_filter(tbgw_report *r, const char *key, tbgw_value v, const tbgw_report_strategy *rs,
                         int64_t now) {
    tbgw_converted *c = one(key, v, rs);
    size_t n = tbgw_report_filter(r, "conn", NULL, c, now);
    tbgw_converted_free(c);
    return n;
}

static void test_on_change(void **state) {
    (void)state;
    tbgw_report_strategy gw = {TBGW_RS_ON_CHANGE, 0, 10};
    tbgw_report *r = tbgw_report_new(&gw, 0);
    assert_int_equal(run_filter(r, "t", tbgw_value_double(20.0), NULL, 1000), 1);    /* first */
    assert_int_equal(run_filter(r, "t", tbgw_value_double(20.0005), NULL, 2000), 0); /* |d| < 0.001 */
    assert_int_equal(run_filter(r, "t", tbgw_value_int(21), NULL, 3000), 1);
    assert_int_equal(run_filter(r, "t", tbgw_value_int(21), NULL, 4000), 0);
    assert_int_equal(run_filter(r, "t", tbgw_value_int(21), NULL, 3000 + 10001), 1); /* ttl expired */
    /* key-level ON_RECEIVED overrides the gateway's ON_CHANGE */
    static const tbgw_report_strategy recv = {TBGW_RS_ON_RECEIVED, 0, 86400};
    assert_int_equal(run_filter(r, "k", tbgw_value_int(1), &recv, 5000), 1);
    assert_int_equal(run_filter(r, "k", tbgw_value_int(1), &recv, 5001), 1);
    tbgw_report_free(r);
}

typedef struct emitted {
    int count;
    int64_t ts;
    int64_t value;
} emitted;

static void on_emit(void *ud, const char *cid, tbgw_converted *c) {
    emitted *e = ud;
    assert_string_equal(cid, "conn");
    e->count++;
    e->ts = c->telemetry[0].ts;
    e->value = c->telemetry[0].v.u.i;
    tbgw_converted_free(c);
}

static void test_report_period(void **state) {
    (void)state;
    tbgw_report_strategy gw = {TBGW_RS_ON_RECEIVED, 0, 86400};
    static const tbgw_report_strategy per = {TBGW_RS_ON_REPORT_PERIOD, 5000, 86400};
    tbgw_report *r = tbgw_report_new(&gw, 0);
    assert_int_equal(run_filter(r, "p", tbgw_value_int(1), &per, 1000), 1); /* first value forwarded */
    assert_int_equal(run_filter(r, "p", tbgw_value_int(2), &per, 2000), 0); /* cached silently */
    emitted e = {0};
    tbgw_report_tick(r, 3000, on_emit, &e);
    assert_int_equal(e.count, 0);
    tbgw_report_tick(r, 5950, on_emit, &e); /* now - last + 50 >= period */
    assert_int_equal(e.count, 1);
    assert_int_equal(e.ts, 5950); /* re-stamped with the current time */
    assert_int_equal(e.value, 2);
    tbgw_report_tick(r, 6000, on_emit, &e);
    assert_int_equal(e.count, 1);
    assert_int_equal(tbgw_report_next_due(r), 5950 + 5000 - 50);
    tbgw_report_clear_connector(r, "conn");
    assert_int_equal(tbgw_report_size(r), 0);
    tbgw_report_free(r);
}

static void test_change_or_period(void **state) {
    (void)state;
    tbgw_report_strategy gw = {TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD, 1000, 86400};
    tbgw_report *r = tbgw_report_new(&gw, 0);
    assert_int_equal(run_filter(r, "x", tbgw_value_string("a"), NULL, 0), 1);
    assert_int_equal(run_filter(r, "x", tbgw_value_string("a"), NULL, 100), 0);
    assert_int_equal(run_filter(r, "x", tbgw_value_string("b"), NULL, 200), 1);
    emitted e = {0};
    tbgw_report_tick(r, 960, on_emit, &e); /* the change did not reset the timer */
    assert_int_equal(e.count, 1);
    tbgw_report_free(r);
    /* DISABLED at gateway level: no filtering at all */
    tbgw_report_strategy dis = {TBGW_RS_DISABLED, 0, 86400};
    r = tbgw_report_new(&dis, 1);
    static const tbgw_report_strategy chg = {TBGW_RS_ON_CHANGE, 0, 86400};
    assert_int_equal(run_filter(r, "x", tbgw_value_int(1), &chg, 0), 1);
    assert_int_equal(run_filter(r, "x", tbgw_value_int(1), &chg, 1), 1);
    tbgw_report_free(r);
}

static void test_rate_limit(void **state) {
    (void)state;
    tb_limit l;
    assert_int_equal(tb_limit_parse(&l, "10:1,60:60,", "localhost", 80, 0), 0);
    assert_int_equal(l.n, 2);
    assert_true(tb_limit_ready(&l, 8, 0));
    tb_limit_take(&l, 8);
    assert_false(tb_limit_ready(&l, 1, 0));
    assert_int_equal(tb_limit_wait_ms(&l, 1, 0), 126); /* 8 tokens per 1000 ms: 1 token in 125 ms */
    assert_true(tb_limit_ready(&l, 1, 200));
    tb_limit_parse(&l, "DEFAULT_TELEMETRY_RATE_LIMIT", "localhost", 80, 0);
    assert_int_equal(l.n, 0);
    tb_limit_parse(&l, "DEFAULT_TELEMETRY_DP_RATE_LIMIT", "eu.thingsboard.cloud", 80, 0);
    assert_int_equal(l.n, 2);
    assert_true(tb_limit_min_cap(&l) == 8);
    assert_int_not_equal(tb_limit_parse(&l, "abc", NULL, 80, 0), 0);
    assert_int_equal(l.n, 0);
    /* a request larger than the capacity is admitted when the bucket is full (no starvation) */
    tb_limit_parse(&l, "5:1", NULL, 100, 0);
    assert_true(tb_limit_ready(&l, 50, 0));
}

static void test_devices_and_renames(void **state) {
    (void)state;
    char path[] = "/tmp/tbgw-dev-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    tbgw_devices d;
    tbgw_devices_init(&d, path);
    int is_new;
    tbgw_device *v = tbgw_devices_add(&d, "Old", "thermo", "Conn", "id-1", (void *)1, &is_new);
    assert_true(is_new);
    assert_string_equal(v->type, "thermo");
    assert_string_equal(tbgw_devices_platform_name(&d, "Old"), "Old");
    tbgw_devices_rename(&d, "Old", "New");
    assert_string_equal(tbgw_devices_platform_name(&d, "Old"), "New");
    assert_string_equal(tbgw_devices_local_name(&d, "New"), "Old");
    tbgw_devices_rename(&d, "New", "Newer"); /* chains collapse */
    assert_string_equal(tbgw_devices_platform_name(&d, "Old"), "Newer");
    assert_int_equal(d.renames.count, 1);
    assert_int_equal(tbgw_devices_save(&d), 0);
    tbgw_devices_rename(&d, "Newer", "Old"); /* back to the original: entry removed */
    assert_int_equal(d.renames.count, 0);
    tbgw_devices_rename(&d, "Old", "Again");
    tbgw_devices_free(&d);
    /* reload what was saved */
    tbgw_devices d2;
    tbgw_devices_init(&d2, path);
    assert_int_equal(tbgw_devices_load(&d2, NULL, NULL), 0);
    assert_string_equal(tbgw_devices_platform_name(&d2, "Old"), "Newer");
    assert_int_equal(tbgw_devices_delete(&d2, "Newer"), 0); /* not connected, rename forgotten */
    assert_string_equal(tbgw_devices_platform_name(&d2, "Old"), "Old");
    tbgw_devices_free(&d2);
    unlink(path);
}

static void append_n(tbgw_storage *s, int from, int n) {
    char buf[32];
    for (int i = from; i < from + n; i++) {
        int len = snprintf(buf, sizeof buf, "rec%d", i);
        s->ops->append(s, buf, (size_t)len);
    }
}

static void test_memory_storage_contract(void **state) {
    (void)state;
    json_t *cfg = json_pack("{s:s,s:i}", "type", "memory", "max_records_count", 5);
    tbgw_storage *s;
    tbgw_err err;
    assert_int_equal(tbgw_storage_open(cfg, "/tmp", &s, &err), 0);
    append_n(s, 0, 4);
    tbgw_pack a, b, c;
    assert_int_equal(s->ops->peek(s, 2, &a), 0);
    assert_int_equal(a.n, 2);
    assert_memory_equal(a.recs[0].data, "rec0", 4);
    assert_int_equal(s->ops->peek(s, 2, &b), 0);
    assert_memory_equal(b.recs[0].data, "rec2", 4);
    assert_int_equal(s->ops->peek(s, 2, &c), 0);
    assert_int_equal(c.n, 0);
    s->ops->rewind(s); /* platform lost: re-read from the oldest uncommitted */
    tbgw_pack_free(&b);
    assert_int_equal(s->ops->peek(s, 10, &b), 0);
    assert_int_equal(b.n, 4);
    assert_int_equal(s->ops->commit(s, &a), 0);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 2);
    append_n(s, 4, 6); /* cap 5: drops the oldest */
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.dropped, 3);
    s->ops->rewind(s);
    tbgw_pack_free(&c);
    assert_int_equal(s->ops->peek(s, 10, &c), 0);
    assert_int_equal(c.n, 5);
    assert_memory_equal(c.recs[0].data, "rec5", 4);
    tbgw_pack_free(&a);
    tbgw_pack_free(&b);
    tbgw_pack_free(&c);
    s->ops->close(s);
    json_decref(cfg);
    /* refuse policy */
    cfg = json_pack("{s:s,s:i,s:s}", "type", "memory", "max_records_count", 1, "full_policy", "refuse");
    assert_int_equal(tbgw_storage_open(cfg, "/tmp", &s, &err), 0);
    assert_int_equal(s->ops->append(s, "a", 1), 0);
    assert_int_equal(s->ops->append(s, "b", 1), TBGW_EFULL);
    s->ops->close(s);
    json_decref(cfg);
    cfg = json_pack("{s:s}", "type", "nosuch");
    assert_int_not_equal(tbgw_storage_open(cfg, "/tmp", &s, &err), 0);
    assert_non_null(strstr(err.msg, "storage.type"));
    json_decref(cfg);
}

static void test_backoff_is_capped_with_jitter(void **state) {
    (void)state;
    tbgw_backoff b;
    tbgw_backoff_init(&b, 1000, 8000);
    int64_t max = 0;
    for (int i = 0; i < 200; i++) {
        int64_t d = tbgw_backoff_next(&b);
        assert_true(d >= 100 && d <= 8000);
        if (d > max) max = d;
    }
    assert_true(max > 4000); /* reaches the cap region */
    tbgw_backoff_reset(&b);
    assert_true(tbgw_backoff_next(&b) <= 1000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_change),
        cmocka_unit_test(test_report_period),
        cmocka_unit_test(test_change_or_period),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_devices_and_renames),
        cmocka_unit_test(test_memory_storage_contract),
        cmocka_unit_test(test_backoff_is_capped_with_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
