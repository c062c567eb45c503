/* MQTT packet codec (see mqtt_codec.h). */
#include "proto/mqtt/mqtt_codec.h"

#include <string.h>
#include <tbgw/err.h>

#define FAIL(text)                                                                                           \
    do {                                                                                                     \
        *why = (text);                                                                                       \
        return TBGW_EPROTO;                                                                                  \
    } while (0)

/* ------------------------------------------------------------------ framing */

int mqtt_frame_next(const uint8_t *buf, size_t n, mqtt_frame *f, size_t *need, const char **why) {
    *need = 0;
    if (n < 2) return 0;
    if ((buf[0] >> 4) == 0) {
        *why = "packet type 0 is reserved";
        return -1;
    }
    size_t len = 0, i = 1;
    for (unsigned shift = 0;; shift += 7, i++) {
        if (i > 4) {
            *why = "malformed remaining length (more than four bytes)";
            return -1;
        }
        if (i >= n) return 0;
        len |= (size_t)(buf[i] & 0x7f) << shift;
        if (!(buf[i] & 0x80)) break;
    }
    size_t total = i + 1 + len;
    *need = total;
    if (n < total) return 0;
    f->type = buf[0] >> 4;
    f->flags = buf[0] & 0x0f;
    f->body = buf + i + 1;
    f->len = len;
    f->total = total;
    return 1;
}

/* ------------------------------------------------------------------ readers */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static int rd_u8(rd *r, uint8_t *v) {
    if (r->p >= r->end) return -1;
    *v = *r->p++;
    return 0;
}

static int rd_u16(rd *r, uint16_t *v) {
    if (r->end - r->p < 2) return -1;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    return 0;
}

static int rd_u32(rd *r, uint32_t *v) {
    if (r->end - r->p < 4) return -1;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return 0;
}

static int rd_varint(rd *r, uint32_t *v) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t b;
        if (rd_u8(r, &b)) return -1;
        x |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -2;
}

/* A length-prefixed string or binary field. */
static int rd_bin(rd *r, const uint8_t **s, size_t *len) {
    uint16_t l;
    if (rd_u16(r, &l) || (size_t)(r->end - r->p) < l) return -1;
    *s = r->p;
    *len = l;
    r->p += l;
    return 0;
}

