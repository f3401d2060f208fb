/* test_node.c: the public node API on one real single-voter node: open,
 * bootstrap, start, writes, barriers, status, stop and restart. */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
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

#define WAIT_MS 5000 /* upper bound of any wait; a healthy run takes ms */

/* ---- a counter state machine ---- */

/* Each command adds to a total: an 8-byte command its value, any other
 * its length. A successful apply returns {count, index}. */
struct counter {
    uv_mutex_t mutex;
    uint64_t count;      /* commands applied */
    uint64_t total;      /* sum of their values */
    uint64_t last_index; /* index of the last command applied */
    bool out_of_order;   /* an index was not above the one before */
    bool fail;           /* apply returns non-zero while set */
    unsigned restores;   /* successful restore() calls */
};

struct counter_result {
    uint64_t count;
    uint64_t index;
};

static int counter_apply(void *data,
                         uint64_t index,
                         const void *buf,
                         size_t len,
                         void **result,
                         size_t *result_len)
{
    struct counter *c = data;
    struct counter_result *r;
    uint64_t v = len;
    uv_mutex_lock(&c->mutex);
    if (index <= c->last_index) {
        c->out_of_order = true;
    }
    c->last_index = index;
    if (c->fail) {
        uv_mutex_unlock(&c->mutex);
        return 1;
    }
    if (len == sizeof v) {
        memcpy(&v, buf, sizeof v);
    }
    c->count++;
    c->total += v;
    r = jr_malloc(sizeof *r);
    if (r != NULL) {
        r->count = c->count;
        r->index = index;
        *result = r;
        *result_len = sizeof *r;
    }
    uv_mutex_unlock(&c->mutex);
    return 0;
}

static int counter_snapshot(void *data, struct jr_snapshot_writer *w)
{
    struct counter *c = data;
    uint64_t state[3];
    uv_mutex_lock(&c->mutex);
    state[0] = c->count;
    state[1] = c->total;
    state[2] = c->last_index;
    uv_mutex_unlock(&c->mutex);
    return jr_snapshot_write(w, state, sizeof state);
}

static int counter_restore(void *data, struct jr_snapshot_reader *r)
{
    struct counter *c = data;
    uint64_t state[3];
    if (jr_snapshot_remaining(r) != sizeof state ||
        jr_snapshot_read(r, state, sizeof state) != sizeof state) {
        return 1;
    }
    uv_mutex_lock(&c->mutex);
    c->count = state[0];
    c->total = state[1];
    c->last_index = state[2];
    c->restores++;
    uv_mutex_unlock(&c->mutex);
    return 0;
}

/* A copy of the counter's state taken under its lock. */
static struct counter counter_get(struct counter *c)
{
    struct counter copy;
    uv_mutex_lock(&c->mutex);
    copy = *c;
    uv_mutex_unlock(&c->mutex);
    return copy;
}

static void counter_set_fail(struct counter *c, bool fail)
{
    uv_mutex_lock(&c->mutex);
    c->fail = fail;
    uv_mutex_unlock(&c->mutex);
}

/* ---- fixture: one node in a temporary directory ---- */

struct fixture {
    char dir[64];      /* temporary directory, removed at teardown */
    char data_dir[96]; /* dir/data, created by jr_node_open */
    char address[32];  /* 127.0.0.1:<free port> */
    struct counter state;
    struct jr_fsm fsm;
    struct jr_config cfg;
    struct jr_node *node;
};

static struct fixture F;

static void discard_log(void *data, int level, const char *message)
{
    (void)data;
    (void)level;
    (void)message;
}

/* A port that was free a moment ago: bind port 0 and read what we got. */
static void counter_reset(void)
{
    uv_mutex_destroy(&F.state.mutex);
    memset(&F.state, 0, sizeof F.state);
    ck_assert_int_eq(uv_mutex_init(&F.state.mutex), 0);
}

static void setup(void)
{
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/jr-node-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(F.dir));
    snprintf(F.data_dir, sizeof F.data_dir, "%s/data", F.dir);
    snprintf(F.address, sizeof F.address, "127.0.0.1:%u", tu_free_port());
    ck_assert_int_eq(uv_mutex_init(&F.state.mutex), 0);
    F.fsm.data = &F.state;
    F.fsm.apply = counter_apply;
    F.fsm.snapshot = counter_snapshot;
    F.fsm.restore = counter_restore;
    jr_config_init(&F.cfg);
    F.cfg.id = 1;
    F.cfg.address = F.address;
    F.cfg.data_dir = F.data_dir;
    F.cfg.election_timeout_ms = 200;
    F.cfg.heartbeat_timeout_ms = 20;
    F.cfg.log_cb = discard_log;
    F.cfg.fsm = &F.fsm;
}

