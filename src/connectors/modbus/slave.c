/* Slave mode (the `slave` section): the gateway serves the configured values as a Modbus server and
 * polls them like any slave, so they are reported to the platform and platform writes (attribute
 * updates, RPC) land in the server's registers. The polling side talks to the store in-process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/modbus/mbc.h"

static const struct {
    const char *section;
    int read_fc;
} TABLES[] = {
    {"holding_registers", 3}, {"coils_initializer", 1}, {"input_registers", 4}, {"discrete_inputs", 2}};

/* Checks an item and writes its initial value into the store. */
static int seed_value(mbc *m, const json_t *item, const char *path, int read_fc, int bl, int wl, int repack,
                      tbgw_err *err) {
    if (!json_is_object(item)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", path);
    const json_t *val = json_object_get(item, "value");
    json_t *tmp = json_deep_copy(item);
    json_object_set_new(tmp, "functionCode", json_integer(read_fc <= 2 ? 15 : 16));
    mbc_write w;
    int rc = mbc_parse_write(tmp, path, bl, wl, &w, err);
    json_decref(tmp);
    if (rc < 0) return rc;
    if (!val) {
        mbc_write_clear(&w);
        return 0;
    }
    if (!json_object_get(item, "repack"))
        w.spec.repack = repack; /* the reference seeds through its builder */
    uint16_t regs[TBGW_MB_MAX_WRITE_REGS];
    uint8_t coils[TBGW_MB_MAX_WRITE_BITS];
    size_t n = 0;
    char e[160] = "";
    int is_bits = read_fc <= 2;
    rc = tbgw_mbv_encode(&w.spec, is_bits ? 15 : 16, val, regs, coils,
                         is_bits ? sizeof coils : TBGW_MB_MAX_WRITE_REGS, &n, e, sizeof e);
    uint16_t addr = w.addr;
    mbc_write_clear(&w);
    if (rc < 0) return tbgw_err_set(err, TBGW_EINVAL, "%s.value: %s", path, e);
    for (size_t i = 0; i < n && addr + i < 65536; i++) {
        size_t a = addr + i;
        switch (read_fc) {
        case 1:
            m->store->coils[a] = coils[i];
            break;
        case 2:
            m->store->discrete[a] = coils[i];
            break;
        case 3:
            m->store->holding[a] = regs[i];
            break;
        default:
            m->store->input[a] = regs[i];
            break;
        }
    }
    return 0;
}

static void copy_item(json_t *dst_list, const json_t *item, int fc) {
    json_t *c = json_deep_copy(item);
    if (fc) json_object_set_new(c, "functionCode", json_integer(fc));
    json_array_append_new(dst_list, c);
}

/* slave.identity: the objects of Read Device Identification (function 43 / MEI 14). */
static int parse_identity(mbc *m, const json_t *sec, tbgw_err *err) {
    static const struct {
        const char *key, *alt;
        int oid;
    } KEYS[] = {{"vendorName", "VendorName", 0},
                {"productCode", "ProductCode", 1},
                {"majorMinorRevision", "MajorMinorRevision", 2},
                {"vendorUrl", "VendorUrl", 3},
                {"productName", "ProductName", 4},
                {"ModelName", "modelName", 5},
                {"userApplicationName", "UserApplicationName", 6}};
    memset(&m->identity, 0, sizeof m->identity);
    m->identity.obj[2] = TBGW_VERSION; /* the reference reports its Modbus stack's version */
    const json_t *id = json_object_get(sec, "identity");
    if (!id || json_is_null(id)) return 0;
    if (!json_is_object(id)) return tbgw_err_set(err, TBGW_EINVAL, "slave.identity: expected an object");
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        const char *k = KEYS[i].key;
        const json_t *v = json_object_get(id, k);
        if (!v) v = json_object_get(id, k = KEYS[i].alt);
        if (!v || json_is_null(v)) continue;
        if (!json_is_string(v))
            return tbgw_err_set(err, TBGW_EINVAL, "slave.identity.%s: expected a string", k);
        if (json_string_length(v) > 244)
            return tbgw_err_set(err, TBGW_EINVAL, "slave.identity.%s: longer than 244 bytes", k);
        if (json_string_length(v) || KEYS[i].oid <= 2) {
            char *own = strdup(json_string_value(v)); /* the configuration tree is not kept */
            if (!own) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
            free(m->identity_strs[KEYS[i].oid]);
            m->identity_strs[KEYS[i].oid] = own;
            m->identity.obj[KEYS[i].oid] = own;
        }
    }
    return 0;
}

typedef struct seed_ctx {
    mbc *m;
    json_t *out; /* the polled device's list the item is copied to */
    int read_fc, copy_fc, bl, wl, repack;
} seed_ctx;

/* One item of a values table; one that cannot be used is reported with its own path and left out. */
static int seed_entry(tbgw_cfg *w, const json_t *item, const char *path, size_t index, void *ud,
                      tbgw_err *err) {
    (void)w, (void)index;
    seed_ctx *x = ud;
    if (seed_value(x->m, item, path, x->read_fc, x->bl, x->wl, x->repack, err) < 0) return TBGW_EINVAL;
    copy_item(x->out, item, x->copy_fc);
    return 0;
}

