#include "core/devices.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>
#include <tbgw/log.h>
#include <unistd.h>

static void dev_free(void *p) {
    tbgw_device *v = p;
    if (!v) return;
    free(v->name);
    free(v->renamed);
    free(v);
}

void tbgw_devices_init(tbgw_devices *d, const char *path) {
    memset(d, 0, sizeof *d);
    tbgw_hmap_init(&d->by_name);
    tbgw_hmap_init(&d->renames);
    tbgw_hmap_init(&d->strs);
    d->path = path ? strdup(path) : NULL;
}

void tbgw_devices_free(tbgw_devices *d) {
    tbgw_hmap_free(&d->by_name, dev_free);
    tbgw_hmap_free(&d->renames, free);
    tbgw_hmap_free(&d->strs, free);
    free(d->path);
}

tbgw_device *tbgw_devices_get(tbgw_devices *d, const char *name) {
    return tbgw_hmap_get(&d->by_name, name);
}

static void set_owned(char **dst, const char *s) {
    if (*dst && s && strcmp(*dst, s) == 0) return;
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

/* The shared copy of s (kept until tbgw_devices_free; NULL for NULL or out of memory). */
static const char *intern(tbgw_devices *d, const char *s) {
    if (!s) return NULL;
    char *have = tbgw_hmap_get(&d->strs, s);
    if (have) return have;
    char *n = strdup(s);
    if (!n || tbgw_hmap_put(&d->strs, s, n, NULL)) {
        free(n);
        return NULL;
    }
    return n;
}

static void set_str(tbgw_devices *d, const char **dst, const char *s) {
    if (*dst && s && strcmp(*dst, s) == 0) return;
    *dst = intern(d, s);
}

tbgw_device *tbgw_devices_add(tbgw_devices *d, const char *name, const char *type, const char *connector_name,
                              const char *connector_id, void *owner, int *is_new) {
    tbgw_device *v = tbgw_hmap_get(&d->by_name, name);
    *is_new = 0;
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v) return NULL;
        v->name = strdup(name);
        if (tbgw_hmap_put(&d->by_name, name, v, NULL)) {
            dev_free(v);
            return NULL;
        }
        const char *rn = tbgw_hmap_get(&d->renames, name);
        if (rn) v->renamed = strdup(rn);
        *is_new = 1;
        d->dirty = 1;
    }
    if (type && (!v->type || strcmp(v->type, type) != 0)) {
        set_str(d, &v->type, type);
        d->dirty = 1;
    }
    if (!v->type) v->type = intern(d, "default");
    if (connector_name && (!v->connector_name || strcmp(v->connector_name, connector_name) != 0)) {
        set_str(d, &v->connector_name, connector_name);
        v->attrs_sent = 0;
        d->dirty = 1;
    }
    if (connector_id) set_str(d, &v->connector_id, connector_id);
    if (owner) v->owner = owner;
    return v;
}

void tbgw_devices_remove(tbgw_devices *d, const char *name) {
    tbgw_device *v = tbgw_hmap_del(&d->by_name, name);
    if (v) {
        dev_free(v);
        d->dirty = 1;
    }
}

const char *tbgw_devices_platform_name(tbgw_devices *d, const char *name) {
    const char *rn = tbgw_hmap_get(&d->renames, name);
    return rn ? rn : name;
}

const char *tbgw_devices_local_name(tbgw_devices *d, const char *platform_name) {
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&d->renames, i, &k, &v)) != 0;)
        if (strcmp((const char *)v, platform_name) == 0) return k;
    return platform_name;
}

