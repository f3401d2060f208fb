/* deploy.c: see deploy.h.
 *
 * Every command is deterministic in what it holds: the leader's scheduler
 * and each host's supervisor decide, the state only records. A placement
 * or a report names the revision it was decided for, so that one decided
 * before a new apply is ignored. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy.h"
#include "mp.h"

struct dep_rec {
    struct jd_deployment *spec;
    struct jd_replica *replicas[JD_MAX_SERVICES]; /* spec's count each */
};

struct jd_deploys {
    struct dep_rec *recs;
    unsigned n;
    unsigned cap;
    uint64_t generation;
};

static const char *const state_names[] = {
    "unknown", "pending", "starting", "running", "failed", "stopped",
};

const char *jd_replica_state_name(int state)
{
    return state >= JACOD_REPLICA_PENDING && state <= JACOD_REPLICA_STOPPED
               ? state_names[state]
               : state_names[0];
}

int jd_replica_state_of_name(const char *name)
{
    int i;
    for (i = JACOD_REPLICA_PENDING; i <= JACOD_REPLICA_STOPPED; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            return i;
        }
    }
    return 0;
}

struct jd_deploys *jd_deploys_new(void)
{
    return calloc(1, sizeof(struct jd_deploys));
}

static void rec_clear(struct dep_rec *r)
{
    unsigned i;
    for (i = 0; r->spec != NULL && i < r->spec->n_services; i++) {
        free(r->replicas[i]);
    }
    jd_deployment_free(r->spec);
    memset(r, 0, sizeof *r);
}

void jd_deploys_free(struct jd_deploys *d)
{
    unsigned i;
    if (d == NULL) {
        return;
    }
    for (i = 0; i < d->n; i++) {
        rec_clear(&d->recs[i]);
    }
    free(d->recs);
    free(d);
}

uint64_t jd_deploys_generation(const struct jd_deploys *d)
{
    return d->generation;
}

static struct dep_rec *rec_by_name(const struct jd_deploys *d, const char *name)
{
    unsigned i;
    for (i = 0; i < d->n; i++) {
        if (strcmp(d->recs[i].spec->name, name) == 0) {
            return &d->recs[i];
        }
    }
    return NULL;
}

