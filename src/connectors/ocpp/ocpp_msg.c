/* OCPP-J frames, key conventions, the central system's answers and the uplink conversion. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/ocpp/ocpp_internal.h"
#include "util/buf.h"
#include "util/json.h"

/* ---- frames ---- */

void ocpp_frame_clear(ocpp_frame *f) {
    json_decref(f->root);
    memset(f, 0, sizeof *f);
}

int ocpp_frame_parse(const char *text, size_t len, ocpp_frame *f, char *why, size_t why_len, char *uid_out,
                     size_t uid_len) {
    memset(f, 0, sizeof *f);
    if (uid_out && uid_len) uid_out[0] = 0;
    json_error_t je;
    json_t *r = tbgw_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!r) {
        snprintf(why, why_len, "ProtocolError: not JSON (%s at %d)", je.text, je.position);
        return -1;
    }
    if (!json_is_array(r) || json_array_size(r) < 3 || !json_is_integer(json_array_get(r, 0))) {
        snprintf(why, why_len, "ProtocolError: an OCPP-J message is [MessageTypeId, UniqueId, ...]");
        json_decref(r);
        return -1;
    }
    const char *uid = json_string_value(json_array_get(r, 1));
    if (!uid || strlen(uid) > 36) {
        snprintf(why, why_len, "ProtocolError: UniqueId must be a string of at most 36 characters");
        json_decref(r);
        return -1;
    }
    if (uid_out) snprintf(uid_out, uid_len, "%s", uid);
    f->root = r;
    f->uid = uid;
    f->type = (int)json_integer_value(json_array_get(r, 0));
    size_t n = json_array_size(r);
    if (f->type == OCPP_CALL) {
        f->action = json_string_value(json_array_get(r, 2));
        f->payload = json_array_get(r, 3);
        if (n != 4 || !f->action || !json_is_object(f->payload)) {
            snprintf(why, why_len, "FormationViolation: a CALL is [2, UniqueId, Action, {payload}]");
            ocpp_frame_clear(f);
            return -1;
        }
    } else if (f->type == OCPP_RESULT) {
        f->payload = json_array_get(r, 2);
        if (n != 3 || !json_is_object(f->payload)) {
            snprintf(why, why_len, "FormationViolation: a CALLRESULT is [3, UniqueId, {payload}]");
            ocpp_frame_clear(f);
            return -1;
        }
    } else if (f->type == OCPP_ERROR) {
        f->err_code = json_string_value(json_array_get(r, 2));
        f->err_desc = json_string_value(json_array_get(r, 3));
        if (n < 4 || !f->err_code) {
            snprintf(why, why_len, "FormationViolation: a CALLERROR is [4, UniqueId, code, description, {}]");
            ocpp_frame_clear(f);
            return -1;
        }
    } else {
        snprintf(why, why_len, "ProtocolError: unknown MessageTypeId %d", f->type);
        ocpp_frame_clear(f);
        return -1;
    }
    return 0;
}

static char *dump(json_t *a) {
    char *s = a ? tbgw_json_dumps(a, 0) : NULL;
    json_decref(a);
    return s;
}

char *ocpp_result_text(const char *uid, const json_t *payload) {
    return dump(json_pack("[i,s,O]", OCPP_RESULT, uid, payload));
}

char *ocpp_error_text(const char *uid, const char *code, const char *desc) {
    return dump(json_pack("[i,s,s,s,{}]", OCPP_ERROR, uid, code, desc));
}

char *ocpp_call_text(const char *uid, const char *action, const json_t *payload) {
    return dump(json_pack("[i,s,s,O]", OCPP_CALL, uid, action, payload));
}

/* ---- key conventions ---- */

static int up(char c) {
    return c >= 'A' && c <= 'Z';
}
static int low(char c) {
    return c >= 'a' && c <= 'z';
}

/* Two passes as the reference: "(.)([A-Z][a-z]+)" -> "\1_\2", then "([a-z0-9])([A-Z])(?=\S)" -> "\1_\2",
 * then lower case. */
