/* Outgoing HTTP requests of the HTTP connectors (REST requestsMapping, Request attributeUpdates and
 * serverSideRpc): one entry's configuration, its filters, the request it renders from a downlink
 * (tbgw_dl_render: URL-quoted URL, JSON-escaped body) and the RPC reply its answer becomes. Both
 * connectors use this one copy; they differ only in the field names of their configuration files
 * (tbgw_http_out_dialect) and in how an answer becomes an RPC reply (tbgw_http_answer).
 *
 * Threading: parsing in create(); sending and the callbacks on the connector thread that owns the
 * HTTP client. */
#ifndef TBGW_CONVERT_HTTP_OUT_H
#define TBGW_CONVERT_HTTP_OUT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include "convert/dl_tmpl.h"
#include "convert/expr.h"
#include "convert/source_expr.h"
#include "util/http_client.h"

/* How a connector's file names an entry's fields. */
typedef struct tbgw_http_out_dialect {
    const char *method_key;     /* "httpMethod" (Request) / "HTTPMethod" (REST) */
    const char *value_key;      /* "requestValueExpression" / "valueExpression" */
    const char *default_method; /* "GET" / "POST" */
    int entry_security;         /* per-entry "security" (basic, cert) and "SSLVerify" (REST) */
    int response_value;         /* "responseValueExpression" (Request) */
    int method_filter_required; /* serverSideRpc[].methodFilter has no default (Request) */
} tbgw_http_out_dialect;

typedef struct tbgw_http_out { /* one attributeUpdates[] / serverSideRpc[] entry, or a reserved get/set */
    tbgw_regex *dev_filter, *name_filter; /* deviceNameFilter, attributeFilter / methodFilter */
    tbgw_expr *url, *value, *resp_value;  /* requestUrlExpression, the value and response expressions */
    char *method;                         /* upper case */
    json_t *headers;                      /* httpHeaders or NULL */
    int json_body;                        /* a JSON Content-Type: the body's values are JSON-escaped */
    int verify, redirects, tries;
    int64_t timeout_ms, resp_timeout_ms;
    char *user, *pass, *cert, *key; /* per-entry security (REST) */
} tbgw_http_out;

/* o[k]: a `${...}` template (NULL when absent and not required); errors name "<path>.<k>". */
int tbgw_http_cfg_template(const json_t *o, const char *k, const char *path, int required, tbgw_expr **out,
                           tbgw_err *err);
/* e.security: {"type": "anonymous"} | {"type": "basic", "username", "password"} | (allow_cert)
 * {"type": "cert", "cert", "key"}; the strings are malloc'ed into the outputs. */
int tbgw_http_cfg_security(const json_t *e, const char *path, int allow_cert, char **user, char **pass,
                           char **cert, char **key, tbgw_err *err);
/* e[key]: an HTTP method (letters; dflt when absent), upper-cased into *out (malloc'ed). */
int tbgw_http_cfg_method(const json_t *e, const char *key, const char *path, const char *dflt, char **out,
                         tbgw_err *err);
/* e.httpHeaders: an object (NULL when absent; a reference into e); *json_body (may be NULL): its
 * Content-Type names JSON. */
int tbgw_http_cfg_headers(const json_t *e, const char *path, json_t **out, int *json_body, tbgw_err *err);
/* Parses entry e at path ("serverSideRpc[0]"); rpc: a serverSideRpc entry (methodFilter). */
int tbgw_http_out_parse(tbgw_http_out *o, const json_t *e, const char *path, int rpc,
                        const tbgw_http_out_dialect *d, tbgw_err *err);
void tbgw_http_out_clear(tbgw_http_out *o);
/* Parses the list arr (NULL or null: none) named name; entries that cannot be used are reported
 * through host->config_warning and skipped. 0, or TBGW_EINVAL (not a list) / TBGW_ENOMEM. */
int tbgw_http_out_parse_list(const json_t *arr, const char *name, int rpc, const tbgw_http_out_dialect *d,
                             const tbgw_host *host, tbgw_http_out **out, size_t *n, tbgw_err *err);
void tbgw_http_out_free_list(tbgw_http_out *v, size_t n);
/* The first entry whose filters take device and name (attribute key or method), or NULL. */
const tbgw_http_out *tbgw_http_out_match(const tbgw_http_out *v, size_t n, const char *device,
                                         const char *name);
/* A reserved get/set entry from the RPC's params: "k1=v1;k2=v2;" (an object for connector RPCs) with
 * value= as the dialect's value key; defaults (an object, may be NULL) fill what the params leave
 * out. Needs requestUrlExpression (and a value for set); else why gets schema (or the parse error). */
int tbgw_http_out_reserved(tbgw_http_out *o, const tbgw_rpc_req *r, int set, const tbgw_http_out_dialect *d,
                           const json_t *defaults, const char *schema, char *why, size_t why_len);

typedef enum tbgw_http_answer {
    TBGW_HTTP_ANSWER_RESULT, /* {"result": <the answer as JSON, or its text>} (REST) */
    TBGW_HTTP_ANSWER_VALUE,  /* {"result": {"value": ...}} through responseValueExpression (Request) */
} tbgw_http_answer;

/* What every request of one connector shares (read during tbgw_http_out_send; host and stop must
 * outlive the requests). */
typedef struct tbgw_http_sender {
    const tbgw_host *host;
    tbgw_http_client *http;
    const char *base;        /* relative URLs are joined to it; NULL: only http(s) URLs are sent */
    const char *user, *pass; /* connector-level basic auth, used when the entry has none */
    int verify;              /* connector-level SSLVerify (entries without entry_security) */
    tbgw_http_answer answer; /* the RPC reply form */
    const atomic_int *stop;  /* set when stopping: aborted transfers end silently */
} tbgw_http_sender;

/* Absolute URL: http(s) URLs as they are, else base + "/" + url. malloc'ed (NULL: no memory). */
char *tbgw_http_join_url(const char *base, const char *url);

/* Renders and sends o's request. what names it in logs ("RPC echo of SD8500"). An RPC (is_rpc) gets
 * exactly one reply: the answer (s->answer; a reserved call's answer is its text), or an error within
 * the entry's responseTimeout / the core's timeout_ms. 0, or TBGW_ENOENT (a placeholder has no
 * value), TBGW_EINVAL (no http(s) URL), TBGW_ENOMEM: nothing was sent then (no reply either). */
int tbgw_http_out_send(const tbgw_http_sender *s, const tbgw_http_out *o, const tbgw_dl_vars *vars,
                       const char *what, int is_rpc, int reserved, uint64_t handle, int64_t core_timeout_ms);
/* Sends every entry of upds whose filters take a key of u (a request per key and entry); failures
 * to send are logged and counted. */
void tbgw_http_out_attribute_update(const tbgw_http_sender *s, const tbgw_http_out *upds, size_t n,
                                    const tbgw_attr_update *u);
/* Runs an RPC on reserved (an entry the connector built for get/set) or the first entry of rpcs that
 * takes it; the RPC gets exactly one reply. TBGW_ENOENT (nothing replied) when no entry takes it. */
int tbgw_http_out_rpc(const tbgw_http_sender *s, const tbgw_http_out *rpcs, size_t n,
                      const tbgw_http_out *reserved, const tbgw_rpc_req *r);
/* A failed RPC: logged (WARNING "RPC: <text>") and answered {"error": text, "success": false}. */
void tbgw_http_rpc_failed(const tbgw_host *h, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
