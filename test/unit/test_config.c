/* test_config.c: jacod's command line and config file parser. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemon/config.h"
#include "suites.h"
#include "testutil.h"

/* ---- helpers ---- */

static char tmpdir[64];
static char conf_path[128]; /* the file written by write_conf */
static char err[512];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jd-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(conf_path, sizeof conf_path, "%s/jacod.conf", tmpdir);
    err[0] = '\0';
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0') {
        tu_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}

/* Write text to conf_path. */
static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* jd_config_parse of "jacod" and the flags: PARSE(&c, "--name", "n1"). A
 * compound literal rather than varargs, so no NULL sentinel to forget. */
#define PARSE(c, ...) \
    parse_argv((c), (const char *[]){"jacod", __VA_ARGS__, NULL})

static int parse_argv(struct jd_config *c, const char **args)
{
    char *argv[64];
    int argc = 0;
    while (args[argc] != NULL) {
        ck_assert_int_lt(argc, 63);
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    err[0] = '\0';
    return jd_config_parse(c, argc, argv, err, sizeof err);
}

/* Parse conf_path holding text (plus "name = n1" unless text sets a name,
 * so that the host name does not matter), expecting success. */
static void parse_text_ok(struct jd_config *c, const char *text)
{
    char buf[8192];
    int rv;
    snprintf(buf, sizeof buf, "%s%s",
             strstr(text, "name =") != NULL ? "" : "name = n1\n", text);
    write_conf(buf);
    rv = PARSE(c, "--config", conf_path);
    ck_assert_msg(rv == 0, "parse of \"%s\" failed: %s", text, err);
}

/* Parsing a file of text must fail with a message that starts with
 * "PATH:LINE: " and contains mention. */
static void expect_file_error(const char *text,
                              unsigned line,
                              const char *mention)
{
    struct jd_config c;
    char prefix[256];
    int rv;
    write_conf(text);
    rv = PARSE(&c, "--config", conf_path, "--name", "n1");
    ck_assert_msg(rv == -1, "parse of \"%s\" returned %d", text, rv);
    snprintf(prefix, sizeof prefix, "%s:%u: ", conf_path, line);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "message \"%s\" does not start with \"%s\"", err, prefix);
    ck_assert_msg(strstr(err, mention) != NULL,
                  "message \"%s\" does not mention \"%s\"", err, mention);
}

/* Parsing with flag=value (and an empty file) must fail with a message that
 * starts with the flag and contains mention. */
static void expect_flag_error(const char *flag,
                              const char *value,
                              const char *mention)
{
    struct jd_config c;
    char prefix[128];
    int rv;
    write_conf("");
    rv = PARSE(&c, "--config", conf_path, "--name", "n1", flag, value);
    ck_assert_msg(rv == -1, "%s %s returned %d", flag, value, rv);
    snprintf(prefix, sizeof prefix, "%s: ", flag);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "message \"%s\" does not start with \"%s\"", err, prefix);
    ck_assert_msg(strstr(err, mention) != NULL,
                  "message \"%s\" does not mention \"%s\"", err, mention);
}

/* Parsing argv must fail with a message containing mention. */
#define expect_argv_error(mention, ...)                                        \
    do {                                                                       \
        struct jd_config c_;                                                   \
        int rv_ = PARSE(&c_, __VA_ARGS__);                                     \
        ck_assert_int_eq(rv_, -1);                                             \
        ck_assert_msg(strstr(err, mention) != NULL,                            \
                      "message \"%s\" does not mention \"%s\"", err, mention); \
    } while (0)

/* A valid configuration to break for jd_config_check. */
static void three_node_config(struct jd_config *c)
{
    jd_config_defaults(c);
    strcpy(c->name, "b");
    strcpy(c->peer_address, "10.0.0.2:7400");
    c->n_initial = 3;
    strcpy(c->initial_cluster[0].name, "a");
    strcpy(c->initial_cluster[0].address, "10.0.0.1:7400");
    strcpy(c->initial_cluster[1].name, "b");
    strcpy(c->initial_cluster[1].address, "10.0.0.2:7400");
    strcpy(c->initial_cluster[2].name, "c");
    strcpy(c->initial_cluster[2].address, "10.0.0.3:7400");
    strcpy(c->secret_file, "/etc/jaco/secret");
}

/* ---- defaults ---- */

