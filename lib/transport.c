/* transport.c: the node's TCP listener and outgoing connections. Every
 * connection opens with a preamble (protocol version, kind, cluster id,
 * sender id, address and name), so that a peer of another cluster is
 * refused before any message is read; raft messages and library RPCs then
 * share it (rpc.c). Sockets get TCP_NODELAY: raft sends small messages and
 * waits for their answers. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"

#define PREAMBLE_MAGIC "JACO"
#define PREAMBLE_VERSION 1
#define PREAMBLE_FIXED 56
#define MAX_ADDRESS 255
#define MAX_NAME 63

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

struct incoming {
    queue link;
    struct jr__transport *t;
    uv_tcp_t *tcp;
    unsigned char fixed[PREAMBLE_FIXED];
    char address[MAX_ADDRESS + MAX_NAME + 2];
    size_t nread;
    size_t address_len; /* address and name, as sent */
    size_t name_len;
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
                           char *out)
{
    unsigned char *p = (unsigned char *)out;
    size_t alen = strlen(n->address);
    size_t nlen;
    memset(p, 0, PREAMBLE_FIXED);
    memcpy(p, PREAMBLE_MAGIC, 4);
    p[4] = PREAMBLE_VERSION;
    p[5] = (unsigned char)kind;
    p[6] = (unsigned char)(alen >> 8);
    p[7] = (unsigned char)(alen & 0xff);
    memcpy(p + 8, cluster_id, strnlen(cluster_id, JR__CLUSTER_ID_LEN));
    put64(p + 40, n->cfg.id);
    nlen = strlen(n->name);
    if (nlen > MAX_NAME) {
        nlen = MAX_NAME;
    }
    p[48] = (unsigned char)nlen;
    put32(p + 52, n->meta.incarnation);
    memcpy(p + PREAMBLE_FIXED, n->address, alen);
    memcpy(p + PREAMBLE_FIXED + alen, n->name, nlen);
    return PREAMBLE_FIXED + alen + nlen;
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

static void dial_write_cb(uv_write_t *w, int status)
{
    struct jr__dial *d = w->data;
    uv_stream_t *stream;
    if (status != 0 || d->canceled) {
        dial_fail(d, status != 0 ? status : UV_ECANCELED);
        return;
    }
    stream = (uv_stream_t *)d->tcp;
    d->tcp = NULL;
    QUEUE_REMOVE(&d->link);
    d->cb(d, stream, 0);
}

static void dial_connect_cb(uv_connect_t *c, int status)
{
    struct jr__dial *d = c->data;
    uv_buf_t buf;
    int rv;
    if (status != 0 || d->canceled) {
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
    d->node = n;
    d->cb = cb;
    d->canceled = false;
    d->preamble_len = jr__preamble_encode(n, kind, n->cluster_id, d->preamble);
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
    QUEUE_REMOVE(&in->link);
    in->t->pending_closes++;
    uv_close((uv_handle_t *)in->tcp, incoming_closed_cb);
}

static void incoming_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct incoming *in = h->data;
    (void)suggested;
    /* Read exactly what the preamble still needs: the bytes after it
     * belong to whoever takes the stream over. */
    if (in->nread < PREAMBLE_FIXED) {
        buf->base = (char *)in->fixed + in->nread;
        buf->len = PREAMBLE_FIXED - in->nread;
    } else {
        size_t got = in->nread - PREAMBLE_FIXED;
        buf->base = in->address + got;
        buf->len = in->address_len - got;
    }
}

static void incoming_done(struct incoming *in)
{
    struct jr__transport *t = in->t;
    struct jr_node *n = t->node;
    char peer_cluster[JR__CLUSTER_ID_LEN + 1];
    uint64_t id = get64(in->fixed + 40);
    int kind = in->fixed[5];
    uv_stream_t *stream = (uv_stream_t *)in->tcp;
    char name[MAX_NAME + 1];
    size_t alen = in->address_len - in->name_len;

    memcpy(peer_cluster, in->fixed + 8, JR__CLUSTER_ID_LEN);
    peer_cluster[JR__CLUSTER_ID_LEN] = '\0';
    peer_cluster[strnlen(peer_cluster, JR__CLUSTER_ID_LEN)] = '\0';
    memcpy(name, in->address + alen, in->name_len);
    name[in->name_len] = '\0';
    in->address[alen] = '\0';
    if (id != 0) {
        jr__contact_name(n, id, name);
    }

    if (n->cluster_id[0] != '\0' && peer_cluster[0] != '\0' &&
        strcmp(n->cluster_id, peer_cluster) != 0) {
        jr__warnf(n,
                  "refused connection from node %llu at %s: it belongs to "
                  "cluster %s, this node to cluster %s",
                  (unsigned long long)id, in->address, peer_cluster,
                  n->cluster_id);
        incoming_abort(in);
        return;
    }
    if (n->cluster_id[0] != '\0' && strcmp(n->cluster_id, peer_cluster) == 0 &&
        get32(in->fixed + 52) != n->meta.incarnation) {
        /* Two clusters with one id exist after a forced recovery left a
         * node out: they must never merge silently. */
        jr__warnf(n,
                  "refused connection from node %llu at %s: it runs "
                  "incarnation %u of cluster %s, this node incarnation %u; "
                  "the node with the older incarnation was left out of a "
                  "forced recovery: wipe its data directory and join it "
                  "again",
                  (unsigned long long)id, in->address,
                  (unsigned)get32(in->fixed + 52), n->cluster_id,
                  (unsigned)n->meta.incarnation);
        incoming_abort(in);
        return;
    }
    if (kind != JR__CONN_RPC) {
        jr__warnf(n, "refused connection from %s: unknown kind %d", in->address,
                  kind);
        incoming_abort(in);
        return;
    }
    QUEUE_REMOVE(&in->link);
    stream->data = NULL;
    /* Raft messages and library RPCs share the connection (rpc.c). */
    jr__rpc_accept(n, stream, id, in->address);
    raft_free(in);
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
    in->nread += (size_t)nread;
    if (in->nread == PREAMBLE_FIXED) {
        if (memcmp(in->fixed, PREAMBLE_MAGIC, 4) != 0 ||
            in->fixed[4] != PREAMBLE_VERSION) {
            jr__warnf(in->t->node,
                      "refused connection: not a jacoraft peer or protocol "
                      "version %u (this node speaks %d)",
                      in->fixed[4], PREAMBLE_VERSION);
            incoming_abort(in);
            return;
        }
        in->address_len = ((size_t)in->fixed[6] << 8) | in->fixed[7];
        in->name_len = in->fixed[48];
        if (in->address_len == 0 || in->address_len > MAX_ADDRESS ||
            in->name_len > MAX_NAME) {
            incoming_abort(in);
            return;
        }
        in->address_len += in->name_len;
        return;
    }
    if (in->nread == PREAMBLE_FIXED + in->address_len && in->address_len > 0) {
        uv_read_stop(s);
        incoming_done(in);
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
