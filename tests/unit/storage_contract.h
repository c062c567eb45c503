/* The storage contract (src/storage/storage.h), checked the same way for memory, file and sqlite.
 * Included by tests/unit/test_storage_<type>.c, which provide the fixture (type, base config,
 * capacity settings). Needs <stdarg.h>, <stddef.h>, <setjmp.h>, <cmocka.h> before it. */
#ifndef TBGW_TEST_STORAGE_CONTRACT_H
#define TBGW_TEST_STORAGE_CONTRACT_H

#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "util/log_config.h"

typedef struct sfx {
    const char *type;
    int durable;          /* survives close/open */
    const char *path_key; /* config key of the path ("data_folder_path", "data_file_path") */
    const char *cap_cfg;  /* extra keys giving a small bound */
    size_t cap_rec_size;  /* record size used with cap_cfg */
    size_t cap_max;       /* upper bound of records held with cap_cfg */
    char dir[256];
} sfx;

/* ---- helpers ---- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static __attribute__((unused)) void rm_rf(const char *dir) {
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int sfx_setup(void **state, const sfx *proto) {
    sfx *f = malloc(sizeof *f);
    if (!f) return -1;
    *f = *proto;
    snprintf(f->dir, sizeof f->dir, "/tmp/tbgw-st-%s-XXXXXX", f->type);
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static __attribute__((unused)) int sfx_teardown(void **state) {
    sfx *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* Base config for the fixture plus extra JSON keys (may be NULL). */
static json_t *sfx_cfg(const sfx *f, const char *extra) {
    json_t *c = json_pack("{s:s}", "type", f->type);
    if (f->path_key) {
        char p[300];
        snprintf(p, sizeof p, "%s/", f->dir);
        json_object_set_new(c, f->path_key, json_string(p));
    }
    if (extra) {
        json_error_t je;
        json_t *x = json_loads(extra, 0, &je);
        assert_non_null(x);
        json_object_update(c, x);
        json_decref(x);
    }
    return c;
}

