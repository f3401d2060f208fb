/* test_manifest.c: jaco.yaml manifests (daemon/manifest.c) into
 * deployments, every refusal naming the file, line and field; and the
 * deployments' msgpack form (daemon/deployment.c) round trip and checks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/manifest.h"
#include "suites.h"

static const char full[] =
    "# a manifest\n"
    "deployments:\n"
    "  web:\n"
    "    services:\n"
    "      api:\n"
    "        replicas: 3\n"
    "        command: [/usr/bin/python3, -m, http.server, \"20080\"]\n"
    "        env:\n"
    "          LOG_LEVEL: info\n"
    "          PORT: 20080\n"
    "        ports: [20080, 53/udp]\n"
    "        placement:\n"
    "          hosts: [n1, n2]\n"
    "        workdir: /srv\n"
    "      worker:\n"
    "        command: exec sleep 100\n"
    "  db:\n"
    "    services:\n"
    "      main:\n"
    "        replicas: 0\n"
    "        command: [postgres]\n"
    "        env:\n";

static void parse_ok(const char *text,
                     struct jd_deployment ***deps,
                     unsigned *n)
{
    char err[512] = "";
    int rv = jd_manifest_parse("jaco.yaml", text, strlen(text), deps, n, err,
                               sizeof err);
    ck_assert_msg(rv == 0, "parse failed: %s", err);
}

/* Parsing text fails with exactly want. */
static void refused(const char *text, const char *want)
{
    struct jd_deployment **deps = NULL;
    char err[512] = "";
    unsigned n = 0;
    int rv = jd_manifest_parse("jaco.yaml", text, strlen(text), &deps, &n, err,
                               sizeof err);
    ck_assert_int_eq(rv, -1);
    ck_assert_ptr_null(deps);
    ck_assert_str_eq(err, want);
}

