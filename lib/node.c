/* node.c: a node's lifecycle (open, bootstrap, start, stop, close), the
 * loop thread it runs on, and how other threads post work to it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "jointoken.h"
#include "jr_internal.h"

#define TICK_MS 20

const char *jr_version(void)
{
#define JR__STR2(x) #x
#define JR__STR(x) JR__STR2(x)
    return JR__STR(JR_VERSION_MAJOR) "." JR__STR(JR_VERSION_MINOR) "." JR__STR(
        JR_VERSION_PATCH);
}

void *jr_malloc(size_t size)
{
    return malloc(size > 0 ? size : 1);
}

void jr_free(void *ptr)
{
    free(ptr);
}

char *jr__strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = malloc(len);
    if (p != NULL) {
        memcpy(p, s, len);
    }
    return p;
}

void jr_config_init(struct jr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->version = JR_CONFIG_VERSION;
    cfg->election_timeout_ms = 1000;
    cfg->heartbeat_timeout_ms = 100;
    cfg->snapshot_threshold = 8192;
    cfg->snapshot_trailing = 2048;
    cfg->apply_timeout_ms = 10000;
    cfg->log_level = JR_LOG_INFO;
}

/* ---- waiters (blocking calls) ---- */

void jr__waiter_init(struct jr__waiter *w)
{
    memset(w, 0, sizeof *w);
    /* Both only fail on resource exhaustion at process start; abort is the
     * libuv convention for that. */
    if (uv_mutex_init(&w->mutex) != 0 || uv_cond_init(&w->cond) != 0) {
        abort();
    }
}

void jr__waiter_close(struct jr__waiter *w)
{
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mutex);
}

int jr__waiter_wait(struct jr__waiter *w, unsigned timeout_ms)
{
    int rv = 0;
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    uv_mutex_lock(&w->mutex);
    while (!w->done) {
        if (timeout_ms == 0) {
            uv_cond_wait(&w->cond, &w->mutex);
            continue;
        }
        uint64_t now = uv_hrtime();
        if (now >= deadline ||
            uv_cond_timedwait(&w->cond, &w->mutex, deadline - now) ==
                UV_ETIMEDOUT) {
            if (!w->done) {
                rv = JR_ETIMEDOUT;
                break;
            }
        }
    }
    uv_mutex_unlock(&w->mutex);
    return rv;
}

void jr__waiter_finish(struct jr__waiter *w, int status, const char *errmsg)
{
    uv_mutex_lock(&w->mutex);
    w->status = status;
    (void)snprintf(w->errmsg, sizeof w->errmsg, "%s",
                   errmsg != NULL ? errmsg : "");
    w->done = true;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mutex);
}

/* ---- posting work to the loop ---- */

int jr__post(struct jr_node *n, struct jr__op *op)
{
    op->next = NULL;
    uv_mutex_lock(&n->mutex);
    if (!n->loop_running || n->stopping) {
        uv_mutex_unlock(&n->mutex);
        return n->started ? JR_ECANCELED : JR_ESTATE;
    }
    if (n->ops_tail != NULL) {
        n->ops_tail->next = op;
    } else {
        n->ops_head = op;
    }
    n->ops_tail = op;
    uv_mutex_unlock(&n->mutex);
    (void)uv_async_send(&n->wakeup);
    return 0;
}

bool jr__on_loop_thread(struct jr_node *n)
{
    uv_thread_t self = uv_thread_self();
    bool on;
    uv_mutex_lock(&n->mutex);
    on = n->loop_running && uv_thread_equal(&self, &n->loop_tid);
    uv_mutex_unlock(&n->mutex);
    return on;
}

static void drain_ops(struct jr_node *n)
{
    struct jr__op *op;
    uv_mutex_lock(&n->mutex);
    op = n->ops_head;
    n->ops_head = n->ops_tail = NULL;
    uv_mutex_unlock(&n->mutex);
    while (op != NULL) {
        struct jr__op *next = op->next;
        op->run(n, op);
        op = next;
    }
}

/* ---- the loop thread ---- */

static void handle_closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void raft_closed_cb(struct raft *r)
{
    struct jr_node *n = r->data;
    n->raft_closed = true;
    drain_ops(n);
    jr__fail_all(n, JR_ECANCELED, "the node is stopping");
    uv_close((uv_handle_t *)&n->tick, handle_closed_cb);
    uv_close((uv_handle_t *)&n->check, handle_closed_cb);
    uv_close((uv_handle_t *)&n->wakeup, handle_closed_cb);
    uv_close((uv_handle_t *)&n->watch, handle_closed_cb);
    jr__infof(n, "stopped (longest event-loop turn %.1f ms, %llu over 5 ms)",
              (double)n->loop_busy_max_ns / 1e6,
              (unsigned long long)n->loop_slow_turns);
}

