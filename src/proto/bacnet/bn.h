/* BACnet/IP (ASHRAE 135 Annex J): tag codec, BVLL, NPDU and APDU framing, the services the gateway
 * uses, and object-type / property enumerations. Pure functions over byte buffers, no I/O; the
 * transaction layer (invoke ids, retries, segmentation, sockets) is in bn_client.h. */
#ifndef TBGW_PROTO_BN_H
#define TBGW_PROTO_BN_H

#include <stddef.h>
#include <stdint.h>

#define BN_MAX_APDU     1476
#define BN_MAX_FRAME    1500
#define BN_MAX_INST     4194303u
#define BN_ARRAY_ALL    0xFFFFFFFFu
#define BN_NO_PRIO      0
#define BN_DEFAULT_PORT 47808

/* Application tag numbers. */
enum {
    BN_NULL = 0,
    BN_BOOLEAN = 1,
    BN_UNSIGNED = 2,
    BN_SIGNED = 3,
    BN_REAL = 4,
    BN_DOUBLE = 5,
    BN_OCTETS = 6,
    BN_CHARSTR = 7,
    BN_BITSTR = 8,
    BN_ENUM = 9,
    BN_DATE = 10,
    BN_TIME = 11,
    BN_OID = 12,
    /* pseudo types of decoded items */
    BN_OPEN = 100,    /* context opening tag (tag number in .ctx) */
    BN_CLOSE = 101,   /* context closing tag */
    BN_CTXPRIM = 102, /* context-tagged primitive: raw bytes in data/len, tag number in .ctx */
};

/* One decoded primitive (or an opening/closing marker). Strings point into the decoded buffer. */
typedef struct bn_value {
    uint8_t type;
    uint8_t ctx;     /* context tag number of BN_OPEN/BN_CLOSE/BN_CTXPRIM */
    uint8_t charset; /* BN_CHARSTR: 0 = UTF-8, 4 = UCS-2, 5 = ISO 8859-1 */
    uint8_t unused;  /* BN_BITSTR: unused bits in the last byte */
    union {
        int b;
        uint64_t u;
        int64_t i;
        float r;
        double d;
        uint8_t dt[4]; /* date: year-1900, month, day, weekday; time: hour, minute, second, hundredths */
        struct {
            uint16_t type;
            uint32_t inst;
        } oid;
    } v;
    const uint8_t *data; /* octets, character bytes (after the charset), bit bytes, raw context bytes */
    size_t len;
} bn_value;

/* ---- writer ---- */
typedef struct bn_w {
    uint8_t *p;
    size_t len, cap;
    int overflow;
} bn_w;

void bn_w_init(bn_w *w, uint8_t *buf, size_t cap);
void bn_put(bn_w *w, const void *data, size_t n);
void bn_put_u8(bn_w *w, uint8_t b);
void bn_put_u16(bn_w *w, uint16_t v);
void bn_enc_tag(bn_w *w, unsigned tag, int context, uint32_t lvt);
void bn_enc_open(bn_w *w, unsigned tag);
void bn_enc_close(bn_w *w, unsigned tag);
void bn_enc_null(bn_w *w);
void bn_enc_bool(bn_w *w, int b);
void bn_enc_unsigned(bn_w *w, uint64_t v);
void bn_enc_signed(bn_w *w, int64_t v);
void bn_enc_real(bn_w *w, float v);
void bn_enc_double(bn_w *w, double v);
void bn_enc_octets(bn_w *w, const uint8_t *p, size_t n);
void bn_enc_charstr(bn_w *w, const char *s, size_t n);          /* UTF-8 */
void bn_enc_bitstr(bn_w *w, const uint8_t *bits, size_t nbits); /* bits[i] != 0 */
void bn_enc_enum(bn_w *w, uint32_t v);
void bn_enc_date(bn_w *w, const uint8_t dt[4]);
void bn_enc_time(bn_w *w, const uint8_t dt[4]);
void bn_enc_oid(bn_w *w, uint16_t type, uint32_t inst);
void bn_enc_value(bn_w *w, const bn_value *v); /* application-tagged primitive */
void bn_enc_ctx_unsigned(bn_w *w, unsigned tag, uint64_t v);
void bn_enc_ctx_enum(bn_w *w, unsigned tag, uint32_t v);
void bn_enc_ctx_oid(bn_w *w, unsigned tag, uint16_t type, uint32_t inst);
void bn_enc_ctx_bool(bn_w *w, unsigned tag, int b);