START_TEST(parses_every_field)
{
    struct jd_deployment **deps;
    const struct jd_service *api, *worker;
    unsigned n;
    parse_ok(full, &deps, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(deps[0]->name, "web");
    ck_assert_uint_eq(deps[0]->revision, 0);
    ck_assert_uint_eq(deps[0]->n_services, 2);
    api = &deps[0]->services[0];
    ck_assert_str_eq(api->name, "api");
    ck_assert_uint_eq(api->replicas, 3);
    ck_assert_uint_eq(api->n_args, 4);
    ck_assert_str_eq(api->args[0], "/usr/bin/python3");
    ck_assert_str_eq(api->args[3], "20080");
    ck_assert_uint_eq(api->n_env, 2);
    ck_assert_str_eq(api->env_keys[1], "PORT");
    ck_assert_str_eq(api->env_values[1], "20080");
    ck_assert_uint_eq(api->n_ports, 2);
    ck_assert_uint_eq(api->ports[0].port, 20080);
    ck_assert_uint_eq(api->ports[0].proto, JD_PROTO_TCP);
    ck_assert_uint_eq(api->ports[1].port, 53);
    ck_assert_uint_eq(api->ports[1].proto, JD_PROTO_UDP);
    ck_assert_uint_eq(api->n_hosts, 2);
    ck_assert_str_eq(api->hosts[1], "n2");
    ck_assert_str_eq(api->workdir, "/srv");
    /* A string command runs in the shell; replicas default to 1. */
    worker = &deps[0]->services[1];
    ck_assert_uint_eq(worker->replicas, 1);
    ck_assert_uint_eq(worker->n_args, 3);
    ck_assert_str_eq(worker->args[0], "/bin/sh");
    ck_assert_str_eq(worker->args[1], "-c");
    ck_assert_str_eq(worker->args[2], "exec sleep 100");
    ck_assert_ptr_null(worker->workdir);
    ck_assert_uint_eq(worker->n_hosts, 0);
    /* "env:" with nothing under it is no environment. */
    ck_assert_uint_eq(deps[1]->services[0].replicas, 0);
    ck_assert_uint_eq(deps[1]->services[0].n_env, 0);
    jd_manifest_free(deps, n);
}
END_TEST

START_TEST(refusals_name_file_line_and_field)
{
    static const char head[] =
        "deployments:\n  web:\n    services:\n"
        "      api:\n";
    char text[1024];
    struct {
        const char *body, *want;
    } cases[] = {
        {"        replicas: two\n        command: [x]\n",
         "jaco.yaml:5: deployments.web.services.api.replicas: expected an "
         "integer from 0 to 64, got \"two\""},
        {"        replicas: \"2\"\n        command: [x]\n",
         "jaco.yaml:5: deployments.web.services.api.replicas: expected an "
         "integer from 0 to 64, got \"2\""},
        {"        replicas: 65\n        command: [x]\n",
         "jaco.yaml:5: deployments.web.services.api.replicas: expected an "
         "integer from 0 to 64, got \"65\""},
        {"        replica: 2\n        command: [x]\n",
         "jaco.yaml:5: deployments.web.services.api.replica: unknown key (a "
         "service has: replicas, command, env, ports, placement, workdir)"},
        {"        replicas: 1\n",
         "jaco.yaml:5: deployments.web.services.api: no command"},
        {"        command: []\n",
         "jaco.yaml:5: deployments.web.services.api.command: needs at least "
         "the program to run"},
        {"        command: {a: b}\n",
         "jaco.yaml:5: deployments.web.services.api.command: expected a list "
         "or a string, found a mapping"},
        {"        command: [x]\n        ports: [0]\n",
         "jaco.yaml:6: deployments.web.services.api.ports[0]: must be a port "
         "from 1 to 65535, optionally followed by /tcp or /udp"},
        {"        command: [x]\n        ports: [80/sctp]\n",
         "jaco.yaml:6: deployments.web.services.api.ports[0]: must be a port "
         "from 1 to 65535, optionally followed by /tcp or /udp"},
        {"        command: [x]\n        ports: [80, 80/tcp]\n",
         "jaco.yaml:6: deployments.web.services.api.ports[1]: 80/tcp listed "
         "twice"},
        {"        command: [x]\n        env:\n          1X: y\n",
         "jaco.yaml:7: deployments.web.services.api.env.1X: must be 1 to 63 "
         "of A-Z, a-z, 0-9 and '_', not starting with a digit"},
        {"        command: [x]\n        env:\n          JACO_HOST: y\n",
         "jaco.yaml:7: deployments.web.services.api.env.JACO_HOST: is "
         "reserved: jacod sets the JACO_ variables of a replica"},
        {"        command: [x]\n        env: [a]\n",
         "jaco.yaml:6: deployments.web.services.api.env: expected a mapping, "
         "found a list"},
        {"        command: [x]\n        placement:\n          hosts: []\n",
         "jaco.yaml:7: deployments.web.services.api.placement.hosts: is "
         "empty (leave placement out to run on any host)"},
        {"        command: [x]\n        placement:\n          zone: a\n",
         "jaco.yaml:7: deployments.web.services.api.placement.zone: unknown "
         "key (placement has: hosts)"},
        {"        command: [x]\n        placement:\n          hosts: [N1]\n",
         "jaco.yaml:7: deployments.web.services.api.placement.hosts[0]: "
         "\"N1\": a node name must be 1 to 63 of a-z, 0-9 and '-', not "
         "starting with '-'"},
        {"        command: [x]\n        workdir: srv\n",
         "jaco.yaml:6: deployments.web.services.api.workdir: must be an "
         "absolute path"},
        {"        command: [x]\n        command: [y]\n",
         "jaco.yaml:6: deployments.web.services.api.command: defined twice "
         "(first on line 5)"},
    };
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%s%s", head, cases[i].body);
        refused(text, cases[i].want);
    }
}
END_TEST

START_TEST(refuses_bad_documents)
{
    refused("", "jaco.yaml:1: empty: a manifest has a deployments mapping");
    refused("deployments: {}\n", "jaco.yaml:1: no deployments");
    refused("deployment:\n  web: {}\n",
            "jaco.yaml:1: deployment: unknown key (a manifest has: "
            "deployments)");
    refused("deployments:\n  Web:\n    services: {}\n",
            "jaco.yaml:2: deployments.Web: must be 1 to 63 of a-z, 0-9 and "
            "'-', not starting with '-'");
    refused("deployments:\n  web:\n    services: {}\n",
            "jaco.yaml:3: deployments.web.services: no services");
    refused(
        "deployments:\n  web:\n    services:\n      a: {command: x}\n"
        "      a: {command: y}\n",
        "jaco.yaml:5: deployments.web.services.a: defined twice (first "
        "on line 4)");
    refused("deployments:\n  web: [\n",
            "jaco.yaml:3: not valid YAML: did not find expected node content "
            "while parsing a flow node");
    refused(
        "deployments:\n  a:\n    services:\n      s: {command: x}\n"
        "---\nmore: 1\n",
        "jaco.yaml:6: a second YAML document: put every deployment under "
        "one deployments key");
    refused("- a\n- b\n", "jaco.yaml:1: expected a mapping, found a list");
    {
        const char nul[] = "deployments:\0\n";
        struct jd_deployment **deps;
        char err[256];
        unsigned n;
        ck_assert_int_eq(jd_manifest_parse("jaco.yaml", nul, sizeof nul - 1,
                                           &deps, &n, err, sizeof err),
                         -1);
        ck_assert_str_eq(err,
                         "jaco.yaml:1: not a text file (it holds a NUL byte)");
    }
}
END_TEST

