/* test_datadir.c: the data directory's lock, its identity file, and the
 * cluster id helpers. */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "suites.h"
#include "testutil.h"

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jr-datadir-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0') {
        tu_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}

static int parse(const char *text, struct jr__meta *m, char *errmsg)
{
    errmsg[0] = '\0';
    return jr__meta_parse(text, strlen(text), m, errmsg);
}

/* Parsing text must fail with JR_ECORRUPT and a message containing
 * mention. */
static void expect_corrupt(const char *text, const char *mention)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__meta m;
    int rv = parse(text, &m, errmsg);
    ck_assert_msg(rv == JR_ECORRUPT, "parse of \"%s\" returned %d", text, rv);
    ck_assert_msg(strstr(errmsg, mention) != NULL,
                  "message \"%s\" does not mention \"%s\"", errmsg, mention);
}

static bool is_lower_hex(const char *s, size_t len)
{
    size_t i;
    if (strlen(s) != len) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static const char id_a[] = "00112233445566778899aabbccddeeff";
static const char id_b[] = "ffeeddccbbaa99887766554433221100";

/* ---- jr__meta_format / jr__meta_parse ---- */

START_TEST(meta_format_then_parse_round_trips)
{
    struct jr__meta in, out;
    char buf[1024], errmsg[JR_ERRMSG_SIZE];
    int len;
    memset(&in, 0, sizeof in);
    in.node_id = 18446744073709551615ull;
    memcpy(in.cluster_id, id_a, sizeof id_a);
    memcpy(in.bootstrap_digest, id_b, sizeof id_b);
    len = jr__meta_format(&in, buf, sizeof buf);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_eq((size_t)len, strlen(buf));
    memset(&out, 0xff, sizeof out);
    ck_assert_int_eq(jr__meta_parse(buf, (size_t)len, &out, errmsg), 0);
    ck_assert_uint_eq(out.node_id, in.node_id);
    ck_assert_str_eq(out.cluster_id, id_a);
    ck_assert_str_eq(out.bootstrap_digest, id_b);
}
END_TEST

START_TEST(meta_round_trips_empty_cluster_id_and_digest)
{
    struct jr__meta in, out;
    char buf[1024], errmsg[JR_ERRMSG_SIZE];
    int len;
    memset(&in, 0, sizeof in);
    in.node_id = 3;
    len = jr__meta_format(&in, buf, sizeof buf);
    ck_assert_int_gt(len, 0);
    memset(&out, 0xff, sizeof out);
    ck_assert_int_eq(jr__meta_parse(buf, (size_t)len, &out, errmsg), 0);
    ck_assert_uint_eq(out.node_id, 3);
    ck_assert_str_eq(out.cluster_id, "");
    ck_assert_str_eq(out.bootstrap_digest, "");
}
END_TEST

START_TEST(meta_incarnation_round_trips_defaults_to_zero_and_is_bounded)
{
    struct jr__meta in, out;
    char buf[512], errmsg[JR_ERRMSG_SIZE];
    static const char old[] = "format 1\nnode_id 3\n";
    static const char big[] = "format 1\nnode_id 3\nincarnation 4294967296\n";
    static const char neg[] = "format 1\nnode_id 3\nincarnation -1\n";
    int len;
    memset(&in, 0, sizeof in);
    in.node_id = 3;
    in.incarnation = 4294967295u;
    len = jr__meta_format(&in, buf, sizeof buf);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(jr__meta_parse(buf, (size_t)len, &out, errmsg), 0);
    ck_assert_uint_eq(out.incarnation, 4294967295u);
    /* Written before the field existed: incarnation 0. */
    ck_assert_int_eq(jr__meta_parse(old, strlen(old), &out, errmsg), 0);
    ck_assert_uint_eq(out.incarnation, 0);
    ck_assert_int_eq(jr__meta_parse(big, strlen(big), &out, errmsg),
                     JR_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(errmsg, "incarnation"));
    ck_assert_int_eq(jr__meta_parse(neg, strlen(neg), &out, errmsg),
                     JR_ECORRUPT);
}
END_TEST

START_TEST(meta_format_rejects_too_small_buffer)
{
    struct jr__meta in;
    char buf[16];
    memset(&in, 0, sizeof in);
    in.node_id = 1;
    ck_assert_int_eq(jr__meta_format(&in, buf, sizeof buf), JR_EINVAL);
}
END_TEST

START_TEST(meta_parse_ignores_comments_and_blank_lines)
{
    struct jr__meta m;
    char errmsg[JR_ERRMSG_SIZE];
    static const char text[] =
        "# a comment\n"
        "\n"
        "format 1\n"
        "#node_id 99\n"
        "\n\n"
        "node_id 42\n"
        "# cluster_id nothexnothex\n"
        "cluster_id 00112233445566778899aabbccddeeff\n"
        "\n";
    ck_assert_int_eq(parse(text, &m, errmsg), 0);
    ck_assert_uint_eq(m.node_id, 42);
    ck_assert_str_eq(m.cluster_id, id_a);
    ck_assert_str_eq(m.bootstrap_digest, "");
}
END_TEST

START_TEST(meta_parse_accepts_missing_final_newline)
{
    struct jr__meta m;
    char errmsg[JR_ERRMSG_SIZE];
    ck_assert_int_eq(parse("format 1\nnode_id 7", &m, errmsg), 0);
    ck_assert_uint_eq(m.node_id, 7);
}
END_TEST

START_TEST(meta_parse_rejects_missing_format)
{
    expect_corrupt("node_id 1\n", "format");
    expect_corrupt("", "format");
    expect_corrupt("# only a comment\n\n", "format");
}
END_TEST

START_TEST(meta_parse_rejects_unsupported_format)
{
    expect_corrupt("format 2\nnode_id 1\n", "format 2");
    expect_corrupt("format 0\nnode_id 1\n", "format");
    expect_corrupt("format\nnode_id 1\n", "format");
    expect_corrupt("format one\nnode_id 1\n", "format");
}
END_TEST

START_TEST(meta_parse_rejects_bad_or_missing_node_id)
{
    expect_corrupt("format 1\nnode_id 0\n", "node_id");
    expect_corrupt("format 1\nnode_id abc\n", "node_id");
    expect_corrupt("format 1\nnode_id 12abc\n", "node_id");
    expect_corrupt("format 1\nnode_id -1\n", "node_id");
    expect_corrupt("format 1\nnode_id 18446744073709551616\n", "node_id");
    expect_corrupt("format 1\nnode_id\n", "node_id");
    expect_corrupt("format 1\n", "node_id");
    expect_corrupt(
        "format 1\ncluster_id "
        "00112233445566778899aabbccddeeff"
        "\n",
        "node_id");
}
END_TEST

START_TEST(meta_parse_rejects_cluster_id_not_32_lowercase_hex)
{
    expect_corrupt(
        "format 1\nnode_id 1\n"
        "cluster_id 00112233445566778899aabbccddeef\n",
        "cluster_id");
    expect_corrupt(
        "format 1\nnode_id 1\n"
        "cluster_id 00112233445566778899aabbccddeeff0\n",
        "cluster_id");
    expect_corrupt(
        "format 1\nnode_id 1\n"
        "cluster_id 00112233445566778899AABBCCDDEEFF\n",
        "cluster_id");
    expect_corrupt(
        "format 1\nnode_id 1\n"
        "cluster_id 00112233445566778899aabbccddeegg\n",
        "cluster_id");
    expect_corrupt(
        "format 1\nnode_id 1\n"
        "bootstrap xyz\n",
        "bootstrap");
}
END_TEST

START_TEST(meta_parse_rejects_unknown_keys)
{
    expect_corrupt("format 1\nnode_id 1\nnode_name alpha\n", "node_name");
    expect_corrupt("format 1\nNODE_ID 1\nnode_id 1\n", "NODE_ID");
}
END_TEST

START_TEST(meta_parse_rejects_over_long_line)
{
    char text[600];
    memset(text, 'x', sizeof text);
    memcpy(text, "format 1\nnode_id 1\n# ", 21);
    text[sizeof text - 1] = '\0';
    expect_corrupt(text, "too long");
}
END_TEST

/* ---- jr__meta_store / jr__meta_load ---- */

START_TEST(meta_store_then_load_round_trips)
{
    struct jr__meta in, out;
    struct jr_error err;
    memset(&in, 0, sizeof in);
    in.node_id = 5;
    memcpy(in.cluster_id, id_b, sizeof id_b);
    memcpy(in.bootstrap_digest, id_a, sizeof id_a);
    ck_assert_int_eq(jr__meta_store(tmpdir, &in, &err), 0);
    memset(&out, 0, sizeof out);
    ck_assert_int_eq(jr__meta_load(tmpdir, &out, &err), 0);
    ck_assert_uint_eq(out.node_id, 5);
    ck_assert_str_eq(out.cluster_id, id_b);
    ck_assert_str_eq(out.bootstrap_digest, id_a);

    /* Storing again replaces the identity. */
    in.node_id = 6;
    in.cluster_id[0] = '\0';
    ck_assert_int_eq(jr__meta_store(tmpdir, &in, &err), 0);
    ck_assert_int_eq(jr__meta_load(tmpdir, &out, &err), 0);
    ck_assert_uint_eq(out.node_id, 6);
    ck_assert_str_eq(out.cluster_id, "");
}
END_TEST

START_TEST(meta_load_of_empty_dir_is_not_found)
{
    struct jr__meta m;
    struct jr_error err;
    ck_assert_int_eq(jr__meta_load(tmpdir, &m, &err), JR_ENOTFOUND);
}
END_TEST

START_TEST(meta_store_leaves_no_tmp_file)
{
    struct jr__meta m;
    struct jr_error err;
    DIR *d;
    struct dirent *e;
    unsigned entries = 0;
    memset(&m, 0, sizeof m);
    m.node_id = 1;
    ck_assert_int_eq(jr__meta_store(tmpdir, &m, &err), 0);
    ck_assert_int_eq(jr__meta_store(tmpdir, &m, &err), 0);
    d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        entries++;
        ck_assert_msg(strstr(e->d_name, ".tmp") == NULL,
                      "temporary file %s left behind", e->d_name);
    }
    closedir(d);
    ck_assert_uint_eq(entries, 1);
}
END_TEST