void ocpp_snake_key(const char *in, char *out) {
    size_t n = strlen(in), o = 0;
    char *tmp = malloc(2 * n + 1);
    if (!tmp) {
        strcpy(out, in);
        return;
    }
    for (size_t i = 0; i < n;) {
        if (i + 2 < n && up(in[i + 1]) && low(in[i + 2])) {
            tmp[o++] = in[i];
            tmp[o++] = '_';
            tmp[o++] = in[i + 1];
            i += 2;
            while (i < n && low(in[i])) tmp[o++] = in[i++];
            continue;
        }
        tmp[o++] = in[i++];
    }
    tmp[o] = 0;
    size_t m = o;
    o = 0;
    for (size_t i = 0; i < m;) {
        char c = tmp[i];
        if ((low(c) || (c >= '0' && c <= '9')) && i + 1 < m && up(tmp[i + 1]) && i + 2 < m &&
            !isspace((unsigned char)tmp[i + 2])) {
            out[o++] = c;
            out[o++] = '_';
            out[o++] = tmp[i + 1];
            i += 2;
            continue;
        }
        out[o++] = tmp[i++];
    }
    out[o] = 0;
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
    free(tmp);
}

/* components[0] + capitalised rest, split at '_'. */
static void camel_key(const char *in, char *out) {
    size_t o = 0;
    int upper_next = 0, first = 1;
    for (const char *p = in; *p; p++) {
        if (*p == '_') {
            upper_next = 1;
            first = 0;
            continue;
        }
        out[o++] = upper_next && !first ? (char)toupper((unsigned char)*p) : *p;
        upper_next = 0;
    }
    out[o] = 0;
}

static json_t *convert_keys(const json_t *v, int snake) {
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            char *nk = malloc(2 * strlen(k) + 1);
            if (!nk) break;
            if (snake)
                ocpp_snake_key(k, nk);
            else
                camel_key(k, nk);
            json_object_set_new(o, nk, convert_keys(x, snake));
            free(nk);
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, convert_keys(x, snake));
        return a;
    }
    return json_incref((json_t *)v);
}

json_t *ocpp_snake_keys(const json_t *v) {
    return convert_keys(v, 1);
}
json_t *ocpp_camel_keys(const json_t *v) {
    return convert_keys(v, 0);
}

json_t *ocpp_parse_embedded(const json_t *payload) {
    json_t *o = json_deep_copy(payload);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        const char *s = json_string_value(v);
        if (!s) continue;
        json_error_t je;
        json_t *j = tbgw_json_loads(s, 0, &je);
        if (j && (json_is_object(j) || json_is_array(j)))
            json_object_set_new(o, k, j);
        else
            json_decref(j);
    }
    return o;
}

/* ---- answers of the central system ---- */

static void now_iso(char *out, size_t n, int zulu) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, zulu ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%dT%H:%M:%S", &tm);
}

json_t *ocpp_answer(int v, const char *action, const json_t *payload, int *tx_counter, const char **code,
                    const char **desc) {
    char now[40];
    now_iso(now, sizeof now, 1);
    if (strcmp(action, "BootNotification") == 0)
        return json_pack("{s:s,s:i,s:s}", "currentTime", now, "interval", 10, "status", "Accepted");
    if (strcmp(action, "Heartbeat") == 0) return json_pack("{s:s}", "currentTime", now);
    if (strcmp(action, "DataTransfer") == 0) return json_pack("{s:s}", "status", "Accepted");
    if (strcmp(action, "MeterValues") == 0 || strcmp(action, "StatusNotification") == 0 ||
        strcmp(action, "FirmwareStatusNotification") == 0 ||
        strcmp(action, "DiagnosticsStatusNotification") == 0 ||
        strcmp(action, "LogStatusNotification") == 0 || strcmp(action, "SecurityEventNotification") == 0 ||
        strcmp(action, "NotifyReport") == 0 || strcmp(action, "NotifyEvent") == 0)
        return json_object();
    if (v == 16) {
        if (strcmp(action, "Authorize") == 0)
            return json_pack("{s:{s:s}}", "idTagInfo", "status", "Accepted");
        if (strcmp(action, "StartTransaction") == 0)
            return json_pack("{s:i,s:{s:s}}", "transactionId", ++*tx_counter, "idTagInfo", "status",
                             "Accepted");
        if (strcmp(action, "StopTransaction") == 0)
            return json_pack("{s:{s:s}}", "idTagInfo", "status", "Accepted");
    } else {
        if (strcmp(action, "Authorize") == 0)
            return json_pack("{s:{s:s}}", "idTokenInfo", "status", "Accepted");
        if (strcmp(action, "TransactionEvent") == 0)
            return json_object_get(payload, "idToken")
                       ? json_pack("{s:{s:s}}", "idTokenInfo", "status", "Accepted")
                       : json_object();
    }
    *code = "NotImplemented";
    *desc = "this central system does not handle that action";
    return NULL;
}

