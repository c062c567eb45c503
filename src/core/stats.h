/* Machine and process figures for the statistics telemetry (spec §1.9). */
#ifndef TBGW_CORE_STATS_H
#define TBGW_CORE_STATS_H
#include <jansson.h>
#include <stdint.h>

typedef struct tbgw_cpu_sample {
    uint64_t total, idle, proc;
} tbgw_cpu_sample;

/* Fills machineStats keys (totalCpuUsage, diskUsage, freeMemory, freeDisk, gwProcessCpuUsage,
 * gwMemory, gwProcessMemoryFullInfo) using the previous sample for CPU percentages. */
void tbgw_stats_machine(json_t *out, tbgw_cpu_sample *prev, const char *disk_path);
/* Start-up attributes: totalMemory, totalDisk (human strings) and cpuCount. */
void tbgw_stats_static(json_t *out, const char *disk_path);
#endif
