/* FTP connector (docs/connectors/ftp.md): polls files on an FTP, FTPS or SFTP server with libcurl
 * (one easy handle, every transfer bounded by timeouts), converts what changed (FULL) or what was
 * appended (PARTIAL, remembered across restarts), and writes files for attribute updates and RPCs. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <curl/curl.h>
#include <pcre2.h>
#include <tbgw/connector.h>
#include <tbgw/connkit.h>

#include "connectors/ftp/ftp_internal.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/time.h"

/* What is remembered of one file (also in the state file, for PARTIAL across restarts). */
typedef struct fstate {
    char *path;
    long long mtime, size;
    long long offset;           /* PARTIAL: bytes already converted (complete lines only) */
    char *header;               /* PARTIAL tables: the header line */
    char tail[FTP_STREAM_TAIL]; /* PARTIAL: the bytes before offset, compared when resuming */
    size_t tail_len;
    struct fstate *next;
} fstate;

/* An attributeUpdates or serverSideRpc entry, its filters compiled (strings borrowed from cfg). */
typedef struct ftp_req {
    pcre2_code *device, *method; /* method: serverSideRpc only */
    const char *path, *expr, *mode;
} ftp_req;

typedef struct ftpc {
    const tbgw_host *h;
    json_t *cfg; /* the configuration in the new format */
    char base[600];
    const char *user, *pass, *key;
    int tls, sftp;
    ftp_path *paths;
    size_t n_paths;
    ftp_req *updates, *rpcs;
    size_t n_updates, n_rpcs;
    int64_t *next_poll;
    const char *ca, *hostkey; /* parameters.caCert, parameters.hostKeySha256 */
    int insecure;
    CURL *curl; /* polling transfers, run in multi */
    CURL *dl;   /* downlink transfers (attribute updates, RPC) */
    CURLM *multi;
    unsigned long long refused; /* batches the core refused (offered again) */
    fstate *files;
    char state_path[1024];
    volatile int stop;
} ftpc;

/* ---- configuration ---- */

static void fc_destroy(void *self) {
    ftpc *c = self;
    for (size_t i = 0; i < c->n_paths; i++) ftp_path_free(&c->paths[i]);
    free(c->paths);
    for (int t = 0; t < 2; t++) {
        ftp_req *v = t ? c->rpcs : c->updates;
        size_t n = t ? c->n_rpcs : c->n_updates;
        for (size_t i = 0; i < n; i++) {
            pcre2_code_free(v[i].device);
            pcre2_code_free(v[i].method);
        }
        free(v);
    }
    free(c->next_poll);
    while (c->files) {
        fstate *f = c->files;
        c->files = f->next;
        free(f->path);
        free(f->header);
        free(f);
    }
    json_decref(c->cfg);
    free(c);
}

static int path_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    (void)w, (void)index;
    ftpc *c = ud;
    if (ftp_path_parse(e, path, &c->paths[c->n_paths], err) != 0) {
        ftp_path_free(&c->paths[c->n_paths]);
        return -1;
    }
    c->n_paths++;
    return 0;
}

/* A regular expression matched against the whole text (Python's re.fullmatch). */
static pcre2_code *fullmatch_compile(const json_t *e, const char *path, const char *key, tbgw_err *err) {
    const char *text;
    if (tbgw_cfg_get_str(e, path, key, NULL, &text, err)) return NULL;
    if (!text) {
        tbgw_err_set(err, TBGW_EINVAL, "%s.%s: missing (a regular expression)", path, key);
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        tbgw_err_set(err, TBGW_EINVAL, "%s.%s: %s at character %zu", path, key, (const char *)msg,
                     (size_t)off);
    }
    return re;
}

static int req_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    (void)w, (void)index;
    ftpc *c = ud;
    int rpc = strstr(path, "serverSideRpc") != NULL;
    ftp_req q = {0};
    if (!(q.device = fullmatch_compile(e, path, "deviceNameFilter", err))) return -1;
    if (rpc && !(q.method = fullmatch_compile(e, path, "methodFilter", err))) goto bad;
    if (tbgw_cfg_get_str(e, path, "valueExpression", rpc ? "${params}" : NULL, &q.expr, err) ||
        tbgw_cfg_get_str(e, path, "path", NULL, &q.path, err) ||
        tbgw_cfg_get_str(e, path, "writingMode", "WRITE", &q.mode, err))
        goto bad;
    if (!rpc && (!q.path || !q.expr)) {
        tbgw_err_set(err, TBGW_EINVAL, "%s: expected \"path\" and \"valueExpression\" strings", path);
        goto bad;
    }
    ftp_req **v = rpc ? &c->rpcs : &c->updates;
    size_t *n = rpc ? &c->n_rpcs : &c->n_updates;
    ftp_req *g = realloc(*v, (*n + 1) * sizeof *g);
    if (!g) goto bad;
    *v = g;
    g[(*n)++] = q;
    return 0;
bad:
    pcre2_code_free(q.device);
    pcre2_code_free(q.method);
    return -1;
}