int tbgw_devices_rename(tbgw_devices *d, const char *old_name, const char *new_name) {
    /* old_name is a platform name: find the device it belongs to. */
    char *local = strdup(tbgw_devices_local_name(d, old_name));
    if (!local) return TBGW_ENOMEM;
    void *prev = NULL;
    if (strcmp(local, new_name) == 0) {
        prev = tbgw_hmap_del(&d->renames, local);
    } else {
        char *nn = strdup(new_name);
        if (!nn || tbgw_hmap_put(&d->renames, local, nn, &prev)) {
            free(nn);
            free(local);
            return TBGW_ENOMEM;
        }
    }
    free(prev);
    tbgw_device *v = tbgw_hmap_get(&d->by_name, local);
    if (v) {
        set_owned(&v->renamed, strcmp(local, new_name) == 0 ? NULL : new_name);
        v->connect_sent = 0;
    }
    free(local);
    d->dirty = 1;
    return 0;
}

int tbgw_devices_delete(tbgw_devices *d, const char *platform_name) {
    char *local = strdup(tbgw_devices_local_name(d, platform_name));
    if (!local) return 0;
    free(tbgw_hmap_del(&d->renames, local));
    tbgw_device *v = tbgw_hmap_del(&d->by_name, local);
    int known = v != NULL;
    dev_free(v);
    free(local);
    d->dirty = 1;
    return known;
}

int tbgw_devices_save(tbgw_devices *d) {
    if (!d->path || !d->dirty) return 0;
    json_t *root = json_object();
    const char *k;
    void *p;
    for (size_t i = 0; (i = tbgw_hmap_next(&d->by_name, i, &k, &p)) != 0;) {
        tbgw_device *v = p;
        json_object_set_new(root, k,
                            json_pack("{s:s?,s:s?,s:s?,s:s?,s:b}", "connectorName", v->connector_name,
                                      "deviceType", v->type, "connectorId", v->connector_id, "renaming",
                                      v->renamed, "disconnected", 0));
    }
    /* renamed devices that are not connected keep their rename */
    for (size_t i = 0; (i = tbgw_hmap_next(&d->renames, i, &k, &p)) != 0;) {
        if (tbgw_hmap_get(&d->by_name, k)) continue;
        json_object_set_new(root, k,
                            json_pack("{s:n,s:s,s:n,s:s,s:b}", "connectorName", "deviceType", "default",
                                      "connectorId", "renaming", (const char *)p, "disconnected", 1));
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->path);
    int rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc || rename(tmp, d->path)) {
        TBGW_WARNF(tbgw_logger_get("service"), "cannot write %s: %s", d->path, strerror(errno));
        unlink(tmp);
        return TBGW_EIO;
    }
    d->dirty = 0;
    return 0;
}

int tbgw_devices_load(tbgw_devices *d,
                      void (*cb)(void *ud, const char *name, const char *type, const char *connector_name,
                                 const char *connector_id, const char *renamed),
                      void *ud) {
    if (!d->path || access(d->path, F_OK) != 0) return 0;
    json_error_t je;
    json_t *root = json_load_file(d->path, 0, &je);
    if (!json_is_object(root)) {
        TBGW_WARNF(tbgw_logger_get("service"), "%s:%d:%d: ignoring unreadable device list: %s", d->path,
                   je.line, je.column, je.text);
        json_decref(root);
        return TBGW_EINVAL;
    }
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        const char *cn = NULL, *type = NULL, *cid = NULL, *ren = NULL;
        int disc = 0;
        if (json_is_object(v)) {
            cn = json_string_value(json_object_get(v, "connectorName"));
            type = json_string_value(json_object_get(v, "deviceType"));
            cid = json_string_value(json_object_get(v, "connectorId"));
            ren = json_string_value(json_object_get(v, "renaming"));
            disc = json_is_true(json_object_get(v, "disconnected"));
        } else if (json_is_array(v)) { /* legacy ["connector", "type"(, "new name")] */
            cn = json_string_value(json_array_get(v, 0));
            type = json_string_value(json_array_get(v, 1));
            ren = json_string_value(json_array_get(v, 2));
        } else {
            continue;
        }
        if (ren && *ren) {
            char *r = strdup(ren);
            void *old = NULL;
            if (r && tbgw_hmap_put(&d->renames, name, r, &old) == 0) free(old);
        }
        if (!disc && cb) cb(ud, name, type, cn, cid, ren);
    }
    json_decref(root);
    return 0;
}
