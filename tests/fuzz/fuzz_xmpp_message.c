/* Fuzzes the XMPP connector's message conversion: a body from a device, converted by the reference
 * configuration's templates (JSON bodies) and by character slices (text bodies). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/xmpp/xmpp_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tbgw_expr *ex(const char *s) {
    tbgw_expr *e = NULL;
    tbgw_err err;
    tbgw_expr_compile(s, &e, &err);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static xdev devs[2];
    static xkey attrs[1], ts[3];
    if (!devs[0].name) {
        attrs[0] = (xkey){ex("temperature"), ex("${temp}")};
        ts[0] = (xkey){ex("humidity"), ex("${hum}")};
        ts[1] = (xkey){ex("combination"), ex("${temp}:${hum}")};
        ts[2] = (xkey){ex("level"), ex("[5:]")};
        devs[0] = (xdev){.name = ex("${serialNumber}"),
                         .type = ex("default"),
                         .attrs = attrs,
                         .n_attrs = 1,
                         .ts = ts,
                         .n_ts = 2};
        devs[1] = (xdev){.name = ex("[0:4]"), .type = ex("[-2]"), .ts = ts + 2, .n_ts = 1};
    }
    char *body = malloc(size + 1);
    if (!body) return 0;
    memcpy(body, data, size);
    body[size] = 0;
    for (int i = 0; i < 2; i++) tbgw_converted_free(tbgw_xmpp_convert(&devs[i], body));
    free(body);
    return 0;
}