static int fc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    ftpc *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->h = h;
    c->cfg = ftp_config_upgrade(cfg); /* the old flat format: parameters at the top */
    const char *pp = json_object_get(cfg, "parameters") ? "parameters" : "";
    const json_t *par = json_object_get(c->cfg, "parameters"); /* owned by c->cfg */
    const char *host, *proto, *st = NULL;
    int64_t port;
    char sp[64];
    snprintf(sp, sizeof sp, "%s%ssecurity", pp, *pp ? "." : "");
    const json_t *sec = json_object_get(par, "security");
    if (tbgw_cfg_get_str(par, pp, "host", NULL, &host, err) ||
        tbgw_cfg_get_str(par, pp, "protocol", "ftp", &proto, err) ||
        tbgw_cfg_get_bool(par, pp, "TLSSupport", 0, &c->tls, err) ||
        tbgw_cfg_get_str(par, pp, "caCert", NULL, &c->ca, err) ||
        tbgw_cfg_get_bool(par, pp, "insecure", 0, &c->insecure, err) ||
        tbgw_cfg_get_str(par, pp, "hostKeySha256", NULL, &c->hostkey, err) ||
        tbgw_cfg_get_str(sec, sp, "type", "anonymous", &st, err) ||
        tbgw_cfg_get_str(sec, sp, "username", NULL, &c->user, err) ||
        tbgw_cfg_get_str(sec, sp, "password", NULL, &c->pass, err) ||
        tbgw_cfg_get_str(sec, sp, "privateKey", NULL, &c->key, err))
        goto fail;
    if (!host || !*host) {
        tbgw_err_set(err, TBGW_EINVAL, "%s%shost: expected the FTP server's name or address", pp,
                     *pp ? "." : "");
        goto fail;
    }
    c->sftp = strcasecmp(proto, "sftp") == 0;
    if (tbgw_cfg_get_int(par, pp, "port", c->sftp ? 22 : 21, 1, 65535, &port, err)) goto fail;
    snprintf(c->base, sizeof c->base, "%s://%s:%d/", c->sftp ? "sftp" : "ftp",
             strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, (int)port);
    if (strcmp(st, "basic") == 0) {
        c->key = NULL;
    } else if (strcmp(st, "key") == 0) {
        c->pass = NULL;
    } else {
        c->user = "anonymous";
        c->pass = "anonymous@";
        c->key = NULL;
    }
    size_t np = json_array_size(json_object_get(c->cfg, "paths"));
    c->paths = calloc(np ? np : 1, sizeof *c->paths);
    c->next_poll = calloc(np ? np : 1, sizeof *c->next_poll);
    if (!c->paths || !c->next_poll) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        goto fail;
    }
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
    if (tbgw_cfg_each(&w, c->cfg, "", "paths", path_entry, c) < 0) goto fail;
    const json_t *rm = json_object_get(c->cfg, "requestsMapping"); /* top-level keys in the old format */
    const char *rp = json_object_get(cfg, "requestsMapping") ? "requestsMapping" : "";
    if (tbgw_cfg_each(&w, rm, rp, "attributeUpdates", req_entry, c) < 0 ||
        tbgw_cfg_each(&w, rm, rp, "serverSideRpc", req_entry, c) < 0)
        goto fail;
    snprintf(c->state_path, sizeof c->state_path, "%s/ftp/%s.state.json", h->config_dir ? h->config_dir : ".",
             h->id ? h->id : h->name);
    *self = c;
    return 0;
fail:
    fc_destroy(c);
    return TBGW_EINVAL;
}

static void fc_stop(void *self) {
    ((ftpc *)self)->stop = 1;
}

/* ---- state ---- */

static fstate *file_state(ftpc *c, const char *path) {
    for (fstate *f = c->files; f; f = f->next)
        if (strcmp(f->path, path) == 0) return f;
    fstate *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->path = strdup(path);
    f->mtime = f->size = -1;
    f->next = c->files;
    c->files = f;
    return f;
}

static void state_load(ftpc *c) {
    json_error_t je;
    json_t *j = json_load_file(c->state_path, 0, &je);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(j, "files"), k, v) {
        fstate *f = file_state(c, k);
        if (!f) continue;
        f->mtime = json_integer_value(json_object_get(v, "mtime"));
        f->size = json_integer_value(json_object_get(v, "size"));
        f->offset = json_integer_value(json_object_get(v, "offset"));
        const char *hd = json_string_value(json_object_get(v, "header"));
        if (hd) f->header = strdup(hd);
        const char *tl = json_string_value(json_object_get(v, "tail")); /* hex */
        size_t tn = tl ? strlen(tl) / 2 : 0;
        for (size_t i = 0; i < tn && i < FTP_STREAM_TAIL; i++) {
            unsigned b;
            if (sscanf(tl + 2 * i, "%2x", &b) != 1) break;
            f->tail[f->tail_len++] = (char)b;
        }
    }
    json_decref(j);
}

