/* io.c: libjacoraft's own raft_io: the log store (logstore.c), the snapshot
 * store (snapstore.c), term and vote (metastore.c) and the library's
 * connections (rpc.c), on the node's libuv loop. Disk work never runs on the
 * loop thread except the rare term/vote update, which raft requires to be
 * durable before it goes on (Figure 3.1). */
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"
#include "logstore.h"
#include "metastore.h"
#include "snapstore.h"

#define SEGMENT_SIZE (8u << 20)
#define SNAPSHOTS_KEPT 2
#define JR__INSTALLS_TRACKED 16

struct io_state {
    struct jr_node *node;
    struct jr__logstore *log;
    struct jr__raft_meta meta;
    uv_timer_t tick;
    unsigned tick_ms;
    uint64_t rand_state;
    unsigned work_pending;  /* snapshot puts/gets and async work in flight */
    unsigned snapshot_gets; /* snapshots being read to be sent */
    /* Followers sent a snapshot, until they answer it (see
     * jr__io_stale_rejection). */
    struct {
        raft_id id;
        uint64_t until_ms;
    } installing[JR__INSTALLS_TRACKED];
    unsigned appends_in_flight;
    struct append_req *failed; /* held failures, newest first */
    bool closing;
    raft_io_close_cb close_cb;
};

static struct io_state *state_of(struct raft_io *io)
{
    return ((struct jr_node *)io->impl)->io_state;
}

int jr__io_disk_error(struct jr_node *n)
{
    int held = n->io_state != NULL && n->io_state->log != NULL
                   ? jr__logstore_held_error(n->io_state->log)
                   : 0;
    return held != 0 ? held : n->append_error;
}

void jr__io_cork(struct jr_node *n, bool cork)
{
    if (n->io_state != NULL && n->io_state->log != NULL) {
        jr__logstore_cork(n->io_state->log, cork);
    }
}

static int raft_code(int jr_code)
{
    switch (jr_code) {
        case 0: return 0;
        case JR_ENOMEM: return RAFT_NOMEM;
        case JR_ENOSPACE: return RAFT_NOSPACE;
        case JR_ECORRUPT: return RAFT_CORRUPT;
        case JR_ECANCELED: return RAFT_CANCELED;
        case JR_ENOTFOUND: return RAFT_NOTFOUND;
        case JR_EINVAL: return RAFT_INVALID;
        default: return RAFT_IOERR;
    }
}

static void store_log(void *data, int level, const char *msg)
{
    jr__log(data, level, "%s", msg);
}

static int open_log(struct jr_node *n, struct jr__logstore **out, char *errmsg)
{
    struct jr__logstore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = n->raft_dir;
    cfg.segment_size = SEGMENT_SIZE;
    cfg.log = store_log;
    cfg.log_data = n;
    return jr__logstore_open(&n->loop, &cfg, out, errmsg);
}

/* ---- init, load, bootstrap, recover ---- */

static int io_init(struct raft_io *io, raft_id id, const char *address)
{
    (void)io;
    (void)id;
    (void)address;
    return 0;
}

/* Run the loop until *done: only before the node's thread runs it (open,
 * bootstrap, recover happen on the caller's thread then). */
static void run_until(struct jr_node *n, const bool *done)
{
    while (!*done) {
        (void)uv_run(&n->loop, UV_RUN_ONCE);
    }
}

struct sync_op {
    bool done;
    int status;
    char errmsg[JR_ERRMSG_SIZE];
};

static void sync_cb(void *arg, int status, const char *errmsg)
{
    struct sync_op *op = arg;
    op->status = status;
    (void)snprintf(op->errmsg, sizeof op->errmsg, "%s",
                   errmsg != NULL ? errmsg : "");
    op->done = true;
}

static void sync_close_cb(void *arg)
{
    *(bool *)arg = true;
}

/* Append one configuration entry to the log on disk, outside of raft
 * (bootstrap and recover). expect_empty: refuse a log that has entries. */
