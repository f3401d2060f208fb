/* jacoraft.h: the public API of libjacoraft, an embeddable replicated state
 * machine built on canonical/raft. See jacoraft(3). */
#ifndef JACORAFT_H
#define JACORAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JR_API __attribute__((visibility("default")))

#define JR_VERSION_MAJOR 0
#define JR_VERSION_MINOR 1
#define JR_VERSION_PATCH 0

/* Version of the library actually linked, as "MAJOR.MINOR.PATCH". Static
 * string; any thread. */
JR_API const char *jr_version(void);

/* ------------------------------------------------------------------------
 * Errors
 *
 * Every fallible function returns 0 on success or one of these negative
 * codes. The numbers are stable (the daemon puts them on the wire) and the
 * list is append-only. JR_ERRORS(X) expands X(NAME, value, "message") once
 * per code so that tables can be generated from it.
 * --------------------------------------------------------------------- */
#define JR_ERRORS(X)                                                          \
    X(JR_ENOMEM, -1, "out of memory")                                         \
    X(JR_EINVAL, -2, "invalid argument")                                      \
    X(JR_ENOLEADER, -3, "no leader: an election is in progress, retry soon")  \
    X(JR_EQUORUMLOST, -4,                                                     \
      "quorum lost: this node cannot reach a majority of voters, see "        \
      "jaco-recovery(7)")                                                     \
    X(JR_ETIMEDOUT, -5, "timed out: the outcome of the operation is unknown") \
    X(JR_ELEADERSHIPLOST, -6,                                                 \
      "leadership lost before the write was acknowledged: it may or may not " \
      "have been applied")                                                    \
    X(JR_ECANCELED, -7, "canceled: the node is stopping")                     \
    X(JR_ELOCKED, -8, "data directory is in use by another process")          \
    X(JR_EIO, -9, "input/output error")                                       \
    X(JR_ENOSPACE, -10, "no space left on device")                            \
    X(JR_ECORRUPT, -11, "data is corrupt")                                    \
    X(JR_EPROTO, -12, "protocol error: malformed or unexpected message")      \
    X(JR_EMISMATCH, -13,                                                      \
      "identity mismatch: the data directory or peer belongs to another "     \
      "node or cluster")                                                      \
    X(JR_ESTATE, -14, "operation not valid in the node's current state")      \
    X(JR_ENOTFOUND, -15, "not found")                                         \
    X(JR_ETOOBIG, -16, "too big")                                             \
    X(JR_EAPPLY, -17, "the state machine failed to apply the command")        \
    X(JR_ESNAPSHOT, -18, "the state machine failed to snapshot or restore")   \
    X(JR_EBUSY, -19, "busy: another operation of this kind is in progress")   \
    X(JR_ECONNECT, -20, "cannot connect to the peer")                         \
    X(JR_EDEADLK, -21,                                                        \
      "blocking call made on the node's loop thread would deadlock")          \
    X(JR_EVERSION, -22,                                                       \
      "unsupported format version: written by an incompatible version")       \
    X(JR_ENOTEMPTY, -23, "the target is not empty")

enum jr_error_code {
    JR_OK = 0,
#define JR__ERROR_ENUM(name, value, text) name = value,
    JR_ERRORS(JR__ERROR_ENUM)
#undef JR__ERROR_ENUM
};

/* Static description of a code; never NULL ("unknown error" for codes this
 * version does not know). Any thread. */
JR_API const char *jr_strerror(int code);

/* Symbolic name of a code ("JR_ENOLEADER"); never NULL. Any thread. */
JR_API const char *jr_err_name(int code);

/* Short snake_case name for wire and CLI use ("no_leader", "quorum_lost");
 * never NULL. Any thread. */
JR_API const char *jr_err_slug(int code);

#define JR_ERRMSG_SIZE 256

/* Detail of a failed synchronous call: its code and a message that names
 * what was being done ("open data directory /x: Permission denied"). Pass
 * NULL where the detail is not wanted. */
struct jr_error {
    int code;
    char message[JR_ERRMSG_SIZE];
};

/* ------------------------------------------------------------------------
 * Memory
 * --------------------------------------------------------------------- */

/* Allocate memory that the library will own or free (results handed to the
 * library by an FSM). Any thread. */
JR_API void *jr_malloc(size_t size);
/* Free anything the library hands out (statuses, results, strings). */
JR_API void jr_free(void *ptr);

/* ------------------------------------------------------------------------
 * Logging
 * --------------------------------------------------------------------- */
enum jr_log_level {
    JR_LOG_DEBUG = 0,
    JR_LOG_INFO = 1,
    JR_LOG_WARN = 2,
    JR_LOG_ERROR = 3,
};

