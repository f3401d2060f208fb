/* test_raft_contract.c: pins the canonical/raft 0.15 behaviours that
 * libjacoraft relies on or works around, so that a change of the Debian
 * package shows up here first. */
#include <raft.h>
#include <raft/fixture.h>
#include <raft/uv.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "jr_internal.h"
#include "suites.h"

/* ---- raft_uv: entries whose length is not a multiple of 8 ---- */

static int io_done;

static void append_cb(struct raft_io_append *req, int status)
{
    (void)req;
    ck_assert_int_eq(status, 0);
    io_done = 1;
}

static void close_cb(struct raft_io *io)
{
    (void)io;
    io_done = 1;
}

/* Write two command entries of len bytes after a bootstrap (first pass), or
 * load the log back (second pass). Returns load's status; *n_entries is the
 * number of entries loaded. */
static int uv_pass(const char *dir, size_t len, bool write, size_t *n_entries)
{
    uv_loop_t loop;
    struct raft_uv_transport t;
    struct raft_io io;
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap = NULL;
    raft_index start;
    struct raft_entry *entries = NULL;
    int rv;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&io, 0, sizeof io);
    ck_assert_int_eq(raft_uv_tcp_init(&t, &loop), 0);
    ck_assert_int_eq(raft_uv_init(&io, &loop, dir, &t), 0);
    raft_uv_set_auto_recovery(&io, false);
    ck_assert_int_eq(io.init(&io, 1, "127.0.0.1:9"), 0);
    if (write) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        ck_assert_int_eq(
            raft_configuration_add(&conf, 1, "127.0.0.1:9", RAFT_VOTER), 0);
        ck_assert_int_eq(io.bootstrap(&io, &conf), 0);
        raft_configuration_close(&conf);
    }
    *n_entries = 0;
    rv = io.load(&io, &term, &vote, &snap, &start, &entries, n_entries);
    if (rv == 0 && write) {
        struct raft_entry e[2];
        struct raft_io_append req;
        unsigned i;
        for (i = 0; i < 2; i++) {
            e[i].term = 1;
            e[i].type = RAFT_COMMAND;
            e[i].buf.base = raft_malloc(len);
            memset(e[i].buf.base, 'a', len);
            e[i].buf.len = len;
            e[i].batch = NULL;
        }
        io_done = 0;
        ck_assert_int_eq(io.append(&io, &req, e, 2, append_cb), 0);
        while (!io_done) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        for (i = 0; i < 2; i++) {
            raft_free(e[i].buf.base);
        }
    }
    if (rv == 0) {
        size_t i;
        void *batch = NULL;
        for (i = 0; i < *n_entries; i++) {
            if (entries[i].batch != batch) {
                batch = entries[i].batch;
                raft_free(batch);
            }
        }
        raft_free(entries);
    }
    io_done = 0;
    io.close(&io, close_cb);
    while (!io_done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    raft_uv_close(&io);
    raft_uv_tcp_close(&t);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    return rv;
}

static int entries_round_trip(size_t len, size_t *loaded)
{
    char dir[] = "/tmp/jr-contract-XXXXXX";
    char cmd[64];
    int rv;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    (void)uv_pass(dir, len, true, loaded);
    rv = uv_pass(dir, len, false, loaded);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    return rv;
}

START_TEST(raft_uv_cannot_load_entries_not_padded_to_8_bytes)
{
    size_t loaded;
    /* The reason for jr__entry_wrap(): the writer pads each entry, the
     * loader does not skip the padding. */
    ck_assert_int_ne(entries_round_trip(4, &loaded), 0);
}
END_TEST

START_TEST(raft_uv_loads_entries_padded_to_8_bytes)
{
    size_t loaded;
    ck_assert_int_eq(entries_round_trip(8, &loaded), 0);
    ck_assert_uint_eq(loaded, 3); /* configuration + two commands */
}
END_TEST

/* ---- the core, on raft_fixture ---- */

static int fsm_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    (void)buf;
    (*(int *)fsm->data)++;
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

static int applied[3];
static struct raft_fsm fsms[3];
static struct raft_fixture fixture;

static void fixture_setup_unstarted(unsigned n)
{
    struct raft_configuration conf;
    unsigned i;
    for (i = 0; i < n; i++) {
        applied[i] = 0;
        memset(&fsms[i], 0, sizeof fsms[i]);
        fsms[i].version = 1;
        fsms[i].data = &applied[i];
        fsms[i].apply = fsm_apply;
        fsms[i].snapshot = fsm_snapshot;
        fsms[i].restore = fsm_restore;
    }
    memset(&fixture, 0, sizeof fixture);
    ck_assert_int_eq(raft_fixture_initialize(&fixture), 0);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(raft_fixture_grow(&fixture, &fsms[i]), 0);
    }
    ck_assert_int_eq(raft_fixture_configuration(&fixture, n, &conf), 0);
    ck_assert_int_eq(raft_fixture_bootstrap(&fixture, &conf), 0);
    raft_configuration_close(&conf);
}

