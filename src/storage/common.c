/* Helpers shared by the durable storages: config keys, durability policy, directories, disk use. */
#include "storage/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FS_WARN_PERCENT   80
#define FS_CHECK_EVERY_MS 60000
#define FS_REWARN_MS      600000
#define DROP_LOG_EVERY_MS 10000

int tbgw_storage_cfg_int(const json_t *cfg, const char *key, int64_t def, int64_t min, int64_t max,
                         int64_t *out, tbgw_err *err) {
    json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return tbgw_err_set(err, TBGW_EINVAL, "storage.%s: expected an integer from %lld to %lld", key,
                            (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

int tbgw_storage_cfg_num(const json_t *cfg, const char *key, double def, double *out, tbgw_err *err) {
    json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e9)
        return tbgw_err_set(err, TBGW_EINVAL, "storage.%s: expected a positive number", key);
    *out = json_number_value(v);
    return 0;
}

int tbgw_storage_cfg_str(const json_t *cfg, const char *key, const char *def, const char **out,
                         tbgw_err *err) {
    json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return tbgw_err_set(err, TBGW_EINVAL, "storage.%s: expected a non-empty string", key);
    *out = json_string_value(v);
    return 0;
}

const char *tbgw_fsync_policy_name(tbgw_fsync_policy p) {
    return p == TBGW_FSYNC_ALWAYS ? "always" : p == TBGW_FSYNC_NEVER ? "never" : "interval";
}

int tbgw_storage_durability(const json_t *cfg, tbgw_durability *out, tbgw_err *err) {
    out->policy = TBGW_FSYNC_INTERVAL;
    json_t *v = cfg ? json_object_get(cfg, "fsync") : NULL;
    if (v) {
        const char *s = json_string_value(v);
        if (s && strcasecmp(s, "always") == 0)
            out->policy = TBGW_FSYNC_ALWAYS;
        else if (s && strcasecmp(s, "never") == 0)
            out->policy = TBGW_FSYNC_NEVER;
        else if (!s || strcasecmp(s, "interval") != 0)
            return tbgw_err_set(err, TBGW_EINVAL, "storage.fsync: expected one of always, interval, never");
    }
    return tbgw_storage_cfg_int(cfg, "fsync_interval_ms", TBGW_FSYNC_DEFAULT_INTERVAL_MS, 1, 3600000,
                                &out->interval_ms, err);
}

char *tbgw_storage_resolve(const char *config_dir, const char *path) {
    if (path[0] == '/' || !config_dir || !*config_dir) return strdup(path);
    while (path[0] == '.' && path[1] == '/') path += 2;
    if (!*path || strcmp(path, ".") == 0) return strdup(config_dir);
    size_t a = strlen(config_dir), b = strlen(path);
    char *r = malloc(a + b + 2);
    if (!r) return NULL;
    memcpy(r, config_dir, a);
    size_t n = a;
    if (r[n - 1] != '/') r[n++] = '/';
    memcpy(r + n, path, b + 1);
    return r;
}

static void user_desc(char *out, size_t n) {
    uid_t uid = geteuid();
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(out, n, "user %s (uid %u)", res->pw_name, (unsigned)uid);
    else
        snprintf(out, n, "uid %u", (unsigned)uid);
}

/* mkdir -p: creates every missing component of dir. Returns 0 or an errno; *failed gets the
 * component that could not be created (or dir itself). */
static int mkdirs(const char *dir, char *failed, size_t flen) {
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) return ENAMETOOLONG;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != 0) continue;
        char c = tmp[i];
        tmp[i] = 0;
        struct stat st;
        if (stat(tmp, &st) != 0) {
            if (errno != ENOENT || (mkdir(tmp, 0750) != 0 && errno != EEXIST)) {
                int e = errno;
                snprintf(failed, flen, "%s", tmp);
                return e;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            snprintf(failed, flen, "%s", tmp);
            return ENOTDIR;
        }
        tmp[i] = c;
    }
    return 0;
}

int tbgw_storage_prepare_dir(const char *key, const char *dir, tbgw_err *err) {
    char who[160], failed[PATH_MAX];
    user_desc(who, sizeof who);
    int e = mkdirs(dir, failed, sizeof failed);
    if (e) {
        if (strcmp(failed, dir) == 0 || e == ENOTDIR)
            return tbgw_err_set(err, TBGW_EIO, "storage.%s: cannot create directory \"%s\" as %s: %s", key,
                                failed, who, strerror(e));
        return tbgw_err_set(err, TBGW_EIO, "storage.%s: cannot create directory \"%s\" (at \"%s\") as %s: %s",
                            key, dir, failed, who, strerror(e));
    }
    if (faccessat(AT_FDCWD, dir, W_OK | X_OK | R_OK, AT_EACCESS) != 0)
        return tbgw_err_set(err, TBGW_EIO, "storage.%s: directory \"%s\" is not writable by %s: %s", key, dir,
                            who, strerror(errno));
    return 0;
}

