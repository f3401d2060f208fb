/* test_peers.c: raft/peers.json: the strict parser and its messages, the
 * consistency checks, the atomic writer; and the decoding of canonical/raft's
 * configuration encoding that recovery inspection relies on. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "peers.h"
#include "suites.h"

static char tmpdir[64];
static char errmsg[JR_ERRMSG_SIZE];

static int remove_entry(const char *path,
                        const struct stat *st,
                        int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jr-peers-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0') {
        (void)nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
    }
}

static int parse(const char *text, struct jr__peers *p)
{
    errmsg[0] = '\0';
    return jr__peers_parse(text, strlen(text), "peers.json", p, errmsg);
}

/* The text is refused with a message containing want. */
static void refused(const char *text, const char *want)
{
    struct jr__peers p;
    ck_assert_msg(parse(text, &p) == JR_EINVAL, "accepted: %s", text);
    ck_assert_msg(strstr(errmsg, want) != NULL,
                  "%s: message \"%s\" lacks \"%s\"", text, errmsg, want);
}

START_TEST(parses_ids_as_numbers_and_strings)
{
    struct jr__peers p;
    ck_assert_int_eq(parse("[{\"id\": 1, \"address\": \"10.0.0.1:7400\"},"
                           " {\"id\": \"18446744073709551615\", \"address\":"
                           " \"10.0.0.2:7400\", \"role\": \"standby\","
                           " \"name\": \"b\"},"
                           " {\"id\": \"9223372036854775808\", \"address\":"
                           " \"10.0.0.3:7400\", \"role\": \"spare\"}]",
                           &p),
                     0);
    ck_assert_uint_eq(p.n, 3);
    ck_assert_uint_eq(p.p[0].id, 1);
    ck_assert_int_eq(p.p[0].role, RAFT_VOTER);
    ck_assert_uint_eq(p.p[1].id, UINT64_MAX);
    ck_assert_int_eq(p.p[1].role, RAFT_STANDBY);
    ck_assert_str_eq(p.p[1].name, "b");
    ck_assert_uint_eq(p.p[2].id, 9223372036854775808ull);
    ck_assert_int_eq(p.p[2].role, RAFT_SPARE);
    ck_assert_str_eq(p.p[2].address, "10.0.0.3:7400");
}
END_TEST

START_TEST(refuses_malformed_files_naming_the_problem)
{
    refused("[{\"id\": 1, \"address\": ", "not valid JSON: line 1");
    refused("{\"id\": 1}", "want a JSON array");
    refused("[]", "want a JSON array");
    refused("[1]", "element 1: not an object");
    refused("[{\"address\": \"10.0.0.1:1\"}]", "element 1: \"id\" is missing");
    refused("[{\"id\": 1}]", "element 1: \"address\" is missing");
    refused("[{\"id\": 0, \"address\": \"10.0.0.1:1\"}]", "\"id\": 0");
    refused("[{\"id\": -4, \"address\": \"10.0.0.1:1\"}]", "\"id\": -4");
    refused("[{\"id\": 1.5, \"address\": \"10.0.0.1:1\"}]", "\"id\": not an");
    refused("[{\"id\": \"12a\", \"address\": \"10.0.0.1:1\"}]", "\"12a\"");
    refused("[{\"id\": \"18446744073709551616\", \"address\": \"10.0.0.1:1\"}]",
            "is not a node id");
    refused("[{\"id\": \"007\", \"address\": \"10.0.0.1:1\"}]", "\"007\"");
    refused("[{\"id\": 1, \"address\": \"10.0.0.1\"}]", "has no port");
    refused("[{\"id\": 1, \"address\": \"10.0.0.1:0\"}]", "bad port");
    refused("[{\"id\": 1, \"address\": \"10.0.0.1:70000\"}]", "bad port");
    refused("[{\"id\": 1, \"address\": \"db.example:7\"}]", "IPv4");
    refused("[{\"id\": 1, \"address\": \"\"}]", "\"address\": not a");
    refused("[{\"id\": 1, \"address\": \"10.0.0.1:1\", \"role\": \"boss\"}]",
            "\"role\": want");
    refused("[{\"id\": 1, \"address\": \"10.0.0.1:1\", \"colour\": 3}]",
            "element 1: unknown field \"colour\"");
    refused("[{\"id\": 1, \"id\": 2, \"address\": \"10.0.0.1:1\"}]",
            "not valid JSON");
}
END_TEST

START_TEST(refuses_too_many_servers_and_too_large_files)
{
    char *text = malloc(JR__PEERS_FILE_MAX + 64);
    size_t n = 0;
    int i;
    ck_assert_ptr_nonnull(text);
    n += (size_t)sprintf(text + n, "[");
    for (i = 1; i <= JR__PEERS_MAX + 1; i++) {
        n += (size_t)sprintf(text + n,
                             "%s{\"id\": %d, \"address\": \"10.0.0.1:%d\"}",
                             i > 1 ? "," : "", i, i);
    }
    sprintf(text + n, "]");
    refused(text, "1 to 64 servers");
    memset(text, ' ', JR__PEERS_FILE_MAX + 1);
    text[0] = '[';
    text[JR__PEERS_FILE_MAX] = ']';
    text[JR__PEERS_FILE_MAX + 1] = '\0';
    refused(text, "more than");
    free(text);
}
END_TEST

