#include "convert/cfg_util.h"

#include <string.h>

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