static int append_configuration(struct jr_node *n,
                                const struct raft_configuration *conf,
                                uint64_t term,
                                bool expect_empty,
                                char *errmsg)
{
    struct jr__logstore *log;
    struct raft_entry *entries = NULL, entry;
    struct sync_op op = {false, 0, ""};
    size_t n_entries = 0;
    uint64_t start;
    bool closed = false;
    int rv;

    rv = open_log(n, &log, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = jr__logstore_load(log, &start, &entries, &n_entries, errmsg);
    if (rv != 0) {
        goto out;
    }
    jr__logstore_entries_free(entries, n_entries);
    if (expect_empty && jr__logstore_last_index(log) != 0) {
        jr__errf(errmsg, "the raft log in %s is not empty", n->raft_dir);
        rv = JR_ESTATE;
        goto out;
    }
    entry.term = term;
    entry.type = RAFT_CHANGE;
    entry.batch = NULL;
    rv = raft_configuration_encode(conf, &entry.buf);
    if (rv != 0) {
        rv = JR_ENOMEM;
        goto out;
    }
    rv = jr__logstore_append(log, jr__logstore_last_index(log) + 1, &entry, 1,
                             sync_cb, &op);
    if (rv == 0) {
        run_until(n, &op.done);
        rv = op.status;
        if (rv != 0) {
            jr__errf(errmsg, "%s", op.errmsg);
        }
    }
    raft_free(entry.buf.base);
out:
    jr__logstore_close(log, sync_close_cb, &closed);
    run_until(n, &closed);
    return rv;
}

static int io_bootstrap(struct raft_io *io, const struct raft_configuration *c)
{
    struct io_state *s = state_of(io);
    struct jr_node *n = s->node;
    struct jr__raft_meta meta;
    char errmsg[JR_ERRMSG_SIZE];
    int rv;
    rv = jr__metastore_load(n->raft_dir, &meta, errmsg);
    if (rv == 0 && meta.term != 0) {
        return RAFT_CANTBOOTSTRAP;
    }
    if (rv == 0) {
        rv = append_configuration(n, c, 1, true, errmsg);
        if (rv == JR_ESTATE) {
            return RAFT_CANTBOOTSTRAP;
        }
    }
    if (rv == 0) {
        /* Term 1 last: a crash before it leaves a log whose bootstrap is
         * simply done again. */
        meta.term = 1;
        meta.vote = 0;
        rv = jr__metastore_store(n->raft_dir, &meta, errmsg);
    }
    if (rv != 0) {
        (void)snprintf(io->errmsg, sizeof io->errmsg, "%s", errmsg);
        return raft_code(rv);
    }
    s->meta = meta;
    return 0;
}

static int io_recover(struct raft_io *io, const struct raft_configuration *c)
{
    struct io_state *s = state_of(io);
    struct jr_node *n = s->node;
    struct jr__raft_meta meta;
    char errmsg[JR_ERRMSG_SIZE];
    int rv = jr__metastore_load(n->raft_dir, &meta, errmsg);
    if (rv == 0) {
        rv = append_configuration(n, c, meta.term > 0 ? meta.term : 1, false,
                                  errmsg);
    }
    if (rv != 0) {
        (void)snprintf(io->errmsg, sizeof io->errmsg, "%s", errmsg);
        return raft_code(rv);
    }
    return 0;
}

/* The newest snapshot, its state decoded or (packed, to be sent) as the
 * lz4 frame of its file (snapstore.h). */
static int load_snapshot(struct jr_node *n,
                         struct raft_snapshot **out,
                         bool packed,
                         char *errmsg)
{
    struct jr__snapshot_info info;
    struct raft_snapshot *snap;
    struct raft_buffer data;
    int rv;
    *out = NULL;
    rv = jr__snapstore_latest(n->raft_dir, &info, errmsg);
    if (rv == JR_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    rv = packed ? jr__snapstore_read_packed(n->raft_dir, &info, &data, errmsg)
                : jr__snapstore_read(n->raft_dir, &info, &data, errmsg);
    if (rv != 0) {
        raft_configuration_close(&info.conf);
        return rv;
    }
    snap = raft_calloc(1, sizeof *snap);
    if (snap == NULL ||
        (snap->bufs = raft_malloc(sizeof *snap->bufs)) == NULL) {
        raft_free(snap);
        raft_free(data.base);
        raft_configuration_close(&info.conf);
        return JR_ENOMEM;
    }
    snap->index = info.index;
    snap->term = info.term;
    snap->configuration = info.conf;
    snap->configuration_index = info.conf_index;
    snap->bufs[0] = data;
    snap->n_bufs = 1;
    *out = snap;
    return 0;
}

static void snapshot_free(struct raft_snapshot *snap)
{
    unsigned i;
    if (snap == NULL) {
        return;
    }
    raft_configuration_close(&snap->configuration);
    for (i = 0; i < snap->n_bufs; i++) {
        raft_free(snap->bufs[i].base);
    }
    raft_free(snap->bufs);
    raft_free(snap);
}

static int io_load(struct raft_io *io,
                   raft_term *term,
                   raft_id *voted_for,
                   struct raft_snapshot **snapshot,
                   raft_index *start_index,
                   struct raft_entry *entries[],
                   size_t *n_entries)
{
    struct io_state *s = state_of(io);
    struct jr_node *n = s->node;
    char errmsg[JR_ERRMSG_SIZE];
    uint64_t start;
    int rv;

    rv = jr__metastore_load(n->raft_dir, &s->meta, errmsg);
    if (rv == 0) {
        rv = load_snapshot(n, snapshot, false, errmsg);
    }
    if (rv == 0) {
        rv = open_log(n, &s->log, errmsg);
    }
    if (rv == 0) {
        rv = jr__logstore_load(s->log, &start, entries, n_entries, errmsg);
        if (rv != 0) {
            snapshot_free(*snapshot);
            *snapshot = NULL;
        }
    }
    if (rv == 0 && *snapshot != NULL && *n_entries > 0 &&
        start > (*snapshot)->index + 1) {
        jr__errf(errmsg,
                 "the log in %s starts at index %llu, after the snapshot at "
                 "%llu: entries are missing; wipe the data directory and "
                 "rejoin the node",
                 n->raft_dir, (unsigned long long)start,
                 (unsigned long long)(*snapshot)->index);
        jr__logstore_entries_free(*entries, *n_entries);
        snapshot_free(*snapshot);
        *snapshot = NULL;
        rv = JR_ECORRUPT;
    }
    if (rv == 0 && *snapshot != NULL && *n_entries > 0 &&
        start + *n_entries - 1 < (*snapshot)->index) {
        /* A log cut short on disk below the snapshot: every entry it still
         * has is in the snapshot. Appends come after the snapshot, so the
         * log must restart there (else every append would be refused). */
        struct sync_op op = {false, 0, ""};
        jr__warnf(n,
                  "the log in %s ends at index %llu, before the snapshot at "
                  "%llu: it was cut short on disk; its entries are all in "
                  "the snapshot, and the log restarts after it",
                  n->raft_dir, (unsigned long long)(start + *n_entries - 1),
                  (unsigned long long)(*snapshot)->index);
        jr__logstore_entries_free(*entries, *n_entries);
        *entries = NULL;
        *n_entries = 0;
        rv = jr__logstore_reset(s->log, (*snapshot)->index + 1, sync_cb, &op);
        if (rv == 0) {
            run_until(n, &op.done);
            rv = op.status;
            if (rv != 0) {
                jr__errf(errmsg, "%s", op.errmsg);
            }
        }
        if (rv != 0) {
            snapshot_free(*snapshot);
            *snapshot = NULL;
        }
    }
    if (rv != 0) {
        (void)snprintf(io->errmsg, sizeof io->errmsg, "%s", errmsg);
        jr__errorf(n, "%s", errmsg);
        return raft_code(rv);
    }
    if (*n_entries == 0 && *snapshot != NULL) {
        start = (*snapshot)->index + 1;
    }
    *term = s->meta.term;
    *voted_for = s->meta.vote;
    *start_index = start;
    return 0;
}

/* ---- start, tick, time, random ---- */

/* Whether a voter other than this node is in the configuration. */
static bool other_voters(const struct raft *r)
{
    unsigned i;
    for (i = 0; i < r->configuration.n; i++) {
        if (r->configuration.servers[i].role == RAFT_VOTER &&
            r->configuration.servers[i].id != r->id) {
            return true;
        }
    }
    return false;
}

/* The log store holds writes through a full or failing disk (see
 * jr__logstore_hold) on a follower, and on a leader with other voters.
 * raft 0.15 reacts to a leader's failed append by cutting the entries from
 * its in-memory log although it has already sent them to the followers,
 * which may commit them; it then reuses their indexes, in the same term,
 * for new entries, and asks for a snapshot to send for the gap (its
 * src/replication.c, appendLeaderCb: logTruncate on failure; raft_fixture
 * can only fail an append synchronously, so no unit test pins it, and
 * t_disk_full_leader shows the effect). A held write keeps the log whole: the
 * followers' stored copies commit the entries, and the leader hands
 * leadership over (node.c). Only a lone voter fails its writes, so that
 * its clients hear no_space at once: nobody else could commit them.
 * Set before every write and after every tick (roles change on ticks). */
static void hold_update(struct jr_node *n)
{
    bool hold = n->raft.state == RAFT_FOLLOWER ||
                (n->raft.state == RAFT_LEADER && other_voters(&n->raft));
    jr__logstore_hold(n->io_state->log, hold);
}

static void tick_cb(uv_timer_t *t)
{
    struct jr_node *n = t->data;
    raft_id leader = n->raft.state == RAFT_FOLLOWER
                         ? n->raft.follower_state.current_leader.id
                         : 0;
    if (jr__leaderwatch_silence(&n->raft, uv_now(&n->loop))) {
        jr__infof(n,
                  "no word from leader node %llu for an election timeout "
                  "(%u ms): this node now grants votes for its successor",
                  (unsigned long long)leader, n->raft.election_timeout);
    }
    n->io_tick_cb(&n->io);
    hold_update(n);
}

static int io_start(struct raft_io *io,
                    unsigned msecs,
                    raft_io_tick_cb tick,
                    raft_io_recv_cb recv)
{
    struct io_state *s = state_of(io);
    struct jr_node *n = s->node;
    char errmsg[JR_ERRMSG_SIZE];
    int rv;
    n->io_tick_cb = tick;
    n->io_recv_cb = recv;
    rv = jr__transport_listen(n, errmsg);
    if (rv != 0) {
        jr__errf(n->start_errmsg, "%s", errmsg);
        return RAFT_IOERR;
    }
    s->tick.data = n;
    (void)uv_timer_start(&s->tick, tick_cb, msecs, msecs);
    return 0;
}

static raft_time io_time(struct raft_io *io)
{
    return uv_now(&state_of(io)->node->loop);
}

static int io_random(struct raft_io *io, int min, int max)
{
    struct io_state *s = state_of(io);
    /* xorshift64: election timeouts only need to differ between nodes. */
    s->rand_state ^= s->rand_state << 13;
    s->rand_state ^= s->rand_state >> 7;
    s->rand_state ^= s->rand_state << 17;
    return min + (int)(s->rand_state % (uint64_t)(max - min + 1));
}

/* ---- term and vote ---- */

static int store_meta(struct raft_io *io, const struct jr__raft_meta *m)
{
    struct io_state *s = state_of(io);
    char errmsg[JR_ERRMSG_SIZE];
    int rv = jr__metastore_store(s->node->raft_dir, m, errmsg);
    if (rv != 0) {
        (void)snprintf(io->errmsg, sizeof io->errmsg, "%s", errmsg);
        jr__errorf(s->node, "%s", errmsg);
        return raft_code(rv);
    }
    s->meta = *m;
    return 0;
}

static int io_set_term(struct raft_io *io, raft_term term)
{
    struct jr__raft_meta m = {term, 0};
    return store_meta(io, &m);
}

static int io_set_vote(struct raft_io *io, raft_id id)
{
    struct jr__raft_meta m = state_of(io)->meta;
    m.vote = id;
    return store_meta(io, &m);
}

/* ---- network ---- */

/* A snapshot goes to follower id: its heartbeat rejections are stale until
 * it answers the install, or for the install timeout. */
static void install_begin(struct io_state *s, raft_id id)
{
    uint64_t until =
        uv_now(&s->node->loop) + s->node->raft.install_snapshot_timeout;
    unsigned i, slot = 0;
    /* Its own slot, else the one that expires first (an empty one). */
    for (i = 0; i < JR__INSTALLS_TRACKED; i++) {
        if (s->installing[i].id == id) {
            slot = i;
            break;
        }
        if (s->installing[i].until_ms < s->installing[slot].until_ms) {
            slot = i;
        }
    }
    s->installing[slot].id = id;
    s->installing[slot].until_ms = until;
}

/* raft 0.15 keeps a follower's match index from before the follower lost
 * its log (a wiped data directory), and counts the install's answer, which
 * reports the snapshot's index, as progress only if it is past that: the
 * leader stayed in snapshot mode, sending the follower nothing more, until
 * the install timed out (5 s). A follower sent a snapshot holds no entry
 * the leader still has (that is why it gets one): it matches nothing until
 * it answers. Lowering a match index delays no commit that its answer
 * would not have held up anyway. */
static void install_forget_match(struct jr_node *n, raft_id id)
{
    struct raft *r = &n->raft;
    unsigned i;
    if (r->state != RAFT_LEADER) {
        return;
    }
    for (i = 0; i < r->configuration.n; i++) {
        if (r->configuration.servers[i].id == id) {
            r->leader_state.progress[i].match_index = 0;
        }
    }
}

bool jr__io_stale_rejection(struct jr_node *n, const struct raft_message *m)
{
    struct io_state *s = n->io_state;
    const struct raft_append_entries_result *r = &m->append_entries_result;
    uint64_t now;
    unsigned i;
    bool installing = false;
    if (s == NULL || m->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
        n->raft.state != RAFT_LEADER) {
        return false;
    }
    now = uv_now(&n->loop);
    for (i = 0; i < JR__INSTALLS_TRACKED; i++) {
        if (s->installing[i].id == m->server_id &&
            s->installing[i].until_ms > now) {
            if (r->rejected == 0) {
                s->installing[i].id = 0; /* answered */
                return false;
            }
            installing = true;
        }
    }
    /* raft 0.15 (progressMaybeDecrement) takes a rejection of the index its
     * snapshot ends at, from a follower it is sending that snapshot to, as
     * the follower refusing the snapshot, and aborts the send. An idle
     * leader's heartbeats carry exactly that index (its last entry is its
     * snapshot's), and a follower that has not installed the snapshot yet
     * rejects every one: the leader aborted each snapshot while reading it
     * (a large state takes longer than a heartbeat interval) and the
     * follower never caught up (t_crash). Such a rejection says nothing the
     * install's answer will not: drop it while a snapshot is being read or
     * is on its way to that follower. */
    return r->rejected > 0 && r->rejected == n->raft.log.snapshot.last_index &&
           (installing || s->snapshot_gets > 0);
}

static int io_send(struct raft_io *io,
                   struct raft_io_send *req,
                   const struct raft_message *m,
                   raft_io_send_cb cb)
{
    struct jr_node *n = io->impl;
    struct raft_message capped;
    if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        install_begin(n->io_state, m->server_id);
        install_forget_match(n, m->server_id);
    }
    /* Only answers sent while raft handles an AppendEntries are copied. */
    if (n->staletail.open && m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
        capped = *m;
        if (jr__staletail_cap(&n->staletail, &capped)) {
            jr__debugf(
                n,
                "AppendEntries answer to node %llu capped from index "
                "%llu to %llu: the rest of this log is unchecked",
                (unsigned long long)m->server_id,
                (unsigned long long)m->append_entries_result.last_log_index,
                (unsigned long long)
                    capped.append_entries_result.last_log_index);
            m = &capped;
        }
    }
    /* raft 0.15 answers a snapshot install once it is on disk, addressing
     * the answer from follower_state even if the node has become a
     * candidate meanwhile: the id and address are then other union members
     * (a pointer and two flags), and reading them crashed (t_crash, seed
     * 32451). A candidate also legitimately rejects a stale leader's
     * AppendEntries, which must get through (the leader learns the higher
     * term from it). So, outside the follower state, an AppendEntries
     * result goes out only to a member of the configuration, at the
     * address the configuration has for it, never through the message's
     * pointer. A follower that has forgotten its leader (leaderwatch.c)
     * addresses it to node 0, which is in no configuration: it fails. */
    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
        (n->raft.state != RAFT_FOLLOWER || m->server_address == NULL)) {
        const struct raft_configuration *conf = &n->raft.configuration;
        struct raft_message copy;
        unsigned i;
        for (i = 0; i < conf->n; i++) {
            if (conf->servers[i].id == m->server_id) {
                copy = *m;
                copy.server_address = conf->servers[i].address;
                return jr__rpc_send_raft(n, req, &copy, cb);
            }
        }
        /* Through the callback, never at once (see jr__rpc_send_failed). */
        return jr__rpc_send_failed(n, req, cb);
    }
    return jr__rpc_send_raft(n, req, m, cb);
}

