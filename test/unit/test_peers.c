/* test_peers.c: raft/peers.json: the strict parser and its exact messages, the
 * consistency checks, the atomic writer; and the decoding of canonical/raft's
 * configuration encoding that recovery inspection relies on. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "peers.h"
#include "suites.h"
#include "testutil.h"

/* One valid server, for padding to a size. */
#define ONE "[{\"id\": 1, \"address\": \"10.0.0.1:1\"}]"

static char tmpdir[64];
static char errmsg[JR_ERRMSG_SIZE];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jr-peers-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0') {
        tu_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}

static int parse(const char *text, struct jr__peers *p)
{
    errmsg[0] = '\0';
    return jr__peers_parse(text, strlen(text), "peers.json", p, errmsg);
}

/* The text is refused with exactly the message want. */
static void refused_len(const char *text, size_t len, const char *want)
{
    struct jr__peers p;
    memset(&p, 0xaa, sizeof p);
    errmsg[0] = '\0';
    ck_assert_msg(
        jr__peers_parse(text, len, "peers.json", &p, errmsg) == JR_EINVAL,
        "accepted: %s", text);
    ck_assert_str_eq(errmsg, want);
    ck_assert_uint_eq(p.n, 0xaaaaaaaau); /* out untouched */
}

static void refused(const char *text, const char *want)
{
    refused_len(text, strlen(text), want);
}

/* One element with the given fields is refused with "peers.json: element
 * 1: " and want. */
static void element_refused(const char *fields, const char *want)
{
    char text[1024], full[JR_ERRMSG_SIZE];
    ck_assert_int_lt(snprintf(text, sizeof text, "[{%s}]", fields),
                     (int)sizeof text);
    ck_assert_int_lt(
        snprintf(full, sizeof full, "peers.json: element 1: %s", want),
        (int)sizeof full);
    refused(text, full);
}

START_TEST(parses_ids_as_numbers_and_strings)
{
    struct jr__peers p;
    ck_assert_int_eq(parse("[{\"id\": 1, \"address\": \"10.0.0.1:7400\"},"
                           " {\"id\": \"18446744073709551615\", \"address\":"
                           " \"10.0.0.2:7400\", \"role\": \"standby\","
                           " \"name\": \"b\"},"
                           " {\"id\": \"9223372036854775808\", \"address\":"
                           " \"10.0.0.3:7400\", \"role\": \"spare\"},"
                           " {\"id\": 9223372036854775807, \"address\":"
                           " \"10.0.0.4:65535\", \"role\": \"voter\"},"
                           " {\"address\": \"10.0.0.5:1\", \"id\":"
                           " \"12345678901234567890\", \"name\": \"\"}]",
                           &p),
                     0);
    ck_assert_uint_eq(p.n, 5);
    ck_assert_uint_eq(p.p[0].id, 1);
    ck_assert_int_eq(p.p[0].role, RAFT_VOTER);
    ck_assert_str_eq(p.p[0].name, "");
    ck_assert_uint_eq(p.p[1].id, UINT64_MAX);
    ck_assert_int_eq(p.p[1].role, RAFT_STANDBY);
    ck_assert_str_eq(p.p[1].name, "b");
    ck_assert_uint_eq(p.p[2].id, 9223372036854775808ull);
    ck_assert_int_eq(p.p[2].role, RAFT_SPARE);
    ck_assert_str_eq(p.p[2].address, "10.0.0.3:7400");
    ck_assert_uint_eq(p.p[3].id, 9223372036854775807ull);
    ck_assert_int_eq(p.p[3].role, RAFT_VOTER);
    ck_assert_uint_eq(p.p[4].id, 12345678901234567890ull);
    ck_assert_str_eq(p.p[4].address, "10.0.0.5:1");
    ck_assert_int_eq(jr__peers_validate(&p, UINT64_MAX, "peers.json", errmsg),
                     0);
}
END_TEST

