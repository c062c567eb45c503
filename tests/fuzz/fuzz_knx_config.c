/* Fuzzes the KNX connector's configuration parser (any JSON document, create + destroy). */
#include <stddef.h>
#include <stdint.h>
#include <tbgw/connector.h>

#include "stub_host.h"

extern const tbgw_connector_ops tbgw_connector_knx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return stub_fuzz_create(&tbgw_connector_knx, data, size);
}
