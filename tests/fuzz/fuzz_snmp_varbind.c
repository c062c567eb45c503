/* Fuzzes the SNMP connector's value conversion: arbitrary typed varbinds (type byte, then the value
 * bytes) to JSON, the result's text form, table merging under a base OID, SET value typing of
 * arbitrary JSON for every type, and numeric OID parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/snmp/snmpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const u_char types[] = {
    ASN_INTEGER,    ASN_COUNTER,    ASN_GAUGE,   ASN_TIMETICKS,     ASN_COUNTER64,     ASN_OCTET_STR,
    ASN_OBJECT_ID,  ASN_IPADDRESS,  ASN_NULL,    ASN_OPAQUE,        ASN_OPAQUE_FLOAT,  ASN_OPAQUE_DOUBLE,
    ASN_OPAQUE_I64, ASN_OPAQUE_U64, ASN_BIT_STR, SNMP_NOSUCHOBJECT, SNMP_ENDOFMIBVIEW, ASN_OCTET_STR | 0x80};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    u_char type = types[data[0] % (sizeof types / sizeof types[0])];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    /* the varbind's value as net-snmp would hold it (sizes it checks itself) */
    netsnmp_variable_list vb;
    memset(&vb, 0, sizeof vb);
    oid name[MAX_OID_LEN];
    size_t nl = 0;
    for (size_t i = 0; i < n && nl < 20; i += 4) name[nl++] = p[i];
    if (nl < 2) name[0] = 1, name[1] = 3, nl = 2;
    snmp_set_var_objid(&vb, name, nl);
    if (snmp_set_var_typed_value(&vb, (u_char)(type & 0x7F), n ? p : NULL, n) == 0) {
        char err[128];
        json_t *j = snmp_vb_to_json(&vb, err, sizeof err);
        if (j) {
            tbgw_buf b;
            tbgw_buf_init(&b);
            snmp_json_text(j, &b);
            tbgw_buf_free(&b);
            snmp_oid base = {.v = {1, 3}, .len = 2};
            json_t *m = json_object();
            snmp_table_add(m, &base, vb.name, vb.name_length, j);
            json_decref(m);
            json_decref(j);
        }
    }
    snmp_set_var_value(&vb, NULL, 0);
    if (vb.name != vb.name_loc) free(vb.name);
    /* the bytes as JSON text (or a string) to SET with that type */
    json_t *v = json_loadb((const char *)p, n, JSON_DECODE_ANY, NULL);
    if (!v) v = json_stringn((const char *)p, n);
    if (v) {
        u_char buf[1024];
        size_t len = 0;
        char err[128];
        snmp_set_value(type, v, buf, sizeof buf, &len, err, sizeof err);
        json_decref(v);
    }
    char *text = strndup((const char *)p, n);
    snmp_oid o;
    if (text && snmp_oid_parse(text, &o) == 0) {
        char t[MAX_OID_LEN * 11 + 1];
        snmp_oid_format(o.v, o.len, t, sizeof t);
    }
    free(text);
    return 0;
}
