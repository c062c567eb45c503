/* Remote configuration (spec §1.9): the gateway's own attributes describe its configuration; shared
 * attributes from the platform change it. Safe apply: everything is validated first, a connector
 * is swapped only when its new instance was created, unchanged values are ignored (the storage is
 * never recreated on a reconnect), accepted files are written atomically with backups and echoed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "core/gateway.h"
#include "core/gateway_int.h"
#include "platform/tb_codec.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log_config.h"
#include "util/time.h"

#define BACKUPS 5

static json_t *with_ts(const json_t *v) {
    json_t *o = !v ? json_object() : json_is_object(v) ? json_deep_copy(v) : json_pack("{s:O}", "value", v);
    json_object_set_new(o, "ts", json_integer(tbgw_now_ms()));
    return o;
}

static json_t *without_ts(const json_t *v) {
    json_t *o = json_deep_copy(v);
    if (json_is_object(o)) json_object_del(o, "ts");
    return o;
}

static void publish_own_attrs(tbgw_gateway *gw, json_t *attrs) {
    tbgw_gw_store_own(gw, attrs, 0);
    json_decref(attrs);
}

static void report_error(tbgw_gateway *gw, const char *key, const char *text) {
    TBGW_ERRORF(gw->log, "remote configuration \"%s\" refused: %s", key, text);
    publish_own_attrs(gw, json_pack("{s:{s:s,s:s,s:I}}", "remoteConfigurationError", "key", key, "error",
                                    text, "ts", (json_int_t)tbgw_now_ms()));
}

static json_t *connector_attr(conn_inst *ci) {
    tbgw_conn_entry *e = ci->entry;
    json_t *tree = tbgw_doc_tree(e->doc), *cj = json_deep_copy(tree);
    json_decref(tree);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:b,s:I}", "name", e->name, "type", e->type,
                          "configuration", e->configuration ? e->configuration : "", "id", e->id,
                          "configurationJson", cj, "logLevel", tbgw_level_name(ci->host.log->level),
                          "enableRemoteLogging", 0, "ts", (json_int_t)tbgw_now_ms());
    return o;
}

static json_t *active_list(tbgw_gateway *gw) {
    json_t *a = json_array();
    for (size_t i = 0; i < gw->n_conns; i++)
        if (gw->conns[i]) json_array_append_new(a, json_string(gw->conns[i]->entry->name));
    return a;
}

static json_t *read_logs_json(tbgw_gateway *gw) {
    char *p = tbgw_config_resolve(gw->cfg, "logs.json");
    json_t *j = p ? json_load_file(p, 0, NULL) : NULL;
    free(p);
    return j ? j : json_object();
}

void tbgw_remote_publish_all(tbgw_gateway *gw) {
    json_t *root = gw->cfg->doc->root;
    json_t *attrs = json_object();
    json_object_set_new(attrs, "general_configuration", with_ts(json_object_get(root, "thingsboard")));
    json_t *st = json_object_get(root, "storage");
    json_object_set_new(attrs, "storage_configuration", with_ts(st));
    json_t *grpc = json_object_get(root, "grpc");
    json_object_set_new(attrs, "grpc_configuration", with_ts(grpc));
    json_t *logs = read_logs_json(gw);
    json_object_set_new(attrs, "logs_configuration", with_ts(logs));
    json_decref(logs);
    json_object_set_new(attrs, "active_connectors", active_list(gw));
    json_object_set_new(attrs, "Version", json_string(TBGW_VERSION));
    publish_own_attrs(gw, attrs);
    for (size_t i = 0; i < gw->n_conns; i++) /* one message per connector: they can be large */
        if (gw->conns[i])
            publish_own_attrs(gw,
                              json_pack("{s:o}", gw->conns[i]->entry->name, connector_attr(gw->conns[i])));
}

void tbgw_remote_on_ready(tbgw_gateway *gw) {
    char topic[80];
    int64_t n = ++gw->own_attr_req_counter;
    snprintf(topic, sizeof topic, "%s%lld", TB_TOPIC_ME_ATTR_REQUEST, (long long)n);
    const char *keys =
        gw->cfg->remote_configuration
            ? "{\"sharedKeys\":\"RemoteLoggingLevel,general_configuration,storage_configuration,"
              "grpc_configuration,logs_configuration,active_connectors\"}"
            : "{\"sharedKeys\":\"RemoteLoggingLevel\"}";
    tbgw_gw_publish(gw, topic, keys, strlen(keys), 1);
    if (gw->cfg->remote_configuration) { /* and every shared attribute: connector configurations */
        n = ++gw->own_attr_req_counter;
        snprintf(topic, sizeof topic, "%s%lld", TB_TOPIC_ME_ATTR_REQUEST, (long long)n);
        tbgw_gw_publish(gw, topic, "{}", 2, 1);
    }
}

