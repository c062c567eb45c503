/* Serial line settings of the Modbus stack: baudrate, bytesize, parity and stop bits reach the port
 * (a pty opened with openpty stands in for a serial device), and the RTU inter-frame silence follows
 * the character length. tcsetattr is interposed to see exactly what the stack asks for, because the
 * Linux pty driver drops PARENB and CSIZE (it keeps speed, CSTOPB and PARODD, which are read back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "proto/modbus/mb_internal.h"
#include "proto/modbus/mb_loop.h"

static struct termios last_set;
static int last_set_fd = -1, n_set;

/* Records what the stack requests, then lets libc apply it. */
int tcsetattr(int fd, int act, const struct termios *t) {
    static int (*real)(int, int, const struct termios *);
    if (!real) real = (int (*)(int, int, const struct termios *))dlsym(RTLD_NEXT, "tcsetattr");
    last_set = *t;
    last_set_fd = fd;
    n_set++;
    return real(fd, act, t);
}

typedef struct line_case {
    int baud, bytesize, stopbits;
    char parity;
    speed_t speed;
} line_case;

static tbgw_mb_endpoint serial_ep(const char *path, const line_case *lc) {
    tbgw_mb_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.transport = TBGW_MB_SERIAL;
    ep.framing = TBGW_MB_FRAMING_RTU;
    ep.path = path;
    ep.baudrate = lc->baud;
    ep.bytesize = lc->bytesize;
    ep.stopbits = lc->stopbits;
    ep.parity = lc->parity;
    return ep;
}

static void check_flags(const struct termios *t, const line_case *lc, int all) {
    assert_int_equal(cfgetospeed(t), lc->speed);
    assert_int_equal(cfgetispeed(t), lc->speed);
    assert_int_equal(!!(t->c_cflag & CSTOPB), lc->stopbits == 2);
    assert_int_equal(!!(t->c_cflag & PARODD), lc->parity == 'O');
    if (!all) return;
    assert_int_equal(!!(t->c_cflag & PARENB), lc->parity != 'N');
    assert_int_equal(t->c_cflag & CSIZE, lc->bytesize == 7 ? CS7 : CS8);
    assert_true(t->c_cflag & CREAD);
    assert_true(t->c_cflag & CLOCAL);
    assert_int_equal(t->c_lflag & (ICANON | ECHO), 0); /* raw */
}

static const line_case CASES[] = {
    {9600, 7, 2, 'E', B9600},     {9600, 8, 1, 'O', B9600}, {19200, 8, 1, 'N', B19200},
    {115200, 8, 2, 'N', B115200}, {4800, 7, 1, 'O', B4800},
};

static void test_line_settings_applied(void **st) {
    (void)st;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const line_case *lc = &CASES[i];
        int master, slave;
        char name[128];
        assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
        tbgw_mb_endpoint ep = serial_ep(name, lc);
        char err[200] = "";
        n_set = 0;
        int fd = mb_serial_open(&ep, err, sizeof err);
        if (fd < 0) fail_msg("open %s: %s", name, err);
        /* what the stack asked for: every setting */
        assert_int_equal(n_set, 1);
        assert_int_equal(last_set_fd, fd);
        check_flags(&last_set, lc, 1);
        /* what the port holds now: all the pty driver keeps */
        struct termios now;
        assert_int_equal(tcgetattr(fd, &now), 0);
        check_flags(&now, lc, 0);
        close(fd);
        close(slave);
        close(master);
    }
    /* the server side opens its line the same way */
    int master, slave;
    char name[128];
    assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
    tbgw_mb_loop *l = tbgw_mb_loop_new(NULL);
    tbgw_mb_endpoint ep = serial_ep(name, &CASES[0]);
    static tbgw_mb_store store;
    tbgw_err e = {0};
    n_set = 0;
    tbgw_mb_server *s = tbgw_mb_server_new(l, &ep, 1, &store, NULL, NULL, &e);
    if (!s) fail_msg("server: %s", e.msg);
    assert_int_equal(n_set, 1);
    check_flags(&last_set, &CASES[0], 1);
    tbgw_mb_loop_free(l);
    close(slave);
    close(master);
    /* an unsupported rate is refused with a message naming it */
    line_case bad = {12345, 8, 1, 'N', 0};
    assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
    ep = serial_ep(name, &bad);
    char err[200] = "";
    assert_true(mb_serial_open(&ep, err, sizeof err) < 0);
    assert_non_null(strstr(err, "unsupported baudrate 12345"));
    close(slave);
    close(master);
}

static void test_rtu_inter_frame_time(void **st) {
    (void)st;
    line_case c8n1 = {9600, 8, 1, 'N', B9600}, c8e1 = {9600, 8, 1, 'E', B9600},
              c8n2 = {9600, 8, 2, 'N', B9600}, c7e2 = {9600, 7, 2, 'E', B9600},
              c8o2 = {9600, 8, 2, 'O', B9600}, fast = {115200, 8, 1, 'E', B115200};
    tbgw_mb_endpoint e8n1 = serial_ep("x", &c8n1), e8e1 = serial_ep("x", &c8e1), e8n2 = serial_ep("x", &c8n2),
                     e7e2 = serial_ep("x", &c7e2), e8o2 = serial_ep("x", &c8o2),
                     efast = serial_ep("x", &fast);
    /* start + data + parity + stop bits */
    assert_int_equal(tbgw_mb_char_bits(&e8n1), 10);
    assert_int_equal(tbgw_mb_char_bits(&e8e1), 11);
    assert_int_equal(tbgw_mb_char_bits(&e8n2), 11);
    assert_int_equal(tbgw_mb_char_bits(&e7e2), 11);
    assert_int_equal(tbgw_mb_char_bits(&e8o2), 12);
    /* 3.5 characters at 9600 baud: 3.5 * 10 / 9600 s = 3645.8 us; 11 bits: 4010.4 us; 12 bits: 4375 us */
    assert_int_equal(tbgw_mb_t35_us(&e8n1), 3646);
    assert_int_equal(tbgw_mb_t35_us(&e8e1), 4011);
    assert_int_equal(tbgw_mb_t35_us(&e8o2), 4375);
    assert_int_equal(tbgw_mb_t35_us(&efast), 1750); /* fixed above 19200 baud */
    /* a connection keeps at least that silence (whole ms) between an answer and the next request */
    tbgw_mb_loop *l = tbgw_mb_loop_new(NULL);
    assert_int_equal(tbgw_mb_conn_endpoint(tbgw_mb_conn_new(l, &e8n1))->delay_between_ms, 4);
    assert_int_equal(tbgw_mb_conn_endpoint(tbgw_mb_conn_new(l, &e8e1))->delay_between_ms, 5);
    assert_int_equal(tbgw_mb_conn_endpoint(tbgw_mb_conn_new(l, &efast))->delay_between_ms, 2);
    e8e1.delay_between_ms = 50; /* delayBetweenRequestsMs above t3.5 wins */
    assert_int_equal(tbgw_mb_conn_endpoint(tbgw_mb_conn_new(l, &e8e1))->delay_between_ms, 50);
    tbgw_mb_loop_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_settings_applied),
        cmocka_unit_test(test_rtu_inter_frame_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
