/* fuzz_peers.c: libFuzzer target for the raft/peers.json parser (peers.c),
 * which reads a file an operator wrote by hand during an outage. Whatever
 * parses must format and parse back to the same servers, and the
 * consistency check and the raft configuration must cope with it.
 * fuzz-sources: lib */
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"
#include "peers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_peers(const struct jr__peers *a, const struct jr__peers *b)
{
    unsigned i;
    if (a->n != b->n) {
        return false;
    }
    for (i = 0; i < a->n; i++) {
        if (a->p[i].id != b->p[i].id || a->p[i].role != b->p[i].role ||
            strcmp(a->p[i].address, b->p[i].address) != 0 ||
            strcmp(a->p[i].name, b->p[i].name) != 0) {
            return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jr__peers p, q;
    struct raft_configuration conf;
    char errmsg[JR_ERRMSG_SIZE];
    char *text;
    size_t len;
    int rv;

    rv = jr__peers_parse((const char *)data, size, "peers.json", &p, errmsg);
    if (rv != 0) {
        /* Every refusal says why, in one terminated line. */
        if (rv != JR_EINVAL && rv != JR_ENOMEM) {
            abort();
        }
        if (rv == JR_EINVAL &&
            (strnlen(errmsg, sizeof errmsg) == sizeof errmsg ||
             strchr(errmsg, '\n') != NULL)) {
            abort();
        }
        return 0;
    }
    if (p.n == 0 || p.n > JR__PEERS_MAX) {
        abort();
    }
    if (jr__peers_format(&p, &text, &len) != 0) {
        abort();
    }
    if (jr__peers_parse(text, len, "peers.json", &q, errmsg) != 0 ||
        !same_peers(&p, &q)) {
        abort();
    }
    free(text);
    if (jr__peers_validate(&p, p.p[0].id, "peers.json", errmsg) == 0) {
        /* What validation accepts, raft accepts. */
        if (jr__peers_to_configuration(&p, &conf) != 0 || conf.n != p.n) {
            abort();
        }
        raft_configuration_close(&conf);
    }
    return 0;
}
