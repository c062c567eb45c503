/* OPC UA built-in types (Part 6 §5.1) and their binary encoding (Part 6 §5.2).
 *
 * Decoding never trusts the wire: every length and count is checked against the bytes left,
 * nesting is bounded, and a failed decode leaves nothing allocated in the output. Decoded values own
 * their memory; release them with the matching *_clear function. */
#ifndef TBGW_PROTO_OPCUA_TYPES_H
#define TBGW_PROTO_OPCUA_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

/* Built-in type ids (Part 6 Table 1). */
enum {
    TBGW_UA_BOOLEAN = 1,
    TBGW_UA_SBYTE = 2,
    TBGW_UA_BYTE = 3,
    TBGW_UA_INT16 = 4,
    TBGW_UA_UINT16 = 5,
    TBGW_UA_INT32 = 6,
    TBGW_UA_UINT32 = 7,
    TBGW_UA_INT64 = 8,
    TBGW_UA_UINT64 = 9,
    TBGW_UA_FLOAT = 10,
    TBGW_UA_DOUBLE = 11,
    TBGW_UA_STRING = 12,
    TBGW_UA_DATETIME = 13,
    TBGW_UA_GUID = 14,
    TBGW_UA_BYTESTRING = 15,
    TBGW_UA_XMLELEMENT = 16,
    TBGW_UA_NODEID = 17,
    TBGW_UA_EXPANDEDNODEID = 18,
    TBGW_UA_STATUSCODE = 19,
    TBGW_UA_QUALIFIEDNAME = 20,
    TBGW_UA_LOCALIZEDTEXT = 21,
    TBGW_UA_EXTENSIONOBJECT = 22,
    TBGW_UA_DATAVALUE = 23,
    TBGW_UA_VARIANT = 24,
    TBGW_UA_DIAGNOSTICINFO = 25,
};

/* Decoder limits: nothing on the wire may make us allocate more than this. */
#define TBGW_UA_MAX_DEPTH     16
#define TBGW_UA_MAX_ARRAY     (1 << 24)
#define TBGW_UA_MAX_DIMENSION 32

/* String / ByteString / XmlElement. len -1 = null. data is NUL-terminated (not counted in len). */
typedef struct tbgw_ua_bytes {
    int32_t len;
    uint8_t *data;
} tbgw_ua_bytes;

typedef enum tbgw_ua_idtype {
    TBGW_UA_ID_NUMERIC = 0,
    TBGW_UA_ID_STRING = 1,
    TBGW_UA_ID_GUID = 2,
    TBGW_UA_ID_BYTESTRING = 3,
} tbgw_ua_idtype;

typedef struct tbgw_ua_nodeid {
    uint16_t ns;
    tbgw_ua_idtype type;
    uint32_t num;
    tbgw_ua_bytes str; /* string or bytestring identifier */
    uint8_t guid[16];  /* wire order: Data1 LE u32, Data2 LE u16, Data3 LE u16, Data4[8] */
} tbgw_ua_nodeid;

typedef struct tbgw_ua_expnodeid {
    tbgw_ua_nodeid id;
    tbgw_ua_bytes ns_uri; /* len -1 when absent */
    uint32_t server_index;
} tbgw_ua_expnodeid;

typedef struct tbgw_ua_qname {
    uint16_t ns;
    tbgw_ua_bytes name;
} tbgw_ua_qname;

typedef struct tbgw_ua_ltext {
    tbgw_ua_bytes locale; /* len -1 when absent */
    tbgw_ua_bytes text;
} tbgw_ua_ltext;

typedef enum tbgw_ua_eo_enc {
    TBGW_UA_EO_NONE = 0,
    TBGW_UA_EO_BINARY = 1,
    TBGW_UA_EO_XML = 2,
} tbgw_ua_eo_enc;

/* ExtensionObject: kept as type id + raw body; services decode bodies they understand. */
typedef struct tbgw_ua_extobj {
    tbgw_ua_nodeid type_id;
    tbgw_ua_eo_enc enc;
    tbgw_ua_bytes body;
} tbgw_ua_extobj;

typedef struct tbgw_ua_diag {
    uint8_t mask;
    int32_t symbolic_id, ns_uri, locale, localized_text;
    tbgw_ua_bytes additional_info;
    uint32_t inner_status;
    struct tbgw_ua_diag *inner;
} tbgw_ua_diag;

struct tbgw_ua_variant;
struct tbgw_ua_datavalue;

/* One element of a Variant. Integers are widened (signed into i, unsigned and Boolean into u);
 * Float and Double are held in d. */
