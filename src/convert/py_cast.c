/* useEval: evaluate rendered value text as Python and cast it like the reference. */
#include "convert/py_cast.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int tbgw_py_cast_applies(const char *type) {
    if (!type) return 0;
    char low[64];
    size_t n = strlen(type);
    if (n >= sizeof low) n = sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)type[i]);
    low[n] = 0;
    return strstr(low, "str") == NULL;
}

void tbgw_py_key_clear(tbgw_py_key *k) {
    tbgw_py_free(k->e);
    free(k->src);
    k->e = NULL;
    k->src = NULL;
    k->len = 0;
}

int tbgw_py_eval_cast(tbgw_py_ctx *ctx, tbgw_py_key *k, const char *text, tbgw_cast cast, tbgw_value *out,
                      tbgw_buf *scratch, tbgw_err *err) {
    size_t len = strlen(text);
    if (!k->e || k->len != len || memcmp(k->src, text, len)) {
        tbgw_py_key_clear(k);
        int rc = tbgw_py_compile(text, len, 0, &k->e, err, NULL);
        if (rc) return rc;
        if (!(k->src = malloc(len + 1))) {
            tbgw_py_key_clear(k);
            return TBGW_ENOMEM;
        }
        memcpy(k->src, text, len + 1);
        k->len = len;
    }
    tbgw_py_ctx_reset(ctx);
    const tbgw_py_val *v, *f;
    int rc = tbgw_py_eval(k->e, ctx, &v, err);
    if (rc) return rc;
    switch (cast) {
    case TBGW_CAST_INT:
        if ((rc = tbgw_py_apply(ctx, "float", v, &f, err)) || (rc = tbgw_py_apply(ctx, "int", f, &v, err)))
            return rc;
        break;
    case TBGW_CAST_DOUBLE:
        rc = tbgw_py_apply(ctx, "float", v, &v, err);
        break;
    case TBGW_CAST_BOOL:
        rc = tbgw_py_apply(ctx, "bool", v, &v, err);
        break;
    default:
        rc = tbgw_py_apply(ctx, "str", v, &v, err);
        break;
    }
    if (rc) return rc;
    return tbgw_py_to_value(ctx, v, out, scratch, err);
}
