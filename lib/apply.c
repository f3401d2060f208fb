/* apply.c: writes and read barriers from submission to completion. Commands
 * submitted during one loop turn are batched into one raft_apply on the
 * leader, or one forwarded frame on a follower; results are matched back by
 * log index as the FSM applies them, and delivered after the turn. */
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"

struct batch_req {
    struct raft_apply req;
    struct jr_node *node;
    uint64_t id;
};

struct barrier_req {
    struct raft_barrier req;
    struct jr_node *node;
    uint64_t id; /* its commands wait in barrier_wait with this batch_id */
};

void jr__apply_init(struct jr_node *n)
{
    QUEUE_INIT(&n->batch);
    QUEUE_INIT(&n->barriers);
    QUEUE_INIT(&n->inflight);
    QUEUE_INIT(&n->forwarded);
    QUEUE_INIT(&n->wait_applied);
    QUEUE_INIT(&n->barrier_wait);
    QUEUE_INIT(&n->done);
    QUEUE_INIT(&n->admin);
}

/* canonical/raft 0.15's disk backend pads each entry to 8 bytes when it
 * writes a segment but sums the unpadded lengths when it reads one back, so
 * a log holding an entry whose length is not a multiple of 8 cannot be
 * loaded (test_raft_contract.c pins this). Every command therefore travels in
 * an envelope of a multiple of 8 bytes: the data, zero padding, and a last byte
 * giving the envelope's overhead (1 to 8). The library's own commands (the
 * used join tokens, libstate.c) set the last byte's top bit: they never reach
 * the embedder's FSM, and an embedder's command can never pass for one. */
#define ENVELOPE_INTERNAL 0x80

static void *wrap(const void *buf, size_t len, size_t *out_len, bool internal)
{
    size_t total = (len + 1 + 7) & ~(size_t)7;
    unsigned char *p = raft_malloc(total);
    if (p == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(p, buf, len);
    }
    memset(p + len, 0, total - len);
    p[total - 1] =
        (unsigned char)((total - len) | (internal ? ENVELOPE_INTERNAL : 0));
    *out_len = total;
    return p;
}

void *jr__entry_wrap(const void *buf, size_t len, size_t *out_len)
{
    return wrap(buf, len, out_len, false);
}

void *jr__entry_wrap_internal(const void *buf, size_t len, size_t *out_len)
{
    return wrap(buf, len, out_len, true);
}

int jr__entry_unwrap(const void *buf,
                     size_t len,
                     size_t *data_len,
                     bool *internal)
{
    const unsigned char *p = buf;
    unsigned pad;
    if (len == 0 || len % 8 != 0) {
        return JR_ECORRUPT;
    }
    pad = p[len - 1] & ~ENVELOPE_INTERNAL;
    if (pad < 1 || pad > 8 ||
        ((p[len - 1] & ENVELOPE_INTERNAL) != 0 && internal == NULL)) {
        return JR_ECORRUPT;
    }
    if (internal != NULL) {
        *internal = (p[len - 1] & ENVELOPE_INTERNAL) != 0;
    }
    *data_len = len - pad;
    return 0;
}

void jr__cmd_free(struct jr__cmd *c)
{
    if (c->buf != NULL) {
        raft_free(c->buf);
    }
    if (c->result != NULL) {
        jr_free(c->result);
    }
    if (c->conn != NULL) {
        void jr__conn_unref(struct jr__conn * conn);
        jr__conn_unref(c->conn);
    }
    free(c);
}

void jr__cmd_finish(struct jr_node *n,
                    struct jr__cmd *c,
                    int status,
                    const char *fmt,
                    ...)
{
    va_list ap;
    c->status = status;
    if (status != 0 && fmt != NULL) {
        va_start(ap, fmt);
        (void)vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
        va_end(ap);
    }
    if (status != 0 && c->result != NULL) {
        jr_free(c->result);
        c->result = NULL;
        c->result_len = 0;
    }
    QUEUE_REMOVE(&c->link);
    QUEUE_PUSH(&n->done, &c->link);
}

/* ---- submission (any thread) ---- */

static void submit_run(struct jr_node *n, struct jr__op *op)
{
    struct jr__cmd *c = (struct jr__cmd *)op;
    unsigned timeout =
        c->timeout_ms != 0 ? c->timeout_ms : n->cfg.apply_timeout_ms;
    QUEUE_INIT(&c->link);
    c->deadline = jr__now(n) + timeout;
    if (c->kind == JR__CMD_BARRIER) {
        QUEUE_PUSH(&n->barriers, &c->link);
    } else {
        QUEUE_PUSH(&n->batch, &c->link);
    }
}

