/* File storage: append-only segment files of CRC-framed records plus a two-slot commit pointer
 * (formats in file_format.h, docs/STORAGE.md).
 *
 * Every append is written to the kernel before it returns, so a process crash (kill -9) loses
 * nothing that append() accepted; fsync (power-loss durability) follows the "fsync" policy and runs
 * in sync(), which the core calls before its loop sleeps (group commit).
 * Capacity: max_file_count segments of at most max_records_per_file records (and max_file_bytes).
 * When the newest segment is full and no further segment may be created, the oldest segment is
 * dropped (default) or the new record is refused ("full_policy": "refuse").
 * Start-up scans every segment, cuts a torn or corrupt tail at the last valid frame and reports it.
 * Unlike the reference (spec §3.2) a segment is deleted only once every record in it is committed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <tbgw/log.h>

#include "storage/common.h"
#include "storage/file_format.h"
#include "storage/storage.h"
#include "storage/syncer.h"
#include "util/time.h"

#define BOUNDARIES 64

extern const tbgw_storage_ops tbgw_storage_file_ops;

typedef struct seg {
    uint64_t first_seq;
    uint64_t count; /* valid records */
    uint64_t size;  /* valid bytes (header included) */
    uint64_t live;  /* payload bytes of records not yet committed */
} seg;

typedef struct cursor {
    size_t idx;   /* segment index (== nsegs when there is none) */
    uint64_t off; /* byte offset in that segment */
    uint64_t seq; /* seq of the record at off */
} cursor;

typedef struct boundary {
    uint64_t last_seq, seg_first, off; /* after the pack ending at last_seq: next record at off */
} boundary;

typedef struct file_storage {
    tbgw_storage base;
    char *dir;
    seg *segs;
    size_t nsegs, segcap;
    int wfd; /* open for appends to segs[nsegs-1], or -1 */
    int rfd; /* open for reading segment rfd_first, or -1 */
    uint64_t rfd_first;
    int state_fd;
    uint64_t state_gen;
    uint64_t next_seq;  /* seq given to the next append */
    uint64_t committed; /* every seq <= committed is done */
    cursor rd;          /* next record to peek */
    boundary bnd[BOUNDARIES];
    size_t bnd_head, bnd_n;
    tbgw_frame_reader rdr;
    /* config */
    int64_t max_files, max_per_file, max_read, max_file_bytes;
    tbgw_full_policy full;
    tbgw_durability dur;
    /* durability bookkeeping */
    int dirty_data, dirty_dir, dirty_state;
    int64_t last_fsync_ms;
    tbgw_syncer *syncer;               /* interval policy: flushes run on this thread, not on the core loop */
    int pend[TBGW_SYNCER_MAX_FDS / 2]; /* dup()s of rolled segments still to flush */
    int npend;
    tbgw_storage_stats st;
    tbgw_logger *log;
    tbgw_drop_log drops;
    tbgw_fs_watch fsw;
    int64_t last_err_ms;
} file_storage;

static char *seg_path(const file_storage *s, uint64_t first_seq) {
    char *p = NULL;
    if (asprintf(&p, "%s/" TBGW_SEG_PREFIX "%020" PRIu64 TBGW_SEG_SUFFIX, s->dir, first_seq) < 0) return NULL;
    return p;
}

/* Records of segment g not yet committed. */
static uint64_t seg_uncommitted(const file_storage *s, const seg *g) {
    if (s->committed < g->first_seq) return g->count;
    uint64_t done = s->committed - g->first_seq + 1;
    return done >= g->count ? 0 : g->count - done;
}

static void log_io_error(file_storage *s, const char *what, const char *path, int e) {
    int64_t now = tbgw_mono_ms();
    if (s->last_err_ms && now - s->last_err_ms < 10000) return;
    s->last_err_ms = now;
    TBGW_ERRORF(s->log, "file storage: %s \"%s\" failed: %s", what, path ? path : s->dir, strerror(e));
}

/* ---- state file (commit pointer) ---- */

static int state_open(file_storage *s, tbgw_err *err) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", s->dir, TBGW_STATE_NAME) < 0)
        return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    s->state_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (s->state_fd < 0) {
        int e = errno;
        tbgw_err_set(err, TBGW_EIO, "storage.data_folder_path: cannot open \"%s\": %s", p, strerror(e));
        free(p);
        return TBGW_EIO;
    }
    if (flock(s->state_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            tbgw_err_set(err, TBGW_EIO,
                         "storage.data_folder_path: \"%s\" is in use by another process (lock on %s)", s->dir,
                         p);
            free(p);
            return TBGW_EIO;
        }
        /* file systems without locks (some network mounts): go on, unprotected */
        TBGW_WARNF(s->log,
                   "file storage: cannot lock \"%s\" (%s); make sure no other gateway uses this folder", p,
                   strerror(errno));
    }
    free(p);
    return 0;
}

