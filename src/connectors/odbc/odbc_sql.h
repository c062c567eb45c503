/* ODBC value helpers shared by polling, RPCs and attribute updates (odbc_sql.c). */
#ifndef TBGW_CONNECTORS_ODBC_SQL_H
#define TBGW_CONNECTORS_ODBC_SQL_H

#include <iconv.h>
#include <jansson.h>
#include <sql.h>
#include <sqlext.h>

#include "connectors/odbc/odbc_internal.h"

/* Text encodings (connection.encoding / connection.decoding): conversions to and from UTF-8 with
 * iconv. A handle is (iconv_t)-1 when the text is UTF-8 already. One codec serves one thread. */
typedef struct odbc_codec {
    iconv_t from_char;  /* decoding.char -> UTF-8, for SQL_C_CHAR results */
    iconv_t from_wchar; /* decoding.wchar -> UTF-8: wide columns fetched as SQL_C_WCHAR; -1: as SQL_C_CHAR */
    iconv_t to_param;   /* UTF-8 -> encoding, for text parameters */
    int param_wide;     /* encoding is UTF-16LE: text parameters bound as SQL_C_WCHAR */
} odbc_codec;

/* Opens the conversions named in conn (the "connection" object); a name iconv does not know is an
 * error naming the field. Python's names work ("latin-1", "utf_16_le", "cp1252"). */
int odbc_codec_open(odbc_codec *cx, const json_t *conn, tbgw_err *err);
void odbc_codec_close(odbc_codec *cx);

/* "[SQLSTATE] message" of the first diagnostic record of h. */
void odbc_diag(SQLSMALLINT type, SQLHANDLE h, char *out, size_t n);

/* Column col (1-based) of the current row as JSON by its SQL type; NULL with *bad = 1 when the
 * driver cannot deliver it. */
json_t *odbc_get_column(SQLHSTMT st, SQLUSMALLINT col, SQLSMALLINT sqltype, odbc_codec *cx, int *bad);

/* Result columns: names and SQL types (free with odbc_names_free). */
int odbc_describe(SQLHSTMT st, SQLSMALLINT *ncols, char ***names, SQLSMALLINT **types);
void odbc_names_free(SQLSMALLINT ncols, char **names, SQLSMALLINT *types);
/* The current row as {column: value}; NULL with *bad = 1 when a column cannot be read. */
json_t *odbc_fetch_row(SQLHSTMT st, SQLSMALLINT ncols, char **names, const SQLSMALLINT *types, odbc_codec *cx,
                       int *bad);

/* Storage of one bound parameter; must live until the statement has executed. */
typedef struct odbc_param {
    SQLBIGINT i;
    double d;
    unsigned char b;
    char *s; /* text (in the parameter encoding) */
    size_t slen;
    SQLLEN ind;
} odbc_param;

/* Binds v as input parameter idx (1-based): integer, double, bit, text (objects as JSON text), NULL. */
int odbc_bind_json(SQLHSTMT st, SQLUSMALLINT idx, const json_t *v, odbc_codec *cx, odbc_param *p);
void odbc_param_free(odbc_param *p);

#endif
