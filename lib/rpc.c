/* rpc.c: the library's own RPC between nodes: write forwarding and read
 * barriers from followers to the leader, and the join handshake. Frames
 * are length-prefixed msgpack (codec.c) on connections opened through the
 * transport's preamble. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jr_internal.h"
#include "raftmsg.h"

struct jr__conn {
    queue link; /* in rpc->conns */
    struct jr_node *node;
    uv_stream_t *stream; /* NULL while dialing */
    struct jr__dial dial;
    bool outbound;
    bool dialing;
    bool closing;
    bool connected; /* frames may have reached the peer */
    bool member;    /* the peer proved the cluster secret (auth.h) */
    unsigned char nc[32], ns[32]; /* inbound: the handshake's nonces */
    unsigned refs; /* commands referencing it, plus one while open */
    uint64_t peer_id;
    char address[256];
    char *rbuf;
    size_t rlen, rcap;
    /* A large frame is read into a buffer of its own (raft_malloc'd), which
     * a raft message can keep: a snapshot is then held once, not twice. */
    char *big;
    size_t big_len, big_got;
    uint64_t big_started;        /* loop time of its first byte */
    msgpack_sbuffer pending_out; /* frames written before connected */
    queue sends;                 /* raft messages waiting for the connection */
    unsigned n_sends;
    unsigned n_small_over; /* small messages written past a full queue */
};

struct rpc_peer {
    uint64_t id;
    struct jr__conn *conn; /* outbound, NULL until needed or after close */
    uint64_t last_ping;    /* loop time */
    uint64_t retry_at;     /* no new dial before this loop time */
    unsigned backoff_ms;   /* doubles on each failed dial, up to a second */
};

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

/* A raft message being written; raft's callback runs when it is done. */
struct send_req {
    queue link; /* in conn->sends while dialing, or rpc->send_failed */
    uv_write_t write;
    struct jr__frame f;
    uv_buf_t *bufs;
    unsigned n_bufs;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    int status;
    struct jr_node *node;
    uint64_t snapshot_started; /* an InstallSnapshot: loop time queued */
    size_t snapshot_len;
    struct jr__conn *over; /* counted in its n_small_over */
};

/* Messages queued on a connection that is still being dialed. Beyond this
 * raft's messages are refused, as if the network had dropped them: raft
 * retries on its own. */
#define MAX_QUEUED_SENDS 64
/* Bytes waiting in a connection's socket buffer beyond which messages are
 * refused too (a stuck peer must not make us queue without limit). */
#define MAX_WRITE_QUEUE (64u << 20)
/* Messages without a payload (heartbeats, results, votes) still pass a full
 * queue, up to this many at once: behind a snapshot that fills it, a
 * refused heartbeat would make raft 0.15 give the snapshot up (it probes
 * again on any failed send) and read and send it a second time once the
 * first has gone. */
#define MAX_SMALL_OVER 1024

struct jr__rpc {
    queue conns;
    unsigned open_streams; /* streams given to rpc and not closed yet */
    queue send_failed;     /* sends to complete with an error next turn */
    struct rpc_peer *peers;
    unsigned n_peers;
    uint64_t leader_id; /* leader when requests were last forwarded */
};

static struct rpc_peer *peer_of(struct jr_node *n, uint64_t id)
{
    unsigned i;
    for (i = 0; i < n->rpc->n_peers; i++) {
        if (n->rpc->peers[i].id == id) {
            return &n->rpc->peers[i];
        }
    }
    return NULL;
}

static struct jr__conn *peer_conn(struct jr_node *n,
                                  uint64_t id,
                                  const char *address);
struct send_req;
static void send_start(struct jr__conn *c, struct send_req *s);

struct write_req {
    uv_write_t req;
    char *data;
};

static void conn_unref(struct jr__conn *c)
{
    if (--c->refs == 0) {
        raft_free(c->big);
        free(c->rbuf);
        msgpack_sbuffer_destroy(&c->pending_out);
        free(c);
    }
}

static void conn_closed_cb(uv_handle_t *h)
{
    struct jr__conn *c = h->data;
    struct jr_node *n = c->node;
    raft_free(h);
    conn_unref(c);
    /* Every write callback of a stream runs before its close callback: with
     * no stream left, raft has heard about every message it sent. */
    if (--n->rpc->open_streams == 0) {
        jr__io_rpc_drained(n);
    }
}

