/* Storage record decoder and the packer over whatever decodes (records come back from disk). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/record.h"
#include "platform/tb_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ud, const tb_msg *m) {
    size_t *total = ud;
    *total += m->len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* split the input at 0xFF bytes into several records */
    tbgw_record_view views[16];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < 16; i++) {
        if (i == size || data[i] == 0xFF) {
            if (tbgw_record_decode(data + start, i - start, &views[n]) == 0) n++;
            start = i + 1;
        }
    }
    size_t total = 0;
    tb_codec_pack(views, n, 64 + (size % 4096), NULL, NULL, sink, &total);
    return 0;
}
