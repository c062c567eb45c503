/* Config loader: arbitrary bytes as tb_gateway.json / .yaml, validated with positions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "util/doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path_json[64], path_yaml[64];
    if (!path_json[0]) {
        snprintf(path_json, sizeof path_json, "/tmp/tbgw-fuzz-%d.json", (int)getpid());
        snprintf(path_yaml, sizeof path_yaml, "/tmp/tbgw-fuzz-%d.yaml", (int)getpid());
    }
    const char *path = size && (data[0] & 1) ? path_yaml : path_json;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    FILE *devnull = fopen("/dev/null", "w");
    tbgw_cfg_report rep = {0, 0, devnull};
    tbgw_config *c = tbgw_config_load(path, &rep);
    tbgw_config_free(c);
    fclose(devnull);
    tbgw_err err;
    tbgw_doc *d = tbgw_doc_parse_json("x.json", (const char *)data, size, &err);
    if (d) {
        int l, col;
        tbgw_doc_locate(d, "thingsboard.security.accessToken", &l, &col);
        tbgw_doc_locate(d, "connectors[0].type", &l, &col);
        tbgw_doc_free(d);
    }
    return 0;
}