/* ---- reader ---- */
typedef struct bn_tag {
    unsigned num;
    int context;
    int open, close;
    uint32_t len; /* content length (application boolean: its value) */
} bn_tag;

/* Decodes one tag header at p[*off]; 0 or -1 when malformed / truncated. */
int bn_dec_tag(const uint8_t *p, size_t n, size_t *off, bn_tag *t);
/* Decodes one item (application primitive, context primitive, opening or closing tag). */
int bn_dec_item(const uint8_t *p, size_t n, size_t *off, bn_value *out);
/* Decodes items until the closing tag `ctx` at the current nesting level (consumed) into out
 * (at most cap). Returns the number of items, -1 malformed, -2 more than cap. */
int bn_dec_until_close(const uint8_t *p, size_t n, size_t *off, unsigned ctx, bn_value *out, size_t cap);
uint64_t bn_raw_unsigned(const uint8_t *p, size_t len);
/* Context primitive helpers: expect context tag `tag` next; -1 when absent (offset unchanged). */
int bn_dec_ctx_unsigned(const uint8_t *p, size_t n, size_t *off, unsigned tag, uint64_t *v);
int bn_dec_ctx_oid(const uint8_t *p, size_t n, size_t *off, unsigned tag, uint16_t *type, uint32_t *inst);
int bn_peek_open(const uint8_t *p, size_t n, size_t off, unsigned tag);
int bn_peek_close(const uint8_t *p, size_t n, size_t off, unsigned tag);
int bn_peek_ctx(const uint8_t *p, size_t n, size_t off, unsigned tag);

/* ---- BVLL (Annex J) ---- */
enum {
    BN_BVLC_RESULT = 0x00,
    BN_BVLC_FORWARDED = 0x04,
    BN_BVLC_REGISTER_FD = 0x05,
    BN_BVLC_DELETE_FDT = 0x08,
    BN_BVLC_DISTRIBUTE = 0x09,
    BN_BVLC_UNICAST = 0x0A,
    BN_BVLC_BROADCAST = 0x0B,
};
typedef struct bn_bvll {
    uint8_t func;
    uint32_t orig_ip; /* forwarded NPDU: the originator (host order) */
    uint16_t orig_port;
    uint16_t result; /* BVLC-Result code */
    uint16_t ttl;    /* Register-Foreign-Device */
    const uint8_t *npdu;
    size_t npdu_len;
} bn_bvll;
int bn_bvll_decode(const uint8_t *p, size_t n, bn_bvll *out);
/* Writes the 4-byte header for a frame of total length w->len (call after the NPDU is written). */
void bn_bvll_finish(uint8_t *frame, size_t total, uint8_t func);
size_t bn_bvll_register_fd(uint8_t *out, uint16_t ttl);
size_t bn_bvll_delete_fdt(uint8_t *out, uint32_t ip, uint16_t port);

/* ---- NPDU (clause 6) ---- */
typedef struct bn_npdu {
    uint8_t control;
    int expecting_reply;
    uint8_t prio;
    uint16_t dnet, snet; /* 0 = absent */
    uint8_t dlen, slen;
    uint8_t dadr[8], sadr[8];
    uint8_t hop;
    int netmsg;          /* network layer message */
    uint8_t msgtype;     /* when netmsg */
    const uint8_t *apdu; /* APDU, or the network message payload */
    size_t apdu_len;
} bn_npdu;
int bn_npdu_decode(const uint8_t *p, size_t n, bn_npdu *out);
/* Writes an NPDU header for an APDU to dnet/dadr (dnet 0 = local; 0xFFFF = global broadcast). */
void bn_npdu_encode(bn_w *w, int expecting_reply, uint16_t dnet, const uint8_t *dadr, uint8_t dlen);
/* Network-layer messages (clause 6.4). */
enum {
    BN_NL_WHO_IS_ROUTER = 0x00,
    BN_NL_I_AM_ROUTER = 0x01,
    BN_NL_REJECT = 0x03,           /* Reject-Message-To-Network: reason, DNET */
    BN_NL_ROUTER_BUSY = 0x04,      /* Router-Busy-To-Network: list of DNETs (none = all) */
    BN_NL_ROUTER_AVAILABLE = 0x05, /* Router-Available-To-Network: list of DNETs (none = all) */
};
/* Network-layer message Who-Is-Router-To-Network (net 0 = any). */
void bn_npdu_who_is_router(bn_w *w, uint16_t net);
/* I-Am-Router-To-Network: the payload after the message type is a list of 2-octet network numbers.
 * Returns how many (at most cap stored), -1 when the payload is not a whole list. */
