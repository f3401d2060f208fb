/* test_reconcile.c: the voter-set reconciler: its planner on tables of
 * members, and planner plus driver on raft_fixture clusters. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"
#include "suites.h"

/* ---- the planner ---- */

#define LEADER 1
#define LAST 5000   /* the leader's last index */
#define NOW 1000000 /* members have been reachable since 0: 1000 s */

static struct jr__rc_member members[16];
static unsigned n_members;
static struct jr__rc_policy policy;
static struct jr__rc_action action;

static void reset(void)
{
    memset(members, 0, sizeof members);
    n_members = 0;
    jr__rc_policy_init(&policy);
    memset(&action, 0, sizeof action);
}

/* A reachable, stable, caught-up member. */
static struct jr__rc_member *add(uint64_t id, int role)
{
    struct jr__rc_member *m = &members[n_members++];
    ck_assert_uint_le(n_members, sizeof members / sizeof *members);
    m->id = id;
    m->role = role;
    m->reachable = true;
    m->since_ms = 0;
    m->match_index = LAST;
    return m;
}

static void add_n(unsigned voters, unsigned standbys)
{
    unsigned i;
    for (i = 0; i < voters; i++) {
        add(n_members + 1, RAFT_VOTER);
    }
    for (i = 0; i < standbys; i++) {
        add(n_members + 1, RAFT_STANDBY);
    }
}

static void plan(void)
{
    jr__reconcile_plan(members, n_members, LEADER, LAST, NOW, &policy, &action);
    ck_assert_str_ne(action.reason, "");
}

static const char *why(uint64_t id)
{
    static char buf[JR_ERRMSG_SIZE];
    unsigned i;
    for (i = 0; i < n_members; i++) {
        if (members[i].id == id) {
            jr__reconcile_why(members, n_members, LEADER, LAST, NOW, &policy, i,
                              buf, sizeof buf);
            return buf;
        }
    }
    ck_abort_msg("no member %llu", (unsigned long long)id);
    return NULL;
}

static struct jr__rc_member *member(uint64_t id)
{
    unsigned i;
    for (i = 0; i < n_members; i++) {
        if (members[i].id == id) {
            return &members[i];
        }
    }
    ck_abort_msg("no member %llu", (unsigned long long)id);
    return NULL;
}

#define ck_assert_action(k, i)                                         \
    do {                                                               \
        ck_assert_msg(action.kind == (k) && action.id == (i),          \
                      "expected %s %d, got %d %llu: %s", #k, (int)(i), \
                      (int)action.kind, (unsigned long long)action.id, \
                      action.reason);                                  \
    } while (0)

START_TEST(target_follows_the_member_count)
{
    static const unsigned want5[] = {1, 1, 3, 3, 5, 5, 5};
    static const unsigned want3[] = {1, 1, 3, 3, 3, 3, 3};
    unsigned count;
    for (count = 1; count <= 7; count++) {
        reset();
        add_n(1, count - 1);
        ck_assert_uint_eq(jr__reconcile_target(members, n_members, &policy),
                          want5[count - 1]);
        policy.max_voters = 3;
        ck_assert_uint_eq(jr__reconcile_target(members, n_members, &policy),
                          want3[count - 1]);
    }
}
END_TEST

START_TEST(target_is_odd_and_ignores_spares_and_leaving_members)
{
    reset();
    add_n(1, 5);
    policy.max_voters = 4; /* rounded down to odd */
    ck_assert_uint_eq(jr__reconcile_target(members, n_members, &policy), 3);
    policy.max_voters = 0; /* at least one */
    ck_assert_uint_eq(jr__reconcile_target(members, n_members, &policy), 1);
    reset();
    add_n(1, 2);
    add(4, RAFT_SPARE);
    add(5, RAFT_SPARE);
    ck_assert_uint_eq(jr__reconcile_target(members, n_members, &policy), 3);
    member(3)->leaving = true;
    ck_assert_uint_eq(jr__reconcile_target(members, n_members, &policy), 1);
}
END_TEST

START_TEST(nothing_to_do_at_target)
{
    reset();
    add_n(3, 1);
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "3 voters of target 3"));
    ck_assert_str_eq(why(1), "voter (leader)");
    ck_assert_str_eq(why(2), "voter");
    ck_assert_str_eq(why(4), "standby: voter set is full (3 of target 3)");
}
END_TEST