static int service_index(const struct jd_deployment *spec, const char *name)
{
    unsigned i;
    for (i = 0; i < spec->n_services; i++) {
        if (strcmp(spec->services[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static unsigned replica_count(const struct jd_deployment *spec)
{
    unsigned i, n = 0;
    for (i = 0; i < spec->n_services; i++) {
        n += spec->services[i].replicas;
    }
    return n;
}

/* ---- commands ---- */

static void cmd_begin(msgpack_sbuffer *sb,
                      msgpack_packer *pk,
                      const char *type,
                      const char *who,
                      int64_t now_ms,
                      unsigned extra)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, 3 + extra);
    jd_mp_kv_str(pk, "t", type);
    jd_mp_kv_str(pk, "who", who);
    jd_mp_key(pk, "now");
    msgpack_pack_int64(pk, now_ms);
}

static int cmd_end(msgpack_sbuffer *sb, char **buf, size_t *len)
{
    *buf = sb->data;
    *len = sb->size;
    return sb->data != NULL ? 0 : -1;
}

int jd_cmd_deploy_apply(struct jd_deployment *const *deps,
                        unsigned n,
                        const char *who,
                        int64_t now_ms,
                        char **buf,
                        size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned i;
    cmd_begin(&sb, &pk, "deploy.apply", who, now_ms, 1);
    jd_mp_key(&pk, "deployments");
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++) {
        jd_deployment_pack(&pk, deps[i]);
    }
    return cmd_end(&sb, buf, len);
}

int jd_cmd_deploy_delete(const char *name,
                         const char *who,
                         int64_t now_ms,
                         char **buf,
                         size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    cmd_begin(&sb, &pk, "deploy.delete", who, now_ms, 1);
    jd_mp_kv_str(&pk, "name", name);
    return cmd_end(&sb, buf, len);
}

static void pack_ref(msgpack_packer *pk,
                     const char *dep,
                     const char *svc,
                     unsigned ordinal,
                     uint64_t revision,
                     unsigned extra)
{
    msgpack_pack_map(pk, 4 + extra);
    jd_mp_kv_str(pk, "dep", dep);
    jd_mp_kv_str(pk, "svc", svc);
    jd_mp_key(pk, "ord");
    msgpack_pack_unsigned_int(pk, ordinal);
    jd_mp_key(pk, "rev");
    msgpack_pack_uint64(pk, revision);
}

int jd_cmd_sched_place(const struct jd_placement *p,
                       unsigned n,
                       const char *who,
                       int64_t now_ms,
                       char **buf,
                       size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned i;
    cmd_begin(&sb, &pk, "sched.place", who, now_ms, 1);
    jd_mp_key(&pk, "placements");
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++) {
        pack_ref(&pk, p[i].deployment, p[i].service, p[i].ordinal,
                 p[i].revision, 2);
        jd_mp_kv_str(&pk, "host", p[i].host);
        jd_mp_kv_str(&pk, "reason", p[i].reason);
    }
    return cmd_end(&sb, buf, len);
}

int jd_cmd_replica_report(const char *host,
                          const struct jd_replica_report *r,
                          unsigned n,
                          const char *who,
                          int64_t now_ms,
                          char **buf,
                          size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned i;
    cmd_begin(&sb, &pk, "replica.report", who, now_ms, 2);
    jd_mp_kv_str(&pk, "host", host);
    jd_mp_key(&pk, "reports");
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++) {
        pack_ref(&pk, r[i].deployment, r[i].service, r[i].ordinal,
                 r[i].revision, 5);
        jd_mp_kv_str(&pk, "state", jd_replica_state_name(r[i].state));
        jd_mp_key(&pk, "attempts");
        msgpack_pack_unsigned_int(&pk, r[i].attempts);
        jd_mp_kv_str(&pk, "failure", r[i].failure);
        jd_mp_kv_str(&pk, "reason", r[i].reason);
        jd_mp_key(&pk, "pid");
        msgpack_pack_int64(&pk, r[i].pid);
    }
    return cmd_end(&sb, buf, len);
}

/* ---- apply ---- */

struct apply_ctx {
    jd_audit_fn audit;
    void *audit_ctx;
    char *result;
    size_t size;
    int64_t now;
};

