/* The in-place JSON scanner (util/jscan.h) and the JSON converter reading text with it: what it accepts
 * against the JSON reader, the values it reads, and records identical to the tree path's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/json_conv.h"
#include "convert_helpers.h"
#include "util/jscan.h"
#include "util/json.h"

#define FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* ' stands for " in the test texts */
static char *dq(const char *s) {
    char *r = strdup(s);
    for (char *p = r; *p; p++)
        if (*p == '\'') *p = '"';
    return r;
}

static int scans(const char *t, size_t n) {
    tbgw_jdoc d;
    if (tbgw_jscan(t, n, &d)) return 0;
    tbgw_jscan_done(&d);
    return 1;
}

static int reader_takes(const char *t, size_t n) {
    json_t *j = tbgw_json_loadb(t, n, FLAGS, NULL);
    json_decref(j);
    return j != NULL;
}

static void test_accepts_what_the_reader_accepts(void **st) {
    (void)st;
    static const char *const good[] = {"{}",
                                       "[]",
                                       "1",
                                       "-0",
                                       "0.5e-3",
                                       "1E+2",
                                       "true",
                                       "null",
                                       "\"\"",
                                       " {\"a\" : [ 1 , 2 ] }\r\n\t",
                                       "{\"a\":1,\"a\":2}",
                                       "99999999999999999999",
                                       "-9223372036854775809",
                                       "18446744073709551615",
                                       "1e400",
                                       "-1e400",
                                       "1e-400",
                                       "{\"s\":\"\\u0000\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\"}",
                                       "\"\xc3\xa9\xe2\x82\xac\"",
                                       "\"\x7f\"",
                                       "{\"\":0}"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!scans(good[i], strlen(good[i]))) fprintf(stderr, "refused: %s\n", good[i]);
        assert_true(scans(good[i], strlen(good[i])));
        assert_true(reader_takes(good[i], strlen(good[i])));
    }
    /* refused by both */
    static const char *const bad[] = {"",
                                      " ",
                                      "{",
                                      "{\"a\"}",
                                      "{\"a\":}",
                                      "{\"a\":1,}",
                                      "[1,]",
                                      "[1 2]",
                                      "01",
                                      "-",
                                      "1.",
                                      ".5",
                                      "1e",
                                      "1e+",
                                      "+1",
                                      "0x1",
                                      "tru",
                                      "truex",
                                      "nul",
                                      "NaN",
                                      "Infinity",
                                      "\"\\x\"",
                                      "\"\\u12\"",
                                      "\"\\ud800\"",
                                      "\"\\udc00\"",
                                      "\"\\ud800\\u0041\"",
                                      "\"a\nb\"",
                                      "\"\x01\"",
                                      "\"\xc3\x28\"",
                                      "\"\xed\xa0\x80\"",
                                      "\"\xc0\xaf\"",
                                      "\"\xf4\x90\x80\x80\"",
                                      "\"\xff\"",
                                      "{} {}",
                                      "[1]]",
                                      "{'a':1}",
                                      "{\"a\" 1}",
                                      "[1,2",
                                      "\xef\xbb\xbf{}",
                                      "1 2",
                                      "{\"a\":1}x",
                                      "//",
                                      "{\"a\":01}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (scans(bad[i], strlen(bad[i]))) fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_false(scans(bad[i], strlen(bad[i])));
        assert_false(reader_takes(bad[i], strlen(bad[i])));
    }
    /* left to the reader (which accepts): a key holding NUL, nesting deeper than the scanner goes */
    static const char nul_key[] = "{\"a\\u0000\":1}";
    assert_false(scans(nul_key, strlen(nul_key)));
    char deep[2 * (TBGW_JSCAN_MAX_DEPTH + 1) + 1];
    memset(deep, '[', TBGW_JSCAN_MAX_DEPTH + 1);
    memset(deep + TBGW_JSCAN_MAX_DEPTH + 1, ']', TBGW_JSCAN_MAX_DEPTH + 1);
    deep[sizeof deep - 1] = 0;
    assert_false(scans(deep, strlen(deep)));
    assert_true(reader_takes(deep, strlen(deep)));
    assert_true(scans(deep + 1, strlen(deep) - 2));
    /* a raw NUL byte is refused by both, \u0000 in a value accepted by both */
    static const char raw_nul[] = "{\"a\":\"x\0y\"}";
    assert_false(scans(raw_nul, sizeof raw_nul - 1));
    assert_false(reader_takes(raw_nul, sizeof raw_nul - 1));
}

