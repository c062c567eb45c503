/* BACnet connector pieces without the network: address patterns and deviceId forms (the vectors of
 * the reference's test_device.py), mask normalisation (bacnet_test_mask_conversion.py), the config
 * walk (items, ranges, "*", old format, EDE), value conversion and downlink value encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/bacnet/bacnet.h"

static int warnings;
static char last_path[160], last_msg[300];

static void f_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    snprintf(last_path, sizeof last_path, "%s", dotted);
    snprintf(last_msg, sizeof last_msg, "%s", msg);
    warnings++;
}

static tbgw_host host(void) {
    tbgw_host h;
    memset(&h, 0, sizeof h);
    h.log = tbgw_logger_get("connector.BACnet");
    h.conv_log = h.log;
    h.config_warning = f_warning;
    return h;
}

static void test_address_patterns(void **st) {
    (void)st;
    assert_true(bnc_address_match("*:*:*", "2001:10"));
    assert_true(bnc_address_match("*:*", "192.168.1.5:47809"));
    assert_true(bnc_address_match("*:*", "192.168.1.5"));
    assert_true(bnc_address_match("*", "192.168.1.5"));
    assert_false(bnc_address_match("*", "192.168.1.5:47809"));
    assert_true(bnc_address_match("192.168.X.X:47808", "192.168.2.3:47808"));
    assert_true(bnc_address_match("192.168.X.X:47808", "192.168.1.5"));
    assert_false(bnc_address_match("192.168.X.X:47808", "192.168.1.5:47809"));
    assert_false(bnc_address_match("192.168.X.X:47808", "10.168.1.5"));
    assert_true(bnc_address_match("192.168.X.X:*", "192.168.1.5:47809"));
    assert_true(bnc_address_match("192.168.X.X:*", "192.168.1.5"));
    assert_true(bnc_address_match("*:6789", "192.168.1.1:6789"));
    assert_true(bnc_address_match("*:6789", "2001:6789"));
    assert_false(bnc_address_match("*:6789", "192.168.23.1"));
    assert_true(bnc_address_match("192.168.1.1:47808", "192.168.1.1:47808"));
    assert_true(bnc_address_match("192.168.1.1:47808", "192.168.1.1"));
    assert_false(bnc_address_match("192.168.1.1:47808", "192.168.1.10"));
    assert_true(bnc_address_match("192.168.X.X:*@domain", "192.168.7.7:1000"));
    assert_true(bnc_address_match("192.168.1.136:47809", "192.168.1.136:47809"));
    assert_true(bnc_address_match("127.0.0.1:40000", "127.0.0.1:40000"));
    assert_false(bnc_address_match("127.0.0.1:40000", "127.0.0.1:40001"));
}

static void test_device_id(void **st) {
    (void)st;
    const char *forms[] = {"\"*\"", "1234", "\"1000-2000\"", "[\"1-5\", 1234]", "\"12[0-9]+\""};
    int expect[][3] = {{1, 1, 1}, {1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 0, 0}}; /* 1234, 3, 1500 */
    for (size_t i = 0; i < 5; i++) {
        char text[512];
        snprintf(
            text, sizeof text,
            "{\"application\":{\"host\":\"127.0.0.1\",\"objectIdentifier\":1},\"devices\":[{\"host\":\"*\","
            "\"deviceId\":%s,\"deviceInfo\":{\"deviceNameExpression\":\"d\"}}]}",
            forms[i]);
        json_t *j = json_loads(text, 0, NULL);
        tbgw_host h = host();
        bnc_config c;
        tbgw_err err = {0};
        assert_int_equal(bnc_config_parse(&h, j, &c, &err), 0);
        assert_int_equal(c.n_devs, 1);
        assert_int_equal(bnc_id_match(&c.devs[0].id, 1234), expect[i][0]);
        assert_int_equal(bnc_id_match(&c.devs[0].id, 3), expect[i][1]);
        assert_int_equal(bnc_id_match(&c.devs[0].id, 1500), expect[i][2]);
        bnc_config_free(&c);
        json_decref(j);
    }
}

