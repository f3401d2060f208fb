/* test_admin.c: jr_node_remove and jr_node_transfer_leadership on real
 * nodes in this process, on 127.0.0.1: their refusals, and removals and
 * transfers asked for on the leader and on a follower of three voters. */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "jacoraft.h"
#include "suites.h"
#include "testutil.h"

#define WAIT_MS 10000 /* upper bound of any wait; a healthy run takes ms */
#define ELECTION_MS 200
#define MAX_NODES 3

/* ---- a state machine that counts commands ---- */

struct counter {
    uv_mutex_t mutex;
    uint64_t count;
};

static int counter_apply(void *data,
                         uint64_t index,
                         const void *buf,
                         size_t len,
                         void **result,
                         size_t *result_len)
{
    struct counter *c = data;
    (void)index;
    (void)buf;
    (void)len;
    (void)result;
    (void)result_len;
    uv_mutex_lock(&c->mutex);
    c->count++;
    uv_mutex_unlock(&c->mutex);
    return 0;
}

static int counter_snapshot(void *data, struct jr_snapshot_writer *w)
{
    struct counter *c = data;
    uint64_t count;
    uv_mutex_lock(&c->mutex);
    count = c->count;
    uv_mutex_unlock(&c->mutex);
    return jr_snapshot_write(w, &count, sizeof count);
}

static int counter_restore(void *data, struct jr_snapshot_reader *r)
{
    struct counter *c = data;
    uint64_t count;
    if (jr_snapshot_read(r, &count, sizeof count) != sizeof count) {
        return 1;
    }
    uv_mutex_lock(&c->mutex);
    c->count = count;
    uv_mutex_unlock(&c->mutex);
    return 0;
}

/* ---- fixture: up to three nodes, ids 1..n ---- */

struct member {
    char data_dir[96];
    char address[32];
    struct counter state;
    struct jr_fsm fsm;
    struct jr_config cfg;
    struct jr_node *node;
};

static struct {
    char dir[64];
    unsigned n;
    struct member m[MAX_NODES + 1]; /* by id; 0 unused */
} F;

static void discard_log(void *data, int level, const char *message)
{
    (void)data;
    (void)level;
    (void)message;
}

static void setup(void)
{
    /* A node writes to peers that close under it; like every embedder
     * (jacod, kvstore), the process takes EPIPE rather than the signal. */
    signal(SIGPIPE, SIG_IGN);
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/jr-admin-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(F.dir));
}

static void close_member(unsigned id)
{
    if (F.m[id].node != NULL) {
        jr_node_close(F.m[id].node);
        F.m[id].node = NULL;
    }
}

static void teardown(void)
{
    unsigned i;
    for (i = 1; i <= F.n; i++) {
        close_member(i);
        uv_mutex_destroy(&F.m[i].state.mutex);
    }
    if (F.dir[0] != '\0') {
        tu_rm_rf(F.dir);
    }
}

/* Open, bootstrap with every member and start n nodes. */
static void start_cluster(unsigned n)
{
    struct jr_member members[MAX_NODES];
    struct jr_error err;
    unsigned i;
    int rv;
    F.n = n;
    for (i = 1; i <= n; i++) {
        struct member *m = &F.m[i];
        snprintf(m->data_dir, sizeof m->data_dir, "%s/n%u", F.dir, i);
        snprintf(m->address, sizeof m->address, "127.0.0.1:%u", tu_free_port());
        ck_assert_int_eq(uv_mutex_init(&m->state.mutex), 0);
        m->fsm.data = &m->state;
        m->fsm.apply = counter_apply;
        m->fsm.snapshot = counter_snapshot;
        m->fsm.restore = counter_restore;
        jr_config_init(&m->cfg);
        m->cfg.id = i;
        m->cfg.address = m->address;
        m->cfg.data_dir = m->data_dir;
        m->cfg.election_timeout_ms = ELECTION_MS;
        m->cfg.heartbeat_timeout_ms = 20;
        m->cfg.log_cb = discard_log;
        m->cfg.fsm = &m->fsm;
        members[i - 1].id = i;
        members[i - 1].address = m->address;
    }
    for (i = 1; i <= n; i++) {
        /* Every member of a multi-member bootstrap shares one secret. */
        static const unsigned char secret[JR_SECRET_SIZE] =
            "test cluster secret, 32 bytes..";
        rv = jr_node_open(&F.m[i].cfg, &F.m[i].node, &err);
        ck_assert_msg(rv == 0, "open %u: %s", i, err.message);
        rv = jr_node_set_secret(F.m[i].node, secret, sizeof secret, &err);
        ck_assert_msg(rv == 0, "secret %u: %s", i, err.message);
        rv = jr_node_bootstrap(F.m[i].node, members, n, &err);
        ck_assert_msg(rv == 0, "bootstrap %u: %s", i, err.message);
        rv = jr_node_start(F.m[i].node, &err);
        ck_assert_msg(rv == 0, "start %u: %s", i, err.message);
    }
}

