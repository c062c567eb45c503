/* Fuzzes the connector kit's parsers: input = one mode byte, then text. Mode bit 0: the reserved
 * get/set parameter string ("k=v;...", strict and lenient); otherwise a connector file whose
 * "devices" list is walked with device and key entries (report strategies included), and again as a
 * tbgw_cfg_list of structs whose fields go through the lenient number getters (mode bits 1-3: flags). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/connkit.h>

typedef struct slot {
    int64_t i;
    double d;
    char *name;
} slot;

static int slot_entry(tbgw_cfg *w, const json_t *e, const char *path, void *p, void *ud, tbgw_err *err) {
    (void)w;
    slot *sl = p;
    unsigned flags = *(const unsigned *)ud;
    const char *name;
    if (tbgw_cfg_get_str(e, path, "deviceName", "x", &name, err) < 0) return TBGW_EINVAL;
    sl->name = strdup(name);
    if (tbgw_cfg_get_int_ex(e, path, "port", 502, 0, 65535, flags, &sl->i, err) < 0) return TBGW_EINVAL;
    if (sl->i < 0 || sl->i > 65535) abort();
    return tbgw_cfg_get_num_ex(e, path, "timeout", 1, -1e9, 1e9, flags, &sl->d, err) < 0 ? TBGW_EINVAL : 0;
}

static void slot_drop(void *p) {
    free(((slot *)p)->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dev_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    (void)index, (void)ud;
    tbgw_cfg_device d;
    if (tbgw_cfg_device_parse(w, e, path, &d, err) < 0) return TBGW_EINVAL;
    for (size_t i = 0; i < d.timeseries.n; i++)
        if (!d.timeseries.v[i].key || !d.timeseries.v[i].key[0]) abort();
    tbgw_cfg_device_free(&d);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *s = malloc(size);
    if (!s) return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    tbgw_err err = {0};
    if (data[0] & 1) {
        for (unsigned flags = 0; flags <= TBGW_PARAMS_LENIENT; flags++) {
            tbgw_params p;
            if (tbgw_params_parse(s, flags, &p, &err) == 0) {
                for (size_t i = 0; i < p.n; i++)
                    if (tbgw_params_get(&p, p.v[i].key) == NULL) abort();
                int64_t v;
                tbgw_params_int(&p, "address", &v);
                json_decref(tbgw_params_object(&p));
                tbgw_params_free(&p);
            }
        }
    } else {
        json_t *root = json_loads(s, JSON_DECODE_ANY, NULL);
        tbgw_cfg w;
        tbgw_cfg_init(&w, NULL, &err);
        tbgw_cfg_each(&w, root, NULL, "devices", dev_entry, NULL);
        unsigned flags = (data[0] >> 1) & 7u;
        slot *v;
        size_t n;
        tbgw_cfg_list(&w, root, NULL, "devices", sizeof *v, (void **)&v, &n, slot_entry, slot_drop, &flags);
        for (size_t i = 0; i < n; i++) {
            if (!v[i].name) abort();
            slot_drop(&v[i]);
        }
        free(v);
        json_decref(root);
    }
    free(s);
    return 0;
}