/* canonical/raft 0.15 crashes in raft_close when two or more of a
 * leader's appends fail at close (each failed append truncates the log from
 * its own first index, so the second one truncates past the end of the log
 * and reads a freed entry reference; fixed upstream after 0.15 by
 * canonical/raft#352). raft_uv failed them; our log store completes queued
 * appends at close, and closing only once every append made as leader has
 * completed keeps it that way whatever the store does. Once stopping, no
 * new entries are submitted, so the wait ends with the writes in flight. */
void jr__close_raft(struct jr_node *n)
{
    if (n->leader_appends > 0) {
        if (!n->close_deferred) {
            jr__debugf(n, "stopping: waiting for %u log write(s)",
                       n->leader_appends);
        }
        n->close_deferred = true;
        return;
    }
    n->close_deferred = false;
    jr__rpc_close(n);
    raft_close(&n->raft, raft_closed_cb);
}

static void deferred_close_cb(uv_timer_t *t)
{
    jr__close_raft(t->data);
}

void jr__appends_drained(struct jr_node *n)
{
    if (n->close_deferred) {
        /* Not from inside the append's completion callback, which raft is
         * still running. The tick timer is idle while stopping. */
        (void)uv_timer_start(&n->tick, deferred_close_cb, 0, 0);
    }
}

static void close_raft(struct jr_node *n)
{
    jr__close_raft(n);
}

static void transfer_cb(struct raft_transfer *req)
{
    struct jr_node *n = req->data;
    raft_id leader;
    const char *address;
    raft_leader(&n->raft, &leader, &address);
    n->transferring = false;
    if (leader != 0 && leader != n->raft.id) {
        jr__infof(n, "leadership transferred to node %llu",
                  (unsigned long long)leader);
    } else {
        /* Routine when the whole cluster is being stopped: the others are
         * going too. Otherwise the rest elect a leader within an election
         * timeout, which is all the transfer would have saved. */
        jr__infof(n,
                  "leadership transfer did not complete; stopping anyway "
                  "(the other voters elect a leader)");
    }
    close_raft(n);
}

static bool has_other_voter(struct jr_node *n)
{
    unsigned i;
    for (i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (s->id != n->raft.id && s->role == RAFT_VOTER) {
            return true;
        }
    }
    return false;
}

static void begin_stop(struct jr_node *n)
{
    uv_timer_stop(&n->tick);
    if (n->raft.state == RAFT_LEADER && has_other_voter(n) &&
        n->raft.transfer == NULL) {
        int rv;
        n->transfer.data = n;
        rv = raft_transfer(&n->raft, &n->transfer, 0, transfer_cb);
        if (rv == 0) {
            n->transferring = true;
            jr__infof(n, "stopping: transferring leadership first");
            return;
        }
        jr__warnf(n, "stopping: leadership transfer failed: %s",
                  raft_strerror(rv));
    }
    close_raft(n);
}

static void wakeup_cb(uv_async_t *a)
{
    struct jr_node *n = a->data;
    bool stop;
    drain_ops(n);
    uv_mutex_lock(&n->mutex);
    stop = n->stopping;
    uv_mutex_unlock(&n->mutex);
    if (stop && !n->transferring && !n->raft_closed &&
        uv_is_active((uv_handle_t *)&n->check)) {
        uv_check_stop(&n->check);
        begin_stop(n);
    }
}

static void check_cb(uv_check_t *c)
{
    struct jr_node *n = c->data;
    jr__rpc_flush(n);
    jr__flush(n);
    jr__deliver(n);
}

static void noop_cb(struct raft_barrier *req, int status)
{
    struct jr_node *n = req->data;
    n->noop_pending = false;
    if (status == 0) {
        jr__debugf(n, "entries of earlier terms committed at index %llu",
                   (unsigned long long)req->index);
    }
}

/* Raft thesis 6.4: a new leader commits an entry of its own term at once,
 * which commits every entry of earlier terms before it. canonical/raft 0.15
 * does not, so after a full restart the state would stay unapplied until
 * the first write. */
