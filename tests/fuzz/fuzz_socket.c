/* Fuzzes the Socket connector's message handling: slice expressions found in arbitrary text,
 * resolved against arbitrary payloads, decoded with every codec kind (and encoded back), attribute
 * request matching, and json.dumps of arbitrary JSON. Input: codec byte, expression, '\n', payload. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/socket/sock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const codecs[] = {"utf-8",   "hex",   "utf-16",    "utf-32",
                                     "latin-1", "ascii", "utf-16-be", "cp1252"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    sock_enc enc;
    if (sock_enc_parse(codecs[data[0] % 8], &enc) < 0) return 0;
    data++, size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t el = nl ? (size_t)(nl - data) : size;
    char *expr = strndup((const char *)data, el);
    const uint8_t *p = nl ? nl + 1 : data + size;
    size_t n = nl ? size - el - 1 : 0;
    sock_slice *sl = NULL;
    size_t ns = 0;
    char err[128];
    tbgw_buf b, back;
    tbgw_buf_init(&b);
    tbgw_buf_init(&back);
    if (sock_slices_find(expr, &sl, &ns, err, sizeof err) > 0) {
        for (size_t i = 0; i < ns; i++) {
            size_t a, z;
            if (sock_slice_resolve(&sl[i], n, &a, &z) < 0) continue;
            if (a > z || z > n) abort();
            tbgw_buf_reset(&b);
            if (sock_decode(&enc, p + a, z - a, &b) == 0 && enc.kind != SOCK_ENC_HEX) {
                tbgw_buf_reset(&back);
                sock_encode(&enc, b.p ? b.p : "", b.len, &back);
            }
        }
        sock_attr_req r = {0};
        r.cond = sl[0];
        r.equal = expr;
        r.names = sl;
        r.n_names = ns;
        (void)sock_attr_req_match(&r, p, n);
        char **names;
        size_t cnt;
        if (sock_attr_req_names(&r, p, n, &names, &cnt) == 0) {
            for (size_t i = 0; i < cnt; i++) free(names[i]);
            free(names);
        }
    }
    tbgw_buf_reset(&b);
    sock_decode(&enc, p, n, &b);
    json_t *j = json_loadb((const char *)p, n, JSON_DECODE_ANY, NULL);
    if (j) {
        tbgw_buf_reset(&b);
        sock_py_dumps(j, &b);
        json_decref(j);
    }
    tbgw_buf_free(&b);
    tbgw_buf_free(&back);
    free(sl);
    free(expr);
    return 0;
}
