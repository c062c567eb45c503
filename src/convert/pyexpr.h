/* A sandboxed evaluator of the Python expression subset the reference's configurations carry
 * (CAN `expression`/`dataExpression`, ODBC mappings, BLE `compute`, MQTT `useEval`, ...).
 *
 * An expression is compiled once (tbgw_py_compile: tokenizer + parser to a compact tree with its
 * constants) and evaluated many times without parsing. Evaluation happens in a context
 * (tbgw_py_ctx): the names a connector binds (scalars, bytes, JSON objects/arrays, objects with
 * attributes), the per-evaluation limits and the memory every value lives in. A compiled expression
 * is immutable and may be shared by threads; a context belongs to one thread.
 *
 * Python semantics: ints of any size, true/floor division and modulo signs, float repr (shortest
 * round trip), str/bytes/list/tuple/dict/set, comprehensions, lambda, f-strings, % and .format,
 * the common builtins and methods. Sandboxed: no imports, no dunder names or attributes, attribute
 * access only on bound objects (and the whitelisted methods of built-in types), no I/O; every
 * evaluation is bounded in steps, call depth and memory and reports Python-style errors
 * ("ZeroDivisionError: division by zero"). Sets iterate in insertion order (Python: hash order). */
#ifndef TBGW_CONVERT_PYEXPR_H
#define TBGW_CONVERT_PYEXPR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/data.h>
#include <tbgw/err.h>
#include "util/buf.h"

typedef struct tbgw_py tbgw_py;
typedef struct tbgw_py_ctx tbgw_py_ctx;
typedef struct pv tbgw_py_val; /* a value living in a context until its next reset */

enum {
    TBGW_PY_STRICT = 1, /* no builtins (CAN strictEval) */
};

/* Compiles src (len bytes). On a syntax error or an unsupported construct returns TBGW_EINVAL,
 * err = "SyntaxError: ... (column N)" / "... is not supported (column N)" and *err_off = the byte
 * offset inside src (err_off may be NULL). */
int tbgw_py_compile(const char *src, size_t len, unsigned flags, tbgw_py **out, tbgw_err *err,
                    size_t *err_off);
void tbgw_py_free(tbgw_py *e);
const char *tbgw_py_source(const tbgw_py *e);

/* Positions: *err_off is a byte offset into src; a connector reports it as "<field>@<offset>: ..."
 * and the configuration loader turns that into file:line:column (util/doc.h). */

typedef struct tbgw_py_limits {
    uint64_t max_steps; /* evaluation steps (nodes, loop iterations, element copies); 0 = 1e6 */
    size_t max_memory;  /* bytes of values per evaluation; 0 = 16 MiB */
    int max_depth;      /* nested lambda calls; 0 = 100 */
} tbgw_py_limits;

tbgw_py_ctx *tbgw_py_ctx_new(const tbgw_py_limits *lim);
void tbgw_py_ctx_free(tbgw_py_ctx *c);
/* Drops every binding and value (results included). */
void tbgw_py_ctx_reset(tbgw_py_ctx *c);

/* Values for bindings. NULL only when out of memory. Strings are copied. */
tbgw_py_val *tbgw_py_none(tbgw_py_ctx *c);
tbgw_py_val *tbgw_py_bool(tbgw_py_ctx *c, int b);
tbgw_py_val *tbgw_py_int(tbgw_py_ctx *c, int64_t i);
tbgw_py_val *tbgw_py_float(tbgw_py_ctx *c, double d);
tbgw_py_val *tbgw_py_str(tbgw_py_ctx *c, const char *s, size_t n);
tbgw_py_val *tbgw_py_bytes(tbgw_py_ctx *c, const void *p, size_t n);
/* JSON: object -> dict, array -> list, integer -> int, real -> float, ... (deep copy) */
tbgw_py_val *tbgw_py_from_json(tbgw_py_ctx *c, const json_t *j);
tbgw_py_val *tbgw_py_from_value(tbgw_py_ctx *c, const tbgw_value *v);
/* An object whose attributes are set with tbgw_py_setattr (`device.name`). */
tbgw_py_val *tbgw_py_object(tbgw_py_ctx *c, const char *type_name);
int tbgw_py_setattr(tbgw_py_ctx *c, tbgw_py_val *obj, const char *name, const tbgw_py_val *v);
/* Binds name (copied) to v; a later binding of the same name replaces it. */
int tbgw_py_bind(tbgw_py_ctx *c, const char *name, const tbgw_py_val *v);
/* Binds every member of a JSON object as a name (row columns, CAN data dicts). */
int tbgw_py_bind_json_members(tbgw_py_ctx *c, const json_t *obj);