START_TEST(defaults_are_the_documented_values)
{
    struct jd_config c;
    memset(&c, 0xff, sizeof c);
    jd_config_defaults(&c);
    ck_assert_str_eq(c.config_path, "");
    ck_assert_str_eq(c.data_dir, "/var/lib/jaco");
    ck_assert_str_eq(c.peer_address, "127.0.0.1:7400");
    ck_assert_str_eq(c.client_address, "");
    ck_assert_str_eq(c.socket_path, "/run/jaco/jacod.sock");
    ck_assert(!c.bootstrap);
    ck_assert_uint_eq(c.n_initial, 0);
    ck_assert_uint_eq(c.election_timeout_ms, 1000);
    ck_assert_uint_eq(c.heartbeat_timeout_ms, 100);
    ck_assert_uint_eq(c.snapshot_threshold, 8192);
    ck_assert_str_eq(c.log_level, "info");
    ck_assert_str_eq(c.scheduler_plugin, JD_DEFAULT_SCHEDULER);
    ck_assert_str_eq(c.isolation_plugin, "");
    ck_assert_str_eq(c.isolation_ports, "20000-29999");
    ck_assert_uint_eq(c.restart_limit, 3);
    ck_assert_uint_eq(c.restart_backoff_ms, 1000);
    ck_assert_uint_eq(c.stop_timeout_ms, 10000);
    ck_assert_uint_eq(c.reschedule_after_s, 60);
    ck_assert_uint_eq(c.audit_max_events, 10000);
    ck_assert_uint_eq(c.audit_max_age_s, 2592000);
}
END_TEST

START_TEST(default_name_is_the_host_name_up_to_its_first_dot)
{
    struct jd_config c;
    char host[256], want[64];
    size_t i, len;
    ck_assert_int_eq(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = '\0';
    len = strcspn(host, ".");
    ck_assert_uint_lt(len, sizeof want);
    for (i = 0; i < len; i++) {
        want[i] =
            (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
    }
    want[len] = '\0';
    jd_config_defaults(&c);
    ck_assert_str_eq(c.name, want);
    ck_assert_ptr_null(strchr(c.name, '.'));
}
END_TEST

START_TEST(parse_without_a_file_gives_the_defaults)
{
    struct jd_config c;
    if (access(JD_CONFIG_DEFAULT_PATH, F_OK) == 0) {
        /* This machine has a real config: the claim cannot be tested. */
        return;
    }
    ck_assert_int_eq(PARSE(&c, "--name", "n1"), 0);
    ck_assert_str_eq(c.config_path, "");
    ck_assert_str_eq(c.name, "n1");
    ck_assert_str_eq(c.data_dir, "/var/lib/jaco");
    ck_assert_str_eq(c.peer_address, "127.0.0.1:7400");
    ck_assert_uint_eq(c.election_timeout_ms, 1000);
}
END_TEST

/* ---- the file ---- */

START_TEST(file_sets_every_key)
{
    struct jd_config c;
    parse_text_ok(&c,
                  "name = node-7\n"
                  "data-dir = /srv/jaco\n"
                  "peer-address = 10.1.2.3:7000\n"
                  "client-address = [::1]:7001\n"
                  "socket = /tmp/j.sock\n"
                  "bootstrap = yes\n"
                  "election-timeout = 3000\n"
                  "heartbeat-timeout = 300\n"
                  "snapshot-threshold = 16\n"
                  "log-level = debug\n"
                  "scheduler-plugin = /usr/lib/jaco/sched.so\n"
                  "isolation-plugin = /usr/lib/jaco/iso.so\n"
                  "audit-max-events = 5\n"
                  "audit-max-age = 12h\n");
    ck_assert_str_eq(c.config_path, conf_path);
    ck_assert_str_eq(c.name, "node-7");
    ck_assert_str_eq(c.data_dir, "/srv/jaco");
    ck_assert_str_eq(c.peer_address, "10.1.2.3:7000");
    ck_assert_str_eq(c.client_address, "[::1]:7001");
    ck_assert_str_eq(c.socket_path, "/tmp/j.sock");
    ck_assert(c.bootstrap);
    ck_assert_uint_eq(c.election_timeout_ms, 3000);
    ck_assert_uint_eq(c.heartbeat_timeout_ms, 300);
    ck_assert_uint_eq(c.snapshot_threshold, 16);
    ck_assert_str_eq(c.log_level, "debug");
    ck_assert_str_eq(c.scheduler_plugin, "/usr/lib/jaco/sched.so");
    ck_assert_str_eq(c.isolation_plugin, "/usr/lib/jaco/iso.so");
    ck_assert_uint_eq(c.audit_max_events, 5);
    ck_assert_uint_eq(c.audit_max_age_s, 12 * 3600);
}
END_TEST

START_TEST(flags_override_the_file_before_or_after_config)
{
    struct jd_config c;
    write_conf(
        "name = n1\nelection-timeout = 3000\ndata-dir = /file\n"
        "log-level = error\n");
    ck_assert_int_eq(PARSE(&c, "--election-timeout", "5000", "--config",
                           conf_path, "--data-dir=/flag"),
                     0);
    ck_assert_uint_eq(c.election_timeout_ms, 5000);
    ck_assert_str_eq(c.data_dir, "/flag");
    /* Keys no flag names keep the file's value. */
    ck_assert_str_eq(c.log_level, "error");
}
END_TEST

START_TEST(last_of_a_repeated_flag_wins)
{
    struct jd_config c;
    write_conf("name = n1\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path, "--log-level", "debug",
                           "--log-level=warning"),
                     0);
    ck_assert_str_eq(c.log_level, "warning");
}
END_TEST

START_TEST(flag_can_empty_the_client_address_of_the_file)
{
    struct jd_config c;
    write_conf("name = n1\nclient-address = 0.0.0.0:7401\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path), 0);
    ck_assert_str_eq(c.client_address, "0.0.0.0:7401");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path, "--client-address="), 0);
    ck_assert_str_eq(c.client_address, "");
}
END_TEST

