/* OPC UA services (Part 4): Browse/BrowseNext, TranslateBrowsePathsToNodeIds, Read, Write, Call,
 * CreateSubscription, CreateMonitoredItems, DeleteMonitoredItems, DeleteSubscriptions. Large requests are
 * split into batches so a server's operation limits are not exceeded. */
#include "proto/opcua/ua_internal.h"

#include <stdlib.h>
#include <string.h>

#define UA_BATCH 500

static const tbgw_ua_nodeid null_id = {0, TBGW_UA_ID_NUMERIC, 0, {-1, NULL}, {0}};

static void enc_null_extobj(tbgw_buf *b) {
    tbgw_ua_enc_nodeid(b, &null_id);
    tbgw_ua_enc_u8(b, 0);
}

static void enc_read_value_id(tbgw_buf *b, const tbgw_ua_nodeid *id, uint32_t attr) {
    tbgw_ua_enc_nodeid(b, id);
    tbgw_ua_enc_u32(b, attr);
    tbgw_ua_enc_cstr(b, NULL); /* indexRange */
    tbgw_ua_enc_u16(b, 0);     /* dataEncoding */
    tbgw_ua_enc_cstr(b, NULL);
}

void tbgw_ua_refs_free(tbgw_ua_ref *refs, size_t n) {
    for (size_t i = 0; i < n && refs; i++) {
        tbgw_ua_expnodeid_clear(&refs[i].node);
        tbgw_ua_qname_clear(&refs[i].browse_name);
        tbgw_ua_ltext_clear(&refs[i].display_name);
    }
    free(refs);
}

/* Reads one BrowseResult, appending references; returns the continuation point in cp. */
static int read_browse_result(tbgw_ua_dec *d, tbgw_ua_ref **refs, size_t *n, uint32_t *status,
                              tbgw_ua_bytes *cp) {
    *status = tbgw_ua_dec_u32(d);
    tbgw_ua_dec_bytes(d, cp);
    int32_t m = tbgw_ua_dec_count(d, 12);
    if (d->err) return d->err;
    if (m > 0) {
        tbgw_ua_ref *r = realloc(*refs, (*n + (size_t)m) * sizeof *r);
        if (!r) return d->err = TBGW_ENOMEM;
        *refs = r;
    }
    for (int32_t i = 0; i < m; i++) {
        tbgw_ua_ref *r = &(*refs)[*n];
        memset(r, 0, sizeof *r);
        tbgw_ua_nodeid rt;
        if (tbgw_ua_dec_nodeid(d, &rt) == 0) tbgw_ua_nodeid_clear(&rt);
        r->is_forward = tbgw_ua_dec_u8(d) != 0;
        if (tbgw_ua_dec_expnodeid(d, &r->node)) break;
        if (tbgw_ua_dec_qname(d, &r->browse_name)) {
            tbgw_ua_expnodeid_clear(&r->node);
            break;
        }
        if (tbgw_ua_dec_ltext(d, &r->display_name)) {
            tbgw_ua_expnodeid_clear(&r->node);
            tbgw_ua_qname_clear(&r->browse_name);
            break;
        }
        r->node_class = tbgw_ua_dec_u32(d);
        tbgw_ua_expnodeid td;
        if (tbgw_ua_dec_expnodeid(d, &td) == 0) tbgw_ua_expnodeid_clear(&td);
        if (d->err) {
            tbgw_ua_expnodeid_clear(&r->node);
            tbgw_ua_qname_clear(&r->browse_name);
            tbgw_ua_ltext_clear(&r->display_name);
            break;
        }
        (*n)++;
    }
    if (d->err) tbgw_ua_bytes_clear(cp);
    return d->err;
}

