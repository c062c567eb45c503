/* FTP connector (docs/connectors/ftp.md): polls files on an FTP, FTPS or SFTP server with libcurl
 * (one easy handle, every transfer bounded by timeouts), converts what changed (FULL) or what was
 * appended (PARTIAL, remembered across restarts), and writes files for attribute updates and RPCs. */
#include <errno.h>
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
    long long offset; /* PARTIAL: bytes already converted (complete lines only) */
    char *header;     /* PARTIAL tables: the header line */
    struct fstate *next;
} fstate;

typedef struct ftpc {
    const tbgw_host *h;
    json_t *cfg; /* the configuration in the new format */
    char base[600];
    const char *user, *pass, *key;
    int tls, sftp;
    ftp_path *paths;
    size_t n_paths;
    int64_t *next_poll;
    CURL *curl;
    fstate *files;
    char state_path[1024];
    volatile int stop;
} ftpc;

/* ---- configuration ---- */

static void fc_destroy(void *self) {
    ftpc *c = self;
    for (size_t i = 0; i < c->n_paths; i++) ftp_path_free(&c->paths[i]);
    free(c->paths);
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

static int fc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    json_t *n = ftp_config_upgrade(cfg);
    const json_t *par = json_object_get(n, "parameters");
    const char *host = json_string_value(json_object_get(par, "host"));
    if (!host || !*host) {
        json_decref(n);
        return tbgw_err_set(err, TBGW_EINVAL, "host: expected the FTP server's name or address");
    }
    ftpc *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(n);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    c->h = h;
    c->cfg = n;
    const char *proto = json_string_value(json_object_get(par, "protocol"));
    c->sftp = proto && strcasecmp(proto, "sftp") == 0;
    c->tls = json_is_true(json_object_get(par, "TLSSupport"));
    const json_t *port = json_object_get(par, "port");
    int p = json_is_integer(port) ? (int)json_integer_value(port) : c->sftp ? 22 : 21;
    snprintf(c->base, sizeof c->base, "%s://%s:%d/", c->sftp ? "sftp" : "ftp",
             strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, p);
    const json_t *sec = json_object_get(par, "security");
    const char *st = json_string_value(json_object_get(sec, "type"));
    if (st && strcmp(st, "basic") == 0) {
        c->user = json_string_value(json_object_get(sec, "username"));
        c->pass = json_string_value(json_object_get(sec, "password"));
    } else if (st && strcmp(st, "key") == 0) {
        c->user = json_string_value(json_object_get(sec, "username"));
        c->key = json_string_value(json_object_get(sec, "privateKey"));
    } else {
        c->user = "anonymous";
        c->pass = "anonymous@";
    }
    const json_t *paths = json_object_get(n, "paths");
    c->paths = calloc(json_array_size(paths) ? json_array_size(paths) : 1, sizeof *c->paths);
    c->next_poll = calloc(json_array_size(paths) ? json_array_size(paths) : 1, sizeof *c->next_poll);
    size_t i;
    const json_t *e;
    json_array_foreach(paths, i, e) {
        char path[48];
        snprintf(path, sizeof path, "paths[%zu]", i);
        tbgw_err perr = {0};
        if (ftp_path_parse(e, path, &c->paths[c->n_paths], &perr) != 0) {
            TBGW_ERRORF(h->log, "%s; path skipped", perr.msg);
            ftp_path_free(&c->paths[c->n_paths]);
            continue;
        }
        c->n_paths++;
    }
    snprintf(c->state_path, sizeof c->state_path, "%s/ftp/%s.state.json", h->config_dir ? h->config_dir : ".",
             h->id ? h->id : h->name);
    *self = c;
    return 0;
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
    }
    json_decref(j);
}

/* Written to a temporary file and renamed, so a crash leaves the old or the new state. */
static void state_save(ftpc *c) {
    json_t *files = json_object();
    for (fstate *f = c->files; f; f = f->next)
        json_object_set_new(files, f->path,
                            json_pack("{s:I,s:I,s:I,s:s?}", "mtime", (json_int_t)f->mtime, "size",
                                      (json_int_t)f->size, "offset", (json_int_t)f->offset, "header",
                                      f->header));
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

/* ---- transfers ---- */

static size_t to_buf(char *p, size_t sz, size_t n, void *ud) {
    tbgw_buf *b = ud;
    tbgw_buf_append(b, p, sz * n);
    return b->oom ? 0 : sz * n;
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

static void prepare(ftpc *c, const char *rel) {
    CURL *h = c->curl;
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
        const char *ca = json_string_value(json_object_get(json_object_get(c->cfg, "parameters"), "caCert"));
        if (ca) curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        if (json_is_true(json_object_get(json_object_get(c->cfg, "parameters"), "insecure"))) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
    }
    const char *hk =
        json_string_value(json_object_get(json_object_get(c->cfg, "parameters"), "hostKeySha256"));
    if (c->sftp && hk) curl_easy_setopt(h, CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, hk);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 15L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FTP_CREATE_MISSING_DIRS, (long)CURLFTP_CREATE_DIR);
}