static void fixture_setup(unsigned n)
{
    fixture_setup_unstarted(n);
    ck_assert_int_eq(raft_fixture_start(&fixture), 0);
}

static int cb_calls;
static raft_index cb_index;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_null(result);
    cb_calls++;
    cb_index = req->index;
}

START_TEST(pre_vote_is_off_by_default)
{
    fixture_setup(1);
    /* Hence raft_set_pre_vote(true) in jr_node_open(). */
    ck_assert(!raft_fixture_get(&fixture, 0)->pre_vote);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(apply_of_a_batch_calls_back_once_with_the_first_index)
{
    struct raft_buffer bufs[3];
    struct raft_apply req;
    struct raft *r;
    raft_index first;
    unsigned i;
    fixture_setup(3);
    ck_assert(raft_fixture_step_until_has_leader(&fixture, 10000));
    r = raft_fixture_get(&fixture, raft_fixture_leader_index(&fixture));
    first = raft_last_index(r) + 1;
    for (i = 0; i < 3; i++) {
        bufs[i].base = raft_malloc(8);
        memset(bufs[i].base, 0, 8);
        bufs[i].len = 8;
    }
    cb_calls = 0;
    ck_assert_int_eq(raft_apply(r, &req, bufs, 3, apply_cb), 0);
    /* The request's index is the first entry's, set synchronously: the
     * library maps results to submitters by index from there. */
    ck_assert_uint_eq(req.index, first);
    ck_assert(raft_fixture_step_until_applied(
        &fixture, raft_fixture_n(&fixture), first + 2, 10000));
    /* One callback for three entries: per-command results must come from
     * the FSM glue, not from this callback. */
    ck_assert_int_eq(cb_calls, 1);
    ck_assert_uint_eq(cb_index, first);
    raft_fixture_close(&fixture);
}
END_TEST

/* ---- a dead leader's successor (leaderwatch.c) ---- */

enum { WATCH_NONE, WATCH_SILENCE, WATCH_REFUSED };

/* Three voters with pre-vote, server 0 leading; followers 1 and 2 time
 * out after 1100 and 1900 ms of silence. Server 0 dies; returns how many ms
 * later a new leader is elected (*leader: its index), with leaderwatch's rule
 * `watch` applied to the followers as the library applies it. */
static raft_time failover_ms(int watch, unsigned *leader)
{
    raft_time t0;
    unsigned i;
    fixture_setup(3);
    for (i = 0; i < 3; i++) {
        raft_set_pre_vote(raft_fixture_get(&fixture, i), true);
    }
    raft_fixture_elect(&fixture, 0);
    raft_fixture_step_until_elapsed(&fixture, 500);
    ck_assert_uint_eq(raft_fixture_leader_index(&fixture), 0);
    /* A follower draws its timeout when it becomes one; heartbeats only
     * restart the timer. */
    raft_fixture_get(&fixture, 1)->follower_state.randomized_election_timeout =
        1100;
    raft_fixture_get(&fixture, 2)->follower_state.randomized_election_timeout =
        1900;
    raft_fixture_set_randomized_election_timeout(&fixture, 1, 1100);
    raft_fixture_set_randomized_election_timeout(&fixture, 2, 1900);
    raft_fixture_kill(&fixture, 0);
    t0 = raft_fixture_time(&fixture);
    if (watch == WATCH_REFUSED) {
        raft_id dead = raft_fixture_get(&fixture, 0)->id;
        ck_assert(jr__leaderwatch_refused(raft_fixture_get(&fixture, 1), dead,
                                          t0, 150));
        ck_assert(jr__leaderwatch_refused(raft_fixture_get(&fixture, 2), dead,
                                          t0, 250));
        ck_assert_uint_eq(
            raft_fixture_get(&fixture, 1)->follower_state.current_leader.id, 0);
    }
    for (;;) {
        for (i = 1; i < 3; i++) {
            struct raft *r = raft_fixture_get(&fixture, i);
            if (r->state == RAFT_LEADER) {
                *leader = i;
                return raft_fixture_time(&fixture) - t0;
            }
            if (watch == WATCH_SILENCE) {
                (void)jr__leaderwatch_silence(r, raft_fixture_time(&fixture));
            }
        }
        ck_assert_uint_lt(raft_fixture_time(&fixture) - t0, 10000);
        raft_fixture_step(&fixture);
    }
}

START_TEST(a_follower_with_a_leader_refuses_pre_votes_until_it_times_out)
{
    unsigned leader;
    raft_time ms = failover_ms(WATCH_NONE, &leader);
    /* Server 1 stood first, at 1100 ms, and server 2 turned it down: the
     * election waited for server 2's own timer. */
    ck_assert_uint_eq(leader, 2);
    ck_assert_uint_ge(ms, 1800);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(a_silent_leader_is_forgotten_after_an_election_timeout)
{
    unsigned leader;
    raft_time ms = failover_ms(WATCH_SILENCE, &leader);
    /* Server 2 forgot the leader at 1000 ms and granted server 1's
     * pre-vote at 1100 ms. */
    ck_assert_uint_eq(leader, 1);
    ck_assert_uint_lt(ms, 1500);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(a_refused_leader_is_forgotten_at_once)
{
    unsigned leader;
    raft_time ms = failover_ms(WATCH_REFUSED, &leader);
    /* Server 1's timer ran out 150 ms after the refusal (then up to a tick
     * and an election's round trips). */
    ck_assert_uint_eq(leader, 1);
    ck_assert_uint_lt(ms, 500);
    raft_fixture_close(&fixture);
}
END_TEST

START_TEST(leaderwatch_leaves_a_live_leader_alone)
{
    struct raft *r;
    raft_id id;
    raft_time now;
    fixture_setup(3);
    raft_fixture_elect(&fixture, 0);
    raft_fixture_step_until_elapsed(&fixture, 300);
    r = raft_fixture_get(&fixture, 1);
    id = raft_fixture_get(&fixture, 0)->id;
    now = raft_fixture_time(&fixture);
    /* Heard within the last heartbeat: not silent. */
    ck_assert(!jr__leaderwatch_silence(r, now));
    /* A refusal by another node than the leader changes nothing. */
    ck_assert(!jr__leaderwatch_refused(r, raft_fixture_get(&fixture, 2)->id,
                                       now, 100));
    ck_assert_uint_eq(r->follower_state.current_leader.id, id);
    /* Nor does either rule on the leader itself. */
    ck_assert(
        !jr__leaderwatch_silence(raft_fixture_get(&fixture, 0), now + 5000));
    ck_assert(
        !jr__leaderwatch_refused(raft_fixture_get(&fixture, 0), id, now, 100));
    raft_fixture_step_until_elapsed(&fixture, 2000);
    ck_assert_uint_eq(raft_fixture_leader_index(&fixture), 0);
    raft_fixture_close(&fixture);
}
END_TEST

/* ---- an old term's uncommitted tail on a follower (staletail.c) ---- */

/* Term of the entry at index in r's in-memory log, 0 if it has none. */
static raft_term term_at(const struct raft *r, raft_index index)
{
    const struct raft_log *l = &r->log;
    size_t n =
        l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
    if (index <= l->offset || index > l->offset + n) {
        return 0;
    }
    return l->entries[(l->front + (index - l->offset - 1)) % l->size].term;
}

/* The fixture's raft_io, with the follower's answers capped the way io.c
 * caps them. */
static struct {
    struct raft_io *io;
    raft_io_recv_cb recv;
    struct jr__staletail tail;
} wrapped[3];
static int (*stub_start)(struct raft_io *,
                         unsigned,
                         raft_io_tick_cb,
                         raft_io_recv_cb);
static int (*stub_send)(struct raft_io *,
                        struct raft_io_send *,
                        const struct raft_message *,
                        raft_io_send_cb);

static unsigned wrapped_of(const struct raft_io *io)
{
    unsigned i;
    for (i = 0; i < 3 && wrapped[i].io != io; i++) {
    }
    ck_assert_uint_lt(i, 3);
    return i;
}

static void wrapped_recv(struct raft_io *io, struct raft_message *m)
{
    unsigned i = wrapped_of(io);
    jr__staletail_recv(&wrapped[i].tail, io, wrapped[i].recv, m);
}

static int wrapped_start(struct raft_io *io,
                         unsigned msecs,
                         raft_io_tick_cb tick,
                         raft_io_recv_cb recv)
{
    wrapped[wrapped_of(io)].recv = recv;
    return stub_start(io, msecs, tick, wrapped_recv);
}

static int wrapped_send(struct raft_io *io,
                        struct raft_io_send *req,
                        const struct raft_message *m,
                        raft_io_send_cb cb)
{
    struct raft_message copy = *m;
    (void)jr__staletail_cap(&wrapped[wrapped_of(io)].tail, &copy);
    return stub_send(io, req, &copy, cb);
}

struct stale_tail_run {
    raft_index bad_commit; /* leader commit over server 0's stale entry */
    raft_term final_term;  /* term of server 0's entry 2 at the end */
    raft_index final_commit;
};

/* Server 0 led term 2 alone and holds an uncommitted entry 2 of that term;
 * servers 1 and 2 moved on to term 3. Server 1 is elected with server 2's
 * vote, server 2 is then cut off, and server 1 appends its own entry 2
 * before server 0's (slow) answer to its first heartbeat comes back. */
static struct stale_tail_run stale_tail(bool capped)
{
    struct stale_tail_run run = {0, 0, 0};
    struct raft_entry e;
    struct raft_buffer buf;
    struct raft_apply req;
    struct raft *leader, *r0;
    raft_time t0;
    unsigned i;
    fixture_setup_unstarted(3);
    memset(&e, 0, sizeof e);
    e.term = 2;
    e.type = RAFT_COMMAND;
    e.buf.base = raft_malloc(8);
    e.buf.len = 8;
    memset(e.buf.base, 1, 8);
    raft_fixture_add_entry(&fixture, 0, &e);
    raft_fixture_set_term(&fixture, 0, 2);
    raft_fixture_set_term(&fixture, 1, 3);
    raft_fixture_set_term(&fixture, 2, 3);
    raft_fixture_set_network_latency(&fixture, 0, 100);
    memset(wrapped, 0, sizeof wrapped);
    for (i = 0; i < 3; i++) {
        struct raft_io *io = &fixture.servers[i].io;
        wrapped[i].io = io;
        if (capped) {
            stub_start = io->start;
            stub_send = io->send;
            io->start = wrapped_start;
            io->send = wrapped_send;
        }
    }
    ck_assert_int_eq(raft_fixture_start(&fixture), 0);
    raft_fixture_elect(&fixture, 1);
    leader = raft_fixture_get(&fixture, 1);
    r0 = raft_fixture_get(&fixture, 0);
    ck_assert_uint_eq(leader->current_term, 4);
    ck_assert_uint_eq(term_at(r0, 2), 2);
    raft_fixture_disconnect(&fixture, 1, 2);
    raft_fixture_disconnect(&fixture, 2, 1);
    buf.base = raft_malloc(8);
    buf.len = 8;
    memset(buf.base, 2, 8);
    ck_assert_int_eq(raft_apply(leader, &req, &buf, 1, NULL), 0);
    t0 = raft_fixture_time(&fixture);
    while (raft_fixture_time(&fixture) - t0 < 3000) {
        raft_fixture_step(&fixture);
        if (leader->state == RAFT_LEADER && leader->commit_index >= 2 &&
            term_at(r0, 2) != leader->current_term && run.bad_commit == 0) {
            run.bad_commit = leader->commit_index;
        }
    }
    run.final_term = term_at(r0, 2);
    run.final_commit = r0->commit_index;
    raft_fixture_close(&fixture);
    return run;
}

START_TEST(raft_takes_a_stale_tail_for_a_copy_of_its_entry)
{
    /* The leader commits entry 2 with only itself holding it, and server 0
     * keeps its stale entry and commits nothing more: raft 0.15's answer
     * reports the whole log (src/recv_append_entries.c). */
    struct stale_tail_run run = stale_tail(false);
    ck_assert_uint_eq(run.bad_commit, 2);
    ck_assert_uint_eq(run.final_term, 2);
    ck_assert_uint_eq(run.final_commit, 1);
}
END_TEST

START_TEST(a_capped_answer_makes_the_follower_drop_its_stale_tail)
{
    struct stale_tail_run run = stale_tail(true);
    ck_assert_uint_eq(run.bad_commit, 0);
    ck_assert_uint_eq(run.final_term, 4);
    ck_assert_uint_eq(run.final_commit, 2);
}
END_TEST

Suite *raft_contract_suite(void)
{
    Suite *s = suite_create("raft_contract");
    TCase *tc = tcase_create("raft_uv");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, raft_uv_cannot_load_entries_not_padded_to_8_bytes);
    tcase_add_test(tc, raft_uv_loads_entries_padded_to_8_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pre_vote_is_off_by_default);
    tcase_add_test(tc, apply_of_a_batch_calls_back_once_with_the_first_index);
    tcase_add_test(
        tc, a_follower_with_a_leader_refuses_pre_votes_until_it_times_out);
    tcase_add_test(tc, a_silent_leader_is_forgotten_after_an_election_timeout);
    tcase_add_test(tc, a_refused_leader_is_forgotten_at_once);
    tcase_add_test(tc, leaderwatch_leaves_a_live_leader_alone);
    tcase_add_test(tc, raft_takes_a_stale_tail_for_a_copy_of_its_entry);
    tcase_add_test(tc, a_capped_answer_makes_the_follower_drop_its_stale_tail);
    suite_add_tcase(s, tc);
    return s;
}
