/* Management inputs: the device filter list file, log format strings (logs.json formatters) and
 * the platform's provisioning answer. The first byte picks the parser. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/filter.h"
#include "platform/provision.h"
#include "util/log_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_filter(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/tbgw-fuzz-filter-%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, size, f);
    fclose(f);
    tbgw_err err;
    tbgw_filter *flt = tbgw_filter_load(path, &err);
    if (flt) {
        tbgw_filter_allows(flt, "Modbus", "Device 1");
        tbgw_filter_allows(flt, "", "");
    }
    tbgw_filter_free(flt);
}

static void fuzz_format(const uint8_t *data, size_t size) {
    char *fmt = strndup((const char *)data, size);
    if (!fmt) return;
    tbgw_err err;
    if (tbgw_log_format_check(fmt, "formatters.f.format", &err) == 0) {
        tbgw_log_record r = {"service", 20, "src/core/x.c", "fn", 42, {1700000000, 123456}, "message %s"};
        char out[512];
        tbgw_log_format(fmt, NULL, &r, out, sizeof out);
        tbgw_log_format(fmt, "%H:%M", &r, out, 8);
    }
    free(fmt);
}

static void fuzz_answer(const uint8_t *data, size_t size) {
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j) return;
    tbgw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = (char *)"/nonexistent";
    cfg.port = 1883;
    tbgw_err err;
    tbgw_provision_apply(&cfg, j, ".credentials", &err);
    tbgw_security_clear(&cfg.sec);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_filter(data + 1, size - 1);
        break;
    case 1:
        fuzz_format(data + 1, size - 1);
        break;
    default:
        fuzz_answer(data + 1, size - 1);
        break;
    }
    return 0;
}
