/* state.c: see state.h.
 *
 * Commands are msgpack maps with a type "t" and the submitter's "who" and
 * "now" (wall clock, ms): the submitter's clock stamps audit events, so every
 * node records the same time. A snapshot is the array
 * [2, leader_id, [node...], [event...], audit_max_events, audit_max_age_s,
 *  [deployment...]]; version 1, without deployments, is still read.
 * Deployments and replicas are deploy.c's; this file dispatches to it. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mpbound.h"
#include "deploy.h"
#include "mp.h"
#include "state.h"

#define SNAPSHOT_VERSION 2
#define TYPE_MAX 32
#define WHO_MAX 96
#define DETAILS_MAX 256

struct node_rec {
    uint64_t id;
    char name[JD_NAME_MAX];
    char address[JD_ADDR_MAX];
    char role[16];
    int status;
    int64_t last_seen_ms;
    /* What the host reported of itself (node.host). */
    char isolation[16]; /* "ok", "unavailable", "none"; "" not reported */
    char isolation_detail[JD_DETAIL_MAX];
    char runtime[JD_NAME_MAX]; /* its scheduler plugin; "" none */
    unsigned n_labels;
    char keys[JD_LABELS_MAX][JD_LABEL_MAX];
    char values[JD_LABELS_MAX][JD_LABEL_MAX];
};

struct audit_event {
    uint64_t index;
    int64_t time_ms;
    char type[TYPE_MAX];
    char who[WHO_MAX];
    char node[JD_NAME_MAX];
    char details[DETAILS_MAX];
};

struct jd_state {
    pthread_mutex_t mutex; /* everything below */
    struct jr_fsm fsm;
    struct node_rec *nodes;
    unsigned n_nodes;
    unsigned cap_nodes;
    struct audit_event *events; /* events[head .. head+count) */
    unsigned cap_events;
    unsigned head; /* the oldest */
    unsigned count;
    /* The audit log's bounds are replicated (the leader's configuration,
     * carried by its observations), so that every node drops the same
     * events. */
    unsigned max_events;
    unsigned max_age_s;
    uint64_t leader_id;
    struct jd_deploys *deploys;
    void (*hook)(void *data, uint64_t index, const char *type);
    void *hook_data;
};

const char *jd_node_status_name(int status)
{
    switch (status) {
        case JD_NODE_STATUS_READY: return "NODE_STATUS_READY";
        case JD_NODE_STATUS_UNREACHABLE: return "NODE_STATUS_UNREACHABLE";
        case JD_NODE_STATUS_ISOLATION_UNAVAILABLE:
            return "NODE_STATUS_ISOLATION_UNAVAILABLE";
        default: return "NODE_STATUS_UNKNOWN";
    }
}

static int status_of_name(const char *name)
{
    int i;
    for (i = JD_NODE_STATUS_UNKNOWN; i <= JD_NODE_STATUS_ISOLATION_UNAVAILABLE;
         i++) {
        if (strcmp(name, jd_node_status_name(i)) == 0) {
            return i;
        }
    }
    return JD_NODE_STATUS_UNKNOWN;
}

/* ---- the state (callers hold the mutex) ---- */

static struct node_rec *node_by_id(struct jd_state *s, uint64_t id)
{
    unsigned i;
    for (i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].id == id) {
            return &s->nodes[i];
        }
    }
    return NULL;
}

static struct node_rec *node_by_name(struct jd_state *s, const char *name)
{
    unsigned i;
    for (i = 0; i < s->n_nodes; i++) {
        if (strcmp(s->nodes[i].name, name) == 0) {
            return &s->nodes[i];
        }
    }
    return NULL;
}

static struct node_rec *node_add(struct jd_state *s)
{
    struct node_rec *r;
    if (s->n_nodes == s->cap_nodes) {
        unsigned cap = s->cap_nodes == 0 ? 8 : s->cap_nodes * 2;
        struct node_rec *n = realloc(s->nodes, cap * sizeof *n);
        if (n == NULL) {
            return NULL;
        }
        s->nodes = n;
        s->cap_nodes = cap;
    }
    r = &s->nodes[s->n_nodes++];
    memset(r, 0, sizeof *r);
    return r;
}

static struct audit_event *event_at(struct jd_state *s, unsigned k)
{
    return &s->events[s->head + k];
}

/* Record an event; drops the oldest beyond the count, and those older than
 * the age bound measured from this event's time. */
static void audit(struct jd_state *s,
                  uint64_t index,
                  int64_t time_ms,
                  const char *type,
                  const char *who,
                  const char *node,
                  const char *fmt,
                  ...) __attribute__((format(printf, 7, 8)));

static void audit(struct jd_state *s,
                  uint64_t index,
                  int64_t time_ms,
                  const char *type,
                  const char *who,
                  const char *node,
                  const char *fmt,
                  ...)
{
    struct audit_event *e;
    va_list ap;
    int64_t age_ms = (int64_t)s->max_age_s * 1000;
    /* time_ms is the command's "now": any int64, so do not overflow. */
    int64_t oldest =
        time_ms < INT64_MIN + age_ms ? INT64_MIN : time_ms - age_ms;
    while (s->count > 0 && event_at(s, 0)->time_ms < oldest) {
        s->head++;
        s->count--;
    }
    while (s->count > 0 && s->count >= s->max_events) {
        s->head++;
        s->count--;
    }
    if (s->head + s->count == s->cap_events) {
        if (s->head > 0) {
            memmove(s->events, s->events + s->head,
                    s->count * sizeof *s->events);
            s->head = 0;
        } else {
            unsigned cap = s->cap_events == 0 ? 64 : s->cap_events * 2;
            struct audit_event *ev = realloc(s->events, cap * sizeof *ev);
            if (ev == NULL) {
                return; /* out of memory: this event is not recorded */
            }
            s->events = ev;
            s->cap_events = cap;
        }
    }
    e = event_at(s, s->count++);
    memset(e, 0, sizeof *e);
    e->index = index;
    e->time_ms = time_ms;
    snprintf(e->type, sizeof e->type, "%s", type);
    snprintf(e->who, sizeof e->who, "%s", who);
    snprintf(e->node, sizeof e->node, "%s", node);
    va_start(ap, fmt);
    vsnprintf(e->details, sizeof e->details, fmt, ap);
    va_end(ap);
}