static bool set_result(struct apply_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool set_result(struct apply_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(c->result, c->size, fmt, ap);
    va_end(ap);
    return true;
}

static void audit(struct apply_ctx *c,
                  const char *type,
                  const char *node,
                  const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

static void audit(struct apply_ctx *c,
                  const char *type,
                  const char *node,
                  const char *fmt,
                  ...)
{
    char details[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(details, sizeof details, fmt, ap);
    va_end(ap);
    c->audit(c->audit_ctx, type, node, details);
}

static unsigned total_replicas(const struct jd_deploys *d)
{
    unsigned i, n = 0;
    for (i = 0; i < d->n; i++) {
        n += replica_count(d->recs[i].spec);
    }
    return n;
}

/* The replicas of a new revision: those of a service kept stay where they
 * were placed (their host restarts them with the new revision); the rest
 * are placed by the scheduler. */
static int fill_replicas(struct dep_rec *fresh,
                         const struct dep_rec *old,
                         int64_t now)
{
    unsigned i, k;
    for (i = 0; i < fresh->spec->n_services; i++) {
        const struct jd_service *s = &fresh->spec->services[i];
        int oi = old != NULL ? service_index(old->spec, s->name) : -1;
        unsigned old_n = oi >= 0 ? old->spec->services[oi].replicas : 0;
        fresh->replicas[i] =
            calloc(s->replicas > 0 ? s->replicas : 1, sizeof **fresh->replicas);
        if (fresh->replicas[i] == NULL) {
            return -1;
        }
        for (k = 0; k < s->replicas; k++) {
            struct jd_replica *r = &fresh->replicas[i][k];
            if (k < old_n) {
                memcpy(r->host, old->replicas[oi][k].host, sizeof r->host);
            }
            r->revision = fresh->spec->revision;
            r->state = JACOD_REPLICA_PENDING;
            r->since_ms = now;
        }
    }
    return 0;
}

static bool apply_deploy(struct jd_deploys *d,
                         const msgpack_object *cmd,
                         struct apply_ctx *c)
{
    const msgpack_object *a = jd_mp_get(cmd, "deployments");
    struct dep_rec fresh[JD_MAX_DEPLOYMENTS];
    char err[512], done[512] = "";
    unsigned i, k, n, added = 0, total, decoded = 0;
    if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY ||
        a->via.array.size == 0 || a->via.array.size > JD_MAX_DEPLOYMENTS) {
        return set_result(c, "invalid_argument: malformed deploy command");
    }
    n = a->via.array.size;
    memset(fresh, 0, n * sizeof fresh[0]);
    /* Decode and check everything before changing anything. */
    for (i = 0; i < n; i++) {
        if (jd_deployment_unpack(&a->via.array.ptr[i], &fresh[i].spec, err,
                                 sizeof err) != 0) {
            set_result(c, "invalid_argument: deployment %u: %s", i + 1, err);
            goto fail;
        }
        decoded++;
        for (k = 0; k < i; k++) {
            if (strcmp(fresh[k].spec->name, fresh[i].spec->name) == 0) {
                set_result(c, "invalid_argument: deployment %s given twice",
                           fresh[i].spec->name);
                goto fail;
            }
        }
    }
    total = total_replicas(d);
    for (i = 0; i < n; i++) {
        struct dep_rec *old = rec_by_name(d, fresh[i].spec->name);
        added += old == NULL;
        total += replica_count(fresh[i].spec) -
                 (old != NULL ? replica_count(old->spec) : 0);
    }
    if (d->n + added > JD_MAX_DEPLOYMENTS) {
        set_result(c,
                   "invalid_argument: the cluster holds at most %d "
                   "deployments",
                   JD_MAX_DEPLOYMENTS);
        goto fail;
    }
    if (total > JD_MAX_REPLICAS_TOTAL) {
        set_result(c,
                   "invalid_argument: the cluster would run %u replicas, "
                   "at most %d",
                   total, JD_MAX_REPLICAS_TOTAL);
        goto fail;
    }
    if (d->n + added > d->cap) {
        unsigned cap = d->n + added + 8;
        struct dep_rec *recs = realloc(d->recs, cap * sizeof *recs);
        if (recs == NULL) {
            set_result(c, "internal: out of memory");
            goto fail;
        }
        d->recs = recs;
        d->cap = cap;
    }
    for (i = 0; i < n; i++) {
        struct dep_rec *old = rec_by_name(d, fresh[i].spec->name);
        fresh[i].spec->revision = old != NULL ? old->spec->revision + 1 : 1;
        if (fill_replicas(&fresh[i], old, c->now) != 0) {
            set_result(c, "internal: out of memory");
            goto fail;
        }
    }
    /* Nothing can fail from here on. */
    for (i = 0; i < n; i++) {
        struct dep_rec *old = rec_by_name(d, fresh[i].spec->name);
        size_t used = strlen(done);
        if (old != NULL) {
            rec_clear(old);
            *old = fresh[i];
        } else {
            d->recs[d->n++] = fresh[i];
        }
        audit(c, "deployment.applied", "",
              "%s revision %llu: %u service(s), %u replica(s)",
              fresh[i].spec->name, (unsigned long long)fresh[i].spec->revision,
              fresh[i].spec->n_services, replica_count(fresh[i].spec));
        (void)snprintf(done + used, sizeof done - used, "%s%s=%llu",
                       used > 0 ? " " : "", fresh[i].spec->name,
                       (unsigned long long)fresh[i].spec->revision);
    }
    d->generation++;
    return set_result(c, "ok: %s", done);
fail:
    for (k = 0; k < decoded; k++) {
        rec_clear(&fresh[k]);
    }
    return true;
}

static bool apply_delete(struct jd_deploys *d,
                         const msgpack_object *cmd,
                         struct apply_ctx *c)
{
    char name[JD_DEP_NAME_MAX];
    struct dep_rec *r;
    if (jd_mp_copy_str(jd_mp_get(cmd, "name"), name, sizeof name) != 0) {
        return set_result(c, "invalid_argument: malformed delete command");
    }
    if ((r = rec_by_name(d, name)) == NULL) {
        return set_result(c, "not_found: no deployment named \"%s\"", name);
    }
    audit(c, "deployment.deleted", "", "%s revision %llu: %u replica(s)", name,
          (unsigned long long)r->spec->revision, replica_count(r->spec));
    rec_clear(r);
    d->n--;
    memmove(r, r + 1, (size_t)(d->recs + d->n - r) * sizeof *r);
    d->generation++;
    return set_result(c, "%s", "");
}

/* The replica a placement or report names, at its revision; NULL if the
 * deployment moved on or is gone. */
static struct jd_replica *find_replica(struct jd_deploys *d,
                                       const msgpack_object *o,
                                       char *label,
                                       size_t label_size)
{
    char dep[JD_DEP_NAME_MAX], svc[JD_DEP_NAME_MAX];
    uint64_t ord, rev;
    struct dep_rec *r;
    int si;
    if (jd_mp_copy_str(jd_mp_get(o, "dep"), dep, sizeof dep) != 0 ||
        jd_mp_copy_str(jd_mp_get(o, "svc"), svc, sizeof svc) != 0 ||
        jd_mp_u64(jd_mp_get(o, "ord"), &ord) != 0 ||
        jd_mp_u64(jd_mp_get(o, "rev"), &rev) != 0) {
        return NULL;
    }
    if ((r = rec_by_name(d, dep)) == NULL || r->spec->revision != rev ||
        (si = service_index(r->spec, svc)) < 0 ||
        ord >= r->spec->services[si].replicas) {
        return NULL;
    }
    (void)snprintf(label, label_size, "%s/%s/%llu", dep, svc,
                   (unsigned long long)ord);
    return &r->replicas[si][ord];
}

static bool apply_place(struct jd_deploys *d,
                        const msgpack_object *cmd,
                        struct apply_ctx *c)
{
    const msgpack_object *a = jd_mp_get(cmd, "placements");
    uint32_t i;
    if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY) {
        return set_result(c, "invalid_argument: malformed place command");
    }
    for (i = 0; i < a->via.array.size; i++) {
        const msgpack_object *o = &a->via.array.ptr[i];
        char host[JD_DEP_NAME_MAX], reason[JD_REASON_MAX], label[200];
        struct jd_replica *r = find_replica(d, o, label, sizeof label);
        if (r == NULL ||
            jd_mp_copy_str(jd_mp_get(o, "host"), host, sizeof host) != 0 ||
            jd_mp_copy_str(jd_mp_get(o, "reason"), reason, sizeof reason) !=
                0 ||
            (host[0] != '\0' && jd_check_name(host) != NULL)) {
            continue; /* stale or malformed: every node skips it alike */
        }
        if (strcmp(host, r->host) != 0) {
            if (host[0] != '\0') {
                audit(c, "replica.placed", host, "%s on %s%s%s", label, host,
                      r->host[0] != '\0' ? ", was on " : "", r->host);
            } else {
                audit(c, "replica.unplaced", r->host, "%s off %s: %s", label,
                      r->host, reason);
            }
            memcpy(r->host, host, sizeof r->host);
            /* A failed replica stays failed where it goes: only a new
             * revision retries it. */
            if (r->state != JACOD_REPLICA_FAILED) {
                r->state = JACOD_REPLICA_PENDING;
            }
            r->pid = 0;
            r->since_ms = c->now;
        }
        if (r->state == JACOD_REPLICA_PENDING) {
            memcpy(r->reason, reason, sizeof r->reason);
        }
    }
    d->generation++;
    return set_result(c, "%s", "");
}

static bool apply_report(struct jd_deploys *d,
                         const msgpack_object *cmd,
                         struct apply_ctx *c)
{
    const msgpack_object *a = jd_mp_get(cmd, "reports");
    char host[JD_DEP_NAME_MAX];
    uint32_t i;
    if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY ||
        jd_mp_copy_str(jd_mp_get(cmd, "host"), host, sizeof host) != 0) {
        return set_result(c, "invalid_argument: malformed report command");
    }
    for (i = 0; i < a->via.array.size; i++) {
        const msgpack_object *o = &a->via.array.ptr[i];
        char state[16], failure[JD_FAILURE_MAX], reason[JD_REASON_MAX];
        char label[200];
        struct jd_replica *r = find_replica(d, o, label, sizeof label);
        uint64_t attempts;
        int64_t pid;
        int st;
        if (r == NULL || strcmp(r->host, host) != 0 ||
            jd_mp_copy_str(jd_mp_get(o, "state"), state, sizeof state) != 0 ||
            (st = jd_replica_state_of_name(state)) == 0 ||
            jd_mp_u64(jd_mp_get(o, "attempts"), &attempts) != 0 ||
            attempts > 1000000 ||
            jd_mp_copy_str(jd_mp_get(o, "failure"), failure, sizeof failure) !=
                0 ||
            jd_mp_copy_str(jd_mp_get(o, "reason"), reason, sizeof reason) !=
                0 ||
            jd_mp_i64(jd_mp_get(o, "pid"), &pid) != 0) {
            continue; /* moved away, a newer revision, or malformed */
        }
        if (st == JACOD_REPLICA_FAILED && r->state != JACOD_REPLICA_FAILED) {
            audit(c, "replica.failed", host, "%s: %s%s%s", label, failure,
                  reason[0] != '\0' ? ": " : "", reason);
        }
        if (st != r->state) {
            r->since_ms = c->now;
        }
        r->state = st;
        r->attempts = (unsigned)attempts;
        memcpy(r->failure, failure, sizeof r->failure);
        memcpy(r->reason, reason, sizeof r->reason);
        r->pid = pid;
    }
    d->generation++;
    return set_result(c, "%s", "");
}