START_TEST(promotes_a_standby_after_a_voter_is_removed)
{
    /* 3 voters + 1 standby, then voter 3 removed: 3 members, target 3. */
    reset();
    add_n(2, 0);
    add(4, RAFT_STANDBY);
    plan();
    ck_assert_action(JR__RC_PROMOTE, 4);
    ck_assert_str_eq(why(4), "standby: to be promoted (2 voters of target 3)");
}
END_TEST

START_TEST(promotes_the_lowest_id_among_equals)
{
    reset();
    add_n(3, 0);
    add(7, RAFT_STANDBY);
    add(5, RAFT_STANDBY);
    plan();
    ck_assert_action(JR__RC_PROMOTE, 5);
    ck_assert_str_eq(why(7), "standby: eligible, 5 is promoted first");
}
END_TEST

START_TEST(promotes_the_most_caught_up)
{
    reset();
    add_n(3, 0);
    add(4, RAFT_STANDBY)->match_index = LAST - 10;
    add(5, RAFT_STANDBY)->match_index = LAST - 3;
    plan();
    ck_assert_action(JR__RC_PROMOTE, 5);
}
END_TEST

START_TEST(demotes_an_extra_voter)
{
    /* 4 voters, 4 members: target 3. Ties pick the highest id. */
    reset();
    add_n(4, 0);
    plan();
    ck_assert_action(JR__RC_DEMOTE, 4);
    ck_assert_str_eq(why(4), "voter: to be demoted (4 voters of target 3)");
}
END_TEST

START_TEST(demotion_continues_through_even_down_to_target)
{
    reset();
    add_n(5, 0);
    policy.max_voters = 3;
    plan();
    ck_assert_action(JR__RC_DEMOTE, 5);
    member(5)->role = RAFT_STANDBY;
    plan();
    ck_assert_action(JR__RC_DEMOTE, 4);
    member(4)->role = RAFT_STANDBY;
    plan();
    ck_assert_action(JR__RC_NONE, 0);
}
END_TEST

START_TEST(demotes_unreachable_then_most_lagging)
{
    reset();
    add_n(4, 0);
    member(2)->match_index = LAST - 100;
    plan();
    ck_assert_action(JR__RC_DEMOTE, 2);
    member(3)->reachable = false;
    member(3)->since_ms = NOW - 5000;
    plan();
    ck_assert_action(JR__RC_DEMOTE, 3);
    ck_assert_str_eq(why(3), "voter: to be demoted (4 voters of target 3)");
    ck_assert_ptr_nonnull(strstr(action.reason, "unreachable"));
}
END_TEST

START_TEST(parity_two_voters_and_one_eligible_standby_promote)
{
    reset();
    add_n(2, 1);
    plan();
    ck_assert_action(JR__RC_PROMOTE, 3);
}
END_TEST

START_TEST(parity_one_voter_and_one_eligible_standby_wait)
{
    /* Target 3 (3 members), but only standby 2 may be promoted: 1 -> 2
     * voters would need both to commit anything and tolerate no failure,
     * with no second standby to make it 3. */
    reset();
    add_n(1, 2);
    member(3)->match_index = LAST - 5000;
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "even number of voters"));
    ck_assert_str_eq(why(2),
                     "standby: promotion would leave an even number of "
                     "voters");
    ck_assert_str_eq(why(3),
                     "standby: waiting for catch-up (5000 entries "
                     "behind)");
}
END_TEST

START_TEST(parity_one_voter_and_two_eligible_standbys_promote)
{
    reset();
    add_n(1, 2);
    plan();
    ck_assert_action(JR__RC_PROMOTE, 2);
    member(2)->role = RAFT_VOTER;
    plan();
    ck_assert_action(JR__RC_PROMOTE, 3);
}
END_TEST

START_TEST(lagging_standby_is_not_promoted)
{
    reset();
    add_n(2, 1);
    member(3)->match_index = LAST - 1025;
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "no standby can be promoted"));
    ck_assert_str_eq(why(3),
                     "standby: waiting for catch-up (1025 entries behind)");
    member(3)->match_index = LAST - 1024; /* max_lag itself is caught up */
    plan();
    ck_assert_action(JR__RC_PROMOTE, 3);
}
END_TEST

