/* File storage: the shared contract plus corruption, truncation, rotation and commit pointer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage_contract.h"

static const sfx file_fx = {
    .type = "file",
    .durable = 1,
    .path_key = "data_folder_path",
    .cap_cfg = "{\"max_file_count\": 4, \"max_records_per_file\": 25}",
    .cap_rec_size = 40,
    .cap_max = 100,
};

static int setup(void **state) {
    return sfx_setup(state, &file_fx);
}

int main(void) {
    tbgw_log_set_level(NULL, TBGW_ERROR);
    const struct CMUnitTest tests[] = {DURABLE_CONTRACT_TESTS(setup, sfx_teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