int bn_npdu_i_am_router_decode(const uint8_t *p, size_t n, uint16_t *nets, size_t cap);
/* Reject-Message-To-Network (clause 6.4.4): the reason octet and the network. 0, or -1 when short. */
int bn_npdu_reject_decode(const uint8_t *p, size_t n, uint8_t *reason, uint16_t *net);
/* Writes an I-Am-Router-To-Network for nets (what a router answers). */
void bn_npdu_i_am_router(bn_w *w, const uint16_t *nets, size_t n);

/* ---- APDU (clause 20) ---- */
enum {
    BN_PDU_CONFIRMED = 0,
    BN_PDU_UNCONFIRMED = 1,
    BN_PDU_SIMPLE_ACK = 2,
    BN_PDU_COMPLEX_ACK = 3,
    BN_PDU_SEGMENT_ACK = 4,
    BN_PDU_ERROR = 5,
    BN_PDU_REJECT = 6,
    BN_PDU_ABORT = 7,
};
enum {
    BN_SVC_SUBSCRIBE_COV = 5,
    BN_SVC_READ_PROPERTY = 12,
    BN_SVC_READ_PROP_MULTIPLE = 14,
    BN_SVC_WRITE_PROPERTY = 15,
    BN_SVC_CONFIRMED_COV = 1,
};
enum {
    BN_USVC_I_AM = 0,
    BN_USVC_COV_NOTIFICATION = 2,
    BN_USVC_WHO_IS = 8,
};
typedef struct bn_apdu {
    uint8_t type;
    int segmented, more_follows, seg_resp_accepted, nak, server;
    uint8_t max_segs, max_apdu_code;
    uint8_t invoke_id;
    uint8_t seq, window;
    uint8_t service;
    uint8_t reason; /* reject / abort */
    const uint8_t *data;
    size_t len;
} bn_apdu;
int bn_apdu_decode(const uint8_t *p, size_t n, bn_apdu *out);
void bn_apdu_confirmed(bn_w *w, uint8_t invoke_id, uint8_t service, unsigned max_apdu_accepted);
void bn_apdu_unconfirmed(bn_w *w, uint8_t service);
void bn_apdu_segment_ack(bn_w *w, uint8_t invoke_id, uint8_t seq, uint8_t window, int nak);
/* One segment of a segmented confirmed request (clause 20.1.2): the header with sequence number and
 * proposed window size; the caller appends the segment's part of the service request. */
void bn_apdu_confirmed_segment(bn_w *w, uint8_t invoke_id, uint8_t service, unsigned max_apdu_accepted,
                               uint8_t seq, uint8_t window, int more_follows);
void bn_apdu_complex_ack(bn_w *w, uint8_t invoke_id, uint8_t service);
void bn_apdu_simple_ack(bn_w *w, uint8_t invoke_id, uint8_t service);
void bn_apdu_error(bn_w *w, uint8_t invoke_id, uint8_t service, uint32_t eclass, uint32_t ecode);
void bn_apdu_reject(bn_w *w, uint8_t invoke_id, uint8_t reason);
unsigned bn_max_apdu_decode(uint8_t code);
uint8_t bn_max_apdu_code(unsigned n);
/* Error PDU payload: error class and code. */
int bn_error_decode(const uint8_t *p, size_t n, uint32_t *eclass, uint32_t *ecode);
const char *bn_error_class_name(uint32_t c);
const char *bn_error_code_name(uint32_t c);
const char *bn_reject_name(uint32_t r);
const char *bn_abort_name(uint32_t r);
/* Reject-Message-To-Network reasons (clause 6.4.4): "not-directly-connected", "router-busy", ... */
const char *bn_network_reject_name(uint32_t r);

