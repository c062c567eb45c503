/* Matching I-Am answers to device configurations (spec 2.3): address patterns and deviceId forms.
 * The reference turns a pattern into a regex; the same classes of address are accepted here by a
 * direct matcher, and a device mask never stops a device from being found. */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"

static size_t count_char(const char *s, char c) {
    size_t n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* Glob over a host: a run of X matches a run of digits, '*' matches anything. */
static int host_match(const char *pat, const char *s) {
    if (!*pat) return !*s;
    if (*pat == '*') {
        for (const char *t = s;; t++) {
            if (host_match(pat + 1, t)) return 1;
            if (!*t) return 0;
        }
    }
    if (*pat == 'X' || *pat == 'x') {
        while (*pat == 'X' || *pat == 'x') pat++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
        return host_match(pat, s);
    }
    return *pat == *s && host_match(pat + 1, s + 1);
}

int bnc_address_match(const char *pattern, const char *addr) {
    char pat[160];
    snprintf(pat, sizeof pat, "%s", pattern);
    char *at = strchr(pat, '@');
    if (at) *at = 0;
    size_t colons = count_char(addr, ':');
    if (strcmp(pat, "*:*:*") == 0) return 1;
    if (strcmp(pat, "*:*") == 0) return colons <= 1;
    if (strcmp(pat, "*") == 0) return colons == 0 || strncmp(addr, "0:", 2) == 0;
    /* address: host and port (47808 when absent) */
    char host[64];
    const char *c = strchr(addr, ':');
    const char *aport = c ? c + 1 : "47808";
    snprintf(host, sizeof host, "%.*s", (int)(c ? (size_t)(c - addr) : strlen(addr)), addr);
    if (colons > 1) return 0;
    const char *pc = strrchr(pat, ':');
    const char *pport = pc ? pc + 1 : "47808";
    if (pc) *(char *)pc = 0;
    if (count_char(pat, ':')) return 0;
    if (strcmp(pport, "*") != 0 && strcmp(pport, aport) != 0) return 0;
    return host_match(pat, host);
}

int bnc_id_match(const bnc_idmatch *m, uint32_t inst) {
    if (m->any) return 1;
    for (size_t i = 0; i < m->n_ranges; i++)
        if ((int64_t)inst >= m->ranges[i][0] && (int64_t)inst <= m->ranges[i][1]) return 1;
    if (m->regex) {
        char text[16], re[300];
        snprintf(text, sizeof text, "%u", inst);
        snprintf(re, sizeof re, "^(%s)", m->regex); /* re.match: anchored at the start */
        regex_t rx;
        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) return 0;
        int ok = regexec(&rx, text, 0, NULL, 0) == 0;
        regfree(&rx);
        return ok;
    }
    return 0;
}