static void teardown(void)
{
    if (F.node != NULL) {
        jr_node_close(F.node);
        F.node = NULL;
    }
    uv_mutex_destroy(&F.state.mutex);
    if (F.dir[0] != '\0') {
        tu_rm_rf(F.dir);
    }
}

static void open_node(void)
{
    struct jr_error err;
    int rv = jr_node_open(&F.cfg, &F.node, &err);
    ck_assert_msg(rv == 0, "open: %d %s", rv, err.message);
}

static int bootstrap_self(void)
{
    struct jr_member self = {F.cfg.id, F.address};
    struct jr_error err;
    int rv = jr_node_bootstrap(F.node, &self, 1, &err);
    ck_assert_msg(rv == 0, "bootstrap: %d %s", rv, err.message);
    return rv;
}

static void start_node(void)
{
    struct jr_error err;
    int rv = jr_node_start(F.node, &err);
    ck_assert_msg(rv == 0, "start: %d %s", rv, err.message);
}

static void start_leader(void)
{
    open_node();
    bootstrap_self();
    start_node();
    tu_wait_leader(F.node, WAIT_MS);
}

/* Close the node and open it again on the same directory with a fresh
 * state machine, then start it, optionally bootstrapping it again first. */
static void restart(bool bootstrap_again)
{
    jr_node_close(F.node);
    F.node = NULL;
    counter_reset();
    open_node();
    if (bootstrap_again) {
        bootstrap_self();
    }
    start_node();
    tu_wait_leader(F.node, WAIT_MS);
}

static struct counter_result apply_value(uint64_t v)
{
    struct counter_result res;
    struct jr_error err;
    void *result = NULL;
    size_t result_len = 0;
    int rv = jr_apply_sync(F.node, &v, sizeof v, 0, &result, &result_len, &err);
    ck_assert_msg(rv == 0, "apply: %d %s", rv, err.message);
    ck_assert_ptr_nonnull(result);
    ck_assert_uint_eq(result_len, sizeof res);
    memcpy(&res, result, sizeof res);
    jr_free(result);
    return res;
}

static struct jr_status *status(void)
{
    struct jr_status *st = NULL;
    ck_assert_int_eq(jr_node_status(F.node, &st), 0);
    ck_assert_ptr_nonnull(st);
    return st;
}

/* ---- completions of asynchronous requests ---- */

#define MAX_REQS 256

struct tracker {
    uv_mutex_t mutex;
    uv_cond_t cond;
    unsigned done;            /* callbacks run */
    unsigned calls[MAX_REQS]; /* callbacks run per request */
    int status[MAX_REQS];
    uint64_t result_index[MAX_REQS];
    bool on_caller_thread; /* some callback ran on the test thread */
    uv_thread_t caller;
    bool accepted[MAX_REQS]; /* jr_apply returned 0 */
    struct jr_apply reqs[MAX_REQS];
    /* Blocking calls made from a callback (loop thread). */
    bool try_blocking;
    int sync_rv, barrier_rv, status_rv, stop_rv;
};

static void tracker_init(struct tracker *t)
{
    unsigned i;
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(uv_mutex_init(&t->mutex), 0);
    ck_assert_int_eq(uv_cond_init(&t->cond), 0);
    t->caller = uv_thread_self();
    for (i = 0; i < MAX_REQS; i++) {
        t->reqs[i].data = t;
    }
}

static void tracker_close(struct tracker *t)
{
    uv_cond_destroy(&t->cond);
    uv_mutex_destroy(&t->mutex);
}

static void tracker_cb(struct jr_apply *req,
                       int st,
                       const void *result,
                       size_t result_len)
{
    struct tracker *t = req->data;
    unsigned i = (unsigned)(req - t->reqs);
    uv_thread_t self = uv_thread_self();
    struct counter_result r = {0, 0};
    if (st == 0 && result != NULL && result_len == sizeof r) {
        memcpy(&r, result, sizeof r);
    }
    if (t->try_blocking) {
        struct jr_status *s = NULL;
        t->try_blocking = false;
        t->sync_rv = jr_apply_sync(F.node, "x", 1, 0, NULL, NULL, NULL);
        t->barrier_rv = jr_barrier_sync(F.node, 0, NULL);
        t->status_rv = jr_node_status(F.node, &s);
        t->stop_rv = jr_node_stop(F.node);
    }
    uv_mutex_lock(&t->mutex);
    t->calls[i]++;
    t->status[i] = st;
    t->result_index[i] = r.index;
    if (uv_thread_equal(&self, &t->caller)) {
        t->on_caller_thread = true;
    }
    t->done++;
    uv_cond_signal(&t->cond);
    uv_mutex_unlock(&t->mutex);
}

