/* SQLite storage: one database file in WAL mode, table tbgw_records(seq INTEGER PRIMARY KEY, ts, data).
 *
 * Group commit: appends go into an open transaction that sync() (called by the core before its
 * loop sleeps), commit() or writing_batch_size appends commit; a committed transaction survives
 * kill -9, its power-loss durability follows the "fsync" policy (synchronous=FULL / NORMAL plus a
 * checkpoint every fsync_interval_ms / OFF).
 * Bound: size_limit MB x max_db_amount of stored records (payload + an estimated 32 bytes of row
 * overhead); when full the oldest ~1 % is deleted (default) or new records are refused.
 * TTL: every messages_ttl_check_in_hours, records older than messages_ttl_in_days are deleted and
 * counted as dropped (the reference's TTL never deletes, spec §3.3).
 * A database that fails its integrity check at start-up is moved aside; every row still readable
 * is copied into a fresh database and the loss is reported. */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <tbgw/log.h>

#include "storage/common.h"
#include "storage/storage.h"
#include "util/time.h"

#define ROW_OVERHEAD 32u

extern const tbgw_storage_ops tbgw_storage_sqlite_ops;

typedef struct sql_storage {
    tbgw_storage base;
    sqlite3 *db;
    sqlite3_stmt *ins, *sel, *cnt_upto, *del_upto, *scan_old;
    char *dir, *path;
    uint64_t next_seq;  /* seq of the next append */
    uint64_t rd_seq;    /* next seq to peek */
    uint64_t committed; /* every seq <= committed is gone */
    uint64_t records, bytes;
    int in_txn;
    int64_t txn_n;
    /* config */
    int64_t batch, max_read, max_bytes;
    double ttl_ms, ttl_check_ms;
    tbgw_full_policy full;
    tbgw_durability dur;
    int64_t next_ttl_ms, last_ckpt_ms;
    int unsynced; /* commits since the last checkpoint (interval policy) */
    tbgw_storage_stats st;
    tbgw_logger *log;
    tbgw_drop_log drops;
    tbgw_fs_watch fsw;
    int64_t last_err_ms;
} sql_storage;

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_db_error(sql_storage *s, const char *what) {
    int64_t now = tbgw_mono_ms();
    if (s->last_err_ms && now - s->last_err_ms < 10000) return;
    s->last_err_ms = now;
    TBGW_ERRORF(s->log, "sqlite storage \"%s\": %s failed: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(sql_storage *s, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    return rc;
}

static int txn_begin(sql_storage *s) {
    if (s->in_txn) return 0;
    if (exec(s, "BEGIN") != SQLITE_OK) {
        log_db_error(s, "BEGIN");
        return TBGW_EIO;
    }
    s->in_txn = 1;
    s->txn_n = 0;
    return 0;
}

/* Reloads the counters from the table (after a failed transaction). */
static void reload_counts(sql_storage *s) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*), coalesce(sum(length(data)),0), min(seq) FROM tbgw_records", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        s->records = (uint64_t)sqlite3_column_int64(st, 0);
        s->bytes = (uint64_t)sqlite3_column_int64(st, 1);
        if (sqlite3_column_type(st, 2) != SQLITE_NULL &&
            (uint64_t)sqlite3_column_int64(st, 2) > s->committed + 1)
            s->committed = (uint64_t)sqlite3_column_int64(st, 2) - 1;
    }
    sqlite3_finalize(st);
}

/* A statement failed: if SQLite rolled the transaction back, its appends are lost. */
static void after_failure(sql_storage *s) {
    if (s->in_txn && sqlite3_get_autocommit(s->db)) {
        uint64_t lost = (uint64_t)s->txn_n;
        s->in_txn = 0;
        s->txn_n = 0;
        uint64_t before = s->records;
        reload_counts(s);
        if (before > s->records) lost = before - s->records;
        s->st.dropped += lost;
        TBGW_ERRORF(s->log, "sqlite storage \"%s\": transaction rolled back (%s), %" PRIu64 " record(s) lost",
                    s->path, sqlite3_errmsg(s->db), lost);
    }
}