/* ---- the log ---- */

struct append_req {
    struct raft_io_append *req;
    raft_io_append_cb cb;
    struct jr_node *node;
    bool leader; /* counted in leader_appends (see jr__close_raft) */
    int status;
    struct append_req *next_failed;
};

static void append_finish(struct append_req *a, int status)
{
    struct jr_node *n = a->node;
    struct raft_io_append *req = a->req;
    raft_io_append_cb cb = a->cb;
    bool leader = a->leader;
    raft_free(a);
    if (leader) {
        n->leader_appends--;
    }
    if (leader && (status == JR_ENOSPACE || status == JR_EIO)) {
        /* A leader that cannot write its log hands leadership over (next
         * tick, outside raft's callbacks): a healthy voter can go on. */
        n->disk_failed = status;
    }
    if (status == 0 || status == JR_ENOSPACE || status == JR_EIO) {
        n->append_error = status;
    }
    cb(req, raft_code(status));
    if (leader && n->leader_appends == 0) {
        jr__appends_drained(n);
    }
}

/* When a write fails, every append queued behind it fails too. raft 0.15
 * truncates its log from a failed append's first index when told of it, so
 * hearing of them in submission order makes it truncate past the end of its
 * log and crash (canonical/raft#352). The failures are held until nothing
 * is in flight, then reported newest first: each truncation then stays
 * inside the log. */