/* ---- writing the configuration ------------------------------------------------------------ */

static int write_json(tbgw_gateway *gw, const char *path, const json_t *j) {
    char *text = tbgw_json_dumps(j, 2);
    int rc = text ? tbgw_file_write_atomic(path, text, strlen(text), BACKUPS) : TBGW_ENOMEM;
    free(text);
    if (rc) TBGW_ERRORF(gw->log, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

static int save_main(tbgw_gateway *gw) {
    return write_json(gw, gw->cfg->doc->path, gw->cfg->doc->root);
}

static void list_set(tbgw_gateway *gw, const char *name, json_t *entry) {
    json_t *root = gw->cfg->doc->root;
    json_t *list = json_object_get(root, "connectors");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(root, "connectors", list);
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0) {
            if (entry)
                json_array_set_new(list, i, entry);
            else
                json_array_remove(list, i);
            return;
        }
    }
    if (entry) json_array_append_new(list, entry);
}

/* ---- connectors --------------------------------------------------------------------------- */

static conn_inst *find_conn(tbgw_gateway *gw, const char *name, size_t *idx) {
    for (size_t i = 0; i < gw->n_conns; i++)
        if (gw->conns[i] && strcmp(gw->conns[i]->entry->name, name) == 0) {
            if (idx) *idx = i;
            return gw->conns[i];
        }
    return NULL;
}

/* Re-points devices of old to repl (NULL: the connector is gone; devices are disconnected). */
static void move_devices(tbgw_gateway *gw, conn_inst *old, conn_inst *repl) {
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&gw->devs.by_name, i, &k, &v)) != 0;) {
        tbgw_device *d = v;
        if (d->owner != old) continue;
        if (repl) {
            d->owner = repl;
        } else {
            tbgw_gw_device_gone(gw, d->name);
        }
    }
}

static void remove_conn(tbgw_gateway *gw, size_t idx) {
    conn_inst *ci = gw->conns[idx];
    TBGW_INFOF(gw->log, "stopping connector \"%s\" (removed by remote configuration)", ci->entry->name);
    tbgw_conn_stop(ci, 3000);
    tbgw_gw_drain_ingress(gw); /* queued records point into ci's configuration */
    move_devices(gw, ci, NULL);
    tbgw_report_clear_connector(gw->report, ci->entry->id);
    list_set(gw, ci->entry->name, NULL);
    tbgw_conn_free(ci);
    gw->conns[idx] = NULL;
}

