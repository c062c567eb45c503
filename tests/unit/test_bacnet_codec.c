/* BACnet stack: tag codec, BVLL/NPDU/APDU and services against the encodings of ASHRAE 135
 * (clause 20.2 tag examples, Annex F service examples), the transaction layer (retries, segmented
 * answers acknowledged, Error/Reject/Abort texts) over a real UDP socket pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/bacnet/bn.h"
#include "proto/bacnet/bn_client.h"

#define W(name, cap)                                                                                         \
    uint8_t name##_buf[cap];                                                                                 \
    bn_w name;                                                                                               \
    bn_w_init(&name, name##_buf, sizeof name##_buf)

static void check(const bn_w *w, const uint8_t *want, size_t n) {
    assert_false(w->overflow);
    assert_int_equal(w->len, n);
    assert_memory_equal(w->p, want, n);
}
#define CHECK(w, ...)                                                                                        \
    do {                                                                                                     \
        const uint8_t want_[] = {__VA_ARGS__};                                                               \
        check(&(w), want_, sizeof want_);                                                                    \
    } while (0)

static void test_primitives_encode(void **st) {
    (void)st;
    /* clause 20.2 examples */
    {
        W(w, 16);
        bn_enc_null(&w);
        CHECK(w, 0x00);
    }
    {
        W(w, 16);
        bn_enc_bool(&w, 0);
        CHECK(w, 0x10);
    }
    {
        W(w, 16);
        bn_enc_bool(&w, 1);
        CHECK(w, 0x11);
    }
    {
        W(w, 16);
        bn_enc_unsigned(&w, 72);
        CHECK(w, 0x21, 0x48);
    }
    {
        W(w, 16);
        bn_enc_unsigned(&w, 256);
        CHECK(w, 0x22, 0x01, 0x00);
    }
    {
        W(w, 16);
        bn_enc_signed(&w, 72);
        CHECK(w, 0x31, 0x48);
    }
    {
        W(w, 16);
        bn_enc_signed(&w, -1);
        CHECK(w, 0x31, 0xFF);
    }
    {
        W(w, 16);
        bn_enc_signed(&w, -129);
        CHECK(w, 0x32, 0xFF, 0x7F);
    }
    {
        W(w, 16);
        bn_enc_real(&w, 72.0f);
        CHECK(w, 0x44, 0x42, 0x90, 0x00, 0x00);
    }
    {
        W(w, 16);
        bn_enc_double(&w, 72.0);
        CHECK(w, 0x55, 0x08, 0x40, 0x52, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    }
    {
        W(w, 16);
        bn_enc_octets(&w, (const uint8_t[]){0x43, 0x21}, 2);
        CHECK(w, 0x62, 0x43, 0x21);
    }
    {
        W(w, 64);
        bn_enc_charstr(&w, "This is a BACnet string!", 24);
        assert_int_equal(w.len, 27);
        assert_memory_equal(w.p, ((uint8_t[]){0x75, 0x19, 0x00, 'T', 'h'}), 5);
    }
    {
        W(w, 16);
        bn_enc_bitstr(&w, (const uint8_t[]){1, 0, 1, 0, 1}, 5);
        CHECK(w, 0x82, 0x03, 0xA8);
    }
    {
        W(w, 16);
        bn_enc_enum(&w, 0);
        CHECK(w, 0x91, 0x00);
    }
    /* January 24, 1991, Thursday; 17:35:45.17 */
    {
        W(w, 16);
        bn_enc_date(&w, (const uint8_t[]){91, 1, 24, 4});
        CHECK(w, 0xA4, 0x5B, 0x01, 0x18, 0x04);
    }
    {
        W(w, 16);
        bn_enc_time(&w, (const uint8_t[]){17, 35, 45, 17});
        CHECK(w, 0xB4, 0x11, 0x23, 0x2D, 0x11);
    }
    /* (Binary Input, 15) */
    {
        W(w, 16);
        bn_enc_oid(&w, 3, 15);
        CHECK(w, 0xC4, 0x00, 0xC0, 0x00, 0x0F);
    }
}

static void test_context_tags_encode(void **st) {
    (void)st;
    /* context tags; extended tag numbers and lengths */
    {
        W(w, 16);
        bn_enc_ctx_unsigned(&w, 0, 256);
        CHECK(w, 0x0A, 0x01, 0x00);
    }
    {
        W(w, 16);
        bn_enc_open(&w, 3);
        bn_enc_close(&w, 3);
        CHECK(w, 0x3E, 0x3F);
    }
    {
        W(w, 16);
        bn_enc_open(&w, 20);
        bn_enc_close(&w, 20);
        CHECK(w, 0xFE, 0x14, 0xFF, 0x14);
    }
    {
        W(w, 400);
        uint8_t big[300] = {0};
        bn_enc_octets(&w, big, 300);
        assert_memory_equal(w.p, ((uint8_t[]){0x65, 0xFE, 0x01, 0x2C}), 4);
        assert_int_equal(w.len, 304);
    }
    {
        W(w, 2);
        bn_enc_unsigned(&w, 65536);
        assert_true(w.overflow);
    }
}

