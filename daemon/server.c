/* server.c: the client API's listeners and connections (see server.h and
 * proto.h). Each connection reads one frame, hands it to the thread pool,
 * writes the reply, then reads the next: replies come in request order. A
 * frame over JD_MAX_REQUEST is answered with too_large and the connection
 * closed, since its remainder cannot be skipped safely; a malformed one is
 * answered with malformed_request and the connection stays usable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/queue.h"
#include "mp.h"
#include "server.h"

#define WATCH_BACKLOG (1u << 20) /* bytes queued to a slow watcher */

struct conn {
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct jd_server *srv; /* for the list of connections only */
    uv_loop_t *loop;
    struct jd_ctx ctx; /* a copy: work may outlive the server's memory */
    struct jd_client client;
    uv_shutdown_t shutdown;
    queue link;
    char *buf; /* bytes read, not yet a whole frame */
    size_t len;
    size_t cap;
    bool busy;     /* a request is with the thread pool */
    bool closing;  /* uv_close called or wanted */
    bool watching; /* gets change events */
    bool close_after_reply;
    uv_work_t work;
    char *body; /* the request being handled */
    size_t body_len;
    msgpack_sbuffer reply;
};

struct jd_server {
    uv_loop_t *loop;
    struct jd_ctx ctx;
    uv_pipe_t unix_listener;
    uv_tcp_t tcp_listener;
    bool has_tcp;
    bool socket_ours; /* bound by us: removed at stop */
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    queue conns;
    uv_async_t notify;
    uv_mutex_t mutex; /* events */
    struct event {
        uint64_t index;
        char type[32];
    } * events;
    unsigned n_events, cap_events;
};

struct write_req {
    uv_write_t req;
    msgpack_sbuffer body;
    unsigned char hdr[4];
};

static void conn_closed_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    free(c->buf);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    QUEUE_REMOVE(&c->link);
    if (!c->busy) {
        uv_close((uv_handle_t *)&c->h.stream, conn_closed_cb);
    }
    /* else after_work closes it */
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    uv_close((uv_handle_t *)&c->h.stream, conn_closed_cb);
}

/* Close once what is queued to it has been written (a last error reply). */
static void conn_close_after_writes(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    QUEUE_REMOVE(&c->link);
    c->shutdown.data = c;
    (void)uv_read_stop(&c->h.stream);
    if (uv_shutdown(&c->shutdown, &c->h.stream, shutdown_cb) != 0) {
        uv_close((uv_handle_t *)&c->h.stream, conn_closed_cb);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    (void)status;
    msgpack_sbuffer_destroy(&w->body);
    free(w);
}

/* Send sb (taken) as a frame. */
static void send_frame(struct conn *c, msgpack_sbuffer *sb)
{
    struct write_req *w = malloc(sizeof *w);
    uv_buf_t bufs[2];
    if (w == NULL) {
        msgpack_sbuffer_destroy(sb);
        conn_close(c);
        return;
    }
    w->body = *sb;
    jd_frame_header(w->hdr, (uint32_t)w->body.size);
    bufs[0] = uv_buf_init((char *)w->hdr, sizeof w->hdr);
    bufs[1] = uv_buf_init(w->body.data, (unsigned)w->body.size);
    if (uv_write(&w->req, &c->h.stream, bufs, 2, write_cb) != 0) {
        msgpack_sbuffer_destroy(&w->body);
        free(w);
        conn_close(c);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap == 0 ? 8192 : c->cap * 2;
        char *b = realloc(c->buf, cap);
        if (b == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void work_cb(uv_work_t *w)
{
    struct conn *c = w->data;
    struct jd_request req;
    char err[256];
    if (jd_request_decode(c->body, c->body_len, &req, err, sizeof err) != 0) {
        jd_reply_error(&c->reply, JD_CODE_MALFORMED, "%s", err);
        return;
    }
    if (strcmp(req.op, "watch") == 0) {
        msgpack_packer pk;
        c->watching = true;
        jd_reply_ok(&c->reply, &pk);
        msgpack_pack_nil(&pk);
    } else {
        jd_api_handle(&c->ctx, &c->client, &req, &c->reply);
    }
    jd_request_free(&req);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void next_request(struct conn *c);

static void after_work_cb(uv_work_t *w, int status)
{
    struct conn *c = w->data;
    (void)status;
    free(c->body);
    c->body = NULL;
    c->busy = false;
    if (c->closing) {
        msgpack_sbuffer_destroy(&c->reply);
        uv_close((uv_handle_t *)&c->h.stream, conn_closed_cb);
        return;
    }
    send_frame(c, &c->reply);
    if (c->closing) {
        return;
    }
    if (c->watching) {
        /* A watcher sends nothing more; reading only notices its close. */
        c->len = 0;
        (void)uv_read_start(&c->h.stream, alloc_cb, read_cb);
        return;
    }
    next_request(c);
}

/* Start on the next whole frame in the buffer, or read on. */
static void next_request(struct conn *c)
{
    uint32_t n;
    if (c->busy || c->closing) {
        return;
    }
    if (c->len >= 4) {
        n = jd_frame_length((unsigned char *)c->buf);
        if (n > JD_MAX_REQUEST) {
            msgpack_sbuffer sb;
            jd_reply_error(&sb, JD_CODE_TOO_LARGE,
                           "request of %u bytes (at most %u); closing", n,
                           JD_MAX_REQUEST);
            send_frame(c, &sb);
            conn_close_after_writes(c);
            return;
        }
        if (c->len >= 4 + (size_t)n) {
            c->body = malloc(n > 0 ? n : 1);
            if (c->body == NULL) {
                conn_close(c);
                return;
            }
            memcpy(c->body, c->buf + 4, n);
            c->body_len = n;
            memmove(c->buf, c->buf + 4 + n, c->len - 4 - n);
            c->len -= 4 + (size_t)n;
            c->busy = true;
            (void)uv_read_stop(&c->h.stream);
            c->work.data = c;
            if (uv_queue_work(c->loop, &c->work, work_cb, after_work_cb) != 0) {
                c->busy = false;
                free(c->body);
                c->body = NULL;
                conn_close(c);
            }
            return;
        }
    }
    (void)uv_read_start(&c->h.stream, alloc_cb, read_cb);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->watching) {
        c->len = 0; /* ignored */
        return;
    }
    c->len += (size_t)n;
    next_request(c);
}

static void describe_client(struct conn *c, bool local)
{
    c->client.local = local;
    if (local) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->h.stream, &fd) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            snprintf(c->client.who, sizeof c->client.who,
                     "uid %u pid %d (local socket)", (unsigned)cred.uid,
                     (int)cred.pid);
        } else {
            snprintf(c->client.who, sizeof c->client.who, "local socket");
        }
    } else {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char host[64] = "?";
        int port = 0;
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0 &&
            ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            uv_ip4_name(in, host, sizeof host);
            port = ntohs(in->sin_port);
        }
        snprintf(c->client.who, sizeof c->client.who, "tcp %s:%d", host, port);
    }
}

