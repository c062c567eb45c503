/* A JSON scanner that indexes a text in place, for converters that read a few values of a message
 * without building a jansson tree of all of it.
 *
 * tbgw_jscan accepts a subset of what tbgw_json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL)
 * accepts and reads every value the same way: strings are decoded (escapes, \u0000, surrogate pairs),
 * an object's duplicate key resolves to its last value (as json_object_set replaces), integers are
 * exact int64, reals are strtod of their text, and a number jansson cannot hold is a number node
 * (util/json.h). Whatever it refuses (invalid JSON, but also an object key holding \u0000, nesting
 * beyond TBGW_JSCAN_MAX_DEPTH, a text of 4 GB or more) is left to tbgw_json_loadb, which then either
 * parses it or names the error's line and column.
 *
 * The index lives in a per-thread scratch (grown to the largest message seen, no allocation per
 * message; kept between messages up to 1024 tokens and 16 KB of text, larger storage is freed after
 * the message); a tbgw_jdoc is valid until tbgw_jscan_done, on the thread that scanned it. */
#ifndef TBGW_UTIL_JSCAN_H
#define TBGW_UTIL_JSCAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TBGW_JSCAN_MAX_DEPTH 256

/* One value (or object key) of the text. Objects hold key, value, key, value... tokens. */
typedef struct tbgw_jtok {
    uint8_t type;        /* json_type; JSON_INTEGER = a number token without '.', 'e' or 'E' */
    uint32_t start, end; /* the value's bytes in the text (strings with their quotes) */
    uint32_t next;       /* the token after this value and everything inside it */
    uint32_t s, n;       /* strings: decoded text in the doc's str (NUL-terminated, may hold NULs);
                            numbers: their text copied there (NUL-terminated) */
} tbgw_jtok;

typedef struct tbgw_jdoc {
    const char *text;
    size_t len;
    const tbgw_jtok *tok; /* tok[0] is the top-level value */
    size_t n;
    const char *str;
    void *scratch; /* private */
} tbgw_jdoc;

/* A JSON value as converters read it: a jansson node or a token. */
typedef struct tbgw_jval {
    json_type type; /* a number node is JSON_STRING with node set */
    int node;       /* a number jansson cannot hold: s, n = its exact JSON text */
    const char *s;  /* strings: NUL-terminated text (may hold NULs), n bytes */
    size_t n;
    json_int_t i;    /* JSON_INTEGER */
    double d;        /* JSON_REAL; JSON_INTEGER as a double */
    const json_t *j; /* the jansson node; always set for objects and arrays */
} tbgw_jval;

/* 0 and *doc, or -1 (the text is left to tbgw_json_loadb; nothing to release). */
int tbgw_jscan(const char *text, size_t len, tbgw_jdoc *doc);
/* Releases what the doc holds (its storage goes back to the thread's scratch). */
void tbgw_jscan_done(tbgw_jdoc *doc);

/* The value of the last member named key (klen bytes) of object token o, or -1. */
long tbgw_jdoc_member(const tbgw_jdoc *d, size_t o, const char *key, size_t klen);
/* Element idx of array token a (negative counts from the end), or -1. */
long tbgw_jdoc_element(const tbgw_jdoc *d, size_t a, long idx);
/* The value of token t. An object or array is parsed into a jansson tree once (owned by the doc).
 * Returns 0 or TBGW_ENOMEM. */
int tbgw_jdoc_val(tbgw_jdoc *d, size_t t, tbgw_jval *out);

/* The value of a jansson node; TBGW_ENOENT for NULL. */
int tbgw_jval_of(const json_t *j, tbgw_jval *out);

#endif
