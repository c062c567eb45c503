/* Method argument descriptions (Part 3 §8.6 Argument, Part 6 binary encoding): the value of a
 * method's InputArguments / OutputArguments property is an array of ExtensionObjects holding them.
 * Decoding never trusts the server: a body that does not parse is refused whole. */
#ifndef TBGW_PROTO_OPCUA_ARGUMENT_H
#define TBGW_PROTO_OPCUA_ARGUMENT_H

#include <stddef.h>
#include <stdint.h>
#include "proto/opcua/ua_types.h"

/* ns=0 ids of the Argument structure and its binary encoding. */
enum { TBGW_UA_NS0_ARGUMENT = 296, TBGW_UA_NS0_ARGUMENT_BINARY = 298 };

/* ValueRank values (Part 3 §5.6.2). */
enum {
    TBGW_UA_RANK_SCALAR_OR_ONE = -3,
    TBGW_UA_RANK_ANY = -2,
    TBGW_UA_RANK_SCALAR = -1,
    TBGW_UA_RANK_ONE_OR_MORE = 0,
};

typedef struct tbgw_ua_argument {
    char *name;               /* never NULL ("" for a null name) */
    tbgw_ua_nodeid data_type; /* the DataType node */
    int32_t value_rank;
    uint32_t *dims; /* ArrayDimensions (n_dims entries; 0 = length not fixed) */
    int32_t n_dims;
} tbgw_ua_argument;

/* Decodes one Argument from an ExtensionObject (binary body, encoding id ns=0;i=298). Returns 0,
 * TBGW_EPROTO (not an Argument, or a malformed body) or TBGW_ENOMEM; nothing to free on error. */
int tbgw_ua_argument_decode(const tbgw_ua_extobj *eo, tbgw_ua_argument *out);
/* Decodes the Value of an InputArguments property: an array (or a single value) of Argument
 * ExtensionObjects; an empty or null value gives n = 0. */
int tbgw_ua_arguments_from_variant(const tbgw_ua_variant *v, tbgw_ua_argument **out, size_t *n);
void tbgw_ua_argument_clear(tbgw_ua_argument *a);
void tbgw_ua_arguments_free(tbgw_ua_argument *a, size_t n);

/* The built-in type (TBGW_UA_BOOLEAN ...) values of a DataType are encoded with: the built-in types
 * themselves, the well-known ns=0 subtypes (Duration -> Double, UtcTime -> DateTime, Enumeration ->
 * Int32, Image* -> ByteString, ...) and the abstract Integer -> Int64, UInteger -> UInt64. 0 for
 * BaseDataType and Number (any value fits), unknown ns=0 types and types of other namespaces (their
 * supertype tells; see tbgw_ua_browse_inverse). */
uint8_t tbgw_ua_builtin_of_datatype(const tbgw_ua_nodeid *dt);

#endif