static tbgw_storage *sfx_open(const sfx *f, const char *extra) {
    json_t *c = sfx_cfg(f, extra);
    tbgw_storage *s = NULL;
    tbgw_err err = {0};
    int rc = tbgw_storage_open(c, NULL, &s, &err);
    if (rc) fprintf(stderr, "open failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    json_decref(c);
    return s;
}

/* Record i: "rec:<8 digits>:" followed by a pattern depending on i, size bytes in all (>= 13). */
static size_t mkrec(uint8_t *buf, uint64_t i, size_t size) {
    int n = snprintf((char *)buf, size + 1, "rec:%08llu:", (unsigned long long)i);
    size_t len = size < 13 ? (size_t)n : size;
    for (size_t k = (size_t)n; k < len; k++) buf[k] = (uint8_t)((i * 31 + k * 7) & 0xff);
    return len;
}

/* Index of a record made by mkrec, or -1 if its bytes are not exactly what mkrec wrote. */
static long long rec_index(const uint8_t *d, size_t len) {
    if (len < 13 || memcmp(d, "rec:", 4) != 0 || d[12] != ':') return -1;
    long long i = 0;
    for (int k = 4; k < 12; k++) {
        if (d[k] < '0' || d[k] > '9') return -1;
        i = i * 10 + (d[k] - '0');
    }
    for (size_t k = 13; k < len; k++)
        if (d[k] != (uint8_t)(((uint64_t)i * 31 + k * 7) & 0xff)) return -1;
    return i;
}

static __attribute__((unused)) void append_n(tbgw_storage *s, uint64_t from, uint64_t n, size_t size) {
    uint8_t *buf = malloc(size + 32);
    assert_non_null(buf);
    for (uint64_t i = from; i < from + n; i++) {
        size_t len = mkrec(buf, i, size);
        assert_int_equal(s->ops->append(s, buf, len), 0);
    }
    free(buf);
}

/* Asserts that pack p holds records first..first+n-1 (mkrec indexes). */
static __attribute__((unused)) void expect_pack(const tbgw_pack *p, long long first, size_t n) {
    assert_int_equal(p->n, n);
    if (n) assert_int_equal(p->last_seq - p->first_seq + 1, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rec_index(p->recs[i].data, p->recs[i].len), first + (long long)i);
}

static __attribute__((unused)) uint64_t stat_records(tbgw_storage *s) {
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    return st.records;
}

/* Reads every pending record (without committing) into idx[]; returns the count. */
static __attribute__((unused)) size_t drain_indexes(tbgw_storage *s, long long *idx, size_t max) {
    size_t n = 0;
    tbgw_pack p;
    for (;;) {
        assert_int_equal(s->ops->peek(s, 1000, &p), 0);
        if (!p.n) break;
        for (size_t i = 0; i < p.n && n < max; i++) idx[n++] = rec_index(p.recs[i].data, p.recs[i].len);
        tbgw_pack_free(&p);
    }
    s->ops->rewind(s);
    return n;
}

/* ---- contract tests ---- */

static __attribute__((unused)) void contract_append_peek_commit(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 10, 40);
    tbgw_pack a, b, c;
    assert_int_equal(s->ops->peek(s, 4, &a), 0);
    expect_pack(&a, 0, 4);
    assert_int_equal(s->ops->peek(s, 4, &b), 0); /* a second pack while the first is out */
    expect_pack(&b, 4, 4);
    assert_int_equal(b.first_seq, a.last_seq + 1);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 10);
    assert_int_equal(st.appended, 10);
    assert_int_equal(st.bytes, 400);
    assert_int_equal(s->ops->commit(s, &a), 0);
    assert_int_equal(stat_records(s), 6);
    assert_int_equal(s->ops->commit(s, &b), 0);
    assert_int_equal(stat_records(s), 2);
    assert_int_equal(s->ops->peek(s, 100, &c), 0);
    expect_pack(&c, 8, 2);
    assert_int_equal(s->ops->commit(s, &c), 0);
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.committed, 10);
    assert_int_equal(st.dropped, 0);
    tbgw_pack_free(&a);
    tbgw_pack_free(&b);
    tbgw_pack_free(&c);
    assert_int_equal(s->ops->peek(s, 100, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(s->ops->sync(s), 0);
    s->ops->close(s);
}

static __attribute__((unused)) void contract_rewind(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 6, 20);
    tbgw_pack p1, p2, p3, p4;
    assert_int_equal(s->ops->peek(s, 2, &p1), 0);
    assert_int_equal(s->ops->peek(s, 2, &p2), 0);
    assert_int_equal(s->ops->commit(s, &p1), 0);
    s->ops->rewind(s); /* p2 is forgotten: the next peek starts at the oldest uncommitted */
    assert_int_equal(s->ops->peek(s, 10, &p3), 0);
    expect_pack(&p3, 2, 4);
    assert_int_equal(p3.first_seq, p2.first_seq);
    assert_int_equal(s->ops->commit(s, &p2), 0); /* a late acknowledgement of the old pack */
    assert_int_equal(stat_records(s), 2);
    s->ops->rewind(s);
    assert_int_equal(s->ops->peek(s, 10, &p4), 0);
    expect_pack(&p4, 4, 2);
    assert_int_equal(s->ops->commit(s, &p4), 0);
    assert_int_equal(stat_records(s), 0);
    tbgw_pack_free(&p4);
    s->ops->rewind(s);
    assert_int_equal(s->ops->peek(s, 10, &p4), 0);
    assert_int_equal(p4.n, 0);
    tbgw_pack_free(&p1);
    tbgw_pack_free(&p2);
    tbgw_pack_free(&p3);
    s->ops->close(s);
}

