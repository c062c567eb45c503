/* Source expressions (message / topic / constant), PCRE2 helpers and MQTT topic filter matching. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "convert/source_expr.h"
#include "convert/cfg_util.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tbgw_regex {
    pcre2_code *code;
    pcre2_code *full; /* the same pattern anchored at both ends, for fullmatch */
};

int tbgw_src_parse(const char *name, tbgw_src *out) {
    static const struct {
        const char *n;
        tbgw_src s;
    } names[] = {{"message", TBGW_SRC_MESSAGE},
                 {"topic", TBGW_SRC_TOPIC},
                 {"constant", TBGW_SRC_CONSTANT},
                 {"request", TBGW_SRC_REQUEST}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i].n)) {
            *out = names[i].s;
            return 0;
        }
    return -1;
}

int tbgw_regex_compile(const char *pattern, tbgw_regex **out, const char *path, tbgw_err *err) {
    *out = NULL;
    int ec;
    PCRE2_SIZE eo;
    tbgw_regex *re = calloc(1, sizeof *re);
    if (!re) return TBGW_ENOMEM;
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                             &ec, &eo, NULL);
    if (re->code) {
        size_t n = strlen(pattern) + 16;
        char *anch = malloc(n);
        if (!anch) {
            tbgw_regex_free(re);
            return TBGW_ENOMEM;
        }
        snprintf(anch, n, "(?:%s)\\z", pattern);
        re->full = pcre2_compile((PCRE2_SPTR)anch, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ANCHORED, &ec, &eo, NULL);
        free(anch);
    }
    if (re->code && re->full) {
        /* machine code for both (several times faster per match; the topic regexes of the MQTT
         * connector run once per message). Where the JIT is not available the interpreter matches. */
        pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
        pcre2_jit_compile(re->full, PCRE2_JIT_COMPLETE);
    }
    if (!re->code || !re->full) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        tbgw_regex_free(re);
        return tbgw_err_set(err, TBGW_EINVAL, "%s: invalid regular expression \"%s\": %s at offset %zu",
                            path ? path : "regex", pattern, (const char *)msg, (size_t)eo);
    }
    *out = re;
    return 0;
}

void tbgw_regex_free(tbgw_regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    pcre2_code_free(re->full);
    free(re);
}

/* One match data block per thread, grown to the largest pattern seen: a match allocates nothing. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static void md_free(void *md) {
    pcre2_match_data_free(md);
}
static void md_init(void) {
    pthread_key_create(&md_key, md_free);
}

static pcre2_match_data *thread_md(const pcre2_code *code) {
    pthread_once(&md_once, md_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    uint32_t need = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &need);
    need++;
    if (md && pcre2_get_ovector_count(md) >= need) return md;
    pcre2_match_data *nmd = pcre2_match_data_create(need < 16 ? 16 : need, NULL);
    if (!nmd || pthread_setspecific(md_key, nmd)) {
        pcre2_match_data_free(nmd);
        return NULL;
    }
    pcre2_match_data_free(md);
    return nmd;
}

/* Returns the pcre2_match result (< 0: no match or error); *md_out is the thread's match data. */
static int run(const pcre2_code *code, const char *subject, uint32_t opts, pcre2_match_data **md_out) {
    pcre2_match_data *md = thread_md(code);
    if (md_out) *md_out = md;
    if (!md) return -1;
    return pcre2_match(code, (PCRE2_SPTR)subject, strlen(subject), 0, opts, md, NULL);
}

int tbgw_regex_search(const tbgw_regex *re, const char *subject, tbgw_buf *out) {
    pcre2_match_data *md = NULL;
    int rc = run(re->code, subject, 0, &md);
    if (rc < 0 || !out) return rc >= 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t groups = pcre2_get_ovector_count(md);
    uint32_t capture_count = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &capture_count);
    if (capture_count + 1 < groups) groups = capture_count + 1;
    uint32_t pick = 0;
    for (uint32_t g = groups; g-- > 1;)
        if (ov[2 * g] != PCRE2_UNSET) {
            pick = g;
            break;
        }
    tbgw_buf_append(out, subject + ov[2 * pick], ov[2 * pick + 1] - ov[2 * pick]);
    return 1;
}

int tbgw_regex_match(const tbgw_regex *re, const char *subject) {
    return run(re->code, subject, PCRE2_ANCHORED, NULL) >= 0;
}

int tbgw_regex_fullmatch(const tbgw_regex *re, const char *subject) {
    return run(re->full, subject, 0, NULL) >= 0;
}

int tbgw_src_expr_init(tbgw_src_expr *e, tbgw_src src, const char *text, const char *path, tbgw_err *err) {
    memset(e, 0, sizeof *e);
    e->src = src;
    if (!text) return tbgw_err_set(err, TBGW_EINVAL, "%s: missing", path);
    e->text = strdup(text);
    if (!e->text) return TBGW_ENOMEM;
    if (src == TBGW_SRC_TOPIC) return tbgw_regex_compile(text, &e->re, path, err);
    int rc = tbgw_expr_compile(text, &e->tmpl, err);
    return tbgw_err_prefix(err, rc, path, ':');
}

void tbgw_src_expr_clear(tbgw_src_expr *e) {
    free(e->text);
    tbgw_expr_free(e->tmpl);
    tbgw_regex_free(e->re);
    memset(e, 0, sizeof *e);
}

int tbgw_src_expr_eval(const tbgw_src_expr *e, const char *topic, const json_t *body, tbgw_buf *out) {
    tbgw_jsrc src = {.tree = body};
    return tbgw_src_expr_eval_src(e, topic, &src, out);
}

int tbgw_src_expr_eval_src(const tbgw_src_expr *e, const char *topic, const tbgw_jsrc *body, tbgw_buf *out) {
    if (e->src == TBGW_SRC_TOPIC) {
        if (!e->re) return TBGW_EINVAL;
        if (!topic || !tbgw_regex_search(e->re, topic, out)) tbgw_buf_puts(out, e->text);
        return out->oom ? TBGW_ENOMEM : 0;
    }
    if (!e->tmpl) return TBGW_EINVAL;
    return tbgw_expr_render_src(e->tmpl, body, TBGW_FMT_PY, TBGW_MISSING_KEEP, out);
}

const char *tbgw_topic_unshared(const char *filter) {
    if (strncmp(filter, "$share/", 7) != 0) return filter;
    const char *slash = strchr(filter + 7, '/');
    return slash ? slash + 1 : filter;
}

static int match_at(const char *f, const char *t, int depth) {
    if (depth > 64) return 0;
    for (;;) {
        if (*f == 0) return *t == 0;
        if (*f == '#') {
            /* `.+` followed by the rest of the filter (normally nothing) */
            if (!f[1]) return *t != 0;
            for (const char *p = t + 1; p <= t + strlen(t); p++)
                if (match_at(f + 1, p, depth + 1)) return 1;
            return 0;
        }
        if (*f == '+') {
            size_t n = strcspn(t, "/");
            for (size_t k = n; k >= 1; k--)
                if (match_at(f + 1, t + k, depth + 1)) return 1;
            return 0;
        }
        if (*f != *t) return 0;
        f++;
        t++;
    }
}

int tbgw_topic_matches(const char *filter, const char *topic) {
    return match_at(tbgw_topic_unshared(filter), topic, 0);
}
