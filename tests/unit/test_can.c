/* CAN connector: slcan lines, the SocketCAN framing over a socketpair carrying struct can_frame /
 * canfd_frame, and the byte converters with the vectors of the reference's unit tests. */
#include <linux/can.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "connectors/can/can_internal.h"

static void test_slcan_lines(void **state) {
    (void)state;
    can_msg m = {.id = 0x29, .len = 4, .data = {0xAB, 0xCD, 0xAB, 0xCD}};
    char line[40];
    assert_int_equal(can_slcan_format(&m, line, sizeof line), 14);
    assert_string_equal(line, "t0294ABCDABCD\r");
    m = (can_msg){.id = 0x77E, .extended = 1, .len = 2, .data = {0x01, 0xFF}};
    can_slcan_format(&m, line, sizeof line);
    assert_string_equal(line, "T0000077E201FF\r");
    can_msg p;
    assert_int_equal(can_slcan_parse("T0000077E201FF", 14, &p), 0);
    assert_true(p.extended);
    assert_int_equal(p.id, 0x77E);
    assert_int_equal(p.len, 2);
    assert_int_equal(p.data[1], 0xFF);
    assert_int_equal(can_slcan_parse("t0298AA00220D04000000", 21, &p), 0);
    assert_int_equal(p.data[4], 4);
    assert_int_equal(can_slcan_parse("t02", 3, &p), -1);       /* short */
    assert_int_equal(can_slcan_parse("t8001FF", 7, &p), -1);   /* 11-bit id over 0x7FF */
    assert_int_equal(can_slcan_parse("t0299AA", 7, &p), -1);   /* dlc 9 */
    assert_int_equal(can_slcan_parse("t0292ZZ00", 9, &p), -1); /* not hex */
    assert_int_equal(can_slcan_parse("z", 1, &p), -1);
    assert_int_equal(can_slcan_speed(500000), 6);
    assert_int_equal(can_slcan_speed(1000000), 8);
    assert_int_equal(can_slcan_speed(123), -1);
}

static int got;
static can_msg last;
static void keep(void *ud, const can_msg *m) {
    (void)ud;
    got++;
    last = *m;
}

static void test_socketcan_framing_over_socketpair(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    can_transport *t = can_socketcan_wrap(sv[0], 1);
    /* classic frame, extended id */
    struct can_frame f = {.can_id = 0x77E | CAN_EFF_FLAG, .can_dlc = 3, .data = {1, 2, 3}};
    assert_int_equal(write(sv[1], &f, sizeof f), (int)sizeof f);
    /* an error frame and a remote frame are not data */
    struct can_frame e = {.can_id = CAN_ERR_FLAG | 4, .can_dlc = 8};
    assert_int_equal(write(sv[1], &e, sizeof e), (int)sizeof e);
    struct can_frame r = {.can_id = 0x10 | CAN_RTR_FLAG};
    assert_int_equal(write(sv[1], &r, sizeof r), (int)sizeof r);
    /* an FD frame of 12 bytes with bit rate switch */
    struct canfd_frame fd = {.can_id = 0x5, .len = 12, .flags = CANFD_BRS};
    for (int i = 0; i < 12; i++) fd.data[i] = (uint8_t)i;
    assert_int_equal(write(sv[1], &fd, sizeof fd), (int)sizeof fd);
    got = 0;
    assert_int_equal(t->read(t, keep, NULL), 0);
    assert_int_equal(got, 2);
    assert_true(last.fd && last.brs);
    assert_int_equal(last.len, 12);
    assert_int_equal(last.data[11], 11);
    /* writing: classic and FD sizes, id checks */
    can_msg m = {.id = 0x7FF, .len = 2, .data = {9, 8}};
    tbgw_err err = {0};
    assert_int_equal(t->write(t, &m, &err), 0);
    struct canfd_frame in;
    assert_int_equal(read(sv[1], &in, sizeof in), CAN_MTU);
    assert_int_equal(in.can_id, 0x7FF);
    m.id = 0x800;
    assert_int_not_equal(t->write(t, &m, &err), 0);
    assert_non_null(strstr(err.msg, "standard (11-bit)"));
    m = (can_msg){.id = 0x123, .extended = 1, .fd = 1, .len = 20};
    assert_int_equal(t->write(t, &m, &err), 0);
    assert_int_equal(read(sv[1], &in, sizeof in), CANFD_MTU);
    assert_int_equal(in.can_id, 0x123 | CAN_EFF_FLAG);
    t->close(t);
    close(sv[1]);
}

