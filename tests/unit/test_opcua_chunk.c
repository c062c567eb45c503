/* UA-TCP framing: HEL/ACK/ERR vectors, chunk splitting and reassembly, limits and aborts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "proto/opcua/ua_chunk.h"
#include <tbgw/err.h>

static void test_hello(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_hello h = {0, 65536, 65536, 0, 0, "opc.tcp://a"};
    tbgw_ua_hello_encode(&b, &h);
    static const uint8_t want[] = {'H', 'E', 'L', 'F', 43,  0,   0,   0, /* header, size 43 */
                                   0,   0,   0,   0,                     /* version */
                                   0,   0,   1,   0,   0,   0,   1,   0, /* buffers 65536 */
                                   0,   0,   0,   0,   0,   0,   0,   0, /* no limits */
                                   11,  0,   0,   0,   'o', 'p', 'c', '.', 't', 'c', 'p', ':', '/', '/', 'a'};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)b.p, b.len, 0), 43);
    tbgw_ua_chunk c;
    assert_int_equal(tbgw_ua_chunk_parse((const uint8_t *)b.p, b.len, &c), 0);
    assert_string_equal(c.type, "HEL");
    assert_int_equal(c.body_len, 35);
    tbgw_buf_free(&b);
}

static void test_ack_err(void **state) {
    (void)state;
    static const uint8_t ack[] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    tbgw_ua_ack a;
    assert_int_equal(tbgw_ua_ack_decode(ack, sizeof ack, &a), 0);
    assert_int_equal(a.recv_buf, 65536);
    assert_int_equal(a.max_msg, 16777216);
    assert_int_equal(tbgw_ua_ack_decode(ack, 12, &a), TBGW_EPROTO);
    static const uint8_t small[] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(tbgw_ua_ack_decode(small, sizeof small, &a), TBGW_EPROTO); /* 256 < 8192 */

    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_err_encode(&b, 0x80070000u, "too big");
    static const uint8_t want[] = {'E', 'R', 'R', 'F', 23,  0,   0,   0,   0,   0,   0x07, 0x80,
                                   7,   0,   0,   0,   't', 'o', 'o', ' ', 'b', 'i', 'g'};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    uint32_t st;
    char reason[4];
    assert_int_equal(tbgw_ua_err_decode((const uint8_t *)b.p + 8, b.len - 8, &st, reason, sizeof reason), 0);
    assert_int_equal(st, 0x80070000u);
    assert_string_equal(reason, "too");
    /* reason length beyond the frame */
    static const uint8_t bad[] = {0, 0, 0, 0x80, 50, 0, 0, 0, 'x'};
    assert_int_equal(tbgw_ua_err_decode(bad, sizeof bad, &st, reason, sizeof reason), TBGW_EPROTO);
    tbgw_buf_free(&b);
}

static void test_frame_size_checks(void **state) {
    (void)state;
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"MSGF", 4, 0), TBGW_EAGAIN);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"XYZF\x10\0\0\0", 8, 0), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"MSGX\x10\0\0\0", 8, 0), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"ACKC\x10\0\0\0", 8, 0), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"MSGF\x08\0\0\0", 8, 0), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"MSGF\0\0\2\0", 8, 65536), TBGW_EPROTO);
    assert_int_equal(tbgw_ua_frame_size((const uint8_t *)"MSGF\x18\0\0\0", 8, 65536), 24);
}

/* Splits a large body into chunks, parses every frame and reassembles it. */
static void test_split_and_reassemble(void **state) {
    (void)state;
    size_t n = 20000;
    uint8_t *body = malloc(n);
    for (size_t i = 0; i < n; i++) body[i] = (uint8_t)(i * 7);
    tbgw_buf out;
    tbgw_buf_init(&out);
    uint32_t seq = 10;
    assert_int_equal(tbgw_ua_chunk_split(&out, "MSG", 5, 6, &seq, 42, body, n, 8192, 0), 0);
    assert_int_equal(seq, 13); /* 3 chunks of at most 8192 - 24 bytes */
    assert_int_equal(tbgw_ua_chunk_split(&out, "MSG", 5, 6, &seq, 43, body, n, 8192, 2), TBGW_EINVAL);

    tbgw_ua_assembler a;
    tbgw_ua_asm_init(&a, 0, 0);
    size_t off = 0;
    int chunks = 0, done = 0;
    while (off < out.len) {
        int64_t sz = tbgw_ua_frame_size((const uint8_t *)out.p + off, out.len - off, 8192);
        assert_true(sz > 0);
        tbgw_ua_chunk c;
        assert_int_equal(tbgw_ua_chunk_parse((const uint8_t *)out.p + off, (size_t)sz, &c), 0);
        assert_int_equal(c.channel_id, 5);
        assert_int_equal(c.token_id, 6);
        assert_int_equal(c.seq_num, 10 + (uint32_t)chunks);
        assert_int_equal(c.flag, chunks == 2 ? 'F' : 'C');
        const uint8_t *msg;
        size_t len;
        uint32_t rid;
        int rc = tbgw_ua_asm_feed(&a, &c, &msg, &len, &rid);
        if (chunks < 2) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, 1);
            assert_int_equal(rid, 42);
            assert_int_equal(len, n);
            assert_memory_equal(msg, body, n);
            done = 1;
        }
        off += (size_t)sz;
        chunks++;
    }
    assert_true(done);
    tbgw_ua_asm_free(&a);
    tbgw_buf_free(&out);
    free(body);
}