START_TEST(meta_load_reports_corrupt_file_with_its_path)
{
    char path[128];
    struct jr__meta m;
    struct jr_error err;
    FILE *f;
    snprintf(path, sizeof path, "%s/jacoraft.id", tmpdir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("format 2\nnode_id 1\n", f);
    fclose(f);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr__meta_load(tmpdir, &m, &err), JR_ECORRUPT);
    ck_assert_int_eq(err.code, JR_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, "format"));
}
END_TEST

/* ---- jr__datadir_lock ---- */

START_TEST(lock_twice_fails_with_elocked_naming_the_dir)
{
    struct jr_error err;
    int fd1 = -1, fd2 = -1;
    ck_assert_int_eq(jr__datadir_lock(tmpdir, &fd1, &err), 0);
    ck_assert_int_ge(fd1, 0);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(jr__datadir_lock(tmpdir, &fd2, &err), JR_ELOCKED);
    ck_assert_int_eq(err.code, JR_ELOCKED);
    ck_assert_ptr_nonnull(strstr(err.message, tmpdir));
    ck_assert_int_eq(fd2, -1);
    jr__datadir_unlock(fd1);
}
END_TEST

START_TEST(lock_can_be_taken_again_after_unlock)
{
    struct jr_error err;
    int fd1 = -1, fd2 = -1;
    ck_assert_int_eq(jr__datadir_lock(tmpdir, &fd1, &err), 0);
    jr__datadir_unlock(fd1);
    ck_assert_int_eq(jr__datadir_lock(tmpdir, &fd2, &err), 0);
    ck_assert_int_ge(fd2, 0);
    jr__datadir_unlock(fd2);
}
END_TEST