static void test_mask(void **st) {
    (void)st;
    const char *kept[] = {"1", "8", "16", "24", "32", "0", "255.255.255.0", "255.255.0.0"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        assert_string_equal(bnc_mask_normalise(kept[i]), kept[i]);
    const char *reset[] = {"33", "100", "999999",          "-1",         "abc", "",
                           " ",  "24/", "255.255.255.256", "255.255.255"};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        assert_string_equal(bnc_mask_normalise(reset[i]), "24");
}

static const char *ref_app =
    "\"application\":{\"objectName\":\"TB_gateway\",\"host\":\"0.0.0.0\",\"port\":47808,"
    "\"mask\":\"24\",\"objectIdentifier\":599,\"maxApduLengthAccepted\":1476}";

static void test_config_items(void **st) {
    (void)st;
    char text[2048];
    snprintf(text, sizeof text,
             "{%s,\"foreignDevice\":{\"address\":\"0.0.0.0\",\"ttl\":900},\"devices\":[{\"host\":\"192.168.2."
             "110\","
             "\"port\":\"47808\",\"mask\":\"24\",\"deviceInfo\":{\"deviceNameExpression\":\"BACnet Device "
             "${objectName}\"},\"timeseries\":[{\"key\":\"t\",\"objectType\":\"analog-input\",\"objectId\":"
             "\"1-3\","
             "\"propertyId\":\"presentValue\"},{\"key\":\"${objectName}\",\"objectType\":[\"analogInput\","
             "\"binaryValue\"],\"objectId\":\"*\",\"propertyId\":[\"presentValue\",\"statusFlags\"]},"
             "{\"key\":\"bad\",\"objectType\":\"nope\",\"objectId\":1,\"propertyId\":\"presentValue\"},"
             "{\"key\":\"dev\",\"objectType\":\"device\",\"objectId\":99,\"propertyId\":\"*\"}],"
             "\"attributes\":\"*\"}]}",
             ref_app);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    tbgw_host h = host();
    warnings = 0;
    bnc_config c;
    tbgw_err err = {0};
    assert_int_equal(bnc_config_parse(&h, j, &c, &err), 0);
    assert_int_equal(warnings, 1); /* the bad objectType, skipped */
    assert_int_equal(c.app.instance, 599);
    assert_int_equal(c.app.bbmd_ip, 0); /* 0.0.0.0 names no BBMD */
    assert_int_equal(c.app.discover_ms, 30000);
    const bnc_devcfg *d = &c.devs[0];
    assert_string_equal(d->address, "192.168.2.110:47808"); /* the mask does not make it unmatchable */
    assert_true(d->unicast);
    assert_true(d->need_object_name);
    assert_int_equal(d->n_items, 3 + 1 + 1 + 1);
    /* attributes come first: "*" */
    assert_int_equal(d->items[0].types[0], -1);
    assert_true(d->items[0].attr);
    assert_int_equal(d->items[3].inst, 3);
    assert_int_equal(d->items[4].inst, BNC_INST_ANY);
    assert_int_equal(d->items[4].n_types, 2);
    assert_int_equal(d->items[4].n_props, 2);
    assert_int_equal(d->items[4].n_tags, 1);
    assert_int_equal(d->items[5].inst, BNC_INST_SELF);
    assert_int_equal(d->items[5].props[0], 8);
    bnc_config_free(&c);
    json_decref(j);
    /* fatal: no objectIdentifier; bad host */
    json_t *bad = json_loads("{\"application\":{\"host\":\"127.0.0.1\"}}", 0, NULL);
    assert_int_not_equal(bnc_config_parse(&h, bad, &c, &err), 0);
    assert_non_null(strstr(err.msg, "application.objectIdentifier"));
    json_decref(bad);
    bad = json_loads("{\"application\":{\"host\":\"nohost\",\"objectIdentifier\":1}}", 0, NULL);
    assert_int_not_equal(bnc_config_parse(&h, bad, &c, &err), 0);
    assert_non_null(strstr(err.msg, "application.host"));
    json_decref(bad);
}

/* Devices behind routers ("net:station", "net:*"), router templates, loadProprietaryDevices. */
static void test_config_routers_and_proprietary(void **st) {
    (void)st;
    const char *devs =
        "\"devices\":[{\"address\":\"2001:10\",\"deviceInfo\":{\"deviceNameExpression\":\"${routerName} "
        "${objectName}\"},\"timeseries\":[{\"key\":\"d\",\"objectType\":\"analogInput\",\"objectId\":1,"
        "\"propertyId\":\"descriptionList\"},{\"key\":\"${descriptionList}\",\"objectType\":\"analogValue\","
        "\"objectId\":2,\"propertyId\":[\"presentValue\",\"description-list\"]},{\"key\":\"x\","
        "\"objectType\":\"analogInput\",\"objectId\":1,\"propertyId\":\"noSuchThing\"}]},"
        "{\"address\":\"7:*\",\"deviceInfo\":{\"deviceNameExpression\":\"n\",\"deviceProfileExpression\":"
        "\"${routerAddress}\"}},{\"address\":\"3:1234\",\"deviceInfo\":{\"deviceNameExpression\":\"${"
        "routerId}"
        "\",\"deviceNameExpressionSource\":\"constant\"}},{\"address\":\"*:*\",\"deviceInfo\":{"
        "\"deviceNameExpression\":\"a\"}},"
        "{\"address\":\"10.0.X.X\",\"deviceInfo\":{\"deviceNameExpression\":\"b\"}}]";
    char text[2048];
    tbgw_host h = host();
    bnc_config c;
    tbgw_err err = {0};
    /* without loadProprietaryDevices: the Siemens property is refused with the reason */
    snprintf(text, sizeof text, "{%s,%s}", ref_app, devs);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    warnings = 0;
    assert_int_equal(bnc_config_parse(&h, j, &c, &err), 0);
    assert_int_equal(warnings, 3);
    assert_string_equal(last_path, "devices[0].timeseries[2].propertyId");
    assert_non_null(strstr(last_msg, "unknown property 'noSuchThing'"));
    assert_false(c.proprietary);
    const bnc_devcfg *d = &c.devs[0];
    assert_int_equal(d->n_items, 0);
    assert_int_equal(d->net, 2001);
    assert_int_equal(d->mac_len, 1);
    assert_int_equal(d->mac[0], 10);
    assert_false(d->unicast);
    assert_true(d->need_router);
    assert_true(d->need_object_name);
    assert_int_equal(c.devs[1].net, 7);
    assert_int_equal(c.devs[1].mac_len, 0); /* remote broadcast */
    assert_true(c.devs[1].need_router);
    assert_int_equal(c.devs[2].net, 3);
    assert_int_equal(c.devs[2].mac_len, 2);
    assert_memory_equal(c.devs[2].mac, ((uint8_t[]){0x04, 0xD2}), 2);
    assert_false(c.devs[2].need_router); /* a constant name */
    /* Who-Is of patterns as the reference: with a port a global broadcast, without one a local one */
    assert_true(c.devs[3].global && !c.devs[3].net);
    assert_false(c.devs[4].global);
    assert_false(c.devs[1].global || c.devs[0].global);
    bnc_config_free(&c);
    json_decref(j);
    warnings = 0;
    last_msg[0] = 0;
    snprintf(text, sizeof text, "{\"application\":{\"host\":\"127.0.0.1\",\"objectIdentifier\":1},%s}", devs);
    j = json_loads(text, 0, NULL);
    assert_int_equal(bnc_config_parse(&h, j, &c, &err), 0);
    assert_int_equal(warnings, 3);
    bnc_config_free(&c);
    json_decref(j);

    /* with it (top level, as the reference reads it; application is honoured too) */
    for (int where = 0; where < 2; where++) {
        if (where == 0)
            snprintf(text, sizeof text,
                     "{\"application\":{\"host\":\"127.0.0.1\",\"objectIdentifier\":1},"
                     "\"loadProprietaryDevices\":true,%s}",
                     devs);
        else
            snprintf(text, sizeof text,
                     "{\"application\":{\"host\":\"127.0.0.1\",\"objectIdentifier\":1,"
                     "\"loadProprietaryDevices\":true},%s}",
                     devs);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        warnings = 0;
        assert_int_equal(bnc_config_parse(&h, j, &c, &err), 0);
        assert_int_equal(warnings, 1); /* only noSuchThing */
        assert_true(c.proprietary);
        d = &c.devs[0];
        assert_int_equal(d->n_items, 2);
        assert_int_equal(d->items[0].props[0], 3121);
        assert_int_equal(d->items[1].n_props, 2);
        assert_int_equal(d->items[1].props[1], 3121);
        assert_int_equal(d->items[1].tags[0], 3121);
        bnc_config_free(&c);
        json_decref(j);
    }
    assert_string_equal(bnc_property_name(1, 3121), "descriptionList");
    assert_null(bnc_property_name(0, 3121));
    assert_int_equal(bnc_property_parse(0, "descriptionList"), -1);
    assert_int_equal(bnc_property_parse(1, "description-list"), 3121);
    assert_int_equal(bnc_property_parse(1, "presentValue"), 85);
}

static void test_old_format(void **st) {
    (void)st;
    json_t *old =
        json_loads("{\"general\":{\"objectName\":\"GW\",\"address\":\"127.0.0.1:47850\",\"objectIdentifier\":"
                   "599},\"devices\":[{\"deviceName\":\"BACnet Device ${objectName}\",\"deviceType\":\"dt\","
                   "\"address\":\"192.168.2.110:47808\",\"timeseries\":[{\"key\":\"state\",\"objectId\":"
                   "\"binaryValue:1\",\"propertyId\":\"presentValue\"}],\"rpc\":[{\"method\":\"m\","
                   "\"requestType\":\"readProperty\",\"objectId\":\"analogOutput:2\",\"propertyId\":"
                   "\"presentValue\"}]}]}",
                   0, NULL);
    assert_non_null(old);
    tbgw_host h = host();
    bnc_config c;
    tbgw_err err = {0};
    assert_int_equal(bnc_config_parse(&h, old, &c, &err), 0);
    assert_int_equal(c.app.port, 47850);
    assert_int_equal(c.n_devs, 1);
    assert_int_equal(c.devs[0].n_items, 1);
    assert_int_equal(c.devs[0].items[0].types[0], 5);
    assert_int_equal(c.devs[0].items[0].inst, 1);
    const json_t *rpc = json_array_get(c.devs[0].rpcs, 0);
    assert_string_equal(json_string_value(json_object_get(rpc, "objectType")), "analogOutput");
    assert_string_equal(json_string_value(json_object_get(rpc, "objectId")), "2");
    bnc_config_free(&c);
    json_decref(old);
}

static void test_ede(void **st) {
    (void)st;
    const char *ede = "#Engineering-Data-Exchange - B.I.G.-EU\n"
                      "PROJECT_NAME;Test\n"
                      "# keyname;device obj.-instance;object-name;object-type;object-instance;description\n"
                      "dev;1234;Boiler;8;1234;the device\n"
                      "t1;1234;Flow temp;0;1;\n"
                      "b1;1234;Pump;4;2;\n"
                      "x1;1234;Calendar;6;1;\n"
                      "o1;99;Other;0;1;\n";
    tbgw_err err = {0};
    json_t *devs = bnc_ede_devices(ede, ';', &err);
    assert_non_null(devs);
    assert_int_equal(json_array_size(devs), 1);
    json_t *d = json_array_get(devs, 0);
    assert_string_equal(json_string_value(json_object_get(d, "deviceId")), "1234");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "deviceInfo"), "deviceNameExpression")),
        "Boiler");
    json_t *ts = json_object_get(d, "timeseries");
    assert_int_equal(json_array_size(ts), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ts, 1), "objectType")),
                        "binaryOutput");
    json_decref(devs);
    assert_null(bnc_ede_devices("no header\n", ';', &err));
    /* base64 form (comma separated) through the config */
    const char *b64 =
        "IyBrZXluYW1lLGRldmljZSBvYmouLWluc3RhbmNlLG9iamVjdC1uYW1lLG9iamVjdC10eXBlLG9iamVjdC1pbnN0YW5jZQpk"
        "LDcsUGxhbnQsOCw3CmEsNyxUZW1wLDAsMwo=";
    char text[1024];
    snprintf(text, sizeof text, "{%s,\"edeConfig\":\"%s\"}", ref_app, b64);
    json_t *j = json_loads(text, 0, NULL);
    tbgw_host h = host();
    bnc_config c;
    assert_int_equal(bnc_config_parse(&h, j, &c, &err), 0);
    assert_int_equal(c.n_devs, 1);
    assert_true(c.devs[0].name_const);
    assert_true(c.devs[0].has_id);
    assert_true(bnc_id_match(&c.devs[0].id, 7));
    assert_int_equal(c.devs[0].items[0].inst, 3);
    assert_true(bnc_address_match(c.devs[0].address, "10.0.0.1:47809"));
    bnc_config_free(&c);
    json_decref(j);
}

