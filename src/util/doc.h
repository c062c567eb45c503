/* A configuration document: JSON or YAML text parsed into jansson, with source positions for
 * error messages ("file:line:col: field: message"). */
#ifndef TBGW_UTIL_DOC_H
#define TBGW_UTIL_DOC_H

#include <jansson.h>
#include <tbgw/err.h>

#include "util/hmap.h"

typedef struct tbgw_doc {
    char *path; /* file path as given */
    char *text; /* JSON source text (NULL for YAML) */
    size_t len;
    json_t *root;
    tbgw_hmap yaml_pos; /* YAML: dotted path -> (line<<32|col) */
    int is_yaml;
    int from_file;     /* loaded by tbgw_doc_load: the text can be read again */
    int text_released; /* tbgw_doc_release_text: text is re-read from the file when a position is needed */
    unsigned char *packed; /* tbgw_doc_pack: root as deflated compact JSON text (root is NULL then) */
    size_t packed_len, plain_len;
} tbgw_doc;

/* Loads a JSON file, or YAML when the name ends in .yaml/.yml. On a syntax error fills err with
 * "file:line:col: message" and returns NULL. */
tbgw_doc *tbgw_doc_load(const char *path, tbgw_err *err);
/* Parses JSON text already in memory; path is used in messages only. */
tbgw_doc *tbgw_doc_parse_json(const char *path, const char *text, size_t len, tbgw_err *err);
tbgw_doc *tbgw_doc_parse_yaml(const char *path, const char *text, size_t len, tbgw_err *err);
void tbgw_doc_free(tbgw_doc *d);
/* Frees the source text of a JSON document loaded from a file (it is as large as the file: about
 * 2 KB per device of a big connector configuration); a later error position re-reads the file (as
 * it is then) once. No effect on YAML or on documents not read from a file. */
void tbgw_doc_release_text(tbgw_doc *d);

/* Replaces the parsed tree by its compact JSON text, deflated (a connector configuration of 1,000
 * Modbus slaves: ≈ 8 MB of jansson objects become ≈ 0.1 MB). Positions (text, YAML map) are kept.
 * Only for a tree nobody else borrows from. 0, or TBGW_ENOMEM with the tree kept. */
int tbgw_doc_pack(tbgw_doc *d);
/* The document's tree as a new reference (the caller decrefs): the tree itself, or, after
 * tbgw_doc_pack, a fresh parse of the packed text (equal to the tree it was made from). NULL when
 * there is none or out of memory. */
json_t *tbgw_doc_tree(const tbgw_doc *d);

/* Position of the value at a dotted path like "thingsboard.security.accessToken" or
 * "mapping[2].converter". Falls back to the closest existing parent. Lines/cols are 1-based. */
void tbgw_doc_locate(const tbgw_doc *d, const char *dotted, int *line, int *col);
/* Locates a JSON value position in text (used by tbgw_doc_locate; exposed for tests). 0 if found. */
int tbgw_json_locate(const char *text, size_t len, const char *dotted, int *line, int *col);
/* Formats "file:line:col: <dotted>: msg" into err. dotted may be NULL. */
int tbgw_doc_error(const tbgw_doc *d, tbgw_err *err, const char *dotted, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Turns a message starting with "dotted.path: ..." into "file:line:col: dotted.path: ..." in place.
 * "dotted.path@N: ..." points at byte N of that string value (e.g. a syntax error inside an
 * expression): the column is the one of that byte in the file (escapes counted as written). */
void tbgw_doc_prefix_error(const tbgw_doc *d, tbgw_err *err);
/* The position of the offset-th decoded byte of the JSON string whose opening quote is at
 * line:col of text. 0 if found (else the position stays line:col). */
int tbgw_json_string_pos(const char *text, size_t len, int line, int col, size_t offset, int *oline,
                         int *ocol);
#endif
