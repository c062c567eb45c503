/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zlib and PNG. */
#ifndef TBGW_UTIL_CRC32_H
#define TBGW_UTIL_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0; tbgw_crc32(0, "123456789", 9) == 0xCBF43926. */
uint32_t tbgw_crc32(uint32_t crc, const void *data, size_t len);

#endif