/* Every token's value against the tree's node at the same place. */
static void check_same(tbgw_jdoc *d, size_t t, const json_t *j) {
    tbgw_jval a, b;
    assert_int_equal(tbgw_jdoc_val(d, t, &a), 0);
    assert_int_equal(tbgw_jval_of(j, &b), 0);
    assert_int_equal(a.type, b.type);
    assert_int_equal(a.node, b.node);
    if (a.type == JSON_STRING) {
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.s, b.s, a.n);
        assert_int_equal(a.s[a.n], 0);
    } else if (a.type == JSON_INTEGER) {
        assert_true(a.i == b.i);
    } else if (a.type == JSON_REAL) {
        assert_memory_equal(&a.d, &b.d, sizeof a.d);
    } else if (a.type == JSON_OBJECT) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            long m = tbgw_jdoc_member(d, t, k, strlen(k));
            assert_true(m > 0);
            check_same(d, (size_t)m, v);
        }
        char *x = tbgw_json_dumps(a.j, 0), *y = tbgw_json_dumps(j, 0);
        assert_string_equal(x, y);
        free(x);
        free(y);
    } else if (a.type == JSON_ARRAY) {
        for (size_t i = 0; i < json_array_size(j); i++) {
            long e = tbgw_jdoc_element(d, t, (long)i);
            assert_true(e > 0);
            assert_int_equal(e, tbgw_jdoc_element(d, t, (long)i - (long)json_array_size(j)));
            check_same(d, (size_t)e, json_array_get(j, i));
        }
        assert_int_equal(tbgw_jdoc_element(d, t, (long)json_array_size(j)), -1);
    }
}

static void test_values_as_the_reader_reads_them(void **st) {
    (void)st;
    char *t = dq("{'i':-9223372036854775808,'j':9223372036854775807,'u':18446744073709551615,"
                 "'big':-99999999999999999999,'z':-0,'r':-0.0,'e':1e400,'tiny':4.9e-324,'under':1e-400,"
                 "'d':0.1,'x':1.7976931348623157e308,'s':'a\\u0000b\\u00e9\\ud834\\udd1e\\/','t':true,"
                 "'f':false,'n':null,'dup':1,'o':{'dup':[1,{'q':2}],'dup':{'w':'v'}},'dup':'last',"
                 "'arr':[[],{},'',0,[1e999]],'\\u00e9':'key'}");
    json_t *j = tbgw_json_loadb(t, strlen(t), FLAGS, NULL);
    assert_non_null(j);
    tbgw_jdoc d;
    assert_int_equal(tbgw_jscan(t, strlen(t), &d), 0);
    check_same(&d, 0, j);
    /* the last duplicate wins */
    tbgw_jval v;
    assert_int_equal(tbgw_jdoc_val(&d, (size_t)tbgw_jdoc_member(&d, 0, "dup", 3), &v), 0);
    assert_string_equal(v.s, "last");
    /* numbers jansson cannot hold are number nodes with their text */
    assert_int_equal(tbgw_jdoc_val(&d, (size_t)tbgw_jdoc_member(&d, 0, "e", 1), &v), 0);
    assert_true(v.node && v.type == JSON_STRING && !strcmp(v.s, "1e400"));
    assert_int_equal(tbgw_jdoc_member(&d, 0, "missing", 7), -1);
    tbgw_jscan_done(&d);
    json_decref(j);
    free(t);
}

typedef struct pair {
    char *fast, *tree;
    int rf, rt;
} pair;

