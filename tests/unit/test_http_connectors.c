/* HTTP connectors without network: configurations (the reference request.json / rest.json as they
 * are, errors naming the field), URL joining, route matching with {var}, outgoing-request templates
 * (URL quoting, JSON escaping), REST request handling (status codes, request data, values as strings)
 * and Request response conversion, through a recording host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/request/request.h"
#include "connectors/rest/rest.h"

static tbgw_host host;
static tbgw_converted *emitted;
static int attr_requests;

static int h_emit(const tbgw_host *h, tbgw_converted *chain) {
    (void)h;
    tbgw_converted **t = &emitted;
    while (*t) t = &(*t)->next;
    *t = chain;
    return 0;
}
static void h_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    (void)h, (void)s, (void)n;
}
static void h_state(const tbgw_host *h, tbgw_conn_state s, const char *t) {
    (void)h, (void)s, (void)t;
}
static int h_attrs(const tbgw_host *h, const char *d, const char *const *k, size_t n, int c,
                   uint64_t cookie) {
    (void)h, (void)cookie, (void)c;
    assert_string_equal(d, "D1");
    assert_int_equal(n, 2);
    assert_string_equal(k[0], "a1");
    assert_string_equal(k[1], "a2");
    attr_requests++;
    return 0;
}

static char warned[512];
static void h_warn(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    snprintf(warned, sizeof warned, "%s: %s", dotted ? dotted : "", msg);
}

static int setup(void **st) {
    (void)st;
    host.abi = TBGW_CONNECTOR_ABI;
    host.name = host.type = "http";
    host.config_dir = "/nonexistent";
    host.log = tbgw_logger_get("connector.HTTP");
    host.conv_log = tbgw_logger_get("converter.HTTP");
    host.emit = h_emit;
    host.stat_add = h_stat;
    host.set_state = h_state;
    host.request_attributes = h_attrs;
    host.config_warning = h_warn;
    return 0;
}

static json_t *load(const char *name) {
    char p[1024];
    const char *sd = getenv("TBGW_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests/data/reference/%s", sd ? sd : "..", name);
    json_t *j = json_load_file(p, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_request_reference_config(void **st) {
    (void)st;
    json_t *j = load("request.json");
    rq_config cfg;
    tbgw_err err = {0};
    assert_int_equal(rq_config_parse(&cfg, j, &host, &err), 0);
    assert_string_equal(cfg.host, "http://127.0.0.1:5000");
    assert_int_equal(cfg.n_maps, 3);
    assert_string_equal(cfg.maps[0].url, "http://127.0.0.1:5000/getdata");
    assert_string_equal(cfg.maps[2].url, "http://127.0.0.1:5000/devices");
    assert_int_equal(cfg.maps[0].period_ms, 5000);
    assert_int_equal(cfg.maps[0].timeout_ms, 500);
    assert_string_equal(cfg.maps[0].body, "{\"name\":\"morpheus\",\"job\":\"leader\"}");
    assert_true(cfg.maps[1].custom);
    assert_int_equal(cfg.maps[2].n_subs, 1);
    assert_false(cfg.maps[2].subs[0].unsupported); /* the reference's processingFunction compiles */
    assert_string_equal(tbgw_py_def_name(cfg.maps[2].subs[0].fn), "process_data");
    assert_string_equal(cfg.user, "user");
    assert_int_equal(cfg.n_upds, 1);
    assert_int_equal(cfg.upds[0].tries, 3);
    assert_int_equal(cfg.n_rpcs, 2);
    assert_null(cfg.rpcs[1].resp_value);
    rq_config_free(&cfg);
    json_decref(j);
}

static void expect_error(int rest, const char *text, const char *msg) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    tbgw_err err = {0};
    int rc;
    if (rest) {
        rs_config c;
        rc = rs_config_parse(&c, j, &host, &err);
    } else {
        rq_config c;
        rc = rq_config_parse(&c, j, &host, &err);
    }
    assert_int_not_equal(rc, 0);
    if (!strstr(err.msg, msg)) fail_msg("\"%s\" does not contain \"%s\"", err.msg, msg);
    json_decref(j);
}

