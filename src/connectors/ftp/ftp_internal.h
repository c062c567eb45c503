/* FTP connector internals: the configuration (old flat format converted), and the conversion of a
 * file's content into records. The client and the polling are in ftp.c; ftp_conv.c is pure and
 * fuzzed (tests/fuzz/fuzz_ftp_file.c). */
#ifndef TBGW_CONNECTORS_FTP_INTERNAL_H
#define TBGW_CONNECTORS_FTP_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

#include "convert/expr.h"

typedef enum { FTP_VIEW_TABLE = 0, FTP_VIEW_SLICED } ftp_view;
typedef enum { FTP_FULL = 0, FTP_PARTIAL } ftp_mode;

typedef struct ftp_item {
    char *key_text, *value_text; /* as written (SLICED patterns) */
    tbgw_expr *key, *value;      /* compiled templates (TABLE and JSON) */
    tbgw_cast cast;              /* JSON files: the item's type */
} ftp_item;

typedef struct ftp_path {
    char *pattern; /* dir/.../name.ext with * components */
    ftp_mode mode;
    ftp_view view;
    char delimiter;
    int poll_s;
    long long max_bytes;
    int sorting;
    char *name_text, *type_text;
    tbgw_expr *name, *type;
    ftp_item *attrs, *ts;
    size_t n_attrs, n_ts;
} ftp_path;

/* The reference's old flat configuration converted to the new one (parameters, paths,
 * requestsMapping), as its adapter does. A new reference; a new-format configuration is copied. */
json_t *ftp_config_upgrade(const json_t *cfg);

/* Parses paths[i]; 0 or an error naming path. */
int ftp_path_parse(const json_t *e, const char *path, ftp_path *out, tbgw_err *err);
void ftp_path_free(ftp_path *p);

/* The kind of a file by its extension: 'j' json, 'c' csv, 't' txt (and anything else). */
char ftp_file_kind(const char *name);

/* Converts the data lines [from, n) of a text file (lines without their '\n') into a chain of records,
 * one per line that yields a datapoint. Tables (csv, TABLE txt) need the header line in header. */
tbgw_converted *ftp_convert_lines(const ftp_path *p, char kind, const char *header, char **lines, size_t n,
                                  size_t from);
/* Converts a JSON file's content (an object, or a list of objects). */
tbgw_converted *ftp_convert_json(const ftp_path *p, const char *text, size_t len);

/* Whether name matches a glob component ('*' = any run of characters). */
int ftp_glob_match(const char *pattern, const char *name);

#endif
