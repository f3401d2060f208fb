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

/* One node of the cluster, as jacod_host.nodes reports it. */
struct jacod_node_view {
    char name[64];
    int state; /* enum jacod_host_state */
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
    /* Added in 0.2: record an audit event of type (a-z and '_') about
     * this host in the cluster's audit log, through Raft, in the
     * background (a host cut off from the quorum records it later, or
     * not at all). Any thread. */
    void (*audit)(void *data, const char *type, const char *details);
    /* Added in 0.2: this node's copy of the cluster's node table (local:
     * it works without a quorum, and may be a little behind). Fills up to
     * max entries of out; returns how many nodes there are. Any thread. */
    size_t (*nodes)(void *data, struct jacod_node_view *out, size_t max);
};

/* A replica running on this host, for the isolation plugin (not to grow:
 * a later version adds a new function taking a new struct). */
struct jacod_iso_port {
    uint16_t port;
    uint8_t proto; /* 6 tcp, 17 udp */
};
struct jacod_iso_replica {
    const char *deployment;
    const char *service;
    unsigned ordinal;
    int64_t pid;
    const struct jacod_iso_port *ports; /* it may be reached on these */
    unsigned n_ports;
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
     * after a passed self-test, then every isolation-check-interval and
     * after every set_replicas. 0 if it was already right; 1 if it had
     * drifted from what the plugin last loaded and was restored, with a
     * summary of the difference in diff (diff_size bytes); 2 (added in
     * 0.2) if the plugin loaded a new expected ruleset (the first, or
     * after set_replicas), with what it loaded in diff; or a negative
     * JR_E* code with the reason in diff. */
    int (*reconcile)(void *state, char *diff, size_t diff_size);
    /* Added in 0.2: the replicas this host runs now, each with the ports
     * it may be reached on (jaco.yaml(5) ports); the next reconcile makes
     * the ruleset match. The array and what it points to are valid during
     * the call only. jacod calls self_test (at start, on its main
     * thread), then reconcile and set_replicas, one at a time, from a
     * thread of its pool. 0 or a negative JR_E* code. */
    int (*set_replicas)(void *state,
                        const struct jacod_iso_replica *const *replicas,
                        size_t n);
};

/* ---- scheduling ---- */

/* A host as the leader's scheduler sees it. */
enum jacod_host_state {
    JACOD_HOST_READY = 1,                 /* may run replicas */
    JACOD_HOST_UNREACHABLE = 2,           /* the leader cannot reach it */
    JACOD_HOST_ISOLATION_UNAVAILABLE = 3, /* its isolation self-test failed */
    JACOD_HOST_NO_RUNTIME = 4,            /* its jacod runs no replicas */
    JACOD_HOST_NOT_MEMBER = 5,            /* recorded, but not in the Raft
                                             configuration any more */
};

struct jacod_sched_host {
    const char *name;
    int state;              /* enum jacod_host_state */
    int64_t unreachable_ms; /* for how long (JACOD_HOST_UNREACHABLE) */
};

enum jacod_replica_state {
    JACOD_REPLICA_PENDING = 1,
    JACOD_REPLICA_STARTING = 2,
    JACOD_REPLICA_RUNNING = 3,
    JACOD_REPLICA_FAILED = 4,
    JACOD_REPLICA_STOPPED = 5,
};

/* One replica to place: what the plugin reads, and what it writes. Not
 * to grow: a later version passes a new struct through
 * jacod_sched_input, whose size says which. */
struct jacod_sched_replica {
    const char *deployment;
    const char *service;
    unsigned ordinal;
    const char *const *hosts; /* placement.hosts: it runs on one of them */
    unsigned n_hosts;         /* 0: on any host */
    const char *host;         /* where it is placed now; "" nowhere */
    int state;                /* enum jacod_replica_state */
    /* Out: the host to place it on ("" none; the same as host to leave
     * it), and, when it is left unplaced, why ("cannot satisfy host
     * placement: n3 unreachable"). */
    char place[64];
    char reason[256];
};

/* What the scheduler places: every replica of every deployment (those of
 * one service consecutive, by ordinal), and every host the cluster state
 * records (a host not among them was removed). */
struct jacod_sched_input {
    uint32_t size; /* sizeof(struct jacod_sched_input) as jacod was built */
    const struct jacod_sched_host *const *hosts;
    size_t n_hosts;
    struct jacod_sched_replica *const *replicas;
    size_t n_replicas;
    /* A replica on a host unreachable for longer than this may move
     * (unless pinned there); before, it stays put. */
    int64_t reschedule_after_ms;
};

/* One replica to run on this host, for the runtime. */
struct jacod_replica_spec {
    uint32_t size; /* sizeof(struct jacod_replica_spec) as jacod was built */
    const char *deployment;
    const char *service;
    unsigned ordinal;
    uint64_t revision;
    const char *const *argv; /* NULL-terminated; argv[0] is a path, or a
                                name looked up in envp's PATH */
    const char *const *envp; /* NULL-terminated KEY=VALUE: the whole
                                environment */
    const char *workdir;     /* the working directory */
    const char *log_path;    /* standard output and error, appended */
};

/* Why a replica could not be started (replica_run's *failure). */
enum jacod_failure {
    JACOD_FAILURE_EXEC = 1,    /* the command cannot be executed */
    JACOD_FAILURE_RUNTIME = 2, /* the runtime failed (fork, files...) */
};

/* The scheduler plugin's operations. place runs on the leader's loop
 * thread, the replica_* functions on every host's: none may block. */
struct jacod_sched_ops {
    uint32_t size; /* sizeof(struct jacod_sched_ops) as built */
    /* Added in 0.2. Decide, for every replica of in, its place and
     * reason. 0 or a negative JR_E* code (then nothing changes). */
    int (*place)(void *state, const struct jacod_sched_input *in);
    /* Added in 0.2, as the two below. Start one replica. 0 with *handle (for
     * the two calls below) and *pid set; or a negative JR_E* code with *failure
     * (enum jacod_failure) and why (why_size bytes) saying what went wrong. */
    int (*replica_run)(void *state,
                       const struct jacod_replica_spec *spec,
                       uint64_t *handle,
                       int64_t *pid,
                       int *failure,
                       char *why,
                       size_t why_size);
    /* 0 while the replica runs; 1 once it has exited, with its wait(2)
     * status in *wait_status: the handle is then released. */
    int (*replica_poll)(void *state, uint64_t handle, int *wait_status);
    /* Ask it to stop: SIGTERM now, SIGKILL after grace_ms (the kill
     * happens in a later replica_poll). Poll until it has exited. */
    void (*replica_stop)(void *state, uint64_t handle, unsigned grace_ms);
};

struct jacod_plugin {
    uint32_t abi;  /* JACOD_PLUGIN_ABI the plugin was built with */
    uint32_t size; /* sizeof(struct jacod_plugin) as built */
    uint32_t kind; /* enum jacod_plugin_kind */
    const char *name;
    /* Set the plugin up. conf is the plugin's own settings from
     * jacod.conf(5) as one string of KEY=VALUE words (the nftables
     * plugin's "ports=20000-29999"), or NULL. *state is passed to every
     * other call. 0 or a negative JR_E* code. */
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