/* Receives every log line of a node (without trailing newline), on any of
 * the library's threads. Must not block and must not call back into the
 * node. */
typedef void (*jr_log_cb)(void *data, int level, const char *message);

/* ------------------------------------------------------------------------
 * State machine
 *
 * All three callbacks run on the node's loop thread, one at a time, never
 * concurrently with each other.
 * --------------------------------------------------------------------- */

struct jr_snapshot_writer; /* opaque: where snapshot() streams the state */
struct jr_snapshot_reader; /* opaque: where restore() reads it from */

/* Append len bytes to the snapshot being taken. Returns 0 or JR_ENOMEM. */
JR_API int jr_snapshot_write(struct jr_snapshot_writer *w,
                             const void *buf,
                             size_t len);

/* Read up to len bytes of the snapshot being restored into buf. Returns the
 * number of bytes read (0 at the end of the snapshot). */
JR_API size_t jr_snapshot_read(struct jr_snapshot_reader *r,
                               void *buf,
                               size_t len);

/* Bytes of the snapshot not yet read. */
JR_API size_t jr_snapshot_remaining(const struct jr_snapshot_reader *r);

struct jr_fsm {
    void *data; /* passed as the first argument of every callback */

    /* Apply one committed command. Commands arrive in log order, each with
     * its log index; the buffer is borrowed for the call. The FSM may hand
     * back a result: set *result to memory from jr_malloc() (the library
     * takes it and frees it) and *result_len to its length; it reaches the
     * caller of jr_apply() on whichever node submitted the command. Return 0,
     * or a non-zero value to report that the command could not be applied:
     * the submitter then gets JR_EAPPLY. apply must be deterministic: every
     * node applies the same commands in the same order and must reach the
     * same state and the same return value. */
    int (*apply)(void *data,
                 uint64_t index,
                 const void *buf,
                 size_t len,
                 void **result,
                 size_t *result_len);

    /* Stream the whole state out with jr_snapshot_write(). Return 0 or
     * non-zero to abort this snapshot (it is retried later). */
    int (*snapshot)(void *data, struct jr_snapshot_writer *w);

    /* Replace the whole state with the snapshot read from r. Called at start
     * when a snapshot exists, and when the leader installs one. Return 0 or
     * non-zero if the snapshot cannot be decoded. */
    int (*restore)(void *data, struct jr_snapshot_reader *r);
};

/* ------------------------------------------------------------------------
 * Configuration
 * --------------------------------------------------------------------- */
#define JR_CONFIG_VERSION 1

struct jr_config {
    uint32_t size;        /* sizeof(struct jr_config) as compiled */
    uint32_t version;     /* JR_CONFIG_VERSION */
    uint64_t id;          /* this node's id, > 0, unique in the cluster */
    const char *name;     /* human name; default "node<id>" */
    const char *address;  /* host:port (IPv4) this node listens on and
                             that peers use to reach it */
    const char *data_dir; /* directory holding the node's state; created
                             if missing */
    unsigned election_timeout_ms;  /* default 1000 */
    unsigned heartbeat_timeout_ms; /* default 100 */
    unsigned snapshot_threshold;   /* entries between snapshots; 8192 */
    unsigned snapshot_trailing;    /* entries kept after a snapshot; 2048 */
    unsigned apply_timeout_ms;     /* deadline of a write or read; 10000 */
    int log_level;                 /* enum jr_log_level; JR_LOG_INFO */
    jr_log_cb log_cb;              /* NULL: "HH:MM:SS.mmm jacoraft[name]
                                      level: ..." (UTC) to stderr */
    void *log_data;                /* passed to log_cb */
    const struct jr_fsm *fsm;      /* required; copied at open */
    /* Failure zone (rack, room, availability zone); NULL or "" for none.
     * The voter-set reconciler spreads voters across zones. */
    const char *zone;
    /* Voter-set policy, kept by the leader's reconciler: target voters
     * 1 for 1-2 members, 3 for 3-4, 5 for 5 or more, capped at max_voters
     * (odd; 0: 5). A standby is promoted once reachable for
     * promote_after_ms (0: 10000) and within 1024 entries of the leader. */
    unsigned max_voters;
    unsigned promote_after_ms;
    /* Dead-node cleanup: remove a member unreachable this long, unless that
     * leaves the reachable voters short of a majority (0: off, the
     * default; removal is then the operator's decision). */
    unsigned dead_node_timeout_ms;
    /* This node never votes: once a member, it has the log record it, and
     * every leader's reconciler keeps it a standby (never promoted, not
     * counted towards the voter target). For a backup node, which follows
     * the log to write backups (jaco-backup(8)). */
    bool never_vote;
    /* new fields go here, at the end, only */
};