START_TEST(unstable_standby_is_not_promoted)
{
    reset();
    add_n(2, 1);
    member(3)->since_ms = NOW - 4500;
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_str_eq(why(3), "standby: stable for 4 s of 10 s");
    member(3)->since_ms = NOW - 10000;
    plan();
    ck_assert_action(JR__RC_PROMOTE, 3);
}
END_TEST

START_TEST(unreachable_standby_and_spare_are_not_promoted)
{
    reset();
    add_n(2, 1);
    add(4, RAFT_SPARE);
    member(3)->reachable = false;
    plan();
    /* Target 3 (spare 4 not counted), no one to promote: 2 voters stay. */
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_str_eq(why(3), "standby: not reachable");
    ck_assert_str_eq(why(4),
                     "spare: neither votes nor replicates, never "
                     "promoted");
}
END_TEST

START_TEST(promotion_spreads_zones)
{
    reset();
    add_n(2, 0);
    (void)strcpy(member(1)->zone, "a");
    (void)strcpy(member(2)->zone, "b");
    (void)strcpy(add(3, RAFT_STANDBY)->zone, "a");
    (void)strcpy(add(4, RAFT_STANDBY)->zone, "b");
    (void)strcpy(add(5, RAFT_STANDBY)->zone, "c");
    member(5)->match_index = LAST - 500; /* zone beats catch-up */
    policy.max_voters = 3;
    plan();
    ck_assert_action(JR__RC_PROMOTE, 5);
}
END_TEST

START_TEST(demotion_spreads_zones)
{
    reset();
    add_n(4, 0);
    (void)strcpy(member(1)->zone, "a");
    (void)strcpy(member(2)->zone, "b");
    (void)strcpy(member(3)->zone, "b");
    (void)strcpy(member(4)->zone, "c");
    member(4)->match_index = LAST - 500; /* zone beats lag */
    plan();
    ck_assert_action(JR__RC_DEMOTE, 3);
    member(2)->match_index = LAST - 1; /* within the zone, the most lagging */
    plan();
    ck_assert_action(JR__RC_DEMOTE, 2);
}
END_TEST

START_TEST(leader_is_not_picked_in_a_tie)
{
    /* 2 members, target 1, both caught up: demote the follower, even with
     * the higher id on the leader's side. */
    reset();
    add(2, RAFT_VOTER);
    add(1, RAFT_VOTER);
    plan();
    ck_assert_action(JR__RC_DEMOTE, 2);
}
END_TEST

START_TEST(leaving_leader_is_replaced_then_transfers_then_is_demoted)
{
    reset();
    add_n(3, 1);
    member(1)->leaving = true;
    /* Voter 1 goes: members 2, 3, 4, target 3, two voters stay. 3 -> 4 is
     * even, but demoting the leaving voter will make it odd again. */
    plan();
    ck_assert_action(JR__RC_PROMOTE, 4);
    ck_assert_str_eq(why(1),
                     "voter: leaving, waiting for a standby to take its "
                     "place");
    member(4)->role = RAFT_VOTER;
    member(3)->match_index = LAST - 2;
    plan();
    /* The extra is the leader: hand over to the most caught-up voter. */
    ck_assert_action(JR__RC_TRANSFER, 2);
    ck_assert_str_eq(why(1),
                     "voter: leader, handing over to 2 before its "
                     "demotion");
    ck_assert_str_eq(why(2), "voter: taking over leadership");
    /* Now 2 leads and demotes 1. */
    jr__reconcile_plan(members, n_members, 2, LAST, NOW, &policy, &action);
    ck_assert_action(JR__RC_DEMOTE, 1);
}
END_TEST

START_TEST(leaving_voter_without_replacement_stays)
{
    reset();
    add_n(3, 0);
    member(3)->leaving = true;
    add(4, RAFT_STANDBY)->reachable = false;
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_str_eq(why(3),
                     "voter: leaving, waiting for a standby to take its "
                     "place");
}
END_TEST

START_TEST(quorum_guard_on_demotion)
{
    reset();
    add_n(5, 0);
    policy.max_voters = 3;
    member(3)->reachable = false;
    member(4)->reachable = false;
    member(5)->reachable = false;
    plan();
    /* 5 -> 4 voters with 2 reachable: a majority of 4 needs 3. */
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "majority"));
    member(5)->reachable = true;
    plan();
    ck_assert_action(JR__RC_DEMOTE, 4); /* unreachable first, highest id */
}
END_TEST

