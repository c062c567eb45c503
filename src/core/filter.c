/* Device filtering: allow/deny lists of PCRE2 regexes per connector name. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/filter.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "util/doc.h"

typedef struct rx_list {
    char *connector;
    pcre2_code **rx;
    size_t n;
} rx_list;

struct tbgw_filter {
    rx_list *deny, *allow;
    size_t n_deny, n_allow;
    pcre2_match_data *md;
};

static void free_lists(rx_list *l, size_t n) {
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < l[i].n; k++) pcre2_code_free(l[i].rx[k]);
        free(l[i].rx);
        free(l[i].connector);
    }
    free(l);
}

void tbgw_filter_free(tbgw_filter *f) {
    if (!f) return;
    free_lists(f->deny, f->n_deny);
    free_lists(f->allow, f->n_allow);
    if (f->md) pcre2_match_data_free(f->md);
    free(f);
}

static int load_section(const tbgw_doc *d, const char *sec, rx_list **out, size_t *n_out, tbgw_err *err) {
    json_t *obj = json_object_get(d->root, sec);
    if (!obj) return 0;
    if (!json_is_object(obj))
        return tbgw_doc_error(d, err, sec, "expected an object {\"<connector name>\": [\"regex\", ...]}");
    rx_list *l = calloc(json_object_size(obj) + 1, sizeof *l);
    if (!l) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    *out = l;
    const char *conn;
    json_t *arr;
    json_object_foreach(obj, conn, arr) {
        char path[300];
        snprintf(path, sizeof path, "%s.%s", sec, conn);
        if (!json_is_array(arr))
            return tbgw_doc_error(d, err, path, "expected a list of regular expressions");
        rx_list *e = &l[(*n_out)++];
        e->connector = strdup(conn);
        e->rx = calloc(json_array_size(arr) + 1, sizeof *e->rx);
        if (!e->connector || !e->rx) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            char ep[340];
            snprintf(ep, sizeof ep, "%s[%zu]", path, i);
            if (!json_is_string(v))
                return tbgw_doc_error(d, err, ep, "expected a string (regular expression)");
            int ec;
            PCRE2_SIZE off;
            pcre2_code *rx = pcre2_compile((PCRE2_SPTR)json_string_value(v), PCRE2_ZERO_TERMINATED,
                                           PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &ec, &off, NULL);
            if (!rx) {
                PCRE2_UCHAR msg[200];
                pcre2_get_error_message(ec, msg, sizeof msg);
                return tbgw_doc_error(d, err, ep, "bad regular expression \"%s\" at offset %zu: %s",
                                      json_string_value(v), (size_t)off, (const char *)msg);
            }
            e->rx[e->n++] = rx;
        }
    }
    return 0;
}

tbgw_filter *tbgw_filter_load(const char *path, tbgw_err *err) {
    tbgw_doc *d = tbgw_doc_load(path, err);
    if (!d) return NULL;
    tbgw_filter *f = calloc(1, sizeof *f);
    if (!f) {
        tbgw_doc_free(d);
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    if (!json_is_object(d->root))
        rc = tbgw_doc_error(d, err, NULL, "expected an object with \"deny\" and/or \"allow\"");
    if (!rc) {
        const char *k;
        json_t *v;
        json_object_foreach(d->root, k, v) {
            if (strcmp(k, "deny") != 0 && strcmp(k, "allow") != 0) {
                rc = tbgw_doc_error(d, err, k, "unknown key (expected \"deny\" or \"allow\")");
                break;
            }
        }
    }
    if (!rc) rc = load_section(d, "deny", &f->deny, &f->n_deny, err);
    if (!rc) rc = load_section(d, "allow", &f->allow, &f->n_allow, err);
    if (!rc && !(f->md = pcre2_match_data_create(1, NULL)))
        rc = tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    tbgw_doc_free(d);
    if (rc) {
        tbgw_filter_free(f);
        return NULL;
    }
    return f;
}

static const rx_list *find(const rx_list *l, size_t n, const char *connector) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].connector, connector) == 0) return &l[i];
    return NULL;
}

static int any_match(const rx_list *l, const char *device, pcre2_match_data *md) {
    size_t len = strlen(device);
    for (size_t i = 0; i < l->n; i++)
        if (pcre2_match(l->rx[i], (PCRE2_SPTR)device, len, 0, 0, md, NULL) >= 0) return 1;
    return 0;
}

int tbgw_filter_allows(const tbgw_filter *f, const char *connector, const char *device) {
    if (!f) return 1;
    const rx_list *deny = find(f->deny, f->n_deny, connector);
    if (deny && any_match(deny, device, f->md)) return 0;
    const rx_list *allow = find(f->allow, f->n_allow, connector);
    if (allow) return any_match(allow, device, f->md);
    return 1;
}