START_TEST(comments_blank_lines_and_whitespace_are_ignored)
{
    struct jd_config c;
    parse_text_ok(&c,
                  "# a comment\n"
                  "\n"
                  "   \t\n"
                  "   # indented comment = not a key\n"
                  "  data-dir\t=   /a/b   # trailing comment\n"
                  "socket = /s#1\n"
                  "log-level=warning\r\n"
                  "scheduler-plugin = # only a comment\n"
                  "isolation-plugin = /x.so");
    ck_assert_str_eq(c.data_dir, "/a/b");
    /* '#' not after whitespace is part of the value. */
    ck_assert_str_eq(c.socket_path, "/s#1");
    ck_assert_str_eq(c.log_level, "warning");
    ck_assert_str_eq(c.scheduler_plugin, "");
    /* The last line has no newline. */
    ck_assert_str_eq(c.isolation_plugin, "/x.so");
}
END_TEST

START_TEST(quoted_values_keep_spaces_and_hashes_and_unescape)
{
    struct jd_config c;
    parse_text_ok(&c,
                  "data-dir = \"  /my data # here \"   # comment\n"
                  "socket = \"/a\\\"b\\\\c\"\n"
                  "client-address = \"\"\n"
                  "scheduler-plugin = \"/p.so\"\n");
    ck_assert_str_eq(c.data_dir, "  /my data # here ");
    ck_assert_str_eq(c.socket_path, "/a\"b\\c");
    ck_assert_str_eq(c.client_address, "");
    ck_assert_str_eq(c.scheduler_plugin, "/p.so");
}
END_TEST

START_TEST(bad_quoting_is_an_error)
{
    expect_file_error("\ndata-dir = \"/a\n", 2, "missing closing quote");
    expect_file_error("data-dir = \"/a\\nb\"\n", 1, "escape");
    expect_file_error("data-dir = \"/a\" b\n", 1, "after the closing quote");
    expect_file_error("data-dir = \"/a\\\"\n", 1, "missing closing quote");
}
END_TEST

START_TEST(bootstrap_accepts_six_spellings)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};
    struct jd_config c;
    char text[64];
    int i;
    for (i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "bootstrap = %s\n", yes[i]);
        parse_text_ok(&c, text);
        ck_assert_msg(c.bootstrap, "%s", yes[i]);
        snprintf(text, sizeof text, "bootstrap = %s\n", no[i]);
        parse_text_ok(&c, text);
        ck_assert_msg(!c.bootstrap, "%s", no[i]);
    }
    expect_file_error("bootstrap = maybe\n", 1, "bootstrap: \"maybe\"");
}
END_TEST

START_TEST(bootstrap_flag_sets_it_and_takes_no_value)
{
    struct jd_config c;
    write_conf("name = n1\nbootstrap = no\n");
    ck_assert_int_eq(PARSE(&c, "--bootstrap", "--config", conf_path), 0);
    ck_assert(c.bootstrap);
    expect_argv_error("--bootstrap takes no value", "--bootstrap=yes");
    /* A following word is a stray argument, not its value. */
    expect_argv_error("unexpected argument \"yes\"", "--config", conf_path,
                      "--bootstrap", "yes");
}
END_TEST