/* Reads the newest valid slot; committed stays 0 when none is valid. */
static void state_load(file_storage *s) {
    uint8_t slot[TBGW_STATE_SLOT_SZ];
    int found = 0, damaged = 0;
    for (int i = 0; i < 2; i++) {
        ssize_t n = pread(s->state_fd, slot, sizeof slot, (off_t)i * TBGW_STATE_SLOT);
        if (n <= 0) continue;
        uint64_t gen, c;
        if (n != (ssize_t)sizeof slot || tbgw_state_decode(slot, &gen, &c) != 0) {
            damaged = 1;
            continue;
        }
        if (!found || gen > s->state_gen) {
            s->state_gen = gen;
            s->committed = c;
            found = 1;
        }
    }
    if (damaged && !found)
        TBGW_WARNF(s->log,
                   "file storage: commit pointer in \"%s/%s\" is damaged; replaying from the oldest record",
                   s->dir, TBGW_STATE_NAME);
}

static int state_store(file_storage *s) {
    uint8_t slot[TBGW_STATE_SLOT_SZ];
    uint64_t gen = s->state_gen + 1;
    tbgw_state_encode(slot, gen, s->committed);
    ssize_t n = pwrite(s->state_fd, slot, sizeof slot, (off_t)(gen & 1) * TBGW_STATE_SLOT);
    if (n != (ssize_t)sizeof slot) {
        log_io_error(s, "writing commit pointer", TBGW_STATE_NAME, n < 0 ? errno : EIO);
        return TBGW_EIO;
    }
    s->state_gen = gen;
    s->dirty_state = 1;
    return 0;
}

/* ---- segment list ---- */

static int segs_push(file_storage *s, seg g) {
    if (s->nsegs == s->segcap) {
        size_t nc = s->segcap ? s->segcap * 2 : 8;
        seg *n = realloc(s->segs, nc * sizeof *n);
        if (!n) return TBGW_ENOMEM;
        s->segs = n;
        s->segcap = nc;
    }
    s->segs[s->nsegs++] = g;
    return 0;
}

static int open_reader(file_storage *s, const seg *g) {
    if (s->rfd >= 0 && s->rfd_first == g->first_seq) return 0;
    if (s->rfd >= 0) close(s->rfd);
    s->rfd = -1;
    char *p = seg_path(s, g->first_seq);
    if (!p) return TBGW_ENOMEM;
    s->rfd = open(p, O_RDONLY | O_CLOEXEC);
    if (s->rfd < 0) {
        log_io_error(s, "opening segment", p, errno);
        free(p);
        return TBGW_EIO;
    }
    free(p);
    s->rfd_first = g->first_seq;
    return 0;
}

/* Cursor at the first record with seq >= want (or at the end of everything). */
static cursor locate(file_storage *s, uint64_t want) {
    for (size_t i = 0; i < s->nsegs; i++) {
        seg *g = &s->segs[i];
        if (want <= g->first_seq) return (cursor){i, TBGW_SEG_HDR, g->first_seq};
        if (want >= g->first_seq + g->count) continue;
        if (open_reader(s, g) != 0) return (cursor){i, g->size, g->first_seq + g->count};
        tbgw_frame_reader_seek(&s->rdr, s->rfd, g->first_seq, TBGW_SEG_HDR, g->size);
        uint64_t seq = g->first_seq;
        const uint8_t *d;
        uint32_t n;
        while (seq < want && tbgw_frame_next(&s->rdr, 0, &d, &n) == TBGW_FRAME_OK) seq++;
        return (cursor){i, s->rdr.off, seq};
    }
    if (s->nsegs == 0) return (cursor){0, TBGW_SEG_HDR, s->next_seq};
    seg *l = &s->segs[s->nsegs - 1];
    return (cursor){s->nsegs - 1, l->size, l->first_seq + l->count};
}

/* Removes segs[0] and its file; returns how many uncommitted records it held. */
static uint64_t remove_front(file_storage *s) {
    seg g = s->segs[0];
    uint64_t lost = seg_uncommitted(s, &g);
    if (s->nsegs == 1 && s->wfd >= 0) {
        close(s->wfd);
        s->wfd = -1;
    }
    if (s->rfd >= 0 && s->rfd_first == g.first_seq) {
        close(s->rfd);
        s->rfd = -1;
    }
    tbgw_frame_reader_invalidate(&s->rdr); /* a new file may get the same name and fd number */
    char *p = seg_path(s, g.first_seq);
    if (p && unlink(p) != 0 && errno != ENOENT) log_io_error(s, "removing segment", p, errno);
    free(p);
    s->dirty_dir = 1;
    memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof *s->segs);
    s->nsegs--;
    if (s->rd.idx == 0)
        s->rd = s->nsegs ? (cursor){0, TBGW_SEG_HDR, s->segs[0].first_seq}
                         : (cursor){0, TBGW_SEG_HDR, s->next_seq};
    else
        s->rd.idx--;
    return lost;
}