static int submit(struct jr_node *n, struct jr__cmd *c)
{
    c->op.run = submit_run;
    return jr__post(n, &c->op);
}

static struct jr__cmd *cmd_new_wrapped(enum jr__cmd_kind kind,
                                       const void *buf,
                                       size_t len,
                                       bool internal);

static struct jr__cmd *cmd_new(enum jr__cmd_kind kind,
                               const void *buf,
                               size_t len)
{
    return cmd_new_wrapped(kind, buf, len, false);
}

/* Submit c (NULL: out of memory) for req, with cb: jr_apply's tail. */
static int submit_apply(struct jr_node *n,
                        struct jr__cmd *c,
                        struct jr_apply *req,
                        jr_apply_cb cb)
{
    int rv;
    if (c == NULL) {
        return JR_ENOMEM;
    }
    req->cb = cb;
    req->index = 0;
    req->errmsg[0] = '\0';
    c->req = req;
    rv = submit(n, c);
    if (rv != 0) {
        jr__cmd_free(c);
    }
    return rv;
}

int jr__apply_internal(struct jr_node *n,
                       struct jr_apply *req,
                       const void *buf,
                       size_t len,
                       jr_apply_cb cb)
{
    return submit_apply(n, cmd_new_wrapped(JR__CMD_APPLY, buf, len, true), req,
                        cb);
}

static struct jr__cmd *cmd_new_wrapped(enum jr__cmd_kind kind,
                                       const void *buf,
                                       size_t len,
                                       bool internal)
{
    struct jr__cmd *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->kind = kind;
    if (kind == JR__CMD_APPLY) {
        /* raft takes buffers allocated with raft_malloc: copy once, here,
         * and hand the copy to raft_apply without another. */
        c->buf = internal ? jr__entry_wrap_internal(buf, len, &c->len)
                          : jr__entry_wrap(buf, len, &c->len);
        if (c->buf == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

int jr_apply(struct jr_node *n,
             struct jr_apply *req,
             const void *buf,
             size_t len,
             jr_apply_cb cb)
{
    if (n == NULL || req == NULL || cb == NULL || (buf == NULL && len > 0)) {
        return JR_EINVAL;
    }
    if (len > JR__MAX_COMMAND) {
        return JR_ETOOBIG;
    }
    return submit_apply(n, cmd_new(JR__CMD_APPLY, buf, len), req, cb);
}

int jr_apply_sync(struct jr_node *n,
                  const void *buf,
                  size_t len,
                  unsigned timeout_ms,
                  void **result,
                  size_t *result_len,
                  struct jr_error *err)
{
    struct jr__waiter w;
    struct jr__cmd *c;
    int rv;
    if (n == NULL || (buf == NULL && len > 0)) {
        return jr__error_set(err, JR_EINVAL, "apply: bad arguments");
    }
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK,
                             "jr_apply_sync called on the loop thread");
    }
    if (len > JR__MAX_COMMAND) {
        return jr__error_set(err, JR_ETOOBIG, "command of %zu bytes", len);
    }
    c = cmd_new(JR__CMD_APPLY, buf, len);
    if (c == NULL) {
        return jr__error_set(err, JR_ENOMEM, "apply: out of memory");
    }
    jr__waiter_init(&w);
    c->waiter = &w;
    c->timeout_ms = timeout_ms;
    rv = submit(n, c);
    if (rv != 0) {
        jr__cmd_free(c);
        jr__waiter_close(&w);
        return jr__error_set(err, rv, "apply: node not running");
    }
    /* The loop enforces the deadline, so this wait always ends. */
    (void)jr__waiter_wait(&w, 0);
    rv = w.status;
    if (rv != 0) {
        jr__error_set(err, rv, "%s", w.errmsg);
        jr_free(w.result);
    } else if (result != NULL) {
        *result = w.result;
        if (result_len != NULL) {
            *result_len = w.result_len;
        }
    } else {
        jr_free(w.result);
    }
    jr__waiter_close(&w);
    return rv;
}

int jr_barrier(struct jr_node *n, struct jr_barrier *req, jr_barrier_cb cb)
{
    struct jr__cmd *c;
    int rv;
    if (n == NULL || req == NULL || cb == NULL) {
        return JR_EINVAL;
    }
    c = cmd_new(JR__CMD_BARRIER, NULL, 0);
    if (c == NULL) {
        return JR_ENOMEM;
    }
    req->cb = cb;
    req->index = 0;
    req->errmsg[0] = '\0';
    c->breq = req;
    rv = submit(n, c);
    if (rv != 0) {
        jr__cmd_free(c);
    }
    return rv;
}

int jr_barrier_sync(struct jr_node *n,
                    unsigned timeout_ms,
                    struct jr_error *err)
{
    struct jr__waiter w;
    struct jr__cmd *c;
    int rv;
    if (n == NULL) {
        return jr__error_set(err, JR_EINVAL, "barrier: no node");
    }
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK,
                             "jr_barrier_sync called on the loop thread");
    }
    c = cmd_new(JR__CMD_BARRIER, NULL, 0);
    if (c == NULL) {
        return jr__error_set(err, JR_ENOMEM, "barrier: out of memory");
    }
    jr__waiter_init(&w);
    c->waiter = &w;
    c->timeout_ms = timeout_ms;
    rv = submit(n, c);
    if (rv != 0) {
        jr__cmd_free(c);
        jr__waiter_close(&w);
        return jr__error_set(err, rv, "barrier: node not running");
    }
    (void)jr__waiter_wait(&w, 0);
    rv = w.status;
    if (rv != 0) {
        jr__error_set(err, rv, "%s", w.errmsg);
    }
    jr__waiter_close(&w);
    return rv;
}