static void append_cb(void *arg, int status, const char *errmsg)
{
    struct append_req *a = arg;
    struct io_state *s = a->node->io_state;
    s->appends_in_flight--;
    if (status == 0 && s->failed == NULL) {
        append_finish(a, 0);
        return;
    }
    if (status != 0) {
        jr__errorf(a->node, "%s", errmsg);
    }
    a->status = status != 0 ? status : JR_EIO;
    a->next_failed = s->failed;
    s->failed = a;
    if (s->appends_in_flight > 0) {
        return;
    }
    while (s->failed != NULL) {
        struct append_req *f = s->failed;
        s->failed = f->next_failed;
        append_finish(f, f->status);
    }
}

static int io_append(struct raft_io *io,
                     struct raft_io_append *req,
                     const struct raft_entry entries[],
                     unsigned count,
                     raft_io_append_cb cb)
{
    struct io_state *s = state_of(io);
    struct jr_node *n = s->node;
    struct append_req *a = raft_malloc(sizeof *a);
    int rv;
    if (a == NULL) {
        return RAFT_NOMEM;
    }
    a->req = req;
    a->cb = cb;
    a->node = n;
    a->leader = n->raft.state == RAFT_LEADER;
    hold_update(n);
    /* The store knows where the next entry goes, also after a failed write
     * that raft has dropped from its log. */
    rv = jr__logstore_append(s->log, jr__logstore_next_index(s->log), entries,
                             count, append_cb, a);
    if (rv != 0) {
        raft_free(a);
        return raft_code(rv);
    }
    if (a->leader) {
        n->leader_appends++;
    }
    s->appends_in_flight++;
    return 0;
}