START_TEST(audit_max_age_takes_durations)
{
    static const struct {
        const char *text;
        unsigned seconds;
    } cases[] = {{"30d", 2592000}, {"12h", 43200}, {"90m", 5400},
                 {"45s", 45},      {"3600", 3600}, {"1", 1}};
    struct jd_config c;
    char text[64];
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "audit-max-age = %s\n", cases[i].text);
        parse_text_ok(&c, text);
        ck_assert_uint_eq(c.audit_max_age_s, cases[i].seconds);
    }
    expect_file_error("audit-max-age = 1.5h\n", 1, "not a duration");
    expect_file_error("audit-max-age = 10x\n", 1, "not a duration");
    expect_file_error("audit-max-age = -5\n", 1, "not a duration");
    expect_file_error("audit-max-age = d\n", 1, "not a duration");
    expect_file_error("audit-max-age =\n", 1, "not a duration");
    expect_file_error("audit-max-age = 0\n", 1, "out of range");
    expect_file_error("audit-max-age = 50000d\n", 1, "out of range");
    expect_file_error("audit-max-age = 99999999999999999999d\n", 1,
                      "not a duration");
    expect_flag_error("--audit-max-age", "1 h", "not a duration");
}
END_TEST

START_TEST(missing_explicit_file_is_an_error)
{
    struct jd_config c;
    char path[160];
    snprintf(path, sizeof path, "%s/nope.conf", tmpdir);
    ck_assert_int_eq(PARSE(&c, "--config", path, "--name", "n1"), -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    expect_argv_error("--config", "--config", "");
}
END_TEST

START_TEST(directory_as_config_file_is_an_error)
{
    struct jd_config c;
    ck_assert_int_eq(PARSE(&c, "--config", tmpdir, "--name", "n1"), -1);
    ck_assert_ptr_nonnull(strstr(err, tmpdir));
}
END_TEST

START_TEST(failed_parse_leaves_the_config_untouched)
{
    struct jd_config c, before;
    memset(&c, 0x5a, sizeof c);
    before = c;
    write_conf("name = n1\ndata-dir = /x\nelection-timeout = abc\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path), -1);
    ck_assert_int_eq(memcmp(&c, &before, sizeof c), 0);
}
END_TEST

/* ---- errors ---- */

START_TEST(unknown_key_is_named_with_its_line)
{
    char want[256];
    expect_file_error(
        "name = n1\n# c\n\ndata-dir = /d\n\n\n"
        "electon-timeout = 100\n",
        7, "unknown key \"electon-timeout\"");
    snprintf(want, sizeof want, "%s:7: unknown key \"electon-timeout\"",
             conf_path);
    ck_assert_str_eq(err, want);
    /* Command-line-only flags are not keys. */
    expect_file_error("config = /x\n", 1, "unknown key \"config\"");
    expect_file_error("Name = x\n", 1, "unknown key \"Name\"");
    /* Bytes of the file that would move a terminal come back as '?'. */
    expect_file_error("na\033[2Jme = x\n", 1, "unknown key \"na?[2Jme\"");
}
END_TEST

START_TEST(key_given_twice_is_an_error_at_the_second)
{
    expect_file_error("log-level = info\ndata-dir = /a\nlog-level = debug\n", 3,
                      "duplicate key \"log-level\" (first set on line 1)");
}
END_TEST

START_TEST(line_without_equals_is_an_error)
{
    expect_file_error("data-dir /x\n", 1, "key = value");
    expect_file_error("\n\ndata-dir # = /x\n", 3, "key = value");
    expect_file_error("= /x\n", 1, "missing key");
}
END_TEST

START_TEST(number_errors_name_key_and_line)
{
    char want[256];
    expect_file_error("name = n1\n\nelection-timeout = abc\n", 3,
                      "election-timeout");
    snprintf(want, sizeof want,
             "%s:3: election-timeout: \"abc\" is not a number of "
             "milliseconds",
             conf_path);
    ck_assert_str_eq(err, want);
    expect_file_error("heartbeat-timeout = -1\n", 1, "heartbeat-timeout");
    expect_file_error("heartbeat-timeout = +50\n", 1, "not a number");
    expect_file_error("heartbeat-timeout = 0x10\n", 1, "not a number");
    expect_file_error("heartbeat-timeout = 50ms\n", 1, "not a number");
    expect_file_error("heartbeat-timeout =\n", 1, "not a number");
    expect_file_error("snapshot-threshold = 99999999999999999999999\n", 1,
                      "snapshot-threshold");
    expect_file_error("audit-max-events = 12 3\n", 1, "audit-max-events");
    expect_flag_error("--election-timeout", " 500", "not a number");
}
END_TEST

START_TEST(numbers_out_of_range_are_errors)
{
    struct jd_config c;
    expect_file_error("\nelection-timeout = 9\n", 2,
                      "election-timeout: 9 is out of range (10 to 600000 ms)");
    expect_file_error("election-timeout = 600001\n", 1, "out of range");
    expect_file_error("heartbeat-timeout = 9\n", 1, "heartbeat-timeout");
    expect_file_error("snapshot-threshold = 15\n", 1,
                      "snapshot-threshold: 15 is out of range");
    expect_file_error("snapshot-threshold = 1000000001\n", 1, "out of range");
    expect_file_error("audit-max-events = 0\n", 1, "audit-max-events");
    expect_flag_error("--heartbeat-timeout", "700000", "out of range");
    /* The bounds themselves are accepted. */
    parse_text_ok(&c,
                  "election-timeout = 600000\nheartbeat-timeout = 10\n"
                  "snapshot-threshold = 1000000000\n");
    ck_assert_uint_eq(c.election_timeout_ms, 600000);
    ck_assert_uint_eq(c.heartbeat_timeout_ms, 10);
    ck_assert_uint_eq(c.snapshot_threshold, 1000000000);
}
END_TEST

START_TEST(bad_host_port_is_an_error)
{
    static const char *const bad[] = {
        "foo",        "foo:",  ":7400",    "h:0",       "h:65536",
        "h:7a",       "h:-1",  "::1:7400", "[::1]7400", "h p:80",
        "h:99999999", "[]:80", "[zz]:80",  ""};
    struct jd_config c;
    char text[128];
    size_t i;
    expect_flag_error("--peer-address", "foo", "\"foo\" is not HOST:PORT");
    ck_assert_str_eq(err, "--peer-address: \"foo\" is not HOST:PORT");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "\n\npeer-address = \"%s\"\n", bad[i]);
        expect_file_error(text, 3, "peer-address");
        ck_assert_ptr_nonnull(strstr(err, "HOST:PORT"));
    }
    expect_file_error("client-address = h:70000\n", 1, "1 to 65535");
    parse_text_ok(&c,
                  "peer-address = [fe80::1]:65535\n"
                  "client-address = my-host.example.com:1\n");
    ck_assert_str_eq(c.peer_address, "[fe80::1]:65535");
    ck_assert_str_eq(c.client_address, "my-host.example.com:1");
}
END_TEST

