/* Parsing and validation of the Modbus connector file (spec §7.2). No I/O. */
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/connkit.h>

#include "convert/report_cfg.h"

#include "connectors/modbus/mbc.h"
#include "util/buf.h"

/* Numbers as the reference reads them (Python int() / float()): also numeric strings, booleans, and
 * fractions cut off. Field errors name path.key (tbgw_cfg_get_int_ex / _num_ex). */
#define MB_NUM (TBGW_CFG_NUM_STRING | TBGW_CFG_NUM_TRUNC | TBGW_CFG_NUM_BOOL)

static int get_int(const json_t *o, const char *path, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out, tbgw_err *err) {
    return tbgw_cfg_get_int_ex(o, path, key, def, lo, hi, MB_NUM, out, err);
}

/* A required integer lo..hi: "path.key: required integer lo..hi" when absent. */
static int need_int(const json_t *o, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out,
                    tbgw_err *err) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: required integer %lld..%lld", path, key, (long long)lo,
                            (long long)hi);
    return get_int(o, path, key, 0, lo, hi, out, err);
}

static int get_double(const json_t *o, const char *path, const char *key, double def, double *out,
                      tbgw_err *err) {
    return tbgw_cfg_get_num_ex(o, path, key, def, -DBL_MAX, DBL_MAX, TBGW_CFG_NUM_STRING | TBGW_CFG_NUM_BOOL,
                               out, err);
}

static const char *get_str(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int order_little(const json_t *o, const char *key, int dflt, int *out, const char *path,
                        tbgw_err *err) {
    const char *s = get_str(o, key);
    if (!s) {
        *out = dflt;
        return 0;
    }
    if (!strcasecmp(s, "LITTLE"))
        *out = 1;
    else if (!strcasecmp(s, "BIG"))
        *out = 0;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.%s: expected one of BIG, LITTLE", path, key);
    return 0;
}

int mbc_parse_report_strategy(const json_t *o, const char *path, tbgw_report_strategy *rs, int *has,
                              tbgw_err *err) {
    *has = 0;
    int rc = tbgw_rs_parse_in(json_object_get(o, "reportStrategy"), path, rs, err);
    if (rc == 0) *has = rs->type != TBGW_RS_UNSET;
    return rc;
}

/* The value spec shared by points and writes. */
static int parse_spec(const json_t *o, const char *path, int count, int byte_little, int word_little,
                      tbgw_mbv_spec *s, tbgw_err *err) {
    tbgw_mbv_spec_init(s);
    s->count = (uint16_t)count;
    const char *type = get_str(o, "type");
    if (!type) type = "16int";
    if (tbgw_mbv_spec_type(s, type, count) < 0)
        return tbgw_err_set(
            err, TBGW_EINVAL,
            "%s.type: unknown type '%s' (expected 8int, 8uint, 16int, 16uint, 16float, 32int, 32uint, "
            "32float, 64int, 64uint, 64float, string, bytes, bits, bit, int, long, integer, uint, "
            "float, double with a matching objectsCount)",
            path, type);
    int bo, wo;
    if (order_little(o, "byteOrder", byte_little, &bo, path, err) < 0) return TBGW_EINVAL;
    if (order_little(o, "wordOrder", word_little, &wo, path, err) < 0) return TBGW_EINVAL;
    s->byte_little = (uint8_t)bo;
    s->word_little = (uint8_t)wo;
    int64_t bit, rnd;
    if (get_int(o, path, "bit", -1, -1, 15, &bit, err) < 0) return TBGW_EINVAL; /* -1: the whole value */
    s->bit = (int8_t)bit;
    const char *btt = get_str(o, "bitTargetType");
    if (btt && strcasecmp(btt, "bool") && strcasecmp(btt, "int"))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.bitTargetType: expected one of bool, int", path);
    s->bit_int = btt && !strcasecmp(btt, "int");
    if (get_double(o, path, "divider", s->divider, &s->divider, err) < 0 ||
        get_double(o, path, "multiplier", s->multiplier, &s->multiplier, err) < 0)
        return TBGW_EINVAL;
    s->multiplier_is_int = json_is_integer(json_object_get(o, "multiplier"));
    s->divider_is_int = json_is_integer(json_object_get(o, "divider"));
    if (get_int(o, path, "round", 6, INT_MIN, INT_MAX, &rnd, err) < 0) return TBGW_EINVAL;
    s->round_digits = (int)rnd;
    const json_t *var = json_object_get(o, "variants");
    if (var && !json_is_object(var) && !json_is_null(var))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.variants: expected an object", path);
    /* a reference of the connector's own (the configuration tree is not kept) */
    s->variants = json_is_object(var) ? json_deep_copy(var) : NULL;
    if (json_is_object(var) && !s->variants) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    return 0;
}

/* objectsCount, or its older names registersCount / registerCount (the first one present). */
static int objects_count(const json_t *o, const char *path, int *out, tbgw_err *err) {
    static const char *const names[] = {"objectsCount", "registersCount", "registerCount"};
    const char *key = names[0];
    for (size_t i = 0; i < 3; i++)
        if (json_object_get(o, names[i]) && !json_is_null(json_object_get(o, names[i]))) {
            key = names[i];
            break;
        }
    int64_t c;
    if (get_int(o, path, key, 1, 1, 2000, &c, err) < 0) return TBGW_EINVAL;
    *out = (int)c;
    return 0;
}

static int parse_fc(const json_t *o, const char *path, int writes_ok, int *fc, tbgw_err *err) {
    int64_t f = 0;
    if (!json_object_get(o, "functionCode") || json_is_null(json_object_get(o, "functionCode")))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.functionCode: required integer", path);
    if (get_int(o, path, "functionCode", 0, INT64_MIN, INT64_MAX, &f, err) < 0) return TBGW_EINVAL;
    int ok = (f >= 1 && f <= 4) || (writes_ok && (f == 5 || f == 6 || f == 15 || f == 16));
    if (!ok)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.functionCode: expected one of %s", path,
                            writes_ok ? "1, 2, 3, 4, 5, 6, 15, 16" : "1, 2, 3, 4");
    *fc = (int)f;
    return 0;
}