START_TEST(refuses_text_that_is_not_a_json_array_of_objects)
{
    refused("[{\"id\": 1, \"address\": ",
            "peers.json: not valid JSON: line 1, column 22: unexpected token "
            "near end of file");
    refused("[{\"id\": 1,\n \"address\": \"10.0.0.1:1\",}]",
            "peers.json: not valid JSON: line 2, column 26: string or '}' "
            "expected near '}'");
    refused("",
            "peers.json: not valid JSON: line 1, column 0: '[' or '{' "
            "expected near end of file");
    /* A duplicate key is jansson's to find (JSON_REJECT_DUPLICATES). */
    refused("[{\"id\": 1, \"id\": 2, \"address\": \"10.0.0.1:1\"}]",
            "peers.json: not valid JSON: line 1, column 15: duplicate object "
            "key near '\"id\"'");
    refused_len("[{\"id\": 1, \"address\": \"10.0.0.1:1\"}]\0", 38,
                "peers.json: not valid JSON: line 1, column 37: end of file "
                "expected near end of file");
    refused("[\"\\u0000\"]",
            "peers.json: not valid JSON: line 1, column 9: \\u0000 is not "
            "allowed without JSON_ALLOW_NUL near '\"\\u0000\"'");
    /* jansson's "near" quotes the file: control characters are masked. */
    refused("[\x1b[31m]",
            "peers.json: not valid JSON: line 1, column 2: "
            "invalid token near '?'");
    refused("{\"id\": 1}",
            "peers.json: the top level is an object: want a JSON array of "
            "servers, [{\"id\": ..., \"address\": ...}, ...]");
    refused("[]",
            "peers.json: an empty array: want a JSON array of 1 to 64 "
            "servers");
    refused("[1]",
            "peers.json: element 1: an integer, not an object (want "
            "{\"id\": ..., \"address\": ...})");
    refused("[{\"id\": 1, \"address\": \"10.0.0.1:1\"}, [], {}]",
            "peers.json: element 2: an array, not an object (want {\"id\": "
            "..., \"address\": ...})");
}
END_TEST

START_TEST(refuses_bad_ids_naming_them)
{
    const char *a = "\"address\": \"10.0.0.1:1\"";
    char f[512];
#define ID(v) (snprintf(f, sizeof f, "\"id\": %s, %s", v, a), f)
    element_refused(a, "\"id\" is missing");
    element_refused(ID("0"),
                    "\"id\": 0 is not a node id (want 1 to "
                    "18446744073709551615)");
    element_refused(ID("-4"),
                    "\"id\": -4 is not a node id (want 1 to "
                    "18446744073709551615)");
    element_refused(ID("1.5"),
                    "\"id\": a real number (want an integer, or a "
                    "string of decimal digits)");
    element_refused(ID("1e3"),
                    "\"id\": a real number (want an integer, or a "
                    "string of decimal digits)");
    element_refused(ID("true"),
                    "\"id\": a boolean (want an integer, or a "
                    "string of decimal digits)");
    element_refused(ID("null"),
                    "\"id\": null (want an integer, or a string "
                    "of decimal digits)");
    element_refused(ID("\"12a\""),
                    "\"id\": \"12a\" is not a string of decimal digits");
    element_refused(ID("\"-5\""),
                    "\"id\": \"-5\" is not a string of decimal digits");
    element_refused(ID("\"+5\""),
                    "\"id\": \"+5\" is not a string of decimal digits");
    element_refused(ID("\" 5\""),
                    "\"id\": \" 5\" is not a string of decimal digits");
    element_refused(ID("\"\""),
                    "\"id\": \"\" is empty (want a string of "
                    "decimal digits)");
    element_refused(ID("\"0\""),
                    "\"id\": \"0\" is not a node id (want 1 to "
                    "18446744073709551615)");
    element_refused(ID("\"007\""), "\"id\": \"007\" has a leading zero");
    element_refused(ID("\"18446744073709551616\""),
                    "\"id\": \"18446744073709551616\" is over "
                    "18446744073709551615");
    element_refused(ID("\"99999999999999999999\""),
                    "\"id\": \"99999999999999999999\" is over "
                    "18446744073709551615");
    element_refused(ID("\"184467440737095516150\""),
                    "\"id\": \"184467440737095516150\" is over "
                    "18446744073709551615");
    /* Quoted values are cut at 40 bytes and escaped. */
    element_refused(ID("\"1234567890123456789012345678901234567890123\""),
                    "\"id\": \"1234567890123456789012345678901234567890\"... "
                    "is over 18446744073709551615");
    element_refused(ID("\"1\\n\\\"\\u00e9\""),
                    "\"id\": \"1\\x0a\\\"\\xc3\\xa9\" is not a string of "
                    "decimal digits");
#undef ID
    /* Above 2^63 - 1 only a string carries the id. */
    refused("[{\"id\": 18446744073709551615, \"address\": \"10.0.0.1:1\"}]",
            "peers.json: not valid JSON: line 1, column 28: too big integer "
            "near '18446744073709551615' (write ids over "
            "9223372036854775807 as strings)");
}
END_TEST

