/* OCPP connector (docs/connectors/ocpp.md): an OCPP-J central system (1.6 and 2.0.1) on one
 * libwebsockets server in the connector thread. Charge points connect to ws[s]://host:port/<id>; the
 * first chargePoints[] entry whose idRegexpPattern matches the id takes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <tbgw/connector.h>
#include <tbgw/connkit.h>

#include "connectors/ocpp/ocpp_internal.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

#define MAX_FRAME       (64 * 1024)
#define RATE_PER_S      200 /* CALLs a charge point may send per second (burst: twice that) */
#define MAX_BAD_FRAMES  50  /* malformed frames in a row before the connection is closed */
#define CALL_TIMEOUT_MS 30000

typedef struct out_frame {
    char *text;
    struct out_frame *next;
} out_frame;

/* A CALL of ours waiting for its CALLRESULT. */
typedef struct pending {
    char uid[40];
    char action[64];
    uint64_t rpc_handle; /* 0: an attribute update (answer only logged) */
    int has_rpc;
    int64_t deadline;
    char *text; /* the frame, until it is sent */
    struct pending *next;
} pending;

typedef struct session {
    struct lws *wsi;
    struct oc *c;
    char id[256], peer[64];
    int version; /* 16 or 201 */
    const ocpp_cp_cfg *cp;
    char *device, *type; /* known after BootNotification */
    tbgw_buf rx;
    out_frame *out_head, *out_tail;
    pending *calls; /* our CALLs: the first is in flight, the others wait (one at a time, as OCPP-J asks) */
    int in_flight;
    int bad_frames;
    double tokens;
    int64_t tokens_at;
    int tx_counter;
    struct session *next;
} session;

typedef struct pss {
    session *s;
} pss;

typedef struct oc {
    const tbgw_host *h;
    json_t *cfg;
    const char *host, *cert, *key;
    int port, tls;
    const json_t *security;
    ocpp_cp_cfg *cps;
    size_t n_cps;
    struct lws_context *ctx;
    session *sessions;
    lws_sorted_usec_list_t tick; /* the earliest deadline of our CALLs in flight */
    unsigned call_seq;
    volatile int stop;
} oc;

/* ---- configuration ---- */

static void oc_destroy(void *self) {
    oc *c = self;
    for (size_t i = 0; i < c->n_cps; i++) ocpp_cp_free(&c->cps[i]);
    free(c->cps);
    json_decref(c->cfg);
    free(c);
}

static int cp_entry(tbgw_cfg *w, const json_t *e, const char *path, void *slot, void *ud, tbgw_err *err) {
    (void)ud;
    return ocpp_cp_parse(w, e, path, slot, err);
}

static void cp_drop(void *slot) {
    ocpp_cp_free(slot);
}

static int oc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    const json_t *cs = json_object_get(cfg, "centralSystem");
    if (!json_is_object(cs)) return tbgw_err_set(err, TBGW_EINVAL, "centralSystem: expected an object");
    int64_t port;
    if (tbgw_cfg_get_int(cs, "centralSystem", "port", 9000, 0, 65535, &port, err)) return TBGW_EINVAL;
    const json_t *cps = json_object_get(cfg, "chargePoints");
    if (!json_is_array(cps)) return tbgw_err_set(err, TBGW_EINVAL, "chargePoints: expected a list");
    oc *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->h = h;
    c->cfg = json_deep_copy(cfg);
    cs = json_object_get(c->cfg, "centralSystem");
    c->host = json_string_value(json_object_get(cs, "host"));
    c->port = (int)port;
    const json_t *conn = json_object_get(cs, "connection");
    const char *ct = json_string_value(json_object_get(conn, "type"));
    if (ct && strcmp(ct, "tls") == 0) {
        c->tls = 1;
        c->cert = json_string_value(json_object_get(conn, "cert"));
        c->key = json_string_value(json_object_get(conn, "key"));
        if (!c->cert || !c->key) {
            oc_destroy(c);
            return tbgw_err_set(err, TBGW_EINVAL, "centralSystem.connection: type tls needs cert and key");
        }
    } else if (ct && strcmp(ct, "insecure") != 0) {
        oc_destroy(c);
        return tbgw_err_set(err, TBGW_EINVAL, "centralSystem.connection.type: expected insecure or tls");
    }
    c->security = json_object_get(cs, "security");
    tbgw_cfg w; /* a charge point entry that cannot be used is reported and skipped */
    tbgw_cfg_init(&w, h, err);
    int rc = tbgw_cfg_list(&w, c->cfg, NULL, "chargePoints", sizeof *c->cps, (void **)&c->cps, &c->n_cps,
                           cp_entry, cp_drop, NULL);
    if (rc < 0) {
        oc_destroy(c);
        return rc;
    }
    *self = c;
    return 0;
}