/* ---- commands ---- */

static void pack_cmd_head(msgpack_packer *pk,
                          const char *type,
                          const char *who,
                          int64_t now_ms,
                          unsigned extra)
{
    msgpack_pack_map(pk, 3 + extra);
    jd_mp_kv_str(pk, "t", type);
    jd_mp_kv_str(pk, "who", who);
    jd_mp_key(pk, "now");
    msgpack_pack_int64(pk, now_ms);
}

/* Start a command of type in sb (its head packed, extra more fields to
 * follow). */
static void cmd_begin(msgpack_sbuffer *sb,
                      msgpack_packer *pk,
                      const char *type,
                      const char *who,
                      int64_t now_ms,
                      unsigned extra)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    pack_cmd_head(pk, type, who, now_ms, extra);
}

static int sbuf_out(msgpack_sbuffer *sb, char **buf, size_t *len)
{
    *buf = sb->data;
    *len = sb->size;
    return sb->data != NULL ? 0 : -1;
}

int jd_cmd_observe(const struct jd_observed *nodes,
                   unsigned n,
                   uint64_t leader_id,
                   unsigned audit_max_events,
                   unsigned audit_max_age_s,
                   const char *who,
                   int64_t now_ms,
                   char **buf,
                   size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned i;
    cmd_begin(&sb, &pk, "node.observe", who, now_ms, 4);
    jd_mp_key(&pk, "audit_max_events");
    msgpack_pack_uint64(&pk, audit_max_events);
    jd_mp_key(&pk, "audit_max_age_s");
    msgpack_pack_uint64(&pk, audit_max_age_s);
    jd_mp_key(&pk, "leader");
    msgpack_pack_uint64(&pk, leader_id);
    jd_mp_key(&pk, "nodes");
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 6);
        jd_mp_key(&pk, "id");
        msgpack_pack_uint64(&pk, nodes[i].id);
        jd_mp_kv_str(&pk, "name", nodes[i].name);
        jd_mp_kv_str(&pk, "address", nodes[i].address);
        jd_mp_kv_str(&pk, "role", nodes[i].role);
        jd_mp_kv_str(&pk, "status", jd_node_status_name(nodes[i].status));
        jd_mp_key(&pk, "last_seen");
        msgpack_pack_int64(&pk, nodes[i].last_seen_ms);
    }
    return sbuf_out(&sb, buf, len);
}

int jd_cmd_label(const char *node,
                 const char *const *keys,
                 const char *const *values,
                 unsigned n_set,
                 const char *const *unset,
                 unsigned n_unset,
                 const char *who,
                 int64_t now_ms,
                 char **buf,
                 size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned i;
    cmd_begin(&sb, &pk, "node.label", who, now_ms, 3);
    jd_mp_kv_str(&pk, "node", node);
    jd_mp_key(&pk, "set");
    msgpack_pack_map(&pk, n_set);
    for (i = 0; i < n_set; i++) {
        jd_mp_kv_str(&pk, keys[i], values[i]);
    }
    jd_mp_key(&pk, "unset");
    msgpack_pack_array(&pk, n_unset);
    for (i = 0; i < n_unset; i++) {
        jd_mp_str(&pk, unset[i]);
    }
    return sbuf_out(&sb, buf, len);
}

int jd_cmd_remove(uint64_t id,
                  const char *name,
                  const char *how,
                  const char *who,
                  int64_t now_ms,
                  char **buf,
                  size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cmd_begin(&sb, &pk, "node.remove", who, now_ms, 3);
    jd_mp_key(&pk, "id");
    msgpack_pack_uint64(&pk, id);
    jd_mp_kv_str(&pk, "node", name);
    jd_mp_kv_str(&pk, "how", how);
    return sbuf_out(&sb, buf, len);
}

int jd_cmd_host(const char *node,
                const char *isolation,
                const char *detail,
                const char *runtime,
                const char *who,
                int64_t now_ms,
                char **buf,
                size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cmd_begin(&sb, &pk, "node.host", who, now_ms, 4);
    jd_mp_kv_str(&pk, "node", node);
    jd_mp_kv_str(&pk, "isolation", isolation);
    jd_mp_kv_str(&pk, "detail", detail);
    jd_mp_kv_str(&pk, "runtime", runtime);
    return sbuf_out(&sb, buf, len);
}

int jd_cmd_audit(const char *type,
                 const char *node,
                 const char *details,
                 const char *who,
                 int64_t now_ms,
                 char **buf,
                 size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cmd_begin(&sb, &pk, "audit.record", who, now_ms, 3);
    jd_mp_kv_str(&pk, "type", type);
    jd_mp_kv_str(&pk, "node", node);
    jd_mp_kv_str(&pk, "details", details);
    return sbuf_out(&sb, buf, len);
}

/* ---- apply ---- */

static int result_error(void **result, size_t *result_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int result_error(void **result, size_t *result_len, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return 0;
    }
    if ((size_t)n >= sizeof msg) {
        n = sizeof msg - 1;
    }
    *result = jr_malloc((size_t)n + 1);
    if (*result != NULL) {
        memcpy(*result, msg, (size_t)n + 1);
        *result_len = (size_t)n;
    }
    return 0;
}

/* Label keys: [a-z0-9], '.', '/', '_' and '-', 1-63 bytes; values: printable
 * ASCII without spaces, '=' or ',', 0-63 bytes. */
