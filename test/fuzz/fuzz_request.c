/* fuzz_request.c: libFuzzer target for what jacod does with bytes it did not
 * make itself, short of the node: a client request's decoding
 * (jd_request_decode) and the API's argument checks on it, and the cluster
 * state machine's apply of a command and restore of a snapshot.
 *
 * Every input is tried three ways: as a request body, whose arguments are
 * read and checked as api.c does (a node.label that passes becomes the
 * command jacod would submit, applied to a state holding the node); as a
 * command applied (twice, to reach the paths of labels that already exist)
 * to a state holding nodes and labels, then snapshotted and restored into a
 * fresh state, which must snapshot to the same bytes; and as a snapshot
 * restored through the library's own reader (lib/fsm.c builds it), then
 * queried and written to.
 * fuzz-sources: lib daemon/mp.c daemon/proto.c daemon/state.c daemon/nodeid.c
 * fuzz-sources: daemon/deploy.c daemon/deployment.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/mp.h"
#include "../../daemon/proto.h"
#include "../../daemon/state.h"
#include "jr_internal.h"

#define AUDIT_EVENTS 8
#define AUDIT_AGE_S 3600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the state machine ---- */

static void quiet_log(void *data, int level, const char *message)
{
    (void)data;
    (void)level;
    (void)message;
}

/* A node as far as lib/fsm.c's glue needs one: the embedder's FSM and a
 * logger. */
static void glue_init(struct jr_node *n, struct jd_state *s)
{
    memset(n, 0, sizeof *n);
    n->cfg.log_cb = quiet_log;
    n->fsm = *jd_state_fsm(s);
    (void)jr__fsm_init(n);
}

static void apply(struct jd_state *s,
                  uint64_t index,
                  const void *buf,
                  size_t len)
{
    const struct jr_fsm *fsm = jd_state_fsm(s);
    void *result = (void *)1;
    size_t result_len = 1;
    (void)fsm->apply(fsm->data, index, buf, len, &result, &result_len);
    if (result == NULL ? result_len != 0 : result_len == 0) {
        abort();
    }
    jr_free(result);
}

/* Three members, two labels on the first, one leader: enough state for a
 * label command to find its node. */
static void populate(struct jd_state *s)
{
    static const struct jd_observed members[] = {
        {1, "node1", "127.0.0.1:7001", "voter", JD_NODE_STATUS_READY, 1000},
        {2, "node2", "127.0.0.1:7002", "voter", JD_NODE_STATUS_READY, 1000},
        {3, "node3", "127.0.0.1:7003", "standby", JD_NODE_STATUS_UNREACHABLE,
         0},
    };
    const char *keys[] = {"zone", "disk"}, *values[] = {"a", "ssd"};
    const char *unset[] = {"gone"};
    char *cmd;
    size_t len;
    if (jd_cmd_observe(members, 3, 1, AUDIT_EVENTS, AUDIT_AGE_S, "jacod node1",
                       1000, &cmd, &len) != 0) {
        abort();
    }
    apply(s, 1, cmd, len);
    free(cmd);
    if (jd_cmd_label("node1", keys, values, 2, unset, 1, "uid 0", 2000, &cmd,
                     &len) != 0) {
        abort();
    }
    apply(s, 2, cmd, len);
    free(cmd);
}

static void query(struct jd_state *s)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int64_t last_seen;
    char address[JD_ADDR_MAX], role[16];
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    jd_state_pack_nodes(s, &pk);
    jd_state_pack_audit(s, &pk, NULL, 0);
    jd_state_pack_audit(s, &pk, "node.label", 1500);
    (void)jd_state_node_status(s, 1, &last_seen, address, role);
    (void)jd_state_leader(s);
    msgpack_sbuffer_destroy(&sb);
}

/* The state's snapshot through the library's writer, as one malloc'd
 * buffer. */
static char *snapshot(struct jd_state *s, size_t *len)
{
    struct jr_node *n = malloc(sizeof *n);
    struct raft_buffer *bufs;
    unsigned n_bufs, i;
    size_t total = 0;
    char *out;
    if (n == NULL) {
        abort();
    }
    glue_init(n, s);
    if (n->raft_fsm.snapshot(&n->raft_fsm, &bufs, &n_bufs) != 0) {
        abort();
    }
    for (i = 0; i < n_bufs; i++) {
        total += bufs[i].len;
    }
    if ((out = malloc(total > 0 ? total : 1)) == NULL) {
        abort();
    }
    total = 0;
    for (i = 0; i < n_bufs; i++) {
        memcpy(out + total, bufs[i].base, bufs[i].len);
        total += bufs[i].len;
        raft_free(bufs[i].base);
    }
    raft_free(bufs);
    jr__libstate_free(n);
    free(n);
    *len = total;
    return out;
}

