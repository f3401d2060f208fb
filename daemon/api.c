/* api.c: the client API's operations.
 *
 *   status      {consistent?}             this node's and the cluster's view
 *   node.label  {node, set{}, unset[]}     a replicated write, audited
 *   audit       {type?, since_ms?, consistent?}
 *   node.remove {node, force?}             remove a member, forget it,
 *                                          audited (node.removed)
 *   raft.remove_peer {id}                  the same, forced, by Raft id
 *   cluster.transfer_leader {node?}        hand leadership to a voter
 *   node.issue_join_token {ttl_s}          a join token
 *   node.join   {token}                    join this uninitialised node
 *   node.snapshot {}                       snapshot and compact the log now
 *   backup.create / backup.read / backup.done   an online backup
 *                                          (api_backup.c)
 *
 *   auth.challenge {cn}  -> {sn, proof}   the TCP API's challenge-response
 *   auth.response  {proof}                 (lib: jr_client_proof)
 *
 * Reads come from this node's copy of the state, so they keep working
 * during an election and on a minority side; with "consistent": true they
 * wait for a read barrier first (linearizable, needs a quorum). The local
 * socket is trusted by its permissions; a TCP connection is read-only
 * (status, audit, watch) until the client has proved it holds the cluster
 * secret, and the server has proved it too: nothing unauthenticated
 * changes state or obtains a join token. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "mp.h"
#include "server.h"

#define LABELS_PER_REQUEST JD_LABELS_MAX

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool arg_bool(const struct jd_request *req, const char *key)
{
    const msgpack_object *o = jd_mp_get(req->args, key);
    return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* The library's error as a reply: its slug is the code. */
void jd_api_reply_jr(msgpack_sbuffer *reply, int rv, const char *message)
{
    jd_reply_error(reply, jr_err_slug(rv), "%s",
                   message[0] != '\0' ? message : jr_strerror(rv));
}

bool jd_api_barrier_if_asked(const struct jd_ctx *ctx,
                             const struct jd_request *req,
                             msgpack_sbuffer *reply)
{
    struct jr_error err;
    int rv;
    if (!arg_bool(req, "consistent")) {
        return true;
    }
    memset(&err, 0, sizeof err);
    rv = jr_barrier_sync(ctx->node, 0, &err);
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return false;
    }
    return true;
}

/* Writes: only on the local socket, only on a member. */
bool jd_api_write_allowed(const struct jd_ctx *ctx,
                          const struct jd_client *client,
                          msgpack_sbuffer *reply)
{
    if (!client->local && !client->authenticated) {
        jd_reply_error(reply, JD_CODE_UNAUTHENTICATED,
                       "writes need the local socket, or the cluster secret "
                       "over TCP (jaco --server HOST:PORT --secret-file "
                       "FILE)");
        return false;
    }
    if (jr_node_cluster_id(ctx->node)[0] == '\0') {
        jd_reply_error(reply, JD_CODE_NOT_INITIALISED,
                       "this node belongs to no cluster yet: bootstrap it "
                       "(jacod --bootstrap) or join it to one");
        return false;
    }
    return true;
}

static const char *peer_state(const struct jr_status *st,
                              const struct jr_peer_status *p)
{
    if (p->id == st->leader_id) {
        return "leader";
    }
    if (p->id == st->id) {
        return jr_state_name(st->state);
    }
    return p->reachable ? "follower" : "unreachable";
}