static void oc_stop(void *self) {
    oc *c = self;
    c->stop = 1;
    if (c->ctx) lws_cancel_service(c->ctx);
}

/* ---- security ---- */

static int authorized(const oc *c, const char *auth) {
    if (!json_is_array(c->security) || json_array_size(c->security) == 0) return 1;
    size_t i, j;
    const json_t *s, *x;
    json_array_foreach(c->security, i, s) {
        const char *type = json_string_value(json_object_get(s, "type"));
        if (!type || !auth) continue;
        if (strcmp(type, "token") == 0) {
            json_array_foreach(json_object_get(s, "tokens"), j, x) {
                const char *t = json_string_value(x);
                if (t && strcmp(t, auth) == 0) return 1;
            }
        } else if (strcmp(type, "basic") == 0 && strncmp(auth, "Basic ", 6) == 0) {
            json_array_foreach(json_object_get(s, "credentials"), j, x) {
                const char *u = json_string_value(json_object_get(x, "username"));
                const char *p = json_string_value(json_object_get(x, "password"));
                if (!u || !p) continue;
                char plain[512], b64[800];
                snprintf(plain, sizeof plain, "%s:%s", u, p);
                lws_b64_encode_string(plain, (int)strlen(plain), b64, sizeof b64);
                if (strcmp(auth + 6, b64) == 0) return 1;
            }
        }
    }
    return 0;
}

/* The charge point id: the request path without its slashes at either end. */
static void cp_id(struct lws *wsi, char *out, size_t n) {
    char uri[512] = "";
    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    char *p = uri;
    while (*p == '/') p++;
    size_t l = strlen(p);
    while (l && p[l - 1] == '/') p[--l] = 0;
    snprintf(out, n, "%s", p);
}

static const ocpp_cp_cfg *match_cp(const oc *c, const char *id, const char *peer) {
    for (size_t i = 0; i < c->n_cps; i++)
        if (ocpp_cp_matches(&c->cps[i], id, peer, 0)) return &c->cps[i];
    return NULL;
}

/* ---- sending ---- */

static void queue_text(session *s, char *text) {
    if (!text) return;
    out_frame *f = calloc(1, sizeof *f);
    if (!f) {
        free(text);
        return;
    }
    f->text = text;
    if (s->out_tail)
        s->out_tail->next = f;
    else
        s->out_head = f;
    s->out_tail = f;
    lws_callback_on_writable(s->wsi);
}

static void reply_rpc(oc *c, pending *p, json_t *content) {
    if (p->has_rpc)
        c->h->rpc_reply(c->h, p->rpc_handle, content, -1);
    else
        json_decref(content);
}

static void on_tick(lws_sorted_usec_list_t *sul);

/* Schedules the timer at the earliest deadline of the CALLs in flight (none: it stays asleep). */
static void arm_tick(oc *c) {
    int64_t due = INT64_MAX;
    for (session *s = c->sessions; s; s = s->next)
        if (s->in_flight && s->calls && s->calls->deadline < due) due = s->calls->deadline;
    if (due == INT64_MAX) return;
    int64_t left = due - tbgw_mono_ms();
    lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, (left > 0 ? left : 0) * LWS_US_PER_MS);
}

