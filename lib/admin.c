/* admin.c: removing a member and handing leadership over, on an operator's
 * request (jr_node_remove, jr_node_transfer_leadership). The caller's
 * thread posts the request to the loop; a follower forwards it to the
 * leader in an ADMIN frame, answered like a forwarded write. The leader
 * checks it against its configuration and against which voters it hears
 * from, then carries it out with raft_remove or raft_transfer. The blocking
 * call retries what may succeed a moment later (no leader yet, another
 * membership change running, the leader handing over before its own
 * removal) until its timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jr_internal.h"

void jr__conn_ref(struct jr__conn *c);

#define DEFAULT_TIMEOUT_MS 30000
#define RETRY_MS 100
/* A voter whose log is at most this many entries behind the leader's is
 * caught up enough to take over: it gets the rest within a heartbeat, and
 * raft_transfer waits for that before it asks it to campaign. */
#define CAUGHT_UP_ENTRIES 64

/* A raft request of the leader's. raft owns it until its callback, which
 * may come after the request it serves has timed out: it finds that
 * request again by id, if it is still there. */
struct admin_raft {
    union {
        struct raft_change change;
        struct raft_transfer transfer;
    } req;
    struct jr_node *node;
    uint64_t op_id;
    uint64_t target;
};

/* "node NAME (ID)", or "node ID" while the name is not known. */
static void describe(struct jr_node *n, uint64_t id, char out[96])
{
    const char *name = jr__contact_name_of(n, id);
    if (name[0] != '\0') {
        (void)snprintf(out, 96, "node %s (%llu)", name, (unsigned long long)id);
    } else {
        (void)snprintf(out, 96, "node %llu", (unsigned long long)id);
    }
}

static bool heard_from(struct jr_node *n, uint64_t id)
{
    int64_t age = jr__contact_age(n, id);
    return age >= 0 && age <= (int64_t)n->cfg.election_timeout_ms;
}

static const struct raft_server *member(struct jr_node *n,
                                        uint64_t id,
                                        unsigned *index)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            *index = i;
            return &conf->servers[i];
        }
    }
    return NULL;
}

/* How far behind the leader's last entry the member at index i is. */
static uint64_t lag_of(struct jr_node *n, unsigned i)
{
    uint64_t last = raft_last_index(&n->raft);
    uint64_t match;
    if (n->raft.configuration.servers[i].id == n->raft.id) {
        return 0;
    }
    match = n->raft.leader_state.progress[i].match_index;
    return match >= last ? 0 : last - match;
}

/* The reachable voter other than this leader with the most of the log, or
 * 0 if there is none. */
/* How long a graceful removal's "leaving" mark lasts without a retry. */
#define LEAVING_MS 5000

static bool has_reachable_standby(struct jr_node *n)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].role == RAFT_STANDBY &&
            heard_from(n, conf->servers[i].id)) {
            return true;
        }
    }
    return false;
}

static uint64_t best_voter(struct jr_node *n)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    uint64_t best = 0, best_lag = UINT64_MAX;
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        uint64_t lag;
        if (s->id == n->raft.id || s->role != RAFT_VOTER ||
            !heard_from(n, s->id)) {
            continue;
        }
        lag = lag_of(n, i);
        if (lag < best_lag) {
            best = s->id;
            best_lag = lag;
        }
    }
    return best;
}

static struct jr__cmd *find_op(struct jr_node *n, uint64_t op_id)
{
    queue *q;
    QUEUE_FOREACH (q, &n->admin) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        if (c->batch_id == op_id) {
            return c;
        }
    }
    return NULL;
}

/* ---- on the leader ---- */

static void transfer_cb(struct raft_transfer *req)
{
    struct admin_raft *a = req->data;
    struct jr_node *n = a->node;
    struct jr__cmd *c = find_op(n, a->op_id);
    raft_id leader;
    const char *address;
    char who[96];
    raft_leader(&n->raft, &leader, &address);
    describe(n, a->target, who);
    if (c == NULL) {
        /* Timed out or canceled already. */
    } else if (leader != a->target) {
        jr__cmd_finish(n, c, JR_ETIMEDOUT,
                       "leadership transfer to %s did not complete within "
                       "the election timeout (%u ms)",
                       who, n->cfg.election_timeout_ms);
    } else if (c->admin_op == JR__ADMIN_REMOVE) {
        /* The new leader does the removal: the caller asks again. */
        c->index = leader;
        jr__cmd_finish(n, c, JR_ENOLEADER,
                       "leadership handed over to %s before removing this "
                       "node; retry there",
                       who);
    } else {
        c->index = leader;
        jr__cmd_finish(n, c, 0, NULL);
    }
    if (leader == a->target) {
        jr__infof(n, "leadership transferred to %s", who);
    }
    free(a);
}

