/* kill -9 at storage level: a child process appends, syncs, peeks and commits as the core would,
 * and is killed with SIGKILL at a random moment; the storage is reopened and checked:
 *  - every record whose append returned (file) / that a sync covered (sqlite) is present;
 *  - records are in order without gaps;
 *  - the oldest record present follows the last pack whose commit returned, or the pack whose
 *    commit was under way (at most that one pack is delivered twice).
 * Several rounds per storage and fsync policy; each round continues on the previous round's data.
 * TBGW_CRASH_SEED=<n> repeats a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "storage_contract.h"

#define ROUNDS   6
#define REC_SIZE 40

typedef struct shared {
    int64_t acked;      /* highest record index that must survive */
    int64_t appended;   /* highest record index whose append returned */
    int64_t committed;  /* highest record index whose commit returned */
    int64_t committing; /* highest record index of the pack being committed */
} shared;

static shared *g_sh;
static unsigned g_seed;

static void put(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static int64_t get(int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* The child: never returns. sync_acks = records count as safe only once a sync covered them. */
static void child(const sfx *f, const char *cfg, int64_t next, int sync_acks) {
    json_t *c = sfx_cfg(f, cfg);
    tbgw_storage *s = NULL;
    tbgw_err err;
    if (tbgw_storage_open(c, NULL, &s, &err) != 0) {
        fprintf(stderr, "child open: %s\n", err.msg);
        _exit(3);
    }
    uint8_t buf[REC_SIZE + 32];
    for (int64_t i = next;; i++) {
        size_t len = mkrec(buf, (uint64_t)i, REC_SIZE);
        if (s->ops->append(s, buf, len) != 0) _exit(4);
        put(&g_sh->appended, i);
        if (!sync_acks) put(&g_sh->acked, i);
        if (i % 64 == 63) {
            if (s->ops->sync(s) != 0) _exit(5);
            put(&g_sh->acked, i);
        }
        if (i % 256 == 255) {
            tbgw_pack p;
            if (s->ops->peek(s, 100, &p) != 0) _exit(6);
            if (!p.n) continue;
            long long first = rec_index(p.recs[0].data, p.recs[0].len);
            long long last = rec_index(p.recs[p.n - 1].data, p.recs[p.n - 1].len);
            if (first < 0 || last != first + (long long)p.n - 1) _exit(7);
            put(&g_sh->committing, last);
            if (s->ops->commit(s, &p) != 0) _exit(8);
            put(&g_sh->committed, last);
            if (sync_acks) put(&g_sh->acked, i); /* a commit makes the appends durable as well */
            tbgw_pack_free(&p);
        }
    }
}

static void run_rounds(const sfx *f, const char *cfg, int sync_acks) {
    int64_t next = 0, first_prev = 0, last_present = -1;
    long long *idx = NULL;
    size_t cap = 0;
    for (int round = 0; round < ROUNDS; round++) {
        put(&g_sh->acked, last_present); /* what the previous check found must stay */
        put(&g_sh->appended, next - 1);
        put(&g_sh->committed, first_prev - 1);
        put(&g_sh->committing, first_prev - 1);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) child(f, cfg, next, sync_acks);
        usleep((useconds_t)(10000 + rand_r(&g_seed) % 70000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) fprintf(stderr, "child exited with %d\n", WEXITSTATUS(status));
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        int64_t acked = get(&g_sh->acked), appended = get(&g_sh->appended);
        int64_t committed = get(&g_sh->committed), committing = get(&g_sh->committing);

        tbgw_storage *s = sfx_open(f, cfg);
        tbgw_storage_stats st;
        s->ops->stats(s, &st);
        if (st.records + 1024 > cap) {
            cap = (size_t)st.records + 1024;
            idx = realloc(idx, cap * sizeof *idx);
            assert_non_null(idx);
        }
        size_t n = drain_indexes(s, idx, cap);
        assert_int_equal(n, st.records);
        s->ops->close(s);
        fprintf(
            stderr,
            "  round %d: appended %lld, acked %lld, committed %lld (committing %lld); present %lld..%lld\n",
            round, (long long)appended, (long long)acked, (long long)committed, (long long)committing,
            n ? idx[0] : -1, n ? idx[n - 1] : -1);
        for (size_t k = 0; k < n; k++) assert_int_equal(idx[k], idx[0] + (long long)k); /* in order, no gap */
        if (n == 0) {
            assert_true(acked <= committing); /* everything acknowledged was committed */
            next = appended + 2;
            first_prev = next;
            last_present = -1;
            continue;
        }
        int64_t first = idx[0], last = idx[n - 1];
        assert_true(last >= acked);        /* nothing acknowledged is lost */
        assert_true(last <= appended + 1); /* nothing invented (the append under way may be there) */
        assert_true(first == committed + 1 || first == committing + 1);
        next = last + 1;
        first_prev = first;
        last_present = last;
    }
    free(idx);
}

static const sfx file_fx = {.type = "file", .durable = 1, .path_key = "data_folder_path"};
static const sfx sqlite_fx = {.type = "sqlite", .durable = 1, .path_key = "data_file_path"};

static int setup_file(void **state) {
    return sfx_setup(state, &file_fx);
}

static int setup_sqlite(void **state) {
    return sfx_setup(state, &sqlite_fx);
}

static void crash_file_interval(void **state) {
    run_rounds(*state, "{\"max_records_per_file\": 500, \"max_file_count\": 100000}", 0);
}

static void crash_file_always(void **state) {
    run_rounds(*state, "{\"max_records_per_file\": 500, \"max_file_count\": 100000, \"fsync\": \"always\"}",
               0);
}

static void crash_sqlite_interval(void **state) {
    run_rounds(*state, "{\"fsync\": \"interval\"}", 1);
}

static void crash_sqlite_always(void **state) {
    run_rounds(*state, "{\"fsync\": \"always\"}", 1);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const char *e = getenv("TBGW_CRASH_SEED");
    g_seed = e ? (unsigned)strtoul(e, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "crash test seed %u (TBGW_CRASH_SEED to repeat)\n", g_seed);
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(crash_file_interval, setup_file, sfx_teardown),
        cmocka_unit_test_setup_teardown(crash_file_always, setup_file, sfx_teardown),
        cmocka_unit_test_setup_teardown(crash_sqlite_interval, setup_sqlite, sfx_teardown),
        cmocka_unit_test_setup_teardown(crash_sqlite_always, setup_sqlite, sfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