static struct jr_status *status_of(unsigned id)
{
    struct jr_status *st = NULL;
    ck_assert_int_eq(jr_node_status(F.m[id].node, &st), 0);
    return st;
}

/* The leader every running node agrees on, once they do. */
static unsigned wait_leader(void)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;
    for (;;) {
        uint64_t agreed = 0;
        bool ok = true;
        unsigned i;
        for (i = 1; i <= F.n && ok; i++) {
            struct jr_status *st;
            if (F.m[i].node == NULL) {
                continue;
            }
            st = status_of(i);
            if (st->leader_id == 0 ||
                (agreed != 0 && st->leader_id != agreed)) {
                ok = false;
            }
            agreed = st->leader_id;
            jr_status_free(st);
        }
        if (ok && agreed != 0 && F.m[agreed].node != NULL) {
            return (unsigned)agreed;
        }
        ck_assert_msg(uv_hrtime() < deadline, "no agreed leader after %d ms",
                      WAIT_MS);
        uv_sleep(10);
    }
}

/* A running node other than the ones given (0: none). */
static unsigned other_than(unsigned a, unsigned b)
{
    unsigned i;
    for (i = 1; i <= F.n; i++) {
        if (i != a && i != b && F.m[i].node != NULL) {
            return i;
        }
    }
    return 0;
}

/* Whether id is in the configuration node `on` sees, and as what. */
static bool is_member(unsigned on, uint64_t id, int *role)
{
    struct jr_status *st = status_of(on);
    bool found = false;
    unsigned i;
    for (i = 0; i < st->n_peers; i++) {
        if (st->peers[i].id == id) {
            found = true;
            if (role != NULL) {
                *role = st->peers[i].role;
            }
        }
    }
    jr_status_free(st);
    return found;
}

/* Wait until node `on` no longer hears from id. */
static void wait_unreachable(unsigned on, uint64_t id)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;
    for (;;) {
        struct jr_status *st = status_of(on);
        bool reachable = false;
        unsigned i;
        for (i = 0; i < st->n_peers; i++) {
            if (st->peers[i].id == id) {
                reachable = st->peers[i].reachable;
            }
        }
        jr_status_free(st);
        if (!reachable) {
            return;
        }
        ck_assert_msg(uv_hrtime() < deadline, "node %llu still reachable",
                      (unsigned long long)id);
        uv_sleep(10);
    }
}

static int apply_on(unsigned id)
{
    struct jr_error err;
    return jr_apply_sync(F.m[id].node, "x", 1, 5000, NULL, NULL, &err);
}

/* ---- one node ---- */

START_TEST(remove_rejects_bad_arguments)
{
    struct jr_error err;
    start_cluster(1);
    (void)wait_leader();
    ck_assert_int_eq(jr_node_remove(NULL, 1, 0, 0, &err), JR_EINVAL);
    ck_assert_int_eq(jr_node_remove(F.m[1].node, 0, 0, 0, &err), JR_EINVAL);
    ck_assert_int_eq(jr_node_remove(F.m[1].node, 1, 2, 0, &err), JR_EINVAL);
    ck_assert_int_eq(jr_node_transfer_leadership(NULL, 0, 0, &err), JR_EINVAL);
}
END_TEST

START_TEST(remove_of_unknown_id_fails_with_enotfound)
{
    struct jr_error err;
    start_cluster(1);
    (void)wait_leader();
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_node_remove(F.m[1].node, 99, 0, 2000, &err),
                     JR_ENOTFOUND);
    ck_assert_int_eq(err.code, JR_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.message, "99"));
    ck_assert_int_eq(
        jr_node_remove(F.m[1].node, 99, JR_REMOVE_FORCE, 2000, &err),
        JR_ENOTFOUND);
}
END_TEST

START_TEST(remove_of_last_voter_fails_with_estate)
{
    struct jr_error err;
    start_cluster(1);
    (void)wait_leader();
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(
        jr_node_remove(F.m[1].node, 1, JR_REMOVE_FORCE, 2000, &err), JR_ESTATE);
    ck_assert_msg(strstr(err.message, "last voter") != NULL, "%s", err.message);
    ck_assert(is_member(1, 1, NULL));
    ck_assert_int_eq(apply_on(1), 0);
}
END_TEST

