/* kvstore.c: a replicated key-value store built only on libjacoraft's
 * public API; one process per node, and the client for it.
 *
 * Client protocol (TCP, one request per line, answers in request order, so
 * clients may pipeline):
 *
 *   PUT <key> <value>   ->  OK <index>
 *   DEL <key>           ->  OK <index> <1 if the key existed, else 0>
 *   GET <key>           ->  VALUE <value>  |  NOTFOUND       (local read)
 *   LGET <key>          ->  VALUE <value>  |  NOTFOUND       (linearizable)
 *   STATUS              ->  STATUS <json>
 *   TOKEN <ttl seconds> ->  TOKEN <join token>   (for serve --join-token)
 *   SNAPSHOT            ->  SNAPSHOT <index>  (snapshot and compact the log
 *                           now: jr_node_snapshot)
 *   BACKUP <name>       ->  BACKUP <index> <state bytes> <path>  (an online
 *                           backup written by this server to
 *                           <data-dir>/backups/<name>; jaco-backup(8))
 *   any failure         ->  ERR <code> <message>
 *
 * Keys are 1-255 bytes without whitespace; values are up to 64 KiB without
 * newlines. <code> is the library's error slug (no_leader, quorum_lost...).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jacoraft.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"

#define MAX_KEY 255
#define MAX_VALUE 65536
#define MAX_LINE (MAX_KEY + MAX_VALUE + 16)

/* ------------------------------------------------------------------------
 * The state machine: a map (store.c) guarded by a lock, since apply runs
 * on the node's thread and local reads on the server's.
 * --------------------------------------------------------------------- */

static struct store store;

/* Commands: 1 byte op, 1 byte key length, key, value. */
enum { OP_PUT = 'P', OP_DEL = 'D' };

static int fsm_apply(void *data,
                     uint64_t index,
                     const void *buf,
                     size_t len,
                     void **result,
                     size_t *result_len)
{
    const char *p = buf;
    size_t klen;
    int rv = 0;
    (void)data;
    if (len < 2 || (klen = (unsigned char)p[1]) == 0 || len < 2 + klen) {
        return 1; /* not a command of ours: refuse it, deterministically */
    }
    uv_rwlock_wrlock(&store.lock);
    if (p[0] == OP_PUT) {
        rv = store_put(&store, p + 2, klen, p + 2 + klen, len - 2 - klen);
    } else if (p[0] == OP_DEL) {
        bool existed = store_del(&store, p + 2, klen);
        char *r = jr_malloc(1);
        if (r != NULL) {
            r[0] = existed ? '1' : '0';
            *result = r;
            *result_len = 1;
        }
    } else {
        uv_rwlock_wrunlock(&store.lock);
        return 1; /* unknown operation: refused the same way everywhere */
    }
    uv_rwlock_wrunlock(&store.lock);
    if (rv != 0) {
        /* Refusing the command here would let this node's state differ
         * from the others'; stopping is the only deterministic answer. */
        fprintf(stderr, "kvstore: out of memory applying index %llu\n",
                (unsigned long long)index);
        abort();
    }
    return 0;
}

static int snapshot_record(void *arg,
                           const char *key,
                           size_t klen,
                           const char *value,
                           size_t vlen)
{
    struct jr_snapshot_writer *w = arg;
    uint32_t lens[2] = {(uint32_t)klen, (uint32_t)vlen};
    int rv = jr_snapshot_write(w, lens, sizeof lens);
    if (rv == 0) {
        rv = jr_snapshot_write(w, key, klen);
    }
    if (rv == 0) {
        rv = jr_snapshot_write(w, value, vlen);
    }
    return rv;
}

static int fsm_snapshot(void *data, struct jr_snapshot_writer *w)
{
    int rv;
    uint64_t count;
    (void)data;
    /* apply runs on the same thread as this, so the map cannot change
     * underneath; the read lock only keeps readers' view consistent. */
    uv_rwlock_rdlock(&store.lock);
    count = store.count;
    rv = jr_snapshot_write(w, &count, sizeof count);
    if (rv == 0) {
        rv = store_each(&store, snapshot_record, w);
    }
    uv_rwlock_rdunlock(&store.lock);
    return rv;
}

