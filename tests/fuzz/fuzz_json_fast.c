/* Differential fuzzer of the JSON converter's two ways to read a payload: from the text scanned in
 * place (tbgw_json_conv_convert_text on mappings it reads as text) and from a jansson tree
 * (tbgw_json_loadb + tbgw_json_conv_convert). For every input and mapping both give the same records
 * (values, types and double bits), the same return code and the same message, or both refuse the
 * text; and the scanner never accepts a text the JSON reader refuses. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../unit/convert_helpers.h"
#include "convert/json_conv.h"
#include "util/jscan.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define Q "\""
static const char *const cfgs[] = {
    /* plain keys, nested paths, typed keys, device name and profile from the payload */
    "{" Q "deviceInfo" Q ":{" Q "deviceNameExpressionSource" Q ":" Q "message" Q "," Q
    "deviceNameExpression" Q ":" Q "${name} ${a.b[0]}" Q "," Q "deviceProfileExpressionSource" Q ":" Q
    "message" Q "," Q "deviceProfileExpression" Q ":" Q "${type}" Q "}," Q "attributes" Q ":[{" Q "type" Q
    ":" Q "string" Q "," Q "key" Q ":" Q "${k}" Q "," Q "value" Q ":" Q "${v}" Q "},{" Q "type" Q ":" Q
    "raw" Q "," Q "key" Q ":" Q "r" Q "," Q "value" Q ":" Q "${a.b}" Q "},{" Q "type" Q ":" Q "raw" Q "," Q
    "key" Q ":" Q "o" Q "," Q "value" Q ":" Q "${a}" Q "}]," Q "timeseries" Q ":[{" Q "type" Q ":" Q
    "double" Q "," Q "key" Q ":" Q "t" Q "," Q "value" Q ":" Q "${t}" Q "},{" Q "type" Q ":" Q "int" Q "," Q
    "key" Q ":" Q "i" Q "," Q "value" Q ":" Q "x${i}y" Q "},{" Q "type" Q ":" Q "bool" Q "," Q "key" Q ":" Q
    "b" Q "," Q "value" Q ":" Q "${b}" Q "},{" Q "type" Q ":" Q "long" Q "," Q "key" Q ":" Q "n" Q "," Q
    "value" Q ":" Q "${a.b[-1]}" Q "},{" Q "type" Q ":" Q "string" Q "," Q "key" Q ":" Q "s${k}" Q "," Q
    "value" Q ":" Q "${s} and ${t}" Q "}]}",
    /* every cast of one value, device name from the topic, ts from the payload */
    "{" Q "deviceInfo" Q ":{" Q "deviceNameExpressionSource" Q ":" Q "topic" Q "," Q "deviceNameExpression" Q
    ":" Q "(?<=s/)(.*?)(?=/d)" Q "}," Q "timeseries" Q ":[{" Q "type" Q ":" Q "string" Q "," Q "key" Q ":" Q
    "s" Q "," Q "value" Q ":" Q "${v}" Q "},{" Q "type" Q ":" Q "int" Q "," Q "key" Q ":" Q "i" Q "," Q
    "value" Q ":" Q "${v}" Q "},{" Q "type" Q ":" Q "double" Q "," Q "key" Q ":" Q "d" Q "," Q "value" Q ":" Q
    "${v}" Q "},{" Q "type" Q ":" Q "bool" Q "," Q "key" Q ":" Q "b" Q "," Q "value" Q ":" Q "${v}" Q "},{" Q
    "type" Q ":" Q "raw" Q "," Q "key" Q ":" Q "r" Q "," Q "value" Q ":" Q "${v}" Q "},{" Q "type" Q ":" Q
    "float" Q "," Q "key" Q ":" Q "f" Q "," Q "value" Q ":" Q "<${v}>" Q "},{" Q "type" Q ":" Q "integer" Q
    "," Q "key" Q ":" Q "j" Q "," Q "value" Q ":" Q "${v} " Q "},{" Q "type" Q ":" Q "boolean" Q "," Q "key" Q
    ":" Q "c" Q "," Q "value" Q ":" Q "${v}${v}" Q "}]," Q "attributes" Q ":[{" Q "key" Q ":" Q "k" Q "," Q
    "keySource" Q ":" Q "topic" Q "," Q "value" Q ":" Q "${w}" Q "}]}",
    /* quoted segments, first-token keys, root, constant name; received ts and report strategies */
    "{" Q "deviceInfo" Q ":{" Q "deviceNameExpressionSource" Q ":" Q "constant" Q "," Q
    "deviceNameExpression" Q ":" Q "Dev ${x}" Q "}," Q "useReceivedTs" Q ":true," Q "reportStrategy" Q ":{" Q
    "type" Q ":" Q "ON_CHANGE" Q "}," Q "attributes" Q ":[{" Q "key" Q ":" Q "${'a.b'}" Q "," Q "value" Q
    ":" Q "${dev name}" Q "},{" Q "key" Q ":" Q "q" Q "," Q "value" Q ":" Q "${[0]}" Q "}]," Q "timeseries" Q
    ":[{" Q "type" Q ":" Q "raw" Q "," Q "key" Q ":" Q "root" Q "," Q "value" Q ":" Q "${$}" Q "},{" Q "key" Q
    ":" Q "ts" Q "," Q "value" Q ":" Q "${ts}" Q "," Q "reportStrategy" Q ":{" Q "type" Q ":" Q
    "ON_RECEIVED" Q "}},{" Q "type" Q ":" Q "double" Q "," Q "key" Q ":" Q "${x.y}" Q "," Q "value" Q ":" Q
    "${x[1]}" Q "}]}",
};