static void commit_noop(struct jr_node *n)
{
    int rv;
    if (n->noop_pending) {
        return;
    }
    n->noop.data = n;
    rv = raft_barrier(&n->raft, &n->noop, noop_cb);
    if (rv == 0) {
        n->noop_pending = true;
    }
}

/* A data directory removed (or its identity file replaced) underneath a
 * running node: every write it acknowledges from now on would be lost at
 * the next start, so say so loudly and in the status. Checked every few
 * seconds: the identity file must be there, and the directory be the one
 * the node opened (its inode), which also catches a directory replaced. */
#define DATADIR_CHECK_MS 2000

static void check_datadir(struct jr_node *n)
{
    char path[4096];
    struct stat st;
    bool lost;
    uint64_t now = jr__now(n);
    if (now < n->datadir_checked_at + DATADIR_CHECK_MS) {
        return;
    }
    n->datadir_checked_at = now;
    /* The directory's own inode: the identity file inside is replaced by
     * rename whenever it changes (a join, a recovery), the directory is
     * not. */
    (void)snprintf(path, sizeof path, "%s/jacoraft.id", n->data_dir);
    lost = access(path, F_OK) != 0 || stat(n->data_dir, &st) != 0 ||
           (n->datadir_ino != 0 && (uint64_t)st.st_ino != n->datadir_ino);
    if (!lost && n->datadir_ino == 0) {
        n->datadir_ino = (uint64_t)st.st_ino;
    }
    if (lost && !n->datadir_lost) {
        jr__errorf(n,
                   "the data directory %s was removed or replaced while this "
                   "node runs: its state is no longer on disk and what it "
                   "stores from now on is lost at the next start; stop this "
                   "node, then wipe the directory and join it again with a "
                   "token (see jaco-recovery(7))",
                   n->data_dir);
    } else if (!lost && n->datadir_lost) {
        jr__warnf(n, "the data directory %s is back", n->data_dir);
    }
    n->datadir_lost = lost;
}

static void disk_transfer_cb(struct raft_transfer *req)
{
    (void)req;
}

/* A leader whose log writes fail with no space or an I/O error steps
 * down: it hands leadership to a caught-up voter if there is one. A lone
 * voter keeps leading (nobody else could) and its writes keep failing with
 * no_space until space is back. */
static void step_down_if_disk_failed(struct jr_node *n)
{
    /* A failed write, or one held until the disk has room (io.c). */
    int failed = n->disk_failed != 0 ? n->disk_failed : jr__io_disk_error(n);
    int rv;
    n->disk_failed = 0;
    if (failed == 0 || n->raft.state != RAFT_LEADER ||
        n->raft.transfer != NULL || n->transferring || n->stopping) {
        return;
    }
    n->disk_transfer.data = n;
    rv = raft_transfer(&n->raft, &n->disk_transfer, 0, disk_transfer_cb);
    if (rv == 0) {
        jr__warnf(n,
                  "this leader cannot write its log (%s): handing leadership "
                  "to another voter",
                  jr_strerror(failed));
    }
}

/* After a forced recovery: one snapshot at the next applied entry (the
 * threshold lowered to 1 until it is there), then the configured one. */