static void test_primitives_decode(void **st) {
    (void)st;
    const uint8_t in[] = {0x00, 0x11, 0x22, 0x01, 0x00, 0x32, 0xFF, 0x7F, 0x44, 0x42, 0x90,
                          0x00, 0x00, 0x75, 0x04, 0x00, 'a',  'b',  'c',  0x82, 0x03, 0xA8,
                          0x91, 0x03, 0xA4, 0x5B, 0x01, 0x18, 0x04, 0xC4, 0x00, 0xC0, 0x00,
                          0x0F, 0x3E, 0x19, 0x55, 0x3F, 0x65, 0xFE, 0x00, 0x02, 0xAA, 0xBB};
    size_t off = 0;
    bn_value v;
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_int_equal(v.type, BN_NULL);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_int_equal(v.type, BN_BOOLEAN);
    assert_int_equal(v.v.b, 1);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_int_equal(v.v.u, 256);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_int_equal(v.v.i, -129);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_REAL && v.v.r == 72.0f);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_CHARSTR && v.len == 3 && memcmp(v.data, "abc", 3) == 0 && v.charset == 0);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_BITSTR && v.unused == 3 && v.len == 1 && v.data[0] == 0xA8);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_ENUM && v.v.u == 3);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_DATE && v.v.dt[0] == 91 && v.v.dt[2] == 24);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_OID && v.v.oid.type == 3 && v.v.oid.inst == 15);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_OPEN && v.ctx == 3);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_CTXPRIM && v.ctx == 1 && v.len == 1 && v.data[0] == 0x55);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_CLOSE && v.ctx == 3);
    assert_int_equal(bn_dec_item(in, sizeof in, &off, &v), 0);
    assert_true(v.type == BN_OCTETS && v.len == 2 && v.data[1] == 0xBB);
    assert_int_equal(off, sizeof in);
    /* malformed: truncated, bad lengths, reserved tags, boolean > 1 */
    const uint8_t bad[][3] = {{0x22, 0x01}, {0x44, 0, 0}, {0xD1, 0x00}, {0x12}, {0x65, 0xFF}, {0x21}, {0x80}};
    const size_t bad_len[] = {2, 3, 2, 1, 2, 1, 1};
    for (size_t i = 0; i < sizeof bad_len / sizeof bad_len[0]; i++) {
        off = 0;
        assert_int_equal(bn_dec_item(bad[i], bad_len[i], &off, &v), -1);
    }
}

static void test_bvll_npdu(void **st) {
    (void)st;
    /* Original-Unicast-NPDU carrying a local NPDU expecting a reply */
    const uint8_t f[] = {0x81, 0x0A, 0x00, 0x08, 0x01, 0x04, 0x10, 0x08};
    bn_bvll b;
    assert_int_equal(bn_bvll_decode(f, sizeof f, &b), 0);
    assert_int_equal(b.func, BN_BVLC_UNICAST);
    assert_int_equal(b.npdu_len, 4);
    bn_npdu n;
    assert_int_equal(bn_npdu_decode(b.npdu, b.npdu_len, &n), 0);
    assert_true(n.expecting_reply && !n.netmsg && n.apdu_len == 2);
    /* length field must match */
    assert_int_equal(bn_bvll_decode(f, sizeof f - 1, &b), -1);
    /* Forwarded-NPDU: originator 192.168.1.5:47809 */
    const uint8_t fw[] = {0x81, 0x04, 0x00, 0x0C, 192, 168, 1, 5, 0xBA, 0xC1, 0x01, 0x00};
    assert_int_equal(bn_bvll_decode(fw, sizeof fw, &b), 0);
    assert_int_equal(b.orig_ip, 0xC0A80105u);
    assert_int_equal(b.orig_port, 47809);
    /* Register-Foreign-Device TTL 900; Delete-FDT-Entry */
    uint8_t r[10];
    assert_int_equal(bn_bvll_register_fd(r, 900), 6);
    assert_memory_equal(r, ((uint8_t[]){0x81, 0x05, 0x00, 0x06, 0x03, 0x84}), 6);
    assert_int_equal(bn_bvll_delete_fdt(r, 0x7F000001, 47808), 10);
    assert_memory_equal(r, ((uint8_t[]){0x81, 0x08, 0x00, 0x0A, 127, 0, 0, 1, 0xBA, 0xC0}), 10);
    /* NPDU from network 5 station 0x0A (SNET/SADR) and one to network 0x0102 station 3 (DNET/DADR/hop) */
    const uint8_t routed[] = {0x01, 0x08, 0x00, 0x05, 0x01, 0x0A, 0x10, 0x00};
    assert_int_equal(bn_npdu_decode(routed, sizeof routed, &n), 0);
    assert_true(n.snet == 5 && n.slen == 1 && n.sadr[0] == 0x0A && n.apdu_len == 2);
    W(w, 32);
    bn_npdu_encode(&w, 1, 0x0102, (const uint8_t[]){3}, 1);
    CHECK(w, 0x01, 0x24, 0x01, 0x02, 0x01, 0x03, 0xFF);
    assert_int_equal(bn_npdu_decode(w.p, w.len, &n), 0);
    assert_true(n.dnet == 0x0102 && n.dlen == 1 && n.hop == 255 && n.expecting_reply);
    /* network layer message Who-Is-Router-To-Network */
    W(x, 8);
    bn_npdu_who_is_router(&x, 0);
    CHECK(x, 0x01, 0x80, 0x00);
    assert_int_equal(bn_npdu_decode(x.p, x.len, &n), 0);
    assert_true(n.netmsg && n.msgtype == 0);
    const uint8_t trunc[] = {0x01, 0x20, 0x00};
    assert_int_equal(bn_npdu_decode(trunc, sizeof trunc, &n), -1);
    /* Who-Is-Router-To-Network for network 2001; I-Am-Router-To-Network for 2001 and 3 (6.4.1, 6.4.2) */
    W(y, 8);
    bn_npdu_who_is_router(&y, 2001);
    CHECK(y, 0x01, 0x80, 0x00, 0x07, 0xD1);
    W(z, 16);
    bn_npdu_i_am_router(&z, (const uint16_t[]){2001, 3}, 2);
    CHECK(z, 0x01, 0x80, 0x01, 0x07, 0xD1, 0x00, 0x03);
    assert_int_equal(bn_npdu_decode(z.p, z.len, &n), 0);
    assert_true(n.netmsg && n.msgtype == BN_NL_I_AM_ROUTER);
    uint16_t nets[4];
    assert_int_equal(bn_npdu_i_am_router_decode(n.apdu, n.apdu_len, nets, 4), 2);
    assert_true(nets[0] == 2001 && nets[1] == 3);
    assert_int_equal(bn_npdu_i_am_router_decode(n.apdu, n.apdu_len, nets, 1), 1);
    assert_int_equal(bn_npdu_i_am_router_decode(n.apdu, 3, nets, 4), -1); /* half a network number */
    assert_int_equal(bn_npdu_i_am_router_decode(n.apdu, 0, nets, 4), 0);
    /* a segment of a confirmed request (20.1.2.11): segmented, more follows, segmented response
     * accepted; max segments > 64, max APDU 1476; invoke 5, sequence 2, proposed window 4, WriteProperty */
    W(sg, 8);
    bn_apdu_confirmed_segment(&sg, 5, BN_SVC_WRITE_PROPERTY, 1476, 2, 4, 1);
    CHECK(sg, 0x0E, 0x75, 0x05, 0x02, 0x04, 0x0F);
    bn_apdu a;
    assert_int_equal(bn_apdu_decode(sg.p, sg.len, &a), 0);
    assert_true(a.segmented && a.more_follows && a.seq == 2 && a.window == 4 && a.service == 15);
    W(sl, 8);
    bn_apdu_confirmed_segment(&sl, 5, BN_SVC_WRITE_PROPERTY, 1476, 3, 4, 0);
    CHECK(sl, 0x0A, 0x75, 0x05, 0x03, 0x04, 0x0F);
}

