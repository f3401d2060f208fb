/* transport.c: the node's TCP listener and outgoing connections. Every
 * connection opens with a preamble (protocol version, kind, cluster id,
 * incarnation, sender id, address, name and zone) and the mutual
 * challenge-response of auth.h, so that a peer of another cluster, or one
 * that cannot prove the cluster secret, is refused before any message is
 * read; raft messages and library RPCs then share it (rpc.c). Sockets get
 * TCP_NODELAY: raft sends small messages and waits for their answers. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "jr_internal.h"

#define PREAMBLE_MAGIC "JACO"
/* 2: challenge-response (nonce in the preamble, the acceptor's reply). */
#define PREAMBLE_VERSION 2
#define PREAMBLE_FIXED (56 + JR__AUTH_NONCE_LEN)
#define PREAMBLE_MEMBER 0x01 /* flags: the dialer will prove the secret */
#define MAX_ADDRESS 255
#define MAX_NAME 63
#define MAX_ZONE 63
/* Authentication failures are logged at most once per this many ms; the
 * ones in between are counted and summed up in the next line. */
#define AUTH_LOG_INTERVAL_MS 10000

struct jr__transport {
    struct jr_node *node;
    uv_tcp_t listener;
    bool listening;
    bool closing;
    void (*close_cb)(struct jr_node *n);
    queue dials;    /* connections being dialed */
    queue incoming; /* accepted connections still reading a preamble */
    unsigned pending_closes;
};

/* An accepted connection until the handshake is done. */
struct incoming {
    queue link;
    struct jr__transport *t;
    uv_tcp_t *tcp;
    unsigned char fixed[PREAMBLE_FIXED];
    char address[MAX_ADDRESS + MAX_NAME + MAX_ZONE + 3];
    size_t nread;
    size_t tail_len; /* address, name and zone, as sent */
    size_t name_len, zone_len;
    bool proving; /* the reply went out; reading the dialer's proof */
    bool refused; /* closing once the refusal is written */
    uint64_t id;  /* the dialer's node id */
    unsigned char ns[JR__AUTH_NONCE_LEN];
    unsigned char pd[JR__AUTH_PROOF_LEN];
    size_t pd_got;
    char fixed_name[MAX_NAME + 1]; /* name and zone, kept for the contact */
    char fixed_zone[MAX_ZONE + 1];
};

/* The acceptor's reply, written on its own so that it may outlive the
 * incoming structure (the stream is handed over with it in flight). */
struct reply_write {
    uv_write_t write;
    unsigned char buf[JR__AUTH_REPLY_FIXED + JR__AUTH_REASON_MAX];
};

int jr__parse_address(const char *address, struct sockaddr_in *sa, char *errmsg)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    char *end;
    long port;
    size_t hlen;
    if (colon == NULL) {
        jr__errf(errmsg, "address '%s' has no port (want HOST:PORT)", address);
        return JR_EINVAL;
    }
    hlen = (size_t)(colon - address);
    if (hlen == 0 || hlen >= sizeof host) {
        jr__errf(errmsg, "address '%s': bad host", address);
        return JR_EINVAL;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port <= 0 || port > 65535) {
        jr__errf(errmsg, "address '%s': bad port", address);
        return JR_EINVAL;
    }
    if (uv_ip4_addr(host, (int)port, sa) != 0) {
        jr__errf(errmsg, "address '%s': host must be an IPv4 address", address);
        return JR_EINVAL;
    }
    return 0;
}