/* Sends the next of our CALLs when none is in flight. */
static void next_call(session *s) {
    if (s->in_flight || !s->calls) return;
    pending *p = s->calls;
    s->in_flight = 1;
    p->deadline = tbgw_mono_ms() + CALL_TIMEOUT_MS;
    queue_text(s, p->text);
    p->text = NULL;
    arm_tick(s->c);
}

static void call(session *s, const char *action, const json_t *payload, int has_rpc, uint64_t handle) {
    pending *p = calloc(1, sizeof *p);
    if (!p) return;
    snprintf(p->uid, sizeof p->uid, "tbgw-%u", ++s->c->call_seq);
    snprintf(p->action, sizeof p->action, "%s", action);
    p->has_rpc = has_rpc;
    p->rpc_handle = handle;
    json_t *camel = ocpp_camel_keys(payload);
    p->text = ocpp_call_text(p->uid, action, camel);
    json_decref(camel);
    pending **tail = &s->calls;
    while (*tail) tail = &(*tail)->next;
    *tail = p;
    next_call(s);
}

static void call_done(session *s, const char *uid, json_t *content) {
    pending *p = s->calls;
    if (!p || !s->in_flight || strcmp(p->uid, uid) != 0) {
        TBGW_DEBUGF(s->c->h->log, "charge point %s: answer to an unknown call %s", s->id, uid);
        json_decref(content);
        return;
    }
    s->calls = p->next;
    s->in_flight = 0;
    if (p->has_rpc)
        reply_rpc(s->c, p, content);
    else {
        char *t = content ? tbgw_json_dumps(content, 0) : NULL;
        TBGW_INFOF(s->c->h->log, "charge point %s answered %s: %s", s->id, p->action, t ? t : "");
        free(t);
        json_decref(content);
    }
    free(p->text);
    free(p);
    next_call(s);
}

/* ---- receiving ---- */

static int rate_ok(session *s) {
    int64_t now = tbgw_mono_ms();
    s->tokens += (double)(now - s->tokens_at) * RATE_PER_S / 1000.0;
    if (s->tokens > 2 * RATE_PER_S) s->tokens = 2 * RATE_PER_S;
    s->tokens_at = now;
    if (s->tokens < 1) return 0;
    s->tokens -= 1;
    return 1;
}

static void emit(session *s, const char *action, const json_t *snake) {
    if (!s->device) {
        TBGW_DEBUGF(s->c->h->log, "charge point %s: %s before BootNotification, no device yet", s->id,
                    action);
        return;
    }
    tbgw_converted *rec = ocpp_convert(s->cp, s->device, s->type, action, snake);
    if (rec && tbgw_converted_count(rec)) {
        s->c->h->stat_add(s->c->h, TBGW_STAT_CONV_PROCESSED, 1);
        s->c->h->emit(s->c->h, rec);
    } else {
        tbgw_converted_free(rec);
    }
}

static void boot(session *s, const json_t *snake) {
    json_t *profile = ocpp_boot_profile(s->version, snake);
    tbgw_buf n, t;
    tbgw_buf_init(&n);
    tbgw_buf_init(&t);
    if (tbgw_expr_render(s->cp->name, profile, TBGW_FMT_PY, TBGW_MISSING_NONE, &n) == 0 &&
        tbgw_expr_render(s->cp->type, profile, TBGW_FMT_PY, TBGW_MISSING_NONE, &t) == 0 && n.len) {
        free(s->device);
        free(s->type);
        s->device = strdup(tbgw_buf_cstr(&n));
        s->type = strdup(t.len ? tbgw_buf_cstr(&t) : "default");
        s->c->h->device_connected(s->c->h, s->device, s->type);
        TBGW_INFOF(s->c->h->log, "charge point %s is device \"%s\"", s->id, s->device);
    }
    tbgw_buf_free(&n);
    tbgw_buf_free(&t);
    json_decref(profile);
}