bool jd_deploys_apply(struct jd_deploys *d,
                      const char *type,
                      const msgpack_object *cmd,
                      int64_t now_ms,
                      jd_audit_fn audit_fn,
                      void *audit_ctx,
                      char *result,
                      size_t size)
{
    struct apply_ctx c = {audit_fn, audit_ctx, result, size, now_ms};
    result[0] = '\0';
    if (strcmp(type, "deploy.apply") == 0) {
        return apply_deploy(d, cmd, &c);
    }
    if (strcmp(type, "deploy.delete") == 0) {
        return apply_delete(d, cmd, &c);
    }
    if (strcmp(type, "sched.place") == 0) {
        return apply_place(d, cmd, &c);
    }
    if (strcmp(type, "replica.report") == 0) {
        return apply_report(d, cmd, &c);
    }
    return false;
}

/* ---- snapshot ---- */

static void pack_replica(msgpack_packer *pk,
                         const struct jd_replica *r,
                         unsigned ordinal)
{
    msgpack_pack_map(pk, 9);
    jd_mp_key(pk, "ordinal");
    msgpack_pack_unsigned_int(pk, ordinal);
    jd_mp_kv_str(pk, "host", r->host);
    jd_mp_key(pk, "revision");
    msgpack_pack_uint64(pk, r->revision);
    jd_mp_kv_str(pk, "state", jd_replica_state_name(r->state));
    jd_mp_key(pk, "attempts");
    msgpack_pack_unsigned_int(pk, r->attempts);
    jd_mp_kv_str(pk, "failure", r->failure);
    jd_mp_kv_str(pk, "reason", r->reason);
    jd_mp_key(pk, "pid");
    msgpack_pack_int64(pk, r->pid);
    jd_mp_key(pk, "since_ms");
    msgpack_pack_int64(pk, r->since_ms);
}

