/* nodeid.c: see nodeid.h. */
#include "nodeid.h"

uint64_t jd_node_id_of_name(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *name != '\0'; name++) {
        h ^= (unsigned char)*name;
        h *= 0x100000001b3ull;
    }
    return h != 0 ? h : 1;
}