/* Start handing leadership to target. Finishes c on failure. */
static void start_transfer(struct jr_node *n,
                           struct jr__cmd *c,
                           uint64_t target)
{
    struct admin_raft *a;
    char who[96];
    int rv;
    describe(n, target, who);
    if (n->raft.transfer != NULL) {
        jr__cmd_finish(n, c, JR_EBUSY,
                       "a leadership transfer is already in progress");
        return;
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        jr__cmd_finish(n, c, JR_ENOMEM, "transfer: out of memory");
        return;
    }
    a->node = n;
    a->op_id = c->batch_id;
    a->target = target;
    a->req.transfer.data = a;
    rv = raft_transfer(&n->raft, &a->req.transfer, target, transfer_cb);
    if (rv != 0) {
        int code = rv == RAFT_NOTLEADER ? JR_ENOLEADER
                   : rv == RAFT_BADID   ? JR_EINVAL
                                        : jr__err_from_raft(rv);
        jr__cmd_finish(n, c, code, "transfer leadership to %s: %s", who,
                       raft_errmsg(&n->raft));
        free(a);
        return;
    }
    jr__infof(n, "transferring leadership to %s", who);
}

/* Whether target may lead: a reachable, caught-up voter. */
static int check_successor(struct jr_node *n, uint64_t target, char *errmsg)
{
    const struct raft_server *s;
    unsigned i;
    uint64_t lag;
    char who[96];
    describe(n, target, who);
    s = member(n, target, &i);
    if (s == NULL) {
        jr__errf(errmsg,
                 "transfer leadership: %s is not a member of the "
                 "cluster",
                 who);
        return JR_ENOTFOUND;
    }
    if (s->role != RAFT_VOTER) {
        jr__errf(errmsg,
                 "transfer leadership: %s is a %s, not a voter; only a voter "
                 "can lead",
                 who, jr_role_name(s->role));
        return JR_EINVAL;
    }
    if (!heard_from(n, target)) {
        jr__errf(errmsg,
                 "transfer leadership: %s is not reachable (not heard from "
                 "within the election timeout)",
                 who);
        return JR_ESTATE;
    }
    lag = lag_of(n, i);
    if (lag > CAUGHT_UP_ENTRIES) {
        jr__errf(errmsg,
                 "transfer leadership: %s is not caught up: %llu entries "
                 "behind the leader; retry once it has caught up",
                 who, (unsigned long long)lag);
        return JR_ESTATE;
    }
    return 0;
}

static void do_transfer(struct jr_node *n, struct jr__cmd *c)
{
    char why[JR_ERRMSG_SIZE];
    uint64_t target = c->admin_target;
    int rv;
    if (target == n->raft.id) {
        c->index = target; /* leads already */
        jr__cmd_finish(n, c, 0, NULL);
        return;
    }
    if (target == 0) {
        target = best_voter(n);
        if (target == 0) {
            jr__cmd_finish(n, c, JR_ESTATE,
                           "transfer leadership: no other voter is reachable "
                           "and caught up");
            return;
        }
    }
    rv = check_successor(n, target, why);
    if (rv != 0) {
        jr__cmd_finish(n, c, rv, "%s", why);
        return;
    }
    start_transfer(n, c, target);
}

static void removed_cb(struct raft_change *req, int status)
{
    struct admin_raft *a = req->data;
    struct jr_node *n = a->node;
    struct jr__cmd *c = find_op(n, a->op_id);
    char who[96];
    describe(n, a->target, who);
    if (status == 0) {
        jr__infof(n, "%s removed from the cluster", who);
    }
    if (c != NULL) {
        if (status == 0) {
            jr__cmd_finish(n, c, 0, NULL);
        } else {
            jr__cmd_finish(n, c,
                           status == RAFT_LEADERSHIPLOST
                               ? JR_ELEADERSHIPLOST
                               : jr__err_from_raft(status),
                           "remove %s: %s", who, raft_strerror(status));
        }
    }
    free(a);
}

