/* Device registry: which connector owns which device, renames (spec §1.11), persistence in
 * connected_devices.json (spec §2.6). Core thread only. */
#ifndef TBGW_CORE_DEVICES_H
#define TBGW_CORE_DEVICES_H

#include <stdint.h>

#include "util/hmap.h"

typedef struct tbgw_device {
    char *name;       /* as the connector produced it */
    const char *type; /* type and connector name/id: shared copies (tbgw_devices.strs) */
    const char *connector_name, *connector_id;
    char *renamed; /* platform name, NULL when not renamed */
    void *owner;   /* the connector instance, NULL when its connector is gone */
    int64_t last_seen_ms;
    int connect_sent; /* connect published in the current platform session */
    int attrs_sent;   /* connectorType/connectorName attribute queued */
    int inactive;     /* disconnected for inactivity; connected again on its next data */
} tbgw_device;

typedef struct tbgw_devices {
    tbgw_hmap by_name; /* name -> tbgw_device */
    tbgw_hmap renames; /* name -> new name (also for devices not currently connected) */
    tbgw_hmap strs;    /* one copy of each device type and connector name/id (they repeat per device) */
    char *path;        /* connected_devices.json, NULL = not persisted */
    int dirty;
} tbgw_devices;

void tbgw_devices_init(tbgw_devices *d, const char *path);
void tbgw_devices_free(tbgw_devices *d);
tbgw_device *tbgw_devices_get(tbgw_devices *d, const char *name);
/* Adds or updates the device. *is_new tells whether it was unknown. */
tbgw_device *tbgw_devices_add(tbgw_devices *d, const char *name, const char *type, const char *connector_name,
                              const char *connector_id, void *owner, int *is_new);
void tbgw_devices_remove(tbgw_devices *d, const char *name);
/* Platform-side name (renamed) of a device; name itself when not renamed. */
const char *tbgw_devices_platform_name(tbgw_devices *d, const char *name);
/* Connector-side name for a platform name (renames undone). */
const char *tbgw_devices_local_name(tbgw_devices *d, const char *platform_name);
/* old -> new (chains collapse; renaming back to the original removes the entry). */
int tbgw_devices_rename(tbgw_devices *d, const char *old_name, const char *new_name);
/* Forgets a device and its rename. Returns 1 if it was known. */
int tbgw_devices_delete(tbgw_devices *d, const char *platform_name);
/* Writes the file (atomically) if anything changed. */
int tbgw_devices_save(tbgw_devices *d);
/* Reads the file; calls cb for each saved device (legacy list format too). */
int tbgw_devices_load(tbgw_devices *d,
                      void (*cb)(void *ud, const char *name, const char *type, const char *connector_name,
                                 const char *connector_id, const char *renamed),
                      void *ud);
#endif
