/* state.h: jacod's cluster state, the replicated state machine behind
 * libjacoraft: the nodes (name, address, role, status, labels, last seen)
 * and a bounded audit log. Commands and snapshots are msgpack. apply,
 * snapshot and restore run on the library's loop thread; queries run on any
 * thread and take the state's lock. */
#ifndef JD_STATE_H
#define JD_STATE_H

#include <jacoraft.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "deploy.h"
#include "nodeid.h"

enum jd_node_status {
    JD_NODE_STATUS_UNKNOWN = 0, /* a member not yet observed by a leader */
    JD_NODE_STATUS_READY,
    JD_NODE_STATUS_UNREACHABLE,
    JD_NODE_STATUS_ISOLATION_UNAVAILABLE,
};
const char *jd_node_status_name(int status); /* "NODE_STATUS_READY" ... */

#define JD_NAME_MAX 64
#define JD_ADDR_MAX 128
#define JD_LABELS_MAX 32
#define JD_LABEL_MAX 64 /* key or value, bytes including the NUL */
#define JD_DETAIL_MAX 256

/* What a leader observed of one member, for jd_cmd_observe. */
struct jd_observed {
    uint64_t id;
    char name[JD_NAME_MAX];
    char address[JD_ADDR_MAX];
    char role[16];        /* "voter", "standby", "spare" */
    int status;           /* enum jd_node_status */
    int64_t last_seen_ms; /* wall clock (ms since the epoch); 0: never */
};

struct jd_state;

/* The audit log keeps at most max_events events and drops, whenever an
 * event is recorded, those older than max_age_s before it, oldest first.
 * The bounds are part of the replicated state: the leader's configuration,
 * carried by its observations (jd_cmd_observe); until the first one, the
 * defaults. */
#define JD_AUDIT_DEFAULT_EVENTS 10000
#define JD_AUDIT_DEFAULT_AGE_S (30 * 86400)
#define JD_AUDIT_MAX_EVENTS_LIMIT 1000000000u
struct jd_state *jd_state_new(void);
void jd_state_free(struct jd_state *s);

/* The FSM to give libjacoraft (its data is s). */
const struct jr_fsm *jd_state_fsm(struct jd_state *s);

/* Called on the library's loop thread after every applied command, with its
 * index and type (e.g. "node.label"); for watchers. */
void jd_state_set_hook(struct jd_state *s,
                       void (*hook)(void *data,
                                    uint64_t index,
                                    const char *type),
                       void *data);

/* ---- commands (msgpack buffers to jr_apply; free with free()) ----
 * who: the requester ("uid 0 on the local socket", "jacod node1"); now_ms:
 * the submitter's wall clock, which the audit log records. */
int jd_cmd_observe(const struct jd_observed *nodes,
                   unsigned n,
                   uint64_t leader_id,
                   unsigned audit_max_events,
                   unsigned audit_max_age_s,
                   const char *who,
                   int64_t now_ms,
                   char **buf,
                   size_t *len);
/* Set labels (keys[i]=values[i]) and remove labels (unset[j]) of a node. */
int jd_cmd_label(const char *node,
                 const char *const *keys,
                 const char *const *values,
                 unsigned n_set,
                 const char *const *unset,
                 unsigned n_unset,
                 const char *who,
                 int64_t now_ms,
                 char **buf,
                 size_t *len);

/* Record an audit event of type (lowercase letters and '_') about node,
 * reported by a host (its isolation plugin restored a ruleset...). */
int jd_cmd_audit(const char *type,
                 const char *node,
                 const char *details,
                 const char *who,
                 int64_t now_ms,
                 char **buf,
                 size_t *len);

/* Forget a node removed from the cluster: its record and its labels go,
 * and a node.removed event records who removed it and how (how: "graceful",
 * "forced", "raft remove-peer"). The node is found by id, else by name. */
int jd_cmd_remove(uint64_t id,
                  const char *name,
                  const char *how,
                  const char *who,
                  int64_t now_ms,
                  char **buf,
                  size_t *len);

