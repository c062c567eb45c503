/* The connector kit (tbgw/connkit.h) and the host's downlink descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <tbgw/connkit.h>

#include "core/config.h"
#include "core/gateway_int.h"
#include "core/registry.h"
#include "util/doc.h"
#include "util/time.h"

/* ---- a host that records replies and statistics -------------------------------------------- */

typedef struct rec_host {
    tbgw_host h;
    json_t *content;
    int success, replies;
    uint64_t errors;
    char dotted[200], msg[300]; /* the last config_warning */
} rec_host;

static int rh_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    rec_host *r = (rec_host *)h;
    (void)handle;
    json_decref(r->content);
    r->content = content;
    r->success = success;
    r->replies++;
    return 0;
}

static void rh_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    if (s == TBGW_STAT_CONNECTOR_ERRORS) ((rec_host *)h)->errors += n;
}

static void rh_warn(const tbgw_host *h, const char *dotted, const char *msg) {
    rec_host *r = (rec_host *)h;
    snprintf(r->dotted, sizeof r->dotted, "%s", dotted ? dotted : "");
    snprintf(r->msg, sizeof r->msg, "%s", msg);
}

static void rh_init(rec_host *r) {
    memset(r, 0, sizeof *r);
    r->h.abi = TBGW_CONNECTOR_ABI;
    r->h.log = tbgw_logger_get("connector.kit");
    r->h.rpc_reply = rh_reply;
    r->h.stat_add = rh_stat;
}

