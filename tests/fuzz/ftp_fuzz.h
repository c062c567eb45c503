/* Shared by the FTP fuzz targets: a path entry parsed from JSON (aborts when the fixture is wrong). */
#ifndef TBGW_TESTS_FTP_FUZZ_H
#define TBGW_TESTS_FTP_FUZZ_H

#include <stdlib.h>

#include "connectors/ftp/ftp_internal.h"

static inline ftp_path ftp_fuzz_path(const char *json) {
    json_error_t je;
    json_t *e = json_loads(json, 0, &je);
    ftp_path p;
    tbgw_err err;
    if (!e || ftp_path_parse(e, "p", &p, &err) != 0) abort();
    json_decref(e);
    return p;
}

#endif
