/* Argument structures of method properties (ua_argument.h). */
#include "proto/opcua/ua_argument.h"

#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

void tbgw_ua_argument_clear(tbgw_ua_argument *a) {
    if (!a) return;
    free(a->name);
    tbgw_ua_nodeid_clear(&a->data_type);
    free(a->dims);
    memset(a, 0, sizeof *a);
    a->data_type.str.len = -1;
}

void tbgw_ua_arguments_free(tbgw_ua_argument *a, size_t n) {
    for (size_t i = 0; a && i < n; i++) tbgw_ua_argument_clear(&a[i]);
    free(a);
}

int tbgw_ua_argument_decode(const tbgw_ua_extobj *eo, tbgw_ua_argument *out) {
    memset(out, 0, sizeof *out);
    out->data_type = tbgw_ua_nodeid_num(0, 0);
    if (!eo || eo->enc != TBGW_UA_EO_BINARY || eo->type_id.ns != 0 ||
        eo->type_id.type != TBGW_UA_ID_NUMERIC || eo->type_id.num != TBGW_UA_NS0_ARGUMENT_BINARY ||
        eo->body.len < 0)
        return TBGW_EPROTO;
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, eo->body.data, (size_t)eo->body.len);
    tbgw_ua_bytes name = {-1, NULL};
    tbgw_ua_ltext descr;
    memset(&descr, 0, sizeof descr);
    int rc = tbgw_ua_dec_bytes(&d, &name);
    if (rc == 0) rc = tbgw_ua_dec_nodeid(&d, &out->data_type);
    if (rc == 0) out->value_rank = tbgw_ua_dec_i32(&d);
    int32_t nd = d.err ? 0 : tbgw_ua_dec_count(&d, 4);
    if (rc == 0 && !d.err && nd > TBGW_UA_MAX_DIMENSION) d.err = TBGW_EPROTO;
    if (rc == 0 && !d.err && nd > 0) {
        out->dims = calloc((size_t)nd, sizeof *out->dims);
        if (!out->dims) d.err = TBGW_ENOMEM;
        for (int32_t i = 0; out->dims && i < nd; i++) out->dims[i] = tbgw_ua_dec_u32(&d);
        out->n_dims = nd;
    }
    /* the Description closes the structure; a server may leave it out of a short body */
    if (rc == 0 && !d.err && tbgw_ua_dec_left(&d) > 0 && tbgw_ua_dec_ltext(&d, &descr) == 0)
        tbgw_ua_ltext_clear(&descr);
    if (rc == 0) rc = d.err;
    if (rc == 0) {
        size_t len = name.len > 0 ? (size_t)name.len : 0;
        out->name = malloc(len + 1);
        if (!out->name)
            rc = TBGW_ENOMEM;
        else {
            if (len) memcpy(out->name, name.data, len);
            out->name[len] = '\0';
            /* a name with an embedded NUL ends there: it is only used in messages */
        }
    }
    tbgw_ua_bytes_clear(&name);
    if (rc) tbgw_ua_argument_clear(out);
    return rc;
}

int tbgw_ua_arguments_from_variant(const tbgw_ua_variant *v, tbgw_ua_argument **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!v || v->type == 0 || v->n <= 0) return 0;
    if (v->type != TBGW_UA_EXTENSIONOBJECT || !v->v) return TBGW_EPROTO;
    tbgw_ua_argument *a = calloc((size_t)v->n, sizeof *a);
    if (!a) return TBGW_ENOMEM;
    for (int32_t i = 0; i < v->n; i++) {
        int rc = tbgw_ua_argument_decode(v->v[i].eo, &a[i]);
        if (rc) {
            tbgw_ua_arguments_free(a, (size_t)i);
            return rc;
        }
    }
    *out = a;
    *n = (size_t)v->n;
    return 0;
}

uint8_t tbgw_ua_builtin_of_datatype(const tbgw_ua_nodeid *dt) {
    if (!dt || dt->ns != 0 || dt->type != TBGW_UA_ID_NUMERIC) return 0;
    uint32_t id = dt->num;
    if (id >= TBGW_UA_BOOLEAN && id <= TBGW_UA_DIAGNOSTICINFO && id != TBGW_UA_VARIANT) return (uint8_t)id;
    static const struct {
        uint32_t id;
        uint8_t type;
    } sub[] = {
        {27, TBGW_UA_INT64},        /* Integer (abstract): every integer fits Int64 ... */
        {28, TBGW_UA_UINT64},       /* UInteger (abstract): ... and UInt64 */
        {29, TBGW_UA_INT32},        /* Enumeration */
        {30, TBGW_UA_BYTESTRING},   /* Image */
        {256, TBGW_UA_INT32},       /* IdType */
        {257, TBGW_UA_INT32},       /* NodeClass */
        {288, TBGW_UA_UINT32},      /* IntegerId */
        {289, TBGW_UA_UINT32},      /* Counter */
        {290, TBGW_UA_DOUBLE},      /* Duration */
        {291, TBGW_UA_STRING},      /* NumericRange */
        {292, TBGW_UA_STRING},      /* Time */
        {293, TBGW_UA_DATETIME},    /* Date */
        {294, TBGW_UA_DATETIME},    /* UtcTime */
        {295, TBGW_UA_STRING},      /* LocaleId */
        {311, TBGW_UA_BYTESTRING},  /* ApplicationInstanceCertificate */
        {2000, TBGW_UA_BYTESTRING}, /* ImageBMP */
        {2001, TBGW_UA_BYTESTRING}, /* ImageGIF */
        {2002, TBGW_UA_BYTESTRING}, /* ImageJPG */
        {2003, TBGW_UA_BYTESTRING}, /* ImagePNG */
        {11737, TBGW_UA_UINT64},    /* BitFieldMaskDataType */
        {12877, TBGW_UA_STRING},    /* NormalizedString */
        {12878, TBGW_UA_STRING},    /* DecimalString */
        {12879, TBGW_UA_STRING},    /* DurationString */
        {12880, TBGW_UA_STRING},    /* TimeString */
        {12881, TBGW_UA_STRING},    /* DateString */
        {20998, TBGW_UA_UINT32},    /* VersionTime */
        {23751, TBGW_UA_STRING},    /* UriString */
    };
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
        if (sub[i].id == id) return sub[i].type;
    return 0;
}
