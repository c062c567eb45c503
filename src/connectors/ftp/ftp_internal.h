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
#include "util/buf.h"

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
/* Converts a JSON file's content (an object, or a list of objects). NULL when it yields nothing; when
 * je is given, je->text is non-empty if the content is not JSON. */
tbgw_converted *ftp_convert_json(const ftp_path *p, const char *text, size_t len, json_error_t *je);

/* A text file converted while it arrives: bytes are fed as the transfer delivers them, complete lines
 * are converted in batches, a partial last line is carried over to the next feed. Tables take their
 * header from the first line when the stream starts at the file's beginning. */
#define FTP_STREAM_BATCH    (64 * 1024)   /* complete lines converted once this many bytes are pending */
#define FTP_STREAM_MAX_LINE (1024 * 1024) /* a longer line is skipped (counted in long_lines) */
#define FTP_STREAM_TAIL     64            /* bytes before the position kept, to recognise the file */

/* Hands a converted batch on: 0, or TBGW_EAGAIN when it was refused (the lines stay pending). */
typedef int (*ftp_emit_fn)(void *ud, tbgw_converted *chain);

typedef struct ftp_stream {
    const ftp_path *p;
    char kind;
    int table;
    int last_line;    /* at the end, a last line without '\n' counts too (FULL) */
    int need_header;  /* the next complete line is the header */
    char *header;     /* owned */
    tbgw_buf pend;    /* bytes received, not converted yet */
    tbgw_buf scratch; /* the lines of a batch, NUL-terminated */
    char **lines;     /* into scratch */
    size_t lines_cap;
    long long consumed;         /* bytes of the stream converted (header and skipped lines included) */
    char tail[FTP_STREAM_TAIL]; /* the last bytes consumed (those before the position) */
    size_t tail_len;
    int skipping;                  /* dropping an over-long line up to its '\n' */
    unsigned long long rows;       /* lines converted */
    unsigned long long long_lines; /* lines skipped as longer than FTP_STREAM_MAX_LINE */
    long long long_at;             /* stream offset of the last skipped line */
    ftp_emit_fn emit;
    void *ud;
} ftp_stream;

/* header: the table's header remembered from an earlier read (NULL = read it from the first line when
 * need_header, which tables starting at offset 0 set). s->tail may then be set to the bytes before the
 * stream's start. */
void ftp_stream_init(ftp_stream *s, const ftp_path *p, char kind, int last_line, int need_header,
                     const char *header, ftp_emit_fn emit, void *ud);
/* Appends received bytes; converts the complete lines once FTP_STREAM_BATCH bytes are pending. 0, or
 * TBGW_EAGAIN when a batch was refused (the bytes are kept: call ftp_stream_flush later), or
 * TBGW_ENOMEM. */
int ftp_stream_feed(ftp_stream *s, const char *data, size_t n);
/* Converts the pending complete lines (and, when final and last_line, a last line without '\n'). 0,
 * TBGW_EAGAIN (kept pending) or TBGW_ENOMEM. */
int ftp_stream_flush(ftp_stream *s, int final);
void ftp_stream_free(ftp_stream *s);

/* Whether name matches a glob component ('*' = any run of characters). */
int ftp_glob_match(const char *pattern, const char *name);

#endif
