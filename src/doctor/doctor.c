/* `tbgw doctor`: the configuration, the credentials, the platform, the storage and each connector's
 * peers, one line per check. */
#include "doctor/doctor.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/config.h"
#include "core/gateway.h"
#include "doctor/doctor_knx.h"
#include "proto/opcua/ua_client.h"
#include "storage/common.h"
#include "util/doc.h"

typedef struct dr_item {
    dr_status st;
    char check[48];
    char *msg, *fix;
} dr_item;

struct dr_report {
    dr_item *items;
    size_t n, cap;
};

void dr_add(dr_report *r, dr_status st, const char *check, const char *fix, const char *fmt, ...) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        dr_item *n = realloc(r->items, cap * sizeof *n);
        if (!n) return;
        r->items = n;
        r->cap = cap;
    }
    dr_item *it = &r->items[r->n++];
    it->st = st;
    snprintf(it->check, sizeof it->check, "%s", check);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&it->msg, fmt, ap) < 0) it->msg = NULL;
    va_end(ap);
    it->fix = fix ? strdup(fix) : NULL;
}

static const char *const st_names[] = {"ok", "warn", "fail"};

static void print_text(const dr_report *r) {
    for (size_t i = 0; i < r->n; i++) {
        const dr_item *it = &r->items[i];
        printf("%-4s  %-18s %s", st_names[it->st], it->check, it->msg ? it->msg : "");
        if (it->fix && it->st != DR_OK) printf(" -- fix: %s", it->fix);
        putchar('\n');
    }
}

static void print_json(const dr_report *r) {
    json_t *a = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const dr_item *it = &r->items[i];
        json_t *o = json_pack("{s:s,s:s,s:s}", "check", it->check, "status", st_names[it->st], "message",
                              it->msg ? it->msg : "");
        if (it->fix && it->st != DR_OK) json_object_set_new(o, "fix", json_string(it->fix));
        json_array_append_new(a, o);
    }
    char *s = json_dumps(a, JSON_INDENT(2));
    if (s) puts(s);
    free(s);
    json_decref(a);
}

/* ---- configuration ---- */

/* Runs the same validation as --check-config and reports every line it prints. */
static tbgw_config *check_config(dr_report *r, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    tbgw_cfg_report rep = {0, 0, mem};
    tbgw_config *cfg = mem ? tbgw_config_load(path, &rep) : NULL;
    int errors = rep.errors;
    if (cfg) errors += tbgw_gateway_check_connectors(cfg, mem, &rep.warnings);
    if (mem) fclose(mem);
    for (char *save = NULL, *l = buf ? strtok_r(buf, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        int warn = strncmp(l, "warning: ", 9) == 0;
        dr_add(r, warn ? DR_WARN : DR_FAIL, "config",
               warn ? "see the message" : "correct the file at that position", "%s", warn ? l + 9 : l);
    }
    free(buf);
    if (!cfg)
        dr_add(r, DR_FAIL, "config", "correct the errors above; the gateway does not start with them",
               "%s: %d error(s)", path, errors);
    else if (!errors)
        dr_add(r, DR_OK, "config", NULL, "%s and %zu connector file(s): no errors, %d warning(s)", path,
               cfg->n_conns, rep.warnings);
    if (cfg && errors) {
        tbgw_config_free(cfg);
        cfg = NULL;
        dr_add(r, DR_FAIL, "config", "correct the errors above", "%s: %d error(s) in connector files", path,
               errors);
    }
    return cfg;
}

/* ---- credentials ---- */

static void check_token(dr_report *r, const char *what, const char *tok) {
    if (!tok) return;
    size_t n = strlen(tok);
    int ws = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '\n' || tok[i] == '\r') nl = 1;
        if (isspace((unsigned char)tok[i])) ws = 1;
    }
    if (n == 0)
        dr_add(r, DR_FAIL, "credentials", "copy the gateway device's access token from ThingsBoard",
               "%s is empty", what);
    else if (nl)
        dr_add(r, DR_FAIL, "credentials", "remove the line break (a token copied with its newline)",
               "%s contains a line break", what);
    else if (ws)
        dr_add(r, DR_FAIL, "credentials", "remove the spaces: ThingsBoard tokens have none",
               "%s contains white space", what);
    else
        dr_add(r, DR_OK, "credentials", NULL, "%s is well-formed (%zu characters)", what, n);
}