/* Fill cfg with defaults, size and version. Any thread. */
JR_API void jr_config_init(struct jr_config *cfg);

/* ------------------------------------------------------------------------
 * Node lifecycle
 *
 * A node owns a libuv loop running on its own thread; every function below
 * is thread-safe unless it says otherwise. Callbacks (FSM, requests) run on
 * that loop thread.
 * --------------------------------------------------------------------- */
struct jr_node;

/* Open a node on cfg->data_dir: create the directory if needed, lock it
 * (flock; JR_ELOCKED if another process holds it), and check the identity
 * stored there (JR_EMISMATCH if it belongs to another node id). Strings in
 * cfg are copied. On success *out is set; close it with jr_node_close().
 * Errors: JR_EINVAL (missing or bad config field), JR_ELOCKED, JR_EMISMATCH,
 * JR_EIO, JR_ECORRUPT, JR_ENOMEM. */
JR_API int jr_node_open(const struct jr_config *cfg,
                        struct jr_node **out,
                        struct jr_error *err);

/* One member of an initial cluster. */
struct jr_member {
    uint64_t id;
    const char *address;
};

/* Create a new cluster whose initial voters are members[0..n-1] (which
 * must include this node). With n == 1 the node is a single-voter cluster
 * with a fresh random cluster id; with several members, every member must
 * be bootstrapped with the same list (etcd's --initial-cluster) and the
 * cluster id is derived from it. Call before jr_node_start(). A node that
 * already holds state returns 0 without changing anything if the list
 * matches what it was bootstrapped with, JR_EMISMATCH otherwise.
 * Errors: JR_EINVAL, JR_EMISMATCH, JR_ESTATE (already started), JR_EIO. */
JR_API int jr_node_bootstrap(struct jr_node *node,
                             const struct jr_member *members,
                             unsigned n,
                             struct jr_error *err);

/* The cluster secret: JR_SECRET_SIZE bytes every member holds, kept in
 * data_dir/secret (mode 0600). Every connection between members opens with
 * a mutual challenge-response proving both ends hold it; it is never sent
 * in clear, logged or shown by status. A single-member bootstrap generates
 * one; a join by token receives it over the authenticated join exchange.
 * Call this before bootstrapping a cluster of several members (every
 * member with the same bytes), or before jr_node_join() of a node that
 * does not use a token. Setting the secret the directory already holds
 * is a no-op. Errors: JR_EINVAL (wrong size), JR_ESTATE (started),
 * JR_EMISMATCH (the directory holds another secret), JR_EIO, JR_ENOSPACE. */
#define JR_SECRET_SIZE 32
JR_API int jr_node_set_secret(struct jr_node *node,
                              const unsigned char *secret,
                              size_t len,
                              struct jr_error *err);

/* Read a secret file: 64 hexadecimal digits and an optional newline, as
 * an operator makes one for a multi-member bootstrap ("openssl rand -hex 32
 * > FILE; chmod 600 FILE"), or the 32 raw bytes of a data directory's
 * "secret". Refuses a file group or others may access.
 * Errors: JR_ENOTFOUND, JR_EINVAL (mode, or neither form), JR_EIO. */
JR_API int jr_secret_read_file(const char *path,
                               unsigned char out[JR_SECRET_SIZE],
                               struct jr_error *err);

/* Challenge-response for an embedder's own client API (jacod's TCP API
 * uses it): each side sends a fresh JR_CLIENT_NONCE_SIZE-byte nonce (cn
 * from the client, sn from the server) and proves the secret with the
 * proof of its role over both; check the other side's proof before
 * trusting anything it says. The proofs are distinct from those of the
 * peer handshake, so neither can stand in for the other. */
#define JR_CLIENT_NONCE_SIZE 32
#define JR_CLIENT_PROOF_SIZE 32
#define JR_CLIENT_PROOF_CLIENT 0
#define JR_CLIENT_PROOF_SERVER 1
JR_API void jr_client_proof(const unsigned char secret[JR_SECRET_SIZE],
                            int role,
                            const unsigned char cn[JR_CLIENT_NONCE_SIZE],
                            const unsigned char sn[JR_CLIENT_NONCE_SIZE],
                            unsigned char out[JR_CLIENT_PROOF_SIZE]);
/* The same with the node's secret, which never leaves the library.
 * Errors: JR_ESTATE (the node holds no secret yet). Any thread. */