static void on_call(session *s, const ocpp_frame *f) {
    oc *c = s->c;
    if (!rate_ok(s)) {
        queue_text(s, ocpp_error_text(f->uid, "GenericError", "too many messages; slow down"));
        c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
        return;
    }
    json_t *snake = ocpp_snake_keys(f->payload);
    if (strcmp(f->action, "DataTransfer") == 0) {
        json_t *parsed = ocpp_parse_embedded(snake);
        json_decref(snake);
        snake = parsed;
    }
    if (strcmp(f->action, "BootNotification") == 0) boot(s, snake);
    const char *code = NULL, *desc = NULL;
    json_t *ans = ocpp_answer(s->version, f->action, f->payload, &s->tx_counter, &code, &desc);
    if (ans) {
        emit(s, f->action, snake);
        queue_text(s, ocpp_result_text(f->uid, ans));
        json_decref(ans);
    } else {
        queue_text(s, ocpp_error_text(f->uid, code, desc));
    }
    json_decref(snake);
}

static void on_frame(session *s, const char *text, size_t len) {
    oc *c = s->c;
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, len);
    ocpp_frame f;
    char why[200], uid[40];
    if (ocpp_frame_parse(text, len, &f, why, sizeof why, uid, sizeof uid) != 0) {
        char code[40];
        snprintf(code, sizeof code, "%.*s", (int)strcspn(why, ":"), why);
        const char *desc = strchr(why, ':') ? strchr(why, ':') + 2 : why;
        queue_text(s, ocpp_error_text(uid[0] ? uid : "-1", code, desc));
        c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
        if (++s->bad_frames == 1 || s->bad_frames % 100 == 0)
            TBGW_WARNF(c->h->log, "charge point %s (%s): malformed frame: %s", s->id, s->peer, why);
        return;
    }
    s->bad_frames = 0;
    if (f.type == OCPP_CALL)
        on_call(s, &f);
    else if (f.type == OCPP_RESULT)
        call_done(s, f.uid, json_pack("{s:O}", "result", f.payload));
    else
        call_done(s, f.uid,
                  json_pack("{s:s,s:s}", "error", f.err_code, "description", f.err_desc ? f.err_desc : ""));
    ocpp_frame_clear(&f);
}