typedef union tbgw_ua_scalar {
    int64_t i;
    uint64_t u;
    double d;
    int64_t dt;                /* DateTime: 100 ns ticks since 1601-01-01 UTC */
    uint32_t status;           /* StatusCode */
    tbgw_ua_bytes s;           /* String, ByteString, XmlElement */
    uint8_t guid[16];          /* Guid */
    tbgw_ua_expnodeid *nodeid; /* NodeId (server_index 0, ns_uri null) and ExpandedNodeId */
    tbgw_ua_qname qn;
    tbgw_ua_ltext lt;
    tbgw_ua_extobj *eo;
    struct tbgw_ua_datavalue *dv;
    struct tbgw_ua_variant *var; /* Variant inside an array of Variant */
    tbgw_ua_diag *diag;
} tbgw_ua_scalar;

typedef struct tbgw_ua_variant {
    uint8_t type; /* 0 = empty (null) */
    uint8_t is_array;
    int32_t n;         /* number of elements (1 for a scalar, -1 for a null array) */
    tbgw_ua_scalar *v; /* n elements (NULL when n <= 0) */
    int32_t n_dims;    /* 0 when no dimensions */
    int32_t *dims;
} tbgw_ua_variant;

enum {
    TBGW_UA_DV_VALUE = 0x01,
    TBGW_UA_DV_STATUS = 0x02,
    TBGW_UA_DV_SOURCE_TS = 0x04,
    TBGW_UA_DV_SERVER_TS = 0x08,
    TBGW_UA_DV_SOURCE_PICO = 0x10,
    TBGW_UA_DV_SERVER_PICO = 0x20,
};

typedef struct tbgw_ua_datavalue {
    uint8_t mask;
    tbgw_ua_variant value;
    uint32_t status;
    int64_t source_ts, server_ts;
    uint16_t source_pico, server_pico;
} tbgw_ua_datavalue;

/* ---- decoding ---- */
typedef struct tbgw_ua_dec {
    const uint8_t *p;
    size_t len, pos;
    int err; /* sticky: TBGW_EPROTO (malformed/truncated) or TBGW_ENOMEM */
    unsigned depth;
} tbgw_ua_dec;

void tbgw_ua_dec_init(tbgw_ua_dec *d, const void *p, size_t len);
size_t tbgw_ua_dec_left(const tbgw_ua_dec *d);
/* Primitive readers: on error set d->err and return 0 (callers check d->err once at the end). */
uint8_t tbgw_ua_dec_u8(tbgw_ua_dec *d);
uint16_t tbgw_ua_dec_u16(tbgw_ua_dec *d);
uint32_t tbgw_ua_dec_u32(tbgw_ua_dec *d);
int32_t tbgw_ua_dec_i32(tbgw_ua_dec *d);
uint64_t tbgw_ua_dec_u64(tbgw_ua_dec *d);
int64_t tbgw_ua_dec_i64(tbgw_ua_dec *d);
double tbgw_ua_dec_double(tbgw_ua_dec *d);
float tbgw_ua_dec_float(tbgw_ua_dec *d);
/* Array length prefix: checks -1 <= n <= min(MAX_ARRAY, bytes left / min_elem_size). */
int32_t tbgw_ua_dec_count(tbgw_ua_dec *d, size_t min_elem_size);
void tbgw_ua_dec_skip(tbgw_ua_dec *d, size_t n);

/* Structured readers return 0 or the sticky error; on error the output holds nothing to free. */
int tbgw_ua_dec_bytes(tbgw_ua_dec *d, tbgw_ua_bytes *out);
int tbgw_ua_dec_nodeid(tbgw_ua_dec *d, tbgw_ua_nodeid *out);
int tbgw_ua_dec_expnodeid(tbgw_ua_dec *d, tbgw_ua_expnodeid *out);
int tbgw_ua_dec_qname(tbgw_ua_dec *d, tbgw_ua_qname *out);
int tbgw_ua_dec_ltext(tbgw_ua_dec *d, tbgw_ua_ltext *out);
int tbgw_ua_dec_extobj(tbgw_ua_dec *d, tbgw_ua_extobj *out);
int tbgw_ua_dec_diag(tbgw_ua_dec *d, tbgw_ua_diag *out);
int tbgw_ua_dec_variant(tbgw_ua_dec *d, tbgw_ua_variant *out);
int tbgw_ua_dec_datavalue(tbgw_ua_dec *d, tbgw_ua_datavalue *out);
/* Skips an array of DiagnosticInfo (as trailing in most responses). */
int tbgw_ua_dec_skip_diags(tbgw_ua_dec *d);
/* Skips an array of String. */
int tbgw_ua_dec_skip_strings(tbgw_ua_dec *d);

