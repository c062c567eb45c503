/* Device filtering (spec §1.12): thingsboard.deviceFiltering with its list file
 * {"deny": {"<connector name>": ["regex", ...]}, "allow": {...}}. Regexes (PCRE2) must match the
 * whole device name. A device matching a deny entry of its connector is dropped; when the
 * connector has an allow list, only devices matching one of its entries pass. */
#ifndef TBGW_CORE_FILTER_H
#define TBGW_CORE_FILTER_H

#include <tbgw/err.h>

typedef struct tbgw_filter tbgw_filter;

/* Loads the list file. Errors name the file, line and column and the entry
 * ("list.json:4:9: deny.Modbus[1]: bad regex at offset 3: missing closing parenthesis"). */
tbgw_filter *tbgw_filter_load(const char *path, tbgw_err *err);
/* 1 when data of that device from that connector may pass. */
int tbgw_filter_allows(const tbgw_filter *f, const char *connector, const char *device);
void tbgw_filter_free(tbgw_filter *f);

#endif