/* Restore through lib/fsm.c, which builds the jr_snapshot_reader; on
 * success it frees the buffer, as raft hands it over. */
static int restore(struct jd_state *s, const void *data, size_t len)
{
    struct jr_node *n = malloc(sizeof *n);
    struct raft_buffer buf;
    int rv;
    if (n == NULL) {
        abort();
    }
    glue_init(n, s);
    buf.len = len;
    if ((buf.base = raft_malloc(len > 0 ? len : 1)) == NULL) {
        abort();
    }
    memcpy(buf.base, data, len);
    rv = n->raft_fsm.restore(&n->raft_fsm, &buf);
    if (rv != 0) {
        raft_free(buf.base);
    }
    jr__libstate_free(n);
    free(n);
    return rv;
}

/* What a state snapshots to, a fresh state restores and snapshots to the
 * same bytes: followers that install it must agree with the leader. */
static void check_round_trip(struct jd_state *s)
{
    struct jd_state *t = jd_state_new();
    size_t len1, len2;
    char *snap1, *snap2;
    if (t == NULL) {
        abort();
    }
    snap1 = snapshot(s, &len1);
    if (restore(t, snap1, len1) != 0) {
        abort();
    }
    snap2 = snapshot(t, &len2);
    if (len1 != len2 || memcmp(snap1, snap2, len1) != 0) {
        abort();
    }
    free(snap1);
    free(snap2);
    jd_state_free(t);
}

/* ---- requests ---- */

/* A string argument as the API reads one: into a bounded buffer, then the
 * label checks op_label applies. */
static void check_string(const msgpack_object *o)
{
    char buf[JD_LABEL_MAX];
    if (jd_mp_copy_str(o, buf, sizeof buf) == 0) {
        (void)jd_label_key_ok(buf);
        (void)jd_label_value_ok(buf);
    }
}

/* Every reader on every argument any op reads, whatever the op. */
static void walk_args(const msgpack_object *args)
{
    static const char *const keys[] = {"node", "set",      "unset",
                                       "type", "since_ms", "consistent"};
    const msgpack_object *o;
    uint64_t u;
    int64_t i64;
    size_t k;
    uint32_t i;
    for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        o = jd_mp_get(args, keys[k]);
        (void)jd_mp_u64(o, &u);
        (void)jd_mp_i64(o, &i64);
        check_string(o);
        if (o != NULL && o->type == MSGPACK_OBJECT_MAP) {
            for (i = 0; i < o->via.map.size; i++) {
                check_string(&o->via.map.ptr[i].key);
                check_string(&o->via.map.ptr[i].val);
            }
        } else if (o != NULL && o->type == MSGPACK_OBJECT_ARRAY) {
            for (i = 0; i < o->via.array.size; i++) {
                check_string(&o->via.array.ptr[i]);
            }
        }
    }
}

/* audit's arguments as op_audit checks them, then its query. */
static void audit_request(const msgpack_object *args)
{
    struct jd_state *s;
    const msgpack_object *t = jd_mp_get(args, "type");
    char type[32] = "";
    int64_t since = 0;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    if ((t != NULL && jd_mp_copy_str(t, type, sizeof type) != 0) ||
        (jd_mp_get(args, "since_ms") != NULL &&
         jd_mp_i64(jd_mp_get(args, "since_ms"), &since) != 0)) {
        return;
    }
    if ((s = jd_state_new()) == NULL) {
        abort();
    }
    populate(s);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    jd_state_pack_audit(s, &pk, type, since);
    msgpack_sbuffer_destroy(&sb);
    jd_state_free(s);
}

/* node.label's arguments as op_label checks them; the command it would
 * submit is applied to a state that holds the nodes. */