/* Written to a temporary file and renamed, so a crash leaves the old or the new state. */
static void state_save(ftpc *c) {
    json_t *files = json_object();
    for (fstate *f = c->files; f; f = f->next) {
        char hex[2 * FTP_STREAM_TAIL + 1] = "";
        for (size_t i = 0; i < f->tail_len; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned char)f->tail[i]);
        json_object_set_new(files, f->path,
                            json_pack("{s:I,s:I,s:I,s:s?,s:s}", "mtime", (json_int_t)f->mtime, "size",
                                      (json_int_t)f->size, "offset", (json_int_t)f->offset, "header",
                                      f->header, "tail", hex));
    }
    json_t *j = json_pack("{s:o}", "files", files);
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", c->state_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    mkdir(dir, 0750);
    snprintf(tmp, sizeof tmp, "%s.tmp", c->state_path);
    if (json_dump_file(j, tmp, JSON_COMPACT) == 0) {
        FILE *fp = fopen(tmp, "r+");
        if (fp) {
            fflush(fp);
            fsync(fileno(fp));
            fclose(fp);
        }
        if (rename(tmp, c->state_path) != 0)
            TBGW_WARNF(c->h->log, "cannot write %s: %s", c->state_path, strerror(errno));
    }
    json_decref(j);
}

/* ---- transfers ----
 * Polling transfers run on c->curl inside c->multi, whose wait also watches the host's downlink
 * descriptor: attribute updates and RPCs are served while a file is being read (on their own handle,
 * c->dl, with blocking transfers bounded by the same timeouts). */

#define FTP_JSON_MAX (64LL * 1024 * 1024) /* a JSON file is converted as a whole: at most this much */
#define FTP_READ_MAX (16LL * 1024 * 1024) /* RPC reads and appended files are held in memory */
#define FTP_RETRY_MS 50                   /* a refused batch is offered again after this */
#define FTP_SAVE_MS  2000                 /* PARTIAL progress saved this often during a long read */

typedef struct capped {
    tbgw_buf b;
    long long limit;
    int over;
} capped;

static size_t to_capped(char *p, size_t sz, size_t n, void *ud) {
    capped *b = ud;
    if ((long long)(b->b.len + sz * n) > b->limit) {
        b->over = 1;
        return 0;
    }
    tbgw_buf_append(&b->b, p, sz * n);
    return b->b.oom ? 0 : sz * n;
}

typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t from_buf(char *out, size_t sz, size_t n, void *ud) {
    upload *u = ud;
    size_t k = sz * n < u->left ? sz * n : u->left;
    memcpy(out, u->p, k);
    u->p += k;
    u->left -= k;
    return k;
}

static void prepare(ftpc *c, CURL *h, const char *rel) {
    curl_easy_reset(h);
    char url[1500];
    snprintf(url, sizeof url, "%s%s", c->base, rel);
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (c->user) curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
    if (c->pass) curl_easy_setopt(h, CURLOPT_PASSWORD, c->pass);
    if (c->key) {
        curl_easy_setopt(h, CURLOPT_SSH_PRIVATE_KEYFILE, c->key);
        curl_easy_setopt(h, CURLOPT_SSH_AUTH_TYPES, (long)CURLSSH_AUTH_PUBLICKEY);
    }
    if (c->tls) {
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (c->ca) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
        if (c->insecure) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
    if (c->sftp && c->hostkey) curl_easy_setopt(h, CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, c->hostkey);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 15L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FTP_CREATE_MISSING_DIRS, (long)CURLFTP_CREATE_DIR);
}

/* What a streamed read of one file needs in its write callback and in run_multi. */
typedef struct reading {
    ftpc *c;
    const char *rel;
    fstate *f;
    long long from;     /* the file offset the stream starts at */
    long long skip;     /* bytes to drop first (a server that cannot resume) */
    const char *expect; /* resumed early: these bytes (the end of what was read before) come first */
    size_t expect_len, expect_pos;
    int replaced;  /* it was not: the file was replaced */
    int json;      /* buffered whole */
    capped whole;  /* json */
    ftp_stream st; /* txt, csv */
    int paused;    /* a batch was refused: the transfer waits until retry_at */
    int64_t retry_at, saved_at;
    unsigned long long bytes;
} reading;

static void progress_save(reading *x);

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    reading *x = ud;
    size_t len = sz * n, k = len;
    if (x->paused) return CURL_WRITEFUNC_PAUSE; /* delivered again once resumed */
    x->bytes += len;
    const char *d = p;
    if (x->skip) {
        size_t s = (long long)k < x->skip ? k : (size_t)x->skip;
        d += s, k -= s, x->skip -= (long long)s;
    }
    if (x->expect_pos < x->expect_len && k) {
        size_t m = x->expect_len - x->expect_pos < k ? x->expect_len - x->expect_pos : k;
        if (memcmp(d, x->expect + x->expect_pos, m) != 0) {
            x->replaced = 1;
            return 0;
        }
        x->expect_pos += m;
        d += m, k -= m;
    }
    if (x->json) return to_capped((char *)d, 1, k, &x->whole) == k ? len : 0;
    int rc = ftp_stream_feed(&x->st, d, k);
    if (rc == TBGW_ENOMEM) return 0;
    if (rc == TBGW_EAGAIN) {
        x->paused = 1;
        x->retry_at = tbgw_mono_ms() + FTP_RETRY_MS;
    }
    if (x->f && tbgw_mono_ms() - x->saved_at >= FTP_SAVE_MS) progress_save(x);
    return len;
}

