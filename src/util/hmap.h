/* String-keyed hash map (open addressing, linear probing). Keys are copied; values borrowed. */
#ifndef TBGW_UTIL_HMAP_H
#define TBGW_UTIL_HMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct tbgw_hmap_slot {
    char *key; /* NULL = empty; (char*)1 = tombstone */
    size_t klen;
    uint64_t hash;
    void *val;
} tbgw_hmap_slot;

typedef struct tbgw_hmap {
    tbgw_hmap_slot *slots;
    size_t cap, count, used; /* used counts tombstones too */
} tbgw_hmap;

void tbgw_hmap_init(tbgw_hmap *m);
/* Calls free_val on each value (may be NULL) and releases the table. */
void tbgw_hmap_free(tbgw_hmap *m, void (*free_val)(void *));
void *tbgw_hmap_getn(const tbgw_hmap *m, const char *key, size_t klen);
void *tbgw_hmap_get(const tbgw_hmap *m, const char *key);
/* Inserts or replaces; returns the previous value through *old (if old != NULL). 0 or TBGW_ENOMEM. */
int tbgw_hmap_putn(tbgw_hmap *m, const char *key, size_t klen, void *val, void **old);
int tbgw_hmap_put(tbgw_hmap *m, const char *key, void *val, void **old);
/* Removes and returns the value (NULL when absent). */
void *tbgw_hmap_deln(tbgw_hmap *m, const char *key, size_t klen);
void *tbgw_hmap_del(tbgw_hmap *m, const char *key);
/* Iteration: for (size_t i = 0; (i = tbgw_hmap_next(m, i, &k, &v)) != 0;) ... */
size_t tbgw_hmap_next(const tbgw_hmap *m, size_t pos, const char **key, void **val);
uint64_t tbgw_hash(const void *data, size_t n);
#endif
