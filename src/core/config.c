/* Loading and validating tb_gateway.json (spec §2) and the connector files it names. */
#include "core/config.h"

#include <ctype.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "convert/report_cfg.h"
#include "core/registry.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log_config.h"

typedef enum ftype { F_BOOL, F_INT, F_NUM, F_STR, F_OBJ, F_ARR, F_ANY, F_STR_OR_OBJ } ftype;

typedef struct field {
    const char *key;
    ftype type;
    int required;
} field;

static const char *ftype_name(ftype t) {
    switch (t) {
    case F_BOOL:
        return "a boolean (true/false)";
    case F_INT:
        return "an integer";
    case F_NUM:
        return "a number";
    case F_STR:
        return "a string";
    case F_OBJ:
        return "an object";
    case F_ARR:
        return "an array";
    case F_STR_OR_OBJ:
        return "a string or an object";
    default:
        return "a value";
    }
}

static const char *json_type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int type_ok(const json_t *v, ftype t) {
    switch (t) {
    case F_BOOL:
        return json_is_boolean(v);
    case F_INT:
        return json_is_integer(v);
    case F_NUM:
        return json_is_number(v);
    case F_STR:
        return json_is_string(v);
    case F_OBJ:
        return json_is_object(v);
    case F_ARR:
        return json_is_array(v);
    case F_STR_OR_OBJ:
        return json_is_string(v) || json_is_object(v);
    default:
        return 1;
    }
}

static void report(tbgw_cfg_report *rep, int is_error, const char *msg) {
    if (is_error)
        rep->errors++;
    else
        rep->warnings++;
    if (rep->out) {
        fprintf(rep->out, "%s%s\n", is_error ? "" : "warning: ", msg);
    } else {
        tbgw_logger *lg = tbgw_logger_get("service");
        if (is_error)
            TBGW_ERRORF(lg, "%s", msg);
        else
            TBGW_WARNF(lg, "%s", msg);
    }
}

static void doc_report(tbgw_cfg_report *rep, int is_error, const tbgw_doc *d, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void doc_report(tbgw_cfg_report *rep, int is_error, const tbgw_doc *d, const char *path,
                       const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tbgw_err e;
    tbgw_doc_error(d, &e, path, "%s", msg);
    report(rep, is_error, e.msg);
}

static void join_path(char *out, size_t n, const char *base, const char *key) {
    if (base && *base)
        snprintf(out, n, "%s.%s", base, key);
    else
        snprintf(out, n, "%s", key);
}

/* Checks the types of known keys, required keys, and warns about unknown keys. */
static void check_fields(tbgw_cfg_report *rep, const tbgw_doc *d, const json_t *obj, const char *path,
                         const field *fields) {
    char p[256];
    for (const field *f = fields; f->key; f++) {
        json_t *v = json_object_get(obj, f->key);
        join_path(p, sizeof p, path, f->key);
        if (!v) {
            if (f->required)
                doc_report(rep, 1, d, p, "required field is missing (expected %s)", ftype_name(f->type));
            continue;
        }
        if (!type_ok(v, f->type))
            doc_report(rep, 1, d, p, "expected %s, got %s", ftype_name(f->type), json_type_name(v));
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        const field *f;
        for (f = fields; f->key; f++)
            if (strcmp(f->key, k) == 0) break;
        if (!f->key) {
            join_path(p, sizeof p, path, k);
            doc_report(rep, 0, d, p, "unknown key, ignored");
        }
    }
}

static char *dup_str(const json_t *obj, const char *key, const char *def) {
    json_t *v = json_object_get(obj, key);
    const char *s = json_is_string(v) ? json_string_value(v) : def;
    return s ? strdup(s) : NULL;
}

static int get_int(const json_t *obj, const char *key, int def) {
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) return (int)json_integer_value(v);
    if (json_is_real(v)) return (int)json_real_value(v);
    return def;
}

static int get_bool(const json_t *obj, const char *key, int def) {
    json_t *v = json_object_get(obj, key);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}

char *tbgw_config_resolve(const tbgw_config *c, const char *name) {
    if (!name) return NULL;
    if (name[0] == '/') return strdup(name);
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_printf(&b, "%s/%s", c->dir, name);
    /* The reference tries the config folder first, then the name as given. */
    if (access(b.p, F_OK) != 0 && access(name, F_OK) == 0) {
        tbgw_buf_free(&b);
        return strdup(name);
    }
    return b.p;
}