static int fsm_restore(void *data, struct jr_snapshot_reader *r)
{
    uint64_t count, i;
    char *buf = malloc(MAX_KEY + MAX_VALUE);
    int rv = 0;
    (void)data;
    if (buf == NULL) {
        return 1;
    }
    uv_rwlock_wrlock(&store.lock);
    store_clear(&store);
    if (jr_snapshot_read(r, &count, sizeof count) != sizeof count) {
        rv = 1;
        count = 0;
    }
    for (i = 0; i < count && rv == 0; i++) {
        uint32_t lens[2];
        if (jr_snapshot_read(r, lens, sizeof lens) != sizeof lens ||
            lens[0] > MAX_KEY || lens[1] > MAX_VALUE ||
            jr_snapshot_read(r, buf, lens[0] + lens[1]) !=
                (size_t)lens[0] + lens[1] ||
            store_put(&store, buf, lens[0], buf + lens[0], lens[1]) != 0) {
            rv = 1;
        }
    }
    uv_rwlock_wrunlock(&store.lock);
    free(buf);
    return rv;
}

/* ------------------------------------------------------------------------
 * The client-facing server. Its libuv loop runs on the main thread; write
 * completions arrive on the node's thread and are handed over through a
 * locked list and an async handle.
 * --------------------------------------------------------------------- */

struct conn;

struct pending {
    struct pending *next; /* in the connection's answer order */
    struct conn *conn;
    bool ready;   /* answer complete; set on the server thread only */
    bool async;   /* answered by a callback on the node's thread */
    char *answer; /* malloc'd line with newline */
    size_t answer_len;
    struct jr_apply apply;
    struct jr_barrier barrier;
    char key[MAX_KEY + 1];
    struct pending *done_next; /* in the completion hand-over list */
    uv_work_t work;            /* BACKUP: jr_node_backup off the loop */
};

struct conn {
    uv_tcp_t tcp;
    char *rbuf;
    size_t rlen;
    struct pending *head, *tail;
    unsigned inflight;
    bool closing;
    bool flush_queued;
    struct conn *flush_next;
};

static struct jr_node *node;
static uv_loop_t *loop;
static const char *data_dir; /* serve --data-dir */
static uv_async_t done_async;
static uv_mutex_t done_lock;
static struct pending *done_head;
static uv_tcp_t server;
static uv_signal_t sigterm, sigint;

static void conn_maybe_free(struct conn *c);