START_TEST(refuses_bad_addresses_naming_them)
{
    char f[512], want[256];
#define ADDR(v) (snprintf(f, sizeof f, "\"id\": 1, \"address\": %s", v), f)
    element_refused("\"id\": 1", "\"address\" is missing");
    element_refused(ADDR("\"\""),
                    "\"address\": \"\" is empty (want "
                    "HOST:PORT)");
    element_refused(ADDR("7400"),
                    "\"address\": an integer (want a string, "
                    "HOST:PORT)");
    element_refused(ADDR("\"10.0.0.1\""),
                    "\"address\": \"10.0.0.1\" has no port (want HOST:PORT)");
    element_refused(ADDR("\":7400\""),
                    "\"address\": \":7400\" has no host (want HOST:PORT)");
    element_refused(ADDR("\"10.0.0.1:\""),
                    "\"address\": \"10.0.0.1:\" has a bad port (want 1 to "
                    "65535)");
    element_refused(ADDR("\"10.0.0.1:0\""),
                    "\"address\": \"10.0.0.1:0\" has a bad port (want 1 to "
                    "65535)");
    element_refused(ADDR("\"10.0.0.1:70000\""),
                    "\"address\": \"10.0.0.1:70000\" has a bad port (want 1 "
                    "to 65535)");
    element_refused(ADDR("\"10.0.0.1:080\""),
                    "\"address\": \"10.0.0.1:080\" has a bad port (want 1 to "
                    "65535)");
    element_refused(ADDR("\"10.0.0.1:+80\""),
                    "\"address\": \"10.0.0.1:+80\" has a bad port (want 1 to "
                    "65535)");
    element_refused(ADDR("\"10.0.0.1:123456\""),
                    "\"address\": \"10.0.0.1:123456\" has a bad port (want 1 "
                    "to 65535)");
    element_refused(ADDR("\"db.example:7\""),
                    "\"address\": \"db.example:7\": the host is not an IPv4 "
                    "address (want A.B.C.D:PORT)");
    element_refused(ADDR("\"10.0.0.256:7\""),
                    "\"address\": \"10.0.0.256:7\": the host is not an IPv4 "
                    "address (want A.B.C.D:PORT)");
    element_refused(ADDR("\"[::1]:7\""),
                    "\"address\": \"[::1]:7\": the host is not an IPv4 "
                    "address (want A.B.C.D:PORT)");
    snprintf(want, sizeof want, "\"%0126d:1\"", 1);
    element_refused(ADDR(want),
                    "\"address\": "
                    "\"0000000000000000000000000000000000000000\"... is "
                    "longer than 127 bytes");
#undef ADDR
}
END_TEST

