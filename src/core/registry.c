#include "core/registry.h"

#include <dlfcn.h>
#include <string.h>
#include <strings.h>

static const char *const known_types[] = {"mqtt",   "modbus", "opcua", "ble",  "request", "can",
                                          "bacnet", "odbc",   "rest",  "snmp", "ftp",     "socket",
                                          "xmpp",   "ocpp",   "knx",   "grpc", "custom",  NULL};

const tbgw_connector_ops *tbgw_registry_find(const char *type) {
    if (!type) return NULL;
    for (size_t i = 0; tbgw_builtin_connectors[i]; i++)
        if (strcasecmp(tbgw_builtin_connectors[i]->type, type) == 0) return tbgw_builtin_connectors[i];
    return NULL;
}

int tbgw_registry_is_known_type(const char *type) {
    for (size_t i = 0; known_types[i]; i++)
        if (strcasecmp(known_types[i], type) == 0) return 1;
    return tbgw_registry_find(type) != NULL;
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
