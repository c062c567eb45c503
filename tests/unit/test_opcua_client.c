/* The OPC UA client stack against a real server (node-opcua, tests/peers/opcua_server.js):
 * session, browse, translate, read, write, call, subscriptions, username identity, reconnect.
 * Skipped when node or node-opcua are not installed (scripts/install-deps.sh installs them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "opcua_peer.h"
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proto/opcua/ua_argument.h"
#include "proto/opcua/ua_client.h"
#include "proto/opcua/ua_internal.h"
#include "proto/opcua/ua_secure.h"
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

    /* the InputArguments property of sum declares Int32[] values; multiply's a and b are Int64 */
    const char *methods[2] = {"ns=1;s=sum", "ns=1;s=multiply"};
    for (int m = 0; m < 2; m++) {
        tbgw_ua_nodeid mid = sid(methods[m]), prop;
        tbgw_ua_qname ia[1] = {{0, {14, (uint8_t *)"InputArguments"}}};
        assert_int_equal(tbgw_ua_translate(c, &mid, ia, 1, &prop, &st), 0);
        assert_int_equal(st, 0);
        tbgw_ua_datavalue pv;
        assert_int_equal(tbgw_ua_read(c, &prop, 1, TBGW_UA_ATTR_VALUE, &pv), 0);
        tbgw_ua_argument *decl;
        size_t ndecl;
        assert_int_equal(tbgw_ua_arguments_from_variant(&pv.value, &decl, &ndecl), 0);
        if (m == 0) {
            assert_int_equal(ndecl, 1);
            assert_string_equal(decl[0].name, "values");
            assert_int_equal(tbgw_ua_builtin_of_datatype(&decl[0].data_type), TBGW_UA_INT32);
            assert_int_equal(decl[0].value_rank, 1);
        } else {
            assert_int_equal(ndecl, 2);
            assert_string_equal(decl[1].name, "b");
            assert_int_equal(tbgw_ua_builtin_of_datatype(&decl[1].data_type), TBGW_UA_INT64);
            assert_int_equal(decl[1].value_rank, -1);
        }
        tbgw_ua_arguments_free(decl, ndecl);
        tbgw_ua_datavalue_clear(&pv);
        tbgw_ua_nodeid_clear(&prop);
        tbgw_ua_nodeid_clear(&mid);
    }

    /* inverse HasSubtype: Duration (i=290) is a subtype of Double (i=11) */
    tbgw_ua_nodeid duration = tbgw_ua_nodeid_num(0, 290);
    tbgw_ua_ref *sup;
    size_t nsup;
    assert_int_equal(tbgw_ua_browse_inverse(c, &duration, TBGW_UA_NS0_HAS_SUBTYPE, &sup, &nsup), 0);
    assert_int_equal(nsup, 1);
    assert_int_equal(sup[0].is_forward, 0);
    assert_int_equal(sup[0].node.id.num, TBGW_UA_DOUBLE);
    tbgw_ua_refs_free(sup, nsup);

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

/* A CA that did not sign the server certificate. */
static const char *other_ca_for(const char *dir) {
    static char other[256];
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem "
             "-days 30 -subj '/CN=other CA' 2>/dev/null",
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(other, sizeof other, "%s/other-ca.pem", dir);
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

static int sh(const char *dir, const char *script) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "set -e; cd '%s'; %s", dir, script);
    return system(cmd);
}