/* Waits up to ms (-1: no limit) on the downlink descriptor and dispatches what is queued. 1 = stop. */
static int downlink_wait(ftpc *c, int ms) {
    if (c->h->downlink_fd < 0) return c->h->wait(c->h, ms < 0 || ms > 200 ? 200 : ms);
    struct pollfd pfd = {.fd = c->h->downlink_fd, .events = POLLIN};
    int n = poll(&pfd, 1, ms);
    if (n > 0 && (pfd.revents & POLLIN)) return c->h->dispatch(c->h);
    return 0;
}

/* A transfer on the polling handle: curl multi waiting on its sockets and the downlink descriptor. */
static CURLcode run_multi(ftpc *c, reading *x) {
    CURLcode res = CURLE_OK;
    if (curl_multi_add_handle(c->multi, c->curl) != CURLM_OK) return CURLE_FAILED_INIT;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            res = CURLE_FAILED_INIT;
            break;
        }
        if (!running) {
            int left;
            CURLMsg *m;
            while ((m = curl_multi_info_read(c->multi, &left)))
                if (m->msg == CURLMSG_DONE && m->easy_handle == c->curl) res = m->data.result;
            break;
        }
        int timeout = 1000;
        if (x && x->paused) {
            int64_t wait = x->retry_at - tbgw_mono_ms();
            timeout = wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
        }
        struct curl_waitfd extra = {.fd = c->h->downlink_fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(c->multi, &extra, c->h->downlink_fd >= 0, timeout, NULL);
        if ((c->h->downlink_fd < 0 || (extra.revents & CURL_WAIT_POLLIN)) &&
            (c->h->downlink_fd < 0 ? c->h->wait(c->h, 0) : c->h->dispatch(c->h))) {
            c->stop = 1;
        }
        if (c->stop) {
            res = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if (x && x->paused && tbgw_mono_ms() >= x->retry_at) {
            if (ftp_stream_flush(&x->st, 0) == TBGW_EAGAIN) {
                x->retry_at = tbgw_mono_ms() + FTP_RETRY_MS;
            } else {
                x->paused = 0;
                curl_easy_pause(c->curl, CURLPAUSE_CONT);
            }
        }
    }
    curl_multi_remove_handle(c->multi, c->curl);
    return res;
}

static int perform(ftpc *c, CURL *h, const char *what, const char *rel) {
    CURLcode rc = h == c->curl ? run_multi(c, NULL) : curl_easy_perform(h);
    if (rc == CURLE_OK) return 0;
    TBGW_DEBUGF(c->h->log, "%s %s: %s", what, rel, curl_easy_strerror(rc));
    return -1;
}

/* Names in a folder (NLST), into out as a JSON array of strings. */
static json_t *list_dir(ftpc *c, CURL *h, const char *dir) {
    capped b = {.limit = FTP_READ_MAX};
    tbgw_buf_init(&b.b);
    char rel[1024];
    snprintf(rel, sizeof rel, "%s%s", dir, *dir ? "/" : "");
    prepare(c, h, rel);
    curl_easy_setopt(h, CURLOPT_DIRLISTONLY, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_capped);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    json_t *out = json_array();
    if (perform(c, h, "list", rel) == 0) {
        char *save = NULL;
        for (char *l = strtok_r(b.b.p ? b.b.p : (char *)"", "\r\n", &save); l;
             l = strtok_r(NULL, "\r\n", &save)) {
            const char *base = strrchr(l, '/');
            base = base ? base + 1 : l;
            if (strcmp(base, ".") && strcmp(base, "..")) json_array_append_new(out, json_string(base));
        }
    }
    tbgw_buf_free(&b.b);
    return out;
}

/* Expands a pattern with '*' components into the files it names. */
static void expand(ftpc *c, CURL *h, const char *prefix, const char *rest, json_t *out) {
    const char *slash = strchr(rest, '/');
    char comp[512];
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n >= sizeof comp) return;
    memcpy(comp, rest, n);
    comp[n] = 0;
    char next[1024];
    if (!strchr(comp, '*')) {
        snprintf(next, sizeof next, "%s%s%s", prefix, *prefix ? "/" : "", comp);
        if (slash)
            expand(c, h, next, slash + 1, out);
        else
            json_array_append_new(out, json_string(next));
        return;
    }
    json_t *names = list_dir(c, h, prefix);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        const char *name = json_string_value(v);
        if (!ftp_glob_match(comp, name)) continue;
        snprintf(next, sizeof next, "%s%s%s", prefix, *prefix ? "/" : "", name);
        if (slash)
            expand(c, h, next, slash + 1, out);
        else
            json_array_append_new(out, json_string(next));
    }
    json_decref(names);
}

/* curl hands the MDTM/SIZE answers of a NOBODY request over as header-like text. */
static size_t discard(char *p, size_t sz, size_t n, void *ud) {
    (void)p, (void)ud;
    return sz * n;
}

