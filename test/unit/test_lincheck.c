/* test_lincheck.c: the linearizability checker of test/lin on hand-written
 * histories, linearizable and not, and on its history parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lin/lin.h"
#include "suites.h"

static struct lin_history hist;
static struct lin_result res;
static char err[256];

static void teardown(void)
{
    lin_result_close(&res);
    lin_history_close(&hist);
}

/* Parse and check text with a generous budget; returns the verdict. */
static enum lin_verdict check_with(const char *text, uint64_t max_states)
{
    struct lin_limits limits = {30.0, max_states};
    lin_result_close(&res);
    lin_history_close(&hist);
    ck_assert_msg(
        lin_history_parse(&hist, text, strlen(text), err, sizeof err) == 0,
        "parse: %s", err);
    ck_assert_msg(lin_check(&hist, &limits, &res, err, sizeof err) == 0,
                  "check: %s", err);
    return res.verdict;
}

static enum lin_verdict check(const char *text)
{
    return check_with(text, 1000000);
}

/* The key result for key, which must be there. */
static const struct lin_key_result *key_result(const char *key)
{
    size_t i;
    for (i = 0; i < res.n_keys; i++) {
        if (strcmp(res.keys[i].key, key) == 0) {
            return &res.keys[i];
        }
    }
    ck_abort_msg("no result for key %s", key);
    return NULL;
}

/* The witness of key as the history's line numbers, "3,5,9". */
static const char *witness_lines(const char *key)
{
    static char buf[256];
    const struct lin_key_result *k = key_result(key);
    size_t i, len = 0;
    buf[0] = '\0';
    for (i = 0; i < k->n_witness; i++) {
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%u",
                                i > 0 ? "," : "", hist.ops[k->witness[i]].line);
    }
    return buf;
}

/* ---- linearizable histories ---- */

START_TEST(sequential_history_is_linearizable)
{
    ck_assert_int_eq(check("0 get x nil 0 1 ok\n"
                           "0 put x a 2 3 ok\n"
                           "1 get x a 4 5 ok\n"
                           "1 put x b 6 7 ok\n"
                           "0 get x b 8 9 ok\n"),
                     LIN_LINEARIZABLE);
    ck_assert_uint_eq(res.n_keys, 1);
    ck_assert_uint_eq(key_result("x")->n_ops, 5);
}
END_TEST

START_TEST(empty_history_is_linearizable)
{
    ck_assert_int_eq(check("# nothing recorded\n\n"), LIN_LINEARIZABLE);
    ck_assert_uint_eq(res.n_keys, 0);
}
END_TEST

