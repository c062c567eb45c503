/* SNMP operations: each configured method becomes one or more PDUs sent with net-snmp's
 * asynchronous single-session API; the answers drive the next PDU (walks, typed sets) until the
 * operation completes. One operation per device is in flight at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/snmp/snmpc.h"
#include "util/time.h"

#define MAX_WALK 100000 /* varbinds per walk: a misbehaving agent cannot make it endless */

void snmp_op_free(snmp_op *op) {
    if (!op) return;
    json_decref(op->value);
    json_decref(op->result);
    free(op->types);
    if (op->owned) {
        snmp_item_free(op->owned);
        free(op->owned);
    }
    free(op);
}

void snmp_op_submit(snmp_dev *d, snmp_op *op, int urgent) {
    op->dev = d;
    op->next = NULL;
    if (!d->queue) {
        d->queue = d->queue_tail = op;
    } else if (urgent) {
        /* behind the one in flight, ahead of queued polls */
        op->next = d->queue->next;
        d->queue->next = op;
        if (d->queue_tail == d->queue) d->queue_tail = op;
    } else {
        d->queue_tail->next = op;
        d->queue_tail = op;
    }
    d->queued++;
}

static void pop_head(snmp_dev *d, snmp_op *op) {
    if (d->queue != op) return;
    d->queue = op->next;
    if (!d->queue) d->queue_tail = NULL;
    d->queued--;
}

/* Completes the head operation and starts the next one. */
static void finish(snmp_op *op, int ok, const char *error) {
    snmp_dev *d = op->dev;
    pop_head(d, op);
    op->reqid = 0;
    snmp_op_done(op, ok, error);
    snmp_dev_kick(d);
}

void snmp_dev_fail_all(snmp_dev *d, const char *why) {
    while (d->queue) {
        snmp_op *op = d->queue;
        pop_head(d, op);
        op->reqid = 0;
        snmp_op_done(op, 0, why);
    }
}

static int is_bulk(const snmp_op *op) {
    snmp_method m = op->item->method;
    return (m == SM_BULKWALK || m == SM_BULKTABLE || m == SM_BULKGET) &&
           op->dev->cfg->version != SNMP_VERSION_1;
}

static int is_walk(snmp_method m) {
    return m == SM_WALK || m == SM_MULTIWALK || m == SM_BULKWALK || m == SM_TABLE || m == SM_BULKTABLE;
}

/* The OIDs and values of a set: (oid, value) pairs. */
static size_t set_pairs(const snmp_op *op, snmp_oid *oids, const json_t **vals, size_t cap) {
    const snmp_item *it = op->item;
    if (it->method == SM_SET) {
        oids[0] = it->oids[0];
        vals[0] = op->value ? op->value : it->value;
        return 1;
    }
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(it->mappings, k, v) {
        if (n >= cap) break;
        if (snmp_oid_parse(k, &oids[n])) continue;
        /* "${...}" in a mapping stands for the value the request carries */
        vals[n] = (json_is_string(v) && strstr(json_string_value(v), "${") && op->value) ? op->value : v;
        n++;
    }
    return n;
}

static netsnmp_pdu *build(snmp_op *op, char *err, size_t errlen) {
    const snmp_item *it = op->item;
    netsnmp_pdu *pdu = NULL;
    switch (it->method) {
    case SM_GET:
    case SM_MULTIGET:
        pdu = snmp_pdu_create(SNMP_MSG_GET);
        for (size_t i = 0; i < (it->method == SM_GET ? 1 : it->n_oids); i++)
            snmp_add_null_var(pdu, it->oids[i].v, it->oids[i].len);
        break;
    case SM_GETNEXT:
        pdu = snmp_pdu_create(SNMP_MSG_GETNEXT);
        snmp_add_null_var(pdu, it->oids[0].v, it->oids[0].len);
        break;
    case SM_BULKGET:
        if (!is_bulk(op)) {
            pdu = snmp_pdu_create(SNMP_MSG_GET);
            for (size_t i = 0; i < it->n_oids; i++) snmp_add_null_var(pdu, it->oids[i].v, it->oids[i].len);
            break;
        }
        pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
        pdu->non_repeaters = (long)it->n_oids;
        pdu->max_repetitions = it->max_list;
        for (size_t i = 0; i < it->n_oids; i++) snmp_add_null_var(pdu, it->oids[i].v, it->oids[i].len);
        for (size_t i = 0; i < it->n_rep; i++) snmp_add_null_var(pdu, it->rep[i].v, it->rep[i].len);
        break;
    case SM_WALK:
    case SM_MULTIWALK:
    case SM_TABLE:
    case SM_BULKWALK:
    case SM_BULKTABLE:
        if (is_bulk(op)) {
            pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
            pdu->non_repeaters = 0;
            pdu->max_repetitions = it->bulk;
        } else {
            pdu = snmp_pdu_create(SNMP_MSG_GETNEXT);
        }
        snmp_add_null_var(pdu, op->cur.v, op->cur.len);
        break;
    case SM_SET:
    case SM_MULTISET: {
        snmp_oid oids[64];
        const json_t *vals[64];
        size_t n = set_pairs(op, oids, vals, 64);
        if (!n) {
            snprintf(err, errlen, "nothing to set");
            return NULL;
        }
        if (op->stage == 0) { /* learn the types of the variables first */
            pdu = snmp_pdu_create(SNMP_MSG_GET);
            for (size_t i = 0; i < n; i++) snmp_add_null_var(pdu, oids[i].v, oids[i].len);
            break;
        }
        pdu = snmp_pdu_create(SNMP_MSG_SET);
        for (size_t i = 0; i < n; i++) {
            u_char buf[1024];
            size_t len = 0;
            char e2[160];
            if (!vals[i]) {
                snmp_free_pdu(pdu);
                snprintf(err, errlen, "no value to set");
                return NULL;
            }
            u_char t = op->types[i];
            if (snmp_set_value(t, vals[i], buf, sizeof buf, &len, e2, sizeof e2)) {
                char o[256];
                snmp_oid_format(oids[i].v, oids[i].len, o, sizeof o);
                snprintf(err, errlen, "%s: %s", o, e2);
                snmp_free_pdu(pdu);
                return NULL;
            }
            snmp_pdu_add_variable(pdu, oids[i].v, oids[i].len, (u_char)(t & 0x7F), buf, len);
        }
        break;
    }
    default:
        snprintf(err, errlen, "unsupported method");
        return NULL;
    }
    if (!pdu) snprintf(err, errlen, "out of memory");
    return pdu;
}

