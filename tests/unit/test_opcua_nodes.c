/* Path resolution over the browse cache (opcua_nodes.c): plain names on nodes with many children go
 * through the per-node name index and must give exactly what the linear scan gives (browse order,
 * namespace-qualified names, duplicates across namespaces); regular expressions keep scanning. The
 * cache is prefilled, so no server is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"

/* Children of Objects: n nodes named "V<i>" in ns 1 (node id ns=1;i=i), plus "Dup" at positions
 * 10, 50 and 90 (ns 1, ns 2, ns 1; node ids 1000+position) and 70 more "Same" in ns 3 (ids 2000+k). */
static opcua_browse_cache *cache_with(size_t n) {
    size_t total = n + 3 + 70;
    tbgw_ua_ref *refs = calloc(total, sizeof *refs);
    assert_non_null(refs);
    size_t k = 0;
    for (size_t i = 0; i < n; i++, k++) {
        char name[32];
        if (i == 10 || i == 50 || i == 90) {
            refs[k].node.id = tbgw_ua_nodeid_num(i == 50 ? 2 : 1, 1000 + (uint32_t)i);
            refs[k].browse_name.ns = i == 50 ? 2 : 1;
            assert_int_equal(tbgw_ua_bytes_set(&refs[k].browse_name.name, "Dup", 3), 0);
            k++;
        }
        snprintf(name, sizeof name, "V%zu", i);
        refs[k].node.id = tbgw_ua_nodeid_num(1, (uint32_t)i);
        refs[k].browse_name.ns = 1;
        assert_int_equal(tbgw_ua_bytes_set(&refs[k].browse_name.name, name, strlen(name)), 0);
    }
    for (size_t i = 0; i < 70; i++, k++) {
        refs[k].node.id = tbgw_ua_nodeid_num(3, 2000 + (uint32_t)i);
        refs[k].browse_name.ns = 3;
        assert_int_equal(tbgw_ua_bytes_set(&refs[k].browse_name.name, "Same", 4), 0);
    }
    for (size_t i = 0; i < k; i++) {
        refs[i].node.ns_uri.len = -1;
        refs[i].display_name.locale.len = refs[i].display_name.text.len = -1;
    }
    opcua_browse_cache *bc = opcua_cache_new();
    assert_non_null(bc);
    tbgw_ua_nodeid objects = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_OBJECTS);
    assert_int_equal(opcua_cache_put(bc, &objects, refs, k), 0);
    return bc;
}

static int resolve(opcua_browse_cache *bc, const char *expr, uint32_t *nums, uint16_t *nss, int max) {
    tbgw_ua_nodeid out[128];
    int n = opcua_resolve(NULL, bc, NULL, expr, out, 128);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (i < max) {
            nums[i] = out[i].num;
            nss[i] = out[i].ns;
        }
        tbgw_ua_nodeid_clear(&out[i]);
    }
    return n;
}

static void check_names(size_t n) {
    opcua_browse_cache *bc = cache_with(n);
    uint32_t nums[128];
    uint16_t nss[128];
    /* every unique name, first and last included */
    for (size_t i = 0; i < n; i++) {
        char expr[32];
        snprintf(expr, sizeof expr, "V%zu", i);
        assert_int_equal(resolve(bc, expr, nums, nss, 128), 1);
        assert_int_equal(nums[0], i);
        assert_int_equal(nss[0], 1);
    }
    /* duplicates across namespaces, in browse order; a namespace prefix selects */
    assert_int_equal(resolve(bc, "Dup", nums, nss, 128), 3);
    assert_int_equal(nums[0], 1010);
    assert_int_equal(nums[1], 1050);
    assert_int_equal(nss[1], 2);
    assert_int_equal(nums[2], 1090);
    assert_int_equal(resolve(bc, "2:Dup", nums, nss, 128), 1);
    assert_int_equal(nums[0], 1050);
    assert_int_equal(resolve(bc, "1:Dup", nums, nss, 128), 2);
    assert_int_equal(nums[1], 1090);
    /* more equal names than the index returns at once: all of them, in order */
    assert_int_equal(resolve(bc, "Same", nums, nss, 128), 70);
    for (int i = 0; i < 70; i++) assert_int_equal(nums[i], 2000 + (uint32_t)i);
    /* absent names, and a regular expression (scanned, not indexed) */
    assert_int_equal(resolve(bc, "V", nums, nss, 128), 0);
    assert_int_equal(resolve(bc, "4:V1", nums, nss, 128), 0);
    assert_int_equal(resolve(bc, "V9[0-9]", nums, nss, 128), n > 90 ? 10 : 0);
    opcua_cache_free(bc);
}

static void many_children_indexed(void **state) {
    (void)state;
    check_names(100);
    check_names(5000);
}

static void small_node_without_index(void **state) {
    (void)state;
    tbgw_ua_ref *refs = calloc(3, sizeof *refs);
    assert_non_null(refs);
    const char *names[] = {"A", "B", "A"};
    for (int i = 0; i < 3; i++) {
        refs[i].node.id = tbgw_ua_nodeid_num(1, (uint32_t)i);
        refs[i].browse_name.ns = 1;
        refs[i].node.ns_uri.len = -1;
        refs[i].display_name.locale.len = refs[i].display_name.text.len = -1;
        assert_int_equal(tbgw_ua_bytes_set(&refs[i].browse_name.name, names[i], 1), 0);
    }
    opcua_browse_cache *bc = opcua_cache_new();
    tbgw_ua_nodeid objects = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_OBJECTS);
    assert_int_equal(opcua_cache_put(bc, &objects, refs, 3), 0);
    uint32_t nums[4];
    uint16_t nss[4];
    assert_int_equal(resolve(bc, "A", nums, nss, 4), 2);
    assert_int_equal(nums[0], 0);
    assert_int_equal(nums[1], 2);
    opcua_cache_free(bc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_children_indexed),
        cmocka_unit_test(small_node_without_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