static void truncate_cb(void *arg, int status, const char *errmsg)
{
    struct jr_node *n = arg;
    if (status != 0) {
        jr__errorf(n, "truncate the log: %s", errmsg);
    }
}

static int io_truncate(struct raft_io *io, raft_index index)
{
    struct io_state *s = state_of(io);
    int rv;
    hold_update(s->node);
    rv = jr__logstore_truncate(s->log, index, truncate_cb, s->node);
    if (rv != 0) {
        return raft_code(rv);
    }
    return 0;
}

/* ---- snapshots ---- */

static void close_step(struct io_state *s);

/* A worker-thread job is over and raft has been told. */
static void work_done(struct io_state *s)
{
    s->work_pending--;
    if (s->closing) {
        close_step(s);
    }
}

struct put_req {
    uv_work_t work;
    struct jr_node *node;
    struct raft_io_snapshot_put *req;
    raft_io_snapshot_put_cb cb;
    const struct raft_snapshot *snapshot;
    unsigned trailing;
    bool install;             /* from the leader, not taken here */
    struct raft_buffer state; /* an install's, decoded */
    uint64_t started;         /* loop time */
    int status;
    char errmsg[JR_ERRMSG_SIZE];
};

static void put_work(uv_work_t *w)
{
    struct put_req *p = w->data;
    struct jr__snapshot_info info;
    memset(&info, 0, sizeof info);
    info.index = p->snapshot->index;
    info.term = p->snapshot->term;
    info.conf_index = p->snapshot->configuration_index;
    info.conf = p->snapshot->configuration;
    if (p->install && p->snapshot->n_bufs == 1 &&
        jr__snapstore_is_packed(&p->snapshot->bufs[0])) {
        p->status =
            jr__snapstore_install(p->node->raft_dir, &info, p->snapshot->bufs,
                                  SNAPSHOTS_KEPT, &p->state, p->errmsg);
        return;
    }
    /* A state: taken here, or sent by a leader of an earlier version. */
    p->status =
        jr__snapstore_put(p->node->raft_dir, &info, p->snapshot->bufs,
                          p->snapshot->n_bufs, SNAPSHOTS_KEPT, p->errmsg);
}