int mbc_parse_write(const json_t *o, const char *path, int byte_little, int word_little, mbc_write *w,
                    tbgw_err *err) {
    memset(w, 0, sizeof *w);
    const char *tag = get_str(o, "tag");
    int64_t addr = -1;
    if (parse_fc(o, path, 1, &w->fc, err) < 0) return TBGW_EINVAL;
    if (need_int(o, path, "address", 0, 65535, &addr, err) < 0) return TBGW_EINVAL;
    if (objects_count(o, path, &w->count, err) < 0) return TBGW_EINVAL;
    if (parse_spec(o, path, w->count, byte_little, word_little, &w->spec, err) < 0) return TBGW_EINVAL;
    const json_t *rp = json_object_get(o, "repack");
    if (rp && !json_is_boolean(rp)) {
        mbc_write_clear(w);
        return tbgw_err_set(err, TBGW_EINVAL, "%s.repack: expected true or false", path);
    }
    w->spec.repack = json_is_true(rp);
    w->addr = (uint16_t)addr;
    w->tag = strdup(tag ? tag : "");
    if (w->tag) return 0;
    mbc_write_clear(w);
    return TBGW_ENOMEM;
}

void mbc_write_clear(mbc_write *w) {
    free(w->tag);
    free(w->error);
    json_decref(w->spec.variants);
    memset(w, 0, sizeof *w);
}

/* Expands ${address}, ${unitId}, ${functionCode}, ${type}, ${objectsCount} in a tag template. */
static char *render_tag(const char *tmpl, int addr, int unit, int fc, const char *type, int count) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    for (const char *p = tmpl; *p;) {
        const char *e;
        if (p[0] == '$' && p[1] == '{' && (e = strchr(p, '}'))) {
            size_t n = (size_t)(e - p - 2);
            if (n == 7 && !strncmp(p + 2, "address", 7))
                tbgw_buf_printf(&b, "%d", addr);
            else if (n == 6 && !strncmp(p + 2, "unitId", 6))
                tbgw_buf_printf(&b, "%d", unit);
            else if (n == 12 && !strncmp(p + 2, "functionCode", 12))
                tbgw_buf_printf(&b, "%d", fc);
            else if (n == 4 && !strncmp(p + 2, "type", 4))
                tbgw_buf_puts(&b, type);
            else if (n == 12 && !strncmp(p + 2, "objectsCount", 12))
                tbgw_buf_printf(&b, "%d", count);
            else
                tbgw_buf_append(&b, p, (size_t)(e - p + 1));
            p = e + 1;
        } else {
            tbgw_buf_putc(&b, *p++);
        }
    }
    const char *s = tbgw_buf_cstr(&b);
    char *r = s ? strdup(s) : NULL;
    tbgw_buf_free(&b);
    return r;
}

static int push_point(mbc_slave *sl, const mbc_point *p) {
    if (sl->n_points == sl->cap_points) { /* doubling, fitted by mbc_plan_blocks */
        size_t nc = sl->cap_points ? sl->cap_points * 2 : 8;
        mbc_point *np = realloc(sl->points, nc * sizeof *np);
        if (!np) return TBGW_ENOMEM;
        sl->points = np;
        sl->cap_points = nc;
    }
    sl->points[sl->n_points++] = *p;
    return 0;
}

/* One timeseries/attributes entry: a single address or a range "a-b" expanded into points. */
static int point_body(mbc_slave *sl, const json_t *o, const char *path, int is_attr, int fc_override, int bl,
                      int wl, mbc_point *pp, tbgw_mbv_spec *spec, tbgw_err *err);

static void spec_free(void *v) {
    tbgw_mbv_spec *s = v;
    json_decref(s->variants);
    free(s);
}

/* Points with equal value specs share one: a slave of ten 16-bit registers has one, not ten (the
 * spec's bytes are compared; padding is zero from tbgw_mbv_spec_init). The pool holds its own
 * reference to the variants. */
