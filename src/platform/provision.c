/* Gateway provisioning (see provision.h). Runs before the main session, on the main thread. */
#include "platform/provision.h"

#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/time.h"

#define REQUEST_TOPIC  "/provision/request"
#define RESPONSE_TOPIC "/provision/response"

static void random_lower(char *out, size_t n) {
    unsigned char r[64];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, r, n < sizeof r ? n : sizeof r) : -1;
    if (fd >= 0) close(fd);
    for (size_t i = 0; i < n; i++) {
        unsigned v = got > (ssize_t)i ? r[i] : (unsigned)(tbgw_now_ms() >> (i % 8)) + (unsigned)i * 7919u;
        out[i] = (char)('a' + v % 26);
    }
    out[n] = 0;
}

static char *path_in(const char *dir, const char *name) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_printf(&b, "%s/%s", dir, name);
    return b.p;
}

/* A new EC P-256 key and a self-signed certificate (CN = device name) for X.509 provisioning. */
static char *make_cert(const char *dir, const char *cn, tbgw_err *err) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    char *pem = NULL;
    if (!key || !x) goto done;
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(tbgw_now_ms() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
    X509_set_version(x, 2);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256())) goto done;
    char *cp = path_in(dir, "cert.pem"), *kp = path_in(dir, "key.pem");
    FILE *cf = fopen(cp, "w");
    int kfd = open(kp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *kf = kfd >= 0 ? fdopen(kfd, "w") : NULL;
    int ok = cf && kf && PEM_write_X509(cf, x) && PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL);
    if (cf) fclose(cf);
    if (kf)
        fclose(kf);
    else if (kfd >= 0)
        close(kfd);
    if (!ok) {
        tbgw_err_set(err, TBGW_EIO, "cannot write %s and %s: %s", cp, kp, strerror(errno));
    } else {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && PEM_write_bio_X509(b, x)) {
            char *data;
            long n = BIO_get_mem_data(b, &data);
            pem = strndup(data, (size_t)n);
        }
        BIO_free(b);
    }
    free(cp);
    free(kp);
done:
    if (!pem && !err->code) tbgw_err_set(err, TBGW_EIO, "cannot generate an X.509 certificate");
    X509_free(x);
    EVP_PKEY_free(key);
    return pem;
}

static const char *str_or(const json_t *o, const char *k, const char *def) {
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : def;
}