bool jd_label_key_ok(const char *k)
{
    size_t i, n = strlen(k);
    if (n == 0 || n >= JD_LABEL_MAX) {
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '/' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

bool jd_label_value_ok(const char *v)
{
    size_t i, n = strlen(v);
    if (n >= JD_LABEL_MAX) {
        return false;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c >= 0x7f || c == '=' || c == ',') {
            return false;
        }
    }
    return true;
}

static void label_set(struct node_rec *r, const char *k, const char *v)
{
    unsigned i;
    for (i = 0; i < r->n_labels; i++) {
        if (strcmp(r->keys[i], k) == 0) {
            snprintf(r->values[i], JD_LABEL_MAX, "%s", v);
            return;
        }
    }
    snprintf(r->keys[r->n_labels], JD_LABEL_MAX, "%s", k);
    snprintf(r->values[r->n_labels], JD_LABEL_MAX, "%s", v);
    r->n_labels++;
}

static bool label_unset(struct node_rec *r, const char *k)
{
    unsigned i;
    for (i = 0; i < r->n_labels; i++) {
        if (strcmp(r->keys[i], k) == 0) {
            r->n_labels--;
            memmove(r->keys[i], r->keys[i + 1],
                    (r->n_labels - i) * sizeof r->keys[0]);
            memmove(r->values[i], r->values[i + 1],
                    (r->n_labels - i) * sizeof r->values[0]);
            return true;
        }
    }
    return false;
}

static bool has_label(const struct node_rec *r, const char *k)
{
    unsigned i;
    for (i = 0; i < r->n_labels; i++) {
        if (strcmp(r->keys[i], k) == 0) {
            return true;
        }
    }
    return false;
}

static int apply_label(struct jd_state *s,
                       uint64_t index,
                       const msgpack_object *cmd,
                       const char *who,
                       int64_t now,
                       void **result,
                       size_t *result_len)
{
    char node[JD_NAME_MAX], k[JD_LABEL_MAX], v[JD_LABEL_MAX];
    char set_desc[DETAILS_MAX] = "", unset_desc[DETAILS_MAX] = "";
    const msgpack_object *set = jd_mp_get(cmd, "set");
    const msgpack_object *unset = jd_mp_get(cmd, "unset");
    struct node_rec *r;
    unsigned i, adds = 0;
    if (jd_mp_copy_str(jd_mp_get(cmd, "node"), node, sizeof node) != 0 ||
        set == NULL || set->type != MSGPACK_OBJECT_MAP || unset == NULL ||
        unset->type != MSGPACK_OBJECT_ARRAY) {
        return result_error(result, result_len,
                            "invalid_argument: malformed label command");
    }
    if ((r = node_by_name(s, node)) == NULL) {
        return result_error(result, result_len,
                            "not_found: no node named \"%s\"", node);
    }
    /* Check everything before changing anything. */
    for (i = 0; i < set->via.map.size; i++) {
        if (jd_mp_copy_str(&set->via.map.ptr[i].key, k, sizeof k) != 0 ||
            jd_mp_copy_str(&set->via.map.ptr[i].val, v, sizeof v) != 0 ||
            !jd_label_key_ok(k) || !jd_label_value_ok(v)) {
            return result_error(result, result_len,
                                "invalid_argument: bad label (keys: a-z, "
                                "0-9, '.', '/', '_', '-'; values: no "
                                "spaces, '=' or ','; up to %d bytes each)",
                                JD_LABEL_MAX - 1);
        }
        adds += has_label(r, k) ? 0 : 1;
    }
    for (i = 0; i < unset->via.array.size; i++) {
        if (jd_mp_copy_str(&unset->via.array.ptr[i], k, sizeof k) != 0 ||
            !jd_label_key_ok(k)) {
            return result_error(result, result_len,
                                "invalid_argument: bad label key");
        }
    }
    if (r->n_labels + adds > JD_LABELS_MAX) {
        return result_error(result, result_len,
                            "invalid_argument: a node has at most %d labels",
                            JD_LABELS_MAX);
    }
    for (i = 0; i < set->via.map.size; i++) {
        size_t used = strlen(set_desc);
        (void)jd_mp_copy_str(&set->via.map.ptr[i].key, k, sizeof k);
        (void)jd_mp_copy_str(&set->via.map.ptr[i].val, v, sizeof v);
        label_set(r, k, v);
        snprintf(set_desc + used, sizeof set_desc - used, "%s%s=%s",
                 used > 0 ? " " : "", k, v);
    }
    for (i = 0; i < unset->via.array.size; i++) {
        size_t used = strlen(unset_desc);
        (void)jd_mp_copy_str(&unset->via.array.ptr[i], k, sizeof k);
        if (label_unset(r, k)) {
            snprintf(unset_desc + used, sizeof unset_desc - used, "%s%s",
                     used > 0 ? " " : "", k);
        }
    }
    if (set_desc[0] != '\0') {
        audit(s, index, now, "node.label", who, node, "%s", set_desc);
    }
    if (unset_desc[0] != '\0') {
        audit(s, index, now, "node.unlabel", who, node, "%s", unset_desc);
    }
    return 0;
}

static void name_of_id(struct jd_state *s, uint64_t id, char *out, size_t size)
{
    struct node_rec *r = node_by_id(s, id);
    if (r != NULL && r->name[0] != '\0') {
        snprintf(out, size, "%s", r->name);
    } else {
        snprintf(out, size, "node%llu", (unsigned long long)id);
    }
}

static bool observed(const msgpack_object *nodes, uint64_t id)
{
    uint64_t v;
    uint32_t i;
    for (i = 0; i < nodes->via.array.size; i++) {
        if (jd_mp_u64(jd_mp_get(&nodes->via.array.ptr[i], "id"), &v) == 0 &&
            v == id) {
            return true;
        }
    }
    return false;
}

/* An observation lists the whole Raft configuration: a recorded node
 * missing from it is no member any more (lost in a forced recovery or a
 * restore, which leave the state's records as they were). It stays listed,
 * with role "none", until removed or back. */
static void mark_nonmembers(struct jd_state *s,
                            uint64_t index,
                            int64_t now,
                            const char *who,
                            const msgpack_object *nodes)
{
    size_t i;
    for (i = 0; i < s->n_nodes; i++) {
        struct node_rec *r = &s->nodes[i];
        if (strcmp(r->role, "none") == 0 || observed(nodes, r->id)) {
            continue;
        }
        audit(s, index, now, "node.role", who, r->name,
              "%s -> none (not in the Raft configuration)", r->role);
        snprintf(r->role, sizeof r->role, "none");
        if (r->status != JD_NODE_STATUS_UNREACHABLE) {
            audit(s, index, now, "node.status", who, r->name, "%s -> %s",
                  jd_node_status_name(r->status),
                  jd_node_status_name(JD_NODE_STATUS_UNREACHABLE));
            r->status = JD_NODE_STATUS_UNREACHABLE;
        }
    }
}

bool jd_state_has_nonmembers(struct jd_state *s,
                             const uint64_t *ids,
                             unsigned n)
{
    size_t i;
    unsigned k;
    bool found = false;
    pthread_mutex_lock(&s->mutex);
    for (i = 0; i < s->n_nodes && !found; i++) {
        bool member = false;
        for (k = 0; k < n && !member; k++) {
            member = s->nodes[i].id == ids[k];
        }
        found = !member && strcmp(s->nodes[i].role, "none") != 0;
    }
    pthread_mutex_unlock(&s->mutex);
    return found;
}

static int apply_observe(struct jd_state *s,
                         uint64_t index,
                         const msgpack_object *cmd,
                         const char *who,
                         int64_t now,
                         void **result,
                         size_t *result_len)
{
    const msgpack_object *nodes = jd_mp_get(cmd, "nodes");
    uint64_t leader, max_events, max_age;
    unsigned i;
    if (jd_mp_u64(jd_mp_get(cmd, "leader"), &leader) != 0 || nodes == NULL ||
        nodes->type != MSGPACK_OBJECT_ARRAY ||
        jd_mp_u64(jd_mp_get(cmd, "audit_max_events"), &max_events) != 0 ||
        jd_mp_u64(jd_mp_get(cmd, "audit_max_age_s"), &max_age) != 0 ||
        max_events == 0 || max_events > JD_AUDIT_MAX_EVENTS_LIMIT ||
        max_age == 0 || max_age > UINT32_MAX) {
        return result_error(result, result_len,
                            "invalid_argument: malformed observe command");
    }
    s->max_events = (unsigned)max_events;
    s->max_age_s = (unsigned)max_age;
    for (i = 0; i < nodes->via.array.size; i++) {
        const msgpack_object *o = &nodes->via.array.ptr[i];
        struct jd_observed ob;
        char status[48];
        struct node_rec *r;
        memset(&ob, 0, sizeof ob);
        if (jd_mp_u64(jd_mp_get(o, "id"), &ob.id) != 0 || ob.id == 0 ||
            jd_mp_copy_str(jd_mp_get(o, "name"), ob.name, sizeof ob.name) ||
            jd_mp_copy_str(jd_mp_get(o, "address"), ob.address,
                           sizeof ob.address) ||
            jd_mp_copy_str(jd_mp_get(o, "role"), ob.role, sizeof ob.role) ||
            jd_mp_copy_str(jd_mp_get(o, "status"), status, sizeof status) ||
            jd_mp_i64(jd_mp_get(o, "last_seen"), &ob.last_seen_ms) != 0) {
            continue; /* deterministic: every node skips the same */
        }
        ob.status = status_of_name(status);
        if ((r = node_by_id(s, ob.id)) == NULL) {
            if ((r = node_add(s)) == NULL) {
                continue; /* out of memory: this node only; see DESIGN */
            }
            r->id = ob.id;
            snprintf(r->name, sizeof r->name, "%s", ob.name);
            snprintf(r->address, sizeof r->address, "%s", ob.address);
            snprintf(r->role, sizeof r->role, "%s", ob.role);
            audit(s, index, now, "node.joined", who, r->name,
                  "id %llu, address %s, %s", (unsigned long long)ob.id,
                  ob.address, ob.role);
        }
        if (ob.name[0] != '\0' && strcmp(r->name, ob.name) != 0) {
            audit(s, index, now, "node.renamed", who, ob.name, "%s -> %s",
                  r->name, ob.name);
            snprintf(r->name, sizeof r->name, "%s", ob.name);
        }
        if (strcmp(r->address, ob.address) != 0) {
            audit(s, index, now, "node.address", who, r->name, "%s -> %s",
                  r->address, ob.address);
            snprintf(r->address, sizeof r->address, "%s", ob.address);
        }
        if (strcmp(r->role, ob.role) != 0) {
            audit(s, index, now, "node.role", who, r->name, "%s -> %s", r->role,
                  ob.role);
            snprintf(r->role, sizeof r->role, "%s", ob.role);
        }
        if (r->status != ob.status) {
            audit(s, index, now, "node.status", who, r->name, "%s -> %s",
                  jd_node_status_name(r->status),
                  jd_node_status_name(ob.status));
            r->status = ob.status;
        }
        if (ob.last_seen_ms > r->last_seen_ms) {
            r->last_seen_ms = ob.last_seen_ms;
        }
    }
    mark_nonmembers(s, index, now, who, nodes);
    if (leader != s->leader_id) {
        char name[JD_NAME_MAX];
        name_of_id(s, leader, name, sizeof name);
        audit(s, index, now, "leader.changed", who, name, "leader is %s", name);
        s->leader_id = leader;
    }
    return 0;
}

/* The node was removed from the Raft configuration already: forget it
 * whether or not it has a record, and say so in the audit log either way. */
static int apply_remove(struct jd_state *s,
                        uint64_t index,
                        const msgpack_object *cmd,
                        const char *who,
                        int64_t now,
                        void **result,
                        size_t *result_len)
{
    char name[JD_NAME_MAX], how[32];
    struct node_rec *r;
    uint64_t id;
    if (jd_mp_u64(jd_mp_get(cmd, "id"), &id) != 0 || id == 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "node"), name, sizeof name) != 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "how"), how, sizeof how) != 0) {
        return result_error(result, result_len,
                            "invalid_argument: malformed remove command");
    }
    r = node_by_id(s, id);
    if (r == NULL && name[0] != '\0') {
        r = node_by_name(s, name);
    }
    if (r == NULL) {
        audit(s, index, now, "node.removed", who, name[0] != '\0' ? name : "?",
              "id %llu, %s (no record)", (unsigned long long)id, how);
        return 0;
    }
    audit(s, index, now, "node.removed", who, r->name, "id %llu, %s",
          (unsigned long long)r->id, how);
    s->n_nodes--;
    memmove(r, r + 1, (size_t)(s->nodes + s->n_nodes - r) * sizeof *r);
    return 0;
}

