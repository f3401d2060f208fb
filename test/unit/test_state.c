/* test_state.c: jacod's cluster state machine (daemon/state.c) on a real
 * single-node libjacoraft node: observations add nodes and audit status
 * changes, labels are validated and audited, malformed commands change
 * nothing, the audit log keeps its bounds, and a snapshot restored at
 * restart gives back the same state. */
#include <arpa/inet.h>
#include <check.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemon/mp.h"
#include "../../daemon/state.h"
#include "jacoraft.h"
#include "suites.h"
#include "testutil.h"

static struct {
    unsigned max_events, max_age_s; /* what observations carry */
    char dir[64];
    char address[32];
    struct jd_state *state;
    struct jr_node *node;
} S;

static void quiet(void *data, int level, const char *message)
{
    (void)data;
    (void)level;
    (void)message;
}

/* Open (and, the first time, bootstrap) a single-node cluster whose FSM is
 * a fresh state with these audit bounds; snapshots every 16 entries. */
static void node_up(unsigned max_events, unsigned max_age_s, bool bootstrap)
{
    struct jr_config cfg;
    struct jr_error err;
    struct jr_member self;
    S.max_events = max_events;
    S.max_age_s = max_age_s;
    S.state = jd_state_new();
    ck_assert_ptr_nonnull(S.state);
    jr_config_init(&cfg);
    cfg.id = 1;
    cfg.address = S.address;
    cfg.data_dir = S.dir;
    cfg.fsm = jd_state_fsm(S.state);
    cfg.snapshot_threshold = 16;
    cfg.snapshot_trailing = 4;
    cfg.log_cb = quiet;
    ck_assert_int_eq(jr_node_open(&cfg, &S.node, &err), 0);
    if (bootstrap) {
        self.id = 1;
        self.address = S.address;
        ck_assert_int_eq(jr_node_bootstrap(S.node, &self, 1, &err), 0);
    }
    ck_assert_int_eq(jr_node_start(S.node, &err), 0);
    ck_assert_int_eq(jr_barrier_sync(S.node, 10000, &err), 0);
}

static void node_down(void)
{
    jr_node_close(S.node);
    S.node = NULL;
    jd_state_free(S.state);
    S.state = NULL;
}