json_t *tbgw_provision_request(const json_t *prov, const char *dir, tbgw_err *err) {
    const char *key = str_or(prov, "provisionDeviceKey", NULL),
               *secret = str_or(prov, "provisionDeviceSecret", NULL);
    if (!key || !secret) {
        tbgw_err_set(err, TBGW_EINVAL, "thingsboard.provisioning.%s: required (from the device profile)",
                     key ? "provisionDeviceSecret" : "provisionDeviceKey");
        return NULL;
    }
    const char *type = str_or(prov, "type", "ACCESS_TOKEN");
    char rnd[4][16], dname[32];
    for (int i = 0; i < 4; i++) random_lower(rnd[i], 15);
    snprintf(dname, sizeof dname, "Gateway %.5s", rnd[3]);
    const char *device = str_or(prov, "deviceName", dname);
    json_t *r = json_pack("{s:s,s:s,s:s,s:b}", "provisionDeviceKey", key, "provisionDeviceSecret", secret,
                          "deviceName", device, "gateway", 1);
    if (strcmp(type, "ACCESS_TOKEN") == 0) {
        json_object_set_new(r, "token", json_string(str_or(prov, "access_token", rnd[0])));
    } else if (strcmp(type, "MQTT_BASIC") == 0) {
        json_object_set_new(r, "username", json_string(str_or(prov, "username", rnd[0])));
        json_object_set_new(r, "password", json_string(str_or(prov, "password", rnd[1])));
        json_object_set_new(r, "clientId", json_string(str_or(prov, "client_id", rnd[2])));
    } else if (strcmp(type, "X509_CERTIFICATE") == 0) {
        char *pem = make_cert(dir, device, err);
        if (!pem) {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "hash", json_string(pem));
        free(pem);
    } else {
        tbgw_err_set(err, TBGW_EINVAL,
                     "thingsboard.provisioning.type: expected ACCESS_TOKEN, MQTT_BASIC or X509_CERTIFICATE, "
                     "got \"%s\"",
                     type);
        json_decref(r);
        return NULL;
    }
    json_object_set_new(r, "credentialsType", json_string(type));
    return r;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

int tbgw_provision_apply(tbgw_config *cfg, const json_t *creds, const char *source, tbgw_err *err) {
    tbgw_security *s = &cfg->sec;
    const char *type = json_string_value(json_object_get(creds, "credentialsType"));
    json_t *val = json_object_get(creds, "credentialsValue");
    if (!type) return tbgw_err_set(err, TBGW_EINVAL, "%s: credentialsType missing", source);
    if (strcmp(type, "ACCESS_TOKEN") == 0) {
        if (!json_is_string(val))
            return tbgw_err_set(err, TBGW_EINVAL, "%s: credentialsValue (token) missing", source);
        s->type = TBGW_SEC_ACCESS_TOKEN;
        s->access_token = strdup(json_string_value(val));
        s->tls = cfg->port == 8883;
    } else if (strcmp(type, "MQTT_BASIC") == 0) {
        if (!json_is_object(val))
            return tbgw_err_set(err, TBGW_EINVAL,
                                "%s: credentialsValue {clientId, userName, password} missing", source);
        s->type = TBGW_SEC_USERNAME_PASSWORD;
        s->client_id = dup_or_null(json_string_value(json_object_get(val, "clientId")));
        s->username = dup_or_null(json_string_value(json_object_get(val, "userName")));
        if (!s->username) s->username = dup_or_null(json_string_value(json_object_get(val, "username")));
        s->password = dup_or_null(json_string_value(json_object_get(val, "password")));
        s->tls = cfg->port == 8883;
    } else if (strcmp(type, "X509_CERTIFICATE") == 0) {
        s->type = TBGW_SEC_TLS_PRIVATE_KEY;
        s->cert = path_in(cfg->dir, "cert.pem");
        s->private_key = path_in(cfg->dir, "key.pem");
        const char *ca = json_string_value(json_object_get(creds, "caCert"));
        s->ca_cert = ca ? tbgw_config_resolve(cfg, ca) : NULL;
        s->tls = 1;
        if (access(s->cert, R_OK) != 0 || access(s->private_key, R_OK) != 0)
            return tbgw_err_set(err, TBGW_EINVAL, "%s: X.509 credentials need %s and %s", source, s->cert,
                                s->private_key);
    } else {
        return tbgw_err_set(err, TBGW_EINVAL, "%s: unknown credentialsType \"%s\"", source, type);
    }
    return 0;
}

/* ---- the provisioning session -------------------------------------------------------------- */

typedef struct prov_sess {
    char *body;
    json_t *answer;
    int subscribed, connected, refused;
    tbgw_logger *log;
} prov_sess;

static void p_on_connect(struct mosquitto *m, void *ud, int rc) {
    prov_sess *s = ud;
    if (rc != 0) {
        s->refused = rc;
        return;
    }
    s->connected = 1;
    mosquitto_subscribe(m, NULL, RESPONSE_TOPIC, 1);
}

static void p_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted) {
    prov_sess *s = ud;
    (void)mid;
    (void)n;
    (void)granted;
    if (s->subscribed) return;
    s->subscribed = 1;
    mosquitto_publish(m, NULL, REQUEST_TOPIC, (int)strlen(s->body), s->body, 1, false);
}

static void p_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    prov_sess *s = ud;
    (void)m;
    json_error_t je;
    json_t *j = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, &je);
    if (!json_is_object(j)) {
        TBGW_WARNF(s->log, "provisioning: unreadable answer on %s ignored", msg->topic);
        json_decref(j);
        return;
    }
    json_decref(s->answer);
    s->answer = j;
}

