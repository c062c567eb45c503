/* Custom uplink converters: a small, stable C ABI for shared objects (spec §5.5).
 *
 * A mapping with `"converter": {"type": "custom", "extension": "<Name>", "extensionConfig": {...}}`
 * loads a shared object and asks it for the converter called <Name>:
 *
 *   const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name);
 *
 * The entry returns NULL when it does not know the name (or cannot serve that ABI version). One
 * shared object may provide several converters. Where the .so is looked up is documented in
 * docs/connectors/mqtt.md (by default <config dir>/extensions/<connector type>/<Name>.so).
 *
 * The plugin never links against tbgw: everything it may call comes in tbgw_converter_api, so the
 * same .so works in the daemon, in tests and in tools. Strings and JSON passed to the plugin are
 * borrowed for the call. A plugin must not keep records after returning them.
 *
 * Threading: create/destroy run on the connector's thread or the core thread; convert runs on the
 * connector's thread only (never concurrently for one instance). */
#ifndef TBGW_CONVERTER_H
#define TBGW_CONVERTER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <tbgw/data.h>
#include <tbgw/err.h>
#include <tbgw/log.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TBGW_CONVERTER_ABI 1u

/* Services offered to a plugin (valid until destroy returns). */
typedef struct tbgw_converter_api {
    uint32_t abi; /* TBGW_CONVERTER_ABI */
    /* A new record for one device (device_type NULL = "default"); NULL on allocation failure. */
    tbgw_converted *(*converted_new)(const char *device_name, const char *device_type);
    void (*converted_free)(tbgw_converted *c); /* frees a whole chain */
    /* Copy key and string values; return 0 or TBGW_ENOMEM. */
    int (*add_telemetry)(tbgw_converted *c, int64_t ts_ms, const char *key, const tbgw_value *v);
    int (*add_attribute)(tbgw_converted *c, const char *key, const tbgw_value *v);
    int64_t (*now_ms)(void); /* wall clock, epoch ms */
    void (*log)(tbgw_logger *lg, tbgw_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void *reserved[4];
} tbgw_converter_api;

typedef struct tbgw_converter_ops {
    uint32_t abi; /* TBGW_CONVERTER_ABI */
    const char *name;
    /* config: the mapping's whole `converter` object (extensionConfig inside); log: the connector's
     * converter logger. Validate, allocate *self; on error fill err naming the field. config is the
     * converter's own copy: it stays alive and unchanged until destroy(), so *self may borrow from it. */
    int (*create)(const tbgw_converter_api *api, const json_t *config, tbgw_logger *log, void **self,
                  tbgw_err *err);
    /* Converts one message. Appends zero or more records (a chain) to *out; ownership passes to
     * the caller even on error. Returns 0, or a negative TBGW_E* for a malformed payload (err says
     * why; it is logged and counted by the connector). */
    int (*convert)(void *self, const char *topic, const uint8_t *payload, size_t len, tbgw_converted **out,
                   tbgw_err *err);
    void (*destroy)(void *self);
    void *reserved[4];
} tbgw_converter_ops;

typedef const tbgw_converter_ops *(*tbgw_converter_entry_fn)(uint32_t abi, const char *name);
#define TBGW_CONVERTER_ENTRY "tbgw_converter_entry"

#ifdef __cplusplus
}
#endif
#endif
