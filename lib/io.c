/* io.c: the raft_io the node runs on. For now the disk and network work is
 * canonical/raft's libuv backend (raft_uv) over our transport; this file is
 * the one place that sets it up, so that replacing the backend touches
 * nothing else. The wrapper forwards every call and observes received
 * messages to know which peers are alive (the quorum_lost diagnosis). */
#include <string.h>

#include "jr_internal.h"

#define SEGMENT_SIZE (8u << 20)

static struct raft_io *inner(struct raft_io *io)
{
    return &((struct jr_node *)io->impl)->backend;
}

static int w_init(struct raft_io *io, raft_id id, const char *address)
{
    struct raft_io *b = inner(io);
    int rv = b->init(b, id, address);
    if (rv != 0) {
        memcpy(io->errmsg, b->errmsg, sizeof io->errmsg);
    }
    return rv;
}

static void w_close_done(struct raft_io *b)
{
    struct jr_node *n = b->data;
    if (n->io_close_cb != NULL) {
        n->io_close_cb(&n->io);
    }
}

static void w_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct raft_io *b = inner(io);
    /* raft keeps its own pointer in io->data, so the callback is kept in
     * the node. */
    ((struct jr_node *)io->impl)->io_close_cb = cb;
    b->close(b, w_close_done);
}

static int w_load(struct raft_io *io,
                  raft_term *term,
                  raft_id *voted_for,
                  struct raft_snapshot **snapshot,
                  raft_index *start_index,
                  struct raft_entry *entries[],
                  size_t *n_entries)
{
    struct raft_io *b = inner(io);
    int rv =
        b->load(b, term, voted_for, snapshot, start_index, entries, n_entries);
    if (rv != 0) {
        memcpy(io->errmsg, b->errmsg, sizeof io->errmsg);
    }
    return rv;
}

static void w_tick(struct raft_io *b)
{
    struct jr_node *n = b->data;
    n->io_tick_cb(&n->io);
}

static void w_recv(struct raft_io *b, struct raft_message *msg)
{
    struct jr_node *n = b->data;
    jr__contact_seen(n, msg->server_id);
    n->io_recv_cb(&n->io, msg);
}

static int w_start(struct raft_io *io,
                   unsigned msecs,
                   raft_io_tick_cb tick,
                   raft_io_recv_cb recv)
{
    struct raft_io *b = inner(io);
    struct jr_node *n = io->impl;
    n->io_tick_cb = tick;
    n->io_recv_cb = recv;
    return b->start(b, msecs, w_tick, w_recv);
}

static int w_bootstrap(struct raft_io *io, const struct raft_configuration *c)
{
    struct raft_io *b = inner(io);
    int rv = b->bootstrap(b, c);
    if (rv != 0) {
        memcpy(io->errmsg, b->errmsg, sizeof io->errmsg);
    }
    return rv;
}

static int w_recover(struct raft_io *io, const struct raft_configuration *c)
{
    struct raft_io *b = inner(io);
    return b->recover(b, c);
}

static int w_set_term(struct raft_io *io, raft_term term)
{
    struct raft_io *b = inner(io);
    return b->set_term(b, term);
}

static int w_set_vote(struct raft_io *io, raft_id id)
{
    struct raft_io *b = inner(io);
    return b->set_vote(b, id);
}

static int w_send(struct raft_io *io,
                  struct raft_io_send *req,
                  const struct raft_message *m,
                  raft_io_send_cb cb)
{
    /* Messages travel on the library's own connections (rpc.c), not on
     * raft_uv's: msgpack frames, TCP_NODELAY, one handshake. */
    return jr__rpc_send_raft(io->impl, req, m, cb);
}

/* An append made as leader, counted until it completes so that the node
 * can defer raft_close until none is queued (see jr__close_raft). */
struct w_append_req {
    struct raft_io_append req; /* the one the backend sees */
    struct raft_io_append *outer;
    raft_io_append_cb cb;
    struct jr_node *node;
};

static void w_append_cb(struct raft_io_append *req, int status)
{
    struct w_append_req *w = req->data;
    struct jr_node *n = w->node;
    struct raft_io_append *outer = w->outer;
    raft_io_append_cb cb = w->cb;
    raft_free(w);
    n->leader_appends--;
    outer->cb = cb;
    cb(outer, status);
    if (n->leader_appends == 0) {
        jr__appends_drained(n);
    }
}