START_TEST(values_too_long_for_their_field_are_errors)
{
    char *text = malloc(6000);
    char name[80], host[160];
    ck_assert_ptr_nonnull(text);
    strcpy(text, "\ndata-dir = /");
    memset(text + strlen(text), 'x', 4095);
    strcpy(text + strlen("\ndata-dir = /") + 4095, "\n");
    expect_file_error(text, 2, "data-dir: value is 4096 bytes");
    /* 4095 bytes fit. */
    text[strlen(text) - 2] = '\n';
    text[strlen(text) - 1] = '\0';
    write_conf(text);
    {
        struct jd_config c;
        ck_assert_int_eq(PARSE(&c, "--config", conf_path, "--name", "n1"), 0);
        ck_assert_uint_eq(strlen(c.data_dir), 4095);
    }
    free(text);
    memset(name, 'a', 64);
    name[64] = '\0';
    expect_flag_error("--name", name, "longer than the 63 allowed");
    /* A valid HOST:PORT of 128 bytes. */
    memset(host, 'h', 125);
    strcpy(host + 125, ":80");
    expect_flag_error("--peer-address", host, "longer than the 127 allowed");
    expect_flag_error("--log-level", "informationally", "not debug");
}
END_TEST

START_TEST(empty_paths_and_bad_names_are_errors)
{
    expect_file_error("data-dir =\n", 1, "data-dir: must not be empty");
    expect_file_error("socket = \"\"\n", 1, "socket: must not be empty");
    expect_file_error("name = Node1\n", 1, "name: \"Node1\" is not 1 to 63");
    expect_flag_error("--name", "", "is not 1 to 63");
    expect_flag_error("--name", "a_b", "is not 1 to 63");
}
END_TEST

START_TEST(unknown_and_abbreviated_flags_are_errors)
{
    expect_argv_error("unknown flag --bogus", "--bogus");
    expect_argv_error("unknown flag --bogus", "--bogus=1");
    expect_argv_error("unknown flag -x", "-x");
    /* getopt_long would take an unambiguous prefix. */
    expect_argv_error(
        "unknown flag --election (did you mean "
        "--election-timeout?)",
        "--election", "500");
    expect_argv_error("unknown flag --boot", "--boot");
    /* Long options only: no single-dash long form. */
    expect_argv_error("unknown flag -n", "-name", "n1");
}
END_TEST

START_TEST(stray_arguments_and_missing_values_are_errors)
{
    expect_argv_error("unexpected argument \"extra\"", "--name", "n1", "extra");
    expect_argv_error("unexpected argument \"--name\"", "--", "--name");
    expect_argv_error("--data-dir: missing value", "--name", "n1",
                      "--data-dir");
}
END_TEST