json_t *ocpp_boot_profile(int v, const json_t *p) {
    const char *vendor, *model;
    if (v == 16) {
        vendor = json_string_value(json_object_get(p, "charge_point_vendor"));
        model = json_string_value(json_object_get(p, "charge_point_model"));
    } else {
        const json_t *cs = json_object_get(p, "charging_station");
        vendor = json_string_value(json_object_get(cs, "vendor_name"));
        model = json_string_value(json_object_get(cs, "model"));
    }
    return json_pack("{s:s,s:s}", "Vendor", vendor ? vendor : "", "Model", model ? model : "");
}

/* ---- conversion ---- */

static int applies(const ocpp_key *k, const char *action) {
    for (size_t i = 0; i < k->n_actions; i++)
        if (strcmp(k->actions[i], action) == 0) return 1;
    return 0;
}

tbgw_converted *ocpp_convert(const ocpp_cp_cfg *cp, const char *device, const char *type, const char *action,
                             const json_t *p) {
    tbgw_converted *rec = NULL;
    tbgw_buf k, v;
    tbgw_buf_init(&k);
    tbgw_buf_init(&v);
    const json_t *jts = json_object_get(p, "ts");
    int64_t ts = json_is_integer(jts) ? (int64_t)json_integer_value(jts) : tbgw_now_ms();
    for (int t = 0; t < 2; t++) {
        const ocpp_key *list = t ? cp->ts : cp->attrs;
        size_t n = t ? cp->n_ts : cp->n_attrs;
        for (size_t i = 0; i < n; i++) {
            if (!applies(&list[i], action)) continue;
            tbgw_buf_reset(&k);
            tbgw_buf_reset(&v);
            /* a placeholder that matches nothing stays as written, as in the reference */
            if (tbgw_expr_render(list[i].key, p, TBGW_FMT_PY, TBGW_MISSING_KEEP, &k) ||
                tbgw_expr_render(list[i].value, p, TBGW_FMT_PY, TBGW_MISSING_KEEP, &v) || k.oom || v.oom)
                continue;
            if (!rec && !(rec = tbgw_converted_new(device, type))) goto out;
            tbgw_value tv = tbgw_value_string(tbgw_buf_cstr(&v));
            if (t)
                tbgw_converted_add_telemetry(rec, ts, tbgw_buf_cstr(&k), &tv, NULL);
            else
                tbgw_converted_add_attribute(rec, tbgw_buf_cstr(&k), &tv, NULL);
        }
    }
out:
    tbgw_buf_free(&k);
    tbgw_buf_free(&v);
    return rec;
}

/* ---- configuration of a charge point ---- */

static pcre2_code *re_compile(const char *pat, const char *path, tbgw_err *err) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        tbgw_err_set(err, TBGW_EINVAL, "%s: bad regular expression at offset %zu: %s", path, (size_t)off,
                     (const char *)msg);
    }
    return re;
}

static int compile_tmpl(const json_t *o, const char *k, const char *def, const char *path, tbgw_expr **out,
                        tbgw_err *err) {
    const char *s = json_string_value(json_object_get(o, k));
    if (!s) s = def;
    if (!s) return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected a string", path, k);
    if (tbgw_expr_compile(s, out, err) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: %s", path, k, why);
    }
    return 0;
}

static void key_free(ocpp_key *k) {
    for (size_t i = 0; i < k->n_actions; i++) free(k->actions[i]);
    free(k->actions);
    tbgw_expr_free(k->key);
    tbgw_expr_free(k->value);
}

static void key_drop(void *slot) {
    key_free(slot);
}

static int key_parse(tbgw_cfg *w, const json_t *e, const char *p, void *slot, void *ud, tbgw_err *err) {
    (void)w, (void)ud;
    ocpp_key *k = slot;
    const char *filter = json_string_value(json_object_get(e, "messageTypeFilter"));
    if (!filter) return tbgw_err_set(err, TBGW_EINVAL, "%s.messageTypeFilter: expected \"Action,Action\"", p);
    char *copy = strdup(filter), *save = NULL;
    k->actions = calloc(strlen(filter) / 2 + 2, sizeof *k->actions);
    if (!copy || !k->actions) {
        free(copy);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        while (*a == ' ') a++;
        for (char *z = a + strlen(a); z > a && z[-1] == ' ';) *--z = 0;
        if (*a) k->actions[k->n_actions++] = strdup(a);
    }
    free(copy);
    if (compile_tmpl(e, "key", NULL, p, &k->key, err) || compile_tmpl(e, "value", NULL, p, &k->value, err))
        return TBGW_EINVAL;
    return 0;
}