/* Cuts segment idx at byte off where record number k (from 0) starts; the rest is lost. */
static void cut_segment(file_storage *s, size_t idx, uint64_t off, uint64_t k, const char *why) {
    seg *g = &s->segs[idx];
    char *p = seg_path(s, g->first_seq);
    uint64_t lost = g->count > k ? g->count - k : 0;
    TBGW_ERRORF(s->log,
                "file storage: %s in \"%s\" at offset %" PRIu64 ": cut %" PRIu64 " bytes (%" PRIu64
                " record(s) from seq %" PRIu64 ")",
                why, p ? p : "?", off, g->size - off, lost, g->first_seq + k);
    int fd = (idx + 1 == s->nsegs && s->wfd >= 0) ? s->wfd : -1;
    if (fd < 0 && p) fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && ftruncate(fd, (off_t)off) != 0) log_io_error(s, "truncating segment", p, errno);
    if (fd >= 0 && fd != s->wfd) close(fd);
    free(p);
    tbgw_frame_reader_invalidate(&s->rdr);
    /* live bytes of the lost records are unknown: recount what stays */
    uint64_t live = 0;
    if (open_reader(s, g) == 0) {
        tbgw_frame_reader_seek(&s->rdr, s->rfd, g->first_seq, TBGW_SEG_HDR, off);
        const uint8_t *d;
        uint32_t n;
        for (uint64_t seq = g->first_seq; tbgw_frame_next(&s->rdr, 0, &d, &n) == TBGW_FRAME_OK; seq++)
            if (seq > s->committed) live += n;
    }
    g->live = live;
    g->size = off;
    g->count = k;
    s->st.dropped += lost;
    if (idx + 1 == s->nsegs && s->wfd >= 0) {
        /* seqs after the cut are gone: the next append starts a new segment */
        close(s->wfd);
        s->wfd = -1;
    }
}

/* ---- start-up ---- */

static void move_aside(file_storage *s, const char *path, const char *why) {
    char *dst = NULL;
    if (asprintf(&dst, "%s.corrupt", path) < 0) return;
    if (rename(path, dst) != 0) log_io_error(s, "renaming", path, errno);
    TBGW_ERRORF(s->log, "file storage: %s: \"%s\" moved aside to \"%s\"", why, path, dst);
    free(dst);
    s->dirty_dir = 1;
}

/* Scans one segment file: validates the header and every frame, cuts a bad tail. Returns 0 and
 * fills *g, 1 when the file was removed/moved aside, or a negative error. */