static void session_free(session *s) {
    oc *c = s->c;
    for (session **pp = &c->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    while (s->calls) {
        pending *p = s->calls;
        s->calls = p->next;
        reply_rpc(c, p, json_pack("{s:s}", "error", "the charge point disconnected"));
        free(p->text);
        free(p);
    }
    while (s->out_head) {
        out_frame *f = s->out_head;
        s->out_head = f->next;
        free(f->text);
        free(f);
    }
    if (s->device) c->h->device_disconnected(c->h, s->device);
    free(s->device);
    free(s->type);
    tbgw_buf_free(&s->rx);
    free(s);
}

/* ---- the WebSocket server ---- */

static int cb_ocpp(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    oc *c = lws_context_user(lws_get_context(wsi));
    pss *ps = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char auth[512] = "", id[256], peer[64] = "";
        if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) <= 0) {
            TBGW_WARNF(c->h->log, "connection refused: no OCPP subprotocol (ocpp1.6 / ocpp2.0.1) requested");
            return -1;
        }
        lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
        lws_get_peer_simple(wsi, peer, sizeof peer);
        cp_id(wsi, id, sizeof id);
        if (!authorized(c, auth[0] ? auth : NULL)) {
            TBGW_WARNF(c->h->log, "connection from %s for %s refused: no or wrong Authorization", peer, id);
            c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
            return -1;
        }
        if (!match_cp(c, id, peer)) {
            TBGW_WARNF(c->h->log,
                       "connection from %s refused: charge point id \"%s\" matches no chargePoints entry",
                       peer, id);
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        session *s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->wsi = wsi;
        s->c = c;
        cp_id(wsi, s->id, sizeof s->id);
        lws_get_peer_simple(wsi, s->peer, sizeof s->peer);
        s->cp = match_cp(c, s->id, s->peer);
        const struct lws_protocols *pr = lws_get_protocol(wsi);
        s->version = pr && strcmp(pr->name, "ocpp2.0.1") == 0 ? 201 : 16;
        s->tokens = 2 * RATE_PER_S;
        s->tokens_at = tbgw_mono_ms();
        tbgw_buf_init(&s->rx);
        s->next = c->sessions;
        c->sessions = s;
        ps->s = s;
        TBGW_INFOF(c->h->log, "charge point %s connected from %s (%s)", s->id, s->peer, pr ? pr->name : "?");
        c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        session *s = ps->s;
        if (!s) return -1;
        if (s->rx.len + len > MAX_FRAME) {
            TBGW_WARNF(c->h->log, "charge point %s: frame over %d bytes; closing", s->id, MAX_FRAME);
            c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
            return -1;
        }
        tbgw_buf_append(&s->rx, in, len);
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
        on_frame(s, s->rx.p, s->rx.len);
        tbgw_buf_reset(&s->rx);
        if (s->bad_frames >= MAX_BAD_FRAMES) {
            TBGW_WARNF(c->h->log, "charge point %s: %d malformed frames in a row; closing", s->id,
                       s->bad_frames);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        session *s = ps->s;
        if (!s || !s->out_head) return 0;
        out_frame *f = s->out_head;
        size_t n = strlen(f->text);
        unsigned char *buf = malloc(LWS_PRE + n);
        if (!buf) return -1;
        memcpy(buf + LWS_PRE, f->text, n);
        int w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
        free(buf);
        s->out_head = f->next;
        if (!s->out_head) s->out_tail = NULL;
        free(f->text);
        free(f);
        if (w < (int)n) return -1;
        if (s->out_head) lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        if (ps->s) {
            TBGW_INFOF(c->h->log, "charge point %s disconnected", ps->s->id);
            session_free(ps->s);
            ps->s = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

/* The host's downlink descriptor, adopted (as a duplicate, which lws closes) as a raw file: lws sleeps
 * on it next to its sockets and timers, and downlink is dispatched as soon as it is readable. */
static int cb_downlink(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    (void)user, (void)in, (void)len;
    oc *c = lws_context_user(lws_get_context(wsi));
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) return -1; /* not a subprotocol for clients */
    if (reason == LWS_CALLBACK_RAW_RX_FILE && c->h->dispatch(c->h)) {
        c->stop = 1;
        lws_cancel_service(c->ctx);
    }
    return 0;
}

/* protocols[0] also takes upgrades that asked for no known subprotocol: they are refused. */
static int cb_refuse(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    (void)user, (void)in, (void)len;
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) {
        oc *c = lws_context_user(lws_get_context(wsi));
        TBGW_WARNF(c->h->log, "connection refused: it asked for no OCPP subprotocol (ocpp1.6 / ocpp2.0.1)");
        return -1;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"tbgw-no-subprotocol", cb_refuse, 0, 0, 0, NULL, 0},
    {"ocpp1.6", cb_ocpp, sizeof(pss), MAX_FRAME, 0, NULL, 0},
    {"ocpp2.0.1", cb_ocpp, sizeof(pss), MAX_FRAME, 0, NULL, 0},
    {"tbgw-downlink", cb_downlink, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Our CALLs that were not answered in time. */
static void on_tick(lws_sorted_usec_list_t *sul) {
    oc *c = lws_container_of(sul, oc, tick);
    int64_t now = tbgw_mono_ms();
    for (session *s = c->sessions; s; s = s->next) {
        pending *p = s->calls;
        if (p && s->in_flight && now >= p->deadline) {
            s->calls = p->next;
            s->in_flight = 0;
            reply_rpc(c, p, json_pack("{s:s}", "error", "the charge point did not answer in time"));
            free(p->text);
            free(p);
            next_call(s);
        }
    }
    arm_tick(c);
}

static void lws_log(int level, const char *line) {
    (void)level, (void)line;
}

static int oc_run(void *self) {
    oc *c = self;
    lws_set_log_level(LLL_ERR, lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = c->port;
    info.iface = c->host && strcmp(c->host, "0.0.0.0") != 0 ? c->host : NULL;
    info.protocols = protocols;
    info.user = c;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.max_http_header_pool = 64;
    if (c->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = c->cert;
        info.ssl_private_key_filepath = c->key;
    }
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        c->h->set_state(c->h, TBGW_CONN_FAILED, "cannot listen (port in use or TLS files unreadable)");
        TBGW_ERRORF(c->h->log, "cannot start the central system on %s:%d", c->host ? c->host : "*", c->port);
        return TBGW_EIO;
    }
    TBGW_INFOF(c->h->log, "central system listening on %s:%d (%s)", c->host ? c->host : "*", c->port,
               c->tls ? "TLS" : "plain");
    lws_sock_file_fd_type fd = {.filefd = dup(c->h->downlink_fd)};
    if (fd.filefd < 0 || !lws_adopt_descriptor_vhost(lws_get_vhost_by_name(c->ctx, "default"),
                                                     LWS_ADOPT_RAW_FILE_DESC, fd, "tbgw-downlink", NULL)) {
        if (fd.filefd >= 0) close(fd.filefd);
        lws_context_destroy(c->ctx);
        c->ctx = NULL;
        c->h->set_state(c->h, TBGW_CONN_FAILED, "cannot watch the downlink descriptor");
        return TBGW_EIO;
    }
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    while (!c->stop)
        if (lws_service(c->ctx, 0) < 0) break;
    lws_context_destroy(c->ctx);
    c->ctx = NULL;
    while (c->sessions) session_free(c->sessions);
    return 0;
}

/* ---- downlink ---- */

static session *by_device(oc *c, const char *device) {
    for (session *s = c->sessions; device && s; s = s->next)
        if (s->device && strcmp(s->device, device) == 0) return s;
    return NULL;
}

static int oc_attr_update(void *self, const tbgw_attr_update *u) {
    oc *c = self;
    session *s = by_device(c, u->device);
    if (!s) {
        TBGW_ERRORF(c->h->log, "attribute update for %s: no charge point connected as that device",
                    u->device);
        return 0;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)u->data, key, val) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(s->cp->cfg, "attributeUpdates"), i, e) {
            const char *on = json_string_value(json_object_get(e, "attributeOnThingsBoard"));
            const char *tmpl = json_string_value(json_object_get(e, "valueExpression"));
            if (!on || !tmpl || strcmp(on, key) != 0) continue;
            json_t *vars = json_pack("{s:s,s:O}", "attributeKey", key, "attributeValue", val);
            tbgw_expr *ex = NULL;
            tbgw_err err;
            tbgw_buf out;
            tbgw_buf_init(&out);
            if (vars && tbgw_expr_compile(tmpl, &ex, &err) == 0 &&
                tbgw_expr_render(ex, vars, TBGW_FMT_PY, TBGW_MISSING_KEEP, &out) == 0) {
                json_t *p = json_pack("{s:s,s:s}", "vendor_id", "1", "data", tbgw_buf_cstr(&out));
                call(s, "DataTransfer", p, 0, 0);
                json_decref(p);
            }
            tbgw_buf_free(&out);
            tbgw_expr_free(ex);
            json_decref(vars);
        }
    }
    return 0;
}

