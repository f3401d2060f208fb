/* membership.c: joining a running cluster. The joining node asks any
 * member for the cluster id and the leader (INFO), records the cluster id,
 * then asks the leader to add it (JOIN); the leader adds it as a spare and
 * promotes it to voter once it has caught up. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"
#include "jr_internal.h"

void jr__rpc_send_frame(struct jr__conn *c, struct jr__frame *f);
void jr__conn_ref(struct jr__conn *c);
void jr__conn_unref(struct jr__conn *c);

/* ---- leader / member side (loop thread) ---- */

void jr__handle_info(struct jr_node *n,
                     struct jr__conn *c,
                     const struct jr__msg *m)
{
    struct jr__frame f;
    raft_id leader;
    const char *address;
    raft_leader(&n->raft, &leader, &address);
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_INFO_RESULT, 7);
    msgpack_pack_uint64(&f.pk, m->req_id);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    jr__pack_cstr(&f.pk, n->cluster_id);
    msgpack_pack_uint64(&f.pk, leader);
    jr__pack_cstr(&f.pk, leader != 0 && address != NULL ? address : "");
    msgpack_pack_uint64(&f.pk, n->meta.incarnation);
    jr__frame_end(&f);
    jr__rpc_send_frame(c, &f);
    jr__frame_close(&f);
}

struct join_req {
    struct raft_change change;
    struct jr_node *node;
    struct jr__conn *conn;
    uint64_t req_id;
    uint64_t id;
    char address[256];
};

static void join_reply(struct jr_node *n,
                       struct jr__conn *c,
                       uint64_t req_id,
                       int status,
                       const char *errmsg)
{
    struct jr__frame f;
    raft_id leader;
    const char *address;
    raft_leader(&n->raft, &leader, &address);
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN_RESULT, 4);
    msgpack_pack_uint64(&f.pk, req_id);
    msgpack_pack_int64(&f.pk, status);
    jr__pack_cstr(&f.pk, errmsg);
    jr__pack_cstr(&f.pk, leader != 0 && address != NULL ? address : "");
    jr__frame_end(&f);
    jr__rpc_send_frame(c, &f);
    jr__frame_close(&f);
}

static void join_finish(struct join_req *j, int status, const char *errmsg)
{
    struct jr_node *n = j->node;
    if (status == 0) {
        jr__infof(n, "node %llu at %s joined as a voter",
                  (unsigned long long)j->id, j->address);
    } else {
        jr__warnf(n, "join of node %llu at %s failed: %s",
                  (unsigned long long)j->id, j->address, errmsg);
    }
    join_reply(n, j->conn, j->req_id, status, errmsg);
    jr__conn_unref(j->conn);
    free(j);
}

static void join_assigned_cb(struct raft_change *req, int status)
{
    struct join_req *j = req->data;
    if (status != 0) {
        join_finish(j, jr__err_from_raft(status), raft_strerror(status));
        return;
    }
    join_finish(j, 0, "");
}

static void join_promote(struct join_req *j)
{
    struct jr_node *n = j->node;
    int rv;
    j->change.data = j;
    /* raft_assign replicates to the new node and promotes it only once it
     * has caught up, so the cluster never waits on a cold voter. */
    rv = raft_assign(&n->raft, &j->change, j->id, RAFT_VOTER, join_assigned_cb);
    if (rv != 0) {
        join_finish(j, jr__err_from_raft(rv), raft_errmsg(&n->raft));
    }
}

static void join_added_cb(struct raft_change *req, int status)
{
    struct join_req *j = req->data;
    if (status != 0) {
        join_finish(j, jr__err_from_raft(status), raft_strerror(status));
        return;
    }
    join_promote(j);
}

void jr__handle_join(struct jr_node *n,
                     struct jr__conn *c,
                     const struct jr__msg *m)
{
    struct raft_configuration *conf = &n->raft.configuration;
    struct join_req *j;
    char why[JR_ERRMSG_SIZE];
    unsigned i;
    int rv;

    if (n->raft.state != RAFT_LEADER) {
        rv = jr__health(n, why);
        if (rv == 0) {
            rv = JR_ENOLEADER;
            jr__errf(why, "this node is not the leader");
        }
        join_reply(n, c, m->req_id, rv, why);
        return;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        join_reply(n, c, m->req_id, JR_ENOMEM, "out of memory");
        return;
    }
    j->node = n;
    j->conn = c;
    jr__conn_ref(c);
    j->req_id = m->req_id;
    j->id = m->id;
    memcpy(j->address, m->address.ptr, m->address.len);
    j->address[m->address.len] = '\0';
    for (i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        if (s->id == j->id && strcmp(s->address, j->address) != 0) {
            jr__errf(why, "node id %llu is already a member at %s",
                     (unsigned long long)j->id, s->address);
            join_finish(j, JR_EMISMATCH, why);
            return;
        }
        if (s->id != j->id && strcmp(s->address, j->address) == 0) {
            jr__errf(why, "address %s is already used by node %llu", j->address,
                     (unsigned long long)s->id);
            join_finish(j, JR_EMISMATCH, why);
            return;
        }
        if (s->id == j->id) {
            if (s->role == RAFT_VOTER) {
                join_finish(j, 0, "");
            } else {
                join_promote(j);
            }
            return;
        }
    }
    jr__infof(n, "node %llu at %s asks to join", (unsigned long long)j->id,
              j->address);
    j->change.data = j;
    rv = raft_add(&n->raft, &j->change, j->id, j->address, join_added_cb);
    if (rv != 0) {
        int code = rv == RAFT_CANTCHANGE ? JR_EBUSY : jr__err_from_raft(rv);
        join_finish(j, code, raft_errmsg(&n->raft));
    }
}