static void test_services_annex_f(void **st) {
    (void)st;
    /* F.3.5 ReadProperty of (Analog Input, 5) Present_Value, invoke id 1 */
    W(rq, 64);
    bn_apdu_confirmed(&rq, 1, BN_SVC_READ_PROPERTY, 1476);
    bn_rp_request(&rq, 0, 5, 85, BN_ARRAY_ALL);
    CHECK(rq, 0x02, 0x75, 0x01, 0x0C, 0x0C, 0x00, 0x00, 0x00, 0x05, 0x19, 0x55);
    /* its ACK: 72.3 */
    const uint8_t ack[] = {0x30, 0x01, 0x0C, 0x0C, 0x00, 0x00, 0x00, 0x05, 0x19,
                           0x55, 0x3E, 0x44, 0x42, 0x90, 0x99, 0x9A, 0x3F};
    bn_apdu a;
    assert_int_equal(bn_apdu_decode(ack, sizeof ack, &a), 0);
    assert_true(a.type == BN_PDU_COMPLEX_ACK && a.invoke_id == 1 && a.service == 12 && !a.segmented);
    bn_rp_ack ra;
    assert_int_equal(bn_rp_ack_decode(a.data, a.len, &ra), 0);
    assert_true(ra.type == 0 && ra.inst == 5 && ra.pr.prop == 85 && ra.pr.index == BN_ARRAY_ALL);
    size_t off = 0;
    bn_value v;
    assert_int_equal(bn_dec_item(ra.value, ra.value_len, &off, &v), 0);
    assert_true(v.type == BN_REAL && v.v.r > 72.29f && v.v.r < 72.31f);
    /* F.3.7 ReadPropertyMultiple: (Analog Input, 16) Present_Value and Reliability */
    W(rpm, 64);
    bn_propref pr[2] = {{85, BN_ARRAY_ALL}, {103, BN_ARRAY_ALL}};
    bn_rpm_object(&rpm, 0, 16, pr, 2);
    CHECK(rpm, 0x0C, 0x00, 0x00, 0x00, 0x10, 0x1E, 0x09, 0x55, 0x09, 0x67, 0x1F);
    /* F.3.5 WriteProperty (Analog Value, 1) Present_Value 180.0, invoke 0x59 */
    W(wp, 64);
    bn_put_u8(&wp, 0x00);
    bn_put_u8(&wp, 0x04);
    bn_put_u8(&wp, 0x59);
    bn_put_u8(&wp, 0x0F);
    bn_wp_begin(&wp, 2, 1, 85, BN_ARRAY_ALL);
    bn_enc_real(&wp, 180.0f);
    bn_wp_end(&wp, 0);
    CHECK(wp, 0x00, 0x04, 0x59, 0x0F, 0x0C, 0x00, 0x80, 0x00, 0x01, 0x19, 0x55, 0x3E, 0x44, 0x43, 0x34, 0x00,
          0x00, 0x3F);
    /* with priority 8 and relinquish (Null) */
    W(rel, 64);
    bn_wp_begin(&rel, 1, 1, 85, BN_ARRAY_ALL);
    bn_enc_null(&rel);
    bn_wp_end(&rel, 8);
    CHECK(rel, 0x0C, 0x00, 0x40, 0x00, 0x01, 0x19, 0x55, 0x3E, 0x00, 0x3F, 0x49, 0x08);
    /* F.1.2 I-Am from device 3: max APDU 480, segmented both, vendor 99 */
    W(iam, 32);
    bn_iam ia = {3, 480, 0, 99};
    bn_i_am(&iam, &ia);
    CHECK(iam, 0x10, 0x00, 0xC4, 0x02, 0x00, 0x00, 0x03, 0x22, 0x01, 0xE0, 0x91, 0x00, 0x21, 0x63);
    bn_iam back;
    assert_int_equal(bn_i_am_decode(iam.p + 2, iam.len - 2, &back), 0);
    assert_true(back.inst == 3 && back.max_apdu == 480 && back.segmentation == 0 && back.vendor == 99);
    /* Who-Is for devices 3..3 */
    W(wi, 16);
    bn_who_is(&wi, 3, 3);
    CHECK(wi, 0x10, 0x08, 0x09, 0x03, 0x19, 0x03);
    int64_t lo, hi;
    assert_int_equal(bn_who_is_decode(wi.p + 2, wi.len - 2, &lo, &hi), 0);
    assert_true(lo == 3 && hi == 3);
    assert_int_equal(bn_who_is_decode(NULL, 0, &lo, &hi), 0);
    assert_true(lo == -1);
    /* SubscribeCOV (process 18, Analog Input 10, confirmed, lifetime 0) */
    W(cov, 32);
    bn_subscribe_cov(&cov, 18, 0, 10, 1, 0, 0);
    CHECK(cov, 0x09, 0x12, 0x1C, 0x00, 0x00, 0x00, 0x0A, 0x29, 0x01, 0x39, 0x00);
}

typedef struct rpm_seen {
    int values, errors;
    uint32_t last_prop;
} rpm_seen;