JR_API int jr_node_client_proof(struct jr_node *node,
                                int role,
                                const unsigned char cn[JR_CLIENT_NONCE_SIZE],
                                const unsigned char sn[JR_CLIENT_NONCE_SIZE],
                                unsigned char out[JR_CLIENT_PROOF_SIZE]);

/* Start the node: load state, start the loop thread, listen on the
 * address. A node with no state and no bootstrap waits to be joined.
 * Errors: JR_ESTATE (already started), JR_EIO, JR_ECORRUPT, JR_EMISMATCH. */
JR_API int jr_node_start(struct jr_node *node, struct jr_error *err);

/* Join an existing cluster with a join token (jr_join_token_issue() on any
 * member; "jaco node issue-join-token"). The node must be started, with no
 * state of another cluster. It contacts the members listed in the token
 * (any one that answers will do: the token outlives the node that issued
 * it), proves it holds the token without sending it, receives the cluster
 * secret sealed under a key derived from the token, and is then added to
 * the cluster over an authenticated connection. It joins as a standby (a
 * non-voting member that replicates the log); the leader's reconciler
 * promotes it when the voter-set policy wants another voter. Blocks until
 * the node is a member, up to timeout_ms (0: 30 s). Errors: JR_EINVAL (not
 * a token, expired, or already used by another node: tokens are single
 * use), JR_EMISMATCH (forged or altered token, a token of another cluster,
 * or this data directory belongs to another cluster; id or address taken),
 * JR_ECONNECT (no listed member answered), JR_ETIMEDOUT, JR_EDEADLK. */
JR_API int jr_node_join_token(struct jr_node *node,
                              const char *token,
                              unsigned timeout_ms,
                              struct jr_error *err);

/* Issue a join token: printable text (under JR_JOIN_TOKEN_SIZE bytes)
 * carrying the cluster id, the current members' addresses, an expiry ttl_s
 * seconds from now, a single-use nonce and a MAC under the cluster secret.
 * Any member can issue one; it does not change the cluster. Treat it like a
 * password until it expires or is used. Errors: JR_EINVAL (ttl_s 0 or out
 * too small), JR_ESTATE (not started, or not a member), JR_EDEADLK. */
#define JR_JOIN_TOKEN_SIZE 4096
JR_API int jr_join_token_issue(struct jr_node *node,
                               unsigned ttl_s,
                               char *out,
                               size_t out_size,
                               struct jr_error *err);

/* Join by contacting the member at address (any member: a follower points
 * to its leader), for a node that already holds the cluster secret
 * (jr_node_set_secret()); a node without it joins with a token. Blocks
 * until this node is a member of that cluster, up to timeout_ms (0: 30 s);
 * joining a cluster this node is already a member of returns 0. While the
 * cluster has no leader or another membership change is running, the call
 * retries until the timeout. Errors: JR_ESTATE (node not started, no
 * secret, or the contacted node is not a member of a cluster), JR_EMISMATCH
 * (this data directory belongs to another cluster, the id or address is
 * taken, or the peer holds another secret), JR_ECONNECT, JR_EQUORUMLOST,
 * JR_ETIMEDOUT, JR_EDEADLK (called on the loop thread). Lifecycle calls
 * (open, bootstrap, start, join, stop, close) must not run concurrently with
 * each other on one node. */
JR_API int jr_node_join(struct jr_node *node,
                        const char *address,
                        unsigned timeout_ms,
                        struct jr_error *err);

/* Stop the node gracefully: a leader first transfers leadership to a
 * caught-up voter (bounded by the election timeout), then raft is closed,
 * pending requests fail with JR_ECANCELED and the loop thread exits.
 * Idempotent. Must not be called from the loop thread (JR_EDEADLK). */
JR_API int jr_node_stop(struct jr_node *node);

/* Stop if needed, unlock the data directory and free the node. */
JR_API void jr_node_close(struct jr_node *node);

/* This node's id, and the cluster id ("" before the node is a member).
 * The string is valid until jr_node_close(). */
JR_API uint64_t jr_node_id(const struct jr_node *node);
JR_API const char *jr_node_cluster_id(struct jr_node *node);

/* ------------------------------------------------------------------------
 * Membership changes an operator asks for
 *
 * Both calls work on any node: a follower forwards the request to the
 * leader, which checks it and carries it out. They block the calling thread
 * until the change is made or timeout_ms (0: 30 s) has passed, retrying
 * meanwhile what may succeed a moment later: no leader yet, another
 * membership change in progress, leadership moving. They must not be called
 * on the loop thread (JR_EDEADLK).
 * --------------------------------------------------------------------- */

