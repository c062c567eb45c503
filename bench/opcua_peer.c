/* A fast OPC UA server for benchmarks (not a test peer: integration tests use node-opcua). It lets the
 * gateway's OPC UA client be measured without the server being the limit.
 *
 * Usage: bench_opcua_peer PORT N PERIOD_MS [MAX_PER_PUBLISH]
 *   Listens on 127.0.0.1:PORT (0 = a free port) and prints "READY <port>" once listening.
 *   Address space (as tests/peers/opcua_server.js --many N): Objects/Many (ns=1;s=Many) with N Double
 *   variables V0..V{N-1} (ns=1;s=Vi, browse name 1:Vi); Vi = i + tick, where tick counts PERIOD_MS
 *   periods since start. MAX_PER_PUBLISH (or TBGW_PEER_MAX_PER_PUBLISH) caps the notifications of one
 *   Publish response (0 = only the client's maxNotificationsPerPublish and message size limit it).
 *
 * Single-threaded (poll), SecurityPolicy None, anonymous identity only. Built on the gateway's own UA
 * stack (src/proto/opcua: chunking, reassembly, encoders and decoders, which check every length).
 * Services: HEL/ACK, OpenSecureChannel (issue and renew), CloseSecureChannel, GetEndpoints,
 * CreateSession, ActivateSession, CloseSession, Browse, BrowseNext, Read, CreateSubscription,
 * CreateMonitoredItems, DeleteMonitoredItems, DeleteSubscriptions, Publish (data changes with
 * monitored-item queues, keep-alives, acknowledgements) and Republish (always BadMessageNotAvailable:
 * no retransmission queue is kept). Other services get a ServiceFault BadServiceUnsupported.
 * TBGW_PEER_CHANNEL_LIFETIME_MS (1000..3600000) sets the secure channel lifetime it grants, so that
 * the client's channel renewals can be exercised. On exit (SIGTERM/SIGINT) it prints its counters on
 * stderr, renewals included. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include "proto/opcua/ua_internal.h"
#include "util/time.h"

#define RECV_BUF      65536u
#define MAX_MSG       (16u * 1024u * 1024u)
#define MAX_CONNS     16
#define MAX_SUBS      16
#define MAX_PUB_QUEUE 16
#define NOTIF_BYTES   30 /* clientHandle + DataValue (Double, both timestamps) */

enum {
    ST_GOOD = 0,
    ST_BAD_UNEXPECTED = 0x80010000u,
    ST_BAD_DECODING = 0x80070000u,
    ST_BAD_SERVICE_UNSUPPORTED = 0x800B0000u,
    ST_BAD_NOTHING_TO_DO = 0x800F0000u,
    ST_BAD_TOO_MANY_OPS = 0x80100000u,
    ST_BAD_IDENTITY_TOKEN_INVALID = 0x80200000u,
    ST_BAD_SESSION_ID_INVALID = 0x80250000u,
    ST_BAD_SESSION_NOT_ACTIVATED = 0x80270000u,
    ST_BAD_SUBSCRIPTION_ID_INVALID = 0x80280000u,
    ST_BAD_NODE_ID_UNKNOWN = 0x80340000u,
    ST_BAD_ATTRIBUTE_ID_INVALID = 0x80350000u,
    ST_BAD_CONTINUATION_POINT_INVALID = 0x804A0000u,
    ST_BAD_MONITORED_ITEM_ID_INVALID = 0x80420000u,
    ST_BAD_TOO_MANY_PUBLISH = 0x80780000u,
    ST_BAD_NO_SUBSCRIPTION = 0x80790000u,
    ST_BAD_SEQ_UNKNOWN = 0x807A0000u,
    ST_BAD_MESSAGE_NOT_AVAILABLE = 0x807B0000u,
    ST_BAD_SESSION_CLOSED = 0x80260000u,
    ST_BAD_TCP_MESSAGE_TOO_LARGE = 0x80800000u,
    ST_BAD_TCP_INTERNAL = 0x80820000u,
};

/* ------------------------------------------------------------------ address space */

/* Nodes: Root (i=84), Objects (i=85), Server (i=2253), ServerStatus/State (i=2259), NamespaceArray
 * (i=2255), Many (ns=1;s=Many), Vi (ns=1;s=Vi). */
typedef enum { N_NONE, N_ROOT, N_OBJECTS, N_SERVER, N_STATE, N_NSARRAY, N_MANY, N_VAR } node_kind;

typedef struct node_ref {
    node_kind kind;
    uint32_t index; /* N_VAR: i */
} node_ref;

static uint32_t g_n;         /* number of variables */
static int64_t g_period;     /* ms between value changes */
static int64_t g_t0;         /* start (monotonic ms) */
static int64_t g_t0_wall;    /* start (UA DateTime) */
static uint32_t g_cap_notif; /* MAX_PER_PUBLISH (0 = none) */
static uint32_t g_life_ms;   /* TBGW_PEER_CHANNEL_LIFETIME_MS: revised channel lifetime (0 = as asked) */
static volatile sig_atomic_t g_stop;
static struct {
    uint64_t notifications, publish_responses, keepalives, requests, renewals, bytes_out, bytes_in;
} g_stat;

static int64_t cur_tick(void) {
    return (tbgw_mono_ms() - g_t0) / g_period;
}

static node_ref node_lookup(const tbgw_ua_nodeid *id) {
    node_ref r = {N_NONE, 0};
    if (id->ns == 0 && id->type == TBGW_UA_ID_NUMERIC) {
        switch (id->num) {
        case TBGW_UA_NS0_ROOT:
            r.kind = N_ROOT;
            break;
        case TBGW_UA_NS0_OBJECTS:
            r.kind = N_OBJECTS;
            break;
        case 2253:
            r.kind = N_SERVER;
            break;
        case TBGW_UA_NS0_SERVER_STATE:
            r.kind = N_STATE;
            break;
        case TBGW_UA_NS0_NAMESPACE_ARRAY:
            r.kind = N_NSARRAY;
            break;
        default:
            break;
        }
        return r;
    }
    if (id->ns != 1 || id->type != TBGW_UA_ID_STRING || id->str.len <= 0) return r;
    const char *s = (const char *)id->str.data;
    size_t len = (size_t)id->str.len;
    if (len == 4 && memcmp(s, "Many", 4) == 0) {
        r.kind = N_MANY;
        return r;
    }
    if (len < 2 || len > 11 || s[0] != 'V') return r;
    uint64_t v = 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || (i == 1 && s[i] == '0' && len > 2)) return r;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < g_n) {
        r.kind = N_VAR;
        r.index = (uint32_t)v;
    }
    return r;
}

/* The children (forward hierarchical references) of a node, by index. */
static uint32_t child_count(node_ref n) {
    switch (n.kind) {
    case N_ROOT:
        return 1;
    case N_OBJECTS:
        return 2;
    case N_SERVER:
        return 2;
    case N_MANY:
        return g_n;
    default:
        return 0;
    }
}

static void enc_ns1_str(tbgw_buf *b, const char *prefix, uint32_t i, int with_index) {
    char s[24];
    int n = with_index ? snprintf(s, sizeof s, "%s%u", prefix, i) : snprintf(s, sizeof s, "%s", prefix);
    tbgw_ua_nodeid id = {1, TBGW_UA_ID_STRING, 0, {n, (uint8_t *)s}, {0}};
    tbgw_ua_enc_nodeid(b, &id);
}

static void enc_qname(tbgw_buf *b, uint16_t ns, const char *name) {
    tbgw_ua_enc_u16(b, ns);
    tbgw_ua_enc_cstr(b, name);
}

static void enc_ltext(tbgw_buf *b, const char *text) {
    tbgw_ua_enc_u8(b, 2); /* text only */
    tbgw_ua_enc_cstr(b, text);
}