static void op_status(const struct jd_ctx *ctx,
                      const struct jd_request *req,
                      msgpack_sbuffer *reply)
{
    struct jr_status *st;
    msgpack_packer pk;
    const char *leader_name = "";
    unsigned i;
    int rv;
    if (!jd_api_barrier_if_asked(ctx, req, reply)) {
        return;
    }
    rv = jr_node_status(ctx->node, &st);
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, "");
        return;
    }
    for (i = 0; i < st->n_peers; i++) {
        if (st->peers[i].id == st->leader_id) {
            leader_name = st->peers[i].name;
        }
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 19);
    jd_mp_kv_str(&pk, "name", ctx->name);
    jd_mp_key(&pk, "partially_synced");
    if (st->partially_synced) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    jd_mp_kv_str(&pk, "disk",
                 st->disk_error == 0 ? "ok" : jr_err_slug(st->disk_error));
    jd_mp_key(&pk, "data_dir_lost");
    if (st->data_dir_lost) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    jd_mp_key(&pk, "auth_failures");
    msgpack_pack_uint64(&pk, st->auth_failures);
    jd_mp_key(&pk, "id");
    msgpack_pack_uint64(&pk, st->id);
    jd_mp_kv_str(&pk, "address", st->address);
    jd_mp_kv_str(&pk, "cluster_id", st->cluster_id);
    jd_mp_key(&pk, "initialised");
    if (st->cluster_id[0] != '\0') {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    jd_mp_kv_str(&pk, "state", jr_state_name(st->state));
    jd_mp_key(&pk, "term");
    msgpack_pack_uint64(&pk, st->term);
    jd_mp_key(&pk, "leader_id");
    msgpack_pack_uint64(&pk, st->leader_id);
    jd_mp_kv_str(&pk, "leader_name", leader_name);
    jd_mp_kv_str(&pk, "leader_address", st->leader_address);
    jd_mp_key(&pk, "commit_index");
    msgpack_pack_uint64(&pk, st->commit_index);
    jd_mp_key(&pk, "applied_index");
    msgpack_pack_uint64(&pk, st->applied_index);
    jd_mp_kv_str(&pk, "health",
                 st->health == 0 ? "ok" : jr_err_slug(st->health));
    jd_mp_key(&pk, "peers");
    msgpack_pack_array(&pk, st->n_peers);
    for (i = 0; i < st->n_peers; i++) {
        const struct jr_peer_status *p = &st->peers[i];
        msgpack_pack_map(&pk, 11);
        jd_mp_key(&pk, "match_index"); /* 0 unless this node leads */
        msgpack_pack_uint64(&pk, p->match_index);
        jd_mp_kv_str(&pk, "zone", st->details[i].zone);
        jd_mp_kv_str(&pk, "why", st->details[i].role_reason);
        jd_mp_key(&pk, "id");
        msgpack_pack_uint64(&pk, p->id);
        jd_mp_kv_str(&pk, "name", p->name);
        jd_mp_kv_str(&pk, "address", p->address);
        jd_mp_kv_str(&pk, "role", jr_role_name(p->role));
        jd_mp_key(&pk, "voter");
        if (p->role == JR_ROLE_VOTER) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
        jd_mp_kv_str(&pk, "state", peer_state(st, p));
        jd_mp_key(&pk, "reachable");
        if (p->reachable) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
        jd_mp_key(&pk, "last_contact_ms");
        msgpack_pack_int64(&pk, p->last_contact_ms);
    }
    jd_mp_key(&pk, "nodes");
    jd_state_pack_nodes(ctx->state, &pk);
    jr_status_free(st);
}

static void op_audit(const struct jd_ctx *ctx,
                     const struct jd_request *req,
                     msgpack_sbuffer *reply)
{
    char type[32] = "";
    const msgpack_object *t = jd_mp_get(req->args, "type");
    int64_t since = 0;
    msgpack_packer pk;
    if (t != NULL && jd_mp_copy_str(t, type, sizeof type) != 0) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "\"type\" is not a short string");
        return;
    }
    if (jd_mp_get(req->args, "since_ms") != NULL &&
        jd_mp_i64(jd_mp_get(req->args, "since_ms"), &since) != 0) {
        jd_reply_error(reply, JD_CODE_INVALID, "\"since_ms\" is not a number");
        return;
    }
    if (!jd_api_barrier_if_asked(ctx, req, reply)) {
        return;
    }
    jd_reply_ok(reply, &pk);
    jd_state_pack_audit(ctx->state, &pk, type, since);
}

