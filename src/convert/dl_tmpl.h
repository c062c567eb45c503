/* Templates of outgoing requests (HTTP connectors' attribute updates, RPC, sub-requests): `${...}`
 * placeholders naming request values or paths into a JSON document, with URL quoting for URLs and
 * JSON-string escaping for bodies. */
#ifndef TBGW_CONVERT_DL_TMPL_H
#define TBGW_CONVERT_DL_TMPL_H

#include <jansson.h>
#include <stdint.h>
#include "convert/expr.h"
#include "util/buf.h"

/* Values a downlink or sub-request template may name: ${deviceName}, ${attributeKey},
 * ${attributeValue}, ${methodName}, ${requestId}; any other placeholder is a path into root
 * (the response item, or {"id","method","params"} of an RPC). */
typedef struct tbgw_dl_vars {
    const char *device, *key, *method;
    const json_t *value; /* attributeValue */
    int64_t id;
    const json_t *root;
    int quote;       /* URL-quote every substituted value */
    int json_escape; /* escape string values for use inside a JSON string literal */
} tbgw_dl_vars;
/* Renders e into out (appended). TBGW_ENOENT when a placeholder has no value. */
int tbgw_dl_render(const tbgw_expr *e, const tbgw_dl_vars *v, tbgw_buf *out);

/* Percent-encodes like Python's urllib.parse.quote (safe: letters, digits, "_.-~/"); appended. */
int tbgw_url_quote(tbgw_buf *out, const char *s, size_t n);

#endif