static void put64(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

size_t jr__preamble_encode(struct jr_node *n,
                           int kind,
                           const char *cluster_id,
                           const unsigned char nonce[JR__AUTH_NONCE_LEN],
                           bool member,
                           char *out)
{
    unsigned char *p = (unsigned char *)out;
    size_t alen = strlen(n->address);
    size_t nlen = strlen(n->name);
    size_t zlen = n->cfg.zone != NULL ? strlen(n->cfg.zone) : 0;
    memset(p, 0, PREAMBLE_FIXED);
    memcpy(p, PREAMBLE_MAGIC, 4);
    p[4] = PREAMBLE_VERSION;
    p[5] = (unsigned char)kind;
    p[6] = (unsigned char)(alen >> 8);
    p[7] = (unsigned char)(alen & 0xff);
    memcpy(p + 8, cluster_id, strnlen(cluster_id, JR__CLUSTER_ID_LEN));
    put64(p + 40, n->cfg.id);
    if (nlen > MAX_NAME) {
        nlen = MAX_NAME;
    }
    if (zlen > MAX_ZONE) {
        zlen = MAX_ZONE;
    }
    p[48] = (unsigned char)nlen;
    p[49] = member ? PREAMBLE_MEMBER : 0;
    p[50] = (unsigned char)zlen;
    put32(p + 52, n->meta.incarnation);
    memcpy(p + 56, nonce, JR__AUTH_NONCE_LEN);
    memcpy(p + PREAMBLE_FIXED, n->address, alen);
    memcpy(p + PREAMBLE_FIXED + alen, n->name, nlen);
    if (zlen > 0) {
        memcpy(p + PREAMBLE_FIXED + alen + nlen, n->cfg.zone, zlen);
    }
    return PREAMBLE_FIXED + alen + nlen + zlen;
}

bool jr__secret_copy(struct jr_node *n, unsigned char out[32])
{
    bool have;
    uv_mutex_lock(&n->mutex);
    have = n->has_secret;
    if (have) {
        memcpy(out, n->secret, 32);
    }
    uv_mutex_unlock(&n->mutex);
    return have;
}

void jr__auth_failed(struct jr_node *n, const char *fmt, ...)
{
    uint64_t now = jr__now(n);
    char msg[768]; /* ids, a cluster id and the remedy: longer than usual */
    va_list ap;
    n->auth_failures++;
    if (n->auth_logged_at != 0 &&
        now - n->auth_logged_at < AUTH_LOG_INTERVAL_MS) {
        n->auth_suppressed++;
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n->auth_suppressed > 0) {
        jr__warnf(n, "%s (and %u more refused connections in the last %u s)",
                  msg, n->auth_suppressed,
                  (unsigned)((now - n->auth_logged_at) / 1000));
    } else {
        jr__warnf(n, "%s", msg);
    }
    n->auth_logged_at = now;
    n->auth_suppressed = 0;
}

/* ---- outbound ---- */

static void dial_closed_cb(uv_handle_t *h)
{
    raft_free(h);
}

static void dial_fail(struct jr__dial *d, int status)
{
    if (d->tcp != NULL) {
        uv_close((uv_handle_t *)d->tcp, dial_closed_cb);
        d->tcp = NULL;
    }
    QUEUE_REMOVE(&d->link);
    d->cb(d, NULL, status);
}

static void dial_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct jr__dial *d = h->data;
    (void)suggested;
    /* Exactly the reply: what follows it is the RPC layer's. */
    buf->base = (char *)d->reply + d->reply_got;
    buf->len = d->reply_need - d->reply_got;
}

static void dial_proof_written_cb(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* a failure shows on the stream, which rpc.c owns now */
}

/* The acceptor's whole reply is in: check its proof, answer with ours, and
 * hand the stream over. */
