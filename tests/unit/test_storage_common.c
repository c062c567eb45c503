/* Shared storage helpers: durability keys, path resolution, the disk-use warning and the
 * rate-limited drop report (log lines captured through the log sink). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include "storage/common.h"
#include "storage/syncer.h"
#include "util/crc32.h"
#include "util/log_config.h"

static char g_lines[16][512];
static int g_nlines;

static void sink(void *ud, const tbgw_logger *lg, tbgw_level level, const char *line) {
    (void)ud;
    (void)lg;
    (void)level;
    if (g_nlines < 16) snprintf(g_lines[g_nlines++], sizeof g_lines[0], "%s", line);
}

static void crc32_known_values(void **state) {
    (void)state;
    assert_int_equal(tbgw_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(tbgw_crc32(0, "", 0), 0);
    /* split updates equal one pass, at any alignment */
    char buf[100];
    for (int i = 0; i < 100; i++) buf[i] = (char)(i * 7 + 3);
    uint32_t whole = tbgw_crc32(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 13)
        assert_int_equal(tbgw_crc32(tbgw_crc32(0, buf, cut), buf + cut, sizeof buf - cut), whole);
}

static void durability_keys(void **state) {
    (void)state;
    tbgw_durability d;
    tbgw_err err = {0};
    assert_int_equal(tbgw_storage_durability(NULL, &d, &err), 0);
    assert_int_equal(d.policy, TBGW_FSYNC_INTERVAL);
    assert_int_equal(d.interval_ms, 1000);
    json_t *c = json_pack("{s:s, s:i}", "fsync", "Always", "fsync_interval_ms", 250);
    assert_int_equal(tbgw_storage_durability(c, &d, &err), 0);
    assert_int_equal(d.policy, TBGW_FSYNC_ALWAYS);
    assert_int_equal(d.interval_ms, 250);
    json_decref(c);
    c = json_pack("{s:i}", "fsync", 1);
    assert_int_not_equal(tbgw_storage_durability(c, &d, &err), 0);
    assert_string_equal(err.msg, "storage.fsync: expected one of always, interval, never");
    json_decref(c);
}

static void resolve_paths(void **state) {
    (void)state;
    char *p = tbgw_storage_resolve("/etc/tbgw", "./data/");
    assert_string_equal(p, "/etc/tbgw/data/");
    free(p);
    p = tbgw_storage_resolve("/etc/tbgw/", "/var/lib/x");
    assert_string_equal(p, "/var/lib/x");
    free(p);
    p = tbgw_storage_resolve("/etc/tbgw", "./");
    assert_string_equal(p, "/etc/tbgw");
    free(p);
    p = tbgw_storage_resolve(NULL, "data");
    assert_string_equal(p, "data");
    free(p);
}

static void disk_use_warning(void **state) {
    (void)state;
    tbgw_logger *lg = tbgw_logger_get("storage.test");
    tbgw_fs_watch w = {0};
    g_nlines = 0;
    tbgw_storage_fs_eval(&w, "/d", 50, 1000, lg, 0);
    assert_int_equal(g_nlines, 0);
    tbgw_storage_fs_eval(&w, "/d", 81, 190, lg, 1000);
    assert_int_equal(g_nlines, 1);
    assert_non_null(strstr(g_lines[0], "\"/d\" is 81% full (190 MB free)"));
    tbgw_storage_fs_eval(&w, "/d", 85, 150, lg, 61000); /* still above: no repeat within 10 min */
    assert_int_equal(g_nlines, 1);
    tbgw_storage_fs_eval(&w, "/d", 85, 150, lg, 601000);
    assert_int_equal(g_nlines, 2);
    tbgw_storage_fs_eval(&w, "/d", 70, 300, lg, 700000);
    assert_int_equal(g_nlines, 3);
    assert_non_null(strstr(g_lines[2], "back to 70% use"));
    /* the real check measures something */
    tbgw_storage_fs_check(&w, "/tmp", lg, 800000, 1);
    assert_true(w.percent >= 0 && w.percent <= 100);
}

static void drop_report_rate_limited(void **state) {
    (void)state;
    tbgw_logger *lg = tbgw_logger_get("storage.test");
    tbgw_drop_log d = {0};
    g_nlines = 0;
    tbgw_storage_drop_report(&d, lg, "file", "full", 3, 3, 0);
    assert_int_equal(g_nlines, 1);
    assert_non_null(strstr(g_lines[0], "file storage full: dropped 3 record(s) (3 dropped since start)"));
    for (int i = 0; i < 100; i++)
        tbgw_storage_drop_report(&d, lg, "file", "full", 1, 4 + (uint64_t)i, 10 + i);
    assert_int_equal(g_nlines, 1);                                /* within 10 s: counted, not logged */
    tbgw_storage_drop_report(&d, lg, "file", NULL, 0, 103, 5000); /* flush: still too early */
    assert_int_equal(g_nlines, 1);
    tbgw_storage_drop_report(&d, lg, "file", NULL, 0, 103, 10001);
    assert_int_equal(g_nlines, 2);
    assert_non_null(strstr(g_lines[1], "dropped 100 record(s) (103 dropped since start)"));
    tbgw_storage_drop_report(&d, lg, "file", NULL, 0, 103, 30000); /* nothing pending: silent */
    assert_int_equal(g_nlines, 2);
}

/* The background syncer flushes and closes what it is given, one round at a time. */
static void syncer_rounds(void **state) {
    (void)state;
    char dir[] = "/tmp/tbgw-syncer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    tbgw_syncer *y = tbgw_syncer_new(dir, tbgw_logger_get("storage.test"));
    assert_non_null(y);
    int fds[2] = {dup(fd), dup(fd)};
    assert_int_equal(tbgw_syncer_submit(y, fds, 2, 1), 0);
    for (int i = 0; i < 2000 && tbgw_syncer_rounds(y) < 1; i++) usleep(1000);
    assert_int_equal(tbgw_syncer_rounds(y), 1);
    int many[TBGW_SYNCER_MAX_FDS + 1] = {0};
    assert_int_equal(tbgw_syncer_submit(y, many, TBGW_SYNCER_MAX_FDS + 1, 0), TBGW_EINVAL);
    fds[0] = dup(fd);
    assert_int_equal(tbgw_syncer_submit(y, fds, 1, 0), 0);
    tbgw_syncer_free(y); /* waits for the round */
    tbgw_syncer_free(NULL);
    close(fd);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_INFO);
    FILE *devnull = fopen("/dev/null", "w");
    tbgw_log_set_stream(devnull);
    tbgw_log_set_sink(sink, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32_known_values),
        cmocka_unit_test(durability_keys),
        cmocka_unit_test(resolve_paths),
        cmocka_unit_test(disk_use_warning),
        cmocka_unit_test(drop_report_rate_limited),
        cmocka_unit_test(syncer_rounds),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tbgw_log_set_sink(NULL, NULL);
    tbgw_log_set_stream(NULL);
    fclose(devnull);
    return rc;
}
