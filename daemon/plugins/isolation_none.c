/* isolation_none.c: the isolation plugin for hosts without nftables: it
 * isolates nothing, and says so, so that replicas still run there. */
#include <stdio.h>

#include "../jacod_plugin.h"

#define EXPORT __attribute__((visibility("default")))

static int none_start(const struct jacod_host *host,
                      const char *conf,
                      void **state)
{
    (void)conf;
    *state = NULL;
    if (host->log != NULL) {
        host->log(host->data, 1,
                  "isolation: none: replicas on this host run without "
                  "network isolation");
    }
    return 0;
}

static void none_stop(void *state)
{
    (void)state;
}

static int none_self_test(void *state, char *why, size_t why_size)
{
    (void)state;
    (void)snprintf(why, why_size, "none: no isolation by configuration");
    return 0;
}

static int none_reconcile(void *state, char *diff, size_t diff_size)
{
    (void)state;
    (void)diff;
    (void)diff_size;
    return 0;
}

static const struct jacod_iso_ops ops = {
    .size = sizeof ops,
    .self_test = none_self_test,
    .reconcile = none_reconcile,
    /* set_replicas: nothing to isolate */
};

static const struct jacod_plugin plugin = {
    JACOD_PLUGIN_ABI, sizeof plugin, JACOD_PLUGIN_ISOLATION, "none", none_start,
    none_stop,        &ops,
};

EXPORT const struct jacod_plugin *jacod_plugin_entry(
    const struct jacod_host *host)
{
    (void)host;
    return &plugin;
}