static void send_req_free(struct send_req *s)
{
    if (s->over != NULL) {
        s->over->n_small_over--;
    }
    jr__frame_close(&s->f);
    free(s->bufs);
    free(s);
}

static void conn_close(struct jr__conn *c)
{
    struct jr_node *n = c->node;
    if (c->closing) {
        return;
    }
    c->closing = true;
    QUEUE_REMOVE(&c->link);
    /* Never call raft back from here: we may be inside one of its calls. */
    while (!QUEUE_IS_EMPTY(&c->sends)) {
        queue *q = QUEUE_HEAD(&c->sends);
        struct send_req *s = QUEUE_DATA(q, struct send_req, link);
        QUEUE_REMOVE(q);
        s->status = RAFT_NOCONNECTION;
        QUEUE_PUSH(&n->rpc->send_failed, q);
    }
    c->n_sends = 0;
    {
        unsigned i;
        for (i = 0; i < n->rpc->n_peers; i++) {
            if (n->rpc->peers[i].conn == c) {
                n->rpc->peers[i].conn = NULL;
                /* Lost the leader's connection: the next tick's ping
                 * redials it, and a refusal tells that it is gone
                 * (leaderwatch.c). */
                if (n->raft.state == RAFT_FOLLOWER &&
                    n->raft.follower_state.current_leader.id == c->peer_id) {
                    n->rpc->peers[i].last_ping = 0;
                }
            }
        }
    }
    jr__conn_lost(n, c);
    if (c->stream != NULL) {
        uv_close((uv_handle_t *)c->stream, conn_closed_cb);
        c->stream = NULL;
    } else if (!c->dialing) {
        conn_unref(c);
    }
    /* A dialing conn is released by its dial callback. */
}

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    (void)status; /* a failed write also fails the read side: close there */
    free(w->data);
    free(w);
}

/* Queue raw frame bytes on the connection; takes nothing from the caller. */
static void conn_write(struct jr__conn *c, const char *data, size_t len)
{
    struct write_req *w;
    uv_buf_t buf;
    if (c->closing) {
        return;
    }
    if (c->stream == NULL) {
        msgpack_sbuffer_write(&c->pending_out, data, len);
        return;
    }
    w = malloc(sizeof *w);
    if (w == NULL || (w->data = malloc(len)) == NULL) {
        free(w);
        conn_close(c);
        return;
    }
    memcpy(w->data, data, len);
    buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, c->stream, &buf, 1, write_cb) != 0) {
        free(w->data);
        free(w);
        conn_close(c);
    }
}

static void conn_write_frame(struct jr__conn *c, struct jr__frame *f)
{
    conn_write(c, f->sb.data, f->sb.size);
}

/* ---- incoming frames ---- */

static void handle_apply_result(struct jr_node *n, const struct jr__msg *m)
{
    unsigned i;
    for (i = 0; i < m->n_items; i++) {
        const struct jr__item *it = &m->items[i];
        char errmsg[JR_ERRMSG_SIZE];
        size_t el = it->errmsg.len < JR_ERRMSG_SIZE - 1 ? it->errmsg.len
                                                        : JR_ERRMSG_SIZE - 1;
        if (el > 0) { /* an empty msgpack string has no pointer */
            memcpy(errmsg, it->errmsg.ptr, el);
        }
        errmsg[el] = '\0';
        jr__forward_reply(n, it->req_id, (int)it->status, errmsg, it->index,
                          it->data.ptr, it->data.len);
    }
}

static void handle_forward(struct jr_node *n,
                           struct jr__conn *c,
                           const struct jr__msg *m)
{
    unsigned i;
    for (i = 0; i < m->n_items; i++) {
        struct jr__cmd *cmd;
        size_t data_len;
        bool internal = false;
        /* A library command travels from a follower only to say that the
         * follower itself never votes (jr_config.never_vote). */
        if (jr__entry_unwrap(m->items[i].data.ptr, m->items[i].data.len,
                             &data_len, &internal) != 0 ||
            (internal &&
             (!c->member || !jr__libstate_is_never_vote_of(
                                m->items[i].data.ptr, data_len, c->peer_id)))) {
            jr__warnf(n,
                      "rpc from %s: command without a valid envelope; "
                      "closing the connection",
                      c->address);
            conn_close(c);
            return;
        }
        cmd = calloc(1, sizeof *cmd);
        if (cmd == NULL) {
            conn_close(c);
            return;
        }
        cmd->kind = JR__CMD_REMOTE_APPLY;
        cmd->remote_id = m->items[i].req_id;
        cmd->len = m->items[i].data.len;
        cmd->buf = raft_malloc(cmd->len > 0 ? cmd->len : 1);
        if (cmd->buf == NULL) {
            free(cmd);
            conn_close(c);
            return;
        }
        memcpy(cmd->buf, m->items[i].data.ptr, cmd->len);
        cmd->conn = c;
        c->refs++;
        jr__submit_remote(n, cmd);
    }
}