/* What a host says of itself: its isolation ("ok", "unavailable" or
 * "none", with a detail: the self-test's result) and its runtime (the
 * scheduler plugin that runs its replicas; "" none). */
int jd_cmd_host(const char *node,
                const char *isolation,
                const char *detail,
                const char *runtime,
                const char *who,
                int64_t now_ms,
                char **buf,
                size_t *len);

/* Deployments: deploy.h's jd_cmd_deploy_apply, jd_cmd_deploy_delete,
 * jd_cmd_sched_place and jd_cmd_replica_report. */

/* A command's result as the FSM hands it back through jr_apply: "" on
 * success, else "<code>: <message>" with a stable code (not_found,
 * invalid_argument). */

/* Label keys: a-z, 0-9, '.', '/', '_', '-', 1-63 bytes; values: printable
 * ASCII without spaces, '=' or ',', up to 63 bytes. */
bool jd_label_key_ok(const char *key);
bool jd_label_value_ok(const char *value);

/* ---- queries: each packs one msgpack value into pk ---- */

/* Array of maps: name, id, address, role, status, labels (map),
 * last_seen_ms. */
void jd_state_pack_nodes(struct jd_state *s, msgpack_packer *pk);
/* Array of maps: index, time_ms, type, who, node, details; only events of
 * type (if not NULL/"") and not older than since_ms (if > 0). */
void jd_state_pack_audit(struct jd_state *s,
                         msgpack_packer *pk,
                         const char *type,
                         int64_t since_ms);
/* The status the state holds for node id (JD_NODE_STATUS_UNKNOWN if none),
 * and its last seen time; for the leader's observer. */
int jd_state_node_status(struct jd_state *s,
                         uint64_t id,
                         int64_t *last_seen_ms,
                         char *address,
                         char *role);
uint64_t jd_state_leader(struct jd_state *s);
/* Whether a node is recorded as a member (role other than "none") but is
 * not among ids, the Raft configuration: the next observation marks it. */
bool jd_state_has_nonmembers(struct jd_state *s,
                             const uint64_t *ids,
                             unsigned n);
/* The id recorded for the node named name; false if there is none. */
bool jd_state_node_id(struct jd_state *s, const char *name, uint64_t *id);

/* What node name reported of itself (jd_cmd_host); false if it has no
 * record. Each buffer has the size of the record's field (16,
 * JD_DETAIL_MAX, JD_NAME_MAX). */
bool jd_state_node_host(struct jd_state *s,
                        const char *name,
                        char *isolation,
                        char *detail,
                        char *runtime);
/* Whether the node of id reported a failed isolation self-test. */
bool jd_state_isolation_unavailable(struct jd_state *s, uint64_t id);

/* ---- deployments (deploy.h), under the state's lock ---- */
uint64_t jd_state_deploy_generation(struct jd_state *s);
/* jd_deploys_pack_status: false (nothing packed) if dep or svc is not
 * there. */
bool jd_state_pack_deployments(struct jd_state *s,
                               msgpack_packer *pk,
                               const char *dep,
                               const char *svc);
int jd_state_host_replicas(struct jd_state *s,
                           const char *host,
                           struct jd_host_replica **out,
                           unsigned *n);
int jd_state_sched_view(struct jd_state *s, struct jd_sched_view *v);

/* Every recorded node as the scheduler sees it (unreachable_ms is left 0:
 * the leader knows better than the state): names point into the returned
 * storage. */
struct jd_sched_hosts {
    struct jacod_sched_host *hosts;
    struct jacod_sched_host **ptrs;
    char (*names)[JD_NAME_MAX];
    uint64_t *ids; /* each host's Raft id */
    size_t n;
};
int jd_state_sched_hosts(struct jd_state *s, struct jd_sched_hosts *out);
void jd_sched_hosts_free(struct jd_sched_hosts *h);

#endif