static void op_label(const struct jd_ctx *ctx,
                     const struct jd_client *client,
                     const struct jd_request *req,
                     msgpack_sbuffer *reply)
{
    char node[JD_NAME_MAX];
    char kbuf[LABELS_PER_REQUEST][JD_LABEL_MAX];
    char vbuf[LABELS_PER_REQUEST][JD_LABEL_MAX];
    char ubuf[LABELS_PER_REQUEST][JD_LABEL_MAX];
    const char *keys[LABELS_PER_REQUEST], *values[LABELS_PER_REQUEST];
    const char *unset[LABELS_PER_REQUEST];
    const msgpack_object *set = jd_mp_get(req->args, "set");
    const msgpack_object *uns = jd_mp_get(req->args, "unset");
    unsigned i, n_set = 0, n_unset = 0;
    size_t len;
    char *cmd;
    msgpack_packer pk;
    bool ok;

    if (!jd_api_write_allowed(ctx, client, reply)) {
        return;
    }
    if (jd_mp_copy_str(jd_mp_get(req->args, "node"), node, sizeof node) != 0) {
        jd_reply_error(reply, JD_CODE_INVALID, "\"node\" is not a node name");
        return;
    }
    if ((set != NULL && (set->type != MSGPACK_OBJECT_MAP ||
                         set->via.map.size > LABELS_PER_REQUEST)) ||
        (uns != NULL && (uns->type != MSGPACK_OBJECT_ARRAY ||
                         uns->via.array.size > LABELS_PER_REQUEST))) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "\"set\" must be a map and \"unset\" an array, of at "
                       "most %d labels",
                       LABELS_PER_REQUEST);
        return;
    }
    for (i = 0; set != NULL && i < set->via.map.size; i++) {
        if (jd_mp_copy_str(&set->via.map.ptr[i].key, kbuf[i], JD_LABEL_MAX) ||
            jd_mp_copy_str(&set->via.map.ptr[i].val, vbuf[i], JD_LABEL_MAX) ||
            !jd_label_key_ok(kbuf[i]) || !jd_label_value_ok(vbuf[i])) {
            jd_reply_error(reply, JD_CODE_INVALID,
                           "bad label: keys are 1-63 of a-z 0-9 . / _ -; "
                           "values up to 63 printable characters without "
                           "spaces, '=' or ','");
            return;
        }
        keys[n_set] = kbuf[i];
        values[n_set++] = vbuf[i];
    }
    for (i = 0; uns != NULL && i < uns->via.array.size; i++) {
        if (jd_mp_copy_str(&uns->via.array.ptr[i], ubuf[i], JD_LABEL_MAX) ||
            !jd_label_key_ok(ubuf[i])) {
            jd_reply_error(reply, JD_CODE_INVALID, "bad label key to remove");
            return;
        }
        unset[n_unset++] = ubuf[i];
    }
    if (n_set + n_unset == 0) {
        jd_reply_error(reply, JD_CODE_INVALID, "no label to set or remove");
        return;
    }
    /* Whether the node exists is for the state machine to say: this
     * node's copy may be behind (just restarted, or on a minority side). */
    if (jd_cmd_label(node, keys, values, n_set, unset, n_unset, client->who,
                     now_ms(), &cmd, &len) != 0) {
        jd_reply_error(reply, JD_CODE_INTERNAL, "out of memory");
        return;
    }
    ok = jd_api_submit(ctx, cmd, len, reply, NULL, 0);
    free(cmd);
    if (ok) {
        jd_reply_ok(reply, &pk);
        msgpack_pack_nil(&pk);
    }
}