void jr__submit_remote(struct jr_node *n, struct jr__cmd *c)
{
    QUEUE_INIT(&c->link);
    c->deadline = jr__now(n) + n->cfg.apply_timeout_ms;
    if (c->kind == JR__CMD_REMOTE_BARRIER) {
        QUEUE_PUSH(&n->barriers, &c->link);
    } else {
        QUEUE_PUSH(&n->batch, &c->link);
    }
}

/* ---- on the leader ---- */

static void fail_batch(struct jr_node *n,
                       uint64_t batch_id,
                       int status,
                       const char *why)
{
    queue *q = QUEUE_HEAD(&n->inflight);
    while (q != &n->inflight) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        q = QUEUE_NEXT(q);
        if (c->batch_id == batch_id) {
            jr__cmd_finish(n, c, status, "%s", why);
        }
    }
}

static void batch_cb(struct raft_apply *req, int status, void *result)
{
    struct batch_req *b = req->data;
    struct jr_node *n = b->node;
    (void)result; /* results travel through jr__applied, not here */
    if (status != 0) {
        int code = jr__err_from_raft(status);
        if (status == RAFT_LEADERSHIPLOST) {
            code = JR_ELEADERSHIPLOST;
        }
        /* raft 0.15's own texts miss codes such as RAFT_NOSPACE. */
        fail_batch(n, b->id, code,
                   code == JR_ELEADERSHIPLOST ? jr_strerror(code)
                   : code == JR_ENOSPACE
                       ? "the log could not be written: no space "
                         "left on device (see jaco-recovery(7))"
                       : "the log could not be written");
    }
    n->n_raft_reqs--;
    free(b);
}

/* Append up to JR__MAX_BATCH commands of the batch list in one raft_apply.
 * Returns false when nothing more can be appended this turn. */