static const tbgw_mbv_spec *intern_spec(mbc *m, const tbgw_mbv_spec *s) {
    tbgw_mbv_spec *have = tbgw_hmap_getn(&m->specs, (const char *)s, sizeof *s);
    if (have) return have;
    tbgw_mbv_spec *n = malloc(sizeof *n);
    if (!n) return NULL;
    memcpy(n, s, sizeof *n);
    json_incref(n->variants);
    if (tbgw_hmap_putn(&m->specs, (const char *)n, sizeof *n, n, NULL) < 0) {
        spec_free(n);
        return NULL;
    }
    return n;
}

/* The parse's reference to the entry's variants is dropped here (the spec pool keeps its own). */
static int parse_point(mbc_slave *sl, const json_t *o, const char *path, int is_attr, int fc_override, int bl,
                       int wl, tbgw_err *err) {
    mbc_point p;
    memset(&p, 0, sizeof p);
    tbgw_mbv_spec spec;
    tbgw_mbv_spec_init(&spec);
    int rc = point_body(sl, o, path, is_attr, fc_override, bl, wl, &p, &spec, err);
    json_decref(spec.variants);
    return rc;
}

static int point_body(mbc_slave *sl, const json_t *o, const char *path, int is_attr, int fc_override, int bl,
                      int wl, mbc_point *pp, tbgw_mbv_spec *spec, tbgw_err *err) {
    mbc_point p = *pp;
    const char *tag = get_str(o, "tag");
    if (!tag || !*tag) return tbgw_err_set(err, TBGW_EINVAL, "%s.tag: required string", path);
    int fc = fc_override;
    if (!fc && parse_fc(o, path, 0, &fc, err) < 0) return TBGW_EINVAL;
    p.fc = (uint8_t)fc;
    int count;
    if (objects_count(o, path, &count, err) < 0) return TBGW_EINVAL;
    p.count = (uint16_t)count; /* 1..2000 */
    int maxc = (p.fc <= 2) ? TBGW_MB_MAX_READ_BITS : TBGW_MB_MAX_READ_REGS;
    if (p.count > maxc)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.objectsCount: at most %d for function code %d", path, maxc,
                            p.fc);
    if (parse_spec(o, path, p.count, bl, wl, spec, err) < 0) return TBGW_EINVAL; /* parse_point drops it */
    if (!(p.spec = intern_spec(sl->m, spec))) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    tbgw_report_strategy rs;
    int has_rs;
    if (mbc_parse_report_strategy(o, path, &rs, &has_rs, err) < 0) return TBGW_EINVAL;
    p.is_attr = (uint8_t)is_attr;
    int64_t a0 = 0, a1 = 0, mpr;
    const json_t *addr = json_object_get(o, "address");
    const char *as = json_is_string(addr) ? json_string_value(addr) : NULL;
    int is_range = as && strchr(as + 1, '-');
    if (is_range) {
        char *end;
        a0 = strtoll(as, &end, 10);
        if (*end != '-') goto bad_addr;
        a1 = strtoll(end + 1, &end, 10);
        if (*end || a1 < a0) goto bad_addr;
        if (get_int(o, path, "maxRegistersPerRequest", 16, 1, maxc, &mpr, err) < 0) return TBGW_EINVAL;
    } else {
        tbgw_err ignored;
        if (!addr || json_is_null(addr) ||
            get_int(o, path, "address", 0, INT64_MIN, INT64_MAX, &a0, &ignored) < 0)
            goto bad_addr;
        a1 = a0;
        mpr = maxc;
    }
    if (a0 < 0 || a1 + p.count - 1 > 65535) goto bad_addr;
    if (mpr < p.count) mpr = p.count;
    p.max_per_request = (uint16_t)mpr;
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s%s", tag, is_range && !strstr(tag, "${address}") ? "_${address}" : "");
    for (int64_t a = a0; a <= a1; a += p.count) {
        p.addr = (uint16_t)a;
        p.key = is_range ? render_tag(tmpl, (int)a, sl->unit, p.fc,
                                      get_str(o, "type") ? get_str(o, "type") : "16int", p.count)
                         : strdup(tag);
        p.rs = NULL; /* each point owns its (rare) strategy */
        if (has_rs && (p.rs = malloc(sizeof *p.rs))) *p.rs = rs;
        if (!p.key || (has_rs && !p.rs) || push_point(sl, &p) < 0) {
            free(p.key);
            free(p.rs);
            return TBGW_ENOMEM;
        }
    }
    return 0;
bad_addr:
    return tbgw_err_set(err, TBGW_EINVAL, "%s.address: expected an integer 0..65535 or a range \"start-end\"",
                        path);
}

static int cmp_point(const void *a, const void *b) {
    const mbc_point *x = a, *y = b;
    if (x->fc != y->fc) return x->fc - y->fc;
    return (int)x->addr - (int)y->addr;
}

