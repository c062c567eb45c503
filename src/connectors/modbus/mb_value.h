/* Modbus value conversion (spec §7.2): decoding register/coil payloads into values and encoding
 * values into registers/coils, with the reference's byte/word order, bit and alias semantics. */
#ifndef TBGW_CONNECTORS_MB_VALUE_H
#define TBGW_CONNECTORS_MB_VALUE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tbgw_mbv_type {
    MBV_8INT = 0,
    MBV_8UINT,
    MBV_16INT,
    MBV_16UINT,
    MBV_16FLOAT,
    MBV_32INT,
    MBV_32UINT,
    MBV_32FLOAT,
    MBV_64INT,
    MBV_64UINT,
    MBV_64FLOAT,
    MBV_STRING,
    MBV_BYTES,
    MBV_BITS,
} tbgw_mbv_type;

typedef struct tbgw_mbv_spec { /* packed: one per polled point */
    double divider;            /* 0 = none */
    double multiplier;
    json_t *variants;    /* an object (a reference the spec's owner holds) or NULL */
    int round_digits;    /* default 6 */
    uint16_t count;      /* objectsCount 1..2000: registers (fc 3/4/6/16) or bits (fc 1/2/5/15) */
    uint8_t type;        /* tbgw_mbv_type (tbgw_mbv_spec_type sets it) */
    int8_t bit;          /* -1 = none */
    uint8_t byte_little; /* byteOrder LITTLE (the default) */
    uint8_t word_little; /* wordOrder LITTLE (the default) */
    uint8_t repack;      /* writes: each register's 2 bytes read with byteOrder (pymodbus builder repack) */
    uint8_t bit_int;     /* bitTargetType "int" */
    uint8_t multiplier_is_int; /* a JSON integer in the configuration: Python int / int */
    uint8_t divider_is_int;
} tbgw_mbv_spec;

/* Resolves a type name (case-insensitive; aliases int/long/integer/uint/float/double use count*16,
 * "bit" = bits). Returns 0 or -1 for an unknown name or an alias whose width does not exist. */
int tbgw_mbv_type_parse(const char *name, int count, tbgw_mbv_type *out);
const char *tbgw_mbv_type_name(tbgw_mbv_type t);
void tbgw_mbv_spec_init(tbgw_mbv_spec *s);
/* tbgw_mbv_type_parse into s->type. */
int tbgw_mbv_spec_type(tbgw_mbv_spec *s, const char *name, int count);

/* Decodes a read response. data: for fc 1/2 the coil bits packed LSB-first (count bits, zero-padded
 * to whole bytes); for fc 3/4 register bytes big-endian. bits/bit follow spec §7.2 "Bits" exactly; `bit`
 * yields an integer like the reference. Returns a new JSON value, or NULL when the payload is too short
 * for the type (err names why). */
json_t *tbgw_mbv_decode(const tbgw_mbv_spec *s, int fc, const uint8_t *data, size_t len, char *err,
                        size_t errlen);

/* Encodes a value for a write. For fc 5/15 fills coils (one byte 0/1 per coil, *n coils); for fc 6/16
 * fills registers (*n registers). bits go where a read of the same entry reports them (fc 15: exactly
 * objectsCount coils; fc 6/16: the first register only). With repack and byteOrder LITTLE the two bytes of
 * every register are swapped once more at the end (pymodbus BinaryPayloadBuilder(repack=True).to_registers()
 * unpacks each 2-byte chunk with the byte order instead of big-endian); coils are written as given. Returns 0
 * or -1 with err set. */
int tbgw_mbv_encode(const tbgw_mbv_spec *s, int fc, const json_t *value, uint16_t *regs, uint8_t *coils,
                    size_t cap, size_t *n, char *err, size_t errlen);

/* Python-style str() of a JSON value (True/False, 1.0, [1, 2]) — the key form of `variants`. */
void tbgw_mbv_pystr(const json_t *v, char *out, size_t cap);

#endif