START_TEST(read_overlapping_a_write_sees_old_or_new)
{
    /* put b runs 10..20; reads inside it may see a, then b, but once one
     * sees b no later one may see a. */
    ck_assert_int_eq(check("0 put x a 0 5 ok\n"
                           "0 put x b 10 20 ok\n"
                           "1 get x a 11 12 ok\n"
                           "2 get x b 13 14 ok\n"
                           "1 get x b 15 16 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(overlapping_writes_take_effect_in_either_order)
{
    /* a and b overlap: whichever the reads after both show is the last. */
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "1 put x b 1 9 ok\n"
                           "2 get x a 11 12 ok\n"
                           "2 get x a 13 14 ok\n"),
                     LIN_LINEARIZABLE);
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "1 put x b 1 9 ok\n"
                           "2 get x b 11 12 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(many_concurrent_clients_in_a_tangle)
{
    /* Five clients overlapping everywhere; one order explains it all:
     * a, c, b, d (reads between). */
    ck_assert_int_eq(check("0 put x a 0 50 ok\n"
                           "1 put x b 5 60 ok\n"
                           "2 put x c 10 40 ok\n"
                           "3 get x c 45 55 ok\n"
                           "4 get x a 1 30 ok\n"
                           "3 get x b 61 62 ok\n"
                           "4 put x d 63 70 ok\n"
                           "2 get x b 62 64 ok\n"
                           "0 get x d 71 72 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(same_instant_counts_as_concurrent)
{
    /* A read invoked at the very nanosecond a write completes may still
     * precede it. */
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "1 get x nil 10 11 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(failed_write_never_happened)
{
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 put x b 2 3 fail err=no_leader\n"
                           "0 get x a 4 5 ok\n"),
                     LIN_LINEARIZABLE);
    ck_assert_uint_eq(key_result("x")->n_model, 2);
}
END_TEST

START_TEST(unanswered_reads_are_ignored)
{
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 get x ? 2 3 info err=timeout\n"
                           "1 get x ? 4 5 fail err=no_leader\n"
                           "0 get x a 6 7 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(unknown_write_that_happened)
{
    /* The put of b timed out, and took effect: later reads see it. */
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 put x b 2 3 info err=timeout\n"
                           "0 get x b 4 5 ok\n"
                           "2 get x b 6 7 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(unknown_write_that_did_not_happen)
{
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 put x b 2 3 info err=leadership_lost\n"
                           "0 get x a 4 5 ok\n"
                           "2 get x a 100 101 ok\n"),
                     LIN_LINEARIZABLE);
    /* Nobody read b: it drops out before the search. */
    ck_assert_uint_eq(key_result("x")->n_model, 3);
}
END_TEST

START_TEST(unknown_write_may_take_effect_long_after)
{
    /* The client gave up at 3; the write lands between 30 and 40. */
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 put x b 2 3 info err=timeout\n"
                           "0 get x a 20 21 ok\n"
                           "0 get x a 28 30 ok\n"
                           "2 get x b 40 41 ok\n"),
                     LIN_LINEARIZABLE);
}
END_TEST

START_TEST(values_are_per_key)
{
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 put y a 0 1 ok\n"
                           "0 get y a 2 3 ok\n"
                           "1 get x a 2 3 ok\n"),
                     LIN_LINEARIZABLE);
    ck_assert_uint_eq(res.n_keys, 2);
}
END_TEST

/* ---- violations ---- */

START_TEST(stale_read_is_a_violation)
{
    /* b replaced a at 20, and a read begun at 30 still saw a. */
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "0 put x b 15 20 ok\n"
                           "1 get x b 21 22 ok\n"
                           "1 get x a 30 31 ok\n"),
                     LIN_VIOLATION);
    ck_assert_int_eq(key_result("x")->verdict, LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "1,2,4");
}
END_TEST

START_TEST(stale_read_is_found_in_a_long_history)
{
    /* 200 clean operations, one stale read among them, 200 more: the
     * witness is the stale read and the two writes around it. */
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc(cap);
    unsigned i, t = 0;
    ck_assert_ptr_nonnull(text);
    for (i = 0; i < 200; i++, t += 10) {
        len +=
            (size_t)snprintf(text + len, cap - len,
                             "%u put x v%u %u %u ok\n"
                             "%u get x v%u %u %u ok\n",
                             i % 3, i, t, t + 4, (i + 1) % 3, i, t + 5, t + 9);
    }
    len += (size_t)snprintf(text + len, cap - len, "2 get x v198 %u %u ok\n", t,
                            t + 1);
    for (t += 10; i < 400; i++, t += 10) {
        len += (size_t)snprintf(text + len, cap - len,
                                "%u put x v%u %u %u ok\n", i % 3, i, t, t + 4);
    }
    ck_assert_int_eq(check(text), LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "397,399,401");
    free(text);
}
END_TEST

START_TEST(lost_write_is_a_violation)
{
    /* put a was acknowledged, and then the key read absent. */
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "1 get x nil 11 12 ok\n"),
                     LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "1,2");
}
END_TEST

START_TEST(read_of_a_value_never_written_is_a_violation)
{
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "1 get x a 11 12 ok\n"
                           "1 get x zzz 13 14 ok\n"),
                     LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "3");
}
END_TEST

START_TEST(read_of_a_failed_write_is_a_violation)
{
    /* no_leader promises the write did not happen: it must not be seen. */
    ck_assert_int_eq(check("0 put x a 0 10 fail err=no_leader\n"
                           "1 get x a 11 12 ok\n"),
                     LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "2");
}
END_TEST

