/* Node expressions: node ids ("ns=2;i=5"), absolute browse paths ("Root\.Objects\.Dev\.Temp") and
 * paths relative to a device node ("Temp", "Sub\.Temp"). Segments are separated by an escaped dot,
 * may carry an "ns:" prefix, and may be regular expressions (whole-name match). Browse results are
 * cached per scan, so many datapoints under one device cost one Browse. A scan's cache yields
 * between its browse requests so the connector can serve publishing and downlink meanwhile. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"

#define MAX_FRONTIER 4096

/* Nodes with more children than this get a hash index of their children by browse name. */
#define INDEX_MIN_CHILDREN 64

typedef struct cache_entry {
    tbgw_ua_nodeid node;
    tbgw_ua_ref *refs;
    size_t n;
    uint32_t *index; /* open addressing, linear probing: ref index + 1 by browse name; built on first use */
    size_t index_cap;
    struct cache_entry *next;
} cache_entry;

struct opcua_browse_cache {
    cache_entry *head;
    int (*yield)(void *ctx); /* called between browse requests (may be NULL) */
    void *yield_ctx;
};

opcua_browse_cache *opcua_cache_new(void) {
    return calloc(1, sizeof(opcua_browse_cache));
}

void opcua_cache_set_yield(opcua_browse_cache *bc, int (*yield)(void *ctx), void *ctx) {
    bc->yield = yield;
    bc->yield_ctx = ctx;
}

void opcua_cache_free(opcua_browse_cache *bc) {
    if (!bc) return;
    for (cache_entry *e = bc->head, *nx; e; e = nx) {
        nx = e->next;
        tbgw_ua_nodeid_clear(&e->node);
        tbgw_ua_refs_free(e->refs, e->n);
        free(e->index);
        free(e);
    }
    free(bc);
}

static int children(tbgw_ua_client *c, opcua_browse_cache *bc, const tbgw_ua_nodeid *node,
                    cache_entry **out) {
    for (cache_entry *e = bc->head; e; e = e->next) {
        if (tbgw_ua_nodeid_equal(&e->node, node)) {
            *out = e;
            return 0;
        }
    }
    cache_entry *e = calloc(1, sizeof *e);
    if (!e) return TBGW_ENOMEM;
    int rc = tbgw_ua_browse_ex(c, node, &e->refs, &e->n, bc->yield, bc->yield_ctx);
    if (rc == 0) rc = tbgw_ua_nodeid_copy(&e->node, node);
    if (rc) {
        tbgw_ua_refs_free(e->refs, e->n);
        free(e);
        return rc;
    }
    e->next = bc->head;
    bc->head = e;
    *out = e;
    return bc->yield ? bc->yield(bc->yield_ctx) : 0;
}

int opcua_cache_put(opcua_browse_cache *bc, const tbgw_ua_nodeid *node, tbgw_ua_ref *refs, size_t n) {
    cache_entry *e = calloc(1, sizeof *e);
    if (!e || tbgw_ua_nodeid_copy(&e->node, node)) {
        free(e);
        return TBGW_ENOMEM;
    }
    e->refs = refs;
    e->n = n;
    e->next = bc->head;
    bc->head = e;
    return 0;
}

int opcua_path_split(const char *path, char ***segs, size_t *n) {
    *segs = NULL;
    *n = 0;
    size_t cap = 4;
    char **v = malloc(cap * sizeof *v);
    if (!v) return TBGW_ENOMEM;
    const char *p = path;
    for (;;) {
        const char *sep = strstr(p, "\\.");
        size_t len = sep ? (size_t)(sep - p) : strlen(p);
        if (*n == cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) goto oom;
            v = nv;
        }
        v[*n] = strndup(p, len);
        if (!v[*n]) goto oom;
        (*n)++;
        if (!sep) break;
        p = sep + 2;
    }
    *segs = v;
    return 0;
oom:
    opcua_path_free(v, *n);
    *n = 0;
    return TBGW_ENOMEM;
}

void opcua_path_free(char **segs, size_t n) {
    for (size_t i = 0; i < n && segs; i++) free(segs[i]);
    free(segs);
}

char *opcua_expr_body(const char *s) {
    const char *a = strstr(s, "${");
    if (!a) return strdup(s);
    const char *b = strchr(a + 2, '}');
    if (!b) return strdup(s);
    return strndup(a + 2, (size_t)(b - a - 2));
}

typedef struct seg_match {
    int has_ns;
    uint16_t ns;
    const char *name;
    pcre2_code *re;
} seg_match;

static int seg_prepare(const char *seg, seg_match *m) {
    memset(m, 0, sizeof *m);
    m->name = seg;
    const char *colon = strchr(seg, ':');
    if (colon && colon > seg) {
        int digits = 1;
        for (const char *q = seg; q < colon; q++) digits &= isdigit((unsigned char)*q) != 0;
        if (digits && colon - seg < 6) {
            m->has_ns = 1;
            m->ns = (uint16_t)atoi(seg);
            m->name = colon + 1;
        }
    }
    if (strpbrk(m->name, "*+?[](){}|^$.\\")) {
        int errcode;
        PCRE2_SIZE erroff;
        m->re = pcre2_compile((PCRE2_SPTR)m->name, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                              &errcode, &erroff, NULL);
    }
    return 0;
}