static int browse_step(tbgw_ua_client *c, tbgw_buf *b, uint32_t resp_type, tbgw_ua_ref **refs, size_t *n,
                       tbgw_ua_bytes *cp) {
    tbgw_buf resp;
    tbgw_buf_init(&resp);
    tbgw_ua_dec d;
    cp->len = -1;
    cp->data = NULL;
    int rc = tbgw_ua_req_call(c, b, resp_type, &resp, &d);
    if (rc == 0) {
        int32_t nr = tbgw_ua_dec_count(&d, 8);
        uint32_t st = 0;
        if (nr != 1 || read_browse_result(&d, refs, n, &st, cp))
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed browse response");
        else if (UA_BAD(st))
            rc = tbgw_ua_client_fail(c, TBGW_ENOENT, st, "browse failed");
    }
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_browse(tbgw_ua_client *c, const tbgw_ua_nodeid *node, tbgw_ua_ref **refs, size_t *n) {
    return tbgw_ua_browse_ex(c, node, refs, n, NULL, NULL);
}

static int browse_refs(tbgw_ua_client *c, const tbgw_ua_nodeid *node, uint32_t ref_type, int inverse,
                       tbgw_ua_ref **refs, size_t *n, int (*yield)(void *ctx), void *ctx);

int tbgw_ua_browse_ex(tbgw_ua_client *c, const tbgw_ua_nodeid *node, tbgw_ua_ref **refs, size_t *n,
                      int (*yield)(void *ctx), void *ctx) {
    return browse_refs(c, node, TBGW_UA_NS0_HIERARCHICAL, 0, refs, n, yield, ctx);
}

int tbgw_ua_browse_inverse(tbgw_ua_client *c, const tbgw_ua_nodeid *node, uint32_t ref_type,
                           tbgw_ua_ref **refs, size_t *n) {
    return browse_refs(c, node, ref_type, 1, refs, n, NULL, NULL);
}

static int browse_refs(tbgw_ua_client *c, const tbgw_ua_nodeid *node, uint32_t ref_type, int inverse,
                       tbgw_ua_ref **refs, size_t *n, int (*yield)(void *ctx), void *ctx) {
    *refs = NULL;
    *n = 0;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_ua_req_begin(c, &b, UA_ID_BROWSE_REQ);
    tbgw_ua_enc_nodeid(&b, &null_id); /* view */
    tbgw_ua_enc_i64(&b, 0);
    tbgw_ua_enc_u32(&b, 0);
    tbgw_ua_enc_u32(&b, 1000); /* requestedMaxReferencesPerNode */
    tbgw_ua_enc_i32(&b, 1);
    tbgw_ua_enc_nodeid(&b, node);
    tbgw_ua_enc_u32(&b, inverse ? 1 : 0); /* BrowseDirection Forward / Inverse */
    tbgw_ua_nodeid rt = tbgw_ua_nodeid_num(0, ref_type);
    tbgw_ua_enc_nodeid(&b, &rt);
    tbgw_ua_enc_u8(&b, 1);   /* includeSubtypes */
    tbgw_ua_enc_u32(&b, 0);  /* nodeClassMask: all */
    tbgw_ua_enc_u32(&b, 63); /* resultMask: all */
    tbgw_ua_bytes cp;
    int rc = browse_step(c, &b, UA_ID_BROWSE_RESP, refs, n, &cp);
    for (int rounds = 0; rc == 0 && cp.len > 0 && rounds < 10000; rounds++) {
        if (yield && (rc = yield(ctx)) != 0) break; /* the continuation point ends with the session */
        tbgw_buf_reset(&b);
        tbgw_ua_req_begin(c, &b, UA_ID_BROWSE_NEXT_REQ);
        tbgw_ua_enc_u8(&b, 0); /* releaseContinuationPoints */
        tbgw_ua_enc_i32(&b, 1);
        tbgw_ua_enc_bytes(&b, &cp);
        tbgw_ua_bytes_clear(&cp);
        rc = browse_step(c, &b, UA_ID_BROWSE_NEXT_RESP, refs, n, &cp);
    }
    tbgw_ua_bytes_clear(&cp);
    tbgw_buf_free(&b);
    if (rc) {
        tbgw_ua_refs_free(*refs, *n);
        *refs = NULL;
        *n = 0;
    }
    return rc;
}

static int read_batch(tbgw_ua_client *c, const tbgw_ua_nodeid *nodes, size_t n, uint32_t attr,
                      tbgw_ua_datavalue *out) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_READ_REQ);
    tbgw_ua_enc_double(&b, 0); /* maxAge */
    tbgw_ua_enc_u32(&b, 2);    /* timestampsToReturn: Both */
    tbgw_ua_enc_i32(&b, (int32_t)n);
    for (size_t i = 0; i < n; i++) enc_read_value_id(&b, &nodes[i], attr);
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_READ_RESP, &resp, &d);
    if (rc == 0) {
        int32_t m = tbgw_ua_dec_count(&d, 1);
        if (d.err || (size_t)m != n) {
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed read response");
        } else {
            size_t i = 0;
            for (; i < n; i++)
                if (tbgw_ua_dec_datavalue(&d, &out[i])) break;
            if (i < n) {
                while (i > 0) tbgw_ua_datavalue_clear(&out[--i]);
                rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed read response");
            }
        }
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_read(tbgw_ua_client *c, const tbgw_ua_nodeid *nodes, size_t n, uint32_t attr,
                 tbgw_ua_datavalue *out) {
    memset(out, 0, n * sizeof *out);
    for (size_t off = 0; off < n; off += UA_BATCH) {
        size_t k = n - off < UA_BATCH ? n - off : UA_BATCH;
        int rc = read_batch(c, nodes + off, k, attr, out + off);
        if (rc) {
            for (size_t i = 0; i < off; i++) tbgw_ua_datavalue_clear(&out[i]);
            return rc;
        }
    }
    return 0;
}

int tbgw_ua_dec_status_results(tbgw_ua_dec *d, size_t n, uint32_t *status) {
    int32_t m = tbgw_ua_dec_count(d, 4);
    if (d->err || m < 0 || (size_t)m != n) return d->err = TBGW_EPROTO;
    size_t start = d->pos;
    for (size_t i = 0; i < n && !d->err; i++) tbgw_ua_dec_u32(d);
    if (!d->err && tbgw_ua_dec_left(d) > 0) tbgw_ua_dec_skip_diags(d); /* some servers leave it out */
    if (d->err) return d->err;
    tbgw_ua_dec rd; /* read the results again now that the whole body is known to be well-formed */
    tbgw_ua_dec_init(&rd, d->p + start, 4 * n);
    for (size_t i = 0; i < n; i++) status[i] = tbgw_ua_dec_u32(&rd);
    return 0;
}

static int read_status_array(tbgw_ua_client *c, tbgw_ua_dec *d, size_t n, uint32_t *status) {
    return tbgw_ua_dec_status_results(d, n, status)
               ? tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed response")
               : 0;
}

int tbgw_ua_write(tbgw_ua_client *c, const tbgw_ua_nodeid *nodes, const tbgw_ua_variant *values, size_t n,
                  uint32_t *status) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_WRITE_REQ);
    tbgw_ua_enc_i32(&b, (int32_t)n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        tbgw_ua_enc_nodeid(&b, &nodes[i]);
        tbgw_ua_enc_u32(&b, TBGW_UA_ATTR_VALUE);
        tbgw_ua_enc_cstr(&b, NULL);
        tbgw_ua_enc_u8(&b, TBGW_UA_DV_VALUE);
        rc = tbgw_ua_enc_variant(&b, &values[i]);
    }
    tbgw_ua_dec d;
    if (rc == 0) rc = tbgw_ua_req_call(c, &b, UA_ID_WRITE_RESP, &resp, &d);
    if (rc == 0) rc = read_status_array(c, &d, n, status);
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_translate(tbgw_ua_client *c, const tbgw_ua_nodeid *start, const tbgw_ua_qname *path, size_t n,
                      tbgw_ua_nodeid *out, uint32_t *status) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    *out = tbgw_ua_nodeid_num(0, 0);
    *status = 0x80010000u;
    tbgw_ua_req_begin(c, &b, UA_ID_TRANSLATE_REQ);
    tbgw_ua_enc_i32(&b, 1);
    tbgw_ua_enc_nodeid(&b, start);
    tbgw_ua_enc_i32(&b, (int32_t)n);
    tbgw_ua_nodeid hier = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_HIERARCHICAL);
    for (size_t i = 0; i < n; i++) {
        tbgw_ua_enc_nodeid(&b, &hier);
        tbgw_ua_enc_u8(&b, 0); /* isInverse */
        tbgw_ua_enc_u8(&b, 1); /* includeSubtypes */
        tbgw_ua_enc_qname(&b, &path[i]);
    }
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_TRANSLATE_RESP, &resp, &d);
    if (rc == 0) {
        int32_t nr = tbgw_ua_dec_count(&d, 8);
        *status = tbgw_ua_dec_u32(&d);
        int32_t nt = tbgw_ua_dec_count(&d, 5);
        if (nr != 1 || d.err) {
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed translate response");
        } else if (!UA_BAD(*status)) {
            tbgw_ua_expnodeid e;
            if (nt < 1 || tbgw_ua_dec_expnodeid(&d, &e)) {
                *status = 0x806F0000u; /* BadNoMatch */
            } else {
                *out = e.id;
                e.id.str.data = NULL;
                tbgw_ua_expnodeid_clear(&e);
            }
        }
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_call(tbgw_ua_client *c, const tbgw_ua_nodeid *object, const tbgw_ua_nodeid *method,
                 const tbgw_ua_variant *args, size_t n_args, uint32_t *status, tbgw_ua_variant **outs,
                 size_t *n_outs) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    *outs = NULL;
    *n_outs = 0;
    *status = 0x80010000u;
    tbgw_ua_req_begin(c, &b, UA_ID_CALL_REQ);
    tbgw_ua_enc_i32(&b, 1);
    tbgw_ua_enc_nodeid(&b, object);
    tbgw_ua_enc_nodeid(&b, method);
    tbgw_ua_enc_i32(&b, (int32_t)n_args);
    int rc = 0;
    for (size_t i = 0; i < n_args && rc == 0; i++) rc = tbgw_ua_enc_variant(&b, &args[i]);
    tbgw_ua_dec d;
    if (rc == 0) rc = tbgw_ua_req_call(c, &b, UA_ID_CALL_RESP, &resp, &d);
    if (rc == 0) {
        int32_t nr = tbgw_ua_dec_count(&d, 13);
        *status = tbgw_ua_dec_u32(&d);
        int32_t ni = tbgw_ua_dec_count(&d, 4);
        tbgw_ua_dec_skip(&d, ni > 0 ? (size_t)ni * 4 : 0);
        tbgw_ua_dec_skip_diags(&d);
        int32_t no = tbgw_ua_dec_count(&d, 1);
        if (nr != 1 || d.err) {
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed call response");
        } else if (no > 0) {
            *outs = calloc((size_t)no, sizeof **outs);
            if (!*outs) return tbgw_buf_free(&b), tbgw_buf_free(&resp), TBGW_ENOMEM;
            for (int32_t i = 0; i < no; i++) {
                if (tbgw_ua_dec_variant(&d, &(*outs)[i])) {
                    for (int32_t k = 0; k < i; k++) tbgw_ua_variant_clear(&(*outs)[k]);
                    free(*outs);
                    *outs = NULL;
                    rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed call response");
                    break;
                }
            }
            if (rc == 0) *n_outs = (size_t)no;
        }
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_sub_create(tbgw_ua_client *c, double interval_ms, uint32_t *sub_id) {
    if (interval_ms < 10) interval_ms = 10;
    uint32_t keepalive = (uint32_t)(5000.0 / interval_ms);
    if (keepalive < 3) keepalive = 3;
    uint32_t lifetime = keepalive * 10;
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_CREATE_SUB_REQ);
    tbgw_ua_enc_double(&b, interval_ms);
    tbgw_ua_enc_u32(&b, lifetime);
    tbgw_ua_enc_u32(&b, keepalive);
    tbgw_ua_enc_u32(&b, 0); /* maxNotificationsPerPublish: unlimited */
    tbgw_ua_enc_u8(&b, 1);  /* publishingEnabled */
    tbgw_ua_enc_u8(&b, 0);  /* priority */
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_CREATE_SUB_RESP, &resp, &d);
    if (rc == 0) {
        *sub_id = tbgw_ua_dec_u32(&d);
        double rev = tbgw_ua_dec_double(&d);
        tbgw_ua_dec_u32(&d);
        uint32_t rev_ka = tbgw_ua_dec_u32(&d);
        if (d.err) {
            rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed CreateSubscription response");
        } else {
            if (!(rev > 0 && rev < 3600000)) rev = interval_ms;
            tbgw_ua_client_sub_added(c, (int64_t)(rev * (rev_ka ? rev_ka : keepalive)));
        }
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_dec_create_mi_results(tbgw_ua_dec *d, size_t n, uint32_t *status, uint32_t *ids) {
    int32_t m = tbgw_ua_dec_count(d, 23); /* status, id, interval, queue size, empty filter result */
    if (d->err || m < 0 || (size_t)m != n) return d->err = TBGW_EPROTO;
    for (size_t i = 0; i < n && !d->err; i++) {
        status[i] = tbgw_ua_dec_u32(d);
        uint32_t id = tbgw_ua_dec_u32(d);
        if (ids) ids[i] = id;
        tbgw_ua_dec_double(d); /* revisedSamplingInterval */
        tbgw_ua_dec_u32(d);    /* revisedQueueSize */
        tbgw_ua_extobj eo;
        if (tbgw_ua_dec_extobj(d, &eo) == 0) tbgw_ua_extobj_clear(&eo);
    }
    if (!d->err && tbgw_ua_dec_left(d) > 0) tbgw_ua_dec_skip_diags(d);
    return d->err;
}

static int sub_add_batch(tbgw_ua_client *c, uint32_t sub_id, const tbgw_ua_nodeid *nodes,
                         const uint32_t *handles, size_t n, double sampling_ms, uint32_t *status,
                         uint32_t *ids) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_CREATE_MI_REQ);
    tbgw_ua_enc_u32(&b, sub_id);
    tbgw_ua_enc_u32(&b, 2); /* timestampsToReturn: Both */
    tbgw_ua_enc_i32(&b, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        enc_read_value_id(&b, &nodes[i], TBGW_UA_ATTR_VALUE);
        tbgw_ua_enc_u32(&b, 2); /* Reporting */
        tbgw_ua_enc_u32(&b, handles[i]);
        tbgw_ua_enc_double(&b, sampling_ms);
        enc_null_extobj(&b);
        tbgw_ua_enc_u32(&b, 10); /* queueSize */
        tbgw_ua_enc_u8(&b, 1);   /* discardOldest */
    }
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_CREATE_MI_RESP, &resp, &d);
    if (rc == 0 && tbgw_ua_dec_create_mi_results(&d, n, status, ids))
        rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed CreateMonitoredItems response");
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_sub_add(tbgw_ua_client *c, uint32_t sub_id, const tbgw_ua_nodeid *nodes, const uint32_t *handles,
                    size_t n, double sampling_ms, uint32_t *status) {
    return tbgw_ua_sub_add_ids(c, sub_id, nodes, handles, n, sampling_ms, status, NULL);
}