/* Merges points with the same function code and (nearly) adjacent addresses into block reads. */
int mbc_plan_blocks(mbc_slave *sl, int gap) {
    size_t n = sl->n_points;
    if (n && n < sl->cap_points) {
        mbc_point *fit = realloc(sl->points, n * sizeof *fit);
        if (fit) {
            sl->points = fit;
            sl->cap_points = n;
        }
    }
    if (n) qsort(sl->points, n, sizeof *sl->points, cmp_point);
    free(sl->blocks);
    sl->blocks = calloc(n ? n : 1, sizeof *sl->blocks);
    sl->n_blocks = 0;
    if (!sl->blocks) return TBGW_ENOMEM;
    int limit = 0;
    for (size_t i = 0; i < n; i++) {
        mbc_point *p = &sl->points[i];
        mbc_block *b = sl->n_blocks ? &sl->blocks[sl->n_blocks - 1] : NULL;
        uint32_t end = (uint32_t)p->addr + (uint32_t)p->count;
        if (b && b->fc == p->fc && p->addr <= (uint32_t)b->addr + b->count + (uint32_t)gap) {
            uint32_t nend = end > (uint32_t)b->addr + b->count ? end : (uint32_t)b->addr + b->count;
            int nlimit = p->max_per_request < limit ? p->max_per_request : limit;
            if (nend - b->addr <= (uint32_t)nlimit) {
                b->count = (uint16_t)(nend - b->addr);
                limit = nlimit;
                p->block = (int)sl->n_blocks - 1;
                p->block_off = p->addr - b->addr;
                continue;
            }
        }
        b = &sl->blocks[sl->n_blocks++];
        b->fc = p->fc;
        b->addr = p->addr;
        b->count = (uint16_t)p->count;
        limit = p->max_per_request;
        p->block = (int)sl->n_blocks - 1;
        p->block_off = 0;
    }
    /* planned with one block per point at most; adjacent registers usually merge into a few blocks,
     * so give the rest back */
    if (sl->n_blocks < n) {
        mbc_block *fit = realloc(sl->blocks, (sl->n_blocks ? sl->n_blocks : 1) * sizeof *fit);
        if (fit) sl->blocks = fit;
    }
    /* each block's answer, sized to its read (20 bytes for 10 registers), in one allocation */
    size_t total = 0;
    for (size_t i = 0; i < sl->n_blocks; i++) {
        mbc_block *b = &sl->blocks[i];
        size_t bytes = b->fc <= 2 ? ((size_t)b->count + 7) / 8 : (size_t)b->count * 2;
        b->cap = (uint16_t)(bytes < 250 ? bytes : 250);
        total += b->cap;
    }
    free(sl->block_data);
    sl->block_data = malloc(total ? total : 1);
    if (!sl->block_data) return TBGW_ENOMEM;
    for (size_t i = 0, off = 0; i < sl->n_blocks; off += sl->blocks[i++].cap)
        sl->blocks[i].data = sl->block_data + off;
    return 0;
}

typedef struct list_ctx {
    mbc_slave *sl;
    int is_attr, fc_override, bl, wl;
} list_ctx;

static int point_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud,
                       tbgw_err *err) {
    (void)w, (void)index;
    list_ctx *l = ud;
    return parse_point(l->sl, e, path, l->is_attr, l->fc_override, l->bl, l->wl, err);
}

/* timeseries / attributes: a bad entry is reported with its file:line:column and skipped. */
static int parse_list(tbgw_cfg *w, mbc_slave *sl, const json_t *o, const char *path, const char *key,
                      int is_attr, int fc_override, int bl, int wl) {
    list_ctx l = {sl, is_attr, fc_override, bl, wl};
    int rc = tbgw_cfg_each(w, o, path, key, point_entry, &l);
    return rc < 0 ? rc : 0;
}

/* An rpc entry that cannot be used keeps its method name, so that calling it answers the reason at
 * once instead of "Method not found" or a timeout. */
static int keep_broken(mbc_write *w, const char *tag, const tbgw_err *why) {
    memset(w, 0, sizeof *w);
    w->tag = strdup(tag);
    w->error = strdup(why->msg);
    return w->tag && w->error ? 0 : TBGW_ENOMEM;
}

/* One attributeUpdates/rpc entry; a broken one is reported and skipped (rpc: kept as broken when it has
 * a name). Returns 1 when *out was filled, 0 when skipped, <0 on out of memory. */
static int parse_write_entry(tbgw_cfg *w, const json_t *e, const char *p, const char *name, int is_rpc,
                             int bl, int wl, mbc_write *out) {
    tbgw_err ee = {0, ""};
    int rc = json_is_object(e) ? mbc_parse_write(e, p, bl, wl, out, &ee)
                               : tbgw_err_set(&ee, TBGW_EINVAL, "%s: expected an object", p);
    if (rc == 0 && !name && !out->tag[0]) {
        mbc_write_clear(out);
        rc = tbgw_err_set(&ee, TBGW_EINVAL, "%s.tag: required string", p);
    }
    if (rc == 0) {
        if (name) {
            free(out->tag);
            out->tag = strdup(name);
            if (!out->tag) return TBGW_ENOMEM;
        }
        return 1;
    }
    if (ee.code == TBGW_ENOMEM) return TBGW_ENOMEM;
    tbgw_cfg_skip_err(w, p, ee.msg);
    if (!name && json_is_object(e)) name = get_str(e, "tag");
    if (!is_rpc || !name || !*name) return 0;
    return keep_broken(out, name, &ee) < 0 ? TBGW_ENOMEM : 1;
}

