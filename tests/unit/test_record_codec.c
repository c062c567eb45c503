/* Records (storage encoding) and the platform codec: packing, downlink parsing, RPC replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/record.h"
#include "platform/tb_codec.h"
#include "util/buf.h"

typedef struct recs {
    tbgw_buf data[64];
    size_t n;
} recs;

static int sink(void *ud, const void *rec, size_t len) {
    recs *r = ud;
    assert_true(r->n < 64);
    tbgw_buf_init(&r->data[r->n]);
    tbgw_buf_append(&r->data[r->n], rec, len);
    r->n++;
    return 0;
}

static void recs_free(recs *r) {
    for (size_t i = 0; i < r->n; i++) tbgw_buf_free(&r->data[i]);
    r->n = 0;
}

typedef struct msgs {
    char topic[16][64];
    char *payload[16];
    size_t n;
} msgs;

static int collect(void *ud, const tb_msg *m) {
    msgs *x = ud;
    assert_true(x->n < 16);
    snprintf(x->topic[x->n], 64, "%s", m->topic);
    x->payload[x->n] = strndup(m->payload, m->len);
    x->n++;
    return 0;
}

static void msgs_free(msgs *x) {
    for (size_t i = 0; i < x->n; i++) free(x->payload[i]);
    x->n = 0;
}

static void test_encode_groups_by_ts(void **state) {
    (void)state;
    tbgw_converted *c = tbgw_converted_new("Dev \"A\"", "thermo");
    tbgw_value a = tbgw_value_int(1), b = tbgw_value_double(2.5), s = tbgw_value_string("x\ny"),
               t = tbgw_value_bool(1);
    tbgw_converted_add_telemetry(c, 1000, "a", &a, NULL);
    tbgw_converted_add_telemetry(c, 2000, "b", &b, NULL);
    tbgw_converted_add_telemetry(c, 1000, "s", &s, NULL);
    tbgw_converted_add_attribute(c, "on", &t, NULL);
    recs r = {0};
    assert_int_equal(tbgw_record_encode(c, 0, 8192, sink, &r), 0);
    assert_int_equal(r.n, 1);
    tbgw_record_view v;
    assert_int_equal(tbgw_record_decode((const uint8_t *)r.data[0].p, r.data[0].len, &v), 0);
    assert_int_equal(v.name_len, strlen("Dev \"A\""));
    assert_memory_equal(v.type, "thermo", 6);
    assert_int_equal(v.datapoints, 4);
    assert_int_equal(
        v.tel_len,
        strlen("{\"ts\":1000,\"values\":{\"a\":1,\"s\":\"x\\ny\"}},{\"ts\":2000,\"values\":{\"b\":2.5}}"));
    assert_memory_equal(
        v.tel, "{\"ts\":1000,\"values\":{\"a\":1,\"s\":\"x\\ny\"}},{\"ts\":2000,\"values\":{\"b\":2.5}}",
        v.tel_len);
    assert_memory_equal(v.attr, "\"on\":true", v.attr_len);
    msgs m = {0};
    assert_int_equal(tb_codec_pack(&v, 1, 8192, NULL, NULL, collect, &m), 0);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.topic[0], "v1/gateway/attributes");
    assert_string_equal(m.payload[0], "{\"Dev \\\"A\\\"\":{\"on\":true}}");
    assert_string_equal(m.topic[1], "v1/gateway/telemetry");
    assert_string_equal(m.payload[1],
                        "{\"Dev \\\"A\\\"\":[{\"ts\":1000,\"values\":{\"a\":1,\"s\":\"x\\ny\"}},"
                        "{\"ts\":2000,\"values\":{\"b\":2.5}}]}");
    msgs_free(&m);
    recs_free(&r);
    tbgw_converted_free(c);
}

static void test_split_respects_max_payload(void **state) {
    (void)state;
    tbgw_converted *c = tbgw_converted_new("D", NULL);
    char key[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "key%03d", i);
        tbgw_value v = tbgw_value_int(i);
        tbgw_converted_add_telemetry(c, 5, key, &v, NULL);
    }
    recs r = {0};
    assert_int_equal(tbgw_record_encode(c, 0, 300, sink, &r), 0);
    assert_true(r.n > 5);
    tbgw_record_view views[64];
    uint32_t dp = 0;
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(tbgw_record_decode((const uint8_t *)r.data[i].p, r.data[i].len, &views[i]), 0);
        dp += views[i].datapoints;
    }
    assert_int_equal(dp, 200);
    msgs m = {0};
    assert_int_equal(tb_codec_pack(views, r.n, 300, NULL, NULL, collect, &m), 0);
    int seen = 0;
    for (size_t i = 0; i < m.n; i++) {
        assert_true(strlen(m.payload[i]) <= 300);
        json_t *j = json_loads(m.payload[i], 0, NULL);
        assert_non_null(j);
        json_t *arr = json_object_get(j, "D"), *e;
        size_t k;
        json_array_foreach(arr, k, e) {
            assert_int_equal(json_integer_value(json_object_get(e, "ts")), 5);
            seen += (int)json_object_size(json_object_get(e, "values"));
        }
        json_decref(j);
    }
    assert_int_equal(seen, 200);
    msgs_free(&m);
    recs_free(&r);
    tbgw_converted_free(c);
}

static void test_pack_merges_devices_and_attributes(void **state) {
    (void)state;
    recs r = {0};
    const char *names[] = {"A", "B", "A"};
    for (int i = 0; i < 3; i++) {
        tbgw_converted *c = tbgw_converted_new(names[i], NULL);
        tbgw_value v = tbgw_value_int(i);
        tbgw_converted_add_telemetry(c, 100 + i, "x", &v, NULL);
        tbgw_converted_add_attribute(c, "fw", &v, NULL);
        tbgw_record_encode(c, i == 1 ? TBGW_RECORD_OWN : 0, 8192, sink, &r);
        tbgw_converted_free(c);
    }
    tbgw_record_view views[3];
    for (int i = 0; i < 3; i++) tbgw_record_decode((const uint8_t *)r.data[i].p, r.data[i].len, &views[i]);
    msgs m = {0};
    assert_int_equal(tb_codec_pack(views, 3, 8192, NULL, NULL, collect, &m), 0);
    assert_int_equal(m.n, 4);
    /* the gateway's own device ("B" flagged own) goes to v1/devices/me */
    assert_string_equal(m.topic[0], "v1/devices/me/attributes");
    assert_string_equal(m.payload[0], "{\"fw\":1}");
    assert_string_equal(m.topic[1], "v1/devices/me/telemetry");
    assert_string_equal(m.payload[1], "[{\"ts\":101,\"values\":{\"x\":1}}]");
    /* later record wins for attributes; telemetry concatenated in order */
    assert_string_equal(m.payload[2], "{\"A\":{\"fw\":2}}");
    assert_string_equal(m.payload[3],
                        "{\"A\":[{\"ts\":100,\"values\":{\"x\":0}},{\"ts\":102,\"values\":{\"x\":2}}]}");
    msgs_free(&m);
    recs_free(&r);
}