/* Wait until n callbacks have run. */
static void tracker_wait(struct tracker *t, unsigned n)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;
    uv_mutex_lock(&t->mutex);
    while (t->done < n) {
        uint64_t now = uv_hrtime();
        if (now >= deadline) {
            break;
        }
        (void)uv_cond_timedwait(&t->cond, &t->mutex, deadline - now);
    }
    uv_mutex_unlock(&t->mutex);
    ck_assert_msg(t->done >= n, "%u of %u callbacks after %d ms", t->done, n,
                  WAIT_MS);
}

/* ---- configuration ---- */

START_TEST(config_init_fills_defaults)
{
    struct jr_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    jr_config_init(&cfg);
    ck_assert_uint_eq(cfg.size, sizeof cfg);
    ck_assert_uint_eq(cfg.version, JR_CONFIG_VERSION);
    ck_assert_uint_eq(cfg.election_timeout_ms, 1000);
    ck_assert_uint_eq(cfg.heartbeat_timeout_ms, 100);
    ck_assert_uint_eq(cfg.snapshot_threshold, 8192);
    ck_assert_uint_eq(cfg.snapshot_trailing, 2048);
    ck_assert_uint_eq(cfg.apply_timeout_ms, 10000);
    ck_assert_int_eq(cfg.log_level, JR_LOG_INFO);
    ck_assert_uint_eq(cfg.id, 0);
    ck_assert_ptr_null(cfg.address);
    ck_assert_ptr_null(cfg.data_dir);
    ck_assert_ptr_null(cfg.name);
    ck_assert_ptr_null(cfg.log_cb);
    ck_assert_ptr_null(cfg.fsm);
}
END_TEST

/* ---- open ---- */

/* jr_node_open(cfg) must fail with JR_EINVAL and a message containing
 * mention. */
static void expect_open_einval(const struct jr_config *cfg, const char *mention)
{
    struct jr_node *node = NULL;
    struct jr_error err;
    int rv;
    memset(&err, 0, sizeof err);
    rv = jr_node_open(cfg, &node, &err);
    if (rv == 0) {
        jr_node_close(node);
    }
    ck_assert_msg(rv == JR_EINVAL, "open returned %d, want JR_EINVAL (%s)", rv,
                  mention);
    ck_assert_int_eq(err.code, JR_EINVAL);
    ck_assert_msg(strstr(err.message, mention) != NULL,
                  "message \"%s\" does not mention \"%s\"", err.message,
                  mention);
}

START_TEST(open_rejects_config_without_fsm)
{
    struct jr_config cfg = F.cfg;
    struct jr_fsm partial = F.fsm;
    cfg.fsm = NULL;
    expect_open_einval(&cfg, "fsm");
    partial.snapshot = NULL;
    cfg.fsm = &partial;
    expect_open_einval(&cfg, "fsm");
}
END_TEST

START_TEST(open_rejects_id_0)
{
    struct jr_config cfg = F.cfg;
    cfg.id = 0;
    expect_open_einval(&cfg, "id");
}
END_TEST

START_TEST(open_rejects_address_without_port)
{
    struct jr_config cfg = F.cfg;
    cfg.address = "127.0.0.1";
    expect_open_einval(&cfg, "127.0.0.1");
    expect_open_einval(&cfg, "port");
}
END_TEST

START_TEST(open_rejects_out_of_range_port)
{
    struct jr_config cfg = F.cfg;
    cfg.address = "127.0.0.1:99999";
    expect_open_einval(&cfg, "127.0.0.1:99999");
    cfg.address = "host:99999";
    expect_open_einval(&cfg, "host:99999");
    cfg.address = "127.0.0.1:0";
    expect_open_einval(&cfg, "port");
}
END_TEST

START_TEST(open_rejects_non_ipv4_host)
{
    struct jr_config cfg = F.cfg;
    cfg.address = "localhost:9000";
    expect_open_einval(&cfg, "IPv4");
}
END_TEST

START_TEST(open_rejects_uninitialised_config)
{
    struct jr_config cfg = F.cfg;
    cfg.version = 0;
    expect_open_einval(&cfg, "jr_config_init");
    cfg = F.cfg;
    cfg.size = 8;
    expect_open_einval(&cfg, "jr_config_init");
}
END_TEST

