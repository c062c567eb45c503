/* KNXnet/IP frames, cEMI L_Data and addresses: exact octets of the standard's layouts, and malformed
 * input refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <tbgw/err.h>

#include "proto/knx/knx_frame.h"

static void test_addresses(void **st) {
    (void)st;
    uint16_t a;
    assert_int_equal(knx_ga_parse("1/0/6", &a), 0);
    assert_int_equal(a, 0x0806);
    assert_int_equal(knx_ga_parse("31/7/255", &a), 0);
    assert_int_equal(a, 0xFFFF);
    assert_int_equal(knx_ga_parse("1/2047", &a), 0);
    assert_int_equal(a, 0x0FFF);
    assert_int_equal(knx_ga_parse("2054", &a), 0);
    assert_int_equal(a, 2054);
    const char *bad[] = {"32/0/0", "1/8/0",   "1/0/256", "1/2048", "65536",  "",          "1//2",
                         "a/b/c",  "1/0/6/7", "-1/0/0",  "1/0/ 6", "1/0/6 ", "000001/0/6"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(knx_ga_parse(bad[i], &a), -1);
    char s[32];
    knx_ga_format(0x0806, KNX_GA_LONG, s, sizeof s);
    assert_string_equal(s, "1/0/6");
    knx_ga_format(0x0FFF, KNX_GA_SHORT, s, sizeof s);
    assert_string_equal(s, "1/2047");
    knx_ga_format(2054, KNX_GA_FREE, s, sizeof s);
    assert_string_equal(s, "2054");
    assert_int_equal(knx_ia_parse("1.0.10", &a), 0);
    assert_int_equal(a, 0x100A);
    assert_int_equal(knx_ia_parse("16.0.0", &a), -1);
    assert_int_equal(knx_ia_parse("1.0", &a), -1);
    knx_ia_format(0xFF01, s, sizeof s);
    assert_string_equal(s, "15.15.1");
}

static void test_encoders(void **st) {
    (void)st;
    uint8_t b[64];
    knx_hpai h = {KNX_HPAI_UDP, 0x7F000001, 5000};
    assert_int_equal(knx_enc_connect_req(b, sizeof b, &h, &h), 26);
    const uint8_t conn[] = {0x06, 0x10, 0x02, 0x05, 0x00, 0x1A, 0x08, 0x01, 0x7F, 0x00, 0x00, 0x01, 0x13,
                            0x88, 0x08, 0x01, 0x7F, 0x00, 0x00, 0x01, 0x13, 0x88, 0x04, 0x04, 0x02, 0x00};
    assert_memory_equal(b, conn, 26);
    assert_int_equal(knx_enc_connstate_req(b, sizeof b, 0x15, &h), 16);
    const uint8_t cs[] = {0x06, 0x10, 0x02, 0x07, 0x00, 0x10, 0x15, 0x00,
                          0x08, 0x01, 0x7F, 0x00, 0x00, 0x01, 0x13, 0x88};
    assert_memory_equal(b, cs, 16);
    assert_int_equal(knx_enc_tunnel_ack(b, sizeof b, 0x15, 7, 0), 10);
    const uint8_t ack[] = {0x06, 0x10, 0x04, 0x21, 0x00, 0x0A, 0x04, 0x15, 0x07, 0x00};
    assert_memory_equal(b, ack, 10);
    assert_int_equal(knx_enc_search_req(b, sizeof b, &h), 14);
    assert_int_equal(b[3], 0x01);
    assert_int_equal(knx_enc_disconnect_req(b, 10, 1, &h), TBGW_EINVAL); /* buffer too small */
    /* cEMI: GroupValueRead and a 1-bit GroupValueWrite to 1/0/6, then a 2-octet write */
    assert_int_equal(knx_cemi_encode_group(b, sizeof b, KNX_CEMI_LDATA_REQ, 0, 0x0806, KNX_APCI_READ, NULL),
                     11);
    const uint8_t rd[] = {0x11, 0x00, 0xBC, 0xE0, 0x00, 0x00, 0x08, 0x06, 0x01, 0x00, 0x00};
    assert_memory_equal(b, rd, 11);
    knx_payload one = {.small = 1, .data = {1}};
    knx_cemi_encode_group(b, sizeof b, KNX_CEMI_LDATA_REQ, 0, 0x0806, KNX_APCI_WRITE, &one);
    assert_int_equal(b[10], 0x81);
    knx_payload two = {.small = 0, .len = 2, .data = {0x0C, 0x33}};
    assert_int_equal(
        knx_cemi_encode_group(b, sizeof b, KNX_CEMI_LDATA_IND, 0x1105, 0x0806, KNX_APCI_RESPONSE, &two), 13);
    const uint8_t rs[] = {0x29, 0x00, 0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 0x03, 0x00, 0x40, 0x0C, 0x33};
    assert_memory_equal(b, rs, 13);
}

