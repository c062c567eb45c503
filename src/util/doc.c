#include "util/doc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/buf.h"

/* ---- locating a dotted path in JSON text ---------------------------------------------------- */

typedef struct scan {
    const char *s;
    size_t len, pos;
    int line, col;
    const char *target;
    int found, fline, fcol;
    tbgw_buf path;
    int depth;
} scan;

static void adv(scan *sc) {
    if (sc->pos >= sc->len) return;
    if (sc->s[sc->pos] == '\n') {
        sc->line++;
        sc->col = 1;
    } else {
        sc->col++;
    }
    sc->pos++;
}

static void skip_ws(scan *sc) {
    while (sc->pos < sc->len && isspace((unsigned char)sc->s[sc->pos])) adv(sc);
}

static int scan_value(scan *sc);

static int scan_string(scan *sc, tbgw_buf *out) {
    if (sc->pos >= sc->len || sc->s[sc->pos] != '"') return -1;
    adv(sc);
    while (sc->pos < sc->len && sc->s[sc->pos] != '"') {
        if (sc->s[sc->pos] == '\\') {
            adv(sc);
            if (out && sc->pos < sc->len) tbgw_buf_putc(out, sc->s[sc->pos]);
        } else if (out) {
            tbgw_buf_putc(out, sc->s[sc->pos]);
        }
        adv(sc);
    }
    if (sc->pos >= sc->len) return -1;
    adv(sc);
    return 0;
}

static void check_target(scan *sc) {
    if (!sc->found && strcmp(tbgw_buf_cstr(&sc->path), sc->target) == 0) {
        sc->found = 1;
        sc->fline = sc->line;
        sc->fcol = sc->col;
    }
}

static int scan_value(scan *sc) {
    if (++sc->depth > 512) return -1;
    skip_ws(sc);
    check_target(sc);
    if (sc->pos >= sc->len) return -1;
    char c = sc->s[sc->pos];
    size_t base = sc->path.len;
    int rc = 0;
    if (c == '{') {
        adv(sc);
        skip_ws(sc);
        if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
            adv(sc);
            goto out;
        }
        for (;;) {
            skip_ws(sc);
            sc->path.len = base;
            if (base) tbgw_buf_putc(&sc->path, '.');
            /* the key position counts as the field position too */
            size_t kpos = sc->path.len;
            (void)kpos;
            int kl = sc->line, kc = sc->col;
            if (scan_string(sc, &sc->path)) return -1;
            if (!sc->found && strcmp(tbgw_buf_cstr(&sc->path), sc->target) == 0) {
                sc->found = 1;
                sc->fline = kl;
                sc->fcol = kc;
            }
            skip_ws(sc);
            if (sc->pos >= sc->len || sc->s[sc->pos] != ':') return -1;
            adv(sc);
            if (scan_value(sc)) return -1;
            skip_ws(sc);
            if (sc->pos < sc->len && sc->s[sc->pos] == ',') {
                adv(sc);
                continue;
            }
            if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
                adv(sc);
                break;
            }
            return -1;
        }
    } else if (c == '[') {
        adv(sc);
        skip_ws(sc);
        if (sc->pos < sc->len && sc->s[sc->pos] == ']') {
            adv(sc);
            goto out;
        }
        for (int i = 0;; i++) {
            sc->path.len = base;
            tbgw_buf_printf(&sc->path, "[%d]", i);
            if (scan_value(sc)) return -1;
            skip_ws(sc);
            if (sc->pos < sc->len && sc->s[sc->pos] == ',') {
                adv(sc);
                continue;
            }
            if (sc->pos < sc->len && sc->s[sc->pos] == ']') {
                adv(sc);
                break;
            }
            return -1;
        }
    } else if (c == '"') {
        rc = scan_string(sc, NULL);
    } else {
        while (sc->pos < sc->len && !strchr(",}] \t\r\n", sc->s[sc->pos])) adv(sc);
    }
out:
    sc->path.len = base;
    if (sc->path.p) sc->path.p[base] = 0;
    sc->depth--;
    return rc;
}

int tbgw_json_locate(const char *text, size_t len, const char *dotted, int *line, int *col) {
    scan sc = {.s = text, .len = len, .line = 1, .col = 1, .target = dotted};
    tbgw_buf_init(&sc.path);
    tbgw_buf_cstr(&sc.path);
    scan_value(&sc);
    tbgw_buf_free(&sc.path);
    if (!sc.found) return -1;
    *line = sc.fline;
    *col = sc.fcol;
    return 0;
}

static int yaml_locate(const tbgw_doc *d, const char *dotted, int *line, int *col) {
    void *v = tbgw_hmap_get(&d->yaml_pos, dotted);
    if (!v) return -1;
    uintptr_t p = (uintptr_t)v;
    *line = (int)(p >> 20);
    *col = (int)(p & 0xFFFFF);
    return 0;
}