/* An event a host reports (its isolation plugin restored a ruleset...):
 * the type must be a word, so that nothing passes for another command's
 * event. */
static int apply_audit(struct jd_state *s,
                       uint64_t index,
                       const msgpack_object *cmd,
                       const char *who,
                       int64_t now,
                       void **result,
                       size_t *result_len)
{
    char type[48], node[JD_NAME_MAX], details[512];
    size_t i;
    if (jd_mp_copy_str(jd_mp_get(cmd, "type"), type, sizeof type) != 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "node"), node, sizeof node) != 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "details"), details, sizeof details) !=
            0 ||
        type[0] == '\0') {
        return result_error(result, result_len,
                            "invalid_argument: malformed audit command");
    }
    for (i = 0; type[i] != '\0'; i++) {
        if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_')) {
            return result_error(result, result_len,
                                "invalid_argument: audit type \"%s\"", type);
        }
    }
    audit(s, index, now, type, who, node, "%s", details);
    return 0;
}

/* What a host says of itself: its isolation self-test and its runtime. */
static int apply_host(struct jd_state *s,
                      uint64_t index,
                      const msgpack_object *cmd,
                      const char *who,
                      int64_t now,
                      void **result,
                      size_t *result_len)
{
    char node[JD_NAME_MAX], iso[16], detail[JD_DETAIL_MAX],
        runtime[JD_NAME_MAX];
    struct node_rec *r;
    if (jd_mp_copy_str(jd_mp_get(cmd, "node"), node, sizeof node) != 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "isolation"), iso, sizeof iso) != 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "detail"), detail, sizeof detail) != 0 ||
        jd_mp_copy_str(jd_mp_get(cmd, "runtime"), runtime, sizeof runtime) !=
            0 ||
        (strcmp(iso, "ok") != 0 && strcmp(iso, "unavailable") != 0 &&
         strcmp(iso, "none") != 0)) {
        return result_error(result, result_len,
                            "invalid_argument: malformed host command");
    }
    if ((r = node_by_name(s, node)) == NULL) {
        return result_error(result, result_len,
                            "not_found: no node named \"%s\"", node);
    }
    if (strcmp(r->isolation, iso) != 0 ||
        strcmp(r->isolation_detail, detail) != 0) {
        audit(s, index, now, "node.isolation", who, node, "%s (%s)", iso,
              detail);
    }
    if (strcmp(r->runtime, runtime) != 0) {
        audit(
            s, index, now, "node.runtime", who, node, "%s",
            runtime[0] != '\0' ? runtime : "none: this host runs no replicas");
    }
    memcpy(r->isolation, iso, sizeof r->isolation);
    memcpy(r->isolation_detail, detail, sizeof r->isolation_detail);
    memcpy(r->runtime, runtime, sizeof r->runtime);
    return 0;
}