static void handle_read_index(struct jr_node *n,
                              struct jr__conn *c,
                              const struct jr__msg *m)
{
    struct jr__cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        conn_close(c);
        return;
    }
    cmd->kind = JR__CMD_REMOTE_BARRIER;
    cmd->remote_id = m->req_id;
    cmd->conn = c;
    c->refs++;
    jr__submit_remote(n, cmd);
}

#define STRAY_LOG_INTERVAL_MS 30000

static bool config_has(const struct raft_configuration *conf, uint64_t id)
{
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return true;
        }
    }
    return false;
}

static void stray_candidate(struct jr_node *n, struct jr__conn *c)
{
    uint64_t now = jr__now(n);
    if (n->stray_logged_at != 0 &&
        now - n->stray_logged_at < STRAY_LOG_INTERVAL_MS) {
        return;
    }
    n->stray_logged_at = now;
    jr__warnf(n,
              "node %llu at %s asks for votes but is not a member of this "
              "cluster (it was removed); ignoring it. Stop it, wipe its data "
              "directory and join it again with a token",
              (unsigned long long)c->peer_id, c->address);
}

/* Hand a raft message to raft's recv callback, which takes what was
 * allocated for it. */
static void deliver_raft(struct jr__conn *c, char *buf, size_t len, char *owned)
{
    struct jr_node *n = c->node;
    struct raft_message m;
    char errmsg[JR_ERRMSG_SIZE];
    bool adopted = false;
    if (c->peer_id == 0 || !c->member) {
        jr__auth_failed(n,
                        "raft message from %s, which has not proved the "
                        "cluster secret; closing",
                        c->address);
        raft_free(owned);
        conn_close(c);
        return;
    }
    if (jr__raftmsg_decode_owned(buf, len, owned, &m, &adopted, errmsg) != 0) {
        jr__warnf(n, "raft message from node %llu at %s: %s; closing",
                  (unsigned long long)c->peer_id, c->address, errmsg);
        raft_free(owned);
        conn_close(c);
        return;
    }
    if (!adopted) {
        raft_free(owned);
    }
    if (n->io_recv_cb == NULL || n->raft_closed) {
        jr__raftmsg_release(&m);
        return;
    }
    if (m.type == RAFT_IO_REQUEST_VOTE && n->raft.configuration.n > 0 &&
        !config_has(&n->raft.configuration, c->peer_id)) {
        /* A removed node that came back: it still holds the secret, but
         * its votes would only disturb the members (hashicorp/raft refuses
         * them the same way). Members added after our last configuration
         * never campaign before they are voters we know of. */
        stray_candidate(n, c);
        jr__raftmsg_release(&m);
        return;
    }
    m.server_id = c->peer_id;
    m.server_address = c->address;
    if (jr__io_stale_rejection(n, &m)) {
        jr__raftmsg_release(&m);
        return;
    }
    jr__staletail_recv(&n->staletail, &n->io, n->io_recv_cb, &m);
}

int jr__rpc_send_failed(struct jr_node *n,
                        struct raft_io_send *req,
                        raft_io_send_cb cb)
{
    struct send_req *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    jr__frame_init(&s->f);
    s->req = req;
    s->cb = cb;
    s->status = RAFT_NOCONNECTION;
    QUEUE_PUSH(&n->rpc->send_failed, &s->link);
    return 0;
}

/* Whether a raft message carries entries or a snapshot. */
static bool has_payload(const struct raft_message *m)
{
    return (m->type == RAFT_IO_APPEND_ENTRIES &&
            m->append_entries.n_entries > 0) ||
           m->type == RAFT_IO_INSTALL_SNAPSHOT;
}

