#include "core/registry.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/module.h"

static const char *const known_types[] = {"mqtt",   "modbus", "opcua", "ble",  "request", "can",
                                          "bacnet", "odbc",   "rest",  "snmp", "ftp",     "socket",
                                          "xmpp",   "ocpp",   "knx",   "grpc", "custom",  NULL};

static const tbgw_module_connector *module_entry(const char *type) {
    for (size_t i = 0; tbgw_module_connectors[i].type; i++)
        if (strcasecmp(tbgw_module_connectors[i].type, type) == 0) return &tbgw_module_connectors[i];
    return NULL;
}

int tbgw_registry_is_builtin(const char *type) {
    if (!type) return 0;
    for (size_t i = 0; tbgw_builtin_connectors[i]; i++)
        if (strcasecmp(tbgw_builtin_connectors[i]->type, type) == 0) return 1;
    return module_entry(type) != NULL;
}

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

const tbgw_connector_ops *tbgw_registry_get(const char *type, tbgw_err *err) {
    if (!type) {
        tbgw_err_set(err, TBGW_EINVAL, "no connector type");
        return NULL;
    }
    for (size_t i = 0; tbgw_builtin_connectors[i]; i++)
        if (strcasecmp(tbgw_builtin_connectors[i]->type, type) == 0) return tbgw_builtin_connectors[i];
    const tbgw_module_connector *m = module_entry(type);
    if (!m) {
        tbgw_err_set(err, TBGW_EINVAL, "unknown connector type \"%s\"", type);
        return NULL;
    }
    if (m->ops) return m->ops;
    char name[96];
    snprintf(name, sizeof name, "tbgw_connector_%s", m->type);
    /* dlopen is thread-safe; the lock only keeps two first loads from racing over the error text. */
    pthread_mutex_lock(&load_mu);
    const tbgw_connector_ops *ops = tbgw_module_symbol(name, name, err);
    pthread_mutex_unlock(&load_mu);
    if (ops && ops->abi != TBGW_CONNECTOR_ABI) {
        tbgw_err_set(err, TBGW_EINVAL, "connector module %s: ABI %u expected, module has %u", name,
                     TBGW_CONNECTOR_ABI, ops->abi);
        return NULL;
    }
    return ops;
}

const tbgw_connector_ops *tbgw_registry_find(const char *type) {
    tbgw_err err = {0};
    return tbgw_registry_get(type, &err);
}

int tbgw_registry_is_known_type(const char *type) {
    for (size_t i = 0; known_types[i]; i++)
        if (strcasecmp(known_types[i], type) == 0) return 1;
    return tbgw_registry_is_builtin(type);
}

const tbgw_connector_ops *tbgw_registry_load_plugin(const char *path, tbgw_err *err) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        tbgw_err_set(err, TBGW_ENOENT, "cannot load connector plugin %s: %s", path, dlerror());
        return NULL;
    }
    tbgw_connector_entry_fn fn;
    *(void **)(&fn) = dlsym(h, TBGW_CONNECTOR_ENTRY);
    if (!fn) {
        tbgw_err_set(err, TBGW_EINVAL, "connector plugin %s does not export %s", path, TBGW_CONNECTOR_ENTRY);
        dlclose(h);
        return NULL;
    }
    const tbgw_connector_ops *ops = fn(TBGW_CONNECTOR_ABI);
    if (!ops || ops->abi != TBGW_CONNECTOR_ABI) {
        tbgw_err_set(err, TBGW_EINVAL, "connector plugin %s: ABI %u expected, plugin has %u", path,
                     TBGW_CONNECTOR_ABI, ops ? ops->abi : 0);
        dlclose(h);
        return NULL;
    }
    return ops; /* the handle stays loaded for the life of the process */
}