/* Downlink actions a central system may send (1.6 and 2.0.1). */
static int is_cs_action(const char *m) {
    static const char *const a[] = {"RemoteStartTransaction",
                                    "RemoteStopTransaction",
                                    "RequestStartTransaction",
                                    "RequestStopTransaction",
                                    "Reset",
                                    "UnlockConnector",
                                    "ChangeConfiguration",
                                    "GetConfiguration",
                                    "SetVariables",
                                    "GetVariables",
                                    "TriggerMessage",
                                    "DataTransfer",
                                    "ClearCache",
                                    "ChangeAvailability",
                                    "GetDiagnostics",
                                    "UpdateFirmware",
                                    "SetChargingProfile",
                                    "ClearChargingProfile",
                                    "GetCompositeSchedule",
                                    "ReserveNow",
                                    "CancelReservation",
                                    "SendLocalList",
                                    "GetLocalListVersion",
                                    NULL};
    for (size_t i = 0; a[i]; i++)
        if (strcmp(a[i], m) == 0) return 1;
    return 0;
}

/* Reserved set: "value=...;" (and other k=v pairs) as a DataTransfer whose data is the value. */
static int rpc_set(oc *c, session *s, const tbgw_rpc_req *r) {
    tbgw_params kv = {0};
    tbgw_err err;
    const char *p = json_string_value(r->params);
    const char *v =
        p && tbgw_params_parse(p, TBGW_PARAMS_LENIENT, &kv, &err) == 0 ? tbgw_params_get(&kv, "value") : NULL;
    char value[1024];
    snprintf(value, sizeof value, "%s", v ? v : "");
    tbgw_params_free(&kv);
    if (!v) return tbgw_rpc_error(c->h, r->handle, "%s", "expected params \"value=...;\"");
    json_t *pl = json_pack("{s:s,s:s}", "vendor_id", "1", "data", value);
    call(s, "DataTransfer", pl, 1, r->handle);
    json_decref(pl);
    return 0;
}