static void put_finish(struct put_req *p, int status)
{
    struct jr_node *n = p->node;
    struct raft_io_snapshot_put *req = p->req;
    raft_io_snapshot_put_cb cb = p->cb;
    raft_free(p);
    cb(req, raft_code(status));
    work_done(n->io_state);
}

static void put_reset_cb(void *arg, int status, const char *errmsg)
{
    struct put_req *p = arg;
    if (status != 0) {
        jr__errorf(p->node, "discard the log after a snapshot install: %s",
                   errmsg);
    }
    put_finish(p, status);
}

static void put_after_work(uv_work_t *w, int uv_status)
{
    struct put_req *p = w->data;
    struct jr_node *n = p->node;
    struct io_state *s = n->io_state;
    uint64_t index = p->snapshot->index;
    int rv;
    if (uv_status != 0 && p->status == 0) {
        p->status = JR_ECANCELED;
    }
    if (p->status != 0) {
        jr__errorf(n, "snapshot at index %llu: %s", (unsigned long long)index,
                   p->errmsg);
        raft_free(p->state.base);
        put_finish(p, p->status);
        return;
    }
    if (p->state.base != NULL) {
        /* raft restores bufs[0] once we are done: the decoded state in
         * place of the frame it gave us (the snapshot is raft's request's
         * own, and only raft and we hold it). */
        struct raft_buffer *buf =
            &((struct raft_snapshot *)p->snapshot)->bufs[0];
        raft_free(buf->base);
        *buf = p->state;
        p->state.base = NULL;
    }
    jr__debugf(n, "stored the snapshot at index %llu in %llu ms",
               (unsigned long long)index,
               (unsigned long long)(jr__now(n) - p->started));
    if (p->install) {
        /* Installed from the leader: the log before it is discarded. */
        hold_update(n);
        rv = jr__logstore_reset(s->log, index + 1, put_reset_cb, p);
        if (rv != 0) {
            put_finish(p, rv);
            return;
        }
        return;
    }
    if (index > p->trailing) {
        jr__logstore_compact(s->log, index - p->trailing + 1);
    }
    put_finish(p, 0);
}