/* Remove even a member that cannot be reached (it is gone for good). */
#define JR_REMOVE_FORCE 1u

/* Remove member id from the cluster's configuration. A graceful removal
 * (flags 0) needs the member reachable; JR_REMOVE_FORCE removes one that
 * is not. When id is the leader, it first hands leadership to the most
 * caught-up reachable voter, and the new leader removes it. The call
 * refuses to remove the last voter, or a voter whose removal would leave
 * fewer reachable voters than a majority of those remaining. Nothing in
 * the embedder's state machine changes: forgetting the member there is
 * the embedder's business. Errors: JR_EINVAL (id 0, unknown flags),
 * JR_ENOTFOUND (not a member), JR_ESTATE (the last voter; a graceful
 * removal of an unreachable member; this node not a member or not
 * started), JR_EQUORUMLOST (no quorum now, or none after the removal; see
 * jaco-recovery(7)), JR_ENOLEADER, JR_EBUSY (still no leader, or another
 * membership change, at the timeout), JR_ETIMEDOUT, JR_ELEADERSHIPLOST (an
 * attempt reached a leader that was lost before it answered: the removal
 * may still take effect, whatever later attempts said), JR_ECANCELED,
 * JR_ENOMEM, JR_EDEADLK. */
JR_API int jr_node_remove(struct jr_node *node,
                          uint64_t id,
                          unsigned flags,
                          unsigned timeout_ms,
                          struct jr_error *err);

/* Hand leadership to voter id, or with id 0 to the reachable voter with
 * the most of the log; for planned maintenance of the leader's host.
 * Returns once the new leader is elected and this node knows it; if id
 * leads already, at once. Errors: JR_ENOTFOUND (not a member), JR_EINVAL
 * (not a voter), JR_ESTATE (the target is unreachable or more than a few
 * entries behind the leader; no other voter to take over; this node not a
 * member), JR_ETIMEDOUT (the target did not take over within an election
 * timeout, or not within timeout_ms), JR_ENOLEADER, JR_EQUORUMLOST,
 * JR_EBUSY (another transfer in progress), JR_ECANCELED, JR_EDEADLK. */
JR_API int jr_node_transfer_leadership(struct jr_node *node,
                                       uint64_t id,
                                       unsigned timeout_ms,
                                       struct jr_error *err);

/* ------------------------------------------------------------------------
 * Writes
 * --------------------------------------------------------------------- */
struct jr_apply;

/* Completion of a write. status is 0 when the command was committed and
 * applied (on the leader; a follower that submitted it may apply it a
 * moment later); result (borrowed for the call, may be NULL) is what the
 * FSM's apply returned for it. On failure status is one of: JR_ENOLEADER,
 * JR_EQUORUMLOST, JR_ESTATE (not a member yet): definitely not applied;
 * JR_ELEADERSHIPLOST, JR_ETIMEDOUT, JR_ECANCELED, JR_ENOSPACE, JR_EIO,
 * JR_ENOMEM: outcome unknown; JR_EAPPLY: committed, and the FSM refused it.
 * req->errmsg says more. */
typedef void (*jr_apply_cb)(struct jr_apply *req,
                            int status,
                            const void *result,
                            size_t result_len);

struct jr_apply {
    void *data;                  /* for the caller */
    jr_apply_cb cb;              /* set by jr_apply() */
    uint64_t index;              /* log index of the command, on success */
    char errmsg[JR_ERRMSG_SIZE]; /* detail, on failure */
    void *reserved[4];
};

/* Submit a command from any thread, on any node: a follower forwards it to
 * the leader. buf is copied. Submissions made close together are batched
 * into one log append. If 0 is returned, cb runs exactly once on the loop
 * thread; on error it never runs. Errors: JR_EINVAL, JR_ESTATE (not
 * started), JR_ECANCELED (stopped), JR_ENOMEM, JR_ETOOBIG (over 64 MiB). */
JR_API int jr_apply(struct jr_node *node,
                    struct jr_apply *req,
                    const void *buf,
                    size_t len,
                    jr_apply_cb cb);

/* Blocking form of jr_apply(). On success, if result is not NULL, *result is
 * set to a copy of the FSM result (free with jr_free(); NULL if none) and
 * *result_len to its length. timeout_ms 0 means the node's apply timeout.
 * Returns the status the callback would get, or JR_EDEADLK on the loop
 * thread. */
JR_API int jr_apply_sync(struct jr_node *node,
                         const void *buf,
                         size_t len,
                         unsigned timeout_ms,
                         void **result,
                         size_t *result_len,
                         struct jr_error *err);