static void send_op(snmp_op *op) {
    char err[300] = "";
    netsnmp_pdu *pdu = build(op, err, sizeof err);
    if (!pdu) {
        finish(op, 0, err);
        return;
    }
    op->reqid = snmp_sess_async_send(op->dev->sess, pdu, snmp_session_callback, op);
    if (!op->reqid) {
        char *msg = NULL;
        int e1 = 0, e2 = 0;
        snmp_sess_error(op->dev->sess, &e1, &e2, &msg);
        snprintf(err, sizeof err, "send failed: %s", msg ? msg : "?");
        free(msg);
        snmp_free_pdu(pdu);
        finish(op, 0, err);
    }
}

void snmp_dev_kick(snmp_dev *d) {
    if (!d->sess || !d->queue || d->queue->reqid) return;
    snmp_op *op = d->queue;
    op->started = tbgw_mono_ms();
    if (is_walk(op->item->method) && op->idx == 0 && !op->cur.len) op->cur = op->item->oids[0];
    if ((op->item->method == SM_SET || op->item->method == SM_MULTISET) && !op->types) {
        size_t n = op->item->method == SM_SET ? 1 : json_object_size(op->item->mappings);
        op->types = calloc(n + 1, 1);
        if (!op->types) {
            finish(op, 0, "out of memory");
            return;
        }
        if (op->item->set_type && op->item->method == SM_SET) {
            op->types[0] = op->item->set_type;
            op->stage = 1;
        }
    }
    send_op(op);
}

static void vb_warn(snmp_op *op, const netsnmp_variable_list *vb, const char *why) {
    char o[256];
    snmp_oid_format(vb->name, vb->name_length, o, sizeof o);
    op->dev->s->vb_errors++;
    op->dev->s->host->stat_add(op->dev->s->host, TBGW_STAT_CONVERTER_ERRORS, 1);
    snmp_dev_error(op->dev, "%s %s: %s; skipped", snmp_method_name(op->item->method), o, why);
}

/* A walk answer: 1 when the walk of the current base goes on, 0 when it ended. */
static int walk_step(snmp_op *op, const netsnmp_pdu *pdu) {
    const snmp_oid *base = &op->item->oids[op->idx];
    int more = 0;
    for (const netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable) {
        if (vb->type == SNMP_ENDOFMIBVIEW || !snmp_oid_in_subtree(vb->name, vb->name_length, base)) return 0;
        if (snmp_oid_compare(vb->name, vb->name_length, op->cur.v, op->cur.len) <= 0) {
            vb_warn(op, vb, "OID not increasing; walk ended");
            return 0;
        }
        char err[120] = "";
        json_t *v = snmp_vb_to_json(vb, err, sizeof err);
        if (!v) {
            vb_warn(op, vb, err);
        } else if (op->item->method == SM_TABLE || op->item->method == SM_BULKTABLE) {
            snmp_table_add(op->result, base, vb->name, vb->name_length, v);
            json_decref(v);
        } else {
            char o[256];
            snmp_oid_format(vb->name, vb->name_length, o, sizeof o);
            json_object_set_new(op->result, o, v);
        }
        memcpy(op->cur.v, vb->name, vb->name_length * sizeof(oid));
        op->cur.len = vb->name_length;
        more = 1;
        if (++op->walked > MAX_WALK) {
            vb_warn(op, vb, "walk longer than 100000 varbinds; cut");
            return 0;
        }
    }
    return more;
}

