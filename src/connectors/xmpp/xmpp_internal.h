/* XMPP connector internals shared by its files and its fuzz target. */
#ifndef TBGW_CONNECTORS_XMPP_INTERNAL_H
#define TBGW_CONNECTORS_XMPP_INTERNAL_H

#include <jansson.h>
#include <tbgw/data.h>

#include "convert/expr.h"

typedef struct xkey {
    tbgw_expr *key, *value;
} xkey;

/* One configured device: its full JID and compiled templates. */
typedef struct xdev {
    char *jid;
    tbgw_expr *name, *type;
    xkey *attrs, *ts;
    size_t n_attrs, n_ts;
    const json_t *cfg; /* the device's object in the configuration (kept alive by xc->cfg) */
} xdev;

/* Converts one message body of device d as the reference's XmppUplinkConverter: a JSON object or
 * array through the ${...} templates, any other body by [i] / [a:b] character slices. NULL when it
 * yields no device. */
tbgw_converted *tbgw_xmpp_convert(const xdev *d, const char *body);

#endif