int tbgw_ua_sub_add_ids(tbgw_ua_client *c, uint32_t sub_id, const tbgw_ua_nodeid *nodes,
                        const uint32_t *handles, size_t n, double sampling_ms, uint32_t *status,
                        uint32_t *ids) {
    for (size_t off = 0; off < n; off += UA_BATCH) {
        size_t k = n - off < UA_BATCH ? n - off : UA_BATCH;
        int rc = sub_add_batch(c, sub_id, nodes + off, handles + off, k, sampling_ms, status + off,
                               ids ? ids + off : NULL);
        if (rc) return rc;
    }
    return 0;
}

void tbgw_ua_enc_delete_mi(tbgw_buf *b, uint32_t sub_id, const uint32_t *ids, size_t n) {
    tbgw_ua_enc_u32(b, sub_id);
    tbgw_ua_enc_i32(b, (int32_t)n);
    for (size_t i = 0; i < n; i++) tbgw_ua_enc_u32(b, ids[i]);
}

static int sub_remove_batch(tbgw_ua_client *c, uint32_t sub_id, const uint32_t *ids, size_t n,
                            uint32_t *status) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_DELETE_MI_REQ);
    tbgw_ua_enc_delete_mi(&b, sub_id, ids, n);
    tbgw_ua_dec d;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_DELETE_MI_RESP, &resp, &d);
    if (rc == 0 && tbgw_ua_dec_status_results(&d, n, status))
        rc = tbgw_ua_client_fail(c, TBGW_EPROTO, 0, "malformed DeleteMonitoredItems response");
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc;
}

