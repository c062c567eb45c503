/* `useEval` values (spec §5.2, reference TBUtility.convert_data_type): the text a value template
 * renders to is evaluated as a Python expression, then cast by the datapoint's type like the
 * reference: int/long types int(float(v)), float/double float(v), bool bool(v), other types str(v).
 * Types whose name contains "str" are never evaluated (the reference returns the text as it is).
 *
 * The text changes with the payload, so it is compiled when it changes: each key keeps the last
 * compiled text (a key whose substituted text repeats is parsed once). */
#ifndef TBGW_CONVERT_PY_CAST_H
#define TBGW_CONVERT_PY_CAST_H

#include <tbgw/data.h>
#include <tbgw/err.h>
#include "convert/expr.h"
#include "convert/pyexpr.h"
#include "util/buf.h"

typedef struct tbgw_py_key {
    char *src; /* last compiled text */
    size_t len;
    tbgw_py *e;
    int64_t logged_ms; /* last time an evaluation error of this key was logged */
} tbgw_py_key;

/* 1 when a datapoint of this type name is evaluated under useEval. */
int tbgw_py_cast_applies(const char *type);
void tbgw_py_key_clear(tbgw_py_key *k);
/* Evaluates text in ctx (reset first) and casts it; string results live in scratch. Returns 0, or
 * TBGW_EINVAL with err = the Python error ("ZeroDivisionError: division by zero"), TBGW_ENOMEM. */
int tbgw_py_eval_cast(tbgw_py_ctx *ctx, tbgw_py_key *k, const char *text, tbgw_cast cast, tbgw_value *out,
                      tbgw_buf *scratch, tbgw_err *err);

#endif