static void dial_replied(struct jr__dial *d)
{
    struct jr_node *n = d->node;
    unsigned char secret[32], ps[JR__AUTH_PROOF_LEN];
    char reason[JR__AUTH_REASON_MAX + 1];
    size_t rlen = d->reply_need - JR__AUTH_REPLY_FIXED;
    uint64_t acceptor = get64(d->reply + 8);
    int status = d->reply[5];
    uv_stream_t *stream;
    uv_buf_t buf;

    memcpy(reason, d->reply + JR__AUTH_REPLY_FIXED, rlen);
    reason[rlen] = '\0';
    if (status == JR__AUTH_NO_SECRET) {
        jr__debugf(n, "peer at %s is not a member of a cluster yet",
                   d->address);
        dial_fail(d, UV_ECONNREFUSED);
        return;
    }
    if (status != JR__AUTH_OK) {
        jr__auth_failed(n, "peer at %s refused this node: %s", d->address,
                        reason[0] != '\0' ? reason : "no reason given");
        dial_fail(d, UV_ECONNREFUSED);
        return;
    }
    if (d->expect_id != 0 && acceptor != d->expect_id) {
        jr__auth_failed(n,
                        "peer at %s is node %llu, not node %llu as the "
                        "configuration says; not talking to it",
                        d->address, (unsigned long long)acceptor,
                        (unsigned long long)d->expect_id);
        dial_fail(d, UV_ECONNREFUSED);
        return;
    }
    if (!jr__secret_copy(n, secret)) {
        dial_fail(d, UV_ECONNREFUSED);
        return;
    }
    jr__auth_proof(secret, "acceptor", d->nc, d->reply + 16, n->cluster_id,
                   n->cfg.id, acceptor, ps);
    if (!jr__auth_equal(ps, d->reply + 48)) {
        jr__auth_failed(n,
                        "peer node %llu at %s could not prove that it holds "
                        "this cluster's secret; closed the connection",
                        (unsigned long long)acceptor, d->address);
        sodium_memzero(secret, sizeof secret);
        dial_fail(d, UV_ECONNREFUSED);
        return;
    }
    jr__auth_proof(secret, "dialer", d->nc, d->reply + 16, n->cluster_id,
                   n->cfg.id, acceptor, d->pd);
    sodium_memzero(secret, sizeof secret);
    (void)uv_read_stop((uv_stream_t *)d->tcp);
    d->reading = false;
    buf = uv_buf_init((char *)d->pd, JR__AUTH_PROOF_LEN);
    d->pd_write.data = d;
    if (uv_write(&d->pd_write, (uv_stream_t *)d->tcp, &buf, 1,
                 dial_proof_written_cb) != 0) {
        dial_fail(d, UV_ECONNRESET);
        return;
    }
    stream = (uv_stream_t *)d->tcp;
    d->tcp = NULL;
    QUEUE_REMOVE(&d->link);
    d->cb(d, stream, 0);
}

static void dial_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct jr__dial *d = s->data;
    (void)b;
    if (nread == 0) {
        return;
    }
    if (nread < 0 || d->canceled) {
        dial_fail(d, nread < 0 ? (int)nread : UV_ECANCELED);
        return;
    }
    d->reply_got += (size_t)nread;
    if (d->reply_got == JR__AUTH_REPLY_FIXED &&
        d->reply_need == JR__AUTH_REPLY_FIXED) {
        if (memcmp(d->reply, PREAMBLE_MAGIC, 4) != 0 ||
            d->reply[4] != PREAMBLE_VERSION) {
            jr__auth_failed(d->node,
                            "peer at %s answered with something other than a "
                            "jacoraft handshake of version %d",
                            d->address, PREAMBLE_VERSION);
            dial_fail(d, UV_EPROTO);
            return;
        }
        d->reply_need += ((size_t)d->reply[6] << 8) | d->reply[7];
        if (d->reply_need > JR__AUTH_REPLY_FIXED + JR__AUTH_REASON_MAX) {
            dial_fail(d, UV_EPROTO);
            return;
        }
    }
    if (d->reply_got == d->reply_need) {
        dial_replied(d);
    }
}

static void dial_write_cb(uv_write_t *w, int status)
{
    struct jr__dial *d = w->data;
    int rv;
    if (status != 0 || d->canceled) {
        dial_fail(d, status != 0 ? status : UV_ECANCELED);
        return;
    }
    d->reply_got = 0;
    d->reply_need = JR__AUTH_REPLY_FIXED;
    d->tcp->data = d;
    d->reading = true;
    rv = uv_read_start((uv_stream_t *)d->tcp, dial_alloc_cb, dial_read_cb);
    if (rv != 0) {
        dial_fail(d, rv);
    }
}

static void dial_connect_cb(uv_connect_t *c, int status)
{
    struct jr__dial *d = c->data;
    uv_buf_t buf;
    int rv;
    if (status != 0 || d->canceled) {
        /* The peer's host answered: nothing listens there. */
        d->nobody_listening = status == UV_ECONNREFUSED;
        dial_fail(d, status != 0 ? status : UV_ECANCELED);
        return;
    }
    (void)uv_tcp_nodelay(d->tcp, 1);
    buf = uv_buf_init(d->preamble, (unsigned)d->preamble_len);
    d->write.data = d;
    rv = uv_write(&d->write, (uv_stream_t *)d->tcp, &buf, 1, dial_write_cb);
    if (rv != 0) {
        dial_fail(d, rv);
    }
}