typedef struct writes_ctx {
    mbc_write *v;
    size_t *n;
    int is_rpc, bl, wl;
} writes_ctx;

static int write_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud,
                       tbgw_err *err) {
    (void)index;
    writes_ctx *x = ud;
    int rc = parse_write_entry(w, e, path, NULL, x->is_rpc, x->bl, x->wl, &x->v[*x->n]);
    if (rc < 0) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    *x->n += (size_t)rc;
    return 0; /* reported by parse_write_entry */
}

/* attributeUpdates (a list) or rpc (a list of {tag,...} or an object {method: cfg}). */
static int parse_writes(tbgw_cfg *w, const json_t *o, const char *path, const char *key, int bl, int wl,
                        mbc_write **out, size_t *n) {
    int is_rpc = !strcmp(key, "rpc");
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v) && !json_is_object(v))
        return tbgw_err_set(w->err, TBGW_EINVAL, "%s.%s: expected a list or an object", path, key);
    size_t cnt = json_is_array(v) ? json_array_size(v) : json_object_size(v);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out) return tbgw_err_set(w->err, TBGW_ENOMEM, "out of memory");
    if (json_is_array(v)) {
        writes_ctx x = {*out, n, is_rpc, bl, wl};
        int rc = tbgw_cfg_each(w, o, path, key, write_entry, &x);
        return rc < 0 ? rc : 0;
    }
    const char *k;
    const json_t *e;
    json_object_foreach((json_t *)v, k, e) {
        char p[200];
        snprintf(p, sizeof p, "%s.%s.%s", path, key, k);
        int rc = parse_write_entry(w, e, p, k, is_rpc, bl, wl, &(*out)[*n]);
        if (rc < 0) return tbgw_err_set(w->err, TBGW_ENOMEM, "out of memory");
        *n += (size_t)rc;
    }
    return 0;
}

static int parse_endpoint(const json_t *o, const char *path, tbgw_mb_endpoint *ep, tbgw_err *err);

/* An endpoint string of the configuration, owned by the endpoint (NULL when absent or empty). */
static int copy_str(const char **dst, const char *src) {
    *dst = NULL;
    if (!src || !*src) return 0;
    return (*dst = strdup(src)) ? 0 : TBGW_ENOMEM;
}

void mbc_endpoint_clear(tbgw_mb_endpoint *ep) {
    const char **s[] = {&ep->host, &ep->path, &ep->tls_ca, &ep->tls_cert, &ep->tls_key, &ep->tls_password};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        free((char *)*s[i]);
        *s[i] = NULL;
    }
}

int mbc_parse_endpoint(const json_t *o, const char *path, tbgw_mb_endpoint *ep, tbgw_err *err) {
    memset(ep, 0, sizeof *ep);
    int rc = parse_endpoint(o, path, ep, err);
    if (rc < 0) mbc_endpoint_clear(ep);
    return rc;
}