int jr__rpc_send_raft(struct jr_node *n,
                      struct raft_io_send *req,
                      const struct raft_message *m,
                      raft_io_send_cb cb)
{
    struct jr__conn *c = peer_conn(n, m->server_id, m->server_address);
    struct send_req *s = calloc(1, sizeof *s);
    bool full;
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    jr__frame_init(&s->f);
    full = c != NULL && c->stream != NULL &&
           uv_stream_get_write_queue_size(c->stream) > MAX_WRITE_QUEUE;
    if (full && !has_payload(m) && c->n_small_over < MAX_SMALL_OVER) {
        full = false;
        s->over = c;
        c->n_small_over++;
    }
    if (c == NULL || (c->stream == NULL && c->n_sends >= MAX_QUEUED_SENDS) ||
        full) {
        /* Fail through the callback next turn, never at once: raft 0.15
         * frees an AppendEntries' entries before sending the result, and
         * again when that send fails at once (recvMessage), which the
         * removal tests hit (test_admin.c, under valgrind). */
        if (c != NULL && c->stream != NULL) {
            jr__debugf(n, "message to node %llu refused: %zu bytes queued",
                       (unsigned long long)m->server_id,
                       uv_stream_get_write_queue_size(c->stream));
        }
        s->req = req;
        s->cb = cb;
        s->status = RAFT_NOCONNECTION;
        QUEUE_PUSH(&n->rpc->send_failed, &s->link);
        return 0;
    }
    if (jr__raftmsg_encode(m, &s->f, &s->bufs, &s->n_bufs) != 0) {
        send_req_free(s);
        return RAFT_NOMEM;
    }
    s->req = req;
    s->cb = cb;
    if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        s->node = n;
        s->snapshot_started = jr__now(n);
        s->snapshot_len = m->install_snapshot.data.len;
    }
    if (c->stream == NULL) {
        QUEUE_PUSH(&c->sends, &s->link);
        c->n_sends++;
    } else {
        send_start(c, s);
    }
    return 0;
}

/* Complete, with their error, the sends that could not be made. */
void jr__rpc_flush(struct jr_node *n)
{
    while (!QUEUE_IS_EMPTY(&n->rpc->send_failed)) {
        queue *q = QUEUE_HEAD(&n->rpc->send_failed);
        struct send_req *s = QUEUE_DATA(q, struct send_req, link);
        struct raft_io_send *req = s->req;
        raft_io_send_cb cb = s->cb;
        int status = s->status;
        QUEUE_REMOVE(q);
        send_req_free(s);
        if (cb != NULL) {
            cb(req, status);
        }
    }
}

/* A library RPC frame (codec.c). */
static void dispatch_rpc(struct jr__conn *c, const char *buf, size_t len)
{
    struct jr_node *n = c->node;
    struct jr__msg m;
    char errmsg[JR_ERRMSG_SIZE];
    if (jr__msg_decode(buf, len, &m, errmsg) != 0) {
        jr__warnf(n, "rpc from %s: %s; closing the connection", c->address,
                  errmsg);
        conn_close(c);
        return;
    }
    if (!c->member && m.type != JR__MSG_INFO && m.type != JR__MSG_JOIN_TOKEN) {
        /* Nothing unauthenticated changes state. */
        jr__auth_failed(n,
                        "rpc from %s: message type %d from a peer that has "
                        "not proved the cluster secret; closing",
                        c->address, m.type);
        jr__msg_free(&m);
        conn_close(c);
        return;
    }
    switch (m.type) {
        case JR__MSG_FORWARD: handle_forward(n, c, &m); break;
        case JR__MSG_APPLY_RESULT: handle_apply_result(n, &m); break;
        case JR__MSG_READ_INDEX: handle_read_index(n, c, &m); break;
        case JR__MSG_READ_INDEX_RESULT:
            jr__forward_reply(n, m.req_id, (int)m.status, "", m.index, NULL, 0);
            break;
        case JR__MSG_INFO: jr__handle_info(n, c, &m); break;
        case JR__MSG_INFO_RESULT:
            break; /* a ping's answer: the contact is all it is for */
        case JR__MSG_JOIN: jr__handle_join(n, c, &m); break;
        case JR__MSG_JOIN_TOKEN: jr__handle_join_token(n, c, &m); break;
        case JR__MSG_ADMIN: jr__handle_admin(n, c, &m); break;
        default:
            jr__warnf(n, "rpc from %s: unexpected message type %d", c->address,
                      m.type);
            conn_close(c);
            break;
    }
    jr__msg_free(&m);
}