static void snapshot_after_recovery(struct jr_node *n)
{
    if (!n->snapshot_after_recovery) {
        return;
    }
    if (!n->recovery_snapshot_armed) {
        n->recovery_snapshot_armed = true;
        n->recovery_snapshot_from = n->raft.log.snapshot.last_index;
        raft_set_snapshot_threshold(&n->raft, 1);
        return;
    }
    if (n->raft.log.snapshot.last_index > n->recovery_snapshot_from) {
        raft_set_snapshot_threshold(&n->raft, n->cfg.snapshot_threshold);
        n->snapshot_after_recovery = false;
        jr__infof(n, "forced recovery: snapshot taken at index %llu",
                  (unsigned long long)n->raft.log.snapshot.last_index);
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct jr_node *n = t->data;
    raft_id leader;
    const char *address;
    check_datadir(n);
    step_down_if_disk_failed(n);
    snapshot_after_recovery(n);
    jr__sweep(n);
    jr__rpc_tick(n);
    jr__reconciler_tick(n);
    raft_leader(&n->raft, &leader, &address);
    if (leader != n->leader_seen) {
        if (leader != 0) {
            jr__infof(n, "leader is node %llu at %s (term %llu)%s",
                      (unsigned long long)leader, address,
                      (unsigned long long)n->raft.current_term,
                      leader == n->raft.id ? ": this node" : "");
            if (leader == n->raft.id) {
                commit_noop(n);
            }
        } else {
            /* why says "no leader: ..." or "quorum lost: ...". A lost
             * quorum needs the operator; an election does not. */
            char why[JR_ERRMSG_SIZE];
            int health = jr__health(n, why);
            jr__log(n, health == JR_EQUORUMLOST ? JR_LOG_WARN : JR_LOG_INFO,
                    "%s", why);
        }
        n->leader_seen = leader;
    }
    jr__deliver(n);
}

struct start_ctx {
    struct jr_node *n;
    struct jr__waiter w;
};

static void loop_main(void *arg)
{
    struct start_ctx *ctx = arg;
    struct jr_node *n = ctx->n;
    int rv;

    uv_mutex_lock(&n->mutex);
    n->loop_tid = uv_thread_self();
    uv_mutex_unlock(&n->mutex);

    rv = raft_start(&n->raft);
    if (rv != 0) {
        char msg[JR_ERRMSG_SIZE];
        jr__errf(msg, "start raft in %s: %s", n->raft_dir,
                 n->start_errmsg[0] != '\0' ? n->start_errmsg
                                            : raft_errmsg(&n->raft));
        n->raft_closed = false;
        raft_close(&n->raft, NULL);
        uv_close((uv_handle_t *)&n->tick, handle_closed_cb);
        uv_close((uv_handle_t *)&n->check, handle_closed_cb);
        uv_close((uv_handle_t *)&n->wakeup, handle_closed_cb);
        uv_close((uv_handle_t *)&n->watch, handle_closed_cb);
        (void)uv_run(&n->loop, UV_RUN_DEFAULT);
        jr__waiter_finish(&ctx->w, jr__err_from_raft(rv), msg);
        return;
    }
    (void)uv_timer_start(&n->tick, tick_cb, TICK_MS, TICK_MS);
    (void)uv_check_start(&n->check, check_cb);
    jr__loopwatch_start(n);
    uv_mutex_lock(&n->mutex);
    n->loop_running = true;
    uv_mutex_unlock(&n->mutex);
    jr__infof(n, "started: id %llu, address %s, cluster %s",
              (unsigned long long)n->cfg.id, n->address,
              n->cluster_id[0] != '\0' ? n->cluster_id : "(none yet)");
    jr__waiter_finish(&ctx->w, 0, NULL);
    /* ctx belongs to the starting thread from here on. */
    (void)uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_mutex_lock(&n->mutex);
    n->loop_running = false;
    n->closed = true;
    uv_mutex_unlock(&n->mutex);
}

/* ---- public lifecycle ---- */

static int check_config(const struct jr_config *in,
                        struct jr_config *cfg,
                        struct jr_error *err)
{
    size_t size;
    if (in == NULL ||
        in->size < offsetof(struct jr_config, fsm) + sizeof in->fsm ||
        in->version != JR_CONFIG_VERSION) {
        return jr__error_set(err, JR_EINVAL,
                             "config: not initialised with jr_config_init() "
                             "or from an incompatible version");
    }
    jr_config_init(cfg);
    size = in->size < sizeof *cfg ? in->size : sizeof *cfg;
    memcpy(cfg, in, size);
    cfg->size = sizeof *cfg;
    if (cfg->id == 0) {
        return jr__error_set(err, JR_EINVAL, "config: id must be > 0");
    }
    if (cfg->address == NULL || cfg->data_dir == NULL ||
        cfg->data_dir[0] == '\0') {
        return jr__error_set(err, JR_EINVAL,
                             "config: address and data_dir are required");
    }
    if (cfg->fsm == NULL || cfg->fsm->apply == NULL ||
        cfg->fsm->snapshot == NULL || cfg->fsm->restore == NULL) {
        return jr__error_set(err, JR_EINVAL,
                             "config: fsm with apply, snapshot and restore "
                             "is required");
    }
    if (cfg->election_timeout_ms < 2 * cfg->heartbeat_timeout_ms ||
        cfg->heartbeat_timeout_ms == 0) {
        return jr__error_set(err, JR_EINVAL,
                             "config: election timeout (%u ms) must be at "
                             "least twice the heartbeat timeout (%u ms)",
                             cfg->election_timeout_ms,
                             cfg->heartbeat_timeout_ms);
    }
    if (cfg->snapshot_threshold == 0 || cfg->apply_timeout_ms == 0) {
        return jr__error_set(err, JR_EINVAL,
                             "config: snapshot_threshold and "
                             "apply_timeout_ms must be > 0");
    }
    if (cfg->name != NULL && strlen(cfg->name) > 63) {
        return jr__error_set(err, JR_EINVAL,
                             "config: name longer than 63 bytes");
    }
    if (cfg->zone != NULL && strlen(cfg->zone) > 63) {
        return jr__error_set(err, JR_EINVAL,
                             "config: zone longer than 63 bytes");
    }
    return 0;
}

static void node_free(struct jr_node *n)
{
    sodium_memzero(n->secret, sizeof n->secret);
    jr__libstate_free(n);
    free(n->rc_reqp);
    free(n->name);
    free(n->zone);
    free(n->address);
    free(n->data_dir);
    free(n->raft_dir);
    free(n->contacts);
    free(n);
}

/* A restore (jr_backup_restore) that did not finish leaves its sentinel:
 * the directory is neither the old node nor the restored one. */
static bool restore_incomplete(const char *dir, struct jr_error *err)
{
    char path[4096];
    (void)snprintf(path, sizeof path, "%s/%s", dir, JR__RESTORE_SENTINEL);
    if (access(path, F_OK) != 0) {
        return false;
    }
    jr__error_set(err, JR_ESTATE,
                  "a restore into %s did not complete (%s is present): run "
                  "jaco restore --force again, or wipe the directory",
                  dir, path);
    return true;
}

int jr_node_open(const struct jr_config *in,
                 struct jr_node **out,
                 struct jr_error *err)
{
    struct jr_node *n;
    struct sockaddr_in sa;
    char msg[JR_ERRMSG_SIZE], name[32];
    int rv;

    n = calloc(1, sizeof *n);
    if (n == NULL) {
        return jr__error_set(err, JR_ENOMEM, "open: out of memory");
    }
    n->lock_fd = -1;
    rv = check_config(in, &n->cfg, err);
    if (rv != 0) {
        goto err_free;
    }
    rv = jr__parse_address(n->cfg.address, &sa, msg);
    if (rv != 0) {
        jr__error_set(err, rv, "config: %s", msg);
        goto err_free;
    }
    (void)snprintf(name, sizeof name, "node%llu",
                   (unsigned long long)n->cfg.id);
    n->fsm = *n->cfg.fsm;
    n->name = jr__strdup(n->cfg.name != NULL ? n->cfg.name : name);
    n->zone = jr__strdup(n->cfg.zone != NULL ? n->cfg.zone : "");
    n->address = jr__strdup(n->cfg.address);
    n->data_dir = jr__strdup(n->cfg.data_dir);
    n->raft_dir = malloc(strlen(n->cfg.data_dir) + 8);
    if (n->name == NULL || n->zone == NULL || n->address == NULL ||
        n->data_dir == NULL || n->raft_dir == NULL) {
        rv = jr__error_set(err, JR_ENOMEM, "open: out of memory");
        goto err_free;
    }
    sprintf(n->raft_dir, "%s/raft", n->data_dir);
    n->cfg.name = n->name;
    n->cfg.zone = n->zone;
    n->cfg.address = n->address;
    n->cfg.data_dir = n->data_dir;
    n->cfg.fsm = &n->fsm;

    rv = jr__datadir_lock(n->data_dir, &n->lock_fd, err);
    if (rv != 0) {
        goto err_free;
    }
    if (restore_incomplete(n->data_dir, err)) {
        rv = err != NULL ? err->code : JR_ESTATE;
        goto err_unlock;
    }
    rv = jr__meta_load(n->data_dir, &n->meta, err);
    if (rv == JR_ENOTFOUND) {
        memset(&n->meta, 0, sizeof n->meta);
        n->meta.node_id = n->cfg.id;
        (void)snprintf(n->meta.name, sizeof n->meta.name, "%s", n->name);
        rv = jr__meta_store(n->data_dir, &n->meta, err);
    } else if (rv == 0 && n->meta.node_id != n->cfg.id) {
        rv = jr__error_set(err, JR_EMISMATCH,
                           "data directory %s belongs to node id %llu, not "
                           "%llu: use that id, or another directory",
                           n->data_dir, (unsigned long long)n->meta.node_id,
                           (unsigned long long)n->cfg.id);
    }
    if (rv == 0 && n->meta.name[0] == '\0' && jr__meta_name_ok(n->name)) {
        /* A directory from before names were kept: add it (best effort,
         * it only serves jaco recover inspect). */
        struct jr__meta named = n->meta;
        (void)snprintf(named.name, sizeof named.name, "%s", n->name);
        if (jr__meta_store(n->data_dir, &named, NULL) == 0) {
            n->meta = named;
        }
    }
    if (rv != 0) {
        goto err_unlock;
    }
    memcpy(n->cluster_id, n->meta.cluster_id, sizeof n->cluster_id);
    if (sodium_init() < 0) {
        rv = jr__error_set(err, JR_EIO, "open: cannot initialise libsodium");
        goto err_unlock;
    }
    rv = jr__secret_load(n->data_dir, n->secret, msg);
    if (rv == 0) {
        n->has_secret = true;
    } else if (rv == JR_ENOTFOUND) {
        /* A node that is not a member yet gets it from bootstrap or join.
         * A member without one cannot talk to anyone: say so now. */
        if (n->meta.cluster_id[0] != '\0') {
            rv = jr__error_set(
                err, JR_ENOTFOUND,
                "%s/secret is missing: this node of cluster %s cannot prove "
                "it is a member; copy the file from another member (mode "
                "0600), or wipe the directory and join again",
                n->data_dir, n->meta.cluster_id);
            goto err_unlock;
        }
    } else {
        rv = jr__error_set(err, rv, "open: %s", msg);
        goto err_unlock;
    }
    if (mkdir(n->raft_dir, 0700) != 0 && errno != EEXIST) {
        rv = jr__error_set(err, jr__err_from_errno(errno), "create %s: %s",
                           n->raft_dir, strerror(errno));
        goto err_unlock;
    }

    if (uv_loop_init(&n->loop) != 0 || uv_mutex_init(&n->mutex) != 0) {
        rv = jr__error_set(err, JR_ENOMEM, "open: cannot create event loop");
        goto err_unlock;
    }
    jr__apply_init(n);
    rv = jr__rpc_init(n);
    if (rv != 0) {
        jr__error_set(err, rv, "open: out of memory");
        goto err_loop;
    }
    rv = jr__io_init(n, err);
    if (rv != 0) {
        goto err_loop;
    }
    jr__fsm_init(n);
    rv = raft_init(&n->raft, &n->io, &n->raft_fsm, n->cfg.id, n->address);
    if (rv != 0) {
        rv = jr__error_set(err, jr__err_from_raft(rv), "init raft: %s",
                           raft_errmsg(&n->raft));
        jr__io_close(n);
        goto err_loop;
    }
    n->raft.data = n;
    n->raft_initialised = true;
    raft_set_election_timeout(&n->raft, n->cfg.election_timeout_ms);
    raft_set_heartbeat_timeout(&n->raft, n->cfg.heartbeat_timeout_ms);
    raft_set_snapshot_threshold(&n->raft, n->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, n->cfg.snapshot_trailing);
    /* raft 0.15 waits this long for a snapshot install's answer before it
     * sends another (30 s by default): a member wiped and rejoined under
     * its old id waited that long to catch up. */
    raft_set_install_snapshot_timeout(&n->raft,
                                      n->cfg.election_timeout_ms * 5 > 5000
                                          ? n->cfg.election_timeout_ms * 5
                                          : 5000);
    /* Off by default in 0.15; without it a node that was partitioned away
     * disrupts the leader when it comes back (thesis 9.6). */
    raft_set_pre_vote(&n->raft, true);

    (void)uv_async_init(&n->loop, &n->wakeup, wakeup_cb);
    n->wakeup.data = n;
    (void)uv_check_init(&n->loop, &n->check);
    n->check.data = n;
    (void)uv_timer_init(&n->loop, &n->tick);
    n->tick.data = n;
    (void)jr__loopwatch_init(n);
    *out = n;
    return 0;

err_loop:
    free(n->rpc);
    uv_mutex_destroy(&n->mutex);
    (void)uv_loop_close(&n->loop);
err_unlock:
    jr__datadir_unlock(n->lock_fd);
err_free:
    node_free(n);
    return rv;
}

int jr_node_bootstrap(struct jr_node *n,
                      const struct jr_member *members,
                      unsigned count,
                      struct jr_error *err)
{
    struct raft_configuration conf;
    char digest[JR__CLUSTER_ID_LEN + 1];
    struct jr__meta meta;
    bool self = false;
    unsigned i;
    int rv;

    if (n->started) {
        return jr__error_set(err, JR_ESTATE,
                             "bootstrap: the node is already started");
    }
    if (members == NULL || count == 0 || count > 64) {
        return jr__error_set(err, JR_EINVAL,
                             "bootstrap: between 1 and 64 members needed");
    }
    raft_configuration_init(&conf);
    for (i = 0; i < count; i++) {
        struct sockaddr_in sa;
        char msg[JR_ERRMSG_SIZE];
        if (members[i].id == 0 || members[i].address == NULL ||
            jr__parse_address(members[i].address, &sa, msg) != 0) {
            raft_configuration_close(&conf);
            return jr__error_set(err, JR_EINVAL,
                                 "bootstrap: member %u has a bad id or "
                                 "address",
                                 i + 1);
        }
        if (members[i].id == n->cfg.id) {
            self = true;
            if (strcmp(members[i].address, n->address) != 0) {
                raft_configuration_close(&conf);
                return jr__error_set(
                    err, JR_EINVAL,
                    "bootstrap: member %llu is listed at %s but this node "
                    "listens on %s",
                    (unsigned long long)members[i].id, members[i].address,
                    n->address);
            }
        }
        rv = raft_configuration_add(&conf, members[i].id, members[i].address,
                                    RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return jr__error_set(err, JR_EINVAL,
                                 "bootstrap: member %llu at %s: %s",
                                 (unsigned long long)members[i].id,
                                 members[i].address, raft_strerror(rv));
        }
    }
    if (!self) {
        raft_configuration_close(&conf);
        return jr__error_set(err, JR_EINVAL,
                             "bootstrap: this node (id %llu) is not in the "
                             "member list",
                             (unsigned long long)n->cfg.id);
    }
    jr__members_digest(members, count, digest);
    if (n->meta.cluster_id[0] != '\0' &&
        strcmp(n->meta.bootstrap_digest, digest) != 0) {
        raft_configuration_close(&conf);
        return jr__error_set(
            err, JR_EMISMATCH,
            "bootstrap: %s already holds cluster %s%s; refusing to create "
            "another: start without bootstrapping, or use an empty data "
            "directory",
            n->data_dir, n->meta.cluster_id,
            n->meta.bootstrap_digest[0] != '\0'
                ? " bootstrapped with another member list"
                : "");
    }
    if (n->meta.cluster_id[0] == '\0' && !n->has_secret) {
        unsigned char secret[JR__SECRET_LEN];
        char msg[JR_ERRMSG_SIZE];
        if (count > 1) {
            /* Every member must hold the same secret before any of them
             * can talk: the operator hands it to all of them. */
            raft_configuration_close(&conf);
            return jr__error_set(
                err, JR_EINVAL,
                "bootstrap: a cluster of %u members needs a shared cluster "
                "secret on every member first (jr_node_set_secret; jacod: "
                "secret-file)",
                count);
        }
        /* Secret before identity: a member without one cannot start. */
        rv = jr__secret_generate(secret);
        if (rv == 0) {
            rv = jr__secret_save(n->data_dir, secret, msg);
        }
        if (rv != 0) {
            raft_configuration_close(&conf);
            sodium_memzero(secret, sizeof secret);
            return jr__error_set(err, rv, "bootstrap: %s", msg);
        }
        uv_mutex_lock(&n->mutex);
        memcpy(n->secret, secret, sizeof secret);
        n->has_secret = true;
        uv_mutex_unlock(&n->mutex);
        sodium_memzero(secret, sizeof secret);
    }
    if (n->meta.cluster_id[0] == '\0') {
        meta = n->meta;
        if (count == 1) {
            jr__cluster_id_random(meta.cluster_id);
        } else {
            memcpy(meta.cluster_id, digest, sizeof digest);
        }
        memcpy(meta.bootstrap_digest, digest, sizeof digest);
        /* Identity first: a crash before raft_bootstrap is repaired by
         * bootstrapping again with the same list. */
        rv = jr__meta_store(n->data_dir, &meta, err);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return rv;
        }
        n->meta = meta;
        memcpy(n->cluster_id, meta.cluster_id, sizeof n->cluster_id);
    }
    rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return 0; /* same list, already done */
    }
    if (rv != 0) {
        return jr__error_set(err, jr__err_from_raft(rv), "bootstrap: %s",
                             raft_errmsg(&n->raft));
    }
    jr__infof(n, "bootstrapped cluster %s with %u voter(s)", n->cluster_id,
              count);
    return 0;
}