void tbgw_storage_fs_eval(tbgw_fs_watch *w, const char *dir, int pct, uint64_t free_mb, tbgw_logger *lg,
                          int64_t now_ms) {
    w->percent = pct;
    if (pct > FS_WARN_PERCENT) {
        if (!w->above || now_ms - w->last_warn_ms >= FS_REWARN_MS) {
            TBGW_WARNF(lg,
                       "file system of storage \"%s\" is %d%% full (%llu MB free); above %d%% the storage "
                       "may run out of space",
                       dir, pct, (unsigned long long)free_mb, FS_WARN_PERCENT);
            w->last_warn_ms = now_ms;
        }
        w->above = 1;
    } else {
        if (w->above) TBGW_INFOF(lg, "file system of storage \"%s\" back to %d%% use", dir, pct);
        w->above = 0;
    }
}

void tbgw_storage_fs_check(tbgw_fs_watch *w, const char *dir, tbgw_logger *lg, int64_t now_ms, int force) {
    if (!force && now_ms < w->next_check_ms) return;
    w->next_check_ms = now_ms + FS_CHECK_EVERY_MS;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0 || vfs.f_blocks == 0) {
        w->percent = -1;
        return;
    }
    /* Same formula as df: used / (used + available to unprivileged users), rounded up. */
    uint64_t used = (uint64_t)(vfs.f_blocks - vfs.f_bfree);
    uint64_t avail = (uint64_t)vfs.f_bavail;
    int pct = used + avail ? (int)((used * 100 + used + avail - 1) / (used + avail)) : 0;
    tbgw_storage_fs_eval(w, dir, pct, avail * vfs.f_frsize / 1000000, lg, now_ms);
}

void tbgw_storage_drop_report(tbgw_drop_log *d, tbgw_logger *lg, const char *type, const char *what,
                              uint64_t n, uint64_t total, int64_t now_ms) {
    d->pending += n;
    if (what) d->what = what;
    if (!d->pending) return;
    if (d->logged_once && now_ms - d->last_ms < DROP_LOG_EVERY_MS) return;
    TBGW_WARNF(lg, "%s storage %s: dropped %llu record(s) (%llu dropped since start)", type,
               d->what ? d->what : "full", (unsigned long long)d->pending, (unsigned long long)total);
    d->pending = 0;
    d->last_ms = now_ms;
    d->logged_once = 1;
}

int tbgw_storage_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return TBGW_EIO;
    int rc = fsync(fd) == 0 ? 0 : TBGW_EIO;
    close(fd);
    return rc;
}

int tbgw_pack_builder_add(tbgw_pack_builder *b, const void *data, uint32_t len) {
    if (b->len + len > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + len) nc *= 2;
        uint8_t *nb = realloc(b->buf, nc);
        if (!nb) return TBGW_ENOMEM;
        b->buf = nb;
        b->cap = nc;
    }
    if (b->n == b->rcap) {
        size_t nc = b->rcap ? b->rcap * 2 : 64;
        tbgw_record *nr = realloc(b->recs, nc * sizeof *nr);
        if (!nr) return TBGW_ENOMEM;
        b->recs = nr;
        b->rcap = nc;
    }
    if (len) memcpy(b->buf + b->len, data, len);
    b->recs[b->n].data = (const uint8_t *)(uintptr_t)b->len;
    b->recs[b->n].len = len;
    b->n++;
    b->len += len;
    return 0;
}

void tbgw_pack_builder_finish(tbgw_pack_builder *b, uint64_t first_seq, tbgw_pack *out) {
    memset(out, 0, sizeof *out);
    if (!b->n) {
        tbgw_pack_builder_free(b);
        return;
    }
    if (!b->buf) b->buf = malloc(1); /* only zero-length records: keep a non-NULL base */
    for (size_t i = 0; i < b->n; i++) b->recs[i].data = b->buf + (uintptr_t)b->recs[i].data;
    out->buf = b->buf;
    out->recs = b->recs;
    out->n = b->n;
    out->first_seq = first_seq;
    out->last_seq = first_seq + b->n - 1;
    memset(b, 0, sizeof *b);
}

void tbgw_pack_builder_free(tbgw_pack_builder *b) {
    free(b->buf);
    free(b->recs);
    memset(b, 0, sizeof *b);
}