START_TEST(refuses_bad_roles_names_and_unknown_fields)
{
    const char *ia = "\"id\": 1, \"address\": \"10.0.0.1:1\"";
    char f[512];
#define WITH(v) (snprintf(f, sizeof f, "%s, %s", ia, v), f)
    element_refused(WITH("\"role\": \"boss\""),
                    "\"role\": \"boss\" is not \"voter\", \"standby\" or "
                    "\"spare\"");
    element_refused(WITH("\"role\": \"Voter\""),
                    "\"role\": \"Voter\" is not \"voter\", \"standby\" or "
                    "\"spare\"");
    element_refused(WITH("\"role\": 1"),
                    "\"role\": an integer (want \"voter\", \"standby\" or "
                    "\"spare\")");
    element_refused(WITH("\"name\": 5"),
                    "\"name\": an integer (want a "
                    "string)");
    element_refused(WITH("\"name\": "
                         "\"1234567890123456789012345678901234567890123456789"
                         "012345678901234\""),
                    "\"name\": longer than 63 bytes");
    element_refused(WITH("\"colour\": 3"),
                    "unknown field \"colour\" (want \"id\", \"address\", "
                    "\"role\" or \"name\")");
    element_refused(WITH("\"ID\": 3"),
                    "unknown field \"ID\" (want \"id\", \"address\", \"role\" "
                    "or \"name\")");
#undef WITH
    /* The first bad field of the text is the one named. */
    element_refused("\"role\": \"x\", \"id\": 0, \"address\": \"1.2.3.4:5\"",
                    "\"role\": \"x\" is not \"voter\", \"standby\" or "
                    "\"spare\"");
    refused(
        "[{\"id\": 1, \"address\": \"10.0.0.1:1\"},"
        " {\"id\": 2, \"address\": \"10.0.0.2:1\", \"x\": 1}]",
        "peers.json: element 2: unknown field \"x\" (want \"id\", "
        "\"address\", \"role\" or \"name\")");
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
    refused(text, "peers.json: 65 servers, at most 64");
    /* 64 is fine. */
    text[n - strlen("{\"id\": 65, \"address\": \"10.0.0.1:65\"}") - 1] = ']';
    text[n - strlen("{\"id\": 65, \"address\": \"10.0.0.1:65\"}")] = '\0';
    {
        struct jr__peers p;
        ck_assert_int_eq(parse(text, &p), 0);
        ck_assert_uint_eq(p.n, 64);
        ck_assert_uint_eq(p.p[63].id, 64);
    }
    /* Exactly 64 KiB is read; one byte more is not, even when valid. */
    memset(text, ' ', JR__PEERS_FILE_MAX + 1);
    memcpy(text, ONE, strlen(ONE));
    text[JR__PEERS_FILE_MAX + 1] = '\0';
    refused(text, "peers.json: 65537 bytes, more than 65536");
    text[JR__PEERS_FILE_MAX] = '\0';
    {
        struct jr__peers p;
        ck_assert_int_eq(parse(text, &p), 0);
    }
    free(text);
}
END_TEST

static void parsed(const char *text, struct jr__peers *p)
{
    ck_assert_msg(parse(text, p) == 0, "%s: %s", text, errmsg);
}

static void invalid(const struct jr__peers *p, uint64_t self, const char *want)
{
    errmsg[0] = '\0';
    ck_assert_int_eq(jr__peers_validate(p, self, "peers.json", errmsg),
                     JR_EINVAL);
    ck_assert_str_eq(errmsg, want);
}