/* One frame. owned: buf is a raft_malloc'd buffer of its own (a large
 * frame), handed over with the frame; NULL when buf is in the read buffer. */
static void dispatch(struct jr__conn *c, char *buf, size_t len, char *owned)
{
    if (c->peer_id != 0) {
        jr__contact_seen(c->node, c->peer_id);
    }
    if (jr__raftmsg_is(buf, len)) {
        deliver_raft(c, buf, len, owned);
        return;
    }
    dispatch_rpc(c, buf, len);
    raft_free(owned);
}

/* Frames from this size on get a buffer of their own. */
#define BIG_FRAME (256u << 10)

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct jr__conn *c = h->data;
    (void)suggested;
    if (c->big != NULL) {
        /* Exactly the rest of the large frame, so that it ends on a frame
         * boundary. */
        buf->base = c->big + c->big_got;
        buf->len = c->big_len - c->big_got;
        return;
    }
    if (c->rcap - c->rlen < 65536) {
        size_t cap = c->rcap == 0 ? 131072 : c->rcap * 2;
        char *p = realloc(c->rbuf, cap);
        if (p == NULL) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }
        c->rbuf = p;
        c->rcap = cap;
    }
    buf->base = c->rbuf + c->rlen;
    buf->len = c->rcap - c->rlen;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct jr__conn *c = s->data;
    size_t off = 0;
    (void)b;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    /* One reference for the duration: dispatch may close the conn. */
    c->refs++;
    if (c->big != NULL) {
        c->big_got += (size_t)nread;
        if (c->big_got == c->big_len) {
            char *frame = c->big;
            c->big = NULL;
            jr__debugf(c->node, "received a %zu-byte frame from %s in %llu ms",
                       c->big_len, c->address,
                       (unsigned long long)(jr__now(c->node) - c->big_started));
            dispatch(c, frame, c->big_len, frame);
        }
        conn_unref(c);
        return;
    }
    c->rlen += (size_t)nread;
    while (!c->closing && c->rlen - off >= 4) {
        const unsigned char *p = (const unsigned char *)c->rbuf + off;
        size_t flen = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) |
                      ((size_t)p[2] << 8) | p[3];
        size_t have = c->rlen - off - 4;
        if (flen == 0) {
            jr__warnf(c->node, "rpc from %s: empty frame", c->address);
            conn_close(c);
            break;
        }
        if (have < flen && flen >= BIG_FRAME) {
            c->big = raft_malloc(flen);
            if (c->big == NULL) {
                jr__warnf(c->node,
                          "rpc from %s: no memory for a %zu-byte frame",
                          c->address, flen);
                conn_close(c);
                break;
            }
            memcpy(c->big, c->rbuf + off + 4, have);
            c->big_len = flen;
            c->big_got = have;
            c->big_started = jr__now(c->node);
            off = c->rlen;
            break;
        }
        if (have < flen) {
            break;
        }
        dispatch(c, c->rbuf + off + 4, flen, NULL);
        off += 4 + flen;
    }
    if (!c->closing && off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    conn_unref(c);
}

static struct jr__conn *conn_new(struct jr_node *n, const char *address)
{
    struct jr__conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->node = n;
    c->refs = 1;
    msgpack_sbuffer_init(&c->pending_out);
    QUEUE_INIT(&c->sends);
    (void)snprintf(c->address, sizeof c->address, "%s", address);
    QUEUE_PUSH(&n->rpc->conns, &c->link);
    return c;
}

static void send_write_cb(uv_write_t *w, int status)
{
    struct send_req *s = w->data;
    struct raft_io_send *req = s->req;
    raft_io_send_cb cb = s->cb;
    if (s->snapshot_len > 0) {
        jr__debugf(s->node, "sent a %zu-byte snapshot in %llu ms%s",
                   s->snapshot_len,
                   (unsigned long long)(jr__now(s->node) - s->snapshot_started),
                   status == 0 ? "" : " (failed)");
    }
    send_req_free(s);
    /* raft sends TimeoutNow (leadership transfer) without a callback. */
    if (cb != NULL) {
        cb(req, status == 0 ? 0 : RAFT_NOCONNECTION);
    }
}

