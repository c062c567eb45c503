/* Custom converters in shared objects: lookup, dlopen, ABI check and the services table. */
#include "convert/custom_conv.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/module.h"

struct tbgw_custom_conv {
    void *dl;
    const tbgw_converter_ops *ops;
    void *self;
    char *name;
    json_t *cfg; /* the converter's own copy of its configuration: create() may borrow from it */
};

static int api_add_telemetry(tbgw_converted *c, int64_t ts, const char *key, const tbgw_value *v) {
    return tbgw_converted_add_telemetry(c, ts, key, v, NULL);
}

static int api_add_attribute(tbgw_converted *c, const char *key, const tbgw_value *v) {
    return tbgw_converted_add_attribute(c, key, v, NULL);
}

static const tbgw_converter_api api = {
    .abi = TBGW_CONVERTER_ABI,
    .converted_new = tbgw_converted_new,
    .converted_free = tbgw_converted_free,
    .add_telemetry = api_add_telemetry,
    .add_attribute = api_add_attribute,
    .now_ms = tbgw_now_ms,
    .log = tbgw_log_write,
};

/* Records buf in tried and tells whether it is readable. */
static int try_path(const char *buf, char *tried, size_t tried_len) {
    if (tried && strlen(tried) + strlen(buf) + 3 < tried_len) {
        if (*tried) strcat(tried, ", ");
        strcat(tried, buf);
    }
    return access(buf, R_OK) == 0;
}

char *tbgw_custom_conv_resolve(const char *ext, const char *type, const char *dir, char *tried,
                               size_t tried_len) {
    char buf[4096];
    if (tried && tried_len) tried[0] = 0;
    if (!dir || !*dir) dir = ".";
    size_t el = strlen(ext);
    if (strchr(ext, '/') || (el > 3 && !strcmp(ext + el - 3, ".so"))) {
        if (ext[0] == '/')
            snprintf(buf, sizeof buf, "%s", ext);
        else
            snprintf(buf, sizeof buf, "%s/%s", dir, ext);
        if (tried) snprintf(tried, tried_len, "%s", buf);
        return access(buf, R_OK) == 0 ? strdup(buf) : NULL;
    }
    snprintf(buf, sizeof buf, "%s/extensions/%s/%s.so", dir, type, ext);
    if (try_path(buf, tried, tried_len)) return strdup(buf);
    const char *env = getenv("TBGW_EXTENSIONS_PATH");
    if (!env) return NULL;
    char *copy = strdup(env), *save = NULL;
    char *res = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !res; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, sizeof buf, "%s/%s/%s.so", d, type, ext);
        if (try_path(buf, tried, tried_len)) {
            res = strdup(buf);
            break;
        }
        snprintf(buf, sizeof buf, "%s/%s.so", d, ext);
        if (try_path(buf, tried, tried_len)) res = strdup(buf);
    }
    free(copy);
    return res;
}

int tbgw_custom_conv_load(const char *so_path, const char *name, const json_t *conv, tbgw_logger *log,
                          tbgw_custom_conv **out, tbgw_err *err) {
    *out = NULL;
    tbgw_custom_conv *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name)) || (conv && !(c->cfg = json_deep_copy(conv)))) {
        if (c) free(c->name);
        free(c);
        return TBGW_ENOMEM;
    }
    int rc = 0;
    c->dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!c->dl) {
        rc = tbgw_err_set(err, TBGW_ENOENT, "cannot load %s: %s", so_path, dlerror());
    } else {
        tbgw_converter_entry_fn fn;
        *(void **)(&fn) = dlsym(c->dl, TBGW_CONVERTER_ENTRY);
        if (!fn)
            rc = tbgw_err_set(err, TBGW_EINVAL, "%s does not export %s", so_path, TBGW_CONVERTER_ENTRY);
        else if (!(c->ops = fn(TBGW_CONVERTER_ABI, name)))
            rc = tbgw_err_set(err, TBGW_ENOENT, "%s has no converter named %s (ABI %u)", so_path, name,
                              TBGW_CONVERTER_ABI);
        else if (c->ops->abi != TBGW_CONVERTER_ABI || !c->ops->create || !c->ops->convert)
            rc = tbgw_err_set(err, TBGW_EINVAL, "%s: converter %s has ABI %u, expected %u", so_path, name,
                              c->ops->abi, TBGW_CONVERTER_ABI);
        else
            rc = c->ops->create(&api, c->cfg, log, &c->self, err);
        if (rc && c->ops && c->ops->create && !err) rc = TBGW_EINVAL;
    }
    if (rc) {
        c->self = NULL;
        tbgw_custom_conv_free(c);
        return rc < 0 ? rc : TBGW_EINVAL;
    }
    *out = c;
    return 0;
}