static void rm_dir(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The first certificate of a PEM file as DER (freed by the caller). */
static uint8_t *pem_der(const char *path, size_t *len) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    X509_free(x);
    assert_true(n > 0);
    uint8_t *out = malloc((size_t)n);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(65536);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

/* The CreateSession server signature check at function level: a signature made by openssl with the
 * server key over (client certificate || client nonce) passes for RSA-SHA256 and RSA-PSS-SHA256; a
 * tampered signature, other signed data, a wrong algorithm URI or a truncated signature fail. */
static void test_server_signature_check(void **state) {
    (void)state;
    char dir[] = "/tmp/tbgw-opcua-sig-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (peer_make_pki(dir)) skip();
    char path[512];
    snprintf(path, sizeof path, "%s/server.pem", dir);
    size_t srv_len, cli_len, sig_len;
    uint8_t *srv = pem_der(path, &srv_len);
    snprintf(path, sizeof path, "%s/client.pem", dir);
    uint8_t *cli = pem_der(path, &cli_len);
    uint8_t nonce[32];
    for (int i = 0; i < 32; i++) nonce[i] = (uint8_t)(i * 7 + 1);
    snprintf(path, sizeof path, "%s/signed.bin", dir);
    FILE *f = fopen(path, "wb");
    fwrite(cli, 1, cli_len, f);
    fwrite(nonce, 1, sizeof nonce, f);
    fclose(f);
    static const struct {
        const char *policy, *opts, *alg;
    } cases[] = {
        {"Basic256Sha256", "", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"},
        {"Aes256_Sha256_RsaPss", "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32",
         "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"},
    };
    for (size_t k = 0; k < 2; k++) {
        char script[512];
        snprintf(script, sizeof script, "openssl dgst -sha256 -sign server.key %s -out sig.bin signed.bin",
                 cases[k].opts);
        assert_int_equal(sh(dir, script), 0);
        snprintf(path, sizeof path, "%s/sig.bin", dir);
        uint8_t *sig = read_file(path, &sig_len);
        char cert[512], key[512], ca[512];
        snprintf(cert, sizeof cert, "%s/client.pem", dir);
        snprintf(key, sizeof key, "%s/client.key", dir);
        snprintf(ca, sizeof ca, "%s/ca.pem", dir);
        tbgw_err err = {0};
        tbgw_ua_sec *s = tbgw_ua_sec_new(tbgw_ua_policy_find(cases[k].policy), TBGW_UA_MODE_SIGN_ENCRYPT,
                                         cert, key, ca, NULL, &err);
        assert_non_null(s);
        assert_int_equal(tbgw_ua_sec_set_server_cert(s, srv, srv_len, &err), 0);
        assert_int_equal(
            tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32, cases[k].alg, sig, sig_len, &err), 0);
        assert_int_equal(tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32, NULL, sig, sig_len, &err), 0);
        /* the signature must cover exactly what the client sent */
        nonce[5] ^= 1;
        assert_int_equal(
            tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32, cases[k].alg, sig, sig_len, &err),
            TBGW_EPROTO);
        nonce[5] ^= 1;
        sig[sig_len / 2] ^= 0x40;
        memset(&err, 0, sizeof err);
        assert_int_equal(
            tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32, cases[k].alg, sig, sig_len, &err),
            TBGW_EPROTO);
        assert_non_null(strstr(err.msg, "does not verify"));
        sig[sig_len / 2] ^= 0x40;
        memset(&err, 0, sizeof err);
        assert_int_equal(tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32,
                                                   "http://www.w3.org/2000/09/xmldsig#rsa-sha1", sig, sig_len,
                                                   &err),
                         TBGW_EPROTO);
        assert_non_null(strstr(err.msg, "rsa-sha1"));
        assert_int_equal(
            tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32, cases[k].alg, sig, sig_len - 1, &err),
            TBGW_EPROTO);
        assert_int_equal(tbgw_ua_sec_verify_server(s, cli, cli_len, nonce, 32, cases[k].alg, NULL, 0, &err),
                         TBGW_EPROTO);
        tbgw_ua_sec_free(s);
        free(sig);
    }
    free(srv);
    free(cli);
    rm_dir(dir);
}

/* Revokes the server certificate: empty.crl (before) and revoked.crl (after), ca-crl.pem = the CA
 * with the revoking CRL appended. */
