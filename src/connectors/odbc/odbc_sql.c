/* ODBC value helpers: a result column as JSON with the SQL type kept (integers exact, DECIMAL as a
 * number, dates as ISO text, NULL as null), parameters bound from JSON, diagnostics as text. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "connectors/odbc/odbc_sql.h"
#include "util/buf.h"

void odbc_diag(SQLSMALLINT type, SQLHANDLE h, char *out, size_t n) {
    SQLCHAR state[6] = "", msg[512] = "";
    SQLINTEGER native = 0;
    SQLSMALLINT len = 0;
    if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1, state, &native, msg, sizeof msg, &len)))
        snprintf(out, n, "unknown ODBC error");
    else
        snprintf(out, n, "[%s] %s", (char *)state, (char *)msg);
}

#define NO_ICONV ((iconv_t)-1)

/* The name lowered without '-' and '_' ("utf_16_le" -> "utf16le"), for comparisons. */
static void squash(const char *name, char *out, size_t n) {
    size_t k = 0;
    for (; *name && k + 1 < n; name++)
        if (*name != '-' && *name != '_') out[k++] = (char)tolower((unsigned char)*name);
    out[k] = 0;
}

static int is_utf8(const char *name) {
    char sq[64];
    squash(name, sq, sizeof sq);
    return !strcmp(sq, "utf8");
}

/* iconv_open for a Python-style encoding name: as written, with '_' as '-', then squashed. */
static iconv_t open_named(const char *to, const char *from, const char *name) {
    char alt[64], sq[64];
    snprintf(alt, sizeof alt, "%s", name);
    for (char *q = alt; *q; q++)
        if (*q == '_') *q = '-';
    squash(name, sq, sizeof sq);
    const char *tries[3] = {name, alt, sq};
    for (int i = 0; i < 3; i++) {
        iconv_t cd = iconv_open(to ? to : tries[i], from ? from : tries[i]);
        if (cd != NO_ICONV) return cd;
    }
    return NO_ICONV;
}

void odbc_codec_close(odbc_codec *cx) {
    iconv_t *all[3] = {&cx->from_char, &cx->from_wchar, &cx->to_param};
    for (int i = 0; i < 3; i++) {
        if (*all[i] != NO_ICONV && *all[i] != NULL) iconv_close(*all[i]);
        *all[i] = NO_ICONV;
    }
}

int odbc_codec_open(odbc_codec *cx, const json_t *conn, tbgw_err *err) {
    cx->from_char = cx->from_wchar = cx->to_param = NO_ICONV;
    cx->param_wide = 0;
    const char *enc = json_string_value(json_object_get(conn, "encoding"));
    const json_t *dec = json_object_get(conn, "decoding");
    const char *dchar = json_string_value(json_object_get(dec, "char"));
    const char *dwchar = json_string_value(json_object_get(dec, "wchar"));
    if (enc && *enc && !is_utf8(enc)) {
        char sq[64];
        squash(enc, sq, sizeof sq);
        cx->param_wide = !strcmp(sq, "utf16le") || !strcmp(sq, "utf16");
        cx->to_param =
            open_named(cx->param_wide ? "UTF-16LE" : NULL, "UTF-8", cx->param_wide ? "UTF-8" : enc);
        if (cx->to_param == NO_ICONV)
            return tbgw_err_set(err, TBGW_EINVAL, "connection.encoding: unknown encoding \"%s\"", enc);
    }
    if (dchar && *dchar && !is_utf8(dchar) &&
        (cx->from_char = open_named("UTF-8", NULL, dchar)) == NO_ICONV) {
        odbc_codec_close(cx);
        return tbgw_err_set(err, TBGW_EINVAL, "connection.decoding.char: unknown encoding \"%s\"", dchar);
    }
    if (dwchar && *dwchar && (cx->from_wchar = open_named("UTF-8", NULL, dwchar)) == NO_ICONV) {
        odbc_codec_close(cx);
        return tbgw_err_set(err, TBGW_EINVAL, "connection.decoding.wchar: unknown encoding \"%s\"", dwchar);
    }
    return 0;
}

