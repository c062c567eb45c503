/* BLE connector: BlueZ over D-Bus (sd-bus). Objects come from ObjectManager.GetManagedObjects and
 * its InterfacesAdded/InterfacesRemoved signals; values and connection state from
 * PropertiesChanged. Calls are synchronous with the device's timeout. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/ble/ble_conn.h"
#include "util/time.h"

#define BLUEZ      "org.bluez"
#define ADAPTER_IF "org.bluez.Adapter1"
#define DEVICE_IF  BLE_DEVICE_IF
#define CHAR_IF    BLE_CHAR_IF

enum { PASS_ADAPTER = 1, PASS_DEVICE = 2, PASS_CHAR = 4, PASS_ALL = 7 };

typedef struct props {
    char address[18];
    char uuid[40];
    char flags[160];
    int connected; /* -1 = not in the message */
    const void *value, *mfr;
    size_t value_len, mfr_len;
    int has_value, has_mfr;
} props;

static void lower_copy(char *dst, size_t cap, const char *s) {
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) dst[i] = (char)tolower((unsigned char)s[i]);
    dst[i] = 0;
}

static int read_mfr(sd_bus_message *m, props *p) {
    int r = sd_bus_message_enter_container(m, 'v', "a{qv}");
    if (r < 0 || (r = sd_bus_message_enter_container(m, 'a', "{qv}")) < 0) return r;
    while ((r = sd_bus_message_enter_container(m, 'e', "qv")) > 0) {
        uint16_t id;
        const char *contents = NULL;
        if ((r = sd_bus_message_read(m, "q", &id)) < 0) return r;
        if (!p->has_mfr && sd_bus_message_peek_type(m, NULL, &contents) >= 0 && contents &&
            strcmp(contents, "ay") == 0) {
            if ((r = sd_bus_message_enter_container(m, 'v', "ay")) < 0 ||
                (r = sd_bus_message_read_array(m, 'y', &p->mfr, &p->mfr_len)) < 0 ||
                (r = sd_bus_message_exit_container(m)) < 0)
                return r;
            p->has_mfr = 1;
        } else if ((r = sd_bus_message_skip(m, "v")) < 0) {
            return r;
        }
        if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    }
    if (r < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    if (!p->has_mfr) p->has_mfr = 2; /* present but empty */
    return sd_bus_message_exit_container(m);
}

static int read_flags(sd_bus_message *m, props *p) {
    char **v = NULL;
    int r = sd_bus_message_enter_container(m, 'v', "as");
    if (r < 0 || (r = sd_bus_message_read_strv(m, &v)) < 0) return r;
    size_t o = 0;
    for (char **s = v; s && *s; s++) {
        int w = snprintf(p->flags + o, sizeof p->flags - o, "%s%s", o ? "," : "", *s);
        if (w > 0 && (size_t)w < sizeof p->flags - o) o += (size_t)w;
        free(*s);
    }
    free(v);
    return sd_bus_message_exit_container(m);
}

/* Reads an a{sv} of properties, keeping those the connector uses. */
static int read_props(sd_bus_message *m, props *p) {
    int r = sd_bus_message_enter_container(m, 'a', "{sv}");
    if (r < 0) return r;
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const char *k, *contents = NULL, *s;
        if ((r = sd_bus_message_read(m, "s", &k)) < 0 ||
            (r = sd_bus_message_peek_type(m, NULL, &contents)) < 0)
            return r;
        const char *ct = contents ? contents : "";
        if (strcmp(k, "Address") == 0 && strcmp(ct, "s") == 0) {
            if ((r = sd_bus_message_read(m, "v", "s", &s)) < 0) return r;
            snprintf(p->address, sizeof p->address, "%s", s);
            for (char *q = p->address; *q; q++) *q = (char)toupper((unsigned char)*q);
        } else if (strcmp(k, "UUID") == 0 && strcmp(ct, "s") == 0) {
            if ((r = sd_bus_message_read(m, "v", "s", &s)) < 0) return r;
            lower_copy(p->uuid, sizeof p->uuid, s);
        } else if (strcmp(k, "Connected") == 0 && strcmp(ct, "b") == 0) {
            if ((r = sd_bus_message_read(m, "v", "b", &p->connected)) < 0) return r;
        } else if (strcmp(k, "Value") == 0 && strcmp(ct, "ay") == 0) {
            if ((r = sd_bus_message_enter_container(m, 'v', "ay")) < 0 ||
                (r = sd_bus_message_read_array(m, 'y', &p->value, &p->value_len)) < 0 ||
                (r = sd_bus_message_exit_container(m)) < 0)
                return r;
            p->has_value = 1;
        } else if (strcmp(k, "ManufacturerData") == 0 && strcmp(ct, "a{qv}") == 0) {
            if ((r = read_mfr(m, p)) < 0) return r;
        } else if (strcmp(k, "Flags") == 0 && strcmp(ct, "as") == 0) {
            if ((r = read_flags(m, p)) < 0) return r;
        } else if ((r = sd_bus_message_skip(m, "v")) < 0) {
            return r;
        }
        if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    }
    if (r < 0) return r;
    return sd_bus_message_exit_container(m);
}