static void test_parse_services(void **st) {
    (void)st;
    knx_frame f;
    const uint8_t cres[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x14, 0x15, 0x00, 0x08, 0x01,
                            0xC0, 0xA8, 0x01, 0x0A, 0x0E, 0x57, 0x04, 0x04, 0x11, 0x0A};
    assert_int_equal(knx_frame_parse(cres, sizeof cres, &f), 0);
    assert_int_equal(f.service, KNX_CONNECT_RES);
    assert_int_equal(f.channel, 0x15);
    assert_int_equal(f.hpai.ip, 0xC0A8010A);
    assert_int_equal(f.hpai.port, 3671);
    assert_int_equal(f.ia, 0x110A);
    const uint8_t refused[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x08, 0x00, 0x24};
    assert_int_equal(knx_frame_parse(refused, sizeof refused, &f), 0);
    assert_int_equal(f.status, KNX_E_NO_MORE_CONNECTIONS);
    assert_string_equal(knx_status_name(f.status), "E_NO_MORE_CONNECTIONS");
    const uint8_t treq[] = {0x06, 0x10, 0x04, 0x20, 0x00, 0x17, 0x04, 0x15, 0x03, 0x00, 0x29, 0x00,
                            0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 0x03, 0x00, 0x80, 0x0C, 0x33};
    assert_int_equal(knx_frame_parse(treq, sizeof treq, &f), 0);
    assert_int_equal(f.seq, 3);
    knx_ldata ld;
    assert_int_equal(knx_cemi_parse(f.cemi, f.cemi_len, &ld), 0);
    assert_int_equal(ld.code, KNX_CEMI_LDATA_IND);
    assert_int_equal(ld.src, 0x1105);
    assert_int_equal(ld.dst, 0x0806);
    assert_true(ld.group);
    assert_int_equal(ld.apci, KNX_APCI_WRITE);
    assert_int_equal(ld.value.small, 0);
    assert_int_equal(ld.value.len, 2);
    assert_int_equal(ld.value.data[1], 0x33);
    /* L_Data.con with the error bit; additional information skipped; a 6-bit response */
    const uint8_t con[] = {0x2E, 0x02, 0x03, 0x00, 0xBD, 0xE0, 0x00, 0x00, 0x08, 0x06, 0x01, 0x00, 0x41};
    assert_int_equal(knx_cemi_parse(con, sizeof con, &ld), 0);
    assert_true(ld.confirm_error);
    assert_int_equal(ld.apci, KNX_APCI_RESPONSE);
    assert_true(ld.value.small);
    assert_int_equal(ld.value.data[0], 1);
    const uint8_t busy[] = {0x06, 0x10, 0x05, 0x32, 0x00, 0x0C, 0x06, 0x00, 0x00, 0x64, 0x00, 0x00};
    assert_int_equal(knx_frame_parse(busy, sizeof busy, &f), 0);
    assert_int_equal(f.busy_wait_ms, 100);
    const uint8_t unknown[] = {0x06, 0x10, 0x09, 0x99, 0x00, 0x06};
    assert_int_equal(knx_frame_parse(unknown, sizeof unknown, &f), TBGW_ENOENT);
    /* TCP stream framing */
    assert_int_equal(knx_stream_frame_len(treq, 5), 0);
    assert_int_equal(knx_stream_frame_len(treq, 10), 0);
    assert_int_equal(knx_stream_frame_len(treq, sizeof treq), (int)sizeof treq);
    assert_int_equal(knx_stream_frame_len(cres + 1, sizeof cres - 1), TBGW_EPROTO);
    const uint8_t huge[] = {0x06, 0x10, 0x04, 0x20, 0xFF, 0xFF};
    assert_int_equal(knx_stream_frame_len(huge, sizeof huge), TBGW_EPROTO);
}