static void on_rpm(void *ud, const bn_rpm_result *r) {
    rpm_seen *s = ud;
    if (r->is_error) {
        s->errors++;
        assert_int_equal(r->eclass, 2);
        assert_int_equal(r->ecode, 32);
    } else {
        s->values++;
    }
    s->last_prop = r->pr.prop;
}

static void test_rpm_ack(void **st) {
    (void)st;
    /* F.3.7 ACK: (AI 16) Present_Value 72.3, Reliability NO_FAULT_DETECTED; plus an error result */
    const uint8_t ack[] = {0x0C, 0x00, 0x00, 0x00, 0x10, 0x1E, 0x29, 0x55, 0x4E, 0x44,
                           0x42, 0x90, 0x99, 0x9A, 0x4F, 0x29, 0x67, 0x4E, 0x91, 0x00,
                           0x4F, 0x29, 0x1C, 0x5E, 0x91, 0x02, 0x91, 0x20, 0x5F, 0x1F};
    rpm_seen s = {0};
    assert_int_equal(bn_rpm_ack_walk(ack, sizeof ack, on_rpm, &s), 0);
    assert_int_equal(s.values, 2);
    assert_int_equal(s.errors, 1);
    assert_int_equal(s.last_prop, 28);
    for (size_t cut = 1; cut < sizeof ack; cut++) {
        rpm_seen t = {0};
        assert_int_equal(bn_rpm_ack_walk(ack, cut, on_rpm, &t), -1);
    }
}

static void test_apdu_and_texts(void **st) {
    (void)st;
    bn_apdu a;
    const uint8_t err[] = {0x50, 0x07, 0x0C, 0x91, 0x01, 0x91, 0x1F};
    assert_int_equal(bn_apdu_decode(err, sizeof err, &a), 0);
    uint32_t ec, cc;
    assert_int_equal(bn_error_decode(a.data, a.len, &ec, &cc), 0);
    bn_result r = {.status = BN_E_ERROR, .eclass = ec, .ecode = cc};
    char t[96];
    bn_result_text(&r, t, sizeof t);
    assert_string_equal(t, "error: object/unknown-object");
    r = (bn_result){.status = BN_E_REJECT, .reason = 9};
    bn_result_text(&r, t, sizeof t);
    assert_string_equal(t, "rejected: unrecognized-service");
    r = (bn_result){.status = BN_E_ABORT, .reason = 4};
    bn_result_text(&r, t, sizeof t);
    assert_string_equal(t, "aborted: segmentation-not-supported");
    const uint8_t seg[] = {0x3C, 0x05, 0x00, 0x04, 0x0C, 0xAA};
    assert_int_equal(bn_apdu_decode(seg, sizeof seg, &a), 0);
    assert_true(a.segmented && a.more_follows && a.seq == 0 && a.window == 4 && a.service == 12 &&
                a.len == 1);
    assert_int_equal(bn_apdu_decode((const uint8_t[]){0x80}, 1, &a), -1);
    assert_int_equal(bn_max_apdu_decode(5), 1476);
    assert_int_equal(bn_max_apdu_code(1024), 4);
}

static void test_enums(void **st) {
    (void)st;
    assert_int_equal(bn_object_type_parse("analogInput"), 0);
    assert_int_equal(bn_object_type_parse("analog-input"), 0);
    assert_int_equal(bn_object_type_parse("multiStateValue"), 19);
    assert_int_equal(bn_object_type_parse("multi-state-value"), 19);
    assert_int_equal(bn_object_type_parse("networkPort"), 56);
    assert_int_equal(bn_object_type_parse("600"), 600); /* proprietary numbers pass */
    assert_int_equal(bn_object_type_parse("nothing"), -1);
    assert_int_equal(bn_property_parse("presentValue"), 85);
    assert_int_equal(bn_property_parse("present-value"), 85);
    assert_int_equal(bn_property_parse("objectList"), 76);
    /* the reference's Siemens extension (vendor 7): only through the vendor table */
    assert_int_equal(bn_property_parse("descriptionList"), -1);
    assert_int_equal(bn_vendor_property_parse(7, "descriptionList"), 3121);
    assert_int_equal(bn_vendor_property_parse(0, "description-list"), 3121);
    assert_int_equal(bn_vendor_property_parse(8, "descriptionList"), -1);
    assert_string_equal(bn_vendor_property_name(7, 3121), "descriptionList");
    assert_null(bn_vendor_property_name(7, 3122));
    assert_int_equal(bn_vendor_property_owner("descriptionList"), 7);
    assert_int_equal(bn_vendor_property_owner("presentValue"), 0);
    assert_int_equal(bn_property_parse("statusFlags"), 111);
    assert_int_equal(bn_property_parse("propertyList"), 371);
    assert_int_equal(bn_property_parse("weeklySchedule"), 123);
    assert_int_equal(bn_property_parse("512"), 512);
    assert_string_equal(bn_property_name(87), "priorityArray");
    assert_null(bn_property_name(5000));
    char k[64];
    bn_kebab("binaryLightingOutput", k, sizeof k);
    assert_string_equal(k, "binary-lighting-output");
}

/* ---- the transaction layer over UDP ---- */

typedef struct done {
    int calls;
    bn_result r;
    uint8_t data[4096];
} done;

static void on_done(void *ud, const bn_result *r) {
    done *d = ud;
    d->calls++;
    d->r = *r;
    if (r->data && r->len <= sizeof d->data) memcpy(d->data, r->data, r->len);
}

static int peer_socket(uint16_t *port) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return s;
}

static ssize_t peer_recv(int s, uint8_t *buf, size_t cap, struct sockaddr_in *from, bn_client *c) {
    for (int i = 0; i < 100; i++) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, 10) > 0) {
            socklen_t sl = sizeof *from;
            return recvfrom(s, buf, cap, 0, (struct sockaddr *)from, &sl);
        }
        bn_client_poll(c, 0);
    }
    return -1;
}

static void peer_send(int s, const struct sockaddr_in *to, const uint8_t *apdu, size_t n) {
    uint8_t f[1500] = {0x81, 0x0A, 0, 0, 0x01, 0x00};
    memcpy(f + 6, apdu, n);
    bn_bvll_finish(f, n + 6, BN_BVLC_UNICAST);
    sendto(s, f, n + 6, 0, (const struct sockaddr *)to, sizeof *to);
}

