/* Downlink parser: every platform topic with arbitrary payloads, then the RPC reply encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "platform/tb_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const topics[] = {
        "v1/gateway/attributes",        "v1/gateway/attributes/response",      "v1/gateway/rpc",
        "v1/devices/me/attributes",     "v1/devices/me/attributes/response/1", "v1/devices/me/rpc/request/42",
        "v1/devices/me/rpc/response/7", "v1/devices/me/rpc/request/x9"};
    if (size < 1) return 0;
    const char *topic = topics[data[0] % 8];
    tb_down d;
    char err[256];
    if (tb_codec_parse_down(topic, data + 1, size - 1, &d, err, sizeof err) == 0) {
        char t[128];
        for (int s = -1; s <= 1; s++) {
            char *p = tb_codec_rpc_reply(d.device, d.id, d.data, s, t, sizeof t);
            free(p);
        }
    }
    tb_down_free(&d);
    return 0;
}