START_TEST(help_returns_1_and_version_2)
{
    struct jd_config c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(PARSE(&c, "--help"), 1);
    ck_assert_int_eq(PARSE(&c, "-h"), 1);
    /* Acted on where it appears: a later bad flag or file does not
     * matter. */
    ck_assert_int_eq(PARSE(&c, "--name", "n1", "-h", "--bogus"), 1);
    ck_assert_int_eq(PARSE(&c, "--config", "/nonexistent", "--help"), 1);
    ck_assert_int_eq(PARSE(&c, "--version"), 2);
    ck_assert_int_eq(PARSE(&c, "--bogus", "--help"), -1);
    /* c is only written on success. */
    ck_assert_str_eq(c.name, "");
}
END_TEST

START_TEST(usage_lists_every_flag_key_and_default)
{
    static const char *const keys[] = {"name",
                                       "data-dir",
                                       "peer-address",
                                       "client-address",
                                       "socket",
                                       "bootstrap",
                                       "initial-cluster",
                                       "election-timeout",
                                       "heartbeat-timeout",
                                       "snapshot-threshold",
                                       "log-level",
                                       "scheduler-plugin",
                                       "isolation-plugin",
                                       "audit-max-events",
                                       "audit-max-age"};
    static const char *const lines[] = {"[data-dir = /var/lib/jaco]",
                                        "[peer-address = 127.0.0.1:7400]",
                                        "[client-address = \"\"]",
                                        "[socket = /run/jaco/jacod.sock]",
                                        "[bootstrap = false]",
                                        "[election-timeout = 1000]",
                                        "[heartbeat-timeout = 100]",
                                        "[snapshot-threshold = 8192]",
                                        "[log-level = info]",
                                        "[audit-max-events = 10000]",
                                        "[audit-max-age = 30d]",
                                        "usage: jacod-test ",
                                        "--help",
                                        "--version",
                                        "--config PATH",
                                        JD_CONFIG_DEFAULT_PATH};
    char *buf = NULL, flag[64];
    size_t len = 0, i;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    jd_config_usage(f, "jacod-test");
    ck_assert_int_eq(fclose(f), 0);
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(flag, sizeof flag, "  --%s", keys[i]);
        ck_assert_msg(strstr(buf, flag) != NULL, "no flag %s", keys[i]);
        snprintf(flag, sizeof flag, "[%s = ", keys[i]);
        ck_assert_msg(strstr(buf, flag) != NULL, "no key %s", keys[i]);
    }
    for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        ck_assert_msg(strstr(buf, lines[i]) != NULL, "no \"%s\"", lines[i]);
    }
    free(buf);
}
END_TEST

START_TEST(every_usage_flag_is_accepted)
{
    /* Keeps the help text and the parser from drifting apart: each key the
     * usage shows must parse as a flag with its default value. */
    struct jd_config c;
    write_conf("");
    ck_assert_int_eq(
        PARSE(&c, "--config", conf_path, "--name", "n1", "--data-dir",
              "/var/lib/jaco", "--peer-address", "127.0.0.1:7400",
              "--client-address", "", "--socket", "/run/jaco/jacod.sock",
              "--initial-cluster", "", "--election-timeout", "1000",
              "--heartbeat-timeout", "100", "--snapshot-threshold", "8192",
              "--log-level", "info", "--scheduler-plugin", "",
              "--isolation-plugin", "", "--audit-max-events", "10000",
              "--audit-max-age", "30d", "--bootstrap"),
        0);
    ck_assert(c.bootstrap);
    ck_assert_uint_eq(c.audit_max_age_s, 2592000);
}
END_TEST

/* ---- initial-cluster ---- */

START_TEST(initial_cluster_of_three_is_parsed)
{
    struct jd_config c;
    parse_text_ok(&c,
                  "name = b\n"
                  "peer-address = 10.0.0.2:7400\n"
                  "initial-cluster = a=10.0.0.1:7400, b=10.0.0.2:7400,"
                  "c=host-c.lan:7500\n");
    ck_assert_uint_eq(c.n_initial, 3);
    ck_assert_str_eq(c.initial_cluster[0].name, "a");
    ck_assert_str_eq(c.initial_cluster[0].address, "10.0.0.1:7400");
    ck_assert_str_eq(c.initial_cluster[1].name, "b");
    ck_assert_str_eq(c.initial_cluster[1].address, "10.0.0.2:7400");
    ck_assert_str_eq(c.initial_cluster[2].name, "c");
    ck_assert_str_eq(c.initial_cluster[2].address, "host-c.lan:7500");
}
END_TEST

