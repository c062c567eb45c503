#include "util/hmap.h"

#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

#define TOMB ((char *)1)

uint64_t tbgw_hash(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

void tbgw_hmap_init(tbgw_hmap *m) {
    memset(m, 0, sizeof *m);
}

void tbgw_hmap_free(tbgw_hmap *m, void (*free_val)(void *)) {
    for (size_t i = 0; i < m->cap; i++) {
        char *k = m->slots[i].key;
        if (k && k != TOMB) {
            if (free_val) free_val(m->slots[i].val);
            free(k);
        }
    }
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static tbgw_hmap_slot *find(const tbgw_hmap *m, const char *key, size_t klen, uint64_t h) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        tbgw_hmap_slot *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->key != TOMB && s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) return s;
    }
}

static int grow(tbgw_hmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 16;
    if (m->count * 2 < m->cap) ncap = m->cap; /* only tombstones: rehash in place size */
    tbgw_hmap_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return TBGW_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        tbgw_hmap_slot *s = &m->slots[i];
        if (!s->key || s->key == TOMB) continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

void *tbgw_hmap_getn(const tbgw_hmap *m, const char *key, size_t klen) {
    tbgw_hmap_slot *s = find(m, key, klen, tbgw_hash(key, klen));
    return s ? s->val : NULL;
}

void *tbgw_hmap_get(const tbgw_hmap *m, const char *key) {
    return tbgw_hmap_getn(m, key, strlen(key));
}

int tbgw_hmap_putn(tbgw_hmap *m, const char *key, size_t klen, void *val, void **old) {
    uint64_t h = tbgw_hash(key, klen);
    tbgw_hmap_slot *s = find(m, key, klen, h);
    if (old) *old = NULL;
    if (s) {
        if (old) *old = s->val;
        s->val = val;
        return 0;
    }
    if ((m->used + 1) * 4 >= m->cap * 3 && grow(m)) return TBGW_ENOMEM;
    char *k = malloc(klen + 1);
    if (!k) return TBGW_ENOMEM;
    memcpy(k, key, klen);
    k[klen] = 0;
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB) i = (i + 1) & mask;
    if (!m->slots[i].key) m->used++;
    m->slots[i] = (tbgw_hmap_slot){k, klen, h, val};
    m->count++;
    return 0;
}

int tbgw_hmap_put(tbgw_hmap *m, const char *key, void *val, void **old) {
    return tbgw_hmap_putn(m, key, strlen(key), val, old);
}

void *tbgw_hmap_deln(tbgw_hmap *m, const char *key, size_t klen) {
    tbgw_hmap_slot *s = find(m, key, klen, tbgw_hash(key, klen));
    if (!s) return NULL;
    void *v = s->val;
    free(s->key);
    s->key = TOMB;
    s->val = NULL;
    m->count--;
    return v;
}

void *tbgw_hmap_del(tbgw_hmap *m, const char *key) {
    return tbgw_hmap_deln(m, key, strlen(key));
}

size_t tbgw_hmap_next(const tbgw_hmap *m, size_t pos, const char **key, void **val) {
    for (size_t i = pos; i < m->cap; i++) {
        const tbgw_hmap_slot *s = &m->slots[i];
        if (s->key && s->key != TOMB) {
            if (key) *key = s->key;
            if (val) *val = s->val;
            return i + 1;
        }
    }
    return 0;
}
