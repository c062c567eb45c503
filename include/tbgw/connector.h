/* The connector interface. A connector speaks one southbound protocol; the core owns threads,
 * restarts, storage, the platform session and routing. See docs/ARCHITECTURE.md.
 *
 * Threading: create/destroy run on the core thread. run() runs on the connector's own thread.
 * Downlink callbacks (on_attribute_update, on_rpc, on_attribute_response) are invoked from inside
 * host->wait() or host->dispatch(), on the connector thread, so a connector needs no locks for its
 * own state. stop() may be called from any thread.
 *
 * Two ways to wait for work (both stay supported in ABI 1):
 * - Simple connectors call host->wait(h, timeout_ms) between their own steps: it sleeps until downlink
 *   work is queued, a stop is requested or the timeout passes, and dispatches what is queued.
 * - Connectors with their own event loop put host->downlink_fd (an eventfd) into their poll/epoll set
 *   next to their I/O descriptors, sleep until one of them is readable or their next timer is due,
 *   and call host->dispatch(h) whenever downlink_fd is readable (calling it more often is harmless).
 *   dispatch() never blocks; it returns 1 once a stop was requested (downlink_fd then stays readable),
 *   so the loop needs no other wake-up and no periodic timer of its own. */
#ifndef TBGW_CONNECTOR_H
#define TBGW_CONNECTOR_H

#include <stdint.h>
#include <jansson.h>
#include <tbgw/data.h>
#include <tbgw/err.h>
#include <tbgw/log.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TBGW_CONNECTOR_ABI 1u

typedef struct tbgw_host tbgw_host;

/* Shared attribute update for one device: {"k":v,...}. Borrowed for the call. */
typedef struct tbgw_attr_update {
    const char *device; /* the device name as the connector produced it (renames undone) */
    const json_t *data;
} tbgw_attr_update;

/* Server-side RPC. device is NULL for connector RPCs addressed to the gateway device
 * ("<type>_<method>"); method then is the part after the prefix. Borrowed for the call. */
typedef struct tbgw_rpc_req {
    uint64_t handle; /* pass to host->rpc_reply */
    const char *device;
    int64_t id;
    const char *method;
    const json_t *params; /* may be NULL */
    int64_t timeout_ms;   /* when the core will answer with a timeout error itself */
} tbgw_rpc_req;

typedef enum tbgw_conn_state {
    TBGW_CONN_STOPPED = 0,
    TBGW_CONN_STARTING,
    TBGW_CONN_CONNECTED,
    TBGW_CONN_DISCONNECTED,
    TBGW_CONN_FAILED,
} tbgw_conn_state;

typedef struct tbgw_connector_status {
    tbgw_conn_state state;
    char last_error[256];
} tbgw_connector_status;

/* Statistics a connector reports (spec §1.9 connectorsStats). */
typedef enum tbgw_stat {
    TBGW_STAT_MSGS_RECEIVED = 0, /* connectorMsgsReceived */
    TBGW_STAT_BYTES_RECEIVED,    /* connectorBytesReceived */
    TBGW_STAT_CONV_PROCESSED,    /* convertersMsgProcessed */
    TBGW_STAT_CONV_DROPPED,      /* convertersMsgDropped */
    TBGW_STAT_CONNECTOR_ERRORS,  /* connectorsErrors */
    TBGW_STAT_CONVERTER_ERRORS,  /* convertersErrors */
    TBGW_STAT__COUNT
} tbgw_stat;

/* tbgw_connector_ops.flags */
/* The connector copies from cfg whatever it keeps: after create() it holds no pointer into cfg (no
 * json_t *, no json_string_value() string, no reference taken with json_incref). The core then frees
 * the configuration tree right after create() returned 0 and keeps only a compact (deflated JSON)
 * form of it for the remote configuration; on a large configuration that is most of the memory a
 * device costs. Without the flag (the default, and what connectors built before it get) cfg stays
 * alive and unchanged until destroy() returned, so borrowing from it is safe. */
#define TBGW_CONNECTOR_COPIES_CONFIG (1u << 0)