static void check_credentials(dr_report *r, const tbgw_config *c) {
    const tbgw_security *s = &c->sec;
    switch (s->type) {
    case TBGW_SEC_ACCESS_TOKEN:
    case TBGW_SEC_TLS_ACCESS_TOKEN:
        check_token(r, "thingsboard.security.accessToken", s->access_token);
        if (s->username || s->password)
            dr_add(r, DR_WARN, "credentials", "use type usernamePassword to log in with them",
                   "username/password are set but security type accessToken ignores them");
        break;
    case TBGW_SEC_USERNAME_PASSWORD:
        if (s->access_token)
            dr_add(r, DR_WARN, "credentials", "use type accessToken to log in with the token",
                   "accessToken is set but security type usernamePassword ignores it");
        dr_add(r, DR_OK, "credentials", NULL, "username/password login (clientId %s, username %s)",
               s->client_id ? s->client_id : "-", s->username ? s->username : "-");
        break;
    case TBGW_SEC_TLS_PRIVATE_KEY:
        if (!s->cert || !s->private_key)
            dr_add(r, DR_FAIL, "credentials", "set cert and privateKey",
                   "X.509 login without certificate or key");
        break;
    }
    if (s->ca_cert || s->cert) dr_check_x509(r, "credentials", s->cert, s->private_key, s->ca_cert);
}

/* ---- storage ---- */

static void check_storage(dr_report *r, const tbgw_config *c) {
    const char *type = json_string_value(json_object_get(c->storage, "type"));
    if (!type || strcmp(type, "memory") == 0) {
        dr_add(r, DR_WARN, "storage", "use file or sqlite storage to keep data across restarts",
               "memory storage: what the platform has not acknowledged is lost when the gateway stops");
        return;
    }
    int sqlite = strcmp(type, "sqlite") == 0;
    const char *key = sqlite ? "data_file_path" : "data_folder_path";
    const char *p = json_string_value(json_object_get(c->storage, key));
    char *path = tbgw_storage_resolve(c->dir, p ? p : "./");
    if (!path) return;
    char *dir = strdup(path);
    if (sqlite && dir) {
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) *slash = 0;
    }
    /* The nearest existing folder: the gateway creates the rest. */
    char probe[4096];
    snprintf(probe, sizeof probe, "%s", dir ? dir : ".");
    struct stat st;
    while (stat(probe, &st) != 0 && strchr(probe, '/')) {
        char *slash = strrchr(probe, '/');
        if (slash == probe) {
            probe[1] = 0;
            break;
        }
        *slash = 0;
    }
    if (stat(probe, &st) != 0 || !S_ISDIR(st.st_mode)) {
        dr_add(r, DR_FAIL, "storage", "choose a folder that can be created",
               "storage.%s \"%s\": %s is not a folder", key, path, probe);
    } else if (access(probe, W_OK) != 0) {
        dr_add(r, DR_FAIL, "storage", "give the gateway's user write access, or choose another folder",
               "storage.%s \"%s\": %s is not writable by this user (uid %d)", key, path, probe,
               (int)getuid());
    } else {
        int exists = strcmp(probe, dir ? dir : "") == 0;
        dr_add(r, DR_OK, "storage", NULL, "%s storage in %s (%s, writable)", type, dir ? dir : path,
               exists ? "exists" : "will be created");
        struct statvfs vfs;
        if (statvfs(probe, &vfs) == 0 && vfs.f_blocks) {
            double total = (double)vfs.f_blocks * (double)vfs.f_frsize;
            double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
            double used_pct = 100.0 * (1.0 - (double)vfs.f_bfree / (double)vfs.f_blocks);
            double max;
            if (sqlite) {
                const json_t *sl = json_object_get(c->storage, "size_limit"),
                             *dbs = json_object_get(c->storage, "max_db_amount");
                max =
                    (sl ? json_number_value(sl) : 1024) * 1e6 * (double)(dbs ? json_integer_value(dbs) : 10);
            } else {
                const json_t *fc = json_object_get(c->storage, "max_file_count"),
                             *fb = json_object_get(c->storage, "max_file_bytes");
                max = (double)(fc ? json_integer_value(fc) : 5) *
                      (double)(fb ? json_integer_value(fb) : 64 << 20);
            }
            if (used_pct > 80)
                dr_add(r, DR_WARN, "storage.disk", "free space on that file system",
                       "the file system of %s is %.0f%% full (%.0f MB free of %.0f MB)", probe, used_pct,
                       avail / 1e6, total / 1e6);
            if (max > avail)
                dr_add(r, DR_WARN, "storage.disk", "lower the storage bounds or free space",
                       "the storage may grow to %.0f MB but only %.0f MB are free", max / 1e6, avail / 1e6);
            else if (used_pct <= 80)
                dr_add(r, DR_OK, "storage.disk", NULL,
                       "%.0f MB free (%.0f%% used); the storage is bounded at %.0f MB", avail / 1e6, used_pct,
                       max / 1e6);
        }
    }
    free(dir);
    free(path);
}

/* ---- connectors ---- */

