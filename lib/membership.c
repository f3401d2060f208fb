/* membership.c: joining a running cluster. A node without the cluster
 * secret presents a join token: it asks a member listed in the token for
 * the leader (INFO), proves the token to the leader (JOIN_TOKEN, auth.h),
 * which records the token as used through the log and answers with the
 * secret sealed under a key only the token's holder can derive. Holding
 * the secret, the node asks the leader, over a member connection, to add
 * it (JOIN); the leader adds it as a spare and promotes it once it has
 * caught up. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <time.h>

#include "auth.h"
#include "codec.h"
#include "jointoken.h"
#include "jr_internal.h"

void jr__rpc_send_frame(struct jr__conn *c, struct jr__frame *f);
void jr__conn_ref(struct jr__conn *c);
void jr__conn_unref(struct jr__conn *c);

/* dst = the len bytes at p, cut to size - 1, NUL-terminated. */
static void copy_str_n(char *dst, size_t size, const char *p, size_t len)
{
    size_t k = len < size - 1 ? len : size - 1;
    if (k > 0) { /* an empty msgpack string has no pointer */
        memcpy(dst, p, k);
    }
    dst[k] = '\0';
}

static void copy_str(char *dst, size_t size, const struct jr__str *s)
{
    copy_str_n(dst, size, s->ptr, s->len);
}

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
        jr__infof(n,
                  "node %llu at %s joined as a standby; the reconciler "
                  "promotes it if the voter-set policy wants another voter",
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
    /* A standby replicates the log without voting: the reconciler
     * (reconcile.c) promotes it once it is caught up and stable, so the
     * cluster never waits on a cold voter and never holds an even count. */
    rv = raft_assign(&n->raft, &j->change, j->id, RAFT_STANDBY,
                     join_assigned_cb);
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
            if (s->role != RAFT_SPARE) {
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

/* ---- join tokens: the member side (leader, loop thread) ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct token_req {
    struct jr_apply apply;
    struct jr_node *node;
    struct jr__conn *conn;
    uint64_t req_id;
    uint64_t id;
    unsigned char mac[JR__TOKEN_MAC_LEN];
    unsigned char nc[JR__AUTH_NONCE_LEN], ns[JR__AUTH_NONCE_LEN];
    char address[256];
};

static void token_reply(struct jr_node *n,
                        struct jr__conn *c,
                        uint64_t req_id,
                        int status,
                        const char *errmsg,
                        const unsigned char *proof,
                        const unsigned char *sealed)
{
    struct jr__frame f;
    raft_id leader;
    const char *address;
    raft_leader(&n->raft, &leader, &address);
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN_TOKEN_RESULT, 8);
    msgpack_pack_uint64(&f.pk, req_id);
    msgpack_pack_int64(&f.pk, status);
    jr__pack_cstr(&f.pk, errmsg);
    jr__pack_cstr(&f.pk, leader != 0 && address != NULL ? address : "");
    jr__pack_cstr(&f.pk, status == 0 ? n->cluster_id : "");
    msgpack_pack_uint64(&f.pk, n->meta.incarnation);
    jr__pack_bin(&f.pk, proof, proof != NULL ? JR__AUTH_PROOF_LEN : 0);
    jr__pack_bin(&f.pk, sealed, sealed != NULL ? JR__SEALED_LEN : 0);
    jr__frame_end(&f);
    jr__rpc_send_frame(c, &f);
    jr__frame_close(&f);
}

static void token_recorded_cb(struct jr_apply *req,
                              int status,
                              const void *result,
                              size_t result_len)
{
    struct token_req *t = req->data;
    struct jr_node *n = t->node;
    unsigned char proof[JR__AUTH_PROOF_LEN], key[JR__AUTH_PROOF_LEN];
    unsigned char secret[JR__SECRET_LEN], sealed[JR__SEALED_LEN];
    unsigned char outcome =
        result_len == 1 ? *(const unsigned char *)result : 2;
    if (status != 0) {
        token_reply(n, t->conn, t->req_id, status, req->errmsg, NULL, NULL);
    } else if (outcome == 1) {
        jr__warnf(n,
                  "refused join of node %llu at %s: its join token was "
                  "already used by another node",
                  (unsigned long long)t->id, t->address);
        token_reply(n, t->conn, t->req_id, JR_EINVAL,
                    "join token already used (tokens are single use: issue "
                    "a new one)",
                    NULL, NULL);
    } else if (outcome != 0 || !jr__secret_copy(n, secret)) {
        token_reply(n, t->conn, t->req_id, JR_ENOMEM,
                    "too many unexpired join tokens in use; retry later", NULL,
                    NULL);
    } else {
        jr__join_proof(t->mac, "member", t->nc, t->ns, t->id, proof);
        jr__join_proof(t->mac, "seal", t->nc, t->ns, t->id, key);
        jr__seal_secret(key, secret, sealed);
        sodium_memzero(secret, sizeof secret);
        sodium_memzero(key, sizeof key);
        jr__infof(n,
                  "node %llu at %s presented a valid join token; the cluster "
                  "secret was sent to it",
                  (unsigned long long)t->id, t->address);
        token_reply(n, t->conn, t->req_id, 0, "", proof, sealed);
    }
    jr__conn_unref(t->conn);
    sodium_memzero(t, sizeof *t);
    free(t);
}

void jr__handle_join_token(struct jr_node *n,
                           struct jr__conn *c,
                           const struct jr__msg *m)
{
    struct raft_configuration *conf = &n->raft.configuration;
    struct jr__join_token tok;
    struct token_req *t;
    unsigned char secret[JR__SECRET_LEN], want[JR__AUTH_PROOF_LEN];
    char why[JR_ERRMSG_SIZE], address[256];
    void *cmd;
    size_t len;
    unsigned i;
    int rv;

    copy_str_n(address, sizeof address, m->address.ptr, m->address.len);
    if (n->raft.state != RAFT_LEADER) {
        rv = jr__health(n, why);
        if (rv == 0) {
            rv = JR_ENOLEADER;
            jr__errf(why, "this node is not the leader");
        }
        token_reply(n, c, m->req_id, rv, why, NULL, NULL);
        return;
    }
    rv = jr__token_payload_decode((const unsigned char *)m->payload.ptr,
                                  m->payload.len, &tok, why);
    if (rv == 0 && strcmp(tok.cluster_id, n->cluster_id) != 0) {
        jr__errf(why, "join token is for cluster %s, this is cluster %s",
                 tok.cluster_id, n->cluster_id);
        rv = JR_EMISMATCH;
    }
    t = rv == 0 ? calloc(1, sizeof *t) : NULL;
    if (rv == 0 && t == NULL) {
        rv = JR_ENOMEM;
        jr__errf(why, "out of memory");
    }
    if (rv == 0) {
        if (!jr__secret_copy(n, secret)) {
            rv = JR_ESTATE;
            jr__errf(why, "this node holds no cluster secret");
        } else {
            jr__join_mac(secret, (const unsigned char *)m->payload.ptr,
                         m->payload.len, t->mac);
            sodium_memzero(secret, sizeof secret);
            memcpy(t->nc, jr__conn_nonce(c, true), sizeof t->nc);
            memcpy(t->ns, jr__conn_nonce(c, false), sizeof t->ns);
            jr__join_proof(t->mac, "joiner", t->nc, t->ns, m->id, want);
            if (!jr__auth_equal(want, (const unsigned char *)m->proof.ptr)) {
                rv = JR_EMISMATCH;
                jr__errf(why,
                         "join token was not issued by this cluster "
                         "(bad MAC): forged or altered");
            }
        }
    }
    if (rv == 0) {
        rv = jr__token_check_expiry(&tok, wall_ms(), why);
    }
    for (i = 0; rv == 0 && i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        if (s->id == m->id && strcmp(s->address, address) != 0) {
            jr__errf(why, "node id %llu is already a member at %s",
                     (unsigned long long)m->id, s->address);
            rv = JR_EMISMATCH;
        } else if (s->id != m->id && strcmp(s->address, address) == 0) {
            jr__errf(why, "address %s is already used by node %llu", address,
                     (unsigned long long)s->id);
            rv = JR_EMISMATCH;
        }
    }
    if (rv != 0) {
        jr__auth_failed(n, "refused join token from node %llu at %s: %s",
                        (unsigned long long)m->id, address, why);
        token_reply(n, c, m->req_id, rv, why, NULL, NULL);
        if (t != NULL) {
            sodium_memzero(t, sizeof *t);
            free(t);
        }
        return;
    }
    t->node = n;
    t->conn = c;
    jr__conn_ref(c);
    t->req_id = m->req_id;
    t->id = m->id;
    memcpy(t->address, address, sizeof t->address);
    t->apply.data = t;
    /* Single use is decided by the log, not here: two joiners racing with
     * one token both pass the checks above, and the first entry wins. */
    cmd = jr__libstate_token_cmd(tok.nonce, tok.expires_ms, m->id, wall_ms(),
                                 &len);
    rv = cmd != NULL
             ? jr__apply_internal(n, &t->apply, cmd, len, token_recorded_cb)
             : JR_ENOMEM;
    free(cmd);
    if (rv != 0) {
        token_reply(n, c, m->req_id, rv, "cannot record the join token", NULL,
                    NULL);
        jr__conn_unref(c);
        free(t);
    }
}

/* ---- join tokens: issuing (any member, any thread) ---- */

int jr_join_token_issue(struct jr_node *n,
                        unsigned ttl_s,
                        char *out,
                        size_t out_size,
                        struct jr_error *err)
{
    struct jr__join_token t;
    struct jr_status *st;
    unsigned char secret[JR__SECRET_LEN];
    char msg[JR_ERRMSG_SIZE];
    unsigned i, pass;
    int rv;

    if (n == NULL || out == NULL || ttl_s == 0) {
        return jr__error_set(err, JR_EINVAL,
                             "issue join token: bad arguments (the time to "
                             "live must be > 0)");
    }
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK,
                             "issue join token: on the loop thread");
    }
    rv = jr_node_status(n, &st);
    if (rv != 0) {
        return jr__error_set(err, rv,
                             "issue join token: the node must be started");
    }
    memset(&t, 0, sizeof t);
    if (st->cluster_id[0] == '\0' || !jr__secret_copy(n, secret)) {
        jr_status_free(st);
        return jr__error_set(err, JR_ESTATE,
                             "issue join token: this node is not a member of "
                             "a cluster");
    }
    memcpy(t.cluster_id, st->cluster_id, JR__CLUSTER_ID_LEN);
    /* Voters first: they are the likeliest to be up when it is used. */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < st->n_peers && t.n_addresses < JR__TOKEN_MAX_ADDRESSES;
             i++) {
            const struct jr_peer_status *p = &st->peers[i];
            bool voter = p->role == JR_ROLE_VOTER;
            if ((pass == 0) != voter || p->role == JR_ROLE_SPARE) {
                continue;
            }
            (void)snprintf(t.addresses[t.n_addresses++], sizeof t.addresses[0],
                           "%s", p->address);
        }
    }
    jr_status_free(st);
    if (t.n_addresses == 0) {
        sodium_memzero(secret, sizeof secret);
        return jr__error_set(err, JR_ESTATE,
                             "issue join token: this node has not received "
                             "the cluster's configuration yet; retry soon");
    }
    t.expires_ms = wall_ms() + (uint64_t)ttl_s * 1000;
    randombytes_buf(t.nonce, sizeof t.nonce);
    rv = jr__token_encode(&t, secret, out, out_size, msg);
    sodium_memzero(secret, sizeof secret);
    if (rv != 0) {
        return jr__error_set(err, rv, "issue join token: %s", msg);
    }
    return 0;
}