static int io_snapshot_put(struct raft_io *io,
                           unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb)
{
    struct io_state *s = state_of(io);
    struct put_req *p = raft_calloc(1, sizeof *p);
    int rv;
    if (p == NULL) {
        return RAFT_NOMEM;
    }
    p->node = s->node;
    p->req = req;
    p->cb = cb;
    p->snapshot = snapshot;
    p->trailing = trailing;
    /* raft 0.15 installs with trailing 0, which it also passes for the
     * snapshots it takes when configured to keep no entries: those it puts
     * from raft.snapshot.pending, the others from a request of its own. */
    p->install = trailing == 0 && snapshot != &s->node->raft.snapshot.pending;
    p->started = jr__now(s->node);
    p->work.data = p;
    if (p->install) {
        /* An install from the leader: until the state machine has restored
         * it, the directory is partially synced (recover.c). */
        jr__sync_sentinel_set(s->node);
    }
    /* Written by a worker thread: a snapshot never stalls the loop. */
    rv = uv_queue_work(&s->node->loop, &p->work, put_work, put_after_work);
    if (rv != 0) {
        raft_free(p);
        return RAFT_IOERR;
    }
    s->work_pending++;
    return 0;
}

struct get_req {
    uv_work_t work;
    struct jr_node *node;
    struct raft_io_snapshot_get *req;
    raft_io_snapshot_get_cb cb;
    struct raft_snapshot *snapshot;
    uint64_t started; /* loop time */
    int status;
    char errmsg[JR_ERRMSG_SIZE];
};

static void get_work(uv_work_t *w)
{
    struct get_req *g = w->data;
    g->status = load_snapshot(g->node, &g->snapshot, true, g->errmsg);
    if (g->status == 0 && g->snapshot == NULL) {
        g->status = JR_ENOTFOUND;
        jr__errf(g->errmsg, "no snapshot in %s", g->node->raft_dir);
    }
}

static void get_after_work(uv_work_t *w, int uv_status)
{
    struct get_req *g = w->data;
    struct jr_node *n = g->node;
    struct raft_io_snapshot_get *req = g->req;
    raft_io_snapshot_get_cb cb = g->cb;
    struct raft_snapshot *snap = g->snapshot;
    int status = uv_status != 0 ? JR_ECANCELED : g->status;
    if (status != 0) {
        jr__errorf(n, "read the snapshot to send: %s", g->errmsg);
        snapshot_free(snap);
        snap = NULL;
    } else {
        jr__debugf(n,
                   "read the snapshot at index %llu to send (%zu bytes) in "
                   "%llu ms",
                   (unsigned long long)snap->index, snap->bufs[0].len,
                   (unsigned long long)(jr__now(n) - g->started));
    }
    raft_free(g);
    n->io_state->snapshot_gets--;
    cb(req, snap, raft_code(status));
    work_done(n->io_state);
}

static int io_snapshot_get(struct raft_io *io,
                           struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    struct io_state *s = state_of(io);
    struct get_req *g = raft_calloc(1, sizeof *g);
    int rv;
    if (g == NULL) {
        return RAFT_NOMEM;
    }
    g->node = s->node;
    g->req = req;
    g->cb = cb;
    g->started = jr__now(s->node);
    g->work.data = g;
    rv = uv_queue_work(&s->node->loop, &g->work, get_work, get_after_work);
    if (rv != 0) {
        raft_free(g);
        return RAFT_IOERR;
    }
    s->work_pending++;
    s->snapshot_gets++;
    return 0;
}

/* ---- async work ---- */

struct async_req {
    uv_work_t work;
    struct jr_node *node;
    struct raft_io_async_work *req;
    raft_io_async_work_cb cb;
    int status;
};

static void async_work(uv_work_t *w)
{
    struct async_req *a = w->data;
    a->status = a->req->work(a->req);
}

