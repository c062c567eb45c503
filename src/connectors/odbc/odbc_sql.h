/* ODBC value helpers shared by polling, RPCs and attribute updates (odbc_sql.c). */
#ifndef TBGW_CONNECTORS_ODBC_SQL_H
#define TBGW_CONNECTORS_ODBC_SQL_H

#include <jansson.h>
#include <sql.h>
#include <sqlext.h>

#include "connectors/odbc/odbc_internal.h"

/* "[SQLSTATE] message" of the first diagnostic record of h. */
void odbc_diag(SQLSMALLINT type, SQLHANDLE h, char *out, size_t n);

/* Column col (1-based) of the current row as JSON by its SQL type; NULL with *bad = 1 when the
 * driver cannot deliver it. */
json_t *odbc_get_column(SQLHSTMT st, SQLUSMALLINT col, SQLSMALLINT sqltype, int *bad);

/* Result columns: names and SQL types (free with odbc_names_free). */
int odbc_describe(SQLHSTMT st, SQLSMALLINT *ncols, char ***names, SQLSMALLINT **types);
void odbc_names_free(SQLSMALLINT ncols, char **names, SQLSMALLINT *types);
/* The current row as {column: value}; NULL with *bad = 1 when a column cannot be read. */
json_t *odbc_fetch_row(SQLHSTMT st, SQLSMALLINT ncols, char **names, const SQLSMALLINT *types, int *bad);

/* Storage of one bound parameter; must live until the statement has executed. */
typedef struct odbc_param {
    SQLBIGINT i;
    double d;
    unsigned char b;
    char *s;
    SQLLEN ind;
} odbc_param;

/* Binds v as input parameter idx (1-based): integer, double, bit, text (objects as JSON text), NULL. */
int odbc_bind_json(SQLHSTMT st, SQLUSMALLINT idx, const json_t *v, odbc_param *p);
void odbc_param_free(odbc_param *p);

#endif
