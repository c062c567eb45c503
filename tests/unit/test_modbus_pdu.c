/* PDU codec and the MBAP/RTU/ASCII framers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <tbgw/err.h>

#include "proto/modbus/mb_loop.h"
#include "proto/modbus/mb_pdu.h"

static void test_crc_lrc(void **st) {
    (void)st;
    /* read holding registers unit 1 addr 0 count 1: known frame 01 03 00 00 00 01 84 0A */
    const uint8_t f[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x01};
    assert_int_equal(tbgw_mb_crc16(f, 6), 0x0A84);
    /* ASCII example from the Modbus serial line spec: 11 03 00 6B 00 03 -> LRC 7E */
    const uint8_t a[] = {0x11, 0x03, 0x00, 0x6B, 0x00, 0x03};
    assert_int_equal(tbgw_mb_lrc(a, 6), 0x7E);
}

static void test_encode_requests(void **st) {
    (void)st;
    uint8_t out[300];
    tbgw_mb_req r = {.fc = 3, .addr = 0x006B, .count = 3};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), 5);
    assert_memory_equal(out, ((uint8_t[]){0x03, 0x00, 0x6B, 0x00, 0x03}), 5);
    r = (tbgw_mb_req){.fc = 5, .addr = 0x00AC, .value = 1};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), 5);
    assert_memory_equal(out, ((uint8_t[]){0x05, 0x00, 0xAC, 0xFF, 0x00}), 5);
    r = (tbgw_mb_req){.fc = 15, .addr = 0x13, .count = 10, .data = {0xCD, 0x01}, .data_len = 2};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), 8);
    assert_memory_equal(out, ((uint8_t[]){0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01}), 8);
    r = (tbgw_mb_req){.fc = 16, .addr = 1, .count = 2, .data = {0x00, 0x0A, 0x01, 0x02}, .data_len = 4};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), 10);
    r = (tbgw_mb_req){.fc = 3, .count = 126};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), TBGW_EINVAL);
    r = (tbgw_mb_req){.fc = 1, .count = 2001};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), TBGW_EINVAL);
    r = (tbgw_mb_req){.fc = 7, .count = 1};
    assert_int_equal(tbgw_mb_pdu_encode_req(&r, out, sizeof out), TBGW_EINVAL);
}

static void test_parse_responses(void **st) {
    (void)st;
    tbgw_mb_req r = {.fc = 3, .addr = 0x6B, .count = 3};
    tbgw_mb_rsp rsp;
    const uint8_t ok[] = {0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, ok, sizeof ok, &rsp), 0);
    assert_int_equal(rsp.data_len, 6);
    assert_int_equal(rsp.data[1], 0x2B);
    const uint8_t ex[] = {0x83, 0x02};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, ex, sizeof ex, &rsp), 0);
    assert_int_equal(rsp.exception, 2);
    assert_string_equal(tbgw_mb_exception_name(2), "illegal data address");
    const uint8_t shortp[] = {0x03, 0x06, 0x02};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, shortp, sizeof shortp, &rsp), TBGW_EPROTO);
    /* consistent but short (2 of 3 registers) and empty answers: TBGW_MB_EEMPTY, with what came */
    const uint8_t shortok[] = {0x03, 0x04, 0x02, 0x2B, 0x00, 0x00};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, shortok, sizeof shortok, &rsp), TBGW_MB_EEMPTY);
    assert_int_equal(rsp.data_len, 4);
    const uint8_t empty[] = {0x03, 0x00};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, empty, sizeof empty, &rsp), TBGW_MB_EEMPTY);
    assert_int_equal(rsp.data_len, 0);
    tbgw_mb_req coils = {.fc = 1, .addr = 0, .count = 9};
    const uint8_t coil_short[] = {0x01, 0x01, 0xFF};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&coils, coil_short, sizeof coil_short, &rsp), TBGW_MB_EEMPTY);
    /* more bytes than asked is invalid, not short */
    const uint8_t toolong[] = {0x03, 0x08, 0, 1, 0, 2, 0, 3, 0, 4};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, toolong, sizeof toolong, &rsp), TBGW_EPROTO);
    const uint8_t wrongfc[] = {0x04, 0x02, 0x00, 0x00};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&r, wrongfc, sizeof wrongfc, &rsp), TBGW_EPROTO);
    tbgw_mb_req w = {.fc = 6, .addr = 1, .value = 3};
    const uint8_t echo[] = {0x06, 0x00, 0x01, 0x00, 0x03};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&w, echo, sizeof echo, &rsp), 0);
    const uint8_t badecho[] = {0x06, 0x00, 0x01, 0x00, 0x04};
    assert_int_equal(tbgw_mb_pdu_parse_rsp(&w, badecho, sizeof badecho, &rsp), TBGW_EPROTO);
}

