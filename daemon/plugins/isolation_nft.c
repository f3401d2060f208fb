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

#define TABLE "jaco"

struct nft_state {
    struct nft_ctx *nft;
    char *expected; /* the table as listed right after it was loaded */
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
        free(s->expected);
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

/* The table as nft lists it now (malloc'd), or NULL when it is missing. */
static char *listing(struct nft_state *s)
{
    const char *out;
    (void)nft_ctx_get_output_buffer(s->nft); /* drop earlier output */
    if (nft_run_cmd_from_buffer(s->nft, "list table inet " TABLE "\n") != 0) {
        return NULL;
    }
    out = nft_ctx_get_output_buffer(s->nft);
    return out != NULL ? strdup(out) : NULL;
}

/* Lines of a not found in b. */
static unsigned missing_lines(const char *a,
                              const char *b,
                              char *first,
                              size_t first_size)
{
    unsigned n = 0;
    while (*a != '\0') {
        size_t len = strcspn(a, "\n");
        char line[512];
        (void)snprintf(line, sizeof line, "%.*s\n",
                       (int)(len < 500 ? len : 500), a);
        if (strstr(b, line) == NULL) {
            if (n == 0) {
                (void)snprintf(first, first_size, "%.*s",
                               (int)(len < 200 ? len : 200), a);
            }
            n++;
        }
        a += len + (a[len] == '\n');
    }
    return n;
}

/* The ruleset of this version: the table with an input chain that
 * accepts, replaced whole in one transaction (add, delete, add: the
 * delete cannot fail). Per-replica rules come with deployments. */
static int nft_reconcile(void *state, char *diff, size_t diff_size)
{
    struct nft_state *s = state;
    char *live = listing(s), first_gone[256] = "", first_extra[256] = "";
    unsigned gone = 0, extra = 0;
    if (live != NULL && s->expected != NULL && strcmp(live, s->expected) == 0) {
        free(live);
        return 0;
    }
    if (live != NULL && s->expected != NULL) {
        gone = missing_lines(s->expected, live, first_gone, sizeof first_gone);
        extra =
            missing_lines(live, s->expected, first_extra, sizeof first_extra);
    }
    if (nft_run_cmd_from_buffer(s->nft,
                                "add table inet " TABLE "\n"
                                "delete table inet " TABLE "\n"
                                "add table inet " TABLE "\n"
                                "add chain inet " TABLE
                                " input { type filter hook input priority 0 ; "
                                "policy accept ; }\n") != 0) {
        free(live);
        explain(s, "load table inet " TABLE, diff, diff_size);
        return -9;
    }
    free(s->expected);
    s->expected = listing(s);
    if (live == NULL) {
        (void)snprintf(diff, diff_size, "table inet %s was missing: loaded",
                       TABLE);
    } else if (s->expected == NULL) {
        (void)snprintf(diff, diff_size, "table inet %s loaded", TABLE);
    } else {
        (void)snprintf(diff, diff_size,
                       "table inet %s had %u line(s) removed (\"%s\") and "
                       "%u added (\"%s\"): restored",
                       TABLE, gone, first_gone, extra, first_extra);
    }
    free(live);
    return 1;
}

static const struct jacod_iso_ops ops = {sizeof ops, nft_self_test,
                                         nft_reconcile};

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