int tbgw_config_parse_rs(const json_t *j, const char *path, tbgw_report_strategy *out, tbgw_err *err) {
    /* path names the reportStrategy object itself; tbgw_rs_parse_in wants its parent */
    const char *suffix = "reportStrategy";
    size_t pl = strlen(path), sl = strlen(suffix);
    char parent[256] = "";
    if (pl > sl && strcmp(path + pl - sl, suffix) == 0 && path[pl - sl - 1] == '.')
        snprintf(parent, sizeof parent, "%.*s", (int)(pl - sl - 1), path);
    return tbgw_rs_parse_in(j, parent, out, err);
}

static const field top_fields[] = {{"thingsboard", F_OBJ, 1},
                                   {"storage", F_OBJ, 0},
                                   {"grpc", F_OBJ, 0},
                                   {"connectors", F_ARR, 0},
                                   {"handleDeviceRenaming", F_BOOL, 0},
                                   {"logs", F_OBJ, 0},
                                   {"metrics", F_OBJ, 0},
                                   {NULL, F_ANY, 0}};

static const field metrics_fields[] = {
    {"enabled", F_BOOL, 0}, {"port", F_INT, 0}, {"host", F_STR, 0}, {NULL, F_ANY, 0}};
static const field filter_fields[] = {{"enable", F_BOOL, 0}, {"filterFile", F_STR, 0}, {NULL, F_ANY, 0}};

static const field tb_fields[] = {{"host", F_STR, 1},
                                  {"port", F_INT, 0},
                                  {"qos", F_INT, 0},
                                  {"keep_alive", F_INT, 0},
                                  {"keepalive", F_INT, 0},
                                  {"proxy_host", F_STR, 0},
                                  {"proxy_port", F_INT, 0},
                                  {"security", F_OBJ, 0},
                                  {"provisioning", F_OBJ, 0},
                                  {"remoteConfiguration", F_BOOL, 0},
                                  {"remoteShell", F_BOOL, 0},
                                  {"latencyDebugMode", F_BOOL, 0},
                                  {"statistics", F_OBJ, 0},
                                  {"deviceFiltering", F_OBJ, 0},
                                  {"maxPayloadSizeBytes", F_INT, 0},
                                  {"minPackSendDelayMS", F_INT, 0},
                                  {"minPackSizeToSend", F_INT, 0},
                                  {"checkConnectorsConfigurationInSeconds", F_INT, 0},
                                  {"handleDeviceRenaming", F_BOOL, 0},
                                  {"reportStrategy", F_OBJ, 0},
                                  {"reportStrategyDataCacheCleanupInterval", F_NUM, 0},
                                  {"checkingDeviceActivity", F_OBJ, 0},
                                  {"syncDevicesSharedAttributesOnConnect", F_BOOL, 0},
                                  {"rateLimits", F_STR, 0},
                                  {"dpRateLimits", F_STR, 0},
                                  {"messagesRateLimits", F_STR, 0},
                                  {"deviceMessagesRateLimits", F_STR, 0},
                                  {"deviceRateLimits", F_STR, 0},
                                  {"deviceDpRateLimits", F_STR, 0},
                                  {"managerEnabled", F_BOOL, 0},
                                  /* tbgw extensions */
                                  {"mqttVersion", F_INT, 0},
                                  {"sessionLimitsTimeoutMs", F_INT, 0},
                                  {"deviceRpcTimeoutMs", F_INT, 0},
                                  {"reconnectMaxDelayMs", F_INT, 0},
                                  {"allowReboot", F_BOOL, 0},
                                  {"rebootCommand", F_STR, 0},
                                  {NULL, F_ANY, 0}};

static const field sec_fields[] = {
    {"type", F_STR, 0},      {"accessToken", F_STR, 0},     {"clientId", F_STR, 0},
    {"username", F_STR, 0},  {"password", F_STR, 0},        {"caCert", F_STR, 0},
    {"cert", F_STR, 0},      {"privateKey", F_STR, 0},      {"tls", F_BOOL, 0},
    {"insecure", F_BOOL, 0}, {"checkCertPeriod", F_NUM, 0}, {"certificateDaysLeft", F_NUM, 0},
    {NULL, F_ANY, 0}};

