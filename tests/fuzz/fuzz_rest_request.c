/* Fuzzes the REST connector's request -> record path: endpoint matching with path parameters, basic
 * credentials, request data from JSON / form / text bodies and the query, status decisions and the
 * JSON converter (rs_handle with a stub host). Input: byte 0 picks the method, content type and
 * credentials; then "<path>?<query>\n<body>". */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/rest/rest.h"
#include "stub_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *CONFIG =
    "{\"server\":{\"host\":\"127.0.0.1\",\"port\":0},\"mapping\":["
    "{\"endpoint\":\"/my_devices\",\"HTTPMethods\":[\"POST\",\"GET\"],\"converter\":{\"type\":\"json\","
    "\"deviceInfo\":{\"deviceNameExpressionSource\":\"request\",\"deviceNameExpression\":\"${sensorName}\","
    "\"deviceProfileExpressionSource\":\"request\",\"deviceProfileExpression\":\"${sensorType}\"},"
    "\"attributes\":[{\"type\":\"string\",\"key\":\"model\",\"value\":\"${sensorModel}\"}],"
    "\"timeseries\":[{\"type\":\"double\",\"key\":\"temperature\",\"value\":\"${temp}\"},"
    "{\"type\":\"int\",\"key\":\"${k}\",\"value\":\"${a.b[0]}-${c}\"}]}},"
    "{\"endpoint\":\"/dev/{name}/x\",\"HTTPMethods\":[\"POST\"],\"security\":{\"type\":\"basic\","
    "\"username\":\"u\",\"password\":\"p\"},\"response\":{\"responseExpected\":true,\"timeout\":1,"
    "\"responseAttribute\":\"r\"},\"converter\":{\"type\":\"json\",\"deviceInfo\":{"
    "\"deviceNameExpressionSource\":\"request\",\"deviceNameExpression\":\"${name}\"},"
    "\"timeseries\":\"*\"}}],"
    "\"requestsMapping\":{\"attributeRequests\":[{\"endpoint\":\"/attr\",\"type\":\"client\","
    "\"HTTPMethods\":[\"POST\",\"GET\"],\"timeout\":1,\"deviceNameExpression\":\"${deviceName}\","
    "\"attributeNameExpression\":\"${attribute}${attribute1}\"}]}}";

static rs_conn *conn(void) {
    static rs_conn *c;
    if (c) return c;
    json_t *j = json_loads(CONFIG, 0, NULL);
    c = calloc(1, sizeof *c);
    tbgw_err err = {0};
    c->host = stub_host();
    if (!j || rs_config_parse(&c->cfg, j, c->host, &err)) abort();
    pthread_mutex_init(&c->mu, NULL);
    json_decref(j);
    return c;
}

static void parse_query(char *q, tbgw_http_kv *kv, size_t *n, size_t cap) {
    char *save = NULL;
    for (char *t = strtok_r(q, "&", &save); t && *n < cap; t = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(t, '=');
        if (eq) *eq++ = 0;
        kv[*n] = (tbgw_http_kv){t, eq ? eq : "", eq ? strlen(eq) : 0};
        (*n)++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 65536) return 0;
    rs_conn *c = conn();
    static const char *const methods[] = {"POST", "GET", "PUT", "DELETE"};
    static const char *const ctypes[] = {NULL, "application/json", "application/x-www-form-urlencoded",
                                         "text/plain"};
    uint8_t sel = data[0];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    char *nl = memchr(text, '\n', size - 1);
    char *body = nl ? nl + 1 : text + (size - 1);
    size_t body_len = nl ? (size_t)(text + size - 1 - body) : 0;
    if (nl) *nl = 0;
    char *q = strchr(text, '?');
    if (q) *q++ = 0;
    tbgw_http_kv query[16], form[16];
    size_t nq = 0, nf = 0;
    char *qcopy = q ? strdup(q) : NULL;
    if (qcopy) parse_query(qcopy, query, &nq, 16);
    char *fcopy = (sel >> 4 & 3) == 2 ? strndup(body, body_len) : NULL;
    if (fcopy) parse_query(fcopy, form, &nf, 16);
    tbgw_http_request rq = {.id = 1,
                            .method = methods[sel & 3],
                            .path = text,
                            .client = "127.0.0.1:1",
                            .ctype = ctypes[sel >> 4 & 3],
                            .query = query,
                            .n_query = nq,
                            .form = form,
                            .n_form = nf,
                            .body = body,
                            .body_len = body_len,
                            .user = sel & 0x40 ? "u" : NULL,
                            .password = sel & 0x80 ? "p" : "x"};
    tbgw_http_reply out = {0};
    rs_handle(c, &rq, &out);
    free(out.body);
    rs_pending_expire(c, INT64_MAX); /* answers nothing (no server), frees what was parked */
    free(qcopy);
    free(fcopy);
    free(text);
    return 0;
}