/* ---- joining side (the caller's thread, blocking sockets) ---- */

/* One connection's handshake as the dialer saw it. */
struct hs {
    unsigned char nc[JR__AUTH_NONCE_LEN];
    unsigned char ns[JR__AUTH_NONCE_LEN];
    uint64_t acceptor_id;
};

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t k = read(fd, p, len);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
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

/* Connect to address and do the handshake: as a member (proving the secret)
 * when member is true, else as a joiner. */
static int sock_open(struct jr_node *n,
                     const char *address,
                     const char *cluster_id,
                     bool member,
                     unsigned ms,
                     int *out,
                     struct hs *hs,
                     char *errmsg)
{
    struct sockaddr_in sa;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    unsigned char reply[JR__AUTH_REPLY_FIXED + JR__AUTH_REASON_MAX + 1];
    unsigned char secret[JR__SECRET_LEN], proof[JR__AUTH_PROOF_LEN];
    char pre[512];
    size_t plen, rlen;
    int fd, rv;
    rv = jr__parse_address(address, &sa, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (member && !jr__secret_copy(n, secret)) {
        jr__errf(errmsg, "this node holds no cluster secret");
        return JR_ESTATE;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        jr__errf(errmsg, "socket: %s", strerror(errno));
        rv = JR_EIO;
        goto out;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        jr__errf(errmsg, "connect to %s: %s", address, strerror(errno));
        rv = JR_ECONNECT;
        goto out;
    }
    jr__auth_nonce(hs->nc);
    plen =
        jr__preamble_encode(n, JR__CONN_RPC, cluster_id, hs->nc, member, pre);
    if (write(fd, pre, plen) != (ssize_t)plen ||
        read_full(fd, reply, JR__AUTH_REPLY_FIXED) != 0) {
        jr__errf(errmsg, "no handshake answer from %s", address);
        rv = JR_ECONNECT;
        goto out;
    }
    rlen = ((size_t)reply[6] << 8) | reply[7];
    if (memcmp(reply, "JACO", 4) != 0 || reply[4] != 2 ||
        rlen > JR__AUTH_REASON_MAX ||
        read_full(fd, reply + JR__AUTH_REPLY_FIXED, rlen) != 0) {
        jr__errf(errmsg, "%s does not speak this version of the protocol",
                 address);
        rv = JR_EPROTO;
        goto out;
    }
    reply[JR__AUTH_REPLY_FIXED + rlen] = '\0';
    hs->acceptor_id = get64(reply + 8);
    memcpy(hs->ns, reply + 16, JR__AUTH_NONCE_LEN);
    if (reply[5] == JR__AUTH_REFUSED || reply[5] == JR__AUTH_NO_SECRET) {
        jr__errf(errmsg, "%s refused the connection: %s", address,
                 rlen > 0 ? (const char *)reply + JR__AUTH_REPLY_FIXED
                          : "no reason given");
        rv = reply[5] == JR__AUTH_NO_SECRET ? JR_ESTATE : JR_EMISMATCH;
        goto out;
    }
    if (reply[5] != (member ? JR__AUTH_OK : JR__AUTH_JOINER)) {
        jr__errf(errmsg, "%s answered the handshake with status %u", address,
                 reply[5]);
        rv = JR_EPROTO;
        goto out;
    }
    if (member) {
        jr__auth_proof(secret, "acceptor", hs->nc, hs->ns, cluster_id,
                       n->cfg.id, hs->acceptor_id, proof);
        if (!jr__auth_equal(proof, reply + 48)) {
            jr__errf(errmsg,
                     "%s could not prove that it holds the cluster secret",
                     address);
            rv = JR_EMISMATCH;
            goto out;
        }
        jr__auth_proof(secret, "dialer", hs->nc, hs->ns, cluster_id, n->cfg.id,
                       hs->acceptor_id, proof);
        if (write(fd, proof, sizeof proof) != (ssize_t)sizeof proof) {
            jr__errf(errmsg, "send to %s: %s", address, strerror(errno));
            rv = JR_ECONNECT;
            goto out;
        }
    }
    *out = fd;
    fd = -1;
    rv = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    sodium_memzero(secret, sizeof secret);
    return rv;
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
        read_full(fd, hdr, 4) != 0) {
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
    struct hs hs;
    char *buf;
    int fd, rv;
    /* Ask as a joiner, without claiming a cluster, so that a member of
     * another cluster answers rather than refusing us, and the mismatch
     * can be named. */
    rv = sock_open(n, address, "", false, ms, &fd, &hs, errmsg);
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
    struct hs hs;
    char *buf;
    int fd, rv;
    rv = sock_open(n, address, n->cluster_id, true, ms, &fd, &hs, errmsg);
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

/* Adopt cluster (and incarnation) as this node's, durably. */
static int adopt_cluster(struct jr_node *n,
                         const char *cluster,
                         uint32_t incarnation,
                         struct jr_error *err)
{
    struct jr__meta meta = n->meta;
    int rv;
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
    return 0;
}

static unsigned ms_left(uint64_t deadline)
{
    uint64_t now = uv_hrtime() / 1000000;
    return now < deadline ? (unsigned)(deadline - now) : 1;
}

/* The authenticated join through address (any member), until deadline. */
static int join_as_member(struct jr_node *n,
                          const char *address,
                          uint64_t deadline,
                          struct jr_error *err)
{
    uint32_t incarnation = 0;
    char cluster[JR__CLUSTER_ID_LEN + 1], leader[256], hint[256];
    char msg[JR_ERRMSG_SIZE];
    int rv;

    for (;;) {
        rv = ask_info(n, address, ms_left(deadline), cluster, &incarnation,
                      leader, msg);
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
            rv = adopt_cluster(n, cluster, incarnation, err);
            if (rv != 0) {
                return rv;
            }
        }
        if (leader[0] != '\0') {
            rv = ask_join(n, leader, ms_left(deadline), hint, msg);
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

static int check_joinable(struct jr_node *n,
                          const char *what,
                          struct jr_error *err)
{
    struct jr_status *st;
    int rv;
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK, "%s: on the loop thread", what);
    }
    rv = jr_node_status(n, &st);
    if (rv != 0) {
        return jr__error_set(err, rv, "%s: the node must be started", what);
    }
    jr_status_free(st);
    return 0;
}

int jr_node_join(struct jr_node *n,
                 const char *address,
                 unsigned timeout_ms,
                 struct jr_error *err)
{
    unsigned char secret[JR__SECRET_LEN];
    int rv;
    if (n == NULL || address == NULL) {
        return jr__error_set(err, JR_EINVAL, "join: bad arguments");
    }
    if ((rv = check_joinable(n, "join", err)) != 0) {
        return rv;
    }
    if (!jr__secret_copy(n, secret)) {
        return jr__error_set(err, JR_ESTATE,
                             "join: this node holds no cluster secret: join "
                             "with a token (jr_node_join_token), or set the "
                             "secret first (jr_node_set_secret)");
    }
    sodium_memzero(secret, sizeof secret);
    return join_as_member(
        n, address,
        uv_hrtime() / 1000000 + (timeout_ms != 0 ? timeout_ms : 30000), err);
}

/* Present the token to the leader reached through address: on success the
 * cluster secret, cluster id and incarnation are this node's. */
static int present_token(struct jr_node *n,
                         const char *address,
                         const unsigned char *payload,
                         size_t payload_len,
                         const unsigned char mac[JR__TOKEN_MAC_LEN],
                         uint64_t deadline,
                         char *leader_hint,
                         struct jr_error *err)
{
    unsigned char proof[JR__AUTH_PROOF_LEN], key[JR__AUTH_PROOF_LEN];
    unsigned char secret[JR__SECRET_LEN];
    char msg[JR_ERRMSG_SIZE], cluster[JR__CLUSTER_ID_LEN + 1];
    struct jr__frame f;
    struct jr__msg m;
    struct hs hs;
    char *buf;
    int fd, rv;

    leader_hint[0] = '\0';
    rv = sock_open(n, address, "", false, ms_left(deadline), &fd, &hs, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "%s", msg);
    }
    jr__join_proof(mac, "joiner", hs.nc, hs.ns, n->cfg.id, proof);
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN_TOKEN, 6);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_uint64(&f.pk, n->cfg.id);
    jr__pack_cstr(&f.pk, n->address);
    jr__pack_cstr(&f.pk, n->name);
    jr__pack_bin(&f.pk, payload, payload_len);
    jr__pack_bin(&f.pk, proof, sizeof proof);
    jr__frame_end(&f);
    rv = call(fd, &f, &buf, &m, JR__MSG_JOIN_TOKEN_RESULT, address, msg);
    jr__frame_close(&f);
    close(fd);
    if (rv != 0) {
        return jr__error_set(err, rv, "%s", msg);
    }
    copy_str(leader_hint, 256, &m.address);
    rv = (int)m.status;
    if (rv != 0) {
        copy_str(msg, sizeof msg, &m.errmsg);
        jr__error_set(err, rv, "%s", msg);
        goto out;
    }
    jr__join_proof(mac, "member", hs.nc, hs.ns, n->cfg.id, proof);
    if (m.proof.len != JR__AUTH_PROOF_LEN || m.sealed.len != JR__SEALED_LEN ||
        !jr__auth_equal(proof, (const unsigned char *)m.proof.ptr)) {
        rv = jr__error_set(err, JR_EMISMATCH,
                           "%s accepted the token without proving that it "
                           "knows it: not a member of the token's cluster",
                           address);
        goto out;
    }
    jr__join_proof(mac, "seal", hs.nc, hs.ns, n->cfg.id, key);
    if (jr__open_secret(key, (const unsigned char *)m.sealed.ptr, secret) !=
        0) {
        rv = jr__error_set(err, JR_EPROTO,
                           "the cluster secret from %s does not open", address);
        goto out;
    }
    copy_str(cluster, sizeof cluster, &m.cluster_id);
    /* Secret before identity, as at bootstrap: a member without one cannot
     * start. */
    rv = jr__secret_install(n, secret, err);
    if (rv == 0) {
        rv = adopt_cluster(n, cluster, (uint32_t)m.incarnation, err);
    }
out:
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(key, sizeof key);
    jr__msg_free(&m);
    free(buf);
    return rv;
}