/* A bad per-key entry is reported (config_warning) and skipped; the rest of the file is used. */
static void expect_warning(int rest, const char *text, const char *msg, size_t entries_left) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    tbgw_err err = {0};
    warned[0] = 0;
    size_t n;
    if (rest) {
        rs_config c;
        assert_int_equal(rs_config_parse(&c, j, &host, &err), 0);
        n = c.n_eps + c.n_upds + c.n_rpcs;
        rs_config_free(&c);
    } else {
        rq_config c;
        assert_int_equal(rq_config_parse(&c, j, &host, &err), 0);
        n = c.n_maps + c.n_upds + c.n_rpcs;
        rq_config_free(&c);
    }
    if (!strstr(warned, msg)) fail_msg("\"%s\" does not contain \"%s\"", warned, msg);
    assert_int_equal(n, entries_left);
    json_decref(j);
}

static void test_config_errors(void **st) {
    (void)st;
    expect_error(0, "{}", "host: missing");
    expect_error(0, "{\"host\":\"h\",\"security\":{\"type\":\"basic\"}}", "security.username: missing");
    expect_error(0, "{\"host\":\"h\",\"mapping\":{}}", "mapping: expected a list");
    expect_error(1, "{\"mapping\":[]}", "server: missing");
    expect_error(1, "{\"server\":{\"port\":\"x\"}}", "server.port: expected an integer");
    const char *good = "{\"url\":\"b\",\"converter\":{\"deviceNameJsonExpression\":\"d\"}}";
    char text[512];
    snprintf(text, sizeof text,
             "{\"host\":\"h\",\"mapping\":[{\"url\":\"a\",\"scanPeriod\":\"x\",\"converter\":{}},%s]}", good);
    expect_warning(0, text, "mapping[0].scanPeriod: expected a number of seconds", 1);
    expect_warning(0, "{\"host\":\"h\",\"mapping\":[{\"url\":\"a\",\"converter\":{\"type\":\"json\"}}]}",
                   "mapping[0].converter.deviceNameJsonExpression: missing", 0);
    expect_warning(0,
                   "{\"host\":\"h\",\"serverSideRpc\":[{\"requestUrlExpression\":\"x\"},{\"methodFilter\":"
                   "\"m\",\"requestUrlExpression\":\"x\"}]}",
                   "serverSideRpc[0].methodFilter: missing", 1);
    expect_warning(
        0,
        "{\"host\":\"h\",\"mapping\":[{\"url\":\"a\",\"subRequests\":{\"k\":{\"url\":\"u\","
        "\"processingFunction\":\"def f(): pass\"}},\"converter\":{\"deviceNameJsonExpression\":\"d\"}}]}",
        "mapping[0].subRequests.k.processingFunction@9: only a function whose body is one `return "
        "<expression>` is supported",
        1);
    expect_warning(
        0,
        "{\"host\":\"h\",\"mapping\":[{\"url\":\"a\",\"subRequests\":{\"k\":{\"url\":\"u\","
        "\"processingFunction\":\"def f(d): return d\"}},\"converter\":{\"deviceNameJsonExpression\":"
        "\"d\"}}]}",
        "mapping[0].subRequests.k.processingFunction: f() takes 1 parameter(s); it is called with two", 1);
    expect_warning(1, "{\"server\":{},\"mapping\":[{\"endpoint\":\"/a\",\"converter\":{}}]}",
                   "mapping[0].HTTPMethods: missing", 0);
    expect_warning(1, "{\"server\":{},\"mapping\":[{\"endpoint\":\"/a\",\"HTTPMethods\":[\"FETCH\"]}]}",
                   "mapping[0].HTTPMethods[0]: not an HTTP method", 0);
    expect_warning(
        1,
        "{\"server\":{},\"requestsMapping\":{\"attributeUpdates\":[{\"requestUrlExpression\":\"u\","
        "\"security\":{\"type\":\"oauth\"}},{\"requestUrlExpression\":\"v\"}]}}",
        "requestsMapping.attributeUpdates[0].security.type", 1);
}