static void do_remove(struct jr_node *n, struct jr__cmd *c)
{
    const struct raft_configuration *conf = &n->raft.configuration;
    const struct raft_server *s;
    struct admin_raft *a;
    uint64_t target = c->admin_target;
    unsigned voters = 0, reachable = 0, i;
    bool target_reachable = heard_from(n, target);
    char who[96];
    int rv;

    describe(n, target, who);
    s = member(n, target, &i);
    if (s == NULL) {
        jr__cmd_finish(n, c, JR_ENOTFOUND,
                       "remove %s: not a member of the cluster", who);
        return;
    }
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].role == RAFT_VOTER) {
            voters++;
            reachable += heard_from(n, conf->servers[i].id) ? 1 : 0;
        }
    }
    if (reachable * 2 <= voters) {
        jr__cmd_finish(n, c, JR_EQUORUMLOST,
                       "remove %s: quorum lost: the leader reaches %u of %u "
                       "voters, %u are needed; see jaco-recovery(7)",
                       who, reachable, voters, voters / 2 + 1);
        return;
    }
    if (s->role == RAFT_VOTER) {
        unsigned after = voters - 1;
        unsigned after_reachable = reachable - (target_reachable ? 1 : 0);
        if (after == 0 && (c->admin_flags & JR_REMOVE_FORCE) == 0 &&
            has_reachable_standby(n)) {
            /* The reconciler promotes a standby to replace it, hands
             * leadership over and demotes it (reconcile.c, "leaving");
             * the caller's retry then finds it removable. */
            if (n->leaving_id != target) {
                jr__infof(n,
                          "remove %s: the last voter; a standby is promoted "
                          "to take over first",
                          who);
            }
            n->leaving_id = target;
            n->leaving_until = jr__now(n) + LEAVING_MS;
            jr__cmd_finish(n, c, JR_EBUSY,
                           "remove %s: a standby is being promoted to take "
                           "over first",
                           who);
            return;
        }
        if (after == 0) {
            jr__cmd_finish(n, c, JR_ESTATE,
                           "remove %s: it is the last voter of the cluster",
                           who);
            return;
        }
        if (after_reachable * 2 <= after) {
            jr__cmd_finish(n, c, JR_EQUORUMLOST,
                           "remove %s: the %u remaining voters would have "
                           "only %u reachable, short of a majority; see "
                           "jaco-recovery(7)",
                           who, after, after_reachable);
            return;
        }
    }
    if ((c->admin_flags & JR_REMOVE_FORCE) == 0 && !target_reachable) {
        int64_t age = jr__contact_age(n, target);
        if (age < 0) {
            jr__cmd_finish(n, c, JR_ESTATE,
                           "remove %s: never heard from since this leader "
                           "started; a graceful removal needs it reachable: "
                           "if it is gone for good, remove it with force "
                           "(jaco node remove --force)",
                           who);
        } else {
            jr__cmd_finish(n, c, JR_ESTATE,
                           "remove %s: not heard from for %lld ms; a "
                           "graceful removal needs it reachable: if it is "
                           "gone for good, remove it with force (jaco node "
                           "remove --force)",
                           who, (long long)age);
        }
        return;
    }
    if (target == n->raft.id) {
        /* A leader does not remove itself: it hands over first, and its
         * successor removes it when the caller asks again. */
        uint64_t next = best_voter(n);
        if (next == 0) {
            jr__cmd_finish(n, c, JR_EQUORUMLOST,
                           "remove %s: no other voter is reachable to take "
                           "over; see jaco-recovery(7)",
                           who);
            return;
        }
        start_transfer(n, c, next);
        return;
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        jr__cmd_finish(n, c, JR_ENOMEM, "remove: out of memory");
        return;
    }
    a->node = n;
    a->op_id = c->batch_id;
    a->target = target;
    a->req.change.data = a;
    rv = raft_remove(&n->raft, &a->req.change, target, removed_cb);
    if (rv != 0) {
        int code = rv == RAFT_CANTCHANGE  ? JR_EBUSY
                   : rv == RAFT_NOTLEADER ? JR_ENOLEADER
                                          : jr__err_from_raft(rv);
        jr__cmd_finish(n, c, code, "remove %s: %s", who,
                       rv == RAFT_CANTCHANGE
                           ? "another membership change is in progress"
                           : raft_errmsg(&n->raft));
        free(a);
        return;
    }
    jr__infof(n, "removing %s%s", who,
              (c->admin_flags & JR_REMOVE_FORCE) != 0 ? " (forced)" : "");
}