static int oc_rpc(void *self, const tbgw_rpc_req *r) {
    oc *c = self;
    if (!r->device) return tbgw_rpc_error(c->h, r->handle, "Unsupported connector RPC");
    session *s = by_device(c, r->device);
    if (!s) return tbgw_rpc_error(c->h, r->handle, "no charge point connected as that device");
    if (strcmp(r->method, "set") == 0) return rpc_set(c, s, r);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(s->cp->cfg, "serverSideRpc"), i, e) {
        const char *m = json_string_value(json_object_get(e, "methodRPC"));
        if (!m || strcmp(m, r->method) != 0) continue;
        const char *tmpl = json_string_value(json_object_get(e, "valueExpression"));
        json_t *vars = json_pack("{s:O?}", "params", r->params);
        tbgw_expr *ex = NULL;
        tbgw_err err;
        tbgw_buf out;
        tbgw_buf_init(&out);
        int ok = tmpl && vars && tbgw_expr_compile(tmpl, &ex, &err) == 0 &&
                 tbgw_expr_render(ex, vars, TBGW_FMT_JSON, TBGW_MISSING_NONE, &out) == 0;
        tbgw_expr_free(ex);
        json_decref(vars);
        if (!ok) {
            tbgw_buf_free(&out);
            return tbgw_rpc_error(c->h, r->handle, "valueExpression could not be rendered");
        }
        const json_t *wr = json_object_get(e, "withResponse");
        int with = !wr || json_is_true(wr);
        json_t *pl = json_pack("{s:s,s:s}", "vendor_id", "1", "data", tbgw_buf_cstr(&out));
        tbgw_buf_free(&out);
        call(s, "DataTransfer", pl, with, r->handle);
        json_decref(pl);
        if (!with) return c->h->rpc_reply(c->h, r->handle, json_pack("{s:b}", "success", 1), -1);
        return 0;
    }
    if (is_cs_action(r->method)) {
        json_t *pl = json_is_object(r->params) ? json_incref((json_t *)r->params) : json_object();
        call(s, r->method, pl, 1, r->handle);
        json_decref(pl);
        return 0;
    }
    return tbgw_rpc_error(c->h, r->handle, "Method not found");
}

const tbgw_connector_ops tbgw_connector_ocpp = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "ocpp",
    .create = oc_create,
    .run = oc_run,
    .stop = oc_stop,
    .destroy = oc_destroy,
    .on_attribute_update = oc_attr_update,
    .on_rpc = oc_rpc,
};