/* A billion laughs: libyaml keeps aliases as references (no expansion),
 * and the walk visits a bounded number of nodes. */
START_TEST(alias_bomb_is_refused_quickly)
{
    static const char bomb[] =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "deployments:\n"
        "  web:\n"
        "    services:\n"
        "      api:\n"
        "        command: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    refused(bomb,
            "jaco.yaml:1: a: unknown key (a manifest has: "
            "deployments)");
}
END_TEST

START_TEST(msgpack_round_trip_keeps_everything)
{
    struct jd_deployment **deps, *back;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    char err[256];
    unsigned n, i, k;
    parse_ok(full, &deps, &n);
    deps[0]->revision = 7;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    jd_deployment_pack(&pk, deps[0]);
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(jd_deployment_unpack(&u.data, &back, err, sizeof err), 0);
    ck_assert_str_eq(back->name, "web");
    ck_assert_uint_eq(back->revision, 7);
    ck_assert_uint_eq(back->n_services, deps[0]->n_services);
    for (i = 0; i < back->n_services; i++) {
        const struct jd_service *a = &deps[0]->services[i];
        const struct jd_service *b = &back->services[i];
        ck_assert_str_eq(a->name, b->name);
        ck_assert_uint_eq(a->replicas, b->replicas);
        ck_assert_uint_eq(a->n_args, b->n_args);
        for (k = 0; k < a->n_args; k++) {
            ck_assert_str_eq(a->args[k], b->args[k]);
        }
        ck_assert_uint_eq(a->n_env, b->n_env);
        for (k = 0; k < a->n_env; k++) {
            ck_assert_str_eq(a->env_keys[k], b->env_keys[k]);
            ck_assert_str_eq(a->env_values[k], b->env_values[k]);
        }
        ck_assert_uint_eq(a->n_ports, b->n_ports);
        for (k = 0; k < a->n_ports; k++) {
            ck_assert_uint_eq(a->ports[k].port, b->ports[k].port);
            ck_assert_uint_eq(a->ports[k].proto, b->ports[k].proto);
        }
        ck_assert_uint_eq(a->n_hosts, b->n_hosts);
        ck_assert(a->workdir == NULL ? b->workdir == NULL
                                     : strcmp(a->workdir, b->workdir) == 0);
    }
    jd_deployment_free(back);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    jd_manifest_free(deps, n);
}
END_TEST

/* What jacod decodes is checked again: a hand-made request cannot pass
 * what the YAML parser refuses. */
START_TEST(unpack_checks_like_the_parser)
{
    struct jd_deployment *d = jd_deployment_new(1), *back = NULL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    char err[256];
    snprintf(d->name, sizeof d->name, "web");
    snprintf(d->services[0].name, sizeof d->services[0].name, "Bad Name");
    d->services[0].n_args = 1;
    d->services[0].args[0] = strdup("x");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    jd_deployment_pack(&pk, d);
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(jd_deployment_unpack(&u.data, &back, err, sizeof err), -1);
    ck_assert_ptr_null(back);
    ck_assert_str_eq(err,
                     "services: name \"Bad Name\": must be 1 to 63 of "
                     "a-z, 0-9 and '-', not starting with '-'");
    /* Not a map at all. */
    ck_assert_int_eq(jd_deployment_unpack(NULL, &back, err, sizeof err), -1);
    ck_assert_str_eq(err, "malformed deployment");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    jd_deployment_free(d);
}
END_TEST

Suite *manifest_suite(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parses_every_field);
    tcase_add_test(tc, refusals_name_file_line_and_field);
    tcase_add_test(tc, refuses_bad_documents);
    tcase_add_test(tc, alias_bomb_is_refused_quickly);
    suite_add_tcase(s, tc);
    tc = tcase_create("msgpack");
    tcase_add_test(tc, msgpack_round_trip_keeps_everything);
    tcase_add_test(tc, unpack_checks_like_the_parser);
    suite_add_tcase(s, tc);
    return s;
}
