/* JSON numbers end to end: one parser for every JSON text a device or the platform sends, one writer
 * for every JSON text tbgw produces.
 *
 * jansson holds integers as int64 and refuses any JSON text holding a larger one ("too big integer").
 * tbgw_json_loadb accepts every JSON number: a number jansson cannot hold (an integer beyond int64, a
 * real beyond the double range) becomes a *number node*: a jansson string whose bytes are
 * "\0\xff" followed by the number's exact JSON text. No parsed text can produce such a string (it is
 * not valid UTF-8), code that reads it as a C string sees "", and tbgw_buf_json / tbgw_json_dumps
 * write it back as the bare number. tbgw_value_from_json (include/tbgw/data.h) turns it into
 * TBGW_V_UINT (integers up to 2^64-1) or TBGW_V_NUMBER (everything larger, digits kept).
 *
 * Doubles are written in the shortest form that reads back to the same value, formatted as Python's
 * repr() does (tbgw_fmt_double in util/buf.h). */
#ifndef TBGW_UTIL_JSON_H
#define TBGW_UTIL_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Parses like json_loadb(text, len, flags, err) but never fails for the size of a number. On error,
 * err (may be NULL) names line, column and reason in the original text. */
json_t *tbgw_json_loadb(const void *text, size_t len, size_t flags, json_error_t *err);
json_t *tbgw_json_loads(const char *text, size_t flags, json_error_t *err);

/* A number node holding the exact JSON number text (not validated beyond being non-empty). */
json_t *tbgw_json_number_text(const char *text, size_t len);
/* A jansson integer when u fits int64, else a number node with its digits. */
json_t *tbgw_json_u64(uint64_t u);
/* The number text of a number node (length in *len when len is not NULL), or NULL for any other value. */
const char *tbgw_json_number_of(const json_t *j, size_t *len);
/* 1 for jansson integers/reals and number nodes. */
int tbgw_json_is_number(const json_t *j);
/* Classifies an integer text ("-?digits"): 0 = fits int64 (*i), 1 = fits uint64 above int64 (*u),
 * 2 = integer beyond both, -1 = not an integer text. */
int tbgw_int_text(const char *s, size_t n, int64_t *i, uint64_t *u);
/* The value of any JSON number as a double (number nodes parsed with strtod; may be inf). */
double tbgw_json_number_double(const json_t *j);

/* Appends j as JSON: compact when indent is 0, else pretty-printed like jansson's JSON_INDENT(indent).
 * Objects keep their insertion order; doubles are shortest; number nodes are bare numbers. */
int tbgw_buf_json(tbgw_buf *b, const json_t *j, int indent);
/* Appends j as Python's json.dumps(j) writes it by default: ", " and ": " between items, every
 * character outside ASCII 0x20..0x7e escaped (\uXXXX, surrogate pairs), doubles as repr. */
int tbgw_buf_json_py(tbgw_buf *b, const json_t *j);
/* malloc'd text of tbgw_buf_json (NULL on allocation failure). */
char *tbgw_json_dumps(const json_t *j, int indent);

#endif