/* Looks for a shared object in dir whose entry knows name; returns its path or NULL. */
static char *scan_dir(const char *dir, const char *name) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char *found = NULL;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 3, ".so")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        tbgw_converter_entry_fn fn;
        *(void **)(&fn) = dlsym(h, TBGW_CONVERTER_ENTRY);
        if (fn && fn(TBGW_CONVERTER_ABI, name)) found = strdup(path);
        dlclose(h);
    }
    closedir(d);
    return found;
}

/* Plugin folders searched by converter name: <folder of the executable>/plugins and $TBGW_EXTENSIONS_PATH. */
static char *scan_plugins(const char *name) {
    char dir[4096];
    char *found = tbgw_exe_sibling("plugins", dir, sizeof dir) == 0 ? scan_dir(dir, name) : NULL;
    const char *env = getenv("TBGW_EXTENSIONS_PATH");
    char *copy = env ? strdup(env) : NULL, *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found; d = strtok_r(NULL, ":", &save))
        found = scan_dir(d, name);
    free(copy);
    return found;
}

int tbgw_custom_conv_new(const json_t *conv, const char *type, const char *dir, const char *path,
                         tbgw_logger *log, tbgw_custom_conv **out, tbgw_err *err) {
    *out = NULL;
    const char *ext = json_string_value(json_object_get(conv, "extension"));
    if (!ext || !*ext)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.extension: expected the converter name", path);
    const char *name = strrchr(ext, '/') ? strrchr(ext, '/') + 1 : ext;
    char base[256];
    snprintf(base, sizeof base, "%s", name);
    size_t bl = strlen(base);
    if (bl > 3 && !strcmp(base + bl - 3, ".so")) base[bl - 3] = 0;
    const char *cname = json_string_value(json_object_get(conv, "extensionName"));
    if (!cname) cname = base;
    char tried[1024];
    char *so = tbgw_custom_conv_resolve(ext, type, dir, tried, sizeof tried);
    if (!so) so = scan_plugins(cname);
    if (!so)
        return tbgw_err_set(err, TBGW_ENOENT,
                            "%s.extension: no shared object provides %s (tried %s and the plugin folders)",
                            path, ext, tried);
    int rc = tbgw_custom_conv_load(so, cname, conv, log, out, err);
    free(so);
    return rc;
}

void tbgw_custom_conv_free(tbgw_custom_conv *c) {
    if (!c) return;
    if (c->self && c->ops && c->ops->destroy) c->ops->destroy(c->self);
    if (c->dl) dlclose(c->dl);
    json_decref(c->cfg);
    free(c->name);
    free(c);
}

int tbgw_custom_conv_convert(tbgw_custom_conv *c, const char *topic, const uint8_t *payload, size_t len,
                             tbgw_converted **chain, tbgw_err *err) {
    tbgw_converted *out = NULL;
    int rc = c->ops->convert(c->self, topic, payload, len, &out, err);
    /* keep only valid records: a device name and at least one datapoint */
    int n = 0;
    tbgw_converted *keep = NULL, **kt = &keep;
    while (out) {
        tbgw_converted *r = out;
        out = r->next;
        r->next = NULL;
        if (!r->device_name || !*r->device_name || tbgw_converted_count(r) == 0) {
            tbgw_converted_free(r);
            continue;
        }
        *kt = r;
        kt = &r->next;
        n++;
    }
    tbgw_converted **tail = chain;
    while (*tail) tail = &(*tail)->next;
    *tail = keep;
    if (rc < 0 && n == 0) return rc;
    return n;
}