static void check_serial(dr_report *r, const char *check, const char *what, const char *port) {
    struct stat st;
    if (stat(port, &st) != 0) {
        dr_add(r, DR_FAIL, check, "plug the adapter in, or correct the port (ls /dev/serial/by-id/)",
               "%s: serial port %s does not exist", what, port);
        return;
    }
    struct group *g = getgrgid(st.st_gid);
    const char *gname = g ? g->gr_name : "?";
    if (!S_ISCHR(st.st_mode)) {
        dr_add(r, DR_FAIL, check, "correct the port", "%s: %s is not a character device", what, port);
    } else if (access(port, R_OK | W_OK) != 0) {
        char fix[256];
        snprintf(
            fix, sizeof fix,
            "add the gateway's user to group %s (usermod -aG %s USER), or add a udev rule giving it access",
            gname, gname);
        dr_add(r, DR_FAIL, check, fix, "%s: %s is not readable and writable by this user (owner group %s)",
               what, port, gname);
    } else {
        dr_add(r, DR_OK, check, NULL, "%s: %s is readable and writable (group %s)", what, port, gname);
    }
}

static int url_host_port(const char *url, const char *scheme, int def_port, char *host, size_t host_len,
                         int *port) {
    size_t sl = strlen(scheme);
    if (strncmp(url, scheme, sl) != 0) return -1;
    const char *h = url + sl;
    const char *end = h + strcspn(h, "/?#");
    const char *colon = memchr(h, ':', (size_t)(end - h));
    size_t hl = (size_t)((colon ? colon : end) - h);
    if (hl == 0 || hl >= host_len) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = colon ? atoi(colon + 1) : def_port;
    return 0;
}

static void check_opcua(dr_report *r, const char *check, const char *dir, const json_t *srv) {
    const char *url = json_string_value(json_object_get(srv, "url"));
    char host[256];
    int port;
    if (!url || url_host_port(url, "opc.tcp://", 4840, host, sizeof host, &port) != 0) {
        dr_add(r, DR_FAIL, check, "set server.url to opc.tcp://host:port/path",
               "server.url is missing or not opc.tcp");
        return;
    }
    dr_check_tcp(r, check, "OPC-UA server", host, port, 3000);
    const json_t *id = json_object_get(srv, "identity");
    const char *itype = json_string_value(json_object_get(id, "type"));
    int certs = itype && (strcmp(itype, "cert.PEM") == 0 || strcmp(itype, "certificates") == 0);
    const char *sec = json_string_value(json_object_get(srv, "security"));
    const char *mode = json_string_value(json_object_get(id, "mode"));
    char *cert = NULL, *key = NULL, *ca = NULL;
    const char *v;
    if ((v = json_string_value(json_object_get(id, "cert")))) cert = tbgw_storage_resolve(dir, v);
    if ((v = json_string_value(json_object_get(id, "privateKey")))) key = tbgw_storage_resolve(dir, v);
    if ((v = json_string_value(json_object_get(id, "caCert")))) ca = tbgw_storage_resolve(dir, v);
    tbgw_ua_client_cfg ucfg = {0};
    ucfg.url = url;
    ucfg.timeout_ms = 3000;
    ucfg.session_timeout_ms = 60000;
    ucfg.username = json_string_value(json_object_get(id, "username"));
    ucfg.password = json_string_value(json_object_get(id, "password"));
    ucfg.security_policy = certs ? (sec ? sec : "Basic256Sha256") : NULL;
    ucfg.security_mode = mode && strcmp(mode, "Sign") == 0 ? 2 : 3;
    ucfg.cert_path = certs ? cert : NULL;
    ucfg.key_path = certs ? key : NULL;
    ucfg.ca_path = certs ? ca : NULL;
    ucfg.log = tbgw_logger_get("doctor");
    tbgw_ua_client *c = tbgw_ua_client_new(&ucfg);
    tbgw_err err = {0};
    if (c && tbgw_ua_client_connect(c, &err) == 0)
        dr_add(r, DR_OK, check, NULL, "OPC-UA %s: session opened (security %s, %s identity)", url,
               ucfg.security_policy ? ucfg.security_policy : "None",
               ucfg.username ? "username"
               : certs       ? "certificate"
                             : "anonymous");
    else
        dr_add(r, DR_FAIL, check, "check server.security and server.identity against what the server offers",
               "OPC-UA %s: %s", url, err.msg[0] ? err.msg : "cannot connect");
    if (c) {
        tbgw_ua_client_disconnect(c);
        tbgw_ua_client_free(c);
    }
    free(cert);
    free(key);
    free(ca);
}

