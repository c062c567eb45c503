#include "core/stats.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void read_cpu(tbgw_cpu_sample *s) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[10] = {0};
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) >= 4) {
            for (int i = 0; i < 8; i++) s->total += v[i];
            s->idle = v[3] + v[4];
        }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            s->proc = ut + st;
        fclose(f);
    }
}

static long long meminfo(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    long long v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            sscanf(line + kl + 1, "%lld", &v);
            break;
        }
    fclose(f);
    return v * 1024;
}

static long long self_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long long v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) sscanf(line + 6, "%lld", &v);
    fclose(f);
    return v * 1024;
}

static void human(char *out, size_t n, double bytes) {
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (bytes >= 1024 && i < 4) bytes /= 1024, i++;
    snprintf(out, n, "%.2f %s", bytes, u[i]);
}

void tbgw_stats_machine(json_t *out, tbgw_cpu_sample *prev, const char *disk_path) {
    tbgw_cpu_sample now;
    read_cpu(&now);
    double dt = (double)(now.total - prev->total);
    double cpu = dt > 0 ? 100.0 * (dt - (double)(now.idle - prev->idle)) / dt : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double pcpu = dt > 0 ? 100.0 * (double)(now.proc - prev->proc) * (double)(ncpu > 0 ? ncpu : 1) / dt : 0;
    *prev = now;
    struct statvfs vfs;
    double disk_used = 0, free_disk = 0;
    if (statvfs(disk_path, &vfs) == 0 && vfs.f_blocks) {
        disk_used = 100.0 * (double)(vfs.f_blocks - vfs.f_bfree) / (double)vfs.f_blocks;
        free_disk = (double)vfs.f_bavail * (double)vfs.f_frsize;
    }
    long long rss = self_rss();
    json_object_set_new(out, "totalCpuUsage", json_real((double)(long long)(cpu * 10) / 10));
    json_object_set_new(out, "diskUsage", json_real((double)(long long)(disk_used * 10) / 10));
    json_object_set_new(out, "freeMemory", json_integer(meminfo("MemAvailable")));
    json_object_set_new(out, "freeDisk", json_integer((json_int_t)free_disk));
    json_object_set_new(out, "gwProcessCpuUsage", json_real((double)(long long)(pcpu * 10) / 10));
    json_object_set_new(out, "gwMemory",
                        json_real((double)(long long)(1000.0 * (double)rss / 1048576.0) / 1000));
    json_object_set_new(out, "gwProcessMemoryFullInfo", json_pack("{s:I}", "rss", (json_int_t)rss));
}

void tbgw_stats_static(json_t *out, const char *disk_path) {
    char buf[64];
    human(buf, sizeof buf, (double)meminfo("MemTotal"));
    json_object_set_new(out, "totalMemory", json_string(buf));
    struct statvfs vfs;
    if (statvfs(disk_path, &vfs) == 0) {
        human(buf, sizeof buf, (double)vfs.f_blocks * (double)vfs.f_frsize);
        json_object_set_new(out, "totalDisk", json_string(buf));
    }
    json_object_set_new(out, "cpuCount", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
}
