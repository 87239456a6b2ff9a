#include <string.h>
#include "CKeywayCrypto.h"

// The Internet checksum's one's complement sum (RFC 1071), 64 bits at a time: summed as host-order
// 16-bit words (byte order does not change a one's complement sum but for a final swap), then the
// network-order tail and `initial` added.
uint16_t kw_inet_sum(const uint8_t *p, size_t len, uint32_t initial) {
    uint64_t sum = 0;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t lo = w & 0xffffffffu, hi = w >> 32;
        sum += lo + hi;
        p += 8; len -= 8;
    }
    // Fold the host-order word sum to 16 bits, then into network order below.
    while (sum >> 32) sum = (sum & 0xffffffffu) + (sum >> 32);
    uint32_t s32 = (uint32_t)sum;
    uint32_t folded = (s32 & 0xffff) + (s32 >> 16);
    folded = (folded & 0xffff) + (folded >> 16);
    // The words were read in host (little-endian) order: swap the 16-bit result into network order.
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint32_t net = folded;
#else
    uint32_t net = ((folded & 0xff) << 8) | (folded >> 8);
#endif
    uint32_t tail = 0;
    while (len >= 2) { tail += ((uint32_t)p[0] << 8) | p[1]; p += 2; len -= 2; }
    if (len) tail += (uint32_t)p[0] << 8;
    uint64_t total = (uint64_t)net + tail + initial;
    while (total >> 16) total = (total & 0xffff) + (total >> 16);
    return (uint16_t)total;
}