static void send_start(struct jr__conn *c, struct send_req *s)
{
    struct jr_node *n = c->node;
    s->write.data = s;
    if (uv_write(&s->write, c->stream, s->bufs, s->n_bufs, send_write_cb) !=
        0) {
        if (s->over != NULL) {
            /* Failed next turn, when c may be gone. */
            s->over->n_small_over--;
            s->over = NULL;
        }
        s->status = RAFT_NOCONNECTION;
        QUEUE_PUSH(&n->rpc->send_failed, &s->link);
    }
}

static int conn_start(struct jr__conn *c, uv_stream_t *stream)
{
    c->node->rpc->open_streams++;
    c->stream = stream;
    c->connected = true;
    stream->data = c;
    if (uv_read_start(stream, alloc_cb, read_cb) != 0) {
        conn_close(c);
        return -1;
    }
    if (c->pending_out.size > 0) {
        conn_write(c, c->pending_out.data, c->pending_out.size);
        msgpack_sbuffer_clear(&c->pending_out);
    }
    while (!c->closing && !QUEUE_IS_EMPTY(&c->sends)) {
        queue *q = QUEUE_HEAD(&c->sends);
        struct send_req *s = QUEUE_DATA(q, struct send_req, link);
        QUEUE_REMOVE(q);
        c->n_sends--;
        send_start(c, s);
    }
    return 0;
}

void jr__rpc_accept(struct jr_node *n,
                    uv_stream_t *stream,
                    uint64_t id,
                    const char *address,
                    bool member,
                    const unsigned char nc[32],
                    const unsigned char ns[32])
{
    struct jr__conn *c = conn_new(n, address);
    struct rpc_peer *p;
    if (c == NULL) {
        stream->data = NULL;
        uv_close((uv_handle_t *)stream, (uv_close_cb)raft_free);
        return;
    }
    c->peer_id = id;
    c->member = member;
    memcpy(c->nc, nc, sizeof c->nc);
    memcpy(c->ns, ns, sizeof c->ns);
    /* A peer that dials us is up again (a restarted or wiped node): our
     * own dials to it need not wait for their backoff. */
    p = peer_of(n, id);
    if (p != NULL && member) {
        p->backoff_ms = 0;
        p->retry_at = 0;
    }
    (void)conn_start(c, stream);
}

const unsigned char *jr__conn_nonce(const struct jr__conn *c, bool dialer)
{
    return dialer ? c->nc : c->ns;
}

static void dial_cb(struct jr__dial *d, uv_stream_t *stream, int status)
{
    struct jr__conn *c = d->data;
    struct rpc_peer *p;
    c->dialing = false;
    if (c->closing) {
        if (stream != NULL) {
            stream->data = c;
            c->node->rpc->open_streams++;
            uv_close((uv_handle_t *)stream, conn_closed_cb);
        } else {
            conn_unref(c);
        }
        return;
    }
    p = peer_of(c->node, c->peer_id);
    if (status != 0) {
        struct jr_node *n = c->node;
        unsigned hb = n->raft.heartbeat_timeout;
        jr__debugf(n, "rpc connect to %s: %s", c->address, uv_strerror(status));
        if (d->nobody_listening &&
            jr__leaderwatch_refused(
                &n->raft, c->peer_id, jr__now(n),
                (unsigned)n->io.random(&n->io, (int)hb, 2 * (int)hb))) {
            jr__infof(n,
                      "leader node %llu at %s refuses connections: its "
                      "process is gone; electing a successor",
                      (unsigned long long)c->peer_id, c->address);
        }
        /* A peer that is down is not dialed on every message raft sends
         * it: back off, doubling, up to a second. */
        if (p != NULL) {
            p->backoff_ms = p->backoff_ms == 0 ? BACKOFF_MIN_MS
                            : p->backoff_ms * 2 > BACKOFF_MAX_MS
                                ? BACKOFF_MAX_MS
                                : p->backoff_ms * 2;
            p->retry_at = jr__now(c->node) + p->backoff_ms;
        }
        conn_close(c);
        return;
    }
    if (p != NULL) {
        p->backoff_ms = 0;
        p->retry_at = 0;
    }
    (void)conn_start(c, stream);
}

/* The outbound connection to a peer, dialed on first use and again after
 * it closed. */