bool jd_api_submit(const struct jd_ctx *ctx,
                   const char *cmd,
                   size_t len,
                   msgpack_sbuffer *reply,
                   char *detail,
                   size_t detail_size)
{
    struct jr_error err;
    void *result = NULL;
    size_t result_len = 0;
    char msg[1024];
    const char *colon;
    size_t n;
    int rv;
    memset(&err, 0, sizeof err);
    rv = jr_apply_sync(ctx->node, cmd, len, 0, &result, &result_len, &err);
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return false;
    }
    if (detail != NULL && detail_size > 0) {
        detail[0] = '\0';
    }
    /* A follower applies the write a moment after the leader answered:
     * wait for it, so that a read here right after sees the write. The
     * write is done whatever the barrier says. */
    (void)jr_barrier_sync(ctx->node, 0, NULL);
    if (result == NULL || result_len == 0) {
        jr_free(result);
        return true;
    }
    /* "<code>: <message>" from the state machine; "ok: ..." succeeded. */
    n = result_len < sizeof msg - 1 ? result_len : sizeof msg - 1;
    memcpy(msg, result, n);
    msg[n] = '\0';
    jr_free(result);
    colon = strstr(msg, ": ");
    if (colon != NULL && colon - msg == 2 && strncmp(msg, "ok", 2) == 0) {
        if (detail != NULL && detail_size > 0) {
            (void)snprintf(detail, detail_size, "%s", colon + 2);
        }
        return true;
    }
    if (colon != NULL) {
        msg[colon - msg] = '\0';
        jd_reply_error(reply, msg, "%s", colon + 2);
    } else {
        jd_reply_error(reply, JD_CODE_INTERNAL, "%s", msg);
    }
    return false;
}

/* Forget a member the Raft configuration no longer has: its node record
 * and labels, with a node.removed event. Returns false with the reply set
 * if that failed. */
static bool forget(const struct jd_ctx *ctx,
                   const struct jd_client *client,
                   uint64_t id,
                   const char *name,
                   const char *how,
                   msgpack_sbuffer *reply)
{
    struct jr_error err;
    char *cmd;
    size_t len;
    int rv;
    if (jd_cmd_remove(id, name, how, client->who, now_ms(), &cmd, &len) != 0) {
        jd_reply_error(reply, JD_CODE_INTERNAL, "out of memory");
        return false;
    }
    memset(&err, 0, sizeof err);
    rv = jr_apply_sync(ctx->node, cmd, len, 0, NULL, NULL, &err);
    free(cmd);
    if (rv != 0) {
        /* The member is out of the configuration; only its record stays. */
        jd_reply_error(reply, jr_err_slug(rv),
                       "removed from the Raft configuration, but forgetting "
                       "its node record failed: %s; run the removal again to "
                       "clean up",
                       err.message[0] != '\0' ? err.message : jr_strerror(rv));
        return false;
    }
    return true;
}

static void reply_removed(msgpack_sbuffer *reply,
                          const char *name,
                          uint64_t id,
                          const char *how)
{
    msgpack_packer pk;
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 3);
    jd_mp_kv_str(&pk, "node", name);
    jd_mp_key(&pk, "id");
    msgpack_pack_uint64(&pk, id);
    jd_mp_kv_str(&pk, "how", how);
}