/* One-expression functions, the form configurations carry as Python source (the Request connector's
 * processingFunction): `def name(p1, p2): return <expression>`, the body on the same line or on the
 * next indented line (blank and comment lines around are fine). Parameters are plain names (no
 * defaults, annotations or *args). Anything else — more statements, assignments, loops, a second
 * def — gives TBGW_EINVAL with err naming it and its column, *err_off = its byte offset in src. */
typedef struct tbgw_py_def tbgw_py_def;
int tbgw_py_compile_def(const char *src, size_t len, unsigned flags, tbgw_py_def **out, tbgw_err *err,
                        size_t *err_off);
void tbgw_py_def_free(tbgw_py_def *f);
const char *tbgw_py_def_name(const tbgw_py_def *f);
size_t tbgw_py_def_arity(const tbgw_py_def *f);
/* Calls f: binds args[i] to the i-th parameter in c (as tbgw_py_bind does, so they shadow earlier
 * bindings) and evaluates the body. A wrong argument count is Python's TypeError. */
int tbgw_py_call_def(const tbgw_py_def *f, tbgw_py_ctx *c, const tbgw_py_val *const *args, size_t n,
                     const tbgw_py_val **out, tbgw_err *err);

/* Evaluates e with the context's bindings. Returns 0 and *out (valid until the next reset), or
 * TBGW_EINVAL with err = the Python-style error ("NameError: name 'x' is not defined"). Values
 * from earlier evaluations stay valid until tbgw_py_ctx_reset. */
int tbgw_py_eval(const tbgw_py *e, tbgw_py_ctx *c, const tbgw_py_val **out, tbgw_err *err);
/* Calls the builtin `name` (int, float, bool, str, ...) on one value, like Python's name(v). */
int tbgw_py_apply(tbgw_py_ctx *c, const char *name, const tbgw_py_val *v, const tbgw_py_val **out,
                  tbgw_err *err);

/* Results. repr/text return TBGW_EINVAL when Python would raise (an int of more than 4300 digits,
 * the step limit); tbgw_py_last_error() then has the message. */
int tbgw_py_truthy(tbgw_py_ctx *c, const tbgw_py_val *v);
int tbgw_py_repr(tbgw_py_ctx *c, const tbgw_py_val *v, tbgw_buf *out); /* repr(v) */
int tbgw_py_text(tbgw_py_ctx *c, const tbgw_py_val *v, tbgw_buf *out); /* str(v) */
const char *tbgw_py_last_error(const tbgw_py_ctx *c);
/* JSON of the value (json.dumps rules: tuples are arrays, dict keys become strings; ints beyond
 * 64 bits become reals). bytes, functions and NaN/inf give TBGW_EINVAL with err. */
int tbgw_py_to_json(tbgw_py_ctx *c, const tbgw_py_val *v, json_t **out, tbgw_err *err);
/* A datapoint value: None/bool/int/float/str directly, ints above INT64_MAX that fit 64 bits as
 * TBGW_V_UINT, larger ones as their exact digits (TBGW_V_NUMBER), lists/tuples/dicts as JSON
 * (TBGW_V_JSON); text lives in scratch. NaN/inf, bytes and the like
 * give TBGW_EINVAL with err. */
int tbgw_py_to_value(tbgw_py_ctx *c, const tbgw_py_val *v, tbgw_value *out, tbgw_buf *scratch, tbgw_err *err);

#endif