static void test_client_segmented_and_retry(void **st) {
    (void)st;
    uint16_t pport;
    int ps = peer_socket(&pport);
    bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .timeout_ms = 150, .retries = 1};
    char why[100];
    bn_client *c = bn_client_open(&o, NULL, why, sizeof why);
    assert_non_null(c);
    bn_addr dst = {.ip = 0x7F000001, .port = pport};
    uint8_t req[16];
    bn_w w;
    bn_w_init(&w, req, sizeof req);
    bn_rp_request(&w, 8, 1, 76, BN_ARRAY_ALL);
    done d = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_READ_PROPERTY, req, w.len, 1476, 0, on_done, &d), 0);
    uint8_t buf[1500];
    struct sockaddr_in from;
    ssize_t n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_true(n > 8);
    uint8_t invoke = buf[8];
    /* the answer in two segments: the ACK header + half the payload, then the rest */
    const uint8_t body[] = {0x0C, 0x02, 0x00, 0x00, 0x01, 0x19, 0x4C, 0x3E, 0xC4, 0x02,
                            0x00, 0x00, 0x01, 0xC4, 0x00, 0x00, 0x00, 0x05, 0x3F};
    uint8_t s1[32] = {0x3C, invoke, 0x00, 0x02, 0x0C};
    memcpy(s1 + 5, body, 10);
    peer_send(ps, &from, s1, 15);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_int_equal(n, 10); /* SegmentACK seq 0 */
    assert_memory_equal(buf + 6, ((uint8_t[]){0x40, invoke, 0x00, 0x01}), 4);
    uint8_t s2[32] = {0x38, invoke, 0x01, 0x02, 0x0C};
    memcpy(s2 + 5, body + 10, sizeof body - 10);
    peer_send(ps, &from, s2, 5 + sizeof body - 10);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_int_equal(n, 10);
    assert_memory_equal(buf + 6, ((uint8_t[]){0x40, invoke, 0x01, 0x01}), 4);
    for (int i = 0; i < 20 && !d.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.r.status, BN_OK);
    assert_int_equal(d.r.len, sizeof body);
    bn_rp_ack ra;
    assert_int_equal(bn_rp_ack_decode(d.data, d.r.len, &ra), 0);
    assert_int_equal(ra.value_len, 10);

    /* no answer: one retry, then a timeout */
    done t = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_READ_PROPERTY, req, w.len, 1476, 0, on_done, &t), 0);
    assert_true(peer_recv(ps, buf, sizeof buf, &from, c) > 0);
    assert_true(peer_recv(ps, buf, sizeof buf, &from, c) > 0); /* the retry */
    for (int i = 0; i < 100 && !t.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(t.r.status, BN_E_TIMEOUT);
    bn_client_stats cs;
    bn_client_get_stats(c, &cs);
    assert_int_equal(cs.retries, 1);
    assert_int_equal(cs.timeouts, 1);
    /* garbage is counted, not fatal */
    sendto(ps, "\x81\x0a\x00\x05\x02", 5, 0, (struct sockaddr *)&from, sizeof from);
    for (int i = 0; i < 5; i++) bn_client_poll(c, 5);
    bn_client_get_stats(c, &cs);
    assert_int_equal(cs.malformed, 1);
    bn_client_close(c);
    close(ps);
}

/* A frame from the peer as the station 10 of network 2001 behind it (SNET/SADR). */
static void peer_send_routed(int s, const struct sockaddr_in *to, const uint8_t *apdu, size_t n) {
    uint8_t f[1500] = {0x81, 0x0A, 0, 0, 0x01, 0x08, 0x07, 0xD1, 0x01, 0x0A};
    memcpy(f + 10, apdu, n);
    bn_bvll_finish(f, n + 10, BN_BVLC_UNICAST);
    sendto(s, f, n + 10, 0, (const struct sockaddr *)to, sizeof *to);
}

typedef struct routes_seen {
    int calls;
    uint16_t net;
    bn_addr router;
} routes_seen;

static void on_route(void *ud, uint16_t net, const bn_addr *router) {
    routes_seen *r = ud;
    r->calls++;
    r->net = net;
    r->router = *router;
}

/* I-Am-Router-To-Network fills the router cache; a request to a station of that network goes to the
 * router with DNET/DADR, in segments (the peer's max APDU is 128): a window at a time after each
 * SegmentACK, the missing ones again after a NAK, everything again when no SegmentACK comes. */