static void op_remove(const struct jd_ctx *ctx,
                      const struct jd_client *client,
                      const struct jd_request *req,
                      msgpack_sbuffer *reply)
{
    char node[JD_NAME_MAX];
    bool force = arg_bool(req, "force");
    const char *how = force ? "forced" : "graceful";
    struct jr_error err;
    uint64_t id;
    bool recorded;
    int rv;
    if (!jd_api_write_allowed(ctx, client, reply)) {
        return;
    }
    if (jd_mp_copy_str(jd_mp_get(req->args, "node"), node, sizeof node) != 0 ||
        node[0] == '\0') {
        jd_reply_error(reply, JD_CODE_INVALID, "\"node\" is not a node name");
        return;
    }
    /* The id recorded for the name, else the one jacod derives from it. */
    recorded = jd_state_node_id(ctx->state, node, &id);
    if (!recorded) {
        id = jd_node_id_of_name(node);
    }
    memset(&err, 0, sizeof err);
    rv = jr_node_remove(ctx->node, id, force ? JR_REMOVE_FORCE : 0, 0, &err);
    if (rv == JR_ENOTFOUND && force && recorded) {
        /* Out of the configuration already (an earlier removal whose
         * record was not forgotten): clean up what is left. */
        rv = 0;
    }
    if (rv == JR_ENOTFOUND) {
        jd_reply_error(reply, JD_CODE_NOT_FOUND,
                       "no member named \"%s\" in the Raft configuration",
                       node);
        return;
    }
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    if (forget(ctx, client, id, node, how, reply)) {
        reply_removed(reply, node, id, how);
    }
}

static void op_remove_peer(const struct jd_ctx *ctx,
                           const struct jd_client *client,
                           const struct jd_request *req,
                           msgpack_sbuffer *reply)
{
    struct jr_error err;
    uint64_t id;
    int rv;
    if (!jd_api_write_allowed(ctx, client, reply)) {
        return;
    }
    if (jd_mp_u64(jd_mp_get(req->args, "id"), &id) != 0 || id == 0) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "\"id\" is not a Raft id (a positive integer)");
        return;
    }
    memset(&err, 0, sizeof err);
    rv = jr_node_remove(ctx->node, id, JR_REMOVE_FORCE, 0, &err);
    if (rv == JR_ENOTFOUND) {
        jd_reply_error(reply, JD_CODE_NOT_FOUND,
                       "no peer with id %" PRIu64 " in the Raft configuration",
                       id);
        return;
    }
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    if (forget(ctx, client, id, "", "raft remove-peer", reply)) {
        reply_removed(reply, "", id, "raft remove-peer");
    }
}

static void op_transfer_leader(const struct jd_ctx *ctx,
                               const struct jd_client *client,
                               const struct jd_request *req,
                               msgpack_sbuffer *reply)
{
    char node[JD_NAME_MAX] = "";
    const msgpack_object *o = jd_mp_get(req->args, "node");
    struct jr_status *st;
    struct jr_error err;
    char name[JD_NAME_MAX] = "";
    msgpack_packer pk;
    uint64_t id = 0, leader = 0;
    unsigned i;
    int rv;
    if (!jd_api_write_allowed(ctx, client, reply)) {
        return;
    }
    if (o != NULL && o->type != MSGPACK_OBJECT_NIL &&
        jd_mp_copy_str(o, node, sizeof node) != 0) {
        jd_reply_error(reply, JD_CODE_INVALID, "\"node\" is not a node name");
        return;
    }
    if (node[0] != '\0' && !jd_state_node_id(ctx->state, node, &id)) {
        id = jd_node_id_of_name(node);
    }
    memset(&err, 0, sizeof err);
    rv = jr_node_transfer_leadership(ctx->node, id, 0, &err);
    if (rv == JR_ENOTFOUND) {
        jd_reply_error(reply, JD_CODE_NOT_FOUND,
                       "no member named \"%s\" in the Raft configuration",
                       node);
        return;
    }
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    /* The library returns once this node knows the new leader. */
    if (jr_node_status(ctx->node, &st) == 0) {
        leader = st->leader_id;
        for (i = 0; i < st->n_peers; i++) {
            if (st->peers[i].id == leader) {
                snprintf(name, sizeof name, "%s",
                         leader == st->id ? ctx->name : st->peers[i].name);
            }
        }
        jr_status_free(st);
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 2);
    jd_mp_kv_str(&pk, "leader", name[0] != '\0' ? name : node);
    jd_mp_key(&pk, "leader_id");
    msgpack_pack_uint64(&pk, leader);
}

/* A token lets its holder into the cluster: only the local socket, whose
 * permissions say who may administer this node, hands them out. */