static int run_session(const tbgw_config *cfg, prov_sess *s, int timeout_s, tbgw_err *err) {
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(NULL, true, s);
    if (!m) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    mosquitto_connect_callback_set(m, p_on_connect);
    mosquitto_subscribe_callback_set(m, p_on_subscribe);
    mosquitto_message_callback_set(m, p_on_message);
    mosquitto_username_pw_set(m, "provision", NULL);
    if (cfg->port == 8883) { /* as the reference: TLS without verification for this session */
        mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        mosquitto_tls_opts_set(m, 0, "tlsv1.2", NULL);
        mosquitto_tls_insecure_set(m, true);
    }
    int64_t deadline = tbgw_mono_ms() + (int64_t)timeout_s * 1000;
    int rc = MOSQ_ERR_NO_CONN;
    char last[200] = "no connection";
    while (!s->answer && tbgw_mono_ms() < deadline) {
        if (rc != MOSQ_ERR_SUCCESS) {
            s->subscribed = s->connected = 0;
            rc = mosquitto_connect(m, cfg->host, cfg->port, 30);
            if (rc != MOSQ_ERR_SUCCESS) {
                snprintf(last, sizeof last, "%s",
                         rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                usleep(500 * 1000);
                continue;
            }
        }
        rc = mosquitto_loop(m, 100, 1);
        if (s->refused) {
            snprintf(last, sizeof last, "connection refused (code %d)", s->refused);
            s->refused = 0;
            rc = MOSQ_ERR_CONN_REFUSED;
        }
        if (rc != MOSQ_ERR_SUCCESS) usleep(200 * 1000);
    }
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    if (!s->answer)
        return tbgw_err_set(
            err, TBGW_ETIMEDOUT,
            "provisioning: no answer from %s:%d on %s within %d s (%s; check thingsboard.host/port and "
            "that the device profile allows provisioning)",
            cfg->host, cfg->port, RESPONSE_TOPIC, timeout_s, s->connected ? "connected, request sent" : last);
    return 0;
}

static int save_creds(const char *path, const json_t *creds, tbgw_err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return tbgw_err_set(err, TBGW_EIO, "cannot write %s: %s", tmp, strerror(errno));
    char *text = json_dumps(creds, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t n = text ? strlen(text) : 0;
    int ok = text && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    free(text);
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return tbgw_err_set(err, TBGW_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

static int provision_now(tbgw_config *cfg, const json_t *prov, const char *credpath, tbgw_err *err) {
    tbgw_logger *log = tbgw_logger_get("tb_connection");
    json_t *req = tbgw_provision_request(prov, cfg->dir, err);
    if (!req) return err->code;
    json_t *to = json_object_get(prov, "timeoutSeconds");
    int timeout = json_is_integer(to) && json_integer_value(to) > 0 ? (int)json_integer_value(to) : 60;
    prov_sess s = {json_dumps(req, JSON_COMPACT), NULL, 0, 0, 0, log};
    TBGW_INFOF(log, "provisioning \"%s\" (%s) at %s:%d",
               json_string_value(json_object_get(req, "deviceName")),
               json_string_value(json_object_get(req, "credentialsType")), cfg->host, cfg->port);
    int rc = run_session(cfg, &s, timeout, err);
    free(s.body);
    if (rc) {
        json_decref(req);
        return rc;
    }
    json_t *a = s.answer;
    const char *status = str_or(a, "status", str_or(a, "provisionDeviceStatus", ""));
    if (strcmp(status, "SUCCESS") != 0) {
        rc = tbgw_err_set(err, TBGW_EPROTO, "provisioning refused by ThingsBoard: %s",
                          str_or(a, "errorMsg", *status ? status : "no status in the answer"));
        json_decref(a);
        json_decref(req);
        return rc;
    }
    /* the answer is saved as received; what the platform left out comes from our request */
    const char *type = json_string_value(json_object_get(req, "credentialsType"));
    if (!json_object_get(a, "credentialsType"))
        json_object_set(a, "credentialsType", json_object_get(req, "credentialsType"));
    if (!json_object_get(a, "credentialsValue")) {
        if (strcmp(type, "ACCESS_TOKEN") == 0)
            json_object_set(a, "credentialsValue", json_object_get(req, "token"));
        else if (strcmp(type, "MQTT_BASIC") == 0)
            json_object_set_new(a, "credentialsValue",
                                json_pack("{s:O,s:O,s:O}", "clientId", json_object_get(req, "clientId"),
                                          "userName", json_object_get(req, "username"), "password",
                                          json_object_get(req, "password")));
    }
    const char *ca = json_string_value(json_object_get(prov, "caCert"));
    if (ca && strcmp(type, "X509_CERTIFICATE") == 0) json_object_set_new(a, "caCert", json_string(ca));
    json_decref(req);
    rc = save_creds(credpath, a, err);
    if (!rc) rc = tbgw_provision_apply(cfg, a, credpath, err);
    if (!rc) TBGW_INFOF(log, "provisioned; credentials saved to %s", credpath);
    json_decref(a);
    return rc;
}

/* TB_GW_PROVISIONING_DEVICE_* (docker images): the credentials type follows from what is set. */
static json_t *env_provisioning(void) {
    const char *key = getenv("TB_GW_PROVISIONING_DEVICE_KEY"),
               *secret = getenv("TB_GW_PROVISIONING_DEVICE_SECRET");
    if (!key || !*key || !secret || !*secret) return NULL;
    static const char *const direct[] = {"TB_GW_ACCESS_TOKEN", "TB_GW_USERNAME", "TB_GW_PASSWORD",
                                         "TB_GW_CLIENT_ID"};
    for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
        if (getenv(direct[i]) && *getenv(direct[i])) return NULL; /* explicit credentials win */
    json_t *p = json_pack("{s:s,s:s,s:s}", "provisionDeviceKey", key, "provisionDeviceSecret", secret, "type",
                          "ACCESS_TOKEN");
    static const char *const map[][2] = {{"TB_GW_PROVISIONING_DEVICE_NAME", "deviceName"},
                                         {"TB_GW_PROVISIONING_DEVICE_ACCESS_TOKEN", "access_token"},
                                         {"TB_GW_PROVISIONING_DEVICE_USERNAME", "username"},
                                         {"TB_GW_PROVISIONING_DEVICE_PASSWORD", "password"},
                                         {"TB_GW_PROVISIONING_DEVICE_CLIENT_ID", "client_id"},
                                         {"TB_GW_PROVISIONING_DEVICE_CA_CERT_FILENAME", "caCert"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i][0]);
        if (!v || !*v) continue;
        json_object_set_new(p, map[i][1], json_string(v));
        if (i >= 2 && i <= 4) json_object_set_new(p, "type", json_string("MQTT_BASIC"));
        if (i == 5) json_object_set_new(p, "type", json_string("X509_CERTIFICATE"));
    }
    return p;
}

int tbgw_provision(tbgw_config *cfg, tbgw_err *err) {
    json_t *tb = json_object_get(cfg->doc->root, "thingsboard");
    json_t *envp = env_provisioning();
    json_t *prov = envp ? envp : json_object_get(tb, "provisioning");
    if (!envp && (json_is_object(json_object_get(tb, "security")) || !json_is_object(prov))) return 0;
    tbgw_security_clear(&cfg->sec);
    char *credpath = path_in(cfg->dir, ".credentials");
    int rc;
    if (access(credpath, F_OK) == 0) {
        json_error_t je;
        json_t *c = json_load_file(credpath, 0, &je);
        if (!c)
            rc = tbgw_err_set(err, TBGW_EINVAL, "%s:%d:%d: %s (delete the file to provision again)", credpath,
                              je.line, je.column, je.text);
        else
            rc = tbgw_provision_apply(cfg, c, credpath, err);
        if (!rc)
            TBGW_INFOF(tbgw_logger_get("tb_connection"), "using provisioned credentials from %s", credpath);
        json_decref(c);
    } else {
        rc = provision_now(cfg, prov, credpath, err);
    }
    free(credpath);
    json_decref(envp);
    return rc;
}
