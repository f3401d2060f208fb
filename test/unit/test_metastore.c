/* test_metastore.c: the term and vote file round-trips, starts empty, and
 * refuses damage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jr_internal.h"
#include "metastore.h"
#include "suites.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/jr-meta-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(missing_file_is_term_zero_without_vote)
{
    struct jr__raft_meta m = {7, 7};
    char errmsg[JR_ERRMSG_SIZE];
    ck_assert_int_eq(jr__metastore_load(dir, &m, errmsg), 0);
    ck_assert_uint_eq(m.term, 0);
    ck_assert_uint_eq(m.vote, 0);
}
END_TEST

START_TEST(store_then_load_round_trips_and_leaves_no_temporary)
{
    struct jr__raft_meta in = {123456789012ULL, 3}, out;
    char errmsg[JR_ERRMSG_SIZE], path[128];
    ck_assert_int_eq(jr__metastore_store(dir, &in, errmsg), 0);
    in.term++;
    in.vote = 0;
    ck_assert_int_eq(jr__metastore_store(dir, &in, errmsg), 0);
    ck_assert_int_eq(jr__metastore_load(dir, &out, errmsg), 0);
    ck_assert_uint_eq(out.term, 123456789013ULL);
    ck_assert_uint_eq(out.vote, 0);
    snprintf(path, sizeof path, "%s/meta.tmp", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(a_flipped_bit_anywhere_is_corruption)
{
    struct jr__raft_meta in = {5, 2}, out;
    char errmsg[JR_ERRMSG_SIZE], path[128];
    unsigned char buf[32];
    unsigned bit;
    FILE *f;
    snprintf(path, sizeof path, "%s/meta", dir);
    for (bit = 0; bit < 8 * sizeof buf; bit++) {
        ck_assert_int_eq(jr__metastore_store(dir, &in, errmsg), 0);
        f = fopen(path, "r+b");
        ck_assert_uint_eq(fread(buf, 1, sizeof buf, f), sizeof buf);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        rewind(f);
        ck_assert_uint_eq(fwrite(buf, 1, sizeof buf, f), sizeof buf);
        fclose(f);
        ck_assert_int_eq(jr__metastore_load(dir, &out, errmsg), JR_ECORRUPT);
        ck_assert_ptr_nonnull(strstr(errmsg, "wipe the data directory"));
    }
}
END_TEST

START_TEST(a_truncated_file_is_corruption)
{
    struct jr__raft_meta in = {5, 2}, out;
    char errmsg[JR_ERRMSG_SIZE], path[128];
    snprintf(path, sizeof path, "%s/meta", dir);
    ck_assert_int_eq(jr__metastore_store(dir, &in, errmsg), 0);
    ck_assert_int_eq(truncate(path, 31), 0);
    ck_assert_int_eq(jr__metastore_load(dir, &out, errmsg), JR_ECORRUPT);
}
END_TEST

START_TEST(store_into_a_missing_directory_fails_with_its_name)
{
    struct jr__raft_meta in = {1, 0};
    char errmsg[JR_ERRMSG_SIZE];
    ck_assert_int_eq(jr__metastore_store("/nonexistent/dir", &in, errmsg),
                     JR_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(errmsg, "/nonexistent/dir"));
}
END_TEST

Suite *metastore_suite(void)
{
    Suite *s = suite_create("metastore");
    TCase *tc = tcase_create("term_and_vote");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, missing_file_is_term_zero_without_vote);
    tcase_add_test(tc, store_then_load_round_trips_and_leaves_no_temporary);
    tcase_add_test(tc, a_flipped_bit_anywhere_is_corruption);
    tcase_add_test(tc, a_truncated_file_is_corruption);
    tcase_add_test(tc, store_into_a_missing_directory_fails_with_its_name);
    suite_add_tcase(s, tc);
    return s;
}