static int txn_commit(sql_storage *s) {
    if (!s->in_txn) return 0;
    if (exec(s, "COMMIT") != SQLITE_OK) {
        log_db_error(s, "COMMIT");
        after_failure(s);
        return TBGW_EIO;
    }
    s->in_txn = 0;
    s->txn_n = 0;
    s->unsynced = 1;
    return 0;
}

/* Deletes every record with seq <= upto (rows, bytes) and counts them; returns the count. */
static uint64_t delete_upto(sql_storage *s, uint64_t upto, uint64_t *bytes_out) {
    uint64_t n = 0, bytes = 0;
    sqlite3_bind_int64(s->cnt_upto, 1, (sqlite3_int64)upto);
    if (sqlite3_step(s->cnt_upto) == SQLITE_ROW) {
        n = (uint64_t)sqlite3_column_int64(s->cnt_upto, 0);
        bytes = (uint64_t)sqlite3_column_int64(s->cnt_upto, 1);
    }
    sqlite3_reset(s->cnt_upto);
    sqlite3_bind_int64(s->del_upto, 1, (sqlite3_int64)upto);
    int rc = sqlite3_step(s->del_upto);
    sqlite3_reset(s->del_upto);
    if (rc != SQLITE_DONE) {
        log_db_error(s, "DELETE");
        after_failure(s);
        return 0;
    }
    s->records -= n < s->records ? n : s->records;
    s->bytes -= bytes < s->bytes ? bytes : s->bytes;
    if (upto > s->committed) s->committed = upto;
    if (s->rd_seq <= upto) s->rd_seq = upto + 1;
    if (bytes_out) *bytes_out = bytes;
    return n;
}

/* Finds the last seq of the oldest records to drop: expired ones (cutoff_ts >= 0) or enough to
 * free need bytes. Returns 0 when nothing qualifies. */
static uint64_t oldest_upto(sql_storage *s, int64_t cutoff_ts, uint64_t need) {
    uint64_t last = 0, freed = 0;
    while (sqlite3_step(s->scan_old) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(s->scan_old, 0);
        int64_t ts = sqlite3_column_int64(s->scan_old, 1);
        if (cutoff_ts >= 0 ? ts >= cutoff_ts : freed >= need) break;
        last = seq;
        freed += (uint64_t)sqlite3_column_int64(s->scan_old, 2) + ROW_OVERHEAD;
    }
    sqlite3_reset(s->scan_old);
    return last;
}

static void ttl_check(sql_storage *s, int64_t now_mono) {
    if (now_mono < s->next_ttl_ms) return;
    s->next_ttl_ms = now_mono + (int64_t)s->ttl_check_ms;
    int64_t cutoff = wall_ms() - (int64_t)s->ttl_ms;
    uint64_t upto = oldest_upto(s, cutoff, 0);
    if (!upto || txn_begin(s)) return;
    uint64_t n = delete_upto(s, upto, NULL);
    txn_commit(s);
    if (n) {
        s->st.dropped += n;
        tbgw_storage_drop_report(&s->drops, s->log, "sqlite", "TTL, records older than messages_ttl_in_days",
                                 n, s->st.dropped, now_mono);
    }
}

static uint64_t estimate(const sql_storage *s) {
    return s->bytes + s->records * ROW_OVERHEAD;
}

/* Makes room for len more bytes; TBGW_EFULL when refused. */
static int make_room(sql_storage *s, size_t len) {
    uint64_t need = len + ROW_OVERHEAD;
    if (estimate(s) + need <= (uint64_t)s->max_bytes) return 0;
    int64_t now = tbgw_mono_ms();
    if (s->full == TBGW_FULL_REFUSE || s->records == 0) {
        s->st.dropped++;
        tbgw_storage_drop_report(&s->drops, s->log, "sqlite", "size limit reached, refusing new records", 1,
                                 s->st.dropped, now);
        return TBGW_EFULL;
    }
    /* free at least 1 % of the bound so that dropping is not paid on every append */
    uint64_t want = estimate(s) + need - (uint64_t)s->max_bytes;
    if (want < (uint64_t)s->max_bytes / 100) want = (uint64_t)s->max_bytes / 100;
    uint64_t upto = oldest_upto(s, -1, want);
    if (!upto) return TBGW_EFULL;
    if (txn_begin(s)) return TBGW_EIO;
    uint64_t n = delete_upto(s, upto, NULL);
    s->st.dropped += n;
    tbgw_storage_drop_report(&s->drops, s->log, "sqlite", "size limit reached, dropping the oldest records",
                             n, s->st.dropped, now);
    return estimate(s) + need <= (uint64_t)s->max_bytes ? 0 : TBGW_EFULL;
}

