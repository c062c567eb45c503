/* The OPC UA client stack against a real server (node-opcua, tests/peers/opcua_server.js):
 * session, browse, translate, read, write, call, subscriptions, username identity, reconnect.
 * Skipped when node or node-opcua are not installed (scripts/install-deps.sh installs them). */
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
static opcua_peer extra_peer; /* stopped by teardown even when a test fails midway */

static int setup(void **state) {
    (void)state;
    if (peer_start(&peer, 0, NULL, NULL)) {
        fprintf(stderr, "node-opcua test server not available: skipping\n");
        peer.pid = 0;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    peer_stop(&peer);
    peer_stop(&extra_peer);
    return 0;
}

typedef struct changes {
    int n;
    int64_t last;
    uint32_t handle;
    int64_t seen[256];
} changes;

static void on_data(void *ctx, uint32_t sub, uint32_t handle, const tbgw_ua_datavalue *dv) {
    (void)sub;
    changes *ch = ctx;
    if (dv->value.type == TBGW_UA_INT32 && dv->value.n == 1) {
        if (ch->n < 256) ch->seen[ch->n] = dv->value.v[0].i;
        ch->n++;
        ch->last = dv->value.v[0].i;
        ch->handle = handle;
    }
}

static tbgw_ua_client *connect_client(const char *url, const char *user, const char *pass, changes *ch) {
    tbgw_ua_client_cfg cfg = {0};
    cfg.url = url;
    cfg.timeout_ms = 5000;
    cfg.username = user;
    cfg.password = pass;
    cfg.on_data = on_data;
    cfg.ctx = ch;
    tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
    assert_non_null(c);
    return c;
}

static tbgw_ua_nodeid sid(const char *s) {
    tbgw_ua_nodeid id;
    assert_int_equal(tbgw_ua_nodeid_parse(s, &id), 0);
    return id;
}

static void test_services(void **state) {
    (void)state;
    if (!peer.pid) skip();
    changes ch = {0};
    tbgw_ua_client *c = connect_client(peer.url, NULL, NULL, &ch);
    tbgw_err err = {0};
    assert_int_equal(tbgw_ua_client_connect(c, &err), 0);
    assert_true(tbgw_ua_client_connected(c));

    /* browse Objects: MyObject is there */
    tbgw_ua_nodeid objects = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_OBJECTS);
    tbgw_ua_ref *refs;
    size_t n;
    assert_int_equal(tbgw_ua_browse(c, &objects, &refs, &n), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (refs[i].browse_name.name.len > 0 &&
            strcmp((char *)refs[i].browse_name.name.data, "MyObject") == 0)
            found = refs[i].browse_name.ns == 1;
    tbgw_ua_refs_free(refs, n);
    assert_true(found);

    /* translate Objects/1:MyObject/1:Temperature */
    tbgw_ua_qname path[2] = {{1, {8, (uint8_t *)"MyObject"}}, {1, {11, (uint8_t *)"Temperature"}}};
    tbgw_ua_nodeid temp;
    uint32_t st;
    assert_int_equal(tbgw_ua_translate(c, &objects, path, 2, &temp, &st), 0);
    assert_int_equal(st, 0);
    tbgw_ua_nodeid want = sid("ns=1;s=Temperature");
    assert_true(tbgw_ua_nodeid_equal(&temp, &want));
    tbgw_ua_nodeid_clear(&want);
    tbgw_ua_qname bad[1] = {{1, {7, (uint8_t *)"NoSuchX"}}};
    tbgw_ua_nodeid none;
    assert_int_equal(tbgw_ua_translate(c, &objects, bad, 1, &none, &st), 0);
    assert_true(st & 0x80000000u);

    /* read several nodes, one unknown */
    tbgw_ua_nodeid ids[4] = {temp, sid("ns=1;s=Frequency"), sid("ns=1;s=Name"), sid("ns=1;s=Missing")};
    tbgw_ua_datavalue dv[4];
    assert_int_equal(tbgw_ua_read(c, ids, 4, TBGW_UA_ATTR_VALUE, dv), 0);
    assert_int_equal(dv[0].value.type, TBGW_UA_DOUBLE);
    assert_true(dv[0].value.v[0].d == 21.5);
    assert_int_equal(dv[1].value.type, TBGW_UA_INT32);
    assert_int_equal(dv[1].value.v[0].i, 50);
    assert_int_equal(dv[2].value.type, TBGW_UA_STRING);
    assert_string_equal((char *)dv[2].value.v[0].s.data, "Demo Device");
    char nb[16];
    assert_string_equal(tbgw_ua_status_name(dv[3].status, nb), "BadNodeIdUnknown");
    for (int i = 0; i < 4; i++) tbgw_ua_datavalue_clear(&dv[i]);

    /* write Relay = true and read it back */
    tbgw_ua_nodeid relay = sid("ns=1;s=Relay");
    tbgw_ua_variant v;
    tbgw_ua_scalar one = {.u = 1};
    assert_int_equal(tbgw_ua_variant_set_scalar(&v, TBGW_UA_BOOLEAN, &one), 0);
    assert_int_equal(tbgw_ua_write(c, &relay, &v, 1, &st), 0);
    assert_int_equal(st, 0);
    tbgw_ua_variant_clear(&v);
    assert_int_equal(tbgw_ua_read(c, &relay, 1, TBGW_UA_ATTR_VALUE, dv), 0);
    assert_int_equal(dv[0].value.type, TBGW_UA_BOOLEAN);
    assert_int_equal(dv[0].value.v[0].u, 1);
    tbgw_ua_datavalue_clear(&dv[0]);
    /* a type mismatch is reported per operation */
    assert_int_equal(tbgw_ua_variant_set_string(&v, "on"), 0);
    assert_int_equal(tbgw_ua_write(c, &relay, &v, 1, &st), 0);
    assert_true(st & 0x80000000u);
    tbgw_ua_variant_clear(&v);

    /* call multiply(7, 8) */
    tbgw_ua_nodeid obj = sid("ns=1;s=MyObject"), meth = sid("ns=1;s=multiply");
    tbgw_ua_variant args[2];
    tbgw_ua_scalar a7 = {.i = 7}, a8 = {.i = 8};
    tbgw_ua_variant_set_scalar(&args[0], TBGW_UA_INT64, &a7);
    tbgw_ua_variant_set_scalar(&args[1], TBGW_UA_INT64, &a8);
    tbgw_ua_variant *outs;
    size_t nout;
    assert_int_equal(tbgw_ua_call(c, &obj, &meth, args, 2, &st, &outs, &nout), 0);
    assert_int_equal(st, 0);
    assert_int_equal(nout, 1);
    assert_int_equal(outs[0].type, TBGW_UA_INT64);
    assert_int_equal(outs[0].v[0].i, 56);
    tbgw_ua_variant_clear(&outs[0]);
    free(outs);
    tbgw_ua_variant_clear(&args[0]);
    tbgw_ua_variant_clear(&args[1]);

    for (int i = 0; i < 4; i++) tbgw_ua_nodeid_clear(&ids[i]);
    tbgw_ua_nodeid_clear(&relay);
    tbgw_ua_nodeid_clear(&obj);
    tbgw_ua_nodeid_clear(&meth);
    tbgw_ua_client_disconnect(c);
    assert_false(tbgw_ua_client_connected(c));
    tbgw_ua_client_free(c);
}

/* Subscription on Counter (changes every 200 ms), reads while publishing, a lost publish response
 * recovered with Republish. */
static void test_subscription(void **state) {
    (void)state;
    if (!peer.pid) skip();
    changes ch = {0};
    tbgw_ua_client *c = connect_client(peer.url, NULL, NULL, &ch);
    tbgw_err err = {0};
    assert_int_equal(tbgw_ua_client_connect(c, &err), 0);
    uint32_t st;
    tbgw_ua_datavalue dv[1];
    /* subscription on Counter (changes every 200 ms) */
    uint32_t sub;
    assert_int_equal(tbgw_ua_sub_create(c, 100, &sub), 0);
    tbgw_ua_nodeid counter = sid("ns=1;s=Counter");
    uint32_t handle = 77;
    assert_int_equal(tbgw_ua_sub_add(c, sub, &counter, &handle, 1, 50, &st), 0);
    assert_int_equal(st, 0);
    int64_t end = tbgw_mono_ms() + 5000;
    while (ch.n < 4 && tbgw_mono_ms() < end) assert_int_equal(tbgw_ua_client_poll(c, 100), 0);
    assert_true(ch.n >= 4);
    assert_int_equal(ch.handle, 77);
    int64_t first = ch.last;
    /* a read in between while publish requests are outstanding */
    assert_int_equal(tbgw_ua_read(c, &counter, 1, TBGW_UA_ATTR_VALUE, dv), 0);
    assert_true(dv[0].value.v[0].i >= first);
    tbgw_ua_datavalue_clear(&dv[0]);
    while (ch.last == first && tbgw_mono_ms() < end + 2000) assert_int_equal(tbgw_ua_client_poll(c, 100), 0);
    assert_true(ch.last > first);
    /* a publish response lost on the way: the gap is noticed and filled with Republish, so every
     * counter value arrives */
    int before = ch.n;
    tbgw_ua_client_test_drop_publish(c, 1);
    while (ch.n < before + 5 && tbgw_mono_ms() < end + 6000) assert_int_equal(tbgw_ua_client_poll(c, 100), 0);
    assert_true(ch.n >= before + 5);
    int64_t lo = ch.seen[0], hi = ch.seen[0];
    for (int i = 0; i < ch.n && i < 256; i++) {
        if (ch.seen[i] < lo) lo = ch.seen[i];
        if (ch.seen[i] > hi) hi = ch.seen[i];
    }
    for (int64_t cv = lo; cv <= hi; cv++) {
        int present = 0;
        for (int i = 0; i < ch.n && i < 256 && !present; i++) present = ch.seen[i] == cv;
        if (!present) fail_msg("counter value %lld missing", (long long)cv);
    }
    assert_int_equal(tbgw_ua_sub_delete(c, sub), 0);

    tbgw_ua_nodeid_clear(&counter);
    tbgw_ua_client_free(c);
}

static void test_connect_failures(void **state) {
    (void)state;
    tbgw_err err = {0};
    tbgw_ua_client *c = connect_client("opc.tcp://127.0.0.1:1/", NULL, NULL, NULL);
    assert_int_not_equal(tbgw_ua_client_connect(c, &err), 0);
    assert_non_null(strstr(err.msg, "127.0.0.1:1"));
    tbgw_ua_client_free(c);
    c = connect_client("http://x", NULL, NULL, NULL);
    assert_int_equal(tbgw_ua_client_connect(c, &err), TBGW_EINVAL);
    tbgw_ua_client_free(c);
}

static void test_username_and_reconnect(void **state) {
    (void)state;
    if (peer_start(&extra_peer, 0, "gw:secret", NULL)) skip();
    tbgw_err err = {0};
    /* anonymous refused, wrong password refused, right password accepted */
    tbgw_ua_client *c = connect_client(extra_peer.url, NULL, NULL, NULL);
    assert_int_not_equal(tbgw_ua_client_connect(c, &err), 0);
    tbgw_ua_client_free(c);
    c = connect_client(extra_peer.url, "gw", "wrong", NULL);
    assert_int_not_equal(tbgw_ua_client_connect(c, &err), 0);
    tbgw_ua_client_free(c);
    c = connect_client(extra_peer.url, "gw", "secret", NULL);
    assert_int_equal(tbgw_ua_client_connect(c, &err), 0);
    tbgw_ua_nodeid t = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_SERVER_STATE);
    tbgw_ua_datavalue dv;
    assert_int_equal(tbgw_ua_read(c, &t, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
    tbgw_ua_datavalue_clear(&dv);

    /* server restart: the next call fails, a reconnect creates a new session */
    int port = extra_peer.port;
    peer_stop(&extra_peer);
    assert_int_not_equal(tbgw_ua_read(c, &t, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
    assert_false(tbgw_ua_client_connected(c));
    assert_int_equal(peer_start(&extra_peer, port, "gw:secret", NULL), 0);
    assert_int_equal(tbgw_ua_client_connect(c, &err), 0);
    assert_int_equal(tbgw_ua_read(c, &t, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
    assert_int_equal(dv.value.type, TBGW_UA_INT32); /* ServerState enumeration */
    tbgw_ua_datavalue_clear(&dv);
    tbgw_ua_client_free(c);
    peer_stop(&extra_peer);
}

/* A short channel lifetime: the token is renewed before it expires and requests keep working. */
static void check_renewal(const char *cert, const char *key, const char *ca) {
    tbgw_ua_client_cfg rc = {0};
    rc.url = extra_peer.url;
    rc.timeout_ms = 5000;
    rc.username = "gw";
    rc.password = "secret";
    rc.security_policy = "Basic256Sha256";
    rc.security_mode = 3;
    rc.cert_path = cert;
    rc.key_path = key;
    rc.ca_path = ca;
    rc.channel_lifetime_ms = 2000;
    tbgw_ua_client *c = tbgw_ua_client_new(&rc);
    tbgw_err err = {0};
    assert_int_equal(tbgw_ua_client_connect(c, &err), 0);
    uint32_t first = tbgw_ua_client_token_id(c);
    tbgw_ua_nodeid t = sid("ns=1;s=Temperature");
    int renewed = 0;
    for (int64_t end = tbgw_mono_ms() + 6000; tbgw_mono_ms() < end;) {
        assert_int_equal(tbgw_ua_client_poll(c, 200), 0);
        tbgw_ua_datavalue dv;
        assert_int_equal(tbgw_ua_read(c, &t, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
        assert_true(dv.value.type == TBGW_UA_DOUBLE && dv.value.v[0].d == 21.5);
        tbgw_ua_datavalue_clear(&dv);
        renewed += tbgw_ua_client_token_id(c) != first;
    }
    assert_true(renewed > 0);
    tbgw_ua_nodeid_clear(&t);
    tbgw_ua_client_free(c);
}

static const char *other_ca_for(const char *dir) {
    static char other[256];
    snprintf(other, sizeof other, "%s/client.pem", dir); /* not the CA that signed the server */
    return other;
}

/* A CA that did not sign the server certificate: the connection is refused. */
static void check_untrusted_server(const char *cert, const char *key, const char *other) {
    tbgw_ua_client_cfg cfg = {0};
    cfg.url = extra_peer.url;
    cfg.timeout_ms = 5000;
    cfg.security_policy = "Basic256Sha256";
    cfg.security_mode = 3;
    cfg.cert_path = cert;
    cfg.key_path = key;
    cfg.ca_path = other;
    tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
    tbgw_err err = {0};
    assert_int_not_equal(tbgw_ua_client_connect(c, &err), 0);
    assert_non_null(strstr(err.msg, "not trusted"));
    tbgw_ua_client_free(c);
}

/* Every security policy with Sign and SignAndEncrypt against a server whose certificate and ours are
 * made by openssl now and signed by one CA; username identity over a secured channel; a CA that did
 * not sign the server certificate is refused. */
static void test_security_policies(void **state) {
    (void)state;
    char dir[] = "/tmp/tbgw-opcua-pki-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (peer_make_pki(dir)) skip();
    if (peer_start_pki(&extra_peer, 0, "gw:secret", NULL, dir)) skip();
    char cert[256], key[256], ca[256];
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    static const char *const policies[] = {"Basic128Rsa15", "Basic256", "Basic256Sha256",
                                           "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"};
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        for (int mode = 2; mode <= 3; mode++) {
            tbgw_ua_client_cfg cfg = {0};
            cfg.url = extra_peer.url;
            cfg.timeout_ms = 5000;
            cfg.username = "gw";
            cfg.password = "secret";
            cfg.security_policy = policies[i];
            cfg.security_mode = mode;
            cfg.cert_path = cert;
            cfg.key_path = key;
            cfg.ca_path = ca;
            tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
            tbgw_err err = {0};
            int rc = tbgw_ua_client_connect(c, &err);
            if (rc) fprintf(stderr, "%s mode %d: %s\n", policies[i], mode, err.msg);
            assert_int_equal(rc, 0);
            /* a read, and a browse large enough to take several chunks each way */
            tbgw_ua_nodeid t = sid("ns=1;s=Temperature");
            tbgw_ua_datavalue dv;
            assert_int_equal(tbgw_ua_read(c, &t, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
            assert_true(dv.value.type == TBGW_UA_DOUBLE && dv.value.v[0].d == 21.5);
            tbgw_ua_datavalue_clear(&dv);
            /* a 150 kB string takes several chunks each way */
            size_t big_len = 150000 + i * 1000 + (size_t)mode;
            char *big = malloc(big_len + 1);
            for (size_t k = 0; k < big_len; k++) big[k] = (char)('a' + (k * 7 + i) % 26);
            big[big_len] = 0;
            tbgw_ua_nodeid name = sid("ns=1;s=Name");
            tbgw_ua_variant v;
            uint32_t st = 1;
            assert_int_equal(tbgw_ua_variant_set_string(&v, big), 0);
            assert_int_equal(tbgw_ua_write(c, &name, &v, 1, &st), 0);
            assert_int_equal(st, 0);
            tbgw_ua_variant_clear(&v);
            assert_int_equal(tbgw_ua_read(c, &name, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
            assert_int_equal(dv.value.type, TBGW_UA_STRING);
            assert_int_equal(dv.value.v[0].s.len, (int32_t)big_len);
            assert_memory_equal(dv.value.v[0].s.data, big, big_len);
            tbgw_ua_datavalue_clear(&dv);
            tbgw_ua_nodeid_clear(&name);
            free(big);
            tbgw_ua_nodeid_clear(&t);
            tbgw_ua_client_free(c);
        }
    }
    check_renewal(cert, key, ca);
    check_untrusted_server(cert, key, other_ca_for(dir));
    peer_stop(&extra_peer);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services),          cmocka_unit_test(test_subscription),
        cmocka_unit_test(test_connect_failures),  cmocka_unit_test(test_username_and_reconnect),
        cmocka_unit_test(test_security_policies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