static void set_answer(struct pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_answer(struct pending *p, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    p->answer = malloc((size_t)n + 2);
    if (p->answer == NULL) {
        p->answer_len = 0;
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(p->answer, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->answer[n] = '\n';
    p->answer_len = (size_t)n + 1;
}

static void set_error(struct pending *p, int code, const char *msg)
{
    set_answer(p, "ERR %s %s", jr_err_slug(code),
               msg != NULL && msg[0] != '\0' ? msg : jr_strerror(code));
}

static void write_cb(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

/* Write every answer that is ready, in order. */
static void conn_flush(struct conn *c)
{
    while (c->head != NULL && c->head->ready) {
        struct pending *p = c->head;
        c->head = p->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        if (!c->closing && p->answer != NULL) {
            uv_write_t *w = malloc(sizeof *w);
            uv_buf_t b = uv_buf_init(p->answer, (unsigned)p->answer_len);
            if (w != NULL) {
                w->data = p->answer;
                if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, write_cb) == 0) {
                    p->answer = NULL;
                } else {
                    free(w);
                }
            }
        }
        free(p->answer);
        free(p);
    }
}

/* Node thread: hand a finished request to the server loop. */
static void hand_over(struct pending *p)
{
    uv_mutex_lock(&done_lock);
    p->done_next = done_head;
    done_head = p;
    uv_mutex_unlock(&done_lock);
    uv_async_send(&done_async);
}

static void apply_cb(struct jr_apply *req,
                     int status,
                     const void *result,
                     size_t result_len)
{
    struct pending *p = req->data;
    if (status != 0) {
        set_error(p, status, req->errmsg);
    } else if (result_len == 1) {
        set_answer(p, "OK %" PRIu64 " %c", req->index,
                   ((const char *)result)[0]);
    } else {
        set_answer(p, "OK %" PRIu64, req->index);
    }
    hand_over(p);
}

static void answer_get(struct pending *p)
{
    const char *value;
    size_t vlen;
    uv_rwlock_rdlock(&store.lock);
    if (!store_get(&store, p->key, strlen(p->key), &value, &vlen)) {
        set_answer(p, "NOTFOUND");
    } else {
        set_answer(p, "VALUE %.*s", (int)vlen, value);
    }
    uv_rwlock_rdunlock(&store.lock);
}

static void barrier_cb(struct jr_barrier *req, int status)
{
    struct pending *p = req->data;
    if (status != 0) {
        set_error(p, status, req->errmsg);
    } else {
        answer_get(p);
    }
    hand_over(p);
}

static void done_cb(uv_async_t *a)
{
    struct pending *list, *p;
    struct conn *conns = NULL;
    (void)a;
    uv_mutex_lock(&done_lock);
    list = done_head;
    done_head = NULL;
    uv_mutex_unlock(&done_lock);
    /* Mark first, flush after: flushing frees answered requests, which may
     * be further down this list. */
    for (p = list; p != NULL; p = p->done_next) {
        struct conn *c = p->conn;
        p->ready = true;
        c->inflight--;
        if (!c->flush_queued) {
            c->flush_queued = true;
            c->flush_next = conns;
            conns = c;
        }
    }
    while (conns != NULL) {
        struct conn *c = conns;
        conns = c->flush_next;
        c->flush_queued = false;
        conn_flush(c);
        conn_maybe_free(c);
    }
}

static void status_json(struct pending *p)
{
    struct jr_status *st;
    char *buf;
    size_t cap = 4096, len = 0;
    unsigned i;
    int rv = jr_node_status(node, &st);
    if (rv != 0) {
        set_error(p, rv, NULL);
        return;
    }
    cap += st->n_peers * 512;
    buf = malloc(cap);
    if (buf == NULL) {
        jr_status_free(st);
        set_error(p, JR_ENOMEM, NULL);
        return;
    }
#define APPEND(...) \
    len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, __VA_ARGS__)
    APPEND("{\"id\":%" PRIu64
           ",\"name\":\"%s\",\"address\":\"%s\","
           "\"cluster_id\":\"%s\",\"state\":\"%s\",\"term\":%" PRIu64
           ",\"leader_id\":%" PRIu64
           ",\"leader_address\":\"%s\","
           "\"commit_index\":%" PRIu64 ",\"applied_index\":%" PRIu64
           ",\"last_index\":%" PRIu64 ",\"snapshot_index\":%" PRIu64
           ",\"health\":\"%s\",\"keys\":%zu,\"loop_busy_max_us\":%" PRIu64
           ",\"loop_slow_turns\":%" PRIu64 ",\"auth_failures\":%" PRIu64
           ",\"data_dir_lost\":%s,\"disk\":\"%s\","
           "\"partially_synced\":%s,\"peers\":[",
           st->id, st->name, st->address, st->cluster_id,
           jr_state_name(st->state), st->term, st->leader_id,
           st->leader_address, st->commit_index, st->applied_index,
           st->last_index, st->snapshot_index,
           st->health == 0 ? "ok" : jr_err_slug(st->health), store.count,
           st->loop_busy_max_us, st->loop_slow_turns, st->auth_failures,
           st->data_dir_lost ? "true" : "false",
           st->disk_error == 0 ? "ok" : jr_err_slug(st->disk_error),
           st->partially_synced ? "true" : "false");
    for (i = 0; i < st->n_peers; i++) {
        const struct jr_peer_status *q = &st->peers[i];
        APPEND("%s{\"id\":%" PRIu64
               ",\"name\":\"%s\",\"address\":\"%s\","
               "\"role\":\"%s\",\"reachable\":%s,\"last_contact_ms\":%" PRId64
               ",\"match_index\":%" PRIu64 ",\"zone\":\"%s\",\"why\":\"%s\"}",
               i > 0 ? "," : "", q->id, q->name, q->address,
               jr_role_name(q->role), q->reachable ? "true" : "false",
               q->last_contact_ms, q->match_index, st->details[i].zone,
               st->details[i].role_reason);
    }
    APPEND("]}");
#undef APPEND
    jr_status_free(st);
    if (len >= cap) {
        set_error(p, JR_ETOOBIG, "status too large");
    } else {
        set_answer(p, "STATUS %s", buf);
    }
    free(buf);
}

static bool valid_key(const char *k, size_t len)
{
    return len > 0 && len <= MAX_KEY && memchr(k, ' ', len) == NULL;
}

static void backup_work(uv_work_t *w)
{
    struct pending *p = w->data;
    struct jr_backup_info *b = calloc(1, sizeof *b);
    struct jr_error err = {0, ""};
    char path[4400];
    int rv;
    (void)snprintf(path, sizeof path, "%s/backups", data_dir);
    (void)mkdir(path, 0700);
    (void)snprintf(path, sizeof path, "%s/backups/%s", data_dir, p->key);
    rv = b == NULL ? JR_ENOMEM
                   : jr_node_backup(node, path, 0, NULL, NULL, b, &err);
    if (rv != 0) {
        set_error(p, rv, err.message[0] != '\0' ? err.message : NULL);
    } else {
        set_answer(p, "BACKUP %" PRIu64 " %" PRIu64 " %s", b->index,
                   b->state_size, path);
    }
    free(b);
}

static void snapshot_work(uv_work_t *w)
{
    struct pending *p = w->data;
    struct jr_error err = {0, ""};
    uint64_t index = 0;
    int rv = jr_node_snapshot(node, 0, &index, &err);
    if (rv != 0) {
        set_error(p, rv, err.message[0] != '\0' ? err.message : NULL);
    } else {
        set_answer(p, "SNAPSHOT %" PRIu64, index);
    }
}

static void async_done(uv_work_t *w, int status)
{
    (void)status;
    hand_over(w->data);
}

/* jr_node_backup and jr_node_snapshot block (a barrier, then a write): run
 * them on libuv's thread pool, and answer like an asynchronous read. */
static void start_async(struct conn *c, struct pending *p, uv_work_cb work)
{
    p->async = true;
    c->inflight++;
    p->work.data = p;
    if (uv_queue_work(loop, &p->work, work, async_done) != 0) {
        p->async = false;
        c->inflight--;
        set_error(p, JR_ENOMEM, NULL);
        p->ready = true;
    }
}

static void handle_line(struct conn *c, char *line, size_t len)
{
    struct pending *p = calloc(1, sizeof *p);
    char *sp, *key, *value = NULL;
    size_t klen, vlen = 0;
    int rv;
    if (p == NULL) {
        return;
    }
    p->conn = c;
    if (c->tail != NULL) {
        c->tail->next = p;
    } else {
        c->head = p;
    }
    c->tail = p;
    if (len > 0 && line[len - 1] == '\r') {
        line[--len] = '\0';
    }
    sp = memchr(line, ' ', len);
    key = sp != NULL ? sp + 1 : line + len;
    if (sp != NULL) {
        *sp = '\0';
    }
    if (strcmp(line, "STATUS") == 0) {
        status_json(p);
        p->ready = true;
        return;
    }
    if (strcmp(line, "BACKUP") == 0) {
        /* A bare file name, into the server's own directory: the protocol
         * is unauthenticated, so a client must not choose where it
         * writes. */
        if (key[0] == '\0' || key[0] == '.' || strchr(key, '/') != NULL ||
            strlen(key) > MAX_KEY) {
            set_error(p, JR_EINVAL,
                      "usage: BACKUP <name> (a file name, written into "
                      "<data-dir>/backups/)");
            p->ready = true;
            return;
        }
        memcpy(p->key, key, strlen(key) + 1);
        start_async(c, p, backup_work);
        return;
    }
    if (strcmp(line, "SNAPSHOT") == 0) {
        start_async(c, p, snapshot_work);
        return;
    }
    if (strcmp(line, "TOKEN") == 0) {
        char token[JR_JOIN_TOKEN_SIZE];
        struct jr_error err = {0, ""};
        long ttl = strtol(key, NULL, 10);
        rv = jr_join_token_issue(node, ttl > 0 ? (unsigned)ttl : 3600, token,
                                 sizeof token, &err);
        if (rv != 0) {
            set_error(p, rv, err.message);
        } else {
            set_answer(p, "TOKEN %s", token);
        }
        p->ready = true;
        return;
    }
    klen = strlen(key);
    if (strcmp(line, "PUT") == 0) {
        char *vs = memchr(key, ' ', klen);
        if (vs == NULL) {
            set_error(p, JR_EINVAL, "usage: PUT <key> <value>");
            p->ready = true;
            return;
        }
        *vs = '\0';
        klen = (size_t)(vs - key);
        value = vs + 1;
        vlen = strlen(value);
    }
    if (!valid_key(key, klen) || vlen > MAX_VALUE) {
        set_error(p, JR_EINVAL, "bad key or value");
        p->ready = true;
        return;
    }
    memcpy(p->key, key, klen + 1);
    if (strcmp(line, "GET") == 0) {
        answer_get(p);
    } else if (strcmp(line, "LGET") == 0) {
        p->barrier.data = p;
        p->async = true;
        c->inflight++;
        rv = jr_barrier(node, &p->barrier, barrier_cb);
        if (rv != 0) {
            p->async = false;
            c->inflight--;
            set_error(p, rv, NULL);
        }
    } else if (strcmp(line, "PUT") == 0 || strcmp(line, "DEL") == 0) {
        char cmd[2 + MAX_KEY + MAX_VALUE];
        size_t clen = 2 + klen + vlen;
        cmd[0] = line[0] == 'P' ? OP_PUT : OP_DEL;
        cmd[1] = (char)klen;
        memcpy(cmd + 2, key, klen);
        if (vlen > 0) {
            memcpy(cmd + 2 + klen, value, vlen);
        }
        p->apply.data = p;
        p->async = true;
        c->inflight++;
        rv = jr_apply(node, &p->apply, cmd, clen, apply_cb);
        if (rv != 0) {
            p->async = false;
            c->inflight--;
            set_error(p, rv, NULL);
        }
    } else {
        set_error(p, JR_EINVAL,
                  "unknown request (PUT, DEL, GET, LGET, STATUS, TOKEN)");
    }
    if (!p->async) {
        p->ready = true;
    }
}

static void conn_closed_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->tcp.data = NULL;
    conn_maybe_free(c);
}