/* MDTM and SIZE of a file: 0, or -1 when it does not exist or the server does not tell. */
static int file_info(ftpc *c, const char *rel, long long *mtime, long long *size) {
    prepare(c, c->curl, rel);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_FILETIME, 1L);
    if (perform(c, c->curl, "stat", rel) != 0) return -1;
    curl_off_t t = -1, s = -1;
    curl_easy_getinfo(c->curl, CURLINFO_FILETIME_T, &t);
    curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &s);
    *mtime = (long long)t;
    *size = (long long)s;
    return s < 0 ? -1 : 0;
}

/* A whole file into memory (RPC reads, appends), on the downlink handle. */
static int download_small(ftpc *c, const char *rel, capped *out) {
    out->limit = FTP_READ_MAX;
    prepare(c, c->dl, rel);
    curl_easy_setopt(c->dl, CURLOPT_WRITEFUNCTION, to_capped);
    curl_easy_setopt(c->dl, CURLOPT_WRITEDATA, out);
    int rc = perform(c, c->dl, "download", rel);
    if (out->over)
        TBGW_ERRORF(c->h->log, "%s: larger than %lld MiB, not read into memory", rel, FTP_READ_MAX >> 20);
    return rc;
}

static int upload_text(ftpc *c, const char *rel, const char *text) {
    prepare(c, c->dl, rel);
    upload u = {text, strlen(text)};
    curl_easy_setopt(c->dl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c->dl, CURLOPT_READFUNCTION, from_buf);
    curl_easy_setopt(c->dl, CURLOPT_READDATA, &u);
    curl_easy_setopt(c->dl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u.left);
    return perform(c, c->dl, "upload", rel);
}

/* ---- polling ---- */

static int emit_batch(void *ud, tbgw_converted *chain) {
    ftpc *c = ud;
    /* offer: a refused batch comes back, is freed here and converted again from the same lines
     * later, so it is neither lost nor counted as dropped */
    int rc = c->h->offer ? c->h->offer(c->h, chain) : c->h->emit(c->h, chain);
    if (rc == TBGW_EAGAIN) {
        if (c->h->offer) tbgw_converted_free(chain);
        if (c->refused++ % 100 == 0)
            TBGW_WARNF(c->h->log, "core saturated: a batch was refused (%llu so far); the read waits",
                       (unsigned long long)c->refused);
        return rc;
    }
    return 0;
}

/* PARTIAL: the position after the lines converted so far (and the header) into the state file. */
static void progress_save(reading *x) {
    fstate *f = x->f;
    f->offset = x->from + x->st.consumed;
    memcpy(f->tail, x->st.tail, x->st.tail_len);
    f->tail_len = x->st.tail_len;
    if (x->st.header && (!f->header || strcmp(f->header, x->st.header) != 0)) {
        free(f->header);
        f->header = strdup(x->st.header);
    }
    x->saved_at = tbgw_mono_ms();
    state_save(x->c);
}

static void report_long_lines(ftpc *c, reading *x, unsigned long long before) {
    if (x->json || x->st.long_lines == before) return;
    unsigned long long n = x->st.long_lines - before;
    c->h->stat_add(c->h, TBGW_STAT_CONVERTER_ERRORS, n);
    TBGW_ERRORF(c->h->log, "%s: %llu line(s) longer than %d MiB skipped (the last at byte %lld)", x->rel, n,
                FTP_STREAM_MAX_LINE >> 20, x->from + x->st.long_at);
}

/* One read of rel from offset from (PARTIAL) or whole: 0 when complete, 1 when the file turned out
 * to be replaced (read it again from the start), -1 when the transfer failed. */
