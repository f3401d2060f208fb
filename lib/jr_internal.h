/* jr_internal.h: the node structure and the helpers shared by lib/ files. */
#ifndef JR_INTERNAL_H
#define JR_INTERNAL_H

#include <raft.h>
#include <stdarg.h>
#include <uv.h>

#include "../include/jacoraft.h"
#include "queue.h"

#define JR__CLUSTER_ID_LEN 32       /* hex characters of a 128-bit id */
#define JR__MAX_COMMAND (64u << 20) /* largest command accepted */
/* Largest frame: raft 0.15 sends a follower that fell behind the whole
 * state in one InstallSnapshot message, so the bound is the 4 GiB a length
 * prefix can say (t_crash caught a 69 MB state refused at 64 MiB). */
#define JR__MAX_FRAME 0xffffffffu
#define JR__MAX_BATCH 4096 /* commands in one raft_apply */

/* Formatting of error details into a buffer of JR_ERRMSG_SIZE. */
void jr__errf(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Set err (if not NULL) and return code. */
int jr__error_set(struct jr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int jr__err_from_raft(int raft_rv);
int jr__err_from_uv(int uv_rv);
int jr__err_from_errno(int e);

/* Logging: honours the node's level and callback. */
struct jr_node;
void jr__log(struct jr_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define jr__debugf(n, ...) jr__log(n, JR_LOG_DEBUG, __VA_ARGS__)
#define jr__infof(n, ...) jr__log(n, JR_LOG_INFO, __VA_ARGS__)
#define jr__warnf(n, ...) jr__log(n, JR_LOG_WARN, __VA_ARGS__)
#define jr__errorf(n, ...) jr__log(n, JR_LOG_ERROR, __VA_ARGS__)

char *jr__strdup(const char *s);

/* ---- data directory (datadir.c) ---- */
struct jr__meta {
    uint64_t node_id;
    char cluster_id[JR__CLUSTER_ID_LEN + 1];       /* "" until a member */
    char bootstrap_digest[JR__CLUSTER_ID_LEN + 1]; /* "" unless bootstrapped */
    /* Bumped by every forced recovery of the cluster (the recovery issue):
     * nodes of one cluster id but different incarnations never talk. */
    uint32_t incarnation;
    char name[64]; /* the node's name when it is a single word; else "" */
};
/* Present in a data directory while jr_backup_restore writes it. */
#define JR__RESTORE_SENTINEL "RESTORING"
/* A name the identity file can hold (one word of printable characters). */
bool jr__meta_name_ok(const char *name);
int jr__datadir_lock(const char *dir, int *fd, struct jr_error *err);
void jr__datadir_unlock(int fd);
/* JR_ELOCKED if a process holds dir's lock now; 0 otherwise (nothing is
 * created, and the lock is not kept). */
int jr__datadir_probe_lock(const char *dir, struct jr_error *err);
/* fsync a directory (after a create, rename or unlink in it): 0 or the
 * errno of the failing step. */
int jr__fsync_dir(const char *dir);
/* The directory holding path: its text before the last '/', "/" or ".". */
void jr__parent_dir(const char *path, char *dir, size_t size);
/* Replace path with len bytes of buf, mode 0600: a fresh temporary file
 * (O_EXCL), fsync, rename, fsync of the directory; a crash leaves the old
 * content or the new one. 0, JR_ENOTFOUND (no such directory),
 * JR_ENOSPACE or JR_EIO (JR_EINVAL: path too long), with errmsg naming the
 * step and the file. */
int jr__write_file_atomic(const char *path,
                          const void *buf,
                          size_t len,
                          char *errmsg);
/* write(2) all of buf, retrying short writes and EINTR: 0 or an errno. */
int jr__write_all(int fd, const void *buf, size_t len);
/* Returns JR_ENOTFOUND when no identity file exists yet. */
int jr__meta_load(const char *dir, struct jr__meta *m, struct jr_error *err);
int jr__meta_store(const char *dir,
                   const struct jr__meta *m,
                   struct jr_error *err);
/* Parse/format, exposed for unit tests. */
int jr__meta_parse(const char *text,
                   size_t len,
                   struct jr__meta *m,
                   char *errmsg);
int jr__meta_format(const struct jr__meta *m, char *buf, size_t size);
void jr__cluster_id_random(char out[JR__CLUSTER_ID_LEN + 1]);
void jr__members_digest(const struct jr_member *members,
                        unsigned n,
                        char out[JR__CLUSTER_ID_LEN + 1]);

/* ---- address parsing and connection preamble (transport.c) ---- */
/* cluster_id "" asks without claiming a cluster (a joiner's INFO); member:
 * the dialer holds the secret and will answer the challenge (auth.h). */
size_t jr__preamble_encode(struct jr_node *n,
                           int kind,
                           const char *cluster_id,
                           const unsigned char nonce[32],
                           bool member,
                           char *out);
/* Store and adopt the secret (node.c): 0, or JR_EMISMATCH if the node
 * holds another one. Any thread. */
int jr__secret_install(struct jr_node *n,
                       const unsigned char *secret,
                       struct jr_error *err);
/* Copy the cluster secret (any thread); false when the node has none. */
bool jr__secret_copy(struct jr_node *n, unsigned char out[32]);
/* Count a refused connection and log it, at most once per 10 s (loop
 * thread). */
void jr__auth_failed(struct jr_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int jr__parse_address(const char *address,
                      struct sockaddr_in *sa,
                      char *errmsg);

/* ---- commands and requests in flight (apply.c) ---- */
enum jr__cmd_kind {
    JR__CMD_APPLY = 1,      /* a write submitted on this node */
    JR__CMD_BARRIER,        /* a read barrier submitted on this node */
    JR__CMD_REMOTE_APPLY,   /* a write forwarded to us by a follower */
    JR__CMD_REMOTE_BARRIER, /* a read-index request from a follower */
    JR__CMD_ADMIN,          /* admin.c: a removal or leadership transfer
                               asked for on this node */
    JR__CMD_REMOTE_ADMIN,   /* admin.c: one forwarded to us by a follower */
};

struct jr__conn;

struct jr__op {
    struct jr__op *next;
    void (*run)(struct jr_node *n, struct jr__op *op);
};

struct jr__cmd {
    struct jr__op op; /* posts the submission to the loop thread */
    queue link;       /* in exactly one of the node's lists */
    unsigned timeout_ms;
    uint64_t batch_id; /* raft_apply it was appended with */
    enum jr__cmd_kind kind;
    void *buf; /* raft_malloc'd copy of the command */
    size_t len;
    struct jr_apply *req;      /* JR__CMD_APPLY */
    struct jr_barrier *breq;   /* JR__CMD_BARRIER */
    struct jr__waiter *waiter; /* blocking forms */
    struct jr__conn *conn;     /* remote kinds; NULL once the conn closed */
    uint64_t remote_id;        /* request id chosen by the remote */
    uint64_t req_id;           /* our id when forwarded */
    uint64_t deadline;         /* loop time (ms) */
    uint64_t term;             /* term it was appended in (leader) */
    uint64_t index;            /* log index once appended / read index */
    int status;
    char errmsg[JR_ERRMSG_SIZE];
    void *result; /* jr_malloc'd FSM result */
    size_t result_len;
    unsigned admin_op; /* admin kinds: enum jr__admin_op (admin.c) */
    uint64_t admin_target;
    unsigned admin_flags;
};

/* A thread blocked in a *_sync call. */
struct jr__waiter {
    uv_mutex_t mutex;
    uv_cond_t cond;
    bool done;
    int status;
    char errmsg[JR_ERRMSG_SIZE];
    void *result;
    size_t result_len;
    uint64_t index;
};

void jr__waiter_init(struct jr__waiter *w);
void jr__waiter_close(struct jr__waiter *w);
/* Wait up to timeout_ms (0: forever); JR_ETIMEDOUT if it did not finish. */
int jr__waiter_wait(struct jr__waiter *w, unsigned timeout_ms);
void jr__waiter_finish(struct jr__waiter *w, int status, const char *errmsg);

/* Posted work: run on the loop thread. */
int jr__post(struct jr_node *n, struct jr__op *op);

/* Per-server bookkeeping of when we last heard from it. */
struct jr__contact {
    uint64_t id;
    uint64_t last_recv;         /* loop time; 0 never */
    char name[64];              /* as the peer announced itself */
    char zone[64];              /* "" when it has none */
    bool rc_seen, rc_reachable; /* reconcile.c: reachability and since when */
    uint64_t rc_since;
};

struct jr__rpc; /* rpc.c */

/* staletail.c: see jr__staletail_recv. */
struct jr__staletail {
    bool open;
    raft_index upto; /* prevLogIndex + len(entries) of the request */
};

struct jr_node {
    /* Configuration (strings owned). */
    struct jr_config cfg;
    char *name;
    char *zone; /* "" for none */
    char *address;
    char *data_dir;
    char *raft_dir;
    struct jr_fsm fsm;
    int lock_fd;
    struct jr__meta meta;
    char cluster_id[JR__CLUSTER_ID_LEN + 1]; /* copy readable any thread */
    char start_errmsg[JR_ERRMSG_SIZE]; /* why raft_start failed, if known */

    /* Thread and loop. */
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wakeup;
    uv_check_t check;
    uv_timer_t tick;
    uv_prepare_t watch; /* loopwatch.c */
    uint64_t watch_last_ns, watch_last_idle, watch_warned_ns;
    uint64_t loop_busy_max_ns; /* longest turn; loop thread only */
    uint64_t loop_slow_turns;  /* turns busy over 5 ms */
    uv_mutex_t mutex;          /* ops list and the lifecycle flags */
    struct jr__op *ops_head, *ops_tail;
    bool started;
    bool stopping; /* stop requested */
    bool closed;   /* loop thread has exited */
    bool loop_running;
    uv_thread_t loop_tid;

    /* canonical/raft and its I/O. */
    struct raft raft;
    struct raft_io io; /* io.c: libjacoraft's own raft_io */
    struct io_state *io_state;
    struct jr__transport *transport;
    struct raft_fsm raft_fsm;
    raft_io_tick_cb io_tick_cb; /* io.c: raft's callbacks, wrapped */
    raft_io_recv_cb io_recv_cb;
    struct jr__staletail staletail; /* staletail.c, around io_recv_cb */
    raft_io_close_cb io_close_cb;
    bool raft_initialised;
    bool raft_closed;

    /* Requests. */
    queue batch;        /* local + remote commands waiting to be appended */
    queue barriers;     /* barriers waiting to be started */
    queue inflight;     /* appended on this leader, by increasing index */
    queue forwarded;    /* sent to the leader, awaiting its reply */
    queue wait_applied; /* follower reads waiting for applied >= index */
    queue barrier_wait; /* reads waiting for a raft_barrier (leader) */
    queue done;         /* finished, waiting for delivery */
    queue admin;        /* admin requests being carried out (leader) */
    uint64_t next_req_id;
    uint64_t next_batch_id;
    unsigned n_raft_reqs;     /* raft_apply/raft_barrier requests outstanding */
    uint64_t leader_seen;     /* leader id last logged */
    struct raft_barrier noop; /* commits earlier terms' entries */
    bool noop_pending;

    /* Peers heard from. */
    struct jr__contact *contacts;
    unsigned n_contacts;

    struct jr__rpc *rpc;

    /* The cluster secret (auth.h), under mutex: a joining thread sets it
     * while the loop runs. Never logged, never in a status. */
    unsigned char secret[32];
    bool has_secret;
    uint64_t auth_failures; /* refused connections; loop thread */
    uint64_t auth_logged_at;
    unsigned auth_suppressed;
    uint64_t stray_logged_at;      /* a removed node's votes, last logged */
    struct jr__libstate *libstate; /* libstate.c; loop thread */

    /* The voter-set reconciler (reconcile.c); loop thread. */
    struct jr__rc_req *rc_reqp;
    bool rc_inflight;
    uint64_t rc_next_ms;
    uint64_t datadir_checked_at, datadir_ino; /* node.c: removed dir? */
    bool datadir_lost;
    bool partially_synced;        /* recover.c: the SYNCING sentinel is there */
    bool snapshot_after_recovery; /* recover.c asks node.c for a snapshot */
    bool recovery_snapshot_armed;
    uint64_t recovery_snapshot_from; /* snapshot index when armed */
    int disk_failed;  /* io.c: a leader's append failed (JR_ENOSPACE...) */
    int append_error; /* io.c: the last append's outcome, if a disk error */
    struct raft_transfer disk_transfer;
    bool never_vote_inflight; /* reconcile.c: recording cfg.never_vote */
    uint64_t leaving_id;      /* admin.c: a graceful removal wants it out */
    uint64_t leaving_until;   /* loop time the mark lapses */

    /* Stop sequence. */
    struct raft_transfer transfer;
    bool transferring;
    struct jr__waiter *stop_waiter;
    unsigned leader_appends; /* io.c: appends made as leader, not done */
    bool close_deferred;     /* raft_close waits for leader_appends == 0 */
};

/* Loop time in ms. */
static inline uint64_t jr__now(struct jr_node *n)
{
    return uv_now(&n->loop);
}

bool jr__on_loop_thread(struct jr_node *n);

/* apply.c */
void *jr__entry_wrap(const void *buf, size_t len, size_t *out_len);
void *jr__entry_wrap_internal(const void *buf, size_t len, size_t *out_len);
/* internal: set to whether it is a library command; NULL refuses those
 * (JR_ECORRUPT) like any malformed envelope. */
int jr__entry_unwrap(const void *buf,
                     size_t len,
                     size_t *data_len,
                     bool *internal);
/* Submit a library command (libstate.c) like jr_apply; loop thread too. */
int jr__apply_internal(struct jr_node *n,
                       struct jr_apply *req,
                       const void *buf,
                       size_t len,
                       jr_apply_cb cb);
void jr__apply_init(struct jr_node *n);
void jr__cmd_finish(struct jr_node *n,
                    struct jr__cmd *c,
                    int status,
                    const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
void jr__cmd_free(struct jr__cmd *c);
void jr__submit_remote(struct jr_node *n, struct jr__cmd *c);
void jr__flush(struct jr_node *n);
void jr__deliver(struct jr_node *n);
void jr__sweep(struct jr_node *n);
void jr__fail_all(struct jr_node *n, int status, const char *why);
void jr__forward_reply(struct jr_node *n,
                       uint64_t req_id,
                       int status,
                       const char *errmsg,
                       uint64_t index,
                       const void *result,
                       size_t result_len);
void jr__conn_lost(struct jr_node *n, struct jr__conn *conn);
/* fsm.c: called by the FSM glue for every applied command. */
void jr__applied(struct jr_node *n,
                 uint64_t index,
                 int rv,
                 void *result,
                 size_t result_len);
int jr__fsm_init(struct jr_node *n);
/* The state as a snapshot holds it (library section, then the embedder's
 * FSM), captured on the loop thread into *w (always set; free it with
 * jr__snapshot_writer_free). 0, JR_ENOMEM, or the FSM's failure. */
int jr__snapshot_capture(struct jr_node *n, struct jr_snapshot_writer **w);
unsigned jr__snapshot_buffers(const struct jr_snapshot_writer *w,
                              const struct raft_buffer **bufs);
void jr__snapshot_writer_free(struct jr_snapshot_writer *w);

/* libstate.c: the library's own replicated state (used join tokens). */
struct jr__libstate;
int jr__libstate_apply(struct jr_node *n,
                       const void *buf,
                       size_t len,
                       void **result,
                       size_t *result_len);
/* Append the state to a snapshot being taken / read it back from the
 * front of a restored one; *skip: bytes that were the library's. */
int jr__libstate_snapshot(struct jr_node *n, struct jr_snapshot_writer *w);
int jr__libstate_restore(struct jr_node *n,
                         const void *buf,
                         size_t len,
                         size_t *skip);
void jr__libstate_free(struct jr_node *n);
/* The command recording a used join token, stamped with the leader's wall
 * clock now_ms (so every node forgets expired tokens at the same entry);
 * malloc'd, the caller frees it. */
/* The command recording that member id never votes (jr_config.never_vote),
 * malloc'd; and whether the applied log says so. */
void *jr__libstate_never_vote_cmd(uint64_t id, size_t *len);
bool jr__libstate_never_votes(struct jr_node *n, uint64_t id);
/* Whether buf (a library command, unwrapped) is the never-vote record of
 * member id: the only library command a follower may forward. */
bool jr__libstate_is_never_vote_of(const void *buf, size_t len, uint64_t id);
void *jr__libstate_token_cmd(const unsigned char nonce[16],
                             uint64_t expires_ms,
                             uint64_t joiner_id,
                             uint64_t now_ms,
                             size_t *len);

/* recover.c: apply raft/peers.json, if any, before raft starts. */
int jr__recover_ingest(struct jr_node *n, struct jr_error *err);
/* The partially-synced sentinel (raft/SYNCING): set before a snapshot
 * install, cleared once the state machine restored it; found at start, the
 * raft log and snapshots are moved aside and the node re-syncs from the
 * leader (jr__sync_resume). */
void jr__sync_sentinel_set(struct jr_node *n);
void jr__sync_sentinel_clear(struct jr_node *n);
int jr__sync_resume(struct jr_node *n, struct jr_error *err);

/* reconcile.c: the leader keeps the voter set at its target. */
void jr__reconciler_tick(struct jr_node *n);
struct jr_peer_detail;
void jr__reconciler_why(struct jr_node *n,
                        struct jr_status *st,
                        struct jr_peer_detail *details);

/* loopwatch.c */
int jr__loopwatch_init(struct jr_node *n);
void jr__loopwatch_start(struct jr_node *n);

/* health.c: what a write would fail with now (0 when a leader is known). */
int jr__health(struct jr_node *n, char *errmsg);
void jr__contact_seen(struct jr_node *n, uint64_t id);
struct jr__contact *jr__contact_get(struct jr_node *n, uint64_t id);
int64_t jr__contact_age(struct jr_node *n, uint64_t id);
void jr__contact_name(struct jr_node *n,
                      uint64_t id,
                      const char *name,
                      const char *zone);
const char *jr__contact_zone_of(struct jr_node *n, uint64_t id);
const char *jr__contact_name_of(struct jr_node *n, uint64_t id);

/* leaderwatch.c: a follower forgets a leader it has not heard from for an
 * election timeout (silence), or whose host refused our connection
 * (refused: its election timer then runs out delay_ms later). Each returns
 * whether the leader was forgotten. */
bool jr__leaderwatch_silence(struct raft *r, raft_time now);
bool jr__leaderwatch_refused(struct raft *r,
                             raft_id id,
                             raft_time now,
                             unsigned delay_ms);

/* staletail.c: the answer raft sends while it handles an AppendEntries
 * reports no more than that request's entries (raft 0.15 reports its whole
 * log, unchecked tail included). jr__staletail_recv hands m to raft's recv
 * callback with t open; jr__staletail_cap, on each message sent meanwhile,
 * caps an AppendEntries success and returns whether it did. */
void jr__staletail_recv(struct jr__staletail *t,
                        struct raft_io *io,
                        raft_io_recv_cb recv,
                        struct raft_message *m);
bool jr__staletail_cap(const struct jr__staletail *t, struct raft_message *m);

/* io.c: set up the raft_io backend and its wrapper. */
int jr__io_init(struct jr_node *n, struct jr_error *err);
void jr__io_close(struct jr_node *n);
/* JR_ENOSPACE or JR_EIO while the log cannot be written (a follower
 * holding its entries, or the last append failed); 0 otherwise. */
int jr__io_disk_error(struct jr_node *n);
/* Hold back (true) or release (false) the wake-up of the log's writer
 * thread for the appends raft submits meanwhile (jr__logstore_cork). */
void jr__io_cork(struct jr_node *n, bool cork);
/* Whether a received raft message is an AppendEntries rejection that raft
 * 0.15 would take for a refused snapshot while one is being sent (io.c):
 * the caller drops it. */
bool jr__io_stale_rejection(struct jr_node *n, const struct raft_message *m);
/* node.c: close raft now, or once the leader's appends are done; io.c
 * reports when the last one has completed. */
void jr__close_raft(struct jr_node *n);
void jr__appends_drained(struct jr_node *n);

/* transport.c */
enum { JR__CONN_RPC = 2 }; /* 1 was raft_uv's own stream, retired */
int jr__transport_init(struct jr_node *n);
int jr__transport_listen(struct jr_node *n, char *errmsg);
/* Stop listening, cancel dials; cb once nothing is left open. */
void jr__transport_close(struct jr_node *n, void (*cb)(struct jr_node *n));
bool jr__transport_is_open(struct jr_node *n);
void jr__transport_free(struct jr_node *n);
/* Connect to address, send the preamble of kind and do the member
 * handshake (auth.h); cb gets the stream once the peer proved the secret.
 * expect_id: the node id the configuration gives that address (0: any). */
struct jr__dial;
typedef void (*jr__dial_cb)(struct jr__dial *d,
                            uv_stream_t *stream,
                            int status);
struct jr__dial {
    void *data;
    jr__dial_cb cb;
    struct jr_node *node;
    uv_tcp_t *tcp;
    uv_connect_t connect;
    uv_write_t write;
    char preamble[512];
    size_t preamble_len;
    bool canceled;
    bool reading;          /* waiting for the acceptor's reply */
    bool nobody_listening; /* the connect itself was refused */
    queue link;
    uint64_t expect_id;
    char address[256];
    unsigned char nc[32];          /* our challenge */
    unsigned char reply[80 + 255]; /* the acceptor's reply */
    size_t reply_got, reply_need;
    unsigned char pd[32]; /* our proof, being written */
    uv_write_t pd_write;
};
int jr__dial(struct jr_node *n,
             struct jr__dial *d,
             const char *address,
             uint64_t expect_id,
             int kind,
             jr__dial_cb cb);

/* rpc.c */
int jr__rpc_init(struct jr_node *n);
void jr__rpc_close(struct jr_node *n);
/* An inbound RPC connection (after the handshake). member: the peer proved
 * the secret; otherwise it is a joiner, allowed INFO and JOIN_TOKEN only. */
void jr__rpc_accept(struct jr_node *n,
                    uv_stream_t *stream,
                    uint64_t id,
                    const char *address,
                    bool member,
                    const unsigned char nc[32],
                    const unsigned char ns[32]);
/* The handshake's nonces of an inbound connection (the join exchange
 * binds its proofs to them). */
const unsigned char *jr__conn_nonce(const struct jr__conn *c, bool dialer);
/* Send forwarded commands/barriers to the current leader. */
int jr__rpc_forward(struct jr_node *n, queue *cmds);
/* Replies from leader to a remote conn. */
void jr__rpc_reply(struct jr_node *n, struct jr__cmd *c);
void jr__rpc_tick(struct jr_node *n);
/* Send a raft message over the library's connection to its destination
 * (raft_io's send). */
int jr__rpc_send_raft(struct jr_node *n,
                      struct raft_io_send *req,
                      const struct raft_message *m,
                      raft_io_send_cb cb);
/* Complete a send with RAFT_NOCONNECTION on the next loop turn: raft 0.15
 * frees an AppendEntries' entries before sending its result and again if
 * that send fails at once, so a send never fails synchronously. */
int jr__rpc_send_failed(struct jr_node *n,
                        struct raft_io_send *req,
                        raft_io_send_cb cb);
/* Run the callbacks of sends that failed; once per loop turn. */
void jr__rpc_flush(struct jr_node *n);
/* True while a connection is open or closing, or a send callback is due:
 * raft may not be closed before (io.c). */
bool jr__rpc_busy(struct jr_node *n);
/* rpc.c tells io.c when its last stream has closed. */
void jr__io_rpc_drained(struct jr_node *n);
/* False if nothing sent on it can have reached the peer. */
bool jr__conn_was_connected(const struct jr__conn *c);

/* admin.c: removals and leadership transfers asked for by an operator. */
enum jr__admin_op {
    JR__ADMIN_REMOVE = 1,
    JR__ADMIN_TRANSFER = 2,
};
struct jr__frame;
struct jr__msg;
/* Append the ADMIN frame of a request being forwarded (rpc.c). */
void jr__admin_encode(struct jr__frame *f, const struct jr__cmd *c);
/* An ADMIN frame from a follower (rpc.c). */
void jr__handle_admin(struct jr_node *n,
                      struct jr__conn *c,
                      const struct jr__msg *m);

/* membership.c */
int jr__join(struct jr_node *n,
             const char *address,
             unsigned timeout_ms,
             struct jr_error *err);
struct jr__msg;
void jr__handle_info(struct jr_node *n,
                     struct jr__conn *c,
                     const struct jr__msg *m);
void jr__handle_join(struct jr_node *n,
                     struct jr__conn *c,
                     const struct jr__msg *m);
void jr__handle_join_token(struct jr_node *n,
                           struct jr__conn *c,
                           const struct jr__msg *m);

#endif /* JR_INTERNAL_H */