static void test_frames(void **st) {
    (void)st;
    const uint8_t pdu[] = {0x03, 0x00, 0x00, 0x00, 0x01};
    uint8_t out[TBGW_MB_MAX_FRAME];
    tbgw_mb_frame fr;
    int n = tbgw_mb_frame_encode(TBGW_MB_FRAMING_SOCKET, 0x1234, 7, pdu, 5, out, sizeof out);
    assert_int_equal(n, 12);
    assert_memory_equal(out, ((uint8_t[]){0x12, 0x34, 0, 0, 0, 6, 7, 3, 0, 0, 0, 1}), 12);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_SOCKET, 1, out, 11, &fr), 0);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_SOCKET, 1, out, 12, &fr), 12);
    assert_int_equal(fr.tid, 0x1234);
    assert_int_equal(fr.unit, 7);
    out[2] = 1; /* protocol id must be 0 */
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_SOCKET, 1, out, 12, &fr), TBGW_EPROTO);

    n = tbgw_mb_frame_encode(TBGW_MB_FRAMING_RTU, 0, 1, pdu, 5, out, sizeof out);
    assert_int_equal(n, 8);
    assert_memory_equal(out, ((uint8_t[]){0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A}), 8);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 1, out, 7, &fr), 0);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 1, out, 8, &fr), 8);
    out[7] ^= 1;
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 1, out, 8, &fr), TBGW_EPROTO);
    /* RTU response length comes from the byte count; exceptions are 5 bytes */
    const uint8_t rsp_pdu[] = {0x03, 0x02, 0x12, 0x34};
    n = tbgw_mb_frame_encode(TBGW_MB_FRAMING_RTU, 0, 9, rsp_pdu, 4, out, sizeof out);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 0, out, (size_t)n + 3, &fr), n);
    assert_int_equal(fr.pdu_len, 4);
    const uint8_t exc[] = {0x83, 0x02};
    n = tbgw_mb_frame_encode(TBGW_MB_FRAMING_RTU, 0, 9, exc, 2, out, sizeof out);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 0, out, (size_t)n, &fr), 5);

    n = tbgw_mb_frame_encode(TBGW_MB_FRAMING_ASCII, 0, 0x11, (const uint8_t[]){0x03, 0x00, 0x6B, 0x00, 0x03},
                             5, out, sizeof out);
    assert_int_equal(n, 17);
    assert_memory_equal(out, ":1103006B00037E\r\n", 17);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_ASCII, 1, out, 10, &fr), 0);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_ASCII, 1, out, 17, &fr), 17);
    assert_int_equal(fr.unit, 0x11);
    assert_int_equal(fr.pdu_len, 5);
    out[5] = 'X';
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_ASCII, 1, out, 17, &fr), TBGW_EPROTO);
    memcpy(out, ":1103006B00037F\r\n", 17); /* wrong LRC */
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_ASCII, 1, out, 17, &fr), TBGW_EPROTO);
}