START_TEST(initial_cluster_flag_replaces_the_file_list)
{
    struct jd_config c;
    write_conf(
        "name = a\n"
        "initial-cluster = a=127.0.0.1:7400,b=h:1,c=h:2\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path, "--initial-cluster",
                           "a=127.0.0.1:7400,d=h:9"),
                     0);
    ck_assert_uint_eq(c.n_initial, 2);
    ck_assert_str_eq(c.initial_cluster[1].name, "d");
    ck_assert_int_eq(
        PARSE(&c, "--config", conf_path, "--initial-cluster=", "--bootstrap"),
        0);
    ck_assert_uint_eq(c.n_initial, 0);
    ck_assert(c.bootstrap);
}
END_TEST

START_TEST(initial_cluster_must_include_this_node)
{
    struct jd_config c;
    write_conf("name = d\ninitial-cluster = a=h:1,b=h:2,c=h:3\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path), -1);
    ck_assert_ptr_nonnull(strstr(err, "initial-cluster"));
    ck_assert_ptr_nonnull(strstr(err, "\"d\""));
    /* Present, but at another address than peer-address. */
    write_conf("name = a\ninitial-cluster = a=h:1,b=h:2,c=h:3\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path), -1);
    ck_assert_ptr_nonnull(strstr(err, "peer-address"));
    ck_assert_ptr_nonnull(strstr(err, "h:1"));
    ck_assert_int_eq(PARSE(&c, "--config", conf_path, "--peer-address", "h:1"),
                     0);
}
END_TEST

START_TEST(initial_cluster_syntax_errors)
{
    expect_file_error("\ninitial-cluster = a=h:1,b\n", 2,
                      "initial-cluster: member 2 \"b\" is not NAME=HOST:PORT");
    expect_file_error("initial-cluster = a=h:1,\n", 1, "member 2 \"\"");
    expect_file_error("initial-cluster = a=h:1,,b=h:2\n", 1, "member 2");
    expect_file_error("initial-cluster = a=h\n", 1,
                      "member a: \"h\" is not HOST:PORT");
    expect_file_error("initial-cluster = A=h:1\n", 1,
                      "member name \"A\" is not");
    expect_file_error("initial-cluster = =h:1\n", 1, "member name \"\"");
    expect_file_error("initial-cluster = n1=h:1,b=h:2,n1=h:3\n", 1,
                      "initial-cluster: member name \"n1\" appears twice");
}
END_TEST

START_TEST(initial_cluster_of_more_than_16_is_an_error)
{
    char text[1024];
    size_t n;
    int i;
    struct jd_config c;
    n = (size_t)snprintf(text, sizeof text,
                         "peer-address = h:1\ninitial-cluster = n1=h:1");
    for (i = 2; i <= 16; i++) {
        n += (size_t)snprintf(text + n, sizeof text - n, ",m%d=h:%d", i, i);
    }
    strcat(text, "\n");
    parse_text_ok(&c, text);
    ck_assert_uint_eq(c.n_initial, 16);
    text[strlen(text) - 1] = '\0';
    strcat(text, ",m17=h:17\n");
    expect_file_error(text, 2, "more than 16 members");
}
END_TEST

START_TEST(bootstrap_and_initial_cluster_are_exclusive)
{
    struct jd_config c;
    write_conf("name = n1\ninitial-cluster = n1=127.0.0.1:7400\n");
    ck_assert_int_eq(PARSE(&c, "--config", conf_path), 0);
    ck_assert_int_eq(PARSE(&c, "--config", conf_path, "--bootstrap"), -1);
    ck_assert_ptr_nonnull(strstr(err, "bootstrap"));
    ck_assert_ptr_nonnull(strstr(err, "initial-cluster"));
}
END_TEST

/* ---- jd_config_check ---- */

START_TEST(check_accepts_a_valid_three_node_config)
{
    struct jd_config c;
    three_node_config(&c);
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), 0);
}
END_TEST

START_TEST(check_wants_election_at_least_twice_heartbeat)
{
    struct jd_config c;
    three_node_config(&c);
    c.election_timeout_ms = 200;
    c.heartbeat_timeout_ms = 100;
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), 0);
    c.election_timeout_ms = 199;
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "election-timeout (199 ms)"));
    ck_assert_ptr_nonnull(strstr(err, "heartbeat-timeout (100 ms)"));
    /* No overflow on large values. */
    c.election_timeout_ms = 4000000000u;
    c.heartbeat_timeout_ms = 3000000000u;
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
}
END_TEST