START_TEST(validation_names_the_elements)
{
    struct jr__peers p;
    ck_assert_int_eq(parse("[{\"id\": 1, \"address\": \"10.0.0.1:1\"},"
                           " {\"id\": 1, \"address\": \"10.0.0.2:1\"}]",
                           &p),
                     0);
    ck_assert_int_eq(jr__peers_validate(&p, 1, "peers.json", errmsg),
                     JR_EINVAL);
    ck_assert_ptr_nonnull(
        strstr(errmsg, "elements 1 and 2 have the same id 1"));
    ck_assert_int_eq(parse("[{\"id\": 1, \"address\": \"10.0.0.1:1\"},"
                           " {\"id\": 2, \"address\": \"10.0.0.1:1\"}]",
                           &p),
                     0);
    ck_assert_int_eq(jr__peers_validate(&p, 1, "peers.json", errmsg),
                     JR_EINVAL);
    ck_assert_ptr_nonnull(strstr(errmsg, "the same address 10.0.0.1:1"));
    ck_assert_int_eq(parse("[{\"id\": 1, \"address\": \"10.0.0.1:1\","
                           " \"role\": \"standby\"}]",
                           &p),
                     0);
    ck_assert_int_eq(jr__peers_validate(&p, 1, "peers.json", errmsg),
                     JR_EINVAL);
    ck_assert_ptr_nonnull(strstr(errmsg, "no voter"));
    ck_assert_int_eq(parse("[{\"id\": 1, \"address\": \"10.0.0.1:1\"}]", &p),
                     0);
    ck_assert_int_eq(jr__peers_validate(&p, 2, "peers.json", errmsg),
                     JR_EINVAL);
    ck_assert_ptr_nonnull(strstr(errmsg, "this node (id 2) is not among"));
    ck_assert_int_eq(jr__peers_validate(&p, 1, "peers.json", errmsg), 0);
    ck_assert_int_eq(jr__peers_validate(&p, 0, "peers.json", errmsg), 0);
}
END_TEST

START_TEST(write_then_read_round_trips_atomically)
{
    struct jr__peers p, q;
    struct raft_configuration conf;
    char path[128];
    struct stat st;
    memset(&p, 0, sizeof p);
    p.n = 2;
    p.p[0].id = UINT64_MAX - 1;
    strcpy(p.p[0].address, "127.0.0.1:7401");
    p.p[0].role = RAFT_VOTER;
    strcpy(p.p[0].name, "n1");
    p.p[1].id = 2;
    strcpy(p.p[1].address, "127.0.0.1:7402");
    p.p[1].role = RAFT_STANDBY;
    snprintf(path, sizeof path, "%s/peers.json", tmpdir);
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), JR_ENOTFOUND);
    ck_assert_int_eq(jr__peers_write_file(path, &p, errmsg), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/peers.json.tmp", tmpdir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/peers.json", tmpdir);
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), 0);
    ck_assert_uint_eq(q.n, 2);
    ck_assert_uint_eq(q.p[0].id, UINT64_MAX - 1);
    ck_assert_str_eq(q.p[0].name, "n1");
    ck_assert_int_eq(q.p[1].role, RAFT_STANDBY);
    raft_configuration_init(&conf);
    ck_assert_int_eq(jr__peers_to_configuration(&q, &conf), 0);
    ck_assert_uint_eq(conf.n, 2);
    ck_assert_uint_eq(conf.servers[1].id, 2);
    ck_assert_int_eq(conf.servers[1].role, RAFT_STANDBY);
    raft_configuration_close(&conf);
}
END_TEST

/* jr_recover_inspect decodes configuration entries itself (raft 0.15
 * exports only the encoder): pin the layout it expects. */
START_TEST(raft_configuration_encoding_is_the_one_inspect_decodes)
{
    struct raft_configuration c;
    struct raft_buffer b;
    const unsigned char *p;
    raft_configuration_init(&c);
    ck_assert_int_eq(raft_configuration_add(&c, 0x0102030405060708ull,
                                            "1.2.3.4:5", RAFT_VOTER),
                     0);
    ck_assert_int_eq(raft_configuration_add(&c, 9, "10.0.0.1:77", RAFT_STANDBY),
                     0);
    ck_assert_int_eq(raft_configuration_encode(&c, &b), 0);
    p = b.base;
    ck_assert_uint_eq(p[0], 1);    /* format */
    ck_assert_uint_eq(p[1], 2);    /* count, little endian */
    ck_assert_uint_eq(p[9], 0x08); /* id, little endian */
    ck_assert_uint_eq(p[16], 0x01);
    ck_assert_str_eq((const char *)p + 17, "1.2.3.4:5"); /* NUL-terminated */
    ck_assert_uint_eq(p[27], RAFT_VOTER); /* role after the NUL */
    ck_assert_uint_eq(p[28], 9);          /* next server's id */
    ck_assert_str_eq((const char *)p + 36, "10.0.0.1:77");
    ck_assert_uint_eq(p[48], RAFT_STANDBY);
    ck_assert_uint_eq(b.len % 8, 0);
    raft_free(b.base);
    raft_configuration_close(&c);
}
END_TEST

Suite *peers_suite(void)
{
    Suite *s = suite_create("peers");
    TCase *tc = tcase_create("peers.json");
    tcase_add_test(tc, parses_ids_as_numbers_and_strings);
    tcase_add_test(tc, refuses_malformed_files_naming_the_problem);
    tcase_add_test(tc, refuses_too_many_servers_and_too_large_files);
    tcase_add_test(tc, validation_names_the_elements);
    tcase_add_test(tc, raft_configuration_encoding_is_the_one_inspect_decodes);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, write_then_read_round_trips_atomically);
    suite_add_tcase(s, tc);
    return s;
}