static void test_search_response(void **st) {
    (void)st;
    uint8_t r[6 + 8 + 54 + 4] = {0x06, 0x10, 0x02, 0x02, 0x00, sizeof r, 0x08,
                                 0x01, 127,  0,    0,    1,    0x0E,     0x57};
    uint8_t *dib = r + 14;
    dib[0] = 54;
    dib[1] = 0x01;
    dib[2] = 0x02; /* TP1 */
    dib[4] = 0x11;
    dib[5] = 0x01;
    memcpy(dib + 24, "knxd\x01", 5);
    uint8_t *fam = dib + 54;
    fam[0] = 4;
    fam[1] = 0x02;
    fam[2] = 0x04;
    fam[3] = 0x01;
    knx_frame f;
    assert_int_equal(knx_frame_parse(r, sizeof r, &f), 0);
    assert_int_equal(f.hpai.port, 3671);
    assert_int_equal(f.dev_ia, 0x1101);
    assert_string_equal(f.name, "knxd?"); /* control characters are not passed on to the log */
    dib[0] = 200;                         /* DIB longer than the frame */
    assert_int_equal(knx_frame_parse(r, sizeof r, &f), TBGW_EPROTO);
}

static void test_malformed(void **st) {
    (void)st;
    knx_frame f;
    knx_ldata ld;
    const uint8_t hdr_len[] = {0x05, 0x10, 0x02, 0x06, 0x00, 0x08, 0x00, 0x00};
    assert_int_equal(knx_frame_parse(hdr_len, sizeof hdr_len, &f), TBGW_EPROTO);
    const uint8_t version[] = {0x06, 0x11, 0x02, 0x06, 0x00, 0x08, 0x00, 0x00};
    assert_int_equal(knx_frame_parse(version, sizeof version, &f), TBGW_EPROTO);
    const uint8_t total[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x09, 0x00, 0x00};
    assert_int_equal(knx_frame_parse(total, sizeof total, &f), TBGW_EPROTO);
    const uint8_t short_cres[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x0A, 0x15, 0x00, 0x08, 0x01};
    assert_int_equal(knx_frame_parse(short_cres, sizeof short_cres, &f), TBGW_EPROTO);
    const uint8_t conn_hdr[] = {0x06, 0x10, 0x04, 0x20, 0x00, 0x0B, 0x05, 0x15, 0x03, 0x00, 0x29};
    assert_int_equal(knx_frame_parse(conn_hdr, sizeof conn_hdr, &f), TBGW_EPROTO);
    const uint8_t empty_cemi[] = {0x06, 0x10, 0x04, 0x20, 0x00, 0x0A, 0x04, 0x15, 0x03, 0x00};
    assert_int_equal(knx_frame_parse(empty_cemi, sizeof empty_cemi, &f), TBGW_EPROTO);
    assert_int_equal(knx_frame_parse(hdr_len, 3, &f), TBGW_EPROTO);
    const uint8_t addil[] = {0x29, 0x20, 0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 0x01, 0x00, 0x80};
    assert_int_equal(knx_cemi_parse(addil, sizeof addil, &ld), TBGW_EPROTO);
    const uint8_t npdu[] = {0x29, 0x00, 0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 0x05, 0x00, 0x80};
    assert_int_equal(knx_cemi_parse(npdu, sizeof npdu, &ld), TBGW_EPROTO);
    uint8_t longv[11 + 20] = {0x29, 0x00, 0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 20, 0x00, 0x80};
    assert_int_equal(knx_cemi_parse(longv, sizeof longv, &ld), TBGW_EPROTO);
    const uint8_t other[] = {0xFC, 0x00, 0x00};
    assert_int_equal(knx_cemi_parse(other, sizeof other, &ld), TBGW_ENOENT);
    /* a transport-layer control frame (no APCI) parses with apci 0xFFFF */
    const uint8_t tconn[] = {0x29, 0x00, 0xB0, 0x60, 0x11, 0x05, 0x11, 0x06, 0x00, 0x80};
    assert_int_equal(knx_cemi_parse(tconn, sizeof tconn, &ld), 0);
    assert_int_equal(ld.apci, 0xFFFF);
    assert_false(ld.group);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),      cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_parse_services), cmocka_unit_test(test_search_response),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