void jd_deploys_pack(const struct jd_deploys *d, msgpack_packer *pk)
{
    unsigned i, s, k;
    msgpack_pack_array(pk, d->n);
    for (i = 0; i < d->n; i++) {
        const struct dep_rec *r = &d->recs[i];
        msgpack_pack_map(pk, 2);
        jd_mp_key(pk, "spec");
        jd_deployment_pack(pk, r->spec);
        jd_mp_key(pk, "replicas");
        msgpack_pack_array(pk, r->spec->n_services);
        for (s = 0; s < r->spec->n_services; s++) {
            msgpack_pack_array(pk, r->spec->services[s].replicas);
            for (k = 0; k < r->spec->services[s].replicas; k++) {
                pack_replica(pk, &r->replicas[s][k], k);
            }
        }
    }
}

static int unpack_replica(const msgpack_object *o, struct jd_replica *r)
{
    char state[16];
    uint64_t attempts;
    if (jd_mp_copy_str(jd_mp_get(o, "host"), r->host, sizeof r->host) != 0 ||
        jd_mp_u64(jd_mp_get(o, "revision"), &r->revision) != 0 ||
        jd_mp_copy_str(jd_mp_get(o, "state"), state, sizeof state) != 0 ||
        (r->state = jd_replica_state_of_name(state)) == 0 ||
        jd_mp_u64(jd_mp_get(o, "attempts"), &attempts) != 0 ||
        attempts > 1000000 ||
        jd_mp_copy_str(jd_mp_get(o, "failure"), r->failure,
                       sizeof r->failure) != 0 ||
        jd_mp_copy_str(jd_mp_get(o, "reason"), r->reason, sizeof r->reason) !=
            0 ||
        jd_mp_i64(jd_mp_get(o, "pid"), &r->pid) != 0 ||
        jd_mp_i64(jd_mp_get(o, "since_ms"), &r->since_ms) != 0) {
        return -1;
    }
    r->attempts = (unsigned)attempts;
    return 0;
}