/* ReferenceDescription of child k of node n. */
static void enc_child(tbgw_buf *b, node_ref n, uint32_t k) {
    char name[24];
    uint32_t ref_type = TBGW_UA_NS0_HAS_COMPONENT, node_class = 1, type_def = 61; /* FolderType */
    tbgw_ua_nodeid target = tbgw_ua_nodeid_num(0, 0);
    uint16_t ns = 0;
    int ns1 = 0;
    if (n.kind == N_ROOT) {
        ref_type = 35; /* Organizes */
        target.num = TBGW_UA_NS0_OBJECTS;
        snprintf(name, sizeof name, "Objects");
    } else if (n.kind == N_OBJECTS && k == 0) {
        ref_type = 35;
        target.num = 2253;
        type_def = 2004; /* ServerType */
        snprintf(name, sizeof name, "Server");
    } else if (n.kind == N_OBJECTS) {
        ref_type = 35;
        ns1 = 1;
        ns = 1;
        type_def = 58; /* BaseObjectType */
        snprintf(name, sizeof name, "Many");
    } else if (n.kind == N_SERVER && k == 0) {
        ref_type = 46; /* HasProperty */
        target.num = TBGW_UA_NS0_NAMESPACE_ARRAY;
        node_class = 2;
        type_def = 68; /* PropertyType */
        snprintf(name, sizeof name, "NamespaceArray");
    } else if (n.kind == N_SERVER) {
        target.num = TBGW_UA_NS0_SERVER_STATE;
        node_class = 2;
        type_def = 63; /* BaseDataVariableType */
        snprintf(name, sizeof name, "State");
    } else { /* N_MANY */
        ns1 = 2;
        ns = 1;
        node_class = 2;
        type_def = 63;
        snprintf(name, sizeof name, "V%u", k);
    }
    tbgw_ua_nodeid rt = tbgw_ua_nodeid_num(0, ref_type);
    tbgw_ua_enc_nodeid(b, &rt);
    tbgw_ua_enc_u8(b, 1); /* isForward */
    if (ns1 == 1)
        enc_ns1_str(b, "Many", 0, 0);
    else if (ns1 == 2)
        enc_ns1_str(b, "V", k, 1);
    else
        tbgw_ua_enc_nodeid(b, &target); /* ExpandedNodeId without flags = NodeId */
    enc_qname(b, ns, name);
    enc_ltext(b, name);
    tbgw_ua_enc_u32(b, node_class);
    tbgw_ua_nodeid td = tbgw_ua_nodeid_num(0, type_def);
    tbgw_ua_enc_nodeid(b, &td);
}

/* The Double DataValue of variable i at tick t (value, source and server timestamps). */
static void enc_var_value(tbgw_buf *b, uint32_t i, int64_t t, int64_t server_ts) {
    tbgw_ua_enc_u8(b, TBGW_UA_DV_VALUE | TBGW_UA_DV_SOURCE_TS | TBGW_UA_DV_SERVER_TS);
    tbgw_ua_enc_u8(b, TBGW_UA_DOUBLE);
    tbgw_ua_enc_double(b, (double)i + (double)t);
    tbgw_ua_enc_i64(b, g_t0_wall + t * g_period * 10000);
    tbgw_ua_enc_i64(b, server_ts);
}

static void enc_status_dv(tbgw_buf *b, uint32_t st) {
    tbgw_ua_enc_u8(b, TBGW_UA_DV_STATUS);
    tbgw_ua_enc_u32(b, st);
}

/* One attribute as a DataValue (Read). */
static void enc_attribute(tbgw_buf *b, node_ref n, uint32_t attr, int64_t now_dt) {
    if (n.kind == N_NONE) return enc_status_dv(b, ST_BAD_NODE_ID_UNKNOWN);
    if (attr == TBGW_UA_ATTR_VALUE) {
        if (n.kind == N_VAR) return enc_var_value(b, n.index, cur_tick(), now_dt);
        if (n.kind == N_STATE) {
            tbgw_ua_enc_u8(b, TBGW_UA_DV_VALUE | TBGW_UA_DV_SERVER_TS);
            tbgw_ua_enc_u8(b, TBGW_UA_INT32);
            tbgw_ua_enc_i32(b, 0); /* Running */
            tbgw_ua_enc_i64(b, now_dt);
            return;
        }
        if (n.kind == N_NSARRAY) {
            tbgw_ua_enc_u8(b, TBGW_UA_DV_VALUE);
            tbgw_ua_enc_u8(b, TBGW_UA_STRING | 0x80);
            tbgw_ua_enc_i32(b, 2);
            tbgw_ua_enc_cstr(b, "http://opcfoundation.org/UA/");
            tbgw_ua_enc_cstr(b, "urn:tbgw:bench-peer");
            return;
        }
        return enc_status_dv(b, ST_BAD_ATTRIBUTE_ID_INVALID);
    }
    if (attr == TBGW_UA_ATTR_DATATYPE && (n.kind == N_VAR || n.kind == N_STATE)) {
        tbgw_ua_enc_u8(b, TBGW_UA_DV_VALUE);
        tbgw_ua_enc_u8(b, TBGW_UA_NODEID);
        tbgw_ua_nodeid t = tbgw_ua_nodeid_num(0, n.kind == N_VAR ? TBGW_UA_DOUBLE : 852);
        tbgw_ua_enc_nodeid(b, &t);
        return;
    }
    if (attr == TBGW_UA_ATTR_NODECLASS) {
        tbgw_ua_enc_u8(b, TBGW_UA_DV_VALUE);
        tbgw_ua_enc_u8(b, TBGW_UA_INT32);
        tbgw_ua_enc_i32(b, n.kind == N_VAR || n.kind == N_STATE || n.kind == N_NSARRAY ? 2 : 1);
        return;
    }
    if (attr == TBGW_UA_ATTR_BROWSENAME || attr == TBGW_UA_ATTR_DISPLAYNAME) {
        char name[24];
        uint16_t ns = n.kind == N_VAR || n.kind == N_MANY;
        const char *fixed[] = {"", "Root", "Objects", "Server", "State", "NamespaceArray", "Many"};
        if (n.kind == N_VAR)
            snprintf(name, sizeof name, "V%u", n.index);
        else
            snprintf(name, sizeof name, "%s", fixed[n.kind]);
        tbgw_ua_enc_u8(b, TBGW_UA_DV_VALUE);
        if (attr == TBGW_UA_ATTR_BROWSENAME) {
            tbgw_ua_enc_u8(b, TBGW_UA_QUALIFIEDNAME);
            enc_qname(b, ns, name);
        } else {
            tbgw_ua_enc_u8(b, TBGW_UA_LOCALIZEDTEXT);
            enc_ltext(b, name);
        }
        return;
    }
    enc_status_dv(b, ST_BAD_ATTRIBUTE_ID_INVALID);
}

/* ------------------------------------------------------------------ connections */

typedef struct mon_item {
    uint32_t id, handle, var; /* var: variable index */
    uint32_t queue;           /* revised queue size */
    int reporting;
    int64_t last; /* last tick reported; INT64_MIN = nothing yet */
} mon_item;

typedef struct subscription {
    uint32_t id;
    double interval;
    uint32_t keepalive, max_notif;
    uint32_t seq; /* next sequence number */
    int64_t next_ms;
    uint32_t idle_cycles; /* publishing cycles without a message */
    int late;             /* data or a keep-alive is due but no Publish request was queued */
    mon_item *items;
    size_t n_items, cap_items, live;
    size_t cursor;     /* where the next data-change walk starts */
    int64_t clean_at;  /* tick at which every item was reported (-1: not known) */
    uint32_t next_mid; /* next monitoredItemId */
} subscription;

typedef struct pub_req {
    uint32_t rid, handle;
    int32_t acks; /* subscription acknowledgements the request carried */
} pub_req;