static const field stats_fields[] = {{"enable", F_BOOL, 0},
                                     {"statsSendPeriodInSeconds", F_INT, 0},
                                     {"customStatsSendPeriodInSeconds", F_INT, 0},
                                     {"enableCustom", F_BOOL, 0},
                                     {"configuration", F_STR, 0},
                                     {"commands", F_ARR, 0},
                                     {NULL, F_ANY, 0}};

static const field activity_fields[] = {{"checkDeviceInactivity", F_BOOL, 0},
                                        {"inactivityTimeoutSeconds", F_INT, 0},
                                        {"inactivityCheckPeriodSeconds", F_INT, 0},
                                        {NULL, F_ANY, 0}};

static const field storage_fields[] = {{"type", F_STR, 0},
                                       {"read_records_count", F_INT, 0},
                                       {"max_records_count", F_INT, 0},
                                       {"data_folder_path", F_STR, 0},
                                       {"max_file_count", F_INT, 0},
                                       {"max_read_records_count", F_INT, 0},
                                       {"max_records_per_file", F_INT, 0},
                                       {"max_records_between_fsync", F_INT, 0},
                                       {"data_file_path", F_STR, 0},
                                       {"messages_ttl_check_in_hours", F_NUM, 0},
                                       {"messages_ttl_in_days", F_NUM, 0},
                                       {"writing_batch_size", F_INT, 0},
                                       {"size_limit", F_NUM, 0},
                                       {"max_db_amount", F_INT, 0},
                                       {"oversize_check_period", F_NUM, 0},
                                       /* tbgw extensions */
                                       {"full_policy", F_STR, 0},
                                       {"fsync", F_STR, 0},
                                       {"fsync_interval_ms", F_INT, 0},
                                       {"max_file_bytes", F_INT, 0},
                                       {NULL, F_ANY, 0}};

static const field conn_fields[] = {{"type", F_STR, 1},
                                    {"name", F_STR, 1},
                                    {"configuration", F_STR, 0},
                                    {"configurationJson", F_OBJ, 0},
                                    {"class", F_STR, 0},
                                    {"useGRPCForce", F_BOOL, 0},
                                    {"key", F_STR, 0},
                                    {"id", F_STR, 0},
                                    {"enableRemoteLogging", F_BOOL, 0},
                                    {"logLevel", F_STR, 0},
                                    {"configVersion", F_STR, 0},
                                    {"reportStrategy", F_OBJ, 0},
                                    {"plugin", F_STR, 0},
                                    {NULL, F_ANY, 0}};

