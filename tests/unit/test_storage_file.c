/* File storage: the shared contract plus corruption, truncation, rotation and commit pointer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage_contract.h"

static const sfx file_fx = {
    .type = "file",
    .durable = 1,
    .path_key = "data_folder_path",
    .cap_cfg = "{\"max_file_count\": 4, \"max_records_per_file\": 25}",
    .cap_rec_size = 40,
    .cap_max = 100,
};

/* ---- file-specific helpers ---- */

/* Paths of the segment files, oldest first; returns the count. */
static size_t seg_files(const sfx *f, char paths[][400], size_t max) {
    struct dirent **list;
    int n = scandir(f->dir, &list, NULL, alphasort);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        size_t l = strlen(nm);
        if (strncmp(nm, "tbgw-seg-", 9) == 0 && l > 4 && strcmp(nm + l - 4, ".dat") == 0 && k < max)
            snprintf(paths[k++], 400, "%s/%s", f->dir, nm);
        free(list[i]);
    }
    free(list);
    return k;
}

static long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void append_bytes(const char *p, const void *d, size_t n) {
    FILE *fp = fopen(p, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(d, 1, n, fp), n);
    fclose(fp);
}

static void flip_byte(const char *p, long off) {
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    fseek(fp, off, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, off, SEEK_SET);
    fputc(c ^ 0x5a, fp);
    fclose(fp);
}

static const char *small_files = "{\"max_records_per_file\": 10, \"max_file_count\": 100}";

/* ---- file-specific tests ---- */

/* A torn frame and garbage after the last record are cut at start-up; all intact records stay. */
static void file_torn_tail(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 50, 30);
    s->ops->close(s);
    char segs[8][400];
    assert_int_equal(seg_files(f, segs, 8), 1);
    long good = fsize(segs[0]);
    uint8_t torn[] = {100, 0, 0,   0,   1,  2,
                      3,   4, 'x', 'y', 'z'}; /* header of a 100-byte record, 3 bytes of it */
    append_bytes(segs[0], torn, sizeof torn);
    s = sfx_open(f, NULL);
    assert_int_equal(fsize(segs[0]), good);
    long long idx[64];
    size_t n = drain_indexes(s, idx, 64);
    assert_int_equal(n, 50);
    for (size_t i = 0; i < n; i++) assert_int_equal(idx[i], (long long)i);
    append_n(s, 50, 1, 30); /* appends continue after the cut */
    s->ops->close(s);
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    append_bytes(segs[0], junk, sizeof junk);
    s = sfx_open(f, NULL);
    n = drain_indexes(s, idx, 64);
    assert_int_equal(n, 51);
    assert_int_equal(idx[50], 50);
    s->ops->close(s);
}

/* A file cut in the middle of its last record loses exactly that record. */
static void file_truncated(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 20, 100);
    s->ops->close(s);
    char segs[8][400];
    assert_int_equal(seg_files(f, segs, 8), 1);
    assert_int_equal(truncate(segs[0], fsize(segs[0]) - 3), 0);
    s = sfx_open(f, NULL);
    long long idx[32];
    assert_int_equal(drain_indexes(s, idx, 32), 19);
    assert_int_equal(idx[18], 18);
    s->ops->close(s);
    /* cut inside the frame header of the 10th record */
    assert_int_equal(truncate(segs[0], 32 + 9 * 108 + 5), 0);
    s = sfx_open(f, NULL);
    assert_int_equal(drain_indexes(s, idx, 32), 9);
    s->ops->close(s);
}

/* A damaged record in the middle: earlier records and later files are kept, the loss is counted,
 * and a pack never spans the gap. */
static void file_corrupt_middle(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, small_files);
    append_n(s, 0, 30, 40);
    s->ops->close(s);
    char segs[8][400];
    assert_int_equal(seg_files(f, segs, 8), 3);
    flip_byte(segs[1], 32 + 5 * 48 + 20); /* payload of record 15 */
    s = sfx_open(f, small_files);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 25);
    assert_int_equal(st.dropped, 5);
    tbgw_pack p, q;
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 0, 15);
    assert_int_equal(s->ops->peek(s, 1000, &q), 0);
    expect_pack(&q, 20, 10);
    assert_int_equal(q.first_seq, p.last_seq + 6);
    assert_int_equal(s->ops->commit(s, &p), 0);
    assert_int_equal(s->ops->commit(s, &q), 0);
    assert_int_equal(stat_records(s), 0);
    tbgw_pack_free(&p);
    tbgw_pack_free(&q);
    s->ops->close(s);
}

/* Damage found while reading (after the start-up scan) is cut the same way. */
static void file_corrupt_while_running(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, small_files);
    append_n(s, 0, 30, 40);
    char segs[8][400];
    assert_int_equal(seg_files(f, segs, 8), 3);
    flip_byte(segs[0], 32 + 3 * 48 + 20); /* record 3 */
    tbgw_pack p, q;
    assert_int_equal(s->ops->peek(s, 1000, &p), 0);
    expect_pack(&p, 0, 3);
    assert_int_equal(s->ops->peek(s, 1000, &q), 0);
    expect_pack(&q, 10, 20);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.dropped, 7);
    tbgw_pack_free(&p);
    tbgw_pack_free(&q);
    s->ops->close(s);
}