START_TEST(transfer_on_single_voter_fails_with_estate)
{
    struct jr_error err;
    start_cluster(1);
    (void)wait_leader();
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_node_transfer_leadership(F.m[1].node, 0, 2000, &err),
                     JR_ESTATE);
    ck_assert_msg(strstr(err.message, "no other voter") != NULL, "%s",
                  err.message);
    /* To itself: it leads already. */
    ck_assert_int_eq(jr_node_transfer_leadership(F.m[1].node, 1, 2000, &err),
                     0);
    ck_assert_int_eq(jr_node_transfer_leadership(F.m[1].node, 7, 2000, &err),
                     JR_ENOTFOUND);
}
END_TEST

START_TEST(calls_before_start_fail_with_estate)
{
    struct jr_error err;
    struct jr_member self;
    F.n = 1;
    snprintf(F.m[1].data_dir, sizeof F.m[1].data_dir, "%s/n1", F.dir);
    snprintf(F.m[1].address, sizeof F.m[1].address, "127.0.0.1:%u",
             tu_free_port());
    ck_assert_int_eq(uv_mutex_init(&F.m[1].state.mutex), 0);
    F.m[1].fsm.data = &F.m[1].state;
    F.m[1].fsm.apply = counter_apply;
    F.m[1].fsm.snapshot = counter_snapshot;
    F.m[1].fsm.restore = counter_restore;
    jr_config_init(&F.m[1].cfg);
    F.m[1].cfg.id = 1;
    F.m[1].cfg.address = F.m[1].address;
    F.m[1].cfg.data_dir = F.m[1].data_dir;
    F.m[1].cfg.log_cb = discard_log;
    F.m[1].cfg.fsm = &F.m[1].fsm;
    ck_assert_int_eq(jr_node_open(&F.m[1].cfg, &F.m[1].node, &err), 0);
    self.id = 1;
    self.address = F.m[1].address;
    ck_assert_int_eq(jr_node_bootstrap(F.m[1].node, &self, 1, &err), 0);
    ck_assert_int_eq(jr_node_remove(F.m[1].node, 1, 0, 500, &err), JR_ESTATE);
    ck_assert_int_eq(jr_node_transfer_leadership(F.m[1].node, 0, 500, &err),
                     JR_ESTATE);
}
END_TEST

/* ---- three voters ---- */

START_TEST(transfer_from_a_follower_to_a_named_voter)
{
    struct jr_error err;
    struct jr_status *st;
    unsigned leader, caller, target;
    start_cluster(3);
    leader = wait_leader();
    caller = other_than(leader, 0);
    target = other_than(leader, caller);
    memset(&err, 0, sizeof err);
    ck_assert_msg(
        jr_node_transfer_leadership(F.m[caller].node, target, 5000, &err) == 0,
        "transfer: %s", err.message);
    /* The caller knows the new leader when the call returns. */
    st = status_of(caller);
    ck_assert_uint_eq(st->leader_id, target);
    jr_status_free(st);
    ck_assert_uint_eq(wait_leader(), target);
    ck_assert_int_eq(apply_on(leader), 0);
}
END_TEST

START_TEST(transfer_with_id_0_hands_over_to_another_voter)
{
    struct jr_error err;
    unsigned leader, now;
    start_cluster(3);
    leader = wait_leader();
    ck_assert_int_eq(apply_on(leader), 0);
    memset(&err, 0, sizeof err);
    ck_assert_msg(
        jr_node_transfer_leadership(F.m[leader].node, 0, 5000, &err) == 0,
        "transfer: %s", err.message);
    now = wait_leader();
    ck_assert_uint_ne(now, leader);
    /* To the leader itself: nothing to do. */
    ck_assert_int_eq(
        jr_node_transfer_leadership(F.m[leader].node, now, 5000, &err), 0);
    ck_assert_uint_eq(wait_leader(), now);
}
END_TEST

START_TEST(transfer_to_an_unreachable_voter_fails_with_estate)
{
    struct jr_error err;
    unsigned leader, gone;
    start_cluster(3);
    leader = wait_leader();
    gone = other_than(leader, 0);
    close_member(gone);
    wait_unreachable(leader, gone);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(
        jr_node_transfer_leadership(F.m[leader].node, gone, 2000, &err),
        JR_ESTATE);
    ck_assert_msg(strstr(err.message, "not reachable") != NULL, "%s",
                  err.message);
    ck_assert_uint_eq(wait_leader(), leader);
}
END_TEST

START_TEST(remove_of_a_follower_asked_on_another_follower)
{
    struct jr_error err;
    unsigned leader, caller, target;
    start_cluster(3);
    leader = wait_leader();
    caller = other_than(leader, 0);
    target = other_than(leader, caller);
    memset(&err, 0, sizeof err);
    ck_assert_msg(jr_node_remove(F.m[caller].node, target, 0, 5000, &err) == 0,
                  "remove: %s", err.message);
    ck_assert(!is_member(leader, target, NULL));
    /* The two left are a majority of two. */
    close_member(target);
    ck_assert_int_eq(apply_on(caller), 0);
    /* Removing it again: no longer a member. */
    ck_assert_int_eq(jr_node_remove(F.m[caller].node, target, 0, 2000, &err),
                     JR_ENOTFOUND);
}
END_TEST