static const char *env_get(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Environment overrides (spec §2.1). Only the TB_GW_* names are read: bare lowercase names such as
 * `host` or `type` are ordinary shell variables and must not leak into the configuration. */
static void apply_env(json_t *tb) {
    const char *v;
    if ((v = env_get("TB_GW_HOST"))) json_object_set_new(tb, "host", json_string(v));
    if ((v = env_get("TB_GW_PORT"))) json_object_set_new(tb, "port", json_integer(atoi(v)));
    static const char *const sec_env[][2] = {
        {"TB_GW_SECURITY_TYPE", "type"}, {"TB_GW_ACCESS_TOKEN", "accessToken"},
        {"TB_GW_CA_CERT", "caCert"},     {"TB_GW_PRIVATE_KEY", "privateKey"},
        {"TB_GW_CERT", "cert"},          {"TB_GW_CLIENT_ID", "clientId"},
        {"TB_GW_USERNAME", "username"},  {"TB_GW_PASSWORD", "password"}};
    json_t *sec = NULL;
    for (size_t i = 0; i < sizeof sec_env / sizeof sec_env[0]; i++) {
        if (!(v = env_get(sec_env[i][0]))) continue;
        if (!sec) sec = json_object();
        json_object_set_new(sec, sec_env[i][1], json_string(v));
    }
    if (sec) json_object_set_new(tb, "security", sec); /* replaces the whole object, as the reference */
    static const char *const rl_env[][2] = {{"TB_GW_MESSAGES_RATE_LIMITS", "messagesRateLimits"},
                                            {"TB_GW_DEVICE_MESSAGES_RATE_LIMIT", "deviceMessagesRateLimits"},
                                            {"TB_GW_DEVICE_RATE_LIMITS", "deviceRateLimits"},
                                            {"TB_GW_DEVICE_DP_RATE_LIMITS", "deviceDpRateLimits"}};
    if ((v = env_get("TB_GW_RATE_LIMITS"))) {
        const char *keys[] = {"rateLimits", "messagesRateLimits", "deviceMessagesRateLimits",
                              "deviceRateLimits"};
        for (size_t i = 0; i < 4; i++) json_object_set_new(tb, keys[i], json_string(v));
    }
    if ((v = env_get("TB_GW_DP_RATE_LIMITS"))) {
        json_object_set_new(tb, "dpRateLimits", json_string(v));
        json_object_set_new(tb, "deviceDpRateLimits", json_string(v));
    }
    for (size_t i = 0; i < sizeof rl_env / sizeof rl_env[0]; i++)
        if ((v = env_get(rl_env[i][0]))) json_object_set_new(tb, rl_env[i][1], json_string(v));
}

static void load_security(tbgw_config *c, const json_t *tb, tbgw_cfg_report *rep) {
    json_t *s = json_object_get(tb, "security");
    tbgw_security *sec = &c->sec;
    if (!json_is_object(s)) {
        if (!json_object_get(tb, "provisioning") && !getenv("TB_GW_PROVISIONING_DEVICE_KEY"))
            doc_report(rep, 1, c->doc, "thingsboard.security",
                       "required field is missing (expected an object with \"type\" and credentials)");
        return;
    }
    check_fields(rep, c->doc, s, "thingsboard.security", sec_fields);
    const char *type = json_string_value(json_object_get(s, "type"));
    if (!type) type = json_object_get(s, "accessToken") ? "accessToken" : "tlsPrivateKey";
    if (strcmp(type, "accessToken") == 0)
        sec->type = TBGW_SEC_ACCESS_TOKEN;
    else if (strcmp(type, "tlsAccessToken") == 0)
        sec->type = TBGW_SEC_TLS_ACCESS_TOKEN;
    else if (strcmp(type, "usernamePassword") == 0)
        sec->type = TBGW_SEC_USERNAME_PASSWORD;
    else
        sec->type = TBGW_SEC_TLS_PRIVATE_KEY; /* tlsPrivateKey, x509Certificate and anything else */
    sec->access_token = dup_str(s, "accessToken", NULL);
    sec->client_id = dup_str(s, "clientId", NULL);
    sec->username = dup_str(s, "username", NULL);
    sec->password = dup_str(s, "password", NULL);
    char *ca = dup_str(s, "caCert", NULL), *cert = dup_str(s, "cert", NULL),
         *key = dup_str(s, "privateKey", NULL);
    sec->ca_cert = ca ? tbgw_config_resolve(c, ca) : NULL;
    sec->cert = cert ? tbgw_config_resolve(c, cert) : NULL;
    sec->private_key = key ? tbgw_config_resolve(c, key) : NULL;
    free(ca);
    free(cert);
    free(key);
    sec->insecure = get_bool(s, "insecure", 0);
    sec->tls = get_bool(s, "tls", 0) || sec->ca_cert || c->port == 8883 ||
               sec->type == TBGW_SEC_TLS_ACCESS_TOKEN || sec->type == TBGW_SEC_TLS_PRIVATE_KEY;
    if ((sec->type == TBGW_SEC_ACCESS_TOKEN || sec->type == TBGW_SEC_TLS_ACCESS_TOKEN) &&
        (!sec->access_token || !*sec->access_token))
        doc_report(rep, 1, c->doc, "thingsboard.security.accessToken", "required for security type \"%s\"",
                   type);
    if (sec->type == TBGW_SEC_USERNAME_PASSWORD && !sec->username && !sec->client_id)
        doc_report(rep, 1, c->doc, "thingsboard.security.username",
                   "usernamePassword needs at least a username or a clientId");
    if (sec->type == TBGW_SEC_TLS_PRIVATE_KEY && (!sec->cert || !sec->private_key))
        doc_report(rep, 1, c->doc, "thingsboard.security",
                   "security type \"%s\" needs \"cert\" and \"privateKey\"", type);
    const char *files[][2] = {
        {sec->ca_cert, "caCert"}, {sec->cert, "cert"}, {sec->private_key, "privateKey"}};
    for (size_t i = 0; i < 3; i++) {
        if (files[i][0] && access(files[i][0], R_OK) != 0) {
            char p[64];
            snprintf(p, sizeof p, "thingsboard.security.%s", files[i][1]);
            doc_report(rep, 1, c->doc, p, "cannot read file %s", files[i][0]);
        }
    }
    if (sec->access_token) {
        size_t n = strlen(sec->access_token);
        if (n && (isspace((unsigned char)sec->access_token[0]) ||
                  isspace((unsigned char)sec->access_token[n - 1])))
            doc_report(rep, 0, c->doc, "thingsboard.security.accessToken",
                       "the access token has leading or trailing whitespace; ThingsBoard will refuse it");
    }
}

static void load_thingsboard(tbgw_config *c, json_t *tb, tbgw_cfg_report *rep) {
    check_fields(rep, c->doc, tb, "thingsboard", tb_fields);
    c->host = dup_str(tb, "host", "localhost");
    c->port = get_int(tb, "port", 1883);
    if (c->port <= 0 || c->port > 65535) doc_report(rep, 1, c->doc, "thingsboard.port", "expected 1..65535");
    c->qos = get_int(tb, "qos", 1);
    if (c->qos != 0 && c->qos != 1) doc_report(rep, 1, c->doc, "thingsboard.qos", "expected 0 or 1");
    c->keep_alive = get_int(tb, "keep_alive", get_int(tb, "keepalive", 120));
    c->mqtt_version = get_int(tb, "mqttVersion", 5);
    if (c->mqtt_version != 5 && c->mqtt_version != 4 && c->mqtt_version != 3)
        doc_report(rep, 1, c->doc, "thingsboard.mqttVersion", "expected 5, 4 (3.1.1) or 3 (3.1)");
    c->remote_configuration = get_bool(tb, "remoteConfiguration", 0);
    c->remote_shell = get_bool(tb, "remoteShell", 0);
    c->latency_debug = get_bool(tb, "latencyDebugMode", 0);
    c->handle_device_renaming =
        get_bool(tb, "handleDeviceRenaming", get_bool(c->doc->root, "handleDeviceRenaming", 1));
    json_t *st = json_object_get(tb, "statistics");
    if (json_is_object(st)) check_fields(rep, c->doc, st, "thingsboard.statistics", stats_fields);
    c->stats_enable = get_bool(st, "enable", 1);
    c->stats_period_s = get_int(st, "statsSendPeriodInSeconds", 60);
    if (c->stats_period_s < 10) c->stats_period_s = 10;
    c->custom_stats_period_s = get_int(st, "customStatsSendPeriodInSeconds", 3600);
    c->custom_stats_enable = get_bool(st, "enableCustom", c->stats_enable);
    c->custom_stats_file = dup_str(st, "configuration", NULL);
    json_t *df = json_object_get(tb, "deviceFiltering");
    if (json_is_object(df)) check_fields(rep, c->doc, df, "thingsboard.deviceFiltering", filter_fields);
    c->allow_reboot = get_bool(tb, "allowReboot", 0);
    c->reboot_command = dup_str(tb, "rebootCommand", "shutdown -r now");
    c->filter_enable = get_bool(df, "enable", 0);
    c->filter_file = dup_str(df, "filterFile", "list.json");
    c->max_payload_size = get_int(tb, "maxPayloadSizeBytes", 8196);
    if (c->max_payload_size < 256)
        doc_report(rep, 1, c->doc, "thingsboard.maxPayloadSizeBytes", "expected >= 256");
    c->min_pack_send_delay_ms = get_int(tb, "minPackSendDelayMS", 50);
    c->check_connectors_s = get_int(tb, "checkConnectorsConfigurationInSeconds", 60);
    tbgw_err e;
    if (tbgw_config_parse_rs(json_object_get(tb, "reportStrategy"), "thingsboard.reportStrategy", &c->rs,
                             &e)) {
        tbgw_doc_prefix_error(c->doc, &e);
        report(rep, 1, e.msg);
    }
    if (c->rs.type == TBGW_RS_UNSET) c->rs.type = TBGW_RS_ON_RECEIVED;
    c->rs_disabled = c->rs.type == TBGW_RS_DISABLED;
    /* The reference subtracts 10 ms from the gateway-level period (spec §4.1). */
    if (c->rs.period_ms > 10) c->rs.period_ms -= 10;
    json_t *act = json_object_get(tb, "checkingDeviceActivity");
    if (json_is_object(act))
        check_fields(rep, c->doc, act, "thingsboard.checkingDeviceActivity", activity_fields);
    c->inactivity_check = get_bool(act, "checkDeviceInactivity", 0);
    c->inactivity_timeout_s = get_int(act, "inactivityTimeoutSeconds", 50);
    c->inactivity_period_s = get_int(act, "inactivityCheckPeriodSeconds", 1);
    static const char *const rl_keys[6] = {"rateLimits",         "dpRateLimits",
                                           "messagesRateLimits", "deviceMessagesRateLimits",
                                           "deviceRateLimits",   "deviceDpRateLimits"};
    for (int i = 0; i < 6; i++) c->rate_limits[i] = dup_str(tb, rl_keys[i], NULL);
    c->session_limits_timeout_ms = get_int(tb, "sessionLimitsTimeoutMs", 10000);
    c->device_rpc_timeout_ms = get_int(tb, "deviceRpcTimeoutMs", 60000);
    c->reconnect_max_ms = get_int(tb, "reconnectMaxDelayMs", 10000);
    load_security(c, tb, rep);
}

/* tbgw extension: "metrics": {"enabled": false, "port": 9100, "host": "127.0.0.1"}. */
static void load_metrics(tbgw_config *c, const json_t *root, tbgw_cfg_report *rep) {
    json_t *m = json_object_get(root, "metrics");
    if (json_is_object(m)) check_fields(rep, c->doc, m, "metrics", metrics_fields);
    c->metrics_enable = get_bool(m, "enabled", 0);
    c->metrics_port = get_int(m, "port", 9100);
    c->metrics_host = dup_str(m, "host", "127.0.0.1");
    if (c->metrics_port < 0 || c->metrics_port > 65535)
        doc_report(rep, 1, c->doc, "metrics.port", "expected 0..65535 (0 = any free port)");
}

static void make_id(const char *name, char out[37]) {
    /* A stable id derived from the connector name (the file is never rewritten behind the user's back). */
    unsigned char h[16];
    uint64_t a = 1469598103934665603ull, b = 0x9E3779B97F4A7C15ull;
    for (const char *p = name; *p; p++) {
        a = (a ^ (unsigned char)*p) * 1099511628211ull;
        b = (b ^ (unsigned char)*p) * 0xff51afd7ed558ccdull;
    }
    memcpy(h, &a, 8);
    memcpy(h + 8, &b, 8);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x50);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0], h[1],
             h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
}