static int w_append(struct raft_io *io,
                    struct raft_io_append *req,
                    const struct raft_entry entries[],
                    unsigned n,
                    raft_io_append_cb cb)
{
    struct raft_io *b = inner(io);
    struct jr_node *node = io->impl;
    struct w_append_req *w;
    int rv;
    if (node->raft.state != RAFT_LEADER) {
        /* A follower's canceled append does not truncate the log. */
        return b->append(b, req, entries, n, cb);
    }
    w = raft_malloc(sizeof *w);
    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->req.data = w;
    w->outer = req;
    w->cb = cb;
    w->node = node;
    rv = b->append(b, &w->req, entries, n, w_append_cb);
    if (rv != 0) {
        memcpy(io->errmsg, b->errmsg, sizeof io->errmsg);
        raft_free(w);
        return rv;
    }
    node->leader_appends++;
    return 0;
}

static int w_truncate(struct raft_io *io, raft_index index)
{
    struct raft_io *b = inner(io);
    return b->truncate(b, index);
}

static int w_snapshot_put(struct raft_io *io,
                          unsigned trailing,
                          struct raft_io_snapshot_put *req,
                          const struct raft_snapshot *s,
                          raft_io_snapshot_put_cb cb)
{
    struct raft_io *b = inner(io);
    return b->snapshot_put(b, trailing, req, s, cb);
}

static int w_snapshot_get(struct raft_io *io,
                          struct raft_io_snapshot_get *req,
                          raft_io_snapshot_get_cb cb)
{
    struct raft_io *b = inner(io);
    return b->snapshot_get(b, req, cb);
}

static raft_time w_time(struct raft_io *io)
{
    struct raft_io *b = inner(io);
    return b->time(b);
}

static int w_random(struct raft_io *io, int min, int max)
{
    struct raft_io *b = inner(io);
    return b->random(b, min, max);
}

static int w_async_work(struct raft_io *io,
                        struct raft_io_async_work *req,
                        raft_io_async_work_cb cb)
{
    struct raft_io *b = inner(io);
    return b->async_work(b, req, cb);
}

int jr__io_init(struct jr_node *n, struct jr_error *err)
{
    struct raft_io *io = &n->io;
    int rv;
    rv = jr__transport_init(n, &n->transport);
    if (rv != 0) {
        return jr__error_set(err, rv, "init transport");
    }
    rv = raft_uv_init(&n->backend, &n->loop, n->raft_dir, &n->transport);
    if (rv != 0) {
        jr__transport_close(&n->transport);
        return jr__error_set(err, jr__err_from_raft(rv),
                             "init storage in %s: %s", n->raft_dir,
                             n->backend.errmsg);
    }
    raft_uv_set_segment_size(&n->backend, SEGMENT_SIZE);
    (void)raft_uv_set_snapshot_compression(&n->backend, true);
    /* Reconnect fast: a restarted peer should rejoin within a heartbeat or
     * two, not the 1 s default. */
    raft_uv_set_connect_retry_delay(&n->backend, 100);
    /* Auto-recovery renames a segment it cannot read and starts without
     * it: acknowledged entries would vanish silently. Refuse to start
     * instead, naming the file. */
    raft_uv_set_auto_recovery(&n->backend, false);
    n->backend.data = n;

    memset(io, 0, sizeof *io);
    io->version = 2;
    io->impl = n;
    io->init = w_init;
    io->close = w_close;
    io->load = w_load;
    io->start = w_start;
    io->bootstrap = w_bootstrap;
    io->recover = w_recover;
    io->set_term = w_set_term;
    io->set_vote = w_set_vote;
    io->send = w_send;
    io->append = w_append;
    io->truncate = w_truncate;
    io->snapshot_put = w_snapshot_put;
    io->snapshot_get = w_snapshot_get;
    io->time = w_time;
    io->random = w_random;
    io->async_work = w_async_work;
    return 0;
}

void jr__io_close(struct jr_node *n)
{
    raft_uv_close(&n->backend);
    jr__transport_close(&n->transport);
}

void jr__io_rpc_drained(struct jr_node *n)
{
    /* raft_uv waits for nothing of ours. */
    (void)n;
}