START_TEST(validation_names_the_elements)
{
    struct jr__peers p;
    parsed(
        "[{\"id\": 42, \"address\": \"10.0.0.1:1\"},"
        " {\"id\": 2, \"address\": \"10.0.0.2:1\"},"
        " {\"id\": \"42\", \"address\": \"10.0.0.3:1\"}]",
        &p);
    invalid(&p, 42, "peers.json: elements 1 and 3 have the same id 42");
    parsed(
        "[{\"id\": 1, \"address\": \"10.0.0.1:1\"},"
        " {\"id\": 2, \"address\": \"10.0.0.1:1\"}]",
        &p);
    invalid(&p, 1,
            "peers.json: elements 1 and 2 have the same address 10.0.0.1:1");
    parsed(
        "[{\"id\": 1, \"address\": \"10.0.0.1:1\", \"role\": \"standby\"},"
        " {\"id\": 2, \"address\": \"10.0.0.2:1\", \"role\": \"spare\"}]",
        &p);
    invalid(&p, 1,
            "peers.json: no voter: at least one server needs \"role\": "
            "\"voter\"");
    parsed("[{\"id\": 1, \"address\": \"10.0.0.1:1\"}]", &p);
    invalid(&p, 2,
            "peers.json: this node (id 2) is not among the servers: every "
            "survivor's file lists itself");
    ck_assert_int_eq(jr__peers_validate(&p, 1, "peers.json", errmsg), 0);
    ck_assert_int_eq(jr__peers_validate(&p, 0, "peers.json", errmsg), 0);
}
END_TEST

/* What jr_recover_write_peers fills by hand is checked like a file. */
START_TEST(validation_checks_structures_filled_by_hand)
{
    struct jr__peers p;
    parsed(
        "[{\"id\": 1, \"address\": \"10.0.0.1:1\"},"
        " {\"id\": 2, \"address\": \"10.0.0.2:1\"}]",
        &p);
    p.p[1].id = 0;
    invalid(&p, 0,
            "peers.json: element 2: id 0 is not a node id (want 1 to "
            "18446744073709551615)");
    p.p[1].id = 2;
    strcpy(p.p[1].address, "10.0.0.2");
    invalid(&p, 0,
            "peers.json: element 2: \"address\": \"10.0.0.2\" has no port "
            "(want HOST:PORT)");
    memset(p.p[1].address, 'x', sizeof p.p[1].address);
    invalid(&p, 0, "peers.json: element 2: the address is not terminated");
    strcpy(p.p[1].address, "10.0.0.2:1");
    p.p[1].role = 7;
    invalid(&p, 0, "peers.json: element 2: role 7 is not a raft role");
    p.p[1].role = RAFT_SPARE;
    memset(p.p[1].name, 'n', sizeof p.p[1].name);
    invalid(&p, 0, "peers.json: element 2: the name is not terminated");
    strcpy(p.p[1].name, "\xc3(");
    invalid(&p, 0, "peers.json: element 2: the name is not UTF-8");
    strcpy(p.p[1].name, "\xed\xa0\x80"); /* a surrogate */
    invalid(&p, 0, "peers.json: element 2: the name is not UTF-8");
    strcpy(p.p[1].name, "h\xc3\xa9te \xf0\x9f\x90\x98");
    ck_assert_int_eq(jr__peers_validate(&p, 0, "peers.json", errmsg), 0);
    p.n = 0;
    invalid(&p, 0, "peers.json: 0 servers, want 1 to 64");
    p.n = JR__PEERS_MAX + 1;
    invalid(&p, 0, "peers.json: 65 servers, want 1 to 64");
}
END_TEST

static void sample(struct jr__peers *p)
{
    memset(p, 0, sizeof *p);
    p->n = 3;
    p->p[0].id = UINT64_MAX - 1;
    strcpy(p->p[0].address, "127.0.0.1:7401");
    p->p[0].role = RAFT_VOTER;
    strcpy(p->p[0].name, "n1");
    p->p[1].id = 2;
    strcpy(p->p[1].address, "127.0.0.1:7402");
    p->p[1].role = RAFT_STANDBY;
    p->p[2].id = 9223372036854775808ull;
    strcpy(p->p[2].address, "127.0.0.1:7403");
    p->p[2].role = RAFT_SPARE;
    strcpy(p->p[2].name, "h\xc3\xa9");
}

