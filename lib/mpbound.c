/* mpbound.c: see mpbound.h. Compiled into the library and into jacod and
 * jaco, which link only the library's public API. */
#include <stdint.h>

#include "mpbound.h"

/* Size of the header of the msgpack value starting with byte b, and the
 * length of the payload that follows it (str, bin, ext) or the number of
 * values it contains (array, map). Returns false for the unused 0xc1. */
static bool value_header(const unsigned char *p,
                         size_t avail,
                         size_t *hdr,
                         uint64_t *payload,
                         uint64_t *children)
{
    unsigned char b = p[0];
    static const unsigned char fixed[] = {
        /* 0xc0 .. 0xdf: total size, 0 for the variable-length ones */
        1, 0, 1, 1, 0, 0, 0, 0,  0,  0, 5, 9, 2, 3, 5, 9,
        2, 3, 5, 9, 3, 4, 6, 10, 18, 0, 0, 0, 0, 0, 0, 0,
    };
    size_t k;
    uint64_t n = 0;
    *payload = 0;
    *children = 0;
    if (b <= 0x7f || b >= 0xe0) {
        *hdr = 1;
        return true;
    }
    if (b <= 0x8f || (b >= 0x90 && b <= 0x9f)) {
        *hdr = 1;
        *children = b <= 0x8f ? 2u * (b & 0x0f) : (b & 0x0f);
        return true;
    }
    if (b <= 0xbf) {
        *hdr = 1;
        *payload = b & 0x1f;
        return true;
    }
    if (fixed[b - 0xc0] != 0) {
        *hdr = fixed[b - 0xc0];
        return true;
    }
    switch (b) {
        case 0xc4:
        case 0xd9: k = 1; break; /* bin8, str8 */
        case 0xc5:
        case 0xda:
        case 0xdc:
        case 0xde: k = 2; break;
        case 0xc6:
        case 0xdb:
        case 0xdd:
        case 0xdf: k = 4; break;
        case 0xc7: k = 1; break; /* ext8: length, then a type byte */
        case 0xc8: k = 2; break;
        case 0xc9: k = 4; break;
        default: return false; /* 0xc1 */
    }
    if (avail < 1 + k) {
        *hdr = avail + 1; /* too short: the caller sees it overflow */
        return true;
    }
    for (size_t i = 0; i < k; i++) {
        n = (n << 8) | p[1 + i];
    }
    *hdr = 1 + k + (b >= 0xc7 && b <= 0xc9 ? 1 : 0);
    if (b == 0xdc || b == 0xdd) {
        *children = n;
    } else if (b == 0xde || b == 0xdf) {
        *children = 2 * n;
    } else {
        *payload = n;
    }
    return true;
}

/* msgpack-c allocates room for every element an array or map declares
 * before reading them, so five bytes claiming four billion elements make it
 * try to allocate a hundred gigabytes. Walk the value first: every declared
 * element needs at least one byte, every payload must fit, and exactly one
 * value must fill buf. */
bool jr__msgpack_bounded(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        size_t hdr;
        uint64_t payload, children;
        if (pos >= len ||
            !value_header(p + pos, len - pos, &hdr, &payload, &children)) {
            return false;
        }
        pending--;
        if (hdr > len - pos) {
            return false;
        }
        pos += hdr;
        if (payload > len - pos || children > len - pos) {
            return false;
        }
        pos += (size_t)payload;
        pending += children;
    }
    return pos == len;
}