struct audit_ctx {
    struct jd_state *s;
    uint64_t index;
    int64_t now;
    const char *who;
};

static void deploy_audit(void *ctx,
                         const char *type,
                         const char *node,
                         const char *details)
{
    struct audit_ctx *c = ctx;
    audit(c->s, c->index, c->now, type, c->who, node, "%s", details);
}

/* deploy.c's result as the FSM's: "" and "ok: ..." are successes. */
static int deploy_result(const char *text, void **result, size_t *result_len)
{
    if (text[0] == '\0') {
        return 0;
    }
    return result_error(result, result_len, "%s", text);
}

static int fsm_apply(void *data,
                     uint64_t index,
                     const void *buf,
                     size_t len,
                     void **result,
                     size_t *result_len)
{
    struct jd_state *s = data;
    msgpack_unpacked u;
    char type[TYPE_MAX] = "", who[WHO_MAX] = "", text[600];
    int64_t now = 0;
    size_t off = 0;
    int rv = 0;
    *result = NULL;
    *result_len = 0;
    if (!jr__msgpack_bounded(buf, len)) {
        return result_error(result, result_len,
                            "invalid_argument: malformed command");
    }
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP ||
        jd_mp_copy_str(jd_mp_get(&u.data, "t"), type, sizeof type) != 0 ||
        jd_mp_copy_str(jd_mp_get(&u.data, "who"), who, sizeof who) != 0 ||
        jd_mp_i64(jd_mp_get(&u.data, "now"), &now) != 0) {
        msgpack_unpacked_destroy(&u);
        return result_error(result, result_len,
                            "invalid_argument: malformed command");
    }
    pthread_mutex_lock(&s->mutex);
    if (strcmp(type, "node.label") == 0) {
        rv = apply_label(s, index, &u.data, who, now, result, result_len);
    } else if (strcmp(type, "node.observe") == 0) {
        rv = apply_observe(s, index, &u.data, who, now, result, result_len);
    } else if (strcmp(type, "node.remove") == 0) {
        rv = apply_remove(s, index, &u.data, who, now, result, result_len);
    } else if (strcmp(type, "audit.record") == 0) {
        rv = apply_audit(s, index, &u.data, who, now, result, result_len);
    } else if (strcmp(type, "node.host") == 0) {
        rv = apply_host(s, index, &u.data, who, now, result, result_len);
    } else if (jd_deploys_apply(s->deploys, type, &u.data, now, deploy_audit,
                                &(struct audit_ctx){s, index, now, who}, text,
                                sizeof text)) {
        rv = deploy_result(text, result, result_len);
    } else {
        rv = result_error(result, result_len,
                          "invalid_argument: unknown command \"%s\"", type);
    }
    /* Under the lock, so that jd_state_set_hook(NULL) returning means the
     * old hook is not running and will not run again. */
    if (s->hook != NULL) {
        s->hook(s->hook_data, index, type);
    }
    pthread_mutex_unlock(&s->mutex);
    msgpack_unpacked_destroy(&u);
    return rv;
}

