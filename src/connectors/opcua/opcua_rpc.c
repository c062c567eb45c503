/* Downlink for the OPC-UA connector: attribute updates (write with a cast retry), reserved get/set
 * RPCs, method calls from rpc_methods, connector RPCs (spec gateway.md §7.3). Runs on the connector
 * thread (inside host->wait), so the client is free to use. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/connkit.h>

#include "connectors/opcua/opcua.h"

#define BAD_TYPE_MISMATCH 0x80740000u

static void reply(opcua_conn *oc, const tbgw_rpc_req *r, json_t *result) {
    tbgw_rpc_result(oc->host, r->handle, result);
}

static void reply_error(opcua_conn *oc, const tbgw_rpc_req *r, const char *text) {
    reply(oc, r, json_pack("{s:s}", "error", text));
}

static int client_ready(opcua_conn *oc) {
    return oc->client && tbgw_ua_client_connected(oc->client);
}

/* Resolves a node for downlink: a datapoint key of the device, a node id, an absolute path or a
 * path relative to the device node. */
static int find_node(opcua_conn *oc, opcua_device *d, const char *what, tbgw_ua_nodeid *out) {
    char *body = opcua_expr_body(what);
    if (!body) return TBGW_ENOMEM;
    for (size_t i = 0; d && i < d->n_dps; i++) {
        if (d->dps[i].resolved && strcmp(d->dps[i].cfg->key, body) == 0) {
            free(body);
            return tbgw_ua_nodeid_copy(out, &d->dps[i].node) ? TBGW_ENOMEM : 1;
        }
    }
    if (!oc->cache) oc->cache = opcua_cache_new();
    int n = oc->cache ? opcua_resolve(oc->client, oc->cache, d ? &d->node : NULL, body, out, 1) : TBGW_ENOMEM;
    free(body);
    return n;
}

/* Writes value; on BadTypeMismatch casts it to the node's data type (or a type guessed from its text)
 * and writes again. Returns the final status (or a negative error). */
static int64_t write_value(opcua_conn *oc, const tbgw_ua_nodeid *node, const json_t *value) {
    tbgw_ua_variant v;
    uint32_t st = 0;
    int rc = opcua_variant_from_json(value, &v);
    if (rc == 0) rc = tbgw_ua_write(oc->client, node, &v, 1, &st);
    tbgw_ua_variant_clear(&v);
    if (rc) return rc;
    if ((st & 0xFFFF0000u) != BAD_TYPE_MISMATCH) return st;
    /* the node's DataType when it is a built-in type, else bool/float/int guessed from the text */
    uint8_t types[4] = {0};
    size_t nt = 0;
    tbgw_ua_datavalue dv;
    if (tbgw_ua_read(oc->client, node, 1, TBGW_UA_ATTR_DATATYPE, &dv) == 0) {
        if (dv.value.type == TBGW_UA_NODEID && dv.value.n == 1 && dv.value.v[0].nodeid &&
            dv.value.v[0].nodeid->id.ns == 0 && dv.value.v[0].nodeid->id.type == TBGW_UA_ID_NUMERIC &&
            dv.value.v[0].nodeid->id.num >= 1 && dv.value.v[0].nodeid->id.num <= 15)
            types[nt++] = (uint8_t)dv.value.v[0].nodeid->id.num;
        tbgw_ua_datavalue_clear(&dv);
    }
    types[nt++] = TBGW_UA_BOOLEAN;
    types[nt++] = TBGW_UA_DOUBLE;
    types[nt++] = TBGW_UA_INT64;
    for (size_t i = 0; i < nt; i++) {
        if (opcua_variant_cast(value, types[i], &v) != 0) continue;
        rc = tbgw_ua_write(oc->client, node, &v, 1, &st);
        tbgw_ua_variant_clear(&v);
        if (rc) return rc;
        if ((st & 0xFFFF0000u) != BAD_TYPE_MISMATCH) return st;
    }
    return st;
}

int opcua_on_attribute_update(void *self, const tbgw_attr_update *u) {
    opcua_conn *oc = self;
    opcua_device *d = opcua_find_device(oc, u->device);
    if (!d) {
        TBGW_WARNF(oc->host->log, "attribute update for unknown device %s", u->device ? u->device : "(null)");
        return TBGW_ENOENT;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)u->data, key, val) {
        const opcua_upd_cfg *uc = NULL;
        for (size_t i = 0; i < d->map->n_upds; i++)
            if (strcmp(d->map->upds[i].key, key) == 0) uc = &d->map->upds[i];
        if (!uc) continue;
        if (!client_ready(oc)) {
            TBGW_WARNF(oc->host->log, "attribute update %s for %s not written: not connected", key, d->name);
            continue;
        }
        tbgw_ua_nodeid node;
        int n = find_node(oc, d, uc->value, &node);
        if (n <= 0) {
            TBGW_ERRORF(oc->host->log, "attribute update %s for %s: node %s not found", key, d->name,
                        uc->value);
            continue;
        }
        int64_t st = write_value(oc, &node, val);
        char nb[16];
        if (st != 0)
            TBGW_ERRORF(oc->host->log, "attribute update %s for %s: write to %s failed: %s", key, d->name,
                        uc->value, st < 0 ? tbgw_strerror((int)st) : tbgw_ua_status_name((uint32_t)st, nb));
        else
            TBGW_DEBUGF(oc->host->log, "attribute update %s for %s written to %s", key, d->name, uc->value);
        tbgw_ua_nodeid_clear(&node);
    }
    return 0;
}