static __attribute__((unused)) void contract_seq_and_sizes(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    static const uint8_t bin[] = {0, 1, 0, 255, '\n', 0};
    size_t big = 1u << 20;
    uint8_t *bigbuf = malloc(big);
    assert_non_null(bigbuf);
    for (size_t i = 0; i < big; i++) bigbuf[i] = (uint8_t)(i * 13);
    assert_int_equal(s->ops->append(s, "", 0), 0);
    assert_int_equal(s->ops->append(s, bin, sizeof bin), 0);
    assert_int_equal(s->ops->append(s, bigbuf, big), 0);
    tbgw_pack p[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ops->peek(s, 1, &p[i]), 0);
        assert_int_equal(p[i].n, 1);
        assert_int_equal(p[i].first_seq, p[i].last_seq);
        if (i) assert_int_equal(p[i].first_seq, p[i - 1].first_seq + 1);
    }
    assert_int_equal(p[0].recs[0].len, 0);
    assert_int_equal(p[1].recs[0].len, sizeof bin);
    assert_memory_equal(p[1].recs[0].data, bin, sizeof bin);
    assert_int_equal(p[2].recs[0].len, big);
    assert_memory_equal(p[2].recs[0].data, bigbuf, big);
    assert_int_equal(s->ops->commit(s, &p[2]), 0); /* commits everything up to its last_seq */
    assert_int_equal(stat_records(s), 0);
    for (int i = 0; i < 3; i++) tbgw_pack_free(&p[i]);
    free(bigbuf);
    s->ops->close(s);
}

/* Drop-oldest bound: the newest records stay, in order; every drop is counted. */
static __attribute__((unused)) void contract_cap_drop_oldest(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, f->cap_cfg);
    size_t n = f->cap_max * 3;
    append_n(s, 0, n, f->cap_rec_size);
    assert_int_equal(s->ops->sync(s), 0);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_true(st.records <= f->cap_max);
    assert_true(st.records >= f->cap_max / 2);
    assert_true(st.dropped > 0);
    assert_int_equal(st.dropped + st.records, n);
    long long *idx = calloc(n, sizeof *idx);
    size_t got = drain_indexes(s, idx, n);
    assert_int_equal(got, st.records);
    for (size_t i = 0; i < got; i++) assert_int_equal(idx[i], (long long)(n - got + i));
    free(idx);
    s->ops->close(s);
}

/* Refuse bound: new records are refused (counted) until committed ones make room again. */
static __attribute__((unused)) void contract_cap_refuse(void **state) {
    sfx *f = *state;
    char extra[512];
    snprintf(extra, sizeof extra, "%.*s, \"full_policy\": \"refuse\"}", (int)strlen(f->cap_cfg) - 1,
             f->cap_cfg);
    tbgw_storage *s = sfx_open(f, extra);
    uint8_t *buf = malloc(f->cap_rec_size + 32);
    size_t accepted = 0, refused = 0;
    for (size_t i = 0; i < f->cap_max * 2; i++) {
        size_t len = mkrec(buf, i, f->cap_rec_size);
        int rc = s->ops->append(s, buf, len);
        if (rc == 0) {
            assert_int_equal(refused, 0); /* nothing accepted after the first refusal */
            accepted++;
        } else {
            assert_int_equal(rc, TBGW_EFULL);
            refused++;
        }
    }
    assert_true(refused > 0);
    assert_true(accepted <= f->cap_max);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records, accepted);
    assert_int_equal(st.dropped, refused);
    /* the oldest stay; delivering them makes room again */
    tbgw_pack p;
    size_t seen = 0;
    for (;;) {
        assert_int_equal(s->ops->peek(s, 1000, &p), 0);
        if (!p.n) break;
        for (size_t i = 0; i < p.n; i++)
            assert_int_equal(rec_index(p.recs[i].data, p.recs[i].len), (long long)seen++);
        assert_int_equal(s->ops->commit(s, &p), 0);
        tbgw_pack_free(&p);
    }
    assert_int_equal(seen, accepted);
    size_t len = mkrec(buf, 999999, f->cap_rec_size);
    assert_int_equal(s->ops->append(s, buf, len), 0);
    assert_int_equal(s->ops->peek(s, 10, &p), 0);
    expect_pack(&p, 999999, 1);
    tbgw_pack_free(&p);
    free(buf);
    s->ops->close(s);
}

