/* Fuzzes the CAN connector's configuration parser (any JSON document, create + destroy): devices,
 * value/command layouts, expressions, polling frames, and the reports of skipped entries. */
#include <stddef.h>
#include <stdint.h>
#include <tbgw/connector.h>

extern const tbgw_connector_ops tbgw_connector_can;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *cfg = json_loadb((const char *)data, size, 0, NULL);
    if (!cfg) return 0;
    static tbgw_host host;
    host.abi = TBGW_CONNECTOR_ABI;
    host.log = tbgw_logger_get("fuzz");
    host.log->level = TBGW_NONE;
    host.conv_log = host.log;
    tbgw_err err;
    void *self = NULL;
    if (tbgw_connector_can.create(&host, cfg, &self, &err) == 0) tbgw_connector_can.destroy(self);
    json_decref(cfg);
    return 0;
}