static int seg_matches(const seg_match *m, const tbgw_ua_qname *qn) {
    if (m->has_ns && qn->ns != m->ns) return 0;
    if (qn->name.len < 0) return 0;
    const char *name = (const char *)qn->name.data;
    if (strcmp(name, m->name) == 0) return 1;
    if (!m->re) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(m->re, NULL);
    if (!md) return 0;
    int rc = pcre2_match(m->re, (PCRE2_SPTR)name, (PCRE2_SIZE)qn->name.len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static uint64_t name_hash(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int build_index(cache_entry *e) {
    size_t cap = 16;
    while (cap < e->n * 2) cap *= 2;
    e->index = calloc(cap, sizeof *e->index);
    if (!e->index) return TBGW_ENOMEM;
    e->index_cap = cap;
    for (size_t k = 0; k < e->n; k++) {
        const tbgw_ua_qname *q = &e->refs[k].browse_name;
        if (q->name.len < 0) continue;
        size_t h = (size_t)name_hash((const char *)q->name.data) & (cap - 1);
        while (e->index[h]) h = (h + 1) & (cap - 1);
        e->index[h] = (uint32_t)k + 1;
    }
    return 0;
}

/* The children of e named m->name (a plain name, no regular expression), in browse order: from the
 * index when e has many children. Returns the number stored in hits, or -1 when the index is not
 * used (few children, no memory, or more than max hits: the caller scans linearly). Linear probing
 * without deletions yields equal names in insertion order, i.e. browse order. */
static int indexed_matches(cache_entry *e, const seg_match *m, size_t *hits, size_t max) {
    if (m->re || e->n <= INDEX_MIN_CHILDREN || e->n >= UINT32_MAX) return -1;
    if (!e->index && build_index(e)) return -1;
    size_t nh = 0;
    for (size_t h = (size_t)name_hash(m->name) & (e->index_cap - 1); e->index[h];
         h = (h + 1) & (e->index_cap - 1)) {
        size_t k = e->index[h] - 1;
        if (!seg_matches(m, &e->refs[k].browse_name)) continue;
        if (nh == max) return -1;
        hits[nh++] = k;
    }
    return (int)nh;
}

/* One step: children of every frontier node that match seg. */
static int step(tbgw_ua_client *c, opcua_browse_cache *bc, tbgw_ua_nodeid *front, size_t nf, const char *seg,
                tbgw_ua_nodeid *next, size_t *nn) {
    seg_match m;
    seg_prepare(seg, &m);
    int rc = 0;
    *nn = 0;
    for (size_t i = 0; i < nf && rc == 0; i++) {
        cache_entry *e = NULL;
        rc = children(c, bc, &front[i], &e);
        if (rc == TBGW_ENOENT) { /* a node that cannot be browsed has no children */
            rc = 0;
            continue;
        }
        if (rc) break;
        size_t hits[64];
        int nh = indexed_matches(e, &m, hits, sizeof hits / sizeof hits[0]);
        for (int j = 0; rc == 0 && j < nh && *nn < MAX_FRONTIER; j++)
            if (e->refs[hits[j]].node.server_index == 0)
                rc = tbgw_ua_nodeid_copy(&next[(*nn)++], &e->refs[hits[j]].node.id);
        for (size_t k = 0; nh < 0 && rc == 0 && k < e->n && *nn < MAX_FRONTIER; k++) {
            if (e->refs[k].node.server_index != 0 || !seg_matches(&m, &e->refs[k].browse_name)) continue;
            rc = tbgw_ua_nodeid_copy(&next[(*nn)++], &e->refs[k].node.id);
        }
    }
    pcre2_code_free(m.re);
    return rc;
}

static void clear_ids(tbgw_ua_nodeid *ids, size_t n) {
    for (size_t i = 0; i < n; i++) tbgw_ua_nodeid_clear(&ids[i]);
}

int opcua_resolve(tbgw_ua_client *c, opcua_browse_cache *bc, const tbgw_ua_nodeid *base, const char *expr,
                  tbgw_ua_nodeid *out, size_t max) {
    while (isspace((unsigned char)*expr)) expr++;
    if (max == 0) return 0;
    if (tbgw_ua_nodeid_parse(expr, &out[0]) == 0) return 1;
    char **segs;
    size_t ns;
    int rc = opcua_path_split(expr, &segs, &ns);
    if (rc) return rc;
    tbgw_ua_nodeid *front = calloc(MAX_FRONTIER, sizeof *front);
    tbgw_ua_nodeid *next = calloc(MAX_FRONTIER, sizeof *next);
    size_t nf = 1, first = 0;
    if (!front || !next) {
        rc = TBGW_ENOMEM;
        goto done;
    }
    if (strcmp(segs[0], "Root") == 0 || strcmp(segs[0], "0:Root") == 0) {
        front[0] = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_ROOT);
        first = 1;
    } else if (base) {
        rc = tbgw_ua_nodeid_copy(&front[0], base);
    } else {
        front[0] = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_OBJECTS);
    }
    for (size_t i = first; rc == 0 && i < ns && nf > 0; i++) {
        size_t nn = 0;
        rc = step(c, bc, front, nf, segs[i], next, &nn);
        clear_ids(front, nf);
        tbgw_ua_nodeid *t = front;
        front = next;
        next = t;
        nf = nn;
    }
    if (rc == 0) {
        size_t k = nf < max ? nf : max;
        for (size_t i = 0; i < k; i++) {
            out[i] = front[i];
            front[i] = tbgw_ua_nodeid_num(0, 0);
        }
        rc = (int)k;
    }
done:
    if (front) clear_ids(front, nf);
    free(front);
    free(next);
    opcua_path_free(segs, ns);
    return rc;
}