/* Dials are listed so that closing the transport can cancel them. */
static queue *dial_list(struct jr_node *n)
{
    return &n->transport->dials;
}

int jr__dial(struct jr_node *n,
             struct jr__dial *d,
             const char *address,
             uint64_t expect_id,
             int kind,
             jr__dial_cb cb)
{
    struct sockaddr_in sa;
    char msg[JR_ERRMSG_SIZE];
    int rv;
    rv = jr__parse_address(address, &sa, msg);
    if (rv != 0) {
        jr__warnf(n, "connect: %s", msg);
        return rv;
    }
    if (!jr__secret_copy(n, (unsigned char *)msg)) {
        /* Not a member yet: nobody would talk to us. */
        jr__debugf(n, "connect to %s: no cluster secret yet", address);
        return JR_ESTATE;
    }
    sodium_memzero(msg, sizeof msg);
    d->node = n;
    d->cb = cb;
    d->canceled = false;
    d->reading = false;
    d->nobody_listening = false;
    d->expect_id = expect_id;
    (void)snprintf(d->address, sizeof d->address, "%s", address);
    jr__auth_nonce(d->nc);
    d->preamble_len =
        jr__preamble_encode(n, kind, n->cluster_id, d->nc, true, d->preamble);
    d->tcp = raft_malloc(sizeof *d->tcp);
    if (d->tcp == NULL) {
        return JR_ENOMEM;
    }
    rv = uv_tcp_init(&n->loop, d->tcp);
    if (rv != 0) {
        raft_free(d->tcp);
        return jr__err_from_uv(rv);
    }
    d->connect.data = d;
    rv = uv_tcp_connect(&d->connect, d->tcp, (struct sockaddr *)&sa,
                        dial_connect_cb);
    if (rv != 0) {
        uv_close((uv_handle_t *)d->tcp, dial_closed_cb);
        return jr__err_from_uv(rv);
    }
    QUEUE_PUSH(dial_list(n), &d->link);
    return 0;
}

static void dial_cancel(struct jr__dial *d)
{
    d->canceled = true;
    if (d->tcp != NULL && d->reading) {
        /* Waiting for the acceptor's reply: closing the handle cancels no
         * read callback, so the dial's own callback runs from here (else
         * its connection would never be released). */
        dial_fail(d, UV_ECANCELED);
        return;
    }
    if (d->tcp != NULL) {
        /* Closing the handle makes the pending connect or write fail with
         * UV_ECANCELED, which runs the dial's callback. */
        uv_close((uv_handle_t *)d->tcp, dial_closed_cb);
        d->tcp = NULL;
    }
}

/* ---- accepting ---- */

static void incoming_closed_cb(uv_handle_t *h)
{
    struct incoming *in = h->data;
    struct jr__transport *t = in->t;
    raft_free(in->tcp);
    raft_free(in);
    t->pending_closes--;
    if (t->closing && t->pending_closes == 0 && !t->listening &&
        t->close_cb != NULL) {
        void (*cb)(struct jr_node *) = t->close_cb;
        t->close_cb = NULL;
        cb(t->node);
    }
}

static void incoming_abort(struct incoming *in)
{
    if (uv_is_closing((uv_handle_t *)in->tcp)) {
        return; /* a refusal being written when the transport closed */
    }
    QUEUE_REMOVE(&in->link);
    QUEUE_INIT(&in->link);
    in->t->pending_closes++;
    uv_close((uv_handle_t *)in->tcp, incoming_closed_cb);
}

static void incoming_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct incoming *in = h->data;
    (void)suggested;
    /* Read exactly what the handshake still needs: the bytes after it
     * belong to whoever takes the stream over. */
    if (in->proving) {
        buf->base = (char *)in->pd + in->pd_got;
        buf->len = JR__AUTH_PROOF_LEN - in->pd_got;
    } else if (in->nread < PREAMBLE_FIXED) {
        buf->base = (char *)in->fixed + in->nread;
        buf->len = PREAMBLE_FIXED - in->nread;
    } else {
        size_t got = in->nread - PREAMBLE_FIXED;
        buf->base = in->address + got;
        buf->len = in->tail_len - got;
    }
}