static void load_connector(tbgw_config *c, const json_t *e, int idx, tbgw_conn_entry *ce,
                           tbgw_cfg_report *rep) {
    char path[64];
    if (idx >= 0)
        snprintf(path, sizeof path, "connectors[%d]", idx);
    else
        snprintf(path, sizeof path, "connector");
    const tbgw_doc *md = idx >= 0 ? c->doc : NULL; /* remote entries have no file */
    check_fields(rep, md, e, path, conn_fields);
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *name = json_string_value(json_object_get(e, "name"));
    if (!type || !name) return;
    ce->type = strdup(type);
    for (char *p = ce->type; *p; p++) *p = (char)tolower((unsigned char)*p);
    ce->name = strdup(name);
    ce->configuration = dup_str(e, "configuration", NULL);
    ce->klass = dup_str(e, "class", NULL);
    char tp[80];
    snprintf(tp, sizeof tp, "%s.type", path);
    const char *plugin = json_string_value(json_object_get(e, "plugin"));
    if (!tbgw_registry_is_builtin(ce->type)) {
        /* Custom connector: a shared object. Either "plugin" (tbgw) or
         * extensions/<type>/<class or type>.so next to the configuration, like the reference's
         * extensions/<type>/ folder for Python classes. */
        char *so;
        if (plugin) {
            so = tbgw_config_resolve(c, plugin);
        } else {
            tbgw_buf b;
            tbgw_buf_init(&b);
            tbgw_buf_printf(&b, "%s/extensions/%s/%s.so", c->dir, ce->type, ce->klass ? ce->klass : ce->type);
            so = b.p;
        }
        if (access(so, R_OK) == 0) {
            ce->plugin = so;
        } else {
            free(so);
            if (strcmp(ce->type, "grpc") == 0)
                doc_report(rep, 1, md, tp,
                           "connector \"%s\": gRPC connectors (separate programs speaking the gateway's gRPC "
                           "API) are not supported by tbgw; write it as a connector plugin (.so, see "
                           "docs/PLUGINS.md) or use the built-in connector of that protocol",
                           name);
            else if (tbgw_registry_is_known_type(ce->type))
                doc_report(rep, 1, md, tp,
                           "connector \"%s\": type \"%s\" is not available in this build of tbgw", name,
                           type);
            else
                doc_report(
                    rep, 1, md, tp,
                    "connector \"%s\": unknown connector type \"%s\" (no built-in connector and no plugin "
                    "extensions/%s/%s.so)",
                    name, type, ce->type, ce->klass ? ce->klass : ce->type);
        }
    }
    json_t *inline_cfg = json_object_get(e, "configurationJson");
    tbgw_err err;
    if (json_is_object(inline_cfg)) {
        char *text = tbgw_json_dumps(inline_cfg, 2);
        char label[512];
        if (md)
            snprintf(label, sizeof label, "%s (%s.configurationJson)", md->path, path);
        else
            snprintf(label, sizeof label, "%s (remote configurationJson)", name);
        ce->doc = tbgw_doc_parse_json(label, text, strlen(text), &err);
        free(text);
    } else if (ce->configuration) {
        ce->config_path = tbgw_config_resolve(c, ce->configuration);
        ce->doc = tbgw_doc_load(ce->config_path, &err);
        if (!ce->doc) {
            if (err.code == TBGW_ENOENT) {
                char cp[80];
                snprintf(cp, sizeof cp, "%s.configuration", path);
                doc_report(rep, 1, md, cp, "connector \"%s\": %s", name, err.msg);
            } else {
                report(rep, 1, err.msg);
            }
            return;
        }
    } else {
        doc_report(rep, 1, md, path,
                   "connector \"%s\": needs \"configuration\" (file) or \"configurationJson\"", name);
        return;
    }
    if (!ce->doc) {
        report(rep, 1, err.msg);
        return;
    }
    if (!json_is_object(ce->doc->root)) {
        tbgw_doc_error(ce->doc, &err, NULL, "connector configuration must be a JSON object");
        report(rep, 1, err.msg);
        return;
    }
    const char *id = json_string_value(json_object_get(ce->doc->root, "id"));
    if (!id) id = json_string_value(json_object_get(e, "id"));
    char gen[37];
    if (!id) {
        make_id(name, gen);
        id = gen;
    }
    ce->id = strdup(id);
    json_t *rs = json_object_get(ce->doc->root, "reportStrategy");
    if (!rs) rs = json_object_get(e, "reportStrategy");
    if (tbgw_config_parse_rs(rs, "reportStrategy", &ce->rs, &err)) {
        tbgw_doc_prefix_error(ce->doc, &err);
        report(rep, 1, err.msg);
    }
    /* The gateway sets the connector's name from the list entry. */
    json_object_set_new(ce->doc->root, "name", json_string(name));
}