static void test_join_and_routes(void **st) {
    (void)st;
    char *u = rq_join_url("http://h:1", "a/b");
    assert_string_equal(u, "http://h:1/a/b");
    free(u);
    u = rq_join_url("http://h:1", "/a");
    assert_string_equal(u, "http://h:1/a");
    free(u);
    u = rq_join_url("http://h:1", "https://x/y");
    assert_string_equal(u, "https://x/y");
    free(u);
    json_t *j =
        json_loads("{\"server\":{},\"mapping\":[{\"endpoint\":\"/dev/{name}/data\",\"HTTPMethods\":"
                   "[\"POST\"],\"converter\":{\"deviceInfo\":{\"deviceNameExpression\":\"${name}\"}}}]}",
                   0, NULL);
    rs_config cfg;
    tbgw_err err = {0};
    assert_int_equal(rs_config_parse(&cfg, j, &host, &err), 0);
    json_t *params = json_object();
    assert_true(rs_route_match(&cfg.eps[0], "/dev/D%201/data", params));
    assert_string_equal(json_string_value(json_object_get(params, "name")), "D%201");
    assert_true(rs_route_match(&cfg.eps[0], "/dev/x/data/", NULL));
    assert_false(rs_route_match(&cfg.eps[0], "/dev//data", NULL));
    assert_false(rs_route_match(&cfg.eps[0], "/dev/x/data/more", NULL));
    assert_false(rs_route_match(&cfg.eps[0], "/dev/x", NULL));
    json_decref(params);
    rs_config_free(&cfg);
    json_decref(j);
}