/* ---- snapshot and restore ---- */

static void pack_node(msgpack_packer *pk, const struct node_rec *r)
{
    unsigned i;
    msgpack_pack_map(pk, 10);
    jd_mp_key(pk, "id");
    msgpack_pack_uint64(pk, r->id);
    jd_mp_kv_str(pk, "isolation", r->isolation);
    jd_mp_kv_str(pk, "isolation_detail", r->isolation_detail);
    jd_mp_kv_str(pk, "runtime", r->runtime);
    jd_mp_kv_str(pk, "name", r->name);
    jd_mp_kv_str(pk, "address", r->address);
    jd_mp_kv_str(pk, "role", r->role);
    jd_mp_kv_str(pk, "status", jd_node_status_name(r->status));
    jd_mp_key(pk, "last_seen_ms");
    msgpack_pack_int64(pk, r->last_seen_ms);
    jd_mp_key(pk, "labels");
    msgpack_pack_map(pk, r->n_labels);
    for (i = 0; i < r->n_labels; i++) {
        jd_mp_kv_str(pk, r->keys[i], r->values[i]);
    }
}

static void pack_event(msgpack_packer *pk, const struct audit_event *e)
{
    msgpack_pack_map(pk, 6);
    jd_mp_key(pk, "index");
    msgpack_pack_uint64(pk, e->index);
    jd_mp_key(pk, "time_ms");
    msgpack_pack_int64(pk, e->time_ms);
    jd_mp_kv_str(pk, "type", e->type);
    jd_mp_kv_str(pk, "who", e->who);
    jd_mp_kv_str(pk, "node", e->node);
    jd_mp_kv_str(pk, "details", e->details);
}

