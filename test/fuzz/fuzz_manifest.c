/* fuzz_manifest.c: libFuzzer target for the jaco.yaml manifest parser
 * (daemon/manifest.c, libyaml underneath): an operator's file, checked by
 * jaco before anything is sent. Whatever parses must pass the deployment
 * check and survive the msgpack round trip jacod decodes; every refusal is
 * one terminated line naming the file.
 * fuzz-sources: daemon/manifest.c daemon/deployment.c daemon/mp.c */
#include <stdlib.h>
#include <string.h>

#include "../../daemon/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jd_deployment **deps = NULL, *back;
    char err[1024];
    unsigned n = 0, i;
    if (jd_manifest_parse("m.yaml", (const char *)data, size, &deps, &n, err,
                          sizeof err) != 0) {
        if (deps != NULL || strncmp(err, "m.yaml:", 7) != 0 ||
            strchr(err, '\n') != NULL) {
            abort();
        }
        return 0;
    }
    if (n == 0 || n > JD_MAX_DEPLOYMENTS) {
        abort();
    }
    for (i = 0; i < n; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        if (jd_deployment_check(deps[i], err, sizeof err) != 0) {
            abort();
        }
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        jd_deployment_pack(&pk, deps[i]);
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) !=
                MSGPACK_UNPACK_SUCCESS ||
            jd_deployment_unpack(&u.data, &back, err, sizeof err) != 0 ||
            back->n_services != deps[i]->n_services ||
            strcmp(back->name, deps[i]->name) != 0) {
            abort();
        }
        jd_deployment_free(back);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
    }
    jd_manifest_free(deps, n);
    return 0;
}