static bdev *dev_by_path(bc *c, const char *path, int prefix) {
    for (size_t i = 0; i < c->n_devs; i++) {
        bdev *d = &c->devs[i];
        if (!d->path) continue;
        size_t l = strlen(d->path);
        if (prefix ? strncmp(path, d->path, l) == 0 && path[l] == '/' : strcmp(path, d->path) == 0) return d;
    }
    return NULL;
}

bchar *ble_char_at(bdev *d, const char *path) {
    for (size_t i = 0; i < d->n_chars; i++)
        if (strcmp(d->chars[i].path, path) == 0) return &d->chars[i];
    return NULL;
}

bchar *ble_char(bdev *d, const char *uuid) {
    for (size_t i = 0; i < d->n_chars; i++)
        if (strcmp(d->chars[i].uuid, uuid) == 0) return &d->chars[i];
    return NULL;
}

static void set_mfr(bdev *d, const props *p) {
    if (p->has_mfr != 1) return;
    uint8_t *n = malloc(p->mfr_len ? p->mfr_len : 1);
    if (!n) return;
    if (p->mfr_len) memcpy(n, p->mfr, p->mfr_len);
    free(d->mfr);
    d->mfr = n;
    d->mfr_len = p->mfr_len;
    d->has_mfr = 1;
}

static void on_device(bc *c, const char *path, const props *p) {
    if (c->adapter && (strncmp(path, c->adapter, strlen(c->adapter)) != 0 || path[strlen(c->adapter)] != '/'))
        return;
    for (size_t i = 0; i < c->n_devs; i++) {
        bdev *d = &c->devs[i];
        if (strcmp(d->mac, p->address) != 0) continue;
        int is_new = !d->path;
        if (is_new) d->path = strdup(path);
        set_mfr(d, p);
        if (p->connected == 1 && !d->connected && !is_new) d->connected = 1;
        if (is_new) ble_on_seen(c, d);
    }
}

static void on_char(bc *c, const char *path, const props *p) {
    bdev *d = dev_by_path(c, path, 1);
    if (!d || ble_char_at(d, path) || !p->uuid[0]) return;
    bchar *n = realloc(d->chars, (d->n_chars + 1) * sizeof *n);
    if (!n) return;
    d->chars = n;
    bchar *ch = &d->chars[d->n_chars];
    memset(ch, 0, sizeof *ch);
    ch->path = strdup(path);
    if (!ch->path) return;
    snprintf(ch->uuid, sizeof ch->uuid, "%s", p->uuid);
    snprintf(ch->flags, sizeof ch->flags, "%s", p->flags);
    d->n_chars++;
    if (d->connected) d->next_poll = 0; /* services resolved after the connect: read and subscribe now */
}