/* Converts payload both ways with converter cfg; both dumps (exact) and return codes. */
static pair both(const char *cfg_q, const char *topic, const char *payload, size_t len, int want_text) {
    char *cfg = dq(cfg_q);
    json_t *c = json_loads(cfg, 0, NULL);
    assert_non_null(c);
    tbgw_json_conv *conv = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_json_conv_new(c, NULL, "converter", &conv, &err), 0);
    assert_int_equal(tbgw_json_conv_reads_text(conv), want_text);
    pair p = {0};
    tbgw_converted *a = NULL, *b = NULL;
    tbgw_err ea = {0}, eb = {0};
    p.rf = tbgw_json_conv_convert_text(conv, topic, payload, len, 1000, &a, &ea);
    json_error_t je;
    json_t *tree = tbgw_json_loadb(payload, len, FLAGS, &je);
    if (tree) {
        p.rt = tbgw_json_conv_convert(conv, topic, tree, 1000, &b, &eb);
    } else {
        p.rt = TBGW_EPROTO;
        snprintf(eb.msg, sizeof eb.msg, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        eb.code = TBGW_EPROTO;
    }
    assert_string_equal(ea.msg, eb.msg);
    assert_int_equal(ea.code, eb.code);
    p.fast = conv_dump_exact(a);
    p.tree = conv_dump_exact(b);
    assert_string_equal(p.fast, p.tree);
    json_decref(tree);
    tbgw_converted_free(a);
    tbgw_converted_free(b);
    tbgw_json_conv_free(conv);
    json_decref(c);
    free(cfg);
    return p;
}

static void pair_free(pair *p) {
    free(p->fast);
    free(p->tree);
}

/* the human-readable dump of a text conversion */
static char *fast_dump(const char *cfg_q, const char *topic, const char *payload) {
    char *cfg = dq(cfg_q), *pl = dq(payload);
    json_t *c = json_loads(cfg, 0, NULL);
    tbgw_json_conv *conv = NULL;
    tbgw_err err = {0};
    assert_int_equal(tbgw_json_conv_new(c, NULL, "converter", &conv, &err), 0);
    tbgw_converted *a = NULL;
    int rc = tbgw_json_conv_convert_text(conv, topic, pl, strlen(pl), 1000, &a, &err);
    char *d = rc < 0 ? strdup(err.msg) : conv_dump(a);
    tbgw_converted_free(a);
    tbgw_json_conv_free(conv);
    json_decref(c);
    free(cfg);
    free(pl);
    return d;
}

#define CFG_TYPED                                                                                            \
    "{'deviceInfo':{'deviceNameExpressionSource':'message','deviceNameExpression':'${name}'},"               \
    "'timeseries':[{'type':'string','key':'s','value':'${v}'},{'type':'int','key':'i','value':'${v}'},"      \
    "{'type':'double','key':'d','value':'${v}'},{'type':'bool','key':'b','value':'${v}'},"                   \
    "{'type':'raw','key':'r','value':'${v}'},{'type':'int','key':'t','value':'v=${v}'},"                     \
    "{'key':'${k.n[1]}','value':'${o.p[-1]}'}],'attributes':[{'type':'raw','key':'o','value':'${o}'}]}"

