/* Fuzzes the CAN connector's decoders: slcan lines from an adapter, SocketCAN frames read from a
 * socket, and the value layouts applied to the frame's data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/can/can_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const specs[] = {"0:1:bool",   "0:2:big:int:signed", "1:-1:little:long", "0:4:big:float",
                                    "0:8:double", "0:-1:string:utf-8",  "2:3:raw",          "0:12:big:int"};
static int frames;
static void count(void *ud, const can_msg *m) {
    tbgw_py_ctx *ctx = ud;
    frames++;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        json_t *j = json_string(specs[i]);
        can_value_spec s;
        tbgw_err err;
        const tbgw_py_val *v;
        if (can_value_parse(j, &s, &err) == 0) (void)can_value_decode(&s, m->data, m->len, ctx, &v);
        json_decref(j);
    }
    tbgw_py_ctx_reset(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tbgw_py_ctx *ctx = tbgw_py_ctx_new(NULL);
    can_msg m;
    if (can_slcan_parse((const char *)data, size, &m) == 0) {
        char line[40];
        can_slcan_format(&m, line, sizeof line);
        count(ctx, &m);
    }
    /* the same bytes as slcan traffic, and as datagrams of a SocketCAN socket */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0) {
        can_transport *sl = can_slcan_wrap(sv[0]);
        if (size) write(sv[1], data, size);
        sl->read(sl, count, ctx);
        sl->close(sl);
        close(sv[1]);
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0) {
        can_transport *sc = can_socketcan_wrap(sv[0], 1);
        if (size) write(sv[1], data, size);
        sc->read(sc, count, ctx);
        sc->close(sc);
        close(sv[1]);
    }
    uint8_t hex[64];
    char *s = strndup((const char *)data, size);
    if (s) can_hex(s, hex, sizeof hex);
    free(s);
    tbgw_py_ctx_free(ctx);
    return 0;
}