int mqtt_props_parse(const uint8_t *p, size_t len, mqtt_props *o, const char **why) {
    memset(o, 0, sizeof *o);
    o->server_keepalive = -1;
    o->max_qos = -1;
    rd r = {p, p + len};
    while (r.p < r.end) {
        uint32_t id;
        if (rd_varint(&r, &id)) FAIL("malformed property identifier");
        uint8_t b;
        uint16_t s16;
        uint32_t s32;
        const uint8_t *s;
        size_t sl;
        switch (id) {
        case 0x01: /* payload format indicator */
        case 0x17: /* request problem information */
        case 0x19: /* request response information */
        case 0x25: /* retain available */
        case 0x28: /* wildcard subscription available */
        case 0x29: /* subscription identifiers available */
        case 0x2A: /* shared subscription available */
            if (rd_u8(&r, &b)) FAIL("truncated byte property");
            break;
        case 0x24: /* maximum QoS */
            if (rd_u8(&r, &b)) FAIL("truncated byte property");
            o->max_qos = b;
            break;
        case 0x02: /* message expiry interval */
        case 0x18: /* will delay interval */
            if (rd_u32(&r, &s32)) FAIL("truncated four-byte property");
            break;
        case 0x11: /* session expiry interval */
            if (rd_u32(&r, &s32)) FAIL("truncated four-byte property");
            o->session_expiry = s32;
            o->has_session_expiry = 1;
            break;
        case 0x27: /* maximum packet size */
            if (rd_u32(&r, &s32)) FAIL("truncated four-byte property");
            o->max_packet = s32;
            break;
        case 0x13: /* server keep alive */
            if (rd_u16(&r, &s16)) FAIL("truncated two-byte property");
            o->server_keepalive = s16;
            break;
        case 0x21: /* receive maximum */
            if (rd_u16(&r, &s16)) FAIL("truncated two-byte property");
            if (s16 == 0) FAIL("receive maximum 0");
            o->receive_max = s16;
            break;
        case 0x22: /* topic alias maximum */
            if (rd_u16(&r, &s16)) FAIL("truncated two-byte property");
            o->topic_alias_max = s16;
            break;
        case 0x23: /* topic alias */
            if (rd_u16(&r, &s16)) FAIL("truncated two-byte property");
            break;
        case 0x0B: /* subscription identifier */
            if (rd_varint(&r, &s32)) FAIL("malformed subscription identifier");
            break;
        case 0x1F: /* reason string */
            if (rd_bin(&r, &s, &sl)) FAIL("truncated string property");
            o->reason = (const char *)s;
            o->reason_len = sl;
            break;
        case 0x12: /* assigned client identifier */
            if (rd_bin(&r, &s, &sl)) FAIL("truncated string property");
            o->assigned_id = (const char *)s;
            o->assigned_id_len = sl;
            break;
        case 0x03: /* content type */
        case 0x08: /* response topic */
        case 0x09: /* correlation data */
        case 0x15: /* authentication method */
        case 0x16: /* authentication data */
        case 0x1A: /* response information */
        case 0x1C: /* server reference */
            if (rd_bin(&r, &s, &sl)) FAIL("truncated string property");
            break;
        case 0x26: /* user property: a pair of strings */
            if (rd_bin(&r, &s, &sl) || rd_bin(&r, &s, &sl)) FAIL("truncated user property");
            break;
        default:
            FAIL("unknown property identifier");
        }
    }
    return 0;
}

/* Reads the property section of a v5 packet at r (length prefix, then properties). */
static int rd_props(rd *r, mqtt_props *o, const char **why) {
    uint32_t pl;
    if (rd_varint(r, &pl)) FAIL("malformed property length");
    if ((size_t)(r->end - r->p) < pl) FAIL("property length beyond the packet");
    int rc = mqtt_props_parse(r->p, pl, o, why);
    r->p += pl;
    return rc;
}

static void props_none(mqtt_props *o) {
    memset(o, 0, sizeof *o);
    o->server_keepalive = -1;
    o->max_qos = -1;
}

int mqtt_parse_connack(const mqtt_frame *f, int version, mqtt_connack *o, const char **why) {
    rd r = {f->body, f->body + f->len};
    uint8_t flags, code;
    props_none(&o->props);
    if (f->flags) FAIL("CONNACK with reserved flags set");
    if (rd_u8(&r, &flags) || rd_u8(&r, &code)) FAIL("truncated CONNACK");
    if (flags & 0xfe) FAIL("CONNACK with reserved acknowledge flags set");
    o->session_present = flags & 1;
    o->code = code;
    if (version == MQTT_V5) {
        if (r.p < r.end && rd_props(&r, &o->props, why)) return TBGW_EPROTO;
    }
    if (r.p != r.end) FAIL("bytes after the end of CONNACK");
    return 0;
}

int mqtt_parse_publish(const mqtt_frame *f, int version, mqtt_publish *o, const char **why) {
    rd r = {f->body, f->body + f->len};
    o->qos = (f->flags >> 1) & 3;
    o->retain = f->flags & 1;
    o->dup = (f->flags >> 3) & 1;
    o->mid = 0;
    if (o->qos == 3) FAIL("PUBLISH with QoS 3");
    if (rd_bin(&r, &o->topic, &o->topic_len)) FAIL("topic length beyond the packet");
    if (o->topic_len == 0) FAIL("PUBLISH with an empty topic");
    if (memchr(o->topic, 0, o->topic_len)) FAIL("PUBLISH topic holds a NUL character");
    if (o->qos) {
        if (rd_u16(&r, &o->mid)) FAIL("truncated PUBLISH packet identifier");
        if (!o->mid) FAIL("PUBLISH with packet identifier 0");
    }
    if (version == MQTT_V5) {
        mqtt_props props;
        if (rd_props(&r, &props, why)) return TBGW_EPROTO;
    }
    o->payload = r.p;
    o->payload_len = (size_t)(r.end - r.p);
    return 0;
}