static int parse_endpoint(const json_t *o, const char *path, tbgw_mb_endpoint *ep, tbgw_err *err) {
    const char *type = get_str(o, "type");
    if (!type || !strcasecmp(type, "tcp"))
        ep->transport = TBGW_MB_TCP;
    else if (!strcasecmp(type, "udp"))
        ep->transport = TBGW_MB_UDP;
    else if (!strcasecmp(type, "tls"))
        ep->transport = TBGW_MB_TLS;
    else if (!strcasecmp(type, "serial"))
        ep->transport = TBGW_MB_SERIAL;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.type: expected one of tcp, udp, tls, serial", path);
    const char *method = get_str(o, "method");
    if (!method)
        ep->framing = ep->transport == TBGW_MB_SERIAL ? TBGW_MB_FRAMING_RTU : TBGW_MB_FRAMING_SOCKET;
    else if (!strcasecmp(method, "socket"))
        ep->framing = TBGW_MB_FRAMING_SOCKET;
    else if (!strcasecmp(method, "tls")) {
        ep->framing = TBGW_MB_FRAMING_TLS;
        if (ep->transport == TBGW_MB_TCP) ep->transport = TBGW_MB_TLS;
    } else if (!strcasecmp(method, "rtu"))
        ep->framing = TBGW_MB_FRAMING_RTU;
    else if (!strcasecmp(method, "ascii"))
        ep->framing = TBGW_MB_FRAMING_ASCII;
    else
        return tbgw_err_set(err, TBGW_EINVAL, "%s.method: expected one of socket, rtu, ascii, tls", path);
    if (ep->transport == TBGW_MB_SERIAL &&
        (ep->framing == TBGW_MB_FRAMING_SOCKET || ep->framing == TBGW_MB_FRAMING_TLS))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.method: a serial line needs rtu or ascii", path);
    const char *host = get_str(o, "host");
    if (copy_str(&ep->host, host && *host && strcmp(host, "127.0.0.1") ? host : NULL) <
        0) /* NULL: 127.0.0.1 */
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    int64_t v;
    if (ep->transport == TBGW_MB_SERIAL) {
        const char *port = get_str(o, "port");
        if (!port || !*port)
            return tbgw_err_set(err, TBGW_EINVAL, "%s.port: the serial device path is required", path);
        if (copy_str(&ep->path, port) < 0) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    } else {
        if (get_int(o, path, "port", 502, 0, 65535, &v, err) < 0) return TBGW_EINVAL;
        ep->port = (int)v;
    }
    double t;
    if (get_double(o, path, "timeout", 30, &t, err) < 0) return TBGW_EINVAL;
    if (t <= 0)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.timeout: expected a positive number of seconds", path);
    ep->timeout_ms = (int64_t)(t * 1000);
    static const struct {
        const char *k;
        int d;
        int lo, hi;
    } ints[] = {{"baudrate", 19200, 50, 4000000}, {"bytesize", 8, 5, 8}, {"stopbits", 1, 1, 2}};
    int *dst[] = {&ep->baudrate, &ep->bytesize, &ep->stopbits};
    for (size_t i = 0; i < 3; i++) {
        if (get_int(o, path, ints[i].k, ints[i].d, ints[i].lo, ints[i].hi, &v, err) < 0) return TBGW_EINVAL;
        *dst[i] = (int)v;
    }
    if (ep->transport == TBGW_MB_SERIAL && !tbgw_mb_baud_supported(ep->baudrate))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.baudrate: %d is not a standard rate (110..4000000, e.g. 9600, 19200, 115200)",
                            path, ep->baudrate);
    const char *par = get_str(o, "parity");
    ep->parity = par && *par ? (char)(par[0] >= 'a' ? par[0] - 32 : par[0]) : 'N';
    if (ep->parity != 'N' && ep->parity != 'E' && ep->parity != 'O')
        return tbgw_err_set(err, TBGW_EINVAL, "%s.parity: expected one of N, E, O", path);
    tbgw_err ignored; /* handleLocalEcho: anything that is not a number is off, as before */
    get_int(o, path, "handleLocalEcho", 0, INT64_MIN, INT64_MAX, &v, &ignored);
    ep->handle_local_echo = v != 0;
    if (get_int(o, path, "delayBetweenRequestsMs", 0, 0, INT64_MAX, &v, err) < 0) return TBGW_EINVAL;
    ep->delay_between_ms = v;
    const json_t *tls = json_object_get(o, "tls");
    if (!tls) tls = json_object_get(o, "security");
    if (json_is_object(tls)) {
        const char *ca = get_str(tls, "cafile") ? get_str(tls, "cafile") : get_str(tls, "ca_certs");
        if (copy_str(&ep->tls_cert, get_str(tls, "certfile")) < 0 ||
            copy_str(&ep->tls_key, get_str(tls, "keyfile")) < 0 ||
            copy_str(&ep->tls_password, get_str(tls, "password")) < 0 || copy_str(&ep->tls_ca, ca) < 0)
            return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        ep->tls_verify = ca != NULL;
    }
    return 0;
}

/* uplink_converter: a custom converter class name (or {"extension", "extensionConfig"}) that receives
 * the raw data of every poll instead of the built-in decoding. downlink_converter: not supported (the
 * plugin ABI has uplink converters only), refused rather than ignored. */
static int parse_custom_converters(mbc *m, mbc_slave *sl, const json_t *o, const char *path, tbgw_err *err) {
    const json_t *dn = json_object_get(o, "downlink_converter");
    if (dn && !json_is_null(dn))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.downlink_converter: custom downlink converters are not supported (writes use "
                            "the built-in encoder); remove the field",
                            path);
    const json_t *up = json_object_get(o, "uplink_converter");
    if (!up || json_is_null(up)) return 0;
    json_t *conv;
    if (json_is_string(up) && json_string_length(up))
        conv = json_pack("{s:O,s:O}", "extension", up, "extensionConfig",
                         o); /* the reference passes the slave */
    else if (json_is_object(up) && json_is_string(json_object_get(up, "extension")))
        conv = json_deep_copy(up);
    else
        return tbgw_err_set(err, TBGW_EINVAL,
                            "%s.uplink_converter: expected a converter name or {\"extension\": name, "
                            "\"extensionConfig\": {...}}",
                            path);
    if (!conv) return TBGW_ENOMEM;
    const tbgw_host *h = m->host;
    char cp[300];
    snprintf(cp, sizeof cp, "%s.uplink_converter", path);
    tbgw_err e = {0};
    int rc = tbgw_custom_conv_new(conv, "modbus", h && h->config_dir ? h->config_dir : ".", cp,
                                  h ? h->conv_log : NULL, &sl->uplink, &e);
    json_decref(conv);
    if (rc < 0) {
        const char *msg = e.msg;
        if (!strncmp(msg, cp, strlen(cp))) msg += strlen(cp); /* "<path>.extension: ..." */
        if (!strncmp(msg, ".extension", 10)) msg += 10;
        if (!strncmp(msg, ": ", 2)) msg += 2;
        return tbgw_err_set(err, TBGW_EINVAL, "%s: %s", cp, msg);
    }
    return 0;
}

