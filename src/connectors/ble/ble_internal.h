/* BLE connector internals shared by its files, its unit tests and its fuzz target. */
#ifndef TBGW_CONNECTORS_BLE_INTERNAL_H
#define TBGW_CONNECTORS_BLE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

#include "convert/pyexpr.h"
#include "util/buf.h"

/* One telemetry or attribute entry of a device. */
typedef struct bitem {
    char *key;
    int telemetry; /* else an attribute */
    int notify;    /* method "notify", else "read" */
    int adv;       /* dataSourceType other than "characteristic": manufacturer data */
    int hex;       /* HexBytes converter, else Bytes */
    char uuid[40]; /* lower-case */
    char *expr;    /* valueExpression */
    tbgw_py *compute;
    tbgw_report_strategy rs; /* the item's, else the device's; TBGW_RS_UNSET = the connector's */
} bitem;

/* Conversion state of one connector thread. */
typedef struct tbgw_ble_conv {
    tbgw_py_ctx *ctx;
    tbgw_py *bigint; /* int(h, 16) for hex slices beyond 60 bits */
    tbgw_buf scratch;
} tbgw_ble_conv;

int tbgw_ble_conv_init(tbgw_ble_conv *cv);
void tbgw_ble_conv_free(tbgw_ble_conv *cv);

/* The value of one item over data: Bytes converter = valueExpression with every [i] / [a:b] token
 * replaced by the decimal values of those bytes (a string); HexBytes converter = the bytes of the
 * (last) slice as one big-endian integer, then `compute` with `value` bound. 0 with *out (text valid
 * until the next call), or TBGW_EINVAL with err when the item yields nothing (as the reference
 * drops it). */
int tbgw_ble_value(tbgw_ble_conv *cv, const bitem *it, const uint8_t *data, size_t n, tbgw_value *out,
                   tbgw_err *err);
/* Adds the item's value to rec (telemetry now, or an attribute). */
int tbgw_ble_add(tbgw_ble_conv *cv, tbgw_converted *rec, const bitem *it, const uint8_t *data, size_t n,
                 tbgw_err *err);

#endif
