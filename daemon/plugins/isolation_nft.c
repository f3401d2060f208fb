/* isolation_nft.c: the nftables isolation plugin, through libnftables (not
 * by running nft).
 *
 * At start it self-tests: it loads a scratch table with an input chain in
 * one transaction, reads it back and removes it, so that a host without
 * nf_tables support or without CAP_NET_ADMIN is known at start, with the
 * reason (jaco-plugins(7)).
 *
 * The model: this host's ports in the managed range (conf "ports=LOW-HIGH",
 * jacod.conf's isolation-ports) belong to replicas. Table inet jaco's input
 * chain accepts, in this order, replies to connections this host opened,
 * loopback, and each port a replica running here declared (one rule per
 * replica port, commented with the replica); it drops every other new
 * connection or datagram to a port of the range. Ports outside the range
 * are left to the host's own firewall. The table is replaced whole in one
 * transaction whenever the replicas change, and restored when it drifts. */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jacod_plugin.h"

#define EXPORT __attribute__((visibility("default")))
#define SCRATCH "jaco_selftest"

#define TABLE "jaco"
#define RULE_MAX 256

struct nft_state {
    struct nft_ctx *nft;
    unsigned port_low, port_high; /* the managed range */
    char *rules; /* the replicas' accept rules (set_replicas) */
    unsigned n_rules;
    char *loaded;   /* the rules of the table last loaded, NULL: none */
    char *expected; /* the table as listed right after it was loaded */
};

/* "ports=LOW-HIGH" (NULL or "": the default range). */
static int parse_conf(const struct jacod_host *host,
                      const char *conf,
                      struct nft_state *s)
{
    unsigned lo, hi;
    char end;
    s->port_low = 20000;
    s->port_high = 29999;
    if (conf == NULL || conf[0] == '\0' || strcmp(conf, "ports=") == 0) {
        return 0;
    }
    if (sscanf(conf, "ports=%u-%u%c", &lo, &hi, &end) != 2 || lo == 0 ||
        lo > hi || hi > 65535) {
        char msg[256];
        (void)snprintf(msg, sizeof msg,
                       "nftables: isolation-ports \"%s\": not LOW-HIGH, "
                       "ports from 1 to 65535",
                       strncmp(conf, "ports=", 6) == 0 ? conf + 6 : conf);
        if (host->log != NULL) {
            host->log(host->data, 3, msg);
        }
        return -2; /* JR_EINVAL */
    }
    s->port_low = lo;
    s->port_high = hi;
    return 0;
}

static int nft_start(const struct jacod_host *host,
                     const char *conf,
                     void **state)
{
    struct nft_state *s = calloc(1, sizeof *s);
    int rv;
    if (s == NULL) {
        return -1; /* JR_ENOMEM */
    }
    if ((rv = parse_conf(host, conf, s)) != 0 ||
        (s->rules = strdup("")) == NULL) {
        free(s);
        return rv != 0 ? rv : -1;
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
        free(s->rules);
        free(s->loaded);
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

static int nft_set_replicas(void *state,
                            const struct jacod_iso_replica *const *replicas,
                            size_t n)
{
    struct nft_state *s = state;
    size_t i, size = 1, used = 0;
    unsigned k, count = 0;
    char *rules;
    for (i = 0; i < n; i++) {
        size += (size_t)replicas[i]->n_ports * RULE_MAX;
    }
    if ((rules = malloc(size)) == NULL) {
        return -1; /* JR_ENOMEM */
    }
    rules[0] = '\0';
    for (i = 0; i < n; i++) {
        const struct jacod_iso_replica *r = replicas[i];
        for (k = 0; k < r->n_ports; k++) {
            int len = snprintf(rules + used, size - used,
                               "add rule inet " TABLE
                               " input %s dport %u accept comment "
                               "\"replica %s/%s/%u\"\n",
                               r->ports[k].proto == 17 ? "udp" : "tcp",
                               (unsigned)r->ports[k].port, r->deployment,
                               r->service, r->ordinal);
            if (len < 0 || (size_t)len >= size - used) {
                free(rules);
                return -16; /* JR_ETOOBIG */
            }
            used += (size_t)len;
            count++;
        }
    }
    free(s->rules);
    s->rules = rules;
    s->n_rules = count;
    return 0;
}

/* Replace table inet jaco whole in one transaction (add, delete, add: the
 * delete cannot fail) with the rules of the replicas. */
static int load(struct nft_state *s, char *diff, size_t diff_size)
{
    char *cmds;
    size_t size = strlen(s->rules) + 1024;
    int rv;
    if ((cmds = malloc(size)) == NULL) {
        (void)snprintf(diff, diff_size, "out of memory");
        return -1;
    }
    (void)snprintf(cmds, size,
                   "add table inet " TABLE
                   "\n"
                   "delete table inet " TABLE
                   "\n"
                   "add table inet " TABLE
                   "\n"
                   "add chain inet " TABLE
                   " input { type filter hook input priority 0 ; policy "
                   "accept ; }\n"
                   "add rule inet " TABLE
                   " input ct state established,related accept\n"
                   "add rule inet " TABLE
                   " input iifname \"lo\" accept\n"
                   "%s"
                   "add rule inet " TABLE
                   " input tcp dport %u-%u drop comment \"no replica here "
                   "declared this port\"\n"
                   "add rule inet " TABLE
                   " input udp dport %u-%u drop comment \"no replica here "
                   "declared this port\"\n",
                   s->rules, s->port_low, s->port_high, s->port_low,
                   s->port_high);
    rv = nft_run_cmd_from_buffer(s->nft, cmds);
    free(cmds);
    if (rv != 0) {
        explain(s, "load table inet " TABLE, diff, diff_size);
        return -9; /* JR_EIO */
    }
    free(s->expected);
    s->expected = listing(s);
    return 0;
}

static int nft_reconcile(void *state, char *diff, size_t diff_size)
{
    struct nft_state *s = state;
    char *live, first_gone[256] = "", first_extra[256] = "";
    unsigned gone = 0, extra = 0;
    int rv;
    if (s->loaded == NULL || strcmp(s->loaded, s->rules) != 0) {
        /* New replicas, or the first load: not a drift. */
        char *copy = strdup(s->rules);
        if (copy == NULL) {
            (void)snprintf(diff, diff_size, "out of memory");
            return -1;
        }
        if ((rv = load(s, diff, diff_size)) != 0) {
            free(copy);
            return rv;
        }
        free(s->loaded);
        s->loaded = copy;
        (void)snprintf(diff, diff_size,
                       "table inet %s loaded: %u replica port rule(s), "
                       "ports %u-%u kept to replicas",
                       TABLE, s->n_rules, s->port_low, s->port_high);
        return 2;
    }
    live = listing(s);
    if (live != NULL && s->expected != NULL && strcmp(live, s->expected) == 0) {
        free(live);
        return 0;
    }
    if (live != NULL && s->expected != NULL) {
        gone = missing_lines(s->expected, live, first_gone, sizeof first_gone);
        extra =
            missing_lines(live, s->expected, first_extra, sizeof first_extra);
    }
    if ((rv = load(s, diff, diff_size)) != 0) {
        free(live);
        return rv;
    }
    if (live == NULL) {
        (void)snprintf(diff, diff_size, "table inet %s was missing: loaded",
                       TABLE);
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
                                         nft_reconcile, nft_set_replicas};

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