static bool append_batch(struct jr_node *n)
{
    struct raft_buffer bufs[JR__MAX_BATCH];
    struct jr__cmd *cmds[JR__MAX_BATCH];
    struct batch_req *b;
    unsigned count = 0, i;
    queue *q;
    int rv;

    QUEUE_FOREACH (q, &n->batch) {
        if (count == JR__MAX_BATCH) {
            break;
        }
        cmds[count] = QUEUE_DATA(q, struct jr__cmd, link);
        bufs[count].base = cmds[count]->buf;
        bufs[count].len = cmds[count]->len;
        count++;
    }
    if (count == 0) {
        return false;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        for (i = 0; i < count; i++) {
            jr__cmd_finish(n, cmds[i], JR_ENOMEM, "append: out of memory");
        }
        return true;
    }
    b->node = n;
    b->id = ++n->next_batch_id;
    b->req.data = b;
    /* raft 0.15 hands the entries to our log before it sends them to the
     * followers. The leader's own write is rarely the last one a commit
     * waits for, the followers' are: wake the writer after the sends. */
    jr__io_cork(n, true);
    rv = raft_apply(&n->raft, &b->req, bufs, count, batch_cb);
    jr__io_cork(n, false);
    if (rv != 0) {
        int code = jr__err_from_raft(rv);
        char why[JR_ERRMSG_SIZE];
        free(b);
        if (rv == RAFT_NOTLEADER) {
            code = jr__health(n, why);
            if (code == 0) {
                code = JR_ENOLEADER;
                jr__errf(why, "leadership is being transferred");
            }
        } else {
            jr__errf(why, "append: %s", raft_errmsg(&n->raft));
        }
        for (i = 0; i < count; i++) {
            jr__cmd_finish(n, cmds[i], code, "%s", why);
        }
        return true;
    }
    n->n_raft_reqs++;
    for (i = 0; i < count; i++) {
        struct jr__cmd *c = cmds[i];
        c->buf = NULL; /* raft owns it now */
        c->index = b->req.index + i;
        c->term = n->raft.current_term;
        c->batch_id = b->id;
        QUEUE_REMOVE(&c->link);
        QUEUE_PUSH(&n->inflight, &c->link);
    }
    return count == JR__MAX_BATCH;
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct barrier_req *b = req->data;
    struct jr_node *n = b->node;
    queue *q = QUEUE_HEAD(&n->barrier_wait);
    while (q != &n->barrier_wait) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        q = QUEUE_NEXT(q);
        if (c->batch_id != b->id) {
            continue; /* another barrier's, or already timed out */
        }
        c->index = req->index;
        if (status == 0) {
            jr__cmd_finish(n, c, 0, NULL);
        } else {
            jr__cmd_finish(n, c,
                           status == RAFT_LEADERSHIPLOST
                               ? JR_ENOLEADER
                               : jr__err_from_raft(status),
                           "read barrier: %s", raft_strerror(status));
        }
    }
    n->n_raft_reqs--;
    free(b);
}

static void start_barrier(struct jr_node *n)
{
    struct barrier_req *b = calloc(1, sizeof *b);
    int rv;
    if (b == NULL) {
        return; /* retried next turn */
    }
    b->node = n;
    b->req.data = b;
    b->id = ++n->next_batch_id;
    rv = raft_barrier(&n->raft, &b->req, barrier_cb);
    if (rv != 0) {
        char why[JR_ERRMSG_SIZE];
        int code = jr__health(n, why);
        free(b);
        if (code == 0) {
            code = JR_ENOLEADER;
            jr__errf(why, "read barrier: %s", raft_strerror(rv));
        }
        while (!QUEUE_IS_EMPTY(&n->barriers)) {
            jr__cmd_finish(
                n, QUEUE_DATA(QUEUE_HEAD(&n->barriers), struct jr__cmd, link),
                code, "%s", why);
        }
        return;
    }
    n->n_raft_reqs++;
    while (!QUEUE_IS_EMPTY(&n->barriers)) {
        struct jr__cmd *c =
            QUEUE_DATA(QUEUE_HEAD(&n->barriers), struct jr__cmd, link);
        c->batch_id = b->id;
        c->term = n->raft.current_term;
        QUEUE_REMOVE(&c->link);
        QUEUE_PUSH(&n->barrier_wait, &c->link);
    }
}

/* ---- on a follower ---- */

static void forward_all(struct jr_node *n)
{
    queue local, *q;
    int rv;
    QUEUE_INIT(&local);
    /* Remote commands reached us while we were leader; we no longer are. */
    q = QUEUE_HEAD(&n->batch);
    while (q != &n->batch) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        q = QUEUE_NEXT(q);
        if (c->kind == JR__CMD_REMOTE_APPLY) {
            jr__cmd_finish(n, c, JR_ENOLEADER, "this node is not the leader");
        }
    }
    q = QUEUE_HEAD(&n->barriers);
    while (q != &n->barriers) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        q = QUEUE_NEXT(q);
        if (c->kind == JR__CMD_REMOTE_BARRIER) {
            jr__cmd_finish(n, c, JR_ENOLEADER, "this node is not the leader");
        }
    }
    QUEUE_MOVE_ALL(&n->barriers, &local);
    QUEUE_MOVE_ALL(&n->batch, &local);
    if (QUEUE_IS_EMPTY(&local)) {
        return;
    }
    rv = jr__rpc_forward(n, &local);
    if (rv != 0) {
        while (!QUEUE_IS_EMPTY(&local)) {
            jr__cmd_finish(
                n, QUEUE_DATA(QUEUE_HEAD(&local), struct jr__cmd, link),
                JR_ENOLEADER, "cannot reach the leader: %s", jr_strerror(rv));
        }
        return;
    }
    /* The frame holds a copy; the commands wait without their payload. */
    QUEUE_FOREACH (q, &local) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        if (c->buf != NULL) {
            raft_free(c->buf);
            c->buf = NULL;
        }
    }
    QUEUE_MOVE_ALL(&local, &n->forwarded);
}