/* Reads one object's a{sa{sv}} and applies the interfaces selected by pass. */
static int read_ifaces(bc *c, sd_bus_message *m, const char *path, int pass) {
    int r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
    if (r < 0) return r;
    while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
        const char *iface;
        if ((r = sd_bus_message_read(m, "s", &iface)) < 0) return r;
        int which = strcmp(iface, ADAPTER_IF) == 0  ? PASS_ADAPTER
                    : strcmp(iface, DEVICE_IF) == 0 ? PASS_DEVICE
                    : strcmp(iface, CHAR_IF) == 0   ? PASS_CHAR
                                                    : 0;
        if (which & pass) {
            props p = {.connected = -1};
            if ((r = read_props(m, &p)) < 0) return r;
            if (which == PASS_ADAPTER && !c->adapter) {
                const char *base = strrchr(path, '/');
                if (!c->adapter_want || (base && strcmp(base + 1, c->adapter_want) == 0) ||
                    strcasecmp(p.address, c->adapter_want) == 0)
                    c->adapter = strdup(path);
            } else if (which == PASS_DEVICE) {
                on_device(c, path, &p);
            } else if (which == PASS_CHAR) {
                on_char(c, path, &p);
            }
        } else if ((r = sd_bus_message_skip(m, "a{sv}")) < 0) {
            return r;
        }
        if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    }
    if (r < 0) return r;
    return sd_bus_message_exit_container(m);
}

static int managed_objects(bc *c, int pass) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    int r = sd_bus_call_method(c->bus, BLUEZ, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                               &e, &reply, "");
    if (r < 0) {
        TBGW_ERRORF(c->h->log, "BlueZ GetManagedObjects failed: %s", e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        return r;
    }
    if ((r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}")) >= 0) {
        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
            const char *path;
            if ((r = sd_bus_message_read(reply, "o", &path)) < 0 ||
                (r = read_ifaces(c, reply, path, pass)) < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                break;
        }
    }
    if (r < 0) TBGW_ERRORF(c->h->log, "BlueZ GetManagedObjects: malformed reply (%s)", strerror(-r));
    sd_bus_message_unref(reply);
    return r < 0 ? r : 0;
}

int ble_bus_refresh(bc *c) {
    int r = managed_objects(c, PASS_DEVICE);
    return r < 0 ? r : managed_objects(c, PASS_CHAR);
}

/* Only BlueZ speaks for BlueZ's objects: signals from any other sender are ignored. */
static int from_bluez(const bc *c, sd_bus_message *m) {
    const char *s = sd_bus_message_get_sender(m);
    return c->owner && s && strcmp(s, c->owner) == 0;
}

static int on_added(sd_bus_message *m, void *ud, sd_bus_error *e) {
    (void)e;
    bc *c = ud;
    if (!from_bluez(c, m)) return 0;
    const char *path;
    if (sd_bus_message_read(m, "o", &path) < 0) return 0;
    if (read_ifaces(c, m, path, PASS_ALL) < 0)
        TBGW_WARNF(c->h->log, "malformed InterfacesAdded for %s", path);
    return 0;
}

static int on_removed(sd_bus_message *m, void *ud, sd_bus_error *e) {
    (void)e;
    bc *c = ud;
    const char *path;
    char **ifs = NULL;
    if (!from_bluez(c, m)) return 0;
    if (sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_read_strv(m, &ifs) < 0) return 0;
    for (char **s = ifs; s && *s; s++) {
        bdev *d;
        if (strcmp(*s, DEVICE_IF) == 0 && (d = dev_by_path(c, path, 0)) != NULL) {
            ble_on_gone(c, d);
        } else if (strcmp(*s, CHAR_IF) == 0 && (d = dev_by_path(c, path, 1)) != NULL) {
            bchar *ch = ble_char_at(d, path);
            if (ch) {
                free(ch->path);
                *ch = d->chars[--d->n_chars];
            }
        }
    }
    for (char **s = ifs; s && *s; s++) free(*s);
    free(ifs);
    return 0;
}