static void accept_cb(uv_stream_t *listener, int status, bool local)
{
    struct jd_server *srv = listener->data;
    struct conn *c;
    if (status != 0 || (c = calloc(1, sizeof *c)) == NULL) {
        return;
    }
    c->srv = srv;
    c->loop = srv->loop;
    c->ctx = srv->ctx;
    if (local) {
        uv_pipe_init(srv->loop, &c->h.pipe, 0);
    } else {
        uv_tcp_init(srv->loop, &c->h.tcp);
    }
    c->h.stream.data = c;
    QUEUE_PUSH(&srv->conns, &c->link);
    if (uv_accept(listener, &c->h.stream) != 0) {
        conn_close(c);
        return;
    }
    if (!local) {
        (void)uv_tcp_nodelay(&c->h.tcp, 1);
    }
    describe_client(c, local);
    next_request(c);
}

static void unix_accept_cb(uv_stream_t *l, int status)
{
    accept_cb(l, status, true);
}

static void tcp_accept_cb(uv_stream_t *l, int status)
{
    accept_cb(l, status, false);
}

/* ---- watchers ---- */

void jd_server_notify(struct jd_server *srv, uint64_t index, const char *type)
{
    uv_mutex_lock(&srv->mutex);
    if (srv->n_events == srv->cap_events) {
        unsigned cap = srv->cap_events == 0 ? 64 : srv->cap_events * 2;
        void *e = realloc(srv->events, cap * sizeof *srv->events);
        if (e == NULL) {
            uv_mutex_unlock(&srv->mutex);
            return;
        }
        srv->events = e;
        srv->cap_events = cap;
    }
    srv->events[srv->n_events].index = index;
    snprintf(srv->events[srv->n_events].type,
             sizeof srv->events[srv->n_events].type, "%s", type);
    srv->n_events++;
    uv_mutex_unlock(&srv->mutex);
    (void)uv_async_send(&srv->notify);
}

static void notify_cb(uv_async_t *a)
{
    struct jd_server *srv = a->data;
    struct event *events;
    unsigned n, i;
    queue *q, *next;
    uv_mutex_lock(&srv->mutex);
    events = srv->events;
    n = srv->n_events;
    srv->events = NULL;
    srv->n_events = srv->cap_events = 0;
    uv_mutex_unlock(&srv->mutex);
    for (q = QUEUE_NEXT(&srv->conns); q != &srv->conns; q = next) {
        struct conn *c = QUEUE_DATA(q, struct conn, link);
        next = QUEUE_NEXT(q);
        if (!c->watching || c->closing) {
            continue;
        }
        if (uv_stream_get_write_queue_size(&c->h.stream) > WATCH_BACKLOG) {
            conn_close(c); /* too slow: it reconnects and re-reads */
            continue;
        }
        for (i = 0; i < n && !c->closing; i++) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            jd_reply_ok(&sb, &pk);
            msgpack_pack_map(&pk, 2);
            jd_mp_key(&pk, "index");
            msgpack_pack_uint64(&pk, events[i].index);
            jd_mp_kv_str(&pk, "type", events[i].type);
            send_frame(c, &sb);
        }
    }
    free(events);
}

