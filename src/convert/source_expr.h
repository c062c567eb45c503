/* Expressions with a source (spec §5.2): device name / profile and key names taken from the message
 * (a `${}` template over the payload), from the topic (a PCRE2 regex searched in the topic; the last
 * capture group if any, else the whole match; the literal expression when nothing matches) or a
 * constant (a template too). */
#ifndef TBGW_CONVERT_SOURCE_EXPR_H
#define TBGW_CONVERT_SOURCE_EXPR_H

#include <jansson.h>
#include <tbgw/err.h>
#include "convert/expr.h"
#include "util/buf.h"

typedef enum tbgw_src {
    TBGW_SRC_MESSAGE = 0,
    TBGW_SRC_TOPIC,
    TBGW_SRC_CONSTANT,
    TBGW_SRC_REQUEST, /* REST: a template over the request data (same as message) */
} tbgw_src;

typedef struct tbgw_regex tbgw_regex;

typedef struct tbgw_src_expr {
    tbgw_src src;
    char *text;
    tbgw_expr *tmpl; /* message / constant / request */
    tbgw_regex *re;  /* topic */
} tbgw_src_expr;

/* Parses source names message|topic|constant|request (case-insensitive). Returns -1 if unknown. */
int tbgw_src_parse(const char *name, tbgw_src *out);
/* Compiles expression text for a source. path names the field for errors. */
int tbgw_src_expr_init(tbgw_src_expr *e, tbgw_src src, const char *text, const char *path, tbgw_err *err);
void tbgw_src_expr_clear(tbgw_src_expr *e);
/* Evaluates into out (appended). message/constant: missing placeholders keep their literal text. */
int tbgw_src_expr_eval(const tbgw_src_expr *e, const char *topic, const json_t *body, tbgw_buf *out);
int tbgw_src_expr_eval_src(const tbgw_src_expr *e, const char *topic, const tbgw_jsrc *body, tbgw_buf *out);

/* PCRE2 regex helpers (UTF-8). */
int tbgw_regex_compile(const char *pattern, tbgw_regex **out, const char *path, tbgw_err *err);
void tbgw_regex_free(tbgw_regex *re);
/* Search: 1 = found (the last set capture group, else the whole match, appended to out when out is
 * not NULL), 0 = no match. */
int tbgw_regex_search(const tbgw_regex *re, const char *subject, tbgw_buf *out);
/* Python re.match (anchored at the start) / re.fullmatch. 1 = match, 0 = no match. */
int tbgw_regex_match(const tbgw_regex *re, const char *subject);
int tbgw_regex_fullmatch(const tbgw_regex *re, const char *subject);

/* MQTT topic filter matching with the reference's regex semantics: `+` = one or more characters
 * other than '/', `#` = one or more characters; `$share/<group>/` prefixes are skipped. */
int tbgw_topic_matches(const char *filter, const char *topic);
/* The filter without a `$share/<group>/` prefix. */
const char *tbgw_topic_unshared(const char *filter);

#endif