/* in[0..n) converted by cd into out (reset first); -1 for a sequence invalid in the source encoding. */
static int convert(iconv_t cd, const char *in, size_t n, tbgw_buf *out) {
    tbgw_buf_reset(out);
    iconv(cd, NULL, NULL, NULL, NULL);
    char *ip = (char *)in;
    size_t left = n;
    char chunk[4096];
    while (left > 0) {
        char *op = chunk;
        size_t room = sizeof chunk;
        size_t r = iconv(cd, &ip, &left, &op, &room);
        tbgw_buf_append(out, chunk, sizeof chunk - room);
        if (r == (size_t)-1 && errno != E2BIG) return -1;
    }
    char *op = chunk;
    size_t room = sizeof chunk;
    iconv(cd, NULL, NULL, &op, &room);
    tbgw_buf_append(out, chunk, sizeof chunk - room);
    return 0;
}

/* Character data of any length (SQLGetData in pieces), converted to UTF-8 as the codec says. */
static json_t *get_text(SQLHSTMT st, SQLUSMALLINT col, SQLSMALLINT ctype, int upper, odbc_codec *cx,
                        int *bad) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    char chunk[4096];
    for (;;) {
        SQLLEN ind = 0;
        SQLRETURN rc = SQLGetData(st, col, ctype, chunk, sizeof chunk, &ind);
        if (rc == SQL_NO_DATA) break;
        if (!SQL_SUCCEEDED(rc)) {
            *bad = 1;
            tbgw_buf_free(&b);
            return NULL;
        }
        if (ind == SQL_NULL_DATA) {
            tbgw_buf_free(&b);
            return json_null();
        }
        size_t room = ctype == SQL_C_BINARY  ? sizeof chunk
                      : ctype == SQL_C_WCHAR ? sizeof chunk - 2
                                             : sizeof chunk - 1;
        size_t got = ind == SQL_NO_TOTAL || (size_t)ind > room ? room : (size_t)ind;
        if (ctype == SQL_C_BINARY) {
            for (size_t i = 0; i < got; i++) tbgw_buf_printf(&b, "%02x", (unsigned char)chunk[i]);
        } else {
            tbgw_buf_append(&b, chunk, got);
        }
        if (rc == SQL_SUCCESS) break;
    }
    iconv_t cd = !cx                    ? NO_ICONV
                 : ctype == SQL_C_CHAR  ? cx->from_char
                 : ctype == SQL_C_WCHAR ? cx->from_wchar
                                        : NO_ICONV;
    if (cd != NO_ICONV) {
        tbgw_buf u;
        tbgw_buf_init(&u);
        if (convert(cd, b.p ? b.p : "", b.len, &u) != 0) {
            tbgw_buf_free(&u);
            tbgw_buf_free(&b);
            *bad = 1; /* not text in the configured encoding */
            return NULL;
        }
        tbgw_buf_free(&b);
        b = u;
    }
    json_t *j;
    if (upper)
        for (size_t i = 0; i < b.len; i++) b.p[i] = (char)toupper((unsigned char)b.p[i]);
    j = json_stringn(b.p ? b.p : "", b.len);
    if (!j) j = json_stringn("", 0); /* not UTF-8: an empty string rather than a crash */
    tbgw_buf_free(&b);
    return j;
}

