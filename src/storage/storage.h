/* Event storage: one interface for memory, file and sqlite.
 *
 * Records are opaque byte strings (the core's encoded uplink records). Every record gets a sequence
 * number, increasing by one per append. Contract:
 *  - append: once it returned 0 the record is in storage (durable per the storage's sync policy
 *    after sync()); when full the storage drops the oldest record (default) or refuses the new one
 *    (policy "refuse": returns TBGW_EFULL); every drop is counted in stats.
 *  - peek: returns up to max records following those already peeked (several packs may be out at
 *    once). The pack owns copies of the bytes; free it with tbgw_pack_free.
 *  - commit: removes every record with seq <= pack->last_seq. Packs are committed in peek order.
 *  - rewind: forget outstanding peeks; the next peek starts at the oldest uncommitted record
 *    (used after a platform disconnect).
 * All calls come from the core thread. */
#ifndef TBGW_STORAGE_H
#define TBGW_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <tbgw/err.h>

typedef struct tbgw_record {
    const uint8_t *data;
    uint32_t len;
} tbgw_record;

typedef struct tbgw_pack {
    uint64_t first_seq, last_seq;
    size_t n;
    tbgw_record *recs;
    uint8_t *buf; /* backing bytes for recs (owned) */
} tbgw_pack;

typedef struct tbgw_storage_stats {
    uint64_t records;    /* records currently stored (committed ones excluded) */
    uint64_t bytes;      /* payload bytes currently stored */
    uint64_t disk_bytes; /* bytes used on disk (0 for memory) */
    uint64_t appended;   /* total appended since open */
    uint64_t committed;  /* total committed since open */
    uint64_t dropped;    /* total dropped (cap reached, TTL, corruption) since open */
} tbgw_storage_stats;

typedef enum tbgw_full_policy {
    TBGW_FULL_DROP_OLDEST = 0,
    TBGW_FULL_REFUSE = 1,
} tbgw_full_policy;

typedef struct tbgw_storage tbgw_storage;

typedef struct tbgw_storage_ops {
    const char *type; /* "memory", "file", "sqlite" */
    /* cfg is the "storage" section; relative paths resolve against config_dir. */
    int (*open)(const json_t *cfg, const char *config_dir, tbgw_storage **out, tbgw_err *err);
    int (*append)(tbgw_storage *s, const void *data, size_t len);
    int (*peek)(tbgw_storage *s, size_t max_records, tbgw_pack *out);
    int (*commit)(tbgw_storage *s, const tbgw_pack *pack);
    void (*rewind)(tbgw_storage *s);
    int (*sync)(tbgw_storage *s); /* group commit: called before the core loop sleeps */
    /* Monotonic ms by which sync() wants to run again although nothing else wakes the loop (a
     * deferred interval flush, a TTL sweep); INT64_MAX = not before the next append. NULL = never. */
    int64_t (*sync_due)(tbgw_storage *s);
    void (*stats)(tbgw_storage *s, tbgw_storage_stats *out);
    void (*close)(tbgw_storage *s);
} tbgw_storage_ops;

struct tbgw_storage {
    const tbgw_storage_ops *ops;
};

/* Finds the ops for a type name (case-insensitive); NULL if unknown. */
const tbgw_storage_ops *tbgw_storage_find(const char *type);
/* Opens the storage described by cfg ("type" defaults to "memory"). */
int tbgw_storage_open(const json_t *cfg, const char *config_dir, tbgw_storage **out, tbgw_err *err);
/* Reads the common "full_policy" key ("drop_oldest" | "refuse"). */
int tbgw_storage_full_policy(const json_t *cfg, tbgw_full_policy *out, tbgw_err *err);
void tbgw_pack_free(tbgw_pack *p);
/* Builds a pack from n (ptr,len) pairs by copying them into one buffer. */
int tbgw_pack_build(tbgw_pack *p, uint64_t first_seq, const tbgw_record *src, size_t n);

extern const tbgw_storage_ops tbgw_storage_memory_ops;

#endif