static void async_after(uv_work_t *w, int uv_status)
{
    struct async_req *a = w->data;
    struct raft_io_async_work *req = a->req;
    raft_io_async_work_cb cb = a->cb;
    int status = uv_status != 0 ? RAFT_CANCELED : a->status;
    struct io_state *s = a->node->io_state;
    raft_free(a);
    cb(req, status);
    work_done(s);
}

static int io_async_work(struct raft_io *io,
                         struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
    struct io_state *s = state_of(io);
    struct async_req *a = raft_malloc(sizeof *a);
    if (a == NULL) {
        return RAFT_NOMEM;
    }
    a->node = s->node;
    a->req = req;
    a->cb = cb;
    a->work.data = a;
    if (uv_queue_work(&s->node->loop, &a->work, async_work, async_after) != 0) {
        raft_free(a);
        return RAFT_IOERR;
    }
    s->work_pending++;
    return 0;
}

/* ---- close ---- */

static void log_closed_cb(void *arg)
{
    struct io_state *s = arg;
    s->log = NULL;
    close_step(s);
}

static void tick_closed_cb(uv_handle_t *h)
{
    struct io_state *s = ((struct jr_node *)h->data)->io_state;
    s->tick.data = NULL;
    close_step(s);
}

static void transport_closed_cb(struct jr_node *n)
{
    close_step(n->io_state);
}

/* Close in order: stop accepting, flush the log (queued appends complete
 * with their real status), then report. */
static void close_step(struct io_state *s)
{
    struct jr_node *n = s->node;
    raft_io_close_cb cb;
    /* raft must hear about every message it sent before it is closed. */
    jr__rpc_flush(n);
    if (jr__rpc_busy(n)) {
        return; /* jr__io_rpc_drained calls again */
    }
    if (jr__transport_is_open(n)) {
        return; /* transport_closed_cb calls again */
    }
    if (s->work_pending > 0) {
        return; /* work_done calls again: snapshots still use the log */
    }
    if (s->tick.data != NULL) {
        return;
    }
    if (s->log != NULL) {
        jr__logstore_close(s->log, log_closed_cb, s);
        return;
    }
    cb = s->close_cb;
    s->close_cb = NULL;
    if (cb != NULL) {
        cb(&n->io);
    }
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct io_state *s = state_of(io);
    struct jr_node *n = s->node;
    s->closing = true;
    s->close_cb = cb;
    jr__rpc_close(n);
    /* The tick timer handle exists from jr__io_init on; data marks it
     * open. */
    s->tick.data = n;
    uv_close((uv_handle_t *)&s->tick, tick_closed_cb);
    jr__transport_close(n, transport_closed_cb);
}

void jr__io_rpc_drained(struct jr_node *n)
{
    if (n->io_state != NULL && n->io_state->closing) {
        close_step(n->io_state);
    }
}

int jr__io_init(struct jr_node *n, struct jr_error *err)
{
    struct raft_io *io = &n->io;
    struct io_state *s = calloc(1, sizeof *s);
    int rv;
    if (s == NULL) {
        return jr__error_set(err, JR_ENOMEM, "init storage: out of memory");
    }
    s->node = n;
    s->rand_state = uv_hrtime() ^ (n->cfg.id * 0x9e3779b97f4a7c15ULL);
    if (s->rand_state == 0) {
        s->rand_state = 1;
    }
    rv = uv_timer_init(&n->loop, &s->tick);
    if (rv == 0) {
        rv = jr__transport_init(n);
    }
    if (rv != 0) {
        free(s);
        return jr__error_set(err, JR_ENOMEM, "init transport");
    }
    n->io_state = s;
    memset(io, 0, sizeof *io);
    io->version = 2;
    io->impl = n;
    io->init = io_init;
    io->close = io_close;
    io->load = io_load;
    io->start = io_start;
    io->bootstrap = io_bootstrap;
    io->recover = io_recover;
    io->set_term = io_set_term;
    io->set_vote = io_set_vote;
    io->send = io_send;
    io->append = io_append;
    io->truncate = io_truncate;
    io->snapshot_put = io_snapshot_put;
    io->snapshot_get = io_snapshot_get;
    io->time = io_time;
    io->random = io_random;
    io->async_work = io_async_work;
    return 0;
}

void jr__io_close(struct jr_node *n)
{
    struct io_state *s = n->io_state;
    if (!uv_is_closing((uv_handle_t *)&s->tick)) {
        /* raft never started or closed this io (jr_node_open failed). */
        uv_close((uv_handle_t *)&s->tick, NULL);
        (void)uv_run(&n->loop, UV_RUN_NOWAIT);
    }
    jr__transport_free(n);
    free(n->io_state);
    n->io_state = NULL;
}