static void test_store_execute(void **st) {
    (void)st;
    static tbgw_mb_store s;
    memset(&s, 0, sizeof s);
    s.holding[10] = 0xBEEF;
    s.coils[3] = 1;
    uint8_t rsp[TBGW_MB_MAX_PDU];
    int wrote;
    size_t n = tbgw_mb_store_execute(&s, (const uint8_t[]){3, 0, 10, 0, 1}, 5, rsp, &wrote, NULL);
    assert_int_equal(n, 4);
    assert_memory_equal(rsp, ((uint8_t[]){3, 2, 0xBE, 0xEF}), 4);
    n = tbgw_mb_store_execute(&s, (const uint8_t[]){1, 0, 0, 0, 5}, 5, rsp, &wrote, NULL);
    assert_int_equal(n, 3);
    assert_int_equal(rsp[2], 0x08);
    n = tbgw_mb_store_execute(&s, (const uint8_t[]){16, 0, 20, 0, 1, 2, 0x12, 0x34}, 8, rsp, &wrote, NULL);
    assert_int_equal(n, 5);
    assert_int_equal(wrote, 1);
    assert_int_equal(s.holding[20], 0x1234);
    n = tbgw_mb_store_execute(&s, (const uint8_t[]){0x2B, 0x0E}, 2, rsp, &wrote, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(rsp[0], 0xAB);
    assert_int_equal(rsp[1], TBGW_MB_EX_ILLEGAL_FUNCTION);
    n = tbgw_mb_store_execute(&s, (const uint8_t[]){3, 0xFF, 0xFF, 0, 2}, 5, rsp, &wrote, NULL);
    assert_int_equal(rsp[1], TBGW_MB_EX_ILLEGAL_ADDRESS);
    n = tbgw_mb_store_execute(&s, (const uint8_t[]){5, 0, 1, 0x12, 0x34}, 5, rsp, &wrote, NULL);
    assert_int_equal(rsp[1], TBGW_MB_EX_ILLEGAL_VALUE);
}

static tbgw_mb_store id_store;

/* Runs one function 43 request against id_store; returns the response length. */
static size_t devid(const uint8_t *req, size_t len, uint8_t *rsp) {
    int wrote = 1;
    size_t n = tbgw_mb_store_execute(&id_store, req, len, rsp, &wrote, NULL);
    assert_int_equal(wrote, 0);
    return n;
}

#define EXPECT_PDU(got, n, ...)                                                                              \
    do {                                                                                                     \
        const uint8_t want_[] = {__VA_ARGS__};                                                               \
        assert_int_equal(n, sizeof want_);                                                                   \
        assert_memory_equal(got, want_, sizeof want_);                                                       \
    } while (0)

static void test_device_identification(void **st) {
    (void)st;
    uint8_t rsp[TBGW_MB_MAX_PDU];
    const uint8_t basic[] = {43, 14, 1, 0};
    /* no identity configured: the function is not supported */
    EXPECT_PDU(rsp, devid(basic, 4, rsp), 0xAB, 1);
    tbgw_mb_identity id;
    memset(&id, 0, sizeof id);
    id.obj[0] = "ACME";
    id.obj[1] = "P1";
    id.obj[2] = "1.2";
    id.obj[3] = "http://a";
    id.obj[4] = "Gw";
    id.obj[5] = "M7";
    id_store.identity = &id;
    /* read code 1 (basic): objects 0..2, conformity 0x82 (regular objects exist, individual access) */
    EXPECT_PDU(rsp, devid(basic, 4, rsp), 43, 14, 1, 0x82, 0, 0, 3, 0, 4, 'A', 'C', 'M', 'E', 1, 2, 'P', '1',
               2, 3, '1', '.', '2');
    /* stream access from object 1 */
    const uint8_t basic1[] = {43, 14, 1, 1};
    EXPECT_PDU(rsp, devid(basic1, 4, rsp), 43, 14, 1, 0x82, 0, 0, 2, 1, 2, 'P', '1', 2, 3, '1', '.', '2');
    /* read code 2 (regular): 0..6, the absent object 6 left out */
    const uint8_t regular[] = {43, 14, 2, 0};
    size_t n = devid(regular, 4, rsp);
    EXPECT_PDU(rsp, 7, 43, 14, 2, 0x82, 0, 0, 6);
    assert_int_equal(n, 7 + (2 + 4) + (2 + 2) + (2 + 3) + (2 + 8) + (2 + 2) + (2 + 2));
    assert_int_equal(rsp[n - 4], 5);
    assert_memory_equal(rsp + n - 2, "M7", 2);
    /* a start id that does not exist restarts at object 0 */
    const uint8_t regular6[] = {43, 14, 2, 6};
    assert_int_equal(devid(regular6, 4, rsp), n);
    assert_int_equal(rsp[6], 6);
    assert_int_equal(rsp[7], 0);
    /* read code 4 (individual): one object; an unknown one is exception 2 */
    const uint8_t one[] = {43, 14, 4, 5};
    EXPECT_PDU(rsp, devid(one, 4, rsp), 43, 14, 4, 0x82, 0, 0, 1, 5, 2, 'M', '7');
    const uint8_t unknown[] = {43, 14, 4, 6};
    EXPECT_PDU(rsp, devid(unknown, 4, rsp), 0xAB, 2);
    const uint8_t unknown_ext[] = {43, 14, 4, 0x80};
    EXPECT_PDU(rsp, devid(unknown_ext, 4, rsp), 0xAB, 2);
    /* bad read codes and malformed requests: exception 3; another MEI type: exception 1 */
    const uint8_t code0[] = {43, 14, 0, 0}, code5[] = {43, 14, 5, 0}, shortreq[] = {43, 14, 1},
                  longreq[] = {43, 14, 1, 0, 0}, mei13[] = {43, 13, 1, 0};
    EXPECT_PDU(rsp, devid(code0, 4, rsp), 0xAB, 3);
    EXPECT_PDU(rsp, devid(code5, 4, rsp), 0xAB, 3);
    EXPECT_PDU(rsp, devid(shortreq, 3, rsp), 0xAB, 3);
    EXPECT_PDU(rsp, devid(longreq, 5, rsp), 0xAB, 3);
    EXPECT_PDU(rsp, devid(mei13, 4, rsp), 0xAB, 1);
    /* extended objects that do not fit one PDU: "more follows" and the next object id */
    char big[4][101];
    for (int i = 0; i < 4; i++) {
        memset(big[i], 'a' + i, 100);
        big[i][100] = 0;
        id.obj[0x80 + i] = big[i];
    }
    const uint8_t ext[] = {43, 14, 3, 0};
    n = devid(ext, 4, rsp);
    /* 7 + 33 (objects 0..5) + 2 * 102 = 244; the third extended object no longer fits */
    assert_int_equal(n, 244);
    EXPECT_PDU(rsp, 7, 43, 14, 3, 0x83, 0xFF, 0x82, 8);
    const uint8_t ext2[] = {43, 14, 3, 0x82};
    n = devid(ext2, 4, rsp);
    assert_int_equal(n, 7 + 2 * 102);
    EXPECT_PDU(rsp, 7, 43, 14, 3, 0x83, 0, 0, 2);
    assert_int_equal(rsp[7], 0x82);
    assert_int_equal(rsp[7 + 102], 0x83);
    /* one object longer than a PDU is cut to fit */
    char huge[300];
    memset(huge, 'z', 299);
    huge[299] = 0;
    id.obj[0x90] = huge;
    const uint8_t one_huge[] = {43, 14, 4, 0x90};
    n = devid(one_huge, 4, rsp);
    assert_int_equal(n, TBGW_MB_MAX_PDU);
    assert_int_equal(rsp[8], TBGW_MB_MAX_PDU - 9);
    /* the RTU framing knows both lengths (request 4 bytes; the answer walks its objects) */
    uint8_t fr[TBGW_MB_MAX_FRAME];
    int fl = tbgw_mb_frame_encode(TBGW_MB_FRAMING_RTU, 0, 1, basic, 4, fr, sizeof fr);
    tbgw_mb_frame f;
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 1, fr, (size_t)fl, &f), fl);
    n = devid(ext, 4, rsp);
    fl = tbgw_mb_frame_encode(TBGW_MB_FRAMING_RTU, 0, 1, rsp, n, fr, sizeof fr);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 0, fr, (size_t)fl, &f), fl);
    assert_int_equal(f.pdu_len, n);
    assert_int_equal(tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, 0, fr, (size_t)fl - 3, &f), 0);
    id_store.identity = NULL;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_lrc),         cmocka_unit_test(test_encode_requests),
        cmocka_unit_test(test_parse_responses), cmocka_unit_test(test_frames),
        cmocka_unit_test(test_store_execute),   cmocka_unit_test(test_device_identification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