START_TEST(reads_cannot_flip_between_overlapping_writes)
{
    /* a and b overlap, but after both completed one of them is last: the
     * reads cannot see a, then b, then a again. */
    ck_assert_int_eq(check("0 put x a 0 10 ok\n"
                           "1 put x b 1 9 ok\n"
                           "2 get x a 11 12 ok\n"
                           "2 get x b 13 14 ok\n"),
                     LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "1,2,3,4");
}
END_TEST

START_TEST(concurrent_reads_cannot_disagree_in_order)
{
    /* Read 3 saw b and completed before read 4 began, which saw a again:
     * a new value seen, then the old one. */
    ck_assert_int_eq(check("0 put x a 0 5 ok\n"
                           "0 put x b 10 50 ok\n"
                           "1 get x b 12 20 ok\n"
                           "2 get x a 21 30 ok\n"),
                     LIN_VIOLATION);
}
END_TEST

START_TEST(unknown_write_cannot_be_undone)
{
    /* b (outcome unknown) was seen, so it happened; a, older, cannot come
     * back. */
    ck_assert_int_eq(check("0 put x a 0 1 ok\n"
                           "1 put x b 2 3 info err=timeout\n"
                           "0 get x b 4 5 ok\n"
                           "2 get x a 6 7 ok\n"),
                     LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "1,2,3,4");
}
END_TEST

START_TEST(unknown_write_cannot_precede_its_invocation)
{
    ck_assert_int_eq(check("0 get x b 0 5 ok\n"
                           "1 put x b 10 11 info err=timeout\n"),
                     LIN_VIOLATION);
    ck_assert_str_eq(witness_lines("x"), "1,2");
}
END_TEST

START_TEST(only_the_bad_key_is_reported)
{
    ck_assert_int_eq(check("0 put good a 0 1 ok\n"
                           "0 put bad a 2 3 ok\n"
                           "1 get good a 4 5 ok\n"
                           "1 get bad nil 6 7 ok\n"),
                     LIN_VIOLATION);
    ck_assert_int_eq(key_result("good")->verdict, LIN_LINEARIZABLE);
    ck_assert_int_eq(key_result("bad")->verdict, LIN_VIOLATION);
    ck_assert_uint_eq(key_result("good")->n_witness, 0);
}
END_TEST

/* ---- budget and input ---- */

START_TEST(search_gives_up_past_its_budget)
{
    /* Ten overlapping writes and reads, and a budget of 3 states. */
    ck_assert_int_eq(check_with("0 put x a 0 100 ok\n"
                                "1 put x b 0 100 ok\n"
                                "2 put x c 0 100 ok\n"
                                "3 put x d 0 100 ok\n"
                                "4 get x a 0 100 ok\n"
                                "5 get x b 0 100 ok\n"
                                "6 get x c 0 100 ok\n"
                                "7 get x d 0 100 ok\n",
                                3),
                     LIN_UNDECIDED);
    ck_assert_int_eq(key_result("x")->verdict, LIN_UNDECIDED);
}
END_TEST

START_TEST(parser_keeps_fields_and_rest)
{
    const struct lin_op *o;
    const char *text =
        "# kvhist seed=1\n"
        "3 put k7 c3.12 100 250 ok srv=1 idx=17\r\n"
        "  4 get k7 nil 300 400 ok\n"
        "5 get k7 ? 500 600 info err=timeout\n";
    ck_assert_int_eq(
        lin_history_parse(&hist, text, strlen(text), err, sizeof err), 0);
    ck_assert_uint_eq(hist.n_ops, 3);
    o = &hist.ops[0];
    ck_assert_uint_eq(o->client, 3);
    ck_assert_int_eq(o->kind, LIN_PUT);
    ck_assert_str_eq(o->key, "k7");
    ck_assert_str_eq(o->value, "c3.12");
    ck_assert_uint_eq(o->invoke_ns, 100);
    ck_assert_uint_eq(o->complete_ns, 250);
    ck_assert_int_eq(o->outcome, LIN_OK);
    ck_assert_str_eq(o->rest, "srv=1 idx=17");
    ck_assert_uint_eq(o->line, 2);
    ck_assert_ptr_null(hist.ops[1].value);
    ck_assert_str_eq(hist.ops[1].rest, "");
    ck_assert_int_eq(hist.ops[2].outcome, LIN_INFO);
    ck_assert_ptr_null(hist.ops[2].value);
}
END_TEST