int jr__secret_install(struct jr_node *n,
                       const unsigned char *secret,
                       struct jr_error *err)
{
    char msg[JR_ERRMSG_SIZE];
    unsigned char have[JR_SECRET_SIZE];
    int rv;
    if (jr__secret_copy(n, have)) {
        rv = sodium_memcmp(have, secret, JR_SECRET_SIZE);
        sodium_memzero(have, sizeof have);
        if (rv == 0) {
            return 0;
        }
        return jr__error_set(err, JR_EMISMATCH,
                             "%s/secret holds another cluster secret; "
                             "refusing to replace it",
                             n->data_dir);
    }
    rv = jr__secret_save(n->data_dir, secret, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "%s", msg);
    }
    uv_mutex_lock(&n->mutex);
    memcpy(n->secret, secret, JR_SECRET_SIZE);
    n->has_secret = true;
    uv_mutex_unlock(&n->mutex);
    return 0;
}

int jr_node_set_secret(struct jr_node *n,
                       const unsigned char *secret,
                       size_t len,
                       struct jr_error *err)
{
    if (n == NULL || secret == NULL || len != JR_SECRET_SIZE) {
        return jr__error_set(err, JR_EINVAL,
                             "set secret: the secret is %d bytes",
                             JR_SECRET_SIZE);
    }
    if (n->started) {
        return jr__error_set(err, JR_ESTATE,
                             "set secret: the node is already started");
    }
    return jr__secret_install(n, secret, err);
}