int mqtt_parse_ack(const mqtt_frame *f, int version, mqtt_ack *o, const char **why) {
    rd r = {f->body, f->body + f->len};
    props_none(&o->props);
    o->mid = 0;
    o->code = 0;
    uint8_t code = 0;
    if (f->type == MQTT_DISCONNECT || f->type == MQTT_AUTH) {
        if (f->flags) FAIL("reserved flags set");
        if (version != MQTT_V5) {
            if (f->type == MQTT_AUTH) FAIL("AUTH before MQTT 5");
            return r.p == r.end ? 0 : (*why = "bytes in a v3 DISCONNECT", TBGW_EPROTO);
        }
        if (r.p == r.end) return 0;
        rd_u8(&r, &code);
        o->code = code;
        if (r.p < r.end && rd_props(&r, &o->props, why)) return TBGW_EPROTO;
        if (r.p != r.end) FAIL("bytes after the properties");
        return 0;
    }
    if (f->flags != (f->type == MQTT_PUBREL ? 2 : 0)) FAIL("acknowledgement with wrong flags");
    if (rd_u16(&r, &o->mid)) FAIL("truncated packet identifier");
    if (!o->mid) FAIL("packet identifier 0");
    if (version != MQTT_V5) {
        if (r.p != r.end) FAIL("bytes after the packet identifier");
        return 0;
    }
    if (f->type == MQTT_UNSUBACK) {
        mqtt_props props;
        if (rd_props(&r, &props, why)) return TBGW_EPROTO;
        /* one reason code per filter: the first is reported */
        if (r.p < r.end) o->code = *r.p;
        return 0;
    }
    if (r.p == r.end) return 0;
    rd_u8(&r, &code);
    o->code = code;
    if (r.p < r.end && rd_props(&r, &o->props, why)) return TBGW_EPROTO;
    if (r.p != r.end) FAIL("bytes after the properties");
    return 0;
}

int mqtt_parse_suback(const mqtt_frame *f, int version, mqtt_suback *o, const char **why) {
    rd r = {f->body, f->body + f->len};
    if (f->flags) FAIL("SUBACK with reserved flags set");
    if (rd_u16(&r, &o->mid)) FAIL("truncated SUBACK");
    if (!o->mid) FAIL("SUBACK with packet identifier 0");
    if (version == MQTT_V5) {
        mqtt_props props;
        if (rd_props(&r, &props, why)) return TBGW_EPROTO;
    }
    if (r.p == r.end) FAIL("SUBACK without a return code");
    o->codes = r.p;
    o->n = (size_t)(r.end - r.p);
    return 0;
}

/* ------------------------------------------------------------------ texts */

const char *mqtt_connack_text(int version, int code) {
    if (version == MQTT_V5) {
        const char *t = mqtt_reason_text(code);
        return strcmp(t, "unknown reason code") ? t : "refused";
    }
    switch (code) {
    case 0:
        return "connection accepted";
    case 1:
        return "unacceptable protocol version";
    case 2:
        return "client identifier rejected";
    case 3:
        return "server unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized";
    default:
        return "refused";
    }
}

