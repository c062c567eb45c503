/* ODBC connector internals: the mapping of a result row onto a device record (odbc_conv.c, pure and
 * fuzzed by tests/fuzz/fuzz_odbc_row.c) and the SQL value helpers. The driver side is in odbc.c. */
#ifndef TBGW_CONNECTORS_ODBC_INTERNAL_H
#define TBGW_CONNECTORS_ODBC_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

#include "convert/pyexpr.h"
#include "util/buf.h"

/* One entry of mapping.attributes / mapping.timeseries. */
typedef struct odbc_item {
    char *name;         /* literal key, or NULL */
    tbgw_py *name_expr; /* nameExpression */
    char *column;       /* value from this column, or NULL */
    tbgw_py *value;     /* value expression */
} odbc_item;

typedef struct odbc_section {
    int all; /* "*": every column under its own name */
    odbc_item *items;
    size_t n;
} odbc_section;

typedef struct odbc_mapping {
    int whole; /* "mapping": "*": rows carry deviceName, deviceType, attributes, telemetry|timeseries */
    tbgw_py *dev_name;
    tbgw_py *dev_type; /* NULL: the type is the constant type_text */
    char *type_text;   /* as written ("default" when absent) */
    odbc_section attrs, ts;
} odbc_mapping;

/* Called for a tolerated mistake (one entry skipped): dotted path and reason. */
typedef void (*odbc_warn_fn)(void *ud, const char *dotted, const char *msg);

/* Parses "mapping" (m: an object, or "*" for the whole-mapping mode); errors name the field
 * ("mapping.device.name@3: SyntaxError ..."). */
int odbc_mapping_parse(const json_t *m, odbc_mapping *out, odbc_warn_fn warn, void *ud, tbgw_err *err);
void odbc_mapping_free(odbc_mapping *m);

/* Converts one row (a JSON object column -> value; SQL NULL is JSON null) into a record, or NULL
 * with err when the row is broken (device name not computable) or yields no datapoint (err code
 * TBGW_ENOENT then). Per-item errors skip the item and are counted in *item_errors. ctx is reset. */
tbgw_converted *odbc_convert_row(const odbc_mapping *m, tbgw_py_ctx *ctx, const json_t *row,
                                 size_t *item_errors, tbgw_err *err);

/* mapping.device.name evaluated over the row into out (text); TBGW_EINVAL with err when it fails. */
int odbc_device_name(const odbc_mapping *m, tbgw_py_ctx *ctx, const json_t *row, tbgw_buf *out,
                     tbgw_err *err);

/* The whole-mapping mode: the row's deviceName (text), deviceType (default "default"), attributes
 * and telemetry (or timeseries) columns, each a JSON object as text ({"key": value}), a list of such
 * objects, or for telemetry {"ts": ms, "values": {...}} (or a list of those). NULL with err for a
 * row without deviceName or with a column that is not such JSON (TBGW_ENOENT: no datapoint). */
tbgw_converted *odbc_convert_whole(const json_t *row, tbgw_err *err);

/* The text of a SQL DECIMAL/NUMERIC value as a JSON number (an integer when it has no fraction and
 * fits 64 bits, else a real); NULL when the text is not a number. */
json_t *odbc_decimal_json(const char *text);

#endif