/* ------------------------------------------------------------------------
 * Reads
 *
 * A local read needs nothing from the library: read the FSM's own state
 * (with the embedder's own locking, since apply runs on the loop thread).
 * It works with no leader and may be stale.
 *
 * A linearizable read first waits for a read barrier: when it completes,
 * this node's FSM has applied every write acknowledged anywhere before the
 * barrier started, so a local read made now is linearizable.
 * --------------------------------------------------------------------- */
struct jr_barrier;
typedef void (*jr_barrier_cb)(struct jr_barrier *req, int status);

struct jr_barrier {
    void *data;
    jr_barrier_cb cb;
    uint64_t index; /* applied index the read is safe at */
    char errmsg[JR_ERRMSG_SIZE];
    void *reserved[4];
};

/* Start a read barrier (any thread). cb runs once on the loop thread,
 * where reading the FSM state is also race-free. Errors as jr_apply(). */
JR_API int jr_barrier(struct jr_node *node,
                      struct jr_barrier *req,
                      jr_barrier_cb cb);

/* Blocking form of jr_barrier(). */
JR_API int jr_barrier_sync(struct jr_node *node,
                           unsigned timeout_ms,
                           struct jr_error *err);

/* ------------------------------------------------------------------------
 * Status
 * --------------------------------------------------------------------- */
enum jr_role {
    JR_ROLE_STANDBY = 0, /* replicates the log, does not vote */
    JR_ROLE_VOTER = 1,
    JR_ROLE_SPARE = 2, /* member that neither replicates nor votes */
};

enum jr_state {
    JR_STATE_UNAVAILABLE = 0, /* not started, or stopping; a started
                                 node that is not a member yet is a
                                 follower with no peers */
    JR_STATE_FOLLOWER = 1,
    JR_STATE_CANDIDATE = 2,
    JR_STATE_LEADER = 3,
};

/* Names for the two enums ("voter", "leader"); static, never NULL. */
JR_API const char *jr_role_name(int role);
JR_API const char *jr_state_name(int state);

struct jr_peer_status {
    uint64_t id;
    char name[64]; /* known for this node; "" for others yet */
    char address[128];
    int role;                /* enum jr_role */
    bool reachable;          /* heard from within the election timeout */
    int64_t last_contact_ms; /* ms since last message from it; -1 never;
                                0 for this node itself */
    uint64_t match_index;    /* known on the leader only; 0 elsewhere */
};

struct jr_peer_detail {
    char zone[64];         /* "" when the node has none (or is unknown) */
    char role_reason[128]; /* "voter", "standby: waiting for catch-up (312
                              entries behind)", "standby: voter set is
                              full (3 of target 3)", ... */
};

struct jr_status {
    uint64_t id;
    char name[64];
    char address[128];
    char cluster_id[40];
    int state; /* enum jr_state */
    uint64_t term;
    uint64_t leader_id; /* 0: no known leader */
    char leader_address[128];
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t snapshot_index;
    int health; /* 0, JR_ENOLEADER or JR_EQUORUMLOST: what a
                   write submitted now would fail with */
    unsigned n_peers;
    struct jr_peer_status *peers; /* configuration, this node included */
    /* The longest the node's event loop has been busy in one turn since
     * start, and how many turns took over 5 ms: every request and heartbeat
     * on this node waited that long (slow FSM callbacks are the usual
     * cause). */
    uint64_t loop_busy_max_us;
    uint64_t loop_slow_turns;
    /* Connections refused since start: wrong cluster or incarnation, a
     * peer that could not prove the cluster secret, bad join tokens. */
    uint64_t auth_failures;
    /* n_peers entries, in the order of peers: what the voter-set policy
     * says of each member (on the leader; elsewhere just the role). */
    struct jr_peer_detail *details;
    /* The data directory was removed or replaced underneath the running
     * node (checked every 2 s): what it stores now is lost at the next
     * start. */
    bool data_dir_lost;
    /* JR_ENOSPACE ("no_space") or JR_EIO while this node cannot write its
     * log: a follower keeps the leader's entries and retries every second,
     * a leader tries to hand leadership over (jaco-recovery(7));
     * 0 once writes succeed again. */
    int disk_error;
    /* A snapshot install from the leader has not completed (or did not
     * before the last stop): the node stands for no election and re-syncs
     * from the leader. */
    bool partially_synced;
};

/* Take a snapshot of this node's state now and compact its log (keeping
 * snapshot_trailing entries), instead of waiting for snapshot_threshold:
 * to free disk space, or before a backup. It needs a leader (a barrier
 * entry is what crosses the threshold). Blocks until the snapshot is on
 * disk, up to timeout_ms (0: 30 s); *index (may be NULL) gets its index.
 * Errors: JR_ENOLEADER, JR_EQUORUMLOST, JR_ETIMEDOUT, JR_ESTATE,
 * JR_EDEADLK. */
