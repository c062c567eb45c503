/* Fuzzes the SNMP connector configuration parser (devices, versions and USM settings, request
 * entries, OIDs, filters) and the reserved get/set parameter form of request entries. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "connectors/snmp/snmpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* custom converters would dlopen files named by the input: keep them out */
    if (memmem(data, size, "converter", 9)) return 0;
    static tbgw_host host;
    if (!host.log) {
        host.log = tbgw_logger_get("fuzz.snmp");
        host.log->level = TBGW_NONE;
        host.conv_log = host.log;
        host.config_dir = "/nonexistent";
    }
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j) return 0;
    snmp_cfg cfg;
    tbgw_err err = {0};
    if (snmp_config_parse(&cfg, j, &host, &err) == 0) {
        for (size_t i = 0; i < cfg.n_devices; i++)
            for (size_t k = 0; k < cfg.devices[i].n_rpcs; k++)
                snmp_filter_matches(&cfg.devices[i].rpcs[k], "setData");
        snmp_config_free(&cfg);
    }
    snmp_item it;
    if (snmp_item_parse(j, "params", 3, &it, &err) == 0) snmp_item_free(&it);
    json_decref(j);
    return 0;
}
