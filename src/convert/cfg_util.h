/* Small helpers for configuration parsing inside src/convert and the connectors that use it. */
#ifndef TBGW_CONVERT_CFG_UTIL_H
#define TBGW_CONVERT_CFG_UTIL_H

#include <tbgw/err.h>

/* Prefixes err->msg with "<prefix>." (or "<prefix>: " when sep is ':'), truncating at the end.
 * Returns rc unchanged; a NULL err or rc == 0 is a no-op. */
int tbgw_err_prefix(tbgw_err *err, int rc, const char *prefix, char sep);

#endif