/* Names of the directory's entries, sorted, joined with spaces. */
static void list_dir(char *out, size_t size)
{
    struct dirent **names;
    int i, n = scandir(tmpdir, &names, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    out[0] = '\0';
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            if (out[0] != '\0') {
                strncat(out, " ", size - strlen(out) - 1);
            }
            strncat(out, names[i]->d_name, size - strlen(out) - 1);
        }
        free(names[i]);
    }
    free(names);
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(write_then_read_round_trips_atomically)
{
    struct jr__peers p, q;
    struct raft_configuration conf;
    char path[128], names[256];
    struct stat st;
    mode_t old;
    unsigned i;
    sample(&p);
    snprintf(path, sizeof path, "%s/peers.json", tmpdir);
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), JR_ENOTFOUND);
    ck_assert_str_eq(strstr(errmsg, "/peers.json"),
                     "/peers.json does not exist");
    /* Mode 0600 whatever the umask. */
    old = umask(0);
    ck_assert_int_eq(jr__peers_write_file(path, &p, errmsg), 0);
    umask(old);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    list_dir(names, sizeof names);
    ck_assert_str_eq(names, "peers.json");
    ck_assert_str_eq(slurp(path),
                     "[\n"
                     "  {\n"
                     "    \"id\": \"18446744073709551614\",\n"
                     "    \"address\": \"127.0.0.1:7401\",\n"
                     "    \"role\": \"voter\",\n"
                     "    \"name\": \"n1\"\n"
                     "  },\n"
                     "  {\n"
                     "    \"id\": \"2\",\n"
                     "    \"address\": \"127.0.0.1:7402\",\n"
                     "    \"role\": \"standby\"\n"
                     "  },\n"
                     "  {\n"
                     "    \"id\": \"9223372036854775808\",\n"
                     "    \"address\": \"127.0.0.1:7403\",\n"
                     "    \"role\": \"spare\",\n"
                     "    \"name\": \"h\xc3\xa9\"\n"
                     "  }\n"
                     "]\n");
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), 0);
    ck_assert_uint_eq(q.n, p.n);
    for (i = 0; i < p.n; i++) {
        ck_assert_uint_eq(q.p[i].id, p.p[i].id);
        ck_assert_str_eq(q.p[i].address, p.p[i].address);
        ck_assert_int_eq(q.p[i].role, p.p[i].role);
        ck_assert_str_eq(q.p[i].name, p.p[i].name);
    }
    ck_assert_int_eq(jr__peers_to_configuration(&q, &conf), 0);
    ck_assert_uint_eq(conf.n, 3);
    ck_assert_uint_eq(conf.servers[0].id, UINT64_MAX - 1);
    ck_assert_str_eq(conf.servers[0].address, "127.0.0.1:7401");
    ck_assert_uint_eq(conf.servers[1].id, 2);
    ck_assert_int_eq(conf.servers[1].role, RAFT_STANDBY);
    ck_assert_int_eq(conf.servers[2].role, RAFT_SPARE);
    raft_configuration_close(&conf);
}
END_TEST

START_TEST(write_replaces_the_file_and_any_stale_temporary)
{
    struct jr__peers p, q;
    char path[128], tmp[160], names[256];
    struct stat st;
    int fd;
    sample(&p);
    snprintf(path, sizeof path, "%s/peers.json", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "old", 3), 3);
    close(fd);
    /* A crash left a temporary file readable by all. */
    fd = open(tmp, O_WRONLY | O_CREAT, 0666);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "stale stale stale", 17), 17);
    ck_assert_int_eq(fchmod(fd, 0666), 0);
    close(fd);
    ck_assert_int_eq(jr__peers_write_file(path, &p, errmsg), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    list_dir(names, sizeof names);
    ck_assert_str_eq(names, "peers.json");
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), 0);
    ck_assert_uint_eq(q.n, 3);
}
END_TEST