static int fsm_snapshot(void *data, struct jr_snapshot_writer *w)
{
    struct jd_state *s = data;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned i;
    int rv;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pthread_mutex_lock(&s->mutex);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint64(&pk, SNAPSHOT_VERSION);
    msgpack_pack_uint64(&pk, s->leader_id);
    msgpack_pack_array(&pk, s->n_nodes);
    for (i = 0; i < s->n_nodes; i++) {
        pack_node(&pk, &s->nodes[i]);
    }
    msgpack_pack_array(&pk, s->count);
    for (i = 0; i < s->count; i++) {
        pack_event(&pk, event_at(s, i));
    }
    msgpack_pack_uint64(&pk, s->max_events);
    msgpack_pack_uint64(&pk, s->max_age_s);
    jd_deploys_pack(s->deploys, &pk);
    pthread_mutex_unlock(&s->mutex);
    rv = sb.data != NULL ? jr_snapshot_write(w, sb.data, sb.size) : -1;
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

static int restore_node(struct node_rec *r, const msgpack_object *o)
{
    const msgpack_object *labels = jd_mp_get(o, "labels");
    char status[48];
    unsigned i;
    memset(r, 0, sizeof *r);
    if (jd_mp_u64(jd_mp_get(o, "id"), &r->id) != 0 ||
        jd_mp_copy_str(jd_mp_get(o, "name"), r->name, sizeof r->name) ||
        jd_mp_copy_str(jd_mp_get(o, "address"), r->address,
                       sizeof r->address) ||
        jd_mp_copy_str(jd_mp_get(o, "role"), r->role, sizeof r->role) ||
        jd_mp_copy_str(jd_mp_get(o, "status"), status, sizeof status) ||
        jd_mp_i64(jd_mp_get(o, "last_seen_ms"), &r->last_seen_ms) != 0 ||
        labels == NULL || labels->type != MSGPACK_OBJECT_MAP ||
        labels->via.map.size > JD_LABELS_MAX) {
        return -1;
    }
    r->status = status_of_name(status);
    /* Version 1 snapshots have no host report: "" (not reported). */
    if (jd_mp_get(o, "isolation") != NULL &&
        (jd_mp_copy_str(jd_mp_get(o, "isolation"), r->isolation,
                        sizeof r->isolation) ||
         jd_mp_copy_str(jd_mp_get(o, "isolation_detail"), r->isolation_detail,
                        sizeof r->isolation_detail) ||
         jd_mp_copy_str(jd_mp_get(o, "runtime"), r->runtime,
                        sizeof r->runtime))) {
        return -1;
    }
    for (i = 0; i < labels->via.map.size; i++) {
        if (jd_mp_copy_str(&labels->via.map.ptr[i].key, r->keys[i],
                           JD_LABEL_MAX) ||
            jd_mp_copy_str(&labels->via.map.ptr[i].val, r->values[i],
                           JD_LABEL_MAX)) {
            return -1;
        }
    }
    r->n_labels = labels->via.map.size;
    return 0;
}

static int restore_event(struct audit_event *e, const msgpack_object *o)
{
    memset(e, 0, sizeof *e);
    return jd_mp_u64(jd_mp_get(o, "index"), &e->index) != 0 ||
                   jd_mp_i64(jd_mp_get(o, "time_ms"), &e->time_ms) != 0 ||
                   jd_mp_copy_str(jd_mp_get(o, "type"), e->type,
                                  sizeof e->type) ||
                   jd_mp_copy_str(jd_mp_get(o, "who"), e->who, sizeof e->who) ||
                   jd_mp_copy_str(jd_mp_get(o, "node"), e->node,
                                  sizeof e->node) ||
                   jd_mp_copy_str(jd_mp_get(o, "details"), e->details,
                                  sizeof e->details)
               ? -1
               : 0;
}

static int fsm_restore(void *data, struct jr_snapshot_reader *rd)
{
    struct jd_state *s = data;
    size_t len = jr_snapshot_remaining(rd), off = 0;
    char *buf = malloc(len > 0 ? len : 1);
    struct node_rec *nodes = NULL;
    struct audit_event *events = NULL;
    struct jd_deploys *deploys = NULL;
    const msgpack_object *a;
    msgpack_unpacked u;
    uint64_t version, leader, max_events, max_age;
    unsigned i, n_nodes, n_events;
    int rv = -1;
    if (buf == NULL) {
        return -1;
    }
    (void)jr_snapshot_read(rd, buf, len);
    msgpack_unpacked_init(&u);
    if (!jr__msgpack_bounded(buf, len) ||
        msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 6) {
        goto out;
    }
    a = u.data.via.array.ptr;
    if (jd_mp_u64(&a[0], &version) != 0 || version < 1 ||
        version > SNAPSHOT_VERSION ||
        u.data.via.array.size != (version == 1 ? 6u : 7u) ||
        jd_mp_u64(&a[1], &leader) != 0 || a[2].type != MSGPACK_OBJECT_ARRAY ||
        a[3].type != MSGPACK_OBJECT_ARRAY || jd_mp_u64(&a[4], &max_events) ||
        jd_mp_u64(&a[5], &max_age) || max_events == 0 ||
        max_events > JD_AUDIT_MAX_EVENTS_LIMIT || max_age == 0 ||
        max_age > UINT32_MAX) {
        goto out;
    }
    n_nodes = a[2].via.array.size;
    n_events = a[3].via.array.size;
    nodes = calloc(n_nodes > 0 ? n_nodes : 1, sizeof *nodes);
    events = calloc(n_events > 0 ? n_events : 1, sizeof *events);
    if (nodes == NULL || events == NULL) {
        goto out;
    }
    for (i = 0; i < n_nodes; i++) {
        if (restore_node(&nodes[i], &a[2].via.array.ptr[i]) != 0) {
            goto out;
        }
    }
    for (i = 0; i < n_events; i++) {
        if (restore_event(&events[i], &a[3].via.array.ptr[i]) != 0) {
            goto out;
        }
    }
    if (version == 1 ? (deploys = jd_deploys_new()) == NULL
                     : jd_deploys_unpack(&a[6], &deploys) != 0) {
        goto out;
    }
    pthread_mutex_lock(&s->mutex);
    free(s->nodes);
    free(s->events);
    jd_deploys_free(s->deploys);
    s->deploys = deploys;
    s->nodes = nodes;
    s->cap_nodes = n_nodes > 0 ? n_nodes : 1;
    s->n_nodes = n_nodes;
    s->events = events;
    s->cap_events = n_events > 0 ? n_events : 1;
    s->head = 0;
    s->count = n_events;
    s->max_events = (unsigned)max_events;
    s->max_age_s = (unsigned)max_age;
    s->leader_id = leader;
    pthread_mutex_unlock(&s->mutex);
    nodes = NULL;
    events = NULL;
    deploys = NULL;
    rv = 0;
out:
    jd_deploys_free(deploys);
    msgpack_unpacked_destroy(&u);
    free(nodes);
    free(events);
    free(buf);
    return rv;
}

/* ---- life and queries ---- */

struct jd_state *jd_state_new(void)
{
    struct jd_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    if ((s->deploys = jd_deploys_new()) == NULL) {
        free(s);
        return NULL;
    }
    /* Until a leader's observation says otherwise: the same on every
     * node, whatever its configuration. */
    s->max_events = JD_AUDIT_DEFAULT_EVENTS;
    s->max_age_s = JD_AUDIT_DEFAULT_AGE_S;
    pthread_mutex_init(&s->mutex, NULL);
    s->fsm.data = s;
    s->fsm.apply = fsm_apply;
    s->fsm.snapshot = fsm_snapshot;
    s->fsm.restore = fsm_restore;
    return s;
}

void jd_state_free(struct jd_state *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_destroy(&s->mutex);
    free(s->nodes);
    free(s->events);
    jd_deploys_free(s->deploys);
    free(s);
}

const struct jr_fsm *jd_state_fsm(struct jd_state *s)
{
    return &s->fsm;
}

void jd_state_set_hook(struct jd_state *s,
                       void (*hook)(void *data,
                                    uint64_t index,
                                    const char *type),
                       void *data)
{
    pthread_mutex_lock(&s->mutex);
    s->hook = hook;
    s->hook_data = data;
    pthread_mutex_unlock(&s->mutex);
}

void jd_state_pack_nodes(struct jd_state *s, msgpack_packer *pk)
{
    unsigned i;
    pthread_mutex_lock(&s->mutex);
    msgpack_pack_array(pk, s->n_nodes);
    for (i = 0; i < s->n_nodes; i++) {
        pack_node(pk, &s->nodes[i]);
    }
    pthread_mutex_unlock(&s->mutex);
}

void jd_state_pack_audit(struct jd_state *s,
                         msgpack_packer *pk,
                         const char *type,
                         int64_t since_ms)
{
    unsigned i, n = 0;
    bool any_type = type == NULL || type[0] == '\0';
    pthread_mutex_lock(&s->mutex);
    for (i = 0; i < s->count; i++) {
        const struct audit_event *e = event_at(s, i);
        n += (any_type || strcmp(e->type, type) == 0) && e->time_ms >= since_ms;
    }
    msgpack_pack_array(pk, n);
    for (i = 0; i < s->count; i++) {
        const struct audit_event *e = event_at(s, i);
        if ((any_type || strcmp(e->type, type) == 0) &&
            e->time_ms >= since_ms) {
            pack_event(pk, e);
        }
    }
    pthread_mutex_unlock(&s->mutex);
}

int jd_state_node_status(struct jd_state *s,
                         uint64_t id,
                         int64_t *last_seen_ms,
                         char *address,
                         char *role)
{
    struct node_rec *r;
    int status = JD_NODE_STATUS_UNKNOWN;
    pthread_mutex_lock(&s->mutex);
    r = node_by_id(s, id);
    *last_seen_ms = 0;
    address[0] = '\0';
    role[0] = '\0';
    if (r != NULL) {
        status = r->status;
        *last_seen_ms = r->last_seen_ms;
        snprintf(address, JD_ADDR_MAX, "%s", r->address);
        snprintf(role, 16, "%s", r->role);
    }
    pthread_mutex_unlock(&s->mutex);
    return status;
}

bool jd_state_node_id(struct jd_state *s, const char *name, uint64_t *id)
{
    struct node_rec *r;
    pthread_mutex_lock(&s->mutex);
    r = node_by_name(s, name);
    if (r != NULL) {
        *id = r->id;
    }
    pthread_mutex_unlock(&s->mutex);
    return r != NULL;
}

uint64_t jd_state_leader(struct jd_state *s)
{
    uint64_t id;
    pthread_mutex_lock(&s->mutex);
    id = s->leader_id;
    pthread_mutex_unlock(&s->mutex);
    return id;
}

bool jd_state_node_host(struct jd_state *s,
                        const char *name,
                        char *isolation,
                        char *detail,
                        char *runtime)
{
    struct node_rec *r;
    pthread_mutex_lock(&s->mutex);
    r = node_by_name(s, name);
    if (r != NULL) {
        memcpy(isolation, r->isolation, sizeof r->isolation);
        memcpy(detail, r->isolation_detail, sizeof r->isolation_detail);
        memcpy(runtime, r->runtime, sizeof r->runtime);
    }
    pthread_mutex_unlock(&s->mutex);
    return r != NULL;
}

bool jd_state_isolation_unavailable(struct jd_state *s, uint64_t id)
{
    struct node_rec *r;
    bool unavailable;
    pthread_mutex_lock(&s->mutex);
    r = node_by_id(s, id);
    unavailable = r != NULL && strcmp(r->isolation, "unavailable") == 0;
    pthread_mutex_unlock(&s->mutex);
    return unavailable;
}

uint64_t jd_state_deploy_generation(struct jd_state *s)
{
    uint64_t g;
    pthread_mutex_lock(&s->mutex);
    g = jd_deploys_generation(s->deploys);
    pthread_mutex_unlock(&s->mutex);
    return g;
}

bool jd_state_pack_deployments(struct jd_state *s,
                               msgpack_packer *pk,
                               const char *dep,
                               const char *svc)
{
    bool found;
    pthread_mutex_lock(&s->mutex);
    found = jd_deploys_pack_status(s->deploys, pk, dep, svc);
    pthread_mutex_unlock(&s->mutex);
    return found;
}

int jd_state_host_replicas(struct jd_state *s,
                           const char *host,
                           struct jd_host_replica **out,
                           unsigned *n)
{
    int rv;
    pthread_mutex_lock(&s->mutex);
    rv = jd_deploys_host_replicas(s->deploys, host, out, n);
    pthread_mutex_unlock(&s->mutex);
    return rv;
}

int jd_state_sched_view(struct jd_state *s, struct jd_sched_view *v)
{
    int rv;
    pthread_mutex_lock(&s->mutex);
    rv = jd_deploys_sched_view(s->deploys, v);
    pthread_mutex_unlock(&s->mutex);
    return rv;
}

void jd_sched_hosts_free(struct jd_sched_hosts *h)
{
    free(h->hosts);
    free(h->ptrs);
    free(h->names);
    free(h->ids);
    memset(h, 0, sizeof *h);
}

/* A node's standing for placement, most limiting first. */
static int host_state(const struct node_rec *r)
{
    if (strcmp(r->role, "none") == 0) {
        return JACOD_HOST_NOT_MEMBER;
    }
    if (r->status != JD_NODE_STATUS_READY &&
        r->status != JD_NODE_STATUS_ISOLATION_UNAVAILABLE) {
        return JACOD_HOST_UNREACHABLE;
    }
    if (r->runtime[0] == '\0') {
        return JACOD_HOST_NO_RUNTIME;
    }
    if (r->status == JD_NODE_STATUS_ISOLATION_UNAVAILABLE ||
        strcmp(r->isolation, "unavailable") == 0) {
        return JACOD_HOST_ISOLATION_UNAVAILABLE;
    }
    return JACOD_HOST_READY;
}

int jd_state_sched_hosts(struct jd_state *s, struct jd_sched_hosts *out)
{
    unsigned i, n;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mutex);
    n = s->n_nodes;
    out->hosts = calloc(n > 0 ? n : 1, sizeof *out->hosts);
    out->ptrs = calloc(n > 0 ? n : 1, sizeof *out->ptrs);
    out->names = calloc(n > 0 ? n : 1, sizeof *out->names);
    out->ids = calloc(n > 0 ? n : 1, sizeof *out->ids);
    if (out->hosts == NULL || out->ptrs == NULL || out->names == NULL ||
        out->ids == NULL) {
        pthread_mutex_unlock(&s->mutex);
        jd_sched_hosts_free(out);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const struct node_rec *r = &s->nodes[i];
        memcpy(out->names[i], r->name, JD_NAME_MAX);
        out->ids[i] = r->id;
        out->hosts[i].name = out->names[i];
        out->hosts[i].state = host_state(r);
        out->ptrs[i] = &out->hosts[i];
    }
    out->n = n;
    pthread_mutex_unlock(&s->mutex);
    return 0;
}