const char *mqtt_reason_text(int code) {
    switch (code) {
    case 0x00:
        return "success";
    case 0x01:
        return "granted QoS 1";
    case 0x02:
        return "granted QoS 2";
    case 0x04:
        return "disconnect with will message";
    case 0x10:
        return "no matching subscribers";
    case 0x11:
        return "no subscription existed";
    case 0x18:
        return "continue authentication";
    case 0x19:
        return "re-authenticate";
    case 0x80:
        return "unspecified error";
    case 0x81:
        return "malformed packet";
    case 0x82:
        return "protocol error";
    case 0x83:
        return "implementation specific error";
    case 0x84:
        return "unsupported protocol version";
    case 0x85:
        return "client identifier not valid";
    case 0x86:
        return "bad user name or password";
    case 0x87:
        return "not authorized";
    case 0x88:
        return "server unavailable";
    case 0x89:
        return "server busy";
    case 0x8A:
        return "banned";
    case 0x8B:
        return "server shutting down";
    case 0x8C:
        return "bad authentication method";
    case 0x8D:
        return "keep alive timeout";
    case 0x8E:
        return "session taken over";
    case 0x8F:
        return "topic filter invalid";
    case 0x90:
        return "topic name invalid";
    case 0x91:
        return "packet identifier in use";
    case 0x92:
        return "packet identifier not found";
    case 0x93:
        return "receive maximum exceeded";
    case 0x94:
        return "topic alias invalid";
    case 0x95:
        return "packet too large";
    case 0x96:
        return "message rate too high";
    case 0x97:
        return "quota exceeded";
    case 0x98:
        return "administrative action";
    case 0x99:
        return "payload format invalid";
    case 0x9A:
        return "retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "use another server";
    case 0x9D:
        return "server moved";
    case 0x9E:
        return "shared subscriptions not supported";
    case 0x9F:
        return "connection rate exceeded";
    case 0xA0:
        return "maximum connect time";
    case 0xA1:
        return "subscription identifiers not supported";
    case 0xA2:
        return "wildcard subscriptions not supported";
    default:
        return "unknown reason code";
    }
}

/* ------------------------------------------------------------------ writers */

static int put_header(tbgw_buf *out, uint8_t first, size_t remaining) {
    if (remaining > MQTT_MAX_REMAINING) return TBGW_EINVAL;
    uint8_t h[5];
    size_t n = 0;
    h[n++] = first;
    do {
        uint8_t b = remaining & 0x7f;
        remaining >>= 7;
        h[n++] = b | (remaining ? 0x80 : 0);
    } while (remaining);
    return tbgw_buf_append(out, h, n);
}

static int put_u16(tbgw_buf *out, unsigned v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return tbgw_buf_append(out, b, 2);
}

static int put_str(tbgw_buf *out, const char *s, size_t n) {
    if (n > 65535) return TBGW_EINVAL;
    int rc = put_u16(out, (unsigned)n);
    return rc ? rc : tbgw_buf_append(out, s, n);
}

#define TRY(x)                                                                                               \
    do {                                                                                                     \
        int rc_ = (x);                                                                                       \
        if (rc_) return rc_;                                                                                 \
    } while (0)

int mqtt_enc_connect(tbgw_buf *out, const mqtt_connect_opts *o) {
    size_t idl = strlen(o->client_id ? o->client_id : ""), ul = o->username ? strlen(o->username) : 0,
           pl = o->password ? strlen(o->password) : 0;
    if (idl > 65535 || ul > 65535 || pl > 65535) return TBGW_EINVAL;
    const char *name = o->version == MQTT_V31 ? "MQIsdp" : "MQTT";
    size_t nl = strlen(name);
    uint8_t props[16];
    size_t np = 0;
    if (o->version == MQTT_V5) {
        if (o->session_expiry) {
            props[np++] = 0x11;
            props[np++] = (uint8_t)(o->session_expiry >> 24);
            props[np++] = (uint8_t)(o->session_expiry >> 16);
            props[np++] = (uint8_t)(o->session_expiry >> 8);
            props[np++] = (uint8_t)o->session_expiry;
        }
        if (o->receive_max > 0 && o->receive_max < 65536) {
            props[np++] = 0x21;
            props[np++] = (uint8_t)(o->receive_max >> 8);
            props[np++] = (uint8_t)o->receive_max;
        }
    }
    size_t rem = 2 + nl + 1 + 1 + 2 + (o->version == MQTT_V5 ? 1 + np : 0) + 2 + idl;
    if (o->username) rem += 2 + ul;
    if (o->username && o->password) rem += 2 + pl;
    uint8_t flags = o->clean ? 0x02 : 0;
    if (o->username) flags |= 0x80;
    if (o->username && o->password) flags |= 0x40;
    TRY(put_header(out, MQTT_CONNECT << 4, rem));
    TRY(put_str(out, name, nl));
    uint8_t b[4] = {(uint8_t)o->version, flags, (uint8_t)(o->keepalive >> 8), (uint8_t)o->keepalive};
    TRY(tbgw_buf_append(out, b, 4));
    if (o->version == MQTT_V5) {
        TRY(tbgw_buf_putc(out, (char)np));
        TRY(tbgw_buf_append(out, props, np));
    }
    TRY(put_str(out, o->client_id ? o->client_id : "", idl));
    if (o->username) TRY(put_str(out, o->username, ul));
    if (o->username && o->password) TRY(put_str(out, o->password, pl));
    return 0;
}

