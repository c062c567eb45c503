/* deviceInfo: device name and profile from message, topic or constant (spec §5.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/json_conv.h"
#include "convert/source_expr.h"
#include "util/buf.h"

struct tbgw_devinfo {
    tbgw_src_expr name;
    tbgw_src_expr profile;
    int has_profile;
};

void tbgw_devinfo_free(tbgw_devinfo *d) {
    if (!d) return;
    tbgw_src_expr_clear(&d->name);
    tbgw_src_expr_clear(&d->profile);
    free(d);
}

static int init_one(const json_t *di, const char *src_key, const char *expr_key, const char *path,
                    tbgw_src_expr *e, int required, int *present, tbgw_err *err) {
    char fp[256];
    const json_t *src = json_object_get(di, src_key);
    const json_t *ex = json_object_get(di, expr_key);
    *present = 0;
    if (!ex) {
        if (!required) return 0;
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: missing", path, expr_key);
    }
    if (!json_is_string(ex))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a string", path, expr_key);
    tbgw_src s = TBGW_SRC_MESSAGE;
    if (src && (!json_is_string(src) || tbgw_src_parse(json_string_value(src), &s)))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected one of message, topic, constant", path,
                            src_key);
    snprintf(fp, sizeof fp, "%s.%s", path, expr_key);
    *present = 1;
    return tbgw_src_expr_init(e, s, json_string_value(ex), fp, err);
}

int tbgw_devinfo_new(const json_t *di, const char *path, int need_profile, tbgw_devinfo **out,
                     tbgw_err *err) {
    *out = NULL;
    if (!json_is_object(di)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    tbgw_devinfo *d = calloc(1, sizeof *d);
    if (!d) return TBGW_ENOMEM;
    int present;
    int rc =
        init_one(di, "deviceNameExpressionSource", "deviceNameExpression", path, &d->name, 1, &present, err);
    if (!rc)
        rc = init_one(di, "deviceProfileExpressionSource", "deviceProfileExpression", path, &d->profile,
                      need_profile, &d->has_profile, err);
    if (rc) {
        tbgw_devinfo_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static char *eval_dup(const tbgw_src_expr *e, const char *topic, const tbgw_jsrc *body) {
    tbgw_buf b;
    tbgw_buf_scratch_take(&b);
    int rc = tbgw_src_expr_eval_src(e, topic, body, &b);
    const char *s = rc ? NULL : tbgw_buf_cstr(&b);
    char *r = s ? strdup(s) : NULL;
    tbgw_buf_scratch_give(&b);
    return r;
}

int tbgw_devinfo_is_plain(const tbgw_devinfo *d) {
    return (!d->name.tmpl || tbgw_expr_is_plain(d->name.tmpl)) &&
           (!d->has_profile || !d->profile.tmpl || tbgw_expr_is_plain(d->profile.tmpl));
}

int tbgw_devinfo_eval(const tbgw_devinfo *d, const char *topic, const json_t *body, char **name,
                      char **profile) {
    tbgw_jsrc src = {.tree = body};
    return tbgw_devinfo_eval_src(d, topic, &src, name, profile);
}

int tbgw_devinfo_eval_src(const tbgw_devinfo *d, const char *topic, const tbgw_jsrc *body, char **name,
                          char **profile) {
    *name = eval_dup(&d->name, topic, body);
    *profile = NULL;
    if (!*name) return TBGW_ENOMEM;
    if (d->has_profile) {
        *profile = eval_dup(&d->profile, topic, body);
        if (!*profile) {
            free(*name);
            *name = NULL;
            return TBGW_ENOMEM;
        }
    }
    if (!**name) return TBGW_ENOENT;
    return 0;
}

int tbgw_devinfo_topic_matched(const tbgw_devinfo *d, const char *topic) {
    if (d->name.src != TBGW_SRC_TOPIC) return 1;
    return topic && d->name.re && tbgw_regex_search(d->name.re, topic, NULL);
}

int tbgw_devinfo_eval_strict(const tbgw_devinfo *d, const char *topic, const json_t *body, char **name,
                             char **profile) {
    *name = *profile = NULL;
    if (!tbgw_devinfo_topic_matched(d, topic)) return TBGW_ENOENT;
    if (d->name.tmpl) {
        tbgw_buf b;
        tbgw_buf_init(&b);
        int rc = tbgw_expr_render(d->name.tmpl, body, TBGW_FMT_PY, TBGW_MISSING_FAIL, &b);
        tbgw_buf_free(&b);
        if (rc) return rc;
    }
    return tbgw_devinfo_eval(d, topic, body, name, profile);
}