static json_t *vb_value(snmp_op *op, const netsnmp_variable_list *vb) {
    char err[120] = "";
    json_t *v = snmp_vb_to_json(vb, err, sizeof err);
    if (!v) vb_warn(op, vb, err);
    return v;
}

static void on_response(snmp_op *op, netsnmp_pdu *pdu) {
    const snmp_item *it = op->item;
    char err[300];
    if (pdu->errstat != SNMP_ERR_NOERROR) {
        /* v1 walks end with noSuchName */
        if (is_walk(it->method) && pdu->errstat == SNMP_ERR_NOSUCHNAME &&
            op->dev->cfg->version == SNMP_VERSION_1)
            goto next_base;
        snprintf(err, sizeof err, "the agent answered %s (index %ld)", snmp_errstring((int)pdu->errstat),
                 pdu->errindex);
        finish(op, 0, err);
        return;
    }
    if (!op->result) op->result = (it->method == SM_MULTIGET) ? json_array() : json_object();
    switch (it->method) {
    case SM_GET: {
        json_t *v = pdu->variables ? vb_value(op, pdu->variables) : NULL;
        json_decref(op->result);
        op->result = v;
        if (!v) {
            finish(op, 0, "no value");
            return;
        }
        break;
    }
    case SM_MULTIGET:
        for (netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable) {
            json_t *v = vb_value(op, vb);
            if (v) json_array_append_new(op->result, v);
        }
        break;
    case SM_GETNEXT:
    case SM_BULKGET: {
        size_t n = 0, lim = it->method == SM_BULKGET ? it->n_oids : 1;
        for (netsnmp_variable_list *vb = pdu->variables; vb && n < lim; vb = vb->next_variable, n++) {
            json_t *v = vb_value(op, vb);
            char o[256];
            snmp_oid_format(vb->name, vb->name_length, o, sizeof o);
            if (v) json_object_set_new(op->result, o, v);
        }
        break;
    }
    case SM_SET:
    case SM_MULTISET: {
        size_t i = 0;
        if (op->stage == 0) {
            for (netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable, i++) {
                if (vb->type == SNMP_NOSUCHOBJECT || vb->type == SNMP_NOSUCHINSTANCE ||
                    vb->type == ASN_NULL) {
                    char o[256];
                    snmp_oid_format(vb->name, vb->name_length, o, sizeof o);
                    snprintf(err, sizeof err,
                             "%s: cannot learn the variable's type (%s); give \"type\" in the entry", o,
                             vb->type == ASN_NULL ? "no value" : "no such object");
                    finish(op, 0, err);
                    return;
                }
                op->types[i] = (op->item->set_type && it->method == SM_SET) ? op->item->set_type : vb->type;
            }
            op->stage = 1;
            send_op(op);
            return;
        }
        for (netsnmp_variable_list *vb = pdu->variables; vb; vb = vb->next_variable) {
            json_t *v = vb_value(op, vb);
            if (!v) continue;
            if (it->method == SM_SET) {
                json_decref(op->result);
                op->result = v;
                break;
            }
            char o[256];
            snmp_oid_format(vb->name, vb->name_length, o, sizeof o);
            json_object_set_new(op->result, o, v);
        }
        break;
    }
    default: /* walks */
        if (walk_step(op, pdu)) {
            send_op(op);
            return;
        }
        goto next_base;
    }
    finish(op, 1, NULL);
    return;
next_base:
    if (!op->result) op->result = json_object();
    if (it->method == SM_MULTIWALK || it->method == SM_BULKWALK) {
        if (++op->idx < it->n_oids) {
            op->cur = it->oids[op->idx];
            send_op(op);
            return;
        }
    }
    finish(op, 1, NULL);
}

int snmp_session_callback(int opcode, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic) {
    (void)sess;
    snmp_op *op = magic;
    /* net-snmp may answer under another request id after an engine discovery resend; the magic
     * pointer is the operation, which stays alive until its request completed */
    (void)reqid;
    if (!op || !op->reqid || op->dev->closing) return 1;
    /* a security error is followed by the agent's report (or a timeout); resends are internal */
    if (opcode == NETSNMP_CALLBACK_OP_SEC_ERROR || opcode == NETSNMP_CALLBACK_OP_RESEND ||
        opcode == NETSNMP_CALLBACK_OP_CONNECT)
        return 1;
    op->reqid = 0;
    if (opcode == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE && pdu) {
        if (pdu->command == SNMP_MSG_REPORT) {
            char err[200];
            snprintf(err, sizeof err, "the agent sent a report (%s)",
                     snmp_api_errstring(snmpv3_get_report_type(pdu)));
            finish(op, 0, err);
        } else {
            on_response(op, pdu);
        }
    } else if (opcode == NETSNMP_CALLBACK_OP_TIMED_OUT) {
        op->dev->timeouts++;
        finish(op, 0, "timeout");
    } else {
        finish(op, 0, "request failed");
    }
    return 1;
}