/* Opening with each of the `n` configs bad[i][0] fails, and the error names bad[i][1]. */
static __attribute__((unused)) void sfx_expect_refused(const sfx *f, const char *const (*bad)[2], size_t n) {
    for (size_t i = 0; i < n; i++) {
        json_t *c = sfx_cfg(f, bad[i][0]);
        tbgw_storage *s = NULL;
        tbgw_err err = {0};
        assert_int_not_equal(tbgw_storage_open(c, NULL, &s, &err), 0);
        assert_null(s);
        if (!strstr(err.msg, bad[i][1]))
            fail_msg("config %s: error \"%s\" does not name %s", bad[i][0], err.msg, bad[i][1]);
        json_decref(c);
    }
}

static __attribute__((unused)) void contract_bad_config(void **state) {
    sfx *f = *state;
    const char *const bad[][2] = {
        {"{\"full_policy\": \"sometimes\"}", "storage.full_policy"},
        {"{\"fsync\": \"sometimes\"}", "storage.fsync"},
        {"{\"fsync_interval_ms\": -5}", "storage.fsync_interval_ms"},
    };
    sfx_expect_refused(f, bad,
                       f->durable ? sizeof bad / sizeof bad[0] : 1); /* memory has no durability keys */
}

/* Durable storages: what was not committed survives close/open; seqs keep increasing. */
static __attribute__((unused)) void contract_reopen(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 100, 50);
    tbgw_pack p, q;
    assert_int_equal(s->ops->peek(s, 30, &p), 0);
    assert_int_equal(s->ops->commit(s, &p), 0);
    assert_int_equal(s->ops->peek(s, 10, &q), 0); /* outstanding, never acknowledged */
    uint64_t last = p.last_seq;
    tbgw_pack_free(&p);
    tbgw_pack_free(&q);
    s->ops->close(s); /* no sync: close makes everything durable */
    s = sfx_open(f, NULL);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 70);
    assert_true(st.disk_bytes > 70 * 50);
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 30, 70);
    assert_int_equal(p.first_seq, last + 1);
    append_n(s, 100, 1, 50);
    assert_int_equal(s->ops->peek(s, 1000, &q), 0);
    expect_pack(&q, 100, 1);
    assert_int_equal(q.first_seq, p.last_seq + 1);
    assert_int_equal(s->ops->commit(s, &p), 0);
    tbgw_pack_free(&p);
    tbgw_pack_free(&q);
    s->ops->close(s);
    s = sfx_open(f, NULL);
    assert_int_equal(stat_records(s), 1);
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 100, 1);
    tbgw_pack_free(&p);
    s->ops->close(s);
}

/* Every fsync policy accepts, syncs and reopens. */
static __attribute__((unused)) void contract_fsync_policies(void **state) {
    sfx *f = *state;
    const char *pol[] = {"{\"fsync\":\"always\"}", "{\"fsync\":\"never\"}",
                         "{\"fsync\":\"interval\",\"fsync_interval_ms\":1}"};
    for (int i = 0; i < 3; i++) {
        tbgw_storage *s = sfx_open(f, pol[i]);
        append_n(s, (uint64_t)i * 10, 10, 30);
        assert_int_equal(s->ops->sync(s), 0);
        usleep(2000);
        append_n(s, (uint64_t)i * 10 + 100, 1, 30);
        assert_int_equal(s->ops->sync(s), 0);
        tbgw_pack p;
        assert_int_equal(s->ops->peek(s, 1000, &p), 0);
        assert_int_equal(p.n, 11);
        assert_int_equal(s->ops->commit(s, &p), 0);
        tbgw_pack_free(&p);
        s->ops->close(s);
    }
}

