/* A connector host for fuzz targets: emit frees what it gets, everything else is a no-op. */
#ifndef TBGW_FUZZ_STUB_HOST_H
#define TBGW_FUZZ_STUB_HOST_H
#include <stdint.h>
#include <tbgw/connector.h>

static uint64_t stub_emitted;

static inline int stub_emit(const tbgw_host *h, tbgw_converted *chain) {
    (void)h;
    stub_emitted += tbgw_converted_count(chain);
    tbgw_converted_free(chain);
    return 0;
}
static inline int stub_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    (void)h, (void)handle, (void)success;
    json_decref(content);
    return 0;
}
static inline int stub_attrs(const tbgw_host *h, const char *d, const char *const *k, size_t n, int c,
                             uint64_t cookie) {
    (void)h, (void)d, (void)k, (void)n, (void)c, (void)cookie;
    return 0;
}
static inline void stub_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    (void)h, (void)s, (void)n;
}
static inline void stub_state(const tbgw_host *h, tbgw_conn_state s, const char *t) {
    (void)h, (void)s, (void)t;
}
static inline int stub_wait(const tbgw_host *h, int ms) {
    (void)h, (void)ms;
    return 0;
}

static inline tbgw_host *stub_host(void) {
    static tbgw_host h;
    if (!h.log) {
        h.abi = TBGW_CONNECTOR_ABI;
        h.name = h.type = h.id = "fuzz";
        h.log = tbgw_logger_get("fuzz.connector");
        h.conv_log = tbgw_logger_get("fuzz.converter");
        h.log->level = h.conv_log->level = TBGW_NONE;
        h.emit = stub_emit;
        h.rpc_reply = stub_reply;
        h.request_attributes = stub_attrs;
        h.stat_add = stub_stat;
        h.set_state = stub_state;
        h.wait = stub_wait;
    }
    return &h;
}

/* A configuration-parser target: create + destroy of the connector on any JSON document. */
static inline int stub_fuzz_create(const tbgw_connector_ops *ops, const uint8_t *data, size_t size) {
    json_t *cfg = json_loadb((const char *)data, size, 0, NULL);
    if (!cfg) return 0;
    tbgw_err err;
    void *self = NULL;
    if (ops->create(stub_host(), cfg, &self, &err) == 0) ops->destroy(self);
    json_decref(cfg);
    return 0;
}

/* 1 when data mentions "custom" in any case (custom converters would dlopen names from the input). */
static inline int mentions_custom(const uint8_t *data, size_t size) {
    for (size_t i = 0; i + 6 <= size; i++) {
        static const char w[] = "custom";
        size_t j = 0;
        while (j < 6 && (data[i + j] | 0x20) == w[j]) j++;
        if (j == 6) return 1;
    }
    return 0;
}
#endif
