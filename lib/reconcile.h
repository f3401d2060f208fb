/* reconcile.h: the leader's voter-set reconciler: a pure planner that picks
 * the next membership change, its status explanations, and the glue that
 * reads a raft instance and carries a planned change out. */
#ifndef JR_RECONCILE_H
#define JR_RECONCILE_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/jacoraft.h"

#define JR__RC_ZONE_SIZE 64

/* One member of the configuration as the leader sees it. Spares are listed
 * too (dead-node cleanup may remove them), but they never count towards the
 * member count and are never promoted: a spare neither replicates nor votes,
 * so it has nothing to be caught up with. */
struct jr__rc_member {
    uint64_t id;
    int role;             /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
    bool reachable;       /* heard from within the caller's reachability window;
                           * ignored for the leader, which is always reachable */
    uint64_t since_ms;    /* caller's clock: start of the current reachable (or
                           * unreachable) period; only its difference with
                           * now_ms matters, so 0 is a valid time */
    uint64_t match_index; /* leader's view of the member's log (progress
                           * match index); for the leader, ignored: its last
                           * index is leader_last_index */
    bool leaving;         /* on its way out (graceful removal): not counted as a
                           * member, never promoted, demoted before anyone else
                           * (after a leadership transfer if it leads) */
    char zone[JR__RC_ZONE_SIZE]; /* failure zone label; "" when unlabelled,
                                  * and unlabelled members form one zone */
    bool never_vote; /* a backup node (jr_config.never_vote): the driver
                      * also sets leaving, which the planner acts on; this
                      * only words the explanation */
};

/* The reconciler's knobs; jr__rc_policy_init() sets the defaults. */
struct jr__rc_policy {
    /* Most voters to keep, rounded down to odd, at least 1; default 5.
     * Target = the largest odd number <= min(members, max_voters), where
     * members = voters + standbys, not leaving: 1-2 -> 1, 3-4 -> 3,
     * 5+ -> 5. */
    unsigned max_voters;
    /* A standby must have been reachable this long before it is promoted,
     * so that a flapping node is not made a voter; default 10000. */
    unsigned stable_ms;
    /* Entries a standby may be behind the leader's last index and still be
     * "caught up"; default 1024. raft_assign() runs its own catch-up rounds
     * before the promotion takes effect, so this gate is not about safety:
     * it keeps us from promoting a node that needs a snapshot or is stuck.
     * 1024 is half the default snapshot_trailing (2048), so a caught-up
     * standby can be brought to the last index from the leader's log
     * without a snapshot install, and is far more than a healthy follower
     * trails by between two heartbeats at the loads we benchmark. */
    uint64_t max_lag;
    /* Dead-node cleanup: remove a member unreachable longer than this.
     * 0 = off (the default): removal is then the operator's decision. */
    unsigned dead_after_ms;
};

enum jr__rc_kind {
    JR__RC_NONE = 0,
    JR__RC_PROMOTE,  /* raft_assign(id, RAFT_VOTER) */
    JR__RC_DEMOTE,   /* raft_assign(id, RAFT_STANDBY) */
    JR__RC_TRANSFER, /* raft_transfer(id): the leader must be demoted next */
    JR__RC_REMOVE    /* raft_remove(id): dead-node cleanup */
};

/* The planner's decision: at most one configuration change per call, as
 * raft allows one change at a time. reason says why, always (also for
 * JR__RC_NONE), for the log and for status. */
struct jr__rc_action {
    enum jr__rc_kind kind;
    uint64_t id; /* the member acted on (the transfer's target); 0 for NONE */
    char reason[JR_ERRMSG_SIZE];
};

/* Defaults: max_voters 5, stable_ms 10000, max_lag 1024, dead_after_ms 0. */
void jr__rc_policy_init(struct jr__rc_policy *p);

/* Number of voters to keep for the members m[0..n) under p (see
 * max_voters); always odd, 1 when there is no member. */
unsigned jr__reconcile_target(const struct jr__rc_member *m,
                              unsigned n,
                              const struct jr__rc_policy *p);