static int perform(ftpc *c, const char *what, const char *rel) {
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc == CURLE_OK) return 0;
    TBGW_DEBUGF(c->h->log, "%s %s: %s", what, rel, curl_easy_strerror(rc));
    return -1;
}

/* Names in a folder (NLST), into out as a JSON array of strings. */
static json_t *list_dir(ftpc *c, const char *dir) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    char rel[1024];
    snprintf(rel, sizeof rel, "%s%s", dir, *dir ? "/" : "");
    prepare(c, rel);
    curl_easy_setopt(c->curl, CURLOPT_DIRLISTONLY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
    json_t *out = json_array();
    if (perform(c, "list", rel) == 0) {
        char *save = NULL;
        for (char *l = strtok_r(b.p ? b.p : (char *)"", "\r\n", &save); l;
             l = strtok_r(NULL, "\r\n", &save)) {
            const char *base = strrchr(l, '/');
            base = base ? base + 1 : l;
            if (strcmp(base, ".") && strcmp(base, "..")) json_array_append_new(out, json_string(base));
        }
    }
    tbgw_buf_free(&b);
    return out;
}

/* Expands a pattern with '*' components into the files it names. */
static void expand(ftpc *c, const char *prefix, const char *rest, json_t *out) {
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
            expand(c, next, slash + 1, out);
        else
            json_array_append_new(out, json_string(next));
        return;
    }
    json_t *names = list_dir(c, prefix);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        const char *name = json_string_value(v);
        if (!ftp_glob_match(comp, name)) continue;
        snprintf(next, sizeof next, "%s%s%s", prefix, *prefix ? "/" : "", name);
        if (slash)
            expand(c, next, slash + 1, out);
        else
            json_array_append_new(out, json_string(next));
    }
    json_decref(names);
}

/* MDTM and SIZE of a file: 0, or -1 when it does not exist or the server does not tell. */
static int file_info(ftpc *c, const char *rel, long long *mtime, long long *size) {
    prepare(c, rel);
    curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_FILETIME, 1L);
    if (perform(c, "stat", rel) != 0) return -1;
    curl_off_t t = -1, s = -1;
    curl_easy_getinfo(c->curl, CURLINFO_FILETIME_T, &t);
    curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &s);
    *mtime = (long long)t;
    *size = (long long)s;
    return s < 0 ? -1 : 0;
}

static int download(ftpc *c, const char *rel, long long from, tbgw_buf *out) {
    prepare(c, rel);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, out);
    if (from > 0) curl_easy_setopt(c->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)from);
    return perform(c, "download", rel);
}

static int upload_text(ftpc *c, const char *rel, const char *text) {
    prepare(c, rel);
    upload u = {text, strlen(text)};
    curl_easy_setopt(c->curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, from_buf);
    curl_easy_setopt(c->curl, CURLOPT_READDATA, &u);
    curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u.left);
    return perform(c, "upload", rel);
}

/* ---- polling ---- */

static void emit_chain(ftpc *c, tbgw_converted *chain) {
    if (!chain) return;
    c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, tbgw_converted_count(chain));
    c->h->emit(c->h, chain);
}

/* Splits text into lines (without '\n' or a trailing '\r'); *complete: bytes up to the last '\n'. */
static char **split_lines(char *text, size_t len, size_t *n, size_t *complete) {
    size_t cap = 64, cnt = 0;
    char **lines = malloc(cap * sizeof *lines);
    *complete = 0;
    char *p = text, *end = text + len;
    while (lines && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        *nl = 0;
        if (nl > p && nl[-1] == '\r') nl[-1] = 0;
        if (cnt == cap) {
            char **g = realloc(lines, (cap *= 2) * sizeof *g);
            if (!g) break;
            lines = g;
        }
        lines[cnt++] = p;
        p = nl + 1;
        *complete = (size_t)(p - text);
    }
    *n = cnt;
    return lines;
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
    long long from = partial && size >= f->offset ? f->offset : 0;
    if (partial && size < f->offset) {
        free(f->header); /* the file was replaced: read it again from the start */
        f->header = NULL;
    }
    tbgw_buf b;
    tbgw_buf_init(&b);
    if (download(c, rel, from, &b) != 0) {
        tbgw_buf_free(&b);
        return;
    }
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, b.len);
    if (kind == 'j') {
        emit_chain(c, ftp_convert_json(p, b.p ? b.p : "", b.len));
    } else {
        size_t n, complete;
        char **lines = split_lines(b.p ? b.p : (char *)"", b.len, &n, &complete);
        if (!partial && complete < b.len) { /* FULL: a last line without '\n' counts too */
            lines = realloc(lines, (n + 1) * sizeof *lines);
            if (lines) lines[n++] = b.p + complete;
        }
        int table = kind == 'c' || p->view == FTP_VIEW_TABLE;
        const char *header = NULL;
        size_t first = 0; /* the first data line */
        if (table) {
            if (from == 0 && n > 0) {
                free(f->header);
                f->header = strdup(lines[0]);
                first = 1;
            }
            header = f->header;
        }
        if (lines && (!table || header)) emit_chain(c, ftp_convert_lines(p, kind, header, lines, n, first));
        free(lines);
        if (partial) f->offset = from + (long long)complete;
    }
    f->mtime = mtime;
    f->size = size;
    if (partial) state_save(c);
    tbgw_buf_free(&b);
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
    expand(c, "", p->pattern, files);
    size_t n = json_array_size(files);
    ranked *r = calloc(n ? n : 1, sizeof *r);
    for (size_t i = 0; r && i < n; i++) {
        r[i].path = json_string_value(json_array_get(files, i));
        long long size;
        if (p->sorting && file_info(c, r[i].path, &r[i].mtime, &size) != 0) r[i].mtime = -1;
    }
    if (r && p->sorting) qsort(r, n, sizeof *r, by_mtime_desc);
    for (size_t i = 0; r && i < n && !c->stop; i++) {
        poll_file(c, p, r[i].path);
        if (c->h->wait(c->h, 0)) c->stop = 1; /* downlink between files */
    }
    free(r);
    json_decref(files);
}