static void test_client_routes_and_segmented_request(void **st) {
    (void)st;
    uint16_t pport;
    int ps = peer_socket(&pport);
    bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .timeout_ms = 150, .retries = 1};
    routes_seen rs = {0};
    bn_handlers hd = {.ud = &rs, .route = on_route};
    char why[100];
    bn_client *c = bn_client_open(&o, &hd, why, sizeof why);
    assert_non_null(c);
    bn_client_set_window(c, 2);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001), .sin_port = htons(bn_client_port(c))};
    bn_addr router;
    assert_int_equal(bn_client_router_to(c, 2001, &router), -1);
    uint8_t req[300];
    for (size_t i = 0; i < sizeof req; i++) req[i] = (uint8_t)i;
    bn_addr dst = {.net = 2001, .mac_len = 1, .mac = {10}};
    done d = {0};
    assert_true(bn_client_request(c, &dst, BN_SVC_WRITE_PROPERTY, req, sizeof req, 128, 1, on_done, &d) < 0);
    const uint8_t iar[] = {0x81, 0x0A, 0x00, 0x09, 0x01, 0x80, 0x01, 0x07, 0xD1};
    sendto(ps, iar, sizeof iar, 0, (struct sockaddr *)&to, sizeof to);
    for (int i = 0; i < 50 && !rs.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(rs.calls, 1);
    assert_int_equal(rs.net, 2001);
    assert_int_equal(rs.router.port, pport);
    assert_int_equal(bn_client_router_to(c, 2001, &router), 0);
    assert_int_equal(router.ip, 0x7F000001);
    /* too large for a peer that takes no segments */
    assert_true(bn_client_request(c, &dst, BN_SVC_WRITE_PROPERTY, req, sizeof req, 128, 0, on_done, &d) < 0);
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_WRITE_PROPERTY, req, sizeof req, 128, 1, on_done, &d),
                     0);
    uint8_t buf[1500];
    struct sockaddr_in from;
    /* segment 0 alone: NPDU to 2001/10, then 0x0E, max APDU, invoke, seq 0, window 2, service, 122 octets */
    ssize_t n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_int_equal(n, 4 + 7 + 6 + 122);
    assert_memory_equal(buf + 4, ((uint8_t[]){0x01, 0x24, 0x07, 0xD1, 0x01, 0x0A, 0xFF}), 7);
    uint8_t invoke = buf[13];
    assert_memory_equal(buf + 11, ((uint8_t[]){0x0E, 0x75, invoke, 0x00, 0x02, 0x0F}), 6);
    assert_memory_equal(buf + 17, req, 122);
    /* SegmentACK 0 (server): segments 1 and 2 (the last: no more-follows bit, 56 octets) */
    peer_send_routed(ps, &from, (uint8_t[]){0x41, invoke, 0x00, 0x02}, 4);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_int_equal(n, 17 + 122);
    assert_memory_equal(buf + 11, ((uint8_t[]){0x0E, 0x75, invoke, 0x01, 0x02, 0x0F}), 6);
    assert_memory_equal(buf + 17, req + 122, 122);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_int_equal(n, 17 + 56);
    assert_memory_equal(buf + 11, ((uint8_t[]){0x0A, 0x75, invoke, 0x02, 0x02, 0x0F}), 6);
    assert_memory_equal(buf + 17, req + 244, 56);
    /* a NAK for 1 (segment 2 lost): segment 2 again */
    peer_send_routed(ps, &from, (uint8_t[]){0x43, invoke, 0x01, 0x02}, 4);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_int_equal(n, 17 + 56);
    assert_int_equal(buf[14], 2);
    /* the final SegmentACK, then the SimpleACK */
    peer_send_routed(ps, &from, (uint8_t[]){0x41, invoke, 0x02, 0x02}, 4);
    peer_send_routed(ps, &from, (uint8_t[]){0x20, invoke, 0x0F}, 3);
    for (int i = 0; i < 50 && !d.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.r.status, BN_OK);
    bn_client_stats cs;
    bn_client_get_stats(c, &cs);
    assert_int_equal(cs.segments_sent, 4);

    /* no SegmentACK at all: segment 0 once more (one retry), then a timeout */
    done t = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_WRITE_PROPERTY, req, sizeof req, 128, 1, on_done, &t),
                     0);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_true(n == 139 && buf[14] == 0);
    n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_true(n == 139 && buf[14] == 0);
    for (int i = 0; i < 100 && !t.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(t.r.status, BN_E_TIMEOUT);
    /* a route learned from the source network of a frame from another address moves the route */
    struct sockaddr_in other = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    int ps2 = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(bind(ps2, (struct sockaddr *)&other, sizeof other), 0);
    peer_send_routed(ps2, &to, (uint8_t[]){0x10, 0x08}, 2); /* a Who-Is from 2001:10 */
    for (int i = 0; i < 50 && rs.calls < 2; i++) bn_client_poll(c, 5);
    assert_int_equal(rs.calls, 2);
    assert_int_not_equal(rs.router.port, pport);
    close(ps2);
    bn_client_close(c);
    close(ps);
}

typedef struct net_news {
    int lost, notes;
    uint16_t lost_net;
    char why[96], note[192];
} net_news;

static void on_route_lost(void *ud, uint16_t net, const bn_addr *router, const char *why) {
    (void)router;
    net_news *r = ud;
    r->lost++;
    r->lost_net = net;
    snprintf(r->why, sizeof r->why, "%s", why);
}

static void on_note(void *ud, const bn_addr *router, const char *text) {
    (void)router;
    net_news *r = ud;
    r->notes++;
    snprintf(r->note, sizeof r->note, "%s", text);
}

/* Sends a network-layer message (NPDU control 0x80, clause 6.4) from the router socket. */
static void router_says(int s, const struct sockaddr_in *to, const uint8_t *msg, size_t n, bn_client *c) {
    uint8_t f[64] = {0x81, 0x0A, 0, 0, 0x01, 0x80};
    memcpy(f + 6, msg, n);
    bn_bvll_finish(f, n + 6, BN_BVLC_UNICAST);
    sendto(s, f, n + 6, 0, (const struct sockaddr *)to, sizeof *to);
    for (int i = 0; i < 5; i++) bn_client_poll(c, 5);
}

/* Router-Busy-To-Network holds the requests through that router (no retry used up) until its
 * Router-Available-To-Network; Reject-Message-To-Network ends them with its reason and forgets a
 * network the router cannot reach; a route through which nothing came while a request timed out
 * is forgotten, one that carried a frame meanwhile is kept. */