/* ---- encoding (into a tbgw_buf; its sticky oom flag reports failure) ---- */
void tbgw_ua_enc_u8(tbgw_buf *b, uint8_t v);
void tbgw_ua_enc_u16(tbgw_buf *b, uint16_t v);
void tbgw_ua_enc_u32(tbgw_buf *b, uint32_t v);
void tbgw_ua_enc_i32(tbgw_buf *b, int32_t v);
void tbgw_ua_enc_u64(tbgw_buf *b, uint64_t v);
void tbgw_ua_enc_i64(tbgw_buf *b, int64_t v);
void tbgw_ua_enc_double(tbgw_buf *b, double v);
void tbgw_ua_enc_float(tbgw_buf *b, float v);
void tbgw_ua_enc_bytes(tbgw_buf *b, const tbgw_ua_bytes *s);
/* Encodes a C string as String (NULL = null string). */
void tbgw_ua_enc_cstr(tbgw_buf *b, const char *s);
void tbgw_ua_enc_raw_bytes(tbgw_buf *b, const void *p, int32_t len); /* ByteString, len -1 = null */
void tbgw_ua_enc_nodeid(tbgw_buf *b, const tbgw_ua_nodeid *id);
void tbgw_ua_enc_expnodeid(tbgw_buf *b, const tbgw_ua_expnodeid *id);
void tbgw_ua_enc_qname(tbgw_buf *b, const tbgw_ua_qname *q);
void tbgw_ua_enc_ltext(tbgw_buf *b, const tbgw_ua_ltext *t);
void tbgw_ua_enc_extobj(tbgw_buf *b, const tbgw_ua_extobj *eo);
void tbgw_ua_enc_diag(tbgw_buf *b, const tbgw_ua_diag *di);
int tbgw_ua_enc_variant(tbgw_buf *b, const tbgw_ua_variant *v);
int tbgw_ua_enc_datavalue(tbgw_buf *b, const tbgw_ua_datavalue *dv);

/* ---- helpers ---- */
void tbgw_ua_bytes_clear(tbgw_ua_bytes *s);
int tbgw_ua_bytes_set(tbgw_ua_bytes *s, const void *p, size_t n); /* copies; 0 or TBGW_ENOMEM */
void tbgw_ua_nodeid_clear(tbgw_ua_nodeid *id);
int tbgw_ua_nodeid_copy(tbgw_ua_nodeid *dst, const tbgw_ua_nodeid *src);
int tbgw_ua_nodeid_equal(const tbgw_ua_nodeid *a, const tbgw_ua_nodeid *b);
tbgw_ua_nodeid tbgw_ua_nodeid_num(uint16_t ns, uint32_t num);
void tbgw_ua_expnodeid_clear(tbgw_ua_expnodeid *id);
void tbgw_ua_qname_clear(tbgw_ua_qname *q);
void tbgw_ua_ltext_clear(tbgw_ua_ltext *t);
void tbgw_ua_extobj_clear(tbgw_ua_extobj *eo);
void tbgw_ua_diag_clear(tbgw_ua_diag *di);
void tbgw_ua_variant_clear(tbgw_ua_variant *v);
void tbgw_ua_datavalue_clear(tbgw_ua_datavalue *dv);
int tbgw_ua_variant_copy(tbgw_ua_variant *dst, const tbgw_ua_variant *src);

/* Variant constructors for scalars (strings copied). 0 or TBGW_ENOMEM. */
int tbgw_ua_variant_set_scalar(tbgw_ua_variant *v, uint8_t type, const tbgw_ua_scalar *val);
int tbgw_ua_variant_set_string(tbgw_ua_variant *v, const char *s);

/* Parses "ns=2;i=5", "i=85", "ns=1;s=Name", "g=<guid>", "b=<base64>" and the "nsu=" form is refused.
 * Returns 0 or TBGW_EINVAL. */
int tbgw_ua_nodeid_parse(const char *text, tbgw_ua_nodeid *out);
/* Formats like the parser accepts ("ns=2;i=5", ns omitted when 0). */
int tbgw_ua_nodeid_format(const tbgw_ua_nodeid *id, tbgw_buf *out);
/* DateTime <-> Unix epoch milliseconds. */
int64_t tbgw_ua_datetime_to_ms(int64_t dt);
int64_t tbgw_ua_datetime_from_ms(int64_t ms);
int64_t tbgw_ua_datetime_now(void);
const char *tbgw_ua_type_name(uint8_t type);

#endif
