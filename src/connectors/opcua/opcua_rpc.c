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
    char *what = opcua_get_target(param_text(r->params));
    if (!what) return reply_error(oc, r, "Method get requires a key, path or node id parameter");
    tbgw_ua_nodeid node;
    int n = find_node(oc, d, what, &node);
    free(what);
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

static void rpc_set(opcua_conn *oc, opcua_device *d, const tbgw_rpc_req *r) {
    char *path = NULL, *text = NULL;
    const char *s = json_string_value(r->params);
    if (!s || opcua_set_split(s, &path, &text))
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

void opcua_sigs_free(opcua_conn *oc) {
    for (opcua_method_sig *s = oc->sigs, *nx; s; s = nx) {
        nx = s->next;
        tbgw_ua_nodeid_clear(&s->method);
        tbgw_ua_arguments_free(s->args, s->n);
        free(s->types);
        free(s);
    }
    oc->sigs = NULL;
}

/* The built-in type values of a DataType are encoded with: known types directly, others (custom
 * enumerations, subtypes of Double, ...) through their supertypes (inverse HasSubtype), up to 8
 * levels. 0 when it ends at BaseDataType or Number, or the server does not tell. */
static uint8_t datatype_builtin(opcua_conn *oc, const tbgw_ua_nodeid *dt) {
    uint8_t t = tbgw_ua_builtin_of_datatype(dt);
    tbgw_ua_nodeid cur;
    if (t || (dt->ns == 0 && dt->type == TBGW_UA_ID_NUMERIC && dt->num <= TBGW_UA_DIAGNOSTICINFO + 6) ||
        tbgw_ua_nodeid_copy(&cur, dt))
        return t;
    for (int depth = 0; depth < 8 && t == 0; depth++) {
        tbgw_ua_ref *refs;
        size_t n;
        if (tbgw_ua_browse_inverse(oc->client, &cur, TBGW_UA_NS0_HAS_SUBTYPE, &refs, &n)) break;
        int next = n > 0 && refs[0].node.server_index == 0;
        if (next) {
            tbgw_ua_nodeid_clear(&cur);
            next = tbgw_ua_nodeid_copy(&cur, &refs[0].node.id) == 0;
        }
        tbgw_ua_refs_free(refs, n);
        if (!next) break;
        t = tbgw_ua_builtin_of_datatype(&cur);
        if (cur.ns == 0 && cur.type == TBGW_UA_ID_NUMERIC && cur.num <= TBGW_UA_DIAGNOSTICINFO + 6) break;
    }
    tbgw_ua_nodeid_clear(&cur);
    return t;
}

static int status_good(uint32_t st) {
    return (st & 0xC0000000u) == 0;
}

/* The method's declared input arguments, read through its InputArguments property once per session.
 * NULL only when the client failed (nothing is remembered then). */
static const opcua_method_sig *method_sig(opcua_conn *oc, const tbgw_ua_nodeid *meth, const char *name) {
    for (opcua_method_sig *s = oc->sigs; s; s = s->next)
        if (tbgw_ua_nodeid_equal(&s->method, meth)) return s;
    opcua_method_sig *sig = calloc(1, sizeof *sig);
    if (!sig || tbgw_ua_nodeid_copy(&sig->method, meth)) {
        free(sig);
        return NULL;
    }
    static const char prop_name[] = "InputArguments";
    tbgw_ua_qname q = {0, {(int32_t)(sizeof prop_name - 1), (uint8_t *)(uintptr_t)prop_name}};
    tbgw_ua_nodeid prop = tbgw_ua_nodeid_num(0, 0);
    uint32_t st = 0;
    int rc = tbgw_ua_translate(oc->client, meth, &q, 1, &prop, &st);
    if (rc == 0 && status_good(st)) {
        tbgw_ua_datavalue dv;
        rc = tbgw_ua_read(oc->client, &prop, 1, TBGW_UA_ATTR_VALUE, &dv);
        if (rc == 0 && (!(dv.mask & TBGW_UA_DV_STATUS) || status_good(dv.status))) {
            if (tbgw_ua_arguments_from_variant(&dv.value, &sig->args, &sig->n) == 0 &&
                (sig->types = calloc(sig->n ? sig->n : 1, 1)) != NULL) {
                sig->known = 1;
                for (size_t i = 0; i < sig->n; i++)
                    sig->types[i] = datatype_builtin(oc, &sig->args[i].data_type);
            } else
                TBGW_WARNF(oc->host->log,
                           "method %s: InputArguments not understood; arguments keep their JSON types", name);
        }
        if (rc == 0) tbgw_ua_datavalue_clear(&dv);
        tbgw_ua_nodeid_clear(&prop);
    }
    if (rc && !client_ready(oc)) {
        tbgw_ua_nodeid_clear(&sig->method);
        free(sig);
        return NULL;
    }
    sig->next = oc->sigs;
    oc->sigs = sig;
    return sig;
}

/* The RPC params as a list of values: a list, {"arguments":[...]}, or one value; NULL for none. */
static json_t *param_list(const json_t *params) {
    if (json_is_array(params)) return json_incref((json_t *)params);
    if (json_is_object(params) && json_is_array(json_object_get(params, "arguments")))
        return json_incref(json_object_get(params, "arguments"));
    if (params && !json_is_null(params) && !json_is_object(params)) return json_pack("[O]", params);
    return NULL;
}

/* One argument without a declared type: a configured argument's type applies to the value
 * replacing it, else the value's JSON type. */
static int untyped_arg(const json_t *conf, const json_t *p, tbgw_ua_variant *out) {
    if (!p) return opcua_variant_from_arg(conf, out);
    if (!json_is_object(conf) || !json_object_get(conf, "type")) return opcua_variant_from_json(p, out);
    json_t *tmp = json_pack("{s:O,s:O}", "type", json_object_get(conf, "type"), "value", p);
    int err = tmp ? opcua_variant_from_arg(tmp, out) : TBGW_ENOMEM;
    if (err && err != TBGW_ENOMEM) err = opcua_variant_from_json(p, out);
    json_decref(tmp);
    return err;
}

/* {"a": 7, "b": 8}: values by the declared argument names, the configured ones for names not given.
 * NULL with err set for a name the method does not declare. */
static json_t *named_values(const opcua_rpc_cfg *rc, const json_t *params, const opcua_method_sig *sig,
                            char *err, size_t errlen) {
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)params, key, val) {
        size_t i = 0;
        while (i < sig->n && strcmp(sig->args[i].name, key) != 0) i++;
        if (i == sig->n) {
            snprintf(err, errlen, "%s has no argument '%s'", rc->method, key);
            return NULL;
        }
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < sig->n; i++) {
        const json_t *v = json_object_get(params, sig->args[i].name);
        const json_t *conf = json_array_get(rc->args, i);
        if (!v) v = json_is_object(conf) ? json_object_get(conf, "value") : conf;
        json_array_append_new(list, v ? json_incref((json_t *)v) : json_null());
    }
    return list;
}

