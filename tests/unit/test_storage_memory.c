/* Memory storage against the shared storage contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage_contract.h"

static const sfx memory_fx = {
    .type = "memory",
    .durable = 0,
    .cap_cfg = "{\"max_records_count\": 100}",
    .cap_rec_size = 40,
    .cap_max = 100,
};

static int setup(void **state) {
    return sfx_setup(state, &memory_fx);
}

/* Drains everything in packs of 1000, checking order from first; returns the count. */
static size_t drain_commit(tbgw_storage *s, long long first) {
    size_t n = 0;
    tbgw_pack p;
    for (;;) {
        assert_int_equal(s->ops->peek(s, 1000, &p), 0);
        if (!p.n) break;
        expect_pack(&p, first + (long long)n, p.n);
        n += p.n;
        assert_int_equal(s->ops->commit(s, &p), 0);
        tbgw_pack_free(&p);
    }
    return n;
}

/* The ring starts again at slot 0 when it empties and gives the pages of a large backlog back
 * (madvise): records stored afterwards, with a partly committed backlog, a rewind and a wrap around
 * the end of the ring, still come out whole and in order. */
static void memory_ring_reuse_after_a_backlog(void **state) {
    (void)state;
    tbgw_storage *s = sfx_open(&memory_fx, "{\"max_records_count\": 50000}");
    append_n(s, 0, 45000, 24); /* above the release threshold (32768 slots) */
    assert_int_equal(drain_commit(s, 0), 45000);
    assert_int_equal(stat_records(s), 0);
    append_n(s, 45000, 30000, 24); /* from slot 0 again */
    tbgw_pack p;
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 45000, 1000);
    assert_int_equal(s->ops->commit(s, &p), 0);
    tbgw_pack_free(&p);
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 46000, 1000);
    tbgw_pack_free(&p);
    s->ops->rewind(s);
    append_n(s, 75000, 20000, 24); /* 49000 stored: wraps past the end of the ring */
    assert_int_equal(stat_records(s), 49000);
    assert_int_equal(drain_commit(s, 46000), 49000);
    append_n(s, 95000, 10, 24);
    assert_int_equal(drain_commit(s, 95000), 10);
    s->ops->close(s);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const struct CMUnitTest tests[] = {
        CONTRACT_TESTS(setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(memory_ring_reuse_after_a_backlog, setup, sfx_teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