static void reply_written_cb(uv_write_t *w, int status)
{
    struct reply_write *r = (struct reply_write *)w;
    struct incoming *in = w->data;
    (void)status;
    if (in != NULL) { /* a refusal: close once it is out */
        incoming_abort(in);
    }
    raft_free(r);
}

/* Send the reply; data is the incoming to close after it (a refusal) or
 * NULL. */
static int reply_send(struct incoming *in,
                      int status,
                      const unsigned char *proof,
                      const char *reason)
{
    struct reply_write *r = raft_malloc(sizeof *r);
    uv_buf_t buf;
    if (r == NULL) {
        return -1;
    }
    buf = uv_buf_init((char *)r->buf, (unsigned)jr__auth_reply_encode(
                                          status, in->t->node->cfg.id, in->ns,
                                          proof, reason, r->buf));
    r->write.data = status >= JR__AUTH_REFUSED ? in : NULL;
    if (uv_write(&r->write, (uv_stream_t *)in->tcp, &buf, 1,
                 reply_written_cb) != 0) {
        raft_free(r);
        return -1;
    }
    return 0;
}

/* Tell the dialer why, then close. */
static void incoming_refuse(struct incoming *in, int status, const char *why)
{
    (void)uv_read_stop((uv_stream_t *)in->tcp);
    in->refused = true;
    if (reply_send(in, status, NULL, why) != 0) {
        incoming_abort(in);
    }
}

/* Give the stream to the RPC layer. */
static void incoming_handover(struct incoming *in, bool member)
{
    struct jr_node *n = in->t->node;
    uv_stream_t *stream = (uv_stream_t *)in->tcp;
    (void)uv_read_stop(stream);
    QUEUE_REMOVE(&in->link);
    stream->data = NULL;
    /* Raft messages and library RPCs share the connection (rpc.c). A
     * joiner's connection carries no node id: nothing it says counts as
     * hearing from a member. */
    jr__rpc_accept(n, stream, member ? in->id : 0, in->address, member,
                   in->fixed + 56, in->ns);
    raft_free(in);
}