START_TEST(open_rejects_election_timeout_under_twice_heartbeat)
{
    struct jr_config cfg = F.cfg;
    cfg.election_timeout_ms = 30;
    cfg.heartbeat_timeout_ms = 20;
    expect_open_einval(&cfg, "heartbeat");
}
END_TEST

START_TEST(open_creates_data_dir_and_sets_id)
{
    struct stat st;
    ck_assert_int_ne(stat(F.data_dir, &st), 0);
    open_node();
    ck_assert_int_eq(stat(F.data_dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(jr_node_id(F.node), 1);
    ck_assert_str_eq(jr_node_cluster_id(F.node), "");
}
END_TEST

START_TEST(open_twice_on_same_dir_fails_with_elocked)
{
    struct jr_node *second = NULL;
    struct jr_error err;
    int rv;
    open_node();
    memset(&err, 0, sizeof err);
    rv = jr_node_open(&F.cfg, &second, &err);
    if (rv == 0) {
        jr_node_close(second);
    }
    ck_assert_int_eq(rv, JR_ELOCKED);
    ck_assert_int_eq(err.code, JR_ELOCKED);
    ck_assert_ptr_nonnull(strstr(err.message, F.data_dir));
}
END_TEST

START_TEST(open_with_another_id_fails_with_emismatch_naming_both)
{
    struct jr_node *other = NULL;
    struct jr_error err;
    int rv;
    F.cfg.id = 1234;
    open_node();
    jr_node_close(F.node);
    F.node = NULL;
    F.cfg.id = 5678;
    memset(&err, 0, sizeof err);
    rv = jr_node_open(&F.cfg, &other, &err);
    if (rv == 0) {
        jr_node_close(other);
    }
    ck_assert_int_eq(rv, JR_EMISMATCH);
    ck_assert_int_eq(err.code, JR_EMISMATCH);
    ck_assert_msg(strstr(err.message, "1234") != NULL &&
                      strstr(err.message, "5678") != NULL,
                  "message \"%s\" does not name both ids", err.message);
    /* The refused open released the lock: the right id still opens. */
    F.cfg.id = 1234;
    open_node();
}
END_TEST

START_TEST(node_never_started_closes_cleanly_and_unlocks)
{
    open_node();
    jr_node_close(F.node);
    F.node = NULL;
    /* Bootstrapped but never started, too. */
    open_node();
    bootstrap_self();
    jr_node_close(F.node);
    F.node = NULL;
    open_node();
    ck_assert_int_eq(strlen(jr_node_cluster_id(F.node)), 32);
}
END_TEST

START_TEST(calls_before_start_fail_with_estate)
{
    struct tracker t;
    struct jr_status *st = NULL;
    struct jr_error err;
    open_node();
    bootstrap_self();
    tracker_init(&t);
    ck_assert_int_eq(jr_apply(F.node, &t.reqs[0], "x", 1, tracker_cb),
                     JR_ESTATE);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_apply_sync(F.node, "x", 1, 0, NULL, NULL, &err),
                     JR_ESTATE);
    ck_assert_str_ne(err.message, "");
    ck_assert_int_eq(jr_barrier_sync(F.node, 0, NULL), JR_ESTATE);
    ck_assert_int_eq(jr_node_status(F.node, &st), JR_ESTATE);
    ck_assert_ptr_null(st);
    /* Still startable afterwards, and the refused request never ran. */
    start_node();
    tu_wait_leader(F.node, WAIT_MS);
    ck_assert_int_eq(jr_barrier_sync(F.node, 0, NULL), 0);
    ck_assert_uint_eq(t.done, 0);
    ck_assert_uint_eq(counter_get(&F.state).count, 0);
    tracker_close(&t);
}
END_TEST

/* ---- bootstrap ---- */

START_TEST(bootstrap_single_node_sets_random_cluster_id)
{
    const char *id;
    size_t i;
    open_node();
    bootstrap_self();
    id = jr_node_cluster_id(F.node);
    ck_assert_uint_eq(strlen(id), 32);
    for (i = 0; i < 32; i++) {
        ck_assert_msg(
            (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'),
            "cluster id '%s' is not hex", id);
    }
}
END_TEST

START_TEST(bootstrap_again_with_same_members_returns_0)
{
    char cluster[40];
    open_node();
    bootstrap_self();
    snprintf(cluster, sizeof cluster, "%s", jr_node_cluster_id(F.node));
    ck_assert_int_eq(bootstrap_self(), 0);
    ck_assert_str_eq(jr_node_cluster_id(F.node), cluster);
    jr_node_close(F.node);
    F.node = NULL;
    open_node();
    ck_assert_str_eq(jr_node_cluster_id(F.node), cluster);
    ck_assert_int_eq(bootstrap_self(), 0);
    ck_assert_str_eq(jr_node_cluster_id(F.node), cluster);
}
END_TEST

START_TEST(bootstrap_with_different_members_fails_with_emismatch)
{
    char other_address[32];
    struct jr_member members[2];
    struct jr_error err;
    snprintf(other_address, sizeof other_address, "127.0.0.1:%u",
             tu_free_port());
    members[0].id = F.cfg.id;
    members[0].address = F.address;
    members[1].id = 2;
    members[1].address = other_address;
    open_node();
    bootstrap_self();
    jr_node_close(F.node);
    F.node = NULL;
    open_node();
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_node_bootstrap(F.node, members, 2, &err), JR_EMISMATCH);
    ck_assert_int_eq(err.code, JR_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(err.message, F.data_dir));
    /* Refused without changing anything: the original list still
     * matches. */
    ck_assert_int_eq(bootstrap_self(), 0);
}
END_TEST

START_TEST(bootstrap_rejects_list_without_this_node)
{
    struct jr_member other = {2, "127.0.0.1:9"};
    struct jr_error err;
    open_node();
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_node_bootstrap(F.node, &other, 1, &err), JR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "not in the member list"));
    ck_assert_str_eq(jr_node_cluster_id(F.node), "");
}
END_TEST