static void test_client_router_messages(void **st) {
    (void)st;
    uint16_t pport;
    int ps = peer_socket(&pport);
    bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .timeout_ms = 100, .retries = 1};
    net_news nn = {0};
    bn_handlers hd = {.ud = &nn, .route_lost = on_route_lost, .network_note = on_note};
    char why[100];
    bn_client *c = bn_client_open(&o, &hd, why, sizeof why);
    assert_non_null(c);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001), .sin_port = htons(bn_client_port(c))};
    const uint8_t iar[] = {0x01, 0x07, 0xD1}; /* I-Am-Router-To-Network 2001 */
    router_says(ps, &to, iar, sizeof iar, c);
    bn_addr router;
    assert_int_equal(bn_client_router_to(c, 2001, &router), 0);
    uint8_t req[16];
    bn_w w;
    bn_w_init(&w, req, sizeof req);
    bn_rp_request(&w, 0, 1, 85, BN_ARRAY_ALL);
    bn_addr dst = {.net = 2001, .mac_len = 1, .mac = {10}};
    uint8_t buf[1500];
    struct sockaddr_in from;

    /* Router-Busy-To-Network 2001: a request waits longer than its timeout and retry */
    router_says(ps, &to, (const uint8_t[]){0x04, 0x07, 0xD1}, 3, c);
    char expect[192];
    snprintf(
        expect, sizeof expect,
        "router 127.0.0.1:%u is busy for network 2001: requests to it wait (30 s at most, or until it is "
        "available)",
        pport);
    assert_string_equal(nn.note, expect);
    done d = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_READ_PROPERTY, req, w.len, 1476, 0, on_done, &d), 0);
    struct pollfd pf = {.fd = ps, .events = POLLIN};
    for (int i = 0; i < 40; i++) bn_client_poll(c, 10); /* 400 ms: 4 timeouts' worth */
    assert_int_equal(poll(&pf, 1, 0), 0);               /* nothing sent */
    assert_int_equal(d.calls, 0);
    /* Router-Available-To-Network with no list (every network): the request goes, as a first try */
    router_says(ps, &to, (const uint8_t[]){0x05}, 1, c);
    ssize_t n = peer_recv(ps, buf, sizeof buf, &from, c);
    assert_true(n > 11);
    assert_memory_equal(buf + 4, ((uint8_t[]){0x01, 0x24, 0x07, 0xD1, 0x01, 0x0A, 0xFF}), 7);
    peer_send_routed(ps, &from, (uint8_t[]){0x20, buf[13], 0x0C}, 3); /* SimpleACK */
    for (int i = 0; i < 20 && !d.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(d.r.status, BN_OK);
    bn_client_stats cs;
    bn_client_get_stats(c, &cs);
    assert_int_equal(cs.retries, 0);

    /* Reject-Message-To-Network, reason 1 (not directly connected), network 2001 */
    done e = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_READ_PROPERTY, req, w.len, 1476, 0, on_done, &e), 0);
    assert_true(peer_recv(ps, buf, sizeof buf, &from, c) > 0);
    router_says(ps, &to, (const uint8_t[]){0x03, 0x01, 0x07, 0xD1}, 4, c);
    assert_int_equal(e.calls, 1);
    assert_int_equal(e.r.status, BN_E_NETWORK);
    char text[80];
    bn_result_text(&e.r, text, sizeof text);
    assert_string_equal(text, "rejected by the router: not-directly-connected");
    assert_int_equal(nn.lost, 1);
    assert_int_equal(nn.lost_net, 2001);
    assert_string_equal(nn.why, "rejected a message to it: not-directly-connected");
    assert_int_equal(bn_client_router_to(c, 2001, &router), -1);

    /* the router goes silent: the request times out and the route is forgotten */
    router_says(ps, &to, iar, sizeof iar, c);
    assert_int_equal(bn_client_router_to(c, 2001, &router), 0);
    done f = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_READ_PROPERTY, req, w.len, 1476, 0, on_done, &f), 0);
    for (int i = 0; i < 100 && !f.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(f.r.status, BN_E_TIMEOUT);
    assert_int_equal(nn.lost, 2);
    assert_string_equal(nn.why, "no longer answers");
    assert_int_equal(bn_client_router_to(c, 2001, &router), -1);
    /* ... but a route that carried a frame meanwhile (the device is silent, not the router) stays */
    router_says(ps, &to, iar, sizeof iar, c);
    done g = {0};
    assert_int_equal(bn_client_request(c, &dst, BN_SVC_READ_PROPERTY, req, w.len, 1476, 0, on_done, &g), 0);
    poll(NULL, 0, 2);
    peer_send_routed(ps, &to, (uint8_t[]){0x10, 0x08}, 2); /* a Who-Is from 2001:10 */
    for (int i = 0; i < 100 && !g.calls; i++) bn_client_poll(c, 5);
    assert_int_equal(g.r.status, BN_E_TIMEOUT);
    assert_int_equal(nn.lost, 2);
    assert_int_equal(bn_client_router_to(c, 2001, &router), 0);
    /* an odd network list is counted as malformed */
    router_says(ps, &to, (const uint8_t[]){0x04, 0x07}, 2, c);
    bn_client_get_stats(c, &cs);
    assert_int_equal(cs.malformed, 1);
    bn_client_close(c);
    close(ps);
}

typedef struct served {
    int calls;
    uint8_t service, invoke;
    size_t len;
    uint8_t data[512];
} served;

static void on_confirmed(void *ud, const bn_addr *src, const bn_apdu *req, bn_w *w) {
    (void)src;
    served *s = ud;
    s->calls++;
    s->service = req->service;
    s->invoke = req->invoke_id;
    s->len = req->len;
    if (req->len <= sizeof s->data) memcpy(s->data, req->data, req->len);
    bn_apdu_simple_ack(w, req->invoke_id, req->service);
}

/* A segmented request to us (clause 5.4.5): each segment acknowledged with window size 1 (the
 * server bit set), an out-of-order one answered with a NAK for the last one received, the whole
 * request served once the last segment is in; a request too long is aborted (buffer-overflow). */
