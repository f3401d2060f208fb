/* jacod_plugin.h: the ABI between jacod and its plugins (scheduler and
 * isolation), for plugin authors. A plugin is a shared object exporting
 * exactly one symbol, jacod_plugin_entry; everything else is reached
 * through the versioned structs below, and both sides check versions
 * before use (jaco-plugins(7)).
 *
 * Build one out of tree with
 *   cc -shared -fPIC -fvisibility=hidden -o my.so my.c \
 *      $(pkg-config --cflags jacoraft)
 * and name it in jacod.conf(5) (scheduler-plugin or isolation-plugin).
 *
 * Rules: never call exit(), install signal handlers or block the caller
 * for long; return 0 or a negative JR_E* code (jacoraft.h); every struct
 * is append-only, each new member commented with the release that added
 * it. */
#ifndef JACOD_PLUGIN_H
#define JACOD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped only on an incompatible change: jacod refuses another value. */
#define JACOD_PLUGIN_ABI 1

enum jacod_plugin_kind {
    JACOD_PLUGIN_SCHEDULER = 1,
    JACOD_PLUGIN_ISOLATION = 2,
};

/* What jacod offers a plugin; valid from jacod_plugin_entry until the
 * plugin's stop has returned. Members past size are absent. */
struct jacod_host {
    uint32_t abi;          /* JACOD_PLUGIN_ABI of jacod */
    uint32_t size;         /* sizeof(struct jacod_host) as jacod was built */
    void *data;            /* pass back to the functions below */
    const char *node_name; /* this host's node name */
    /* Log a line in jacod's log (level: 0 debug, 1 info, 2 warning,
     * 3 error, as jacoraft's JR_LOG_*). Any thread. */
    void (*log)(void *data, int level, const char *message);
};

/* The isolation plugin's operations. */
struct jacod_iso_ops {
    uint32_t size; /* sizeof(struct jacod_iso_ops) as built */
    /* Check, at start, that isolation works on this host. 0 if it does;
     * else a negative JR_E* code and, in why (why_size bytes), what is
     * missing (kernel support, the nft library, CAP_NET_ADMIN...). A host
     * whose self-test fails gets no replicas. */
    int (*self_test)(void *state, char *why, size_t why_size);
    /* Make the live ruleset the expected one, atomically. Called once
     * after a passed self-test, then every isolation-check-interval. 0 if
     * it was already right; 1 if it was changed, with a summary of the
     * difference in diff (diff_size bytes); or a negative JR_E* code with
     * the reason in diff. */
    int (*reconcile)(void *state, char *diff, size_t diff_size);
};

/* The scheduler plugin's operations (placement comes with deployments). */
struct jacod_sched_ops {
    uint32_t size; /* sizeof(struct jacod_sched_ops) as built */
};

struct jacod_plugin {
    uint32_t abi;  /* JACOD_PLUGIN_ABI the plugin was built with */
    uint32_t size; /* sizeof(struct jacod_plugin) as built */
    uint32_t kind; /* enum jacod_plugin_kind */
    const char *name;
    /* Set the plugin up; conf is reserved (NULL). *state is passed to
     * every other call. 0 or a negative JR_E* code. */
    int (*start)(const struct jacod_host *host, const char *conf, void **state);
    /* Release everything; jacod unloads the plugin after it returns. */
    void (*stop)(void *state);
    /* struct jacod_iso_ops or struct jacod_sched_ops, by kind. */
    const void *ops;
};

/* The one symbol a plugin exports (with default visibility). It returns a
 * pointer to a static struct that stays valid while the plugin is
 * loaded. */
const struct jacod_plugin *jacod_plugin_entry(const struct jacod_host *host);
typedef const struct jacod_plugin *(*jacod_plugin_entry_fn)(
    const struct jacod_host *host);
#define JACOD_PLUGIN_ENTRY "jacod_plugin_entry"

#ifdef __cplusplus
}
#endif

#endif /* JACOD_PLUGIN_H */
