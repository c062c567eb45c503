/* Memory storage: a bounded ring of records (spec §3.1), with drop-oldest (default) or refuse
 * when full. Nothing survives a restart. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "storage/common.h"
#include "storage/storage.h"
#include "util/time.h"

typedef struct mem_rec {
    uint32_t len;
    uint8_t data[];
} mem_rec;

typedef struct mem_storage {
    tbgw_storage base;
    mem_rec **ring;
    size_t cap, head, count; /* head = index of the oldest uncommitted record */
    uint64_t head_seq;       /* seq of ring[head] */
    uint64_t next_peek_seq;  /* first seq not yet peeked */
    size_t touched;          /* ring slots [0, touched) written since the ring last emptied */
    tbgw_full_policy policy;
    tbgw_storage_stats st;
    tbgw_logger *log;
    tbgw_drop_log drops;
} mem_storage;

static int get_count(const json_t *cfg, const char *key, int64_t def, int64_t *out, tbgw_err *err) {
    json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    *out = def;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return tbgw_err_set(err, TBGW_EINVAL, "storage.%s: expected a positive integer", key);
    *out = json_integer_value(v);
    return 0;
}

static int mem_open(const json_t *cfg, const char *config_dir, tbgw_storage **out, tbgw_err *err) {
    (void)config_dir;
    int64_t max;
    tbgw_full_policy pol;
    if (get_count(cfg, "max_records_count", 10000, &max, err)) return TBGW_EINVAL;
    if (tbgw_storage_full_policy(cfg, &pol, err)) return TBGW_EINVAL;
    mem_storage *s = calloc(1, sizeof *s);
    if (!s) return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    s->cap = (size_t)max;
    s->ring = calloc(s->cap, sizeof *s->ring);
    if (!s->ring) {
        free(s);
        return tbgw_err_set(err, TBGW_ENOMEM, "storage: cannot allocate %zu records", (size_t)max);
    }
    s->base.ops = &tbgw_storage_memory_ops;
    s->policy = pol;
    s->head_seq = s->next_peek_seq = 1;
    s->log = tbgw_logger_get("storage");
    *out = &s->base;
    return 0;
}

static void drop_head(mem_storage *s) {
    mem_rec *r = s->ring[s->head];
    s->st.bytes -= r->len;
    free(r);
    s->ring[s->head] = NULL;
    s->head = (s->head + 1) % s->cap;
    s->count--;
    s->head_seq++;
    if (s->next_peek_seq < s->head_seq) s->next_peek_seq = s->head_seq;
}

static int mem_append(tbgw_storage *bs, const void *data, size_t len) {
    mem_storage *s = (mem_storage *)bs;
    if (len > UINT32_MAX) return TBGW_EINVAL;
    if (s->count == s->cap) {
        if (s->policy == TBGW_FULL_REFUSE) {
            s->st.dropped++;
            tbgw_storage_drop_report(&s->drops, s->log, "memory", "full, refusing new records", 1,
                                     s->st.dropped, tbgw_mono_ms());
            return TBGW_EFULL;
        }
        drop_head(s);
        s->st.dropped++;
        tbgw_storage_drop_report(&s->drops, s->log, "memory", "full, dropping the oldest records", 1,
                                 s->st.dropped, tbgw_mono_ms());
    }
    mem_rec *r = malloc(sizeof *r + len);
    if (!r) return TBGW_ENOMEM;
    r->len = (uint32_t)len;
    memcpy(r->data, data, len);
    size_t at = (s->head + s->count) % s->cap;
    s->ring[at] = r;
    if (at >= s->touched) s->touched = at + 1;
    s->count++;
    s->st.appended++;
    s->st.bytes += len;
    return 0;
}

static int mem_peek(tbgw_storage *bs, size_t max, tbgw_pack *out) {
    mem_storage *s = (mem_storage *)bs;
    size_t skip = (size_t)(s->next_peek_seq - s->head_seq);
    size_t avail = s->count > skip ? s->count - skip : 0;
    size_t n = avail < max ? avail : max;
    memset(out, 0, sizeof *out);
    if (n == 0) return 0;
    tbgw_record stack[256];
    tbgw_record *src = n <= 256 ? stack : malloc(n * sizeof *src);
    if (!src) return TBGW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        mem_rec *r = s->ring[(s->head + skip + i) % s->cap];
        src[i].data = r->data;
        src[i].len = r->len;
    }
    int rc = tbgw_pack_build(out, s->next_peek_seq, src, n);
    if (src != stack) free(src);
    if (rc) return rc;
    s->next_peek_seq += n;
    return 0;
}

/* An empty ring starts again at slot 0, so the slots in use (and their pages) stay bounded by the
 * largest backlog rather than growing with everything ever stored; after a backlog of more than
 * RING_RELEASE_SLOTS the pages of its slots (all NULL now) are given back to the system. */
#define RING_RELEASE_SLOTS 32768
static void ring_emptied(mem_storage *s) {
    s->head = 0;
    if (s->touched > RING_RELEASE_SLOTS) {
        uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = ((uintptr_t)s->ring + pg - 1) & ~(pg - 1);
        uintptr_t e = (uintptr_t)(s->ring + s->touched) & ~(pg - 1);
        if (e > a) madvise((void *)a, e - a, MADV_DONTNEED); /* reads back as zeroes: NULL slots */
    }
    s->touched = 0;
}

static int mem_commit(tbgw_storage *bs, const tbgw_pack *p) {
    mem_storage *s = (mem_storage *)bs;
    while (s->count && s->head_seq <= p->last_seq) {
        drop_head(s);
        s->st.committed++;
    }
    if (!s->count) ring_emptied(s);
    return 0;
}

static void mem_rewind(tbgw_storage *bs) {
    mem_storage *s = (mem_storage *)bs;
    s->next_peek_seq = s->head_seq;
}

static int mem_sync(tbgw_storage *bs) {
    mem_storage *s = (mem_storage *)bs;
    tbgw_storage_drop_report(&s->drops, s->log, "memory", NULL, 0, s->st.dropped, tbgw_mono_ms());
    return 0;
}

static void mem_stats(tbgw_storage *bs, tbgw_storage_stats *out) {
    mem_storage *s = (mem_storage *)bs;
    *out = s->st;
    out->records = s->count;
}

static void mem_close(tbgw_storage *bs) {
    mem_storage *s = (mem_storage *)bs;
    if (!s) return;
    while (s->count) drop_head(s);
    free(s->ring);
    free(s);
}

const tbgw_storage_ops tbgw_storage_memory_ops = {
    .type = "memory",
    .open = mem_open,
    .append = mem_append,
    .peek = mem_peek,
    .commit = mem_commit,
    .rewind = mem_rewind,
    .sync = mem_sync,
    .stats = mem_stats,
    .close = mem_close,
};