tbgw_config *tbgw_config_load(const char *path, tbgw_cfg_report *rep) {
    tbgw_err err;
    tbgw_config *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->doc = tbgw_doc_load(path, &err);
    if (!c->doc) {
        report(rep, 1, err.msg);
        tbgw_config_free(c);
        return NULL;
    }
    char *tmp = strdup(path);
    c->dir = strdup(dirname(tmp));
    free(tmp);
    json_t *root = c->doc->root;
    if (!json_is_object(root)) {
        doc_report(rep, 1, c->doc, NULL, "the gateway configuration must be a JSON object");
        tbgw_config_free(c);
        return NULL;
    }
    check_fields(rep, c->doc, root, "", top_fields);
    json_t *tb = json_object_get(root, "thingsboard");
    if (json_is_object(tb)) {
        apply_env(tb);
        load_thingsboard(c, tb, rep);
    }
    load_metrics(c, root, rep);
    c->storage = json_object_get(root, "storage");
    if (json_is_object(c->storage)) check_fields(rep, c->doc, c->storage, "storage", storage_fields);
    c->grpc = json_object_get(root, "grpc");
    if (json_is_true(json_object_get(c->grpc, "enabled")))
        doc_report(rep, 0, c->doc, "grpc.enabled",
                   "gRPC connectors are not supported by tbgw; the section is ignored");
    json_t *conns = json_object_get(root, "connectors");
    if (json_is_array(conns) && json_array_size(conns)) {
        c->conns = calloc(json_array_size(conns), sizeof *c->conns);
        size_t i;
        json_t *e;
        json_array_foreach(conns, i, e) {
            char p[64];
            snprintf(p, sizeof p, "connectors[%zu]", i);
            if (!json_is_object(e)) {
                doc_report(rep, 1, c->doc, p,
                           "expected an object with \"type\", \"name\" and \"configuration\"");
                continue;
            }
            load_connector(c, e, (int)i, &c->conns[c->n_conns], rep);
            if (c->conns[c->n_conns].name) {
                for (size_t j = 0; j < c->n_conns; j++)
                    if (strcmp(c->conns[j].name, c->conns[c->n_conns].name) == 0)
                        doc_report(rep, 1, c->doc, p, "duplicate connector name \"%s\"", c->conns[j].name);
                c->n_conns++;
            }
        }
    }
    if (rep->errors) {
        tbgw_config_free(c);
        return NULL;
    }
    return c;
}