/* Carry out c on this node, which should be the leader. c is in no list. */
static void run_on_leader(struct jr_node *n, struct jr__cmd *c)
{
    c->batch_id = ++n->next_batch_id;
    QUEUE_PUSH(&n->admin, &c->link);
    if (n->raft.state != RAFT_LEADER) {
        char why[JR_ERRMSG_SIZE];
        int code = jr__health(n, why);
        if (code == 0) {
            code = JR_ENOLEADER;
            jr__errf(why, "this node is not the leader");
        }
        jr__cmd_finish(n, c, code, "%s", why);
        return;
    }
    if (c->admin_op == JR__ADMIN_REMOVE) {
        do_remove(n, c);
    } else {
        do_transfer(n, c);
    }
}

void jr__handle_admin(struct jr_node *n,
                      struct jr__conn *conn,
                      const struct jr__msg *m)
{
    struct jr__cmd *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return; /* the follower's request times out */
    }
    c->kind = JR__CMD_REMOTE_ADMIN;
    c->remote_id = m->req_id;
    c->conn = conn;
    jr__conn_ref(conn);
    QUEUE_INIT(&c->link);
    c->deadline = jr__now(n) + n->cfg.apply_timeout_ms;
    if ((m->op != JR__ADMIN_REMOVE && m->op != JR__ADMIN_TRANSFER) ||
        (m->flags & ~(uint64_t)JR_REMOVE_FORCE) != 0) {
        QUEUE_PUSH(&n->admin, &c->link);
        jr__cmd_finish(n, c, JR_EINVAL,
                       "unknown admin request %llu (flags %llu): the leader "
                       "runs an older version",
                       (unsigned long long)m->op, (unsigned long long)m->flags);
        return;
    }
    c->admin_op = (unsigned)m->op;
    c->admin_target = m->id;
    c->admin_flags = (unsigned)m->flags;
    run_on_leader(n, c);
}

void jr__admin_encode(struct jr__frame *f, const struct jr__cmd *c)
{
    jr__frame_begin(f, JR__MSG_ADMIN, 4);
    msgpack_pack_uint64(&f->pk, c->req_id);
    msgpack_pack_uint64(&f->pk, c->admin_op);
    msgpack_pack_uint64(&f->pk, c->admin_target);
    msgpack_pack_uint64(&f->pk, c->admin_flags);
    jr__frame_end(f);
}

/* ---- on the caller's node ---- */

static void submit_run(struct jr_node *n, struct jr__op *op)
{
    struct jr__cmd *c = (struct jr__cmd *)op;
    raft_id leader;
    const char *address;
    queue one;
    int rv;
    QUEUE_INIT(&c->link);
    c->deadline = jr__now(n) + c->timeout_ms;
    if (n->raft_closed) {
        QUEUE_PUSH(&n->admin, &c->link);
        jr__cmd_finish(n, c, JR_ECANCELED, "the node is stopping");
        return;
    }
    raft_leader(&n->raft, &leader, &address);
    if (n->raft.state == RAFT_LEADER || leader == 0) {
        run_on_leader(n, c);
        return;
    }
    QUEUE_INIT(&one);
    QUEUE_PUSH(&one, &c->link);
    rv = jr__rpc_forward(n, &one);
    QUEUE_REMOVE(&c->link);
    QUEUE_PUSH(&n->forwarded, &c->link);
    if (rv != 0) {
        jr__cmd_finish(n, c, JR_ENOLEADER, "cannot reach the leader: %s",
                       jr_strerror(rv));
    }
}

/* One attempt: post the request and wait for its outcome. */
static int attempt(struct jr_node *n,
                   unsigned op,
                   uint64_t target,
                   unsigned flags,
                   unsigned timeout_ms,
                   uint64_t *index,
                   char *errmsg)
{
    struct jr__waiter w;
    struct jr__cmd *c = calloc(1, sizeof *c);
    int rv;
    if (c == NULL) {
        jr__errf(errmsg, "out of memory");
        return JR_ENOMEM;
    }
    c->kind = JR__CMD_ADMIN;
    c->admin_op = op;
    c->admin_target = target;
    c->admin_flags = flags;
    c->timeout_ms = timeout_ms;
    jr__waiter_init(&w);
    c->waiter = &w;
    c->op.run = submit_run;
    rv = jr__post(n, &c->op);
    if (rv != 0) {
        free(c);
        jr__waiter_close(&w);
        jr__errf(errmsg, "%s",
                 rv == JR_ESTATE ? "the node is not started"
                                 : "the node is stopping");
        return rv;
    }
    /* The loop enforces the deadline, so this wait always ends. */
    (void)jr__waiter_wait(&w, 0);
    rv = w.status;
    (void)snprintf(errmsg, JR_ERRMSG_SIZE, "%s", w.errmsg);
    *index = w.index;
    jr_free(w.result);
    jr__waiter_close(&w);
    return rv;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Worth asking again: nothing was done, or the leader changed under us. */
static bool retryable(int rv)
{
    return rv == JR_ENOLEADER || rv == JR_EBUSY || rv == JR_ELEADERSHIPLOST ||
           rv == JR_ECONNECT;
}

static uint64_t local_leader(struct jr_node *n)
{
    struct jr_status *st;
    uint64_t leader = 0;
    if (jr_node_status(n, &st) == 0) {
        leader = st->leader_id;
        jr_status_free(st);
    }
    return leader;
}

/* The leader this node knows, waiting for one until deadline (then 0). */
static uint64_t known_leader(struct jr_node *n, uint64_t deadline)
{
    uint64_t leader;
    while ((leader = local_leader(n)) == 0 && now_ms() < deadline) {
        uv_sleep(10);
    }
    return leader;
}

static int check_call(struct jr_node *n, struct jr_error *err)
{
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK,
                             "blocking call made on the loop thread");
    }
    return 0;
}

