/* Python-style character slices written in connector configurations: `[i]`, `[a:b]`, `[:b]`, `[a:]`,
 * negative bounds counting from the end, characters counted as UTF-8 code points (XMPP text bodies,
 * FTP SLICED lines). */
#ifndef TBGW_CONVERT_TEXT_SLICE_H
#define TBGW_CONVERT_TEXT_SLICE_H

#include "util/buf.h"

typedef struct tbgw_slice {
    int is_index; /* [i] */
    long a, b;
    int has_a, has_b;
} tbgw_slice;

/* Finds the first `[...]` slice token in expr (a '[' followed by a non-space character, then digits,
 * '-' and ':', then ']'). 1 with *out set, 0 when expr has none, -1 when the token is malformed. */
int tbgw_slice_find(const char *expr, tbgw_slice *out);
/* Appends the slice of text to out. 0, or -1 when an index is out of range (as Python's IndexError). */
int tbgw_slice_apply(const tbgw_slice *s, const char *text, size_t len, tbgw_buf *out);

#endif