static tbgw_json_conv *jc[sizeof cfgs / sizeof cfgs[0]];
static const char *const topics[] = {"s/dev1/d", "s/x/d", "other"};

static void same_or_abort(const char *what, const char *a, const char *b, const uint8_t *data, size_t size) {
    if (!strcmp(a, b)) return;
    fprintf(stderr, "%s differ for %.*s\nfast: %s\ntree: %s\n", what, (int)(size > 400 ? 400 : size),
            (const char *)data, a, b);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t nc = sizeof cfgs / sizeof cfgs[0];
    if (!jc[0]) {
        for (size_t i = 0; i < nc; i++) {
            tbgw_err err = {0};
            json_t *c = json_loads(cfgs[i], 0, NULL);
            if (!c || tbgw_json_conv_new(c, NULL, "converter", &jc[i], &err)) {
                fprintf(stderr, "config %zu: %s\n", i, err.msg);
                abort();
            }
            json_decref(c);
            if (!tbgw_json_conv_reads_text(jc[i])) abort();
        }
    }
    json_t *tree = tbgw_json_loadb(data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    tbgw_jdoc doc;
    if (!tbgw_jscan((const char *)data, size, &doc)) {
        if (!tree) {
            fprintf(stderr, "scanner accepted what the JSON reader refuses: %.*s\n", (int)size,
                    (const char *)data);
            abort();
        }
        tbgw_jscan_done(&doc);
    }
    for (size_t i = 0; i < nc; i++) {
        const char *topic = topics[(size + i) % 3];
        tbgw_converted *a = NULL, *b = NULL;
        tbgw_err ea = {0}, eb = {0};
        int ra = tbgw_json_conv_convert_text(jc[i], topic, data, size, 7, &a, &ea);
        int rb = tree ? tbgw_json_conv_convert(jc[i], topic, tree, 7, &b, &eb) : TBGW_EPROTO;
        if (ra != rb || ea.code != (tree ? eb.code : TBGW_EPROTO)) {
            fprintf(stderr, "mapping %zu: rc %d/%d code %d/%d (%s / %s)\n", i, ra, rb, ea.code, eb.code,
                    ea.msg, eb.msg);
            abort();
        }
        if (tree) same_or_abort("messages", ea.msg, eb.msg, data, size);
        char *da = conv_dump_exact(a), *db = conv_dump_exact(b);
        same_or_abort("records", da, db, data, size);
        free(da);
        free(db);
        tbgw_converted_free(a);
        tbgw_converted_free(b);
    }
    json_decref(tree);
    return 0;
}
