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

static const char *eval_buf(const tbgw_src_expr *e, const char *topic, const tbgw_jsrc *body, tbgw_buf *b) {
    tbgw_buf_reset(b);
    return tbgw_src_expr_eval_src(e, topic, body, b) ? NULL : tbgw_buf_cstr(b);
}

int tbgw_devinfo_eval_buf(const tbgw_devinfo *d, const char *topic, const tbgw_jsrc *body, tbgw_buf *name_buf,
                          tbgw_buf *profile_buf, const char **name, const char **profile) {
    *profile = NULL;
    if (!(*name = eval_buf(&d->name, topic, body, name_buf))) return TBGW_ENOMEM;
    if (d->has_profile && !(*profile = eval_buf(&d->profile, topic, body, profile_buf))) {
        *name = NULL;
        return TBGW_ENOMEM;
    }
    return **name ? 0 : TBGW_ENOENT;
}

int tbgw_devinfo_is_plain(const tbgw_devinfo *d) {
    return (!d->name.tmpl || tbgw_expr_is_plain(d->name.tmpl)) &&
           (!d->has_profile || !d->profile.tmpl || tbgw_expr_is_plain(d->profile.tmpl));
}

static int devinfo_eval_src(const tbgw_devinfo *d, const char *topic, const tbgw_jsrc *body, char **name,
                            char **profile) {
    tbgw_buf nb, pb;
    tbgw_buf_scratch_take(&nb);
    tbgw_buf_scratch_take(&pb);
    const char *n, *p;
    int rc = tbgw_devinfo_eval_buf(d, topic, body, &nb, &pb, &n, &p);
    *name = n ? strdup(n) : NULL;
    *profile = p ? strdup(p) : NULL;
    if (rc != TBGW_ENOMEM && (!*name || (p && !*profile))) rc = TBGW_ENOMEM;
    if (rc == TBGW_ENOMEM) {
        free(*name);
        free(*profile);
        *name = *profile = NULL;
    }
    tbgw_buf_scratch_give(&nb);
    tbgw_buf_scratch_give(&pb);
    return rc;
}

int tbgw_devinfo_eval(const tbgw_devinfo *d, const char *topic, const json_t *body, char **name,
                      char **profile) {
    tbgw_jsrc src = {.tree = body};
    return devinfo_eval_src(d, topic, &src, name, profile);
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