/* attributes / timeseries of a charge point: a bad entry is reported and skipped; a section that is not
 * a list is reported and ignored (it always was). */
static int keys_parse(tbgw_cfg *w, const json_t *e, const char *path, const char *key, ocpp_key **out,
                      size_t *n) {
    *out = NULL;
    *n = 0;
    const json_t *l = json_object_get(e, key);
    if (l && !json_is_null(l) && !json_is_array(l)) {
        char p[256];
        snprintf(p, sizeof p, "%s.%s", path, key);
        tbgw_cfg_skip(w, p, "expected a list; the section is ignored");
        return 0;
    }
    int rc = tbgw_cfg_list(w, e, path, key, sizeof **out, (void **)out, n, key_parse, key_drop, NULL);
    return rc < 0 ? rc : 0;
}

int ocpp_cp_parse(tbgw_cfg *w, const json_t *e, const char *path, ocpp_cp_cfg *cp, tbgw_err *err) {
    memset(cp, 0, sizeof *cp);
    cp->cfg = e;
    const char *id = json_string_value(json_object_get(e, "idRegexpPattern"));
    char p[200];
    snprintf(p, sizeof p, "%s.idRegexpPattern", path);
    if (!id) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected a regular expression", p);
    if (!(cp->id_re = re_compile(id, p, err))) return TBGW_EINVAL;
    const char *h = json_string_value(json_object_get(e, "host"));
    snprintf(p, sizeof p, "%s.host", path);
    if (h && !(cp->host_re = re_compile(h, p, err))) return TBGW_EINVAL;
    const json_t *port = json_object_get(e, "port");
    char portbuf[32];
    const char *ps = json_string_value(port);
    if (json_is_integer(port)) {
        snprintf(portbuf, sizeof portbuf, "%lld", (long long)json_integer_value(port));
        ps = portbuf;
    }
    snprintf(p, sizeof p, "%s.port", path);
    if (ps && !(cp->port_re = re_compile(ps, p, err))) return TBGW_EINVAL;
    if (compile_tmpl(e, "deviceNameExpression", "${Vendor} ${Model}", path, &cp->name, err) ||
        compile_tmpl(e, "deviceTypeExpression", "default", path, &cp->type, err))
        return TBGW_EINVAL;
    if (keys_parse(w, e, path, "attributes", &cp->attrs, &cp->n_attrs) ||
        keys_parse(w, e, path, "timeseries", &cp->ts, &cp->n_ts))
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    const char *ext = json_string_value(json_object_get(e, "extension"));
    if (ext && strcmp(ext, "OcppUplinkConverter") != 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.extension: \"%s\" is not available (OcppUplinkConverter is)", path, ext);
    return 0;
}

void ocpp_cp_free(ocpp_cp_cfg *cp) {
    pcre2_code_free(cp->id_re);
    pcre2_code_free(cp->host_re);
    pcre2_code_free(cp->port_re);
    tbgw_expr_free(cp->name);
    tbgw_expr_free(cp->type);
    for (size_t i = 0; i < cp->n_attrs; i++) key_free(&cp->attrs[i]);
    for (size_t i = 0; i < cp->n_ts; i++) key_free(&cp->ts[i]);
    free(cp->attrs);
    free(cp->ts);
    memset(cp, 0, sizeof *cp);
}

/* re.match: anchored at the start, not at the end. */
static int re_match(const pcre2_code *re, const char *s) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, PCRE2_ANCHORED, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

int ocpp_cp_matches(const ocpp_cp_cfg *cp, const char *id, const char *peer_host, int peer_port) {
    if (!re_match(cp->id_re, id)) return 0;
    if (cp->host_re && !re_match(cp->host_re, peer_host ? peer_host : "")) return 0;
    if (cp->port_re) {
        char ps[16];
        snprintf(ps, sizeof ps, "%d", peer_port);
        if (!re_match(cp->port_re, ps)) return 0;
    }
    return 1;
}