START_TEST(quorum_guard_on_promotion)
{
    /* A promotion raises the majority: it must still be reachable. */
    reset();
    add_n(4, 2);
    member(3)->reachable = false;
    member(4)->reachable = false;
    member(5)->match_index = LAST - 5000;
    policy.max_voters = 7;
    plan();
    /* 6 members, target 5: 4 -> 5 voters with 3 reachable: majority 3. */
    ck_assert_action(JR__RC_PROMOTE, 6);
    member(2)->reachable = false;
    plan();
    /* Now 1 + 1 reachable of 5: promotion would not restore a majority. */
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "reachable"));
}
END_TEST

START_TEST(dead_node_cleanup_is_off_by_default)
{
    reset();
    add_n(3, 1);
    member(4)->reachable = false;
    member(4)->since_ms = 0; /* unreachable for 1000 s */
    ck_assert_uint_eq(policy.dead_after_ms, 0);
    plan();
    ck_assert_action(JR__RC_NONE, 0);
}
END_TEST

START_TEST(dead_node_cleanup_removes_after_the_delay)
{
    reset();
    add_n(3, 1);
    policy.dead_after_ms = 60000;
    member(4)->reachable = false;
    member(4)->since_ms = NOW - 60000;
    plan();
    ck_assert_action(JR__RC_NONE, 0); /* not longer than the delay yet */
    member(4)->since_ms = NOW - 60001;
    plan();
    ck_assert_action(JR__RC_REMOVE, 4);
    ck_assert_str_eq(why(4), "standby: to be removed (unreachable for 60 s)");
    /* A dead voter goes first, even if it died later. */
    member(3)->reachable = false;
    member(3)->since_ms = NOW - 65000;
    plan();
    ck_assert_action(JR__RC_REMOVE, 3);
}
END_TEST

START_TEST(dead_node_cleanup_keeps_a_majority_and_the_leader)
{
    reset();
    add_n(3, 0);
    policy.dead_after_ms = 1000;
    member(2)->reachable = false;
    member(3)->reachable = false;
    /* Removing 2 or 3 leaves 1 reachable of 2 voters: not a majority. */
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "removing"));
    /* The leader is never dead to itself, whatever the caller says. */
    reset();
    add_n(1, 0);
    policy.dead_after_ms = 1000;
    member(1)->reachable = false;
    plan();
    ck_assert_action(JR__RC_NONE, 0);
}
END_TEST

START_TEST(leader_not_a_voter_plans_nothing)
{
    reset();
    add(2, RAFT_VOTER);
    add(3, RAFT_STANDBY);
    plan();
    ck_assert_action(JR__RC_NONE, 0);
    ck_assert_ptr_nonnull(strstr(action.reason, "not a voter"));
}
END_TEST

/* ---- planner and driver on raft_fixture ---- */

#define N_SERVERS 5

static struct raft_fixture fixture;
static struct raft_fsm fsms[N_SERVERS];
static uint64_t since[N_SERVERS]; /* fixture time of the last kill/revive */
static bool leaving[N_SERVERS];
static struct jr__rc_req req;
static bool in_flight;
static int last_status;
static enum jr__rc_kind kinds[32];
static unsigned n_kinds;
static bool demoted_while_leading;

static int fsm_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm,
                        struct raft_buffer *bufs[],
                        unsigned *n)
{
    (void)fsm;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].base = raft_malloc(8);
    (*bufs)[0].len = 8;
    memset((*bufs)[0].base, 0, 8);
    *n = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