/* A connection lives until it is closed and no request of it is pending
 * on the node. */
static void conn_maybe_free(struct conn *c)
{
    if (!c->closing || c->inflight > 0 || c->tcp.data != NULL) {
        return;
    }
    while (c->head != NULL) {
        struct pending *p = c->head;
        c->head = p->next;
        free(p->answer);
        free(p);
    }
    free(c->rbuf);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    buf->base = c->rbuf + c->rlen;
    buf->len = MAX_LINE + 1 - c->rlen;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    size_t start = 0, i;
    (void)b;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->rlen += (size_t)nread;
    for (i = c->rlen - (size_t)nread; i < c->rlen; i++) {
        if (c->rbuf[i] == '\n') {
            c->rbuf[i] = '\0';
            handle_line(c, c->rbuf + start, i - start);
            start = i + 1;
        }
    }
    memmove(c->rbuf, c->rbuf + start, c->rlen - start);
    c->rlen -= start;
    if (c->rlen > MAX_LINE) {
        conn_close(c); /* a line longer than any valid request */
        return;
    }
    conn_flush(c);
}

static void accept_cb(uv_stream_t *srv, int status)
{
    struct conn *c;
    if (status != 0) {
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->rbuf = malloc(MAX_LINE + 1)) == NULL) {
        free(c);
        return;
    }
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    (void)s;
    uv_signal_stop(&sigterm);
    uv_signal_stop(&sigint);
    uv_stop(loop);
}