JR_API int jr_node_snapshot(struct jr_node *node,
                            unsigned timeout_ms,
                            uint64_t *index,
                            struct jr_error *err);

/* Snapshot of the node's state; free with jr_status_free(). Errors:
 * JR_ESTATE (not started), JR_ECANCELED (stopped), JR_ENOMEM, JR_EDEADLK.
 * Any thread but the loop thread. */
JR_API int jr_node_status(struct jr_node *node, struct jr_status **out);
JR_API void jr_status_free(struct jr_status *status);

/* ------------------------------------------------------------------------
 * Recovery: on a stopped node's data directory, without starting it
 * (jaco recover ...; jaco-recovery(7)).
 * --------------------------------------------------------------------- */
#define JR_RECOVERY_MAX_SERVERS 64

struct jr_recovery_server {
    uint64_t id;
    char address[128];
    int role; /* enum jr_role */
};

struct jr_recovery_info {
    char data_dir[256];
    uint64_t node_id;
    char cluster_id[40];  /* "" when the node was never a member */
    uint32_t incarnation; /* bumped by every forced recovery */
    bool locked;          /* a running process holds the directory: the
                             log was not read (fields below from files only) */
    bool log_read;        /* first/last index and term are known */
    uint64_t term;        /* current term (raft's persistent state) */
    uint64_t voted_for;   /* 0: none */
    uint64_t snapshot_index, snapshot_term; /* 0: no snapshot */
    uint64_t first_index; /* first entry in the log (after the snapshot) */
    uint64_t last_index, last_term; /* the log's last entry (or snapshot) */
    uint64_t conf_index;            /* index of the configuration below */
    unsigned n_servers;
    struct jr_recovery_server servers[JR_RECOVERY_MAX_SERVERS];
    bool peers_pending;    /* raft/peers.json waits to be applied at start */
    bool partially_synced; /* a snapshot install did not complete: the
                              next start re-syncs from the leader */
    char node_name[64];    /* "" when the directory predates names */
    bool restoring;        /* a restore into it did not complete */
};

/* Read what a stopped node's data directory holds. Read-only, except that
 * a torn tail of the last log segment is cut back as the next start would.
 * A directory locked by a running node is reported (locked), with what its
 * files say but not the log. Errors: JR_ENOTFOUND (no such directory, or no
 * identity file: not a data directory), JR_ECORRUPT (a damaged file, named
 * in err), JR_EIO, JR_ENOMEM. */
JR_API int jr_recover_inspect(const char *data_dir,
                              struct jr_recovery_info *info,
                              struct jr_error *err);

/* Write raft/peers.json into a stopped node's data directory: the
 * configuration the node forces at its next start (every survivor gets an
 * identical file; see jaco-recovery(7)). The servers are validated first
 * (unique ids and addresses, at least one voter, this node among them);
 * nothing is written when they are not, nor with JR_RECOVER_DRY_RUN. A
 * file already there is copied aside first (peers.json.replaced-<time>).
 * The file's text is copied into text (text_size bytes, may be NULL).
 * Ingesting it at start implicitly commits every entry of the node's log
 * and moves the node to the next incarnation of its cluster, so that a
 * node left out of the recovery can never rejoin unnoticed.
 * Errors: JR_EINVAL (with the problem named), JR_ELOCKED (a node runs on
 * the directory), JR_ENOTFOUND (not a data directory), JR_EIO. */
#define JR_RECOVER_DRY_RUN 1u
JR_API int jr_recover_write_peers(const char *data_dir,
                                  const struct jr_recovery_server *servers,
                                  unsigned n,
                                  unsigned flags,
                                  char *text,
                                  size_t text_size,
                                  struct jr_error *err);

/* Make a lone survivor a single-voter cluster that keeps its data: writes
 * a peers.json naming only this node (at the address its last
 * configuration gives it) as voter. Same flags and errors. */
JR_API int jr_recover_force_new_cluster(const char *data_dir,
                                        unsigned flags,
                                        char *text,
                                        size_t text_size,
                                        struct jr_error *err);

/* ------------------------------------------------------------------------
 * Backup and restore (jaco backup, jaco restore; jaco-backup(8))
 *
 * A backup is a gzip-compressed tar file (tar tzf lists it) holding
 * jaco-backup/backup.json (format, cluster id, incarnation, index, term,
 * members, creation time, software version, the state's size and SHA-256),
 * jaco-backup/state (the state machine and the library's own state at one
 * committed index, as its snapshot callback streams it) and
 * jaco-backup/SHA256SUMS (of both, for sha256sum -c after tar xzf).
 * --------------------------------------------------------------------- */