int mqtt_enc_publish(tbgw_buf *out, int version, const char *topic, const void *payload, size_t len, int qos,
                     int retain, int dup, uint16_t mid) {
    size_t tl = strlen(topic);
    if (tl == 0 || tl > 65535) return TBGW_EINVAL;
    size_t rem = 2 + tl + (qos ? 2 : 0) + (version == MQTT_V5 ? 1 : 0) + len;
    uint8_t first = (uint8_t)(MQTT_PUBLISH << 4 | (dup ? 8 : 0) | qos << 1 | (retain ? 1 : 0));
    TRY(put_header(out, first, rem));
    TRY(put_str(out, topic, tl));
    if (qos) TRY(put_u16(out, mid));
    if (version == MQTT_V5) TRY(tbgw_buf_putc(out, 0));
    return len ? tbgw_buf_append(out, payload, len) : 0;
}

int mqtt_enc_ack(tbgw_buf *out, int type, uint16_t mid) {
    uint8_t b[4] = {(uint8_t)(type << 4 | (type == MQTT_PUBREL ? 2 : 0)), 2, (uint8_t)(mid >> 8),
                    (uint8_t)mid};
    return tbgw_buf_append(out, b, 4);
}

int mqtt_enc_subscribe(tbgw_buf *out, int version, uint16_t mid, const char *filter, int qos) {
    size_t fl = strlen(filter);
    if (fl == 0 || fl > 65535) return TBGW_EINVAL;
    size_t rem = 2 + (version == MQTT_V5 ? 1 : 0) + 2 + fl + 1;
    TRY(put_header(out, MQTT_SUBSCRIBE << 4 | 2, rem));
    TRY(put_u16(out, mid));
    if (version == MQTT_V5) TRY(tbgw_buf_putc(out, 0));
    TRY(put_str(out, filter, fl));
    return tbgw_buf_putc(out, (char)(qos & 3));
}

int mqtt_enc_unsubscribe(tbgw_buf *out, int version, uint16_t mid, const char *filter) {
    size_t fl = strlen(filter);
    if (fl == 0 || fl > 65535) return TBGW_EINVAL;
    size_t rem = 2 + (version == MQTT_V5 ? 1 : 0) + 2 + fl;
    TRY(put_header(out, MQTT_UNSUBSCRIBE << 4 | 2, rem));
    TRY(put_u16(out, mid));
    if (version == MQTT_V5) TRY(tbgw_buf_putc(out, 0));
    return put_str(out, filter, fl);
}

int mqtt_enc_pingreq(tbgw_buf *out) {
    uint8_t b[2] = {MQTT_PINGREQ << 4, 0};
    return tbgw_buf_append(out, b, 2);
}

int mqtt_enc_disconnect(tbgw_buf *out, int version) {
    (void)version; /* v5: reason code 0 and no properties may be left out */
    uint8_t b[2] = {MQTT_DISCONNECT << 4, 0};
    return tbgw_buf_append(out, b, 2);
}
