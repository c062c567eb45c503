/* Socket connector: configuration (reference example, old format adapter, errors), Python slices,
 * codecs, bytes repr, json.dumps and attribute request expressions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/socket/sock.h"
#include "convert_helpers.h"

static tbgw_host host;

static int setup(void **st) {
    (void)st;
    host.abi = TBGW_CONNECTOR_ABI;
    host.name = "Socket";
    host.type = "socket";
    host.config_dir = "/nonexistent";
    host.log = tbgw_logger_get("connector.Socket");
    host.conv_log = tbgw_logger_get("converter.Socket");
    return 0;
}

static json_t *load_ref(const char *name) {
    const char *sd = getenv("TBGW_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/reference/%s", sd ? sd : "..", name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    return j;
}

static void test_reference_example(void **st) {
    (void)st;
    json_t *j = load_ref("socket.json");
    sock_cfg c;
    tbgw_err err = {0};
    assert_int_equal(sock_config_parse(&c, j, &host, &err), 0);
    assert_int_equal(c.udp, 0);
    assert_int_equal(c.port, 50000);
    assert_int_equal((int)c.buffer_size, 1024);
    assert_int_equal((int)c.n_devices, 1);
    sock_device *d = &c.devices[0];
    assert_string_equal(d->name, "Device Example");
    assert_true(sock_device_matches(d, "10.0.0.1:5000", 13));
    assert_int_equal((int)d->n_attr_reqs, 1);
    assert_string_equal(d->attr_reqs[0].equal, "atr");
    assert_int_equal(d->attr_updates[0].enc.kind, SOCK_ENC_UTF16);
    assert_int_equal(d->rpcs[0].with_response, 1);
    tbgw_converted *out = NULL;
    const char *msg = "hello world";
    assert_int_equal(sock_convert(d, (const uint8_t *)msg, strlen(msg), 1000, &out, &err), 1);
    char *dump = conv_dump(out);
    assert_string_equal(
        dump, "Device Example/default a{name=\"hello world\",num=\"ll\"} t{1000:temp=\"hello world\","
              "1000:hum=\"he\"}");
    free(dump);
    tbgw_converted_free(out);
    /* attribute request */
    const char *req = "atrsharedName";
    assert_true(sock_attr_req_match(&d->attr_reqs[0], (const uint8_t *)req, strlen(req)));
    assert_false(sock_attr_req_match(&d->attr_reqs[0], (const uint8_t *)"at", 2));
    char **names;
    size_t n;
    assert_int_equal(sock_attr_req_names(&d->attr_reqs[0], (const uint8_t *)req, strlen(req), &names, &n), 0);
    assert_int_equal((int)n, 1);
    assert_string_equal(names[0], "sharedName");
    free(names[0]);
    free(names);
    sock_config_free(&c);
    json_decref(j);
}

static void test_old_format_adapter(void **st) {
    (void)st;
    json_t *old = load_ref("socket_old_format/old_config.json");
    json_t *nw = load_ref("socket_old_format/new_config.json");
    int was_old = 0;
    json_t *up = sock_config_upgrade(old, &was_old);
    assert_int_equal(was_old, 1);
    assert_true(json_equal(up, nw));
    json_decref(up);
    up = sock_config_upgrade(nw, &was_old);
    assert_int_equal(was_old, 0);
    assert_ptr_equal(up, nw);
    json_decref(up);
    json_decref(old);
    json_decref(nw);
}

static void bad(const char *text, const char *want) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    sock_cfg c;
    tbgw_err err = {0};
    assert_true(sock_config_parse(&c, j, &host, &err) < 0);
    if (!strstr(err.msg, want)) fail_msg("error '%s' does not contain '%s'", err.msg, want);
    json_decref(j);
}

