/* isolation_nft.c: the nftables isolation plugin, through libnftables (not
 * by running nft). This version does the start-up self-test: it loads a
 * scratch table with an input chain in one transaction, reads it back and
 * removes it, so that a host without nf_tables support or without
 * CAP_NET_ADMIN is known at start, with the reason (jaco-plugins(7)). The
 * per-replica ruleset comes with deployments. */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jacod_plugin.h"

#define EXPORT __attribute__((visibility("default")))
#define SCRATCH "jaco_selftest"

struct nft_state {
    struct nft_ctx *nft;
};

static int nft_start(const struct jacod_host *host,
                     const char *conf,
                     void **state)
{
    struct nft_state *s = calloc(1, sizeof *s);
    (void)host;
    (void)conf;
    if (s == NULL) {
        return -1; /* JR_ENOMEM */
    }
    s->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (s->nft == NULL || nft_ctx_buffer_output(s->nft) != 0 ||
        nft_ctx_buffer_error(s->nft) != 0) {
        if (s->nft != NULL) {
            nft_ctx_free(s->nft);
        }
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static void nft_stop(void *state)
{
    struct nft_state *s = state;
    if (s != NULL) {
        nft_ctx_free(s->nft);
        free(s);
    }
}

/* The first line of libnftables' error text, with what it usually means. */
static void explain(struct nft_state *s,
                    const char *step,
                    char *why,
                    size_t size)
{
    const char *e = nft_ctx_get_error_buffer(s->nft);
    size_t len = e != NULL ? strcspn(e, "\n") : 0;
    const char *hint = "";
    if (e != NULL && strstr(e, "Operation not permitted") != NULL) {
        hint =
            " (jacod lacks CAP_NET_ADMIN: run it as root, or grant the "
            "capability in its unit)";
    } else if (e != NULL && (strstr(e, "Protocol not supported") != NULL ||
                             strstr(e, "No such file or directory") != NULL)) {
        hint =
            " (the kernel has no nf_tables support: load the nf_tables "
            "module)";
    }
    (void)snprintf(why, size, "%s: %.*s%s", step, (int)(len > 300 ? 300 : len),
                   e != NULL ? e : "unknown error", hint);
}

static int nft_self_test(void *state, char *why, size_t why_size)
{
    struct nft_state *s = state;
    const char *out;
    /* Gone from an earlier, interrupted self-test: ignore the result. */
    (void)nft_run_cmd_from_buffer(s->nft, "delete table inet " SCRATCH "\n");
    if (nft_run_cmd_from_buffer(s->nft,
                                "add table inet " SCRATCH "\n"
                                "add chain inet " SCRATCH
                                " probe { type filter hook input priority 0 ; "
                                "policy accept ; }\n") != 0) {
        explain(s, "load a scratch table", why, why_size);
        return -9; /* JR_EIO */
    }
    if (nft_run_cmd_from_buffer(s->nft, "list table inet " SCRATCH "\n") != 0 ||
        (out = nft_ctx_get_output_buffer(s->nft)) == NULL ||
        strstr(out, "chain probe") == NULL) {
        explain(s, "read the scratch table back", why, why_size);
        (void)nft_run_cmd_from_buffer(s->nft,
                                      "delete table inet " SCRATCH "\n");
        return -9;
    }
    if (nft_run_cmd_from_buffer(s->nft, "delete table inet " SCRATCH "\n") !=
        0) {
        explain(s, "remove the scratch table", why, why_size);
        return -9;
    }
    (void)snprintf(why, why_size,
                   "nftables: loaded, read back and removed a scratch table");
    return 0;
}

static const struct jacod_iso_ops ops = {sizeof ops, nft_self_test};

static const struct jacod_plugin plugin = {
    JACOD_PLUGIN_ABI,
    sizeof plugin,
    JACOD_PLUGIN_ISOLATION,
    "nftables",
    nft_start,
    nft_stop,
    &ops,
};

EXPORT const struct jacod_plugin *jacod_plugin_entry(
    const struct jacod_host *host)
{
    (void)host;
    return &plugin;
}
