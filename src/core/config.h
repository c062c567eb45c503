/* tb_gateway.json / tb_gateway.yaml: loading, validation with positions, typed access. */
#ifndef TBGW_CORE_CONFIG_H
#define TBGW_CORE_CONFIG_H

#include <jansson.h>
#include <stdio.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

#include "util/doc.h"

typedef enum tbgw_sec_type {
    TBGW_SEC_ACCESS_TOKEN = 0,
    TBGW_SEC_TLS_ACCESS_TOKEN,
    TBGW_SEC_USERNAME_PASSWORD,
    TBGW_SEC_TLS_PRIVATE_KEY,
} tbgw_sec_type;

typedef struct tbgw_security {
    tbgw_sec_type type;
    char *access_token, *client_id, *username, *password;
    char *ca_cert, *cert, *private_key; /* resolved paths */
    int tls, insecure;
} tbgw_security;

typedef struct tbgw_conn_entry {
    char *type; /* lower-case */
    char *name;
    char *configuration; /* file name as written, may be NULL with inline configurationJson */
    char *config_path;   /* resolved path (NULL for inline) */
    char *klass;
    char *plugin; /* resolved .so path for custom connectors, NULL for built-in */
    char *id;
    tbgw_doc *doc;           /* the connector file (or inline JSON wrapped in a doc) */
    tbgw_report_strategy rs; /* connector-level strategy (UNSET if none) */
    FILE *check_out;         /* --check-config: tolerated mistakes are listed here instead of logged */
    int check_warnings;      /* how many were listed */
} tbgw_conn_entry;

typedef struct tbgw_config {
    tbgw_doc *doc;
    char *dir; /* folder of the main file */
    /* thingsboard */
    char *host;
    int port, qos, keep_alive, mqtt_version;
    int remote_configuration, remote_shell, latency_debug, handle_device_renaming;
    tbgw_security sec;
    int stats_enable, stats_period_s, custom_stats_period_s, custom_stats_enable;
    char *custom_stats_file; /* statistics.configuration: custom commands (relative to the folder) */
    int filter_enable;
    char *filter_file;
    int max_payload_size, min_pack_send_delay_ms, check_connectors_s;
    tbgw_report_strategy rs;
    int rs_disabled;
    int inactivity_check, inactivity_timeout_s, inactivity_period_s;
    char *rate_limits[6];          /* rateLimits, dpRateLimits, messagesRateLimits, deviceMessagesRateLimits,
                                      deviceRateLimits, deviceDpRateLimits */
    int session_limits_timeout_ms; /* tbgw: how long to wait for getSessionLimits */
    int device_rpc_timeout_ms;     /* tbgw: safety net for a connector that never replies */
    int reconnect_max_ms;          /* tbgw: backoff cap */
    json_t *storage;               /* borrowed from doc */
    json_t *grpc;
    tbgw_conn_entry *conns;
    size_t n_conns;
    /* tbgw management extensions (core/mgmt.c, docs/CONFIG.md) */
    int allow_reboot;     /* thingsboard.allowReboot: gateway_reboot RPC enabled */
    char *reboot_command; /* thingsboard.rebootCommand */
    int metrics_enable, metrics_port;
    char *metrics_host; /* "metrics": {"enabled", "port", "host"} */
} tbgw_config;

/* Error/warning collector: every problem is reported, not just the first. */
typedef struct tbgw_cfg_report {
    int errors, warnings;
    FILE *out; /* where "file:line:col: message" lines go (NULL = log them) */
} tbgw_cfg_report;

/* Loads and validates the main file and every connector file. Returns NULL when any error was
 * reported (each already written to rep). load_connectors=0 skips connector files. */
tbgw_config *tbgw_config_load(const char *path, tbgw_cfg_report *rep);
void tbgw_config_free(tbgw_config *c);
/* Frees the strings of a security section and zeroes it. */
void tbgw_security_clear(tbgw_security *s);
/* Resolves a file name against the config folder (absolute names unchanged). Caller frees. */
char *tbgw_config_resolve(const tbgw_config *c, const char *name);
/* Builds one connector entry from a connectors-list object (type, name, configuration or inline
 * configurationJson, ...), as the loader does; problems go to errors. NULL on any error. */
tbgw_conn_entry *tbgw_config_entry_new(tbgw_config *c, const json_t *list_entry, FILE *errors);
void tbgw_config_entry_free(tbgw_conn_entry *e); /* frees the members, not e */
/* Parses a "reportStrategy" object; returns 0 (UNSET if absent/empty) or error naming path. */
int tbgw_config_parse_rs(const json_t *j, const char *path, tbgw_report_strategy *out, tbgw_err *err);
/* Applies logs.json-style level configuration ({"loggers":{name:{"level"}}, "root":{"level"}}). */
void tbgw_config_apply_log_levels(const json_t *logs);

#endif