void tbgw_config_entry_free(tbgw_conn_entry *e) {
    free(e->type);
    free(e->name);
    free(e->configuration);
    free(e->config_path);
    free(e->klass);
    free(e->plugin);
    free(e->id);
    tbgw_doc_free(e->doc);
}

void tbgw_security_clear(tbgw_security *s) {
    free(s->access_token);
    free(s->client_id);
    free(s->username);
    free(s->password);
    free(s->ca_cert);
    free(s->cert);
    free(s->private_key);
    memset(s, 0, sizeof *s);
}

void tbgw_config_free(tbgw_config *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_conns; i++) tbgw_config_entry_free(&c->conns[i]);
    free(c->conns);
    free(c->host);
    free(c->filter_file);
    free(c->custom_stats_file);
    free(c->reboot_command);
    free(c->metrics_host);
    tbgw_security_clear(&c->sec);
    for (int i = 0; i < 6; i++) free(c->rate_limits[i]);
    tbgw_doc_free(c->doc);
    free(c->dir);
    free(c);
}

tbgw_conn_entry *tbgw_config_entry_new(tbgw_config *c, const json_t *list_entry, FILE *errors) {
    tbgw_conn_entry *ce = calloc(1, sizeof *ce);
    if (!ce) return NULL;
    tbgw_cfg_report rep = {0, 0, errors};
    load_connector(c, list_entry, -1, ce, &rep);
    if (rep.errors || !ce->doc || !ce->id) {
        tbgw_config_entry_free(ce);
        free(ce);
        return NULL;
    }
    return ce;
}

void tbgw_config_apply_log_levels(const json_t *logs) {
    json_t *root = json_object_get(logs, "root");
    json_t *lvl = json_object_get(root, "level");
    if (json_is_string(lvl) && tbgw_level_parse(json_string_value(lvl)) >= 0)
        tbgw_log_set_level(NULL, tbgw_level_parse(json_string_value(lvl)));
    json_t *loggers = json_object_get(logs, "loggers");
    const char *name;
    json_t *l;
    json_object_foreach(loggers, name, l) {
        json_t *v = json_object_get(l, "level");
        int level = -1;
        if (json_is_string(v)) level = tbgw_level_parse(json_string_value(v));
        if (json_is_integer(v)) level = (int)json_integer_value(v);
        if (level >= 0) tbgw_log_set_level(name, level);
    }
}