/* ------------------------------------------------------------------------
 * Command line
 * --------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kvstore serve --id N --address HOST:PORT --client "
            "HOST:PORT --data-dir DIR\n"
            "                     [--bootstrap | --initial-cluster "
            "ID=HOST:PORT,... | --join HOST:PORT |\n"
            "                      --join-token TOKEN] [--secret-file FILE] "
            "[--zone ZONE]\n"
            "                     [--promote-after MS] [--max-voters N]\n"
            "                     [--name NAME] [--election-timeout MS] "
            "[--heartbeat-timeout MS]\n"
            "                     [--snapshot-threshold N] "
            "[--snapshot-trailing N] [--verbose]\n"
            "       kvstore [--server HOST:PORT] put KEY VALUE\n"
            "       kvstore [--server HOST:PORT] get [--linearizable] KEY\n"
            "       kvstore [--server HOST:PORT] del KEY\n"
            "       kvstore [--server HOST:PORT] status [--json]\n"
            "       kvstore [--server HOST:PORT] token [TTL_SECONDS]\n"
            "       kvstore [--server HOST:PORT] snapshot      (snapshot and "
            "compact now)\n"
            "       kvstore [--server HOST:PORT] backup NAME   (written by "
            "the server into\n"
            "                                     DATA-DIR/backups/NAME)\n"
            "       kvstore restore --input FILE --id N --address HOST:PORT "
            "--data-dir DIR\n"
            "                       [--name NAME] [--secret-file FILE] "
            "[--force]\n");
}

static int parse_members(char *spec,
                         struct jr_member *m,
                         unsigned max,
                         unsigned *n)
{
    char *save = NULL, *tok;
    *n = 0;
    for (tok = strtok_r(spec, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        if (eq == NULL || *n == max) {
            return -1;
        }
        *eq = '\0';
        m[*n].id = strtoull(tok, &end, 10);
        if (*end != '\0' || m[*n].id == 0) {
            return -1;
        }
        m[*n].address = eq + 1;
        (*n)++;
    }
    return *n > 0 ? 0 : -1;
}

static unsigned parse_uint(const char *opt, const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v == 0 || v > 1000000000UL) {
        fprintf(stderr, "kvstore: %s: '%s' is not a positive integer\n", opt,
                s);
        exit(2);
    }
    return (unsigned)v;
}

static int serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"address", required_argument, NULL, 'a'},
        {"client", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"bootstrap", no_argument, NULL, 'b'},
        {"initial-cluster", required_argument, NULL, 'I'},
        {"join", required_argument, NULL, 'j'},
        {"join-token", required_argument, NULL, 'T'},
        {"secret-file", required_argument, NULL, 'S'},
        {"zone", required_argument, NULL, 'z'},
        {"promote-after", required_argument, NULL, 'P'},
        {"max-voters", required_argument, NULL, 'M'},
        {"name", required_argument, NULL, 'n'},
        {"election-timeout", required_argument, NULL, 'e'},
        {"heartbeat-timeout", required_argument, NULL, 'h'},
        {"snapshot-threshold", required_argument, NULL, 's'},
        {"snapshot-trailing", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    static const struct jr_fsm fsm = {NULL, fsm_apply, fsm_snapshot,
                                      fsm_restore};
    struct jr_config cfg;
    struct jr_error err = {0, ""};
    struct jr_member members[64];
    unsigned n_members = 0;
    const char *client = NULL, *join = NULL, *token = NULL;
    const char *secret_file = NULL;
    unsigned char secret[JR_SECRET_SIZE];
    char *initial = NULL;
    bool bootstrap = false;
    struct sockaddr_in sa;
    char host[64];
    int opt, rv, port;

    jr_config_init(&cfg);
    cfg.fsm = &fsm;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'i': cfg.id = parse_uint("--id", optarg); break;
            case 'a': cfg.address = optarg; break;
            case 'c': client = optarg; break;
            case 'd': cfg.data_dir = data_dir = optarg; break;
            case 'b': bootstrap = true; break;
            case 'I': initial = optarg; break;
            case 'j': join = optarg; break;
            case 'T': token = optarg; break;
            case 'S': secret_file = optarg; break;
            case 'z': cfg.zone = optarg; break;
            case 'P':
                cfg.promote_after_ms = parse_uint("--promote-after", optarg);
                break;
            case 'M':
                cfg.max_voters = parse_uint("--max-voters", optarg);
                break;
            case 'n': cfg.name = optarg; break;
            case 'e':
                cfg.election_timeout_ms =
                    parse_uint("--election-timeout", optarg);
                break;
            case 'h':
                cfg.heartbeat_timeout_ms =
                    parse_uint("--heartbeat-timeout", optarg);
                break;
            case 's':
                cfg.snapshot_threshold =
                    parse_uint("--snapshot-threshold", optarg);
                break;
            case 't':
                cfg.snapshot_trailing =
                    parse_uint("--snapshot-trailing", optarg);
                break;
            case 'v': cfg.log_level = JR_LOG_DEBUG; break;
            case 'H': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (optind != argc || cfg.id == 0 || cfg.address == NULL ||
        client == NULL || cfg.data_dir == NULL ||
        (bootstrap + (initial != NULL) + (join != NULL) + (token != NULL)) >
            1) {
        usage(stderr);
        return 2;
    }
    if (initial != NULL &&
        parse_members(initial, members, 64, &n_members) != 0) {
        fprintf(stderr,
                "kvstore: --initial-cluster: want "
                "ID=HOST:PORT[,ID=HOST:PORT...]\n");
        return 2;
    }
    {
        const char *colon = strrchr(client, ':');
        if (colon == NULL || (size_t)(colon - client) >= sizeof host) {
            fprintf(stderr, "kvstore: --client: want HOST:PORT\n");
            return 2;
        }
        memcpy(host, client, (size_t)(colon - client));
        host[colon - client] = '\0';
        port = atoi(colon + 1);
        if (uv_ip4_addr(host, port, &sa) != 0 || port <= 0) {
            fprintf(stderr, "kvstore: --client: bad address %s\n", client);
            return 2;
        }
    }
    if (store_init(&store) != 0) {
        return 1;
    }
    rv = jr_node_open(&cfg, &node, &err);
    if (rv != 0) {
        fprintf(stderr, "kvstore: %s\n", err.message);
        return 1;
    }
    if (secret_file != NULL) {
        rv = jr_secret_read_file(secret_file, secret, &err);
        if (rv == 0) {
            rv = jr_node_set_secret(node, secret, sizeof secret, &err);
        }
        if (rv != 0) {
            fprintf(stderr, "kvstore: %s\n", err.message);
            jr_node_close(node);
            return 1;
        }
    }
    if (bootstrap) {
        struct jr_member self = {cfg.id, cfg.address};
        rv = jr_node_bootstrap(node, &self, 1, &err);
    } else if (initial != NULL) {
        rv = jr_node_bootstrap(node, members, n_members, &err);
    }
    if (rv == 0) {
        rv = jr_node_start(node, &err);
    }
    if (rv == 0 && token != NULL) {
        bool member = jr_node_cluster_id(node)[0] != '\0';
        rv = jr_node_join_token(node, token, member ? 5000 : 60000, &err);
        if (member && rv != 0 && rv != JR_EMISMATCH) {
            /* Already a member (a restart): only a mismatch matters. */
            fprintf(stderr, "kvstore: warning: %s\n", err.message);
            rv = 0;
        }
    }
    if (rv == 0 && join != NULL) {
        if (jr_node_cluster_id(node)[0] == '\0') {
            rv = jr_node_join(node, join, 60000, &err);
        } else {
            /* Already a member: only make sure it is the same cluster. */
            rv = jr_node_join(node, join, 5000, &err);
            if (rv != 0 && rv != JR_EMISMATCH) {
                fprintf(stderr, "kvstore: warning: %s\n", err.message);
                rv = 0;
            }
        }
    }
    if (rv != 0) {
        fprintf(stderr, "kvstore: %s: %s\n", jr_err_slug(rv), err.message);
        jr_node_close(node);
        return 1;
    }

    loop = uv_default_loop();
    uv_mutex_init(&done_lock);
    uv_async_init(loop, &done_async, done_cb);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 511, accept_cb) != 0) {
        fprintf(stderr, "kvstore: cannot listen on %s\n", client);
        jr_node_close(node);
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "kvstore: node %" PRIu64 " serving clients on %s\n", cfg.id,
            client);
    uv_run(loop, UV_RUN_DEFAULT);

    /* Graceful stop: the node hands leadership over before it goes. */
    fprintf(stderr, "kvstore: stopping\n");
    jr_node_close(node);
    done_cb(&done_async);
    store_free(&store);
    return 0;
}