static int on_props(sd_bus_message *m, void *ud, sd_bus_error *e) {
    (void)e;
    bc *c = ud;
    const char *iface, *path = sd_bus_message_get_path(m);
    if (!path || !from_bluez(c, m) || sd_bus_message_read(m, "s", &iface) < 0) return 0;
    props p = {.connected = -1};
    if (read_props(m, &p) < 0) return 0;
    bdev *d;
    if (strcmp(iface, DEVICE_IF) == 0 && (d = dev_by_path(c, path, 0)) != NULL) {
        set_mfr(d, &p);
        if (p.connected == 0 && d->connected) ble_on_disconnected(c, d);
    } else if (strcmp(iface, CHAR_IF) == 0 && p.has_value && (d = dev_by_path(c, path, 1)) != NULL) {
        bchar *ch = ble_char_at(d, path);
        if (ch) ble_on_value(c, d, ch, p.value, p.value_len);
    }
    return 0;
}

/* bluetoothd went away or came back: its objects are gone; the run loop reopens. */
static int on_owner(sd_bus_message *m, void *ud, sd_bus_error *e) {
    (void)e;
    bc *c = ud;
    const char *name, *old, *now;
    if (sd_bus_message_read(m, "sss", &name, &old, &now) < 0 || strcmp(name, BLUEZ) != 0) return 0;
    TBGW_WARNF(c->h->log, "BlueZ %s the bus", *now ? "restarted on" : "left");
    c->lost = 1;
    return 0;
}

void ble_bus_discovery(bc *c) {
    if (!c->adapter) return;
    sd_bus_error e = SD_BUS_ERROR_NULL;
    /* LE only, every advertisement reported (manufacturer data updates) */
    int r = sd_bus_call_method(c->bus, BLUEZ, c->adapter, ADAPTER_IF, "SetDiscoveryFilter", &e, NULL, "a{sv}",
                               2, "Transport", "s", "le", "DuplicateData", "b", 1);
    if (r < 0) TBGW_DEBUGF(c->h->log, "SetDiscoveryFilter: %s", e.message ? e.message : strerror(-r));
    sd_bus_error_free(&e);
    r = sd_bus_call_method(c->bus, BLUEZ, c->adapter, ADAPTER_IF, "StartDiscovery", &e, NULL, "");
    if (r < 0 && !sd_bus_error_has_name(&e, "org.bluez.Error.InProgress"))
        TBGW_WARNF(c->h->log, "StartDiscovery on %s: %s", c->adapter, e.message ? e.message : strerror(-r));
    sd_bus_error_free(&e);
}

int ble_bus_open(bc *c) {
    int r = sd_bus_open_system(&c->bus);
    if (r < 0) {
        TBGW_ERRORF(c->h->log, "cannot connect to the system D-Bus: %s", strerror(-r));
        return r;
    }
    if ((r = sd_bus_match_signal(c->bus, NULL, NULL, NULL, "org.freedesktop.DBus.ObjectManager",
                                 "InterfacesAdded", on_added, c)) < 0 ||
        (r = sd_bus_match_signal(c->bus, NULL, NULL, NULL, "org.freedesktop.DBus.ObjectManager",
                                 "InterfacesRemoved", on_removed, c)) < 0 ||
        (r = sd_bus_add_match(c->bus, NULL,
                              "type='signal',interface='org.freedesktop.DBus.Properties',"
                              "member='PropertiesChanged',path_namespace='/org/bluez'",
                              on_props, c)) < 0 ||
        (r = sd_bus_match_signal(c->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "NameOwnerChanged", on_owner, c)) < 0) {
        TBGW_ERRORF(c->h->log, "cannot subscribe to BlueZ signals: %s", strerror(-r));
        ble_bus_close(c);
        return r;
    }
    sd_bus_message *reply = NULL;
    const char *owner = NULL;
    r = sd_bus_call_method(c->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "GetNameOwner", NULL, &reply, "s", BLUEZ);
    if (r >= 0 && sd_bus_message_read(reply, "s", &owner) >= 0 && owner) c->owner = strdup(owner);
    sd_bus_message_unref(reply);
    if (!c->owner) {
        TBGW_ERRORF(c->h->log, "BlueZ (%s) is not on the system bus", BLUEZ);
        ble_bus_close(c);
        return -ENOENT;
    }
    if ((r = managed_objects(c, PASS_ADAPTER)) < 0) {
        ble_bus_close(c);
        return r;
    }
    if (!c->adapter) {
        TBGW_ERRORF(c->h->log, "no Bluetooth adapter%s%s found", c->adapter_want ? " " : "",
                    c->adapter_want ? c->adapter_want : "");
        ble_bus_close(c);
        return -ENODEV;
    }
    TBGW_INFOF(c->h->log, "using Bluetooth adapter %s", c->adapter);
    ble_bus_discovery(c);
    return ble_bus_refresh(c);
}

