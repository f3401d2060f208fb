/* compact.c: a snapshot on demand (jr_node_snapshot; jaco snapshot), to
 * compact the log now instead of at the next threshold, e.g. to free disk
 * space. raft 0.15 has no call for it: it snapshots when the entries
 * applied since the last snapshot reach the threshold, so the threshold is
 * lowered to 1 until the next entry has been applied and its snapshot
 * written, then put back. */
#include <string.h>

#include "jr_internal.h"

struct threshold_op {
    struct jr__op op;
    struct jr__waiter w;
    unsigned threshold;
    uint64_t snapshot_index; /* out: the node's snapshot index before */
};

static void set_threshold_run(struct jr_node *n, struct jr__op *op)
{
    struct threshold_op *t = (struct threshold_op *)op;
    t->snapshot_index = n->raft.log.snapshot.last_index;
    raft_set_snapshot_threshold(&n->raft, t->threshold);
    jr__waiter_finish(&t->w, 0, NULL);
}

static int set_threshold(struct jr_node *n,
                         unsigned threshold,
                         uint64_t *before)
{
    struct threshold_op t;
    int rv;
    memset(&t, 0, sizeof t);
    jr__waiter_init(&t.w);
    t.op.run = set_threshold_run;
    t.threshold = threshold;
    rv = jr__post(n, &t.op);
    if (rv == 0) {
        (void)jr__waiter_wait(&t.w, 0);
        rv = t.w.status;
    }
    jr__waiter_close(&t.w);
    if (before != NULL) {
        *before = t.snapshot_index;
    }
    return rv;
}

int jr_node_snapshot(struct jr_node *n,
                     unsigned timeout_ms,
                     uint64_t *index,
                     struct jr_error *err)
{
    struct jr_status *st = NULL;
    uint64_t before = 0, deadline;
    int rv;

    if (n == NULL) {
        return jr__error_set(err, JR_EINVAL, "snapshot: bad arguments");
    }
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK, "snapshot: on the loop thread");
    }
    if (timeout_ms == 0) {
        timeout_ms = 30000;
    }
    deadline = uv_hrtime() / 1000000 + timeout_ms;
    rv = set_threshold(n, 1, &before);
    if (rv != 0) {
        return jr__error_set(err, rv, "snapshot: the node is not running");
    }
    /* A barrier appends an entry through the leader; applying it (here
     * too, on a follower) crosses the lowered threshold. */
    rv = jr_barrier_sync(n, timeout_ms, err);
    while (rv == 0) {
        rv = jr_node_status(n, &st);
        if (rv != 0) {
            jr__error_set(err, rv, "snapshot: status");
            break;
        }
        if (st->snapshot_index > before) {
            if (index != NULL) {
                *index = st->snapshot_index;
            }
            jr_status_free(st);
            break;
        }
        jr_status_free(st);
        if (uv_hrtime() / 1000000 >= deadline) {
            rv = jr__error_set(err, JR_ETIMEDOUT,
                               "snapshot: none written within %u ms",
                               timeout_ms);
            break;
        }
        uv_sleep(20);
    }
    (void)set_threshold(n, n->cfg.snapshot_threshold, NULL);
    if (rv == 0) {
        jr__infof(n, "snapshot taken on request");
    }
    return rv;
}