/* The points' keys in one allocation (10 keys: one block instead of ten). */
static int pack_keys(mbc_slave *sl) {
    size_t total = 0;
    for (size_t i = 0; i < sl->n_points; i++) total += strlen(sl->points[i].key) + 1;
    if (!total) return 0;
    char *pool = malloc(total);
    if (!pool) return TBGW_ENOMEM;
    char *q = pool;
    for (size_t i = 0; i < sl->n_points; i++) {
        size_t n = strlen(sl->points[i].key) + 1;
        memcpy(q, sl->points[i].key, n);
        free(sl->points[i].key);
        sl->points[i].key = q;
        q += n;
    }
    sl->key_pool = pool;
    return 0;
}

static int parse_slave(mbc *m, mbc_slave *sl, const json_t *o, const char *path, tbgw_err *err) {
    sl->m = m;
    if (mbc_parse_endpoint(o, path, &sl->ep, err) < 0) return TBGW_EINVAL;
    int64_t unit = -1, v;
    if (need_int(o, path, "unitId", 0, 255, &unit, err) < 0) return TBGW_EINVAL;
    sl->unit = (uint8_t)unit;
    const char *dn = get_str(o, "deviceName");
    if (!dn || !*dn) return tbgw_err_set(err, TBGW_EINVAL, "%s.deviceName: required string", path);
    sl->device_name = strdup(dn);
    sl->device_type = strdup(get_str(o, "deviceType") ? get_str(o, "deviceType") : "default");
    if (!sl->device_name || !sl->device_type) return TBGW_ENOMEM;
    if (get_int(o, path, "pollPeriod", 5000, 1, INT64_MAX, &v, err) < 0) return TBGW_EINVAL; /* ms */
    sl->poll_ms = v;
    const json_t *rj = json_object_get(o, "retries");
    sl->retries = json_is_boolean(rj) ? (json_is_true(rj) ? 3 : 0) : 3;
    if (json_is_integer(rj)) sl->retries = (int)json_integer_value(rj);
    if (sl->retries < 0 || sl->retries > 100)
        return tbgw_err_set(err, TBGW_EINVAL, "%s.retries: expected a boolean or an integer 0..100", path);
    static const char *flags[] = {"retryOnEmpty", "retryOnInvalid", "repack"};
    int *dst[] = {&sl->retry_on_empty, &sl->retry_on_invalid, &sl->repack};
    for (size_t f = 0; f < 3; f++)
        if (tbgw_cfg_get_bool(o, path, flags[f], 0, dst[f], err) < 0) return TBGW_EINVAL;
    int64_t at, ac, wa;
    if (get_int(o, path, "connectAttemptTimeMs", 500, INT64_MIN, INT64_MAX, &at, err) < 0 ||
        get_int(o, path, "connectAttemptCount", 2, INT64_MIN, INT64_MAX, &ac, err) < 0 ||
        get_int(o, path, "waitAfterFailedAttemptsMs", 30000, INT64_MIN, INT64_MAX, &wa, err) < 0)
        return TBGW_EINVAL;
    sl->attempt_ms = at < 500 ? 500 : at;
    sl->attempt_count = ac < 2 ? 2 : (int)ac;
    sl->wait_after_ms = wa < 30000 ? 30000 : wa;
    if (mbc_parse_report_strategy(o, path, &sl->rs, &sl->has_rs, err) < 0) return TBGW_EINVAL;
    int bl, wl;
    if (order_little(o, "byteOrder", 1, &bl, path, err) < 0 ||
        order_little(o, "wordOrder", 1, &wl, path, err) < 0)
        return TBGW_EINVAL;
    sl->byte_little = bl;
    sl->word_little = wl;
    tbgw_cfg w;
    tbgw_cfg_init(&w, m->host, err);
    int rc;
    if ((rc = parse_list(&w, sl, o, path, "timeseries", 0, 0, bl, wl)) < 0 ||
        (rc = parse_list(&w, sl, o, path, "attributes", 1, 0, bl, wl)) < 0 ||
        (rc = parse_writes(&w, o, path, "attributeUpdates", bl, wl, &sl->attr_updates, &sl->n_attr_updates)) <
            0 ||
        (rc = parse_writes(&w, o, path, "rpc", bl, wl, &sl->rpcs, &sl->n_rpcs)) < 0)
        return rc;
    if (parse_custom_converters(m, sl, o, path, err) < 0) return TBGW_EINVAL;
    if ((rc = mbc_plan_blocks(sl, m->block_gap)) < 0) return rc;
    return pack_keys(sl);
}