/* The storage refuses a path it cannot create, naming the path and the user. */
static __attribute__((unused)) void contract_bad_path(void **state) {
    sfx *f = *state;
    char file[300], extra[700];
    snprintf(file, sizeof file, "%s/plainfile", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(extra, sizeof extra, "{\"%s\": \"%s/sub/\"}", f->path_key, file);
    json_t *c = sfx_cfg(f, extra);
    tbgw_storage *s = NULL;
    tbgw_err err = {0};
    assert_int_not_equal(tbgw_storage_open(c, NULL, &s, &err), 0);
    assert_non_null(strstr(err.msg, f->path_key));
    assert_non_null(strstr(err.msg, file));
    assert_true(strstr(err.msg, "user") || strstr(err.msg, "uid"));
    json_decref(c);
    if (geteuid() != 0) { /* root may write anywhere */
        char ro[300];
        snprintf(ro, sizeof ro, "%s/ro", f->dir);
        assert_int_equal(mkdir(ro, 0500), 0);
        snprintf(extra, sizeof extra, "{\"%s\": \"%s/\"}", f->path_key, ro);
        c = sfx_cfg(f, extra);
        assert_int_not_equal(tbgw_storage_open(c, NULL, &s, &err), 0);
        assert_non_null(strstr(err.msg, "not writable"));
        assert_non_null(strstr(err.msg, ro));
        json_decref(c);
    }
    /* a missing directory is created (like the reference) */
    snprintf(extra, sizeof extra, "{\"%s\": \"%s/a/b/c/\"}", f->path_key, f->dir);
    s = sfx_open(f, extra);
    append_n(s, 0, 1, 20);
    s->ops->close(s);
    char abc[300];
    snprintf(abc, sizeof abc, "%s/a/b/c", f->dir);
    struct stat stt;
    assert_int_equal(stat(abc, &stt), 0);
    assert_true(S_ISDIR(stt.st_mode));
}

/* A second process (or instance) may not use the same storage at once. */
static __attribute__((unused)) void contract_exclusive(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    json_t *c = sfx_cfg(f, NULL);
    tbgw_storage *t = NULL;
    tbgw_err err = {0};
    assert_int_not_equal(tbgw_storage_open(c, NULL, &t, &err), 0);
    assert_non_null(strstr(err.msg, "in use"));
    json_decref(c);
    s->ops->close(s);
    s = sfx_open(f, NULL);
    s->ops->close(s);
}

/* The reference's sample storage section (all keys of every type at once) is accepted. */
static __attribute__((unused)) void contract_reference_sample(void **state) {
    sfx *f = *state;
    char extra[1024];
    snprintf(extra, sizeof extra,
             "{\"read_records_count\": 100, \"max_records_count\": 100000, \"data_folder_path\": \"%s/\","
             " \"max_file_count\": 10, \"max_read_records_count\": 10, \"max_records_per_file\": 10000,"
             " \"data_file_path\": \"%s/\", \"messages_ttl_check_in_hours\": 1, \"messages_ttl_in_days\": 7}",
             f->dir, f->dir);
    tbgw_storage *s = sfx_open(f, extra);
    append_n(s, 0, 25, 30);
    tbgw_pack p;
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 0, f->durable ? 10 : 25); /* max_read_records_count caps the pack (file, sqlite) */
    tbgw_pack_free(&p);
    s->ops->close(s);
}

#define CONTRACT_TESTS(setup, teardown)                                                                      \
    cmocka_unit_test_setup_teardown(contract_append_peek_commit, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(contract_rewind, setup, teardown),                                   \
        cmocka_unit_test_setup_teardown(contract_seq_and_sizes, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(contract_cap_drop_oldest, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(contract_cap_refuse, setup, teardown),                               \
        cmocka_unit_test_setup_teardown(contract_bad_config, setup, teardown),                               \
        cmocka_unit_test_setup_teardown(contract_reference_sample, setup, teardown)

#define DURABLE_CONTRACT_TESTS(setup, teardown)                                                              \
    CONTRACT_TESTS(setup, teardown), cmocka_unit_test_setup_teardown(contract_reopen, setup, teardown),      \
        cmocka_unit_test_setup_teardown(contract_fsync_policies, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(contract_bad_path, setup, teardown),                                 \
        cmocka_unit_test_setup_teardown(contract_exclusive, setup, teardown)

#endif