int jr_node_start(struct jr_node *n, struct jr_error *err)
{
    struct start_ctx ctx;
    int rv;
    if (n->started) {
        return jr__error_set(err, JR_ESTATE, "start: already started");
    }
    /* A forced configuration (raft/peers.json) goes into the log before
     * raft loads it. */
    rv = jr__recover_ingest(n, err);
    if (rv == 0) {
        rv = jr__sync_resume(n, err);
    }
    if (rv != 0) {
        return rv;
    }
    ctx.n = n;
    jr__waiter_init(&ctx.w);
    rv = uv_thread_create(&n->thread, loop_main, &ctx);
    if (rv != 0) {
        jr__waiter_close(&ctx.w);
        return jr__error_set(err, JR_ENOMEM, "start: cannot create thread");
    }
    (void)jr__waiter_wait(&ctx.w, 0);
    rv = ctx.w.status;
    if (rv != 0) {
        jr__error_set(err, rv, "%s", ctx.w.errmsg);
        (void)uv_thread_join(&n->thread);
        n->raft_initialised = false;
        n->closed = true;
    } else {
        n->started = true;
    }
    jr__waiter_close(&ctx.w);
    return rv;
}

int jr_node_stop(struct jr_node *n)
{
    bool join;
    if (jr__on_loop_thread(n)) {
        return JR_EDEADLK;
    }
    uv_mutex_lock(&n->mutex);
    join = n->started && !n->stopping;
    n->stopping = true;
    uv_mutex_unlock(&n->mutex);
    if (!join) {
        return 0;
    }
    (void)uv_async_send(&n->wakeup);
    (void)uv_thread_join(&n->thread);
    return 0;
}