static void label_request(const msgpack_object *args)
{
    char node[JD_NAME_MAX];
    char kbuf[JD_LABELS_MAX][JD_LABEL_MAX], vbuf[JD_LABELS_MAX][JD_LABEL_MAX];
    char ubuf[JD_LABELS_MAX][JD_LABEL_MAX];
    const char *keys[JD_LABELS_MAX], *values[JD_LABELS_MAX];
    const char *unset[JD_LABELS_MAX];
    const msgpack_object *set = jd_mp_get(args, "set");
    const msgpack_object *uns = jd_mp_get(args, "unset");
    unsigned i, n_set = 0, n_unset = 0;
    struct jd_state *s;
    char *cmd;
    size_t len;
    if (jd_mp_copy_str(jd_mp_get(args, "node"), node, sizeof node) != 0 ||
        (set != NULL && (set->type != MSGPACK_OBJECT_MAP ||
                         set->via.map.size > JD_LABELS_MAX)) ||
        (uns != NULL && (uns->type != MSGPACK_OBJECT_ARRAY ||
                         uns->via.array.size > JD_LABELS_MAX))) {
        return;
    }
    for (i = 0; set != NULL && i < set->via.map.size; i++) {
        if (jd_mp_copy_str(&set->via.map.ptr[i].key, kbuf[i], JD_LABEL_MAX) ||
            jd_mp_copy_str(&set->via.map.ptr[i].val, vbuf[i], JD_LABEL_MAX) ||
            !jd_label_key_ok(kbuf[i]) || !jd_label_value_ok(vbuf[i])) {
            return;
        }
        keys[n_set] = kbuf[i];
        values[n_set++] = vbuf[i];
    }
    for (i = 0; uns != NULL && i < uns->via.array.size; i++) {
        if (jd_mp_copy_str(&uns->via.array.ptr[i], ubuf[i], JD_LABEL_MAX) ||
            !jd_label_key_ok(ubuf[i])) {
            return;
        }
        unset[n_unset++] = ubuf[i];
    }
    if (n_set + n_unset == 0) {
        return;
    }
    if (jd_cmd_label(node, keys, values, n_set, unset, n_unset,
                     "uid 0 on the local socket", 3000, &cmd, &len) != 0 ||
        (s = jd_state_new()) == NULL) {
        abort();
    }
    populate(s);
    apply(s, 3, cmd, len);
    free(cmd);
    jd_state_free(s);
}

/* What server.c and api.c do with a request body, short of the node. */
static void fuzz_request(const char *buf, size_t len)
{
    struct jd_request req;
    msgpack_sbuffer reply;
    msgpack_packer pk;
    char err[256];
    if (jd_request_decode(buf, len, &req, err, sizeof err) != 0) {
        jd_reply_error(&reply, JD_CODE_MALFORMED, "%s", err);
        msgpack_sbuffer_destroy(&reply);
        return;
    }
    if (req.op[0] == '\0' || strlen(req.op) >= sizeof req.op ||
        (req.args != NULL && req.args->type != MSGPACK_OBJECT_MAP)) {
        abort();
    }
    walk_args(req.args);
    if (strcmp(req.op, "audit") == 0) {
        audit_request(req.args);
    } else if (strcmp(req.op, "node.label") == 0) {
        label_request(req.args);
    } else if (strcmp(req.op, "watch") == 0) {
        jd_reply_ok(&reply, &pk);
        msgpack_pack_nil(&pk);
        msgpack_sbuffer_destroy(&reply);
    } else if (strcmp(req.op, "status") != 0) {
        jd_reply_error(&reply, JD_CODE_UNKNOWN_OP, "unknown operation \"%s\"",
                       req.op);
        msgpack_sbuffer_destroy(&reply);
    }
    jd_request_free(&req);
}

static void fuzz_apply(const char *buf, size_t len)
{
    struct jd_state *s = jd_state_new();
    if (s == NULL) {
        abort();
    }
    populate(s);
    apply(s, 3, buf, len);
    apply(s, 4, buf, len);
    query(s);
    check_round_trip(s);
    jd_state_free(s);
}

static void fuzz_restore(const char *buf, size_t len)
{
    struct jd_state *s = jd_state_new();
    if (s == NULL) {
        abort();
    }
    if (restore(s, buf, len) == 0) {
        query(s);
        populate(s);
        query(s);
    }
    jd_state_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    fuzz_request(buf, size);
    fuzz_apply(buf, size);
    fuzz_restore(buf, size);
    return 0;
}