static int unpack_rec(const msgpack_object *o, struct dep_rec *r)
{
    const msgpack_object *reps = jd_mp_get(o, "replicas");
    char err[256];
    unsigned s, k;
    if (jd_deployment_unpack(jd_mp_get(o, "spec"), &r->spec, err, sizeof err) !=
        0) {
        return -1;
    }
    if (reps == NULL || reps->type != MSGPACK_OBJECT_ARRAY ||
        reps->via.array.size != r->spec->n_services) {
        return -1;
    }
    for (s = 0; s < r->spec->n_services; s++) {
        const msgpack_object *a = &reps->via.array.ptr[s];
        unsigned count = r->spec->services[s].replicas;
        r->replicas[s] = calloc(count > 0 ? count : 1, sizeof **r->replicas);
        if (r->replicas[s] == NULL || a->type != MSGPACK_OBJECT_ARRAY ||
            a->via.array.size != count) {
            return -1;
        }
        for (k = 0; k < count; k++) {
            if (unpack_replica(&a->via.array.ptr[k], &r->replicas[s][k]) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

int jd_deploys_unpack(const msgpack_object *o, struct jd_deploys **out)
{
    struct jd_deploys *d;
    unsigned i, k, n;
    if (o->type != MSGPACK_OBJECT_ARRAY ||
        o->via.array.size > JD_MAX_DEPLOYMENTS) {
        return -1;
    }
    n = o->via.array.size;
    if ((d = jd_deploys_new()) == NULL ||
        (d->recs = calloc(n > 0 ? n : 1, sizeof *d->recs)) == NULL) {
        free(d);
        return -1;
    }
    d->cap = n > 0 ? n : 1;
    for (i = 0; i < n; i++) {
        struct dep_rec *r = &d->recs[i];
        d->n++;
        if (unpack_rec(&o->via.array.ptr[i], r) != 0) {
            goto fail;
        }
        for (k = 0; k < i; k++) {
            if (strcmp(d->recs[k].spec->name, r->spec->name) == 0) {
                goto fail;
            }
        }
    }
    if (total_replicas(d) > JD_MAX_REPLICAS_TOTAL) {
        goto fail;
    }
    *out = d;
    return 0;
fail:
    /* A record that failed half-way frees what it holds too. */
    for (i = 0; i < d->n; i++) {
        struct dep_rec *r = &d->recs[i];
        for (k = 0; r->spec != NULL && k < r->spec->n_services; k++) {
            free(r->replicas[k]);
        }
        jd_deployment_free(r->spec);
    }
    free(d->recs);
    free(d);
    return -1;
}

/* ---- queries ---- */

static void pack_service_status(msgpack_packer *pk,
                                const struct jd_service *s,
                                const struct jd_replica *reps)
{
    char port[16];
    unsigned i;
    msgpack_pack_map(pk, 5);
    jd_mp_kv_str(pk, "name", s->name);
    jd_mp_key(pk, "command");
    msgpack_pack_array(pk, s->n_args);
    for (i = 0; i < s->n_args; i++) {
        jd_mp_str(pk, s->args[i]);
    }
    jd_mp_key(pk, "ports");
    msgpack_pack_array(pk, s->n_ports);
    for (i = 0; i < s->n_ports; i++) {
        jd_format_port(&s->ports[i], port, sizeof port);
        jd_mp_str(pk, port);
    }
    jd_mp_key(pk, "hosts");
    msgpack_pack_array(pk, s->n_hosts);
    for (i = 0; i < s->n_hosts; i++) {
        jd_mp_str(pk, s->hosts[i]);
    }
    jd_mp_key(pk, "replicas");
    msgpack_pack_array(pk, s->replicas);
    for (i = 0; i < s->replicas; i++) {
        pack_replica(pk, &reps[i], i);
    }
}

bool jd_deploys_pack_status(const struct jd_deploys *d,
                            msgpack_packer *pk,
                            const char *dep,
                            const char *svc)
{
    unsigned i, s, n = 0;
    const struct dep_rec *only = NULL;
    if (dep != NULL) {
        if ((only = rec_by_name(d, dep)) == NULL ||
            (svc != NULL && service_index(only->spec, svc) < 0)) {
            return false;
        }
    }
    msgpack_pack_array(pk, only != NULL ? 1 : d->n);
    for (i = 0; i < d->n; i++) {
        const struct dep_rec *r = &d->recs[i];
        if (only != NULL && r != only) {
            continue;
        }
        msgpack_pack_map(pk, 3);
        jd_mp_kv_str(pk, "name", r->spec->name);
        jd_mp_key(pk, "revision");
        msgpack_pack_uint64(pk, r->spec->revision);
        jd_mp_key(pk, "services");
        n = 0;
        for (s = 0; s < r->spec->n_services; s++) {
            n += svc == NULL || strcmp(r->spec->services[s].name, svc) == 0;
        }
        msgpack_pack_array(pk, n);
        for (s = 0; s < r->spec->n_services; s++) {
            if (svc == NULL || strcmp(r->spec->services[s].name, svc) == 0) {
                pack_service_status(pk, &r->spec->services[s], r->replicas[s]);
            }
        }
    }
    return true;
}

void jd_host_replicas_free(struct jd_host_replica *r, unsigned n)
{
    unsigned i;
    for (i = 0; r != NULL && i < n; i++) {
        jd_deployment_free(r[i].dep);
    }
    free(r);
}

int jd_deploys_host_replicas(const struct jd_deploys *d,
                             const char *host,
                             struct jd_host_replica **out,
                             unsigned *n)
{
    struct jd_host_replica *a;
    unsigned i, s, k, count = 0;
    for (i = 0; i < d->n; i++) {
        for (s = 0; s < d->recs[i].spec->n_services; s++) {
            for (k = 0; k < d->recs[i].spec->services[s].replicas; k++) {
                count += strcmp(d->recs[i].replicas[s][k].host, host) == 0;
            }
        }
    }
    if ((a = calloc(count > 0 ? count : 1, sizeof *a)) == NULL) {
        return -1;
    }
    *n = 0;
    for (i = 0; i < d->n; i++) {
        const struct dep_rec *r = &d->recs[i];
        for (s = 0; s < r->spec->n_services; s++) {
            for (k = 0; k < r->spec->services[s].replicas; k++) {
                struct jd_host_replica *h = &a[*n];
                if (strcmp(r->replicas[s][k].host, host) != 0) {
                    continue;
                }
                memcpy(h->deployment, r->spec->name, sizeof h->deployment);
                h->ordinal = k;
                h->rec = r->replicas[s][k];
                if ((h->dep = jd_deployment_copy_service(r->spec, s)) == NULL) {
                    jd_host_replicas_free(a, *n);
                    return -1;
                }
                (*n)++;
            }
        }
    }
    *out = a;
    return 0;
}

void jd_sched_view_free(struct jd_sched_view *v)
{
    free(v->slots);
    free(v->ptrs);
    memset(v, 0, sizeof *v);
}

int jd_deploys_sched_view(const struct jd_deploys *d, struct jd_sched_view *v)
{
    unsigned i, s, k, h;
    size_t n = total_replicas(d), at = 0;
    memset(v, 0, sizeof *v);
    v->slots = calloc(n > 0 ? n : 1, sizeof *v->slots);
    v->ptrs = calloc(n > 0 ? n : 1, sizeof *v->ptrs);
    if (v->slots == NULL || v->ptrs == NULL) {
        jd_sched_view_free(v);
        return -1;
    }
    for (i = 0; i < d->n; i++) {
        const struct dep_rec *r = &d->recs[i];
        for (s = 0; s < r->spec->n_services; s++) {
            const struct jd_service *svc = &r->spec->services[s];
            for (k = 0; k < svc->replicas; k++) {
                struct jd_sched_slot *slot = &v->slots[at];
                memcpy(slot->deployment, r->spec->name,
                       sizeof slot->deployment);
                memcpy(slot->service, svc->name, sizeof slot->service);
                memcpy(slot->host, r->replicas[s][k].host, sizeof slot->host);
                for (h = 0; h < svc->n_hosts; h++) {
                    memcpy(slot->pin_names[h], svc->hosts[h],
                           sizeof slot->pin_names[h]);
                    slot->pins[h] = slot->pin_names[h];
                }
                slot->revision = r->spec->revision;
                slot->r.deployment = slot->deployment;
                slot->r.service = slot->service;
                slot->r.ordinal = k;
                slot->r.hosts = slot->pins;
                slot->r.n_hosts = svc->n_hosts;
                slot->r.host = slot->host;
                slot->r.state = r->replicas[s][k].state;
                memcpy(slot->r.place, slot->host, sizeof slot->r.place);
                memcpy(slot->reason, r->replicas[s][k].reason,
                       sizeof slot->reason);
                memcpy(slot->r.reason, slot->reason, sizeof slot->r.reason);
                v->ptrs[at] = &slot->r;
                at++;
            }
        }
    }
    v->n = at;
    return 0;
}