START_TEST(bootstrap_after_start_fails_with_estate)
{
    struct jr_member self = {1, NULL};
    struct jr_error err;
    start_leader();
    self.address = F.address;
    ck_assert_int_eq(jr_node_bootstrap(F.node, &self, 1, &err), JR_ESTATE);
}
END_TEST

/* ---- writes ---- */

START_TEST(apply_sync_returns_fsm_results_with_increasing_indexes)
{
    uint64_t i, prev_index = 0;
    struct counter c;
    start_leader();
    for (i = 1; i <= 100; i++) {
        struct counter_result r = apply_value(i);
        ck_assert_uint_eq(r.count, i);
        ck_assert_uint_gt(r.index, prev_index);
        prev_index = r.index;
    }
    c = counter_get(&F.state);
    ck_assert_uint_eq(c.count, 100);
    ck_assert_uint_eq(c.total, 5050);
    ck_assert_uint_eq(c.last_index, prev_index);
    ck_assert(!c.out_of_order);
}
END_TEST

START_TEST(apply_sync_without_result_pointer_still_applies)
{
    struct jr_error err;
    start_leader();
    ck_assert_int_eq(jr_apply_sync(F.node, "abc", 3, 0, NULL, NULL, &err), 0);
    ck_assert_uint_eq(counter_get(&F.state).total, 3);
}
END_TEST

START_TEST(empty_command_is_applied_with_length_0)
{
    struct jr_error err;
    void *result = NULL;
    size_t result_len = 0;
    struct counter_result r;
    start_leader();
    (void)apply_value(7);
    ck_assert_int_eq(
        jr_apply_sync(F.node, NULL, 0, 0, &result, &result_len, &err), 0);
    ck_assert_uint_eq(result_len, sizeof r);
    memcpy(&r, result, sizeof r);
    jr_free(result);
    ck_assert_uint_eq(r.count, 2);
    ck_assert_uint_eq(counter_get(&F.state).total, 7);
}
END_TEST

START_TEST(async_apply_calls_back_once_per_request_on_loop_thread)
{
    enum { N = 50 };
    struct tracker t;
    uint64_t v;
    unsigned i;
    start_leader();
    tracker_init(&t);
    for (i = 0; i < N; i++) {
        v = i;
        ck_assert_int_eq(jr_apply(F.node, &t.reqs[i], &v, sizeof v, tracker_cb),
                         0);
    }
    tracker_wait(&t, N);
    /* Anything still to come would be delivered before this barrier. */
    ck_assert_int_eq(jr_barrier_sync(F.node, 0, NULL), 0);
    uv_mutex_lock(&t.mutex);
    ck_assert_uint_eq(t.done, N);
    ck_assert(!t.on_caller_thread);
    for (i = 0; i < N; i++) {
        ck_assert_uint_eq(t.calls[i], 1);
        ck_assert_int_eq(t.status[i], 0);
        ck_assert_uint_eq(t.reqs[i].index, t.result_index[i]);
        if (i > 0) {
            /* One thread's submissions are applied in order. */
            ck_assert_uint_gt(t.reqs[i].index, t.reqs[i - 1].index);
        }
    }
    uv_mutex_unlock(&t.mutex);
    ck_assert_uint_eq(counter_get(&F.state).total, N * (N - 1) / 2);
    tracker_close(&t);
}
END_TEST