static void check_connector(dr_report *r, const char *cfg_dir, const tbgw_conn_entry *e) {
    char check[48];
    snprintf(check, sizeof check, "connector.%s", e->type);
    const json_t *root = e->doc ? e->doc->root : NULL;
    char what[300];
    snprintf(what, sizeof what, "\"%s\"", e->name);
    if (strcmp(e->type, "mqtt") == 0) {
        const json_t *b = json_object_get(root, "broker");
        const char *host = json_string_value(json_object_get(b, "host"));
        const json_t *port = json_object_get(b, "port");
        snprintf(what, sizeof what, "\"%s\" broker", e->name);
        dr_check_tcp(r, check, what, host ? host : "localhost", port ? (int)json_integer_value(port) : 1883,
                     3000);
    } else if (strcmp(e->type, "modbus") == 0) {
        size_t i;
        const json_t *sl;
        json_array_foreach(json_object_get(json_object_get(root, "master"), "slaves"), i, sl) {
            const char *type = json_string_value(json_object_get(sl, "type"));
            const char *name = json_string_value(json_object_get(sl, "deviceName"));
            snprintf(what, sizeof what, "\"%s\" slave %s", e->name, name ? name : "?");
            if (type && strcmp(type, "serial") == 0) {
                const char *port = json_string_value(json_object_get(sl, "port"));
                check_serial(r, check, what, port ? port : "/dev/ttyUSB0");
            } else if (type && strcmp(type, "udp") == 0) {
                dr_add(r, DR_OK, check, NULL, "%s: UDP, reachability shows only in the connector's polls",
                       what);
            } else {
                const char *host = json_string_value(json_object_get(sl, "host"));
                const json_t *port = json_object_get(sl, "port");
                dr_check_tcp(r, check, what, host ? host : "localhost",
                             port ? (int)json_integer_value(port) : 502, 3000);
            }
        }
    } else if (strcmp(e->type, "opcua") == 0) {
        check_opcua(r, check, cfg_dir, json_object_get(root, "server"));
    } else if (strcmp(e->type, "knx") == 0) {
        dr_check_knx(r, check, e->name, json_object_get(root, "client"));
    } else {
        /* Any device with a serial port named in it (serial, CAN over slcan, custom serial connectors). */
        size_t i, found = 0;
        const json_t *d;
        json_array_foreach(json_object_get(root, "devices"), i, d) {
            const char *port = json_string_value(json_object_get(d, "port"));
            if (port && strncmp(port, "/dev/", 5) == 0) {
                const char *name = json_string_value(json_object_get(d, "name"));
                snprintf(what, sizeof what, "\"%s\" device %s", e->name, name ? name : "?");
                check_serial(r, check, what, port);
                found++;
            }
        }
        if (!found)
            dr_add(r, DR_OK, check, NULL,
                   "\"%s\": no peer checks for type %s (its own start-up reports them)", e->name, e->type);
    }
}

/* ---- command line ---- */

int tbgw_doctor_main(int argc, char **argv) {
    const char *path = "config/tb_gateway.json";
    int json = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (o == 'c') {
            path = optarg;
        } else if (o == 'j') {
            json = 1;
        } else {
            fprintf(
                o == 'h' ? stdout : stderr,
                "usage: tbgw doctor [-c PATH] [--json]\n"
                "Checks the configuration, the credentials, the platform (DNS, TCP, TLS, MQTT login), the\n"
                "storage and each connector's peers; one line per check; exit 1 when one failed.\n");
            return o == 'h' ? 0 : 2;
        }
    }
    dr_report r = {0};
    tbgw_config *cfg = check_config(&r, path);
    if (cfg) {
        check_credentials(&r, cfg);
        dr_platform p = {.host = cfg->host,
                         .port = cfg->port,
                         .tls = cfg->sec.tls,
                         .insecure = cfg->sec.insecure,
                         .ca = cfg->sec.ca_cert,
                         .cert = cfg->sec.cert,
                         .key = cfg->sec.private_key,
                         .timeout_ms = 3000};
        if (cfg->sec.type == TBGW_SEC_USERNAME_PASSWORD) {
            p.client_id = cfg->sec.client_id;
            p.username = cfg->sec.username;
            p.password = cfg->sec.password;
        } else if (cfg->sec.type != TBGW_SEC_TLS_PRIVATE_KEY) {
            p.token = cfg->sec.access_token;
        }
        dr_check_platform(&r, &p);
        check_storage(&r, cfg);
        for (size_t i = 0; i < cfg->n_conns; i++) check_connector(&r, cfg->dir, &cfg->conns[i]);
    }
    int failed = 0;
    for (size_t i = 0; i < r.n; i++) failed |= r.items[i].st == DR_FAIL;
    if (json)
        print_json(&r);
    else
        print_text(&r);
    for (size_t i = 0; i < r.n; i++) {
        free(r.items[i].msg);
        free(r.items[i].fix);
    }
    free(r.items);
    tbgw_config_free(cfg);
    return failed ? 1 : 0;
}