static void conv(const uint8_t *p, size_t n, tbgw_vtype type, double d, const char *s) {
    tbgw_value v;
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(bnc_value_convert(0, 85, p, n, &v, &b), 0);
    assert_int_equal(v.type, type);
    if (type == TBGW_V_DOUBLE)
        assert_true(v.u.d == d);
    else
        assert_string_equal(v.u.s, s);
    tbgw_buf_free(&b);
}

static void test_values(void **st) {
    (void)st;
    /* floats rounded to 2 decimals, the rest as Python str() */
    conv((const uint8_t[]){0x44, 0x41, 0xAC, 0x4C, 0xCD}, 5, TBGW_V_DOUBLE, 21.54, NULL); /* 21.5375f */
    conv((const uint8_t[]){0x44, 0x40, 0x49, 0x0F, 0xD0}, 5, TBGW_V_DOUBLE, 3.14, NULL);
    conv((const uint8_t[]){0x91, 0x01}, 2, TBGW_V_STRING, 0, "1");
    conv((const uint8_t[]){0x21, 0x02}, 2, TBGW_V_STRING, 0, "2");
    conv((const uint8_t[]){0x11}, 1, TBGW_V_STRING, 0, "True");
    conv((const uint8_t[]){0x00}, 1, TBGW_V_STRING, 0, "None");
    conv((const uint8_t[]){0x75, 0x03, 0x00, 'h', 'i'}, 5, TBGW_V_STRING, 0, "hi");
    conv((const uint8_t[]){0x82, 0x04, 0x40}, 3, TBGW_V_STRING, 0, "[0, 1, 0, 0]");
    conv((const uint8_t[]){0xC4, 0x00, 0x00, 0x00, 0x01, 0xC4, 0x02, 0x00, 0x00, 0x07}, 10, TBGW_V_STRING, 0,
         "['analog-input,1', 'device,7']");
    conv((const uint8_t[]){0x00, 0x44, 0x42, 0x90, 0x00, 0x00}, 6, TBGW_V_STRING, 0, "[None, 72.0]");
    conv((const uint8_t[]){0xA4, 0x7C, 0x01, 0x1F, 0x03}, 5, TBGW_V_STRING, 0, "2024-01-31");
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(bnc_value_text(1, 85, (const uint8_t[]){0x44, 0x42, 0x60, 0x00, 0x00}, 5, &b), 0);
    assert_string_equal(tbgw_buf_cstr(&b), "56.0");
    /* str() of a float as Python prints it: positional from 1e-4 up to 1e16, else 1e+16 / 1.5e-05 */
    static const struct {
        uint8_t enc[10];
        const char *text;
    } floats[] = {
        {{0x55, 0x08, 0x40, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, "40.0"},
        {{0x55, 0x08, 0x43, 0x41, 0xC3, 0x79, 0x37, 0xE0, 0x80, 0x00}, "1e+16"},
        {{0x55, 0x08, 0x3E, 0xEF, 0x75, 0x10, 0x4D, 0x55, 0x1D, 0x69}, "1.5e-05"},
        {{0x55, 0x08, 0x3F, 0x1A, 0x36, 0xE2, 0xEB, 0x1C, 0x43, 0x2D}, "0.0001"},
        {{0x55, 0x08, 0x42, 0xDC, 0x12, 0x21, 0x83, 0x77, 0xDE, 0x66}, "123456789012345.6"},
        {{0x55, 0x08, 0xBF, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, "-0.5"},
        {{0x55, 0x08, 0x3E, 0x7A, 0xD7, 0xF2, 0x9A, 0xBC, 0xAF, 0x48}, "1e-07"},
        {{0x55, 0x08, 0x44, 0x2B, 0x1A, 0xE4, 0xD6, 0xE2, 0xEF, 0x50}, "2.5e+20"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        tbgw_buf_reset(&b);
        assert_int_equal(bnc_value_text(2, 85, floats[i].enc, 10, &b), 0);
        assert_string_equal(tbgw_buf_cstr(&b), floats[i].text);
    }
    tbgw_buf_reset(&b);
    assert_int_equal(bnc_value_text(1, 85, (const uint8_t[]){0x44, 0x42, 0x20, 0x00, 0x00}, 5, &b), 0);
    assert_string_equal(tbgw_buf_cstr(&b), "40.0"); /* a Real of 40 */
    tbgw_value v;
    assert_int_equal(bnc_value_convert(0, 85, (const uint8_t[]){0x44, 0x42}, 2, &v, &b), -1);
    tbgw_buf_free(&b);
}

static void enc(uint16_t type, uint32_t prop, const char *json, const uint8_t *want, size_t n) {
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    uint8_t buf[64];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    char why[100];
    assert_int_equal(bnc_value_encode(&w, type, prop, v, why, sizeof why), 0);
    assert_int_equal(w.len, n);
    assert_memory_equal(buf, want, n);
    json_decref(v);
}

static void test_encode_downlink(void **st) {
    (void)st;
    enc(1, 85, "75", (const uint8_t[]){0x44, 0x42, 0x96, 0x00, 0x00}, 5);     /* analogOutput: Real */
    enc(1, 85, "\"42\"", (const uint8_t[]){0x44, 0x42, 0x28, 0x00, 0x00}, 5); /* reserved set: text */
    enc(4, 85, "true", (const uint8_t[]){0x91, 0x01}, 2);                     /* binaryOutput: Enumerated */
    enc(4, 85, "\"inactive\"", (const uint8_t[]){0x91, 0x00}, 2);
    enc(19, 85, "3", (const uint8_t[]){0x21, 0x03}, 2);               /* multiStateValue */
    enc(1, 85, "null", (const uint8_t[]){0x00}, 1);                   /* relinquish */
    enc(1, 28, "\"hi\"", (const uint8_t[]){0x73, 0x00, 'h', 'i'}, 4); /* description */
    enc(1, 81, "1", (const uint8_t[]){0x11}, 1);                      /* outOfService */
    json_t *v = json_string("abc");
    uint8_t buf[16];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    char why[100];
    assert_int_equal(bnc_value_encode(&w, 1, 85, v, why, sizeof why), -1);
    json_decref(v);
}

static void test_special_writes(void **st) {
    (void)st;
    uint8_t buf[128];
    bn_w w;
    char why[100];
    /* weeklySchedule for Real elements (the first reference is an analogValue) */
    json_t *v = json_string("[[('08:00', 21.5)], [], [], [], [], [], []]");
    bn_w_init(&w, buf, sizeof buf);
    assert_int_equal(bnc_encode_special(&w, 123, v, 2, why, sizeof why), 0);
    const uint8_t sched[] = {0x0E, 0xB4, 0x08, 0x00, 0x00, 0x00, 0x44, 0x41, 0xAC, 0x00, 0x00, 0x0F,
                             0x0E, 0x0F, 0x0E, 0x0F, 0x0E, 0x0F, 0x0E, 0x0F, 0x0E, 0x0F, 0x0E, 0x0F};
    assert_int_equal(w.len, sizeof sched);
    assert_memory_equal(buf, sched, sizeof sched);
    json_decref(v);
    /* binaryValue elements: Enumerated */
    v = json_string("[[(\"17:30\", 1)], [], [], [], [], [], []]");
    bn_w_init(&w, buf, sizeof buf);
    assert_int_equal(bnc_encode_special(&w, 123, v, 5, why, sizeof why), 0);
    assert_memory_equal(buf, ((uint8_t[]){0x0E, 0xB4, 17, 30, 0, 0, 0x91, 0x01, 0x0F}), 9);
    json_decref(v);
    /* object references */
    v = json_string("['analogValue:1', 'binary-value,2']");
    bn_w_init(&w, buf, sizeof buf);
    assert_int_equal(bnc_encode_special(&w, 54, v, 0xFFFF, why, sizeof why), 0);
    const uint8_t refs[] = {0x0C, 0x00, 0x80, 0x00, 0x01, 0x19, 0x55,
                            0x0C, 0x01, 0x40, 0x00, 0x02, 0x19, 0x55};
    assert_int_equal(w.len, sizeof refs);
    assert_memory_equal(buf, refs, sizeof refs);
    assert_int_equal(bnc_first_reference_type(refs, sizeof refs), 2);
    json_decref(v);
    /* mistakes */
    const char *bad[] = {"[[('25:00', 1)], [], [], [], [], [], []]", "[[], []]", "[[('08:00', 1)", "nothing"};
    for (size_t i = 0; i < 4; i++) {
        v = json_string(bad[i]);
        bn_w_init(&w, buf, sizeof buf);
        assert_int_equal(bnc_encode_special(&w, 123, v, 2, why, sizeof why), -1);
        json_decref(v);
    }
    json_t *lit = bnc_py_literal("[(1, -2.5, 'a', \"b\", True, None)]");
    assert_non_null(lit);
    char *txt = json_dumps(lit, JSON_COMPACT);
    assert_string_equal(txt, "[[1,-2.5,\"a\",\"b\",true,null]]");
    free(txt);
    json_decref(lit);
}

/* Attribute updates as the reference's test_on_attribute_updates.py: a bool objectId and a too large
 * one are reported and skipped, the next mapping is still written; keys not in the update are not. */
static void test_attribute_update_mappings(void **st) {
    (void)st;
    char text[2048];
    snprintf(
        text, sizeof text,
        "{%s,\"devices\":[{\"address\":\"127.0.0.1:9\",\"deviceInfo\":{\"deviceNameExpression\":\"d\"},"
        "\"attributeUpdates\":[{\"key\":\"a\",\"objectType\":\"analogValue\",\"objectId\":true,"
        "\"propertyId\":\"presentValue\"},{\"key\":\"b\",\"objectType\":\"analogValue\",\"objectId\":"
        "33323232442342342,\"propertyId\":\"presentValue\"},{\"key\":\"c\",\"objectType\":\"binaryValue\","
        "\"objectId\":4,\"propertyId\":\"presentValue\",\"priority\":3},{\"key\":\"z\",\"objectType\":"
        "\"analogValue\",\"objectId\":1,\"propertyId\":\"presentValue\"}]}]}",
        ref_app);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    tbgw_host h = host();
    bnc_conn c;
    memset(&c, 0, sizeof c);
    c.h = &h;
    tbgw_err err = {0};
    assert_int_equal(bnc_config_parse(&h, j, &c.cfg, &err), 0);
    int ps = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    assert_int_equal(bind(ps, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(ps, (struct sockaddr *)&sa, &sl);
    bn_client_opts o = {.bind_ip = 0x7F000001, .timeout_ms = 200};
    char why[100];
    c.cl = bn_client_open(&o, NULL, why, sizeof why);
    assert_non_null(c.cl);
    bnc_device d;
    memset(&d, 0, sizeof d);
    d.conn = &c;
    d.cfg = &c.cfg.devs[0];
    d.name = "d";
    d.iam.max_apdu = 1476;
    d.addr = (bn_addr){.ip = 0x7F000001, .port = ntohs(sa.sin_port)};
    bnc_device *list[1] = {&d};
    c.devs = list;
    c.n_devs = 1;
    json_t *data = json_loads("{\"a\":1,\"b\":2,\"c\":true}", 0, NULL);
    tbgw_attr_update u = {.device = "d", .data = data};
    assert_int_equal(bnc_on_attr_update(&c, &u), 0);
    uint8_t buf[256];
    struct pollfd pf = {.fd = ps, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 1000), 1);
    ssize_t n = recv(ps, buf, sizeof buf, 0);
    /* WriteProperty (binaryValue, 4) presentValue Enumerated 1, priority 3 */
    const uint8_t want[] = {0x0F, 0x0C, 0x01, 0x40, 0x00, 0x04, 0x19,
                            0x55, 0x3E, 0x91, 0x01, 0x3F, 0x49, 0x03};
    assert_int_equal(n, 9 + sizeof want);
    assert_memory_equal(buf + 9, want, sizeof want);
    assert_int_equal(poll(&pf, 1, 100), 0); /* nothing for the bad mappings, nothing for "z" */
    /* unknown device: logged, nothing sent */
    u.device = "ghost";
    assert_int_equal(bnc_on_attr_update(&c, &u), 0);
    assert_int_equal(poll(&pf, 1, 50), 0);
    bn_client_close(c.cl);
    close(ps);
    json_decref(data);
    bnc_config_free(&c.cfg);
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_patterns),
        cmocka_unit_test(test_device_id),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_config_items),
        cmocka_unit_test(test_config_routers_and_proprietary),
        cmocka_unit_test(test_old_format),
        cmocka_unit_test(test_ede),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_encode_downlink),
        cmocka_unit_test(test_attribute_update_mappings),
        cmocka_unit_test(test_special_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