static void setup(void)
{
    snprintf(S.dir, sizeof S.dir, "/tmp/jaco-test-state.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(S.dir));
    snprintf(S.address, sizeof S.address, "127.0.0.1:%u", tu_free_port());
}

static void teardown(void)
{
    if (S.node != NULL) {
        node_down();
    }
    tu_rm_rf(S.dir);
}

/* Apply buf; returns the state machine's result ("" for success). */
static const char *apply(char *buf, size_t len)
{
    static char out[512];
    struct jr_error err;
    void *result = NULL;
    size_t n = 0;
    ck_assert_int_eq(jr_apply_sync(S.node, buf, len, 10000, &result, &n, &err),
                     0);
    free(buf);
    snprintf(out, sizeof out, "%.*s", (int)n,
             result != NULL ? (char *)result : "");
    jr_free(result);
    return out;
}

static const char *observe(int status2, int64_t now)
{
    struct jd_observed o[2];
    char *buf;
    size_t len;
    memset(o, 0, sizeof o);
    o[0].id = 1;
    snprintf(o[0].name, sizeof o[0].name, "alpha");
    snprintf(o[0].address, sizeof o[0].address, "%s", S.address);
    snprintf(o[0].role, sizeof o[0].role, "voter");
    o[0].status = JD_NODE_STATUS_READY;
    o[0].last_seen_ms = now;
    o[1] = o[0];
    o[1].id = 2;
    snprintf(o[1].name, sizeof o[1].name, "beta");
    snprintf(o[1].address, sizeof o[1].address, "127.0.0.1:1");
    o[1].status = status2;
    ck_assert_int_eq(jd_cmd_observe(o, 2, 1, S.max_events, S.max_age_s,
                                    "tester", now, &buf, &len),
                     0);
    return apply(buf, len);
}

static const char *label(const char *node, const char *k, const char *v)
{
    const char *keys[1] = {k}, *values[1] = {v};
    char *buf;
    size_t len;
    ck_assert_int_eq(jd_cmd_label(node, keys, values, 1, NULL, 0, "tester",
                                  1000, &buf, &len),
                     0);
    return apply(buf, len);
}

/* The nodes or the audit log as one msgpack buffer, for comparisons and
 * searches. */
static char *packed(bool nodes, const char *type, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (nodes) {
        jd_state_pack_nodes(S.state, &pk);
    } else {
        jd_state_pack_audit(S.state, &pk, type, 0);
    }
    *len = sb.size;
    return sb.data;
}

static unsigned count_events(const char *type)
{
    msgpack_unpacked u;
    size_t len, off = 0;
    char *buf = packed(false, type, &len);
    unsigned n;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, buf, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    n = u.data.via.array.size;
    msgpack_unpacked_destroy(&u);
    free(buf);
    return n;
}

static bool contains(const char *buf, size_t len, const char *s)
{
    return memmem(buf, len, s, strlen(s)) != NULL;
}

START_TEST(observe_adds_nodes_and_audits_status_changes)
{
    size_t len;
    char *buf;
    node_up(100, 3600, true);
    ck_assert_str_eq(observe(JD_NODE_STATUS_READY, 1000), "");
    ck_assert_uint_eq(count_events("node.joined"), 2);
    ck_assert_uint_eq(count_events("leader.changed"), 1);
    ck_assert_uint_eq(jd_state_leader(S.state), 1);
    /* The same observation again changes nothing. */
    ck_assert_str_eq(observe(JD_NODE_STATUS_READY, 2000), "");
    ck_assert_uint_eq(count_events("node.status"), 2); /* UNKNOWN -> READY */
    ck_assert_str_eq(observe(JD_NODE_STATUS_UNREACHABLE, 3000), "");
    ck_assert_uint_eq(count_events("node.status"), 3);
    buf = packed(false, "node.status", &len);
    ck_assert(
        contains(buf, len, "NODE_STATUS_READY -> NODE_STATUS_UNREACHABLE"));
    free(buf);
    buf = packed(true, NULL, &len);
    ck_assert(contains(buf, len, "NODE_STATUS_UNREACHABLE"));
    free(buf);
}
END_TEST

START_TEST(labels_are_set_checked_and_audited)
{
    const char *keys[1] = {"zone"};
    size_t len;
    char *buf;
    node_up(100, 3600, true);
    ck_assert_str_eq(observe(JD_NODE_STATUS_READY, 1000), "");
    ck_assert_str_eq(label("beta", "zone", "eu-1a"), "");
    ck_assert_str_eq(label("beta", "zone", "eu-1b"), ""); /* replaced */
    ck_assert_str_eq(label("nosuch", "zone", "x"),
                     "not_found: no node named \"nosuch\"");
    ck_assert(strncmp(label("beta", "Bad Key", "x"), "invalid_argument:", 17) ==
              0);
    ck_assert(strncmp(label("beta", "ok", "has space"),
                      "invalid_argument:", 17) == 0);
    buf = packed(true, NULL, &len);
    ck_assert(contains(buf, len, "eu-1b"));
    ck_assert(!contains(buf, len, "eu-1a"));
    ck_assert(!contains(buf, len, "Bad Key"));
    free(buf);
    ck_assert_uint_eq(count_events("node.label"), 2);
    ck_assert_int_eq(jd_cmd_label("beta", NULL, NULL, 0, keys, 1, "tester",
                                  1000, &buf, &len),
                     0);
    ck_assert_str_eq(apply(buf, len), "");
    ck_assert_uint_eq(count_events("node.unlabel"), 1);
    buf = packed(true, NULL, &len);
    ck_assert(!contains(buf, len, "eu-1b"));
    free(buf);
}
END_TEST

static const char *remove_node(uint64_t id, const char *name, const char *how)
{
    char *buf;
    size_t len;
    ck_assert_int_eq(jd_cmd_remove(id, name, how, "tester", 4000, &buf, &len),
                     0);
    return apply(buf, len);
}

START_TEST(remove_forgets_the_node_and_its_labels_and_audits)
{
    size_t len;
    char *buf;
    uint64_t id = 0;
    node_up(100, 3600, true);
    ck_assert_str_eq(observe(JD_NODE_STATUS_UNREACHABLE, 1000), "");
    ck_assert_str_eq(label("beta", "zone", "eu-1a"), "");
    ck_assert(jd_state_node_id(S.state, "beta", &id));
    ck_assert_uint_eq(id, 2);
    ck_assert_str_eq(remove_node(2, "beta", "forced"), "");
    ck_assert(!jd_state_node_id(S.state, "beta", &id));
    buf = packed(true, NULL, &len);
    ck_assert(!contains(buf, len, "beta"));
    ck_assert(!contains(buf, len, "eu-1a"));
    ck_assert(contains(buf, len, "alpha"));
    free(buf);
    buf = packed(false, "node.removed", &len);
    ck_assert(contains(buf, len, "id 2, forced"));
    ck_assert(contains(buf, len, "tester"));
    free(buf);
    /* Found by name when the id differs; no record: still audited. */
    ck_assert_str_eq(remove_node(99, "alpha", "graceful"), "");
    ck_assert(!jd_state_node_id(S.state, "alpha", &id));
    ck_assert_str_eq(remove_node(7, "gamma", "raft remove-peer"), "");
    ck_assert_uint_eq(count_events("node.removed"), 3);
    buf = packed(false, "node.removed", &len);
    ck_assert(contains(buf, len, "(no record)"));
    free(buf);
    /* Labels on a removed node: not found. */
    ck_assert_str_eq(label("beta", "zone", "x"),
                     "not_found: no node named \"beta\"");
    ck_assert_uint_eq(jd_node_id_of_name("n1"), 626980046172116160ull);
}
END_TEST

START_TEST(malformed_commands_change_nothing)
{
    static const char *inputs[] = {
        "",
        "\xc1",
        "\x93\x01\x02\x03",
        "\x81\xa1t\xa3xyz",
        "\xdf\xff\xff\xff\xff", /* a map claiming 4 billion pairs */
    };
    size_t len, len2, i;
    char *before, *after;
    node_up(100, 3600, true);
    ck_assert_str_eq(observe(JD_NODE_STATUS_READY, 1000), "");
    before = packed(true, NULL, &len);
    for (i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = i == 4 ? 5 : strlen(inputs[i]);
        char *buf = malloc(n + 1);
        memcpy(buf, inputs[i], n);
        ck_assert(strncmp(apply(buf, n), "invalid_argument:", 17) == 0);
    }
    after = packed(true, NULL, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert(memcmp(before, after, len) == 0);
    free(before);
    free(after);
}
END_TEST

START_TEST(audit_keeps_its_count_and_age_bounds)
{
    unsigned i;
    node_up(5, 60, true);
    ck_assert_str_eq(observe(JD_NODE_STATUS_READY, 1000), "");
    ck_assert_uint_eq(count_events(NULL), 5); /* 2 joined, 2 status, leader */
    for (i = 0; i < 10; i++) {
        ck_assert_str_eq(label("alpha", "n", i % 2 ? "a" : "b"), "");
    }
    ck_assert_uint_eq(count_events(NULL), 5);
    ck_assert_uint_eq(count_events("node.label"), 5);
    /* An event 61 s after the others drops them all by age. */
    ck_assert_str_eq(observe(JD_NODE_STATUS_UNREACHABLE, 1000 + 61000), "");
    ck_assert_uint_eq(count_events(NULL), 1);
}
END_TEST

START_TEST(state_survives_a_restart_through_snapshots)
{
    size_t len, len2;
    char *before, *after;
    unsigned i, events;
    node_up(1000, 3600, true);
    ck_assert_str_eq(observe(JD_NODE_STATUS_READY, 1000), "");
    for (i = 0; i < 40; i++) { /* past the threshold of 16: snapshots */
        char v[8];
        snprintf(v, sizeof v, "v%u", i);
        ck_assert_str_eq(label("beta", "gen", v), "");
    }
    before = packed(true, NULL, &len);
    events = count_events(NULL);
    {
        /* Snapshots are written off the loop: wait for one, so that the
         * restart restores from it. */
        uint64_t snap = 0;
        for (i = 0; i < 1000 && snap < 16; i++) {
            struct jr_status *st;
            ck_assert_int_eq(jr_node_status(S.node, &st), 0);
            snap = st->snapshot_index;
            jr_status_free(st);
            if (snap < 16) {
                usleep(10000);
            }
        }
        ck_assert_uint_ge(snap, 16);
    }
    node_down();
    node_up(1000, 3600, false);
    after = packed(true, NULL, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert(memcmp(before, after, len) == 0);
    ck_assert_uint_eq(count_events(NULL), events);
    ck_assert_uint_eq(jd_state_leader(S.state), 1);
    free(before);
    free(after);
}
END_TEST

Suite *state_suite(void)
{
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("state");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, observe_adds_nodes_and_audits_status_changes);
    tcase_add_test(tc, labels_are_set_checked_and_audited);
    tcase_add_test(tc, remove_forgets_the_node_and_its_labels_and_audits);
    tcase_add_test(tc, malformed_commands_change_nothing);
    tcase_add_test(tc, audit_keeps_its_count_and_age_bounds);
    tcase_add_test(tc, state_survives_a_restart_through_snapshots);
    suite_add_tcase(s, tc);
    return s;
}