/* The values given for the method's arguments, as a list (NULL: none given, or a bad name). */
static json_t *rpc_values(const opcua_rpc_cfg *rc, const json_t *params, const opcua_method_sig *sig,
                          char *err, size_t errlen) {
    int typed = sig && sig->known;
    if (typed && json_is_object(params) && !json_object_get(params, "arguments"))
        return named_values(rc, params, sig, err, errlen);
    json_t *plist = param_list(params);
    if (typed && sig->n == 1 && sig->args[0].value_rank >= 0 && json_array_size(plist) > 0 &&
        !json_is_array(json_array_get(plist, 0))) {
        /* one list argument: [1, 2, 3] is that list */
        json_t *wrapped = json_pack("[O]", plist);
        json_decref(plist);
        plist = wrapped;
    }
    return plist;
}

/* Arguments: RPC params (a list, or one value) override the configured ones position by position.
 * With a known signature every value is encoded as its declared argument. On TBGW_EINVAL err says
 * which argument and why. */
static int build_args(const opcua_rpc_cfg *rc, const json_t *params, const opcua_method_sig *sig,
                      tbgw_ua_variant **out, size_t *n, char *err, size_t errlen) {
    json_t *plist = rpc_values(rc, params, sig, err, errlen);
    if (!plist && json_is_object(params) && !json_object_get(params, "arguments") && sig && sig->known)
        return TBGW_EINVAL; /* err names the unknown key */
    size_t np = plist ? json_array_size(plist) : 0, nc = json_array_size(rc->args);
    size_t total = np > nc ? np : nc;
    *n = 0;
    *out = NULL;
    int typed = sig && sig->known;
    if (typed && total != sig->n) {
        if (total > sig->n)
            snprintf(err, errlen, "%s takes %zu argument%s, got %zu", rc->method, sig->n,
                     sig->n == 1 ? "" : "s", total);
        else
            snprintf(err, errlen, "%s: argument %zu '%s' (%s) is missing", rc->method, total + 1,
                     sig->args[total].name,
                     sig->types[total] ? tbgw_ua_type_name(sig->types[total]) : "any type");
        json_decref(plist);
        return TBGW_EINVAL;
    }
    *out = calloc(total ? total : 1, sizeof **out);
    if (!*out) return json_decref(plist), TBGW_ENOMEM;
    int e = 0;
    for (size_t i = 0; i < total && !e; i++) {
        const json_t *conf = json_array_get(rc->args, i);
        const json_t *p = i < np ? json_array_get(plist, i) : NULL;
        if (json_is_object(p) && json_object_get(p, "value")) p = json_object_get(p, "value");
        if (typed) {
            const json_t *v = p ? p : json_is_object(conf) ? json_object_get(conf, "value") : conf;
            char why[200] = "";
            e = opcua_arg_from_json(v, &sig->args[i], sig->types[i], i, &(*out)[i], why, sizeof why);
            if (e == TBGW_EINVAL) snprintf(err, errlen, "%s: %s", rc->method, why);
        } else {
            e = untyped_arg(conf, p, &(*out)[i]);
            if (e == TBGW_EINVAL) snprintf(err, errlen, "%s: argument %zu: invalid value", rc->method, i + 1);
        }
        if (!e) (*n)++;
    }
    json_decref(plist);
    return e;
}