/* ------------------------------------------------------------------ get / set */

static const char *param_text(const json_t *p) {
    if (json_is_string(p)) return json_string_value(p);
    if (json_is_object(p)) {
        const char *s = json_string_value(json_object_get(p, "key"));
        if (!s) s = json_string_value(json_object_get(p, "path"));
        return s;
    }
    return NULL;
}

static void rpc_get(opcua_conn *oc, opcua_device *d, const tbgw_rpc_req *r) {
    const char *what = param_text(r->params);
    if (!what || !*what) return reply_error(oc, r, "Method get requires a key, path or node id parameter");
    tbgw_ua_nodeid node;
    int n = find_node(oc, d, what, &node);
    if (n <= 0) return reply_error(oc, r, "Node not found");
    tbgw_ua_datavalue dv;
    int rc = tbgw_ua_read(oc->client, &node, 1, TBGW_UA_ATTR_VALUE, &dv);
    tbgw_ua_nodeid_clear(&node);
    if (rc) return reply_error(oc, r, tbgw_ua_client_last_error(oc->client));
    char nb[16];
    if ((dv.mask & TBGW_UA_DV_STATUS) && (dv.status & 0x80000000u))
        reply_error(oc, r, tbgw_ua_status_name(dv.status, nb));
    else
        reply(oc, r, json_pack("{s:o}", "value", opcua_variant_to_json(&dv.value)));
    tbgw_ua_datavalue_clear(&dv);
}

/* Splits "path value", "path=value" or "path;value". */
static int split_set(const char *s, char **path, char **value) {
    while (isspace((unsigned char)*s)) s++;
    const char *sep = strpbrk(s, "=; ");
    if (!sep || sep == s) return -1;
    *path = strndup(s, (size_t)(sep - s));
    const char *v = sep + 1;
    while (isspace((unsigned char)*v) || *v == '=' || *v == ';') v++;
    *value = strdup(v);
    if (!*path || !*value || !**value) {
        free(*path);
        free(*value);
        return -1;
    }
    return 0;
}

static void rpc_set(opcua_conn *oc, opcua_device *d, const tbgw_rpc_req *r) {
    char *path = NULL, *text = NULL;
    const char *s = json_string_value(r->params);
    if (!s || split_set(s, &path, &text))
        return reply_error(oc, r,
                           "Method set requires parameters 'path value', 'path=value' or 'path;value'");
    json_t *value = opcua_json_from_text(text);
    tbgw_ua_nodeid node;
    int n = find_node(oc, d, path, &node);
    if (n <= 0) {
        reply_error(oc, r, "Node not found");
    } else {
        int64_t st = write_value(oc, &node, value);
        char nb[16];
        if (st == 0)
            reply(oc, r, json_pack("{s:O}", "value", value));
        else
            reply_error(oc, r,
                        st < 0 ? tbgw_ua_client_last_error(oc->client)
                               : tbgw_ua_status_name((uint32_t)st, nb));
        tbgw_ua_nodeid_clear(&node);
    }
    json_decref(value);
    free(path);
    free(text);
}

/* ------------------------------------------------------------------ methods */

static int find_method(opcua_conn *oc, opcua_device *d, const char *name, tbgw_ua_nodeid *out) {
    tbgw_ua_ref *refs;
    size_t n;
    int rc = tbgw_ua_browse(oc->client, &d->node, &refs, &n);
    if (rc) return rc;
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        const tbgw_ua_qname *q = &refs[i].browse_name;
        if (refs[i].node_class == 4 && q->name.len >= 0 && strcmp((const char *)q->name.data, name) == 0)
            found = tbgw_ua_nodeid_copy(out, &refs[i].node.id) == 0;
    }
    tbgw_ua_refs_free(refs, n);
    return found;
}

/* Arguments: RPC params (a list, or one value) override the configured ones position by position;
 * a configured argument's type is applied to the value replacing it. */
