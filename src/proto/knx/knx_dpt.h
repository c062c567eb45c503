/* KNX datapoint types: a table of the DPTs tbgw knows (by the xknx value-type names the reference's
 * configs use, e.g. "temperature", "percentU8", "string", or by number "9.001"), and their codecs
 * between group values (knx_payload) and JSON/tbgw values. Decoded values: 1.x bool; 5/6/7/8/12/13/
 * 17/20 integers (20.102/20.105 names); 9.x/14.x doubles; 10.x "HH:MM:SS", 11.x "YYYY-MM-DD",
 * 19.x "YYYY-MM-DDTHH:MM:SS", 16.x text; 2.x/3.x/18.x small JSON objects; 232.600 "#rrggbb". */
#ifndef TBGW_PROTO_KNX_DPT_H
#define TBGW_PROTO_KNX_DPT_H

#include <jansson.h>
#include <stddef.h>
#include <tbgw/data.h>

#include "proto/knx/knx_frame.h"

typedef struct knx_dpt knx_dpt;

/* Finds a DPT by value-type name (case-insensitive) or number ("9.001", "9.1", "9"; an unknown
 * sub-number of a known main number gives the main type). NULL when unknown. */
const knx_dpt *knx_dpt_find(const char *name);
const char *knx_dpt_name(const knx_dpt *d);
/* "9.001" */
void knx_dpt_number(const knx_dpt *d, char *out, size_t cap);
/* Closest table name to a misspelt one (for "did you mean"), or NULL. */
const char *knx_dpt_suggest(const char *name);
size_t knx_dpt_count(void);
const knx_dpt *knx_dpt_at(size_t i);

/* Minimum text capacity decode needs for any type. */
#define KNX_DPT_TEXT_CAP 64

/* Decodes a group value. Strings/JSON text are written to text (cap >= KNX_DPT_TEXT_CAP) and out
 * points at it. 0, or TBGW_EPROTO when the payload does not fit the type (length, range). */
int knx_dpt_decode(const knx_dpt *d, const knx_payload *p, tbgw_value *out, char *text, size_t cap);
/* Encodes a JSON value (numbers, bools, strings holding numbers or names, objects for the composite
 * types). 0, or TBGW_EINVAL with a reason in err. */
int knx_dpt_encode(const knx_dpt *d, const json_t *v, knx_payload *out, char *err, size_t errcap);

#endif
