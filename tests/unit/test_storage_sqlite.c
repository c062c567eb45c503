/* SQLite storage: the shared contract plus TTL, size bound, damaged database, path forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage_contract.h"

static const sfx sqlite_fx = {
    .type = "sqlite",
    .durable = 1,
    .path_key = "data_file_path",
    .cap_cfg = "{\"size_limit\": 1, \"max_db_amount\": 1}",
    .cap_rec_size = 1000,
    .cap_max = 1000000 / 1032,
};

static int setup(void **state) {
    return sfx_setup(state, &sqlite_fx);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const struct CMUnitTest tests[] = {DURABLE_CONTRACT_TESTS(setup, sfx_teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