/* ---- listeners ---- */

/* A socket file that nobody accepts on is left over from a crash. */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    int fd, rv;
    if (access(path, F_OK) != 0) {
        return 0;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    rv = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
    if (rv == 0) {
        snprintf(err, errlen,
                 "%s: another jacod is listening there (stop it first, or "
                 "give this one another --socket)",
                 path);
        return -1;
    }
    if (unlink(path) != 0) {
        snprintf(err, errlen, "remove stale socket %s: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int make_parent_dir(const char *path, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *slash;
    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        return 0;
    }
    *slash = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "create %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int parse_hostport(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    char *end;
    long port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof host) {
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
        return -1;
    }
    return uv_ip4_addr(host, (int)port, sa);
}

struct jd_server *jd_server_start(uv_loop_t *loop,
                                  const struct jd_ctx *ctx,
                                  const char *socket_path,
                                  const char *tcp_address,
                                  char *err,
                                  size_t errlen)
{
    struct jd_server *srv = calloc(1, sizeof *srv);
    int rv;
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (strlen(socket_path) >= sizeof srv->socket_path) {
        snprintf(err, errlen, "socket path %s is too long", socket_path);
        free(srv);
        return NULL;
    }
    srv->loop = loop;
    srv->ctx = *ctx;
    snprintf(srv->socket_path, sizeof srv->socket_path, "%s", socket_path);
    QUEUE_INIT(&srv->conns);
    uv_mutex_init(&srv->mutex);
    uv_async_init(loop, &srv->notify, notify_cb);
    srv->notify.data = srv;
    uv_pipe_init(loop, &srv->unix_listener, 0);
    srv->unix_listener.data = srv;
    if (make_parent_dir(socket_path, err, errlen) != 0 ||
        clear_stale_socket(socket_path, err, errlen) != 0) {
        goto fail;
    }
    {
        /* Created 0600: the kernel checks who may connect (root, or the
         * user jacod runs as). */
        mode_t old = umask(0177);
        rv = uv_pipe_bind(&srv->unix_listener, socket_path);
        umask(old);
        srv->socket_ours = rv == 0;
    }
    if (rv != 0 || (rv = uv_listen((uv_stream_t *)&srv->unix_listener, 64,
                                   unix_accept_cb)) != 0) {
        snprintf(err, errlen, "listen on %s: %s", socket_path, uv_strerror(rv));
        goto fail;
    }
    if (tcp_address != NULL && tcp_address[0] != '\0') {
        struct sockaddr_in sa;
        uv_tcp_init(loop, &srv->tcp_listener);
        srv->tcp_listener.data = srv;
        srv->has_tcp = true;
        if (parse_hostport(tcp_address, &sa) != 0) {
            snprintf(err, errlen, "client address %s is not IPv4 HOST:PORT",
                     tcp_address);
            goto fail;
        }
        if ((rv = uv_tcp_bind(&srv->tcp_listener, (struct sockaddr *)&sa, 0)) !=
                0 ||
            (rv = uv_listen((uv_stream_t *)&srv->tcp_listener, 64,
                            tcp_accept_cb)) != 0) {
            snprintf(err, errlen, "listen on %s: %s", tcp_address,
                     uv_strerror(rv));
            goto fail;
        }
    }
    return srv;
fail:
    jd_server_stop(srv);
    return NULL;
}

static void srv_closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void notify_closed_cb(uv_handle_t *h)
{
    struct jd_server *srv = h->data;
    uv_mutex_destroy(&srv->mutex);
    free(srv->events);
    free(srv);
}

void jd_server_stop(struct jd_server *srv)
{
    queue *q;
    while (!QUEUE_IS_EMPTY(&srv->conns)) {
        q = QUEUE_HEAD(&srv->conns);
        conn_close(QUEUE_DATA(q, struct conn, link));
    }
    uv_close((uv_handle_t *)&srv->unix_listener, srv_closed_cb);
    /* Never another daemon's socket (a second jacod that failed to start). */
    if (srv->socket_ours) {
        (void)unlink(srv->socket_path);
    }
    if (srv->has_tcp) {
        uv_close((uv_handle_t *)&srv->tcp_listener, srv_closed_cb);
    }
    uv_close((uv_handle_t *)&srv->notify, notify_closed_cb);
}
