/* BLE connector runtime state shared by its configuration/poll code (ble.c), its D-Bus code
 * (ble_bus.c) and its downlink code (ble_rpc.c). Everything runs on the connector thread. */
#ifndef TBGW_CONNECTORS_BLE_CONN_H
#define TBGW_CONNECTORS_BLE_CONN_H

#include <systemd/sd-bus.h>
#include <tbgw/connector.h>

#include "connectors/ble/ble_internal.h"

#define BLE_DEVICE_IF "org.bluez.Device1"
#define BLE_CHAR_IF   "org.bluez.GattCharacteristic1"

/* A GATT characteristic BlueZ exports under a device. */
typedef struct bchar {
    char *path;
    char uuid[40]; /* lower-case */
    char flags[160];
    int notifying;
} bchar;

typedef struct bdev {
    const json_t *cfg; /* kept alive by bc->cfg */
    const char *name, *type;
    char mac[18]; /* upper-case */
    int64_t poll_ms, timeout_ms, retry_ms, wait_after_ms;
    int connect_retry, show_map, has_chars;
    tbgw_report_strategy rs;
    bitem *items;
    size_t n_items;
    /* runtime */
    char *path; /* BlueZ object while the device is known */
    int connected;
    int64_t next_connect, next_poll;
    int failures;
    unsigned gen;          /* bumped when the device disconnects or goes away: late replies are dropped */
    int connecting;        /* a Connect call is in flight */
    int pending;           /* reads of the current poll in flight */
    tbgw_converted *batch; /* the current poll's values */
    bchar *chars;
    size_t n_chars;
    uint8_t *mfr; /* first manufacturer data value of the latest advertisement */
    size_t mfr_len;
    int has_mfr;
} bdev;

typedef struct bc {
    const tbgw_host *h;
    json_t *cfg;
    const char *adapter_want; /* "hci0" or an adapter address; NULL = the first one */
    char *adapter;            /* its object path */
    bdev *devs;
    size_t n_devs;
    int64_t scan_period_ms;
    int show_map;
    const char *scan_name;
    sd_bus *bus;
    tbgw_ble_conv conv;
    volatile int stop;
    int lost;    /* BlueZ left or restarted: reopen */
    char *owner; /* BlueZ's unique bus name */
    int64_t next_open, next_scan;
} bc;

/* ble_bus.c */
int ble_bus_open(bc *c);
void ble_bus_close(bc *c);
int ble_bus_refresh(bc *c);
void ble_bus_discovery(bc *c);
/* Disconnects d (asynchronously) and forgets the connection. */
void ble_disconnect(bc *c, bdev *d);
/* What an asynchronous call's completion needs (copied with the call). */
typedef struct ble_call {
    const void *arg;
    char key[160];
    uint64_t handle; /* an RPC to answer */
    int flags;
    int always; /* complete even when the device disconnected meanwhile (an RPC must be answered) */
} ble_call;
/* fn runs on the reply (error = its message, or NULL) unless d went away or reconnected meanwhile
 * (then only with call->always, with an error). */
typedef void (*ble_done_fn)(bc *c, bdev *d, const ble_call *call, sd_bus_message *reply, const char *error);
/* An asynchronous call on an object of d with d's timeout; call may be NULL. */
int ble_call_async(bc *c, bdev *d, const char *path, const char *iface, const char *method, ble_done_fn fn,
                   const ble_call *call, const char *sig, ...);
/* WriteValue of p with response (ack) or without. */
int ble_write_async(bc *c, bdev *d, const bchar *ch, const void *p, size_t len, int ack, ble_done_fn fn,
                    const ble_call *call);
bchar *ble_char(bdev *d, const char *uuid);    /* by lower-case UUID */
bchar *ble_char_at(bdev *d, const char *path); /* by object path */

/* ble.c: events from the bus */
void ble_on_value(bc *c, bdev *d, const bchar *ch, const uint8_t *p, size_t n);
void ble_on_seen(bc *c, bdev *d);
void ble_on_gone(bc *c, bdev *d);
/* Drops d's BlueZ object, characteristics and connection (no log). */
void ble_forget(bdev *d);
void ble_on_disconnected(bc *c, bdev *d);
/* Forgets a connection: in-flight replies dropped, subscriptions and the current poll cleared. */
void ble_dev_reset(bdev *d);
void ble_gatt_map(bdev *d, tbgw_buf *out);

/* ble_rpc.c */
int ble_attr_update(void *self, const tbgw_attr_update *u);
int ble_rpc(void *self, const tbgw_rpc_req *r);

#endif