int tbgw_ua_sub_remove(tbgw_ua_client *c, uint32_t sub_id, const uint32_t *ids, size_t n, uint32_t *status) {
    uint32_t tmp[UA_BATCH];
    for (size_t off = 0; off < n; off += UA_BATCH) {
        size_t k = n - off < UA_BATCH ? n - off : UA_BATCH;
        int rc = sub_remove_batch(c, sub_id, ids + off, k, status ? status + off : tmp);
        if (rc) return rc;
    }
    return 0;
}

int tbgw_ua_sub_delete(tbgw_ua_client *c, uint32_t sub_id) {
    tbgw_buf b, resp;
    tbgw_buf_init(&b);
    tbgw_buf_init(&resp);
    tbgw_ua_req_begin(c, &b, UA_ID_DELETE_SUB_REQ);
    tbgw_ua_enc_i32(&b, 1);
    tbgw_ua_enc_u32(&b, sub_id);
    tbgw_ua_dec d;
    uint32_t st = 0;
    int rc = tbgw_ua_req_call(c, &b, UA_ID_DELETE_SUB_RESP, &resp, &d);
    if (rc == 0) rc = read_status_array(c, &d, 1, &st);
    if (rc == 0) tbgw_ua_client_sub_removed(c);
    tbgw_buf_free(&b);
    tbgw_buf_free(&resp);
    return rc ? rc : (UA_BAD(st) ? tbgw_ua_client_fail(c, TBGW_ENOENT, st, "delete subscription failed") : 0);
}