void jr_node_close(struct jr_node *n)
{
    if (n == NULL) {
        return;
    }
    (void)jr_node_stop(n);
    if (!n->started && !n->closed) {
        /* Opened but never started: raft and the handles still need the
         * loop to close. */
        raft_close(&n->raft, NULL);
        uv_close((uv_handle_t *)&n->tick, handle_closed_cb);
        uv_close((uv_handle_t *)&n->check, handle_closed_cb);
        uv_close((uv_handle_t *)&n->wakeup, handle_closed_cb);
        uv_close((uv_handle_t *)&n->watch, handle_closed_cb);
        (void)uv_run(&n->loop, UV_RUN_DEFAULT);
    }
    jr__rpc_close(n);
    (void)uv_run(&n->loop, UV_RUN_DEFAULT);
    {
        void jr__rpc_free(struct jr_node * node);
        jr__rpc_free(n);
    }
    jr__io_close(n);
    if (uv_loop_close(&n->loop) != 0) {
        jr__warnf(n, "close: event loop still has open handles");
    }
    uv_mutex_destroy(&n->mutex);
    jr__datadir_unlock(n->lock_fd);
    node_free(n);
}

uint64_t jr_node_id(const struct jr_node *n)
{
    return n->cfg.id;
}

const char *jr_node_cluster_id(struct jr_node *n)
{
    /* Written once, before start or by join under the mutex; a torn read
     * is impossible after the call that set it has returned. */
    return n->cluster_id;
}