START_TEST(write_refuses_invalid_servers_and_changes_nothing)
{
    struct jr__peers p;
    char path[128], names[256];
    sample(&p);
    p.p[2].id = 2;
    snprintf(path, sizeof path, "%s/peers.json", tmpdir);
    ck_assert_int_eq(jr__peers_write_file(path, &p, errmsg), JR_EINVAL);
    ck_assert_str_eq(strstr(errmsg, "/peers.json: "),
                     "/peers.json: elements 2 and 3 have the same id 2");
    list_dir(names, sizeof names);
    ck_assert_str_eq(names, "");
    sample(&p);
    snprintf(path, sizeof path, "%s/no/such/dir/peers.json", tmpdir);
    ck_assert_int_eq(jr__peers_write_file(path, &p, errmsg), JR_ENOTFOUND);
    ck_assert_str_eq(strstr(errmsg, "/no/such"),
                     "/no/such/dir/peers.json.tmp: No such file or "
                     "directory");
    ck_assert_int_eq(strncmp(errmsg, "create ", 7), 0);
}
END_TEST

START_TEST(read_refuses_what_is_not_a_small_regular_file)
{
    struct jr__peers q;
    char path[128], want[256];
    char *big;
    int fd;
    memset(&q, 0xaa, sizeof q);
    ck_assert_int_eq(jr__peers_read_file(tmpdir, &q, errmsg), JR_EINVAL);
    snprintf(want, sizeof want, "%s: not a regular file", tmpdir);
    ck_assert_str_eq(errmsg, want);
    snprintf(path, sizeof path, "%s/peers.json", tmpdir);
    big = malloc(JR__PEERS_FILE_MAX + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', JR__PEERS_FILE_MAX + 1);
    memcpy(big, ONE, strlen(ONE));
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, big, JR__PEERS_FILE_MAX + 1),
                     JR__PEERS_FILE_MAX + 1);
    close(fd);
    free(big);
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), JR_EINVAL);
    snprintf(want, sizeof want, "%s: 65537 bytes, more than 65536", path);
    ck_assert_str_eq(errmsg, want);
    ck_assert_int_eq(truncate(path, JR__PEERS_FILE_MAX), 0);
    ck_assert_msg(jr__peers_read_file(path, &q, errmsg) == 0, "%s", errmsg);
    ck_assert_uint_eq(q.n, 1);
    ck_assert_int_eq(truncate(path, 20), 0);
    memset(&q, 0xaa, sizeof q);
    ck_assert_int_eq(jr__peers_read_file(path, &q, errmsg), JR_EINVAL);
    snprintf(want, sizeof want,
             "%s: not valid JSON: line 1, column 20: ':' expected near end of "
             "file",
             path);
    ck_assert_str_eq(errmsg, want);
    ck_assert_uint_eq(q.n, 0xaaaaaaaau);
}
END_TEST

START_TEST(to_configuration_leaves_an_empty_one_on_failure)
{
    struct jr__peers p;
    struct raft_configuration conf;
    sample(&p);
    p.p[2].id = 2; /* not validated: raft refuses the duplicate */
    ck_assert_int_eq(jr__peers_to_configuration(&p, &conf), JR_EINVAL);
    ck_assert_uint_eq(conf.n, 0);
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
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parses_ids_as_numbers_and_strings);
    tcase_add_test(tc, refuses_text_that_is_not_a_json_array_of_objects);
    tcase_add_test(tc, refuses_bad_ids_naming_them);
    tcase_add_test(tc, refuses_bad_addresses_naming_them);
    tcase_add_test(tc, refuses_bad_roles_names_and_unknown_fields);
    tcase_add_test(tc, refuses_too_many_servers_and_too_large_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("validate");
    tcase_add_test(tc, validation_names_the_elements);
    tcase_add_test(tc, validation_checks_structures_filled_by_hand);
    suite_add_tcase(s, tc);
    tc = tcase_create("configuration");
    tcase_add_test(tc, to_configuration_leaves_an_empty_one_on_failure);
    tcase_add_test(tc, raft_configuration_encoding_is_the_one_inspect_decodes);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, write_then_read_round_trips_atomically);
    tcase_add_test(tc, write_replaces_the_file_and_any_stale_temporary);
    tcase_add_test(tc, write_refuses_invalid_servers_and_changes_nothing);
    tcase_add_test(tc, read_refuses_what_is_not_a_small_regular_file);
    suite_add_tcase(s, tc);
    return s;
}