static char *render(const char *tmpl, const tbgw_dl_vars *v) {
    tbgw_expr *e = NULL;
    assert_int_equal(tbgw_expr_compile(tmpl, &e, NULL), 0);
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = tbgw_dl_render(e, v, &b);
    tbgw_expr_free(e);
    char *s = rc ? NULL : strdup(tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
    return s;
}

static void test_templates(void **st) {
    (void)st;
    json_t *root = json_loads("{\"params\":{\"a\":[1,2],\"s\":\"x y\"},\"id\":7}", 0, NULL);
    json_t *val = json_string("on \"now\"");
    tbgw_dl_vars v = {.device = "SD 1/2", .key = "k", .value = val, .method = "echo", .id = 7, .root = root};
    v.quote = 1;
    char *s = render("sensor/${deviceName}/${methodName}/${requestId}?v=${attributeValue}", &v);
    assert_string_equal(s, "sensor/SD%201/2/echo/7?v=on%20%22now%22");
    free(s);
    v.quote = 0;
    v.json_escape = 1;
    s = render("{\"${attributeKey}\":\"${attributeValue}\",\"p\":${params},\"s\":\"${params.s}\"}", &v);
    assert_string_equal(s, "{\"k\":\"on \\\"now\\\"\",\"p\":{\"a\":[1,2],\"s\":\"x y\"},\"s\":\"x y\"}");
    free(s);
    assert_null(render("${params.missing}", &v));
    json_decref(val);
    json_decref(root);
}

static rs_conn *rest_conn(void) {
    json_t *j = load("rest.json");
    rs_conn *c = calloc(1, sizeof *c);
    tbgw_err err = {0};
    c->host = &host;
    assert_int_equal(rs_config_parse(&c->cfg, j, &host, &err), 0);
    pthread_mutex_init(&c->mu, NULL);
    json_decref(j);
    return c;
}

static unsigned call(rs_conn *c, const char *method, const char *path, const char *ctype, const char *body,
                     const tbgw_http_kv *q, size_t nq, int *later) {
    tbgw_http_request rq = {.id = 1,
                            .method = method,
                            .path = path,
                            .client = "127.0.0.1:5",
                            .ctype = ctype,
                            .query = q,
                            .n_query = nq,
                            .body = body ? body : "",
                            .body_len = body ? strlen(body) : 0};
    tbgw_http_reply out = {0};
    int rc = rs_handle(c, &rq, &out);
    free(out.body);
    if (later) *later = rc == TBGW_HTTP_LATER;
    return rc == TBGW_HTTP_LATER ? 0 : out.status;
}

static void test_rest_requests(void **st) {
    (void)st;
    rs_conn *c = rest_conn();
    tbgw_http_kv q[] = {{"temp", "30", 2}};
    const char *body =
        "{\"sensorName\":\"SN-1\",\"sensorType\":\"T\",\"sensorModel\":\"M\",\"temp\":25.5,\"hum\":40}";
    assert_int_equal(call(c, "POST", "/my_devices", "application/json", body, q, 1, NULL), 200);
    assert_non_null(emitted);
    assert_string_equal(emitted->device_name, "SN-1");
    assert_string_equal(emitted->device_type, "T");
    for (size_t i = 0; i < emitted->n_telemetry; i++) {
        const tbgw_kv *kv = &emitted->telemetry[i];
        assert_int_equal(kv->v.type, TBGW_V_STRING); /* values as strings; the query wins */
        assert_string_equal(kv->v.u.s, !strcmp(kv->key, "temperature") ? "30" : "40");
    }
    tbgw_converted_free(emitted);
    emitted = NULL;
    assert_int_equal(call(c, "POST", "/my_devices", "application/json",
                          "[{\"sensorName\":\"L\",\"temp\":1},{}]", NULL, 0, NULL),
                     200);
    assert_string_equal(emitted->device_name, "L"); /* first element of a list */
    tbgw_converted_free(emitted);
    emitted = NULL;
    assert_int_equal(call(c, "POST", "/my_devices", "application/json", "{\"a\":", NULL, 0, NULL), 400);
    assert_int_equal(call(c, "GET", "/anon1", NULL, NULL, NULL, 0, NULL), 415);
    assert_int_equal(call(c, "PUT", "/anon1", "application/json", "{\"temp\":1}", NULL, 0, NULL), 405);
    assert_int_equal(call(c, "POST", "/nope", "application/json", "{\"temp\":1}", NULL, 0, NULL), 404);
    assert_int_equal(call(c, "POST", "/anon1", "text/plain", "hello", NULL, 0, NULL), 200);
    tbgw_converted_free(emitted);
    emitted = NULL;
    int later = 0;
    call(c, "POST", "/sharedAttributes", "application/json",
         "{\"deviceName\":\"D1\",\"attribute\":\"a1\",\"attribute1\":\"a2\"}", NULL, 0, &later);
    assert_true(later);
    assert_int_equal(attr_requests, 1);
    assert_non_null(c->pending);
    rs_server_stop(c);
    assert_null(c->pending);
    rs_config_free(&c->cfg);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void test_request_responses(void **st) {
    (void)st;
    json_t *j = load("request.json");
    rq_conn *c = calloc(1, sizeof *c);
    tbgw_err err = {0};
    c->host = &host;
    assert_int_equal(rq_config_parse(&c->cfg, j, &host, &err), 0);
    const char *body = "{\"serial\":\"S\",\"Developer\":\"Dev\",\"hum\":45.5}";
    tbgw_http_resp r = {.status = 200, .body = body, .len = strlen(body)};
    rq_poll_feed(c, &c->cfg.maps[0], &r);
    assert_non_null(emitted);
    assert_string_equal(emitted->device_name, "SD8500");
    assert_string_equal(emitted->device_type, "SD");
    assert_int_equal(emitted->n_attributes, 1);
    assert_string_equal(emitted->attributes[0].v.u.s, "S");
    assert_int_equal(emitted->n_telemetry, 2);
    assert_string_equal(emitted->telemetry[1].v.u.s, "Dev:45.5");
    assert_int_equal(c->cfg.maps[0].next_due - c->cfg.maps[0].last_start, 5000); /* start + scanPeriod */
    tbgw_converted_free(emitted);
    emitted = NULL;
    /* a list gives one device per element, values keep their types */
    const char *list = "[{\"id\":1,\"type\":\"A\"},{\"id\":2,\"type\":\"B\"}]";
    tbgw_http_resp r2 = {.status = 200, .body = list, .len = strlen(list)};
    size_t subs = c->cfg.maps[2].n_subs;
    c->cfg.maps[2].n_subs = 0; /* no HTTP client here */
    rq_poll_feed(c, &c->cfg.maps[2], &r2);
    c->cfg.maps[2].n_subs = subs;
    assert_non_null(emitted);
    assert_non_null(emitted->next);
    assert_string_equal(emitted->next->device_name, "2-B");
    assert_int_equal(emitted->attributes[0].v.type, TBGW_V_INT);
    tbgw_converted_free(emitted);
    emitted = NULL;
    /* a failure schedules a retry no later than the regular poll */
    tbgw_http_resp bad = {.status = 503, .body = "", .len = 0};
    rq_poll_feed(c, &c->cfg.maps[0], &bad);
    assert_null(emitted);
    assert_true(c->cfg.maps[0].next_due - c->cfg.maps[0].last_start <= 5000);
    assert_int_equal(c->cfg.maps[0].failures, 1);
    rq_config_free(&c->cfg);
    free(c);
    json_decref(j);
}

/* The outgoing requests' shared parser (convert/http_out.h) under both files' field names. */
static void test_http_out(void **st) {
    (void)st;
    char why[300];
    tbgw_http_out o;
    /* reserved set, Request names: value= becomes requestValueExpression, defaults fill the rest */
    json_t *p =
        json_string("requestUrlExpression=sensor/${deviceName};httpMethod=post;value=17;junk;empty=;");
    tbgw_rpc_req r = {.handle = 1, .device = "D", .id = 3, .method = "set", .params = p};
    json_t *def = json_pack("{s:f,s:i,s:s}", "timeout", 0.5, "tries", 3, "methodFilter", ".*");
    assert_int_equal(tbgw_http_out_reserved(&o, &r, 1, &rq_dialect, def, "schema", why, sizeof why), 0);
    assert_string_equal(o.method, "POST");
    assert_int_equal(o.timeout_ms, 500);
    assert_int_equal(o.tries, 3);
    assert_non_null(o.value);
    assert_string_equal(tbgw_expr_text(o.value), "17");
    tbgw_http_out_clear(&o);
    /* a set without a value, a get without a URL: the schema text */
    json_decref(p);
    r.params = p = json_string("requestUrlExpression=x;");
    assert_int_equal(tbgw_http_out_reserved(&o, &r, 1, &rq_dialect, def, "schema!", why, sizeof why),
                     TBGW_EINVAL);
    assert_string_equal(why, "schema!");
    json_decref(p);
    r.params = NULL;
    assert_int_equal(tbgw_http_out_reserved(&o, &r, 0, &rs_dialect, NULL, "none", why, sizeof why),
                     TBGW_EINVAL);
    assert_string_equal(why, "none");
    json_decref(def);
    /* REST names: valueExpression, HTTPMethod (default POST), per-entry security */
    json_t *e =
        json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s}}", "requestUrlExpression", "http://h/${deviceName}",
                  "valueExpression", "${params}", "methodFilter", "echo", "security", "type", "basic",
                  "username", "u", "password", "p", "httpHeaders", "content-type", "application/json");
    assert_int_equal(tbgw_http_out_parse(&o, e, "x", 1, &rs_dialect, NULL), 0);
    assert_string_equal(o.method, "POST");
    assert_string_equal(o.user, "u");
    assert_true(o.json_body);
    assert_true(tbgw_http_out_match(&o, 1, "any", "echo") == &o);
    assert_null(tbgw_http_out_match(&o, 1, "any", "echo2"));
    tbgw_http_out_clear(&o);
    /* the Request file has no per-entry security (ignored) and needs a methodFilter for RPC */
    tbgw_err err = {0};
    assert_int_equal(tbgw_http_out_parse(&o, e, "serverSideRpc[0]", 1, &rq_dialect, &err), 0);
    assert_null(o.user);
    assert_string_equal(o.method, "GET");
    assert_null(o.value); /* requestValueExpression, not valueExpression */
    tbgw_http_out_clear(&o);
    json_object_del(e, "methodFilter");
    assert_int_equal(tbgw_http_out_parse(&o, e, "serverSideRpc[0]", 1, &rq_dialect, &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "serverSideRpc[0].methodFilter"));
    tbgw_http_out_clear(&o);
    json_object_set_new(e, "HTTPMethod", json_string("GE T"));
    assert_int_equal(tbgw_http_out_parse(&o, e, "u[1]", 0, &rs_dialect, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "u[1].HTTPMethod: \"GE T\" is not an HTTP method");
    tbgw_http_out_clear(&o);
    json_decref(e);
    char *u = tbgw_http_join_url("http://h:1", "a/b");
    assert_string_equal(u, "http://h:1/a/b");
    free(u);
    u = tbgw_http_join_url("http://h:1", "HTTPS://x/y");
    assert_string_equal(u, "HTTPS://x/y");
    free(u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_reference_config),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_join_and_routes),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_rest_requests),
        cmocka_unit_test(test_request_responses),
        cmocka_unit_test(test_http_out),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
