/* Report strategy configuration objects (spec §4): {"type", "reportPeriod", "ttl", "aggregationFunction"}. */
#ifndef TBGW_CONVERT_REPORT_CFG_H
#define TBGW_CONVERT_REPORT_CFG_H

#include <jansson.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

/* Parses a reportStrategy object. NULL, or an object with neither "type" nor "reportPeriod", gives
 * TBGW_RS_UNSET ("not specified": inherit). Errors name the field relative to the object
 * ("reportStrategy.type: ..."); callers prefix their own path. ttl defaults to 86400 s; period_ms is
 * reportPeriod as given (the gateway level subtracts its 10 ms itself), 0 when absent. */
int tbgw_rs_parse(const json_t *cfg, tbgw_report_strategy *out, tbgw_err *err);
/* The same for the "reportStrategy" of the object at dotted path parent: messages start with
 * "<parent>.reportStrategy...". */
int tbgw_rs_parse_in(const json_t *cfg, const char *parent, tbgw_report_strategy *out, tbgw_err *err);
/* Upper-case name of a type ("ON_CHANGE"). */
const char *tbgw_rs_type_name(tbgw_rs_type t);

#endif
