/* Fuzzes the Modbus ASCII (LRC) frame decoder in both directions, and the PDU parsers behind it. */
#include "modbus_frame_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_modbus_frames(TBGW_MB_FRAMING_ASCII, data, size);
    return 0;
}