static char *read_file(const char *path, size_t *len, tbgw_err *err);

/* The source text again after tbgw_doc_release_text (the document keeps it from then on). */
static void need_text(const tbgw_doc *cd) {
    tbgw_doc *d = (tbgw_doc *)cd;
    if (!d || d->text || !d->text_released) return;
    tbgw_err err;
    size_t len = 0;
    d->text = read_file(d->path, &len, &err);
    d->len = d->text ? len : 0;
    d->text_released = 0;
}

void tbgw_doc_release_text(tbgw_doc *d) {
    if (!d || d->is_yaml || !d->from_file || !d->text) return;
    free(d->text);
    d->text = NULL;
    d->len = 0;
    d->text_released = 1;
}

void tbgw_doc_locate(const tbgw_doc *d, const char *dotted, int *line, int *col) {
    *line = 1;
    *col = 1;
    if (!d || !dotted) return;
    need_text(d);
    if (!d->is_yaml && !d->text) return;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", dotted);
    for (;;) {
        int rc =
            d->is_yaml ? yaml_locate(d, tmp, line, col) : tbgw_json_locate(d->text, d->len, tmp, line, col);
        if (rc == 0) return;
        char *dot = strrchr(tmp, '.'), *br = strrchr(tmp, '[');
        char *cut = dot > br ? dot : br;
        if (!cut) break;
        *cut = 0;
    }
    *line = 1;
    *col = 1;
}

/* "dotted.path@N" (a byte offset inside that string value) -> the path in field, the offset; only
 * when the path without "@N" names a value of d (a key may contain '@' itself) */
static long split_offset(const tbgw_doc *d, const char *dotted, char *field, size_t cap) {
    snprintf(field, cap, "%s", dotted ? dotted : "");
    char *at = strrchr(field, '@');
    if (!d || d->is_yaml || !at || !at[1] || strspn(at + 1, "0123456789") != strlen(at + 1)) return -1;
    need_text(d);
    if (!d->text) return -1;
    *at = 0;
    int line, col;
    if (tbgw_json_locate(d->text, d->len, field, &line, &col) != 0) {
        *at = '@';
        return -1;
    }
    return strtol(at + 1, NULL, 10);
}

int tbgw_doc_error(const tbgw_doc *d, tbgw_err *err, const char *dotted_in, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    char field[256];
    long offset = split_offset(d, dotted_in, field, sizeof field);
    const char *dotted = dotted_in ? field : NULL;
    if (!d) /* not from a file (e.g. remote configuration) */
        return dotted && *dotted ? tbgw_err_set(err, TBGW_EINVAL, "%s: %s", dotted, msg)
                                 : tbgw_err_set(err, TBGW_EINVAL, "%s", msg);
    tbgw_doc_locate(d, dotted, &line, &col);
    if (offset >= 0 && !d->is_yaml)
        tbgw_json_string_pos(d->text, d->len, line, col, (size_t)offset, &line, &col);
    if (dotted && *dotted)
        return tbgw_err_set(err, TBGW_EINVAL, "%s:%d:%d: %s: %s", d->path, line, col, dotted, msg);
    return tbgw_err_set(err, TBGW_EINVAL, "%s:%d:%d: %s", d ? d->path : "?", line, col, msg);
}