static void fail_list(struct jr_node *n,
                      queue *list,
                      int status,
                      const char *why)
{
    while (!QUEUE_IS_EMPTY(list)) {
        jr__cmd_finish(n, QUEUE_DATA(QUEUE_HEAD(list), struct jr__cmd, link),
                       status, "%s", why);
    }
}

static void check_wait_applied(struct jr_node *n)
{
    queue *q = QUEUE_HEAD(&n->wait_applied);
    while (q != &n->wait_applied) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        q = QUEUE_NEXT(q);
        if (n->raft.last_applied >= c->index) {
            jr__cmd_finish(n, c, 0, NULL);
        }
    }
}

void jr__flush(struct jr_node *n)
{
    raft_id leader;
    const char *address;
    char why[JR_ERRMSG_SIZE];
    int code;
    if (!QUEUE_IS_EMPTY(&n->batch) || !QUEUE_IS_EMPTY(&n->barriers)) {
        raft_leader(&n->raft, &leader, &address);
        code = jr__health(n, why);
        if (n->raft.state == RAFT_LEADER && code != 0) {
            fail_list(n, &n->batch, code, why);
            fail_list(n, &n->barriers, code, why);
        } else if (n->raft.state == RAFT_LEADER) {
            while (append_batch(n)) {
            }
            if (!QUEUE_IS_EMPTY(&n->barriers)) {
                start_barrier(n);
            }
        } else if (leader != 0) {
            forward_all(n);
        } else {
            if (code == 0) {
                code = JR_ENOLEADER;
                jr__errf(why, "no known leader");
            }
            fail_list(n, &n->batch, code, why);
            fail_list(n, &n->barriers, code, why);
        }
    }
    if (!QUEUE_IS_EMPTY(&n->wait_applied)) {
        check_wait_applied(n);
    }
}

/* ---- completion ---- */

void jr__applied(struct jr_node *n,
                 uint64_t index,
                 int rv,
                 void *result,
                 size_t result_len)
{
    while (!QUEUE_IS_EMPTY(&n->inflight)) {
        struct jr__cmd *c =
            QUEUE_DATA(QUEUE_HEAD(&n->inflight), struct jr__cmd, link);
        if (c->index > index) {
            break;
        }
        if (c->index < index || n->raft.state != RAFT_LEADER ||
            n->raft.current_term != c->term) {
            /* Another leader's entry may sit at this index now. */
            jr__cmd_finish(n, c, JR_ELEADERSHIPLOST,
                           "leadership changed while the write was pending");
            continue;
        }
        c->index = index;
        if (rv != 0) {
            jr__cmd_finish(n, c, JR_EAPPLY,
                           "the state machine returned %d for index %llu", rv,
                           (unsigned long long)index);
        } else {
            c->result = result;
            c->result_len = result_len;
            result = NULL;
            jr__cmd_finish(n, c, 0, NULL);
        }
        break;
    }
    if (result != NULL) {
        jr_free(result);
    }
}

void jr__forward_reply(struct jr_node *n,
                       uint64_t req_id,
                       int status,
                       const char *errmsg,
                       uint64_t index,
                       const void *result,
                       size_t result_len)
{
    queue *q;
    QUEUE_FOREACH (q, &n->forwarded) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        if (c->req_id != req_id) {
            continue;
        }
        c->index = index;
        if (status != 0) {
            jr__cmd_finish(n, c, status, "%s",
                           errmsg[0] != '\0' ? errmsg : jr_strerror(status));
        } else if (c->kind == JR__CMD_BARRIER) {
            /* Linearizable once we have applied what the leader had
             * committed when it confirmed its leadership. */
            QUEUE_REMOVE(&c->link);
            QUEUE_PUSH(&n->wait_applied, &c->link);
            check_wait_applied(n);
        } else {
            if (result != NULL && result_len > 0) {
                c->result = jr_malloc(result_len);
                if (c->result == NULL) {
                    jr__cmd_finish(n, c, JR_ENOMEM,
                                   "applied, but the result was lost: out "
                                   "of memory");
                    return;
                }
                memcpy(c->result, result, result_len);
                c->result_len = result_len;
            }
            jr__cmd_finish(n, c, 0, NULL);
        }
        return;
    }
    /* Late reply for a request that already timed out: nothing to do. */
}