static int read_file(ftpc *c, const ftp_path *p, const char *rel, fstate *f, char kind, int partial,
                     long long from) {
    reading x = {.c = c, .rel = rel, .f = partial ? f : NULL, .from = from, .saved_at = tbgw_mono_ms()};
    x.json = kind == 'j';
    tbgw_buf_init(&x.whole.b);
    x.whole.limit = p->max_bytes < FTP_JSON_MAX ? p->max_bytes : FTP_JSON_MAX;
    if (!x.json) {
        ftp_stream_init(&x.st, p, kind, !partial, from == 0, from ? f->header : NULL, emit_batch, c);
        if (from) {
            memcpy(x.st.tail, f->tail, f->tail_len);
            x.st.tail_len = f->tail_len;
        }
    }
    /* resumed a little early: the bytes before the position must be those read before (a state file
     * without them: the '\n' that ended the last line) */
    x.expect = from && f->tail_len ? f->tail : "\n";
    x.expect_len = !from ? 0 : f->tail_len ? f->tail_len : 1;
    if ((long long)x.expect_len > from) x.expect_len = (size_t)from;
    long long start = from - (long long)x.expect_len;
    CURLcode rc;
    for (int attempt = 0;; attempt++) {
        x.expect_pos = 0;
        prepare(c, c->curl, rel);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &x);
        if (start && !x.skip) curl_easy_setopt(c->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)start);
        rc = run_multi(c, &x);
        if (attempt == 0 && start && x.bytes == 0 &&
            (rc == CURLE_FTP_COULDNT_USE_REST || rc == CURLE_BAD_DOWNLOAD_RESUME ||
             rc == CURLE_RANGE_ERROR)) {
            TBGW_INFOF(c->h->log,
                       "%s: the server cannot resume (%s); reading from the start and skipping %lld "
                       "bytes",
                       rel, curl_easy_strerror(rc), start);
            x.skip = start; /* again from 0, dropping what was read before */
            continue;
        }
        break;
    }
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, x.bytes);
    int out = rc == CURLE_OK ? 0 : -1;
    if (x.replaced) {
        TBGW_INFOF(c->h->log,
                   "%s: the file was replaced (its content before byte %lld changed); reading it "
                   "from the start",
                   rel, from);
        out = 1;
    } else if (x.json) {
        if (x.whole.over)
            TBGW_ERRORF(c->h->log,
                        "%s: a JSON file is converted as a whole, and this one is over %lld bytes "
                        "(maxFileSize, at most %lld MiB); not converted",
                        rel, x.whole.limit, FTP_JSON_MAX >> 20);
        else if (rc == CURLE_OK) {
            json_error_t je;
            tbgw_converted *chain = ftp_convert_json(p, x.whole.b.p ? x.whole.b.p : "", x.whole.b.len, &je);
            if (je.text[0]) {
                c->h->stat_add(c->h, TBGW_STAT_CONVERTER_ERRORS, 1);
                TBGW_ERRORF(c->h->log, "%s:%d:%d: not JSON: %s", rel, je.line, je.column, je.text);
            }
            size_t n = 0;
            for (const tbgw_converted *r = chain; r; r = r->next) n++;
            c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, n);
            if (chain) emit_batch(c, chain); /* one document, one hand-over */
        }
    } else if (!c->stop) {
        /* what arrived complete is converted even when the transfer broke off; a refused batch waits */
        unsigned long long before = x.st.long_lines;
        while (ftp_stream_flush(&x.st, rc == CURLE_OK) == TBGW_EAGAIN)
            if (downlink_wait(c, FTP_RETRY_MS)) {
                c->stop = 1;
                break;
            }
        report_long_lines(c, &x, before);
    }
    if (!x.json && out != 1) {
        if (partial)
            progress_save(&x);
        else if (x.st.long_lines)
            report_long_lines(c, &x, 0);
    }
    if (!x.json) {
        c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, x.st.rows);
        ftp_stream_free(&x.st);
    }
    tbgw_buf_free(&x.whole.b);
    return out;
}

static void poll_file(ftpc *c, const ftp_path *p, const char *rel) {
    long long mtime, size;
    if (file_info(c, rel, &mtime, &size) != 0) return;
    fstate *f = file_state(c, rel);
    if (!f || (f->mtime == mtime && f->size == size)) return; /* unchanged: not sent again */
    if (size >= p->max_bytes) {
        TBGW_WARNF(c->h->log, "%s: %lld bytes, at or over maxFileSize; skipped", rel, size);
        return;
    }
    char kind = ftp_file_kind(rel);
    int partial = p->mode == FTP_PARTIAL && kind != 'j';
    if (partial && size < f->offset) {
        TBGW_INFOF(c->h->log, "%s: shorter (%lld bytes) than what was read (%lld); reading it from the start",
                   rel, size, f->offset);
        f->offset = 0;
    }
    if (partial && f->offset == 0) {
        free(f->header);
        f->header = NULL;
        f->tail_len = 0;
    }
    int rc = partial && size == f->offset && size > 0
                 ? 0 /* touched, nothing appended */
                 : read_file(c, p, rel, f, kind, partial, partial ? f->offset : 0);
    if (rc == 1) { /* replaced */
        f->offset = 0;
        free(f->header);
        f->header = NULL;
        rc = read_file(c, p, rel, f, kind, partial, 0);
    }
    if (rc != 0) return; /* retried at the next poll (PARTIAL from what was converted) */
    f->mtime = mtime;
    f->size = size;
    if (partial) state_save(c);
}
typedef struct ranked {
    const char *path;
    long long mtime;
} ranked;

static int by_mtime_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->mtime != y->mtime) return x->mtime < y->mtime ? 1 : -1;
    return -strcmp(x->path, y->path);
}

static void poll_path(ftpc *c, const ftp_path *p) {
    json_t *files = json_array();
    expand(c, c->curl, "", p->pattern, files);
    size_t n = json_array_size(files);
    ranked *r = calloc(n ? n : 1, sizeof *r);
    for (size_t i = 0; r && i < n && !c->stop; i++) {
        r[i].path = json_string_value(json_array_get(files, i));
        long long size;
        if (p->sorting && file_info(c, r[i].path, &r[i].mtime, &size) != 0) r[i].mtime = -1;
    }
    if (r && p->sorting) qsort(r, n, sizeof *r, by_mtime_desc);
    for (size_t i = 0; r && i < n && !c->stop; i++) poll_file(c, p, r[i].path);
    free(r);
    json_decref(files);
}