/* Decide the next change to the voter set. Pure: no I/O, no raft call, same
 * output for the same input. m[0..n) is the whole configuration, leader_id
 * one of its voters, leader_last_index the leader's last log index, now_ms
 * the clock of the since_ms fields. Call it only when no configuration
 * change or leadership transfer is in flight (jr__reconcile_busy()).
 *
 * Order: dead-node cleanup (if enabled) first, then promotion towards the
 * target, then demotion of extras (leaving voters first); a demotion that
 * would hit the leader is a TRANSFER to the best voter instead. Guards: a
 * promotion that lands on an even count starts only when the next step can
 * land on an odd one (a second eligible standby or a leaving voter); no
 * demotion or removal leaves fewer reachable voters than a majority of the
 * new voter set; the leader and the last voter are never removed. Never
 * fails: anything it cannot do is JR__RC_NONE with the reason. */
void jr__reconcile_plan(const struct jr__rc_member *m,
                        unsigned n,
                        uint64_t leader_id,
                        uint64_t leader_last_index,
                        uint64_t now_ms,
                        const struct jr__rc_policy *p,
                        struct jr__rc_action *out);

/* A short explanation of m[i]'s role for status, written to buf (size
 * bytes, truncated if needed): "voter", "standby: waiting for catch-up
 * (312 entries behind)", "standby: stable for 4 s of 10 s", ... Same
 * arguments as jr__reconcile_plan(). */
void jr__reconcile_why(const struct jr__rc_member *m,
                       unsigned n,
                       uint64_t leader_id,
                       uint64_t leader_last_index,
                       uint64_t now_ms,
                       const struct jr__rc_policy *p,
                       unsigned i,
                       char *buf,
                       size_t size);

/* ---- glue to a raft instance (loop thread only) ---- */

/* Fills reachability and zone of m, whose id, role and match_index are set;
 * the library feeds it from its contact table, tests from the fixture. */
typedef void (*jr__rc_contact_cb)(void *arg, struct jr__rc_member *m);

/* Whether r cannot take a new change now: it is not the leader, or a
 * configuration change (also one still uncommitted from an earlier term)
 * or a leadership transfer is in flight. */
bool jr__reconcile_busy(const struct raft *r);

/* Fill out[0..*n) from r's configuration, match indexes from the leader's
 * progress, and *last_index; contact(arg, &out[i]) then sets reachability,
 * since_ms, zone and leaving of each entry (all zero before the call).
 * Returns 0, JR_ESTATE if r is not the leader, or JR_EINVAL if the
 * configuration has more than cap servers. Outputs untouched on error. */
int jr__reconcile_members_from_raft(struct raft *r,
                                    struct jr__rc_member *out,
                                    unsigned cap,
                                    unsigned *n,
                                    uint64_t *last_index,
                                    jr__rc_contact_cb contact,
                                    void *arg);

/* A change in flight; the caller keeps it alive until cb has run. */
struct jr__rc_req;
/* status: 0 on success, or a JR_E* code: a change's failure translated from
 * raft, JR_ETIMEDOUT if a transfer ended without the target leading. */
typedef void (*jr__rc_cb)(struct jr__rc_req *req, int status);
struct jr__rc_req {
    void *data; /* for the caller */
    /* Private. */
    struct raft *raft;
    struct jr__rc_action action;
    jr__rc_cb cb;
    union {
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
};

/* Carry out a (PROMOTE, DEMOTE, REMOVE or TRANSFER) on the leader r. On 0,
 * cb(req, status) runs exactly once, later, from raft's callback; on error
 * never. Errors: JR_EINVAL (JR__RC_NONE or unknown kind), JR_EBUSY
 * (jr__reconcile_busy()), or raft's refusal translated
 * (jr__err_from_raft()). */
int jr__reconcile_apply(struct raft *r,
                        const struct jr__rc_action *a,
                        struct jr__rc_req *req,
                        jr__rc_cb cb);

#endif