START_TEST(blocking_calls_on_loop_thread_fail_with_edeadlk)
{
    struct tracker t;
    start_leader();
    tracker_init(&t);
    t.try_blocking = true;
    ck_assert_int_eq(jr_apply(F.node, &t.reqs[0], "x", 1, tracker_cb), 0);
    tracker_wait(&t, 1);
    ck_assert_int_eq(t.sync_rv, JR_EDEADLK);
    ck_assert_int_eq(t.barrier_rv, JR_EDEADLK);
    ck_assert_int_eq(t.status_rv, JR_EDEADLK);
    ck_assert_int_eq(t.stop_rv, JR_EDEADLK);
    /* The node is still running. */
    (void)apply_value(1);
    tracker_close(&t);
}
END_TEST

START_TEST(barrier_sync_succeeds_on_single_leader)
{
    struct jr_error err;
    struct jr_status *st;
    struct counter_result r;
    start_leader();
    r = apply_value(3);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_barrier_sync(F.node, 1000, &err), 0);
    st = status();
    ck_assert_uint_ge(st->applied_index, r.index);
    jr_status_free(st);
}
END_TEST

START_TEST(apply_of_over_64_mib_fails_with_etoobig)
{
    size_t len = (size_t)65 << 20;
    char *big = calloc(1, len);
    struct tracker t;
    struct jr_error err;
    ck_assert_ptr_nonnull(big);
    start_leader();
    tracker_init(&t);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_apply_sync(F.node, big, len, 0, NULL, NULL, &err),
                     JR_ETOOBIG);
    ck_assert_int_eq(err.code, JR_ETOOBIG);
    ck_assert_int_eq(jr_apply(F.node, &t.reqs[0], big, len, tracker_cb),
                     JR_ETOOBIG);
    free(big);
    ck_assert_int_eq(jr_barrier_sync(F.node, 0, NULL), 0);
    ck_assert_uint_eq(t.done, 0);
    ck_assert_uint_eq(counter_get(&F.state).count, 0);
    tracker_close(&t);
}
END_TEST

START_TEST(apply_sync_reports_eapply_when_fsm_fails)
{
    struct jr_error err;
    void *result = NULL;
    struct counter_result r;
    start_leader();
    counter_set_fail(&F.state, true);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr_apply_sync(F.node, "x", 1, 0, &result, NULL, &err),
                     JR_EAPPLY);
    ck_assert_int_eq(err.code, JR_EAPPLY);
    ck_assert_str_ne(err.message, "");
    counter_set_fail(&F.state, false);
    /* A failed command does not stop the log. */
    r = apply_value(5);
    ck_assert_uint_eq(r.count, 1);
    ck_assert_uint_eq(counter_get(&F.state).total, 5);
}
END_TEST

START_TEST(apply_after_stop_fails_without_callback)
{
    struct tracker t;
    struct jr_error err;
    start_leader();
    (void)apply_value(1);
    ck_assert_int_eq(jr_node_stop(F.node), 0);
    ck_assert_int_eq(jr_node_stop(F.node), 0); /* idempotent */
    tracker_init(&t);
    ck_assert_int_ne(jr_apply(F.node, &t.reqs[0], "x", 1, tracker_cb), 0);
    memset(&err, 0, sizeof err);
    ck_assert_int_ne(jr_apply_sync(F.node, "x", 1, 0, NULL, NULL, &err), 0);
    ck_assert_int_ne(err.code, 0);
    ck_assert_int_ne(jr_barrier_sync(F.node, 0, NULL), 0);
    jr_node_close(F.node);
    F.node = NULL;
    /* The loop thread is gone: a callback could only have run by now. */
    ck_assert_uint_eq(t.done, 0);
    ck_assert_uint_eq(counter_get(&F.state).count, 1);
    tracker_close(&t);
}
END_TEST

/* Submits MAX_REQS writes, one every 100 us, until one is refused. */
static void submitter_main(void *arg)
{
    struct tracker *t = arg;
    unsigned i;
    for (i = 0; i < MAX_REQS; i++) {
        int rv = jr_apply(F.node, &t->reqs[i], "y", 1, tracker_cb);
        uv_mutex_lock(&t->mutex);
        t->accepted[i] = rv == 0;
        uv_mutex_unlock(&t->mutex);
        if (rv != 0) {
            break;
        }
        usleep(100);
    }
}