static bool local_only(const struct jd_client *client,
                       msgpack_sbuffer *reply,
                       const char *what)
{
    if (!client->local && !client->authenticated) {
        jd_reply_error(reply, JD_CODE_UNAUTHENTICATED,
                       "%s needs the local socket or an authenticated "
                       "connection",
                       what);
        return false;
    }
    return true;
}

static bool bin32(const msgpack_object *o, unsigned char out[32])
{
    if (o == NULL || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 32) {
        return false;
    }
    memcpy(out, o->via.bin.ptr, 32);
    return true;
}

static void op_auth_challenge(const struct jd_ctx *ctx,
                              struct jd_client *client,
                              const struct jd_request *req,
                              msgpack_sbuffer *reply)
{
    unsigned char proof[JR_CLIENT_PROOF_SIZE];
    msgpack_packer pk;
    if (!bin32(jd_mp_get(req->args, "cn"), client->cn)) {
        jd_reply_error(reply, JD_CODE_INVALID, "cn: 32 random bytes");
        return;
    }
    if (getrandom(client->sn, sizeof client->sn, 0) !=
            (ssize_t)sizeof client->sn ||
        jr_node_client_proof(ctx->node, JR_CLIENT_PROOF_SERVER, client->cn,
                             client->sn, proof) != 0) {
        jd_reply_error(reply, JD_CODE_NOT_INITIALISED,
                       "this node holds no cluster secret yet");
        return;
    }
    client->challenged = true;
    client->authenticated = false;
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 2);
    jd_mp_key(&pk, "sn");
    msgpack_pack_bin(&pk, 32);
    msgpack_pack_bin_body(&pk, client->sn, 32);
    jd_mp_key(&pk, "proof");
    msgpack_pack_bin(&pk, sizeof proof);
    msgpack_pack_bin_body(&pk, proof, sizeof proof);
}

static void op_auth_response(const struct jd_ctx *ctx,
                             struct jd_client *client,
                             const struct jd_request *req,
                             msgpack_sbuffer *reply)
{
    unsigned char want[JR_CLIENT_PROOF_SIZE], got[JR_CLIENT_PROOF_SIZE];
    msgpack_packer pk;
    volatile unsigned char diff = 0;
    size_t i;
    if (!client->challenged || !bin32(jd_mp_get(req->args, "proof"), got) ||
        jr_node_client_proof(ctx->node, JR_CLIENT_PROOF_CLIENT, client->cn,
                             client->sn, want) != 0) {
        jd_reply_error(reply, JD_CODE_UNAUTHENTICATED,
                       "auth.response without a challenge");
        return;
    }
    client->challenged = false; /* one answer per challenge */
    for (i = 0; i < sizeof want; i++) {
        diff |= (unsigned char)(want[i] ^ got[i]);
    }
    if (diff != 0) {
        fprintf(stderr,
                "jacod[%s] warning: client %s could not prove that it holds "
                "the cluster secret\n",
                ctx->name, client->who);
        jd_reply_error(reply, JD_CODE_UNAUTHENTICATED, "wrong cluster secret");
        return;
    }
    client->authenticated = true;
    jd_reply_ok(reply, &pk);
    msgpack_pack_nil(&pk);
}

static void op_issue_token(const struct jd_ctx *ctx,
                           const struct jd_client *client,
                           const struct jd_request *req,
                           msgpack_sbuffer *reply)
{
    const msgpack_object *ttl = jd_mp_get(req->args, "ttl_s");
    char token[JR_JOIN_TOKEN_SIZE];
    struct jr_error err;
    msgpack_packer pk;
    uint64_t ttl_s = 3600;
    int rv;
    if (!local_only(client, reply, "issuing a join token")) {
        return;
    }
    if (ttl != NULL) {
        if (ttl->type != MSGPACK_OBJECT_POSITIVE_INTEGER || ttl->via.u64 == 0 ||
            ttl->via.u64 > 30 * 86400) {
            jd_reply_error(reply, JD_CODE_INVALID,
                           "ttl_s must be 1 s to 30 days");
            return;
        }
        ttl_s = ttl->via.u64;
    }
    memset(&err, 0, sizeof err);
    rv = jr_join_token_issue(ctx->node, (unsigned)ttl_s, token, sizeof token,
                             &err);
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 2);
    jd_mp_kv_str(&pk, "token", token);
    jd_mp_key(&pk, "expires_ms");
    msgpack_pack_int64(&pk, now_ms() + (int64_t)ttl_s * 1000);
    memset(token, 0, sizeof token);
}