/* ---- joining side (the caller's thread, blocking sockets) ---- */

static int sock_open(struct jr_node *n,
                     const char *address,
                     const char *cluster_id,
                     unsigned ms,
                     int *out,
                     char *errmsg)
{
    struct sockaddr_in sa;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    char pre[512];
    size_t plen;
    int fd, rv;
    rv = jr__parse_address(address, &sa, errmsg);
    if (rv != 0) {
        return rv;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        jr__errf(errmsg, "socket: %s", strerror(errno));
        return JR_EIO;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        jr__errf(errmsg, "connect to %s: %s", address, strerror(errno));
        close(fd);
        return JR_ECONNECT;
    }
    plen = jr__preamble_encode(n, JR__CONN_RPC, cluster_id, pre);
    if (write(fd, pre, plen) != (ssize_t)plen) {
        jr__errf(errmsg, "send to %s: %s", address, strerror(errno));
        close(fd);
        return JR_ECONNECT;
    }
    *out = fd;
    return 0;
}

static int read_full(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t k = read(fd, buf, len);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Send one frame and read the answer into *buf (malloc'd) and m. */
static int call(int fd,
                struct jr__frame *f,
                char **buf,
                struct jr__msg *m,
                int want,
                const char *address,
                char *errmsg)
{
    unsigned char hdr[4];
    size_t len;
    int rv;
    *buf = NULL;
    if (write(fd, f->sb.data, f->sb.size) != (ssize_t)f->sb.size ||
        read_full(fd, (char *)hdr, 4) != 0) {
        jr__errf(errmsg, "no answer from %s", address);
        return JR_ECONNECT;
    }
    len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) |
          ((size_t)hdr[2] << 8) | hdr[3];
    if (len == 0 || len > 1 << 20 || (*buf = malloc(len)) == NULL ||
        read_full(fd, *buf, len) != 0) {
        free(*buf);
        *buf = NULL;
        jr__errf(errmsg, "bad answer from %s", address);
        return JR_EPROTO;
    }
    rv = jr__msg_decode(*buf, len, m, errmsg);
    if (rv == 0 && m->type != want) {
        jr__msg_free(m);
        jr__errf(errmsg, "unexpected answer type %d from %s", m->type, address);
        rv = JR_EPROTO;
    }
    if (rv != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rv;
}

static void copy_str(char *dst, size_t size, const struct jr__str *s)
{
    size_t k = s->len < size - 1 ? s->len : size - 1;
    if (k > 0) { /* an empty msgpack string has no pointer */
        memcpy(dst, s->ptr, k);
    }
    dst[k] = '\0';
}

/* Ask address for the cluster id and leader. */
static int ask_info(struct jr_node *n,
                    const char *address,
                    unsigned ms,
                    char *cluster_id,
                    uint32_t *incarnation,
                    char *leader,
                    char *errmsg)
{
    struct jr__frame f;
    struct jr__msg m;
    char *buf;
    int fd, rv;
    /* Ask without claiming a cluster, so that a member of another cluster
     * answers rather than refusing us, and the mismatch can be named. */
    rv = sock_open(n, address, "", ms, &fd, errmsg);
    if (rv != 0) {
        return rv;
    }
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_INFO, 1);
    msgpack_pack_uint64(&f.pk, 1);
    jr__frame_end(&f);
    rv = call(fd, &f, &buf, &m, JR__MSG_INFO_RESULT, address, errmsg);
    jr__frame_close(&f);
    close(fd);
    if (rv != 0) {
        return rv;
    }
    copy_str(cluster_id, JR__CLUSTER_ID_LEN + 1, &m.cluster_id);
    copy_str(leader, 256, &m.address);
    *incarnation = (uint32_t)m.incarnation;
    jr__msg_free(&m);
    free(buf);
    return 0;
}

static int ask_join(struct jr_node *n,
                    const char *address,
                    unsigned ms,
                    char *leader_hint,
                    char *errmsg)
{
    struct jr__frame f;
    struct jr__msg m;
    char *buf;
    int fd, rv;
    rv = sock_open(n, address, n->cluster_id, ms, &fd, errmsg);
    if (rv != 0) {
        return rv;
    }
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_uint64(&f.pk, n->cfg.id);
    jr__pack_cstr(&f.pk, n->address);
    jr__pack_cstr(&f.pk, n->name);
    jr__frame_end(&f);
    rv = call(fd, &f, &buf, &m, JR__MSG_JOIN_RESULT, address, errmsg);
    jr__frame_close(&f);
    close(fd);
    if (rv != 0) {
        return rv;
    }
    rv = (int)m.status;
    if (rv != 0) {
        copy_str(errmsg, JR_ERRMSG_SIZE, &m.errmsg);
    }
    copy_str(leader_hint, 256, &m.address);
    jr__msg_free(&m);
    free(buf);
    return rv;
}

int jr_node_join(struct jr_node *n,
                 const char *address,
                 unsigned timeout_ms,
                 struct jr_error *err)
{
    uint32_t incarnation = 0;
    struct jr_status *st;
    char cluster[JR__CLUSTER_ID_LEN + 1], leader[256], hint[256];
    char msg[JR_ERRMSG_SIZE];
    uint64_t deadline;
    int rv;

    if (n == NULL || address == NULL) {
        return jr__error_set(err, JR_EINVAL, "join: bad arguments");
    }
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK, "join: on the loop thread");
    }
    rv = jr_node_status(n, &st);
    if (rv != 0) {
        return jr__error_set(err, rv, "join: the node must be started");
    }
    jr_status_free(st);
    if (timeout_ms == 0) {
        timeout_ms = 30000;
    }
    deadline = uv_hrtime() / 1000000 + timeout_ms;
    for (;;) {
        uint64_t now = uv_hrtime() / 1000000;
        unsigned left = now < deadline ? (unsigned)(deadline - now) : 1;
        rv = ask_info(n, address, left, cluster, &incarnation, leader, msg);
        if (rv != 0) {
            return jr__error_set(err, rv, "join via %s: %s", address, msg);
        }
        if (cluster[0] == '\0') {
            return jr__error_set(err, JR_ESTATE,
                                 "join via %s: that node is not a member of "
                                 "a cluster itself",
                                 address);
        }
        if (n->cluster_id[0] != '\0' && strcmp(n->cluster_id, cluster) != 0) {
            return jr__error_set(
                err, JR_EMISMATCH,
                "join via %s: this data directory (%s) belongs to cluster "
                "%s, not %s; use an empty data directory to join",
                address, n->data_dir, n->cluster_id, cluster);
        }
        if (n->cluster_id[0] != '\0' && n->meta.incarnation != incarnation) {
            return jr__error_set(
                err, JR_EMISMATCH,
                "join via %s: this data directory (%s) holds incarnation %u "
                "of cluster %s, which is at incarnation %u after a forced "
                "recovery; use an empty data directory to join",
                address, n->data_dir, (unsigned)n->meta.incarnation,
                n->cluster_id, (unsigned)incarnation);
        }
        if (n->cluster_id[0] == '\0') {
            struct jr__meta meta = n->meta;
            memcpy(meta.cluster_id, cluster, sizeof meta.cluster_id);
            meta.incarnation = incarnation;
            rv = jr__meta_store(n->data_dir, &meta, err);
            if (rv != 0) {
                return rv;
            }
            uv_mutex_lock(&n->mutex);
            n->meta = meta;
            memcpy(n->cluster_id, cluster, sizeof n->cluster_id);
            uv_mutex_unlock(&n->mutex);
        }
        if (leader[0] != '\0') {
            now = uv_hrtime() / 1000000;
            left = now < deadline ? (unsigned)(deadline - now) : 1;
            rv = ask_join(n, leader, left, hint, msg);
            if (rv == 0) {
                return 0;
            }
            if (rv != JR_ENOLEADER && rv != JR_EBUSY && rv != JR_ECONNECT) {
                return jr__error_set(err, rv, "join via %s: %s", leader, msg);
            }
        } else {
            rv = JR_ENOLEADER;
            jr__errf(msg, "the cluster has no leader");
        }
        if (uv_hrtime() / 1000000 + 200 >= deadline) {
            return jr__error_set(err, rv == JR_ECONNECT ? rv : JR_ETIMEDOUT,
                                 "join via %s: %s", address, msg);
        }
        usleep(200 * 1000);
    }
}