json_t *odbc_get_column(SQLHSTMT st, SQLUSMALLINT col, SQLSMALLINT sqltype, odbc_codec *cx, int *bad) {
    SQLLEN ind = 0;
    SQLRETURN rc;
    char text[80];
    switch (sqltype) {
    case SQL_BIT: {
        unsigned char v = 0;
        rc = SQLGetData(st, col, SQL_C_BIT, &v, sizeof v, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        return ind == SQL_NULL_DATA ? json_null() : json_boolean(v);
    }
    case SQL_TINYINT:
    case SQL_SMALLINT:
    case SQL_INTEGER:
    case SQL_BIGINT: {
        SQLBIGINT v = 0;
        rc = SQLGetData(st, col, SQL_C_SBIGINT, &v, sizeof v, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        return ind == SQL_NULL_DATA ? json_null() : json_integer((json_int_t)v);
    }
    case SQL_REAL:
    case SQL_FLOAT:
    case SQL_DOUBLE: {
        double v = 0;
        rc = SQLGetData(st, col, SQL_C_DOUBLE, &v, sizeof v, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        return ind == SQL_NULL_DATA || v != v ? json_null() : json_real(v);
    }
    case SQL_DECIMAL:
    case SQL_NUMERIC: {
        rc = SQLGetData(st, col, SQL_C_CHAR, text, sizeof text, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        if (ind == SQL_NULL_DATA) return json_null();
        json_t *j = odbc_decimal_json(text);
        if (!j) break;
        return j;
    }
    case SQL_TYPE_DATE:
    case SQL_DATE: {
        SQL_DATE_STRUCT d;
        rc = SQLGetData(st, col, SQL_C_TYPE_DATE, &d, sizeof d, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        if (ind == SQL_NULL_DATA) return json_null();
        snprintf(text, sizeof text, "%04d-%02u-%02u", d.year, d.month, d.day);
        return json_string(text);
    }
    case SQL_TYPE_TIME:
    case SQL_TIME: {
        SQL_TIME_STRUCT t;
        rc = SQLGetData(st, col, SQL_C_TYPE_TIME, &t, sizeof t, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        if (ind == SQL_NULL_DATA) return json_null();
        snprintf(text, sizeof text, "%02u:%02u:%02u", t.hour, t.minute, t.second);
        return json_string(text);
    }
    case SQL_TYPE_TIMESTAMP:
    case SQL_TIMESTAMP: {
        SQL_TIMESTAMP_STRUCT t;
        rc = SQLGetData(st, col, SQL_C_TYPE_TIMESTAMP, &t, sizeof t, &ind);
        if (!SQL_SUCCEEDED(rc)) break;
        if (ind == SQL_NULL_DATA) return json_null();
        int n = snprintf(text, sizeof text, "%04d-%02u-%02uT%02u:%02u:%02u", t.year, t.month, t.day, t.hour,
                         t.minute, t.second);
        if (t.fraction / 1000 && n > 0)
            snprintf(text + n, sizeof text - (size_t)n, ".%06u", t.fraction / 1000);
        return json_string(text);
    }
    case SQL_GUID:
        return get_text(st, col, SQL_C_CHAR, 1, NULL, bad);
    case SQL_BINARY:
    case SQL_VARBINARY:
    case SQL_LONGVARBINARY:
        return get_text(st, col, SQL_C_BINARY, 0, NULL, bad);
    case SQL_WCHAR:
    case SQL_WVARCHAR:
    case SQL_WLONGVARCHAR:
        return get_text(st, col, cx && cx->from_wchar != NO_ICONV ? SQL_C_WCHAR : SQL_C_CHAR, 0, cx, bad);
    default:
        return get_text(st, col, SQL_C_CHAR, 0, cx, bad);
    }
    *bad = 1;
    return NULL;
}

int odbc_bind_json(SQLHSTMT st, SQLUSMALLINT idx, const json_t *v, odbc_codec *cx, odbc_param *p) {
    memset(p, 0, sizeof *p);
    SQLSMALLINT ctype, sqltype;
    SQLPOINTER ptr;
    SQLULEN size = 0;
    if (json_is_integer(v)) {
        p->i = (SQLBIGINT)json_integer_value(v);
        ctype = SQL_C_SBIGINT, sqltype = SQL_BIGINT, ptr = &p->i;
    } else if (json_is_real(v)) {
        p->d = json_real_value(v);
        ctype = SQL_C_DOUBLE, sqltype = SQL_DOUBLE, ptr = &p->d;
    } else if (json_is_boolean(v)) {
        p->b = json_is_true(v);
        ctype = SQL_C_BIT, sqltype = SQL_BIT, ptr = &p->b;
    } else if (json_is_null(v) || !v) {
        ctype = SQL_C_CHAR, sqltype = SQL_VARCHAR, ptr = NULL, size = 1;
        p->ind = SQL_NULL_DATA;
    } else {
        p->s = json_is_string(v) ? strdup(json_string_value(v)) : tbgw_json_dumps(v, 0);
        if (!p->s) return -1;
        p->slen = strlen(p->s);
        ctype = SQL_C_CHAR, sqltype = SQL_VARCHAR;
        if (cx && cx->to_param != NO_ICONV) { /* connection.encoding */
            tbgw_buf b;
            tbgw_buf_init(&b);
            int bad = convert(cx->to_param, p->s, p->slen, &b) != 0;
            tbgw_buf_append(&b, "\0\0", 2);
            free(p->s);
            p->s = NULL;
            if (bad || b.oom || !b.p) {
                tbgw_buf_free(&b);
                return -1;
            }
            p->slen = b.len - 2;
            p->s = b.p; /* the buffer's memory is the parameter's now */
            if (cx->param_wide) ctype = SQL_C_WCHAR, sqltype = SQL_WVARCHAR;
        }
        p->ind = (SQLLEN)p->slen;
        size = ctype == SQL_C_WCHAR ? p->slen / 2 : p->slen;
        if (!size) size = 1;
        ptr = p->s;
    }
    SQLRETURN rc = SQLBindParameter(st, idx, SQL_PARAM_INPUT, ctype, sqltype, size, 0, ptr,
                                    p->s ? (SQLLEN)p->slen + (ctype == SQL_C_WCHAR ? 2 : 1) : 0, &p->ind);
    return SQL_SUCCEEDED(rc) ? 0 : -1;
}

void odbc_param_free(odbc_param *p) {
    free(p->s);
    p->s = NULL;
}

json_t *odbc_fetch_row(SQLHSTMT st, SQLSMALLINT ncols, char **names, const SQLSMALLINT *types, odbc_codec *cx,
                       int *bad) {
    json_t *row = json_object();
    for (SQLSMALLINT i = 0; i < ncols && row; i++) {
        json_t *v = odbc_get_column(st, (SQLUSMALLINT)(i + 1), types[i], cx, bad);
        if (!v) {
            json_decref(row);
            return NULL;
        }
        json_object_set_new(row, names[i], v);
    }
    return row;
}

int odbc_describe(SQLHSTMT st, SQLSMALLINT *ncols, char ***names, SQLSMALLINT **types) {
    *names = NULL, *types = NULL;
    if (!SQL_SUCCEEDED(SQLNumResultCols(st, ncols))) return -1;
    if (*ncols <= 0) return 0;
    *names = calloc((size_t)*ncols, sizeof **names);
    *types = calloc((size_t)*ncols, sizeof **types);
    if (!*names || !*types) return -1;
    for (SQLSMALLINT i = 0; i < *ncols; i++) {
        SQLCHAR name[256] = "";
        SQLSMALLINT nl = 0, dt = 0, dd = 0, nullable = 0;
        SQLULEN sz = 0;
        if (!SQL_SUCCEEDED(
                SQLDescribeCol(st, (SQLUSMALLINT)(i + 1), name, sizeof name, &nl, &dt, &sz, &dd, &nullable)))
            snprintf((char *)name, sizeof name, "col%d", i);
        (*names)[i] = strdup((char *)name);
        (*types)[i] = dt;
    }
    return 0;
}

void odbc_names_free(SQLSMALLINT ncols, char **names, SQLSMALLINT *types) {
    for (SQLSMALLINT i = 0; names && i < ncols; i++) free(names[i]);
    free(names);
    free(types);
}