static int scan_file(file_storage *s, uint64_t name_seq, seg *g) {
    char *p = seg_path(s, name_seq);
    if (!p) return TBGW_ENOMEM;
    int fd = open(p, O_RDWR | O_CLOEXEC);
    struct stat stt;
    uint8_t hdr[TBGW_SEG_HDR];
    if (fd < 0 || fstat(fd, &stt) != 0) {
        log_io_error(s, "opening segment", p, errno);
        if (fd >= 0) close(fd);
        free(p);
        return 1;
    }
    uint64_t first = 0;
    if (stt.st_size < (off_t)TBGW_SEG_HDR || pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
        tbgw_seg_header_decode(hdr, &first) != 0 || first != name_seq) {
        close(fd);
        if (stt.st_size < (off_t)TBGW_SEG_HDR) {
            TBGW_WARNF(s->log, "file storage: removed torn segment \"%s\" (%lld bytes, no records)", p,
                       (long long)stt.st_size);
            if (unlink(p) != 0) log_io_error(s, "removing", p, errno);
            s->dirty_dir = 1;
        } else {
            move_aside(s, p, "segment header is corrupt (records in it are lost)");
        }
        free(p);
        return 1;
    }
    *g = (seg){first, 0, TBGW_SEG_HDR, 0};
    tbgw_frame_reader_seek(&s->rdr, fd, UINT64_MAX, TBGW_SEG_HDR, (uint64_t)stt.st_size);
    tbgw_frame_reader_invalidate(&s->rdr);
    const uint8_t *d;
    uint32_t n;
    int rc;
    while ((rc = tbgw_frame_next(&s->rdr, 1, &d, &n)) == TBGW_FRAME_OK) {
        if (first + g->count > s->committed) g->live += n;
        g->count++;
        g->size = s->rdr.off;
    }
    if (rc != TBGW_FRAME_END) {
        const char *why = rc == TBGW_FRAME_TORN     ? "torn record at the end"
                          : rc == TBGW_FRAME_BADLEN ? "corrupt record length"
                          : rc == TBGW_FRAME_BADCRC ? "record checksum mismatch"
                                                    : "read error";
        TBGW_ERRORF(s->log,
                    "file storage: %s in \"%s\" at offset %" PRIu64 ": cut %" PRIu64 " byte(s), kept %" PRIu64
                    " record(s) of this file",
                    why, p, g->size, (uint64_t)stt.st_size - g->size, g->count);
        if (ftruncate(fd, (off_t)g->size) != 0) log_io_error(s, "truncating segment", p, errno);
    }
    tbgw_frame_reader_invalidate(&s->rdr);
    close(fd);
    free(p);
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists segment names (sorted by seq). */
static int list_segments(file_storage *s, uint64_t **out, size_t *n, tbgw_err *err) {
    DIR *d = opendir(s->dir);
    if (!d)
        return tbgw_err_set(err, TBGW_EIO, "storage.data_folder_path: cannot list \"%s\": %s", s->dir,
                            strerror(errno));
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int legacy = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t seq;
        if (strncmp(e->d_name, "data_", 5) == 0 && strstr(e->d_name, ".txt")) legacy++;
        if (tbgw_seg_name_parse(e->d_name, &seq) != 0) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
            }
            v = nv;
        }
        v[cnt++] = seq;
    }
    closedir(d);
    if (legacy)
        TBGW_WARNF(s->log, "file storage: %d data_*.txt file(s) of the Python gateway in \"%s\" are not read",
                   legacy, s->dir);
    if (cnt) qsort(v, cnt, sizeof *v, cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

/* Truncates segs[i] so that it ends before seq limit (overlap with the next segment). */
static void fix_overlap(file_storage *s, size_t i, uint64_t limit) {
    seg *g = &s->segs[i];
    cursor c = locate(s, limit);
    if (c.idx != i) return;
    cut_segment(s, i, c.off, limit - g->first_seq, "records overlapping the next segment");
}

static int load_segments(file_storage *s, tbgw_err *err) {
    uint64_t *names = NULL;
    size_t n = 0;
    if (list_segments(s, &names, &n, err)) return TBGW_EIO;
    for (size_t i = 0; i < n; i++) {
        seg g;
        int rc = scan_file(s, names[i], &g);
        if (rc < 0) {
            free(names);
            return tbgw_err_set(err, rc, "storage: out of memory");
        }
        if (rc == 0 && segs_push(s, g) != 0) {
            free(names);
            return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
        }
    }
    free(names);
    for (size_t i = 0; i + 1 < s->nsegs; i++) {
        seg *g = &s->segs[i], *nx = &s->segs[i + 1];
        if (g->first_seq + g->count > nx->first_seq) fix_overlap(s, i, nx->first_seq);
        uint64_t lo = g->first_seq + g->count > s->committed + 1 ? g->first_seq + g->count : s->committed + 1;
        if (nx->first_seq > lo) {
            TBGW_ERRORF(s->log,
                        "file storage: records %" PRIu64 "..%" PRIu64 " are missing (lost before start)", lo,
                        nx->first_seq - 1);
            s->st.dropped += nx->first_seq - lo;
        }
    }
    /* next seq and the cursor */
    s->next_seq = s->committed + 1;
    if (s->nsegs) {
        seg *l = &s->segs[s->nsegs - 1];
        if (l->first_seq + l->count > s->next_seq) s->next_seq = l->first_seq + l->count;
    }
    /* segments entirely committed go now */
    while (s->nsegs && seg_uncommitted(s, &s->segs[0]) == 0) remove_front(s);
    return 0;
}

static int open_tail_for_append(file_storage *s) {
    if (!s->nsegs) return 0;
    seg *l = &s->segs[s->nsegs - 1];
    if (l->first_seq + l->count != s->next_seq) return 0;
    char *p = seg_path(s, l->first_seq);
    if (!p) return TBGW_ENOMEM;
    s->wfd = open(p, O_WRONLY | O_CLOEXEC);
    if (s->wfd < 0) log_io_error(s, "opening segment", p, errno);
    free(p);
    return 0;
}

static int parse_config(file_storage *s, const json_t *cfg, const char *config_dir, tbgw_err *err) {
    const char *folder;
    int64_t between;
    if (tbgw_storage_cfg_str(cfg, "data_folder_path", "./", &folder, err) ||
        tbgw_storage_cfg_int(cfg, "max_file_count", 5, 1, 1000000, &s->max_files, err) ||
        tbgw_storage_cfg_int(cfg, "max_records_per_file", 10000, 1, INT64_MAX / 2, &s->max_per_file, err) ||
        tbgw_storage_cfg_int(cfg, "max_read_records_count", 1000, 1, 10000000, &s->max_read, err) ||
        tbgw_storage_cfg_int(cfg, "max_records_between_fsync", 1, 1, INT64_MAX / 2, &between, err) ||
        tbgw_storage_cfg_int(cfg, "max_file_bytes", 64 << 20, 4096, INT64_MAX / 2, &s->max_file_bytes, err) ||
        tbgw_storage_full_policy(cfg, &s->full, err) || tbgw_storage_durability(cfg, &s->dur, err))
        return TBGW_EINVAL;
    s->dir = tbgw_storage_resolve(config_dir, folder);
    if (!s->dir) return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    size_t l = strlen(s->dir);
    while (l > 1 && s->dir[l - 1] == '/') s->dir[--l] = 0;
    return 0;
}

static void file_close(tbgw_storage *bs);

static int file_open(const json_t *cfg, const char *config_dir, tbgw_storage **out, tbgw_err *err) {
    file_storage *s = calloc(1, sizeof *s);
    if (!s) return tbgw_err_set(err, TBGW_ENOMEM, "storage: out of memory");
    s->base.ops = &tbgw_storage_file_ops;
    s->wfd = s->rfd = s->state_fd = -1;
    s->rdr.fd = -1;
    s->log = tbgw_logger_get("storage");
    int rc = parse_config(s, cfg, config_dir, err);
    if (!rc) rc = tbgw_storage_prepare_dir("data_folder_path", s->dir, err);
    if (!rc) rc = state_open(s, err);
    if (!rc) {
        state_load(s);
        rc = load_segments(s, err);
    }
    if (!rc) rc = open_tail_for_append(s);
    if (rc) {
        file_close(&s->base);
        return rc;
    }
    s->rd = locate(s, s->committed + 1);
    if (s->dur.policy == TBGW_FSYNC_INTERVAL) s->syncer = tbgw_syncer_new(s->dir, s->log); /* NULL: inline */
    s->last_fsync_ms = tbgw_mono_ms();
    tbgw_storage_fs_check(&s->fsw, s->dir, s->log, s->last_fsync_ms, 1);
    if (s->st.dropped)
        TBGW_WARNF(s->log, "file storage: %" PRIu64 " record(s) lost to corruption before start",
                   s->st.dropped);
    uint64_t recs = 0;
    for (size_t i = 0; i < s->nsegs; i++) recs += seg_uncommitted(s, &s->segs[i]);
    TBGW_INFOF(s->log,
               "file storage \"%s\": %" PRIu64
               " record(s) pending in %zu file(s); up to %lld files x %lld records, "
               "fsync %s",
               s->dir, recs, s->nsegs, (long long)s->max_files, (long long)s->max_per_file,
               tbgw_fsync_policy_name(s->dur.policy));
    *out = &s->base;
    return 0;
}

/* ---- append ---- */

/* Starts a new segment for the record to append; applies the full policy. */
static int roll(file_storage *s) {
    int64_t now = tbgw_mono_ms();
    /* files whose records are all committed make room first (the current one included) */
    while (s->nsegs && seg_uncommitted(s, &s->segs[0]) == 0) remove_front(s);
    while (s->nsegs >= (size_t)s->max_files) {
        if (s->full == TBGW_FULL_REFUSE) {
            s->st.dropped++;
            tbgw_storage_drop_report(&s->drops, s->log, "file", "full, refusing new records", 1,
                                     s->st.dropped, now);
            return TBGW_EFULL;
        }
        uint64_t lost = remove_front(s);
        s->st.dropped += lost;
        tbgw_storage_drop_report(&s->drops, s->log, "file", "full, dropping the oldest file", lost,
                                 s->st.dropped, now);
    }
    if (s->wfd >= 0) {
        int fd = -1;
        if (s->dur.policy == TBGW_FSYNC_INTERVAL && s->dirty_data && s->syncer &&
            s->npend < (int)(sizeof s->pend / sizeof s->pend[0]) && (fd = dup(s->wfd)) >= 0)
            s->pend[s->npend++] = fd; /* flushed with the next interval round */
        else if (s->dur.policy != TBGW_FSYNC_NEVER && s->dirty_data && fdatasync(s->wfd) != 0)
            log_io_error(s, "fsync of segment", NULL, errno);
        s->dirty_data = 0;
        close(s->wfd);
        s->wfd = -1;
    }
    char *p = seg_path(s, s->next_seq);
    if (!p) return TBGW_ENOMEM;
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    uint8_t hdr[TBGW_SEG_HDR];
    tbgw_seg_header_encode(hdr, s->next_seq);
    if (fd < 0 || pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        log_io_error(s, "creating segment", p, errno);
        if (fd >= 0) {
            close(fd);
            unlink(p);
        }
        free(p);
        return TBGW_EIO;
    }
    free(p);
    if (segs_push(s, (seg){s->next_seq, 0, TBGW_SEG_HDR, 0}) != 0) {
        close(fd);
        return TBGW_ENOMEM;
    }
    s->wfd = fd;
    s->dirty_dir = 1;
    return 0;
}

static int need_roll(const file_storage *s, size_t frame) {
    if (s->wfd < 0 || !s->nsegs) return 1;
    const seg *l = &s->segs[s->nsegs - 1];
    if (l->count >= (uint64_t)s->max_per_file) return 1;
    if (l->count > 0 && l->size + frame > (uint64_t)s->max_file_bytes) return 1;
    return l->first_seq + l->count != s->next_seq;
}

static int write_frame(file_storage *s, const void *data, uint32_t len) {
    seg *l = &s->segs[s->nsegs - 1];
    uint8_t hdr[TBGW_FRAME_HDR];
    tbgw_frame_header(hdr, data, len);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
    size_t total = sizeof hdr + len, done = 0;
    while (done < total) {
        ssize_t n = pwritev(s->wfd, iov, 2, (off_t)(l->size + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            if (done && ftruncate(s->wfd, (off_t)l->size) != 0)
                log_io_error(s, "truncating segment", NULL, errno);
            errno = e;
            return -1;
        }
        done += (size_t)n;
        /* advance the iovecs past what was written */
        size_t k = (size_t)n;
        for (int i = 0; i < 2 && k; i++) {
            size_t m = k < iov[i].iov_len ? k : iov[i].iov_len;
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + m;
            iov[i].iov_len -= m;
            k -= m;
        }
    }
    l->count++;
    l->size += total;
    l->live += len;
    return 0;
}

static int file_append(tbgw_storage *bs, const void *data, size_t len) {
    file_storage *s = (file_storage *)bs;
    if (len > TBGW_MAX_RECORD) return TBGW_EINVAL;
    size_t frame = TBGW_FRAME_HDR + len;
    for (int attempt = 0;; attempt++) {
        if (need_roll(s, frame)) {
            int rc = roll(s);
            if (rc) return rc;
        }
        if (write_frame(s, data, (uint32_t)len) == 0) break;
        int e = errno;
        /* disk full: with drop_oldest, make room by dropping the oldest file once */
        if (e == ENOSPC && attempt == 0 && s->full == TBGW_FULL_DROP_OLDEST && s->nsegs > 1) {
            uint64_t lost = remove_front(s);
            s->st.dropped += lost;
            tbgw_storage_drop_report(&s->drops, s->log, "file", "disk full, dropping the oldest file", lost,
                                     s->st.dropped, tbgw_mono_ms());
            continue;
        }
        log_io_error(s, "appending to segment", NULL, e);
        s->st.dropped++;
        return e == ENOSPC ? TBGW_EFULL : TBGW_EIO;
    }
    s->next_seq++;
    s->st.appended++;
    s->dirty_data = 1;
    return 0;
}

/* ---- peek / commit / rewind ---- */

/* Reads the next record at the cursor: 1 = got one, 0 = nothing more, <0 error. */
static int read_next(file_storage *s, const uint8_t **d, uint32_t *n) {
    for (;;) {
        if (s->rd.idx >= s->nsegs) return 0;
        seg *g = &s->segs[s->rd.idx];
        if (s->rd.off >= g->size) {
            if (s->rd.idx + 1 >= s->nsegs) return 0;
            s->rd.idx++;
            s->rd.off = TBGW_SEG_HDR;
            s->rd.seq = s->segs[s->rd.idx].first_seq;
            continue;
        }
        int rc = open_reader(s, g);
        if (rc) return rc;
        tbgw_frame_reader_seek(&s->rdr, s->rfd, g->first_seq, s->rd.off, g->size);
        rc = tbgw_frame_next(&s->rdr, 1, d, n);
        if (rc == TBGW_FRAME_OK) {
            s->rd.off = s->rdr.off;
            s->rd.seq++;
            return 1;
        }
        if (rc == TBGW_FRAME_IOERR) {
            log_io_error(s, "reading segment", NULL, errno);
            return TBGW_EIO;
        }
        /* damaged after start-up (the start-up scan verified it): cut and go on */
        cut_segment(s, s->rd.idx, s->rd.off, s->rd.seq - g->first_seq, "corrupt record found while reading");
    }
}

static int file_peek(tbgw_storage *bs, size_t max, tbgw_pack *out) {
    file_storage *s = (file_storage *)bs;
    memset(out, 0, sizeof *out);
    if (max > (size_t)s->max_read) max = (size_t)s->max_read;
    tbgw_pack_builder b = {0};
    uint64_t first = 0;
    int rc = 0;
    while (b.n < max) {
        cursor save = s->rd;
        const uint8_t *d;
        uint32_t n;
        rc = read_next(s, &d, &n);
        if (rc <= 0) break;
        if (b.n && s->rd.seq - 1 != first + b.n) { /* gap in seqs: the pack ends before it */
            s->rd = save;
            break;
        }
        if (!b.n) first = s->rd.seq - 1;
        rc = tbgw_pack_builder_add(&b, d, n);
        if (rc) {
            s->rd = save;
            break;
        }
    }
    if (b.n == 0) {
        tbgw_pack_builder_free(&b);
        return rc < 0 ? rc : 0;
    }
    tbgw_pack_builder_finish(&b, first, out);
    boundary *bd = &s->bnd[(s->bnd_head + s->bnd_n) % BOUNDARIES];
    if (s->bnd_n == BOUNDARIES)
        s->bnd_head = (s->bnd_head + 1) % BOUNDARIES;
    else
        s->bnd_n++;
    *bd = (boundary){out->last_seq, s->rd.idx < s->nsegs ? s->segs[s->rd.idx].first_seq : 0, s->rd.off};
    return 0;
}

/* Subtracts the payload of records (committed, upto] from the segments' live bytes; uses the pack
 * for the sizes it holds and recounts a segment for the rest. */
static void account_commit(file_storage *s, const tbgw_pack *p, uint64_t upto) {
    for (size_t i = 0; i < s->nsegs; i++) {
        seg *g = &s->segs[i];
        uint64_t lo = s->committed + 1 > g->first_seq ? s->committed + 1 : g->first_seq;
        uint64_t hi = g->first_seq + g->count; /* exclusive */
        if (hi > upto + 1) hi = upto + 1;
        if (lo >= hi) continue;
        s->st.committed += hi - lo;
        if (p->n && lo >= p->first_seq && hi <= p->last_seq + 1) {
            for (uint64_t q = lo; q < hi; q++) g->live -= p->recs[q - p->first_seq].len;
            continue;
        }
        /* not covered by the pack: recount this segment */
        uint64_t live = 0;
        if (open_reader(s, g) == 0) {
            tbgw_frame_reader_seek(&s->rdr, s->rfd, g->first_seq, TBGW_SEG_HDR, g->size);
            const uint8_t *d;
            uint32_t n;
            for (uint64_t q = g->first_seq; tbgw_frame_next(&s->rdr, 0, &d, &n) == TBGW_FRAME_OK; q++)
                if (q > upto) live += n;
        }
        g->live = live;
    }
}

static int file_commit(tbgw_storage *bs, const tbgw_pack *p) {
    file_storage *s = (file_storage *)bs;
    if (!p || p->n == 0 || p->last_seq <= s->committed) return 0;
    uint64_t upto = p->last_seq;
    if (upto >= s->next_seq) upto = s->next_seq - 1;
    account_commit(s, p, upto);
    s->committed = upto;
    int rc = state_store(s);
    while (s->nsegs > 1 && seg_uncommitted(s, &s->segs[0]) == 0) remove_front(s);
    while (s->bnd_n && s->bnd[s->bnd_head].last_seq < upto) {
        s->bnd_head = (s->bnd_head + 1) % BOUNDARIES;
        s->bnd_n--;
    }
    if (s->rd.seq <= s->committed) s->rd = locate(s, s->committed + 1);
    return rc;
}

static void file_rewind(tbgw_storage *bs) {
    file_storage *s = (file_storage *)bs;
    cursor c = {0};
    int known = 0;
    if (s->bnd_n && s->bnd[s->bnd_head].last_seq == s->committed) {
        boundary *b = &s->bnd[s->bnd_head];
        for (size_t i = 0; i < s->nsegs; i++)
            if (s->segs[i].first_seq == b->seg_first && b->off <= s->segs[i].size) {
                c = (cursor){i, b->off, s->committed + 1};
                known = 1;
            }
    }
    s->rd = known ? c : locate(s, s->committed + 1);
    s->bnd_n = 0;
}

/* ---- sync / stats / close ---- */

static int do_fsync(file_storage *s) {
    int rc = 0;
    if (s->dirty_data && s->wfd >= 0 && fdatasync(s->wfd) != 0) {
        log_io_error(s, "fsync of segment", NULL, errno);
        rc = TBGW_EIO;
    }
    if (s->dirty_state && s->state_fd >= 0 && fdatasync(s->state_fd) != 0) {
        log_io_error(s, "fsync of commit pointer", TBGW_STATE_NAME, errno);
        rc = TBGW_EIO;
    }
    if (s->dirty_dir && tbgw_storage_fsync_dir(s->dir) != 0) {
        log_io_error(s, "fsync of directory", s->dir, errno);
        rc = TBGW_EIO;
    }
    s->dirty_data = s->dirty_state = s->dirty_dir = 0;
    return rc;
}

/* Interval policy: hands dup()s of the dirty files to the syncer thread. */
static void background_fsync(file_storage *s) {
    int fds[TBGW_SYNCER_MAX_FDS], n = 0;
    for (int i = 0; i < s->npend; i++) fds[n++] = s->pend[i];
    int own = n;
    if (s->dirty_data && s->wfd >= 0 && (fds[n] = dup(s->wfd)) >= 0) n++;
    if (s->dirty_state && s->state_fd >= 0 && (fds[n] = dup(s->state_fd)) >= 0) n++;
    if (tbgw_syncer_submit(s->syncer, fds, n, s->dirty_dir) != 0) {
        for (int i = own; i < n; i++) close(fds[i]); /* previous round still running: next time */
        return;
    }
    s->npend = 0;
    s->dirty_data = s->dirty_state = s->dirty_dir = 0;
}

static int file_sync(tbgw_storage *bs) {
    file_storage *s = (file_storage *)bs;
    int64_t now = tbgw_mono_ms();
    tbgw_storage_fs_check(&s->fsw, s->dir, s->log, now, 0);
    tbgw_storage_drop_report(&s->drops, s->log, "file", NULL, 0, s->st.dropped, now);
    if (s->dur.policy == TBGW_FSYNC_NEVER) return 0;
    if (!s->dirty_data && !s->dirty_state && !s->dirty_dir && !s->npend) return 0;
    if (s->dur.policy == TBGW_FSYNC_INTERVAL && now - s->last_fsync_ms < s->dur.interval_ms) return 0;
    s->last_fsync_ms = now;
    if (s->dur.policy == TBGW_FSYNC_INTERVAL && s->syncer) {
        background_fsync(s);
        return 0;
    }
    return do_fsync(s);
}

static int64_t file_sync_due(tbgw_storage *bs) {
    file_storage *s = (file_storage *)bs;
    if (s->dur.policy != TBGW_FSYNC_INTERVAL) return INT64_MAX;
    if (!s->dirty_data && !s->dirty_state && !s->dirty_dir && !s->npend) return INT64_MAX;
    return s->last_fsync_ms + s->dur.interval_ms;
}

static void file_stats(tbgw_storage *bs, tbgw_storage_stats *out) {
    file_storage *s = (file_storage *)bs;
    *out = s->st;
    out->records = out->bytes = 0;
    out->disk_bytes = s->state_fd >= 0 ? 2 * TBGW_STATE_SLOT : 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        out->records += seg_uncommitted(s, &s->segs[i]);
        out->bytes += s->segs[i].live;
        out->disk_bytes += s->segs[i].size;
    }
}

static void file_close(tbgw_storage *bs) {
    file_storage *s = (file_storage *)bs;
    if (!s) return;
    tbgw_syncer_free(s->syncer); /* waits for a running round */
    for (int i = 0; i < s->npend; i++) {
        if (fdatasync(s->pend[i]) != 0) log_io_error(s, "fsync of segment", NULL, errno);
        close(s->pend[i]);
    }
    if (s->dur.policy != TBGW_FSYNC_NEVER) do_fsync(s);
    if (s->wfd >= 0) close(s->wfd);
    if (s->rfd >= 0) close(s->rfd);
    if (s->state_fd >= 0) close(s->state_fd);
    tbgw_frame_reader_free(&s->rdr);
    free(s->segs);
    free(s->dir);
    free(s);
}

const tbgw_storage_ops tbgw_storage_file_ops = {
    .type = "file",
    .open = file_open,
    .append = file_append,
    .peek = file_peek,
    .commit = file_commit,
    .rewind = file_rewind,
    .sync = file_sync,
    .sync_due = file_sync_due,
    .stats = file_stats,
    .close = file_close,
};