static int make_crls(const char *dir) {
    return sh(
        dir,
        "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\ncrlnumber=crlnumber\\n"
        "default_md=sha256\\ndefault_crl_days=30\\n' > ca.cnf; : > index.txt; echo 1000 > crlnumber; "
        "openssl ca -batch -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out empty.crl 2>/dev/null; "
        "openssl x509 -in server.pem -out server-leaf.pem; "
        "openssl ca -batch -config ca.cnf -keyfile ca.key -cert ca.pem -revoke server-leaf.pem "
        "2>/dev/null; "
        "openssl ca -batch -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out revoked.crl "
        "2>/dev/null; openssl crl -in revoked.crl -outform DER -out revoked.der; "
        "cat ca.pem revoked.crl > ca-crl.pem");
}

/* CRLs: an empty CRL accepts the server certificate; a CRL revoking it (PEM file, DER file, or
 * inside the CA file) refuses it, at function level and when connecting to node-opcua. */
static void test_crl(void **state) {
    (void)state;
    char dir[] = "/tmp/tbgw-opcua-crl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (peer_make_pki(dir) || make_crls(dir)) skip();
    char cert[512], key[512], ca[512], cacrl[512], empty[512], revoked[512], der[512], srvp[512];
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cacrl, sizeof cacrl, "%s/ca-crl.pem", dir);
    snprintf(empty, sizeof empty, "%s/empty.crl", dir);
    snprintf(revoked, sizeof revoked, "%s/revoked.crl", dir);
    snprintf(der, sizeof der, "%s/revoked.der", dir);
    snprintf(srvp, sizeof srvp, "%s/server.pem", dir);
    size_t srv_len;
    uint8_t *srv = pem_der(srvp, &srv_len);
    const tbgw_ua_policy *pol = tbgw_ua_policy_find("Basic256Sha256");
    struct {
        const char *ca, *crl;
        int ok;
    } cases[] = {{ca, NULL, 1}, {ca, empty, 1}, {ca, revoked, 0}, {ca, der, 0}, {cacrl, NULL, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tbgw_err err = {0};
        tbgw_ua_sec *s = tbgw_ua_sec_new(pol, 3, cert, key, cases[i].ca, cases[i].crl, &err);
        assert_non_null(s);
        int rc = tbgw_ua_sec_set_server_cert(s, srv, srv_len, &err);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, TBGW_EPROTO);
            assert_non_null(strstr(err.msg, "CN=server"));
            assert_non_null(strstr(err.msg, "revoked"));
        }
        tbgw_ua_sec_free(s);
    }
    /* a CRL without a CA, and a file without CRLs, are configuration errors */
    tbgw_err err = {0};
    assert_null(tbgw_ua_sec_new(pol, 3, cert, key, NULL, revoked, &err));
    assert_non_null(strstr(err.msg, "needs a CA"));
    assert_null(tbgw_ua_sec_new(pol, 3, cert, key, ca, cert, &err));
    assert_non_null(strstr(err.msg, "revocation list"));
    free(srv);
    /* end to end: the client refuses node-opcua's revoked certificate */
    if (peer_start_pki(&extra_peer, 0, NULL, NULL, dir)) skip();
    for (int k = 0; k < 2; k++) {
        tbgw_ua_client_cfg cfg = {0};
        cfg.url = extra_peer.url;
        cfg.timeout_ms = 5000;
        cfg.security_policy = "Basic256Sha256";
        cfg.security_mode = 3;
        cfg.cert_path = cert;
        cfg.key_path = key;
        cfg.ca_path = ca;
        cfg.crl_path = k ? revoked : empty;
        tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
        memset(&err, 0, sizeof err);
        int rc = tbgw_ua_client_connect(c, &err);
        if (k == 0) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_not_equal(rc, 0);
            fprintf(stderr, "refused as expected: %s\n", err.msg);
            assert_non_null(strstr(err.msg, "CN=server"));
            assert_non_null(strstr(err.msg, "revoked"));
        }
        tbgw_ua_client_free(c);
    }
    peer_stop(&extra_peer);
    rm_dir(dir);
}

/* X509 user identity against a server that allows no anonymous login: the trusted user certificate
 * logs in (secured channel, and a SecurityPolicy None channel with a token policy that signs with
 * Basic256Sha256), an untrusted one is refused with a clear error, and username still wins over
 * the certificate when configured. */