#define JR_BACKUP_FORMAT 1 /* the archive format this version writes */
#define JR_BACKUP_MAX_MEMBERS 64

struct jr_backup_member {
    uint64_t id;
    char name[64]; /* "" when the node that took it did not know it */
    char address[128];
    int role; /* enum jr_role */
};

struct jr_backup_info {
    uint32_t format;   /* JR_BACKUP_FORMAT of the writer */
    char software[32]; /* "jacoraft 0.1.0" */
    char cluster_id[40];
    uint32_t incarnation;
    uint64_t index;      /* the committed index the state is at */
    uint64_t term;       /* the cluster's term when it was taken */
    int64_t created;     /* Unix time, seconds */
    uint64_t state_size; /* bytes of state, uncompressed */
    char state_sha256[65];
    uint64_t source_id; /* the node that took it */
    char source_name[64];
    unsigned n_members;
    struct jr_backup_member members[JR_BACKUP_MAX_MEMBERS];
};

/* Progress of a long operation: done of total bytes (total 0: unknown).
 * Called from the calling thread. */
typedef void (*jr_progress_cb)(void *data, uint64_t done, uint64_t total);

/* Take an online, consistent backup into path: the state is captured on
 * the loop thread at the applied index after a read barrier (so it holds
 * every write acknowledged before the call), then written to
 * "<path>.tmp", fsync'd and renamed, with the directory fsync'd: a crash
 * never leaves a partial file under path. With JR_BACKUP_LOCAL no barrier
 * is taken: the node's own applied state, which needs no quorum (a
 * lagging standby's backup). info (may be NULL) gets what was written.
 * Errors: those of jr_barrier_sync(), JR_ESTATE (not a member yet),
 * JR_ESNAPSHOT, JR_ENOSPACE, JR_EIO, JR_ENOMEM, JR_EDEADLK. */
#define JR_BACKUP_LOCAL 1u
JR_API int jr_node_backup(struct jr_node *node,
                          const char *path,
                          unsigned flags,
                          jr_progress_cb progress,
                          void *progress_data,
                          struct jr_backup_info *info,
                          struct jr_error *err);

/* Check a backup without restoring it: the archive's structure, its format
 * version, and every checksum. info (may be NULL) gets its metadata.
 * Errors: JR_ENOTFOUND (no such file), JR_ECORRUPT (not a backup, truncated
 * or damaged: err names what and where), JR_EVERSION (another format
 * version), JR_EIO, JR_ENOMEM. */
JR_API int jr_backup_verify(const char *path,
                            struct jr_backup_info *info,
                            struct jr_error *err);

struct jr_restore_opts {
    const char *data_dir; /* the new node's directory */
    uint64_t node_id;     /* the new node's id, > 0 */
    const char *name;     /* its name (kept in its identity file) */
    const char *address;  /* host:port it will listen on */
    /* JR_SECRET_SIZE bytes of cluster secret to install, or NULL for a new
     * random one (the backup holds no secret). */
    const unsigned char *secret;
    unsigned flags; /* JR_RESTORE_* */
    jr_progress_cb progress;
    void *progress_data;
};
/* Replace a non-empty data directory: its contents are moved aside into
 * <data_dir>/before-restore-<time>/ first. */
#define JR_RESTORE_FORCE 1u
/* Verify and check the target, change nothing. */
#define JR_RESTORE_DRY_RUN 2u

/* Restore a backup offline into a data directory (no node running on it):
 * verify the whole archive first, then write a directory that holds the
 * backup's cluster id at the next incarnation (jaco-recovery(7): nodes of
 * the old incarnation are refused), this node as the only voter, and the
 * state as a snapshot at the backup's index. A RESTORING sentinel is
 * present while writing: a node refuses to start on a directory that
 * still has it. Starting the node then gives a single-voter cluster;
 * others join it with tokens. Errors: those of jr_backup_verify() (the
 * directory is not touched), JR_ENOTEMPTY (the directory holds files:
 * JR_RESTORE_FORCE), JR_ELOCKED (a node runs on it), JR_EINVAL,
 * JR_ENOSPACE, JR_EIO, JR_ENOMEM. */
JR_API int jr_backup_restore(const char *path,
                             const struct jr_restore_opts *opts,
                             struct jr_backup_info *info,
                             struct jr_error *err);

#ifdef __cplusplus
}
#endif

#endif /* JACORAFT_H */