static int build_args(const opcua_rpc_cfg *rc, const json_t *params, tbgw_ua_variant **out, size_t *n) {
    json_t *plist = NULL;
    if (json_is_array(params))
        plist = json_incref((json_t *)params);
    else if (json_is_object(params) && json_is_array(json_object_get(params, "arguments")))
        plist = json_incref(json_object_get(params, "arguments"));
    else if (params && !json_is_null(params) && !json_is_object(params))
        plist = json_pack("[O]", params);
    size_t np = plist ? json_array_size(plist) : 0, nc = json_array_size(rc->args);
    size_t total = np > nc ? np : nc;
    *out = calloc(total ? total : 1, sizeof **out);
    *n = 0;
    if (!*out) return json_decref(plist), TBGW_ENOMEM;
    int err = 0;
    for (size_t i = 0; i < total && !err; i++) {
        const json_t *conf = json_array_get(rc->args, i);
        const json_t *p = i < np ? json_array_get(plist, i) : NULL;
        if (json_is_object(p) && json_object_get(p, "value")) p = json_object_get(p, "value");
        if (p && json_is_object(conf) && json_object_get(conf, "type")) {
            json_t *tmp = json_pack("{s:O,s:O}", "type", json_object_get(conf, "type"), "value", p);
            err = opcua_variant_from_arg(tmp, &(*out)[i]);
            if (err) err = opcua_variant_from_json(p, &(*out)[i]);
            json_decref(tmp);
        } else if (p) {
            err = opcua_variant_from_json(p, &(*out)[i]);
        } else {
            err = opcua_variant_from_arg(conf, &(*out)[i]);
        }
        if (!err) (*n)++;
    }
    json_decref(plist);
    return err;
}

/* On failure *error points to a constant, to the client's last error, or into nb. */
static json_t *call_method(opcua_conn *oc, opcua_device *d, const opcua_rpc_cfg *rc, const json_t *params,
                           const char **error, char nb[16]) {
    tbgw_ua_nodeid meth;
    *error = NULL;
    int found = find_method(oc, d, rc->method, &meth);
    if (found <= 0) {
        *error = found < 0 ? tbgw_ua_client_last_error(oc->client) : "Method not found";
        return NULL;
    }
    tbgw_ua_variant *args = NULL, *outs = NULL;
    size_t n = 0, nout = 0;
    uint32_t st = 0;
    json_t *result = NULL;
    if (build_args(rc, params, &args, &n))
        *error = "Invalid method arguments";
    else if (tbgw_ua_call(oc->client, &d->node, &meth, args, n, &st, &outs, &nout))
        *error = tbgw_ua_client_last_error(oc->client);
    else if (st & 0x80000000u)
        *error = tbgw_ua_status_name(st, nb);
    else if (nout == 0)
        result = json_null();
    else if (nout == 1)
        result = opcua_variant_to_json(&outs[0]);
    else {
        result = json_array();
        for (size_t i = 0; i < nout; i++) json_array_append_new(result, opcua_variant_to_json(&outs[i]));
    }
    for (size_t i = 0; i < n; i++) tbgw_ua_variant_clear(&args[i]);
    for (size_t i = 0; i < nout; i++) tbgw_ua_variant_clear(&outs[i]);
    free(args);
    free(outs);
    tbgw_ua_nodeid_clear(&meth);
    return result;
}

static const opcua_rpc_cfg *find_rpc_cfg(const opcua_device *d, const char *method) {
    for (size_t i = 0; i < d->map->n_rpcs; i++)
        if (strcmp(d->map->rpcs[i].method, method) == 0) return &d->map->rpcs[i];
    return NULL;
}

static void connector_rpc(opcua_conn *oc, const tbgw_rpc_req *r) {
    json_t *last = NULL;
    const char *error = "Requested rpc method is not found in config";
    char errtext[256];
    for (size_t i = 0; i < oc->n_devs; i++) {
        const opcua_rpc_cfg *rc = find_rpc_cfg(&oc->devs[i], r->method);
        if (!rc) continue;
        char nb[16];
        json_t *res = call_method(oc, &oc->devs[i], rc, r->params, &error, nb);
        if (!res && error) { /* keep the text: nb goes out of scope */
            snprintf(errtext, sizeof errtext, "%s", error);
            error = errtext;
        }
        if (res) {
            json_decref(last);
            last = res;
        }
    }
    if (last)
        reply(oc, r, json_pack("{s:o}", "result", last));
    else
        reply_error(oc, r, error);
}

int opcua_on_rpc(void *self, const tbgw_rpc_req *r) {
    opcua_conn *oc = self;
    if (!client_ready(oc)) {
        reply_error(oc, r, "OPC-UA server is not connected");
        return 0;
    }
    if (!r->device) {
        connector_rpc(oc, r);
        return 0;
    }
    opcua_device *d = opcua_find_device(oc, r->device);
    if (!d) {
        reply_error(oc, r, "Device not found");
        return 0;
    }
    if (strcmp(r->method, "get") == 0) {
        rpc_get(oc, d, r);
    } else if (strcmp(r->method, "set") == 0) {
        rpc_set(oc, d, r);
    } else {
        const opcua_rpc_cfg *rc = find_rpc_cfg(d, r->method);
        if (!rc) {
            reply_error(oc, r, "Requested rpc method is not found in config");
            return 0;
        }
        const char *error = NULL;
        char nb[16];
        json_t *res = call_method(oc, d, rc, r->params, &error, nb);
        if (res)
            reply(oc, r, json_pack("{s:o}", "result", res));
        else
            reply_error(oc, r, error ? error : "Method call failed");
    }
    return 0;
}
