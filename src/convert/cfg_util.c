#include "convert/cfg_util.h"

#include <stdlib.h>
#include <string.h>
#include <tbgw/log.h>

int tbgw_err_prefix(tbgw_err *err, int rc, const char *prefix, char sep) {
    if (!err || !rc || !prefix || !*prefix) return rc;
    size_t cap = sizeof err->msg - 1;
    size_t pl = strlen(prefix), sl = sep == ':' ? 2 : 1;
    if (pl + sl >= cap) return rc;
    size_t ml = strnlen(err->msg, cap);
    if (pl + sl + ml > cap) ml = cap - pl - sl;
    memmove(err->msg + pl + sl, err->msg, ml);
    memcpy(err->msg, prefix, pl);
    err->msg[pl] = sep;
    if (sl == 2) err->msg[pl + 1] = ' ';
    err->msg[pl + sl + ml] = 0;
    err->code = rc;
    return rc;
}

int tbgw_cfg_str(const json_t *o, const char *key, const char *path, int required, const char *dflt,
                 const char **out, tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return required ? tbgw_err_set(err, TBGW_EINVAL, "%s%s%s: missing", path, *path ? "." : "", key) : 0;
    if (!json_is_string(v))
        return tbgw_err_set(err, TBGW_EINVAL, "%s%s%s: expected a string", path, *path ? "." : "", key);
    *out = json_string_value(v);
    return 0;
}

static int num_value(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v) && *json_string_value(v)) {
        char *end;
        *out = strtod(json_string_value(v), &end);
        return *end ? -1 : 0;
    }
    return -1;
}

int tbgw_cfg_seconds_ms(const json_t *o, const char *key, const char *path, int64_t dflt_ms, int64_t *out,
                        tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    double d;
    *out = dflt_ms;
    if (!v || json_is_null(v)) return 0;
    if (num_value(v, &d) || !(d >= 0) || d > 1e9)
        return tbgw_err_set(err, TBGW_EINVAL, "%s%s%s: expected a number of seconds >= 0", path,
                            *path ? "." : "", key);
    *out = (int64_t)(d * 1000.0 + 0.5);
    return 0;
}

int tbgw_cfg_int(const json_t *o, const char *key, const char *path, int64_t dflt, int64_t lo, int64_t hi,
                 int64_t *out, tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    double d;
    *out = dflt;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v))
        *out = json_integer_value(v);
    else if (!num_value(v, &d) && d == (double)(int64_t)d)
        *out = (int64_t)d;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s%s%s: expected an integer", path, *path ? "." : "", key);
    if (*out < lo || *out > hi)
        return tbgw_err_set(err, TBGW_EINVAL, "%s%s%s: expected %lld..%lld", path, *path ? "." : "", key,
                            (long long)lo, (long long)hi);
    return 0;
}

int tbgw_cfg_bool(const json_t *o, const char *key, const char *path, int dflt, int *out, tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return tbgw_err_set(err, TBGW_EINVAL, "%s%s%s: expected true or false", path, *path ? "." : "", key);
    *out = json_is_true(v);
    return 0;
}

int tbgw_cfg_strdup(const json_t *o, const char *key, const char *path, int required, char **out,
                    tbgw_err *err) {
    const char *s;
    *out = NULL;
    int rc = tbgw_cfg_str(o, key, path, required, NULL, &s, err);
    if (rc || !s) return rc;
    return (*out = strdup(s)) ? 0 : TBGW_ENOMEM;
}

int tbgw_cfg_skip_entry(const tbgw_host *h, const tbgw_err *err) {
    if (err && err->code == TBGW_ENOMEM) return TBGW_ENOMEM;
    const char *msg = err && err->msg[0] ? err->msg : "invalid entry";
    /* split "dotted.path: reason" (a path has no spaces) */
    char dotted[256] = "";
    const char *colon = strstr(msg, ": ");
    if (colon && (size_t)(colon - msg) < sizeof dotted && !memchr(msg, ' ', (size_t)(colon - msg))) {
        memcpy(dotted, msg, (size_t)(colon - msg));
        dotted[colon - msg] = 0;
        msg = colon + 2;
    }
    if (h && h->config_warning)
        h->config_warning(h, dotted[0] ? dotted : NULL, msg);
    else if (h && h->log)
        TBGW_WARNF(h->log, "%s%s%s; the entry is skipped", dotted, dotted[0] ? ": " : "", msg);
    return 0;
}
