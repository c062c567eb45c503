/* OPC UA services used by the connector's rescans: the DeleteMonitoredItems request encoding, the
 * StatusCode-results and CreateMonitoredItems-results decoders (hand-made byte vectors, truncation at
 * every length, hostile counts), and against node-opcua (tests/peers/opcua_server.js):
 * CreateMonitoredItems returning the monitoredItemIds, DeleteMonitoredItems stopping a node's
 * notifications while another keeps reporting, and a Browse that yields between its BrowseNext
 * requests. The live part is skipped when node or node-opcua are not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "opcua_peer.h"
#include "proto/opcua/ua_client.h"
#include "proto/opcua/ua_internal.h"
#include "util/time.h"

static opcua_peer peer;

static int setup(void **state) {
    (void)state;
    if (peer_start(&peer, 0, NULL, "2500")) peer.pid = 0;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    peer_stop(&peer);
    return 0;
}

static void test_encode_delete_monitored_items(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    const uint32_t ids[] = {1, 0x01020304u};
    tbgw_ua_enc_delete_mi(&b, 7, ids, 2);
    static const uint8_t want[] = {7, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 3, 2, 1};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    tbgw_buf_reset(&b);
    tbgw_ua_enc_delete_mi(&b, 9, NULL, 0); /* an empty list is an empty array, not a null one */
    static const uint8_t want0[] = {9, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(b.len, sizeof want0);
    assert_memory_equal(b.p, want0, sizeof want0);
    tbgw_buf_free(&b);
}

/* results [Good, BadMonitoredItemIdInvalid], diagnosticInfos [one with a symbolic id] */
static const uint8_t status_body[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x80, 1, 0, 0, 0, 0x01, 5, 0, 0, 0};

static void test_decode_status_results(void **state) {
    (void)state;
    uint32_t st[2] = {0, 0};
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, status_body, sizeof status_body);
    assert_int_equal(tbgw_ua_dec_status_results(&d, 2, st), 0);
    assert_int_equal(st[0], 0);
    assert_int_equal(st[1], 0x80420000u);
    assert_int_equal(d.pos, sizeof status_body);
    /* without the diagnostics (some servers leave them out) */
    tbgw_ua_dec_init(&d, status_body, 12);
    st[1] = 0;
    assert_int_equal(tbgw_ua_dec_status_results(&d, 2, st), 0);
    assert_int_equal(st[1], 0x80420000u);
    /* a count that is not the number of operations */
    tbgw_ua_dec_init(&d, status_body, sizeof status_body);
    assert_int_equal(tbgw_ua_dec_status_results(&d, 3, st), TBGW_EPROTO);
    /* every truncation inside the results or the diagnostics fails and leaves status alone */
    for (size_t len = 0; len < sizeof status_body; len++) {
        if (len == 12) continue; /* the diagnostics left out: valid */
        uint32_t s2[2] = {0xAAAAAAAAu, 0xAAAAAAAAu};
        tbgw_ua_dec_init(&d, status_body, len);
        assert_int_not_equal(tbgw_ua_dec_status_results(&d, 2, s2), 0);
        assert_int_equal(s2[0], 0xAAAAAAAAu);
        assert_int_equal(s2[1], 0xAAAAAAAAu);
    }
    /* hostile counts */
    static const uint8_t huge[] = {0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0};
    tbgw_ua_dec_init(&d, huge, sizeof huge);
    assert_int_equal(tbgw_ua_dec_status_results(&d, 0x7FFFFFFF, st), TBGW_EPROTO);
    static const uint8_t null_array[] = {0xFF, 0xFF, 0xFF, 0xFF};
    tbgw_ua_dec_init(&d, null_array, sizeof null_array);
    assert_int_equal(tbgw_ua_dec_status_results(&d, 0, st), TBGW_EPROTO);
    static const uint8_t huge_diags[] = {0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F};
    tbgw_ua_dec_init(&d, huge_diags, sizeof huge_diags);
    assert_int_equal(tbgw_ua_dec_status_results(&d, 0, st), TBGW_EPROTO);
}

/* one MonitoredItemCreateResult: Good, id 0x11223344, 250.0 ms, queue 10, null filter result;
 * then an empty diagnosticInfos array */
static const uint8_t create_body[] = {1, 0,    0,    0,    0,  0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0,
                                      0, 0x40, 0x6F, 0x40, 10, 0, 0, 0, 0,    0,    0,    0,    0, 0, 0};

static void test_decode_create_results(void **state) {
    (void)state;
    uint32_t st = 1, id = 0;
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, create_body, sizeof create_body);
    assert_int_equal(tbgw_ua_dec_create_mi_results(&d, 1, &st, &id), 0);
    assert_int_equal(st, 0);
    assert_int_equal(id, 0x11223344u);
    assert_int_equal(d.pos, sizeof create_body);
    tbgw_ua_dec_init(&d, create_body, sizeof create_body);
    assert_int_equal(tbgw_ua_dec_create_mi_results(&d, 1, &st, NULL), 0); /* ids not wanted */
    tbgw_ua_dec_init(&d, create_body, sizeof create_body);
    assert_int_equal(tbgw_ua_dec_create_mi_results(&d, 2, &st, &id), TBGW_EPROTO);
    for (size_t len = 0; len < sizeof create_body - 4; len++) { /* up to the (optional) diagnostics */
        tbgw_ua_dec_init(&d, create_body, len);
        assert_int_not_equal(tbgw_ua_dec_create_mi_results(&d, 1, &st, &id), 0);
    }
}

/* ------------------------------------------------------------------ against node-opcua */

typedef struct seen {
    int counter, temperature;
} seen;

