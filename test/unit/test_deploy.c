/* test_deploy.c: the deployments part of jacod's state (daemon/deploy.c):
 * revisions, placements and reports as the commands apply them, what is
 * ignored as stale, atomic refusals, the snapshot section; and the default
 * scheduler plugin's placement (daemon/plugins/scheduler_spread.c) through
 * the leader's pass (daemon/scheduler.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/deploy.h"
#include "../../daemon/manifest.h"
#include "../../daemon/mp.h"
#include "../../daemon/scheduler.h"
#include "suites.h"

static struct {
    struct jd_deploys *d;
    char events[64][600];
    unsigned n_events;
} T;

static void record(void *ctx,
                   const char *type,
                   const char *node,
                   const char *details)
{
    (void)ctx;
    if (T.n_events < 64) {
        snprintf(T.events[T.n_events++], sizeof T.events[0], "%s %s %s", type,
                 node, details);
    }
}

static bool has_event(const char *want)
{
    unsigned i;
    for (i = 0; i < T.n_events; i++) {
        if (strstr(T.events[i], want) != NULL) {
            return true;
        }
    }
    return false;
}

/* Apply a command buffer (freed) as the FSM would; returns the result. */
static const char *run(char *buf, size_t len)
{
    static char result[600];
    msgpack_unpacked u;
    char type[32];
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, buf, len, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(jd_mp_copy_str(jd_mp_get(&u.data, "t"), type, sizeof type),
                     0);
    ck_assert(jd_deploys_apply(T.d, type, &u.data, 1000, record, NULL, result,
                               sizeof result));
    msgpack_unpacked_destroy(&u);
    free(buf);
    return result;
}