START_TEST(stop_under_load_completes_every_accepted_apply_exactly_once)
{
    struct tracker t;
    uv_thread_t submitter;
    unsigned i, accepted = 0, ok = 0;
    start_leader();
    tracker_init(&t);
    ck_assert_int_eq(uv_thread_create(&submitter, submitter_main, &t), 0);
    /* Stop while writes keep coming: several appends are queued behind
     * the one being written. */
    uv_sleep(10);
    ck_assert_int_eq(jr_node_stop(F.node), 0);
    ck_assert_int_eq(uv_thread_join(&submitter), 0);
    /* stop has joined the loop thread: every callback has run. */
    uv_mutex_lock(&t.mutex);
    for (i = 0; i < MAX_REQS; i++) {
        if (!t.accepted[i]) {
            ck_assert_msg(t.calls[i] == 0,
                          "refused request %u called back %u times", i,
                          t.calls[i]);
            continue;
        }
        accepted++;
        ck_assert_msg(t.calls[i] == 1, "request %u: %u callbacks", i,
                      t.calls[i]);
        if (t.status[i] == 0) {
            ok++;
            ck_assert_uint_gt(t.reqs[i].index, 0);
        } else {
            ck_assert_msg(t.reqs[i].errmsg[0] != '\0',
                          "request %u failed with %d and no message", i,
                          t.status[i]);
        }
    }
    ck_assert_uint_eq(t.done, accepted);
    ck_assert_uint_gt(accepted, 0);
    uv_mutex_unlock(&t.mutex);
    /* Whatever succeeded was applied. */
    ck_assert_uint_ge(counter_get(&F.state).count, ok);
    tracker_close(&t);
}
END_TEST

/* ---- status ---- */

START_TEST(status_of_single_leader_shows_itself_as_voter)
{
    struct jr_status *st;
    struct counter_result r;
    start_leader();
    r = apply_value(1);
    st = status();
    ck_assert_uint_eq(st->id, 1);
    ck_assert_str_eq(st->name, "node1");
    ck_assert_str_eq(st->address, F.address);
    ck_assert_str_eq(st->cluster_id, jr_node_cluster_id(F.node));
    ck_assert_uint_eq(strlen(st->cluster_id), 32);
    ck_assert_int_eq(st->state, JR_STATE_LEADER);
    ck_assert_uint_ge(st->term, 1);
    ck_assert_uint_eq(st->leader_id, 1);
    ck_assert_str_eq(st->leader_address, F.address);
    ck_assert_uint_ge(st->commit_index, r.index);
    ck_assert_uint_ge(st->applied_index, r.index);
    ck_assert_uint_ge(st->last_index, st->applied_index);
    ck_assert_int_eq(st->health, 0);
    ck_assert_uint_eq(st->n_peers, 1);
    ck_assert_ptr_nonnull(st->peers);
    ck_assert_uint_eq(st->peers[0].id, 1);
    ck_assert_int_eq(st->peers[0].role, JR_ROLE_VOTER);
    ck_assert_str_eq(st->peers[0].address, F.address);
    ck_assert(st->peers[0].reachable);
    ck_assert_int_eq(st->peers[0].last_contact_ms, 0);
    jr_status_free(st);
}
END_TEST

START_TEST(status_uses_configured_name)
{
    struct jr_status *st;
    F.cfg.name = "alpha";
    start_leader();
    st = status();
    ck_assert_str_eq(st->name, "alpha");
    ck_assert_str_eq(st->peers[0].name, "alpha");
    jr_status_free(st);
}
END_TEST

/* ---- restart ---- */

/* Write 100 commands with snapshots every 16 entries and wait until one
 * has been taken; returns the index of the last command. */
static uint64_t write_past_snapshots(void)
{
    uint64_t i, last = 0, deadline;
    F.cfg.snapshot_threshold = 16;
    F.cfg.snapshot_trailing = 8;
    start_leader();
    for (i = 1; i <= 100; i++) {
        last = apply_value(i).index;
    }
    deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;
    for (;;) {
        struct jr_status *st = status();
        uint64_t snap = st->snapshot_index;
        jr_status_free(st);
        if (snap > 0) {
            break;
        }
        ck_assert_msg(uv_hrtime() < deadline, "no snapshot after %d ms",
                      WAIT_MS);
        uv_sleep(5);
    }
    return last;
}