static void on_data(void *ctx, uint32_t sub, uint32_t handle, const tbgw_ua_datavalue *dv) {
    (void)sub;
    (void)dv;
    seen *s = ctx;
    if (handle == 1) s->counter++;
    if (handle == 2) s->temperature++;
}

static tbgw_ua_client *client(seen *s) {
    tbgw_ua_client_cfg cfg = {0};
    cfg.url = peer.url;
    cfg.timeout_ms = 5000;
    cfg.on_data = on_data;
    cfg.ctx = s;
    tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
    assert_non_null(c);
    tbgw_err err = {0};
    assert_int_equal(tbgw_ua_client_connect(c, &err), 0);
    return c;
}

static void pump(tbgw_ua_client *c, int ms) {
    for (int64_t end = tbgw_mono_ms() + ms; tbgw_mono_ms() < end;)
        assert_int_equal(tbgw_ua_client_poll(c, 50), 0);
}

static void test_delete_monitored_items_live(void **state) {
    (void)state;
    if (!peer.pid) skip();
    seen s = {0};
    tbgw_ua_client *c = client(&s);
    uint32_t sub = 0;
    assert_int_equal(tbgw_ua_sub_create(c, 100, &sub), 0);
    tbgw_ua_nodeid nodes[2];
    assert_int_equal(tbgw_ua_nodeid_parse("ns=1;s=Counter", &nodes[0]), 0);
    assert_int_equal(tbgw_ua_nodeid_parse("ns=1;s=Temperature", &nodes[1]), 0);
    uint32_t handles[2] = {1, 2}, st[2] = {1, 1}, ids[2] = {0, 0};
    assert_int_equal(tbgw_ua_sub_add_ids(c, sub, nodes, handles, 2, 0, st, ids), 0);
    assert_int_equal(st[0], 0);
    assert_int_equal(st[1], 0);
    assert_true(ids[0] != ids[1]);
    pump(c, 1000);
    assert_true(s.counter >= 2); /* Counter changes every 200 ms */
    assert_int_equal(s.temperature, 1);
    /* deleting the Counter's item stops its notifications; Temperature's item stays */
    uint32_t dst = 1;
    assert_int_equal(tbgw_ua_sub_remove(c, sub, &ids[0], 1, &dst), 0);
    assert_int_equal(dst, 0);
    pump(c, 300); /* a publish response already on its way may still carry one */
    int after = s.counter;
    pump(c, 1000);
    assert_int_equal(s.counter, after);
    /* an id that is no longer there: a per-item status, not a failure of the call */
    assert_int_equal(tbgw_ua_sub_remove(c, sub, &ids[0], 1, &dst), 0);
    assert_int_equal(dst & 0xFFFF0000u, 0x80420000u); /* BadMonitoredItemIdInvalid */
    /* adding the Counter again brings it back in the same subscription */
    handles[0] = 3;
    assert_int_equal(tbgw_ua_sub_add_ids(c, sub, nodes, handles, 1, 0, st, ids), 0);
    assert_int_equal(st[0], 0);
    uint32_t bad_sub_st = 0;
    assert_int_equal(tbgw_ua_sub_remove(c, sub + 1000, &ids[1], 1, &bad_sub_st), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_client_last_status(c) & 0xFFFF0000u, 0x80280000u); /* BadSubscriptionIdInvalid */
    tbgw_ua_nodeid_clear(&nodes[0]);
    tbgw_ua_nodeid_clear(&nodes[1]);
    tbgw_ua_client_free(c);
}

typedef struct yields {
    int n, fail_at;
    tbgw_ua_client *c; /* when set, each yield reads the server state with it */
} yields;

static int count_yield(void *ctx) {
    yields *y = ctx;
    if (y->c) {
        tbgw_ua_nodeid id = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_SERVER_STATE);
        tbgw_ua_datavalue dv;
        assert_int_equal(tbgw_ua_read(y->c, &id, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
        assert_int_equal(dv.value.type, TBGW_UA_INT32); /* ServerState: Running = 0 */
        tbgw_ua_datavalue_clear(&dv);
    }
    return ++y->n == y->fail_at ? TBGW_ESTOPPED : 0;
}

static void test_browse_yields_between_requests(void **state) {
    (void)state;
    if (!peer.pid) skip();
    seen s = {0};
    tbgw_ua_client *c = client(&s);
    tbgw_ua_nodeid many;
    assert_int_equal(tbgw_ua_nodeid_parse("ns=1;s=Many", &many), 0);
    tbgw_ua_ref *refs;
    size_t n;
    yields y = {0, 0, c};
    /* 2500 children at 1000 per response: Browse + 2 BrowseNext, a yield before each BrowseNext, in
     * which the client serves another request */
    assert_int_equal(tbgw_ua_browse_ex(c, &many, &refs, &n, count_yield, &y), 0);
    assert_int_equal(n, 2500);
    assert_int_equal(y.n, 2);
    tbgw_ua_refs_free(refs, n);
    /* a yield's non-zero return ends the browse with that code */
    y.n = 0;
    y.fail_at = 2;
    assert_int_equal(tbgw_ua_browse_ex(c, &many, &refs, &n, count_yield, &y), TBGW_ESTOPPED);
    assert_null(refs);
    assert_int_equal(n, 0);
    assert_true(tbgw_ua_client_connected(c));
    tbgw_ua_nodeid_clear(&many);
    tbgw_ua_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_delete_monitored_items),
        cmocka_unit_test(test_decode_status_results),
        cmocka_unit_test(test_decode_create_results),
        cmocka_unit_test(test_delete_monitored_items_live),
        cmocka_unit_test(test_browse_yields_between_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