static void test_x509_identity(void **state) {
    (void)state;
    char dir[] = "/tmp/tbgw-opcua-x509-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (peer_make_pki(dir)) skip();
    /* self-signed user certificates (also used as the application certificate of the channel) */
    if (sh(dir,
           "for n in user rogue; do openssl req -x509 -newkey rsa:2048 -nodes -keyout $n.key -out $n.pem "
           "-days 30 -subj /CN=$n -addext subjectAltName=URI:urn:tbgw:client "
           "-addext keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment "
           "2>/dev/null; done"))
        skip();
    char user[512], ukey[512], rogue[512], rkey[512], ca[512];
    snprintf(user, sizeof user, "%s/user.pem", dir);
    snprintf(ukey, sizeof ukey, "%s/user.key", dir);
    snprintf(rogue, sizeof rogue, "%s/rogue.pem", dir);
    snprintf(rkey, sizeof rkey, "%s/rogue.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    peer_extra[0] = "--x509-user";
    peer_extra[1] = user;
    int started = peer_start_pki(&extra_peer, 0, "gw:secret", NULL, dir);
    peer_extra[0] = peer_extra[1] = NULL;
    if (started) skip();
    struct {
        const char *cert, *key, *policy, *username;
        int ok;
    } cases[] = {
        {user, ukey, "Basic256Sha256", NULL, 1},
        {user, ukey, "Aes256_Sha256_RsaPss", NULL, 1},
        {user, ukey, NULL, NULL, 1},
        {rogue, rkey, "Basic256Sha256", NULL, 0},
        {rogue, rkey, "Basic256Sha256", "gw", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tbgw_ua_client_cfg cfg = {0};
        cfg.url = extra_peer.url;
        cfg.timeout_ms = 5000;
        cfg.security_policy = cases[i].policy;
        cfg.security_mode = 3;
        cfg.cert_path = cases[i].cert;
        cfg.key_path = cases[i].key;
        cfg.ca_path = ca;
        cfg.user_cert_path = cases[i].cert;
        cfg.user_key_path = cases[i].key;
        cfg.username = cases[i].username;
        cfg.password = "secret";
        tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
        tbgw_err err = {0};
        int rc = tbgw_ua_client_connect(c, &err);
        if (cases[i].ok) {
            if (rc) fprintf(stderr, "case %zu: %s\n", i, err.msg);
            assert_int_equal(rc, 0);
            tbgw_ua_nodeid t = sid("ns=1;s=Temperature");
            tbgw_ua_datavalue dv;
            assert_int_equal(tbgw_ua_read(c, &t, 1, TBGW_UA_ATTR_VALUE, &dv), 0);
            assert_true(dv.value.type == TBGW_UA_DOUBLE && dv.value.v[0].d == 21.5);
            tbgw_ua_datavalue_clear(&dv);
            tbgw_ua_nodeid_clear(&t);
        } else {
            assert_int_not_equal(rc, 0);
            fprintf(stderr, "refused as expected: %s\n", err.msg);
            assert_non_null(strstr(err.msg, "X509"));
            assert_non_null(strstr(err.msg, "BadIdentityTokenRejected"));
        }
        tbgw_ua_client_free(c);
    }
    /* without a user certificate the anonymous token is refused by this server */
    tbgw_ua_client_cfg cfg = {0};
    cfg.url = extra_peer.url;
    cfg.timeout_ms = 5000;
    tbgw_ua_client *c = tbgw_ua_client_new(&cfg);
    tbgw_err err = {0};
    assert_int_not_equal(tbgw_ua_client_connect(c, &err), 0);
    assert_non_null(strstr(err.msg, "anonymous"));
    tbgw_ua_client_free(c);
    peer_stop(&extra_peer);
    rm_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_subscription),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_username_and_reconnect),
        cmocka_unit_test(test_security_policies),
        cmocka_unit_test(test_server_signature_check),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_x509_identity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
