/* SQLite storage: the shared contract plus TTL, size bound, damaged database, path forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>

#include "storage_contract.h"

static const sfx sqlite_fx = {
    .type = "sqlite",
    .durable = 1,
    .path_key = "data_file_path",
    .cap_cfg = "{\"size_limit\": 1, \"max_db_amount\": 1}",
    .cap_rec_size = 1000,
    .cap_max = 1000000 / 1032,
};

static long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* TTL really deletes: records older than messages_ttl_in_days go at the next check and are
 * counted as dropped (0.00001 days = 864 ms, checked every 0.00001 h = 36 ms). */
static void sqlite_ttl(void **state) {
    sfx *f = *state;
    const char *cfg = "{\"messages_ttl_in_days\": 0.00001, \"messages_ttl_check_in_hours\": 0.00001}";
    tbgw_storage *s = sfx_open(f, cfg);
    append_n(s, 0, 5, 30);
    assert_int_equal(s->ops->sync(s), 0);
    assert_int_equal(stat_records(s), 5);
    usleep(1000 * 1000);
    append_n(s, 5, 1, 30);
    assert_int_equal(s->ops->sync(s), 0);
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.dropped, 5);
    tbgw_pack p;
    assert_int_equal(s->ops->peek(s, 100, &p), 0);
    expect_pack(&p, 5, 1);
    tbgw_pack_free(&p);
    s->ops->close(s);
    /* also applied at start-up */
    usleep(1000 * 1000);
    s = sfx_open(f, cfg);
    assert_int_equal(stat_records(s), 0);
    s->ops->close(s);
}

/* Appends become durable at sync(), at commit() and every writing_batch_size appends: a process
 * that dies without closing keeps exactly those. */
static void sqlite_group_commit(void **state) {
    sfx *f = *state;
    const char *cfg = "{\"writing_batch_size\": 50}";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tbgw_storage *s = sfx_open(f, cfg);
        append_n(s, 0, 10, 30);
        s->ops->sync(s);         /* 10 durable */
        append_n(s, 10, 60, 30); /* 50 more committed by the batch size, 20 pending */
        _exit(0);                /* no close: the open transaction is lost */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tbgw_storage *s = sfx_open(f, cfg);
    long long idx[100];
    size_t n = drain_indexes(s, idx, 100);
    assert_int_equal(n, 60);
    for (size_t i = 0; i < n; i++) assert_int_equal(idx[i], (long long)i);
    s->ops->close(s);
}

/* A damaged database is moved aside at start-up; the storage starts, keeps what is readable. */
static void sqlite_corrupt(void **state) {
    sfx *f = *state;
    tbgw_storage *s = sfx_open(f, NULL);
    append_n(s, 0, 3000, 200);
    s->ops->close(s);
    char db[400];
    snprintf(db, sizeof db, "%s/data.db", f->dir);
    long full = fsize(db);
    assert_true(full > 600000);
    assert_int_equal(truncate(db, full / 2), 0); /* truncated file */
    s = sfx_open(f, NULL);
    long long *idx = calloc(3000, sizeof *idx);
    size_t n = drain_indexes(s, idx, 3000);
    assert_true(n < 3000);
    assert_true(n > 1000); /* the rows in the pages still present are kept */
    for (size_t i = 0; i < n; i++) assert_int_equal(idx[i], (long long)i); /* intact and in order */
    append_n(s, 5000, 1, 200);
    s->ops->close(s);
    /* garbage over the header: nothing readable, still starts */
    FILE *fp = fopen(db, "r+b");
    assert_non_null(fp);
    for (int i = 0; i < 100; i++) fputc(0xA5, fp);
    fclose(fp);
    s = sfx_open(f, NULL);
    assert_int_equal(drain_indexes(s, idx, 3000), 0);
    append_n(s, 6000, 1, 200);
    assert_int_equal(drain_indexes(s, idx, 3000), 1);
    s->ops->close(s);
    int aside = 0;
    struct dirent **list;
    int k = scandir(f->dir, &list, NULL, alphasort);
    for (int i = 0; i < k; i++) {
        if (strstr(list[i]->d_name, "data.db.corrupt-")) aside++;
        free(list[i]);
    }
    free(list);
    assert_int_equal(aside, 2);
    free(idx);
}

/* data_file_path naming a file uses that file; a directory (trailing slash) gets data.db. */
static void sqlite_path_forms(void **state) {
    sfx *f = *state;
    char extra[600], p[400];
    snprintf(extra, sizeof extra, "{\"data_file_path\": \"%s/sub/my.db\"}", f->dir);
    tbgw_storage *s = sfx_open(f, extra);
    append_n(s, 0, 1, 20);
    s->ops->close(s);
    snprintf(p, sizeof p, "%s/sub/my.db", f->dir);
    assert_true(fsize(p) > 0);
    json_t *c = json_pack("{s:s, s:s}", "type", "sqlite", "data_file_path", "./rel/");
    tbgw_err err = {0};
    assert_int_equal(tbgw_storage_open(c, f->dir, &s, &err), 0);
    s->ops->close(s);
    json_decref(c);
    snprintf(p, sizeof p, "%s/rel/data.db", f->dir);
    assert_true(fsize(p) > 0);
}

static void sqlite_bad_keys(void **state) {
    sfx *f = *state;
    const char *const bad[][2] = {
        {"{\"size_limit\": 0}", "storage.size_limit"},
        {"{\"size_limit\": 0.5}", "storage.size_limit: expected at least 1"},
        {"{\"messages_ttl_in_days\": -1}", "storage.messages_ttl_in_days"},
        {"{\"messages_ttl_check_in_hours\": \"1\"}", "storage.messages_ttl_check_in_hours"},
        {"{\"writing_batch_size\": 0}", "storage.writing_batch_size"},
        {"{\"max_db_amount\": 1.5}", "storage.max_db_amount"},
    };
    sfx_expect_refused(f, bad, sizeof bad / sizeof bad[0]);
}

static int setup(void **state) {
    return sfx_setup(state, &sqlite_fx);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const struct CMUnitTest tests[] = {
        DURABLE_CONTRACT_TESTS(setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(sqlite_ttl, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(sqlite_group_commit, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(sqlite_corrupt, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(sqlite_path_forms, setup, sfx_teardown),
        cmocka_unit_test_setup_teardown(sqlite_bad_keys, setup, sfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