/* Polls each path when it is due and otherwise sleeps on the downlink descriptor until the next one
 * is (no periodic wake-up of its own). */
static int fc_run(void *self) {
    ftpc *c = self;
    c->curl = curl_easy_init();
    c->dl = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->curl || !c->dl || !c->multi) {
        curl_easy_cleanup(c->curl);
        curl_easy_cleanup(c->dl);
        curl_multi_cleanup(c->multi);
        c->curl = c->dl = NULL;
        c->multi = NULL;
        return TBGW_ENOMEM;
    }
    state_load(c);
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    while (!c->stop) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < c->n_paths && !c->stop; i++) {
            int64_t now = tbgw_mono_ms();
            if (now >= c->next_poll[i]) {
                c->next_poll[i] = now + (int64_t)c->paths[i].poll_s * 1000;
                poll_path(c, &c->paths[i]);
            }
            if (c->next_poll[i] < next) next = c->next_poll[i];
        }
        if (c->stop) break;
        int64_t left = next == INT64_MAX ? -1 : next - tbgw_mono_ms();
        if (left < -1) left = 0;
        if (downlink_wait(c, left > 3600000 ? 3600000 : (int)left)) break;
    }
    curl_multi_cleanup(c->multi);
    curl_easy_cleanup(c->curl);
    curl_easy_cleanup(c->dl);
    c->curl = c->dl = NULL;
    c->multi = NULL;
    return 0;
}

/* ---- downlink ---- */

static int full_match(const pcre2_code *re, const char *s) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    return rc >= 0;
}

static void replace_all(tbgw_buf *out, const char *in, const char *pat, const char *rep) {
    size_t pl = strlen(pat);
    for (const char *p = in; *p;) {
        if (strncmp(p, pat, pl) == 0) {
            tbgw_buf_puts(out, rep);
            p += pl;
        } else {
            tbgw_buf_putc(out, *p++);
        }
    }
}

/* Writes value to the file at rel: JSON files are replaced by the (validated) JSON; others replaced
 * (OVERRIDE) or appended to as a new line. */
static int write_file(ftpc *c, const char *rel, const char *value, int override) {
    if (ftp_file_kind(rel) == 'j') {
        tbgw_buf j;
        tbgw_buf_init(&j);
        replace_all(&j, value, "'", "\"");
        json_error_t je;
        json_t *v = tbgw_json_loads(tbgw_buf_cstr(&j), JSON_DECODE_ANY, &je);
        int rc = v ? upload_text(c, rel, tbgw_buf_cstr(&j)) : -1;
        if (!v) TBGW_ERRORF(c->h->log, "%s: the value is not JSON (%s); not written", rel, je.text);
        json_decref(v);
        tbgw_buf_free(&j);
        return rc;
    }
    if (override) return upload_text(c, rel, value);
    capped b = {0};
    tbgw_buf_init(&b.b);
    download_small(c, rel, &b); /* a missing file starts empty */
    if (b.b.len) tbgw_buf_putc(&b.b, '\n');
    tbgw_buf_puts(&b.b, value);
    int rc = b.over || b.b.oom ? -1 : upload_text(c, rel, tbgw_buf_cstr(&b.b));
    tbgw_buf_free(&b.b);
    return rc;
}

static int fc_attr_update(void *self, const tbgw_attr_update *u) {
    ftpc *c = self;
    const char *key = NULL;
    const json_t *val = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)u->data, k, v) key = k,
                                                 val = v; /* the last updated key, as the reference */
    if (!key) return 0;
    char sval[2048];
    if (json_is_string(val))
        snprintf(sval, sizeof sval, "%s", json_string_value(val));
    else {
        char *t = val ? tbgw_json_dumps(val, 0) : NULL;
        snprintf(sval, sizeof sval, "%s", t ? t : "");
        free(t);
    }
    for (size_t i = 0; i < c->n_updates; i++) {
        const ftp_req *e = &c->updates[i];
        const char *path = e->path, *expr = e->expr;
        if (!full_match(e->device, u->device)) continue;
        tbgw_buf p1, p2, e1, e2;
        tbgw_buf_init(&p1), tbgw_buf_init(&p2), tbgw_buf_init(&e1), tbgw_buf_init(&e2);
        replace_all(&p1, path, "${attributeKey}", key);
        replace_all(&p2, tbgw_buf_cstr(&p1), "${attributeValue}", sval);
        replace_all(&e1, expr, "${attributeKey}", key);
        replace_all(&e2, tbgw_buf_cstr(&e1), "${attributeValue}", sval);
        const char *mode = e->mode;
        json_t *files = json_array();
        expand(c, c->dl, "", tbgw_buf_cstr(&p2), files);
        size_t j;
        json_t *fv;
        json_array_foreach(files, j, fv) {
            if (write_file(c, json_string_value(fv), tbgw_buf_cstr(&e2),
                           mode && strcmp(mode, "OVERRIDE") == 0) != 0)
                TBGW_ERRORF(c->h->log, "attribute update %s: cannot write %s", key, json_string_value(fv));
        }
        json_decref(files);
        tbgw_buf_free(&p1), tbgw_buf_free(&p2), tbgw_buf_free(&e1), tbgw_buf_free(&e2);
    }
    return 0;
}