static tbgw_ua_chunk mk(char flag, uint32_t rid, const char *body) {
    tbgw_ua_chunk c;
    memset(&c, 0, sizeof c);
    memcpy(c.type, "MSG", 4);
    c.flag = flag;
    c.request_id = rid;
    c.body = (const uint8_t *)body;
    c.body_len = strlen(body);
    return c;
}

static void test_interleave_abort_limits(void **state) {
    (void)state;
    tbgw_ua_assembler a;
    tbgw_ua_asm_init(&a, 10, 3);
    const uint8_t *msg;
    size_t len;
    uint32_t rid;
    tbgw_ua_chunk c1 = mk('C', 1, "ab"), c2 = mk('C', 2, "xy"), f1 = mk('F', 1, "cd"), f2 = mk('F', 2, "z");
    assert_int_equal(tbgw_ua_asm_feed(&a, &c1, &msg, &len, &rid), 0);
    assert_int_equal(tbgw_ua_asm_feed(&a, &c2, &msg, &len, &rid), 0);
    assert_int_equal(tbgw_ua_asm_feed(&a, &f1, &msg, &len, &rid), 1);
    assert_int_equal(rid, 1);
    assert_int_equal(len, 4);
    assert_memory_equal(msg, "abcd", 4);
    assert_int_equal(tbgw_ua_asm_feed(&a, &f2, &msg, &len, &rid), 1);
    assert_memory_equal(msg, "xyz", 3);

    /* abort drops the partial message and hands back the abort body */
    tbgw_ua_chunk ab = mk('A', 3, "\0\0\x80\x80");
    ab.body_len = 4;
    assert_int_equal(tbgw_ua_asm_feed(&a, &c1, &msg, &len, &rid), 0);
    tbgw_ua_chunk ab1 = ab;
    ab1.request_id = 1;
    assert_int_equal(tbgw_ua_asm_feed(&a, &ab1, &msg, &len, &rid), 2);
    assert_int_equal(len, 4);
    assert_int_equal(tbgw_ua_asm_feed(&a, &f1, &msg, &len, &rid), 1);
    assert_int_equal(len, 2); /* only "cd": "ab" was discarded by the abort */

    /* max message size 10 */
    tbgw_ua_chunk big = mk('C', 4, "0123456789");
    tbgw_ua_chunk more = mk('F', 4, "x");
    assert_int_equal(tbgw_ua_asm_feed(&a, &big, &msg, &len, &rid), 0);
    assert_int_equal(tbgw_ua_asm_feed(&a, &more, &msg, &len, &rid), TBGW_EFULL);
    /* max 3 chunks */
    tbgw_ua_chunk one = mk('C', 5, "a");
    for (int i = 0; i < 3; i++) assert_int_equal(tbgw_ua_asm_feed(&a, &one, &msg, &len, &rid), 0);
    assert_int_equal(tbgw_ua_asm_feed(&a, &one, &msg, &len, &rid), TBGW_EFULL);
    /* running out of slots */
    for (uint32_t i = 0; i < TBGW_UA_ASM_SLOTS; i++) {
        tbgw_ua_chunk s = mk('C', 100 + i, "q");
        assert_int_equal(tbgw_ua_asm_feed(&a, &s, &msg, &len, &rid), 0);
    }
    tbgw_ua_chunk s = mk('C', 200, "q");
    assert_int_equal(tbgw_ua_asm_feed(&a, &s, &msg, &len, &rid), TBGW_EFULL);
    tbgw_ua_asm_free(&a);
}

static void test_opn_parse(void **state) {
    (void)state;
    tbgw_buf b;
    tbgw_buf_init(&b);
    uint32_t seq = 1;
    const char *uri = "http://opcfoundation.org/UA/SecurityPolicy#None";
    assert_int_equal(tbgw_ua_chunk_opn(&b, 0, uri, &seq, 7, (const uint8_t *)"body", 4), 0);
    tbgw_ua_chunk c;
    assert_int_equal(tbgw_ua_chunk_parse((const uint8_t *)b.p, b.len, &c), 0);
    assert_string_equal(c.type, "OPN");
    assert_int_equal(c.policy_uri_len, (int32_t)strlen(uri));
    assert_memory_equal(c.policy_uri, uri, strlen(uri));
    assert_int_equal(c.sender_cert_len, -1);
    assert_int_equal(c.request_id, 7);
    assert_int_equal(c.body_len, 4);
    /* every truncation (with a patched size) fails cleanly */
    for (size_t n = 8; n < b.len - 4; n++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, b.p, n);
        copy[4] = (uint8_t)n, copy[5] = (uint8_t)(n >> 8), copy[6] = 0, copy[7] = 0;
        tbgw_ua_chunk t;
        int rc = tbgw_ua_chunk_parse(copy, n, &t);
        assert_true(rc == TBGW_EPROTO);
        free(copy);
    }
    tbgw_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_ack_err),
        cmocka_unit_test(test_frame_size_checks),
        cmocka_unit_test(test_split_and_reassemble),
        cmocka_unit_test(test_interleave_abort_limits),
        cmocka_unit_test(test_opn_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