static void test_config_errors(void **st) {
    (void)st;
    bad("{\"socket\":{\"type\":\"SCTP\"}}", "socket.type: 'SCTP' unknown");
    bad("{\"socket\":{},\"devices\":[{\"deviceName\":\"d\",\"address\":\"*\",\"reportStrategy\":{\"type\":"
        "\"SOMETIMES\"}}]}",
        "devices[0].reportStrategy.type");
    bad("{\"socket\":{\"port\":70000}}", "socket.port");
    bad("{\"socket\":{\"bufferSize\":0}}", "socket.bufferSize");
    bad("{\"socket\":{},\"devices\":[{\"address\":\"*:*\"}]}", "devices[0].deviceName: required");
    bad("{\"socket\":{},\"devices\":[{\"deviceName\":\"d\"}]}", "devices[0].address: required");
    bad("{\"socket\":{},\"devices\":[{\"deviceName\":\"d\",\"address\":\"*:*\",\"encoding\":\"klingon\"}]}",
        "devices[0].encoding: unknown encoding 'klingon'");
    bad("{\"socket\":{},\"devices\":[{\"deviceName\":\"d\",\"address\":\"(*:*\"}]}",
        "devices[0].address: '(*:*' is not a valid address pattern");
    /* bad per-key entries are skipped, not fatal */
    json_t *j =
        json_loads("{\"socket\":{},\"devices\":[{\"deviceName\":\"d\",\"address\":\"1.2.3.4:*\","
                   "\"telemetry\":[{\"byteFrom\":0},{\"key\":\"a\",\"byteFrom\":\"x\"},{\"key\":\"ok\"}],"
                   "\"attributeRequests\":[{\"type\":\"shared\",\"requestExpression\":\"${[0:3]}\","
                   "\"attributeNameExpression\":\"[3:]\"},{\"type\":\"client\",\"requestExpression\":"
                   "\"get\",\"attributeNameExpression\":\"temperature\"}]}]}",
                   0, NULL);
    sock_cfg c;
    tbgw_err err = {0};
    assert_int_equal(sock_config_parse(&c, j, &host, &err), 0);
    assert_int_equal((int)c.devices[0].n_telemetry, 1);
    assert_string_equal(c.devices[0].telemetry[0].key, "ok");
    assert_int_equal((int)c.devices[0].n_attr_reqs, 1);
    sock_attr_req *r = &c.devices[0].attr_reqs[0];
    assert_true(r->client && r->whole);
    assert_true(sock_attr_req_match(r, (const uint8_t *)"get", 3));
    assert_false(sock_attr_req_match(r, (const uint8_t *)"gets", 4));
    char **names;
    size_t n;
    assert_int_equal(sock_attr_req_names(r, (const uint8_t *)"get", 3, &names, &n), 0);
    assert_string_equal(names[0], "temperature");
    free(names[0]);
    free(names);
    assert_false(sock_device_matches(&c.devices[0], "1.2.3.5:80", 10));
    assert_false(c.devices[0].has_rs);
    /* a literal address is the downlink target until the device sends; a wildcard one has none */
    assert_string_equal(c.devices[0].last_peer, "");
    assert_true(sock_device_matches(&c.devices[0], "1.2.3.4:80", 10));
    sock_config_free(&c);
    json_decref(j);
    /* downlink entries too: a bad encoding or a missing name skips that entry only */
    j = json_loads(
        "{\"socket\":{},\"devices\":[{\"deviceName\":\"d\",\"address\":\"*\",\"serverSideRpc\":[{"
        "\"methodRPC\":\"m\",\"encoding\":\"nope\"},{\"encoding\":\"hex\"},{\"methodRPC\":\"ok\"}],"
        "\"attributeUpdates\":[{\"attributeOnThingsBoard\":\"a\",\"encoding\":\"nope\"},"
        "{\"attributeOnThingsBoard\":\"b\"}]}]}",
        0, NULL);
    assert_int_equal(sock_config_parse(&c, j, &host, &err), 0);
    assert_int_equal((int)c.devices[0].n_rpcs, 1);
    assert_string_equal(c.devices[0].rpcs[0].method, "ok");
    assert_int_equal((int)c.devices[0].n_attr_updates, 1);
    assert_string_equal(c.devices[0].attr_updates[0].attr, "b");
    sock_config_free(&c);
    json_decref(j);
    j = json_loads("{\"socket\":{},\"devices\":[{\"deviceName\":\"x\",\"address\":\"10.0.0.5:4000\"}]}", 0,
                   NULL);
    assert_int_equal(sock_config_parse(&c, j, &host, &err), 0);
    assert_string_equal(c.devices[0].last_peer, "10.0.0.5:4000");
    sock_config_free(&c);
    json_decref(j);
}

static void check_slice(const char *expr, size_t len, int want_rc, size_t wa, size_t wb) {
    sock_slice *sl;
    size_t n;
    char err[100];
    assert_int_equal(sock_slices_find(expr, &sl, &n, err, sizeof err), 1);
    size_t a = 99, b = 99;
    assert_int_equal(sock_slice_resolve(&sl[0], len, &a, &b), want_rc);
    if (!want_rc) {
        assert_int_equal((int)a, (int)wa);
        assert_int_equal((int)b, (int)wb);
    }
    free(sl);
}

