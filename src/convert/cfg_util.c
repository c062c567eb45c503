#include "convert/cfg_util.h"

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