/* ---- client ---- */

static int client_connect(const char *server_address)
{
    char host[256];
    const char *colon = strrchr(server_address, ':');
    struct addrinfo hints, *ai;
    int fd;
    if (colon == NULL || (size_t)(colon - server_address) >= sizeof host) {
        fprintf(stderr, "kvstore: --server: want HOST:PORT\n");
        exit(2);
    }
    memcpy(host, server_address, (size_t)(colon - server_address));
    host[colon - server_address] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        fprintf(stderr, "kvstore: cannot resolve %s\n", server_address);
        exit(1);
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "kvstore: cannot connect to %s: %s\n", server_address,
                strerror(errno));
        freeaddrinfo(ai);
        exit(1);
    }
    freeaddrinfo(ai);
    return fd;
}

static int client(const char *server_address, int argc, char **argv)
{
    char *line = malloc(MAX_LINE + 64);
    const char *verb = argv[0];
    bool json = false, linearizable = false;
    size_t len = 0;
    ssize_t k;
    int fd, i, n;
    FILE *in;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && strcmp(verb, "status") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--linearizable") == 0 &&
                   strcmp(verb, "get") == 0) {
            linearizable = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "kvstore: %s: unknown option %s\n", verb, argv[i]);
            return 2;
        } else {
            argv[++len] = argv[i];
        }
    }
    if (strcmp(verb, "put") == 0 && len == 2) {
        n = snprintf(line, MAX_LINE + 64, "PUT %s %s\n", argv[1], argv[2]);
    } else if (strcmp(verb, "get") == 0 && len == 1) {
        n = snprintf(line, MAX_LINE + 64, "%s %s\n",
                     linearizable ? "LGET" : "GET", argv[1]);
    } else if (strcmp(verb, "del") == 0 && len == 1) {
        n = snprintf(line, MAX_LINE + 64, "DEL %s\n", argv[1]);
    } else if (strcmp(verb, "status") == 0 && len == 0) {
        n = snprintf(line, MAX_LINE + 64, "STATUS\n");
    } else if (strcmp(verb, "backup") == 0 && len == 1) {
        n = snprintf(line, MAX_LINE + 64, "BACKUP %s\n", argv[1]);
    } else if (strcmp(verb, "snapshot") == 0 && len == 0) {
        n = snprintf(line, MAX_LINE + 64, "SNAPSHOT\n");
    } else if (strcmp(verb, "token") == 0 && len <= 1) {
        n = snprintf(line, MAX_LINE + 64, "TOKEN %s\n",
                     len == 1 ? argv[1] : "3600");
    } else {
        usage(stderr);
        return 2;
    }
    if (n >= MAX_LINE) {
        fprintf(stderr, "kvstore: key or value too long\n");
        return 2;
    }
    fd = client_connect(server_address);
    if (write(fd, line, (size_t)n) != n) {
        fprintf(stderr, "kvstore: send: %s\n", strerror(errno));
        return 1;
    }
    in = fdopen(fd, "r");
    len = 0;
    free(line);
    line = NULL;
    k = getline(&line, &len, in);
    fclose(in);
    if (k <= 0) {
        fprintf(stderr, "kvstore: no answer from %s\n", server_address);
        return 1;
    }
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "ERR ", 4) == 0) {
        char *msg = strchr(line + 4, ' ');
        if (msg != NULL) {
            *msg++ = '\0';
        }
        fprintf(stderr, "Error{code: %s}: %s\n", line + 4,
                msg != NULL ? msg : "");
        free(line);
        return 1;
    }
    if (strncmp(line, "VALUE ", 6) == 0) {
        printf("%s\n", line + 6);
    } else if (strcmp(line, "NOTFOUND") == 0) {
        fprintf(stderr, "Error{code: not_found}: no such key\n");
        free(line);
        return 1;
    } else if (strncmp(line, "TOKEN ", 6) == 0 ||
               strncmp(line, "BACKUP ", 7) == 0 ||
               strncmp(line, "SNAPSHOT ", 9) == 0) {
        printf("%s\n", strchr(line, ' ') + 1);
    } else if (strncmp(line, "STATUS ", 7) == 0) {
        if (json) {
            printf("%s\n", line + 7);
        } else {
            /* The human form: the JSON, one field per line. */
            char *p;
            for (p = line + 7; *p != '\0'; p++) {
                if (*p == ',' && p[1] == '"' && p[-1] != '}') {
                    putchar('\n');
                } else if (*p == '{' && p[1] == '"' && p != line + 7) {
                    fputs("\n  ", stdout);
                } else if (*p != '"' && *p != '{' && *p != '}' && *p != '[' &&
                           *p != ']') {
                    putchar(*p == ':' ? '=' : *p);
                }
            }
            putchar('\n');
        }
    } else {
        printf("%s\n", line);
    }
    free(line);
    return 0;
}