static struct jr__conn *peer_conn(struct jr_node *n,
                                  uint64_t id,
                                  const char *address)
{
    struct jr__rpc *rpc = n->rpc;
    struct rpc_peer *p = NULL;
    struct jr__conn *c;
    unsigned i;
    for (i = 0; i < rpc->n_peers; i++) {
        if (rpc->peers[i].id == id) {
            p = &rpc->peers[i];
            break;
        }
    }
    if (p == NULL) {
        p = realloc(rpc->peers, (rpc->n_peers + 1) * sizeof *p);
        if (p == NULL) {
            return NULL;
        }
        rpc->peers = p;
        p = &rpc->peers[rpc->n_peers++];
        memset(p, 0, sizeof *p);
        p->id = id;
    }
    if (p->conn != NULL && strcmp(p->conn->address, address) == 0) {
        return p->conn;
    }
    if (p->conn == NULL && jr__now(n) < p->retry_at) {
        return NULL; /* backing off */
    }
    if (p->conn != NULL) {
        conn_close(p->conn); /* the peer moved */
    }
    c = conn_new(n, address);
    if (c == NULL) {
        return NULL;
    }
    c->outbound = true;
    c->dialing = true;
    c->member = true; /* the dial checks the peer's proof first */
    c->peer_id = id;
    c->dial.data = c;
    if (jr__dial(n, &c->dial, address, id, JR__CONN_RPC, dial_cb) != 0) {
        c->dialing = false;
        conn_close(c);
        return NULL;
    }
    p->conn = c;
    return c;
}

static struct jr__conn *leader_conn(struct jr_node *n)
{
    raft_id id;
    const char *address;
    raft_leader(&n->raft, &id, &address);
    if (id == 0 || id == n->raft.id) {
        return NULL;
    }
    return peer_conn(n, id, address);
}

int jr__rpc_forward(struct jr_node *n, queue *cmds)
{
    struct jr__conn *c = leader_conn(n);
    struct jr__frame f;
    queue *q;
    unsigned n_apply = 0;
    if (c == NULL) {
        return JR_ENOLEADER;
    }
    jr__frame_init(&f);
    QUEUE_FOREACH (q, cmds) {
        struct jr__cmd *cmd = QUEUE_DATA(q, struct jr__cmd, link);
        cmd->req_id = ++n->next_req_id;
        cmd->conn = c;
        c->refs++;
        if (cmd->kind == JR__CMD_BARRIER) {
            jr__frame_begin(&f, JR__MSG_READ_INDEX, 1);
            msgpack_pack_uint64(&f.pk, cmd->req_id);
            jr__frame_end(&f);
        } else if (cmd->kind == JR__CMD_ADMIN) {
            jr__admin_encode(&f, cmd);
        } else {
            n_apply++;
        }
    }
    if (n_apply > 0) {
        jr__frame_begin(&f, JR__MSG_FORWARD, 1);
        msgpack_pack_array(&f.pk, n_apply);
        QUEUE_FOREACH (q, cmds) {
            struct jr__cmd *cmd = QUEUE_DATA(q, struct jr__cmd, link);
            if (cmd->kind == JR__CMD_APPLY) {
                msgpack_pack_array(&f.pk, 2);
                msgpack_pack_uint64(&f.pk, cmd->req_id);
                jr__pack_bin(&f.pk, cmd->buf, cmd->len);
            }
        }
        jr__frame_end(&f);
    }
    conn_write_frame(c, &f);
    jr__frame_close(&f);
    return 0;
}

void jr__rpc_reply(struct jr_node *n, struct jr__cmd *cmd)
{
    struct jr__conn *c = cmd->conn;
    struct jr__frame f;
    (void)n;
    if (c == NULL) {
        return;
    }
    jr__frame_init(&f);
    if (cmd->kind == JR__CMD_REMOTE_BARRIER) {
        jr__frame_begin(&f, JR__MSG_READ_INDEX_RESULT, 4);
        msgpack_pack_uint64(&f.pk, cmd->remote_id);
        msgpack_pack_int64(&f.pk, cmd->status);
        jr__pack_cstr(&f.pk, cmd->status != 0 ? cmd->errmsg : "");
        msgpack_pack_uint64(&f.pk, cmd->index);
    } else {
        /* Results of one loop turn could be coalesced into one frame; the
         * writes already coalesce in the socket, so keep it simple. */
        jr__frame_begin(&f, JR__MSG_APPLY_RESULT, 1);
        msgpack_pack_array(&f.pk, 1);
        msgpack_pack_array(&f.pk, 5);
        msgpack_pack_uint64(&f.pk, cmd->remote_id);
        msgpack_pack_int64(&f.pk, cmd->status);
        jr__pack_cstr(&f.pk, cmd->status != 0 ? cmd->errmsg : "");
        msgpack_pack_uint64(&f.pk, cmd->index);
        if (cmd->result != NULL) {
            jr__pack_bin(&f.pk, cmd->result, cmd->result_len);
        } else {
            msgpack_pack_nil(&f.pk);
        }
    }
    jr__frame_end(&f);
    conn_write_frame(c, &f);
    jr__frame_close(&f);
}