static void incoming_preamble_done(struct incoming *in)
{
    struct jr__transport *t = in->t;
    struct jr_node *n = t->node;
    char peer_cluster[JR__CLUSTER_ID_LEN + 1];
    char name[MAX_NAME + 1], zone[MAX_ZONE + 1];
    char why[JR__AUTH_REASON_MAX + 1];
    unsigned char secret[32], ps[JR__AUTH_PROOF_LEN];
    size_t alen = in->tail_len - in->name_len - in->zone_len;
    bool member = (in->fixed[49] & PREAMBLE_MEMBER) != 0;
    int kind = in->fixed[5];

    in->id = get64(in->fixed + 40);
    memcpy(peer_cluster, in->fixed + 8, JR__CLUSTER_ID_LEN);
    peer_cluster[JR__CLUSTER_ID_LEN] = '\0';
    peer_cluster[strnlen(peer_cluster, JR__CLUSTER_ID_LEN)] = '\0';
    memcpy(name, in->address + alen, in->name_len);
    name[in->name_len] = '\0';
    memcpy(zone, in->address + alen + in->name_len, in->zone_len);
    zone[in->zone_len] = '\0';
    in->address[alen] = '\0';

    if (kind != JR__CONN_RPC) {
        jr__auth_failed(n, "refused connection from %s: unknown kind %d",
                        in->address, kind);
        incoming_refuse(in, JR__AUTH_REFUSED, "unknown connection kind");
        return;
    }
    if (n->cluster_id[0] != '\0' && peer_cluster[0] != '\0' &&
        strcmp(n->cluster_id, peer_cluster) != 0) {
        jr__auth_failed(n,
                        "refused connection from node %llu at %s: it belongs "
                        "to cluster %s, this node to cluster %s",
                        (unsigned long long)in->id, in->address, peer_cluster,
                        n->cluster_id);
        (void)snprintf(why, sizeof why,
                       "node %llu at %s belongs to cluster %s, not %s",
                       (unsigned long long)n->cfg.id, n->address, n->cluster_id,
                       peer_cluster);
        incoming_refuse(in, JR__AUTH_REFUSED, why);
        return;
    }
    if (n->cluster_id[0] != '\0' && strcmp(n->cluster_id, peer_cluster) == 0 &&
        get32(in->fixed + 52) != n->meta.incarnation) {
        /* Two clusters with one id exist after a forced recovery left a
         * node out: they must never merge silently. */
        jr__auth_failed(n,
                        "refused connection from node %llu at %s: it runs "
                        "incarnation %u of cluster %s, this node incarnation "
                        "%u; the node with the older incarnation was left out "
                        "of a forced recovery: wipe its data directory and "
                        "join it again with a token",
                        (unsigned long long)in->id, in->address,
                        (unsigned)get32(in->fixed + 52), n->cluster_id,
                        (unsigned)n->meta.incarnation);
        (void)snprintf(why, sizeof why,
                       "node %llu runs incarnation %u of cluster %s, the "
                       "dialer incarnation %u",
                       (unsigned long long)n->cfg.id,
                       (unsigned)n->meta.incarnation, n->cluster_id,
                       (unsigned)get32(in->fixed + 52));
        incoming_refuse(in, JR__AUTH_REFUSED, why);
        return;
    }
    jr__auth_nonce(in->ns);
    if (!member) {
        /* A joiner: no secret to prove, so it may only ask (rpc.c). */
        if (reply_send(in, JR__AUTH_JOINER, NULL, NULL) != 0) {
            incoming_abort(in);
            return;
        }
        incoming_handover(in, false);
        return;
    }
    if (!jr__secret_copy(n, secret)) {
        incoming_refuse(in, JR__AUTH_NO_SECRET, "not a member of a cluster");
        return;
    }
    jr__auth_proof(secret, "acceptor", in->fixed + 56, in->ns, n->cluster_id,
                   in->id, n->cfg.id, ps);
    sodium_memzero(secret, sizeof secret);
    if (reply_send(in, JR__AUTH_OK, ps, NULL) != 0) {
        incoming_abort(in);
        return;
    }
    if (in->id != 0) {
        (void)snprintf(in->fixed_name, sizeof in->fixed_name, "%s", name);
        (void)snprintf(in->fixed_zone, sizeof in->fixed_zone, "%s", zone);
    }
    in->proving = true;
}

static void incoming_proof_done(struct incoming *in)
{
    struct jr_node *n = in->t->node;
    unsigned char secret[32], pd[JR__AUTH_PROOF_LEN];
    if (!jr__secret_copy(n, secret)) {
        incoming_abort(in);
        return;
    }
    jr__auth_proof(secret, "dialer", in->fixed + 56, in->ns, n->cluster_id,
                   in->id, n->cfg.id, pd);
    sodium_memzero(secret, sizeof secret);
    if (!jr__auth_equal(pd, in->pd)) {
        jr__auth_failed(n,
                        "refused connection from node %llu at %s: it could "
                        "not prove that it holds this cluster's secret "
                        "(wrong secret file, or not a member)",
                        (unsigned long long)in->id, in->address);
        incoming_abort(in);
        return;
    }
    if (in->id != 0) {
        jr__contact_name(n, in->id, in->fixed_name, in->fixed_zone);
    }
    incoming_handover(in, true);
}

static void incoming_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct incoming *in = s->data;
    (void)b;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        incoming_abort(in);
        return;
    }
    if (in->proving) {
        in->pd_got += (size_t)nread;
        if (in->pd_got == JR__AUTH_PROOF_LEN) {
            incoming_proof_done(in);
        }
        return;
    }
    in->nread += (size_t)nread;
    if (in->nread == PREAMBLE_FIXED) {
        if (memcmp(in->fixed, PREAMBLE_MAGIC, 4) != 0 ||
            in->fixed[4] != PREAMBLE_VERSION) {
            jr__auth_failed(in->t->node,
                            "refused connection: not a jacoraft peer or "
                            "protocol version %u (this node speaks %d)",
                            in->fixed[4], PREAMBLE_VERSION);
            incoming_abort(in);
            return;
        }
        in->tail_len = ((size_t)in->fixed[6] << 8) | in->fixed[7];
        in->name_len = in->fixed[48];
        in->zone_len = in->fixed[50];
        if (in->tail_len == 0 || in->tail_len > MAX_ADDRESS ||
            in->name_len > MAX_NAME || in->zone_len > MAX_ZONE) {
            incoming_abort(in);
            return;
        }
        in->tail_len += in->name_len + in->zone_len;
        return;
    }
    if (in->tail_len > 0 && in->nread == PREAMBLE_FIXED + in->tail_len) {
        incoming_preamble_done(in);
    }
}