/* Torn segment creation (file shorter than its header) and a damaged header. */
static void file_bad_headers(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, small_files);
    append_n(s, 0, 30, 40);
    s->ops->close(s);
    char segs[8][400], torn[450];
    assert_int_equal(seg_files(f, segs, 8), 3);
    snprintf(torn, sizeof torn, "%s/tbgw-seg-%020d.dat", f->dir, 31);
    append_bytes(torn, "TBGWSE", 6);
    flip_byte(segs[1], 3); /* header magic of the second file */
    s = sfx_open(f, small_files);
    assert_int_equal(fsize(torn), -1); /* removed */
    char aside[450];
    snprintf(aside, sizeof aside, "%s.corrupt", segs[1]);
    assert_true(fsize(aside) > 0); /* moved aside for inspection */
    long long idx[40];
    size_t n = drain_indexes(s, idx, 40);
    assert_int_equal(n, 20);
    for (size_t i = 0; i < 10; i++) assert_int_equal(idx[i], (long long)i);
    for (size_t i = 10; i < 20; i++) assert_int_equal(idx[i], (long long)i + 10);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.dropped, 10);
    s->ops->close(s);
}

/* The commit pointer survives restarts; a damaged newest slot falls back to the previous pointer
 * (a pack re-sent, nothing lost); both damaged replays everything still on disk. */
static void file_commit_pointer(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 20, 30);
    tbgw_pack p;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ops->peek(s, 4, &p), 0);
        assert_int_equal(s->ops->commit(s, &p), 0);
        tbgw_pack_free(&p);
    }
    s->ops->close(s);
    s = sfx_open(f, NULL);
    assert_int_equal(stat_records(s), 8);
    s->ops->close(s);
    char state_path[400];
    snprintf(state_path, sizeof state_path, "%s/tbgw-state.dat", f->dir);
    /* generations 1,2,3 were written alternately to slots 1,0,1: damage slot 1 (generation 3) */
    flip_byte(state_path, 512 + 17);
    s = sfx_open(f, NULL);
    assert_int_equal(stat_records(s), 12);
    long long idx[32];
    assert_int_equal(drain_indexes(s, idx, 32), 12);
    assert_int_equal(idx[0], 8);
    s->ops->close(s);
    flip_byte(state_path, 17);
    s = sfx_open(f, NULL);
    assert_int_equal(drain_indexes(s, idx, 32), 20);
    assert_int_equal(idx[0], 0);
    s->ops->close(s);
}

/* Files go once all their records are committed, not before (reference bug §3.2: a backlog over
 * several files with max_read_records_count < max_records_per_file lost the rest of each file). */
static void file_rotation_backlog(void **state) {
    sfx *f = *state;
    const char *cfg = "{\"max_records_per_file\": 10, \"max_file_count\": 10, \"max_read_records_count\": 3}";
    tbgw_storage *s = sfx_open(f, cfg);
    append_n(s, 0, 45, 30);
    char segs[16][400];
    assert_int_equal(seg_files(f, segs, 16), 5);
    long long next = 0;
    tbgw_pack p;
    for (;;) {
        assert_int_equal(s->ops->peek(s, 1000, &p), 0);
        if (!p.n) break;
        assert_true(p.n <= 3);
        for (size_t i = 0; i < p.n; i++) assert_int_equal(rec_index(p.recs[i].data, p.recs[i].len), next++);
        assert_int_equal(s->ops->commit(s, &p), 0);
        tbgw_pack_free(&p);
        if (next == 12) {
            assert_int_equal(seg_files(f, segs, 16), 4); /* first file fully committed: gone */
            s->ops->close(s);
            s = sfx_open(f, cfg);
        }
    }
    assert_int_equal(next, 45);
    assert_int_equal(seg_files(f, segs, 16), 1); /* the current file stays */
    s->ops->close(s);
}

/* max_file_bytes starts a new file early; disk bytes are reported. */
static void file_bytes_bound(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, "{\"max_file_bytes\": 4096, \"max_file_count\": 3}");
    append_n(s, 0, 100, 100); /* 108 bytes per frame: 37 per file */
    char segs[8][400];
    assert_int_equal(seg_files(f, segs, 8), 3);
    for (int i = 0; i < 3; i++) assert_true(fsize(segs[i]) <= 4096);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records + st.dropped, 100);
    assert_int_equal(st.disk_bytes, (uint64_t)(fsize(segs[0]) + fsize(segs[1]) + fsize(segs[2]) + 1024));
    assert_int_equal(st.bytes, st.records * 100);
    s->ops->close(s);
}

/* Bad values of the reference keys are rejected naming the key. */
static void file_bad_keys(void **state) {
    sfx *f = *state;
    const char *const bad[][2] = {
        {"{\"max_file_count\": 0}", "storage.max_file_count"},
        {"{\"max_records_per_file\": \"x\"}", "storage.max_records_per_file"},
        {"{\"max_read_records_count\": -1}", "storage.max_read_records_count"},
        {"{\"max_records_between_fsync\": 0}", "storage.max_records_between_fsync"},
        {"{\"data_folder_path\": 5}", "storage.data_folder_path"},
    };
    sfx_expect_refused(f, bad, sizeof bad / sizeof bad[0]);
}

/* A relative data_folder_path resolves against the config directory. */
static void file_relative_path(void **state) {
    sfx *f = *state;
    json_t *c = json_pack("{s:s, s:s}", "type", "file", "data_folder_path", "./data/");
    tbgw_storage *s = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_storage_open(c, f->dir, &s, &err), 0);
    append_n(s, 0, 1, 20);
    s->ops->close(s);
    json_decref(c);
    char p[400];
    snprintf(p, sizeof p, "%s/data/tbgw-seg-00000000000000000001.dat", f->dir);
    assert_int_equal(fsize(p), 32 + 8 + 20);
}

static int setup(void **state) {
    return sfx_setup(state, &file_fx);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const struct CMUnitTest tests[] = {
        DURABLE_CONTRACT_TESTS(setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_torn_tail, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_truncated, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_corrupt_middle, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_corrupt_while_running, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_bad_headers, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_commit_pointer, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_rotation_backlog, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_bytes_bound, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_bad_keys, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(file_relative_path, setup, sfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