static int sql_append(tbgw_storage *bs, const void *data, size_t len) {
    sql_storage *s = (sql_storage *)bs;
    if (len > (64u << 20)) return TBGW_EINVAL;
    int rc = make_room(s, len);
    if (rc) return rc;
    if ((rc = txn_begin(s))) return rc;
    sqlite3_bind_int64(s->ins, 1, (sqlite3_int64)s->next_seq);
    sqlite3_bind_int64(s->ins, 2, wall_ms());
    sqlite3_bind_blob(s->ins, 3, len ? data : "", (int)len, SQLITE_STATIC);
    int src = sqlite3_step(s->ins);
    sqlite3_reset(s->ins);
    sqlite3_clear_bindings(s->ins);
    if (src != SQLITE_DONE) {
        log_db_error(s, "INSERT");
        after_failure(s);
        s->st.dropped++;
        return src == SQLITE_FULL ? TBGW_EFULL : TBGW_EIO;
    }
    s->next_seq++;
    s->records++;
    s->bytes += len;
    s->st.appended++;
    if (++s->txn_n >= s->batch) return txn_commit(s);
    return 0;
}

static int sql_peek(tbgw_storage *bs, size_t max, tbgw_pack *out) {
    sql_storage *s = (sql_storage *)bs;
    memset(out, 0, sizeof *out);
    if (max > (size_t)s->max_read) max = (size_t)s->max_read;
    if (max == 0) return 0;
    tbgw_pack_builder b = {0};
    uint64_t first = 0;
    int rc = 0, step;
    sqlite3_bind_int64(s->sel, 1, (sqlite3_int64)s->rd_seq);
    sqlite3_bind_int64(s->sel, 2, (sqlite3_int64)max);
    while ((step = sqlite3_step(s->sel)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(s->sel, 0);
        if (b.n && seq != first + b.n) break; /* a pack is contiguous */
        if (!b.n) first = seq;
        const void *d = sqlite3_column_blob(s->sel, 1);
        int n = sqlite3_column_bytes(s->sel, 1);
        if ((rc = tbgw_pack_builder_add(&b, d, (uint32_t)n))) break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        log_db_error(s, "SELECT");
        rc = TBGW_EIO;
    }
    sqlite3_reset(s->sel);
    if (rc || b.n == 0) {
        tbgw_pack_builder_free(&b);
        return rc;
    }
    tbgw_pack_builder_finish(&b, first, out);
    s->rd_seq = out->last_seq + 1;
    return 0;
}

static int sql_commit(tbgw_storage *bs, const tbgw_pack *p) {
    sql_storage *s = (sql_storage *)bs;
    if (!p || p->n == 0 || p->last_seq <= s->committed) return 0;
    int rc = txn_begin(s);
    if (rc) return rc;
    uint64_t before = s->committed;
    uint64_t n = delete_upto(s, p->last_seq, NULL);
    if (s->committed == before) return TBGW_EIO;
    s->st.committed += n;
    return txn_commit(s); /* durable now: a crash re-sends at most the packs not yet committed */
}

static void sql_rewind(tbgw_storage *bs) {
    sql_storage *s = (sql_storage *)bs;
    s->rd_seq = s->committed + 1;
}

static int sql_sync(tbgw_storage *bs) {
    sql_storage *s = (sql_storage *)bs;
    int64_t now = tbgw_mono_ms();
    int rc = txn_commit(s);
    ttl_check(s, now);
    tbgw_storage_fs_check(&s->fsw, s->dir, s->log, now, 0);
    tbgw_storage_drop_report(&s->drops, s->log, "sqlite", NULL, 0, s->st.dropped, now);
    if (s->dur.policy == TBGW_FSYNC_INTERVAL && s->unsynced && now - s->last_ckpt_ms >= s->dur.interval_ms) {
        /* synchronous=NORMAL: the WAL is fsynced by a checkpoint */
        if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
            log_db_error(s, "checkpoint");
        s->last_ckpt_ms = now;
        s->unsynced = 0;
    }
    return rc;
}

static int64_t sql_sync_due(tbgw_storage *bs) {
    sql_storage *s = (sql_storage *)bs;
    int64_t due = s->records ? s->next_ttl_ms : INT64_MAX; /* the TTL sweep, while records are stored */
    if (s->dur.policy == TBGW_FSYNC_INTERVAL && s->unsynced && s->last_ckpt_ms + s->dur.interval_ms < due)
        due = s->last_ckpt_ms + s->dur.interval_ms;
    return due;
}

static uint64_t file_size(const char *path, const char *suffix) {
    char buf[4096];
    struct stat st;
    snprintf(buf, sizeof buf, "%s%s", path, suffix);
    return stat(buf, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void sql_stats(tbgw_storage *bs, tbgw_storage_stats *out) {
    sql_storage *s = (sql_storage *)bs;
    *out = s->st;
    out->records = s->records;
    out->bytes = s->bytes;
    out->disk_bytes = file_size(s->path, "") + file_size(s->path, "-wal") + file_size(s->path, "-journal");
}

static void finalize_all(sql_storage *s) {
    sqlite3_stmt **all[] = {&s->ins, &s->sel, &s->cnt_upto, &s->del_upto, &s->scan_old};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

static void sql_close(tbgw_storage *bs) {
    sql_storage *s = (sql_storage *)bs;
    if (!s) return;
    if (s->db) {
        txn_commit(s);
        finalize_all(s);
        sqlite3_close(s->db);
    }
    free(s->dir);
    free(s->path);
    free(s);
}

/* ---- open ---- */

static int parse_config(sql_storage *s, const json_t *cfg, const char *config_dir, tbgw_err *err) {
    const char *p;
    int64_t dbs;
    double days, hours, size_limit, oversize;
    if (tbgw_storage_cfg_str(cfg, "data_file_path", "./", &p, err) ||
        tbgw_storage_cfg_num(cfg, "messages_ttl_check_in_hours", 1, &hours, err) ||
        tbgw_storage_cfg_num(cfg, "messages_ttl_in_days", 7, &days, err) ||
        tbgw_storage_cfg_int(cfg, "max_read_records_count", 1000, 1, 10000000, &s->max_read, err) ||
        tbgw_storage_cfg_int(cfg, "writing_batch_size", 1000, 1, 10000000, &s->batch, err) ||
        tbgw_storage_cfg_num(cfg, "size_limit", 1024, &size_limit, err) ||
        tbgw_storage_cfg_int(cfg, "max_db_amount", 10, 1, 1 << 20, &dbs, err) ||
        tbgw_storage_cfg_num(cfg, "oversize_check_period", 1, &oversize, err) ||
        tbgw_storage_full_policy(cfg, &s->full, err) || tbgw_storage_durability(cfg, &s->dur, err))
        return TBGW_EINVAL;
    s->ttl_ms = days * 86400000.0;
    s->ttl_check_ms = hours * 3600000.0;
    if (s->ttl_check_ms < 1) s->ttl_check_ms = 1;
    if (size_limit < 1) return tbgw_err_set(err, TBGW_EINVAL, "storage.size_limit: expected at least 1 (MB)");
    double bound = size_limit * 1000000.0 * (double)dbs;
    s->max_bytes = bound > 4e18 ? (int64_t)4e18 : (int64_t)bound;
    char *full = tbgw_storage_resolve(config_dir, p);
    if (!full) return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    struct stat st;
    size_t l = strlen(full);
    if (full[l - 1] == '/' || (stat(full, &st) == 0 && S_ISDIR(st.st_mode))) {
        while (l > 1 && full[l - 1] == '/') full[--l] = 0;
        s->dir = full;
        if (asprintf(&s->path, "%s/data.db", full) < 0) s->path = NULL;
    } else {
        char *slash = strrchr(full, '/');
        s->path = full;
        s->dir = slash ? strndup(full, slash == full ? 1 : (size_t)(slash - full)) : strdup(".");
    }
    if (!s->dir || !s->path) return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    return 0;
}

static int is_corruption(int rc) {
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* Opens the database and prepares everything; returns an SQLite code (SQLITE_CORRUPT/NOTADB
 * when the file is damaged). */
static int db_setup(sql_storage *s) {
    if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return sqlite3_errcode(s->db);
    const char *sync = s->dur.policy == TBGW_FSYNC_ALWAYS  ? "PRAGMA synchronous=FULL"
                       : s->dur.policy == TBGW_FSYNC_NEVER ? "PRAGMA synchronous=OFF"
                                                           : "PRAGMA synchronous=NORMAL";
    const char *setup[] = {
        "PRAGMA locking_mode=EXCLUSIVE",
        "PRAGMA journal_mode=WAL",
        sync,
        "PRAGMA journal_size_limit=67108864",
        "CREATE TABLE IF NOT EXISTS tbgw_records(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, data BLOB NOT "
        "NULL)",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        int rc = exec(s, setup[i]);
        if (rc != SQLITE_OK) return rc;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rc = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
        else if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) return rc;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->ins, "INSERT INTO tbgw_records(seq, ts, data) VALUES(?, ?, ?)"},
        {&s->sel, "SELECT seq, data FROM tbgw_records WHERE seq >= ? ORDER BY seq LIMIT ?"},
        {&s->cnt_upto, "SELECT count(*), coalesce(sum(length(data)),0) FROM tbgw_records WHERE seq <= ?"},
        {&s->del_upto, "DELETE FROM tbgw_records WHERE seq <= ?"},
        {&s->scan_old, "SELECT seq, ts, length(data) FROM tbgw_records ORDER BY seq"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        if ((rc = sqlite3_prepare_v2(s->db, stmts[i].sql, -1, stmts[i].st, NULL)) != SQLITE_OK) return rc;
    return SQLITE_OK;
}

static void db_teardown(sql_storage *s) {
    finalize_all(s);
    sqlite3_close(s->db);
    s->db = NULL;
}

/* A truncated database file: pads it with zeros to the size its header gives, so that SQLite reads
 * the pages still present instead of refusing the whole file. */
static void pad_truncated(const char *path) {
    uint8_t h[100];
    FILE *fp = fopen(path, "rb");
    if (!fp) return;
    size_t n = fread(h, 1, sizeof h, fp);
    fclose(fp);
    if (n != sizeof h || memcmp(h, "SQLite format 3", 16) != 0) return;
    uint64_t ps = (uint64_t)h[16] << 8 | h[17];
    if (ps == 1) ps = 65536;
    uint64_t pc = (uint64_t)h[28] << 24 | (uint64_t)h[29] << 16 | (uint64_t)h[30] << 8 | h[31];
    struct stat st;
    if (ps < 512 || (ps & (ps - 1)) || pc == 0 || pc > (1u << 30) || stat(path, &st) != 0) return;
    if ((uint64_t)st.st_size < ps * pc && truncate(path, (off_t)(ps * pc)) != 0) return;
}

/* Copies every readable row of the damaged database at bad into the open (fresh) one. */
static uint64_t salvage(sql_storage *s, const char *bad) {
    sqlite3 *old = NULL;
    pad_truncated(bad);
    sqlite3_stmt *st = NULL;
    uint64_t kept = 0;
    if (sqlite3_open_v2(bad, &old, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(old, "SELECT seq, ts, data FROM tbgw_records ORDER BY seq", -1, &st, NULL) ==
            SQLITE_OK &&
        txn_begin(s) == 0) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            sqlite3_bind_int64(s->ins, 1, sqlite3_column_int64(st, 0));
            sqlite3_bind_int64(s->ins, 2, sqlite3_column_int64(st, 1));
            const void *d = sqlite3_column_blob(st, 2);
            sqlite3_bind_blob(s->ins, 3, d ? d : "", sqlite3_column_bytes(st, 2), SQLITE_TRANSIENT);
            int rc = sqlite3_step(s->ins);
            sqlite3_reset(s->ins);
            if (rc != SQLITE_DONE) break;
            kept++;
        }
        txn_commit(s);
    }
    sqlite3_finalize(st);
    sqlite3_close(old);
    /* reading may have created an empty WAL and a shared-memory file beside the damaged copy */
    char side[4096];
    snprintf(side, sizeof side, "%s-shm", bad);
    unlink(side);
    snprintf(side, sizeof side, "%s-wal", bad);
    struct stat stt;
    if (stat(side, &stt) == 0 && stt.st_size == 0) unlink(side);
    return kept;
}

static int recover(sql_storage *s, int why, tbgw_err *err) {
    char *bad = NULL;
    const char *reason = sqlite3_errstr(why);
    db_teardown(s);
    struct stat st;
    for (int k = 0; k < 1000; k++) {
        free(bad);
        bad = NULL;
        if (asprintf(&bad, "%s.corrupt-%lld%s%.0d", s->path, (long long)(wall_ms() / 1000), k ? "-" : "", k) <
            0)
            return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
        if (stat(bad, &st) != 0) break;
    }
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s%s", s->path, suffixes[i]);
        snprintf(to, sizeof to, "%s%s", bad, suffixes[i]);
        if (rename(from, to) != 0 && errno != ENOENT) {
            tbgw_err_set(err, TBGW_EIO,
                         "storage.data_file_path: \"%s\" is damaged (%s) and cannot be moved aside: %s",
                         s->path, reason, strerror(errno));
            free(bad);
            return TBGW_EIO;
        }
    }
    int rc = db_setup(s);
    if (rc != SQLITE_OK) {
        tbgw_err_set(err, TBGW_EIO, "storage.data_file_path: cannot create \"%s\": %s", s->path,
                     sqlite3_errstr(rc));
        free(bad);
        return TBGW_EIO;
    }
    uint64_t kept = salvage(s, bad);
    TBGW_ERRORF(s->log,
                "sqlite storage: \"%s\" was damaged (%s); moved to \"%s\", %" PRIu64
                " readable record(s) kept, "
                "the rest is lost",
                s->path, reason, bad, kept);
    free(bad);
    return 0;
}

static void load_state(sql_storage *s) {
    sqlite3_stmt *st = NULL;
    s->next_seq = 1;
    if (sqlite3_prepare_v2(s->db, "SELECT max(seq) FROM tbgw_records", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        s->next_seq = (uint64_t)sqlite3_column_int64(st, 0) + 1;
    sqlite3_finalize(st);
    s->committed = 0;
    reload_counts(s);
    s->rd_seq = s->committed + 1;
    /* the Python gateway's table is left alone */
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM messages", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        TBGW_WARNF(
            s->log,
            "sqlite storage \"%s\": %lld record(s) of the Python gateway (table messages) are not read",
            s->path, (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
}

static int sql_open(const json_t *cfg, const char *config_dir, tbgw_storage **out, tbgw_err *err) {
    sql_storage *s = calloc(1, sizeof *s);
    if (!s) return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    s->base.ops = &tbgw_storage_sqlite_ops;
    s->log = tbgw_logger_get("storage");
    int rc = parse_config(s, cfg, config_dir, err);
    if (!rc) rc = tbgw_storage_prepare_dir("data_file_path", s->dir, err);
    if (!rc) {
        int src = db_setup(s);
        if ((src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED)
            rc = tbgw_err_set(err, TBGW_EIO, "storage.data_file_path: \"%s\" is in use by another process",
                              s->path);
        else if (is_corruption(src))
            rc = recover(s, src, err);
        else if (src != SQLITE_OK)
            rc = tbgw_err_set(err, TBGW_EIO, "storage.data_file_path: cannot open \"%s\": %s", s->path,
                              s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
    }
    if (rc) {
        sql_close(&s->base);
        return rc;
    }
    load_state(s);
    int64_t now = tbgw_mono_ms();
    s->last_ckpt_ms = now;
    ttl_check(s, now);
    tbgw_storage_fs_check(&s->fsw, s->dir, s->log, now, 1);
    TBGW_INFOF(s->log,
               "sqlite storage \"%s\": %" PRIu64 " record(s) pending; bound %lld MB, TTL %.3g days, fsync %s",
               s->path, s->records, (long long)(s->max_bytes / 1000000), s->ttl_ms / 86400000.0,
               tbgw_fsync_policy_name(s->dur.policy));
    *out = &s->base;
    return 0;
}

const tbgw_storage_ops tbgw_storage_sqlite_ops = {
    .type = "sqlite",
    .open = sql_open,
    .append = sql_append,
    .peek = sql_peek,
    .commit = sql_commit,
    .rewind = sql_rewind,
    .sync = sql_sync,
    .sync_due = sql_sync_due,
    .stats = sql_stats,
    .close = sql_close,
};