typedef struct conn {
    int fd;
    tbgw_buf rx, tx;
    size_t tx_off;
    tbgw_ua_assembler as;
    int hello_done;
    uint32_t send_chunk, max_msg, max_chunks; /* the client's receive limits */
    uint32_t channel_id, token_id, seq;
    /* session (one per connection) */
    int session, activated;
    uint32_t session_num, auth_num;
    uint32_t max_resp; /* the client's maxResponseMessageSize (0 = none) */
    subscription subs[MAX_SUBS];
    size_t n_subs;
    pub_req pubs[MAX_PUB_QUEUE];
    size_t n_pubs;
    int closing;
} conn;

static conn *g_conns[MAX_CONNS];
static uint32_t g_next_channel = 1, g_next_sub = 1, g_next_session = 1;

static void conn_free(conn *c) {
    if (c->fd >= 0) close(c->fd);
    tbgw_buf_free(&c->rx);
    tbgw_buf_free(&c->tx);
    tbgw_ua_asm_free(&c->as);
    for (size_t i = 0; i < c->n_subs; i++) free(c->subs[i].items);
    free(c);
}

static void flush_tx(conn *c) {
    while (c->tx_off < c->tx.len) {
        ssize_t w = send(c->fd, c->tx.p + c->tx_off, c->tx.len - c->tx_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->tx_off += (size_t)w;
            g_stat.bytes_out += (uint64_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->closing = 1; /* the peer went away */
        return;
    }
    if (c->tx_off == c->tx.len) {
        tbgw_buf_reset(&c->tx);
        c->tx_off = 0;
    } else if (c->tx_off > (1u << 20)) {
        memmove(c->tx.p, c->tx.p + c->tx_off, c->tx.len - c->tx_off);
        c->tx.len -= c->tx_off;
        c->tx_off = 0;
    }
}

static void send_err(conn *c, uint32_t st, const char *reason) {
    tbgw_ua_err_encode(&c->tx, st, reason);
    c->closing = 1;
}

/* Sends a complete response body as MSG chunks. */
static void send_body(conn *c, uint32_t rid, const tbgw_buf *body) {
    if (body->oom) {
        send_err(c, ST_BAD_TCP_INTERNAL, "out of memory");
        return;
    }
    if (c->max_msg && body->len > c->max_msg) {
        send_err(c, ST_BAD_TCP_MESSAGE_TOO_LARGE, "response exceeds the client's message size");
        return;
    }
    if (tbgw_ua_chunk_split(&c->tx, "MSG", c->channel_id, c->token_id, &c->seq, rid, (const uint8_t *)body->p,
                            body->len, c->send_chunk, c->max_chunks))
        send_err(c, ST_BAD_TCP_MESSAGE_TOO_LARGE, "response needs too many chunks");
}

/* Type id + ResponseHeader. */
static void resp_begin(tbgw_buf *b, uint32_t type, uint32_t handle, uint32_t result) {
    tbgw_ua_nodeid t = tbgw_ua_nodeid_num(0, type);
    tbgw_ua_enc_nodeid(b, &t);
    tbgw_ua_enc_i64(b, tbgw_ua_datetime_now());
    tbgw_ua_enc_u32(b, handle);
    tbgw_ua_enc_u32(b, result);
    tbgw_ua_enc_u8(b, 0);   /* serviceDiagnostics */
    tbgw_ua_enc_i32(b, -1); /* stringTable */
    tbgw_ua_nodeid null_id = tbgw_ua_nodeid_num(0, 0);
    tbgw_ua_enc_nodeid(b, &null_id); /* additionalHeader */
    tbgw_ua_enc_u8(b, 0);
}

static void send_fault(conn *c, uint32_t rid, uint32_t handle, uint32_t st) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    resp_begin(&b, UA_ID_SERVICE_FAULT, handle, st);
    send_body(c, rid, &b);
    tbgw_buf_free(&b);
}

/* ------------------------------------------------------------------ session services */

static void enc_endpoint(tbgw_buf *b, const char *url) {
    tbgw_ua_enc_cstr(b, url);
    tbgw_ua_enc_cstr(b, "urn:tbgw:bench-peer"); /* server ApplicationDescription */
    tbgw_ua_enc_cstr(b, "urn:tbgw");
    enc_ltext(b, "tbgw bench OPC UA peer");
    tbgw_ua_enc_u32(b, 0); /* Server */
    tbgw_ua_enc_cstr(b, NULL);
    tbgw_ua_enc_cstr(b, NULL);
    tbgw_ua_enc_i32(b, 1);
    tbgw_ua_enc_cstr(b, url);
    tbgw_ua_enc_raw_bytes(b, NULL, -1); /* serverCertificate */
    tbgw_ua_enc_u32(b, 1);              /* MessageSecurityMode None */
    tbgw_ua_enc_cstr(b, TBGW_UA_POLICY_NONE);
    tbgw_ua_enc_i32(b, 1); /* userIdentityTokens: anonymous */
    tbgw_ua_enc_cstr(b, "anonymous");
    tbgw_ua_enc_u32(b, 0);
    tbgw_ua_enc_cstr(b, NULL);
    tbgw_ua_enc_cstr(b, NULL);
    tbgw_ua_enc_cstr(b, NULL);
    tbgw_ua_enc_cstr(b, "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary");
    tbgw_ua_enc_u8(b, 0);
}

static char g_url[64];

static void svc_get_endpoints(conn *c, uint32_t rid, uint32_t handle, tbgw_buf *b) {
    resp_begin(b, UA_ID_GET_ENDPOINTS_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, 1);
    enc_endpoint(b, g_url);
    send_body(c, rid, b);
}

static void svc_create_session(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    /* clientDescription, serverUri, endpointUrl, sessionName, clientNonce, clientCertificate,
     * requestedSessionTimeout, maxResponseMessageSize */
    tbgw_ua_bytes s;
    for (int i = 0; i < 2; i++)
        if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
    tbgw_ua_ltext lt;
    if (tbgw_ua_dec_ltext(d, &lt) == 0) tbgw_ua_ltext_clear(&lt);
    tbgw_ua_dec_u32(d);
    for (int i = 0; i < 2; i++)
        if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
    tbgw_ua_dec_skip_strings(d);
    for (int i = 0; i < 5; i++)
        if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
    double timeout = tbgw_ua_dec_double(d);
    uint32_t max_resp = tbgw_ua_dec_u32(d);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (c->session) return send_fault(c, rid, handle, ST_BAD_TOO_MANY_OPS); /* one session per channel */
    c->session = 1;
    c->activated = 0;
    c->session_num = g_next_session++;
    c->auth_num = 0x5e550000u + c->session_num;
    c->max_resp = max_resp;
    resp_begin(b, UA_ID_CREATE_SESSION_RESP, handle, ST_GOOD);
    tbgw_ua_nodeid sid = tbgw_ua_nodeid_num(1, 0x10000u + c->session_num);
    tbgw_ua_enc_nodeid(b, &sid);
    tbgw_ua_nodeid tok = tbgw_ua_nodeid_num(1, c->auth_num);
    tbgw_ua_enc_nodeid(b, &tok);
    tbgw_ua_enc_double(b, timeout > 0 && timeout < 3600000 ? timeout : 3600000);
    uint8_t nonce[32];
    if (tbgw_ua_random(nonce, sizeof nonce)) memset(nonce, 7, sizeof nonce);
    tbgw_ua_enc_raw_bytes(b, nonce, sizeof nonce);
    tbgw_ua_enc_raw_bytes(b, NULL, -1); /* serverCertificate */
    tbgw_ua_enc_i32(b, 1);
    enc_endpoint(b, g_url);
    tbgw_ua_enc_i32(b, 0);     /* serverSoftwareCertificates */
    tbgw_ua_enc_cstr(b, NULL); /* serverSignature */
    tbgw_ua_enc_raw_bytes(b, NULL, -1);
    tbgw_ua_enc_u32(b, MAX_MSG); /* maxRequestMessageSize */
    send_body(c, rid, b);
}

static void svc_activate_session(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    tbgw_ua_bytes s;
    for (int i = 0; i < 2; i++) /* clientSignature */
        if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
    int32_t n = tbgw_ua_dec_count(d, 8); /* clientSoftwareCertificates */
    for (int32_t i = 0; i < n && !d->err; i++)
        for (int k = 0; k < 2; k++)
            if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
    tbgw_ua_dec_skip_strings(d); /* localeIds */
    tbgw_ua_extobj eo;
    if (tbgw_ua_dec_extobj(d, &eo)) return send_fault(c, rid, handle, ST_BAD_DECODING);
    int anonymous = eo.type_id.ns == 0 && eo.type_id.type == TBGW_UA_ID_NUMERIC &&
                    eo.type_id.num == UA_ID_ANONYMOUS_TOKEN;
    tbgw_ua_extobj_clear(&eo);
    if (!anonymous) return send_fault(c, rid, handle, ST_BAD_IDENTITY_TOKEN_INVALID);
    c->activated = 1;
    resp_begin(b, UA_ID_ACTIVATE_SESSION_RESP, handle, ST_GOOD);
    uint8_t nonce[32];
    if (tbgw_ua_random(nonce, sizeof nonce)) memset(nonce, 7, sizeof nonce);
    tbgw_ua_enc_raw_bytes(b, nonce, sizeof nonce);
    tbgw_ua_enc_i32(b, 0); /* results */
    tbgw_ua_enc_i32(b, 0); /* diagnosticInfos */
    send_body(c, rid, b);
}

/* Answers the queued Publish requests with status st (session closing). */
static void fail_publishes(conn *c, uint32_t st) {
    for (size_t i = 0; i < c->n_pubs; i++) send_fault(c, c->pubs[i].rid, c->pubs[i].handle, st);
    c->n_pubs = 0;
}

static void close_session(conn *c) {
    fail_publishes(c, ST_BAD_SESSION_CLOSED);
    for (size_t i = 0; i < c->n_subs; i++) free(c->subs[i].items);
    c->n_subs = 0;
    c->session = c->activated = 0;
}

/* ------------------------------------------------------------------ view and attribute services */

/* Continuation point: "BP" + node kind + node index + offset. */
static void enc_cp(tbgw_buf *b, node_ref n, uint32_t off) {
    uint8_t cp[11] = {'B', 'P', (uint8_t)n.kind};
    for (int i = 0; i < 4; i++) cp[3 + i] = (uint8_t)(n.index >> (8 * i));
    for (int i = 0; i < 4; i++) cp[7 + i] = (uint8_t)(off >> (8 * i));
    tbgw_ua_enc_raw_bytes(b, cp, sizeof cp);
}

static int dec_cp(const tbgw_ua_bytes *s, node_ref *n, uint32_t *off) {
    if (s->len != 11 || s->data[0] != 'B' || s->data[1] != 'P') return -1;
    n->kind = (node_kind)s->data[2];
    n->index = 0;
    *off = 0;
    for (int i = 0; i < 4; i++) n->index |= (uint32_t)s->data[3 + i] << (8 * i);
    for (int i = 0; i < 4; i++) *off |= (uint32_t)s->data[7 + i] << (8 * i);
    return n->kind > N_NONE && n->kind <= N_VAR && *off <= child_count(*n) ? 0 : -1;
}

/* One BrowseResult: up to max references of n from off (0 = no limit). Forward hierarchical
 * references only: an inverse browse gets no references. */
static void enc_browse_result(tbgw_buf *b, node_ref n, uint32_t off, uint32_t max, int forward) {
    if (n.kind == N_NONE) {
        tbgw_ua_enc_u32(b, ST_BAD_NODE_ID_UNKNOWN);
        tbgw_ua_enc_raw_bytes(b, NULL, -1);
        tbgw_ua_enc_i32(b, 0);
        return;
    }
    uint32_t total = forward ? child_count(n) : 0;
    uint32_t k = total - off;
    if (max && k > max) k = max;
    tbgw_ua_enc_u32(b, ST_GOOD);
    if (off + k < total)
        enc_cp(b, n, off + k);
    else
        tbgw_ua_enc_raw_bytes(b, NULL, -1);
    tbgw_ua_enc_i32(b, (int32_t)k);
    for (uint32_t i = 0; i < k; i++) enc_child(b, n, off + i);
}

static void svc_browse(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    tbgw_ua_nodeid v;
    if (tbgw_ua_dec_nodeid(d, &v) == 0) tbgw_ua_nodeid_clear(&v); /* view */
    tbgw_ua_dec_i64(d);
    tbgw_ua_dec_u32(d);
    uint32_t max = tbgw_ua_dec_u32(d);
    int32_t n = tbgw_ua_dec_count(d, 14);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (n <= 0) return send_fault(c, rid, handle, ST_BAD_NOTHING_TO_DO);
    resp_begin(b, UA_ID_BROWSE_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        tbgw_ua_nodeid id, rt;
        if (tbgw_ua_dec_nodeid(d, &id)) break;
        uint32_t dir = tbgw_ua_dec_u32(d);
        if (tbgw_ua_dec_nodeid(d, &rt) == 0) tbgw_ua_nodeid_clear(&rt);
        tbgw_ua_dec_u8(d);
        tbgw_ua_dec_u32(d);
        tbgw_ua_dec_u32(d);
        node_ref r = node_lookup(&id);
        tbgw_ua_nodeid_clear(&id);
        if (d->err) break;
        enc_browse_result(b, r, 0, max, dir != 1);
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    tbgw_ua_enc_i32(b, 0); /* diagnosticInfos */
    send_body(c, rid, b);
}

static void svc_browse_next(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    int release = tbgw_ua_dec_u8(d) != 0;
    int32_t n = tbgw_ua_dec_count(d, 4);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (n <= 0) return send_fault(c, rid, handle, ST_BAD_NOTHING_TO_DO);
    resp_begin(b, UA_ID_BROWSE_NEXT_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        tbgw_ua_bytes cp;
        if (tbgw_ua_dec_bytes(d, &cp)) break;
        node_ref r;
        uint32_t off;
        int ok = dec_cp(&cp, &r, &off) == 0;
        tbgw_ua_bytes_clear(&cp);
        if (!ok) {
            tbgw_ua_enc_u32(b, ST_BAD_CONTINUATION_POINT_INVALID);
            tbgw_ua_enc_raw_bytes(b, NULL, -1);
            tbgw_ua_enc_i32(b, 0);
        } else if (release) {
            tbgw_ua_enc_u32(b, ST_GOOD);
            tbgw_ua_enc_raw_bytes(b, NULL, -1);
            tbgw_ua_enc_i32(b, 0);
        } else {
            enc_browse_result(b, r, off, 1000, 1); /* the first Browse asked for at most 1000 */
        }
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    tbgw_ua_enc_i32(b, 0);
    send_body(c, rid, b);
}

/* ReadValueId: nodeId, attributeId, indexRange, dataEncoding. */
static int dec_read_value_id(tbgw_ua_dec *d, node_ref *r, uint32_t *attr) {
    tbgw_ua_nodeid id;
    if (tbgw_ua_dec_nodeid(d, &id)) return d->err;
    *r = node_lookup(&id);
    tbgw_ua_nodeid_clear(&id);
    *attr = tbgw_ua_dec_u32(d);
    tbgw_ua_bytes s;
    if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
    tbgw_ua_qname q;
    if (tbgw_ua_dec_qname(d, &q) == 0) tbgw_ua_qname_clear(&q);
    return d->err;
}

static void svc_read(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    tbgw_ua_dec_double(d); /* maxAge */
    tbgw_ua_dec_u32(d);    /* timestampsToReturn: the values always carry both */
    int32_t n = tbgw_ua_dec_count(d, 13);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (n <= 0) return send_fault(c, rid, handle, ST_BAD_NOTHING_TO_DO);
    int64_t now = tbgw_ua_datetime_now();
    resp_begin(b, UA_ID_READ_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        node_ref r;
        uint32_t attr;
        if (dec_read_value_id(d, &r, &attr)) break;
        enc_attribute(b, r, attr, now);
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    tbgw_ua_enc_i32(b, 0);
    send_body(c, rid, b);
}

/* ------------------------------------------------------------------ subscriptions */

static subscription *find_sub(conn *c, uint32_t id) {
    for (size_t i = 0; i < c->n_subs; i++)
        if (c->subs[i].id == id) return &c->subs[i];
    return NULL;
}

static void svc_create_sub(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    double interval = tbgw_ua_dec_double(d);
    uint32_t lifetime = tbgw_ua_dec_u32(d);
    uint32_t keepalive = tbgw_ua_dec_u32(d);
    uint32_t max_notif = tbgw_ua_dec_u32(d);
    tbgw_ua_dec_u8(d); /* publishingEnabled: always on */
    tbgw_ua_dec_u8(d);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (c->n_subs == MAX_SUBS) return send_fault(c, rid, handle, ST_BAD_TOO_MANY_OPS);
    if (!(interval >= 10)) interval = 10;
    if (interval > 3600000) interval = 3600000;
    if (keepalive == 0) keepalive = 10;
    if (lifetime < 3 * keepalive) lifetime = 3 * keepalive;
    subscription *s = &c->subs[c->n_subs++];
    memset(s, 0, sizeof *s);
    s->id = g_next_sub++;
    s->interval = interval;
    s->keepalive = keepalive;
    s->max_notif = max_notif;
    s->seq = 1;
    s->next_ms = tbgw_mono_ms() + (int64_t)interval;
    s->clean_at = -1;
    s->next_mid = 1;
    resp_begin(b, UA_ID_CREATE_SUB_RESP, handle, ST_GOOD);
    tbgw_ua_enc_u32(b, s->id);
    tbgw_ua_enc_double(b, interval);
    tbgw_ua_enc_u32(b, lifetime);
    tbgw_ua_enc_u32(b, keepalive);
    send_body(c, rid, b);
}

static void svc_create_items(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    uint32_t sub_id = tbgw_ua_dec_u32(d);
    tbgw_ua_dec_u32(d); /* timestampsToReturn */
    int32_t n = tbgw_ua_dec_count(d, 13 + 4 + 4 + 8 + 3 + 4 + 1);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    subscription *s = find_sub(c, sub_id);
    if (!s) return send_fault(c, rid, handle, ST_BAD_SUBSCRIPTION_ID_INVALID);
    if (n <= 0) return send_fault(c, rid, handle, ST_BAD_NOTHING_TO_DO);
    if (s->n_items + (size_t)n > s->cap_items) {
        size_t nc = s->cap_items ? s->cap_items : 64;
        while (nc < s->n_items + (size_t)n) nc *= 2;
        mon_item *ni = realloc(s->items, nc * sizeof *ni);
        if (!ni) return send_fault(c, rid, handle, ST_BAD_UNEXPECTED);
        s->items = ni;
        s->cap_items = nc;
    }
    resp_begin(b, UA_ID_CREATE_MI_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        node_ref r;
        uint32_t attr;
        if (dec_read_value_id(d, &r, &attr)) break;
        uint32_t mode = tbgw_ua_dec_u32(d);
        uint32_t ch = tbgw_ua_dec_u32(d);
        tbgw_ua_dec_double(d); /* samplingInterval: the values change every PERIOD_MS */
        tbgw_ua_extobj eo;
        if (tbgw_ua_dec_extobj(d, &eo)) break;
        int filtered = eo.enc != TBGW_UA_EO_NONE || eo.type_id.num != 0;
        tbgw_ua_extobj_clear(&eo);
        uint32_t q = tbgw_ua_dec_u32(d);
        tbgw_ua_dec_u8(d); /* discardOldest: the oldest values are dropped */
        if (d->err) break;
        uint32_t st = r.kind == N_NONE                ? ST_BAD_NODE_ID_UNKNOWN
                      : r.kind != N_VAR || attr != 13 ? ST_BAD_ATTRIBUTE_ID_INVALID
                      : filtered                      ? 0x80440000u /* BadMonitoredItemFilterUnsupported */
                                                      : ST_GOOD;
        if (q == 0) q = 1;
        if (q > 100) q = 100;
        uint32_t mid = 0;
        if (st == ST_GOOD) {
            mon_item *it = &s->items[s->n_items++];
            it->id = mid = s->next_mid++;
            it->handle = ch;
            it->var = r.index;
            it->queue = q;
            it->reporting = mode == 2;
            it->last = INT64_MIN;
            s->live++;
            s->clean_at = -1;
        }
        tbgw_ua_enc_u32(b, st);
        tbgw_ua_enc_u32(b, mid);
        tbgw_ua_enc_double(b, (double)g_period);
        tbgw_ua_enc_u32(b, q);
        tbgw_ua_nodeid null_id = tbgw_ua_nodeid_num(0, 0);
        tbgw_ua_enc_nodeid(b, &null_id);
        tbgw_ua_enc_u8(b, 0);
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    tbgw_ua_enc_i32(b, 0);
    send_body(c, rid, b);
}

static int cmp_item(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = ((const mon_item *)b)->id;
    return x < y ? -1 : x > y;
}

static void svc_delete_items(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    uint32_t sub_id = tbgw_ua_dec_u32(d);
    int32_t n = tbgw_ua_dec_count(d, 4);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    subscription *s = find_sub(c, sub_id);
    if (!s) return send_fault(c, rid, handle, ST_BAD_SUBSCRIPTION_ID_INVALID);
    if (n <= 0) return send_fault(c, rid, handle, ST_BAD_NOTHING_TO_DO);
    resp_begin(b, UA_ID_DELETE_MI_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        uint32_t id = tbgw_ua_dec_u32(d);
        if (d->err) break;
        /* items are kept sorted by id (ids grow); deleted ones keep their place with id 0 */
        mon_item *it = bsearch(&id, s->items, s->n_items, sizeof *it, cmp_item);
        uint32_t st = ST_BAD_MONITORED_ITEM_ID_INVALID;
        if (it && it->reporting >= 0) {
            it->reporting = -1; /* deleted */
            s->live--;
            st = ST_GOOD;
        }
        tbgw_ua_enc_u32(b, st);
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    tbgw_ua_enc_i32(b, 0);
    send_body(c, rid, b);
}

static void svc_delete_subs(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d, tbgw_buf *b) {
    int32_t n = tbgw_ua_dec_count(d, 4);
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (n <= 0) return send_fault(c, rid, handle, ST_BAD_NOTHING_TO_DO);
    resp_begin(b, UA_ID_DELETE_SUB_RESP, handle, ST_GOOD);
    tbgw_ua_enc_i32(b, n);
    for (int32_t i = 0; i < n; i++) {
        uint32_t id = tbgw_ua_dec_u32(d);
        if (d->err) break;
        subscription *s = find_sub(c, id);
        if (s) {
            free(s->items);
            *s = c->subs[--c->n_subs];
        }
        tbgw_ua_enc_u32(b, s ? ST_GOOD : ST_BAD_SUBSCRIPTION_ID_INVALID);
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    tbgw_ua_enc_i32(b, 0);
    send_body(c, rid, b);
    if (c->n_subs == 0) fail_publishes(c, ST_BAD_NO_SUBSCRIPTION);
}

/* Encodes the data changes of s that are due (at most cap notifications) into b, after the
 * DataChangeNotification's ExtensionObject header. Returns the number encoded; *more is set when
 * items were left for the next response. */
static size_t enc_changes(subscription *s, tbgw_buf *b, size_t cap, int64_t tick, int *more) {
    size_t count = 0, visited = 0;
    int64_t now_dt = tbgw_ua_datetime_now();
    *more = 0;
    if (s->n_items == 0) return 0;
    if (s->cursor >= s->n_items) s->cursor = 0;
    for (; visited < s->n_items; visited++) {
        mon_item *it = &s->items[s->cursor];
        if (it->reporting == 1 && it->last != tick) {
            int64_t from = it->last == INT64_MIN ? tick : it->last + 1;
            if (from < tick - (int64_t)it->queue + 1) from = tick - (int64_t)it->queue + 1;
            size_t k = (size_t)(tick - from + 1);
            if (count + k > cap) {
                if (count > 0) {
                    *more = 1;
                    break;
                }
                from = tick - (int64_t)cap + 1; /* only the newest fit */
                k = cap;
            }
            for (int64_t t = from; t <= tick; t++) {
                tbgw_ua_enc_u32(b, it->handle);
                enc_var_value(b, it->var, t, now_dt);
            }
            it->last = tick;
            count += k;
        }
        if (++s->cursor == s->n_items) s->cursor = 0;
    }
    s->clean_at = *more ? -1 : tick;
    return count;
}

/* Answers the oldest queued Publish request for s: data changes when some are due, else a keep-alive
 * when keepalive is set. Returns 1 when a response was sent. */
static int publish_one(conn *c, subscription *s, int keepalive) {
    if (c->n_pubs == 0) return 0;
    int64_t tick = cur_tick();
    int has_data = s->live > 0 && s->clean_at != tick;
    if (!has_data && !keepalive) return 0;
    pub_req pr = c->pubs[0];
    tbgw_buf b;
    tbgw_buf_init(&b);
    resp_begin(&b, UA_ID_PUBLISH_RESP, pr.handle, ST_GOOD);
    tbgw_ua_enc_u32(&b, s->id);
    tbgw_ua_enc_i32(&b, 0); /* availableSequenceNumbers: no retransmission queue */
    size_t more_at = b.len;
    tbgw_ua_enc_u8(&b, 0); /* moreNotifications (patched) */
    size_t seq_at = b.len;
    tbgw_ua_enc_u32(&b, s->seq);
    tbgw_ua_enc_i64(&b, tbgw_ua_datetime_now());
    size_t count = 0;
    int more = 0;
    if (has_data) {
        tbgw_ua_enc_i32(&b, 1);
        tbgw_ua_nodeid t = tbgw_ua_nodeid_num(0, UA_ID_DATA_CHANGE);
        tbgw_ua_enc_nodeid(&b, &t);
        tbgw_ua_enc_u8(&b, 1);
        size_t len_at = b.len;
        tbgw_ua_enc_i32(&b, 0); /* body length (patched) */
        size_t count_at = b.len;
        tbgw_ua_enc_i32(&b, 0); /* monitoredItems count (patched) */
        uint32_t limit = c->max_msg;
        if (c->max_resp && (limit == 0 || c->max_resp < limit)) limit = c->max_resp;
        if (limit == 0 || limit > MAX_MSG) limit = MAX_MSG;
        size_t cap = (limit - 512) / NOTIF_BYTES;
        if (s->max_notif && s->max_notif < cap) cap = s->max_notif;
        if (g_cap_notif && g_cap_notif < cap) cap = g_cap_notif;
        count = enc_changes(s, &b, cap, tick, &more);
        tbgw_ua_enc_i32(&b, 0); /* diagnosticInfos */
        if (count == 0) {       /* nothing was due after all: a keep-alive instead */
            b.len = seq_at + 4 + 8;
            if (!keepalive) {
                tbgw_buf_free(&b);
                return 0;
            }
            tbgw_ua_enc_i32(&b, 0);
        } else if (!b.oom) {
            uint8_t *p = (uint8_t *)b.p;
            uint32_t body = (uint32_t)(b.len - len_at - 4);
            for (int i = 0; i < 4; i++) p[len_at + (size_t)i] = (uint8_t)(body >> (8 * i));
            for (int i = 0; i < 4; i++) p[count_at + (size_t)i] = (uint8_t)((uint32_t)count >> (8 * i));
            p[more_at] = (uint8_t)more;
        }
    } else {
        tbgw_ua_enc_i32(&b, 0);
    }
    /* results of the acknowledgements this request carried: no retransmission queue is kept, so
     * nothing acknowledged is known (Part 4 5.13.5) */
    tbgw_ua_enc_i32(&b, pr.acks);
    for (int32_t i = 0; i < pr.acks; i++) tbgw_ua_enc_u32(&b, ST_BAD_SEQ_UNKNOWN);
    tbgw_ua_enc_i32(&b, 0);
    memmove(c->pubs, c->pubs + 1, (c->n_pubs - 1) * sizeof *c->pubs);
    c->n_pubs--;
    send_body(c, pr.rid, &b);
    tbgw_buf_free(&b);
    if (count > 0) {
        s->seq++;
        g_stat.notifications += count;
    } else {
        g_stat.keepalives++;
    }
    g_stat.publish_responses++;
    s->idle_cycles = 0;
    s->late = more;
    return 1;
}

/* A publishing cycle of s is over (or a Publish request arrived while s was late): data changes or
 * a due keep-alive are sent, as many responses as queued Publish requests allow when the changes do
 * not fit one. */
static void publish_cycle(conn *c, subscription *s) {
    int64_t tick = cur_tick();
    int has_data = s->live > 0 && s->clean_at != tick;
    if (!has_data && !s->late && s->idle_cycles + 1 < s->keepalive) {
        s->idle_cycles++;
        return;
    }
    if (!publish_one(c, s, 1)) {
        s->late = 1;
        return;
    }
    while (s->late && c->n_pubs > 0 && publish_one(c, s, 0)) {
    }
}

static void svc_publish(conn *c, uint32_t rid, uint32_t handle, tbgw_ua_dec *d) {
    int32_t n = tbgw_ua_dec_count(d, 8);
    for (int32_t i = 0; i < n && !d->err; i++) {
        tbgw_ua_dec_u32(d);
        tbgw_ua_dec_u32(d);
    }
    if (d->err) return send_fault(c, rid, handle, ST_BAD_DECODING);
    if (c->n_subs == 0) return send_fault(c, rid, handle, ST_BAD_NO_SUBSCRIPTION);
    if (c->n_pubs == MAX_PUB_QUEUE) {
        send_fault(c, c->pubs[0].rid, c->pubs[0].handle, ST_BAD_TOO_MANY_PUBLISH);
        memmove(c->pubs, c->pubs + 1, (c->n_pubs - 1) * sizeof *c->pubs);
        c->n_pubs--;
    }
    c->pubs[c->n_pubs].rid = rid;
    c->pubs[c->n_pubs].handle = handle;
    c->pubs[c->n_pubs++].acks = n > 0 ? n : 0;
    for (size_t i = 0; i < c->n_subs && c->n_pubs > 0; i++)
        if (c->subs[i].late) publish_cycle(c, &c->subs[i]);
}

/* ------------------------------------------------------------------ dispatch */

static void handle_opn(conn *c, uint32_t rid, const uint8_t *msg, size_t len) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, msg, len);
    tbgw_ua_nodeid t, tok;
    if (tbgw_ua_dec_nodeid(&d, &t)) return send_err(c, ST_BAD_DECODING, "malformed OpenSecureChannel");
    uint32_t type = t.ns == 0 && t.type == TBGW_UA_ID_NUMERIC ? t.num : 0;
    tbgw_ua_nodeid_clear(&t);
    if (tbgw_ua_dec_nodeid(&d, &tok) == 0) tbgw_ua_nodeid_clear(&tok);
    tbgw_ua_dec_i64(&d);
    uint32_t handle = tbgw_ua_dec_u32(&d);
    tbgw_ua_dec_u32(&d);
    tbgw_ua_bytes s;
    if (tbgw_ua_dec_bytes(&d, &s) == 0) tbgw_ua_bytes_clear(&s);
    tbgw_ua_dec_u32(&d);
    tbgw_ua_extobj eo;
    if (tbgw_ua_dec_extobj(&d, &eo) == 0) tbgw_ua_extobj_clear(&eo);
    tbgw_ua_dec_u32(&d); /* clientProtocolVersion */
    uint32_t req_type = tbgw_ua_dec_u32(&d);
    uint32_t mode = tbgw_ua_dec_u32(&d);
    if (tbgw_ua_dec_bytes(&d, &s) == 0) tbgw_ua_bytes_clear(&s);
    uint32_t life = tbgw_ua_dec_u32(&d);
    if (d.err || type != UA_ID_OPN_REQ) return send_err(c, ST_BAD_DECODING, "malformed OpenSecureChannel");
    if (mode != 1)
        return send_err(c, 0x80550000u,
                        "only SecurityPolicy None / mode None"); /* BadSecurityPolicyRejected */
    if (req_type == 0) {
        if (c->channel_id) return send_err(c, ST_BAD_UNEXPECTED, "secure channel already open");
        c->channel_id = g_next_channel++;
        c->token_id = 1;
    } else {
        if (!c->channel_id) return send_err(c, ST_BAD_UNEXPECTED, "renew without a channel");
        c->token_id++;
        g_stat.renewals++;
    }
    if (life < 10000) life = 10000;
    if (life > 3600000) life = 3600000;
    if (g_life_ms) life = g_life_ms;
    tbgw_buf b;
    tbgw_buf_init(&b);
    resp_begin(&b, UA_ID_OPN_RESP, handle, ST_GOOD);
    tbgw_ua_enc_u32(&b, 0);
    tbgw_ua_enc_u32(&b, c->channel_id);
    tbgw_ua_enc_u32(&b, c->token_id);
    tbgw_ua_enc_i64(&b, tbgw_ua_datetime_now());
    tbgw_ua_enc_u32(&b, life);
    tbgw_ua_enc_raw_bytes(&b, NULL, 0); /* serverNonce */
    if (b.oom || tbgw_ua_chunk_opn(&c->tx, c->channel_id, TBGW_UA_POLICY_NONE, &c->seq, rid,
                                   (const uint8_t *)b.p, b.len))
        send_err(c, ST_BAD_TCP_INTERNAL, "out of memory");
    tbgw_buf_free(&b);
}

static void handle_msg(conn *c, uint32_t rid, const uint8_t *msg, size_t len) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, msg, len);
    tbgw_ua_nodeid t, tok;
    if (tbgw_ua_dec_nodeid(&d, &t)) return send_err(c, ST_BAD_DECODING, "malformed request");
    uint32_t type = t.ns == 0 && t.type == TBGW_UA_ID_NUMERIC ? t.num : 0;
    tbgw_ua_nodeid_clear(&t);
    if (tbgw_ua_dec_nodeid(&d, &tok)) return send_err(c, ST_BAD_DECODING, "malformed request header");
    int auth_ok = c->session && tok.ns == 1 && tok.type == TBGW_UA_ID_NUMERIC && tok.num == c->auth_num;
    tbgw_ua_nodeid_clear(&tok);
    tbgw_ua_dec_i64(&d);
    uint32_t handle = tbgw_ua_dec_u32(&d);
    tbgw_ua_dec_u32(&d);
    tbgw_ua_bytes s;
    if (tbgw_ua_dec_bytes(&d, &s) == 0) tbgw_ua_bytes_clear(&s);
    tbgw_ua_dec_u32(&d);
    tbgw_ua_extobj eo;
    if (tbgw_ua_dec_extobj(&d, &eo) == 0) tbgw_ua_extobj_clear(&eo);
    if (d.err) return send_err(c, ST_BAD_DECODING, "malformed request header");
    g_stat.requests++;
    tbgw_buf b;
    tbgw_buf_init(&b);
    switch (type) {
    case UA_ID_GET_ENDPOINTS_REQ:
        svc_get_endpoints(c, rid, handle, &b);
        break;
    case UA_ID_CREATE_SESSION_REQ:
        svc_create_session(c, rid, handle, &d, &b);
        break;
    case UA_ID_ACTIVATE_SESSION_REQ:
        if (!auth_ok)
            send_fault(c, rid, handle, ST_BAD_SESSION_ID_INVALID);
        else
            svc_activate_session(c, rid, handle, &d, &b);
        break;
    case UA_ID_CLOSE_SESSION_REQ:
        if (!auth_ok) {
            send_fault(c, rid, handle, ST_BAD_SESSION_ID_INVALID);
            break;
        }
        close_session(c);
        resp_begin(&b, UA_ID_CLOSE_SESSION_RESP, handle, ST_GOOD);
        send_body(c, rid, &b);
        break;
    default:
        if (!auth_ok) {
            send_fault(c, rid, handle, ST_BAD_SESSION_ID_INVALID);
            break;
        }
        if (!c->activated) {
            send_fault(c, rid, handle, ST_BAD_SESSION_NOT_ACTIVATED);
            break;
        }
        switch (type) {
        case UA_ID_BROWSE_REQ:
            svc_browse(c, rid, handle, &d, &b);
            break;
        case UA_ID_BROWSE_NEXT_REQ:
            svc_browse_next(c, rid, handle, &d, &b);
            break;
        case UA_ID_READ_REQ:
            svc_read(c, rid, handle, &d, &b);
            break;
        case UA_ID_CREATE_SUB_REQ:
            svc_create_sub(c, rid, handle, &d, &b);
            break;
        case UA_ID_CREATE_MI_REQ:
            svc_create_items(c, rid, handle, &d, &b);
            break;
        case UA_ID_DELETE_MI_REQ:
            svc_delete_items(c, rid, handle, &d, &b);
            break;
        case UA_ID_DELETE_SUB_REQ:
            svc_delete_subs(c, rid, handle, &d, &b);
            break;
        case UA_ID_PUBLISH_REQ:
            svc_publish(c, rid, handle, &d);
            break;
        case UA_ID_REPUBLISH_REQ:
            send_fault(c, rid, handle, ST_BAD_MESSAGE_NOT_AVAILABLE);
            break;
        default:
            send_fault(c, rid, handle, ST_BAD_SERVICE_UNSUPPORTED);
            break;
        }
    }
    tbgw_buf_free(&b);
}

static void handle_hello(conn *c, const uint8_t *body, size_t n) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, body, n);
    tbgw_ua_dec_u32(&d); /* protocolVersion */
    uint32_t recv_buf = tbgw_ua_dec_u32(&d);
    tbgw_ua_dec_u32(&d); /* the client's send buffer: we receive chunks of at most RECV_BUF */
    uint32_t max_msg = tbgw_ua_dec_u32(&d);
    uint32_t max_chunks = tbgw_ua_dec_u32(&d);
    tbgw_ua_bytes url;
    if (tbgw_ua_dec_bytes(&d, &url) == 0) tbgw_ua_bytes_clear(&url);
    if (d.err || recv_buf < TBGW_UA_MIN_BUFFER) return send_err(c, ST_BAD_DECODING, "malformed HEL");
    c->send_chunk = recv_buf < RECV_BUF ? recv_buf : RECV_BUF;
    c->max_msg = max_msg;
    c->max_chunks = max_chunks;
    c->hello_done = 1;
    tbgw_buf_append(&c->tx, "ACKF", 4);
    tbgw_ua_enc_u32(&c->tx, 28);
    tbgw_ua_enc_u32(&c->tx, 0);
    tbgw_ua_enc_u32(&c->tx, RECV_BUF);      /* receiveBufferSize */
    tbgw_ua_enc_u32(&c->tx, c->send_chunk); /* sendBufferSize */
    tbgw_ua_enc_u32(&c->tx, MAX_MSG);
    tbgw_ua_enc_u32(&c->tx, 0);
}

/* Handles the complete frames in c->rx. */
static void process_rx(conn *c) {
    size_t off = 0;
    while (!c->closing) {
        const uint8_t *p = (const uint8_t *)c->rx.p + off;
        size_t avail = c->rx.len - off;
        int64_t fs = tbgw_ua_frame_size(p, avail, RECV_BUF);
        if (fs == TBGW_EAGAIN || (fs > 0 && (size_t)fs > avail)) break;
        if (fs < 0) {
            send_err(c, ST_BAD_DECODING, "malformed frame");
            break;
        }
        tbgw_ua_chunk ch;
        if (tbgw_ua_chunk_parse(p, (size_t)fs, &ch)) {
            send_err(c, ST_BAD_DECODING, "malformed chunk");
            break;
        }
        off += (size_t)fs;
        if (strcmp(ch.type, "HEL") == 0) {
            if (c->hello_done)
                send_err(c, ST_BAD_UNEXPECTED, "second HEL");
            else
                handle_hello(c, ch.body, ch.body_len);
            continue;
        }
        if (!c->hello_done) {
            send_err(c, ST_BAD_UNEXPECTED, "expected HEL");
            break;
        }
        if (strcmp(ch.type, "CLO") == 0) {
            close_session(c);
            c->closing = 1;
            break;
        }
        if (strcmp(ch.type, "OPN") != 0 && strcmp(ch.type, "MSG") != 0) {
            send_err(c, ST_BAD_UNEXPECTED, "unexpected message type");
            break;
        }
        if (strcmp(ch.type, "MSG") == 0 && (!c->channel_id || ch.channel_id != c->channel_id)) {
            send_err(c, 0x80220000u, "unknown secure channel"); /* BadSecureChannelIdInvalid */
            break;
        }
        const uint8_t *msg;
        size_t len;
        uint32_t rid;
        int rc = tbgw_ua_asm_feed(&c->as, &ch, &msg, &len, &rid);
        if (rc < 0) {
            send_err(c, ST_BAD_TCP_MESSAGE_TOO_LARGE, "message exceeds limits");
            break;
        }
        if (rc != 1) continue; /* more chunks needed, or an aborted request */
        if (strcmp(ch.type, "OPN") == 0)
            handle_opn(c, rid, msg, len);
        else
            handle_msg(c, rid, msg, len);
    }
    if (off) {
        memmove(c->rx.p, c->rx.p + off, c->rx.len - off);
        c->rx.len -= off;
    }
}

static void on_readable(conn *c) {
    for (;;) {
        if (tbgw_buf_reserve(&c->rx, RECV_BUF)) {
            c->closing = 1;
            return;
        }
        ssize_t r = recv(c->fd, c->rx.p + c->rx.len, c->rx.cap - c->rx.len - 1, 0);
        if (r > 0) {
            c->rx.len += (size_t)r;
            g_stat.bytes_in += (uint64_t)r;
            process_rx(c);
            if (c->closing) return;
            continue;
        }
        if (r == 0) {
            c->closing = 1;
            return;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) c->closing = 1;
        return;
    }
}

/* Runs the publishing cycles that are due; returns the ms until the next one (-1: none). */
static int run_timers(void) {
    int64_t now = tbgw_mono_ms(), next = -1;
    for (int i = 0; i < MAX_CONNS; i++) {
        conn *c = g_conns[i];
        if (!c || c->closing) continue;
        for (size_t k = 0; k < c->n_subs; k++) {
            subscription *s = &c->subs[k];
            if (now >= s->next_ms) {
                publish_cycle(c, s);
                s->next_ms += (int64_t)s->interval;
                if (s->next_ms <= now) s->next_ms = now + (int64_t)s->interval; /* we fell behind */
            }
            if (next < 0 || s->next_ms < next) next = s->next_ms;
        }
    }
    if (next < 0) return -1;
    return next > now ? (int)(next - now) : 0;
}

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT N PERIOD_MS [MAX_PER_PUBLISH]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[2]);
    long period = atol(argv[3]);
    const char *cap_env = getenv("TBGW_PEER_MAX_PER_PUBLISH");
    long cap = argc > 4 ? atol(argv[4]) : cap_env ? atol(cap_env) : 0;
    if (port < 0 || port > 65535 || n < 0 || n > 10000000 || period < 1 || period > 3600000 || cap < 0) {
        fprintf(stderr, "%s: bad arguments (PORT 0..65535, N 0..10000000, PERIOD_MS >= 1)\n", argv[0]);
        return 2;
    }
    g_n = (uint32_t)n;
    g_period = period;
    g_cap_notif = (uint32_t)cap;
    const char *life = getenv("TBGW_PEER_CHANNEL_LIFETIME_MS");
    if (life && atol(life) >= 1000 && atol(life) <= 3600000) g_life_ms = (uint32_t)atol(life);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 16) ||
        getsockname(lfd, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 1;
    }
    snprintf(g_url, sizeof g_url, "opc.tcp://127.0.0.1:%d/", ntohs(a.sin_port));
    g_t0 = tbgw_mono_ms();
    g_t0_wall = tbgw_ua_datetime_now();
    printf("READY %d\n", ntohs(a.sin_port));
    fflush(stdout);
    struct pollfd pfd[MAX_CONNS + 1];
    while (!g_stop) {
        int timeout = run_timers();
        int k = 0;
        pfd[k++] = (struct pollfd){lfd, POLLIN, 0};
        int idx[MAX_CONNS];
        for (int i = 0; i < MAX_CONNS; i++) {
            conn *c = g_conns[i];
            if (!c) continue;
            idx[k - 1] = i;
            pfd[k++] = (struct pollfd){c->fd, (short)(POLLIN | (c->tx_off < c->tx.len ? POLLOUT : 0)), 0};
        }
        int pr = poll(pfd, (nfds_t)k, timeout);
        if (pr < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
        if (pr < 0) continue;
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            int slot = -1;
            for (int i = 0; fd >= 0 && i < MAX_CONNS && slot < 0; i++)
                if (!g_conns[i]) slot = i;
            conn *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
            if (!c) {
                if (fd >= 0) close(fd);
            } else {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                c->seq = 1;
                tbgw_buf_init(&c->rx);
                tbgw_buf_init(&c->tx);
                tbgw_ua_asm_init(&c->as, MAX_MSG, 0);
                g_conns[slot] = c;
            }
        }
        for (int j = 1; j < k; j++) {
            conn *c = g_conns[idx[j - 1]];
            if (!c) continue;
            if (pfd[j].revents & (POLLIN | POLLHUP | POLLERR)) on_readable(c);
            flush_tx(c);
            if (c->closing) {
                flush_tx(c); /* a final ERR, best effort */
                conn_free(c);
                g_conns[idx[j - 1]] = NULL;
            }
        }
    }
    fprintf(stderr,
            "opcua_peer: requests=%llu channel_renewals=%llu publish_responses=%llu notifications=%llu "
            "keepalives=%llu bytes_in=%llu bytes_out=%llu\n",
            (unsigned long long)g_stat.requests, (unsigned long long)g_stat.renewals,
            (unsigned long long)g_stat.publish_responses, (unsigned long long)g_stat.notifications,
            (unsigned long long)g_stat.keepalives, (unsigned long long)g_stat.bytes_in,
            (unsigned long long)g_stat.bytes_out);
    for (int i = 0; i < MAX_CONNS; i++)
        if (g_conns[i]) conn_free(g_conns[i]);
    close(lfd);
    return 0;
}