static int fc_run(void *self) {
    ftpc *c = self;
    c->curl = curl_easy_init();
    if (!c->curl) return TBGW_ENOMEM;
    state_load(c);
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    while (!c->stop) {
        int64_t now = tbgw_mono_ms();
        for (size_t i = 0; i < c->n_paths && !c->stop; i++) {
            if (now < c->next_poll[i]) continue;
            c->next_poll[i] = now + (int64_t)c->paths[i].poll_s * 1000;
            poll_path(c, &c->paths[i]);
        }
        if (c->h->wait(c->h, 200)) break;
    }
    curl_easy_cleanup(c->curl);
    c->curl = NULL;
    return 0;
}

/* ---- downlink ---- */

static int full_match(const char *pattern, const char *s) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &off, NULL);
    if (!re) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
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
    tbgw_buf b;
    tbgw_buf_init(&b);
    download(c, rel, 0, &b); /* a missing file starts empty */
    if (b.len) tbgw_buf_putc(&b, '\n');
    tbgw_buf_puts(&b, value);
    int rc = upload_text(c, rel, tbgw_buf_cstr(&b));
    tbgw_buf_free(&b);
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
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(json_object_get(c->cfg, "requestsMapping"), "attributeUpdates"), i,
                       e) {
        const char *filter = json_string_value(json_object_get(e, "deviceNameFilter"));
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *expr = json_string_value(json_object_get(e, "valueExpression"));
        if (!filter || !path || !expr || !full_match(filter, u->device)) continue;
        tbgw_buf p1, p2, e1, e2;
        tbgw_buf_init(&p1), tbgw_buf_init(&p2), tbgw_buf_init(&e1), tbgw_buf_init(&e2);
        replace_all(&p1, path, "${attributeKey}", key);
        replace_all(&p2, tbgw_buf_cstr(&p1), "${attributeValue}", sval);
        replace_all(&e1, expr, "${attributeKey}", key);
        replace_all(&e2, tbgw_buf_cstr(&e1), "${attributeValue}", sval);
        const char *mode = json_string_value(json_object_get(e, "writingMode"));
        json_t *files = json_array();
        expand(c, "", tbgw_buf_cstr(&p2), files);
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
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = download(c, path, 0, &b);
    if (rc != 0) {
        tbgw_buf_free(&b);
        return tbgw_rpc_error(c->h, r->handle, "cannot read %s", path);
    }
    json_t *content = json_pack("{s:s%}", "result", b.p ? b.p : "", b.len);
    tbgw_buf_free(&b);
    return c->h->rpc_reply(c->h, r->handle, content, -1);
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
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(json_object_get(c->cfg, "requestsMapping"), "serverSideRpc"), i, e) {
        const char *df = json_string_value(json_object_get(e, "deviceNameFilter"));
        const char *mf = json_string_value(json_object_get(e, "methodFilter"));
        if (!df || !mf || !full_match(df, r->device) || !full_match(mf, r->method)) continue;
        /* ${params}: the request's params (as text) */
        char *pt = ps || !r->params ? NULL : tbgw_json_dumps(r->params, 0);
        const char *params = ps ? ps : pt ? pt : "";
        tbgw_buf ve;
        tbgw_buf_init(&ve);
        const char *tmpl = json_string_value(json_object_get(e, "valueExpression"));
        replace_all(&ve, tmpl ? tmpl : "${params}", "${params}", params);
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