void jr__conn_lost(struct jr_node *n, struct jr__conn *conn)
{
    queue *q = QUEUE_HEAD(&n->forwarded);
    while (q != &n->forwarded) {
        struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
        q = QUEUE_NEXT(q);
        if (c->conn != conn) {
            continue;
        }
        if (c->kind == JR__CMD_BARRIER) {
            jr__cmd_finish(n, c, JR_ENOLEADER,
                           "connection to the leader lost; retry");
        } else if (!jr__conn_was_connected(conn)) {
            /* Never sent: a definite failure the caller can retry. */
            jr__cmd_finish(n, c, JR_ENOLEADER,
                           "cannot connect to the leader; retry soon");
        } else {
            jr__cmd_finish(n, c, JR_ELEADERSHIPLOST,
                           "connection to the leader lost before it answered");
        }
    }
}

void jr__sweep(struct jr_node *n)
{
    queue *lists[] = {&n->inflight, &n->forwarded, &n->wait_applied,
                      &n->barrier_wait, &n->admin};
    uint64_t now = jr__now(n);
    unsigned i;
    for (i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        queue *q = QUEUE_HEAD(lists[i]);
        while (q != lists[i]) {
            struct jr__cmd *c = QUEUE_DATA(q, struct jr__cmd, link);
            q = QUEUE_NEXT(q);
            bool lost =
                n->raft.state != RAFT_LEADER || n->raft.current_term != c->term;
            if (lists[i] == &n->inflight && lost) {
                jr__cmd_finish(n, c, JR_ELEADERSHIPLOST,
                               "leadership lost while the write was pending");
            } else if (lists[i] == &n->barrier_wait && lost) {
                /* A read changes nothing: failing it is always safe. */
                jr__cmd_finish(n, c, JR_ENOLEADER,
                               "leadership lost during the read barrier");
            } else if (now >= c->deadline) {
                jr__cmd_finish(n, c, JR_ETIMEDOUT, "no answer within %u ms",
                               c->timeout_ms != 0 ? c->timeout_ms
                                                  : n->cfg.apply_timeout_ms);
            }
        }
    }
}

void jr__deliver(struct jr_node *n)
{
    while (!QUEUE_IS_EMPTY(&n->done)) {
        struct jr__cmd *c =
            QUEUE_DATA(QUEUE_HEAD(&n->done), struct jr__cmd, link);
        QUEUE_REMOVE(&c->link);
        switch (c->kind) {
            case JR__CMD_APPLY:
            case JR__CMD_BARRIER:
            case JR__CMD_ADMIN:
                if (c->waiter != NULL) {
                    c->waiter->result = c->result;
                    c->waiter->result_len = c->result_len;
                    c->waiter->index = c->index;
                    c->result = NULL;
                    jr__waiter_finish(c->waiter, c->status, c->errmsg);
                } else if (c->kind == JR__CMD_APPLY) {
                    c->req->index = c->index;
                    memcpy(c->req->errmsg, c->errmsg, sizeof c->errmsg);
                    c->req->cb(c->req, c->status, c->result, c->result_len);
                } else {
                    c->breq->index = c->index;
                    memcpy(c->breq->errmsg, c->errmsg, sizeof c->errmsg);
                    c->breq->cb(c->breq, c->status);
                }
                break;
            case JR__CMD_REMOTE_APPLY:
            case JR__CMD_REMOTE_BARRIER:
            case JR__CMD_REMOTE_ADMIN: jr__rpc_reply(n, c); break;
        }
        jr__cmd_free(c);
    }
}

void jr__fail_all(struct jr_node *n, int status, const char *why)
{
    fail_list(n, &n->batch, status, why);
    fail_list(n, &n->barriers, status, why);
    fail_list(n, &n->inflight, status, why);
    fail_list(n, &n->forwarded, status, why);
    fail_list(n, &n->wait_applied, status, why);
    fail_list(n, &n->barrier_wait, status, why);
    fail_list(n, &n->admin, status, why);
    jr__deliver(n);
}