/* Decodes data with a value spec and an optional expression; returns repr() of the result. */
static const char *decode(const char *spec, const uint8_t *data, size_t len, const char *expr, int strict) {
    static char out[256];
    tbgw_py_ctx *ctx = tbgw_py_ctx_new(NULL);
    json_t *js = json_string(spec);
    can_value_spec s;
    tbgw_err err = {0};
    const tbgw_py_val *v = NULL, *r;
    snprintf(out, sizeof out, "<none>");
    if (can_value_parse(js, &s, &err) == 0 && can_value_decode(&s, data, len, ctx, &v) == 0) {
        r = v;
        tbgw_py *e = NULL;
        if (expr) {
            tbgw_py_bind(ctx, "value", v);
            if (tbgw_py_compile(expr, strlen(expr), strict ? TBGW_PY_STRICT : 0, &e, &err, NULL) ||
                tbgw_py_eval(e, ctx, &r, &err))
                r = NULL;
        }
        tbgw_buf b;
        tbgw_buf_init(&b);
        if (r && tbgw_py_repr(ctx, r, &b) == 0) snprintf(out, sizeof out, "%s", tbgw_buf_cstr(&b));
        tbgw_buf_free(&b);
        tbgw_py_free(e);
    }
    json_decref(js);
    tbgw_py_ctx_free(ctx);
    return out;
}

