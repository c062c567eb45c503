/* Optional parts of the gateway built as shared objects and loaded only when configured, so that
 * their libraries (and those libraries' own dependencies) cost nothing when unused. */
#ifndef TBGW_UTIL_MODULE_H
#define TBGW_UTIL_MODULE_H

#include <stddef.h>
#include <tbgw/err.h>

/* Loads module `name` and returns its symbol `sym`. Looked for, in order:
 * $TBGW_MODULE_PATH (colon-separated folders), <folder of the executable>/modules, and
 * TBGW_MODULE_DIR (set at build time). The module stays loaded for the life of the process.
 * NULL with err naming every place tried. */
void *tbgw_module_symbol(const char *name, const char *sym, tbgw_err *err);

/* <folder of the running executable>/<sub> into out; 0, or -1 when it cannot be told or does not fit. */
int tbgw_exe_sibling(const char *sub, char *out, size_t out_len);

#endif