/* Offline: a fresh data directory becomes a one-voter cluster holding the
 * backup (jr_backup_restore); serve it without --bootstrap or --join. */
static int restore(int argc, char **argv)
{
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'f'},
        {"id", required_argument, NULL, 'i'},
        {"address", required_argument, NULL, 'a'},
        {"data-dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"secret-file", required_argument, NULL, 'S'},
        {"force", no_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    struct jr_restore_opts o;
    struct jr_backup_info *b;
    struct jr_error err = {0, ""};
    unsigned char secret[JR_SECRET_SIZE];
    const char *input = NULL;
    int opt, rv;
    memset(&o, 0, sizeof o);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
            case 'f': input = optarg; break;
            case 'i': o.node_id = parse_uint("--id", optarg); break;
            case 'a': o.address = optarg; break;
            case 'd': o.data_dir = optarg; break;
            case 'n': o.name = optarg; break;
            case 'F': o.flags |= JR_RESTORE_FORCE; break;
            case 'S':
                if (jr_secret_read_file(optarg, secret, &err) != 0) {
                    fprintf(stderr, "kvstore: --secret-file: %s\n",
                            err.message);
                    return 2;
                }
                o.secret = secret;
                break;
            default: usage(stderr); return 2;
        }
    }
    if (input == NULL || o.node_id == 0 || o.address == NULL ||
        o.data_dir == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return 1;
    }
    rv = jr_backup_restore(input, &o, b, &err);
    if (rv != 0) {
        fprintf(stderr, "Error{code: %s}: %s\n", jr_err_slug(rv), err.message);
        free(b);
        return 1;
    }
    printf("restored cluster %s at index %" PRIu64 " into %s\n", b->cluster_id,
           b->index, o.data_dir);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    const char *server_address = "127.0.0.1:7001";
    int i = 1;
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
        return serve(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "restore") == 0) {
        return restore(argc - 1, argv + 1);
    }
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            server_address = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kvstore: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    return client(server_address, argc - i, argv + i);
}
