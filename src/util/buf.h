/* Growable byte buffer with JSON helpers. */
#ifndef TBGW_UTIL_BUF_H
#define TBGW_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/data.h>

typedef struct tbgw_buf {
    char *p;
    size_t len, cap;
    int oom; /* sticky allocation failure */
} tbgw_buf;

void tbgw_buf_init(tbgw_buf *b);
void tbgw_buf_free(tbgw_buf *b);
void tbgw_buf_reset(tbgw_buf *b);
int tbgw_buf_reserve(tbgw_buf *b, size_t extra);
int tbgw_buf_append(tbgw_buf *b, const void *data, size_t n);
int tbgw_buf_puts(tbgw_buf *b, const char *s);
int tbgw_buf_putc(tbgw_buf *b, char c);
/* Per-thread pool of scratch storage for buffers that live for one call of a hot path (one record
 * encoded, one message converted): tbgw_buf_scratch_take initialises b with storage from the calling
 * thread's pool (empty, with capacity) or as tbgw_buf_init; tbgw_buf_scratch_give returns its storage
 * to the pool (up to 16 buffers of at most 4 KB each, larger ones are freed: at most 64 KB per thread) and
 * re-initialises b. The pool is freed when the thread exits. */
void tbgw_buf_scratch_take(tbgw_buf *b);
void tbgw_buf_scratch_give(tbgw_buf *b);
int tbgw_buf_printf(tbgw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted, escaped JSON string. */
int tbgw_buf_json_str(tbgw_buf *b, const char *s);
int tbgw_buf_json_strn(tbgw_buf *b, const char *s, size_t n);
/* Appends a value as JSON (doubles as tbgw_fmt_double; NaN/inf as null). */
int tbgw_buf_json_value(tbgw_buf *b, const tbgw_value *v);
int tbgw_buf_i64(tbgw_buf *b, int64_t v);
int tbgw_buf_u64(tbgw_buf *b, uint64_t v);

/* Room for any tbgw_fmt_double text with its NUL ("-2.2250738585072014e-308"). */
#define TBGW_DOUBLE_MAX 32
/* Python repr() of a double: the shortest digits that read back to d, in Python's layout ("7.1",
 * "25.0", "0.30000000000000004", "1e+16", "1e-07", "nan", "inf"). Returns the length. Every JSON
 * writer uses it (non-finite values are written as null there). */
size_t tbgw_fmt_double(char out[TBGW_DOUBLE_MAX], double d);
/* NUL-terminates and returns p (never NULL unless oom). */
const char *tbgw_buf_cstr(tbgw_buf *b);

#endif