typedef struct tbgw_connector_ops {
    uint32_t abi; /* TBGW_CONNECTOR_ABI */
    const char *type;
    uint32_t flags; /* TBGW_CONNECTOR_* flags above; 0 = none */
    /* Parse and validate cfg (the connector file's JSON), no I/O. On error fill err naming the field.
     * cfg is borrowed: alive until destroy(), unless flags has TBGW_CONNECTOR_COPIES_CONFIG (then only
     * for the call). */
    int (*create)(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err);
    /* Blocking body; returns when stopped (0) or on a fatal error (<0; the host restarts it with backoff). */
    int (*run)(void *self);
    void (*stop)(void *self); /* idempotent, any thread */
    void (*destroy)(void *self);
    int (*on_attribute_update)(void *self, const tbgw_attr_update *u);
    /* Must lead to exactly one host->rpc_reply (later replies are ignored; the core answers a timeout). */
    int (*on_rpc)(void *self, const tbgw_rpc_req *r);
    /* Answer to host->request_attributes; data is {"key":value,...} or NULL on timeout. */
    int (*on_attribute_response)(void *self, uint64_t cookie, const char *device, const json_t *data);
    void (*status)(void *self, tbgw_connector_status *out);
    void *reserved[4];
} tbgw_connector_ops;

/* A custom connector shared object exports this symbol. */
typedef const tbgw_connector_ops *(*tbgw_connector_entry_fn)(uint32_t abi);
#define TBGW_CONNECTOR_ENTRY "tbgw_connector_entry"

struct tbgw_host {
    uint32_t abi;
    const char *name;       /* connector name from tb_gateway.json */
    const char *type;       /* lower-case type */
    const char *id;         /* connector id */
    const char *config_dir; /* folder of tb_gateway.json, for relative paths */
    tbgw_logger *log;       /* "connector.<name>" */
    tbgw_logger *conv_log;  /* "converter.<name>" */

    /* Hands a chain of records to the core; always takes ownership. TBGW_EAGAIN when the core is
     * saturated (the chain was dropped and counted). */
    int (*emit)(const tbgw_host *h, tbgw_converted *chain);
    /* Explicit device lifecycle (v1/gateway/connect and disconnect). type NULL = "default". */
    int (*device_connected)(const tbgw_host *h, const char *device, const char *type);
    int (*device_disconnected)(const tbgw_host *h, const char *device);
    /* Replies to an RPC. content is stolen (may be NULL). success: -1 = reply content as is;
     * 0/1 = reference "success_sent" encoding (spec §1.7). */
    int (*rpc_reply)(const tbgw_host *h, uint64_t handle, json_t *content, int success);
    /* Requests attributes of a device from the platform; the answer arrives through
     * ops->on_attribute_response with the same cookie. */
    int (*request_attributes)(const tbgw_host *h, const char *device, const char *const *keys, size_t n_keys,
                              int client_scope, uint64_t cookie);
    /* Waits up to timeout_ms for downlink work and dispatches it. Returns 1 when the connector
     * should stop, else 0. */
    int (*wait)(const tbgw_host *h, int timeout_ms);
    void (*stat_add)(const tbgw_host *h, tbgw_stat stat, uint64_t n);
    void (*set_state)(const tbgw_host *h, tbgw_conn_state state, const char *error_text);
    void *core; /* private to the core */
    /* Reports a configuration mistake the connector tolerates (one per-key entry skipped): dotted is
     * the field's path in the connector file ("master.slaves[0].timeseries[2].type"), msg the reason.
     * The core adds file:line:column, logs it as a warning, counts it and lists it under
     * --check-config. Callable from create() and run(). */
    void (*config_warning)(const tbgw_host *h, const char *dotted, const char *msg);

    /* ---- appended in ABI 1 (hosts are created by the core, so plugins built before these fields
     * existed keep working; a plugin that uses them needs a core built from this header) ---- */
    /* Readable (POLLIN/EPOLLIN, level-triggered) while downlink work is queued for this connector or a
     * stop was requested. Owned by the core: never read, write or close it. */
    int downlink_fd;
    /* Dispatches the downlink work queued now, on the calling (connector) thread, without waiting.
     * Returns 1 when the connector should stop, else 0. Equivalent to wait(h, 0). */
    int (*dispatch)(const tbgw_host *h);
    /* Like emit(), but a chain the saturated core refuses (TBGW_EAGAIN) stays the caller's, not
     * dropped or counted: a connector whose source can wait (unread socket data, a file offset)
     * keeps it and offers it again later, so nothing it has acknowledged is lost. Any other return
     * took ownership, as emit() does. May be NULL in hosts older than this field: use emit(). */
    int (*offer)(const tbgw_host *h, tbgw_converted *chain);
};

#ifdef __cplusplus
}
#endif
#endif
