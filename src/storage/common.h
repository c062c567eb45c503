/* Helpers shared by the durable storages (file, sqlite): config reading, the durability policy,
 * storage directory preparation, file-system usage warnings and rate-limited drop reports.
 * Internal to src/storage/. */
#ifndef TBGW_STORAGE_COMMON_H
#define TBGW_STORAGE_COMMON_H

#include <stdint.h>
#include <jansson.h>
#include <tbgw/err.h>
#include <tbgw/log.h>

#include "storage/storage.h"

/* tbgw extension "fsync": when appended records become durable against power loss.
 * A process crash (kill -9) never loses what append() (file) or sync() (sqlite) returned. */
typedef enum tbgw_fsync_policy {
    TBGW_FSYNC_ALWAYS = 0,   /* fsync in every sync() (group commit, once per core loop turn) */
    TBGW_FSYNC_INTERVAL = 1, /* fsync at most every interval_ms (default) */
    TBGW_FSYNC_NEVER = 2,    /* leave it to the OS */
} tbgw_fsync_policy;

#define TBGW_FSYNC_DEFAULT_INTERVAL_MS 1000

typedef struct tbgw_durability {
    tbgw_fsync_policy policy;
    int64_t interval_ms;
} tbgw_durability;

/* Reads "fsync" ("always" | "interval" | "never", default "interval") and "fsync_interval_ms"
 * (default 1000, 1..3600000). */
int tbgw_storage_durability(const json_t *cfg, tbgw_durability *out, tbgw_err *err);
const char *tbgw_fsync_policy_name(tbgw_fsync_policy p);

/* Integer key in [min, max]; absent -> def. Error names "storage.<key>". */
int tbgw_storage_cfg_int(const json_t *cfg, const char *key, int64_t def, int64_t min, int64_t max,
                         int64_t *out, tbgw_err *err);
/* Number key (integer or real) > 0; absent -> def. */
int tbgw_storage_cfg_num(const json_t *cfg, const char *key, double def, double *out, tbgw_err *err);
/* String key; absent -> def (borrowed). */
int tbgw_storage_cfg_str(const json_t *cfg, const char *key, const char *def, const char **out,
                         tbgw_err *err);

/* Joins config_dir and path unless path is absolute (or config_dir NULL/empty). Caller frees. */
char *tbgw_storage_resolve(const char *config_dir, const char *path);

/* Creates dir (and missing parents, like the reference) and checks the effective user may create
 * files in it. Errors name the key, the path and the user, e.g.
 * storage.data_folder_path: "/var/lib/x" is not writable by user tbgw (uid 998): Permission denied */
int tbgw_storage_prepare_dir(const char *key, const char *dir, tbgw_err *err);

/* Warns (logger lg) when the file system holding dir is more than 80 % used; re-checks at most
 * every 60 s and repeats the warning at most every 10 min while above. */
typedef struct tbgw_fs_watch {
    int64_t next_check_ms, last_warn_ms;
    int above;
    int percent; /* last measured use, -1 if unknown */
} tbgw_fs_watch;
void tbgw_storage_fs_check(tbgw_fs_watch *w, const char *dir, tbgw_logger *lg, int64_t now_ms, int force);
/* The decision part of the check, for a measured use of pct % with free_mb MB left. */
void tbgw_storage_fs_eval(tbgw_fs_watch *w, const char *dir, int pct, uint64_t free_mb, tbgw_logger *lg,
                          int64_t now_ms);

/* Rate-limited report of dropped records: at most one WARNING per 10 s, summing what was dropped
 * in between. what = the reason (a string literal; NULL keeps the last one); n = 0 only flushes a
 * pending sum once the 10 s have passed (call it periodically). */
typedef struct tbgw_drop_log {
    const char *what;
    uint64_t pending;
    int64_t last_ms;
    int logged_once;
} tbgw_drop_log;
void tbgw_storage_drop_report(tbgw_drop_log *d, tbgw_logger *lg, const char *type, const char *what,
                              uint64_t n, uint64_t total, int64_t now_ms);

/* Collects copies of records into one buffer, then hands them over as a tbgw_pack. */
typedef struct tbgw_pack_builder {
    uint8_t *buf;
    size_t len, cap;
    tbgw_record *recs; /* data holds offsets into buf until finish */
    size_t n, rcap;
} tbgw_pack_builder;
int tbgw_pack_builder_add(tbgw_pack_builder *b, const void *data, uint32_t len);
/* Moves the records into out (first_seq .. first_seq + n - 1); b is emptied. */
void tbgw_pack_builder_finish(tbgw_pack_builder *b, uint64_t first_seq, tbgw_pack *out);
void tbgw_pack_builder_free(tbgw_pack_builder *b);

/* fsync on a directory (so created/renamed/removed entries persist); 0 or TBGW_EIO. */
int tbgw_storage_fsync_dir(const char *dir);

#endif
