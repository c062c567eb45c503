/* Parser of report strategy configuration objects (spec §4). */
#include "convert/report_cfg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    tbgw_rs_type type;
} rs_names[] = {
    {"ON_RECEIVED", TBGW_RS_ON_RECEIVED},
    {"ON_CHANGE", TBGW_RS_ON_CHANGE},
    {"ON_REPORT_PERIOD", TBGW_RS_ON_REPORT_PERIOD},
    {"ON_CHANGE_OR_REPORT_PERIOD", TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD},
    {"DISABLED", TBGW_RS_DISABLED},
};

static const char *const agg_names[] = {"NONE", "SUM", "COUNT", "MIN", "MAX", "AVERAGE"};

const char *tbgw_rs_type_name(tbgw_rs_type t) {
    for (size_t i = 0; i < sizeof rs_names / sizeof rs_names[0]; i++)
        if (rs_names[i].type == t) return rs_names[i].name;
    return "UNSET";
}

/* Reads a positive integer-valued number (integers, whole reals, or numeric strings). */
static int get_positive(const json_t *v, int64_t *out) {
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return -1;
    if (!isfinite(d) || d <= 0 || d > 9.2e15) return -1;
    *out = (int64_t)d;
    return *out > 0 ? 0 : -1;
}

int tbgw_rs_parse(const json_t *cfg, tbgw_report_strategy *out, tbgw_err *err) {
    out->type = TBGW_RS_UNSET;
    out->period_ms = 0;
    out->ttl_s = 86400;
    if (!cfg || json_is_null(cfg)) return 0;
    if (!json_is_object(cfg)) return tbgw_err_set(err, TBGW_EINVAL, "reportStrategy: expected an object");
    const json_t *type = json_object_get(cfg, "type");
    const json_t *period = json_object_get(cfg, "reportPeriod");
    const json_t *ttl = json_object_get(cfg, "ttl");
    const json_t *agg = json_object_get(cfg, "aggregationFunction");
    if (!type && !period) return 0;
    if (!type)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "reportStrategy.type: missing (reportPeriod given without a strategy type)");
    const char *tn = json_string_value(type);
    tbgw_rs_type t = TBGW_RS_UNSET;
    for (size_t i = 0; tn && i < sizeof rs_names / sizeof rs_names[0]; i++)
        if (!strcasecmp(tn, rs_names[i].name)) t = rs_names[i].type;
    if (t == TBGW_RS_UNSET)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "reportStrategy.type: expected one of ON_RECEIVED, ON_CHANGE, ON_REPORT_PERIOD, "
                            "ON_CHANGE_OR_REPORT_PERIOD, DISABLED");
    if (period && get_positive(period, &out->period_ms))
        return tbgw_err_set(err, TBGW_EINVAL, "reportStrategy.reportPeriod: expected a number of ms > 0");
    if ((t == TBGW_RS_ON_REPORT_PERIOD || t == TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD) && !period)
        return tbgw_err_set(err, TBGW_EINVAL, "reportStrategy.reportPeriod: required for %s",
                            tbgw_rs_type_name(t));
    if (ttl && get_positive(ttl, &out->ttl_s))
        return tbgw_err_set(err, TBGW_EINVAL, "reportStrategy.ttl: expected a number of seconds > 0");
    if (agg) {
        const char *an = json_string_value(agg);
        int ok = 0;
        for (size_t i = 0; an && i < sizeof agg_names / sizeof agg_names[0]; i++)
            if (!strcasecmp(an, agg_names[i])) ok = 1;
        if (!ok)
            return tbgw_err_set(
                err, TBGW_EINVAL,
                "reportStrategy.aggregationFunction: expected one of NONE, SUM, COUNT, MIN, MAX, "
                "AVERAGE");
    }
    out->type = t;
    return 0;
}

int tbgw_rs_parse_in(const json_t *cfg, const char *parent, tbgw_report_strategy *out, tbgw_err *err) {
    int rc = tbgw_rs_parse(cfg, out, err);
    if (rc && err && parent && *parent) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s.%s", parent, err->msg);
        snprintf(err->msg, sizeof err->msg, "%s", msg);
    }
    return rc;
}