static void test_slices(void **st) {
    (void)st;
    check_slice("[0:3]", 10, 0, 0, 3);
    check_slice("[3:]", 10, 0, 3, 10);
    check_slice("[:2]", 10, 0, 0, 2);
    check_slice("[:]", 10, 0, 0, 10);
    check_slice("[-3:]", 10, 0, 7, 10);
    check_slice("[-30:-8]", 10, 0, 0, 2);
    check_slice("[5:2]", 10, 0, 5, 5);
    check_slice("[8:50]", 10, 0, 8, 10);
    check_slice("[2]", 10, 0, 2, 3);
    check_slice("[-1]", 10, 0, 9, 10);
    check_slice("[10]", 10, -1, 0, 0);
    sock_slice *sl;
    size_t n;
    char err[100];
    assert_int_equal(sock_slices_find("${[0:3]==atr} [3:] [ 1]", &sl, &n, err, sizeof err), 2);
    free(sl);
    assert_int_equal(sock_slices_find("[1:2:3]", &sl, &n, err, sizeof err), TBGW_EINVAL);
    assert_int_equal(sock_slices_find("plain", &sl, &n, err, sizeof err), 0);
}

static const char *dec(const char *codec, const void *p, size_t n, tbgw_buf *b) {
    sock_enc e;
    assert_int_equal(sock_enc_parse(codec, &e), 0);
    tbgw_buf_reset(b);
    assert_true(sock_decode(&e, p, n, b) >= 0);
    return tbgw_buf_cstr(b);
}

static void test_codecs(void **st) {
    (void)st;
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_string_equal(dec("utf-8", "a\0b", 3, &b), "ab");
    assert_string_equal(dec("UTF_8", "\xc3\xa9", 2, &b), "\xc3\xa9");
    assert_string_equal(dec("utf-8", "\xff\x00'", 3, &b), "b\"\\xff\\x00'\"");
    assert_string_equal(dec("utf-8", "\xed\xa0\x80", 3, &b), "b'\\xed\\xa0\\x80'"); /* surrogate */
    assert_string_equal(dec("utf-8", "\t\\\x80", 3, &b), "b'\\t\\\\\\x80'");
    assert_string_equal(dec("hex", "\x00\xab", 2, &b), "00ab");
    assert_string_equal(dec("latin-1", "caf\xe9", 4, &b), "caf\xc3\xa9");
    assert_string_equal(dec("ascii", "caf\xe9", 4, &b), "b'caf\\xe9'");
    assert_string_equal(dec("utf-16", "\xff\xfeO\0k\0", 6, &b), "Ok");
    assert_string_equal(dec("utf-16", "\xfe\xff\0O\0k", 6, &b), "Ok");
    assert_string_equal(dec("utf-16-be", "\0O\0k", 4, &b), "Ok");
    sock_enc e;
    assert_int_equal(sock_enc_parse("klingon", &e), TBGW_EINVAL);
    assert_int_equal(sock_enc_parse("utf-16", &e), 0);
    tbgw_buf_reset(&b);
    assert_int_equal(sock_encode(&e, "Ok", 2, &b), 0);
    assert_int_equal((int)b.len, 6);
    assert_memory_equal(b.p, "\xff\xfeO\0k\0", 6);
    assert_int_equal(sock_enc_parse("hex", &e), 0);
    tbgw_buf_reset(&b);
    assert_int_equal(sock_encode(&e, "0a FF", 5, &b), 0);
    assert_memory_equal(b.p, "\x0a\xff", 2);
    assert_int_equal(sock_encode(&e, "abc", 3, &b), TBGW_EINVAL);
    assert_int_equal(sock_enc_parse("ascii", &e), 0);
    tbgw_buf_reset(&b);
    assert_int_equal(sock_encode(&e, "\xc3\xa9", 2, &b), TBGW_EINVAL);
    tbgw_buf_free(&b);
}

static void dumps(const char *json, const char *want) {
    json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(sock_py_dumps(j, &b), 0);
    assert_string_equal(tbgw_buf_cstr(&b), want);
    tbgw_buf_free(&b);
    json_decref(j);
}

static void test_py_dumps(void **st) {
    (void)st;
    dumps("\"Z\xc3\xbcrich\"", "\"Z\\u00fcrich\"");
    dumps("\"\xf0\x9f\x98\x80\\n\\u0001\"", "\"\\ud83d\\ude00\\n\\u0001\"");
    dumps("{\"a\":1,\"b\":[true,null,2.5]}", "{\"a\": 1, \"b\": [true, null, 2.5]}");
    dumps("25.0", "25.0");
    dumps("1e16", "1e+16");
    dumps("123456789012345.0", "123456789012345.0");
    dumps("0.0001", "0.0001");
    dumps("0.00001", "1e-05");
    dumps("-1.5e-7", "-1.5e-07");
    dumps("0.1", "0.1");
    dumps("1e300", "1e+300");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_example),
        cmocka_unit_test(test_old_format_adapter),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_slices),
        cmocka_unit_test(test_codecs),
        cmocka_unit_test(test_py_dumps),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