int mbc_server_parse(mbc *m, const json_t *sec, tbgw_err *err) {
    if (!json_is_true(json_object_get(sec, "sendDataToThingsBoard")))
        return 0; /* server not started at all */
    if (mbc_parse_endpoint(sec, "slave", &m->server_ep, err) < 0) return TBGW_EINVAL;
    const json_t *u = json_object_get(sec, "unitId");
    m->server_unit = (uint8_t)(json_is_integer(u) ? json_integer_value(u) : 0);
    const char *bo = json_string_value(json_object_get(sec, "byteOrder"));
    const char *wo = json_string_value(json_object_get(sec, "wordOrder"));
    if (!bo) return tbgw_err_set(err, TBGW_EINVAL, "slave.byteOrder: required (BIG or LITTLE)");
    int bl = !strcasecmp(bo, "LITTLE"), wl = !wo || !strcasecmp(wo, "LITTLE");
    const json_t *rpj = json_object_get(sec, "repack");
    if (rpj && !json_is_boolean(rpj))
        return tbgw_err_set(err, TBGW_EINVAL, "slave.repack: expected true or false");
    int repack = json_is_true(rpj);
    m->store = calloc(1, sizeof *m->store);
    if (!m->store) return TBGW_ENOMEM;
    if (parse_identity(m, sec, err) < 0) return TBGW_EINVAL;
    m->store->identity = &m->identity;
    json_t *dev =
        json_pack("{s:s,s:s,s:o,s:s,s:s,s:[],s:[],s:[],s:[]}", "deviceName",
                  json_string_value(json_object_get(sec, "deviceName"))
                      ? json_string_value(json_object_get(sec, "deviceName"))
                      : "Modbus Slave",
                  "deviceType",
                  json_string_value(json_object_get(sec, "deviceType"))
                      ? json_string_value(json_object_get(sec, "deviceType"))
                      : "default",
                  "pollPeriod",
                  json_object_get(sec, "pollPeriod") ? json_incref(json_object_get(sec, "pollPeriod"))
                                                     : json_integer(5000),
                  "byteOrder", bl ? "LITTLE" : "BIG", "wordOrder", wl ? "LITTLE" : "BIG", "timeseries",
                  "attributes", "attributeUpdates", "rpc");
    if (!dev) return TBGW_ENOMEM;
    json_object_set_new(dev, "unitId", json_integer(m->server_unit));
    json_object_set_new(dev, "repack", json_boolean(repack));
    if (json_object_get(sec, "reportStrategy"))
        json_object_set(dev, "reportStrategy", json_object_get(sec, "reportStrategy"));
    const json_t *values = json_object_get(sec, "values");
    tbgw_cfg w;
    tbgw_cfg_init(&w, m->host, err);
    for (size_t t = 0; t < sizeof TABLES / sizeof TABLES[0]; t++) {
        const json_t *tab = json_object_get(values, TABLES[t].section);
        char tp[96];
        snprintf(tp, sizeof tp, "slave.values.%s%s", TABLES[t].section, json_is_array(tab) ? "[0]" : "");
        if (json_is_array(tab)) tab = json_array_get(tab, 0); /* older layout: a list holding one object */
        if (!json_is_object(tab)) continue;
        static const char *kinds[] = {"timeseries", "attributes", "attributeUpdates", "rpc"};
        for (size_t k = 0; k < 4; k++) {
            if (!json_is_array(json_object_get(tab, kinds[k]))) continue;
            seed_ctx x = {m,
                          json_object_get(dev, kinds[k]),
                          TABLES[t].read_fc,
                          k < 2 ? TABLES[t].read_fc : 0,
                          bl,
                          wl,
                          repack};
            if (tbgw_cfg_each(&w, tab, tp, kinds[k], seed_entry, &x) == TBGW_ENOMEM) {
                json_decref(dev);
                return TBGW_ENOMEM;
            }
        }
    }
    int rc = mbc_slave_add(m, dev, "slave", err);
    json_decref(dev);
    if (rc < 0) return rc;
    mbc_slave *sl = &m->slaves[m->n_slaves - 1];
    sl->is_self = 1;
    mbc_endpoint_clear(&sl->ep);
    memset(&sl->ep, 0, sizeof sl->ep);
    sl->ep.transport = TBGW_MB_LOCAL;
    sl->ep.local_store = m->store;
    sl->ep.timeout_ms = 1000;
    sl->unit = m->server_unit;
    m->server_enabled = 1;
    return 0;
}

static void on_server_write(void *ud, uint8_t fc, uint16_t addr, uint16_t count) {
    mbc *m = ud;
    TBGW_DEBUGF(m->host->log, "modbus server: fc %u wrote %u object(s) at %u", fc, count, addr);
}

int mbc_server_start(mbc *m, tbgw_err *err) {
    m->server = tbgw_mb_server_new(m->loop, &m->server_ep, m->server_unit, m->store, on_server_write, m, err);
    if (!m->server) return err->code ? err->code : TBGW_EIO;
    TBGW_INFOF(m->host->log, "modbus server listening on %s:%d",
               m->server_ep.transport == TBGW_MB_SERIAL ? m->server_ep.path : tbgw_mb_ep_host(&m->server_ep),
               tbgw_mb_server_port(m->server));
    return 0;
}