static void assert_content(rec_host *r, const char *want, int success) {
    char *got = json_dumps(r->content, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_string_equal(got ? got : "null", want);
    free(got);
    assert_int_equal(r->success, success);
}

/* ---- parameters ----------------------------------------------------------------------------- */

static void test_params(void **st) {
    (void)st;
    tbgw_params p;
    tbgw_err err = {0};
    assert_int_equal(
        tbgw_params_parse("type=16int; functionCode=3;;objectsCount=1;address = 5;value=a=b", 0, &p, &err),
        0);
    assert_int_equal(p.n, 5);
    assert_string_equal(tbgw_params_get(&p, "type"), "16int");
    assert_string_equal(tbgw_params_get(&p, "functionCode"), "3");
    assert_string_equal(tbgw_params_get(&p, "address"), " 5");
    assert_string_equal(tbgw_params_get(&p, "value"), "a=b");
    int64_t v = 0;
    assert_int_equal(tbgw_params_int(&p, "address", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(tbgw_params_int(&p, "type", &v), TBGW_EINVAL);
    assert_int_equal(tbgw_params_int(&p, "missing", &v), TBGW_ENOENT);
    json_t *o = tbgw_params_object(&p);
    assert_string_equal(json_string_value(json_object_get(o, "objectsCount")), "1");
    json_decref(o);
    tbgw_params_free(&p);

    assert_int_equal(tbgw_params_parse("key=a;key=b;", 0, &p, &err), 0); /* a later key overrides */
    assert_int_equal(p.n, 1);
    assert_string_equal(tbgw_params_get(&p, "key"), "b");
    tbgw_params_free(&p);

    assert_int_equal(tbgw_params_parse("", 0, &p, &err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(tbgw_params_parse("key=a;junk;", 0, &p, &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "\"junk\" is not key=value"));
    assert_int_equal(p.n, 0);
    assert_int_equal(tbgw_params_parse("key=a;junk;", TBGW_PARAMS_LENIENT, &p, &err), 0);
    assert_int_equal(p.n, 1);
    tbgw_params_free(&p);
    assert_int_equal(tbgw_params_parse(" =x", TBGW_PARAMS_LENIENT, &p, &err), TBGW_EINVAL);
    assert_non_null(strstr(err.msg, "has no key"));
    assert_int_equal(tbgw_params_parse(NULL, 0, &p, &err), TBGW_EINVAL);
}

/* ---- RPC reply forms ------------------------------------------------------------------------ */

static void test_rpc_replies(void **st) {
    (void)st;
    rec_host r;
    rh_init(&r);
    tbgw_rpc_value(&r.h, 1, json_integer(25));
    assert_content(&r, "{\"result\":{\"value\":25}}", -1);
    tbgw_rpc_result(&r.h, 1, json_string("ok"));
    assert_content(&r, "{\"result\":\"ok\"}", -1);
    tbgw_rpc_error(&r.h, 1, "Device %s not found", "X");
    assert_content(&r, "{\"error\":\"Device X not found\"}", -1);
    tbgw_rpc_failed(&r.h, 1, "timeout");
    assert_content(&r, "{\"error\":\"timeout\"}", 0);
    tbgw_rpc_success(&r.h, 1, 1);
    assert_content(&r, "null", 1);
    tbgw_rpc_success_object(&r.h, 1, 0);
    assert_content(&r, "{\"success\":false}", -1);
    assert_int_equal(r.replies, 6);
    json_decref(r.content);
}

/* ---- configuration walk --------------------------------------------------------------------- */

/* tbgw_cfg_skip_msg: reported at the field the message starts with */
static void test_skip_msg(void **st) {
    (void)st;
    rec_host r;
    rh_init(&r);
    r.h.config_warning = rh_warn;
    tbgw_cfg w;
    tbgw_cfg_init(&w, &r.h, NULL);
    tbgw_cfg_skip_msg(&w, "devices[0].attributes[1]", "value: 'quaternion' is not a type");
    assert_string_equal(r.dotted, "devices[0].attributes[1].value");
    assert_string_equal(r.msg, "'quaternion' is not a type");
    tbgw_cfg_skip_msg(&w, "m[2]", "polling.dataInHex: not hex");
    assert_string_equal(r.dotted, "m[2].polling.dataInHex");
    tbgw_cfg_skip_msg(&w, "m[2]", "expression@4: unexpected '*'"); /* at that character */
    assert_string_equal(r.dotted, "m[2].expression@4");
    assert_string_equal(r.msg, "unexpected '*'");
    tbgw_cfg_skip_msg(&w, "m[2]", "out of memory");
    assert_string_equal(r.dotted, "m[2]");
    assert_string_equal(r.msg, "out of memory");
    tbgw_cfg_skip_msg(&w, "m[2]", "a b: c");
    assert_string_equal(r.dotted, "m[2]");
    tbgw_cfg_skip_msg(&w, "", "key: missing");
    assert_string_equal(r.dotted, "key");
    assert_int_equal(w.skipped, 6);
}

static void test_getters(void **st) {
    (void)st;
    json_t *o =
        json_pack("{s:s,s:i,s:f,s:b,s:f,s:n}", "s", "x", "i", 7, "r", 10.0, "b", 1, "half", 1.5, "nul");
    tbgw_err err = {0};
    const char *s;
    int64_t i;
    int b;
    double d;
    assert_int_equal(tbgw_cfg_get_str(o, NULL, "s", "d", &s, &err), 0);
    assert_string_equal(s, "x");
    assert_int_equal(tbgw_cfg_get_str(o, NULL, "nope", "d", &s, &err), 0);
    assert_string_equal(s, "d");
    assert_int_equal(tbgw_cfg_get_str(o, "a.b[1]", "i", "d", &s, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "a.b[1].i: expected a string, got an integer");
    assert_int_equal(tbgw_cfg_get_int(o, NULL, "i", 0, 0, 10, &i, &err), 0);
    assert_int_equal(i, 7);
    assert_int_equal(tbgw_cfg_get_int(o, NULL, "r", 0, 0, 100, &i, &err), 0); /* 10.0 is an integer */
    assert_int_equal(i, 10);
    assert_int_equal(tbgw_cfg_get_int(o, NULL, "nul", 3, 0, 100, &i, &err), 0);
    assert_int_equal(i, 3);
    assert_int_equal(tbgw_cfg_get_int(o, NULL, "half", 0, 0, 100, &i, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "half: expected an integer, got a number");
    assert_int_equal(tbgw_cfg_get_int(o, "x", "i", 0, 8, 9, &i, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "x.i: 7 is out of range 8..9");
    assert_int_equal(tbgw_cfg_get_bool(o, NULL, "b", 0, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(tbgw_cfg_get_bool(o, NULL, "s", 0, &b, &err), TBGW_EINVAL);
    assert_int_equal(tbgw_cfg_get_num(o, NULL, "half", 0, 0, 2, &d, &err), 0);
    assert_true(d == 1.5);
    assert_int_equal(tbgw_cfg_get_num(o, NULL, "half", 0, 2, 3, &d, &err), TBGW_EINVAL);
    json_decref(o);

    /* numbers as the reference's files carry them */
    o = json_pack("{s:s,s:s,s:s,s:f,s:b,s:i}", "port", " 502", "t", "2.5", "junk", "12a", "trunc", 4000.7,
                  "yes", 1, "neg", -1);
    assert_int_equal(tbgw_cfg_get_int(o, "srv", "port", 0, 0, 65535, &i, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "srv.port: expected an integer, got a string");
    assert_int_equal(tbgw_cfg_get_int_ex(o, "srv", "port", 0, 0, 65535, TBGW_CFG_NUM_STRING, &i, &err), 0);
    assert_int_equal(i, 502);
    assert_int_equal(tbgw_cfg_get_int_ex(o, NULL, "junk", 0, 0, 100, TBGW_CFG_NUM_STRING, &i, &err),
                     TBGW_EINVAL);
    assert_string_equal(err.msg, "junk: expected an integer, got a string");
    assert_int_equal(tbgw_cfg_get_int_ex(o, NULL, "t", 0, 0, 100, TBGW_CFG_NUM_STRING, &i, &err),
                     TBGW_EINVAL);
    assert_int_equal(
        tbgw_cfg_get_int_ex(o, NULL, "t", 0, 0, 100, TBGW_CFG_NUM_STRING | TBGW_CFG_NUM_TRUNC, &i, &err), 0);
    assert_int_equal(i, 2);
    assert_int_equal(tbgw_cfg_get_int(o, NULL, "trunc", 0, 0, 1 << 20, &i, &err), TBGW_EINVAL);
    assert_int_equal(tbgw_cfg_get_int_ex(o, NULL, "trunc", 0, 0, 1 << 20, TBGW_CFG_NUM_TRUNC, &i, &err), 0);
    assert_int_equal(i, 4000);
    assert_int_equal(tbgw_cfg_get_int(o, NULL, "yes", 0, 0, 1, &i, &err), TBGW_EINVAL);
    assert_int_equal(tbgw_cfg_get_int_ex(o, NULL, "yes", 0, 0, 1, TBGW_CFG_NUM_BOOL, &i, &err), 0);
    assert_int_equal(i, 1);
    assert_int_equal(tbgw_cfg_get_int(o, "x", "neg", 0, 1, INT64_MAX, &i, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "x.neg: -1 is below the minimum 1");
    assert_int_equal(tbgw_cfg_get_num(o, NULL, "t", 0, 0, 10, &d, &err), TBGW_EINVAL);
    assert_string_equal(err.msg, "t: expected a number, got a string");
    assert_int_equal(tbgw_cfg_get_num_ex(o, NULL, "t", 0, 0, 10, TBGW_CFG_NUM_STRING, &d, &err), 0);
    assert_true(d == 2.5);
    assert_int_equal(tbgw_cfg_get_num_ex(o, NULL, "junk", 0, 0, 10, TBGW_CFG_NUM_STRING, &d, &err),
                     TBGW_EINVAL);
    json_decref(o);
}

/* ---- a list of connector structs ------------------------------------------------------------- */

typedef struct item {
    char *name;
    int64_t n;
} item;

static int warnings;
static char last_warning[400];

static void rec_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s: %s", dotted ? dotted : "", msg);
}

static int item_parse(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud;
    item *it = slot;
    const char *name;
    if (tbgw_cfg_get_str(e, path, "name", NULL, &name, err) < 0) return TBGW_EINVAL;
    it->name = strdup(name ? name : "?"); /* freed by item_drop when the entry is refused below */
    if (tbgw_cfg_get_int(e, path, "n", 0, 0, 9, &it->n, err) < 0) return TBGW_EINVAL;
    if (it->n == 7) return tbgw_err_set(err, TBGW_EINVAL, "seven: not wanted"); /* relative to the entry */
    return 0;
}

static void item_drop(void *slot) {
    free(((item *)slot)->name);
}

/* A walk on a host that records its config warnings. */
static void warn_host(rec_host *r, tbgw_cfg *w, tbgw_err *err) {
    rh_init(r);
    r->h.config_warning = rec_warning;
    memset(err, 0, sizeof *err);
    tbgw_cfg_init(w, &r->h, err);
}

static void test_list(void **st) {
    (void)st;
    rec_host r;
    tbgw_err err;
    tbgw_cfg w;
    warn_host(&r, &w, &err);
    json_t *o = json_loads("{\"items\": [{\"name\": \"a\", \"n\": 1}, {\"name\": 5}, {\"name\": \"b\", "
                           "\"n\": 70}, 3, {\"name\": \"c\", \"n\": 7}, {\"name\": \"d\", \"n\": 2}], "
                           "\"none\": [], \"bad\": {}}",
                           0, NULL);
    item *items;
    size_t n;
    assert_int_equal(
        tbgw_cfg_list(&w, o, "top", "items", sizeof *items, (void **)&items, &n, item_parse, item_drop, NULL),
        2);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].name, "a");
    assert_string_equal(items[1].name, "d");
    assert_int_equal(items[1].n, 2);
    assert_int_equal(warnings, 4);
    assert_int_equal(w.skipped, 4);
    /* the last one refused: reported at the entry, its message relative to it */
    assert_string_equal(last_warning, "top.items[4]: seven: not wanted");
    for (size_t i = 0; i < n; i++) item_drop(&items[i]);
    free(items);
    assert_int_equal(
        tbgw_cfg_list(&w, o, "top", "none", sizeof *items, (void **)&items, &n, item_parse, item_drop, NULL),
        0);
    assert_null(items);
    assert_int_equal(
        tbgw_cfg_list(&w, o, "top", "bad", sizeof *items, (void **)&items, &n, item_parse, item_drop, NULL),
        TBGW_EINVAL);
    assert_string_equal(err.msg, "top.bad: expected a list, got an object");
    free(items);
    json_decref(o);
}

static int field_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud,
                       tbgw_err *err) {
    (void)w, (void)e, (void)index, (void)ud;
    return tbgw_err_set(err, TBGW_EINVAL, "%s.value@3: bad expression", path); /* a full path inside */
}

static void test_skip_at_field(void **st) {
    (void)st;
    rec_host r;
    tbgw_err err;
    tbgw_cfg w;
    warn_host(&r, &w, &err);
    json_t *o = json_loads("{\"k\": [{}]}", 0, NULL);
    assert_int_equal(tbgw_cfg_each(&w, o, "m[1]", "k", field_entry, NULL), 0);
    assert_string_equal(last_warning, "m[1].k[0].value@3: bad expression"); /* located at the field */
    json_decref(o);
}

static const char *DEVICES =
    "{\n"
    "  \"devices\": [\n"
    "    {\"deviceName\": \"A\", \"deviceType\": \"meter\",\n"
    "     \"reportStrategy\": {\"type\": \"ON_CHANGE\"},\n"
    "     \"timeseries\": [{\"key\": \"t\", \"type\": \"int\"},\n"
    "                    {\"type\": \"int\"},\n"
    "                    {\"tag\": \"p\", \"reportStrategy\": {\"type\": \"BOGUS\"}},\n"
    "                    {\"tag\": \"q\", \"reportStrategy\": {\"type\": \"ON_REPORT_PERIOD\", "
    "\"reportPeriod\": 500}}],\n"
    "     \"attributeUpdates\": [{\"attributeOnThingsBoard\": \"sp\"}],\n"
    "     \"rpc\": [{\"method\": \"reset\"}, 5]},\n"
    "    {\"deviceType\": \"nameless\"},\n"
    "    {\"name\": \"B\", \"attributes\": {\"not\": \"a list\"}},\n"
    "    \"text\"\n"
    "  ]\n"
    "}\n";

typedef struct devs {
    tbgw_cfg_device v[4];
    size_t n;
} devs;

static int dev_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    devs *d = ud;
    assert_int_equal(index, d->n);
    if (tbgw_cfg_device_parse(w, e, path, &d->v[d->n], err) < 0) return TBGW_EINVAL;
    d->n++;
    return 0;
}

/* A host made by the core for a connector file: skipped entries are reported with file:line:col. */
static conn_inst *core_instance(const char *text, tbgw_doc **doc, tbgw_conn_entry *e) {
    tbgw_err err = {0};
    *doc = tbgw_doc_parse_json("kit.json", text, strlen(text), &err);
    assert_non_null(*doc);
    memset(e, 0, sizeof *e);
    e->type = "modbus";
    e->name = "Kit";
    e->id = "kit";
    e->doc = *doc;
    const char *mtext = "{\"master\":{\"slaves\":[]}}";
    tbgw_doc *mdoc = tbgw_doc_parse_json("modbus.json", mtext, strlen(mtext), &err);
    e->doc = mdoc;
    conn_inst *ci = tbgw_conn_new(NULL, e, ".", &err);
    assert_non_null(ci);
    e->doc = *doc; /* the kit reads positions from the entry's document */
    tbgw_doc_free(mdoc);
    return ci;
}

static void test_devices_and_keys(void **st) {
    (void)st;
    tbgw_doc *doc;
    tbgw_conn_entry e;
    conn_inst *ci = core_instance(DEVICES, &doc, &e);
    tbgw_err err = {0};
    tbgw_cfg w;
    tbgw_cfg_init(&w, &ci->host, &err);
    char where[128];
    assert_string_equal(tbgw_cfg_where(&w, "devices[0].timeseries[1]", where, sizeof where), "kit.json:6:21");
    devs d = {.n = 0};
    int n = tbgw_cfg_each(&w, doc->root, NULL, "devices", dev_entry, &d);
    assert_int_equal(n, 1); /* A; the nameless one, B (attributes not a list) and "text" are skipped */
    assert_int_equal(d.n, 1);
    tbgw_cfg_device *a = &d.v[0];
    assert_string_equal(a->name, "A");
    assert_string_equal(a->type, "meter");
    assert_true(a->has_rs && a->rs.type == TBGW_RS_ON_CHANGE);
    assert_int_equal(a->timeseries.n, 2); /* t and q; the nameless key and p (bad strategy) skipped */
    assert_string_equal(a->timeseries.v[0].key, "t");
    assert_string_equal(a->timeseries.v[0].type, "int");
    assert_false(a->timeseries.v[0].has_rs);
    assert_string_equal(a->timeseries.v[1].key, "q");
    assert_true(a->timeseries.v[1].has_rs && a->timeseries.v[1].rs.period_ms == 500);
    assert_string_equal(a->timeseries.v[1].path, "devices[0].timeseries[3]");
    assert_int_equal(a->attribute_updates.n, 1);
    assert_string_equal(a->attribute_updates.v[0].key, "sp");
    assert_int_equal(a->rpc.n, 1);
    assert_string_equal(a->rpc.v[0].key, "reset");
    /* skipped: 2 keys + 1 rpc entry of A, the nameless device, B, "text" */
    assert_int_equal(w.skipped, 6);
    assert_int_equal(ci->stats[TBGW_STAT_CONNECTOR_ERRORS], 6);
    assert_int_equal(err.code, 0); /* nothing refuses the connector */
    tbgw_cfg_device_free(a);

    /* a section that is not a list refuses the connector */
    json_t *bad = json_pack("{s:s}", "devices", "none");
    assert_int_equal(tbgw_cfg_each(&w, bad, "x", "devices", dev_entry, &d), TBGW_EINVAL);
    assert_string_equal(err.msg, "x.devices: expected a list, got a string");
    json_decref(bad);
    e.doc = NULL;
    tbgw_conn_free(ci);
    tbgw_doc_free(doc);
}

/* ---- the downlink descriptor ---------------------------------------------------------------- */

static int readable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static dn_item *attr_item(void) {
    dn_item *it = calloc(1, sizeof *it);
    it->kind = DN_ATTR_UPDATE;
    it->device = strdup("D");
    it->data = json_pack("{s:i}", "k", 1);
    return it;
}

static void *post_later(void *arg) {
    tbgw_sleep_ms(50);
    tbgw_conn_post(arg, attr_item());
    return NULL;
}

static void test_downlink_fd(void **st) {
    (void)st;
    tbgw_doc *doc;
    tbgw_conn_entry e;
    conn_inst *ci = core_instance("{}", &doc, &e);
    const tbgw_host *h = &ci->host;
    assert_true(h->downlink_fd >= 0);
    assert_non_null(h->dispatch);
    assert_false(readable(h->downlink_fd));
    for (int i = 0; i < 3; i++) tbgw_conn_post(ci, attr_item());
    assert_true(readable(h->downlink_fd));
    assert_int_equal(ci->inbox_len, 3);
    assert_int_equal(h->dispatch(h), 0); /* the Modbus connector ignores updates while not running */
    assert_int_equal(ci->inbox_len, 0);
    assert_false(readable(h->downlink_fd));
    assert_int_equal(h->dispatch(h), 0); /* nothing queued: harmless */
    /* wait() sleeps until work is posted (not the whole timeout) */
    pthread_t th;
    int64_t t0 = tbgw_mono_ms();
    pthread_create(&th, NULL, post_later, ci);
    assert_int_equal(h->wait(h, 5000), 0);
    int64_t took = tbgw_mono_ms() - t0;
    pthread_join(th, NULL);
    assert_true(took >= 40 && took < 2000);
    assert_false(readable(h->downlink_fd));
    t0 = tbgw_mono_ms();
    assert_int_equal(h->wait(h, 30), 0); /* nothing: the timeout */
    assert_true(tbgw_mono_ms() - t0 >= 25);
    /* a stop keeps the descriptor readable and every dispatch answers 1 */
    assert_int_equal(tbgw_conn_stop(ci, 100), 0); /* never started: only the request */
    assert_true(readable(h->downlink_fd));
    tbgw_conn_post(ci, attr_item()); /* dropped once stopping */
    assert_int_equal(ci->inbox_len, 0);
    assert_int_equal(h->dispatch(h), 1);
    assert_true(readable(h->downlink_fd));
    assert_int_equal(h->wait(h, 1000), 1);
    e.doc = NULL;
    tbgw_conn_free(ci);
    tbgw_doc_free(doc);
}

/* tbgw_host_poll: sleeps on the connector's descriptors and downlink_fd, dispatches, stops at once. */
static void test_host_poll(void **st) {
    (void)st;
    tbgw_doc *doc;
    tbgw_conn_entry e;
    conn_inst *ci = core_instance("{}", &doc, &e);
    const tbgw_host *h = &ci->host;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct pollfd pf[2] = {{.fd = p[0], .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    /* nothing: the timeout */
    int64_t t0 = tbgw_mono_ms();
    assert_int_equal(tbgw_host_poll(h, pf, 2, 30), 0);
    assert_true(tbgw_mono_ms() - t0 >= 25);
    assert_int_equal(pf[0].revents, 0);
    /* the connector's descriptor */
    assert_int_equal(write(p[1], "x", 1), 1);
    t0 = tbgw_mono_ms();
    assert_int_equal(tbgw_host_poll(h, pf, 2, 5000), 0);
    assert_true(tbgw_mono_ms() - t0 < 1000);
    assert_true(pf[0].revents & POLLIN);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    /* downlink posted later: woken at once and dispatched */
    pthread_t th;
    t0 = tbgw_mono_ms();
    pthread_create(&th, NULL, post_later, ci);
    assert_int_equal(tbgw_host_poll(h, pf, 1, 5000), 0);
    int64_t took = tbgw_mono_ms() - t0;
    pthread_join(th, NULL);
    assert_true(took >= 40 && took < 2000);
    assert_int_equal(pf[0].revents, 0);
    assert_int_equal(ci->inbox_len, 0);
    assert_false(readable(h->downlink_fd));
    /* no descriptors of its own: the downlink descriptor alone */
    t0 = tbgw_mono_ms();
    pthread_create(&th, NULL, post_later, ci);
    assert_int_equal(tbgw_host_poll(h, NULL, 0, -1), 0);
    pthread_join(th, NULL);
    assert_true(tbgw_mono_ms() - t0 < 2000);
    assert_int_equal(ci->inbox_len, 0);
    /* a host without the descriptor: slices with wait() */
    tbgw_host old = *h;
    old.dispatch = NULL;
    assert_int_equal(write(p[1], "y", 1), 1);
    assert_int_equal(tbgw_host_poll(&old, pf, 1, 5000), 0);
    assert_true(pf[0].revents & POLLIN);
    t0 = tbgw_mono_ms();
    assert_int_equal(tbgw_host_poll(&old, NULL, 0, 5000), 0);
    assert_true(tbgw_mono_ms() - t0 < 1000); /* one slice */
    /* a stop ends any sleep at once */
    assert_int_equal(tbgw_conn_stop(ci, 100), 0);
    t0 = tbgw_mono_ms();
    assert_int_equal(tbgw_host_poll(h, pf, 1, -1), 1);
    assert_int_equal(tbgw_host_poll(h, NULL, 0, 60000), 1);
    assert_true(tbgw_mono_ms() - t0 < 1000);
    close(p[0]);
    close(p[1]);
    e.doc = NULL;
    tbgw_conn_free(ci);
    tbgw_doc_free(doc);
}

/* host->offer: a chain the full ingress queue refuses stays the caller's (not dropped, not counted);
 * host->emit drops and counts it; once there is room the same chain is taken. */
static tbgw_converted *one_value(const char *dev, int64_t v) {
    tbgw_converted *c = tbgw_converted_new(dev, NULL);
    tbgw_value x = {TBGW_V_INT, {.i = v}};
    assert_int_equal(tbgw_converted_add_telemetry(c, 1, "v", &x, NULL), 0);
    return c;
}

static void test_offer_keeps_refused(void **st) {
    (void)st;
    static struct tbgw_gateway gw; /* only the ingress queue is used */
    memset(&gw, 0, sizeof gw);
    pthread_mutex_init(&gw.in_mu, NULL);
    assert_int_equal(uv_loop_init(&gw.loop), 0);
    assert_int_equal(uv_async_init(&gw.loop, &gw.async, NULL), 0);
    gw.in_cap = 1;
    tbgw_doc *doc;
    tbgw_conn_entry e;
    conn_inst *ci = core_instance("{}", &doc, &e);
    ci->gw = &gw;
    const tbgw_host *h = &ci->host;
    assert_non_null(h->offer);
    assert_int_equal(h->offer(h, one_value("a", 1)), 0); /* taken: the queue holds 1 datapoint */
    tbgw_converted *b = one_value("b", 2);
    assert_int_equal(h->offer(h, b), TBGW_EAGAIN); /* refused: b is still ours */
    assert_string_equal(b->device_name, "b");
    assert_int_equal(gw.cnt.ingress_drops, 0);
    assert_int_equal(gw.cnt.ingress_refused, 1);
    assert_int_equal(ci->stats[TBGW_STAT_CONV_DROPPED], 0);
    assert_int_equal(h->emit(h, one_value("c", 3)), TBGW_EAGAIN); /* emit: dropped and counted */
    assert_int_equal(gw.cnt.ingress_drops, 1);
    assert_int_equal(ci->stats[TBGW_STAT_CONV_DROPPED], 1);
    gw.in_cap = 10; /* room again: the kept chain is taken as it is */
    assert_int_equal(h->offer(h, b), 0);
    assert_int_equal(gw.in_weight, 2);
    assert_string_equal(gw.in_tail->data->device_name, "b");
    while (gw.in_head) {
        in_item *it = gw.in_head;
        gw.in_head = it->next;
        tbgw_in_free(it);
    }
    uv_close((uv_handle_t *)&gw.async, NULL);
    uv_run(&gw.loop, UV_RUN_DEFAULT);
    uv_loop_close(&gw.loop);
    pthread_mutex_destroy(&gw.in_mu);
    e.doc = NULL;
    tbgw_conn_free(ci);
    tbgw_doc_free(doc);
}

/* TBGW_CONNECTOR_COPIES_CONFIG: the core frees the tree of a connector that copies what it keeps (Modbus)
 * right after create() and gives an equal tree back to its readers; a connector without the flag (MQTT)
 * keeps borrowing the very tree it was given. */
static void test_copies_config_flag(void **st) {
    (void)st;
    const tbgw_connector_ops *mb = tbgw_registry_find("modbus"), *mq = tbgw_registry_find("mqtt");
    assert_non_null(mb);
    assert_non_null(mq);
    assert_true(mb->flags & TBGW_CONNECTOR_COPIES_CONFIG);
    assert_false(mq->flags & TBGW_CONNECTOR_COPIES_CONFIG);
    const char *mtext =
        "{\"master\":{\"slaves\":[{\"host\":\"127.0.0.1\",\"port\":1502,\"unitId\":1,"
        "\"deviceName\":\"M \u00fc\",\"pollPeriod\":1000,\"timeseries\":[{\"tag\":\"t\",\"type\":"
        "\"16int\",\"functionCode\":3,\"address\":0,\"multiplier\":0.1,\"variants\":{\"1\":\"one\"}}]}]},"
        "\"logLevel\":\"INFO\"}";
    tbgw_err err = {0};
    tbgw_conn_entry e;
    memset(&e, 0, sizeof e);
    e.type = "modbus";
    e.name = "M";
    e.id = "m";
    e.doc = tbgw_doc_parse_json("m.json", mtext, strlen(mtext), &err);
    assert_non_null(e.doc);
    json_t *want = json_deep_copy(e.doc->root);
    conn_inst *ci = tbgw_conn_new(NULL, &e, ".", &err);
    assert_non_null(ci);
    assert_null(e.doc->root); /* freed: the connector holds nothing of it */
    assert_non_null(e.doc->packed);
    assert_true(e.doc->packed_len < e.doc->plain_len);
    json_t *back = tbgw_doc_tree(e.doc);
    assert_true(json_equal(back, want));
    json_decref(back);
    tbgw_conn_free(ci);
    tbgw_doc_free(e.doc);
    json_decref(want);

    const char *qtext = "{\"broker\":{\"host\":\"127.0.0.1\",\"port\":1883},\"mapping\":[]}";
    e.type = "mqtt";
    e.doc = tbgw_doc_parse_json("q.json", qtext, strlen(qtext), &err);
    assert_non_null(e.doc);
    json_t *root = e.doc->root;
    ci = tbgw_conn_new(NULL, &e, ".", &err);
    if (!ci) fail_msg("mqtt: %s", err.msg);
    assert_ptr_equal(e.doc->root, root); /* still the tree create() borrowed from */
    assert_null(e.doc->packed);
    back = tbgw_doc_tree(e.doc);
    assert_ptr_equal(back, root);
    json_decref(back);
    tbgw_conn_free(ci);
    tbgw_doc_free(e.doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_config_flag),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_rpc_replies),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_skip_msg),
        cmocka_unit_test(test_devices_and_keys),
        cmocka_unit_test(test_downlink_fd),
        cmocka_unit_test(test_host_poll),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_skip_at_field),
        cmocka_unit_test(test_offer_keeps_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
