/* Example custom uplink converter for the MQTT connector (include/tbgw/converter.h).
 *
 * "CustomMqttUplinkConverter" mirrors the reference gateway's example extension: the payload is text
 * holding hex bytes ("0x1A2B.." or "1a2b.."); the device name is the last topic level, the profile
 * "Thermostat". extensionConfig {"temperature": 2, "humidity": 2, "batteryLevel": 1} reads that many
 * bytes per key, in order, big-endian, as telemetry (a key suffix "Bytes" is dropped). Without
 * extensionConfig the whole payload is parsed as one integer (decimal, 0x hex or 0 octal) into "data".
 *
 * Build: any folder examples/<name>/ becomes build/plugins/<name>.so. Install by copying it to
 * <config dir>/extensions/mqtt/CustomMqttUplinkConverter.so (or set "extension" to a path). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/converter.h>

typedef struct example {
    const tbgw_converter_api *api;
    tbgw_logger *log;
    json_t *layout; /* extensionConfig (or legacy "extension-config"), may be NULL */
} example;

static int ex_create(const tbgw_converter_api *api, const json_t *config, tbgw_logger *log, void **self,
                     tbgw_err *err) {
    json_t *layout = json_object_get(config, "extensionConfig");
    if (!layout) layout = json_object_get(config, "extension-config");
    if (layout && !json_is_object(layout)) {
        if (err) {
            err->code = TBGW_EINVAL;
            strcpy(err->msg, "extensionConfig: expected an object {\"key\": byte count}");
        }
        return TBGW_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(layout, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 8) {
            if (err) {
                err->code = TBGW_EINVAL;
                strcpy(err->msg, "extensionConfig: byte counts must be integers 1..8");
            }
            return TBGW_EINVAL;
        }
    }
    example *e = calloc(1, sizeof *e);
    if (!e) return TBGW_ENOMEM;
    e->api = api;
    e->log = log;
    e->layout = layout ? json_incref(layout) : NULL;
    *self = e;
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes hex text (optional "0x" prefixes, whitespace ignored) into out; returns byte count or -1. */
static long decode_hex(const uint8_t *p, size_t len, uint8_t *out, size_t cap) {
    size_t n = 0;
    int hi = -1;
    for (size_t i = 0; i < len; i++) {
        if (isspace(p[i])) continue;
        if (p[i] == '0' && i + 1 < len && (p[i + 1] == 'x' || p[i + 1] == 'X') && hi < 0) {
            i++;
            continue;
        }
        int v = hexval(p[i]);
        if (v < 0) return -1;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n == cap) return -1;
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    return hi < 0 ? (long)n : -1;
}

static int fail(tbgw_err *err, const char *msg) {
    if (err) {
        err->code = TBGW_EINVAL;
        strncpy(err->msg, msg, sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    return TBGW_EINVAL;
}

static int ex_convert(void *self, const char *topic, const uint8_t *payload, size_t len, tbgw_converted **out,
                      tbgw_err *err) {
    example *e = self;
    const char *slash = strrchr(topic, '/');
    const char *name = slash ? slash + 1 : topic;
    if (!*name) return fail(err, "topic has no device name after its last '/'");
    int64_t ts = e->api->now_ms();
    tbgw_converted *c = e->api->converted_new(name, "Thermostat");
    if (!c) return TBGW_ENOMEM;
    *out = c;
    if (!e->layout) {
        char text[64];
        if (len == 0 || len >= sizeof text) return fail(err, "payload: expected an integer");
        memcpy(text, payload, len);
        text[len] = 0;
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 0);
        if (errno || end == text || *end) return fail(err, "payload: expected an integer");
        tbgw_value tv = tbgw_value_int(v);
        return e->api->add_telemetry(c, ts, "data", &tv);
    }
    uint8_t bytes[512];
    long n = decode_hex(payload, len, bytes, sizeof bytes);
    if (n < 0) return fail(err, "payload: expected hex text");
    long pos = 0;
    const char *k;
    json_t *cnt;
    json_object_foreach(e->layout, k, cnt) {
        long want = (long)json_integer_value(cnt);
        if (pos + want > n) {
            e->api->log(e->log, TBGW_DEBUG, "payload too short for %s (%ld bytes)", k, n);
            break;
        }
        int64_t v = 0;
        for (long i = 0; i < want; i++) v = v * 256 + bytes[pos++];
        char key[128];
        size_t kl = strlen(k);
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, k, kl);
        key[kl] = 0;
        char *suffix = strstr(key, "Bytes");
        if (suffix && suffix[5] == 0 && suffix != key) *suffix = 0;
        tbgw_value tv = tbgw_value_int(v);
        int rc = e->api->add_telemetry(c, ts, key, &tv);
        if (rc) return rc;
    }
    return 0;
}

static void ex_destroy(void *self) {
    example *e = self;
    json_decref(e->layout);
    free(e);
}

static const tbgw_converter_ops example_ops = {
    .abi = TBGW_CONVERTER_ABI,
    .name = "CustomMqttUplinkConverter",
    .create = ex_create,
    .convert = ex_convert,
    .destroy = ex_destroy,
};

const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name);

const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name) {
    if (abi != TBGW_CONVERTER_ABI || !name) return NULL;
    return strcmp(name, example_ops.name) == 0 ? &example_ops : NULL;
}