START_TEST(check_rejects_bad_and_duplicate_names)
{
    static const char *const bad[] = {"", "Upper", "a_b", "a.b", "a b"};
    struct jd_config c;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        three_node_config(&c);
        c.n_initial = 0;
        snprintf(c.name, sizeof c.name, "%s", bad[i]);
        ck_assert_msg(jd_config_check(&c, err, sizeof err) == -1, "%s", bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "name"));
    }
    /* 64 bytes without a terminator: too long, and not read past. */
    three_node_config(&c);
    c.n_initial = 0;
    memset(c.name, 'a', sizeof c.name);
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "name"));
    three_node_config(&c);
    strcpy(c.name, "0-a-");
    strcpy(c.initial_cluster[1].name, "0-a-");
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), 0);
    strcpy(c.initial_cluster[2].name, "0-a-");
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"0-a-\" appears twice"));
    three_node_config(&c);
    strcpy(c.initial_cluster[0].name, "A");
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"A\""));
}
END_TEST

START_TEST(check_wants_odd_max_voters_and_a_printable_zone)
{
    struct jd_config c;
    three_node_config(&c);
    c.max_voters = 4;
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "max-voters must be odd"));
    three_node_config(&c);
    strcpy(c.zone, "eu west");
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "zone"));
    strcpy(c.zone, "eu-west-1a");
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), 0);
}
END_TEST

START_TEST(check_rejects_bootstrap_with_initial_cluster)
{
    struct jd_config c;
    three_node_config(&c);
    c.bootstrap = true;
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bootstrap"));
    c.n_initial = 0;
    ck_assert_int_eq(jd_config_check(&c, err, sizeof err), 0);
}
END_TEST

START_TEST(check_truncates_messages_to_errlen)
{
    struct jd_config c;
    char small[8];
    three_node_config(&c);
    c.bootstrap = true;
    memset(small, 'z', sizeof small);
    ck_assert_int_eq(jd_config_check(&c, small, sizeof small), -1);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(jd_config_check(&c, NULL, 0), -1);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, defaults_are_the_documented_values);
    tcase_add_test(tc, default_name_is_the_host_name_up_to_its_first_dot);
    tcase_add_test(tc, parse_without_a_file_gives_the_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, file_sets_every_key);
    tcase_add_test(tc, flags_override_the_file_before_or_after_config);
    tcase_add_test(tc, last_of_a_repeated_flag_wins);
    tcase_add_test(tc, flag_can_empty_the_client_address_of_the_file);
    tcase_add_test(tc, comments_blank_lines_and_whitespace_are_ignored);
    tcase_add_test(tc, quoted_values_keep_spaces_and_hashes_and_unescape);
    tcase_add_test(tc, bad_quoting_is_an_error);
    tcase_add_test(tc, bootstrap_accepts_six_spellings);
    tcase_add_test(tc, bootstrap_flag_sets_it_and_takes_no_value);
    tcase_add_test(tc, audit_max_age_takes_durations);
    tcase_add_test(tc, missing_explicit_file_is_an_error);
    tcase_add_test(tc, directory_as_config_file_is_an_error);
    tcase_add_test(tc, failed_parse_leaves_the_config_untouched);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, unknown_key_is_named_with_its_line);
    tcase_add_test(tc, key_given_twice_is_an_error_at_the_second);
    tcase_add_test(tc, line_without_equals_is_an_error);
    tcase_add_test(tc, number_errors_name_key_and_line);
    tcase_add_test(tc, numbers_out_of_range_are_errors);
    tcase_add_test(tc, bad_host_port_is_an_error);
    tcase_add_test(tc, values_too_long_for_their_field_are_errors);
    tcase_add_test(tc, empty_paths_and_bad_names_are_errors);
    tcase_add_test(tc, unknown_and_abbreviated_flags_are_errors);
    tcase_add_test(tc, stray_arguments_and_missing_values_are_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("help");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, help_returns_1_and_version_2);
    tcase_add_test(tc, usage_lists_every_flag_key_and_default);
    tcase_add_test(tc, every_usage_flag_is_accepted);
    suite_add_tcase(s, tc);

    tc = tcase_create("initial_cluster");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, initial_cluster_of_three_is_parsed);
    tcase_add_test(tc, initial_cluster_flag_replaces_the_file_list);
    tcase_add_test(tc, initial_cluster_must_include_this_node);
    tcase_add_test(tc, initial_cluster_syntax_errors);
    tcase_add_test(tc, initial_cluster_of_more_than_16_is_an_error);
    tcase_add_test(tc, bootstrap_and_initial_cluster_are_exclusive);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_test(tc, check_accepts_a_valid_three_node_config);
    tcase_add_test(tc, check_wants_election_at_least_twice_heartbeat);
    tcase_add_test(tc, check_rejects_bad_and_duplicate_names);
    tcase_add_test(tc, check_rejects_bootstrap_with_initial_cluster);
    tcase_add_test(tc, check_wants_odd_max_voters_and_a_printable_zone);
    tcase_add_test(tc, check_truncates_messages_to_errlen);
    suite_add_tcase(s, tc);

    return s;
}