static json_t *outputs_json(const tbgw_ua_variant *outs, size_t nout) {
    if (nout == 0) return json_null();
    if (nout == 1) return opcua_variant_to_json(&outs[0]);
    json_t *result = json_array();
    for (size_t i = 0; i < nout; i++) json_array_append_new(result, opcua_variant_to_json(&outs[i]));
    return result;
}

/* Calls the configured method on the device; on failure NULL with the reason in err. */
static json_t *call_method(opcua_conn *oc, opcua_device *d, const opcua_rpc_cfg *rc, const json_t *params,
                           char *err, size_t errlen) {
    tbgw_ua_nodeid meth;
    int found = find_method(oc, d, rc->method, &meth);
    if (found <= 0) {
        snprintf(err, errlen, "%s", found < 0 ? tbgw_ua_client_last_error(oc->client) : "Method not found");
        return NULL;
    }
    const opcua_method_sig *sig = method_sig(oc, &meth, rc->method);
    tbgw_ua_variant *args = NULL, *outs = NULL;
    size_t n = 0, nout = 0;
    uint32_t st = 0;
    json_t *result = NULL;
    char nb[16];
    int brc = sig ? build_args(rc, params, sig, &args, &n, err, errlen) : TBGW_EIO;
    if (!sig)
        snprintf(err, errlen, "%s", tbgw_ua_client_last_error(oc->client));
    else if (brc == TBGW_ENOMEM)
        snprintf(err, errlen, "out of memory");
    else if (brc)
        ; /* err names the argument */
    else if (tbgw_ua_call(oc->client, &d->node, &meth, args, n, &st, &outs, &nout))
        snprintf(err, errlen, "%s", tbgw_ua_client_last_error(oc->client));
    else if (st & 0x80000000u)
        snprintf(err, errlen, "%s", tbgw_ua_status_name(st, nb));
    else
        result = outputs_json(outs, nout);
    if (!result && brc == TBGW_EINVAL)
        TBGW_WARNF(oc->host->log, "RPC %s for %s refused: %s", rc->method, d->name, err);
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
    char error[256] = "Requested rpc method is not found in config";
    for (size_t i = 0; i < oc->n_devs; i++) {
        const opcua_rpc_cfg *rc = find_rpc_cfg(&oc->devs[i], r->method);
        if (!rc) continue;
        json_t *res = call_method(oc, &oc->devs[i], rc, r->params, error, sizeof error);
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
        char error[256] = "Method call failed";
        json_t *res = call_method(oc, d, rc, r->params, error, sizeof error);
        if (res)
            reply(oc, r, json_pack("{s:o}", "result", res));
        else
            reply_error(oc, r, error);
    }
    return 0;
}
