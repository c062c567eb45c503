/* Storage records: one device's pre-encoded telemetry and attribute fragments.
 * Layout (little endian): 'T' flags u16 name_len name u16 type_len type u32 datapoints
 * u32 tel_len tel u32 attr_len attr — where tel is comma-joined {"ts":..,"values":{..}} objects and
 * attr is comma-joined "key":value members. Publishing only concatenates fragments. */
#ifndef TBGW_CORE_RECORD_H
#define TBGW_CORE_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <tbgw/data.h>

#define TBGW_RECORD_OWN 0x01 /* the gateway's own device (v1/devices/me topics) */
#define TBGW_RECORD_META                                                                                     \
    0x02 /* made by the core for a device (connectorType/connectorName), not one of its                      \
          * connector's events */

typedef struct tbgw_record_view {
    uint8_t flags;
    const char *name;
    uint16_t name_len;
    const char *type;
    uint16_t type_len;
    uint32_t datapoints;
    const char *tel;
    uint32_t tel_len;
    const char *attr;
    uint32_t attr_len;
} tbgw_record_view;

typedef int (*tbgw_record_sink)(void *ud, const void *rec, size_t len);

/* Encodes c (telemetry entries with equal ts grouped) into one or more records each small enough
 * that one publish of it stays under max_payload; calls sink for every record in order.
 * Returns 0, a sink error, or TBGW_ENOMEM. Values are written as JSON (NaN/inf as null). */
int tbgw_record_encode(const tbgw_converted *c, uint8_t flags, size_t max_payload, tbgw_record_sink sink,
                       void *ud);
/* Validates and parses a record; TBGW_EPROTO when malformed. */
int tbgw_record_decode(const uint8_t *p, size_t n, tbgw_record_view *out);

#endif