static void assert_refused(const char *text, const char *message)
{
    err[0] = '\0';
    ck_assert_int_eq(
        lin_history_parse(&hist, text, strlen(text), err, sizeof err), -1);
    ck_assert_msg(strstr(err, message) != NULL, "got '%s', want '%s'", err,
                  message);
    ck_assert_ptr_null(hist.ops);
}

START_TEST(parser_refuses_bad_lines)
{
    assert_refused("0 put x a 0 1\n", "line 1: want <client>");
    assert_refused("0 put x a 0 1 ok\n0 cas x a 0 1 ok\n",
                   "line 2: unknown operation 'cas'");
    assert_refused("0 put x a 0 1 maybe\n", "unknown outcome 'maybe'");
    assert_refused("0 put x nil 0 1 ok\n", "'nil' is not a value");
    assert_refused("0 get x ? 0 1 ok\n", "'?' is not a value");
    assert_refused("0 get x a 5 1 ok\n", "completes before it is invoked");
    assert_refused("0 get x a -5 1 ok\n", "bad time");
    assert_refused("x get x a 0 1 ok\n", "bad client id");
}
END_TEST

START_TEST(repeated_put_values_are_refused)
{
    struct lin_limits limits = {30.0, 1000};
    const char *text = "0 put x a 0 1 ok\n1 put x a 2 3 ok\n";
    ck_assert_int_eq(
        lin_history_parse(&hist, text, strlen(text), err, sizeof err), 0);
    ck_assert_int_eq(lin_check(&hist, &limits, &res, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "value a is put twice (lines 1 and 2)") != NULL,
                  "%s", err);
}
END_TEST

Suite *lincheck_suite(void)
{
    Suite *s = suite_create("lincheck");
    TCase *tc = tcase_create("linearizable");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, sequential_history_is_linearizable);
    tcase_add_test(tc, empty_history_is_linearizable);
    tcase_add_test(tc, read_overlapping_a_write_sees_old_or_new);
    tcase_add_test(tc, overlapping_writes_take_effect_in_either_order);
    tcase_add_test(tc, many_concurrent_clients_in_a_tangle);
    tcase_add_test(tc, same_instant_counts_as_concurrent);
    tcase_add_test(tc, failed_write_never_happened);
    tcase_add_test(tc, unanswered_reads_are_ignored);
    tcase_add_test(tc, unknown_write_that_happened);
    tcase_add_test(tc, unknown_write_that_did_not_happen);
    tcase_add_test(tc, unknown_write_may_take_effect_long_after);
    tcase_add_test(tc, values_are_per_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("violation");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, stale_read_is_a_violation);
    tcase_add_test(tc, stale_read_is_found_in_a_long_history);
    tcase_add_test(tc, lost_write_is_a_violation);
    tcase_add_test(tc, read_of_a_value_never_written_is_a_violation);
    tcase_add_test(tc, read_of_a_failed_write_is_a_violation);
    tcase_add_test(tc, reads_cannot_flip_between_overlapping_writes);
    tcase_add_test(tc, concurrent_reads_cannot_disagree_in_order);
    tcase_add_test(tc, unknown_write_cannot_be_undone);
    tcase_add_test(tc, unknown_write_cannot_precede_its_invocation);
    tcase_add_test(tc, only_the_bad_key_is_reported);
    suite_add_tcase(s, tc);

    tc = tcase_create("input");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, search_gives_up_past_its_budget);
    tcase_add_test(tc, parser_keeps_fields_and_rest);
    tcase_add_test(tc, parser_refuses_bad_lines);
    tcase_add_test(tc, repeated_put_values_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