/* ---- services ---- */
typedef struct bn_iam {
    uint32_t inst;
    uint32_t max_apdu;
    uint32_t segmentation; /* 0 both, 1 transmit, 2 receive, 3 none */
    uint32_t vendor;
} bn_iam;
void bn_who_is(bn_w *w, int64_t low, int64_t high); /* low < 0: no range */
int bn_who_is_decode(const uint8_t *p, size_t n, int64_t *low, int64_t *high);
void bn_i_am(bn_w *w, const bn_iam *a);
int bn_i_am_decode(const uint8_t *p, size_t n, bn_iam *out);

typedef struct bn_propref {
    uint32_t prop;
    uint32_t index; /* BN_ARRAY_ALL = none */
} bn_propref;
void bn_rp_request(bn_w *w, uint16_t type, uint32_t inst, uint32_t prop, uint32_t index);
int bn_rp_request_decode(const uint8_t *p, size_t n, uint16_t *type, uint32_t *inst, bn_propref *pr);
/* ReadProperty-ACK: object, property and the value items (between [3] and its closing tag). */
typedef struct bn_rp_ack {
    uint16_t type;
    uint32_t inst;
    bn_propref pr;
    const uint8_t *value; /* the encoded items, decode with bn_dec_item */
    size_t value_len;
} bn_rp_ack;
int bn_rp_ack_decode(const uint8_t *p, size_t n, bn_rp_ack *out);
void bn_rp_ack_begin(bn_w *w, uint16_t type, uint32_t inst, uint32_t prop, uint32_t index);
void bn_rp_ack_end(bn_w *w);

/* ReadPropertyMultiple request: one object spec at a time. */
void bn_rpm_object(bn_w *w, uint16_t type, uint32_t inst, const bn_propref *props, size_t n);
/* Walks an RPM-ACK: calls fn for each result (value bytes, or error class/code). */
typedef struct bn_rpm_result {
    uint16_t type;
    uint32_t inst;
    bn_propref pr;
    int is_error;
    uint32_t eclass, ecode;
    const uint8_t *value;
    size_t value_len;
} bn_rpm_result;
typedef void (*bn_rpm_fn)(void *ud, const bn_rpm_result *r);
int bn_rpm_ack_walk(const uint8_t *p, size_t n, bn_rpm_fn fn, void *ud);

/* WriteProperty: value is written by the caller between begin and end. prio 0 = none. */
void bn_wp_begin(bn_w *w, uint16_t type, uint32_t inst, uint32_t prop, uint32_t index);
void bn_wp_end(bn_w *w, unsigned prio);

/* SubscribeCOV: lifetime 0 with cancel = 1 cancels. */
void bn_subscribe_cov(bn_w *w, uint32_t pid, uint16_t type, uint32_t inst, int confirmed, uint32_t lifetime,
                      int cancel);
/* COV notification: monitored object and the list of values ([4] sequence of property values). */
typedef struct bn_cov {
    uint32_t pid;
    uint32_t dev_inst;
    uint16_t type;
    uint32_t inst;
    uint32_t time_left;
    const uint8_t *values;
    size_t values_len;
} bn_cov;
int bn_cov_decode(const uint8_t *p, size_t n, bn_cov *out);
/* Walks [4] list-of-values of a COV notification: property ref and value bytes. */
typedef void (*bn_cov_fn)(void *ud, const bn_propref *pr, const uint8_t *value, size_t len);
int bn_cov_values_walk(const uint8_t *p, size_t n, bn_cov_fn fn, void *ud);

/* ---- enumerations ---- */
/* Object type / property by name: camelCase or kebab-case, or a number. -1 when unknown. */
int bn_object_type_parse(const char *name);
int bn_property_parse(const char *name);
/* camelCase name, or NULL for a number without a name (vendor proprietary). */
const char *bn_object_type_name(unsigned t);
const char *bn_property_name(unsigned p);
/* Vendor-proprietary properties known by name (the reference's shipped extension: Siemens Desigo CC,
 * vendor 7, descriptionList = 3121). vendor 0 = any vendor of the table. -1 / NULL when unknown. */
int bn_vendor_property_parse(uint32_t vendor, const char *name);
const char *bn_vendor_property_name(uint32_t vendor, uint32_t prop);
/* The vendor owning a proprietary property name (0 when none). */
uint32_t bn_vendor_property_owner(const char *name);
/* kebab-case form of a camelCase name into out. */
void bn_kebab(const char *camel, char *out, size_t cap);

#endif