static int do_read(ftpc *c, const tbgw_rpc_req *r, const char *path) {
    capped b = {0};
    tbgw_buf_init(&b.b);
    int rc = download_small(c, path, &b);
    json_t *content = rc == 0 ? json_stringn(b.b.p ? b.b.p : "", b.b.len) : NULL;
    tbgw_buf_free(&b.b);
    if (rc != 0)
        return tbgw_rpc_error(c->h, r->handle, "cannot read %s%s", path, b.over ? " (too large)" : "");
    if (!content) return tbgw_rpc_error(c->h, r->handle, "%s is not UTF-8 text", path);
    return tbgw_rpc_result(c->h, r->handle, content);
}

static int do_write(ftpc *c, const tbgw_rpc_req *r, const char *path, const char *value) {
    if (write_file(c, path, value, 1) != 0) return tbgw_rpc_error(c->h, r->handle, "cannot write %s", path);
    json_t *content = strlen(value) < 80 ? json_pack("{s:{s:s}}", "result", "value", value)
                                         : json_pack("{s:b}", "result", 1);
    return c->h->rpc_reply(c->h, r->handle, content, 1);
}

/* "path;value" with quotes around either stripped. */
static void path_value(const char *s, char *path, size_t pn, char *value, size_t vn) {
    const char *semi = strchr(s, ';');
    size_t l = semi ? (size_t)(semi - s) : strlen(s);
    snprintf(path, pn, "%.*s", (int)l, s);
    snprintf(value, vn, "%s", semi ? semi + 1 : "");
    for (char *x = path; *x; x++)
        if (*x == '"' || *x == '\'') memmove(x, x + 1, strlen(x)), x--;
    for (char *x = value; *x; x++)
        if (*x == '"' || *x == '\'') memmove(x, x + 1, strlen(x)), x--;
}

static int fc_rpc(void *self, const tbgw_rpc_req *r) {
    ftpc *c = self;
    char path[1024], value[4096];
    const char *ps = json_string_value(r->params);
    if (!r->device) { /* ftp_read / ftp_write */
        const char *ve = json_string_value(json_object_get(r->params, "valueExpression"));
        if (!ve) ve = ps;
        if (!ve)
            return tbgw_rpc_error(c->h, r->handle, "%s: expected params {\"valueExpression\": ...}",
                                  r->method);
        if (strcmp(r->method, "read") == 0) return do_read(c, r, ve);
        if (strcmp(r->method, "write") == 0) {
            path_value(ve, path, sizeof path, value, sizeof value);
            return do_write(c, r, path, value);
        }
        return tbgw_rpc_error(c->h, r->handle, "unknown method %s (read or write)", r->method);
    }
    if (strcmp(r->method, "get") == 0 || strcmp(r->method, "set") == 0) {
        tbgw_params kv = {0};
        tbgw_err err;
        const char *fp = ps && tbgw_params_parse(ps, TBGW_PARAMS_LENIENT, &kv, &err) == 0
                             ? tbgw_params_get(&kv, "filePath")
                             : NULL;
        const char *val = tbgw_params_get(&kv, "value");
        int rc;
        if (!fp)
            rc = tbgw_rpc_error(c->h, r->handle, "expected params \"filePath=<path>;\"");
        else if (strcmp(r->method, "get") == 0)
            rc = do_read(c, r, fp);
        else if (!val)
            rc = tbgw_rpc_error(c->h, r->handle, "expected params \"filePath=<path>;value=<value>;\"");
        else
            rc = do_write(c, r, fp, val);
        tbgw_params_free(&kv);
        return rc;
    }
    for (size_t i = 0; i < c->n_rpcs; i++) {
        const ftp_req *e = &c->rpcs[i];
        if (!full_match(e->device, r->device) || !full_match(e->method, r->method)) continue;
        /* ${params}: the request's params (as text) */
        char *pt = ps || !r->params ? NULL : tbgw_json_dumps(r->params, 0);
        const char *params = ps ? ps : pt ? pt : "";
        tbgw_buf ve;
        tbgw_buf_init(&ve);
        replace_all(&ve, e->expr, "${params}", params);
        free(pt);
        int rc;
        if (strcmp(r->method, "write") == 0) {
            path_value(tbgw_buf_cstr(&ve), path, sizeof path, value, sizeof value);
            rc = do_write(c, r, path, value);
        } else {
            rc = do_read(c, r, tbgw_buf_cstr(&ve));
        }
        tbgw_buf_free(&ve);
        return rc;
    }
    return tbgw_rpc_error(c->h, r->handle, "no serverSideRpc entry for method %s", r->method);
}

const tbgw_connector_ops tbgw_connector_ftp = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "ftp",
    .create = fc_create,
    .run = fc_run,
    .stop = fc_stop,
    .destroy = fc_destroy,
    .on_attribute_update = fc_attr_update,
    .on_rpc = fc_rpc,
};