/* Room for n more slaves at once (one allocation for a configuration of 1,000). */
static int reserve_slaves(mbc *m, size_t n) {
    if (m->n_slaves + n <= m->cap_slaves) return 0;
    size_t nc = m->n_slaves + n;
    if (nc < m->cap_slaves * 2) nc = m->cap_slaves * 2;
    mbc_slave *ns = realloc(m->slaves, nc * sizeof *ns);
    if (!ns) return TBGW_ENOMEM;
    m->slaves = ns;
    m->cap_slaves = nc;
    return 0;
}

int mbc_slave_add(mbc *m, const json_t *o, const char *path, tbgw_err *err) {
    if (reserve_slaves(m, 1) < 0) return TBGW_ENOMEM;
    mbc_slave *sl = &m->slaves[m->n_slaves++];
    memset(sl, 0, sizeof *sl);
    return parse_slave(m, sl, o, path, err);
}

int mbc_config_parse(mbc *m, const json_t *cfg, tbgw_err *err) {
    if (!json_is_object(cfg)) return tbgw_err_set(err, TBGW_EINVAL, "modbus: expected a JSON object");
    int64_t gap;
    if (get_int(cfg, NULL, "blockReadGap", 0, 0, 100, &gap, err) < 0) return TBGW_EINVAL;
    m->block_gap = (int)gap;
    const json_t *master = json_object_get(cfg, "master");
    const json_t *slaves = json_object_get(master, "slaves");
    const char *base = "master.slaves";
    if (!master) { /* old format: server.devices[] with the transport on server */
        const json_t *server = json_object_get(cfg, "server");
        slaves = json_object_get(server, "devices");
        base = "server.devices";
        if (slaves && json_is_array(slaves)) {
            size_t i;
            const json_t *d;
            json_array_foreach(slaves, i, d) {
                /* the connection keys of server apply to every device that lacks them */
                static const char *keys[] = {"host",         "port",           "type",      "method",
                                             "timeout",      "byteOrder",      "wordOrder", "retries",
                                             "retryOnEmpty", "retryOnInvalid", "baudrate",  "repack"};
                json_t *merged = json_deep_copy(d);
                if (!json_is_object(merged)) {
                    json_decref(merged);
                    return tbgw_err_set(err, TBGW_EINVAL, "%s[%zu]: expected an object", base, i);
                }
                for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                    if (!json_object_get(merged, keys[k]) && json_object_get(server, keys[k]))
                        json_object_set(merged, keys[k], json_object_get(server, keys[k]));
                if (!json_object_get(merged, "pollPeriod") && json_object_get(merged, "timeseriesPollPeriod"))
                    json_object_set(merged, "pollPeriod", json_object_get(merged, "timeseriesPollPeriod"));
                char p[64];
                snprintf(p, sizeof p, "%s[%zu]", base, i);
                int rc = mbc_slave_add(m, merged, p, err);
                json_decref(merged);
                if (rc < 0) return rc;
            }
            slaves = NULL;
        }
    } else if (slaves && !json_is_array(slaves)) {
        return tbgw_err_set(err, TBGW_EINVAL, "master.slaves: expected a list");
    }
    size_t i;
    const json_t *s;
    if (slaves && reserve_slaves(m, json_array_size(slaves) + 1) < 0) /* + the slave section's own */
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    if (slaves) json_array_foreach(slaves, i, s) {
            char p[64];
            snprintf(p, sizeof p, "%s[%zu]", base, i);
            if (!json_is_object(s)) return tbgw_err_set(err, TBGW_EINVAL, "%s: expected an object", p);
            if (mbc_slave_add(m, s, p, err) < 0) return TBGW_EINVAL;
        }
    const json_t *sec = json_object_get(cfg, "slave");
    if (sec && !json_is_null(sec)) {
        if (!json_is_object(sec)) return tbgw_err_set(err, TBGW_EINVAL, "slave: expected an object");
        if (mbc_server_parse(m, sec, err) < 0) return TBGW_EINVAL;
    }
    return 0;
}

static void free_writes(mbc_write *w, size_t n) {
    for (size_t i = 0; i < n; i++) mbc_write_clear(&w[i]);
    free(w);
}

void mbc_config_free(mbc *m) {
    for (size_t i = 0; i < m->n_slaves; i++) {
        mbc_slave *sl = &m->slaves[i];
        for (size_t j = 0; j < sl->n_points; j++) {
            if (!sl->key_pool) free(sl->points[j].key);
            free(sl->points[j].rs);
        }
        mbc_endpoint_clear(&sl->ep);
        free(sl->points);
        free(sl->key_pool);
        free(sl->blocks);
        free(sl->block_data);
        free_writes(sl->attr_updates, sl->n_attr_updates);
        free_writes(sl->rpcs, sl->n_rpcs);
        free(sl->device_name);
        free(sl->device_type);
        tbgw_custom_conv_free(sl->uplink);
    }
    free(m->slaves);
    m->slaves = NULL;
    m->n_slaves = m->cap_slaves = 0;
    tbgw_hmap_free(&m->specs, spec_free);
}