/* Servers 0..voters-1 vote, the rest are standbys; 0 is elected. */
static void cluster_setup(unsigned voters, unsigned servers)
{
    struct raft_configuration conf;
    unsigned i;
    memset(&fixture, 0, sizeof fixture);
    ck_assert_int_eq(raft_fixture_initialize(&fixture), 0);
    for (i = 0; i < servers; i++) {
        memset(&fsms[i], 0, sizeof fsms[i]);
        fsms[i].version = 1;
        fsms[i].apply = fsm_apply;
        fsms[i].snapshot = fsm_snapshot;
        fsms[i].restore = fsm_restore;
        ck_assert_int_eq(raft_fixture_grow(&fixture, &fsms[i]), 0);
        since[i] = 0;
        leaving[i] = false;
    }
    raft_configuration_init(&conf);
    for (i = 0; i < servers; i++) {
        char address[16];
        (void)snprintf(address, sizeof address, "%u", i + 1);
        ck_assert_int_eq(
            raft_configuration_add(&conf, i + 1, address,
                                   i < voters ? RAFT_VOTER : RAFT_STANDBY),
            0);
    }
    ck_assert_int_eq(raft_fixture_bootstrap(&fixture, &conf), 0);
    raft_configuration_close(&conf);
    ck_assert_int_eq(raft_fixture_start(&fixture), 0);
    ck_assert(raft_fixture_step_until_has_leader(&fixture, 10000));
    ck_assert_uint_eq(raft_fixture_leader_index(&fixture), 0);
    in_flight = false;
    n_kinds = 0;
    demoted_while_leading = false;
    jr__rc_policy_init(&policy);
    policy.stable_ms = 2000;
    policy.max_lag = 10;
}

/* Reachability as a contact table would see it: alive is reachable. */
static void contact(void *arg, struct jr__rc_member *m)
{
    unsigned i = (unsigned)(m->id - 1);
    (void)arg;
    m->reachable = raft_fixture_alive(&fixture, i);
    m->since_ms = since[i];
    m->leaving = leaving[i];
}

static void done_cb(struct jr__rc_req *r, int status)
{
    ck_assert_ptr_eq(r, &req);
    last_status = status;
    in_flight = false;
}

/* One reconciler pass on the current leader, if it can take a change. */
static void reconcile_once(void)
{
    struct jr__rc_member m[N_SERVERS];
    unsigned n, li = raft_fixture_leader_index(&fixture);
    uint64_t last;
    struct raft *r;
    if (in_flight || li >= raft_fixture_n(&fixture)) {
        return;
    }
    r = raft_fixture_get(&fixture, li);
    if (jr__reconcile_busy(r)) {
        return;
    }
    ck_assert_int_eq(jr__reconcile_members_from_raft(r, m, N_SERVERS, &n, &last,
                                                     contact, NULL),
                     0);
    jr__reconcile_plan(m, n, r->id, last, raft_fixture_time(&fixture), &policy,
                       &action);
    if (action.kind == JR__RC_NONE) {
        return;
    }
    if (action.kind == JR__RC_DEMOTE && action.id == r->id) {
        demoted_while_leading = true;
    }
    ck_assert_uint_lt(n_kinds, sizeof kinds / sizeof *kinds);
    kinds[n_kinds++] = action.kind;
    ck_assert_int_eq(jr__reconcile_apply(r, &action, &req, done_cb), 0);
    in_flight = true;
}

/* Step the cluster for ms of simulated time, reconciling between steps. */
static void run(unsigned ms)
{
    raft_time end = raft_fixture_time(&fixture) + ms;
    while (raft_fixture_time(&fixture) < end) {
        reconcile_once();
        raft_fixture_step(&fixture);
    }
}

static unsigned count_role(int role)
{
    struct raft *r =
        raft_fixture_get(&fixture, raft_fixture_leader_index(&fixture));
    unsigned i, count = 0;
    for (i = 0; i < r->configuration.n; i++) {
        count += r->configuration.servers[i].role == role ? 1 : 0;
    }
    return count;
}

static int role_of(uint64_t id)
{
    struct raft *r =
        raft_fixture_get(&fixture, raft_fixture_leader_index(&fixture));
    unsigned i;
    for (i = 0; i < r->configuration.n; i++) {
        if (r->configuration.servers[i].id == id) {
            return r->configuration.servers[i].role;
        }
    }
    return -1;
}

static void remove_cb(struct raft_change *c, int status)
{
    (void)c;
    ck_assert_int_eq(status, 0);
    in_flight = false;
}