static void test_records_as_the_tree_path(void **st) {
    (void)st;
    static const char *const payloads[] = {"{'name':'D','v':12}",
                                           "{'name':'D','v':-0}",
                                           "{'name':'D','v':-0.0}",
                                           "{'name':'D','v':1e400}",
                                           "{'name':'D','v':18446744073709551615}",
                                           "{'name':'D','v':-99999999999999999999}",
                                           "{'name':'D','v':'12.5'}",
                                           "{'name':'D','v':'yes'}",
                                           "{'name':'D','v':'1e400'}",
                                           "{'name':'D','v':'99999999999999999999'}",
                                           "{'name':'D','v':'  7 '}",
                                           "{'name':'D','v':true}",
                                           "{'name':'D','v':null}",
                                           "{'name':'D','v':[1,'a',{'b':null}]}",
                                           "{'name':'D','v':{'x':1.10,'x':2}}",
                                           "{'name':'D','v':'a\\u0000b'}",
                                           "{'name':'D\\ud83d\\ude00','v':'\\u00e9\\n'}",
                                           "{'name':'','v':1}",
                                           "{'v':1}",
                                           "{'name':'D','v':1,'v':'last'}",
                                           "{'name':'D','k':{'n':['a','kk']},'o':{'p':[1,2.5e-3]}}",
                                           "{'name':'D','ts':1500,'v':2}",
                                           "{'name':'D','ts':'2024-01-31T12:00:00Z','v':2}",
                                           "{'name':'D','ts':null,'timestamp':5,'v':2}",
                                           "{'name':'D','timestamp':7.9,'v':2}",
                                           "{'name':'D','ts':99999999999999999999,'v':2}",
                                           "{'name':'D','ts':{'a':1},'v':2}",
                                           " \t{ 'name' : 'D' ,\r\n 'v' : 0.30000000000000004 } \n",
                                           "[{'name':'A','v':1},{'name':'B','v':2}]",
                                           "[{'name':'A','v':1},3]",
                                           "'text'",
                                           "5",
                                           "{'name':'D','v':1",
                                           "{'name':'D','v':01}",
                                           "",
                                           "\xef\xbb\xbf{}",
                                           "{'name\\u0000':'D','v':1}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *pl = dq(payloads[i]);
        pair p = both(CFG_TYPED, "t", pl, strlen(pl), 1);
        pair_free(&p);
        free(pl);
    }
    /* what the records hold (the tree path holds the same, checked above) */
    char *d = fast_dump(CFG_TYPED, "t", "{'name':'D','v':18446744073709551615}");
    assert_string_equal(d, "D/default a{} t{1000:s=\"18446744073709551615\",1000:i=18446744073709551615,"
                           "1000:d=1.8446744073709552e+19,1000:b=true,1000:r=18446744073709551615,"
                           "1000:t=\"v=18446744073709551615\"}");
    free(d);
    d = fast_dump(CFG_TYPED, "t", "{'name':'D','v':1,'v':'2.50','ts':-0}");
    assert_string_equal(
        d, "D/default a{} t{0:s=\"2.50\",0:i=2,0:d=2.5,0:b=\"2.50\",0:r=\"2.50\",0:t=\"v=2.50\"}");
    free(d);
    d = fast_dump(CFG_TYPED, "t", "{'name':'D','v':{'a':[1e400,-0.0]},'o':{'p':[0]}}");
    /* objects and arrays as compact JSON text (a failed cast sends that text) */
    assert_string_equal(d, "D/default a{o={\"p\":[0]}} t{1000:s=\"{\\\"a\\\":[1e400,-0.0]}\","
                           "1000:i=\"{\\\"a\\\":[1e400,-0.0]}\",1000:d=\"{\\\"a\\\":[1e400,-0.0]}\","
                           "1000:b=\"{\\\"a\\\":[1e400,-0.0]}\",1000:r={\"a\":[1e400,-0.0]},"
                           "1000:t=\"v={\\\"a\\\":[1e400,-0.0]}\"}");
    free(d);
    d = fast_dump(CFG_TYPED, "t", "{'name':'D','v':1");
    assert_string_equal(d, "invalid JSON at line 1 column 17: '}' expected near end of file");
    free(d);
}

static void test_mappings_left_to_the_tree(void **st) {
    (void)st;
    static const char *const cfgs[] = {
        "{'deviceInfo':{'deviceNameExpression':'D'},'timeseries':'*'}",
        "{'deviceInfo':{'deviceNameExpression':'D'},'attributes':['*']}",
        "{'deviceInfo':{'deviceNameExpression':'D'},'useEval':true,'timeseries':[{'type':'int','key':'v',"
        "'value':'${v}+1'}]}",
        "{'deviceInfo':{'deviceNameExpression':'D'},'timeseries':[{'key':'v','value':'${v}','tsField':'${t}'}"
        "]}",
        "{'deviceInfo':{'deviceNameExpression':'${a[*].n}'},'timeseries':[{'key':'v','value':'${v}'}]}",
        "{'deviceInfo':{'deviceNameExpression':'D','deviceProfileExpression':'${..p}'},'timeseries':[{'key':'"
        "v',"
        "'value':'${v}'}]}",
        "{'deviceInfo':{'deviceNameExpression':'D'},'timeseries':[{'key':'${*}','value':'${v}'}]}",
        "{'deviceInfo':{'deviceNameExpression':'D'},'timeseries':[{'key':'v','value':'${a[:].v}'}]}",
    };
    char *pl = dq("{'v':3,'t':5,'a':[{'n':'N','v':1}],'p':'P'}");
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        pair p = both(cfgs[i], "t", pl, strlen(pl), 0);
        assert_true(p.rf > 0);
        pair_free(&p);
    }
    free(pl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_what_the_reader_accepts),
        cmocka_unit_test(test_values_as_the_reader_reads_them),
        cmocka_unit_test(test_records_as_the_tree_path),
        cmocka_unit_test(test_mappings_left_to_the_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