int jr_node_remove(struct jr_node *n,
                   uint64_t id,
                   unsigned flags,
                   unsigned timeout_ms,
                   struct jr_error *err)
{
    char msg[JR_ERRMSG_SIZE];
    uint64_t deadline, index;
    bool maybe_done = false;
    int rv;
    if (n == NULL || id == 0 || (flags & ~JR_REMOVE_FORCE) != 0) {
        return jr__error_set(err, JR_EINVAL, "remove: bad arguments");
    }
    if ((rv = check_call(n, err)) != 0) {
        return rv;
    }
    deadline = now_ms() + (timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    for (;;) {
        uint64_t now = now_ms();
        unsigned left = now < deadline ? (unsigned)(deadline - now) : 1;
        rv = attempt(n, JR__ADMIN_REMOVE, id, flags, left, &index, msg);
        if (rv == 0) {
            return 0;
        }
        if (rv == JR_ENOTFOUND && maybe_done) {
            return 0; /* an earlier attempt did it */
        }
        if (!retryable(rv) || now_ms() + RETRY_MS >= deadline) {
            if (maybe_done && rv != JR_ETIMEDOUT) {
                /* A refusal now does not undo an earlier attempt that a
                 * leader may still carry out (one paused with the request
                 * in its socket buffer, say). */
                return jr__error_set(err, JR_ELEADERSHIPLOST,
                                     "%s; an earlier attempt reached a "
                                     "leader that was then lost, and may "
                                     "still take effect",
                                     msg);
            }
            return jr__error_set(err, rv, "%s", msg);
        }
        if (rv == JR_ELEADERSHIPLOST) {
            maybe_done = true;
        }
        uv_sleep(RETRY_MS);
    }
}

int jr_node_transfer_leadership(struct jr_node *n,
                                uint64_t id,
                                unsigned timeout_ms,
                                struct jr_error *err)
{
    char msg[JR_ERRMSG_SIZE];
    uint64_t deadline, index = 0, before;
    int rv;
    if (n == NULL) {
        return jr__error_set(err, JR_EINVAL, "transfer: bad arguments");
    }
    if ((rv = check_call(n, err)) != 0) {
        return rv;
    }
    deadline = now_ms() + (timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    before = local_leader(n);
    for (;;) {
        uint64_t now = now_ms(), leader;
        unsigned left = now < deadline ? (unsigned)(deadline - now) : 1;
        rv = attempt(n, JR__ADMIN_TRANSFER, id, 0, left, &index, msg);
        if (rv == 0) {
            break;
        }
        /* The answer can be lost when this node hears of the new leader
         * before the old one's reply arrives: see who leads once there is
         * a leader again, lest a retry with id 0 hand leadership on a
         * second time. */
        leader = retryable(rv) ? known_leader(n, deadline) : local_leader(n);
        if (leader != 0 &&
            (id != 0 ? leader == id : before != 0 && leader != before)) {
            index = leader;
            rv = 0;
            break;
        }
        if (!retryable(rv) || now_ms() + RETRY_MS >= deadline) {
            return jr__error_set(err, rv, "%s", msg);
        }
        uv_sleep(RETRY_MS);
    }
    /* Return once this node knows the new leader too, so that what the
     * caller reads next agrees. */
    while (local_leader(n) != index && now_ms() < deadline) {
        uv_sleep(10);
    }
    return 0;
}
