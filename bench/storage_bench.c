/* Storage benchmark: appends/s per storage type and fsync policy with group commit (sync() every
 * G appends, as the core does before its loop sleeps), replay rate (peek + commit of packs) and
 * disk bytes per record.
 *
 * usage: bench_storage_bench [-n records] [-s record_bytes] [-g group] [-p pack] [-d dir] [-t types]
 *   defaults: -n 200000 -s 200 -g 1000 -p 1000 -d /tmp -t memory,file,sqlite */
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "storage/storage.h"
#include "util/log_config.h"

typedef struct opts {
    long n, size, group, pack;
    const char *dir, *types;
} opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* A record that looks like the core's: device name, then a JSON telemetry fragment. */
static void make_record(char *buf, long size, long i) {
    int n =
        snprintf(buf, (size_t)size + 1, "T\001Bench Device %ld{\"ts\":%ld,\"values\":{\"temperature\":%ld.5,",
                 i % 100, 1700000000000L + i, i % 97);
    for (long k = n; k < size - 2; k++) buf[k] = (char)('a' + (k + i) % 26);
    if (size >= 2) memcpy(buf + size - 2, "}}", 2);
}

static int bench_one(const opts *o, const char *type, const char *fsync_pol) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tbgw-bench-XXXXXX", o->dir);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    json_t *cfg =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "type", type, "data_folder_path", dir,
                  "data_file_path", dir, "fsync", fsync_pol, "max_records_count", (json_int_t)o->n + 1,
                  "max_file_count", (json_int_t)1000, "max_records_per_file", (json_int_t)100000,
                  "max_read_records_count", (json_int_t)o->pack, "writing_batch_size", (json_int_t)o->group);
    tbgw_storage *s = NULL;
    tbgw_err err = {0};
    if (tbgw_storage_open(cfg, NULL, &s, &err)) {
        fprintf(stderr, "%s: %s\n", type, err.msg);
        json_decref(cfg);
        return 1;
    }
    json_decref(cfg);
    char *rec = malloc((size_t)o->size + 1);
    double t0 = now_s();
    for (long i = 0; i < o->n; i++) {
        make_record(rec, o->size, i);
        if (s->ops->append(s, rec, (size_t)o->size)) {
            fprintf(stderr, "%s: append failed at %ld\n", type, i);
            break;
        }
        if ((i + 1) % o->group == 0) s->ops->sync(s);
    }
    s->ops->sync(s);
    double t_app = now_s() - t0;
    tbgw_storage_stats st;
    s->ops->stats(s, &st);
    double per_rec = st.records ? (double)st.disk_bytes / (double)st.records : 0;
    t0 = now_s();
    long replayed = 0;
    tbgw_pack p;
    while (s->ops->peek(s, (size_t)o->pack, &p) == 0 && p.n) {
        replayed += (long)p.n;
        s->ops->commit(s, &p);
        tbgw_pack_free(&p);
        s->ops->sync(s);
    }
    double t_rep = now_s() - t0;
    s->ops->close(s);
    free(rec);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    printf("| %-6s | %-8s | %10.0f | %10.0f | %8.1f |\n", type, strcmp(type, "memory") ? fsync_pol : "-",
           (double)o->n / t_app, (double)replayed / t_rep, per_rec);
    fflush(stdout);
    return replayed == o->n ? 0 : 1;
}

int main(int argc, char **argv) {
    opts o = {200000, 200, 1000, 1000, "/tmp", "memory,file,sqlite"};
    int c;
    while ((c = getopt(argc, argv, "n:s:g:p:d:t:")) != -1) {
        switch (c) {
        case 'n':
            o.n = atol(optarg);
            break;
        case 's':
            o.size = atol(optarg);
            break;
        case 'g':
            o.group = atol(optarg);
            break;
        case 'p':
            o.pack = atol(optarg);
            break;
        case 'd':
            o.dir = optarg;
            break;
        case 't':
            o.types = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [-n records] [-s bytes] [-g group] [-p pack] [-d dir] [-t types]\n",
                    argv[0]);
            return 2;
        }
    }
    if (o.n < 1 || o.size < 16 || o.group < 1 || o.pack < 1) return 2;
    tbgw_log_set_level(NULL, TBGW_WARNING);
    printf("%ld records of %ld bytes, sync() every %ld appends, packs of %ld\n\n", o.n, o.size, o.group,
           o.pack);
    printf("| storage | fsync    | appends/s  | replay/s   | disk B/rec |\n");
    printf("|--------|----------|-----------:|-----------:|---------:|\n");
    const char *pols[] = {"always", "interval", "never"};
    int rc = 0;
    char types[256];
    snprintf(types, sizeof types, "%s", o.types);
    for (char *save = NULL, *t = strtok_r(types, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "memory") == 0) {
            rc |= bench_one(&o, t, "interval");
            continue;
        }
        for (int i = 0; i < 3; i++) rc |= bench_one(&o, t, pols[i]);
    }
    return rc;
}