/* columns count bytes, like the scanner above */
int tbgw_json_string_pos(const char *text, size_t len, int line, int col, size_t offset, int *oline,
                         int *ocol) {
    *oline = line;
    *ocol = col;
    if (!text || line < 1 || col < 1) return -1;
    size_t i = 0;
    for (int l = 1; i < len && l < line; i++)
        if (text[i] == '\n') l++;
    i += (size_t)(col - 1);
    if (i >= len || text[i] != '"') return -1;
    /* positions name the key of an object member: move on to its value */
    size_t j = i + 1;
    while (j < len && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
    size_t k = j + 1;
    while (k < len && strchr(" \t\r\n", text[k])) k++;
    if (k < len && text[k] == ':') {
        k++;
        while (k < len && strchr(" \t\r\n", text[k])) k++;
        if (k >= len || text[k] != '"') return -1;
        for (size_t q = i; q < k; q++) {
            if (text[q] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        *oline = line;
        i = k;
    }
    size_t start = ++i, decoded = 0;
    while (i < len && text[i] != '"' && decoded < offset) {
        if (text[i] == '\\' && i + 1 < len && text[i + 1] == 'u') { /* \uXXXX: 1 to 3 bytes of UTF-8 */
            char hex[5] = {0};
            for (int h = 0; h < 4 && i + 2 + (size_t)h < len; h++) hex[h] = text[i + 2 + (size_t)h];
            unsigned long cp = strtoul(hex, NULL, 16);
            decoded += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
            i += 6;
        } else {
            decoded++;
            i += text[i] == '\\' && i + 1 < len ? 2 : 1;
        }
    }
    *ocol = col + 1 + (int)(i - start);
    return 0;
}

void tbgw_doc_prefix_error(const tbgw_doc *d, tbgw_err *err) {
    char field[256] = "";
    const char *colon = strstr(err->msg, ": ");
    if (colon && (size_t)(colon - err->msg) < sizeof field &&
        !memchr(err->msg, ' ', (size_t)(colon - err->msg))) {
        memcpy(field, err->msg, (size_t)(colon - err->msg));
        field[colon - err->msg] = 0;
    }
    /* "dotted.path@N": the error is at byte N of that string value (an expression inside it) */
    char whole[256];
    memcpy(whole, field, sizeof whole);
    long offset = split_offset(d, whole, field, sizeof field);
    int line, col;
    tbgw_doc_locate(d, field[0] ? field : NULL, &line, &col);
    if (offset >= 0 && !d->is_yaml)
        tbgw_json_string_pos(d->text, d->len, line, col, (size_t)offset, &line, &col);
    char msg[sizeof err->msg + 600];
    if (offset >= 0)
        snprintf(msg, sizeof msg, "%s:%d:%d: %s%s", d->path, line, col, field, colon);
    else
        snprintf(msg, sizeof msg, "%s:%d:%d: %s", d->path, line, col, err->msg);
    snprintf(err->msg, sizeof err->msg, "%s", msg);
}

/* ---- loading ---------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, tbgw_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        tbgw_err_set(err, TBGW_ENOENT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    tbgw_buf b;
    tbgw_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) tbgw_buf_append(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.oom) {
        tbgw_buf_free(&b);
        tbgw_err_set(err, TBGW_EIO, "%s: read error", path);
        return NULL;
    }
    tbgw_buf_cstr(&b);
    *len = b.len;
    return b.p;
}

tbgw_doc *tbgw_doc_parse_json(const char *path, const char *text, size_t len, tbgw_err *err) {
    tbgw_doc *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->path = strdup(path);
    d->text = malloc(len + 1);
    if (!d->path || !d->text) {
        tbgw_doc_free(d);
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(d->text, text, len);
    d->text[len] = 0;
    d->len = len;
    json_error_t je;
    d->root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!d->root) {
        tbgw_err_set(err, TBGW_EINVAL, "%s:%d:%d: invalid JSON: %s", path, je.line > 0 ? je.line : 1,
                     je.column > 0 ? je.column : 1, je.text);
        tbgw_doc_free(d);
        return NULL;
    }
    return d;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

tbgw_doc *tbgw_doc_load(const char *path, tbgw_err *err) {
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text) return NULL;
    tbgw_doc *d = (ends_with(path, ".yaml") || ends_with(path, ".yml"))
                      ? tbgw_doc_parse_yaml(path, text, len, err)
                      : tbgw_doc_parse_json(path, text, len, err);
    free(text);
    if (d) d->from_file = 1;
    return d;
}

int tbgw_doc_pack(tbgw_doc *d) {
    if (!d || !d->root) return 0;
    /* JSON_ENCODE_ANY: a root that is not an object or array still round-trips */
    char *text = json_dumps(d->root, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return TBGW_ENOMEM;
    size_t n = strlen(text);
    uLongf cap = compressBound((uLong)n);
    unsigned char *z = malloc(cap ? cap : 1);
    if (!z || compress2(z, &cap, (const Bytef *)text, (uLong)n, Z_BEST_COMPRESSION) != Z_OK) {
        free(z);
        free(text);
        return TBGW_ENOMEM;
    }
    free(text);
    unsigned char *fit = realloc(z, cap ? cap : 1);
    free(d->packed);
    d->packed = fit ? fit : z;
    d->packed_len = cap;
    d->plain_len = n;
    json_decref(d->root);
    d->root = NULL;
    return 0;
}

json_t *tbgw_doc_tree(const tbgw_doc *d) {
    if (!d) return NULL;
    if (d->root) return json_incref(d->root);
    if (!d->packed) return NULL;
    uLongf n = (uLongf)d->plain_len;
    char *text = malloc(d->plain_len + 1);
    if (!text) return NULL;
    if (uncompress((Bytef *)text, &n, d->packed, (uLong)d->packed_len) != Z_OK || n != d->plain_len) {
        free(text);
        return NULL;
    }
    json_error_t je;
    json_t *t = json_loadb(text, n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    free(text);
    return t;
}

void tbgw_doc_free(tbgw_doc *d) {
    if (!d) return;
    json_decref(d->root);
    free(d->packed);
    tbgw_hmap_free(&d->yaml_pos, NULL);
    free(d->text);
    free(d->path);
    free(d);
}
