/* deploy.h: the deployments and replicas of jacod's cluster state: the
 * commands that change them (deploy.apply, deploy.delete, sched.place,
 * replica.report), their part of the snapshot, and the copies the
 * scheduler, the supervisor and `jaco status` read. state.c owns the lock
 * and calls these with it held. */
#ifndef JD_DEPLOY_H
#define JD_DEPLOY_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "deployment.h"
#include "jacod_plugin.h" /* enum jacod_replica_state */

#define JD_FAILURE_MAX 24
#define JD_MAX_REPLICAS_TOTAL 4096 /* in the whole cluster */
#define JD_REASON_MAX 256

const char *jd_replica_state_name(int state);   /* "pending" ... */
int jd_replica_state_of_name(const char *name); /* 0 if unknown */

/* Failure codes of a failed replica. */
#define JD_FAILURE_EXEC_FAILED "exec_failed"
#define JD_FAILURE_RESTART_EXHAUSTED "restart_exhausted"
#define JD_FAILURE_RUNTIME_ERROR "runtime_error"

/* One replica as the cluster records it. */
struct jd_replica {
    char host[JD_DEP_NAME_MAX];   /* where it is placed; "" nowhere */
    uint64_t revision;            /* of its deployment, that it runs */
    int state;                    /* enum jacod_replica_state */
    unsigned attempts;            /* starts in this revision */
    char failure[JD_FAILURE_MAX]; /* of a failed replica */
    char reason[JD_REASON_MAX];   /* why it is pending, or failed */
    int64_t pid;
    int64_t since_ms; /* of the last state change (submitter's clock) */
};

/* A replica report of a host's supervisor. */
struct jd_replica_report {
    char deployment[JD_DEP_NAME_MAX];
    char service[JD_DEP_NAME_MAX];
    unsigned ordinal;
    uint64_t revision;
    int state;
    unsigned attempts;
    char failure[JD_FAILURE_MAX];
    char reason[JD_REASON_MAX];
    int64_t pid;
};

/* A placement decided by the leader's scheduler. */
struct jd_placement {
    char deployment[JD_DEP_NAME_MAX];
    char service[JD_DEP_NAME_MAX];
    unsigned ordinal;
    uint64_t revision;
    char host[JD_DEP_NAME_MAX];
    char reason[JD_REASON_MAX];
};

struct jd_deploys;
struct jd_deploys *jd_deploys_new(void);
void jd_deploys_free(struct jd_deploys *d);
/* Bumped by every change: a reader compares it to skip unchanged work. */
uint64_t jd_deploys_generation(const struct jd_deploys *d);

/* ---- commands (msgpack buffers for jr_apply, free with free()) ---- */
int jd_cmd_deploy_apply(struct jd_deployment *const *deps,
                        unsigned n,
                        const char *who,
                        int64_t now_ms,
                        char **buf,
                        size_t *len);
int jd_cmd_deploy_delete(const char *name,
                         const char *who,
                         int64_t now_ms,
                         char **buf,
                         size_t *len);
int jd_cmd_sched_place(const struct jd_placement *p,
                       unsigned n,
                       const char *who,
                       int64_t now_ms,
                       char **buf,
                       size_t *len);
int jd_cmd_replica_report(const char *host,
                          const struct jd_replica_report *r,
                          unsigned n,
                          const char *who,
                          int64_t now_ms,
                          char **buf,
                          size_t *len);

/* ---- apply (state.c, lock held) ---- */
typedef void (*jd_audit_fn)(void *ctx,
                            const char *type,
                            const char *node,
                            const char *details);
/* Apply the command of type (false: not a deployment command). result
 * (size bytes) gets "" on success, "ok: DETAIL" for a success with
 * something to say, or "CODE: MESSAGE". */
bool jd_deploys_apply(struct jd_deploys *d,
                      const char *type,
                      const msgpack_object *cmd,
                      int64_t now_ms,
                      jd_audit_fn audit,
                      void *audit_ctx,
                      char *result,
                      size_t size);

/* ---- snapshot ---- */
void jd_deploys_pack(const struct jd_deploys *d, msgpack_packer *pk);
/* Decode a packed section into a new set (*out); 0 or -1. */
int jd_deploys_unpack(const msgpack_object *o, struct jd_deploys **out);

/* ---- queries ---- */
/* Array of maps {name, revision, services: [{name, command, ports, hosts,
 * replicas: [{ordinal, host, revision, state, attempts, failure, reason,
 * pid, since_ms}]}]}; only deployment dep and its service
 * svc when they are not NULL. Returns false if dep or svc is not there
 * (nothing packed then). */
bool jd_deploys_pack_status(const struct jd_deploys *d,
                            msgpack_packer *pk,
                            const char *dep,
                            const char *svc);

/* A replica placed on one host, with what it runs: for its supervisor. */
struct jd_host_replica {
    char deployment[JD_DEP_NAME_MAX];
    unsigned ordinal;
    struct jd_replica rec;
    struct jd_deployment *dep; /* a copy of the deployment, one service:
                                  this replica's (services[0]) */
};
/* Copies of every replica placed on host (free with
 * jd_host_replicas_free); -1 when out of memory. */
int jd_deploys_host_replicas(const struct jd_deploys *d,
                             const char *host,
                             struct jd_host_replica **out,
                             unsigned *n);
void jd_host_replicas_free(struct jd_host_replica *r, unsigned n);

/* Every replica, for the leader's scheduler: the plugin's structs, whose
 * strings point into their slot. */
struct jd_sched_slot {
    struct jacod_sched_replica r;
    uint64_t revision; /* of the replica's deployment */
    char deployment[JD_DEP_NAME_MAX];
    char service[JD_DEP_NAME_MAX];
    char host[JD_DEP_NAME_MAX];
    char reason[JD_REASON_MAX]; /* the record's */
    const char *pins[JD_MAX_PIN_HOSTS];
    char pin_names[JD_MAX_PIN_HOSTS][JD_DEP_NAME_MAX];
};
struct jd_sched_view {
    struct jd_sched_slot *slots;
    struct jacod_sched_replica **ptrs; /* &slots[i].r */
    size_t n;
};
/* 0, or -1 when out of memory (nothing to free then). */
int jd_deploys_sched_view(const struct jd_deploys *d, struct jd_sched_view *v);
void jd_sched_view_free(struct jd_sched_view *v);

#endif