static void test_decode_rejects_garbage(void **state) {
    (void)state;
    tbgw_record_view v;
    const uint8_t bad1[] = {'T', 0, 5, 0, 'a'};
    assert_int_not_equal(tbgw_record_decode(bad1, sizeof bad1, &v), 0);
    const uint8_t bad2[] = {'X', 0};
    assert_int_not_equal(tbgw_record_decode(bad2, sizeof bad2, &v), 0);
    assert_int_not_equal(tbgw_record_decode(bad2, 0, &v), 0);
}

static const char *rename_b(void *ud, const char *name, size_t len) {
    (void)ud;
    return len == 1 && name[0] == 'A' ? "Renamed" : NULL;
}

static void test_pack_applies_renames(void **state) {
    (void)state;
    recs r = {0};
    tbgw_converted *c = tbgw_converted_new("A", NULL);
    tbgw_value v = tbgw_value_string("on");
    tbgw_converted_add_telemetry(c, 7, "s", &v, NULL);
    tbgw_record_encode(c, 0, 8192, sink, &r);
    tbgw_converted_free(c);
    tbgw_record_view view;
    tbgw_record_decode((const uint8_t *)r.data[0].p, r.data[0].len, &view);
    msgs m = {0};
    tb_codec_pack(&view, 1, 8192, rename_b, NULL, collect, &m);
    assert_string_equal(m.payload[0], "{\"Renamed\":[{\"ts\":7,\"values\":{\"s\":\"on\"}}]}");
    msgs_free(&m);
    recs_free(&r);
}

