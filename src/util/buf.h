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
int tbgw_buf_printf(tbgw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted, escaped JSON string. */
int tbgw_buf_json_str(tbgw_buf *b, const char *s);
int tbgw_buf_json_strn(tbgw_buf *b, const char *s, size_t n);
/* Appends a value as JSON (doubles printed shortest round-trip; NaN/inf as null). */
int tbgw_buf_json_value(tbgw_buf *b, const tbgw_value *v);
int tbgw_buf_i64(tbgw_buf *b, int64_t v);
/* NUL-terminates and returns p (never NULL unless oom). */
const char *tbgw_buf_cstr(tbgw_buf *b);

#endif
