/* Fuzzes the configuration parsers of the HTTP connectors: byte 0 even = Request, odd = REST. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include "connectors/request/request.h"
#include "connectors/rest/rest.h"
#include "stub_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || mentions_custom(data, size)) return 0;
    json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!j) return 0;
    tbgw_err err = {0};
    if (data[0] & 1) {
        rs_config cfg;
        if (rs_config_parse(&cfg, j, stub_host(), &err) == 0) rs_config_free(&cfg);
    } else {
        rq_config cfg;
        if (rq_config_parse(&cfg, j, stub_host(), &err) == 0) rq_config_free(&cfg);
    }
    json_decref(j);
    return 0;
}