START_TEST(cluster_at_target_is_left_alone)
{
    cluster_setup(3, 5);
    policy.max_voters = 3;
    run(20000);
    ck_assert_uint_eq(n_kinds, 0);
    ck_assert_uint_eq(count_role(RAFT_VOTER), 3);
    ck_assert_uint_eq(count_role(RAFT_STANDBY), 2);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(cluster_grows_to_five_voters)
{
    /* 5 members, target 5: 3 -> 4 -> 5 (two eligible standbys). */
    cluster_setup(3, 5);
    run(20000);
    ck_assert_uint_eq(count_role(RAFT_VOTER), 5);
    ck_assert_uint_eq(n_kinds, 2);
    ck_assert_int_eq(kinds[0], JR__RC_PROMOTE);
    ck_assert_int_eq(kinds[1], JR__RC_PROMOTE);
    ck_assert_int_eq(last_status, 0);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(cluster_replaces_a_removed_voter)
{
    struct raft_change change;
    struct raft *r;
    cluster_setup(3, 5);
    policy.max_voters = 3;
    run(3000);
    /* Voter 3 dies and the operator removes it. */
    raft_fixture_kill(&fixture, 2);
    since[2] = raft_fixture_time(&fixture);
    r = raft_fixture_get(&fixture, 0);
    in_flight = true; /* keep the reconciler off until it is done */
    ck_assert_int_eq(raft_remove(r, &change, 3, remove_cb), 0);
    run(3000);
    ck_assert_int_eq(role_of(3), -1);
    ck_assert_uint_eq(n_kinds, 1);
    ck_assert_int_eq(kinds[0], JR__RC_PROMOTE);
    ck_assert_int_eq(last_status, 0);
    run(10000);
    ck_assert_uint_eq(n_kinds, 1);
    ck_assert_uint_eq(count_role(RAFT_VOTER), 3);
    ck_assert_int_eq(role_of(4), RAFT_VOTER); /* lowest id among equals */
    ck_assert_int_eq(role_of(5), RAFT_STANDBY);
    ck_assert_uint_lt(raft_fixture_leader_index(&fixture), 5);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(cluster_demotes_an_extra_voter)
{
    cluster_setup(4, 4);
    run(10000);
    ck_assert_uint_eq(n_kinds, 1);
    ck_assert_int_eq(kinds[0], JR__RC_DEMOTE);
    ck_assert_uint_eq(count_role(RAFT_VOTER), 3);
    ck_assert_int_eq(role_of(4), RAFT_STANDBY);
    ck_assert_uint_eq(raft_fixture_leader_index(&fixture), 0);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(cluster_transfers_leadership_before_demoting_the_leader)
{
    cluster_setup(3, 4);
    run(3000);
    ck_assert_uint_eq(n_kinds, 0);
    leaving[0] = true; /* the leader is asked to leave */
    run(20000);
    ck_assert_uint_eq(n_kinds, 3);
    ck_assert_int_eq(kinds[0], JR__RC_PROMOTE);
    ck_assert_int_eq(kinds[1], JR__RC_TRANSFER);
    ck_assert_int_eq(kinds[2], JR__RC_DEMOTE);
    ck_assert(!demoted_while_leading);
    ck_assert_uint_ne(raft_fixture_leader_index(&fixture), 0);
    ck_assert_int_eq(role_of(1), RAFT_STANDBY);
    ck_assert_uint_eq(count_role(RAFT_VOTER), 3);
    raft_fixture_close(&fixture);
}
END_TEST

/* Why TRANSFER exists: raft 0.15 lets a leader demoted in place lead until
 * the change commits, then steps it down with no successor lined up, so
 * the cluster has no leader until an election timeout has passed. */
START_TEST(raft_leaves_no_leader_after_an_in_place_leader_demotion)
{
    struct raft_change change;
    struct raft *r;
    raft_time t0;
    cluster_setup(3, 4);
    r = raft_fixture_get(&fixture, 0);
    in_flight = true;
    ck_assert_int_eq(raft_assign(r, &change, 1, RAFT_STANDBY, remove_cb), 0);
    ck_assert_int_eq(raft_state(r), RAFT_LEADER); /* still leads */
    while (in_flight) {
        raft_fixture_step(&fixture);
    }
    t0 = raft_fixture_time(&fixture);
    ck_assert_int_ne(raft_state(r), RAFT_LEADER);
    ck_assert(raft_fixture_step_until_has_leader(&fixture, 10000));
    /* No hand-over: the next leader comes from an election timeout. */
    ck_assert_uint_ge(raft_fixture_time(&fixture) - t0, r->election_timeout);
    raft_fixture_close(&fixture);
}
END_TEST

static void apply_cb(struct raft_apply *a, int status, void *result)
{
    (void)result;
    ck_assert_int_eq(status, 0);
    free(a);
}

START_TEST(cluster_waits_for_a_lagging_standby)
{
    struct raft_buffer bufs[50];
    struct raft_apply *a;
    struct raft *r;
    unsigned i;
    bool saw_lag = false;
    cluster_setup(2, 3); /* 3 members, target 3 */
    policy.stable_ms = 0;
    raft_fixture_kill(&fixture, 2);
    since[2] = raft_fixture_time(&fixture);
    r = raft_fixture_get(&fixture, 0);
    for (i = 0; i < 50; i++) {
        bufs[i].base = raft_malloc(8);
        memset(bufs[i].base, 0, 8);
        bufs[i].len = 8;
    }
    a = malloc(sizeof *a);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(raft_apply(r, a, bufs, 50, apply_cb), 0);
    run(3000);
    ck_assert_uint_eq(n_kinds, 0); /* not reachable */
    raft_fixture_revive(&fixture, 2);
    since[2] = raft_fixture_time(&fixture);
    while (n_kinds == 0 && raft_fixture_time(&fixture) < since[2] + 10000) {
        reconcile_once();
        if (n_kinds == 0 && strstr(action.reason, "no standby") != NULL) {
            saw_lag = true;
        }
        raft_fixture_step(&fixture);
    }
    ck_assert(saw_lag);
    ck_assert_uint_eq(n_kinds, 1);
    ck_assert_int_eq(kinds[0], JR__RC_PROMOTE);
    ck_assert_uint_eq(action.id, 3);
    run(5000);
    ck_assert_int_eq(last_status, 0);
    ck_assert_uint_eq(count_role(RAFT_VOTER), 3);
    raft_fixture_close(&fixture);
}
END_TEST

Suite *reconcile_suite(void)
{
    Suite *s = suite_create("reconcile");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, target_follows_the_member_count);
    tcase_add_test(tc, target_is_odd_and_ignores_spares_and_leaving_members);
    tcase_add_test(tc, nothing_to_do_at_target);
    tcase_add_test(tc, promotes_a_standby_after_a_voter_is_removed);
    tcase_add_test(tc, promotes_the_lowest_id_among_equals);
    tcase_add_test(tc, promotes_the_most_caught_up);
    tcase_add_test(tc, demotes_an_extra_voter);
    tcase_add_test(tc, demotion_continues_through_even_down_to_target);
    tcase_add_test(tc, demotes_unreachable_then_most_lagging);
    tcase_add_test(tc, parity_two_voters_and_one_eligible_standby_promote);
    tcase_add_test(tc, parity_one_voter_and_one_eligible_standby_wait);
    tcase_add_test(tc, parity_one_voter_and_two_eligible_standbys_promote);
    tcase_add_test(tc, lagging_standby_is_not_promoted);
    tcase_add_test(tc, unstable_standby_is_not_promoted);
    tcase_add_test(tc, unreachable_standby_and_spare_are_not_promoted);
    tcase_add_test(tc, promotion_spreads_zones);
    tcase_add_test(tc, demotion_spreads_zones);
    tcase_add_test(tc, leader_is_not_picked_in_a_tie);
    tcase_add_test(tc,
                   leaving_leader_is_replaced_then_transfers_then_is_demoted);
    tcase_add_test(tc, leaving_voter_without_replacement_stays);
    tcase_add_test(tc, quorum_guard_on_demotion);
    tcase_add_test(tc, quorum_guard_on_promotion);
    tcase_add_test(tc, dead_node_cleanup_is_off_by_default);
    tcase_add_test(tc, dead_node_cleanup_removes_after_the_delay);
    tcase_add_test(tc, dead_node_cleanup_keeps_a_majority_and_the_leader);
    tcase_add_test(tc, leader_not_a_voter_plans_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("cluster");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cluster_at_target_is_left_alone);
    tcase_add_test(tc, cluster_grows_to_five_voters);
    tcase_add_test(tc, cluster_replaces_a_removed_voter);
    tcase_add_test(tc, cluster_demotes_an_extra_voter);
    tcase_add_test(tc, cluster_transfers_leadership_before_demoting_the_leader);
    tcase_add_test(tc, cluster_waits_for_a_lagging_standby);
    tcase_add_test(tc, raft_leaves_no_leader_after_an_in_place_leader_demotion);
    suite_add_tcase(s, tc);
    return s;
}
