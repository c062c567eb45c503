/* Storage registry and pack helpers shared by all storage types. */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Strong references: weak ones would not pull file.o and sqlite.o out of the static library. */
extern const tbgw_storage_ops tbgw_storage_file_ops;
extern const tbgw_storage_ops tbgw_storage_sqlite_ops;

const tbgw_storage_ops *tbgw_storage_find(const char *type) {
    const tbgw_storage_ops *all[] = {&tbgw_storage_memory_ops, &tbgw_storage_file_ops,
                                     &tbgw_storage_sqlite_ops};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(all[i]->type, type) == 0) return all[i];
    return NULL;
}

int tbgw_storage_open(const json_t *cfg, const char *config_dir, tbgw_storage **out, tbgw_err *err) {
    const char *type = "memory";
    json_t *t = cfg ? json_object_get(cfg, "type") : NULL;
    if (t) {
        if (!json_is_string(t))
            return tbgw_err_set(err, TBGW_EINVAL, "storage.type: expected a string (memory, file or sqlite)");
        type = json_string_value(t);
    }
    const tbgw_storage_ops *ops = tbgw_storage_find(type);
    if (!ops)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "storage.type: unknown storage type \"%s\" (expected memory, file or sqlite)",
                            type);
    return ops->open(cfg, config_dir, out, err);
}

int tbgw_storage_full_policy(const json_t *cfg, tbgw_full_policy *out, tbgw_err *err) {
    *out = TBGW_FULL_DROP_OLDEST;
    json_t *p = cfg ? json_object_get(cfg, "full_policy") : NULL;
    if (!p) return 0;
    const char *s = json_string_value(p);
    if (s && strcasecmp(s, "drop_oldest") == 0) return 0;
    if (s && strcasecmp(s, "refuse") == 0) {
        *out = TBGW_FULL_REFUSE;
        return 0;
    }
    return tbgw_err_set(err, TBGW_EINVAL, "storage.full_policy: expected \"drop_oldest\" or \"refuse\"");
}

void tbgw_pack_free(tbgw_pack *p) {
    if (!p) return;
    free(p->recs);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

int tbgw_pack_build(tbgw_pack *p, uint64_t first_seq, const tbgw_record *src, size_t n) {
    memset(p, 0, sizeof *p);
    if (n == 0) return 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += src[i].len;
    p->recs = malloc(n * sizeof *p->recs);
    p->buf = malloc(total ? total : 1);
    if (!p->recs || !p->buf) {
        tbgw_pack_free(p);
        return TBGW_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(p->buf + off, src[i].data, src[i].len);
        p->recs[i].data = p->buf + off;
        p->recs[i].len = src[i].len;
        off += src[i].len;
    }
    p->n = n;
    p->first_seq = first_seq;
    p->last_seq = first_seq + n - 1;
    return 0;
}