/* Send a reply frame built by membership.c. */
void jr__rpc_send_frame(struct jr__conn *c, struct jr__frame *f);
void jr__rpc_send_frame(struct jr__conn *c, struct jr__frame *f)
{
    conn_write_frame(c, f);
}

void jr__conn_ref(struct jr__conn *c);
void jr__conn_ref(struct jr__conn *c)
{
    c->refs++;
}

void jr__conn_unref(struct jr__conn *c);
void jr__conn_unref(struct jr__conn *c)
{
    conn_unref(c);
}

bool jr__conn_was_connected(const struct jr__conn *c)
{
    return c->connected;
}

/* Followers never hear from each other while a leader is up, so whether a
 * majority is reachable cannot be read from raft traffic alone: every voter
 * pings the others over the RPC connection a few times per election
 * timeout, and any frame from a peer counts as contact (health.c). */
static void ping_voters(struct jr_node *n)
{
    struct raft_configuration *conf = &n->raft.configuration;
    unsigned interval = n->cfg.election_timeout_ms / 4, i, j;
    uint64_t now = jr__now(n);
    for (i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        struct jr__conn *c;
        struct jr__frame f;
        if (s->id == n->raft.id || s->role != RAFT_VOTER) {
            continue;
        }
        for (j = 0; j < n->rpc->n_peers; j++) {
            if (n->rpc->peers[j].id == s->id) {
                break;
            }
        }
        if (j < n->rpc->n_peers &&
            now - n->rpc->peers[j].last_ping < interval) {
            continue;
        }
        c = peer_conn(n, s->id, s->address);
        if (c == NULL) {
            continue;
        }
        for (j = 0; j < n->rpc->n_peers; j++) {
            if (n->rpc->peers[j].id == s->id) {
                n->rpc->peers[j].last_ping = now;
            }
        }
        jr__frame_init(&f);
        jr__frame_begin(&f, JR__MSG_INFO, 1);
        msgpack_pack_uint64(&f.pk, 0);
        jr__frame_end(&f);
        conn_write_frame(c, &f);
        jr__frame_close(&f);
    }
}

void jr__rpc_tick(struct jr_node *n)
{
    struct jr__rpc *rpc = n->rpc;
    raft_id id;
    const char *address;
    unsigned i;
    raft_leader(&n->raft, &id, &address);
    /* Requests forwarded to a former leader fail now rather than at their
     * deadline: it will not apply them any more. */
    if (id != rpc->leader_id) {
        for (i = 0; i < rpc->n_peers; i++) {
            if (rpc->peers[i].id == rpc->leader_id &&
                rpc->peers[i].conn != NULL) {
                jr__conn_lost(n, rpc->peers[i].conn);
            }
        }
        rpc->leader_id = id;
    }
    if (n->raft.state != RAFT_UNAVAILABLE) {
        ping_voters(n);
    }
}

int jr__rpc_init(struct jr_node *n)
{
    n->rpc = calloc(1, sizeof *n->rpc);
    if (n->rpc == NULL) {
        return JR_ENOMEM;
    }
    QUEUE_INIT(&n->rpc->conns);
    QUEUE_INIT(&n->rpc->send_failed);
    return 0;
}

bool jr__rpc_busy(struct jr_node *n)
{
    return n->rpc != NULL &&
           (n->rpc->open_streams > 0 || !QUEUE_IS_EMPTY(&n->rpc->conns) ||
            !QUEUE_IS_EMPTY(&n->rpc->send_failed));
}

void jr__rpc_close(struct jr_node *n)
{
    if (n->rpc == NULL) {
        return;
    }
    while (!QUEUE_IS_EMPTY(&n->rpc->conns)) {
        conn_close(
            QUEUE_DATA(QUEUE_HEAD(&n->rpc->conns), struct jr__conn, link));
    }
}

void jr__rpc_free(struct jr_node *n);
void jr__rpc_free(struct jr_node *n)
{
    free(n->rpc->peers);
    free(n->rpc);
    n->rpc = NULL;
}