static int same_config(conn_inst *ci, const char *type, const json_t *cfg) {
    if (strcmp(ci->entry->type, type) != 0) return 0;
    json_t *tree = tbgw_doc_tree(ci->entry->doc), *a = json_deep_copy(tree), *b = json_deep_copy(cfg);
    json_decref(tree);
    json_object_del(a, "name");
    json_object_del(b, "name");
    int eq = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

static char *default_file(const char *name) {
    char *f = malloc(strlen(name) + 6);
    if (!f) return NULL;
    size_t k = 0;
    for (const char *p = name; *p; p++)
        f[k++] = *p == ' ' ? '_' : (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    strcpy(f + k, ".json");
    return f;
}

/* Creates (or replaces) connector `name` from cfg. Returns 0 when applied or unchanged. */
int tbgw_remote_apply_connector(tbgw_gateway *gw, const char *name, const char *type, const json_t *cfg,
                                const char *file, const char *klass, int write_files, char *errbuf,
                                size_t errlen) {
    size_t idx = 0;
    conn_inst *old = find_conn(gw, name, &idx);
    if (old && same_config(old, type, cfg)) return 0;
    char *fname = file && *file ? strdup(file) : default_file(name);
    json_t *le = json_pack("{s:s,s:s,s:s,s:O}", "type", type, "name", name, "configuration", fname,
                           "configurationJson", cfg);
    if (klass) json_object_set_new(le, "class", json_string(klass));
    char *errtext = NULL;
    size_t errsize = 0;
    FILE *ef = open_memstream(&errtext, &errsize);
    tbgw_conn_entry *ce = tbgw_config_entry_new(gw->cfg, le, ef);
    fclose(ef);
    conn_inst *ci = NULL;
    tbgw_err err = {0};
    if (ce) {
        /* an inline entry keeps the file name it will be written to */
        free(ce->config_path);
        ce->config_path = tbgw_config_resolve(gw->cfg, fname);
        ci = tbgw_conn_new(gw, ce, gw->cfg->dir, &err);
        if (!ci) {
            snprintf(errbuf, errlen, "%s", err.msg);
            tbgw_config_entry_free(ce);
            free(ce);
        }
    } else {
        snprintf(errbuf, errlen, "%s", errtext && *errtext ? errtext : "invalid connector configuration");
        size_t n = strlen(errbuf);
        while (n && errbuf[n - 1] == '\n') errbuf[--n] = 0;
    }
    free(errtext);
    if (!ci) {
        json_decref(le);
        free(fname);
        return TBGW_EINVAL; /* the old instance keeps running */
    }
    ci->owns_entry = 1;
    if (write_files) {
        json_t *body = json_deep_copy(cfg);
        write_json(gw, ci->entry->config_path, body);
        json_decref(body);
        json_object_del(le, "configurationJson");
        list_set(gw, name, json_incref(le));
        save_main(gw);
    }
    json_decref(le);
    free(fname);
    if (old) {
        TBGW_INFOF(gw->log, "replacing connector \"%s\" with its new configuration", name);
        tbgw_conn_stop(old, 3000);
        tbgw_gw_drain_ingress(gw); /* queued records point into old's configuration */
        move_devices(gw, old, ci);
        tbgw_report_clear_connector(gw->report, old->entry->id);
        tbgw_conn_free(old);
        gw->conns[idx] = ci;
    } else {
        conn_inst **nc = realloc(gw->conns, (gw->n_conns + 1) * sizeof *nc);
        if (!nc) {
            tbgw_conn_free(ci);
            return TBGW_ENOMEM;
        }
        gw->conns = nc;
        gw->conns[gw->n_conns++] = ci;
        TBGW_INFOF(gw->log, "adding connector \"%s\" (%s)", name, type);
    }
    if (tbgw_conn_start(ci)) TBGW_ERRORF(gw->log, "cannot start connector \"%s\"", name);
    return 0;
}

static void apply_connector_attr(tbgw_gateway *gw, const char *key, const json_t *v) {
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *type = json_string_value(json_object_get(v, "type"));
    const json_t *cfg = json_object_get(v, "configurationJson");
    if (!name) name = key;
    if (!type) {
        report_error(gw, key, "connector configuration without \"type\"");
        return;
    }
    if (!json_is_object(cfg)) {
        report_error(gw, key, "connector configuration without a \"configurationJson\" object");
        return;
    }
    char errbuf[600];
    int rc = tbgw_remote_apply_connector(
        gw, name, type, cfg, json_string_value(json_object_get(v, "configuration")),
        json_string_value(json_object_get(v, "class")), 1, errbuf, sizeof errbuf);
    if (rc) {
        report_error(gw, key, errbuf);
        return;
    }
    conn_inst *ci = find_conn(gw, name, NULL);
    if (ci) publish_own_attrs(gw, json_pack("{s:o}", name, connector_attr(ci)));
    publish_own_attrs(gw, json_pack("{s:o}", "active_connectors", active_list(gw)));
}

static void apply_active(tbgw_gateway *gw, const json_t *list) {
    if (!json_is_array(list)) {
        report_error(gw, "active_connectors", "expected a list of connector names");
        return;
    }
    int changed = 0;
    for (size_t i = 0; i < gw->n_conns; i++) {
        conn_inst *ci = gw->conns[i];
        if (!ci) continue;
        int listed = 0;
        size_t k;
        json_t *n;
        json_array_foreach(list, k, n) if (json_is_string(n) &&
                                           strcmp(json_string_value(n), ci->entry->name) == 0) listed = 1;
        if (!listed) {
            remove_conn(gw, i);
            changed = 1;
        }
    }
    if (changed) {
        save_main(gw);
        publish_own_attrs(gw, json_pack("{s:o}", "active_connectors", active_list(gw)));
    }
}

/* general/storage/grpc: validated as a whole new tb_gateway.json; applied by a restart. */
static void apply_section(tbgw_gateway *gw, const char *key, const char *section, const json_t *v) {
    json_t *root = gw->cfg->doc->root;
    json_t *nv = without_ts(v);
    json_t *cur = json_object_get(root, section);
    if (cur && json_equal(cur, nv)) {
        TBGW_DEBUGF(gw->log, "%s unchanged", key);
        json_decref(nv);
        return;
    }
    json_t *cand = json_deep_copy(root);
    json_object_set_new(cand, section, nv);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.candidate", gw->cfg->doc->path);
    char *text = tbgw_json_dumps(cand, 2);
    int ok = text && tbgw_file_write_atomic(tmp, text, strlen(text), 0) == 0;
    char *errtext = NULL;
    size_t errsize = 0;
    if (ok) {
        FILE *ef = open_memstream(&errtext, &errsize);
        tbgw_cfg_report rep = {0, 0, ef};
        tbgw_config *c = tbgw_config_load(tmp, &rep);
        fclose(ef);
        ok = c != NULL;
        tbgw_config_free(c);
    }
    unlink(tmp);
    if (!ok) {
        report_error(gw, key, errtext && *errtext ? errtext : "invalid configuration");
    } else if (tbgw_file_write_atomic(gw->cfg->doc->path, text, strlen(text), BACKUPS) == 0) {
        TBGW_INFOF(gw->log, "%s changed remotely: configuration saved, restarting to apply it", key);
        json_object_set(root, section, json_object_get(cand, section));
        publish_own_attrs(gw, json_pack("{s:o}", key, with_ts(json_object_get(cand, section))));
        tbgw_gw_request_stop(gw, 1);
    } else {
        report_error(gw, key, "cannot write the configuration file");
    }
    free(errtext);
    free(text);
    json_decref(cand);
}

static void apply_logs(tbgw_gateway *gw, const json_t *v) {
    json_t *nv = without_ts(v);
    json_t *cur = read_logs_json(gw);
    tbgw_err err = {0};
    if (!json_equal(cur, nv) && !json_is_object(nv)) {
        report_error(gw, "logs_configuration", "expected a logs.json object");
    } else if (!json_equal(cur, nv) && tbgw_log_check(nv, &err) != 0) {
        report_error(gw, "logs_configuration", err.msg); /* the current logging stays */
    } else if (!json_equal(cur, nv)) {
        char *p = tbgw_config_resolve(gw->cfg, "logs.json");
        if (p && write_json(gw, p, nv) == 0) {
            if (tbgw_log_configure(nv, &err) != 0) /* handlers and files, not only levels */
                TBGW_ERRORF(gw->log, "logging configuration: %s", err.msg);
            TBGW_INFOF(gw->log, "logging configuration changed remotely");
            publish_own_attrs(gw, json_pack("{s:o}", "logs_configuration", with_ts(nv)));
        }
        free(p);
    }
    json_decref(cur);
    json_decref(nv);
}

void tbgw_remote_on_attributes(tbgw_gateway *gw, const json_t *shared) {
    if (!json_is_object(shared)) return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)shared, key, v) {
        if (strstr(key, "deleted")) continue;
        if (strcmp(key, "RemoteLoggingLevel") == 0) {
            tbgw_gw_remote_logging(gw, v);
            continue;
        }
        if (!gw->cfg->remote_configuration) continue;
        if (strcmp(key, "general_configuration") == 0)
            apply_section(gw, key, "thingsboard", v);
        else if (strcmp(key, "storage_configuration") == 0)
            apply_section(gw, key, "storage", v);
        else if (strcmp(key, "grpc_configuration") == 0)
            apply_section(gw, key, "grpc", v);
        else if (strcmp(key, "logs_configuration") == 0)
            apply_logs(gw, v);
        else if (strcmp(key, "active_connectors") == 0)
            apply_active(gw, v);
        else if (json_is_object(v) && json_object_get(v, "type"))
            apply_connector_attr(gw, key, v);
        if (gw->stopping) break; /* a restart is under way */
    }
}