static void op_join(const struct jd_ctx *ctx,
                    const struct jd_client *client,
                    const struct jd_request *req,
                    msgpack_sbuffer *reply)
{
    const msgpack_object *t = jd_mp_get(req->args, "token");
    char token[JR_JOIN_TOKEN_SIZE];
    struct jr_error err;
    msgpack_packer pk;
    int rv;
    if (!local_only(client, reply, "joining a cluster")) {
        return;
    }
    if (t == NULL || t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0 ||
        t->via.str.size >= sizeof token) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "token: a join token string is required");
        return;
    }
    memcpy(token, t->via.str.ptr, t->via.str.size);
    token[t->via.str.size] = '\0';
    memset(&err, 0, sizeof err);
    rv = jr_node_join_token(ctx->node, token, 60000, &err);
    memset(token, 0, sizeof token);
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 1);
    jd_mp_kv_str(&pk, "cluster_id", jr_node_cluster_id(ctx->node));
}

static void op_snapshot(const struct jd_ctx *ctx,
                        const struct jd_client *client,
                        msgpack_sbuffer *reply)
{
    struct jr_error err;
    msgpack_packer pk;
    uint64_t index = 0;
    int rv;
    if (!local_only(client, reply, "a snapshot")) {
        return;
    }
    memset(&err, 0, sizeof err);
    rv = jr_node_snapshot(ctx->node, 0, &index, &err);
    if (rv != 0) {
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "index");
    msgpack_pack_uint64(&pk, index);
}

void jd_api_handle(const struct jd_ctx *ctx,
                   struct jd_client *client,
                   const struct jd_request *req,
                   msgpack_sbuffer *reply)
{
    if (strcmp(req->op, "auth.challenge") == 0) {
        op_auth_challenge(ctx, client, req, reply);
        return;
    }
    if (strcmp(req->op, "auth.response") == 0) {
        op_auth_response(ctx, client, req, reply);
        return;
    }
    if (jd_api_backup(ctx, client, req, reply) ||
        jd_api_deploy(ctx, client, req, reply)) {
        return;
    }
    if (strcmp(req->op, "status") == 0) {
        op_status(ctx, req, reply);
    } else if (strcmp(req->op, "audit") == 0) {
        op_audit(ctx, req, reply);
    } else if (strcmp(req->op, "node.label") == 0) {
        op_label(ctx, client, req, reply);
    } else if (strcmp(req->op, "node.remove") == 0) {
        op_remove(ctx, client, req, reply);
    } else if (strcmp(req->op, "raft.remove_peer") == 0) {
        op_remove_peer(ctx, client, req, reply);
    } else if (strcmp(req->op, "cluster.transfer_leader") == 0) {
        op_transfer_leader(ctx, client, req, reply);
    } else if (strcmp(req->op, "node.issue_join_token") == 0) {
        op_issue_token(ctx, client, req, reply);
    } else if (strcmp(req->op, "node.join") == 0) {
        op_join(ctx, client, req, reply);
    } else if (strcmp(req->op, "node.snapshot") == 0) {
        op_snapshot(ctx, client, reply);
    } else {
        jd_reply_error(reply, JD_CODE_UNKNOWN_OP, "unknown operation \"%s\"",
                       req->op);
    }
}