START_TEST(lock_creates_missing_directory)
{
    char dir[128];
    struct jr_error err;
    struct stat st;
    int fd = -1;
    snprintf(dir, sizeof dir, "%s/new", tmpdir);
    ck_assert_int_ne(stat(dir, &st), 0);
    ck_assert_int_eq(jr__datadir_lock(dir, &fd, &err), 0);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    jr__datadir_unlock(fd);
}
END_TEST

START_TEST(lock_fails_when_parent_is_missing)
{
    char dir[128];
    struct jr_error err;
    int fd = -1;
    snprintf(dir, sizeof dir, "%s/no/such", tmpdir);
    memset(&err, 0, sizeof err);
    ck_assert_int_lt(jr__datadir_lock(dir, &fd, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, dir));
    ck_assert_int_eq(fd, -1);
}
END_TEST

/* ---- cluster ids ---- */

START_TEST(cluster_id_random_is_32_hex_and_differs)
{
    char a[JR__CLUSTER_ID_LEN + 1], b[JR__CLUSTER_ID_LEN + 1];
    jr__cluster_id_random(a);
    jr__cluster_id_random(b);
    ck_assert_msg(is_lower_hex(a, JR__CLUSTER_ID_LEN), "bad id '%s'", a);
    ck_assert_msg(is_lower_hex(b, JR__CLUSTER_ID_LEN), "bad id '%s'", b);
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(members_digest_ignores_member_order)
{
    struct jr_member m1[] = {
        {1, "127.0.0.1:9001"}, {2, "127.0.0.1:9002"}, {3, "127.0.0.1:9003"}};
    struct jr_member m2[] = {
        {3, "127.0.0.1:9003"}, {1, "127.0.0.1:9001"}, {2, "127.0.0.1:9002"}};
    char a[JR__CLUSTER_ID_LEN + 1], b[JR__CLUSTER_ID_LEN + 1];
    jr__members_digest(m1, 3, a);
    jr__members_digest(m2, 3, b);
    ck_assert_msg(is_lower_hex(a, JR__CLUSTER_ID_LEN), "bad digest '%s'", a);
    ck_assert_str_eq(a, b);
    /* The input list is not reordered. */
    ck_assert_uint_eq(m2[0].id, 3);
}
END_TEST

START_TEST(members_digest_changes_with_address_or_id)
{
    struct jr_member m1[] = {{1, "127.0.0.1:9001"}, {2, "127.0.0.1:9002"}};
    struct jr_member m2[] = {{1, "127.0.0.1:9001"}, {2, "127.0.0.1:9012"}};
    struct jr_member m3[] = {{1, "127.0.0.1:9001"}, {4, "127.0.0.1:9002"}};
    char a[JR__CLUSTER_ID_LEN + 1], b[JR__CLUSTER_ID_LEN + 1],
        c[JR__CLUSTER_ID_LEN + 1], d[JR__CLUSTER_ID_LEN + 1];
    jr__members_digest(m1, 2, a);
    jr__members_digest(m2, 2, b);
    jr__members_digest(m3, 2, c);
    jr__members_digest(m1, 1, d);
    ck_assert_str_ne(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_ne(a, d);
}
END_TEST

Suite *datadir_suite(void)
{
    Suite *s = suite_create("datadir");
    TCase *tc;

    tc = tcase_create("meta_parse");
    tcase_add_test(tc, meta_format_then_parse_round_trips);
    tcase_add_test(tc, meta_round_trips_empty_cluster_id_and_digest);
    tcase_add_test(tc, meta_format_rejects_too_small_buffer);
    tcase_add_test(
        tc, meta_incarnation_round_trips_defaults_to_zero_and_is_bounded);
    tcase_add_test(tc, meta_parse_ignores_comments_and_blank_lines);
    tcase_add_test(tc, meta_parse_accepts_missing_final_newline);
    tcase_add_test(tc, meta_parse_rejects_missing_format);
    tcase_add_test(tc, meta_parse_rejects_unsupported_format);
    tcase_add_test(tc, meta_parse_rejects_bad_or_missing_node_id);
    tcase_add_test(tc, meta_parse_rejects_cluster_id_not_32_lowercase_hex);
    tcase_add_test(tc, meta_parse_rejects_unknown_keys);
    tcase_add_test(tc, meta_parse_rejects_over_long_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("meta_file");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, meta_store_then_load_round_trips);
    tcase_add_test(tc, meta_load_of_empty_dir_is_not_found);
    tcase_add_test(tc, meta_store_leaves_no_tmp_file);
    tcase_add_test(tc, meta_load_reports_corrupt_file_with_its_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("lock");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, lock_twice_fails_with_elocked_naming_the_dir);
    tcase_add_test(tc, lock_can_be_taken_again_after_unlock);
    tcase_add_test(tc, lock_creates_missing_directory);
    tcase_add_test(tc, lock_fails_when_parent_is_missing);
    suite_add_tcase(s, tc);

    tc = tcase_create("cluster_id");
    tcase_add_test(tc, cluster_id_random_is_32_hex_and_differs);
    tcase_add_test(tc, members_digest_ignores_member_order);
    tcase_add_test(tc, members_digest_changes_with_address_or_id);
    suite_add_tcase(s, tc);
    return s;
}