int jr_node_join_token(struct jr_node *n,
                       const char *token,
                       unsigned timeout_ms,
                       struct jr_error *err)
{
    struct jr__join_token t;
    unsigned char payload[JR__TOKEN_PAYLOAD_MAX], mac[JR__TOKEN_MAC_LEN];
    char msg[JR_ERRMSG_SIZE], hint[256];
    struct jr_error last;
    size_t payload_len;
    uint64_t deadline;
    unsigned i;
    int rv;

    if (n == NULL || token == NULL) {
        return jr__error_set(err, JR_EINVAL, "join: bad arguments");
    }
    if ((rv = check_joinable(n, "join", err)) != 0) {
        return rv;
    }
    rv = jr__token_split(token, &t, payload, &payload_len, mac, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "join: %s", msg);
    }
    if (n->cluster_id[0] != '\0' && strcmp(n->cluster_id, t.cluster_id) != 0) {
        return jr__error_set(
            err, JR_EMISMATCH,
            "join: this data directory (%s) belongs to cluster %s, the token "
            "to cluster %s; use an empty data directory to join",
            n->data_dir, n->cluster_id, t.cluster_id);
    }
    deadline = uv_hrtime() / 1000000 + (timeout_ms != 0 ? timeout_ms : 30000);
    memset(&last, 0, sizeof last);
    last.code = JR_ECONNECT;
    jr__errf(last.message, "no member listed in the token answered");
    /* The token is presented even by a node that holds a secret already
     * (a retry after a lost answer, or a secret-file): its expiry, MAC and
     * single use are checked by the cluster every time. */
    for (;;) {
        bool retry = false;
        for (i = 0; i < t.n_addresses; i++) {
            const char *via = t.addresses[i];
            if (strcmp(via, n->address) == 0) {
                continue; /* a wiped member rejoining: not itself */
            }
            rv = present_token(n, via, payload, payload_len, mac, deadline,
                               hint, &last);
            if (rv == JR_ENOLEADER && hint[0] != '\0' &&
                strcmp(hint, via) != 0) {
                /* A follower named the leader: ask it (a copy: the call
                 * rewrites hint). */
                char leader[256];
                (void)snprintf(leader, sizeof leader, "%s", hint);
                rv = present_token(n, leader, payload, payload_len, mac,
                                   deadline, hint, &last);
            }
            if (rv == 0) {
                break;
            }
            if (rv == JR_ECONNECT || rv == JR_ENOLEADER || rv == JR_EBUSY ||
                rv == JR_EQUORUMLOST || rv == JR_ELEADERSHIPLOST ||
                rv == JR_ETIMEDOUT || rv == JR_ESTATE) {
                retry = true;
                continue; /* another member, or later */
            }
            /* Forged, expired, used, other cluster: final. */
            sodium_memzero(mac, sizeof mac);
            return jr__error_set(err, rv, "join: %s", last.message);
        }
        if (rv == 0) {
            break;
        }
        if (!retry || uv_hrtime() / 1000000 + 200 >= deadline) {
            sodium_memzero(mac, sizeof mac);
            return jr__error_set(
                err, last.code == JR_ECONNECT ? JR_ECONNECT : JR_ETIMEDOUT,
                "join: %s", last.message);
        }
        usleep(200 * 1000);
    }
    sodium_memzero(mac, sizeof mac);
    sodium_memzero(msg, sizeof msg);
    /* Now a holder of the secret: the ordinary, authenticated join,
     * through each listed member in turn (a few seconds each), skipping
     * this node's own address. */
    for (i = 0;; i = (i + 1) % t.n_addresses) {
        uint64_t now = uv_hrtime() / 1000000;
        uint64_t turn = now + 3000 < deadline ? now + 3000 : deadline;
        if (strcmp(t.addresses[i], n->address) == 0 && t.n_addresses > 1) {
            continue;
        }
        rv = join_as_member(n, t.addresses[i], turn, err);
        if (rv == 0 || (rv != JR_ECONNECT && rv != JR_ETIMEDOUT) ||
            uv_hrtime() / 1000000 + 200 >= deadline) {
            return rv;
        }
    }
}
