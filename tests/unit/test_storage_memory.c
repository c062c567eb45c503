/* Memory storage against the shared storage contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage_contract.h"

static const sfx memory_fx = {
    .type = "memory",
    .durable = 0,
    .cap_cfg = "{\"max_records_count\": 100}",
    .cap_rec_size = 40,
    .cap_max = 100,
};

static int setup(void **state) {
    return sfx_setup(state, &memory_fx);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const struct CMUnitTest tests[] = {CONTRACT_TESTS(setup, sfx_teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