static void check_restored(uint64_t last)
{
    struct jr_error err;
    struct counter c;
    memset(&err, 0, sizeof err);
    ck_assert_msg(jr_barrier_sync(F.node, 0, &err) == 0, "barrier: %s",
                  err.message);
    c = counter_get(&F.state);
    ck_assert_uint_eq(c.restores, 1);
    ck_assert_uint_eq(c.count, 100);
    ck_assert_uint_eq(c.total, 5050);
    ck_assert_uint_eq(c.last_index, last);
    ck_assert(!c.out_of_order);
    /* And the log goes on from there. */
    ck_assert_uint_eq(apply_value(1).count, 101);
}

START_TEST(restart_restores_state_from_snapshot_and_log)
{
    uint64_t last = write_past_snapshots();
    char cluster[40];
    snprintf(cluster, sizeof cluster, "%s", jr_node_cluster_id(F.node));
    restart(false);
    ck_assert_str_eq(jr_node_cluster_id(F.node), cluster);
    check_restored(last);
}
END_TEST

START_TEST(restart_bootstrapping_same_members_restores_state)
{
    uint64_t last = write_past_snapshots();
    restart(true);
    check_restored(last);
}
END_TEST

START_TEST(restart_without_snapshot_replays_the_log)
{
    uint64_t i, last = 0;
    struct counter c;
    start_leader();
    for (i = 1; i <= 10; i++) {
        last = apply_value(i).index;
    }
    restart(false);
    ck_assert_int_eq(jr_barrier_sync(F.node, 0, NULL), 0);
    c = counter_get(&F.state);
    ck_assert_uint_eq(c.restores, 0);
    ck_assert_uint_eq(c.count, 10);
    ck_assert_uint_eq(c.total, 55);
    ck_assert_uint_eq(c.last_index, last);
}
END_TEST

Suite *node_suite(void)
{
    Suite *s = suite_create("node");
    TCase *tc;

    tc = tcase_create("config");
    tcase_add_test(tc, config_init_fills_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_rejects_config_without_fsm);
    tcase_add_test(tc, open_rejects_id_0);
    tcase_add_test(tc, open_rejects_address_without_port);
    tcase_add_test(tc, open_rejects_out_of_range_port);
    tcase_add_test(tc, open_rejects_non_ipv4_host);
    tcase_add_test(tc, open_rejects_uninitialised_config);
    tcase_add_test(tc, open_rejects_election_timeout_under_twice_heartbeat);
    tcase_add_test(tc, open_creates_data_dir_and_sets_id);
    tcase_add_test(tc, open_twice_on_same_dir_fails_with_elocked);
    tcase_add_test(tc, open_with_another_id_fails_with_emismatch_naming_both);
    tcase_add_test(tc, node_never_started_closes_cleanly_and_unlocks);
    tcase_add_test(tc, calls_before_start_fail_with_estate);
    suite_add_tcase(s, tc);

    tc = tcase_create("bootstrap");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bootstrap_single_node_sets_random_cluster_id);
    tcase_add_test(tc, bootstrap_again_with_same_members_returns_0);
    tcase_add_test(tc, bootstrap_with_different_members_fails_with_emismatch);
    tcase_add_test(tc, bootstrap_rejects_list_without_this_node);
    tcase_add_test(tc, bootstrap_after_start_fails_with_estate);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, apply_sync_returns_fsm_results_with_increasing_indexes);
    tcase_add_test(tc, apply_sync_without_result_pointer_still_applies);
    tcase_add_test(tc, empty_command_is_applied_with_length_0);
    tcase_add_test(tc, async_apply_calls_back_once_per_request_on_loop_thread);
    tcase_add_test(tc, blocking_calls_on_loop_thread_fail_with_edeadlk);
    tcase_add_test(tc, barrier_sync_succeeds_on_single_leader);
    tcase_add_test(tc, apply_of_over_64_mib_fails_with_etoobig);
    tcase_add_test(tc, apply_sync_reports_eapply_when_fsm_fails);
    tcase_add_test(tc, apply_after_stop_fails_without_callback);
    tcase_add_test(tc,
                   stop_under_load_completes_every_accepted_apply_exactly_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("status");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, status_of_single_leader_shows_itself_as_voter);
    tcase_add_test(tc, status_uses_configured_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("restart");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, restart_restores_state_from_snapshot_and_log);
    tcase_add_test(tc, restart_bootstrapping_same_members_restores_state);
    tcase_add_test(tc, restart_without_snapshot_replays_the_log);
    suite_add_tcase(s, tc);
    return s;
}