static const char *apply_yaml(const char *yaml)
{
    struct jd_deployment **deps;
    char err[512], *buf;
    unsigned n;
    size_t len;
    const char *res;
    ck_assert_msg(jd_manifest_parse("t.yaml", yaml, strlen(yaml), &deps, &n,
                                    err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(jd_cmd_deploy_apply(deps, n, "test", 1000, &buf, &len), 0);
    res = run(buf, len);
    jd_manifest_free(deps, n);
    return res;
}

static const char *place(const char *dep,
                         const char *svc,
                         unsigned ord,
                         uint64_t rev,
                         const char *host,
                         const char *reason)
{
    struct jd_placement p;
    char *buf;
    size_t len;
    memset(&p, 0, sizeof p);
    snprintf(p.deployment, sizeof p.deployment, "%s", dep);
    snprintf(p.service, sizeof p.service, "%s", svc);
    p.ordinal = ord;
    p.revision = rev;
    snprintf(p.host, sizeof p.host, "%s", host);
    snprintf(p.reason, sizeof p.reason, "%s", reason);
    ck_assert_int_eq(jd_cmd_sched_place(&p, 1, "test", 1000, &buf, &len), 0);
    return run(buf, len);
}

static const char *report(const char *host,
                          const char *dep,
                          const char *svc,
                          unsigned ord,
                          uint64_t rev,
                          int state,
                          unsigned attempts,
                          const char *failure)
{
    struct jd_replica_report r;
    char *buf;
    size_t len;
    memset(&r, 0, sizeof r);
    snprintf(r.deployment, sizeof r.deployment, "%s", dep);
    snprintf(r.service, sizeof r.service, "%s", svc);
    r.ordinal = ord;
    r.revision = rev;
    r.state = state;
    r.attempts = attempts;
    snprintf(r.failure, sizeof r.failure, "%s", failure);
    r.pid = 4242;
    ck_assert_int_eq(
        jd_cmd_replica_report(host, &r, 1, "test", 1000, &buf, &len), 0);
    return run(buf, len);
}

/* The record of one replica, by its host's copy. */
static struct jd_replica replica(const char *dep, const char *svc, unsigned ord)
{
    struct jd_sched_view v;
    struct jd_replica r;
    size_t i;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(jd_deploys_sched_view(T.d, &v), 0);
    for (i = 0; i < v.n; i++) {
        if (strcmp(v.slots[i].deployment, dep) == 0 &&
            strcmp(v.slots[i].service, svc) == 0 &&
            v.slots[i].r.ordinal == ord) {
            snprintf(r.host, sizeof r.host, "%s", v.slots[i].host);
            snprintf(r.reason, sizeof r.reason, "%s", v.slots[i].reason);
            r.revision = v.slots[i].revision;
            r.state = v.slots[i].r.state;
        }
    }
    jd_sched_view_free(&v);
    return r;
}

static unsigned attempts_on(const char *host, const char *dep)
{
    struct jd_host_replica *hr;
    unsigned n, i, a = 0;
    ck_assert_int_eq(jd_deploys_host_replicas(T.d, host, &hr, &n), 0);
    for (i = 0; i < n; i++) {
        if (strcmp(hr[i].deployment, dep) == 0) {
            a += hr[i].rec.attempts;
        }
    }
    jd_host_replicas_free(hr, n);
    return a;
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    T.d = jd_deploys_new();
    ck_assert_ptr_nonnull(T.d);
}

static void teardown(void)
{
    jd_deploys_free(T.d);
}

static const char web[] =
    "deployments:\n  web:\n    services:\n      api:\n        replicas: 2\n"
    "        command: [/bin/sleep, \"100\"]\n";

START_TEST(apply_gives_revisions_and_resets_attempts)
{
    struct jd_replica r;
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
    ck_assert(
        has_event("deployment.applied  web revision 1: 1 service(s), 2 "
                  "replica(s)"));
    r = replica("web", "api", 1);
    ck_assert_str_eq(r.host, "");
    ck_assert_int_eq(r.state, JACOD_REPLICA_PENDING);
    ck_assert_str_eq(place("web", "api", 0, 1, "n1", ""), "");
    ck_assert_str_eq(place("web", "api", 1, 1, "n2", ""), "");
    ck_assert(has_event("replica.placed n2 web/api/1 on n2"));
    ck_assert_str_eq(report("n1", "web", "api", 0, 1, JACOD_REPLICA_FAILED, 3,
                            JD_FAILURE_RESTART_EXHAUSTED),
                     "");
    ck_assert(has_event("replica.failed n1 web/api/0: restart_exhausted"));
    ck_assert_uint_eq(attempts_on("n1", "web"), 3);
    /* A new revision keeps the hosts, resets states and attempts. */
    ck_assert_str_eq(apply_yaml(web), "ok: web=2");
    r = replica("web", "api", 0);
    ck_assert_str_eq(r.host, "n1");
    ck_assert_uint_eq(r.revision, 2);
    ck_assert_int_eq(r.state, JACOD_REPLICA_PENDING);
    ck_assert_uint_eq(attempts_on("n1", "web"), 0);
}
END_TEST

START_TEST(stale_placements_and_reports_are_ignored)
{
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
    ck_assert_str_eq(place("web", "api", 0, 1, "n1", ""), "");
    ck_assert_str_eq(apply_yaml(web), "ok: web=2");
    /* Decided for revision 1: ignored. */
    ck_assert_str_eq(place("web", "api", 0, 1, "n3", ""), "");
    ck_assert_str_eq(replica("web", "api", 0).host, "n1");
    ck_assert_str_eq(
        report("n1", "web", "api", 0, 1, JACOD_REPLICA_RUNNING, 1, ""), "");
    ck_assert_int_eq(replica("web", "api", 0).state, JACOD_REPLICA_PENDING);
    /* From a host it is not placed on: ignored. */
    ck_assert_str_eq(
        report("n2", "web", "api", 0, 2, JACOD_REPLICA_RUNNING, 1, ""), "");
    ck_assert_int_eq(replica("web", "api", 0).state, JACOD_REPLICA_PENDING);
    /* Its own host, its revision: taken. */
    ck_assert_str_eq(
        report("n1", "web", "api", 0, 2, JACOD_REPLICA_RUNNING, 1, ""), "");
    ck_assert_int_eq(replica("web", "api", 0).state, JACOD_REPLICA_RUNNING);
    /* No such ordinal or service: ignored, nothing breaks. */
    ck_assert_str_eq(place("web", "api", 9, 2, "n1", ""), "");
    ck_assert_str_eq(place("web", "nope", 0, 2, "n1", ""), "");
}
END_TEST

START_TEST(unplacing_records_the_reason)
{
    struct jd_replica r;
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
    ck_assert_str_eq(place("web", "api", 0, 1, "n3", ""), "");
    ck_assert_str_eq(
        report("n3", "web", "api", 0, 1, JACOD_REPLICA_RUNNING, 1, ""), "");
    ck_assert_str_eq(place("web", "api", 0, 1, "",
                           "cannot satisfy host placement: n3 unreachable"),
                     "");
    r = replica("web", "api", 0);
    ck_assert_str_eq(r.host, "");
    ck_assert_int_eq(r.state, JACOD_REPLICA_PENDING);
    ck_assert_str_eq(r.reason, "cannot satisfy host placement: n3 unreachable");
    ck_assert(
        has_event("replica.unplaced n3 web/api/0 off n3: cannot satisfy "
                  "host placement: n3 unreachable"));
}
END_TEST

START_TEST(bad_apply_changes_nothing)
{
    struct jd_deployment *d = jd_deployment_new(1);
    char *buf;
    size_t len;
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
    /* Two deployments, the second invalid: neither applies. */
    {
        struct jd_deployment **deps;
        struct jd_deployment *both[2];
        char err[256];
        unsigned n;
        ck_assert_int_eq(jd_manifest_parse("t.yaml", web, strlen(web), &deps,
                                           &n, err, sizeof err),
                         0);
        snprintf(d->name, sizeof d->name, "BAD");
        d->services[0].n_args = 1;
        d->services[0].args[0] = strdup("x");
        snprintf(d->services[0].name, sizeof d->services[0].name, "s");
        both[0] = deps[0];
        both[1] = d;
        ck_assert_int_eq(jd_cmd_deploy_apply(both, 2, "t", 1, &buf, &len), 0);
        ck_assert_str_eq(run(buf, len),
                         "invalid_argument: deployment 2: name \"BAD\": must "
                         "be 1 to 63 of a-z, 0-9 and '-', not starting with "
                         "'-'");
        ck_assert_uint_eq(replica("web", "api", 0).revision, 1);
        /* The same deployment twice. */
        both[1] = deps[0];
        ck_assert_int_eq(jd_cmd_deploy_apply(both, 2, "t", 1, &buf, &len), 0);
        ck_assert_str_eq(run(buf, len),
                         "invalid_argument: deployment web given twice");
        ck_assert_uint_eq(replica("web", "api", 0).revision, 1);
        jd_manifest_free(deps, n);
    }
    jd_deployment_free(d);
}
END_TEST

START_TEST(cluster_replica_limit_is_kept)
{
    char yaml[4096];
    unsigned i, used;
    used = (unsigned)snprintf(yaml, sizeof yaml, "deployments:\n");
    for (i = 0; i < 65; i++) {
        used += (unsigned)snprintf(yaml + used, sizeof yaml - used,
                                   "  d%u: {services: {s: {replicas: 64, "
                                   "command: x}}}\n",
                                   i);
    }
    ck_assert_str_eq(apply_yaml(yaml),
                     "invalid_argument: the cluster would run 4160 replicas, "
                     "at most 4096");
}
END_TEST

START_TEST(delete_forgets_and_unknown_is_not_found)
{
    char *buf;
    size_t len;
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
    ck_assert_int_eq(jd_cmd_deploy_delete("web", "t", 1, &buf, &len), 0);
    ck_assert_str_eq(run(buf, len), "");
    ck_assert(has_event("deployment.deleted  web revision 1: 2 replica(s)"));
    ck_assert_int_eq(jd_cmd_deploy_delete("web", "t", 1, &buf, &len), 0);
    ck_assert_str_eq(run(buf, len), "not_found: no deployment named \"web\"");
    /* Applied again after a delete: a new life, revision 1. */
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
}
END_TEST

START_TEST(snapshot_section_round_trips)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    struct jd_deploys *back;
    msgpack_sbuffer sb2;
    ck_assert_str_eq(apply_yaml(web), "ok: web=1");
    ck_assert_str_eq(place("web", "api", 0, 1, "n1", ""), "");
    ck_assert_str_eq(report("n1", "web", "api", 0, 1, JACOD_REPLICA_FAILED, 3,
                            JD_FAILURE_EXEC_FAILED),
                     "");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    jd_deploys_pack(T.d, &pk);
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(jd_deploys_unpack(&u.data, &back), 0);
    /* Packed again, byte for byte the same. */
    msgpack_sbuffer_init(&sb2);
    msgpack_packer_init(&pk, &sb2, msgpack_sbuffer_write);
    jd_deploys_pack(back, &pk);
    ck_assert_uint_eq(sb.size, sb2.size);
    ck_assert_int_eq(memcmp(sb.data, sb2.data, sb.size), 0);
    jd_deploys_free(back);
    msgpack_sbuffer_destroy(&sb2);
    /* Damaged: a replica count that does not match the spec. */
    u.data.via.array.ptr[0].via.map.ptr[1].val.via.array.ptr[0].via.array.size =
        1;
    ck_assert_int_eq(jd_deploys_unpack(&u.data, &back), -1);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- the spread scheduler ---- */

const struct jacod_plugin *jacod_plugin_entry(const struct jacod_host *host);

struct hosts {
    struct jacod_sched_host h[8];
    struct jacod_sched_host *p[8];
    struct jd_sched_hosts view;
};

static void hosts_init(struct hosts *h,
                       unsigned n,
                       const char *const *names,
                       const int *states)
{
    unsigned i;
    memset(h, 0, sizeof *h);
    for (i = 0; i < n; i++) {
        h->h[i].name = names[i];
        h->h[i].state = states[i];
        h->p[i] = &h->h[i];
    }
    h->view.hosts = h->h;
    h->view.ptrs = h->p;
    h->view.n = n;
}

/* One pass of the spread plugin; its placements applied to the state. */
static int pass(struct hosts *h, int64_t reschedule_after_ms)
{
    const struct jacod_plugin *p = jacod_plugin_entry(NULL);
    const struct jacod_sched_ops *ops = p->ops;
    struct jd_placement out[64];
    struct jd_sched_view v;
    void *state;
    char *buf;
    size_t len;
    int n;
    ck_assert_int_eq(p->start(NULL, NULL, &state), 0);
    ck_assert_int_eq(jd_deploys_sched_view(T.d, &v), 0);
    n = jd_scheduler_pass(ops, state, &h->view, &v, reschedule_after_ms, out,
                          64);
    ck_assert_int_ge(n, 0);
    if (n > 0) {
        ck_assert_int_eq(
            jd_cmd_sched_place(out, (unsigned)n, "t", 1, &buf, &len), 0);
        ck_assert_str_eq(run(buf, len), "");
    }
    jd_sched_view_free(&v);
    p->stop(state);
    return n;
}

START_TEST(spread_places_one_per_host_and_then_stays)
{
    static const char *const names[] = {"n1", "n2", "n3"};
    static const int ready[] = {JACOD_HOST_READY, JACOD_HOST_READY,
                                JACOD_HOST_READY};
    struct hosts h;
    ck_assert_str_eq(
        apply_yaml("deployments:\n  web:\n    services:\n      api:\n"
                   "        replicas: 3\n        command: x\n"),
        "ok: web=1");
    hosts_init(&h, 3, names, ready);
    ck_assert_int_eq(pass(&h, 60000), 3);
    ck_assert_str_eq(replica("web", "api", 0).host, "n1");
    ck_assert_str_eq(replica("web", "api", 1).host, "n2");
    ck_assert_str_eq(replica("web", "api", 2).host, "n3");
    /* Nothing to change the next time. */
    ck_assert_int_eq(pass(&h, 60000), 0);
}
END_TEST

START_TEST(spread_skips_hosts_without_isolation_or_runtime)
{
    static const char *const names[] = {"n1", "n2", "n3"};
    static const int states[] = {JACOD_HOST_ISOLATION_UNAVAILABLE,
                                 JACOD_HOST_READY, JACOD_HOST_NO_RUNTIME};
    struct hosts h;
    ck_assert_str_eq(
        apply_yaml("deployments:\n  web:\n    services:\n      api:\n"
                   "        replicas: 4\n        command: x\n"),
        "ok: web=1");
    hosts_init(&h, 3, names, states);
    ck_assert_int_eq(pass(&h, 60000), 4);
    ck_assert_str_eq(replica("web", "api", 0).host, "n2");
    ck_assert_str_eq(replica("web", "api", 3).host, "n2");
}
END_TEST

START_TEST(spread_pinned_replica_pending_with_reason)
{
    static const char *const names[] = {"n1", "n2", "n3"};
    int states[] = {JACOD_HOST_READY, JACOD_HOST_READY, JACOD_HOST_READY};
    struct hosts h;
    struct jd_replica r;
    ck_assert_str_eq(
        apply_yaml("deployments:\n  db:\n    services:\n      main:\n"
                   "        command: x\n        placement: {hosts: [n3]}\n"),
        "ok: db=1");
    hosts_init(&h, 3, names, states);
    ck_assert_int_eq(pass(&h, 60000), 1);
    ck_assert_str_eq(replica("db", "main", 0).host, "n3");
    /* n3 stops: pinned, so pending at once, never elsewhere. */
    h.h[2].state = JACOD_HOST_UNREACHABLE;
    h.h[2].unreachable_ms = 1000;
    ck_assert_int_eq(pass(&h, 60000), 1);
    r = replica("db", "main", 0);
    ck_assert_str_eq(r.host, "");
    ck_assert_str_eq(r.reason, "cannot satisfy host placement: n3 unreachable");
    ck_assert_int_eq(pass(&h, 60000), 0);
    /* Removed from the cluster (no record any more). */
    hosts_init(&h, 2, names, states);
    ck_assert_int_eq(pass(&h, 60000), 1);
    ck_assert_str_eq(replica("db", "main", 0).reason,
                     "cannot satisfy host placement: n3 removed");
    /* Back: placed there again. */
    hosts_init(&h, 3, names, states);
    ck_assert_int_eq(pass(&h, 60000), 1);
    ck_assert_str_eq(replica("db", "main", 0).host, "n3");
}
END_TEST

START_TEST(spread_moves_unpinned_after_the_grace_only)
{
    static const char *const names[] = {"n1", "n2"};
    int states[] = {JACOD_HOST_READY, JACOD_HOST_READY};
    struct hosts h;
    ck_assert_str_eq(
        apply_yaml("deployments:\n  web:\n    services:\n      api:\n"
                   "        replicas: 2\n        command: x\n"),
        "ok: web=1");
    hosts_init(&h, 2, names, states);
    ck_assert_int_eq(pass(&h, 5000), 2);
    ck_assert_str_eq(replica("web", "api", 1).host, "n2");
    h.h[1].state = JACOD_HOST_UNREACHABLE;
    h.h[1].unreachable_ms = 4000;
    ck_assert_int_eq(pass(&h, 5000), 0);
    ck_assert_str_eq(replica("web", "api", 1).host, "n2");
    h.h[1].unreachable_ms = 6000;
    ck_assert_int_eq(pass(&h, 5000), 1);
    ck_assert_str_eq(replica("web", "api", 1).host, "n1");
    /* A failed replica stays where it failed, even on a lost host. */
    ck_assert_str_eq(report("n1", "web", "api", 0, 1, JACOD_REPLICA_FAILED, 3,
                            JD_FAILURE_RESTART_EXHAUSTED),
                     "");
    h.h[0].state = JACOD_HOST_UNREACHABLE;
    h.h[0].unreachable_ms = 60000;
    h.h[1].state = JACOD_HOST_READY;
    ck_assert_int_eq(pass(&h, 5000), 1); /* only web/api/1 moves */
    ck_assert_str_eq(replica("web", "api", 0).host, "n1");
    ck_assert_str_eq(replica("web", "api", 1).host, "n2");
}
END_TEST

START_TEST(spread_no_ready_host_says_why)
{
    static const char *const names[] = {"n1"};
    static const int states[] = {JACOD_HOST_ISOLATION_UNAVAILABLE};
    struct hosts h;
    ck_assert_str_eq(
        apply_yaml("deployments:\n  web:\n    services:\n      api:\n"
                   "        command: x\n"),
        "ok: web=1");
    hosts_init(&h, 1, names, states);
    ck_assert_int_eq(pass(&h, 5000), 1);
    ck_assert_str_eq(replica("web", "api", 0).reason,
                     "no ready host: n1 isolation unavailable");
}
END_TEST

Suite *deploy_suite(void)
{
    Suite *s = suite_create("deploy");
    TCase *tc = tcase_create("state");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, apply_gives_revisions_and_resets_attempts);
    tcase_add_test(tc, stale_placements_and_reports_are_ignored);
    tcase_add_test(tc, unplacing_records_the_reason);
    tcase_add_test(tc, bad_apply_changes_nothing);
    tcase_add_test(tc, cluster_replica_limit_is_kept);
    tcase_add_test(tc, delete_forgets_and_unknown_is_not_found);
    tcase_add_test(tc, snapshot_section_round_trips);
    suite_add_tcase(s, tc);
    tc = tcase_create("spread");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, spread_places_one_per_host_and_then_stays);
    tcase_add_test(tc, spread_skips_hosts_without_isolation_or_runtime);
    tcase_add_test(tc, spread_pinned_replica_pending_with_reason);
    tcase_add_test(tc, spread_moves_unpinned_after_the_grace_only);
    tcase_add_test(tc, spread_no_ready_host_says_why);
    suite_add_tcase(s, tc);
    return s;
}