static void test_uplink_vectors(void **state) {
    (void)state;
    const uint8_t d1[] = {0, 1, 0, 0, 0, 0, 0, 0};
    assert_string_equal(decode("1:1:bool", d1, 8, NULL, 1), "True");
    assert_string_equal(decode("0:1:boolean", d1, 8, NULL, 1), "False");
    const uint8_t d2[] = {0xFF, 0xFE, 0x01, 0x02};
    assert_string_equal(decode("0:2:big:int:signed", d2, 4, NULL, 1), "-2");
    assert_string_equal(decode("0:2:little:int", d2, 4, NULL, 1), "65279");
    assert_string_equal(decode("2:2:big:long", d2, 4, NULL, 1), "258");
    const uint8_t big[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    assert_string_equal(decode("0:8:big:int", big, 9, NULL, 1), "18446744073709551615");
    assert_string_equal(decode("0:9:big:int", big, 9, NULL, 1), "4722366482869645213441");
    const uint8_t f1[] = {0x41, 0x20, 0x00, 0x00}; /* 10.0f */
    assert_string_equal(decode("0:4:big:float", f1, 4, NULL, 1), "10.0");
    assert_string_equal(decode("0:3:big:float", f1, 4, NULL, 1), "<none>"); /* too short: dropped */
    const uint8_t dd[] = {0x1F, 0x85, 0xEB, 0x51, 0xB8, 0x1E, 0x09, 0x40};  /* 3.14 little */
    assert_string_equal(decode("0:8:little:double", dd, 8, NULL, 1), "3.14");
    const uint8_t txt[] = {'h', 'e', 'l', 'l', 'o', 0xC3, 0xA9};
    assert_string_equal(decode("0:5:string", txt, 7, NULL, 1), "'hello'");
    assert_string_equal(decode("0:-1:string:utf-8", txt, 7, NULL, 1), "'hello\xc3\xa9'");
    assert_string_equal(decode("0:-1:string", txt, 7, NULL, 1), "<none>"); /* not ascii */
    assert_string_equal(decode("3:2:raw", d2, 4, NULL, 1), "'02'");
    assert_string_equal(decode("0:-1:raw", d2, 4, NULL, 1), "'fffe0102'");
    /* expressions: strict has no builtins */
    const uint8_t e1[] = {0, 0, 0, 0, 0x06};
    assert_string_equal(decode("4:1:int", e1, 5, "bool(value & 0b00000100)", 0), "True");
    assert_string_equal(decode("4:1:int", e1, 5, "value * value", 1), "36");
    assert_string_equal(decode("4:1:int", e1, 5, "pow(value, 2)", 1), "<none>");
    assert_string_equal(decode("4:1:int", e1, 5, "pow(value, 2)", 0), "36");
    assert_string_equal(decode("4:1:int", e1, 5, "value / 4", 1), "1.5");
    tbgw_err err;
    can_value_spec s;
    json_t *bad = json_string("4:1:quaternion");
    assert_int_not_equal(can_value_parse(bad, &s, &err), 0);
    json_decref(bad);
}

static const char *encode(const char *opts, const char *data) {
    static char out[200];
    json_error_t je;
    json_t *o = json_loads(opts, 0, &je), *d = json_loads(data, JSON_DECODE_ANY, &je);
    can_down dn;
    tbgw_err err = {0};
    tbgw_py_ctx *ctx = tbgw_py_ctx_new(NULL);
    uint8_t b[64];
    int n = can_down_parse(o, NULL, 1, &dn, &err) == 0 ? can_down_encode(&dn, d, ctx, b, sizeof b, &err) : -1;
    out[0] = 0;
    if (n < 0) snprintf(out, sizeof out, "error");
    for (int i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    can_down_free(&dn);
    tbgw_py_ctx_free(ctx);
    json_decref(o);
    json_decref(d);
    return out;
}

static void test_downlink_vectors(void **state) {
    (void)state;
    assert_string_equal(encode("{\"dataInHex\": \"aa bb\"}", "{}"), "aabb");
    assert_string_equal(encode("{}", "{\"dataInHex\": \"0102\"}"), "0102");
    assert_string_equal(encode("{}", "[]"), "error"); /* not a dictionary */
    assert_string_equal(encode("{}", "{\"value\": true}"), "01");
    assert_string_equal(
        encode("{\"dataLength\": 4, \"dataByteorder\": \"little\", \"dataExpression\": \"value + 5\"}",
               "{\"value\": 3}"),
        "08000000");
    assert_string_equal(encode("{\"dataLength\": 2}", "{\"value\": -2}"), "fffe");   /* negative: signed */
    assert_string_equal(encode("{\"dataLength\": 1}", "{\"value\": 300}"), "error"); /* OverflowError */
    assert_string_equal(encode("{}", "{\"value\": 1.5}"), "3fc00000");
    assert_string_equal(encode("{\"dataByteorder\": \"little\"}", "{\"value\": 1.5}"), "0000c03f");
    assert_string_equal(encode("{\"dataBefore\": \"00AA\", \"dataAfter\": \"0102\"}", "{\"value\": \"hi\"}"),
                        "00aa68690102");
    assert_string_equal(
        encode("{\"dataExpression\": \"userSpeed if maxAllowedSpeed > userSpeed else maxAllowedSpeed\"}",
               "{\"userSpeed\": 50, \"maxAllowedSpeed\": 40}"),
        "28");
    assert_string_equal(encode("{\"dataExpression\": \"pow(value, 2)\"}", "{\"value\": 3}"),
                        "error");                                 /* strict */
    assert_string_equal(encode("{}", "{\"other\": 1}"), "error"); /* no value */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slcan_lines),
        cmocka_unit_test(test_socketcan_framing_over_socketpair),
        cmocka_unit_test(test_uplink_vectors),
        cmocka_unit_test(test_downlink_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
