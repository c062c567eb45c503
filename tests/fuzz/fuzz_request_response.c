/* Fuzzes the Request connector's response -> record path: a polled endpoint's answer (status from
 * byte 0, the rest as the body) decoded, unpacked by dataUnpackExpression and converted by the JSON
 * converter with templates (rq_poll_feed with a stub host). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/request/request.h"
#include "stub_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *CONFIG =
    "{\"host\":\"127.0.0.1:1\",\"mapping\":["
    "{\"url\":\"a\",\"converter\":{\"type\":\"json\",\"deviceNameJsonExpression\":\"${id}-${type}\","
    "\"deviceTypeJsonExpression\":\"T\",\"attributes\":[{\"key\":\"serial\",\"type\":\"string\","
    "\"value\":\"${serial}\"},{\"key\":\"n\",\"type\":\"int\",\"value\":\"${a.b[0].c}\"}],"
    "\"telemetry\":[{\"key\":\"combine\",\"type\":\"string\",\"value\":\"${Developer}:${hum}\"},"
    "{\"key\":\"f\",\"type\":\"float\",\"value\":\"${x[*].y}\"},{\"key\":\"b\",\"type\":\"bool\","
    "\"value\":\"${flag}\"}]}},"
    "{\"url\":\"b\",\"dataUnpackExpression\":\"${result.devices}\",\"converter\":{\"type\":\"json\","
    "\"deviceNameJsonExpression\":\"${name}\",\"telemetry\":\"*\"}}]}";

static rq_conn *conn(void) {
    static rq_conn *c;
    if (c) return c;
    json_t *j = json_loads(CONFIG, 0, NULL);
    c = calloc(1, sizeof *c);
    tbgw_err err = {0};
    c->host = stub_host();
    if (!j || rq_config_parse(&c->cfg, j, c->host, &err)) abort();
    json_decref(j);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    rq_conn *c = conn();
    char *body = malloc(size);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = 0;
    static const long statuses[] = {200, 204, 404, 503};
    tbgw_http_resp r = {.status = statuses[data[0] & 3], .body = body, .len = size - 1};
    rq_poll_feed(c, &c->cfg.maps[(data[0] >> 2) & 1], &r);
    free(body);
    return 0;
}
