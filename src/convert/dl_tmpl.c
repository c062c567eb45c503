/* Templates of outgoing requests (see dl_tmpl.h). */
#include "convert/dl_tmpl.h"

#include <string.h>
#include <tbgw/err.h>

static int put_value(tbgw_buf *out, const json_t *v, const tbgw_dl_vars *vars) {
    if (!vars->quote && !(vars->json_escape && json_is_string(v)))
        return tbgw_fmt_json(out, v, TBGW_FMT_TEXT);
    tbgw_buf tmp;
    tbgw_buf_init(&tmp);
    int rc = tbgw_fmt_json(&tmp, v, TBGW_FMT_TEXT);
    if (!rc && vars->json_escape && json_is_string(v)) {
        tbgw_buf esc;
        tbgw_buf_init(&esc);
        tbgw_buf_json_strn(&esc, tmp.p ? tmp.p : "", tmp.len);
        tbgw_buf_reset(&tmp);
        if (esc.len >= 2) tbgw_buf_append(&tmp, esc.p + 1, esc.len - 2); /* without the quotes */
        tbgw_buf_free(&esc);
    }
    if (!rc)
        rc = vars->quote ? tbgw_url_quote(out, tmp.p ? tmp.p : "", tmp.len)
                         : tbgw_buf_append(out, tmp.p ? tmp.p : "", tmp.len);
    tbgw_buf_free(&tmp);
    return rc;
}

static int resolve(void *ud, const char *ph, const tbgw_path *path, tbgw_buf *out) {
    const tbgw_dl_vars *v = ud;
    json_t *tmp = NULL;
    const json_t *val = NULL;
    if (v->device && !strcmp(ph, "deviceName"))
        val = tmp = json_string(v->device);
    else if (v->key && !strcmp(ph, "attributeKey"))
        val = tmp = json_string(v->key);
    else if (v->value && !strcmp(ph, "attributeValue"))
        val = v->value;
    else if (v->method && !strcmp(ph, "methodName"))
        val = tmp = json_string(v->method);
    else if (v->method && !strcmp(ph, "requestId"))
        val = tmp = json_integer(v->id);
    else if (path && v->root)
        val = tbgw_path_get(path, v->root);
    int rc = !val || json_is_null(val) ? TBGW_ENOENT : put_value(out, val, v);
    json_decref(tmp);
    return rc;
}

int tbgw_dl_render(const tbgw_expr *e, const tbgw_dl_vars *v, tbgw_buf *out) {
    return tbgw_expr_render_cb(e, resolve, (void *)v, TBGW_MISSING_FAIL, out);
}

int tbgw_url_quote(tbgw_buf *out, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
            ch == '.' || ch == '-' || ch == '~' || ch == '/') {
            tbgw_buf_putc(out, (char)ch);
        } else {
            tbgw_buf_putc(out, '%');
            tbgw_buf_putc(out, hex[ch >> 4]);
            tbgw_buf_putc(out, hex[ch & 15]);
        }
    }
    return out->oom ? TBGW_ENOMEM : 0;
}