static void listener_cb(uv_stream_t *server, int status)
{
    struct jr__transport *t = server->data;
    struct incoming *in;
    if (status != 0 || t->closing) {
        return;
    }
    in = raft_calloc(1, sizeof *in);
    if (in == NULL) {
        return;
    }
    in->t = t;
    in->tcp = raft_malloc(sizeof *in->tcp);
    if (in->tcp == NULL || uv_tcp_init(&t->node->loop, in->tcp) != 0) {
        raft_free(in->tcp);
        raft_free(in);
        return;
    }
    in->tcp->data = in;
    QUEUE_PUSH(&t->incoming, &in->link);
    if (uv_accept(server, (uv_stream_t *)in->tcp) != 0 ||
        uv_read_start((uv_stream_t *)in->tcp, incoming_alloc_cb,
                      incoming_read_cb) != 0) {
        incoming_abort(in);
        return;
    }
    (void)uv_tcp_nodelay(in->tcp, 1);
}

int jr__transport_listen(struct jr_node *n, char *errmsg)
{
    struct jr__transport *t = n->transport;
    struct sockaddr_in sa;
    int rv;
    if (t->listening) {
        return 0;
    }
    rv = jr__parse_address(n->address, &sa, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = uv_tcp_init(&n->loop, &t->listener);
    if (rv != 0) {
        jr__errf(errmsg, "listen on %s: %s", n->address, uv_strerror(rv));
        return JR_EIO;
    }
    t->listener.data = t;
    t->listening = true;
    rv = uv_tcp_bind(&t->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&t->listener, 128, listener_cb);
    }
    if (rv != 0) {
        jr__errf(errmsg, "listen on %s: %s", n->address, uv_strerror(rv));
        return JR_EIO;
    }
    return 0;
}

static void listener_closed_cb(uv_handle_t *h)
{
    struct jr__transport *t = h->data;
    t->listening = false;
    if (t->pending_closes == 0 && t->close_cb != NULL) {
        void (*cb)(struct jr_node *) = t->close_cb;
        t->close_cb = NULL;
        cb(t->node);
    }
}

void jr__transport_close(struct jr_node *n, void (*cb)(struct jr_node *n))
{
    struct jr__transport *t = n->transport;
    t->closing = true;
    t->close_cb = cb;
    while (!QUEUE_IS_EMPTY(&t->dials)) {
        queue *q = QUEUE_HEAD(&t->dials);
        struct jr__dial *d = QUEUE_DATA(q, struct jr__dial, link);
        QUEUE_REMOVE(q);
        QUEUE_INIT(q);
        dial_cancel(d);
    }
    while (!QUEUE_IS_EMPTY(&t->incoming)) {
        struct incoming *in =
            QUEUE_DATA(QUEUE_HEAD(&t->incoming), struct incoming, link);
        incoming_abort(in);
    }
    if (t->listening) {
        uv_close((uv_handle_t *)&t->listener, listener_closed_cb);
    } else if (t->pending_closes == 0) {
        t->close_cb = NULL;
        cb(n);
    }
}

bool jr__transport_is_open(struct jr_node *n)
{
    struct jr__transport *t = n->transport;
    return !t->closing || t->listening || t->pending_closes > 0;
}

int jr__transport_init(struct jr_node *n)
{
    struct jr__transport *t = raft_calloc(1, sizeof *t);
    if (t == NULL) {
        return JR_ENOMEM;
    }
    t->node = n;
    QUEUE_INIT(&t->dials);
    QUEUE_INIT(&t->incoming);
    n->transport = t;
    return 0;
}

void jr__transport_free(struct jr_node *n)
{
    raft_free(n->transport);
    n->transport = NULL;
}