void ble_bus_close(bc *c) {
    for (size_t i = 0; i < c->n_devs; i++)
        if (c->devs[i].path) ble_forget(&c->devs[i]);
    if (c->bus) sd_bus_flush_close_unref(c->bus);
    c->bus = NULL;
    c->lost = 0;
    free(c->owner);
    c->owner = NULL;
    free(c->adapter);
    c->adapter = NULL;
}

typedef struct pcall {
    bc *c;
    bdev *d;
    unsigned gen;
    ble_done_fn fn;
    ble_call call;
} pcall;

static int pcall_done(sd_bus_message *m, void *ud, sd_bus_error *e) {
    (void)e;
    pcall *p = ud;
    if (p->gen != p->d->gen) { /* the device went away or reconnected meanwhile */
        if (p->call.always) p->fn(p->c, p->d, &p->call, m, "the device disconnected");
        return 0;
    }
    const sd_bus_error *err = sd_bus_message_get_error(m);
    p->fn(p->c, p->d, &p->call, m, err ? (err->message ? err->message : err->name) : NULL);
    return 0;
}

/* Sends m (unref'ed here); the bus owns the call state until the reply or its own end. */
static int submit(bc *c, bdev *d, sd_bus_message *m, int r, ble_done_fn fn, const ble_call *call) {
    pcall *p = r >= 0 ? calloc(1, sizeof *p) : NULL;
    sd_bus_slot *slot = NULL;
    if (p) {
        *p = (pcall){.c = c, .d = d, .gen = d->gen, .fn = fn};
        if (call) p->call = *call;
        r = sd_bus_call_async(c->bus, &slot, m, pcall_done, p, (uint64_t)d->timeout_ms * 1000);
    } else if (r >= 0) {
        r = -ENOMEM;
    }
    sd_bus_message_unref(m);
    if (r < 0) {
        free(p);
        return r;
    }
    sd_bus_slot_set_destroy_callback(slot, free);
    sd_bus_slot_set_floating(slot, 1);
    sd_bus_slot_unref(slot);
    return 0;
}

int ble_call_async(bc *c, bdev *d, const char *path, const char *iface, const char *method, ble_done_fn fn,
                   const ble_call *call, const char *sig, ...) {
    sd_bus_message *m = NULL;
    int r = sd_bus_message_new_method_call(c->bus, &m, BLUEZ, path, iface, method);
    if (r >= 0 && sig) {
        va_list ap;
        va_start(ap, sig);
        r = sd_bus_message_appendv(m, sig, ap);
        va_end(ap);
    }
    return submit(c, d, m, r, fn, call);
}

int ble_write_async(bc *c, bdev *d, const bchar *ch, const void *p, size_t len, int ack, ble_done_fn fn,
                    const ble_call *call) {
    sd_bus_message *m = NULL;
    int r = sd_bus_message_new_method_call(c->bus, &m, BLUEZ, ch->path, CHAR_IF, "WriteValue");
    if (r >= 0) r = sd_bus_message_append_array(m, 'y', p, len);
    if (r >= 0) r = sd_bus_message_append(m, "a{sv}", 1, "type", "s", ack ? "request" : "command");
    return submit(c, d, m, r, fn, call);
}

static void disconnect_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    (void)c, (void)d, (void)k, (void)reply, (void)error; /* its reply comes after the reset: dropped */
}

void ble_disconnect(bc *c, bdev *d) {
    /* sent without waiting (closing the bus flushes it); later replies of d are dropped */
    if (d->path && c->bus)
        ble_call_async(c, d, d->path, DEVICE_IF, "Disconnect", disconnect_done, NULL, NULL);
    ble_dev_reset(d);
}