static void test_parse_downlink(void **state) {
    (void)state;
    tb_down d;
    char err[200];
    const char *rpc = "{\"device\":\"D1\",\"data\":{\"id\":42,\"method\":\"set\",\"params\":{\"v\":1}}}";
    assert_int_equal(tb_codec_parse_down("v1/gateway/rpc", rpc, strlen(rpc), &d, err, sizeof err), 0);
    assert_int_equal(d.kind, TB_DOWN_GW_RPC);
    assert_string_equal(d.device, "D1");
    assert_int_equal(d.id, 42);
    assert_string_equal(d.method, "set");
    assert_int_equal(json_integer_value(json_object_get(d.params, "v")), 1);
    tb_down_free(&d);
    const char *own = "{\"method\":\"gateway_ping\"}";
    assert_int_equal(
        tb_codec_parse_down("v1/devices/me/rpc/request/17", own, strlen(own), &d, err, sizeof err), 0);
    assert_int_equal(d.kind, TB_DOWN_ME_RPC_REQUEST);
    assert_int_equal(d.id, 17);
    tb_down_free(&d);
    assert_int_not_equal(
        tb_codec_parse_down("v1/devices/me/rpc/request/x", own, strlen(own), &d, err, sizeof err), 0);
    tb_down_free(&d);
    assert_int_not_equal(tb_codec_parse_down("v1/gateway/rpc", "{", 1, &d, err, sizeof err), 0);
    assert_non_null(strstr(err, "invalid JSON"));
    tb_down_free(&d);
    const char *noid = "{\"device\":\"D1\",\"data\":{\"method\":\"m\"}}";
    assert_int_not_equal(tb_codec_parse_down("v1/gateway/rpc", noid, strlen(noid), &d, err, sizeof err), 0);
    tb_down_free(&d);
    const char *resp = "{\"id\":3,\"device\":\"D\",\"value\":5}";
    assert_int_equal(
        tb_codec_parse_down("v1/gateway/attributes/response", resp, strlen(resp), &d, err, sizeof err), 0);
    assert_int_equal(d.id, 3);
    assert_int_equal(json_integer_value(d.data), 5);
    tb_down_free(&d);
}

static void test_rpc_reply_shapes(void **state) {
    (void)state;
    char topic[64];
    json_t *content = json_pack("{s:{s:i}}", "result", "value", 25);
    char *p = tb_codec_rpc_reply("D", 42, content, -1, topic, sizeof topic);
    assert_string_equal(topic, "v1/gateway/rpc");
    assert_string_equal(p, "{\"device\":\"D\",\"id\":42,\"data\":{\"result\":{\"value\":25}}}");
    free(p);
    /* success_sent given: data is a JSON string; a "result" replaces the whole object */
    p = tb_codec_rpc_reply("D", 1, content, 1, topic, sizeof topic);
    assert_string_equal(p, "{\"device\":\"D\",\"id\":1,\"data\":\"{\\\"value\\\":25}\"}");
    free(p);
    p = tb_codec_rpc_reply("D", 2, NULL, 0, topic, sizeof topic);
    assert_string_equal(p, "{\"device\":\"D\",\"id\":2,\"data\":\"{\\\"success\\\":false}\"}");
    free(p);
    json_t *err = json_pack("{s:s}", "error", "boom");
    p = tb_codec_rpc_reply("D", 3, err, 0, topic, sizeof topic);
    assert_string_equal(
        p, "{\"device\":\"D\",\"id\":3,\"data\":\"{\\\"error\\\":\\\"boom\\\",\\\"success\\\":false}\"}");
    free(p);
    p = tb_codec_rpc_reply(NULL, 9, err, -1, topic, sizeof topic);
    assert_string_equal(topic, "v1/devices/me/rpc/response/9");
    assert_string_equal(p, "{\"error\":\"boom\"}");
    free(p);
    json_decref(err);
    json_decref(content);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_groups_by_ts),
        cmocka_unit_test(test_split_respects_max_payload),
        cmocka_unit_test(test_pack_merges_devices_and_attributes),
        cmocka_unit_test(test_decode_rejects_garbage),
        cmocka_unit_test(test_pack_applies_renames),
        cmocka_unit_test(test_parse_downlink),
        cmocka_unit_test(test_rpc_reply_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