static void test_client_segmented_request_to_us(void **st) {
    (void)st;
    uint16_t pport;
    int ps = peer_socket(&pport);
    bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .timeout_ms = 150, .retries = 1};
    served sv = {0};
    bn_handlers hd = {.ud = &sv, .confirmed = on_confirmed};
    char why[100];
    bn_client *c = bn_client_open(&o, &hd, why, sizeof why);
    assert_non_null(c);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001), .sin_port = htons(bn_client_port(c))};
    uint8_t body[30];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(0xA0 + i);
    /* Confirmed-Request, SEG|MOR|SA (0x0E), max APDU 1476, invoke 0x21, seq, proposed window 4,
     * WriteProperty (15), then 10 octets of the request per segment; the last without MOR (0x0A) */
    uint8_t seg[3][16];
    for (int k = 0; k < 3; k++) {
        const uint8_t h[] = {k < 2 ? 0x0E : 0x0A, 0x05, 0x21, (uint8_t)k, 0x04, 0x0F};
        memcpy(seg[k], h, 6);
        memcpy(seg[k] + 6, body + 10 * k, 10);
    }
    uint8_t buf[1500];
    struct sockaddr_in from;
    peer_send(ps, &to, seg[0], 16);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 10);
    assert_memory_equal(buf + 6, ((uint8_t[]){0x41, 0x21, 0x00, 0x01}), 4); /* SegmentACK 0, window 1 */
    peer_send(ps, &to, seg[2], 16);                                         /* segment 1 lost */
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 10);
    assert_memory_equal(buf + 6, ((uint8_t[]){0x43, 0x21, 0x00, 0x01}), 4); /* NAK: 0 is the last in */
    peer_send(ps, &to, seg[1], 16);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 10);
    assert_memory_equal(buf + 6, ((uint8_t[]){0x41, 0x21, 0x01, 0x01}), 4);
    assert_int_equal(sv.calls, 0);
    peer_send(ps, &to, seg[2], 16);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 10);
    assert_memory_equal(buf + 6, ((uint8_t[]){0x41, 0x21, 0x02, 0x01}), 4);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 9);
    assert_memory_equal(buf + 6, ((uint8_t[]){0x20, 0x21, 0x0F}), 3); /* SimpleACK of the whole */
    assert_int_equal(sv.calls, 1);
    assert_int_equal(sv.service, 15);
    assert_int_equal(sv.len, sizeof body);
    assert_memory_equal(sv.data, body, sizeof body);
    bn_client_stats cs;
    bn_client_get_stats(c, &cs);
    assert_int_equal(cs.segments_received, 1);
    /* a late duplicate of a finished request is ignored */
    peer_send(ps, &to, seg[2], 16);
    for (int i = 0; i < 5; i++) bn_client_poll(c, 5);
    struct pollfd pf = {.fd = ps, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 20), 0);
    /* more than BN_MAX_REQUEST octets: aborted with buffer-overflow (1), from the server */
    uint8_t big[1400] = {0x0E, 0x05, 0x22, 0x00, 0x04, 0x0F};
    int aborted = 0;
    for (int k = 0; k < 20 && !aborted; k++) {
        big[3] = (uint8_t)k;
        peer_send(ps, &to, big, sizeof big);
        ssize_t n = peer_recv(ps, buf, sizeof buf, &from, c);
        assert_true(n == 10 || n == 9);
        if (n == 9) {
            assert_memory_equal(buf + 6, ((uint8_t[]){0x71, 0x22, 0x01}), 3);
            aborted = k;
        }
    }
    assert_int_equal(aborted, BN_MAX_REQUEST / (sizeof big - 6));
    assert_int_equal(sv.calls, 1);
    bn_client_close(c);
    close(ps);
}

/* Who-Is as a local broadcast (Original-Broadcast-NPDU, no DNET) and as a global one (DNET 0xFFFF,
 * DLEN 0, hop count 255: clause 6.2.2), to the configured broadcast address and port. */
static void test_client_broadcasts(void **st) {
    (void)st;
    uint16_t pport;
    int ps = peer_socket(&pport);
    bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .broadcast_ip = 0x7F000001};
    char why[100];
    bn_client *c = bn_client_open(&o, NULL, why, sizeof why);
    assert_non_null(c);
    const uint8_t who_is[] = {0x10, 0x08};
    uint8_t buf[64];
    struct sockaddr_in from;
    assert_int_equal(bn_client_broadcast(c, pport, who_is, 2, 0), 0);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 8);
    assert_memory_equal(buf, ((uint8_t[]){0x81, 0x0B, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08}), 8);
    assert_int_equal(bn_client_broadcast(c, pport, who_is, 2, 1), 0);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 12);
    assert_memory_equal(
        buf, ((uint8_t[]){0x81, 0x0B, 0x00, 0x0C, 0x01, 0x20, 0xFF, 0xFF, 0x00, 0xFF, 0x10, 0x08}), 12);
    /* a remote broadcast on network 2001 through its router ("2001:*"): DNET 2001, DLEN 0 */
    const uint8_t iar[] = {0x81, 0x0A, 0x00, 0x09, 0x01, 0x80, 0x01, 0x07, 0xD1};
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001), .sin_port = htons(bn_client_port(c))};
    sendto(ps, iar, sizeof iar, 0, (struct sockaddr *)&to, sizeof to);
    bn_addr r;
    for (int i = 0; i < 50 && bn_client_router_to(c, 2001, &r) != 0; i++) bn_client_poll(c, 5);
    bn_addr remote = {.net = 2001};
    assert_int_equal(bn_client_send_unconfirmed(c, &remote, who_is, 2, 0), 0);
    assert_int_equal(peer_recv(ps, buf, sizeof buf, &from, c), 12);
    assert_memory_equal(
        buf, ((uint8_t[]){0x81, 0x0A, 0x00, 0x0C, 0x01, 0x20, 0x07, 0xD1, 0x00, 0xFF, 0x10, 0x08}), 12);
    bn_client_close(c);
    close(ps);
}

static void test_addr_format(void **st) {
    (void)st;
    char t[48];
    bn_addr a = {.ip = 0xC0A80105, .port = 47808};
    bn_addr_format(&a, t, sizeof t);
    assert_string_equal(t, "192.168.1.5");
    a.port = 47809;
    bn_addr_format(&a, t, sizeof t);
    assert_string_equal(t, "192.168.1.5:47809");
    a.net = 2001;
    a.mac_len = 1;
    a.mac[0] = 10;
    bn_addr_format(&a, t, sizeof t);
    assert_string_equal(t, "2001:10");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives_encode),
        cmocka_unit_test(test_context_tags_encode),
        cmocka_unit_test(test_primitives_decode),
        cmocka_unit_test(test_bvll_npdu),
        cmocka_unit_test(test_services_annex_f),
        cmocka_unit_test(test_rpm_ack),
        cmocka_unit_test(test_apdu_and_texts),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_client_segmented_and_retry),
        cmocka_unit_test(test_client_routes_and_segmented_request),
        cmocka_unit_test(test_client_router_messages),
        cmocka_unit_test(test_client_segmented_request_to_us),
        cmocka_unit_test(test_client_broadcasts),
        cmocka_unit_test(test_addr_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