/* checkConnectorsConfigurationInSeconds: connector files edited on disk are applied the same way. */
void tbgw_remote_check_files(tbgw_gateway *gw) {
    for (size_t i = 0; i < gw->n_conns; i++) {
        conn_inst *ci = gw->conns[i];
        if (!ci || !ci->entry->config_path) continue;
        struct stat stt;
        if (stat(ci->entry->config_path, &stt) != 0) continue;
        int64_t mtime = (int64_t)stt.st_mtim.tv_sec * 1000000000 + stt.st_mtim.tv_nsec;
        if (!ci->file_mtime) {
            ci->file_mtime = mtime;
            continue;
        }
        if (mtime == ci->file_mtime) continue;
        ci->file_mtime = mtime;
        json_error_t je;
        json_t *cfg = json_load_file(ci->entry->config_path, 0, &je);
        char errbuf[600];
        if (!cfg) {
            snprintf(errbuf, sizeof errbuf, "%s:%d:%d: invalid JSON: %s", ci->entry->config_path, je.line,
                     je.column, je.text);
            TBGW_ERRORF(gw->log, "connector \"%s\" keeps its configuration: %s", ci->entry->name, errbuf);
            continue;
        }
        char *name = strdup(ci->entry->name), *type = strdup(ci->entry->type);
        char *file = ci->entry->configuration ? strdup(ci->entry->configuration) : NULL;
        char *klass = ci->entry->klass ? strdup(ci->entry->klass) : NULL;
        TBGW_INFOF(gw->log, "%s changed on disk", ci->entry->config_path);
        if (tbgw_remote_apply_connector(gw, name, type, cfg, file, klass, 0, errbuf, sizeof errbuf))
            TBGW_ERRORF(gw->log, "connector \"%s\" keeps its configuration: %s", name, errbuf);
        else if (find_conn(gw, name, NULL))
            find_conn(gw, name, NULL)->file_mtime = mtime;
        json_decref(cfg);
        free(name);
        free(type);
        free(file);
        free(klass);
    }
}