START_TEST(remove_of_the_leader_hands_over_first)
{
    struct jr_error err;
    unsigned leader, next, third;
    start_cluster(3);
    leader = wait_leader();
    memset(&err, 0, sizeof err);
    ck_assert_msg(jr_node_remove(F.m[leader].node, leader, 0, 5000, &err) == 0,
                  "remove: %s", err.message);
    next = other_than(leader, 0);
    third = other_than(leader, next);
    ck_assert(!is_member(next, leader, NULL));
    close_member(leader);
    next = wait_leader();
    ck_assert_uint_ne(next, leader);
    ck_assert_int_eq(apply_on(third), 0);
}
END_TEST

START_TEST(graceful_remove_of_an_unreachable_node_fails_then_force_works)
{
    struct jr_error err;
    unsigned leader, gone, caller;
    start_cluster(3);
    leader = wait_leader();
    gone = other_than(leader, 0);
    caller = other_than(leader, gone);
    close_member(gone);
    wait_unreachable(leader, gone);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_node_remove(F.m[caller].node, gone, 0, 2000, &err),
                     JR_ESTATE);
    ck_assert_msg(strstr(err.message, "force") != NULL, "%s", err.message);
    ck_assert(is_member(leader, gone, NULL));
    ck_assert_msg(jr_node_remove(F.m[caller].node, gone, JR_REMOVE_FORCE, 5000,
                                 &err) == 0,
                  "forced remove: %s", err.message);
    ck_assert(!is_member(leader, gone, NULL));
    ck_assert_int_eq(apply_on(caller), 0);
}
END_TEST

START_TEST(remove_that_would_leave_no_majority_fails_with_equorumlost)
{
    struct jr_error err;
    unsigned leader, gone, other;
    start_cluster(3);
    leader = wait_leader();
    gone = other_than(leader, 0);
    other = other_than(leader, gone);
    close_member(gone);
    wait_unreachable(leader, gone);
    /* Without `other`, the leader would be one of two reachable voters. */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(
        jr_node_remove(F.m[leader].node, other, JR_REMOVE_FORCE, 2000, &err),
        JR_EQUORUMLOST);
    ck_assert_msg(strstr(err.message, "jaco-recovery(7)") != NULL, "%s",
                  err.message);
    /* Nor the leader itself: the same two would be left. */
    ck_assert_int_eq(jr_node_remove(F.m[other].node, leader, 0, 2000, &err),
                     JR_EQUORUMLOST);
    ck_assert(is_member(leader, other, NULL));
    ck_assert_uint_eq(wait_leader(), leader);
}
END_TEST

START_TEST(remove_without_quorum_fails_with_equorumlost)
{
    struct jr_error err;
    unsigned leader, a, b;
    start_cluster(3);
    leader = wait_leader();
    a = other_than(leader, 0);
    b = other_than(leader, a);
    close_member(a);
    close_member(b);
    wait_unreachable(leader, a);
    wait_unreachable(leader, b);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(
        jr_node_remove(F.m[leader].node, a, JR_REMOVE_FORCE, 3000, &err),
        JR_EQUORUMLOST);
    ck_assert_msg(strstr(err.message, "jaco-recovery(7)") != NULL, "%s",
                  err.message);
}
END_TEST

Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc;

    tc = tcase_create("one node");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, remove_rejects_bad_arguments);
    tcase_add_test(tc, remove_of_unknown_id_fails_with_enotfound);
    tcase_add_test(tc, remove_of_last_voter_fails_with_estate);
    tcase_add_test(tc, transfer_on_single_voter_fails_with_estate);
    tcase_add_test(tc, calls_before_start_fail_with_estate);
    suite_add_tcase(s, tc);

    tc = tcase_create("three voters");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, transfer_from_a_follower_to_a_named_voter);
    tcase_add_test(tc, transfer_with_id_0_hands_over_to_another_voter);
    tcase_add_test(tc, transfer_to_an_unreachable_voter_fails_with_estate);
    tcase_add_test(tc, remove_of_a_follower_asked_on_another_follower);
    tcase_add_test(tc, remove_of_the_leader_hands_over_first);
    tcase_add_test(
        tc, graceful_remove_of_an_unreachable_node_fails_then_force_works);
    tcase_add_test(tc,
                   remove_that_would_leave_no_majority_fails_with_equorumlost);
    tcase_add_test(tc, remove_without_quorum_fails_with_equorumlost);
    suite_add_tcase(s, tc);
    return s;
}
